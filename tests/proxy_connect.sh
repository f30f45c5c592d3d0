#!/bin/bash
# CONNECT through pinproxy end to end: TLS interception of pinned hosts
# (the forged leaf, pins, ALPN passed through, HTTP/2 with nginx), the
# emulator's CONNECT by IP, a ClientHello in pieces, refusals as HTTP
# answers or TLS alerts, blind tunnels for unpinned hosts, and many
# connections at once. Everything lives on 127.0.0.1 and in the scratch
# directory.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

ESTABLISHED='HTTP/1.1 200 Connection established\r\n\r\n'
CONCURRENT=200

# connect NAME ARGS...: run tests/connect_client.py; its output goes to
# $TMP/NAME.out, the proxy's answer head to $TMP/NAME.head.
connect()
{
	local name=$1
	shift
	python3 "$CLIENT" --head-out "$TMP/$name.head" "$@" \
	    >"$TMP/$name.out" 2>&1
}

# The PKI: the default set of tests/mkpki.sh and one leaf for every host
# name the origins serve.
SANS=$(dns_sans api.test resume.test wrong.test other.test alpn1.test \
    alpn0.test h2.test plainafter.test pass.test unpinned.test)
make_pki multi "$SANS,IP:127.0.0.1" inter
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa
pki_pin PIN_FROOT foreign-root

# Origins: M (ALPN h2 and http/1.1), one with http/1.1 only, one without
# ALPN, W for the wrong pin, V for the wrong name, T for plain bytes after
# the 200, P behind a blind tunnel; and dnsd.
origin()
{
	start_origin "$1" "$2" "$3" --cert "$PKI/multi-chain.pem" \
	    --key "$PKI/multi.key" "${@:4}"
}
OM=$(free_port);  origin O_M "$OM" "$TMP/om.log" --alpn h2,http/1.1
O1=$(free_port);  origin O_1 "$O1" "$TMP/o1.log" --alpn http/1.1
O0=$(free_port);  origin O_0 "$O0" "$TMP/o0.log"
OW=$(free_port);  origin O_W "$OW" "$TMP/ow.log"
OV=$(free_port);  origin O_V "$OV" "$TMP/ov.log"
OT=$(free_port);  origin O_T "$OT" "$TMP/ot.log"
OP=$(free_port);  origin O_P "$OP" "$TMP/op.log"
OR=$(free_port);  origin O_R "$OR" "$TMP/or.log"
OL=$(free_port);  start_origin O_L "$OL" "$TMP/ol.log" --plain
OE=$(free_port)
start_server O_E "$TMP/oe.log" python3 "$top_srcdir/tests/tlsecho.py" \
    --port "$OE" --plain
OH=$(free_port)
DENIED=$(free_port)
# Sinks for refused blind tunnels: each connection gets SEND bytes from
# the sink first, then the sink reads until the end, and logs how it came
# (a FIN or a reset) and what.
cat >"$TMP/sink.py" <<'EOF'
import argparse, json, socket
p = argparse.ArgumentParser()
p.add_argument("--port", type=int)
p.add_argument("--send", type=int, default=0)
p.add_argument("--log")
a = p.parse_args()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", a.port))
ls.listen(8)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    got, how = b"", "fin"
    try:
        c.sendall(b"s" * a.send)
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        how = "reset"
    c.close()
    with open(a.log, "a") as f:
        f.write(json.dumps({"event": "end", "how": how,
                            "got": got.decode("latin-1")}) + "\n")
EOF
OS=$(free_port)
start_server O_S "$TMP/os.log" python3 "$TMP/sink.py" --port "$OS"
OST=$(free_port)
start_server O_ST "$TMP/ost.log" python3 "$TMP/sink.py" --port "$OST" \
    --send 200000
OSB=$(free_port)
# A TLS 1.3 server that wants P-256 only: a client offering an X25519 key
# share first gets a HelloRetryRequest.
OHR=$(free_port)
spawn O_HRR openssl s_server -accept "127.0.0.1:$OHR" -groups P-256 -www \
    -cert "$PKI/leaf.pem" -key "$PKI/leaf.key" </dev/null \
    >"$TMP/ohr.log" 2>&1
start_server O_SB "$TMP/osb.log" python3 "$TMP/sink.py" --port "$OSB" \
    --send 8

start_dnsd --map pass.test=127.0.0.1 --map sink.test=127.0.0.1

# pinset NAME HOST ORIGINPORT [PIN]: a pin set whose second pin (or PIN)
# is the genuine intermediate's.
pinset()
{
	cat <<EOF

[pins:$1]
hosts = $2
pin = $PIN_RSA
pin = ${4:-$PIN_INTER}
connect_to = 127.0.0.1:$3
EOF
}

# Instance A: unpinned hosts pass.
PA=$(free_port)
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$PA
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
unpinned = pass
connect_ports = 80 443 $OM $O1 $O0 $OW $OV $OT $OP $OH $OR $OL $OE $OS $OST $OSB $OHR
plain_ports = 80 $OL $OS
shutdown_timeout = 2s
EOF
	pinset set-api api.test "$OM"
	pinset set-alpn1 alpn1.test "$O1"
	pinset set-alpn0 alpn0.test "$O0"
	pinset set-h2 h2.test "$OH"
	pinset set-wrong wrong.test "$OW" "$PIN_FROOT"
	pinset set-badname badname.test "$OV"
	pinset set-plainafter plainafter.test "$OT"
	pinset set-resume resume.test "$OR"
} >"$TMP/a.conf"

# Instance B: unpinned hosts are blocked.
PB=$(free_port)
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$PB
ca_cert = $TMP/ca-b.pem
ca_key = $TMP/ca-b.key
trust = $PKI/root.pem
unpinned = block
connect_ports = 443 $OM
shutdown_timeout = 2s
log_level = debug
EOF
	pinset set-api api.test "$OM"
} >"$TMP/b.conf"

start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log" ||
    bail_out "pinproxy -c $TMP/a.conf is not listening on $PA"
start_pinproxy PP_B "$PB" "$TMP/b.conf" "$TMP/b.log" ||
    bail_out "pinproxy -c $TMP/b.conf is not listening on $PB"

# Interception when a pin matches. Origin M offers h2 but speaks only
# HTTP/1.1: curl must not offer h2 to it.
body=$(pcurl "$PA" --http1.1 --cacert "$TMP/ca.pem" https://api.test/hello \
    2>"$TMP/api.err")
check_eq "intercepted CONNECT, pin matches: the origin's body" "$HELLO" \
    "$body"
[ "$body" = "$HELLO" ] || diag "curl: $(cat "$TMP/api.err")"
openssl s_client -proxy "127.0.0.1:$PA" -connect api.test:443 \
    -servername api.test -showcerts </dev/null >"$TMP/api.sclient" 2>&1
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \
    "$TMP/api.sclient" | awk '{ print } /-----END/ { exit }' \
    >"$TMP/api-leaf.pem"
issuer=$(openssl x509 -noout -issuer -nameopt RFC2253 \
    -in "$TMP/api-leaf.pem" 2>&1)
ca_subject=$(openssl x509 -noout -subject -nameopt RFC2253 \
    -in "$TMP/ca.pem" 2>&1)
check_eq "intercepted CONNECT: the leaf is issued by pinproxy's CA" \
    "${ca_subject#subject=}" "${issuer#issuer=}"
openssl verify -CAfile "$TMP/ca.pem" "$TMP/api-leaf.pem" >"$TMP/verify.out" \
    2>&1
check_eq "intercepted CONNECT: the leaf verifies against pinproxy's CA" \
    "$TMP/api-leaf.pem: OK" "$(cat "$TMP/verify.out")"
# The chain holds the CA after the leaf: a client may trust it by its SPKI.
check_eq "intercepted CONNECT: the client gets 2 certificates" 2 \
    "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$TMP/api.sclient")"
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \
    "$TMP/api.sclient" | awk 'n == 1 { print } /-----END/ { n++ }' \
    >"$TMP/api-second.pem"
