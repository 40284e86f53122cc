"""Blocking reads are waits: the parent blocks in os.read on a pipe, in recv on a socket pair
(and in recv with MSG_WAITALL across two sends), and in accept on a unix listener, while a
child sleeps virtual time before writing, sending, connecting. Each wait must end when the
child acts — at its virtual time, not before, and not 20 ms of real time late."""

import os
import socket
import tempfile
import time
from pathlib import Path

r, w = os.pipe()
parent_sock, child_sock = socket.socketpair()
listen_path = Path(tempfile.mkdtemp()) / "listen.sock"
listener = socket.socket(socket.AF_UNIX)
listener.bind(str(listen_path))
listener.listen(1)

pid = os.fork()
if pid == 0:
    time.sleep(50)
    os.write(w, b"x")
    time.sleep(20)
    child_sock.send(b"y")
    time.sleep(5)
    child_sock.send(b"ab")
    time.sleep(5)
    child_sock.send(b"cd")
    time.sleep(10)
    socket.socket(socket.AF_UNIX).connect(str(listen_path))
    os._exit(0)

t0 = time.monotonic()
got = [os.read(r, 1)]
t_read = time.monotonic() - t0
got.append(parent_sock.recv(1))
t_recv = time.monotonic() - t0
got.append(parent_sock.recv(4, socket.MSG_WAITALL))
t_waitall = time.monotonic() - t0
conn, _ = listener.accept()
t_accept = time.monotonic() - t0
os.waitpid(pid, 0)
ok = got == [b"x", b"y", b"abcd"]
print(f"RESULT ok={int(ok)} read_s={t_read:.6f} recv_s={t_recv:.6f} waitall_s={t_waitall:.6f} "
      f"accept_s={t_accept:.6f}")
