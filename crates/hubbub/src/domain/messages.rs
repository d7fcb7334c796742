//! Messages: send (idempotent by client_id, durable before visible, ordered per
//! room), edit, delete, history, read state, and the resume snapshot.

use std::sync::Arc;

use super::error::{Error, OrNotFound, Result};
use super::{Chat, markdown, validate};
use crate::model::Message;
use crate::store::{HistoryCursor, Inserted, MessageRecord, NewMessage, Role, UserRecord};
use crate::util::{new_id, now_ms};
use crate::wire::{Event, ReactionChange};

/// A message to send (REST body or gateway frame).
#[derive(Debug, Default, serde::Deserialize)]
pub struct SendMessage {
    #[serde(default)]
    pub room_id: String,
    pub client_id: Option<String>,
    pub body: String,
    pub reply_to: Option<String>,
    pub thread_root: Option<String>,
    #[serde(default)]
    pub attachment_ids: Vec<String>,
}

/// Attachments per message at most.
pub const MAX_ATTACHMENTS: usize = 10;

/// At most this many changed messages per room in a resume reply.
pub const RESUME_LIMIT: i64 = 1000;

impl Chat {
    /// Stores a message and then fans it out. The reply (this return value) and the
    /// fan-out both happen only after the commit.
    pub async fn send(&self, user: &UserRecord, req: SendMessage) -> Result<Message> {
        let client_id = req
            .client_id
            .as_deref()
            .map(validate::client_id)
            .transpose()?;
        if req.attachment_ids.len() > MAX_ATTACHMENTS {
            return Err(Error::invalid(
                "attachment_ids",
                format!("at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        let body = validate::body(
            &req.body,
            self.settings.max_message_chars,
            !req.attachment_ids.is_empty(),
        )?;
        let (room, member) = self.joined_room(user, &req.room_id).await?;
        Self::check_open(user, &room, &member)?;
        self.check_attachments(user, &req.attachment_ids).await?;
        let reply_to = match &req.reply_to {
            Some(id) => Some(self.same_room_message("reply_to", id, &room.id).await?.id),
            None => None,
        };
        let thread_root = match &req.thread_root {
            Some(id) => {
                let root = self.same_room_message("thread_root", id, &room.id).await?;
                // A reply to a reply belongs to the same thread.
                Some(root.thread_root.unwrap_or(root.id))
            }
            None => None,
        };
        self.limits.send(&user.id)?;
        let role = Self::effective_role(user, Some(&member));
        let mentions = self.resolve_mentions(user, &room, role, &body).await?;
        let html = markdown::render_with(&body, &mentions.highlight);
        let new = NewMessage {
            id: new_id(),
            room_id: room.id.clone(),
            author_id: user.id.clone(),
            body,
            html,
            created_at: now_ms(),
            reply_to,
            thread_root,
            client_id,
            mentions: mentions.users,
            attachment_ids: req.attachment_ids.clone(),
        };
        let started = std::time::Instant::now();
        let inserted = self.store.insert_message(new).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                Error::invalid("attachment_ids", "an attachment is no longer available")
            }
            other => other.into(),
        })?;
        metrics::histogram!("hubbub_db_write_seconds").record(started.elapsed().as_secs_f64());
        match inserted {
            Inserted::Existing(rec) => Ok(Message::for_viewer(&rec, &user.id)),
            Inserted::Created {
                message,
                thread_root,
            } => {
                let msg = Message::from_record(&message);
                let started = std::time::Instant::now();
                self.hub.publish_room(
                    &room.id,
                    &Event::Message {
                        message: &msg,
                        pos: msg.pos,
                    }
                    .frame(),
                );
                if let Some(root) = thread_root {
                    self.publish_update(&root, None);
                }
                metrics::histogram!("hubbub_fanout_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("hubbub_messages_total").increment(1);
                self.typing_done(&room.id, &user.id);
                // Before the ack: who is notified follows the levels as they were when
                // the message was sent, not after the sender's next request. Usually
                // no read at all (no mentions, nobody chose a level); the message is
                // stored either way, so a failure here is logged, not returned.
                if let Err(e) = self.notify(&room, &msg).await {
                    tracing::warn!(room = %room.id, error = ?e, "notifications failed");
                }
                tracing::debug!(room = %room.id, seq = msg.seq, "message sent");
                Ok(msg)
            }
        }
    }

    /// Tells a room that one of its messages changed (serialized once, `me` false).
    pub(crate) fn publish_update(&self, rec: &MessageRecord, change: Option<&ReactionChange>) {
        let m = Message::from_record(rec);
        self.hub.publish_room(
            &rec.room_id,
            &Event::MessageUpdated {
                message: &m,
                pos: m.pos,
                reaction_change: change,
            }
            .frame(),
        );
    }

    async fn same_room_message(
        &self,
        field: &'static str,
        id: &str,
        room_id: &str,
    ) -> Result<MessageRecord> {
        match self.store.message(id).await {
            Ok(m) if m.room_id == room_id && !m.deleted => Ok(m),
            Ok(_) => Err(Error::invalid(
                field,
                format!("{field} must be a message of the same room"),
            )),
            Err(crate::store::StoreError::NotFound) => {
                Err(Error::invalid(field, format!("{field} names no message")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Loads a message the user may see, with the user's membership of its room.
    pub(crate) async fn visible_message(
        &self,
        user: &UserRecord,
        id: &str,
    ) -> Result<(
        MessageRecord,
        crate::store::RoomRecord,
        Option<crate::store::MemberRecord>,
    )> {
        let msg = self.store.message(id).await.or_not_found("message")?;
        let (room, member) = self
            .readable_room(user, &msg.room_id)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::not_found("message"),
                other => other,
            })?;
        Ok((msg, room, member))
    }

    pub async fn edit(&self, user: &UserRecord, id: &str, body: &str) -> Result<Message> {
        let (msg, room, member) = self.visible_message(user, id).await?;
        let body = validate::body(
            body,
            self.settings.max_message_chars,
            !msg.attachments.is_empty(),
        )?;
        if msg.author.id != user.id {
            return Err(Error::forbidden("you can only edit your own messages"));
        }
        if msg.deleted {
            return Err(Error::not_found("message"));
        }
        let member = Self::as_member(member)?;
        Self::check_open(user, &room, &member)?;
        self.limits.write(&user.id)?;
        let role = Self::effective_role(user, Some(&member));
        let mentions = self.resolve_mentions(user, &room, role, &body).await?;
        let html = markdown::render_with(&body, &mentions.highlight);
        let rec = self
            .store
            .edit_message(id, &body, &html, &mentions.users, now_ms())
            .await
            .or_not_found("message")?;
        self.publish_update(&rec, None);
        Ok(Message::for_viewer(&rec, &user.id))
    }

    pub async fn delete(&self, user: &UserRecord, id: &str) -> Result<()> {
        let (msg, room, member) = self.visible_message(user, id).await?;
        if msg.deleted {
            return Err(Error::not_found("message"));
        }
        let role = Self::effective_role(user, member.as_ref());
        let moderator = role.is_some_and(|r| r.rank() >= Role::Moderator.rank());
        if msg.author.id != user.id && !moderator {
            return Err(Error::forbidden("you can only delete your own messages"));
        }
        self.limits.write(&user.id)?;
        let rec = self
            .store
            .delete_message(id)
            .await
            .or_not_found("message")?;
        self.remove_files(&msg.attachments).await;
        self.hub.publish_room(
            &room.id,
            &Event::MessageDeleted {
                room_id: &room.id,
                message_id: &rec.id,
                seq: rec.seq,
                pos: rec.pos,
            }
            .frame(),
        );
        Ok(())
    }

    pub async fn message(&self, user: &UserRecord, id: &str) -> Result<Message> {
        let (msg, _, _) = self.visible_message(user, id).await?;
        Ok(Message::for_viewer(&msg, &user.id))
    }

    pub async fn history(
        &self,
        user: &UserRecord,
        room_id: &str,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: Option<i64>,
    ) -> Result<(Vec<Message>, bool)> {
        let limit = match limit {
            None => 50,
            Some(l) if l < 1 => return Err(Error::invalid("limit", "limit must be at least 1")),
            Some(l) => l.min(200),
        };
        let cursor = match (before_seq, after_seq) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "before_seq",
                    "give before_seq or after_seq, not both",
                ));
            }
            (Some(b), None) => HistoryCursor::Before(b),
            (None, Some(a)) => HistoryCursor::After(a),
            (None, None) => HistoryCursor::Latest,
        };
        self.readable_room(user, room_id).await?;
        let page = self.store.history(room_id, cursor, limit).await?;
        Ok((self.view(user, &page.messages), page.has_more))
    }

