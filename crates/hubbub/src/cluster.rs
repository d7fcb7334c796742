//! Multi-node mode over Redis: the cluster bus and cluster-wide presence.
//!
//! - **Bus**: one publisher connection and one subscriber connection per node (never
//!   one per WebSocket). Every hub operation that other nodes must repeat is published
//!   once on `<prefix>:bus`; every node applies what the others publish. A node skips
//!   its own messages, so nothing is delivered twice.
//! - **Presence**: `<prefix>:presence:<user>` is a hash node → connection count; a
//!   user is online while any node holds a connection. Each node refreshes
//!   `<prefix>:node:<id>:alive` (15 s expiry) every 5 s; a node whose key expired is
//!   reaped by another node, whose users then go offline unless they are connected
//!   elsewhere — within 30 s of the node dying.
//! - **Outages**: while Redis is down the node keeps serving its own clients; the
//!   subscriber reconnects with backoff, `/readyz` says not ready, and on reconnect the
//!   hub re-reads every room from the store (gap fill), so nothing acknowledged is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::hub::{Frame, Remote};

const HEARTBEAT: Duration = Duration::from_secs(5);
const ALIVE_MS: u64 = 15_000;

/// What the bus hands the domain.
#[derive(Debug)]
pub enum Inbound {
    Remote(Remote),
    /// The subscriber (re)connected: anything may have been missed meanwhile.
    Connected,
    /// A dead node was reaped; these users have no connection left anywhere.
    Offline(Vec<String>),
}

pub struct Cluster {
    node: String,
    prefix: String,
    conn: ConnectionManager,
    connected: AtomicBool,
}

/// The header of a bus message; the frame text, if any, follows after a newline.
#[derive(Serialize, Deserialize, Default)]
struct Header {
    n: String,
    op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rooms: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(default)]
    pos: i64,
    #[serde(default)]
    seq: i64,
    #[serde(default)]
    active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<i64>,
}

fn encode(node: &str, op: &Remote) -> Vec<u8> {
    let mut h = Header {
        n: node.to_string(),
        ..Default::default()
    };
    let frame: Option<&Frame> = match op {
        Remote::Room { room, frame } => {
            h.op = "room".into();
            h.room = Some(room.to_string());
            Some(frame)
        }
        Remote::Rooms { rooms, frame } => {
            h.op = "rooms".into();
            h.rooms = rooms.iter().map(|r| r.to_string()).collect();
            Some(frame)
        }
        Remote::User { user, frame } => {
            h.op = "user".into();
            h.user = Some(user.to_string());
            Some(frame)
        }
        Remote::Subscribe { user, room } | Remote::Unsubscribe { user, room } => {
            h.op = if matches!(op, Remote::Subscribe { .. }) {
                "sub"
            } else {
                "unsub"
            }
            .into();
            h.user = Some(user.to_string());
            h.room = Some(room.to_string());
            None
        }
        Remote::DropRoom { room } => {
            h.op = "drop".into();
            h.room = Some(room.to_string());
            None
        }
        Remote::CloseSession { session } => {
            h.op = "close".into();
            h.session = Some(session.to_string());
            None
        }
        Remote::Typing { room, user, active } => {
            h.op = "typing".into();
            h.room = Some(room.to_string());
            h.user = Some(user.to_string());
            h.active = *active;
            None
        }
        Remote::Presence {
            user,
            status,
            last_seen,
        } => {
            h.op = "presence".into();
            h.user = Some(user.to_string());
            h.status = Some(status.to_string());
            h.last_seen = *last_seen;
            None
        }
    };
    if let Some(f) = frame {
        h.pos = f.pos;
        h.seq = f.seq;
        h.room = h.room.or_else(|| f.room.as_ref().map(|r| r.to_string()));
    }
    let mut out = serde_json::to_vec(&h).unwrap_or_default();
    out.push(b'\n');
    if let Some(f) = frame {
        out.extend_from_slice(f.text.as_str().as_bytes());
    }
    out
}

