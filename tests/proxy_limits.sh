#!/bin/bash
# pinproxy's limits end to end: malformed and oversized request heads,
# slow clients, ambiguous framing, client addresses, requests to itself,
# memory that stays bounded while a client reads a large body slowly or
# not at all, and intercepted clients that stall in their TLS handshake.
# Everything runs on 127.0.0.1 with TLS test origins (tests/origin.py,
# tests/badorigin.py).

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

RSS_LIMIT_KB=$((32 * 1024))

# raw NAME PORT QUIET: send stdin to 127.0.0.1:PORT (without closing our
# side) and keep what comes back in $TMP/NAME.resp, until the peer closes
# or stays quiet for QUIET seconds; prints how many ms that took.
raw()
{
	python3 - "$TMP/$1.resp" "$2" "$3" 3<&0 <<'EOF'
import os, socket, sys, time
out_path, port, quiet = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
data = os.fdopen(3, "rb").read()
start = time.monotonic()
out = b""
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=quiet)
    try:
        s.sendall(data)
    except OSError:
        pass
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
open(out_path, "wb").write(out)
print(int((time.monotonic() - start) * 1000))
EOF
}

# check_answer NAME STATUS ERROR DETAILS: two cases on a raw response.
check_answer()
{
	check_eq "$1: status $2" "$2" "$(status_of "$1")"
	check_eq "$1: Proxy-Status error=$3 details=$4" \
	    "pinproxy; error=$3; details=\"$4\"" \
	    "$(header_of "$1" Proxy-Status)"
	if [ "$(status_of "$1")" != "$2" ]; then
		diag "response: $(head -c 300 "$TMP/$1.resp" 2>/dev/null)"
	fi
}

make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/chain.pem" \
    --key "$PKI/leaf.key"

# No name is resolved here; a nameserver that never answers keeps any
# attempt on the loopback.
echo "nameserver 127.0.0.1:$(free_port)" >"$TMP/resolv.conf"

PL=$(free_port)
cat >"$TMP/l.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PL
ca_cert = $TMP/ca-l.pem
ca_key = $TMP/ca-l.key
trust = $PKI/root.pem
unpinned = pass
header_timeout = 1s
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF

PD=$(free_port)
cat >"$TMP/d.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PD
ca_cert = $TMP/ca-d.pem
ca_key = $TMP/ca-d.key
trust = $PKI/root.pem
allow_clients = 10.0.0.0/8
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF

# Instance H: CONNECT interception only, header_timeout = 1s.
PH=$(free_port)
cat >"$TMP/h.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PH
ca_cert = $TMP/ca-h.pem
ca_key = $TMP/ca-h.key
trust = $PKI/root.pem
header_timeout = 1s
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF

# Instance U: its upstream closes right after the TLS handshake, and
# header_timeout = 30s is far away.
OU=$(free_port)
start_server O_U "$TMP/ou.log" python3 "$BADORIGIN" --port "$OU" \
    --mode tls-close --cert "$PKI/chain.pem" --key "$PKI/leaf.key"
PU=$(free_port)
sed -e "s/^listen = .*/listen = 127.0.0.1:$PU/" \
    -e "s/^header_timeout = .*/header_timeout = 30s/" \
    -e "s/ca-h\./ca-u./" -e "s/:$OM\$/:$OU/" "$TMP/h.conf" >"$TMP/u.conf"

small_quarantine

check "pinproxy L listens on 127.0.0.1:$PL" \
    start_pinproxy PP_L "$PL" "$TMP/l.conf" "$TMP/l.log"
check "pinproxy D listens on 127.0.0.1:$PD" \
    start_pinproxy PP_D "$PD" "$TMP/d.conf" "$TMP/d.log"
check "pinproxy H listens on 127.0.0.1:$PH" \
    start_pinproxy PP_H "$PH" "$TMP/h.conf" "$TMP/h.log"
check "pinproxy U listens on 127.0.0.1:$PU" \
    start_pinproxy PP_U "$PU" "$TMP/u.conf" "$TMP/u.log"

