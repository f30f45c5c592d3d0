#!/bin/bash
# The interception CA across reloads, end to end: a reload to another CA
# leaves intercepted connections opened before it on the CA they started
# with (one keep-alive inside its TLS; one whose upstream handshake was in
# progress during the reload is refused instead, its verdict reached
# under the old configuration), while new connections, the CA page and
# client TLS resumption follow the new CA; a reload that keeps the CA
# keeps resumption; CA files replaced in place are read again. Everything
# runs on 127.0.0.1 with TLS test origins.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

make_pki multi "DNS:api.test,DNS:slow.test" inter
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa
# The second CA, and a file trusting both; ca_key must be the owner's only.
sh "$MKPKI" ca "$PKI" ca2 >>"$TMP/mkpki.log" 2>&1 ||
    bail_out "tests/mkpki.sh ca failed: $(cat "$TMP/mkpki.log")"
chmod 600 "$PKI/ca2.key"

OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"

# A TLS origin that accepts one connection, says "hello" once the
# ClientHello is there, and starts its handshake only once GOFILE exists:
# a reload happens while pinproxy waits for the upstream's answer.
cat >"$TMP/slow-origin.py" <<'EOF'
import os, select, socket, ssl, sys, time
port, cert, key, go = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
srv = socket.create_server(("127.0.0.1", port))
print("ready", flush=True)
conn, _ = srv.accept()
select.select([conn], [], [], 20)
print("hello", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls = ctx.wrap_socket(conn, server_side=True)
req = b""
while b"\r\n\r\n" not in req:
    data = tls.recv(4096)
    if not data:
        break
    req += data
body = b"slow origin\n"
tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close"
            b"\r\n\r\n%s" % (len(body), body))
tls.close()
print("done", flush=True)
EOF
OS=$(free_port)
spawn O_S python3 "$TMP/slow-origin.py" "$OS" "$PKI/multi-chain.pem" \
    "$PKI/multi.key" "$TMP/slow.go" >"$TMP/slow-origin.out" \
    2>"$TMP/slow-origin.err"
wait_ready "$TMP/slow-origin.out"

# Client TLS resumption through the proxy, trusting CAFILE: connection 1
# in full, each next one offering the session of the one before, the
# third once GOFILE.1 exists, the fourth once GOFILE.2 exists. Prints
# "N full|resumed" per connection.
cat >"$TMP/resume.py" <<'EOF'
import os, socket, ssl, sys, time
port, cafile, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)

def one(session):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        data = s.recv(1)
        if not data:
            raise OSError("no answer to CONNECT")
        head += data
    t = ctx.wrap_socket(s, server_hostname="api.test", session=session)
    t.sendall(b"GET /hello HTTP/1.1\r\nHost: api.test\r\n"
              b"Connection: close\r\n\r\n")
    while t.recv(65536):
        pass
    reused, session = t.session_reused, t.session
    t.close()
    return reused, session

session = None
for n, wait in ((1, None), (2, None), (3, go + ".1"), (4, go + ".2")):
    while wait is not None and not os.path.exists(wait):
        time.sleep(0.05)
    reused, session = one(session)
    print(n, "resumed" if reused else "full", flush=True)
EOF

# hconf CA: the configuration with the CA files $TMP/CA.pem and .key.
PH=$(free_port)
SP=$(free_port)
hconf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$PH
stats_listen = 127.0.0.1:$SP
ca_cert = $TMP/$1.pem
ca_key = $TMP/$1.key
trust = $PKI/root.pem
unpinned = block
shutdown_timeout = 1s

[pins:api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:slow]
hosts = slow.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OS
EOF
}

# client NAME CAFILE [HOST]: an intercepted GET /hello of HOST (api.test)
# through the proxy that verifies the leaf with CAFILE; its output in
# $TMP/NAME.out.
client()
{
	python3 "$CLIENT" --proxy "$PH" --connect "${3:-api.test}:443" \
	    --sni "${3:-api.test}" --cafile "$2" --get /hello \
	    >"$TMP/$1.out" 2>&1
}

# verdict NAME: the tls= line of "client NAME", with body= after tls=ok.
verdict()
{
	local tls
	tls=$(grep '^tls=' "$TMP/$1.out")
	if [ "$tls" = tls=ok ]; then
		echo "$tls $(grep '^body=' "$TMP/$1.out")"
	else
		echo "$tls"
	fi
}

