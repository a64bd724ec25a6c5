//! What the runner does to a hypervisor's Open vSwitch beyond what the lab offers: the tenant
//! underlay (a patch from `br-int` to `br-phy`), tenant VLANs, restarting ovs-vswitchd, and
//! reading what periscope left behind.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::traffic::signal;
use crate::lab::Hypervisor;
use crate::policy::cookie;

/// Tunnel interface types (`Interface.type`) Open vSwitch knows.
const TUNNEL_TYPES: &[&str] =
    &["vxlan", "gre", "geneve", "stt", "erspan", "ip6erspan", "ip6gre", "gtpu", "bareudp", "srv6"];

/// Joins `br-int` to `br-phy` with a patch pair, so every hypervisor's VMs share one L2
/// underlay (the lab's fabric bridge), tenants kept apart by VLAN. No tunnel port is made on
/// `br-int`: every tunnel port found there is the controller's.
pub fn patch_to_underlay(hv: &Hypervisor) -> anyhow::Result<()> {
    hv.vsctl(&[
        "add-port",
        "br-int",
        "int-to-phy",
        "--",
        "set",
        "Interface",
        "int-to-phy",
        "type=patch",
        "options:peer=phy-to-int",
        "--",
        "add-port",
        "br-phy",
        "phy-to-int",
        "--",
        "set",
        "Interface",
        "phy-to-int",
        "type=patch",
        "options:peer=int-to-phy",
    ])?;
    Ok(())
}

/// Makes `br-int` retry a lost controller every second at most (default: up to 8 s), so a
/// restarted controller is found again quickly.
/// Every controller `br-int` lists gets it.
pub fn fast_reconnect(hv: &Hypervisor) -> anyhow::Result<()> {
    let ids = hv.vsctl(&["--bare", "--columns=_uuid", "list", "Controller"])?;
    for id in ids.split_whitespace() {
        hv.vsctl(&["set", "Controller", id, "max_backoff=1000"])?;
    }
    Ok(())
}

/// The `br-int` port of the interface with this iface-id on `hv`, if any.
pub fn port_of_iface(hv: &Hypervisor, iface_id: &str) -> anyhow::Result<Option<String>> {
    let out = hv.vsctl(&[
        "--bare",
        "--columns=name",
        "find",
        "Interface",
        &format!("external_ids:iface-id=\"{iface_id}\""),
    ])?;
    Ok(out.split_whitespace().next().map(str::to_string))
}

/// Puts a port in a tenant's VLAN.
pub fn tag_port(hv: &Hypervisor, port: &str, vlan: u16) -> anyhow::Result<()> {
    hv.vsctl(&["set", "Port", port, &format!("tag={vlan}")])?;
    Ok(())
}

