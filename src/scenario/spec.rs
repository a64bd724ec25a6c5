//! A scenario as the runner sees it once its file has been read and checked: every name a
//! step or an expectation uses refers to something declared, so running it cannot fail on a typo.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::northbound::model::{Direction, Encap};

/// A scenario file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file's stem (`basic` for `scenarios/basic.toml`).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    /// One line saying what it shows.
    pub description: String,
    /// Seconds to let the controller program the taps before the timeline starts.
    pub settle_s: f64,
    /// Controller instances sharing the bridges (`controllers = N`): more than one run with
    /// `--leader-election` on a 3-member clustered northbound database, and every `br-int`
    /// lists them all.
    pub controllers: usize,
    /// `[[hypervisor]]`, in file order.
    pub hypervisors: Vec<HypervisorSpec>,
    /// `[[vm]]`, in file order.
    pub vms: Vec<VmSpec>,
    /// `[[collector]]`, in file order.
    pub collectors: Vec<CollectorSpec>,
    /// `[[tap_service]]`, in file order.
    pub tap_services: Vec<TapServiceSpec>,
    /// `[[tap_flow]]`, in file order.
    pub tap_flows: Vec<TapFlowSpec>,
    /// `[[step]]`: the timeline, in file order.
    pub steps: Vec<Step>,
    /// `[[expect]]`: what must hold at the end.
    pub expects: Vec<Expect>,
}

impl Scenario {
    /// The VM declared under `name`.
    pub fn vm(&self, name: &str) -> Option<&VmSpec> {
        self.vms.iter().find(|v| v.name == name)
    }

    /// The tap service declared under `name`.
    pub fn tap_service(&self, name: &str) -> Option<&TapServiceSpec> {
        self.tap_services.iter().find(|s| s.name == name)
    }

    /// The tap flow declared under `name`.
    pub fn tap_flow(&self, name: &str) -> Option<&TapFlowSpec> {
        self.tap_flows.iter().find(|f| f.name == name)
    }

    /// The tenants, in order of first appearance among the VMs.
    pub fn tenants(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in &self.vms {
            if !out.contains(&v.tenant) {
                out.push(v.tenant.clone());
            }
        }
        out
    }

    /// The `start_udp` or `start_tcp` step named `name`.
    pub fn stream(&self, name: &str) -> Option<&StreamSpec> {
        self.steps.iter().find_map(|s| match &s.action {
            Action::StartStream(x) if x.name == name => Some(x),
            _ => None,
        })
    }

    /// The hypervisors some `cut_link` step works on (their links go through a relay).
    pub fn cut_hypervisors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.steps {
            if let Action::CutLink { hypervisor, .. } = &s.action {
                if !out.contains(&hypervisor.as_str()) {
                    out.push(hypervisor);
                }
            }
        }
        out
    }

    /// The `start_ping` step named `name`.
    pub fn ping(&self, name: &str) -> Option<&PingSpec> {
        self.steps.iter().find_map(|s| match &s.action {
            Action::StartPing(p) if p.name == name => Some(p),
            _ => None,
        })
    }
}

/// How a hypervisor's `br-int` reaches the controller (and, once the controller speaks OVSDB,
/// how the controller reaches the hypervisor's ovsdb-server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Unix sockets in the lab directory.
    Unix,
    /// TCP on 127.0.0.1, relayed into the hypervisor's namespace.
    Tcp,
    /// TLS over the same relays: OpenFlow `ssl:`, OVSDB `ssl:`, and the API over HTTPS, with
    /// certificates from a PKI the runner makes with `ovs-pki`.
    Ssl,
}

/// `[[hypervisor]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HypervisorSpec {
    /// Name (1 to 10 of `a-z0-9-`).
    pub name: String,
    /// Controller transport.
    pub controller: Transport,
}

/// `[[vm]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// Name (1 to 10 of `a-z0-9-`).
    pub name: String,
    /// Where it starts.
    pub hypervisor: String,
    /// Owning tenant: written to `external_ids:tenant-id` (the controller's default tenant key); each tenant gets its own VLAN on
    /// `br-int`, so tenants may reuse addresses.
    pub tenant: String,
    /// MAC address; the lab's default when `None`.
    pub mac: Option<String>,
    /// IPv4 address and prefix length; the lab's default when `None`.
    pub ip: Option<(Ipv4Addr, u8)>,
    /// Interface MTU; the lab's default (1450) when `None`.
    pub mtu: Option<u32>,
    /// `external_ids:iface-id`; derived from the lab prefix when `None`.
    pub iface_id: Option<String>,
    /// `external_ids:vm-uuid`; derived from the lab prefix when `None`.
    pub vm_uuid: Option<String>,
    /// More `external_ids` (what selectors match on).
    pub external_ids: BTreeMap<String, String>,
    /// Created before the timeline (`true`) or by a `create_vm` step.
    pub create: bool,
}

