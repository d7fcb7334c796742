//! The HTTP transport: the REST API, the gateway upgrade, operations endpoints and
//! the web client. Handlers stay short: parse → call the domain → map the result.

pub mod accounts;
pub mod error;
pub mod extract;
pub mod rich;
pub mod rooms;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::domain::{Chat, Error};
use error::ApiError;
use extract::{bearer_token, cookie_token, same_origin};

#[derive(Clone)]
pub struct AppState {
    pub chat: Arc<Chat>,
    pub metrics: Option<PrometheusHandle>,
}

/// The content security policy of the web client: nothing but our own origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router(state: AppState) -> Router {
    let body_limit = state.chat.settings.max_avatar_bytes * 4 / 3 + 64 * 1024;
    let upload_limit = state.chat.settings.max_attachment_bytes + 256 * 1024;
    let api = Router::new()
        .route("/auth/register", post(accounts::register))
        .route("/auth/login", post(accounts::login))
        .route("/auth/guest", post(accounts::guest))
        .route("/auth/logout", post(accounts::logout))
        .route("/me", get(accounts::me).patch(accounts::patch_me))
        .route(
            "/me/avatar",
            put(accounts::put_avatar).delete(accounts::delete_avatar),
        )
        .route("/users", get(accounts::search_users))
        .route("/users/{id}", get(accounts::user))
        .route("/avatars/{id}", get(accounts::avatar))
        .route("/rooms", get(rooms::list).post(rooms::create))
        .route(
            "/rooms/{id}",
            get(rooms::get).patch(rooms::update).delete(rooms::delete),
        )
        .route("/rooms/{id}/join", post(rooms::join))
        .route("/rooms/{id}/leave", post(rooms::leave))
        .route("/rooms/{id}/members", get(rooms::members))
        .route("/rooms/{id}/invites", post(rooms::invite))
        .route(
            "/rooms/{id}/messages",
            get(rooms::history).post(rooms::send),
        )
        .route("/rooms/{id}/read", post(rooms::read))
        .route("/rooms/{id}/pins", get(rich::pins))
        .route("/rooms/{id}/notifications", put(rich::notifications))
        .route(
            "/messages/{id}",
            get(rooms::message)
                .patch(rooms::edit)
                .delete(rooms::delete_message),
        )
        .route(
            "/messages/{id}/reactions/{emoji}",
            put(rich::react).delete(rich::unreact),
        )
        .route("/messages/{id}/reactions", get(rich::reactions))
        .route("/messages/{id}/pin", put(rich::pin).delete(rich::unpin))
        .route("/messages/{id}/thread", get(rich::thread))
        .route("/dms", post(rich::dm))
        .route("/search", get(rich::search))
        .route(
            "/uploads",
            post(rich::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/attachments/{id}", get(rich::attachment))
        .route("/attachments/{id}/thumbnail", get(rich::thumbnail))
        .route("/emoji", get(rich::emoji))
        .route("/ws", get(ws))
        .route("/openapi.json", get(openapi))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .merge(crate::web::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    Error::not_found("endpoint").into()
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({"error": {"code": "invalid", "message": "method not allowed"}});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// `GET /api/v1/ws`: authenticated by `?token=` or the session cookie (whose
/// `Origin` must be ours).
async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    extract::Query(q): extract::Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = match q.token.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => {
            let t = cookie_token(&headers)
                .or_else(|| bearer_token(&headers))
                .ok_or_else(|| Error::Unauthorized("not signed in".into()))?;
            if !same_origin(&headers, state.chat.settings.public_url.as_deref()) {
                return Err(Error::forbidden("cross-origin WebSocket refused").into());
            }
            t
        }
    };
    let session = state.chat.authenticate(&token).await?;
    // The transport reads frames up to 1 MiB so that the gateway can answer an
    // oversized frame with a clean close 1009 (refusing it mid-read would leave the
    // client's bytes unread and the close frame lost to a TCP reset).
    let max = state.chat.settings.max_frame_bytes.max(1 << 20);
    let chat = state.chat.clone();
    // A 4 KiB read buffer instead of tungstenite's 128 KiB: idle connections are
    // most connections, and chat frames are small (larger ones still arrive whole).
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| crate::gateway::serve(socket, chat, session)))
}

#[derive(serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../openapi.json"),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.chat.store.ping().await {
        tracing::warn!(error = %e, "database not reachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "database not reachable").into_response();
    }
    if let Some(cluster) = state.chat.cluster()
        && (!cluster.is_connected() || cluster.ping().await.is_err())
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "redis not reachable").into_response();
    }
    "ready".into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    metrics::gauge!("hubbub_connections_open").set(state.chat.hub.connection_count() as f64);
    if let Some(rss) = resident_memory_bytes() {
        metrics::gauge!("hubbub_process_resident_memory_bytes").set(rss as f64);
    }
    match &state.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off").into_response(),
    }
}

/// The process's resident memory, from /proc (Linux); None elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    /// Every route registered above is described in openapi.json (and the other way
    /// round), so the document cannot drift from the router.
    #[test]
    fn openapi_describes_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).unwrap();
        let described: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
        let source = include_str!("mod.rs");
        let api_block = &source[source.find("let api = Router::new()").unwrap()
            ..source.find(".fallback(api_not_found)").unwrap()];
        let routes: Vec<&str> = api_block
            .split(".route(\n")
            .flat_map(|p| p.split(".route("))
            .filter_map(|p| p.trim_start().strip_prefix('"'))
            .filter_map(|p| p.split('"').next())
            .collect();
        assert!(routes.len() > 20, "found the routes: {routes:?}");
        for r in &routes {
            assert!(
                described.iter().any(|d| d == r),
                "route {r} is not in openapi.json (run scripts/openapi.py)"
            );
        }
        for d in &described {
            assert!(
                routes.contains(&d.as_str()),
                "openapi.json describes {d}, which the router lacks"
            );
        }
    }
}
