#!/bin/bash
# pinproxy-pin end to end: pins of certificate files equal the openssl
# pipeline of the product contract, live chains are fetched from openssl
# s_server on the loopback, --ini sections are accepted by pinproxy -t, and
# --check tells a matching pin from a wrong one and refuses what the daemon
# refuses (a deny_pin key, its own listening address).

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# The form of a certificate file, for openssl's -inform.
form_of()
{
	if grep -q -- '-----BEGIN CERTIFICATE-----' "$1"; then
		echo PEM
	else
		echo DER
	fi
}

# expected_line FILE DEPTH: the line pinproxy-pin should print for the
# first certificate of FILE, built from openssl's own output.
expected_line()
{
	local form pin subject date

	form=$(form_of "$1")
	pin=$(sh "$MKPKI" pin "$1")
	subject=$(openssl x509 -inform "$form" -in "$1" -noout -subject \
	    -nameopt RFC2253 | sed 's/^subject=//')
	date=$(openssl x509 -inform "$form" -in "$1" -noout -enddate \
	    -dateopt iso_8601 | sed 's/^notAfter=//; s/ .*//')
	echo "$pin  depth=$2  subject=$subject  not_after=$date"
}

# The Nth line (from 1) of a file.
line_of()
{
	sed -n "$1p" "$2"
}

# serve NAME PORT CERT KEY CHAIN [ADDR]: an openssl s_server on the
# loopback sending CERT and CHAIN; its PID goes into the variable NAME.
serve()
{
	spawn "$1" openssl s_server -accept "${6:-127.0.0.1}:$2" \
	    -cert "$3" -key "$4" -cert_chain "$5" -www -quiet \
	    </dev/null >>"$TMP/s_server.log" 2>&1
}

make_pki
ok "mkpki.sh builds the test PKI"
openssl x509 -in "$PKI/rsa.pem" -outform DER -out "$PKI/rsa.der"

pki_pin LEAF leaf
pki_pin INTER inter
pki_pin ROOT root
pki_pin RSA rsa
pki_pin FOREIGN_LEAF foreign-leaf
pki_pin FOREIGN_ROOT foreign-root

## Files.

run bundle "$PINPROXY_PIN" "$PKI/bundle.pem"
check_rc "a PEM bundle is read with status 0" 0 bundle
check_eq "a bundle of three certificates gives three lines" 3 \
    "$(wc -l <"$TMP/bundle.out")"
check_eq "the EC leaf's line matches the openssl pipeline" \
    "$(expected_line "$PKI/leaf.pem" 0)" "$(line_of 1 "$TMP/bundle.out")"
check_eq "the intermediate's line matches the openssl pipeline" \
    "$(expected_line "$PKI/inter.pem" 1)" "$(line_of 2 "$TMP/bundle.out")"
check_eq "the root's line matches the openssl pipeline" \
    "$(expected_line "$PKI/root.pem" 2)" "$(line_of 3 "$TMP/bundle.out")"

run der "$PINPROXY_PIN" "$PKI/rsa.der"
check_rc "a DER file is read with status 0" 0 der
check_eq "the pin of an RSA certificate in DER matches the openssl pipeline" \
    "$(expected_line "$PKI/rsa.der" 0)" "$(cat "$TMP/der.out")"
check_eq "the pipeline gives the same pin for the PEM and DER forms" \
    "$RSA" "$(sh "$MKPKI" pin "$PKI/rsa.der")"

run two "$PINPROXY_PIN" "$PKI/leaf.pem" "$PKI/rsa.pem"
check_rc "two files are read with status 0" 0 two
check_eq "several files get a # FILE header before each" \
    "# $PKI/leaf.pem|$LEAF|# $PKI/rsa.pem|$RSA" \
    "$(sed 's/  depth=.*//' "$TMP/two.out" | paste -sd'|')"

run missing "$PINPROXY_PIN" "$TMP/no-such-file.pem"
check_rc "an unreadable file gives status 1" 1 missing
check_grep "the message names the unreadable file" \
    "^pinproxy-pin: .*no-such-file.pem" "$TMP/missing.err"

run notcert "$PINPROXY_PIN" "$PKI/leaf.key"
check_rc "a file without certificates gives status 1" 1 notcert
check_grep "the message says no certificate was found" \
    "^pinproxy-pin: .*certificate.*leaf.key" "$TMP/notcert.err"

run mixed "$PINPROXY_PIN" "$PKI/leaf.pem" "$TMP/no-such-file.pem"
check_rc "a bad file among good ones still gives status 1" 1 mixed
check_grep "the good file's pin is still printed" "^$(q "$LEAF")  depth=0" \
    "$TMP/mixed.out"

printf '\033' >"$TMP/esc"
openssl req -x509 -new -key "$PKI/leaf.key" -days 1 \
    -subj "/CN=evil$(cat "$TMP/esc")[31mred" -out "$TMP/evil.pem" 2>/dev/null
run evil "$PINPROXY_PIN" "$TMP/evil.pem"
check "a subject with a control byte prints no control byte" \
    test "$RC" = 0 -a -s "$TMP/evil.out" -a \
    "$(tr -d '\n' <"$TMP/evil.out" | tr -d '[:print:]' | wc -c)" = 0

# san_cert NAME SANS [SUBJECT]: a self-signed certificate $TMP/NAME.pem
# of the test leaf's key, with subjectAltName SANS.
san_cert()
{
	openssl req -x509 -new -key "$PKI/leaf.key" -days 1 \
	    -subj "${3:-/CN=$1}" -addext "subjectAltName=$2" \
	    -out "$TMP/$1.pem" 2>/dev/null
}

# check_ini_hosts DESCRIPTION EXPECTED NAME...: one case, the hosts lines
# of pinproxy-pin --ini $TMP/NAME.pem... (joined by "|"), after its exit
# status and a "|".
check_ini_hosts()
{
	local desc=$1 want=$2 files=() n
	shift 2
	for n; do
		files+=("$TMP/$n.pem")
	done
	run "$1_ini" "$PINPROXY_PIN" --ini "${files[@]}"
	check_eq "$desc" "$want" \
	    "$RC|$(grep '^hosts' "$TMP/$1_ini.out" | paste -sd'|')"
}

# A subject holding the line's field separator (two spaces) and fields
# of its own forges none: the second space is written \20. DNS names
# that spell addresses (which verify for no address) are no hosts of the
# --ini section.
san_cert forge "DNS:ok.example,DNS:0.0.0.0,DNS:[::],DNS:::ffff:1.2.3.4" \
    "/OU=a  not_after=2099-12-31  depth=9/CN=x"
run forge "$PINPROXY_PIN" "$TMP/forge.pem"
check_eq "a subject with two spaces forges no field of the line" "1 1" \
    "$(grep -o '  not_after=' "$TMP/forge.out" | wc -l) \
$(grep -o '  depth=' "$TMP/forge.out" | wc -l)"
check_ini_hosts "--ini: DNS names that spell addresses are no hosts" \
    "0|hosts = ok.example" forge
# Nor are addresses the configuration would read as others (0.0.0.0 as
# 127.0.0.1, :: as ::1, an IPv4-mapped one as its IPv4 address).
san_cert ips "IP:0.0.0.0,IP:::,IP:::ffff:127.0.0.9,IP:127.0.0.5"
check_ini_hosts "--ini: addresses read as others are no hosts" \
    "0|hosts = 127.0.0.5" ips
# Nor are DNS names the daemon's check of the certificate never matches
# (a trailing dot, a wildcard OpenSSL takes for none); and a host two
# files name is listed once: pinproxy takes a host in one pin set only.
san_cert odd "DNS:trail.example.,DNS:*.a_b.example,DNS:*.ok.example,DNS:shared.example"
san_cert odd2 "DNS:shared.example,DNS:other.example"
san_cert odd3 "DNS:other.example"
check_ini_hosts "--ini: only names the certificate verifies for, each \
once; exit 1 for the ones left out" \
    "1|hosts = *.ok.example, shared.example|hosts = other.example" \
    odd odd2 odd3
