#!/usr/bin/env python3
"""A misbehaving origin server for pinproxy's fault tests.

Each connection is served in its own thread, the same way, by one mode:

    badorigin.py --port P --mode MODE [--bind ADDR] [--cert CHAIN.pem
                 --key KEY [--tls12]] [--size N] [--after N] [--status N]
                 [--upgrade TOKENS] [--log FILE]

Modes (TLS first when --cert and --key are given, except alert, garbage
and rst-hello, which never speak TLS):
    hello       answer every request with 200 "hello from badorigin\\n"
                (/size/N: N bytes "x"; /close: then close), each response
                in one write
    rst-body    answer the first request with Content-Length SIZE, send
                AFTER bytes of it, then reset the connection (SO_LINGER 0)
    nohead      read the request head, then close without a byte
    early       read the request head and answer at once, before any
                body: "413 Content Too Large", Connection: close, a body
                of SIZE bytes "e" in ten parts 0.1 s apart; then read
                (and drop) what comes until the client's end, and close
    stall       read the request head, then nothing more (no byte of a
                body, no answer) until the connection is reset or
                IO_TIMEOUT passes
    cut         answer the first request with a close-delimited body, send
                AFTER bytes of it, then end the TCP connection (a FIN)
                without a TLS close_notify: a truncated body
    end         read until the client's end, and log how it ended
    banner      speak first ("220 banner ready\\r\\n"), then as end
    banner-close  speak first, then end the TLS session (close_notify) and
                the connection, without waiting for the client's
    notify-back read the request head, then until the client's end; answer
                a close_notify with one (as RFC 5246 has a TLS 1.2 server
                do, dropping what it had not sent: here, the whole answer)
    tls-close   close as soon as the TLS handshake is done
    alert       read the ClientHello, answer a fatal handshake_failure
                alert, close
    garbage     read the ClientHello, answer bytes that are not TLS, close
                (to a plaintext request: bytes that are not HTTP)
    rst-hello   read the ClientHello, then reset the connection
    sink        TLS: end its side at once (close_notify, then FIN) and
                read nothing for AFTER ms (a 4 KiB receive buffer), then
                read what comes until its end; log "sunk" with the bytes
                and how it ended (eof, or the error)
    stream-sink TLS: send until a send waits a second (nobody reads),
                then as sink, without ending its side
    early-sink  read the request head, answer 200 with close and no body
                0.5 s later (the client's body sent meanwhile waits in the
                kernel), then as sink (close_notify, FIN, the body read
                AFTER ms later)
    switch-answer  as switch, then AFTER ms later (0: in the same write
                as good as) a whole response, 200 "answer after a 101\\n",
                as if the 101 had been no switch
    switch      answer the first request, whatever it asked for, with
                "101 Switching Protocols" and "Upgrade: TOKENS" (default
                websocket), then log every byte that follows as data
    hints-late  answer every request with "103 Early Hints", then 1 s
                later with 200 "late answer from badorigin\\n" (a client
                that took the 103 for the answer has sent its next
                request by then)
    interims    answer the first request with "103 Early Hints" heads
                without end, as fast as they are taken; log how many
                went before the client left (interims {n})
    trickle     answer the first request with a head that never ends: a
                status line, then a header's bytes, one each 0.2 s; log
                how many went before the connection ended (trickled {n})
    status      answer every request with an empty response of status
                STATUS (any three digits, e.g. 600 or 099)
    headbody    answer a HEAD with "Content-Length: 40" (for /nocl: no
                length at all) and, 0.2 s later,
                a whole second response "200 ... POISON" (the body a HEAD
                must not have, in a later write), keeping the connection;
                any other request with 200 "clean", then close

--tls12 caps TLS at version 1.2. --bind takes an IPv4 or IPv6 address
(default 127.0.0.1). It prints
"ready" once listening. Log events, one JSON object per line: start (no
"conn"; a restart numbers connections from 1 again), then, all with
"conn": accept, tls, tls_error, request {path, upgrade}, data {text}
(latin-1), end {how: close_notify or bare}, reset, close.
"""

import argparse
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time

HELLO = b"hello from badorigin\n"
ALERT_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"
GARBAGE = b"this is not a TLS ServerHello\r\n" * 8
IO_TIMEOUT = 30
MAX_HEAD = 65536


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
        with self.lock:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()


def read_head(sock, buf):
    """The next request head from sock (buf holds what came before), as
    (head, rest); head is None when the peer closed first."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None, b""
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def reset(sock):
    """Close with a TCP RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


