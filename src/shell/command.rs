//! The shell's commands: their table (name, usage, help), the parser of one line, and the
//! nearest command for a line that names none. Pure.

use std::fmt;

/// One command of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `help [command]`.
    Help(Option<String>),
    /// `show switches`.
    ShowSwitches,
    /// `show topology`.
    ShowTopology,
    /// `show taps [tenant]`.
    ShowTaps {
        /// Only this tenant's.
        tenant: Option<String>,
    },
    /// `show ports [bridge]`.
    ShowPorts {
        /// Only this bridge (name, `hypervisor/bridge` or dpid).
        bridge: Option<String>,
    },
    /// `show tap <name>`.
    ShowTap {
        /// The tap flow's name.
        name: String,
    },
    /// `where <iface-id|vm>`.
    Where {
        /// An iface-id, a VM uuid or an interface name.
        what: String,
    },
    /// `stats`.
    Stats,
    /// `dump-flows <bridge> [--ours]`.
    DumpFlows {
        /// A bridge name (`br-int`, or `hv1/br-int` when several hypervisors have one) or a dpid.
        bridge: String,
        /// Only the flows periscope installed (its cookie).
        ours: bool,
    },
    /// `trace <bridge> <packet>`.
    Trace {
        /// A bridge name, `hypervisor/bridge` or a dpid.
        bridge: String,
        /// The packet's fields in ovs-ofctl syntax.
        packet: String,
    },
    /// `log level [level]`.
    LogLevel {
        /// The level to set; none: show it.
        set: Option<String>,
    },
    /// `events [--follow]`.
    Events {
        /// Go on printing new events until interrupted.
        follow: bool,
    },
    /// `diff <bridge>`.
    Diff {
        /// A bridge name, `hypervisor/bridge` or a dpid.
        bridge: String,
    },
    /// `quit` (or `exit`).
    Quit,
}

/// What a command's first argument names, for completing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Arg {
    /// Nothing, or nothing that can be listed.
    Free,
    /// A bridge: its name, `hypervisor/bridge` or its dpid.
    Bridge,
    /// An interface: iface-id, VM uuid or interface name.
    Interface,
    /// A tap flow's name.
    Tap,
    /// A tenant.
    Tenant,
    /// A log level.
    Level,
    /// A command's first word.
    Command,
}

/// How a command is written and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Its words, without arguments.
    pub name: &'static str,
    /// Its arguments, as the usage line shows them.
    pub args: &'static str,
    /// What its first argument names.
    pub arg: Arg,
    /// What it shows.
    pub help: &'static str,
}

impl Spec {
    /// The usage line: `show taps [tenant]`.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }
}

const fn spec(name: &'static str, args: &'static str, arg: Arg, help: &'static str) -> Spec {
    Spec { name, args, arg, help }
}

/// The log levels `log level` takes, least verbose first.
pub const LEVELS: &[&str] = &["critical", "error", "warn", "info", "debug", "trace"];

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Spec] = &[
    spec(
        "show switches",
        "",
        Arg::Free,
        "connected bridges: dpid, hypervisor, bridge, connected since, our flows, last echo RTT, \
         whether it holds what it should, last reprogramming time, queue depth",
    ),
    spec(
        "show topology",
        "",
        Arg::Free,
        "hypervisors, their bridges and ports with the VM interfaces on them, links, migrations",
    ),
    spec(
        "show ports",
        "[bridge|dpid]",
        Arg::Bridge,
        "each switch's OpenFlow ports (number, name, live) with the OVSDB interface on each",
    ),
    spec(
        "show taps",
        "[tenant]",
        Arg::Tenant,
        "tap services and tap flows, with where each flow is active",
    ),
    spec(
        "show tap",
        "<name>",
        Arg::Tap,
        "one tap flow: its service, source, filter, where it is active",
    ),
    spec(
        "where",
        "<iface-id|vm-uuid|interface>",
        Arg::Interface,
        "where an interface is (hypervisor, bridge, dpid, ofport), its owner, the taps on it and \
         their last reprogramming time",
    ),
    spec(
        "dump-flows",
        "<bridge|dpid> [--ours]",
        Arg::Bridge,
        "the flows the switch holds now, read from it, in ovs-ofctl dump-flows syntax \
         (--ours: only periscope's)",
    ),
    spec(
        "trace",
        "<bridge|dpid> <fields>",
        Arg::Bridge,
        "where the switch's flows, read from it now, send a packet with these fields \
         (ovs-ofctl syntax: in_port=1,dl_dst=02:00:00:00:00:01): the tenant's forwarding and \
         each copy with its tunnel key and collector",
    ),
    spec(
        "diff",
        "<bridge|dpid>",
        Arg::Bridge,
        "periscope's flows on the switch, read from it now, against the ones it should hold",
    ),
    spec(
        "events",
        "[--follow]",
        Arg::Free,
        "the recent events: topology changes, migrations, switches, reprogramming \
         (--follow: then the new ones as they come, until Ctrl-C)",
    ),
    spec(
        "log level",
        "[error|warn|info|debug|trace]",
        Arg::Level,
        "the controller's log level, or set it (changes no tap)",
    ),
    spec(
        "stats",
        "",
        Arg::Free,
        "counters, message and error totals and their rates over a second, queue depths, \
         reprogramming times (p50, p99, max)",
    ),
    spec("help", "[command]", Arg::Command, "the commands, or one command's usage"),
    spec("quit", "", Arg::Free, "leave the shell (also: exit, Ctrl-D)"),
];

