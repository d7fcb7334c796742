//! Rich messaging: reactions, pins, threads, mentions and notifications, DMs, search.

use std::collections::HashMap;

use super::error::{Error, OrNotFound, Result};
use super::{Chat, validate};
use crate::model::{Message, Room, SearchResult};
use crate::store::{MessageRecord, NewRoom, Role, RoomKind, RoomRecord, StoreError, UserRecord};
use crate::util::{new_id, now_ms};
use crate::wire::{Event, ReactionChange};

/// Who a message mentions, and how to highlight each `@name`.
#[derive(Debug, Default)]
pub struct Mentions {
    /// Mentioned user ids (deduplicated, author excluded).
    pub users: Vec<String>,
    /// Lower-cased `@name` → user id, `here` or `room`.
    pub highlight: HashMap<String, String>,
}

const NOTIFY_LEVELS: [&str; 3] = ["all", "mentions", "none"];

impl Chat {
    /// Resolves the `@names` of a body against the room's members: `@username` of a
    /// member, `@here` (members not offline), `@room` (everyone; moderators and up
    /// only — for others it stays plain text).
    pub(crate) async fn resolve_mentions(
        &self,
        author: &UserRecord,
        room: &RoomRecord,
        role: Option<Role>,
        body: &str,
    ) -> Result<Mentions> {
        let names = super::markdown::mentioned_names(body);
        let mut out = Mentions::default();
        if names.is_empty() {
            return Ok(out);
        }
        let may_room = role.is_some_and(|r| r.rank() >= Role::Moderator.rank());
        let wants_here = names.iter().any(|n| n == "here");
        let wants_room = may_room && names.iter().any(|n| n == "room");
        let add = |out: &mut Mentions, id: &str| {
            if id != author.id && !out.users.iter().any(|u| u == id) {
                out.users.push(id.to_string());
            }
        };
        for name in names
            .iter()
            .filter(|n| *n != "here" && *n != "room")
            .take(50)
        {
            let user = match self.store.user_by_name(name).await {
                Ok(u) => u,
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            };
            if self.member_of(&room.id, &user.id).await?.is_some() {
                out.highlight.insert(name.clone(), user.id.clone());
                add(&mut out, &user.id);
            }
        }
        if wants_here || wants_room {
            let mut after: Option<String> = None;
            loop {
                let page = self.store.members(&room.id, after.as_deref(), 1000).await?;
                for e in &page {
                    let online = self.presence.status(&e.user).0 != "offline";
                    if wants_room || online {
                        add(&mut out, &e.user.id);
                    }
                }
                if page.len() < 1000 {
                    break;
                }
                after = page.last().map(|e| e.user.id.clone());
            }
            if wants_here {
                out.highlight.insert("here".into(), "here".into());
            }
            if wants_room {
                out.highlight.insert("room".into(), "room".into());
            }
        }
        Ok(out)
    }

    /// Sends `notification` to whoever should hear about a new message: mentioned
    /// members (unless their level is `none`), members whose level is `all`, and in
    /// DMs every other participant (DMs default to `all`).
    pub(crate) async fn notify(&self, room: &RoomRecord, msg: &Message) -> Result<()> {
        let mut targets: Vec<String> = Vec::new();
        let default_level = if room.kind == RoomKind::Dm {
            "all"
        } else {
            "mentions"
        };
        if room.kind == RoomKind::Dm {
            let members = self.store.members(&room.id, None, 20).await?;
            let ids: Vec<String> = members.iter().map(|e| e.user.id.clone()).collect();
            for (u, level) in self.store.notification_levels(&room.id, Some(&ids)).await? {
                let level = level.as_deref().unwrap_or(default_level);
                if level == "all" || (level == "mentions" && msg.mentions.contains(&u)) {
                    targets.push(u);
                }
            }
        } else {
            if !msg.mentions.is_empty() {
                for (u, level) in self
                    .store
                    .notification_levels(&room.id, Some(&msg.mentions))
                    .await?
                {
                    if level.as_deref().unwrap_or(default_level) != "none" {
                        targets.push(u);
                    }
                }
            }
            for (u, level) in self.chosen_levels(&room.id).await? {
                if level.as_deref() == Some("all") && !targets.contains(&u) {
                    targets.push(u);
                }
            }
        }
        targets.retain(|u| *u != msg.author.id);
        if targets.is_empty() {
            return Ok(());
        }
        let frame = Event::Notification {
            room_id: &room.id,
            message: msg,
        }
        .frame();
        for u in &targets {
            self.hub.publish_user(u, &frame);
        }
        Ok(())
    }

