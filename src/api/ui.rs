//! Static files embedded in the binary and served as they are: the web UI (which uses the
//! public API only; ES modules from ui/app.js, no build step), the browser-callback script
//! `/embed.js` and its demo.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Scope};

const INDEX: &str = include_str!("../../ui/index.html");

/// Every file served under `/ui/`, by its path in `ui/` (a test checks that none is missing).
const FILES: &[(&str, &str)] = &[
    ("app.js", include_str!("../../ui/app.js")),
    ("app.css", include_str!("../../ui/app.css")),
    ("lib/api.js", include_str!("../../ui/lib/api.js")),
    ("lib/charts.js", include_str!("../../ui/lib/charts.js")),
    ("lib/dom.js", include_str!("../../ui/lib/dom.js")),
    ("lib/modal.js", include_str!("../../ui/lib/modal.js")),
    ("lib/parts.js", include_str!("../../ui/lib/parts.js")),
    ("lib/portal.js", include_str!("../../ui/lib/portal.js")),
    ("lib/receiver-auth.js", include_str!("../../ui/lib/receiver-auth.js")),
    ("lib/router.js", include_str!("../../ui/lib/router.js")),
    ("lib/session.js", include_str!("../../ui/lib/session.js")),
    ("screens/access.js", include_str!("../../ui/screens/access.js")),
    ("screens/activations.js", include_str!("../../ui/screens/activations.js")),
    ("screens/deliveries.js", include_str!("../../ui/screens/deliveries.js")),
    ("screens/destinations.js", include_str!("../../ui/screens/destinations.js")),
    ("screens/integrations.js", include_str!("../../ui/screens/integrations.js")),
    ("screens/mailer-rules.js", include_str!("../../ui/screens/mailer-rules.js")),
    ("screens/mailers.js", include_str!("../../ui/screens/mailers.js")),
    ("screens/overview.js", include_str!("../../ui/screens/overview.js")),
    ("screens/signin.js", include_str!("../../ui/screens/signin.js")),
    ("screens/suppressions.js", include_str!("../../ui/screens/suppressions.js")),
    ("screens/webhooks.js", include_str!("../../ui/screens/webhooks.js")),
    ("screens/workspaces.js", include_str!("../../ui/screens/workspaces.js")),
    // uPlot 1.6.32 (MIT), the charts' library: its dist files as `npm pack uplot@1.6.32` ships
    // them (tarball sha256 4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d),
    // with its licence.
    ("vendor/uPlot.iife.min.js", include_str!("../../ui/vendor/uPlot.iife.min.js")),
    ("vendor/uPlot.min.css", include_str!("../../ui/vendor/uPlot.min.css")),
    ("vendor/uPlot.LICENSE", include_str!("../../ui/vendor/uPlot.LICENSE")),
];
const FAVICON: &str = include_str!("../../ui/favicon.svg");
const EMBED: &str = include_str!("../../ui/embed.js");
const DEMO_HOST: &str = include_str!("../../ui/demo-embed.html");
const DEMO_EXPERIENCE: &str = include_str!("../../ui/demo-experience.html");
const DEMO_PORTAL: &str = include_str!("../../ui/demo-portal.html");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

/// The UI's page, which no other site may frame (the portal, `/portal`, names who may).
pub async fn index() -> impl IntoResponse {
    let mut page = asset("text/html; charset=utf-8", INDEX).into_response();
    page.headers_mut().insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static("frame-ancestors 'none'"));
    page
}

/// A file of the UI: `/ui/app.js`, `/ui/screens/….js`, `/ui/app.css`.
pub async fn file(Path(path): Path<String>) -> Response {
    let Some((name, body)) = FILES.iter().find(|(name, _)| *name == path) else {
        return ApiError::new(StatusCode::NOT_FOUND, Scope::Api, "not_found", "no such file").into_response();
    };
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    asset(content_type, body).into_response()
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

/// `/demo/portal`: a host platform's page framing the portal.
pub async fn demo_portal() -> impl IntoResponse {
    asset("text/html; charset=utf-8", DEMO_PORTAL)
}

#[cfg(test)]
mod tests {
    use super::FILES;
    use std::path::Path;

    /// Every module and style sheet in ui/ (but the pages served elsewhere) is embedded.
    #[test]
    fn every_ui_file_is_served() {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if path.extension().is_some_and(|e| e == "js" || e == "css") {
                    out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        found.retain(|f| f != "embed.js");
        for f in &found {
            assert!(FILES.iter().any(|(name, _)| name == f), "ui/{f} is not in ui.rs FILES");
        }
        // The vendored licence goes with its library.
        found.push("vendor/uPlot.LICENSE".into());
        assert_eq!(found.len(), FILES.len(), "FILES lists only files that exist");
    }
}