check_eq "--ini: a file whose hosts earlier sections list has no section" \
    2 "$(grep -c '^\[pins:' "$TMP/odd_ini.out")"
printf '[proxy]\nca_cert = %s\nca_key = %s\n\n' "$PKI/root.pem" \
    "$PKI/root.key" | cat - "$TMP/odd_ini.out" >"$TMP/odd.conf"
run t_odd "$PINPROXY" -t -c "$TMP/odd.conf"
check_rc "pinproxy -t accepts the --ini sections of hosts named twice" 0 t_odd
# A file that repeats a certificate, and one of the same key under an
# empty subject: one pin line, and no space left dangling after it.
san_cert nosubj "DNS:nosubj.example" /
cat "$TMP/nosubj.pem" "$PKI/root.pem" "$TMP/nosubj.pem" "$TMP/forge.pem" \
    >"$TMP/repeat.pem"
run repeat "$PINPROXY_PIN" --ini "$TMP/repeat.pem"
check_eq "--ini: a key repeated in a file gets one pin line" "0 2" \
    "$RC $(grep -c '^pin = ' "$TMP/repeat.out")"
# The same key encoded another way (its EC point compressed) is another
# pin: both lines stay.
openssl ec -in "$PKI/leaf.key" -conv_form compressed -out "$TMP/cleaf.key" \
    2>/dev/null
openssl req -x509 -new -key "$TMP/cleaf.key" -days 1 -subj /CN=compressed \
    -out "$TMP/compressed.pem" 2>/dev/null
cat "$TMP/nosubj.pem" "$TMP/compressed.pem" >"$TMP/twoforms.pem"
run twoforms "$PINPROXY_PIN" --ini "$TMP/twoforms.pem"
check_eq "--ini: one key in two encodings, two pins, two lines" \
    "$(sh "$MKPKI" pin "$TMP/nosubj.pem") $(sh "$MKPKI" pin \
    "$TMP/compressed.pem")" \
    "$(sed -n 's/^pin = \([^ ]*\) .*/\1/p' "$TMP/twoforms.out" | paste -sd' ')"
check_eq "--ini: a certificate without a subject, no trailing space" \
    "pin = $(sh "$MKPKI" pin "$TMP/nosubj.pem")  ; depth=0" \
    "$(sed -n 's/^\(pin = .*depth=0.*\)$/\1/p' "$TMP/repeat.out")"

## Usage.

run noargs "$PINPROXY_PIN"
check_rc "no argument is a usage error (status 2)" 2 noargs
check_grep "a usage error prints the usage on stderr" "^usage:" \
    "$TMP/noargs.err"
check_grep "no argument: the error names every mode" \
    "give a FILE, -s HOST, --check, --ca or --from-observed FILE$" \
    "$TMP/noargs.err"
run badopt "$PINPROXY_PIN" --no-such-option "$PKI/leaf.pem"
check_rc "an unknown option gives status 2" 2 badopt
run sfile "$PINPROXY_PIN" -s 127.0.0.1:1 "$PKI/leaf.pem"
check_rc "-s with a FILE gives status 2" 2 sfile
run nsolo "$PINPROXY_PIN" -n api.test "$PKI/leaf.pem"
check_rc "-n without -s gives status 2" 2 nsolo
run badct "$PINPROXY_PIN" -s api.test --connect-to localhost:443
check_rc "a --connect-to that is not numeric gives status 2" 2 badct
run badport "$PINPROXY_PIN" -s api.test:99999
check_rc "a port out of range gives status 2" 2 badport
run help "$PINPROXY_PIN" -h
check_rc "-h exits 0" 0 help
check_grep "-h prints the usage on stdout" "^usage: pinproxy-pin" \
    "$TMP/help.out"
run version "$PINPROXY_PIN" -V
check_rc "-V exits 0" 0 version
check_grep "-V names the program and OpenSSL" "^pinproxy-pin " \
    "$TMP/version.out"

## A live server sending leaf + intermediate.

PORT=$(free_port)
serve SERVER "$PORT" "$PKI/leaf.pem" "$PKI/leaf.key" "$PKI/inter.pem"
if ! wait_port "$PORT"; then
	echo "Bail out! openssl s_server did not start: $(cat "$TMP/s_server.log")"
	exit 1
fi

run live "$PINPROXY_PIN" -s "127.0.0.1:$PORT" -n api.test -a "$PKI/root.pem"
check_rc "-s with the test root verifies (status 0)" 0 live
check_eq "the verified chain is printed leaf, intermediate, root" \
    "$LEAF $INTER $ROOT" "$(head -n 3 "$TMP/live.out" | cut -d' ' -f1 |
    paste -sd' ')"
check_eq "the leaf's live line equals the file's" \
    "$(expected_line "$PKI/leaf.pem" 0)" "$(line_of 1 "$TMP/live.out")"
check_eq "the root's live line is at depth 2" \
    "$(expected_line "$PKI/root.pem" 2)" "$(line_of 3 "$TMP/live.out")"
check_eq "verify: ok closes the output" "verify: ok" \
    "$(tail -n 1 "$TMP/live.out")"

run connto "$PINPROXY_PIN" -s "api.test:$PORT" \
    --connect-to "127.0.0.1:$PORT" -a "$PKI/root.pem"
check_rc "--connect-to dials the address and checks the name (status 0)" \
    0 connto
check_grep "--connect-to verifies" "^verify: ok$" "$TMP/connto.out"

run untrusted "$PINPROXY_PIN" -s "api.test:$PORT" \
    --connect-to "127.0.0.1:$PORT"
check_rc "an untrusted chain gives status 1" 1 untrusted
check_grep "an untrusted chain says verify: FAILED" \
    "^verify: FAILED \(.+\)$" "$TMP/untrusted.out"
check_eq "an untrusted chain prints the served chain: leaf, intermediate" \
    "$LEAF $INTER" "$(grep '^sha256/' "$TMP/untrusted.out" | cut -d' ' -f1 |
    paste -sd' ')"
check_grep "an untrusted chain is reported on stderr" \
    "^pinproxy-pin: .*did not verify" "$TMP/untrusted.err"

run wrongname "$PINPROXY_PIN" -s "other.test:$PORT" \
    --connect-to "127.0.0.1:$PORT" -a "$PKI/root.pem"
check_rc "a name the leaf does not carry gives status 1" 1 wrongname
check_grep "a wrong name fails as a host name mismatch" \
    "^verify: FAILED \(hostname mismatch\)$" "$TMP/wrongname.out"

DEAD=$(free_port)
run dead "$PINPROXY_PIN" -s "127.0.0.1:$DEAD"
check_rc "an unreachable port gives status 1" 1 dead
check_grep "an unreachable port is reported on stderr, as the daemon says it" \
    "^pinproxy-pin: cannot connect to 127.0.0.1 port $DEAD: Connection refused$" \
    "$TMP/dead.err"
check_eq "an unreachable port prints nothing on stdout" "" \
    "$(cat "$TMP/dead.out")"

## --ini and the daemon's configuration parser.

PROXY_PORT=$(free_port)
cat >"$TMP/proxy.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PROXY_PORT
ca_cert = $PKI/root.pem
ca_key = $PKI/root.key

EOF

# check_pasted DESCRIPTION NAME: one case, pinproxy -t accepts what
# pinproxy-pin printed in $TMP/NAME.out pasted after proxy.conf.
check_pasted()
{
	cat "$TMP/proxy.conf" "$TMP/$2.out" >"$TMP/$2.pasted.conf"
	run "t_$2" "$PINPROXY" -t -c "$TMP/$2.pasted.conf"
	check_rc "$1" 0 "t_$2"
}

run ini "$PINPROXY_PIN" --ini -s "api.test:$PORT" \
    --connect-to "127.0.0.1:$PORT" -a "$PKI/root.pem"
check_rc "--ini -s exits 0" 0 ini
check_grep "--ini names the section after the host" "^\[pins:api-test\]$" \
    "$TMP/ini.out"
