#!/bin/bash
# Deny pins and expiry warnings, end to end: deny_pin refuses a verified
# chain that holds the key for a pinned host (plaintext and CONNECT) and
# for an unpinned one under unpinned = verify, and nothing reaches the
# origin; deny_file does the same and a reload that adds a pin to it takes
# effect, also on a CONNECT answered before it whose ClientHello comes
# after it (closed, nothing resumed, nothing relayed), and on connections
# that relay by then (an intercepted tunnel, a plaintext download, a
# forwarder: reset; one whose chain lacks the key goes on) and on an
# upstream handshake under way (refused); a deny_file
# that is a symbolic link or a FIFO is refused; a pin
# set expiring in 10 days is reported by pinproxy -t, logged as
# event=pinset_expiring and exported in /metrics. Everything runs on
# 127.0.0.1 and in the scratch directory.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

clear_of_midnight 90

make_pki multi "$(dns_sans api.test free.test late.test)" inter \
    other "$(dns_sans other.test)" inter
pki_pin PIN_MULTI multi
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa
pki_pin PIN_FOREIGN foreign-root

OA=$(free_port)
start_origin O_A "$OA" "$TMP/oa.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"
OB=$(free_port)
start_origin O_B "$OB" "$TMP/ob.log" --cert "$PKI/other-chain.pem" \
    --key "$PKI/other.key"
start_dnsd --map free.test=127.0.0.1 --map other.test=127.0.0.1 \
    --map late.test=127.0.0.1 --slow late.test=2
EXPIRES=$(date -u -d '+10 days' +%Y-%m-%d)

# connect NAME ARGS...: tests/connect_client.py, its output in NAME.out.
connect()
{
	local name=$1
	shift
	python3 "$CLIENT" --head-out "$TMP/$name.head" "$@" \
	    >"$TMP/$name.out" 2>&1
}

# write_conf FILE PORT STATS [LINE...]: a configuration listening on PORT
# with /metrics on STATS, unpinned = verify, a pin set for api.test
# (origin A, expiring in 10 days) and LINE... added to [proxy].
write_conf()
{
	local file=$1 port=$2 stats=$3 name
	name=$(basename "$file" .conf)
	shift 3
	{
		cat <<EOF
[proxy]
listen = 127.0.0.1:$port
stats_listen = 127.0.0.1:$stats
ca_cert = $TMP/ca-$name.pem
ca_key = $TMP/ca-$name.key
trust = $PKI/root.pem
unpinned = verify
connect_ports = 443, $OA, $OB
shutdown_timeout = 2s
EOF
		printf '%s\n' "$@"
		cat <<EOF

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
expires = $EXPIRES
connect_to = 127.0.0.1:$OA
EOF
	} >"$file"
}

