#!/bin/bash
# A new intercepted connection answers the client's hello beside the
# upstream's handshake once the upstream's ALPN choice for that host, port,
# pin set and offer is known: all of the answer but its last record goes
# at once, so the client verifies the certificate meanwhile, and the rest
# waits until the upstream passed. A pin mismatch, a failed verification
# and an ALPN choice other than the guess each end the client's handshake
# with an alert (sealed under the handshake key in TLS 1.3, in the clear
# in TLS 1.2), and not one byte of the client's reaches the origin. Two servers of one name at different
# addresses keep a guess each. A client that leaves while the upstream's
# handshake runs ends then, held or not. Everything lives on 127.0.0.0/8.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

make_pki
PIN_INTER=$(sh "$MKPKI" pin "$PKI/inter.pem")

# connect NAME ARGS...: a CONNECT to api.test through the proxy, its
# output in $TMP/NAME.out.
connect()
{
	local name=$1
	shift
	python3 "$CLIENT" --proxy "$P" --connect "api.test:443" \
	    --sni api.test --cafile "$TMP/ca.pem" "$@" >"$TMP/$name.out" 2>&1
}
# beside: how many connections were answered beside the upstream's
# handshake so far.
beside()
{
	grep -c 'beside the upstream handshake' "$TMP/p.log"
}
# ahead, dropped: how many upstream hellos were made ahead (while the
# client's was awaited) and then sent, or dropped unsent, so far.
ahead()
{
	grep -c 'made ahead, sent' "$TMP/p.log"
}
dropped()
{
	grep -c 'made ahead was for another name or offer: dropped unsent' \
	    "$TMP/p.log"
}
# stall N [LOG BEFORE]: N clients that stop after their CONNECT to
# api.test and its 200, and then leave; with LOG, they wait first (10 s
# at most) until LOG has 64 more hellos made ahead than BEFORE, and say
# how many it has and the most that waited at once.
stall()
{
	python3 - "$P" "$@" <<'PY'
import re, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
    socks.append(s)
for s in socks:
    s.settimeout(10)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(100)
if len(sys.argv) > 3:
    log, before = sys.argv[3], int(sys.argv[4])
    def made():
        with open(log) as f:
            return [l for l in f if "made ahead (" in l][before:]
    deadline = time.time() + 10
    while len(made()) < 64 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    lines = made()
    most = max((int(re.search(r"\((\d+) waiting\)", l).group(1))
                for l in lines), default=0)
    print(len(lines), most)
for s in socks:
    s.close()
PY
}
# origin ARGS...: (re)start the origin on port O with ARGS.
O=$(free_port)
origin()
{
	[ -n "${O_PID:-}" ] && stop "$O_PID"
	start_origin O_PID "$O" "$TMP/o.log" "$@"
}

P=$(free_port)
OX=$(free_port)
RAW=$(free_port)
cat >"$TMP/p.conf" <<EOC
[proxy]
listen = 127.0.0.1:$P
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
log_level = debug
connect_ports = 443 $OX
header_timeout = 1s
report_file = $TMP/reports.jsonl

[pins:api]
hosts = api.test
pin = $PIN_INTER
pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
connect_to = 127.0.0.1:$O

[pins:raw]
hosts = raw.test
pin = $PIN_INTER
connect_to = 127.0.0.1:$RAW
EOC
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
start_pinproxy PP "$P" "$TMP/p.conf" "$TMP/p.log" ||
    bail_out "pinproxy is not listening on $P"

# The first connection learns what the upstream chooses; the second is
# answered beside the upstream's handshake, and works the same.
connect first --alpn h2,http/1.1 --get /hello
check_out "first connection: ALPN http/1.1" first alpn http/1.1
check_out "first connection: the origin's body" first body \
    'hello from origin\n'
check_eq "first connection: in series" 0 "$(beside)"
check_eq "first connection: its upstream hello made when its came" 0 \
    "$(ahead)"
