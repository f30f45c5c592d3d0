#!/bin/bash
# pinproxy's life cycle end to end: the sd_notify messages around start,
# reload and stop; a reload that changes pin sets while a download goes on;
# a broken file on reload; the graceful stop on SIGTERM and SIGINT within
# shutdown_timeout, also with a response still queued for a slow client.
# Idle and kept-alive connections are in proxy_idle.sh. Everything runs on
# 127.0.0.1 with a TLS test origin.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

unset NOTIFY_SOCKET

NOTIFY_SOCK="$TMP/notify.sock"

# status PORT URL: the status code of a GET through the proxy.
status()
{
	pcurl "$1" -o /dev/null -w '%{http_code}' "$2" 2>/dev/null
}

# wait_size FILE...: wait up to 5 s until each FILE holds a byte or more.
wait_size()
{
	local _ f
	for f in "$@"; do
		for _ in $(seq 100); do
			[ -s "$f" ] && break
			t_sleep 0.05
		done
		[ -s "$f" ] || return 1
	done
}

# running PID...: every one of the processes is still there.
running()
{
	kill -0 "$@" 2>/dev/null
}

# refused PORT: nothing accepts connections on 127.0.0.1:PORT.
refused()
{
	! listening 127.0.0.1 "$1"
}

# download NAME PORT PATH [CURL-ARGS...]: fetch http://api.test/PATH in
# the background, writing each piece as it comes; its PID in DL_PID, the
# body in $TMP/NAME.body and curl's exit status in $TMP/NAME.rc.
download()
{
	local name=$1 port=$2 path=$3
	shift 3
	spawn DL_PID sh -c 'out=$1 proxy=$2 url=$3; shift 3
	    curl -sSN --noproxy "" -x "$proxy" --max-time 30 -o "$out.body" \
	    "$@" "$url" 2>"$out.err"; echo $? >"$out.rc"' \
	    sh "$TMP/$name" "http://127.0.0.1:$port" \
	    "http://api.test/$path" "$@"
}

# slow_body N: the body of the origin's /slow/N.
slow_body()
{
	yes slow | head -n "$1"
}

# check_download NAME DESCRIPTION COMMAND...: curl succeeded and the body
# of "download NAME" is what COMMAND prints (two cases).
check_download()
{
	local name=$1 desc=$2 body="$TMP/$1.body" want
	shift 2
	want="$("$@" | wc -c) $("$@" | sha256sum | cut -d ' ' -f 1)"
	check_eq "$desc: curl succeeds" 0 "$(cat "$TMP/$name.rc" 2>/dev/null)"
	check_eq "$desc: ${want%% *} bytes with the origin's sha256" "$want" \
	    "$(stat -c %s "$body" 2>/dev/null) $(cat "$body" 2>/dev/null |
	    sha256sum | cut -d ' ' -f 1)"
	[ "$(cat "$TMP/$name.rc" 2>/dev/null)" = 0 ] ||
	    diag "curl: $(cat "$TMP/$name.err" 2>/dev/null)"
}

# check_after DESCRIPTION FILE FIRST PATTERN...: a line matching every
# PATTERN follows the first line matching FIRST.
check_after()
{
	local desc=$1 file=$2 first=$3 n
	shift 3
	n=$(grep -nE -- "$first" "$file" 2>/dev/null | head -n 1 |
	    cut -d : -f 1)
	tail -n +"${n:-999999}" "$file" 2>/dev/null >"$TMP/after.log"
	if [ -n "$n" ] && log_lines "$TMP/after.log" "$@" >/dev/null; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "$(tail -n 15 "$file" 2>/dev/null)"
	fi
}

# notify_line N: the Nth datagram, waiting up to 5 s for it.
notify_line()
{
	local _
	for _ in $(seq 100); do
		[ "$(cat "$TMP/notify.log" 2>/dev/null | wc -l)" -ge "$1" ] &&
		    break
		t_sleep 0.05
	done
	sed -n "$1p" "$TMP/notify.log" 2>/dev/null
}

# The access line of a /slow/N transfer (not of a pattern download).
SLOW_DOWN='(^| )bytes_down=[0-9]{1,4}( |$)'

# The sd_notify side of systemd: one line per datagram with the
# CLOCK_MONOTONIC time of arrival in microseconds, whether PORT accepted a
# connection right after it arrived, and the datagram, its newlines made
# "|".
cat >"$TMP/notifyd.py" <<'EOF'
import socket, sys, time
path, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
f = open(out, "a")
print("ready", flush=True)
while True:
    data = s.recv(4096).decode("utf-8", "replace")
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        listening = "listening"
    except OSError:
        listening = "refused"
    f.write("%d\t%s\t%s\n" % (now, listening, data.replace("\n", "|")))
    f.flush()
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

NEW_PINS="
[pins:new]
hosts = new.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM"

# Instance A speaks sd_notify; it is reloaded twice, then stopped while
# downloads are in progress.
PA=$(free_port)
conf "$PA" "shutdown_timeout = 10s" >"$TMP/a.conf"
spawn NOTIFYD python3 "$TMP/notifyd.py" "$NOTIFY_SOCK" "$PA" \
    "$TMP/notify.log" >"$TMP/notifyd.out"
