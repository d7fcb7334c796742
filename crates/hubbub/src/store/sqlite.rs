//! The SQLite store: the default backend, embedded, one file under the data dir.
//!
//! Writes go through a pool of exactly one connection, so transactions never fight
//! for SQLite's single write lock (no `SQLITE_BUSY` storms) and commit in the order
//! they were issued. Reads use a separate pool and see WAL snapshots, so they never
//! wait for writers.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};

use super::*;

mod commit;
mod direct;

pub struct SqliteStore {
    write: SqlitePool,
    /// Group commit of new messages (see `commit`).
    committer: tokio::sync::mpsc::Sender<commit::Pending>,
    /// Hot point reads on the calling thread (see `direct`); None for in-memory
    /// databases.
    direct: Option<direct::Direct>,
    read: SqlitePool,
    /// Stops the background checkpointer.
    stop: tokio_util::sync::CancellationToken,
}

/// The writer checkpoints only as a safety net (≈ 40 MiB of WAL); normally a
/// background connection copies the WAL into the database every second, so the
/// writer never pays for the checkpoint's fsync in the middle of a send.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "10000";

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

fn message_select() -> String {
    format!(
        "SELECT m.id, m.room_id, m.seq, m.pos, m.body, m.html, m.created_at, m.edited_at, \
         m.deleted, m.pinned, m.reply_to, m.thread_root, m.reply_count, m.client_id, \
         m.mentions, {USER_COLS} FROM messages m JOIN users u ON u.id = m.author_id"
    )
}

fn user_from(row: &SqliteRow) -> StoreResult<UserRecord> {
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

/// The columns of a new message row, in the order `bind_new_message` binds them.
const NEW_MESSAGE_COLS: &str = "id, room_id, seq, pos, author_id, body, html, created_at, \
    reply_to, thread_root, client_id, mentions";
const NEW_MESSAGE_ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds one `NEW_MESSAGE_ROW` of a new message numbered `seq`, `pos`.
fn bind_new_message<'q>(
    q: SqliteQuery<'q>,
    m: &'q NewMessage,
    seq: i64,
    pos: i64,
) -> StoreResult<SqliteQuery<'q>> {
    Ok(q.bind(&m.id)
        .bind(&m.room_id)
        .bind(seq)
        .bind(pos)
        .bind(&m.author_id)
        .bind(&m.body)
        .bind(&m.html)
        .bind(m.created_at)
        .bind(&m.reply_to)
        .bind(&m.thread_root)
        .bind(&m.client_id)
        .bind(serde_json::to_string(&m.mentions).context("mentions")?))
}

/// A room and, if any, one user's membership of it (binds: user id, room id).
static ROOM_WITH_MEMBER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {ROOM_COLS}, {MEMBER_COLS} FROM rooms r LEFT JOIN members mb \
         ON mb.room_id = r.id AND mb.user_id = ? WHERE r.id = ?"
    )
});

fn room_and_member(row: &impl Cols) -> StoreResult<(RoomRecord, Option<MemberRecord>)> {
    let member = match row.col::<Option<String>>("mb_user_id")? {
        Some(_) => Some(member_from(row)?),
        None => None,
    };
    Ok((room_from(row)?, member))
}

/// A result row read by column name: sqlx's rows and the direct connection's rows
/// (`direct`) share the record mappings below.
trait Cols {
    fn col<T>(&self, name: &str) -> StoreResult<T>
    where
        T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql;
}

