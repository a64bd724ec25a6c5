#!/usr/bin/env python3
"""Tap-flow creation rate through periscope's REST API as tap flows accumulate.

Starts `periscope run` (embedded northbound, no switches), makes 20 tenants with one tap
service each, then registers an interface and creates a tap flow for it (two writes, as
`periscope bench waves` does) round-robin over the tenants, one request at a time, and prints
the rate over each window of WINDOW tap flows starting at the given levels.
usage: nb_write_rate.py PERISCOPE LEVELS... (e.g. 0 2000 5000 10000)
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.request

exe, levels = sys.argv[1], [int(x) for x in sys.argv[2:]]
WINDOW, TENANTS = 200, 20
d = tempfile.mkdtemp(prefix="nbrate-")
p = subprocess.Popen([exe, "run", "--api", "127.0.0.1:0", "--log-level", "warn", "--data-dir", d,
                      "--openflow=ptcp:0:127.0.0.1", "--ovsdb=ptcp:0:127.0.0.1"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
api = token = None
try:
    for line in p.stdout:
        m = re.search(r"operator token in (\S+)", line)
        if m:
            token = open(m.group(1)).read().strip()
        m = re.search(r"api listening on (http://\S+)", line)
        if m:
            api = m.group(1)
            break

    def call(method, path, body):
        for _ in range(20):
            req = urllib.request.Request(api + path, method=method, data=json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer " + token,
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req) as r:
                    return json.load(r)
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise RuntimeError(f"{method} {path}: {e.code} {e.read()}")
        raise RuntimeError("conflicts")

    services = []
    for t in range(TENANTS):
        call("PUT", f"/v1/tenants/t{t:02}", {"allowed_collectors": ["192.0.2.0/24"], "max_tap_flows": 100000})
        services.append(call("POST", "/v1/tap_services", {"name": f"c{t}", "tenant": f"t{t:02}",
                             "encap": "vxlan", "remote_ip": f"192.0.2.{10 + t}"})["id"])
    n = 0
    start = time.monotonic()
    for level in levels:
        while n < level + WINDOW:
            t0 = time.monotonic()
            t = n % TENANTS
            iface = f"vif-{n:06}"
            call("PUT", f"/v1/interfaces/{iface}", {"tenant": f"t{t:02}"})
            call("POST", "/v1/tap_flows", {"name": f"tap-{n}", "tenant": f"t{t:02}", "tap_service": services[t],
                                           "source": {"iface_id": iface}, "direction": "BOTH"})
            if n == level:
                w0 = t0
            n += 1
        rate = WINDOW / (time.monotonic() - w0)
        print(json.dumps({"existing_tap_flows": level, "tap_flows_per_s": round(rate, 1),
                          "elapsed_s": round(time.monotonic() - start, 1),
                          "loadavg": os.getloadavg()[0]}), flush=True)
finally:
    p.terminate()
    p.wait()
