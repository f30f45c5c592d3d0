#!/bin/bash
# Transparent interception ([proxy] transparent, upstream_mark), end to end
# in a network namespace of its own with loopback only: nftables redirects
# the TCP 80/443 connections of user nobody to pinproxy, and a curl with
# no proxy setting, running as nobody, fetches https:// and http:// URLs
# of a pinned host. Right pins give the body, wrong pins fail with
# pin_mismatch, and a connection that nothing redirected is a loop; with
# unpinned = verify, plaintext goes over TLS to the original address;
# upstream_mark without CAP_NET_ADMIN stops the start; a redirect that
# sends pinproxy's own upstream connection back is refused as a loop. SKIP
# where namespaces or nft are unavailable (not root, no nftables).

# Re-run inside a new network namespace; everything below runs there.
if [ -z "${PINPROXY_TEST_NETNS:-}" ] && [ "$(id -u)" = 0 ] &&
    command -v nft >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
    command -v setpriv >/dev/null 2>&1 &&
    unshare -n true 2>/dev/null; then
	export PINPROXY_TEST_NETNS=1
	exec unshare -n bash "$0" "$@"
fi

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

if [ -z "${PINPROXY_TEST_NETNS:-}" ]; then
	skip "transparent interception needs root, unshare -n, ip, setpriv" \
	    "and nft"
	done_testing
fi

# Loopback only: nothing of this namespace reaches another network.
ip link set lo up
if ! nft -f - <<'NFT' 2>"$TMP/nft-probe.err"
table ip probe {
	chain out {
		type nat hook output priority -100;
	}
}
NFT
then
	skip "nftables NAT is unavailable here: $(cat "$TMP/nft-probe.err")"
	done_testing
fi
nft delete table ip probe
# Loopback destinations other than 127.0.0.1 redirected in nat output.
sysctl -qw net.ipv4.conf.all.route_localnet=1

# The origin serves api.test and wrong.test on 127.0.0.2:443, an address
# and port the client reaches only when nothing redirects it (and then
# with a certificate the client does not trust).
make_pki both "DNS:api.test,DNS:wrong.test" inter
cat "$PKI/both.pem" "$PKI/inter.pem" >"$TMP/both-chain.pem"
pki_pin PIN_LEAF both
pki_pin PIN_FOREIGN foreign-leaf
start_origin O 443 "$TMP/origin.log" --host 127.0.0.2 \
    --cert "$TMP/both-chain.pem" --key "$PKI/both.key" ||
    bail_out "the origin did not start"
# And on 127.0.0.2:4443, for tproxy (no redirect rule covers that port).
start_origin O4 4443 "$TMP/origin4.log" --host 127.0.0.2 \
    --cert "$TMP/both-chain.pem" --key "$PKI/both.key" ||
    bail_out "the tproxy origin did not start"
# And on 127.0.0.2:8443, for the dual-stack listener.
start_origin O8 8443 "$TMP/origin8.log" --host 127.0.0.2 \
    --cert "$TMP/both-chain.pem" --key "$PKI/both.key" ||
    bail_out "the dual-stack case's origin did not start"
# The same on [::1]:443, for the IPv6 redirect.
start_origin O6 443 "$TMP/origin6.log" --host ::1 \
    --cert "$TMP/both-chain.pem" --key "$PKI/both.key" ||
    bail_out "the IPv6 origin did not start"
# And a plaintext server on port 80 of that address, which no request for
# the pinned host may reach.
start_origin OP 80 "$TMP/plain.log" --host 127.0.0.2 --plain ||
    bail_out "the plaintext origin did not start"
CLOSED=$(free_port)
echo "nameserver 127.0.0.1:$CLOSED" >"$TMP/resolv.conf"

PP=$(free_port)
TP=$(free_port)
TP6=$(free_port)
TPX=$(free_port)
TPD=$(free_port)
cat >"$TMP/t.conf" <<CONF
[proxy]
listen = 127.0.0.1:$PP
transparent = 127.0.0.1:$TP
transparent = [::1]:$TP6
transparent = 127.0.0.1:$TPX
transparent = [::]:$TPD
connect_ports = 80 443 4443 8443
upstream_mark = 1
trust = $PKI/root.pem
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key

[pins:api]
hosts = api.test
pin = $PIN_LEAF
connect_to = 127.0.0.2:443

[pins:wrong]
hosts = wrong.test
pin = $PIN_FOREIGN
connect_to = 127.0.0.2:443

[pins:addr]
hosts = 127.0.0.4
pin = $PIN_LEAF
CONF
start_pinproxy P "$PP" "$TMP/t.conf" "$TMP/t.log" ||
    bail_out "pinproxy did not start"
# The client, another user, reads the CA certificate.
install -m 0644 "$TMP/ca.pem" "$TMP/ca-public.pem"
chmod 0755 "$TMP"