# refused_plain NAME PROXY LOG DEPTH PIN: cases for a plaintext request for
# api.test that a deny pin refuses.
refused_plain()
{
	local code
	code=$(fetch "$1" "$2" http://api.test/hello)
	check_status "$1: plaintext to a pinned host: 502" 502 "$code" "$1"
	check_eq "$1: plaintext to a pinned host: details=pin-denied" \
	    'pinproxy; error=tls_certificate_error; details="pin-denied"' \
	    "$(header "$TMP/$1.head" Proxy-Status)"
	check_log "$1: plaintext to a pinned host: event=pin_denied" "$3" \
	    "$(kv event pin_denied)" "$(kv host api.test)" \
	    "$(kv pin "$5")" "$(kv depth "$4")" "$(kv pinset set-api)" \
	    '(^| )level=warn( |$)'
}

# 1. deny_pin: the intermediate's key is refused everywhere.

PA=$(free_port)
SA=$(free_port)
write_conf "$TMP/a.conf" "$PA" "$SA" "deny_pin = $PIN_INTER"
start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log" ||
    bail_out "pinproxy does not start with $TMP/a.conf"

refused_plain deny-plain "$PA" "$TMP/a.log" 1 "$PIN_INTER"

connect deny-connect --proxy "$PA" --connect api.test:443 \
    --sni api.test --cafile "$TMP/ca-a.pem" --get /hello
check_eq "CONNECT to a pinned host: the handshake ends with an alert" \
    alert "$(out deny-connect tls)"
check "CONNECT to a pinned host: the alert is access_denied" \
    grep -q '^reason=.*ACCESS_DENIED' "$TMP/deny-connect.out"

connect deny-free --proxy "$PA" --connect "free.test:$OA" \
    --sni free.test --cafile "$TMP/ca-a.pem" --get /hello
check_eq "CONNECT to an unpinned host (verify): an alert" \
    alert "$(out deny-free tls)"
check "CONNECT to an unpinned host (verify): the alert is access_denied" \
    grep -q '^reason=.*ACCESS_DENIED' "$TMP/deny-free.out"
check_log "CONNECT to an unpinned host (verify): event=pin_denied" \
    "$TMP/a.log" "$(kv event pin_denied)" "$(kv host free.test)" \
    "$(kv port "$OA")" "$(kv pin "$PIN_INTER")" "$(kv depth 1)" \
    '(^| )client=127\.0\.0\.1:[0-9]+( |$)'
check_eq "no pin_mismatch is logged for a denied chain" 0 \
    "$(log_count "$TMP/a.log" "$(kv event pin_mismatch)")"

origin_settle "$TMP/oa.log"
check_eq "a denied chain: the origin received no request" 0 \
    "$(origin_count "$TMP/oa.log" request)"
check_eq "a denied chain: the origin received no application byte" 0 \
    "$(origin_count "$TMP/oa.log" bytes)"

curl -sS "http://127.0.0.1:$SA/metrics" >"$TMP/a.metrics" 2>&1
check_grep "/metrics counts the refusals in pinproxy_pin_denied_total" \
    '^pinproxy_pin_denied_total 3$' "$TMP/a.metrics"

# 2. Expiry: -t, the log and /metrics.

run t_a "$PINPROXY" -t -c "$TMP/a.conf"
check_rc "pinproxy -t with a set expiring in 10 days exits 0" 0 t_a
warn="warning: \\[pins:set-api\\] expires in 10 days \\($EXPIRES\\)"
check_grep "pinproxy -t warns about the set expiring in 10 days" \
    "^$(q "$TMP/a.conf"):[0-9]+: $warn" "$TMP/t_a.err"
check_log "the daemon logs event=pinset_expiring days=10 at start" \
    "$TMP/a.log" "$(kv event pinset_expiring)" "$(kv pinset set-api)" \
    "$(kv days 10)" "$(kv expires "$EXPIRES")" '(^| )level=warn( |$)'
secs=$(sed -n 's/^pinproxy_pinset_expiry_seconds{pinset="set-api"} //p' \
    "$TMP/a.metrics")
check "/metrics: set-api expires in 10 to 11 days ($secs s)" \
    test "${secs:-0}" -gt $((10 * 86400)) -a "${secs:-0}" -le $((11 * 86400))

stop_pinproxy "$PP_A" "$TMP/a.log"

# 3. deny_file: read at start and again on every reload.

printf '# keys refused everywhere\n%s  # an unrelated root\n\n' \
    "$PIN_FOREIGN" >"$TMP/deny.pins"
PB=$(free_port)
SB=$(free_port)
write_conf "$TMP/b.conf" "$PB" "$SB" "deny_file = $TMP/deny.pins"
start_pinproxy PP_B "$PB" "$TMP/b.conf" "$TMP/b.log" ||
    bail_out "pinproxy does not start with $TMP/b.conf"

code=$(fetch file-pass "$PB" http://api.test/hello)
check_status "deny_file without the chain's keys: 200" 200 "$code" file-pass
connect file-warm --proxy "$PB" --connect api.test:443 \
    --sni api.test --cafile "$TMP/ca-b.pem" --get /hello
check_eq "deny_file without the chain's keys: CONNECT relays" ok \
    "$(out file-warm tls)"
# A CONNECT answered before the reload sends its ClientHello after it;
# another one holds its last handshake message (its upstream passed). The
# origin settles first: their upstreams stay open without a request.
origin_settle "$TMP/oa.log"
requests=$(origin_count "$TMP/oa.log" request)
spawn HELD python3 "$CLIENT" --hold-finished "$TMP/file-held.go" \
    --proxy "$PB" --connect "other.test:$OB" --sni other.test --timeout 30 \
    --cafile "$TMP/ca-b.pem" --get /hello >"$TMP/file-held.out" 2>&1
check "a client holds its Finished before the reload" \
    wait_line "$TMP/file-held.go.held" '^held$'
spawn LATE python3 "$CLIENT" --head-out "$TMP/file-late.head" \
    --wait-for "$TMP/file-late.go" --proxy "$PB" --connect api.test:443 \
    --sni api.test --cafile "$TMP/ca-b.pem" --get /hello --timeout 30 \
    >"$TMP/file-late.out" 2>&1
check "a CONNECT is answered before the reload" \
    wait_line "$TMP/file-late.head" '^HTTP/1\.1 200'
n=$(log_count "$TMP/b.log" "$(kv event pinset_expiring)")
printf '%s\n' "$PIN_MULTI" >>"$TMP/deny.pins"
check "a reload reads the deny file again" reload "$PP_B" "$TMP/b.log"
touch "$TMP/file-late.go" "$TMP/file-held.go"
wait "$LATE" 2>/dev/null
wait "$HELD" 2>/dev/null
check_eq "a client that held its Finished across the reload: no answer" \
    "ok|" "$(out file-held tls)|$(out file-held body)"
check_log "a client that held its Finished across the reload: blocked" \
    "$TMP/b.log" "$(kv event blocked)" "$(kv host other.test)" \
    "reason=\"TLS handshake finished after a reload"
check_eq "a CONNECT from before the reload, hello after it: an alert" \
    alert "$(out file-late tls)"
check_log "a CONNECT from before the reload, hello after it: blocked" \
    "$TMP/b.log" "$(kv event blocked)" "$(kv host api.test)" \
    "reason=\"tunnel set up before a reload"
check_log "a CONNECT from before the reload: its access line says 503" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv status 503)"
check_log "a Finished held across the reload: its access line says 503" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv status 503)"
origin_settle "$TMP/oa.log"
check_eq "CONNECTs from before the reload: the origin got no request" \
    "$requests" "$(origin_count "$TMP/oa.log" request)"
