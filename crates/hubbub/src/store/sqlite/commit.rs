//! Group commit of new messages on SQLite.
//!
//! Sends arrive from many tasks at once. Each would otherwise be its own transaction of
//! ~6 statements, and with sqlx every statement is a round trip to the connection's
//! worker thread. Here one committer task takes every send that is waiting, writes
//! them as one transaction of a fixed handful of multi-row statements (dedupe, bump
//! each room once, insert, mentions, read markers, read back) and commits once. Each
//! sender's future resolves only after that commit, so an ack still means durable.
//!
//! Messages with attachments or a thread root take the one-by-one path (they touch
//! other rows and are rare). If a batch fails as a whole, its messages are retried one
//! by one so that one bad message (a room deleted meanwhile) cannot fail the others.

use std::collections::HashMap;

use sqlx::{Row, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{
    NEW_MESSAGE_COLS, NEW_MESSAGE_ROW, SqliteQuery, SqliteStore, bind_new_message, load_extras,
    message_from, message_select,
};
use crate::store::{Inserted, MessageRecord, NewMessage, StoreError, StoreResult};

/// Messages per transaction at most (bounds statement size: 12 binds per row).
pub(super) const MAX_BATCH: usize = 256;
/// Rows per multi-row statement. Batches are split into chunks of this size so the
/// statement cache holds a bounded set of shapes.
const CHUNK: usize = 32;
/// Statements for up to this many rows stay prepared: every shape a batch can take
/// (four statements × `CHUNK` sizes), which the store's statement cache has room for.
const CACHED_UP_TO: usize = CHUNK;

pub(super) struct Pending {
    pub msg: NewMessage,
    pub done: oneshot::Sender<StoreResult<Inserted>>,
}

/// Starts the committer; it ends when every sender is dropped.
pub(super) fn spawn(pool: SqlitePool) -> mpsc::Sender<Pending> {
    let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
    tokio::spawn(run(pool, rx));
    tx
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::histogram!("hubbub_db_batch_messages").record(batch.len() as f64);
        let msgs: Vec<&NewMessage> = batch.iter().map(|p| &p.msg).collect();
        let result = write_batch(&pool, &msgs).await;
        match result {
            Ok(results) => {
                for (p, r) in batch.drain(..).zip(results) {
                    let _ = p.done.send(Ok(r));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(p) = batch.pop() {
                    let _ = p.done.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, n = batch.len(), "batch failed; retrying one by one");
                for p in batch.drain(..) {
                    let r = SqliteStore::insert_one(&pool, p.msg).await;
                    let _ = p.done.send(r);
                }
            }
        }
    }
}

/// What becomes of one message of a batch.
enum Fate {
    /// Its (author, client_id) was stored before.
    Existing(Box<MessageRecord>),
    /// Repeats the (author, client_id) of an earlier message in this batch.
    SameAs(usize),
    New {
        seq: i64,
        pos: i64,
    },
}

fn query(sql: &str, rows: usize) -> SqliteQuery<'_> {
    sqlx::query(sql).persistent(rows <= CACHED_UP_TO)
}

fn rows_of(row: &str, n: usize) -> String {
    vec![row; n].join(", ")
}

