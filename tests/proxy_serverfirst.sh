#!/bin/bash
# The upstream of a CONNECT tunnel speaks or leaves before the client's
# first bytes. A server-first protocol (an SSH banner, here) gets its
# banner relayed at once when the client's own bytes would have got a
# blind tunnel: a CONNECT by name to an unpinned host under unpinned =
# pass. The server's bytes flow on, bounded by what the client takes,
# while the client's first bytes are still judged: a ClientHello for
# another name, pinned or not, or an HTTP request is refused and the
# server gets none of it; the client's silence after the banner counts
# against idle_timeout, not header_timeout. For a pinned host, under
# unpinned = verify and for a CONNECT by address, nothing of the banner
# reaches the client, pinproxy does not spin on the readable upstream,
# and the client's ClientHello is judged as ever. An upstream that closes
# or resets while the client is silent ends the client at once.
# header_timeout is a minute except for pinproxy t (300 ms, idle_timeout
# 2 s). Everything runs on 127.0.0.1 and in the scratch directory.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

BANNER='SSH-2.0-pinproxy-test'

make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

# The upstreams: MODE banner sends the banner at once, then echoes one
# read as "echo:" and the bytes; flood sends the banner and then up to
# 64 MiB as fast as it is taken, and logs how much (sent=); close and
# reset end the connection after 300 ms of silence, with a FIN or a RST.
# Each connection and what it read go to LOG as lines.
cat >"$TMP/server.py" <<'EOF'
import socket, struct, sys, threading, time

mode, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()


def note(text):
    with lock, open(log, "a") as f:
        f.write(text + "\n")


def serve(c):
    note("conn")
    if mode == "banner":
        c.sendall(sys.argv[4].encode() + b"\r\n")
        c.settimeout(30)
        try:
            data = c.recv(4096)
        except OSError:
            data = b""
        note("got=" + data.decode("latin-1").encode("unicode_escape")
             .decode("ascii"))
        if data:
            c.sendall(b"echo:" + data)
        time.sleep(0.2)
    elif mode == "flood":
        c.sendall(sys.argv[4].encode() + b"\r\n")
        sent, chunk = 0, b"x" * 65536
        try:
            while sent < 64 << 20:
                sent += c.send(chunk)
        except OSError:
            pass
        note("sent=%d" % sent)
    else:
        time.sleep(0.3)
        if mode == "reset":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
    c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# The client: CONNECT TARGET, the status, then what arrives within WAIT
# seconds of the 200 (first=none, first=closed or first=the bytes, and
# ms=); then with "line" one line and the answer to it (reply=), with
# "hello:SNI" a TLS ClientHello for SNI and what comes back (after=).
# After a banner: "late:SECS" is silent SECS seconds, then does as "line";
# "bhello:SNI" sends a ClientHello for SNI and "bhttp" an HTTP request,
# "bsmtp" an SMTP EHLO line, and tells the reply (reply=);
# "bbig:SNI" one of 8 KiB, for SNI, and tells how the answer starts,
# then tell what comes back (after=) and whether the proxy closed (end=);
# "silent:SECS" sends nothing and tells whether the proxy closed within
# SECS seconds (end=, with endms= since the banner); "stall:SECS" reads
# nothing more for SECS seconds, then closes; "drain:N" reads until N
# bytes came, for up to 5 s, and tells how many (drained=).
cat >"$TMP/client.py" <<'EOF'
import socket, ssl, sys, time
from connect_client import open_tunnel

proxy, target, wait, then = int(sys.argv[1]), sys.argv[2], \
    float(sys.argv[3]), sys.argv[4]


def esc(data):
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


def read_all(s, limit):
    return read_end(s, limit)[0]


def read_end(s, limit):
    data = b""
    s.settimeout(limit)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data, "closed"
            data += chunk
    except socket.timeout:
        return data, "open"
    except OSError:
        return data, "closed"


