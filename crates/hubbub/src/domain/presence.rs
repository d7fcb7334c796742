//! Presence (online while any connection is open, offline after a grace period so a
//! page reload does not flap) and typing indicators (expire 6 s after the last
//! `typing active`). Both are ephemeral: memory only, never the database, except a
//! user's `last_seen_at` when they go offline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use super::Chat;
use super::error::{Error, Result};
use crate::hub::Remote;
use crate::store::UserRecord;
use crate::util::{now_ms, rfc3339};
use crate::wire::Event;

pub const TYPING_TTL: Duration = Duration::from_secs(6);

/// This node's connections of a user.
#[derive(Debug, Default)]
struct Local {
    conns: usize,
    /// Bumped on every connect/disconnect; a pending offline timer only fires if the
    /// generation it saw is still current.
    generation: u64,
}

/// What everyone should see of a user (cluster-wide in cluster mode).
#[derive(Debug, Clone)]
struct View {
    online: bool,
    status: String,
    last_seen: Option<i64>,
}

#[derive(Default)]
pub struct Presence {
    local: DashMap<String, Local>,
    view: DashMap<String, View>,
}

impl Presence {
    /// (status, last_seen_at ms) of a user as others should see it.
    pub fn status(&self, u: &UserRecord) -> (String, Option<i64>) {
        match self.view.get(&u.id) {
            Some(v) if v.online => (v.status.clone(), None),
            Some(v) => ("offline".into(), v.last_seen.or(u.last_seen_at)),
            None => ("offline".into(), u.last_seen_at),
        }
    }

    fn is_online(&self, user_id: &str) -> bool {
        self.view.get(user_id).is_some_and(|v| v.online)
    }

    fn set_view(&self, user_id: &str, status: &str, last_seen: Option<i64>) {
        self.view.insert(
            user_id.to_string(),
            View {
                online: status != "offline",
                status: status.to_string(),
                last_seen,
            },
        );
    }
}

#[derive(Default)]
pub struct Typing {
    rooms: DashMap<String, Vec<(String, u64)>>,
    generation: AtomicU64,
}

impl Chat {
    /// A connection of `user` opened.
    pub async fn connected(self: &Arc<Self>, user: &UserRecord) {
        let (first_here, count) = {
            let mut e = self.presence.local.entry(user.id.clone()).or_default();
            e.conns += 1;
            e.generation += 1;
            (e.conns == 1, e.conns)
        };
        if let (Some(cluster), true) = (self.cluster(), first_here)
            && let Err(e) = cluster.hold(&user.id, count).await
        {
            tracing::warn!(user = %user.id, error = %e, "cannot record presence in Redis");
        }
        if !self.presence.is_online(&user.id) {
            self.announce(&user.id, "online", None).await;
        }
    }