/// `[[collector]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorSpec {
    /// Name (1 to 10 of `a-z0-9-`).
    pub name: String,
}

/// `[[tap_service]]`: the API's tap service, with the collector named instead of its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapServiceSpec {
    /// Name.
    pub name: String,
    /// Owning tenant.
    pub tenant: String,
    /// Encapsulation.
    pub encap: Encap,
    /// The collector whose underlay address becomes `remote_ip`.
    pub collector: String,
    /// The key asked for; the controller allocates one when `None`.
    pub key: Option<u32>,
    /// Truncation length of copies.
    pub snaplen: Option<u16>,
}

/// Which interfaces a tap flow copies, with VMs named as in the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapSource {
    /// The `iface-id` of the named VM.
    IfaceId(String),
    /// The `vm-uuid` of the named VM.
    Vm(String),
    /// Every interface whose external_ids hold all these pairs.
    Selector(BTreeMap<String, String>),
}

/// `[[tap_flow]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TapFlowSpec {
    /// Name.
    pub name: String,
    /// Owning tenant.
    pub tenant: String,
    /// The `[[tap_service]]` it copies to.
    pub service: String,
    /// Which interfaces.
    pub source: TapSource,
    /// Which direction, seen from the VM.
    pub direction: Direction,
    /// The API's `filter` object, passed as is.
    pub filter: Option<Value>,
    /// Created before the timeline (`true`) or by a `create_tap_flow` step.
    pub create: bool,
}

/// One `[[step]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Seconds after the timeline starts; `None` runs right after the previous step. Steps that
    /// share an `at` run concurrently.
    pub at: Option<f64>,
    /// What to do.
    pub action: Action,
}

/// `start_ping`: a background `ping` from one VM to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingSpec {
    /// Name expectations refer to (`ping1`, `ping2`, ... by default).
    pub name: String,
    /// Sending VM.
    pub from: String,
    /// Target VM.
    pub to: String,
    /// Milliseconds between echo requests.
    pub interval_ms: u64,
    /// Echo requests to send.
    pub count: u32,
}

/// `start_udp` / `start_tcp`: a background UDP stream or TCP transfer from one VM to another.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// Name expectations refer to (`udp1`, `tcp1`, ... by default).
    pub name: String,
    /// UDP or TCP.
    pub kind: StreamKind,
    /// Sending VM.
    pub from: String,
    /// Receiving VM.
    pub to: String,
    /// UDP: datagrams; TCP: messages (each one write).
    pub count: u32,
    /// Payload bytes per datagram or message.
    pub size: usize,
    /// Milliseconds between datagrams (UDP: 1000 / `rate_pps`) or messages (TCP: `interval_ms`).
    pub interval_ms: f64,
}

pub use super::traffic::stream::StreamKind;

/// Which of a hypervisor's management connections a `cut_link` / `restore_link` works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// `br-int`'s OpenFlow connection to the controller.
    OpenFlow,
    /// The controller's OVSDB connection to the hypervisor's ovsdb-server.
    Ovsdb,
    /// Both.
    Both,
}

impl LinkKind {
    /// The OpenFlow connection is concerned.
    pub fn openflow(self) -> bool {
        matches!(self, LinkKind::OpenFlow | LinkKind::Both)
    }

    /// The OVSDB connection is concerned.
    pub fn ovsdb(self) -> bool {
        matches!(self, LinkKind::Ovsdb | LinkKind::Both)
    }

    /// The name in the scenario file.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::OpenFlow => "openflow",
            LinkKind::Ovsdb => "ovsdb",
            LinkKind::Both => "both",
        }
    }
}

/// How a link is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Connections closed at once; new ones closed when accepted.
    Reset,
    /// Nothing relayed, connections kept open (the ends find out by their keepalives).
    Blackhole,
}