def client_hello(sni, big=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if big:
        # About 8 KiB of ALPN: more than one read of the socket takes.
        ctx.set_alpn_protocols(["p%02d" % i + "x" * 200 for i in range(40)])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


s, head = open_tunnel(proxy, target, None)
print("status=" + (head.split()[1].decode() if head else "none"))
t0 = time.monotonic()
s.settimeout(wait)
try:
    first = s.recv(4096)
    print("first=" + (esc(first) if first else "closed"))
except socket.timeout:
    first = None
    print("first=none")
except OSError:
    first = b""
    print("first=closed")
print("ms=%d" % ((time.monotonic() - t0) * 1000))
if then.startswith("late:") and first:
    time.sleep(float(then[5:]))
    then = "line"
if then == "line" and first:
    s.sendall(b"hello-from-client\n")
    print("reply=" + esc(read_all(s, 5)))
elif then.startswith("hello:") and first is None:
    s.sendall(client_hello(then[6:]))
    print("after=" + esc(read_all(s, 5)[:64]))
elif then.startswith("bbig:") and first:
    s.sendall(client_hello(then[5:], True))
    data, end = read_end(s, 5)
    print("after=" + esc(data[:8]))
elif then == "bsmtp" and first:
    s.sendall(b"EHLO client.test\r\n")
    print("reply=" + esc(read_all(s, 5)))
elif (then.startswith("bhello:") or then == "bhttp") and first:
    s.sendall(client_hello(then[7:]) if then != "bhttp" else
              b"GET / HTTP/1.1\r\nHost: banner.test\r\n\r\n")
    data, end = read_end(s, 5)
    print("after=" + esc(data[:64]))
    print("end=" + end)
elif then.startswith("drain:") and first:
    want, got = int(then[6:]), len(first)
    s.settimeout(5)
    try:
        while got < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass
    print("drained=%d" % min(got, want))
elif then.startswith("stall:") and first:
    time.sleep(float(then[6:]))
    s.close()
    print("stalled")
elif then.startswith("silent:") and first:
    data, end = read_end(s, float(then[7:]))
    print("after=" + esc(data[:64]))
    print("end=" + end)
    print("endms=%d" % ((time.monotonic() - t0) * 1000))
EOF

# upstream VAR MODE: start an upstream of MODE, its port in VAR, its log
# in $TMP/VAR.log (server.py ignores the --log start_server adds).
upstream()
{
	local port
	port=$(free_port)
	printf -v "$1" '%s' "$port"
	start_server "S_$1" "$TMP/$1.log" python3 "$TMP/server.py" "$2" \
	    "$port" "$TMP/$1.log" "$BANNER" ||
	    bail_out "the $2 upstream did not start"
}
upstream SB banner
upstream SH banner
upstream SF flood
upstream SC close
upstream SR reset
start_dnsd --map banner.test=127.0.0.1 --map quit.test=127.0.0.1

# conf PORT UNPINNED [HEADER_TIMEOUT IDLE_TIMEOUT]: a configuration with
# a minute of header_timeout (unless told) and two pinned names, one to
# the banner upstream, one to the closing one.
conf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$1
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
unpinned = $2
connect_ports = $SB $SH $SF $SC $SR
header_timeout = ${3:-60s}
idle_timeout = ${4:-5m}
shutdown_timeout = 2s
log_level = debug

[pins:banner]
hosts = pinned.test
pin = $PIN_RSA
pin = $PIN_INTER
connect_to = 127.0.0.1:$SB

[pins:closer]
hosts = pinclose.test
pin = $PIN_RSA
pin = $PIN_INTER
connect_to = 127.0.0.1:$SC
EOF
}
PA=$(free_port)
PV=$(free_port)
PT=$(free_port)
conf "$PA" pass >"$TMP/a.conf"
conf "$PV" verify >"$TMP/v.conf"
conf "$PT" pass 300ms 2s >"$TMP/t.conf"
start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log" ||
    bail_out "pinproxy -c $TMP/a.conf is not listening on $PA"
start_pinproxy PP_V "$PV" "$TMP/v.conf" "$TMP/v.log" ||
    bail_out "pinproxy -c $TMP/v.conf is not listening on $PV"
start_pinproxy PP_T "$PT" "$TMP/t.conf" "$TMP/t.log" ||
    bail_out "pinproxy -c $TMP/t.conf is not listening on $PT"

# client NAME PROXY TARGET WAIT THEN: client.py, its output in NAME.out.
client()
{
	local name=$1
	shift
	py "$TMP/client.py" "$@" >"$TMP/$name.out" 2>&1
}
# check_fast DESCRIPTION NAME: the first bytes or the close came within
# 3 s of the 200 (header_timeout is 60 s).
check_fast()
{
	local ms
	ms=$(out "$2" ms)
	check "$1 (${ms:-?} ms)" test "${ms:-99999}" -lt 3000
}
# check_held DESCRIPTION NAME AFTER: nothing of the banner reached the
# client within the wait, and what answered its ClientHello starts with
# AFTER (a pattern).
check_held()
{
	check_out "$1: nothing before the client's hello" "$2" first none
	case $(out "$2" after) in
	$3)	ok "$1: the hello is judged as ever" ;;
	*)	not_ok "$1: the hello is judged as ever"
		diag "$(cat "$TMP/$2.out")" ;;
	esac
}

