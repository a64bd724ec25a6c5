//! A VM: a network namespace with one veth whose other end sits on a hypervisor's `br-int`,
//! tagged the way Nova/os-vif tag a VM port, and live migration make-before-break.

use std::fmt;
use std::io::Read;
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cmd::Cmd;
use super::{Hypervisor, LabError, LabInner, Result};

/// The tenant network every VM address is taken from by default (documentation range).
const TENANT_NET: [u8; 3] = [198, 51, 100];

/// How a VM is built.
#[derive(Debug, Clone)]
pub struct VmOptions {
    name: String,
    mac: Option<String>,
    ip: Option<Ipv4Addr>,
    prefix_len: u8,
    mtu: u32,
    iface_id: Option<String>,
    vm_uuid: Option<String>,
    external_ids: Vec<(String, String)>,
}

impl VmOptions {
    /// Defaults: MAC `02:51:00:00:00:<n>`, IP 198.51.100.<n>/24, MTU 1450, iface-id and vm-uuid
    /// derived from the lab prefix and the name.
    pub fn new(name: &str) -> VmOptions {
        VmOptions {
            name: name.to_string(),
            mac: None,
            ip: None,
            prefix_len: 24,
            mtu: 1450,
            iface_id: None,
            vm_uuid: None,
            external_ids: Vec::new(),
        }
    }

    /// Sets the MAC address (`aa:bb:cc:dd:ee:ff`).
    pub fn mac(mut self, mac: &str) -> VmOptions {
        self.mac = Some(mac.to_ascii_lowercase());
        self
    }

    /// Sets the IPv4 address and prefix length.
    pub fn ip(mut self, ip: Ipv4Addr, prefix_len: u8) -> VmOptions {
        self.ip = Some(ip);
        self.prefix_len = prefix_len;
        self
    }

    /// Sets the MTU of the VM's interface.
    pub fn mtu(mut self, mtu: u32) -> VmOptions {
        self.mtu = mtu;
        self
    }

    /// Sets `external_ids:iface-id` (the Neutron port id).
    pub fn iface_id(mut self, id: &str) -> VmOptions {
        self.iface_id = Some(id.to_string());
        self
    }

    /// Sets `external_ids:vm-uuid`.
    pub fn vm_uuid(mut self, id: &str) -> VmOptions {
        self.vm_uuid = Some(id.to_string());
        self
    }

    /// Adds one more `external_ids` entry on the port (e.g. `tenant`, `app`).
    pub fn external_id(mut self, key: &str, value: &str) -> VmOptions {
        self.external_ids.push((key.to_string(), value.to_string()));
        self
    }
}

/// A step of a live migration, reported to the caller's hook as soon as it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationStep {
    /// The new port is on the destination's `br-int`; both hypervisors show the iface-id.
    Plugged,
    /// The VM now uses the new interface (old one down, gratuitous ARP sent).
    Switched,
    /// The old port has been deleted from the source.
    Unplugged,
}

/// When each migration step finished.
#[derive(Debug, Clone, Copy)]
pub struct MigrationTimings {
    /// When the migration began.
    pub started: Instant,
    /// When the destination port was plugged.
    pub plugged: Instant,
    /// When the VM switched to the destination.
    pub switched: Instant,
    /// When the source port was unplugged.
    pub unplugged: Instant,
}

/// One echo reply seen by `ping`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingReply {
    /// `icmp_seq`.
    pub seq: u32,
    /// Round-trip time in milliseconds.
    pub rtt_ms: f64,
}

/// What a `ping` run saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingReport {
    /// Echo requests sent.
    pub sent: u32,
    /// Echo replies received (duplicates not counted).
    pub received: u32,
    /// Replies in arrival order.
    pub replies: Vec<PingReply>,
}

