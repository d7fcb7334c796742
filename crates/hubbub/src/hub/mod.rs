//! The hub: fan-out of events to live connections on this node.
//!
//! Each connection owns a bounded queue. An event is serialized once into a `Frame`
//! whose bytes are shared (reference-counted) by every subscriber; delivering is a
//! non-blocking `try_send` of a cheap clone. A full queue never blocks the sender or
//! the room: that one connection is told to close ("slow consumer") and can resume.
//!
//! The hub never touches the database and never decides who may see what: the
//! domain subscribes connections to the rooms their user belongs to.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub mod sequencer;

pub type ConnId = u64;

/// One serialized event. `room` and `pos` let a connection drop events its resume
/// snapshot already covered.
#[derive(Clone, Debug)]
pub struct Frame {
    pub room: Option<Arc<str>>,
    /// The room's stream position of a message change (0 for other events).
    pub pos: i64,
    /// The message's `seq` for `message` events (0 otherwise).
    pub seq: i64,
    pub text: Utf8Bytes,
}

/// What crosses the cluster bus: every hub operation that other nodes must repeat
/// for their own connections. Applied remotely with `Hub::apply_remote`.
#[derive(Clone, Debug)]
pub enum Remote {
    Room {
        room: Arc<str>,
        frame: Frame,
    },
    Rooms {
        rooms: Vec<Arc<str>>,
        frame: Frame,
    },
    User {
        user: Arc<str>,
        frame: Frame,
    },
    Subscribe {
        user: Arc<str>,
        room: Arc<str>,
    },
    Unsubscribe {
        user: Arc<str>,
        room: Arc<str>,
    },
    DropRoom {
        room: Arc<str>,
    },
    CloseSession {
        session: Arc<str>,
    },
    Typing {
        room: Arc<str>,
        user: Arc<str>,
        active: bool,
    },
    Presence {
        user: Arc<str>,
        status: Arc<str>,
        last_seen: Option<i64>,
    },
}

/// Tells one connection to close, with a WebSocket close code and reason.
#[derive(Debug, Default)]
pub struct KillSwitch {
    token: CancellationToken,
    reason: OnceLock<(u16, &'static str)>,
}

impl KillSwitch {
    pub fn fire(&self, code: u16, reason: &'static str) {
        let _ = self.reason.set((code, reason));
        self.token.cancel();
    }
    pub async fn fired(&self) {
        self.token.cancelled().await
    }
    pub fn reason(&self) -> (u16, &'static str) {
        self.reason.get().copied().unwrap_or((1000, ""))
    }
}

#[derive(Clone)]
struct Sub {
    conn: ConnId,
    user: Arc<str>,
    tx: mpsc::Sender<Arc<Frame>>,
    kill: Arc<KillSwitch>,
}

struct ConnEntry {
    sub: Sub,
    session: Arc<str>,
}

pub struct Hub {
    next_id: AtomicU64,
    capacity: usize,
    conns: DashMap<ConnId, ConnEntry>,
    users: DashMap<Arc<str>, Vec<ConnId>>,
    rooms: DashMap<Arc<str>, Vec<Sub>>,
    shutdown: CancellationToken,
    /// Set in cluster mode: operations to repeat on the other nodes.
    bus: OnceLock<mpsc::UnboundedSender<Remote>>,
    /// Puts room changes back into `pos` order (they commit concurrently, and in
    /// cluster mode arrive from several nodes); set by `attach_sequencer`.
    sequencer: OnceLock<sequencer::Sequencer>,
}

/// A registered connection. Dropping it unregisters the connection everywhere.
pub struct ConnHandle {
    pub id: ConnId,
    /// Queued events. A slot is one pointer: an idle connection's first queue block
    /// (32 slots) costs 256 bytes, not 2 KiB.
    pub rx: mpsc::Receiver<Arc<Frame>>,
    pub kill: Arc<KillSwitch>,
    hub: Arc<Hub>,
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

impl Hub {
    pub fn new(capacity: usize) -> Arc<Hub> {
        Arc::new(Hub {
            next_id: AtomicU64::new(1),
            capacity: capacity.max(1),
            conns: DashMap::new(),
            users: DashMap::new(),
            rooms: DashMap::new(),
            shutdown: CancellationToken::new(),
            bus: OnceLock::new(),
            sequencer: OnceLock::new(),
        })
    }