    /// A connection of `user_id` closed; after the grace period with no connection
    /// left (on any node), the user goes offline.
    pub fn disconnected(self: &Arc<Self>, user_id: &str) {
        let generation = {
            let Some(mut e) = self.presence.local.get_mut(user_id) else {
                return;
            };
            e.conns = e.conns.saturating_sub(1);
            e.generation += 1;
            if e.conns > 0 {
                return;
            }
            e.generation
        };
        let chat = self.clone();
        let user_id = user_id.to_string();
        let grace = Duration::from_millis(self.settings.presence_grace_ms);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let still_gone = chat
                .presence
                .local
                .remove_if(&user_id, |_, e| e.conns == 0 && e.generation == generation)
                .is_some();
            if !still_gone {
                return;
            }
            let elsewhere = match chat.cluster() {
                Some(cluster) => match cluster.release(&user_id).await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(user = %user_id, error = %e, "cannot update presence in Redis");
                        false
                    }
                },
                None => false,
            };
            if !elsewhere && chat.presence.is_online(&user_id) {
                chat.went_offline(&user_id).await;
            }
        });
    }

    /// Records and announces that a user has no connection left anywhere.
    pub(crate) async fn went_offline(&self, user_id: &str) {
        let now = now_ms();
        if let Err(e) = self.store.set_last_seen(user_id, now).await {
            tracing::warn!(user = %user_id, error = %e, "cannot store last_seen_at");
        }
        self.announce(user_id, "offline", Some(now)).await;
    }

    /// Users a dead node held who are connected nowhere now.
    pub(crate) async fn reaped(&self, users: Vec<String>) {
        for u in users {
            let here = self.presence.local.get(&u).is_some_and(|e| e.conns > 0);
            if !here && self.presence.is_online(&u) {
                self.went_offline(&u).await;
            }
        }
    }

    /// Another node announced a presence change.
    pub(crate) fn remote_presence(&self, user_id: &str, status: &str, last_seen: Option<i64>) {
        self.presence.set_view(user_id, status, last_seen);
    }

    /// Cluster mode: (re)load who is online anywhere, and re-record our own users
    /// (Redis may have restarted empty).
    pub(crate) async fn resync_presence(&self) {
        let Some(cluster) = self.cluster() else {
            return;
        };
        for (user, count) in self.hub.local_users() {
            if let Err(e) = cluster.hold(&user, count).await {
                tracing::warn!(error = %e, "cannot re-record presence");
                return;
            }
        }
        match cluster.online_users().await {
            Ok(users) => {
                for (u, status) in users {
                    self.presence.set_view(&u, &status, None);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot load cluster presence"),
        }
    }

    /// The user sets online / away / dnd.
    pub async fn set_presence(&self, user: &UserRecord, status: &str) -> Result<()> {
        let status: &'static str = match status {
            "online" => "online",
            "away" => "away",
            "dnd" => "dnd",
            _ => {
                return Err(Error::invalid(
                    "status",
                    "status must be online, away or dnd",
                ));
            }
        };
        self.limits.write(&user.id)?;
        let changed = self
            .presence
            .view
            .get(&user.id)
            .is_some_and(|v| v.online && v.status != status);
        if changed {
            if let Some(cluster) = self.cluster() {
                cluster
                    .set_status(&user.id, status)
                    .await
                    .map_err(Error::Internal)?;
            }
            self.announce(&user.id, status, None).await;
        }
        Ok(())
    }

    /// Presence goes to the user's small rooms (and DMs), on every node.
    async fn announce(&self, user_id: &str, status: &str, last_seen: Option<i64>) {
        self.presence.set_view(user_id, status, last_seen);
        self.hub.send_remote(Remote::Presence {
            user: Arc::from(user_id),
            status: Arc::from(status),
            last_seen,
        });
        let rooms = match self.store.joined_rooms(user_id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(user = %user_id, error = %e, "cannot load rooms for presence");
                return;
            }
        };
        let seen = last_seen.map(rfc3339);
        let frame = Event::Presence {
            user_id,
            status,
            last_seen_at: seen.as_deref(),
        }
        .frame();
        let small = rooms
            .iter()
            .filter(|j| self.is_small(&j.room))
            .map(|j| j.room.id.as_str());
        self.hub.publish_rooms_once(small, &frame);
        tracing::debug!(user = %user_id, status, "presence");
    }

    /// `typing active|inactive` from a member.
    pub async fn typing(
        self: &Arc<Self>,
        user: &UserRecord,
        room_id: &str,
        active: bool,
    ) -> Result<()> {
        self.joined_room(user, room_id).await?;
        self.limits.write(&user.id)?;
        self.hub.send_remote(Remote::Typing {
            room: Arc::from(room_id),
            user: Arc::from(user.id.as_str()),
            active,
        });
        self.apply_typing(room_id, &user.id, active);
        Ok(())
    }

    /// Updates this node's view of who is typing (from a local user or another node)
    /// and tells this node's connections.
    pub(crate) fn apply_typing(self: &Arc<Self>, room_id: &str, user_id: &str, active: bool) {
        if !active {
            self.stop_typing(room_id, user_id);
            return;
        }
        let generation = self.typing.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let added = {
            let mut list = self.typing.rooms.entry(room_id.to_string()).or_default();
            match list.iter_mut().find(|(u, _)| u == user_id) {
                Some(entry) => {
                    entry.1 = generation;
                    false
                }
                None => {
                    list.push((user_id.to_string(), generation));
                    true
                }
            }
        };
        if added {
            self.broadcast_typing(room_id);
        }
        let chat = self.clone();
        let (room_id, user_id) = (room_id.to_string(), user_id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(TYPING_TTL).await;
            let expired = match chat.typing.rooms.get_mut(&room_id) {
                Some(mut list) => {
                    let before = list.len();
                    list.retain(|(u, g)| !(*u == user_id && *g == generation));
                    list.len() != before
                }
                None => false,
            };
            if expired {
                chat.broadcast_typing(&room_id);
            }
        });
    }

    /// The user sent a message: they are no longer typing, on any node.
    pub(crate) fn typing_done(&self, room_id: &str, user_id: &str) {
        if self
            .typing
            .rooms
            .get(room_id)
            .is_some_and(|l| l.iter().any(|(u, _)| u == user_id))
        {
            self.hub.send_remote(Remote::Typing {
                room: Arc::from(room_id),
                user: Arc::from(user_id),
                active: false,
            });
            self.stop_typing(room_id, user_id);
        }
    }

    fn stop_typing(&self, room_id: &str, user_id: &str) {
        let removed = match self.typing.rooms.get_mut(room_id) {
            Some(mut list) => {
                let before = list.len();
                list.retain(|(u, _)| u != user_id);
                list.len() != before
            }
            None => false,
        };
        if removed {
            self.broadcast_typing(room_id);
        }
    }

    /// Everyone gets the list of who is typing, never including themselves.
    fn broadcast_typing(&self, room_id: &str) {
        let typing: Vec<String> = self
            .typing
            .rooms
            .get(room_id)
            .map(|l| l.iter().map(|(u, _)| u.clone()).collect())
            .unwrap_or_default();
        let all: Vec<&str> = typing.iter().map(String::as_str).collect();
        let shared = Event::Typing {
            room_id,
            user_ids: &all,
        }
        .frame();
        self.hub.deliver_room_by_user(room_id, |receiver| {
            if all.contains(&receiver) {
                let others: Vec<&str> = all.iter().copied().filter(|u| *u != receiver).collect();
                Some(
                    Event::Typing {
                        room_id,
                        user_ids: &others,
                    }
                    .frame(),
                )
            } else {
                Some(shared.clone())
            }
        });
    }
}