    pub async fn react(
        &self,
        user: &UserRecord,
        message_id: &str,
        emoji: &str,
        add: bool,
    ) -> Result<Message> {
        let emoji = validate::emoji(emoji)?;
        let (msg, room, member) = self.visible_message(user, message_id).await?;
        if msg.deleted {
            return Err(Error::not_found("message"));
        }
        let member = Self::as_member(member)?;
        Self::check_open(user, &room, &member)?;
        self.limits.write(&user.id)?;
        let changed = self
            .store
            .react(message_id, &user.id, &emoji, add, now_ms())
            .await
            .or_not_found("message")?;
        match changed {
            Some(rec) => {
                let change = ReactionChange {
                    user_id: user.id.clone(),
                    emoji,
                    add,
                };
                self.publish_update(&rec, Some(&change));
                Ok(Message::for_viewer(&rec, &user.id))
            }
            None => Ok(Message::for_viewer(&msg, &user.id)),
        }
    }

    /// Who reacted with what (for "who reacted" on hover): `[{emoji, users}]`.
    pub async fn reactions(
        &self,
        user: &UserRecord,
        message_id: &str,
    ) -> Result<Vec<(String, Vec<crate::model::User>)>> {
        let (msg, _, _) = self.visible_message(user, message_id).await?;
        let mut out = Vec::new();
        for r in &msg.reactions {
            let mut users = Vec::new();
            for id in &r.user_ids {
                if let Ok(u) = self.store.user(id).await {
                    users.push(crate::model::User::from_record(&u));
                }
            }
            out.push((r.emoji.clone(), users));
        }
        Ok(out)
    }

    pub async fn set_pinned(
        &self,
        user: &UserRecord,
        message_id: &str,
        pinned: bool,
    ) -> Result<Message> {
        let (msg, _room, member) = self.visible_message(user, message_id).await?;
        if msg.deleted {
            return Err(Error::not_found("message"));
        }
        let role = Self::effective_role(user, member.as_ref());
        if role.is_none_or(|r| r.rank() < Role::Moderator.rank()) {
            return Err(Error::forbidden("only moderators can pin messages"));
        }
        self.limits.write(&user.id)?;
        match self
            .store
            .set_pinned(message_id, pinned)
            .await
            .or_not_found("message")?
        {
            Some(rec) => {
                self.publish_update(&rec, None);
                Ok(Message::for_viewer(&rec, &user.id))
            }
            None => Ok(Message::for_viewer(&msg, &user.id)),
        }
    }

    pub async fn pins(&self, user: &UserRecord, room_id: &str) -> Result<Vec<Message>> {
        self.readable_room(user, room_id).await?;
        let pins = self.store.pins(room_id).await?;
        Ok(pins
            .iter()
            .map(|m| Message::for_viewer(m, &user.id))
            .collect())
    }

    /// A thread: the root first, then its replies in order (`after_seq` pages on).
    pub async fn thread(
        &self,
        user: &UserRecord,
        message_id: &str,
        after_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<Message>, bool)> {
        let limit = match limit {
            None => 100,
            Some(l) if l < 1 => return Err(Error::invalid("limit", "limit must be at least 1")),
            Some(l) => l.min(200),
        };
        let (msg, _, _) = self.visible_message(user, message_id).await?;
        let root = match &msg.thread_root {
            Some(r) => self.store.message(r).await.or_not_found("message")?,
            None => msg,
        };
        let page = self.store.thread(&root.id, after_seq, limit).await?;
        let mut out = Vec::with_capacity(page.messages.len() + 1);
        if after_seq.is_none() {
            out.push(Message::for_viewer(&root, &user.id));
        }
        out.extend(
            page.messages
                .iter()
                .map(|m| Message::for_viewer(m, &user.id)),
        );
        Ok((out, page.has_more))
    }

