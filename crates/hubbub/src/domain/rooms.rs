//! Rooms and membership: visibility, joining (passwords, limits, guests), invites,
//! time boxes, roles.

use super::error::{Error, OrNotFound, Result};
use super::{Chat, auth, validate};
use crate::model::{Member, Room};
use crate::store::{
    MemberRecord, NewRoom, Role, RoomKind, RoomPatch, RoomRecord, StoreError, UserKind, UserRecord,
};
use crate::util::{new_id, now_ms, parse_rfc3339};
use crate::wire::Event;

/// Room creation input (REST body).
#[derive(Debug, Default, serde::Deserialize)]
pub struct CreateRoom {
    pub name: String,
    pub topic: Option<String>,
    pub kind: Option<String>,
    pub password: Option<String>,
    pub guests_allowed: Option<bool>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub member_limit: Option<i64>,
}

/// Room update input: absent fields stay; `null` clears optional ones.
#[derive(Debug, Default, serde::Deserialize)]
pub struct UpdateRoom {
    pub name: Option<String>,
    pub topic: Option<String>,
    #[serde(default, with = "double_option")]
    pub password: Option<Option<String>>,
    pub guests_allowed: Option<bool>,
    #[serde(default, with = "double_option")]
    pub starts_at: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub ends_at: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub member_limit: Option<Option<i64>>,
}

/// Distinguishes an absent field (None) from an explicit null (Some(None)).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn parse_time(field: &'static str, s: &str) -> Result<i64> {
    parse_rfc3339(s)
        .ok_or_else(|| Error::invalid(field, format!("{field} must be an RFC 3339 time")))
}

fn room_password(p: &str) -> Result<String> {
    if p.is_empty() || p.chars().count() > 128 {
        return Err(Error::invalid(
            "password",
            "room password must be 1 to 128 characters",
        ));
    }
    Ok(p.to_string())
}

fn member_limit(n: i64) -> Result<i64> {
    if !(1..=1_000_000).contains(&n) {
        return Err(Error::invalid(
            "member_limit",
            "member_limit must be between 1 and 1000000",
        ));
    }
    Ok(n)
}

fn check_window(starts_at: Option<i64>, ends_at: Option<i64>) -> Result<()> {
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        return Err(Error::invalid("ends_at", "ends_at must be after starts_at"));
    }
    Ok(())
}