refused_plain file-deny "$PB" "$TMP/b.log" 0 "$PIN_MULTI"
connect file-deny-connect --proxy "$PB" --connect api.test:443 \
    --sni api.test --cafile "$TMP/ca-b.pem" --get /hello
check_eq "after the reload: a new CONNECT to api.test is denied" alert \
    "$(out file-deny-connect tls)"
check "a reload logs event=pinset_expiring again" \
    test "$(log_count "$TMP/b.log" "$(kv event pinset_expiring)")" -gt "$n"

# A deny file with a bad line fails the reload; the old list stays.
printf 'sha256/short\n' >>"$TMP/deny.pins"
reload "$PP_B" "$TMP/b.log"
check_eq "a bad line in the deny file fails the reload" 1 "$?"
check_log "reload_failed names the deny file and line" "$TMP/b.log" \
    "$(kv event reload_failed)" "$(q "$TMP/deny.pins"):5: bad pin"
code=$(fetch file-still "$PB" http://api.test/hello)
check_status "after a failed reload the old deny list stays: 502" 502 \
    "$code" file-still

stop_pinproxy "$PP_B" "$TMP/b.log"

# 4. A reload's deny pins reach connections that relay by then: those
# whose verified chain holds a newly denied key are reset, with a line
# saying why; the others go on. And a request whose upstream was still
# being looked up at the reload (its name resolves slowly) is routed
# again, under the new deny pins, and refused.

printf '%s\n' "$PIN_FOREIGN" >"$TMP/open.pins"
PC=$(free_port)
FC=$(free_port)
write_conf "$TMP/c.conf" "$PC" "$(free_port)" "deny_file = $TMP/open.pins" \
    "" "[forward:fwd]" "listen = 127.0.0.1:$FC" "upstream = 127.0.0.1:$OA" \
    "sni = api.test" "pinset = set-api" "" "[pins:set-late]" \
    "hosts = late.test" "port = $OA" "pin = $PIN_INTER"
start_pinproxy PP_C "$PC" "$TMP/c.conf" "$TMP/c.log" ||
    bail_out "pinproxy does not start with $TMP/c.conf"
spawn KA_API python3 "$KEEPALIVE" "$PC" /hello "$TMP/open.go" \
    --tunnel api.test --cafile "$TMP/ca-c.pem" >"$TMP/ka-api.out" 2>&1
spawn KA_OTHER python3 "$KEEPALIVE" "$PC" /hello "$TMP/open.go" \
    --tunnel "other.test:$OB" --cafile "$TMP/ca-c.pem" \
    >"$TMP/ka-other.out" 2>&1
spawn KA_FWD python3 "$KEEPALIVE" "$FC" /hello "$TMP/open.go" \
    >"$TMP/ka-fwd.out" 2>&1
spawn SLOW pcurl "$PC" -N -o "$TMP/slow.body" -w '%{http_code}' \
    http://api.test/slow/50 >"$TMP/slow.code" 2>"$TMP/slow.err"
for name in api other fwd; do
	check "before the reload: a first request through $name" \
	    wait_line "$TMP/ka-$name.out" '^first 200$'
done
check "before the reload: a slow download is under way" \
    wait_line "$TMP/slow.body" '^slow$'
spawn LATE pcurl "$PC" -o /dev/null -D "$TMP/late.head" -w '%{http_code}' \
    http://late.test/hello >"$TMP/late.code" 2>"$TMP/late.err"
check "before the reload: a request waits for its name" \
    wait_line "$TMP/dns.log" '"[lL][aA][tT][eE]\.[tT][eE][sS][tT]"'
printf '%s\n' "$PIN_MULTI" >>"$TMP/open.pins"
check "a reload adds the leaf's key of api.test to the deny file" \
    reload "$PP_C" "$TMP/c.log"
touch "$TMP/open.go"
wait "$KA_API" "$KA_OTHER" "$KA_FWD" "$LATE" 2>/dev/null
wait "$SLOW"
check_eq "a request whose name resolved after the reload: 502 pin-denied" \
    '502|pinproxy; error=tls_certificate_error; details="pin-denied"' \
    "$(cat "$TMP/late.code")|$(header "$TMP/late.head" Proxy-Status)"
check_log "... routed again under the new deny pins: event=pin_denied" \
    "$TMP/c.log" "$(kv event pin_denied)" "$(kv host late.test)" \
    "$(kv pin "$PIN_MULTI")" "$(kv depth 0)" "$(kv pinset set-late)\$"
check_eq "an intercepted tunnel with the denied key: reset" \
    "second failed" "$(sed -n 's/^\(second [a-z]*\) .*/\1/p' \
    "$TMP/ka-api.out")"
check_eq "a forwarder's connection with the denied key: reset" \
    "second failed" "$(sed -n 's/^\(second [a-z]*\) .*/\1/p' \
    "$TMP/ka-fwd.out")"
check_eq "a tunnel whose chain lacks the key goes on" \
    "second 200 reused -" "$(grep '^second' "$TMP/ka-other.out")"
body=$(cat "$TMP/slow.body")
check "the download with the denied key is cut short (${#body} of 250 bytes)" \
    test "${#body}" -lt 249
check_eq "three pin_denied lines name the reload" 3 "$(log_count \
    "$TMP/c.log" "$(kv event pin_denied)" "$(kv host api.test)" \
    "$(kv pin "$PIN_MULTI")" "$(kv depth 0)" \
    'reason="a reload denied a key of the connection.s verified chain')"
check_log "the cut download's access line says the 200 it got" \
    "$TMP/c.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host api.test)" "$(kv status 200)"
check_log "the intercepted tunnel's access line is written" "$TMP/c.log" \
    "$(kv event access)" "$(kv mode intercept)" "$(kv host api.test)" \
    "$(kv status 200)"
check_log "the forwarder's access line is written" "$TMP/c.log" \
    "$(kv event access)" "$(kv mode forward)"
curl -sS "http://127.0.0.1:$(sed -n 's/^stats_listen = 127.0.0.1://p' \
    "$TMP/c.conf")/metrics" >"$TMP/c.metrics" 2>&1
check_grep "/metrics counts the four in pinproxy_pin_denied_total" \
    '^pinproxy_pin_denied_total 4$' "$TMP/c.metrics"
stop_pinproxy "$PP_C" "$TMP/c.log"

# 5. The deny file is a regular file: never a symbolic link, never a FIFO.

printf '%s\n' "$PIN_FOREIGN" >"$TMP/real.pins"
ln -s "$TMP/real.pins" "$TMP/link.pins"
mkfifo "$TMP/fifo.pins"
for kind in link fifo; do
	write_conf "$TMP/$kind.conf" "$(free_port)" "$(free_port)" \
	    "deny_file = $TMP/$kind.pins"
	run "t_$kind" timeout 10 "$PINPROXY" -t -c "$TMP/$kind.conf"
	check_rc "pinproxy -t refuses a deny_file that is a $kind" 1 "t_$kind"
	check_grep "pinproxy -t says why the $kind is refused" \
	    "deny_file: .*(symbolic link|not a regular file): refused" \
	    "$TMP/t_$kind.err"
done

# 6. A deny file of garbage or of a huge size is refused without being
# held: over 4 MiB unread, and at most 100 bad lines read (and told).
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' '\n' >"$TMP/huge.pins"
yes 'sha256/not-a-pin' | head -n 5000 >"$TMP/junk.pins"
for kind in huge junk; do
	write_conf "$TMP/$kind.conf" "$(free_port)" "$(free_port)" \
	    "deny_file = $TMP/$kind.pins"
	run "t_$kind" timeout 10 "$PINPROXY" -t -c "$TMP/$kind.conf"
	check_rc "pinproxy -t refuses a deny_file of $kind" 1 "t_$kind"
done
check_grep "a deny_file over 4 MiB: refused unread, its size told" \
    "is 5242880 bytes, more than the 4194304 a deny_file may have" \
    "$TMP/t_huge.err"
check_eq "a deny_file of 5000 bad lines: 100 of them told" 100 \
    "$(grep -c 'junk\.pins:[0-9]*: bad pin' "$TMP/t_junk.err")"
check_grep "a deny_file of 5000 bad lines: no line past the 100th read" \
    '100 bad lines in' "$TMP/t_junk.err"

# 7. Lines end with LF or CR LF: a file whose lines end with CR alone
# would be one line, whose first comment would hide every pin after it.
printf '# revoked keys\r%s\r%s\r\n' "$PIN_FOREIGN" "$PIN_FOREIGN" \
    >"$TMP/cr.pins"
write_conf "$TMP/cr.conf" "$(free_port)" "$(free_port)" \
    "deny_file = $TMP/cr.pins"
run t_cr timeout 10 "$PINPROXY" -t -c "$TMP/cr.conf"
check_rc "pinproxy -t refuses a deny_file with CR line ends" 1 t_cr
check_grep "pinproxy -t says where the carriage return is" \
    "cr\.pins:1: line holds a carriage return before its end" \
    "$TMP/t_cr.err"

# 8. A reload while upstream handshakes are under way: each is judged
# under the configuration in force when it ends, not the one it began
# under. Three handshakes wait on a server that starts its TLS 3 s after
# the TCP connection (a plaintext request, an intercepted CONNECT, a
# forwarder's connection); a reload then replaces the pin set's pin with
# one of no key of its chain. The plaintext request is routed again,
# and its new handshake meets the new pin: 502 pin-mismatch. The CONNECT
# and the forwarder's client are closed. The server never sees a request.
# A fourth, to other.test (pinned alike, its own slow server), meets a
# deny pin the reload adds for its leaf, at the end of its handshake.
OD=$(free_port)
start_origin O_D "$OD" "$TMP/od.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key" --delay 3
OE=$(free_port)
start_origin O_E "$OE" "$TMP/oe.log" --cert "$PKI/other-chain.pem" \
    --key "$PKI/other.key" --delay 3
pki_pin PIN_OTHER other
PD=$(free_port)
FD=$(free_port)
# dconf PIN [LINE]: instance D's configuration, pinning api.test to PIN,
# with LINE in [proxy].
dconf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$PD
ca_cert = $TMP/ca-d.pem
ca_key = $TMP/ca-d.key
trust = $PKI/root.pem
unpinned = block
connect_timeout = 10s
shutdown_timeout = 2s
${2:-}

[forward:fwd]
listen = 127.0.0.1:$FD
upstream = 127.0.0.1:$OD
sni = api.test
pinset = set-d

[pins:set-d]
hosts = api.test
pin = $1
connect_to = 127.0.0.1:$OD

[pins:set-e]
hosts = other.test
pin = $PIN_INTER
connect_to = 127.0.0.1:$OE
EOF
}
dconf "$PIN_INTER" >"$TMP/d.conf"
start_pinproxy PP_D "$PD" "$TMP/d.conf" "$TMP/d.log" ||
    bail_out "pinproxy does not start with $TMP/d.conf"
