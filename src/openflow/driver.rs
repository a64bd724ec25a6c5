//! The tokio driver of one OpenFlow connection: it owns the socket and the timer, and only
//! moves bytes and events between them and the sans-IO [`Session`].

use std::time::Instant;

use bytes::BytesMut;
use futures::{FutureExt, SinkExt, StreamExt};
use slog::{debug, o, warn, Logger};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

use periscope_codec::openflow::Message;

use super::framing::{FramingError, OfpCodec};
use super::learning::{App, LearningSwitch};
use super::session::{SendError, Session, SessionConfig, SessionEvent};

/// Identifies one accepted OpenFlow connection for the lifetime of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What the controller asks a connection's driver to do.
#[derive(Debug)]
pub enum SwitchCommand {
    /// Send requests in order; each one's `tag` and `label` come back with its outcome.
    Send(Vec<Request>),
    /// Close the connection.
    Close,
}

/// One request for the switch.
#[derive(Debug)]
pub struct Request {
    /// The message.
    pub msg: Message,
    /// The caller's tag.
    pub tag: u64,
    /// The caller's description, for logs.
    pub label: String,
}

/// What a driver tells the controller.
#[derive(Debug)]
pub enum SwitchEvent {
    /// A connection was accepted; commands for it go to `commands`.
    Accepted {
        /// The peer's address.
        peer: String,
        /// Where to send commands for this connection.
        commands: mpsc::Sender<SwitchCommand>,
    },
    /// The session reported something.
    Session(SessionEvent),
    /// A request could not be queued.
    Refused {
        /// The caller's tag.
        tag: u64,
        /// Why.
        error: SendError,
    },
}

/// Capacity of a connection's command queue: a slow switch fills its own queue, not others'.
pub const COMMAND_QUEUE: usize = 256;

/// Frames read and handled at most before the answers are written out: the batch that one
/// write system call carries when the switch keeps the pipe full.
const READ_BATCH: usize = 256;

/// Tag of the requests the driver's app sends (its barriers' confirmations stay here).
pub const TAG_APP: u64 = u64::MAX - 3;

/// Capacity of each of a connection's buffers (read and write) while the switch is quiet: its
/// echo, a port status or a handshake reply fit; a longer message grows the buffer to its size.
/// Ten thousand idle switches then hold a few hundred bytes each rather than tokio-util's
/// 8 KiB per direction.
const QUIET_BUFFER: usize = 256;
/// Capacity of the read buffer once the switch sends several messages at a time, so that one
/// read system call carries a batch; also the size at which queued writes are flushed.
const BUSY_BUFFER: usize = 8 * 1024;

