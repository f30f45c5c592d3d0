#!/usr/bin/env python3
"""A CONNECT client for pinproxy's end-to-end tests.

It sends a CONNECT request by hand, reports the proxy's answer byte for
byte, and then drives a TLS handshake (or plain bytes) through the tunnel
with in-memory BIOs, so that a test controls exactly how the ClientHello
is cut into TCP segments.

    connect_client.py --proxy PORT --connect HOST:PORT [--sni NAME]
                      [--cafile FILE] [--alpn LIST] [--pad-alpn N]
                      [--split N] [--get PATH] [--host NAME]
                      [--send-plain | --send FILE [--until TEXT]]
                      [--head-out FILE] [--timeout S]
                      [--hello-with-connect] [--stall]
                      [--stop-reading N --hold S] [--wait-for FILE]
                      [--hold-finished FILE] [--leave S]
                      [--record-version HEX] [--alert-first]
                      [--junk-after-hello]
                      [--second-hello NAME] [--times] [--tls12]
                      [--predict-done] [--listen]

Output, one "key=value" per line (the value runs to the end of the line):
    reply=...    the proxy's answer head, with \\r and \\n escaped
    status=NNN   its status code
then, after a 200, either
    tls=ok, version=, alpn=, cert_issuer= (its CN), cert_san= (the
    subjectAltName entries, comma-separated) and, with --get, body= (the
    response body, escaped)
or tls=alert (a TLS alert ended the handshake), tls=closed (the
    connection ended without an alert) or tls=error (anything else:
    verification, timeout), each followed by reason=...
or, with --leave, left (the ClientHello was sent, and the connection
    closed S seconds later)
or, with --send-plain (an HTTP request instead of a ClientHello),
    plain=closed (the proxy closed) or plain=open (still open when the
    timeout expired), then received=N (the bytes the proxy sent)
--send FILE sends the bytes of FILE instead (pipelined requests, say) and
    adds data=... (what came back, escaped); --until TEXT stops reading
    once TEXT arrived (plain=until)

--hello-with-connect sends the ClientHello in the same write as the
CONNECT head, before the answer. --stall sends no more after the hello and
prints stall=closed and ms=N (how long after the 200 the proxy closed) or
stall=open (still open at the timeout). With --get, --stop-reading N
stops reading once N bytes of the response arrived, holds the connection
for --hold seconds without reading, and prints received=N, then held=S.
--wait-for FILE waits after the 200 (and --head-out) until FILE exists,
up to the timeout, before it sends anything more. --listen, after the handshake, sends nothing and reads
until the server's end: data=... (what came, escaped) and end=
(close_notify, or eof for a bare end). --hold-finished FILE
waits the same way with the client's last handshake message (its
Finished), once the server's flight has arrived (and creates FILE.held
then). --times adds first_ms= (from the hello sent to the first byte of
the server's answer; none when none came) and done_ms= (to the end of the
handshake, done or failed). --tls12 offers TLS 1.2 at most;
--predict-done (with it) does not wait for the server's ServerHelloDone
once its ServerKeyExchange came, but makes it up (it is always the same
four bytes) and answers at once, as no client following the protocol
does.
"""

import argparse
import os
import socket
import ssl
import sys
import time

SPLIT_PAUSE = 0.1
# A TLS 1.2 ServerHelloDone record: a handshake message of type 14, empty.
SERVER_HELLO_DONE = bytes([22, 3, 3, 0, 4, 14, 0, 0, 0])


def vm_rss_kb(pid):
    """The resident set size of process pid, in KiB (0: unknown)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def escape(data):
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


def read_head(sock):
    """The answer head up to and including the empty line, byte by byte,
    so that nothing after it is consumed."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        data = sock.recv(1)
        if not data:
            break
        head += data
    return head