spawn D_PLAIN pcurl "$PD" -o "$TMP/d-plain.body" -D "$TMP/d-plain.head" \
    -w '%{http_code}' http://api.test/hello >"$TMP/d-plain.code" \
    2>"$TMP/d-plain.err"
spawn D_CONNECT connect d-connect --proxy "$PD" --connect api.test:443 \
    --sni api.test --cafile "$TMP/ca-d.pem" --get /hello
spawn D_OTHER pcurl "$PD" -o /dev/null -D "$TMP/d-other.head" \
    -w '%{http_code}' http://other.test/hello >"$TMP/d-other.code" \
    2>"$TMP/d-other.err"
spawn D_FWD send_read "$FD" 'GET /hello HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    >"$TMP/d-fwd.out" 2>&1
for (( i = 0; i < 200; i++ )); do
	[ "$(origin_count "$TMP/od.log" accept)" -ge 3 ] &&
	    [ "$(origin_count "$TMP/oe.log" accept)" -ge 1 ] && break
	t_sleep 0.02
done
check_eq "four handshakes wait on the slow servers" 4 \
    "$(( $(origin_count "$TMP/od.log" accept) +
    $(origin_count "$TMP/oe.log" accept) ))"
dconf "$PIN_FOREIGN" "deny_pin = $PIN_OTHER" >"$TMP/d.conf"
check "a reload replaces the pin while they wait" reload "$PP_D" "$TMP/d.log"
wait "$D_PLAIN" "$D_CONNECT" "$D_FWD" "$D_OTHER" 2>/dev/null
check_eq "the plaintext request: routed again, the new pin refuses it" \
    '502|pinproxy; error=tls_certificate_error; details="pin-mismatch"' \
    "$(cat "$TMP/d-plain.code")|$(header "$TMP/d-plain.head" Proxy-Status)"