/// A line that is not a command, with what would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// The usage of the command meant, or nearest to what was typed.
    pub usage: Vec<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        for u in &self.usage {
            write!(f, "\nusage: {u}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// The spec of the command with these words.
pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name == name)
}

/// Splits a line into words: blanks separate, double quotes group, `\` escapes one character.
pub fn split(line: &str) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.get_or_insert_with(String::new).push(n),
                None => {
                    return Err(ParseError {
                        message: "the line ends with a lone \\".into(),
                        usage: vec![],
                    })
                }
            },
            '"' => {
                quoted = !quoted;
                cur.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return Err(ParseError { message: "a double quote is not closed".into(), usage: vec![] });
    }
    words.extend(cur);
    Ok(words)
}

fn usage_of(name: &str) -> Vec<String> {
    find(name).map(|s| vec![s.usage()]).unwrap_or_default()
}

fn wrong(name: &str, message: String) -> ParseError {
    ParseError { message, usage: usage_of(name) }
}

/// Parses one line. An empty line (or a comment, `#...`) is `Ok(None)`.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let words = split(line)?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let Some(first) = words.first() else { return Ok(None) };
    if first.starts_with('#') {
        return Ok(None);
    }
    let extra = |name: &str, args: &[&str]| {
        wrong(name, format!("{name} takes no argument {:?}", args.join(" ")))
    };
    let cmd = match words.as_slice() {
        ["help"] | ["?"] => Command::Help(None),
        ["help", rest @ ..] => Command::Help(Some(rest.join(" "))),
        ["quit" | "exit"] => Command::Quit,
        ["stats"] => Command::Stats,
        ["stats", rest @ ..] => return Err(extra("stats", rest)),
        ["show", "switches"] => Command::ShowSwitches,
        ["show", "switches", rest @ ..] => return Err(extra("show switches", rest)),
        ["show", "topology"] => Command::ShowTopology,
        ["show", "topology", rest @ ..] => return Err(extra("show topology", rest)),
        ["show", "ports"] => Command::ShowPorts { bridge: None },
        ["show", "ports", b] => Command::ShowPorts { bridge: Some(b.to_string()) },
        ["show", "ports", _, rest @ ..] => {
            return Err(wrong(
                "show ports",
                format!("show ports takes one bridge, not also {:?}", rest.join(" ")),
            ))
        }
        ["show", "taps"] => Command::ShowTaps { tenant: None },
        ["show", "taps", t] => Command::ShowTaps { tenant: Some(t.to_string()) },
        ["show", "taps", _, rest @ ..] => {
            return Err(wrong(
                "show taps",
                format!("show taps takes one tenant, not also {:?}", rest.join(" ")),
            ))
        }
        ["show", "tap"] => {
            return Err(wrong("show tap", "show tap needs the tap flow's <name>".into()))
        }
        ["show", "tap", n] => Command::ShowTap { name: n.to_string() },
        ["show", "tap", _, rest @ ..] => {
            return Err(wrong(
                "show tap",
                format!("show tap takes one name, not also {:?}", rest.join(" ")),
            ))
        }
        ["show"] => {
            return Err(ParseError {
                message: "show what?".into(),
                usage: COMMANDS
                    .iter()
                    .filter(|s| s.name.starts_with("show "))
                    .map(Spec::usage)
                    .collect(),
            })
        }
        ["where"] => {
            return Err(wrong(
                "where",
                "where needs an <iface-id>, a VM uuid or an interface name".into(),
            ))
        }
        ["where", w] => Command::Where { what: w.to_string() },
        ["where", _, rest @ ..] => {
            return Err(wrong(
                "where",
                format!("where takes one interface, not also {:?}", rest.join(" ")),
            ))
        }
        ["trace"] | ["trace", _] => {
            return Err(wrong(
                "trace",
                "trace needs a <bridge> and the packet's fields, e.g. in_port=1".into(),
            ))
        }
        ["trace", b, fields @ ..] => {
            Command::Trace { bridge: b.to_string(), packet: fields.join(",") }
        }
        ["log", "level"] => Command::LogLevel { set: None },
        ["log", "level", l] => Command::LogLevel { set: Some(l.to_string()) },
        ["log", "level", _, rest @ ..] => {
            return Err(wrong(
                "log level",
                format!("log level takes one level, not also {:?}", rest.join(" ")),
            ))
        }
        ["events"] => Command::Events { follow: false },
        ["events", "--follow" | "-f"] => Command::Events { follow: true },
        ["events", rest @ ..] => {
            return Err(wrong(
                "events",
                format!("events takes only --follow, not {:?}", rest.join(" ")),
            ))
        }
        ["diff"] => return Err(wrong("diff", "diff needs a <bridge> or a dpid".into())),
        ["diff", b] => Command::Diff { bridge: b.to_string() },
        ["diff", _, rest @ ..] => {
            return Err(wrong(
                "diff",
                format!("diff takes one bridge, not also {:?}", rest.join(" ")),
            ))
        }
        ["dump-flows", rest @ ..] => {
            let ours = rest.contains(&"--ours");
            let mut bridges = rest.iter().filter(|a| **a != "--ours");
            if let Some(bad) = rest.iter().find(|a| a.starts_with('-') && **a != "--ours") {
                return Err(wrong(
                    "dump-flows",
                    format!("dump-flows has no option {bad:?}; the only one is --ours"),
                ));
            }
            match (bridges.next(), bridges.next()) {
                (Some(b), None) => Command::DumpFlows { bridge: b.to_string(), ours },
                (None, _) => {
                    return Err(wrong("dump-flows", "dump-flows needs a <bridge> or a dpid".into()))
                }
                (Some(_), Some(b)) => {
                    return Err(wrong(
                        "dump-flows",
                        format!("dump-flows takes one bridge, not also {b:?}"),
                    ))
                }
            }
        }
        _ => return Err(unknown(&words)),
    };
    Ok(Some(cmd))
}

