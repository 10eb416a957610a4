//! `/mcp` on the gateway: the MCP server over Streamable HTTP (stateless, each answer
//! JSON, except a `generate_image` call with a `progressToken`: the SDK answers it as an
//! event stream, its notifications then the result), behind the same keys as the API. A request the gateway's access rule refuses
//! gets the API's 401 or 403 before the protocol sees it; each tool call checks its
//! caller again and draws on that caller's budget.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::ImagegenMcp;
use crate::state::AppState;

/// The path the MCP server is mounted at.
pub(crate) const PATH: &str = "/mcp";

/// The `/mcp` route, for the gateway's router.
pub(crate) fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let server = ImagegenMcp::for_gateway(state, state.mcp_wait_limit);
    // No sessions and no open streams: every request is answered and closed, so a
    // graceful stop never waits on an idle client. `Host` is checked by the gateway's
    // own rule (loopback names when it has no keys), not the SDK's fixed list.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(state.max_body_bytes);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .layer(middleware::from_fn_with_state(Arc::clone(state), admit))
}

/// The API's access rule, before the protocol.
async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Err(error) = state.auth.caller(request.headers()).await {
        return error.into_response();
    }
    next.run(request).await
}
