#!/usr/bin/env python3
"""A stop that meets connections queued in the kernel while a slot frees.

stop_queued.py PID PORT_X PORT_Q: with pinproxy PID at max_connections =
2, its listener on PORT_X and another listener of it on PORT_Q: X asks
PORT_X for the CA page with Connection: close and reads it to the end
(pinproxy lingers on X), H opens an idle connection to PORT_X (the
second slot: pinproxy pauses its listeners), and Q connects to PORT_Q
and sends a request, queued by the kernel. pinproxy is then frozen
(SIGSTOP) while X closes and SIGTERM comes, so that its loop sees X's
end and the stop in one turn: the stop takes Q in while a slot frees,
which resumes the listeners mid-take. Prints what Q got: its status
line, or the error's name."""
import os
import signal
import socket
import sys
import time

pid, px, pq = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
x = socket.create_connection(("127.0.0.1", px), timeout=5)
x.sendall(b"GET http://pinproxy.internal/ HTTP/1.1\r\n"
          b"Host: pinproxy.internal\r\nConnection: close\r\n\r\n")
while x.recv(65536):
    pass
h = socket.create_connection(("127.0.0.1", px), timeout=5)
time.sleep(0.3)
q = socket.create_connection(("127.0.0.1", pq), timeout=10)
q.sendall(b"GET http://pinproxy.internal/ HTTP/1.1\r\n"
          b"Host: pinproxy.internal\r\nConnection: close\r\n\r\n")
time.sleep(0.2)
os.kill(pid, signal.SIGSTOP)
time.sleep(0.1)
x.close()
time.sleep(0.1)
os.kill(pid, signal.SIGTERM)
time.sleep(0.1)
os.kill(pid, signal.SIGCONT)
try:
    d = b""
    while True:
        b = q.recv(65536)
        if not b:
            break
        d += b
    print(d.split(b"\r\n")[0].decode("latin-1") or "eof")
except OSError as e:
    print(type(e).__name__)
h.close()
