//! The HTTP transport: the REST API, the gateway upgrade, operations endpoints and
//! the web client. Handlers stay short: parse → call the domain → map the result.

pub mod accounts;
pub mod error;
pub mod extract;
pub mod rich;
pub mod rooms;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
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
///
/// The upgrade is done here with hyper and tokio-tungstenite directly rather than
/// axum's `WebSocketUpgrade`, so the gateway gets a tungstenite `WebSocketStream`
/// whose underlying stream it can reach: it writes large frames straight to the
/// socket instead of through tungstenite's write buffer, which otherwise keeps the
/// capacity of the largest frame ever sent (the `ready` frame) for the connection's
/// lifetime.
async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    extract::Query(q): extract::Query<WsQuery>,
    mut request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let key = match websocket_key(&headers) {
        Ok(key) => key,
        Err(response) => return Ok(*response),
    };
    let on_upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| Error::invalid("upgrade", "this connection cannot be upgraded"))?;
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
    let config = crate::gateway::socket_config(state.chat.settings.max_frame_bytes);
    tokio::spawn(crate::gateway::serve(Box::new(crate::gateway::Upgrade {
        on_upgrade,
        config,
        chat: state.chat.clone(),
        session,
    })));
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|e| Error::Internal(e.into()))?,
    );
    Ok(response)
}

/// The `Sec-WebSocket-Key` of a valid WebSocket upgrade request (RFC 6455 §4.2.1),
/// or the response refusing it.
fn websocket_key(headers: &HeaderMap) -> Result<HeaderValue, Box<Response>> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let refuse = |why: &str| -> Box<Response> {
        Box::new(ApiError::from(Error::invalid("upgrade", why)).into_response())
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(refuse("expected a WebSocket upgrade"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut r = refuse("unsupported WebSocket version (13 is supported)");
        *r.status_mut() = StatusCode::UPGRADE_REQUIRED;
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return Err(r);
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
        .cloned()
        .ok_or_else(|| refuse("missing Sec-WebSocket-Key"))
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