check_grep "--ini lists the -s host" "^hosts = api.test$" "$TMP/ini.out"
check_eq "--ini has one pin line per certificate of the verified chain" \
    "$LEAF $INTER $ROOT" "$(sed -n 's/^pin = \([^ ]*\) .*/\1/p' \
    "$TMP/ini.out" | paste -sd' ')"
check_grep "each pin line names its depth and subject" \
    "^pin = $(q "$INTER")  ; depth=1 CN=pinproxy inter" "$TMP/ini.out"
check_eq "no --ini line is 199 bytes or longer" "" \
    "$(awk 'length($0) >= 199' "$TMP/ini.out")"
cat "$TMP/proxy.conf" "$TMP/ini.out" >"$TMP/good.conf"
run t_good "$PINPROXY" -t -c "$TMP/good.conf"
check_rc "pinproxy -t accepts the --ini section" 0 t_good
# A --ca-file whose path cannot be written on a configuration line (a
# line end and a section of its own in a directory name, or too long):
# ca_file is left out with an error, never printed as it is.
evil_dir="$TMP/d
[pins:evil]
hosts = victim.test
x"
long_dir=$TMP/$(printf 'l%.0s' $(seq 190))
mkdir -p "$evil_dir" "$long_dir"
cp "$PKI/root.pem" "$evil_dir/root.pem"
cp "$PKI/root.pem" "$long_dir/root.pem"
for d in evil long; do
	eval "dir=\$${d}_dir"
	run "ini_$d" "$PINPROXY_PIN" --ini -s "api.test:$PORT" \
	    --connect-to "127.0.0.1:$PORT" -a "$dir/root.pem"
	check_eq "--ini -s, a --ca-file path that fits no line ($d): exit 1, \
no ca_file line, no other section" "1 0 1" \
	    "$RC $(grep -c '^ca_file' "$TMP/ini_$d.out") \
$(grep -c '^\[' "$TMP/ini_$d.out")"
done
check_grep "--ini -s, a --ca-file path that fits no line: the error says so" \
    "the path of --ca-file cannot be written on a configuration line" \
    "$TMP/ini_long.err"

run inifile "$PINPROXY_PIN" --ini "$PKI/chain.pem"
check_rc "--ini FILE exits 0" 0 inifile
check_grep "--ini FILE lists the leaf's DNS names" \
    "^hosts = api.test, localhost$" "$TMP/inifile.out"
sed 's/^hosts = .*/hosts = files.test/; s/^\[pins:.*/[pins:files]/' \
    "$TMP/inifile.out" | cat "$TMP/good.conf" - >"$TMP/files.conf"
run t_files "$PINPROXY" -t -c "$TMP/files.conf"
check_rc "pinproxy -t accepts an --ini FILE section" 0 t_files

## --ca: the daemon's interception CA, its pin and its Android file name.

run ca "$PINPROXY_PIN" --ca -c "$TMP/proxy.conf"
check_rc "--ca exits 0" 0 ca
check_eq "--ca prints the ca_cert of the configuration in PEM" \
    "$(openssl x509 -in "$PKI/root.pem" -outform DER | sha256sum)" \
    "$(openssl x509 -in "$TMP/ca.out" -outform DER 2>/dev/null | sha256sum)"
check_grep "--ca prints the CA's pin line" \
    "^$(q "$(expected_line "$PKI/root.pem" 0)")$" "$TMP/ca.out"
check_eq "--ca names the Android file <subject_hash_old>.0" \
    "android: $(openssl x509 -in "$PKI/root.pem" -noout -subject_hash_old).0" \
    "$(tail -n 1 "$TMP/ca.out")"
sed "s|^ca_cert = .*|ca_cert = $TMP/no-ca.pem|" "$TMP/proxy.conf" \
    >"$TMP/noca.conf"
run noca "$PINPROXY_PIN" --ca -c "$TMP/noca.conf"
check_rc "--ca without the CA file exits 1" 1 noca
check_grep "--ca says the daemon creates the CA on its first start" \
    "creates $(q "$TMP/no-ca.pem") on its first start" "$TMP/noca.err"
run cas "$PINPROXY_PIN" --ca -s 127.0.0.1:1
check_rc "--ca with -s gives status 2" 2 cas

## --check.

# Without -c and without the default file, the daemon runs with its
# built-in defaults, which have no pin set: --check says so and passes.
default=$(sed -n 's/.*(default \(\/.*\))$/\1/p' "$TMP/help.out" | head -n 1)
if [ -z "$default" ] || [ -e "$default" ]; then
	skip "--check without -c: the default configuration file ${default:-?} exists here"
else
	run check_default "$PINPROXY_PIN" --check
	check_eq "--check without -c or the default file: the built-in defaults, exit 0" \
	    "0|pinproxy-pin: $default: not found; the built-in defaults apply|pinproxy-pin: $default: no pin sets to check" \
	    "$RC|$(paste -s -d '|' "$TMP/check_default.err")"
	run check_default_json "$PINPROXY_PIN" --check --json
	check_eq "--check --json without -c or the default file: no host, ok" \
	    "0 {\"config\":\"$default\",\"hosts\":[],\"ok\":true}" \
	    "$RC $(tr -d '\n' <"$TMP/check_default_json.out")"
fi

run check_good "$PINPROXY_PIN" --check -c "$TMP/good.conf"
check_rc "--check with a correct pin exits 0" 0 check_good
check_grep "--check reports the match" \
    "^api.test:$PORT  pinset=api-test  match$" "$TMP/check_good.out"

sed -e "/^pin = /d" -e "/^hosts = /a pin = $RSA\\
pin = $FOREIGN_ROOT" "$TMP/good.conf" >"$TMP/wrong.conf"
run check_wrong "$PINPROXY_PIN" --check -c "$TMP/wrong.conf"
check_rc "--check with a wrong pin exits 1" 1 check_wrong
SEEN=$(q "$LEAF $INTER $ROOT")
check_grep "--check reports MISMATCH with the pins it saw" \
    "^api.test:$PORT  pinset=api-test  MISMATCH \(seen: $SEEN\)$" \
    "$TMP/check_wrong.out"

sed -e "/^pin = /d" -e "/^hosts = /a expires = 2020-01-01\\
pin = $RSA\\
pin = $FOREIGN_ROOT" "$TMP/good.conf" >"$TMP/expired.conf"
run check_expired "$PINPROXY_PIN" --check -c "$TMP/expired.conf"
check_rc "--check of an expired pin set exits 0" 0 check_expired
check_grep "--check reports the expired pin set" \
    "^api.test:$PORT  pinset=api-test  expired \(expires=2020-01-01\)$" \
    "$TMP/check_expired.out"

## --from-observed: an observe_file becomes [pins:NAME] sections, one per
## registrable domain and port, CA pins first, leaf pins commented out.

run observed "$PINPROXY_PIN" --from-observed \
    "$top_srcdir/tests/data/observe.jsonl"
check_rc "--from-observed with a line that is not an observation exits 1" \
    1 observed
check_grep "--from-observed names the bad line as FILE:LINE" \
    "observe\.jsonl:5: not an observe_file line" "$TMP/observed.err"
check_eq "--from-observed prints the expected sections" \
    "$(cat "$top_srcdir/tests/data/observe.expected")" \
    "$(tail -n +2 "$TMP/observed.out")"
check_grep "--from-observed says how it found registrable domains" \
    "^; from .*, registrable domains by the (public suffix list|last two labels)$" \
    "$TMP/observed.out"
check_pasted "pinproxy -t accepts the --from-observed sections" observed
# A host name too long for a configuration line (200 bytes; a line holds
# at most 198) is left out with an error, never cut: a cut name would pin
# another host and leave this one unpinned.
long=$(printf 'a%.0s' $(seq 63)).$(printf 'b%.0s' $(seq 63)).$(printf \
    'c%.0s' $(seq 60)).victim.test
