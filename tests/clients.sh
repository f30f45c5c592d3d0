#!/bin/bash
# Real clients through pinproxy: curl, wget, Python's urllib and requests,
# git over smart HTTP, apt-get update, ApacheBench and a raw socket as
# HTTP/1.0 clients, headless Chromium and an emulator-like CONNECT client,
# against nginx with a test PKI on 127.0.0.1. Each client runs in every
# mode that applies (plaintext upgrade, interception, blind tunnel) once
# with a matching pin (the body's hash is checked) and once with a wrong
# pin (it must fail, and pinproxy must count a pin mismatch: a pin_mismatch
# line, or a repeat within 10 s that /metrics counts). A client whose
# package is missing is a SKIP with the package to install, never a pass.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

# Each client is told its roots; none may come from the environment.
unset GIT_SSL_CAINFO CURL_CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE \
    SSL_CERT_DIR

if ! command -v nginx >/dev/null 2>&1; then
	skip "real clients: nginx is not installed (Debian: nginx-light)"
	done_testing
fi

# has COMMAND: the client is installed.
has()
{
	command -v "$1" >/dev/null 2>&1
}

# pymod MODULE: python3, with its site-packages, can import MODULE.
pymod()
{
	"$T_PYTHON3" -c "import $1" 2>/dev/null
}

# sha FILE: the SHA-256 of FILE (nothing when it does not exist).
sha()
{
	[ -f "$1" ] && sha256sum <"$1" | cut -d ' ' -f 1
}

# check_body DESCRIPTION FILE: one case, FILE is the served page.
check_body()
{
	local got
	got=$(sha "$2")
	check_eq "$1" "$PAGE_SHA" "$got"
	[ "$PAGE_SHA" = "$got" ] || diag "$(head -c 300 "$2" 2>/dev/null)"
}

# check_refused DESCRIPTION FILE N: one case, FILE is not the page and the
# log holds more than N pin_mismatch lines for wrong.test.
check_refused()
{
	local got
	got=$(sha "$2")
	if [ "$got" != "$PAGE_SHA" ] && wait_mismatch "$3"; then
		ok "$1"
	else
		not_ok "$1"
		[ "$got" = "$PAGE_SHA" ] && diag "the page arrived"
		diag "$(tail -n 5 "$TMP/p.log")"
	fi
}

# mismatches: how many pin_mismatch lines name wrong.test, plus the
# repeats within 10 s that the log leaves out and /metrics counts.
mismatches()
{
	local lines left_out
	lines=$(log_count "$TMP/p.log" "$(kv event pin_mismatch)" \
	    "$(kv host wrong.test)")
	left_out=$(curl -s --noproxy '' --max-time 5 \
	    "http://127.0.0.1:$SP/metrics" 2>/dev/null |
	    sed -n 's/^pinproxy_pin_mismatch_suppressed_total //p')
	echo $((lines + ${left_out:-0}))
}

# wait_mismatch N: wait for more than N pin_mismatch lines.
wait_mismatch()
{
	local i
	for i in $(seq "$WAIT_TICKS"); do
		[ "$(mismatches)" -gt "$1" ] && return 0
		t_sleep 0.05
	done
	return 1
}

# The PKI: one nginx certificate for every name it serves.
make_pki web "$(dns_sans api.test wrong.test pass.test),IP:127.0.0.1" inter
pki_pin PIN_INTER inter
pki_pin PIN_RSA rsa
pki_pin PIN_FROOT foreign-root
cat "$PKI/root.pem" >"$TMP/roots.pem"

# What nginx serves: a page, a larger file, a small text answered chunked,
# a git repository over smart HTTP and a tiny apt repository.
WWW=$TMP/www
mkdir -p "$WWW/repo" "$TMP/nginx-tmp" "$TMP/git"
printf '<!DOCTYPE html>\n<html><head><title>pinned</title></head><body><p id="t">pinned page served through pinproxy</p></body></html>\n' \
    >"$WWW/page.html"
PAGE_SHA=$(sha "$WWW/page.html")
PAGE_SIZE=$(stat -c %s "$WWW/page.html")
printf 'chunked body from nginx\n' >"$WWW/chunked.txt"
CHUNKED_SHA=$(sha "$WWW/chunked.txt")
head -c 300000 /dev/urandom >"$WWW/file"
FILE_SHA=$(sha "$WWW/file")
cat >"$WWW/repo/Packages" <<'EOF'
Package: pinproxy-test-package
Version: 1.0
Architecture: all
Maintainer: pinproxy tests <tests@pinproxy.invalid>
Filename: pinproxy-test-package_1.0_all.deb
Size: 1000
Description: a package that only exists in pinproxy's tests
EOF

