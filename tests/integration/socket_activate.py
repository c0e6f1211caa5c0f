"""A minimal systemd-style socket activator for the tests:

    socket_activate.py PORTFILE COMMAND...

binds 127.0.0.1 on an ephemeral port, writes the port to PORTFILE, moves
the listening socket to fd 3, sets LISTEN_FDS=1 and LISTEN_PID to its own
pid, and execs COMMAND (which keeps that pid), as systemd does."""
import os
import socket
import sys


def main():
    portfile, cmd = sys.argv[1], sys.argv[2:]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    if s.fileno() != 3:
        os.dup2(s.fileno(), 3)
        s.close()
    os.set_inheritable(3, True)
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
