//! The generator's side of the wire: a small REST client for setup, gateway
//! connections (optionally bound to a chosen source address), and a minimal scan of
//! incoming frames (no full JSON parse on the hot path).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// How long one setup step (an HTTP call, a connect, the `ready` frame) may take.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The server's base URL, parsed once.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    /// `ws://host:port/api/v1/ws`.
    pub ws: String,
    pub addr: SocketAddr,
}

impl Target {
    pub async fn parse(url: &str) -> anyhow::Result<Target> {
        let base = url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).with_context(|| format!("bad --url {url}"))?;
        if parsed.scheme() != "http" {
            bail!("--url must be http://HOST:PORT (TLS is not supported by the bench)");
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow!("--url has no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .ok_or_else(|| anyhow!("{host} resolves to nothing"))?;
        let ws = format!("ws://{}:{}/api/v1/ws", host, port);
        Ok(Target { base, ws, addr })
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("{}?token={}", self.ws, token)
    }
}

/// A REST client for setup (accounts, guests, rooms) and for `posts --via rest`.
#[derive(Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub base: String,
}

impl Http {
    pub fn new(target: &Target) -> Http {
        let client = reqwest::Client::builder()
            .timeout(SETUP_TIMEOUT)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("http client");
        Http {
            client,
            base: target.base.clone(),
        }
    }

    /// POSTs JSON and returns the JSON answer; any non-2xx is an error carrying the
    /// server's error body (with a hint when it is a rate limit).
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let mut rb = self
            .client
            .post(format!("{}{}", self.base, path))
            .json(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.with_context(|| format!("POST {path}"))?;
        let status = r.status();
        let bytes = r
            .bytes()
            .await
            .with_context(|| format!("POST {path}: body"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let hint = if status.as_u16() == 429 {
                " (start the server with --no-rate-limit for benchmarks)"
            } else {
                ""
            };
            bail!("POST {path}: {status}: {text}{hint}");
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).with_context(|| format!("POST {path}: answer is not JSON"))
    }

    /// A guest session: (token, user id).
    pub async fn guest(&self, name: &str) -> anyhow::Result<(String, String)> {
        let v = self
            .post("/api/v1/auth/guest", None, &json!({ "name": name }))
            .await?;
        let token = v["token"]
            .as_str()
            .ok_or_else(|| anyhow!("guest: no token in {v}"))?;
        let id = v["user"]["id"].as_str().unwrap_or_default();
        Ok((token.to_string(), id.to_string()))
    }

    /// Registers an account and returns its token.
    pub async fn register(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/api/v1/auth/register",
                None,
                &json!({ "username": username, "password": password }),
            )
            .await
            .context("registering the bench account (is registration open?)")?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("register: no token in {v}"))
    }

    /// Creates a public room that guests may join; returns its id.
    pub async fn create_room(&self, token: &str, name: &str) -> anyhow::Result<String> {
        let v = self
            .post(
                "/api/v1/rooms",
                Some(token),
                &json!({ "name": name, "kind": "public", "guests_allowed": true }),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("create room: no id in {v}"))
    }

    pub async fn join(&self, token: &str, room: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/api/v1/rooms/{room}/join"),
            Some(token),
            &json!({}),
        )
        .await?;
        Ok(())
    }

    /// `GET /metrics` as text (None when the endpoint is missing or off).
    pub async fn metrics(&self) -> Option<String> {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    }
}

/// The value of an unlabelled gauge in Prometheus text.
pub(crate) fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = rest.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// WebSocket settings for the generator's client connections.
pub(crate) fn ws_config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .max_message_size(Some(64 << 20))
}

/// Opens a TCP connection (bound to `source` when given) and upgrades it.
pub(crate) async fn connect(
    target: &Target,
    url: &str,
    source: Option<IpAddr>,
    config: WebSocketConfig,
) -> anyhow::Result<Ws> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        bind_no_port(&socket);
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = socket.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

