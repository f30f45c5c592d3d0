#!/bin/bash
# Pinned TCP forwarders ([forward:NAME]), end to end: a plaintext client
# on 127.0.0.1, pinproxy, and a TLS echo server with the test PKI. Right
# pins relay 8 MiB each way intact; wrong pins and a certificate for
# another name close the client with nothing relayed; a reload adds and
# removes forwarders while an open connection of a kept one goes on.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

ECHO="$top_srcdir/tests/tlsecho.py"

make_pki
pki_pin PIN_LEAF leaf
pki_pin PIN_INTER inter
pki_pin PIN_FOREIGN foreign-leaf
CLOSED=$(free_port)
echo "nameserver 127.0.0.1:$CLOSED" >"$TMP/resolv.conf"

EP=$(free_port)
start_server E "$TMP/echo.log" python3 "$ECHO" --port "$EP" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key"

# Upstreams that cut their TLS stream 100 kB into an answer: with a bare
# FIN (no close_notify), and with a reset.
BC=$(free_port)
start_server B_C "$TMP/bc.log" python3 "$BADORIGIN" --port "$BC" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --mode cut --after 100000
BR=$(free_port)
start_server B_R "$TMP/br.log" python3 "$BADORIGIN" --port "$BR" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --mode rst-body \
    --size 1000000 --after 100000

PP=$(free_port)
FG=$(free_port)
FC=$(free_port)
FX=$(free_port)
FW=$(free_port)
FN=$(free_port)
FI=$(free_port)
FR=$(free_port)
FS=$(free_port)
FV=$(free_port)

# conf EXTRA: the configuration with the forwarders good (right pins,
# api.test), wrong (wrong pins), name (SNI other.test), inline (pin lines)
# and EXTRA appended.
conf()
{
	cat <<CONF
[proxy]
listen = 127.0.0.1:$PP
trust = $PKI/root.pem
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
unpinned = pass
connect_ports = 443 $FG
plain_ports = 80 $FG

[pins:echo]
hosts = api.test
pin = $PIN_LEAF
pin = $PIN_INTER
connect_to = 127.0.0.1:$EP

[pins:wrong]
hosts = wrong.test
pin = $PIN_FOREIGN
pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
connect_to = 127.0.0.1:$EP

[forward:good]
listen = 127.0.0.1:$FG
upstream = 127.0.0.1:$EP
sni = api.test
pinset = echo

[forward:wrong]
listen = 127.0.0.1:$FW
upstream = 127.0.0.1:$EP
sni = api.test
pinset = wrong

[forward:name]
listen = 127.0.0.1:$FN
upstream = 127.0.0.1:$EP
sni = other.test
pinset = echo

$1
CONF
}
# one_forwarder PORT PROXY_EXTRA NAME LISTEN_PORT UPSTREAM FWD_EXTRA: a
# configuration of its own, the proxy on PORT and one forwarder.
one_forwarder()
{
	cat <<CONF
[proxy]
listen = 127.0.0.1:$1
trust = $PKI/root.pem
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
$2

[forward:$3]
listen = 127.0.0.1:$4
upstream = $5
$6
CONF
}
INLINE="[forward:inline]
listen = 127.0.0.1:$FI
upstream = 127.0.0.1:$EP
pin = $PIN_INTER
pin = $PIN_FOREIGN

[forward:self]
listen = 127.0.0.1:$FS
upstream = 127.0.0.1:$FS
pin = $PIN_INTER
pin = $PIN_FOREIGN

[forward:cut]
listen = 127.0.0.1:$FC
upstream = 127.0.0.1:$BC
pin = $PIN_INTER

[forward:rst]
listen = 127.0.0.1:$FX
upstream = 127.0.0.1:$BR
pin = $PIN_INTER

[forward:via]
listen = 127.0.0.1:$FV
upstream = api.test:$CLOSED
pinset = echo"

conf "$INLINE" >"$TMP/fwd.conf"
run check "$PINPROXY" -t -c "$TMP/fwd.conf"
check_rc "pinproxy -t accepts forward sections" 0 check
start_pinproxy P "$PP" "$TMP/fwd.conf" "$TMP/fwd.log" ||
    bail_out "pinproxy did not start"
wait_port "$FG" || bail_out "the forwarder good is not listening"
check_log "started: the forwarders' addresses, apart from the proxy's" \
    "$TMP/fwd.log" "$(kv event started)" "$(kv listen "127.0.0.1:$PP")" \
    "(^| )forward=127\.0\.0\.1:$FG,([^ ]*,)?127\.0\.0\.1:$FV( |$)"

# not_listening PORT: nothing accepts on 127.0.0.1:PORT.
not_listening()
{
	! listening 127.0.0.1 "$1"
}

