#!/bin/bash
# pinproxy's resources under load end to end: connect_timeout cutting a
# slow DNS answer short, a thousand silent clients closed at
# header_timeout with memory and descriptors given back, the connection
# limit pausing and resuming accept, and running out of descriptors
# without a busy loop. After each, pinproxy must still serve, and at the
# end hold the descriptors it started with and exit 0. Everything runs on
# 127.0.0.1.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

IDLE_CONNS=1000

small_quarantine

# The thousand silent clients need descriptors of their own.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
	ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
fi

# Idle clients: open N connections to PORT that never send a byte, print
# "ready N" (how many connected), and report each end of file from the
# server as "eof I MS" (MS since the first connect). Closes connection 0
# when the file DIR/close appears, all of them when DIR/closeall does;
# ends when every connection has ended or after LIMIT seconds.
cat >"$TMP/holder.py" <<'EOF'
import os, select, socket, sys, time
port, n, flagdir, limit = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                           float(sys.argv[4]))
start = time.monotonic()
socks = {}
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    socks[s.fileno()] = (i, s)
poll = select.poll()
for fd in socks:
    poll.register(fd, select.POLLOUT)
pending = set(socks)
connected = 0
while pending and time.monotonic() - start < 5:
    for fd, ev in poll.poll(100):
        if fd in pending:
            pending.discard(fd)
            i, s = socks[fd]
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
            poll.modify(fd, select.POLLIN)
print("ready %d" % connected, flush=True)
closed_one = False
while socks and time.monotonic() - start < limit:
    if os.path.exists(os.path.join(flagdir, "closeall")):
        for i, s in socks.values():
            s.close()
        break
    if not closed_one and os.path.exists(os.path.join(flagdir, "close")):
        closed_one = True
        for fd, (i, s) in list(socks.items()):
            if i == 0:
                poll.unregister(fd)
                s.close()
                del socks[fd]
    for fd, ev in poll.poll(20):
        if fd not in socks:
            continue
        i, s = socks[fd]
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            print("eof %d %d" % (i, (time.monotonic() - start) * 1000),
                  flush=True)
            poll.unregister(fd)
            s.close()
            del socks[fd]
EOF

# hold NAME PORT N LIMIT: start the idle clients in the background (PID in
# HOLD_PID, output in $TMP/NAME.out, flags in $TMP/NAME.d) and wait for
# them to connect.
hold()
{
	local i
	mkdir -p "$TMP/$1.d"
	spawn HOLD_PID python3 "$TMP/holder.py" "$2" "$3" "$TMP/$1.d" "$4" \
	    >"$TMP/$1.out"
	for i in $(seq 200); do
		grep -q '^ready' "$TMP/$1.out" 2>/dev/null && return 0
		t_sleep 0.05
	done
	return 1
}

# The PKI: the default set of tests/mkpki.sh and a leaf for the hosts of
# the origin.
make_pki multi "$(dns_sans api.test slowdns.test),IP:127.0.0.1" inter
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

# The origin, and dnsd, which answers slowdns.test after 1 s.
OM=$(free_port)
start_server O_M "$TMP/om.log" python3 "$ORIGIN" --port "$OM" \
    --cert "$PKI/multi-chain.pem" --key "$PKI/multi.key"
start_dnsd --map slowdns.test=127.0.0.1 --slow slowdns.test=1

# conf PORT NAME EXTRA: a configuration listening on PORT with the CA
# files NAME, the [proxy] lines EXTRA and a pin set for each host.
conf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$1
ca_cert = $TMP/ca-$2.pem
ca_key = $TMP/ca-$2.key
trust = $PKI/root.pem
unpinned = pass
shutdown_timeout = 2s
$3

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-slowdns]
hosts = slowdns.test
pin = $PIN_INTER
pin = $PIN_RSA
port = $OM
EOF
}

# Instance G: connect_timeout = 500ms, header_timeout = 1s, and
# descriptors for a thousand clients.
PG=$(free_port)
conf "$PG" g "connect_timeout = 500ms
header_timeout = 1s" >"$TMP/g.conf"
check "pinproxy G listens on 127.0.0.1:$PG" \
    start_pinproxy PP_G "$PG" "$TMP/g.conf" "$TMP/g.log" \
    prlimit --nofile=4096:4096
alive "G start" "$PP_G" "$PG"
fds_rest=$(fd_count "$PP_G")