connect second --alpn h2,http/1.1 --get /hello
check_out "second connection: ALPN http/1.1" second alpn http/1.1
check_out "second connection: the origin's body" second body \
    'hello from origin\n'
check_eq "second connection: answered beside the upstream's handshake" 1 \
    "$(beside)"
check_eq "second connection: the upstream's hello made ahead with the first's offer" \
    1 "$(ahead)"
# Another offer is another key: in series again.
connect other --alpn http/1.1 --get /hello
check_out "another ALPN offer: the origin's body" other body \
    'hello from origin\n'
check_eq "another ALPN offer: in series" 1 "$(beside)"
check_eq "another ALPN offer: the hello made ahead was dropped unsent" \
    "1 1" "$(ahead) $(dropped)"
check_out "another ALPN offer: ALPN http/1.1" other alpn http/1.1
# Plaintext HTTP in a CONNECT to the pinned host, behind that offer: the
# request goes over pinned TLS, with the hello made ahead or a new one.
curl -s -p -x "http://127.0.0.1:$P" -o "$TMP/plainconnect.out" \
    "http://api.test:443/hello" 2>"$TMP/plainconnect.err"
check_eq "plaintext in a CONNECT after a TLS client: the origin's body" \
    "hello from origin" "$(cat "$TMP/plainconnect.out")"

# A client that breaks TLS itself while its answer is held (a record of
# no TLS type behind its hello): an alert ends it, as when the upstream
# fails (OpenSSL's own went into the held answer, which is never sent).
# (The origin waits a second before its handshake, so that the answer is
# still held when the broken record is read, however slow pinproxy runs.)
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1 \
    --delay 1
connect junk --alpn h2,http/1.1 --junk-after-hello
check_out "a broken record behind the hello, answer held: an alert ends it" \
    junk tls alert
check_eq "a broken record behind the hello: it was answered beside" 2 \
    "$(beside)"

# The answer but its last record goes before the verdict (the origin now
# waits 2 s before its handshake): the client verified the certificate
# meanwhile, and finishes only after the verdict. The wait is the
# upstream's (connect_timeout), not the client's: header_timeout (1 s
# here) runs from the verdict on.
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1 \
    --delay 2
n=$(beside)
connect early --alpn h2,http/1.1 --get /hello --times
check_out "early part: the handshake completes" early tls ok
check_out "early part: the origin's body" early body 'hello from origin\n'
check_eq "early part: answered beside the upstream's handshake" \
    $((n + 1)) "$(beside)"
v=$(out early first_ms)
check "early part: the answer began before the upstream's (${v:-?} ms)" \
    test "${v:-none}" != none -a "${v:-9999}" -lt 1000
v=$(out early done_ms)
check "early part: the handshake ended after the verdict (${v:-?} ms)" \
    test "${v:-0}" -ge 1500
check_log "early part: logged with the bytes let go before the verdict" \
    "$TMP/p.log" "answer for api.test released, [1-9][0-9]* bytes of it let go"
# A client that does not trust pinproxy's CA refuses the certificate then,
# before the upstream answered; not one byte of it reaches the origin.
origin_settle "$TMP/o.log"
bytes=$(origin_count "$TMP/o.log" bytes)
connect untrusted --alpn h2,http/1.1 --get /hello --times \
    --cafile "$PKI/root.pem"
check_out "a client that does not trust the CA: it refuses the certificate" \
    untrusted tls error
v=$(out untrusted done_ms)
check "... before the upstream's handshake ended (${v:-?} ms)" \
    test "${v:-9999}" -lt 1000
check_log "... logged as the client's failure, with its alert" "$TMP/p.log" \
    "TLS handshake for api.test failed: tlsv1 alert unknown ca"
origin_settle "$TMP/o.log"
check_eq "... not one byte reached the origin" "$bytes" \
    "$(origin_count "$TMP/o.log" bytes)"
