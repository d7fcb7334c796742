//! Presence (online while any connection is open, offline after a grace period so a
//! page reload does not flap) and typing indicators (expire 6 s after the last
//! `typing active`). Both are ephemeral: memory only, never the database, except a
//! user's `last_seen_at` when they go offline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use super::error::{Error, Result};
use super::Chat;
use crate::store::UserRecord;
use crate::util::{now_ms, rfc3339};
use crate::wire::Event;

pub const TYPING_TTL: Duration = Duration::from_secs(6);

#[derive(Debug, Default)]
struct Entry {
    conns: usize,
    online: bool,
    status: &'static str,
    /// Bumped on every connect/disconnect; a pending offline timer only fires if the
    /// generation it saw is still current.
    generation: u64,
    last_seen: Option<i64>,
}

#[derive(Default)]
pub struct Presence {
    users: DashMap<String, Entry>,
}

impl Presence {
    /// (status, last_seen_at ms) of a user as others should see it.
    pub fn status(&self, u: &UserRecord) -> (String, Option<i64>) {
        match self.users.get(&u.id) {
            Some(e) if e.online => (e.status.to_string(), None),
            Some(e) => ("offline".into(), e.last_seen.or(u.last_seen_at)),
            None => ("offline".into(), u.last_seen_at),
        }
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
        let announce = {
            let mut e = self.presence.users.entry(user.id.clone()).or_default();
            e.conns += 1;
            e.generation += 1;
            if e.online {
                false
            } else {
                e.online = true;
                e.status = "online";
                true
            }
        };
        if announce {
            self.broadcast_presence(&user.id, "online", None).await;
        }
    }

    /// A connection of `user_id` closed; after the grace period with no connection
    /// left, the user goes offline.
    pub fn disconnected(self: &Arc<Self>, user_id: &str) {
        let generation = {
            let Some(mut e) = self.presence.users.get_mut(user_id) else {
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
            let now = now_ms();
            let gone = {
                let Some(mut e) = chat.presence.users.get_mut(&user_id) else {
                    return;
                };
                if e.conns == 0 && e.generation == generation && e.online {
                    e.online = false;
                    e.last_seen = Some(now);
                    true
                } else {
                    false
                }
            };
            if gone {
                if let Err(e) = chat.store.set_last_seen(&user_id, now).await {
                    tracing::warn!(user = %user_id, error = %e, "cannot store last_seen_at");
                }
                chat.broadcast_presence(&user_id, "offline", Some(now)).await;
            }
        });
    }

    /// The user sets online / away / dnd.
    pub async fn set_presence(&self, user: &UserRecord, status: &str) -> Result<()> {
        let status: &'static str = match status {
            "online" => "online",
            "away" => "away",
            "dnd" => "dnd",
            _ => return Err(Error::invalid("status", "status must be online, away or dnd")),
        };
        self.limits.write(&user.id)?;
        let changed = match self.presence.users.get_mut(&user.id) {
            Some(mut e) if e.online && e.status != status => {
                e.status = status;
                true
            }
            _ => false,
        };
        if changed {
            self.broadcast_presence(&user.id, status, None).await;
        }
        Ok(())
    }

    /// Presence goes to the user's small rooms (and DMs) and the user's own devices.
    async fn broadcast_presence(&self, user_id: &str, status: &str, last_seen: Option<i64>) {
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
        let small = rooms.iter().filter(|j| self.is_small(&j.room)).map(|j| j.room.id.as_str());
        self.hub.publish_rooms_once(small, &frame);
        tracing::debug!(user = %user_id, status, "presence");
    }

    /// `typing active|inactive` from a member.
    pub async fn typing(self: &Arc<Self>, user: &UserRecord, room_id: &str, active: bool) -> Result<()> {
        let (_, member) = self.visible_room(user, room_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("you are not a member of this room"));
        }
        self.limits.write(&user.id)?;
        if !active {
            self.stop_typing(room_id, &user.id);
            return Ok(());
        }
        let generation = self.typing.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let added = {
            let mut list = self.typing.rooms.entry(room_id.to_string()).or_default();
            match list.iter_mut().find(|(u, _)| *u == user.id) {
                Some(entry) => {
                    entry.1 = generation;
                    false
                }
                None => {
                    list.push((user.id.clone(), generation));
                    true
                }
            }
        };
        if added {
            self.broadcast_typing(room_id);
        }
        let chat = self.clone();
        let (room_id, user_id) = (room_id.to_string(), user.id.clone());
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
        Ok(())
    }

    pub(crate) fn stop_typing(&self, room_id: &str, user_id: &str) {
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
        self.hub.publish_room_by_user(room_id, |receiver| {
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
