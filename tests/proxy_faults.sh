#!/bin/bash
# Faults end to end: upstreams that reset, answer TLS with an alert or
# garbage, close before answering, or cut a body without close_notify;
# how the end of an intercepted TLS stream is passed on; clients that
# leave in the middle of a ClientHello, a handshake, a download or an
# upload; slow DNS within connect_timeout, also while 40 clients wait for
# names whose answers never come in time. After each, pinproxy must
# still serve, and at the end hold the descriptors it started with and
# exit 0. The limits on connections and descriptors are in
# proxy_resources.sh. Everything runs on 127.0.0.1.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

MIB=1048576

small_quarantine

# A CONNECT client that sends a ClientHello for SNI, or its first half
# only, then waits HOLD seconds and closes (with "reset" after HOLD: a
# reset); prints the proxy's status.
cat >"$TMP/hello.py" <<'EOF'
import socket, ssl, struct, sys, time
from connect_client import open_tunnel
port, target, sni, part, hold = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                 sys.argv[4], float(sys.argv[5]))
ctx = ssl.create_default_context()
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()
s, head = open_tunnel(port, target)
print(head.split(b"\r\n")[0].decode("latin-1"), flush=True)
s.sendall(hello if part == "all" else hello[:len(hello) // 2])
time.sleep(hold)
if sys.argv[6:] == ["reset"]:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
EOF

# The PKI: the default set of tests/mkpki.sh and one leaf for every host
# name the TLS origins serve.
SANS=$(dns_sans api.test slowdns.test rst.test nohead.test silent.test \
    alert.test garbage.test rsthello.test cut.test end.test tls12.test \
    interims.test bannerclose.test trickle.test rr.test moved.test \
    stall.test early.test)
make_pki multi "$SANS,IP:127.0.0.1" inter
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa
CERT="--cert $PKI/multi-chain.pem --key $PKI/multi.key"

# Origins: M the good one, Q silent, and the misbehaving ones: R resets in
# the middle of a body, A answers TLS with an alert, G with garbage, N
# closes before answering, C cuts a body without close_notify, E logs how
# the client's TLS stream ended; and dnsd, which answers slowdns.test
# after 1 s.
OM=$(free_port)
start_server O_M "$TMP/om.log" python3 "$ORIGIN" --port "$OM" $CERT
OQ=$(free_port)
start_server O_Q "$TMP/oq.log" python3 "$ORIGIN" --port "$OQ" --silent
OR=$(free_port)
start_server O_R "$TMP/or.log" python3 "$BADORIGIN" --port "$OR" $CERT \
    --mode rst-body --size $((10 * MIB)) --after $((256 * 1024))
OA=$(free_port)
start_server O_A "$TMP/oa.log" python3 "$BADORIGIN" --port "$OA" \
    --mode alert
OG=$(free_port)
start_server O_G "$TMP/og.log" python3 "$BADORIGIN" --port "$OG" \
    --mode garbage
OH=$(free_port)
start_server O_H "$TMP/oh.log" python3 "$BADORIGIN" --port "$OH" \
    --mode rst-hello
ON=$(free_port)
start_server O_N "$TMP/on.log" python3 "$BADORIGIN" --port "$ON" $CERT \
    --mode nohead
OC=$(free_port)
start_server O_C "$TMP/oc.log" python3 "$BADORIGIN" --port "$OC" $CERT \
    --mode cut --after 100000
OE=$(free_port)
start_server O_E "$TMP/oe.log" python3 "$BADORIGIN" --port "$OE" $CERT \
    --mode end
OT=$(free_port)
start_server O_T "$TMP/ot.log" python3 "$BADORIGIN" --port "$OT" $CERT \
    --tls12 --mode notify-back
OI=$(free_port)
start_server O_I "$TMP/oi.log" python3 "$BADORIGIN" --port "$OI" $CERT \
    --mode interims
OB=$(free_port)
start_server O_B "$TMP/ob.log" python3 "$BADORIGIN" --port "$OB" $CERT \
    --mode banner-close
OK=$(free_port)
start_server O_K "$TMP/ok.log" python3 "$BADORIGIN" --port "$OK" $CERT \
    --mode trickle
OL=$(free_port)
start_server O_L "$TMP/ol.log" python3 "$BADORIGIN" --port "$OL" \
    --mode hints-late
OW=$(free_port)
start_server O_W "$TMP/ow.log" python3 "$BADORIGIN" --port "$OW" \
    --mode switch-answer --after 5
OW0=$(free_port)
start_server O_W0 "$TMP/ow0.log" python3 "$BADORIGIN" --port "$OW0" \
    --mode switch-answer --after 0
OS=$(free_port)
start_server O_S "$TMP/os.log" python3 "$BADORIGIN" --port "$OS" $CERT \
    --mode stall
OY=$(free_port)
start_server O_Y "$TMP/oy.log" python3 "$BADORIGIN" --port "$OY" $CERT \
    --mode early --size 200000
never=()
for i in $(seq 0 39); do
	never+=(--slow "never$i.test=30")
done
# rr.test: first an address that drops the SYN (127.0.0.2, where a full
# listen queue takes no connection), then the good origin's.
start_dnsd --map slowdns.test=127.0.0.1 --slow slowdns.test=1 "${never[@]}" \
    --slow gaveup.test=30 --map rr.test=127.0.0.2 --map rr.test=127.0.0.1
cat >"$TMP/blackhole.py" <<'EOF'
import socket, sys, time
l = socket.socket()
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(0)
held = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect((sys.argv[1], int(sys.argv[2])))
    except BlockingIOError:
        pass
    held.append(c)
print("ready", flush=True)
time.sleep(3600)
EOF
spawn BLACKHOLE python3 "$TMP/blackhole.py" 127.0.0.2 "$OM" \
    >"$TMP/blackhole.out"
wait_ready "$TMP/blackhole.out" || bail_out "the blackhole did not start"

# conf PORT NAME EXTRA: a configuration listening on PORT with the CA
# files NAME, the [proxy] lines EXTRA and a pin set for each host.
conf()
{
	local h
	cat <<EOF
[proxy]
listen = 127.0.0.1:$1
ca_cert = $TMP/ca-$2.pem
ca_key = $TMP/ca-$2.key
trust = $PKI/root.pem
unpinned = pass
shutdown_timeout = 2s
$3
EOF
	for h in api:$OM silent:$OQ rst:$OR alert:$OA garbage:$OG \
	    rsthello:$OH nohead:$ON cut:$OC end:$OE tls12:$OT interims:$OI \
	    bannerclose:$OB trickle:$OK stall:$OS early:$OY; do
		cat <<EOF

[pins:set-${h%%:*}]
hosts = ${h%%:*}.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:${h#*:}
EOF
	done
	cat <<EOF

[pins:set-by-name]
hosts = slowdns.test, rr.test, moved.test
pin = $PIN_INTER
pin = $PIN_RSA
port = $OM
EOF
}

# Instance F: the faults of upstreams and clients, connect_timeout = 3s.
PF=$(free_port)
conf "$PF" f "connect_timeout = 3s
plain_ports = 80, $OL, $OW, $OW0" >"$TMP/f.conf"
check "pinproxy F listens on 127.0.0.1:$PF" \
    start_pinproxy PP_F "$PF" "$TMP/f.conf" "$TMP/f.log"
alive "start" "$PP_F" "$PF"
BASE_F=$(fd_baseline "$PP_F")
diag "pinproxy F: $BASE_F descriptors at rest"

# A name whose first address drops the SYN: the next is dialled a moment
# later beside it, and answers (it used to wait for connect_timeout, 3 s
# here, and fail).
start=$(now_ms)
code=$(fetch rr "$PF" --max-time 10 http://rr.test/close)
ms=$(( $(now_ms) - start ))
check_eq "first address silent, second good: 200" 200 "$code"
check "first address silent, second good: in well under connect_timeout \
($ms ms)" test "$ms" -lt 2000

# An upstream resets the connection in the middle of a body.
start=$(now_ms)
code=$(fetch rst "$PF" --max-time 10 http://rst.test/file)
rc=$?
ms=$(( $(now_ms) - start ))
size=$(stat -c %s "$TMP/rst.body" 2>/dev/null || echo 0)
check_eq "upstream RST mid-body (plain): the head came through" 200 "$code"
check "upstream RST mid-body (plain): curl sees a cut transfer (exit $rc)" \
    test "$rc" = 18 -o "$rc" = 56
check "upstream RST mid-body (plain): truncated ($size bytes)" \
    test "$size" -lt $((10 * MIB))
check "upstream RST mid-body (plain): no hang ($ms ms)" test "$ms" -lt 5000
alive "upstream RST mid-body (plain)" "$PP_F" "$PF"
start=$(now_ms)
pcurl "$PF" --max-time 10 --cacert "$TMP/ca-f.pem" -o "$TMP/rsts.body" \
    https://rst.test/file 2>"$TMP/rsts.err"
rc=$?
ms=$(( $(now_ms) - start ))
size=$(stat -c %s "$TMP/rsts.body" 2>/dev/null || echo 0)
check "upstream RST mid-body (CONNECT): curl sees a cut transfer (exit $rc)" \
    test "$rc" = 18 -o "$rc" = 56
check "upstream RST mid-body (CONNECT): truncated ($size bytes)" \
    test "$size" -lt $((10 * MIB))
check "upstream RST mid-body (CONNECT): no hang ($ms ms)" test "$ms" -lt 5000
check_log "upstream RST mid-body (CONNECT): access line mode=intercept" \
    "$TMP/f.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host rst.test)"
alive "upstream RST mid-body (CONNECT)" "$PP_F" "$PF"

# An upstream that sends interim (1xx) responses without end: after 32
# the exchange ends with a 502 well within idle_timeout, for an HTTP/1.1
# client and an HTTP/1.0 one, neither of which gets any (only a 100 that
# the request's Expect asked for is passed on), held for as long as they
# came, a CPU busy with them.
n_bad=$(log_count "$TMP/f.log" "$(kv event upstream_error)" \
    "$(kv host interims.test)" "$(kv error bad-response)")
for v in 1.1 1.0; do
	start=$(now_ms)
	code=$(fetch "interims$v" "$PF" --max-time 10 "--http$v" \
	    http://interims.test/x)
	ms=$(( $(now_ms) - start ))
	check_eq "1xx without end (HTTP/$v client): 502" 502 "$code"
	check "1xx without end (HTTP/$v client): at once ($ms ms)" \
	    test "$ms" -lt 3000
done
check_eq "1xx without end: the HTTP/1.1 client got none" 0 \
    "$(grep -c '^HTTP/1.1 103' "$TMP/interims1.1.head")"
check_eq "1xx without end: the HTTP/1.0 client got none" 0 \
    "$(grep -c ' 103' "$TMP/interims1.0.head")"
check "1xx without end: upstream_error error=bad-response, twice" \
    wait_count "$TMP/f.log" $((n_bad + 2)) "$(kv event upstream_error)" \
    "$(kv host interims.test)" "$(kv error bad-response)"
alive "1xx without end" "$PP_F" "$PF"

# The end of an intercepted TLS stream is mirrored to the client: an
# origin that ends its close-delimited body with close_notify gets one
# passed on, and the client reads to a clean end; one that cuts TCP in the
# middle of the body without close_notify must not get one (the cut body
# would look complete): the client sees a ragged end.
# tlsend.py PORT HOST PATH CAFILE [half]: GET PATH of HOST through an
# intercepted CONNECT and read to the end; with half, the request leaves
# out Connection: close and the client ends its TLS stream right after it
# (a close_notify, as TLS 1.3 allows while it still reads). Prints the
# TLS version, how the stream ended (clean: close_notify; ragged: none),
# the status and the body's length. TLS runs on memory BIOs, so that the
# close_notify goes out without OpenSSL reading anything meanwhile.
cat >"$TMP/tlsend.py" <<'EOF'
import ssl, sys
from connect_client import open_tunnel
port, host, path, cafile = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                            sys.argv[4])
half = sys.argv[5:] == ["half"]
s, head = open_tunnel(port, host + ":443")
s.settimeout(10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
t = ssl.create_default_context(cafile=cafile).wrap_bio(
    inc, out, server_hostname=host)

def flush():
    data = out.read()
    if data:
        s.sendall(data)

def feed():
    d = s.recv(65536)
    if d:
        inc.write(d)
    else:
        inc.write_eof()

while True:
    try:
        t.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        feed()
flush()
version = t.version()
t.write(("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
         % (path, host, "" if half else "Connection: close\r\n")).encode())
if half:
    try:
        t.unwrap()
    except ssl.SSLWantReadError:
        pass
flush()
data, end = b"", "clean"
try:
    while True:
        try:
            d = t.read(65536)
        except ssl.SSLWantReadError:
            feed()
            continue
        if not d:
            break
        data += d
except ssl.SSLZeroReturnError:
    pass
except ssl.SSLEOFError:
    end = "ragged"
except (ssl.SSLError, OSError) as e:
    end = type(e).__name__
status = data.split(b" ", 2)[1].decode() if data.count(b" ") >= 2 else "none"
print("%s end=%s status=%s body=%d" % (version, end, status,
      len(data.partition(b"\r\n\r\n")[2])))
EOF
out=$(py "$TMP/tlsend.py" "$PF" api.test /close/100000 \
    "$TMP/ca-f.pem" 2>&1)
check_eq "origin ends its body with close_notify (CONNECT): the client \
gets one, a clean end" "TLSv1.3 end=clean status=200 body=100000" "$out"
out=$(py "$TMP/tlsend.py" "$PF" cut.test /file "$TMP/ca-f.pem" 2>&1)
check_eq "origin cuts TCP mid-body without close_notify (CONNECT): the \
client gets none, a ragged end" "TLSv1.3 end=ragged status=200 \
body=100000" "$out"
# The same two ends on the plaintext path, where the client's answer is
# delimited by the close too: a close_notify ends it cleanly; a TLS stream
# that just stops may have been cut, and the client's connection is reset
# rather than closed (a close would make the cut body look complete).
code=$(fetch closed "$PF" --max-time 10 http://api.test/close/100000)
rc=$?
size=$(stat -c %s "$TMP/closed.body" 2>/dev/null || echo 0)
check_eq "origin ends its close-delimited body with close_notify (plain): \
200, all of it, a clean end" "200 100000 0" "$code $size $rc"
code=$(fetch cutp "$PF" --max-time 10 http://cut.test/file)
rc=$?
size=$(stat -c %s "$TMP/cutp.body" 2>/dev/null || echo 0)
check_eq "origin cuts TCP mid-body without close_notify (plain): the head \
came through" 200 "$code"
check "origin cuts TCP mid-body without close_notify (plain): curl sees a \
reset, not an end (exit $rc, $size bytes)" test "$rc" = 56
check_log "origin cuts TCP mid-body without close_notify (plain): an \
upstream_error line" "$TMP/f.log" "$(kv event upstream_error)" \
    "$(kv host cut.test)" "$(kv error bad-response)" "close_notify"
alive "origin cuts TCP mid-body (plain)" "$PP_F" "$PF"
# An upstream that answers before the request's body is all sent, with a
# body the end of its connection delimits, and ends that connection with
# close_notify: the answer is whole, and the client gets it closed in
# order, not reset.
head -c $((8 * MIB)) /dev/zero >"$TMP/upload.bin"
code=$(fetch early "$PF" --max-time 10 --data-binary "@$TMP/upload.bin" \
    http://api.test/early)
rc=$?
check_eq "an early close-delimited answer during an upload (plain): 401, \
its body, no error" "401 early answer 0" \
    "$code $(cat "$TMP/early.body" 2>/dev/null) $rc"
# The other way: the client's close_notify reaches the origin; a client
# that closes TCP without one makes pinproxy send none either.
cat >"$TMP/tlsclose.py" <<'EOF'
import socket, ssl, sys
from connect_client import open_tunnel
port, cafile, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s, head = open_tunnel(port, "end.test:443")
ctx = ssl.create_default_context(cafile=cafile)
t = ctx.wrap_socket(s, server_hostname="end.test")
t.sendall(b"some bytes\n")
try:
    if how == "notify":
        t.unwrap()
    else:
        t.shutdown(socket.SHUT_RDWR)
except (ssl.SSLError, OSError):
    pass
t.close()
EOF
for how in notify bare; do
	n=$(origin_count "$TMP/oe.log" end)
	py "$TMP/tlsclose.py" "$PF" "$TMP/ca-f.pem" "$how" >/dev/null 2>&1
	for i in $(seq 100); do
		[ "$(origin_count "$TMP/oe.log" end)" -gt "$n" ] && break
		t_sleep 0.05
	done
	want=close_notify
	[ "$how" = bare ] && want=bare
	check_eq "client ends its TLS stream $how (CONNECT): the origin's \
stream ends $want" "\"how\": \"$want\"}" \
	    "$(grep '"event": "end"' "$TMP/oe.log" | tail -n 1 |
	    sed 's/.*"event": "end", //')"
done
# A TLS half-close: a client that sends its request and ends its TLS
# stream at once (a close_notify, as TLS 1.3 allows while it still reads)
# gets the whole answer; the origin gets the close_notify after the
# request and answers it all the same.
check_eq "client ends its TLS stream after its request (CONNECT): the \
whole answer" "TLSv1.3 end=clean status=200 body=$(( ${#HELLO} + 1 ))" \
    "$(py "$TMP/tlsend.py" "$PF" api.test /hello "$TMP/ca-f.pem" half 2>&1)"
# A TLS 1.3 client's close_notify after its request, passed on to a TLS
# 1.2 upstream, which answers it with its own and drops what it had not
# sent (here, the whole answer): that end proves nothing, and the client
# must not get a close_notify that would make a cut answer look whole.
check_eq "client ends its TLS 1.3 stream, the TLS 1.2 upstream answers \
with close_notify: the client's end is ragged, not clean" \
    "TLSv1.3 end=ragged status=none body=0" \
    "$(py "$TMP/tlsend.py" "$PF" tls12.test /hello "$TMP/ca-f.pem" half 2>&1)"
check_eq "the TLS 1.2 upstream got the client's close_notify" \
    '"how": "close_notify"}' "$(grep '"event": "end"' "$TMP/ot.log" |
    tail -n 1 | sed 's/.*"event": "end", //')"
alive "the end of an intercepted TLS stream" "$PP_F" "$PF"

# A TLS alert, garbage or a reset instead of a ServerHello; the reason
# logged says which (not a bare "unknown error").
for kind in alert garbage rsthello; do
	case $kind in
	alert)		why="TLS handshake failed: sslv3 alert handshake failure" ;;
	garbage)	why="TLS handshake failed: wrong version number" ;;
	# The reset is read as one, or as the end when an earlier read
	# took the error: the reason names either.
	rsthello)	why="(the server closed the connection during the TLS \
handshake|TLS handshake failed: Connection reset by peer)" ;;
	esac
	code=$(fetch "$kind" "$PF" --max-time 10 "http://$kind.test/hello")
	check_eq "upstream answers TLS with $kind (plain): 502" 502 "$code"
	check_eq "upstream answers TLS with $kind (plain): details=tls-failed" \
	    'pinproxy; error=tls_protocol_error; details="tls-failed"' \
	    "$(header "$TMP/$kind.head" Proxy-Status)"
	check_log "upstream answers TLS with $kind: event=upstream_error" \
	    "$TMP/f.log" "$(kv event upstream_error)" \
	    "$(kv host "$kind.test")" "$(kv error tls-failed)"
	check_log "upstream answers TLS with $kind: the reason names it" \
	    "$TMP/f.log" "$(kv event upstream_error)" \
	    "$(kv host "$kind.test")" "reason=\"$why\""
	python3 "$CLIENT" --proxy "$PF" --connect "$kind.test:443" \
	    --sni "$kind.test" --cafile "$TMP/ca-f.pem" --get /hello \
	    --timeout 10 >"$TMP/$kind-c.out" 2>&1
	check_eq "upstream answers TLS with $kind (CONNECT): fatal alert" \
	    alert "$(sed -n 's/^tls=//p' "$TMP/$kind-c.out")"
	grep -q '^tls=alert' "$TMP/$kind-c.out" ||
	    diag "$(cat "$TMP/$kind-c.out")"
	alive "upstream answers TLS with $kind" "$PP_F" "$PF"
done

# The upstream completes TLS (the pin matches), then closes before
# sending a response head. SPEC §3 has no row for this; record what
# pinproxy answers.
code=$(fetch nohead "$PF" --max-time 10 http://nohead.test/hello)
ps=$(header "$TMP/nohead.head" Proxy-Status)
check_eq "upstream closes before the response head (plain): 502" 502 "$code"
if printf '%s' "$ps" | grep -qE \
    '^pinproxy; error=[a-z_]+; details="[a-z-]+"$'; then
	ok "upstream closes before the response head: a Proxy-Status ($ps)"
else
	not_ok "upstream closes before the response head: a Proxy-Status"
	diag "Proxy-Status: $ps"
fi
diag "upstream closed before the response head: answered $code, $ps"
check "upstream closes before the response head: pinproxy sent the request" \
    test "$(origin_count "$TMP/on.log" request)" -ge 1
start=$(now_ms)
python3 "$CLIENT" --proxy "$PF" --connect nohead.test:443 \
    --sni nohead.test --cafile "$TMP/ca-f.pem" --get /hello \
    --timeout 10 >"$TMP/nohead-c.out" 2>&1
ms=$(( $(now_ms) - start ))
check_eq "upstream closes before the response head (CONNECT): TLS is up" \
    ok "$(sed -n 's/^tls=//p' "$TMP/nohead-c.out")"
check_eq "upstream closes before the response head (CONNECT): no answer" \
    "body=" "$(grep '^body=' "$TMP/nohead-c.out")"
check "upstream closes before the response head (CONNECT): no hang ($ms ms)" \
    test "$ms" -lt 5000
alive "upstream closes before the response head" "$PP_F" "$PF"

# The client leaves after the 200, in the middle of its ClientHello.
out=$(py "$TMP/hello.py" "$PF" api.test:443 api.test half 0.2 2>&1)
check_eq "client leaves in the middle of its ClientHello: the bare 200" \
    "HTTP/1.1 200 Connection established" "$out"
check_log "client leaves in the middle of its ClientHello: access line" \
    "$TMP/f.log" "$(kv event access)" "$(kv host api.test)" \
    "$(kv bytes_up 0)"
alive "client leaves in the middle of its ClientHello" "$PP_F" "$PF"
check_fds "client leaves in the middle of its ClientHello" "$PP_F" "$BASE_F"
# The same with a reset: noticed at once too, not at header_timeout.
out=$(py "$TMP/hello.py" "$PF" api.test:443 api.test half 0.2 reset 2>&1)
check_eq "client resets in the middle of its ClientHello: the bare 200" \
    "HTTP/1.1 200 Connection established" "$out"
check_fds "client resets in the middle of its ClientHello" "$PP_F" "$BASE_F"

# The client leaves while the upstream handshake hangs (a silent origin),
# with CONNECT and with a plaintext request, at the same time. pinproxy
# must let go of both upstreams, at the latest at connect_timeout (3 s).
start=$(now_ms)
py "$TMP/hello.py" "$PF" silent.test:443 silent.test all 0.5 \
    >"$TMP/silent-c.out" 2>&1 &
SILENT_C=$!
pcurl "$PF" --max-time 0.5 -o /dev/null http://silent.test/hello \
    2>/dev/null
wait "$SILENT_C"
check_eq "client leaves during the upstream handshake (CONNECT): the 200" \
    "HTTP/1.1 200 Connection established" "$(cat "$TMP/silent-c.out")"
check "client leaves during the upstream handshake: both reached the origin" \
    test "$(origin_count "$TMP/oq.log" accept)" = 2
left=$(now_ms)
origin_settle "$TMP/oq.log" 8
ms=$(( $(now_ms) - left ))
check "client leaves during the upstream handshake: upstreams closed \
by connect_timeout ($ms ms after the clients left)" \
    test "$(origin_count "$TMP/oq.log" close)" = 2 -a "$ms" -lt 4000
alive "client leaves during the upstream handshake" "$PP_F" "$PF"
check_fds "client leaves during the upstream handshake" "$PP_F" "$BASE_F"
# A client that stays gets an alert at connect_timeout; its access line
# says 504, the status an HTTP client of the same upstream gets.
python3 "$CLIENT" --proxy "$PF" --connect silent.test:443 \
    --sni silent.test --cafile "$TMP/ca-f.pem" --get /hello \
    --timeout 10 >"$TMP/silent-stay.out" 2>&1
check_eq "a silent upstream, the client stays (CONNECT): an alert" \
    alert "$(sed -n 's/^tls=//p' "$TMP/silent-stay.out")"
check_log "a silent upstream (CONNECT): access line status=504" \
    "$TMP/f.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host silent.test)" "$(kv status 504)"

# The client is killed after 1 MiB of a 100 MiB download.
n=$(origin_count "$TMP/om.log" close)
spawn DL curl -sS --noproxy '' -x "http://127.0.0.1:$PF" --max-time 30 \
    -o "$TMP/dl.body" http://api.test/bytes/104857600
for i in $(seq 200); do
	[ "$(stat -c %s "$TMP/dl.body" 2>/dev/null || echo 0)" -ge "$MIB" ] &&
	    break
	t_sleep 0.05
done
size=$(stat -c %s "$TMP/dl.body" 2>/dev/null || echo 0)
kill -KILL "$DL" 2>/dev/null
wait "$DL" 2>/dev/null
check "client killed mid-download: it had received 1 MiB ($size bytes)" \
    test "$size" -ge "$MIB"
origin_settle "$TMP/om.log"
check "client killed mid-download: pinproxy dropped the upstream" \
    test "$(origin_count "$TMP/om.log" close '"error"')" -gt 0 -a \
    "$(origin_count "$TMP/om.log" close)" -gt "$n"
# The access line keeps the response's status, and the bytes it sent.
line=$(grep 'event=access' "$TMP/f.log" | grep 'host=api.test' |
    tail -n 1)
check "client killed mid-download: access line status=200" \
    eval 'case "$line" in *" status=200 "*) true ;; *) false ;; esac'
down=$(printf '%s\n' "$line" | sed -n 's/.* bytes_down=\([0-9]*\).*/\1/p')
check "client killed mid-download: access line counts the MiB sent" \
    test "${down:-0}" -ge "$MIB"
alive "client killed mid-download" "$PP_F" "$PF"
check_fds "client killed mid-download" "$PP_F" "$BASE_F"

# The client leaves after 1 MiB of a 100 MiB upload.
python3 - "$PF" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST http://api.test/echo?upload-cut HTTP/1.1\r\n"
          b"Host: api.test\r\nContent-Length: 104857600\r\n\r\n")
block = b"u" * 65536
for i in range(16):
    s.sendall(block)
s.close()
EOF
origin_settle "$TMP/om.log"
up=$(grep -F '"path": "/echo?upload-cut"' "$TMP/om.log" | head -n 1 |
    sed 's/^{"conn": \([0-9]*\),.*/\1/')
check "client leaves mid-upload: the request reached the origin" \
    test -n "$up"
check "client leaves mid-upload: the origin saw the body cut short" \
    grep -qF "{\"conn\": ${up:-none}, \"event\": \"close\", \"error\": \
\"closed in the middle" "$TMP/om.log"
check_eq "client leaves mid-upload: no complete body reached the origin" 0 \
    "$(grep -c "^{\"conn\": ${up:-none}, \"event\": \"body\"" "$TMP/om.log")"
alive "client leaves mid-upload" "$PP_F" "$PF"
check_fds "client leaves mid-upload" "$PP_F" "$BASE_F"

# The same to a server that stopped reading: pinproxy holds the client
# back and reads nothing of it; a client that resets its connection is
# found within a second or so all the same (not at idle_timeout, 5 min
# here), and the upstream is reset. (A client that only closes sends its
# FIN behind its own unsent body bytes: nothing of it can reach pinproxy
# before idle_timeout.)
n=$(origin_count "$TMP/os.log" reset)
python3 - "$PF" <<'EOF'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST http://stall.test/upload HTTP/1.1\r\n"
          b"Host: stall.test\r\nContent-Length: 104857600\r\n\r\n")
s.settimeout(2)
block = b"u" * 65536
try:
    while True:
        s.sendall(block)
except OSError:
    pass
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
EOF
start=$(now_ms)
for (( i = 0; i < 100; i++ )); do
	[ "$(origin_count "$TMP/os.log" reset)" -gt "$n" ] && break
	t_sleep 0.05
done
ms=$(( $(now_ms) - start ))
check "client reset mid-upload to a server that stopped \
reading: the upstream reset in $ms ms" \
    test "$(origin_count "$TMP/os.log" reset)" -gt "$n"
check_log "client reset mid-upload, server not reading: its \
access line" "$TMP/f.log" "$(kv event access)" "$(kv host stall.test)" \
    "$(kv mode plain)"
# A server that answers before the body (a 413): the client stops its
# upload and shuts down its side, as RFC 9112 (9.6) has it, and reads
# the whole answer.
out=$(py - "$PF" <<'EOF'
import socket, sys
from connect_client import read_rest
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST http://early.test/upload HTTP/1.1\r\n"
          b"Host: early.test\r\nContent-Length: 10000000\r\n\r\n" +
          b"u" * 100000)
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
s.shutdown(socket.SHUT_WR)
rest = read_rest(s, timeout=5)
print(head.split(b"\r\n")[0].decode(), len(rest))
EOF
)
check_eq "an answer before the body, the client stops and ends its side: \
the whole answer" "HTTP/1.1 413 Content Too Large 200000" "$out"
alive "client reset mid-upload to a server that stopped reading" \
    "$PP_F" "$PF"
check_fds "client reset mid-upload to a server that stopped reading" \
    "$PP_F" "$BASE_F"

# Slow DNS (1 s) within connect_timeout = 3s.
start=$(now_ms)
code=$(fetch slowdns5 "$PF" http://slowdns.test/close)
ms=$(( $(now_ms) - start ))
check_eq "DNS answers in 1 s, connect_timeout = 3s: 200" 200 "$code"
check "DNS answers in 1 s, connect_timeout = 3s: after about 1 s ($ms ms)" \
    test "$ms" -ge 900 -a "$ms" -lt 2900
alive "slow DNS within connect_timeout" "$PP_F" "$PF"

# A client that shuts down its sending side right after its request, while
# the upstream is still being resolved and dialled: it gets the response.
check_eq "half-closed client, upstream still dialled: the close after it" \
    closed "$(half_closed halfdns "$PF" \
    'GET http://slowdns.test/close HTTP/1.1\r\nHost: slowdns.test\r\n\r\n')"
check_eq "half-closed client, upstream still dialled: 200" 200 \
    "$(status_of halfdns)"
check "half-closed client, upstream still dialled: the body" \
    grep -q 'close-delimited body from origin' "$TMP/halfdns.resp"
alive "half-closed client during slow DNS" "$PP_F" "$PF"

# A client that gives up while its CONNECT's target is looked up: the
# tunnel ends then (status 0, no answer), not at connect_timeout (3 s).
start=$(now_ms)
python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CONNECT gaveup.test:443 HTTP/1.1\r\n\r\n")
s.close()' "$PF"
check_log "a client gives up during the lookup: its access line, status 0" \
    "$TMP/f.log" "$(kv event access)" "$(kv host gaveup.test)" \
    "$(kv status 0)"
ms=$(( $(now_ms) - start ))
check "a client gives up during the lookup: ended at once ($ms ms)" \
    test "$ms" -lt 2000
check_fds "a client gives up during the lookup" "$PP_F" "$BASE_F"

# 40 clients name hosts whose answers take 30 s: 80 queries, more than
# the resolver keeps in flight by default (64). The others' lookups must
# not wait behind them until connect_timeout gives them up.
spawn NEVER python3 -c '
import socket, sys, time
held = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"CONNECT never%d.test:443 HTTP/1.1\r\n\r\n" % i)
    held.append(s)
print("sent", flush=True)
time.sleep(30)' "$PF" >"$TMP/never.out"
wait_line "$TMP/never.out" '^sent$'
# Until the resolver has as many of their queries in flight as evdns's
# default allows.
for (( i = 0; i < 100; i++ )); do
	[ "$(grep -ci '"never' "$TMP/dns.log")" -ge 64 ] && break
	t_sleep 0.05
done
start=$(now_ms)
code=$(fetch slowdns-busy "$PF" http://slowdns.test/close)
ms=$(( $(now_ms) - start ))
check_eq "40 lookups that never end in time: another one still answers, 200" \
    200 "$code"
check "40 lookups that never end in time: the other within its 1 s ($ms ms)" \
    test "$ms" -lt 2900
stop "$NEVER"
alive "lookups that never end" "$PP_F" "$PF"

# A resolver whose one nameserver never answers: what libevent says about
# it comes as log lines like any other (event=libevent), not raw text.
printf 'nameserver 127.0.0.1:%s\noptions timeout:1 attempts:1\n' \
    "$(free_port)" >"$TMP/dead-resolv.conf"
PD=$(free_port)
conf "$PD" d "header_timeout = 1s" >"$TMP/d.conf"
check "pinproxy D (a dead nameserver) listens on 127.0.0.1:$PD" \
    start_pinproxy PP_D "$PD" "$TMP/d.conf" "$TMP/d.log" \
    PINPROXY_RESOLV_CONF="$TMP/dead-resolv.conf"
check_eq "a dead nameserver: 502" 502 \
    "$(fetch deadns "$PD" --max-time 10 http://unknown.test/)"
check_log "a dead nameserver: libevent's message, event=libevent" \
    "$TMP/d.log" "$(kv event libevent)" "msg=\"Nameserver 127.0.0.1:"

# A server that trickles its response head, a byte each 0.2 s: each byte
# is traffic, so idle_timeout never comes; header_timeout (1 s here)
# bounds the head from its first byte, as it bounds a request's. Also for
# a client that shut down its sending side, which nothing else would
# end: it used to hold its slot for as long as the bytes came.
start=$(now_ms)
code=$(fetch trickle "$PD" --max-time 10 http://trickle.test/x)
ms=$(( $(now_ms) - start ))
check_eq "a response head trickled: 504" 504 "$code"
check "a response head trickled: after header_timeout ($ms ms)" \
    test "$ms" -ge 1000 -a "$ms" -lt 5000
check_log "a response head trickled: upstream_error error=timeout" \
    "$TMP/d.log" "$(kv event upstream_error)" "$(kv host trickle.test)" \
    "$(kv error timeout)" "header_timeout of its first byte"
out=$(python3 - "$PD" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://trickle.test/y HTTP/1.1\r\nHost: trickle.test\r\n\r\n")
s.shutdown(socket.SHUT_WR)
t = time.monotonic()
got = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except OSError:
    pass
print(got.split(b" ")[1].decode() if got else "none",
      int((time.monotonic() - t) * 1000))
EOF
)
read -r code ms <<<"$out"
check_eq "a response head trickled, the client's side shut down: 504" 504 \
    "$code"
check "a response head trickled, the client's side shut down: then the \
close ($ms ms)" test "${ms:-99999}" -lt 5000
stop_pinproxy "$PP_D" "$TMP/d.log"
check_eq "a dead nameserver: every line of the log is logfmt" "" \
    "$(grep -v '^level=[a-z]* event=[a-z_]* ' "$TMP/d.log")"

# An upstream that speaks first and ends in order (close_notify) while
# the client's handshake still runs: the client gets what it sent, then
# the end, instead of a connection closed with nothing (the upstream's
# end is seen first, at debug level, before the client finishes).
PB=$(free_port)
conf "$PB" b "log_level = debug" >"$TMP/b.conf"
check "pinproxy B (debug) listens on 127.0.0.1:$PB" \
    start_pinproxy PP_B "$PB" "$TMP/b.conf" "$TMP/b.log"
spawn BC python3 "$CLIENT" --proxy "$PB" --connect bannerclose.test:443 \
    --sni bannerclose.test --cafile "$TMP/ca-b.pem" --listen \
    --hold-finished "$TMP/bc.go" --timeout 10 >"$TMP/bc.out" 2>&1
check "a banner, then the end: pinproxy sees the end before the client \
finishes" wait_log "$TMP/b.log" 'upstream for bannerclose\.test (ended|closed)'
touch "$TMP/bc.go"
wait "$BC" 2>/dev/null
check_eq "a banner, then the end: the client gets the banner" \
    'data=220 banner ready\r\n' "$(grep '^data=' "$TMP/bc.out")"
check_eq "a banner, then the end: then the end, in order" end=close_notify \
    "$(grep '^end=' "$TMP/bc.out")"
stop_pinproxy "$PP_B" "$TMP/b.log"

# A relay whose server stopped reading holds the client back too: a
# client that resets its connection is found at the relay's next look
# (a quarter of idle_timeout, 2 s here), not at idle_timeout (8 s). A
# blind tunnel to a sink that never reads.
cat >"$TMP/sink.py" <<'EOF'
import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(8)
print(l.getsockname()[1], flush=True)
held = []
while True:
    held.append(l.accept()[0])
EOF
spawn SINK python3 "$TMP/sink.py" >"$TMP/sink.out"
for (( i = 0; i < 100; i++ )); do
	[ -s "$TMP/sink.out" ] && break
	t_sleep 0.05
done
SINKP=$(head -n 1 "$TMP/sink.out")
PR=$(free_port)
conf "$PR" r "idle_timeout = 8s
connect_ports = $SINKP" >"$TMP/r.conf"
check "pinproxy R (idle_timeout = 8s) listens on 127.0.0.1:$PR" \
    start_pinproxy PP_R "$PR" "$TMP/r.conf" "$TMP/r.log"
out=$(py - "$PR" "$SINKP" <<'EOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" %
          sys.argv[2].encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += s.recv(1)
s.settimeout(1)
try:
    while True:
        s.sendall(b"\x00" * 65536)
except OSError:
    pass
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print(head.split(b"\r\n")[0].decode())
EOF
)
start=$(now_ms)
wait_log "$TMP/r.log" "$(kv event access)" >/dev/null
ms=$(( $(now_ms) - start ))
check_eq "a blind tunnel to a sink: the 200" \
    "HTTP/1.1 200 Connection established" "$out"
check "a client reset while its tunnel's server stopped reading: ended \
at the relay's next look, before idle_timeout ($ms ms)" test "$ms" -lt 5000
stop_pinproxy "$PP_R" "$TMP/r.log"
stop "$SINK"

# A reload reads resolv.conf again: the network (and its nameserver) may
# have changed since the start. moved.test is known only to a second
# dnsd, which resolv.conf names from now on.
check_eq "moved.test, unknown to the nameserver: 502" 502 \
    "$(fetch moved1 "$PF" --max-time 10 http://moved.test/close)"
DNSPORT2=$(free_port)
start_server DNS2 "$TMP/dns2.log" python3 "$DNSD" --port "$DNSPORT2" \
    --map moved.test=127.0.0.1
cp "$TMP/resolv.conf" "$TMP/resolv.conf.first"
echo "nameserver 127.0.0.1:$DNSPORT2" >"$TMP/resolv.conf"
check "F reloaded with another nameserver in resolv.conf" \
    reload "$PP_F" "$TMP/f.log"
check_eq "after the reload, the new nameserver answers: 200" 200 \
    "$(fetch moved2 "$PF" --max-time 10 http://moved.test/close)"
cp "$TMP/resolv.conf.first" "$TMP/resolv.conf"
check "F reloaded with the first nameserver again" \
    reload "$PP_F" "$TMP/f.log"
stop "$DNS2"

# A plaintext server that answers 103, then its final answer a second
# later: Python's http.client (the client of requests and urllib3) takes
# the 103 for the answer, and its next request on the same proxy
# connection, for the pinned api.test, would have read the plaintext
# server's late answer as api.test's. The 103 never reaches the client:
# each request gets its own server's answer. (The reload below closes
# the upstream connections this leaves in the pool, which the descriptor
# counts would else find.)
out=$(python3 - "$PF" "$OL" <<'EOF' 2>&1
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
got = []
for url in ("http://127.0.0.1:%s/news" % sys.argv[2], "http://api.test/hello"):
    c.request("GET", url)
    r = c.getresponse()
    got.append("%d %s" % (r.status, r.read().decode().strip()))
print(" | ".join(got))
EOF
)
check_eq "a 103 before a late answer: each request gets its own answer" \
    "200 late answer from badorigin | 200 $HELLO" "$out"
# The same through a 101: http.client takes it for an answer too (a
# client that offers an upgrade it does not make), and a server that
# then answers as HTTP, with the 101 (its bytes queued when the relay
# starts) or 5 ms later, would have that answer read as the next
# request's. The server's stream after a 101 may not begin with
# "HTTP/": the relay is refused before a byte of it goes, and the next
# request finds the connection closed. (5 ms later, the client's next
# request usually comes first, and the guard of the client's stream
# ends the relay.)
for w in "$OW" "$OW0"; do
	out=$(python3 - "$PF" "$w" <<'EOF' 2>&1
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
got = []
try:
    c.request("GET", "http://127.0.0.1:%s/ws" % sys.argv[2],
              headers={"Connection": "Upgrade", "Upgrade": "websocket"})
    r = c.getresponse()
    got.append("%d %s" % (r.status, r.read().decode().strip()))
    c.request("GET", "http://api.test/hello")
    r = c.getresponse()
    got.append("%d %s" % (r.status, r.read().decode().strip()))
except Exception as e:
    got.append(type(e).__name__)
print(" | ".join(got))
EOF
)
	case $out in
	"101  | "*answer*|*"after a 101"*)
		not_ok "a response after a 101 (port $w): not taken for the \
next request's"
		diag "$out" ;;
	"101  | "*)
		ok "a response after a 101 (port $w): not taken for the next \
request's ($out)" ;;
	*)
		not_ok "a response after a 101 (port $w): not taken for the \
next request's"
		diag "$out" ;;
	esac
done
check_log "a response after a 101: blocked" "$TMP/f.log" \
    "$(kv event blocked)" "an HTTP response after a 101"

# A resolv.conf missing at a reload (being rewritten, say) keeps the
# nameservers in use instead of evdns's default, 127.0.0.1:53.
mv "$TMP/resolv.conf" "$TMP/resolv.conf.away"
check "F reloaded without a resolv.conf" reload "$PP_F" "$TMP/f.log"
check_log "no resolv.conf at the reload: a config_warning says so" \
    "$TMP/f.log" "$(kv event config_warning)" "nameservers read before are kept"
mv "$TMP/resolv.conf.away" "$TMP/resolv.conf"
check_eq "no resolv.conf at the reload: the nameserver in use still answers" \
    200 "$(fetch kept "$PF" --max-time 10 http://slowdns.test/close)"

# At the end: descriptors at rest, and a clean exit.
check_fds "pinproxy F at the end" "$PP_F" "$BASE_F"
stop_pinproxy "$PP_F" "$TMP/f.log"

done_testing
