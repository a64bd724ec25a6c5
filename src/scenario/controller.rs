//! The controller under test: this very binary started as `periscope run`, its addresses read
//! from the lines it prints, its log kept in a file, and stopped by pid (also when dropped).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::http::Endpoint;
use super::traffic::signal;
use crate::lab::pki::Identity;
use crate::tls::ApiClientTls;

/// How long the controller may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long it gets to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How to start the controller (kept for restarts).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The program (`current_exe`).
    pub program: PathBuf,
    /// `--openflow` values.
    pub openflow: Vec<String>,
    /// `--ovsdb` values (empty when the controller does not know the flag yet).
    pub ovsdb: Vec<String>,
    /// Where its stderr (the log) is appended.
    pub log: PathBuf,
    /// `--log-level`.
    pub log_level: String,
    /// `--data-dir`: kept across restarts, so the northbound database is too.
    pub data_dir: PathBuf,
    /// TLS: the controller's files (`--private-key`, `--certificate`, `--ca-cert`), the API
    /// over HTTPS (`--api-tls`) and how to check its certificate.
    pub tls: Option<(Identity, ApiClientTls)>,
    /// `--nb`: a shared northbound database (else the embedded one in `data_dir`).
    pub nb: Option<String>,
    /// `--leader-election`.
    pub leader_election: bool,
}

impl ControllerConfig {
    fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["run".into()];
        for o in &self.openflow {
            a.push("--openflow".into());
            a.push(o.into());
        }
        for o in &self.ovsdb {
            a.push("--ovsdb".into());
            a.push(o.into());
        }
        a.extend(
            ["--api", "127.0.0.1:0", "--log-format", "term", "--log-level"].map(OsString::from),
        );
        a.push(self.log_level.clone().into());
        a.push("--data-dir".into());
        a.push(self.data_dir.clone().into());
        if let Some((id, _)) = &self.tls {
            a.extend(["--private-key".into(), id.private_key.clone().into()]);
            a.extend(["--certificate".into(), id.certificate.clone().into()]);
            a.extend(["--ca-cert".into(), id.ca_cert.clone().into(), "--api-tls".into()]);
        }
        if let Some(nb) = &self.nb {
            a.push(format!("--nb={nb}").into());
        }
        if self.leader_election {
            a.push("--leader-election".into());
        }
        a
    }
}

/// Whether `program run` accepts `--ovsdb` (the flag lands while this runner already exists).
pub fn supports_ovsdb(program: &Path) -> bool {
    Command::new(program)
        .args(["run", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--ovsdb"))
        .unwrap_or(false)
}

/// A running controller.
pub struct ControllerProc {
    child: Child,
    data_dir: PathBuf,
    /// The operator's token, read from the file the controller names.
    pub token: Option<String>,
    /// Where its REST API listens.
    pub api: Endpoint,
    /// The OpenFlow endpoints it printed.
    pub openflow: Vec<String>,
}

impl ControllerProc {
    /// Starts the controller and waits for its `api listening on` line.
    pub fn start(cfg: &ControllerConfig) -> anyhow::Result<ControllerProc> {
        let log: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.log)
            .with_context(|| format!("opening {}", cfg.log.display()))?;
        let mut child = Command::new(&cfg.program)
            .args(cfg.args())
            // Its own process group: a Ctrl-C at the terminal is ours to handle; we stop it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} run", cfg.program.display()))?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            // Reads the address lines, then keeps draining so the controller never blocks.
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            });
        }
        let mut proc = ControllerProc {
            child,
            data_dir: cfg.data_dir.clone(),
            token: None,
            api: Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
            openflow: Vec::new(),
        };
        let start = Instant::now();
        loop {
            let left = START_TIMEOUT.saturating_sub(start.elapsed());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(path) = line.strip_prefix("operator token in ") {
                        proc.token =
                            std::fs::read_to_string(path.trim()).ok().map(|t| t.trim().to_string());
                    } else if let Some(ep) = line.strip_prefix("openflow listening on ") {
                        proc.openflow.push(ep.trim().to_string());
                    } else if let Some(a) = line.strip_prefix("api listening on ") {
                        let (https, a) = match a.trim().split_once("://") {
                            Some(("https", a)) => (true, a),
                            Some((_, a)) => (false, a),
                            None => (false, a),
                        };
                        let addr: SocketAddr =
                            a.parse().with_context(|| format!("controller printed {line:?}"))?;
                        proc.api = match (&cfg.tls, https) {
                            (Some((_, tls)), true) => Endpoint::Https(addr, tls.clone()),
                            (None, true) => bail!("the controller serves HTTPS, unasked: {line:?}"),
                            (_, false) => Endpoint::Tcp(addr),
                        };
                        return Ok(proc);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if start.elapsed() < START_TIMEOUT => {
                    if let Ok(Some(status)) = proc.child.try_wait() {
                        bail!(
                            "the controller exited ({status}) before listening; its log ({}) ends with: {}",
                            cfg.log.display(),
                            log_tail(&cfg.log)
                        );
                    }
                }
                Err(_) => {
                    let _ = proc.child.try_wait();
                    bail!(
                        "the controller printed no `api listening on` line within {START_TIMEOUT:?}; log: {}",
                        log_tail(&cfg.log)
                    );
                }
            }
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, a grace period, then SIGKILL; reaps it.
    pub fn stop(&mut self) {
        if self.running() {
            signal(self.child.id(), "-TERM");
            let start = Instant::now();
            while self.running() && start.elapsed() < STOP_GRACE {
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL; reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        self.stop();
        // A controller that was killed leaves its northbound ovsdb-server behind.
        crate::northbound::server::stop_leftover(&self.data_dir);
    }
}

/// The last lines of a log, on one line.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