wait_ready "$TMP/notifyd.out"
check "pinproxy A listens on 127.0.0.1:$PA" \
    start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log" \
    NOTIFY_SOCKET="$NOTIFY_SOCK"

line=$(notify_line 1)
msg=$(printf '%s' "$line" | cut -f 3)
check "sd_notify: READY=1 with a STATUS= line after start" \
    grep -qE '(^|\|)READY=1(\||$)' <<<"$msg"
check "sd_notify: the start's STATUS= line is not empty" \
    grep -qE '(^|\|)STATUS=[^|]+' <<<"$msg"
check_eq "sd_notify: READY=1 once the port accepts connections" \
    listening "$(printf '%s' "$line" | cut -f 2)"
[ -n "$msg" ] || diag "notify datagrams: $(cat "$TMP/notify.log")"

check_eq "before the reloads: new.test is blocked" 403 \
    "$(status "$PA" http://new.test/hello)"
check_eq "before the reloads: api.test answers" 200 \
    "$(status "$PA" http://api.test/hello)"

# A broken file on reload: the first error's FILE:LINE in the log, and the
# old configuration serves on, though the file adds new.test.
{
	conf "$PA" "shutdown_timeout = 10s"
	printf '%s\n' "$NEW_PINS"
	echo "pin = sha256/AAAA"
	echo "bogus_key = 1"
} >"$TMP/a.conf"
bad_line=$(grep -n '^pin = sha256/AAAA$' "$TMP/a.conf" | cut -d : -f 1)
kill -HUP "$PP_A"
check_log "broken file: level=error event=reload_failed" "$TMP/a.log" \
    "$(kv level error)" "$(kv event reload_failed)"
check_log "broken file: error= names $(basename "$TMP/a.conf"):$bad_line" \
    "$TMP/a.log" "$(kv event reload_failed)" \
    "(^| )error=\"?$(q "$TMP/a.conf:$bad_line:")"
check_log "broken file: error= counts the other error" "$TMP/a.log" \
    "$(kv event reload_failed)" \
    "$(q "(and 1 more error: pinproxy -t lists them)")\"?( |$)"
check_eq "broken file: api.test still answers" 200 \
    "$(status "$PA" http://api.test/hello)"
check_eq "broken file: new.test is still blocked" 403 \
    "$(status "$PA" http://new.test/hello)"
check "broken file: pinproxy is still running" running "$PP_A"

# SIGUSR1 and SIGUSR2 (which log rotation sends some daemons) are ignored.
kill -USR1 "$PP_A"
kill -USR2 "$PP_A"
check_eq "SIGUSR1 and SIGUSR2 are ignored: api.test still answers" 200 \
    "$(status "$PA" http://api.test/hello)"
check "SIGUSR1 and SIGUSR2: pinproxy is still running" running "$PP_A"

# A reload that pins new.test while a download started before it runs on.
conf "$PA" "shutdown_timeout = 10s" >"$TMP/a.conf"
printf '%s\n' "$NEW_PINS" >>"$TMP/a.conf"
download reload-slow "$PA" slow/20
DL_RELOAD_SLOW=$DL_PID
download reload "$PA" bytes/16777216 --limit-rate 4M
DL_RELOAD=$DL_PID
check "reload: the downloads have begun" \
    wait_size "$TMP/reload-slow.body" "$TMP/reload.body"
kill -HUP "$PP_A"
check_log "reload: event=reloaded pinsets=2" "$TMP/a.log" \
    "$(kv event reloaded)" "$(kv pinsets 2)"
check_eq "reload: new.test answers under the new pin set" 200 \
    "$(status "$PA" http://new.test/hello)"
check "reload: the downloads are still in progress" \
    running "$DL_RELOAD_SLOW" "$DL_RELOAD"
wait "$DL_RELOAD_SLOW" 2>/dev/null
wait "$DL_RELOAD" 2>/dev/null
check_download reload-slow "reload: the slow download across the reload" \
    slow_body 20
check_download reload "reload: 16 MiB across the reload" \
    python3 "$ORIGIN" --pattern 16777216
check_after "reload: the slow transfer ended after event=reloaded" \
    "$TMP/a.log" "$(kv event reloaded)" "$(kv event access)" \
    "$(kv host api.test)" "$(kv status 200)" "$SLOW_DOWN"

# SIGTERM with shutdown_timeout = 10s: transfers in progress finish, new
# connections are refused.
download term-slow "$PA" slow/15
DL_TERM_SLOW=$DL_PID
download term "$PA" bytes/12582912 --limit-rate 4M
DL_TERM=$DL_PID
check "SIGTERM: the downloads have begun" \
    wait_size "$TMP/term-slow.body" "$TMP/term.body"
kill -TERM "$PP_A"
check_log "SIGTERM: event=stopping" "$TMP/a.log" "$(kv event stopping)"
if running "$PP_A" "$DL_TERM_SLOW"; then
	check "SIGTERM: new connections are refused while stopping" \
	    refused "$PA"
