#!/bin/bash
# Idle and kept-alive connections end to end: accept pausing at
# max_connections and resuming when a slot frees, header_timeout on
# silent clients with every descriptor given back, idle_timeout on a
# forwarded request (an upload is traffic; a silent server gets a 504),
# and a keep-alive
# client across a reload: its next request is served under the new pins,
# or refused when they no longer match. Everything runs on 127.0.0.1 with
# a TLS test origin.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# running PID...: every one of the processes is still there.
running()
{
	kill -0 "$@" 2>/dev/null
}

# Idle clients: open N connections to PORT that never send a byte, print
# "ready", and report each end of file from pinproxy as "eof I MS" (MS
# since the first connect). Closes connection 0 once CLOSEFILE exists; ends
# when every connection has ended or after LIMIT seconds.
cat >"$TMP/idle.py" <<'EOF'
import os, select, socket, sys, time
port, n, closefile, limit = (int(sys.argv[1]), int(sys.argv[2]),
                             sys.argv[3], float(sys.argv[4]))
socks = {}
start = time.monotonic()
for i in range(n):
    socks[socket.create_connection(("127.0.0.1", port), timeout=5)] = i
print("ready", flush=True)
closed_first = False
while socks and time.monotonic() - start < limit:
    if not closed_first and os.path.exists(closefile):
        for s, i in list(socks.items()):
            if i == 0:
                s.close()
                del socks[s]
        closed_first = True
    ready, _, _ = select.select(list(socks), [], [], 0.05)
    for s in ready:
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            print("eof %d %d" % (socks[s],
                                 (time.monotonic() - start) * 1000),
                  flush=True)
            del socks[s]
            s.close()
print("end", flush=True)
EOF

make_pki multi "DNS:api.test,DNS:new.test,IP:127.0.0.1" inter
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"

# conf PORT EXTRA: a configuration listening on PORT that pins api.test,
# blocks every other host, and has the [proxy] lines EXTRA.
conf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$1
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
unpinned = block
$2

[pins:api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF
}

# max_connections = 2: two idle clients hold every slot; a third waits
# until one of them leaves.
PD=$(free_port)
conf "$PD" "max_connections = 2
header_timeout = 30s
shutdown_timeout = 1s" >"$TMP/d.conf"
check "pinproxy D listens on 127.0.0.1:$PD" \
    start_pinproxy PP_D "$PD" "$TMP/d.conf" "$TMP/d.log"
spawn IDLE_D python3 "$TMP/idle.py" "$PD" 2 "$TMP/d.close" 30 \
    >"$TMP/d-idle.out"
wait_ready "$TMP/d-idle.out"
check_log "max_connections: event=accept_paused" "$TMP/d.log" \
    "$(kv event accept_paused)"
spawn CURL_D sh -c 'curl -sS --noproxy "" -x "$1" --max-time 15 \
    -o /dev/null -w "%{http_code}" http://api.test/hello >"$2" 2>&1' \
    sh "http://127.0.0.1:$PD" "$TMP/d-third.out"
t_sleep 1
check "max_connections: the third request waits over 1 s" running "$CURL_D"
touch "$TMP/d.close"
start=$(now_ms)
wait "$CURL_D" 2>/dev/null
ms=$(( $(now_ms) - start ))
check_eq "max_connections: the third request is served once a slot frees" \
    200 "$(cat "$TMP/d-third.out" 2>/dev/null)"
check "max_connections: served within 3 s of the slot freeing ($ms ms)" \
    test "$ms" -lt 3000
check_log "max_connections: event=accept_resumed" "$TMP/d.log" \
    "$(kv event accept_resumed)"
stop "$IDLE_D"
kill -TERM "$PP_D"
wait_exit "$PP_D" 10
check_eq "max_connections: pinproxy D exits 0" 0 "$EXIT_RC"

# A stop while a client waits in the kernel's queue (max_connections = 1,
# an idle client holds the slot), its request sent: the stop takes it in
# and serves it, as a connection opened just before the stop; closing
# the listening socket with it queued would reset it.
PQ=$(free_port)
conf "$PQ" "max_connections = 1
header_timeout = 30s
shutdown_timeout = 3s" >"$TMP/q.conf"
check "pinproxy Q listens on 127.0.0.1:$PQ" \
    start_pinproxy PP_Q "$PQ" "$TMP/q.conf" "$TMP/q.log"
spawn IDLE_Q python3 "$TMP/idle.py" "$PQ" 1 "$TMP/q.close" 30 \
    >"$TMP/q-idle.out"
wait_ready "$TMP/q-idle.out"
check_log "a queued client at the stop: event=accept_paused" "$TMP/q.log" \
    "$(kv event accept_paused)"
spawn QUEUED send_read "$PQ" \
    'GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    >"$TMP/q-queued.out" 2>&1
wait_ready "$TMP/q-queued.out"
t_sleep 0.3
kill -TERM "$PP_Q"
wait "$QUEUED" 2>/dev/null
check_eq "a queued client at the stop: taken in and served" \
    "eof HTTP/1.1 200 OK" "$(sed -n '2s/^[0-9]* //p' "$TMP/q-queued.out")"
wait_exit "$PP_Q" 10
check_eq "... and pinproxy Q exits 0" 0 "$EXIT_RC"
stop "$IDLE_Q"

# The same with two listeners, a slot freeing in the loop's turn of the
# stop (tests/stop_queued.py): taking the queued client resumes and
# pauses every listener, none of which may be closed yet.
PR=$(free_port)
PR2=$(free_port)
conf "$PR" "listen = 127.0.0.1:$PR2
max_connections = 2
header_timeout = 30s
shutdown_timeout = 3s" >"$TMP/r.conf"
check "pinproxy R listens on 127.0.0.1:$PR and :$PR2" \
    start_pinproxy PP_R "$PR" "$TMP/r.conf" "$TMP/r.log"
python3 "$top_srcdir/tests/stop_queued.py" "$PP_R" "$PR" "$PR2" \
    >"$TMP/r-queued.out" 2>&1
