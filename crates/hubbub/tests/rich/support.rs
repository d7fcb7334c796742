//! Helpers for the rich-messaging suite: a server on either backend, assertions on the
//! error shape, REST shortcuts, gateway helpers that wait for events (never sleep).
#![allow(dead_code)]

use std::ops::Deref;

use serde_json::{Value, json};

pub use crate::common::chat::*;
pub use crate::common::*;

// ---------------------------------------------------------------------------
// Backends

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server on one backend. Fields drop in order: the server is killed
/// before its PostgreSQL database is dropped.
pub struct Env {
    pub server: Server,
    pub backend: Backend,
    _db: Option<Database>,
}

impl Deref for Env {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Env {
    /// A fresh server (rate limits lifted) with extra flags on `backend`. None when
    /// the PostgreSQL variant is skipped because no database is configured.
    pub async fn start(backend: Backend, extra: &[&str]) -> Option<Env> {
        let mut args: Vec<String> = vec!["--no-rate-limit".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let url = std::env::var("HUBBUB_TEST_DATABASE_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty());
                let Some(url) = url else {
                    if std::env::var("HUBBUB_E2E").as_deref() == Ok("require") {
                        panic!("HUBBUB_E2E=require but HUBBUB_TEST_DATABASE_URL is not set");
                    }
                    println!("skipped: HUBBUB_TEST_DATABASE_URL not set");
                    return None;
                };
                let db = Database::create(&url).await;
                args.push("--database-url".into());
                args.push(db.url.clone());
                Some(db)
            }
        };
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start_with(&refs).await;
        Some(Env {
            server,
            backend,
            _db: db,
        })
    }
}

/// Generates `<name>::sqlite` and `<name>::postgres` tests from one async body that
/// receives an `Env`. Optional extra `hubbub serve` flags in brackets.
macro_rules! both {
    ($name:ident, [$($flag:expr),* $(,)?], |$env:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($env: crate::support::Env) $body

            #[tokio::test]
            async fn sqlite() {
                let env = crate::support::Env::start(
                    crate::support::Backend::Sqlite,
                    &[$($flag),*],
                )
                .await
                .expect("sqlite server");
                run(env).await
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(env) = crate::support::Env::start(
                    crate::support::Backend::Postgres,
                    &[$($flag),*],
                )
                .await
                {
                    run(env).await
                }
            }
        }
    };
    ($name:ident, |$env:ident| $body:block) => {
        both!($name, [], |$env| $body);
    };
}

// ---------------------------------------------------------------------------
// Responses

/// One of several acceptable error codes (e.g. forbidden or not_found).
#[track_caller]
pub fn err_any(r: &Resp, codes: &[&str], what: &str) {
    assert!(
        codes
            .iter()
            .any(|c| statuses_for(c).contains(&r.status) && r.code() == *c),
        "{what}: expected one of {codes:?}, got {} {}",
        r.status,
        text(r)
    );
}

/// `invalid` with the given `field`.
#[track_caller]
pub fn invalid(r: &Resp, field: &str, what: &str) {
    err(r, "invalid", what);
    assert_eq!(
        r.body["error"]["field"],
        json!(field),
        "{what}: expected field {field:?}: {}",
        text(r)
    );
}

pub fn int(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

/// Percent-encodes a path segment (everything but unreserved ASCII).
pub fn enc(seg: &str) -> String {
    seg.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// REST shortcuts

pub async fn new_room(api: &Api, name: &str, extra: Value) -> String {
    let mut body = json!({ "name": name });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let room = api.create_room(body).await;
    s(&room["id"])
}

pub async fn invite(owner: &Api, room: &str, user: &Api) {
    let r = owner
        .post(
            &format!("/api/v1/rooms/{room}/invites"),
            json!({"user_id": user.id()}),
        )
        .await;
    ok(&r, "invite");
}

/// Sends a message over REST and returns it.
pub async fn send(api: &Api, room: &str, body: &str) -> Value {
    let r = send_raw(
        api,
        room,
        json!({ "body": body, "client_id": format!("c-{}", uuid_like()) }),
    )
    .await;
    ok(&r, "send message");
    assert!(r.body["id"].is_string(), "send answered: {}", text(&r));
    r.body
}

/// GET /messages/{id} as `api` sees it.
pub async fn message(api: &Api, id: &str) -> Value {
    let r = api.get(&format!("/api/v1/messages/{id}")).await;
    ok(&r, "GET message");
    r.body
}

/// The full history of a room (up to 200 messages).
pub async fn all_messages(api: &Api, room: &str) -> Vec<Value> {
    let r = api
        .get(&format!("/api/v1/rooms/{room}/messages?limit=200"))
        .await;
    ok(&r, "history");
    r.body["messages"].as_array().expect("messages").clone()
}

pub async fn last_seq(api: &Api, room: &str) -> i64 {
    let r = api.get(&format!("/api/v1/rooms/{room}")).await;
    ok(&r, "GET room");
    int(&r.body["last_seq"])
}

pub fn ids(msgs: &[Value]) -> Vec<String> {
    msgs.iter().map(|m| s(&m["id"])).collect()
}

pub async fn react(api: &Api, msg: &str, emoji: &str) -> Resp {
    api.put(
        &format!("/api/v1/messages/{msg}/reactions/{}", enc(emoji)),
        json!({}),
    )
    .await
}

pub async fn unreact(api: &Api, msg: &str, emoji: &str) -> Resp {
    api.delete(&format!("/api/v1/messages/{msg}/reactions/{}", enc(emoji)))
        .await
}

/// The reaction entry for `emoji` in a message (None when absent).
pub fn reaction<'a>(m: &'a Value, emoji: &str) -> Option<&'a Value> {
    m["reactions"]
        .as_array()
        .unwrap_or_else(|| panic!("reactions missing: {m}"))
        .iter()
        .find(|r| r["emoji"] == emoji)
}

