#!/bin/bash
# Plaintext requests through pinproxy end to end: curl asks for http://HOST/
# and pinproxy must reach the pinned origin over verified, pinned TLS, or
# answer with the error of the product contract. Origins (tests/origin.py),
# the DNS server (tests/dnsd.py) and the PKI (tests/mkpki.sh) all live on
# 127.0.0.1 and in the scratch directory.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# Once a daemon failed to start, its log will not grow: stop waiting.
FAILED_START_STOPS_WAITS=yes

# expect_error NAME PORT URL STATUS ERROR DETAILS HOST [CURL ARGS...]:
# pinproxy answers URL itself with STATUS, the Proxy-Status of the
# contract and a text/plain body naming HOST (three cases).
expect_error()
{
	local name=$1 port=$2 url=$3 status=$4 error=$5 details=$6 host=$7
	local code ctype

	code=$(fetch "$name" "$port" "$url" "${@:8}")
	check_status "$name: $status" "$status" "$code" "$name"
	check_eq "$name: Proxy-Status error=$error details=$details" \
	    "pinproxy; error=$error; details=\"$details\"" \
	    "$(header "$TMP/$name.head" Proxy-Status)"
	ctype=$(header "$TMP/$name.head" Content-Type)
	if printf '%s' "$ctype" | grep -qi '^text/plain' &&
	    grep -qF -- "$host" "$TMP/$name.body"; then
		ok "$name: text/plain body names $host"
	else
		not_ok "$name: text/plain body names $host"
		diag "Content-Type: $ctype"
		diag "body: $(head -c 500 "$TMP/$name.body" 2>/dev/null)"
	fi
}

# The PKI: the default set of tests/mkpki.sh, one leaf for every host name
# served by the main origin, and a leaf of the foreign root for the attack.
SANS=$(dns_sans api.test pin-leaf.test pin-inter.test pin-root.test \
    wrong.test reportonly.test expired.test keep.test dns.test slowdns.test \
    verify.test)
make_pki multi "$SANS,IP:127.0.0.1" inter \
    attack "DNS:attack.test" foreign-root
# The attack: a leaf of another trusted CA, with the pinned intermediate
# appended to what the server sends.
cat "$PKI/attack.pem" "$PKI/inter.pem" >"$PKI/attack-served.pem"
cat "$PKI/root.pem" "$PKI/foreign-root.pem" >"$PKI/trust.pem"

pki_pin PIN_LEAF multi
pki_pin PIN_INTER inter
pki_pin PIN_ROOT root
pki_pin PIN_SELF selfsigned
pki_pin PIN_FROOT foreign-root
pki_pin PIN_ATTACK attack
pki_pin PIN_RSA rsa

# Origins: M the main one, W for the wrong pin, X for the attack, S
# self-signed, K for keep-alive, P plain HTTP, Q silent, P2 plain HTTP on
# a port missing from plain_ports; and dnsd.
OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key" --alpn h2,http/1.1
OW=$(free_port)
start_origin O_W "$OW" "$TMP/ow.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"
OX=$(free_port)
start_origin O_X "$OX" "$TMP/ox.log" --cert "$PKI/attack-served.pem" \
    --key "$PKI/attack.key"
OS=$(free_port)
start_origin O_S "$OS" "$TMP/os.log" --cert "$PKI/selfsigned.pem" \
    --key "$PKI/selfsigned.key"
OK=$(free_port)
start_origin O_K "$OK" "$TMP/ok.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"
OP=$(free_port)
start_origin O_P "$OP" "$TMP/op.log" --plain
OQ=$(free_port)
start_origin O_Q "$OQ" "$TMP/oq.log" --silent
OP2=$(free_port)
start_origin O_P2 "$OP2" "$TMP/op2.log" --plain
CLOSED=$(free_port)

start_dnsd --map dns.test=127.0.0.1 --map plain.test=127.0.0.1 \
    --map slowdns.test=127.0.0.1 --slow slowdns.test=3 \
    --map verify.test=127.0.0.1 --map verifybad.test=127.0.0.1
# A search list that would turn the short name "dns" into the pinned
# dns.test: pinproxy must look names up as spelled.
echo "search test" >>"$TMP/resolv.conf"

# Instance A: unpinned hosts pass; one pin set per situation.
PA=$(free_port)
cat >"$TMP/a.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PA
ca_cert = $TMP/ca-a.pem
ca_key = $TMP/ca-a.key
trust = $PKI/trust.pem
unpinned = pass
plain_ports = 80, 443, $OP
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-leaf]
hosts = pin-leaf.test
pin = $PIN_RSA
pin = $PIN_LEAF
connect_to = 127.0.0.1:$OM

[pins:set-inter]
hosts = pin-inter.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-root]
hosts = pin-root.test
pin = $PIN_RSA
pin = $PIN_ROOT
connect_to = 127.0.0.1:$OM

[pins:set-wrong]
hosts = wrong.test
pin = $PIN_FROOT
pin = $PIN_RSA
connect_to = 127.0.0.1:$OW

[pins:set-attack]
hosts = attack.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OX

[pins:set-othername]
hosts = other.test
pin = $PIN_INTER
pin = $PIN_ROOT
connect_to = 127.0.0.1:$OM

[pins:set-self]
hosts = self.test
pin = $PIN_SELF
pin = $PIN_RSA
ca_file = $PKI/selfsigned.pem
connect_to = 127.0.0.1:$OS

[pins:set-reportonly]
hosts = reportonly.test
pin = $PIN_FROOT
pin = $PIN_RSA
enforce = no
connect_to = 127.0.0.1:$OM

[pins:set-expired]
hosts = expired.test
pin = $PIN_FROOT
pin = $PIN_RSA
expires = 2001-01-01
connect_to = 127.0.0.1:$OM

[pins:set-keep]
hosts = keep.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OK

[pins:set-dns]
hosts = dns.test
pin = $PIN_INTER
pin = $PIN_RSA
port = $OM

[pins:set-nx]
hosts = nx.test
pin = $PIN_INTER
pin = $PIN_RSA
port = $OM

[pins:set-refused]
hosts = refused.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$CLOSED
EOF

# Instance B: unpinned hosts are blocked and the upstream must be ready
# within a second.
PB=$(free_port)
cat >"$TMP/b.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PB
ca_cert = $TMP/ca-b.pem
ca_key = $TMP/ca-b.key
trust = $PKI/trust.pem
unpinned = block
connect_timeout = 1s
shutdown_timeout = 2s
ca_host = ca.test

[pins:set-silent]
hosts = silent.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OQ

[pins:set-slowdns]
hosts = slowdns.test
pin = $PIN_INTER
pin = $PIN_RSA
port = $OM

