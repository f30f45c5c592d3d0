#!/bin/bash
# Every spelling of an IP address end to end: with a pin set for
# 127.0.0.1, a plaintext request naming 127.0.0.1 in any other spelling
# (IPv4-mapped IPv6, a trailing dot) is upgraded to TLS and pinned, a
# numeric spelling that is not a canonical IPv4 address (leading zeros,
# octal, hex, fewer than four parts, one number) is a 400 and reaches
# nothing, an SNI is read the same way, and a CONNECT without SNI to
# [::ffff:127.0.0.1] is intercepted, not tunnelled blind, as is one to
# 127.0.0.1 whose SNI names an unpinned host. Everything runs on the
# loopback.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# A raw client: send requests (each the bytes of a Python expression) to
# 127.0.0.1:PORT one after the other, each on a connection of its own, and
# keep each answer in its FILE, up to the close or 5 s of quiet. curl
# would rewrite numeric hosts before sending them.
cat >"$TMP/raw.py" <<'EOF'
import socket, sys
port, jobs = int(sys.argv[1]), sys.argv[2:]
for out_name, expr in zip(jobs[0::2], jobs[1::2]):
    out = b""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(eval(expr))
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
    except OSError:
        pass
    open(out_name, "wb").write(out)
EOF

# raw NAME EXPR: queue a request for raw_send; its answer goes to
# NAME.resp. raw_send: send the queued requests to pinproxy, in order
# (one Python for them all: each start costs more than a request).
RAW=()
raw()
{
	RAW+=("$TMP/$1.resp" "$2")
}
raw_send()
{
	python3 "$TMP/raw.py" "$PX" "${RAW[@]}"
	RAW=()
}

# body_of NAME: the body of the response in $TMP/NAME.resp.
body_of()
{
	sed '1,/^\r*$/d' "$TMP/$1.resp" 2>/dev/null
}

# The PKI: the default set of tests/mkpki.sh (its leaf covers 127.0.0.1).
make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

# Origins on 127.0.0.1: T speaks TLS, P plaintext. Nothing may reach P.
# dnsd answers every name the daemon might look up, so that no query
# leaves the loopback.
OT=$(free_port)
start_origin O_T "$OT" "$TMP/ot.log" --cert "$PKI/chain.pem" \
    --key "$PKI/leaf.key"
OP=$(free_port)
start_origin O_P "$OP" "$TMP/op.log" --plain
start_dnsd --map alias.test=127.0.0.1 --map alias-ro.test=127.0.0.1 \
    --map zero.test=0.0.0.0 --map slow.test=127.0.0.1 --slow slow.test=1 \
    --map slow2.test=127.0.0.1 --slow slow2.test=1 \
    --map slow3.test=127.0.0.1 --slow slow3.test=1

PX=$(free_port)
cat >"$TMP/a.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PX
ca_cert = $TMP/ca-a.pem
ca_key = $TMP/ca-a.key
trust = $PKI/root.pem
unpinned = pass
connect_ports = 443 $OT $OP
plain_ports = 80 $OP
connect_timeout = 3s

[pins:loopback]
hosts = 127.0.0.1
pin = $PIN_INTER
pin = $PIN_RSA
port = $OT

[pins:ro]
hosts = alias-ro.test
pin = $PIN_RSA
pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
enforce = no
port = $OT
EOF
check "pinproxy listens on 127.0.0.1:$PX" \
    start_pinproxy PP "$PX" "$TMP/a.conf" "$TMP/a.log"

# Plaintext requests naming the pinned address: upgraded to TLS on the pin
# set's port, never sent to the plaintext origin; so are requests naming
# the unspecified address, which a dial takes for the loopback one.
UP_HOSTS=("127.0.0.1" "127.0.0.1." "[::ffff:127.0.0.1]" "[::ffff:7f00:1]" \
    "[::FFFF:7F00:1]" "[0:0:0:0:0:ffff:127.0.0.1]" "0.0.0.0" \
    "[::ffff:0.0.0.0]")
