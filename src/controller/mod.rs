//! `periscope run`: the controller process. It binds the listeners, spawns a driver per
//! connection, and runs the [`core::Core`] that turns events into flows.

pub mod core;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use slog::{info, o};
use tokio::sync::mpsc;

use crate::log::{logger_with_control, LogFormat, LogLevel};
use crate::northbound::auth::{KnownToken, Role};
use crate::northbound::config::Config;
use crate::northbound::server::{Files, Supervisor};
use crate::openflow::learning::App;
use crate::openflow::listener::{connect_forever, Bound, ListenAddr, Shared};
use crate::openflow::session::SessionConfig;
use crate::ovsdb::driver::{spawn_active, spawn_active_any, DriverConfig, Listener};
use crate::ovsdb::remote::Remote;
use crate::tls::{TlsConfig, TlsFiles};

/// Options of `periscope run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Where switches connect: `ptcp:PORT[:IP]`, `pssl:PORT[:IP]` or `punix:PATH`; or a
    /// switch that listens, which the controller connects to: `tcp:IP[:PORT]`,
    /// `ssl:IP[:PORT]` (repeatable).
    #[arg(long = "openflow", default_value = "ptcp:6653", value_name = "ADDR")]
    pub openflow: Vec<ListenAddr>,
    /// A hypervisor's ovsdb-server: `[NAME=]REMOTE`, where REMOTE is `unix:PATH`,
    /// `tcp:IP:PORT` or `ssl:IP:PORT` (we connect), or `punix:PATH`, `ptcp:PORT[:IP]` or
    /// `pssl:PORT[:IP]` (servers connect to us, as set with `ovs-vsctl set-manager`).
    /// Repeatable.
    #[arg(long = "ovsdb", value_name = "[NAME=]REMOTE")]
    pub ovsdb: Vec<OvsdbArg>,
    /// PEM private key for every TLS connection: `ssl:`/`pssl:` OpenFlow and OVSDB, the API
    /// with `--api-tls` (like ovsdb-server's `--private-key`). Reloaded when it changes.
    #[arg(long, alias = "ovsdb-private-key", value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// PEM certificate for every TLS connection, signed by the CA the switches and servers
    /// trust (like `--certificate`). Reloaded when it changes.
    #[arg(long, alias = "ovsdb-certificate", value_name = "FILE")]
    pub certificate: Option<PathBuf>,
    /// PEM CA certificate that switches' and ovsdb-servers' certificates must chain to (like
    /// `--ca-cert`). Host names and addresses in certificates are not checked, as in Open
    /// vSwitch. Reloaded when it changes.
    #[arg(long, alias = "ovsdb-ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Where the northbound REST API listens (`IP:PORT`).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    pub api: std::net::SocketAddr,
    /// Serve the API over HTTPS with `--private-key` and `--certificate` (callers show a
    /// token, not a certificate).
    #[arg(long)]
    pub api_tls: bool,
    /// The northbound database (desired state, tenants, tokens, audit): `unix:PATH`,
    /// `tcp:IP:PORT` or `ssl:IP:PORT` of an ovsdb-server serving `Periscope_Northbound`,
    /// standalone or clustered. Without it, periscope runs its own ovsdb-server on a database
    /// in `--data-dir`.
    /// Several remotes, comma-separated (`unix:A,unix:B,unix:C`), are the members of one
    /// clustered database: each connection goes to the next member that answers.
    #[arg(long, value_name = "REMOTE[,REMOTE...]")]
    pub nb: Option<NbRemotes>,
    /// Share the bridges with other instances on the same `--nb` database: the instance that
    /// holds the OVSDB lock `periscope_leader` is MASTER on every bridge and programs them; the
    /// others are SLAVE and stand by. Each uses a clustered database's leader member only
    /// (locks are local to each member). Bridges list every instance as a controller.
    #[arg(long)]
    pub leader_election: bool,
    /// Where periscope keeps its files: the embedded northbound database, the bootstrap
    /// operator token.
    #[arg(long, default_value = "/var/lib/periscope", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Tokens and default quotas (TOML; see the README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The `Interface.external_ids` key that names an interface's tenant.
    #[arg(long, default_value = periscope_topology::DEFAULT_TENANT_KEY)]
    pub tenant_key: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "term")]
    pub log_format: LogFormat,
    /// Log level: critical, error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    pub log_level: LogLevel,
    /// A reactive app every switch connection also runs: `learning-switch` answers packet-ins
    /// (other than periscope's own) as an Ethernet learning switch, for `periscope bench
    /// reactive`.
    #[arg(long, value_enum)]
    pub app: Option<App>,
    /// Seconds of silence after which a switch is sent an echo request.
    #[arg(long, default_value_t = 5)]
    pub echo_interval: u64,
    /// Seconds an echo request may go unanswered before the switch is declared dead.
    #[arg(long, default_value_t = 15)]
    pub echo_timeout: u64,
    /// `owner`: periscope owns the bridges' pipeline. `guest`: another controller owns their
    /// forwarding; periscope connects beside it and adds only flows of its own, in table 0.
    #[arg(long, value_enum, default_value = "owner")]
    pub mode: crate::policy::view::Mode,
}

