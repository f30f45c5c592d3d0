#!/bin/bash
# Hostile random traffic against one pinproxy built with AddressSanitizer
# and UndefinedBehaviorSanitizer: clients that send mutated, truncated,
# pipelined and slow requests, bytes that are not HTTP or not TLS, and
# close, half-close or reset at any point; origins that answer with every
# framing error chaos.py knows; a SIGHUP every 30 s. Afterwards pinproxy
# must still run, hold no connection and no more descriptors than before
# the traffic, stop on SIGTERM with status 0, and have logged no sanitizer
# report (leaks included). Everything runs on 127.0.0.1; every process
# started here is stopped by PID. See bench/README.md.

PROG=chaos.sh
. "$(cd "$(dirname "$0")" && pwd)/lib/setup.sh"

usage()
{
	cat >&2 <<'EOF'
usage: bash bench/chaos.sh [--minutes N] [--workers W] [--seed N]
                           [--build DIR] [--keep]
  --minutes N  minutes of traffic (default 5)
  --workers W  clients at once (default 8)
  --seed N     the clients' random seed (default: the time; printed)
  --build DIR  use DIR/pinproxy (default: build one from this tree with
               --enable-sanitizers in a temporary directory)
  --keep       keep the scratch directory (configuration, logs)
EOF
	exit 2
}

MINUTES=5
WORKERS=8
SEED=""
BUILD=""
while [ $# -gt 0 ]; do
	case $1 in
	--minutes)	MINUTES=${2:?}; shift ;;
	--workers)	WORKERS=${2:?}; shift ;;
	--seed)		SEED=${2:?}; shift ;;
	--build)	BUILD=${2:?}; shift ;;
	--keep)		KEEP=1 ;;
	*)		usage ;;
	esac
	shift
done
case $MINUTES$WORKERS$SEED in
''|*[!0-9]*)	usage ;;
esac
[ "$MINUTES" -ge 1 ] && [ "$WORKERS" -ge 1 ] || usage

CHAOS=$BENCH/lib/chaos.py
SANITIZERS_WANTED=1
raise_nofile
find_pinproxy "$BUILD" --enable-sanitizers
ldd "$PINPROXY" 2>/dev/null | grep -q libasan ||
    say "warning: $PINPROXY is built without sanitizers: only crashes," \
    "hangs and leaked connections or descriptors can show"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-chaos.XXXXXX")
make_pki "$WORK/pki"

# One misbehaving TLS origin for the pinned names (api.test matches,
# bad.test never does, tunnel.test only through a candidate pin), one
# plaintext origin reached by address.
TLS_PORT=$(free_port)
PLAIN_PORT=$(free_port)
spawn O_TLS python3 "$CHAOS" origin --port "$TLS_PORT" \
    --cert "$WORK/pki/bench-chain.pem" --key "$WORK/pki/bench.key" \
    >"$WORK/origin-tls.out" 2>&1
spawn O_PLAIN python3 "$CHAOS" origin --port "$PLAIN_PORT" \
    >"$WORK/origin-plain.out" 2>&1
wait_ready "$WORK/origin-tls.out" && wait_ready "$WORK/origin-plain.out" ||
    die "an origin did not start"

PORT=$(free_port)
STATS=$(free_port)
cat >"$WORK/pinproxy.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PORT
ca_cert = $WORK/ca.pem
ca_key = $WORK/ca.key
trust = $WORK/pki/root.pem
unpinned = pass
plain_ports = $PLAIN_PORT
connect_ports = 443 $PLAIN_PORT
max_connections = 100
connect_timeout = 2s
header_timeout = 2s
idle_timeout = 2s
shutdown_timeout = 1s
log = stderr
log_level = info
stats_listen = 127.0.0.1:$STATS
report_file = $WORK/report.jsonl
observe_file = $WORK/observe.jsonl

[pins:api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_ROOT
connect_to = 127.0.0.1:$TLS_PORT

[pins:bad]
hosts = bad.test
pin = $PIN_FOREIGN
pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
connect_to = 127.0.0.1:$TLS_PORT

[pins:cand]
hosts = tunnel.test
pin = $PIN_FOREIGN
pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
candidate = $PIN_INTER
connect_to = 127.0.0.1:$TLS_PORT
EOF
LOG=$WORK/pinproxy.log
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    UBSAN_OPTIONS=print_stacktrace=1 start_pinproxy PP "$PORT" \
    "$WORK/pinproxy.conf" "$LOG"
sleep 0.5
fds_before=$(ls "/proc/$PP/fd" | wc -l)

say "pinproxy $("$PINPROXY" -V 2>&1 | head -n 1), PID $PP: $MINUTES" \
    "minutes, $WORKERS clients"
spawn CLIENT timeout --signal=TERM --kill-after=10 $((MINUTES * 60 + 120)) \
    python3 "$CHAOS" client --proxy "$PORT" --seconds $((MINUTES * 60)) \
    --workers "$WORKERS" --hosts "api.test,bad.test,tunnel.test,127.0.0.1:$PLAIN_PORT" \
    ${SEED:+--seed "$SEED"} >"$WORK/client.out" 2>&1
fails=0
fail()
{
	echo "FAIL: $*"
	fails=$((fails + 1))
}
t=0
reloads=0
while kill -0 "$CLIENT" 2>/dev/null; do
	sleep 1
	t=$((t + 1))
	kill -0 "$PP" 2>/dev/null || break
	if [ $((t % 30)) = 0 ]; then
		kill -HUP "$PP" && reloads=$((reloads + 1))
	fi
done
wait "$CLIENT"
PIDS=${PIDS/ $CLIENT/}
cat "$WORK/client.out"

if ! kill -0 "$PP" 2>/dev/null; then
	fail "pinproxy exited during the traffic"
	tail -n 20 "$LOG"
	exit 1
fi
# Every connection ends within idle_timeout and a linger's look after it.
active=""
for i in $(seq 100); do
	active=$(python3 -c 'import sys, urllib.request
t = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1],
                           timeout=5).read().decode()
print([l.split()[1] for l in t.splitlines()
       if l.startswith("pinproxy_connections_active ")][0])' "$STATS" 2>&1)
	[ "$active" = 0 ] && break
	sleep 0.1
done
[ "$active" = 0 ] || fail "connections still open after the traffic: $active"
fds_after=$(ls "/proc/$PP/fd" | wc -l)
for i in $(seq 100); do
	[ "$fds_after" -le "$fds_before" ] && break
	sleep 0.1
	fds_after=$(ls "/proc/$PP/fd" | wc -l)
done
[ "$fds_after" -le "$fds_before" ] ||
    fail "descriptors: $fds_before before the traffic, $fds_after after"
kill -TERM "$PP"
wait "$PP"
rc=$?
PIDS=${PIDS/ $PP/}
[ "$rc" = 0 ] || fail "pinproxy exited with status $rc on SIGTERM"
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG"
then
	fail "a sanitizer report:"
	grep -A 30 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
	    "$LOG" | head -n 60
fi
echo "$reloads reloads; descriptors $fds_before before, $fds_after after;" \
    "pinproxy log lines by event:"
grep -o 'event=[a-z_]*' "$LOG" | sort | uniq -c | sort -rn | sed 's/^/    /'
if [ "$fails" = 0 ]; then
	echo "chaos: pinproxy held (no crash, no sanitizer report, nothing left open)"
else
	echo "chaos: $fails failure(s); rerun with --seed and --keep to look"
fi
[ "$fails" = 0 ]
