//! The gateway's wire format: server events and client frames as tagged enums.
//! This module is the only place that knows the JSON shape of gateway frames.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hub::Frame;
use crate::model::{Message, Room, User};

#[derive(Debug, Clone, Serialize)]
pub struct ReactionChange {
    pub user_id: String,
    pub emoji: String,
    pub add: bool,
}

/// Server → client events (SPEC §8). Fields sit at the top level beside `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    Ready {
        user: &'a User,
        rooms: &'a [Room],
        users: &'a [User],
    },
    Message {
        message: &'a Message,
        pos: i64,
    },
    MessageUpdated {
        message: &'a Message,
        pos: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reaction_change: Option<&'a ReactionChange>,
    },
    MessageDeleted {
        room_id: &'a str,
        message_id: &'a str,
        seq: i64,
        pos: i64,
    },
    Typing {
        room_id: &'a str,
        user_ids: &'a [&'a str],
    },
    Presence {
        user_id: &'a str,
        status: &'a str,
        last_seen_at: Option<&'a str>,
    },
    MemberJoined {
        room_id: &'a str,
        user: &'a User,
    },
    MemberLeft {
        room_id: &'a str,
        user: &'a User,
    },
    UserUpdated {
        user: &'a User,
    },
    RoomUpdated {
        room: &'a Room,
    },
    RoomRemoved {
        room_id: &'a str,
        reason: &'a str,
    },
    Read {
        room_id: &'a str,
        user_id: &'a str,
        seq: i64,
    },
    Notification {
        room_id: &'a str,
        message: &'a Message,
    },
}

impl Event<'_> {
    /// Serializes once into a shareable frame.
    pub fn frame(&self) -> Frame {
        let (room, pos, seq) = match self {
            Event::Message { message, pos } => {
                (Some(Arc::from(message.room_id.as_str())), *pos, message.seq)
            }
            Event::MessageUpdated { message, pos, .. } => {
                (Some(Arc::from(message.room_id.as_str())), *pos, 0)
            }
            Event::MessageDeleted { room_id, pos, .. } => (Some(Arc::from(*room_id)), *pos, 0),
            _ => (None, 0, 0),
        };
        // Serializing our own types cannot fail (no maps with non-string keys).
        let text = serde_json::to_string(self).unwrap_or_default();
        Frame {
            room,
            pos,
            seq,
            text: Utf8Bytes::from(text),
        }
    }
}

/// A reply to a client frame that carried a `req`; `type` comes first on the wire.
#[derive(Serialize)]
#[serde(tag = "type", rename = "reply")]
struct Reply<'a, T: Serialize> {
    req: &'a Value,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

pub fn reply_ok(req: &Value, data: &impl Serialize) -> String {
    serde_json::to_string(&Reply {
        req,
        ok: true,
        data: Some(data),
        error: None,
    })
    .unwrap_or_default()
}

pub fn reply_err(req: &Value, error: &crate::domain::Error) -> String {
    serde_json::to_string(&Reply::<()> {
        req,
        ok: false,
        data: None,
        error: Some(error_body(error)),
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
#[serde(tag = "type", rename = "error")]
struct ErrorFrame {
    error: Value,
}

pub fn error_frame(error: &crate::domain::Error) -> String {
    serde_json::to_string(&ErrorFrame {
        error: error_body(error),
    })
    .unwrap_or_default()
}

pub fn error_body(error: &crate::domain::Error) -> Value {
    let mut body = serde_json::json!({"code": error.code(), "message": error.client_message()});
    match error {
        crate::domain::Error::Invalid { field, .. } => body["field"] = serde_json::json!(field),
        crate::domain::Error::RateLimited { retry_after_ms } => {
            body["retry_after_ms"] = serde_json::json!(retry_after_ms)
        }
        _ => {}
    }
    body
}

/// Client → server frames (SPEC §8). Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        room_id: String,
        client_id: String,
        body: String,
        reply_to: Option<String>,
        thread_root: Option<String>,
        #[serde(default)]
        attachment_ids: Vec<String>,
    },
    Edit {
        message_id: String,
        body: String,
    },
    Delete {
        message_id: String,
    },
    React {
        message_id: String,
        emoji: String,
        add: bool,
    },
    Typing {
        room_id: String,
        active: bool,
    },
    Read {
        room_id: String,
        seq: i64,
    },
    History {
        room_id: String,
        before_seq: Option<i64>,
        limit: Option<i64>,
    },
    Resume {
        rooms: HashMap<String, i64>,
    },
    JoinRoom {
        room_id: String,
        password: Option<String>,
    },
    LeaveRoom {
        room_id: String,
    },
    Presence {
        status: String,
    },
    Ping {},
}

/// A parsed client frame: its `req` (if readable) and the frame or why it is malformed.
pub struct Incoming {
    pub req: Option<Value>,
    pub frame: Result<ClientFrame, String>,
}

pub fn parse(text: &str) -> Incoming {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Incoming {
                req: None,
                frame: Err(format!("frame is not valid JSON: {e}")),
            };
        }
    };
    let Value::Object(map) = &value else {
        return Incoming {
            req: None,
            frame: Err("frame must be a JSON object".into()),
        };
    };
    let req = map
        .get("req")
        .filter(|r| r.is_string() || r.is_number())
        .cloned();
    let frame = match map.get("type") {
        None => Err("frame has no \"type\"".into()),
        Some(Value::String(_)) => serde_json::from_value::<ClientFrame>(value).map_err(|e| {
            let msg = e.to_string();
            if msg.starts_with("unknown variant") {
                format!("unknown frame type: {msg}")
            } else {
                msg
            }
        }),
        Some(_) => Err("\"type\" must be a string".into()),
    };
    Incoming { req, frame }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_and_keeps_req() {
        let i = parse(r#"{"type":"ping","req":"a"}"#);
        assert_eq!(i.req, Some(Value::String("a".into())));
        assert!(matches!(i.frame, Ok(ClientFrame::Ping {})));
        let i = parse(r#"{"type":"send","req":3,"room_id":"r"}"#);
        assert_eq!(i.req, Some(serde_json::json!(3)));
        assert!(i.frame.unwrap_err().contains("missing field"));
        let i = parse(r#"{"type":"nope","req":[1]}"#);
        assert_eq!(i.req, None);
        assert!(i.frame.is_err());
        assert!(parse("not json").frame.is_err());
        assert!(
            parse(r#"{"type":"typing","room_id":"r","active":"yes"}"#)
                .frame
                .is_err()
        );
    }

    #[test]
    fn events_put_type_first() {
        let f = Event::RoomRemoved {
            room_id: "r",
            reason: "deleted",
        }
        .frame();
        assert!(f.text.as_str().starts_with(r#"{"type":"room_removed""#));
        let r = reply_ok(&serde_json::json!(1), &serde_json::Value::Null);
        assert_eq!(r, r#"{"type":"reply","req":1,"ok":true,"data":null}"#);
        let e = error_frame(&crate::domain::Error::RoomFull);
        assert!(e.starts_with(r#"{"type":"error","error":{"#), "{e}");
    }
}
