//! Running the tools the lab drives (`ip`, `ovs-vsctl`, ...): one place that turns a failed command
//! into a [`LabError`] naming the command line and its stderr.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{LabError, Result};

/// A command line about to run, optionally inside a network namespace.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    netns: Option<String>,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
}

impl Cmd {
    /// `program` in the lab process's own namespace.
    pub(crate) fn new(program: &str) -> Cmd {
        Cmd {
            netns: None,
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// `program` run through `ip netns exec <netns>`.
    pub(crate) fn in_netns(netns: &str, program: &str) -> Cmd {
        let mut cmd = Cmd::new(program);
        cmd.netns = Some(netns.to_string());
        cmd
    }

    /// Appends one argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Appends several arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Sets one environment variable.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.to_string(), value.as_ref().to_string_lossy().into_owned()));
        self
    }

    /// Feeds `input` on standard input.
    pub(crate) fn stdin(mut self, input: String) -> Cmd {
        self.stdin = Some(input);
        self
    }

    /// The command line as a user would type it, for error messages.
    pub(crate) fn display(&self) -> String {
        let mut s = String::new();
        if let Some(ns) = &self.netns {
            s.push_str(&format!("ip netns exec {ns} "));
        }
        s.push_str(&self.program);
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// The std command, not yet started.
    pub(crate) fn command(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str(), self.program.as_str()]);
                c
            }
            None => Command::new(&self.program),
        };
        c.args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts the command as the leader of a new process group, so that it and anything it forks
    /// (socat's per-connection children) can be stopped together by its pid.
    pub(crate) fn spawn_group(&self, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Result<Child> {
        self.command()
            .process_group(0)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|source| LabError::Spawn { command: self.display(), source })
    }

    /// Runs to completion and returns standard output; a non-zero exit is an error.
    pub(crate) fn run(&self) -> Result<String> {
        let (ok, out, err, status) = self.run_raw()?;
        if ok {
            Ok(out)
        } else {
            Err(LabError::Command {
                command: self.display(),
                status,
                stderr: err.trim().to_string(),
            })
        }
    }

    /// Runs to completion whatever the exit code: (success, stdout, stderr, status text).
    pub(crate) fn run_raw(&self) -> Result<(bool, String, String, String)> {
        let mut c = self.command();
        c.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            c.spawn().map_err(|source| LabError::Spawn { command: self.display(), source })?;
        if let (Some(input), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            // A failed write shows up as the command's own error below.
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|source| LabError::Spawn { command: self.display(), source })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.to_string(),
        ))
    }

    /// Runs a daemon that detaches itself (`--detach`): waits for the foreground part only, with
    /// stdout discarded and stderr kept in `stderr_file`, because the daemon may keep inherited pipes.
    pub(crate) fn run_detaching(&self, stderr_file: &Path) -> Result<()> {
        let err = fs::File::create(stderr_file).map_err(|source| LabError::Io {
            what: format!("creating {}", stderr_file.display()),
            source,
        })?;
        let status = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .map_err(|source| LabError::Spawn { command: self.display(), source })?;
        if status.success() {
            Ok(())
        } else {
            Err(LabError::Command {
                command: self.display(),
                status: status.to_string(),
                stderr: fs::read_to_string(stderr_file).unwrap_or_default().trim().to_string(),
            })
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails with a timeout naming `what`.
pub(crate) fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(LabError::Timeout { what: what.to_string(), after: timeout });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process with this pid exists and is not a zombie, with `/proc/<pid>/comm` equal to
/// `comm` when one is given (a guard against pid reuse).
pub(crate) fn process_alive(pid: u32, comm: Option<&str>) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesised command name, which may itself hold spaces.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z') | Some('X')) {
        return false;
    }
    match comm {
        Some(want) => fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end() == want)
            .unwrap_or(false),
        None => true,
    }
}

/// Stops one process by pid: SIGTERM, up to `grace` to exit, then SIGKILL. Never by name.
pub(crate) fn stop_pid(pid: u32, comm: Option<&str>, grace: Duration) {
    if !process_alive(pid, comm) {
        return;
    }
    let _ = Cmd::new("kill").args(["-TERM", &pid.to_string()]).run_raw();
    if wait_for("process exit", grace, || (!process_alive(pid, None)).then_some(())).is_ok() {
        return;
    }
    let _ = Cmd::new("kill").args(["-KILL", &pid.to_string()]).run_raw();
    let _ = wait_for("process exit", grace, || (!process_alive(pid, None)).then_some(()));
}

/// Stops a child started by [`Cmd::spawn_group`] and everything in its process group: SIGTERM,
/// up to `grace` for the leader to exit, then SIGKILL; reaps the leader.
pub(crate) fn stop_group(child: &mut Child, grace: Duration) {
    let group = format!("-{}", child.id());
    let _ = Cmd::new("kill").args(["-TERM", "--", &group]).run_raw();
    let exited = wait_for("process exit", grace, || child.try_wait().ok().flatten());
    // Followers (forked children) may outlive the leader; the group id still names them.
    let _ = Cmd::new("kill").args(["-KILL", "--", &group]).run_raw();
    if exited.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
}
