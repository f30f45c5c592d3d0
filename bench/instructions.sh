#!/usr/bin/env bash
# Instructions per keep-alive request, counted by callgrind: a figure that
# does not move with the machine's load, for comparing two builds where
# the timed rows of run.sh cannot tell 5 % from noise.
#
#   bash bench/instructions.sh [--requests N] BINARY...
#
# For each BINARY (a pinproxy), for the plaintext path (absolute-form to a
# pinned TLS origin) and the intercepted path (CONNECT, pinned): run it
# under valgrind --tool=callgrind while one curl sends 100, then 100 + N
# (default 1000) requests on one connection to tests/origin.py, and print
# the difference of the two totals divided by N; the same for the calls of
# epoll_ctl(2) and epoll_wait(2), the kernel's share that instructions
# leave out. Startup, the handshakes and the shutdown cancel out. Needs
# valgrind, curl, python3 and a built tree's tests/ (the PKI is made here
# by tests/mkpki.sh). Everything runs on 127.0.0.1; both processes are
# stopped by PID.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
N=1000
if [ "${1:-}" = --requests ]; then
	N=${2:?}
	shift 2
fi
[ $# -gt 0 ] || { echo "usage: $0 [--requests N] BINARY..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: needs valgrind" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-instr.XXXXXX")
PIDS=""
cleanup()
{
	local p
	for p in $PIDS; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

PKI=$WORK/pki
sh "$top/tests/mkpki.sh" "$PKI" >/dev/null 2>&1 ||
    { echo "$0: cannot make the test PKI" >&2; exit 1; }
PIN_LEAF=$(sh "$top/tests/mkpki.sh" pin "$PKI/leaf.pem")
PIN_INTER=$(sh "$top/tests/mkpki.sh" pin "$PKI/inter.pem")

# A port nothing listens on.
port()
{
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

OP=$(port)
python3 -S "$top/tests/origin.py" --port "$OP" --cert "$PKI/chain.pem" \
    --key "$PKI/leaf.key" >/dev/null 2>&1 &
PIDS="$PIDS $!"

# count BINARY MODE REQUESTS: callgrind's total for one run.
count()
{
	local bin=$1 mode=$2 n=$3 pp vp i scheme out
	local urls=()
	pp=$(port)
	cat >"$WORK/p.conf" <<CONF
[proxy]
listen = 127.0.0.1:$pp
trust = $PKI/root.pem
ca_cert = $WORK/ca.pem
ca_key = $WORK/ca.key
log_level = error
connect_ports = $OP

[pins:api]
hosts = api.test
pin = $PIN_LEAF
pin = $PIN_INTER
port = $OP
connect_to = 127.0.0.1:$OP
CONF
	out=$WORK/cg.out
	rm -f "$out"
	valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" \
	    -c "$WORK/p.conf" >"$WORK/valgrind.log" 2>&1 &
	vp=$!
	for (( i = 0; i < 300; i++ )); do
		{ exec 3<>"/dev/tcp/127.0.0.1/$pp"; } 2>/dev/null && break
		sleep 0.1
	done
	exec 3>&- 2>/dev/null
	scheme=http
	[ "$mode" = intercept ] && scheme=https
	for (( i = 0; i < n; i++ )); do
		urls+=("$scheme://api.test:$OP/hello")
	done
	env -u CURL_CA_BUNDLE -u SSL_CERT_FILE curl -sS --cacert "$WORK/ca.pem" \
	    -x "http://127.0.0.1:$pp" "${urls[@]}" >"$WORK/curl.out" 2>&1 ||
	    echo "$0: curl failed: $(head -n 1 "$WORK/curl.out")" >&2
	kill "$vp"
	wait "$vp" 2>/dev/null
	echo "$(sed -n 's/^totals: //p' "$out") $(python3 - "$out" <<'PY'
import re, sys
# Calls of the two system call wrappers, by name (callgrind compresses a
# name to "(id)" after its first use, as a caller or a callee).
names, counts, cur = {}, {"epoll_ctl": 0, "epoll_wait": 0}, None
for line in open(sys.argv[1], errors="replace"):
    if line.startswith(("fn=", "cfn=")):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
        if m and m.group(2):
            names[m.group(1)] = m.group(2)
        if line.startswith("cfn="):
            cur = names.get(m.group(1)) if m else None
    elif line.startswith("calls=") and cur in counts:
        counts[cur] += int(line[6:].split()[0])
        cur = None
print(counts["epoll_ctl"], counts["epoll_wait"])
PY
)"
}

printf '%-40s %-10s %12s %10s %10s\n' binary path instructions epoll_ctl \
    epoll_wait
for bin in "$@"; do
	for mode in plain intercept; do
		read -r a actl await <<<"$(count "$bin" "$mode" 100)"
		read -r b bctl bwait <<<"$(count "$bin" "$mode" $((100 + N)))"
		printf '%-40s %-10s %12s %10s %10s\n' "$bin" "$mode" \
		    $(( (b - a) / N )) \
		    "$(awk -v a="$actl" -v b="$bctl" -v n="$N" \
			'BEGIN { printf "%.2f", (b - a) / n }')" \
		    "$(awk -v a="$await" -v b="$bwait" -v n="$N" \
			'BEGIN { printf "%.2f", (b - a) / n }')"
	done
done
