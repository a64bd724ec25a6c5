#!/usr/bin/python3
"""A tap that follows a host moving between Mininet switches, with periscope as the controller.

    /usr/bin/python3 scenarios/mininet/mobility_tap.py --periscope target/debug/periscope

Mininet 2.3 (Debian package `mininet`) builds, through its Python API, three userspace Open
vSwitch switches in a line (s1 - s2 - s3) with a host on each, and a standalone underlay bridge
`ul` (192.0.2.1) with a collector host (192.0.2.100). periscope is the RemoteController of
s1..s3 and reads their ovsdb-server. h1's port on s1 carries the OpenStack-style external_ids
(iface-id, attached-mac, tenant-id); a tap created through the REST API copies h1's traffic,
VXLAN-encapsulated, to `periscope collector` on the collector host. h1 pings h2; then h1 is
moved to s3 the way Mininet's examples/mobility.py moves a host (del-port on s1, the same veth
renamed and added to s3, here with the same iface-id); h1 pings h2 again. The copies of both
pings must arrive under the tap's key, the second ones copied on s3, and s1 must be left with
nothing periscope created for the tap.

Isolation. The script runs as two processes. The outer one (this file without `--inner`)
creates a network namespace `<prefix>-mn` and a directory /tmp/periscope-mn-<prefix>-*, starts
ovsdb-server and ovs-vswitchd there with OVS_RUNDIR set to that directory, and runs this file
again with `--inner` inside the namespace. The inner one drives Mininet, periscope and the
collector, and records the pid of every process it starts. Whatever happens to the inner one,
the outer one then stops those processes by pid, stops the two OVS daemons by their pidfiles,
deletes the namespace and the directory. Mininet's global cleanup (`mn -c`, mininet.clean) is
never used: it kills processes by name and deletes bridges and files it does not own.
Mininet's one-time host setup (`fixLimits`, which raises host-wide sysctls) is skipped.

Exit status: 0 when every check passed, 1 when a check failed, 2 when the lab could not be
built (missing package, not root, a daemon that does not start).
"""

import argparse
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SCHEMA = os.environ.get("PERISCOPE_OVS_SCHEMA", "/usr/share/openvswitch/vswitch.ovsschema")
INNER_TIMEOUT_S = 50
TENANT_NET = "198.51.100"
UNDERLAY_IP = "192.0.2.1"
COLLECTOR_IP = "192.0.2.100"
COLLECTOR_MAC = "02:c0:00:00:00:64"
H1_MAC = "02:51:00:00:00:01"
H2_MAC = "02:51:00:00:00:02"
H3_MAC = "02:51:00:00:00:03"
NEW_PORT = 10
PINGS = 10
# periscope's cookies (src/policy/cookie.rs): 0x5053 in the top 16 bits, the kind in the next 8.
COOKIE_MAGIC = 0x5053
COOKIE_MIRROR_KINDS = (2, 3)  # Mirror, Classify


class Failure(Exception):
    """A check that did not hold (exit 1)."""


class SetupError(Exception):
    """The lab could not be built (exit 2)."""


class Interrupted(Exception):
    """SIGTERM, SIGINT or SIGHUP: clean up and leave."""


def on_signal(signum, _frame):
    """Turns a termination signal into an exception, so that every `finally` runs."""
    raise Interrupted(signal.Signals(signum).name)


def run(cmd, check=True, env=None, timeout=20):
    """Runs a command, returns its stdout; raises SetupError with its output when it fails."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        said = p.stderr.strip() or p.stdout.strip()
        raise SetupError(f"{' '.join(cmd)}: exit {p.returncode}: {said}")
    return p.stdout


def start_time(pid):
    """The start time of a process (field 22 of /proc/PID/stat), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def line_reader(stream):
    """A queue that receives each line of stream (None at its end), read by a thread."""
    lines = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return lines


def next_line(lines, deadline):
    """The next line before deadline (time.monotonic()), "" at the end, None on timeout."""
    try:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return None
    return "" if line is None else line


def wait_until(what, timeout, cond, interval=0.02):
    """Polls cond() until it is true; returns the seconds it took; Failure after timeout."""
    start = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Outer process: namespace, OVS daemons, cleanup.
# --------------------------------------------------------------------------------------------


