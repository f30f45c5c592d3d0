#!/bin/bash
# What operators rely on, end to end: the report_file written on every pin
# failure (and reopened on SIGHUP for rotation), the /metrics endpoint of
# stats_listen and its reload, log = syslog, and "make install" of every
# file of SPEC section 5. Everything runs on 127.0.0.1 and in the scratch
# directory; /dev/log is only borrowed where nothing else provides it.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

REPORT="$TMP/report.jsonl"
DEVLOG=/dev/log
DEVLOG_INODE=""

# The syslog socket is removed only when this test created it: the inode
# the listener bound must still be the one at /dev/log.
ops_cleanup()
{
	if [ -n "$DEVLOG_INODE" ] && [ -S "$DEVLOG" ] &&
	    [ "$(stat -c %i "$DEVLOG" 2>/dev/null)" = "$DEVLOG_INODE" ]; then
		rm -f "$DEVLOG"
	fi
	DEVLOG_INODE=""
}
trap 'ops_cleanup; t_cleanup' EXIT

# check_fetch DESCRIPTION STATUS NAME ARGS...: one case, the status of a
# request through proxy A.
check_fetch()
{
	local desc=$1 want=$2 name=$3 code
	shift 3
	code=$(fetch "$name" "$PA" "$@")
	check_status "$desc: $want" "$want" "$code" "$name"
}

# count FILE PATTERN: how many lines of FILE match the extended regex.
count()
{
	grep -cE -- "$2" "$1" 2>/dev/null
}

# scrape PORT FILE: GET /metrics from a stats listener into FILE; prints
# the status and Content-Type, or the curl exit status when it failed.
scrape()
{
	local rc out
	out=$(curl -sS --noproxy '' --max-time 10 -o "$2" \
	    -w '%{http_code} %{content_type}' \
	    "http://${SCRAPE_ADDR:-127.0.0.1}:$1${3:-/metrics}" 2>/dev/null)
	rc=$?
	if [ "$rc" != 0 ]; then
		echo "curl-exit-$rc"
	else
		echo "$out"
	fi
}

# metric FILE SERIES: the value of one series, e.g.
# 'pinproxy_bytes_total{direction="up"}'; a series ending in "{" sums
# every label of that metric. Empty when it is missing.
metric()
{
	awk -v s="$2" '
	    substr($0, 1, 1) == "#" { next }
	    s ~ /\{$/ { if (index($1, s) == 1) { sum += $2; found = 1 }
		next }
	    $1 == s { sum += $2; found = 1 }
	    END { if (found) printf "%d\n", sum }' "$1"
}

# listen_ports PID: the TCP ports PID listens on, sorted, one a line.
listen_ports()
{
	python3 - "$1" <<'EOF'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
ports = set()
for table in ("tcp", "tcp6"):
    with open("/proc/%s/net/%s" % (pid, table)) as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
for p in sorted(ports):
    print(p)
EOF
}

# The PKI: the default set of tests/mkpki.sh and one leaf for every host
# name the origin serves (other.test is left out: it fails verification).
make_pki multi "$(dns_sans enf1.test enf2.test rot.test mm.test ro.test \
    ro2.test good.test exp.test)" inter
pki_pin PIN_LEAF multi
pki_pin PIN_INTER inter
pki_pin PIN_ROOT root
pki_pin PIN_FROOT foreign-root
pki_pin PIN_RSA rsa

OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key"
CLOSED=$(free_port)
# No name is resolved by DNS here; a closed port makes sure of it.
echo "nameserver 127.0.0.1:$CLOSED" >"$TMP/resolv.conf"

PA=$(free_port)
SP1=$(free_port)
SP2=$(free_port)

# write_conf_a STATS: proxy A's configuration, with stats_listen = STATS.
write_conf_a()
{
	cat >"$TMP/a.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PA
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
unpinned = pass
shutdown_timeout = 2s
report_file = $REPORT
stats_listen = $1

[pins:set-enforced]
hosts = enf1.test, enf2.test, rot.test, mm.test
pin = $PIN_FROOT
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-reportonly]
hosts = ro.test, ro2.test
pin = $PIN_FROOT
pin = $PIN_RSA
enforce = no
connect_to = 127.0.0.1:$OM

[pins:set-good]
hosts = good.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-expired]
hosts = exp.test
pin = $PIN_FROOT
pin = $PIN_RSA
expires = 2001-01-01
connect_to = 127.0.0.1:$OM