check_eq "intercepted CONNECT: the second certificate is pinproxy's CA" \
    "$(openssl x509 -noout -fingerprint -sha256 -in "$TMP/ca.pem" 2>&1)" \
    "$(openssl x509 -noout -fingerprint -sha256 -in "$TMP/api-second.pem" \
    2>&1)"
# One TLS 1.3 ticket per handshake: what the next connection resumes with.
printf 'GET /hello HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n' |
    openssl s_client -proxy "127.0.0.1:$PA" -connect api.test:443 \
    -servername api.test -CAfile "$TMP/ca.pem" -tls1_3 -ign_eof -msg \
    >"$TMP/ticket.sclient" 2>&1
check_eq "intercepted CONNECT: one session ticket for the client" "1 yes" \
    "$(grep -c '<<< .*NewSessionTicket' "$TMP/ticket.sclient") \
$(grep -q 'hello from origin' "$TMP/ticket.sclient" && echo yes)"
sans=$(openssl x509 -noout -ext subjectAltName -in "$TMP/api-leaf.pem" \
    2>&1 | sed -n '2,$p' | tr -d ' ')
check_eq "intercepted CONNECT: the leaf has exactly one SAN, DNS:api.test" \
    "DNS:api.test" "$sans"
check_log "intercepted CONNECT: event=access mode=intercept" "$TMP/a.log" \
    "$(kv event access)" "$(kv mode intercept)" "$(kv host api.test)" \
    "$(kv status 200)" '(^| )bytes_down=[1-9][0-9]*( |$)'
check "intercepted CONNECT: the origin saw SNI api.test" \
    grep -qF '"sni": "api.test"' "$TMP/om.log"

# A client that does not trust the CA: one warn line with the alert it sent
# and a hint; the same failure again within the minute adds no line.
tls_failed()
{
	log_count "$TMP/a.log" "$(kv event client_tls_failed)" \
	    "$(kv host api.test)"
}
untrusted()
{
	pcurl "$PA" -o /dev/null https://api.test/hello 2>>"$TMP/untrusted.err"
}
n=$(tls_failed)
n502=$(log_count "$TMP/a.log" "$(kv event access)" "$(kv host api.test)" \
    "$(kv status 502)")
untrusted
check_log "untrusted CA: client_tls_failed alert=unknown_ca, level=warn" \
    "$TMP/a.log" "$(kv event client_tls_failed)" "$(kv level warn)" \
    "$(kv host api.test)" "$(kv alert unknown_ca)" \
    '(^| )client=127\.0\.0\.1:[0-9]+( |$)'
check_log "untrusted CA: the line has a hint naming ca.pem and pinproxy(8)" \
    "$TMP/a.log" "$(kv event client_tls_failed)" \
    '(^| )hint="[^"]*install ca\.pem, see pinproxy\(8\)"'
untrusted
for i in $(seq "$WAIT_TICKS"); do
	[ "$(log_count "$TMP/a.log" "$(kv event access)" \
	    "$(kv host api.test)" "$(kv status 502)")" -ge $((n502 + 2)) ] &&
	    break
	t_sleep 0.05
done
check_eq "untrusted CA: a second failure within the minute adds no line" \
    $((n + 1)) "$(tls_failed)"

# A wrong pin: the client's handshake fails, nothing reaches the origin.
pcurl "$PA" --cacert "$TMP/ca.pem" -o "$TMP/wrong.body" \
    https://wrong.test/hello 2>"$TMP/wrong.err"
rc=$?
check "pin mismatch: curl fails (exit $rc)" test "$rc" != 0
check_eq "pin mismatch: curl got no body" 0 \
    "$(cat "$TMP/wrong.body" 2>/dev/null | wc -c)"
connect wrong --proxy "$PA" --connect wrong.test:443 --sni wrong.test \
    --cafile "$TMP/ca.pem" --get /hello
check_out "pin mismatch: the handshake ends with a TLS alert" wrong tls alert
check_log "pin mismatch: event=pin_mismatch enforced=yes" "$TMP/a.log" \
    "$(kv event pin_mismatch)" "$(kv host wrong.test)" \
    "$(kv pinset set-wrong)" "$(kv enforced yes)" \
    "(^| )addr=127\\.0\\.0\\.1:$OW( |\$)"
origin_settle "$TMP/ow.log"
check "pin mismatch: pinproxy completed the origin's handshake" \
    test "$(origin_count "$TMP/ow.log" tls '"sni": "wrong.test"')" -ge 2
check_eq "pin mismatch: the origin received no request" 0 \
    "$(origin_count "$TMP/ow.log" request)"
check_eq "pin mismatch: the origin received no application byte" 0 \
    "$(origin_count "$TMP/ow.log" bytes)"
connect badname --proxy "$PA" --connect badname.test:443 \
    --sni badname.test --cafile "$TMP/ca.pem" --get /hello
check_out "wrong name: the handshake ends with a TLS alert" badname tls \
    alert
check_log "wrong name: event=verify_failed, the server's address" \
    "$TMP/a.log" "$(kv event verify_failed)" "$(kv host badname.test)" \
    "(^| )addr=127\\.0\\.0\\.1:$OV( |\$)"
origin_settle "$TMP/ov.log"
check_eq "wrong name: the origin received no application byte" 0 \
    "$(origin_count "$TMP/ov.log" bytes)"

# ALPN: the client gets what the origin selected.
alpn()
{
	openssl s_client -proxy "127.0.0.1:$PA" -connect "$1:443" \
	    -servername "$1" -alpn h2,http/1.1 -CAfile "$TMP/ca.pem" \
	    -verify_return_error </dev/null 2>&1 |
	    grep -E '^(ALPN protocol|No ALPN negotiated)' | head -n 1
}
check_eq "ALPN: origin with h2,http/1.1: client sees h2" \
    "ALPN protocol: h2" "$(alpn api.test)"
check_eq "ALPN: origin with http/1.1: client sees http/1.1" \
    "ALPN protocol: http/1.1" "$(alpn alpn1.test)"
check_eq "ALPN: origin without ALPN: client sees none" \
    "No ALPN negotiated" "$(alpn alpn0.test)"
check "ALPN: the client's list reached the origin" \
    grep -qE '"event": "tls", .*"alpn": "h2", "sni": "api.test"' \
    "$TMP/om.log"

# A client that checks pins of its own rejects the forged leaf: the
# handshake fails on its side, and nothing is relayed.
connect selfpin --proxy "$PA" --connect alpn0.test:443 --sni alpn0.test \
    --cafile "$PKI/root.pem" --get /hello
check_out "client rejecting the forged leaf: its handshake fails" selfpin \
    tls error
check_log "client rejecting the forged leaf: access line with status=502" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host alpn0.test)" "$(kv status 502)"
origin_settle "$TMP/o0.log"
check_eq "client rejecting the forged leaf: the origin received no byte" 0 \
    "$(origin_count "$TMP/o0.log" bytes)"

# HTTP/2 end to end, with nginx as the origin.
if ! command -v nginx >/dev/null 2>&1; then
	for i in 1 2 3; do
		skip "HTTP/2: nginx is not installed (Debian: nginx-light)"
	done
elif ! nginx -V 2>&1 | grep -q -- --with-http_v2_module; then
	for i in 1 2 3; do
		skip "HTTP/2: this nginx has no http_v2 module"
	done
else
	mkdir -p "$TMP/www" "$TMP/nginx-tmp"
	head -c 100000 /dev/urandom >"$TMP/www/file"
	cat >"$TMP/nginx.conf" <<EOF
