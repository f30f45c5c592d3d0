#!/bin/bash
# Hostile clients end to end: request smuggling shapes, header floods,
# control bytes in heads and in the SNI, absurd and endless chunked
# bodies, garbage after a valid request, CONNECT to odd targets and to
# pinproxy itself, IPv6 and IPv4-mapped client addresses against
# allow_clients, and ten thousand pipelined requests. Each must be
# refused or served without harm; pinproxy must go on serving, hold the
# descriptors it started with and exit 0. Everything runs on the loopback.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

PIPELINED=10000
UNREAD=40000
RSS_LIMIT_KB=$((32 * 1024))

small_quarantine

# A raw client: send the bytes of a Python expression (with a pause of
# DELAY seconds between bytes when DELAY > 0) to HOST:PORT without
# closing, and keep what comes back in $TMP/NAME.resp until the peer
# closes or stays quiet for QUIET seconds. Prints the ms that took, and
# "closed" or "open".
cat >"$TMP/raw.py" <<'EOF'
import socket, sys, time
name, host, port, quiet, delay, expr = sys.argv[1:7]
port, quiet, delay = int(port), float(quiet), float(delay)
data = eval(expr)
start = time.monotonic()
out = b""
state = "open"
s = socket.create_connection((host, port), timeout=quiet)
try:
    if delay > 0:
        s.settimeout(delay)
        for i in range(len(data)):
            s.send(data[i:i + 1])
            try:
                d = s.recv(65536)
                if not d:
                    state = "closed"
                    break
                out += d
            except socket.timeout:
                pass
        s.settimeout(quiet)
    else:
        s.sendall(data)
    while state == "open":
        d = s.recv(65536)
        if not d:
            state = "closed"
            break
        out += d
except socket.timeout:
    pass
except OSError:
    state = "closed"
open(name, "wb").write(out)
print(int((time.monotonic() - start) * 1000), state)
EOF

# raw NAME EXPR [QUIET [DELAY]]: the raw client against instance H.
raw()
{
	python3 "$TMP/raw.py" "$TMP/$1.resp" 127.0.0.1 "$PH" "${3:-5}" \
	    "${4:-0}" "$2"
}

# check_answer NAME STATUS DETAILS: two cases on a raw response.
check_answer()
{
	check_eq "$1: $2" "$2" "$(status_of "$1")"
	check_eq "$1: Proxy-Status details=$3" "$3" \
	    "$(header_of "$1" Proxy-Status | sed -n 's/.*details="\(.*\)"/\1/p')"
	if [ "$(status_of "$1")" != "$2" ]; then
		diag "response: $(head -c 300 "$TMP/$1.resp" 2>/dev/null)"
	fi
}

# refused NAME EXPR: a request pinproxy must answer with 400 without
# passing it on; EXPR carries the marker "/m-NAME" in its target.
refused()
{
	raw "$1" "$2" >/dev/null
	check_answer "$1" 400 bad-request
	origin_settle "$TMP/om.log"
	check_eq "$1: nothing reaches the origin" 0 \
	    "$(origin_count "$TMP/om.log" request "/m-$1")"
}

# The PKI: the default set of tests/mkpki.sh (its leaf covers api.test,
# 127.0.0.1 and ::1).
make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

# Origins: M (TLS, api.test), P (plain, one write per answer, without a
# log, for pipelining)
# and, when the host has IPv6, one on [::1]; dnsd maps loop.test to
# 127.0.0.1.
OM=$(free_port)
start_server O_M "$TMP/om.log" python3 "$ORIGIN" --port "$OM" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key"
OP=$(free_port)
spawn O_P python3 "$BADORIGIN" --port "$OP" --mode hello >"$TMP/op.out"
wait_ready "$TMP/op.out"
OB=$(free_port)
start_server O_B "$TMP/ob.log" python3 "$BADORIGIN" --port "$OB" \
    --mode headbody
O6=$(free_port)
have_ipv6=no
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
    2>/dev/null; then
	have_ipv6=yes
	start_server O_6 "$TMP/o6.log" python3 "$BADORIGIN" --port "$O6" \
	    --bind ::1 --mode hello --cert "$PKI/chain.pem" \
	    --key "$PKI/leaf.key"
fi
start_dnsd --map loop.test=127.0.0.1 --map loop6.test=::ffff:0.0.0.0