/// The error for words that start no command: the nearest commands' usage.
fn unknown(words: &[&str]) -> ParseError {
    let typed = words.join(" ");
    let near = nearest(words);
    let message = match near.first() {
        Some(n) => format!("unknown command {typed:?}; did you mean {:?}?", n.name),
        None => format!("unknown command {typed:?}; type help for the commands"),
    };
    ParseError { message, usage: near.iter().map(|s| s.usage()).collect() }
}

/// The commands nearest to what was typed (by edit distance over as many words as each
/// command's name has), nearest first; none when nothing is close.
pub fn nearest(words: &[&str]) -> Vec<&'static Spec> {
    let mut scored: Vec<(usize, &'static Spec)> = COMMANDS
        .iter()
        .filter_map(|s| {
            let n = s.name.split(' ').count();
            let typed = words.iter().take(n).copied().collect::<Vec<_>>().join(" ");
            let d = distance(&typed, s.name);
            // Close means: a typo or two, or a third of the name.
            (d <= 2.max(s.name.len() / 3)).then_some((d, s))
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    let best = scored.first().map(|(d, _)| *d);
    scored.into_iter().filter(|(d, _)| Some(*d) == best).map(|(_, s)| s).collect()
}

/// The Levenshtein distance between two strings, by characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (up + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = up;
        }
    }
    row[b.len()]
}

/// The names a running controller knows, for completing arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// Bridges: `hypervisor/bridge`, a bridge name one hypervisor alone has, dpids.
    pub bridges: Vec<String>,
    /// Interfaces: iface-ids, VM uuids, interface names.
    pub interfaces: Vec<String>,
    /// Tap flows' names.
    pub taps: Vec<String>,
    /// Tenants.
    pub tenants: Vec<String>,
}

impl Names {
    /// The names a first argument of this kind can take.
    fn of(&self, arg: Arg) -> Vec<&str> {
        match arg {
            Arg::Free => Vec::new(),
            Arg::Bridge => self.bridges.iter().map(String::as_str).collect(),
            Arg::Interface => self.interfaces.iter().map(String::as_str).collect(),
            Arg::Tap => self.taps.iter().map(String::as_str).collect(),
            Arg::Tenant => self.tenants.iter().map(String::as_str).collect(),
            Arg::Level => LEVELS.to_vec(),
            Arg::Command => COMMANDS.iter().filter_map(|s| s.name.split(' ').next()).collect(),
        }
    }
}

