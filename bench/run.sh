#!/bin/bash
# Benchmark pinproxy against its peers on this machine: an nginx TLS origin,
# stunnel, squid (cache_peer and ssl_bump), sslsplit, mitmproxy, tinyproxy
# and pinproxy's paths (interception also against a second origin
# server that resumes TLS sessions), measured in interleaved rounds with
# bench/loadgen.c, reported as a markdown table of medians with ratios to a
# direct client-to-origin run, followed by a sweep of the rates over the
# number of requests in flight, with and without CPU pinning (a table and a
# gnuplot PNG per path). Everything runs on 127.0.0.1; every process
# started here is stopped by PID on exit. See bench/README.md.

set -u

usage()
{
	cat >&2 <<'EOF'
usage: bash bench/run.sh [options]
  --quick          one round with short runs (a smoke test, ~10 minutes)
  --rounds N       interleaved rounds (default 3, 1 with --quick)
  --out FILE       write the report here too (default
                   /tmp/pinproxy-bench-results-YYYYMMDD.md)
  --only LIST      comma-separated rows to run (default: all), from:
                   direct direct-shared pinproxy-plain stunnel
                   pinproxy-forward squid-plain pinproxy-intercept
                   pinproxy-intercept-resume pinproxy-intercept-busy
                   squid-bump sslsplit
                   mitmproxy pinproxy-tunnel tinyproxy
  --pinproxy FILE  use this pinproxy binary instead of building one
  --baseline FILE  also measure every selected pinproxy row with this
                   binary, as ROW-baseline, in the same rounds
  --build-dir DIR  where to build pinproxy (default /tmp/pinproxy-bench-build)
  --no-install     do not run apt-get; peers that are missing are skipped
  --duration S     seconds of each keep-alive and new-connection run
  --idle K         idle connections held for the memory measurement
  --keep           keep the scratch directory (logs, configs, raw data)
  --inflight LIST  the sweep's numbers in flight (default 1,8,32,128;
                   none: no sweep)
  --pinning MODE   the sweep with CPU pinning on, off or both (default)
  --sweep-duration S  seconds of each sweep run (default 4, 2 with --quick)
EOF
	exit 2
}

SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$SRC/bench
ALL_ROWS="direct direct-shared pinproxy-plain stunnel pinproxy-forward
squid-plain pinproxy-intercept pinproxy-intercept-resume pinproxy-intercept-busy
squid-bump sslsplit mitmproxy
pinproxy-tunnel tinyproxy"

QUICK=0
ROUNDS=""
OUT=""
ONLY=""
PINPROXY=""
BUILD=/tmp/pinproxy-bench-build
INSTALL=1
DURATION=""
IDLE=1000
KEEP=0
BASELINE=""
INFLIGHT=1,8,32,128
PINNING=both
SWEEP_DURATION=""
KA_CONNS=16
NC_CONNS=8
# Source addresses of new connections (loadgen -b): see lg().
LG_SOURCES=16
# How far ahead in every round a lead must be (lead_report()): a run of
# one build against a copy of itself differed by up to 9 % in a single
# run; in rounds run side by side, a few per cent.
LEAD_MARGIN=0.03
BIG_MIB=100

while [ $# -gt 0 ]; do
	case $1 in
	--quick)	QUICK=1 ;;
	--rounds)	ROUNDS=${2:?}; shift ;;
	--out)		OUT=${2:?}; shift ;;
	--only)		ONLY=${2:?}; shift ;;
	--pinproxy)	PINPROXY=${2:?}; shift ;;
	--build-dir)	BUILD=${2:?}; shift ;;
	--no-install)	INSTALL=0 ;;
	--duration)	DURATION=${2:?}; shift ;;
	--idle)		IDLE=${2:?}; shift ;;
	--keep)		KEEP=1 ;;
	--baseline)	BASELINE=${2:?}; shift ;;
	--inflight)	INFLIGHT=${2:?}; shift ;;
	--pinning)	PINNING=${2:?}; shift ;;
	--sweep-duration) SWEEP_DURATION=${2:?}; shift ;;
	*)		usage ;;
	esac
	shift
done
# NC1_DURATION: the new-connection run with one connection in flight.
if [ "$QUICK" = 1 ]; then
	: "${ROUNDS:=1}" "${DURATION:=2}" "${SWEEP_DURATION:=2}"
	NC1_DURATION=1
else
	: "${ROUNDS:=3}" "${DURATION:=10}" "${SWEEP_DURATION:=4}"
	NC1_DURATION=3
fi
: "${OUT:=/tmp/pinproxy-bench-results-$(date +%Y%m%d).md}"
ROWS=$(echo "${ONLY:-$ALL_ROWS}" | tr ',' ' ')
for r in $ROWS; do
	case " $(echo $ALL_ROWS) " in
	*" $r "*) ;;
	*) echo "run.sh: unknown row: $r" >&2; usage ;;
	esac
done
# With --baseline, each pinproxy row is followed by its baseline twin.
if [ -n "$BASELINE" ]; then
	ROWS=$(for r in $ROWS; do
		echo "$r"
		# busy_poll is newer than most baselines.
		case $r in
		pinproxy-intercept-busy) ;;
		pinproxy-*) echo "$r-baseline" ;;
		esac
	done)
fi
# The sweep: numbers in flight, and the pinning modes (on before off).
if [ "$INFLIGHT" = none ]; then
	INFLIGHT=""
fi
INFLIGHT=$(echo "$INFLIGHT" | tr ',' ' ')
for n in $INFLIGHT; do
	case $n in
	*[!0-9]*|0) echo "run.sh: --inflight: not a count: $n" >&2; usage ;;
	esac
done
case $PINNING in
on|off)	PIN_MODES=$PINNING ;;
both)	PIN_MODES="on off" ;;
*)	echo "run.sh: --pinning: on, off or both" >&2; usage ;;
esac

say()
{
	echo "# $*" >&2
}

die()
{
	echo "run.sh: $*" >&2
	exit 1
}

# ---------------------------------------------------------------------
# Processes: every one is remembered by PID and stopped on exit.

PIDS=""
WORK=""

cleanup()
{
	local p
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	if [ -n "$WORK" ] && [ "$KEEP" = 0 ]; then
		rm -rf "$WORK"
	elif [ -n "$WORK" ]; then
		say "scratch directory kept: $WORK"
	fi
	[ -n "${POLICY_RC_D:-}" ] && rm -f "$POLICY_RC_D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# spawn VAR COMMAND...: start COMMAND in the background, its PID in VAR.
spawn()
{
	local var=$1
	shift
	"$@" &
	PIDS="$PIDS $!"
	eval "$var=$!"
}

# stop PID: SIGTERM, up to 10 s to exit, then SIGKILL; reap it.
stop()
{
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
	return 0
}

free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT SECONDS PID: until 127.0.0.1:PORT accepts, or PID exits.
wait_port()
{
	local i
	for i in $(seq $(($2 * 10))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# tree PID: PID and all its descendants.
tree()
{
	ps -e -o pid=,ppid= | awk -v root="$1" '
	    { parent[$1] = $2; pids[NR] = $1 }
	    END {
		in_tree[root] = 1; print root
		do {
			added = 0
			for (i = 1; i <= NR; i++) {
				p = pids[i]
				if (!(p in in_tree) && (parent[p] in in_tree)) {
					in_tree[p] = 1; print p; added = 1
				}
			}
		} while (added)
	    }'
}

# cpu_ticks PID: user + system clock ticks of PID and its descendants.
cpu_ticks()
{
	local p sum=0 t
	for p in $(tree "$1"); do
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null |
		    awk '{ print $12 + $13 }')
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# rss_kib PID: resident KiB of PID and its descendants.
rss_kib()
{
	local p sum=0 t
	for p in $(tree "$1"); do
		t=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# ---------------------------------------------------------------------
# Packages.

# candidate PKG: the version apt would install, empty if none.
candidate()
{
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }' |
	    grep -v '(none)'
}

installed()
{
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null |
	    grep -q 'install ok installed'
}

NOTES=""
note()
{
	NOTES="$NOTES- $*
"
	say "$*"
}

# row_packages: the packages of the peers among the selected rows.
row_packages()
{
	local r
	for r in $ROWS; do
		case $r in
		stunnel)	echo stunnel4 ;;
		squid-*)	echo squid-openssl ;;
		sslsplit)	echo sslsplit ;;
		mitmproxy)	echo mitmproxy ;;
		tinyproxy)	echo tinyproxy ;;
		esac
	done | sort -u
}

