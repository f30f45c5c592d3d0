# The setup the hostile-client tests share (tests/proxy_hostile.sh and
# tests/proxy_pipelining.sh, sourced after tests/lib.sh): the raw client
# and its checks, the PKI, the origins, dnsd, the configuration of an
# instance and instance H itself, started and serving. Everything runs
# on the loopback.

small_quarantine

# A raw client: send the bytes of a Python expression (with a pause of
# DELAY seconds between bytes when DELAY > 0) to HOST:PORT without
# closing, and keep what comes back in $TMP/NAME.resp until the peer
# closes or stays quiet for QUIET seconds. Prints the ms that took, and
# "closed" or "open".
cat >"$TMP/raw.py" <<'EOF'
import socket, sys, time
name, host, port, quiet, delay, expr = sys.argv[1:7]
port, quiet, delay = int(port), float(quiet), float(delay)
data = eval(expr)
start = time.monotonic()
out = b""
state = "open"
s = socket.create_connection((host, port), timeout=quiet)
try:
    if delay > 0:
        s.settimeout(delay)
        for i in range(len(data)):
            s.send(data[i:i + 1])
            try:
                d = s.recv(65536)
                if not d:
                    state = "closed"
                    break
                out += d
            except socket.timeout:
                pass
        s.settimeout(quiet)
    else:
        s.sendall(data)
    while state == "open":
        d = s.recv(65536)
        if not d:
            state = "closed"
            break
        out += d
except socket.timeout:
    pass
except OSError:
    state = "closed"
open(name, "wb").write(out)
print(int((time.monotonic() - start) * 1000), state)
EOF

# raw NAME EXPR [QUIET [DELAY]]: the raw client against instance H.
raw()
{
	python3 "$TMP/raw.py" "$TMP/$1.resp" 127.0.0.1 "$PH" "${3:-5}" \
	    "${4:-0}" "$2"
}

# check_answer NAME STATUS DETAILS: two cases on a raw response.
check_answer()
{
	check_eq "$1: $2" "$2" "$(status_of "$1")"
	check_eq "$1: Proxy-Status details=$3" "$3" \
	    "$(header_of "$1" Proxy-Status | sed -n 's/.*details="\(.*\)"/\1/p')"
	if [ "$(status_of "$1")" != "$2" ]; then
		diag "response: $(head -c 300 "$TMP/$1.resp" 2>/dev/null)"
	fi
}

# refused NAME EXPR: a request pinproxy must answer with 400 without
# passing it on; EXPR carries the marker "/m-NAME" in its target.
refused()
{
	raw "$1" "$2" >/dev/null
	check_answer "$1" 400 bad-request
	origin_settle "$TMP/om.log"
	check_eq "$1: nothing reaches the origin" 0 \
	    "$(origin_count "$TMP/om.log" request "/m-$1")"
}

# The PKI: the default set of tests/mkpki.sh (its leaf covers api.test,
# 127.0.0.1 and ::1).
make_pki
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa

# Origins: M (TLS, api.test), P (plain, one write per answer, without a
# log, for pipelining)
# and, when the host has IPv6, one on [::1]; dnsd maps loop.test to
# 127.0.0.1.
OM=$(free_port)
start_server O_M "$TMP/om.log" python3 "$ORIGIN" --port "$OM" \
    --cert "$PKI/chain.pem" --key "$PKI/leaf.key"
OP=$(free_port)
spawn O_P python3 "$BADORIGIN" --port "$OP" --mode hello >"$TMP/op.out"
wait_ready "$TMP/op.out"
OB=$(free_port)
start_server O_B "$TMP/ob.log" python3 "$BADORIGIN" --port "$OB" \
    --mode headbody
O6=$(free_port)
have_ipv6=no
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
    2>/dev/null; then
	have_ipv6=yes
	start_server O_6 "$TMP/o6.log" python3 "$BADORIGIN" --port "$O6" \
	    --bind ::1 --mode hello --cert "$PKI/chain.pem" \
	    --key "$PKI/leaf.key"
fi
start_dnsd --map loop.test=127.0.0.1 --map loop6.test=::ffff:0.0.0.0

# conf LISTEN NAME EXTRA: a configuration listening on LISTEN with the CA
# files NAME and the [proxy] lines EXTRA that pins api.test. Plaintext
# requests may go to the plain origin and to pinproxy's own port, so that
# a request to itself meets the loop check, not the port policy.
conf()
{
	cat <<EOF
[proxy]
listen = $1
ca_cert = $TMP/ca-$2.pem
ca_key = $TMP/ca-$2.key
trust = $PKI/root.pem
unpinned = pass
plain_ports = 80, 443, $OP, $OB, ${1##*:}
shutdown_timeout = 2s
$3

[pins:set-api]
hosts = api.test
pin = $PIN_INTER
pin = $PIN_RSA
connect_to = 127.0.0.1:$OM
EOF
}

# Instance H: short timeouts, CONNECT allowed to its own port, the
# origins' ports and RP, where nothing listens.
PH=$(free_port)
RP=$(free_port)
conf "127.0.0.1:$PH" h "connect_ports = 443 $OM $O6 $PH $RP
header_timeout = 2s
idle_timeout = 2s" >"$TMP/h.conf"
check "pinproxy H listens on 127.0.0.1:$PH" \
    start_pinproxy PP_H "$PH" "$TMP/h.conf" "$TMP/h.log"
H="127.0.0.1:$PH"
alive "start" "$PP_H" "$H"
BASE_H=$(fd_baseline "$PP_H")

# post NAME HEADERS BODY: refused, a POST with the marker of NAME whose
# head ends with the header lines HEADERS (each ending in \r\n).
post()
{
	refused "$1" "b'POST http://api.test/echo?/m-$1 HTTP/1.1\r\n\
Host: api.test\r\n$2\r\n$3'"
}

# get NAME TARGET-TAIL HEADERS: refused, a GET of /hello?/m-NAME plus
# TARGET-TAIL with the header lines HEADERS.
get()
{
	refused "$1" "b'GET http://api.test/hello?/m-$1$2 HTTP/1.1\r\n\
Host: api.test\r\n$3\r\n'"
}

# connect_status TARGET: the status and Proxy-Status of a CONNECT TARGET
# sent to instance H ("none -" when no head came).
connect_status()
{
	python3 - "$PH" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
           % (sys.argv[2], sys.argv[2])).encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    d = s.recv(1)
    if not d:
        break
    head += d
lines = head.decode("latin-1").split("\r\n")
ps = [l.split(": ", 1)[1] for l in lines[1:] if l.lower().startswith(
    "proxy-status: ")]
print(lines[0].split(" ")[1] if " " in lines[0] else "none",
      ps[0] if ps else "-")
EOF
}