master_process off;
worker_processes 1;
events {
	worker_connections 64;
}
http {
	access_log $TMP/nginx-access.log;
	client_body_temp_path $TMP/nginx-tmp/body;
	proxy_temp_path $TMP/nginx-tmp/proxy;
	fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
	uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
	scgi_temp_path $TMP/nginx-tmp/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$OH ssl http2;
		server_name h2.test;
		ssl_certificate $PKI/multi-chain.pem;
		ssl_certificate_key $PKI/multi.key;
		root $TMP/www;
	}
}
EOF
	spawn NGINX nginx -e stderr -p "$TMP" -c "$TMP/nginx.conf" \
	    -g "daemon off; pid $TMP/nginx.pid;" 2>"$TMP/nginx.err"
	if wait_port "$OH" 5; then
		version=$(pcurl "$PA" --http2 --cacert "$TMP/ca.pem" \
		    -o "$TMP/h2.body" -w '%{http_version}' \
		    https://h2.test/file 2>"$TMP/h2.err")
		check_eq "HTTP/2: curl reports HTTP version 2" 2 "$version"
		[ "$version" = 2 ] || diag "curl: $(cat "$TMP/h2.err")"
		check "HTTP/2: the file arrives intact" \
		    cmp -s "$TMP/www/file" "$TMP/h2.body"
		check "HTTP/2: nginx logged an HTTP/2.0 request" \
		    grep -qF '"GET /file HTTP/2.0" 200' "$TMP/nginx-access.log"
	else
		for i in 1 2 3; do
			not_ok "HTTP/2: nginx did not start"
		done
		diag "$(cat "$TMP/nginx.err")"
	fi
	stop "$NGINX"
fi

# The emulator's CONNECT by IP address; the host name comes from SNI.
connect byip --proxy "$PA" --connect "127.0.0.1:$OM" --sni api.test \
    --cafile "$TMP/ca.pem" --get /hello
check_out "CONNECT by IP: the answer is exactly the bare 200" byip reply \
    "$ESTABLISHED"
check_out "CONNECT by IP, SNI api.test: TLS with pinproxy's leaf" byip \
    cert_issuer "$(openssl x509 -noout -subject -nameopt multiline \
    -in "$TMP/ca.pem" | sed -n 's/^ *commonName *= *//p')"
check_out "CONNECT by IP, SNI api.test: the origin's body" byip body \
    'hello from origin\n'
check_log "CONNECT by IP: access line names the SNI host" "$TMP/a.log" \
    "$(kv event access)" "$(kv mode intercept)" "$(kv host api.test)" \
    "$(kv status 200)"
mismatches()
{
	log_lines "$TMP/a.log" "$(kv event pin_mismatch)" \
	    "$(kv host wrong.test)" | wc -l
}
n=$(mismatches)
connect byip-wrong --proxy "$PA" --connect "127.0.0.1:$OW" \
    --sni wrong.test --cafile "$TMP/ca.pem" --get /hello
check_out "CONNECT by IP, SNI of a wrong pin set: TLS alert" byip-wrong \
    tls alert
check_eq "CONNECT by IP, SNI of a wrong pin set: event=pin_mismatch" \
    $((n + 1)) "$(mismatches)"
# Servers ignore the record version (Java's takes any from 3.0 up): a
# hello under 3.5, 0.0, 16.3 or 255.255 is still read for its SNI, never
# tunnelled blind as "not TLS" (unpinned = pass).
refused()
{
	log_count "$TMP/a.log" "$(kv event access)" "$(kv mode intercept)" \
	    "$(kv host wrong.test)" "$(kv status 502)"
}
n=$(refused)
for v in 0305 0000 1003 ffff; do
	connect "byip-v$v" --proxy "$PA" --connect "127.0.0.1:$OW" \
	    --sni wrong.test --cafile "$TMP/ca.pem" --record-version "$v" \
	    --get /hello
	check_out "CONNECT by IP, record version $v, SNI of a wrong pin set: alert" \
	    "byip-v$v" tls alert
done
check_eq "CONNECT by IP, other record versions: intercepted and refused" \
    $((n + 4)) "$(refused)"
# Nor is a hello behind a warning alert (which a server may skip).
n=$(log_count "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host 127.0.0.1)" "$(kv status 400)" "$(kv bytes_up 0)")
connect byip-alert --proxy "$PA" --connect "127.0.0.1:$OW" \
    --sni wrong.test --cafile "$TMP/ca.pem" --alert-first --get /hello
check_eq "CONNECT by IP, an alert before the hello: refused (400), no byte up" \
    $((n + 1)) "$(log_count "$TMP/a.log" "$(kv event access)" \
    "$(kv mode tunnel)" "$(kv host 127.0.0.1)" "$(kv status 400)" \
    "$(kv bytes_up 0)")"
check_log "CONNECT by IP, an alert before the hello: the reason, at warn level" \
    "$TMP/a.log" "$(kv event client_tls_failed)" "$(kv host 127.0.0.1)" \
    "$(kv alert none)" 'reason="its ClientHello is malformed"'

# Without SNI, the host name is the CONNECT host.
connect nosni --proxy "$PA" --connect api.test:443 --host api.test \
    --cafile "$TMP/ca.pem" --get /hello
check_out "no SNI: the leaf is for the CONNECT host" nosni cert_san \
    DNS:api.test
check_out "no SNI: the origin's body" nosni body 'hello from origin\n'

# A ClientHello in three TCP segments, and a 2.5 KB one in three.
connect split --proxy "$PA" --connect api.test:443 --sni api.test \
    --cafile "$TMP/ca.pem" --split 3 --get /hello
check_out "ClientHello in three segments: handshake completes" split tls ok
check_out "ClientHello in three segments: the origin's body" split body \
    'hello from origin\n'
connect bighello --proxy "$PA" --connect api.test:443 --sni api.test \
    --cafile "$TMP/ca.pem" --split 3 --pad-alpn 12 --alpn http/1.1 \
    --get /hello
check_out "2.5 KB ClientHello in three segments: ALPN http/1.1" bighello \
    alpn http/1.1
check_out "2.5 KB ClientHello in three segments: the origin's body" \
    bighello body 'hello from origin\n'

# The CONNECT host name and the SNI differ.
connect mismatch --proxy "$PA" --connect api.test:443 --sni other.test \
    --cafile "$TMP/ca.pem" --get /hello
check_out "CONNECT host differs from SNI: the bare 200" mismatch reply \
    "$ESTABLISHED"
check_out "CONNECT host differs from SNI: TLS alert" mismatch tls alert
check_log "CONNECT host differs from SNI: event=blocked, the CONNECT host \
as host, the SNI in the reason" "$TMP/a.log" \
    "$(kv event blocked)" "$(kv host api.test)" \
    "$(kv reason "SNI other.test differs from the CONNECT host")"

# A port outside connect_ports.
connect port --proxy "$PA" --connect "api.test:$DENIED" --sni api.test
check_out "port not in connect_ports: 403" port status 403
check_eq "port not in connect_ports: Proxy-Status details=port-denied" \
    'pinproxy; error=http_request_denied; details="port-denied"' \
    "$(header "$TMP/port.head" Proxy-Status)"

# Unpinned hosts: a blind tunnel, or blocked.
body=$(pcurl "$PA" --cacert "$PKI/root.pem" "https://pass.test:$OP/hello" \
    2>"$TMP/pass.err")
check_eq "unpinned = pass: blind tunnel, client trusts the origin's root" \
    "$HELLO" "$body"
[ "$body" = "$HELLO" ] || diag "curl: $(cat "$TMP/pass.err")"
pcurl "$PA" --cacert "$TMP/ca.pem" "https://pass.test:$OP/hello" \
    >/dev/null 2>&1
check "unpinned = pass: pinproxy's CA is not what the client sees" \
    test "$?" != 0
check "unpinned = pass: the client's own handshake reached the origin" \
    grep -qF '"sni": "pass.test"' "$TMP/op.log"
check "unpinned = pass: pass.test was resolved with DNS" \
    test "$(origin_count "$TMP/dns.log" query '"pass.test"')" -ge 1
check_log "unpinned = pass: access line mode=tunnel" "$TMP/a.log" \
    "$(kv event access)" "$(kv mode tunnel)" "$(kv host pass.test)"

# A blind tunnel's second ClientHello (which a TLS 1.3 server reads after
# its HelloRetryRequest, and takes the server name from) may not name
# another server than the first, here sent right behind it: a pinned name
# would reach its server unchecked. By address, and by an unpinned name.
second()
{
	log_count "$TMP/a.log" "$(kv event blocked)" \
	    'reason="a blind tunnel.s further ClientHello'
}
n=$(second)
connect hello2 --proxy "$PA" --connect "127.0.0.1:$OP" --sni pass.test \
    --cafile "$PKI/root.pem" --second-hello api.test --get /hello
connect hello2n --proxy "$PA" --connect "pass.test:$OP" --sni pass.test \
    --cafile "$PKI/root.pem" --second-hello api.test --get /hello
connect hello2none --proxy "$PA" --connect "127.0.0.1:$OP" \
    --cafile "$PKI/root.pem" --second-hello api.test --get /hello
check_eq "a second ClientHello naming a pinned host: refused, each time" \
    $((n + 3)) "$(second)"
check_log "a second ClientHello naming another server: access status 403" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host pass.test)" "$(kv status 403)"
check "a second ClientHello naming a pinned host: never reached the origin" \
    test "$(grep -cF '"sni": "api.test"' "$TMP/op.log")" -eq 0