install_packages()
{
	local want="" p nginx_pkg=""
	for p in gcc make pkg-config libssl-dev libevent-dev libinih-dev \
	    python3 procps iproute2 util-linux; do
		installed "$p" || want="$want $p"
	done
	if ! command -v nginx >/dev/null 2>&1; then
		for p in nginx-light nginx; do
			if [ -n "$(candidate "$p")" ]; then
				nginx_pkg=$p
				break
			fi
		done
		[ -n "$nginx_pkg" ] || die "neither nginx-light nor nginx" \
		    "can be installed"
		want="$want $nginx_pkg"
	fi
	for p in $(row_packages); do
		installed "$p" && continue
		if [ -z "$(candidate "$p")" ]; then
			note "$p: no installable package (apt-cache policy);" \
			    "its rows are skipped"
			continue
		fi
		want="$want $p"
	done
	if [ -n "$INFLIGHT" ] && ! installed gnuplot-nox &&
	    ! command -v gnuplot >/dev/null 2>&1; then
		if [ -n "$(candidate gnuplot-nox)" ]; then
			want="$want gnuplot-nox"
		else
			note "gnuplot-nox: no installable package" \
			    "(apt-cache policy); the sweep has no plots"
		fi
	fi
	[ -n "$want" ] || return 0
	[ "$(id -u)" = 0 ] || die "run as root to install:$want"
	# Packaged services must not start listening on their own.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		POLICY_RC_D=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC_D"
		chmod 755 "$POLICY_RC_D"
	fi
	say "apt-get install$want"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $want >"$WORK/apt.log" 2>&1 ||
	    { tail -n 20 "$WORK/apt.log" >&2; die "apt-get install failed"; }
	if [ -n "${POLICY_RC_D:-}" ]; then
		rm -f "$POLICY_RC_D"
		POLICY_RC_D=""
	fi
}

# ---------------------------------------------------------------------
# Builds: pinproxy from this tree (optimised, no sanitizers) and loadgen.

build()
{
	if [ -z "$PINPROXY" ]; then
		mkdir -p "$BUILD"
		if [ ! -f "$BUILD/Makefile" ]; then
			say "configuring pinproxy in $BUILD"
			(cd "$BUILD" && "$SRC/configure" -q) \
			    >"$WORK/build.log" 2>&1 ||
			    { tail -n 20 "$WORK/build.log" >&2;
			    die "configure failed"; }
		fi
		say "building pinproxy in $BUILD"
		make -C "$BUILD" -j2 pinproxy >>"$WORK/build.log" 2>&1 ||
		    { tail -n 20 "$WORK/build.log" >&2; die "make failed"; }
		PINPROXY=$BUILD/pinproxy
	fi
	[ -x "$PINPROXY" ] || die "no pinproxy binary: $PINPROXY"
	[ -z "$BASELINE" ] || [ -x "$BASELINE" ] ||
	    die "no baseline pinproxy binary: $BASELINE"
	cc -O2 -Wall -Wextra -o "$WORK/loadgen" "$BENCH/loadgen.c" \
	    -lssl -lcrypto ||
	    die "cannot build bench/loadgen.c"
}

# ---------------------------------------------------------------------
# The PKI: ECDSA P-256 root -> intermediate -> leaf for bench.test (and
# resume.test, the name served by the resuming origin, and tunnel.test, the
# unpinned name), and an interception CA shared by every intercepting proxy.

pki_cnf()
{
	cat <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter_ext]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:bench.test, DNS:resume.test, DNS:tunnel.test
EOF
}

pki_key()
{
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1" 2>/dev/null
}

# pki_issue NAME SUBJECT EXT ISSUER
pki_issue()
{
	openssl req -new -config "$PKI/pki.cnf" -key "$PKI/$1.key" \
	    -subj "$2" |
	openssl x509 -req -CA "$PKI/$4.pem" -CAkey "$PKI/$4.key" \
	    -set_serial "0x$(openssl rand -hex 8)" -days 30 \
	    -extfile "$PKI/pki.cnf" -extensions "$3" -out "$PKI/$1.pem" \
	    2>/dev/null
}

pki_pin()
{
	echo "sha256/$(openssl x509 -in "$1" -pubkey -noout |
	    openssl pkey -pubin -outform der |
	    openssl dgst -sha256 -binary | openssl enc -base64)"
}

