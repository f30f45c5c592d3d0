#!/bin/bash
# A bounded soak of one pinproxy: mixed traffic at a fixed rate (pinned
# plaintext requests, small and 1 MiB, intercepted CONNECTs, pin
# mismatches, blind tunnels, clients that leave in the middle of a body),
# VmRSS and descriptors sampled every 10 s into a CSV, and the values at
# the end compared with those one minute in. Everything runs on 127.0.0.1;
# every process started here is stopped by PID. See bench/README.md.

PROG=soak.sh
. "$(cd "$(dirname "$0")" && pwd)/lib/setup.sh"

usage()
{
	cat >&2 <<'EOF'
usage: bash bench/soak.sh [--minutes N] [--rate R] [--build DIR] [--csv FILE]
                          [--keep]
  --minutes N  minutes of traffic, at least 2 (default 10)
  --rate R     requests per second (default 50)
  --build DIR  use DIR/pinproxy (default: build one from this tree, without
               sanitizers, in a temporary directory)
  --csv FILE   where the samples go (default
               /tmp/pinproxy-soak-YYYYMMDD-HHMMSS.csv)
  --keep       keep the scratch directory (configuration, logs)
EOF
	exit 2
}

MINUTES=10
RATE=50
BUILD=""
CSV=""
while [ $# -gt 0 ]; do
	case $1 in
	--minutes)	MINUTES=${2:?}; shift ;;
	--rate)		RATE=${2:?}; shift ;;
	--build)	BUILD=${2:?}; shift ;;
	--csv)		CSV=${2:?}; shift ;;
	--keep)		KEEP=1 ;;
	*)		usage ;;
	esac
	shift
done
case $MINUTES in
''|*[!0-9]*)	usage ;;
esac
case $RATE in
''|*[!0-9.]*)	usage ;;
esac
[ "$MINUTES" -ge 2 ] || die "--minutes must be at least 2"
: "${CSV:=/tmp/pinproxy-soak-$(date +%Y%m%d-%H%M%S).csv}"

raise_nofile
find_pinproxy "$BUILD"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-soak.XXXXXX")
make_pki "$WORK/pki"

# One TLS origin serves every name: api.test (pinned, pins match),
# bad.test (pinned, pins never match) and tunnel.test (no pin set: the
# client reaches it through a blind tunnel by IP address).
ORIGIN_PORT=$(free_port)
start_origin O_TLS "$ORIGIN_PORT" origin --tls \
    --cert "$WORK/pki/bench-chain.pem" --key "$WORK/pki/bench.key"

PORT=$(free_port)
STATS=$(free_port)
cat >"$WORK/pinproxy.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PORT
ca_cert = $WORK/ca.pem
ca_key = $WORK/ca.key
trust = $WORK/pki/root.pem
unpinned = pass
connect_ports = 443 $ORIGIN_PORT
max_connections = 4096
shutdown_timeout = 1s
log = stderr
log_level = warn
stats_listen = 127.0.0.1:$STATS

[pins:api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_ROOT
connect_to = 127.0.0.1:$ORIGIN_PORT

[pins:bad]
hosts = bad.test
pin = $PIN_FOREIGN
pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
connect_to = 127.0.0.1:$ORIGIN_PORT
EOF
start_pinproxy PP "$PORT" "$WORK/pinproxy.conf" "$WORK/pinproxy.log"

say "pinproxy $("$PINPROXY" -V 2>&1 | head -n 1), PID $PP; $MINUTES" \
    "minutes at $RATE requests/s; samples in $CSV"
# The client has its own deadlines; this one bounds it whatever happens.
spawn SOAK_CLIENT timeout --signal=TERM --kill-after=10 \
    $((MINUTES * 60 + 300)) python3 "$CLIENTS" soak --proxy "$PORT" \
    --pid "$PP" --stats "$STATS" --cafile "$WORK/ca.pem" \
    --root "$WORK/pki/root.pem" --origin-port "$ORIGIN_PORT" --csv "$CSV" \
    --minutes "$MINUTES" --rate "$RATE"
wait "$SOAK_CLIENT"
rc=$?
PIDS=${PIDS/ $SOAK_CLIENT/}

echo
if kill -0 "$PP" 2>/dev/null; then
	echo "pinproxy log lines by event:"
	grep -o 'event=[a-z_]*' "$WORK/pinproxy.log" | sort | uniq -c |
	    sed 's/^/    /'
else
	echo "pinproxy exited during the soak:"
	tail -n 5 "$WORK/pinproxy.log"
	rc=1
fi
stop "$PP"
[ "$rc" -le 1 ] || echo "the soak client ended with status $rc"
exit "$rc"
