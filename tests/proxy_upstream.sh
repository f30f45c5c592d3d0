#!/bin/bash
# Upstreams whose answers are not HTTP end to end: a 101 Switching
# Protocols that the request did not ask for, or to a protocol it did not
# offer, a status code outside 100-599, bytes that are not HTTP at all.
# pinproxy must answer 502 details="bad-response", close both sides, log
# it, and never let a later request of the client reach such a server.
# An h2c Upgrade sent to the proxy (by a raw client and by curl --http2)
# is not passed on. Everything runs on 127.0.0.1.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

small_quarantine

# A raw client: send the bytes of a Python expression to the proxy on
# 127.0.0.1:PORT; with a second expression, send it once a response head
# came back (as clients do that take a 101 for a final answer), a list of
# them 0.3 s apart. Keep what comes back in NAME until the peer closes,
# or for QUIET seconds; with "upgrade", close right after the second
# expression instead.
cat >"$TMP/raw.py" <<'EOF'
import socket, sys, time
name, port, quiet, first, second, how = sys.argv[1:7]
out = b""
s = socket.create_connection(("127.0.0.1", int(port)), timeout=float(quiet))
try:
    s.sendall(eval(first))
    if second:
        while b"\r\n\r\n" not in out:
            d = s.recv(65536)
            if not d:
                break
            out += d
        later = eval(second)
        for i, seg in enumerate(later if isinstance(later, list) else
                                [later]):
            if i:
                time.sleep(0.3)
            s.sendall(seg)
    while how != "upgrade":
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
s.close()
open(name, "wb").write(out)
EOF

# raw NAME FIRST [SECOND [HOW]]: the raw client against instance U.
raw()
{
	python3 "$TMP/raw.py" "$TMP/$1.resp" "$PU" 10 "$2" "${3:-}" "${4:-}"
}

# check_bad_response NAME HOST: the raw response NAME is pinproxy's 502
# with details="bad-response", and the log has an upstream_error for HOST
# (three cases).
check_bad_response()
{
	check_eq "$1: 502" 502 "$(status_of "$1")"
	check_eq "$1: Proxy-Status error=http_protocol_error bad-response" \
	    'pinproxy; error=http_protocol_error; details="bad-response"' \
	    "$(header_of "$1" Proxy-Status)"
	[ "$(status_of "$1")" = 502 ] ||
	    diag "response: $(head -c 300 "$TMP/$1.resp" 2>/dev/null)"
	BAD_N=$((BAD_N + 1))
	check "$1: event=upstream_error error=bad-response (number $BAD_N)" \
	    wait_count "$TMP/u.log" "$BAD_N" "$(kv event upstream_error)" \
	    "$(kv host "$2")" "$(kv error bad-response)"
}
BAD_N=0

# The PKI: the default set of tests/mkpki.sh (its leaf covers api.test).
make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

# Origins: M the pinned one (TLS, api.test); plain ones that answer any
# request with a 101 to websocket (W) or to h2c (H), with status 600 (S6) or 099
# (S0), or with bytes that are not HTTP (G).
OM=$(free_port)
start_origin O_M "$OM" "$TMP/om.log" --cert "$PKI/chain.pem" \
    --key "$PKI/leaf.key"
OW=$(free_port)
start_server O_W "$TMP/ow.log" python3 "$BADORIGIN" --port "$OW" \
    --mode switch --upgrade websocket
OH=$(free_port)
start_server O_H "$TMP/oh.log" python3 "$BADORIGIN" --port "$OH" \
    --mode switch --upgrade h2c
OS6=$(free_port)
start_server O_S6 "$TMP/os6.log" python3 "$BADORIGIN" --port "$OS6" \
    --mode status --status 600
OS0=$(free_port)
start_server O_S0 "$TMP/os0.log" python3 "$BADORIGIN" --port "$OS0" \
    --mode status --status 099
OG=$(free_port)
OR=$(free_port)
start_server O_G "$TMP/og.log" python3 "$BADORIGIN" --port "$OG" \
    --mode garbage