make_pki()
{
	local ca
	PKI=$WORK/pki
	mkdir -p "$PKI"
	pki_cnf >"$PKI/pki.cnf"
	for ca in root ica; do
		pki_key "$PKI/$ca.key"
		openssl req -x509 -new -config "$PKI/pki.cnf" \
		    -extensions ca_ext -key "$PKI/$ca.key" \
		    -subj "/O=pinproxy bench/CN=pinproxy bench $ca" \
		    -days 30 -out "$PKI/$ca.pem" || return 1
	done
	pki_key "$PKI/inter.key"
	pki_issue inter "/O=pinproxy bench/CN=pinproxy bench intermediate" \
	    inter_ext root || return 1
	pki_key "$PKI/leaf.key"
	pki_key "$PKI/forged.key"
	pki_issue leaf "/O=pinproxy bench/CN=bench.test" leaf_ext inter ||
	    return 1
	cat "$PKI/leaf.pem" "$PKI/inter.pem" >"$PKI/leaf-chain.pem"
	cat "$PKI/ica.key" "$PKI/ica.pem" >"$PKI/mitmproxy-ca.pem"
	PIN_INTER=$(pki_pin "$PKI/inter.pem")
	PIN_ROOT=$(pki_pin "$PKI/root.pem")
	# squid, sslsplit and tinyproxy drop privileges to the proxy user
	# (nobody for sslsplit) before they read some of these.
	chmod 755 "$WORK" "$PKI"
	chmod 644 "$PKI"/*.pem
	chgrp proxy "$PKI/ica.key" && chmod 640 "$PKI/ica.key"
	# pinproxy refuses a CA key that its group or others may read.
	cp "$PKI/ica.key" "$PKI/ica-pinproxy.key"
	chmod 600 "$PKI/ica-pinproxy.key"
}

# render TEMPLATE OUT DIR PORT [PROXY_PORT]: fill a bench/conf template.
render()
{
	sed -e "s|@WORK@|$WORK|g" -e "s|@PKI@|$PKI|g" -e "s|@DIR@|$3|g" \
	    -e "s|@PORT@|$4|g" -e "s|@PROXY_PORT@|${5:-}|g" \
	    -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
	    -e "s|@RESUME_PORT@|$RESUME_PORT|g" \
	    -e "s|@PIN_INTER@|$PIN_INTER|g" -e "s|@PIN_ROOT@|$PIN_ROOT|g" \
	    "$BENCH/conf/$1" >"$2"
}

# ---------------------------------------------------------------------
# CPU placement: loadgen on CPU 0; with 3 or more CPUs the origin on 1
# and the proxy on 2; with 2, the origin shares CPU 0 with loadgen and
# the proxy has CPU 1 alone (the direct run moves the origin to CPU 1).
# The direct-shared run leaves the origin where proxied runs have it: the
# most a proxied run can reach with this layout.

NPROC=$(nproc)
if [ "$NPROC" -ge 3 ]; then
	LG_CPU=0 ORIGIN_CPU=1 PROXY_CPU=2 DIRECT_CPU=1
elif [ "$NPROC" = 2 ]; then
	LG_CPU=0 ORIGIN_CPU=0 PROXY_CPU=1 DIRECT_CPU=1
else
	LG_CPU="" ORIGIN_CPU="" PROXY_CPU="" DIRECT_CPU=""
fi

# on_cpu CPU COMMAND...: run COMMAND pinned to CPU (unpinned if empty).
on_cpu()
{
	local cpu=$1
	shift
	if [ -n "$cpu" ]; then
		exec taskset -c "$cpu" "$@"
	fi
	exec "$@"
}

# move_origin CPU: re-pin every thread of the running origin.
move_origin()
{
	[ -n "$1" ] && taskset -a -p -c "$1" "$ORIGIN_PID" >/dev/null
}

# Every CPU: the placement of the sweep's unpinned runs.
ALL_CPUS=0-$((NPROC - 1))

# pin_tree PID CPUS: re-pin every thread of PID and of its descendants.
pin_tree()
{
	local p
	for p in $(tree "$1"); do
		taskset -a -p -c "$2" "$p" >/dev/null 2>&1
	done
}

# ---------------------------------------------------------------------
# The origin: one nginx with two servers, the origin proper (every
# handshake full) and the resuming origin (tickets and a session cache),
# whose access log says for each request whether its session was resumed.

start_origin()
{
	local dir=$WORK/origin
	mkdir -p "$dir/www" "$dir/tmp"
	head -c 100 /dev/zero | tr '\0' 'x' >"$dir/www/small"
	head -c $((BIG_MIB * 1048576)) /dev/urandom >"$dir/www/big"
	ORIGIN_PORT=$(free_port)
	RESUME_PORT=$(free_port)
	while [ "$RESUME_PORT" = "$ORIGIN_PORT" ]; do
		RESUME_PORT=$(free_port)
	done
	RESUME_LOG=$dir/resume-access.log
	render nginx.conf.in "$dir/nginx.conf" "$dir" "$ORIGIN_PORT"
	spawn ORIGIN_PID on_cpu "$ORIGIN_CPU" nginx -e "$dir/nginx-error.log" \
	    -p "$dir" -c "$dir/nginx.conf"
	wait_port "$ORIGIN_PORT" 10 "$ORIGIN_PID" &&
	    wait_port "$RESUME_PORT" 10 "$ORIGIN_PID" ||
	    die "nginx does not start: $(tail -n 5 "$dir/nginx-error.log")"
	echo "127.0.0.1 bench.test resume.test tunnel.test" >"$WORK/hosts"
	# The load client's other source addresses (lg -b): squid looks
	# up every client's name, and without one sends a query per
	# connection to a DNS server there is not.
	for i in $(seq 2 "$LG_SOURCES"); do
		echo "127.0.0.$i loadgen$i.bench.test"
	done >>"$WORK/hosts"
	echo "nameserver 127.0.0.1" >"$WORK/resolv.conf"
}

# resume_mark: how many lines the resuming origin has logged so far.
resume_mark()
{
	if [ -f "$RESUME_LOG" ]; then
		wc -l <"$RESUME_LOG"
	else
		echo 0
	fi
}

# resume_since ROW WHAT MARK: record how many upstream handshakes (first
# requests of a connection) the resuming origin saw after line MARK, and
# how many of them resumed a session.
resume_since()
{
	local n
	n=$(awk -v m="$3" 'NR > m && $2 == 1 { t++; if ($3 == "r") r++ }
	    END { print r + 0, t + 0 }' "$RESUME_LOG" 2>/dev/null)
	record "$1" "${2}_resumed" "${n% *}"
	record "$1" "${2}_handshakes" "${n#* }"
}

# ---------------------------------------------------------------------
# Peers. start_ROW PORT DIR starts the proxy of a row in the background
# with spawn, sets PEER_PID, and returns non-zero (with PEER_ERR) when it
# cannot. client_args gives the loadgen arguments of a row.

PEER_PID=""
PEER_ERR=""

need()
{
	command -v "$1" >/dev/null 2>&1 && return 0
	PEER_ERR="$1 is not installed"
	return 1
}

# start_pinproxy PORT DIR [LINE]: LINE goes into [proxy].
start_pinproxy()
{
	need "$ROW_BIN" || return 1
	render pinproxy.conf.in "$2/pinproxy.conf" "$2" "$1"
	if [ -n "${3:-}" ]; then
		sed -i "/^\[proxy\]\$/a $3" "$2/pinproxy.conf"
	fi
	spawn PEER_PID on_cpu "$PROXY_CPU" env \
	    PINPROXY_RESOLV_CONF="$WORK/resolv.conf" "$ROW_BIN" \
	    -c "$2/pinproxy.conf" 2>"$2/pinproxy.log"
}

# The forwarder listens on PORT; its [proxy] listener, which every
# configuration has, on another free port that nothing uses.
start_pinproxy_forward()
{
	local pport
	need "$ROW_BIN" || return 1
	pport=$(free_port)
	while [ "$pport" = "$1" ]; do
		pport=$(free_port)
	done
	render pinproxy-forward.conf.in "$2/pinproxy.conf" "$2" "$1" "$pport"
	spawn PEER_PID on_cpu "$PROXY_CPU" "$ROW_BIN" \
	    -c "$2/pinproxy.conf" 2>"$2/pinproxy.log"
}

start_stunnel()
{
	need stunnel4 || return 1
	render stunnel.conf.in "$2/stunnel.conf" "$2" "$1"
	spawn PEER_PID on_cpu "$PROXY_CPU" stunnel4 "$2/stunnel.conf" \
	    2>"$2/stderr.log"
}

# squid reads its configuration as root but runs as the proxy user.
start_squid()
{
	local conf=$1 port=$2 dir=$3
	need squid || return 1
	render "$conf" "$dir/squid.conf" "$dir" "$port"
	if grep -q sslcrtd_program "$dir/squid.conf"; then
		/usr/lib/squid/security_file_certgen -c -s "$dir/ssl_db" \
		    -M 16MB >"$dir/certgen.log" 2>&1 ||
		    { PEER_ERR="security_file_certgen -c failed"; return 1; }
	fi
	chown -R proxy:proxy "$dir"
	spawn PEER_PID on_cpu "$PROXY_CPU" squid -N -f "$dir/squid.conf" \
	    2>"$dir/stderr.log"
}

start_sslsplit()
{
	need sslsplit || return 1
	spawn PEER_PID on_cpu "$PROXY_CPU" sslsplit -k "$PKI/ica.key" \
	    -c "$PKI/ica.pem" -K "$PKI/forged.key" -u proxy \
	    ssl 127.0.0.1 "$1" 127.0.0.1 "$ORIGIN_PORT" 2>"$2/stderr.log"
}

start_mitmproxy()
{
	need mitmdump || return 1
	mkdir -p "$2/confdir"
	cp "$PKI/mitmproxy-ca.pem" "$2/confdir/"
	spawn PEER_PID on_cpu "$PROXY_CPU" env HOME="$2" mitmdump -q \
	    --mode regular --listen-host 127.0.0.1 --listen-port "$1" \
	    --set confdir="$2/confdir" \
	    --set ssl_verify_upstream_trusted_ca="$PKI/root.pem" \
	    --set stream_large_bodies=1m --set termlog_verbosity=error \
	    --set flow_detail=0 >"$2/stdout.log" 2>"$2/stderr.log"
}

start_tinyproxy()
{
	need tinyproxy || return 1
	render tinyproxy.conf.in "$2/tinyproxy.conf" "$2" "$1"
	chown -R proxy:proxy "$2"
	spawn PEER_PID on_cpu "$PROXY_CPU" tinyproxy -d -c \
	    "$2/tinyproxy.conf" 2>"$2/stderr.log"
}

# kind ROW: the row a --baseline twin measures.
kind()
{
	echo "${1%-baseline}"
}

# start_peer ROW PORT DIR
start_peer()
{
	PEER_PID=""
	PEER_ERR=""
	ROW_BIN=$PINPROXY
	[ "$(kind "$1")" != "$1" ] && ROW_BIN=$BASELINE
	case $(kind "$1") in
	pinproxy-forward)
			start_pinproxy_forward "$2" "$3" ;;
	pinproxy-intercept-busy)
			start_pinproxy "$2" "$3" "busy_poll = 1ms" ;;
	pinproxy-*)	start_pinproxy "$2" "$3" ;;
	stunnel)	start_stunnel "$2" "$3" ;;
	squid-plain)	start_squid squid-plain.conf.in "$2" "$3" ;;
	squid-bump)	start_squid squid-bump.conf.in "$2" "$3" ;;
	sslsplit)	start_sslsplit "$2" "$3" ;;
	mitmproxy)	start_mitmproxy "$2" "$3" ;;
	tinyproxy)	start_tinyproxy "$2" "$3" ;;
	esac || return 1
	if ! wait_port "$2" 30 "$PEER_PID"; then
		PEER_ERR="not listening on $2: $(cat "$3"/*.log 2>/dev/null |
		    tail -n 3 | tr '\n' ' ')"
		stop "$PEER_PID"
		PEER_PID=""
		return 1
	fi
}

# client_args ROW PORT: the loadgen mode of the row in LG_MODE, and its
# options (the target) in LG.
client_args()
{
	local p=127.0.0.1:$2
	case $(kind "$1") in
	direct|direct-shared)
		LG_MODE=tls
		LG=(-s "127.0.0.1:$ORIGIN_PORT" -A "$PKI/root.pem") ;;
	pinproxy-plain|squid-plain)
		LG_MODE=absolute LG=(-s "$p") ;;
	stunnel|pinproxy-forward)
		LG_MODE=plain LG=(-s "$p") ;;
	pinproxy-intercept|pinproxy-intercept-busy)
		LG_MODE=connect
		LG=(-s "$p" -C bench.test:443 -A "$PKI/ica.pem") ;;
	pinproxy-intercept-resume)
		# Both legs resume: the client its sessions with pinproxy
		# (-R), pinproxy its checked sessions with the origin.
		LG_MODE=connect
		LG=(-s "$p" -C resume.test:443 -H resume.test \
		    -A "$PKI/ica.pem" -R) ;;
	squid-bump)
		# The bumped request goes where its Host header says.
		LG_MODE=connect LG=(-s "$p" -C "bench.test:$ORIGIN_PORT" \
		    -H "bench.test:$ORIGIN_PORT" -S bench.test \
		    -A "$PKI/ica.pem") ;;
	sslsplit)
		LG_MODE=tls LG=(-s "$p" -A "$PKI/ica.pem") ;;
	mitmproxy)
		LG_MODE=connect LG=(-s "$p" -C "127.0.0.1:$ORIGIN_PORT" \
		    -A "$PKI/ica.pem") ;;
	pinproxy-tunnel)
		LG_MODE=connect
		LG=(-s "$p" -C "127.0.0.1:$ORIGIN_PORT" -H tunnel.test \
		    -A "$PKI/root.pem") ;;
	tinyproxy)
		LG_MODE=connect LG=(-s "$p" -C "127.0.0.1:$ORIGIN_PORT" \
		    -A "$PKI/root.pem") ;;
	esac
}

describe()
{
	if [ "$(kind "$1")" != "$1" ]; then
		echo "$(describe "$(kind "$1")") (--baseline binary)"
		return
	fi
	case $1 in
	direct)		echo "direct|TLS straight to the origin" ;;
	direct-shared)	echo "direct|TLS straight to the origin, client" \
			    "and origin sharing one CPU" ;;
	pinproxy-plain)	echo "pinproxy|absolute-form → pinned TLS" ;;
	stunnel)	echo "stunnel|origin-form → verified TLS" ;;
	pinproxy-forward)
			echo "pinproxy|[forward:] TCP → pinned TLS" ;;
	squid-plain)	echo "squid|absolute-form → TLS cache_peer" ;;
	pinproxy-intercept)
			echo "pinproxy|CONNECT, intercepted, pinned" ;;
	pinproxy-intercept-resume)
			echo "pinproxy|CONNECT, intercepted, pinned," \
			    "sessions resumed on both legs" ;;
	pinproxy-intercept-busy)
			echo "pinproxy|CONNECT, intercepted, pinned," \
			    "busy_poll = 1ms" ;;
	squid-bump)	echo "squid|CONNECT, ssl_bump" ;;
	sslsplit)	echo "sslsplit|TLS in (static target), split" ;;
	mitmproxy)	echo "mitmproxy|CONNECT, intercepted" ;;
	pinproxy-tunnel)
			echo "pinproxy|CONNECT, blind tunnel" ;;
	tinyproxy)	echo "tinyproxy|CONNECT, tunnel" ;;
	esac
}

# ---------------------------------------------------------------------
# Measurements.

# lg NAME SECONDS TEST OPTIONS...: run loadgen for the row on its CPU with
# a time limit; its key=value line in $RUN/NAME.out, stderr in
# $RUN/NAME.err.
lg()
{
	local name=$1 limit=$2 test=$3 sources=()
	shift 3
	# New connections from one address run out of ephemeral ports
	# at about 14,000 a second (README, Caveats): they come from
	# LG_SOURCES loopback addresses in turn.
	[ "$test" = newconn ] && sources=(-b "$LG_SOURCES")
	timeout "$limit" "${LOADGEN[@]}" "$LG_MODE" "$test" "${LG[@]}" \
	    "${sources[@]}" "$@" >"$RUN/$name.out" 2>"$RUN/$name.err"
}

# val NAME KEY: the value of KEY in the last line of $RUN/NAME.out.
val()
{
	tail -n 1 "$RUN/$1.out" 2>/dev/null | tr ' ' '\n' |
	    sed -n "s/^$2=//p" | head -n 1
}

# record ROW KEY VALUE
record()
{
	[ -n "$3" ] && printf '%s\t%s\t%s\t%s\n' "$ROUND" "$1" "$2" "$3" \
	    >>"$WORK/results.tsv"
}

# cpu_per ROW KEY TICKS COUNT SCALE: record TICKS/COUNT in SCALE units.
cpu_per()
{
	[ -n "$4" ] && [ "$4" != 0 ] || return 0
	record "$1" "$2" "$(awk -v t="$3" -v n="$4" -v s="$5" -v hz="$HZ" \
	    'BEGIN { printf "%.2f", t / hz * s / n }')"
}

# errors_of ROW WHAT NAME: note a loadgen run that reported errors.
errors_of()
{
	local e
	e=$(val "$3" errors)
	if [ -n "$e" ] && [ "$e" != 0 ]; then
		record "$1" "${2}_errors" "$e"
		say "$1 $2: $e errors: $(head -n 3 "$RUN/$3.err" |
		    tr '\n' ' ')"
	fi
}

# spent PID T0 T1 NAME...: the CPU ticks a run cost the proxy PID; for a
# direct row (no PID; T0 and T1 are then the origin's) the origin's plus
# what loadgen reported for the runs NAME...: the two endpoints' own cost,
# the floor any proxy adds to.
spent()
{
	local pid=$1 d=$(($3 - $2)) us=0 n v
	shift 3
	if [ -n "$pid" ]; then
		echo "$d"
		return
	fi
	for n in "$@"; do
		v=$(val "$n" cpu_us)
		us=$((us + ${v:-0}))
	done
	awk -v d="$d" -v us="$us" -v hz="$HZ" \
	    'BEGIN { printf "%.2f", d + us * hz / 1000000 }'
}

# newconn_run ROW PID KEY NAME CONNS SECONDS CPUKEY: the new-connection
# test with CONNS at once, recorded under KEY (rate, p50, errors, and for
# the resume row the resumed shares) with the proxy's CPU per connection
# under CPUKEY.
newconn_run()
{
	local row=$1 pid=$2 key=$3 name=$4 t0 t1 mark
	mark=$(resume_mark)
	t0=$(cpu_ticks "${pid:-$ORIGIN_PID}")
	lg "$name" $(($6 + 90)) newconn -c "$5" -d "$6"
	t1=$(cpu_ticks "${pid:-$ORIGIN_PID}")
	record "$row" "${key}_rate" "$(val "$name" rate)"
	record "$row" "${key}_p50" "$(val "$name" p50_us)"
	cpu_per "$row" "$7" "$(spent "$pid" "$t0" "$t1" "$name")" \
	    "$(val "$name" connections)" 1000000
	errors_of "$row" "$key" "$name"
	if [ "$row" = pinproxy-intercept-resume ]; then
		resume_since "$row" "$key" "$mark"
		record "$row" "${key}_client_resumed" "$(val "$name" resumed)"
		record "$row" "${key}_client_handshakes" \
		    "$(val "$name" connections)"
	fi
}

# sweep_point ROW PORT MODE TEST N PID: one run of the sweep: TEST (ka or
# nc) with N in flight, pinned (MODE on: the row's placement, the direct
# row's origin on its own CPU) or unpinned (off). With the proxy's PID,
# a keep-alive run also records the proxy's CPU per request: where the
# rate is bound by the CPU of the client and the origin, it still tells
# what each proxy costs.
sweep_point()
{
	local row=$1 mode=$3 test=$4 n=$5 pid=$6 name t0 t1
	RUN=$WORK/r$ROUND-$row-sweep
	name=sweep-$mode-$test-$n
	if [ "$mode" = off ]; then
		move_origin "$ALL_CPUS"
	elif [ "$row" = direct ]; then
		move_origin "$DIRECT_CPU"
	else
		move_origin "$ORIGIN_CPU"
	fi
	client_args "$row" "$2"
	if [ "$test" = ka ]; then
		[ -n "$pid" ] && t0=$(cpu_ticks "$pid")
		lg "$name" $((SWEEP_DURATION + 90)) keepalive -c "$n" \
		    -d "$SWEEP_DURATION"
		if [ -n "$pid" ]; then
			t1=$(cpu_ticks "$pid")
			cpu_per "$row" "swcpu_${mode}_ka_$n" $((t1 - t0)) \
			    "$(val "$name" requests)" 1000000
		fi
	else
		lg "$name" $((SWEEP_DURATION + 90)) newconn -c "$n" \
		    -d "$SWEEP_DURATION"
	fi
	record "$row" "sw_${mode}_${test}_$n" "$(val "$name" rate)"
	errors_of "$row" "sw_${mode}_${test}_$n" "$name"
	# New connections leave sockets closing behind them (and proxies
	# still tearing down): the next run starts once that has settled.
	[ "$test" = nc ] && sleep 1
	return 0
}

# sweep_round ROW...: this round's sweep, path by path (the direct rows
# are a path of their own). The rows of a path run side by side: their
# proxies all start and warm up, then at each placement, number in flight
# and test every row runs once, one after the other. On a shared virtual
# machine the speed drifts by a third within minutes; run this way, the
# drift falls on the rows of a path alike instead of between them. The
# order of the rows turns at every point, so that none always runs first
# (after another row's new connections). Only the rows of one path run at
# once (never two squids).
sweep_round()
{
	local path row port dir mode n test i k=0
	local -a prows pports ppids idx
	for path in direct plain forward intercept tunnel; do
		prows=() pports=() ppids=()
		for row in "$@"; do
			[ "$(path_of "$row")" = "$path" ] || continue
			port=$(free_port)
			dir=$WORK/r$ROUND-$row-sweep
			mkdir -p "$dir"
			RUN=$dir
			PEER_PID=""
			case $row in
			direct|direct-shared) ;;
			*)
				if ! start_peer "$row" "$port" "$dir"; then
					note "round $ROUND: $row: no sweep:" \
					    "$PEER_ERR"
					continue
				fi ;;
			esac
			client_args "$row" "$port"
			lg warmup 60 newconn -c 2 -d 0.5
			prows+=("$row") pports+=("$port") ppids+=("$PEER_PID")
		done
		[ ${#prows[@]} -gt 0 ] || continue
		say "round $ROUND: sweep of $path: ${prows[*]}"
		for mode in $PIN_MODES; do
			if [ "$mode" = off ]; then
				for i in "${!prows[@]}"; do
					[ -n "${ppids[$i]}" ] &&
					    pin_tree "${ppids[$i]}" "$ALL_CPUS"
				done
				LOADGEN=("$WORK/loadgen")
			fi
			for n in $INFLIGHT; do
				for test in ka nc; do
					idx=("${!prows[@]}")
					if [ $(( (k + ROUND) % 2 )) = 1 ]; then
						idx=($(printf '%s\n' "${idx[@]}" |
						    sort -rn))
					fi
					k=$((k + 1))
					for i in "${idx[@]}"; do
						sweep_point "${prows[$i]}" \
						    "${pports[$i]}" "$mode" \
						    "$test" "$n" "${ppids[$i]}"
					done
				done
			done
		done
		LOADGEN=("${LOADGEN_PINNED[@]}")
		move_origin "$ORIGIN_CPU"
		for i in "${!prows[@]}"; do
			stop "${ppids[$i]}"
		done
	done
}

# measure ROW: one round of every measurement for one row.
measure()
{
	local row=$1 port dir pid t0 t1 r0 r1 open i lgpid bytes
	port=$(free_port)
	dir=$WORK/r$ROUND-$row
	RUN=$dir
	mkdir -p "$dir"
	case $row in
	direct)
		pid=""
		move_origin "$DIRECT_CPU" ;;
	direct-shared)
		# The origin stays on ORIGIN_CPU, where proxied runs have it.
		pid="" ;;
	*)
		if ! start_peer "$row" "$port" "$dir"; then
			note "round $ROUND: $row skipped: $PEER_ERR"
			return
		fi
		pid=$PEER_PID ;;
	esac
	client_args "$row" "$port"
	say "round $ROUND: $row"

	# Warm-up: lazily built state (forged leaves, pools) exists before
	# the memory baseline is taken.
	lg warmup 60 newconn -c 2 -d 0.5
	if [ "$(val warmup connections)" = "" ] ||
	    [ "$(val warmup connections)" = 0 ]; then
		note "round $ROUND: $row skipped: no request got through:" \
		    "$(head -n 3 "$RUN/warmup.err" | tr '\n' ' ')"
		stop "$pid"
		move_origin "$ORIGIN_CPU"
		return
	fi
	errors_of "$row" warmup warmup

	if [ -n "$pid" ]; then
		sleep 0.5
		r0=$(rss_kib "$pid")
		timeout 400 "${LOADGEN[@]}" "$LG_MODE" idle "${LG[@]}" \
		    -k "$IDLE" -w 300 >"$RUN/idle.out" \
		    2>"$RUN/idle.err" &
		lgpid=$!
		PIDS="$PIDS $lgpid"
		for i in $(seq 1800); do
			grep -q 'ready=1' "$RUN/idle.out" 2>/dev/null && break
			kill -0 "$lgpid" 2>/dev/null || break
			sleep 0.1
		done
		sleep 1
		r1=$(rss_kib "$pid")
		open=$(grep 'ready=1' "$RUN/idle.out" | tr ' ' '\n' |
		    sed -n 's/^open=//p')
		stop "$lgpid"
		if [ -n "$open" ] && [ "$open" -gt 0 ]; then
			record "$row" idle_kib "$(awk -v a="$r0" \
			    -v b="$r1" -v n="$open" \
			    'BEGIN { printf "%.1f", (b - a) / n }')"
			[ "$open" -lt "$IDLE" ] && record "$row" idle_errors \
			    $((IDLE - open)) && say "$row idle: only $open" \
			    "of $IDLE connections open:" \
			    "$(head -n 3 "$RUN/idle.err" | tr '\n' ' ')"
		fi
		sleep 1
	fi

	t0=$(cpu_ticks "${pid:-$ORIGIN_PID}")
	lg keepalive $((DURATION + 90)) keepalive -c "$KA_CONNS" \
	    -d "$DURATION"
	t1=$(cpu_ticks "${pid:-$ORIGIN_PID}")
	record "$row" ka_rate "$(val keepalive rate)"
	record "$row" ka_p50 "$(val keepalive p50_us)"
	record "$row" ka_p99 "$(val keepalive p99_us)"
	cpu_per "$row" cpu_req_us "$(spent "$pid" "$t0" "$t1" keepalive)" \
	    "$(val keepalive requests)" 1000000
	errors_of "$row" ka keepalive

	newconn_run "$row" "$pid" nc newconn "$NC_CONNS" "$DURATION" \
	    cpu_conn_us
	# Latency of a new connection alone: nothing queues behind another
	# handshake, so what remains is the path itself (and any stall).
	newconn_run "$row" "$pid" nc1 newconn1 1 "$NC1_DURATION" cpu_conn1_us

	# Three downloads: one is at the mercy of a single scheduling hiccup.
	t0=$(cpu_ticks "${pid:-$ORIGIN_PID}")
	bytes=0
	for i in 1 2 3; do
		lg "download$i" 300 download
		if [ "$(val "download$i" bytes)" = $((BIG_MIB * 1048576)) ]
		then
			record "$row" dl_mibs "$(val "download$i" mib_s)"
			bytes=$((bytes + BIG_MIB * 1048576))
		else
			record "$row" dl_errors 1
			say "$row download: $(cat "$RUN/download$i.out" \
			    "$RUN/download$i.err" | head -n 3 | tr '\n' ' ')"
		fi
	done
	t1=$(cpu_ticks "${pid:-$ORIGIN_PID}")
	[ "$bytes" -gt 0 ] && cpu_per "$row" cpu_dl_ms \
	    "$(spent "$pid" "$t0" "$t1" download1 download2 download3)" \
	    "$bytes" $((1000 * BIG_MIB * 1048576))

	if [ -n "$pid" ]; then
		stop "$pid"
	else
		move_origin "$ORIGIN_CPU"
	fi
}

# ---------------------------------------------------------------------
# The report.

# median ROW KEY: the median over the rounds, empty if never measured.
median()
{
	awk -F '\t' -v row="$1" -v key="$2" '$2 == row && $3 == key {
	    print $4 }' "$WORK/results.tsv" | sort -g | awk '
	    { v[NR] = $1 }
	    END {
		if (NR == 0) exit
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	    }'
}

# sumof ROW KEY: the sum over the rounds (error and handshake counts).
sumof()
{
	awk -F '\t' -v row="$1" -v key="$2" '$2 == row && $3 == key {
	    s += $4 } END { if (s > 0) print s }' "$WORK/results.tsv"
}

# cell VALUE [DIRECT] [DIGITS]: a number, with its ratio to the direct run.
cell()
{
	awk -v v="$1" -v d="${2:-}" -v digits="${3:-0}" 'BEGIN {
		if (v == "") { printf "–"; exit }
		printf "%.*f", digits, v
		if (d != "" && d + 0 > 0)
			printf " (%.2f×)", v / d
	}'
}

# resume_note WHAT RUN CPUKEY: a note of the share of the resume row's
# upstream handshakes that were resumed during the run WHAT (summed over
# rounds), with the proxy's CPU per connection in that run.
resume_note()
{
	local r t cr ct
	r=$(sumof pinproxy-intercept-resume "${1}_resumed")
	t=$(sumof pinproxy-intercept-resume "${1}_handshakes")
	cr=$(sumof pinproxy-intercept-resume "${1}_client_resumed")
	ct=$(sumof pinproxy-intercept-resume "${1}_client_handshakes")
	[ -n "$t" ] || return 0
	awk -v r="${r:-0}" -v t="$t" -v run="$2" -v cr="${cr:-0}" \
	    -v ct="${ct:-0}" \
	    -v cpu="$(median pinproxy-intercept-resume "$3")" 'BEGIN {
		printf "- resume row: %.0f %% of upstream handshakes resumed" \
		    " in the %s (%d of %d)", 100 * r / t, run, r, t
		if (ct > 0)
			printf ", %.0f %% of the client'"'"'s with pinproxy" \
			    " (%d of %d)", 100 * cr / ct, cr, ct
		if (cpu != "")
			printf "; proxy CPU %.0f µs / conn in that run", cpu
		printf "\n"
	}'
}

# path_of ROW: the path a row takes, which names its sweep plot; the
# direct rows are drawn in every plot.
path_of()
{
	case $(kind "$1") in
	direct|direct-shared)			echo direct ;;
	pinproxy-plain|squid-plain)		echo plain ;;
	stunnel|pinproxy-forward)		echo forward ;;
	pinproxy-intercept*|squid-bump|sslsplit|mitmproxy)
						echo intercept ;;
	pinproxy-tunnel|tinyproxy)		echo tunnel ;;
	esac
}

# swept ROW [REGEX]: whether ROW has a result of the sweep (or one whose
# key matches REGEX).
swept()
{
	awk -F '\t' -v row="$1" -v re="${2:-^sw_.*_(ka|nc)_[0-9]+$}" '
	    $2 == row && $3 ~ re { found = 1 } END { exit !found }' \
	    "$WORK/results.tsv"
}

# sweep_cell ROW KEY: the median rate, with its ratio to the direct row's
# at the same point and the errors of its runs.
sweep_cell()
{
	local e d=""
	[ "$1" = direct ] || d=$(median direct "$2")
	cell "$(median "$1" "$2")" "$d"
	e=$(sumof "$1" "${2}_errors")
	[ -n "$e" ] && printf ' (errors: %s)' "$e"
}

# sweep_plot PATH: draw the sweep of the rows of PATH (and the direct rows
# as dashed references) with gnuplot into a PNG next to the report, one
# panel per rate and pinning mode; prints the PNG's name, nothing when
# there is no plot.
sweep_plot()
{
	local path=$1 png dat row n mode test v i m col modes plots
	local rows=() have=0
	command -v gnuplot >/dev/null 2>&1 || return 0
	for row in $ROWS; do
		swept "$row" || continue
		case $(path_of "$row") in
		"$path")	rows+=("$row"); have=1 ;;
		direct)		rows+=("$row") ;;
		esac
	done
	[ "$have" = 1 ] || return 0
	png=${OUT%.md}-sweep-$path.png
	dat=$WORK/sweep-$path.dat
	# One block per row: N, then for each mode the two rates.
	for row in "${rows[@]}"; do
		for n in $INFLIGHT; do
			printf '%s' "$n"
			for mode in $PIN_MODES; do
				for test in nc ka; do
					v=$(median "$row" "sw_${mode}_${test}_$n")
					printf ' %s' "${v:-NaN}"
				done
			done
			echo
		done
		printf '\n\n'
	done >"$dat"
	modes=$(echo $PIN_MODES | wc -w)
	{
		echo "set terminal pngcairo size $((560 * modes + 80)),860" \
		    "font ',10'"
		echo "set output '$png'"
		echo "set datafile missing 'NaN'"
		echo "set logscale x 2"
		echo "set xtics ($(echo $INFLIGHT | sed 's/ /, /g'))"
		echo "set xrange [$(echo $INFLIGHT | tr ' ' '\n' | sort -n |
		    head -n 1)/1.5:$(echo $INFLIGHT | tr ' ' '\n' | sort -n |
		    tail -n 1)*1.5]"
		echo "set yrange [0:*]"
		echo "set grid"
		echo "set key below"
		echo "set xlabel 'requests in flight (loadgen -c)'"
		echo "set multiplot layout 2,$modes title" \
		    "'$path path: rate by requests in flight, $(date -u \
		    '+%Y-%m-%d'), medians of $ROUNDS round(s) of" \
		    "${SWEEP_DURATION} s'"
		# Data columns: 1 is N; mode m (from 0) has nc in 2 + 2m and
		# ka in 3 + 2m. Blocks (index) are rows in order.
		for test in nc ka; do
			m=0
			for mode in $PIN_MODES; do
				col=$((2 + 2 * m))
				[ "$test" = ka ] && col=$((col + 1))
				if [ "$test" = nc ]; then
					echo "set ylabel 'new connections / s'"
				else
					echo "set ylabel 'keep-alive requests / s'"
				fi
				if [ "$mode" = on ]; then
					echo "set title 'CPUs pinned'"
				else
					echo "set title 'unpinned'"
				fi
				plots=""
				i=0
				for row in "${rows[@]}"; do
					plots="$plots${plots:+, }'$dat' index $i"
					plots="$plots using 1:$col with linespoints"
					plots="$plots lw 2 pt 7"
					[ "$(path_of "$row")" = direct ] &&
					    plots="$plots dt 2"
					plots="$plots title '$row'"
					i=$((i + 1))
				done
				echo "plot $plots"
				m=$((m + 1))
			done
		done
		echo "unset multiplot"
	} >"$WORK/sweep-$path.gp"
	if gnuplot "$WORK/sweep-$path.gp" >"$WORK/sweep-$path.log" 2>&1
	then
		echo "$png"
	else
		say "gnuplot failed for the $path plot:" \
		    "$(tail -n 3 "$WORK/sweep-$path.log" | tr '\n' ' ')"
	fi
}

# sweep_head COLUMN...: the head of a table of the sweep's points: these
# columns, then new connections and keep-alive at each number in flight.
sweep_head()
{
	local c n
	printf '|'
	for c in "$@"; do
		printf ' %s |' "$c"
	done
	for n in $INFLIGHT; do
		printf ' new conn/s @%s |' "$n"
	done
	for n in $INFLIGHT; do
		printf ' keep-alive req/s @%s |' "$n"
	done
	echo
	printf '|'
	for c in "$@"; do
		printf -- '---|'
	done
	for n in $INFLIGHT $INFLIGHT; do
		printf -- '---:|'
	done
	echo
}

# sweep_cells MODE COMMAND ARG...: the cells of a line of such a table,
# each what COMMAND ARG... KEY prints for the key of its point, and the
# line's end.
sweep_cells()
{
	local mode=$1 test n
	shift
	for test in nc ka; do
		for n in $INFLIGHT; do
			printf ' %s |' "$("$@" "sw_${mode}_${test}_$n")"
		done
	done
	echo
}

# placement MODE: how a sweep mode (on, off) is named in the tables.
placement()
{
	if [ "$1" = on ]; then echo pinned; else echo unpinned; fi
}

# pair_cell OURS PEER KEY: pinproxy's rate over the peer's at one point,
# round by round (the two ran side by side there): the verdict, the median
# ratio and the rounds' range, the noise of the comparison. A point is a
# lead only when every round has pinproxy ahead by LEAD_MARGIN or more, a
# trail when every round has the peer ahead by as much; otherwise a tie.
# A round where either side had errors at that point, or has no rate,
# does not count; a cell says how many counted when not all did.
pair_cell()
{
	awk -F '\t' -v a="$1" -v b="$2" -v k="$3" -v rounds="$ROUNDS" \
	    -v margin="$LEAD_MARGIN" '
	    $3 == k && $2 == a { x[$1] = $4 }
	    $3 == k && $2 == b { y[$1] = $4 }
	    $3 == k "_errors" && ($2 == a || $2 == b) { bad[$1] = 1 }
	    END {
		n = 0
		for (r in x)
			if ((r in y) && y[r] > 0 && !(r in bad))
				q[++n] = x[r] / y[r]
		if (n == 0) { printf "–"; exit }
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && q[j - 1] > q[j]; j--) {
				t = q[j]; q[j] = q[j - 1]; q[j - 1] = t
			}
		m = n % 2 ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
		v = "tie"
		if (q[1] >= 1 + margin)
			v = "lead"
		else if (q[n] <= 1 / (1 + margin))
			v = "trail"
		printf "%s %.2f×", v, m
		if (n > 1)
			printf " (%.2f-%.2f", q[1], q[n]
		else
			printf " (one round"
		if (n < rounds)
			printf ", %d of %d rounds", n, rounds
		printf ")"
	    }' "$WORK/results.tsv"
}

# lead_report: pinproxy against each peer of its path at every point of
# the sweep, and a count of the points each way. Only pinproxy's main row
# of a path is compared here (the variants, such as busy_poll's, and
# --baseline twins are in the tables).
lead_report()
{
	local path us row mode table lines
	table=$(for path in plain forward intercept tunnel; do
		us=pinproxy-$path
		swept "$us" || continue
		for row in $ROWS; do
			[ "$(path_of "$row")" = "$path" ] || continue
			case $row in pinproxy-*) continue ;; esac
			swept "$row" || continue
			for mode in $PIN_MODES; do
				printf '| %s | %s | %s |' "$path" \
				    "${row%%-*}" "$(placement "$mode")"
				sweep_cells "$mode" pair_cell "$us" "$row"
			done
		done
	done)
	[ -n "$table" ] || return 0
	echo
	echo "pinproxy's rate over each peer's at each point of the sweep" \
	    "(pinproxy's main row of the path), round by round: the median" \
	    "ratio and, in parentheses, the rounds' range, the noise of" \
	    "the comparison. \"lead\" and \"trail\" mean every round" \
	    "had one of the two ahead by $(awk -v m="$LEAD_MARGIN" \
	    'BEGIN { printf "%g", 100 * m }') % or more; anything else is a" \
	    "\"tie\". Rounds with errors on either side do not count."
	echo
	sweep_head path against CPUs
	echo "$table"
	lines=$(echo "$table" | tr '|' '\n')
	echo
	echo "Points: $(echo "$lines" | grep -c '^ lead') lead," \
	    "$(echo "$lines" | grep -c '^ tie') tie," \
	    "$(echo "$lines" | grep -c '^ trail') trail."
}

# sweep_report: the sweep as a table, one line per row and pinning mode,
# and the plots.
sweep_report()
{
	local row desc peer path mode n png
	echo
	echo "## Concurrency sweep"
	echo
	echo "Requests in flight: $(echo $INFLIGHT | sed 's/ /, /g')" \
	    "(\`loadgen -c N\`), ${SWEEP_DURATION} s each, medians of" \
	    "$ROUNDS round(s). Keep-alive: N connections, one request in" \
	    "flight on each; new connections: N loops at once, each a new" \
	    "connection and one request, as in \"new conn/s\". Pinned: the" \
	    "placement above (loadgen ${LG_CPU:-any}, origin" \
	    "${ORIGIN_CPU:-any}, proxy ${PROXY_CPU:-any}); unpinned: every" \
	    "process may run on any CPU. The rows of a path run side by" \
	    "side, point by point, so that the machine's drift falls on" \
	    "them alike."
	echo
	sweep_head peer path CPUs
	for row in $ROWS; do
		swept "$row" || continue
		desc=$(describe "$row")
		peer=${desc%%|*}
		path=${desc#*|}
		for mode in $PIN_MODES; do
			printf '| %s | %s | %s |' "$peer" "$path" \
			    "$(placement "$mode")"
			sweep_cells "$mode" sweep_cell "$row"
		done
	done
	echo
	echo "In parentheses: the ratio to the direct row at the same point" \
	    "and placement (the client and the origin alone)."
	lead_report
	echo
	echo "The proxy's CPU time per keep-alive request in the same runs" \
	    "(µs, its process and threads, medians): at the points where" \
	    "the rate is bound by the CPU of the load client and the" \
	    "origin (pinned, many in flight), this is what tells the" \
	    "proxies' own cost apart."
	echo
	printf '| peer | path | CPUs |'
	for n in $INFLIGHT; do
		printf ' µs/req @%s |' "$n"
	done
	echo
	printf '|---|---|---|'
	for n in $INFLIGHT; do
		printf -- '---:|'
	done
	echo
	for row in $ROWS; do
		swept "$row" '^swcpu_' || continue
		desc=$(describe "$row")
		for mode in $PIN_MODES; do
			printf '| %s | %s | %s |' "${desc%%|*}" "${desc#*|}" \
			    "$(placement "$mode")"
			for n in $INFLIGHT; do
				printf ' %s |' "$(cell "$(median "$row" \
				    "swcpu_${mode}_ka_$n")")"
			done
			echo
		done
	done
	for path in plain forward intercept tunnel; do
		png=$(sweep_plot "$path")
		[ -n "$png" ] && printf '\n![%s path](%s)\n' "$path" \
		    "$(basename "$png")"
	done
	return 0
}

report()
{
	local row desc peer path d_ka d_p50 d_p99 d_nc d_nc1 d_dl errs e k
	local resumed
	d_ka=$(median direct ka_rate)
	d_p50=$(median direct ka_p50)
	d_p99=$(median direct ka_p99)
	d_nc=$(median direct nc_rate)
	d_nc1=$(median direct nc1_p50)
	d_dl=$(median direct dl_mibs)
	echo "# pinproxy benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $NPROC CPU ($(grep -m1 'model name' /proc/cpuinfo |
	    sed 's/.*: //')), $(uname -r). CPUs: loadgen ${LG_CPU:-any}," \
	    "origin ${ORIGIN_CPU:-any} (${DIRECT_CPU:-any} in the direct" \
	    "run, ${ORIGIN_CPU:-any} in direct-shared)," \
	    "proxy ${PROXY_CPU:-any}."
	echo "Rounds: $ROUNDS (medians). Keep-alive: $KA_CONNS connections" \
	    "× ${DURATION} s, ~100-byte responses. New connections:" \
	    "$NC_CONNS at once × ${DURATION} s, one request each; then" \
	    "1 at a time × ${NC1_DURATION} s." \
	    "Download: three ${BIG_MIB} MiB responses a round." \
	    "Idle: $IDLE connections, each after one request."
	echo
	echo "| peer | path | keep-alive req/s | p50 µs | p99 µs |" \
	    "new conn/s | new conn p50 µs (1 in flight) |" \
	    "${BIG_MIB} MiB MiB/s | KiB / idle conn |" \
	    "CPU µs / req | CPU µs / conn | CPU ms / ${BIG_MIB} MiB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	for row in $ROWS; do
		desc=$(describe "$row")
		peer=${desc%%|*}
		path=${desc#*|}
		errs=""
		for k in warmup ka nc nc1 idle dl; do
			e=$(sumof "$row" "${k}_errors")
			[ -n "$e" ] && errs="$errs $k:$e"
		done
		[ -n "$errs" ] && peer="$peer (errors:$errs)"
		if [ "$row" = direct ]; then
			printf '| %s | %s | %s | %s | %s | %s | %s | %s |' \
			    "$peer" "$path" "$(cell "$d_ka")" \
			    "$(cell "$d_p50")" "$(cell "$d_p99")" \
			    "$(cell "$d_nc")" "$(cell "$d_nc1")" \
			    "$(cell "$d_dl" "" 1)"
			# The endpoints' own CPU (client plus origin).
			printf ' – | %s | %s | %s |\n' \
			    "$(cell "$(median "$row" cpu_req_us)" "" 1)" \
			    "$(cell "$(median "$row" cpu_conn_us)" "" 0)" \
			    "$(cell "$(median "$row" cpu_dl_ms)" "" 0)"
			continue
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
		    "$peer" "$path" \
		    "$(cell "$(median "$row" ka_rate)" "$d_ka")" \
		    "$(cell "$(median "$row" ka_p50)" "$d_p50")" \
		    "$(cell "$(median "$row" ka_p99)" "$d_p99")" \
		    "$(cell "$(median "$row" nc_rate)" "$d_nc")" \
		    "$(cell "$(median "$row" nc1_p50)" "$d_nc1")" \
		    "$(cell "$(median "$row" dl_mibs)" "$d_dl" 1)" \
		    "$(cell "$(median "$row" idle_kib)" "" 1)"
		printf ' %s | %s | %s |\n' \
		    "$(cell "$(median "$row" cpu_req_us)" "" 1)" \
		    "$(cell "$(median "$row" cpu_conn_us)" "" 0)" \
		    "$(cell "$(median "$row" cpu_dl_ms)" "" 0)"
	done
	echo
	echo "Ratios in parentheses are to the direct run (for rates, 1.00×"
	echo "would mean no cost; for latencies, higher is worse). See"
	echo "bench/README.md for what each column means. The CPU columns of"
	echo "the direct rows are the load client's plus the origin's: what"
	echo "the two TLS endpoints cost by themselves."
	echo
	echo "Versions:"
	echo
	echo "- pinproxy: $("$PINPROXY" -V 2>&1 | head -n 1)"
	[ -n "$BASELINE" ] && echo "- pinproxy (--baseline $BASELINE):" \
	    "$("$BASELINE" -V 2>&1 | head -n 1)"
	echo "- nginx: $(nginx -v 2>&1 | sed 's/.*: //')"
	command -v stunnel4 >/dev/null &&
	    echo "- stunnel: $(stunnel4 -version 2>&1 | grep -m1 "^stunnel ")"
	command -v squid >/dev/null &&
	    echo "- squid: $(squid -v | head -n 1)"
	command -v sslsplit >/dev/null &&
	    echo "- sslsplit: $(sslsplit -V 2>&1 | head -n 1)"
	command -v mitmdump >/dev/null &&
	    echo "- mitmproxy: $(mitmdump --version 2>&1 | head -n 1)"
	command -v tinyproxy >/dev/null &&
	    echo "- tinyproxy: $(tinyproxy -v 2>&1 | tail -n 1)"
	resumed=$(resume_note nc "new-connection run" cpu_conn_us
	    resume_note nc1 "run with one connection in flight" cpu_conn1_us)
	if [ -n "$NOTES" ] || [ -n "$resumed" ]; then
		echo
		echo "Notes:"
		echo
		[ -n "$resumed" ] && echo "$resumed"
		printf '%s' "$NOTES"
	fi
}

# ---------------------------------------------------------------------

main()
{
	local offset i row rows order
	WORK=$(mktemp -d /tmp/pinproxy-bench.XXXXXX)
	[ "$INSTALL" = 1 ] && install_packages
	build
	make_pki >"$WORK/pki.log" 2>&1 || { cat "$WORK/pki.log" >&2;
	    die "cannot make the PKI"; }
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	HZ=$(getconf CLK_TCK)
	if [ -n "$LG_CPU" ]; then
		LOADGEN=(taskset -c "$LG_CPU" "$WORK/loadgen")
	else
		LOADGEN=("$WORK/loadgen")
		if [ -n "$INFLIGHT" ] && [ "$PIN_MODES" != off ]; then
			note "one CPU: nothing is pinned, the sweep runs unpinned"
			PIN_MODES=off
		fi
	fi
	LOADGEN_PINNED=("${LOADGEN[@]}")
	: >"$WORK/results.tsv"
	start_origin
	say "origin: nginx on 127.0.0.1:$ORIGIN_PORT; $ROUNDS round(s)"
	# Each round visits every row, starting one row further each time.
	read -r -a rows <<<"$(echo $ROWS)"
	for ROUND in $(seq "$ROUNDS"); do
		offset=$(( (ROUND - 1) % ${#rows[@]} ))
		order=()
		for i in $(seq 0 $((${#rows[@]} - 1))); do
			row=${rows[$(( (i + offset) % ${#rows[@]} ))]}
			measure "$row"
			order+=("$row")
		done
		[ -n "$INFLIGHT" ] && sweep_round "${order[@]}"
	done
	{
		report
		[ -n "$INFLIGHT" ] && sweep_report
	} | tee "$OUT"
	say "report written to $OUT"
}

main