# metric NAME: a metric's value from /metrics.
metric()
{
	curl -sS --noproxy '' --max-time 10 "http://127.0.0.1:$SP/metrics" \
	    2>/dev/null | awk -v s="$1" '$1 == s { print $2 }'
}

# What verdict prints for /hello: the body, escaped by the client.
HELLO_BODY="body=$HELLO\\n"

hconf ca1 >"$TMP/h.conf"
check "pinproxy listens on 127.0.0.1:$PH" \
    start_pinproxy PP "$PH" "$TMP/h.conf" "$TMP/h.log"
check_log "the first CA is created: event=ca_created" "$TMP/h.log" \
    "$(kv event ca_created)" "$(kv file "$TMP/ca1.pem")"
cat "$TMP/ca1.pem" "$PKI/ca2.pem" >"$TMP/both.pem"

client ca1-before "$TMP/ca1.pem"
check_eq "CA 1: an intercepted request verifies with it" \
    "tls=ok $HELLO_BODY" "$(verdict ca1-before)"

# Resumption: connections 1 and 2 before any reload.
spawn RS python3 "$TMP/resume.py" "$PH" "$TMP/both.pem" "$TMP/resume.go" \
    >"$TMP/resume.out" 2>"$TMP/resume.err"
wait_line "$TMP/resume.out" '^2 '
check_eq "client resumption: the second connection resumes the first's" \
    "1 full|2 resumed|" "$(tr '\n' '|' <"$TMP/resume.out")"

# A reload that keeps the CA keeps the client's session usable.
check "a reload with the same CA files succeeds" reload "$PP" "$TMP/h.log"
touch "$TMP/resume.go.1"
wait_line "$TMP/resume.out" '^3 '
check_eq "client resumption: kept across a reload that keeps the CA" \
    "3 resumed" "$(grep '^3 ' "$TMP/resume.out")"
check_eq "a reload with the same CA files creates no CA" 1 \
    "$(log_count "$TMP/h.log" "$(kv event ca_created)")"

# Open before the reload to CA 2: a keep-alive connection inside the TLS,
# and one whose upstream handshake is still in progress.
spawn KA python3 "$KEEPALIVE" "$PH" /hello "$TMP/ka.go" \
    --tunnel api.test --cafile "$TMP/ca1.pem" >"$TMP/ka.out" 2>"$TMP/ka.err"
wait_line "$TMP/ka.out" '^first ' ||
    diag "keep-alive client: $(cat "$TMP/ka.err")"
spawn SC python3 "$CLIENT" --proxy "$PH" --connect slow.test:443 \
    --sni slow.test --cafile "$TMP/ca1.pem" --get /hello --timeout 20 \
    >"$TMP/slow.out" 2>&1
check "the upstream handshake has begun before the reload" \
    wait_line "$TMP/slow-origin.out" '^hello'
hits=$(metric pinproxy_leafcert_cache_hits_total)
misses=$(metric pinproxy_leafcert_cache_misses_total)

hconf_text=$(hconf ca2)
cp "$PKI/ca2.pem" "$TMP/ca2.pem"
cp "$PKI/ca2.key" "$TMP/ca2.key"
check "a reload to CA 2 succeeds" reload "$PP" "$TMP/h.log" "$TMP/h.conf" \
    "$hconf_text"
touch "$TMP/ka.go" "$TMP/slow.go" "$TMP/resume.go.2"

wait "$KA" 2>/dev/null
check_eq "open across the reload: the next request inside the TLS succeeds" \
    "first 200|second 200 reused -|" "$(tr '\n' '|' <"$TMP/ka.out")"
[ -s "$TMP/ka.err" ] && diag "keep-alive client: $(cat "$TMP/ka.err")"
wait "$SC" 2>/dev/null
# Its upstream was judged under the old configuration: not relayed, the
# client connects again.
check_eq "upstream handshake across the reload: refused with an alert" \
    "tls=alert" "$(verdict slow)"
[ "$(verdict slow)" = "tls=alert" ] ||
    diag "$(cat "$TMP/slow.out" "$TMP/slow-origin.err")"
check_log "... and a blocked line: verified under the old configuration" \
    "$TMP/h.log" "$(kv event blocked)" "$(kv host slow.test)" \
    'after a reload, under the old configuration'
wait "$RS" 2>/dev/null
check_eq "client resumption: a session of CA 1 is not resumed under CA 2" \
    "4 full" "$(grep '^4 ' "$TMP/resume.out")"