/// Uploads a file as multipart field `file`.
pub async fn upload(api: &Api, name: &str, content_type: &str, bytes: Vec<u8>) -> Resp {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(content_type)
        .expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    api.send(
        api.request(reqwest::Method::POST, "/api/v1/uploads")
            .multipart(form),
    )
    .await
}

pub async fn upload_ok(api: &Api, name: &str, content_type: &str, bytes: Vec<u8>) -> Value {
    let r = upload(api, name, content_type, bytes).await;
    ok(&r, &format!("upload {name}"));
    r.body
}

pub async fn search(api: &Api, query: &str) -> Resp {
    api.get(&format!("/api/v1/search?{query}")).await
}

/// Search results for `q` (URL-encoded here) plus extra query parameters.
pub async fn search_ok(api: &Api, q: &str, extra: &str) -> Vec<Value> {
    let r = search(api, &format!("q={}{extra}", enc(q))).await;
    ok(&r, &format!("search {q:?}"));
    r.body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("search {q:?}: no results array: {}", text(&r)))
        .clone()
}

pub fn result_ids(results: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = results.iter().map(|r| s(&r["message"]["id"])).collect();
    v.sort();
    v
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Gateway

pub fn send_frame(room: &str, body: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_id": format!("c-{}", uuid_like()), "body": body})
}

pub fn react_frame(msg: &str, emoji: &str, add: bool) -> Value {
    json!({"type": "react", "message_id": msg, "emoji": emoji, "add": add})
}

pub fn is_updated(v: &Value, id: &str) -> bool {
    v["type"] == "message_updated" && v["message"]["id"] == id
}

pub fn is_notification(v: &Value) -> bool {
    v["type"] == "notification"
}

/// Change events of a message (new, updated, deleted).
pub fn touches(v: &Value, id: &str) -> bool {
    match v["type"].as_str() {
        Some("message") | Some("message_updated") => v["message"]["id"] == id,
        Some("message_deleted") => v["message_id"] == id,
        _ => false,
    }
}

/// Uploads like a browser or curl does: writes the multipart body while reading the
/// response concurrently, so an early answer (e.g. `too_large` before the whole body
/// was read) is seen even if the server stops reading. Returns (status, JSON body) or
/// Err(what the transport said) when no response could be read at all.
pub async fn upload_streaming(
    api: &Api,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<(u16, Value), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = api.base.trim_start_matches("http://").to_string();
    let boundary = format!("----rich{}", uuid_like());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        api.token(),
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() {
            for chunk in body.chunks(64 * 1024) {
                if wr.write_all(chunk).await.is_err() {
                    return;
                }
            }
            // No half-close: servers may treat it as the client going away.
            std::future::pending::<()>().await;
        }
    });
    let mut resp = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read = tokio::time::timeout(WAIT, async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => resp.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "timed out reading the response".to_string())?;
    writer.abort();
    let text = String::from_utf8_lossy(&resp).to_string();
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        return Err(format!(
            "no HTTP response ({}); got {:?}",
            read.err().unwrap_or_default(),
            text.chars().take(200).collect::<String>()
        ));
    };
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let json_text = if chunked {
        // Good enough for one small JSON body: drop the chunk size lines.
        rest.lines()
            .filter(|l| !l.trim().chars().all(|c| c.is_ascii_hexdigit()))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        rest.to_string()
    };
    Ok((
        status,
        serde_json::from_str(json_text.trim()).unwrap_or(Value::Null),
    ))
}
