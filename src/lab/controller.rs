//! A `periscope run` process for tests, scenarios and the demo: started with the arguments
//! given, its endpoints read from the lines it prints, stopped by pid when dropped.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{LabError, Result};
use crate::scenario::http::{self, Endpoint};

/// A running controller.
pub struct ControllerProcess {
    child: Child,
    api: SocketAddr,
    log: PathBuf,
    data: PathBuf,
    token: Option<String>,
    openflow: Vec<String>,
    ovsdb: Vec<String>,
}

impl ControllerProcess {
    /// Starts `program run <args>` with the API on an ephemeral loopback port, its log written to
    /// `log`, its data (the embedded northbound database, the operator token) beside the log,
    /// and waits until it has printed its API address.
    pub fn start(
        program: impl Into<OsString>,
        args: &[String],
        log: &Path,
    ) -> Result<ControllerProcess> {
        Self::start_logging(program, args, log, "debug")
    }

    /// Like [`ControllerProcess::start`], logging at `level` (benchmarks log less than tests).
    pub fn start_logging(
        program: impl Into<OsString>,
        args: &[String],
        log: &Path,
        level: &str,
    ) -> Result<ControllerProcess> {
        let program = program.into();
        let shown = format!("{} run {}", Path::new(&program).display(), args.join(" "));
        let logfile = std::fs::File::create(log)
            .map_err(|e| LabError::Io { what: format!("creating {}", log.display()), source: e })?;
        let data = log.with_extension("data");
        let mut child = Command::new(&program)
            .arg("run")
            .args(["--api", "127.0.0.1:0", "--log-level", level])
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(logfile))
            .spawn()
            .map_err(|e| LabError::Io { what: format!("starting {shown}"), source: e })?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(LabError::Output { command: shown, output: "no stdout".into() });
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(std::io::Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        let mut token = None;
        let mut openflow = Vec::new();
        let mut ovsdb = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if let Some(path) = line.strip_prefix("operator token in ") {
                        token =
                            std::fs::read_to_string(path.trim()).ok().map(|t| t.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("openflow listening on ") {
                        openflow.push(addr.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("ovsdb listening on ") {
                        ovsdb.push(addr.trim().to_string());
                    }
                    let api = line.strip_prefix("api listening on http://");
                    if let Some(addr) =
                        api.or_else(|| line.strip_prefix("api listening on https://"))
                    {
                        if let Ok(api) = addr.trim().parse() {
                            let log = log.to_path_buf();
                            return Ok(ControllerProcess {
                                child,
                                api,
                                log,
                                data,
                                token,
                                openflow,
                                ovsdb,
                            });
                        }
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    crate::northbound::server::stop_leftover(&data);
                    let tail = std::fs::read_to_string(log).unwrap_or_default();
                    return Err(LabError::Output {
                        command: shown,
                        output: format!("{seen}{tail}"),
                    });
                }
            }
        }
    }

    /// The REST API's address.
    pub fn api(&self) -> SocketAddr {
        self.api
    }

    /// The OpenFlow endpoints it printed (`tcp:IP:PORT`, `unix:PATH`), in listener order.
    pub fn openflow(&self) -> &[String] {
        &self.openflow
    }

    /// The passive OVSDB endpoints it printed (`tcp:IP:PORT`, `unix:PATH`), where
    /// ovsdb-servers told `set-manager` connect.
    pub fn ovsdb(&self) -> &[String] {
        &self.ovsdb
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the controller has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One API call as the operator: `(status, body)`.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        http_json(self.api, self.token.as_deref(), method, path, body)
    }

    /// One API call as the operator, answered as text: `(status, body)`.
    pub fn call_text(&self, method: &str, path: &str) -> Result<(u16, String)> {
        http_text(self.api, self.token.as_deref(), method, path, None)
    }

    /// The operator's token (the bootstrap token the controller made).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Lets `tenant`'s tap services send copies to the given prefixes (`PUT /v1/tenants`).
    pub fn allow(&self, tenant: &str, collectors: &[&str]) -> Result<()> {
        let body = serde_json::json!({ "allowed_collectors": collectors });
        let path = format!("/v1/tenants/{tenant}");
        match self.call("PUT", &path, Some(&body))? {
            (200 | 201, _) => Ok(()),
            (status, reply) => Err(LabError::Output {
                command: format!("PUT {path}"),
                output: format!("{status}: {reply}"),
            }),
        }
    }

    /// Stops the controller with SIGTERM (then SIGKILL after 5 s) and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    /// Kills the controller with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) {
        self.stop_process();
        // A controller that was killed leaves its northbound ovsdb-server behind.
        crate::northbound::server::stop_leftover(&self.data);
    }

    fn stop_process(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// One API call over loopback TCP, answered as `(status, JSON body)` (`Null` when empty).
pub fn http_json(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    Ok(http::request_to(&Endpoint::Tcp(addr), token, method, path, body)?)
}

/// One API call answered as `(status, body text)` (`GET /metrics` is not JSON).
pub fn http_text(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String)> {
    Ok(http::request_text_to(&Endpoint::Tcp(addr), token, method, path, body)?)
}