n=0
for h in "${UP_HOSTS[@]}"; do
	n=$((n + 1))
	raw "up$n" "b'GET http://$h:$OP/hello?m-up$n HTTP/1.1\\r\\n\
Host: $h:$OP\\r\\nConnection: close\\r\\n\\r\\n'"
	n=$((n + 1))
	raw "up$n" "b'GET /hello?m-up$n HTTP/1.1\\r\\nHost: $h:$OP\\r\\n\
Connection: close\\r\\n\\r\\n'"
done
raw_send
n=0
for h in "${UP_HOSTS[@]}"; do
	n=$((n + 1))
	check_eq "GET http://$h:PORT/: 200 over TLS" 200 "$(status_of "up$n")"
	check_eq "GET http://$h:PORT/: the TLS origin's answer" "$HELLO" \
	    "$(body_of "up$n")"
	check_eq "GET http://$h:PORT/: sent to the TLS origin" 1 \
	    "$(origin_count "$TMP/ot.log" request "m-up$n\"")"
	n=$((n + 1))
	check_eq "GET / with Host: $h:PORT: 200 over TLS" 200 \
	    "$(status_of "up$n")"
	check_eq "GET / with Host: $h:PORT: sent to the TLS origin" 1 \
	    "$(origin_count "$TMP/ot.log" request "m-up$n\"")"
done
check_log "an upgraded request is logged with host=127.0.0.1" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host 127.0.0.1)" "$(kv status 200)"
origin_settle "$TMP/ot.log"
check_eq "the TLS origin got every upgraded request" "$n" \
    "$(origin_count "$TMP/ot.log" request "m-up")"

# Numeric spellings that resolvers read in different ways: refused with a
# 400 before anything is resolved or dialled (libevent's resolver reads
# "127.0.0.-4294967295" as 127.0.0.1 itself, without asking DNS).
BAD_HOSTS=("127.000.000.001" "127.0.0.01" "0177.0.0.1" "0x7f.0.0.1" \
    "0x7f000001" "2130706433" "127.1" "127.0.1" "foo.123" \
    "[::127.0.0.1]" "[::ffff:127.0.0.01]" "127.0.0.-4294967295" \
    "-0.-0.-0.-0" "[::ffff:0:7f00:1]")
n=0
for h in "${BAD_HOSTS[@]}"; do
	n=$((n + 1))
	raw "bad$n" "b'GET http://$h:$OP/hello?m-bad$n HTTP/1.1\\r\\n\
Host: $h:$OP\\r\\nConnection: close\\r\\n\\r\\n'"
	n=$((n + 1))
	raw "bad$n" "b'GET /hello?m-bad$n HTTP/1.1\\r\\nHost: $h:$OP\\r\\n\
Connection: close\\r\\n\\r\\n'"
	n=$((n + 1))
	raw "bad$n" "b'CONNECT $h:$OT HTTP/1.1\\r\\nHost: $h:$OT\\r\\n\\r\\n'"
done
raw_send
n=0
for h in "${BAD_HOSTS[@]}"; do
	n=$((n + 1))
	check_eq "GET http://$h:PORT/: 400 bad-request" \
	    "400 pinproxy; error=http_request_error; details=\"bad-request\"" \
	    "$(status_of "bad$n") $(header_of "bad$n" Proxy-Status)"
	n=$((n + 1))
	check_eq "GET / with Host: $h:PORT: 400" 400 "$(status_of "bad$n")"
	n=$((n + 1))
	check_eq "CONNECT $h:PORT: 400" 400 "$(status_of "bad$n")"
done
origin_settle "$TMP/op.log"
origin_settle "$TMP/ot.log"
check_eq "the plaintext origin got nothing" 0 \
    "$(origin_count "$TMP/op.log" accept)"
check_eq "no refused request reached the TLS origin" 0 \
    "$(origin_count "$TMP/ot.log" request "m-bad")"
check_eq "no numeric name was looked up" 0 \
    "$(origin_count "$TMP/dns.log" query)"

# A hand-made ClientHello after CONNECT TARGET with the SNI of a Python
# bytes expression, once per SNI given, each on a connection of its own;
# prints per SNI "status=200 answer=handshake", "status=200
# answer=fatal-alert description=N", or the status of a refused CONNECT.
cat >"$TMP/sni.py" <<'EOF'
import os, socket, struct, sys
port, target = int(sys.argv[1]), sys.argv[2]
def ext(kind, data):
    return struct.pack("!HH", kind, len(data)) + data
