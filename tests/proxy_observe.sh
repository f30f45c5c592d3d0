#!/bin/bash
# observe_file end to end: with unpinned = verify, every verified chain of a
# host that no pin set covers is appended as one JSON line per host, port
# and chain a day; pinned hosts are never observed; SIGHUP reopens the file
# after rotation; observe_max bounds the new lines of a day; a symbolic
# link is refused at start.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

clear_of_midnight 90

make_pki multi "$(dns_sans one.test two.test three.test four.test five.test \
    pinned.test a.w.test b.w.test c.w.test d.w.test)" inter
pki_pin PIN_LEAF multi
pki_pin PIN_INTER inter
pki_pin PIN_ROOT root

O=$(free_port)
start_origin O_1 "$O" "$TMP/o.log" --cert "$PKI/multi-chain.pem" \
    --key "$PKI/multi.key" || bail_out "the origin did not start"
start_dnsd --map one.test=127.0.0.1 --map two.test=127.0.0.1 \
    --map three.test=127.0.0.1 --map four.test=127.0.0.1 \
    --map five.test=127.0.0.1 --map pinned.test=127.0.0.1 \
    --map a.w.test=127.0.0.1 --map b.w.test=127.0.0.1 \
    --map c.w.test=127.0.0.1 --map d.w.test=127.0.0.1 ||
    bail_out "dnsd did not start"

OBS="$TMP/observe.jsonl"
P=$(free_port)
cat >"$TMP/p.conf" <<EOF
[proxy]
listen = 127.0.0.1:$P
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
unpinned = verify
connect_ports = $O
observe_file = $OBS
shutdown_timeout = 2s

[pins:set-pinned]
hosts = pinned.test
pin = $PIN_INTER
pin = $PIN_ROOT
EOF
start_pinproxy PP "$P" "$TMP/p.conf" "$TMP/p.log" ||
    bail_out "pinproxy -c $TMP/p.conf is not listening on $P"

# get NAME HOST: an intercepted HTTPS request to HOST on the origin.
get()
{
	pcurl "$P" --cacert "$TMP/ca.pem" -o "$TMP/$1.body" -w '%{http_code}' \
	    "https://$2:$O/hello" 2>"$TMP/$1.err"
}

# lines FILE HOST: how many lines of the observe file FILE are for HOST.
lines()
{
	python3 -c 'import json, sys
n = 0
for line in open(sys.argv[1]):
    if json.loads(line)["host"] == sys.argv[2]:
        n += 1
print(n)' "$1" "$2" 2>/dev/null || echo error
}

check_eq "one.test: 200 through the verified interception" 200 \
    "$(get one1 one.test)"
check_eq "one.test again, a new connection: 200" 200 "$(get one2 one.test)"
check_eq "two.test: 200" 200 "$(get two two.test)"
check_eq "pinned.test: 200" 200 "$(get pinned pinned.test)"

check_eq "two requests to one.test give one line" 1 "$(lines "$OBS" one.test)"
check_eq "another host gives another line" 1 "$(lines "$OBS" two.test)"
check_eq "a host a pin set covers is never observed" 0 \
    "$(lines "$OBS" pinned.test)"
check_eq "the file holds exactly those two lines" 2 "$(wc -l <"$OBS")"

# Every field of the line for one.test, checked by a JSON parser.
if python3 - "$OBS" "$O" "$PIN_LEAF" "$PIN_INTER" "$PIN_ROOT" \
    >"$TMP/fields.out" 2>&1 <<'EOF'
import json, re, sys
path, port, leaf, inter, root = sys.argv[1:]
obs = [json.loads(l) for l in open(path)]
o = [x for x in obs if x["host"] == "one.test"][0]
assert set(o) == {"host", "port", "first_seen", "client", "chain"}, o
assert o["port"] == int(port), o["port"]
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o["first_seen"])
assert o["client"].startswith("127.0.0.1"), o["client"]
c = o["chain"]
assert [e["pin"] for e in c] == [leaf, inter, root], c
assert [e["depth"] for e in c] == [0, 1, 2], c
assert "CN=one.test" in c[0]["subject"], c[0]
assert "CN=pinproxy root" in c[2]["subject"], c[2]
for e in c:
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", e["not_after"]), e
EOF
then
	ok "the line holds host, port, first_seen, client and the verified chain"