impl Chat {
    /// The caller's membership, if any. Server admins act as owners everywhere.
    pub(crate) async fn member_of(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<MemberRecord>> {
        match self.store.membership(room_id, user_id).await {
            Ok(m) => Ok(Some(m)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The effective role of a user in a room (None: not a member and not an admin).
    pub(crate) fn effective_role(user: &UserRecord, member: Option<&MemberRecord>) -> Option<Role> {
        if user.is_admin {
            return Some(Role::Owner);
        }
        member.map(|m| m.role)
    }

    /// Loads a room the user may see: members see everything they belong to; others
    /// see public rooms only (private rooms and DMs are `not_found` to outsiders).
    pub(crate) async fn visible_room(
        &self,
        user: &UserRecord,
        room_id: &str,
    ) -> Result<(RoomRecord, Option<MemberRecord>)> {
        let (room, member) = self
            .store
            .room_with_member(room_id, &user.id)
            .await
            .or_not_found("room")?;
        if member.is_none() && room.kind != RoomKind::Public && !user.is_admin {
            return Err(Error::not_found("room"));
        }
        Ok((room, member))
    }

    /// A room the user is a member of: `visible_room`, and forbidden to others.
    pub(crate) async fn joined_room(
        &self,
        user: &UserRecord,
        room_id: &str,
    ) -> Result<(RoomRecord, MemberRecord)> {
        let (room, member) = self.visible_room(user, room_id).await?;
        Ok((room, Self::as_member(member)?))
    }

    /// The membership, or forbidden for someone who is not a member.
    pub(crate) fn as_member(member: Option<MemberRecord>) -> Result<MemberRecord> {
        member.ok_or_else(|| Error::forbidden("you are not a member of this room"))
    }

    /// Like `visible_room`, but reading also needs guests to be allowed in.
    pub(crate) async fn readable_room(
        &self,
        user: &UserRecord,
        room_id: &str,
    ) -> Result<(RoomRecord, Option<MemberRecord>)> {
        let (room, member) = self.visible_room(user, room_id).await?;
        if member.is_none() && user.kind == UserKind::Guest && !room.guests_allowed {
            return Err(Error::forbidden("guests are not allowed in this room"));
        }
        Ok((room, member))
    }

    /// The room must be open for posting by this member (time boxes).
    pub(crate) fn check_open(
        user: &UserRecord,
        room: &RoomRecord,
        member: &MemberRecord,
    ) -> Result<()> {
        let privileged = user.is_admin || matches!(member.role, Role::Owner | Role::Admin);
        if privileged {
            return Ok(());
        }
        let now = now_ms();
        if room.starts_at.is_some_and(|s| now < s) {
            return Err(Error::RoomNotOpen);
        }
        if room.ends_at.is_some_and(|e| now >= e) {
            return Err(Error::RoomClosed);
        }
        Ok(())
    }

    pub async fn create_room(&self, user: &UserRecord, req: CreateRoom) -> Result<Room> {
        if user.kind != UserKind::User {
            return Err(Error::forbidden("only accounts can create rooms"));
        }
        let name = validate::room_name(&req.name)?;
        let topic = validate::topic(req.topic.as_deref().unwrap_or(""))?;
        let kind = match req.kind.as_deref().unwrap_or("public") {
            "public" => RoomKind::Public,
            "private" => RoomKind::Private,
            "dm" => {
                return Err(Error::invalid(
                    "kind",
                    "use POST /api/v1/dms for direct messages",
                ));
            }
            _ => return Err(Error::invalid("kind", "kind must be public or private")),
        };
        let password = req
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(room_password)
            .transpose()?;
        let starts_at = req
            .starts_at
            .as_deref()
            .map(|s| parse_time("starts_at", s))
            .transpose()?;
        let ends_at = req
            .ends_at
            .as_deref()
            .map(|s| parse_time("ends_at", s))
            .transpose()?;
        check_window(starts_at, ends_at)?;
        let limit = req.member_limit.map(member_limit).transpose()?;
        self.limits.write(&user.id)?;
        let password_hash = match password {
            Some(p) => Some(auth::hash_password(p).await?),
            None => None,
        };
        let room = self
            .store
            .create_room(
                NewRoom {
                    id: new_id(),
                    name,
                    topic,
                    kind,
                    password_hash,
                    guests_allowed: req.guests_allowed.unwrap_or(false),
                    starts_at,
                    ends_at,
                    member_limit: limit,
                    created_by: Some(user.id.clone()),
                    created_at: now_ms(),
                    is_default: false,
                },
                Some(&user.id),
            )
            .await?;
        let member = self.store.membership(&room.id, &user.id).await?;
        self.hub.subscribe_user(&user.id, &room.id);
        self.hub.seed(&room.id, room.last_pos);
        let view = Room::for_member(&room, &member, 0, 0);
        self.hub
            .publish_user(&user.id, &Event::RoomUpdated { room: &view }.frame());
        tracing::info!(room = %room.id, user = %user.id, "room created");
        Ok(view)
    }

    /// Rooms the caller belongs to (with counters) and public rooms they may join.
    pub async fn rooms_for(&self, user: &UserRecord) -> Result<Vec<Room>> {
        let joined = self.store.joined_rooms(&user.id).await?;
        let mut out: Vec<Room> = joined
            .iter()
            .map(|j| Room::for_member(&j.room, &j.member, j.unread_count, j.mention_count))
            .collect();
        for r in self.store.public_rooms().await? {
            if joined.iter().any(|j| j.room.id == r.id) {
                continue;
            }
            if user.kind == UserKind::Guest && !r.guests_allowed {
                continue;
            }
            out.push(Room::from_record(&r));
        }
        Ok(out)
    }

    pub async fn room(&self, user: &UserRecord, room_id: &str) -> Result<Room> {
        let (room, member) = self.visible_room(user, room_id).await?;
        self.room_view(&room, member.as_ref()).await
    }

    async fn room_view(&self, room: &RoomRecord, member: Option<&MemberRecord>) -> Result<Room> {
        Ok(match member {
            Some(m) => {
                let j = self
                    .store
                    .joined_rooms(&m.user_id)
                    .await?
                    .into_iter()
                    .find(|j| j.room.id == room.id);
                match j {
                    Some(j) => {
                        Room::for_member(&j.room, &j.member, j.unread_count, j.mention_count)
                    }
                    None => Room::from_record(room),
                }
            }
            None => Room::from_record(room),
        })
    }

    pub async fn update_room(
        &self,
        user: &UserRecord,
        room_id: &str,
        req: UpdateRoom,
    ) -> Result<Room> {
        let (room, member) = self.visible_room(user, room_id).await?;
        let role = Self::effective_role(user, member.as_ref());
        if role.is_none_or(|r| r.rank() < Role::Admin.rank()) {
            return Err(Error::forbidden("only room admins can change the room"));
        }
        let mut patch = RoomPatch {
            name: req.name.as_deref().map(validate::room_name).transpose()?,
            topic: req.topic.as_deref().map(validate::topic).transpose()?,
            guests_allowed: req.guests_allowed,
            ..Default::default()
        };
        if let Some(t) = &req.starts_at {
            patch.starts_at = Some(
                t.as_deref()
                    .map(|s| parse_time("starts_at", s))
                    .transpose()?,
            );
        }
        if let Some(t) = &req.ends_at {
            patch.ends_at = Some(t.as_deref().map(|s| parse_time("ends_at", s)).transpose()?);
        }
        check_window(
            patch.starts_at.unwrap_or(room.starts_at),
            patch.ends_at.unwrap_or(room.ends_at),
        )?;
        if let Some(l) = req.member_limit {
            patch.member_limit = Some(l.map(member_limit).transpose()?);
        }
        if let Some(p) = req.password {
            patch.password_hash = Some(match p.filter(|p| !p.is_empty()) {
                Some(p) => Some(auth::hash_password(room_password(&p)?).await?),
                None => None,
            });
        }
        self.limits.write(&user.id)?;
        let updated = self.store.update_room(room_id, patch).await?;
        let view = Room::from_record(&updated);
        self.hub
            .publish_room(room_id, &Event::RoomUpdated { room: &view }.frame());
        self.room_view(&updated, member.as_ref()).await
    }

    pub async fn delete_room(&self, user: &UserRecord, room_id: &str) -> Result<()> {
        let (room, member) = self.visible_room(user, room_id).await?;
        if Self::effective_role(user, member.as_ref()) != Some(Role::Owner) {
            return Err(Error::forbidden("only the room's owner can delete it"));
        }
        if room.is_default {
            return Err(Error::forbidden("the default room cannot be deleted"));
        }
        // The room's files go with it: collect them before the rows disappear.
        let mut files = Vec::new();
        let mut seq = 0;
        loop {
            let page = self
                .store
                .history(room_id, crate::store::HistoryCursor::After(seq), 500)
                .await?;
            for m in page.messages {
                seq = m.seq;
                files.extend(m.attachments);
            }
            if !page.has_more {
                break;
            }
        }
        self.store.delete_room(room_id).await?;
        self.remove_files(&files).await;
        let frame = Event::RoomRemoved {
            room_id,
            reason: "deleted",
        }
        .frame();
        self.hub.publish_room(room_id, &frame);
        self.hub.drop_room(room_id);
        tracing::info!(room = %room_id, user = %user.id, "room deleted");
        Ok(())
    }

    pub async fn join_room(
        &self,
        user: &UserRecord,
        room_id: &str,
        password: Option<&str>,
    ) -> Result<Room> {
        let (room, member) = self.visible_room(user, room_id).await?;
        if let Some(m) = member {
            return self.room_view(&room, Some(&m)).await;
        }
        if room.kind != RoomKind::Public && !user.is_admin {
            // Private rooms are joined by invitation only.
            return Err(Error::not_found("room"));
        }
        if user.kind == UserKind::Guest && !room.guests_allowed {
            return Err(Error::forbidden("guests are not allowed in this room"));
        }
        if let Some(hash) = &room.password_hash {
            let given = password.unwrap_or("");
            if given.is_empty() || !auth::verify_password(given.to_string(), hash.clone()).await {
                return Err(Error::forbidden("wrong or missing room password"));
            }
        }
        self.store
            .add_member(room_id, &user.id, Role::Member, now_ms())
            .await?;
        self.after_join(room_id, user).await?;
        let member = self.store.membership(room_id, &user.id).await?;
        let room = self.store.room(room_id).await?;
        self.room_view(&room, Some(&member)).await
    }

    /// After a user became a member: subscribe their connections, tell them and (in
    /// small rooms) the other members.
    pub(crate) async fn after_join(&self, room_id: &str, user: &UserRecord) -> Result<()> {
        // Subscribe first, then read: the read is the baseline the new member has.
        self.hub.subscribe_user(&user.id, room_id);
        let room = self.store.room(room_id).await?;
        let member = self.store.membership(room_id, &user.id).await?;
        self.hub.seed(room_id, room.last_pos);
        let view = self.room_view(&room, Some(&member)).await?;
        self.hub
            .publish_user(&user.id, &Event::RoomUpdated { room: &view }.frame());
        if self.is_small(&room) {
            let who = self.user_with_presence(user);
            self.hub.publish_room(
                room_id,
                &Event::MemberJoined {
                    room_id,
                    user: &who,
                }
                .frame(),
            );
        }
        Ok(())
    }

    pub async fn leave_room(&self, user: &UserRecord, room_id: &str) -> Result<()> {
        let room = self.store.room(room_id).await.or_not_found("room")?;
        if !self.store.remove_member(room_id, &user.id).await? {
            return Err(Error::not_found("membership"));
        }
        self.hub.publish_user(
            &user.id,
            &Event::RoomRemoved {
                room_id,
                reason: "left",
            }
            .frame(),
        );
        self.hub.unsubscribe_user(&user.id, room_id);
        if self.is_small(&room) {
            let who = self.user_with_presence(user);
            self.hub.publish_room(
                room_id,
                &Event::MemberLeft {
                    room_id,
                    user: &who,
                }
                .frame(),
            );
        }
        Ok(())
    }

    pub async fn invite(&self, user: &UserRecord, room_id: &str, target_id: &str) -> Result<()> {
        let (room, member) = self.visible_room(user, room_id).await?;
        if member.is_none() && !user.is_admin {
            return Err(Error::forbidden("only members can invite"));
        }
        if room.kind == RoomKind::Dm {
            return Err(Error::invalid("room_id", "DMs take no invitations"));
        }
        let target = match self.store.user(target_id).await {
            Ok(t) => t,
            Err(StoreError::NotFound) => return Err(Error::invalid("user_id", "no such user")),
            Err(e) => return Err(e.into()),
        };
        if target.kind == UserKind::Guest && !room.guests_allowed {
            return Err(Error::forbidden("guests are not allowed in this room"));
        }
        self.limits.write(&user.id)?;
        if self
            .store
            .add_member(room_id, &target.id, Role::Member, now_ms())
            .await?
        {
            self.after_join(room_id, &target).await?;
        }
        Ok(())
    }

    pub async fn members(
        &self,
        user: &UserRecord,
        room_id: &str,
        online_only: bool,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<Member>> {
        let (room, member) = self.readable_room(user, room_id).await?;
        if member.is_none() && room.kind != RoomKind::Public {
            return Err(Error::not_found("room"));
        }
        let limit = limit.unwrap_or(1000).clamp(1, 1000);
        let mut out = Vec::new();
        let mut cursor = after.map(str::to_string);
        // With `online=true` keep paging until the page is full or the list ends.
        loop {
            let page = self
                .store
                .members(room_id, cursor.as_deref(), limit)
                .await?;
            let n = page.len() as i64;
            for e in &page {
                let u = self.user_with_presence(&e.user);
                if online_only && u.status.as_deref() == Some("offline") {
                    continue;
                }
                out.push(Member {
                    user: u,
                    role: e.member.role.as_str().to_string(),
                    joined_at: crate::util::rfc3339(e.member.joined_at),
                    last_read_seq: e.member.last_read_seq,
                });
                if out.len() as i64 >= limit {
                    return Ok(out);
                }
            }
            if n < limit || !online_only {
                return Ok(out);
            }
            cursor = page.last().map(|e| e.user.id.clone());
        }
    }
}