def hello(sni):
    name = struct.pack("!BH", 0, len(sni)) + sni
    exts = ext(0, struct.pack("!H", len(name)) + name)
    exts += ext(10, b"\x00\x04\x00\x17\x00\x1d")
    exts += ext(11, b"\x01\x00")
    exts += ext(13, b"\x00\x04\x04\x03\x08\x04")
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" +
            b"\x00\x04\xc0\x2b\xc0\x2f" + b"\x01\x00" +
            struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
def answer(sni):
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
        return "status=%s" % status
    s.sendall(hello(sni))
    # What comes first tells: a handshake record, or an alert of 7
    # bytes. Waiting for more would wait for the 5 s timeout.
    out = b""
    try:
        while out[:1] != b"\x16" and len(out) < 7:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    if out[:1] == b"\x15" and len(out) >= 7:
        kind = "fatal-alert" if out[5] == 2 else "warning-alert"
        return "status=200 answer=%s description=%d" % (kind, out[6])
    elif out[:1] == b"\x16":
        return "status=200 answer=handshake"
    return "status=200 answer=%r" % out[:20]
for sni in sys.argv[3:]:
    try:
        print(answer(eval(sni)), flush=True)
    except OSError as e:
        print("error=%s" % e, flush=True)
EOF

# An SNI must not be an address (RFC 6066); one that is, after CONNECT to
# the pinned address, is read as that address: intercepted, not tunnelled.
out=$(python3 "$TMP/sni.py" "$PX" "127.0.0.1:$OT" "b'::ffff:127.0.0.1'" 2>&1)
check_eq "SNI ::ffff:127.0.0.1: pinproxy answers the handshake" \
    "status=200 answer=handshake" "$out"
check_log "SNI ::ffff:127.0.0.1: mode=intercept host=127.0.0.1" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host 127.0.0.1)"
# A numeric SNI that is no canonical address: unrecognized_name (112).
SNIS=(127.000.000.001 0177.0.0.1 127.1 2130706433)
args=()
for sni in "${SNIS[@]}"; do
	args+=("b'$sni'")
done
python3 "$TMP/sni.py" "$PX" "127.0.0.1:$OT" "${args[@]}" >"$TMP/snis.out" 2>&1
i=0
for sni in "${SNIS[@]}"; do
	i=$((i + 1))
	check_eq "SNI $sni: a fatal unrecognized_name alert" \
	    "status=200 answer=fatal-alert description=112" \
	    "$(sed -n "${i}p" "$TMP/snis.out")"
done
[ "$(wc -l <"$TMP/snis.out")" = "${#SNIS[@]}" ] ||
    diag "$(cat "$TMP/snis.out")"
intercepted=$(log_count "$TMP/a.log" "$(kv event access)" \
    "$(kv mode intercept)" "$(kv host 127.0.0.1)")

# CONNECT without SNI to the pinned address spelled as IPv4-mapped IPv6:
# intercepted and pinned (the client sees a leaf of pinproxy's CA), not a
# blind tunnel to the origin.
python3 "$CLIENT" --proxy "$PX" --connect "[::ffff:127.0.0.1]:$OT" \
    --cafile "$TMP/ca-a.pem" --get /hello --host 127.0.0.1 \
    >"$TMP/c1.out" 2>&1
check_grep "CONNECT [::ffff:127.0.0.1] without SNI: 200" '^status=200$' \
    "$TMP/c1.out"
check_grep "CONNECT [::ffff:127.0.0.1] without SNI: pinproxy's leaf" \
    '^tls=ok$' "$TMP/c1.out"
check_grep "CONNECT [::ffff:127.0.0.1] without SNI: the origin answers" \
    "^body=$HELLO" "$TMP/c1.out"
# intercepted_more: the access log holds more intercepted connections to
# 127.0.0.1 than before this CONNECT.
intercepted_more()
{
	[ "$(log_count "$TMP/a.log" "$(kv event access)" \
	    "$(kv mode intercept)" "$(kv host 127.0.0.1)")" -gt "$intercepted" ]
}
for i in $(seq "$WAIT_TICKS"); do
	intercepted_more && break
	t_sleep 0.05
done
check "CONNECT [::ffff:127.0.0.1]: mode=intercept host=127.0.0.1" \
    intercepted_more
# CONNECT to the pinned address with the SNI of a host no pin set covers:
# the address's pins still apply (intercepted under set loopback), a name
# does not unpin an address.
python3 "$CLIENT" --proxy "$PX" --connect "127.0.0.1:$OT" --sni api.test \
    --cafile "$TMP/ca-a.pem" --get /hello >"$TMP/c2.out" 2>&1