# last_close_bytes: what the echo server's last closed connection got.
last_close_bytes()
{
	grep -F '"event": "close"' "$TMP/echo.log" | tail -n 1 |
	    grep -oE '"bytes": [0-9]+'
}

# echo_count EVENT: records of the echo server.
echo_count()
{
	origin_count "$TMP/echo.log" "$1"
}

# Right pins: 8 MiB up, the same 8 MiB echoed down.
python3 "$ECHO" --client "$FG" >"$TMP/big.out" 2>"$TMP/big.err"
sent=$(sed -n 's/^sent=//p' "$TMP/big.out")
got=$(sed -n 's/^got=\([0-9a-f]*\) .*/\1/p' "$TMP/big.out")
check_eq "right pins: 8 MiB come back through the forwarder" \
    "bytes=8388608" "$(grep -o 'bytes=[0-9]*' "$TMP/big.out")"
check "right pins: what came back hashes as what was sent" \
    test -n "$sent" -a "$sent" = "$got"
[ -s "$TMP/big.err" ] && diag "$(cat "$TMP/big.err")"
check_log "right pins: access line with mode=forward and status 200" \
    "$TMP/fwd.log" 'event=access' "$(kv mode forward)" "$(kv status 200)" \
    "$(kv host 127.0.0.1)" "$(kv bytes_up 8388608)" \
    "$(kv bytes_down 8388608)"

# A client that stops reading, then reads slowly: the relay waits on it
# while TLS records wait in OpenSSL's read-ahead buffer, and must still
# deliver every byte.
python3 "$ECHO" --client "$FG" --stall 1 >"$TMP/slow.out" 2>"$TMP/slow.err"
sent=$(sed -n 's/^sent=//p' "$TMP/slow.out")
got=$(sed -n 's/^got=\([0-9a-f]*\) .*/\1/p' "$TMP/slow.out")
check_eq "a slow reader gets all 8 MiB back" "bytes=8388608" \
    "$(grep -o 'bytes=[0-9]*' "$TMP/slow.out")"
check "a slow reader: what came back hashes as what was sent" \
    test -n "$sent" -a "$sent" = "$got"
[ -s "$TMP/slow.err" ] && diag "$(cat "$TMP/slow.err")"

# A half-close: a client that shuts down its sending side once it sent
# all (as nc -N does) still gets everything the upstream sends back, then
# the close; its end reaches the upstream as a close_notify, the clean end
# of a TLS stream, and the upstream's own end closes the client.
check_eq "half-closed client: the forwarder closes after the answer" \
    closed "$(half_closed halfecho "$FG" 'a request, then its end\n')"
check_eq "half-closed client: the whole echo came back" \
    "a request, then its end" "$(cat "$TMP/halfecho.resp")"
origin_settle "$TMP/echo.log"
check_eq "half-closed client: the upstream saw a close_notify" \
    '"end": "close_notify"' "$(grep -F '"event": "close"' "$TMP/echo.log" |
    tail -n 1 | grep -oE '"end": "[a-z_]+"')"

# An upstream that cuts its stream, without close_notify or with a reset:
# the forwarder's client has no TLS of its own to tell a cut from an end,
# so it is reset, never given a FIN after the part it got; but only once
# it took what pinproxy had read for it (here a client that reads nothing
# for 1 s through a small buffer: the 100 kB wait in the kernel).
check_eq "an upstream's bare FIN 100 kB into its answer: the client reads \
all 100 kB, then a reset" "reset 100000" \
    "$(stalled cutfin "$FC" 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' 1) \
$(py -c 'import sys
print(len(open(sys.argv[1], "rb").read().partition(b"\r\n\r\n")[2]))' \
    "$TMP/cutfin.resp")"
check_eq "an upstream's reset 100 kB into its answer: the client is reset" \
    reset "$(stalled cutrst "$FX" 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' 0)"

# A forwarder whose upstream is its own listener (a typo, or a name that
# resolves to this machine): one refusal, not a chain of connections to
# itself that fills max_connections and refills as the oldest time out.
n_acc=$(log_count "$TMP/fwd.log" "$(kv event access)" "$(kv mode forward)" \
    "$(kv status 502)")
got=$(python3 "$ECHO" --client "$FS" --send "to itself")
check_eq "a forwarder to itself: the client gets nothing back" "got=0" "$got"
check_log "a forwarder to itself: refused as a loop" "$TMP/fwd.log" \
    "$(kv event blocked)" "reason=\"loop: [^\"]* port $FS "