# pinproxy's own connections carry mark 1 and are never redirected.
nft -f - <<NFT || bail_out "cannot load the nftables rules"
table ip t {
	chain out {
		type nat hook output priority -100;
		meta mark 1 return
		meta skuid nobody tcp dport { 443, 80 } redirect to :$TP
		meta skuid nobody tcp dport 8443 redirect to :$TPD
	}
}
table ip6 t6 {
	chain out {
		type nat hook output priority -100;
		meta mark 1 return
		meta skuid nobody tcp dport 443 redirect to :$TP6
	}
}
NFT

# ncurl ARGS...: curl as user nobody, without any proxy.
ncurl()
{
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    curl -sS --noproxy '*' --max-time 20 "$@"
}

# redirected NAME PORT: https://api.test:PORT/hello as nobody, the name
# resolved to 127.0.0.2; curl's errors in NAME.err.
redirected()
{
	ncurl --resolve "api.test:$2:127.0.0.2" --cacert "$TMP/ca-public.pem" \
	    "https://api.test:$2/hello" 2>"$TMP/$1.err"
}

got=$(redirected c1 443)
check_eq "https through the redirect: the body with the right pins" \
    "hello from origin" "$got"
[ -s "$TMP/c1.err" ] && diag "curl: $(cat "$TMP/c1.err")"
check_log "the access line says mode=transparent" "$TMP/t.log" \
    'event=access' 'mode=transparent' 'host=api.test' 'status=200'

got=$(ncurl --resolve api.test:80:127.0.0.2 http://api.test/hello \
    2>"$TMP/c2.err")
check_eq "http through the redirect: the body, fetched over pinned TLS" \
    "hello from origin" "$got"
[ -s "$TMP/c2.err" ] && diag "curl: $(cat "$TMP/c2.err")"
check_eq "http: no request reached the plaintext server" 0 \
    "$(origin_count "$TMP/plain.log" request)"

# The Host header names the site; it does not choose the server: plaintext
# for an unpinned host goes to the address the client connected to, not to
# one the Host names (the redirect rules may keep the client from that
# one, and pinproxy's own connections pass them).
start_origin OQ 80 "$TMP/plain3.log" --host 127.0.0.3 --plain ||
    bail_out "the second plaintext origin did not start"
