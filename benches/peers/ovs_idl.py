"""The Open vSwitch Python IDL (PyPI `ovs`) on the same OVSDB snapshot as periscope's benchmark.

Prints one JSON object: seconds to json.loads the reply, seconds for the IDL to apply it (median
of a few runs, a fresh IDL each time), and single-row updates per second; each as wall clock and
as the thread's CPU time (`*_cpu_*`).
Usage: python ovs_idl.py SCHEMA MONITOR_REPLY_GZ
"""
import gzip
import json
import statistics
import sys
import time

import ovs.db.idl

INTERFACE_COLUMNS = ["name", "ofport", "external_ids", "type", "mac_in_use"]


def fresh_idl(schema_path):
    helper = ovs.db.idl.SchemaHelper(schema_path)
    helper.register_table("Bridge")
    helper.register_table("Port")
    helper.register_columns("Interface", INTERFACE_COLUMNS)
    # The IDL only connects in run(); it is never called.
    return ovs.db.idl.Idl("unix:/nonexistent/periscope-bench.sock", helper)


def main():
    schema_path, vector = sys.argv[1], sys.argv[2]
    with gzip.open(vector, "rb") as f:
        raw = f.read()
    parse, parse_cpu = [], []
    for _ in range(5):
        t, c = time.perf_counter(), time.thread_time()
        result = json.loads(raw)["result"]
        parse.append(time.perf_counter() - t)
        parse_cpu.append(time.thread_time() - c)
    apply, apply_cpu = [], []
    for _ in range(3):
        idl = fresh_idl(schema_path)
        t, c = time.perf_counter(), time.thread_time()
        idl._Idl__parse_update(result, ovs.db.idl.OVSDB_UPDATE2)
        apply.append(time.perf_counter() - t)
        apply_cpu.append(time.thread_time() - c)
    n_if = len(idl.tables["Interface"].rows)
    uuid = next(iter(result["Interface"]))
    n = 20000
    rates, rates_cpu = [], []
    for r in range(3):
        t, c = time.perf_counter(), time.thread_time()
        for i in range(n):
            upd = {"Interface": {uuid: {"modify": {"ofport": 100 + (i & 1)}}}}
            idl._Idl__parse_update(upd, ovs.db.idl.OVSDB_UPDATE2)
        rates.append(n / (time.perf_counter() - t))
        rates_cpu.append(n / (time.thread_time() - c))
    print(json.dumps({
        "interfaces": n_if,
        "json_parse_s": statistics.median(parse),
        "snapshot_apply_s": statistics.median(apply),
        "update_per_s": statistics.median(rates),
        "json_parse_cpu_s": statistics.median(parse_cpu),
        "snapshot_apply_cpu_s": statistics.median(apply_cpu),
        "update_per_cpu_s": statistics.median(rates_cpu),
    }))


if __name__ == "__main__":
    main()