/// Runs one connection until it closes. Events go to `events`, tagged with `conn`; with an
/// `app`, the packet-ins that are for it are answered here, in the connection's own task.
pub async fn drive<S>(
    stream: S,
    conn: ConnId,
    peer: String,
    mut cfg: SessionConfig,
    app: Option<App>,
    events: mpsc::Sender<(ConnId, SwitchEvent)>,
    log: Logger,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let log = log.new(o!("conn" => conn.0, "peer" => peer.clone()));
    let (cmd_tx, mut commands) = mpsc::channel(COMMAND_QUEUE);
    if events.send((conn, SwitchEvent::Accepted { peer, commands: cmd_tx })).await.is_err() {
        return;
    }
    let mut framed = Framed::with_capacity(stream, OfpCodec, QUIET_BUFFER);
    framed.set_backpressure_boundary(BUSY_BUFFER);
    let mut busy = false;
    let mut learning = app.map(|App::LearningSwitch| LearningSwitch::new());
    if learning.is_some() {
        cfg.app_packet_ins = Some(LearningSwitch::wants);
    }
    let mut session = Session::new(Instant::now(), cfg);
    loop {
        let mut closed = false;
        let mut app_sent = false;
        // One clock reading for the whole batch of answers.
        let now = Instant::now();
        while let Some(ev) = session.poll_event() {
            let ev = match (ev, learning.as_mut()) {
                (SessionEvent::PacketIn(pin), Some(sw)) if LearningSwitch::wants(&pin) => {
                    sw.handle_packet_in(&pin, |msg| {
                        match session.send_ref(now, msg, TAG_APP, String::new()) {
                            Ok(_) => app_sent = true,
                            Err(e) => debug!(log, "learning switch answer not sent"; "error" => %e),
                        }
                    });
                    continue;
                }
                (SessionEvent::Confirmed { barrier, .. }, _) if barrier.tag == TAG_APP => continue,
                (SessionEvent::RequestFailed { request: Some(r), error, .. }, _)
                    if r.tag == TAG_APP =>
                {
                    warn!(log, "switch refused a learning switch request";
                        "error" => format!("{:?} code {}", error.err_type, error.code));
                    continue;
                }
                (ev, _) => ev,
            };
            closed |= matches!(ev, SessionEvent::Closed(_));
            if events.send((conn, SwitchEvent::Session(ev))).await.is_err() {
                return;
            }
        }
        // One barrier confirms the whole batch of answers (and keeps the session's record of
        // outstanding requests short).
        if app_sent {
            if let Err(e) = session.barrier(now, TAG_APP) {
                debug!(log, "learning switch barrier not sent"; "error" => %e);
            }
        }
        // A switch that stops reading must not hold its driver here forever, deaf to its
        // timers and commands: the write gets as long as a silent peer gets to answer an echo.
        let limit = session.write_limit();
        let written =
            match tokio::time::timeout(limit, write_pending(&mut framed, &mut session)).await {
                Ok(Ok(())) => true,
                Ok(Err(e)) => {
                    session.handle_close(format!("write failed: {e}"));
                    false
                }
                Err(_) => {
                    session.handle_write_stalled(limit);
                    false
                }
            };
        if closed {
            // Best effort: anything queued before closing (HELLO_FAILED) is flushed above.
            debug!(log, "connection closed");
            return;
        }
        if !written {
            // The Closed event goes out at the top of the loop.
            continue;
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            frame = framed.next() => {
                let mut frame = frame;
                let now = Instant::now();
                // What else has already arrived is handled with it, and answered in one write.
                for handled in 1..=READ_BATCH {
                    if handled == 2 && !busy {
                        // More than one message at a time: the switch is busy, read in batches.
                        framed.read_buffer_mut().reserve(BUSY_BUFFER);
                        busy = true;
                    }
                    match frame {
                        Some(Ok(f)) => session.handle_frame(now, f),
                        Some(Err(FramingError::BadFrame(e))) => {
                            session.handle_bad_frame(framed.read_buffer(), &e);
                            break;
                        }
                        Some(Err(e)) => {
                            session.handle_close(e.to_string());
                            break;
                        }
                        None => {
                            session.handle_close("connection closed by the switch");
                            break;
                        }
                    }
                    if handled == READ_BATCH {
                        // The next frame stays in the buffer for the next turn.
                        break;
                    }
                    match framed.next().now_or_never() {
                        Some(f) => frame = f,
                        None => break,
                    }
                }
            }
            cmd = commands.recv() => match cmd {
                Some(SwitchCommand::Send(requests)) => {
                    let now = Instant::now();
                    for Request { msg, tag, label } in requests {
                        if let Err(error) = session.send(now, msg, tag, label) {
                            if events.send((conn, SwitchEvent::Refused { tag, error })).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(SwitchCommand::Close) | None => session.handle_close("closed by the controller"),
            },
            _ = sleep_until(deadline) => {
                session.handle_timeout(Instant::now());
                // The timer fires only after a silence (an echo interval without a message, or
                // a deadline): give back what a busy spell grew.
                release_buffers(&mut framed);
                busy = false;
            }
        }
    }
}

/// Replaces the empty buffers of a quiet connection with small ones (a buffer holding part of
/// a message or unsent bytes is kept).
fn release_buffers<S>(framed: &mut Framed<S, OfpCodec>) {
    let shrink = |buf: &mut BytesMut| {
        if buf.is_empty() {
            *buf = BytesMut::with_capacity(QUIET_BUFFER);
        }
    };
    shrink(framed.read_buffer_mut());
    shrink(framed.write_buffer_mut());
}

/// Writes and flushes everything the session has queued: its bytes go straight into the
/// write buffer, and out in as few writes as the socket takes.
async fn write_pending<S>(
    framed: &mut Framed<S, OfpCodec>,
    session: &mut Session,
) -> Result<(), FramingError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if session.poll_transmit(framed.write_buffer_mut()) {
        framed.flush().await?;
    }
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{SinkExt, StreamExt};
    use periscope_codec::openflow::{MultipartRequest, MultipartRequestBody, OfpMessage};

    use super::*;
    use crate::bench::switch::{EmulatedSwitch, Milestone};
    use crate::openflow::framing::Frame;
    use crate::openflow::session::Outstanding;

    const TAG_PORTS: u64 = 7;

    /// A switch whose PORT_DESC reply (16 + 100 * 64 bytes) is far longer than a quiet buffer,
    /// asked for it again after its connection was quiet twice (its buffers given back).
    #[tokio::test]
    async fn a_quiet_connection_still_reads_messages_longer_than_its_buffers() {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (tx, mut events) = mpsc::channel(64);
        let cfg =
            SessionConfig { echo_interval: Duration::from_millis(100), ..SessionConfig::default() };
        let log = Logger::root(slog::Discard, o!());
        tokio::spawn(drive(ours, ConnId(1), "test".into(), cfg, None, tx, log));
        let mut sw = EmulatedSwitch::new(0xbe, 100);
        let mut wire = Framed::new(theirs, OfpCodec);
        wire.send(sw.hello()).await.expect("HELLO");
        let (mut out, mut milestones) = (Vec::new(), Vec::new());
        let (mut commands, mut ready_ports, mut asked) = (None, None, false);
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                tokio::select! {
                    frame = wire.next() => {
                        let Some(Ok(Frame::Message(m))) = frame else {
                            panic!("the controller's side broke: {frame:?}");
                        };
                        sw.handle(m, &mut out, &mut milestones);
                        for m in out.drain(..) {
                            wire.send(m).await.expect("answer");
                        }
                    }
                    ev = events.recv() => match ev.map(|(_, e)| e) {
                        Some(SwitchEvent::Accepted { commands: c, .. }) => commands = Some(c),
                        Some(SwitchEvent::Session(SessionEvent::Ready { ports, .. })) => {
                            ready_ports = Some(ports.len());
                        }
                        Some(SwitchEvent::Session(SessionEvent::Reply { request, replies }))
                            if request.tag == TAG_PORTS =>
                        {
                            return (request, replies);
                        }
                        Some(SwitchEvent::Session(SessionEvent::Closed(why))) => {
                            panic!("closed: {why}")
                        }
                        Some(_) => {}
                        None => panic!("the driver stopped"),
                    },
                }
                if sw.counts().echo_requests >= 2 && !asked {
                    asked = true;
                    let ask = Request {
                        msg: Message::MultipartRequest(MultipartRequest {
                            flags: 0,
                            body: MultipartRequestBody::PortDesc,
                        }),
                        tag: TAG_PORTS,
                        label: "ports again".into(),
                    };
                    let c = commands.as_ref().expect("accepted before any echo");
                    c.send(SwitchCommand::Send(vec![ask])).await.expect("command");
                }
            }
        })
        .await;
        let (request, replies): (Outstanding, Vec<Message>) = outcome.expect("no reply in 10 s");
        assert_eq!(ready_ports, Some(100));
        assert_eq!(request.label, "ports again");
        let ports: usize = replies
            .iter()
            .map(|m| match m {
                Message::MultipartReply(r) => match &r.body {
                    periscope_codec::openflow::MultipartReplyBody::PortDesc(p) => p.len(),
                    _ => 0,
                },
                _ => 0,
            })
            .sum();
        assert_eq!(ports, 100);
    }

    /// A regression test: the frame after a full read batch was taken from the stream and
    /// dropped, so every 257th message of a busy switch was lost (a packet-in unanswered, and
    /// as well a barrier reply or an error).
    #[tokio::test]
    async fn no_frame_is_lost_past_a_full_read_batch() {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (tx, _rx) = mpsc::channel(COMMAND_QUEUE);
        let log = Logger::root(slog::Discard, o!());
        let cfg = SessionConfig::default();
        let driver = tokio::spawn(drive(ours, ConnId(1), "test".into(), cfg, None, tx, log));
        let mut sw = EmulatedSwitch::new(1, 2);
        let mut framed = Framed::new(theirs, OfpCodec);
        // The HELLO and three full batches of echo requests and one more, in one write.
        let echoes = 3 * READ_BATCH as u32;
        let mut out: Vec<OfpMessage> = vec![sw.hello()];
        out.extend((0..echoes).map(EmulatedSwitch::echo_request));
        for m in out.drain(..) {
            framed.feed(m).await.expect("written");
        }
        framed.flush().await.expect("written");
        let mut answered = 0;
        let mut milestones = Vec::new();
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            while answered < echoes {
                let Some(Ok(Frame::Message(m))) = framed.next().await else { break };
                sw.handle(m, &mut out, &mut milestones);
                answered +=
                    milestones.drain(..).filter(|m| matches!(m, Milestone::EchoReply(_))).count()
                        as u32;
                for m in out.drain(..) {
                    framed.feed(m).await.expect("written");
                }
                framed.flush().await.expect("written");
            }
        });
        let _ = wait.await;
        assert_eq!(answered, echoes, "echo requests answered");
        drop(framed);
        let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
    }
}
