#!/usr/bin/env python3
"""Two requests on one keep-alive connection through pinproxy.

    keepalive.py PORT URL GOFILE [--tunnel HOST[:PORT] [--cafile FILE |
                                                      --plain]]

The first request goes at once, the second once GOFILE exists (within 10
seconds). Plainly, URL (absolute-form) goes to the proxy at PORT; with
--tunnel, the connection is a CONNECT tunnel to HOST:443 intercepted by
pinproxy, trusting FILE, and URL is the path; with --plain too, the
requests go in the tunnel as plaintext HTTP. Prints "first STATUS", then
"second STATUS reused|new PROXY-STATUS" (whether the second request went
on the same connection; "-" when the answer had no Proxy-Status), or
"second failed ERROR" when the connection broke under the second request.
"""

import argparse
import http.client
import os
import ssl
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("url")
    p.add_argument("go")
    p.add_argument("--tunnel")
    p.add_argument("--cafile")
    p.add_argument("--plain", action="store_true")
    args = p.parse_args()
    if args.tunnel:
        host, _, port = args.tunnel.partition(":")
        port = int(port or 443)
    if args.tunnel and args.plain:
        c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
        c.set_tunnel(host, port)
    elif args.tunnel:
        ctx = ssl.create_default_context(cafile=args.cafile)
        c = http.client.HTTPSConnection("127.0.0.1", args.port, timeout=10,
                                        context=ctx)
        c.set_tunnel(host, port)
    else:
        c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
    c.request("GET", args.url)
    r = c.getresponse()
    r.read()
    print("first", r.status, flush=True)
    sock = c.sock
    for _ in range(200):
        if os.path.exists(args.go):
            break
        time.sleep(0.05)
    # Before the request: http.client opens a new connection for it when
    # the last answer closed this one.
    reused = "reused" if sock is not None and c.sock is sock else "new"
    try:
        c.request("GET", args.url)
        r = c.getresponse()
        r.read()
    except (OSError, http.client.HTTPException) as e:
        print("second failed", type(e).__name__, flush=True)
        return
    print("second", r.status, reused, r.getheader("Proxy-Status", "-"),
          flush=True)


if __name__ == "__main__":
    main()
