//! Persistence. `Store` is phrased in the domain's terms; each backend implements it
//! with its own SQL and its own versioned migrations. SQL lives only under this module.
//!
//! Invariants every backend keeps (checked by the conformance tests):
//! - a room's `seq` grows by exactly one per new message, starting at 1;
//! - every durable change of a message takes the room's next `pos` and stamps it on
//!   the message row, inside the same transaction as the change;
//! - `(author_id, client_id)` identifies at most one message;
//! - `member_count` equals the number of member rows of the room.

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("room is full")]
    RoomFull,
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(ref d) if d.is_unique_violation() => {
                StoreError::Conflict("already exists")
            }
            other => StoreError::Other(other.into()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

macro_rules! str_enum {
    ($name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $s)] $variant),*
        }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)* _ => None }
            }
        }
    };
}

str_enum!(UserKind { User => "user", Guest => "guest", Bot => "bot" });
str_enum!(RoomKind { Public => "public", Private => "private", Dm => "dm" });
str_enum!(Role { Owner => "owner", Admin => "admin", Moderator => "moderator", Member => "member" });

impl Role {
    /// Higher is more powerful.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Moderator => 1,
            Role::Member => 0,
        }
    }
}

/// Also the record format of `hubbub export` (keep changes backward compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub kind: UserKind,
    pub username: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub bio: String,
    pub status_text: String,
    pub avatar_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub kind: UserKind,
    pub username: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub display_name: Option<Option<String>>,
    pub bio: Option<String>,
    pub status_text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub last_used_at: i64,
    pub expires_at: i64,
}

/// Also the record format of `hubbub export` (keep changes backward compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub kind: RoomKind,
    pub password_hash: Option<String>,
    pub guests_allowed: bool,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub member_limit: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_seq: i64,
    pub last_pos: i64,
    pub member_count: i64,
    pub is_default: bool,
    /// DMs: the sorted participant ids, unique per participant set.
    pub dm_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub id: String,
    pub name: String,
    pub topic: String,
    pub kind: RoomKind,
    pub password_hash: Option<String>,
    pub guests_allowed: bool,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub member_limit: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub is_default: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RoomPatch {
    pub name: Option<String>,
    pub topic: Option<String>,
    /// `Some(None)` removes the password.
    pub password_hash: Option<Option<String>>,
    pub guests_allowed: Option<bool>,
    pub starts_at: Option<Option<i64>>,
    pub ends_at: Option<Option<i64>>,
    pub member_limit: Option<Option<i64>>,
}

/// Also the record format of `hubbub export` (keep changes backward compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub room_id: String,
    pub user_id: String,
    pub role: Role,
    pub joined_at: i64,
    pub last_read_seq: i64,
    pub notification_level: Option<String>,
    pub muted_until: Option<i64>,
}

/// A room in a user's list, with the user's counters.
#[derive(Debug, Clone)]
pub struct JoinedRoom {
    pub room: RoomRecord,
    pub member: MemberRecord,
    pub unread_count: i64,
    pub mention_count: i64,
}

#[derive(Debug, Clone)]
pub struct MemberEntry {
    pub user: UserRecord,
    pub member: MemberRecord,
}

/// Also the record format of `hubbub export` (keep changes backward compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub pos: i64,
    pub author: UserRecord,
    pub body: String,
    pub html: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted: bool,
    pub pinned: bool,
    pub reply_to: Option<String>,
    pub thread_root: Option<String>,
    pub reply_count: i64,
    pub client_id: Option<String>,
    pub mentions: Vec<String>,
    /// Reactions in the order they were first given.
    pub reactions: Vec<ReactionRecord>,
    pub attachments: Vec<AttachmentRecord>,
}

/// Also the record format of `hubbub export` (keep changes backward compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionRecord {
    pub emoji: String,
    /// Who reacted, in the order they did.
    pub user_ids: Vec<String>,
}

/// Also the record format of `hubbub export` (keep changes backward compatible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub id: String,
    pub uploader_id: String,
    /// None until a message uses it.
    pub message_id: Option<String>,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// Content address of the file under the data dir.
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// Content address of the thumbnail (images only).
    pub thumb_sha256: Option<String>,
    pub created_at: i64,
}

/// A search hit: the message and a plain-text snippet in which matches are wrapped in
/// `SNIPPET_START` … `SNIPPET_END` (private-use characters; the domain escapes the
/// text and turns them into `<mark>`).
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub message: MessageRecord,
    pub snippet: String,
}