/// Unplugs a VM: deletes its port from `br-int` and its interface (its namespace stays until
/// the lab is torn down).
pub fn unplug(hv: &Hypervisor, port: &str, vm_netns: &str) -> anyhow::Result<()> {
    hv.vsctl(&["del-port", "br-int", port])?;
    let out = Command::new("ip")
        .args(["-n", vm_netns, "link", "del", "eth0"])
        .output()
        .context("running ip link del")?;
    if !out.status.success() {
        bail!("ip -n {vm_netns} link del eth0: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Whether `/proc/<pid>` shows a live process called `comm`.
fn alive(pid: u32, comm: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == comm)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Stops one of `hv`'s daemons by the pid in `pidfile`: SIGTERM, SIGKILL after 5 s.
fn stop_daemon(hv: &Hypervisor, pidfile: &Path, program: &str) -> anyhow::Result<()> {
    let pid = read_pid(pidfile).with_context(|| format!("reading {program}'s pidfile"))?;
    if !alive(pid, program) {
        bail!("{program} (pid {pid}) of {} is not running", hv.name());
    }
    signal(pid, "-TERM");
    let start = Instant::now();
    while alive(pid, program) {
        if start.elapsed() > Duration::from_secs(5) {
            signal(pid, "-KILL");
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{program} (pid {pid}) of {} does not exit", hv.name());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Restarts `hv`'s ovsdb-server on the same database, socket and log (the controller's OVSDB
/// client reconnects and resyncs; nothing in the database is lost).
pub fn restart_ovsdb(hv: &Hypervisor) -> anyhow::Result<()> {
    stop_daemon(hv, &hv.dir().join("ovsdb.pid"), "ovsdb-server")?;
    hv.restart_ovsdb().context("starting ovsdb-server again")?;
    Ok(())
}

/// Restarts `hv`'s ovs-vswitchd: stopped by the pid in its pidfile, started again on the same
/// database, sockets and log; then the tunnel neighbors it forgot are seeded again.
pub fn restart_vswitchd(hv: &Hypervisor, neighbors: &[(Ipv4Addr, String)]) -> anyhow::Result<()> {
    let dir = hv.dir();
    let pidfile = dir.join("vswitchd.pid");
    stop_daemon(hv, &pidfile, "ovs-vswitchd")?;
    let stderr = std::fs::File::create(dir.join("vswitchd.stderr")).context("vswitchd.stderr")?;
    let status = Command::new("ip")
        .args(["netns", "exec", hv.netns(), "ovs-vswitchd"])
        .arg(hv.db_remote())
        .arg(format!("--unixctl={}", hv.vswitchd_ctl().display()))
        .arg(format!("--pidfile={}", pidfile.display()))
        .arg(format!("--log-file={}", dir.join("vswitchd.log").display()))
        .arg("--detach")
        .env("OVS_RUNDIR", dir)
        .env("OVS_DBDIR", dir)
        .env("OVS_LOGDIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()
        .context("starting ovs-vswitchd")?;
    if !status.success() {
        bail!(
            "ovs-vswitchd did not start again ({status}): {}",
            std::fs::read_to_string(dir.join("vswitchd.stderr")).unwrap_or_default().trim()
        );
    }
    for (ip, mac) in neighbors {
        hv.appctl(&["tnl/neigh/set", "br-phy", &ip.to_string(), mac])?;
    }
    Ok(())
}

/// periscope's flows on `br-int` that serve taps (not the pipeline every bridge has), as
/// `dump-flows` prints them.
pub fn leftover_flows(hv: &Hypervisor) -> anyhow::Result<Vec<String>> {
    let filter = format!("cookie={:#x}/{:#x}", cookie::MAGIC, cookie::OURS_MASK);
    let out = hv.ofctl(&["dump-flows", "br-int", &filter])?;
    Ok(non_base_flows(&out))
}

/// The lines of a `dump-flows` output whose cookie is that of a periscope flow serving taps.
pub fn non_base_flows(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| {
            let c = l.split("cookie=").nth(1)?.split([',', ' ']).next()?;
            let c = u64::from_str_radix(c.trim_start_matches("0x"), 16).ok()?;
            cookie::serves_taps(periscope_codec::openflow::Cookie(c)).then(|| l.trim().to_string())
        })
        .collect()
}

/// The tunnel ports on `hv`'s `br-int` (`name (type)`).
pub fn tunnel_ports(hv: &Hypervisor) -> anyhow::Result<Vec<String>> {
    let ifaces = hv.vsctl(&["list-ifaces", "br-int"])?;
    let listing =
        hv.vsctl(&["--format=csv", "--no-headings", "--columns=name,type", "list", "Interface"])?;
    Ok(tunnels_among(&ifaces, &listing))
}

/// From `list-ifaces` and a `name,type` CSV listing, the tunnel interfaces.
pub fn tunnels_among(ifaces: &str, listing: &str) -> Vec<String> {
    let on_bridge: Vec<&str> = ifaces.split_whitespace().collect();
    listing
        .lines()
        .filter_map(|l| {
            let (name, kind) = l.split_once(',')?;
            let (name, kind) = (name.trim_matches('"'), kind.trim().trim_matches('"'));
            (on_bridge.contains(&name) && TUNNEL_TYPES.contains(&kind))
                .then(|| format!("{name} ({kind})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_base_periscope_flows_are_leftovers() {
        let dump = "\
 cookie=0x5053010000000000, duration=3.1s, table=0, n_packets=0, n_bytes=0, priority=0 actions=goto_table:1
 cookie=0x5053020000000007, duration=3.1s, table=2, n_packets=4, n_bytes=392, priority=100,in_port=3 actions=output:9
 cookie=0x1234, duration=1s, table=0, priority=5 actions=drop
 cookie=0x5053030000000000, duration=3.1s, table=0, priority=100,in_port=3 actions=clone(resubmit(,2))
";
        let left = non_base_flows(dump);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].contains("table=2"));
        assert!(non_base_flows("OFPST_FLOW reply (OF1.3) (xid=0x2):\n").is_empty());
    }

    #[test]
    fn tunnel_ports_are_those_of_br_int_with_a_tunnel_type() {
        let ifaces = "int-to-phy\npxv1g0\npsc-vxlan\n";
        let listing =
            "int-to-phy,patch\npxv1g0,\"\"\npsc-vxlan,vxlan\nother-gre,gre\nbr-int,internal\n";
        assert_eq!(tunnels_among(ifaces, listing), vec!["psc-vxlan (vxlan)".to_string()]);
    }
}
