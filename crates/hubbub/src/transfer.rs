//! `hubbub export` / `hubbub import`: the whole chat as JSON Lines, so a SQLite
//! installation can move to PostgreSQL (or be backed up) without losing anything.
//!
//! One JSON object per line, in dependency order: a header, users, avatars, rooms
//! each followed by its members and messages (with reactions, attachments and
//! mentions), then the files attachments refer to (base64). Records are the store's
//! own records, so ids, `seq`, `pos`, counters and timestamps survive unchanged.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::store::{HistoryCursor, MemberRecord, MessageRecord, RoomRecord, Store, UserRecord};

pub const FORMAT: &str = "hubbub-export";
pub const VERSION: u32 = 1;

// One line at a time, read and written once: boxing the big records buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Header {
        format: String,
        version: u32,
        exported_at: String,
    },
    User {
        user: UserRecord,
    },
    Avatar {
        hash: String,
        content_type: String,
        data: String,
    },
    Room {
        room: RoomRecord,
    },
    Member {
        member: MemberRecord,
    },
    Message {
        message: MessageRecord,
    },
    File {
        sha256: String,
        data: String,
    },
}

/// What an export or import moved.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub users: usize,
    pub avatars: usize,
    pub rooms: usize,
    pub members: usize,
    pub messages: usize,
    pub files: usize,
}

fn blob_path(data_dir: &Path, sha: &str) -> PathBuf {
    data_dir
        .join("uploads")
        .join(&sha[..2.min(sha.len())])
        .join(sha)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn write_line(out: &mut impl Write, line: &Line) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes everything in `store` (and the files under `data_dir`) to `out`.
pub async fn export(
    store: &dyn Store,
    data_dir: &Path,
    out: &mut impl Write,
) -> anyhow::Result<Counts> {
    let mut n = Counts::default();
    write_line(
        out,
        &Line::Header {
            format: FORMAT.into(),
            version: VERSION,
            exported_at: crate::util::rfc3339(crate::util::now_ms()),
        },
    )?;
    let mut avatars = BTreeSet::new();
    for user in store.all_users().await? {
        if let Some(h) = &user.avatar_hash {
            avatars.insert(h.clone());
        }
        write_line(out, &Line::User { user })?;
        n.users += 1;
    }
    for hash in avatars {
        let (content_type, data) = store.avatar(&hash).await.context("reading an avatar")?;
        write_line(
            out,
            &Line::Avatar {
                hash,
                content_type,
                data: b64(&data),
            },
        )?;
        n.avatars += 1;
    }
    let mut files = BTreeSet::new();
    for room in store.all_rooms().await? {
        let id = room.id.clone();
        write_line(out, &Line::Room { room })?;
        n.rooms += 1;
        let mut after: Option<String> = None;
        loop {
            let page = store.members(&id, after.as_deref(), 1000).await?;
            for e in &page {
                write_line(
                    out,
                    &Line::Member {
                        member: e.member.clone(),
                    },
                )?;
                n.members += 1;
            }
            if page.len() < 1000 {
                break;
            }
            after = page.last().map(|e| e.user.id.clone());
        }
        let mut seq = 0;
        loop {
            let page = store.history(&id, HistoryCursor::After(seq), 500).await?;
            for m in page.messages {
                seq = m.seq;
                for a in &m.attachments {
                    files.insert(a.sha256.clone());
                    if let Some(t) = &a.thumb_sha256 {
                        files.insert(t.clone());
                    }
                }
                write_line(out, &Line::Message { message: m })?;
                n.messages += 1;
            }
            if !page.has_more {
                break;
            }
        }
    }
    for sha in files {
        match std::fs::read(blob_path(data_dir, &sha)) {
            Ok(data) => {
                write_line(
                    out,
                    &Line::File {
                        sha256: sha,
                        data: b64(&data),
                    },
                )?;
                n.files += 1;
            }
            Err(e) => {
                tracing::warn!(sha, error = %e, "an attachment file is missing; exported without it")
            }
        }
    }
    out.flush()?;
    Ok(n)
}

/// Reads an export into an empty database (and its files into `data_dir`).
pub async fn import(
    store: &dyn Store,
    data_dir: &Path,
    input: impl BufRead,
) -> anyhow::Result<Counts> {
    if !store.all_users().await?.is_empty() {
        bail!("the target database already has users; import needs an empty database");
    }
    // A server started once on the target has created an empty "General": make way.
    for room in store.all_rooms().await? {
        if room.is_default && room.last_seq == 0 && room.member_count == 0 {
            store.delete_room(&room.id).await?;
        } else {
            bail!("the target database already has rooms; import needs an empty database");
        }
    }
    let mut n = Counts::default();
    let mut header = false;
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line)
            .with_context(|| format!("line {} is not an export record", i + 1))?;
        match parsed {
            Line::Header {
                format, version, ..
            } => {
                if format != FORMAT || version > VERSION {
                    bail!("unsupported export: {format} version {version}");
                }
                header = true;
            }
            _ if !header => bail!("the input does not start with a hubbub export header"),
            Line::User { user } => {
                store
                    .import_user(&user)
                    .await
                    .with_context(|| format!("user {}", user.username))?;
                n.users += 1;
            }
            Line::Avatar {
                hash,
                content_type,
                data,
            } => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .context("avatar data")?;
                store.import_avatar(&hash, &content_type, &bytes).await?;
                n.avatars += 1;
            }
            Line::Room { room } => {
                store
                    .import_room(&room)
                    .await
                    .with_context(|| format!("room {}", room.name))?;
                n.rooms += 1;
            }
            Line::Member { member } => {
                store.import_member(&member).await?;
                n.members += 1;
            }
            Line::Message { message } => {
                store
                    .import_message(&message)
                    .await
                    .with_context(|| format!("message {}", message.id))?;
                n.messages += 1;
            }
            Line::File { sha256, data } => {
                if sha256.len() < 8 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    bail!("bad file hash in line {}", i + 1);
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .context("file data")?;
                let path = blob_path(data_dir, &sha256);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, bytes)?;
                n.files += 1;
            }
        }
    }
    if !header {
        bail!("empty input: nothing to import");
    }
    Ok(n)
}
