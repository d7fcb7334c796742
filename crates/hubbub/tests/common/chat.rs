//! Helpers shared by the `api` and `rich` suites: REST and gateway shortcuts and
//! the assertions on gateway replies.

use serde_json::{Value, json};

use super::{Api, Resp, Server, Ws, ok, uuid_like};

/// The password every test account uses.
pub const PW: &str = "correct-horse-battery";

/// Registers `root` (the first account, hence server admin), `alice` and `bob`.
pub async fn trio(server: &Server) -> (Api, Api, Api) {
    let root = server.register("root", PW).await;
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    (root, alice, bob)
}

pub async fn join(api: &Api, room: &str) -> Resp {
    api.post(&format!("/api/v1/rooms/{room}/join"), json!({}))
        .await
}

pub async fn join_ok(api: &Api, room: &str) {
    let r = join(api, room).await;
    ok(&r, "join room");
}

/// The caller's room list.
pub async fn rooms(api: &Api) -> Vec<Value> {
    let r = api.get("/api/v1/rooms").await;
    ok(&r, "GET /rooms");
    r.body["rooms"].as_array().expect("rooms array").clone()
}

/// The caller's entry for a room in GET /rooms.
pub async fn room_entry(api: &Api, room: &str) -> Option<Value> {
    rooms(api).await.into_iter().find(|r| r["id"] == room)
}

pub async fn send_raw(api: &Api, room: &str, body: Value) -> Resp {
    api.post(&format!("/api/v1/rooms/{room}/messages"), body)
        .await
}

pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

/// Reads frames until `pred` matches; returns the frames before it and the match.
pub async fn until(ws: &mut Ws, mut pred: impl FnMut(&Value) -> bool) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let v = match ws.recv().await {
            Some(v) => v,
            None => panic!("connection closed; frames so far: {}", short(&before)),
        };
        if pred(&v) {
            return (before, v);
        }
        before.push(v);
    }
}

pub fn short(frames: &[Value]) -> String {
    let s = serde_json::to_string(frames).unwrap();
    s.chars().take(3000).collect()
}

#[track_caller]
pub fn reply_ok(r: &Value, what: &str) {
    assert_eq!(r["type"], "reply", "{what}: not a reply: {r}");
    assert_eq!(r["ok"], true, "{what}: expected ok reply, got {r}");
}

#[track_caller]
pub fn reply_err(r: &Value, code: &str, what: &str) {
    assert_eq!(r["type"], "reply", "{what}: not a reply: {r}");
    assert_eq!(r["ok"], false, "{what}: expected an error reply, got {r}");
    assert_eq!(r["error"]["code"], code, "{what}: wrong code in {r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: error reply without message: {r}"
    );
}

pub fn is_msg_id(v: &Value, id: &str) -> bool {
    v["type"] == "message" && v["message"]["id"] == id
}

/// The entry for `room` in `ready.rooms`.
pub fn ready_room(ws: &Ws, room: &str) -> Value {
    ws.ready["rooms"]
        .as_array()
        .expect("ready.rooms")
        .iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("room {room} not in ready.rooms: {}", ws.ready))
        .clone()
}

/// Every byte of every file under `dir` (recursively).
pub fn all_bytes_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn fresh_req() -> String {
    format!("q-{}", uuid_like())
}

/// Sends a frame with a fresh string `req`; returns (reply, frames received before it).
pub async fn call(ws: &mut Ws, mut frame: Value) -> (Value, Vec<Value>) {
    let req = fresh_req();
    frame["req"] = json!(req);
    ws.send_json(frame).await;
    let (before, reply) = until(ws, |v| v["type"] == "reply" && v["req"] == json!(req)).await;
    (reply, before)
}

/// CRC-32 (IEEE), for hand-built PNG chunks.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
