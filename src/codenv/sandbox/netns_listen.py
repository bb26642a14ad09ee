"""Open a listening TCP socket inside a box's network namespace and hand it back.

Run by codenv (sandbox/netns.py) as `python -I -S netns_listen.py PID FD PORT`, with the
server's own interpreter, outside the box's filesystem, while the box waits on bwrap's
--block-fd. It joins the user namespace owning the box's network namespace (its creator's
uid has every capability there, so no privilege is needed), then the network namespace,
listens on 127.0.0.1:PORT there, and sends the socket over the Unix socket FD. The socket
stays in the box's namespace wherever its descriptor goes: the server's proxy accepts the
box's connections on it without anything of codenv running inside the box.

A process of its own because joining a user namespace needs a single-threaded process;
stdlib only (-I -S: nothing of the server's environment or site-packages).
"""

import ctypes
import fcntl
import os
import socket
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): the user namespace owning a namespace (Linux 4.9)
# bwrap raises the box's loopback after writing its pid: bind before the address exists.
IP_FREEBIND = 15
BACKLOG = 128


def _setns(libc: ctypes.CDLL, fd: int, kind: int) -> None:
    if libc.setns(fd, kind) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def main(pid: int, channel: int, port: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    owner = fcntl.ioctl(net, NS_GET_USERNS)
    _setns(libc, owner, CLONE_NEWUSER)
    _setns(libc, net, CLONE_NEWNET)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    with socket.socket(fileno=channel) as reply:
        socket.send_fds(reply, [b"listening"], [listener.fileno()])


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