else
	not_ok "SIGTERM: new connections are refused while stopping"
	diag "pinproxy or the download ended before the check"
fi
wait "$DL_TERM_SLOW" 2>/dev/null
wait "$DL_TERM" 2>/dev/null
check_download term-slow "SIGTERM: the slow download in progress" \
    slow_body 15
check_download term "SIGTERM: 12 MiB in progress" \
    python3 "$ORIGIN" --pattern 12582912
check_after "SIGTERM: the slow transfer ended after event=stopping" \
    "$TMP/a.log" "$(kv event stopping)" "$(kv event access)" \
    "$(kv host api.test)" "$(kv status 200)" "$SLOW_DOWN"
wait_exit "$PP_A" 10
check_eq "SIGTERM: pinproxy exits 0" 0 "$EXIT_RC"

# The order of the notifications: start, failed reload, reload, stop.
seq_=$(cut -f 3 "$TMP/notify.log" 2>/dev/null | while read -r m; do
	case "|$m|" in
	*"|STOPPING=1|"*) echo STOPPING ;;
	*"|RELOADING=1|"*) echo RELOADING ;;
	*"|READY=1|"*) echo READY ;;
	*) echo "other($m)" ;;
	esac
done | tr '\n' ' ')
check_eq "sd_notify: READY, RELOADING, READY, RELOADING, READY, STOPPING" \
    "READY RELOADING READY RELOADING READY STOPPING " "$seq_"
check_grep "sd_notify: STOPPING=1 extends the stop timeout to \
shutdown_timeout + 10 s" 'STOPPING=1|EXTEND_TIMEOUT_USEC=20000000$' \
    "$TMP/notify.log"
bad=""
n=0
while IFS=$'\t' read -r when _ m; do
	case "|$m|" in
	*"|RELOADING=1|"*) n=$((n + 1)) ;;
	*) continue ;;
	esac
	usec=$(printf '%s' "$m" | tr '|' '\n' | sed -n 's/^MONOTONIC_USEC=//p')
	if ! [[ "$usec" =~ ^[0-9]+$ ]] || [ "$usec" -gt "$when" ] ||
	    [ $(( when - usec )) -gt 2000000 ]; then
		bad="$bad [$m at $when]"
	fi
done <"$TMP/notify.log"
check_eq "sd_notify: both RELOADING=1 have MONOTONIC_USEC= of CLOCK_MONOTONIC" \
    "2" "$n$bad"
stop "$NOTIFYD"

# SIGTERM with shutdown_timeout = 500ms, a transfer that needs 10 s, an
# intercepted tunnel and a forwarder's relay that stay open: each is cut,
# each with its access line. But a forwarder's relay whose server already
# ended its stream, and all of it went to the client (which reads it only
# later), closes in order: the client gets every byte and its end of file.
PB=$(free_port)
FB=$(free_port)
conf "$PB" "shutdown_timeout = 500ms

[forward:fb]
listen = 127.0.0.1:$FB
upstream = 127.0.0.1:$OM
sni = api.test
pinset = api" >"$TMP/b.conf"
check "pinproxy B listens on 127.0.0.1:$PB" \
    start_pinproxy PP_B "$PB" "$TMP/b.conf" "$TMP/b.log"
download cut "$PB" slow/50
DL_CUT=$DL_PID
spawn KA_TUNNEL python3 "$KEEPALIVE" "$PB" /hello "$TMP/b-never.go" \
    --tunnel api.test --cafile "$TMP/ca.pem" >"$TMP/ka-tunnel.out" 2>&1
spawn KA_FWD python3 "$KEEPALIVE" "$FB" /hello "$TMP/b-never.go" \
    >"$TMP/ka-fwd.out" 2>&1
# A tunnel answered, its client silent; a download through the forwarder.
spawn SILENT python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode(), flush=True)
time.sleep(20)' "$PB" >"$TMP/silent.out"
# An intercepted CONNECT whose client stalls in its handshake: its hello
# sent, the answer read, its Finished never sent.
spawn MIDTLS python3 -c '
import socket, ssl, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="api.test")
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
s.sendall(out.read())
s.settimeout(5)
print("answered", len(s.recv(65536)), flush=True)
time.sleep(20)' "$PB" "$TMP/ca.pem" >"$TMP/midtls.out"
spawn FWD_DL python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"GET /slow/50 HTTP/1.1\r\nHost: api.test\r\n\r\n")
got = 0
try:
    while True:
        d = s.recv(65536)
        if not d:
            print("eof", got, flush=True)
            break
        got += len(d)
        if got > 100:
            print("flowing", flush=True)
except ConnectionResetError:
    print("reset", got, flush=True)' "$FB" >"$TMP/fwd-dl.out"
# The half-closed relay: its client sends its request, then reads nothing
# for 3 s through a small receive buffer, its sending side still open.
spawn FWD_HALF stalled fwd-half "$FB" \
    'GET /close/100000 HTTP/1.1\r\nHost: api.test\r\n\r\n' 3 \
    >"$TMP/fwd-half.out"
