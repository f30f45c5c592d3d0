#!/usr/bin/env python3
"""Clients for pinproxy's resource figures and soak run (bench/).

    clients.py idle --proxy PORT --pid PID --cafile CA --host NAME
                    --tunnel-port PORT [--count N] [--rounds K]
                    [--workers W]
        Measure pinproxy (PID) at rest, with COUNT idle plaintext client
        connections, COUNT idle blind tunnels to TUNNEL-PORT and COUNT idle
        intercepted connections to NAME (CONNECT NAME:443 and a completed
        TLS handshake verified against CA), each kind added to the ones
        already open, then after all are closed; then open and close the
        same connections again, K rounds in all (default 2); print a
        markdown table.

    clients.py soak --proxy PORT --pid PID --stats PORT --cafile CA
                    --root ROOT --origin-port PORT --csv FILE
                    [--minutes M] [--rate R] [--workers W]
        Send mixed traffic at R requests per second for M minutes, sample
        pinproxy's VmRSS and descriptors every 10 s into FILE, take a quiet
        sample one minute in and at the end, and print the comparison and
        the unexpected results per request type. Exit 0 when the resources
        stayed flat, 1 when not.

Host names: NAME (api.test in the scripts) is pinned and matches, bad.test
is pinned with pins that never match, tunnel.test is covered by no pin set.
Everything runs on 127.0.0.1.
"""

import argparse
import concurrent.futures
import csv
import hashlib
import os
import random
import resource
import select
import signal
import socket
import ssl
import sys
import threading
import time

HELLO = b"hello from origin\n"
BIG = 1 << 20
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
IO_TIMEOUT = 30
SAMPLE_SECONDS = 10
NOFILE = 8192


# -------------------------------------------------------------------------
# pinproxy as seen from /proc and /metrics

def vm_rss(pid):
    """VmRSS of pid in KiB."""
    with open("/proc/%d/status" % pid, encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_kinds(pid):
    """{what a descriptor points at, inode numbers dropped: count}."""
    kinds = {}
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        target = target.split(":[", 1)[0]
        kinds[target] = kinds.get(target, 0) + 1
    return kinds


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] not in "ZX"
    except OSError:
        return False


def settle_fds(pid, want=None, quiet=1.0, limit=30.0):
    """Wait until pinproxy's descriptor count equals want (or, without
    want, stops changing for quiet seconds); return the last count."""
    deadline = time.monotonic() + limit
    last = fd_count(pid)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        n = fd_count(pid)
        if want is not None and n == want:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif want is None and time.monotonic() - since >= quiet:
            return n
    return last


def metrics(port):
    """The samples of GET /metrics as {series: value}."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: stats\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    out = {}
    body = data.partition(b"\r\n\r\n")[2].decode("ascii", "replace")
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# -------------------------------------------------------------------------
# HTTP over a plain or TLS socket

class Reader:
    """Buffered reads of one HTTP/1.1 response stream."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def head(self):
        """(status, {lower-case name: value}) of the next response."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise ValueError("response head too large")
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def take(self, n):
        """Up to n buffered or newly read bytes (at least one)."""
        if not self.buf:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def body(self, headers, keep=4096, stop_after=None):
        """(length, sha256, first keep bytes) of the body; with stop_after,
        return once that many bytes arrived."""
        digest = hashlib.sha256()
        first = b""
        length = 0

        def got(data):
            nonlocal first, length
            digest.update(data)
            if len(first) < keep:
                first += data[:keep - len(first)]
            length += len(data)

        if "chunked" in headers.get("transfer-encoding", "").lower():
            while stop_after is None or length < stop_after:
                while b"\r\n" not in self.buf:
                    self.fill()
                line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    # Trailer fields, if any, up to the empty line.
                    while True:
                        while b"\r\n" not in self.buf:
                            self.fill()
                        line, _, self.buf = self.buf.partition(b"\r\n")
                        if line == b"":
                            break
                    break
                while size > 0:
                    data = self.take(size)
                    got(data)
                    size -= len(data)
                while len(self.buf) < 2:
                    self.fill()
                self.buf = self.buf[2:]
        elif "content-length" in headers:
            left = int(headers["content-length"])
            while left > 0 and (stop_after is None or length < stop_after):
                data = self.take(min(left, 65536))
                got(data)
                left -= len(data)
        else:
            while stop_after is None or length < stop_after:
                try:
                    got(self.take(65536))
                except EOFError:
                    break
        return length, digest.hexdigest(), first


def pattern_sha256(n):
    """SHA-256 of tests/origin.py's /bytes/N body (byte i is i % 251)."""
    block = bytes(range(251)) * 261
    digest = hashlib.sha256()
    while n > 0:
        k = min(n, len(block))
        digest.update(block[:k])
        n -= k
    return digest.hexdigest()


