"""os-ken's OpenFlow 1.3 parser on the same bytes as periscope's codec benchmark.

Prints one JSON object: operations per second for each workload, median of several runs.
Usage: python osken_codec.py VECTOR_DIR
"""
import json
import statistics
import sys
import time

from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser


class Datapath:
    """The minimum os-ken's parser needs from a datapath."""

    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser


def read_hex(path):
    with open(path) as f:
        return bytes.fromhex("".join(f.read().split()))


def split_messages(data):
    out = []
    while data:
        n = int.from_bytes(data[2:4], "big")
        out.append(data[:n])
        data = data[n:]
    return out


def parse(dp, buf):
    version, msg_type, msg_len, xid = ofproto_parser.header(buf)
    return ofproto_parser.msg(dp, version, msg_type, msg_len, xid, buf)


def rate(fn, n, runs=9):
    per_s = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        per_s.append(n / (time.perf_counter() - t))
    return statistics.median(per_s)


def main():
    d = sys.argv[1]
    dp = Datapath()
    flowmod = read_hex(f"{d}/flowmod.hex")
    packetin = read_hex(f"{d}/packetin.hex")
    stats = split_messages(read_hex(f"{d}/flowstats1000.hex"))

    def flowmod_roundtrip():
        m = parse(dp, flowmod)
        m.serialize()

    def stats_parse():
        for s in stats:
            parse(dp, s)

    print(json.dumps({
        "flowmod_parse": rate(lambda: parse(dp, flowmod), 5000),
        "flowmod_parse_emit": rate(flowmod_roundtrip, 3000),
        "packetin_parse": rate(lambda: parse(dp, packetin), 20000),
        "flowstats1000_parse": rate(stats_parse, 5, runs=5),
    }))


if __name__ == "__main__":
    main()
