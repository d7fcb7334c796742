//! Helpers specific to the API suite: assertions on the error shape, REST shortcuts,
//! gateway frame collection with barriers (never sleeps), small encoders.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub use crate::common::chat::*;
pub use crate::common::*;

/// A server with every rate limit lifted (most tests: no flakes from limits).
pub async fn fast() -> Server {
    Server::start_with(&["--no-rate-limit"]).await
}

/// A fast server plus extra flags.
pub async fn fast_with(extra: &[&str]) -> Server {
    let mut args = vec!["--no-rate-limit"];
    args.extend_from_slice(extra);
    Server::start_with(&args).await
}

// ---------------------------------------------------------------------------
// Responses

/// `invalid` with the given `field` (None: the field must be null or absent).
#[track_caller]
pub fn invalid(r: &Resp, field: Option<&str>, what: &str) {
    err(r, "invalid", what);
    match field {
        Some(f) => assert_eq!(
            r.body["error"]["field"],
            json!(f),
            "{what}: expected field {f:?}: {}",
            text(r)
        ),
        None => assert!(
            r.body["error"]["field"].is_null(),
            "{what}: expected field null: {}",
            text(r)
        ),
    }
}

/// `rate_limited` with a positive `retry_after_ms` and a `Retry-After` header (seconds).
#[track_caller]
pub fn rate_limited(r: &Resp, what: &str) {
    err(r, "rate_limited", what);
    let ms = r.body["error"]["retry_after_ms"].as_u64();
    assert!(
        ms.is_some_and(|ms| ms > 0),
        "{what}: retry_after_ms missing or not positive: {}",
        text(r)
    );
    let ra = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After header"))
        .to_str()
        .unwrap()
        .trim()
        .to_string();
    let secs: u64 = ra
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {ra:?} is not seconds"));
    assert!(secs >= 1, "{what}: Retry-After {secs} should be >= 1");
}

// ---------------------------------------------------------------------------
// REST shortcuts

/// GET /me (the plain user object).
pub async fn me(api: &Api) -> Value {
    let r = api.get("/api/v1/me").await;
    ok(&r, "GET /me");
    if r.body.get("id").is_none() && r.body.get("user").is_some() {
        return r.body["user"].clone();
    }
    r.body
}

pub async fn raw(api: &Api, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
    api.send(
        api.request(method, path)
            .header("Content-Type", content_type)
            .body(body),
    )
    .await
}

/// A request authenticated only by the session cookie, with an optional Origin.
pub async fn cookie_req(
    server: &Server,
    method: Method,
    path: &str,
    token: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let anon = server.http();
    let mut rb = anon
        .request(method, path)
        .header("Cookie", format!("hubbub_session={token}"));
    if let Some(o) = origin {
        rb = rb.header("Origin", o);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    anon.send(rb).await
}

pub async fn login(server: &Server, username: &str, password: &str) -> Resp {
    server
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": username, "password": password}),
        )
        .await
}

/// Creates a room and returns its id.
pub async fn new_room(api: &Api, name: &str, extra: Value) -> String {
    let mut body = json!({ "name": name });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let room = api.create_room(body).await;
    room["id"].as_str().expect("room id").to_string()
}

#[track_caller]
pub fn check_joined(r: &Resp) {
    ok(r, "join");
}

pub async fn members(api: &Api, room: &str) -> Vec<Value> {
    let r = api.get(&format!("/api/v1/rooms/{room}/members")).await;
    ok(&r, "GET members");
    r.body["members"].as_array().expect("members array").clone()
}

pub fn member_ids(members: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = members
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
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
    assert!(
        r.body["id"].is_string(),
        "send answered without a message: {}",
        text(&r)
    );
    r.body
}

/// A history page: (messages, has_more).
pub async fn history(api: &Api, room: &str, query: &str) -> (Vec<Value>, bool) {
    let path = if query.is_empty() {
        format!("/api/v1/rooms/{room}/messages")
    } else {
        format!("/api/v1/rooms/{room}/messages?{query}")
    };
    let r = api.get(&path).await;
    ok(&r, &format!("GET {path}"));
    let msgs = r.body["messages"]
        .as_array()
        .expect("messages array")
        .clone();
    let more = r.body["has_more"]
        .as_bool()
        .unwrap_or_else(|| panic!("has_more missing: {}", text(&r)));
    (msgs, more)
}

/// The full history of a room (up to 200 messages).
pub async fn all_messages(api: &Api, room: &str) -> Vec<Value> {
    history(api, room, "limit=200").await.0
}

