//! The CDN listener: a different origin serving Kolbo's image URLs, model avatars and
//! library images, so tests can prove that no API key ever reaches it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;

use crate::koala::routes::serve_image;
use crate::reply::with_type;
use crate::state::SimState;

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new().fallback(serve)
}

async fn serve(State(sim): State<Arc<SimState>>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return with_type(405, "text/plain; charset=utf-8", "Method Not Allowed");
    }
    let name = format!("cdn:{}", request.uri().path());
    let now = sim.now();
    match sim.images.get(&name, now) {
        Some(stored) if stored.available_at <= now && stored.failure.is_none() => {
            serve_image(&sim, &name, &stored).await
        }
        _ => with_type(404, "text/plain; charset=utf-8", "Not Found"),
    }
}