start=$(now_ms)
code=$(fetch slowdns1 "$PG" http://slowdns.test/close)
ms=$(( $(now_ms) - start ))
check_eq "DNS answers in 1 s, connect_timeout = 500ms: 504" 504 "$code"
check_eq "DNS answers in 1 s, connect_timeout = 500ms: details=timeout" \
    'pinproxy; error=connection_timeout; details="timeout"' \
    "$(header "$TMP/slowdns1.head" Proxy-Status)"
check "DNS answers in 1 s, connect_timeout = 500ms: after about 500 ms \
($ms ms)" test "$ms" -ge 450 -a "$ms" -lt 2000
check_log "connect_timeout = 500ms: the error says within 500ms" \
    "$TMP/g.log" "$(kv event upstream_error)" "$(kv host slowdns.test)" \
    'within 500ms'
alive "slow DNS past connect_timeout" "$PP_G" "$PG"

# A thousand connections that send nothing, with header_timeout = 1s:
# all closed in time, memory and descriptors back where they were (the
# event loop keeps tables sized for the most descriptors it saw, and
# sanitizers add their own bookkeeping: some slack). AddressSanitizer
# also keeps freed memory in quarantine instead of reusing it, about
# 1 MiB per round of a thousand here, so a round may grow by that much.
RSS_SLACK_KB=4096
ROUND_SLACK_KB=1024
if built_with_sanitizers; then
	RSS_SLACK_KB=8192
	ROUND_SLACK_KB=2048
fi
# The baseline once the lookup pinproxy gave up on has ended too.
for (( i = 0; i < 100; i++ )); do
	[ "$(fd_count "$PP_G")" -le "$fds_rest" ] && break
	t_sleep 0.05
done
BASE_G=$(fd_count "$PP_G")
rss0=$(rss_kb "$PP_G")
what="$IDLE_CONNS silent clients"
for round in 1 2 3; do
	hold "idle$round" "$PG" "$IDLE_CONNS" 12
	connected=$(sed -n 's/^ready //p' "$TMP/idle$round.out")
	rss_held=$(rss_kb "$PP_G")
	wait "$HOLD_PID"
	eofs=$(grep -c '^eof' "$TMP/idle$round.out")
	last=$(awk '/^eof/ { if ($3 > m) m = $3 } END { print m + 0 }' \
	    "$TMP/idle$round.out")
	first=$(awk '/^eof/ { if (m == "" || $3 < m) m = $3 }
	    END { print m + 0 }' "$TMP/idle$round.out")
	check_eq "$what (round $round): all connected" \
	    "$IDLE_CONNS" "$connected"
	check_eq "$what (round $round): all closed by pinproxy" \
	    "$IDLE_CONNS" "$eofs"
	check "$what (round $round): closed between 1 s and 3 s \
($first..$last ms)" \
	    test "$first" -ge 900 -a "$last" -le 3000
	check_fds "$what (round $round)" "$PP_G" "$BASE_G"
	t_sleep 1
	eval "rss$round=\$(rss_kb \"\$PP_G\")"
	diag "VmRSS: $rss0 KiB at rest, $rss_held KiB holding them, \
$(eval echo "\$rss$round") KiB after round $round"
done
if run_wrapped; then
	# Under valgrind the resident memory is valgrind's own.
	skip "$what: VmRSS back near the baseline (the daemon runs wrapped)"
	skip "$what: a third round does not grow VmRSS (wrapped)"
else
	check "$what: VmRSS within $((RSS_SLACK_KB / 1024)) MiB of the \
baseline after they left ($rss0 -> $rss3 KiB)" \
	    test $((rss3 - rss0)) -lt "$RSS_SLACK_KB"
	check "$what: a third round does not grow VmRSS ($rss2 -> $rss3 KiB)" \
	    test $((rss3 - rss2)) -lt "$ROUND_SLACK_KB"
fi
alive "$IDLE_CONNS silent clients" "$PP_G" "$PG"

# Instance R: a connection holds the configuration generation it began
# under, and after a reload that generation lives on with it. Forty
# reloads, each after a blind tunnel to a sink that holds it open: the
# generations kept cost some 40 KiB each (their TLS context and tables;
# twice that under the sanitizers), not the 250 KiB (330) they did while
# each kept room for 256 TLS sessions it would never keep again.
# Allowed: 160 KiB each.
GENS=40
SINK=$(free_port)
spawn SINK_PID python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
print("ready", flush=True)
keep = []
while True:
    keep.append(s.accept()[0])' "$SINK" >"$TMP/sink.out"
wait_ready "$TMP/sink.out"
PR=$(free_port)
conf "$PR" r "connect_ports = $SINK
idle_timeout = 2m" >"$TMP/r.conf"
check "pinproxy R listens on 127.0.0.1:$PR" \
    start_pinproxy PP_R "$PR" "$TMP/r.conf" "$TMP/r.log"
# A tunnel each time a line comes; "N" once the N-th is open.
coproc TUNNELS {
	exec python3 -c '
import socket, sys
pp, sink = int(sys.argv[1]), int(sys.argv[2])
keep = []
for line in sys.stdin:
    s = socket.create_connection(("127.0.0.1", pp), timeout=10)
    s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
              % (sink, sink))
    d = b""
    while b"\r\n\r\n" not in d:
        d += s.recv(100)
    s.sendall(b"\0\1\2\3\4\5\6\7")
    keep.append(s)
    print(len(keep), flush=True)' "$PR" "$SINK"
}
T_PIDS="$T_PIDS $TUNNELS_PID"
# held_generations N: N times, a tunnel, then a reload; how many reloads
# succeeded.
held_generations()
{
	local i n ok=0
	for (( i = 0; i < $1; i++ )); do
		echo >&"${TUNNELS[1]}"
		read -r -t 10 n <&"${TUNNELS[0]}" || break
		reload "$PP_R" "$TMP/r.log" && ok=$((ok + 1))
	done
	echo "$ok"
}
held_generations 3 >/dev/null
t_sleep 0.5
rss_a=$(rss_kb "$PP_R")
check_eq "$GENS reloads, each after a tunnel that stays open" "$GENS" \
    "$(held_generations "$GENS")"
t_sleep 0.5
rss_b=$(rss_kb "$PP_R")
if run_wrapped; then
	skip "$GENS generations held by tunnels: VmRSS (the daemon runs wrapped)"
else
	check "$GENS generations held by tunnels: VmRSS grew less than \
$((GENS * 160)) KiB ($rss_a -> $rss_b KiB)" \
	    test $((rss_b - rss_a)) -lt $((GENS * 160))
fi
stop "$TUNNELS_PID"
stop_pinproxy "$PP_R" "$TMP/r.log"

# Instance M: max_connections = 5. Five idle clients hold every slot; a
# sixth request waits until one of them leaves.
PM=$(free_port)
conf "$PM" m "max_connections = 5" >"$TMP/m.conf"
check "pinproxy M listens on 127.0.0.1:$PM" \
    start_pinproxy PP_M "$PM" "$TMP/m.conf" "$TMP/m.log"
alive "M start" "$PP_M" "$PM"
BASE_M=$(fd_baseline "$PP_M")
hold full "$PM" 5 30
check_log "max_connections = 5: event=accept_paused" "$TMP/m.log" \
    "$(kv event accept_paused)"
start=$(now_ms)
spawn SIXTH curl -sS --noproxy '' -x "http://127.0.0.1:$PM" --max-time 10 \
    -o "$TMP/sixth.body" http://api.test/close
t_sleep 1
check "max_connections = 5: the sixth request waits over 1 s" \
    kill -0 "$SIXTH"
touch "$TMP/full.d/close"
wait "$SIXTH"
rc=$?
ms=$(( $(now_ms) - start ))
check_eq "max_connections = 5: the sixth request is served once a slot frees" \
    "$CLOSE_BODY" "$(cat "$TMP/sixth.body" 2>/dev/null)"
check "max_connections = 5: curl succeeded (exit $rc) within 3 s ($ms ms)" \
    test "$rc" = 0 -a "$ms" -lt 3000
check_log "max_connections = 5: event=accept_resumed" "$TMP/m.log" \
    "$(kv event accept_resumed)"
touch "$TMP/full.d/closeall"
wait "$HOLD_PID"
alive "max_connections = 5" "$PP_M" "$PM"
check_fds "max_connections = 5" "$PP_M" "$BASE_M"

# A reload that raises max_connections while accepting is paused lets a
# waiting client in at once, not only when one of the others leaves.
hold full2 "$PM" 5 30
for i in $(seq 100); do
	[ "$(log_count "$TMP/m.log" "$(kv event accept_paused)")" -ge 2 ] &&
	    break
	t_sleep 0.05
done
start=$(now_ms)
spawn SEVENTH curl -sS --noproxy '' -x "http://127.0.0.1:$PM" --max-time 10 \
    -o "$TMP/seventh.body" http://api.test/close
t_sleep 0.3
check "max_connections raised by a reload: accepted" \
    reload "$PP_M" "$TMP/m.log" "$TMP/m.conf" "$(conf "$PM" m \
    "max_connections = 8")"
wait "$SEVENTH"
rc=$?
ms=$(( $(now_ms) - start ))
check_eq "max_connections raised by a reload: the waiting request is served" \
    "$CLOSE_BODY" "$(cat "$TMP/seventh.body" 2>/dev/null)"
check "max_connections raised by a reload: while the others stay (exit $rc, \
$ms ms)" test "$rc" = 0 -a "$ms" -lt 3000
touch "$TMP/full2.d/closeall"
wait "$HOLD_PID"

# Instance E runs with 64 descriptors; 70 idle clients exhaust them.
PE=$(free_port)
conf "$PE" e "" >"$TMP/e.conf"
check "pinproxy E (64 descriptors) listens on 127.0.0.1:$PE" \
    start_pinproxy PP_E "$PE" "$TMP/e.conf" "$TMP/e.log" \
    prlimit --nofile=64:64
alive "E start" "$PP_E" "$PE"
check_log "64 descriptors for max_connections = 1024: event=fd_limit says \
what they may take" "$TMP/e.log" "$(kv event fd_limit)" "$(kv count 64)" \
    'max_connections = 1024 may take 9280 descriptors'
BASE_E=$(fd_baseline "$PP_E")
hold exhaust "$PE" 70 30
check_log "out of descriptors: event=accept_paused" "$TMP/e.log" \
    "$(kv event accept_paused)"
diag "pinproxy E holds $(fd_count "$PP_E") descriptors (limit 64)"
t0=$(cpu_ticks "$PP_E")
t_sleep 2
t1=$(cpu_ticks "$PP_E")
hz=$(getconf CLK_TCK)
check "out of descriptors: no busy loop ($((t1 - t0)) ticks of CPU in 2 s \
at $hz Hz)" \
    test $(( (t1 - t0) * 100 / hz )) -lt 30
check_eq "out of descriptors: accept_paused is logged once, not at every \
retry" "1/0" "$(log_count "$TMP/e.log" "$(kv event accept_paused)")/$(\
log_count "$TMP/e.log" "$(kv event accept_resumed)")"
resumed=$(log_count "$TMP/e.log" "$(kv event accept_resumed)")
touch "$TMP/exhaust.d/closeall"
wait "$HOLD_PID"
for i in $(seq 100); do
	[ "$(log_count "$TMP/e.log" "$(kv event accept_resumed)")" -gt \
	    "$resumed" ] && break
	t_sleep 0.05
done
check "out of descriptors: event=accept_resumed after the clients left" \
    test "$(log_count "$TMP/e.log" "$(kv event accept_resumed)")" -gt \
    "$resumed"
alive "out of descriptors" "$PP_E" "$PE"
check_fds "out of descriptors" "$PP_E" "$BASE_E"

# At the end: descriptors at rest, and a clean exit.
check_fds "pinproxy G at the end" "$PP_G" "$BASE_G"
stop_pinproxy "$PP_G" "$TMP/g.log"
stop_pinproxy "$PP_M" "$TMP/m.log"
stop_pinproxy "$PP_E" "$TMP/e.log"

# Instance F: max_connections = 100 may take 964 descriptors. Started
# with a soft limit of 128 under a hard one of 1000, it raises the soft
# one to 964 and says nothing; a reload to 200 (1864) raises it to 1000
# and warns, once for that limit however many reloads follow; after a
# reload back to 100, which fits, a shortage is told again.
# nofile PID: its soft and hard descriptor limits.
nofile()
{
	awk '/^Max open files/ { print $4, $5 }' "/proc/$1/limits"
}
PF=$(free_port)
conf "$PF" f "max_connections = 100" >"$TMP/f.conf"
check "pinproxy F (128 descriptors, hard limit 1000) listens" \
    start_pinproxy PP_F "$PF" "$TMP/f.conf" "$TMP/f.log" \
    prlimit --nofile=128:1000
check_eq "F: the soft descriptor limit is raised to what 100 connections \
may take" "964 1000" \
    "$(nofile "$PP_F")"
check_eq "F: enough descriptors: no event=fd_limit" 0 \
    "$(log_count "$TMP/f.log" "$(kv event fd_limit)")"
conf "$PF" f "max_connections = 200" >"$TMP/f.conf"
check "F: reloaded with max_connections = 200" reload "$PP_F" "$TMP/f.log"
check "F: a second reload" reload "$PP_F" "$TMP/f.log"
check_eq "F: the soft limit is raised to the hard one" "1000 1000" \
    "$(nofile "$PP_F")"
check_eq "F: short of the hard limit: event=fd_limit once" 1 \
    "$(log_count "$TMP/f.log" "$(kv event fd_limit)")"
check_log "F: event=fd_limit names the limit and the need" "$TMP/f.log" \
    "$(kv event fd_limit)" "$(kv count 1000)" \
    'max_connections = 200 may take 1864 descriptors'
conf "$PF" f "max_connections = 100" >"$TMP/f.conf"
check "F: reloaded with max_connections = 100 again" reload "$PP_F" \
    "$TMP/f.log"
conf "$PF" f "max_connections = 200" >"$TMP/f.conf"
check "F: and with 200 again" reload "$PP_F" "$TMP/f.log"
check_eq "F: short again after a limit that fit: event=fd_limit again" 2 \
    "$(log_count "$TMP/f.log" "$(kv event fd_limit)")"
alive "F after the reloads" "$PP_F" "$PF"
stop_pinproxy "$PP_F" "$TMP/f.log"

# L: a log reader that stops reading. stderr is a FIFO whose reader holds
# it open and reads nothing until told to; each request logs a line
# (event=access), so the FIFO's 64 KiB fill within a few hundred. The
# proxy must go on serving (and answering /metrics) all the same, drop
# the lines that do not fit its queue, and say how many once the reader
# is back. (A blocking write used to stop the whole daemon.)
mkfifo "$TMP/l.fifo"
cat >"$TMP/l-reader.py" <<'EOF'
import os, sys, time
fifo, go, out = sys.argv[1:4]
with open(fifo, "rb", buffering=0) as f, open(out, "wb") as o:
    while not os.path.exists(go):
        time.sleep(0.05)
    while True:
        b = f.read(65536)
        if not b:
            break
        o.write(b)
        o.flush()
EOF
spawn L_READER python3 "$TMP/l-reader.py" "$TMP/l.fifo" "$TMP/l.go" \
    "$TMP/l.log"
PL=$(free_port)
PLS=$(free_port)
conf "$PL" l "stats_listen = 127.0.0.1:$PLS" >"$TMP/l.conf"
check "L (stderr a FIFO nobody reads) listens on 127.0.0.1:$PL" \
    start_pinproxy PP_L "$PL" "$TMP/l.conf" "$TMP/l.fifo"
out=$(python3 - "$PL" <<'EOF'
import socket, sys, time
req = (b"GET http://pinproxy.internal/ca.pem HTTP/1.1\r\n"
       b"Host: pinproxy.internal\r\n\r\n")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
f = s.makefile("rb")
n = 0
t = time.monotonic()
try:
    for n in range(1, 20001):
        s.sendall(req)
        line = f.readline()
        length = 0
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        f.read(length)
        if not line.startswith(b"HTTP/1.1 200"):
            break
except OSError:
    n -= 1
print(n, int((time.monotonic() - t) * 1000))
EOF
)
read -r n ms <<<"$out"
check_eq "L: 20000 requests answered, each logged to a FIFO nobody reads ($ms ms)" \
    20000 "$n"
check_eq "L: /metrics answers too" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    "http://127.0.0.1:$PLS/metrics")"
touch "$TMP/l.go"
check "L: once the reader is back, event=log_dropped says how many" \
    wait_log "$TMP/l.log" "$(kv event log_dropped)" " count=[1-9]"
stop_pinproxy "$PP_L" "$TMP/l.fifo" "L (stderr a FIFO):"
wait "$L_READER" 2>/dev/null
check_log "L: the last line, event=stopped, is written at exit" \
    "$TMP/l.log" "$(kv event stopped)"
check_eq "L: every line that arrived is whole" "" \
    "$(grep -v '^level=[a-z]* event=[a-z_]* ' "$TMP/l.log" | head -n 3)"

done_testing