    /// Room changes are delivered through a sequencer, in `pos` order; a gap that
    /// stays open is filled with `fill`. Without one, frames go out as published.
    pub fn attach_sequencer(self: &Arc<Self>, fill: sequencer::Fill) {
        if self.sequencer.set(sequencer::Sequencer::new(fill)).is_ok() {
            sequencer::spawn_gap_timer(self);
        }
    }

    /// Cluster mode: every operation is also sent to `bus` for the other nodes.
    pub fn attach_bus(&self, bus: mpsc::UnboundedSender<Remote>) {
        let _ = self.bus.set(bus);
    }

    /// Sends an operation to the other nodes only (cluster mode; no-op otherwise).
    pub fn send_remote(&self, op: Remote) {
        self.to_bus(|| op);
    }

    /// A local connection read `room` at `pos` after subscribing to it.
    pub fn seed(&self, room: &str, pos: i64) {
        if let Some(seq) = self.sequencer.get() {
            seq.seed(room, pos);
        }
    }

    /// Re-reads every room from the store (the cluster bus reconnected).
    pub fn resync(&self) {
        if let Some(seq) = self.sequencer.get() {
            seq.resync_all();
        }
    }

    fn to_bus(&self, op: impl FnOnce() -> Remote) {
        if let Some(bus) = self.bus.get() {
            // The receiver lives as long as the process; a send error means shutdown.
            let _ = bus.send(op());
        }
    }

    /// Repeats an operation that another node performed, for this node's connections.
    pub fn apply_remote(self: &Arc<Self>, op: Remote) {
        match op {
            Remote::Room { room, frame } => self.deliver_room(&room, frame),
            Remote::Rooms { rooms, frame } => {
                self.deliver_rooms_once(rooms.iter().map(|r| &**r), &frame)
            }
            Remote::User { user, frame } => self.deliver_user(&user, &frame),
            Remote::Subscribe { user, room } => self.subscribe_user_local(&user, &room),
            Remote::Unsubscribe { user, room } => self.unsubscribe_user_local(&user, &room),
            Remote::DropRoom { room } => {
                self.rooms.remove(&*room);
            }
            Remote::CloseSession { session } => self.close_session_local(&session),
            // Typing and presence are domain state; the domain applies them.
            Remote::Typing { .. } | Remote::Presence { .. } => {}
        }
    }

    /// Rooms that have subscribers on this node.
    pub fn local_rooms(&self) -> Vec<Arc<str>> {
        self.rooms.iter().map(|e| e.key().clone()).collect()
    }

    /// Users with at least one connection on this node, with their connection count.
    pub fn local_users(&self) -> Vec<(Arc<str>, usize)> {
        self.users
            .iter()
            .map(|e| (e.key().clone(), e.value().len()))
            .collect()
    }

    /// Fires when the server shuts down; connections close with 1001.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Registers a connection of `user` authenticated by `session` (a token hash).
    pub fn register(self: &Arc<Self>, user: &str, session: &str) -> ConnHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.capacity);
        let kill = Arc::new(KillSwitch::default());
        let user: Arc<str> = Arc::from(user);
        let sub = Sub {
            conn: id,
            user: user.clone(),
            tx,
            kill: kill.clone(),
        };
        self.conns.insert(
            id,
            ConnEntry {
                sub,
                session: Arc::from(session),
            },
        );
        self.users.entry(user).or_default().push(id);
        metrics::gauge!("hubbub_connections").increment(1.0);
        ConnHandle {
            id,
            rx,
            kill,
            hub: self.clone(),
        }
    }

    fn unregister(&self, id: ConnId) {
        let Some((_, entry)) = self.conns.remove(&id) else {
            return;
        };
        metrics::gauge!("hubbub_connections").decrement(1.0);
        if let Some(mut list) = self.users.get_mut(&entry.sub.user) {
            list.retain(|c| *c != id);
        }
        self.users.remove_if(&entry.sub.user, |_, l| l.is_empty());
        // Subscriptions are removed room by room; rooms are few per connection but the
        // hub does not track them per connection, so scan (disconnects are rare).
        self.rooms.retain(|_, subs| {
            subs.retain(|s| s.conn != id);
            !subs.is_empty()
        });
    }

