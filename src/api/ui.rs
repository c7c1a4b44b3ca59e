//! Static files embedded in the binary and served as they are: the web UI (which uses the
//! public API only, see ui/app.js), the browser-callback script `/embed.js` and its demo.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/app.css");
const FAVICON: &str = include_str!("../../ui/favicon.svg");
const EMBED: &str = include_str!("../../ui/embed.js");
const DEMO_HOST: &str = include_str!("../../ui/demo-embed.html");
const DEMO_EXPERIENCE: &str = include_str!("../../ui/demo-experience.html");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// The icon browsers ask for at `/favicon.ico`: an SVG, which they read by its content type.
pub async fn favicon() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON)
}

/// The browser-callback script; host pages on any origin load it.
pub async fn embed() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        EMBED,
    )
}

pub async fn demo_host() -> impl IntoResponse {
    asset("text/html; charset=utf-8", DEMO_HOST)
}

pub async fn demo_experience() -> impl IntoResponse {
    asset("text/html; charset=utf-8", DEMO_EXPERIENCE)
}
