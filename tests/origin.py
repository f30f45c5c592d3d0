#!/usr/bin/env python3
"""A test origin server for pinproxy's end-to-end tests.

It serves a few HTTP/1.1 routes on 127.0.0.1, over TLS or plain TCP, and
records every connection, request and received byte as JSON lines, so that
a test can tell exactly what reached the origin.

    origin.py --port P [--cert CHAIN.pem --key KEY] [--tls|--plain]
              [--alpn h2,http/1.1] [--log FILE] [--silent]
    origin.py --pattern N      write the /bytes/N body to stdout and exit

Routes (HEAD works on each; a request body is always read and hashed):
    /hello          "hello from origin\\n"
    /bytes/N        N bytes of the pattern byte[i] = i % 251, Content-Length
    /chunked/N      the same N bytes, chunked
    /echo           "SHA256HEX LENGTH\\n" of the request body
    /status/N       an empty response with status N
    /close[/N]      a close-delimited body (no length): a fixed line, or N
                    pattern bytes
    /gzipped[/N]    the same, with "Transfer-Encoding: gzip" (the bytes are
                    not gzip: a proxy passes them as they are)
    /slow[/N]       Content-Length, then N (default 5) lines "slow\\n", one
                    every 0.2 s
    /drop           no answer: the connection closes once the request is read
    /wait/N         "waited for /wait/N", N seconds after the request was read
    /late204        a 204, then 20 ms later a whole 200 answer nobody asked for
    /early          401 with a close-delimited body, sent before the request
                    body is read; then the connection ends
    /upgrade        with "Upgrade: echo" or "Upgrade: websocket": 101 to
                    it, then every byte is echoed
The answer to a request with "Connection: close" (or an HTTP/1.0 one
without keep-alive) says "Connection: close", and the connection ends.

Log events, one JSON object per line, all but the first with "conn" (1,
2, ...): start (the server started; a server restarted on the same log
numbers its connections from 1 again after it),
    accept {peer}, tls {version, alpn, sni}, tls_error {error},
    bytes {n} (application data received), request {method, path,
    version, headers}, body {length, sha256}, idle (a response was sent
    and the connection waits for the next request), close {error?}
"""

import argparse
import hashlib
import http
import json
import socket
import socketserver
import ssl
import sys
import threading
import time

HELLO = b"hello from origin\n"
CLOSE_BODY = b"close-delimited body from origin\n"
PATTERN_PERIOD = 251
# Whole periods, so that every block starts at phase 0.
PATTERN_BLOCK = bytes(range(PATTERN_PERIOD)) * 261
MAX_LINE = 65536
IO_TIMEOUT = 60
CLOSE_TIMEOUT = 2


def pattern(n):
    """Yield n bytes of the deterministic pattern, in blocks."""
    while n > 0:
        k = min(n, len(PATTERN_BLOCK))
        yield PATTERN_BLOCK[:k]
        n -= k


class Closed(Exception):
    """The peer closed the connection in the middle of a message."""


class BadRequest(Exception):
    """The request cannot be parsed."""


class Recorder:
    """Numbers connections and appends JSON lines to the log file."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.count = 0
        self.file = open(path, "a", encoding="utf-8") if path else None
        # A server restarted on the same log numbers its connections from
        # 1 again: this line tells where its own begin.
        if self.file is not None:
            self.file.write(json.dumps({"event": "start"}) + "\n")
            self.file.flush()

    def next_conn(self):
        with self.lock:
            self.count += 1
            return self.count

    def log(self, conn, event, **fields):
        if self.file is None:
            return
        record = {"conn": conn, "event": event}
        record.update(fields)
        line = json.dumps(record) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()


class Peer:
    """Buffered reads from one connection; every byte read is logged."""

    def __init__(self, sock, conn, recorder):
        self.sock = sock
        self.conn = conn
        self.recorder = recorder
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(65536)
        if data:
            self.recorder.log(self.conn, "bytes", n=len(data))
            self.buf += data
        return len(data)

    def readline(self):
        """A line with its end, or None at end of file before any byte."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise BadRequest("line too long")
            if self.fill() == 0:
                if self.buf:
                    raise Closed()
                return None

    def read(self, n):
        """Up to n bytes (at least one), or b"" at end of file."""
        if not self.buf and self.fill() == 0:
            return b""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def read_head(peer):
    """(method, target, version, headers) or None at end of file."""
    line = peer.readline()
    while line in (b"\r\n", b"\n"):
        line = peer.readline()
    if line is None:
        return None
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest("bad request line")
    headers = {}
    while True:
        line = peer.readline()
        if line is None:
            raise Closed()
        text = line.decode("latin-1").rstrip("\r\n")
        if text == "":
            break
        name, sep, value = text.partition(":")
        if sep == "" or name.strip() != name or name == "":
            raise BadRequest("bad header line")
        name = name.lower()
        value = value.strip()
        if name in headers:
            headers[name] += ", " + value
        else:
            headers[name] = value
    return parts[0], parts[1], parts[2], headers