GIT_OK=no
if has git; then
	(
		set -e
		cd "$TMP"
		git init -q --bare git/repo.git
		git init -q work
		cd work
		echo "pinned content" >README
		git add README
		git -c user.name=t -c user.email=t@t.invalid commit -qm first
		git push -q ../git/repo.git HEAD:refs/heads/main
		git -C ../git/repo.git symbolic-ref HEAD refs/heads/main
		git -C ../git/repo.git config http.receivepack false
	) >"$TMP/git-setup.log" 2>&1 && GIT_OK=yes
fi
GIT_HEAD=$(git -C "$TMP/git/repo.git" rev-parse HEAD 2>/dev/null)

FCGI_OK=no
if [ "$GIT_OK" = yes ] && has fcgiwrap; then
	spawn FCGI fcgiwrap -s "unix:$TMP/fcgi.sock"
	for i in $(seq 100); do
		[ -S "$TMP/fcgi.sock" ] && FCGI_OK=yes && break
		t_sleep 0.05
	done
fi

NG=$(free_port)
cat >"$TMP/nginx.conf" <<EOF
master_process off;
worker_processes 1;
error_log $TMP/nginx-error.log;
events {
	worker_connections 256;
}
http {
	access_log $TMP/nginx-access.log;
	client_body_temp_path $TMP/nginx-tmp/body;
	proxy_temp_path $TMP/nginx-tmp/proxy;
	fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
	uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
	scgi_temp_path $TMP/nginx-tmp/scgi;
	default_type application/octet-stream;
	types {
		text/html html;
	}
	server {
		listen 127.0.0.1:$NG ssl http2;
		ssl_certificate $PKI/web-chain.pem;
		ssl_certificate_key $PKI/web.key;
		root $WWW;
		# SSI drops the length: nginx answers HTTP/1.1 chunked.
		location = /chunked {
			ssi on;
			ssi_types *;
			default_type text/plain;
			alias $WWW/chunked.txt;
		}
		location ~ ^/git(/.*)\$ {
			fastcgi_pass unix:$TMP/fcgi.sock;
			fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
			fastcgi_param GIT_PROJECT_ROOT $TMP/git;
			fastcgi_param GIT_HTTP_EXPORT_ALL "";
			fastcgi_param PATH_INFO \$1;
			fastcgi_param QUERY_STRING \$query_string;
			fastcgi_param REQUEST_METHOD \$request_method;
			fastcgi_param CONTENT_TYPE \$content_type;
			fastcgi_param CONTENT_LENGTH \$content_length;
			fastcgi_param REMOTE_ADDR \$remote_addr;
			fastcgi_param SERVER_PROTOCOL \$server_protocol;
		}
	}
}
EOF
spawn NGINX nginx -e "$TMP/nginx-error.log" -p "$TMP" -c "$TMP/nginx.conf" \
    -g "daemon off; pid $TMP/nginx.pid;"
wait_port "$NG" 5 || bail_out "nginx did not start: $(cat "$TMP/nginx-error.log")"

start_dnsd --map pass.test=127.0.0.1

P=$(free_port)
PROXY=http://127.0.0.1:$P
SP=$(free_port)
cat >"$TMP/p.conf" <<EOF
[proxy]
listen = 127.0.0.1:$P
ca_cert = $TMP/ca.pem
ca_key = $TMP/ca.key
trust = $PKI/root.pem
unpinned = pass
connect_ports = 80 443 $NG
plain_ports = 80 443 $NG
shutdown_timeout = 2s
stats_listen = 127.0.0.1:$SP

[pins:api]
hosts = api.test
pin = $PIN_RSA
pin = $PIN_INTER
connect_to = 127.0.0.1:$NG

[pins:wrong]
hosts = wrong.test
pin = $PIN_RSA
pin = $PIN_FROOT
connect_to = 127.0.0.1:$NG
EOF
start_pinproxy PX "$P" "$TMP/p.conf" "$TMP/p.log" ||
    bail_out "pinproxy did not start"
