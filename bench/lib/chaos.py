#!/usr/bin/env python3
"""Hostile random traffic for bench/chaos.sh.

    chaos.py origin --port PORT [--cert CHAIN --key KEY]
        A server that misbehaves at random, connection by connection and
        request by request: good answers (lengths, chunks, close), a body
        cut short with a FIN or a reset, bytes that are not HTTP, an
        unasked 101, floods of 100 Continue, a length beside chunked, heads
        too large, a response a byte at a time, bodies where none may be,
        bytes after the end of a body, silence. TLS with --cert and --key.
        Prints "ready" once listening.

    chaos.py client --proxy PORT --seconds S --workers W --hosts H,...
                    [--seed N]
        W threads, each opening one connection through pinproxy after
        another for S seconds, each doing one thing at random: plaintext
        requests to one of the hosts H (pipelined, mutated, truncated, sent
        in small pieces, with or without bodies, Expect, Upgrade, HTTP/1.0),
        random bytes, a CONNECT then TLS (any version, ALPN, SNI) and the
        same requests inside, a CONNECT then bytes that are not TLS, a
        plaintext request inside a CONNECT, a request head that stops, or
        pipelined requests whose answers are never read; then it closes,
        half-closes or resets. Prints how many of each it did.

Everything runs on 127.0.0.1. The point is what pinproxy does, not what
these get back: bench/chaos.sh checks the daemon afterwards.
"""

import argparse
import random
import socket
import ssl
import struct
import sys
import threading
import time


def reset(sock):
    """Close with a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


# The origin.

def read_request(sock, buf):
    """The next request head and what follows its body, (None, b"") at the
    end; bodies are read by Content-Length, or up to a last chunk."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data or len(buf) > 200000:
            return None, b""
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    low = head.lower()
    if b"content-length:" in low:
        try:
            n = int(low.split(b"content-length:")[1].split(b"\r\n")[0])
        except ValueError:
            n = 0
        while len(rest) < n:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        rest = rest[n:]
    elif b"chunked" in low:
        while b"0\r\n\r\n" not in rest:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        rest = rest.split(b"0\r\n\r\n", 1)[-1]
    return head, rest


def chunked(r):
    out = b""
    for _ in range(r.randint(0, 4)):
        m = r.randint(1, 9000)
        out += b"%x\r\n" % m + b"x" * m + b"\r\n"
    return out + b"0\r\n" + (b"X-T: 1\r\n" if r.random() < .3 else b"") + \
        b"\r\n"


def serve(sock, r):
    """One connection: up to six requests, each answered one way."""
    buf = b""
    for _ in range(r.randint(1, 6)):
        head, buf = read_request(sock, buf)
        if head is None:
            return
        bodyless = head.startswith(b"HEAD ")
        n = r.choice([0, 1, 100, 5000, 70000, 300000])
        k = r.random()
        if k < .45:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
                         + (b"" if bodyless else b"x" * n))
        elif k < .52:
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                         b"\r\n\r\n" + (b"" if bodyless else chunked(r)))
        elif k < .56:
            sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
                         b"x" * n)
            break
        elif k < .60:
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
                         b"websocket\r\nConnection: upgrade\r\n\r\nSMUGGLE")
            time.sleep(r.random())
            break
        elif k < .64:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * r.randint(1, 40) +
                         b"HTTP/1.1 204 No Content\r\n\r\n")
        elif k < .68:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
                         + b"x" * (n // 2))
            if r.random() < .5:
                reset(sock)
            else:
                sock.close()
            return
        elif k < .72:
            sock.sendall(r.randbytes(r.randint(1, 3000)))
            break
        elif k < .76:
            time.sleep(r.uniform(0, 4))
            break
        elif k < .80:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-"
                         b"Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        elif k < .84:
            sock.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " +
                         b"a" * r.choice([100, 9000, 70000]) +
                         b"\r\nContent-Length: 0\r\n\r\n")
        elif k < .88:
            resp = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n" + \
                b"x" * 30
            for i in range(len(resp)):
                sock.sendall(resp[i:i + 1])
                time.sleep(0.01)
        elif k < .92:
            sock.sendall(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10"
                         b"\r\n\r\n0123456789")
        elif k < .96:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
                         b"abcEXTRA-BYTES-AFTER")
        else:
            reset(sock)
            return
    sock.close()


def cmd_origin(a):
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        ctx.set_alpn_protocols(["http/1.1"])

    def handle(conn):
        r = random.Random()
        try:
            conn.settimeout(8)
            if ctx is not None:
                conn = ctx.wrap_socket(conn, server_side=True)
            serve(conn, r)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            conn.close()

    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(256)
    print("ready", flush=True)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# The client.

def mutate(r, data):
    b = bytearray(data)
    for _ in range(r.randint(1, 4)):
        i = r.randrange(len(b)) if b else 0
        k = r.random()
        if k < .4 and b:
            b[i] = r.getrandbits(8)
        elif k < .6:
            b[i:i] = r.choice([b"\r\n", b"\n", b" ", b"\t", b":", b"\x00",
                               b"Transfer-Encoding: chunked\r\n",
                               b"Content-Length: 5\r\n", b"\r\n\r\n"])
        elif b:
            del b[i:i + r.randint(1, 10)]
    return bytes(b)