check_eq "a slot freeing as the stop takes a queued client: it is served" \
    "HTTP/1.1 200 OK" "$(cat "$TMP/r-queued.out")"
wait_exit "$PP_R" 10
check_eq "... and pinproxy R exits 0" 0 "$EXIT_RC"
check_log "... having logged event=stopped" "$TMP/r.log" \
    "$(kv event stopped)"

# header_timeout = 1s: 50 silent clients are all disconnected, and every
# descriptor they took is released.
PE=$(free_port)
conf "$PE" "header_timeout = 1s
shutdown_timeout = 1s" >"$TMP/e.conf"
check "pinproxy E listens on 127.0.0.1:$PE" \
    start_pinproxy PP_E "$PE" "$TMP/e.conf" "$TMP/e.log"
base=$(fd_baseline "$PP_E")
spawn IDLE_E python3 "$TMP/idle.py" "$PE" 50 "$TMP/e.never" 5 \
    >"$TMP/e-idle.out"
wait_ready "$TMP/e-idle.out"
# Until pinproxy has accepted all 50 (bounded: header_timeout ends them).
held=$(fd_count "$PP_E")
for _ in $(seq 40); do
	[ "$held" -ge $(( base + 50 )) ] && break
	t_sleep 0.02
	held=$(fd_count "$PP_E")
done
check "header_timeout: pinproxy holds 50 more fds ($base, then $held)" \
    test "$held" -ge $(( base + 50 ))
wait "$IDLE_E" 2>/dev/null
eofs=$(grep -c '^eof ' "$TMP/e-idle.out")
first=$(sed -n 's/^eof [0-9]* //p' "$TMP/e-idle.out" | sort -n | head -n 1)
last=$(sed -n 's/^eof [0-9]* //p' "$TMP/e-idle.out" | sort -n | tail -n 1)
check_eq "header_timeout: all 50 silent clients see end of file" 50 "$eofs"
check "header_timeout: none ends before 1 s, all within 2 s" \
    test "${first:-0}" -ge 950 -a "${last:-9999}" -le 2000
diag "silent clients saw end of file after ${first:-?} to ${last:-?} ms"
now=$(fd_count "$PP_E")
for _ in $(seq 40); do
	[ "$now" -le "$base" ] && break
	t_sleep 0.05
	now=$(fd_count "$PP_E")
done
check_eq "header_timeout: pinproxy's descriptors return to the baseline" \
    "$base" "$now"
kill -TERM "$PP_E"
wait_exit "$PP_E" 10
check_eq "header_timeout: pinproxy E exits 0" 0 "$EXIT_RC"

# idle_timeout = 1s on a forwarded request: a body that keeps arriving
# is traffic (an upload longer than idle_timeout goes through), and a
# server that answers nothing for that long gets a 504.
cat >"$TMP/upload.py" <<'EOF'
import socket, sys, time
from connect_client import read_rest
port, parts, gap = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
expect = sys.argv[4:] == ["expect"]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"POST http://api.test/echo HTTP/1.1\r\nHost: api.test\r\n"
          b"Content-Length: %d\r\nConnection: close\r\n%s\r\n" %
          (300 * parts, b"Expect: 100-continue\r\n" if expect else b""))
if expect:
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        d = s.recv(1)
        if not d:
            break
        interim += d
    if not interim.startswith(b"HTTP/1.1 100 Continue\r\n"):
        print("no 100 Continue:", interim)
for _ in range(parts):
    time.sleep(gap)
    s.sendall(b"u" * 300)
head, _, body = read_rest(s).partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), body.decode().strip())
EOF
PG=$(free_port)
conf "$PG" "idle_timeout = 1s
shutdown_timeout = 1s" >"$TMP/g.conf"
check "pinproxy G listens on 127.0.0.1:$PG" \
    start_pinproxy PP_G "$PG" "$TMP/g.conf" "$TMP/g.log"
want=$(head -c 3000 /dev/zero | tr '\0' u | sha256sum | cut -d' ' -f1)
check_eq "idle_timeout: an upload of 3 s in 10 parts goes through" \
    "HTTP/1.1 200 OK $want 3000" "$(py "$TMP/upload.py" "$PG" 10 0.3)"
check_eq "idle_timeout: the same upload after a 100 Continue goes through" \
    "HTTP/1.1 200 OK $want 3000" "$(py "$TMP/upload.py" "$PG" 10 0.3 expect)"
start=$(now_ms)
code=$(fetch wait "$PG" --max-time 10 http://api.test/wait/3)
ms=$(( $(now_ms) - start ))
check_eq "idle_timeout: no response for 1 s: 504" 504 "$code"
check_eq "idle_timeout: no response: Proxy-Status" \
    'pinproxy; error=connection_read_timeout; details="timeout"' \
    "$(header "$TMP/wait.head" Proxy-Status)"
check "idle_timeout: no response: answered after 1 s, before 2 s ($ms ms)" \
    test "$ms" -ge 950 -a "$ms" -lt 1900
check_log "idle_timeout: no response: event=upstream_error error=timeout" \
    "$TMP/g.log" "$(kv event upstream_error)" "$(kv host api.test)" \
    "$(kv error timeout)"
# A client that stops in the middle of its body: the server rightly waits
# for the rest, and it is the client that timed out, not the server.
errors=$(log_grep "$TMP/g.log" -c "$(kv event upstream_error)")
out=$(py - "$PG" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST http://api.test/echo HTTP/1.1\r\nHost: api.test\r\n"
          b"Content-Length: 100\r\n\r\n0123456789")
start = time.monotonic()
try:
    data = s.recv(65536)
    end = "answered" if data else "closed"
except ConnectionResetError:
    end = "reset"
except socket.timeout:
    end = "open"
print(end, int((time.monotonic() - start) * 1000))
EOF
)
check "idle_timeout: a client stalled mid-body is cut after 1 s (${out#* } \
ms)" test "${out% *}" = reset -a "${out#* }" -ge 950 -a "${out#* }" -lt 1900
check_eq "idle_timeout: a client stalled mid-body is no upstream_error" \
    "$errors" "$(log_grep "$TMP/g.log" -c "$(kv event upstream_error)")"
