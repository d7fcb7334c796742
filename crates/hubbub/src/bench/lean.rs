//! `hubbub bench lean-server`: the yardstick. A minimal in-memory broadcast server
//! that speaks the gateway frames of the fanout path, so `bench fanout --lean`
//! measures what this machine can do with the same wire format and none of the
//! product (no auth, no database, no presence, no markdown).
//!
//! Lean but honest, built like the real gateway: one reader and one writer task per
//! connection, a bounded outbound queue per connection (a full queue closes that
//! connection as a slow consumer), each event serialized ONCE into shared bytes,
//! writes batched (up to 128 frames per flush).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug, Clone)]
pub struct LeanArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub bind: SocketAddr,

    /// Per-connection outbound queue, in events (as `hubbub serve --outbound-queue`).
    #[arg(long, default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Leave Nagle's algorithm on (no TCP_NODELAY on accepted sockets), to show what
    /// it costs small frames.
    #[arg(long)]
    pub nagle: bool,

    /// WebSocket read buffer per connection, in KiB (as `hubbub serve`: 4). axum's
    /// default is 128, which tungstenite zero-fills before every read: resident
    /// memory per connection, and a 128 KiB memset each time the socket is polled.
    #[arg(long, default_value_t = 4)]
    pub read_buffer_kib: usize,

    /// Pad the `ready` frame to about this many bytes (the real server's `ready`
    /// lists every user of the caller's small rooms), to see what a large first
    /// frame costs per connection.
    #[arg(long, default_value_t = 0)]
    pub ready_bytes: usize,
}

/// Frames written per flush at most (as the real gateway).
const BATCH: usize = 128;

struct Lean {
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
    next_conn: AtomicU64,
    conns: AtomicUsize,
    queue: usize,
    read_buffer: usize,
    ready_pad: String,
}

struct Room {
    id: String,
    seq: i64,
    members: Vec<Member>,
}

struct Member {
    conn: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    kill: CancellationToken,
}

/// The same fields as the real server's user object, so frames weigh the same.
#[derive(Serialize)]
struct LeanUser {
    id: String,
    username: String,
    display_name: Option<String>,
    kind: &'static str,
    avatar_url: String,
    bio: &'static str,
    status_text: &'static str,
    is_admin: bool,
}

/// The same fields as the real server's message object.
#[derive(Serialize)]
struct LeanMessage<'a> {
    id: String,
    room_id: &'a str,
    seq: i64,
    pos: i64,
    author: &'a LeanUser,
    body: &'a str,
    html: String,
    created_at: String,
    edited_at: Option<&'a str>,
    deleted: bool,
    pinned: bool,
    reply_to: Option<&'a str>,
    thread_root: Option<&'a str>,
    reply_count: i64,
    reactions: [u8; 0],
    attachments: [u8; 0],
    mentions: [u8; 0],
    client_id: &'a str,
}

#[derive(Deserialize)]
struct In<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    req: Option<Value>,
    room_id: Option<String>,
    client_id: Option<String>,
    body: Option<String>,
}