# The URLs of each mode: plaintext upgraded to pinned TLS, interception of
# a pinned host, and a blind tunnel to an unpinned one (verified by the
# client against the test root).
PLAIN=http://api.test
INTERCEPT=https://api.test
TUNNEL=https://pass.test:$NG
WRONG_PLAIN=http://wrong.test
WRONG_INTERCEPT=https://wrong.test

## curl.

# c_curl NAME URL [ARGS...]: curl through the proxy, body in $TMP/NAME.
c_curl()
{
	local name=$1 url=$2
	shift 2
	curl -sS --noproxy '' -x "$PROXY" --max-time 20 -o "$TMP/$name" \
	    "$@" "$url/page.html" 2>"$TMP/$name.err"
}
c_curl curl-plain "$PLAIN"
check_body "curl, plaintext upgrade: the page arrives" "$TMP/curl-plain"
c_curl curl-icpt "$INTERCEPT" --cacert "$TMP/ca.pem"
check_body "curl, interception: the page arrives" "$TMP/curl-icpt"
c_curl curl-h2 "$INTERCEPT" --cacert "$TMP/ca.pem" --http2
check_body "curl --http2, interception: the page arrives" "$TMP/curl-h2"
check "curl --http2, interception: nginx served it over HTTP/2" \
    grep -qF '"GET /page.html HTTP/2.0" 200' "$TMP/nginx-access.log"
c_curl curl-tunnel "$TUNNEL" --cacert "$TMP/roots.pem"
check_body "curl, blind tunnel: the page arrives" "$TMP/curl-tunnel"
n=$(mismatches)
c_curl curl-wplain "$WRONG_PLAIN"
check_refused "curl, plaintext upgrade, wrong pin: refused" \
    "$TMP/curl-wplain" "$n"
n=$(mismatches)
c_curl curl-wicpt "$WRONG_INTERCEPT" --cacert "$TMP/ca.pem"
check_refused "curl, interception, wrong pin: refused" "$TMP/curl-wicpt" "$n"
# -p sends CONNECT api.test:80 for an http:// URL, then plaintext HTTP.
c_curl curl-ptunnel "$PLAIN" --proxytunnel
check_body "curl -p, plaintext in a CONNECT tunnel: the page arrives" \
    "$TMP/curl-ptunnel"
check_log "curl -p, plaintext in a CONNECT tunnel: access mode=plain" \
    "$TMP/p.log" "$(kv event access)" "$(kv mode plain)" \
    "$(kv host api.test)" "$(kv status 200)"
n=$(mismatches)
c_curl curl-wptunnel "$WRONG_PLAIN" --proxytunnel
check_refused "curl -p, plaintext in a CONNECT tunnel, wrong pin: refused" \
    "$TMP/curl-wptunnel" "$n"

## wget.

# c_wget NAME URL [ARGS...]: wget through the proxy.
c_wget()
{
	local name=$1 url=$2
	shift 2
	http_proxy=$PROXY https_proxy=$PROXY wget -q -T 20 -t 1 \
	    -O "$TMP/$name" "$@" "$url/page.html" 2>"$TMP/$name.err"
	[ -s "$TMP/$name" ] || rm -f "$TMP/$name"
}
if has wget; then
	c_wget wget-plain "$PLAIN"
	check_body "wget, plaintext upgrade: the page arrives" \
	    "$TMP/wget-plain"
	c_wget wget-icpt "$INTERCEPT" --ca-certificate="$TMP/ca.pem"
	check_body "wget, interception: the page arrives" "$TMP/wget-icpt"
	c_wget wget-tunnel "$TUNNEL" --ca-certificate="$TMP/roots.pem"
	check_body "wget, blind tunnel: the page arrives" "$TMP/wget-tunnel"
	n=$(mismatches)
	c_wget wget-wicpt "$WRONG_INTERCEPT" --ca-certificate="$TMP/ca.pem"
	check_refused "wget, interception, wrong pin: refused" \
	    "$TMP/wget-wicpt" "$n"
else
	for i in 1 2 3 4; do
		skip "wget: not installed (Debian: wget)"
	done
fi

## Python: urllib from the standard library, and requests.

