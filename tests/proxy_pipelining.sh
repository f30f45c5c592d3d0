#!/bin/bash
# Hostile clients end to end, continued from tests/proxy_hostile.sh: ten
# thousand pipelined requests, pipelined requests pinproxy answers itself
# (read or never read), half-closed clients with answers still queued,
# requests to pinproxy under every spelling of its own address, IPv6 and
# IPv4-mapped client addresses against allow_clients. Each must be served
# without harm, in bounded memory; pinproxy must go on serving, hold the
# descriptors it started with and exit 0. Everything runs on the loopback.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"
. "$top_srcdir/tests/hostile_setup.sh"

PIPELINED=10000
UNREAD=40000
RSS_LIMIT_KB=$((32 * 1024))

# Ten thousand small GETs pipelined on one connection: every answer in
# order (or a clean close), with bounded memory. After the last one the
# origin closes the upstream.
rss0=$(rss_kb "$PP_H")
out=$(py - "$PH" "$OP" "$PIPELINED" "$PP_H" <<'EOF'
import socket, sys, threading, time
port, op, n, pid = (int(a) for a in sys.argv[1:5])
from connect_client import vm_rss_kb
def rss():
    return vm_rss_kb(pid)
def size(i):
    return 1 + i % 64
reqs = b"".join(b"GET http://127.0.0.1:%d/size/%d HTTP/1.1\r\n"
                b"Host: 127.0.0.1:%d\r\n\r\n" % (op, size(i), op)
                for i in range(n - 1))
reqs += (b"GET http://127.0.0.1:%d/close HTTP/1.1\r\nHost: 127.0.0.1:%d"
         b"\r\n\r\n" % (op, op))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
def send():
    try:
        s.sendall(reqs)
    except OSError:
        pass
threading.Thread(target=send, daemon=True).start()
f = s.makefile("rb")
answered = inorder = 0
peak = rss()
state = "open"
deadline = time.monotonic() + 60
try:
    while answered < n and time.monotonic() < deadline:
        line = f.readline()
        if not line:
            state = "closed"
            break
        status = line.split(b" ")[1]
        length = None
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        body = f.read(length) if length is not None else f.read()
        want = size(answered) if answered < n - 1 else None
        if status == b"200" and (want is None or len(body) == want):
            inorder += 1
        answered += 1
        if answered % 500 == 0:
            peak = max(peak, rss())
    if answered == n and f.read(1) == b"":
        state = "closed"
except OSError:
    state = "error"
print(answered, inorder, state, peak)
EOF
)
read -r answered inorder state peak <<<"$out"
diag "pipelined: $out (VmRSS before: $rss0 KiB)"
what="$PIPELINED pipelined requests"
check "$what: answered in order ($inorder of $answered)" \
    test "${inorder:-0}" = "${answered:-x}" -a "${answered:-0}" -gt 0
check "$what: all answered, or a clean close ($answered, $state)" \
    test "${answered:-0}" = "$PIPELINED" -o "${state:-}" = closed
check "$what: VmRSS grows by less than 32 MiB ($rss0 -> ${peak:-?} KiB)" \
    test -n "$rss0" -a $(( ${peak:-999999999} - ${rss0:-0} )) -lt \
    "$RSS_LIMIT_KB"
alive "$PIPELINED pipelined requests" "$PP_H" "$H"

# Pipelined requests that pinproxy answers at once (the CA page) from a
# client that reads nothing: the answers queued for it stop at the relay's
# high-water mark (128 KiB) and the requests behind wait unread, so memory
# stays bounded. (Each answer used to be queued at once, without bound.)
n0=$(log_count "$TMP/h.log" "$(kv event access)" \
    "$(kv host pinproxy.internal)")