def proxy_socket(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def connect_tunnel(port, target):
    """A client socket after CONNECT target and the exact 200 answer."""
    s = proxy_socket(port)
    try:
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" %
                  (target.encode(), target.encode()))
        r = Reader(s)
        while len(r.buf) < len(ESTABLISHED) and b"\r\n\r\n" not in r.buf:
            r.fill()
        if not r.buf.startswith(ESTABLISHED):
            raise ValueError("CONNECT answered %r" %
                             r.buf.split(b"\r\n", 1)[0])
        return s
    except BaseException:
        s.close()
        raise


def client_hello(sni):
    """The bytes of a TLS ClientHello for sni, made with memory BIOs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_context(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < NOFILE:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(NOFILE, hard), hard))


# -------------------------------------------------------------------------
# idle: memory and descriptors per idle connection

def closed_count(socks):
    """How many of socks the peer has closed or reset."""
    p = select.poll()
    for s in socks:
        p.register(s.fileno(), select.POLLRDHUP)
    return sum(1 for _, ev in p.poll(0)
               if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR))


def cmd_idle(a):
    raise_nofile()
    pid = a.pid
    n = a.count
    ctx = tls_context(a.cafile)
    hello = client_hello("tunnel.test")
    tunnel_target = "127.0.0.1:%d" % a.tunnel_port
    rows = []
    held = []

    def snapshot(label, conns, before):
        rss, fds = vm_rss(pid), fd_count(pid)
        row = {"label": label, "conns": conns, "rss": rss, "fds": fds,
               "kib": "", "fdper": "", "closed": ""}
        if before is not None:
            row["kib"] = "%.1f" % ((rss - before[0]) / float(n))
            row["fdper"] = "%.2f" % ((fds - before[1]) / float(n))
            row["closed"] = str(closed_count(held))
        rows.append(row)
        print("# %s: VmRSS %d KiB, %d fds" % (label, rss, fds),
              file=sys.stderr, flush=True)
        return rss, fds

    def steady():
        time.sleep(1.0)
        return settle_fds(pid, quiet=1.5)

    def intercepted(_):
        s = connect_tunnel(a.proxy, "%s:443" % a.host)
        try:
            return ctx.wrap_socket(s, server_hostname=a.host)
        except BaseException:
            s.close()
            raise

    def tunnel(_):
        s = connect_tunnel(a.proxy, tunnel_target)
        s.sendall(hello)
        return s

    def open_all(fn):
        with concurrent.futures.ThreadPoolExecutor(a.workers) as ex:
            futures = [ex.submit(fn, i) for i in range(n)]
            errors = 0
            first = None
            for f in futures:
                try:
                    held.append(f.result())
                except Exception as e:
                    errors += 1
                    first = first or "%s: %s" % (type(e).__name__, e)
        if errors:
            print("# %d connections failed, first: %s" % (errors, first),
                  file=sys.stderr, flush=True)
        return errors

    # Fresh, then after one connection of each kind was made and closed:
    # the forged leaf, the server context and the like exist from then on.
    snapshot("at rest (fresh start)", 0, None)
    for fn in (intercepted, tunnel):
        s = fn(0)
        s.close()
    steady()
    rest = snapshot("at rest (after one of each)", 0, None)

    kinds = (("idle plaintext", lambda i: proxy_socket(a.proxy), 1),
             ("idle blind tunnels", tunnel, 2),
             ("idle intercepted", intercepted, 2))
    failed = {}

    def open_kinds(rnd, per_kind_rows):
        before = (vm_rss(pid), fd_count(pid))
        for label, fn, per in kinds:
            started = time.monotonic()
            errors = open_all(fn)
            failed["%s (round %d)" % (label, rnd)] = errors
            settle_fds(pid, want=before[1] + per * (n - errors), limit=20.0)
            steady()
            print("# round %d, %s: %d opened in %.1f s" % (
                rnd, label, n - errors, time.monotonic() - started),
                file=sys.stderr, flush=True)
            if per_kind_rows:
                before = snapshot("+ %d %s" % (n, label), len(held), before)
            else:
                before = (vm_rss(pid), fd_count(pid))
        if not per_kind_rows:
            snapshot("round %d: all %d open again" % (rnd, len(held)),
                     len(held), None)

    def close_all(rnd):
        conns = len(held)
        for s in held:
            s.close()
        held.clear()
        settle_fds(pid, want=rest[1], limit=20.0)
        steady()
        return snapshot("round %d: all %d closed" % (rnd, conns), 0, None)

    # Round 1 measures each kind on top of the previous ones; later rounds
    # open the same connections again, which tells memory kept by the
    # allocator (reused: VmRSS does not grow) from memory lost (it grows
    # by about as much again).
    t0 = time.monotonic()
    open_kinds(1, True)
    after1 = after2 = close_all(1)
    for rnd in range(2, a.rounds + 1):
        open_kinds(rnd, False)
        after2 = close_all(rnd)

    print("| state | client conns | VmRSS KiB | fds | KiB / conn "
          "| fds / conn | closed by proxy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print("| %s | %d | %d | %d | %s | %s | %s |" % (
            r["label"], r["conns"], r["rss"], r["fds"], r["kib"],
            r["fdper"], r["closed"]))
    print()
    print("After closing: VmRSS %+d KiB against the rest value after round "
          "1 (%d → %d KiB) and %+d KiB after round %d (→ %d KiB); fds %+d "
          "and %+d (%d → %d → %d)." %
          (after1[0] - rest[0], rest[0], after1[0], after2[0] - rest[0],
           a.rounds, after2[0], after1[1] - rest[1], after2[1] - rest[1],
           rest[1], after1[1], after2[1]))
    bad = {k: v for k, v in failed.items() if v}
    if bad:
        print("Connections that could not be opened: %s." %
              ", ".join("%s %d" % kv for kv in bad.items()))
    print("%d rounds of %d connections took %.0f s." %
          (a.rounds, 3 * n, time.monotonic() - t0))
    ok = after1[1] == rest[1] and after2[1] == rest[1] and not bad
    return 0 if ok else 1


# -------------------------------------------------------------------------
# soak: mixed traffic at a fixed rate

class Soak:
    """The request types, their counters and the probes of pinproxy."""

    # (type, weight): one request of a type is one client connection.
    MIX = (
        ("plain-small", 25),      # 1-3 keep-alive GET /hello, pinned
        ("plain-1mib", 5),        # GET /bytes/1048576, pinned
        ("intercept", 20),        # CONNECT, forged leaf, GET /hello
        ("pin-mismatch-plain", 5),    # GET http://bad.test/ → 502
        ("pin-mismatch-connect", 5),  # CONNECT bad.test → TLS alert
        ("tunnel", 20),           # CONNECT by IP, SNI unpinned, GET /hello
        ("abort-download", 7),    # plaintext 1 MiB, close after 64 KiB
        ("abort-upload", 6),      # POST of 1 MiB, close after 256 KiB
        ("abort-intercept", 7),   # intercepted 1 MiB, close after 64 KiB
    )

    def __init__(self, a):
        self.a = a
        self.pid = a.pid
        self.ctx = tls_context(a.cafile)
        self.origin_ctx = tls_context(a.root)
        self.big_sha = pattern_sha256(BIG)
        self.lock = threading.Lock()
        self.probe_lock = threading.Lock()
        self.count = {t: 0 for t, _ in self.MIX}
        self.bad = {t: 0 for t, _ in self.MIX}
        self.reasons = {t: [] for t, _ in self.MIX}
        self.late = 0
        self.done = 0
        self.t0 = time.monotonic()
        self.stop_sampler = threading.Event()
        self.csv_file = open(a.csv, "w", newline="", encoding="ascii")
        self.csv = csv.writer(self.csv_file)
        self.csv.writerow(["t_s", "phase", "rss_kib", "fds",
                           "conns_active", "requests", "unexpected"])
        self.csv_file.flush()
        self.phase = "load"
        self.quiet = {}
        self.quiet_fds = {}

    # -- probes -----------------------------------------------------------

    def sample(self, phase):
        with self.probe_lock:
            try:
                m = metrics(self.a.stats)
                active = int(m.get("pinproxy_connections_active", -1))
            except OSError:
                active = -1
            rss, fds = vm_rss(self.pid), fd_count(self.pid)
        with self.lock:
            row = ["%.0f" % (time.monotonic() - self.t0), phase, rss, fds,
                   active, self.done, sum(self.bad.values())]
            self.csv.writerow(row)
            self.csv_file.flush()
        return rss, fds

    def sampler(self):
        while not self.stop_sampler.wait(SAMPLE_SECONDS):
            if not alive(self.pid):
                return
            try:
                self.sample(self.phase)
            except OSError:
                return

    def quiet_sample(self, label):
        """No request in flight, no client connection, the upstream pool
        emptied by a reload: then VmRSS and descriptors."""
        try:
            self.take_quiet_sample(label)
        except OSError as e:
            print("clients.py: no quiet sample %s: %s" % (label, e),
                  file=sys.stderr)
        self.phase = "load"

    def take_quiet_sample(self, label):
        self.phase = "pause"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if metrics(self.a.stats).get(
                    "pinproxy_connections_active", 1) == 0:
                break
            time.sleep(0.2)
        key = 'pinproxy_config_reloads_total{result="ok"}'
        before = metrics(self.a.stats).get(key, 0)
        os.kill(self.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if metrics(self.a.stats).get(key, 0) > before:
                break
            time.sleep(0.1)
        with self.probe_lock:
            settle_fds(self.pid, quiet=1.0, limit=10)
        time.sleep(0.5)
        rss, fds = self.sample(label)
        self.quiet[label] = (time.monotonic() - self.t0, rss, fds)
        self.quiet_fds[label] = fd_kinds(self.pid)

    # -- the request types ------------------------------------------------

    def expect_hello(self, r, what):
        status, headers = r.head()
        if status != 200:
            return "%s: status %d" % (what, status)
        length, _, first = r.body(headers)
        if first != HELLO:
            return "%s: body %r" % (what, first[:40])
        return None

    def plain_small(self):
        s = proxy_socket(self.a.proxy)
        try:
            r = Reader(s)
            n = random.randint(1, 3)
            for i in range(n):
                close = b"Connection: close\r\n" if i == n - 1 else b""
                s.sendall(b"GET http://api.test/hello HTTP/1.1\r\n"
                          b"Host: api.test\r\n" + close + b"\r\n")
                err = self.expect_hello(r, "request %d" % (i + 1))
                if err:
                    return err
            return None
        finally:
            s.close()

    def big_ok(self, r):
        status, headers = r.head()
        if status != 200:
            return "status %d" % status
        length, digest, _ = r.body(headers, keep=0)
        if length != BIG or digest != self.big_sha:
            return "body of %d bytes, sha256 %s" % (length, digest[:12])
        return None

    def plain_big(self):
        s = proxy_socket(self.a.proxy)
        try:
            s.sendall(b"GET http://api.test/bytes/%d HTTP/1.1\r\n"
                      b"Host: api.test\r\nConnection: close\r\n\r\n" % BIG)
            return self.big_ok(Reader(s))
        finally:
            s.close()

    def intercepted(self, host):
        s = connect_tunnel(self.a.proxy, "%s:443" % host)
        try:
            return self.ctx.wrap_socket(s, server_hostname=host)
        except BaseException:
            s.close()
            raise

    def intercept(self):
        t = self.intercepted("api.test")
        try:
            t.sendall(b"GET /hello HTTP/1.1\r\nHost: api.test\r\n"
                      b"Connection: close\r\n\r\n")
            return self.expect_hello(Reader(t), "intercepted")
        finally:
            t.close()

    def mismatch_plain(self):
        s = proxy_socket(self.a.proxy)
        try:
            s.sendall(b"GET http://bad.test/hello HTTP/1.1\r\n"
                      b"Host: bad.test\r\n\r\n")
            status, headers = Reader(s).head()
            ps = headers.get("proxy-status", "")
            if status != 502 or 'details="pin-mismatch"' not in ps:
                return "status %d, Proxy-Status %r" % (status, ps)
            return None
        finally:
            s.close()

    def mismatch_connect(self):
        s = connect_tunnel(self.a.proxy, "bad.test:443")
        try:
            t = self.ctx.wrap_socket(s, server_hostname="bad.test")
        except ssl.SSLError:
            return None
        except ConnectionResetError:
            return None
        finally:
            s.close()
        t.close()
        return "the TLS handshake completed despite the pin mismatch"

    def tunnel(self):
        s = connect_tunnel(self.a.proxy, "127.0.0.1:%d" % self.a.origin_port)
        try:
            t = self.origin_ctx.wrap_socket(s, server_hostname="tunnel.test")
        except BaseException:
            s.close()
            raise
        try:
            t.sendall(b"GET /hello HTTP/1.1\r\nHost: tunnel.test\r\n"
                      b"Connection: close\r\n\r\n")
            return self.expect_hello(Reader(t), "tunnelled")
        finally:
            t.close()

    def abort(self, sock, rst):
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()

    def abort_download(self):
        s = proxy_socket(self.a.proxy)
        try:
            s.sendall(b"GET http://api.test/bytes/%d HTTP/1.1\r\n"
                      b"Host: api.test\r\n\r\n" % BIG)
            r = Reader(s)
            status, headers = r.head()
            if status != 200:
                return "status %d" % status
            r.body(headers, keep=0, stop_after=65536)
            return None
        finally:
            self.abort(s, random.random() < 0.5)

    def abort_upload(self):
        s = proxy_socket(self.a.proxy)
        chunk = b"u" * 65536
        try:
            s.sendall(b"POST http://api.test/echo HTTP/1.1\r\n"
                      b"Host: api.test\r\nContent-Length: %d\r\n\r\n" % BIG)
            for _ in range(4):
                s.sendall(chunk)
            return None
        finally:
            self.abort(s, random.random() < 0.5)

    def abort_intercept(self):
        t = self.intercepted("api.test")
        try:
            t.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: api.test\r\n\r\n"
                      % BIG)
            r = Reader(t)
            status, headers = r.head()
            if status != 200:
                return "status %d" % status
            r.body(headers, keep=0, stop_after=65536)
            return None
        finally:
            t.close()

    # -- the schedule -----------------------------------------------------

    def run_one(self, kind, due):
        fn = {
            "plain-small": self.plain_small,
            "plain-1mib": self.plain_big,
            "intercept": self.intercept,
            "pin-mismatch-plain": self.mismatch_plain,
            "pin-mismatch-connect": self.mismatch_connect,
            "tunnel": self.tunnel,
            "abort-download": self.abort_download,
            "abort-upload": self.abort_upload,
            "abort-intercept": self.abort_intercept,
        }[kind]
        late = time.monotonic() - due > 1.0
        try:
            err = fn()
        except Exception as e:
            err = "%s: %s" % (type(e).__name__, e)
        with self.lock:
            self.count[kind] += 1
            self.done += 1
            self.late += late
            if err:
                self.bad[kind] += 1
                if len(self.reasons[kind]) < 3:
                    self.reasons[kind].append(err)

    def traffic(self, pool, seconds, rng):
        """Submit requests at the rate for seconds, then wait for all."""
        kinds = [k for k, _ in self.MIX]
        weights = [w for _, w in self.MIX]
        start = time.monotonic()
        futures = []
        i = 0
        while True:
            due = start + i / self.a.rate
            if due - start >= seconds or not alive(self.pid):
                break
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            kind = rng.choices(kinds, weights)[0]
            futures.append(pool.submit(self.run_one, kind, due))
            i += 1
            if len(futures) > 4096:
                futures = [f for f in futures if not f.done()]
        concurrent.futures.wait(futures, timeout=4 * IO_TIMEOUT)

    def run(self):
        a = self.a
        rng = random.Random(a.seed)
        random.seed(a.seed + 1)
        sampler = threading.Thread(target=self.sampler, daemon=True)
        self.sample("start")
        sampler.start()
        with concurrent.futures.ThreadPoolExecutor(a.workers) as pool:
            self.traffic(pool, 60, rng)
            if alive(self.pid):
                self.quiet_sample("quiet-1min")
            self.traffic(pool, a.minutes * 60 - 60, rng)
        if alive(self.pid):
            self.quiet_sample("quiet-end")
        self.stop_sampler.set()
        sampler.join(timeout=5)
        self.csv_file.close()
        return self.report()

    def report(self):
        a = self.a
        total = sum(self.count.values())
        print("soak: %d minutes at %g requests/s: %d requests "
              "(%d started more than 1 s late)" %
              (a.minutes, a.rate, total, self.late))
        print()
        if len(self.quiet) < 2:
            print("pinproxy is no longer running: no quiet sample to "
                  "compare")
            print()
            ok = False
        else:
            t1, rss1, fds1 = self.quiet["quiet-1min"]
            t2, rss2, fds2 = self.quiet["quiet-end"]
            limit = max(rss1 * 0.05, 2048)
            rss_ok = abs(rss2 - rss1) <= limit
            fds_ok = abs(fds2 - fds1) <= 2
            ok = rss_ok and fds_ok
            print("| quiet sample | t (s) | VmRSS KiB | fds |")
            print("| --- | ---: | ---: | ---: |")
            print("| one minute in | %.0f | %d | %d |" % (t1, rss1, fds1))
            print("| end | %.0f | %d | %d |" % (t2, rss2, fds2))
            print()
            print("VmRSS %+d KiB (%+.1f%%, limit ±%d KiB): %s; "
                  "fds %+d (limit ±2): %s" %
                  (rss2 - rss1, 100.0 * (rss2 - rss1) / rss1, limit,
                   "ok" if rss_ok else "out of bounds", fds2 - fds1,
                   "ok" if fds_ok else "out of bounds"))
            k1 = self.quiet_fds["quiet-1min"]
            k2 = self.quiet_fds["quiet-end"]
            moved = ["%s %+d" % (k, k2.get(k, 0) - k1.get(k, 0))
                     for k in sorted(set(k1) | set(k2))
                     if k1.get(k, 0) != k2.get(k, 0)]
            if moved:
                print("descriptors that changed: %s" % ", ".join(moved))
            print()
        print("| request type | requests | unexpected | first unexpected |")
        print("| --- | ---: | ---: | --- |")
        for kind, _ in self.MIX:
            first = self.reasons[kind][0] if self.reasons[kind] else ""
            print("| %s | %d | %d | %s |" % (kind, self.count[kind],
                  self.bad[kind], first.replace("|", "/")[:100]))
        print()
        print("unexpected results: %d of %d" %
              (sum(self.bad.values()), total))
        print("samples: %s" % a.csv)
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


def cmd_soak(a):
    raise_nofile()
    if a.minutes < 2:
        print("clients.py: --minutes must be at least 2", file=sys.stderr)
        return 2
    return Soak(a).run()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--proxy", type=int, required=True)
    i.add_argument("--pid", type=int, required=True)
    i.add_argument("--cafile", required=True)
    i.add_argument("--host", required=True)
    i.add_argument("--tunnel-port", type=int, required=True)
    i.add_argument("--count", type=int, default=1000)
    i.add_argument("--workers", type=int, default=50)
    i.add_argument("--rounds", type=int, default=2)
    s = sub.add_parser("soak")
    s.add_argument("--proxy", type=int, required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--stats", type=int, required=True)
    s.add_argument("--cafile", required=True)
    s.add_argument("--root", required=True)
    s.add_argument("--origin-port", type=int, required=True)
    s.add_argument("--csv", required=True)
    s.add_argument("--minutes", type=float, default=10)
    s.add_argument("--rate", type=float, default=50)
    s.add_argument("--workers", type=int, default=32)
    s.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    return cmd_idle(a) if a.cmd == "idle" else cmd_soak(a)


if __name__ == "__main__":
    sys.exit(main())