# But a client that waits for the 100 Continue it asked for, which the
# server never sends, waits rightly: the server timed out.
start=$(now_ms)
code=$(fetch mute "$PG" --max-time 10 -T - -H 'Expect: 100-continue' \
    --expect100-timeout 30 http://api.test/mute <<<"0123456789")
ms=$(( $(now_ms) - start ))
check_eq "idle_timeout: no 100 Continue for a client that waits for it: 504" \
    504 "$code"
check "idle_timeout: no 100 Continue: answered after 1 s, before 2 s \
($ms ms)" test "$ms" -ge 950 -a "$ms" -lt 1900
check_eq "idle_timeout: no 100 Continue: one more upstream_error" \
    $((errors + 1)) "$(log_grep "$TMP/g.log" -c "$(kv event upstream_error)")"
# A 103 Early Hints is not the 100 the client waits for.
code=$(fetch mute103 "$PG" --max-time 10 -T - -H 'Expect: 100-continue' \
    --expect100-timeout 30 'http://api.test/mute?103' <<<"0123456789")
check_eq "idle_timeout: a 103 and then nothing for a client that waits for \
its 100: 504" 504 "$code"
# silent_expect WHAT VERSION FIELDS: a client whose head (a PUT of 10
# bytes with FIELDS, "\r\n" after each) asked for a 100 (Continue) that
# its server never sees or that does not count, then nothing: it is the
# one that stalled, cut with no upstream_error (two cases).
silent_expect()
{
	local before out
	before=$(log_grep "$TMP/g.log" -c "$(kv event upstream_error)")
	out=$(py - "$PG" "$2" "$3" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"PUT http://api.test/echo %s\r\nHost: api.test\r\n"
          b"Content-Length: 10\r\n%s\r\n" %
          (sys.argv[2].encode(), sys.argv[3].encode().replace(b"|",
                                                              b"\r\n")))
try:
    print("answered" if s.recv(65536) else "closed")
except ConnectionResetError:
    print("reset")
except socket.timeout:
    print("open")
EOF
)
	check_eq "idle_timeout: $1, silent: it is cut" reset "$out"
	check_eq "idle_timeout: $1: no upstream_error" "$before" \
	    "$(log_grep "$TMP/g.log" -c "$(kv event upstream_error)")"
}
# An HTTP/1.0 client has no 100 to wait for (RFC 9110 10.1.1: its Expect
# is ignored; the server's 100 is not sent on to it).
silent_expect "an HTTP/1.0 client with Expect" HTTP/1.0 \
    'Expect: 100-continue|'
# An Expect that its Connection names does not go upstream.
silent_expect "Expect named by Connection" HTTP/1.1 \
    'Expect: 100-continue|Connection: keep-alive, Expect|'
# A list of expectations, which servers read differently.
silent_expect "two Expect headers" HTTP/1.1 \
    'Expect: 100-continue|Expect: 100-continue|'
kill -TERM "$PP_G"
wait_exit "$PP_G" 10
check_eq "idle_timeout: pinproxy G exits 0" 0 "$EXIT_RC"

# keepalive_across_reload NAME PORT PID CONF TEXT [URL ARG...]: a
# keep-alive client's first request (for URL, by default
# http://api.test/hello, with tests/keepalive.py's ARGs), then a reload
# that puts TEXT in CONF, then its second request on the same connection;
# the client's output in $TMP/NAME.out, the origin's count of requests
# before the reload in KA_REQUESTS.
keepalive_across_reload()
{
	local name=$1 port=$2 pid=$3 conf=$4 text=$5
	rm -f "$TMP/$name.go"
	spawn KA_PID python3 "$KEEPALIVE" "$port" \
	    "${6:-http://api.test/hello}" "$TMP/$name.go" "${@:7}" \
	    >"$TMP/$name.out" 2>"$TMP/$name.err"
	wait_line "$TMP/$name.out" '^first ' ||
	    diag "$name: no first answer: $(cat "$TMP/$name.err")"
	KA_REQUESTS=$(origin_count "$TMP/om.log" request)
	reload "$pid" "$TMP/f.log" "$conf" "$text" ||
	    diag "$name: the reload failed: $(tail -n 3 "$TMP/f.log")"
	touch "$TMP/$name.go"
	wait "$KA_PID" 2>/dev/null
	[ -s "$TMP/$name.err" ] && diag "$name: $(cat "$TMP/$name.err")"
}

# A reload reaches keep-alive clients: the next request on a connection
# opened before SIGHUP is served under the new pins, on an upstream (and a
# TLS session) of the new generation only.
PF=$(free_port)
conf "$PF" "shutdown_timeout = 1s" >"$TMP/f.conf"
check "pinproxy F listens on 127.0.0.1:$PF" \
    start_pinproxy PP_F "$PF" "$TMP/f.conf" "$TMP/f.log"
origin_settle "$TMP/om.log" 5
tls_before=$(origin_count "$TMP/om.log" tls)
resumed_before=$(origin_count "$TMP/om.log" tls '"resumed": true')
keepalive_across_reload ka-same "$PF" "$PP_F" "$TMP/f.conf" \
    "$(conf "$PF" "shutdown_timeout = 1s
idle_timeout = 4m")"
check_eq "keep-alive across a reload: both answered on one connection" \
    "first 200|second 200 reused -|" "$(tr '\n' '|' <"$TMP/ka-same.out")"
check_eq "keep-alive across a reload: the new generation's own handshake" \
    $(( tls_before + 2 )) "$(origin_count "$TMP/om.log" tls)"
check_eq "keep-alive across a reload: no session of the old one resumed" \
    "$resumed_before" "$(origin_count "$TMP/om.log" tls '"resumed": true')"

WRONG_PIN1=sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
WRONG_PIN2=sha256/AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
keepalive_across_reload ka-revoke "$PF" "$PP_F" "$TMP/f.conf" \
    "$(conf "$PF" "shutdown_timeout = 1s" |
    sed -e "s|^pin = $PIN_INTER\$|pin = $WRONG_PIN1|" \
    -e "s|^pin = $PIN_RSA\$|pin = $WRONG_PIN2|")"