/// Decodes a bus message; None for our own messages and for garbage.
fn decode(own: &str, bytes: &[u8]) -> Option<Remote> {
    let nl = bytes.iter().position(|b| *b == b'\n')?;
    let h: Header = serde_json::from_slice(&bytes[..nl]).ok()?;
    if h.n == own {
        return None;
    }
    let text = std::str::from_utf8(&bytes[nl + 1..]).ok()?;
    let frame = || {
        let room = if h.op == "room" {
            h.room.as_deref().map(Arc::from)
        } else {
            None
        };
        Frame {
            room,
            pos: h.pos,
            seq: h.seq,
            text: text.to_string().into(),
        }
    };
    let arc = |s: &Option<String>| s.as_deref().map(Arc::<str>::from);
    Some(match h.op.as_str() {
        "room" => Remote::Room {
            room: arc(&h.room)?,
            frame: frame(),
        },
        "rooms" => Remote::Rooms {
            rooms: h.rooms.iter().map(|r| Arc::from(r.as_str())).collect(),
            frame: frame(),
        },
        "user" => Remote::User {
            user: arc(&h.user)?,
            frame: frame(),
        },
        "sub" => Remote::Subscribe {
            user: arc(&h.user)?,
            room: arc(&h.room)?,
        },
        "unsub" => Remote::Unsubscribe {
            user: arc(&h.user)?,
            room: arc(&h.room)?,
        },
        "drop" => Remote::DropRoom {
            room: arc(&h.room)?,
        },
        "close" => Remote::CloseSession {
            session: arc(&h.session)?,
        },
        "typing" => Remote::Typing {
            room: arc(&h.room)?,
            user: arc(&h.user)?,
            active: h.active,
        },
        "presence" => Remote::Presence {
            user: arc(&h.user)?,
            status: arc(&h.status)?,
            last_seen: h.last_seen,
        },
        _ => return None,
    })
}

/// HSET presence node count; HSET node-users user count; SADD online; → HLEN.
const ONLINE: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return redis.call('HLEN', KEYS[1])";

/// HDEL presence node; HDEL node-users user; SREM online when nobody holds the user.
const OFFLINE: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
local n = redis.call('HLEN', KEYS[1])
if n == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return n";

impl Cluster {
    /// Connects to Redis and starts the bus. Returns the cluster handle, the sender the
    /// hub publishes into, and the stream of what other nodes said.
    pub async fn start(
        url: &str,
        prefix: &str,
    ) -> anyhow::Result<(
        Arc<Cluster>,
        mpsc::UnboundedSender<Remote>,
        mpsc::UnboundedReceiver<Inbound>,
    )> {
        let client = redis::Client::open(url).context("invalid Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = tokio::time::timeout(
            Duration::from_secs(10),
            client.get_connection_manager_with_config(config),
        )
        .await
        .context("Redis did not answer within 10 s")?
        .context("cannot connect to Redis")?;
        let cluster = Arc::new(Cluster {
            node: crate::util::new_id(),
            prefix: prefix.to_string(),
            conn,
            connected: AtomicBool::new(false),
        });
        let (pub_tx, pub_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        tokio::spawn(cluster.clone().publisher(pub_rx));
        tokio::spawn(cluster.clone().subscriber(client, in_tx.clone()));
        tokio::spawn(cluster.clone().heartbeat(in_tx));
        tracing::info!(node = %cluster.node, "joined the cluster");
        Ok((cluster, pub_tx, in_rx))
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    /// True while the bus subscriber is connected.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        Ok(())
    }

    async fn publisher(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Remote>) {
        let channel = self.key(&["bus"]);
        let mut conn = self.conn.clone();
        while let Some(op) = rx.recv().await {
            let bytes = encode(&self.node, &op);
            let r = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(bytes)
                .query_async::<i64>(&mut conn)
                .await;
            if let Err(e) = r {
                // Lost on the bus; other nodes fill room changes from the store.
                metrics::counter!("hubbub_bus_publish_errors_total").increment(1);
                tracing::debug!(error = %e, "bus publish failed");
            }
        }
    }

    async fn subscriber(
        self: Arc<Self>,
        client: redis::Client,
        tx: mpsc::UnboundedSender<Inbound>,
    ) {
        let channel = self.key(&["bus"]);
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(ps)) => {
                    backoff = Duration::from_millis(100);
                    self.connected.store(true, Ordering::Relaxed);
                    tracing::info!("cluster bus connected");
                    if tx.send(Inbound::Connected).is_err() {
                        return;
                    }
                    let mut stream = ps.into_on_message();
                    while let Some(msg) = stream.next().await {
                        if let Some(op) = decode(&self.node, msg.get_payload_bytes())
                            && tx.send(Inbound::Remote(op)).is_err()
                        {
                            return;
                        }
                    }
                    self.connected.store(false, Ordering::Relaxed);
                    tracing::warn!("cluster bus disconnected; reconnecting");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot subscribe to the cluster bus"),
                Err(_) => tracing::warn!("cluster bus subscription timed out"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Keeps this node's alive key fresh and reaps nodes whose key expired.
    async fn heartbeat(self: Arc<Self>, tx: mpsc::UnboundedSender<Inbound>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            if let Err(e) = self.beat().await {
                tracing::debug!(error = %e, "heartbeat failed");
                continue;
            }
            match self.reap().await {
                Ok(users) if !users.is_empty() => {
                    let _ = tx.send(Inbound::Offline(users));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "reaping failed"),
            }
        }
    }

    async fn beat(&self) -> anyhow::Result<()> {
        let mut c = self.conn.clone();
        redis::pipe()
            .cmd("SET")
            .arg(self.key(&["node", &self.node, "alive"]))
            .arg(1)
            .arg("PX")
            .arg(ALIVE_MS)
            .ignore()
            .cmd("SADD")
            .arg(self.key(&["nodes"]))
            .arg(&self.node)
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    /// Takes over dead nodes: their users leave presence; those held by no node are
    /// returned (they are offline now).
    async fn reap(&self) -> anyhow::Result<Vec<String>> {
        let mut c = self.conn.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key(&["nodes"]))
            .query_async(&mut c)
            .await?;
        let mut offline = Vec::new();
        for node in nodes.iter().filter(|n| **n != self.node) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.key(&["node", node, "alive"]))
                .query_async(&mut c)
                .await?;
            if alive {
                continue;
            }
            let claimed: Option<String> = redis::cmd("SET")
                .arg(self.key(&["reap", node]))
                .arg(&self.node)
                .arg("NX")
                .arg("PX")
                .arg(60_000)
                .query_async(&mut c)
                .await?;
            if claimed.is_none() {
                continue;
            }
            let users: Vec<String> = redis::cmd("HKEYS")
                .arg(self.key(&["node", node, "users"]))
                .query_async(&mut c)
                .await?;
            for user in users {
                if self.leave(node, &user).await? == 0 {
                    offline.push(user);
                }
            }
            redis::pipe()
                .cmd("DEL")
                .arg(self.key(&["node", node, "users"]))
                .ignore()
                .cmd("SREM")
                .arg(self.key(&["nodes"]))
                .arg(node)
                .ignore()
                .query_async::<()>(&mut c)
                .await?;
            tracing::info!(node = %node, "reaped a dead node");
        }
        Ok(offline)
    }

