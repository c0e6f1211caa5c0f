# docs: the qilin(1) man page, and the guides installed under $(docdir).
dist_man1_MANS = docs/qilin.1 docs/qilinctl.1
dist_doc_DATA = docs/guide.md docs/configuration.md docs/operations.md docs/plugins.md \
	docs/packaging.md docs/gunicorn.md docs/ruby.md
