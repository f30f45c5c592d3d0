# Shared by bench/resources.sh and bench/soak.sh: a pinproxy binary (built
# from this tree without sanitizers, or given), a throw-away PKI, the test
# origin and pinproxy on 127.0.0.1, and background processes that are always
# stopped by PID when the script exits. Source it; set PROG first.

set -u

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
    no_proxy NO_PROXY

SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$SRC/bench
MKPKI=$SRC/tests/mkpki.sh
ORIGIN=$SRC/tests/origin.py
CLIENTS=$BENCH/lib/clients.py
# The descriptors the scripts, the origins and pinproxy may open.
NOFILE=8192

PIDS=""
WORK=""
BUILD_TMP=""
KEEP=0

say()
{
	echo "# $*" >&2
}

die()
{
	echo "$PROG: $*" >&2
	exit 1
}

# Stop every process started here, by PID, then remove the scratch files.
cleanup()
{
	local p
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null
	done
	[ -n "$BUILD_TMP" ] && rm -rf "$BUILD_TMP"
	if [ -n "$WORK" ] && [ "$KEEP" = 0 ]; then
		rm -rf "$WORK"
	elif [ -n "$WORK" ]; then
		say "scratch directory kept: $WORK"
	fi
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

# stop PID: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
stop()
{
	local i
	kill "$1" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_ready FILE: wait up to 10 s for a server to print "ready" in FILE.
wait_ready()
{
	local i
	for i in $(seq 200); do
		grep -q '^ready' "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# raise_nofile: the descriptor limit of this shell and its children.
raise_nofile()
{
	ulimit -n "$NOFILE" 2>/dev/null ||
	    die "cannot raise the descriptor limit to $NOFILE" \
	    "(hard limit: $(ulimit -Hn))"
}

# find_pinproxy BUILDDIR [CONFIGURE-ARG...]: set PINPROXY. With an empty
# BUILDDIR, configure (with the arguments given: by default -O2 and no
# sanitizers) and build pinproxy from this tree in a temporary directory;
# otherwise use BUILDDIR/pinproxy as it is.
find_pinproxy()
{
	local dir=$1
	shift
	if [ -n "$dir" ]; then
		set -- "$dir"
		PINPROXY=$(cd "$1" 2>/dev/null && pwd)/pinproxy
		[ -x "$PINPROXY" ] || die "no pinproxy binary in $1"
		if [ -z "${SANITIZERS_WANTED:-}" ] &&
		    ldd "$PINPROXY" 2>/dev/null | grep -q 'libasan'; then
			say "warning: $PINPROXY is built with sanitizers;" \
			    "its memory figures are not representative"
		fi
		return
	fi
	BUILD_TMP=$(mktemp -d \
	    "${TMPDIR:-/tmp}/pinproxy-${PROG%.sh}-build.XXXXXX")
	say "building pinproxy in $BUILD_TMP"
	if ! (cd "$BUILD_TMP" && "$SRC/configure" -q "$@" &&
	    make -j2 pinproxy) >"$BUILD_TMP/build.log" 2>&1; then
		tail -n 20 "$BUILD_TMP/build.log" >&2
		die "building pinproxy failed"
	fi
	PINPROXY=$BUILD_TMP/pinproxy
}

# make_pki DIR: tests/mkpki.sh's PKI plus "bench", a leaf for api.test,
# bad.test, tunnel.test and 127.0.0.1; sets PIN_INTER, PIN_ROOT and
# PIN_FOREIGN (a pin of an unrelated root).
make_pki()
{
	local sans="DNS:api.test,DNS:bad.test,DNS:tunnel.test,IP:127.0.0.1"

	if ! { sh "$MKPKI" "$1" && sh "$MKPKI" leaf "$1" bench "$sans"; } \
	    >"$WORK/mkpki.log" 2>&1; then
		cat "$WORK/mkpki.log" >&2
		die "tests/mkpki.sh failed"
	fi
	PIN_INTER=$(sh "$MKPKI" pin "$1/inter.pem")
	PIN_ROOT=$(sh "$MKPKI" pin "$1/root.pem")
	PIN_FOREIGN=$(sh "$MKPKI" pin "$1/foreign-root.pem")
}

# start_origin VAR PORT NAME ARGS...: tests/origin.py on PORT (no request
# log), its output in $WORK/NAME.out; waits until it listens.
start_origin()
{
	local var=$1 port=$2 name=$3
	shift 3
	spawn "$var" python3 "$ORIGIN" --port "$port" "$@" \
	    >"$WORK/$name.out" 2>&1
	wait_ready "$WORK/$name.out" ||
	    die "origin $name is not ready: $(tail -n 5 "$WORK/$name.out")"
}

# start_pinproxy VAR PORT CONF LOG: the daemon with CONF, stderr in LOG;
# waits until it listens on PORT.
start_pinproxy()
{
	local var=$1 port=$2 conf=$3 log=$4 i
	# No name is ever resolved; a closed local port keeps it that way.
	echo "nameserver 127.0.0.1:$(free_port)" >"$WORK/resolv.conf"
	spawn "$var" env PINPROXY_RESOLV_CONF="$WORK/resolv.conf" \
	    "$PINPROXY" -c "$conf" 2>"$log"
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "${!var}" 2>/dev/null || break
		sleep 0.05
	done
	die "pinproxy is not listening on $port: $(tail -n 5 "$log")"
}
