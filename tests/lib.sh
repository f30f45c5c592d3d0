# Shared by the end-to-end tests: TAP output, a scratch directory, free
# ports, and background processes that are always stopped by PID.
# Source it from a test script; call done_testing at the end.

set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$(pwd)}"
# Either may be overridden (make check-valgrind runs them under a wrapper).
: "${PINPROXY:=$top_builddir/pinproxy}"
: "${PINPROXY_PIN:=$top_builddir/pinproxy-pin}"

T_N=0
T_FAILED=0
T_PIDS=""
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-test.XXXXXX")

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
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "# scratch directory kept: $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap t_cleanup EXIT

ok()
{
	T_N=$((T_N + 1))
	echo "ok $T_N - $*"
}

not_ok()
{
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	echo "not ok $T_N - $*"
}

skip()
{
	T_N=$((T_N + 1))
	echo "ok $T_N - # SKIP $*"
}

diag()
{
	echo "# $*" | sed '2,$s/^/# /'
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

done_testing()
{
	echo "1..$T_N"
	exit 0
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: wait until something accepts on 127.0.0.1:PORT.
wait_port()
{
	local i n=$(( ${2:-10} * 20 ))
	for i in $(seq "$n"); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
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