[ -s "$TMP/resume.err" ] && diag "resume: $(cat "$TMP/resume.err")"

client ca2-new "$TMP/ca2.pem"
check_eq "after the reload: a new connection verifies with CA 2" \
    "tls=ok $HELLO_BODY" "$(verdict ca2-new)"
client ca1-new "$TMP/ca1.pem"
check_eq "after the reload: a new connection fails with CA 1" \
    "tls=error" "$(verdict ca1-new)"
fetch capage "$PH" http://pinproxy.internal/ca.pem >/dev/null
check "after the reload: the CA page serves CA 2" \
    cmp -s "$TMP/ca2.pem" "$TMP/capage.body"
check "leaf cache hits: counted across generations" \
    test "$(metric pinproxy_leafcert_cache_hits_total)" -ge "${hits:-0}"
check "leaf cache misses: counted across generations" \
    test "$(metric pinproxy_leafcert_cache_misses_total)" -gt \
    "${misses:-0}"

# CA files replaced in place: the same paths, CA 1 again.
cp "$TMP/ca1.pem" "$TMP/ca2.pem"
cp "$TMP/ca1.key" "$TMP/ca2.key"
check "a reload after the CA files were replaced succeeds" \
    reload "$PP" "$TMP/h.log"
client replaced "$TMP/ca1.pem"
check_eq "CA files replaced in place: new connections get the new CA" \
    "tls=ok $HELLO_BODY" "$(verdict replaced)"

# A CA that does not load fails the reload and keeps the one in use.
chmod 644 "$TMP/ca2.key"
if reload "$PP" "$TMP/h.log"; then
	not_ok "a key open to others fails the reload"
else
	ok "a key open to others fails the reload"
fi
check_log "the failed reload names the key" "$TMP/h.log" \
    "$(kv event reload_failed)" "ca_key $(q "$TMP/ca2.key")"
client kept "$TMP/ca1.pem"
check_eq "after the failed reload: the CA in use stays" \
    "tls=ok $HELLO_BODY" "$(verdict kept)"

# A reload to a CA not made yet that fails for another reason (a
# report_file in a missing directory) creates no CA: it would not be
# used, and whoever installs it on clients would be misled.
hconf ca3 | sed "/^shutdown_timeout/a report_file = $TMP/nodir/r.jsonl" \
    >"$TMP/h.conf"
if reload "$PP" "$TMP/h.log"; then
	not_ok "a reload whose report_file cannot open fails"
else
	ok "a reload whose report_file cannot open fails"
fi
check_log "the failed reload names FILE:LINE of report_file" "$TMP/h.log" \
    "$(kv event reload_failed)" \
    "$(q "$TMP/h.conf:$(grep -n '^report_file' "$TMP/h.conf" | cut -d: -f1):")"
check "the failed reload left no CA behind" \
    test ! -e "$TMP/ca3.pem" -a ! -e "$TMP/ca3.key" -a ! -e "$TMP/ca3.pem.new"
check_eq "the failed reload logged no ca_created" 1 \
    "$(log_count "$TMP/h.log" "$(kv event ca_created)")"
sed -i '/^report_file/d' "$TMP/h.conf"
check "the same reload without the report_file succeeds" \
    reload "$PP" "$TMP/h.log"
check "and it creates the CA" test -s "$TMP/ca3.pem" -a -s "$TMP/ca3.key"

# A CA that ends in 10 days is warned about when a reload loads it, and
# again on each reload that keeps it (as once a day): a daemon that runs
# on is told before its clients start refusing.
( umask 077 && openssl req -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/ca4.key" \
    -out "$TMP/ca4.pem" -days 10 -subj "/CN=pinproxy short CA" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign ) >>"$TMP/mkpki.log" 2>&1 ||
    bail_out "openssl could not make a 10-day CA: $(cat "$TMP/mkpki.log")"
expiring="$(kv event config_warning).*/ca4.pem expires in (9|10) days:"
hconf ca4 >"$TMP/h.conf"
check "a reload to a CA that ends in 10 days succeeds" \
    reload "$PP" "$TMP/h.log"
check_eq "... and warns that it expires" 1 \
    "$(log_count "$TMP/h.log" "$expiring")"
check "a reload that keeps it succeeds" reload "$PP" "$TMP/h.log"
check_eq "... and warns again" 2 "$(log_count "$TMP/h.log" "$expiring")"

stop_pinproxy "$PP" "$TMP/h.log"

done_testing
