#!/usr/bin/env python3
"""A tiny DNS responder on 127.0.0.1 for pinproxy's end-to-end tests.

    dnsd.py --port P [--map NAME=ADDR]... [--slow NAME=SECONDS]...
            [--log FILE]

A mapped name gets its A (or, for an IPv6 ADDR, AAAA) records and NOERROR
with no records for any other type; every other name gets NXDOMAIN. A name
given to --slow is answered only after that delay. The question is echoed
byte for byte, so resolvers that randomise the case of names accept the
answer. Each query is logged as a JSON line {"event": "query", "name",
"type"} when --log is given.
"""

import argparse
import ipaddress
import json
import socket
import struct
import sys
import threading

TYPE_A = 1
TYPE_AAAA = 28
TYPE_ANY = 255
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
TTL = 5


class Malformed(Exception):
    """The packet is not a DNS query this server can parse."""


def parse_name(packet, offset):
    """The labels of the name at offset, and the offset just after it."""
    labels = []
    end = None
    jumps = 0
    while True:
        if offset >= len(packet):
            raise Malformed("name runs past the packet")
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(packet) or jumps > 16:
                raise Malformed("bad compression pointer")
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | packet[offset + 1]
            jumps += 1
            continue
        if length & 0xC0 != 0:
            raise Malformed("bad label type")
        offset += 1
        if length == 0:
            break
        if offset + length > len(packet):
            raise Malformed("label runs past the packet")
        labels.append(packet[offset:offset + length].decode("latin-1"))
        offset += length
    return labels, (end if end is not None else offset)


def parse_query(packet):
    """(id, flags, name, qtype, question bytes) of a one-question query."""
    if len(packet) < 12:
        raise Malformed("short header")
    qid, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        raise Malformed("not a single-question query")
    labels, offset = parse_name(packet, 12)
    if offset + 4 > len(packet):
        raise Malformed("short question")
    qtype, _qclass = struct.unpack("!HH", packet[offset:offset + 4])
    question = packet[12:offset + 4]
    return qid, flags, ".".join(labels).lower(), qtype, question


def answer(qid, qflags, question, rcode, records):
    """A response packet: header, the question as received, the records."""
    flags = 0x8000 | (qflags & 0x7800) | 0x0400 | (qflags & 0x0100)
    flags |= 0x0080 | rcode
    out = struct.pack("!HHHHHH", qid, flags, 1 if question else 0,
                      len(records), 0, 0)
    out += question
    for rtype, data in records:
        # 0xC00C points at the question's name.
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(data))
        out += data
    return out


class Resolver:
    """The name table and the logic of one reply."""

    def __init__(self, maps, slow, log):
        self.maps = maps
        self.slow = slow
        self.log = log
        self.lock = threading.Lock()

    def record(self, name, qtype):
        if self.log is None:
            return
        with self.lock:
            self.log.write(json.dumps({"event": "query", "name": name,
                                       "type": qtype}) + "\n")
            self.log.flush()

    def reply(self, packet):
        """(reply bytes, delay in seconds), or None to stay silent."""
        try:
            qid, qflags, name, qtype, question = parse_query(packet)
        except Malformed:
            if len(packet) < 12:
                return None
            qid, qflags = struct.unpack("!HH", packet[:4])
            if qflags & 0x8000:
                return None
            return answer(qid, qflags, b"", RCODE_FORMERR, []), 0
        name = name.rstrip(".")
        self.record(name, qtype)
        delay = self.slow.get(name, 0)
        if name not in self.maps:
            return answer(qid, qflags, question, RCODE_NXDOMAIN, []), delay
        records = []
        for addr in self.maps[name]:
            if addr.version == 4 and qtype in (TYPE_A, TYPE_ANY):
                records.append((TYPE_A, addr.packed))
            elif addr.version == 6 and qtype in (TYPE_AAAA, TYPE_ANY):
                records.append((TYPE_AAAA, addr.packed))
        return answer(qid, qflags, question, RCODE_NOERROR, records), delay


def pair(text, convert):
    name, sep, value = text.partition("=")
    if sep == "" or name == "":
        raise argparse.ArgumentTypeError("NAME=VALUE expected: %s" % text)
    try:
        return name.lower().rstrip("."), convert(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def main():
    p = argparse.ArgumentParser(description="pinproxy test DNS responder")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--map", action="append", default=[],
                   type=lambda s: pair(s, ipaddress.ip_address))
    p.add_argument("--slow", action="append", default=[],
                   type=lambda s: pair(s, float))
    p.add_argument("--log")
    args = p.parse_args()

    maps = {}
    for name, addr in args.map:
        maps.setdefault(name, []).append(addr)
    log = open(args.log, "a", encoding="utf-8") if args.log else None
    resolver = Resolver(maps, dict(args.slow), log)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    print("ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        result = resolver.reply(packet)
        if result is None:
            continue
        data, delay = result
        if delay > 0:
            timer = threading.Timer(delay, sock.sendto, (data, peer))
            timer.daemon = True
            timer.start()
        else:
            sock.sendto(data, peer)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
