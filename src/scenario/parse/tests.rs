//! Tests of scenario parsing: the shipped files, a complete good file, and one bad value per
//! rule, each checked for the file, the place, the field and the value in its message.

use super::*;

const GOOD: &str = r#"
description = "good"
settle_s = 0.5

[[hypervisor]]
name = "hv1"

[[hypervisor]]
name = "hv2"
controller = "tcp"

[[vm]]
name = "vm1"
hypervisor = "hv1"
tenant = "t1"
ip = "198.51.100.10/24"
mac = "02:51:00:00:01:01"
external_ids = { app = "web" }

[[vm]]
name = "vm2"
hypervisor = "hv2"
tenant = "t1"
ip = "198.51.100.11"
mtu = 1400

[[vm]]
name = "vm3"
hypervisor = "hv2"
tenant = "t1"
create = false

[[collector]]
name = "col1"

[[tap_service]]
name = "svc"
tenant = "t1"
encap = "gre"
collector = "col1"
key = 7
snaplen = 128

[[tap_flow]]
name = "web"
tenant = "t1"
service = "svc"
source = { selector = { app = "web" } }
direction = "OUT"
filter = { ip_proto = 1 }

[[tap_flow]]
name = "vm2"
tenant = "t1"
service = "svc"
source = { iface_id = "vm2" }
direction = "BOTH"
create = false

[[step]]
at = 0
action = "start_ping"
from = "vm1"
to = "vm2"

[[step]]
at = 0
action = "create_tap_flow"
tap_flow = "vm2"

[[step]]
at = 1.5
action = "migrate"
vm = "vm1"
to = "hv2"

[[step]]
action = "create_vm"
vm = "vm3"
on = "hv1"

[[step]]
action = "restart_vswitchd"
hypervisor = "hv1"

[[step]]
action = "wait"
seconds = 1

[[step]]
action = "stop_traffic"
ping = "ping1"

[[step]]
action = "delete_vm"
vm = "vm3"

[[expect]]
kind = "copies"
collector = "col1"
service = "svc"
ping = "ping1"
vm = "vm1"
direction = "OUT"
max_loss = 1

[[expect]]
kind = "gap"
collector = "col1"
service = "svc"
ping = "ping1"

[[expect]]
kind = "no_leftover_flows"
hypervisor = "hv1"
within_s = 2
"#;

fn field_error(text: &str) -> (String, String, String, String) {
    match parse("t.toml", text) {
        Err(ScenarioError::Field { file, place, field, value, expected }) => {
            assert_eq!(file, "t.toml");
            (place, field, value, expected)
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_complete_file_parses_into_what_it_says() {
    let s = parse("t.toml", GOOD).expect("parses");
    assert_eq!(s.settle_s, 0.5);
    assert_eq!(s.hypervisors[1].controller, Transport::Tcp);
    assert_eq!(s.vms[0].ip, Some((Ipv4Addr::new(198, 51, 100, 10), 24)));
    assert_eq!(s.vms[1].ip, Some((Ipv4Addr::new(198, 51, 100, 11), 24)));
    assert_eq!(s.vms[1].mtu, Some(1400));
    assert!(!s.vms[2].create);
    assert_eq!(s.vms[0].external_ids.get("app").map(String::as_str), Some("web"));
    assert_eq!(s.tap_services[0].encap, Encap::Gre);
    assert_eq!(s.tap_services[0].key, Some(7));
    assert_eq!(s.tap_flows[0].filter, Some(serde_json::json!({"ip_proto": 1})));
    assert_eq!(s.tap_flows[1].source, TapSource::IfaceId("vm2".into()));
    assert_eq!(s.steps.len(), 8);
    assert_eq!(s.steps[0].at, Some(0.0));
    assert_eq!(s.steps[3].at, None);
    match &s.steps[0].action {
        Action::StartPing(p) => {
            assert_eq!((p.name.as_str(), p.interval_ms, p.count), ("ping1", 100, 50));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.steps[3].action, Action::CreateVm { vm: "vm3".into(), on: Some("hv1".into()) });
    assert!(matches!(s.expects[0], Expect::Copies { direction: Direction::Out, max_loss: 1, .. }));
    assert!(matches!(s.expects[1], Expect::Gap { tolerance_ms: 100, .. }));
    assert!(matches!(s.expects[2], Expect::NoLeftoverFlows { within_s, .. } if within_s == 2.0));
}

#[test]
fn every_shipped_scenario_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.description.is_empty(), "{}", path.display());
            assert!(!s.expects.is_empty(), "{} asserts nothing", path.display());
            n += 1;
        }
    }
    assert!(n >= 7, "only {n} scenarios");
}