check_eq "revoked pin: the next keep-alive request is a 502 pin-mismatch" \
    "second 502 reused pinproxy; error=tls_certificate_error; details=\"pin-mismatch\"" \
    "$(grep '^second ' "$TMP/ka-revoke.out")"
check_log "revoked pin: event=pin_mismatch for api.test" "$TMP/f.log" \
    "$(kv event pin_mismatch)" "$(kv host api.test)"
origin_settle "$TMP/om.log" 5
check_eq "revoked pin: the origin saw no request after the reload" \
    "$KA_REQUESTS" "$(origin_count "$TMP/om.log" request)"

# Plaintext requests in a CONNECT tunnel: a reload that takes the tunnel's
# port out of connect_ports reaches the next one.
conf "$PF" "shutdown_timeout = 1s" >"$TMP/f.conf"
reload "$PP_F" "$TMP/f.log"
keepalive_across_reload ka-port "$PF" "$PP_F" "$TMP/f.conf" \
    "$(conf "$PF" "shutdown_timeout = 1s
connect_ports = 8443")" /hello --tunnel api.test --plain
check_eq "connect_ports without the tunnel's port: the next request in it \
is a 403 port-denied" "first 200|second 403 reused pinproxy; \
error=http_request_denied; details=\"port-denied\"|" \
    "$(tr '\n' '|' <"$TMP/ka-port.out")"
origin_settle "$TMP/om.log" 5
check_eq "connect_ports without the tunnel's port: no request went on" \
    "$KA_REQUESTS" "$(origin_count "$TMP/om.log" request)"
stop_pinproxy "$PP_F" "$TMP/f.log"

# Memory that handshakes freed goes back to the system once they pause,
# also while connections stay open (before, only once none was left): an
# intercepted keep-alive connection's first request, a pause, then its
# second request on the same connection.
PT=$(free_port)
conf "$PT" "log_level = debug" >"$TMP/t.conf"
check "pinproxy T listens on 127.0.0.1:$PT" \
    start_pinproxy PP_T "$PT" "$TMP/t.conf" "$TMP/t.log"
trims()
{
	grep -c 'freed memory given back' "$TMP/t.log"
}
before=$(trims)
spawn KT_PID python3 "$KEEPALIVE" "$PT" /hello "$TMP/kt.go" \
    --tunnel api.test --cafile "$TMP/ca.pem" >"$TMP/kt.out" 2>"$TMP/kt.err"
wait_line "$TMP/kt.out" '^first ' ||
    diag "no first answer: $(cat "$TMP/kt.err")"
trimmed=no
for _ in $(seq 60); do
	if [ "$(trims)" -gt "$before" ]; then
		trimmed=yes
		break
	fi
	t_sleep 0.05
done
check_eq "an open intercepted connection: freed memory given back within \
3 s of its handshakes" yes "$trimmed"
touch "$TMP/kt.go"
wait "$KT_PID" 2>/dev/null
check_eq "an open intercepted connection: still served after the trim" \
    "first 200|second 200 reused -|" "$(tr '\n' '|' <"$TMP/kt.out")"
stop_pinproxy "$PP_T" "$TMP/t.log"

# A stop just after a client connected: its first request, sent once the
# stop began, is answered (with Connection: close), where the connection
# was closed unanswered before; a connection that sends nothing closes
# once that grace (1 s from its accept) is over, not at shutdown_timeout.
cat >"$TMP/late.py" <<'EOF'
import re, socket, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
# With a third argument, the first request is a CONNECT to it, and only
# the head of its answer is read; with a fourth, a request (\r and \n
# escaped) then goes in the tunnel, and its answer is read to the end.
# A third argument --slow-head sends the GET's head in two parts, the
# second 1.3 s after the first; early:TARGET sends the CONNECT 1.2 s
# after connecting and before the stop, and only INNER after it began.
slow = len(sys.argv) > 3 and sys.argv[3] == "--slow-head"
target = sys.argv[3] if len(sys.argv) > 3 and not slow else None
early = target is not None and target.startswith("early:")
if early:
    target = target[len("early:"):]
inner = sys.argv[4].encode().decode("unicode_escape").encode() \
    if len(sys.argv) > 4 else None
first = socket.create_connection(("127.0.0.1", port), timeout=5)
silent = socket.create_connection(("127.0.0.1", port), timeout=5)
data = b""
if early:
    time.sleep(1.2)
    first.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" %
                  (target.encode(), target.encode()))
    while b"\r\n\r\n" not in data:
        data += first.recv(65536)
print("ready", flush=True)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    with open(log, errors="replace") as f:
        if re.search(r"(^| )event=stopping( |$)", f.read(), re.M):
            break
    time.sleep(0.005)
try:
    if early:
        pass
    elif target:
        first.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" %
                      (target.encode(), target.encode()))
    else:
        first.sendall(b"GET http://api.test/hello HTTP/1.1\r\n")
        if slow:
            time.sleep(1.3)
        first.sendall(b"Host: api.test\r\n\r\n")
    while not (target and b"\r\n\r\n" in data):
        chunk = first.recv(65536)
        if not chunk:
            break
        data += chunk
    if inner and data.startswith(b"HTTP/1.1 200"):
        first.sendall(inner)
        answer = b""
        while True:
            chunk = first.recv(65536)
            if not chunk:
                break
            answer += chunk
        ihead = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        print("inner", ihead.split(" ")[1] if ihead.startswith("HTTP/")
              else "none", "close" if re.search(r"(?im)^connection: *close",
              ihead) else "keep", flush=True)
    first.close()
except OSError as e:
    data = b""
    print("error", e, flush=True)
head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
status = head.split(" ")[1] if head.startswith("HTTP/") else "none"
close = re.search(r"(?im)^connection: *close", head) is not None
print("first", status, "close" if close else "keep", flush=True)
try:
    print("silent", len(silent.recv(1)), flush=True)
except OSError as e:
    print("silent error", e, flush=True)