t_sleep 0.5
check_eq "a forwarder to itself: one access line, no chain" \
    $((n_acc + 1)) "$(log_count "$TMP/fwd.log" "$(kv event access)" \
    "$(kv mode forward)" "$(kv status 502)")"

# A forwarder's listener is pinproxy too: a CONNECT to it, or a plaintext
# request naming it, through the proxy is a loop (it was one hop more).
n_loop=$(log_count "$TMP/fwd.log" "$(kv event access)" "$(kv status 508)")
code=$(python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: x\r\n\r\n"
          % sys.argv[2].encode())
print(s.recv(12).decode())' "$PP" "$FG")
check_eq "CONNECT to a forwarder's listener through the proxy: 508" \
    "HTTP/1.1 508" "$code"
code=$(pcurl "$PP" -o /dev/null -w '%{http_code}' --max-time 10 \
    "http://127.0.0.1:$FG/" 2>/dev/null)
check_eq "a plaintext request to a forwarder's listener: 508" 508 "$code"
for (( i = 0; i < WAIT_TICKS; i++ )); do
	[ "$(log_count "$TMP/fwd.log" "$(kv event access)" "$(kv status 508)")" \
	    -ge $((n_loop + 2)) ] && break
	t_sleep 0.05
done
check_eq "both logged with status=508" $((n_loop + 2)) \
    "$(log_count "$TMP/fwd.log" "$(kv event access)" "$(kv status 508)")"

# Wrong pins: closed with nothing delivered either way.
origin_settle "$TMP/echo.log"
before=$(echo_count accept)
got=$(python3 "$ECHO" --client "$FW" --send "secret request")
check_eq "wrong pins: the client gets nothing back" "got=0" "$got"
check_log "wrong pins: pin_mismatch is logged" "$TMP/fwd.log" \
    'event=pin_mismatch' "$(kv host api.test)" "$(kv pinset wrong)" \
    "$(kv enforced yes)"
check_log "wrong pins: access line with status 502" "$TMP/fwd.log" \
    'event=access' "$(kv mode forward)" "$(kv status 502)" \
    "$(kv bytes_up 0)"
origin_settle "$TMP/echo.log"
check_eq "wrong pins: the echo server saw one connection" \
    $((before + 1)) "$(echo_count accept)"
check_eq "wrong pins: the echo server received 0 bytes" '"bytes": 0' \
    "$(last_close_bytes)"

# A certificate without the SNI's name: verify_failed, nothing relayed.
got=$(python3 "$ECHO" --client "$FN" --send "secret request")
check_eq "wrong name: the client gets nothing back" "got=0" "$got"
check_log "wrong name: verify_failed is logged" "$TMP/fwd.log" \
    'event=verify_failed' "$(kv host other.test)"
origin_settle "$TMP/echo.log"
check_eq "wrong name: the echo server received 0 bytes" '"bytes": 0' \
    "$(last_close_bytes)"

# Inline pin lines, and the IP address checked in the certificate.
python3 "$ECHO" --client "$FI" --size 65536 >"$TMP/inline.out"
check_eq "inline pins: 64 KiB come back" "bytes=65536" \
    "$(grep -o 'bytes=[0-9]*' "$TMP/inline.out")"

# The pin set's connect_to is dialled instead of the forwarder's upstream
# (a port nothing listens on, a name nothing resolves), whose host still
# names the server: SNI and certificate check for api.test.
python3 "$ECHO" --client "$FV" --size 65536 >"$TMP/via.out"
check_eq "a pin set's connect_to wins over the forwarder's upstream" \
    "bytes=65536" "$(grep -o 'bytes=[0-9]*' "$TMP/via.out")"

# pinproxy-pin --check dials each forwarder's upstream with its pins.
run pincheck env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" "$PINPROXY_PIN" \
    --check -c "$TMP/fwd.conf"
check_rc "pinproxy-pin --check fails on the wrong forwarders" 1 pincheck
check_grep "--check: the forwarder good matches" \
    "^api\.test:$EP  forward=good  pinset=echo  match" "$TMP/pincheck.out"
check_grep "--check: the forwarder wrong is a MISMATCH" \
    "^api\.test:$EP  forward=wrong  pinset=wrong  MISMATCH" "$TMP/pincheck.out"
check_grep "--check: the forwarder name fails verification" \
    "^other\.test:$EP  forward=name  pinset=echo  verify FAILED" \
    "$TMP/pincheck.out"
check_grep "--check: the inline pins match" \
    "^127\.0\.0\.1:$EP  forward=inline  pinset=forward:inline  match" \
    "$TMP/pincheck.out"
check_grep "--check: the forwarder via dials the pin set's connect_to" \
    "^api\.test:$CLOSED  forward=via  pinset=echo  match" \
    "$TMP/pincheck.out"

