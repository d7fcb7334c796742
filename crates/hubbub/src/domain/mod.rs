//! The domain: who may do what, limits, and what happens when they do it.
//!
//! `Chat` is the one service both transports call: a gateway frame and a REST call
//! that do the same thing call the same method here. It owns the rules, talks to the
//! store for durable state and to the hub for fan-out, and knows nothing of HTTP,
//! WebSockets or SQL.

pub mod attachments;
pub mod auth;
pub mod avatar;
pub mod error;
pub mod limits;
pub mod markdown;
pub mod messages;
pub mod presence;
pub mod rich;
pub mod rooms;
pub mod validate;

use std::sync::Arc;

pub use error::{Error, OrNotFound, Result};

use crate::cluster::{Cluster, Inbound};
use crate::config::Settings;
use crate::hub::Hub;
use crate::hub::Remote;
use crate::model::{Room, User};
use crate::store::{RoomKind, RoomRecord, Store, UserRecord};
use crate::wire::Event;

pub struct Chat {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub settings: Arc<Settings>,
    /// Multi-node mode (Redis); None on a single node.
    cluster: Option<Arc<Cluster>>,
    limits: limits::Limits,
    presence: presence::Presence,
    typing: presence::Typing,
    /// Rooms known to have no member with a chosen notification level.
    levels: NoLevels,
}

/// Remembers rooms where nobody chose a notification level, so a message there does
/// not ask the store. Setting a level forgets the room *before* writing; a reader
/// remembers a room only if no level was set anywhere while it read (the epoch), so
/// a stale "none" can never be remembered.
#[derive(Default)]
struct NoLevels {
    inner: parking_lot::Mutex<(u64, std::collections::HashSet<String>)>,
}

impl NoLevels {
    fn has_none(&self, room: &str) -> bool {
        self.inner.lock().1.contains(room)
    }
    fn epoch(&self) -> u64 {
        self.inner.lock().0
    }
    fn none_as_of(&self, room: &str, epoch: u64) {
        let mut g = self.inner.lock();
        if g.0 == epoch {
            g.1.insert(room.to_string());
        }
    }
    fn forget(&self, room: &str) {
        let mut g = self.inner.lock();
        g.0 += 1;
        g.1.remove(room);
    }
}

/// What a connection learns first (`ready`).
pub struct ReadyData {
    pub user: User,
    pub rooms: Vec<Room>,
    pub users: Vec<User>,
}

impl Chat {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        settings: Arc<Settings>,
        cluster: Option<Arc<Cluster>>,
    ) -> Arc<Chat> {
        Arc::new(Chat {
            cluster,
            limits: limits::Limits::new(&settings),
            presence: presence::Presence::default(),
            typing: presence::Typing::default(),
            levels: NoLevels::default(),
            store,
            hub,
            settings,
        })
    }

    /// First-start setup: the "General" room exists.
    pub async fn bootstrap(&self) -> anyhow::Result<()> {
        if self.store.default_room().await?.is_none() {
            let now = crate::util::now_ms();
            self.store
                .create_room(
                    crate::store::NewRoom {
                        id: crate::util::new_id(),
                        name: "General".into(),
                        topic: "Say hello!".into(),
                        kind: RoomKind::Public,
                        password_hash: None,
                        guests_allowed: true,
                        starts_at: None,
                        ends_at: None,
                        member_limit: None,
                        created_by: None,
                        created_at: now,
                        is_default: true,
                    },
                    None,
                )
                .await?;
            tracing::info!("created the General room");
        }
        Ok(())
    }

    /// Background upkeep: forgets idle rate-limit keys, removes unsent uploads.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let chat = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(chat) = chat.upgrade() else { break };
                chat.limits.cleanup();
                if n.is_multiple_of(10) {
                    chat.cleanup_unsent().await;
                }
                n += 1;
            }
        });
    }

    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Applies what other nodes publish, until the bus closes.
    pub fn spawn_cluster_inbound(
        self: &Arc<Self>,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Inbound>,
    ) {
        let chat = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Inbound::Remote(Remote::Typing { room, user, active }) => {
                        chat.apply_typing(&room, &user, active)
                    }
                    Inbound::Remote(Remote::Presence {
                        user,
                        status,
                        last_seen,
                    }) => chat.remote_presence(&user, &status, last_seen),
                    Inbound::Remote(op) => chat.hub.apply_remote(op),
                    Inbound::Connected => {
                        chat.hub.resync();
                        chat.resync_presence().await;
                    }
                    Inbound::Offline(users) => chat.reaped(users).await,
                }
            }
        });
    }

    /// A user as others see them, with presence.
    pub fn user_with_presence(&self, u: &UserRecord) -> User {
        let (status, seen) = self.presence.status(u);
        User::from_record(u).with_presence(&status, seen)
    }

    pub fn is_small(&self, room: &RoomRecord) -> bool {
        room.kind == RoomKind::Dm || room.member_count <= self.settings.large_room_threshold
    }

    pub async fn ready(&self, user: &UserRecord) -> Result<ReadyData> {
        let joined = self.store.joined_rooms(&user.id).await?;
        let rooms = joined
            .iter()
            .map(|j| Room::for_member(&j.room, &j.member, j.unread_count, j.mention_count))
            .collect();
        let users = self
            .store
            .neighbours(&user.id, self.settings.large_room_threshold)
            .await?
            .iter()
            .map(|u| self.user_with_presence(u))
            .collect();
        Ok(ReadyData {
            user: self.user_with_presence(user),
            rooms,
            users,
        })
    }

    /// Room ids a user belongs to, for subscribing a new connection.
    pub async fn room_ids(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .joined_rooms(user_id)
            .await?
            .into_iter()
            .map(|j| j.room.id)
            .collect())
    }

    /// Tells everyone who shares a room with the user about their new profile.
    async fn broadcast_user(&self, user: &UserRecord) -> Result<()> {
        let rooms = self.room_ids(&user.id).await?;
        let frame = Event::UserUpdated {
            user: &self.user_with_presence(user),
        }
        .frame();
        self.hub
            .publish_rooms_once(rooms.iter().map(String::as_str), &frame);
        self.hub.publish_user(&user.id, &frame);
        Ok(())
    }
}
