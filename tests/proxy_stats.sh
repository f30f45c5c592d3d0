#!/bin/bash
# The stats_listen endpoint under hostile clients, end to end: it applies
# allow_clients, a flood of idle connections holds no more than a few
# descriptors and never keeps the proxy listener from serving, and an
# idle connection is closed after a few seconds. Clients use source
# addresses of 127.0.0.0/8 other than 127.0.0.1 (Linux routes all of it
# to the loopback); nothing leaves the machine.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# Proxy clients come from here; 127.0.0.1 is outside allow_clients.
ALLOWED=127.0.0.2

# scrape PORT SOURCE FILE: GET /metrics from SOURCE into FILE; prints the
# status, or the curl exit status when it failed.
scrape()
{
	local rc out
	out=$(curl -sS --noproxy '' --max-time 10 --interface "$2" -o "$3" \
	    -w '%{http_code}' "http://127.0.0.1:$1/metrics" 2>/dev/null)
	rc=$?
	if [ "$rc" != 0 ]; then
		echo "curl-exit-$rc"
	else
		echo "$out"
	fi
}

# hold PORT SOURCE N: spawn a process (PID in HOLD_PID) that opens N idle
# connections from SOURCE to 127.0.0.1:PORT and keeps them until it is
# stopped; wait until it says every connect returned.
hold()
{
	cat >"$TMP/hold.py" <<'PY'
import socket, sys, time
port, src, n, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        pass
    socks.append(s)
open(out, "w").write("ready\n")
while True:
    time.sleep(60)
PY
	spawn HOLD_PID python3 "$TMP/hold.py" "$1" "$2" "$3" "$TMP/hold.out"
	wait_ready "$TMP/hold.out"
}

# idle_close_ms PORT SOURCE LIMIT: connect from SOURCE, send nothing, and
# print how many ms pass until the server closes, or "open" after LIMIT s.
idle_close_ms()
{
	python3 - "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, src, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.socket()
s.bind((src, 0))
s.connect(("127.0.0.1", port))
s.settimeout(limit)
start = time.monotonic()
try:
    while s.recv(4096):
        pass
    print(int((time.monotonic() - start) * 1000))
except socket.timeout:
    print("open")
except OSError:
    print(int((time.monotonic() - start) * 1000))
PY
}

# through_proxy: a request from an allowed client through the proxy port.
through_proxy()
{
	pcurl "$PS" --interface "$ALLOWED" --max-time 10 \
	    http://api.test/close 2>&1
}

make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

OS=$(free_port)
start_origin O_S "$OS" "$TMP/os.log" --cert "$PKI/chain.pem" \
    --key "$PKI/leaf.key"
# No name is resolved here; a closed port makes sure of it.
echo "nameserver 127.0.0.1:$(free_port)" >"$TMP/resolv.conf"

PS=$(free_port)
SS=$(free_port)
cat >"$TMP/s.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PS
stats_listen = 127.0.0.1:$SS
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
allow_clients = $ALLOWED/32
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OS
EOF

# 64 descriptors: a flood that the stats listener accepted would exhaust
# them and pause the proxy listener.
check "pinproxy (64 descriptors) listens on 127.0.0.1:$PS" \
    start_pinproxy PP_S "$PS" "$TMP/s.conf" "$TMP/s.log" \
    prlimit --nofile=64:64
check_eq "an allowed client is served through the proxy" "$CLOSE_BODY" \
    "$(through_proxy)"
check_log "started: the stats address" "$TMP/s.log" "$(kv event started)" \
    "$(kv listen "127.0.0.1:$PS")" "$(kv stats "127.0.0.1:$SS")"

# 1. allow_clients applies to /metrics.

check_eq "stats: an allowed client reads /metrics" 200 \
    "$(scrape "$SS" "$ALLOWED" "$TMP/allowed.prom")"