/// One `--ovsdb` argument.
#[derive(Debug, Clone)]
pub struct OvsdbArg {
    /// The hypervisor's name (the remote itself when not given).
    pub name: String,
    /// Where its ovsdb-server is.
    pub remote: Remote,
}

impl std::str::FromStr for OvsdbArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, remote) = match s.split_once('=') {
            Some((n, r)) if !n.is_empty() && !n.contains(':') => (n.to_string(), r),
            _ => (s.to_string(), s),
        };
        let remote: Remote = remote.parse().map_err(|e| format!("{e}"))?;
        Ok(OvsdbArg { name, remote })
    }
}

/// The `--nb` argument: one remote, or the members of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbRemotes(pub Vec<Remote>);

impl std::str::FromStr for NbRemotes {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let remotes = s
            .split(',')
            .map(|r| {
                let remote: Remote = r.trim().parse().map_err(|e| format!("{e}"))?;
                if remote.is_passive() {
                    return Err(format!(
                        "remote {remote:?}: the northbound database is connected to; expected \
                         unix:PATH, tcp:IP:PORT or ssl:IP:PORT"
                    ));
                }
                Ok(remote)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(NbRemotes(remotes))
    }
}

impl std::fmt::Display for NbRemotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.0.iter().map(Remote::to_string).collect();
        f.write_str(&all.join(","))
    }
}

impl RunArgs {
    /// What uses TLS, for the error when files are missing: the first `ssl:`/`pssl:`
    /// endpoint or `--api-tls`.
    fn tls_user(&self) -> Option<String> {
        let openflow = self.openflow.iter().find(|a| a.is_tls()).map(|a| format!("--openflow {a}"));
        let ovsdb = || {
            self.ovsdb.iter().find(|a| a.remote.is_tls()).map(|a| format!("--ovsdb {}", a.remote))
        };
        let nb = || {
            let nb = self.nb.as_ref()?;
            nb.0.iter().find(|r| r.is_tls()).map(|r| format!("--nb {r}"))
        };
        let api = || self.api_tls.then(|| "--api-tls".to_string());
        openflow.or_else(ovsdb).or_else(nb).or_else(api)
    }

    /// The TLS configuration of every management connection: `None` when nothing uses TLS and
    /// no TLS flag is given; otherwise all three files, loaded, or an error that names the
    /// missing flags or the bad file.
    pub fn tls(&self) -> anyhow::Result<Option<TlsConfig>> {
        let flags = [
            ("--private-key", &self.private_key),
            ("--certificate", &self.certificate),
            ("--ca-cert", &self.ca_cert),
        ];
        let user = self.tls_user();
        let missing: Vec<&str> =
            flags.iter().filter(|(_, v)| v.is_none()).map(|(f, _)| *f).collect();
        if user.is_none() && missing.len() == flags.len() {
            return Ok(None);
        }
        if !missing.is_empty() {
            let why = match user {
                Some(u) => format!("{u} uses TLS"),
                None => "the TLS flags go together".to_string(),
            };
            anyhow::bail!("{why}: missing {} FILE", missing.join(" FILE, "));
        }
        let (Some(key), Some(cert), Some(ca)) =
            (&self.private_key, &self.certificate, &self.ca_cert)
        else {
            return Ok(None);
        };
        let files =
            TlsFiles { private_key: key.clone(), certificate: cert.clone(), ca_cert: ca.clone() };
        Ok(Some(TlsConfig::load(&files).context("loading the TLS files")?))
    }
}