# A client that does not wait for the held record but makes it up (TLS
# 1.2's ServerHelloDone is always the same four bytes) finishes its
# handshake before the verdict: refused then with an alert, nothing of it
# relayed.
before=$(log_count "$TMP/p.log" "$(kv event access)" "$(kv status 502)")
connect predict --alpn h2,http/1.1 --get /hello --times --tls12 \
    --predict-done
check_out "a client that makes up the held record: an alert ends it" \
    predict tls alert
check_out "... access_denied" predict reason TLSV1_ALERT_ACCESS_DENIED
v=$(out predict done_ms)
check "... ended before the upstream's handshake did (${v:-?} ms)" \
    test "${v:-9999}" -lt 1000
check_log "... logged as blocked" "$TMP/p.log" "$(kv event blocked)" \
    "$(kv host api.test)" "finished before the upstream's verdict"
check "... access line status=502" wait_count "$TMP/p.log" $((before + 1)) \
    "$(kv event access)" "$(kv status 502)"
origin_settle "$TMP/o.log"
check_eq "... not one byte reached the origin" "$bytes" \
    "$(origin_count "$TMP/o.log" bytes)"
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1

# refused NAME WHAT ALERT HOW [ARGS...]: the guessed connection NAME (the
# client given ARGS too) ended in the alert ALERT (as Python's ssl names
# it), sent HOW (sealed, in the clear) behind the early part of the
# answer, and the origin got no application byte from it.
refused()
{
	local name=$1 what=$2 alert=$3 how=$4 n early re
	shift 4
	n=$(beside)
	re="answer for api.test refused, [1-9][0-9]* bytes of it let go before"
	re+=" the verdict, the alert $how"
	early=$(log_count "$TMP/p.log" "$re")
	origin_settle "$TMP/o.log"
	bytes=$(origin_count "$TMP/o.log" bytes)
	connect "$name" --alpn h2,http/1.1 --get /hello "$@"
	check_out "$what: the client's handshake ends with an alert" \
	    "$name" tls alert
	check_out "$what: the alert is $alert" "$name" reason "$alert"
	check_eq "$what: it was answered beside the upstream's handshake" \
	    $((n + 1)) "$(beside)"
	check_eq "$what: the certificate went early, the alert $how" \
	    $((early + 1)) "$(log_count "$TMP/p.log" "$re")"
	origin_settle "$TMP/o.log"
	check_eq "$what: not one byte reached the origin" "$bytes" \
	    "$(origin_count "$TMP/o.log" bytes)"
}

# A guess can lose its slot to others (a fixed table, salted at random);
# one more connection with the first offer puts its guess back (or
# keeps it), so that the refusals below are all answered beside.
connect rewarm --alpn h2,http/1.1 --get /hello
check_out "the first offer again: the origin's body" rewarm body \
    'hello from origin\n'

# The origin now serves a chain of an unrelated root.
origin --cert "$PKI/foreign-leaf-chain.pem" --key "$PKI/foreign-leaf.key" \
    --alpn http/1.1
refused mismatch "verification fails" TLSV1_ALERT_ACCESS_DENIED sealed
check_log "verification fails: access line status=502" "$TMP/p.log" \
    "$(kv event access)" "$(kv status 502)" "$(kv host api.test)"

# A leaf of the right CA, but not for api.test.
sh "$MKPKI" leaf "$PKI" other "DNS:other.test" >/dev/null 2>&1 ||
    bail_out "mkpki.sh leaf failed"
origin --cert "$PKI/other-chain.pem" --key "$PKI/other.key" --alpn http/1.1
refused wrongname "wrong host name" TLSV1_ALERT_ACCESS_DENIED sealed

# Pins that do not match: a new intermediate's leaf under the same root.
sh "$MKPKI" ca "$PKI" inter2 root >/dev/null 2>&1 &&
    sh "$MKPKI" leaf "$PKI" api2 "DNS:api.test" inter2 >/dev/null 2>&1 ||
    bail_out "mkpki.sh failed"