check_grep "stats: the allowed client got the metrics" \
    '^pinproxy_connections_total ' "$TMP/allowed.prom"
got=$(scrape "$SS" 127.0.0.1 "$TMP/refused.prom")
if [ "$got" != 200 ] &&
    ! grep -q pinproxy_ "$TMP/refused.prom" 2>/dev/null; then
	ok "stats: a client outside allow_clients gets no metrics ($got)"
else
	not_ok "stats: a client outside allow_clients gets no metrics ($got)"
fi

# 2. 100 idle connections hold at most STATS_MAX_CONNS (16) descriptors,
# and cannot keep a scraper out: the oldest idle one makes room.

BASE=$(fd_count "$PP_S")
hold "$SS" "$ALLOWED" 100
for i in $(seq 100); do
	[ "$(fd_count "$PP_S")" -ge $((BASE + 16)) ] && break
	t_sleep 0.05
done
check_eq "stats flood: the proxy port still serves an allowed client" \
    "$CLOSE_BODY" "$(through_proxy)"
n=$(fd_count "$PP_S")
check "stats flood: $n descriptors, at most $BASE + 20" \
    test "$n" -le $((BASE + 20))
check "stats flood: pinproxy still runs" kill -0 "$PP_S"
check_eq "stats flood: /metrics answers a scraper all the same (an idle \
connection makes room)" 200 "$(scrape "$SS" "$ALLOWED" "$TMP/during.prom")"
stop "$HOLD_PID"
check_eq "stats flood over: /metrics answers again" 200 \
    "$(scrape "$SS" "$ALLOWED" "$TMP/after.prom")"
check_fds "stats flood over" "$PP_S" "$BASE"

# 3. An idle stats connection is closed after the timeout (5 s).

ms=$(idle_close_ms "$SS" "$ALLOWED" 12)
if [ "$ms" != open ] && [ "$ms" -le 7000 ]; then
	ok "stats: an idle connection is closed after $ms ms (at most 7 s)"
else
	not_ok "stats: an idle connection is closed within 7 s ($ms)"
fi

stop_pinproxy "$PP_S" "$TMP/s.log"

# A client that shuts down its sending side after its request (nc -N)
# and reads slowly gets the whole answer, not the part written before its
# end of file was seen: an instance with 1500 pin sets that expire makes
# /metrics 93 KB, more than libevent writes in one pass (16 KB).
PB=$(free_port)
SB=$(free_port)
{
	printf '[proxy]\nlisten = 127.0.0.1:%s\nstats_listen = 127.0.0.1:%s\n' \
	    "$PB" "$SB"
	printf 'ca_cert = %s\nca_key = %s\ntrust = %s\n' "$TMP/ca.pem" \
	    "$TMP/ca.key" "$PKI/root.pem"
	for i in $(seq 1500); do
		printf '\n[pins:set-%s]\nhosts = h%s.test\npin = %s\npin = %s\n' \
		    "$i" "$i" "$PIN_INTER" "$PIN_RSA"
		printf 'expires = 2099-12-31\n'
	done
} >"$TMP/big.conf"
check "pinproxy with 1500 pin sets listens on 127.0.0.1:$PB" \
    start_pinproxy PP_B "$PB" "$TMP/big.conf" "$TMP/big.log"
got=$(python3 - "$SB" <<'PY'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: stats\r\n\r\n")
s.shutdown(socket.SHUT_WR)
time.sleep(0.5)
data = b""
s.settimeout(5)
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
        time.sleep(0.0005)
except OSError:
    pass
head, _, body = data.partition(b"\r\n\r\n")
length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
          if l.lower().startswith(b"content-length:")]
print("complete" if length and len(body) == length[0] and
      length[0] > 65536 else "cut: %d of %s" % (len(body), length))
PY
)
check_eq "stats: a half-closed client reads the whole of a large /metrics" \
    complete "$got"
stop_pinproxy "$PP_B" "$TMP/big.log"
done_testing