else
	not_ok "the line holds host, port, first_seen, client and the verified chain"
	diag "$(cat "$TMP/fields.out")"
	diag "$(cat "$OBS")"
fi

# Rotation: the file is renamed, SIGHUP opens a new one at the path.
mv "$OBS" "$OBS.1"
check "SIGHUP reloads" reload "$PP" "$TMP/p.log"
check_eq "three.test after the reload: 200" 200 "$(get three three.test)"
check_eq "after the reload, lines go to the new file" 1 \
    "$(lines "$OBS" three.test)"
check_eq "the rotated file is left alone" 2 "$(wc -l <"$OBS.1")"
check_eq "one.test after the reload: 200" 200 "$(get one3 one.test)"
check_eq "a chain written today is not written again after a reload" 0 \
    "$(lines "$OBS" one.test)"

# observe_max: three new lines were written today (one, two, three); with
# a limit of 3 the next hosts pass but are not written, and the limit is
# logged once, naming the file. Names the network chooses would otherwise
# grow the file without end.
sed -i "/^observe_file = /a observe_max = 3" "$TMP/p.conf"
check "SIGHUP reloads with observe_max = 3" reload "$PP" "$TMP/p.log"
check_eq "four.test beyond observe_max: 200" 200 "$(get four four.test)"
check_eq "five.test beyond observe_max: 200" 200 "$(get five five.test)"
check_eq "beyond observe_max nothing is written" "0 0" \
    "$(lines "$OBS" four.test) $(lines "$OBS" five.test)"
check_eq "observe_max reached is logged once, naming the file" 1 \
    "$(log_count "$TMP/p.log" "$(kv event report_error)" \
    "$(kv file "$OBS")" "observe_max \\(3 new lines")"

# One domain takes a quarter of observe_max a day: ever new names under
# one wildcard certificate (a page can make a browser fetch them) would
# otherwise spend the whole day's budget. With 12, w.test gets 3 lines,
# and another domain is still written.
sed -i "s/^observe_max = 3$/observe_max = 12/" "$TMP/p.conf"
check "SIGHUP reloads with observe_max = 12" reload "$PP" "$TMP/p.log"
for h in a b c d; do
	check_eq "$h.w.test: 200" 200 "$(get "w$h" "$h.w.test")"
done
check_eq "w.test's quarter of observe_max: a, b and c written, not d" \
    "1 1 1 0" "$(lines "$OBS" a.w.test) $(lines "$OBS" b.w.test) \
$(lines "$OBS" c.w.test) $(lines "$OBS" d.w.test)"
check_log "a domain's share reached is logged, naming it" "$TMP/p.log" \
    "$(kv event report_error)" "$(kv host d.w.test)" "w.test: a quarter"
check_eq "four.test, another domain: 200" 200 "$(get four2 four.test)"
check_eq "another domain is still written" 1 "$(lines "$OBS" four.test)"
stop_pinproxy "$PP" "$TMP/p.log"

# A symbolic link as observe_file is refused at start.
ln -s "$TMP/elsewhere" "$TMP/link.jsonl"
sed "s|^observe_file = .*|observe_file = $TMP/link.jsonl|" "$TMP/p.conf" \
    >"$TMP/link.conf"
run link "$PINPROXY" -c "$TMP/link.conf"
check_rc "observe_file as a symbolic link: pinproxy exits 1" 1 link
check_grep "observe_file as a symbolic link: the message says why" \
    'observe_file .*symbolic link' "$TMP/link.err"
check "observe_file as a symbolic link: nothing is created behind it" \
    test ! -e "$TMP/elsewhere"

done_testing