EOF
PL=$(free_port)
conf "$PL" "shutdown_timeout = 6s" >"$TMP/l.conf"
check "pinproxy L listens on 127.0.0.1:$PL" \
    start_pinproxy PP_L "$PL" "$TMP/l.conf" "$TMP/l.log"
spawn LATE_PID python3 "$TMP/late.py" "$PL" "$TMP/l.log" >"$TMP/late.out"
wait_ready "$TMP/late.out"
start=$(now_ms)
kill -TERM "$PP_L"
wait "$LATE_PID" 2>/dev/null
wait_exit "$PP_L" 10
ms=$(( $(now_ms) - start ))
check_eq "a request sent just after the stop began is answered" \
    "first 200 close" "$(grep '^first\|^error' "$TMP/late.out")"
check_eq "a silent new connection is closed by the stop" "silent 0" \
    "$(grep '^silent' "$TMP/late.out")"
check_eq "pinproxy L exits 0" 0 "$EXIT_RC"
check "the stop took the grace, not shutdown_timeout ($ms ms)" \
    test "$ms" -lt 3000
check_log "the stop: event=stopped, connections finished" "$TMP/l.log" \
    "$(kv event stopped)" "$(kv reason 'connections finished')"
# late NAME ARG...: the late client (late.py ARG...) of a new pinproxy,
# whose first request is sent once the stop began; what the client said
# is in $TMP/NAME.out, pinproxy's exit status in EXIT_RC.
late()
{
	local name=$1 port
	shift
	port=$(free_port)
	conf "$port" "shutdown_timeout = 6s" >"$TMP/$name.conf"
	start_pinproxy PP_LATE "$port" "$TMP/$name.conf" "$TMP/$name.log" ||
	    diag "pinproxy -c $name.conf is not listening"
	spawn LATE_PID python3 "$TMP/late.py" "$port" "$TMP/$name.log" "$@" \
	    >"$TMP/$name.out"
	wait_ready "$TMP/$name.out"
	kill -TERM "$PP_LATE"
	wait "$LATE_PID" 2>/dev/null
	wait_exit "$PP_LATE" 10
}
# The same with a CONNECT: a first request is served as ever (the 503 of
# a CONNECT read during a stop is for one behind an answer, see
# proxy_lifecycle.sh).
late late2 api.test:443
check_eq "a CONNECT sent just after the stop began opens its tunnel" \
    "first 200 keep" "$(grep '^first\|^error' "$TMP/late2.out")"
check_eq "pinproxy exits 0" 0 "$EXIT_RC"
# A first head begun within the stop's grace has header_timeout to end.
late late-sh --slow-head
check_eq "a first head begun within the stop's grace, ended after it: answered" \
    "first 200 close" "$(grep '^first\|^error' "$TMP/late-sh.out")"
# The tunnel's first request is waited for as the connection's was: the
# CA page, in a CONNECT to its name, is served (with close). A protocol
# switch in it is not started (the CONNECT was answered before it).
late late-ca pinproxy.internal:80 \
    'GET /ca.pem HTTP/1.1\r\nHost: pinproxy.internal\r\n\r\n'
check_eq "a CONNECT to the CA page's name just after the stop began: its page is served" \
    "inner 200 close|first 200 keep" \
    "$(grep '^first\|^inner\|^error' "$TMP/late-ca.out" | paste -s -d '|')"
late late-up pinproxy.internal:80 \
    'GET /ca.pem HTTP/1.1\r\nHost: pinproxy.internal\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'
check_eq "... an Upgrade in that tunnel gets 503 (stopping)" \
    "inner 503 close|first 200 keep" \
    "$(grep '^first\|^inner\|^error' "$TMP/late-up.out" | paste -s -d '|')"
# The grace counts from the tunnel's start: a connection older than it
# whose CONNECT was answered just before the stop has its first request
# in the tunnel served.
late late-early early:pinproxy.internal:80 \
    'GET /ca.pem HTTP/1.1\r\nHost: pinproxy.internal\r\n\r\n'
check_eq "a CONNECT answered just before the stop, on an older connection: its first request is served" \
    "inner 200 close|first 200 keep" \
    "$(grep '^first\|^inner\|^error' "$TMP/late-early.out" | paste -s -d '|')"

# A new connection whose empty lines are still unread in its socket when
# the stop begins (more than the stop looks at): once they are read, it
# has its grace, not header_timeout. pinproxy is stopped (SIGSTOP) while
# the client connects and sends them, so that it accepts the connection
# and sees the SIGTERM in one turn of its loop.
cat >"$TMP/blanks.py" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"\r\n" * 100)
print("ready", flush=True)
try:
    print("eof" if s.recv(65536) == b"" else "data", flush=True)
except OSError as e:
    print("error", e, flush=True)
EOF
PBL=$(free_port)
conf "$PBL" "shutdown_timeout = 10s
header_timeout = 10s" >"$TMP/bl.conf"
check "pinproxy BL listens on 127.0.0.1:$PBL" \
    start_pinproxy PP_BL "$PBL" "$TMP/bl.conf" "$TMP/bl.log"
kill -STOP "$PP_BL"
spawn BL_PID python3 "$TMP/blanks.py" "$PBL" >"$TMP/bl.out"
wait_ready "$TMP/bl.out"
start=$(now_ms)
kill -TERM "$PP_BL"
kill -CONT "$PP_BL"
wait "$BL_PID" 2>/dev/null
wait_exit "$PP_BL" 15
ms=$(( $(now_ms) - start ))
check_eq "200 bytes of empty lines unread at the stop: closed in order" \
    "ready|eof" "$(paste -s -d '|' "$TMP/bl.out")"
check "... after the stop's grace, not header_timeout ($ms ms)" \
    test "$ms" -lt 4000
stopped=$(log_count "$TMP/bl.log" "$(kv event stopped)" \
    "$(kv reason 'connections finished')")
check_eq "... pinproxy exits 0, connections finished" "0 1" \
    "$EXIT_RC $stopped"