# A PROXY protocol header (either version) before a ClientHello is
# refused: a server that takes one from its clients would read the hello
# behind it, which the tunnel's look at the first bytes does not see.
printf 'PROXY TCP4 127.0.0.9 127.0.0.1 5555 443\r\n' >"$TMP/proxy1.bin"
printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c' >"$TMP/proxy2.bin"
proxyhdr()
{
	log_count "$TMP/a.log" "$(kv event blocked)" \
	    'reason="a PROXY protocol header from the client"'
}
n=$(proxyhdr)
for v in 1 2; do
	connect "proxyhdr$v" --proxy "$PA" --connect "127.0.0.1:$OP" \
	    --send "$TMP/proxy$v.bin"
done
check_eq "a PROXY protocol header (v1, v2) first in a tunnel: refused" \
    $((n + 2)) "$(proxyhdr)"

# A real retry: the second ClientHello names the same server, and the
# handshake and the request go through.
wait_port "$OHR" || diag "openssl s_server (HelloRetryRequest) did not start"
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -msg \
    -proxy "127.0.0.1:$PA" -connect "pass.test:$OHR" -servername pass.test \
    -CAfile "$PKI/root.pem" -groups X25519:P-256 -tls1_3 -ign_eof \
    >"$TMP/hrr.out" 2>&1
check_eq "a HelloRetryRequest through a blind tunnel: two ClientHellos" 2 \
    "$(grep -c '^>>> .*ClientHello' "$TMP/hrr.out")"
check_grep "a HelloRetryRequest through a blind tunnel: the answer" \
    '^HTTP/1.0 200 ok' "$TMP/hrr.out"
# The same name again is no reason to refuse (the origin may fail it).
connect hello2same --proxy "$PA" --connect "127.0.0.1:$OP" --sni pass.test \
    --cafile "$PKI/root.pem" --second-hello pass.test --get /hello
check_eq "a second ClientHello naming the same server: not refused" \
    $((n + 3)) "$(second)"

# Bulk data through a blind tunnel (moved with splice(2)): both ways, at
# full speed and to a slow reader, every byte in order, and the pipes are
# closed afterwards.
base=$(fd_baseline "$PP_A")
want=$(python3 "$ORIGIN" --pattern 16777216 | sha256sum | cut -d ' ' -f 1)
got=$(pcurl "$PA" --cacert "$PKI/root.pem" \
    "https://pass.test:$OP/bytes/16777216" 2>"$TMP/tbig.err" |
    sha256sum | cut -d ' ' -f 1)
check_eq "blind tunnel: 16 MiB download, every byte" "$want" "$got"
[ "$want" = "$got" ] || diag "curl: $(cat "$TMP/tbig.err")"
want=$(python3 "$ORIGIN" --pattern 8388608 | sha256sum | cut -d ' ' -f 1)
got=$(pcurl "$PA" --cacert "$PKI/root.pem" --limit-rate 4M \
    "https://pass.test:$OP/bytes/8388608" 2>"$TMP/tslow.err" |
    sha256sum | cut -d ' ' -f 1)
check_eq "blind tunnel: 8 MiB to a reader limited to 4 MB/s, every byte" \
    "$want" "$got"
head -c 10485760 /dev/urandom >"$TMP/tup.bin"
got=$(pcurl "$PA" --cacert "$PKI/root.pem" -H 'Expect:' --max-time 60 \
    --data-binary "@$TMP/tup.bin" "https://pass.test:$OP/echo" \
    2>"$TMP/tup.err")
check_eq "blind tunnel: 10 MiB upload, the origin got every byte" \
    "$(sha256sum "$TMP/tup.bin" | cut -d ' ' -f 1) 10485760" "$got"
[ -s "$TMP/tup.err" ] && diag "curl: $(cat "$TMP/tup.err")"
check_log "blind tunnel: the access line counts the upload" "$TMP/a.log" \
    "$(kv event access)" "$(kv mode tunnel)" "$(kv host pass.test)" \
    '(^| )bytes_up=10[4-9][0-9]{5}( |$)'
check_fds "blind tunnel bulk transfers" "$PP_A" "$base"

# A half-close through a blind tunnel: a client that sends a line of a
# protocol that is not HTTP and shuts down its sending side with it (one
# segment and a FIN right after the 200) gets everything the server sends
# back, then the close; its end reaches the server as a FIN.
cat >"$TMP/halftunnel.py" <<'EOF'
import socket, sys
from connect_client import open_tunnel, read_rest
s, head = open_tunnel(int(sys.argv[1]), sys.argv[2])
s.sendall(b"PING a line, then the end\r\n")
s.shutdown(socket.SHUT_WR)
out = read_rest(s, timeout=10)
print("%s|%s" % (head.split(b"\r\n")[0].decode(), out.decode()), end="")
EOF
check_eq "half-closed client in a blind tunnel: the 200, the whole echo" \
    "HTTP/1.1 200 Connection established|PING a line, then the end" \
    "$(py "$TMP/halftunnel.py" "$PA" "pass.test:$OE" 2>&1 | tr -d '\r')"
origin_settle "$TMP/oe.log"
check_eq "half-closed client in a blind tunnel: the server saw the FIN" \
    '"end": "fin"' "$(grep -F '"event": "close"' "$TMP/oe.log" |
    tail -n 1 | grep -oE '"end": "[a-z_]+"')"
# A protocol whose first line holds a control byte and which then waits
# for its server (git's pkt-line "...\0host=...\0", no newline): a blind
# tunnel at once, not a wait for the end of a request line, also for a
# line longer than a request line may be (a long repository path).
cat >"$TMP/gitline.py" <<'EOF'
import sys, time
from connect_client import open_tunnel, read_rest
s, head = open_tunnel(int(sys.argv[1]), sys.argv[2])
body = b"git-upload-pack /%s.git\0host=pass.test\0" % (
    b"p" * int(sys.argv[3]))
line = b"%04x" % (len(body) + 4) + body
# In two segments: the first ends before the length the line announces.
s.sendall(line[:100])
time.sleep(0.2)
s.sendall(line[100:])
out = read_rest(s, size=len(line))
print("echoed" if out == line else "got %r" % out, end="")
EOF
for n in 7 1500; do
	check_eq "git pkt-line, path of $n bytes, client waits: a blind \
tunnel, echoed" echoed "$(py "$TMP/gitline.py" "$PA" "pass.test:$OE" "$n" 2>&1)"
done

