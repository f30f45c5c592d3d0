#!/bin/bash
# Hostile clients end to end: request smuggling shapes, header floods,
# control bytes in heads and in the SNI, absurd and endless chunked
# bodies, clients that stall or leave mid-exchange, garbage after a valid
# request, CONNECT to odd targets. Each must be refused or served without
# harm; pinproxy must go on serving, hold the descriptors it started with
# and exit 0. Everything runs on the loopback. tests/proxy_pipelining.sh
# goes on with pipelined requests and pinproxy's own addresses.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/hostile_setup.sh"

# Request smuggling shapes: each refused, none passed on.
TE='Transfer-Encoding: chunked\r\n'
BODY='5\r\nhello\r\n0\r\n\r\n'
post cl-and-te "Content-Length: 5\r\n$TE" "$BODY"
post two-cl 'Content-Length: 5\r\nContent-Length: 6\r\n' 'hello!'
post te-xchunked 'Transfer-Encoding: xchunked\r\n' "$BODY"
post te-chunked-identity 'Transfer-Encoding: chunked, identity\r\n' "$BODY"
post chunk-overflow "$TE" 'fffffffffffffffff\r\nhello\r\n0\r\n\r\n'
post chunk-junk "$TE" '5zz\r\nhello\r\n0\r\n\r\n'
post chunk-negative "$TE" '-5\r\nhello\r\n0\r\n\r\n'
post chunk-hex-prefix "$TE" '0x5\r\nhello\r\n0\r\n\r\n'
# libhttp-parser reads bytes from 0x80 up in a chunk size as 0: a size an
# upstream reads otherwise ("1\x80\x80" is 256 bytes to the parser, 1 to
# a server that stops at the first non-digit) would smuggle a request.
post chunk-high-byte "$TE" '1\x80\x80\r\nx\r\n0\r\n\r\n'
post chunk-high-last "$TE" '\x80\r\n\r\n'
post obs-fold 'X-Fold: a\r\n b\r\nContent-Length: 0\r\n' ''
refused bare-lf "b'POST http://api.test/echo?/m-bare-lf HTTP/1.1\n\
Host: api.test\nContent-Length: 0\n\n'"
# A CONNECT has no content (RFC 9110, 9.3.6): bytes framed as its body
# would open the tunnel, whose guard judges only the first line ("0"
# here) and would pass the request behind it.
refused connect-chunked "b'CONNECT 127.0.0.1:$OM HTTP/1.1\r\n\
Host: 127.0.0.1:$OM\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
GET /m-connect-chunked HTTP/1.1\r\nHost: api.test\r\n\r\n'"
refused connect-length "b'CONNECT 127.0.0.1:$OM HTTP/1.1\r\n\
Host: 127.0.0.1:$OM\r\nContent-Length: 4\r\n\r\nabc\n\
GET /m-connect-length HTTP/1.1\r\nHost: api.test\r\n\r\n'"
post space-before-colon \
    'Transfer-Encoding : chunked\r\nContent-Length: 5\r\n' 'hello'
# A request line in the trailers, which libhttp-parser would take for a
# field "GET http": a server that reads no trailers would run it.
post trailer-request "$TE" '5\r\nhello\r\n0\r\nGET http://api.test/hello?/m-trailer-request HTTP/1.1\r\nHost: api.test\r\n\r\n'
# Proxy credentials and hop-by-hop fields in a request's trailers, which
# would pass the proxy's hop (RFC 9110, 6.5.1).
post trailer-proxy-auth "$TE" '5\r\nhello\r\n0\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n'
post trailer-connection "$TE" '5\r\nhello\r\n0\r\nX-Sum: 1\r\nconnection: close\r\n\r\n'
# Framing fields spelled with '_', which CGI and WSGI servers read as '-'.
post underscore-te 'Transfer_Encoding: chunked\r\nContent-Length: 15\r\n' \
    "$BODY"
alive "smuggling shapes" "$PP_H" "$H"