# A head begun before the stop keeps its header_timeout: 408 then, not
# a cut at shutdown_timeout.
cat >"$TMP/partial.py" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n")
data = b""
while not data.endswith(b"hello from origin\n"):
    data += s.recv(65536)
time.sleep(2.5)
s.sendall(b"GET http://api.test/hello HTTP/1.1\r\n")
print("ready", flush=True)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError as e:
    print("error", e, flush=True)
print("second", data.split(b"\r\n", 1)[0].decode("latin-1") or "none")
EOF
PP2=$(free_port)
conf "$PP2" "header_timeout = 3s
shutdown_timeout = 2s" >"$TMP/partial.conf"
check "pinproxy P2 listens on 127.0.0.1:$PP2" \
    start_pinproxy PP_P2 "$PP2" "$TMP/partial.conf" "$TMP/partial.log"
spawn PARTIAL python3 "$TMP/partial.py" "$PP2" >"$TMP/partial.out"
wait_ready "$TMP/partial.out"
kill -TERM "$PP_P2"
wait "$PARTIAL" 2>/dev/null
wait_exit "$PP_P2" 10
check_eq "a head begun before the stop: 408 at its header_timeout" \
    "second HTTP/1.1 408 Request Timeout" \
    "$(grep '^second\|^error' "$TMP/partial.out")"
check_log "... and the stop ends with the connections" "$TMP/partial.log" \
    "$(kv event stopped)" "$(kv reason 'connections finished')"

# busy_poll: after work the loop polls on for the window instead of
# sleeping, and an idle daemon sleeps; a reload turns it off; a window
# beyond 10ms is refused with its line. CPU time from schedstat (ns).
cpu_ns()
{
	local ns _
	read -r ns _ <"/proc/$1/schedstat" 2>/dev/null && echo "$ns"
}

# knocks PORT: ten connections opened and closed 50 ms apart: with
# busy_poll = 10ms, 100 ms of polling, of which a loaded machine (make
# check runs 8 tests on 2 CPUs) gives the daemon a fair share.
knocks()
{
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		exec 9<>"/dev/tcp/127.0.0.1/$1" && exec 9>&-
		t_sleep 0.05
	done
}

PB=$(free_port)
conf "$PB" "busy_poll = 10ms
shutdown_timeout = 1s" >"$TMP/b.conf"
check "pinproxy B (busy_poll = 10ms) listens on 127.0.0.1:$PB" \
    start_pinproxy PP_B "$PB" "$TMP/b.conf" "$TMP/b.log"
if [ -z "$(cpu_ns "$PP_B")" ]; then
	for _ in 1 2 3 4 5; do
		skip "busy_poll: no /proc/PID/schedstat on this kernel"
	done
else
	alive "busy_poll = 10ms" "$PP_B" "$PB"
	t_sleep 0.5
	c0=$(cpu_ns "$PP_B")
	t_sleep 1
	idle=$(( ($(cpu_ns "$PP_B") - c0) / 1000000 ))
	check "busy_poll: an idle daemon sleeps ($idle ms of CPU in 1 s)" \
	    test "$idle" -lt 50
	c0=$(cpu_ns "$PP_B")
	knocks "$PB"
	on=$(( ($(cpu_ns "$PP_B") - c0) / 1000 ))
	check "busy_poll: ten connections, ten 10 ms polls ($on us of CPU)" \
	    test "$on" -ge 20000
	check "busy_poll: reloaded to 0" reload "$PP_B" "$TMP/b.log" \
	    "$TMP/b.conf" "$(conf "$PB" "busy_poll = 0
shutdown_timeout = 1s")"
	c0=$(cpu_ns "$PP_B")
	knocks "$PB"
	off=$(( ($(cpu_ns "$PP_B") - c0) / 1000 ))
	check "busy_poll = 0: the same connections take less than half ($off us)" \
	    test $(( off * 2 )) -lt "$on"
fi
conf "$PB" "busy_poll = 11ms" >"$TMP/b-bad.conf"
run b-bad "$PINPROXY" -t -c "$TMP/b-bad.conf"
check_rc "busy_poll = 11ms is refused" 1 b-bad
check_grep "busy_poll = 11ms: the error names its line and the limit" \
    "b-bad.conf:7: .*busy_poll.*at most 10ms" "$TMP/b-bad.err"
stop_pinproxy "$PP_B" "$TMP/b.log"

# A client that never reads the answer to its last request: the answer
# went whole into the kernel's send buffer (1 MiB; the client's receive
# buffer is 4 KiB), so pinproxy holds nothing and closes. Closed with a
# FIN, the socket would keep that MiB for as long as the client answers
# the kernel's window probes, outside max_connections: it is reset once
# the client took nothing for idle_timeout. A client that takes some
# within every idle_timeout gets it all.
# nonreader.py PORT SIZE WAIT [PAUSE|shut|hold|rst]: GET SIZE bytes with
# close, wait WAIT s, then read; with PAUSE, PAUSE s after every 256 KiB
# read; with shut, the request keeps the connection and the client's
# sending side is shut down 0.5 s after it, once the answer went (pinproxy
# closes when it reads that end between requests); with hold, it says
# "ready" before what came, and keeps its socket open 10 s more; with
# rst, it resets the connection after WAIT instead of reading, says
# "ready", and lives 10 s more.
cat >"$TMP/nonreader.py" <<'EOF'
import socket, struct, sys, time
port, size, wait = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else "0"
shut, hold, rst = mode == "shut", mode == "hold", mode == "rst"
pause = 0 if shut or hold or rst else float(mode)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096 if not pause else 32768)
s.settimeout(30)
s.connect(("127.0.0.1", port))
s.sendall(b"GET http://api.test/bytes/%d HTTP/1.1\r\nHost: api.test\r\n%s"
          b"\r\n" % (size, b"" if shut else b"Connection: close\r\n"))
if shut:
    time.sleep(0.5)
    s.shutdown(socket.SHUT_WR)
time.sleep(wait)
if rst:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("ready", flush=True)
    time.sleep(10)
    sys.exit(0)
data, end, mark = bytearray(), "eof", 262144
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
        if pause and len(data) >= mark:
            time.sleep(pause)
            mark += 262144