def body_chunks(peer, headers):
    """Yield the request body as it arrives (Content-Length or chunked)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = peer.readline()
            if line is None:
                raise Closed()
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            while size > 0:
                data = peer.read(min(size, 65536))
                if not data:
                    raise Closed()
                size -= len(data)
                yield data
            if peer.readline() not in (b"\r\n", b"\n"):
                raise BadRequest("bad chunk end")
        while True:
            line = peer.readline()
            if line is None:
                raise Closed()
            if line in (b"\r\n", b"\n"):
                return
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = peer.read(min(left, 65536))
            if not data:
                raise Closed()
            left -= len(data)
            yield data


def has_body(headers):
    return ("transfer-encoding" in headers or
            int(headers.get("content-length", "0") or "0") > 0)


def send_head(sock, status, headers):
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def route_number(path, default=None):
    tail = path.split("/")[2:]
    if not tail or tail[0] == "":
        if default is None:
            raise BadRequest("number expected")
        return default
    return int(tail[0])


class Handler(socketserver.BaseRequestHandler):
    """One connection: optional TLS handshake, then requests until close."""

    def handle(self):
        server = self.server
        rec = server.recorder
        conn = rec.next_conn()
        self.conn = conn
        rec.log(conn, "accept",
                peer="%s:%d" % self.client_address[:2])
        raw = self.request
        if server.args.silent:
            self.hold_silently(raw)
            return
        raw.settimeout(IO_TIMEOUT)
        sock = raw
        if server.ctx is not None:
            time.sleep(server.args.delay)
            sock = server.ctx.wrap_socket(raw, server_side=True,
                                          do_handshake_on_connect=False)
            try:
                sock.do_handshake()
            except (ssl.SSLError, OSError) as e:
                rec.log(conn, "tls_error", error=str(e))
                rec.log(conn, "close")
                sock.close()
                return
            rec.log(conn, "tls", version=sock.version(),
                    alpn=sock.selected_alpn_protocol(),
                    sni=getattr(sock, "origin_sni", None),
                    resumed=sock.session_reused)
        error = None
        graceful = True
        try:
            self.serve(sock, Peer(sock, conn, rec))
        except BadRequest as e:
            error = "bad request: %s" % e
            try:
                body = b"bad request\n"
                send_head(sock, 400, [("Content-Type", "text/plain"),
                                      ("Content-Length", len(body)),
                                      ("Connection", "close")])
                sock.sendall(body)
            except (ssl.SSLError, OSError):
                graceful = False
        except Closed:
            error = "closed in the middle of a message"
            graceful = False
        except (ssl.SSLError, OSError, ValueError) as e:
            error = "%s: %s" % (type(e).__name__, e)
            graceful = False
        if error is None:
            rec.log(conn, "close")
        else:
            rec.log(conn, "close", error=error)
        self.finish_socket(sock, graceful)

    def hold_silently(self, raw):
        """Accept, never answer, and wait for the peer to give up."""
        try:
            while raw.recv(65536):
                pass
        except OSError:
            pass
        self.server.recorder.log(self.conn, "close")

    def finish_socket(self, sock, graceful):
        """Close, with a TLS close_notify when the exchange went well."""
        try:
            if graceful and isinstance(sock, ssl.SSLSocket):
                sock.settimeout(CLOSE_TIMEOUT)
                sock = sock.unwrap()
            if graceful:
                sock.shutdown(socket.SHUT_WR)
        except (ssl.SSLError, OSError, ValueError):
            pass
        sock.close()

    def serve(self, sock, peer):
        """Answer requests until one of the two sides ends the exchange."""
        rec = self.server.recorder
        while True:
            head = read_head(peer)
            if head is None:
                return
            method, target, version, headers = head
            rec.log(self.conn, "request", method=method, path=target,
                    version=version, headers=headers)
            if target.split("?", 1)[0] == "/early":
                # Answered before the body is read: the end of the
                # connection ends the answer.
                send_head(sock, 401, [("Content-Type", "text/plain"),
                                      ("Connection", "close")])
                sock.sendall(b"early answer\n")
                return
            if target.split("?", 1)[0] == "/mute":
                # Never answers, not even a 100 Continue (/mute?103: only
                # a 103 Early Hints): reads to the close.
                if target.endswith("?103"):
                    sock.sendall(b"HTTP/1.1 103 Early Hints\r\n\r\n")
                while peer.read(65536):
                    pass
                return
            if target.split("?", 1)[0] == "/nobody":
                # Answered as if the request had no body, whatever its
                # head said: the body, unread, is taken for the start of
                # the next request on the connection (a server that does
                # not read the body of some requests).
                body = b"body left unread\n"
                send_head(sock, 200, [("X-Origin-Conn", self.conn),
                                      ("Content-Length", len(body))])
                sock.sendall(body)
                rec.log(self.conn, "idle")
                continue
            if (headers.get("expect", "").lower() == "100-continue" and
                    has_body(headers)):
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            digest = hashlib.sha256()
            length = 0
            for data in body_chunks(peer, headers):
                digest.update(data)
                length += len(data)
            if has_body(headers):
                rec.log(self.conn, "body", length=length,
                        sha256=digest.hexdigest())
            tokens = [t.strip().lower()
                      for t in headers.get("connection", "").split(",")]
            # The client asked for the end: the answer says it is the
            # last (RFC 9112 section 9.6), or a client that keeps
            # connections (curl does, whatever it sent) may reuse this one
            # after the close and be reset.
            closing = "close" in tokens or (version == "HTTP/1.0" and
                                            "keep-alive" not in tokens)
            keep = self.respond(sock, peer, method, target, headers,
                                "%s %d\n" % (digest.hexdigest(), length),
                                closing)
            if closing or not keep:
                return
            rec.log(self.conn, "idle")

    def respond(self, sock, peer, method, target, headers, echo, closing):
        """Send one response (the last one, saying so, when closing);
        False when the connection must end."""
        path = target
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        path = path.split("?", 1)[0]
        head_only = method == "HEAD"
        base = [("X-Origin-Conn", self.conn)]
        if closing:
            base.append(("Connection", "close"))
        name = path.split("/")[1] if path.startswith("/") else ""

        if path == "/hello" or path == "/echo":
            body = HELLO if path == "/hello" else echo.encode()
            send_head(sock, 200, base + [("Content-Type", "text/plain"),
                                         ("Content-Length", len(body))])
            if not head_only:
                sock.sendall(body)
            return True

        if name == "bytes" or name == "chunked":
            n = route_number(path)
            if name == "bytes":
                send_head(sock, 200, base + [
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", n)])
                if not head_only:
                    for block in pattern(n):
                        sock.sendall(block)
            else:
                send_head(sock, 200, base + [
                    ("Content-Type", "application/octet-stream"),
                    ("Transfer-Encoding", "chunked")])
                if not head_only:
                    for block in pattern(n):
                        sock.sendall(b"%x\r\n" % len(block) + block +
                                     b"\r\n")
                    sock.sendall(b"0\r\n\r\n")
            return True

        if name == "status":
            status = route_number(path)
            if status < 200 or status in (204, 304):
                send_head(sock, status, base)
            else:
                send_head(sock, status, base + [("Content-Length", 0)])
            return True

        if name == "close" or name == "gzipped":
            n = route_number(path, -1)
            coding = [("Transfer-Encoding", "gzip")] if name == "gzipped" \
                else []
            send_head(sock, 200, base + [("Content-Type", "text/plain")] +
                      coding +
                      ([] if closing else [("Connection", "close")]))
            if not head_only:
                if n < 0:
                    sock.sendall(CLOSE_BODY)
                else:
                    for block in pattern(n):
                        sock.sendall(block)
            return False

        if name == "drop":
            return False

        if name == "late204":
            # A 204, then 20 ms later an answer nobody asked for (no
            # Nagle: the two writes leave as two segments, 20 ms apart).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            send_head(sock, 204, base)
            time.sleep(0.02)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
                         b"stray\n")
            return True

        if name == "wait":
            # Read, then answer only N seconds later.
            body = ("waited for %s\n" % path).encode()
            time.sleep(route_number(path))
            send_head(sock, 200, base + [("Content-Type", "text/plain"),
                                         ("Content-Length", len(body))])
            if not head_only:
                sock.sendall(body)
            return True

        if name == "slow":
            n = route_number(path, 5)
            send_head(sock, 200, base + [("Content-Type", "text/plain"),
                                         ("Content-Length", 5 * n)])
            if not head_only:
                for _ in range(n):
                    time.sleep(0.2)
                    sock.sendall(b"slow\n")
            return True

        if path == "/upgrade":
            proto = headers.get("upgrade", "").lower()
            if proto not in ("echo", "websocket") or head_only:
                body = b"Upgrade: echo expected\n"
                send_head(sock, 426, base + [("Content-Type", "text/plain"),
                                             ("Content-Length", len(body))])
                if not head_only:
                    sock.sendall(body)
                return True
            send_head(sock, 101, base[:1] + [("Connection", "Upgrade"),
                                         ("Upgrade", proto)])
            while True:
                data = peer.read(65536)
                if not data:
                    return False
                sock.sendall(data)

        body = b"not found\n"
        send_head(sock, 404, base + [("Content-Type", "text/plain"),
                                     ("Content-Length", len(body))])
        if not head_only:
            sock.sendall(body)
        return True


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Server6(Server):
    address_family = socket.AF_INET6


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))

    def remember_sni(sslsock, name, _ctx):
        sslsock.origin_sni = name
        return None

    ctx.sni_callback = remember_sni
    return ctx


def main():
    p = argparse.ArgumentParser(description="pinproxy test origin server")
    p.add_argument("--port", type=int)
    p.add_argument("--host", default="127.0.0.1",
                   help="a loopback address to listen on (127.0.0.1, "
                   "or ::1)")
    p.add_argument("--cert")
    p.add_argument("--key")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--tls", dest="plain", action="store_false")
    mode.add_argument("--plain", dest="plain", action="store_true")
    p.set_defaults(plain=False)
    p.add_argument("--alpn")
    p.add_argument("--log")
    p.add_argument("--silent", action="store_true")
    p.add_argument("--delay", type=float, default=0,
                   help="seconds to wait before each TLS handshake")
    p.add_argument("--pattern", type=int, metavar="N")
    args = p.parse_args()

    if args.pattern is not None:
        out = sys.stdout.buffer
        for block in pattern(args.pattern):
            out.write(block)
        out.flush()
        return 0
    if args.port is None:
        p.error("--port is required")
    if not args.plain and not args.silent and (args.cert is None or
                                                args.key is None):
        p.error("--cert and --key are required with --tls")

    if not args.host.startswith("127.") and args.host != "::1":
        p.error("--host must be a 127.0.0.0/8 address or ::1")
    server = (Server6 if args.host == "::1" else Server)(
        (args.host, args.port), Handler)
    server.args = args
    server.recorder = Recorder(args.log)
    server.ctx = None
    if not args.plain and not args.silent:
        server.ctx = tls_context(args)
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
