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
    ("controller = \"tcp\"", "controller = \"ssl\"", "controller"),
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