except OSError as e:
    end = type(e).__name__
body = bytes(data).partition(b"\r\n\r\n")[2]
print(*(["ready"] if hold else []), end,
      "all" if len(body) == size else "short", flush=True)
if hold:
    time.sleep(10)
EOF
PNR=$(free_port)
conf "$PNR" "idle_timeout = 1s
shutdown_timeout = 1s
log_level = debug" >"$TMP/nr.conf"
check "pinproxy NR listens on 127.0.0.1:$PNR" \
    start_pinproxy PP_NR "$PNR" "$TMP/nr.conf" "$TMP/nr.log"
check_eq "a client that never reads its last answer: reset, the kernel's copy freed" \
    "ConnectionResetError short" "$(py "$TMP/nonreader.py" "$PNR" 1048576 5)"
down=$(grep -m 1 ' event=access ' "$TMP/nr.log" |
    sed -n 's/.* bytes_down=\([0-9]*\).*/\1/p')
check "... the whole answer had gone to the kernel (bytes_down=$down)" \
    test "${down:-0}" -gt 1048576
check_log "... a debug line says it was reset" "$TMP/nr.log" \
    "$(kv event debug)" "reset, having taken nothing"
check_eq "... the same from a client that shut down its sending side" \
    "ConnectionResetError short" \
    "$(py "$TMP/nonreader.py" "$PNR" 1048576 5 shut)"
check_eq "a client that pauses shorter than idle_timeout: the whole answer" \
    "eof all" "$(py "$TMP/nonreader.py" "$PNR" 1048576 2.5 0.6)"
stop_pinproxy "$PP_NR" "$TMP/nr.log"
# With idle_timeout = 20s, a client that takes it all 3 s on and keeps its
# socket open gives its slot back within LINGER_MS of that, not at the
# next of the watch's looks a quarter of idle_timeout apart.
PNH=$(free_port)
SNH=$(free_port)
conf "$PNH" "idle_timeout = 20s
shutdown_timeout = 1s
stats_listen = 127.0.0.1:$SNH" >"$TMP/nh.conf"
check "pinproxy NH listens on 127.0.0.1:$PNH" \
    start_pinproxy PP_NH "$PNH" "$TMP/nh.conf" "$TMP/nh.log"
# held MODE: nonreader.py's MODE against pinproxy NH; once it said
# "ready", the ms until no connection is open (ms=, up to 10 s) and the
# last count seen (active=); what it said is in $TMP/held.out.
held()
{
	local pid i
	spawn pid python3 "$TMP/nonreader.py" "$PNH" 1048576 3 "$1" \
	    >"$TMP/held.out"
	wait_ready "$TMP/held.out"
	start=$(now_ms)
	active=
	for (( i = 0; i < 200; i++ )); do
		active=$(curl -sS --noproxy '' --max-time 5 \
		    "http://127.0.0.1:$SNH/metrics" 2>/dev/null |
		    awk '$1 == "pinproxy_connections_active" { print $2 }')
		[ "$active" = 0 ] && break
		t_sleep 0.05
	done
	ms=$(( $(now_ms) - start ))
	stop "$pid"
}
held hold
check_eq "a client that took its answer late, socket kept open: it had it all" \
    "ready eof all" "$(cat "$TMP/held.out")"
check "... its slot is given back soon after ($ms ms, active=$active)" \
    test "$active" = 0 -a "$ms" -lt 2500
# A client that resets while the kernel holds its answer holds nothing:
# its slot is given back at the next look, not after idle_timeout.
held rst
check "a client that resets while its answer waits in the kernel: its slot is given back ($ms ms, active=$active)" \
    test "$active" = 0 -a "$ms" -lt 2500
stop_pinproxy "$PP_NH" "$TMP/nh.log"

# The same for a server: an upload its server never reads (1 MiB, which
# the kernel takes whole: the server's receive buffer is 4 KiB), behind
# an answer it gave after the head with close, the server keeping its
# socket. Closed with a FIN, the socket towards it would keep the upload
# for as long as the server answers the kernel's probes, after the
# exchange and its slot are gone; it is reset once the server took none
# for idle_timeout. A server that reads late, but within it, gets all.
# sink.py PORT WAIT: one connection on 127.0.0.2:PORT; reads the head,
# answers 0.5 s later, waits WAIT s, then reads and says how it ended
# and how many bytes came.
cat >"$TMP/sink.py" <<'EOF'
import socket, sys, time
port, wait = int(sys.argv[1]), float(sys.argv[2])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
l.bind(("127.0.0.2", port))
l.listen(1)
print("ready", flush=True)
c = l.accept()[0]
c.settimeout(20)
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += c.recv(1)
time.sleep(0.5)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
time.sleep(wait)
n, end = 0, "eof"
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
except OSError as e:
    end = type(e).__name__
print(end, n, flush=True)
EOF
# upload PORT SIZE: POST SIZE bytes through pinproxy UP to the sink on
# 127.0.0.2:PORT; prints the answer's status line.
upload()
{
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
size = int(sys.argv[3])
s.sendall(b"POST http://127.0.0.2:%s/ HTTP/1.1\r\nHost: 127.0.0.2:%s\r\n"
          b"Content-Length: %d\r\n\r\n" % (sys.argv[2].encode(),
          sys.argv[2].encode(), size) + b"u" * size)
data = b""
while b"\r\n" not in data:
    data += s.recv(4096)
print(data.split(b"\r\n")[0].decode())' "$PUP" "$1" "$2"
}
PUP=$(free_port)
SK1=$(free_port)
SK2=$(free_port)
SK3=$(free_port)
conf "$PUP" "idle_timeout = 3s
shutdown_timeout = 1s
log_level = debug
plain_ports = $SK1 $SK2 $SK3
unpinned = pass" | grep -v '^unpinned = block$' >"$TMP/up.conf"
check "pinproxy UP listens on 127.0.0.1:$PUP" \
    start_pinproxy PP_UP "$PUP" "$TMP/up.conf" "$TMP/up.log"
