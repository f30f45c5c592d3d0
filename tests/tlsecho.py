#!/usr/bin/env python3
"""A TLS echo server for the forwarder tests, on 127.0.0.1 only.

tlsecho.py --port PORT (--cert CHAIN --key KEY | --plain) --log FILE
        [--delay S]
    Echo every byte back on each connection until the client's end, then
    close (without a close_notify of its own); with --delay, wait S
    seconds after each accept before the handshake. FILE gets one JSON line per
    event: {"event": "accept"} and {"event": "close", "bytes": N, "end":
    HOW} with the bytes received on that connection and how the client
    ended: "close_notify", "bare" (TLS stopped without one), "fin"
    (--plain) or "error". Prints "ready" when listening.

tlsecho.py --client PORT [--size N] [--send TEXT]
    A plaintext client of a forwarder. With --size, send N random bytes
    while reading what comes back, then print "sent=HASH" and
    "got=HASH bytes=N". With --send, send TEXT, read until the other side
    closes (10 s at most) and print "got=N" bytes.
"""
import argparse
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time


def log(path, lock, **kw):
    with lock:
        with open(path, "a") as f:
            f.write(json.dumps(kw) + "\n")


def serve(args):
    ctx = None
    if not args.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(64)
    lock = threading.Lock()
    print("ready", flush=True)

    def one(raw):
        n = 0
        end = "error"
        log(args.log, lock, event="accept")
        try:
            conn = raw
            time.sleep(args.delay)
            if ctx is not None:
                conn = ctx.wrap_socket(raw, server_side=True,
                                       suppress_ragged_eofs=False)
            while True:
                try:
                    data = conn.recv(65536)
                except ssl.SSLEOFError:
                    end = "bare"
                    break
                if not data:
                    end = "fin" if ctx is None else "close_notify"
                    break
                n += len(data)
                conn.sendall(data)
            conn.close()
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()
            log(args.log, lock, event="close", bytes=n, end=end)

    while True:
        raw, _ = lsock.accept()
        threading.Thread(target=one, args=(raw,), daemon=True).start()


def client(args):
    s = socket.create_connection(("127.0.0.1", args.client), timeout=20)
    if args.send is not None:
        s.settimeout(10)
        try:
            s.sendall(args.send.encode())
        except OSError:
            pass
        got = 0
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += len(data)
        except OSError:
            pass
        print("got=%d" % got)
        return
    payload = os.urandom(args.size)
    sent = hashlib.sha256(payload).hexdigest()

    def writer():
        s.sendall(payload)

    t = threading.Thread(target=writer)
    t.start()
    h = hashlib.sha256()
    got = 0
    # --stall: let every buffer on the way fill up, then read in small
    # pieces with pauses, so the relay waits on this side again and again.
    if args.stall:
        time.sleep(args.stall)
    n = 0
    while got < args.size:
        data = s.recv(4096 if args.stall else 65536)
        if not data:
            break
        h.update(data)
        got += len(data)
        n += 1
        if args.stall and n % 64 == 0:
            time.sleep(0.01)
    t.join()
    s.close()
    print("sent=%s" % sent)
    print("got=%s bytes=%d" % (h.hexdigest(), got))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--client", type=int)
    ap.add_argument("--size", type=int, default=8 * 1024 * 1024)
    ap.add_argument("--send")
    ap.add_argument("--stall", type=float, default=0)
    ap.add_argument("--delay", type=float, default=0)
    args = ap.parse_args()
    if args.client is not None:
        client(args)
    else:
        serve(args)


if __name__ == "__main__":
    sys.exit(main())