# A server-first protocol through a CONNECT by name to an unpinned host.
client name "$PA" "banner.test:$SB" 10 line
check_out "by name, unpinned = pass: the bare 200" name status 200
check_out "by name, unpinned = pass: the banner is relayed" name first \
    "$BANNER\\r\\n"
check_fast "by name, unpinned = pass: the banner comes at once" name
check_out "by name, unpinned = pass: the client's reply reaches the server" \
    name reply 'echo:hello-from-client\n'
check "by name, unpinned = pass: the server got the client's line" \
    grep -qxF 'got=hello-from-client\n' "$TMP/SB.log"
check_log "by name, unpinned = pass: debug line, the upstream spoke first" \
    "$TMP/a.log" "client 127\\.0\\.0\\.1:[0-9]+: the upstream for banner\\.test:$SB sent bytes before the client's first"
check_log "by name, unpinned = pass: access line mode=tunnel status=200" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host banner.test)" "$(kv status 200)" \
    '(^| )bytes_down=[1-9][0-9]*( |$)'

# A ClientHello for the CONNECT host after the banner, of 8 KiB (more than
# one read of the client's socket takes), gets its blind tunnel: the
# server echoes its first bytes.
client big "$PA" "banner.test:$SB" 10 bbig:banner.test
check_out "banner, then an 8 KiB hello for the CONNECT host: relayed" big \
    after 'echo:\x16\x03\x01'

# After the banner the client's first bytes are judged all the same: a
# ClientHello whose SNI is not the CONNECT host's, be it unpinned or
# pinned, and an HTTP request are refused, and not one of their bytes
# reaches the server (which logs got= and nothing when the proxy closes).
# SH serves only these three.
client other-sni "$PA" "banner.test:$SH" 10 bhello:free.test
check_out "banner, then a hello for another name: the banner came" \
    other-sni first "$BANNER\\r\\n"
check_out "banner, then a hello for another name: refused with an alert" \
    other-sni after '\x15\x03\x03\x00\x02\x02p'
check_out "banner, then a hello for another name: closed" other-sni end closed
check_log "banner, then a hello for another name: blocked, SNI differs" \
    "$TMP/a.log" "$(kv event blocked)" "$(kv host banner.test)" \
    "SNI free.test differs from the CONNECT host"
client pinned-sni "$PA" "banner.test:$SH" 10 bhello:pinned.test
check_out "banner, then a hello for a pinned name: refused with an alert" \
    pinned-sni after '\x15\x03\x03\x00\x02\x02p'
check_out "banner, then a hello for a pinned name: closed" pinned-sni end \
    closed
check_log "banner, then a hello for a pinned name: blocked, SNI differs" \
    "$TMP/a.log" "$(kv event blocked)" "$(kv host banner.test)" \
    "SNI pinned.test differs from the CONNECT host"
client http "$PA" "banner.test:$SH" 10 bhttp
check_out "banner, then an HTTP request: closed, nothing answered" http \
    after ''
check_out "banner, then an HTTP request: closed" http end closed
check_log "banner, then an HTTP request: blocked" "$TMP/a.log" \
    "$(kv event blocked)" "$(kv host banner.test)" \
    "plaintext HTTP after the upstream spoke first"
check_log "banner, then an HTTP request: access line status=403" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host banner.test)" "$(kv status 403)"
for (( i = 0; i < WAIT_TICKS; i++ )); do
	[ "$(log_count "$TMP/SH.log" '^got=')" -ge 3 ] && break
	t_sleep 0.05
done
check_eq "refused after the banner: the server got nothing, thrice" \
    "3 3" "$(log_count "$TMP/SH.log" '^got=$') $(log_count "$TMP/SH.log" '^got=')"

# A command after the banner that starts like a request line (SMTP's
# "EHLO host": letters and a space) but names no HTTP version is not
# HTTP: the tunnel goes blind and the server answers it.
client smtp "$PA" "banner.test:$SH" 10 bsmtp
check_out "banner, then EHLO: relayed, the server answers it" smtp reply \
    'echo:EHLO client.test\r\n'

# What the server sends after its banner flows on while the client reads,
# whatever the size, long before any verdict.
client drain "$PA" "banner.test:$SF" 10 drain:4194304
check_out "flood after the banner, client reading: 4 MiB came" drain \
    drained 4194304

# A client that reads nothing after the banner holds up the server once
# RELAY_HIGH_WATER (128 KiB) waits for it in pinproxy, plus what the
# sockets' buffers take: far from the 64 MiB the server would send.
client stall "$PA" "banner.test:$SF" 10 stall:2
case $(out stall first) in
"$BANNER\\r\\n"*)
	ok "flood after the banner: the banner came first" ;;