impl PingReport {
    /// Parses iputils `ping -n` output.
    pub fn parse(output: &str) -> Option<PingReport> {
        let mut report = PingReport::default();
        let mut summary = false;
        for line in output.lines() {
            if line.contains("bytes from") {
                let field = |name: &str| {
                    line.split_whitespace().find_map(|w| w.strip_prefix(name).map(str::to_string))
                };
                let seq = field("icmp_seq=").and_then(|s| s.parse().ok());
                let rtt = field("time=").and_then(|s| s.parse().ok());
                if let (Some(seq), Some(rtt_ms)) = (seq, rtt) {
                    report.replies.push(PingReply { seq, rtt_ms });
                }
            } else if line.contains("packets transmitted") {
                let mut nums = line
                    .split(',')
                    .map(|part| part.split_whitespace().next().and_then(|n| n.parse::<u32>().ok()));
                report.sent = nums.next().flatten()?;
                report.received = nums.next().flatten()?;
                summary = true;
            }
        }
        summary.then_some(report)
    }

    /// The sequence numbers in `1..=sent` that got no reply.
    pub fn lost(&self) -> Vec<u32> {
        (1..=self.sent).filter(|s| !self.replies.iter().any(|r| r.seq == *s)).collect()
    }
}

/// A `ping` running in the background.
pub struct PingRun {
    lab: Arc<LabInner>,
    child: u64,
    command: String,
}

impl PingRun {
    /// Waits for the run to finish and returns what it saw.
    pub fn wait(self) -> Result<PingReport> {
        let mut child = self
            .lab
            .take_child(self.child)
            .ok_or_else(|| LabError::TornDown { prefix: self.lab.prefix.clone() })?;
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout.read_to_string(&mut out).map_err(|source| LabError::Io {
                what: format!("reading the output of `{}`", self.command),
                source,
            })?;
        }
        let _ = child.wait();
        PingReport::parse(&out).ok_or(LabError::Output { command: self.command, output: out })
    }
}

/// A VM of the lab.
pub struct Vm {
    lab: Arc<LabInner>,
    name: String,
    netns: String,
    mac: String,
    ip: Ipv4Addr,
    prefix_len: u8,
    mtu: u32,
    iface_id: String,
    vm_uuid: String,
    external_ids: Vec<(String, String)>,
    hv: Hypervisor,
    port: String,
    generation: u32,
    index: u32,
}

impl fmt::Debug for Vm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("mac", &self.mac)
            .field("hypervisor", &self.hv.name())
            .field("port", &self.port)
            .finish()
    }
}

impl Vm {
    pub(crate) fn create(lab: &Arc<LabInner>, hv: &Hypervisor, o: VmOptions) -> Result<Vm> {
        lab.check_name("VM name", &o.name)?;
        let index = lab.next_index();
        let Ok(lo @ 1..=254) = u8::try_from(index) else {
            return Err(LabError::Invalid {
                field: "VM count",
                value: index.to_string(),
                expected: "at most 254 hypervisors, VMs and collectors per lab",
            });
        };
        let mut vm = Vm {
            lab: lab.clone(),
            netns: format!("{}-{}", lab.prefix, o.name),
            mac: o.mac.unwrap_or_else(|| format!("02:51:00:00:00:{lo:02x}")),
            ip: o.ip.unwrap_or(Ipv4Addr::new(TENANT_NET[0], TENANT_NET[1], TENANT_NET[2], lo)),
            prefix_len: o.prefix_len,
            mtu: o.mtu,
            iface_id: o.iface_id.unwrap_or_else(|| format!("{}-{}-port", lab.prefix, o.name)),
            vm_uuid: o.vm_uuid.unwrap_or_else(|| format!("{}-{}-uuid", lab.prefix, o.name)),
            external_ids: o.external_ids,
            hv: hv.clone(),
            port: String::new(),
            generation: 0,
            index,
            name: o.name,
        };
        lab.add_netns(&vm.netns)?;
        // A gratuitous ARP whenever an interface comes up or changes its MAC: this is how the
        // VM announces itself after a migration (no arping needed).
        for conf in ["all", "default"] {
            Cmd::in_netns(&vm.netns, "sysctl")
                .args(["-qw", &format!("net.ipv4.conf.{conf}.arp_notify=1")])
                .run()?;
        }
        let port = vm.plug(hv, "eth0")?;
        vm.vm_ip(&["addr", "add", &vm.cidr(), "dev", "eth0"])?;
        vm.vm_ip(&["link", "set", "eth0", "up"])?;
        vm.port = port;
        Ok(vm)
    }