connect block --proxy "$PB" --connect blocked.test:443 --sni blocked.test
check_out "unpinned = block, CONNECT by name: 403" block status 403
check_eq "unpinned = block, CONNECT by name: details=blocked" \
    'pinproxy; error=http_request_denied; details="blocked"' \
    "$(header "$TMP/block.head" Proxy-Status)"
check_log "unpinned = block, CONNECT by name: event=blocked" "$TMP/b.log" \
    "$(kv event blocked)" "$(kv host blocked.test)"
connect blockip --proxy "$PB" --connect "127.0.0.1:$OM" \
    --sni unpinned.test --cafile "$PKI/root.pem" --get /hello
check_out "unpinned = block, CONNECT by IP: the bare 200" blockip reply \
    "$ESTABLISHED"
check_out "unpinned = block, CONNECT by IP, unpinned SNI: TLS alert" \
    blockip tls alert
check_log "unpinned = block, CONNECT by IP: event=blocked" "$TMP/b.log" \
    "$(kv event blocked)" "$(kv host unpinned.test)"
connect allowip --proxy "$PB" --connect "127.0.0.1:$OM" --sni api.test \
    --cafile "$TMP/ca-b.pem" --get /hello
check_out "unpinned = block, CONNECT by IP, pinned SNI: intercepted" \
    allowip body 'hello from origin\n'
# Its debug log follows the connection through every state, in order.
states=$(grep 'event=conn_state' "$TMP/b.log" | sed -n 's/.* state=//p' |
    tr '\n' ' ')
case $states in
*"dial await_hello upstream_tls client_tls relay "*) ok_states=yes ;;
*) ok_states=no ;;
esac
check_eq "an intercepted CONNECT goes dial, await_hello, upstream_tls, client_tls, relay" \
    yes "$ok_states"
[ "$ok_states" = yes ] || diag "states logged: $states"

# Plaintext HTTP after the 200 (CONNECT host:80, as undici's ProxyAgent
# and Chromium's ws:// send it) is served like a plaintext request: a
# pinned host over pinned TLS, every request bound to the CONNECT host.
# tplain NAME HOST:PORT FORMAT [ARG...]: CONNECT through instance A, then
# the bytes of printf FORMAT ARG... through the tunnel (and with UNTIL set,
# read only until that text came back).
tplain()
{
	local name=$1 target=$2
	shift 2
	printf "$@" >"$TMP/$name.req"
	connect "$name" --proxy "$PA" --connect "$target" \
	    --send "$TMP/$name.req" --timeout 10 ${UNTIL:+--until "$UNTIL"}
}
# got NAME TEXT: the answer that came through the tunnel holds TEXT.
got()
{
	case $(out "$1" data) in
	*"$2"*)	return 0 ;;
	esac
	diag "$(cat "$TMP/$1.out")"
	return 1
}
GET_CLOSE='GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n'
GET_KEEP='GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n'

tplain tp-api api.test:80 "$GET_CLOSE" api.test
check_out "plain HTTP in a CONNECT tunnel: the bare 200" tp-api reply \
    "$ESTABLISHED"
check "plain HTTP in a CONNECT tunnel, pin matches: the origin's answer" \
    got tp-api "HTTP/1.1 200 OK"
check "plain HTTP in a CONNECT tunnel, pin matches: the body" \
    got tp-api "$HELLO"
check_log "plain HTTP in a CONNECT tunnel: event=access mode=plain" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host api.test)" "$(kv status 200)"

# HTTP/1.0 without Host in the tunnel: the request is for its host.
tplain tp-10 api.test:80 'GET /hello HTTP/1.0\r\n\r\n'
check "plain HTTP/1.0 without Host in a CONNECT tunnel: the origin's answer" \
    got tp-10 "$HELLO"
# Outside a tunnel such a request names no host: 400.
check_eq "HTTP/1.0 in origin-form without Host to the proxy: 400" \
    "HTTP/1.1 400" "$(printf 'GET /hello HTTP/1.0\r\n\r\n' |
    python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
print(s.recv(12).decode())' "$PA")"

# A request larger than one read, sent at once right after the 200: the
# connection must read all of it although the hello's peek watched the
# socket edge-triggered.
PAD=$(head -c 12000 /dev/zero | tr '\0' a)
tplain tp-big api.test:80 \
    'GET /hello HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\nConnection: close\r\n\r\n' \
    api.test "$PAD"
check "plain HTTP in a CONNECT tunnel, a 12 KB request: the answer" \
    got tp-big "HTTP/1.1 200 OK"

tplain tp-wrong wrong.test:80 "$GET_CLOSE" wrong.test
check "plain HTTP in a CONNECT tunnel, wrong pin: 502 pin-mismatch" \
    got tp-wrong 'error=tls_certificate_error; details="pin-mismatch"'
check_log "plain HTTP in a CONNECT tunnel, wrong pin: event=pin_mismatch" \
    "$TMP/a.log" "$(kv event pin_mismatch)" "$(kv host wrong.test)"

# A pinned host's TLS port: the request goes over pinned TLS, never plain.
tplain tp-tlsport plainafter.test:443 "$GET_CLOSE" plainafter.test
check "plain HTTP in a tunnel to a pinned TLS port: served over TLS" \
    got tp-tlsport "$HELLO"
origin_settle "$TMP/ot.log"
check "plain HTTP in a tunnel to a pinned TLS port: the origin saw SNI" \
    grep -qF '"sni": "plainafter.test"' "$TMP/ot.log"

# Pipelined requests in a tunnel to an unpinned host: the one naming a
# pinned host is refused, and never reaches any origin in cleartext.
tplain tp-pipe "pass.test:$OL" "$GET_KEEP$GET_CLOSE" pass.test api.test
check "pipelined in an unpinned tunnel: the first request is served" \
    got tp-pipe "HTTP/1.1 200 OK"
check "pipelined in an unpinned tunnel: another host is refused with 400" \
    got tp-pipe "HTTP/1.1 400 "
origin_settle "$TMP/ol.log"
check_eq "pipelined in an unpinned tunnel: one request reached the origin" \
    1 "$(origin_count "$TMP/ol.log" request)"
check "pipelined in an unpinned tunnel: api.test never sent in cleartext" \
    test "$(grep -ci 'api\.test' "$TMP/ol.log")" = 0
check_log "pipelined in an unpinned tunnel: event=blocked names the host" \
    "$TMP/a.log" "$(kv event blocked)" "$(kv host api.test)" \
    "$(kv reason "request host differs from the CONNECT host")"
# The absolute form names a host just as well.
tplain tp-abs "pass.test:$OL" \
    'GET http://api.test/hello HTTP/1.1\r\nHost: pass.test\r\n\r\n'
check "absolute form naming another host in a tunnel: 400" \
    got tp-abs "HTTP/1.1 400 "
origin_settle "$TMP/ol.log"
check_eq "absolute form naming another host in a tunnel: nothing sent" \
    1 "$(origin_count "$TMP/ol.log" request)"

# Empty lines first (servers skip them), or an odd long method: still a
# request, refused for naming another host.
tplain tp-crlf "pass.test:$OL" "\r\n$GET_KEEP" api.test
check "a request after empty lines in a tunnel: another host refused" \
    got tp-crlf "HTTP/1.1 400 "
tplain tp-method "pass.test:$OL" \
    'PINPROXYTESTMETHODLONGERTHANANYREAL /hello HTTP/1.1\r\nHost: %s\r\n\r\n' \
    api.test
check "a long method in a tunnel: another host refused" \
    got tp-method "HTTP/1.1 400 "
origin_settle "$TMP/ol.log"
check_eq "empty lines, long method: nothing reached the plain origin" \
    1 "$(origin_count "$TMP/ol.log" request)"