pub const SNIPPET_START: char = '\u{E000}';
pub const SNIPPET_END: char = '\u{E001}';

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub room_id: String,
    pub author_id: String,
    pub body: String,
    pub html: String,
    pub created_at: i64,
    pub reply_to: Option<String>,
    pub thread_root: Option<String>,
    pub client_id: Option<String>,
    /// Mentioned user ids (they get `mention_count`).
    pub mentions: Vec<String>,
    /// Unsent uploads of the author that this message takes (all or none).
    pub attachment_ids: Vec<String>,
}

// Short-lived and returned by value once per send: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Inserted {
    /// A new message was stored; `thread_root` is the root whose `reply_count` changed.
    Created {
        message: MessageRecord,
        thread_root: Option<MessageRecord>,
    },
    /// `(author, client_id)` was already used: the original message, nothing stored.
    Existing(MessageRecord),
}

/// Which page of a room's history to read. Pages are always returned in ascending `seq`.
#[derive(Debug, Clone, Copy)]
pub enum HistoryCursor {
    Latest,
    Before(i64),
    After(i64),
}

#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub messages: Vec<MessageRecord>,
    pub has_more: bool,
}

/// Every message of a room whose `pos` is greater than a client's, read in one snapshot.
#[derive(Debug, Clone)]
pub struct Changes {
    pub messages: Vec<MessageRecord>,
    pub truncated: bool,
    /// The room's `pos` as of the snapshot.
    pub pos: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Flushes and closes the database (graceful shutdown).
    async fn close(&self);