[pins:set-self-noca]
hosts = self.test
pin = $PIN_SELF
pin = $PIN_RSA
connect_to = 127.0.0.1:$OS
EOF

check "pinproxy A listens on 127.0.0.1:$PA" \
    start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log"
check_log "started: listen and the number of pin sets" "$TMP/a.log" \
    "$(kv event started)" "$(kv listen "127.0.0.1:$PA")" \
    "$(kv pinsets "$(grep -c '^\[pins:' "$TMP/a.conf")")"
check "pinproxy B listens on 127.0.0.1:$PB" \
    start_pinproxy PP_B "$PB" "$TMP/b.conf" "$TMP/b.log"

# Pins on each level of the verified chain.
for level in leaf inter root; do
	code=$(fetch "pin-$level" "$PA" "http://pin-$level.test/hello")
	check_status "pin on the $level: 200" 200 "$code" "pin-$level"
	check_eq "pin on the $level: the origin's body" "$HELLO" \
	    "$(cat "$TMP/pin-$level.body" 2>/dev/null)"
done

# What the origin receives: origin-form over TLS with SNI and ALPN
# http/1.1, without hop-by-hop and proxy headers.
code=$(fetch hop "$PA" "http://api.test/hello?hop=1" \
    -H 'Connection: keep-alive, X-Drop' -H 'X-Drop: 1' \
    -H 'Keep-Alive: timeout=5' -H 'TE: trailers' \
    -H 'Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=' -H 'X-Keep: 1')
check_status "api.test: 200" 200 "$code" hop
req=$(grep -F '"path": "/hello?hop=1"' "$TMP/om.log" | head -n 1)
check "origin got the request in origin-form with Host: api.test" \
    grep -qF '"host": "api.test"' <<<"$req"
check "origin got the end-to-end header X-Keep" \
    grep -qF '"x-keep": "1"' <<<"$req"
for h in x-drop keep-alive te proxy-connection proxy-authorization; do
	if [ -n "$req" ] && ! grep -qF "\"$h\":" <<<"$req"; then
		ok "hop-by-hop header $h is not forwarded"
	else
		not_ok "hop-by-hop header $h is not forwarded"
		diag "origin request: $req"
	fi
done
check "origin saw SNI api.test and ALPN http/1.1" \
    grep -qE '"event": "tls", .*"alpn": "http/1.1", "sni": "api.test"' \
    "$TMP/om.log"

# Max-Forwards (RFC 9110, 7.6.2): a TRACE or OPTIONS with 0 ends at the
# proxy, which answers it and dials nothing; with more, it goes on one
# less; another method's goes as it came.
code=$(fetch mf-options "$PA" -X OPTIONS -H 'Max-Forwards: 0' \
    "http://api.test/hello?mf-options")
check_status "OPTIONS, Max-Forwards: 0: pinproxy's 200" 200 "$code" \
    mf-options
check_eq "OPTIONS, Max-Forwards: 0: no content" 0 \
    "$(header "$TMP/mf-options.head" Content-Length)"
n=$(log_count "$TMP/a.log" "$(kv event access)" "$(kv host plain.test)" \
    "$(kv status 200)")
code=$(fetch mf-trace "$PA" -X TRACE -H 'Max-Forwards: 0' \
    -H 'Cookie: session=s3cret' -H 'X-Probe: traced' \
    "http://plain.test:$OP/hello?mf-trace")
check_status "TRACE, Max-Forwards: 0: pinproxy's 200" 200 "$code" mf-trace
check_eq "TRACE, Max-Forwards: 0: message/http" "message/http" \
    "$(header "$TMP/mf-trace.head" Content-Type)"
check_eq "TRACE, Max-Forwards: 0: the echo starts with the request line" \
    "TRACE http://plain.test:$OP/hello?mf-trace HTTP/1.1" \
    "$(head -n 1 "$TMP/mf-trace.body" | tr -d '\r')"
check "TRACE, Max-Forwards: 0: the echo has the request's fields" \
    grep -q '^X-Probe: traced' "$TMP/mf-trace.body"
check_eq "TRACE, Max-Forwards: 0: the echo leaves the Cookie out" 0 \
    "$(grep -ci 'cookie\|s3cret' "$TMP/mf-trace.body")"
check_eq "Max-Forwards: 0: neither origin saw the requests" 0 \
    "$(cat "$TMP/om.log" "$TMP/op.log" | grep -c 'mf-options\|mf-trace')"
check "Max-Forwards: 0: an access line with status=200" \
    wait_count "$TMP/a.log" $((n + 1)) "$(kv event access)" \
    "$(kv host plain.test)" "$(kv status 200)"
# A request the rules refuse is refused at 0 too: the answer never says a
# port is open that is not.
expect_error mf-port "$PA" "http://plain.test:$OP2/hello?mf-port" 403 \
    http_request_denied port-denied plain.test -X TRACE \
    -H 'Max-Forwards: 0'
code=$(fetch mf-three "$PA" -X OPTIONS -H 'Max-Forwards: 3' \
    "http://api.test/hello?mf-three")
check_status "OPTIONS, Max-Forwards: 3: the origin's answer" 200 "$code" \
    mf-three
check "OPTIONS, Max-Forwards: 3: the origin saw 2" \
    grep -qF '"max-forwards": "2"' <<<"$(grep -F 'mf-three' "$TMP/om.log")"
code=$(fetch mf-get "$PA" -H 'Max-Forwards: 0' \
    "http://api.test/hello?mf-get")
check_status "GET, Max-Forwards: 0: the origin's answer" 200 "$code" mf-get
check "GET, Max-Forwards: 0: the origin saw it as sent" \
    grep -qF '"max-forwards": "0"' <<<"$(grep -F 'mf-get' "$TMP/om.log")"

# A wrong pin: 502, the seen pins in the body and the log, and not one
# byte of the request at the origin.
expect_error wrong-pin "$PA" "http://wrong.test/hello" 502 \
    tls_certificate_error pin-mismatch wrong.test
missing=""
for p in "$PIN_LEAF" "$PIN_INTER" "$PIN_ROOT" set-wrong; do
	grep -qF -- "$p" "$TMP/wrong-pin.body" 2>/dev/null ||
	    missing="$missing $p"
done
check_eq "wrong pin: body lists the seen pins and the pin set" "" "$missing"
check_log "wrong pin: event=pin_mismatch enforced=yes with the chain" \
    "$TMP/a.log" "$(kv event pin_mismatch)" "$(kv host wrong.test)" \
    "$(kv pinset set-wrong)" "$(kv enforced yes)" "$(q "$PIN_LEAF")" \
    "$(q "$PIN_INTER")" "$(q "$PIN_ROOT")"
check_log "wrong pin: level=warn" "$TMP/a.log" "^level=warn " \
    "$(kv event pin_mismatch)" "$(kv host wrong.test)"