origin --cert "$PKI/api2-chain.pem" --key "$PKI/api2.key" --alpn http/1.1
refused pins "pin mismatch" TLSV1_ALERT_ACCESS_DENIED sealed
refused pins12 "pin mismatch, TLS 1.2" TLSV1_ALERT_ACCESS_DENIED \
    "in the clear" --tls12
check_log "pin mismatch: event=pin_mismatch" "$TMP/p.log" \
    "$(kv event pin_mismatch)" "$(kv host api.test)"

# The genuine key again, but the server now chooses h2: the guess
# (http/1.1) was wrong. Refused, the guess forgotten; the retry runs in
# series and gets h2.
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
connect relearn --alpn h2,http/1.1 --get /hello
check_out "genuine key again: the origin's body" relearn body \
    'hello from origin\n'
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn h2
refused alpn "the server chose another ALPN protocol" \
    SSLV3_ALERT_HANDSHAKE_FAILURE sealed
n=$(beside)
connect retry --alpn h2,http/1.1
check_out "ALPN changed, the retry: the handshake completes" retry tls ok
check_out "ALPN changed, the retry: ALPN h2" retry alpn h2
check_eq "ALPN changed, the retry: in series" "$n" "$(beside)"
# Guessed again only once two handshakes in a row chose the same: a
# server that goes back and forth (two kinds behind one address, during a
# deploy) would otherwise have every other connection refused.
connect retry2 --alpn h2,http/1.1 --get /hello
check_out "ALPN changed, a second connection: ALPN h2" retry2 alpn h2
check_eq "... in series too" "$n" "$(beside)"
connect settled --alpn h2,http/1.1 --get /hello
check_out "two choices agreed: the origin's body" settled body \
    'hello from origin\n'
check_eq "... answered beside again" $((n + 1)) "$(beside)"
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
refused flip "the server went back to http/1.1" \
    SSLV3_ALERT_HANDSHAKE_FAILURE sealed
n=$(beside)
connect flip1 --alpn h2,http/1.1
check_out "back and forth, the retry: ALPN http/1.1" flip1 alpn http/1.1
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn h2
connect flip2 --alpn h2,http/1.1
check_out "back and forth, h2 again: the handshake completes" flip2 tls ok
check_out "back and forth, h2 again: ALPN h2" flip2 alpn h2
check_eq "back and forth: both in series" "$n" "$(beside)"

# Two servers of api.test at different addresses (the emulator's CONNECT
# by address, or a name with several addresses), choosing differently: a
# guess belongs to the address it was learnt from, so neither refuses the
# other's clients.
start_origin O_X1 "$OX" "$TMP/ox1.log" --host 127.0.0.1 \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn h2,http/1.1
start_origin O_X2 "$OX" "$TMP/ox2.log" --host 127.0.0.2 \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
# at NAME ADDRESS: a CONNECT to ADDRESS:OX with the SNI api.test.
at()
{
	python3 "$CLIENT" --proxy "$P" --connect "$2:$OX" --sni api.test \
	    --cafile "$TMP/ca.pem" --alpn h2,http/1.1 >"$TMP/$1.out" 2>&1
}
at x1 127.0.0.1
at x1again 127.0.0.1
at x2 127.0.0.2
at x1last 127.0.0.1
check_out "two servers of a name: the first chooses h2" x1 alpn h2
check_out "two servers of a name: the first again, h2" x1again alpn h2
check_out "two servers of a name: the second's handshake completes" x2 tls ok
check_out "two servers of a name: the second chooses http/1.1" x2 alpn \
    http/1.1
check_out "two servers of a name: the first's guess still holds" x1last \
    alpn h2
stop "$O_X1"
stop "$O_X2"

