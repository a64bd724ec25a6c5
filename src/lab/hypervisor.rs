//! A hypervisor: one network namespace running its own ovsdb-server and userspace ovs-vswitchd,
//! with `br-phy` on the underlay and `br-int` for VMs and tunnels.

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::cmd::{self, Cmd};
use super::{Endpoint, LabError, LabInner, Result, UNDERLAY_PREFIX_LEN};

/// Where the Open vSwitch schema lives on Debian; `$PERISCOPE_OVS_SCHEMA` overrides it.
const DEFAULT_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// How long `ovs-vsctl` may wait for ovs-vswitchd to apply a change.
const VSCTL_TIMEOUT_S: u32 = 20;

/// The port ovsdb-server's extra TCP remote listens on inside the hypervisor's own namespace.
const DB_TCP_PORT_IN_NETNS: u16 = 6640;
/// The `pssl:` port of ovsdb-server inside a hypervisor's namespace.
const DB_SSL_PORT_IN_NETNS: u16 = 6641;

/// What `br-int` does without a controller (`fail_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailMode {
    /// Only the flows installed by a controller (or `ovs-ofctl`) forward anything.
    #[default]
    Secure,
    /// Falls back to a learning switch while no controller is connected.
    Standalone,
}

impl FailMode {
    fn as_str(self) -> &'static str {
        match self {
            FailMode::Secure => "secure",
            FailMode::Standalone => "standalone",
        }
    }
}

/// Where `br-int` connects to its OpenFlow controller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControllerTarget {
    /// A unix socket the controller listens on; works across namespaces. ovs-vswitchd only
    /// connects to sockets in its run directory, so for a path elsewhere the lab targets a symlink
    /// it makes in the hypervisor's directory.
    Unix(PathBuf),
    /// A TCP port the controller listens on at 127.0.0.1 in the lab process's own namespace.
    /// ovs-vswitchd connects to `tcp:127.0.0.1:<port>` in its namespace, where a `socat` relay
    /// carries the connection through a unix socket to ours.
    HostTcp(u16),
    /// The same relay as [`ControllerTarget::HostTcp`], with ovs-vswitchd connecting to
    /// `ssl:127.0.0.1:<port>` (after [`Hypervisor::set_ssl`]); TLS passes the relays untouched.
    HostSsl(u16),
    /// Any target string, passed to `set-controller` verbatim (seen from the hypervisor's netns).
    Raw(String),
}

/// How a hypervisor is built.
#[derive(Debug, Clone, Default)]
pub struct HypervisorOptions {
    /// `br-int`'s fail mode.
    pub fail_mode: FailMode,
    /// `br-int`'s controllers (none: no controller; several: every instance of a controller
    /// that elects a leader among them).
    pub controllers: Vec<ControllerTarget>,
}

impl HypervisorOptions {
    /// Options with `br-int` in standalone mode and no controller.
    pub fn standalone() -> HypervisorOptions {
        HypervisorOptions { fail_mode: FailMode::Standalone, controllers: Vec::new() }
    }

    /// Options with `br-int` in secure mode and no controller.
    pub fn secure() -> HypervisorOptions {
        HypervisorOptions { fail_mode: FailMode::Secure, controllers: Vec::new() }
    }

    /// Adds a controller target (call again for each instance of a controller cluster).
    pub fn controller(mut self, target: ControllerTarget) -> HypervisorOptions {
        self.controllers.push(target);
        self
    }
}

/// The encapsulation of a tunnel port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelKind {
    /// VXLAN (UDP 4789).
    Vxlan,
    /// GRE (IP protocol 47), Ethernet payload.
    Gre,
}

impl TunnelKind {
    fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Gre => "gre",
        }
    }
}

/// A tunnel port's remote endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelRemote {
    /// Chosen per packet by `set_field:<ip>->tun_dst` (`options:remote_ip=flow`).
    Flow,
    /// A fixed remote.
    Ip(Ipv4Addr),
}