origin_settle "$TMP/ow.log"
check "wrong pin: pinproxy did connect to the origin" \
    test "$(origin_count "$TMP/ow.log" accept)" -ge 1
check_eq "wrong pin: the origin received no request" 0 \
    "$(origin_count "$TMP/ow.log" request)"
check_eq "wrong pin: the origin received no application byte" 0 \
    "$(origin_count "$TMP/ow.log" bytes)"
check_log "wrong pin: access line with status=502" "$TMP/a.log" \
    "$(kv event access)" "$(kv host wrong.test)" "$(kv status 502)"

# A client retrying the same refused host (Chromium does four to six
# handshakes per page): within 10 s, one pin_mismatch line for them all.
for i in 2 3; do
	code=$(fetch "wrong-pin-$i" "$PA" "http://wrong.test/hello")
	check_status "wrong pin, attempt $i: 502" 502 "$code" "wrong-pin-$i"
done
wait_log "$TMP/a.log" "$(kv event access)" "$(kv host wrong.test)" \
    "$(kv status 502)"
check_eq "wrong pin three times within 10 s: three access lines" 3 \
    "$(log_count "$TMP/a.log" "$(kv event access)" \
    "$(kv host wrong.test)" "$(kv status 502)")"
check_eq "wrong pin three times within 10 s: one pin_mismatch line" 1 \
    "$(log_count "$TMP/a.log" "$(kv event pin_mismatch)" \
    "$(kv host wrong.test)")"

# The attack: a leaf of another trusted CA, followed by the pinned
# intermediate that is not part of the verified path.
code=$(fetch attack "$PA" "http://attack.test/hello")
check_status "appended pinned intermediate: 502" 502 "$code" attack
check_eq "appended pinned intermediate: details=pin-mismatch" \
    "pinproxy; error=tls_certificate_error; details=\"pin-mismatch\"" \
    "$(header "$TMP/attack.head" Proxy-Status)"
check_log "appended pinned intermediate: the logged chain is the verified one" \
    "$TMP/a.log" "$(kv event pin_mismatch)" "$(kv host attack.test)" \
    "$(q "$PIN_ATTACK")" "$(q "$PIN_FROOT")"
line=$(log_lines "$TMP/a.log" "$(kv event pin_mismatch)" \
    "$(kv host attack.test)")
if [ -n "$line" ] && ! grep -qF -- "$PIN_INTER" <<<"$line"; then
	ok "appended pinned intermediate: not in the logged chain"
else
	not_ok "appended pinned intermediate: not in the logged chain"
	diag "pin_mismatch line: $line"
fi
origin_settle "$TMP/ox.log"
check "appended pinned intermediate: pinproxy did connect to the origin" \
    test "$(origin_count "$TMP/ox.log" accept)" -ge 1
check_eq "appended pinned intermediate: the origin received no byte" 0 \
    "$(origin_count "$TMP/ox.log" bytes)"

# A valid pin on a certificate for another name.
expect_error other-name "$PA" "http://other.test/hello" 502 \
    tls_certificate_error verify-failed other.test
check_log "other name: event=verify_failed" "$TMP/a.log" \
    "$(kv event verify_failed)" "$(kv host other.test)"

# A self-signed origin: accepted with its ca_file, refused without.
code=$(fetch self "$PA" "http://self.test/hello")
check_status "self-signed with ca_file: 200" 200 "$code" self
check_eq "self-signed with ca_file: the origin's body" "$HELLO" \
    "$(cat "$TMP/self.body" 2>/dev/null)"
expect_error self-signed-without-ca_file "$PB" "http://self.test/hello" 502 \
    tls_certificate_error verify-failed self.test
check_log "self-signed without ca_file: event=verify_failed" \
    "$TMP/b.log" "$(kv event verify_failed)" "$(kv host self.test)"

# Report-only and expired pin sets relay, and say so in the log.
code=$(fetch reportonly "$PA" "http://reportonly.test/hello")
check_status "enforce = no, wrong pin: 200" 200 "$code" reportonly
check_eq "enforce = no, wrong pin: the origin's body" "$HELLO" \
    "$(cat "$TMP/reportonly.body" 2>/dev/null)"
check_log "enforce = no: event=pin_mismatch enforced=no" "$TMP/a.log" \
    "$(kv event pin_mismatch)" "$(kv host reportonly.test)" \
    "$(kv pinset set-reportonly)" "$(kv enforced no)"
# A report-only verdict is not resumed: each new upstream connection
# (here the origin closes each after its answer) has its chain checked
# and reported again, rather than one report standing for hours of
# resumed sessions. (The first takes the connection of the one above.)
for i in 2 3 4; do
	fetch "reportonly$i" "$PA" "http://reportonly.test/close" >/dev/null
done
origin_settle "$TMP/om.log"
check_eq "enforce = no: three upstream connections" 3 \
    "$(origin_count "$TMP/om.log" tls '"sni": "reportonly.test"')"
check_eq "enforce = no: none of them resumed" 0 \
    "$(log_grep "$TMP/om.log" -c '"event": "tls"' \
    '"sni": "reportonly.test"' '"resumed": true')"
code=$(fetch expired "$PA" "http://expired.test/hello")
check_status "expired pin set, wrong pin: 200" 200 "$code" expired
check_eq "expired pin set, wrong pin: the origin's body" "$HELLO" \
    "$(cat "$TMP/expired.body" 2>/dev/null)"
check_log "expired pin set: event=pinset_expired" "$TMP/a.log" \
    "$(kv event pinset_expired)" "$(kv host expired.test)" \
    "$(kv pinset set-expired)" "$(kv expires 2001-01-01)"

# Keep-alive: three requests on one client connection, one upstream one.
pcurl "$PA" -o "$TMP/k1" -o "$TMP/k2" -o "$TMP/k3" \
    http://keep.test/hello http://keep.test/bytes/1000 \
    http://keep.test/hello 2>"$TMP/keep.err"
python3 "$ORIGIN" --pattern 1000 >"$TMP/k2.expected"
if [ "$(cat "$TMP/k1" 2>/dev/null)" = "$HELLO" ] &&
    cmp -s "$TMP/k2" "$TMP/k2.expected" &&
    [ "$(cat "$TMP/k3" 2>/dev/null)" = "$HELLO" ]; then
	ok "keep-alive: three bodies right"
else
	not_ok "keep-alive: three bodies right"
	diag "curl: $(cat "$TMP/keep.err")"
fi
check_eq "keep-alive: the origin got three requests" 3 \
    "$(origin_count "$TMP/ok.log" request)"
check_eq "keep-alive: on one upstream connection" 1 \
    "$(origin_count "$TMP/ok.log" accept)"

