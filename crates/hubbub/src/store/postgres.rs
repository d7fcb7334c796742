//! The PostgreSQL store: for several nodes sharing one database.
//!
//! Same schema, same semantics as the SQLite store (the conformance suite in
//! `tests/store` runs one set of tests on both); what differs is how races between
//! concurrent writers — possibly on different nodes — are settled:
//! - a room's `seq`/`pos` come from `UPDATE rooms … RETURNING`, which holds the room
//!   row's lock until commit, so per room commit order is `pos` order;
//! - `(author, client_id)` idempotency is settled by the unique index
//!   (`ON CONFLICT … DO NOTHING` waits for a concurrent insert of the same pair and
//!   then yields to it);
//! - membership changes lock the room row first (`member_limit`, `member_count`);
//! - reactions and pins lock the room row first too, then check that the message is
//!   still there (a delete may have committed meanwhile); a no-op takes no `pos`;
//! - a send claims its uploads with row locks in id order (`message_id IS NULL` is
//!   re-checked once a lock is granted, so an upload goes to one message only);
//! - two nodes opening the same DM are settled by the unique index on `dm_key`;
//! - the first account becoming admin, and avatar garbage collection, are serialized
//!   by transaction-level advisory locks;
//! - `changes_since` reads in one `REPEATABLE READ` snapshot.
//!
//! Locks are always taken room row first, then member/message rows, so writers never
//! deadlock. Connection failures surface as `StoreError::Other`; the pool reconnects
//! by itself once the database is back.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::*;

/// Advisory lock serializing account creation (the first account becomes admin).
const LOCK_FIRST_ADMIN: i64 = 0x6875_6262_7562_0001;
/// Advisory lock serializing avatar changes (shared images, orphan removal).
const LOCK_AVATARS: i64 = 0x6875_6262_7562_0002;

pub struct PostgresStore {
    pool: PgPool,
}

const USER_COLS: &str = "u.id AS u_id, u.kind AS u_kind, u.username AS u_username, \
    u.display_name AS u_display_name, u.password_hash AS u_password_hash, u.bio AS u_bio, \
    u.status_text AS u_status_text, u.avatar_hash AS u_avatar_hash, u.is_admin AS u_is_admin, \
    u.created_at AS u_created_at, u.last_seen_at AS u_last_seen_at";

const ROOM_COLS: &str = "r.id AS r_id, r.name AS r_name, r.topic AS r_topic, r.kind AS r_kind, \
    r.password_hash AS r_password_hash, r.guests_allowed AS r_guests_allowed, \
    r.starts_at AS r_starts_at, r.ends_at AS r_ends_at, r.member_limit AS r_member_limit, \
    r.created_by AS r_created_by, r.created_at AS r_created_at, r.last_seq AS r_last_seq, \
    r.last_pos AS r_last_pos, r.member_count AS r_member_count, r.is_default AS r_is_default, \
    r.dm_key AS r_dm_key";

const MEMBER_COLS: &str = "mb.room_id AS mb_room_id, mb.user_id AS mb_user_id, \
    mb.role AS mb_role, mb.joined_at AS mb_joined_at, mb.last_read_seq AS mb_last_read_seq, \
    mb.notification_level AS mb_notification_level, mb.muted_until AS mb_muted_until";

/// A message row (alias `m`) with its reactions and attachments as JSON, so that one
/// statement — one snapshot — reads a message and everything it carries. Reactions
/// come as `[emoji, user_id]` pairs in reaction order (grouped in `message_from`),
/// attachments as arrays in `ATTACHMENT_COLS` order; a tombstone carries neither.
const MESSAGE_COLS: &str = "m.id, m.room_id, m.seq, m.pos, m.body, m.html, m.created_at, \
    m.edited_at, m.deleted, m.pinned, m.reply_to, m.thread_root, m.reply_count, m.client_id, \
    m.mentions::text AS mentions, \
    CASE WHEN m.deleted THEN NULL ELSE (SELECT json_agg(json_build_array(rx.emoji, rx.user_id) \
     ORDER BY rx.created_at, rx.user_id, rx.emoji)::text \
     FROM reactions rx WHERE rx.message_id = m.id) END AS reactions_json, \
    CASE WHEN m.deleted THEN NULL ELSE (SELECT json_agg(json_build_array(ax.id, ax.uploader_id, \
     ax.message_id, ax.name, ax.content_type, ax.size, ax.sha256, ax.width, ax.height, \
     ax.thumb_sha256, ax.created_at) ORDER BY ax.created_at, ax.id)::text \
     FROM attachments ax WHERE ax.message_id = m.id) END AS attachments_json";

fn message_select() -> String {
    format!("SELECT {MESSAGE_COLS}, {USER_COLS} FROM messages m JOIN users u ON u.id = m.author_id")
}

const ATTACHMENT_COLS: &str = "id, uploader_id, message_id, name, content_type, size, sha256, \
    width, height, thumb_sha256, created_at";