[pins:set-other]
hosts = other.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM

[pins:set-refused]
hosts = refused.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$CLOSED
EOF
}

write_conf_a "127.0.0.1:$SP1"
start_pinproxy PP_A "$PA" "$TMP/a.conf" "$TMP/a.log" ||
    bail_out "pinproxy does not start with $TMP/a.conf"

# 1. report_file: one valid JSON line per pin failure, repeats suppressed.

# The repeat follows at once: on a loaded machine the checks between
# could take the 10 s that make it a new failure.
check_fetch "enforced mismatch" 502 enf1 http://enf1.test/hello
check_fetch "the same enforced mismatch again" 502 enf1-again \
    http://enf1.test/hello
check_fetch "report-only mismatch" 200 ro http://ro.test/hello
wait_count "$REPORT" 2 .

# check_reports FILE: validate every line of a report file against the
# contract; prints "hostname enforced pinset" per line, problems on
# stderr, and exits 1 on any.
check_reports()
{
	python3 - "$1" "$PIN_LEAF" "$PIN_INTER" "$PIN_ROOT" <<'EOF'
import base64, datetime, hashlib, json, subprocess, sys

path, want_chain = sys.argv[1], sys.argv[2:]
bad = []
STRINGS = ("date-time", "hostname", "noted-hostname", "pinset", "client")


def spki_pin(pem):
    """The pin of a PEM certificate, by the openssl command."""
    der = subprocess.run(
        "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der",
        shell=True, input=pem.encode(), capture_output=True)
    if der.returncode != 0 or not der.stdout:
        return None
    return "sha256/" + base64.b64encode(
        hashlib.sha256(der.stdout).digest()).decode()


with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
if not lines:
    bad.append("no line")
for n, line in enumerate(lines, 1):
    try:
        r = json.loads(line)
    except ValueError as e:
        bad.append("line %d is not JSON: %s" % (n, e))
        continue
    if not isinstance(r, dict):
        bad.append("line %d is not an object" % n)
        continue
    for k in STRINGS:
        if not isinstance(r.get(k), str) or not r[k]:
            bad.append("line %d: %s is not a string: %r" % (n, k, r.get(k)))
    try:
        datetime.datetime.strptime(r.get("date-time", ""),
                                   "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        bad.append("line %d: date-time %r" % (n, r.get("date-time")))
    port = r.get("port")
    if type(port) is not int or not 0 < port < 65536:
        bad.append("line %d: port is not a number: %r" % (n, port))
    if "effective-expiration-date" not in r or not isinstance(
            r["effective-expiration-date"], (str, type(None))):
        bad.append("line %d: effective-expiration-date" % n)
    if type(r.get("include-subdomains")) is not bool:
        bad.append("line %d: include-subdomains is not a boolean" % n)
    if type(r.get("enforced")) is not bool:
        bad.append("line %d: enforced is not a boolean" % n)
    for k in ("served-certificate-chain", "validated-certificate-chain"):
        chain = r.get(k)
        if not isinstance(chain, list) or not chain:
            bad.append("line %d: %s is not a non-empty array" % (n, k))
            continue
        pins = []
        for pem in chain:
            pin = spki_pin(pem) if isinstance(pem, str) else None
            if pin is None:
                bad.append("line %d: %s holds a certificate that "
                           "openssl x509 cannot read" % (n, k))
            pins.append(pin)
        if k.startswith("validated") and pins != want_chain:
            bad.append("line %d: validated chain %s, not %s"
                       % (n, pins, want_chain))
        if k.startswith("served") and pins != want_chain[:2]:
            bad.append("line %d: served chain %s, not %s"
                       % (n, pins, want_chain[:2]))
    known = r.get("known-pins")
    if (not isinstance(known, list) or not known or
            not all(isinstance(p, str) for p in known)):
        bad.append("line %d: known-pins is not an array of strings" % n)
    else:
        print(r.get("hostname"), json.dumps(r.get("enforced")),
              r.get("pinset"), r.get("client"), " ".join(known))
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

if check_reports "$REPORT" >"$TMP/reports.txt" 2>"$TMP/reports.err"; then
	ok "report_file: every line is a report of the contract"
else
	not_ok "report_file: every line is a report of the contract"
	diag "$(cat "$TMP/reports.err")"
fi
check_eq "report_file: one line per failure" 2 "$(wc -l <"$REPORT")"
check_grep "report_file: the enforced failure, enforced=true, its pin set" \
    '^enf1\.test true set-enforced 127\.0\.0\.1' "$TMP/reports.txt"
check_grep "report_file: the report-only failure, enforced=false" \
    '^ro\.test false set-reportonly 127\.0\.0\.1' "$TMP/reports.txt"
if grep '^enf1\.test ' "$TMP/reports.txt" | grep -qF "${PIN_FROOT#sha256/}" &&
    grep '^enf1\.test ' "$TMP/reports.txt" | grep -qF "${PIN_RSA#sha256/}"
then
	ok "report_file: known-pins hold the pins of the set"
else
	not_ok "report_file: known-pins hold the pins of the set"
	diag "$(cat "$TMP/reports.txt")"
fi

wait_count "$TMP/a.log" 2 'event=access .*host=enf1\.test'
check_eq "report_file: the repeat within 10 s is logged once" 1 \
    "$(count "$TMP/a.log" 'event=pin_mismatch .*host=enf1\.test')"
check_eq "report_file: but reported once" 2 "$(wc -l <"$REPORT")"
check_fetch "an enforced mismatch for another host" 502 enf2 \
    http://enf2.test/hello
wait_count "$REPORT" 3 .
check_eq "report_file: another host is reported" "enf2.test" \
    "$(check_reports "$REPORT" 2>/dev/null | tail -n 1 | cut -d ' ' -f 1)"

# 2. Rotation: the renamed file is left alone after SIGHUP.

mv "$REPORT" "$REPORT.1"
check "rotation: SIGHUP reloads" reload "$PP_A" "$TMP/a.log"
check_fetch "rotation: a new failure" 502 rot http://rot.test/hello
wait_count "$REPORT" 1 .
check_eq "rotation: the new report.jsonl holds it" "rot.test" \
    "$(check_reports "$REPORT" 2>/dev/null | cut -d ' ' -f 1)"
if [ -f "$REPORT.1" ] && ! grep -qF '"rot.test"' "$REPORT.1" &&
    [ "$(wc -l <"$REPORT.1")" = 3 ]; then
	ok "rotation: report.jsonl.1 is left as it was"
else
	not_ok "rotation: report.jsonl.1 is left as it was"
	diag "$(cut -c 1-120 "$REPORT.1" 2>/dev/null)"
fi

# 3. /metrics: each counter moves by what the requests did.

# wait_idle: wait up to 5 s until no client connection is open.
wait_idle()
{
	local i
	for i in $(seq 100); do
		scrape "$SP1" "$TMP/idle.prom" >/dev/null
		[ "$(metric "$TMP/idle.prom" pinproxy_connections_active)" = 0 ] &&
		    return 0
		t_sleep 0.05
	done
	return 1
}

wait_idle
check_eq "/metrics: 200 text/plain" "200 text/plain" \
    "$(scrape "$SP1" "$TMP/before.prom" | cut -d ';' -f 1)"
check_eq "/metrics: no client connection open" 0 \
    "$(metric "$TMP/before.prom" pinproxy_connections_active)"
LOGN=$(wc -l <"$TMP/a.log")

head -c 50000 /dev/urandom >"$TMP/up.bin"
px="http://127.0.0.1:$PA"
curl -sS --noproxy '' --max-time 20 -x "$px" -H 'Expect:' \
    --data-binary "@$TMP/up.bin" -o "$TMP/m-echo.body" \
    http://good.test/echo --next -x "$px" -o "$TMP/m-bytes.body" \
    http://good.test/bytes/100000 2>"$TMP/m-good.err"
check_eq "match: both requests answered on one connection" \
    "$(sha256sum <"$TMP/up.bin" | cut -d ' ' -f 1) 50000 100000" \
    "$(cat "$TMP/m-echo.body" 2>/dev/null) $(wc -c <"$TMP/m-bytes.body")"
check_fetch "mismatch" 502 m-mm1 http://mm.test/hello
check_fetch "mismatch again" 502 m-mm2 http://mm.test/hello
check_fetch "report-only" 200 m-ro http://ro2.test/hello
check_fetch "expired pin set" 200 m-exp http://exp.test/hello
check_fetch "verification failure" 502 m-other http://other.test/hello
check_fetch "upstream error" 502 m-refused http://refused.test/hello
REQUESTS=8
CONNECTIONS=7

wait_idle
t_sleep 0.1
scrape "$SP1" "$TMP/after.prom" >/dev/null
tail -n +$((LOGN + 1)) "$TMP/a.log" | grep 'event=access ' >"$TMP/access"

# delta SERIES: how much a series moved between the two scrapes.
delta()
{
	local a b
	a=$(metric "$TMP/before.prom" "$1")
	b=$(metric "$TMP/after.prom" "$1")
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "missing"
	else
		echo $((b - a))
	fi
}

check_eq "/metrics: pinproxy_connections_total +$CONNECTIONS" \
    "$CONNECTIONS" "$(delta pinproxy_connections_total)"
check_eq "/metrics: pin checks result=match +1" 1 \
    "$(delta 'pinproxy_pin_checks_total{result="match"}')"
check_eq "/metrics: pin checks result=mismatch +2" 2 \
    "$(delta 'pinproxy_pin_checks_total{result="mismatch"}')"
check_eq "/metrics: the repeated mismatch's log line is counted as left out" \
    1 "$(delta pinproxy_pin_mismatch_suppressed_total)"
check_eq "/metrics: pin checks result=report_only +1" 1 \
    "$(delta 'pinproxy_pin_checks_total{result="report_only"}')"
check_eq "/metrics: pin checks result=expired +1" 1 \
    "$(delta 'pinproxy_pin_checks_total{result="expired"}')"
check_eq "/metrics: pinproxy_verify_failures_total +1" 1 \
    "$(delta pinproxy_verify_failures_total)"
check_eq "/metrics: pinproxy_upstream_errors_total +1" 1 \
    "$(delta pinproxy_upstream_errors_total)"
check_eq "/metrics: the upstream errors by kind +1" 1 \
    "$(delta 'pinproxy_upstream_errors_by_kind_total{')"
check_eq "/metrics: the upstream error is error=\"connect-failed\"" 1 \
    "$(delta 'pinproxy_upstream_errors_by_kind_total{error="connect-failed"}')"
check_eq "/metrics: an access line for every request" "$REQUESTS" \
    "$(wc -l <"$TMP/access")"
for dir in up down; do
	sum=$(sed -n "s/.* bytes_$dir=\([0-9]*\).*/\1/p" "$TMP/access" |
	    awk '{ s += $1 } END { printf "%d\n", s }')
	check_eq "/metrics: bytes direction=$dir moves by the access lines'" \
	    "$sum" "$(delta "pinproxy_bytes_total{direction=\"$dir\"}")"
done
check "/metrics: bytes up counts the 50000-byte body" \
    test "$(delta 'pinproxy_bytes_total{direction="up"}')" -ge 50000
check "/metrics: bytes down counts the 100000-byte body" \
    test "$(delta 'pinproxy_bytes_total{direction="down"}')" -ge 100000
check_eq "/metrics: connections_active is back to 0" 0 \
    "$(metric "$TMP/after.prom" pinproxy_connections_active)"
# (The one that carried the POST's body served its client only, and went
# with it.)
check_eq "/metrics: the pool keeps the two others that answered" 2 \
    "$(delta pinproxy_upstream_pool_idle)"
check_eq "/metrics: no upstream in use once every request is done" 0 \
    "$(metric "$TMP/after.prom" pinproxy_upstream_pool_in_use)"
check_eq "stats: GET /other is 404" 404 \
    "$(scrape "$SP1" "$TMP/other.out" /other | cut -d ' ' -f 1)"
code=$(curl -sS --noproxy '' --max-time 10 -o /dev/null -w '%{http_code}' \
    -d x "http://127.0.0.1:$SP1/metrics" 2>/dev/null)
check_eq "stats: POST /metrics is 405" 405 "$code"
code=$(curl -sS --noproxy '' --max-time 10 -o "$TMP/pmetrics.body" \
    -w '%{http_code}' "http://127.0.0.1:$PA/metrics" 2>/dev/null)
if [ "$code" != 200 ] &&
    ! grep -q pinproxy_connections_total "$TMP/pmetrics.body"; then
	ok "the proxy listener does not serve /metrics ($code)"
else
	not_ok "the proxy listener does not serve /metrics ($code)"
fi

# 4. A reload moves the stats listener, or closes it.

# A reload whose new stats listener cannot bind (the proxy's own port)
# and that names a new report_file fails, and the daemon serves on.
write_conf_a "127.0.0.1:$PA"
sed -i "s|^report_file = .*|report_file = $TMP/other-report.jsonl|" \
    "$TMP/a.conf"
if reload "$PP_A" "$TMP/a.log"; then
	not_ok "stats_listen that cannot bind, new report_file: reload fails"
else
	ok "stats_listen that cannot bind, new report_file: reload fails"
fi
check "stats_listen that cannot bind: pinproxy still runs" kill -0 "$PP_A"
check "the failed reload left no new report_file behind" \
    test ! -e "$TMP/other-report.jsonl"
# One that was there before stays.
: >"$TMP/other-report.jsonl"
reload "$PP_A" "$TMP/a.log"
check "the failed reload leaves a report_file that was there" \
    test -e "$TMP/other-report.jsonl"
check_eq "stats_listen that cannot bind: the old stats port still serves" \
    "200 text/plain" "$(scrape "$SP1" "$TMP/sp1-kept.prom" | cut -d ';' -f 1)"

# A report_file another user owns, or that every user may write, is
# refused: that user could read the reports or forge lines in them.
if [ "$(id -u)" = 0 ]; then
	: >"$TMP/foreign.jsonl"
	chown 65534 "$TMP/foreign.jsonl"
	: >"$TMP/open.jsonl"
	chmod 0666 "$TMP/open.jsonl"
	: >"$TMP/linked-target"
	ln "$TMP/linked-target" "$TMP/linked.jsonl"
	# Directories through which another user could put a file of
	# theirs in its place: world-writable and not sticky, owned by that
	# user, or reached through a link of theirs.
	mkdir -m 0777 "$TMP/wdir"
	mkdir "$TMP/udir" && chown 65534 "$TMP/udir"
	mkdir "$TMP/ldir-target"
	ln -s "$TMP/ldir-target" "$TMP/ldir"
	chown -h 65534 "$TMP/ldir"
	for f in foreign open linked wdir/r udir/r ldir/r; do
		write_conf_a "127.0.0.1:$SP1"
		sed -i "s|^report_file = .*|report_file = $TMP/$f.jsonl|" \
		    "$TMP/a.conf"
		if reload "$PP_A" "$TMP/a.log"; then
			not_ok "a report_file of another user ($f): reload fails"
		else
			ok "a report_file of another user ($f): reload fails"
		fi
	done
	check_log "report_file owned by another user: the log says whose" \
	    "$TMP/a.log" 'event=reload_failed' \
	    "$(q "foreign.jsonl is owned by uid 65534")"
	check_log "report_file writable by every user: the log says so" \
	    "$TMP/a.log" 'event=reload_failed' \
	    "$(q "open.jsonl is writable by every user (mode 0666)")"
	check_log "report_file with another name elsewhere: the log says so" \
	    "$TMP/a.log" 'event=reload_failed' \
	    "$(q "linked.jsonl has 2 links")"
	check_log "report_file in a directory all may write: the log says so" \
	    "$TMP/a.log" 'event=reload_failed' \
	    "$(q "the directory $TMP/wdir is writable by every user and not sticky")"
	check_log "report_file in another user's directory: the log says so" \
	    "$TMP/a.log" 'event=reload_failed' \
	    "$(q "the directory $TMP/udir is owned by uid 65534")"
	check_log "report_file through another user's link: the log says so" \
	    "$TMP/a.log" 'event=reload_failed' \
	    "$(q "the link $TMP/ldir is owned by uid 65534")"
	check "no report_file was made in those directories" \
	    test ! -e "$TMP/wdir/r.jsonl" -a ! -e "$TMP/udir/r.jsonl" -a \
	    ! -e "$TMP/ldir-target/r.jsonl"
	# A sticky one (as /tmp is) is fine: none can replace another's file.
	mkdir -m 1777 "$TMP/sdir"
	write_conf_a "127.0.0.1:$SP1"
	sed -i "s|^report_file = .*|report_file = $TMP/sdir/r.jsonl|" \
	    "$TMP/a.conf"
	check "report_file in a sticky directory all may write: reloads" \
	    reload "$PP_A" "$TMP/a.log"
	sed -i "s|^report_file = .*|report_file = $TMP/open.jsonl|" "$TMP/a.conf"
	run foreign "$PINPROXY" -t -c "$TMP/a.conf"
	check_rc "-t refuses a report_file writable by every user" 1 foreign
	check "pinproxy still runs after the refused report_files" \
	    kill -0 "$PP_A"
else
	for i in $(seq 16); do
		skip "a report_file of another user: needs root to make one"
	done
fi

# A start that fails after opening a new report_file (its listen port
# taken) leaves no new file behind, nor a new CA (whose files it would
# otherwise create).
write_conf_a ""
sed -e "s|^report_file = .*|report_file = $TMP/start-report.jsonl|" \
    -e "s|^ca_cert = .*|ca_cert = $TMP/start-ca.pem|" \
    -e "s|^ca_key = .*|ca_key = $TMP/start-ca.key|" \
    "$TMP/a.conf" >"$TMP/busy.conf"
run busy timeout 10 "$PINPROXY" -c "$TMP/busy.conf"
check_rc "a start whose port is taken fails" 1 busy
check "the failed start left no new report_file behind" \
    test ! -e "$TMP/start-report.jsonl"
check "the failed start left no new CA behind" \
    test ! -e "$TMP/start-ca.pem" -a ! -e "$TMP/start-ca.key"
check_eq "the failed start logged no ca_created" 0 \
    "$(grep -c 'event=ca_created' "$TMP/busy.err")"
# Its error names the file and line of the address it cannot listen on,
# and so does one for stats_listen or a forwarder's listen.
check_grep "the failed start names the listen key's FILE:LINE" \
    "event=start_failed msg=\"$TMP/busy.conf:2: cannot listen on 127.0.0.1:$PA: " \
    "$TMP/busy.err"
BUSY_FREE=$(free_port)
sed -e "s|^listen = .*|listen = 127.0.0.1:$BUSY_FREE|" \
    -e "s|^report_file = .*|report_file =|" \
    -e "s|^stats_listen = .*|stats_listen = 127.0.0.1:$SP1|" \
    "$TMP/a.conf" >"$TMP/busy-stats.conf"
run busy-stats timeout 10 "$PINPROXY" -c "$TMP/busy-stats.conf"
check_grep "a stats_listen port taken: the error names its FILE:LINE" \
    "event=start_failed msg=\"$TMP/busy-stats.conf:9: cannot listen on 127.0.0.1:$SP1: " \
    "$TMP/busy-stats.err"
sed -e "s|^stats_listen = .*|stats_listen =|" "$TMP/busy-stats.conf" \
    >"$TMP/busy-fwd.conf"
printf '[forward:busy]\nlisten = 127.0.0.1:%s\nupstream = 127.0.0.1:%s\npinset = set-good\n' \
    "$PA" "$OM" >>"$TMP/busy-fwd.conf"
run busy-fwd timeout 10 "$PINPROXY" -c "$TMP/busy-fwd.conf"
check_grep "a forwarder's port taken: the error names its FILE:LINE" \
    "event=start_failed msg=\"$TMP/busy-fwd.conf:$(grep -n '^listen = 127.0.0.1:'"$PA" "$TMP/busy-fwd.conf" | cut -d: -f1): cannot listen on 127.0.0.1:$PA: " \
    "$TMP/busy-fwd.err"

scrape "$SP1" "$TMP/pre-reload.prom" >/dev/null
write_conf_a "127.0.0.1:$SP2"
check "stats_listen changed: SIGHUP reloads" reload "$PP_A" "$TMP/a.log"
check_eq "stats_listen changed: the new port serves /metrics" \
    "200 text/plain" "$(scrape "$SP2" "$TMP/sp2.prom" | cut -d ';' -f 1)"
check_eq "stats_listen changed: the counters carry over" \
    "$(metric "$TMP/pre-reload.prom" pinproxy_connections_total)" \
    "$(metric "$TMP/sp2.prom" pinproxy_connections_total)"
check_eq "stats_listen changed: the old port refuses" "curl-exit-7" \
    "$(scrape "$SP1" "$TMP/sp1.out")"
# The same port on the wildcard address, and back: the old listener
# holds the port, so it closes first. A reload that fails after that
# (an observe_file it cannot open) opens it again.
write_conf_a "0.0.0.0:$SP2"
check "stats_listen 127.0.0.1 -> 0.0.0.0, one port: SIGHUP reloads" \
    reload "$PP_A" "$TMP/a.log"
check_eq "... the wildcard serves /metrics (at 127.0.0.2)" "200 text/plain" \
    "$(SCRAPE_ADDR=127.0.0.2 scrape "$SP2" "$TMP/sp2w.prom" |
    cut -d ';' -f 1)"
write_conf_a "127.0.0.1:$SP2"
sed -i "/^stats_listen = /a observe_file = $TMP/no-such-dir/observed.jsonl" \
    "$TMP/a.conf"
if reload "$PP_A" "$TMP/a.log"; then
	not_ok "... then to 127.0.0.1 with a bad observe_file: reload fails"
else
	ok "... then to 127.0.0.1 with a bad observe_file: reload fails"
fi
check_eq "... the wildcard listener serves again" "200 text/plain" \
    "$(SCRAPE_ADDR=127.0.0.2 scrape "$SP2" "$TMP/sp2w2.prom" |
    cut -d ';' -f 1)"
