//! Test harness shared by the black-box suites: starts the real `hubbub` binary on
//! port 0 with a temporary data dir, and talks to it as clients do (HTTP, WebSocket).
//! Nothing here reaches into the server's internals.
#![allow(dead_code)]

pub mod chat;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before the test fails. Generous:
/// machines here are shared and noisy; this bounds hangs, it measures nothing.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Server {
    pub port: u16,
    pub base: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh server with default settings (rate limits on).
    pub async fn start() -> Server {
        Server::start_with(&[]).await
    }

    /// A fresh server with extra `hubbub serve` flags.
    pub async fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().to_path_buf();
        let mut s = Server {
            port: 0,
            base: String::new(),
            data_dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            _tmp: Some(tmp),
        };
        s.spawn(0).await;
        s
    }

    /// A server on an existing data dir (kept after the test).
    pub async fn start_in(dir: &std::path::Path, args: &[&str]) -> Server {
        let mut s = Server {
            port: 0,
            base: String::new(),
            data_dir: dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            _tmp: None,
        };
        s.spawn(0).await;
        s
    }

    async fn spawn(&mut self, port: u16) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubbub"));
        cmd.arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env_remove("HUBBUB_DATABASE_URL")
            .env_remove("HUBBUB_REDIS_URL")
            .env(
                "RUST_LOG",
                std::env::var("HUBBUB_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if std::env::var("HUBBUB_TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn hubbub");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(addr) = line.strip_prefix("hubbub listening on ") {
                    let port = addr
                        .trim()
                        .rsplit(':')
                        .next()
                        .unwrap()
                        .parse::<u16>()
                        .unwrap();
                    return port;
                }
            }
            panic!("hubbub exited before listening");
        })
        .await
        .expect("server did not start in time");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.port = port;
        self.base = format!("http://127.0.0.1:{port}");
        self.child = Some(child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/v1/ws", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).expect("running")
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.start_kill().expect("kill");
            let _ = c.wait().await;
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id().expect("pid");
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill -TERM");
        tokio::time::timeout(WAIT, c.wait())
            .await
            .expect("graceful exit")
            .expect("wait")
    }

    /// Starts the server again on the same port and data dir.
    pub async fn restart(&mut self) {
        self.kill9().await;
        let port = self.port;
        self.spawn(port).await;
    }

    /// An anonymous HTTP client for this server.
    pub fn http(&self) -> Api {
        Api::new(self, None)
    }

    /// Creates a guest and returns an authenticated client.
    pub async fn guest(&self, name: &str) -> Api {
        let api = self.http();
        let r = api
            .post("/api/v1/auth/guest", json!({ "name": name }))
            .await;
        assert_eq!(r.status, 200, "guest {name}: {}", r.body);
        Api::new(self, Some(r.body["token"].as_str().unwrap().to_string()))
            .with_user(r.body["user"].clone())
    }

    /// Registers an account and returns an authenticated client.
    pub async fn register(&self, username: &str, password: &str) -> Api {
        let api = self.http();
        let r = api
            .post(
                "/api/v1/auth/register",
                json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(r.status, 200, "register {username}: {}", r.body);
        Api::new(self, Some(r.body["token"].as_str().unwrap().to_string()))
            .with_user(r.body["user"].clone())
    }
}

/// A response: status, headers and the JSON body (Null when not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub ws: String,
    pub token: Option<String>,
    pub user: Value,
    client: reqwest::Client,
}

impl Api {
    fn new(server: &Server, token: Option<String>) -> Api {
        Api {
            base: server.base.clone(),
            ws: server.ws_url(),
            token,
            user: Value::Null,
            client: reqwest::Client::builder().build().unwrap(),
        }
    }

    fn with_user(mut self, user: Value) -> Api {
        self.user = user;
        self
    }

    pub fn id(&self) -> String {
        self.user["id"].as_str().expect("user id").to_string()
    }