class Sandbox:
    """The namespace, directory and OVS daemons the outer process owns."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.netns = f"{prefix}-mn"
        self.dir = tempfile.mkdtemp(prefix=f"periscope-mn-{prefix}-", dir="/tmp")
        self.netns_created = False
        self.env = dict(os.environ, OVS_RUNDIR=self.dir, OVS_DBDIR=self.dir, OVS_LOGDIR=self.dir)

    def in_netns(self, cmd):
        """cmd run inside our namespace."""
        return ["ip", "netns", "exec", self.netns] + cmd

    def start(self):
        """Creates the namespace and starts ovsdb-server and ovs-vswitchd in it."""
        if not os.path.exists(SCHEMA):
            raise SetupError(f"no OVS schema at {SCHEMA} (install openvswitch-switch)")
        if os.path.exists(f"/run/netns/{self.netns}"):
            raise SetupError(f"namespace {self.netns} already exists")
        run(["ip", "netns", "add", self.netns])
        self.netns_created = True
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        d = self.dir
        run(["ovsdb-tool", "create", f"{d}/conf.db", SCHEMA])
        run(self.in_netns([
            "ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
            f"--unixctl={d}/ovsdb.ctl", f"--pidfile={d}/ovsdb.pid",
            f"--log-file={d}/ovsdb.log", "--detach",
        ]), env=self.env)
        # The inner process checks this mark before letting Mininet run any ovs-vsctl command.
        run(["ovs-vsctl", f"--db=unix:{d}/db.sock", "--no-wait", "init", "--", "set",
             "Open_vSwitch", ".", f"external_ids:periscope-mininet={self.prefix}"])
        run(self.in_netns([
            "ovs-vswitchd", f"unix:{d}/db.sock", f"--unixctl={d}/vswitchd.ctl",
            f"--pidfile={d}/vswitchd.pid", f"--log-file={d}/vswitchd.log", "--detach",
        ]), env=self.env)

    def run_inner(self, argv):
        """Runs the inner process in the namespace; returns its exit status."""
        cmd = self.in_netns(["/usr/bin/python3", os.path.abspath(__file__), "--inner",
                             "--prefix", self.prefix, "--dir", self.dir] + argv)
        child = subprocess.Popen(cmd, env=self.env)
        try:
            status = child.wait(timeout=INNER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"FAIL: the run took more than {INNER_TIMEOUT_S} s; stopping it", flush=True)
            self.stop_child(child)
            return 1
        except Interrupted:
            self.stop_child(child)
            raise
        if status < 0:
            print(f"FAIL: the inner process was killed by {signal.Signals(-status).name}",
                  flush=True)
        return status if status in (0, 1, 2) else 1

    @staticmethod
    def stop_child(child):
        """SIGTERM (the inner process then cleans up), SIGKILL if it does not exit."""
        child.send_signal(signal.SIGTERM)
        try:
            return child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    def kill_recorded(self):
        """Kills every process (group) the inner process recorded that is still there."""
        try:
            with open(f"{self.dir}/pids") as f:
                lines = f.read().split("\n")
        except OSError:
            return
        for line in lines:
            parts = line.split()
            if len(parts) < 3:
                continue
            pid, started, what = int(parts[0]), parts[1], parts[2]
            if start_time(pid) != started:
                continue
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
                print(f"cleanup: killed leftover {what} (pid {pid})", file=sys.stderr)
            except OSError:
                pass

    def stop_daemon(self, name, comm):
        """Stops an OVS daemon by the pid in its pidfile, after checking what that pid runs."""
        try:
            with open(f"{self.dir}/{name}.pid") as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != comm:
                    return
        except (OSError, ValueError):
            return
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except OSError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not os.path.exists(f"/proc/{pid}") or proc_state(pid) == "Z":
                    return
                time.sleep(0.02)

    def show_logs(self):
        """Prints the tail of every log, for a failed run."""
        for name in ("periscope.log", "collector.log", "vswitchd.log"):
            try:
                with open(f"{self.dir}/{name}") as f:
                    tail = f.read().splitlines()[-40:]
            except OSError:
                continue
            print(f"---- {name} (last {len(tail)} lines)", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)

    def teardown(self, keep_dir):
        """Removes everything: recorded processes, OVS daemons, the namespace, the directory."""
        self.kill_recorded()
        self.stop_daemon("vswitchd", "ovs-vswitchd")
        self.stop_daemon("ovsdb", "ovsdb-server")
        if self.netns_created:
            run(["ip", "netns", "del", self.netns], check=False)
        if keep_dir:
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def proc_state(pid):
    """The state letter of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def outer(args, passthrough):
    """Builds the sandbox, runs the inner process in it, tears everything down."""
    if os.geteuid() != 0:
        print("SETUP: needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 2
    try:
        import mininet.net  # noqa: F401  (checked here so that a missing package fails loudly)
    except ImportError as e:
        print(f"SETUP: /usr/bin/python3 cannot import mininet ({e}); install the Debian "
              "package mininet (.ci/setup does)", file=sys.stderr)
        return 2
    if not os.access(args.periscope, os.X_OK):
        print(f"SETUP: --periscope {args.periscope}: not an executable", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    sandbox = Sandbox("pm" + secrets.token_hex(3)[:5])
    status = 2
    try:
        sandbox.start()
        status = sandbox.run_inner(passthrough)
    except SetupError as e:
        print(f"SETUP: {e}", flush=True)
        status = 2
    except Interrupted as e:
        print(f"FAIL: interrupted ({e})", flush=True)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if status != 0:
            sandbox.show_logs()
        sandbox.teardown(args.keep_dir)
    return status


# --------------------------------------------------------------------------------------------
# Inner process (inside the namespace): Mininet, periscope, the collector, the checks.
# --------------------------------------------------------------------------------------------


class Inner:
    """State of the inner run: what it started, so that `finally` can stop it."""

    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.net = None
        self.periscope = None
        self.collector = None
        self.api = None
        self.of_port = None
        self.token = None
        self.started_at = None

    def say(self, line):
        """One report line."""
        print(line, flush=True)

    def track(self, pid, what):
        """Records a pid for the outer process's cleanup."""
        started = start_time(pid)
        if started is not None:
            with open(f"{self.dir}/pids", "a") as f:
                f.write(f"{pid} {started} {what}\n")

    # ---- OVS helpers (inside the namespace, OVS_RUNDIR = our directory) ----

    @staticmethod
    def vsctl(*args):
        """ovs-vsctl against our ovsdb-server."""
        return run(["ovs-vsctl", "--timeout=5"] + list(args))

    @staticmethod
    def ofctl(*args):
        """ovs-ofctl -O OpenFlow13."""
        return run(["ovs-ofctl", "-O", "OpenFlow13"] + list(args))

    def ports(self, bridge):
        """The port names of a bridge."""
        return self.vsctl("list-ports", bridge).split()

    def owned_ports(self, bridge):
        """Ports of a bridge whose Interface is marked periscope-owned."""
        out = []
        for name in self.ports(bridge):
            ids = self.vsctl("get", "Interface", name, "external_ids")
            if "periscope-owned" in ids:
                out.append(name)
        return out

    def tap_flows(self, bridge):
        """periscope's mirror/classify flows on a bridge: (cookie, n_packets, line)."""
        flows = []
        for line in self.ofctl("dump-flows", bridge).splitlines():
            m = re.search(r"cookie=0x([0-9a-f]+)", line)
            if not m:
                continue
            cookie = int(m.group(1), 16)
            if cookie >> 48 == COOKIE_MAGIC and (cookie >> 40) & 0xFF in COOKIE_MIRROR_KINDS:
                n = re.search(r"n_packets=(\d+)", line)
                flows.append((cookie, int(n.group(1)) if n else 0, line.strip()))
        return flows

    def periscope_flows(self, bridge):
        """Every flow of periscope's on a bridge (base pipeline included)."""
        out = []
        for line in self.ofctl("dump-flows", bridge).splitlines():
            m = re.search(r"cookie=0x([0-9a-f]+)", line)
            if m and int(m.group(1), 16) >> 48 == COOKIE_MAGIC:
                out.append(line.strip())
        return out

    # ---- periscope ----

    def http(self, method, path, body=None):
        """One REST call; returns (status, decoded JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(f"http://{self.api}{path}", data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def post(self, path, body):
        """POST that must give 201."""
        status, v = self.http("POST", path, body)
        if status != 201:
            raise Failure(f"POST {path} {json.dumps(body)}: {status} {v}")
        return v

    def start_periscope(self):
        """Starts `periscope run` on our ovsdb-server; reads its OpenFlow and API addresses."""
        log = open(f"{self.dir}/periscope.log", "w")
        self.periscope = subprocess.Popen(
            [self.args.periscope, "run", "--openflow", "ptcp:0:127.0.0.1",
             "--ovsdb", f"mn=unix:{self.dir}/db.sock", "--api", "127.0.0.1:0",
             "--data-dir", f"{self.dir}/periscope-data", "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
            start_new_session=True)
        log.close()
        self.track(self.periscope.pid, "periscope")
        lines = line_reader(self.periscope.stdout)
        deadline = time.monotonic() + 10
        while self.api is None or self.of_port is None:
            line = next_line(lines, deadline)
            if line is None:
                raise SetupError("periscope run printed no 'api listening on' line in 10 s")
            if not line:
                raise SetupError(f"periscope run exited ({self.periscope.wait()})")
            m = re.match(r"operator token in (\S+)", line)
            if m:
                with open(m.group(1)) as f:
                    self.token = f.read().strip()
            m = re.match(r"openflow listening on tcp:127\.0\.0\.1:(\d+)", line)
            if m:
                self.of_port = int(m.group(1))
            m = re.match(r"api listening on http://(\S+)", line)
            if m:
                self.api = m.group(1)
        # Its northbound ovsdb-server is ours to clean up too, should periscope die first.
        try:
            with open(f"{self.dir}/periscope-data/nb.pid") as f:
                self.track(int(f.read().strip()), "periscope-nb")
        except (OSError, ValueError):
            pass

    def start_collector(self, host):
        """Starts `periscope collector` on the collector host; waits for `ready`."""
        out = f"{self.dir}/collector.jsonl"
        log = open(f"{self.dir}/collector.log", "w")
        self.collector = host.popen(
            [self.args.periscope, "collector", "--listen", "0.0.0.0", "--ready",
             "--stdin-stop", "--summary-every", "0", "--output", out],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        self.track(self.collector.pid, "collector")
        line = next_line(line_reader(self.collector.stdout), time.monotonic() + 10)
        if line is None:
            raise SetupError("periscope collector printed no 'ready' in 10 s")
        if line.strip() != "ready":
            raise SetupError(f"periscope collector: {line.strip() or 'exited'}")

    def stop_collector(self):
        """Closes the collector's stdin (it then exits) and reads its frames."""
        proc, self.collector = self.collector, None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        frames = []
        with open(f"{self.dir}/collector.jsonl") as f:
            for line in f:
                if line.strip():
                    frames.append(json.loads(line))
        return frames

    @staticmethod
    def stop_process(proc, sig=signal.SIGTERM):
        """Stops one child by pid: sig, then SIGKILL."""
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def fdb_port(self, bridge, mac):
        """The port a bridge's MAC learning table has for mac, or None."""
        out = run(["ovs-appctl", "-t", f"{self.dir}/vswitchd.ctl", "fdb/show", bridge])
        for line in out.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == mac:
                return int(parts[0]) if parts[0].isdigit() else None
        return None

    def check_active(self, flow_id, phase, dpid, ofport):
        """The tap flow's status: active at exactly (dpid, ofport) and programmed there."""
        status, v = self.http("GET", f"/v1/tap_flows/{flow_id}")
        if status != 200 or not isinstance(v, dict):
            return [f"{phase}: GET /v1/tap_flows/{flow_id}: {status} {v}"]
        active = v.get("active", [])
        where = ", ".join(f"dpid {int(a.get('dpid') or '0', 16)} port {a.get('ofport')}"
                          f"{'' if a.get('programmed') else ' (not programmed)'}"
                          for a in active)
        self.say(f"{phase}: periscope reports the tap flow {v.get('status')} at "
                 f"{where or 'nowhere'}")
        if v.get("status") != "ACTIVE" or len(active) != 1 \
                or int(active[0].get("dpid") or "0", 16) != dpid \
                or active[0].get("ofport") != ofport \
                or not active[0].get("programmed"):
            return [f"{phase}: tap flow should be ACTIVE and programmed at dpid {dpid} port "
                    f"{ofport} only: {json.dumps(v)}"]
        return []

    # ---- the scenario ----

    def ping(self, src, dst_ip, ident):
        """src pings dst_ip PINGS times with ICMP identifier ident; returns the replied seqs."""
        out = src.cmd(f"ping -n -c {PINGS} -i 0.05 -W 1 -e {ident} {dst_ip}")
        return sorted({int(s) for s in re.findall(r"icmp_seq=(\d+)", out)})

    def build(self):
        """The Mininet network, started, with periscope as the controller of s1..s3."""
        # pylint: disable=import-outside-toplevel
        from mininet.net import Mininet
        from mininet.node import OVSBridge, OVSSwitch, RemoteController
        from mininet.log import setLogLevel

        class PeriscopeController(RemoteController):
            """periscope, already listening: no telnet probe."""

            def checkListening(self):
                return

        class MobileSwitch(OVSSwitch):
            """An OVSSwitch whose interfaces can move, as in Mininet's examples/mobility.py."""

            def release(self, intf):
                """Forgets an interface (after its port was deleted)."""
                port = self.ports.pop(intf)
                del self.intfs[port]
                del self.nameToIntf[intf.name]

            def adopt(self, intf, port, external_ids):
                """Takes an interface over, renamed sN-ethP, and adds it as port P with the
                given external_ids in the same transaction."""
                OVSSwitch.addIntf(self, intf, port=port)
                intf.node = self
                intf.ifconfig("down")
                new = f"{self.name}-eth{port}"
                intf.cmd("ip link set", intf, "name", new)
                del self.nameToIntf[intf.name]
                intf.name = new
                self.nameToIntf[new] = intf
                intf.ifconfig("up")
                ids = " ".join(f"external_ids:{k}={v}" for k, v in external_ids.items())
                self.vsctl("add-port", self, intf, "-- set Interface", intf,
                           f"ofport_request={port}", ids)

            def move(self, intf, other, port, external_ids):
                """Moves one of our interfaces to another switch."""
                self.detach(intf)
                self.release(intf)
                other.adopt(intf, port, external_ids)

        setLogLevel("warning")
        # Mininet.init() would raise host-wide sysctls (fixLimits); the host is not ours.
        Mininet.inited = True
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                      waitConnected=False)
        self.net = net
        c0 = net.addController("c0", controller=PeriscopeController, ip="127.0.0.1",
                               port=self.of_port)
        self.track(c0.pid, "mininet-c0")
        switches = []
        for i in (1, 2, 3):
            s = net.addSwitch(f"s{i}", cls=MobileSwitch, datapath="user",
                              protocols="OpenFlow13", failMode="secure")
            self.track(s.pid, f"mininet-s{i}")
            switches.append(s)
        ul = net.addSwitch("ul", cls=OVSBridge, datapath="user", dpid="00000000000000ff")
        self.track(ul.pid, "mininet-ul")
        hosts = []
        for i, mac in ((1, H1_MAC), (2, H2_MAC), (3, H3_MAC)):
            h = net.addHost(f"h{i}", ip=f"{TENANT_NET}.{i}/24", mac=mac)
            self.track(h.pid, f"mininet-h{i}")
            hosts.append(h)
        col = net.addHost("col", ip=f"{COLLECTOR_IP}/24", mac=COLLECTOR_MAC)
        self.track(col.pid, "mininet-col")
        s1, s2, s3 = switches
        h1, h2, h3 = hosts
        net.addLink(h1, s1, port2=1)
        net.addLink(h2, s2, port2=1)
        net.addLink(h3, s3, port2=1)
        net.addLink(s1, s2, port1=2, port2=2)
        net.addLink(s2, s3, port1=3, port2=2)
        net.addLink(col, ul, port2=1)
        net.build()
        # A migrated VM announces itself with a gratuitous ARP; h1 does the same after its move.
        h1.cmd("sysctl -qw net.ipv4.conf.h1-eth0.arp_notify=1")
        self.started_at = time.monotonic()
        net.start()
        # The underlay: the bridge's internal port carries 192.0.2.1; copies leave through it.
        run(["ip", "addr", "add", f"{UNDERLAY_IP}/24", "dev", "ul"])
        run(["ip", "link", "set", "ul", "up"])
        run(["ovs-appctl", "-t", f"{self.dir}/vswitchd.ctl", "tnl/neigh/set", "ul",
             COLLECTOR_IP, COLLECTOR_MAC])
        return s1, s2, s3, h1, h2, h3, col

    def main(self):
        """The scenario; raises Failure or SetupError."""
        p = self.args.prefix
        iface_id, tenant = f"{p}-h1", f"{p}-tenant"
        marked = run(["ovs-vsctl", "--timeout=5", "get", "Open_vSwitch", ".",
                      "external_ids:periscope-mininet"]).strip().strip('"')
        if marked != p:
            raise SetupError(f"ovs-vsctl does not reach this run's ovsdb-server ({marked!r})")
        self.start_periscope()
        s1, s2, s3, h1, h2, _h3, col = self.build()
        self.say(f"topology: s1 - s2 - s3 (OVSSwitch datapath=user, OpenFlow13), h1/h2/h3 on "
                 f"s1/s2/s3, collector {COLLECTOR_IP} on underlay bridge ul ({UNDERLAY_IP})")
        ids = {"iface-id": iface_id, "attached-mac": H1_MAC, "tenant-id": tenant,
               "iface-status": "active"}
        h1_intf = h1.connectionsTo(s1)[0][1]
        self.vsctl("set", "Interface", h1_intf.name,
                   *(f"external_ids:{k}={v}" for k, v in ids.items()))

        def switches_ready():
            status, sw = self.http("GET", "/v1/switches")
            return status == 200 and sum(1 for s in sw if s.get("our_flows") is not None) >= 3
        wait_until("s1, s2, s3 connected to periscope and read back", 15, switches_ready,
                   interval=0.05)
        self.say(f"controller: s1, s2, s3 connected to periscope (openflow 127.0.0.1:"
                 f"{self.of_port}) {time.monotonic() - self.started_at:.1f} s after net.start()")

        self.start_collector(col)
        status, v = self.http("PUT", f"/v1/tenants/{tenant}",
                              {"allowed_collectors": [f"{COLLECTOR_IP}/32"]})
        if status not in (200, 201):
            raise Failure(f"PUT /v1/tenants/{tenant}: {status} {v}")
        svc = self.post("/v1/tap_services", {"name": f"{p}-col", "tenant": tenant,
                                             "encap": "vxlan", "remote_ip": COLLECTOR_IP})
        key = svc["key"]
        flow = self.post("/v1/tap_flows", {"name": f"{p}-h1", "tenant": tenant,
                                           "tap_service": svc["id"],
                                           "source": {"iface_id": iface_id},
                                           "direction": "BOTH"})
        t = wait_until("psc-vx-* and the tap's flows on s1", 10,
                       lambda: any(p.startswith("psc-vx-") for p in self.ports("s1")) and self.tap_flows("s1"))
        self.say(f"tap: service {svc['id']} vxlan key {key} -> {COLLECTOR_IP}, flow "
                 f"{flow['id']} on iface-id {iface_id} BOTH; on s1 in {t * 1000:.0f} ms")

        # Learning and the tunnel neighbour warm up, then the measured pings.
        self.ping(h1, h2.IP(), 0x1000)
        before = self.ping(h1, h2.IP(), 0x1001)
        self.say(f"before move: h1 -> h2 ping {len(before)}/{PINGS}")
        failures = self.check_active(flow["id"], "before move", 1, 1)

        t0 = time.monotonic()
        s1.move(h1_intf, s3, NEW_PORT, ids)
        t_moved = time.monotonic() - t0
        t = wait_until("the tap reprogrammed on s3 and gone from s1", 10, lambda: (
            any(p.startswith("psc-vx-") for p in self.ports("s3")) and self.tap_flows("s3")
            and not self.owned_ports("s1") and not self.tap_flows("s1")))
        self.say(f"move: h1's port moved s1 -> s3 as {h1_intf.name} (port {NEW_PORT}, same "
                 f"iface-id) in {t_moved * 1000:.0f} ms; tap on s3 {t * 1000:.0f} ms later")
        # The announcement (link bounce + arp_notify), then the switches' MAC tables must
        # point at h1's new place before the pings: until they do, h2's first reply would
        # still go towards s1, where h1 no longer is.
        h1.cmd("ip link set h1-eth0 down; ip link set h1-eth0 up")
        t = wait_until("s2 and s3 learning h1 at its new place", 5, lambda: (
            self.fdb_port("s2", H1_MAC) == 3 and self.fdb_port("s3", H1_MAC) == NEW_PORT))
        self.say(f"announce: h1 sent a gratuitous ARP; s2 and s3 learned its new place in "
                 f"{t * 1000:.0f} ms")

        after = self.ping(h1, h2.IP(), 0x1002)
        self.say(f"after move: h1 -> h2 ping {len(after)}/{PINGS}")
        time.sleep(0.3)
        s3_packets = sum(n for _, n, _ in self.tap_flows("s3"))
        frames = self.stop_collector()
        failures += self.check_active(flow["id"], "after move", 3, NEW_PORT)
        for phase, ident, replied in (("before move", 0x1001, before), ("after move", 0x1002,
                                                                         after)):
            if len(replied) < PINGS - 1:
                failures.append(f"{phase}: only {len(replied)}/{PINGS} pings answered")
            mine = [f for f in frames if (f.get("icmp") or {}).get("id") == ident]
            wrong = [f for f in mine if f.get("encap") != "vxlan" or f.get("key") != key]
            req = [f["icmp"]["seq"] for f in mine if f["icmp"]["kind"] == "request"
                   and f.get("ip_src") == h1.IP() and f not in wrong]
            rep = [f["icmp"]["seq"] for f in mine if f["icmp"]["kind"] == "reply"
                   and f.get("ip_dst") == h1.IP() and f not in wrong]
            missing = sorted((set(replied) - set(req)) | (set(replied) - set(rep)))
            dups = sorted({s for s in req if req.count(s) > 1} | {s for s in rep
                                                                   if rep.count(s) > 1})
            self.say(f"{phase}: copies under vxlan key {key}: {len(req)} requests, {len(rep)} "
                     f"replies (of {len(replied)} answered pings)")
            if missing:
                failures.append(f"{phase}: pings answered but not copied: seq {missing}")
            if dups:
                failures.append(f"{phase}: copied more than once: seq {dups}")
            if wrong:
                failures.append(f"{phase}: {len(wrong)} copies under another key or encap")
        foreign = sorted({(f.get("encap"), f.get("key")) for f in frames
                          if (f.get("encap"), f.get("key")) != ("vxlan", key)})
        if foreign:
            failures.append(f"copies under foreign keys: {foreign}")
        self.say(f"s3: the tap's flows matched {s3_packets} packets")
        if s3_packets < 2 * len(after):
            failures.append(f"s3's tap flows matched {s3_packets} packets, fewer than the "
                            f"{2 * len(after)} echo frames after the move")
        left_ports, left_flows = self.owned_ports("s1"), self.tap_flows("s1")
        if left_ports or left_flows:
            failures.append(f"s1 still has periscope's ports {left_ports} / flows "
                            f"{[l for _, _, l in left_flows]}")
        else:
            base = len(self.periscope_flows("s1"))
            self.say(f"s1: no periscope-owned port and no tap flow left ({base} base "
                     "pipeline flows)")
        if failures:
            for f in failures:
                self.say(f"FAIL: {f}")
            raise Failure(f"{len(failures)} check(s) failed")
        self.say("PASS")

    def cleanup(self):
        """Stops what this process started: Mininet's nodes (net.stop), the collector,
        periscope. The outer process removes the rest."""
        if self.collector is not None:
            self.stop_process(self.collector)
        if self.net is not None:
            from mininet.node import Node  # pylint: disable=import-outside-toplevel
            for node in self.net.hosts + self.net.switches + self.net.controllers:
                # A node interrupted in the middle of a command cannot take another one.
                if getattr(node, "waiting", False):
                    node.waiting = False
            try:
                self.net.stop()
                # RemoteController.stop() does nothing, so its node's shell would stay.
                for c in self.net.controllers:
                    Node.terminate(c)
            except Exception as e:  # pylint: disable=broad-except
                print(f"cleanup: net.stop(): {e} (the namespace is deleted anyway)",
                      file=sys.stderr)
        self.stop_process(self.periscope, signal.SIGINT)


def inner(args):
    """The inner run, inside the namespace."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if os.environ.get("OVS_RUNDIR") != args.dir:
        print("SETUP: OVS_RUNDIR is not this run's directory", flush=True)
        return 2
    state = Inner(args)
    print(f"mininet mobility tap: prefix {args.prefix}, namespace {args.prefix}-mn, "
          f"dir {args.dir}", flush=True)
    try:
        state.main()
        return 0
    except Failure as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    except SetupError as e:
        print(f"SETUP: {e}", flush=True)
        return 2
    except Interrupted as e:
        print(f"FAIL: interrupted ({e})", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state.cleanup()


def main():
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--periscope", required=True, help="path of the periscope binary")
    ap.add_argument("--keep-dir", action="store_true", help="keep the run directory (logs)")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        return inner(args)
    args.periscope = os.path.abspath(args.periscope)
    return outer(args, ["--periscope", args.periscope])


if __name__ == "__main__":
    sys.exit(main())