check_grep "CONNECT 127.0.0.1, SNI of an unpinned name: pinproxy's leaf" \
    '^tls=ok$' "$TMP/c2.out"
check_grep "CONNECT 127.0.0.1, SNI of an unpinned name: the origin answers" \
    "^body=$HELLO" "$TMP/c2.out"
check_log "CONNECT 127.0.0.1, SNI of an unpinned name: mode=intercept" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host api.test)"
check_eq "no CONNECT became a blind tunnel" 0 \
    "$(log_count "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv status 200)")"

# A name no pin set covers that DNS resolves to the pinned address: a name
# never unpins an address, whether the client pairs them (above) or DNS
# does. Refused before anything is dialled, in plaintext and by CONNECT.
raw alias1 "b'GET http://alias.test:$OP/hello?m-alias1 HTTP/1.1\\r\\n\
Host: alias.test:$OP\\r\\nConnection: close\\r\\n\\r\\n'"
raw alias2 "b'CONNECT alias.test:$OT HTTP/1.1\\r\\nHost: alias.test:$OT\\r\\n\\r\\n'"
# Nor does another set's name, here a report-only one, unpin it.
raw alias3 "b'GET http://alias-ro.test/hello?m-alias3 HTTP/1.1\\r\\n\
Host: alias-ro.test\\r\\nConnection: close\\r\\n\\r\\n'"
# Nor an answer of 0.0.0.0, which a dial takes for the loopback address.
raw alias4 "b'GET http://zero.test:$OP/hello?m-alias4 HTTP/1.1\\r\\n\
Host: zero.test:$OP\\r\\nConnection: close\\r\\n\\r\\n'"
raw_send
for n in 1 2 3 4; do
	check_eq "unpinned name resolving to the pinned address ($n): 403 \
address-pinned" \
	    "403 pinproxy; error=http_request_denied; details=\"address-pinned\"" \
	    "$(status_of "alias$n") $(header_of "alias$n" Proxy-Status)"
done
check_grep "another set's name resolving to the pinned address: the body \
says the address is another set's" "a pin set other than the name's covers" \
    "$TMP/alias3.resp"
check_log "unpinned name resolving to the pinned address: the log names \
the set" "$TMP/a.log" "$(kv event blocked)" "$(kv host alias.test)" \
    'reason="address-pinned: .*which pin set loopback covers'
check_log "another set's name resolving to the pinned address: the log \
names both sets" "$TMP/a.log" "$(kv event blocked)" \
    "$(kv host alias-ro.test)" "which pin set loopback covers, not the name's set ro"
origin_settle "$TMP/op.log"
check_eq "unpinned name resolving to the pinned address: nothing dialled" \
    "0 0" "$(origin_count "$TMP/op.log" accept) $(origin_count \
    "$TMP/ot.log" request "m-alias")"

stop_pinproxy "$PP" "$TMP/a.log"

# A pin set that covers an address lends its pins to a name the client
# sends as SNI to that address, not its ca_file: a private CA vouches for
# its set's own hosts only. The origin on 127.0.0.2 has a leaf of a
# private CA for victim.test and staging.test; the set for staging.test
# and 127.0.0.2 trusts that CA and pins it.
sh "$MKPKI" ca "$PKI" priv >>"$TMP/mkpki.log" 2>&1 &&
    sh "$MKPKI" leaf "$PKI" privleaf \
    "DNS:victim.test,DNS:staging.test,IP:127.0.0.2" priv \
    >>"$TMP/mkpki.log" 2>&1 ||
    bail_out "tests/mkpki.sh failed: $(cat "$TMP/mkpki.log")"
pki_pin PIN_PRIV priv
OV=$(free_port)
start_origin O_V "$OV" "$TMP/ov.log" --host 127.0.0.2 \
    --cert "$PKI/privleaf-chain.pem" --key "$PKI/privleaf.key"
PV=$(free_port)
FV=$(free_port)
cat >"$TMP/v.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PV
ca_cert = $TMP/ca-v.pem
ca_key = $TMP/ca-v.key
trust = $PKI/root.pem
unpinned = verify
connect_ports = $OV

