//! Sessions, profiles, users and avatars over REST.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Auth, COOKIE, ClientIp, Json, Query};
use crate::domain::Error;
use crate::model::User;

#[derive(Deserialize)]
pub struct RegisterBody {
    username: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct GuestBody {
    name: String,
    avatar: Option<String>,
}

fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .chat
        .settings
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `{user, token}` plus the session cookie.
fn session_response(state: &AppState, headers: &HeaderMap, user: User, token: String) -> Response {
    let secure = if is_https(state, headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
        30 * 24 * 3600
    );
    let mut resp = axum::Json(json!({ "user": user, "token": token })).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(b): Json<RegisterBody>,
) -> ApiResult<Response> {
    let (user, token) = state
        .chat
        .register(&ip, &b.username, &b.password, b.display_name.as_deref())
        .await?;
    Ok(session_response(&state, &headers, user, token))
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(b): Json<LoginBody>,
) -> ApiResult<Response> {
    let (user, token) = state.chat.login(&ip, &b.username, &b.password).await?;
    Ok(session_response(&state, &headers, user, token))
}

pub async fn guest(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(b): Json<GuestBody>,
) -> ApiResult<Response> {
    let (user, token) = state.chat.guest(&ip, &b.name, b.avatar.as_deref()).await?;
    Ok(session_response(&state, &headers, user, token))
}

pub async fn logout(State(state): State<AppState>, Auth(s): Auth) -> ApiResult<Response> {
    state.chat.logout(&s).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hubbub_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(resp)
}

pub async fn me(State(state): State<AppState>, Auth(s): Auth) -> axum::Json<User> {
    axum::Json(state.chat.me(&s.user))
}

#[derive(Deserialize)]
pub struct ProfileBody {
    display_name: Option<String>,
    bio: Option<String>,
    status_text: Option<String>,
}

pub async fn patch_me(
    State(state): State<AppState>,
    Auth(s): Auth,
    Json(b): Json<ProfileBody>,
) -> ApiResult<axum::Json<User>> {
    let u = state
        .chat
        .update_profile(
            &s.user,
            b.display_name.as_deref(),
            b.bio.as_deref(),
            b.status_text.as_deref(),
        )
        .await?;
    Ok(axum::Json(u))
}

/// `PUT /me/avatar`: the image as the raw body, or multipart with the field `file`.
pub async fn put_avatar(
    State(state): State<AppState>,
    Auth(s): Auth,
    req: Request,
) -> ApiResult<axum::Json<User>> {
    let max = state.chat.settings.max_avatar_bytes;
    let too_large = || {
        Error::TooLarge(format!(
            "avatar is larger than {}",
            crate::util::human_size(max)
        ))
    };
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let bytes = if is_multipart {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|_| Error::invalid("file", "malformed multipart body"))?;
        let mut found = None;
        while let Some(field) = mp.next_field().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Error::invalid("file", "malformed multipart body")
            }
        })? {
            if field.name() == Some("file") {
                let data = field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        Error::invalid("file", "malformed multipart body")
                    }
                })?;
                found = Some(data.to_vec());
                break;
            }
        }
        found.ok_or_else(|| Error::invalid("file", "multipart body has no field \"file\""))?
    } else {
        axum::body::Bytes::from_request(req, &state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    Error::invalid("avatar", "cannot read body")
                }
            })?
            .to_vec()
    };
    if bytes.is_empty() {
        return Err(Error::invalid("avatar", "no image given").into());
    }
    Ok(axum::Json(state.chat.set_avatar(&s.user, bytes).await?))
}

pub async fn delete_avatar(
    State(state): State<AppState>,
    Auth(s): Auth,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.chat.reset_avatar(&s.user).await?))
}

#[derive(Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

pub async fn search_users(
    State(state): State<AppState>,
    Auth(_): Auth,
    Query(q): Query<UserQuery>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let users = state.chat.search_users(&q.q, q.limit).await?;
    Ok(axum::Json(json!({ "users": users })))
}

pub async fn user(
    State(state): State<AppState>,
    Auth(_): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.chat.user(&id).await?))
}

#[derive(Deserialize)]
pub struct AvatarQuery {
    v: Option<String>,
}

/// Public and cacheable: a versioned URL never changes its bytes.
pub async fn avatar(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AvatarQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (content_type, bytes, version) = state.chat.avatar_image(&id).await?;
    let etag = format!("\"{version}\"");
    let cache = if q.v.as_deref() == Some(version.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, no-cache"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // SVG defaults are images, never documents.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(resp)
}
