# Shared by the end-to-end tests: TAP output, a scratch directory, free
# ports, background processes that are always stopped by PID, the test
# servers and PKI, pinproxy itself, requests through it and its log.
# Source it from a test script; call done_testing at the end.

set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$(pwd)}"
# Either may be overridden (make check-valgrind runs them under a wrapper).
: "${PINPROXY:=$top_builddir/pinproxy}"
: "${PINPROXY_PIN:=$top_builddir/pinproxy-pin}"

# Requests go to 127.0.0.1 directly, never through a proxy of the caller.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
    no_proxy NO_PROXY

T_N=0
T_FAILED=0
T_PIDS=""
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-test.XXXXXX")

# The python3 found in PATH may be a wrapper that looks for the real
# interpreter at every call (pyenv's shims run a few shell scripts, which
# takes a second on a loaded machine, and the tests start python3 hundreds
# of times): configure asked it once (PINPROXY_TEST_PYTHON3, from make
# check), else ask here, and put a python3 that execs the interpreter
# itself first in PATH, for the tests and for what they start. The test
# servers and clients need nothing but the standard library, so it runs
# with -S: site-packages, and the .pth files there that import modules at
# every start, halved the cost of each start. T_PYTHON3 is the
# interpreter with its site-packages, for a test of a third-party client.
T_PYTHON3=${PINPROXY_TEST_PYTHON3:-$(python3 -c \
    'import sys; print(sys.executable)' 2>/dev/null)}
if [ -n "$T_PYTHON3" ] && [ -x "$T_PYTHON3" ]; then
	mkdir "$TMP/bin"
	printf '#!/bin/sh\nexec "%s" -S "$@"\n' "$T_PYTHON3" >"$TMP/bin/python3"
	chmod +x "$TMP/bin/python3"
	PATH="$TMP/bin:$PATH"
else
	T_PYTHON3=python3
fi

# t_sleep SECONDS: sleep without starting a process, in a read that times
# out on a FIFO nobody writes to: the polls of the tests sleep thousands
# of times a run, and sleep(1) costs a fork and an exec each time.
T_TICK="$TMP/tick"
if mkfifo "$T_TICK" 2>/dev/null; then
	t_sleep()
	{
		read -rt "$1" _ <>"$T_TICK" || :
	}
else
	t_sleep()
	{
		sleep "$1"
	}
fi

# The test servers and PKI, and what tests/origin.py answers.
MKPKI="$top_srcdir/tests/mkpki.sh"
ORIGIN="$top_srcdir/tests/origin.py"
BADORIGIN="$top_srcdir/tests/badorigin.py"
DNSD="$top_srcdir/tests/dnsd.py"
CLIENT="$top_srcdir/tests/connect_client.py"
KEEPALIVE="$top_srcdir/tests/keepalive.py"
PKI="$TMP/pki"
HELLO="hello from origin"
CLOSE_BODY="close-delimited body from origin"
# How many 50 ms ticks wait_log and check_log wait for a log line.
WAIT_TICKS=100

