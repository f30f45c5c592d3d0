#!/bin/bash
# pinproxy -t against golden files: each tests/conf/NAME.conf is checked
# from inside tests/conf, and everything printed (stderr and stdout, then
# "exit=N") must equal NAME.expected. Also the command-line options.
# REGEN=1 rewrites the expected files instead; review every change by hand,
# since the expected files are the specification of the messages.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

CONFDIR="$top_srcdir/tests/conf"

# golden NAME: run pinproxy -t on NAME.conf and compare with NAME.expected.
golden()
{
	local name=$1 out="$TMP/$1.out"

	(cd "$CONFDIR" && "$PINPROXY" -t -c "$name.conf" >"$out" 2>&1
	echo "exit=$?" >>"$out")
	if [ -n "${REGEN:-}" ]; then
		cp "$out" "$CONFDIR/$name.expected"
		ok "$name: expected output regenerated"
	elif [ ! -f "$CONFDIR/$name.expected" ]; then
		not_ok "$name: no $name.expected (REGEN=1 writes it)"
		diag "$(cat "$out")"
	elif diff -u "$CONFDIR/$name.expected" "$out" >"$TMP/$name.diff"; then
		ok "$name: pinproxy -t output matches"
	else
		not_ok "$name: pinproxy -t output matches"
		diag "$(cat "$TMP/$name.diff")"
	fi
}

n=0
for conf in "$CONFDIR"/*.conf; do
	golden "$(basename "$conf" .conf)"
	n=$((n + 1))
done
check "at least 15 golden files were checked" [ "$n" -ge 15 ]

run version "$PINPROXY" -V
check_rc "-V exits 0" 0 version
check_grep "-V prints the version" '^pinproxy [0-9]+\.[0-9]+' \
    "$TMP/version.out"
check_grep "-V prints the libevent version" '^libevent [0-9]' \
    "$TMP/version.out"
check_grep "-V prints the OpenSSL version" '^OpenSSL [0-9]' \
    "$TMP/version.out"

run help "$PINPROXY" -h
check_rc "-h exits 0" 0 help
check_grep "-h prints the usage on stdout" '^usage: pinproxy ' \
    "$TMP/help.out"
check_grep "-h names every option" '\[-c FILE\] \[-t\] \[-d\] \[-V\] \[-h\]' \
    "$TMP/help.out"

run badopt "$PINPROXY" -x
check_rc "an unknown option exits 2" 2 badopt
check_grep "an unknown option prints the usage on stderr" '^usage: pinproxy ' \
    "$TMP/badopt.err"
check_eq "an unknown option prints nothing on stdout" "" \
    "$(cat "$TMP/badopt.out")"

run badarg "$PINPROXY" -t -c "$CONFDIR/valid-full.conf" extra
check_rc "an extra argument exits 2" 2 badarg
check_grep "an extra argument is named" 'unexpected argument: extra' \
    "$TMP/badarg.err"

run noarg "$PINPROXY" -c
check_rc "-c without a file exits 2" 2 noarg

# upstream_mark needs CAP_NET_ADMIN (or CAP_NET_RAW): -t says so, with the
# key's line, where the start would fail (the unit runs -t first).
printf '[proxy]\nca_cert = %s\nca_key = %s\nupstream_mark = 1\n' \
    "$TMP/mark-ca.pem" "$TMP/mark-ca.key" >"$TMP/mark.conf"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
	run mark setpriv --bounding-set=-net_admin,-net_raw \
	    "$PINPROXY" -t -c "$TMP/mark.conf"
	check_rc "-t without CAP_NET_ADMIN and upstream_mark set exits 1" 1 mark
	check_grep "-t names the upstream_mark line" \
	    "^$TMP/mark.conf:4: upstream_mark = 1: cannot set SO_MARK" \
	    "$TMP/mark.err"
else
	skip "-t without CAP_NET_ADMIN: needs root and setpriv"
	skip "-t without CAP_NET_ADMIN: needs root and setpriv"
fi

# The sample configuration says to remove the ';' at the start of its
# example lines to use them: with every one removed (the CA files in the
# scratch directory) it is a valid configuration.
sed -e 's/^;//' -e "s|^ca_cert = [^ ]*|ca_cert = $TMP/sample-ca.pem|" \
    -e "s|^ca_key = [^ ]*|ca_key = $TMP/sample-ca.key|" \
    "$top_builddir/etc/pinproxy.conf" >"$TMP/sample.conf"
run sample "$PINPROXY" -t -c "$TMP/sample.conf"
check_rc "the sample configuration with its examples in use is valid" 0 \
    sample

run missing "$PINPROXY" -t -c "$TMP/missing.conf"
check_rc "-t on a missing file exits 1" 1 missing
check_grep "-t on a missing file names it" \
    "^$TMP/missing.conf: cannot open: No such file or directory\$" \
    "$TMP/missing.err"
check_eq "-t on a missing file prints nothing on stdout" "" \
    "$(cat "$TMP/missing.out")"

run startmissing "$PINPROXY" -c "$TMP/missing.conf"
check_rc "starting with a missing file exits 1" 1 startmissing
check_grep "starting with a missing file names it" \
    "^$TMP/missing.conf: cannot open: No such file or directory\$" \
    "$TMP/startmissing.err"

run startbad "$PINPROXY" -c "$CONFDIR/many-errors.conf"
check_rc "starting with a bad file exits 1" 1 startbad
check_grep "starting with a bad file names the file and line" \
    "^$CONFDIR/many-errors.conf:[0-9]+: " "$TMP/startbad.err"

run abspath "$PINPROXY" -t -c "$CONFDIR/warnings.conf"
check_rc "-t with warnings only exits 0" 0 abspath
check_grep "messages name the file as given" \
    "^$CONFDIR/warnings.conf:[0-9]+: warning: " "$TMP/abspath.err"
check_grep "the summary names the file as given" \
    "^$CONFDIR/warnings.conf: configuration OK \\([0-9]+ pin sets?\\)\$" \
    "$TMP/abspath.out"

# The files the proxy appends to are checked as the start opens them: a
# symbolic link, or a directory that does not exist, fails -t too.
ln -s "$TMP/elsewhere.jsonl" "$TMP/link.jsonl"
printf '[proxy]\nreport_file = %s\n' "$TMP/link.jsonl" >"$TMP/rlink.conf"
printf '[proxy]\nobserve_file = %s\n' "$TMP/no/such/dir/o.jsonl" \
    >"$TMP/odir.conf"
run rlink "$PINPROXY" -t -c "$TMP/rlink.conf"
check_rc "-t, report_file a symbolic link: exit 1" 1 rlink
check_grep "-t, report_file a symbolic link: the file and why" \
    "rlink\.conf:2: report_file .*link\.jsonl is a symbolic link" \
    "$TMP/rlink.err"
run odir "$PINPROXY" -t -c "$TMP/odir.conf"
check_rc "-t, observe_file in a missing directory: exit 1" 1 odir
check_grep "-t, observe_file in a missing directory: the file and why" \
    "odir\.conf:2: observe_file .*o\.jsonl: its directory .*/no/such/dir does not exist" \
    "$TMP/odir.err"