write_conf_a "127.0.0.1:$SP2"
check "stats_listen 0.0.0.0 -> 127.0.0.1, one port: SIGHUP reloads" \
    reload "$PP_A" "$TMP/a.log"
check_eq "... 127.0.0.1 serves /metrics" "200 text/plain" \
    "$(scrape "$SP2" "$TMP/sp2b.prom" | cut -d ';' -f 1)"
check_eq "... 127.0.0.2 no longer" "curl-exit-7" \
    "$(SCRAPE_ADDR=127.0.0.2 scrape "$SP2" "$TMP/sp2w3.out")"
write_conf_a ""
check "stats_listen removed: SIGHUP reloads" reload "$PP_A" "$TMP/a.log"
check_eq "stats_listen removed: its port refuses" "curl-exit-7" \
    "$(scrape "$SP2" "$TMP/sp2.out")"
check_eq "stats_listen removed: pinproxy listens on the proxy port only" \
    "$PA" "$(listen_ports "$PP_A" | tr '\n' ' ' | sed 's/ $//')"
stop_pinproxy "$PP_A" "$TMP/a.log" "pinproxy with report_file and stats:"

# 5. log = syslog, to a /dev/log of our own.

SYSLOG_LISTENER='
import os, signal, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
inode = os.stat(path).st_ino
def bye(*_):
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", inode, flush=True)
with open(out, "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
'
why=""
if [ -e "$DEVLOG" ]; then
	why="log = syslog: $DEVLOG exists and belongs to the system's syslog"
elif [ ! -w "$(dirname "$DEVLOG")" ]; then
	why="log = syslog: cannot create $DEVLOG (not root)"
fi
if [ -z "$why" ]; then
	spawn SYSLOGD python3 -c "$SYSLOG_LISTENER" "$DEVLOG" \
	    "$TMP/syslog.txt" >"$TMP/syslogd.out" 2>&1
	if wait_ready "$TMP/syslogd.out"; then
		DEVLOG_INODE=$(sed -n 's/^ready //p' "$TMP/syslogd.out")
	else
		why="log = syslog: cannot bind $DEVLOG:"
		why="$why $(tail -n 1 "$TMP/syslogd.out")"
		stop "$SYSLOGD"
	fi
fi
if [ -n "$why" ]; then
	skip "$why"
	skip "$why"
else
	PS=$(free_port)
	sed -e "s/^listen = .*/listen = 127.0.0.1:$PS/" \
	    -e "s/^stats_listen = .*/log = syslog/" \
	    -e "/^report_file = /d" "$TMP/a.conf" >"$TMP/s.conf"
	start_pinproxy PP_S "$PS" "$TMP/s.conf" "$TMP/s.log"
	if wait_count "$TMP/syslog.txt" 1 "event=started" &&
	    grep -qE "pinproxy\\[$PP_S\\]: level=info event=started( |$)" \
	    "$TMP/syslog.txt"; then
		ok "log = syslog: event=started arrives tagged pinproxy[$PP_S]"
	else
		not_ok "log = syslog: event=started arrives tagged pinproxy[$PP_S]"
		diag "$DEVLOG got: $(cat "$TMP/syslog.txt" 2>/dev/null)"
		diag "stderr: $(tail -n 5 "$TMP/s.log")"
	fi
	stop_pinproxy "$PP_S" "$TMP/s.log" "pinproxy with log = syslog:"
	stop "$SYSLOGD"
	ops_cleanup
fi

# 6. make install and make uninstall with DESTDIR.

INST="$TMP/inst"
# A make of its own: not the jobserver or the variables of a make check
# that may be running this test.
imake()
{
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "${MAKE:-make}" -s \
	    --no-print-directory -C "$top_builddir" "$@" DESTDIR="$INST"
}

if imake install >"$TMP/install.log" 2>&1; then
	ok "make install DESTDIR=... succeeds"
else
	not_ok "make install DESTDIR=... succeeds"
	diag "$(tail -n 20 "$TMP/install.log")"
fi
# configure --without-systemdsystemunitdir installs no unit.
if grep -qx 'systemdsystemunitdir = no' "$top_builddir/Makefile"; then
	unit_file=
else
	unit_file=systemd/system/pinproxy.service
fi
for f in sbin/pinproxy bin/pinproxy-pin etc/pinproxy/pinproxy.conf \
    etc/pinproxy/pinproxy-redirect.nft \
    man8/pinproxy.8 man5/pinproxy.conf.5 man1/pinproxy-pin.1 \
    $unit_file; do
	found=$(cd "$INST" 2>/dev/null && find . -path "*/$f" -type f)
	if [ "$(printf '%s\n' "$found" | grep -c .)" = 1 ]; then
		ok "make install: $f"
	else
		not_ok "make install: $f"
		diag "found: ${found:-nothing}"
	fi
done
sbin=$(cd "$INST" 2>/dev/null && find . -path '*/sbin/pinproxy' -type f |
    head -n 1)
unit=$(cd "$INST" 2>/dev/null &&
    find . -path '*/systemd/system/pinproxy.service' -type f | head -n 1)
if [ -n "$unit_file" ]; then
	exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$INST/$unit" \
	    2>/dev/null)
	check_eq "make install: ExecStart= names the installed pinproxy" \
	    "${sbin#.}" "$exec_start"
else
	skip "make install: ExecStart=: configured without a unit"
fi
check "make install: the installed pinproxy runs" \
    sh -c '"$1" -V >/dev/null 2>&1' sh "$INST/${sbin#./}"
conf=$(cd "$INST" 2>/dev/null &&
    find . -path '*/etc/pinproxy/pinproxy.conf' -type f | head -n 1)
conf="$INST/${conf#./}"
check "make install: the sample configuration is the one built" \
    cmp -s "$top_builddir/etc/pinproxy.conf" "$conf"

# A second make install over an edited configuration keeps it and puts
# the sample beside it; make uninstall removes only unchanged files.
echo "; edited after install" >>"$conf"
cp "$conf" "$TMP/edited.conf"
if imake install >"$TMP/install2.log" 2>&1; then
	ok "make install over an edited configuration succeeds"
else
	not_ok "make install over an edited configuration succeeds"
	diag "$(tail -n 20 "$TMP/install2.log")"
fi
check "make install again: the edited pinproxy.conf is kept" \
    cmp -s "$TMP/edited.conf" "$conf"
check "make install again: the sample is pinproxy.conf.dist" \
    cmp -s "$top_builddir/etc/pinproxy.conf" "$conf.dist"
check_grep "make install again: a note names pinproxy.conf.dist" \
    "^NOTE: .*pinproxy.conf differs .*pinproxy.conf.dist\$" \
    "$TMP/install2.log"
check "make install again: no .dist for the unchanged pinproxy-redirect.nft" \
    test ! -e "${conf%/*}/pinproxy-redirect.nft.dist"
if imake uninstall >"$TMP/uninstall.log" 2>&1; then
	ok "make uninstall DESTDIR=... succeeds"
else
	not_ok "make uninstall DESTDIR=... succeeds"
	diag "$(tail -n 20 "$TMP/uninstall.log")"
fi
check "make uninstall: the edited pinproxy.conf is kept" \
    cmp -s "$TMP/edited.conf" "$conf"
rm -f "$conf"
left=$(find "$INST" ! -type d 2>/dev/null)
check_eq "make uninstall: no other file is left" "" "$left"

done_testing