# A client that leaves while the upstream's handshake runs (the upstream
# now waits 2 s before its own): its connection ends then, as one that
# left (status 200, no client_tls_failed line), whether its answer was
# held beside the upstream's handshake or, with no guess for its offer,
# not begun.
# left_early NAME WHAT ARGS...: such a client, with connect's ARGS.
left_early()
{
	local name=$1 what=$2 before failed line i
	shift 2
	before=$(log_count "$TMP/p.log" "$(kv event access)")
	failed=$(log_count "$TMP/p.log" "$(kv event client_tls_failed)")
	connect "$name" "$@" --leave 0.3
	for (( i = 0; i < 60; i++ )); do
		[ "$(log_count "$TMP/p.log" "$(kv event access)")" -gt \
		    "$before" ] && break
		t_sleep 0.05
	done
	line=$(log_lines "$TMP/p.log" "$(kv event access)" | tail -n 1)
	check_eq "$what: the client left" left "$(tail -n 1 "$TMP/$name.out")"
	check "$what: its access line, status=200 ($line)" \
	    grep -qE "$(kv status 200)" <<<"$line"
	ms=$(printf '%s\n' "$line" | sed -n 's/.* ms=\([0-9]*\).*/\1/p')
	check "$what: ended before the upstream's 2 s (${ms:-?} ms)" \
	    test "${ms:-9999}" -lt 1500
	check_eq "$what: no client_tls_failed line" "$failed" \
	    "$(log_count "$TMP/p.log" "$(kv event client_tls_failed)")"
}
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
connect learnleave --alpn http/1.1 --get /hello
check_out "a guess for http/1.1 again" learnleave body 'hello from origin\n'
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1 \
    --delay 2
n=$(beside)
left_early leaveheld "left while its answer was held" --alpn http/1.1
check_eq "left while its answer was held: it was held" $((n + 1)) \
    "$(beside)"
left_early leaveserial "left while waiting for the upstream (no guess)" \
    --alpn x-none-before
check_eq "left while waiting for the upstream: in series" $((n + 1)) \
    "$(beside)"

# A client that is gone before the verdict does not end the upstream's
# check: it runs on to its verdict, and a pin mismatch is logged and
# reported as for a client that stayed (a new leaf under the other
# intermediate each time, so that no line or report is a repeat). The
# upstream waits a second before its handshake; nothing reaches it.
# gone_verdict NAME WHAT ARGS...: the client NAME (connect's ARGS, or
# --plain: a plaintext request, which pinproxy upgrades, then a reset)
# ends before the verdict; then the verdict on leaf NAME is logged and
# reported.
gone_verdict()
{
	local name=$1 what=$2 mism reps bytes alone
	shift 2
	sh "$MKPKI" leaf "$PKI" "$name" "DNS:api.test" inter2 >/dev/null \
	    2>&1 || bail_out "mkpki.sh leaf failed"
	origin --cert "$PKI/$name-chain.pem" --key "$PKI/$name.key" \
	    --alpn http/1.1 --delay 1
	mism=$(log_count "$TMP/p.log" "$(kv event pin_mismatch)")
	reps=$(grep -c . "$TMP/reports.jsonl" 2>/dev/null)
	bytes=$(origin_count "$TMP/o.log" bytes)
	alone=$(log_count "$TMP/p.log" "that ran on without client .* no pin")
	if [ "$1" = --plain ]; then
		python3 -c '
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n")
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$P"
	else
		connect "$name" "$@"
	fi
	check "$what: the pin_mismatch is logged" wait_count "$TMP/p.log" \
	    $((mism + 1)) "$(kv event pin_mismatch)" "$(kv host api.test)"
	check "$what: and reported" wait_count "$TMP/reports.jsonl" \
	    $((${reps:-0} + 1)) '"hostname":"api.test"'
	check "$what: by the handshake that ran on without it" wait_count \
	    "$TMP/p.log" $((alone + 1)) "that ran on without client .* no pin"
	origin_settle "$TMP/o.log"
	check_eq "$what: the origin got no application byte" "$bytes" \
	    "$(origin_count "$TMP/o.log" bytes)"
}
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
connect learngone --alpn http/1.1 --get /hello
check_out "a guess for http/1.1 once more" learngone body \
    'hello from origin\n'
