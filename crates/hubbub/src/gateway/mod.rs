//! The WebSocket gateway: one task per connection, a `select!` over the socket, the
//! connection's outbound queue, a ping timer, the kill switch and server shutdown.
//!
//! The task is the only writer of its socket. It processes client frames one at a
//! time (replies keep request order) and writes queued events in batches. Resume is
//! handled here because it needs to know what this connection has already been sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

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
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Serves one authenticated WebSocket until it closes.
pub async fn serve(mut socket: WebSocket, chat: Arc<Chat>, session: Session) {
    let user = session.user.clone();
    let handle = chat.hub.register(&user.id, &session.token_hash);
    // Subscribe before reading anything, so no event committed from now on is missed.
    match Box::pin(chat.room_ids(&user.id)).await {
        Ok(rooms) => rooms.iter().for_each(|r| chat.hub.subscribe(handle.id, r)),
        Err(e) => {
            tracing::warn!(user = %user.id, error = %e, "cannot load rooms for a connection");
            let _ = socket.send(close(1011, "internal error")).await;
            return;
        }
    }
    Box::pin(chat.connected(&user)).await;
    let mut conn = Conn {
        chat: chat.clone(),
        session,
        handle,
        live: HashMap::new(),
        covered: HashMap::new(),
        malformed: VecDeque::new(),
        limited: VecDeque::new(),
        last_heard: Instant::now(),
    };
    tracing::debug!(user = %user.id, conn = conn.handle.id, "gateway connected");
    let reason = conn.run(&mut socket).await;
    tracing::debug!(user = %user.id, conn = conn.handle.id, ?reason, "gateway closed");
    drop(conn);
    chat.disconnected(&user.id);
}

impl Conn {
    async fn run(&mut self, socket: &mut WebSocket) -> (u16, &'static str) {
        let ready = match Box::pin(self.chat.ready(&self.session.user)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot build ready");
                let _ = socket.send(close(1011, "internal error")).await;
                return (1011, "internal error");
            }
        };
        for r in &ready.rooms {
            self.chat.hub.seed(&r.id, r.pos);
        }
        let text = serde_json::to_string(&Event::Ready {
            user: &ready.user,
            rooms: &ready.rooms,
            users: &ready.users,
        })
        .unwrap_or_default();
        if socket.send(WsMessage::Text(text.into())).await.is_err() {
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
                        self.on_message(socket, m).await
                    }
                    Some(Err(e)) => {
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("Space limit") {
                            Flow::Close(1009, "frame too large")
                        } else {
                            return (1006, "read error");
                        }
                    }
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
                if socket.send(close(code, reason)).await.is_ok() {
                    // Let the client answer the close so the TCP connection ends
                    // cleanly and the close frame is not lost to a reset.
                    let _ = tokio::time::timeout(LINGER, async {
                        while let Some(Ok(_)) = socket.next().await {}
                    })
                    .await;
                }
                return (code, reason);
            }
        }
    }

    /// Writes one queued event and whatever else is queued (up to a batch), then
    /// flushes once.
    async fn write_events(&mut self, socket: &mut WebSocket, first: Frame) -> Flow {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(f) = next.take() {
            if self.keep(&f) && socket.feed(WsMessage::Text(f.text)).await.is_err() {
                return Flow::Close(1006, "gone");
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

    async fn on_message(&mut self, socket: &mut WebSocket, msg: WsMessage) -> Flow {
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
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Flow::Continue,
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
        if socket.send(WsMessage::Text(text.into())).await.is_err() {
            return Flow::Close(1006, "gone");
        }
        Flow::Continue
    }

    async fn malformed(&mut self, socket: &mut WebSocket, req: Option<Value>, why: &str) -> Flow {
        let err = Error::Invalid {
            field: None,
            message: why.to_string(),
        };
        tracing::debug!(user = %self.session.user.id, why, "malformed frame");
        let text = match &req {
            Some(req) => wire::reply_err(req, &err),
            None => wire::error_frame(&err),
        };
        if socket.send(WsMessage::Text(text.into())).await.is_err() {
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