# Header floods.
raw flood "b'GET http://api.test/hello?/m-flood HTTP/1.1\r\n\
Host: api.test\r\n' + b'a: b\r\n' * 5000 + b'\r\n'" >/dev/null
check_answer flood 431 header-too-large
raw longline "b'GET http://api.test/' + b'a' * 20480 + b' HTTP/1.1\r\n\
Host: api.test\r\n\r\n'" >/dev/null
check_answer longline 431 header-too-large
out=$(raw slowheads "b'GET http://api.test/hello?/m-slowheads HTTP/1.1\r\n\
Host: api.test\r\n' + b''.join(b'X-Slow-%d: %d\r\n' % (i, i)
for i in range(400))" 5 0.01)
ms=${out% *}
check_answer slowheads 408 header-timeout
check "headers at one byte per 10 ms: 408 at header_timeout = 2s ($ms ms)" \
    test "${ms:-0}" -ge 1900 -a "${ms:-0}" -lt 3500
check_eq "headers at one byte per 10 ms: then the connection is closed" \
    closed "${out#* }"
alive "header floods" "$PP_H" "$H"

# Control bytes in a header value and in the request target.
get nul-in-value '' 'X-Nul: a\x00b\r\n'
get ctl-in-value '' 'X-Ctl: a\x01b\r\n'
get esc-in-value '' 'X-Esc: a\x1b[2Jb\r\n'
get nul-in-target '\x00x' ''
get ctl-in-target '\x01x' ''
get del-in-target '\x7fx' ''
alive "control bytes" "$PP_H" "$H"

# A hand-made ClientHello after CONNECT by IP, so that the SNI names the
# host: with NUL or control bytes in the SNI, or 300 bytes of it, the
# handshake must end with a fatal alert, and nothing be intercepted.
cat >"$TMP/sni.py" <<'EOF'
import os, socket, struct, sys
port, target, sni = int(sys.argv[1]), sys.argv[2], eval(sys.argv[3])
def ext(kind, data):
    return struct.pack("!HH", kind, len(data)) + data
name = struct.pack("!BH", 0, len(sni)) + sni
exts = ext(0, struct.pack("!H", len(name)) + name)
exts += ext(10, b"\x00\x04\x00\x17\x00\x1d")
exts += ext(11, b"\x01\x00")
exts += ext(13, b"\x00\x04\x04\x03\x08\x04")
body = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x04\xc0\x2b\xc0\x2f"
        + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
hs = b"\x01" + len(body).to_bytes(3, "big") + body
record = b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
           % (target, target)).encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    d = s.recv(1)
    if not d:
        break
    head += d
status = head.split(b" ")[1].decode() if b" " in head else "none"
if status != "200":
    print("status=%s" % status)
    sys.exit(0)
s.sendall(record)
# What comes first tells: a handshake record, or an alert of 7 bytes.
# Waiting for more would wait for the 5 s timeout.
out = b""
try:
    while out[:1] != b"\x16" and len(out) < 7:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
if out[:1] == b"\x15" and len(out) >= 7:
    kind = "fatal-alert" if out[5] == 2 else "warning-alert"
    print("status=200 answer=%s description=%d" % (kind, out[6]))
elif out[:1] == b"\x16":
    print("status=200 answer=handshake")
else:
    print("status=200 answer=%r" % out[:20])
EOF
tls0=$(origin_count "$TMP/om.log" tls)
out=$(python3 "$TMP/sni.py" "$PH" "127.0.0.1:$OM" "b'api.test'" 2>&1)
origin_settle "$TMP/om.log"
check "hand-made ClientHello with SNI api.test: intercepted ($out)" \
    test "$(origin_count "$TMP/om.log" tls '"sni": "api.test"')" -gt "$tls0"
for sni in nul:"b'api\\x00.test'" ctl:"b'api\\x01.test'" \
    long:"b'.'.join([b'a' * 63] * 4 + [b'a' * 44])"; do
	what=${sni%%:*}
	tls0=$(origin_count "$TMP/om.log" tls)
	out=$(python3 "$TMP/sni.py" "$PH" "127.0.0.1:$OM" "${sni#*:}" 2>&1)
	case $out in
	"status=200 answer=fatal-alert"*)
		ok "SNI $what: a fatal TLS alert ($out)" ;;
	*)
		not_ok "SNI $what: a fatal TLS alert"
		diag "$out" ;;
	esac
	origin_settle "$TMP/om.log"
	check_eq "SNI $what: nothing intercepted" "$tls0" \
	    "$(origin_count "$TMP/om.log" tls)"