n=$(beside)
gone_verdict goneuntrusted "refused the certificate before the verdict" \
    --alpn http/1.1 --get /hello --cafile "$PKI/root.pem"
check_out "refused the certificate before the verdict: so it did" \
    goneuntrusted tls error
check_eq "refused the certificate before the verdict: it was held" \
    $((n + 1)) "$(beside)"
gone_verdict goneheld "left while its answer was held" --alpn http/1.1 \
    --leave 0.3
check_eq "left while its answer was held: it was held" $((n + 2)) \
    "$(beside)"
gone_verdict goneserial "left while waiting for the upstream (no guess)" \
    --alpn x-none-before-either --leave 0.3
check_eq "left while waiting for the upstream: in series" $((n + 2)) \
    "$(beside)"
gone_verdict goneplain "a plaintext request, reset before the verdict" \
    --plain

# A client that shuts down its side (a FIN, which HTTP allows after a
# whole request) while its request is retried on a fresh upstream (the
# kept one was closed under it) still gets the answer: here the 502 of a
# server that closes again, not a reset.
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1 \
    --delay 1
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
def req(path):
    return ("GET http://api.test%s HTTP/1.1\r\nHost: api.test\r\n\r\n"
            % path).encode()
s.sendall(req("/hello"))
d = b""
while not d.endswith(b"hello from origin\n"):
    b = s.recv(65536)
    if not b:
        break
    d += b
s.sendall(req("/drop"))
time.sleep(0.3)
s.shutdown(socket.SHUT_WR)
d = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        d += b
except OSError as e:
    d += b"<%s>" % type(e).__name__.encode()
print(d.split(b"\r\n")[0].decode())' "$P" >"$TMP/retryfin.out" 2>&1
check_eq "a FIN while the request is retried: the 502 arrives" \
    "HTTP/1.1 502 Bad Gateway" "$(head -n 1 "$TMP/retryfin.out")"

# At most max_connections handshakes run on alone: with 1, the second
# client gone while the first's runs loses its verdict, said at warn
# level; a stop then closes the one running (cleanly: the sanitizer
# build would tell a leak). The origin waits long enough that the first
# still runs however slowly the second client starts.
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1 \
    --delay 6
P3=$(free_port)
sed -e "s/^listen = .*/listen = 127.0.0.1:$P3/" \
    -e '/^\[proxy\]/a max_connections = 1' "$TMP/p.conf" >"$TMP/p3.conf"
start_pinproxy PP3 "$P3" "$TMP/p3.conf" "$TMP/p3.log" ||
    bail_out "pinproxy is not listening on $P3"
for name in capfirst capsecond; do
	python3 "$CLIENT" --proxy "$P3" --connect "api.test:443" \
	    --sni api.test --cafile "$TMP/ca.pem" --alpn x-cap \
	    --leave 0.3 >"$TMP/$name.out" 2>&1
done
check_log "max_connections = 1: the first runs on alone" "$TMP/p3.log" \
    "upstream handshake for api.test:443 runs on alone"
check_log "... the second's verdict is not waited for (warn)" "$TMP/p3.log" \
    "^level=warn " "$(kv event check_abandoned)" "$(kv host api.test)" \
    "$(kv count 1)"
check_eq "... one line" 1 \
    "$(log_count "$TMP/p3.log" "$(kv event check_abandoned)")"
stop_pinproxy "$PP3" "$TMP/p3.log"

# A client whose hello the held handshake refuses (it offers TLS 1.1
# only): a TLS failure as ever (status 502, logged), not a client that
# left.
n=$(beside)
before=$(log_count "$TMP/p.log" "$(kv event access)" "$(kv status 502)")
openssl s_client -proxy "127.0.0.1:$P" -connect api.test:443 \
    -servername api.test -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
    -alpn http/1.1 </dev/null >"$TMP/tls11.out" 2>&1
