#!/bin/bash
# What pinproxy refuses to trust, end to end: an upstream certificate that
# names the host only in its subject CN (plaintext, CONNECT and
# pinproxy-pin), a report_file that is a symbolic link, a FIFO or a
# directory (at start and on SIGHUP), and an interception CA whose key
# others may read or whose certificate is weak (pinproxy -t and start).
# Everything runs on 127.0.0.1 and in the scratch directory.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# The PKI: the default set, a leaf for the names the origin M serves, and
# a leaf whose only name is its subject CN nosan.test.
make_pki multi "$(dns_sans api.test)" inter
sh "$MKPKI" nosan "$PKI" nosan nosan.test >>"$TMP/mkpki.log" 2>&1 ||
    bail_out "tests/mkpki.sh nosan failed: $(cat "$TMP/mkpki.log")"
PIN_INTER=$(sh "$MKPKI" pin "$PKI/inter.pem")
PIN_RSA=$(sh "$MKPKI" pin "$PKI/rsa.pem")

OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"
ON=$(free_port)
start_origin O_N "$ON" "$TMP/on.log" --cert "$PKI/nosan-chain.pem" \
    --key "$PKI/nosan.key"
CLOSED=$(free_port)
# No name is resolved by DNS here; a closed port makes sure of it.
echo "nameserver 127.0.0.1:$CLOSED" >"$TMP/resolv.conf"

# wait_count_above FILE N PATTERN...: wait (WAIT_TICKS times 50 ms) until
# more than N lines of FILE match every pattern.
wait_count_above()
{
	local file=$1 n=$2 i
	shift 2
	for i in $(seq "$WAIT_TICKS"); do
		[ "$(log_count "$file" "$@")" -gt "$n" ] && return 0
		sleep 0.05
	done
	return 1
}

# write_conf FILE PORT [LINE...]: a configuration listening on PORT with
# its own CA in the scratch directory, pin sets for api.test (origin M)
# and nosan.test (origin N), and LINE... added to [proxy].
write_conf()
{
	local file=$1 port=$2 name
	name=$(basename "$file" .conf)
	shift 2
	{
		cat <<EOF
[proxy]
listen = 127.0.0.1:$port
ca_cert = $TMP/ca-$name.pem
ca_key = $TMP/ca-$name.key
trust = $PKI/root.pem
shutdown_timeout = 2s
EOF
		printf '%s\n' "$@"
		cat <<EOF

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-nosan]
hosts = nosan.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$ON
EOF
	} >"$file"
}

# 1. A certificate whose only name is the subject CN never verifies.

PA=$(free_port)
write_conf "$TMP/a.conf" "$PA"
start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log" ||
    bail_out "pinproxy does not start with $TMP/a.conf"