# c_py NAME LIB URL CAFILE: fetch the page with urllib or requests (the
# interpreter with its site-packages, where requests lives).
c_py()
{
	"$T_PYTHON3" - "$2" "$3/page.html" "$PROXY" "$4" >"$TMP/$1" \
	    2>"$TMP/$1.err" <<'EOF'
import ssl
import sys

lib, url, proxy, cafile = sys.argv[1:5]
if lib == "urllib":
    import urllib.request
    ctx = ssl.create_default_context(cafile=cafile)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": proxy, "https": proxy}),
        urllib.request.HTTPSHandler(context=ctx))
    body = opener.open(url, timeout=20).read()
else:
    import requests
    r = requests.get(url, proxies={"http": proxy, "https": proxy},
                     verify=cafile, timeout=20)
    r.raise_for_status()
    body = r.content
sys.stdout.buffer.write(body)
EOF
	[ -s "$TMP/$1" ] || rm -f "$TMP/$1"
}
for lib in urllib requests; do
	if [ "$lib" = requests ] && ! pymod requests; then
		for i in 1 2 3 4; do
			skip "Python requests: not installed" \
			    "(Debian: python3-requests)"
		done
		continue
	fi
	c_py "py-$lib-plain" "$lib" "$PLAIN" "$TMP/ca.pem"
	check_body "Python $lib, plaintext upgrade: the page arrives" \
	    "$TMP/py-$lib-plain"
	c_py "py-$lib-icpt" "$lib" "$INTERCEPT" "$TMP/ca.pem"
	check_body "Python $lib, interception: the page arrives" \
	    "$TMP/py-$lib-icpt"
	c_py "py-$lib-tunnel" "$lib" "$TUNNEL" "$TMP/roots.pem"
	check_body "Python $lib, blind tunnel: the page arrives" \
	    "$TMP/py-$lib-tunnel"
	n=$(mismatches)
	c_py "py-$lib-wicpt" "$lib" "$WRONG_INTERCEPT" "$TMP/ca.pem"
	check_refused "Python $lib, interception, wrong pin: refused" \
	    "$TMP/py-$lib-wicpt" "$n"
done

## git over smart HTTP (nginx, fcgiwrap, git-http-backend).

# c_git NAME URL [CAFILE]: git clone through the proxy into $TMP/NAME
# (GIT_SSL_CAINFO, which wins over http.sslCAInfo, names the roots).
c_git()
{
	GIT_SSL_CAINFO=${3:-$TMP/ca.pem} GIT_TERMINAL_PROMPT=0 timeout 30 \
	    git -c "http.proxy=$PROXY" clone -q "$2/git/repo.git" \
	    "$TMP/$1" >"$TMP/$1.err" 2>&1
}
# git_head NAME: the commit a clone checked out.
git_head()
{
	git -C "$TMP/$1" rev-parse HEAD 2>/dev/null
}
if [ "$FCGI_OK" != yes ]; then
	for i in 1 2 3 4; do
		skip "git: git or fcgiwrap missing (Debian: git fcgiwrap)"
	done
else
	c_git git-plain "$PLAIN"
	check_eq "git clone, plaintext upgrade: the commit arrives" \
	    "$GIT_HEAD" "$(git_head git-plain)"
	c_git git-icpt "$INTERCEPT" "$TMP/ca.pem"
	check_eq "git clone, interception: the commit arrives" \
	    "$GIT_HEAD" "$(git_head git-icpt)"
	c_git git-tunnel "$TUNNEL" "$TMP/roots.pem"
	check_eq "git clone, blind tunnel: the commit arrives" \
	    "$GIT_HEAD" "$(git_head git-tunnel)"
	n=$(mismatches)
	c_git git-wicpt "$WRONG_INTERCEPT" "$TMP/ca.pem"
	if [ -z "$(git_head git-wicpt)" ] && wait_mismatch "$n"; then
		ok "git clone, interception, wrong pin: refused"
	else
		not_ok "git clone, interception, wrong pin: refused"
		diag "$(cat "$TMP/git-wicpt.err")"
	fi
fi

## apt-get update against a tiny repository (flat, unsigned, trusted).