# conf LISTEN NAME EXTRA: a configuration listening on LISTEN with the CA
# files NAME and the [proxy] lines EXTRA that pins api.test. Plaintext
# requests may go to the plain origin and to pinproxy's own port, so that
# a request to itself meets the loop check, not the port policy.
conf()
{
	cat <<EOF
[proxy]
listen = $1
ca_cert = $TMP/ca-$2.pem
ca_key = $TMP/ca-$2.key
trust = $PKI/root.pem
unpinned = pass
plain_ports = 80, 443, $OP, $OB, ${1##*:}
shutdown_timeout = 2s
$3

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF
}

# Instance H: short timeouts, CONNECT allowed to its own port, the
# origins' ports and RP, where nothing listens.
PH=$(free_port)
RP=$(free_port)
conf "127.0.0.1:$PH" h "connect_ports = 443 $OM $O6 $PH $RP
header_timeout = 2s
idle_timeout = 2s" >"$TMP/h.conf"
check "pinproxy H listens on 127.0.0.1:$PH" \
    start_pinproxy PP_H "$PH" "$TMP/h.conf" "$TMP/h.log"
H="127.0.0.1:$PH"
alive "start" "$PP_H" "$H"
t_sleep 0.2
BASE_H=$(fd_count "$PP_H")

# post NAME HEADERS BODY: refused, a POST with the marker of NAME whose
# head ends with the header lines HEADERS (each ending in \r\n).
post()
{
	refused "$1" "b'POST http://api.test/echo?/m-$1 HTTP/1.1\r\n\
Host: api.test\r\n$2\r\n$3'"
}

# get NAME TARGET-TAIL HEADERS: refused, a GET of /hello?/m-NAME plus
# TARGET-TAIL with the header lines HEADERS.
get()
{
	refused "$1" "b'GET http://api.test/hello?/m-$1$2 HTTP/1.1\r\n\
Host: api.test\r\n$3\r\n'"
}

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
connect_status()
{
	python3 - "$PH" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
           % (sys.argv[2], sys.argv[2])).encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    d = s.recv(1)
    if not d:
        break
    head += d
lines = head.decode("latin-1").split("\r\n")
ps = [l.split(": ", 1)[1] for l in lines[1:] if l.lower().startswith(
    "proxy-status: ")]
print(lines[0].split(" ")[1] if " " in lines[0] else "none",
      ps[0] if ps else "-")
EOF
}
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

# Ten thousand small GETs pipelined on one connection: every answer in
# order (or a clean close), with bounded memory. After the last one the
# origin closes the upstream.
rss0=$(rss_kb "$PP_H")
out=$(py - "$PH" "$OP" "$PIPELINED" "$PP_H" <<'EOF'
import socket, sys, threading, time
port, op, n, pid = (int(a) for a in sys.argv[1:5])
from connect_client import vm_rss_kb
def rss():
    return vm_rss_kb(pid)
def size(i):
    return 1 + i % 64
reqs = b"".join(b"GET http://127.0.0.1:%d/size/%d HTTP/1.1\r\n"
                b"Host: 127.0.0.1:%d\r\n\r\n" % (op, size(i), op)
                for i in range(n - 1))
reqs += (b"GET http://127.0.0.1:%d/close HTTP/1.1\r\nHost: 127.0.0.1:%d"
         b"\r\n\r\n" % (op, op))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
def send():
    try:
        s.sendall(reqs)
    except OSError:
        pass
threading.Thread(target=send, daemon=True).start()
f = s.makefile("rb")
answered = inorder = 0
peak = rss()
state = "open"
deadline = time.monotonic() + 60
try:
    while answered < n and time.monotonic() < deadline:
        line = f.readline()
        if not line:
            state = "closed"
            break
        status = line.split(b" ")[1]
        length = None
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        body = f.read(length) if length is not None else f.read()
        want = size(answered) if answered < n - 1 else None
        if status == b"200" and (want is None or len(body) == want):
            inorder += 1
        answered += 1
        if answered % 500 == 0:
            peak = max(peak, rss())
    if answered == n and f.read(1) == b"":
        state = "closed"
except OSError:
    state = "error"
print(answered, inorder, state, peak)
EOF
)
read -r answered inorder state peak <<<"$out"
diag "pipelined: $out (VmRSS before: $rss0 KiB)"
what="$PIPELINED pipelined requests"
check "$what: answered in order ($inorder of $answered)" \
    test "${inorder:-0}" = "${answered:-x}" -a "${answered:-0}" -gt 0
check "$what: all answered, or a clean close ($answered, $state)" \
    test "${answered:-0}" = "$PIPELINED" -o "${state:-}" = closed
