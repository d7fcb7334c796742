//! The WebSocket gateway: one task per connection, a `select!` over the socket, the
//! connection's outbound queue, a ping timer, the kill switch and server shutdown.
//!
//! The task is the only writer of its socket. It processes client frames one at a
//! time (replies keep request order) and writes queued events in batches. Resume is
//! handled here because it needs to know what this connection has already been sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame as WsFrame, FrameHeader, Utf8Bytes};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::domain::auth::Session;
use crate::domain::messages::SendMessage;
use crate::domain::{Chat, Error};
use crate::hub::{ConnHandle, Frame};
use crate::model::Message;
use crate::wire::{self, ClientFrame, Event};

const PING_EVERY: Duration = Duration::from_secs(25);
/// A connection that has sent nothing (not even a pong) for this long is dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(70);
const MALFORMED_PER_MINUTE: usize = 20;
/// Rate-limited frames tolerated per minute before the connection counts as flooding.
const LIMITED_PER_MINUTE: usize = 300;
/// How long a closing connection waits for the client's close frame.
const LINGER: Duration = Duration::from_millis(1000);
/// Events written per flush at most.
const BATCH: usize = 128;
/// Text frames this large or larger bypass tungstenite's write buffer (see
/// `send_text`).
const DIRECT: usize = 2 * 1024;
/// tungstenite writes its buffer out once it holds more than this, so a batch of
/// small events never grows the buffer far beyond it.
const WRITE_BUFFER: usize = 16 * 1024;