code=$(fetch api "$PA" http://api.test/hello)
check_status "plaintext, a leaf with subjectAltName: 200" 200 "$code" api

code=$(fetch nosan "$PA" http://nosan.test/hello)
check_status "plaintext, a leaf named only by its CN: 502" 502 "$code" nosan
check_eq "plaintext, a leaf named only by its CN: details=verify-failed" \
    'pinproxy; error=tls_certificate_error; details="verify-failed"' \
    "$(header "$TMP/nosan.head" Proxy-Status)"
check_log "plaintext, a leaf named only by its CN: event=verify_failed" \
    "$TMP/a.log" "$(kv event verify_failed)" "$(kv host nosan.test)"

n=$(log_count "$TMP/a.log" "$(kv event verify_failed)" "$(kv host nosan.test)")
pcurl "$PA" --cacert "$TMP/ca-a.pem" -o /dev/null \
    https://nosan.test/hello 2>"$TMP/nosan-connect.err"
rc=$?
check_eq "CONNECT, a leaf named only by its CN: curl's handshake fails" \
    35 "$rc"
check "CONNECT, a leaf named only by its CN: event=verify_failed" \
    wait_count_above "$TMP/a.log" "$n" "$(kv event verify_failed)" \
    "$(kv host nosan.test)"
body=$(pcurl "$PA" --cacert "$TMP/ca-a.pem" https://api.test/hello 2>&1)
check_eq "CONNECT, a leaf with subjectAltName: the origin's body" \
    "$HELLO" "$body"
origin_settle "$TMP/on.log"
check_eq "a leaf named only by its CN: the origin received no request" 0 \
    "$(origin_count "$TMP/on.log" request)"

run pin_nosan "$PINPROXY_PIN" -s nosan.test --connect-to "127.0.0.1:$ON" \
    -a "$PKI/root.pem"
check_rc "pinproxy-pin -s, a leaf named only by its CN: status 1" 1 pin_nosan
check_grep "pinproxy-pin -s, a leaf named only by its CN: verify: FAILED" \
    "^verify: FAILED" "$TMP/pin_nosan.out"

stop_pinproxy "$PP_A" "$TMP/a.log"

# 2. report_file must be a regular file: never a symbolic link (followed
# to wherever it points), a FIFO (an open that blocks) or a directory.

# refused_start NAME DESCRIPTION PATTERN: one configuration NAME.conf with
# its report_file; pinproxy must exit 1 within 10 s, its log matching
# PATTERN (and naming the report file).
refused_start()
{
	local name=$1 desc=$2 pattern=$3 pid
	spawn pid "$PINPROXY" -c "$TMP/$name.conf" 2>"$TMP/$name.log"
	wait_exit "$pid" 10
	check_eq "$desc: pinproxy exits 1" 1 "$EXIT_RC"
	check_log "$desc: the error says why" "$TMP/$name.log" \
	    "$(kv event start_failed)" "$pattern"
}

echo "not a report" >"$TMP/target"
ln -s "$TMP/target" "$TMP/link.jsonl"
PS=$(free_port)
write_conf "$TMP/symlink.conf" "$PS" "report_file = $TMP/link.jsonl"
refused_start symlink "a symlinked report_file" \
    "$(q "report_file $TMP/link.jsonl is a symbolic link")"
check_eq "a symlinked report_file: its target is untouched" \
    "not a report" "$(cat "$TMP/target")"

mkfifo "$TMP/fifo.jsonl"
write_conf "$TMP/fifo.conf" "$PS" "report_file = $TMP/fifo.jsonl"
refused_start fifo "a FIFO as report_file" \
    "$(q "report_file $TMP/fifo.jsonl is a FIFO")"

mkdir "$TMP/dir.jsonl"
write_conf "$TMP/dir.conf" "$PS" "report_file = $TMP/dir.jsonl"
refused_start dir "a directory as report_file" \
    "$(q "report_file $TMP/dir.jsonl is a directory")"

# On SIGHUP the same file is opened again (rotation): a symbolic link put
# in its place is refused and the old file stays in use.
PR=$(free_port)
write_conf "$TMP/rot.conf" "$PR" "report_file = $TMP/rot.jsonl"
start_pinproxy PP_R "$PR" "$TMP/rot.conf" "$TMP/rot.log" ||
    bail_out "pinproxy does not start with $TMP/rot.conf"
mv "$TMP/rot.jsonl" "$TMP/rot.jsonl.1"
ln -s "$TMP/target" "$TMP/rot.jsonl"
if reload "$PP_R" "$TMP/rot.log"; then
	not_ok "SIGHUP, report_file now a symbolic link: reload_failed"
else
	ok "SIGHUP, report_file now a symbolic link: reload_failed"
fi
check_log "SIGHUP, report_file now a symbolic link: the error says why" \
    "$TMP/rot.log" "$(kv event reload_failed)" \
    "$(q "report_file $TMP/rot.jsonl is a symbolic link")"
check_eq "SIGHUP, report_file now a symbolic link: its target is untouched" \
    "not a report" "$(cat "$TMP/target")"
code=$(fetch rot "$PR" http://api.test/hello)
check_status "SIGHUP, report_file now a symbolic link: still serving" 200 \
    "$code" rot
stop_pinproxy "$PP_R" "$TMP/rot.log"

done_testing