impl CutMode {
    /// The name in the scenario file.
    pub fn as_str(self) -> &'static str {
        match self {
            CutMode::Reset => "reset",
            CutMode::Blackhole => "blackhole",
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Starts a background ping.
    StartPing(PingSpec),
    /// Starts a background UDP stream or TCP transfer.
    StartStream(StreamSpec),
    /// Cuts a hypervisor's management link(s) to the controller.
    CutLink {
        /// The hypervisor.
        hypervisor: String,
        /// Which connections.
        link: LinkKind,
        /// How.
        mode: CutMode,
    },
    /// Restores what `cut_link` cut and waits until the controller has the hypervisor back.
    RestoreLink {
        /// The hypervisor.
        hypervisor: String,
    },
    /// Live-migrates a VM, make-before-break.
    Migrate {
        /// The VM.
        vm: String,
        /// The destination hypervisor.
        to: String,
    },
    /// Creates a VM declared with `create = false`.
    CreateVm {
        /// The VM.
        vm: String,
        /// The hypervisor; the VM's declared one when `None`.
        on: Option<String>,
    },
    /// Unplugs a VM and removes its interface.
    DeleteVm {
        /// The VM.
        vm: String,
    },
    /// Creates a tap flow declared with `create = false` (or deleted before).
    CreateTapFlow {
        /// The tap flow.
        tap_flow: String,
    },
    /// Deletes a tap flow.
    DeleteTapFlow {
        /// The tap flow.
        tap_flow: String,
    },
    /// Stops the controller (SIGTERM) and starts it again; the tap services and flows are
    /// created again through the API, with the same keys, as a northbound would.
    RestartController,
    /// Kills the controller (SIGKILL); a later `restart_controller` starts it again.
    KillController,
    /// With several controllers: kills the leader (SIGKILL) and waits until another is MASTER
    /// on every bridge; the API calls go to a survivor from then on.
    KillLeader,
    /// With several controllers: stops the member of the northbound cluster that leads it.
    KillNbLeader,
    /// Restarts one hypervisor's ovs-vswitchd (flows and tunnel neighbors are lost).
    RestartVswitchd {
        /// The hypervisor.
        hypervisor: String,
    },
    /// Restarts one hypervisor's ovsdb-server (the database is kept).
    RestartOvsdb {
        /// The hypervisor.
        hypervisor: String,
    },
    /// Does nothing for a while.
    Wait {
        /// How long.
        seconds: f64,
    },
    /// Stops one or every running ping and stream.
    StopTraffic {
        /// The ping or stream; every one when `None`.
        ping: Option<String>,
    },
}

impl Action {
    /// The action's name in the scenario file.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::StartPing(_) => "start_ping",
            Action::StartStream(x) if x.kind == StreamKind::Udp => "start_udp",
            Action::StartStream(_) => "start_tcp",
            Action::CutLink { .. } => "cut_link",
            Action::RestoreLink { .. } => "restore_link",
            Action::Migrate { .. } => "migrate",
            Action::CreateVm { .. } => "create_vm",
            Action::DeleteVm { .. } => "delete_vm",
            Action::CreateTapFlow { .. } => "create_tap_flow",
            Action::DeleteTapFlow { .. } => "delete_tap_flow",
            Action::RestartController => "restart_controller",
            Action::KillController => "kill_controller",
            Action::KillLeader => "kill_leader",
            Action::KillNbLeader => "kill_nb_leader",
            Action::RestartVswitchd { .. } => "restart_vswitchd",
            Action::RestartOvsdb { .. } => "restart_ovsdb",
            Action::Wait { .. } => "wait",
            Action::StopTraffic { .. } => "stop_traffic",
        }
    }

    /// A short human description (`migrate vm1 -> hv2`).
    pub fn describe(&self) -> String {
        match self {
            Action::StartPing(p) => format!(
                "start_ping {} {} -> {} ({} x {} ms)",
                p.name, p.from, p.to, p.count, p.interval_ms
            ),
            Action::StartStream(x) if x.kind == StreamKind::Udp => format!(
                "start_udp {} {} -> {} ({} x {} B at {:.0}/s)",
                x.name,
                x.from,
                x.to,
                x.count,
                x.size,
                1000.0 / x.interval_ms
            ),
            Action::StartStream(x) => format!(
                "start_tcp {} {} -> {} ({} x {} B every {} ms)",
                x.name, x.from, x.to, x.count, x.size, x.interval_ms
            ),
            Action::CutLink { hypervisor, link, mode } => {
                format!("cut_link {hypervisor} {} ({})", link.as_str(), mode.as_str())
            }
            Action::RestoreLink { hypervisor } => format!("restore_link {hypervisor}"),
            Action::Migrate { vm, to } => format!("migrate {vm} -> {to}"),
            Action::CreateVm { vm, on: Some(hv) } => format!("create_vm {vm} on {hv}"),
            Action::CreateVm { vm, on: None } => format!("create_vm {vm}"),
            Action::DeleteVm { vm } => format!("delete_vm {vm}"),
            Action::CreateTapFlow { tap_flow } => format!("create_tap_flow {tap_flow}"),
            Action::DeleteTapFlow { tap_flow } => format!("delete_tap_flow {tap_flow}"),
            Action::RestartController => "restart_controller".into(),
            Action::KillController => "kill_controller".into(),
            Action::KillLeader => "kill_leader".into(),
            Action::KillNbLeader => "kill_nb_leader".into(),
            Action::RestartVswitchd { hypervisor } => format!("restart_vswitchd {hypervisor}"),
            Action::RestartOvsdb { hypervisor } => format!("restart_ovsdb {hypervisor}"),
            Action::Wait { seconds } => format!("wait {seconds} s"),
            Action::StopTraffic { ping: Some(p) } => format!("stop_traffic {p}"),
            Action::StopTraffic { ping: None } => "stop_traffic".into(),
        }
    }
}