    /// Creates a veth between the VM (`vm_if`, down, MAC/MTU set, tx offload off) and `hv`, and
    /// adds the hypervisor end to `br-int` with the VM's external_ids. Returns the port name.
    fn plug(&mut self, hv: &Hypervisor, vm_if: &str) -> Result<String> {
        let port = format!("{}v{}g{}", self.lab.prefix, self.index, self.generation);
        self.generation += 1;
        Cmd::new("ip")
            .args(["-n", hv.netns(), "link", "add", &port, "type", "veth"])
            .args(["peer", "name", vm_if, "netns", &self.netns])
            .run()?;
        let mtu = self.mtu.to_string();
        self.vm_ip(&["link", "set", vm_if, "address", &self.mac, "mtu", &mtu])?;
        // TCP through the userspace datapath from a veth needs checksums filled in by the sender.
        Cmd::in_netns(&self.netns, "ethtool").args(["-K", vm_if, "tx", "off"]).run()?;
        hv.ip(&["link", "set", &port, "up"])?;
        let mut args: Vec<String> = ["add-port", "br-int", &port, "--", "set", "Interface", &port]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(format!("external_ids:iface-id=\"{}\"", self.iface_id));
        args.push(format!("external_ids:attached-mac=\"{}\"", self.mac));
        args.push(format!("external_ids:vm-uuid=\"{}\"", self.vm_uuid));
        args.push("external_ids:iface-status=active".into());
        for (k, v) in &self.external_ids {
            args.push(format!("external_ids:\"{k}\"=\"{v}\""));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        hv.vsctl(&refs)?;
        Ok(port)
    }

    fn vm_ip(&self, args: &[&str]) -> Result<String> {
        Cmd::new("ip").args(["-n", &self.netns]).args(args).run()
    }

    fn cidr(&self) -> String {
        format!("{}/{}", self.ip, self.prefix_len)
    }

    /// The VM's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Its MAC address (lowercase).
    pub fn mac(&self) -> &str {
        &self.mac
    }

    /// Its IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its `external_ids:iface-id`.
    pub fn iface_id(&self) -> &str {
        &self.iface_id
    }

    /// Its `external_ids:vm-uuid`.
    pub fn vm_uuid(&self) -> &str {
        &self.vm_uuid
    }

    /// The hypervisor it currently runs on.
    pub fn hypervisor(&self) -> &Hypervisor {
        &self.hv
    }

    /// The name of its port on the current hypervisor's `br-int`.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The OpenFlow port number of its port on the current hypervisor's `br-int`.
    pub fn ofport(&self) -> Result<u32> {
        self.hv.ofport(&self.port)
    }

    /// Runs a command inside the VM's namespace and returns its output.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        Cmd::in_netns(&self.netns, program).args(args).run()
    }

    fn ping_cmd(&self, target: Ipv4Addr, count: u32, interval: Duration) -> Cmd {
        Cmd::in_netns(&self.netns, "ping").args([
            "-n".to_string(),
            "-c".to_string(),
            count.to_string(),
            "-i".to_string(),
            format!("{:.3}", interval.as_secs_f64()),
            "-W".to_string(),
            "1".to_string(),
            target.to_string(),
        ])
    }

    /// Pings `target` `count` times, `interval` apart, and waits for the result. Loss is not an
    /// error: read the report.
    pub fn ping(&self, target: Ipv4Addr, count: u32, interval: Duration) -> Result<PingReport> {
        let cmd = self.ping_cmd(target, count, interval);
        let (_, out, _, _) = cmd.run_raw()?;
        PingReport::parse(&out).ok_or(LabError::Output { command: cmd.display(), output: out })
    }

