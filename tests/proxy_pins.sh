#!/bin/bash
# Pin scopes, require = leaf+ca and candidate pins end to end: a server
# rotates its leaf key (a second leaf for the same names, issued by the
# same intermediate) and pinproxy must judge each pin at its depth in the
# verified chain, announce a candidate once per generation and never let a
# candidate alone grant access.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

clear_of_midnight 90

FAILED_START_STOPS_WAITS=yes

HOSTS="ca.test leafwrong.test leaf.test caleaf.test both.test half.test \
halfro.test rotated.test rotated2.test candonly.test candro.test"
# old: the key the server has; new: the key it rotates to.
make_pki old "$(dns_sans $HOSTS '*.wild.test')" inter \
    new "$(dns_sans $HOSTS)" inter

pki_pin PIN_OLD old
pki_pin PIN_NEW new
pki_pin PIN_INTER inter
pki_pin PIN_FROOT foreign-root

OO=$(free_port)
start_origin O_OLD "$OO" "$TMP/oo.log" --cert "$PKI/old-chain.pem" \
    --key "$PKI/old.key"
ON=$(free_port)
start_origin O_NEW "$ON" "$TMP/on.log" --cert "$PKI/new-chain.pem" \
    --key "$PKI/new.key"

PA=$(free_port)
SS=$(free_port)
REPORT=$TMP/report.jsonl
cat >"$TMP/a.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PA
ca_cert = $TMP/ca-a.pem
ca_key = $TMP/ca-a.key
trust = $PKI/root.pem
unpinned = block
stats_listen = 127.0.0.1:$SS
report_file = $REPORT
shutdown_timeout = 2s

[pins:scope-ca]
hosts = ca.test
pin = ca:$PIN_INTER
pin = $PIN_FROOT
connect_to = 127.0.0.1:$OO

[pins:scope-leaf-wrong]
hosts = leafwrong.test
pin = leaf:$PIN_INTER
pin = $PIN_FROOT
connect_to = 127.0.0.1:$OO

[pins:scope-leaf]
hosts = leaf.test
pin = leaf:pin-sha256="${PIN_OLD#sha256/}"
pin = $PIN_FROOT
connect_to = 127.0.0.1:$OO

[pins:scope-ca-leafkey]
hosts = caleaf.test
pin = ca:$PIN_OLD
pin = $PIN_FROOT
connect_to = 127.0.0.1:$OO

[pins:both]
hosts = both.test
require = leaf+ca
pin = leaf:$PIN_OLD
pin = ca:$PIN_INTER
connect_to = 127.0.0.1:$OO

[pins:half]
hosts = half.test
require = leaf+ca
pin = leaf:$PIN_OLD
pin = ca:$PIN_FROOT
connect_to = 127.0.0.1:$OO

[pins:half-ro]
hosts = halfro.test
require = leaf+ca
pin = leaf:$PIN_OLD
pin = ca:$PIN_FROOT
enforce = no
connect_to = 127.0.0.1:$OO

[pins:rotated]
hosts = rotated.test, rotated2.test
pin = ca:$PIN_INTER
pin = $PIN_FROOT
candidate = $PIN_NEW
connect_to = 127.0.0.1:$ON

[pins:candonly]
hosts = candonly.test
pin = $PIN_OLD
pin = $PIN_FROOT
candidate = $PIN_NEW
connect_to = 127.0.0.1:$ON

[pins:wild]
hosts = *.wild.test
pin = leaf:$PIN_INTER
pin = $PIN_FROOT
connect_to = 127.0.0.1:$OO

[pins:cand-ro]
hosts = candro.test
pin = $PIN_OLD
pin = $PIN_FROOT
candidate = $PIN_NEW
enforce = no
connect_to = 127.0.0.1:$ON
EOF
start_pinproxy P_A "$PA" "$TMP/a.conf" "$TMP/a.log" ||
    bail_out "pinproxy did not start"

# get NAME HOST: the status of GET http://HOST/hello through instance A.
get()
{
	fetch "$1" "$PA" "http://$2/hello"
}

# 1. Scopes: ca: matches only a CA of the verified chain, leaf: only depth 0.
check_status "pin = ca:<intermediate> passes" 200 "$(get ca ca.test)" ca
check_status "pin = leaf:<intermediate> fails: it is not the leaf" 502 \
    "$(get leafwrong leafwrong.test)" leafwrong
check_eq "leaf:<intermediate>: details=pin-mismatch" \
    'pinproxy; error=tls_certificate_error; details="pin-mismatch"' \
    "$(header "$TMP/leafwrong.head" Proxy-Status)"
check_status "pin = leaf:pin-sha256=\"<leaf>\" passes" 200 \
    "$(get leaf leaf.test)" leaf
check_status "pin = ca:<leaf key> fails: the leaf is not a CA" 502 \
    "$(get caleaf caleaf.test)" caleaf

# 2. require = leaf+ca: both scopes must match.
check_status "require = leaf+ca passes with both" 200 \
    "$(get both both.test)" both
check_status "require = leaf+ca fails with only the leaf" 502 \
    "$(get half half.test)" half
