//! Fake ovsdb-servers that misbehave after the handshake: malformed JSON, an unknown method, a
//! 70 MB message. Each session closes with an error naming the problem, nothing panics, and a
//! healthy hypervisor monitored at the same time is not disturbed.

mod ovsdb_support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ovsdb_support::{Client, ClusteredServer, TempDir};
use periscope::codec::ovsdb::{JsonStream, Message, Request, Response};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// A unix-socket server that runs the handshake, then sends `payload`, for every connection.
struct Fake {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Reads until one request arrives.
fn next_request(s: &mut UnixStream, stream: &mut JsonStream) -> Option<Request> {
    let mut buf = [0u8; 65536];
    loop {
        match stream.next_message() {
            Ok(Some(Message::Request(r))) => return Some(r),
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(_) => return None,
        }
        let n = s.read(&mut buf).ok().filter(|n| *n > 0)?;
        stream.push(&buf[..n]).ok()?;
    }
}

fn send(s: &mut UnixStream, m: Message) -> std::io::Result<()> {
    let mut out = Vec::new();
    m.emit(&mut out);
    s.write_all(&out)
}

fn serve_one(mut s: UnixStream, schema: &Value, payload: &[u8]) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = JsonStream::default();
    let bad = || std::io::Error::other("no request");
    let get_schema = next_request(&mut s, &mut stream).ok_or_else(bad)?;
    send(&mut s, Response::ok(get_schema.id, schema.clone()).into())?;
    let monitor = next_request(&mut s, &mut stream).ok_or_else(bad)?;
    let empty = json!([false, "00000000-0000-0000-0000-000000000000", {}]);
    send(&mut s, Response::ok(monitor.id, empty).into())?;
    s.write_all(payload)?;
    // Until the client hangs up.
    let mut sink = [0u8; 4096];
    while s.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
    Ok(())
}

impl Fake {
    fn start(dir: &TempDir, name: &str, payload: Vec<u8>) -> Fake {
        let path = dir.0.join(format!("{name}.sock"));
        let listener = UnixListener::bind(&path).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let text =
            std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema").expect("schema");
        let schema: Value = serde_json::from_str(&text).expect("schema JSON");
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = serve_one(s, &schema, &payload);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Fake { path, stop, thread: Some(thread) }
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn misbehaving_servers_are_closed_with_clear_errors_and_others_are_unaffected() {
    let dir = TempDir::new("fake");
    let healthy = ClusteredServer::start();
    healthy.vsctl(&["add-br", "br-int"]);

    let mut huge = br#"{"method":"update3","params":["periscope",""#.to_vec();
    huge.resize(huge.len() + (70 << 20), b'x');
    huge.extend_from_slice(br#"",{}]}"#);
    let fakes = [
        Fake::start(
            &dir,
            "malformed",
            br#"{"method":"update3","params":["periscope",,]}"#.to_vec(),
        ),
        Fake::start(&dir, "unknown", br#"{"method":"bogus","params":[],"id":null}"#.to_vec()),
        Fake::start(
            &dir,
            "typed",
            br#"{"method":"update3","params":["periscope",5,{}],"id":null}"#.to_vec(),
        ),
        Fake::start(&dir, "huge", huge),
    ];

    let mut client = Client::new();
    client.add("good", &healthy.remote());
    for (name, f) in ["malformed", "unknown", "typed", "huge"].iter().zip(&fakes) {
        client.add(name, &f.remote());
    }
    let started = Instant::now();
    let expect = [
        ("malformed", "invalid message from ovsdb-server: invalid JSON at stream offset"),
        ("unknown", "ovsdb-server sent an unknown notification method \"bogus\""),
        ("typed", "update3.params[1]: expected a string, found 5"),
        ("huge", "exceeds the maximum of 67108864 bytes"),
    ];
    for (hv, want) in expect {
        let closes = client.wait_for(&format!("{hv} closed"), WAIT, |st| {
            let c = st.closes(hv);
            (!c.is_empty()).then_some(c)
        });
        assert!(closes[0].contains(want), "{hv}: {:?}", closes[0]);
        // The driver reconnects after the error, and the server misbehaves again.
        client.wait_for(&format!("{hv} reconnected"), WAIT, |st| {
            (st.connections(hv) >= 2).then_some(())
        });
    }
    eprintln!("all four closed and reconnected within {:?}", started.elapsed());

    // The healthy hypervisor kept its one connection and still follows changes.
    healthy.vsctl(&[
        "add-port",
        "br-int",
        "tap1",
        "--",
        "set",
        "Interface",
        "tap1",
        "external_ids:iface-id=port-1",
    ]);
    client.wait_for("port-1 on the healthy hypervisor", WAIT, |st| {
        (st.topology.locations("port-1").len() == 1).then_some(())
    });
    let st = client.state();
    assert_eq!(st.connections("good"), 1);
    assert!(st.closes("good").is_empty(), "{:?}", st.closes("good"));
    let hvs: Vec<&str> = st.topology.hypervisors().map(|(h, _)| h.as_str()).collect();
    assert!(hvs.contains(&"good"), "{hvs:?}");
}