printf '{"host":"%s","port":443,"first_seen":"2026-12-05T08:00:00Z",%s\n' \
    "$long" '"client":"127.0.0.1:1","chain":[{"pin":"sha256/rJcdD76UBuYkRPrhAMpCS3jNMtjk5yEJUchQwgpC3Eg=","depth":1,"subject":"CN=x","not_after":"2036-12-01"}]}' \
    >"$TMP/long.jsonl"
run observed_long "$PINPROXY_PIN" --from-observed "$TMP/long.jsonl"
check_rc "--from-observed, a host name too long for a line: exit 1" 1 \
    observed_long
check_grep "--from-observed, a host name too long for a line: the error \
says so" "a host name of 200 bytes does not fit a configuration line" \
    "$TMP/observed_long.err"
check_eq "--from-observed, a host name too long for a line: no part of it \
is printed as a host" 0 "$(grep -c '^hosts = .*aaaa' "$TMP/observed_long.out")"
# A directory, or a device that never ends (/dev/zero was read until
# killed): refused, exit 1. A pipe ends with its writer: read.
mkdir "$TMP/observed.d"
run observed_dir "$PINPROXY_PIN" --from-observed "$TMP/observed.d"
check_rc "--from-observed on a directory: exit 1" 1 observed_dir
check_grep "--from-observed on a directory: the error says so" \
    "observed\.d is a directory, not a file or a pipe: refused" \
    "$TMP/observed_dir.err"
run observed_zero timeout 20 "$PINPROXY_PIN" --from-observed /dev/zero
check_rc "--from-observed on /dev/zero: exit 1 at once" 1 observed_zero
check_grep "--from-observed on /dev/zero: the error says so" \
    "/dev/zero is a device, not a file or a pipe: refused" \
    "$TMP/observed_zero.err"
run observed_pipe sh -c "cat \"\$1\" | \"\$2\" --from-observed /dev/stdin" \
    sh "$top_srcdir/tests/data/observe.jsonl" "$PINPROXY_PIN"
check_eq "--from-observed reads a pipe: the sections of the file" \
    "$(cat "$top_srcdir/tests/data/observe.expected")" \
    "$(tail -n +2 "$TMP/observed_pipe.out")"
# A \u escape cut short before the closing quote ("\u0"): the line is
# left out with an error, and nothing is read or written past its text.
{
	printf '{"host":"\\u0"%s","port":443,"chain":[%s]}\n' \
	    "$(printf 'A%.0s' $(seq 60))" \
	    '{"pin":"sha256/rJcdD76UBuYkRPrhAMpCS3jNMtjk5yEJUchQwgpC3Eg=","depth":1,"subject":"CN=x"}'
	printf '{"host":"%s","port":443,"chain":[%s]}\n' www.after.test \
	    '{"pin":"sha256/rJcdD76UBuYkRPrhAMpCS3jNMtjk5yEJUchQwgpC3Eg=","depth":1,"subject":"CN=x"}'
} >"$TMP/escape.jsonl"
run observed_escape "$PINPROXY_PIN" --from-observed "$TMP/escape.jsonl"
check_rc "--from-observed, a cut \\u escape: exit 1, no crash" 1 \
    observed_escape
check_grep "--from-observed, a cut \\u escape: FILE:LINE says it is left out" \
    "escape\.jsonl:1: not an observe_file line" "$TMP/observed_escape.err"
check_grep "--from-observed, a cut \\u escape: the next line counts" \
    "^hosts = www\.after\.test$" "$TMP/observed_escape.out"
# A key given twice, in the line or in a chain entry: which would count?
# (The first host and the last port were taken.) Each such line is left
# out with an error; the good line after them counts.
cert='"pin":"sha256/rJcdD76UBuYkRPrhAMpCS3jNMtjk5yEJUchQwgpC3Eg=","depth":1'
{
	printf '{"host":"a.dup.test","host":"b.dup.test","port":443,"chain":[{%s}]}\n' "$cert"
	printf '{"host":"c.dup.test","port":443,"port":8443,"chain":[{%s}]}\n' "$cert"
	printf '{"host":"d.dup.test","port":443,"chain":[],"chain":[{%s}]}\n' "$cert"
	printf '{"host":"e.dup.test","port":443,"chain":[{%s,"depth":0}]}\n' "$cert"
	printf '{"host":"f.dup.test","port":443,"chain":[{%s,"pin":"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}\n' "$cert"
	printf '{"host":"www.ok.test","port":443,"chain":[{%s,"subject":"CN=x"}]}\n' "$cert"
} >"$TMP/dup.jsonl"
run observed_dup "$PINPROXY_PIN" --from-observed "$TMP/dup.jsonl"
check_rc "--from-observed, keys given twice: exit 1" 1 observed_dup
check_eq "--from-observed, keys given twice: each such line is left out" \
    "dup.jsonl:1 dup.jsonl:2 dup.jsonl:3 dup.jsonl:4 dup.jsonl:5" \
    "$(grep -o 'dup\.jsonl:[0-9]*: not an observe_file line' \
    "$TMP/observed_dup.err" | cut -d: -f1,2 | tr '\n' ' ' | sed 's/ $//')"
check_eq "--from-observed, keys given twice: only the good line's host" \
    "hosts = www.ok.test" "$(grep '^hosts = ' "$TMP/observed_dup.out")"
# A line of 64 MiB (a file that is not an observe_file, or one cut and
# appended to) is left out with an error, read through without being held:
# the memory stays that of a line's limit, and the next line counts.
{
	head -c $((64 * 1024 * 1024)) /dev/zero | tr '\0' x
	echo
	printf '{"host":"%s","port":443,"first_seen":"2026-12-05T08:00:00Z",%s\n' \
	    www.huge.test '"client":"127.0.0.1:1","chain":[{"pin":"sha256/rJcdD76UBuYkRPrhAMpCS3jNMtjk5yEJUchQwgpC3Eg=","depth":1,"subject":"CN=x","not_after":"2036-12-01"}]}'
} >"$TMP/huge.jsonl"
rss=$(python3 -c '
import resource, subprocess, sys
with open(sys.argv[2] + ".out", "wb") as out, \
        open(sys.argv[2] + ".err", "wb") as err:
    subprocess.run([sys.argv[1], "--from-observed", sys.argv[3]],
                   stdout=out, stderr=err)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
    "$PINPROXY_PIN" "$TMP/observed_huge" "$TMP/huge.jsonl")
check_grep "--from-observed, a line of 64 MiB: FILE:LINE says it is left out" \
    "huge\.jsonl:1: not an observe_file line" "$TMP/observed_huge.err"
check_grep "--from-observed, a line of 64 MiB: the next line counts" \
    "^hosts = www\.huge\.test$" "$TMP/observed_huge.out"
check "--from-observed, a line of 64 MiB: at most 48 MiB resident \
(${rss} KiB)" test "${rss:-999999}" -lt $((48 * 1024))
rm -f "$TMP/huge.jsonl"
# Two registrable domains whose names make one section name (the
# punctuation of "x--y.com" and "x-y.com" becomes one dash): the second
# section gets its own name, and pinproxy accepts the output.
for h in www.x--y.com www.x-y.com; do
	printf '{"host":"%s","port":443,"first_seen":"2026-12-05T08:00:00Z",%s\n' \
	    "$h" '"client":"127.0.0.1:1","chain":[{"pin":"sha256/rJcdD76UBuYkRPrhAMpCS3jNMtjk5yEJUchQwgpC3Eg=","depth":1,"subject":"CN=x","not_after":"2036-12-01"}]}'
done >"$TMP/clash.jsonl"
run observed_clash "$PINPROXY_PIN" --from-observed "$TMP/clash.jsonl"
check_eq "--from-observed, two domains making one section name: two names" \
    "[pins:x-y-com-2] [pins:x-y-com]" \
    "$(grep '^\[pins:' "$TMP/observed_clash.out" | LC_ALL=C sort | tr '\n' ' ' |
    sed 's/ $//')"