    /// Starts pinging in the background; [`PingRun::wait`] collects the report.
    pub fn ping_start(&self, target: Ipv4Addr, count: u32, interval: Duration) -> Result<PingRun> {
        let cmd = self.ping_cmd(target, count, interval);
        let child = cmd.spawn_group(Stdio::null(), Stdio::piped(), Stdio::null())?;
        let id = self.lab.add_child(&cmd.display(), child);
        Ok(PingRun { lab: self.lab.clone(), child: id, command: cmd.display() })
    }

    /// Live-migrates the VM to `to`, make-before-break, like Nova.
    pub fn migrate(&mut self, to: &Hypervisor) -> Result<MigrationTimings> {
        self.migrate_with(to, |_, _| Ok(()))
    }

    /// Live-migrates the VM to `to`, calling `hook` after each step (while the world is in that
    /// state: e.g. both hypervisors show the port during [`MigrationStep::Plugged`]):
    ///
    /// 1. plug a new veth on `to`'s `br-int` with the same iface-id, VM side down;
    /// 2. in the VM, take the old interface down and bring the new one up with the MAC and IP
    ///    (`arp_notify` makes the kernel send a gratuitous ARP as it comes up);
    /// 3. delete the old port from the source and its veth.
    pub fn migrate_with(
        &mut self,
        to: &Hypervisor,
        mut hook: impl FnMut(MigrationStep, &Vm) -> Result<()>,
    ) -> Result<MigrationTimings> {
        self.lab.check_alive()?;
        let started = Instant::now();
        let old_hv = self.hv.clone();
        let old_port = self.port.clone();
        let new_if = format!("mig{}", self.generation);
        let old_if = format!("old{}", self.generation);

        let new_port = self.plug(to, &new_if)?;
        let plugged = Instant::now();
        hook(MigrationStep::Plugged, self)?;

        let mtu = self.mtu.to_string();
        let batch = [
            "link set eth0 down".to_string(),
            "addr flush dev eth0".to_string(),
            format!("link set eth0 name {old_if}"),
            format!("link set {new_if} name eth0"),
            format!("addr add {} dev eth0", self.cidr()),
            format!("link set eth0 mtu {mtu} up"),
        ]
        .join("\n");
        Cmd::new("ip").args(["-n", &self.netns, "-batch", "-"]).stdin(batch + "\n").run()?;
        self.hv = to.clone();
        self.port = new_port;
        let switched = Instant::now();
        hook(MigrationStep::Switched, self)?;

        old_hv.vsctl(&["del-port", "br-int", &old_port])?;
        self.vm_ip(&["link", "del", &old_if])?;
        let unplugged = Instant::now();
        hook(MigrationStep::Unplugged, self)?;
        Ok(MigrationTimings { started, plugged, switched, unplugged })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
PING 198.51.100.2 (198.51.100.2) 56(84) bytes of data.
64 bytes from 198.51.100.2: icmp_seq=1 ttl=64 time=0.412 ms
64 bytes from 198.51.100.2: icmp_seq=3 ttl=64 time=0.101 ms

--- 198.51.100.2 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.101/0.256/0.412/0.155 ms
";

    #[test]
    fn parses_replies_and_summary() {
        let r = PingReport::parse(OUTPUT).expect("parses");
        assert_eq!(r.sent, 3);
        assert_eq!(r.received, 2);
        assert_eq!(
            r.replies,
            vec![PingReply { seq: 1, rtt_ms: 0.412 }, PingReply { seq: 3, rtt_ms: 0.101 }]
        );
        assert_eq!(r.lost(), vec![2]);
    }

    #[test]
    fn output_without_summary_is_rejected() {
        assert_eq!(PingReport::parse("ping: connect: Network is unreachable\n"), None);
    }
}