def open_tunnel(port, target, timeout=10, first=b""):
    """Connect to the proxy on 127.0.0.1:port and send CONNECT target, with
    first in the same write; return the socket and the answer head. For
    the tests' own clients too (PYTHONPATH=tests)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                  % (target, target)).encode("latin-1") + first)
    return sock, read_head(sock)


def read_rest(sock, timeout=5, size=None):
    """What arrives until the peer closes, timeout seconds pass without a
    byte, or size bytes came. For the tests' own clients too."""
    sock.settimeout(timeout)
    out = b""
    try:
        while size is None or len(out) < size:
            data = sock.recv(65536)
            if not data:
                break
            out += data
    except OSError:
        pass
    return out


def read_response(sock):
    """One response framed by its Content-Length (none: no body), for the
    tests' own keep-alive clients: (status line, {lower-case name: value},
    body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise EOFError("closed after %r" % data)
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    while len(body) < int(fields.get("content-length", 0)):
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return lines[0], fields, body


def send_pieces(sock, data, pieces):
    """Send data in that many writes: the first one ends inside the TLS
    record header, the others share the rest."""
    if pieces <= 1 or len(data) < 8:
        sock.sendall(data)
        return
    cuts = [0, 3]
    rest = len(data) - 3
    for i in range(1, pieces - 1):
        cuts.append(3 + rest * i // (pieces - 1))
    cuts.append(len(data))
    for i in range(len(cuts) - 1):
        if i > 0:
            time.sleep(SPLIT_PAUSE)
        sock.sendall(data[cuts[i]:cuts[i + 1]])


def flush(sock, outgoing, pieces=1):
    data = outgoing.read()
    if data:
        send_pieces(sock, data, pieces)


def mutate_hello(data, args):
    """The first flight as --record-version, --alert-first and
    --junk-after-hello want it: another version in the first record's
    header, a warning alert record (close_notify) before it, a record of
    no TLS content type (99) behind it."""
    if args is not None and args.record_version:
        data = data[:1] + bytes.fromhex(args.record_version) + data[3:]
    if args is not None and args.alert_first:
        data = bytes([21, 3, 3, 0, 2, 1, 0]) + data
    if args is not None and args.junk_after_hello:
        data += bytes([99, 3, 3, 0, 5]) + b"hello"
    if args is not None and args.second_hello is not None:
        ctx = ssl.create_default_context()
        out = ssl.MemoryBIO()
        other = ctx.wrap_bio(ssl.MemoryBIO(), out,
                             server_hostname=args.second_hello or None)
        data += first_flight(other, out)
    return data


def has_key_exchange(data):
    """Whether data (the server's records from the start) holds a whole
    TLS 1.2 ServerKeyExchange record."""
    off = 0
    while len(data) - off >= 5:
        end = off + 5 + int.from_bytes(data[off + 3:off + 5], "big")
        if end > len(data):
            return False
        if data[off] == 22 and data[off + 5] == 12:
            return True
        off = end
    return False


def handshake(sock, obj, incoming, outgoing, pieces, hold=None, timeout=10,
              args=None, times=None):
    """The client's handshake; times gets "hello" and "first" (the first
    answer byte), monotonic."""
    first = True
    times = {} if times is None else times
    predict = args is not None and args.predict_done
    seen = b""
    while True:
        try:
            obj.do_handshake()
            if hold:
                with open(hold + ".held", "w") as f:
                    f.write("held\n")
                wait_for(hold, timeout)
            flush(sock, outgoing)
            return
        except ssl.SSLWantReadError:
            if first:
                data = mutate_hello(outgoing.read(), args)
                if data:
                    send_pieces(sock, data, pieces)
                times["hello"] = time.monotonic()
            else:
                flush(sock, outgoing)
            first = False
            data = sock.recv(65536)
            if data:
                times.setdefault("first", time.monotonic())
                incoming.write(data)
                seen += data if predict else b""
                if predict and has_key_exchange(seen):
                    incoming.write(SERVER_HELLO_DONE)
                    predict = False
            else:
                incoming.write_eof()


def print_times(args, times):
    """first_ms= and done_ms= for --times."""
    if not args.times or "hello" not in times:
        return
    done = time.monotonic()
    first = times.get("first")
    print("first_ms=%s\ndone_ms=%d" % (
        "none" if first is None else int((first - times["hello"]) * 1000),
        int((done - times["hello"]) * 1000)))


def name_of(cert, field):
    for rdn in cert.get(field, ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


def tls_client(args):
    """A client TLS object over memory BIOs: (obj, incoming, outgoing)."""
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.sni is None:
        ctx.check_hostname = False
    protocols = []
    for i in range(args.pad_alpn):
        protocols.append(("x-padding-%03d-" % i).ljust(200, "x"))
    if args.alpn:
        protocols += args.alpn.split(",")
    if protocols:
        ctx.set_alpn_protocols(protocols)
    incoming = ssl.MemoryBIO()
    outgoing = ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=args.sni)
    return obj, incoming, outgoing


def first_flight(obj, outgoing):
    """The ClientHello, produced without a connection."""
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def stall(sock, args):
    """Say nothing more; report when the proxy gives up on us."""
    start = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except socket.timeout:
        print("stall=open")
        return 1
    except OSError:
        pass
    print("stall=closed\nms=%d" % int((time.monotonic() - start) * 1000))
    return 0


def stop_reading(sock, obj, incoming, args):
    """Read until --stop-reading bytes came, then hold without reading."""
    received = 0
    while received < args.stop_reading:
        try:
            received += len(obj.read(65536))
            continue
        except ssl.SSLWantReadError:
            pass
        data = sock.recv(65536)
        if not data:
            break
        incoming.write(data)
    print("received=%d" % received, flush=True)
    time.sleep(args.hold)
    print("held=%g" % args.hold)
    return 0


def listen(sock, obj, incoming):
    data, end = b"", "eof"
    while True:
        try:
            chunk = obj.read(65536)
            if not chunk:
                end = "close_notify"
                break
            data += chunk
        except ssl.SSLZeroReturnError:
            end = "close_notify"
            break
        except ssl.SSLWantReadError:
            try:
                got = sock.recv(65536)
            except OSError:
                got = b""
            if not got:
                incoming.write_eof()
                continue
            incoming.write(got)
        except (ssl.SSLEOFError, ssl.SSLError):
            break
    print("data=%s\nend=%s" % (escape(data), end))
    return 0


def tls_exchange(sock, args, tls):
    obj, incoming, outgoing = tls
    times = {}
    try:
        handshake(sock, obj, incoming, outgoing, args.split,
                  args.hold_finished, args.timeout, args, times)
    except ssl.SSLError as e:
        print_times(args, times)
        # The client's own alert (a certificate it refuses) goes out, as
        # a client on a socket sends it.
        try:
            flush(sock, outgoing)
        except OSError:
            pass
        kind = "alert" if "ALERT" in (e.reason or "") or \
            "UNRECOGNIZED_NAME" in (e.reason or "") else "error"
        if isinstance(e, ssl.SSLEOFError):
            kind = "closed"
        print("tls=%s\nreason=%s" % (kind, e.reason or e))
        return 1
    except (OSError, ValueError) as e:
        print_times(args, times)
        print("tls=error\nreason=%s" % e)
        return 1
    print_times(args, times)
    cert = obj.getpeercert()
    sans = ",".join("%s:%s" % san for san in cert.get("subjectAltName", ()))
    print("tls=ok\nversion=%s\nalpn=%s\ncert_issuer=%s\ncert_san=%s" % (
        obj.version(), obj.selected_alpn_protocol(),
        name_of(cert, "issuer"), sans))
    if args.listen:
        return listen(sock, obj, incoming)
    if args.get is None:
        return 0
    obj.write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % (args.get, args.host or args.sni)).encode("latin-1"))
    flush(sock, outgoing)
    if args.stop_reading:
        return stop_reading(sock, obj, incoming, args)
    response = b""
    while True:
        try:
            chunk = obj.read(65536)
            if not chunk:
                break
            response += chunk
        except ssl.SSLWantReadError:
            data = sock.recv(65536)
            if not data:
                break
            incoming.write(data)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    print("body=%s" % escape(response.partition(b"\r\n\r\n")[2]))
    return 0


def plain_exchange(sock, args):
    if args.send:
        with open(args.send, "rb") as f:
            sock.sendall(f.read())
    else:
        sock.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n\r\n"
                      % (args.host or args.sni or "localhost")).encode())
    got = b""
    until = args.until.encode() if args.until else None
    state = "closed"
    try:
        while until is None or until not in got:
            data = sock.recv(65536)
            if not data:
                break
            got += data
        else:
            state = "until"
    except socket.timeout:
        state = "open"
    except OSError:
        pass
    print("plain=%s\nreceived=%d" % (state, len(got)))
    if args.send:
        print("data=%s" % escape(got))
    return 1 if state == "open" else 0


def wait_for(path, timeout):
    """Return once path exists, or after timeout seconds."""
    end = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.02)


def main():
    p = argparse.ArgumentParser(description="CONNECT test client")
    p.add_argument("--proxy", type=int, required=True)
    p.add_argument("--connect", required=True)
    p.add_argument("--sni")
    p.add_argument("--cafile")
    p.add_argument("--alpn")
    p.add_argument("--pad-alpn", type=int, default=0)
    p.add_argument("--split", type=int, default=1)
    p.add_argument("--get")
    p.add_argument("--host")
    p.add_argument("--send-plain", action="store_true")
    p.add_argument("--send")
    p.add_argument("--until")
    p.add_argument("--head-out")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--hello-with-connect", action="store_true")
    p.add_argument("--stall", action="store_true")
    p.add_argument("--stop-reading", type=int, default=0)
    p.add_argument("--hold", type=float, default=0)
    p.add_argument("--wait-for")
    p.add_argument("--hold-finished")
    p.add_argument("--listen", action="store_true")
    p.add_argument("--leave", type=float,
                   help="send the ClientHello, close SECONDS later")
    p.add_argument("--record-version",
                   help="the first record's version, 4 hex digits")
    p.add_argument("--alert-first", action="store_true",
                   help="send a warning alert record before the hello")
    p.add_argument("--junk-after-hello", action="store_true",
                   help="send a record of no TLS type behind the hello")
    p.add_argument("--second-hello",
                   help="send a second ClientHello naming NAME ('' for "
                   "none) right behind the first")
    p.add_argument("--times", action="store_true",
                   help="print first_ms= and done_ms= of the handshake")
    p.add_argument("--tls12", action="store_true",
                   help="offer TLS 1.2 at most")
    p.add_argument("--predict-done", action="store_true",
                   help="make up the server's ServerHelloDone (TLS 1.2)")
    args = p.parse_args()

    tls = tls_client(args)
    hello = first_flight(tls[0], tls[2]) if args.hello_with_connect else b""
    sock, head = open_tunnel(args.proxy, args.connect, args.timeout, hello)
    if args.head_out:
        with open(args.head_out, "wb") as f:
            f.write(head)
    print("reply=%s" % escape(head))
    parts = head.split(b" ", 2)
    status = parts[1].decode("latin-1") if len(parts) > 1 else "none"
    print("status=%s" % status)
    if status != "200":
        return 0
    if args.wait_for:
        wait_for(args.wait_for, args.timeout)
    if args.send_plain or args.send:
        return plain_exchange(sock, args)
    if args.leave is not None:
        if not hello:
            sock.sendall(first_flight(tls[0], tls[2]))
        time.sleep(args.leave)
        sock.close()
        print("left")
        return 0
    if args.stall:
        if not hello:
            sock.sendall(first_flight(tls[0], tls[2]))
        return stall(sock, args)
    return tls_exchange(sock, args, tls)


if __name__ == "__main__":
    sys.exit(main())