# Separate client connections take the idle upstream from the pool; a
# reload empties it, so the next request opens (and checks) a new one.
pcurl "$PA" -o /dev/null http://keep.test/hello 2>/dev/null
pcurl "$PA" -o /dev/null http://keep.test/hello 2>/dev/null
check_eq "pool: later client connections reuse the checked upstream" 1 \
    "$(origin_count "$TMP/ok.log" accept)"
kill -HUP "$PP_A"
wait_log "$TMP/a.log" "event=reloaded" >/dev/null 2>&1
pcurl "$PA" -o /dev/null http://keep.test/hello 2>/dev/null
check_eq "pool: after a reload the upstream is opened and checked again" \
    2 "$(origin_count "$TMP/ok.log" accept)"

# A server that sends a whole answer nobody asked for 20 ms after a 204:
# the connection waits before it serves another client, so those bytes
# find it idle (and close it) instead of answering the next client, who
# asks at once on a connection of its own.
out=$(py - "$PA" <<'EOF'
import socket, sys
from connect_client import read_rest
def get(path):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(b"GET http://keep.test%s HTTP/1.1\r\nHost: keep.test\r\n"
              b"Connection: close\r\n\r\n" % path)
    data = read_rest(s)
    s.close()
    return data
print(get(b"/late204").split(b"\r\n")[0].decode())
print(get(b"/hello").partition(b"\r\n\r\n")[2].decode().strip())
EOF
)
check_eq "a stray answer after a 204: the next client gets its own answer" \
    "HTTP/1.1 204 No Content|$HELLO" "$(printf '%s' "$out" | tr '\n' '|')"

# The same client asking again at once has that connection (its own
# answers only), but it is not kept after: its server's real answer to
# that request, when it comes, reaches no other client.
out=$(py - "$PA" <<'EOF'
import socket, sys, time
from connect_client import read_rest, read_response
port = int(sys.argv[1])
def answer(s):
    return read_response(s)[0]
a = socket.create_connection(("127.0.0.1", port), timeout=5)
a.sendall(b"GET http://keep.test/late204 HTTP/1.1\r\nHost: keep.test\r\n\r\n")
print(answer(a))
a.sendall(b"GET http://keep.test/wait/1 HTTP/1.1\r\nHost: keep.test\r\n\r\n")
answer(a)
time.sleep(0.3)
b = socket.create_connection(("127.0.0.1", port), timeout=5)
b.sendall(b"GET http://keep.test/hello HTTP/1.1\r\nHost: keep.test\r\n"
          b"Connection: close\r\n\r\n")
print(read_rest(b).partition(b"\r\n\r\n")[2].decode().strip())
EOF
)
check_eq "a stray answer after a 204, its client asking again: no other \
client gets that client's answer" "HTTP/1.1 204 No Content|$HELLO" \
    "$(printf '%s' "$out" | tr '\n' '|')"

