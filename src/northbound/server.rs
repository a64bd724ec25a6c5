//! The embedded northbound database: `periscope run` without `--nb` keeps its desired state in
//! an `ovsdb-server` of its own, on a database file in its data directory.
//!
//! The file is created from the shipped schema on first start and converted with
//! `ovsdb-tool convert` when the schema changed. The server runs as a child process listening
//! on a unix socket in the data directory and is started again if it exits; a server left
//! behind by a controller that was killed is stopped (by the pid in its pidfile, after checking
//! that it serves this very database) before a new one starts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use slog::{info, warn, Logger};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::db::SCHEMA;

/// Why the embedded database could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An `ovsdb-tool` command failed.
    #[error("{command} failed: {output}")]
    Tool {
        /// The command.
        command: String,
        /// What it printed.
        output: String,
    },
}

/// The files of the embedded database in a data directory.
#[derive(Debug, Clone)]
pub struct Files {
    /// The data directory.
    pub dir: PathBuf,
}

impl Files {
    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.join("nb.db")
    }

    /// The schema the database is kept at.
    pub fn schema(&self) -> PathBuf {
        self.dir.join("periscope-nb.ovsschema")
    }

    /// The socket the server listens on (`unix:` remote for the controller and for tools).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("nb.sock")
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("nb.pid")
    }

    fn ctl(&self) -> PathBuf {
        self.dir.join("nb.ctl")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("nb.log")
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

async fn tool(args: &[&str]) -> Result<String, ServerError> {
    let command = format!("ovsdb-tool {}", args.join(" "));
    let out = Command::new("ovsdb-tool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io(format!("running {command} (is openvswitch-common installed?)")))?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(ServerError::Tool { command, output: text.trim().to_string() });
    }
    Ok(text)
}

/// Creates the data directory and the database, or brings an existing database to the
/// shipped schema. Returns what was done, for the log.
pub async fn prepare(files: &Files) -> Result<&'static str, ServerError> {
    tokio::fs::create_dir_all(&files.dir)
        .await
        .map_err(io(format!("creating {}", files.dir.display())))?;
    let schema = files.schema();
    tokio::fs::write(&schema, SCHEMA).await.map_err(io(format!("writing {}", schema.display())))?;
    let (db, schema) = (files.db(), schema);
    let (db_s, schema_s) = (db.to_string_lossy(), schema.to_string_lossy());
    if !db.exists() {
        tool(&["create", &db_s, &schema_s]).await?;
        return Ok("created");
    }
    if tool(&["needs-conversion", &db_s, &schema_s]).await?.trim() == "yes" {
        tool(&["convert", &db_s, &schema_s]).await?;
        return Ok("converted to the new schema");
    }
    Ok("opened")
}

/// Stops the server a killed controller left running on the database in `dir`, if any: by the
/// pid in its pidfile, and only if that process is an ovsdb-server of this very database.
/// Returns its pid when there was one.
pub fn stop_leftover(dir: &Path) -> Option<u32> {
    let files = Files { dir: dir.to_path_buf() };
    let pid: u32 = std::fs::read_to_string(files.pidfile()).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    if !cmdline.contains("ovsdb-server") || !cmdline.contains(&*files.db().to_string_lossy()) {
        return None;
    }
    let kill = |sig: &str| {
        let _ = std::process::Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    };
    kill("-TERM");
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill("-KILL");
    Some(pid)
}

fn spawn(files: &Files) -> Result<Child, ServerError> {
    Command::new("ovsdb-server")
        .arg(files.db())
        .arg(format!("--remote=punix:{}", files.socket().display()))
        .arg(format!("--unixctl={}", files.ctl().display()))
        .arg(format!("--pidfile={}", files.pidfile().display()))
        .arg(format!("--log-file={}", files.log().display()))
        .env("OVS_RUNDIR", &files.dir)
        .env("OVS_DBDIR", &files.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("starting ovsdb-server (is openvswitch-switch installed?)"))
}

/// A running embedded server and the task that keeps it running. Dropping it stops both.
#[derive(Debug)]
pub struct Supervisor {
    task: JoinHandle<()>,
    /// Its files.
    pub files: Files,
}

impl Supervisor {
    /// Prepares the database and starts the server.
    pub async fn start(files: Files, log: Logger) -> Result<Supervisor, ServerError> {
        let what = prepare(&files).await?;
        info!(log, "northbound database"; "file" => %files.db().display(), "state" => what);
        if let Some(pid) = stop_leftover(&files.dir) {
            warn!(log, "stopped the northbound ovsdb-server a previous run left"; "pid" => pid);
        }
        let _ = tokio::fs::remove_file(files.socket()).await;
        let first = spawn(&files)?;
        let task = tokio::spawn(supervise(files.clone(), first, log));
        Ok(Supervisor { task, files })
    }

    /// Stops the server and waits for it to be gone.
    pub async fn stop(mut self) {
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        task.abort();
        let _ = task.await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Longest pause between two restarts of a server that keeps exiting.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn supervise(files: Files, mut child: Child, log: Logger) {
    let mut backoff = Duration::from_millis(100);
    loop {
        // Aborting the task drops the child, which kills it (kill_on_drop).
        let status = child.wait().await;
        warn!(log, "the northbound ovsdb-server exited; starting it again";
              "status" => format!("{status:?}"), "in_ms" => backoff.as_millis() as u64,
              "log" => %files.log().display());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match spawn(&files) {
            Ok(c) => child = c,
            Err(e) => {
                warn!(log, "could not start the northbound ovsdb-server"; "error" => %e);
                loop {
                    tokio::time::sleep(backoff).await;
                    if let Ok(c) = spawn(&files) {
                        child = c;
                        break;
                    }
                }
            }
        }
    }
}
