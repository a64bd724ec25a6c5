//! A real Open vSwitch testbed on this machine: hypervisors, VMs and collectors, each in its own
//! network namespace, joined by an underlay "fabric", and all removed when the [`Lab`] is dropped.
//!
//! ```text
//!   {prefix}-fab  (netns, Linux bridge br0, 192.0.2.0/24 underlay)
//!     ├── hv{i} ── uplink ─ br-phy (192.0.2.i)   {prefix}-{hv}: ovsdb-server + ovs-vswitchd
//!     │                      br-int ── veth ── eth0  {prefix}-{vm}
//!     └── col{j} ── eth0 (192.0.2.(100+j))       {prefix}-{collector}: periscope-lab-collector
//! ```
//!
//! Everything a lab creates carries its unique prefix (`p` + 5 hex digits): namespace names, the
//! temporary directory, and the interface names where they are not already private to one of its
//! namespaces. Teardown stops processes by pid (from pidfiles or child handles), deletes the
//! namespaces (which deletes every veth inside them) and removes the directory. It never looks for
//! anything by name that this lab did not record itself.

mod cmd;
pub mod collector;
pub mod controller;
pub mod frame;
mod hypervisor;
pub mod nbcluster;
pub mod pki;
pub mod preflight;
mod vm;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use collector::{Collector, CollectorArgs, CollectorError};
pub use frame::{Capture, EchoKind, Encap, ErspanDirection, ErspanMeta, Frame, IcmpEcho};
pub use hypervisor::{
    ControllerTarget, FailMode, Hypervisor, HypervisorOptions, TunnelKey, TunnelKind, TunnelRemote,
};
pub use vm::{MigrationStep, MigrationTimings, PingReply, PingReport, PingRun, Vm, VmOptions};

use cmd::Cmd;