check "shutdown_timeout: the download has begun" wait_size "$TMP/cut.body"
check "shutdown_timeout: the forwarder's server answered the half-closed \
client" wait_line "$TMP/om.log" '"path": "/close/100000"'
check "shutdown_timeout: an intercepted tunnel is open" \
    wait_line "$TMP/ka-tunnel.out" '^first 200$'
check "shutdown_timeout: a forwarder's connection is open" \
    wait_line "$TMP/ka-fwd.out" '^first 200$'
check "shutdown_timeout: a silent client's tunnel is answered" \
    wait_line "$TMP/silent.out" '^HTTP/1.1 200'
check "shutdown_timeout: a download through the forwarder flows" \
    wait_line "$TMP/fwd-dl.out" '^flowing$'
check "shutdown_timeout: an intercepted client stalls in its handshake" \
    wait_line "$TMP/midtls.out" '^answered [1-9]'
t_sleep 0.3
start=$(now_ms)
kill -TERM "$PP_B"
wait_exit "$PP_B" 10
ms=$(( $(now_ms) - start ))
check_eq "shutdown_timeout = 500ms: pinproxy exits 0" 0 "$EXIT_RC"
# Seven open, six cut: the half-closed forwarder client's server had
# ended, and its connection closes in order.
check_log "shutdown_timeout = 500ms: event=stopped cut=6" "$TMP/b.log" \
    "$(kv event stopped)" "$(kv cut 6)"
check_log "shutdown_timeout: the client stalled in its handshake: 503" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host api.test)" "$(kv status 503)"
# Its 200 went, but nothing was relayed: the stop's 503, as a timeout's
# 408 would be, not a tunnel's 200.
check_log "shutdown_timeout: the silent client's tunnel, never relayed: 503" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode tunnel)" \
    "$(kv host api.test)" "$(kv status 503)"
wait "$FWD_DL"
check "shutdown_timeout: the forwarder's download is reset, not ended" \
    grep -q '^reset ' "$TMP/fwd-dl.out"
wait "$FWD_HALF"
check_eq "shutdown_timeout: a relay whose server's end reached the client \
closes in order, every byte read after the exit" "closed 100000" \
    "$(cat "$TMP/fwd-half.out") $(py -c 'import sys
print(len(open(sys.argv[1], "rb").read().partition(b"\r\n\r\n")[2]))' \
    "$TMP/fwd-half.resp")"
check_log "shutdown_timeout: the cut download has its access line, 200" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host api.test)" "$(kv status 200)"
check_log "shutdown_timeout: the cut tunnel has its access line" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode intercept)" \
    "$(kv host api.test)" "$(kv status 200)"
check_log "shutdown_timeout: the cut forwarder has its access line" \
    "$TMP/b.log" "$(kv event access)" "$(kv mode forward)" \
    "$(kv status 200)"
stop "$KA_TUNNEL"
stop "$KA_FWD"
stop "$SILENT"
stop "$MIDTLS"
check "shutdown_timeout = 500ms: exit after about 500 ms ($ms ms)" \
    test "$ms" -ge 450 -a "$ms" -lt 2500
wait "$DL_CUT" 2>/dev/null
if [ "$(cat "$TMP/cut.rc" 2>/dev/null)" != 0 ] &&
    [ "$(stat -c %s "$TMP/cut.body" 2>/dev/null || echo 0)" -lt 250 ]; then
	ok "shutdown_timeout = 500ms: the transfer is cut"
else
	not_ok "shutdown_timeout = 500ms: the transfer is cut"
	diag "curl status $(cat "$TMP/cut.rc" 2>/dev/null)," \
	    "$(stat -c %s "$TMP/cut.body" 2>/dev/null) bytes"
fi

# SIGINT is SIGTERM: the transfer in progress finishes, then exit 0.
PC=$(free_port)
conf "$PC" "shutdown_timeout = 10s" >"$TMP/c.conf"
check "pinproxy C listens on 127.0.0.1:$PC" \
    start_pinproxy PP_C "$PC" "$TMP/c.conf" "$TMP/c.log"
download int "$PC" slow/8
DL_INT=$DL_PID
check "SIGINT: the download has begun" wait_size "$TMP/int.body"
kill -INT "$PP_C"
check_log "SIGINT: event=stopping" "$TMP/c.log" "$(kv event stopping)"
wait "$DL_INT" 2>/dev/null
check_download int "SIGINT: the download in progress" slow_body 8
check_after "SIGINT: the transfer ended after event=stopping" \
    "$TMP/c.log" "$(kv event stopping)" "$(kv event access)" \
    "$(kv host api.test)" "$(kv status 200)" "$SLOW_DOWN"
wait_exit "$PP_C" 10
check_eq "SIGINT: pinproxy exits 0" 0 "$EXIT_RC"
check_log "SIGINT: event=stopped cut=0 once the transfer ended" \
    "$TMP/c.log" "$(kv event stopped)" "$(kv cut 0)"