class Handler(socketserver.BaseRequestHandler):
    """One connection, served by the mode of the server."""

    def handle(self):
        server = self.server
        rec = server.recorder
        self.conn = rec.next_conn()
        rec.log(self.conn, "accept", peer=str(self.client_address[0]))
        raw = self.request
        raw.settimeout(IO_TIMEOUT)
        mode = server.args.mode
        error = None
        if mode in ("sink", "stream-sink", "early-sink"):
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            if mode == "rst-hello":
                raw.recv(65536)
                rec.log(self.conn, "reset")
                reset(raw)
            elif mode in ("alert", "garbage"):
                raw.recv(65536)
                raw.sendall(ALERT_HANDSHAKE_FAILURE if mode == "alert"
                            else GARBAGE)
                raw.close()
            else:
                sock = self.start_tls(raw)
                if sock is not None:
                    getattr(self, "mode_" + mode.replace("-", "_"))(sock)
        except (OSError, ssl.SSLError, ValueError) as e:
            error = "%s: %s" % (type(e).__name__, e)
        if error is None:
            rec.log(self.conn, "close")
        else:
            rec.log(self.conn, "close", error=error)

    def start_tls(self, raw):
        """The socket to speak HTTP on, or None when TLS failed."""
        ctx = self.server.ctx
        if ctx is None:
            return raw
        sock = ctx.wrap_socket(raw, server_side=True,
                               do_handshake_on_connect=False)
        try:
            sock.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.server.recorder.log(self.conn, "tls_error", error=str(e))
            sock.close()
            return None
        self.server.recorder.log(self.conn, "tls", version=sock.version())
        return sock

    def read_request(self, sock, buf):
        head, rest = read_head(sock, buf)
        if head is not None:
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            upgrade = ""
            for field in head.split(b"\r\n")[1:]:
                name, _, value = field.partition(b":")
                if name.strip().lower() == b"upgrade":
                    upgrade = value.strip().decode("latin-1")
            self.server.recorder.log(
                self.conn, "request",
                path=parts[1] if len(parts) > 1 else line, upgrade=upgrade)
        return head, rest

    def mode_early_sink(self, sock):
        head, _ = self.read_request(sock, b"")
        if head is not None:
            time.sleep(0.5)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            self.mode_sink(sock)

    def mode_stream_sink(self, sock):
        sock.settimeout(1)
        try:
            while True:
                sock.sendall(b"d" * 65536)
        except OSError:
            pass
        self.mode_sink(sock, end=False)

    def mode_sink(self, sock, end=True):
        # Its own descriptor for the TCP stream under the TLS one.
        tcp = socket.socket(fileno=os.dup(sock.fileno()))
        if end:
            sock.setblocking(False)
            try:
                sock.unwrap()
            except (ssl.SSLError, OSError):
                pass
            tcp.shutdown(socket.SHUT_WR)
        time.sleep(self.server.args.after / 1000)
        tcp.setblocking(True)
        tcp.settimeout(IO_TIMEOUT)
        n, end = 0, "eof"
        try:
            while True:
                data = tcp.recv(65536)
                if not data:
                    break
                n += len(data)
        except OSError as e:
            end = type(e).__name__
        tcp.close()
        self.server.recorder.log(self.conn, "sunk", bytes=n, end=end)

    def mode_hello(self, sock):
        buf = b""
        while True:
            head, buf = self.read_request(sock, buf)
            if head is None:
                break
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            body, last = HELLO, path == b"/close"
            if path.startswith(b"/size/"):
                body = b"x" * int(path[6:])
            # One write per response: no wait for a delayed ACK.
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n%s\r\n"
                         % (len(body), b"Connection: close\r\n" if last
                            else b"") + body)
            if last:
                break
        sock.close()

    def mode_rst_body(self, sock):
        args = self.server.args
        head, _ = self.read_request(sock, b"")
        if head is None:
            sock.close()
            return
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/"
                     b"octet-stream\r\nContent-Length: %d\r\n\r\n"
                     % args.size)
        left = args.after
        block = b"x" * 65536
        while left > 0:
            n = min(left, len(block))
            sock.sendall(block[:n])
            left -= n
        self.server.recorder.log(self.conn, "reset", sent=args.after)
        reset(sock)

    def mode_cut(self, sock):
        args = self.server.args
        head, _ = self.read_request(sock, b"")
        if head is None:
            sock.close()
            return
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/"
                     b"octet-stream\r\nConnection: close\r\n\r\n" +
                     b"x" * args.after)
        # The socket's own shutdown: a FIN, and TLS is dropped unsaid.
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def mode_hints_late(self, sock):
        buf = b""
        while True:
            head, buf = self.read_request(sock, buf)
            if head is None:
                return
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\n"
                         b"Link: </style.css>; rel=preload\r\n\r\n")
            time.sleep(1)
            body = b"late answer from badorigin\n"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))

    def mode_interims(self, sock):
        head, _ = self.read_request(sock, b"")
        n = 0
        try:
            while head is not None:
                sock.sendall(b"HTTP/1.1 103 Early Hints\r\n"
                             b"Link: </style.css>; rel=preload\r\n\r\n")
                n += 1
        finally:
            self.server.recorder.log(self.conn, "interims", n=n)
        sock.close()

    def mode_trickle(self, sock):
        head, _ = self.read_request(sock, b"")
        n = 0
        try:
            if head is not None:
                sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while True:
                    time.sleep(0.2)
                    sock.sendall(b"a")
                    n += 1
        except OSError:
            pass
        finally:
            self.server.recorder.log(self.conn, "trickled", n=n)
        sock.close()

    def mode_end(self, sock):
        sock.suppress_ragged_eofs = False
        how = "close_notify"
        try:
            while sock.recv(65536):
                pass
        except ssl.SSLEOFError:
            how = "bare"
        self.server.recorder.log(self.conn, "end", how=how)
        sock.close()

    def mode_banner(self, sock):
        sock.sendall(b"220 banner ready\r\n")
        self.mode_end(sock)

    def mode_banner_close(self, sock):
        sock.sendall(b"220 banner ready\r\n")
        if isinstance(sock, ssl.SSLSocket):
            sock.setblocking(False)
            try:
                sock = sock.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
        self.server.recorder.log(self.conn, "end", how="banner-close")
        sock.close()

    def mode_notify_back(self, sock):
        sock.suppress_ragged_eofs = False
        self.read_request(sock, b"")
        how = "close_notify"
        try:
            while sock.recv(65536):
                pass
            if isinstance(sock, ssl.SSLSocket):
                sock = sock.unwrap()
        except ssl.SSLEOFError:
            how = "bare"
        self.server.recorder.log(self.conn, "end", how=how)
        sock.close()

    def mode_tls_close(self, sock):
        sock.close()

    def switch(self, sock):
        """Read a request and answer 101 (UPGRADE): what came after
        the request's head, or None (the socket closed) without one."""
        head, rest = self.read_request(sock, b"")
        if head is None:
            sock.close()
            return None
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                     b"Connection: Upgrade\r\nUpgrade: %s\r\n\r\n"
                     % self.server.args.upgrade.encode("latin-1"))
        return rest

    def mode_switch(self, sock):
        rest = self.switch(sock)
        if rest is None:
            return
        data = rest
        while True:
            if data:
                self.server.recorder.log(self.conn, "data",
                                         text=data.decode("latin-1"))
            data = sock.recv(65536)
            if not data:
                break
        sock.close()

    def mode_switch_answer(self, sock):
        if self.switch(sock) is None:
            return
        # At once with AFTER 0, else AFTER ms later.
        if self.server.args.after:
            time.sleep(self.server.args.after / 1000)
        body = b"answer after a 101\n"
        try:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            while sock.recv(65536):
                pass
        except OSError:
            pass
        sock.close()

    def mode_status(self, sock):
        buf = b""
        while True:
            head, buf = self.read_request(sock, buf)
            if head is None:
                break
            sock.sendall(b"HTTP/1.1 %s Odd\r\nContent-Length: 0\r\n\r\n"
                         % self.server.args.status.encode("latin-1"))
        sock.close()

    def mode_headbody(self, sock):
        buf = b""
        while True:
            head, buf = self.read_request(sock, buf)
            if head is None:
                break
            if not head.startswith(b"HEAD "):
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                             b"Connection: close\r\n\r\nclean")
                break
            sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n" if b" /nocl " in
                         head.split(b"\r\n", 1)[0] else
                         b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
            time.sleep(0.2)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
                         b"POISON")
        sock.close()

    def mode_early(self, sock):
        self.read_request(sock, b"")
        size = self.server.args.size
        sock.sendall(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        for part in range(10):
            time.sleep(0.1)
            sock.sendall(b"e" * (size // 10 + (size % 10 if part == 9 else 0)))
        dropped = 0
        while True:
            data = sock.recv(65536)
            if not data:
                break
            dropped += len(data)
        self.server.recorder.log(self.conn, "dropped", bytes=dropped)
        sock.close()

    def mode_stall(self, sock):
        self.read_request(sock, b"")
        raw = sock
        deadline = time.monotonic() + IO_TIMEOUT
        # Watch for the end without reading: a reset shows as an error.
        while time.monotonic() < deadline:
            err = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.server.recorder.log(self.conn, "reset")
                break
            time.sleep(0.05)
        sock.close()

    def mode_nohead(self, sock):
        self.read_request(sock, b"")
        if isinstance(sock, ssl.SSLSocket):
            try:
                sock = sock.unwrap()
            except (ssl.SSLError, OSError):
                pass
        sock.close()


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Server6(Server):
    address_family = socket.AF_INET6


def main():
    p = argparse.ArgumentParser(description="misbehaving test origin")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--mode", required=True,
                   choices=["hello", "rst-body", "nohead", "stall", "early",
                            "cut",
                            "end",
                            "tls-close", "alert", "garbage", "rst-hello",
                            "switch", "status", "notify-back",
                            "headbody", "banner", "banner-close",
                            "interims", "hints-late", "switch-answer", "trickle",
                            "sink",
                            "stream-sink", "early-sink"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls12", action="store_true")
    p.add_argument("--size", type=int, default=10 * 1024 * 1024)
    p.add_argument("--after", type=int, default=256 * 1024)
    p.add_argument("--status", default="600")
    p.add_argument("--upgrade", default="websocket")
    p.add_argument("--log")
    args = p.parse_args()

    cls = Server6 if ":" in args.bind else Server
    server = cls((args.bind, args.port), Handler)
    server.args = args
    server.recorder = Recorder(args.log)
    server.ctx = None
    if args.cert and args.key:
        server.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.ctx.load_cert_chain(args.cert, args.key)
        if args.tls12:
            server.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