/// A gateway connection: tungstenite over the upgraded HTTP connection.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The WebSocket settings of a gateway connection. The transport reads frames up to
/// 1 MiB so that the gateway can answer an oversized frame (over `max_frame_bytes`)
/// with a clean close 1009: refusing it mid-read would leave the client's bytes
/// unread and the close frame lost to a TCP reset. A 4 KiB read buffer instead of
/// tungstenite's 128 KiB: idle connections are most connections, and chat frames are
/// small (larger ones still arrive whole).
pub fn socket_config(max_frame_bytes: usize) -> WebSocketConfig {
    let max = max_frame_bytes.max(1 << 20);
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

struct Conn {
    chat: Arc<Chat>,
    session: Session,
    handle: ConnHandle,
    /// Per room: the first and last `pos` this connection was sent live.
    live: HashMap<Arc<str>, (i64, i64)>,
    /// Per room: queued events up to this `pos` are covered by a resume reply.
    covered: HashMap<Arc<str>, i64>,
    malformed: VecDeque<Instant>,
    limited: VecDeque<Instant>,
    last_heard: Instant,
}

enum Flow {
    Continue,
    Close(u16, &'static str),
}

fn within_minute(q: &mut VecDeque<Instant>, now: Instant) -> usize {
    while q
        .front()
        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
    {
        q.pop_front();
    }
    q.push_back(now);
    q.len()
}

fn close(code: u16, reason: &'static str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Sends a close frame, then lets the client answer it so the TCP connection ends
/// cleanly and the close frame is not lost to a reset.
async fn close_and_linger(socket: &mut Socket, code: u16, reason: &'static str) {
    if socket.send(close(code, reason)).await.is_ok() {
        let _ = tokio::time::timeout(LINGER, async {
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await;
    }
}

/// A complete, unfragmented text frame around bytes that are known to be UTF-8
/// (serialized JSON), without validating them again per receiver.
fn text_frame(text: Bytes) -> WsFrame {
    WsFrame::message(text, OpCode::Data(Data::Text), true)
}

/// Writes a large text frame straight to the socket, after flushing whatever
/// tungstenite holds (so frames never interleave). tungstenite's write buffer keeps
/// the capacity of the largest frame it ever held, for the life of the connection:
/// with a 30 KB `ready` that was a third of an idle connection's memory.
async fn write_direct(socket: &mut Socket, text: &Bytes) -> Result<(), WsError> {
    socket.flush().await?;
    let mut head = [0u8; 10];
    let mut cursor = std::io::Cursor::new(&mut head[..]);
    FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
    .format(text.len() as u64, &mut cursor)?;
    let n = cursor.position() as usize;
    let mut buf = bytes::Buf::chain(&head[..n], text.clone());
    let io = socket.get_mut();
    io.write_all_buf(&mut buf).await?;
    io.flush().await?;
    Ok(())
}

/// Sends one text message and flushes it.
async fn send_text(socket: &mut Socket, text: Bytes) -> Result<(), WsError> {
    if text.len() >= DIRECT {
        write_direct(socket, &text).await
    } else {
        socket.send(WsMessage::Frame(text_frame(text))).await
    }
}

/// An accepted WebSocket upgrade, waiting for hyper to hand over the connection.
pub struct Upgrade {
    pub on_upgrade: hyper::upgrade::OnUpgrade,
    pub config: WebSocketConfig,
    pub chat: Arc<Chat>,
    pub session: Session,
}

/// Serves one authenticated WebSocket until it closes.
///
/// The task's future is allocated once at the size of its largest state and lives as
/// long as the connection, so it is kept small: the arguments are one box, the
/// socket and the connection state are boxed once, and rare or one-off steps (setup,
/// replies to client frames, closing) are boxed futures of their own.
pub async fn serve(upgrade: Box<Upgrade>) {
    let Some((mut socket, mut conn)) = Box::pin(open(upgrade)).await else {
        return;
    };
    let reason = conn.run(&mut socket).await;
    let user = conn.session.user.id.clone();
    tracing::debug!(%user, conn = conn.handle.id, ?reason, "gateway closed");
    let chat = conn.chat.clone();
    drop(conn);
    chat.disconnected(&user);
}

/// Takes over the upgraded connection, registers it and subscribes it to the user's
/// rooms (before reading anything, so no event committed from now on is missed).
async fn open(upgrade: Box<Upgrade>) -> Option<(Box<Socket>, Box<Conn>)> {
    let Upgrade {
        on_upgrade,
        config,
        chat,
        session,
    } = *upgrade;
    let upgraded = match on_upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            return None;
        }
    };
    let mut socket = Box::new(
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await,
    );
    let user = &session.user;
    let handle = chat.hub.register(&user.id, &session.token_hash);
    match Box::pin(chat.room_ids(&user.id)).await {
        Ok(rooms) => rooms.iter().for_each(|r| chat.hub.subscribe(handle.id, r)),
        Err(e) => {
            tracing::warn!(user = %user.id, error = %e, "cannot load rooms for a connection");
            let _ = socket.send(close(1011, "internal error")).await;
            return None;
        }
    }
    Box::pin(chat.connected(user)).await;
    tracing::debug!(user = %user.id, conn = handle.id, "gateway connected");
    let conn = Box::new(Conn {
        chat,
        session,
        handle,
        live: HashMap::new(),
        covered: HashMap::new(),
        malformed: VecDeque::new(),
        limited: VecDeque::new(),
        last_heard: Instant::now(),
    });
    Some((socket, conn))
}

impl Conn {
    /// The serialized `ready` frame. Its own (boxed) function so that the snapshot
    /// it is built from is freed before the connection settles into its loop.
    async fn ready_text(&self) -> Result<Bytes, Error> {
        let ready = Box::pin(self.chat.ready(&self.session.user)).await?;
        for r in &ready.rooms {
            self.chat.hub.seed(&r.id, r.pos);
        }
        let text = serde_json::to_vec(&Event::Ready {
            user: &ready.user,
            rooms: &ready.rooms,
            users: &ready.users,
        })
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(Bytes::from(text))
    }

    async fn run(&mut self, socket: &mut Socket) -> (u16, &'static str) {
        let text = match Box::pin(self.ready_text()).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot build ready");
                let _ = socket.send(close(1011, "internal error")).await;
                return (1011, "internal error");
            }
        };
        if send_text(socket, text).await.is_err() {
            return (1006, "gone");
        }
        let shutdown = self.chat.hub.shutdown_token();
        let kill = self.handle.kill.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        // Created once: a fresh `cancelled()` future per loop turn would register and
        // deregister a waiter on the token shared by every connection, under its
        // mutex, for every event delivered.
        let shutdown = shutdown.cancelled();
        let killed = kill.fired();
        tokio::pin!(shutdown, killed);
        loop {
            let flow = tokio::select! {
                _ = &mut shutdown => Flow::Close(1001, "server shutting down"),
                _ = &mut killed => {
                    let (code, reason) = kill.reason();
                    Flow::Close(code, reason)
                }
                frame = self.handle.rx.recv() => match frame {
                    Some(f) => self.write_events(socket, f).await,
                    None => Flow::Close(1011, "internal error"),
                },
                msg = socket.next() => match msg {
                    Some(Ok(m)) => {
                        self.last_heard = Instant::now();
                        // Boxed, like the other rare paths below: the task's future
                        // is allocated for the connection's whole life at the size
                        // of its largest state, and most connections are idle.
                        Box::pin(self.on_message(socket, m)).await
                    }
                    Some(Err(WsError::Capacity(_))) => Flow::Close(1009, "frame too large"),
                    Some(Err(_)) => return (1006, "read error"),
                    None => return (1006, "gone"),
                },
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > IDLE_TIMEOUT {
                        Flow::Close(1001, "idle timeout")
                    } else if socket.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return (1006, "gone");
                    } else {
                        Flow::Continue
                    }
                }
            };
            if let Flow::Close(code, reason) = flow {
                Box::pin(close_and_linger(socket, code, reason)).await;
                return (code, reason);
            }
        }
    }

    /// Writes one queued event and whatever else is queued (up to a batch), then
    /// flushes once.
    async fn write_events(&mut self, socket: &mut Socket, first: Arc<Frame>) -> Flow {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(f) = next.take() {
            if self.keep(&f) {
                let text = Bytes::from(f.text.clone());
                let sent = if text.len() >= DIRECT {
                    write_direct(socket, &text).await
                } else {
                    socket.feed(WsMessage::Frame(text_frame(text))).await
                };
                if sent.is_err() {
                    return Flow::Close(1006, "gone");
                }
            }
            n += 1;
            if n < BATCH {
                next = self.handle.rx.try_recv().ok();
            }
        }
        if socket.flush().await.is_err() {
            return Flow::Close(1006, "gone");
        }
        Flow::Continue
    }

    /// Drops events a resume reply already covered; records what goes out live.
    fn keep(&mut self, f: &Frame) -> bool {
        let Some(room) = &f.room else { return true };
        if self.covered.get(room).is_some_and(|c| f.pos <= *c) {
            return false;
        }
        let e = self.live.entry(room.clone()).or_insert((f.pos, f.pos));
        e.1 = e.1.max(f.pos);
        true
    }

    async fn on_message(&mut self, socket: &mut Socket, msg: WsMessage) -> Flow {
        let limit = self.chat.settings.max_frame_bytes;
        let size = match &msg {
            WsMessage::Text(t) => t.len(),
            WsMessage::Binary(b) => b.len(),
            _ => 0,
        };
        if size > limit {
            return Flow::Close(1009, "frame too large");
        }
        let text = match msg {
            WsMessage::Text(t) => t,
            WsMessage::Binary(_) => {
                return self
                    .malformed(socket, None, "binary frames are not supported")
                    .await;
            }
            WsMessage::Close(_) => return Flow::Close(1000, "bye"),
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => return Flow::Continue,
        };
        let incoming = wire::parse(text.as_str());
        let frame = match incoming.frame {
            Ok(f) => f,
            Err(why) => return self.malformed(socket, incoming.req, &why).await,
        };
        // Boxed: the state machine of every operation would otherwise live inside
        // every idle connection's task.
        let result = Box::pin(self.dispatch(frame)).await;
        if let Err(Error::RateLimited { .. }) = &result
            && within_minute(&mut self.limited, Instant::now()) > LIMITED_PER_MINUTE
        {
            return Flow::Close(1008, "flooding");
        }
        match &result {
            Err(Error::Internal(e)) => {
                tracing::error!(user = %self.session.user.id, error = ?e, "gateway op failed")
            }
            Err(Error::Unavailable(why)) => tracing::warn!(%why, "database unavailable"),
            _ => {}
        }
        let Some(req) = incoming.req else {
            return Flow::Continue;
        };
        let text = match &result {
            Ok(data) => wire::reply_ok(&req, data),
            Err(e) => wire::reply_err(&req, e),
        };
        if send_text(socket, Bytes::from(text)).await.is_err() {
            return Flow::Close(1006, "gone");
        }
        Flow::Continue
    }

    async fn malformed(&mut self, socket: &mut Socket, req: Option<Value>, why: &str) -> Flow {
        let err = Error::Invalid {
            field: None,
            message: why.to_string(),
        };
        tracing::debug!(user = %self.session.user.id, why, "malformed frame");
        let text = match &req {
            Some(req) => wire::reply_err(req, &err),
            None => wire::error_frame(&err),
        };
        if send_text(socket, Bytes::from(text)).await.is_err() {
            return Flow::Close(1006, "gone");
        }
        if within_minute(&mut self.malformed, Instant::now()) > MALFORMED_PER_MINUTE {
            return Flow::Close(1008, "too many malformed frames");
        }
        Flow::Continue
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<Value, Error> {
        let chat = self.chat.clone();
        let user = &self.session.user;
        tracing::debug!(user = %user.id, ?frame, "gateway op");
        match frame {
            ClientFrame::Send {
                room_id,
                client_id,
                body,
                reply_to,
                thread_root,
                attachment_ids,
            } => {
                let m = chat
                    .send(
                        user,
                        SendMessage {
                            room_id,
                            client_id: Some(client_id),
                            body,
                            reply_to,
                            thread_root,
                            attachment_ids,
                        },
                    )
                    .await?;
                to_value(&m)
            }
            ClientFrame::Edit { message_id, body } => {
                to_value(&chat.edit(user, &message_id, &body).await?)
            }
            ClientFrame::Delete { message_id } => {
                chat.delete(user, &message_id).await?;
                Ok(Value::Null)
            }
            ClientFrame::React {
                message_id,
                emoji,
                add,
            } => {
                chat.react(user, &message_id, &emoji, add).await?;
                Ok(Value::Null)
            }
            ClientFrame::Typing { room_id, active } => {
                chat.typing(user, &room_id, active).await?;
                Ok(Value::Null)
            }
            ClientFrame::Read { room_id, seq } => {
                chat.mark_read(user, &room_id, seq).await?;
                Ok(Value::Null)
            }
            ClientFrame::History {
                room_id,
                before_seq,
                limit,
            } => {
                let (messages, has_more) = chat
                    .history(user, &room_id, before_seq, None, limit)
                    .await?;
                Ok(json!({"messages": messages, "has_more": has_more}))
            }
            ClientFrame::Resume { rooms } => self.resume(rooms).await,
            ClientFrame::JoinRoom { room_id, password } => {
                to_value(&chat.join_room(user, &room_id, password.as_deref()).await?)
            }
            ClientFrame::LeaveRoom { room_id } => {
                chat.leave_room(user, &room_id).await?;
                Ok(Value::Null)
            }
            ClientFrame::Presence { status } => {
                chat.set_presence(user, &status).await?;
                Ok(Value::Null)
            }
            ClientFrame::Ping {} => {
                Ok(json!({"server_time": crate::util::rfc3339(crate::util::now_ms())}))
            }
        }
    }

    /// Answers `resume`: per room, every message changed after the client's `pos`
    /// that this connection has not already been sent live; then marks the snapshot
    /// as covered so queued duplicates are dropped.
    async fn resume(&mut self, rooms: HashMap<String, i64>) -> Result<Value, Error> {
        if rooms.len() > 10_000 {
            return Err(Error::invalid("rooms", "too many rooms"));
        }
        let mut out = Vec::with_capacity(rooms.len());
        for (room_id, after) in rooms {
            let changes = match self.chat.changes(&self.session.user, &room_id, after).await {
                Ok(c) => c,
                Err(Error::NotFound(_) | Error::Forbidden(_)) => continue,
                Err(e) => return Err(e),
            };
            let key: Arc<str> = Arc::from(room_id.as_str());
            let sent = self.live.get(&key).copied();
            let messages: Vec<Message> = changes
                .messages
                .iter()
                .filter(|m| !sent.is_some_and(|(first, last)| m.pos >= first && m.pos <= last))
                .map(|m| Message::for_viewer(m, &self.session.user.id))
                .collect();
            let covered = self.covered.entry(key).or_insert(0);
            *covered = (*covered).max(changes.pos);
            out.push(json!({
                "room_id": room_id,
                "messages": messages,
                "truncated": changes.truncated,
                "pos": changes.pos,
            }));
        }
        Ok(json!({ "rooms": out }))
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.into()))
}
