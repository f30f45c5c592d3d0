#!/bin/bash
# A kept upstream TLS session stands for the verdict of the full handshake
# that brought it (the resumed server sends no certificate): pinproxy
# offers it for an hour at most, and never once its clock went back. The
# clock here is pinproxy's own, moved under it by libfaketime (Debian's
# faketime package): the origin and the client keep the real one. Both
# places where a session is judged are driven: the offer when a hello is
# made, and the send of a hello made ahead (while the client's own was
# awaited), which goes or is dropped on the clock of that moment.
# Everything lives on 127.0.0.0/8.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

FAKETIME_LIB=
for f in /usr/lib/*/faketime/libfaketime.so.1 \
    /usr/lib/faketime/libfaketime.so.1; do
	[ -f "$f" ] && FAKETIME_LIB=$f && break
done
if [ -z "$FAKETIME_LIB" ]; then
	skip "session freshness: libfaketime (Debian's faketime) is not installed"
	done_testing
fi
if run_wrapped; then
	skip "session freshness: pinproxy runs under a wrapper, libfaketime cannot be preloaded into it"
	done_testing
fi

make_pki
PIN_INTER=$(sh "$MKPKI" pin "$PKI/inter.pem")

# clock OFFSET: pinproxy's clock from now on is the real one plus OFFSET
# seconds (libfaketime reads the file at every call).
CLOCK=$TMP/clock
clock()
{
	printf '%+d\n' "$1" >"$CLOCK"
}
# connect NAME ARGS...: a CONNECT to api.test and a GET of /hello through
# the proxy, its output in $TMP/NAME.out.
connect()
{
	local name=$1
	shift
	python3 "$CLIENT" --proxy "$P" --connect "api.test:443" \
	    --sni api.test --cafile "$TMP/ca.pem" --alpn http/1.1 \
	    --get /hello "$@" >"$TMP/$name.out" 2>&1
}
# handshakes: the origin's count of full and resumed handshakes so far.
handshakes()
{
	origin_settle "$TMP/o.log"
	echo "$(origin_count "$TMP/o.log" tls '"resumed": false') full," \
	    "$(origin_count "$TMP/o.log" tls '"resumed": true') resumed"
}
# ahead_then OFFSET NAME: a connection whose client, after the 200, waits
# until pinproxy made its upstream hello ahead, then sets the clock to
# OFFSET and sends its own hello.
ahead_then()
{
	local made pid
	made=$(log_count "$TMP/p.log" 'made ahead \(')
	rm -f "$TMP/go"
	connect "$2" --wait-for "$TMP/go" &
	pid=$!
	wait_count "$TMP/p.log" $((made + 1)) 'made ahead \(' ||
	    diag "no hello was made ahead for $2"
	clock "$1"
	touch "$TMP/go"
	wait "$pid"
}
stale_drops()
{
	log_count "$TMP/p.log" 'made ahead offers a session no longer fresh'
}

O=$(free_port)
OS=$(free_port)
SLOW=$(free_port)
P=$(free_port)
cat >"$TMP/p.conf" <<EOC
[proxy]
listen = 127.0.0.1:$P
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
log_level = debug
connect_ports = 443
connect_timeout = 3s

[pins:api]
hosts = api.test
pin = $PIN_INTER
connect_to = 127.0.0.1:$O

[pins:slow]
hosts = slow.test
pin = $PIN_INTER
port = $SLOW

[pins:short]
hosts = short.test
pin = $PIN_INTER
connect_to = 127.0.0.1:$OS
EOC
# slow.test's name is answered 2 s late, and its server takes the TCP
# connection (the kernel's backlog) but never a byte of TLS.
start_dnsd --map slow.test=127.0.0.1 --slow slow.test=2
spawn SLOW_PID python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
time.sleep(120)' "$SLOW" >"$TMP/slow.out"
wait_ready "$TMP/slow.out" || bail_out "the silent server did not start"
start_origin O_PID "$O" "$TMP/o.log" --cert "$PKI/chain.pem" \
    --key "$PKI/leaf.key" --alpn http/1.1
# short.test's server has a leaf that ends a day from now.
openssl ecparam -genkey -name prime256v1 -noout -out "$TMP/short.key" &&
openssl req -new -key "$TMP/short.key" -subj /CN=short.test \
    -out "$TMP/short.csr" &&
printf '%s\n' 'subjectAltName=DNS:short.test' \
    'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' \
    >"$TMP/short.ext" &&
openssl x509 -req -in "$TMP/short.csr" -CA "$PKI/inter.pem" \
    -CAkey "$PKI/inter.key" -set_serial 4242 -days 1 \
    -extfile "$TMP/short.ext" -out "$TMP/short.pem" 2>/dev/null &&
cat "$TMP/short.pem" "$PKI/inter.pem" >"$TMP/short-chain.pem" ||
    bail_out "openssl could not make short.test's leaf"
start_origin O_SHORT "$OS" "$TMP/os.log" --cert "$TMP/short-chain.pem" \
    --key "$TMP/short.key" --alpn http/1.1
# Ten minutes ahead at first, so that going back later stays after the
# test PKI's notBefore (made a moment ago on the real clock).
clock 600
start_pinproxy PP "$P" "$TMP/p.conf" "$TMP/p.log" \
    LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$CLOCK" \
    FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" ||
    bail_out "pinproxy is not listening on $P"
# The CA pinproxy made at its start is dated a day before its clock.
nb=$(openssl x509 -noout -startdate -in "$TMP/ca.pem" 2>/dev/null)
nb=$(date -u -d "${nb#notBefore=}" +%s 2>/dev/null || echo 0)
ahead=$(( nb + 86400 - $(date +%s) ))
check "pinproxy runs ten minutes ahead (its CA's date: ${ahead} s ahead)" \
    test "$ahead" -ge 540 -a "$ahead" -le 600

# Under the moved clock as without it: a full handshake, then a resumed
# one.
connect first
check_out "first connection: the origin's body" first body \
    'hello from origin\n'
connect second
check_out "second connection: the origin's body" second body \
    'hello from origin\n'
check_eq "the first upstream handshake is full, the second resumes" \
    "1 full, 1 resumed" "$(handshakes)"

# An hour and a bit later: the kept session (made by the second
# connection's handshake, a moment ago) is not offered, though OpenSSL
# would still offer it (the ticket's lifetime is two hours).
clock $((600 + 3700))
connect later
check_out "an hour later: the origin's body" later body 'hello from origin\n'
check_eq "an hour later: the kept session is not offered, the handshake is full" \
    "2 full, 1 resumed" "$(handshakes)"
connect again
check_eq "... and the session that full handshake brought resumes" \
    "2 full, 2 resumed" "$(handshakes)"

# A hello made ahead offered a fresh session; the clock passes the hour
# before the client's hello comes: that hello is dropped unsent, and the
# one made then offers nothing.
drops=$(stale_drops)
ahead_then $((600 + 3700 + 3700)) ahead-later
check_out "a hello made ahead, then an hour: the origin's body" ahead-later \
    body 'hello from origin\n'
check_eq "... the hello made ahead was dropped unsent, stale" \
    $((drops + 1)) "$(stale_drops)"
check_eq "... and the handshake is full" "3 full, 2 resumed" "$(handshakes)"

# The same when the clock goes back (by 1 hour 2 minutes, still after the
# last handshake's on the real clock): a session from the future is not
# offered.
connect keep
check_eq "a new session kept" "3 full, 3 resumed" "$(handshakes)"
drops=$(stale_drops)
ahead_then $((600 + 3700)) ahead-back
check_out "a hello made ahead, then the clock back: the origin's body" \
    ahead-back body 'hello from origin\n'
check_eq "... the hello made ahead was dropped unsent" $((drops + 1)) \
    "$(stale_drops)"
check_eq "... and the handshake is full" "4 full, 3 resumed" "$(handshakes)"

# A leaf forged while the clock was two days ahead is dated a day ahead
# of the real clock (leaves are backdated a day): no client takes it.
# Once the clock is set right, it is not served from the cache again: a
# new one is forged. (The reload empties the cache of api.test's leaf.)
clock $((600 + 2 * 86400))
reload "$PP" "$TMP/p.log" || diag "the reload two days ahead failed"
connect future
check_out "a leaf forged two days ahead: the client refuses it" future tls \
    error
clock 600
connect set-right
check_out "the clock set right: a new leaf, the origin's body" set-right \
    body 'hello from origin\n'

# Deadlines run on the monotonic clock: the wall clock set back an hour
# while a refused CONNECT lingers (its client then sends a byte, which
# the linger reads and drops) does not keep the socket an hour longer.
# The client has the 403 and the FIN at once, then writes a byte every
# quarter second: once the linger's 2 s are over, one finds the socket
# closed, and the reset it brings fails a write after it.
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"CONNECT api.test:80 HTTP/1.1\r\nHost: api.test:80\r\n\r\n")
d = b""
while b"\r\n\r\n" not in d:
    d += s.recv(4096)
open(sys.argv[2], "w").write("-3600\n")
s.sendall(b"x")
while s.recv(4096):
    pass
t0 = time.monotonic()
end = "held"
while time.monotonic() - t0 < 10:
    time.sleep(0.25)
    try:
        s.sendall(b"y")
    except OSError:
        end = "reset"
        break
print(d.split(b"\r\n")[0].decode(), end, round(time.monotonic() - t0))
' "$P" "$CLOCK" >"$TMP/linger-back.out" 2>&1
read -r _ status _ end secs <"$TMP/linger-back.out"
check "a lingering refusal, the clock set back an hour: closed after the \
linger's 2 s ($(cat "$TMP/linger-back.out"))" \
    test "$status" = 403 -a "$end" = reset -a "${secs:-99}" -le 6
clock 600

check_eq "no pin mismatch or refusal was logged" 0 \
    "$(log_count "$TMP/p.log" 'event=(pin_mismatch|verify_failed|upstream_error)')"

# Deadlines run on the monotonic clock. connect_timeout (3 s) covers the
# DNS answer, the TCP connection and the TLS handshake together: the wall
# clock set back an hour while the name is resolved does not give the
# handshake that follows an hour more.
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://slow.test/ HTTP/1.1\r\nHost: slow.test\r\n\r\n")
t0 = time.monotonic()
time.sleep(1)
open(sys.argv[2], "w").write("-3600\n")
d = b""
try:
    while b"\r\n" not in d:
        b = s.recv(4096)
        if not b:
            break
        d += b
except OSError:
    pass
print(d.split(b"\r\n")[0].decode() or "none", round(time.monotonic() - t0))
' "$P" "$CLOCK" >"$TMP/dial-back.out" 2>&1
status=$(awk '{ print $2 }' "$TMP/dial-back.out")
secs=$(awk '{ print $NF }' "$TMP/dial-back.out")
check "a dial, the clock set back an hour during its DNS answer: 504 at \
connect_timeout ($(cat "$TMP/dial-back.out"))" \
    test "$status" = 504 -a "${secs:-99}" -le 5
clock 600

# A kept session stands for its chain only until that chain ends: half an
# hour before short.test's leaf ends, a full handshake; ten minutes after
# its end (within the hour), its session is not offered, and the full
# handshake finds the leaf expired.
# short NAME: connect's CONNECT and GET, to short.test.
short()
{
	connect "$1" --connect short.test:443 --sni short.test
}
# plainget NAME: a plaintext GET of http://short.test/hello through the
# proxy, which goes over pinned TLS (and leaves its upstream connection
# in the pool); the status line in $TMP/NAME.out. A 200 is read to the
# end of its body, which pinproxy sends only once the exchange ended and
# its upstream connection went back to the pool: the next GET finds it
# there, not still in use.
plainget()
{
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://short.test/hello HTTP/1.1\r\nHost: short.test\r\n\r\n")
d = b""
while b"\r\n" not in d or (d.startswith(b"HTTP/1.1 200 ") and
                            not d.endswith(b"hello from origin\n")):
    b = s.recv(4096)
    if not b:
        break
    d += b
print(d.split(b"\r\n")[0].decode())' "$P" >"$TMP/$1.out" 2>&1
}
clock $((86400 - 1800))
short short-before
check_out "short.test half an hour before its leaf ends: the origin's body" \
    short-before body 'hello from origin\n'
plainget plain-before
check_eq "... a plaintext GET for it: 200" "HTTP/1.1 200 OK" \
    "$(cat "$TMP/plain-before.out")"
origin_settle "$TMP/os.log"
resumed=$(origin_count "$TMP/os.log" tls '"resumed": true')
clock $((86400 + 600))
plainget plain-after
check_eq "ten minutes after its end: the upstream connection kept in the \
pool is not used, the new one's handshake finds the leaf expired: 502" \
    "HTTP/1.1 502 Bad Gateway" "$(cat "$TMP/plain-after.out")"
short short-after
check_out "ten minutes after its end: the session is not offered, the \
handshake refused" short-after tls alert
origin_settle "$TMP/os.log"
check_eq "... short.test's server resumed no session since" "$resumed" \
    "$(origin_count "$TMP/os.log" tls '"resumed": true')"
check_log "... verify_failed: the certificate has expired" "$TMP/p.log" \
    "$(kv event verify_failed)" "$(kv host short.test)" \
    "certificate has expired"
stop_pinproxy "$PP" "$TMP/p.log"
done_testing