impl Cols for SqliteRow {
    fn col<T>(&self, name: &str) -> StoreResult<T>
    where
        T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql,
    {
        Ok(self.try_get(name)?)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T>(&self, name: &str) -> StoreResult<T>
    where
        T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + rusqlite::types::FromSql,
    {
        self.get(name)
            .map_err(|e| StoreError::Other(anyhow::Error::new(e).context(name.to_string())))
    }
}

fn room_from(row: &impl Cols) -> StoreResult<RoomRecord> {
    let kind: String = row.col("r_kind")?;
    Ok(RoomRecord {
        id: row.col("r_id")?,
        name: row.col("r_name")?,
        topic: row.col("r_topic")?,
        kind: RoomKind::parse(&kind).context("bad room kind")?,
        password_hash: row.col("r_password_hash")?,
        guests_allowed: row.col("r_guests_allowed")?,
        starts_at: row.col("r_starts_at")?,
        ends_at: row.col("r_ends_at")?,
        member_limit: row.col("r_member_limit")?,
        created_by: row.col("r_created_by")?,
        created_at: row.col("r_created_at")?,
        last_seq: row.col("r_last_seq")?,
        last_pos: row.col("r_last_pos")?,
        member_count: row.col("r_member_count")?,
        is_default: row.col("r_is_default")?,
        dm_key: row.col("r_dm_key")?,
    })
}

fn member_from(row: &impl Cols) -> StoreResult<MemberRecord> {
    let role: String = row.col("mb_role")?;
    Ok(MemberRecord {
        room_id: row.col("mb_room_id")?,
        user_id: row.col("mb_user_id")?,
        role: Role::parse(&role).context("bad role")?,
        joined_at: row.col("mb_joined_at")?,
        last_read_seq: row.col("mb_last_read_seq")?,
        notification_level: row.col("mb_notification_level")?,
        muted_until: row.col("mb_muted_until")?,
    })
}

fn message_from(row: &SqliteRow) -> StoreResult<MessageRecord> {
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
        reactions: Vec::new(),
        attachments: Vec::new(),
    })
}

const ATTACHMENT_COLS: &str = "id, uploader_id, message_id, name, content_type, size, sha256, \
    width, height, thumb_sha256, created_at";