check_pasted "pinproxy -t accepts both sections" observed_clash
# One host seen on two ports: pinproxy takes a host in one pin set only,
# whatever the port, so the second section is left out with an error.
for pc in "443 sha256/+jq2SIaXVRRWh66zTRC2x7tdqKrY8COsebWU9eYIWcQ=" \
    "8443 sha256/71nbupl/q+46TQKuFKfdnmjh814zXZVOanRfORw8XKY="; do
	printf '{"host":"api.dup.test","port":%s,"first_seen":"2026-12-05T08:00:00Z",%s%s%s\n' \
	    "${pc% *}" '"client":"127.0.0.1:1","chain":[{"pin":"' "${pc#* }" \
	    '","depth":1,"subject":"CN=I","not_after":"2031-12-01"}]}'
done >"$TMP/dup.jsonl"
run observed_dup "$PINPROXY_PIN" --from-observed "$TMP/dup.jsonl"
check_eq "--from-observed, a host on two ports: exit 1, listed once" \
    "1 1" "$RC $(grep -c '^hosts = api.dup.test$' "$TMP/observed_dup.out")"
check_pasted "pinproxy -t accepts the sections of a host on two ports" \
    observed_dup
# Comments that name hosts or files are cut to a line the parser takes,
# and a line end in a file name is escaped: a host of 178 bytes in a
# domain split by CA keys (the "seen for" and "hosts of" comments), read
# from a file whose name holds a line end and a section of its own.
obs_file="$TMP/obs
[pins:evil]
hosts = bank.example
x"
long=$(printf 'a%.0s' $(seq 63)).$(printf 'b%.0s' $(seq 63)).$(printf \
    'c%.0s' $(seq 30)).split.test
for hc in "$long sha256/+jq2SIaXVRRWh66zTRC2x7tdqKrY8COsebWU9eYIWcQ=" \
    "www.split.test sha256/71nbupl/q+46TQKuFKfdnmjh814zXZVOanRfORw8XKY="; do
	printf '{"host":"%s","port":443,"first_seen":"2026-12-05T08:00:00Z",%s%s%s\n' \
	    "${hc% *}" '"client":"127.0.0.1:1","chain":[{"pin":"' "${hc#* }" \
	    '","depth":1,"subject":"CN=I","not_after":"2031-12-01"},{"pin":"sha256/BNOlJuDDHY2Ao1W0vIe+8mmUBIAO8CBYcevfK0qU5vU=","depth":2,"subject":"CN=Root","not_after":"2036-12-01"}]}'
done >"$obs_file"
run observed_cut "$PINPROXY_PIN" --from-observed "$obs_file"
check_rc "--from-observed, long comments and a file name with line ends: \
exit 0" 0 observed_cut
check_eq "--from-observed: no line is longer than 190 bytes" 0 \
    "$(awk 'length($0) > 190' "$TMP/observed_cut.out" | wc -l)"
check_eq "--from-observed: a file name's line ends stay in its comment" 0 \
    "$(grep -v '^;' "$TMP/observed_cut.out" | grep -c 'evil')"
check_pasted "pinproxy -t accepts the sections with the cut comments" \
    observed_cut
# Hosts of one domain whose chains share no CA key: a host a client
# visited under another CA (user content, another tenant) must not add
# that CA to the pins of the others. www.bank.test, seen under CA X and
# after a change under CA Z, stays with api.bank.test (CA X).
CA_X=sha256/+jq2SIaXVRRWh66zTRC2x7tdqKrY8COsebWU9eYIWcQ=
CA_Y=sha256/71nbupl/q+46TQKuFKfdnmjh814zXZVOanRfORw8XKY=
CA_Z=sha256/HTHo+CSb7S1bnPa8RSvIkCy1IwysXjGuiWjb7s6/Nhs=
for hp in api.bank.test:$CA_X user.bank.test:$CA_Y www.bank.test:$CA_X \
    www.bank.test:$CA_Z; do
	printf '{"host":"%s","port":443,"first_seen":"2026-12-05T08:00:00Z",%s%s%s\n' \
	    "${hp%%:*}" '"client":"127.0.0.1:1","chain":[{"pin":"' \
	    "${hp#*:}" '","depth":1,"subject":"CN=ca","not_after":"2036-12-01"}]}'
done >"$TMP/split.jsonl"
run observed_split "$PINPROXY_PIN" --from-observed "$TMP/split.jsonl"
# www.bank.test's two chains share no CA key, which an interception while
# observing looks like too: its section says so, and the exit is 1.
check_rc "--from-observed, a host under two unrelated CAs: exit 1" \
    1 observed_split
check_eq "--from-observed, a host under two unrelated CAs: a warning in its \
section" "; WARNING: www.bank.test was seen with chains that share no CA key" \
    "$(grep '^; WARNING' "$TMP/observed_split.out")"
check_grep "--from-observed, a host under two unrelated CAs: said on stderr" \
    "www\.bank\.test port 443 was seen with chains that share no CA key" \
    "$TMP/observed_split.err"
# A server whose certificate is its own trust anchor: a chain of one, the
# leaf key the only pin, which the section must have (one with no pin line
# is refused by -t).
printf '{"host":"self.test","port":443,"first_seen":"2026-12-05T08:00:00Z",%s%s\n' \
    '"client":"127.0.0.1:1","chain":[{"pin":"' \
    "$CA_Y\",\"depth\":0,\"subject\":\"CN=self.test\",\"not_after\":\"2036-12-01\"}]}" \
    >"$TMP/self.jsonl"
run observed_self "$PINPROXY_PIN" --from-observed "$TMP/self.jsonl"
check_rc "--from-observed, a chain of one certificate: exit 0" 0 observed_self
check_grep "--from-observed, a chain of one certificate: its leaf is the pin" \
    "^pin = leaf:$(q "$CA_Y")  ; leaf, the whole chain" "$TMP/observed_self.out"
check_pasted "pinproxy -t accepts a chain of one certificate's section" \
    observed_self
check_eq "--from-observed, hosts under unrelated CAs: separate sections" \
    "hosts = api.bank.test, www.bank.test|hosts = user.bank.test|" \
    "$(grep '^hosts = ' "$TMP/observed_split.out" | tr '\n' '|')"
check_eq "--from-observed, hosts under unrelated CAs: the CA of one is not \
pinned for the others" "$CA_X $CA_Z|$CA_Y|" \
    "$(awk '/^\[pins:/ { if (s != "") print s; s = "" }
	/^pin = / { s = s (s == "" ? "" : " ") $3 }
	END { print s }' "$TMP/observed_split.out" | tr '\n' '|')"
check_eq "--from-observed: a CA only some hosts of a section were seen with \
says which" "; seen for 1 of the 2 hosts, www.bank.test|pin = $CA_Z" \
    "$(grep -F -B1 "pin = $CA_Z" "$TMP/observed_split.out" |
    sed 's/  ;.*//' | tr '\n' '|' | sed 's/|$//')"
check_eq "--from-observed, hosts under unrelated CAs: each section says so" \
    2 "$(grep -c '^; hosts of bank\.test whose chains share no CA key with' \
    "$TMP/observed_split.out")"
check_pasted "pinproxy -t accepts the split sections" observed_split
run observed_usage "$PINPROXY_PIN" --from-observed x --check
check_rc "--from-observed with --check gives status 2" 2 observed_usage

## --check explains every pin: where it sits in the live verified chain.

check_grep "--check: a leaf pin is placed at the leaf" \
    "^  pin $(q "$LEAF")  leaf$" "$TMP/check_good.out"
check_grep "--check: the intermediate's pin is placed with its depth" \
    "^  pin $(q "$INTER")  intermediate depth=1$" "$TMP/check_good.out"
check_grep "--check: the root's pin is placed at the root" \
    "^  pin $(q "$ROOT")  root$" "$TMP/check_good.out"
check_grep "--check: a set with every pin in the live chain has no backup" \
    "^  warning: no backup pin$" "$TMP/check_good.out"
check "--check: a set that matches above the leaf is not leaf-only" \
    test "$(grep -c 'leaf-only' "$TMP/check_good.out")" = 0
check_grep "--check: the pins of a mismatching set are not in the chain" \
    "^  pin $(q "$FOREIGN_ROOT")  not in chain \(backup\)$" \
    "$TMP/check_wrong.out"