# A reload: an open connection of the kept forwarder good goes on, inline
# is removed, reload is added. The connection relays before the reload
# (one byte echoed): one still dialled or verified then would be closed.
exec 5<>"/dev/tcp/127.0.0.1/$FG"
printf 'r' >&5
check_eq "a connection opened before the reload relays" r \
    "$(timeout 10 head -c 1 <&5)"
conf "[forward:reload]
listen = 127.0.0.1:$FR
upstream = 127.0.0.1:$EP
sni = api.test
pinset = echo" >"$TMP/fwd.conf"
check "a reload adding and removing forwarders succeeds" \
    reload "$P" "$TMP/fwd.log"
check "after the reload the new forwarder listens" wait_port "$FR" 5
python3 "$ECHO" --client "$FR" --size 65536 >"$TMP/reload.out"
check_eq "after the reload the new forwarder relays" "bytes=65536" \
    "$(grep -o 'bytes=[0-9]*' "$TMP/reload.out")"
check "after the reload the removed forwarder no longer listens" \
    not_listening "$FI"
printf 'still here' >&5
line=$(timeout 10 head -c 10 <&5)
check_eq "a connection open across the reload still relays" \
    "still here" "$line"
exec 5>&-

# pinproxy -t: unknown pin set, listen clash, bad upstream.
cat >"$TMP/bad.conf" <<CONF
[proxy]
listen = 127.0.0.1:$PP

[forward:a]
listen = 127.0.0.1:$PP
upstream = 127.0.0.01:993
pinset = nosuch
CONF
run bad "$PINPROXY" -t -c "$TMP/bad.conf"
cat "$TMP/bad.out" "$TMP/bad.err" >"$TMP/bad.all"
check_rc "pinproxy -t refuses a bad forward section" 1 bad
check_grep "-t names the listen clash" \
    "bad.conf:5: .*listen 127.0.0.1:$PP is already used by \[proxy\] listen" \
    "$TMP/bad.all"
check_grep "-t names the bad upstream" 'bad.conf:6: bad value for upstream' \
    "$TMP/bad.all"
check_grep "-t names the unknown pin set" 'bad.conf:7: .*unknown pin set nosuch' \
    "$TMP/bad.all"

stop_pinproxy "$P" "$TMP/fwd.log"

# The end of a forwarded connection: an upstream sends 1 MiB and closes
# while the client, which has not read yet, sends 32 KiB more. pinproxy
# closes the client with those bytes unread: a lingering close (shut the
# write side, read and drop until the client closes) lets the whole MiB
# arrive, where a plain close sends a RST that makes the client's kernel
# drop what it had not read yet. (The server lives through wait_port's
# connection, which never speaks TLS.)
BP=$(free_port)
# Its request line may say how many bytes ("go N"), and "go N reset":
# send for at most 1.5 s, then reset the connection.
spawn BLAST_PID python3 -c 'import socket, ssl, struct, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen()
def one(raw):
    try:
        c = ctx.wrap_socket(raw, server_side=True)
        words = c.makefile("rb").readline().split()
        if words[2:] != [b"reset"]:
            c.sendall(b"b" * (int(words[1]) if len(words) > 1 else 1048576))
            c.unwrap().close()
            return
        c.settimeout(1.5)
        try:
            c.sendall(b"b" * int(words[1]))
        except OSError:
            pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()
    except OSError:
        pass
while True:
    threading.Thread(target=one, args=(l.accept()[0],), daemon=True).start()
' "$BP" "$PKI/chain.pem" "$PKI/leaf.key"
wait_port "$BP" || bail_out "the 1 MiB server is not listening"
LP=$(free_port)
LF=$(free_port)
# start_blast NAME EXTRA: pinproxy L with the forwarder blast to BP (the
# [proxy] lines EXTRA), its configuration and log $TMP/NAME.conf, .log.
start_blast()
{
	one_forwarder "$LP" "$2" blast "$LF" "127.0.0.1:$BP" "sni = api.test
pin = $PIN_LEAF" >"$TMP/$1.conf"
	start_pinproxy L "$LP" "$TMP/$1.conf" "$TMP/$1.log" ||
	    bail_out "pinproxy did not start with the $1 forwarder"
	wait_port "$LF" || bail_out "the forwarder blast is not listening"
}
start_blast linger ""
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"go\n")
time.sleep(0.3)
s.sendall(b"x" * 32768)
time.sleep(0.2)
n, error = 0, "none"
try:
    while True:
        d = s.recv(16384)
        if not d:
            break
        n += len(d)
        time.sleep(0.002)
except OSError as e:
    error = type(e).__name__