/// A tunnel port's key (VNI or GRE key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKey {
    /// Chosen per packet by `set_field:<key>->tun_id` (`options:key=flow`).
    Flow,
    /// A fixed key.
    Fixed(u32),
}

/// A hypervisor of the lab. Cheap to clone; the lab owns what it stands for.
#[derive(Clone)]
pub struct Hypervisor {
    lab: Arc<LabInner>,
    name: String,
    index: u32,
    netns: String,
    dir: PathBuf,
    underlay_ip: Ipv4Addr,
    underlay_mac: String,
    dpid: u64,
}

impl fmt::Debug for Hypervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hypervisor")
            .field("name", &self.name)
            .field("netns", &self.netns)
            .field("underlay_ip", &self.underlay_ip)
            .finish()
    }
}

impl Hypervisor {
    pub(crate) fn create(
        lab: &Arc<LabInner>,
        name: &str,
        options: HypervisorOptions,
    ) -> Result<Hypervisor> {
        lab.check_name("hypervisor name", name)?;
        let index = lab.next_index();
        if index > 99 {
            return Err(LabError::Invalid {
                field: "hypervisor count",
                value: index.to_string(),
                expected: "at most 99 hypervisors, VMs and collectors per lab",
            });
        }
        let dir = lab.dir.join(name);
        fs::create_dir(&dir).map_err(|source| LabError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let hv = Hypervisor {
            lab: lab.clone(),
            name: name.to_string(),
            index,
            netns: format!("{}-{name}", lab.prefix),
            underlay_ip: Ipv4Addr::new(192, 0, 2, index as u8),
            underlay_mac: format!("02:50:00:00:01:{index:02x}"),
            dpid: lab.dpid(index, 1),
            dir,
        };
        lab.add_netns(&hv.netns)?;
        hv.start_ovs()?;
        hv.build_br_phy()?;
        hv.build_br_int(&options)?;
        lab.add_endpoint(Endpoint {
            ip: hv.underlay_ip,
            mac: hv.underlay_mac.clone(),
            vswitchd_ctl: Some(hv.vswitchd_ctl()),
        })?;
        Ok(hv)
    }

    fn ovs_cmd(&self, program: &str) -> Cmd {
        Cmd::in_netns(&self.netns, program)
            .env("OVS_RUNDIR", &self.dir)
            .env("OVS_DBDIR", &self.dir)
            .env("OVS_LOGDIR", &self.dir)
    }

    fn start_ovs(&self) -> Result<()> {
        let d = &self.dir;
        let schema =
            std::env::var("PERISCOPE_OVS_SCHEMA").unwrap_or_else(|_| DEFAULT_SCHEMA.to_string());
        Cmd::new("ovsdb-tool").arg("create").arg(d.join("conf.db")).arg(&schema).run()?;
        self.lab.add_daemon(d.join("ovsdb.pid"), "ovsdb-server");
        self.start_ovsdb_server()?;
        Cmd::new("ovs-vsctl")
            .arg(format!("--db={}", self.db_remote()))
            .args(["--no-wait", "init"])
            .run()?;
        self.lab.add_daemon(d.join("vswitchd.pid"), "ovs-vswitchd");
        self.ovs_cmd("ovs-vswitchd")
            .arg(self.db_remote())
            .arg(format!("--unixctl={}", d.join("vswitchd.ctl").display()))
            .arg(format!("--pidfile={}", d.join("vswitchd.pid").display()))
            .arg(format!("--log-file={}", d.join("vswitchd.log").display()))
            .arg("--detach")
            .run_detaching(&d.join("vswitchd.stderr"))?;
        Ok(())
    }

    fn start_ovsdb_server(&self) -> Result<()> {
        let d = &self.dir;
        self.ovs_cmd("ovsdb-server")
            .arg(d.join("conf.db"))
            .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
            .arg(format!("--unixctl={}", d.join("ovsdb.ctl").display()))
            .arg(format!("--pidfile={}", d.join("ovsdb.pid").display()))
            .arg(format!("--log-file={}", d.join("ovsdb.log").display()))
            // TLS for `pssl:` remotes from the SSL row that `set-ssl` writes, as ovs-ctl does.
            .args([
                "--private-key=db:Open_vSwitch,SSL,private_key",
                "--certificate=db:Open_vSwitch,SSL,certificate",
                "--ca-cert=db:Open_vSwitch,SSL,ca_cert",
            ])
            .arg("--detach")
            .run_detaching(&d.join("ovsdb.stderr"))
    }

    /// Starts ovsdb-server again with the command line it was first started with, after it was
    /// stopped or killed (by the pid in `<dir>/ovsdb.pid`). Remotes added later are not restored.
    pub fn restart_ovsdb(&self) -> Result<()> {
        self.start_ovsdb_server()
    }

    fn build_br_phy(&self) -> Result<()> {
        let fab = &self.lab.fabric;
        let fab_end = format!("hv{}", self.index);
        Cmd::new("ip")
            .args(["-n", fab, "link", "add", &fab_end, "type", "veth", "peer", "name", "uplink"])
            .args(["netns", &self.netns])
            .run()?;
        Cmd::new("ip").args(["-n", fab, "link", "set", &fab_end, "master", "br0", "up"]).run()?;
        self.ip(&["link", "set", "uplink", "up"])?;
        self.vsctl(&[
            "add-br",
            "br-phy",
            "--",
            "set",
            "bridge",
            "br-phy",
            "datapath_type=netdev",
            "fail_mode=standalone",
            &format!("other-config:hwaddr=\"{}\"", self.underlay_mac),
            &format!("other-config:datapath-id={:016x}", self.lab.dpid(self.index, 2)),
            "--",
            "add-port",
            "br-phy",
            "uplink",
        ])?;
        let cidr = format!("{}/{UNDERLAY_PREFIX_LEN}", self.underlay_ip);
        self.ip(&["addr", "add", &cidr, "dev", "br-phy"])?;
        self.ip(&["link", "set", "br-phy", "up"])?;
        // The same route as the kernel's, but as a user route of ovs-vswitchd: the routes it
        // copies from the kernel are flushed and read again whenever any route in the namespace
        // changes (a VM's veth going takes its IPv6 link-local routes with it), and a copy
        // tunnelled in that window found no route and was dropped. User routes stay.
        let net = Ipv4Addr::from(
            u32::from(self.underlay_ip) & (u32::MAX << (32 - u32::from(UNDERLAY_PREFIX_LEN))),
        );
        // ovs-vswitchd refuses the route until it has seen br-phy's new address.
        let route = format!("{net}/{UNDERLAY_PREFIX_LEN}");
        let mut last = None;
        let added = cmd::wait_for(
            "ovs-vswitchd to take the underlay route",
            Duration::from_secs(5),
            || match self.appctl(&["ovs/route/add", &route, "br-phy"]) {
                Ok(_) => Some(()),
                Err(e) => {
                    last = Some(e);
                    None
                }
            },
        );
        match (added, last) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(e)) | (Err(e), None) => Err(e),
        }
    }

    fn build_br_int(&self, options: &HypervisorOptions) -> Result<()> {
        let mut args: Vec<String> = [
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=netdev",
            "protocols=OpenFlow13",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("fail_mode={}", options.fail_mode.as_str()));
        args.push(format!("other-config:datapath-id={:016x}", self.dpid));
        args.push("other-config:disable-in-band=true".into());
        if !options.controllers.is_empty() {
            args.extend(["--", "set-controller", "br-int"].map(String::from));
            for target in &options.controllers {
                args.push(self.controller_string(target)?);
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.vsctl(&refs)?;
        Ok(())
    }

    /// The string `set-controller` gets for `target`, starting a relay when one is needed.
    fn controller_string(&self, target: &ControllerTarget) -> Result<String> {
        Ok(match target {
            ControllerTarget::Unix(path) if path.starts_with(&self.dir) => {
                format!("unix:{}", path.display())
            }
            ControllerTarget::Unix(path) => {
                // ovs-vswitchd refuses unix targets outside its run directory; a symlink there
                // reaches the controller's socket wherever it is.
                let n = self.lab.next_index();
                let link = self.dir.join(format!("controller-{n}.sock"));
                std::os::unix::fs::symlink(path, &link).map_err(|source| LabError::Io {
                    what: format!("linking {} to {}", link.display(), path.display()),
                    source,
                })?;
                format!("unix:{}", link.display())
            }
            ControllerTarget::Raw(s) => s.clone(),
            ControllerTarget::HostTcp(port) | ControllerTarget::HostSsl(port) => {
                let sock = self.dir.join(format!("ctl-relay-{port}.sock"));
                // In our namespace: unix socket -> the controller's TCP port.
                self.spawn_relay(
                    None,
                    &format!("UNIX-LISTEN:{},fork", sock.display()),
                    &format!("TCP:127.0.0.1:{port}"),
                )?;
                cmd::wait_for("the controller relay socket", Duration::from_secs(5), || {
                    sock.exists().then_some(())
                })?;
                // In the hypervisor's namespace: 127.0.0.1:<port> -> that unix socket.
                self.spawn_relay(
                    Some(&self.netns),
                    &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
                    &format!("UNIX-CONNECT:{}", sock.display()),
                )?;
                self.wait_listening(*port)?;
                let scheme =
                    if matches!(target, ControllerTarget::HostSsl(_)) { "ssl" } else { "tcp" };
                format!("{scheme}:127.0.0.1:{port}")
            }
        })
    }

    /// Starts a `socat` relay as a recorded child process.
    fn spawn_relay(&self, netns: Option<&str>, from: &str, to: &str) -> Result<()> {
        let cmd = match netns {
            Some(ns) => Cmd::in_netns(ns, "socat"),
            None => Cmd::new("socat"),
        }
        .args([from, to]);
        let child = cmd.spawn_group(Stdio::null(), Stdio::null(), Stdio::null())?;
        self.lab.add_child(&cmd.display(), child);
        Ok(())
    }

    /// Waits until something listens on TCP `port` inside the hypervisor's namespace.
    fn wait_listening(&self, port: u16) -> Result<()> {
        let filter = format!("sport = :{port}");
        cmd::wait_for(
            "a relay listening in the hypervisor namespace",
            Duration::from_secs(5),
            || {
                Cmd::in_netns(&self.netns, "ss")
                    .args(["-Hltn", &filter])
                    .run()
                    .ok()
                    .filter(|out| !out.trim().is_empty())
            },
        )
        .map(|_| ())
    }

    /// Sets (replacing) `br-int`'s controller.
    pub fn set_controller(&self, target: &ControllerTarget) -> Result<()> {
        self.set_controllers(std::slice::from_ref(target))
    }

    /// Sets (replacing) `br-int`'s controllers: the bridge connects to all of them at once
    /// (a bridge's owner and periscope as its guest).
    pub fn set_controllers(&self, targets: &[ControllerTarget]) -> Result<()> {
        let targets =
            targets.iter().map(|t| self.controller_string(t)).collect::<Result<Vec<_>>>()?;
        let mut args = vec!["set-controller", "br-int"];
        args.extend(targets.iter().map(String::as_str));
        self.vsctl(&args).map(|_| ())
    }

    /// The hypervisor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its network namespace.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Its directory: database, sockets, logs (`ovsdb.log`, `vswitchd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its underlay address (on `br-phy`), in 192.0.2.0/24.
    pub fn underlay_ip(&self) -> Ipv4Addr {
        self.underlay_ip
    }

    /// The MAC address of its underlay interface.
    pub fn underlay_mac(&self) -> &str {
        &self.underlay_mac
    }

    /// `br-int`'s datapath id (`other-config:datapath-id`).
    pub fn dpid(&self) -> u64 {
        self.dpid
    }

    /// The ovsdb-server unix socket path.
    pub fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// The OVSDB remote for clients: `unix:<db socket>`.
    pub fn db_remote(&self) -> String {
        format!("unix:{}", self.db_socket().display())
    }

    /// The ovs-vswitchd control socket (`ovs-appctl -t`).
    pub fn vswitchd_ctl(&self) -> PathBuf {
        self.dir.join("vswitchd.ctl")
    }

    /// The ovsdb-server control socket.
    pub fn ovsdb_ctl(&self) -> PathBuf {
        self.dir.join("ovsdb.ctl")
    }

    /// Adds a remote to ovsdb-server, e.g. `punix:<path>` or `ptcp:<port>:127.0.0.1` (a TCP
    /// remote listens inside the hypervisor's namespace).
    pub fn add_db_remote(&self, remote: &str) -> Result<()> {
        Cmd::new("ovs-appctl")
            .arg("-t")
            .arg(self.ovsdb_ctl())
            .args(["ovsdb-server/add-remote", remote])
            .run()
            .map(|_| ())
    }

    /// Adds a TCP remote to ovsdb-server and makes it reachable from the lab process's namespace;
    /// returns the address there (127.0.0.1 and a free port).
    pub fn add_db_tcp_remote(&self) -> Result<SocketAddr> {
        self.add_db_relayed_remote("ptcp", DB_TCP_PORT_IN_NETNS)
    }

    /// Like [`Hypervisor::add_db_tcp_remote`] with a `pssl:` remote (after
    /// [`Hypervisor::set_ssl`]): the controller connects to `ssl:<the address returned>`.
    pub fn add_db_ssl_remote(&self) -> Result<SocketAddr> {
        self.add_db_relayed_remote("pssl", DB_SSL_PORT_IN_NETNS)
    }

    /// Sets the TLS files of ovs-vswitchd (for `ssl:` controllers) and ovsdb-server (for
    /// `pssl:` remotes): `ovs-vsctl set-ssl KEY CERT CA`.
    pub fn set_ssl(&self, key: &Path, certificate: &Path, ca_cert: &Path) -> Result<()> {
        let [k, c, ca] = [key, certificate, ca_cert].map(|p| p.display().to_string());
        self.vsctl(&["set-ssl", &k, &c, &ca]).map(|_| ())
    }

    fn add_db_relayed_remote(&self, scheme: &str, port_in_netns: u16) -> Result<SocketAddr> {
        self.add_db_remote(&format!("{scheme}:{port_in_netns}:127.0.0.1"))?;
        self.relay_from_host(port_in_netns)
    }

    /// Makes what listens on `127.0.0.1:<port_in_netns>` inside the hypervisor's namespace
    /// (ovsdb-server's `ptcp:`/`pssl:` remote, ovs-vswitchd's `set-controller br-int
    /// pssl:PORT:127.0.0.1`) reachable from the lab process's namespace; returns the address
    /// there (127.0.0.1 and a free port). Waits until it listens.
    pub fn relay_from_host(&self, port_in_netns: u16) -> Result<SocketAddr> {
        self.wait_listening(port_in_netns)?;
        let sock = self.dir.join(format!("relay-{port_in_netns}.sock"));
        self.spawn_relay(
            Some(&self.netns),
            &format!("UNIX-LISTEN:{},fork", sock.display()),
            &format!("TCP:127.0.0.1:{port_in_netns}"),
        )?;
        cmd::wait_for("the relay socket", Duration::from_secs(5), || sock.exists().then_some(()))?;
        let port = free_local_port()?;
        self.spawn_relay(
            None,
            &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            &format!("UNIX-CONNECT:{}", sock.display()),
        )?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        cmd::wait_for("the TCP relay", Duration::from_secs(5), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })?;
        Ok(addr)
    }

    /// Runs `ovs-vsctl --db=unix:<db socket> <args>` and returns its output.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        Cmd::new("ovs-vsctl")
            .arg(format!("--db={}", self.db_remote()))
            .arg(format!("--timeout={VSCTL_TIMEOUT_S}"))
            .args(args)
            .run()
    }

    /// Runs `ovs-ofctl -O OpenFlow13 <args>` against this hypervisor's bridges.
    pub fn ofctl(&self, args: &[&str]) -> Result<String> {
        Cmd::new("ovs-ofctl")
            .env("OVS_RUNDIR", &self.dir)
            .args(["-O", "OpenFlow13"])
            .args(args)
            .run()
    }

    /// Runs `ovs-appctl -t <vswitchd ctl> <args>`.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        Cmd::new("ovs-appctl").arg("-t").arg(self.vswitchd_ctl()).args(args).run()
    }

    /// Runs `ip <args>` inside the hypervisor's namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        Cmd::new("ip").args(["-n", &self.netns]).args(args).run()
    }

    /// The OpenFlow port number of interface `name` (waits for ovs-vswitchd to assign it).
    pub fn ofport(&self, name: &str) -> Result<u32> {
        let mut last = String::new();
        let found =
            cmd::wait_for(&format!("an ofport for {name}"), Duration::from_secs(10), || {
                last = self.vsctl(&["get", "Interface", name, "ofport"]).ok()?;
                last.trim().parse::<i64>().ok().filter(|p| *p > 0)
            });
        match found {
            Ok(p) => u32::try_from(p).map_err(|_| LabError::Output {
                command: format!("ovs-vsctl get Interface {name} ofport"),
                output: last,
            }),
            Err(e) => Err(e),
        }
    }

    /// Whether `br-int` has an interface with `external_ids:iface-id=<iface_id>`.
    pub fn has_iface_id(&self, iface_id: &str) -> Result<bool> {
        let out = self.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "Interface",
            &format!("external_ids:iface-id=\"{iface_id}\""),
        ])?;
        Ok(!out.trim().is_empty())
    }

    /// The tenants' own overlay, a VXLAN star around this hypervisor with a fixed key: a port
    /// `vx-<other>` here towards each of `edges` and one `vx-<this>` on each of them back
    /// (forwarded by `NORMAL`, never periscope's).
    pub fn add_overlay_star(&self, edges: &[&Hypervisor], key: u32) -> Result<()> {
        for edge in edges {
            for (from, to) in [(*edge, self), (self, *edge)] {
                from.add_tunnel_port(
                    &format!("vx-{}", to.name()),
                    TunnelKind::Vxlan,
                    TunnelRemote::Ip(to.underlay_ip()),
                    TunnelKey::Fixed(key),
                )?;
            }
        }
        Ok(())
    }

    /// Adds a tunnel port to `br-int` with `local_ip` set to the underlay address; returns its
    /// OpenFlow port number.
    pub fn add_tunnel_port(
        &self,
        name: &str,
        kind: TunnelKind,
        remote: TunnelRemote,
        key: TunnelKey,
    ) -> Result<u32> {
        let remote = match remote {
            TunnelRemote::Flow => "flow".to_string(),
            TunnelRemote::Ip(ip) => ip.to_string(),
        };
        let key = match key {
            TunnelKey::Flow => "flow".to_string(),
            TunnelKey::Fixed(k) => k.to_string(),
        };
        self.vsctl(&[
            "add-port",
            "br-int",
            name,
            "--",
            "set",
            "Interface",
            name,
            &format!("type={}", kind.as_str()),
            &format!("options:remote_ip={remote}"),
            &format!("options:key={key}"),
            &format!("options:local_ip={}", self.underlay_ip),
        ])?;
        self.ofport(name)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_local_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|source| LabError::Io { what: "binding 127.0.0.1:0".into(), source })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| LabError::Io { what: "reading a bound port".into(), source })
}