# SIGTERM while a keep-alive client still has a response queued: pinproxy
# read it from the origin to its end, the client reads slowly; it still
# gets every byte, and pinproxy stops with cut=0.
# reader.py PORT READY GO [--log LOG] [--after|--later TEXT] URL...: a
# keep-alive client that sends a GET of every URL (or an argument with a
# space or a backslash as it is) at once, pipelined, and reads the first
# answer's head; with LOG it goes on reading, slower than pinproxy writes
# so that the kernel's buffers stay full (the answer is larger than they
# can hold), until LOG has an access line with status 200: pinproxy has
# read the whole answer from the origin, and holds what it could not
# write yet. Then it creates READY, waits for GO, reads until the end,
# and says what came: a line per answer, then how the stream ended.
# With --after, it sends TEXT (a request, \r and \n escaped) once it has
# the first answer whole, 0.3 s later; with --later, 0.3 s after the
# first answer's head, before READY.
cat >"$TMP/reader.py" <<'EOF'
import os, re, socket, sys, time
port, ready, go, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
log, after, later = None, None, None
while args[0] in ("--log", "--after", "--later"):
    if args[0] == "--log":
        log = args[1]
    elif args[0] == "--after":
        after = args[1].encode().decode("unicode_escape").encode()
    else:
        later = args[1].encode().decode("unicode_escape").encode()
    args = args[2:]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
s.settimeout(15)
s.connect(("127.0.0.1", port))
# An argument with a space or a backslash is sent as it is, \r and \n
# escaped.
def request(u):
    if " " in u or "\\" in u:
        return u.encode().decode("unicode_escape").encode()
    return ("GET %s HTTP/1.1\r\nHost: api.test\r\n\r\n" % u).encode()
s.sendall(b"".join(request(u) for u in args))
# A bytearray: appending to bytes copies all of it at every recv.
data = bytearray()
while b"\r\n\r\n" not in data:
    data += s.recv(4096)
if later:
    time.sleep(0.3)
    s.sendall(later)
done = re.compile(r"(^| )event=access( .*)? status=200( |$)", re.M)
piece = len(data) + 131072
for _ in range(400 if log else 0):
    time.sleep(0.05)
    with open(log) as f:
        if done.search(f.read()):
            break
    while len(data) < piece:
        b = s.recv(piece - len(data))
        if not b:
            break
        data += b
    piece += 131072
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.02)
end = "eof"
# With --after, once the first answer is whole: AFTER goes too, later.
while after:
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    size = re.search(rb"(?im)^content-length: *([0-9]+)", head)
    if sep and size and len(rest) >= int(size.group(1)):
        time.sleep(0.3)
        try:
            s.sendall(after)
        except OSError as e:
            print("after: %s" % e.strerror)
        break
    b = s.recv(65536)
    if not b:
        break
    data += b
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError as e:
    end = "error %s" % e
n = 0
while data:
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        print("junk %d bytes" % len(data))
        break
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(l.split(":", 1) for l in lines[1:] if ":" in l)
    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
    size = int(fields.get("content-length", "0"))
    n += 1
    print("answer %d: %s, %s, %d of %d bytes" % (n, lines[0],
          "close" if fields.get("connection", "").lower() == "close"
          else "kept", len(rest[:size]), size))
    data = bytearray(rest[size:])
print("end", end)
EOF
# wait_file FILE: wait up to 20 s until FILE exists.
wait_file()
{
	local i
	for (( i = 0; i < 400; i++ )); do
		[ -e "$1" ] && return 0
		t_sleep 0.05
	done
	return 1
}
PG=$(free_port)
conf "$PG" "shutdown_timeout = 10s" >"$TMP/g.conf"
check "pinproxy G listens on 127.0.0.1:$PG" \
    start_pinproxy PP_G "$PG" "$TMP/g.conf" "$TMP/g.log"
spawn SR_G python3 "$TMP/reader.py" "$PG" "$TMP/g.ready" "$TMP/g.go" \
    --log "$TMP/g.log" http://api.test/bytes/12582912 \
    >"$TMP/g-reader.out" 2>"$TMP/g-reader.err"
check "SIGTERM with a response queued: it was read from the origin" \
    wait_file "$TMP/g.ready"
kill -TERM "$PP_G"
check_log "SIGTERM with a response queued: event=stopping" "$TMP/g.log" \
    "$(kv event stopping)"
touch "$TMP/g.go"
wait "$SR_G" 2>/dev/null
check_eq "SIGTERM with a response queued: the client gets all 12 MiB" \
    "answer 1: HTTP/1.1 200 OK, kept, 12582912 of 12582912 bytes|end eof" \
    "$(paste -s -d '|' "$TMP/g-reader.out")"
[ -s "$TMP/g-reader.err" ] && diag "$(cat "$TMP/g-reader.err")"
wait_exit "$PP_G" 10
check_eq "SIGTERM with a response queued: pinproxy exits 0" 0 "$EXIT_RC"
check_log "SIGTERM with a response queued: event=stopped cut=0" \
    "$TMP/g.log" "$(kv event stopped)" "$(kv cut 0)"