    // --- users and sessions ---
    /// Creates an account; the first account of a server becomes admin (atomically).
    async fn create_account(&self, user: NewUser) -> StoreResult<UserRecord>;
    /// Creates a guest. A guest name is free again once its previous holder has no
    /// session left that is still valid at `now`, or logged out.
    async fn create_guest(&self, user: NewUser, now: i64) -> StoreResult<UserRecord>;
    async fn user(&self, id: &str) -> StoreResult<UserRecord>;
    /// Looks an active name up, case-insensitively.
    async fn user_by_name(&self, username: &str) -> StoreResult<UserRecord>;
    async fn search_users(&self, query: &str, limit: i64) -> StoreResult<Vec<UserRecord>>;
    async fn update_profile(&self, id: &str, patch: ProfilePatch) -> StoreResult<UserRecord>;
    async fn set_password(&self, id: &str, password_hash: &str) -> StoreResult<()>;
    async fn set_admin(&self, id: &str, is_admin: bool) -> StoreResult<()>;
    async fn set_last_seen(&self, id: &str, at: i64) -> StoreResult<()>;
    /// Sets (Some) or clears (None) a user's avatar; the image is kept by its hash.
    async fn set_avatar(
        &self,
        user_id: &str,
        avatar: Option<(String, String, Vec<u8>)>,
    ) -> StoreResult<UserRecord>;
    /// The stored avatar image: (content type, bytes).
    async fn avatar(&self, hash: &str) -> StoreResult<(String, Vec<u8>)>;
    /// Frees a guest's name (logout or expiry) so another guest may take it.
    async fn release_guest_name(&self, user_id: &str) -> StoreResult<()>;

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The session's user, if the session exists and has not expired at `now`.
    async fn session(&self, token_hash: &str, now: i64) -> StoreResult<SessionRecord>;
    async fn touch_session(&self, token_hash: &str, now: i64, expires_at: i64) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    // --- rooms and membership ---
    /// Creates a room and, when `owner` is given, makes them its owner.
    async fn create_room(&self, room: NewRoom, owner: Option<&str>) -> StoreResult<RoomRecord>;
    async fn room(&self, id: &str) -> StoreResult<RoomRecord>;
    async fn default_room(&self) -> StoreResult<Option<RoomRecord>>;
    async fn update_room(&self, id: &str, patch: RoomPatch) -> StoreResult<RoomRecord>;
    async fn delete_room(&self, id: &str) -> StoreResult<()>;
    /// Public rooms, for the room browser.
    async fn public_rooms(&self) -> StoreResult<Vec<RoomRecord>>;
    async fn joined_rooms(&self, user_id: &str) -> StoreResult<Vec<JoinedRoom>>;
    async fn membership(&self, room_id: &str, user_id: &str) -> StoreResult<MemberRecord>;
    /// A room and the user's membership of it (None: not a member), in one read.
    async fn room_with_member(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> StoreResult<(RoomRecord, Option<MemberRecord>)>;
    /// Adds a member, honouring `member_limit` atomically. Ok(false): already a member.
    async fn add_member(
        &self,
        room_id: &str,
        user_id: &str,
        role: Role,
        now: i64,
    ) -> StoreResult<bool>;
    /// Ok(false): was not a member.
    async fn remove_member(&self, room_id: &str, user_id: &str) -> StoreResult<bool>;
    /// Members ordered by join order then user id; `after` is the last user id of the
    /// previous page.
    async fn members(
        &self,
        room_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MemberEntry>>;
    /// Users who share a room of at most `max_members` members with `user_id`
    /// (the user included).
    async fn neighbours(&self, user_id: &str, max_members: i64) -> StoreResult<Vec<UserRecord>>;
    async fn mark_read(&self, room_id: &str, user_id: &str, seq: i64) -> StoreResult<i64>;

    // --- messages ---
    async fn insert_message(&self, msg: NewMessage) -> StoreResult<Inserted>;
    async fn message(&self, id: &str) -> StoreResult<MessageRecord>;
    async fn edit_message(
        &self,
        id: &str,
        body: &str,
        html: &str,
        mentions: &[String],
        now: i64,
    ) -> StoreResult<MessageRecord>;
    async fn delete_message(&self, id: &str) -> StoreResult<MessageRecord>;
    async fn history(
        &self,
        room_id: &str,
        cursor: HistoryCursor,
        limit: i64,
    ) -> StoreResult<HistoryPage>;
    /// Messages of the room changed after `after_pos`, ascending by `pos`, at most
    /// `limit` (the newest ones when there are more).
    async fn changes_since(
        &self,
        room_id: &str,
        after_pos: i64,
        limit: i64,
    ) -> StoreResult<Changes>;

    // --- reactions, pins, threads, notifications (rich messaging) ---
    /// Adds or removes one reaction; a change takes the room's next `pos`.
    /// Ok(None): nothing changed (already there / not there).
    async fn react(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        add: bool,
        now: i64,
    ) -> StoreResult<Option<MessageRecord>>;
    /// Pins or unpins; a change takes the room's next `pos`. Ok(None): unchanged.
    async fn set_pinned(
        &self,
        message_id: &str,
        pinned: bool,
    ) -> StoreResult<Option<MessageRecord>>;
    /// Pinned messages of a room, newest first.
    async fn pins(&self, room_id: &str) -> StoreResult<Vec<MessageRecord>>;
    /// Replies of a thread (not the root), ascending by `seq`, after `after_seq`.
    async fn thread(
        &self,
        root_id: &str,
        after_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<HistoryPage>;
    /// `all` | `mentions` | `none` for one member of a room.
    async fn set_notification_level(
        &self,
        room_id: &str,
        user_id: &str,
        level: &str,
    ) -> StoreResult<()>;
    /// Members of a room and their explicit notification level (None: the default).
    /// Only the given users, or, when `users` is None, only those with a level set.
    async fn notification_levels(
        &self,
        room_id: &str,
        users: Option<&[String]>,
    ) -> StoreResult<Vec<(String, Option<String>)>>;

    // --- DMs ---
    async fn dm_by_key(&self, key: &str) -> StoreResult<Option<RoomRecord>>;
    /// Creates a DM room with its members (role member). Conflict: the key exists.
    async fn create_dm(
        &self,
        room: NewRoom,
        key: &str,
        members: &[String],
    ) -> StoreResult<RoomRecord>;

    // --- search ---
    /// Full-text search over non-deleted messages of the rooms `user_id` is a member
    /// of; every term must match (prefix match on the last one); best first.
    async fn search(
        &self,
        user_id: &str,
        terms: &[String],
        room_id: Option<&str>,
        author_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>>;

    // --- attachments ---
    async fn create_attachment(&self, a: AttachmentRecord) -> StoreResult<AttachmentRecord>;
    async fn attachments(&self, ids: &[String]) -> StoreResult<Vec<AttachmentRecord>>;
    /// Deletes unsent uploads created before `before`; returns what was deleted.
    async fn delete_unsent_attachments(&self, before: i64) -> StoreResult<Vec<AttachmentRecord>>;
    /// Whether any attachment (or thumbnail) still refers to this content address.
    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool>;

    // --- export / import (empty target database) ---
    async fn all_users(&self) -> StoreResult<Vec<UserRecord>>;
    async fn all_rooms(&self) -> StoreResult<Vec<RoomRecord>>;
    async fn import_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn import_avatar(&self, hash: &str, content_type: &str, data: &[u8]) -> StoreResult<()>;
    /// Inserts a room exactly as given (counters included).
    async fn import_room(&self, room: &RoomRecord) -> StoreResult<()>;
    async fn import_member(&self, member: &MemberRecord) -> StoreResult<()>;
    /// Inserts a message exactly as given, with its reactions, attachments and mentions.
    async fn import_message(&self, message: &MessageRecord) -> StoreResult<()>;
}