pub(crate) async fn run(args: LeanArgs) -> anyhow::Result<()> {
    super::raise_nofile();
    let state = Arc::new(Lean {
        rooms: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(1),
        conns: AtomicUsize::new(0),
        queue: args.outbound_queue.max(1),
        read_buffer: args.read_buffer_kib.max(1) * 1024,
        ready_pad: "x".repeat(args.ready_bytes),
    });
    let app = Router::new()
        .route("/api/v1/ws", get(upgrade))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    let addr = listener.local_addr()?;
    println!("lean-server listening on {addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Small frames written one by one must not wait for the peer's delayed ACK.
    let nodelay = !args.nagle;
    let listener = listener.tap_io(move |tcp| {
        if nodelay {
            let _ = tcp.set_nodelay(true);
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn metrics(State(lean): State<Arc<Lean>>) -> String {
    let rss = super::stats::rss_of("self").unwrap_or(0);
    format!(
        "# TYPE hubbub_process_resident_memory_bytes gauge\nhubbub_process_resident_memory_bytes {rss}\n\
         # TYPE hubbub_connections_open gauge\nhubbub_connections_open {}\n",
        lean.conns.load(Relaxed)
    )
}

async fn upgrade(
    State(lean): State<Arc<Lean>>,
    Query(q): Query<HashMap<String, String>>,
    up: WebSocketUpgrade,
) -> Response {
    // Any token is accepted: the lean server has no accounts.
    let token = q.get("token").cloned().unwrap_or_default();
    up.read_buffer_size(lean.read_buffer)
        .on_upgrade(move |socket| serve(socket, lean, token))
        .into_response()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

async fn serve(socket: WebSocket, lean: Arc<Lean>, token: String) {
    let conn = lean.next_conn.fetch_add(1, Relaxed);
    lean.conns.fetch_add(1, Relaxed);
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(lean.queue);
    let kill = CancellationToken::new();

    // The writer: the only task that writes this socket.
    let writer = {
        let kill = kill.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = kill.cancelled() => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: 1008,
                                reason: Utf8Bytes::from_static("slow consumer"),
                            })))
                            .await;
                        break;
                    }
                    m = rx.recv() => {
                        let Some(first) = m else { break };
                        if sink.feed(Message::Text(first)).await.is_err() {
                            break;
                        }
                        let mut n = 1;
                        while n < BATCH {
                            let Ok(t) = rx.try_recv() else { break };
                            if sink.feed(Message::Text(t)).await.is_err() {
                                kill.cancel();
                                return;
                            }
                            n += 1;
                        }
                        if sink.flush().await.is_err() {
                            break;
                        }
                    }
                }
            }
            kill.cancel();
        })
    };

    let user = LeanUser {
        id: format!("lean-{conn}"),
        username: token
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(32)
            .collect(),
        display_name: None,
        kind: "guest",
        avatar_url: format!("/api/v1/avatars/lean-{conn}?v=0"),
        bio: "",
        status_text: "",
        is_admin: false,
    };
    let ready = format!(
        r#"{{"type":"ready","user":{},"rooms":[],"users":[],"pad":"{}"}}"#,
        serde_json::to_string(&user).unwrap_or_default(),
        lean.ready_pad
    );
    let mut joined: Vec<Arc<Mutex<Room>>> = Vec::new();
    if tx.send(Utf8Bytes::from(ready)).await.is_ok() {
        loop {
            let msg = tokio::select! {
                _ = kill.cancelled() => break,
                m = stream.next() => m,
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = handle(&lean, conn, &user, &tx, &kill, &mut joined, t.as_str());
                    if let Some(r) = reply
                        && tx.send(Utf8Bytes::from(r)).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
    for room in &joined {
        room.lock().members.retain(|m| m.conn != conn);
    }
    drop(tx);
    let _ = writer.await;
    lean.conns.fetch_sub(1, Relaxed);
}

fn reply_ok(req: &Option<Value>, data: &str) -> Option<String> {
    req.as_ref()
        .map(|r| format!(r#"{{"type":"reply","req":{r},"ok":true,"data":{data}}}"#))
}

fn reply_err(req: &Option<Value>, code: &str, message: &str) -> String {
    let error = json!({"code": code, "message": message});
    match req {
        Some(r) => format!(r#"{{"type":"reply","req":{r},"ok":false,"error":{error}}}"#),
        None => format!(r#"{{"type":"error","error":{error}}}"#),
    }
}

/// Handles one client frame; returns the reply to queue, if any.
fn handle(
    lean: &Lean,
    conn: u64,
    user: &LeanUser,
    tx: &mpsc::Sender<Utf8Bytes>,
    kill: &CancellationToken,
    joined: &mut Vec<Arc<Mutex<Room>>>,
    text: &str,
) -> Option<String> {
    let frame: In = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return Some(reply_err(&None, "invalid", &e.to_string())),
    };
    let req = &frame.req;
    match frame.ty {
        "join_room" => {
            let Some(room_id) = frame.room_id else {
                return Some(reply_err(req, "invalid", "missing field `room_id`"));
            };
            let room = lean
                .rooms
                .lock()
                .entry(room_id.clone())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Room {
                        id: room_id.clone(),
                        seq: 0,
                        members: Vec::new(),
                    }))
                })
                .clone();
            let count = {
                let mut r = room.lock();
                if !r.members.iter().any(|m| m.conn == conn) {
                    r.members.push(Member {
                        conn,
                        tx: tx.clone(),
                        kill: kill.clone(),
                    });
                }
                r.members.len()
            };
            if !joined.iter().any(|r| Arc::ptr_eq(r, &room)) {
                joined.push(room);
            }
            let data = json!({"id": room_id, "name": room_id, "kind": "public", "member_count": count, "joined": true});
            reply_ok(req, &data.to_string())
        }
        "send" => {
            let (Some(room_id), Some(client_id), Some(body)) =
                (frame.room_id, frame.client_id, frame.body)
            else {
                return Some(reply_err(
                    req,
                    "invalid",
                    "send needs room_id, client_id and body",
                ));
            };
            let Some(room) = joined.iter().find(|r| r.lock().id == room_id).cloned() else {
                return Some(reply_err(
                    req,
                    "forbidden",
                    "you are not a member of this room",
                ));
            };
            let now = crate::util::now_ms();
            let html = format!("<p>{}</p>\n", escape_html(&body));
            let data = {
                let mut r = room.lock();
                r.seq += 1;
                let seq = r.seq;
                let msg = LeanMessage {
                    id: crate::util::new_id(),
                    room_id: &room_id,
                    seq,
                    pos: seq,
                    author: user,
                    body: &body,
                    html,
                    created_at: crate::util::rfc3339(now),
                    edited_at: None,
                    deleted: false,
                    pinned: false,
                    reply_to: None,
                    thread_root: None,
                    reply_count: 0,
                    reactions: [],
                    attachments: [],
                    mentions: [],
                    client_id: &client_id,
                };
                let data = serde_json::to_string(&msg).unwrap_or_default();
                // Serialized once; every member's queue gets a cheap clone.
                let event = Utf8Bytes::from(format!(
                    r#"{{"type":"message","message":{data},"pos":{seq}}}"#
                ));
                r.members.retain(|m| match m.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        m.kill.cancel();
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
                data
            };
            reply_ok(req, &data)
        }
        "ping" => reply_ok(
            req,
            &json!({"server_time": crate::util::rfc3339(crate::util::now_ms())}).to_string(),
        ),
        other => Some(reply_err(
            req,
            "invalid",
            &format!("the lean server does not handle {other:?} frames"),
        )),
    }
}