got=$(ncurl -H 'Host: 127.0.0.3' http://127.0.0.2/hello 2>"$TMP/c9.err")
check_eq "http with another Host: the server connected to answers" \
    "hello from origin" "$got"
[ -s "$TMP/c9.err" ] && diag "curl: $(cat "$TMP/c9.err")"
check_eq "http with another Host: the request reached 127.0.0.2" 1 \
    "$(origin_count "$TMP/plain.log" request '"host": "127.0.0.3"')"
got=$(ncurl -H 'Host: free.test' http://127.0.0.2/hello 2>"$TMP/c10.err")
check_eq "http with a Host name: the server connected to answers" \
    "hello from origin" "$got"
check_eq "http with a Host name: the request reached 127.0.0.2" 1 \
    "$(origin_count "$TMP/plain.log" request '"host": "free.test"')"
check_eq "nothing reached the server that Host named" 0 \
    "$(origin_count "$TMP/plain3.log" request)"
# To a pinned address, a request must name that address: the client is
# told so in the terms of what it did (it sent no CONNECT).
start_origin OA 80 "$TMP/plain4.log" --host 127.0.0.4 --plain ||
    bail_out "the pinned address's plaintext origin did not start"
got=$(ncurl -H 'Host: free.test' http://127.0.0.4/hello 2>"$TMP/c11.err")
check_eq "http to a pinned address with another Host: refused, and why" \
    "A request on a redirected connection must name the host it was sent to." \
    "$(printf '%s\n' "$got" | grep -o 'A request on .*sent to\.')"
check_log "its blocked line names the redirected connection" "$TMP/t.log" \
    'event=blocked' 'host=free.test' \
    'reason="request host differs from the host of the redirected connection"'
check_eq "nothing reached the pinned address in cleartext" 0 \
    "$(origin_count "$TMP/plain4.log" request)"

got=$(ncurl --resolve wrong.test:443:127.0.0.2 \
    --cacert "$TMP/ca-public.pem" https://wrong.test/hello 2>&1)
check "https with wrong pins: the fetch fails" \
    [ "$got" != "hello from origin" ]
check_log "wrong pins: pin_mismatch" "$TMP/t.log" \
    'event=pin_mismatch' 'host=wrong.test'

# IPv6: the original destination comes from IP6T_SO_ORIGINAL_DST.
got=$(ncurl --resolve 'api.test:443:[::1]' \
    --cacert "$TMP/ca-public.pem" https://api.test/hello 2>"$TMP/c6.err")
check_eq "https to ::1 through the IPv6 redirect: the body" \
    "hello from origin" "$got"
[ -s "$TMP/c6.err" ] && diag "curl: $(cat "$TMP/c6.err")"
check_log "the IPv6 connection's access line says mode=transparent" \
    "$TMP/t.log" 'event=access' 'mode=transparent' 'host=api.test' \
    'status=200' 'client=[^ ]*::1'

# A dual-stack listener ([::]) takes redirected IPv4 connections as
# IPv4-mapped addresses: their original destination is in IPv4's table.
got=$(redirected cd 8443)
check_eq "https through an IPv4 redirect to a dual-stack listener: the body" \
    "hello from origin" "$got"
[ -s "$TMP/cd.err" ] && diag "curl: $(cat "$TMP/cd.err")"
origin_settle "$TMP/origin8.log"
check_eq "the dual-stack listener's connection went to port 8443" 1 \
    "$(origin_count "$TMP/origin8.log" request)"

# tproxy: the packets keep their destination and reach the transparent
# listener (IP_TRANSPARENT) in prerouting; the original destination is
# the accepted socket's own address.
if nft -f - <<NFT 2>"$TMP/tproxy.err"
table ip tp {
	chain pre {
		type filter hook prerouting priority mangle;
		meta mark 1 return
		ip daddr 127.0.0.2 tcp dport 4443 tproxy to 127.0.0.1:$TPX accept
	}
}
NFT
then
	before=$(log_count "$TMP/t.log" 'event=access' 'mode=transparent' \
	    'host=api.test' 'status=200')
	got=$(redirected c4 4443)
	check_eq "https through tproxy: the body, with pinproxy's leaf" \
	    "hello from origin" "$got"
	[ -s "$TMP/c4.err" ] && diag "curl: $(cat "$TMP/c4.err")"
	for i in $(seq 40); do
		[ "$(log_count "$TMP/t.log" 'event=access' 'mode=transparent' \
		    'host=api.test' 'status=200')" -gt "$before" ] && break
		t_sleep 0.05
	done
	check_eq "the tproxy connection has its access line" $((before + 1)) \
	    "$(log_count "$TMP/t.log" 'event=access' 'mode=transparent' \
	    'host=api.test' 'status=200')"
	check_eq "through tproxy the origin on port 4443 served it" 1 \
	    "$(origin_count "$TMP/origin4.log" request)"
else
	skip "nftables tproxy is unavailable here: $(cat "$TMP/tproxy.err")"
	skip "nftables tproxy is unavailable here"
	skip "nftables tproxy is unavailable here"
fi

# Not redirected: the destination is pinproxy's own listener.
got=$(curl -sS --noproxy '*' --max-time 10 \
    "http://127.0.0.1:$TP/hello" 2>&1)
check "a connection that nothing redirected gets no answer" \
    [ "$got" != "hello from origin" ]
check_log "it is refused as a loop" "$TMP/t.log" \
    'event=blocked' 'reason="?loop'

stop_pinproxy "$P" "$TMP/t.log"

# unpinned = verify: plaintext for an unpinned host goes over TLS to port
# 443 of the original destination, verified for the name the Host header
# gives; not to wherever that name resolves (here, by the test's DNS, to
# 127.0.0.3, whose server has a certificate for it too). The redirect of
# 127.0.0.2's port 80 goes to this instance now, for every user (its own
# connections carry the mark).
nft delete table ip t
start_origin OV 443 "$TMP/origin-v.log" --host 127.0.0.3 \
    --cert "$TMP/both-chain.pem" --key "$PKI/both.key" ||
    bail_out "the origin on 127.0.0.3 did not start"
start_dnsd --map api.test=127.0.0.3 --map free.test=127.0.0.3
PV=$(free_port)
TV=$(free_port)
cat >"$TMP/v.conf" <<CONF
[proxy]
listen = 127.0.0.1:$PV
transparent = 127.0.0.1:$TV
connect_ports = 80
unpinned = verify
upstream_mark = 1
trust = $PKI/root.pem
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
CONF
start_pinproxy V "$PV" "$TMP/v.conf" "$TMP/v.log" ||
    bail_out "pinproxy V did not start"
nft -f - <<NFT || bail_out "cannot load the verify case's nftables rule"
table ip tv {
	chain out {
		type nat hook output priority -100;
		meta mark 1 return
		ip daddr 127.0.0.2 tcp dport 80 redirect to :$TV
	}
}
NFT
before=$(origin_count "$TMP/origin.log" request '"host": "api.test"')
got=$(ncurl -H 'Host: api.test' http://127.0.0.2/hello 2>"$TMP/v1.err")
check_eq "verify, http with a Host name: the original address answers" \
    "hello from origin" "$got"
[ -s "$TMP/v1.err" ] && diag "curl: $(cat "$TMP/v1.err")"
check_eq "verify: the request reached 127.0.0.2:443" $((before + 1)) \
    "$(origin_count "$TMP/origin.log" request '"host": "api.test"')"
check_log "verify: its access line" "$TMP/v.log" 'event=access' \
    'mode=transparent' 'host=api.test' 'status=200'
code=$(ncurl -o /dev/null -w '%{http_code}' -H 'Host: free.test' \
    http://127.0.0.2/hello 2>"$TMP/v2.err")
check_eq "verify: a name the original address has no certificate for: 502" \
    502 "$code"
check_log "verify: refused for its certificate" "$TMP/v.log" \
    'event=verify_failed' 'host=free.test' 'reason="hostname mismatch"'
check_eq "verify: nothing reached the address the names resolve to" 0 \
    "$(origin_count "$TMP/origin-v.log" request)"
# A stop just after a redirected client connected: its first request,
# sent once the stop began, is still answered (Connection: close), an
# Upgrade offer and all (a redirected connection answered no CONNECT).
cat >"$TMP/late.py" <<'EOF'
import re, socket, sys, time
s = socket.create_connection(("127.0.0.2", 80), timeout=5)
print("ready", flush=True)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    with open(sys.argv[1], errors="replace") as f:
        if re.search(r"(^| )event=stopping( |$)", f.read(), re.M):
            break
    time.sleep(0.005)
data = b""
try:
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: api.test\r\n"
              b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print("error", e, flush=True)
head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
close = re.search(r"(?im)^connection: *close", head) is not None
print("first", head.split(" ")[1] if head.startswith("HTTP/") else "none",
      "close" if close else "keep", flush=True)
EOF
spawn LATE python3 "$TMP/late.py" "$TMP/v.log" >"$TMP/late.out" 2>&1
wait_ready "$TMP/late.out"
kill -TERM "$V"
wait "$LATE" 2>/dev/null
wait_exit "$V" 10
check_eq "a redirected request sent just after the stop began is answered" \
    "first 200 close" "$(grep '^first\|^error' "$TMP/late.out")"
check_eq "pinproxy V exits 0" 0 "$EXIT_RC"
nft delete table ip tv
stop "$OV"

# A redirect that does not exempt pinproxy's own connections (no
# upstream_mark here) sends its upstream connection back to it: refused
# as a loop at once, instead of one connection after another until
# max_connections.
PL=$(free_port)
TPL=$(free_port)
cat >"$TMP/l.conf" <<CONF
[proxy]
listen = 127.0.0.1:$PL
transparent = 127.0.0.1:$TPL
connect_ports = 5443
max_connections = 40
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
CONF
start_pinproxy L "$PL" "$TMP/l.conf" "$TMP/l.log" ||
    bail_out "pinproxy L did not start"
nft -f - <<NFT || bail_out "cannot load the loop's nftables rule"
table ip loop {
	chain out {
		type nat hook output priority -100;
		tcp dport 5443 redirect to :$TPL
	}
}
NFT
py - <<'EOF' >"$TMP/loop.out" 2>&1
import socket
s = socket.create_connection(("127.0.0.2", 5443), timeout=10)
try:
    print("closed" if s.recv(1) == b"" else "data")
except OSError as e:
    print("error", e)
EOF
check_eq "a redirect loop: the client's connection ends" closed \
    "$(cat "$TMP/loop.out")"
check_log "a redirect loop: refused as one" "$TMP/l.log" 'event=blocked' \
    "reason=\"loop: pinproxy's own upstream connection was redirected back"
check_eq "a redirect loop: no pause for max_connections" 0 \
    "$(log_count "$TMP/l.log" 'event=accept_paused')"
check_eq "a redirect loop: two connections in all, the client's and the \
looped one" 2 "$(log_count "$TMP/l.log" 'event=access')"
nft delete table ip loop
stop_pinproxy "$L" "$TMP/l.log"

# Without CAP_NET_ADMIN (nor CAP_NET_RAW, which the kernel accepts too)
# the mark cannot be set: no start, and the reason.
sed "s/^listen = .*/listen = 127.0.0.1:$(free_port)/" "$TMP/t.conf" \
    >"$TMP/nocap.conf"
spawn N setpriv --bounding-set=-net_admin,-net_raw \
    --inh-caps=-net_admin,-net_raw \
    "$PINPROXY" -c "$TMP/nocap.conf" 2>"$TMP/nocap.log"
wait_exit "$N" 10
check "upstream_mark without CAP_NET_ADMIN: pinproxy does not start" \
    [ "$EXIT_RC" != 0 -a "$EXIT_RC" != running ]
check_grep "and it says the mark needs CAP_NET_ADMIN" \
    'event=start_failed.*upstream_mark.*CAP_NET_ADMIN' "$TMP/nocap.log"
stop "$O"
stop "$O6"
stop "$O4"
stop "$O8"
stop "$OP"
done_testing
