#!/bin/sh
# A bounded fuzzing run for make fuzz-smoke: each target first runs every
# saved input of regressions/TARGET once, then fuzzes for SECONDS from a
# scratch copy of corpus/TARGET. Any crash, leak, timeout or broken
# invariant fails the run; the input that caused it is left in BINDIR.
#
# usage: smoke.sh FUZZDIR BINDIR SECONDS TARGET...

set -u

if [ $# -lt 4 ]; then
	echo "usage: $0 FUZZDIR BINDIR SECONDS TARGET..." >&2
	exit 2
fi
fuzzdir=$1
bindir=$2
seconds=$3
shift 3

failed=0
for t in "$@"; do
	prog="$bindir/fuzz_$t"
	log="$bindir/fuzz_$t.log"
	: >"$log"

	regs=$(find "$fuzzdir/regressions/$t" -type f 2>/dev/null | sort)
	nregs=0
	if [ -n "$regs" ]; then
		nregs=$(echo "$regs" | wc -l)
		# shellcheck disable=SC2086 # one argument per saved input
		if ! "$prog" -runs=1 $regs </dev/null >>"$log" 2>&1; then
			echo "FAIL fuzz_$t: a saved input fails again"
			tail -n 40 "$log"
			failed=1
			continue
		fi
	fi

	work=$(mktemp -d "${TMPDIR:-/tmp}/pinproxy-fuzz.XXXXXX")
	cp "$fuzzdir/corpus/$t"/* "$work"/
	nseeds=$(find "$work" -type f | wc -l)
	# Inputs up to 20000 bytes: past the limits of a request head and
	# a ClientHello (16 KiB), which the default (4096) never reaches.
	if "$prog" -max_total_time="$seconds" -timeout=10 -max_len=20000 \
	    -print_final_stats=1 -artifact_prefix="$bindir/fuzz_$t-" \
	    "$work" </dev/null >>"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
		ncorpus=$(find "$work" -type f | wc -l)
		echo "ok fuzz_$t: $nregs regressions, $runs runs in" \
		    "${seconds}s ($rate/s), $cov, corpus $nseeds -> $ncorpus"
	else
		echo "FAIL fuzz_$t: see $log; the input is $bindir/fuzz_$t-*"
		grep -A 40 '^==[0-9]*==\|^INFO: Running\|^SUMMARY\|assert' \
		    "$log" | tail -n 60
		failed=1
	fi
	rm -rf "$work"
done
exit $failed
