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
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"
ON=$(free_port)
start_origin O_N "$ON" "$TMP/on.log" --cert "$PKI/nosan-chain.pem" \
    --key "$PKI/nosan.key"
CLOSED=$(free_port)
# No name is resolved by DNS here; a closed port makes sure of it.
echo "nameserver 127.0.0.1:$CLOSED" >"$TMP/resolv.conf"

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
    wait_count "$TMP/a.log" $((n + 1)) "$(kv event verify_failed)" \
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

# refused_start NAME DESCRIPTION TEXT: one configuration NAME.conf with
# its report_file; pinproxy must exit 1 within 10 s, saying TEXT (which
# names the report file) after the configuration's name and the line of
# report_file, as -t does.
refused_start()
{
	local name=$1 desc=$2 text=$3 pid line
	line=$(grep -n '^report_file' "$TMP/$name.conf" | cut -d: -f1)
	spawn pid "$PINPROXY" -c "$TMP/$name.conf" 2>"$TMP/$name.log"
	wait_exit "$pid" 10
	check_eq "$desc: pinproxy exits 1" 1 "$EXIT_RC"
	check "$desc: the error says why, at report_file's line" \
	    grep -qF "$TMP/$name.conf:$line: $text" "$TMP/$name.log"
	run "t_$name" "$PINPROXY" -t -c "$TMP/$name.conf"
	check_rc "$desc: -t says so too" 1 "t_$name"
}

echo "not a report" >"$TMP/target"
ln -s "$TMP/target" "$TMP/link.jsonl"
PS=$(free_port)
write_conf "$TMP/symlink.conf" "$PS" "report_file = $TMP/link.jsonl"
refused_start symlink "a symlinked report_file" \
    "report_file $TMP/link.jsonl is a symbolic link"
check_eq "a symlinked report_file: its target is untouched" \
    "not a report" "$(cat "$TMP/target")"

mkfifo "$TMP/fifo.jsonl"
write_conf "$TMP/fifo.conf" "$PS" "report_file = $TMP/fifo.jsonl"
refused_start fifo "a FIFO as report_file" \
    "report_file $TMP/fifo.jsonl is a FIFO"

mkdir "$TMP/dir.jsonl"
write_conf "$TMP/dir.conf" "$PS" "report_file = $TMP/dir.jsonl"
refused_start dir "a directory as report_file" \
    "report_file $TMP/dir.jsonl is a directory"

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

# 3. The interception CA: a key only pinproxy's user can read, regular
# files, no weak key or signature; a CA valid for 30 years is a warning.

for kind in rsa1024 sha1 30y; do
	sh "$MKPKI" weakca "$PKI" "weak-$kind" "$kind" \
	    >>"$TMP/mkpki.log" 2>&1 ||
	    bail_out "tests/mkpki.sh weakca failed: $(cat "$TMP/mkpki.log")"
done

# use_ca NAME PKINAME: the CA files of NAME.conf become copies of the PKI's
# PKINAME.pem and PKINAME.key (mode 0600).
use_ca()
{
	rm -f "$TMP/ca-$1.pem" "$TMP/ca-$1.key"
	cp "$PKI/$2.pem" "$TMP/ca-$1.pem"
	cp "$PKI/$2.key" "$TMP/ca-$1.key"
	chmod 600 "$TMP/ca-$1.key"
}

# check_t DESCRIPTION NAME RC PATTERN: one case for the status of
# "pinproxy -t -c NAME.conf", one for a line of its output matching PATTERN.
check_t()
{
	run "t-$2" "$PINPROXY" -t -c "$TMP/$2.conf"
	check_rc "$1: pinproxy -t exits $3" "$3" "t-$2"
	cat "$TMP/t-$2.out" >>"$TMP/t-$2.err"
	check_grep "$1: pinproxy -t says why" "$4" "$TMP/t-$2.err"
}

PC=$(free_port)
write_conf "$TMP/cak.conf" "$PC"
use_ca cak root
chmod 644 "$TMP/ca-cak.key"
check_t "a ca_key of mode 0644" cak 1 \
    "$(q "ca_key $TMP/ca-cak.key has mode 0644: group and others")"
spawn pid "$PINPROXY" -c "$TMP/cak.conf" 2>"$TMP/cak.log"
wait_exit "$pid" 10
check_eq "a ca_key of mode 0644: pinproxy does not start (exit 1)" 1 \
    "$EXIT_RC"
check_grep "a ca_key of mode 0644: the start error names the file" \
    "$(q "ca_key $TMP/ca-cak.key has mode 0644")" "$TMP/cak.log"
chmod 640 "$TMP/ca-cak.key"
check_t "a ca_key of mode 0640" cak 1 "$(q "has mode 0640")"
chmod 600 "$TMP/ca-cak.key"
check_t "a ca_key of mode 0600" cak 0 "configuration OK"

mv "$TMP/ca-cak.key" "$TMP/real.key"
ln -s "$TMP/real.key" "$TMP/ca-cak.key"
check_t "a symlinked ca_key" cak 1 \
    "$(q "ca_key $TMP/ca-cak.key is a symbolic link")"

write_conf "$TMP/rsa1024.conf" "$PC"
use_ca rsa1024 weak-rsa1024
check_t "an RSA-1024 CA" rsa1024 1 \
    "$(q "ca_key $TMP/ca-rsa1024.key is an RSA key of 1024 bits")"

write_conf "$TMP/sha1.conf" "$PC"
use_ca sha1 weak-sha1
check_t "a SHA-1-signed CA" sha1 1 \
    "$(q "ca_cert $TMP/ca-sha1.pem is signed with SHA1: too weak")"

write_conf "$TMP/long.conf" "$PC"
use_ca long weak-30y
check_t "a CA valid for 30 years (the warning at ca_cert's line)" long 0 \
    "long\.conf:3: warning: interception CA: $(q \
    "ca_cert $TMP/ca-long.pem is valid for") [0-9]+ days, more than 10 years"
start_pinproxy PP_L "$PC" "$TMP/long.conf" "$TMP/long.log" ||
    bail_out "pinproxy does not start with $TMP/long.conf"
check_log "a CA valid for 30 years: the warning is logged at start" \
    "$TMP/long.log" "$(kv event config_warning)" "more than 10 years"
body=$(pcurl "$PC" --cacert "$TMP/ca-long.pem" https://api.test/hello 2>&1)
check_eq "a CA valid for 30 years: it still issues leaves" "$HELLO" "$body"
stop_pinproxy "$PP_L" "$TMP/long.log"

done_testing