check_eq "a hello refused while held: it was held" $((n + 1)) "$(beside)"
check_log "a hello refused while held: the failure is logged" "$TMP/p.log" \
    "TLS handshake for api.test failed: unsupported protocol"
check_eq "a hello refused while held: access line status=502" \
    $((before + 1)) \
    "$(log_count "$TMP/p.log" "$(kv event access)" "$(kv status 502)")"

# Clients that stop after their CONNECT: at most 64 hellos are made ahead
# and wait at once (each holds a TLS connection until the client's hello
# or header_timeout); the others' are made when TLS starts. Once those
# clients are gone, hellos are made ahead again.
made=$(log_count "$TMP/p.log" 'made ahead \(')
ended=$(log_count "$TMP/p.log" "$(kv event access)")
out=$(stall 74 "$TMP/p.log" "$made")
check_eq "74 clients stalled after the CONNECT: 64 hellos made ahead, 64 at most waiting" \
    "64 64" "$out"
check "... and all 74 ended when they left" wait_count "$TMP/p.log" \
    $((ended + 74)) "$(kv event access)"
a=$(ahead)
connect again --alpn http/1.1 --get /hello
check_out "after they left: the origin's body" again body 'hello from origin\n'
check_eq "after they left: the hello made ahead again, and sent" $((a + 1)) \
    "$(ahead)"

# A kept session that a hello made ahead offered goes back to the kept
# ones when that hello is dropped unsent: ten clients that stop after
# their CONNECT (more than the 8 sessions kept for a host) leave the
# next connection a session to resume.
connect keep --alpn http/1.1 --get /hello
check_out "sessions: a connection that keeps some" keep body \
    'hello from origin\n'
ended=$(log_count "$TMP/p.log" "$(kv event access)")
stall 10
check "... ten clients that stopped after their CONNECT ended" wait_count \
    "$TMP/p.log" $((ended + 10)) "$(kv event access)"
resumed=$(origin_count "$TMP/o.log" tls '"resumed": true')
connect after --alpn http/1.1 --get /hello
check_out "... the next connection: the origin's body" after body \
    'hello from origin\n'
check_eq "... its upstream handshake resumed a kept session" \
    $((resumed + 1)) "$(origin_count "$TMP/o.log" tls '"resumed": true')"

# Not one byte of a hello made ahead reaches the upstream before the
# client's own hello: a raw upstream (pinned raw.test) records when its
# bytes come; a client learns the offer, then a second one waits half a
# second after the 200 before its hello.
a=$(ahead)
out=$(python3 - "$P" "$RAW" <<'PY'
import socket, ssl, sys, threading, time
port, raw = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", raw))
srv.listen(8)
conns = []
def serve():
    while True:
        c, _ = srv.accept()
        rec = {"first": None, "n": 0}
        conns.append(rec)
        c.settimeout(5)
        try:
            d = c.recv(65536)
            if d:
                rec["first"], rec["n"] = time.monotonic(), len(d)
        except OSError:
            pass
        c.close()
threading.Thread(target=serve, daemon=True).start()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
def tunnel():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"CONNECT raw.test:443 HTTP/1.1\r\nHost: raw.test:443\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(100)
    return s
def hello(s):
    t = ctx.wrap_socket(s, server_hostname="raw.test",
                        do_handshake_on_connect=False)
    t.settimeout(5)
    try:
        t.do_handshake()
    except (OSError, ssl.SSLError):
        pass
    t.close()
hello(tunnel())
s = tunnel()
time.sleep(0.5)
early = conns[1]["n"] if len(conns) > 1 else -1
sent = time.monotonic()
hello(s)
later = conns[1]["first"] is not None and conns[1]["first"] >= sent
print(len(conns), early, "after" if later else "never")
PY
)
check_eq "a client silent after its 200: nothing reached the upstream until its hello, then the hello" \
    "2 0 after" "$out"
check_eq "... that hello was made ahead" $((a + 1)) "$(ahead)"