# c_apt NAME URL: apt-get update with only that source, through the proxy;
# succeeds when the repository's Packages file arrived.
c_apt()
{
	local d=$TMP/$1
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	echo "deb [trusted=yes] $2/repo ./" >"$d/sources.list"
	timeout 60 apt-get update \
	    -o Dir::Etc::SourceList="$d/sources.list" \
	    -o Dir::Etc::SourceParts=/nonexistent \
	    -o Dir::State::Lists="$d/lists" \
	    -o Dir::Cache="$d/cache" \
	    -o Debug::NoLocking=1 \
	    -o APT::Sandbox::User=root \
	    -o Acquire::Retries=0 \
	    -o Acquire::http::Proxy="$PROXY" \
	    -o Acquire::https::Proxy="$PROXY" \
	    -o Acquire::https::CAInfo="$3" >"$d.out" 2>&1
	local f
	for f in "$d"/lists/*_Packages*; do
		[ -f "$f" ] && /usr/lib/apt/apt-helper cat-file "$f" |
		    grep -q '^Package: pinproxy-test-package' && return 0
	done
	return 1
}
if ! has apt-get; then
	for i in 1 2 3; do
		skip "apt-get: not installed"
	done
else
	check "apt-get update, plaintext upgrade: the Packages file arrives" \
	    c_apt apt-plain "$PLAIN" "$TMP/ca.pem"
	check "apt-get update, interception: the Packages file arrives" \
	    c_apt apt-icpt "$INTERCEPT" "$TMP/ca.pem"
	n=$(mismatches)
	if ! c_apt apt-wicpt "$WRONG_INTERCEPT" "$TMP/ca.pem" &&
	    wait_mismatch "$n"; then
		ok "apt-get update, interception, wrong pin: refused"
	else
		not_ok "apt-get update, interception, wrong pin: refused"
		diag "$(cat "$TMP/apt-wicpt.out")"
	fi
fi

## Headless Chromium, trusting the CA through an NSS database.

# c_chromium NAME URL [ARGS...]: the DOM of URL after Chromium loaded it
# (HOME, and so the NSS database, is $TMP/chome unless CHOME says).
c_chromium()
{
	local name=$1 url=$2
	shift 2
	HOME=${CHOME:-$TMP/chome} timeout 60 chromium --headless \
	    --no-sandbox --disable-gpu --disable-quic --no-first-run \
	    --disable-background-networking --disable-component-update \
	    --disable-sync --user-data-dir="$TMP/chrome-$name" \
	    --proxy-server="$PROXY" "$@" --dump-dom "$url/page.html" \
	    >"$TMP/$name" 2>"$TMP/$name.err"
}
if ! has chromium || ! has certutil; then
	for i in 1 2 3; do
		skip "Chromium: chromium or certutil missing" \
		    "(Debian: chromium libnss3-tools)"
	done
else
	mkdir -p "$TMP/chome/.pki/nssdb"
	certutil -d "sql:$TMP/chome/.pki/nssdb" -N --empty-password
	certutil -d "sql:$TMP/chome/.pki/nssdb" -A -t "C,," -n pinproxy \
	    -i "$TMP/ca.pem"
	c_chromium chrome-plain "$PLAIN"
	check_grep "Chromium, plaintext upgrade: the page's text is in the DOM" \
	    'id="t">pinned page served through pinproxy<' "$TMP/chrome-plain"
	c_chromium chrome-icpt "$INTERCEPT"
	check_grep "Chromium, interception: the page's text is in the DOM" \
	    'id="t">pinned page served through pinproxy<' "$TMP/chrome-icpt"
	n=$(mismatches)
	c_chromium chrome-wicpt "$WRONG_INTERCEPT"
	if ! grep -q 'pinned page served' "$TMP/chrome-wicpt" &&
	    wait_mismatch "$n"; then
		ok "Chromium, interception, wrong pin: the page does not load"
	else
		not_ok "Chromium, interception, wrong pin: the page does not load"
		diag "$(head -c 300 "$TMP/chrome-wicpt")"
	fi
fi

## HTTP/1.0 clients: ApacheBench with keep-alive, and a raw socket.

# c_ab NAME HOST N: ApacheBench, N requests with keep-alive, two at a time.
c_ab()
{
	timeout 60 ab -k -s 10 -n "$3" -c 2 -X "127.0.0.1:$P" \
	    "http://$2/page.html" >"$TMP/$1" 2>&1
}
# ab_has NAME FIELD VALUE: ab's report says FIELD: VALUE.
ab_has()
{
	grep -qE "^$2: +$3\$" "$TMP/$1"
}
if ! has ab; then
	for i in 1 2 3 4 5; do
		skip "ApacheBench: not installed (Debian: apache2-utils)"
	done
else
	c_ab ab-plain api.test 20
	check "ab -k, plaintext upgrade: 20 requests complete" \
	    ab_has ab-plain "Complete requests" 20
	check "ab -k, plaintext upgrade: none failed" \
	    ab_has ab-plain "Failed requests" 0
	check "ab -k, plaintext upgrade: all 20 kept the connection" \
	    ab_has ab-plain "Keep-Alive requests" 20
	check "ab -k, plaintext upgrade: the document is the page's size" \
	    ab_has ab-plain "Document Length" "$PAGE_SIZE bytes"
	n=$(mismatches)
	c_ab ab-wplain wrong.test 5
	if ab_has ab-wplain "Non-2xx responses" 5 &&
	    ! ab_has ab-wplain "Document Length" "$PAGE_SIZE bytes" &&
	    wait_mismatch "$n"; then
		ok "ab -k, plaintext upgrade, wrong pin: every request refused"
	else
		not_ok "ab -k, plaintext upgrade, wrong pin:" \
		    "every request refused"
		diag "$(tail -n 20 "$TMP/ab-wplain")"
	fi
fi

# The raw client: COUNT requests "GET http://HOST/PATH HTTP/1.0" on one
# connection (with "Connection: keep-alive" when KEEP is 1); for each it
# prints the status and framing headers and writes the body to OUT.N;
# closed=yes when the proxy closed the connection after the last one.
cat >"$TMP/raw10.py" <<'EOF'
import socket
import sys

port, host, path, keep, count, out = sys.argv[1:7]
s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
buf = b""


def recv():
    try:
        return s.recv(65536)
    except socket.timeout:
        return None


closed = "no"
for i in range(1, int(count) + 1):
    req = "GET http://%s%s HTTP/1.0\r\nHost: %s\r\n" % (host, path, host)
    if keep == "1":
        req += "Connection: keep-alive\r\n"
    s.sendall((req + "\r\n").encode())
    while b"\r\n\r\n" not in buf:
        d = recv()
        if not d:
            print("r%d.status=none" % i)
            sys.exit(0)
        buf += d
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    print("r%d.status=%s" % (i, lines[0].split(" ")[1]))
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    for name in ("connection", "transfer-encoding", "content-length"):
        print("r%d.%s=%s" % (i, name, ",".join(fields.get(name, ["none"]))))
    if "content-length" in fields:
        n = int(fields["content-length"][0])
        while len(buf) < n:
            d = recv()
            if not d:
                break
            buf += d
        body, buf = buf[:n], buf[n:]
    else:
        while True:
            d = recv()
            if not d:
                closed = "yes" if d is not None else "no"
                break
            buf += d
        body, buf = buf, b""
    with open("%s.%d" % (out, i), "wb") as f:
        f.write(body)
if keep != "1" and closed == "no" and recv() == b"" and buf == b"":
    closed = "yes"
print("closed=%s" % closed)
EOF
# c_raw NAME HOST PATH KEEP COUNT: the raw HTTP/1.0 client, to $TMP/NAME.
c_raw()
{
	python3 "$TMP/raw10.py" "$P" "$2" "$3" "$4" "$5" "$TMP/$1" \
	    >"$TMP/$1.out" 2>&1
}
# raw_has NAME LINE...: the raw client printed every LINE.
raw_has()
{
	local name=$1 line
	shift
	for line in "$@"; do
		grep -qxF -- "$line" "$TMP/$name.out" || return 1
	done
}
# sha_is FILE SHA: FILE's SHA-256 is SHA.
sha_is()
{
	[ "$(sha "$1")" = "$2" ]
}

# nginx really answers /chunked chunked to HTTP/1.1.
curl -sS --noproxy '' --http1.1 --max-time 20 --cacert "$TMP/roots.pem" \
    --resolve "api.test:$NG:127.0.0.1" -D "$TMP/chunked-direct.h" \
    -o /dev/null "https://api.test:$NG/chunked" 2>/dev/null
check_grep "nginx answers /chunked with chunked framing" \
    '^[Tt]ransfer-[Ee]ncoding: chunked' "$TMP/chunked-direct.h"

c_raw raw-chunked api.test /chunked 0 1
check "HTTP/1.0 client, chunked response: the body arrives dechunked" \
    sha_is "$TMP/raw-chunked.1" "$CHUNKED_SHA"
check "HTTP/1.0 client, chunked response: no Transfer-Encoding" \
    raw_has raw-chunked r1.transfer-encoding=none
check "HTTP/1.0 client, chunked response: Connection: close, then closed" \
    raw_has raw-chunked r1.connection=close closed=yes
c_raw raw-chunked-ka api.test /chunked 1 1
check "HTTP/1.0 keep-alive client, chunked response: the body dechunked" \
    sha_is "$TMP/raw-chunked-ka.1" "$CHUNKED_SHA"
check "HTTP/1.0 keep-alive client, chunked response: Connection: close" \
    raw_has raw-chunked-ka r1.transfer-encoding=none r1.connection=close \
    closed=yes
c_raw raw-ka api.test /page.html 1 2
check "HTTP/1.0 keep-alive client: the first page on the connection" \
    sha_is "$TMP/raw-ka.1" "$PAGE_SHA"
check "HTTP/1.0 keep-alive client: the second page on the same connection" \
    sha_is "$TMP/raw-ka.2" "$PAGE_SHA"
check "HTTP/1.0 keep-alive client: Connection: keep-alive in each" \
    raw_has raw-ka r1.connection=keep-alive r2.connection=keep-alive
c_raw raw-close api.test /page.html 0 1
check "HTTP/1.0 client without keep-alive: the page arrives" \
    sha_is "$TMP/raw-close.1" "$PAGE_SHA"
check "HTTP/1.0 client without keep-alive: Connection: close, then closed" \
    raw_has raw-close r1.connection=close closed=yes
n=$(mismatches)
c_raw raw-wrong wrong.test /chunked 0 1
if raw_has raw-wrong r1.status=502 && wait_mismatch "$n"; then
	ok "HTTP/1.0 client, wrong pin: refused"
else
	not_ok "HTTP/1.0 client, wrong pin: refused"
	diag "$(cat "$TMP/raw-wrong.out")"
fi

## Headless Chromium with no NSS database, trusting the CA by its SPKI
## (the chain pinproxy sends holds the CA after the leaf).

if ! has chromium; then
	for i in 1 2; do
		skip "Chromium: not installed (Debian: chromium)"
	done
else
	CA_SPKI=$(sh "$MKPKI" pin "$TMP/ca.pem")
	CA_SPKI=${CA_SPKI#sha256/}
	mkdir -p "$TMP/chome-spki"
	CHOME=$TMP/chome-spki c_chromium chrome-spki "$INTERCEPT" \
	    --ignore-certificate-errors-spki-list="$CA_SPKI"
	check_grep "Chromium, CA trusted by SPKI: the page's text is in the DOM" \
	    'id="t">pinned page served through pinproxy<' "$TMP/chrome-spki"
	n=$(mismatches)
	CHOME=$TMP/chome-spki c_chromium chrome-spki-w "$WRONG_INTERCEPT" \
	    --ignore-certificate-errors-spki-list="$CA_SPKI"
	if ! grep -q 'pinned page served' "$TMP/chrome-spki-w" &&
	    wait_mismatch "$n"; then
		ok "Chromium, CA trusted by SPKI flag, wrong pin: no page"
	else
		not_ok "Chromium, CA trusted by SPKI flag, wrong pin: no page"
		diag "$(head -c 300 "$TMP/chrome-spki-w")"
	fi
fi

## The emulator: CONNECT by address, the name only in SNI, the hello in
## small writes.

python3 "$CLIENT" --proxy "$P" --connect "127.0.0.1:$NG" --sni api.test \
    --cafile "$TMP/ca.pem" --split 6 --get /page.html \
    >"$TMP/emu.out" 2>&1
check_grep "emulator-like client: TLS with pinproxy's leaf" '^tls=ok' \
    "$TMP/emu.out"
check_grep "emulator-like client: the page arrives" \
    '^body=.*pinned page served through pinproxy' "$TMP/emu.out"
n=$(mismatches)
python3 "$CLIENT" --proxy "$P" --connect "127.0.0.1:$NG" --sni wrong.test \
    --cafile "$TMP/ca.pem" --split 6 --get /page.html \
    >"$TMP/emu-w.out" 2>&1
if grep -q '^tls=alert' "$TMP/emu-w.out" && wait_mismatch "$n"; then
	ok "emulator-like client, wrong pin: a TLS alert, nothing relayed"
else
	not_ok "emulator-like client, wrong pin: a TLS alert, nothing relayed"
	diag "$(cat "$TMP/emu-w.out")"
fi

stop_pinproxy "$PX" "$TMP/p.log" "pinproxy (real clients)"
done_testing