# And the other way: a pinned tunnel does not carry an unpinned host.
tplain tp-pipe2 api.test:80 "$GET_KEEP$GET_CLOSE" api.test pass.test
check "pipelined in a pinned tunnel: the pinned request is served" \
    got tp-pipe2 "$HELLO"
check "pipelined in a pinned tunnel: the unpinned host is refused" \
    got tp-pipe2 "HTTP/1.1 400 "
origin_settle "$TMP/ol.log"
check_eq "pipelined in a pinned tunnel: nothing reached the plain origin" \
    1 "$(origin_count "$TMP/ol.log" request)"

# The emulator's CONNECT by address: the first request's Host names the
# host (a pinned one goes over pinned TLS), and binds the tunnel to it.
tplain tp-ip "127.0.0.1:$OL" "$GET_KEEP$GET_CLOSE" api.test pass.test
check "plain HTTP in a tunnel by address: a pinned Host goes over TLS" \
    got tp-ip "$HELLO"
check "plain HTTP in a tunnel by address: a second host is refused" \
    got tp-ip "HTTP/1.1 400 "
origin_settle "$TMP/ol.log"
check_eq "plain HTTP in a tunnel by address: the address saw no request" \
    1 "$(origin_count "$TMP/ol.log" request)"
# An unpinned host's request goes to that address, whatever the name
# resolves to (nothing, here): the Host names the site, not the server.
tplain tp-ip2 "127.0.0.1:$OL" "$GET_CLOSE" other.test
check "plain HTTP in a tunnel by address: the address answers an unpinned \
host" got tp-ip2 "$HELLO"
origin_settle "$TMP/ol.log"
check_eq "plain HTTP in a tunnel by address: the address got it, its Host \
unchanged" 1 "$(origin_count "$TMP/ol.log" request '"host": "other.test')"

# Whatever spelling a server may accept for a request line (a method with
# a hyphen, as M-SEARCH; a tab between the words; a space before the
# method; lower case; the separators of Python's str.split(); HTTP/0.9,
# after which some servers read headers all the same; a long target) is
# HTTP, never a blind tunnel to the address: a
# request in it naming a pinned host must not reach the address in
# cleartext (it goes over pinned TLS, or pinproxy refuses it).
LONG=$(head -c 3000 /dev/zero | tr '\0' a)
for form in 'M-SEARCH /hello HTTP/1.1' 'GET\t/hello\tHTTP/1.1' \
    ' GET /hello HTTP/1.1' 'get /hello http/1.1' \
    'GET\xa0/hello\x1fHTTP/1.1' 'GET /hello' "GET /hello?$LONG HTTP/1.1" \
    'HEAD /hello\x01 HTTP/1.1' 'PUT /hello\x00 HTTP/1.1' \
    'G\x01T /hello HTTP/1.1' '\r\nGET/ /hello HTTP/1.1' \
    '0080git-x /hello HTTP/1.1'; do
	n_ol=$(origin_count "$TMP/ol.log" request)
	n_blind=$(log_count "$TMP/a.log" "$(kv event access)" \
	    "$(kv mode tunnel)" "$(kv host 127.0.0.1)")
	tplain tp-form "127.0.0.1:$OL" \
	    "$form\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" api.test
	origin_settle "$TMP/ol.log"
	check_eq "request line '$form' in a tunnel by address: the address \
saw no request" "$n_ol" "$(origin_count "$TMP/ol.log" request)"
	t_sleep 0.2
	check_eq "request line '$form' in a tunnel by address: no blind \
tunnel" "$n_blind" "$(log_count "$TMP/a.log" "$(kv event access)" \
	    "$(kv mode tunnel)" "$(kv host 127.0.0.1)")"
done

# A request line with a control byte, sent in two segments: the first ends
# before the version. Still HTTP (lenient servers read it), so never a
# blind tunnel that carries a pinned Host to the address in cleartext.
cat >"$TMP/splitline.py" <<'EOF'
import sys, time
from connect_client import open_tunnel, read_rest
s, head = open_tunnel(int(sys.argv[1]), sys.argv[2])
s.sendall(b"HEAD /hello\x01 HTT")
time.sleep(0.3)
s.sendall(b"P/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
print(read_rest(s).split(b"\r\n")[0].decode("latin-1"), end="")
EOF
n_ol=$(origin_count "$TMP/ol.log" request)
check_eq "request line with a control byte in two segments: refused (400)" \
    "HTTP/1.1 400 Bad Request" \
    "$(py "$TMP/splitline.py" "$PA" "127.0.0.1:$OL" 2>&1)"
origin_settle "$TMP/ol.log"
check_eq "request line with a control byte in two segments: the address saw \
no request" "$n_ol" "$(origin_count "$TMP/ol.log" request)"

# A blind tunnel looks at the start of the client's stream (reqguard.h)
# and ends once a lenient server would read a request there, before
# those bytes are written, whatever made the tunnel blind. Cases
# (segments sent 0.3 s apart): the start of git's request, then
# " HTTP/1.1" and headers (one line to Python); a git-like line longer
# than 128 KiB, as Go reads; a ClientHello without a LF byte, then
# " / HTTP/1.1" (wsgiref takes the hello for a method); a third word
# that is no version, then a field (the JDK's server); a bare LF inside
# the line (gunicorn reads lines to the CRLF); a request without fields,
# then another (the JDK answers the first and reads the second); a
# PROXY header, then a request (nginx with proxy_protocol; refused for
# the header itself, before the guard sees the request); a method that
# starts with a control byte or one above 0x7e, and a ClientHello whose
# random holds a request line (the JDK's server takes any bytes for a
# method); a bare LF in the method or the third word, CR CR LF inside
# the request line, CR CR for an empty header block (the JDK ends a
# request line at a CRLF only, a CR and the byte after it stay in it, and
# it ends a header line at any CR or LF), and a request line of 9000
# bytes (that server reads 380 KiB). Client bytes that name "http/" elsewhere pass: a git path, a
# binary protocol.
cat >"$TMP/blindline.py" <<'EOF'
import socket, sys, time
from connect_client import open_tunnel, read_rest
s, head = open_tunnel(int(sys.argv[1]), sys.argv[2])
segments = eval(sys.argv[3])
try:
    for i, seg in enumerate(segments):
        if i:
            time.sleep(0.3)
        if seg is None:
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(seg)
except OSError:
    pass
want = b"".join(seg for seg in segments if seg is not None)
out = read_rest(s, timeout=2, size=len(want))
print("%s|%s" % (head.split(b"\r\n")[0].decode(),
                 "echoed" if out == want else len(out)), end="")
EOF
REQ='b" HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n"'
HELLO_NO_LF='b"\x16\x03\x01\x00\x2d\x01\x00\x00\x29\x03\x03" + b"A" * 32 + b"\x00\x00\x02\x13\x01\x01\x00"'
HELLO_JDK='b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03 /x X\r\nHost: api.test\r\n\r\n" + b"A" * 7 + b"\x00\x00\x02\x13\x01\x01\x00\x00\x00"'
n_ol=$(origin_count "$TMP/ol.log" request)
n_blocked=$(log_count "$TMP/a.log" "$(kv event blocked)" \
    "an HTTP request at the start")
for c in "git, then a version|[b'0030git-upload-pack /project.git\\0host=pass.test\\0', $REQ]" \
    "a git-like line of 140000 bytes|[b'0030git-upload-pack /' + b'a' * 140000 + $REQ]" \
    "a ClientHello, then a version|[$HELLO_NO_LF, b' /' + $REQ]" \
    "any third word, then a field (JDK)|[b'POST /x x\\r\\nHost: api.test\\r\\nContent-Length: 0\\r\\n\\r\\n']" \
    "a bare LF inside the line (gunicorn)|[b'POST /x\\nfoo' + $REQ]" \
    "a request without fields, then another (JDK)|[b'FOO / X\\r\\n\\r\\nGET /' + $REQ]" \
    "a PROXY header, then a request (nginx)|[b'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\\r\\nGET /' + $REQ]" \
    "a control byte before the method (JDK)|[b'\\x01POST /x X\\r\\nHost: api.test\\r\\nContent-Length: 0\\r\\n\\r\\n']" \
    "a method above 0x7e (JDK)|[b'\\xc3\\xa9 /x X\\r\\nHost: api.test\\r\\n\\r\\n']" \
    "a ClientHello holding a request line (JDK)|[$HELLO_JDK]" \
    "a bare LF in the method (JDK)|[b'\\x01PO\\nST /x X\\r\\nHost: api.test\\r\\n\\r\\n']" \
    "a bare LF in a printable method (JDK)|[b'PO\\nST /x X\\r\\nHost: api.test\\r\\n\\r\\n']" \
    "a bare LF in the third word (JDK)|[b'\\x01POST /x X\\nY\\r\\nHost: api.test\\r\\n\\r\\n']" \
    "CR CR for an empty header block (JDK)|[b'\\x01POST /x X\\r\\n\\r\\r']" \
    "CR CR LF inside the request line (JDK)|[b'\\x01\\r\\r\\nGET /secret HTTP/1.1\\r\\nHost: api.test\\r\\n\\r\\n']" \
    "a request line of 9000 bytes (JDK)|[b'\\x01 /secret?' + b'a' * 9000 + b' x\\r\\nHost: api.test\\r\\n\\r\\n']"; do
	check_eq "blind tunnel, ${c%%|*}: 200, then closed with nothing" \
	    "HTTP/1.1 200 Connection established|0" \
	    "$(py "$TMP/blindline.py" "$PA" "127.0.0.1:$OL" "${c#*|}" 2>&1)"
done
check_eq "a request at the start of a blind tunnel: blocked, 15 times" \
    $(( n_blocked + 15 )) "$(log_count "$TMP/a.log" "$(kv event blocked)" \
    "an HTTP request at the start")"
check_log "an HTTP version on a blind tunnel's first line: access status=403" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host 127.0.0.1)" "$(kv status 403)"
origin_settle "$TMP/ol.log"
check_eq "an HTTP version on a blind tunnel's first line: the address saw no \
request" "$n_ol" "$(origin_count "$TMP/ol.log" request)"
# A CONNECT pipelined behind a plaintext request, its blind tunnel then
# refused (nginx's case above): the answer still queued for the earlier
# request, and the 200, reach the client, which stopped reading for a
# while, before the connection closes in order.
PIPED="GET http://127.0.0.1:$OL/bytes/300000 HTTP/1.1\r\nHost: 127.0.0.1:$OL\r\n\r\n"
PIPED="${PIPED}CONNECT pass.test:$OL HTTP/1.1\r\nHost: pass.test:$OL\r\n\r\n"
PIPED="${PIPED}PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
n_ol=$(origin_count "$TMP/ol.log" request)
check_eq "a refused tunnel behind a plaintext answer: closed, not reset" \
    closed "$(stalled piped "$PA" "$PIPED" 0.5)"
check_eq "a refused tunnel behind a plaintext answer: every byte of it, then \
the 200" "$(( 300000 ))|HTTP/1.1 200 Connection established" \
    "$(py -c 'import sys
d = open(sys.argv[1], "rb").read()
h, _, rest = d.partition(b"\r\n\r\n")
body, _, tail = rest.partition(b"HTTP/1.1 200 C")
print("%d|HTTP/1.1 200 C%s" % (len(body), tail.split(b"\r\n")[0].decode()))' \
    "$TMP/piped.resp")"
origin_settle "$TMP/ol.log"
check_eq "a refused tunnel behind a plaintext answer: the origin saw one \
request" "$(( n_ol + 1 ))" "$(origin_count "$TMP/ol.log" request)"
check_log "a request refused in a tunnel's first bytes counts no byte up" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host pass.test)" "$(kv status 403)" "$(kv bytes_up 0)"