stop_pinproxy "$PP" "$TMP/p.log"

# Under an OpenSSL configuration that lets a client choose AES-CCM, a
# suite pinproxy cannot seal an alert with, and that makes a client
# whose first key share is P-384 get a HelloRetryRequest: with CCM the
# whole answer waits for the verdict, as before (a refusal's alert then
# goes in the clear); after a HelloRetryRequest the answer to the second
# hello is cut as the first would have been.
cat >"$TMP/openssl.cnf" <<EOC
openssl_conf = init
[init]
ssl_conf = ssl
[ssl]
system_default = defaults
[defaults]
Groups = X25519:P-256
Ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256
EOC
P2=$(free_port)
sed "s/^listen = .*/listen = 127.0.0.1:$P2/" "$TMP/p.conf" >"$TMP/p2.conf"
start_pinproxy PP2 "$P2" "$TMP/p2.conf" "$TMP/p2.log" \
    OPENSSL_CONF="$TMP/openssl.cnf" ||
    bail_out "pinproxy is not listening on $P2"
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1
# sclient NAME ARGS...: openssl s_client through the second proxy.
sclient()
{
	local name=$1
	shift
	openssl s_client -proxy "127.0.0.1:$P2" -connect api.test:443 \
	    -servername api.test -alpn http/1.1 -CAfile "$TMP/ca.pem" \
	    -verify_return_error "$@" </dev/null >"$TMP/$name.out" 2>&1
}
# early: the bytes let go before the verdict of the last answer.
early()
{
	log_lines "$TMP/p2.log" "answer for api.test (released|refused)" |
	    tail -n 1 | sed -n 's/.*, \([0-9]*\) bytes of it let go.*/\1/p'
}
sclient learn2
check_grep "second proxy: the first connection passes" \
    "Verification: OK" "$TMP/learn2.out"
sclient ccm -ciphersuites TLS_AES_128_CCM_SHA256
check_grep "AES-CCM: the handshake completes" \
    "Cipher is TLS_AES_128_CCM_SHA256" "$TMP/ccm.out"
check_eq "AES-CCM: nothing let go before the verdict" 0 "$(early)"
# (The origin now waits a second before its handshake, so that the
# second hello comes before the verdict.)
origin --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --alpn http/1.1 \
    --delay 1
sclient hrr -groups P-384:X25519
check_grep "HelloRetryRequest: the handshake completes" \
    "Verification: OK" "$TMP/hrr.out"
v=$(early)
check "HelloRetryRequest: the second answer was cut (${v:-?} bytes)" \
    test "${v:-0}" -gt 500
origin --cert "$PKI/foreign-leaf-chain.pem" --key "$PKI/foreign-leaf.key" \
    --alpn http/1.1 --delay 1
origin_settle "$TMP/o.log"
bytes=$(origin_count "$TMP/o.log" bytes)
sclient ccmbad -ciphersuites TLS_AES_128_CCM_SHA256
check_grep "AES-CCM, verification fails: access_denied" \
    "alert access denied" "$TMP/ccmbad.out"
check_log "... the alert in the clear, nothing let go" "$TMP/p2.log" \
    "answer for api.test refused, 0 bytes of it let go before the verdict, the alert in the clear"
sclient hrrbad -groups P-384:X25519
check_grep "HelloRetryRequest, verification fails: access_denied" \
    "alert access denied" "$TMP/hrrbad.out"
check_log "... the alert sealed behind the cut answer" "$TMP/p2.log" \
    "answer for api.test refused, [0-9]{3,} bytes of it let go before the verdict, the alert sealed"
origin_settle "$TMP/o.log"
check_eq "AES-CCM and HelloRetryRequest refused: not one byte reached the origin" \
    "$bytes" "$(origin_count "$TMP/o.log" bytes)"

stop "$O_PID"
stop_pinproxy "$PP2" "$TMP/p2.log" "the second pinproxy:"
done_testing