    pub fn token(&self) -> &str {
        self.token.as_deref().expect("token")
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("http request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            bytes,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PUT, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// The id of the default "General" room.
    pub async fn general(&self) -> String {
        let r = self.get("/api/v1/rooms").await;
        r.body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "General")
            .expect("General room")["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates a room (as an account) and returns its JSON.
    pub async fn create_room(&self, body: Value) -> Value {
        let r = self.post("/api/v1/rooms", body).await;
        assert_eq!(r.status, 200, "create room: {}", r.body);
        r.body
    }

    /// Opens a gateway connection with `?token=` and reads the `ready` frame.
    pub async fn connect(&self) -> Ws {
        let url = format!("{}?token={}", self.ws, self.token());
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut ws = Ws {
            stream,
            next_req: 0,
            ready: Value::Null,
        };
        let ready = ws.recv_type("ready").await;
        ws.ready = ready;
        ws
    }
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_req: u64,
    pub ready: Value,
}

impl Ws {
    pub async fn send_json(&mut self, v: Value) {
        self.stream
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.stream
            .send(WsMessage::Text(s.to_string().into()))
            .await
            .expect("ws send");
    }

    /// The next text frame as JSON, or None when the connection closed.
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            let m = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a frame")?;
            match m {
                Ok(WsMessage::Text(t)) => return Some(serde_json::from_str(&t).expect("json")),
                Ok(WsMessage::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Like `recv`, but gives up after `d` and returns None.
    pub async fn recv_within(&mut self, d: Duration) -> Option<Value> {
        tokio::time::timeout(d, self.recv()).await.ok().flatten()
    }

    /// Skips frames until one of the given type arrives.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self
                .recv()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {ty}"));
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Sends a frame with a fresh `req` and returns the matching reply, skipping events.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_req += 1;
        let req = self.next_req;
        frame["req"] = json!(req);
        self.send_json(frame).await;
        loop {
            let v = self.recv().await.expect("closed while waiting for reply");
            if v["type"] == "reply" && v["req"] == json!(req) {
                return v;
            }
        }
    }

    /// Sends a message and returns the stored message from the reply.
    pub async fn send_message(&mut self, room_id: &str, body: &str) -> Value {
        let client_id = format!("c-{}", uuid_like());
        let r = self
            .request(
                json!({"type": "send", "room_id": room_id, "client_id": client_id, "body": body}),
            )
            .await;
        assert_eq!(r["ok"], true, "send failed: {r}");
        r["data"].clone()
    }

    /// Reads frames until the close frame; returns (code, reason).
    pub async fn recv_close(&mut self) -> Option<(u16, String)> {
        loop {
            let m = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out")?;
            match m {
                Ok(WsMessage::Close(Some(cf))) => {
                    return Some((cf.code.into(), cf.reason.to_string()));
                }
                Ok(WsMessage::Close(None)) => return Some((1005, String::new())),
                Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }
}

/// Says why a suite is skipped, on the real stderr (the test harness captures
/// `println!`, which would hide it), or fails when CI requires everything to run.
pub fn skip(why: &str) {
    use std::io::Write;
    if std::env::var("HUBBUB_E2E").as_deref() == Ok("require") {
        panic!("required suite cannot run: {why}");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{t:x}-{n}")
}

/// A small valid PNG (solid colour) of the given size.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 60, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

// ---------------------------------------------------------------------------
// Additions used by the API suite (tests/api). Everything above keeps its signature.

impl Server {
    /// An authenticated client for an existing session token.
    pub fn api_with(&self, token: &str, user: Value) -> Api {
        Api::new(self, Some(token.to_string())).with_user(user)
    }
}

impl Ws {
    /// Wraps an already-upgraded gateway stream and reads its `ready` frame.
    pub async fn from_stream(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Ws {
        let mut ws = Ws {
            stream,
            next_req: 0,
            ready: Value::Null,
        };
        let ready = ws.recv_type("ready").await;
        ws.ready = ready;
        ws
    }
}

/// A fresh PostgreSQL database, dropped when the test ends.
pub struct Database {
    admin_url: String,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn create(admin_url: &str) -> Database {
        use sqlx::Connection;
        let name = format!("hubbub_test_{}", uuid_like().replace('-', "_"));
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(admin_url);
        Database {
            admin_url: admin_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// The URL with another host:port (for the proxy).
    pub fn url_via(&self, port: u16) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("scheme");
        let (auth, path) = rest.split_once('/').expect("path");
        let user = auth
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{port}/{path}")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(&self.admin_url)
            .arg("-qc")
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------
// Assertions on responses, shared by the API and rich-messaging suites.

pub fn is_ok(r: &Resp) -> bool {
    (200..300).contains(&r.status)
}

pub fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.bytes)
        .chars()
        .take(800)
        .collect()
}

#[track_caller]
pub fn ok(r: &Resp, what: &str) {
    assert!(
        is_ok(r),
        "{what}: expected success, got {} {}",
        r.status,
        text(r)
    );
}

pub fn statuses_for(code: &str) -> &'static [u16] {
    match code {
        "unauthorized" => &[401],
        "forbidden" | "room_closed" | "room_not_open" | "room_full" | "banned" | "muted" => &[403],
        "not_found" => &[404],
        "invalid" => &[400, 422],
        "conflict" => &[409],
        "too_large" => &[413],
        "rate_limited" => &[429],
        "internal" => &[500],
        _ => &[],
    }
}

/// Asserts an error response: the status SPEC §7 gives the code, the code, a message.
#[track_caller]
pub fn err(r: &Resp, code: &str, what: &str) {
    let statuses = statuses_for(code);
    assert!(
        statuses.contains(&r.status) && r.code() == code,
        "{what}: expected error {code} (HTTP {statuses:?}), got {} {}",
        r.status,
        text(r)
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: error without a message: {}",
        text(r)
    );
}