    pub async fn set_notification_level(
        &self,
        user: &UserRecord,
        room_id: &str,
        level: &str,
    ) -> Result<()> {
        if !NOTIFY_LEVELS.contains(&level) {
            return Err(Error::invalid(
                "level",
                "level must be all, mentions or none",
            ));
        }
        self.joined_room(user, room_id).await?;
        self.limits.write(&user.id)?;
        self.levels.forget(room_id);
        self.store
            .set_notification_level(room_id, &user.id, level)
            .await
            .or_not_found("membership")?;
        Ok(())
    }

    /// Members of a room who chose a notification level. Most rooms have none, and
    /// every message asks, so a single node remembers the rooms that have none.
    async fn chosen_levels(&self, room_id: &str) -> Result<Vec<(String, Option<String>)>> {
        if self.cluster.is_some() {
            // Another node may set a level at any time: always ask the store.
            return Ok(self.store.notification_levels(room_id, None).await?);
        }
        if self.levels.has_none(room_id) {
            return Ok(Vec::new());
        }
        let epoch = self.levels.epoch();
        let levels = self.store.notification_levels(room_id, None).await?;
        if levels.is_empty() {
            self.levels.none_as_of(room_id, epoch);
        }
        Ok(levels)
    }

    /// Finds or creates the DM room of the caller and `user_ids` (1 to 9 others).
    pub async fn open_dm(&self, user: &UserRecord, user_ids: &[String]) -> Result<Room> {
        if user_ids.is_empty() || user_ids.len() > 9 {
            return Err(Error::invalid(
                "user_ids",
                "user_ids must list 1 to 9 other people",
            ));
        }
        let mut others: Vec<UserRecord> = Vec::new();
        for id in user_ids {
            if *id == user.id {
                return Err(Error::invalid(
                    "user_ids",
                    "user_ids lists the other participants, not you",
                ));
            }
            if others.iter().any(|o| o.id == *id) {
                return Err(Error::invalid(
                    "user_ids",
                    "user_ids must not repeat anyone",
                ));
            }
            match self.store.user(id).await {
                Ok(u) => others.push(u),
                Err(StoreError::NotFound) => {
                    return Err(Error::invalid("user_ids", format!("no user with id {id}")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut ids: Vec<String> = others
            .iter()
            .map(|u| u.id.clone())
            .chain([user.id.clone()])
            .collect();
        ids.sort();
        let key = ids.join(",");
        if let Some(room) = self.store.dm_by_key(&key).await? {
            // Whoever left the DM comes back when it is opened again.
            for u in others.iter().chain([user]) {
                if self
                    .store
                    .add_member(&room.id, &u.id, Role::Member, now_ms())
                    .await?
                {
                    self.after_join(&room.id, u).await?;
                }
            }
            return self.room(user, &room.id).await;
        }
        self.limits.write(&user.id)?;
        let mut names: Vec<&str> = others
            .iter()
            .map(|u| u.username.as_str())
            .chain([user.username.as_str()])
            .collect();
        names.sort_unstable();
        let new = NewRoom {
            id: new_id(),
            name: names.join(", "),
            topic: String::new(),
            kind: RoomKind::Dm,
            password_hash: None,
            guests_allowed: true,
            starts_at: None,
            ends_at: None,
            member_limit: None,
            created_by: Some(user.id.clone()),
            created_at: now_ms(),
            is_default: false,
        };
        match self.store.create_dm(new, &key, &ids).await {
            Ok(room) => {
                for u in others.iter().chain([user]) {
                    self.after_join(&room.id, u).await?;
                }
                self.room(user, &room.id).await
            }
            // Someone (maybe on another node) created it at the same moment.
            Err(StoreError::Conflict(_)) => match self.store.dm_by_key(&key).await? {
                Some(room) => self.room(user, &room.id).await,
                None => Err(Error::Conflict("could not open the DM, try again".into())),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Full-text search over the rooms the caller is a member of.
    pub async fn search(
        &self,
        user: &UserRecord,
        q: &str,
        room_id: Option<&str>,
        author_id: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<SearchResult>> {
        let terms = validate::search_terms(q)?;
        let limit = match limit {
            None => 20,
            Some(l) if l < 1 => return Err(Error::invalid("limit", "limit must be at least 1")),
            Some(l) => l.min(100),
        };
        let hits = self
            .store
            .search(&user.id, &terms, room_id, author_id, limit)
            .await?;
        Ok(hits
            .into_iter()
            .map(|h| SearchResult {
                message: Message::for_viewer(&h.message, &user.id),
                snippet: snippet(&h.message.body, &terms),
            })
            .collect())
    }

    /// Messages the caller may read, as they see them.
    pub(crate) fn view(&self, user: &UserRecord, recs: &[MessageRecord]) -> Vec<Message> {
        recs.iter()
            .map(|m| Message::for_viewer(m, &user.id))
            .collect()
    }
}

/// How much text a snippet shows around its first match.
const SNIPPET_BEFORE: usize = 40;
const SNIPPET_LEN: usize = 160;

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A search snippet: the body around the first match, HTML-escaped, with `<mark>`
/// around every word that starts with a search term. Built here rather than by the
/// engines so both backends show the same text (FTS5 and `ts_headline` tokenize
/// punctuation differently).
pub fn snippet(body: &str, terms: &[String]) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    // Word spans as (byte start, byte end).
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in body.char_indices() {
        match (is_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, body.len()));
    }
    let marked: Vec<(usize, usize)> = words
        .into_iter()
        .filter(|(s, e)| {
            let w = body[*s..*e].to_lowercase();
            terms
                .iter()
                .any(|t| !t.is_empty() && w.starts_with(t.as_str()))
        })
        .collect();
    // The window, in chars, around the first match.
    let first_char = marked
        .first()
        .map(|(s, _)| body[..*s].chars().count())
        .unwrap_or(0);
    let from_char = first_char.saturating_sub(SNIPPET_BEFORE);
    let offsets: Vec<usize> = body
        .char_indices()
        .map(|(i, _)| i)
        .chain([body.len()])
        .collect();
    let total = offsets.len() - 1;
    let to_char = (from_char + SNIPPET_LEN).min(total);
    let (from, to) = (offsets[from_char], offsets[to_char]);
    let mut out = String::with_capacity(SNIPPET_LEN + 32);
    if from > 0 {
        out.push('…');
    }
    let mut at = from;
    for (s, e) in marked.iter().filter(|(s, e)| *s >= from && *e <= to) {
        escape_into(&mut out, &body[at..*s]);
        out.push_str("<mark>");
        escape_into(&mut out, &body[*s..*e]);
        out.push_str("</mark>");
        at = *e;
    }
    escape_into(&mut out, &body[at..to]);
    if to < body.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippets_are_escaped_and_marked() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            snippet("use <b>bold</b>, says the Walrus", &t(&["walrus"])),
            "use &lt;b&gt;bold&lt;/b&gt;, says the <mark>Walrus</mark>"
        );
        assert_eq!(
            snippet(
                "mail bob@corp.io or read example.com/docs",
                &t(&["corp", "doc"])
            ),
            "mail bob@<mark>corp</mark>.io or read example.com/<mark>docs</mark>"
        );
        let long = format!("{} needle {}", "a ".repeat(100), "b ".repeat(100));
        let s = snippet(&long, &t(&["needle"]));
        assert!(
            s.starts_with('…') && s.ends_with('…') && s.contains("<mark>needle</mark>"),
            "{s}"
        );
        assert_eq!(
            snippet("héllo wörld", &t(&["wö"])),
            "héllo <mark>wörld</mark>"
        );
    }
}