check_eq "the CONNECT: its handshake ends with an alert" alert \
    "$(out d-connect tls)"
check_log "the CONNECT: blocked, verified under the old configuration" \
    "$TMP/d.log" "$(kv event blocked)" "$(kv host api.test)" \
    'after a reload, under the old configuration'
check "the forwarder's client: closed, nothing relayed ($(tail -n 1 \
    "$TMP/d-fwd.out"))" grep -q '^0 ' "$TMP/d-fwd.out"
check_log "the forwarder: blocked, dialled across the reload" \
    "$TMP/d.log" "$(kv event blocked)" "$(kv host 127.0.0.1)" \
    'across a reload'
check_eq "other.test: the reload's deny pin refuses it at its verdict" \
    '502|pinproxy; error=tls_certificate_error; details="pin-denied"' \
    "$(cat "$TMP/d-other.code")|$(header "$TMP/d-other.head" Proxy-Status)"
check_log "... event=pin_denied, denied by a reload during the handshake" \
    "$TMP/d.log" "$(kv event pin_denied)" "$(kv host other.test)" \
    "$(kv pin "$PIN_OTHER")" 'reason="denied by a reload during the handshake"'
origin_settle "$TMP/od.log"
origin_settle "$TMP/oe.log"
check_eq "the servers saw no request" 0 \
    "$(( $(origin_count "$TMP/od.log" request) +
    $(origin_count "$TMP/oe.log" request) ))"
