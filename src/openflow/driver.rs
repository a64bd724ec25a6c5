//! The tokio driver of one OpenFlow connection: it owns the socket and the timer, and only
//! moves bytes and events between them and the sans-IO [`Session`].

use std::time::Instant;

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
    let mut framed = Framed::new(stream, OfpCodec);
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
            _ = sleep_until(deadline) => session.handle_timeout(Instant::now()),
        }
    }
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
    use periscope_codec::openflow::OfpMessage;

    use super::*;
    use crate::bench::switch::{EmulatedSwitch, Milestone};
    use crate::openflow::framing::Frame;

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
        let wait = tokio::time::timeout(std::time::Duration::from_secs(10), async {
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
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), driver).await;
    }
}
