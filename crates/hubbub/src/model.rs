//! The public objects of the API (SPEC §3–§6), exactly as clients see them.
//!
//! These are plain data: the store produces records, the domain turns them into
//! these, and the transport serializes them. Nothing here does I/O.

use serde::Serialize;

use crate::store::{AttachmentRecord, MemberRecord, MessageRecord, RoomRecord, UserRecord};
use crate::util::rfc3339;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub kind: String,
    pub avatar_url: String,
    pub bio: String,
    pub status_text: String,
    pub is_admin: bool,
    /// Presence, present where the spec asks for it (ready.users, members).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Option<String>>,
}

impl User {
    pub fn from_record(r: &UserRecord) -> User {
        let v = match &r.avatar_hash {
            Some(h) => h.clone(),
            None => crate::domain::avatar::default_version(&r.username),
        };
        User {
            id: r.id.clone(),
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            kind: r.kind.as_str().to_string(),
            avatar_url: format!("/api/v1/avatars/{}?v={}", r.id, v),
            bio: r.bio.clone(),
            status_text: r.status_text.clone(),
            is_admin: r.is_admin,
            status: None,
            last_seen_at: None,
        }
    }

    /// Adds presence fields: `status`, and `last_seen_at` (null while online or never seen).
    pub fn with_presence(mut self, status: &str, last_seen_ms: Option<i64>) -> User {
        let seen = if status == "offline" {
            last_seen_ms.map(rfc3339)
        } else {
            None
        };
        self.status = Some(status.to_string());
        self.last_seen_at = Some(seen);
        self
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub kind: String,
    pub has_password: bool,
    pub guests_allowed: bool,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub member_limit: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub member_count: i64,
    pub last_seq: i64,
    pub pos: i64,
    /// Whether the caller is a member (the per-member fields below are set then).
    pub joined: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_level: Option<String>,
}

impl Room {
    pub fn from_record(r: &RoomRecord) -> Room {
        Room {
            id: r.id.clone(),
            name: r.name.clone(),
            topic: r.topic.clone(),
            kind: r.kind.as_str().to_string(),
            has_password: r.password_hash.is_some(),
            guests_allowed: r.guests_allowed,
            starts_at: r.starts_at.map(rfc3339),
            ends_at: r.ends_at.map(rfc3339),
            member_limit: r.member_limit,
            created_by: r.created_by.clone(),
            created_at: rfc3339(r.created_at),
            member_count: r.member_count,
            last_seq: r.last_seq,
            pos: r.last_pos,
            joined: false,
            unread_count: None,
            mention_count: None,
            last_read_seq: None,
            role: None,
            muted_until: None,
            notification_level: None,
        }
    }

    /// The room as its member sees it in their room list.
    pub fn for_member(r: &RoomRecord, m: &MemberRecord, unread: i64, mentions: i64) -> Room {
        let mut room = Room::from_record(r);
        room.joined = true;
        room.unread_count = Some(unread);
        room.mention_count = Some(mentions);
        room.last_read_seq = Some(m.last_read_seq);
        room.role = Some(m.role.as_str().to_string());
        room.muted_until = Some(m.muted_until.map(rfc3339));
        let default_level = if r.kind == crate::store::RoomKind::Dm {
            "all"
        } else {
            "mentions"
        };
        room.notification_level = Some(
            m.notification_level
                .clone()
                .unwrap_or_else(|| default_level.to_string()),
        );
        room
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub me: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub pos: i64,
    pub author: User,
    pub body: String,
    pub html: String,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub pinned: bool,
    pub reply_to: Option<String>,
    pub thread_root: Option<String>,
    pub reply_count: i64,
    pub reactions: Vec<Reaction>,
    pub attachments: Vec<Attachment>,
    pub mentions: Vec<String>,
    pub client_id: Option<String>,
}

impl Attachment {
    pub fn from_record(a: &AttachmentRecord) -> Attachment {
        Attachment {
            id: a.id.clone(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            url: format!("/api/v1/attachments/{}", a.id),
            thumbnail_url: a
                .thumb_sha256
                .as_ref()
                .map(|_| format!("/api/v1/attachments/{}/thumbnail", a.id)),
            width: a.width,
            height: a.height,
        }
    }
}

impl Message {
    /// The message as the given user sees it (`me` set on their reactions).
    pub fn for_viewer(r: &MessageRecord, viewer: &str) -> Message {
        let mut m = Message::from_record(r);
        for (reaction, rec) in m.reactions.iter_mut().zip(&r.reactions) {
            reaction.me = rec.user_ids.iter().any(|u| u == viewer);
        }
        m
    }

    /// The message as serialized once for everyone (`me` is false).
    pub fn from_record(r: &MessageRecord) -> Message {
        Message {
            id: r.id.clone(),
            room_id: r.room_id.clone(),
            seq: r.seq,
            pos: r.pos,
            author: User::from_record(&r.author),
            body: if r.deleted {
                String::new()
            } else {
                r.body.clone()
            },
            html: if r.deleted {
                String::new()
            } else {
                r.html.clone()
            },
            created_at: rfc3339(r.created_at),
            edited_at: r.edited_at.map(rfc3339),
            deleted: r.deleted,
            pinned: r.pinned,
            reply_to: r.reply_to.clone(),
            thread_root: r.thread_root.clone(),
            reply_count: r.reply_count,
            reactions: r
                .reactions
                .iter()
                .map(|x| Reaction {
                    emoji: x.emoji.clone(),
                    count: x.user_ids.len() as i64,
                    me: false,
                })
                .collect(),
            attachments: r.attachments.iter().map(Attachment::from_record).collect(),
            mentions: r.mentions.clone(),
            client_id: r.client_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Member {
    pub user: User,
    pub role: String,
    pub joined_at: String,
    /// How far the member has read (for "seen by").
    pub last_read_seq: i64,
}

/// A search result: the message and a sanitized snippet with `<mark>` around matches.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub message: Message,
    pub snippet: String,
}