# A first line that the next one turns into a request (the JDK's server
# takes any third word for a version): the line went to the server before
# the guard could know; the server is reset, never given an end of file
# that could end that request.
check_eq "blind tunnel, a first line then a field: refused" \
    "HTTP/1.1 200 Connection established|0" \
    "$(py "$TMP/blindline.py" "$PA" "sink.test:$OS" \
    "[b'POST /x x\\r\\n', b'Host: a\\r\\n\\r\\n']" 2>&1)"
check "blind tunnel, a first line then a field: the server got the line, \
then a reset" wait_line "$TMP/os.log" '"how": "reset", "got": "POST /x x\\r\\n"'
# The JDK's request line, then the client's end, which that server takes
# for the end of an empty header block: the end is not passed on either.
check_eq "blind tunnel, a request line then the client's end: refused" \
    "HTTP/1.1 200 Connection established|0" \
    "$(py "$TMP/blindline.py" "$PA" "sink.test:$OS" \
    "[b'\\x01 /secret x\\r\\n', None]" 2>&1)"
check "blind tunnel, a request line then the client's end: the server got \
the line, then a reset" wait_line "$TMP/os.log" \
    '"how": "reset", "got": "\\u0001 /secret x\\r\\n"'
# A server that spoke first, then a refused request: the client had part
# of the server's stream, which pinproxy cut, so it is reset too.
check_eq "blind tunnel after the server spoke, then a request: the client \
is reset" reset "$(py -c 'import sys, time
from connect_client import open_tunnel
s, head = open_tunnel(int(sys.argv[1]), sys.argv[2])
time.sleep(0.5)
s.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n\r\n")
time.sleep(0.3)
state = "open"
try:
    while True:
        if not s.recv(65536):
            state = "closed"
            break
except ConnectionResetError:
    state = "reset"
print(state)' "$PA" "sink.test:$OST")"
check "blind tunnel after the server spoke: the server is reset, got \
nothing" wait_line "$TMP/ost.log" '"how": "reset", "got": ""'
# A server's banner is no answer to the client's bytes: by address, the
# banner waits in the socket until the relay reads it after the client's
# first line, and the guard must still refuse the request that line
# starts.
check_eq "blind tunnel by address behind a banner, a line then a field: \
refused" "HTTP/1.1 200 Connection established|8" \
    "$(py "$TMP/blindline.py" "$PA" "127.0.0.1:$OSB" \
    "[b'FOO /x\\r\\n', b'Host: a\\r\\n\\r\\n']" 2>&1)"
check "blind tunnel by address behind a banner: the server got the first \
line, then a reset" wait_line "$TMP/osb.log" '"how": "reset", "got": "FOO /x\\r\\n"'
# A request refused in its trailers after part of its body went on: the
# server is reset, never given an end of file that a lenient server could
# take for the end of the trailers.
check_eq "a request refused in its trailers: 400" "HTTP/1.1 400 Bad Request" \
    "$(py -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("POST http://127.0.0.1:%s/ HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
           "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
           "proxy-authoriz" % (sys.argv[2], sys.argv[2])).encode())
time.sleep(0.3)
s.sendall(b"ation: secret\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode())' "$PA" "$OS")"
check "a request refused in its trailers: the server got a reset after its \
part" wait_line "$TMP/os.log" '"how": "reset", "got": "POST .*proxy-authoriz"'
# A head that announced a body, whose client then leaves before a byte of
# it: the server is reset too.
py -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("POST http://127.0.0.1:%s/nobody HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
           "Content-Length: 10\r\n\r\n" % (sys.argv[2], sys.argv[2])).encode())
time.sleep(0.3)
s.close()' "$PA" "$OS"
check "a head that announced a body, its client gone: the server got the \
head, then a reset" wait_line "$TMP/os.log" '"how": "reset", "got": "POST /nobody [^"]*\\r\\n\\r\\n"}'