def request(r, host, absolute=True):
    method = r.choice([b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"GET"])
    path = b"/" + r.choice([b"", b"a", b"size/100", b"x?y=1"])
    target = b"http://" + host.encode() + path if absolute else path
    fields = [b"Host: " + host.encode()]
    body = b""
    if method in (b"POST", b"PUT") or r.random() < .1:
        n = r.choice([0, 1, 10, 4000, 100000, 1000000])
        if r.random() < .5:
            fields.append(b"Content-Length: %d" % n)
            body = b"u" * n
        else:
            fields.append(b"Transfer-Encoding: chunked")
            body = (b"%x\r\n" % n + b"u" * n + b"\r\n" if n else b"") + \
                b"0\r\n\r\n"
    fields += r.sample([b"Connection: close", b"Connection: keep-alive",
                        b"Expect: 100-continue",
                        b"Upgrade: websocket\r\nConnection: upgrade",
                        b"Max-Forwards: 0", b"Proxy-Connection: keep-alive",
                        b"X-A: b"], r.randint(0, 2))
    version = r.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"])
    return method + b" " + target + b" " + version + b"\r\n" + \
        b"\r\n".join(fields) + b"\r\n\r\n" + body


def requests(r, host, absolute=True):
    data = b"".join(request(r, host, absolute)
                    for _ in range(r.randint(1, 4)))
    if r.random() < .3:
        data = mutate(r, data)
    if r.random() < .25:
        data = data[:r.randint(0, len(data))]
    return data


def drain(r, sock, seconds):
    """Read for up to seconds, or stop reading at random."""
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            sock.settimeout(max(0.01, end - time.monotonic()))
            data = sock.recv(65536)
            if not data or r.random() < .01:
                break
    except (OSError, ssl.SSLError):
        pass


def send(r, sock, data):
    """All at once, or (when short) in small pieces with pauses."""
    if r.random() < .15 and len(data) < 3000:
        while data:
            n = r.randint(1, 50)
            sock.sendall(data[:n])
            data = data[n:]
            time.sleep(r.uniform(0, 0.05))
    else:
        sock.sendall(data)


def finish(r, sock):
    k = r.random()
    if k < .3:
        reset(sock)
        return
    if k < .5:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        drain(r, sock, r.uniform(0, 2))
    sock.close()


def connect(sock, authority):
    sock.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" %
                 (authority, authority))
    resp = b""
    while b"\r\n\r\n" not in resp:
        data = sock.recv(4096)
        if not data:
            break
        resp += data
    return b" 200 " in resp.split(b"\r\n")[0]


def intercepted(r, sock, name):
    if not connect(sock, name.encode() + b":443"):
        return sock, "connect-refused"
    if r.random() < .15:
        send(r, sock, r.randbytes(r.randint(1, 3000)))
        drain(r, sock, r.uniform(0, 2))
        return sock, "connect-not-tls"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if r.random() < .3:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if r.random() < .3:
        ctx.set_alpn_protocols(r.choice([["http/1.1"], ["h2", "http/1.1"],
                                         ["foo"]]))
    tls = ctx.wrap_socket(sock, server_hostname=name if r.random() < .9
                          else "other.test")
    send(r, tls, requests(r, name, absolute=r.random() < .2))
    drain(r, tls, r.uniform(0, 3))
    if r.random() < .5:
        try:
            tls.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
    return tls, "intercept"


def scenario(r, port, hosts):
    host = r.choice(hosts)
    sock = socket.create_connection(("127.0.0.1", port), timeout=6)
    k = r.random()
    name = "plain"
    try:
        if k < .30:
            send(r, sock, requests(r, host))
            drain(r, sock, r.uniform(0, 3))
        elif k < .40:
            name = "not-http"
            send(r, sock, r.randbytes(r.randint(1, 5000)))
            drain(r, sock, r.uniform(0, 2))
        elif k < .75:
            name = "intercept"
            sock, name = intercepted(r, sock, host.rsplit(":", 1)[0])
        elif k < .85:
            name = "connect-plain"
            if connect(sock, host.encode() if ":" in host
                       else host.encode() + b":443"):
                send(r, sock, request(r, host, absolute=False))
                drain(r, sock, r.uniform(0, 2))
        elif k < .93:
            name = "stall"
            send(r, sock, request(r, host)[:r.randint(0, 40)])
            time.sleep(r.uniform(0, 4))
        else:
            name = "unread"
            send(r, sock, (b"GET http://%s/ HTTP/1.1\r\nHost: x\r\n\r\n" %
                           host.encode()) * r.randint(1, 50))
            time.sleep(r.uniform(0, 3))
    except (OSError, ssl.SSLError, ValueError):
        name += "-error"
    finally:
        finish(r, sock)
    return name


def cmd_client(a):
    counts = {}
    lock = threading.Lock()
    hosts = a.hosts.split(",")
    seed = a.seed if a.seed is not None else int(time.time())

    def worker(i):
        r = random.Random(seed * 1000 + i)
        end = time.monotonic() + a.seconds
        while time.monotonic() < end:
            try:
                name = scenario(r, a.proxy, hosts)
            except (OSError, ssl.SSLError, ValueError):
                name = "refused"
            with lock:
                counts[name] = counts.get(name, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,))
               for i in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("seed %d: %d connections: %s" % (
        seed, sum(counts.values()),
        ", ".join("%s %d" % kv for kv in sorted(counts.items()))), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("origin")
    o.add_argument("--port", type=int, required=True)
    o.add_argument("--cert")
    o.add_argument("--key")
    c = sub.add_parser("client")
    c.add_argument("--proxy", type=int, required=True)
    c.add_argument("--seconds", type=float, required=True)
    c.add_argument("--workers", type=int, default=8)
    c.add_argument("--hosts", required=True)
    c.add_argument("--seed", type=int)
    a = p.parse_args()
    return cmd_origin(a) if a.cmd == "origin" else cmd_client(a)


if __name__ == "__main__":
    sys.exit(main())