/// The words that could follow `line` (for completion): command words, then the command's
/// first argument from `names`, then `--ours` and `--follow`.
pub fn completions(line: &str, names: &Names) -> Vec<String> {
    let ends_blank = line.ends_with(char::is_whitespace) || line.is_empty();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (done, partial) = if ends_blank {
        (&words[..], "")
    } else {
        (&words[..words.len() - 1], words[words.len() - 1])
    };
    let mut out: Vec<String> = Vec::new();
    let mut specs: Vec<(&str, Arg)> = COMMANDS.iter().map(|s| (s.name, s.arg)).collect();
    specs.push(("exit", Arg::Free));
    for (name, arg) in specs {
        let cw: Vec<&str> = name.split(' ').collect();
        if cw.len() > done.len() && cw[..done.len()] == *done && cw[done.len()].starts_with(partial)
        {
            out.push(cw[done.len()].to_string());
        } else if cw.len() == done.len() && cw == done {
            out.extend(
                names.of(arg).into_iter().filter(|n| n.starts_with(partial)).map(String::from),
            );
        }
    }
    if done.first() == Some(&"dump-flows") && "--ours".starts_with(partial) && done.len() >= 2 {
        out.push("--ours".into());
    }
    if done == ["events"] && "--follow".starts_with(partial) {
        out.push("--follow".into());
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}")).expect("a command")
    }

    fn err(line: &str) -> ParseError {
        parse(line).expect_err(line)
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(ok("show switches"), Command::ShowSwitches);
        assert_eq!(ok("  show   topology "), Command::ShowTopology);
        assert_eq!(ok("show taps"), Command::ShowTaps { tenant: None });
        assert_eq!(ok("show taps bank-a"), Command::ShowTaps { tenant: Some("bank-a".into()) });
        assert_eq!(ok("show tap \"vm1 both\""), Command::ShowTap { name: "vm1 both".into() });
        assert_eq!(ok("where 5c0ffee"), Command::Where { what: "5c0ffee".into() });
        assert_eq!(ok("stats"), Command::Stats);
        assert_eq!(
            ok("dump-flows br-int --ours"),
            Command::DumpFlows { bridge: "br-int".into(), ours: true }
        );
        assert_eq!(
            ok("dump-flows --ours hv1/br-int"),
            Command::DumpFlows { bridge: "hv1/br-int".into(), ours: true }
        );
        assert_eq!(ok("help where"), Command::Help(Some("where".into())));
        assert_eq!(ok("diff br-int"), Command::Diff { bridge: "br-int".into() });
        assert!(err("diff").message.contains("needs a <bridge>"));
        assert_eq!(
            ok("trace hv1/br-int in_port=3 dl_dst=02:00:00:00:00:01"),
            Command::Trace {
                bridge: "hv1/br-int".into(),
                packet: "in_port=3,dl_dst=02:00:00:00:00:01".into()
            }
        );
        assert!(err("trace br-int").message.contains("packet's fields"));
        assert_eq!(ok("events -f"), Command::Events { follow: true });
        assert_eq!(ok("log level debug"), Command::LogLevel { set: Some("debug".into()) });
        assert_eq!(
            err("log levl").usage,
            vec!["log level [error|warn|info|debug|trace]".to_string()]
        );
        assert!(err("events --tail").message.contains("only --follow"));
        assert_eq!(ok("exit"), Command::Quit);
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(parse("# a comment"), Ok(None));
    }

    #[test]
    fn every_command_in_the_table_parses_as_its_usage_shows() {
        for s in COMMANDS {
            let line = s
                .usage()
                .replace("[tenant]", "bank-a")
                .replace("[command]", "stats")
                .replace("<name>", "t")
                .replace("<iface-id|vm-uuid|interface>", "i")
                .replace("<bridge|dpid>", "br-int")
                .replace("[bridge|dpid]", "br-int")
                .replace("<fields>", "in_port=1")
                .replace("[--follow]", "--follow")
                .replace("[error|warn|info|debug|trace]", "debug")
                .replace("[--ours]", "--ours");
            assert!(matches!(parse(&line), Ok(Some(_))), "{line}");
        }
    }

    #[test]
    fn typos_get_the_nearest_commands_usage() {
        let e = err("shwo switches");
        assert!(e.message.contains("did you mean \"show switches\""), "{e}");
        assert_eq!(e.usage, vec!["show switches".to_string()]);
        let e = err("show switchs");
        assert_eq!(e.usage, vec!["show switches".to_string()]);
        let e = err("dumpflows br-int");
        assert_eq!(e.usage, vec!["dump-flows <bridge|dpid> [--ours]".to_string()]);
        let e = err("wher 1234");
        assert_eq!(e.usage, vec!["where <iface-id|vm-uuid|interface>".to_string()]);
        let e = err("frobnicate");
        assert!(e.usage.is_empty() && e.message.contains("type help"), "{e}");
        // `show` alone lists what can be shown.
        let e = err("show");
        assert!(e.usage.len() >= 4 && e.usage.iter().all(|u| u.starts_with("show ")), "{e}");
    }

    #[test]
    fn missing_or_extra_arguments_name_what_is_wrong() {
        let e = err("where");
        assert!(e.message.contains("needs an <iface-id>"), "{e}");
        assert_eq!(e.usage, vec!["where <iface-id|vm-uuid|interface>".to_string()]);
        let e = err("where a b");
        assert!(e.message.contains("\"b\""), "{e}");
        let e = err("stats now");
        assert!(e.message.contains("no argument \"now\""), "{e}");
        let e = err("dump-flows br-int --all");
        assert!(e.message.contains("\"--all\"") && e.message.contains("--ours"), "{e}");
        assert!(err("dump-flows").message.contains("needs a <bridge>"));
        assert!(err("show tap").message.contains("<name>"));
        assert!(err("show tap \"open").message.contains("not closed"));
        assert_eq!(err("where x\\").usage, Vec::<String>::new());
    }

    proptest::proptest! {
        /// Any line is a command, nothing, or an error with a message; never a panic.
        #[test]
        fn any_line_parses_or_is_refused_with_a_message(line in "\\PC{0,60}") {
            if let Err(e) = parse(&line) {
                proptest::prop_assert!(!e.message.is_empty());
            }
            let _ = completions(&line, &Names::default());
        }

        /// Lines made of the commands' own words, in any order.
        #[test]
        fn command_words_in_any_order(words in proptest::collection::vec(
            proptest::sample::select(vec!["show", "switches", "taps", "tap", "where", "dump-flows",
                "--ours", "diff", "trace", "events", "--follow", "log", "level", "help", "x", "\""]),
            0..6,
        )) {
            let line = words.join(" ");
            if let Err(e) = parse(&line) {
                proptest::prop_assert!(!e.message.is_empty(), "{}", line);
            }
        }
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("show", "shwo"), 2);
        assert_eq!(distance("stats", "stat"), 1);
        assert_eq!(distance("é", "e"), 1);
    }

    #[test]
    fn completion_offers_the_next_word() {
        let none = Names::default();
        let completions = |line| completions(line, &none);
        assert_eq!(completions("sh"), vec!["show"]);
        assert_eq!(completions("show "), vec!["ports", "switches", "tap", "taps", "topology"]);
        assert_eq!(completions("show t"), vec!["tap", "taps", "topology"]);
        assert_eq!(completions("show sw"), vec!["switches"]);
        assert_eq!(completions("dump-flows br-int --o"), vec!["--ours"]);
        assert_eq!(completions("e"), vec!["events", "exit"]);
        assert_eq!(completions("events --f"), vec!["--follow"]);
        assert!(completions("stats ").is_empty());
        assert!(completions("").contains(&"where".to_string()));
        assert_eq!(completions("log level d"), vec!["debug"]);
        assert_eq!(completions("help sh"), vec!["show"]);
    }

    #[test]
    fn completion_offers_the_controllers_names_for_the_first_argument() {
        let names = Names {
            bridges: vec!["hv1/br-int".into(), "hv2/br-int".into(), "0e1a000000000101".into()],
            interfaces: vec!["vm1-port".into(), "vm2-port".into(), "4f1c-uuid".into()],
            taps: vec!["web-in".into(), "web-out".into()],
            tenants: vec!["bank-a".into()],
        };
        let c = |line| completions(line, &names);
        assert_eq!(c("diff hv"), vec!["hv1/br-int", "hv2/br-int"]);
        assert_eq!(c("dump-flows 0e"), vec!["0e1a000000000101"]);
        assert_eq!(c("trace hv2"), vec!["hv2/br-int"]);
        assert_eq!(c("show ports h"), vec!["hv1/br-int", "hv2/br-int"]);
        assert_eq!(c("where vm"), vec!["vm1-port", "vm2-port"]);
        assert_eq!(c("show tap web-o"), vec!["web-out"]);
        assert_eq!(c("show taps "), vec!["bank-a"]);
        // Only the first argument is a name; a second one is not completed from them.
        assert!(c("trace hv1/br-int hv").is_empty());
        assert!(c("show switches h").is_empty());
    }
}