/// One attachment as `MESSAGE_COLS` serializes it.
type AttachmentJson = (
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

fn user_from(row: &PgRow) -> StoreResult<UserRecord> {
    let kind: String = row.try_get("u_kind")?;
    Ok(UserRecord {
        id: row.try_get("u_id")?,
        kind: UserKind::parse(&kind).context("bad user kind")?,
        username: row.try_get("u_username")?,
        display_name: row.try_get("u_display_name")?,
        password_hash: row.try_get("u_password_hash")?,
        bio: row.try_get("u_bio")?,
        status_text: row.try_get("u_status_text")?,
        avatar_hash: row.try_get("u_avatar_hash")?,
        is_admin: row.try_get("u_is_admin")?,
        created_at: row.try_get("u_created_at")?,
        last_seen_at: row.try_get("u_last_seen_at")?,
    })
}

fn room_from(row: &PgRow) -> StoreResult<RoomRecord> {
    let kind: String = row.try_get("r_kind")?;
    Ok(RoomRecord {
        id: row.try_get("r_id")?,
        name: row.try_get("r_name")?,
        topic: row.try_get("r_topic")?,
        kind: RoomKind::parse(&kind).context("bad room kind")?,
        password_hash: row.try_get("r_password_hash")?,
        guests_allowed: row.try_get("r_guests_allowed")?,
        starts_at: row.try_get("r_starts_at")?,
        ends_at: row.try_get("r_ends_at")?,
        member_limit: row.try_get("r_member_limit")?,
        created_by: row.try_get("r_created_by")?,
        created_at: row.try_get("r_created_at")?,
        last_seq: row.try_get("r_last_seq")?,
        last_pos: row.try_get("r_last_pos")?,
        member_count: row.try_get("r_member_count")?,
        is_default: row.try_get("r_is_default")?,
        dm_key: row.try_get("r_dm_key")?,
    })
}

fn member_from(row: &PgRow) -> StoreResult<MemberRecord> {
    let role: String = row.try_get("mb_role")?;
    Ok(MemberRecord {
        room_id: row.try_get("mb_room_id")?,
        user_id: row.try_get("mb_user_id")?,
        role: Role::parse(&role).context("bad role")?,
        joined_at: row.try_get("mb_joined_at")?,
        last_read_seq: row.try_get("mb_last_read_seq")?,
        notification_level: row.try_get("mb_notification_level")?,
        muted_until: row.try_get("mb_muted_until")?,
    })
}

fn message_from(row: &PgRow) -> StoreResult<MessageRecord> {
    let mentions: String = row.try_get("mentions")?;
    let mut author = user_from(row)?;
    author.password_hash = None;
    Ok(MessageRecord {
        id: row.try_get("id")?,
        room_id: row.try_get("room_id")?,
        seq: row.try_get("seq")?,
        pos: row.try_get("pos")?,
        author,
        body: row.try_get("body")?,
        html: row.try_get("html")?,
        created_at: row.try_get("created_at")?,
        edited_at: row.try_get("edited_at")?,
        deleted: row.try_get("deleted")?,
        pinned: row.try_get("pinned")?,
        reply_to: row.try_get("reply_to")?,
        thread_root: row.try_get("thread_root")?,
        reply_count: row.try_get("reply_count")?,
        client_id: row.try_get("client_id")?,
        mentions: serde_json::from_str(&mentions).context("bad mentions column")?,
        reactions: reactions_from(row.try_get("reactions_json")?)?,
        attachments: attachments_from(row.try_get("attachments_json")?)?,
    })
}

/// Groups `[emoji, user_id]` pairs (in reaction order) by emoji; groups come in the
/// order of their first reaction.
fn reactions_from(json: Option<String>) -> StoreResult<Vec<ReactionRecord>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(String, String)> =
        serde_json::from_str(&json).context("bad reactions of a message")?;
    let mut out: Vec<ReactionRecord> = Vec::new();
    for (emoji, user) in pairs {
        match out.iter_mut().find(|r| r.emoji == emoji) {
            Some(r) => r.user_ids.push(user),
            None => out.push(ReactionRecord {
                emoji,
                user_ids: vec![user],
            }),
        }
    }
    Ok(out)
}

fn attachments_from(json: Option<String>) -> StoreResult<Vec<AttachmentRecord>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let rows: Vec<AttachmentJson> =
        serde_json::from_str(&json).context("bad attachments of a message")?;
    Ok(rows
        .into_iter()
        .map(|a| AttachmentRecord {
            id: a.0,
            uploader_id: a.1,
            message_id: a.2,
            name: a.3,
            content_type: a.4,
            size: a.5,
            sha256: a.6,
            width: a.7,
            height: a.8,
            thumb_sha256: a.9,
            created_at: a.10,
        })
        .collect())
}

/// The insert of one attachment row, stored as belonging to `message_id`.
fn insert_attachment<'q>(
    a: &'q AttachmentRecord,
    message_id: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO attachments ({ATTACHMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )
    });
    sqlx::query(&SQL)
        .bind(&a.id)
        .bind(&a.uploader_id)
        .bind(message_id)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(a.width)
        .bind(a.height)
        .bind(&a.thumb_sha256)
        .bind(a.created_at)
}

fn attachment_from(row: &PgRow) -> StoreResult<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: row.try_get("id")?,
        uploader_id: row.try_get("uploader_id")?,
        message_id: row.try_get("message_id")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        width: row.try_get("width")?,
        height: row.try_get("height")?,
        thumb_sha256: row.try_get("thumb_sha256")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The text of a `tsquery` for `terms`: every term must match, the last one as a