check_log "the half match is a pin_mismatch naming depth 0" "$TMP/a.log" \
    'event=pin_mismatch' "$(kv host half.test)" "$(kv depth 0)" \
    "$(kv enforced yes)"
check_grep "the answer says which pin is missing" "no CA pin" \
    "$TMP/half.body"
check_status "require = leaf+ca report-only relays" 200 \
    "$(get halfro halfro.test)" halfro

# 3. Candidates: the rotated server passes on its CA pin; the candidate
# is announced once per generation however often it is seen.
check_status "rotated server passes on its ca: pin" 200 \
    "$(get rot1 rotated.test)" rot1
check_status "rotated server, second host of the set" 200 \
    "$(get rot2 rotated2.test)" rot2
check_log "candidate_seen names the set, pin and depth" "$TMP/a.log" \
    'level=warn' 'event=candidate_seen' "$(kv pinset rotated)" \
    "$(kv pin "$PIN_NEW")" "$(kv depth 0)" "$(kv result match)"
check_eq "candidate_seen is logged once for two checks" 1 \
    "$(log_count "$TMP/a.log" 'event=candidate_seen' "$(kv pinset rotated)")"
curl -sS --max-time 10 "http://127.0.0.1:$SS/metrics" >"$TMP/m1" 2>&1
check_grep "the metric counts both checks" "$(q \
    "pinproxy_candidate_seen_total{pinset=\"rotated\",pin=\"$PIN_NEW\"} 2")" \
    "$TMP/m1"
check_status "a candidate alone never grants access" 502 \
    "$(get candonly candonly.test)" candonly
check_log "candonly: the mismatch is logged" "$TMP/a.log" \
    'event=pin_mismatch' "$(kv host candonly.test)"
check_log "candonly: candidate_seen says the pins were not met" \
    "$TMP/a.log" 'event=candidate_seen' "$(kv pinset candonly)" \
    "$(kv result mismatch)"
check_status "cand-ro: report-only relays" 200 "$(get candro candro.test)" \
    candro
check_log "cand-ro: candidate_seen with result=report_only" "$TMP/a.log" \
    'event=candidate_seen' "$(kv pinset cand-ro)" "$(kv result report_only)"

# 4. Reports carry matched-depth and candidate-pins where they apply, and
# the address of the server that answered.
python3 - "$REPORT" "${PIN_NEW#sha256/}" "$OO" >"$TMP/report.check" 2>&1 <<'EOF'
import json, sys
by_set = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    by_set.setdefault(r["pinset"], r)
bad = []
half = by_set.get("half", {})
if half.get("matched-depth") != 0:
    bad.append("half: matched-depth %r" % half.get("matched-depth"))
cand = by_set.get("cand-ro", {})
want = ['pin-sha256="%s"' % sys.argv[2]]
if cand.get("candidate-pins") != want:
    bad.append("cand-ro: candidate-pins %r" % cand.get("candidate-pins"))
if "matched-depth" in cand:
    bad.append("cand-ro: matched-depth where nothing matched")
if "candidate-pins" in half:
    bad.append("half: candidate-pins without candidates")
if half.get("server-address") != "127.0.0.1:" + sys.argv[3]:
    bad.append("half: server-address %r" % half.get("server-address"))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
check_eq "reports: matched-depth and candidate-pins where they apply, \
server-address" 0 $?
[ -s "$TMP/report.check" ] && diag "$(cat "$TMP/report.check")"

# 4b. report_max bounds the lines of a UTC day: the names under a
# wildcard are a client's to choose, each failure a new report.
n=$(wc -l <"$REPORT")
sed -i "/^report_file = /a report_max = $(( n + 1 ))" "$TMP/a.conf"
check "SIGHUP reloads with report_max" reload "$P_A" "$TMP/a.log"
for h in a b c; do
	check_status "wildcard host $h.wild.test: pin mismatch" 502 \
	    "$(get "wild-$h" "$h.wild.test")" "wild-$h"
done
check_eq "report_max: one more line that day, then none" $(( n + 1 )) \
    "$(wc -l <"$REPORT")"
check_eq "report_max reached is logged once, naming the file" 1 \
    "$(log_count "$TMP/a.log" "$(kv event report_error)" \
    "$(kv file "$REPORT")" "report_max \\($(( n + 1 )) new lines")"

# 5. A new generation announces the candidate again.
reload "$P_A" "$TMP/a.log"
check_eq "reload succeeds" 0 $?
check_status "after reload: the rotated server passes" 200 \
    "$(get rot3 rotated.test)" rot3
# candidates_logged: how many candidate_seen lines name the set rotated.
candidates_logged()
{
	log_count "$TMP/a.log" 'event=candidate_seen' "$(kv pinset rotated)"
}
for i in $(seq 100); do
	[ "$(candidates_logged)" -ge 2 ] && break
	t_sleep 0.05
done
check_eq "candidate_seen is logged again in the new generation" 2 \
    "$(candidates_logged)"

stop_pinproxy "$P_A" "$TMP/a.log"
done_testing
