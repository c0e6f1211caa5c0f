# docs: man page and guides