[pins:staging]
hosts = staging.test, 127.0.0.2
ca_file = $PKI/priv.pem
pin = ca:$PIN_PRIV
pin = $PIN_RSA

[forward:fw]
listen = 127.0.0.1:$FV
upstream = 127.0.0.2:$OV
sni = victim.test
pinset = staging
EOF
check "pinproxy listens on 127.0.0.1:$PV" \
    start_pinproxy PP_V "$PV" "$TMP/v.conf" "$TMP/v.log"
python3 "$CLIENT" --proxy "$PV" --connect "127.0.0.2:$OV" --sni victim.test \
    --cafile "$TMP/ca-v.pem" --get /hello >"$TMP/v1.out" 2>&1
check_grep "CONNECT to a pinned address, SNI of another name: refused" \
    '^tls=alert' "$TMP/v1.out"
check_log "CONNECT to a pinned address, SNI of another name: the private \
CA does not vouch for it (verify_failed)" "$TMP/v.log" \
    "$(kv event verify_failed)" "$(kv host victim.test)"
check_eq "CONNECT to a pinned address, SNI of another name: no request \
reached the origin" 0 "$(origin_count "$TMP/ov.log" request)"
python3 "$CLIENT" --proxy "$PV" --connect "127.0.0.2:$OV" \
    --sni staging.test --cafile "$TMP/ca-v.pem" --get /hello \
    >"$TMP/v2.out" 2>&1
check_grep "CONNECT to a pinned address, SNI of the set's name: its \
ca_file applies" "^body=$HELLO" "$TMP/v2.out"
# A forwarder given the set for victim.test trusts its ca_file (the
# operator chose so) and keeps the TLS session it made; a CONNECT to the
# address with that name as SNI must not resume it, or the private CA
# would vouch for the name after all.
python3 "$TMP/raw.py" "$FV" "$TMP/v3.resp" "b'GET /hello HTTP/1.1\\r\\n\
Host: victim.test\\r\\nConnection: close\\r\\n\\r\\n'"
check_eq "the forwarder with the set's ca_file for victim.test relays" \
    "$HELLO" "$(body_of v3)"
python3 "$CLIENT" --proxy "$PV" --connect "127.0.0.2:$OV" --sni victim.test \
    --cafile "$TMP/ca-v.pem" --get /hello >"$TMP/v4.out" 2>&1
check_grep "CONNECT to a pinned address, SNI of another name, after the \
forwarder's session: still refused" '^tls=alert' "$TMP/v4.out"
check_eq "CONNECT to a pinned address, SNI of another name: never relayed" \
    0 "$(log_count "$TMP/v.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host victim.test)" "$(kv status 200)")"
stop_pinproxy "$PP_V" "$TMP/v.log"

# Daemon R: plaintext requests and tunnels, and reloads that pin what
# they were going to.
OQ=$(free_port)
start_origin O_Q "$OQ" "$TMP/oq.log" --plain
PR=$(free_port)
r_conf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$PR
ca_cert = $TMP/ca-a.pem
ca_key = $TMP/ca-a.key
trust = $PKI/root.pem
unpinned = pass
connect_ports = 443 $OQ
plain_ports = 80 ${2-$OQ}

[pins:loopback]
hosts = api.test${1:-}
pin = $PIN_INTER
port = $OT
EOF
}
r_conf >"$TMP/r.conf"
check "pinproxy listens on 127.0.0.1:$PR" \
    start_pinproxy PP_R "$PR" "$TMP/r.conf" "$TMP/r.log"
# A plaintext request routed before a reload that pins its host, its
# server dialled across the reload (slow.test takes 1 s to resolve): it
# is routed again under the new configuration, not sent in cleartext
# under the old one. Pinned, it goes over TLS to the set's port, whose
# leaf does not cover slow.test: 502. (It used to reach the address.)
# across_reload NAME HOST HOSTS [PORTS]: GET http://HOST:$OQ/secret
# through R (HOST takes 1 s to resolve) and, 0.3 s in, a reload to r_conf
# HOSTS PORTS (one case); the request's status goes to $TMP/NAME.out.
across_reload()
{
	local pid
	spawn pid curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	    -x "127.0.0.1:$PR" "http://$2:$OQ/secret" >"$TMP/$1.out"
	t_sleep 0.3
	check "a reload while $2 is looked up (hosts = api.test$3${4+, \
plain_ports = 80 $4})" \
	    reload "$PP_R" "$TMP/r.log" "$TMP/r.conf" "$(r_conf "$3" "${4-$OQ}")"
	wait_exit "$pid" 10
}
n_q=$(origin_count "$TMP/oq.log" request)
across_reload slow slow.test ', slow.test'
check_eq "pinned while dialled: not sent in cleartext (502 over TLS)" 502 \
    "$(cat "$TMP/slow.out")"