    /// Records that this node holds `count` connections of `user`; returns how many
    /// nodes hold the user now.
    pub async fn hold(&self, user: &str, count: usize) -> anyhow::Result<i64> {
        let mut c = self.conn.clone();
        Ok(redis::Script::new(ONLINE)
            .key(self.key(&["presence", user]))
            .key(self.key(&["node", &self.node, "users"]))
            .key(self.key(&["online"]))
            .arg(&self.node)
            .arg(count)
            .arg(user)
            .invoke_async(&mut c)
            .await?)
    }

    /// This node no longer holds `user`; returns how many nodes still do.
    pub async fn release(&self, user: &str) -> anyhow::Result<i64> {
        let node = self.node.clone();
        self.leave(&node, user).await
    }

    async fn leave(&self, node: &str, user: &str) -> anyhow::Result<i64> {
        let mut c = self.conn.clone();
        Ok(redis::Script::new(OFFLINE)
            .key(self.key(&["presence", user]))
            .key(self.key(&["node", node, "users"]))
            .key(self.key(&["online"]))
            .arg(node)
            .arg(user)
            .invoke_async(&mut c)
            .await?)
    }

    /// Stores a user's chosen status (online clears it).
    pub async fn set_status(&self, user: &str, status: &str) -> anyhow::Result<()> {
        let mut c = self.conn.clone();
        let key = self.key(&["status", user]);
        if status == "online" {
            redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await?;
        } else {
            redis::cmd("SET")
                .arg(key)
                .arg(status)
                .query_async::<()>(&mut c)
                .await?;
        }
        Ok(())
    }

    /// Everyone online anywhere, with their status.
    pub async fn online_users(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut c = self.conn.clone();
        let users: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key(&["online"]))
            .query_async(&mut c)
            .await?;
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = users.iter().map(|u| self.key(&["status", u])).collect();
        let statuses: Vec<Option<String>> =
            redis::cmd("MGET").arg(keys).query_async(&mut c).await?;
        Ok(users
            .into_iter()
            .zip(statuses)
            .map(|(u, s)| (u, s.unwrap_or_else(|| "online".into())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_round_trip_and_skip_our_own() {
        let op = Remote::Room {
            room: Arc::from("r1"),
            frame: Frame {
                room: Some(Arc::from("r1")),
                pos: 7,
                seq: 3,
                text: "{\"type\":\"message\"}\n".to_string().into(),
            },
        };
        let bytes = encode("a", &op);
        assert!(decode("a", &bytes).is_none());
        match decode("b", &bytes) {
            Some(Remote::Room { room, frame }) => {
                assert_eq!(&*room, "r1");
                assert_eq!((frame.pos, frame.seq), (7, 3));
                assert_eq!(frame.text.as_str(), "{\"type\":\"message\"}\n");
            }
            other => panic!("{other:?}"),
        }
        let typing = encode(
            "a",
            &Remote::Typing {
                room: Arc::from("r"),
                user: Arc::from("u"),
                active: true,
            },
        );
        assert!(matches!(
            decode("b", &typing),
            Some(Remote::Typing { active: true, .. })
        ));
        assert!(decode("b", b"garbage").is_none());
    }
}