/// Runs the controller until SIGINT or SIGTERM.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

/// Binds the API's unix socket, readable and writable by its owner only, replacing the socket
/// a previous run left (never any other kind of file).
fn bind_api_socket(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ))
        }
        Err(_) => {}
    }
    let l = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Capacity of the queue of events from all drivers to the core.
const EVENT_QUEUE: usize = 65_536;
/// OVSDB events handled together at most, before the bridges they touch are planned.
const OVSDB_DRAIN: usize = 1024;

async fn serve(args: RunArgs) -> anyhow::Result<()> {
    let (log, log_level) = logger_with_control(args.log_format, args.log_level);
    let tls = args.tls()?.map(|t| t.with_log(log.new(o!("tls" => "files"))));
    let ovsdb_cfg = DriverConfig { tls: tls.clone(), ..DriverConfig::default() };
    let cfg = SessionConfig {
        echo_interval: Duration::from_secs(args.echo_interval.max(1)),
        echo_timeout: Duration::from_secs(args.echo_timeout.max(1)),
        ..SessionConfig::default()
    };
    let (nb_config, nb_remote, embedded) = northbound(&args, &log).await?;
    let (tx, mut rx) = mpsc::channel(EVENT_QUEUE);
    let ids = Arc::new(AtomicU64::new(1));
    let mut listeners = Vec::new();
    for addr in &args.openflow {
        let shared = Shared {
            ids: ids.clone(),
            cfg: cfg.clone(),
            events: tx.clone(),
            app: args.app,
            log: log.new(o!()),
        };
        if !addr.is_passive() {
            println!("openflow connecting to {addr}");
            listeners.push(tokio::spawn(connect_forever(addr.clone(), tls.clone(), shared)));
            continue;
        }
        let bound = Bound::bind(addr, tls.as_ref())
            .await
            .with_context(|| format!("listening on {addr}"))?;
        // One line per endpoint on stdout, for people and scripts that started us with port 0.
        println!("openflow listening on {}", bound.local());
        listeners.push(tokio::spawn(bound.serve(shared)));
    }
    let switch_events = tx.downgrade();
    drop(tx);
    let api = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("binding the API on {}", args.api))?;
    let api_addr = api.local_addr().context("API address")?;
    let (api_tx, mut api_rx) = mpsc::channel(1024);
    let api_tx_watch = api_tx.downgrade();
    let api_tls = if args.api_tls { tls.clone() } else { None };
    let api_scheme = if api_tls.is_some() { "https" } else { "http" };
    listeners.push(tokio::spawn(crate::northbound::api::serve(
        api,
        api_tls,
        api_tx.clone(),
        log.new(o!()),
    )));
    // The same API on a unix socket beside the operator token, for `periscope shell` on this
    // host. Without it the controller still runs: the shell can use --api.
    let socket = args.data_dir.join("api.sock");
    match bind_api_socket(&socket) {
        Ok(l) => {
            println!("api socket unix:{}", socket.display());
            listeners.push(tokio::spawn(crate::northbound::api::serve_unix(
                l,
                api_tx,
                log.new(o!()),
            )));
        }
        Err(e) => slog::warn!(log, "no API socket"; "path" => %socket.display(), "error" => %e),
    }
    let topology = periscope_topology::TopologyConfig { tenant_key: args.tenant_key.clone() };
    let (nb_tx, mut nb_rx) = mpsc::channel(1024);
    let nb_cfg = DriverConfig {
        session: crate::ovsdb::session::SessionConfig {
            database: &crate::northbound::db::DATABASE,
            leader_only: args.leader_election,
            ..Default::default()
        },
        ..ovsdb_cfg.clone()
    };
    let nb = spawn_active_any(
        periscope_topology::HypervisorId::from("northbound"),
        nb_remote.0.clone(),
        nb_cfg,
        nb_tx,
        log.new(o!("database" => "northbound")),
    )
    .map_err(|e| anyhow::anyhow!("--nb {nb_remote}: {e}"))?;
    println!("northbound database {nb_remote}");
    let mut core =
        core::Core::with_northbound(log.new(o!()), topology, nb_config, nb.commands.clone());
    core.set_log_control(log_level);
    core.set_mode(args.mode);
    if args.leader_election {
        core.enable_leader_election();
    }
    listeners.push(nb.task);
    let (ovsdb_tx, mut ovsdb_rx) = mpsc::channel(EVENT_QUEUE);
    for arg in &args.ovsdb {
        let hv = periscope_topology::HypervisorId::from(arg.name.clone());
        if arg.remote.is_passive() {
            let listener = Listener::bind(&arg.remote)
                .await
                .with_context(|| format!("listening for ovsdb-servers on {}", arg.remote))?;
            println!("ovsdb listening on {}", listener.local());
            listeners.push(tokio::spawn(listener.serve(
                ovsdb_cfg.clone(),
                ovsdb_tx.clone(),
                log.new(o!()),
            )));
        } else {
            let handle = spawn_active(
                hv.clone(),
                arg.remote.clone(),
                ovsdb_cfg.clone(),
                ovsdb_tx.clone(),
                log.new(o!()),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            core.add_ovsdb(hv, handle.commands.clone());
            listeners.push(handle.task);
        }
    }
    let ovsdb_events = ovsdb_tx.downgrade();
    drop(ovsdb_tx);
    // Queue depths for /v1/stats and /metrics; weak, so that the queues still close.
    let api_calls = api_tx_watch;
    core.watch_queue("switch_events", move || {
        switch_events.upgrade().map(|s| s.max_capacity() - s.capacity())
    });
    core.watch_queue("ovsdb_events", move || {
        ovsdb_events.upgrade().map(|s| s.max_capacity() - s.capacity())
    });
    core.watch_queue("api_calls", move || {
        api_calls.upgrade().map(|s| s.max_capacity() - s.capacity())
    });
    let mut ovsdb_open = !args.ovsdb.is_empty();
    let mut api_announced = false;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // Sooner than the tick when a hold waits for datapaths to settle.
        let deadline = core.next_deadline();
        let soon = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => core.tick(),
            _ = soon => core.tick(),
            ev = rx.recv() => match ev {
                Some((conn, ev)) => core.handle_switch_event(conn, ev),
                None => break,
            },
            ev = ovsdb_rx.recv(), if ovsdb_open => match ev {
                Some((hv, ev)) => {
                    // With whatever else the hypervisors sent meanwhile: the bridges all of it
                    // touches are planned once.
                    core.defer_reconcile();
                    core.handle_ovsdb_event(hv, ev);
                    for _ in 1..OVSDB_DRAIN {
                        let Ok((hv, ev)) = ovsdb_rx.try_recv() else { break };
                        core.handle_ovsdb_event(hv, ev);
                    }
                    core.flush();
                }
                None => ovsdb_open = false,
            },
            ev = nb_rx.recv() => match ev {
                Some((_, ev)) => {
                    core.handle_nb_event(ev);
                    if !api_announced && core.northbound_ready() {
                        // The API answers from the desired state: ready once that is read.
                        println!("api listening on {api_scheme}://{api_addr}");
                        api_announced = true;
                    }
                }
                None => break,
            },
            call = api_rx.recv() => if let Some((req, reply)) = call {
                core.handle_api(req, reply);
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    info!(log, "shutting down");
    for l in listeners {
        l.abort();
        let _ = l.await;
    }
    if let Some(s) = embedded {
        s.stop().await;
    }
    Ok(())
}

/// The configuration, where the northbound database is, and the embedded server when
/// periscope runs its own.
async fn northbound(
    args: &RunArgs,
    log: &slog::Logger,
) -> anyhow::Result<(Config, NbRemotes, Option<Supervisor>)> {
    let mut config = match &args.config {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::default(),
    };
    if !config.has_operator() {
        let (hash, path) = crate::northbound::config::bootstrap_token(&args.data_dir)
            .map_err(|e| anyhow::anyhow!("the bootstrap operator token: {e}"))?;
        config.tokens.insert(
            hash,
            KnownToken { name: "bootstrap".into(), role: Role::Operator, origin: "bootstrap" },
        );
        // For people and scripts that start us: where the operator's token is.
        println!("operator token in {}", path.display());
    }
    if let Some(r) = &args.nb {
        return Ok((config, r.clone(), None));
    }
    let files = Files { dir: args.data_dir.clone() };
    let server = Supervisor::start(files.clone(), log.new(o!("database" => "northbound")))
        .await
        .context("starting the embedded northbound database")?;
    Ok((config, NbRemotes(vec![Remote::Unix(files.socket())]), Some(server)))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::RunArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(a: &[&str]) -> RunArgs {
        let mut all = vec!["periscope"];
        all.extend_from_slice(a);
        Cli::try_parse_from(all).unwrap_or_else(|e| panic!("{a:?}: {e}")).run
    }

    #[test]
    fn nb_takes_the_members_of_a_cluster_and_refuses_passive_remotes() {
        let a = args(&["--nb", "unix:/m1/nb.sock,tcp:192.0.2.7:6641,unix:/m3/nb.sock"]);
        let nb = a.nb.expect("--nb");
        assert_eq!(nb.0.len(), 3);
        assert_eq!(nb.to_string(), "unix:/m1/nb.sock,tcp:192.0.2.7:6641,unix:/m3/nb.sock");
        let e = Cli::try_parse_from(["periscope", "--nb", "unix:/a,ptcp:6641"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("ptcp:6641") && e.contains("connected to"), "{e}");
    }

    #[test]
    fn no_tls_remote_and_no_tls_flag_needs_no_tls() {
        let a = args(&["--ovsdb", "tcp:127.0.0.1:6640", "--ovsdb", "punix:/tmp/x.sock"]);
        assert!(a.tls().expect("no TLS needed").is_none());
    }

    #[test]
    fn an_ssl_remote_without_the_files_names_the_missing_flags() {
        let a = args(&["--ovsdb", "hv1=ssl:192.0.2.7:6640", "--ovsdb-ca-cert", "/ca.pem"]);
        let e = a.tls().unwrap_err().to_string();
        assert!(e.contains("--ovsdb ssl:192.0.2.7:6640 uses TLS"), "{e}");
        assert!(e.contains("missing --private-key FILE, --certificate FILE"), "{e}");
        assert!(!e.contains("--ca-cert"), "{e}");
    }

    #[test]
    fn tls_flags_without_an_ssl_remote_go_together() {
        let a = args(&["--ovsdb-private-key", "/k.pem"]);
        let e = a.tls().unwrap_err().to_string();
        assert!(e.contains("missing --certificate FILE, --ca-cert FILE"), "{e}");
    }

    #[test]
    fn openflow_over_tls_and_the_https_api_need_the_files() {
        let a = args(&["--openflow", "pssl:0:127.0.0.1"]);
        let e = a.tls().unwrap_err().to_string();
        assert!(
            e.starts_with("--openflow pssl:0:127.0.0.1 uses TLS: missing --private-key"),
            "{e}"
        );
        let a = args(&["--openflow", "ptcp:0", "--api-tls", "--private-key", "/k.pem"]);
        let e = a.tls().unwrap_err().to_string();
        assert!(e.starts_with("--api-tls uses TLS: missing --certificate FILE"), "{e}");
    }

    #[test]
    fn unreadable_tls_files_are_named() {
        let a = args(&[
            "--ovsdb",
            "pssl:0:127.0.0.1",
            "--ovsdb-private-key",
            "/nonexistent/periscope-k.pem",
            "--ovsdb-certificate",
            "/nonexistent/periscope-c.pem",
            "--ovsdb-ca-cert",
            "/nonexistent/periscope-ca.pem",
        ]);
        let e = format!("{:#}", a.tls().unwrap_err());
        assert!(e.contains("/nonexistent/periscope-c.pem"), "{e}");
    }
}