check_eq "pinned while dialled: nothing reached the plaintext address" \
    "$n_q" "$(origin_count "$TMP/oq.log" request)"
check_log "pinned while dialled: verified for slow.test, and refused" \
    "$TMP/r.log" "$(kv event verify_failed)" "$(kv host slow.test)"
# The same when the reload pins the address dialled, not the name: the
# request is routed again, and the new configuration's addresses refuse
# it (403 address-pinned).
across_reload slow2 slow2.test ', slow.test, 127.0.0.1'
check_eq "address pinned while dialled: refused, 403" 403 \
    "$(cat "$TMP/slow2.out")"
check_eq "address pinned while dialled: nothing reached the address" \
    "$n_q" "$(origin_count "$TMP/oq.log" request)"
check "reload: 127.0.0.1 unpinned again" \
    reload "$PP_R" "$TMP/r.log" "$TMP/r.conf" "$(r_conf ', slow.test')"
# A reload that takes the port out of plain_ports: the request is
# refused under the new configuration (403), not sent to a port it no
# longer allows.
across_reload slow3 slow3.test ', slow.test' ""
check_eq "port no longer allowed while dialled: refused, 403" 403 \
    "$(cat "$TMP/slow3.out")"
check_log "... by the new plain_ports" "$TMP/r.log" "$(kv event blocked)" \
    "$(kv host slow3.test)" "plain_ports"
check_eq "port no longer allowed while dialled: nothing reached it" \
    "$n_q" "$(origin_count "$TMP/oq.log" request)"
check "reload: the port allowed again" \
    reload "$PP_R" "$TMP/r.log" "$TMP/r.conf" "$(r_conf ', slow.test')"

# A tunnel opened by address to an unpinned address carries plaintext to
# that address; a reload that pins the address ends that, for the next
# request of a tunnel already used and for the first of one opened before
# the reload: they are refused, and nothing more reaches the address.
cat >"$TMP/tunnels.py" <<'EOF'
import os, sys, time
from connect_client import open_tunnel, read_head, read_rest
port, target, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
GET = b"GET /hello HTTP/1.1\r\nHost: www.unpinned.test\r\n\r\n"
def answer(s):
    """The status line of one answer, its body read (Content-Length)."""
    head = read_head(s)
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            read_rest(s, size=int(v))
    return head.split(b"\r\n", 1)[0].decode() or "none"
(used, _), (fresh, _) = open_tunnel(port, target), open_tunnel(port, target)
used.sendall(GET)
print("before", answer(used), flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
used.sendall(GET)
fresh.sendall(GET)
print("used", answer(used))
print("fresh", answer(fresh))
EOF
spawn TUNNELS py "$TMP/tunnels.py" "$PR" "127.0.0.1:$OQ" "$TMP/go" \
    >"$TMP/tunnels.out"
wait_line "$TMP/tunnels.out" '^before ' >/dev/null
check_grep "a plaintext tunnel by address: the address answers" \
    '^before HTTP/1.1 200 ' "$TMP/tunnels.out"
check "reload: 127.0.0.1 is pinned now" \
    reload "$PP_R" "$TMP/r.log" "$TMP/r.conf" "$(r_conf ', 127.0.0.1')"
: >"$TMP/go"
wait_exit "$TUNNELS" 10
check_grep "pinned by a reload: the tunnel's next request is refused" \
    '^used HTTP/1.1 400 ' "$TMP/tunnels.out"
check_grep "pinned by a reload: a tunnel opened before it is refused" \
    '^fresh HTTP/1.1 400 ' "$TMP/tunnels.out"
check_eq "pinned by a reload: nothing more reached the address" 1 \
    "$(origin_count "$TMP/oq.log" request)"
check_log "pinned by a reload: logged blocked" "$TMP/r.log" \
    "$(kv event blocked)" "$(kv host www.unpinned.test)"

stop_pinproxy "$PP_R" "$TMP/r.log"
done_testing