check "$what: VmRSS grows by less than 32 MiB ($rss0 -> ${peak:-?} KiB)" \
    test -n "$rss0" -a $(( ${peak:-999999999} - ${rss0:-0} )) -lt \
    "$RSS_LIMIT_KB"
alive "$PIPELINED pipelined requests" "$PP_H" "$H"

# Pipelined requests that pinproxy answers at once (the CA page) from a
# client that reads nothing: the answers queued for it stop at the relay's
# high-water mark (128 KiB) and the requests behind wait unread, so memory
# stays bounded. (Each answer used to be queued at once, without bound.)
n0=$(log_count "$TMP/h.log" "$(kv event access)" \
    "$(kv host pinproxy.internal)")
rss0=$(rss_kb "$PP_H")
out=$(py - "$PH" "$PP_H" "$UNREAD" <<'EOF'
import socket, sys, time
port, pid, n = (int(a) for a in sys.argv[1:4])
from connect_client import vm_rss_kb
def rss():
    return vm_rss_kb(pid)
req = (b"GET http://pinproxy.internal/ca.pem HTTP/1.1\r\n"
       b"Host: pinproxy.internal\r\n\r\n")
data = req * n
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.setblocking(False)
sent = 0
peak = rss()
stalled = time.monotonic()
deadline = stalled + 20
while time.monotonic() < deadline and time.monotonic() - stalled < 0.7:
    try:
        k = s.send(data[sent:sent + 65536])
        if k > 0:
            sent += k
            stalled = time.monotonic()
    except BlockingIOError:
        pass
    if sent == len(data):
        break
    time.sleep(0.01)
    peak = max(peak, rss())
time.sleep(0.3)
peak = max(peak, rss())
print(sent // len(req), peak)
s.close()
EOF
)
read -r sent peak <<<"$out"
t_sleep 0.5
answered=$(( $(log_count "$TMP/h.log" "$(kv event access)" \
    "$(kv host pinproxy.internal)") - n0 ))
diag "unread answers: $sent requests written, $answered answered," \
    "VmRSS $rss0 -> $peak KiB"
check "$UNREAD pipelined CA-page requests, answers never read: fewer than a quarter answered ($answered)" \
    test "$answered" -gt 0 -a "$answered" -lt $((UNREAD / 4))
check "answers never read: VmRSS grows by less than 8 MiB ($rss0 -> ${peak:-?} KiB)" \
    test -n "$rss0" -a $(( ${peak:-999999999} - ${rss0:-0} )) -lt 8192
alive "pipelined requests whose answers are never read" "$PP_H" "$H"

# The same requests from a client that reads every answer: heads are
# parsed one at a time, so what the client sends ahead waits in
# pinproxy's input, which stops growing at one read's worth (64 KiB).
# (It used to grow by a read for every answer: megabytes a second.)
rss0=$(rss_kb "$PP_H")
out=$(py - "$PH" "$PP_H" <<'EOF'
import socket, sys, threading, time
port, pid = (int(a) for a in sys.argv[1:3])
from connect_client import vm_rss_kb
def rss():
    return vm_rss_kb(pid)
req = (b"GET http://pinproxy.internal/ca.pem HTTP/1.1\r\n"
       b"Host: pinproxy.internal\r\n\r\n")
data = req * (24 * 1024 * 1024 // len(req))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
got = [0]
def read():
    while True:
        try:
            b = s.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            return
        if not b:
            return
        got[0] += b.count(b"HTTP/1.1 200 ")
s.settimeout(0.05)
threading.Thread(target=read, daemon=True).start()
sent = 0
peak = rss()
deadline = time.monotonic() + 4
while time.monotonic() < deadline and sent < len(data):
    try:
        sent += s.send(data[sent:sent + 262144])
    except socket.timeout:
        pass
    peak = max(peak, rss())
peak = max(peak, rss())
print(sent // len(req), got[0], peak)
s.close()
EOF
)
read -r sent got peak <<<"$out"
diag "answers read: $sent requests written, $got answers read," \
    "VmRSS $rss0 -> $peak KiB"
check "pipelined CA-page requests, answers read: answered ($got)" \
    test "${got:-0}" -gt 0
check "answers read: VmRSS grows by less than 2 MiB ($rss0 -> ${peak:-?} KiB)" \
    test -n "$rss0" -a $(( ${peak:-999999999} - ${rss0:-0} )) -lt 2048
alive "pipelined requests whose answers are read" "$PP_H" "$H"

# A client that shuts down its sending side once its requests are sent
# and reads only later: every answer arrives whole, then the close. Its
# end used to close the connection at once when it came between two
# requests: of 600 pipelined CA-page requests, the answers still queued
# for it (past the relay's high-water mark) and the requests behind were
# dropped; so was the rest of a large body whose exchange had ended.

# answers NAME: how many whole answers $TMP/NAME.resp holds (each by its
# Content-Length), then "whole" or "cut" for the last.
answers()
{
	python3 - "$TMP/$1.resp" <<'EOF'
import sys
data, n, at = open(sys.argv[1], "rb").read(), 0, 0
while at < len(data):
    end = data.find(b"\r\n\r\n", at)
    head = data[at:end].decode("latin-1").lower() if end >= 0 else ""
    if "content-length:" not in head:
        break
    at = end + 4 + int(head.split("content-length:")[1].split("\r\n")[0])
    if at > len(data):
        break
    n += 1
print(n, "whole" if at == len(data) else "cut")
EOF
}

state=$(half_closed hc-body "$PH" \
    'GET http://api.test/bytes/200000 HTTP/1.1\r\nHost: api.test\r\n\r\n' 0.5)
check_eq "a 200 kB answer, the client's half-close after its exchange: whole" \
    "1 whole closed" "$(answers hc-body) $state"
CA_REQ='GET http://pinproxy.internal/ca.pem HTTP/1.1\r\nHost: pinproxy.internal\r\n\r\n'
state=$(half_closed hc-pipe "$PH" "$(for (( i = 0; i < 600; i++ )); do
	printf '%s' "$CA_REQ"; done)" 0)
check_eq "600 pipelined requests, then the client's half-close: 600 answers" \
    "600 whole closed" "$(answers hc-pipe) $state"
alive "answers queued at the client's half-close" "$PP_H" "$H"
check_fds "pinproxy H at the end" "$PP_H" "$BASE_H"
stop_pinproxy "$PP_H" "$TMP/h.log"

# Requests to pinproxy's own listener under another spelling of its
# address: each must be a 508, not a request to itself, again and again.
# A fresh instance for each (8 connections, 2 s idle: a loop stays small).
for u in "127.0.0.1" "localhost" "[::ffff:127.0.0.1]" "0.0.0.0" \
    "loop.test"; do
	PL=$(free_port)
	conf "127.0.0.1:$PL" l "max_connections = 8
idle_timeout = 2s
connect_timeout = 2s" >"$TMP/l.conf"
	if ! start_pinproxy PP_L "$PL" "$TMP/l.conf" "$TMP/l.log"
	then
		not_ok "pinproxy L listens on 127.0.0.1:$PL"
		continue
	fi
	L="127.0.0.1:$PL"
	t_sleep 0.2
	BASE_L=$(fd_count "$PP_L")
	code=$(pcurl "$L" --max-time 4 -o /dev/null -w '%{http_code}' \
	    "http://$u:$PL/" 2>/dev/null)
	check_eq "request to http://$u:PORT/ (pinproxy itself): 508" 508 \
	    "$code"
	[ "$code" = 508 ] || diag "status $code; $(log_count "$TMP/l.log" \
	    "$(kv event access)") access lines"
	ALIVE_TIME=5 alive "request to http://$u:PORT/" "$PP_L" "$L"
	check_fds "request to http://$u:PORT/" "$PP_L" "$BASE_L"
	stop_pinproxy "$PP_L" "$TMP/l.log"
	mv "$TMP/l.log" "$TMP/l-$u.log"
done

# Client addresses: IPv6 on [::1], then IPv4-mapped ones on a listener
# bound to ::ffff:127.0.0.1 (where IPv4 clients of 127.0.0.1 arrive as
# [::ffff:127.0.0.1]), each against allow_clients before and after a
# reload that changes it.
# A request that loops through pinproxy takes every slot until
# idle_timeout: keep both small.
LIMITS="max_connections = 8
idle_timeout = 2s
connect_timeout = 2s"
# client_case DESCRIPTION PROXY STATUS DETAILS
client_case()
{
	local code ps
	code=$(pcurl "$2" -D "$TMP/client.head" -o "$TMP/client.body" \
	    -w '%{http_code}' http://api.test/close 2>/dev/null)
	ps=$(header "$TMP/client.head" Proxy-Status |
	    sed -n 's/.*details="\(.*\)"/\1/p')
	check_eq "$1: $3${4:+ $4}" "$3 ${4:-}" "$code $ps"
}
if [ "$have_ipv6" = yes ]; then
	P6=$(free_port)
	conf "[::1]:$P6" v6 "$LIMITS
allow_clients = 127.0.0.0/8" >"$TMP/v6.conf"
	if start_pinproxy PP_6 "[::1]:$P6" "$TMP/v6.conf" "$TMP/v6.log"; then
		client_case "client ::1, allow_clients = 127.0.0.0/8" \
		    "[::1]:$P6" 403 client-denied
		check_log "client ::1 refused: event=blocked client=[::1]:..." \
		    "$TMP/v6.log" "$(kv event blocked)" \
		    '(^| )client="?\[::1\]:[0-9]+'
		check "allow_clients = ::1: reloaded" reload "$PP_6" \
		    "$TMP/v6.log" "$TMP/v6.conf" "$(conf "[::1]:$P6" v6 "$LIMITS
allow_clients = ::1")"
		client_case "client ::1, allow_clients = ::1" "[::1]:$P6" 200
		stop_pinproxy "$PP_6" "$TMP/v6.log"
	else
		not_ok "pinproxy listens on [::1]:$P6"
	fi
else
	for i in 1 2 3 4 5; do
		skip "IPv6 clients: no IPv6 on this host"
	done
fi
PM=$(free_port)
conf "[::ffff:127.0.0.1]:$PM" map "$LIMITS
allow_clients = ::1" >"$TMP/map.conf"
if start_pinproxy PP_MAP "$PM" "$TMP/map.conf" "$TMP/map.log"
then
	client_case "client ::ffff:127.0.0.1, allow_clients = ::1" \
	    "127.0.0.1:$PM" 403 client-denied
	check_log "mapped client refused: event=blocked client=127.0.0.1" \
	    "$TMP/map.log" "$(kv event blocked)" \
	    '(^| )client="?127\.0\.0\.1:[0-9]+'
	check "allow_clients = 127.0.0.0/8: reloaded" reload "$PP_MAP" \
	    "$TMP/map.log" "$TMP/map.conf" \
	    "$(conf "[::ffff:127.0.0.1]:$PM" map "$LIMITS
allow_clients = 127.0.0.0/8")"
	client_case "client ::ffff:127.0.0.1, allow_clients = 127.0.0.0/8" \
	    "127.0.0.1:$PM" 200
	code=$(pcurl "127.0.0.1:$PM" -o /dev/null -w '%{http_code}' \
	    --max-time 8 "http://127.0.0.1:$PM/" 2>/dev/null)
	check_eq "listener on ::ffff:127.0.0.1, request to 127.0.0.1:$PM: 508" \
	    508 "$code"
	stop_pinproxy "$PP_MAP" "$TMP/map.log"
else
	not_ok "pinproxy listens on [::ffff:127.0.0.1]:$PM"
fi

# A wildcard listener accepts on every address of the machine: a CONNECT
# or a plaintext request to any loopback address on its port, or to the
# stats port, is a loop answered at once, not a connection to itself
# (which a client could nest until max_connections). Nothing is sent to
# an address outside 127.0.0.0/8.
PW=$(free_port)
SW=$(free_port)
conf "0.0.0.0:$PW" w "connect_ports = 443 $PW $SW
stats_listen = 127.0.0.1:$SW
$LIMITS" >"$TMP/w.conf"
if start_pinproxy PP_W "$PW" "$TMP/w.conf" "$TMP/w.log"; then
	for t in "127.0.0.1:$PW" "127.0.0.2:$PW" "localhost:$PW" \
	    "127.0.0.1:$SW"; do
		check_eq "listen = 0.0.0.0: CONNECT $t: 508 loop" \
		    "508 pinproxy; error=proxy_loop_detected; details=\"loop\"" \
		    "$(PH=$PW connect_status "$t")"
	done
	code=$(pcurl "127.0.0.1:$PW" -o /dev/null -w '%{http_code}' \
	    --max-time 8 "http://127.0.0.3:$PW/" 2>/dev/null)
	check_eq "listen = 0.0.0.0: GET http://127.0.0.3:PORT/: 508" 508 \
	    "$code"
	wait_log "$TMP/w.log" "$(kv event access)" "$(kv host 127.0.0.3)"
	check_eq "listen = 0.0.0.0: the GET never reached pinproxy again" 1 \
	    "$(log_count "$TMP/w.log" "$(kv event access)" \
	    "$(kv host 127.0.0.3)")"
	ALIVE_TIME=5 alive "listen = 0.0.0.0" "$PP_W" "127.0.0.1:$PW"
	stop_pinproxy "$PP_W" "$TMP/w.log"
else
	not_ok "pinproxy listens on 0.0.0.0:$PW"
fi

done_testing