pub fn seqs(msgs: &[Value]) -> Vec<i64> {
    msgs.iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect()
}

pub fn ids(msgs: &[Value]) -> Vec<String> {
    msgs.iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Gateway

/// Every frame that arrives within `d` (stops early if the connection closes).
pub async fn collect_for(ws: &mut Ws, d: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + d;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match ws.recv_within(left).await {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

/// A ping round trip: everything the server queued before the pong is returned.
pub async fn barrier(ws: &mut Ws) -> Vec<Value> {
    let (reply, before) = call(ws, json!({"type": "ping"})).await;
    assert_eq!(reply["ok"], true, "ping failed: {reply}");
    before
}

pub fn ws_send_frame(room: &str, body: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_id": format!("c-{}", uuid_like()), "body": body})
}

pub fn is_msg(v: &Value, room: &str) -> bool {
    v["type"] == "message" && v["message"]["room_id"] == room
}

pub fn is_presence(v: &Value, user: &str, status: &str) -> bool {
    v["type"] == "presence" && v["user_id"] == user && v["status"] == status
}

/// Change events (message, message_updated, message_deleted) of one room.
pub fn is_change(v: &Value, room: &str) -> bool {
    match v["type"].as_str() {
        Some("message") | Some("message_updated") => v["message"]["room_id"] == room,
        Some("message_deleted") => v["room_id"] == room,
        _ => false,
    }
}

/// Sends an arbitrary text frame.
pub async fn send_text_frame(ws: &mut Ws, text: String) {
    ws.stream
        .send(WsMessage::Text(text.into()))
        .await
        .expect("ws send");
}

/// Tries a gateway upgrade with optional `?token=` and extra headers.
/// Ok(ws) after `ready`, or Err(HTTP status) when the upgrade is refused.
pub async fn ws_try(
    server: &Server,
    token: Option<&str>,
    headers: &[(&str, String)],
) -> Result<Ws, u16> {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::http::{HeaderName, HeaderValue};
    let url = match token {
        Some(t) => format!("{}?token={}", server.ws_url(), t),
        None => server.ws_url(),
    };
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((stream, _)) => Ok(Ws::from_stream(stream).await),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("ws connect failed unexpectedly: {e}"),
    }
}

/// A gateway connection whose TCP receive buffer is tiny, so that a client that stops
/// reading backs up into the server quickly.
pub async fn connect_small_rcvbuf(api: &Api, rcvbuf: u32) -> Ws {
    let port: u16 = api.base.rsplit(':').next().unwrap().parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(rcvbuf).unwrap();
    let tcp = sock
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .expect("tcp connect");
    let url = format!("{}?token={}", api.ws, api.token());
    let (stream, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .expect("ws upgrade");
    Ws::from_stream(stream).await
}

/// Sends `n` messages over one gateway connection, pipelined in chunks, and returns
/// the acknowledged messages.
pub async fn bulk_send(api: &Api, room: &str, n: usize, prefix: &str) -> Vec<Value> {
    let mut ws = api.connect().await;
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let chunk = (n - i).min(50);
        let mut reqs = std::collections::HashSet::new();
        for k in 0..chunk {
            let req = fresh_req();
            let mut f = ws_send_frame(room, &format!("{prefix} {}", i + k));
            f["req"] = json!(req);
            reqs.insert(req);
            ws.send_json(f).await;
        }
        while !reqs.is_empty() {
            let v = ws.recv().await.expect("closed during bulk send");
            if v["type"] == "reply"
                && let Some(r) = v["req"].as_str()
                && reqs.remove(r)
            {
                assert_eq!(v["ok"], true, "bulk send failed: {v}");
                out.push(v["data"].clone());
            }
        }
        i += chunk;
    }
    out
}

// ---------------------------------------------------------------------------
// Encoders and clocks

/// RFC 3339 UTC timestamp `offset_secs` from now (whole seconds, floored).
pub fn rfc3339_from_now(offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    rfc3339(now + offset_secs)
}

pub fn unix_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// A valid tiny PNG whose header claims `w`×`h`: decoding it would allocate w*h pixels.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut p = png(1, 1);
    assert_eq!(&p[12..16], b"IHDR");
    p[16..20].copy_from_slice(&w.to_be_bytes());
    p[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

/// A PNG with three vertical bands: red | green | blue (each `band` wide, `h` high).
pub fn png_bands(band: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(band * 3, h, |x, _| match x / band {
        0 => image::Rgb([255, 0, 0]),
        1 => image::Rgb([0, 255, 0]),
        _ => image::Rgb([0, 0, 255]),
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}
