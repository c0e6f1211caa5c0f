# qilinctl: the client of the master's control socket (gunicorn's gunicornc).
# It links libc only, and shares the protocol's parser with the master.
bin_PROGRAMS += qilinctl
qilinctl_SOURCES = ctl/qilinctl.c core/control_cmd.c core/control_cmd.h