/// What went wrong while building, driving or tearing down a lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A tool ran and exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A tool could not be started at all (not installed?).
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it did not start.
        #[source]
        source: io::Error,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Something did not become ready in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A caller-supplied value cannot be used.
    #[error("invalid {field} {value:?}: expected {expected}")]
    Invalid {
        /// Which parameter.
        field: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// A tool printed something we could not understand.
    #[error("unexpected output from `{command}`: {output:?}")]
    Output {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
    /// A call to the controller's API got no usable answer.
    #[error(transparent)]
    Http(#[from] crate::scenario::http::HttpError),
    /// The lab has already been torn down.
    #[error("the lab {prefix} has been torn down")]
    TornDown {
        /// The lab's prefix.
        prefix: String,
    },
}

/// Result of lab operations.
pub type Result<T> = std::result::Result<T, LabError>;

/// The underlay network every hypervisor and collector joins.
pub const UNDERLAY_PREFIX_LEN: u8 = 24;

/// How long daemons get to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Counter mixed into prefixes so two labs of one process never collide.
static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A testbed: a fabric namespace plus the hypervisors, VMs and collectors added to it.
///
/// Dropping it (also while unwinding from a panic) tears down everything it created.
pub struct Lab {
    inner: Arc<LabInner>,
}

/// State shared by the lab and the handles it gives out.
pub(crate) struct LabInner {
    pub(crate) prefix: String,
    pub(crate) dir: PathBuf,
    pub(crate) fabric: String,
    prefix_bits: u32,
    next_index: AtomicU32,
    registry: Mutex<Registry>,
}

/// A daemon that detached itself: stopped through its pidfile.
struct Daemon {
    pidfile: PathBuf,
    comm: &'static str,
}

/// An underlay endpoint, for tunnel neighbor seeding.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) ip: Ipv4Addr,
    pub(crate) mac: String,
    /// The vswitchd control socket when the endpoint is a hypervisor.
    pub(crate) vswitchd_ctl: Option<PathBuf>,
}

#[derive(Default)]
struct Registry {
    torn_down: bool,
    netns: Vec<String>,
    daemons: Vec<Daemon>,
    children: HashMap<u64, (String, Child)>,
    next_child: u64,
    endpoints: Vec<Endpoint>,
    collector_command: Option<(OsString, Vec<OsString>)>,
}

impl Lab {
    /// Creates a lab: reserves a fresh prefix and temp dir, and builds the underlay fabric.
    pub fn new() -> Result<Lab> {
        let (prefix, prefix_bits, dir) = reserve_prefix()?;
        let inner = Arc::new(LabInner {
            fabric: format!("{prefix}-fab"),
            prefix,
            dir,
            prefix_bits,
            next_index: AtomicU32::new(1),
            registry: Mutex::new(Registry::default()),
        });
        let lab = Lab { inner };
        // From here on, Drop cleans up whatever a failure leaves behind.
        lab.inner.add_netns(&lab.inner.fabric)?;
        let fab = &lab.inner.fabric;
        Cmd::new("ip").args(["-n", fab, "link", "add", "br0", "type", "bridge"]).run()?;
        Cmd::new("ip").args(["-n", fab, "link", "set", "br0", "up"]).run()?;
        Ok(lab)
    }

    /// The unique prefix of every name this lab creates (`p` + 5 hex digits).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The lab's temporary directory (sockets, databases, logs, captures).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The network namespace holding the underlay bridge.
    pub fn fabric_netns(&self) -> &str {
        &self.inner.fabric
    }

    /// Sets the program (and leading arguments) that runs a collector; by default
    /// `$PERISCOPE_LAB_COLLECTOR`, else `periscope-lab-collector` beside the running executable or
    /// in its parent directory (where cargo puts binaries next to `deps/`).
    pub fn set_collector_command(&self, program: impl Into<OsString>, leading_args: Vec<OsString>) {
        self.inner.registry().collector_command = Some((program.into(), leading_args));
    }

    /// Adds a hypervisor: its own namespace, ovsdb-server, ovs-vswitchd, `br-phy` and `br-int`.
    pub fn add_hypervisor(&self, name: &str, options: HypervisorOptions) -> Result<Hypervisor> {
        Hypervisor::create(&self.inner, name, options)
    }

    /// Adds a VM plugged into `hv`'s `br-int`.
    pub fn add_vm(&self, hv: &Hypervisor, options: VmOptions) -> Result<Vm> {
        Vm::create(&self.inner, hv, options)
    }

    /// Adds a collector on the underlay, listening before this returns.
    pub fn add_collector(&self, name: &str) -> Result<Collector> {
        Collector::create(&self.inner, name)
    }

    /// Every network namespace this lab created and has not yet deleted.
    pub fn netns(&self) -> Vec<String> {
        self.inner.registry().netns.clone()
    }

    /// The pids of every process this lab started and that is still running.
    pub fn pids(&self) -> Vec<u32> {
        let reg = self.inner.registry();
        let mut pids: Vec<u32> =
            reg.daemons.iter().filter_map(|d| read_pidfile(&d.pidfile)).collect();
        pids.extend(reg.children.values().map(|(_, c)| c.id()));
        pids
    }

    /// Tears everything down now; the same as dropping the lab.
    pub fn teardown(self) {}
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.inner.teardown();
    }
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("prefix", &self.inner.prefix)
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl LabInner {
    /// The registry; a panic elsewhere while it was held does not stop teardown.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fails once the lab has been torn down.
    pub(crate) fn check_alive(&self) -> Result<()> {
        if self.registry().torn_down {
            Err(LabError::TornDown { prefix: self.prefix.clone() })
        } else {
            Ok(())
        }
    }

    /// A fresh small index, shared by hypervisors, VMs and collectors (1, 2, ...).
    pub(crate) fn next_index(&self) -> u32 {
        self.next_index.fetch_add(1, Ordering::Relaxed)
    }

    /// A datapath id unique to this lab and `index`: `0x0e1a_b` + prefix bits + index.
    pub(crate) fn dpid(&self, index: u32, bridge: u8) -> u64 {
        (0x0e1a_u64 << 48)
            | (u64::from(self.prefix_bits) << 24)
            | (u64::from(index & 0xffff) << 8)
            | u64::from(bridge)
    }

    /// Checks a user-given name: lowercase letters, digits and `-`, at most 10 bytes.
    pub(crate) fn check_name(&self, field: &'static str, name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= 10
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(LabError::Invalid {
                field,
                value: name.to_string(),
                expected: "1 to 10 characters among a-z, 0-9 and '-'",
            })
        }
    }

    /// Creates a network namespace `name` (recorded for teardown) with loopback up.
    pub(crate) fn add_netns(&self, name: &str) -> Result<()> {
        self.check_alive()?;
        Cmd::new("ip").args(["netns", "add", name]).run()?;
        self.registry().netns.push(name.to_string());
        Cmd::new("ip").args(["-n", name, "link", "set", "lo", "up"]).run()?;
        Ok(())
    }

    /// Records a detached daemon so teardown stops it through its pidfile.
    pub(crate) fn add_daemon(&self, pidfile: PathBuf, comm: &'static str) {
        self.registry().daemons.push(Daemon { pidfile, comm });
    }

    /// Records a child process; teardown kills it unless it was taken back first.
    pub(crate) fn add_child(&self, what: &str, child: Child) -> u64 {
        let mut reg = self.registry();
        reg.next_child += 1;
        let id = reg.next_child;
        reg.children.insert(id, (what.to_string(), child));
        id
    }

    /// Takes a recorded child process back (to wait for it or stop it in its own way).
    pub(crate) fn take_child(&self, id: u64) -> Option<Child> {
        self.registry().children.remove(&id).map(|(_, c)| c)
    }

    /// Runs `f` on a recorded child without taking it.
    pub(crate) fn with_child<T>(&self, id: u64, f: impl FnOnce(&mut Child) -> T) -> Option<T> {
        self.registry().children.get_mut(&id).map(|(_, c)| f(c))
    }

    /// The collector program and its leading arguments.
    pub(crate) fn collector_command(&self) -> Result<(OsString, Vec<OsString>)> {
        if let Some(c) = &self.registry().collector_command {
            return Ok(c.clone());
        }
        if let Some(p) = std::env::var_os("PERISCOPE_LAB_COLLECTOR") {
            return Ok((p, Vec::new()));
        }
        let exe = std::env::current_exe().map_err(|source| LabError::Io {
            what: "finding the current executable".into(),
            source,
        })?;
        let name = "periscope-lab-collector";
        let candidates = exe.parent().into_iter().flat_map(|d| [Some(d), d.parent()]).flatten();
        for dir in candidates {
            let p = dir.join(name);
            if p.is_file() {
                return Ok((p.into_os_string(), Vec::new()));
            }
        }
        Err(LabError::Invalid {
            field: "collector program",
            value: name.to_string(),
            expected: "a built periscope-lab-collector beside the executable, \
                       $PERISCOPE_LAB_COLLECTOR, or Lab::set_collector_command",
        })
    }

    /// Adds an underlay endpoint and pre-seeds the tunnel neighbor caches of every hypervisor,
    /// since the first packet to an unresolved tunnel destination is dropped.
    pub(crate) fn add_endpoint(&self, new: Endpoint) -> Result<()> {
        let others = {
            let mut reg = self.registry();
            let others = reg.endpoints.clone();
            reg.endpoints.push(new.clone());
            others
        };
        for other in &others {
            if let Some(ctl) = &new.vswitchd_ctl {
                neigh_set(ctl, other)?;
            }
            if let Some(ctl) = &other.vswitchd_ctl {
                neigh_set(ctl, &new)?;
            }
        }
        Ok(())
    }

    /// Stops every process, deletes every namespace and the directory. Idempotent; never panics.
    fn teardown(&self) {
        let (children, daemons, netns) = {
            let mut reg = self.registry();
            if reg.torn_down {
                return;
            }
            reg.torn_down = true;
            (
                std::mem::take(&mut reg.children),
                std::mem::take(&mut reg.daemons),
                std::mem::take(&mut reg.netns),
            )
        };
        for (_, (_, mut child)) in children {
            cmd::stop_group(&mut child, Duration::from_secs(1));
        }
        for d in daemons.iter().rev() {
            if let Some(pid) = read_pidfile(&d.pidfile) {
                cmd::stop_pid(pid, Some(d.comm), STOP_GRACE);
            }
        }
        for ns in netns.iter().rev() {
            let _ = Cmd::new("ip").args(["netns", "del", ns]).run_raw();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `ovs-appctl tnl/neigh/set br-phy <ip> <mac>` on one hypervisor.
fn neigh_set(vswitchd_ctl: &Path, endpoint: &Endpoint) -> Result<()> {
    Cmd::new("ovs-appctl")
        .arg("-t")
        .arg(vswitchd_ctl)
        .args(["tnl/neigh/set", "br-phy", &endpoint.ip.to_string(), &endpoint.mac])
        .run()
        .map(|_| ())
}

/// Reads a pid from an OVS pidfile.
fn read_pidfile(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Picks a prefix not used by any namespace and atomically reserves its temp dir.
fn reserve_prefix() -> Result<(String, u32, PathBuf)> {
    let base = {
        let tmp = std::env::temp_dir();
        // Unix socket paths are limited to 107 bytes; keep ours well below.
        if tmp.as_os_str().len() > 40 {
            PathBuf::from("/tmp")
        } else {
            tmp
        }
    };
    let existing = Cmd::new("ip").args(["netns", "list"]).run()?;
    for attempt in 0..64u32 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let seq = LAB_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut x = (u64::from(std::process::id()) << 32)
            ^ (nanos as u64)
            ^ (u64::from(seq) << 20)
            ^ u64::from(attempt);
        // splitmix64 finaliser: spreads pid, time and counter over the 20 bits we keep.
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        let bits = (x & 0xf_ffff) as u32;
        let prefix = format!("p{bits:05x}");
        if existing.lines().any(|l| l.starts_with(&prefix)) {
            continue;
        }
        let dir = base.join(format!("periscope-lab-{prefix}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((prefix, bits, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(LabError::Io { what: format!("creating {}", dir.display()), source })
            }
        }
    }
    Err(LabError::Timeout { what: "a free lab prefix".into(), after: Duration::ZERO })
}

/// Polls `cond` every 50 ms until it holds, and says how long that took; a timeout names
/// `what` was awaited.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration> {
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(LabError::Timeout { what: what.to_string(), after: timeout });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