# Stop every process the test started, by PID, then remove the scratch dir.
t_cleanup()
{
	local p
	for p in $T_PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $T_PIDS; do
		wait "$p" 2>/dev/null
	done
	# The ports go back once nothing of the test holds them.
	if [ -f "$TMP/ports" ]; then
		while read -r p; do
			rm -f "$p"
		done <"$TMP/ports"
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "# scratch directory kept: $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap t_cleanup EXIT

## TAP.

# ok DESCRIPTION: one passing case.
ok()
{
	T_N=$((T_N + 1))
	t_time
	echo "ok $T_N - $*"
}

# not_ok DESCRIPTION: one failing case.
not_ok()
{
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	t_time
	echo "not ok $T_N - $*"
}

# t_time: with PINPROXY_TEST_TIMES=FILE, add to FILE a line "MS TEST N":
# the milliseconds since the last case ended (or the test began) that
# case N of TEST took, to find where the suite spends its time.
t_time()
{
	[ -n "${PINPROXY_TEST_TIMES:-}" ] || return 0
	local now
	now=$(now_ms)
	echo "$((now - T_LAST)) ${0##*/} $((T_N))" >>"$PINPROXY_TEST_TIMES"
	T_LAST=$now
}

# skip REASON: one skipped case.
skip()
{
	T_N=$((T_N + 1))
	echo "ok $T_N - # SKIP $*"
}

# diag TEXT: a comment in the TAP output, one "# " per line.
diag()
{
	local text="# $*"
	printf '%s\n' "${text//$'\n'/$'\n'# }"
}

# check DESCRIPTION COMMAND...: one test case from a command's status.
check()
{
	local desc=$1
	shift
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc"
	fi
}

# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq()
{
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "expected: $2"
		diag "actual:   $3"
	fi
}

# check_grep DESCRIPTION PATTERN FILE: FILE has a line matching PATTERN.
check_grep()
{
	if grep -qE -- "$2" "$3"; then
		ok "$1"
	else
		not_ok "$1"
		diag "no line matches /$2/ in $3:"
		diag "$(tail -n 20 "$3")"
	fi
}

# done_testing: the plan, after the last case.
done_testing()
{
	echo "1..$T_N"
	exit 0
}

# bail_out MESSAGE: give up the whole test.
bail_out()
{
	echo "Bail out! $*"
	exit 1
}

## Ports and background processes.

# free_port: a TCP port on 127.0.0.1 that nothing listens on now (nor a
# UDP socket uses, for dnsd). It is drawn below the kernel's range for
# outgoing connections, where no connect() takes it before the test binds
# it. Tests run in parallel, so a port is claimed before it is handed out:
# a file named after it in T_PORT_CLAIMS, made with noclobber (an atomic
# O_EXCL create) and holding the PID of the test's shell. A claim whose
# test is gone is removed, and the port drawn again another time. Nothing
# reads /proc/net/tcp: with the thousands of sockets in TIME_WAIT a run
# leaves, each read of it cost the kernel a tenth of a second and more,
# and took a third of the suite's CPU. Where there is no room below the
# kernel's range python3 binds port 0.
T_PORT_LO=10000
T_PORT_HI=0
read -r T_PORT_HI _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range
T_PORT_HI=$(( T_PORT_HI - 1 ))
T_PORT_CLAIMS="${TMPDIR:-/tmp}/pinproxy-test-ports.$(id -u)"
mkdir -p "$T_PORT_CLAIMS" 2>/dev/null
T_PORT_OWNER=$$
free_port()
{
	local i port fd claim owner
	if [ "$T_PORT_HI" -gt $(( T_PORT_LO + 1000 )) ] &&
	    [ -d "$T_PORT_CLAIMS" ] && [ -w "$T_PORT_CLAIMS" ]; then
		for (( i = 0; i < 100; i++ )); do
			port=$(( T_PORT_LO + (RANDOM * 32768 + RANDOM) %
			    (T_PORT_HI - T_PORT_LO + 1) ))
			claim=$T_PORT_CLAIMS/$port
			if ! ( set -C; echo "$T_PORT_OWNER" >"$claim" ) \
			    2>/dev/null; then
				owner=""
				read -r owner <"$claim" 2>/dev/null
				[ -n "$owner" ] && ! kill -0 "$owner" \
				    2>/dev/null && rm -f "$claim"
				continue
			fi
			echo "$claim" >>"$TMP/ports"
			if { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } \
			    2>/dev/null; then
				exec {fd}>&-
				continue
			fi
			echo "$port"
			return
		done
	fi
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: wait until something accepts on 127.0.0.1:PORT.
wait_port()
{
	local i n=$(( ${2:-10} * 20 ))
	for (( i = 0; i < n; i++ )); do
		listening 127.0.0.1 "$1" && return 0
		t_sleep 0.05
	done
	return 1
}

# spawn VAR COMMAND...: start COMMAND in the background, put its PID in VAR
# and remember it so that it is stopped when the test ends.
spawn()
{
	local var=$1
	shift
	"$@" &
	T_PIDS="$T_PIDS $!"
	eval "$var=$!"
}

# stop PID: stop one spawned process now and reap it.
stop()
{
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# listening HOST PORT: something accepts connections on HOST:PORT.
listening()
{
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_exit PID SECONDS: wait for a spawned process to end, reap it and
# put its exit status in EXIT_RC; "running" (and the process is killed)
# when it is still there after SECONDS.
wait_exit()
{
	local pid=$1 i
	for (( i = 0; i < $2 * 20; i++ )); do
		kill -0 "$pid" 2>/dev/null || break
		t_sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		EXIT_RC=running
		return
	fi
	wait "$pid" 2>/dev/null
	EXIT_RC=$?
}

## The test servers and PKI.

# clear_of_midnight SECONDS: when the next UTC midnight is less than
# SECONDS away, wait until it has passed: a test that counts what one UTC
# day allows (report_max, observe_max), or an expiry date's days from
# today, must not straddle two.
clear_of_midnight()
{
	local left=$(( 86400 - $(date -u +%s) % 86400 ))
	if [ "$left" -lt "$1" ]; then
		diag "waiting ${left} s for UTC midnight to pass"
		t_sleep $(( left + 1 ))
	fi
}

# wait_ready FILE: wait up to 5 s for a server to print "ready" in FILE
# (read by the shell itself: every server of every test waits here).
wait_ready()
{
	local i line
	for (( i = 0; i < 100; i++ )); do
		if [ -r "$1" ]; then
			while IFS= read -r line; do
				[[ $line == ready* ]] && return 0
			done <"$1"
		fi
		t_sleep 0.05
	done
	diag "nothing printed ready in $1"
	return 1
}

# start_server VAR LOG COMMAND...: spawn a test server with --log LOG, its
# output in LOG.out, and wait until it prints "ready".
start_server()
{
	local var=$1 log=$2
	shift 2
	spawn "$var" "$@" --log "$log" >"$log.out"
	wait_ready "$log.out"
}

# start_origin VAR PORT LOG ARGS...: start_server for tests/origin.py on
# PORT (it listens without being connected to: the origin counts
# connections).
start_origin()
{
	local var=$1 port=$2 log=$3
	shift 3
	start_server "$var" "$log" python3 "$ORIGIN" --port "$port" "$@"
}

# start_dnsd ARGS...: start tests/dnsd.py with ARGS (PID in DNS, port in
# DNSPORT, log in $TMP/dns.log) and point $TMP/resolv.conf at it.
start_dnsd()
{
	DNSPORT=$(free_port)
	start_server DNS "$TMP/dns.log" python3 "$DNSD" --port "$DNSPORT" "$@"
	echo "nameserver 127.0.0.1:$DNSPORT" >"$TMP/resolv.conf"
}

# origin_count LOG EVENT [TEXT]: how many EVENT records (containing TEXT)
# the log of a test server holds (LOG - : the standard input).
origin_count()
{
	local oc_event oc_text
	q_into oc_event "\"event\": \"$2\""
	q_into oc_text "${3:-}"
	log_grep "$1" -c "$oc_event" "$oc_text"
}

# origin_unsettled LOG: how many connections in the log of a test server
# are neither closed nor idle (tests/origin.py logs "idle" when it has
# answered and waits for the next request on a connection kept open).
# Only the connections of its last start count: a server stopped with
# connections open and started again on the same log numbers its own
# from 1 again, and would never settle those it did not accept.
origin_unsettled()
{
	local line c n=0
	local -a lines=()
	local -A last=()
	[ -f "$1" ] || { echo 0; return; }
	# As log_grep: a short log is read by the shell itself.
	mapfile -t -n 401 lines <"$1" 2>/dev/null
	if [ "${#lines[@]}" -le 400 ]; then
		for line in "${lines[@]}"; do
			if [[ $line == '{"event": "start"'* ]]; then
				last=()
				continue
			fi
			[[ $line =~ \"conn\":\ ([0-9]+) ]] || continue
			c=${BASH_REMATCH[1]}
			[[ $line =~ \"event\":\ \"([a-z_]+)\" ]] || continue
			last[$c]=${BASH_REMATCH[1]}
		done
		for c in "${!last[@]}"; do
			case ${last[$c]} in
			close|idle)	;;
			*)	n=$((n + 1)) ;;
			esac
		done
		echo "$n"
		return
	fi
	awk '
	/^\{"event": "start"/ {
		split("", last)
		next
	}
	match($0, /"conn": [0-9]+/) {
		c = substr($0, RSTART + 8, RLENGTH - 8)
		if (match($0, /"event": "[a-z_]+"/))
			last[c] = substr($0, RSTART + 10, RLENGTH - 11)
	}
	END {
		n = 0
		for (c in last)
			if (last[c] != "close" && last[c] != "idle")
				n++
		print n
	}' "$1"
}

# origin_settle LOG [SECONDS]: wait (5 s by default) until every
# connection the server accepted has ended or waits idle for its next
# request (as one pinproxy keeps for reuse does), so that its log is
# complete.
origin_settle()
{
	local i
	for (( i = 0; i < ${2:-5} * 20; i++ )); do
		[ "$(origin_unsettled "$1")" = 0 ] && return 0
		t_sleep 0.05
	done
	return 1
}

# dns_sans HOST...: the subjectAltName list DNS:HOST,... for mkpki.sh.
dns_sans()
{
	local sans="" h
	for h in "$@"; do
		sans="$sans,DNS:$h"
	done
	echo "${sans#,}"
}

# make_pki [NAME SANS ISSUER]...: the default set of tests/mkpki.sh in
# $PKI, then a leaf NAME for SANS signed by ISSUER per triple; bails out
# when mkpki.sh fails. Under make check the default set is a copy of the
# one tests/pki.sh made for the run (PINPROXY_TEST_PKI), with its pins.
make_pki()
{
	local good=yes log="$TMP/mkpki.log"
	if [ -n "${PINPROXY_TEST_PKI:-}" ] &&
	    [ -f "$PINPROXY_TEST_PKI/complete" ]; then
		cp -pR "$PINPROXY_TEST_PKI" "$PKI" >"$log" 2>&1 || good=no
	else
		sh "$MKPKI" "$PKI" >"$log" 2>&1 || good=no
	fi
	while [ "$good" = yes ] && [ $# -ge 3 ]; do
		sh "$MKPKI" leaf "$PKI" "$1" "$2" "$3" >>"$log" 2>&1 || good=no
		shift 3
	done
	[ "$good" = yes ] || bail_out "tests/mkpki.sh failed: $(cat "$log")"
}

# pki_pin VAR NAME: VAR is the pin of $PKI/NAME.pem by the openssl
# pipeline of tests/mkpki.sh, read from NAME.pin when the shared PKI has
# one newer than the certificate.
pki_pin()
{
	local pin=""
	if [ "$PKI/$2.pin" -nt "$PKI/$2.pem" ]; then
		read -r pin <"$PKI/$2.pin"
	else
		pin=$(sh "$MKPKI" pin "$PKI/$2.pem")
	fi
	printf -v "$1" '%s' "$pin"
}

## pinproxy.

# start_pinproxy VAR [HOST:]PORT CONF LOG [ARG...]: spawn the daemon with
# CONF under "env ARG..." (VAR=VALUE settings, or a command such as
# prlimit), with $TMP/resolv.conf as its resolv.conf once the test wrote
# one and its stderr in LOG; wait until it listens on HOST:PORT (HOST is
# 127.0.0.1 by default, or [::1]) or has exited. A failed start makes
# wait_log give up at once when FAILED_START_STOPS_WAITS is set.
start_pinproxy()
{
	local var=$1 addr=$2 conf=$3 log=$4 host=127.0.0.1 port=$2 i
	local resolv=()
	shift 4
	case $addr in
	*:*)
		host=${addr%:*}
		host=${host#\[}
		host=${host%\]}
		port=${addr##*:}
		;;
	esac
	if [ -f "$TMP/resolv.conf" ]; then
		resolv=(PINPROXY_RESOLV_CONF="$TMP/resolv.conf")
	fi
	spawn "$var" env "${resolv[@]}" "$@" "$PINPROXY" -c "$conf" 2>"$log"
	for (( i = 0; i < 200; i++ )); do
		listening "$host" "$port" && return 0
		kill -0 "${!var}" 2>/dev/null || break
		t_sleep 0.05
	done
	diag "pinproxy -c $conf is not listening on $addr:"
	diag "$(tail -n 20 "$log")"
	if [ -n "${FAILED_START_STOPS_WAITS:-}" ]; then
		WAIT_TICKS=1
	fi
	return 1
}

# stop_pinproxy PID LOG [NAME]: SIGTERM, then one case: NAME ("pinproxy -c
# X.conf" for LOG X.log by default) exits 0 within 10 s (a sanitizer report
# makes the status non-zero).
stop_pinproxy()
{
	local pid=$1 log=$2 name
	name=${log##*/}
	name=${3:-"pinproxy -c ${name%.log}.conf"}
	kill "$pid" 2>/dev/null
	wait_exit "$pid" 10
	if [ "$EXIT_RC" = running ]; then
		not_ok "$name stops on SIGTERM"
		diag "still running 10 s after SIGTERM; killed"
		return
	fi
	check_eq "$name exits 0 on SIGTERM" 0 "$EXIT_RC"
	[ "$EXIT_RC" = 0 ] || diag "$(tail -n 30 "$log")"
}

# reload PID LOG [CONF TEXT]: put TEXT in CONF when given, SIGHUP, then
# wait up to 5 s for the next event=reloaded or event=reload_failed in
# LOG; succeeds when it is reloaded.
reload()
{
	local pid=$1 log=$2 n i
	local event='(^| )event=reload(ed|_failed)( |$)'
	local -a reloads=()
	log_grep "$log" =reloads "$event"
	n=${#reloads[@]}
	[ $# -lt 4 ] || printf '%s\n' "$4" >"$3"
	kill -HUP "$pid"
	for (( i = 0; i < 100; i++ )); do
		log_grep "$log" =reloads "$event"
		if [ "${#reloads[@]}" -gt "$n" ]; then
			[[ ${reloads[-1]} == *event=reloaded* ]]
			return
		fi
		t_sleep 0.05
	done
	return 1
}

# alive DESCRIPTION PID PROXY: one case, pinproxy still runs and serves a
# normal request through PROXY within ALIVE_TIME seconds (10 by default):
# one the origin closes, so that no upstream is kept.
alive()
{
	local got
	if ! kill -0 "$2" 2>/dev/null; then
		not_ok "$1: pinproxy is still running"
		return
	fi
	got=$(pcurl "$3" --max-time "${ALIVE_TIME:-10}" \
	    http://api.test/close 2>&1)
	check_eq "$1: pinproxy still runs and serves" "$CLOSE_BODY" "$got"
}

## Requests through pinproxy and its answers.

# pcurl PROXY ARGS...: curl through the proxy at PROXY, a port on
# 127.0.0.1 or HOST:PORT.
pcurl()
{
	local proxy=$1
	shift
	case $proxy in
	*:*)	;;
	*)	proxy=127.0.0.1:$proxy ;;
	esac
	curl -sS --noproxy '' -x "http://$proxy" --max-time 20 "$@"
}

# fetch NAME PROXY ARGS...: a request through the proxy; prints the status
# and leaves the head in $TMP/NAME.head and the body in $TMP/NAME.body.
fetch()
{
	local name=$1 proxy=$2
	shift 2
	pcurl "$proxy" -o "$TMP/$name.body" -D "$TMP/$name.head" \
	    -w '%{http_code}' "$@" 2>"$TMP/$name.err"
}

# check_status DESCRIPTION EXPECTED ACTUAL NAME: one case, the status of
# "fetch NAME"; the rest of the exchange as diagnostics when it differs.
check_status()
{
	check_eq "$1" "$2" "$3"
	if [ "$2" != "$3" ]; then
		diag "curl: $(cat "$TMP/$4.err" 2>/dev/null)"
		diag "head: $(tr -d '\r' <"$TMP/$4.head" 2>/dev/null)"
		diag "body: $(head -c 500 "$TMP/$4.body" 2>/dev/null)"
	fi
}

# header_in FILE NAME [head]: the value of the last NAME header in FILE
# (of its first head only with "head"); nothing when there is none.
header_in()
{
	local line key value="" found=""
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line//$'\r'/}
		[ -z "$line" ] && [ "${3:-}" = head ] && break
		key=${line%%:*}
		if [ "$key" != "$line" ] && [ "${key,,}" = "${2,,}" ]; then
			value=${line#*:}
			value=${value#"${value%%[! ]*}"}
			found=yes
		fi
	done 2>/dev/null <"$1"
	[ -z "$found" ] || printf '%s\n' "$value"
}

# header FILE NAME: the value of the last NAME header in FILE.
header()
{
	header_in "$1" "$2"
}

# status_of NAME: the status code of the first response in $TMP/NAME.resp.
status_of()
{
	local line=""
	IFS= read -r line 2>/dev/null <"$TMP/$1.resp"
	case $line in
	*" "*)
		line=${line#* }
		line=${line%% *}
		;;
	esac
	[ -z "$line" ] || printf '%s\n' "$line"
}

# header_of NAME HEADER: a header of the first response in $TMP/NAME.resp.
header_of()
{
	header_in "$TMP/$1.resp" "$2" head
}

# py ARGS...: python3 with the modules of tests/ importable, for the
# tests' own clients (from connect_client import open_tunnel).
py()
{
	PYTHONPATH="$top_srcdir/tests" python3 "$@"
}

# half_closed NAME PORT REQUEST [WAIT]: send REQUEST (a printf format
# without arguments) to 127.0.0.1:PORT, shut down the sending side at once
# (WAIT s later), and keep what comes back in $TMP/NAME.resp until the
# proxy closes (within 10 s); prints "closed", "reset" (a TCP reset), or
# "open" when it did not close. With WAIT, the client's receive buffer is
# small (4 KiB) and it reads only from 1 s on, so that what it is sent
# waits in the proxy.
half_closed()
{
	late_reader "$1" "$2" "$3" "${4:-}" shut
}

# send_read PORT BYTES [UNTIL]: connect to 127.0.0.1:PORT, send BYTES
# (Python escapes: \r\n), print "ready", then read until the end, an
# error or the text UNTIL and print what came: its length, "eof", the
# error's name or "until", and its first line.
send_read()
{
	python3 -c 'import codecs, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(codecs.escape_decode(sys.argv[2])[0])
until = sys.argv[3].encode() if len(sys.argv) > 3 else None
print("ready", flush=True)
d, end = b"", "eof"
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        d += b
        if until is not None and until in d:
            end = "until"
            break
except OSError as e:
    end = type(e).__name__
print(len(d), end, d.split(b"\r\n")[0].decode("latin-1"))' "$@"
}

# stalled NAME PORT REQUEST WAIT: as half_closed with WAIT, but the client
# keeps its sending side open and reads nothing for WAIT s: a client that
# stopped reading.
stalled()
{
	late_reader "$1" "$2" "$3" "$4" keep
}

# poked NAME PORT REQUEST WAIT: as stalled, but the client then sends one
# byte and reads from 0.5 s later.
poked()
{
	late_reader "$1" "$2" "$3" "$4" poke
}

# slow_reader PORT REQUEST SLOW RATE: send REQUEST (a printf format) to
# 127.0.0.1:PORT and read what comes back through a 4 KiB receive buffer,
# 1 KiB at a time: its first SLOW bytes at RATE bytes a second, the rest
# at once; prints "closed N", "reset N" or "open N" (N: bytes read).
slow_reader()
{
	# shellcheck disable=SC2059
	printf "$2" | python3 -c '
import socket, sys, time
slow, rate = int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(10)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
n, state, t0 = 0, "open", time.monotonic()
try:
    while True:
        d = s.recv(1024)
        if not d:
            state = "closed"
            break
        n += len(d)
        if n < slow:
            time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
except ConnectionResetError:
    state = "reset"
except OSError:
    pass
print(state, n)' "$1" "$3" "$4"
}

# late_reader NAME PORT REQUEST WAIT shut|keep|poke: half_closed, stalled
# and poked.
late_reader()
{
	# shellcheck disable=SC2059
	printf "$3" | python3 -c '
import socket, sys, time
wait = float(sys.argv[3]) if sys.argv[3] else None
s = socket.socket()
if wait is not None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(10)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
if wait is not None:
    time.sleep(wait)
if sys.argv[4] == "shut":
    s.shutdown(socket.SHUT_WR)
    if wait is not None:
        time.sleep(max(0.0, 1 - wait))
elif sys.argv[4] == "poke":
    s.sendall(b"x")
    time.sleep(0.5)
out, state = bytearray(), "open"
try:
    while True:
        d = s.recv(65536)
        if not d:
            state = "closed"
            break
        out += d
except ConnectionResetError:
    state = "reset"
except OSError:
    pass
open(sys.argv[2], "wb").write(out)
print(state)' "$2" "$TMP/$1.resp" "$4" "$5"
}

## pinproxy's log (logfmt).

# The helpers below are called thousands of times in a run: they start
# as few processes as they can (each costs milliseconds on a loaded
# machine), and none where the shell can do the work itself.

# q_into VAR TEXT: VAR is an extended regular expression matching TEXT
# literally.
q_into()
{
	local text=$2 out="" c i
	for (( i = 0; i < ${#text}; i++ )); do
		c=${text:i:1}
		case $c in
		[][\\.*^\$+?\(\)\{\}\|/])
			out+="\\$c" ;;
		*)
			out+=$c ;;
		esac
	done
	printf -v "$1" '%s' "$out"
}

# q TEXT: an extended regular expression matching TEXT literally.
q()
{
	local re
	q_into re "$1"
	printf '%s' "$re"
}

# kv KEY VALUE: a pattern for the logfmt pair KEY=VALUE.
kv()
{
	local re
	q_into re "$2"
	printf '(^| )%s="?%s"?( |$)' "$1" "$re"
}

# log_grep FILE OPTION PATTERN...: the lines of FILE that match every
# pattern (extended regular expressions, as grep -E reads them): printed
# (OPTION -), counted (-c), tested (-q) or put in the array VAR (=VAR);
# fails when none matches. A
# short log is read by the shell itself (a grep costs a fork and an exec,
# and the polls of wait_log call this thousands of times a run); a long
# one by one grep per pattern, the last one with OPTION. FILE - is the
# standard input, read by the shell.
log_grep()
{
	local f=$1 opt=$2 n i cmd line re max into=""
	local -a lines=() found=()
	shift 2
	[ "$opt" = - ] && opt=""
	case $opt in
	=*)	into=${opt#=}; opt="" ;;
	esac
	[ $# -gt 0 ] || set -- ''
	max=$(( 400 / $# ))
	if [ "$f" = - ]; then
		mapfile -t lines
		max=${#lines[@]}
	else
		[ -r "$f" ] || f=/dev/null
		mapfile -t -n $(( max + 1 )) lines <"$f" 2>/dev/null
	fi
	if [ "${#lines[@]}" -le "$max" ]; then
		n=0
		for line in "${lines[@]}"; do
			for re; do
				[[ $line =~ $re ]] || continue 2
			done
			n=$((n + 1))
			case $opt in
			-q)	return 0 ;;
			-c)	;;
			*)	found+=("$line") ;;
			esac
		done
		[ "$opt" != -c ] || echo "$n"
		if [ -n "$into" ]; then
			eval "$into=(\"\${found[@]}\")"
		elif [ -z "$opt" ] && [ "$n" -gt 0 ]; then
			printf '%s\n' "${found[@]}"
		fi
		[ "$n" -gt 0 ]
		return
	fi
	if [ -n "$into" ]; then
		mapfile -t "$into" < <(log_grep "$f" - "$@")
		eval "[ \${#$into[@]} -gt 0 ]"
		return
	fi
	n=$#
	cmd='grep -E'
	[ "$n" -gt 1 ] || cmd+=" $opt"
	cmd+=' -- "$1" "$f"'
	for (( i = 2; i <= n; i++ )); do
		cmd+=' | grep -E'
		[ "$i" -lt "$n" ] || cmd+=" $opt"
		cmd+=" -- \"\${$i}\""
	done
	eval "$cmd"
}

# log_lines FILE PATTERN...: the lines of FILE that match every pattern;
# fails when there is none.
log_lines()
{
	log_grep "$1" - "${@:2}"
}

# log_count FILE PATTERN...: how many lines of FILE match every pattern.
log_count()
{
	log_grep "$1" -c "${@:2}"
}

# wait_line FILE PATTERN [SECONDS]: wait up to SECONDS (10 by default)
# for a line of FILE matching PATTERN.
wait_line()
{
	local i
	for (( i = 0; i < ${3:-10} * 20; i++ )); do
		log_grep "$1" -q "$2" && return 0
		t_sleep 0.05
	done
	return 1
}

# wait_log FILE PATTERN...: wait up to WAIT_TICKS times 50 ms for a line
# matching every pattern.
wait_log()
{
	local i
	for (( i = 0; i < WAIT_TICKS; i++ )); do
		log_grep "$1" -q "${@:2}" && return 0
		t_sleep 0.05
	done
	return 1
}

# check_log DESCRIPTION FILE PATTERN...: one case, wait_log finds a line.
check_log()
{
	local desc=$1 file=$2
	shift 2
	if wait_log "$file" "$@"; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "no line of $(basename "$file") matches all of: $*"
		diag "$(tail -n 15 "$file" 2>/dev/null)"
	fi
}

# wait_count FILE N PATTERN...: wait up to WAIT_TICKS times 50 ms until
# N lines of FILE match every pattern; the last lines of FILE as a
# diagnostic when they do not.
wait_count()
{
	local file=$1 n=$2 i
	shift 2
	for (( i = 0; i < WAIT_TICKS; i++ )); do
		[ "$(log_count "$file" "$@")" -ge "$n" ] && return 0
		t_sleep 0.05
	done
	diag "$(tail -n 5 "$file" 2>/dev/null)"
	return 1
}

## Time and resources.

# now_ms: milliseconds since the epoch.
now_ms()
{
	local t=${EPOCHREALTIME:-}
	if [ -n "$t" ]; then
		t=${t/[.,]/}
		echo $(( 10#$t / 1000 ))
	else
		echo $(( $(date +%s%N) / 1000000 ))
	fi
}

# When the test began, for t_time.
T_LAST=$(now_ms)

# fd_count PID: how many descriptors the process has open.
fd_count()
{
	local fds=("/proc/$1/fd/"*)
	if [ -e "${fds[0]}" ]; then
		echo "${#fds[@]}"
	else
		echo 0
	fi
}

# fd_baseline PID: the descriptors PID holds once their number stopped
# changing (the same in three looks 50 ms apart, 2 s at most): a baseline
# taken while a connection of an earlier case is still closing would be
# too high, and a later leak of that many would pass.
fd_baseline()
{
	local i n last=-1 same=0
	for (( i = 0; i < 40; i++ )); do
		n=$(fd_count "$1")
		if [ "$n" = "$last" ]; then
			same=$((same + 1))
			[ "$same" -ge 2 ] && break
		else
			same=0
		fi
		last=$n
		t_sleep 0.05
	done
	echo "$n"
}

# check_fds DESCRIPTION PID BASE [SECONDS]: one case, within SECONDS (5 by
# default) the process is back to BASE descriptors or fewer.
check_fds()
{
	local i n
	for (( i = 0; i < ${4:-5} * 20; i++ )); do
		n=$(fd_count "$2")
		[ "$n" -le "$3" ] && break
		t_sleep 0.05
	done
	# Fewer is no leak: the baseline may have held a connection closing.
	if [ "$n" -le "$3" ]; then
		ok "$1: descriptors back to $3"
		return
	fi
	not_ok "$1: descriptors back to $3"
	diag "expected at most $3, found $n:"
	diag "$(ls -l "/proc/$2/fd" 2>/dev/null |
	    tail -n +2 | awk '{ print $NF }' | sort | uniq -c)"
}

# cpu_ticks PID: the user and system clock ticks the process used.
cpu_ticks()
{
	local stat
	read -r stat <"/proc/$1/stat" || { echo 0; return; }
	stat=${stat##*) }
	set -- $stat
	echo $(( ${12} + ${13} ))
}

# rss_kb PID: the resident set size of a process, in KiB.
rss_kb()
{
	local key value _
	while read -r key value _; do
		if [ "$key" = VmRSS: ]; then
			echo "$value"
			return
		fi
	done 2>/dev/null <"/proc/$1/status"
}

# run_wrapped: pinproxy runs under a wrapper such as valgrind (make
# check-valgrind), so PINPROXY is a script, not the program.
run_wrapped()
{
	! ldd "$PINPROXY" >/dev/null 2>&1
}

# built_with_sanitizers: pinproxy was built with a sanitizer, or runs
# wrapped: its memory is not its own alone, so only growth can be judged.
built_with_sanitizers()
{
	run_wrapped || ldd "$PINPROXY" 2>/dev/null | grep -qE 'lib(a|ub|l)san'
}

# small_quarantine: keep a sanitizer's quarantine of freed memory small,
# so that resident memory reflects what pinproxy holds.
small_quarantine()
{
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
	export ASAN_OPTIONS
}

## Commands.

# out NAME KEY: the value of the first line KEY=... in $TMP/NAME.out (what
# a test client printed).
out()
{
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		if [[ $line == "$2="* ]]; then
			printf '%s\n' "${line#"$2="}"
			return
		fi
	done 2>/dev/null <"$TMP/$1.out"
}

# check_out DESCRIPTION NAME KEY EXPECTED: one case on KEY in NAME.out;
# the whole output as a diagnostic when it fails.
check_out()
{
	local got
	got=$(out "$2" "$3")
	check_eq "$1" "$4" "$got"
	[ "$4" = "$got" ] || diag "$(cat "$TMP/$2.out")"
}

# run NAME COMMAND...: stdout to $TMP/NAME.out, stderr to $TMP/NAME.err,
# the exit status in RC.
run()
{
	local name=$1
	shift
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	RC=$?
}

# check_rc DESCRIPTION EXPECTED NAME: one case, the status of "run NAME".
check_rc()
{
	check_eq "$1" "$2" "$RC"
	if [ "$2" != "$RC" ]; then
		diag "stdout: $(cat "$TMP/$3.out")"
		diag "stderr: $(cat "$TMP/$3.err")"
	fi
}