# Instance U: unpinned hosts pass; api.test is pinned; metrics on SU.
PU=$(free_port)
SU=$(free_port)
cat >"$TMP/u.conf" <<EOF
[proxy]
listen = 127.0.0.1:$PU
ca_cert = $TMP/ca-u.pem
ca_key = $TMP/ca-u.key
trust = $PKI/root.pem
unpinned = pass
plain_ports = $OW $OH $OS6 $OS0 $OG $OR
connect_ports = 443 $OH
stats_listen = 127.0.0.1:$SU
shutdown_timeout = 2s

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF
check "pinproxy U listens on 127.0.0.1:$PU" \
    start_pinproxy PP_U "$PU" "$TMP/u.conf" "$TMP/u.log"

W="127.0.0.1:$OW"
SECRET='Authorization: Bearer SECRET-TOKEN\r\nCookie: sid=SECRET-COOKIE\r\n'
PINNED="b\"GET http://api.test/hello HTTP/1.1\\r\\nHost: api.test\\r\\n$SECRET\\r\\n\""

# An unsolicited 101, with a request for the pinned host pipelined behind
# the request that drew it.
raw unsolicited "b\"GET http://$W/a HTTP/1.1\\r\\nHost: $W\\r\\n\\r\\n\" + $PINNED"
check_bad_response unsolicited 127.0.0.1
origin_settle "$TMP/ow.log"
check_eq "unsolicited 101: the pipelined request never reaches that server" \
    0 "$(grep -c SECRET "$TMP/ow.log")"
check_eq "unsolicited 101: nor the pinned host" \
    0 "$(origin_count "$TMP/om.log" request)"

# The same, with the next request sent only after the 101 came back.
raw unsolicited-later "b\"GET http://$W/b HTTP/1.1\\r\\nHost: $W\\r\\n\\r\\n\"" \
    "$PINNED"
check_bad_response unsolicited-later 127.0.0.1
origin_settle "$TMP/ow.log"
check_eq "unsolicited 101, request sent later: it never reaches that server" \
    0 "$(grep -c SECRET "$TMP/ow.log")"

# h2c sent to the proxy is for the client's connection to pinproxy, and
# is not passed on: a 101 to it (or to websocket) is unsolicited.
UPGRADE_H2C="Connection: Upgrade, HTTP2-Settings\\r\\nUpgrade: h2c\\r\\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\\r\\n"
for o in ws:$OW h2c:$OH; do
	raw "h2c-${o%%:*}" "b\"GET http://127.0.0.1:${o#*:}/c HTTP/1.1\\r\\nHost: 127.0.0.1:${o#*:}\\r\\n$UPGRADE_H2C\\r\\n\" + $PINNED"
	check_bad_response "h2c-${o%%:*}" 127.0.0.1
done
origin_settle "$TMP/ow.log"
origin_settle "$TMP/oh.log"
check_eq "h2c to the proxy, a 101: the pipelined request never gets there" \
    0 "$(cat "$TMP/ow.log" "$TMP/oh.log" | grep -c SECRET)"
check_eq "h2c to the proxy: the server is not asked to upgrade" \
    "2 0" "$(cat "$TMP/ow.log" "$TMP/oh.log" | origin_count - request \
    '"path": "/c", "upgrade": ""') $(cat "$TMP/ow.log" "$TMP/oh.log" |
    grep -c 'h2c')"

# In a CONNECT tunnel to a plaintext server the h2c offer does not go on
# either: after a 101 the requests that follow would reach it unchecked
# and in cleartext, whatever host they name (a pinned one, say).
raw h2c-tunnel "b\"CONNECT 127.0.0.1:$OH HTTP/1.1\\r\\nHost: 127.0.0.1:$OH\\r\\n\\r\\nGET /t HTTP/1.1\\r\\nHost: 127.0.0.1:$OH\\r\\n$UPGRADE_H2C\\r\\n\" + $PINNED"
origin_settle "$TMP/oh.log"
check_eq "h2c in a tunnel to a plaintext server: the offer does not go on" \
    "1 0" "$(origin_count "$TMP/oh.log" request '"path": "/t", "upgrade": ""') \
$(grep -c SECRET "$TMP/oh.log")"
BAD_N=$((BAD_N + 1))
check "h2c in a tunnel: the server's 101 is unsolicited, bad-response" \
    wait_count "$TMP/u.log" "$BAD_N" "$(kv event upstream_error)" \
    "$(kv error bad-response)"