    /// Number of open connections of a user on this node.
    pub fn user_connections(&self, user: &str) -> usize {
        self.users.get(user).map(|l| l.len()).unwrap_or(0)
    }

    /// Subscribes one connection to a room (idempotent).
    pub fn subscribe(&self, conn: ConnId, room: &str) {
        let Some(sub) = self.conns.get(&conn).map(|e| e.sub.clone()) else {
            return;
        };
        let mut subs = self.rooms.entry(Arc::from(room)).or_default();
        if !subs.iter().any(|s| s.conn == conn) {
            subs.push(sub);
        }
    }

    /// Subscribes every connection of a user to a room (they just joined it).
    pub fn subscribe_user(&self, user: &str, room: &str) {
        self.subscribe_user_local(user, room);
        self.to_bus(|| Remote::Subscribe {
            user: Arc::from(user),
            room: Arc::from(room),
        });
    }

    fn subscribe_user_local(&self, user: &str, room: &str) {
        let conns: Vec<ConnId> = self.users.get(user).map(|l| l.clone()).unwrap_or_default();
        for c in conns {
            self.subscribe(c, room);
        }
    }

    /// Removes every connection of a user from a room (they left it).
    pub fn unsubscribe_user(&self, user: &str, room: &str) {
        self.unsubscribe_user_local(user, room);
        self.to_bus(|| Remote::Unsubscribe {
            user: Arc::from(user),
            room: Arc::from(room),
        });
    }

    fn unsubscribe_user_local(&self, user: &str, room: &str) {
        if let Some(mut subs) = self.rooms.get_mut(room) {
            subs.retain(|s| &*s.user != user);
        }
        self.rooms.remove_if(room, |_, s| s.is_empty());
    }

    /// Forgets a room (it was deleted).
    pub fn drop_room(&self, room: &str) {
        self.rooms.remove(room);
        self.to_bus(|| Remote::DropRoom {
            room: Arc::from(room),
        });
    }

    fn deliver(sub: &Sub, frame: Arc<Frame>) {
        match sub.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("hubbub_slow_consumer_disconnects_total").increment(1);
                sub.kill.fire(1008, "slow consumer");
            }
            // The connection is closing; its guard will unregister it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Sends a frame to every connection subscribed to a room, on every node.
    pub fn publish_room(self: &Arc<Self>, room: &str, frame: &Frame) {
        tracing::debug!(room, event = %frame.text.as_str().get(..40).unwrap_or(""), "publish");
        self.to_bus(|| Remote::Room {
            room: Arc::from(room),
            frame: frame.clone(),
        });
        self.deliver_room(room, frame.clone());
    }

    /// Local delivery of a room frame: room changes go through the sequencer, which
    /// delivers them in `pos` order (under the room's lock, so two publishers of a
    /// room cannot interleave their deliveries).
    fn deliver_room(self: &Arc<Self>, room: &str, frame: Frame) {
        match self.sequencer.get() {
            Some(seq) if frame.pos > 0 => {
                seq.offer(room, frame, |f| self.deliver_room_now(room, f));
            }
            _ => self.deliver_room_now(room, &frame),
        }
    }

    pub(crate) fn deliver_room_now(&self, room: &str, frame: &Frame) {
        if let Some(subs) = self.rooms.get(room) {
            metrics::counter!("hubbub_deliveries_total").increment(subs.len() as u64);
            let shared = Arc::new(frame.clone());
            for s in subs.iter() {
                Self::deliver(s, shared.clone());
            }
        }
    }

    /// Sends to every local subscriber of a room the frame `pick` chooses for its
    /// user (None: nothing). For events that differ per receiver, such as typing,
    /// which every node computes for its own connections.
    pub fn deliver_room_by_user(&self, room: &str, pick: impl Fn(&str) -> Option<Frame>) {
        if let Some(subs) = self.rooms.get(room) {
            for s in subs.iter() {
                if let Some(f) = pick(&s.user) {
                    Self::deliver(s, Arc::new(f));
                }
            }
        }
    }