rss0=$(rss_kb "$PP_H")
out=$(py - "$PH" "$PP_H" "$UNREAD" <<'EOF'
import socket, sys, time
port, pid, n = (int(a) for a in sys.argv[1:4])
from connect_client import vm_rss_kb
def rss():
    return vm_rss_kb(pid)
req = (b"GET http://pinproxy.internal/ca.pem HTTP/1.1\r\n"
       b"Host: pinproxy.internal\r\n\r\n")
data = req * n
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.setblocking(False)
sent = 0
peak = rss()
stalled = time.monotonic()
deadline = stalled + 20
while time.monotonic() < deadline and time.monotonic() - stalled < 0.7:
    try:
        k = s.send(data[sent:sent + 65536])
        if k > 0:
            sent += k
            stalled = time.monotonic()
    except BlockingIOError:
        pass
    if sent == len(data):
        break
    time.sleep(0.01)
    peak = max(peak, rss())
time.sleep(0.3)
peak = max(peak, rss())
print(sent // len(req), peak)
s.close()
EOF
)
read -r sent peak <<<"$out"
t_sleep 0.5
answered=$(( $(log_count "$TMP/h.log" "$(kv event access)" \
    "$(kv host pinproxy.internal)") - n0 ))
diag "unread answers: $sent requests written, $answered answered," \
    "VmRSS $rss0 -> $peak KiB"
check "$UNREAD pipelined CA-page requests, answers never read: fewer than a quarter answered ($answered)" \
    test "$answered" -gt 0 -a "$answered" -lt $((UNREAD / 4))
check "answers never read: VmRSS grows by less than 8 MiB ($rss0 -> ${peak:-?} KiB)" \
    test -n "$rss0" -a $(( ${peak:-999999999} - ${rss0:-0} )) -lt 8192
alive "pipelined requests whose answers are never read" "$PP_H" "$H"

# The same requests from a client that reads every answer: heads are
# parsed one at a time, so what the client sends ahead waits in
# pinproxy's input, which stops growing at one read's worth (64 KiB).
# (It used to grow by a read for every answer: megabytes a second.)
rss0=$(rss_kb "$PP_H")
out=$(py - "$PH" "$PP_H" <<'EOF'
import socket, sys, threading, time
port, pid = (int(a) for a in sys.argv[1:3])
from connect_client import vm_rss_kb
def rss():
    return vm_rss_kb(pid)
req = (b"GET http://pinproxy.internal/ca.pem HTTP/1.1\r\n"
       b"Host: pinproxy.internal\r\n\r\n")
data = req * (24 * 1024 * 1024 // len(req))
s = socket.create_connection(("127.0.0.1", port), timeout=10)
got = [0]
def read():
    while True:
        try:
            b = s.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            return
        if not b:
            return
        got[0] += b.count(b"HTTP/1.1 200 ")
s.settimeout(0.05)
threading.Thread(target=read, daemon=True).start()
sent = 0
peak = rss()
deadline = time.monotonic() + 4
while time.monotonic() < deadline and sent < len(data):
    try:
        sent += s.send(data[sent:sent + 262144])
    except socket.timeout:
        pass
    peak = max(peak, rss())
peak = max(peak, rss())
print(sent // len(req), got[0], peak)
s.close()
EOF
)
read -r sent got peak <<<"$out"
diag "answers read: $sent requests written, $got answers read," \
    "VmRSS $rss0 -> $peak KiB"
check "pipelined CA-page requests, answers read: answered ($got)" \
    test "${got:-0}" -gt 0
check "answers read: VmRSS grows by less than 2 MiB ($rss0 -> ${peak:-?} KiB)" \
    test -n "$rss0" -a $(( ${peak:-999999999} - ${rss0:-0} )) -lt 2048
alive "pipelined requests whose answers are read" "$PP_H" "$H"

# A client that shuts down its sending side once its requests are sent
# and reads only later: every answer arrives whole, then the close. Its
# end used to close the connection at once when it came between two
# requests: of 600 pipelined CA-page requests, the answers still queued
# for it (past the relay's high-water mark) and the requests behind were
# dropped; so was the rest of a large body whose exchange had ended.

# answers NAME: how many whole answers $TMP/NAME.resp holds (each by its
# Content-Length), then "whole" or "cut" for the last.
answers()
{
	python3 - "$TMP/$1.resp" <<'EOF'
import sys
data, n, at = open(sys.argv[1], "rb").read(), 0, 0
while at < len(data):
    end = data.find(b"\r\n\r\n", at)
    head = data[at:end].decode("latin-1").lower() if end >= 0 else ""
    if "content-length:" not in head:
        break
    at = end + 4 + int(head.split("content-length:")[1].split("\r\n")[0])
    if at > len(data):
        break
    n += 1
print(n, "whole" if at == len(data) else "cut")
EOF
}

state=$(half_closed hc-body "$PH" \
    'GET http://api.test/bytes/200000 HTTP/1.1\r\nHost: api.test\r\n\r\n' 0.5)
check_eq "a 200 kB answer, the client's half-close after its exchange: whole" \
    "1 whole closed" "$(answers hc-body) $state"
CA_REQ='GET http://pinproxy.internal/ca.pem HTTP/1.1\r\nHost: pinproxy.internal\r\n\r\n'
state=$(half_closed hc-pipe "$PH" "$(for (( i = 0; i < 600; i++ )); do
	printf '%s' "$CA_REQ"; done)" 0)
check_eq "600 pipelined requests, then the client's half-close: 600 answers" \
    "600 whole closed" "$(answers hc-pipe) $state"
alive "answers queued at the client's half-close" "$PP_H" "$H"
check_fds "pinproxy H at the end" "$PP_H" "$BASE_H"
stop_pinproxy "$PP_H" "$TMP/h.log"

# Requests to pinproxy's own listener under another spelling of its
# address: each must be a 508, not a request to itself, again and again.
# A fresh instance for each (8 connections, 2 s idle: a loop stays small).
for u in "127.0.0.1" "localhost" "[::ffff:127.0.0.1]" "0.0.0.0" \
    "loop.test"; do
	PL=$(free_port)
	conf "127.0.0.1:$PL" l "max_connections = 8
idle_timeout = 2s
connect_timeout = 2s" >"$TMP/l.conf"
	if ! start_pinproxy PP_L "$PL" "$TMP/l.conf" "$TMP/l.log"
	then
		not_ok "pinproxy L listens on 127.0.0.1:$PL"
		continue
	fi
	L="127.0.0.1:$PL"
	BASE_L=$(fd_baseline "$PP_L")
	code=$(pcurl "$L" --max-time 4 -o /dev/null -w '%{http_code}' \
	    "http://$u:$PL/" 2>/dev/null)
	check_eq "request to http://$u:PORT/ (pinproxy itself): 508" 508 \
	    "$code"
	[ "$code" = 508 ] || diag "status $code; $(log_count "$TMP/l.log" \
	    "$(kv event access)") access lines"
	ALIVE_TIME=5 alive "request to http://$u:PORT/" "$PP_L" "$L"
	check_fds "request to http://$u:PORT/" "$PP_L" "$BASE_L"
	stop_pinproxy "$PP_L" "$TMP/l.log"
	mv "$TMP/l.log" "$TMP/l-$u.log"
done

# Client addresses: IPv6 on [::1], then IPv4-mapped ones on a listener
# bound to ::ffff:127.0.0.1 (where IPv4 clients of 127.0.0.1 arrive as
# [::ffff:127.0.0.1]), each against allow_clients before and after a
# reload that changes it.
# A request that loops through pinproxy takes every slot until
# idle_timeout: keep both small.
LIMITS="max_connections = 8
idle_timeout = 2s
connect_timeout = 2s"
# client_case DESCRIPTION PROXY STATUS DETAILS
client_case()
{
	local code ps
	code=$(pcurl "$2" -D "$TMP/client.head" -o "$TMP/client.body" \
	    -w '%{http_code}' http://api.test/close 2>/dev/null)
	ps=$(header "$TMP/client.head" Proxy-Status |
	    sed -n 's/.*details="\(.*\)"/\1/p')
	check_eq "$1: $3${4:+ $4}" "$3 ${4:-}" "$code $ps"
}
if [ "$have_ipv6" = yes ]; then
	P6=$(free_port)
	conf "[::1]:$P6" v6 "$LIMITS
allow_clients = 127.0.0.0/8" >"$TMP/v6.conf"
	if start_pinproxy PP_6 "[::1]:$P6" "$TMP/v6.conf" "$TMP/v6.log"; then
		client_case "client ::1, allow_clients = 127.0.0.0/8" \
		    "[::1]:$P6" 403 client-denied
		check_log "client ::1 refused: event=blocked client=[::1]:..." \
		    "$TMP/v6.log" "$(kv event blocked)" \
		    '(^| )client="?\[::1\]:[0-9]+'
		check "allow_clients = ::1: reloaded" reload "$PP_6" \
		    "$TMP/v6.log" "$TMP/v6.conf" "$(conf "[::1]:$P6" v6 "$LIMITS
allow_clients = ::1")"
		client_case "client ::1, allow_clients = ::1" "[::1]:$P6" 200
		stop_pinproxy "$PP_6" "$TMP/v6.log"
	else
		not_ok "pinproxy listens on [::1]:$P6"
	fi
else
	for i in 1 2 3 4 5; do
		skip "IPv6 clients: no IPv6 on this host"
	done
fi
PM=$(free_port)
conf "[::ffff:127.0.0.1]:$PM" map "$LIMITS
allow_clients = ::1" >"$TMP/map.conf"
if start_pinproxy PP_MAP "$PM" "$TMP/map.conf" "$TMP/map.log"
then
	client_case "client ::ffff:127.0.0.1, allow_clients = ::1" \
	    "127.0.0.1:$PM" 403 client-denied
	check_log "mapped client refused: event=blocked client=127.0.0.1" \
	    "$TMP/map.log" "$(kv event blocked)" \
	    '(^| )client="?127\.0\.0\.1:[0-9]+'
	check "allow_clients = 127.0.0.0/8: reloaded" reload "$PP_MAP" \
	    "$TMP/map.log" "$TMP/map.conf" \
	    "$(conf "[::ffff:127.0.0.1]:$PM" map "$LIMITS
allow_clients = 127.0.0.0/8")"
	client_case "client ::ffff:127.0.0.1, allow_clients = 127.0.0.0/8" \
	    "127.0.0.1:$PM" 200
	code=$(pcurl "127.0.0.1:$PM" -o /dev/null -w '%{http_code}' \
	    --max-time 8 "http://127.0.0.1:$PM/" 2>/dev/null)
	check_eq "listener on ::ffff:127.0.0.1, request to 127.0.0.1:$PM: 508" \
	    508 "$code"
	stop_pinproxy "$PP_MAP" "$TMP/map.log"
else
	not_ok "pinproxy listens on [::ffff:127.0.0.1]:$PM"
fi

# A wildcard listener accepts on every address of the machine: a CONNECT
# or a plaintext request to any loopback address on its port, or to the
# stats port, is a loop answered at once, not a connection to itself
# (which a client could nest until max_connections). Nothing is sent to
# an address outside 127.0.0.0/8.
PW=$(free_port)
SW=$(free_port)
conf "0.0.0.0:$PW" w "connect_ports = 443 $PW $SW
stats_listen = 127.0.0.1:$SW
$LIMITS" >"$TMP/w.conf"
if start_pinproxy PP_W "$PW" "$TMP/w.conf" "$TMP/w.log"; then
	for t in "127.0.0.1:$PW" "127.0.0.2:$PW" "localhost:$PW" \
	    "127.0.0.1:$SW"; do
		check_eq "listen = 0.0.0.0: CONNECT $t: 508 loop" \
		    "508 pinproxy; error=proxy_loop_detected; details=\"loop\"" \
		    "$(PH=$PW connect_status "$t")"
	done
	code=$(pcurl "127.0.0.1:$PW" -o /dev/null -w '%{http_code}' \
	    --max-time 8 "http://127.0.0.3:$PW/" 2>/dev/null)
	check_eq "listen = 0.0.0.0: GET http://127.0.0.3:PORT/: 508" 508 \
	    "$code"
	wait_log "$TMP/w.log" "$(kv event access)" "$(kv host 127.0.0.3)"
	check_eq "listen = 0.0.0.0: the GET never reached pinproxy again" 1 \
	    "$(log_count "$TMP/w.log" "$(kv event access)" \
	    "$(kv host 127.0.0.3)")"
	check_log "listen = 0.0.0.0: the GET's loop is logged as blocked" \
	    "$TMP/w.log" "$(kv event blocked)" "$(kv host 127.0.0.3)" \
	    'reason="loop: '
	check_log "listen = 0.0.0.0: a CONNECT's loop is logged as blocked" \
	    "$TMP/w.log" "$(kv event blocked)" "$(kv host 127.0.0.2)" \
	    'reason="loop: the CONNECT target'
	ALIVE_TIME=5 alive "listen = 0.0.0.0" "$PP_W" "127.0.0.1:$PW"
	stop_pinproxy "$PP_W" "$TMP/w.log"
else
	not_ok "pinproxy listens on 0.0.0.0:$PW"
fi

done_testing