# A server that leaves a request's body unread takes it for the start of
# the next request on that connection ("GET /smuggled ... X-Ignore: "
# swallows the next request line): an upstream that carried a body goes
# back to its own client only, so another client never has its request
# answered as someone else's smuggled one, while the client itself keeps
# its upstream across requests with bodies.
out=$(py - "$PA" <<'EOF'
import socket, sys
from connect_client import read_rest, read_response
port = int(sys.argv[1])
def answer(s):
    return read_response(s)[1].get("x-origin-conn", "")
def post(s, path, body):
    s.sendall(b"POST http://keep.test%s HTTP/1.1\r\nHost: keep.test\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (path, len(body), body))
    return answer(s)
a = socket.create_connection(("127.0.0.1", port), timeout=5)
first = post(a, b"/echo", b"a body")
a.sendall(b"GET http://keep.test/hello HTTP/1.1\r\nHost: keep.test\r\n\r\n")
print("same" if answer(a) == first else "another")
a.close()
smuggler = socket.create_connection(("127.0.0.1", port), timeout=5)
post(smuggler, b"/nobody", b"GET /smuggled HTTP/1.1\r\nX-Ignore: ")
b = socket.create_connection(("127.0.0.1", port), timeout=5)
b.sendall(b"GET http://keep.test/hello HTTP/1.1\r\nHost: keep.test\r\n"
          b"Connection: close\r\n\r\n")
print(read_rest(b).partition(b"\r\n\r\n")[2].decode().strip())
smuggler.close()
EOF
)
check_eq "after a POST, the same client's next request has its upstream" \
    same "$(printf '%s' "$out" | sed -n 1p)"
check_eq "an upstream left a request's body unread: another client gets \
its own answer" "$HELLO" "$(printf '%s' "$out" | sed -n 2p)"
check "the origin never took another client's request for a smuggled one" \
    test "$(log_grep "$TMP/ok.log" -c 'smuggled')" -eq 0

# Request bodies stream in both framings; 10 MiB of random bytes.
head -c 10485760 /dev/urandom >"$TMP/up.bin"
UP="$(sha256sum "$TMP/up.bin" | cut -d ' ' -f 1) 10485760"
code=$(fetch post-length "$PA" -H 'Expect:' --data-binary "@$TMP/up.bin" \
    http://api.test/echo)
check_status "10 MiB POST with Content-Length: 200" 200 "$code" post-length
check_eq "10 MiB POST with Content-Length: the origin got every byte" \
    "$UP" "$(cat "$TMP/post-length.body" 2>/dev/null)"
code=$(fetch post-chunked "$PA" -H 'Expect:' \
    -H 'Transfer-Encoding: chunked' --data-binary "@$TMP/up.bin" \
    http://api.test/echo)
check_status "10 MiB chunked POST: 200" 200 "$code" post-chunked
check_eq "10 MiB chunked POST: the origin got every byte" \
    "$UP" "$(cat "$TMP/post-chunked.body" 2>/dev/null)"
code=$(fetch post-expect "$PA" -H 'Expect: 100-continue' \
    --data-binary "@$TMP/up.bin" http://api.test/echo)
check_status "10 MiB POST with Expect: 100-continue: 200" 200 "$code" \
    post-expect
check_eq "10 MiB POST with Expect: 100-continue: every byte" \
    "$UP" "$(cat "$TMP/post-expect.body" 2>/dev/null)"

# Response bodies: 32 MiB with Content-Length (256 times RELAY_HIGH_WATER:
# the relay's buffer fills and drains many times over), 1 MiB chunked.
want=$(python3 "$ORIGIN" --pattern 33554432 | sha256sum | cut -d ' ' -f 1)
got=$(pcurl "$PA" -D "$TMP/big.head" http://api.test/bytes/33554432 \
    2>"$TMP/big.err" | sha256sum | cut -d ' ' -f 1)
check_eq "32 MiB GET: the body is the origin's" "$want" "$got"
[ "$want" = "$got" ] || diag "curl: $(cat "$TMP/big.err")"
wait_log "$TMP/a.log" "$(kv event access)" "$(kv host api.test)" \
    '(^| )bytes_down=[0-9]{8,}( |$)'
down=$(log_lines "$TMP/a.log" "$(kv event access)" "$(kv host api.test)" |
    sed -n 's/.* bytes_down=\([0-9]*\).*/\1/p' | sort -n | tail -n 1)
check "32 MiB GET: access line counts bytes_down >= 33554432" \
    test "${down:-0}" -ge 33554432
want=$(python3 "$ORIGIN" --pattern 1048576 | sha256sum | cut -d ' ' -f 1)
got=$(pcurl "$PA" http://api.test/chunked/1048576 2>/dev/null |
    sha256sum | cut -d ' ' -f 1)
check_eq "1 MiB chunked response: the body is the origin's" "$want" "$got"

# Responses without a body, and a close-delimited one.
code=$(fetch head "$PA" -I http://api.test/bytes/1000)
check_status "HEAD: 200" 200 "$code" head
check_eq "HEAD: Content-Length of the GET" 1000 \
    "$(header "$TMP/head.head" Content-Length)"
out=$(python3 - "$PA" <<'EOF' 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def head():
    buf = b""
    while not buf.endswith(b"\r\n\r\n"):
        d = s.recv(1)
        if not d:
            raise SystemExit("closed after %r" % buf)
        buf += d
    lines = buf.decode("latin-1").split("\r\n")
    fields = dict(l.lower().split(": ", 1) for l in lines[1:] if ": " in l)
    return lines[0].split(" ")[1], fields
def body(fields):
    if "chunked" in fields.get("transfer-encoding", ""):
        out = b""
        while True:
            line = b""
            while not line.endswith(b"\r\n"):
                line += s.recv(1)
            n = int(line.split(b";")[0], 16)
            data = b""
            while len(data) < n + 2:
                data += s.recv(n + 2 - len(data))
            if n == 0:
                return out
            out += data[:n]
    n = int(fields.get("content-length", "0"))
    out = b""
    while len(out) < n:
        out += s.recv(n - len(out))
    return out
s.sendall(b"HEAD http://api.test/bytes/1000 HTTP/1.1\r\nHost: api.test\r\n\r\n")
status1, _ = head()
s.settimeout(0.5)
try:
    extra = len(s.recv(4096))
except socket.timeout:
    extra = 0
s.settimeout(10)
s.sendall(b"GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n")
status2, fields = head()
print(status1, "extra=%d" % extra, status2, body(fields).decode().strip())
EOF
)
check_eq "HEAD: no body, and the connection goes on" \
    "200 extra=0 200 $HELLO" "$out"
code=$(fetch s204 "$PA" http://api.test/status/204)
check_status "204: status" 204 "$code" s204
check_eq "204: no body" 0 "$(cat "$TMP/s204.body" 2>/dev/null | wc -c)"
code=$(fetch s304 "$PA" http://api.test/status/304)
check_status "304: status" 304 "$code" s304
code=$(fetch close "$PA" http://api.test/close)
check_status "close-delimited: 200" 200 "$code" close
check_eq "close-delimited: the whole body arrives" \
    "close-delimited body from origin" \
    "$(cat "$TMP/close.body" 2>/dev/null)"
want=$(python3 "$ORIGIN" --pattern 1048576 | sha256sum | cut -d ' ' -f 1)
got=$(pcurl "$PA" http://api.test/close/1048576 2>/dev/null |
    sha256sum | cut -d ' ' -f 1)
check_eq "close-delimited 1 MiB: the body is the origin's" "$want" "$got"
code=$(fetch slow "$PA" http://api.test/slow)
check_status "slow body: 200" 200 "$code" slow
check_eq "slow body: complete" "slow slow slow slow slow" \
    "$(cat "$TMP/slow.body" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')"

# Upgrade: after the 101 the connection is a byte relay. Sent to the
# proxy, only a WebSocket goes on; another protocol is dropped (the origin
# answers 426 to a request without it).
upgrade_through()
{
	py - "$PA" "$1" <<'EOF' 2>&1
import socket, sys
from connect_client import read_response
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://api.test/upgrade HTTP/1.1\r\nHost: api.test\r\n"
          b"Connection: Upgrade\r\nUpgrade: %s\r\n\r\n" %
          sys.argv[2].encode())
status, fields, rest = read_response(s)
if status.split(" ")[1] != "101":
    raise SystemExit(status.split(" ")[1])
msg = b"bytes through the relay\n"
s.sendall(msg)
while len(rest) < len(msg):
    d = s.recv(4096)
    if not d:
        break
    rest += d
print(status.split(" ")[1], rest.decode().strip())
EOF
}
check_eq "Upgrade: websocket: 101, then bytes are relayed both ways" \
    "101 bytes through the relay" "$(upgrade_through websocket)"
check_eq "Upgrade: another protocol sent to the proxy does not go on" \
    426 "$(upgrade_through echo)"
# A request pipelined behind the Upgrade request, for another host, is no
# WebSocket data (a WebSocket client waits for the 101): the relay to the
# upgraded server refuses it instead of sending it there, over TLS too.
out=$(py - "$PA" <<'EOF' 2>&1
import socket, sys
from connect_client import read_rest
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET http://api.test/upgrade HTTP/1.1\r\nHost: api.test\r\n"
          b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
          b"GET http://other.test/secret HTTP/1.1\r\nHost: other.test\r\n"
          b"Authorization: Bearer SECRET\r\n\r\n")
buf = read_rest(s)
print(buf.split(b" ")[1].decode() if buf else "nothing",
      "relayed" if b"SECRET" in buf else "refused")
EOF
)
check_eq "a request pipelined behind an Upgrade request is not relayed to \
the upgraded server" "101 refused" "$out"
check_log "a request pipelined behind an Upgrade request: event=blocked" \
    "$TMP/a.log" "$(kv event blocked)" "$(kv host api.test)"

# HTTP/1.0 clients: no Upgrade, no interim response, no chunked framing.
# raw10 NAME: send stdin to the proxy as one client and read to the
# close; NAME.head and NAME.body are what came back, and it prints
# "closed BYTES" (or "open BYTES" when nothing came for 10 s).
raw10()
{
	python3 -c '
import socket, sys
port, out = sys.argv[1:3]
s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
s.sendall(sys.stdin.buffer.read())
data, state = b"", "open"
while True:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        state = "closed"
        break
    data += d
head, _, body = data.partition(b"\r\n\r\n")
open(out + ".head", "wb").write(head + b"\r\n")
open(out + ".body", "wb").write(body)
print(state, len(data))
' "$PA" "$TMP/$1"
}
# http10_pattern NAME ROUTE N LABEL: an HTTP/1.0 keep-alive GET of
# http://api.test/ROUTE/N (N pattern bytes, which the origin frames as
# ROUTE says) with raw10: three cases, the bytes arrive as the origin sent
# them, with a 200 and no Transfer-Encoding, and Connection: close ends
# them. raw10's "STATE BYTES" stays in $out.
http10_pattern()
{
	local want
	out=$(printf '%s\r\n' "GET http://api.test/$2/$3 HTTP/1.0" \
	    'Host: api.test' 'Connection: keep-alive' '' | raw10 "$1")
	want=$(python3 "$ORIGIN" --pattern "$3" | sha256sum | cut -d ' ' -f 1)
	check_eq "$4: the body's bytes as the origin sent them" "$want" \
	    "$(sha256sum <"$TMP/$1.body" | cut -d ' ' -f 1)"
	check "$4: a 200 without Transfer-Encoding" eval \
	    "grep -q '^HTTP/1.1 200' '$TMP/$1.head' &&
	    ! grep -qi '^transfer-encoding' '$TMP/$1.head'"
	check "$4: Connection: close, then closed" eval \
	    "grep -q '^Connection: close' '$TMP/$1.head' &&
	    [ \"\${out% *}\" = closed ]"
}
# first_line NAME: the status line of NAME.head.
first_line()
{
	head -n 1 "$TMP/$1.head" | tr -d '\r'
}
out=$(printf '%s\r\n' 'GET http://api.test/upgrade HTTP/1.0' \
    'Host: api.test' 'Connection: Upgrade' 'Upgrade: echo' '' | raw10 up10)
check_eq "HTTP/1.0 Upgrade request: not upgraded, the origin saw no Upgrade" \
    "HTTP/1.1 426 Upgrade Required" "$(first_line up10)"
check_eq "HTTP/1.0 Upgrade request: closed after the response" closed \
    "${out% *}"
out=$({ printf '%s\r\n' 'POST http://api.test/echo HTTP/1.0' \
    'Host: api.test' 'Expect: 100-continue' 'Content-Length: 5' ''
    printf hello; } | raw10 expect10)
check_eq "HTTP/1.0 POST with Expect: 100-continue: the final response first" \
    "HTTP/1.1 200 OK" "$(first_line expect10)"
check_eq "HTTP/1.0 POST with Expect: 100-continue: no 100 Continue at all" \
    0 "$(cat "$TMP/expect10.head" "$TMP/expect10.body" |
    grep -c '100 Continue')"
check_eq "HTTP/1.0 POST with Expect: 100-continue: the origin got the body" \
    "$(printf hello | sha256sum | cut -d ' ' -f 1) 5" \
    "$(cat "$TMP/expect10.body" 2>/dev/null)"
http10_pattern chunked10 chunked 1048576 \
    "HTTP/1.0 client, 1 MiB chunked"
check_log "HTTP/1.0 client, 1 MiB chunked: bytes_down is what it received" \
    "$TMP/a.log" "$(kv event access)" "$(kv host api.test)" \
    "$(kv bytes_down "${out#* }")"

# A transfer coding other than chunked, which the close ends: an HTTP/1.0
# client, which knows none, gets it as a content coding and the bytes as
# they came (RFC 9112, 6.1: no Transfer-Encoding to HTTP/1.0).
http10_pattern gzipped10 gzipped 4000 \
    "HTTP/1.0 client, Transfer-Encoding: gzip"
check_eq "HTTP/1.0 client, Transfer-Encoding: gzip: Content-Encoding: gzip" \
    gzip "$(header "$TMP/gzipped10.head" Content-Encoding)"
# A HEAD whose answer announces a chunked body: no body, and neither
# coding field (nothing is coded: nothing comes).
out=$(printf '%s\r\n' 'HEAD http://api.test/chunked/100 HTTP/1.0' \
    'Host: api.test' '' | raw10 head10)
check_eq "HTTP/1.0 HEAD of a chunked answer: a 200 and no body" \
    "HTTP/1.1 200 OK 0" "$(first_line head10) $(wc -c <"$TMP/head10.body")"
check_eq "HTTP/1.0 HEAD of a chunked answer: no Transfer-Encoding nor Content-Encoding" \
    0 "$(grep -ci '^transfer-encoding\|^content-encoding' "$TMP/head10.head")"
fetch gzipped11 "$PA" "http://api.test/gzipped/10" >/dev/null
check_eq "HTTP/1.1 client, Transfer-Encoding: gzip: passed on as it came" \
    gzip "$(header "$TMP/gzipped11.head" Transfer-Encoding)"

# Unpinned hosts with unpinned = pass: plain HTTP to the URL's port.
code=$(fetch pass "$PA" "http://plain.test:$OP/hello")
check_status "unpinned = pass: 200" 200 "$code" pass
check_eq "unpinned = pass: the plain origin's body" "$HELLO" \
    "$(cat "$TMP/pass.body" 2>/dev/null)"
check "unpinned = pass: origin-form request at the plain origin" \
    grep -qF '"path": "/hello"' "$TMP/op.log"
check_log "unpinned = pass: access line mode=plain" "$TMP/a.log" \
    "$(kv event access)" "$(kv host plain.test)" "$(kv mode plain)" \
    "$(kv status 200)"

# A client pipelines a second request (with a body pinproxy never reads)
# behind a "Connection: close" request for 1 MiB, and reads only once it
# wrote everything, slowly. pinproxy closes with those bytes unread: a
# lingering close (shut the write side, read and drop until the client
# closes) lets the whole response arrive, where a plain close sends a RST
# that makes the client's kernel drop what it had not read yet.
cat >"$TMP/pipeline.py" <<'EOF'
import socket, sys, time
port, url, extra = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
host = url.split("/")[2]
first = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
         % (url, host)).encode()
second = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
          % (url, host, extra)).encode() + b"p" * extra
data, error = b"", "none"
try:
    s.sendall(first + second)
    time.sleep(0.3)
    while True:
        d = s.recv(16384)
        if not d:
            break
        data += d
        time.sleep(0.002)
except OSError as e:
    error = type(e).__name__
head, _, body = data.partition(b"\r\n\r\n")
parts = head.split(b" ")
status = parts[1].decode("latin-1") if len(parts) > 1 else "-"
print("status=%s body=%d error=%s" % (status, len(body), error))
EOF
python3 "$TMP/pipeline.py" "$PA" "http://plain.test:$OP/bytes/1048576" \
    32768 >"$TMP/pipeline.out" 2>&1
check_eq "pipelined bytes after Connection: close: the whole 1 MiB, no reset" \
    "status=200 body=1048576 error=none" "$(cat "$TMP/pipeline.out")"
# The same with 4 MiB pipelined behind a short answer: the lingering close
# drops them all (it stopped at 64 KiB and closed with the rest unread,
# and the reset took the answer, or broke the client's send).
python3 "$TMP/pipeline.py" "$PA" "http://plain.test:$OP/bytes/100" \
    4194304 >"$TMP/pipeline4.out" 2>&1
check_eq "4 MiB pipelined after Connection: close: the answer, no reset" \
    "status=200 body=100 error=none" "$(cat "$TMP/pipeline4.out")"

# plain_ports: an unpinned host on a port it does not list is refused
# before anything is sent; a pinned host always goes to its set's port.
expect_error plain-port "$PA" "http://plain.test:$OP2/hello" 403 \
    http_request_denied port-denied plain.test
check_log "port not in plain_ports: event=blocked with the reason" \
    "$TMP/a.log" "$(kv event blocked)" "$(kv host plain.test)" \
    "$(kv reason "port $OP2 not in plain_ports")"
check_eq "port not in plain_ports: nothing reaches the origin" 0 \
    "$(origin_count "$TMP/op2.log" accept)"
code=$(fetch pinned-port "$PA" "http://api.test:$OP2/hello")
check_status "pinned host named with a port outside plain_ports: 200" 200 \
    "$code" pinned-port

# A request that already passed through this pinproxy (its Via, as the
# origin saw it, sent back to the proxy) is a loop: 508, and a blocked
# line that says why.
code=$(fetch via-first "$PA" "http://plain.test:$OP/hello?via-first")
via=$(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "request" and "via-first" in r.get("path", ""):
        h = r.get("headers", {})
        print(dict((k.lower(), v) for k, v in h.items()).get("via", ""))
' "$TMP/op.log" | head -n 1)
check "the origin saw pinproxy's Via ($via)" test -n "$via"
check_eq "the client saw it on the response too" "$via" \
    "$(header "$TMP/via-first.head" Via)"
expect_error via-loop "$PA" "http://plain.test:$OP/hello?via-loop" 508 \
    proxy_loop_detected loop plain.test -H "Via: $via"
check_log "a request back through pinproxy: blocked, the Via named" \
    "$TMP/a.log" "$(kv event blocked)" "$(kv host plain.test)" \
    "$(kv reason "loop: the request already passed through pinproxy (Via)")"
check_eq "a request back through pinproxy: nothing reaches the origin" 0 \
    "$(grep -c 'via-loop' "$TMP/op.log")"

# Names resolved with DNS (dnsd) on the pin set's port.
code=$(fetch dns "$PA" "http://dns.test/hello")
check_status "pinned host resolved by DNS: 200" 200 "$code" dns
check_eq "pinned host resolved by DNS: the origin's body" "$HELLO" \
    "$(cat "$TMP/dns.body" 2>/dev/null)"
check "pinned host resolved by DNS: dnsd was asked" \
    test "$(origin_count "$TMP/dns.log" query '"dns.test"')" -ge 1

# The short name "dns" is not the pinned dns.test: with resolv.conf's
# search list it would reach dns.test's address as an unpinned name, in
# plaintext. It is looked up as spelled, and fails.
expect_error dns-short "$PA" "http://dns:$OP/short" 502 dns_error \
    dns-failed dns
check "short name: dnsd was asked for it as spelled" \
    grep -qF '"name": "dns"' "$TMP/dns.log"
expect_error dns-dot "$PA" "http://dns.:$OP/short" 502 dns_error \
    dns-failed dns
check_eq "short name: nothing reached dns.test's address in plaintext" 0 \
    "$(grep -cF '"path": "/short"' "$TMP/op.log")"

# Upstream failures, each answered and logged.
expect_error dns-failure "$PA" "http://nx.test/hello" 502 dns_error dns-failed \
    nx.test
check_log "DNS failure: event=upstream_error" "$TMP/a.log" \
    "$(kv event upstream_error)" "$(kv host nx.test)"
expect_error connection-refused "$PA" "http://refused.test/hello" 502 \
    connection_refused connect-failed refused.test
check_log "connection refused: event=upstream_error" "$TMP/a.log" \
    "$(kv event upstream_error)" "$(kv host refused.test)"
start=$(now_ms)
expect_error silent-upstream "$PB" "http://silent.test/hello" 504 \
    connection_timeout timeout silent.test
ms=$(( $(now_ms) - start ))
check "silent upstream: answered after connect_timeout = 1s ($ms ms)" \
    test "$ms" -ge 900 -a "$ms" -lt 4000
check_log "silent upstream: event=upstream_error" "$TMP/b.log" \
    "$(kv event upstream_error)" "$(kv host silent.test)"
start=$(now_ms)
expect_error slow-dns "$PB" "http://slowdns.test/hello" 504 \
    connection_timeout timeout slowdns.test
ms=$(( $(now_ms) - start ))
check "slow DNS: connect_timeout covers resolution ($ms ms)" \
    test "$ms" -ge 900 -a "$ms" -lt 2900
check_log "slow DNS: event=upstream_error" "$TMP/b.log" \
    "$(kv event upstream_error)" "$(kv host slowdns.test)"

# unpinned = block.
expect_error unpinned-block "$PB" "http://blocked.test/hello" 403 \
    http_request_denied blocked blocked.test
check_log "unpinned = block: event=blocked" "$TMP/b.log" \
    "$(kv event blocked)" "$(kv host blocked.test)"

# unpinned = verify upgrades to TLS on port 443, which only root can bind.
why=""
if [ "$(id -u)" != 0 ]; then
	why="unpinned = verify: needs root to serve 127.0.0.1:443"
elif (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null; then
	why="unpinned = verify: 127.0.0.1:443 is in use"
fi
if [ -n "$why" ]; then
	for i in $(seq 6); do
		skip "$why"
	done
else
	start_origin O_V 443 "$TMP/ov.log" --cert "$PKI/multi-chain.pem" \
	    --key "$PKI/multi.key"
	PC=$(free_port)
	cat >"$TMP/c.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PC
ca_cert = $TMP/ca-c.pem
ca_key = $TMP/ca-c.key
trust = $PKI/trust.pem
unpinned = verify

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF
	start_pinproxy PP_C "$PC" "$TMP/c.conf" "$TMP/c.log"
	code=$(fetch verify "$PC" "http://verify.test/hello")
	check_status "unpinned = verify: 200 over verified TLS" 200 "$code" \
	    verify
	check "unpinned = verify: the request went over TLS to port 443" \
	    grep -qF '"sni": "verify.test"' "$TMP/ov.log"
	expect_error unpinned-verify-wrong-name "$PC" \
	    "http://verifybad.test/hello" 502 tls_certificate_error \
	    verify-failed verifybad.test
	stop_pinproxy "$PP_C" "$TMP/c.log"
	stop "$O_V"
fi

# The CA download page: answered by pinproxy itself for ca_host
# (pinproxy.internal by default), before any lookup or policy.
openssl x509 -in "$TMP/ca-a.pem" -outform DER -out "$TMP/ca-a.der"
code=$(fetch capage "$PA" "http://pinproxy.internal/")
check_status "CA page: 200" 200 "$code" capage
check_eq "CA page: text/html" "text/html; charset=utf-8" \
    "$(header "$TMP/capage.head" Content-Type)"
check "CA page: both links" test "$(grep -cE \
    'href="http://pinproxy\.internal/ca\.(pem|crt)"' "$TMP/capage.body")" = 2
check_grep "CA page: the CA's pin" "$(q "$(sh "$MKPKI" pin "$TMP/ca-a.pem")")" \
    "$TMP/capage.body"
code=$(fetch capem "$PA" "http://pinproxy.internal/ca.pem")
check_status "CA page /ca.pem: 200" 200 "$code" capem
check_eq "CA page /ca.pem: application/x-pem-file" application/x-pem-file \
    "$(header "$TMP/capem.head" Content-Type)"
check_eq "CA page /ca.pem: the CA certificate the daemon uses" \
    "$(sha256sum <"$TMP/ca-a.der" | cut -d ' ' -f 1)" \
    "$(openssl x509 -in "$TMP/capem.body" -outform DER 2>/dev/null |
    sha256sum | cut -d ' ' -f 1)"
code=$(fetch cacrt "$PA" "http://pinproxy.internal/ca.crt")
check_status "CA page /ca.crt: 200" 200 "$code" cacrt
check_eq "CA page /ca.crt: application/x-x509-ca-cert" \
    application/x-x509-ca-cert "$(header "$TMP/cacrt.head" Content-Type)"
check "CA page /ca.crt: the CA certificate in DER" \
    cmp -s "$TMP/ca-a.der" "$TMP/cacrt.body"
code=$(fetch caother "$PA" "http://pinproxy.internal/other")
check_status "CA page, another path: 404" 404 "$code" caother
code=$(curl -sS --noproxy '' --max-time 20 -o "$TMP/caorigin.body" \
    -w '%{http_code}' -H 'Host: pinproxy.internal' \
    "http://127.0.0.1:$PA/ca.crt" 2>"$TMP/caorigin.err")
check_eq "CA page in origin-form with Host: pinproxy.internal: 200" 200 "$code"
check "CA page in origin-form: the CA certificate in DER" \
    cmp -s "$TMP/ca-a.der" "$TMP/caorigin.body"
# A client that sends http:// through CONNECT too (curl -p): the tunnel
# to ca_host dials nothing and carries the requests for the page.
code=$(fetch catunnel "$PA" -p "http://pinproxy.internal/ca.crt")
check_status "CA page through a CONNECT tunnel: 200" 200 "$code" catunnel
check "CA page through a CONNECT tunnel: the CA certificate in DER" \
    cmp -s "$TMP/ca-a.der" "$TMP/catunnel.body"
# connect_ports holds for the page's name too: a CONNECT to another port
# of it is refused, as for any host.
got=$(python3 - "$PA" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"CONNECT pinproxy.internal:9999 HTTP/1.1\r\n"
          b"Host: pinproxy.internal:9999\r\n\r\n")
print(s.recv(4096).split(b" ")[1].decode())
EOF
)
check_eq "CONNECT to the CA page's name, a port not in connect_ports: 403" \
    403 "$got"
# An HTTP/1.0 client that asks to keep its connection is told it is kept
# (Connection: keep-alive), and its next request is answered on it.
got=$(python3 - "$PA" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
f = s.makefile("rb")
out = []
for _ in range(2):
    s.sendall(b"GET http://pinproxy.internal/ca.pem HTTP/1.0\r\n"
              b"Connection: keep-alive\r\n\r\n")
    status = f.readline().split(b" ")[1].decode()
    conn, length = "-", 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode().partition(":")
        if k.lower() == "connection":
            conn = v.strip()
        if k.lower() == "content-length":
            length = int(v)
    f.read(length)
    out.append(status + "/" + conn)
print(" ".join(out))
EOF
)
check_eq "CA page to an HTTP/1.0 keep-alive client: kept, and said so" \
    "200/keep-alive 200/keep-alive" "$got"
# pinproxy's own error answer to a HEAD is its head alone (RFC 9110,
# 9.3.2): its Content-Length says what a GET would get, then the close.
# So is the answer to a HEAD whose own head is refused (too large, bad
# framing); a GET refused alike gets the body.
got=$(py - "$PA" <<'EOF'
import socket, sys
from connect_client import read_rest
def ask(req):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(req)
    data = read_rest(s)
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
    return "%s/%s/%s" % (head.split(b" ")[1].decode(),
        "length" if length else "nolength", "body" if rest else "none")
start = b" http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
big = b"X: " + b"a" * 70000 + b"\r\n"
both = b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"
out = []
for m in (b"HEAD", b"GET"):
    for extra in (b"", big, both):
        out.append(ask(m + start + extra + b"\r\n"))
print(" ".join(out))
EOF
)
check_eq "an error answer to a HEAD (403, 431, 400): the head only" \
    "403/length/none 431/length/none 400/length/none 403/length/body 431/length/body 400/length/body" "$got"
check_log "CA page: access line mode=plain host=pinproxy.internal" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host pinproxy.internal)" "$(kv status 200)"
check_eq "CA page: pinproxy.internal is never looked up" 0 \
    "$(origin_count "$TMP/dns.log" query pinproxy.internal)"
# Instance B blocks unpinned hosts, and names its page ca.test.
code=$(fetch cab "$PB" "http://ca.test/ca.crt")
check_status "ca_host = ca.test under unpinned = block: 200" 200 "$code" cab
check "ca_host = ca.test: instance B's own CA" \
    cmp -s <(openssl x509 -in "$TMP/ca-b.pem" -outform DER) "$TMP/cab.body"
code=$(fetch cabdefault "$PB" "http://pinproxy.internal/")
check_status "with another ca_host, pinproxy.internal is a host: 403" 403 \
    "$code" cabdefault

# The access line of a request.
check_log "access line: client, mode=plain, status, bytes, ms" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host pin-leaf.test)" "$(kv status 200)" \
    '(^| )client=127\.0\.0\.1(:[0-9]+)?( |$)' \
    '(^| )bytes_up=[1-9][0-9]*( |$)' '(^| )bytes_down=[1-9][0-9]*( |$)' \
    '(^| )ms=[0-9]+( |$)'

# A clean stop: exit status 0 (and no sanitizer report) on SIGTERM.
stop_pinproxy "$PP_A" "$TMP/a.log"
stop_pinproxy "$PP_B" "$TMP/b.log"
check_log "event=stopping" "$TMP/a.log" "$(kv event stopping)"

done_testing