    /// Sends a frame once to every connection subscribed to any of `rooms`, on every
    /// node.
    pub fn publish_rooms_once<'a>(&self, rooms: impl IntoIterator<Item = &'a str>, frame: &Frame) {
        let rooms: Vec<&str> = rooms.into_iter().collect();
        self.to_bus(|| Remote::Rooms {
            rooms: rooms.iter().map(|r| Arc::from(*r)).collect(),
            frame: frame.clone(),
        });
        self.deliver_rooms_once(rooms, frame);
    }

    fn deliver_rooms_once<'a>(&self, rooms: impl IntoIterator<Item = &'a str>, frame: &Frame) {
        let mut seen = HashSet::new();
        let shared = Arc::new(frame.clone());
        for room in rooms {
            if let Some(subs) = self.rooms.get(room) {
                for s in subs.iter() {
                    if seen.insert(s.conn) {
                        Self::deliver(s, shared.clone());
                    }
                }
            }
        }
    }

    /// Sends a frame to every connection of a user, on every node.
    pub fn publish_user(&self, user: &str, frame: &Frame) {
        self.to_bus(|| Remote::User {
            user: Arc::from(user),
            frame: frame.clone(),
        });
        self.deliver_user(user, frame);
    }

    fn deliver_user(&self, user: &str, frame: &Frame) {
        let conns: Vec<ConnId> = self.users.get(user).map(|l| l.clone()).unwrap_or_default();
        let shared = Arc::new(frame.clone());
        for c in conns {
            if let Some(e) = self.conns.get(&c) {
                Self::deliver(&e.sub, shared.clone());
            }
        }
    }

    /// Closes every connection opened with a session (the session ended), on every
    /// node.
    pub fn close_session(&self, session: &str) {
        self.close_session_local(session);
        self.to_bus(|| Remote::CloseSession {
            session: Arc::from(session),
        });
    }

    fn close_session_local(&self, session: &str) {
        for e in self.conns.iter() {
            if &*e.session == session {
                e.sub.kill.fire(1008, "session ended");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Frame {
        Frame {
            room: None,
            pos: 0,
            seq: 0,
            text: Utf8Bytes::from(s.to_string()),
        }
    }

    #[tokio::test]
    async fn fans_out_and_unsubscribes_on_drop() {
        let hub = Hub::new(8);
        let mut a = hub.register("alice", "s1");
        let mut b = hub.register("bob", "s2");
        hub.subscribe(a.id, "r");
        hub.subscribe(b.id, "r");
        hub.subscribe(b.id, "r");
        hub.publish_room("r", &frame("x"));
        assert_eq!(a.rx.recv().await.unwrap().text.as_str(), "x");
        assert_eq!(b.rx.recv().await.unwrap().text.as_str(), "x");
        assert!(
            b.rx.try_recv().is_err(),
            "subscribed twice but delivered once"
        );
        drop(a);
        hub.publish_room("r", &frame("y"));
        assert_eq!(b.rx.recv().await.unwrap().text.as_str(), "y");
        assert_eq!(hub.connection_count(), 1);
    }

    #[tokio::test]
    async fn a_full_queue_kills_only_that_connection() {
        let hub = Hub::new(2);
        let slow = hub.register("slow", "s1");
        let mut fast = hub.register("fast", "s2");
        hub.subscribe(slow.id, "r");
        hub.subscribe(fast.id, "r");
        for i in 0..3 {
            hub.publish_room("r", &frame(&i.to_string()));
            assert!(fast.rx.recv().await.is_some());
        }
        slow.kill.fired().await;
        assert_eq!(slow.kill.reason(), (1008, "slow consumer"));
        assert!(!fast.kill.token.is_cancelled());
    }

    #[tokio::test]
    async fn user_subscriptions_follow_membership() {
        let hub = Hub::new(8);
        let mut a1 = hub.register("alice", "s1");
        let mut a2 = hub.register("alice", "s2");
        hub.subscribe_user("alice", "r");
        hub.publish_room("r", &frame("1"));
        assert!(a1.rx.recv().await.is_some());
        assert!(a2.rx.recv().await.is_some());
        hub.unsubscribe_user("alice", "r");
        hub.publish_room("r", &frame("2"));
        assert!(a1.rx.try_recv().is_err());
        hub.close_session("s2");
        a2.kill.fired().await;
    }
}
