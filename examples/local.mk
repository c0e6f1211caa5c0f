# Examples: out-of-tree plugin, systemd units (issue 8).
