//! A controller and an OVSDB client in the test's own namespace reach a hypervisor over TCP
//! (through the lab's relays), and over unix sockets directly.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use periscope::lab::{ControllerTarget, HypervisorOptions, Lab};

/// Accepts one connection within 15 s and returns the first 8 bytes (an OpenFlow header).
fn first_header(accept: impl Fn() -> Option<Box<dyn Read>>) -> [u8; 8] {
    let start = Instant::now();
    loop {
        if let Some(mut s) = accept() {
            let mut header = [0u8; 8];
            s.read_exact(&mut header).expect("read hello");
            return header;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no connection from ovs-vswitchd");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn vswitchd_connects_to_a_tcp_controller_in_our_namespace() {
    let lab = Lab::new().expect("lab");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let options = HypervisorOptions::secure().controller(ControllerTarget::HostTcp(port));
    let _hv = lab.add_hypervisor("hv1", options).expect("hypervisor");
    let header = first_header(|| {
        let (s, _) = listener.accept().ok()?;
        s.set_nonblocking(false).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(Box::new(s))
    });
    assert_eq!((header[0], header[1]), (0x04, 0), "an OpenFlow 1.3 HELLO");
}

#[test]
fn vswitchd_connects_to_a_unix_controller_and_ovsdb_answers_over_tcp() {
    let lab = Lab::new().expect("lab");
    // Outside the hypervisor's run directory, where ovs-vswitchd would not connect by itself.
    let path = lab.dir().join("of.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let options = HypervisorOptions::secure().controller(ControllerTarget::Unix(path));
    let hv = lab.add_hypervisor("hv1", options).expect("hypervisor");
    let header = first_header(|| {
        let (s, _) = listener.accept().ok()?;
        s.set_nonblocking(false).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(Box::new(s))
    });
    assert_eq!((header[0], header[1]), (0x04, 0), "an OpenFlow 1.3 HELLO");

    let addr = hv.add_db_tcp_remote().expect("tcp remote");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(br#"{"method":"list_dbs","params":[],"id":1}"#).expect("send");
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    while !reply.ends_with(b"}") {
        let n = s.read(&mut buf).expect("reply");
        assert!(n > 0, "ovsdb-server closed the connection");
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("\"Open_vSwitch\""), "list_dbs reply: {reply}");
}