    pub async fn mark_read(&self, user: &UserRecord, room_id: &str, seq: i64) -> Result<()> {
        if seq < 0 {
            return Err(Error::invalid("seq", "seq must not be negative"));
        }
        let (room, _) = self.joined_room(user, room_id).await?;
        self.limits.write(&user.id)?;
        let seq = self.store.mark_read(room_id, &user.id, seq).await?;
        let frame = Event::Read {
            room_id,
            user_id: &user.id,
            seq,
        }
        .frame();
        // Receipts go to the room where that is cheap; in large rooms only the
        // reader's own devices need them (to clear badges).
        if self.is_small(&room) {
            self.hub.publish_room(room_id, &frame);
        } else {
            self.hub.publish_user(&user.id, &frame);
        }
        Ok(())
    }

    /// The resume snapshot of one room: messages changed after `after_pos`.
    pub async fn changes(
        &self,
        user: &UserRecord,
        room_id: &str,
        after_pos: i64,
    ) -> Result<crate::store::Changes> {
        self.joined_room(user, room_id).await?;
        Ok(self
            .store
            .changes_since(room_id, after_pos.max(0), RESUME_LIMIT)
            .await?)
    }
}

/// How the hub's sequencer fills a gap in a room's changes from the store. New
/// messages (seq above what was delivered) become `message`, tombstones
/// `message_deleted`, the rest `message_updated` — each with its current state.
pub fn gap_filler(store: Arc<dyn crate::store::Store>) -> crate::hub::sequencer::Fill {
    Arc::new(move |room: String, after: i64, last_seq: i64| {
        let store = store.clone();
        Box::pin(async move {
            let changes = store.changes_since(&room, after, RESUME_LIMIT).await?;
            let frames = changes
                .messages
                .iter()
                .map(|rec| {
                    let m = Message::from_record(rec);
                    if m.deleted {
                        Event::MessageDeleted {
                            room_id: &m.room_id,
                            message_id: &m.id,
                            seq: m.seq,
                            pos: m.pos,
                        }
                        .frame()
                    } else if m.seq > last_seq {
                        Event::Message {
                            message: &m,
                            pos: m.pos,
                        }
                        .frame()
                    } else {
                        Event::MessageUpdated {
                            message: &m,
                            pos: m.pos,
                            reaction_change: None,
                        }
                        .frame()
                    }
                })
                .collect();
            Ok((frames, changes.pos))
        })
    })
}
