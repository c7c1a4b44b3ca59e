//! Portal sessions: a host platform puts Switchyard's screens in front of one of its customers.
//! A one-time link (its code good for a few minutes, once) opens a short-lived session confined
//! to that account, which cannot reach its tokens; only the origins named may frame it.

use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ids::AccountId;
use super::time::Millis;

/// How long a link's code may wait to be opened.
pub const CODE_LIFE_MS: Millis = 10 * 60 * 1000;
/// A session's life: default, shortest, longest (seconds).
pub const DEFAULT_SESSION_SECONDS: u64 = 3600;
pub const MIN_SESSION_SECONDS: u64 = 60;
pub const MAX_SESSION_SECONDS: u64 = 24 * 3600;
/// Most origins that may frame one portal.
pub const MAX_ORIGINS: usize = 10;

/// How the portal looks: the platform's brand.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    /// `#RRGGBB`: buttons, links, the current page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    /// An `https://` image shown in place of Switchyard's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Shown in the top bar and the page title (at most 60 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// `light` (default) or `dark`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

impl Theme {
    pub fn check(&self) -> Result<(), String> {
        if let Some(color) = &self.brand_color
            && !(color.len() == 7 && color.starts_with('#') && color[1..].chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err("theme.brand_color must be #RRGGBB".into());
        }
        if let Some(logo) = &self.logo_url
            && Url::parse(logo).map(|u| u.scheme() != "https").unwrap_or(true)
        {
            return Err("theme.logo_url must be an https:// URL".into());
        }
        if let Some(name) = &self.product_name
            && (name.trim().is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control))
        {
            return Err("theme.product_name must be 1 to 60 characters".into());
        }
        if self.mode.as_deref().is_some_and(|m| m != "light" && m != "dark") {
            return Err("theme.mode must be light or dark".into());
        }
        Ok(())
    }
}

/// An origin that may frame the portal, as browsers write it: `https://app.example.com` (or
/// `http://` for loopback, to try it locally), with no path, query or credentials.
pub fn check_origin(origin: &str) -> Result<String, String> {
    let refused = || format!("allowed_origins: {origin:?} is not an origin like https://app.example.com");
    let url = Url::parse(origin).map_err(|_| refused())?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty() && url.password().is_none();
    // A plain name or address: nothing that means more in a CSP source list (`*`, `;`, spaces).
    let plain_host = url.host_str().is_some_and(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c)));
    if !scheme_ok || !bare || !plain_host || origin.ends_with('/') {
        return Err(refused());
    }
    Ok(url.origin().ascii_serialization())
}

/// The `Content-Security-Policy` of a portal page: only the allowed origins may frame it.
pub fn frame_ancestors(origins: &[String]) -> String {
    if origins.is_empty() { "frame-ancestors 'none'".into() } else { format!("frame-ancestors {}", origins.join(" ")) }
}

/// A portal session as stored: digests of its code and (once exchanged) its session token.
#[derive(Clone, Debug, PartialEq)]
pub struct PortalSession {
    pub id: Uuid,
    pub account_id: AccountId,
    pub code_digest: String,
    pub code_expires_at: Millis,
    /// Set when the code is exchanged; the code is then spent.
    pub session_digest: Option<String>,
    pub expires_at: Millis,
    pub allowed_origins: Vec<String>,
    pub theme: Theme,
    /// The one workspace the session is confined to, if any.
    pub workspace_id: Option<Uuid>,
    pub created_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_bare_and_https_except_on_loopback() {
        assert_eq!(check_origin("https://app.example.com"), Ok("https://app.example.com".into()));
        assert_eq!(check_origin("https://app.example.com:8443"), Ok("https://app.example.com:8443".into()));
        assert_eq!(check_origin("http://127.0.0.1:5173"), Ok("http://127.0.0.1:5173".into()));
        for bad in [
            "http://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://u:p@app.example.com",
            "*",
            "https://*.example.com",
            "javascript:alert(1)",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_ancestors_name_only_the_allowed_origins() {
        assert_eq!(frame_ancestors(&[]), "frame-ancestors 'none'");
        assert_eq!(frame_ancestors(&["https://a.example".into(), "https://b.example".into()]), "frame-ancestors https://a.example https://b.example");
    }

    #[test]
    fn themes_are_checked() {
        assert!(
            Theme {
                brand_color: Some("#1a2B3c".into()),
                logo_url: Some("https://cdn.example/logo.svg".into()),
                product_name: Some("Acme Hooks".into()),
                mode: Some("dark".into())
            }
            .check()
            .is_ok()
        );
        for bad in [
            Theme { brand_color: Some("red".into()), ..Theme::default() },
            Theme { logo_url: Some("http://cdn.example/logo.svg".into()), ..Theme::default() },
            Theme { logo_url: Some("javascript:alert(1)".into()), ..Theme::default() },
            Theme { product_name: Some(" ".into()), ..Theme::default() },
            Theme { mode: Some("neon".into()), ..Theme::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
