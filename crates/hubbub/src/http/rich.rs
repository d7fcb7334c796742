//! Reactions, pins, threads, notification levels, DMs, search, uploads and emoji
//! data over REST.

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Query};
use crate::domain::Error;
use crate::domain::attachments::is_safe_image;
use crate::model::{Message, Room};

type JsonResult<T> = ApiResult<axum::Json<T>>;

pub async fn react(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path((id, emoji)): Path<(String, String)>,
) -> JsonResult<Message> {
    Ok(axum::Json(
        state.chat.react(&s.user, &id, &emoji, true).await?,
    ))
}

pub async fn unreact(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path((id, emoji)): Path<(String, String)>,
) -> JsonResult<Message> {
    Ok(axum::Json(
        state.chat.react(&s.user, &id, &emoji, false).await?,
    ))
}

pub async fn reactions(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> JsonResult<Value> {
    let list = state.chat.reactions(&s.user, &id).await?;
    let reactions: Vec<Value> = list
        .into_iter()
        .map(|(emoji, users)| json!({"emoji": emoji, "users": users}))
        .collect();
    Ok(axum::Json(json!({ "reactions": reactions })))
}

pub async fn pin(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> JsonResult<Message> {
    Ok(axum::Json(state.chat.set_pinned(&s.user, &id, true).await?))
}

pub async fn unpin(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> JsonResult<Message> {
    Ok(axum::Json(
        state.chat.set_pinned(&s.user, &id, false).await?,
    ))
}

pub async fn pins(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> JsonResult<Value> {
    Ok(axum::Json(
        json!({ "messages": state.chat.pins(&s.user, &id).await? }),
    ))
}

#[derive(Deserialize)]
pub struct ThreadQuery {
    after_seq: Option<i64>,
    limit: Option<i64>,
}

pub async fn thread(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Query(q): Query<ThreadQuery>,
) -> JsonResult<Value> {
    let (messages, has_more) = state
        .chat
        .thread(&s.user, &id, q.after_seq, q.limit)
        .await?;
    Ok(axum::Json(
        json!({ "messages": messages, "has_more": has_more }),
    ))
}

#[derive(Deserialize)]
pub struct LevelBody {
    level: String,
}

pub async fn notifications(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Json(b): Json<LevelBody>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .set_notification_level(&s.user, &id, &b.level)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct DmBody {
    user_ids: Vec<String>,
}

pub async fn dm(
    State(state): State<AppState>,
    Auth(s): Auth,
    Json(b): Json<DmBody>,
) -> JsonResult<Room> {
    Ok(axum::Json(state.chat.open_dm(&s.user, &b.user_ids).await?))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    room_id: Option<String>,
    author_id: Option<String>,
    limit: Option<i64>,
}

pub async fn search(
    State(state): State<AppState>,
    Auth(s): Auth,
    Query(q): Query<SearchQuery>,
) -> JsonResult<Value> {
    let results = state
        .chat
        .search(
            &s.user,
            &q.q,
            q.room_id.as_deref(),
            q.author_id.as_deref(),
            q.limit,
        )
        .await?;
    Ok(axum::Json(json!({ "results": results })))
}

/// `POST /uploads`: multipart with the field `file`.
pub async fn upload(
    State(state): State<AppState>,
    Auth(s): Auth,
    mut mp: Multipart,
) -> ApiResult<Response> {
    let max = state.chat.settings.max_attachment_bytes;
    let too_large = || {
        Error::TooLarge(format!(
            "attachments are limited to {}",
            crate::util::human_size(max)
        ))
    };
    let malformed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            Error::invalid("file", "malformed multipart body")
        }
    };
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_string();
        let declared = field.content_type().map(str::to_string);
        // Read in chunks so an oversized upload is refused without buffering it all.
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if bytes.len() + chunk.len() > max {
                return Err(too_large().into());
            }
            bytes.extend_from_slice(&chunk);
        }
        let a = state
            .chat
            .upload(&s.user, &name, declared.as_deref(), bytes)
            .await?;
        return Ok(axum::Json(a).into_response());
    }
    Err(Error::invalid("file", "multipart body has no field \"file\"").into())
}

async fn serve_attachment(
    state: AppState,
    s: crate::domain::auth::Session,
    id: String,
    thumb: bool,
) -> ApiResult<Response> {
    let (a, bytes) = state.chat.attachment_file(&s.user, &id, thumb).await?;
    let content_type = if thumb {
        if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else {
            "image/jpeg"
        }
    } else {
        a.content_type.as_str()
    };
    let inline = thumb || is_safe_image(content_type);
    let encoded: String = a
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    );
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(resp)
}

pub async fn attachment(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    serve_attachment(state, s, id, false).await
}

pub async fn thumbnail(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    serve_attachment(state, s, id, true).await
}

/// Emoji data for the client's picker and `:shortcode:` completion, from the
/// `emojis` crate (no CDN): `[{e, n, s: [shortcodes], g}]`.
pub async fn emoji() -> Response {
    static DATA: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let list: Vec<Value> = emojis::iter()
            .filter(|e| e.skin_tone().is_none_or(|t| t == emojis::SkinTone::Default))
            .map(|e| {
                json!({
                    "e": e.as_str(),
                    "n": e.name(),
                    "s": e.shortcodes().collect::<Vec<_>>(),
                    "g": format!("{:?}", e.group()),
                })
            })
            .collect();
        serde_json::to_string(&list).unwrap_or_default()
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        DATA.as_str(),
    )
        .into_response()
}
