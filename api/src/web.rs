//! The campaign owner's web page (`/campaigns/`): three files from `web/campaigns/` in the
//! repository, embedded in the binary when it is built (no bundler, no CDN). The page calls the
//! JSON API with the owner's token.

use axum::{
    Router,
    http::header,
    response::{IntoResponse, Redirect},
    routing::get,
};

const INDEX: &str = include_str!("../../web/campaigns/index.html");
const SCRIPT: &str = include_str!("../../web/campaigns/app.js");
const STYLE: &str = include_str!("../../web/campaigns/style.css");

/// Only this origin's scripts, styles and API; banners may come from the public URL's host.
const POLICY: &str = "default-src 'self'; img-src 'self' http: https:; object-src 'none'; base-uri 'none'; \
                      frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `/campaigns/`, its script and its style sheet.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/campaigns", get(|| async { Redirect::permanent("/campaigns/") }))
        .route(
            "/campaigns/",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/campaigns/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/campaigns/style.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
}
