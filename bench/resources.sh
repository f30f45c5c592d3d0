#!/bin/bash
# pinproxy's memory and descriptors at rest and per idle connection: 1000
# idle plaintext clients, 1000 idle blind tunnels and 1000 idle intercepted
# connections, opened one kind after the other against one pinproxy, then
# all closed; printed as a markdown table. Everything runs on 127.0.0.1;
# every process started here is stopped by PID. See bench/README.md.

PROG=resources.sh
. "$(cd "$(dirname "$0")" && pwd)/lib/setup.sh"

usage()
{
	cat >&2 <<'EOF'
usage: bash bench/resources.sh [--build DIR] [--count N] [--rounds K] [--keep]
  --build DIR  use DIR/pinproxy (default: build one from this tree, without
               sanitizers, in a temporary directory)
  --count N    idle connections of each kind (default 1000)
  --rounds K   open and close all of them K times (default 2)
  --keep       keep the scratch directory (configuration, logs)
EOF
	exit 2
}

BUILD=""
COUNT=1000
ROUNDS=2
while [ $# -gt 0 ]; do
	case $1 in
	--build)	BUILD=${2:?}; shift ;;
	--count)	COUNT=${2:?}; shift ;;
	--rounds)	ROUNDS=${2:?}; shift ;;
	--keep)		KEEP=1 ;;
	*)		usage ;;
	esac
	shift
done
case $COUNT$ROUNDS in
''|*[!0-9]*)	usage ;;
esac
[ "$COUNT" -ge 1 ] && [ "$COUNT" -le 1300 ] ||
    die "--count must be between 1 and 1300 (3 kinds within max_connections)"
[ "$ROUNDS" -ge 1 ] || die "--rounds must be at least 1"

raise_nofile
find_pinproxy "$BUILD"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-resources.XXXXXX")
make_pki "$WORK/pki"

# The TLS origin of the pinned host, and a plain TCP origin that accepts
# and holds every connection without answering (the tunnels' target).
ORIGIN_PORT=$(free_port)
start_origin O_TLS "$ORIGIN_PORT" origin --tls \
    --cert "$WORK/pki/bench-chain.pem" --key "$WORK/pki/bench.key"
HOLD_PORT=$(free_port)
start_origin O_HOLD "$HOLD_PORT" hold --plain --silent

PORT=$(free_port)
cat >"$WORK/pinproxy.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PORT
ca_cert = $WORK/ca.pem
ca_key = $WORK/ca.key
trust = $WORK/pki/root.pem
unpinned = pass
connect_ports = 443 $HOLD_PORT
max_connections = 4096
header_timeout = 5m
idle_timeout = 10m
shutdown_timeout = 1s
log = stderr
log_level = warn

[pins:api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_ROOT
connect_to = 127.0.0.1:$ORIGIN_PORT
EOF
start_pinproxy PP "$PORT" "$WORK/pinproxy.conf" "$WORK/pinproxy.log"

say "pinproxy $("$PINPROXY" -V 2>&1 | head -n 1), PID $PP; $COUNT" \
    "connections of each kind"
python3 "$CLIENTS" idle --proxy "$PORT" --pid "$PP" \
    --cafile "$WORK/ca.pem" --host api.test --tunnel-port "$HOLD_PORT" \
    --count "$COUNT" --rounds "$ROUNDS" --workers 50
rc=$?

kill -0 "$PP" 2>/dev/null || die "pinproxy exited: $(tail -n 5 \
    "$WORK/pinproxy.log")"
if grep -qE 'level=(error|warn)' "$WORK/pinproxy.log"; then
	say "pinproxy logged warnings or errors:"
	grep -E 'level=(error|warn)' "$WORK/pinproxy.log" | head -n 5 >&2
fi
stop "$PP"
exit "$rc"