# Answers pinproxy made itself (TRACE echoes of 12 kB, Max-Forwards: 0),
# pipelined by a client that reads none until pinproxy exited, 8 MB of
# them: more than the kernel's send buffer takes (4 MB at most), so that
# pinproxy holds the rest. At the cut (shutdown_timeout = 1s) they are
# cut short (reset) and counted, though no exchange was under way.
cat >"$TMP/flood.py" <<'EOF'
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.settimeout(3)
try:
    s.sendall(b"TRACE http://api.test/ HTTP/1.1\r\nHost: api.test\r\n"
              b"Max-Forwards: 0\r\nX-Pad: %s\r\n\r\n" % (b"p" * 12000)
              * 700)
except OSError:
    pass
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
s.settimeout(10)
end = "eof"
try:
    while s.recv(65536):
        pass
except OSError as e:
    end = type(e).__name__
print(end, flush=True)
EOF
PQ=$(free_port)
conf "$PQ" "shutdown_timeout = 1s" >"$TMP/q.conf"
check "pinproxy Q listens on 127.0.0.1:$PQ" \
    start_pinproxy PP_Q "$PQ" "$TMP/q.conf" "$TMP/q.log"
spawn SR_Q python3 "$TMP/flood.py" "$PQ" "$TMP/q.go" >"$TMP/q-flood.out"
wait_ready "$TMP/q-flood.out"
kill -TERM "$PP_Q"
wait_exit "$PP_Q" 10
touch "$TMP/q.go"
wait "$SR_Q" 2>/dev/null
check_eq "answers not all written at the cut: event=stopped cut=1, exit 0" \
    "0 1" "$EXIT_RC $(log_count "$TMP/q.log" "$(kv event stopped)" \
    "$(kv cut 1)")"
check_eq "... their client is reset" "ready|ConnectionResetError" \
    "$(paste -s -d '|' "$TMP/q-flood.out")"

# SIGTERM while a keep-alive client has requests pipelined behind an
# answer whose head went before the stop, which kept the connection open:
# the next request is answered too, with "Connection: close", and none
# after it; pinproxy stops with cut=0. The answer streams from the origin
# (/slow/10, two seconds) when the stop comes.
# stop_pipelined NAME EXTRA REQUEST...: a pinproxy with EXTRA in [proxy]
# and a client that pipelines the REQUESTs (as reader.py takes them);
# SIGTERM once the first answer's head came. The client's report is in
# $TMP/NAME-client.out, pinproxy's exit status in EXIT_RC.
stop_pipelined()
{
	local name=$1 extra=$2 port pid st="shutdown_timeout = 10s"
	shift 2
	port=$(free_port)
	case $extra in *shutdown_timeout*) st= ;; esac
	conf "$port" "$st
$extra" >"$TMP/$name.conf"
	start_pinproxy PP_STOP "$port" "$TMP/$name.conf" "$TMP/$name.log" ||
	    diag "pinproxy -c $name.conf is not listening"
	spawn pid python3 "$TMP/reader.py" "$port" "$TMP/$name.ready" \
	    "$TMP/$name.go" "$@" >"$TMP/$name-client.out" 2>&1
	wait_file "$TMP/$name.ready"
	kill -TERM "$PP_STOP"
	wait_log "$TMP/$name.log" "$(kv event stopping)"
	touch "$TMP/$name.go"
	wait "$pid" 2>/dev/null
	wait_exit "$PP_STOP" 10
}
# check_stop NAME DESCRIPTION ANSWER...: the client got the ANSWERs (as
# reader.py says them) and then the end of the stream; pinproxy exited 0
# with cut=0.
check_stop()
{
	local name=$1 desc=$2 want
	shift 2
	want=$(printf '%s|' "$@")
	check_eq "$desc" "${want}end eof" "$(paste -s -d '|' "$TMP/$name-client.out")"
	check_eq "... pinproxy exits 0 with cut=0" "0 1" "$EXIT_RC $(log_count \
	    "$TMP/$name.log" "$(kv event stopped)" "$(kv cut 0)")"
}
ANSWER_SLOW='answer 1: HTTP/1.1 200 OK, kept, 50 of 50 bytes'
stop_pipelined pipe "" http://api.test/slow/10 http://api.test/hello \
    http://api.test/hello
check_stop pipe "SIGTERM, requests pipelined behind a streaming answer: the next one answered with close, no more" \
    "$ANSWER_SLOW" 'answer 2: HTTP/1.1 200 OK, close, 18 of 18 bytes'
# A CONNECT or an Upgrade read then cannot be answered with close (a 200
# to a CONNECT or a 101 says nothing of it): 503, and nothing is dialled
# for it.
stop_pipelined pipe-connect "" http://api.test/slow/10 \
    'CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n' \
    http://api.test/hello
check_stop pipe-connect "SIGTERM, a CONNECT pipelined behind a streaming answer: 503 with close" \
    "$ANSWER_SLOW" \
    'answer 2: HTTP/1.1 503 Service Unavailable, close, 166 of 166 bytes'
check_log "... its access line: status=503" "$TMP/pipe-connect.log" \
    "$(kv event access)" "$(kv status 503)" "$(kv host api.test)"
stop_pipelined pipe-upgrade "" http://api.test/slow/10 \
    'GET http://api.test/upgrade HTTP/1.1\r\nHost: api.test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'