#[test]
fn a_typo_in_a_vm_name_of_a_step_is_named_with_file_section_line_and_value() {
    let text = GOOD.replace("vm = \"vm1\"\nto = \"hv2\"", "vm = \"vm9\"\nto = \"hv2\"");
    let (place, field, value, expected) = field_error(&text);
    assert!(place.starts_with("[[step]] #3 (line "), "{place}");
    assert_eq!((field.as_str(), value.as_str()), ("vm", "\"vm9\""));
    assert!(expected.contains("vm1, vm2, vm3"), "{expected}");
    let msg = parse("t.toml", &text).expect_err("bad").to_string();
    assert!(msg.starts_with("t.toml: [[step]] #3 (line "), "{msg}");
}

#[test]
fn the_line_of_the_section_is_right() {
    let text = GOOD.replace("vm = \"vm1\"\nto = \"hv2\"", "vm = \"vm9\"\nto = \"hv2\"");
    let (place, ..) = field_error(&text);
    let line: usize = place
        .split("(line ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("a line number");
    let nth_step_header =
        text.lines().enumerate().filter(|(_, l)| l.trim() == "[[step]]").nth(2).map(|(i, _)| i + 1);
    assert_eq!(Some(line), nth_step_header);
}

/// (what to replace in GOOD, by what, the field the error must name).
const BAD: &[(&str, &str, &str)] = &[
    ("description = \"good\"", "", "description"),
    ("description = \"good\"", "description = \"good\"\ncolour = 1", "colour"),
    ("settle_s = 0.5", "settle_s = -1", "settle_s"),
    ("name = \"hv1\"", "name = \"HV1\"", "name"),
    ("name = \"hv1\"", "name = \"hypervisor1\"", "name"),
    ("controller = \"tcp\"", "controller = \"quic\"", "controller"),
    ("hypervisor = \"hv1\"\ntenant", "hypervisor = \"hv7\"\ntenant", "hypervisor"),
    ("mac = \"02:51:00:00:01:01\"", "mac = \"03:51:00:00:01:01\"", "mac"),
    ("ip = \"198.51.100.10/24\"", "ip = \"198.51.100.300\"", "ip"),
    ("ip = \"198.51.100.11\"", "ip = \"198.51.100.10\"", "ip"),
    ("mtu = 1400", "mtu = 100000", "mtu"),
    (
        "external_ids = { app = \"web\" }",
        "external_ids = { \"tenant-id\" = \"x\" }",
        "external_ids.tenant-id",
    ),
    ("encap = \"gre\"", "encap = \"geneve\"", "encap"),
    ("collector = \"col1\"", "collector = \"col2\"", "collector"),
    ("key = 7", "key = 0", "key"),
    ("snaplen = 128", "snaplen = 10", "snaplen"),
    ("service = \"svc\"\nsource = { sel", "service = \"svx\"\nsource = { sel", "service"),
    ("source = { iface_id = \"vm2\" }", "source = { iface_id = \"vm5\" }", "source.iface_id"),
    ("source = { iface_id = \"vm2\" }", "source = { port = \"vm2\" }", "source"),
    ("direction = \"OUT\"", "direction = \"out\"", "direction"),
    ("filter = { ip_proto = 1 }", "filter = 1", "filter"),
    ("action = \"migrate\"", "action = \"teleport\"", "action"),
    // One controller: no leader to kill.
    ("action = \"migrate\"", "action = \"kill_leader\"", "action"),
    ("settle_s = 0.5", "settle_s = 0.5\ncontrollers = 9", "controllers"),
    ("at = 1.5", "at = -1.5", "at"),
    ("at = 1.5", "at = \"soon\"", "at"),
    ("seconds = 1", "seconds = \"one\"", "seconds"),
    ("ping = \"ping1\"\n\n[[step]]", "ping = \"ping7\"\n\n[[step]]", "ping"),
    ("kind = \"gap\"", "kind = \"gaps\"", "kind"),
    ("within_s = 2", "within_s = 2000", "within_s"),
    ("vm = \"vm1\"\ndirection", "vm = \"vm3\"\ndirection", "vm"),
];

#[test]
fn every_bad_value_is_refused_naming_its_field() {
    for (from, to, field) in BAD {
        assert!(GOOD.contains(from), "GOOD lacks {from:?}");
        let text = GOOD.replacen(from, to, 1);
        let (place, got, value, expected) = field_error(&text);
        assert_eq!(got, *field, "replacing {from:?} by {to:?}: {place}: {value}: {expected}");
        assert!(!expected.is_empty());
    }
}

#[test]
fn timeline_rules_are_checked_on_paper() {
    // Migrating to the hypervisor the VM is already on.
    let t = GOOD.replace("vm = \"vm1\"\nto = \"hv2\"", "vm = \"vm1\"\nto = \"hv1\"");
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "to");
    assert!(expected.contains("other than"), "{expected}");
    // `at` going back in time.
    let t = GOOD.replace(
        "[[step]]\nat = 1.5",
        "[[step]]\nat = 1.5\naction = \"wait\"\nseconds = 1\n\n[[step]]\nat = 1",
    );
    let (_, field, value, _) = field_error(&t);
    assert_eq!((field.as_str(), value.as_str()), ("at", "1"));
    // Pinging from a VM that is not created yet.
    let t = GOOD.replace("from = \"vm1\"\nto = \"vm2\"", "from = \"vm3\"\nto = \"vm2\"");
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "from");
    assert!(expected.contains("create_vm"), "{expected}");
    // Creating a VM twice.
    let t = GOOD
        .replace("action = \"delete_vm\"\nvm = \"vm3\"", "action = \"create_vm\"\nvm = \"vm3\"");
    assert_eq!(field_error(&t).1, "vm");
    // Deleting a tap flow that does not exist.
    let t = GOOD.replace("action = \"create_tap_flow\"", "action = \"delete_tap_flow\"");
    assert_eq!(field_error(&t).1, "tap_flow");
    // Two concurrent steps on one VM.
    let t = GOOD.replace(
        "[[step]]\nat = 0\naction = \"create_tap_flow\"\ntap_flow = \"vm2\"",
        "[[step]]\nat = 0\naction = \"migrate\"\nvm = \"vm1\"\nto = \"hv2\"",
    );
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "at");
    assert!(expected.contains("VM vm1"), "{expected}");
}