done
alive "bad SNI" "$PP_H" "$H"

# A chunked body that never ends: idle_timeout = 2s closes it.
out=$(raw endless "b'POST http://api.test/echo?/m-endless HTTP/1.1\r\n\
Host: api.test\r\n$TE\r\n5\r\nhello\r\n'" 8)
ms=${out% *}
check_eq "endless chunked body: the connection is closed" closed "${out#* }"
check "endless chunked body: closed at idle_timeout = 2s ($ms ms)" \
    test "${ms:-0}" -ge 1900 -a "${ms:-0}" -lt 4500
diag "endless chunked body: the client got $(head -n 1 "$TMP/endless.resp" |
    tr -d '\r' | grep . || echo nothing)"
origin_settle "$TMP/om.log"
check_eq "endless chunked body: no complete body reached the origin" 0 \
    "$(origin_count "$TMP/om.log" body)"
alive "endless chunked body" "$PP_H" "$H"

# A client that sent its request waits in silence: a response that takes
# longer than idle_timeout = 2s (/slow/15: a line every 0.2 s) arrives
# whole, because the client's side of the exchange counts as idle only
# while its request is still coming.
out=$(raw slow "b'GET http://api.test/slow/15 HTTP/1.1\r\n\
Host: api.test\r\nConnection: close\r\n\r\n'" 8)
check_eq "silent client, slow response: closed after the response" closed \
    "${out#* }"
check_eq "silent client, slow response: 200" 200 "$(status_of slow)"
check_eq "silent client, slow response: all 15 lines past idle_timeout" 15 \
    "$(grep -c '^slow$' "$TMP/slow.resp")"

# A client that shuts down its sending side after its request still gets
# the whole response, then the close (a half-close ends no exchange).
check_eq "half-closed client: the close after the response" closed \
    "$(half_closed halfclose "$PH" \
    'GET http://api.test/slow/3 HTTP/1.1\r\nHost: api.test\r\n\r\n')"
check_eq "half-closed client: 200" 200 "$(status_of halfclose)"
check_eq "half-closed client: all 3 lines of the body" 3 \
    "$(grep -c '^slow$' "$TMP/halfclose.resp")"
alive "silent and half-closed clients" "$PP_H" "$H"

# A client that stops reading a body that only the close delimits: when
# pinproxy gives up on it, at idle_timeout in the middle of the exchange
# or at header_timeout once the whole body is queued for it, what it has
# not received is dropped, and its connection is reset: a FIN would make
# the cut body look complete. A client that was still taking bytes when
# the wait began (its kernel takes what fits in its buffers) is found
# stalled at most a quarter past the timeout (it took twice the timeout):
# both wait 5 s, at once.
stalled stall-mid "$PH" \
    'GET http://api.test/close/20000000 HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    5 >"$TMP/stall-mid.state" &
w1=$!
# 3.1 MB: on this machine the kernel's buffers take all but the last
# ~100 kB, which pinproxy holds once the origin's part is over. Where the
# buffers are larger, the whole body may fit and a FIN after it is right.
stalled stall-end "$PH" \
    'GET http://api.test/close/3100000 HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    5 >"$TMP/stall-end.state" &
w2=$!
wait "$w1" "$w2"
check_eq "client stops reading mid-body (close-delimited): reset at \
idle_timeout" reset "$(cat "$TMP/stall-mid.state")"
check "client stops reading mid-body: it got less than the body" \
    test "$(stat -c %s "$TMP/stall-mid.resp")" -lt 20000000
# Its access line (its request is 63 bytes long): the exchange's duration.
ms=$(log_lines "$TMP/h.log" 'event=access' '(^| )bytes_up=63 ' |
    sed -n 's/.* ms=\([0-9]*\).*/\1/p')