sed -e "/^pin = /d" -e "/^hosts = /a pin = $LEAF\\
pin = $RSA" "$TMP/good.conf" >"$TMP/leafonly.conf"
run check_leaf "$PINPROXY_PIN" --check -c "$TMP/leafonly.conf"
check_rc "--check of a leaf pin with a backup exits 0" 0 check_leaf
check_eq "--check: the host line, the pins, then the warning" \
    "api.test:$PORT  pinset=api-test  match
  pin $LEAF  leaf
  pin $RSA  not in chain (backup)
  warning: leaf-only pins break at every certificate renewal" \
    "$(cat "$TMP/check_leaf.out")"

# Candidates: where the server's next key is in use already (the leaf's
# here, the rotation's step 3), and one not in the chain; in JSON too.
sed -e "/^pin = /d" -e "/^hosts = /a pin = $INTER\\
pin = $RSA\\
candidate = $LEAF\\
candidate = $FOREIGN_ROOT" "$TMP/good.conf" >"$TMP/cand.conf"
run check_cand "$PINPROXY_PIN" --check -c "$TMP/cand.conf"
check_rc "--check of a set with candidates exits 0" 0 check_cand
check_eq "--check: each candidate, where it is in use" \
    "  candidate $LEAF  leaf depth=0: in use, promote it
  candidate $FOREIGN_ROOT  not in chain" \
    "$(grep '^  candidate ' "$TMP/check_cand.out")"
run check_cand_json "$PINPROXY_PIN" --check --json -c "$TMP/cand.conf"
check_eq "--check --json: the candidates" \
    "[{'pin': '$LEAF', 'place': 'leaf', 'depth': 0}, {'pin': '$FOREIGN_ROOT', 'place': None, 'depth': None}]" \
    "$(py -c 'import json, sys
print(json.load(sys.stdin)["hosts"][0]["candidates"])' \
    <"$TMP/check_cand_json.out" 2>&1)"

# A scoped pin counts only within its scope, as in the daemon: the
# intermediate's key pinned as leaf: matches nothing, and --check says
# where it sits instead of placing it as if it matched.
sed -e "/^pin = /d" -e "/^hosts = /a pin = leaf:$INTER\\
pin = $RSA" "$TMP/good.conf" >"$TMP/scoped.conf"
run check_scoped "$PINPROXY_PIN" --check -c "$TMP/scoped.conf"
check_rc "--check of a pin found only outside its scope exits 1" 1 \
    check_scoped
check_eq "--check: a pin outside its scope is placed as matching nothing" \
    "  pin leaf:$INTER  intermediate depth=1, outside its scope (matches nothing)
  pin $RSA  not in chain (backup)" \
    "$(grep '^  ' "$TMP/check_scoped.out")"
check_grep "--check: a set whose only pin in the chain is out of scope is a \
mismatch" "^api.test:$PORT  pinset=api-test  MISMATCH" "$TMP/check_scoped.out"
# Every pin outside its scope: a mismatch, and no "no backup pin" beside it.
sed -e "/^pin = /d" -e "/^hosts = /a pin = leaf:$INTER" "$TMP/good.conf" \
    >"$TMP/allstray.conf"
run check_allstray "$PINPROXY_PIN" --check -c "$TMP/allstray.conf"
check_rc "--check of a set whose every pin is out of scope exits 1" 1 \
    check_allstray
check_eq "--check: every pin out of scope: the host line and the pin, no \
warning" "api.test:$PORT  pinset=api-test  MISMATCH
  pin leaf:$INTER  intermediate depth=1, outside its scope (matches nothing)" \
    "$(sed 's/ (seen: .*)$//' "$TMP/check_allstray.out")"

## --check refuses a denied key as the daemon does: the leaf pin matches,
## but deny_pin names the intermediate of the verified chain.

sed "/^\[proxy\]$/a deny_pin = $INTER" "$TMP/leafonly.conf" >"$TMP/deny.conf"
run check_deny "$PINPROXY_PIN" --check -c "$TMP/deny.conf"
check_rc "--check of a chain holding a deny_pin key exits 1" 1 check_deny
check_grep "--check reports the denied key and its depth, as pin_denied does" \
    "^api.test:$PORT  pinset=api-test  DENIED \(the verified chain holds a denied key at depth 1: $(q "$INTER")\)$" \
    "$TMP/check_deny.out"
check_grep "--check still places the pins in the denied chain" \
    "^  pin $(q "$LEAF")  leaf$" "$TMP/check_deny.out"

# check_json NAME CONF PYTHON: --check --json -c CONF parsed by a JSON
# parser, then PYTHON asserts on it as d; one case.
check_json()
{
	run "$1" "$PINPROXY_PIN" --check --json -c "$2"
	if python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])' "$TMP/$1.out" "$3" >"$TMP/$1.py" 2>&1; then
		ok "--check --json: $1"
	else
		not_ok "--check --json: $1"
		diag "$(cat "$TMP/$1.py" "$TMP/$1.out" "$TMP/$1.err")"
	fi
}
check_json json_leaf "$TMP/leafonly.conf" "
h = d['hosts'][0]
assert d['ok'] is True and len(d['hosts']) == 1, d
assert (h['host'], h['port'], h['pinset'], h['result']) == \
    ('api.test', $PORT, 'api-test', 'match'), h
assert [(p['pin'], p['place'], p['depth']) for p in h['pins']] == \
    [('$LEAF', 'leaf', 0), ('$RSA', 'backup', None)], h['pins']
assert h['warnings'] == \
    ['leaf-only pins break at every certificate renewal'], h
assert [c['pin'] for c in h['chain']] == ['$LEAF', '$INTER', '$ROOT'], h
"
check_rc "--check --json of a matching set exits 0" 0 json_leaf
check_json json_good "$TMP/good.conf" "
p = d['hosts'][0]['pins']
assert [(x['place'], x['depth']) for x in p] == \
    [('leaf', 0), ('intermediate', 1), ('root', 2)], p
assert d['hosts'][0]['warnings'] == ['no backup pin'], d
"
check_json json_deny "$TMP/deny.conf" "
h = d['hosts'][0]
assert d['ok'] is False and h['result'] == 'denied' and not h['ok'], d
assert [c['pin'] for c in h['chain']] == ['$LEAF', '$INTER', '$ROOT'], h
"
check_json json_wrong "$TMP/wrong.conf" "
h = d['hosts'][0]
assert d['ok'] is False and h['result'] == 'mismatch' and not h['ok'], d
assert [x['place'] for x in h['pins']] == ['backup', 'backup'], h
"
check_rc "--check --json of a mismatching set exits 1" 1 json_wrong
# A configuration that cannot be checked is still one document.
printf '[pins:x]\nhosts = a.test\npin = sha256/bogus\n' >"$TMP/unparsable.conf"
check_json json_unparsable "$TMP/unparsable.conf" "
assert d['ok'] is False and d['hosts'] == [], d
assert len(d['errors']) == 1 and ':3: bad value for pin' in d['errors'][0], d
"
check_rc "--check --json of a configuration with errors exits 1" 1 \
    json_unparsable
check_json json_scoped "$TMP/scoped.conf" "
h = d['hosts'][0]
assert d['ok'] is False and h['result'] == 'mismatch', d
assert [(x['pin'], x['place'], x['depth']) for x in h['pins']] == \\
    [('leaf:$INTER', 'out-of-scope', 1), ('$RSA', 'backup', None)], h['pins']
"
run json_s "$PINPROXY_PIN" --json -s 127.0.0.1:1
check_rc "--json without --check gives status 2" 2 json_s

# A listener that never answers: the kernel accepts, nobody speaks TLS.
MUTE=$(free_port)
spawn MUTE_PID python3 -c 'import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(60)' "$MUTE"
wait_port "$MUTE"
cat >"$TMP/dead.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PROXY_PORT
ca_cert = $PKI/root.pem
ca_key = $PKI/root.key
connect_timeout = 1s

[pins:dead]
hosts = dead.test
connect_to = 127.0.0.1:$DEAD
pin = $LEAF
pin = $RSA