for c in "git's request for a path with /http/|[b'0036git-upload-pack /pub/http/curl.git\\0host=h\\0']" \
    "a binary protocol naming x-HTTP/1.1|[b'\\0\\0\\0\\x08x-HTTP/1.1 in binary\\n']" \
    "XMPP's stream header, no line end|[b\"<?xml version='1.0'?><stream:stream to='a.test'>\"]" \
    "an SMTP command in two segments|[b'EHLO a', b'.test\\r\\n']"; do
	check_eq "blind tunnel, ${c%%|*}: relayed" \
	    "HTTP/1.1 200 Connection established|echoed" \
	    "$(py "$TMP/blindline.py" "$PA" "pass.test:$OE" "${c#*|}" 2>&1)"
done

# A WebSocket Upgrade through a CONNECT tunnel to a pinned host, and a
# frame (a text frame of 23 bytes, unmasked: the origin only echoes).
UPGRADE='GET /upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n'
UNTIL=ping-through-the-tunnel tplain tp-up api.test:80 \
    "${UPGRADE}Upgrade: websocket\r\n\r\n\x81\x17%s" api.test \
    ping-through-the-tunnel
check "WebSocket Upgrade in a CONNECT tunnel to a pinned host: 101" \
    got tp-up "HTTP/1.1 101 "
check_out "WebSocket Upgrade in a CONNECT tunnel to a pinned host: bytes \
echoed" tp-up plain until
# Any other offer does not go on, in a tunnel to a pinned server too:
# after a 101 the requests that follow, for any host, would reach this
# server unchecked (each request in the tunnel must name its host).
UNTIL="HTTP/1.1 426 " tplain tp-upecho api.test:80 \
    "${UPGRADE}Upgrade: echo\r\n\r\n" api.test
check "Upgrade: echo in a CONNECT tunnel to a pinned host: not passed on \
(the origin's 426)" got tp-upecho "HTTP/1.1 426 "
# After the 101, a request at the start of the new protocol's stream
# (pipelined behind the Upgrade request, for another host here) is
# refused, not relayed to this server.
blocked=$(log_count "$TMP/a.log" "$(kv event blocked)")
tplain tp-upnext api.test:80 \
    "${UPGRADE}Upgrade: websocket\r\n\r\nGET /next HTTP/1.1\r\nHost: %s\r\nCookie: other=SECRET\r\n\r\n" \
    api.test other.test
check "a request behind a WebSocket Upgrade in a tunnel: the 101" \
    got tp-upnext "HTTP/1.1 101 "
check_eq "a request behind a WebSocket Upgrade in a tunnel: not relayed (no \
echo)" 0 "$(grep -c SECRET "$TMP/tp-upnext.out")"
check "a request behind a WebSocket Upgrade in a tunnel: event=blocked" \
    wait_count "$TMP/a.log" $((blocked + 1)) "$(kv event blocked)"

# Many intercepted connections at once, from one curl that opens one
# connection for each (a transfer starts at once instead of waiting for a
# connection to reuse); descriptors return afterwards.
base=$(fd_baseline "$PP_A")
# many_clients: how many client ports the intercepted 200s logged from
# here on came from.
lines0=$(wc -l <"$TMP/a.log")
many_clients()
{
	tail -n +$(( lines0 + 1 )) "$TMP/a.log" >"$TMP/many.log"
	log_lines "$TMP/many.log" "$(kv event access)" "$(kv mode intercept)" \
	    "$(kv status 200)" | grep -oE ' client=[^ ]+' | sort -u | wc -l
}
many=()
for (( i = 1; i <= CONCURRENT; i++ )); do
	many+=(-o "$TMP/many.$i" https://api.test/hello)
done
curl -sS --noproxy '' -x "http://127.0.0.1:$PA" --max-time 30 --http1.1 \
    --parallel --parallel-immediate --parallel-max "$CONCURRENT" \
    --cacert "$TMP/ca.pem" "${many[@]}" 2>"$TMP/many.err"
good=$(cat "$TMP"/many.* 2>/dev/null | grep -cxF "$HELLO")
check_eq "$CONCURRENT concurrent intercepted connections complete" \
    "$CONCURRENT" "$good"
[ "$good" = "$CONCURRENT" ] || diag "$(sort "$TMP/many.err" | uniq -c)"
for (( i = 0; i < WAIT_TICKS; i++ )); do
	[ "$(many_clients)" -ge "$CONCURRENT" ] && break
	t_sleep 0.05
done
check_eq "$CONCURRENT concurrent intercepted connections: as many clients" \
    "$CONCURRENT" "$(many_clients)"
check_fds "$CONCURRENT concurrent connections" "$PP_A" "$base" 3

# Upstream TLS sessions are resumed, but only after a full handshake that
# passed the pins, and never across a reload; a mismatch never resumes.
for i in 1 2 3; do
	pcurl "$PA" --http1.1 --cacert "$TMP/ca.pem" -o /dev/null \
	    https://resume.test/hello 2>/dev/null
done
origin_settle "$TMP/or.log"
check_eq "resumption: the first upstream handshake is full" 1 \
    "$(origin_count "$TMP/or.log" tls '"resumed": false')"
check_eq "resumption: the next two resume the checked session" 2 \
    "$(origin_count "$TMP/or.log" tls '"resumed": true')"
check "resumption: a reload is accepted" reload "$PP_A" "$TMP/a.log"
pcurl "$PA" --http1.1 --cacert "$TMP/ca.pem" -o /dev/null \
    https://resume.test/hello 2>/dev/null
origin_settle "$TMP/or.log"
check_eq "resumption: after a reload the handshake is full again" 2 \
    "$(origin_count "$TMP/or.log" tls '"resumed": false')"
# The full handshake brought two tickets, both kept: two connections
# opened together both resume.
pcurl "$PA" --http1.1 --cacert "$TMP/ca.pem" -o /dev/null \
    https://resume.test/hello 2>/dev/null &
R1=$!
pcurl "$PA" --http1.1 --cacert "$TMP/ca.pem" -o /dev/null \
    https://resume.test/hello 2>/dev/null &
R2=$!
wait "$R1" "$R2"
origin_settle "$TMP/or.log"
check_eq "resumption: two connections at once both resume" "2 4" \
    "$(origin_count "$TMP/or.log" tls '"resumed": false') \
$(origin_count "$TMP/or.log" tls '"resumed": true')"
for i in 1 2; do
	pcurl "$PA" --http1.1 --cacert "$TMP/ca.pem" -o /dev/null \
	    https://wrong.test/hello 2>/dev/null
done
origin_settle "$TMP/ow.log"
check_eq "resumption: a pin mismatch is never resumed" 0 \
    "$(origin_count "$TMP/ow.log" tls '"resumed": true')"

# The client's leg: a session of one intercepted host resumes on the same
# host, never on another, whose connection gets its own certificate.
out=$(py - "$PA" "$TMP/ca.pem" <<'EOF'
import ssl, sys
from connect_client import open_tunnel
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False

def one(host, session):
    s, _ = open_tunnel(port, host + ":443")
    t = ctx.wrap_socket(s, server_hostname=host, session=session)
    t.sendall(b"GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close"
              b"\r\n\r\n" % host.encode())
    while t.recv(65536):
        pass
    names = [v for _, v in t.getpeercert().get("subjectAltName", ())]
    return t.session_reused, t.session, ",".join(names)

_, session, _ = one("api.test", None)
same, session, _ = one("api.test", session)
other, _, names = one("resume.test", session)
print("same host resumed=%s, other host resumed=%s names=%s"
      % (same, other, names))
EOF
)
check_eq "client sessions: resumed on their host only, by its certificate" \
    "same host resumed=True, other host resumed=False names=resume.test" \
    "$out"

stop_pinproxy "$PP_A" "$TMP/a.log" "pinproxy a"
stop_pinproxy "$PP_B" "$TMP/b.log" "pinproxy b"

done_testing
