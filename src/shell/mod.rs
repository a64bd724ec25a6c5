//! `periscope shell`: a debug shell for network engineers, talking to a running controller's
//! northbound API. One command with `-c`, or a prompt (line editing, history and completion on
//! a terminal; plain lines from a pipe). `--json` prints the API's answers as they are.
//!
//! No command changes tap state; only `log level LEVEL` changes anything at all.

pub mod command;
mod editor;
pub mod render;

use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::{json, Value};

use self::command::{Command, Names, COMMANDS};
use crate::policy::cookie;
use crate::scenario::http::{request_to, Endpoint};

/// Options of `periscope shell`.
#[derive(Debug, Clone, Args)]
pub struct ShellArgs {
    /// The controller's API: `IP:PORT` or `HOST:PORT` (as given to `run --api`), or
    /// `unix:PATH`. Default: the controller's socket, `unix:DATA_DIR/api.sock`.
    #[arg(long, value_name = "ADDR")]
    pub api: Option<String>,
    /// The controller's data directory (as given to `run --data-dir`): its API socket and
    /// operator token.
    #[arg(long, default_value = "/var/lib/periscope", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The operator's token. Default: `$PERISCOPE_TOKEN`, else `--token-file`, else
    /// `DATA_DIR/operator.token`.
    #[arg(long)]
    pub token: Option<String>,
    /// A file holding the token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Run this one command and exit (status 0 when it worked, 1 when it failed, 2 when it is
    /// not a command).
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
    /// Print the API's JSON answers instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A command that did not work: the API refused it, or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The line is not a command.
    #[error("{0}")]
    Parse(#[from] command::ParseError),
    /// The API answered with an error.
    #[error("{method} {path}: {status}: {message}")]
    Api {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// HTTP status.
        status: u16,
        /// The error's code and message, or the body.
        message: String,
    },
    /// The API could not be reached or answered nonsense.
    #[error("{0} (is the controller running? --api or --data-dir say where its API is)")]
    Http(#[from] crate::scenario::http::HttpError),
    /// What was asked for does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// The controller's API, as the shell calls it.
#[derive(Debug, Clone)]
pub struct Client {
    addr: Endpoint,
    token: Option<String>,
}

impl Client {
    /// A client of the API at `addr`, presenting `token`.
    pub fn new(addr: Endpoint, token: Option<String>) -> Self {
        Client { addr, token }
    }

    /// `GET path`: the JSON body of a 2xx answer, else the API's error.
    pub fn get(&self, path: &str) -> Result<Value, ShellError> {
        self.call("GET", path, None)
    }

    /// `PUT path` with a JSON body: the JSON body of a 2xx answer, else the API's error.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, ShellError> {
        self.call("PUT", path, Some(body))
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ShellError> {
        let (status, body) = request_to(&self.addr, self.token.as_deref(), method, path, body)?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let message = match (body["error"]["code"].as_str(), body["error"]["message"].as_str()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => body.to_string(),
        };
        Err(ShellError::Api { method: method.into(), path: path.into(), status, message })
    }
}

/// A path segment or query value with everything but unreserved characters `%`-escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a command printed: text, or the JSON it read.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The report for people.
    pub text: String,
    /// What the API answered, for `--json`.
    pub json: Value,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `help` or `help <command>`.
fn help(topic: Option<&str>) -> Result<Output, ShellError> {
    let text = match topic {
        None => {
            let width = COMMANDS.iter().map(|s| s.usage().len()).max().unwrap_or(0);
            let mut t = String::from(
                "commands (none changes a tap; only `log level LEVEL` changes anything):\n",
            );
            for s in COMMANDS {
                t.push_str(&format!("  {:<width$}  {}\n", s.usage(), s.help));
            }
            t
        }
        Some(name) => match command::find(name) {
            Some(s) => format!("usage: {}\n  {}\n", s.usage(), s.help),
            // `help show`, `help log`: the commands that start so.
            None if COMMANDS.iter().any(|s| s.name.starts_with(&format!("{name} "))) => COMMANDS
                .iter()
                .filter(|s| s.name.starts_with(&format!("{name} ")))
                .map(|s| format!("usage: {}\n  {}\n", s.usage(), s.help))
                .collect(),
            None => {
                let words: Vec<&str> = name.split_whitespace().collect();
                let near = command::nearest(&words);
                let mut t = format!("no command {name:?}");
                if let Some(n) = near.first() {
                    t.push_str(&format!("; did you mean {:?}?\nusage: {}", n.name, n.usage()));
                }
                return Err(ShellError::NotFound(t));
            }
        },
    };
    Ok(Output { json: json!({ "help": text }), text })
}

/// The dpid of the switch `arg` names: a dpid (hex, `0x` optional), a bridge name when one
/// connected switch has it, or `hypervisor/bridge`.
pub fn resolve_bridge(switches: &Value, arg: &str) -> Result<String, String> {
    let empty = Vec::new();
    let list = switches.as_array().unwrap_or(&empty);
    let hex = arg.strip_prefix("0x").unwrap_or(arg);
    if let Ok(n) = u64::from_str_radix(hex, 16) {
        let d = format!("{n:016x}");
        if list.iter().any(|s| s["dpid"] == d.as_str()) {
            return Ok(d);
        }
    }
    let (hv, name) = match arg.split_once('/') {
        Some((h, b)) => (Some(h), b),
        None => (None, arg),
    };
    let found: Vec<&Value> = list
        .iter()
        .filter(|s| s["bridge"] == name && hv.is_none_or(|h| s["hypervisor"] == h))
        .collect();
    let known = || {
        list.iter()
            .map(|s| {
                format!(
                    "{}/{} ({})",
                    s["hypervisor"].as_str().unwrap_or("?"),
                    s["bridge"].as_str().unwrap_or("?"),
                    s["dpid"].as_str().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match found.as_slice() {
        [one] => one["dpid"].as_str().map(str::to_string).ok_or_else(|| "no dpid".into()),
        [] => Err(format!(
            "no connected switch is {arg:?}; connected: {}",
            if list.is_empty() { "none".into() } else { known() }
        )),
        _ => Err(format!("{arg:?} is on several hypervisors; say which: {}", known())),
    }
}

/// How long `stats` watches the counters to tell their rates.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Per-second rates of the counters that grew from `before` to `after` in `elapsed`, to one
/// decimal.
fn rates(before: &Value, after: &Value, elapsed: std::time::Duration) -> Value {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mut out = serde_json::Map::new();
    for (k, v) in after.as_object().into_iter().flatten() {
        let (Some(now), Some(then)) = (v.as_u64(), before[k].as_u64()) else { continue };
        let rate = now.saturating_sub(then) as f64 / secs;
        out.insert(k.clone(), json!((rate * 10.0).round() / 10.0));
    }
    Value::Object(out)
}

/// The names Tab completes arguments from, out of the API's answers: switches
/// (`/v1/switches`), the topology (`/v1/topology`), tap flows and tap services.
pub fn names_from(switches: &Value, topology: &Value, flows: &Value, services: &Value) -> Names {
    let empty = Vec::new();
    let arr = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut names = Names::default();
    let list = arr(switches);
    for s in &list {
        let (Some(hv), Some(bridge)) = (text(&s["hypervisor"]), text(&s["bridge"])) else {
            continue;
        };
        names.bridges.push(format!("{hv}/{bridge}"));
        if list.iter().filter(|o| o["bridge"] == bridge.as_str()).count() == 1 {
            names.bridges.push(bridge);
        }
    }
    names.bridges.extend(list.iter().filter_map(|s| text(&s["dpid"])));
    for h in arr(&topology["hypervisors"]) {
        for b in arr(&h["bridges"]) {
            for p in arr(&b["ports"]) {
                for i in arr(&p["interfaces"]).into_iter().filter(|i| i["iface_id"].is_string()) {
                    names.interfaces.extend(
                        [&i["iface_id"], &i["vm_uuid"], &i["name"]].into_iter().filter_map(text),
                    );
                }
            }
        }
    }
    names.taps.extend(arr(flows).iter().filter_map(|f| text(&f["name"])));
    names
        .tenants
        .extend(arr(flows).iter().chain(&arr(services)).filter_map(|o| text(&o["tenant"])));
    for v in [&mut names.bridges, &mut names.interfaces, &mut names.taps, &mut names.tenants] {
        v.sort();
        v.dedup();
    }
    names
}

/// The names the controller knows now; what it cannot say is left empty.
fn names(client: &Client) -> Names {
    let get = |path| client.get(path).unwrap_or(Value::Null);
    names_from(
        &get("/v1/switches"),
        &get("/v1/topology"),
        &get("/v1/tap_flows"),
        &get("/v1/tap_services"),
    )
}

/// Runs one command against the API.
pub fn execute(client: &Client, cmd: &Command) -> Result<Output, ShellError> {
    let out = |json: Value, text: String| Ok(Output { text, json });
    match cmd {
        Command::Help(topic) => help(topic.as_deref()),
        Command::Quit => out(Value::Null, String::new()),
        Command::ShowSwitches => {
            let list = client.get("/v1/switches")?;
            out(list.clone(), render::switches(&list, now_ms()))
        }
        Command::ShowPorts { bridge } => {
            let t = client.get("/v1/topology")?;
            let text = render::ports(&t, bridge.as_deref()).map_err(ShellError::NotFound)?;
            out(t["switches"].clone(), text)
        }
        Command::ShowTopology => {
            let t = client.get("/v1/topology")?;
            out(t.clone(), render::topology(&t))
        }
        Command::Stats => {
            // Two readings a second apart: the totals, and the rates between them.
            let before = client.get("/v1/stats")?;
            let start = std::time::Instant::now();
            std::thread::sleep(RATE_WINDOW);
            let mut s = client.get("/v1/stats")?;
            s["rates_per_s"] = rates(&before["messages"], &s["messages"], start.elapsed());
            out(s.clone(), render::stats(&s))
        }
        Command::ShowTaps { tenant } => {
            let q = tenant.as_ref().map(|t| format!("?tenant={}", escape(t))).unwrap_or_default();
            let services = client.get(&format!("/v1/tap_services{q}"))?;
            let flows = client.get(&format!("/v1/tap_flows{q}"))?;
            let text = render::taps(&services, &flows);
            out(json!({ "tap_services": services, "tap_flows": flows }), text)
        }
        Command::ShowTap { name } => {
            let flows = client.get(&format!("/v1/tap_flows?name={}", escape(name)))?;
            let empty = Vec::new();
            let flows = flows.as_array().unwrap_or(&empty);
            if flows.is_empty() {
                return Err(ShellError::NotFound(format!(
                    "no tap flow is named {name:?} (show taps lists them)"
                )));
            }
            let mut text = String::new();
            let mut both = Vec::new();
            for f in flows {
                let svc = client.get(&format!("/v1/tap_services/{}", f["tap_service"])).ok();
                let counters = copy_counters(client, f);
                text.push_str(&render::tap(f, svc.as_ref(), &counters));
                both.push(json!({ "tap_flow": f, "tap_service": svc, "copies": counters }));
            }
            out(Value::Array(both), text)
        }
        Command::Where { what } => where_is(client, what),
        Command::Trace { bridge, packet } => {
            let switches = client.get("/v1/switches")?;
            let dpid = resolve_bridge(&switches, bridge).map_err(ShellError::NotFound)?;
            let reply =
                client.get(&format!("/v1/switches/{dpid}/trace?packet={}", escape(packet)))?;
            out(reply.clone(), render::trace(&reply))
        }
        Command::LogLevel { set } => {
            let r = match set {
                None => client.get("/v1/log")?,
                Some(l) => client.put("/v1/log", &json!({ "level": l }))?,
            };
            let text = format!("log level {}\n", r["level"].as_str().unwrap_or("?"));
            out(r, text)
        }
        Command::Events { .. } => {
            let r = client.get("/v1/events?limit=50")?;
            out(r.clone(), render::events(&r))
        }
        Command::Diff { bridge } => {
            let switches = client.get("/v1/switches")?;
            let dpid = resolve_bridge(&switches, bridge).map_err(ShellError::NotFound)?;
            let reply = client.get(&format!("/v1/switches/{dpid}/diff"))?;
            out(reply.clone(), render::diff(&reply))
        }
        Command::DumpFlows { bridge, ours } => {
            let switches = client.get("/v1/switches")?;
            let dpid = resolve_bridge(&switches, bridge).map_err(ShellError::NotFound)?;
            let q = if *ours { "?ours=true" } else { "" };
            let reply = client.get(&format!("/v1/switches/{dpid}/flows{q}"))?;
            let empty = Vec::new();
            let mut text = String::new();
            for f in reply["flows"].as_array().unwrap_or(&empty) {
                text.push(' ');
                text.push_str(f.as_str().unwrap_or_default());
                text.push('\n');
            }
            out(reply, text)
        }
    }
}

/// A tap flow's copies on each bridge where it is active, counted by the switch's copy flows
/// (those with the tap flow's cookie), read from the switches now.
fn copy_counters(client: &Client, flow: &Value) -> Vec<Value> {
    let (Some(id), Some(active)) = (flow["id"].as_u64(), flow["active"].as_array()) else {
        return Vec::new();
    };
    let mut dpids: Vec<String> = active.iter().map(|a| render::dpid(&a["dpid"])).collect();
    dpids.sort();
    dpids.dedup();
    let mut out = Vec::new();
    for d in dpids {
        match client.get(&format!("/v1/switches/{d}/flows?ours=true")) {
            Ok(dump) => out.push(copies_of(id, &dump)),
            Err(e) => out.push(json!({ "dpid": d, "error": e.to_string() })),
        }
    }
    out
}

/// Sums the counters of tap flow `id`'s copy flows in one switch's flow dump.
fn copies_of(id: u64, dump: &Value) -> Value {
    let (mut flows, mut packets, mut bytes) = (0u64, 0u64, 0u64);
    let empty = Vec::new();
    for f in dump["stats"].as_array().unwrap_or(&empty) {
        let cookie = f["cookie"]
            .as_str()
            .and_then(|c| u64::from_str_radix(c.trim_start_matches("0x"), 16).ok())
            .map(periscope_codec::openflow::Cookie);
        if cookie.and_then(cookie::decode) == Some((cookie::Kind::Mirror as u8, id)) {
            flows += 1;
            packets += f["packets"].as_u64().unwrap_or(0);
            bytes += f["bytes"].as_u64().unwrap_or(0);
        }
    }
    json!({
        "dpid": dump["dpid"], "hypervisor": dump["hypervisor"], "bridge": dump["bridge"],
        "flows": flows, "packets": packets, "bytes": bytes,
    })
}

/// `where`: by iface-id, else by VM uuid or interface name in the topology.
fn where_is(client: &Client, what: &str) -> Result<Output, ShellError> {
    let flows = client.get("/v1/tap_flows")?;
    let mut ids = vec![what.to_string()];
    let direct = client.get(&format!("/v1/interfaces/{}", escape(what)));
    let first = match direct {
        Ok(v) => Some(v),
        Err(ShellError::Api { status: 404, .. }) => {
            let t = client.get("/v1/topology")?;
            ids = iface_ids_named(&t, what);
            if ids.is_empty() {
                return Err(ShellError::NotFound(format!(
                    "no interface has iface-id, vm-uuid or name {what:?} (show topology lists them)"
                )));
            }
            None
        }
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    let mut all = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let iface = match (&first, i) {
            (Some(v), 0) => v.clone(),
            _ => client.get(&format!("/v1/interfaces/{}", escape(id)))?,
        };
        text.push_str(&render::location(&iface, &flows));
        all.push(iface);
    }
    let json = if all.len() == 1 { all.remove(0) } else { Value::Array(all) };
    Ok(Output { text, json })
}

/// The iface-ids of the interfaces whose VM uuid or name is `what`.
fn iface_ids_named(topology: &Value, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let arr = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    for h in arr(&topology["hypervisors"]) {
        for b in arr(&h["bridges"]) {
            for p in arr(&b["ports"]) {
                for i in arr(&p["interfaces"]) {
                    let hit = i["vm_uuid"] == what || i["name"] == what;
                    if let (true, Some(id)) = (hit, i["iface_id"].as_str()) {
                        if !out.iter().any(|o| o == id) {
                            out.push(id.to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

fn token(args: &ShellArgs) -> anyhow::Result<Option<String>> {
    if let Some(t) = &args.token {
        return Ok(Some(t.clone()));
    }
    if let Ok(t) = std::env::var("PERISCOPE_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(Some(t.trim().to_string()));
        }
    }
    let (file, given) = match &args.token_file {
        Some(f) => (f.clone(), true),
        None => (args.data_dir.join("operator.token"), false),
    };
    match std::fs::read_to_string(&file) {
        Ok(t) => Ok(Some(t.trim().to_string())),
        // Without a token the API answers 401, which says what is needed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !given => Ok(None),
        Err(e) => Err(anyhow!("reading the token from {}: {e}", file.display())),
    }
}

/// Where the API is: `--api`, else the socket in the data directory.
fn address(args: &ShellArgs) -> anyhow::Result<Endpoint> {
    let Some(api) = &args.api else {
        return Ok(Endpoint::Unix(args.data_dir.join("api.sock")));
    };
    if let Some(path) = api.strip_prefix("unix:") {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    let hostport = api
        .strip_prefix("http://")
        .or_else(|| api.strip_prefix("tcp:"))
        .unwrap_or(api)
        .trim_end_matches('/');
    let addr: SocketAddr = hostport
        .to_socket_addrs()
        .with_context(|| format!("--api {api:?}: expected IP:PORT, HOST:PORT or unix:PATH"))?
        .next()
        .ok_or_else(|| anyhow!("--api {api:?}: the name has no address"))?;
    Ok(Endpoint::Tcp(addr))
}

/// Prints one command's result; returns whether it worked and whether it was a command.
fn run_line(client: &Client, line: &str, json_out: bool) -> Result<Option<Command>, ShellError> {
    let Some(cmd) = command::parse(line)? else { return Ok(None) };
    if cmd == (Command::Events { follow: true }) {
        return follow(client, json_out).map(|()| Some(cmd));
    }
    let o = execute(client, &cmd)?;
    let mut stdout = std::io::stdout().lock();
    if json_out && cmd != Command::Quit {
        let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&o.json).unwrap_or_default());
    } else {
        let _ = stdout.write_all(o.text.as_bytes());
    }
    let _ = stdout.flush();
    Ok(Some(cmd))
}

/// How often `events --follow` asks for new events.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(300);

/// `events --follow`: the recent events, then the new ones as they come, until interrupted
/// or the controller cannot be reached.
fn follow(client: &Client, json_out: bool) -> Result<(), ShellError> {
    let mut path = "/v1/events?limit=20".to_string();
    loop {
        let r = client.get(&path)?;
        let mut stdout = std::io::stdout().lock();
        let empty = Vec::new();
        for e in r["events"].as_array().unwrap_or(&empty) {
            let line = if json_out { e.to_string() + "\n" } else { render::event(e) };
            if stdout.write_all(line.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                // The reader went away (a closed pipe): nothing more to do.
                return Ok(());
            }
        }
        drop(stdout);
        path = format!("/v1/events?since={}&limit=500", r["next"].as_u64().unwrap_or(0));
        std::thread::sleep(FOLLOW_EVERY);
    }
}

/// Runs `periscope shell`.
pub fn run(args: ShellArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(address(&args)?, token(&args)?);
    if let Some(line) = &args.command {
        return Ok(match run_line(&client, line, args.json) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e @ ShellError::Parse(_)) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        });
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal() && std::io::stdout().is_terminal();
    let mut editor = match interactive.then(editor::Editor::start) {
        Some(Ok(ed)) => Some(ed),
        Some(Err(e)) => {
            eprintln!("no line editing ({e}): reading plain lines");
            None
        }
        None => None,
    };
    if interactive {
        println!("periscope shell on {}; help lists the commands, quit leaves", client.addr);
    }
    let mut failed = false;
    // Only without the editor: it reads stdin itself, and the lock is not reentrant.
    let mut lines = editor.is_none().then(|| stdin.lock().lines());
    loop {
        let line = match editor.as_mut() {
            Some(ed) => match ed.read_line("periscope> ", &mut || names(&client)) {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => bail!("reading the terminal: {e}"),
            },
            None => match lines.as_mut().and_then(Iterator::next) {
                Some(Ok(l)) => l,
                Some(Err(e)) => bail!("reading stdin: {e}"),
                None => break,
            },
        };
        match run_line(&client, &line, args.json) {
            Ok(Some(Command::Quit)) => break,
            Ok(_) => {}
            Err(e) => {
                failed = true;
                match e {
                    ShellError::Parse(p) => eprintln!("{p}"),
                    other => eprintln!("error: {other}"),
                }
            }
        }
    }
    drop(editor);
    // Piped commands, like a script, report whether every one worked.
    Ok(if failed && !interactive { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(api: Option<&str>) -> ShellArgs {
        ShellArgs {
            api: api.map(str::to_string),
            data_dir: PathBuf::from("/d"),
            token: None,
            token_file: None,
            command: None,
            json: false,
        }
    }

    #[test]
    fn the_api_is_the_data_dirs_socket_unless_given() {
        assert_eq!(address(&args(None)).ok(), Some(Endpoint::Unix("/d/api.sock".into())));
        assert_eq!(address(&args(Some("unix:/s"))).ok(), Some(Endpoint::Unix("/s".into())));
        let tcp = Some(Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], 8080))));
        for a in ["127.0.0.1:8080", "tcp:127.0.0.1:8080", "http://127.0.0.1:8080/"] {
            assert_eq!(address(&args(Some(a))).ok(), tcp, "{a}");
        }
        let e = address(&args(Some("8080"))).expect_err("no host").to_string();
        assert!(e.contains("expected IP:PORT, HOST:PORT or unix:PATH"), "{e}");
        // A token file that was named must be there; the default one may be missing.
        assert_eq!(token(&args(None)).ok(), Some(None));
        let mut a = args(None);
        a.token_file = Some("/nonexistent/token".into());
        assert!(token(&a).is_err());
    }

    #[test]
    fn escaping_keeps_unreserved_characters() {
        assert_eq!(escape("a-b_c.d~9"), "a-b_c.d~9");
        assert_eq!(escape("a b/c?"), "a%20b%2Fc%3F");
    }

    #[test]
    fn bridges_resolve_by_dpid_name_or_hypervisor() {
        let list = json!([
            {"dpid": "0000000000000001", "hypervisor": "hv1", "bridge": "br-int"},
            {"dpid": "0000000000000002", "hypervisor": "hv2", "bridge": "br-int"},
            {"dpid": "0000000000000003", "hypervisor": "hv2", "bridge": "br-ex"},
        ]);
        assert_eq!(resolve_bridge(&list, "0x2"), Ok("0000000000000002".into()));
        assert_eq!(resolve_bridge(&list, "0000000000000003"), Ok("0000000000000003".into()));
        assert_eq!(resolve_bridge(&list, "br-ex"), Ok("0000000000000003".into()));
        assert_eq!(resolve_bridge(&list, "hv1/br-int"), Ok("0000000000000001".into()));
        let e = resolve_bridge(&list, "br-int").expect_err("ambiguous");
        assert!(e.contains("several hypervisors") && e.contains("hv2/br-int"), "{e}");
        let e = resolve_bridge(&list, "br-tun").expect_err("unknown");
        assert!(e.contains("no connected switch is \"br-tun\"") && e.contains("hv2/br-ex"), "{e}");
        // A bridge whose name is also hex is taken by name when no dpid matches.
        let list = json!([{"dpid": "0000000000000009", "hypervisor": "h", "bridge": "beef"}]);
        assert_eq!(resolve_bridge(&list, "beef"), Ok("0000000000000009".into()));
    }

    #[test]
    fn names_for_completion_come_from_the_apis_answers() {
        let switches = json!([
            {"dpid": "0000000000000001", "hypervisor": "hv1", "bridge": "br-int"},
            {"dpid": "0000000000000002", "hypervisor": "hv2", "bridge": "br-int"},
            {"dpid": "0000000000000003", "hypervisor": "hv2", "bridge": "br-ex"},
        ]);
        let topology = json!({"hypervisors": [{"id": "hv1", "bridges": [{"name": "br-int",
            "ports": [{"name": "p1", "interfaces": [
                {"name": "tap1", "iface_id": "vm1-port", "vm_uuid": "u-1"},
                {"name": "psc-vx-1", "iface_id": null, "vm_uuid": null}]}]}]}]});
        let flows = json!([{"name": "web-in", "tenant": "bank-a"}]);
        let services = json!([{"name": "col", "tenant": "bank-b"}, {"bad": true}]);
        let n = names_from(&switches, &topology, &flows, &services);
        assert_eq!(
            n.bridges,
            [
                "0000000000000001",
                "0000000000000002",
                "0000000000000003",
                "br-ex",
                "hv1/br-int",
                "hv2/br-ex",
                "hv2/br-int"
            ]
        );
        assert_eq!(n.interfaces, ["tap1", "u-1", "vm1-port"], "tunnel ports are not VMs'");
        assert_eq!(n.taps, ["web-in"]);
        assert_eq!(n.tenants, ["bank-a", "bank-b"]);
        assert_eq!(names_from(&Value::Null, &json!("x"), &json!(1), &json!({})), Names::default());
    }

    #[test]
    fn copies_are_counted_from_the_tap_flows_own_copy_flows() {
        let mirror =
            |owner: u64| format!("{:#018x}", cookie::cookie(cookie::Kind::Mirror, owner).0);
        let classify = format!("{:#018x}", cookie::cookie(cookie::Kind::Classify, 7).0);
        let dump = json!({"dpid": "00000000000000aa", "hypervisor": "hv1", "bridge": "br-int",
        "stats": [
            {"cookie": mirror(7), "packets": 10, "bytes": 1000},
            {"cookie": mirror(7), "packets": 5, "bytes": 500},
            {"cookie": mirror(8), "packets": 99, "bytes": 9900},
            {"cookie": classify, "packets": 15, "bytes": 1500},
            {"cookie": "nonsense", "packets": 1, "bytes": 1},
        ]});
        let c = copies_of(7, &dump);
        assert_eq!(
            (c["flows"].as_u64(), c["packets"].as_u64(), c["bytes"].as_u64()),
            (Some(2), Some(15), Some(1500)),
            "{c}"
        );
        assert_eq!(c["bridge"], "br-int");
    }

    #[test]
    fn rates_are_the_growth_per_second() {
        let before = json!({"openflow_in": 100, "ovsdb_events": 7, "odd": "x"});
        let after = json!({"openflow_in": 130, "ovsdb_events": 7, "new": 5, "odd": "y"});
        let r = rates(&before, &after, std::time::Duration::from_millis(2000));
        assert_eq!(r, json!({"openflow_in": 15.0, "ovsdb_events": 0.0}));
    }

    #[test]
    fn help_lists_every_command_and_names_typos() {
        let h = help(None).expect("help");
        for s in COMMANDS {
            assert!(h.text.contains(&s.usage()), "{}", s.name);
        }
        assert!(help(Some("where")).expect("where").text.starts_with("usage: where "));
        let show = help(Some("show")).expect("help show").text;
        assert_eq!(show.matches("usage: show ").count(), 5, "{show}");
        let e = help(Some("dumpflows")).expect_err("typo").to_string();
        assert!(e.contains("did you mean \"dump-flows\""), "{e}");
    }

    #[test]
    fn vms_and_names_lead_to_iface_ids() {
        let t = json!({"hypervisors": [{"bridges": [{"ports": [
            {"interfaces": [{"name": "tap1", "vm_uuid": "vm-a", "iface_id": "p1"}]},
            {"interfaces": [{"name": "tap2", "vm_uuid": "vm-a", "iface_id": "p2"}]},
            {"interfaces": [{"name": "tap3", "vm_uuid": null, "iface_id": null}]}]}]}]});
        assert_eq!(iface_ids_named(&t, "vm-a"), vec!["p1", "p2"]);
        assert_eq!(iface_ids_named(&t, "tap2"), vec!["p2"]);
        assert!(iface_ids_named(&t, "tap3").is_empty());
    }
}