print("got=%d error=%s" % (n, error))' "$LF" >"$TMP/linger.out" 2>&1
check_eq "forwarder: bytes unread at the close, the whole 1 MiB, no reset" \
    "got=1048576 error=none" "$(cat "$TMP/linger.out")"
stop_pinproxy "$L" "$TMP/linger.log"

# A server that ends its side at once and reads nothing, behind 256 KiB
# the client sent and ended (they fit in the kernel's send buffer): the
# relay ends both ways, and the socket towards the server, which still
# holds them, is reset once the server took none for idle_timeout (1 s).
# Closed with a FIN, it would keep them for as long as the server
# answers the kernel's probes: here the server, reading 3 s later, got
# them all and its end of file.
SK=$(free_port)
start_server B_S "$TMP/bs.log" python3 "$BADORIGIN" --port "$SK" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --mode sink --after 3000
SKF=$(free_port)
SKP=$(free_port)
one_forwarder "$SKP" "idle_timeout = 1s" sink "$SKF" "127.0.0.1:$SK" \
    "sni = api.test
pin = $PIN_LEAF" >"$TMP/sink.conf"
start_pinproxy SKL "$SKP" "$TMP/sink.conf" "$TMP/sink.log" ||
    bail_out "pinproxy did not start with the sink forwarder"
wait_port "$SKF" || bail_out "the forwarder sink is not listening"
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"s" * 262144)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print("ended")' "$SKF" >"$TMP/sink.out" 2>&1
check_eq "forwarder: a client ends its 256 KiB to a server that reads none" \
    ended "$(cat "$TMP/sink.out")"
check "... the server, reading 3 s on, finds a reset" \
    wait_line "$TMP/bs.log" '"event": "sunk".*"end": "ConnectionResetError"'
stop_pinproxy "$SKL" "$TMP/sink.log"
# But a server whose own bytes are left unread when its relay ends (here
# its client, which read none, reset) gets the reset a close then makes,
# at once: a FIN after what the kernel holds for it would pass the
# client's cut upload for a whole one.
SS=$(free_port)
start_server B_SS "$TMP/bss.log" python3 "$BADORIGIN" --port "$SS" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --mode stream-sink \
    --after 3000
one_forwarder "$SKP" "idle_timeout = 10s" sink "$SKF" "127.0.0.1:$SS" \
    "sni = api.test
pin = $PIN_LEAF" >"$TMP/ssink.conf"
start_pinproxy SKL "$SKP" "$TMP/ssink.conf" "$TMP/ssink.log" ||
    bail_out "pinproxy did not start with the stream-sink forwarder"
wait_port "$SKF" || bail_out "the forwarder sink is not listening"
python3 -c 'import socket, struct, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"s" * 262144)
time.sleep(2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$SKF"
# The first connection was wait_port's, through the forwarder.
for (( i = 0; i < 200; i++ )); do
	[ "$(grep -c '"event": "sunk"' "$TMP/bss.log")" -ge 2 ] && break
	t_sleep 0.05
done
got=$(sed -n 's/.*"event": "sunk", "bytes": \([0-9]*\), "end": "\([A-Za-z]*\)".*/\2 \1/p' \
    "$TMP/bss.log" | tail -n 1)
check "... with a reset, at once: none of the upload the kernel held ($got)" \
    test "${got% *}" = ConnectionResetError -a "${got#* }" -lt 65536
stop_pinproxy "$SKL" "$TMP/ssink.log"

# An exchange's server that answers at once with close and ends its TLS
# side (close_notify, FIN), then reads the 64 KiB upload (which the
# kernel took whole) 3 s later:
# the close_notify pinproxy leaves unread does not cut it short; it gets
# the upload (all but what its own TLS shutdown read) and its end of file.
ESP=$(free_port)
start_server B_ES "$TMP/bes.log" python3 "$BADORIGIN" --port "$ESP" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --mode early-sink \
    --after 3000
cat >"$TMP/esink.conf" <<CONF
[proxy]
listen = 127.0.0.1:$SKP
trust = $PKI/root.pem
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
idle_timeout = 10s

[pins:sink]
hosts = api.test
pin = $PIN_LEAF
pin = $PIN_INTER
connect_to = 127.0.0.1:$ESP
CONF
start_pinproxy SKL "$SKP" "$TMP/esink.conf" "$TMP/esink.log" ||
    bail_out "pinproxy did not start with the early-sink origin"
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST http://api.test/ HTTP/1.1\r\nHost: api.test\r\n"
          b"Content-Length: 65536\r\n\r\n" + b"u" * 65536)
