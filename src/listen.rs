//! `switchyard listen`: a local receiver for people integrating with Switchyard. Prints every
//! request and whether its Standard Webhooks signature is valid for the given secret.

use std::fmt::Write;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

use crate::domain::signing::{SigningSecret, verify};
use crate::domain::time::now_ms;

/// What `listen` says about one request, as printed.
pub fn describe(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8], secret: Option<&SigningSecret>, now_secs: i64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "── {method} {uri}");
    for (name, value) in headers {
        let _ = writeln!(out, "{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    let _ = writeln!(out);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => {
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&json).expect("JSON values serialize"));
        }
        Err(_) if body.is_empty() => {}
        Err(_) => {
            let _ = writeln!(out, "{}", String::from_utf8_lossy(body));
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verdict = match secret {
        None => "signature: not checked (start with --secret whsec_… to check it)".to_owned(),
        Some(secret) => match verify(secret, header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"), body, now_secs) {
            Ok(()) => "signature: valid".to_owned(),
            Err(why) => format!("signature: INVALID — {why}"),
        },
    };
    let _ = writeln!(out, "{verdict}");
    out
}

pub async fn run(listen: SocketAddr, secret: Option<String>, status: u16) -> anyhow::Result<()> {
    let secret =
        secret.map(|s| SigningSecret::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("--secret must be a whsec_… signing secret"))).transpose()?;
    let status = StatusCode::from_u16(status).map_err(|_| anyhow::anyhow!("--status must be an HTTP status code"))?;
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let text = describe(&method, &uri, &headers, &body, secret.as_ref(), now_ms() / 1000);
        println!("{text}");
        std::future::ready(status)
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("switchyard listen: waiting for webhooks on http://{}/ (answering {status})", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