[pins:mute]
hosts = mute.test
connect_to = 127.0.0.1:$MUTE
pin = $LEAF
pin = $RSA
hosts = *.wild.test
EOF
run check_dead "$PINPROXY_PIN" --check -c "$TMP/dead.conf"
check_rc "--check with unreachable hosts exits 1" 1 check_dead
check_grep "--check reports a refused connection to connect_to, and where \
it dialled" \
    "^dead.test:443  pinset=dead  error \(cannot connect to dead.test port 443 at 127.0.0.1:$DEAD: Connection refused\)$" \
    "$TMP/check_dead.out"
check_grep "--check gives up on a silent server after connect_timeout" \
    "^mute.test:443  pinset=mute  error \(no TLS handshake within 1s\)$" \
    "$TMP/check_dead.out"
check_grep "--check skips wildcard patterns with a note" \
    "^\*\.wild\.test:443  pinset=mute  skipped" "$TMP/check_dead.out"
check_json json_dead "$TMP/dead.conf" "
assert [h['result'] for h in d['hosts']] == ['error', 'error', 'skipped'], d
assert d['ok'] is False and d['hosts'][0]['chain'] is None, d
"
stop "$MUTE_PID"

printf '[pins:broken]\nhosts = broken.test\npin = sha1/AAAA\n' |
    cat "$TMP/good.conf" - >"$TMP/broken.conf"
run check_broken "$PINPROXY_PIN" --check -c "$TMP/broken.conf"
check_rc "--check of an invalid configuration exits 1" 1 check_broken
check_grep "--check prints the configuration error as FILE:LINE" \
    "broken.conf:[0-9]+: " "$TMP/check_broken.err"

## Names are resolved as the daemon resolves them: through
## PINPROXY_RESOLV_CONF, here a resolver that knows check.test, a name
## /etc/hosts does not.

sh "$MKPKI" leaf "$PKI" check "DNS:check.test" inter >>"$TMP/mkpki.log" 2>&1
pki_pin CHECK_LEAF check
CPORT=$(free_port)
serve CHECK_SERVER "$CPORT" "$PKI/check.pem" "$PKI/check.key" \
    "$PKI/inter.pem"
start_dnsd --map check.test=127.0.0.1 --map loop.test=127.0.0.1 \
    --map slow.test=127.0.0.1 --slow slow.test=5
cat >"$TMP/resolve.conf" <<EOF
[pins:check]
hosts = check.test
port = $CPORT
ca_file = $PKI/root.pem
pin = $CHECK_LEAF
pin = $RSA
EOF
if wait_port "$CPORT"; then
	run check_dns env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" --check -c "$TMP/resolve.conf"
	check_rc "--check resolves through PINPROXY_RESOLV_CONF (status 0)" \
	    0 check_dns
	check_grep "--check finds check.test through the daemon's resolver" \
	    "^check.test:$CPORT  pinset=check  match$" "$TMP/check_dns.out"
	run s_dns env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" -s "check.test:$CPORT" -a "$PKI/root.pem"
	check_rc "-s resolves through PINPROXY_RESOLV_CONF (status 0)" 0 s_dns
	run nodns env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" -s "nowhere.test:$CPORT" -a "$PKI/root.pem"
	check_rc "a name the resolver does not know gives status 1" 1 nodns
	check_grep "an unknown name is reported on stderr" \
	    "^pinproxy-pin: cannot resolve nowhere.test" "$TMP/nodns.err"
	# A name whose answer comes after connect_timeout: reported, and
	# the request given up leaves nothing behind (LeakSanitizer).
	printf '[proxy]\nconnect_timeout = 1s\n[pins:slow]\nhosts = slow.test\nport = %s\npin = %s\npin = %s\n' \
	    "$CPORT" "$CHECK_LEAF" "$RSA" >"$TMP/slowdns.conf"
	run slowdns env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" --check -c "$TMP/slowdns.conf"
	check_grep "--check: no DNS answer within connect_timeout, said so" \
	    "^slow.test:$CPORT  pinset=slow  error \(no DNS answer within 1s\)$" \
	    "$TMP/slowdns.out"
	check_rc "--check: a DNS timeout gives status 1" 1 slowdns
	check "--check: the request given up leaks nothing" \
	    test -z "$(grep -i 'leak' "$TMP/slowdns.err")"
else
	not_ok "the check.test s_server did not start"
fi
stop "$CHECK_SERVER"

## Loops: a name that resolves to one of the configuration's listening
## addresses is refused as the daemon refuses it, whatever answers there.
## The same section under another listen address matches.

sh "$MKPKI" leaf "$PKI" loop "DNS:loop.test" inter >>"$TMP/mkpki.log" 2>&1
LPORT=$(free_port)
serve LOOP_SERVER "$LPORT" "$PKI/loop.pem" "$PKI/loop.key" "$PKI/inter.pem"
# loop_conf LISTEN_PORT: a configuration listening there, pinning loop.test.
loop_conf()
{
	cat <<EOF
[proxy]
listen = 127.0.0.1:$1
ca_cert = $PKI/root.pem
ca_key = $PKI/root.key

[pins:loop]
hosts = loop.test
port = $LPORT
ca_file = $PKI/root.pem
pin = $INTER
pin = $RSA
EOF
}
loop_conf "$LPORT" >"$TMP/loop.conf"
loop_conf "$PROXY_PORT" >"$TMP/noloop.conf"
if wait_port "$LPORT"; then
	run check_noloop env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" --check -c "$TMP/noloop.conf"
	check_rc "--check of loop.test under another listen address exits 0" \
	    0 check_noloop
	run check_loop env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" --check -c "$TMP/loop.conf"
	check_rc "--check of a host at the proxy's own address exits 1" 1 \
	    check_loop
	check_grep "--check refuses the proxy's own address as a loop" \
	    "^loop.test:$LPORT  pinset=loop  error \(loop.test port $LPORT is the proxy's own listening address\)$" \
	    "$TMP/check_loop.out"
	# A forwarder's listener is the daemon's too: not dialled either.
	{ loop_conf "$PROXY_PORT"; printf '\n[forward:fw]\nlisten = %s\n%s\n' \
	    "127.0.0.1:$LPORT" "upstream = 127.0.0.1:$CPORT"
	    printf 'pinset = loop\n'; } >"$TMP/fwloop.conf"
	run check_fwloop env PINPROXY_RESOLV_CONF="$TMP/resolv.conf" \
	    "$PINPROXY_PIN" --check -c "$TMP/fwloop.conf"
	check_grep "--check refuses a forwarder's listen address as a loop" \
	    "^loop.test:$LPORT  pinset=loop  error \(loop.test port $LPORT is the proxy's own listening address\)$" \
	    "$TMP/check_fwloop.out"
else
	not_ok "the loop.test s_server did not start"
fi
stop "$LOOP_SERVER"

## -s ADDR -n NAME (the emulator's case): NAME is the SNI sent and the
## name verified; the certificates below carry no IP address.

sh "$MKPKI" leaf "$PKI" apionly "DNS:api.test" inter >>"$TMP/mkpki.log" 2>&1
sh "$MKPKI" leaf "$PKI" otheronly "DNS:other.test" inter \
    >>"$TMP/mkpki.log" 2>&1
NPORT=$(free_port)
OPORT=$(free_port)
serve NAMED "$NPORT" "$PKI/apionly.pem" "$PKI/apionly.key" "$PKI/inter.pem"
serve OTHER "$OPORT" "$PKI/otheronly.pem" "$PKI/otheronly.key" \
    "$PKI/inter.pem"