/// prefix. Each term is cut at anything that is not a letter or digit (as SQLite's
/// tokenizer does, and as the indexed text is cut: see migration 0002) into parts that
/// must follow each other (a phrase). Parts are letters and digits only, so quoting
/// them can never make a syntax error; a part the parser finds no word in is dropped
/// by `to_tsquery` (as unicode61 ignores a term without tokens). None: no part at all.
fn tsquery_text(terms: &[String]) -> Option<String> {
    let terms: Vec<Vec<&str>> = terms
        .iter()
        .map(|t| {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|parts| !parts.is_empty())
        .collect();
    let n = terms.len();
    let query = terms
        .iter()
        .enumerate()
        .map(|(i, parts)| {
            let m = parts.len();
            parts
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    if i + 1 == n && j + 1 == m {
                        format!("'{p}':*")
                    } else {
                        format!("'{p}'")
                    }
                })
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect::<Vec<_>>()
        .join(" & ");
    (n > 0).then_some(query)
}

/// `ts_headline` options: one short fragment around the best match, matches wrapped
/// in the snippet markers.
fn headline_options() -> String {
    format!(
        "StartSel=\"{SNIPPET_START}\", StopSel=\"{SNIPPET_END}\", MaxFragments=1, \
         MaxWords=16, MinWords=4, ShortWord=0"
    )
}

/// Marks a headline cut out of a longer body with `…` where text was left out, as
/// SQLite's `snippet()` does.
fn with_ellipses(body: &str, headline: &str) -> String {
    let headline = headline.trim();
    let plain: String = headline
        .chars()
        .filter(|&c| c != SNIPPET_START && c != SNIPPET_END)
        .collect();
    let Some(at) = body.find(plain.as_str()).filter(|_| !plain.is_empty()) else {
        return headline.to_string();
    };
    let words = |s: &str| s.chars().any(char::is_alphanumeric);
    let mut out = String::with_capacity(headline.len() + 6);
    if words(&body[..at]) {
        out.push('…');
    }
    out.push_str(headline);
    if words(&body[at + plain.len()..]) {
        out.push('…');
    }
    out
}

impl PostgresStore {
    /// Connects to the database at `url` and applies migrations.
    ///
    /// `max_connections` bounds the pool; `acquire_timeout` is how long a query waits
    /// for a free connection (or for a new one while the database is unreachable)
    /// before failing with `StoreError::Other`.
    pub async fn open(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> anyhow::Result<PostgresStore> {
        let masked = crate::config::mask_url(url);
        let opts = PgConnectOptions::from_str(url)
            .with_context(|| format!("invalid PostgreSQL URL {masked}"))?
            .application_name("hubbub");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            // Connections broken by a database restart are noticed and replaced
            // before a query runs on them.
            .test_before_acquire(true)
            .idle_timeout(Duration::from_secs(600))
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL database {masked}"))?;
        // sqlx serializes concurrent migrators (several nodes starting at once) with an
        // advisory lock of its own.
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .context("cannot migrate PostgreSQL database")?;
        Ok(PostgresStore { pool })
    }

    async fn message_tx(
        tx: &mut Transaction<'_, Postgres>,
        id: &str,
    ) -> StoreResult<MessageRecord> {
        let row = sqlx::query(&format!("{} WHERE m.id = $1", message_select()))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        message_from(&row)
    }

    async fn user_tx(tx: &mut Transaction<'_, Postgres>, id: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        user_from(&row)
    }

    async fn room_tx(tx: &mut Transaction<'_, Postgres>, id: &str) -> StoreResult<RoomRecord> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = $1"))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        room_from(&row)
    }

    /// Takes the room's next `pos` (and, for a new message, its next `seq`). The
    /// room row stays locked until the transaction ends, so concurrent writers to one
    /// room — on any node — commit in `pos` order.
    async fn bump_room(
        tx: &mut Transaction<'_, Postgres>,
        room_id: &str,
        new_message: bool,
    ) -> StoreResult<(i64, i64)> {
        let inc = i64::from(new_message);
        let row = sqlx::query(
            "UPDATE rooms SET last_seq = last_seq + $1, last_pos = last_pos + 1 \
             WHERE id = $2 RETURNING last_seq, last_pos",
        )
        .bind(inc)
        .bind(room_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Locks the room row (membership changes), returning (member_count, member_limit).
    async fn lock_room(
        tx: &mut Transaction<'_, Postgres>,
        room_id: &str,
    ) -> StoreResult<(i64, Option<i64>)> {
        let row =
            sqlx::query("SELECT member_count, member_limit FROM rooms WHERE id = $1 FOR UPDATE")
                .bind(room_id)
                .fetch_one(&mut **tx)
                .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// The room of a message that is not deleted, with the room row locked (room
    /// first, like every writer), and whether the message is pinned. NotFound: no such
    /// message, or it is deleted — checked again once the lock is held, since a delete
    /// may have committed while we waited for it.
    async fn lock_live_message(
        tx: &mut Transaction<'_, Postgres>,
        id: &str,
    ) -> StoreResult<(String, bool)> {
        let room_id: String =
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = $1 AND NOT deleted")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        Self::lock_room(tx, &room_id).await?;
        let pinned: bool =
            sqlx::query_scalar("SELECT pinned FROM messages WHERE id = $1 AND NOT deleted")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        Ok((room_id, pinned))
    }

    /// One mention row per (message, user); repeated users count once.
    async fn write_mentions(
        tx: &mut Transaction<'_, Postgres>,
        message_id: &str,
        room_id: &str,
        seq: i64,
        users: &[String],
    ) -> StoreResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO mentions (message_id, room_id, user_id, seq) \
             SELECT $1, $2, u, $3 FROM unnest($4::text[]) AS u ON CONFLICT DO NOTHING",
        )
        .bind(message_id)
        .bind(room_id)
        .bind(seq)
        .bind(users)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn advisory_lock(tx: &mut Transaction<'_, Postgres>, key: i64) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn insert_user(
        tx: &mut Transaction<'_, Postgres>,
        u: &NewUser,
        is_admin: bool,
    ) -> StoreResult<UserRecord> {
        let res = sqlx::query(
            "INSERT INTO users (id, kind, username, name_key, display_name, password_hash, \
             is_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&u.id)
        .bind(u.kind.as_str())
        .bind(&u.username)
        .bind(u.username.to_lowercase())
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(is_admin)
        .bind(u.created_at)
        .execute(&mut **tx)
        .await;
        match res {
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(StoreError::Conflict("name is taken"));
            }
            other => other?,
        };
        Self::user_tx(tx, &u.id).await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn create_account(&self, user: NewUser) -> StoreResult<UserRecord> {
        let mut tx = self.pool.begin().await?;
        // Two first sign-ups (on any nodes) must not both see zero accounts: the count
        // runs after the lock, in a fresh READ COMMITTED snapshot that includes every
        // account committed by an earlier holder of the lock.
        Self::advisory_lock(&mut tx, LOCK_FIRST_ADMIN).await?;
        let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE kind = 'user'")
            .fetch_one(&mut *tx)
            .await?;
        let first = accounts == 0 && user.kind == UserKind::User;
        let rec = Self::insert_user(&mut tx, &user, first).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create_guest(&self, user: NewUser, now: i64) -> StoreResult<UserRecord> {
        let mut tx = self.pool.begin().await?;
        // A guest whose sessions have all expired no longer holds its name.
        sqlx::query(
            "UPDATE users SET name_key = NULL WHERE name_key = $1 AND kind = 'guest' \
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = users.id \
             AND s.expires_at > $2)",
        )
        .bind(user.username.to_lowercase())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let rec = Self::insert_user(&mut tx, &user, false).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn user(&self, id: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        user_from(&row)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.name_key = $1"
        ))
        .bind(username.to_lowercase())
        .fetch_one(&self.pool)
        .await?;
        user_from(&row)
    }

    async fn search_users(&self, query: &str, limit: i64) -> StoreResult<Vec<UserRecord>> {
        let pattern = format!(
            "%{}%",
            query
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.name_key IS NOT NULL AND \
             (u.name_key LIKE $1 ESCAPE '\\' OR lower(coalesce(u.display_name, '')) LIKE $1 \
             ESCAPE '\\') ORDER BY u.name_key LIMIT $2"
        ))
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    async fn update_profile(&self, id: &str, patch: ProfilePatch) -> StoreResult<UserRecord> {
        let mut tx = self.pool.begin().await?;
        if let Some(d) = patch.display_name {
            sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
                .bind(d)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(b) = patch.bio {
            sqlx::query("UPDATE users SET bio = $1 WHERE id = $2")
                .bind(b)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(s) = patch.status_text {
            sqlx::query("UPDATE users SET status_text = $1 WHERE id = $2")
                .bind(s)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let rec = Self::user_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn set_password(&self, id: &str, password_hash: &str) -> StoreResult<()> {
        let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_admin(&self, id: &str, is_admin: bool) -> StoreResult<()> {
        let r = sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2")
            .bind(is_admin)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_last_seen(&self, id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_avatar(
        &self,
        user_id: &str,
        avatar: Option<(String, String, Vec<u8>)>,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.pool.begin().await?;
        // Without this, one user's orphan sweep could delete an image another user's
        // concurrent (uncommitted) transaction has just pointed at.
        Self::advisory_lock(&mut tx, LOCK_AVATARS).await?;
        let hash = match avatar {
            Some((hash, content_type, data)) => {
                sqlx::query(
                    "INSERT INTO avatars (hash, content_type, data) VALUES ($1, $2, $3) \
                     ON CONFLICT (hash) DO NOTHING",
                )
                .bind(&hash)
                .bind(content_type)
                .bind(data)
                .execute(&mut *tx)
                .await?;
                Some(hash)
            }
            None => None,
        };
        let r = sqlx::query("UPDATE users SET avatar_hash = $1 WHERE id = $2")
            .bind(&hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Images nobody uses any more are dropped in the same transaction.
        sqlx::query(
            "DELETE FROM avatars WHERE hash NOT IN \
             (SELECT avatar_hash FROM users WHERE avatar_hash IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let rec = Self::user_tx(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn avatar(&self, hash: &str) -> StoreResult<(String, Vec<u8>)> {
        let row = sqlx::query("SELECT content_type, data FROM avatars WHERE hash = $1")
            .bind(hash)
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn release_guest_name(&self, user_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET name_key = NULL WHERE id = $1 AND kind = 'guest'")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: i64) -> StoreResult<SessionRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, s.last_used_at, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(SessionRecord {
            user: user_from(&row)?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    async fn touch_session(&self, token_hash: &str, now: i64, expires_at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE token_hash = $3")
            .bind(now)
            .bind(expires_at)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_room(&self, room: NewRoom, owner: Option<&str>) -> StoreResult<RoomRecord> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rooms (id, name, topic, kind, password_hash, guests_allowed, starts_at, \
             ends_at, member_limit, created_by, created_at, is_default, member_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&room.id)
        .bind(&room.name)
        .bind(&room.topic)
        .bind(room.kind.as_str())
        .bind(&room.password_hash)
        .bind(room.guests_allowed)
        .bind(room.starts_at)
        .bind(room.ends_at)
        .bind(room.member_limit)
        .bind(&room.created_by)
        .bind(room.created_at)
        .bind(room.is_default)
        .bind(i64::from(owner.is_some()))
        .execute(&mut *tx)
        .await?;
        if let Some(owner) = owner {
            sqlx::query(
                "INSERT INTO members (room_id, user_id, role, joined_at) \
                 VALUES ($1, $2, 'owner', $3)",
            )
            .bind(&room.id)
            .bind(owner)
            .bind(room.created_at)
            .execute(&mut *tx)
            .await?;
        }
        let rec = Self::room_tx(&mut tx, &room.id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn room(&self, id: &str) -> StoreResult<RoomRecord> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        room_from(&row)
    }

    async fn default_room(&self) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r WHERE r.is_default LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn update_room(&self, id: &str, patch: RoomPatch) -> StoreResult<RoomRecord> {
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: two concurrent patches of different fields must not undo each other.
        let cur = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r WHERE r.id = $1 FOR UPDATE"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let cur = room_from(&cur)?;
        sqlx::query(
            "UPDATE rooms SET name = $1, topic = $2, password_hash = $3, guests_allowed = $4, \
             starts_at = $5, ends_at = $6, member_limit = $7 WHERE id = $8",
        )
        .bind(patch.name.unwrap_or(cur.name))
        .bind(patch.topic.unwrap_or(cur.topic))
        .bind(patch.password_hash.unwrap_or(cur.password_hash))
        .bind(patch.guests_allowed.unwrap_or(cur.guests_allowed))
        .bind(patch.starts_at.unwrap_or(cur.starts_at))
        .bind(patch.ends_at.unwrap_or(cur.ends_at))
        .bind(patch.member_limit.unwrap_or(cur.member_limit))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let rec = Self::room_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn delete_room(&self, id: &str) -> StoreResult<()> {
        let r = sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn public_rooms(&self) -> StoreResult<Vec<RoomRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r WHERE r.kind = 'public' ORDER BY r.is_default DESC, \
             r.member_count DESC, r.name LIMIT 500"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from).collect()
    }

    async fn joined_rooms(&self, user_id: &str) -> StoreResult<Vec<JoinedRoom>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS}, {MEMBER_COLS}, \
             (SELECT COUNT(*) FROM messages m WHERE m.room_id = r.id \
              AND m.seq > mb.last_read_seq AND m.author_id <> mb.user_id AND NOT m.deleted) \
              AS unread, \
             (SELECT COUNT(*) FROM mentions mn WHERE mn.room_id = r.id \
              AND mn.user_id = mb.user_id AND mn.seq > mb.last_read_seq) AS mentioned \
             FROM members mb JOIN rooms r ON r.id = mb.room_id WHERE mb.user_id = $1 \
             ORDER BY r.is_default DESC, r.name"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JoinedRoom {
                    room: room_from(row)?,
                    member: member_from(row)?,
                    unread_count: row.try_get("unread")?,
                    mention_count: row.try_get("mentioned")?,
                })
            })
            .collect()
    }

    async fn membership(&self, room_id: &str, user_id: &str) -> StoreResult<MemberRecord> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLS} FROM members mb WHERE mb.room_id = $1 AND mb.user_id = $2"
        ))
        .bind(room_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        member_from(&row)
    }

    async fn room_with_member(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> StoreResult<(RoomRecord, Option<MemberRecord>)> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS}, {MEMBER_COLS} FROM rooms r LEFT JOIN members mb \
             ON mb.room_id = r.id AND mb.user_id = $1 WHERE r.id = $2"
        ))
        .bind(user_id)
        .bind(room_id)
        .fetch_one(&self.pool)
        .await?;
        let member = match row.try_get::<Option<String>, _>("mb_user_id")? {
            Some(_) => Some(member_from(&row)?),
            None => None,
        };
        Ok((room_from(&row)?, member))
    }

    async fn add_member(
        &self,
        room_id: &str,
        user_id: &str,
        role: Role,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // The room row's lock serializes every membership change of the room, so the
        // count read here is the count this insert commits against.
        let (count, limit) = Self::lock_room(&mut tx, room_id).await?;
        let exists: Option<bool> =
            sqlx::query_scalar("SELECT TRUE FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Ok(false);
        }
        if limit.is_some_and(|l| count >= l) {
            return Err(StoreError::RoomFull);
        }
        let r = sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE rooms SET member_count = member_count + 1 WHERE id = $1")
            .bind(room_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_member(&self, room_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        // Room row first, like every writer: no lock-order deadlock with add_member.
        match Self::lock_room(&mut tx, room_id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        }
        let r = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE rooms SET member_count = member_count - 1 WHERE id = $1")
            .bind(room_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn members(
        &self,
        room_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MemberEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS}, {MEMBER_COLS} FROM members mb JOIN users u ON u.id = mb.user_id \
             WHERE mb.room_id = $1 AND mb.user_id > $2 ORDER BY mb.user_id LIMIT $3"
        ))
        .bind(room_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let mut user = user_from(row)?;
                user.password_hash = None;
                Ok(MemberEntry {
                    user,
                    member: member_from(row)?,
                })
            })
            .collect()
    }

    async fn neighbours(&self, user_id: &str, max_members: i64) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.id = $1 OR u.id IN \
             (SELECT other.user_id FROM members me \
              JOIN rooms r ON r.id = me.room_id AND (r.member_count <= $2 OR r.kind = 'dm') \
              JOIN members other ON other.room_id = me.room_id WHERE me.user_id = $1)"
        ))
        .bind(user_id)
        .bind(max_members)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let mut u = user_from(row)?;
                u.password_hash = None;
                Ok(u)
            })
            .collect()
    }

    async fn mark_read(&self, room_id: &str, user_id: &str, seq: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "UPDATE members SET last_read_seq = GREATEST(last_read_seq, \
             LEAST($1, (SELECT last_seq FROM rooms WHERE id = $2))) \
             WHERE room_id = $2 AND user_id = $3 RETURNING last_read_seq",
        )
        .bind(seq)
        .bind(room_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn insert_message(&self, msg: NewMessage) -> StoreResult<Inserted> {
        let mut tx = self.pool.begin().await?;
        if let Some(cid) = &msg.client_id {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT id FROM messages WHERE author_id = $1 AND client_id = $2",
            )
            .bind(&msg.author_id)
            .bind(cid)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = existing {
                let rec = Self::message_tx(&mut tx, &id).await?;
                return Ok(Inserted::Existing(rec));
            }
        }
        let (seq, pos) = Self::bump_room(&mut tx, &msg.room_id, true).await?;
        // A concurrent insert of the same (author, client_id) — on this node or another —
        // that got past the check above: the index makes this statement wait for it,
        // and if it commits, insert nothing.
        let inserted = sqlx::query(
            "INSERT INTO messages (id, room_id, seq, pos, author_id, body, html, created_at, \
             reply_to, thread_root, client_id, mentions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb) \
             ON CONFLICT (author_id, client_id) WHERE client_id IS NOT NULL DO NOTHING",
        )
        .bind(&msg.id)
        .bind(&msg.room_id)
        .bind(seq)
        .bind(pos)
        .bind(&msg.author_id)
        .bind(&msg.body)
        .bind(&msg.html)
        .bind(msg.created_at)
        .bind(&msg.reply_to)
        .bind(&msg.thread_root)
        .bind(&msg.client_id)
        .bind(serde_json::to_string(&msg.mentions).context("mentions")?)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Give back the seq/pos taken above, then answer with the original.
            tx.rollback().await?;
            let row = sqlx::query(&format!(
                "{} WHERE m.author_id = $1 AND m.client_id = $2",
                message_select()
            ))
            .bind(&msg.author_id)
            .bind(&msg.client_id)
            .fetch_one(&self.pool)
            .await?;
            return Ok(Inserted::Existing(message_from(&row)?));
        }
        Self::write_mentions(&mut tx, &msg.id, &msg.room_id, seq, &msg.mentions).await?;
        if !msg.attachment_ids.is_empty() {
            // Rows are locked in id order, so two sends sharing uploads cannot deadlock;
            // an upload another send claimed meanwhile no longer qualifies once its
            // lock is granted.
            let claimed = sqlx::query(
                "UPDATE attachments SET message_id = $1 WHERE id IN \
                 (SELECT id FROM attachments WHERE id = ANY($3) AND uploader_id = $2 \
                  AND message_id IS NULL ORDER BY id FOR UPDATE)",
            )
            .bind(&msg.id)
            .bind(&msg.author_id)
            .bind(&msg.attachment_ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed as usize != msg.attachment_ids.len() {
                // Dropping the transaction rolls everything back (seq and pos included).
                return Err(StoreError::Conflict("attachment is not available"));
            }
        }
        // Posting reads the room up to one's own message.
        sqlx::query("UPDATE members SET last_read_seq = $1 WHERE room_id = $2 AND user_id = $3")
            .bind(seq)
            .bind(&msg.room_id)
            .bind(&msg.author_id)
            .execute(&mut *tx)
            .await?;
        let thread_root = match &msg.thread_root {
            Some(root) => {
                let (_, root_pos) = Self::bump_room(&mut tx, &msg.room_id, false).await?;
                sqlx::query(
                    "UPDATE messages SET reply_count = reply_count + 1, pos = $1 WHERE id = $2",
                )
                .bind(root_pos)
                .bind(root)
                .execute(&mut *tx)
                .await?;
                Some(Self::message_tx(&mut tx, root).await?)
            }
            None => None,
        };
        let message = Self::message_tx(&mut tx, &msg.id).await?;
        tx.commit().await?;
        Ok(Inserted::Created {
            message,
            thread_root,
        })
    }

    async fn message(&self, id: &str) -> StoreResult<MessageRecord> {
        let row = sqlx::query(&format!("{} WHERE m.id = $1", message_select()))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        message_from(&row)
    }

    async fn edit_message(
        &self,
        id: &str,
        body: &str,
        html: &str,
        mentions: &[String],
        now: i64,
    ) -> StoreResult<MessageRecord> {
        let mut tx = self.pool.begin().await?;
        let room_id: String =
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = $1 AND NOT deleted")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        // `NOT deleted` again: a delete may have committed while we waited for the room.
        let seq: i64 = sqlx::query_scalar(
            "UPDATE messages SET body = $1, html = $2, mentions = $3::jsonb, edited_at = $4, \
             pos = $5 WHERE id = $6 AND NOT deleted RETURNING seq",
        )
        .bind(body)
        .bind(html)
        .bind(serde_json::to_string(mentions).context("mentions")?)
        .bind(now)
        .bind(pos)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM mentions WHERE message_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::write_mentions(&mut tx, id, &room_id, seq, mentions).await?;
        let rec = Self::message_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn delete_message(&self, id: &str) -> StoreResult<MessageRecord> {
        let mut tx = self.pool.begin().await?;
        let room_id: String =
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = $1 AND NOT deleted")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        let r = sqlx::query(
            "UPDATE messages SET body = '', html = '', mentions = '[]', deleted = TRUE, \
             pinned = FALSE, pos = $1 WHERE id = $2 AND NOT deleted",
        )
        .bind(pos)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // A tombstone keeps nothing: no reactions, mentions or files.
        for table in ["reactions", "mentions", "attachments"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE message_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let rec = Self::message_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn history(
        &self,
        room_id: &str,
        cursor: HistoryCursor,
        limit: i64,
    ) -> StoreResult<HistoryPage> {
        let select = message_select();
        let (sql, bound, descending) = match cursor {
            HistoryCursor::Latest => (
                format!("{select} WHERE m.room_id = $1 ORDER BY m.seq DESC LIMIT $2"),
                None,
                true,
            ),
            HistoryCursor::Before(n) => (
                format!(
                    "{select} WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
                ),
                Some(n),
                true,
            ),
            HistoryCursor::After(n) => (
                format!("{select} WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3"),
                Some(n),
                false,
            ),
        };
        let mut q = sqlx::query(&sql).bind(room_id);
        if let Some(n) = bound {
            q = q.bind(n);
        }
        let rows = q.bind(limit + 1).fetch_all(&self.pool).await?;
        let has_more = rows.len() as i64 > limit;
        let mut messages = rows
            .iter()
            .take(limit as usize)
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        if descending {
            messages.reverse();
        }
        Ok(HistoryPage { messages, has_more })
    }

    async fn changes_since(
        &self,
        room_id: &str,
        after_pos: i64,
        limit: i64,
    ) -> StoreResult<Changes> {
        // One snapshot for the room's pos and the rows: under READ COMMITTED each
        // statement would see a newer one, and a change committed in between would be
        // in the rows but beyond the returned pos (or the other way round).
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let pos: i64 = sqlx::query_scalar("SELECT last_pos FROM rooms WHERE id = $1")
            .bind(room_id)
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query(&format!(
            "{} WHERE m.room_id = $1 AND m.pos > $2 ORDER BY m.pos DESC LIMIT $3",
            message_select()
        ))
        .bind(room_id)
        .bind(after_pos)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let truncated = rows.len() as i64 > limit;
        let mut messages = rows
            .iter()
            .take(limit as usize)
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(Changes {
            messages,
            truncated,
            pos,
        })
    }

    async fn react(
        &self,
        message_id: &str,
        user_id: &str,
        emoji: &str,
        add: bool,
        now: i64,
    ) -> StoreResult<Option<MessageRecord>> {
        let mut tx = self.pool.begin().await?;
        let (room_id, _) = Self::lock_live_message(&mut tx, message_id).await?;
        let result = if add {
            sqlx::query(
                "INSERT INTO reactions (message_id, user_id, emoji, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(message_id)
            .bind(user_id)
            .bind(emoji)
            .bind(now)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query(
                "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
            )
            .bind(message_id)
            .bind(user_id)
            .bind(emoji)
            .execute(&mut *tx)
            .await?
        };
        if result.rows_affected() == 0 {
            // Nothing changed: no pos taken (dropping the transaction releases the room).
            return Ok(None);
        }
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        sqlx::query("UPDATE messages SET pos = $1 WHERE id = $2")
            .bind(pos)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        let rec = Self::message_tx(&mut tx, message_id).await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn set_pinned(
        &self,
        message_id: &str,
        pinned: bool,
    ) -> StoreResult<Option<MessageRecord>> {
        let mut tx = self.pool.begin().await?;
        let (room_id, current) = Self::lock_live_message(&mut tx, message_id).await?;
        if current == pinned {
            return Ok(None);
        }
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        sqlx::query("UPDATE messages SET pinned = $1, pos = $2 WHERE id = $3")
            .bind(pinned)
            .bind(pos)
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        let rec = Self::message_tx(&mut tx, message_id).await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn pins(&self, room_id: &str) -> StoreResult<Vec<MessageRecord>> {
        let rows = sqlx::query(&format!(
            "{} WHERE m.room_id = $1 AND m.pinned AND NOT m.deleted ORDER BY m.seq DESC LIMIT 500",
            message_select()
        ))
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from).collect()
    }

    async fn thread(
        &self,
        root_id: &str,
        after_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<HistoryPage> {
        let limit = limit.max(0);
        let rows = sqlx::query(&format!(
            "{} WHERE m.thread_root = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3",
            message_select()
        ))
        .bind(root_id)
        .bind(after_seq.unwrap_or(0))
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let has_more = rows.len() as i64 > limit;
        let messages = rows
            .iter()
            .take(limit as usize)
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(HistoryPage { messages, has_more })
    }

    async fn set_notification_level(
        &self,
        room_id: &str,
        user_id: &str,
        level: &str,
    ) -> StoreResult<()> {
        let r = sqlx::query(
            "UPDATE members SET notification_level = $1 WHERE room_id = $2 AND user_id = $3",
        )
        .bind(level)
        .bind(room_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn notification_levels(
        &self,
        room_id: &str,
        users: Option<&[String]>,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let rows = match users {
            Some([]) => return Ok(Vec::new()),
            Some(users) => {
                sqlx::query(
                    "SELECT user_id, notification_level FROM members \
                     WHERE room_id = $1 AND user_id = ANY($2) ORDER BY user_id",
                )
                .bind(room_id)
                .bind(users)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT user_id, notification_level FROM members WHERE room_id = $1 \
                     AND notification_level IS NOT NULL ORDER BY user_id",
                )
                .bind(room_id)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn dm_by_key(&self, key: &str) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r WHERE r.dm_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn create_dm(
        &self,
        room: NewRoom,
        key: &str,
        members: &[String],
    ) -> StoreResult<RoomRecord> {
        let mut tx = self.pool.begin().await?;
        // The unique index on dm_key settles a race of two nodes opening the same DM:
        // the later insert waits for the earlier one and, once it commits, conflicts.
        let res = sqlx::query(
            "INSERT INTO rooms (id, name, topic, kind, guests_allowed, created_by, created_at, \
             member_count, dm_key) VALUES ($1, $2, $3, 'dm', TRUE, $4, $5, $6, $7)",
        )
        .bind(&room.id)
        .bind(&room.name)
        .bind(&room.topic)
        .bind(&room.created_by)
        .bind(room.created_at)
        .bind(members.len() as i64)
        .bind(key)
        .execute(&mut *tx)
        .await;
        match res {
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(StoreError::Conflict("this DM exists"));
            }
            other => other?,
        };
        for u in members {
            sqlx::query(
                "INSERT INTO members (room_id, user_id, role, joined_at) \
                 VALUES ($1, $2, 'member', $3)",
            )
            .bind(&room.id)
            .bind(u)
            .bind(room.created_at)
            .execute(&mut *tx)
            .await?;
        }
        let rec = Self::room_tx(&mut tx, &room.id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn search(
        &self,
        user_id: &str,
        terms: &[String],
        room_id: Option<&str>,
        author_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let Some(query) = tsquery_text(terms) else {
            return Ok(Vec::new());
        };
        // $1 user, $2 query, $3 headline options, $4 limit, then the filters.
        let mut filters = String::new();
        let mut n = 4;
        for (col, value) in [("m.room_id", room_id), ("m.author_id", author_id)] {
            if value.is_some() {
                n += 1;
                filters.push_str(&format!(" AND {col} = ${n}"));
            }
        }
        // Rank and limit first; headlines (the costly part) only for the hits kept.
        let sql = format!(
            "SELECT {MESSAGE_COLS}, {USER_COLS}, \
             ts_headline('simple'::regconfig, m.body, to_tsquery('simple'::regconfig, $2), $3) \
             AS snippet \
             FROM (SELECT m.id AS hit_id, \
                   ts_rank(m.search_vector, to_tsquery('simple'::regconfig, $2), 1) AS rank \
                   FROM messages m \
                   JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = $1 \
                   WHERE m.search_vector @@ to_tsquery('simple'::regconfig, $2) \
                   AND NOT m.deleted{filters} \
                   ORDER BY rank DESC, m.created_at DESC, m.id DESC LIMIT $4) h \
             JOIN messages m ON m.id = h.hit_id JOIN users u ON u.id = m.author_id \
             ORDER BY h.rank DESC, m.created_at DESC, m.id DESC"
        );
        let mut q = sqlx::query(&sql)
            .bind(user_id)
            .bind(&query)
            .bind(headline_options())
            .bind(limit.max(0));
        for value in [room_id, author_id].into_iter().flatten() {
            q = q.bind(value);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let message = message_from(row)?;
                let headline: String = row.try_get("snippet")?;
                let snippet = with_ellipses(&message.body, &headline);
                Ok(SearchHit { message, snippet })
            })
            .collect()
    }

    async fn create_attachment(&self, a: AttachmentRecord) -> StoreResult<AttachmentRecord> {
        insert_attachment(&a, a.message_id.as_deref())
            .execute(&self.pool)
            .await?;
        Ok(a)
    }

    async fn attachments(&self, ids: &[String]) -> StoreResult<Vec<AttachmentRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLS} FROM attachments WHERE id = ANY($1) ORDER BY created_at, id"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(attachment_from)
        .collect()
    }

    async fn delete_unsent_attachments(&self, before: i64) -> StoreResult<Vec<AttachmentRecord>> {
        // Uploads a send is claiming right now (row locked) are left for the next sweep:
        // no waiting, so no lock-order deadlock with a claim of several uploads. A send
        // that comes after the sweep finds its uploads gone and fails with Conflict.
        sqlx::query(&format!(
            "DELETE FROM attachments WHERE id IN (SELECT id FROM attachments \
             WHERE message_id IS NULL AND created_at < $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {ATTACHMENT_COLS}"
        ))
        .bind(before)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(attachment_from)
        .collect()
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = $1) \
             OR EXISTS (SELECT 1 FROM attachments WHERE thumb_sha256 = $1)",
        )
        .bind(sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(used)
    }

    async fn all_users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u ORDER BY u.created_at, u.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    async fn all_rooms(&self) -> StoreResult<Vec<RoomRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r ORDER BY r.created_at, r.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from).collect()
    }

    async fn import_user(&self, u: &UserRecord) -> StoreResult<()> {
        // Guests come without sessions: their names are free again.
        let name_key = (u.kind != UserKind::Guest).then(|| u.username.to_lowercase());
        sqlx::query(
            "INSERT INTO users (id, kind, username, name_key, display_name, password_hash, bio, \
             status_text, avatar_hash, is_admin, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&u.id)
        .bind(u.kind.as_str())
        .bind(&u.username)
        .bind(name_key)
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(&u.bio)
        .bind(&u.status_text)
        .bind(&u.avatar_hash)
        .bind(u.is_admin)
        .bind(u.created_at)
        .bind(u.last_seen_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_avatar(&self, hash: &str, content_type: &str, data: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO avatars (hash, content_type, data) VALUES ($1, $2, $3) \
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash)
        .bind(content_type)
        .bind(data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_room(&self, r: &RoomRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rooms (id, name, topic, kind, password_hash, guests_allowed, starts_at, \
             ends_at, member_limit, created_by, created_at, last_seq, last_pos, member_count, \
             is_default, dm_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.topic)
        .bind(r.kind.as_str())
        .bind(&r.password_hash)
        .bind(r.guests_allowed)
        .bind(r.starts_at)
        .bind(r.ends_at)
        .bind(r.member_limit)
        .bind(&r.created_by)
        .bind(r.created_at)
        .bind(r.last_seq)
        .bind(r.last_pos)
        .bind(r.member_count)
        .bind(r.is_default)
        .bind(&r.dm_key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_member(&self, m: &MemberRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq, \
             notification_level, muted_until) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&m.room_id)
        .bind(&m.user_id)
        .bind(m.role.as_str())
        .bind(m.joined_at)
        .bind(m.last_read_seq)
        .bind(&m.notification_level)
        .bind(m.muted_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn import_message(&self, m: &MessageRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO messages (id, room_id, seq, pos, author_id, body, html, created_at, \
             edited_at, deleted, pinned, reply_to, thread_root, reply_count, client_id, mentions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb)",
        )
        .bind(&m.id)
        .bind(&m.room_id)
        .bind(m.seq)
        .bind(m.pos)
        .bind(&m.author.id)
        .bind(&m.body)
        .bind(&m.html)
        .bind(m.created_at)
        .bind(m.edited_at)
        .bind(m.deleted)
        .bind(m.pinned)
        .bind(&m.reply_to)
        .bind(&m.thread_root)
        .bind(m.reply_count)
        .bind(&m.client_id)
        .bind(serde_json::to_string(&m.mentions).context("mentions")?)
        .execute(&mut *tx)
        .await?;
        Self::write_mentions(&mut tx, &m.id, &m.room_id, m.seq, &m.mentions).await?;
        // Keep the order of reactions with increasing timestamps.
        let mut t = m.created_at;
        for r in &m.reactions {
            for u in &r.user_ids {
                t += 1;
                sqlx::query(
                    "INSERT INTO reactions (message_id, user_id, emoji, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&m.id)
                .bind(u)
                .bind(&r.emoji)
                .bind(t)
                .execute(&mut *tx)
                .await?;
            }
        }
        for a in &m.attachments {
            insert_attachment(a, Some(&m.id)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