# The pinned origin works through L, so that what follows is about limits.
got=$(pcurl "$PL" http://api.test/hello 2>&1)
check_eq "api.test through pinproxy" "hello from origin" "$got"

# rss_peak PID WATCHED FILE: sample the VmRSS of PID every 200 ms while
# the process WATCHED runs, then put the highest in FILE.
rss_peak()
{
	local max r
	max=$(rss_kb "$1")
	while kill -0 "$2" 2>/dev/null; do
		t_sleep 0.2
		r=$(rss_kb "$1")
		[ "${r:-0}" -gt "${max:-0}" ] && max=$r
	done
	echo "${max:-0}" >"$3"
}

# Bounded memory: a client reads a 200 MiB body at 1 MiB/s for 10 s from
# an origin that could send it all at once. With sanitizers the baseline
# is the sanitizer's, so only the growth is bounded. It is mostly
# waiting: the cases below run meanwhile, and its own come after them.
sanitized=no
built_with_sanitizers && sanitized=yes
before=$(rss_kb "$PP_L")
spawn SLOW curl -sS --noproxy '' -x "http://127.0.0.1:$PL" \
    --limit-rate 1M --max-time 10 -o /dev/null -w '%{size_download}' \
    http://api.test/bytes/209715200 >"$TMP/slow.size" 2>/dev/null
spawn SLOW_RSS rss_peak "$PP_L" "$SLOW" "$TMP/slow.peak"

# Malformed heads.
printf 'GARBAGE\r\n\r\n' | raw garbage "$PL" 5 >/dev/null
check_answer garbage 400 http_request_error bad-request
printf '%s\r\n' 'GET http://api.test/hello HTTP/1.1' 'Host: api.test' \
    'no colon' '' | raw nocolon "$PL" 5 >/dev/null
check_answer nocolon 400 http_request_error bad-request

# The 16 KiB head limit: 15 KiB pass, 20 KiB in one line or in forty do
# not.
pad=$(head -c 15000 /dev/zero | tr '\0' a)
code=$(pcurl "$PL" -o /dev/null -w '%{http_code}' -H "X-Pad: $pad" \
    http://api.test/hello 2>/dev/null)
check_eq "a 15 KiB head is served" 200 "$code"
{
	printf 'GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n'
	printf 'X-Pad: %s\r\n\r\n' "$(head -c 20480 /dev/zero | tr '\0' a)"
} | raw big "$PL" 5 >/dev/null
check_answer big 431 http_request_error header-too-large
{
	printf 'GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n'
	for i in $(seq 40); do
		printf 'X-Pad-%d: %s\r\n' "$i" "${pad:0:500}"
	done
	printf '\r\n'
} | raw many "$PL" 5 >/dev/null
check_answer many 431 http_request_error header-too-large

# Half a head, then silence.
ms=$(printf 'GET http://api.test/hello HTTP/1.1\r\nHost: api' |
    raw partial "$PL" 6)
check_answer partial 408 http_request_error header-timeout
check "partial head: answered after header_timeout = 1s (${ms:-?} ms)" \
    test "${ms:-0}" -ge 900 -a "${ms:-0}" -lt 5000

# Content-Length and Transfer-Encoding together: refused before anything
# reaches the origin.
printf '%s\r\n' 'POST http://api.test/echo?smuggle HTTP/1.1' \
    'Host: api.test' 'Content-Length: 5' 'Transfer-Encoding: chunked' '' \
    '5' 'hello' '0' '' | raw clte "$PL" 5 >/dev/null
check_answer clte 400 http_request_error bad-request
t_sleep 0.2
desc="Content-Length with Transfer-Encoding: nothing reaches the origin"
if grep -qF 'smuggle' "$TMP/om.log" 2>/dev/null; then
	not_ok "$desc"
	diag "$(grep -F smuggle "$TMP/om.log")"
else
	ok "$desc"
fi

# A client outside allow_clients.
code=$(pcurl "$PD" -D "$TMP/denied.head" -o "$TMP/denied.body" \
    -w '%{http_code}' http://api.test/hello 2>/dev/null)
check_eq "client outside allow_clients: 403" 403 "$code"
check_eq "client outside allow_clients: details=client-denied" \
    "pinproxy; error=http_request_denied; details=\"client-denied\"" \
    "$(tr -d '\r' <"$TMP/denied.head" 2>/dev/null |
    grep -i '^proxy-status:' | sed 's/^[^:]*: *//')"

# A request addressed to pinproxy's own listener.
code=$(pcurl "$PL" -D "$TMP/loop.head" -o "$TMP/loop.body" \
    -w '%{http_code}' "http://127.0.0.1:$PL/" 2>/dev/null)
check_eq "request to the proxy itself: 508" 508 "$code"
check_eq "request to the proxy itself: details=loop" \
    "pinproxy; error=proxy_loop_detected; details=\"loop\"" \
    "$(tr -d '\r' <"$TMP/loop.head" 2>/dev/null |
    grep -i '^proxy-status:' | sed 's/^[^:]*: *//')"

# hclient NAME PROXY CA ARGS...: tests/connect_client.py to api.test
# through PROXY, trusting CA; its output in $TMP/NAME.out.
hclient()
{
	local name=$1 proxy=$2 ca=$3
	shift 3
	python3 "$CLIENT" --proxy "$proxy" --connect api.test:443 \
	    --sni api.test --cafile "$ca" "$@" >"$TMP/$name.out" 2>&1
}

# outval NAME KEY: the value of KEY= in $TMP/NAME.out.
outval()
{
	sed -n "s/^$2=//p" "$TMP/$1.out" 2>/dev/null | head -n 1
}

# An intercepted client sends its ClientHello in the same write as the
# CONNECT head, asks for 200 MiB and stops reading: pinproxy stops reading
# the origin instead of buffering the body.
hclient warm "$PH" "$TMP/ca-h.pem" --hello-with-connect --get /hello
check_eq "H: hello sent with the CONNECT head: intercepted and served" \
    'hello from origin\n' "$(outval warm body)"
before=$(rss_kb "$PP_H")
spawn STOPPED hclient stopped "$PH" "$TMP/ca-h.pem" --hello-with-connect \
    --get /bytes/209715200 --stop-reading 1048576 --hold 3 --timeout 20
max=${before:-0}
for i in $(seq 150); do
	kill -0 "$STOPPED" 2>/dev/null || break
	r=$(rss_kb "$PP_H")
	[ "${r:-0}" -gt "$max" ] && max=$r
	t_sleep 0.1
done
wait "$STOPPED" 2>/dev/null
check "stopped reader: it received its first MiB" \
    test "$(outval stopped received)" -ge 1048576
check_eq "stopped reader: it held the tunnel without reading" 3 \
    "$(outval stopped held)"
diag "VmRSS of H before ${before:-?} KiB, peak $max KiB"
check "stopped reader (hello with the CONNECT head): VmRSS grows by \
less than 32 MiB" test -n "$before" -a $((max - ${before:-0})) -lt \
    "$RSS_LIMIT_KB"

# A client that sends its ClientHello and never goes on with its
# handshake is closed at header_timeout (1s), whether the hello came with
# the CONNECT head or after the 200; its descriptors are released.
fds=$(fd_count "$PP_H")
for how in with-head after-200; do
	arg=--hello-with-connect
	[ "$how" = after-200 ] && arg=--split=1
	hclient "stall-$how" "$PH" "$TMP/ca-h.pem" "$arg" --stall --timeout 8
	check_eq "stalled handshake ($how): pinproxy closes" closed \
	    "$(outval "stall-$how" stall)"
	ms=$(outval "stall-$how" ms)
	check "stalled handshake ($how): closed at header_timeout = 1s \
(${ms:-?} ms)" test "${ms:-0}" -ge 900 -a "${ms:-0}" -lt 5000
done
check_log "stalled handshake: access status=408" "$TMP/h.log" \
    "$(kv event access)" "$(kv mode intercept)" "$(kv status 408)"
check_fds "stalled handshakes" "$PP_H" "$fds"

# The upstream closes right after its handshake, while the client stalls
# in its own: pinproxy ends the connection without waiting for
# header_timeout (30s).
fds=$(fd_count "$PP_U")
hclient stall-upclose "$PU" "$TMP/ca-u.pem" --hello-with-connect --stall \
    --timeout 8
check_eq "upstream closed before the relay: pinproxy closes the client" \
    closed "$(outval stall-upclose stall)"
ms=$(outval stall-upclose ms)
check "upstream closed before the relay: closed well before \
header_timeout (${ms:-?} ms)" test -n "$ms" -a "${ms:-99999}" -lt 5000
check_log "upstream closed before the relay: access status=502" \
    "$TMP/u.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv status 502)"
check_fds "upstream closed before the relay" "$PP_U" "$fds"

# The slow reader started above has had its 10 s.
wait "$SLOW" 2>/dev/null
wait "$SLOW_RSS" 2>/dev/null
max=$(cat "$TMP/slow.peak" 2>/dev/null)
max=${max:-999999999}
size=$(cat "$TMP/slow.size" 2>/dev/null)
check "slow reader: the body did flow (${size:-0} bytes in 10 s)" \
    test "${size:-0}" -ge $((5 * 1024 * 1024))
diag "VmRSS before ${before:-?} KiB, peak $max KiB, sanitizers: $sanitized"
if [ "$sanitized" = yes ]; then
	check "slow reader: VmRSS grows by less than 32 MiB" \
	    test -n "$before" -a $((max - ${before:-0})) -lt "$RSS_LIMIT_KB"
else
	check "slow reader: VmRSS stays under 32 MiB" \
	    test -n "$before" -a "$max" -lt "$RSS_LIMIT_KB"
fi
check "pinproxy L still runs after the slow reader left" kill -0 "$PP_L"

stop_pinproxy "$PP_L" "$TMP/l.log"
stop_pinproxy "$PP_D" "$TMP/d.log"
stop_pinproxy "$PP_H" "$TMP/h.log"
stop_pinproxy "$PP_U" "$TMP/u.log"

done_testing