#[test]
fn names_are_shared_between_hypervisors_vms_and_collectors() {
    let t = GOOD.replace("[[collector]]\nname = \"col1\"", "[[collector]]\nname = \"vm1\"");
    let (place, field, _, expected) = field_error(&t);
    assert!(place.starts_with("[[vm]] #1"), "{place}");
    assert_eq!(field, "name");
    assert!(expected.contains("collector"), "{expected}");
}

#[test]
fn syntax_errors_carry_the_parser_position() {
    match parse("x.toml", "description = \"a\"\n[[vm]\n") {
        Err(e @ ScenarioError::Syntax { .. }) => {
            let m = e.to_string();
            assert!(m.starts_with("x.toml: not valid TOML:"), "{m}");
            assert!(m.contains("line 2"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load(Path::new("/nonexistent/periscope.toml")),
        Err(ScenarioError::Read { .. })
    ));
}

#[test]
fn a_section_that_is_not_a_table_is_refused() {
    let (place, field, ..) = field_error("description = \"d\"\nhypervisor = [1]\n");
    assert_eq!((place.as_str(), field.as_str()), ("[[hypervisor]] #1", "(section)"));
    let (_, field, ..) = field_error("description = \"d\"\nhypervisor = 1\n");
    assert_eq!(field, "hypervisor");
    let (_, field, ..) = field_error("description = \"d\"\n");
    assert_eq!(field, "hypervisor");
}

/// Every step and expectation for streams, links and reprogramming times.
const STREAMS: &str = r#"
description = "streams"

[[hypervisor]]
name = "hv1"

[[hypervisor]]
name = "hv2"

[[vm]]
name = "vm1"
hypervisor = "hv1"
tenant = "t1"

[[vm]]
name = "vm2"
hypervisor = "hv2"
tenant = "t1"

[[collector]]
name = "col1"

[[tap_service]]
name = "svc"
tenant = "t1"
encap = "vxlan"
collector = "col1"

[[tap_flow]]
name = "vm1"
tenant = "t1"
service = "svc"
source = { vm = "vm1" }
direction = "BOTH"

[[step]]
at = 0
action = "start_udp"
from = "vm2"
to = "vm1"
rate_pps = 250
count = 1000
size = 100

[[step]]
at = 0.1
action = "start_tcp"
name = "bulk"
from = "vm1"
to = "vm2"
count = 50
size = 4000
interval_ms = 0

[[step]]
at = 1
action = "cut_link"
hypervisor = "hv1"
link = "ovsdb"
mode = "blackhole"

[[step]]
at = 2
action = "restore_link"
hypervisor = "hv1"

[[step]]
at = 3
action = "cut_link"
hypervisor = "hv2"

[[step]]
at = 4
action = "restore_link"
hypervisor = "hv2"

[[step]]
at = 5
action = "migrate"
vm = "vm1"
to = "hv2"

[[step]]
action = "stop_traffic"
stream = "udp1"

[[expect]]
kind = "copies"
collector = "col1"
service = "svc"
stream = "udp1"
vm = "vm1"
direction = "IN"

[[expect]]
kind = "copies"
collector = "col1"
service = "svc"
stream = "bulk"
vm = "vm1"
max_loss = 2

[[expect]]
kind = "gap"
collector = "col1"
service = "svc"
stream = "udp1"
tolerance_ms = 50

[[expect]]
kind = "no_copies"
collector = "col1"
stream = "bulk"

[[expect]]
kind = "delivery"
stream = "udp1"
max_loss = 3

[[expect]]
kind = "delivery"
stream = "bulk"

[[expect]]
kind = "reprogram"
vm = "vm1"
max_ms = 100
p99_ms = 50.5

[[expect]]
kind = "reprogram"
stats_p99_ms = 20
"#;

#[test]
fn streams_links_and_reprogramming_parse_into_what_they_say() {
    let s = parse("t.toml", STREAMS).expect("parses");
    let Action::StartStream(udp) = &s.steps[0].action else { panic!("{:?}", s.steps[0]) };
    assert_eq!(
        (udp.name.as_str(), udp.kind, udp.count, udp.size),
        ("udp1", StreamKind::Udp, 1000, 100)
    );
    assert!((udp.interval_ms - 4.0).abs() < 1e-9);
    let Action::StartStream(tcp) = &s.steps[1].action else { panic!("{:?}", s.steps[1]) };
    assert_eq!(
        (tcp.name.as_str(), tcp.kind, tcp.count, tcp.size),
        ("bulk", StreamKind::Tcp, 50, 4000)
    );
    assert_eq!(tcp.interval_ms, 0.0);
    assert_eq!(
        s.steps[2].action,
        Action::CutLink {
            hypervisor: "hv1".into(),
            link: LinkKind::Ovsdb,
            mode: CutMode::Blackhole
        }
    );
    assert_eq!(s.steps[3].action, Action::RestoreLink { hypervisor: "hv1".into() });
    assert_eq!(
        s.steps[4].action,
        Action::CutLink { hypervisor: "hv2".into(), link: LinkKind::Both, mode: CutMode::Reset }
    );
    assert_eq!(s.steps[7].action, Action::StopTraffic { ping: Some("udp1".into()) });
    assert_eq!(s.cut_hypervisors(), vec!["hv1", "hv2"]);
    assert!(matches!(
        &s.expects[0],
        Expect::StreamCopies { direction: Direction::In, max_loss: 0, .. }
    ));
    assert!(
        matches!(&s.expects[1], Expect::StreamCopies { direction: Direction::Both, max_loss: 2, stream, .. } if stream == "bulk")
    );
    assert!(matches!(&s.expects[2], Expect::StreamGap { tolerance_ms: 50, .. }));
    assert!(matches!(&s.expects[3], Expect::NoStreamCopies { .. }));
    assert!(matches!(&s.expects[4], Expect::Delivery { max_loss: 3, .. }));
    assert!(matches!(&s.expects[5], Expect::Delivery { max_loss: 0, .. }));
    assert_eq!(
        s.expects[6],
        Expect::Reprogram {
            vm: Some("vm1".into()),
            max_ms: Some(100.0),
            p99_ms: Some(50.5),
            stats_p99_ms: None
        }
    );
    assert_eq!(
        s.expects[7],
        Expect::Reprogram { vm: None, max_ms: None, p99_ms: None, stats_p99_ms: Some(20.0) }
    );
    assert_eq!(s.expects[0].kind(), "copies");
    assert!(s.steps[4].action.describe().contains("cut_link hv2 both (reset)"));
}

/// (what to replace in STREAMS, by what, the field the error must name).
const BAD_STREAMS: &[(&str, &str, &str)] = &[
    ("rate_pps = 250", "rate_pps = 0", "rate_pps"),
    ("size = 100", "size = 1500", "size"),
    ("size = 4000", "size = 0", "size"),
    ("interval_ms = 0", "interval_ms = -1", "interval_ms"),
    ("name = \"bulk\"", "name = \"udp1\"", "name"),
    ("from = \"vm1\"\nto = \"vm2\"", "from = \"vm2\"\nto = \"vm2\"", "to"),
    ("link = \"ovsdb\"", "link = \"ssh\"", "link"),
    ("mode = \"blackhole\"", "mode = \"unplug\"", "mode"),
    ("hypervisor = \"hv1\"\nlink", "hypervisor = \"hv9\"\nlink", "hypervisor"),
    ("stream = \"udp1\"\n\n[[expect]]", "stream = \"udp9\"\n\n[[expect]]", "stream"),
    (
        "stream = \"udp1\"\nvm = \"vm1\"\ndirection = \"IN\"",
        "stream = \"udp1\"\nvm = \"vm1\"\ndirection = \"OUT\"",
        "direction",
    ),
    ("stream = \"bulk\"\nvm = \"vm1\"", "stream = \"bulk\"\nvm = \"vm3\"", "vm"),
    (
        "kind = \"delivery\"\nstream = \"bulk\"",
        "kind = \"delivery\"\nstream = \"bulk\"\nmax_loss = 1",
        "max_loss",
    ),
    ("max_ms = 100", "max_ms = 0", "max_ms"),
    ("stats_p99_ms = 20", "stats_p99_ms = \"fast\"", "stats_p99_ms"),
    ("kind = \"reprogram\"\nstats_p99_ms = 20", "kind = \"reprogram\"", "max_ms"),
    (
        "kind = \"no_copies\"\ncollector = \"col1\"\nstream = \"bulk\"",
        "kind = \"no_copies\"\ncollector = \"col1\"\nstream = \"bulk\"\nping = \"x\"",
        "stream",
    ),
];

#[test]
fn every_bad_stream_link_or_reprogram_value_is_refused_naming_its_field() {
    for (from, to, field) in BAD_STREAMS {
        assert!(STREAMS.contains(from), "STREAMS lacks {from:?}");
        let text = STREAMS.replacen(from, to, 1);
        let (place, got, value, expected) = field_error(&text);
        assert_eq!(got, *field, "replacing {from:?} by {to:?}: {place}: {value}: {expected}");
        assert!(!expected.is_empty());
    }
}

#[test]
fn link_cuts_are_checked_on_paper() {
    // Cutting a link that is cut already.
    let t = STREAMS.replacen(
        "action = \"restore_link\"\nhypervisor = \"hv1\"",
        "action = \"cut_link\"\nhypervisor = \"hv1\"",
        1,
    );
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "hypervisor");
    assert!(expected.contains("not cut"), "{expected}");
    // Restoring a link never cut.
    let t = STREAMS.replacen(
        "action = \"cut_link\"\nhypervisor = \"hv2\"",
        "action = \"wait\"\nseconds = 1",
        1,
    );
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "hypervisor");
    assert!(expected.contains("cut_link"), "{expected}");
    // Restarting the vswitchd of a hypervisor cut off by OpenFlow (its restart waits for the
    // switch), or the controller while a switch cannot reach it.
    let t = STREAMS.replacen(
        "action = \"restore_link\"\nhypervisor = \"hv2\"",
        "action = \"restart_vswitchd\"\nhypervisor = \"hv2\"",
        1,
    );
    assert_eq!(field_error(&t).1, "hypervisor");
    let t = STREAMS.replacen(
        "action = \"restore_link\"\nhypervisor = \"hv2\"",
        "action = \"restart_controller\"",
        1,
    );
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "action");
    assert!(expected.contains("hv2"), "{expected}");
    // An OVSDB-only cut leaves OpenFlow alone: a vswitchd restart is fine.
    let t = STREAMS.replacen("action = \"restore_link\"\nhypervisor = \"hv1\"", "action = \"restart_vswitchd\"\nhypervisor = \"hv1\"\n\n[[step]]\nat = 2.5\naction = \"restore_link\"\nhypervisor = \"hv1\"", 1);
    parse("t.toml", &t).expect("an OVSDB cut does not stop a vswitchd restart");
    // A stream at the same time as a migration of its receiver.
    let t = STREAMS.replacen("at = 5\naction = \"migrate\"", "at = 4\naction = \"migrate\"", 1);
    let t = t.replacen(
        "at = 4\naction = \"restore_link\"\nhypervisor = \"hv2\"",
        "at = 4\naction = \"start_udp\"\nname = \"u2\"\nfrom = \"vm2\"\nto = \"vm1\"",
        1,
    );
    let (_, field, _, expected) = field_error(&t);
    assert_eq!(field, "at");
    assert!(expected.contains("VM vm"), "{expected}");
}

#[test]
fn several_controllers_and_their_steps_parse() {
    let t = GOOD.replacen("settle_s = 0.5", "settle_s = 0.5\ncontrollers = 3", 1).replacen(
        "action = \"migrate\"\nvm = \"vm1\"\nto = \"hv2\"",
        "action = \"kill_leader\"\n\n[[step]]\naction = \"kill_nb_leader\"\n\n[[step]]\naction = \"migrate\"\nvm = \"vm1\"\nto = \"hv2\"",
        1,
    );
    let s = parse("t.toml", &t).expect("parses");
    assert_eq!(s.controllers, 3);
    let actions: Vec<&str> = s.steps.iter().map(|st| st.action.kind()).collect();
    assert!(actions.contains(&"kill_leader") && actions.contains(&"kill_nb_leader"), "{actions:?}");
    assert_eq!(parse("t.toml", GOOD).expect("parses").controllers, 1);
}