stop_pinproxy "$PP_D" "$TMP/d.log"

# 9. A request routed again after a reload that came while its server's
# name was looked up, that finds under the new configuration a kept
# upstream connection (late.test is reached by connect_to now, and a
# request made after the reload left one in the pool): the client has
# the answer then, not at header_timeout (its writing, off during the
# dial, is on again; a keep-alive exchange, whose answer no close
# flushes).
PE=$(free_port)
# econf [CONNECT_TO]: instance E's configuration, late.test pinned, its
# server found by its name or at CONNECT_TO.
econf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$PE
ca_cert = $TMP/ca-e.pem
ca_key = $TMP/ca-e.key
trust = $PKI/root.pem
header_timeout = 10s
shutdown_timeout = 2s

[pins:set-late]
hosts = late.test
pin = $PIN_INTER
port = $OA
${1:+connect_to = $1}
EOF
}
econf >"$TMP/e.conf"
start_pinproxy PP_E "$PE" "$TMP/e.conf" "$TMP/e.log" ||
    bail_out "pinproxy does not start with $TMP/e.conf"
LATE_RE='"[lL][aA][tT][eE]\.[tT][eE][sS][tT]"'
asked=$(log_count "$TMP/dns.log" "$LATE_RE")
start=$(now_ms)
spawn E_LATE send_read "$PE" \
    'GET http://late.test/hello HTTP/1.1\r\nHost: late.test\r\n\r\n' "$HELLO" \
    >"$TMP/e-late.out" 2>&1