*)	not_ok "flood after the banner: the banner came first"
	diag "$(head -c 300 "$TMP/stall.out")" ;;
esac
wait_log "$TMP/SF.log" '^sent='
sent=$(sed -n 's/^sent=//p' "$TMP/SF.log" | head -n 1)
check "flood, client stalled: the server was held up (${sent:-?} bytes)" \
    test "${sent:-67108864}" -lt 33554432

# After the banner, the client's silence is a server-first protocol's
# (a person typing a password), not a stalled hello: idle_timeout (2 s
# here), not header_timeout (300 ms), ends it.
client late "$PT" "banner.test:$SB" 10 late:1
check_out "silent 1 s after the banner: the banner came" late first \
    "$BANNER\\r\\n"
check_out "silent 1 s after the banner (header_timeout 300 ms): the reply" \
    late reply 'echo:hello-from-client\n'
client silent "$PT" "banner.test:$SB" 10 silent:8
check_out "silent after the banner: closed" silent end closed
ms=$(out silent endms)
check "silent after the banner: closed after idle_timeout, 2 s (${ms:-?} ms)" \
    test "${ms:-0}" -ge 1800 -a "${ms:-99999}" -lt 6000
check_log "silent after the banner: debug line names idle_timeout" \
    "$TMP/t.log" "no first bytes from the client within 2s \\(idle_timeout\\) of the upstream's for banner\\.test:$SB"
check_log "silent after the banner: access line status=408" \
    "$TMP/t.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host banner.test)" "$(kv status 408)"

# The same server by address: the SNI to come decides. An unpinned SNI
# gets its blind tunnel (the banner then), a pinned one interception,
# which fails on the banner with an alert. pinproxy does not spin on the
# readable upstream meanwhile (a loop would take about a tick per 10 ms).
ticks=$(cpu_ticks "$PP_A")
client ip-free "$PA" "127.0.0.1:$SB" 1.5 hello:free.test
spent=$(( $(cpu_ticks "$PP_A") - ticks ))
check_held "by address, unpinned SNI" ip-free "$BANNER*"
check "by address: pinproxy idles while the banner waits ($spent ticks)" \
    test "$spent" -lt 60
client ip-pinned "$PA" "127.0.0.1:$SB" 1 hello:pinned.test
check_held "by address, pinned SNI" ip-pinned '\\x15\\x03*'

# A pinned name, and any name under unpinned = verify: interception.
ticks=$(cpu_ticks "$PP_A")
client pinned "$PA" "pinned.test:$SB" 1.5 hello:pinned.test
spent=$(( $(cpu_ticks "$PP_A") - ticks ))
check_held "pinned name" pinned '\\x15\\x03*'
check "pinned name: pinproxy idles while the banner waits ($spent ticks)" \
    test "$spent" -lt 60
check_log "pinned name: the upstream handshake failed on the banner" \
    "$TMP/a.log" "$(kv host pinned.test)" "$(kv event upstream_error)"
client verify "$PV" "banner.test:$SB" 1 hello:banner.test
check_held "unpinned = verify" verify '\\x15\\x03*'

# An upstream that leaves while the client is silent ends the client now.
client close "$PA" "quit.test:$SC" 10 none
check_out "upstream closes first: the client is closed" close first closed
check_fast "upstream closes first: at once" close
check_log "upstream closes first: debug line says so" "$TMP/a.log" \
    "the upstream for quit\\.test:$SC closed before the client's first bytes"
check_log "upstream closes first: access line status=502" "$TMP/a.log" \
    "$(kv event access)" "$(kv mode tunnel)" "$(kv host quit.test)" \
    "$(kv status 502)"
client reset "$PA" "quit.test:$SR" 10 none
check_out "upstream resets first: the client is closed" reset first closed
check_fast "upstream resets first: at once" reset
check_log "upstream resets first: debug line says so" "$TMP/a.log" \
    "the upstream for quit\\.test:$SR failed before the client's first bytes"
client pinclose "$PA" "pinclose.test:$SC" 10 none
check_out "pinned upstream closes first: the client is closed" pinclose \
    first closed
check_fast "pinned upstream closes first: at once" pinclose
check_log "pinned upstream closes first: access line status=502" \
    "$TMP/a.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host pinclose.test)" "$(kv status 502)"

stop_pinproxy "$PP_A" "$TMP/a.log" "pinproxy a"
stop_pinproxy "$PP_V" "$TMP/v.log" "pinproxy v"
stop_pinproxy "$PP_T" "$TMP/t.log" "pinproxy t"

done_testing