/// One `[[expect]]`: an assertion checked after the timeline.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expect {
    /// Every echo of a ping that `vm` sent or received (per `direction`) arrived at the
    /// collector under the service's key exactly once; at most `max_loss` missing per kind.
    Copies {
        /// The collector.
        collector: String,
        /// The tap service (its encapsulation and key).
        service: String,
        /// The `start_ping` step.
        ping: String,
        /// The tapped VM: the ping's sender or its target.
        vm: String,
        /// Which of the VM's frames are expected.
        direction: Direction,
        /// Missing copies allowed, per echo kind.
        max_loss: u32,
    },
    /// No echo frame arrived twice under one key (only the service's key when given).
    NoDuplicates {
        /// The collector.
        collector: String,
        /// Restricts the check to one tap service.
        service: Option<String>,
    },
    /// The collector received only keys of `tenant`'s services aimed at it, and under those
    /// only frames to or from `tenant`'s VMs.
    NoForeign {
        /// The collector.
        collector: String,
        /// The tenant that owns the collector.
        tenant: String,
    },
    /// No frame of a ping arrived at the collector at all (isolation, untapped VMs).
    NoCopies {
        /// The collector.
        collector: String,
        /// The `start_ping` step.
        ping: String,
    },
    /// The longest silence in a ping's copies is at most the ping's own longest silence (between
    /// replies) plus `tolerance_ms`.
    Gap {
        /// The collector.
        collector: String,
        /// The tap service.
        service: String,
        /// The `start_ping` step.
        ping: String,
        /// Allowed extra silence.
        tolerance_ms: u64,
    },
    /// The ping itself lost at most `max_loss` echoes (forwarding between VMs is intact).
    Ping {
        /// The `start_ping` step.
        ping: String,
        /// Lost echoes allowed.
        max_loss: u32,
    },
    /// Every packet of a UDP stream or TCP transfer that `vm` sent or received (per
    /// `direction`) arrived at the collector under the service's key exactly once.
    StreamCopies {
        /// The collector.
        collector: String,
        /// The tap service.
        service: String,
        /// The `start_udp` / `start_tcp` step.
        stream: String,
        /// The tapped VM: the stream's sender or receiver.
        vm: String,
        /// Which of the VM's packets are expected.
        direction: Direction,
        /// Missing copies allowed, per direction.
        max_loss: u32,
    },
    /// No packet of a stream arrived at the collector.
    NoStreamCopies {
        /// The collector.
        collector: String,
        /// The stream.
        stream: String,
    },
    /// The longest silence in a stream's copies is at most the receiver's own longest silence
    /// plus `tolerance_ms`.
    StreamGap {
        /// The collector.
        collector: String,
        /// The tap service.
        service: String,
        /// The stream.
        stream: String,
        /// Allowed extra silence.
        tolerance_ms: u64,
    },
    /// The stream reached its receiver: UDP lost at most `max_loss` datagrams, TCP delivered
    /// every byte intact and closed cleanly.
    Delivery {
        /// The stream.
        stream: String,
        /// Datagrams lost allowed (UDP).
        max_loss: u32,
    },
    /// Reprogramming times: each migration's destination bridge confirmed within `max_ms`
    /// (and their p99 within `p99_ms`); the controller's own p99 (GET /v1/stats) within
    /// `stats_p99_ms`.
    Reprogram {
        /// Only the migrations of this VM; all when `None`.
        vm: Option<String>,
        /// Limit for every migration.
        max_ms: Option<f64>,
        /// Limit for the p99 over the migrations.
        p99_ms: Option<f64>,
        /// Limit for the controller's p99 over every reprogramming it did.
        stats_p99_ms: Option<f64>,
    },
    /// `br-int` of the hypervisor holds no periscope flow other than the base pipeline.
    NoLeftoverFlows {
        /// The hypervisor.
        hypervisor: String,
        /// How long to wait for it to become true.
        within_s: f64,
    },
    /// `br-int` of the hypervisor has no tunnel port (the runner makes none; the controller
    /// makes them for taps).
    NoLeftoverTunnelPorts {
        /// The hypervisor.
        hypervisor: String,
        /// How long to wait for it to become true.
        within_s: f64,
    },
}