if wait_port "$NPORT" && wait_port "$OPORT"; then
	run named "$PINPROXY_PIN" -s "127.0.0.1:$NPORT" -n api.test \
	    -a "$PKI/root.pem"
	check_rc "-s ADDR -n NAME verifies NAME, not ADDR (status 0)" 0 named
	check_eq "-s ADDR -n NAME prints verify: ok" "verify: ok" \
	    "$(tail -n 1 "$TMP/named.out")"
	run namedini "$PINPROXY_PIN" --ini -s "127.0.0.1:$NPORT" -n api.test \
	    -a "$PKI/root.pem"
	check_grep "--ini -s ADDR -n NAME lists NAME as the host" \
	    "^hosts = api.test$" "$TMP/namedini.out"
	run othername "$PINPROXY_PIN" -s "127.0.0.1:$OPORT" -n api.test \
	    -a "$PKI/root.pem"
	check_rc "-n NAME with a certificate for another name gives status 1" \
	    1 othername
	check_grep "a certificate for another name fails verification" \
	    "^verify: FAILED \(hostname mismatch\)$" "$TMP/othername.out"
else
	not_ok "the s_servers for -n did not start"
fi
stop "$NAMED"
stop "$OTHER"

## A host checked twice, as a pin set's host and as a forwarder's upstream,
## gets a full handshake each time: over TLS 1.2 the second would
## otherwise resume the session of the first and have no chain to show.

TPORT=$(free_port)
spawn TLS12 openssl s_server -tls1_2 -accept "127.0.0.1:$TPORT" \
    -cert "$PKI/leaf.pem" -key "$PKI/leaf.key" -cert_chain "$PKI/inter.pem" \
    -www -quiet </dev/null >>"$TMP/s_server.log" 2>&1
cat >"$TMP/twice.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PROXY_PORT
ca_cert = $PKI/root.pem
ca_key = $PKI/root.key

[pins:twice]
hosts = api.test
port = $TPORT
connect_to = 127.0.0.1:$TPORT
ca_file = $PKI/root.pem
pin = $INTER
pin = $RSA

[forward:twice]
listen = 127.0.0.1:$DEAD
upstream = api.test:$TPORT
pinset = twice
EOF
if wait_port "$TPORT"; then
	run check_twice "$PINPROXY_PIN" --check -c "$TMP/twice.conf"
	check_rc "--check of a host and a forwarder to it exits 0" 0 \
	    check_twice
	check_eq "--check places the pins of both, each from a full handshake" \
	    "2 2" "$(grep -cE "^api.test:$TPORT  .*pinset=twice  match$" \
	    "$TMP/check_twice.out") $(grep -cE "^  pin $(q "$INTER")  intermediate depth=1$" \
	    "$TMP/check_twice.out")"
else
	not_ok "the TLS 1.2 s_server did not start"
fi
stop "$TLS12"

## The appended-intermediate attack: a foreign leaf sent with the genuine
## intermediate appended. Only the verified chain counts.

APORT=$(free_port)
serve ATTACKER "$APORT" "$PKI/foreign-leaf.pem" "$PKI/foreign-leaf.key" \
    "$PKI/inter.pem"
cat "$PKI/root.pem" "$PKI/foreign-root.pem" >"$TMP/both-roots.pem"
if wait_port "$APORT"; then
	run attack "$PINPROXY_PIN" -s "api.test:$APORT" \
	    --connect-to "127.0.0.1:$APORT" -a "$TMP/both-roots.pem"
	check_eq "the verified chain leaves out the appended intermediate" \
	    "$FOREIGN_LEAF $FOREIGN_ROOT" "$(grep '^sha256/' \
	    "$TMP/attack.out" | cut -d' ' -f1 | paste -sd' ')"
	cat >"$TMP/attack.conf" <<EOF
[pins:inter-only]
hosts = api.test
port = $APORT
connect_to = 127.0.0.1:$APORT
ca_file = $TMP/both-roots.pem
pin = $INTER
pin = $RSA
EOF
	run check_attack "$PINPROXY_PIN" --check -c "$TMP/attack.conf"
	check_rc "--check fails when the pinned certificate is only appended" \
	    1 check_attack
	check_grep "--check reports the appended intermediate as MISMATCH" \
	    "pinset=inter-only  MISMATCH" "$TMP/check_attack.out"
else
	not_ok "the attacking s_server did not start"
fi
stop "$ATTACKER"

## IPv6 literal hosts.

if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
    2>/dev/null; then
	V6PORT=$(free_port)
	serve V6 "$V6PORT" "$PKI/leaf.pem" "$PKI/leaf.key" "$PKI/inter.pem" \
	    "[::1]"
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/::1/$V6PORT") 2>/dev/null && break
		t_sleep 0.05
	done
	run v6 "$PINPROXY_PIN" -s "[::1]:$V6PORT" -a "$PKI/root.pem"
	check_rc "-s [::1]:PORT verifies against the leaf's IP address" 0 v6
	check_eq "-s [::1]:PORT prints the verified chain" \
	    "$LEAF $INTER $ROOT" "$(grep '^sha256/' "$TMP/v6.out" |
	    cut -d' ' -f1 | paste -sd' ')"
	run v6ini "$PINPROXY_PIN" -s "[::1]:$V6PORT" -a "$PKI/root.pem" --ini
	check_eq "--ini names an IPv6 address's section ipv6-..., not by its last group" \
	    "[pins:ipv6-1]" "$(grep '^\[pins:' "$TMP/v6ini.out")"
	stop "$V6"
else
	skip "no IPv6 loopback"
	skip "no IPv6 loopback"
	skip "no IPv6 loopback"
fi

stop "$SERVER"

## A chain of 10 certificates verifies, one of 11 does not: the daemon's
## verdict pins against each certificate of a verified chain and records
## 10, so a longer chain must not verify (pinproxy-pin dials with the
## daemon's code), nor a pin beyond the tenth be printed.

prev=root
for i in 1 2 3 4 5 6 7 8 9; do
	sh "$MKPKI" chainca "$PKI" "d$i" "$prev" >>"$TMP/mkpki.log" 2>&1 ||
	    bail_out "mkpki.sh chainca d$i failed: $(cat "$TMP/mkpki.log")"
	prev=d$i
done
for n in 10 11; do
	issuer=d$((n - 2))
	sh "$MKPKI" leaf "$PKI" "deep$n" "DNS:localhost,IP:127.0.0.1" \
	    "$issuer" >>"$TMP/mkpki.log" 2>&1 ||
	    bail_out "mkpki.sh leaf deep$n failed: $(cat "$TMP/mkpki.log")"
	: >"$PKI/deep$n-cas.pem"
	for (( i = n - 2; i >= 1; i-- )); do
		cat "$PKI/d$i.pem" >>"$PKI/deep$n-cas.pem"
	done
	DPORT=$(free_port)
	serve DEEP "$DPORT" "$PKI/deep$n.pem" "$PKI/deep$n.key" \
	    "$PKI/deep$n-cas.pem"
	wait_port "$DPORT" || bail_out "s_server of deep$n did not start"
	run "deep$n" "$PINPROXY_PIN" -s "localhost:$DPORT" -a "$PKI/root.pem"
	echo "$RC" >"$TMP/deep$n.rc"
	run "deep$n-ini" "$PINPROXY_PIN" --ini -s "localhost:$DPORT" \
	    -a "$PKI/root.pem"
	stop "$DEEP"
done
RC=$(cat "$TMP/deep10.rc")
check_rc "a chain of 10 certificates verifies (status 0)" 0 deep10
check_eq "a chain of 10: every certificate printed, the root at depth 9" \
    "10 $ROOT" "$(grep -c '^sha256/' "$TMP/deep10.out") $(grep '^sha256/' \
    "$TMP/deep10.out" | tail -n 1 | cut -d' ' -f1)"
check_eq "a chain of 10: --ini prints its 10 pins" 10 \
    "$(grep -c '^;\{0,1\}pin = ' "$TMP/deep10-ini.out")"
RC=$(cat "$TMP/deep11.rc")
check_rc "a chain of 11 certificates does not verify (status 1)" 1 deep11
check_grep "a chain of 11: verify: FAILED (certificate chain too long)" \
    "^verify: FAILED \(certificate chain too long\)" "$TMP/deep11.out"
check_eq "a chain of 11: --ini prints no pin" 0 \
    "$(grep -c 'pin = ' "$TMP/deep11-ini.out")"

done_testing