print(s.recv(4096).split(b"\r\n")[0].decode())' "$SKP" >"$TMP/esink.out" 2>&1
check_eq "a server that answers at once and ends its TLS side: the answer" \
    "HTTP/1.1 200 OK" "$(cat "$TMP/esink.out")"
check "... it reads the upload 3 s later, then its end of file" \
    wait_line "$TMP/bes.log" '"event": "sunk", "bytes": [3-9][0-9]{4}, "end": "eof"'
stop_pinproxy "$SKL" "$TMP/esink.log"

# A client that stops reading: idle_timeout ends the relay before the
# server's stream does, and what was on its way is dropped, so the
# client's connection is reset (a FIN could pass for the end of a stream
# that only the close delimits). So when the server resets while bytes
# wait for the client: the client's next byte finds the server gone, and
# the relay ends with them unwritten. Once the server's stream ended and
# its end reached the client, the client has all of it: no reset then.
# The three clients run at once. A client that took bytes when the idle
# time began (its kernel takes what fits in its buffers) is found stalled
# at most a quarter past idle_timeout (it took twice idle_timeout).
start_blast stall "idle_timeout = 3s"
stalled fwd-stall "$LF" 'go 20000000\n' 5 >"$TMP/fwd-stall.state" &
w1=$!
stalled fwd-ended "$LF" 'go 65536\n' 5 >"$TMP/fwd-ended.state" &
w2=$!
(
	t0=$(now_ms)
	state=$(poked fwd-reset "$LF" 'go 20000000 reset\n' 1)
	echo "$state $(( $(now_ms) - t0 ))"
) >"$TMP/fwd-reset.state" 2>&1 &
w3=$!
wait "$w1" "$w2" "$w3"
check_eq "forwarder: a client that stops reading mid-stream is reset at \
idle_timeout" reset "$(cat "$TMP/fwd-stall.state")"
check "forwarder: the stalled client got less than the stream" \
    test "$(stat -c %s "$TMP/fwd-stall.resp")" -lt 20000000
# Its access line (the request "go 20000000\n", 12 bytes): the relay's
# duration.
ms=$(log_lines "$TMP/stall.log" 'event=access' '(^| )bytes_up=12 ' |
    sed -n 's/.* ms=\([0-9]*\).*/\1/p')
check "forwarder: the stalled client is reset within a quarter past \
idle_timeout = 3s ($ms ms)" test "${ms:-9999}" -ge 3000 -a "${ms:-9999}" -lt 4500
check_eq "forwarder: the server's stream ended, the client silent past \
idle_timeout: all of it, then the close" "closed 65536" \
    "$(cat "$TMP/fwd-ended.state") $(stat -c %s "$TMP/fwd-ended.resp")"
read -r state ms <"$TMP/fwd-reset.state"
check_eq "forwarder: the server resets while bytes wait for a stalled \
client: the client is reset" reset "$state"
# Its byte at 1 s restarted idle_timeout: a reset before 4 s is the
# server's failure.
check "forwarder: that reset came with the server's failure, before \
idle_timeout ($ms ms)" test "${ms:-9999}" -lt 3800
stop_pinproxy "$L" "$TMP/stall.log"

# A client that reads slowly but steadily is not idle, however long its
# socket stays unwritable: with a large send buffer, the kernel wakes a
# writer only once a third of it is free, seconds apart at such a rate.
# Its acknowledgements move on, and it gets the whole stream (8 MB at
# about 2 MB/s through a 4 KiB receive buffer, idle_timeout 200ms).
start_blast steady "idle_timeout = 200ms"
out=$(slow_reader "$LF" 'go 8000000\n' 8000000 2000000)
check_eq "forwarder: a slow but steady reader past idle_timeout gets all \
of it, then the close" "closed 8000000" "$out"
stop_pinproxy "$L" "$TMP/steady.log"

# A forwarder out of descriptors: 64 of them, and clients whose upstream
# never answers its handshake (a listener that never accepts) hold two
# each. Its listener pauses as the proxy's do, logged once, instead of
# failing accept() in a busy loop. When one descriptor is left over, the
# client that gets it has no upstream socket and is refused, which frees
# it again; a silent client of the proxy's own listener then takes it
# (the forwarder's next clients come one at a time after it), so that
# the next accept() fails whatever pinproxy held before.
HOLE=$(free_port)
start_server HOLE_PID "$TMP/hole.log" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(256)
print("ready", flush=True)
time.sleep(120)' "$HOLE"

# A client that resets while its server is dialled (here one that never
# answers the handshake, which would wait for connect_timeout) ends its
# connection at once, the dial with it: its place in max_connections is
# free again. (A FIN is no such end: see the banner below.)
PY=$(free_port)
FY=$(free_port)
one_forwarder "$PY" "connect_timeout = 30s
shutdown_timeout = 1s" left "$FY" "127.0.0.1:$HOLE" "pin = $PIN_INTER" \
    >"$TMP/fy.conf"