/// Lets the kernel pick the source port at connect time (from the 4-tuple) rather
/// than at bind time, so each source address has the whole ephemeral range per
/// destination.
fn bind_no_port(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket fd and a pointer to a c_int of the given length.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

/// Reads frames until the `ready` frame (the first frame the gateway sends).
pub(crate) async fn read_ready(ws: &mut Ws) -> anyhow::Result<()> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                if t.as_str().starts_with(r#"{"type":"ready""#) {
                    return Ok(());
                }
                if t.as_str().starts_with(r#"{"type":"error""#) {
                    bail!("error frame before ready: {}", t.as_str());
                }
            }
            Some(Ok(WsMessage::Close(c))) => bail!("closed before ready: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before ready"),
        }
    }
}

/// Reads frames until the reply to `req`; Ok(Err(text)) when the reply is not ok.
pub(crate) async fn read_reply(ws: &mut Ws, req: u64) -> anyhow::Result<Result<(), String>> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                if let Frame::Reply { req: r, ok } = classify(t.as_str())
                    && r == Some(req)
                {
                    return Ok(if ok {
                        Ok(())
                    } else {
                        Err(t.as_str().to_string())
                    });
                }
            }
            Some(Ok(WsMessage::Close(c))) => bail!("closed while waiting for a reply: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed while waiting for a reply"),
        }
    }
}

/// What the generator needs to know about an incoming frame.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame<'a> {
    /// A `message` event: the message body (unescaped only if it had no escapes,
    /// which bench bodies never have) and the event's `pos`.
    Message {
        body: &'a str,
        pos: Option<i64>,
    },
    /// A reply with a numeric `req` (None for other `req`s).
    Reply {
        req: Option<u64>,
        ok: bool,
    },
    Other,
}

fn leading_int(s: &str) -> Option<i64> {
    let end = s
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(s.len());
    s[..end].parse().ok()
}

/// Classifies a server frame by substring scan. Relies on the server writing `type`
/// first (SPEC §8) and on serde's field order: `{"type":"message","message":{…,
/// "body":"…",…},"pos":N}` and `{"type":"reply","req":N,"ok":…}`. A `"body":"`
/// inside a string value would be escaped (`\"`), so the first raw match is the
/// message's own body.
pub(crate) fn classify(text: &str) -> Frame<'_> {
    if let Some(rest) = text.strip_prefix(r#"{"type":"message","#) {
        let body = rest
            .find(r#""body":""#)
            .map(|i| &rest[i + 8..])
            .and_then(|b| b.find('"').map(|e| &b[..e]))
            .unwrap_or("");
        let pos = text
            .rfind(r#""pos":"#)
            .and_then(|i| leading_int(&text[i + 6..]));
        return Frame::Message { body, pos };
    }
    if let Some(rest) = text.strip_prefix(r#"{"type":"reply","req":"#) {
        let req = leading_int(rest).and_then(|r| u64::try_from(r).ok());
        let ok = rest
            .find(r#""ok":"#)
            .is_some_and(|i| rest[i + 5..].starts_with("true"));
        return Frame::Reply { req, ok };
    }
    Frame::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        let m = r#"{"type":"message","message":{"id":"1","author":{"bio":"say \"body\":\"x\""},"body":"hb|1|2|3|4|xx","html":"<p>hb</p>"},"pos":42}"#;
        assert_eq!(
            classify(m),
            Frame::Message {
                body: "hb|1|2|3|4|xx",
                pos: Some(42)
            }
        );
        assert_eq!(
            classify(r#"{"type":"reply","req":17,"ok":true,"data":{"pos":3}}"#),
            Frame::Reply {
                req: Some(17),
                ok: true
            }
        );
        assert_eq!(
            classify(r#"{"type":"reply","req":"a","ok":false,"error":{}}"#),
            Frame::Reply {
                req: None,
                ok: false
            }
        );
        assert_eq!(
            classify(r#"{"type":"presence","user_id":"u"}"#),
            Frame::Other
        );
    }

    #[test]
    fn reads_gauges() {
        let m = "# TYPE x gauge\nhubbub_process_resident_memory_bytes 1234\nhubbub_x 5\n";
        assert_eq!(
            gauge(m, "hubbub_process_resident_memory_bytes"),
            Some(1234.0)
        );
        assert_eq!(gauge(m, "hubbub"), None);
    }
}