/// The insert of one attachment row, stored as belonging to `message_id`.
fn insert_attachment<'q>(a: &'q AttachmentRecord, message_id: Option<&'q str>) -> SqliteQuery<'q> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO attachments ({ATTACHMENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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

fn attachment_from(row: &SqliteRow) -> StoreResult<AttachmentRecord> {
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

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Fills in reactions and attachments of already-loaded messages (two queries).
async fn load_extras(
    conn: &mut SqliteConnection,
    messages: &mut [MessageRecord],
) -> StoreResult<()> {
    for chunk in messages.chunks_mut(500) {
        let ids: Vec<String> = chunk
            .iter()
            .filter(|m| !m.deleted)
            .map(|m| m.id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({}) \
             ORDER BY created_at, user_id",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let mid: String = row.try_get(0)?;
            let emoji: String = row.try_get(1)?;
            let user: String = row.try_get(2)?;
            if let Some(m) = chunk.iter_mut().find(|m| m.id == mid) {
                match m.reactions.iter_mut().find(|r| r.emoji == emoji) {
                    Some(r) => r.user_ids.push(user),
                    None => m.reactions.push(ReactionRecord {
                        emoji,
                        user_ids: vec![user],
                    }),
                }
            }
        }
        let sql = format!(
            "SELECT {ATTACHMENT_COLS} FROM attachments WHERE message_id IN ({}) ORDER BY created_at, id",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let a = attachment_from(&row)?;
            if let Some(m) = chunk
                .iter_mut()
                .find(|m| Some(&m.id) == a.message_id.as_ref())
            {
                m.attachments.push(a);
            }
        }
    }
    Ok(())
}

/// A bind value for dynamically built queries.
enum Bind<'a> {
    Str(&'a str),
    Int(i64),
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> anyhow::Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL {url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a crash of the process (kill -9);
            // only an OS crash or power loss can take back the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Room for the app's statements plus every group-commit shape (4 × 32).
            .statement_cache_capacity(512);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                opts.clone()
                    .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES),
            )
            .await
            .with_context(|| format!("cannot open SQLite database {url}"))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&write)
            .await
            .context("cannot migrate SQLite database")?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone().read_only(true))
            .await
            .context("cannot open SQLite read pool")?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .context("cannot open SQLite checkpoint connection")?;
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {}
                }
                // PASSIVE never blocks the writer or readers.
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpointer)
                    .await
                {
                    tracing::debug!(error = %e, "background checkpoint failed");
                }
            }
            checkpointer.close().await;
        });
        let file = opts.get_filename();
        let direct = if file.as_os_str().is_empty() || file == std::path::Path::new(":memory:") {
            None
        } else {
            Some(direct::Direct::open(file).context("cannot open SQLite direct readers")?)
        };
        let committer = commit::spawn(write.clone());
        Ok(SqliteStore {
            write,
            committer,
            direct,
            read,
            stop,
        })
    }

    /// Stores one message in its own transaction (messages with attachments or a
    /// thread root, and the retry path of a failed batch).
    async fn insert_one(pool: &SqlitePool, msg: NewMessage) -> StoreResult<Inserted> {
        let mut tx = pool.begin().await?;
        let (seq, pos) = Self::bump_room(&mut tx, &msg.room_id, true).await?;
        // A repeated (author, client_id) inserts nothing; the transaction is then
        // dropped (rolled back, so seq and pos are not used) and the original returned.
        let sql = format!(
            "INSERT INTO messages ({NEW_MESSAGE_COLS}) VALUES {NEW_MESSAGE_ROW} \
             ON CONFLICT (author_id, client_id) WHERE client_id IS NOT NULL DO NOTHING"
        );
        let inserted = bind_new_message(sqlx::query(&sql), &msg, seq, pos)?
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            drop(tx);
            let cid = msg.client_id.as_deref().unwrap_or("");
            let sql = format!(
                "{} WHERE m.author_id = ? AND m.client_id = ?",
                message_select()
            );
            let rec =
                Self::messages_on(pool, &sql, vec![Bind::Str(&msg.author_id), Bind::Str(cid)])
                    .await?
                    .pop()
                    .ok_or(StoreError::NotFound)?;
            return Ok(Inserted::Existing(rec));
        }
        Self::write_mentions(&mut tx, &msg.id, &msg.room_id, seq, &msg.mentions).await?;
        if !msg.attachment_ids.is_empty() {
            let sql = format!(
                "UPDATE attachments SET message_id = ? WHERE uploader_id = ? \
                 AND message_id IS NULL AND id IN ({})",
                placeholders(msg.attachment_ids.len())
            );
            let mut q = sqlx::query(&sql).bind(&msg.id).bind(&msg.author_id);
            for a in &msg.attachment_ids {
                q = q.bind(a);
            }
            let claimed = q.execute(&mut *tx).await?.rows_affected();
            if claimed as usize != msg.attachment_ids.len() {
                // Dropping the transaction rolls everything back.
                return Err(StoreError::Conflict("attachment is not available"));
            }
        }
        // Posting reads the room up to one's own message.
        sqlx::query("UPDATE members SET last_read_seq = ? WHERE room_id = ? AND user_id = ?")
            .bind(seq)
            .bind(&msg.room_id)
            .bind(&msg.author_id)
            .execute(&mut *tx)
            .await?;
        let thread_root = match &msg.thread_root {
            Some(root) => {
                let (_, root_pos) = Self::bump_room(&mut tx, &msg.room_id, false).await?;
                sqlx::query(
                    "UPDATE messages SET reply_count = reply_count + 1, pos = ? WHERE id = ?",
                )
                .bind(root_pos)
                .bind(root)
                .execute(&mut *tx)
                .await?;
                Some(Self::message_tx(&mut tx, root).await?)
            }
            None => None,
        };
        // A new message has no reactions yet; attachments only if it claimed some.
        let row = sqlx::query(&format!("{} WHERE m.id = ?", message_select()))
            .bind(&msg.id)
            .fetch_one(&mut *tx)
            .await?;
        let mut message = [message_from(&row)?];
        if !msg.attachment_ids.is_empty() {
            load_extras(&mut tx, &mut message).await?;
        }
        let [message] = message;
        tx.commit().await?;
        Ok(Inserted::Created {
            message,
            thread_root,
        })
    }

    async fn message_tx(tx: &mut Transaction<'_, Sqlite>, id: &str) -> StoreResult<MessageRecord> {
        let row = sqlx::query(&format!("{} WHERE m.id = ?", message_select()))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        let mut m = [message_from(&row)?];
        load_extras(&mut *tx, &mut m).await?;
        let [m] = m;
        Ok(m)
    }

    /// Messages read on the read pool.
    async fn messages_read(
        &self,
        sql: &str,
        binds: Vec<Bind<'_>>,
    ) -> StoreResult<Vec<MessageRecord>> {
        Self::messages_on(&self.read, sql, binds).await
    }

    /// Runs a message query on a pool and fills in reactions and attachments.
    async fn messages_on(
        pool: &SqlitePool,
        sql: &str,
        binds: Vec<Bind<'_>>,
    ) -> StoreResult<Vec<MessageRecord>> {
        let mut conn = pool.acquire().await?;
        let mut q = sqlx::query(sql);
        for b in binds {
            q = match b {
                Bind::Str(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&mut *conn).await?;
        let mut out = rows
            .iter()
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        load_extras(&mut conn, &mut out).await?;
        Ok(out)
    }

    async fn user_tx(tx: &mut Transaction<'_, Sqlite>, id: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?"))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        user_from(&row)
    }

    async fn write_mentions(
        tx: &mut Transaction<'_, Sqlite>,
        message_id: &str,
        room_id: &str,
        seq: i64,
        users: &[String],
    ) -> StoreResult<()> {
        for u in users {
            sqlx::query(
                "INSERT OR IGNORE INTO mentions (message_id, room_id, user_id, seq) VALUES (?, ?, ?, ?)",
            )
            .bind(message_id)
            .bind(room_id)
            .bind(u)
            .bind(seq)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Takes the room's next `pos` (and, for a new message, its next `seq`).
    async fn bump_room(
        tx: &mut Transaction<'_, Sqlite>,
        room_id: &str,
        new_message: bool,
    ) -> StoreResult<(i64, i64)> {
        let inc = i64::from(new_message);
        let row = sqlx::query(
            "UPDATE rooms SET last_seq = last_seq + ?, last_pos = last_pos + 1 \
             WHERE id = ? RETURNING last_seq, last_pos",
        )
        .bind(inc)
        .bind(room_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn insert_user(
        tx: &mut Transaction<'_, Sqlite>,
        u: &NewUser,
        is_admin: bool,
    ) -> StoreResult<UserRecord> {
        let res = sqlx::query(
            "INSERT INTO users (id, kind, username, name_key, display_name, password_hash, \
             is_admin, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        self.stop.cancel();
        // Fold the WAL back into the main file so a stopped server leaves one file.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.write)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint on shutdown failed");
        }
        self.read.close().await;
        self.write.close().await;
    }

    async fn create_account(&self, user: NewUser) -> StoreResult<UserRecord> {
        let mut tx = self.write.begin().await?;
        let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE kind = 'user'")
            .fetch_one(&mut *tx)
            .await?;
        let first = accounts == 0 && user.kind == UserKind::User;
        let rec = Self::insert_user(&mut tx, &user, first).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create_guest(&self, user: NewUser, now: i64) -> StoreResult<UserRecord> {
        let mut tx = self.write.begin().await?;
        // A guest whose sessions have all expired no longer holds its name.
        sqlx::query(
            "UPDATE users SET name_key = NULL WHERE name_key = ? AND kind = 'guest' \
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = users.id \
             AND s.expires_at > ?)",
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
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?"))
            .bind(id)
            .fetch_one(&self.read)
            .await?;
        user_from(&row)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.name_key = ?"
        ))
        .bind(username.to_lowercase())
        .fetch_one(&self.read)
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
             (u.name_key LIKE ?1 ESCAPE '\\' OR lower(coalesce(u.display_name, '')) LIKE ?1 \
             ESCAPE '\\') ORDER BY u.name_key LIMIT ?2"
        ))
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(user_from).collect()
    }

    async fn update_profile(&self, id: &str, patch: ProfilePatch) -> StoreResult<UserRecord> {
        let mut tx = self.write.begin().await?;
        if let Some(d) = patch.display_name {
            sqlx::query("UPDATE users SET display_name = ? WHERE id = ?")
                .bind(d)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(b) = patch.bio {
            sqlx::query("UPDATE users SET bio = ? WHERE id = ?")
                .bind(b)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(s) = patch.status_text {
            sqlx::query("UPDATE users SET status_text = ? WHERE id = ?")
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
        let r = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_admin(&self, id: &str, is_admin: bool) -> StoreResult<()> {
        let r = sqlx::query("UPDATE users SET is_admin = ? WHERE id = ?")
            .bind(is_admin)
            .bind(id)
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_last_seen(&self, id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE users SET last_seen_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn set_avatar(
        &self,
        user_id: &str,
        avatar: Option<(String, String, Vec<u8>)>,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.write.begin().await?;
        let hash = match avatar {
            Some((hash, content_type, data)) => {
                sqlx::query(
                    "INSERT INTO avatars (hash, content_type, data) VALUES (?, ?, ?) \
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
        let r = sqlx::query("UPDATE users SET avatar_hash = ? WHERE id = ?")
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
        let row = sqlx::query("SELECT content_type, data FROM avatars WHERE hash = ?")
            .bind(hash)
            .fetch_one(&self.read)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    async fn release_guest_name(&self, user_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE users SET name_key = NULL WHERE id = ? AND kind = 'guest'")
            .bind(user_id)
            .execute(&self.write)
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
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: i64) -> StoreResult<SessionRecord> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, s.last_used_at, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_one(&self.read)
        .await?;
        Ok(SessionRecord {
            user: user_from(&row)?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    async fn touch_session(&self, token_hash: &str, now: i64, expires_at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE token_hash = ?")
            .bind(now)
            .bind(expires_at)
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn create_room(&self, room: NewRoom, owner: Option<&str>) -> StoreResult<RoomRecord> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO rooms (id, name, topic, kind, password_hash, guests_allowed, starts_at, \
             ends_at, member_limit, created_by, created_at, is_default, member_count) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)",
            )
            .bind(&room.id)
            .bind(owner)
            .bind(room.created_at)
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = ?"))
            .bind(&room.id)
            .fetch_one(&mut *tx)
            .await?;
        let rec = room_from(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn room(&self, id: &str) -> StoreResult<RoomRecord> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = ?"))
            .bind(id)
            .fetch_one(&self.read)
            .await?;
        room_from(&row)
    }

    async fn default_room(&self) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r WHERE r.is_default = 1 LIMIT 1"
        ))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn update_room(&self, id: &str, patch: RoomPatch) -> StoreResult<RoomRecord> {
        let mut tx = self.write.begin().await?;
        let cur = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = ?"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let cur = room_from(&cur)?;
        sqlx::query(
            "UPDATE rooms SET name = ?, topic = ?, password_hash = ?, guests_allowed = ?, \
             starts_at = ?, ends_at = ?, member_limit = ? WHERE id = ?",
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
        let row = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = ?"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let rec = room_from(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn delete_room(&self, id: &str) -> StoreResult<()> {
        let r = sqlx::query("DELETE FROM rooms WHERE id = ?")
            .bind(id)
            .execute(&self.write)
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
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(room_from).collect()
    }

    async fn joined_rooms(&self, user_id: &str) -> StoreResult<Vec<JoinedRoom>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS}, {MEMBER_COLS}, \
             (SELECT COUNT(*) FROM messages m WHERE m.room_id = r.id \
              AND m.seq > mb.last_read_seq AND m.author_id != mb.user_id AND m.deleted = 0) \
              AS unread, \
             (SELECT COUNT(*) FROM mentions mn WHERE mn.room_id = r.id \
              AND mn.user_id = mb.user_id AND mn.seq > mb.last_read_seq) AS mentioned \
             FROM members mb JOIN rooms r ON r.id = mb.room_id WHERE mb.user_id = ? \
             ORDER BY r.is_default DESC, r.name"
        ))
        .bind(user_id)
        .fetch_all(&self.read)
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
            "SELECT {MEMBER_COLS} FROM members mb WHERE mb.room_id = ? AND mb.user_id = ?"
        ))
        .bind(room_id)
        .bind(user_id)
        .fetch_one(&self.read)
        .await?;
        member_from(&row)
    }

    async fn room_with_member(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> StoreResult<(RoomRecord, Option<MemberRecord>)> {
        let sql: &str = &ROOM_WITH_MEMBER;
        if let Some(direct) = &self.direct
            && let Some(res) = direct.try_with(|c| {
                let mut st = c.prepare_cached(sql).map_err(direct::err)?;
                let mut rows = st.query((user_id, room_id)).map_err(direct::err)?;
                match rows.next().map_err(direct::err)? {
                    Some(row) => room_and_member(row),
                    None => Err(StoreError::NotFound),
                }
            })
        {
            return res;
        }
        let row = sqlx::query(sql)
            .bind(user_id)
            .bind(room_id)
            .fetch_one(&self.read)
            .await?;
        room_and_member(&row)
    }

    async fn add_member(
        &self,
        room_id: &str,
        user_id: &str,
        role: Role,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM members WHERE room_id = ? AND user_id = ?")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Ok(false);
        }
        let row = sqlx::query("SELECT member_count, member_limit FROM rooms WHERE id = ?")
            .bind(room_id)
            .fetch_one(&mut *tx)
            .await?;
        let count: i64 = row.try_get(0)?;
        let limit: Option<i64> = row.try_get(1)?;
        if limit.is_some_and(|l| count >= l) {
            return Err(StoreError::RoomFull);
        }
        sqlx::query("INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)")
            .bind(room_id)
            .bind(user_id)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE rooms SET member_count = member_count + 1 WHERE id = ?")
            .bind(room_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_member(&self, room_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let r = sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
            .bind(room_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE rooms SET member_count = member_count - 1 WHERE id = ?")
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
             WHERE mb.room_id = ? AND mb.user_id > ? ORDER BY mb.user_id LIMIT ?"
        ))
        .bind(room_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
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
            "SELECT {USER_COLS} FROM users u WHERE u.id = ?1 OR u.id IN \
             (SELECT other.user_id FROM members me \
              JOIN rooms r ON r.id = me.room_id AND (r.member_count <= ?2 OR r.kind = 'dm') \
              JOIN members other ON other.room_id = me.room_id WHERE me.user_id = ?1)"
        ))
        .bind(user_id)
        .bind(max_members)
        .fetch_all(&self.read)
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
            "UPDATE members SET last_read_seq = MAX(last_read_seq, \
             MIN(?, (SELECT last_seq FROM rooms WHERE id = ?))) \
             WHERE room_id = ? AND user_id = ? RETURNING last_read_seq",
        )
        .bind(seq)
        .bind(room_id)
        .bind(room_id)
        .bind(user_id)
        .fetch_one(&self.write)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn insert_message(&self, msg: NewMessage) -> StoreResult<Inserted> {
        if msg.thread_root.is_some() || !msg.attachment_ids.is_empty() {
            return Self::insert_one(&self.write, msg).await;
        }
        let (done, result) = tokio::sync::oneshot::channel();
        self.committer
            .send(commit::Pending { msg, done })
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        result
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?
    }

    async fn message(&self, id: &str) -> StoreResult<MessageRecord> {
        let sql = format!("{} WHERE m.id = ?", message_select());
        self.messages_read(&sql, vec![Bind::Str(id)])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn edit_message(
        &self,
        id: &str,
        body: &str,
        html: &str,
        mentions: &[String],
        now: i64,
    ) -> StoreResult<MessageRecord> {
        let mut tx = self.write.begin().await?;
        let room_id: String =
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = ? AND deleted = 0")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        sqlx::query(
            "UPDATE messages SET body = ?, html = ?, mentions = ?, edited_at = ?, pos = ? \
             WHERE id = ?",
        )
        .bind(body)
        .bind(html)
        .bind(serde_json::to_string(mentions).context("mentions")?)
        .bind(now)
        .bind(pos)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM messages WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mentions WHERE message_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::write_mentions(&mut tx, id, &room_id, seq, mentions).await?;
        let rec = Self::message_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn delete_message(&self, id: &str) -> StoreResult<MessageRecord> {
        let mut tx = self.write.begin().await?;
        let room_id: String =
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = ? AND deleted = 0")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        sqlx::query(
            "UPDATE messages SET body = '', html = '', mentions = '[]', deleted = 1, pinned = 0, \
             pos = ? WHERE id = ?",
        )
        .bind(pos)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        // A tombstone keeps nothing: no reactions, mentions or files.
        for table in ["reactions", "mentions", "attachments"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE message_id = ?"))
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
        let (cond, order, bound) = match cursor {
            HistoryCursor::Latest => ("", "DESC", 0),
            HistoryCursor::Before(n) => ("AND m.seq < ?", "DESC", n),
            HistoryCursor::After(n) => ("AND m.seq > ?", "ASC", n),
        };
        let sql = format!(
            "{} WHERE m.room_id = ? {cond} ORDER BY m.seq {order} LIMIT ?",
            message_select()
        );
        let mut binds = vec![Bind::Str(room_id)];
        if !cond.is_empty() {
            binds.push(Bind::Int(bound));
        }
        binds.push(Bind::Int(limit + 1));
        let mut messages = self.messages_read(&sql, binds).await?;
        let has_more = messages.len() as i64 > limit;
        messages.truncate(limit as usize);
        if order == "DESC" {
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
        // One read transaction: the room's pos and the rows come from the same snapshot.
        let mut tx = self.read.begin().await?;
        let pos: i64 = sqlx::query_scalar("SELECT last_pos FROM rooms WHERE id = ?")
            .bind(room_id)
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query(&format!(
            "{} WHERE m.room_id = ? AND m.pos > ? ORDER BY m.pos DESC LIMIT ?",
            message_select()
        ))
        .bind(room_id)
        .bind(after_pos)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        let truncated = rows.len() as i64 > limit;
        let mut messages = rows
            .iter()
            .take(limit as usize)
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        load_extras(&mut tx, &mut messages).await?;
        tx.commit().await?;
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
        let mut tx = self.write.begin().await?;
        let room_id: String =
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = ? AND deleted = 0")
                .bind(message_id)
                .fetch_one(&mut *tx)
                .await?;
        let result = if add {
            sqlx::query(
                "INSERT OR IGNORE INTO reactions (message_id, user_id, emoji, created_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(message_id)
            .bind(user_id)
            .bind(emoji)
            .bind(now)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query("DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?")
                .bind(message_id)
                .bind(user_id)
                .bind(emoji)
                .execute(&mut *tx)
                .await?
        };
        let changed = result.rows_affected() > 0;
        if !changed {
            return Ok(None);
        }
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        sqlx::query("UPDATE messages SET pos = ? WHERE id = ?")
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
        let mut tx = self.write.begin().await?;
        let row = sqlx::query("SELECT room_id, pinned FROM messages WHERE id = ? AND deleted = 0")
            .bind(message_id)
            .fetch_one(&mut *tx)
            .await?;
        let room_id: String = row.try_get(0)?;
        let current: bool = row.try_get(1)?;
        if current == pinned {
            return Ok(None);
        }
        let (_, pos) = Self::bump_room(&mut tx, &room_id, false).await?;
        sqlx::query("UPDATE messages SET pinned = ?, pos = ? WHERE id = ?")
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
        let sql = format!(
            "{} WHERE m.room_id = ? AND m.pinned = 1 AND m.deleted = 0 ORDER BY m.seq DESC LIMIT 500",
            message_select()
        );
        self.messages_read(&sql, vec![Bind::Str(room_id)]).await
    }

    async fn thread(
        &self,
        root_id: &str,
        after_seq: Option<i64>,
        limit: i64,
    ) -> StoreResult<HistoryPage> {
        let sql = format!(
            "{} WHERE m.thread_root = ? AND m.seq > ? ORDER BY m.seq ASC LIMIT ?",
            message_select()
        );
        let binds = vec![
            Bind::Str(root_id),
            Bind::Int(after_seq.unwrap_or(0)),
            Bind::Int(limit + 1),
        ];
        let mut messages = self.messages_read(&sql, binds).await?;
        let has_more = messages.len() as i64 > limit;
        messages.truncate(limit as usize);
        Ok(HistoryPage { messages, has_more })
    }

    async fn set_notification_level(
        &self,
        room_id: &str,
        user_id: &str,
        level: &str,
    ) -> StoreResult<()> {
        let r = sqlx::query(
            "UPDATE members SET notification_level = ? WHERE room_id = ? AND user_id = ?",
        )
        .bind(level)
        .bind(room_id)
        .bind(user_id)
        .execute(&self.write)
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
                let sql = format!(
                    "SELECT user_id, notification_level FROM members WHERE room_id = ? AND user_id IN ({})",
                    placeholders(users.len())
                );
                let mut q = sqlx::query(&sql).bind(room_id);
                for u in users {
                    q = q.bind(u);
                }
                q.fetch_all(&self.read).await?
            }
            None => {
                sqlx::query(
                    "SELECT user_id, notification_level FROM members WHERE room_id = ? \
                     AND notification_level IS NOT NULL",
                )
                .bind(room_id)
                .fetch_all(&self.read)
                .await?
            }
        };
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn dm_by_key(&self, key: &str) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r WHERE r.dm_key = ?"
        ))
        .bind(key)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(room_from).transpose()
    }

    async fn create_dm(
        &self,
        room: NewRoom,
        key: &str,
        members: &[String],
    ) -> StoreResult<RoomRecord> {
        let mut tx = self.write.begin().await?;
        let res = sqlx::query(
            "INSERT INTO rooms (id, name, topic, kind, guests_allowed, created_by, created_at, \
             member_count, dm_key) VALUES (?, ?, ?, 'dm', 1, ?, ?, ?, ?)",
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
            sqlx::query("INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'member', ?)")
                .bind(&room.id)
                .bind(u)
                .bind(room.created_at)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(&format!("SELECT {ROOM_COLS} FROM rooms r WHERE r.id = ?"))
            .bind(&room.id)
            .fetch_one(&mut *tx)
            .await?;
        let rec = room_from(&row)?;
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
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // Terms are letters/digits only (domain::validate::search_terms); quoting them
        // makes every one a plain phrase, the last one a prefix.
        let n = terms.len();
        let query: Vec<String> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let t = t.replace('"', "");
                if i + 1 == n {
                    format!("\"{t}\"*")
                } else {
                    format!("\"{t}\"")
                }
            })
            .collect();
        let mut sql = String::from(
            "SELECT snippet(messages_fts, 0, char(57344), char(57345), '…', 16) AS snip, m.id AS mid \
             FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid \
             JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = ? \
             WHERE messages_fts MATCH ? AND m.deleted = 0",
        );
        let mut binds = vec![Bind::Str(user_id)];
        let q = query.join(" ");
        binds.push(Bind::Str(&q));
        if let Some(r) = room_id {
            sql.push_str(" AND m.room_id = ?");
            binds.push(Bind::Str(r));
        }
        if let Some(a) = author_id {
            sql.push_str(" AND m.author_id = ?");
            binds.push(Bind::Str(a));
        }
        sql.push_str(" ORDER BY bm25(messages_fts), m.created_at DESC LIMIT ?");
        binds.push(Bind::Int(limit));
        let mut conn = self.read.acquire().await?;
        let mut qb = sqlx::query(&sql);
        for b in binds {
            qb = match b {
                Bind::Str(s) => qb.bind(s),
                Bind::Int(i) => qb.bind(i),
            };
        }
        let rows = qb.fetch_all(&mut *conn).await?;
        drop(conn);
        let mut hits = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("mid")?;
            let snippet: String = row.try_get("snip")?;
            let message = self.message(&id).await?;
            hits.push(SearchHit { message, snippet });
        }
        Ok(hits)
    }

    async fn create_attachment(&self, a: AttachmentRecord) -> StoreResult<AttachmentRecord> {
        insert_attachment(&a, a.message_id.as_deref())
            .execute(&self.write)
            .await?;
        Ok(a)
    }

    async fn attachments(&self, ids: &[String]) -> StoreResult<Vec<AttachmentRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {ATTACHMENT_COLS} FROM attachments WHERE id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        q.fetch_all(&self.read)
            .await?
            .iter()
            .map(attachment_from)
            .collect()
    }

    async fn delete_unsent_attachments(&self, before: i64) -> StoreResult<Vec<AttachmentRecord>> {
        let rows = sqlx::query(&format!(
            "DELETE FROM attachments WHERE message_id IS NULL AND created_at < ? RETURNING {ATTACHMENT_COLS}"
        ))
        .bind(before)
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(attachment_from).collect()
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?1 OR thumb_sha256 = ?1)",
        )
        .bind(sha256)
        .fetch_one(&self.write)
        .await?;
        Ok(n != 0)
    }

    async fn all_users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u ORDER BY u.created_at, u.id"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(user_from).collect()
    }

    async fn all_rooms(&self) -> StoreResult<Vec<RoomRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLS} FROM rooms r ORDER BY r.created_at, r.id"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(room_from).collect()
    }

    async fn import_user(&self, u: &UserRecord) -> StoreResult<()> {
        // Guests come without sessions: their names are free again.
        let name_key = (u.kind != UserKind::Guest).then(|| u.username.to_lowercase());
        sqlx::query(
            "INSERT INTO users (id, kind, username, name_key, display_name, password_hash, bio, \
             status_text, avatar_hash, is_admin, created_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn import_avatar(&self, hash: &str, content_type: &str, data: &[u8]) -> StoreResult<()> {
        sqlx::query("INSERT INTO avatars (hash, content_type, data) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING")
            .bind(hash)
            .bind(content_type)
            .bind(data)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn import_room(&self, r: &RoomRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rooms (id, name, topic, kind, password_hash, guests_allowed, starts_at, \
             ends_at, member_limit, created_by, created_at, last_seq, last_pos, member_count, \
             is_default, dm_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn import_member(&self, m: &MemberRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq, \
             notification_level, muted_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&m.room_id)
        .bind(&m.user_id)
        .bind(m.role.as_str())
        .bind(m.joined_at)
        .bind(m.last_read_seq)
        .bind(&m.notification_level)
        .bind(m.muted_until)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn import_message(&self, m: &MessageRecord) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO messages (id, room_id, seq, pos, author_id, body, html, created_at, \
             edited_at, deleted, pinned, reply_to, thread_root, reply_count, client_id, mentions) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                sqlx::query("INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?, ?, ?, ?)")
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