start_pinproxy Y "$PY" "$TMP/fy.conf" "$TMP/fy.log" ||
    bail_out "pinproxy Y did not start"
wait_port "$FY" || bail_out "the forwarder left is not listening"
python3 -c '
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$FY"
check_log "forwarder: a client that reset during the dial ends at once \
(status 0)" "$TMP/fy.log" "$(kv event access)" "$(kv mode forward)" \
    "$(kv status 0)"
stop_pinproxy "$Y" "$TMP/fy.log"

# A client that resets before the verdict does not end the check with
# its connection: the handshake runs on alone, and the pin mismatch of a
# server that answers late (a second after the accept) is logged all the
# same.
SL=$(free_port)
start_server SLOW "$TMP/slow.log" python3 "$ECHO" --port "$SL" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key" --log "$TMP/slow.log" \
    --delay 1
PL=$(free_port)
FL=$(free_port)
one_forwarder "$PL" "log_level = debug" late "$FL" "127.0.0.1:$SL" \
    "sni = api.test
pin = $PIN_FOREIGN" >"$TMP/fl.conf"
start_pinproxy L "$PL" "$TMP/fl.conf" "$TMP/fl.log" ||
    bail_out "pinproxy L did not start"
# (Asked of the kernel: a probe connection would be such a client too.)
for (( i = 0; i < WAIT_TICKS; i++ )); do
	[ -n "$(ss -Hltn "sport = :$FL")" ] && break
	t_sleep 0.05
done
cport=$(python3 -c '
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(s.getsockname()[1], flush=True)
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$FL")
check_log "forwarder: a client that reset before the verdict ends then" \
    "$TMP/fl.log" "$(kv event access)" "$(kv mode forward)" \
    "$(kv client "127.0.0.1:$cport")" "$(kv status 0)"
ran="handshake for api.test:$SL that ran on without client 127.0.0.1:$cport"
ran+=" ended: no pin of \[pins:forward:late\]"
check_log "forwarder: ... its handshake ran on alone to the pin verdict" \
    "$TMP/fl.log" "$ran"
check_log "forwarder: ... and the pin mismatch is logged" "$TMP/fl.log" \
    "$(kv event pin_mismatch)" "$(kv host api.test)" \
    "$(kv pinset forward:late)"
check "forwarder: ... the server's connection closed" \
    wait_line "$TMP/slow.log" '"event": "close"'
check_eq "forwarder: ... the server received 0 bytes" '"bytes": 0' \
    "$(grep -F '"event": "close"' "$TMP/slow.log" | tail -n 1 |
    grep -oE '"bytes": [0-9]+')"
stop_pinproxy "$L" "$TMP/fl.log"
stop "$SLOW"

# A server that speaks first (a banner), and a client that shuts down its
# side at once and reads: the banner comes, then the end.
BN=$(free_port)
start_server BANNER "$TMP/banner.log" python3 "$BADORIGIN" --port "$BN" \
    --mode banner --cert "$PKI/chain.pem" --key "$PKI/leaf.key"
PB=$(free_port)
FB=$(free_port)
one_forwarder "$PB" "" banner "$FB" "127.0.0.1:$BN" "sni = api.test
pin = $PIN_INTER" >"$TMP/fb.conf"
start_pinproxy B "$PB" "$TMP/fb.conf" "$TMP/fb.log" ||
    bail_out "pinproxy B did not start"
wait_port "$FB" || bail_out "the forwarder banner is not listening"
got=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.shutdown(socket.SHUT_WR)
data = b""
try:
    while True:
        d = s.recv(1024)
        if not d:
            break
        data += d
except OSError:
    pass
sys.stdout.write(data.decode("latin-1").strip())' "$FB")
check_eq "forwarder: a client that half-closes at once gets the banner" \
    "220 banner ready" "$got"
stop_pinproxy "$B" "$TMP/fb.log"
stop "$BANNER"

PX=$(free_port)
FX=$(free_port)
one_forwarder "$PX" "connect_timeout = 30s
shutdown_timeout = 1s" hole "$FX" "127.0.0.1:$HOLE" "pin = $PIN_INTER
pin = $PIN_FOREIGN" >"$TMP/fx.conf"
start_pinproxy X "$PX" "$TMP/fx.conf" "$TMP/fx.log" prlimit --nofile=64:64 ||
    bail_out "pinproxy X did not start"