# An accepted upgrade: what follows the upgrading request's head is bytes
# of the new protocol (a WebSocket frame here), never a request of its
# own, and goes to the server as it is.
UPGRADE_WS="Connection: Upgrade\\r\\nUpgrade: websocket\\r\\n"
raw accepted "b\"GET http://$W/d HTTP/1.1\\r\\nHost: $W\\r\\n$UPGRADE_WS\\r\\n\" + b'\\x81\\x0cframe before'" \
    "b'after the switch'" upgrade
check_eq "accepted upgrade: 101" 101 "$(status_of accepted)"
origin_settle "$TMP/ow.log"
check_eq "accepted upgrade: the bytes after the head reach the server" 1 \
    "$(origin_count "$TMP/ow.log" data 'frame before')"
check_eq "accepted upgrade: so do the bytes sent after the 101" 1 \
    "$(origin_count "$TMP/ow.log" data 'after the switch')"
# A client that resets in the middle of a frame after the switch: its
# server gets a reset too, not an end of file that could end the stream.
python3 -c 'import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET http://%s/cut HTTP/1.1\r\nHost: %s\r\n"
          b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
          % (sys.argv[2].encode(), sys.argv[2].encode()))
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(4096)
s.sendall(b"\x81\x85abcd\x00\x00\x00")
time.sleep(0.5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$PU" "$W"
cut_conn=$(sed -n 's/.*"conn": \([0-9]*\), "event": "request", "path": "\/cut".*/\1/p' \
    "$TMP/ow.log")
check "an upgraded client that resets mid-frame: its server is reset" \
    wait_line "$TMP/ow.log" "\"conn\": ${cut_conn:-none}, \"event\": \"close\", \"error\": \"ConnectionResetError"
# But a plaintext server must not get, after the 101, an HTTP request in
# cleartext (one for a pinned host, say): the relay is guarded, and ends.
raw accepted-http "b\"GET http://$W/e HTTP/1.1\\r\\nHost: $W\\r\\n$UPGRADE_WS\\r\\n\" + $PINNED" \
    "b'after the switch'" upgrade
check_eq "upgrade, then an HTTP request: 101" 101 \
    "$(status_of accepted-http)"
check_log "upgrade, then an HTTP request: refused (event=blocked)" \
    "$TMP/u.log" "$(kv event blocked)" 'plaintext HTTP'
origin_settle "$TMP/ow.log"
check_eq "upgrade, then an HTTP request: it never reaches that server" 0 \
    "$(grep -c SECRET "$TMP/ow.log")"
# Nor any part of one: a request line cut before its version, or one
# without a version (HTTP/0.9, which nginx answers), is held unwritten
# (a method and a URL with a token in it would be out before the
# verdict), and refused.
n_blocked=$(log_count "$TMP/u.log" "$(kv event blocked)" 'plaintext HTTP')
raw split-line "b\"GET http://$W/f HTTP/1.1\r\nHost: $W\r\n$UPGRADE_WS\r\n\"" \
    "[b'POST http://api.test/login?pw=SECRET-SPLIT ', b'HTTP/1.1\r\nHost: api.test\r\n\r\n']"
raw get09 "b\"GET http://$W/g HTTP/1.1\r\nHost: $W\r\n$UPGRADE_WS\r\n\"" \
    "b'GET http://api.test/account?token=SECRET-09\r\n'"
# Words split by other whitespace, which Python's server splits on too.
raw split-ff "b\"GET http://$W/h HTTP/1.1\r\nHost: $W\r\n$UPGRADE_WS\r\n\"" \
    "[b'GET\\x0c/ff?token=SECRET-FF', b'\\x0cHTTP/1.1\\r\\n\\r\\n']"
raw split-vt "b\"GET http://$W/i HTTP/1.1\r\nHost: $W\r\n$UPGRADE_WS\r\n\"" \
    "b'PUT\\x0b/SECRET-VT\\r\\nHost: api.test\\r\\n\\r\\n'"
check_eq "upgrade, then requests split by other whitespace: 101s" \
    "101 101 101 101" "$(status_of split-line) $(status_of get09) \
$(status_of split-ff) $(status_of split-vt)"
check "upgrade, then a split request line, HTTP/0.9, other whitespace: blocked" \
    wait_count "$TMP/u.log" $((n_blocked + 4)) "$(kv event blocked)" \
    'plaintext HTTP'
origin_settle "$TMP/ow.log"
check_eq "upgrade, then a split request line: no byte of it reaches the server" \
    0 "$(grep -c 'SECRET-SPLIT\|login' "$TMP/ow.log")"
check_eq "upgrade, then HTTP/0.9: no byte of it reaches the server" \
    0 "$(grep -c 'SECRET-09\|account' "$TMP/ow.log")"
check_eq "upgrade, then words split by a form feed or a vertical tab: no \
byte of them reaches the server" 0 "$(grep -c 'SECRET-FF\|SECRET-VT' "$TMP/ow.log")"
check_eq "accepted upgrade: the pinned host sees no request" \
    0 "$(origin_count "$TMP/om.log" request)"

# Status codes outside 100-599.
for s in 600:$OS6 099:$OS0; do
	raw "status-${s%%:*}" \
	    "b'GET http://127.0.0.1:${s#*:}/s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'"
	check_bad_response "status-${s%%:*}" 127.0.0.1
done

# Bytes that are not HTTP from a plaintext upstream: not a TLS failure.
code=$(fetch garbage "$PU" --max-time 10 "http://127.0.0.1:$OG/g")
check_eq "not HTTP from a plaintext upstream: 502" 502 "$code"
check_eq "not HTTP from a plaintext upstream: details=bad-response" \
    'pinproxy; error=http_protocol_error; details="bad-response"' \
    "$(header "$TMP/garbage.head" Proxy-Status)"
BAD_N=$((BAD_N + 1))
check "not HTTP from a plaintext upstream: error=bad-response logged" \
    wait_count "$TMP/u.log" "$BAD_N" "$(kv event upstream_error)" \
    "$(kv error bad-response)"

# Every bad response is counted.
curl -sS --noproxy '' --max-time 10 -o "$TMP/metrics.prom" \
    "http://127.0.0.1:$SU/metrics" 2>/dev/null
check_eq "pinproxy_upstream_errors_by_kind_total{error=\"bad-response\"} $BAD_N" \
    "$BAD_N" "$(sed -n \
    's/^pinproxy_upstream_errors_by_kind_total{error="bad-response"} //p' \
    "$TMP/metrics.prom")"
check_eq "pinproxy_upstream_errors_total $BAD_N (no other kind here)" \
    "$BAD_N" "$(sed -n 's/^pinproxy_upstream_errors_total //p' \
    "$TMP/metrics.prom")"

# A good request still works afterwards.
code=$(fetch hello "$PU" http://api.test/hello)
check_status "pinned host afterwards: 200" 200 "$code" hello

# curl --http2 offers h2c to its proxy, and would take its connection to
# pinproxy for HTTP/2 after a 101, sending its next URL (a pinned host's)
# on it: that server never sees the second request, the pinned host
# answers it over TLS.
origin_settle "$TMP/om.log"
n=$(origin_count "$TMP/om.log" request '"path": "/hello"')
pcurl "$PU" --http2 -o "$TMP/h2c-curl.body" "http://127.0.0.1:$OH/first" \
    http://api.test/hello 2>"$TMP/h2c-curl.err"
origin_settle "$TMP/oh.log"
origin_settle "$TMP/om.log"
check_eq "curl --http2 via the proxy: no byte of the pinned URL reaches \
the h2c server" 0 "$(grep -c 'api\.test' "$TMP/oh.log")"
check_eq "curl --http2 via the proxy: the pinned host answers its URL" \
    $((n + 1)) "$(origin_count "$TMP/om.log" request '"path": "/hello"')"

# A kept upstream connection that closes without answering: pinproxy tries
# a fresh one for an idempotent request (GET), never for another (POST),
# which the server may have carried out (RFC 9110 9.2.2).
pcurl "$PU" -o /dev/null http://api.test/hello 2>/dev/null
code=$(pcurl "$PU" -o /dev/null -w '%{http_code}' http://api.test/drop \
    2>/dev/null)
check_eq "a kept connection that closes unanswered: GET: 502" 502 "$code"
pcurl "$PU" -o /dev/null http://api.test/hello 2>/dev/null
code=$(pcurl "$PU" -o /dev/null -w '%{http_code}' -X POST -d '' \
    http://api.test/drop 2>/dev/null)
check_eq "a kept connection that closes unanswered: POST: 502" 502 "$code"
origin_settle "$TMP/om.log"
check_eq "a kept connection that closes unanswered: the GET tried twice, \
the POST once" "2 1" "$(origin_count "$TMP/om.log" request '"method": "GET", "path": "/drop"') \
$(origin_count "$TMP/om.log" request '"method": "POST", "path": "/drop"')"

# The same retry when the server that closed had the head of a body that
# was not sent yet (a PUT with Expect: 100-continue): it ended only its
# own side, and reads on. The head it has is not a request: it is reset
# (a FIN after it could pass for an empty body), and the retry, on a
# fresh connection, has the whole request.
cat >"$TMP/retryorigin.py" <<'EOF'
import socket, sys, threading
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(2)
l.settimeout(20)
print("ready", flush=True)
out = {}

def head(c, buf=b""):
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, buf
        buf += d
    h, _, rest = buf.partition(b"\r\n\r\n")
    return h.split(b"\r\n")[0].decode(), rest

def first(c):
    c.settimeout(20)
    h, rest = head(c)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    h, rest = head(c, rest)
    c.shutdown(socket.SHUT_WR)
    n, end = len(rest), "eof"
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            n += len(d)
    except OSError as e:
        end = type(e).__name__
    out["first"] = "%s then %s after %d bytes" % (h, end, n)

t = threading.Thread(target=first, args=(l.accept()[0],))
t.start()
c = l.accept()[0]
c.settimeout(20)
h, rest = head(c)
c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
while len(rest) < 10:
    d = c.recv(65536)
    if not d:
        break
    rest += d
c.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
t.join()
print(out.get("first"), flush=True)
print("%s with %r" % (h, rest), flush=True)
EOF
spawn RO python3 "$TMP/retryorigin.py" "$OR" >"$TMP/retryorigin.out"
wait_ready "$TMP/retryorigin.out"
python3 -c 'import socket, sys
p, o = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", p), timeout=20)
def answer():
    d = b""
    while b"\r\n\r\n" not in d:
        d += s.recv(4096)
    return d
s.sendall(b"GET http://127.0.0.1:%s/a HTTP/1.1\r\nHost: x\r\n\r\n" % o.encode())
answer()
s.sendall(b"PUT http://127.0.0.1:%s/p HTTP/1.1\r\nHost: x\r\n"
          b"Content-Length: 10\r\nExpect: 100-continue\r\n\r\n" % o.encode())
d = answer()
if b" 100 " in d.split(b"\r\n")[0]:
    s.sendall(b"0123456789")
    d = d.split(b"\r\n\r\n", 1)[1]
    while b"\r\n\r\n" not in d:
        d += s.recv(4096)
print(d.split(b"\r\n")[0].decode())' "$PU" "$OR" >"$TMP/retry.out" 2>&1
wait "$RO" 2>/dev/null
check_eq "a kept connection that ends its side after a PUT's head: the \
retry answers" "HTTP/1.1 201 Created" "$(cat "$TMP/retry.out")"
check_eq "... the first server is reset after the head, not given an end \
of file" "PUT /p HTTP/1.1 then ConnectionResetError after 0 bytes" \
    "$(sed -n 2p "$TMP/retryorigin.out")"
check_eq "... the second has the whole request" \
    "PUT /p HTTP/1.1 with b'0123456789'" "$(sed -n 3p "$TMP/retryorigin.out")"
stop_pinproxy "$PP_U" "$TMP/u.log"

done_testing