impl Expect {
    /// The expectation's name in the scenario file.
    pub fn kind(&self) -> &'static str {
        match self {
            Expect::Copies { .. } => "copies",
            Expect::NoDuplicates { .. } => "no_duplicates",
            Expect::NoForeign { .. } => "no_foreign",
            Expect::NoCopies { .. } => "no_copies",
            Expect::Gap { .. } => "gap",
            Expect::Ping { .. } => "ping",
            Expect::StreamCopies { .. } => "copies",
            Expect::NoStreamCopies { .. } => "no_copies",
            Expect::StreamGap { .. } => "gap",
            Expect::Delivery { .. } => "delivery",
            Expect::Reprogram { .. } => "reprogram",
            Expect::NoLeftoverFlows { .. } => "no_leftover_flows",
            Expect::NoLeftoverTunnelPorts { .. } => "no_leftover_tunnel_ports",
        }
    }

    /// A short human description.
    pub fn describe(&self) -> String {
        match self {
            Expect::Copies { collector, service, ping, vm, direction, max_loss } => format!(
                "copies of {vm}'s {ping} ({}) at {collector} via {service}, loss <= {max_loss}",
                direction_str(*direction)
            ),
            Expect::NoDuplicates { collector, service: Some(s) } => {
                format!("no duplicates at {collector} via {s}")
            }
            Expect::NoDuplicates { collector, service: None } => {
                format!("no duplicates at {collector}")
            }
            Expect::NoForeign { collector, tenant } => {
                format!("only {tenant}'s keys and frames at {collector}")
            }
            Expect::NoCopies { collector, ping } => format!("no copies of {ping} at {collector}"),
            Expect::Gap { collector, service, ping, tolerance_ms } => format!(
                "gap in copies of {ping} at {collector} via {service} <= own gap + {tolerance_ms} ms"
            ),
            Expect::Ping { ping, max_loss } => format!("{ping} loses <= {max_loss}"),
            Expect::StreamCopies { collector, service, stream, vm, direction, max_loss } => {
                format!(
                    "copies of {vm}'s {stream} ({}) at {collector} via {service}, loss <= {max_loss}",
                    direction_str(*direction)
                )
            }
            Expect::NoStreamCopies { collector, stream } => {
                format!("no copies of {stream} at {collector}")
            }
            Expect::StreamGap { collector, service, stream, tolerance_ms } => format!(
                "gap in copies of {stream} at {collector} via {service} <= own gap + {tolerance_ms} ms"
            ),
            Expect::Delivery { stream, max_loss } => {
                format!("{stream} delivered, loss <= {max_loss}")
            }
            Expect::Reprogram { vm, max_ms, p99_ms, stats_p99_ms } => {
                let mut parts = Vec::new();
                if let Some(m) = max_ms {
                    parts.push(format!("each <= {m} ms"));
                }
                if let Some(m) = p99_ms {
                    parts.push(format!("p99 <= {m} ms"));
                }
                if let Some(m) = stats_p99_ms {
                    parts.push(format!("controller p99 <= {m} ms"));
                }
                let of = vm.as_ref().map(|v| format!(" of {v}")).unwrap_or_default();
                format!("reprogramming after migrations{of}: {}", parts.join(", "))
            }
            Expect::NoLeftoverFlows { hypervisor, .. } => {
                format!("no leftover periscope flows on {hypervisor}")
            }
            Expect::NoLeftoverTunnelPorts { hypervisor, .. } => {
                format!("no leftover tunnel ports on {hypervisor}")
            }
        }
    }
}

/// `IN`, `OUT` or `BOTH`, as the API writes directions.
pub fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::In => "IN",
        Direction::Out => "OUT",
        Direction::Both => "BOTH",
    }
}