wait_port "$FX" || bail_out "the forwarder hole is not listening"
spawn HOLDERS python3 -c '
import socket, sys, time
held = []
def hold(port, n):
    for i in range(n):
        try:
            held.append(socket.create_connection(("127.0.0.1", port),
                                                 timeout=5))
        except OSError:
            break
hold(int(sys.argv[1]), 60)
hold(int(sys.argv[3]), 1)
# Connections wait in the kernel until pinproxy accepts them, in the
# order its loop sees its listeners, later on a busy machine: one more
# forwarder client every 0.2 s, so that one comes after the silent one.
for _ in range(40):
    time.sleep(0.2)
    hold(int(sys.argv[1]), 1)
print("held %d" % len(held), flush=True)
time.sleep(float(sys.argv[2]))' "$FX" 4 "$PX" >"$TMP/holders.out"
check_log "forwarder out of descriptors: event=accept_paused" "$TMP/fx.log" \
    "$(kv event accept_paused)"
t0=$(cpu_ticks "$X")
t_sleep 2
t1=$(cpu_ticks "$X")
hz=$(getconf CLK_TCK)
check "forwarder out of descriptors: no busy loop ($((t1 - t0)) ticks of \
CPU in 2 s at $hz Hz)" test $(( (t1 - t0) * 100 / hz )) -lt 30
# Measured: the held connections go (their holder would hold them on).
stop "$HOLDERS"
# The listener that never accepts goes: its queued connections are reset,
# the handshakes waiting on them fail, and X stops at once.
stop "$HOLE_PID"
stop_pinproxy "$X" "$TMP/fx.log"

# A stop while a forwarder's client waits in the kernel's queue (max_
# connections = 1, another relay holds the slot): the stop takes it in,
# and it is relayed within shutdown_timeout instead of reset.
# stop_conf PORT MAX FPORT...: a configuration listening on PORT, with
# max_connections = MAX and a forwarder to the echo server listening on
# each FPORT.
stop_conf()
{
	local f
	cat <<CONF
[proxy]
listen = 127.0.0.1:$1
trust = $PKI/root.pem
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
max_connections = $2
shutdown_timeout = 3s

[pins:echo]
hosts = api.test
pin = $PIN_LEAF
connect_to = 127.0.0.1:$EP

[forward:q]
upstream = api.test:443
pinset = echo
CONF
	for f in "${@:3}"; do
		echo "listen = 127.0.0.1:$f"
	done
}
PQ=$(free_port)
FQ=$(free_port)
stop_conf "$PQ" 1 "$FQ" >"$TMP/fq.conf"
check "pinproxy Q listens on 127.0.0.1:$PQ" \
    start_pinproxy PP_Q "$PQ" "$TMP/fq.conf" "$TMP/fq.log"
spawn QHOLD python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"h")
print("ready", s.recv(1).decode(), flush=True)
time.sleep(20)' "$FQ" >"$TMP/qhold.out"
wait_ready "$TMP/qhold.out"
check_log "a queued forwarder client at the stop: event=accept_paused" \
    "$TMP/fq.log" "$(kv event accept_paused)"
spawn QWAIT send_read "$FQ" queued >"$TMP/qwait.out" 2>&1
wait_ready "$TMP/qwait.out"
t_sleep 0.3
kill -TERM "$PP_Q"
wait "$QWAIT" 2>/dev/null
# Relayed, then cut at shutdown_timeout (the echo server never ends).
check_eq "a queued forwarder client at the stop: taken in and relayed" \
    "6 queued" "$(sed -n '2s/^\([0-9]*\) [A-Za-z]* /\1 /p' "$TMP/qwait.out")"
wait_exit "$PP_Q" 10
check_eq "... and pinproxy Q exits 0" 0 "$EXIT_RC"
stop "$QHOLD"

# The same with a slot freeing in the loop's turn of the stop, the client
# queued on a forwarder's second listener (tests/stop_queued.py): taking
# it resumes and pauses every listener, none of which may be closed yet.
PR=$(free_port)
FR1=$(free_port)
FR2=$(free_port)
stop_conf "$PR" 2 "$FR1" "$FR2" >"$TMP/fr.conf"
check "pinproxy R listens on 127.0.0.1:$PR" \
    start_pinproxy PP_R "$PR" "$TMP/fr.conf" "$TMP/fr.log"
python3 "$top_srcdir/tests/stop_queued.py" "$PP_R" "$PR" "$FR2" \
    >"$TMP/fr-queued.out" 2>&1
wait_exit "$PP_R" 10
check_eq "a slot freeing as the stop takes a forwarder's queued client: \
pinproxy R exits 0" 0 "$EXIT_RC"
check_log "... having logged event=stopped" "$TMP/fr.log" \
    "$(kv event stopped)"
done_testing