check "client stops reading mid-body: reset within a quarter past \
idle_timeout = 2s ($ms ms)" test "${ms:-9999}" -ge 2000 -a "${ms:-9999}" -lt 3300
state=$(cat "$TMP/stall-end.state")
size=$(stat -c %s "$TMP/stall-end.resp")
check "client stops reading a body pinproxy has whole: a reset, never a \
FIN before its end ($state, $size bytes)" \
    test "$state" = reset -o "$state.$((size > 3100000))" = closed.1
if [ "$(log_count "$TMP/h.log" "$(kv event access)" "$(kv status 200)" \
    'bytes_down=3100[0-9]{3} ')" -gt 0 ]; then
	diag "the exchange of 3.1 MB had ended: the close came at header_timeout"
fi

# An answer before the request's end (here, after the head of a POST
# whose body is half sent) ends the connection, as nothing tells where the
# next request would begin: the answer says so (Connection: close), so
# that a client does not queue its next request on it.
out=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST http://127.0.0.1:%s/x HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
          b"Content-Length: 10\r\n\r\n12345" % ((sys.argv[2].encode(),) * 2))
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except OSError:
    pass
print(data.partition(b"\r\n\r\n")[0].decode("latin-1"))' "$PH" "$OP")
check "an answer before the request's end says Connection: close" \
    grep -qi '^Connection: close' <<<"${out//$'\r'/}"

# A client that reads slowly but steadily is not stalled, however long
# its socket stays unwritable (the kernel wakes a writer only once a third
# of a large send buffer is free): it gets the whole body (6 MB through a
# 4 KiB receive buffer, its first megabyte at 300 kB/s, over 3 s of
# idle_timeout 2s, then the rest at once).
read -r state n < <(slow_reader "$PH" \
    'GET http://api.test/close/6000000 HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    1000000 300000)
out="$state $((n > 6000000))"
check_eq "a slow but steady reader of a close-delimited body past \
idle_timeout: all of it, then the close" "closed 1" "$out"
alive "clients that stop reading" "$PP_H" "$H"

# A CONNECT pipelined behind a request for 8 MB, read slowly (64 KiB every
# 2 ms): the response ends while up to RELAY_HIGH_WATER of it still waits
# in pinproxy for the client, which is when the CONNECT is taken. Its 200
# must come after that response, not never (a 408 at header_timeout).
out=$(python3 - "$PH" "$OM" 8000000 <<'EOF'
import socket, sys, time
n = int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET http://api.test/bytes/%d HTTP/1.1\r\nHost: api.test\r\n\r\n"
          b"CONNECT api.test:%s HTTP/1.1\r\nHost: api.test\r\n\r\n"
          % (n, sys.argv[2].encode()))
buf = bytearray()
want = b"HTTP/1.1 200 Connection established\r\n\r\n"
try:
    while True:
        end = buf.find(b"\r\n\r\n", 0, 4096)
        if end >= 0 and len(buf) - end - 4 >= n + len(want):
            break
        d = s.recv(65536)
        if not d:
            break
        buf += d
        time.sleep(0.002)
except OSError:
    pass
head, _, rest = bytes(buf).partition(b"\r\n\r\n")
after = rest[n:n + 60]
print(head.split(b" ")[1].decode() if head else "none", len(rest) >= n,
      after == want or after[:40])
EOF
)
check_eq "CONNECT pipelined behind a queued response: 200, body, then its 200" \
    "200 True True" "$out"
alive "CONNECT behind a queued response" "$PP_H" "$H"

# The same with a CONNECT whose dial fails (nothing listens on RP), the
# client reading only after a second: the whole 8 MB, then the 502. The
# dial must not leave the client's socket edge-triggered under the
# answer still being written (it stalled, cut short).
out=$(python3 - "$PH" "$RP" 8000000 <<'EOF'
import socket, sys, time
n = int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET http://api.test/bytes/%d HTTP/1.1\r\nHost: api.test\r\n\r\n"
          b"CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
          % (n, sys.argv[2].encode()))
time.sleep(1)
s.settimeout(10)
buf = bytearray()
try:
    while True:
        end = buf.find(b"\r\n\r\n", 0, 4096)
        if end >= 0 and len(buf) - end - 4 >= n and \
                buf.find(b"\r\n\r\n", end + 4 + n) >= 0:
            break
        d = s.recv(65536)
        if not d:
            break
        buf += d