check "a request waits for its name" wait_count "$TMP/dns.log" \
    $((asked + 1)) "$LATE_RE"
econf "127.0.0.1:$OA" >"$TMP/e.conf"
check "a reload has late.test reached by connect_to" \
    reload "$PP_E" "$TMP/e.log"
send_read "$PE" \
    'GET http://late.test/hello HTTP/1.1\r\nHost: late.test\r\nConnection: close\r\n\r\n' \
    >"$TMP/e-next.out" 2>&1
check_eq "a request after the reload: 200, its upstream kept" \
    "HTTP/1.1 200 OK" "$(sed -n '2s/^[0-9]* [A-Za-z]* //p' "$TMP/e-next.out")"
wait "$E_LATE" 2>/dev/null
ms=$(( $(now_ms) - start ))
check_eq "the request from before the reload, routed again: 200" \
    "HTTP/1.1 200 OK" "$(sed -n '2s/^[0-9]* [A-Za-z]* //p' "$TMP/e-late.out")"
check "... once its name resolved, not at header_timeout ($ms ms)" \
    test "$ms" -lt 6000
stop_pinproxy "$PP_E" "$TMP/e.log"

# 10. Reloads that come faster than a server is reached: each routes the
# request again, with a new dial, at most 3 times; the next one ends it
# with 504 (its server takes 1 s for a handshake, a reload comes every
# 0.6 s).
OF=$(free_port)
start_origin O_F "$OF" "$TMP/of.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key" --delay 1
PG=$(free_port)
cat >"$TMP/g.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PG
ca_cert = $TMP/ca-g.pem
ca_key = $TMP/ca-g.key
trust = $PKI/root.pem
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
connect_to = 127.0.0.1:$OF
EOF
start_pinproxy PP_G "$PG" "$TMP/g.conf" "$TMP/g.log" ||
    bail_out "pinproxy does not start with $TMP/g.conf"
spawn G_REQ pcurl "$PG" -o /dev/null -D "$TMP/g-req.head" \
    -w '%{http_code}' http://api.test/hello >"$TMP/g-req.code" \
    2>"$TMP/g-req.err"
for (( i = 0; i < 15; i++ )); do
	t_sleep 0.6
	kill -0 "$G_REQ" 2>/dev/null || break
	reload "$PP_G" "$TMP/g.log"
done
wait "$G_REQ" 2>/dev/null
check_eq "reloads faster than the server: 504 after routing again 3 times" \
    '504|pinproxy; error=connection_timeout; details="timeout"' \
    "$(cat "$TMP/g-req.code")|$(header "$TMP/g-req.head" Proxy-Status)"
check_log "... with an upstream_error line saying so" "$TMP/g.log" \
    "$(kv event upstream_error)" "$(kv error timeout)" \
    'routed again 3 times'
stop_pinproxy "$PP_G" "$TMP/g.log"

done_testing