check_stop pipe-upgrade "SIGTERM, an Upgrade pipelined behind a streaming answer: 503 with close" \
    "$ANSWER_SLOW" \
    'answer 2: HTTP/1.1 503 Service Unavailable, close, 172 of 172 bytes'
# Empty lines after a body (RFC 9112, 2.2) are no request to wait for,
# read or not when the stop comes.
stop_pipelined pipe-crlf "header_timeout = 1s" \
    'POST http://api.test/slow/10 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 2\r\n\r\nab\r\n'
check_stop pipe-crlf "SIGTERM, an empty line after a body: no request waited for" \
    "$ANSWER_SLOW"
stop_pipelined pipe-crlf-read "header_timeout = 1s" \
    'POST http://api.test/hello HTTP/1.1\r\nHost: api.test\r\nContent-Length: 2\r\n\r\nab\r\n'
check_stop pipe-crlf-read "SIGTERM after an answer and an empty line read: the connection closes at once" \
    'answer 1: HTTP/1.1 200 OK, kept, 18 of 18 bytes'
# More empty lines than a look at the socket tells from a request: read,
# they still close the connection, and a request sent after is not read.
stop_pipelined pipe-crlfs "header_timeout = 3s" --after \
    'GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    http://api.test/slow/10 "$(printf '\\r\\n%.0s' $(seq 100))"
check_stop pipe-crlfs "SIGTERM, 100 empty lines behind a streaming answer: a request sent after is not read" \
    "$ANSWER_SLOW"
# Reading stops at the first byte behind a request: here the empty line
# after its body, read, while the request sent later waits in the socket,
# and is answered.
stop_pipelined pipe-crlf-later "" --later \
    'GET http://api.test/hello HTTP/1.1\r\nHost: api.test\r\n\r\n' \
    'POST http://api.test/slow/10 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 2\r\n\r\nab\r\n'
check_stop pipe-crlf-later "SIGTERM, an empty line read and a request waiting behind it: answered with close" \
    "$ANSWER_SLOW" 'answer 2: HTTP/1.1 200 OK, close, 18 of 18 bytes'
# A head still coming when shutdown_timeout ends the stop is a request
# cut short: counted in cut=, with an access line (503); the close is in
# order (a reset could drop the end of the answers before it, which the
# kernel may still hold).
stop_pipelined pipe-partial "shutdown_timeout = 3s" http://api.test/slow/10 \
    'GET http://api.test/hello HTTP/1.1\r\nHost: api'
check_eq "SIGTERM, a partial head pipelined: answered up to it, then closed at the cut" \
    "$ANSWER_SLOW|end eof" \
    "$(paste -s -d '|' "$TMP/pipe-partial-client.out")"
check_eq "... pinproxy exits 0 with cut=1" "0 1" "$EXIT_RC $(log_count \
    "$TMP/pipe-partial.log" "$(kv event stopped)" "$(kv cut 1)")"
check_log "... the cut request's access line: status=503" \
    "$TMP/pipe-partial.log" "$(kv event access)" "$(kv status 503)"

# Local hazards. A FIFO where a file is read (a ca_file, the
# configuration itself) is refused, never waited on: by -t, and by a
# reload, which fails while the proxy serves on.
mkfifo "$TMP/fifo.pem" "$TMP/fifo.conf"
PH=$(free_port)
conf "$PH" "shutdown_timeout = 2s" >"$TMP/h.conf"
{ cat "$TMP/h.conf"; echo "ca_file = $TMP/fifo.pem"; } >"$TMP/cafifo.conf"
run t_cafifo timeout 10 "$PINPROXY" -t -c "$TMP/cafifo.conf"
check_rc "-t, a ca_file that is a FIFO: exit 1 at once" 1 t_cafifo
check_grep "-t, a ca_file that is a FIFO: FILE:LINE says so" \
    "cafifo\.conf:[0-9]*: .*fifo\.pem is a FIFO, not a regular file" \
    "$TMP/t_cafifo.err"
run t_conffifo timeout 10 "$PINPROXY" -t -c "$TMP/fifo.conf"
check_rc "-t, a configuration that is a FIFO: exit 1 at once" 1 t_conffifo
check_grep "-t, a configuration that is a FIFO: it says so" \
    "fifo\.conf: is a FIFO, not a regular file" "$TMP/t_conffifo.err"

# An unread NOTIFY_SOCKET (its queue fills at the tenth message or so)
# and a storm of 300 SIGHUPs: the messages that do not fit are dropped,
# and the proxy serves and stops as ever.
spawn DEAF python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
time.sleep(120)' "$TMP/deaf.sock" >"$TMP/deaf.out"
wait_ready "$TMP/deaf.out"
check "pinproxy H listens on 127.0.0.1:$PH" \
    start_pinproxy PP_H "$PH" "$TMP/h.conf" "$TMP/h.log" \
    env NOTIFY_SOCKET="$TMP/deaf.sock"
for (( i = 0; i < 300; i++ )); do
	kill -HUP "$PP_H"