except OSError:
    pass
head, _, rest = bytes(buf).partition(b"\r\n\r\n")
after = rest[n:n + 12]
print(head.split(b" ")[1].decode() if head else "none", len(rest) >= n,
      after.decode("latin-1"))
EOF
)
check_eq "CONNECT behind a queued response, its dial refused: 200, body, 502" \
    "200 True HTTP/1.1 502" "$out"
alive "CONNECT behind a queued response, dial refused" "$PP_H" "$H"

# Garbage pipelined after a valid request on a kept connection: the
# answer, then a 400, then the close.
out=$(python3 - "$PH" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n"
          b"GARBAGE \x01\x02 garbage\r\n\r\n")
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    state = "closed"
except OSError:
    state = "open"
answers = []
while buf:
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        answers.append("junk")
        break
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(l.lower().split(": ", 1) for l in lines[1:] if ": " in l)
    n = int(fields.get("content-length", "0"))
    answers.append(lines[0].split(" ")[1] + ":" +
                   rest[:n].decode("latin-1").strip().split("\n")[0])
    buf = rest[n:]
print(" | ".join(answers), state)
EOF
)
case $out in
"200:hello from origin | 400:"*" closed")
	ok "garbage after a valid request: 200, then 400, then closed" ;;
*)
	not_ok "garbage after a valid request: 200, then 400, then closed"
	diag "$out" ;;
esac
alive "pipelined garbage" "$PP_H" "$H"

# CONNECT to odd targets.
if [ "$have_ipv6" = yes ]; then
	got=$(pcurl "$H" --cacert "$PKI/root.pem" "https://[::1]:$O6/" 2>&1)
	check_eq "CONNECT [::1]:$O6 (allowed port): the origin's answer" \
	    "hello from badorigin" "$got"
	check_log "CONNECT [::1]: access line mode=tunnel host=::1" \
	    "$TMP/h.log" "$(kv event access)" "$(kv mode tunnel)" \
	    "$(kv host ::1)" "$(kv status 200)"
else
	skip "CONNECT [::1]: no IPv6 on this host"
	skip "CONNECT [::1]: no IPv6 on this host"
fi
for t in "127.0.0.1:$PH" "localhost:$PH" "loop.test:$PH" "loop6.test:$PH"; do
	check_eq "CONNECT $t (pinproxy itself): 508 loop" \
	    "508 pinproxy; error=proxy_loop_detected; details=\"loop\"" \
	    "$(connect_status "$t")"
done
for t in api.test api.test: api.test:0 api.test:65536 api.test:99999999999 \
    api.test:-443 api.test:443x "[::1]" ":443"; do
	check_eq "CONNECT $t: 400" \
	    "400 pinproxy; error=http_request_error; details=\"bad-request\"" \
	    "$(connect_status "$t")"
done
alive "CONNECT to odd targets" "$PP_H" "$H"

# A server that sends a body after its answer to a HEAD (one the head
# announced, in a later write): the upstream connection is not reused, so
# another client's request does not read that body as its answer.
cat >"$TMP/headbody.py" <<'EOF'
import socket, sys
from connect_client import read_rest
port, ob, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(("HEAD http://127.0.0.1:%s%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
           "\r\n" % (ob, path, ob)).encode())
a.recv(4096)
b = socket.create_connection(("127.0.0.1", port), timeout=5)
b.sendall(("GET http://127.0.0.1:%s/x HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
           "Connection: close\r\n\r\n" % (ob, ob)).encode())
out = read_rest(b)
print(out.rpartition(b"\r\n\r\n")[2].decode("latin-1"))
EOF
check_eq "a HEAD answered with a late body: the next client's answer is \
its own" clean "$(py "$TMP/headbody.py" "$PH" "$OB" /)"
check_eq "a HEAD answered without a length, then a late body: the next \
client's answer is its own" clean "$(py "$TMP/headbody.py" "$PH" "$OB" /nocl)"

alive "the hostile clients" "$PP_H" "$H"
check_fds "pinproxy H at the end" "$PP_H" "$BASE_H"
stop_pinproxy "$PP_H" "$TMP/h.log"

done_testing