async fn write_batch(pool: &SqlitePool, msgs: &[&NewMessage]) -> StoreResult<Vec<Inserted>> {
    let mut tx = pool.begin().await?;
    let mut fates: Vec<Option<Fate>> = (0..msgs.len()).map(|_| None).collect();

    // 1. Sends repeated by client_id: already stored, or twice in this batch.
    let keyed: Vec<usize> = (0..msgs.len())
        .filter(|i| msgs[*i].client_id.is_some())
        .collect();
    let mut stored: HashMap<(String, String), MessageRecord> = HashMap::new();
    for chunk in keyed.chunks(CHUNK) {
        let sql = format!(
            "{} WHERE {}",
            message_select(),
            vec!["(m.author_id = ? AND m.client_id = ?)"; chunk.len()].join(" OR ")
        );
        let mut q = query(&sql, chunk.len());
        for i in chunk {
            q = q.bind(&msgs[*i].author_id).bind(&msgs[*i].client_id);
        }
        let mut found = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(message_from)
            .collect::<StoreResult<Vec<_>>>()?;
        // A repeated send answers with the message as it is now.
        load_extras(&mut tx, &mut found).await?;
        for rec in found {
            let key = (
                rec.author.id.clone(),
                rec.client_id.clone().unwrap_or_default(),
            );
            stored.insert(key, rec);
        }
    }
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut fresh: Vec<usize> = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        if let Some(cid) = m.client_id.as_deref() {
            if let Some(rec) = stored.remove(&(m.author_id.clone(), cid.to_string())) {
                fates[i] = Some(Fate::Existing(Box::new(rec)));
                continue;
            }
            if let Some(j) = first_of.get(&(m.author_id.as_str(), cid)) {
                fates[i] = Some(Fate::SameAs(*j));
                continue;
            }
            first_of.insert((m.author_id.as_str(), cid), i);
        }
        fresh.push(i);
    }

    // 2. Each room's counters move once for all of its new messages.
    let mut per_room: Vec<(&str, Vec<usize>)> = Vec::new();
    for &i in &fresh {
        match per_room.iter_mut().find(|(r, _)| *r == msgs[i].room_id) {
            Some((_, list)) => list.push(i),
            None => per_room.push((&msgs[i].room_id, vec![i])),
        }
    }
    for (room, list) in &per_room {
        let n = list.len() as i64;
        let row = sqlx::query(
            "UPDATE rooms SET last_seq = last_seq + ?, last_pos = last_pos + ? \
             WHERE id = ? RETURNING last_seq, last_pos",
        )
        .bind(n)
        .bind(n)
        .bind(*room)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let (last_seq, last_pos): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        for (k, &i) in list.iter().enumerate() {
            let k = k as i64;
            fates[i] = Some(Fate::New {
                seq: last_seq - n + 1 + k,
                pos: last_pos - n + 1 + k,
            });
        }
    }
    let numbered = |i: usize| match fates[i] {
        Some(Fate::New { seq, pos }) => (seq, pos),
        _ => (0, 0),
    };

    // 3. The rows themselves, then mentions and the authors' read markers.
    for chunk in fresh.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO messages ({NEW_MESSAGE_COLS}) VALUES {}",
            rows_of(NEW_MESSAGE_ROW, chunk.len())
        );
        let mut q = query(&sql, chunk.len());
        for &i in chunk {
            let (seq, pos) = numbered(i);
            q = bind_new_message(q, msgs[i], seq, pos)?;
        }
        q.execute(&mut *tx).await?;
    }
    let mentions: Vec<(usize, &String)> = fresh
        .iter()
        .flat_map(|&i| msgs[i].mentions.iter().map(move |u| (i, u)))
        .collect();
    for chunk in mentions.chunks(CHUNK) {
        let sql = format!(
            "INSERT OR IGNORE INTO mentions (message_id, room_id, user_id, seq) VALUES {}",
            rows_of("(?, ?, ?, ?)", chunk.len())
        );
        let mut q = query(&sql, chunk.len());
        for (i, u) in chunk {
            q = q
                .bind(&msgs[*i].id)
                .bind(&msgs[*i].room_id)
                .bind(*u)
                .bind(numbered(*i).0);
        }
        q.execute(&mut *tx).await?;
    }
    // Posting reads the room up to one's own message.
    let mut read_to: Vec<(&str, &str, i64)> = Vec::new();
    for &i in &fresh {
        let (room, author, seq) = (
            msgs[i].room_id.as_str(),
            msgs[i].author_id.as_str(),
            numbered(i).0,
        );
        match read_to
            .iter_mut()
            .find(|(r, a, _)| *r == room && *a == author)
        {
            Some(e) => e.2 = e.2.max(seq),
            None => read_to.push((room, author, seq)),
        }
    }
    for chunk in read_to.chunks(CHUNK) {
        let sql = format!(
            "UPDATE members SET last_read_seq = v.column3 FROM (VALUES {}) AS v \
             WHERE members.room_id = v.column1 AND members.user_id = v.column2",
            rows_of("(?, ?, ?)", chunk.len())
        );
        let mut q = query(&sql, chunk.len());
        for (room, author, seq) in chunk {
            q = q.bind(*room).bind(*author).bind(*seq);
        }
        q.execute(&mut *tx).await?;
    }

    // 4. Read the new rows back (with their authors) inside the transaction.
    let mut created: HashMap<String, MessageRecord> = HashMap::with_capacity(fresh.len());
    for chunk in fresh.chunks(CHUNK) {
        let sql = format!(
            "{} WHERE m.id IN ({})",
            message_select(),
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = query(&sql, chunk.len());
        for &i in chunk {
            q = q.bind(&msgs[i].id);
        }
        for row in q.fetch_all(&mut *tx).await? {
            let rec = message_from(&row)?;
            created.insert(rec.id.clone(), rec);
        }
    }
    tx.commit().await?;

    let mut out: Vec<Inserted> = Vec::with_capacity(msgs.len());
    for (i, fate) in fates.into_iter().enumerate() {
        out.push(match fate {
            Some(Fate::Existing(rec)) => Inserted::Existing(*rec),
            Some(Fate::SameAs(j)) => match out.get(j) {
                Some(Inserted::Created { message, .. } | Inserted::Existing(message)) => {
                    Inserted::Existing(message.clone())
                }
                None => return Err(missing(msgs[j])),
            },
            Some(Fate::New { .. }) => match created.remove(&msgs[i].id) {
                Some(message) => Inserted::Created {
                    message,
                    thread_root: None,
                },
                None => return Err(missing(msgs[i])),
            },
            None => return Err(missing(msgs[i])),
        });
    }
    Ok(out)
}

fn missing(m: &NewMessage) -> StoreError {
    StoreError::Other(anyhow::anyhow!(
        "message {} not found after its batch",
        m.id
    ))
}