# sink_case NAME PORT WAIT: the sink on PORT waits WAIT s; its report in
# $TMP/NAME.out, the client's status line in $TMP/NAME.status.
sink_case()
{
	local pid
	spawn pid python3 "$TMP/sink.py" "$2" "$3" >"$TMP/$1.out"
	wait_ready "$TMP/$1.out"
	upload "$2" 1048576 >"$TMP/$1.status" 2>&1
	wait "$pid" 2>/dev/null
}
sink_case sink-stall "$SK1" 5
check_eq "an upload its server never reads: the client has its answer" \
    "HTTP/1.1 200 OK" "$(cat "$TMP/sink-stall.status")"
check_eq "... and the server a reset, not the upload 5 s later" \
    "ConnectionResetError" "$(sed -n 2p "$TMP/sink-stall.out" | cut -d ' ' -f 1)"
sink_case sink-late "$SK2" 0.7
check_eq "a server that reads the upload late, within idle_timeout: all of it" \
    "eof 1048576" "$(sed -n 2p "$TMP/sink-late.out")"

# An upload whose tail (up to the relay's 128 KiB high water) is still in
# pinproxy's buffer, not yet in the kernel, when its server's early answer
# ends the exchange: the server is reset, not given an end of file after a
# truncated body. Where that window lies depends on the kernel's buffers,
# so uploads of many sizes run at once (upsweep.py, each server answering
# 1 s after the head and reading 1.5 s later): a coarse pass finds the
# first size not delivered whole, a pass in 64 KiB steps below it crosses
# the window. Each server gets all of the upload or a reset.
cat >"$TMP/upsweep.py" <<'EOF'
import socket, sys, threading, time
proxy, port, keep = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sizes = [int(a) for a in sys.argv[4:]]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
l.bind(("127.0.0.2", port))
l.listen(len(sizes))
l.settimeout(20)
sunk = {}

def sink(c):
    c.settimeout(20)
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        b = c.recv(1)
        if not b:
            return
        head += b
    size = int(head.split(b" ")[1].rsplit(b"/", 1)[1])
    time.sleep(1.0)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" +
              (b"" if keep == "keep" else b"Connection: close\r\n") +
              b"\r\n")
    time.sleep(1.5)
    n, end = 0, "eof"
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            n += len(b)
    except OSError as e:
        end = type(e).__name__
    sunk[size] = (end, n)
    c.close()

def accept():
    for _ in sizes:
        c = l.accept()[0]
        threading.Thread(target=sink, args=(c,), daemon=True).start()

def client(size):
    s = socket.create_connection(("127.0.0.1", proxy), timeout=20)
    s.sendall(b"POST http://127.0.0.2:%d/%d HTTP/1.1\r\n"
              b"Host: 127.0.0.2:%d\r\nContent-Length: %d\r\n\r\n"
              % (port, size, port, size) + b"u" * size)
    s.recv(4096)
    s.close()

threading.Thread(target=accept, daemon=True).start()
ts = [threading.Thread(target=client, args=(s,), daemon=True) for s in sizes]
for t in ts:
    t.start()
deadline = time.monotonic() + 30
while len(sunk) < len(sizes) and time.monotonic() < deadline:
    time.sleep(0.05)
for s in sizes:
    end, n = sunk.get(s, ("none", 0))
    print(s, end, n, flush=True)
EOF
# sweep OUT MODE SIZE...: upsweep.py's report in $TMP/OUT.out; prints the
# first size that did not arrive whole (empty: all did).
sweep()
{
	local out=$1 mode=$2
	shift 2
	python3 "$TMP/upsweep.py" "$PUP" "$SK3" "$mode" "$@" >"$TMP/$out.out" 2>&1
	awk '$2 != "eof" || $1 != $3 { print $1; exit }' "$TMP/$out.out"
}
# The kernel takes more the larger tcp_wmem's largest send buffer is (4 MiB
# by default): the coarse pass spans a quarter of it to twice it, and
# passes of ten steps narrow the steps below the first size not delivered
# whole down to at most 640 KiB.
wmem=$(awk '{ print $3 }' /proc/sys/net/ipv4/tcp_wmem 2>/dev/null)
lo=$(( ${wmem:-4194304} / 4 ))
step=$(( (${wmem:-4194304} * 2 - lo) / 14 ))
first=$(sweep sweep1 close $(for (( i = 0; i < 15; i++ )); do
	echo $(( lo + i * step )); done))
check "uploads of $lo to $(( lo + 14 * step )) bytes behind an early \
answer: the small ones arrive whole, a large one does not \
(first: ${first:-none})" test -n "$first" -a "${first:-0}" -gt "$lo"
first=${first:-$lo}
while [ "$step" -gt 655360 ]; do
	step=$(( step / 10 ))
	next=$(sweep sweep-narrow close $(for (( i = 10; i >= 0; i-- )); do
		echo $(( first - i * step )); done))
	first=${next:-$first}
done
# Then 64 KiB steps, narrower than the window (the relay's 128 KiB high
# water): some upload is read whole, its tail not yet written, when its
# answer ends the exchange; the debug line says it was reset so. With
# the answer with close, and one that would keep the connection.
unwritten='answered before it took the whole request: reset'
for keep in close keep; do
	n=$(grep -c "$unwritten" "$TMP/up.log")
	sweep "sweep-$keep" "$keep" $(for (( i = 10; i >= 0; i-- )); do
		echo $(( first - i * 65536 )); done) >/dev/null
	check_eq "uploads in 64 KiB steps up to it, the answer with $keep: \
each server has all of its upload or a reset, never an end of file after \
part of it" "" \
	    "$(awk '!($2 == "eof" && $1 == $3) &&
	        $2 != "ConnectionResetError"' "$TMP/sweep-$keep.out")"
	check "... the last of them is reset" \
	    grep -q "^$first ConnectionResetError " "$TMP/sweep-$keep.out"
	check "... and one was read whole but not yet all written (the \
window was crossed)" test "$(grep -c "$unwritten" "$TMP/up.log")" -gt "$n"
done
stop_pinproxy "$PP_UP" "$TMP/up.log"

done_testing