# A directory pinproxy may not write in fails -t as the start would:
# report_file there, or the CA's files to create there. Root may write
# anywhere, so as root the checks run as nobody.
U=$TMP/unwritable
# (rw is sticky: a CA's directory any user may write to otherwise is
# refused for itself.)
mkdir -p "$U/ro" "$U/rw" && chmod 555 "$U/ro" && chmod 1777 "$U/rw" &&
    chmod 755 "$U" && chmod 711 "$TMP"
printf '[proxy]\nreport_file = %s\nca_cert = %s\nca_key = %s\n' \
    "$U/ro/r.jsonl" "$U/rw/ca.pem" "$U/rw/ca.key" >"$U/rro.conf"
printf '[proxy]\nca_cert = %s\nca_key = %s\n' "$U/ro/ca.pem" "$U/ro/ca.key" \
    >"$U/cro.conf"
printf '[proxy]\nca_cert = %s\nca_key = %s\n' "$U/ro/d/ca.pem" \
    "$U/ro/d/ca.key" >"$U/dro.conf"
chmod 644 "$U"/*.conf
unprivileged=
if [ "$(id -u)" -ne 0 ]; then
	unprivileged=" "
elif setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$PINPROXY" -V >/dev/null 2>&1; then
	unprivileged="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
if [ -z "$unprivileged" ]; then
	for c in "report_file" "the CA" "the CA's new directory"; do
		skip "-t, $c in a directory it cannot write: as root, and" \
		    "nobody cannot run $PINPROXY (its path not open to all)"
	done
else
	for c in rro:"report_file" cro:"the CA" dro:"the CA's new directory"
	do
		# shellcheck disable=SC2086
		run "${c%%:*}" $unprivileged "$PINPROXY" -t -c "$U/${c%%:*}.conf"
		check_grep "-t, ${c#*:} in a directory it cannot write: the file and why" \
		    "cannot create it in $U/ro: Permission denied" \
		    "$TMP/${c%%:*}.err"
	done
fi

# One file may hold the CA's certificate and key (ca_cert = ca_key);
# missing, it cannot be made (a new CA is two files): -t says so.
mkdir -p "$TMP/comb"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/comb/k.pem" -out "$TMP/comb/c.pem" -subj /CN=comb \
    -days 30 -addext basicConstraints=critical,CA:true \
    -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
(umask 077 && cat "$TMP/comb/c.pem" "$TMP/comb/k.pem" >"$TMP/comb/ca.pem")
printf '[proxy]\nca_cert = %s\nca_key = %s\n' "$TMP/comb/ca.pem" \
    "$TMP/comb/ca.pem" >"$TMP/comb.conf"
run comb "$PINPROXY" -t -c "$TMP/comb.conf"
check_rc "-t, ca_cert and ca_key one file holding both: OK" 0 comb
printf '[proxy]\nca_cert = %s\nca_key = %s\n' "$TMP/comb/none.pem" \
    "$TMP/comb/none.pem" >"$TMP/combnone.conf"
run combnone "$PINPROXY" -t -c "$TMP/combnone.conf"
check_rc "-t, ca_cert and ca_key one file that does not exist: exit 1" 1 \
    combnone
check_grep "-t, ca_cert and ca_key one missing file: why" \
    "combnone\.conf:2: interception CA: ca_cert and ca_key name one file" \
    "$TMP/combnone.err"

# Nor may observe_file append to the trust file.
printf '[proxy]\ntrust = %s\nobserve_file = %s\n' "$TMP/comb/c.pem" \
    "$TMP/comb/c.pem" >"$TMP/otrust.conf"
run otrust "$PINPROXY" -t -c "$TMP/otrust.conf"
check_grep "-t, observe_file the trust file: refused at its line" \
    "otrust\.conf:3: observe_file .*c\.pem is also trust: each file has one use" \
    "$TMP/otrust.err"

# check_quoted NAME WHAT BYTES PATTERN: pinproxy -t on a listen value of
# BYTES (printf's) quotes WHAT as \xHH, as PATTERN, and prints no byte
# that is not printable ASCII.
check_quoted()
{
	printf '[proxy]\nlisten = %b\n' "$3" >"$TMP/$1.conf"
	run "$1" "$PINPROXY" -t -c "$TMP/$1.conf"
	check_grep "-t quotes $2 as \\xHH" "$4" "$TMP/$1.err"
	check "-t prints no $2" \
	    test "$(tr -d '\n' <"$TMP/$1.err" | LC_ALL=C tr -d '[:print:]' |
	    wc -c)" -eq 0
}
# A value's control bytes: an escape sequence in the file never reaches
# the terminal. Nor do bytes from 0x80: 0x9b is CSI to a terminal that
# reads 8-bit controls, as UTF-8's c2 9b is to some; an e-acute (c3 a9)
# goes with them.
check_quoted esc "control bytes" '\033[31mred\001' \
    'listen: "\\x1b\[31mred\\x01"'
check_quoted esc8 "bytes from 0x80" '\0233[31m\0302\0233[32m\0303\0251' \
    'listen: "\\x9b\[31m\\xc2\\x9b\[32m\\xc3\\xa9"'

# A file of garbage makes an error per line: the first 1000 are told, the
# rest counted, so that neither memory nor the terminal fill up.
{
	echo '[proxy]'
	for (( i = 0; i < 1500; i++ )); do
		echo "bogus_$i = 1"
	done
} >"$TMP/garbage.conf"
run garbage "$PINPROXY" -t -c "$TMP/garbage.conf"
check_rc "-t on 1500 bad lines exits 1" 1 garbage
check_eq "-t on 1500 bad lines: 1000 told, then how many more" \
    "1001 (and 500 more messages, left out)" \
    "$(wc -l <"$TMP/garbage.err") $(tail -n 1 "$TMP/garbage.err")"

# Without -c, a missing default file is no error: the built-in defaults
# (those of the sample configuration) apply; a file named with -c must
# exist.
default=$(sed -n 's/.*(default: \(.*\))$/\1/p' "$TMP/help.out")
if [ -z "$default" ] || [ -e "$default" ]; then
	skip "the default configuration file ${default:-?} exists here"
else
	run nodefault "$PINPROXY" -t
	check_eq "-t without -c or the default file: the built-in defaults, \
exit 0" "0 $default: not found; the built-in defaults apply" \
	    "$RC $(head -n 1 "$TMP/nodefault.out")"
fi
run nofile "$PINPROXY" -t -c "$TMP/none.conf"
check_rc "-t -c of a missing file: exit 1" 1 nofile

done_testing