done
check "300 SIGHUPs, the notify socket unread: pinproxy serves" \
    wait_log "$TMP/h.log" "$(kv event reloaded)"
t_sleep 0.5
code=$(fetch storm "$PH" --max-time 10 http://api.test/hello)
check_eq "300 SIGHUPs, the notify socket unread: a request is answered" \
    200 "$code"
fails()
{
	! "$@"
}
check "a reload with a ca_file that is a FIFO fails at once" \
    fails reload "$PP_H" "$TMP/h.log" "$TMP/h.conf" \
    "$(cat "$TMP/cafifo.conf")"
check_log "a ca_file that is a FIFO: event=reload_failed says so" \
    "$TMP/h.log" "$(kv event reload_failed)" "is a FIFO"
kill -TERM "$PP_H"
wait_exit "$PP_H" 10
check_eq "SIGTERM after the storm: pinproxy exits 0" 0 "$EXIT_RC"
stop "$DEAF"

# A file size limit (RLIMIT_FSIZE) reached by the log and report_file:
# their writes fail; the process lives on and serves (SIGXFSZ is not its
# end).
PI=$(free_port)
conf "$PI" "report_file = $TMP/i-reports.jsonl" |
    sed "s|^pin = $PIN_INTER\$|pin = sha256/$(printf 'A%.0s' $(seq 43))=|" \
    >"$TMP/i.conf"
check "pinproxy I listens on 127.0.0.1:$PI, its files at most 1 KiB" \
    start_pinproxy PP_I "$PI" "$TMP/i.conf" "$TMP/i.log" \
    prlimit --fsize=1024
for (( i = 0; i < 8; i++ )); do
	fetch fsize "$PI" --max-time 10 "http://api.test/hello?$i" >/dev/null
done
check "files past the size limit: pinproxy still runs" kill -0 "$PP_I"
code=$(fetch fsize "$PI" --max-time 10 http://api.test/hello)
check_eq "files past the size limit: the pin mismatch is still answered" \
    502 "$code"
check "files past the size limit: the log stopped at the limit" \
    test "$(stat -c %s "$TMP/i.log")" -le 1024
kill -TERM "$PP_I"
wait_exit "$PP_I" 10
check_eq "files past the size limit: SIGTERM, exit 0" 0 "$EXIT_RC"

# A SIGHUP or SIGTERM during the start (a service manager may send one as
# soon as the process runs) waits for the event loop: a reload, or a
# clean stop, never the signal's default action (death, unlogged).
# early_signal SIG NAME: start pinproxy and send SIG once its start holds
# the signals (SigBlk in /proc; before main() nothing can), before it
# listens; EARLY_HELD says whether the start held them.
early_signal()
{
	local port pid i k v
	port=$(free_port)
	conf "$port" "" >"$TMP/$2.conf"
	spawn pid "$PINPROXY" -c "$TMP/$2.conf" 2>"$TMP/$2.log"
	EARLY_HELD=no
	for (( i = 0; i < 5000; i++ )); do
		while read -r k v; do
			# SIGHUP, SIGINT and SIGTERM: bits 0, 1 and 14.
			[ "$k" = SigBlk: ] &&
			    (( (16#$v & 16#4003) == 16#4003 )) && EARLY_HELD=yes
		done <"/proc/$pid/status" 2>/dev/null
		[ "$EARLY_HELD" = yes ] && break
	done
	kill "-$1" "$pid"
	EARLY_PID=$pid
	EARLY_PORT=$port
	if listening 127.0.0.1 "$port"; then
		diag "SIG$1 came after the listener was up"
	fi
}
early_signal HUP early-hup
check_eq "the start holds SIGHUP, SIGINT and SIGTERM" yes "$EARLY_HELD"
check "SIGHUP during the start: it runs on and listens" \
    wait_port "$EARLY_PORT"
check_log "SIGHUP during the start: handled as a reload" \
    "$TMP/early-hup.log" "$(kv event reloaded)"
stop_pinproxy "$EARLY_PID" "$TMP/early-hup.log" \
    "SIGHUP during the start, then SIGTERM:"
# A reload to a file without a pin set (saved half-way, say) is valid,
# but every host then follows unpinned: a warning says so.
PE=$(free_port)
conf "$PE" "" >"$TMP/e.conf"
check "pinproxy E listens on 127.0.0.1:$PE" \
    start_pinproxy PP_E "$PE" "$TMP/e.conf" "$TMP/e.log"
conf "$PE" "" | sed '/^\[pins:api\]/,$d' >"$TMP/e.conf"
check "E reloaded without its pin set" reload "$PP_E" "$TMP/e.log"
check_log "a reload that drops every pin set: a config_warning says so" \
    "$TMP/e.log" "$(kv event config_warning)" \
    "no pin set now \\(1 before\\): every host follows unpinned = block"
stop_pinproxy "$PP_E" "$TMP/e.log"
early_signal TERM early-term
wait_exit "$EARLY_PID" 10
check_eq "SIGTERM during the start: exit 0" 0 "$EXIT_RC"
check_log "SIGTERM during the start: event=stopped is logged" \
    "$TMP/early-term.log" "$(kv event stopped)"

done_testing
