//! Rooms, membership and messages over REST. Each handler: parse → domain → reply.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, Query};
use crate::domain::messages::SendMessage;
use crate::domain::rooms::{CreateRoom, UpdateRoom};
use crate::model::{Message, Room};

type JsonResult<T> = ApiResult<axum::Json<T>>;

pub async fn list(State(state): State<AppState>, Auth(s): Auth) -> JsonResult<Value> {
    Ok(axum::Json(
        json!({ "rooms": state.chat.rooms_for(&s.user).await? }),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Auth(s): Auth,
    Json(b): Json<CreateRoom>,
) -> JsonResult<Room> {
    Ok(axum::Json(state.chat.create_room(&s.user, b).await?))
}

pub async fn get(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> JsonResult<Room> {
    Ok(axum::Json(state.chat.room(&s.user, &id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Json(b): Json<UpdateRoom>,
) -> JsonResult<Room> {
    Ok(axum::Json(state.chat.update_room(&s.user, &id, b).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.chat.delete_room(&s.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
pub struct JoinBody {
    password: Option<String>,
}

/// The join body is optional: no body at all means no password.
pub async fn join(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> JsonResult<Room> {
    let b: JoinBody = if body.is_empty() {
        JoinBody::default()
    } else {
        super::extract::parse_json(&body)?
    };
    Ok(axum::Json(
        state
            .chat
            .join_room(&s.user, &id, b.password.as_deref())
            .await?,
    ))
}

pub async fn leave(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.chat.leave_room(&s.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct MembersQuery {
    online: Option<bool>,
    after: Option<String>,
    limit: Option<i64>,
}

pub async fn members(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Query(q): Query<MembersQuery>,
) -> JsonResult<Value> {
    let members = state
        .chat
        .members(
            &s.user,
            &id,
            q.online.unwrap_or(false),
            q.after.as_deref(),
            q.limit,
        )
        .await?;
    Ok(axum::Json(json!({ "members": members })))
}

#[derive(Deserialize)]
pub struct InviteBody {
    user_id: String,
}

pub async fn invite(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Json(b): Json<InviteBody>,
) -> ApiResult<StatusCode> {
    state.chat.invite(&s.user, &id, &b.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: Option<i64>,
}

pub async fn history(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> JsonResult<Value> {
    let (messages, has_more) = state
        .chat
        .history(&s.user, &id, q.before_seq, q.after_seq, q.limit)
        .await?;
    Ok(axum::Json(
        json!({ "messages": messages, "has_more": has_more }),
    ))
}

pub async fn send(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Json(mut b): Json<SendMessage>,
) -> JsonResult<Message> {
    b.room_id = id;
    Ok(axum::Json(state.chat.send(&s.user, b).await?))
}

#[derive(Deserialize)]
pub struct ReadBody {
    seq: i64,
}

pub async fn read(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Json(b): Json<ReadBody>,
) -> ApiResult<StatusCode> {
    state.chat.mark_read(&s.user, &id, b.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn message(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> JsonResult<Message> {
    Ok(axum::Json(state.chat.message(&s.user, &id).await?))
}

#[derive(Deserialize)]
pub struct EditBody {
    body: String,
}

pub async fn edit(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
    Json(b): Json<EditBody>,
) -> JsonResult<Message> {
    Ok(axum::Json(state.chat.edit(&s.user, &id, &b.body).await?))
}

pub async fn delete_message(
    State(state): State<AppState>,
    Auth(s): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.chat.delete(&s.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
