//! Which destination URLs and addresses Switchyard may send to (SSRF protection).
//!
//! The same policy is applied twice: when a URL is saved (early, friendly error) and on every
//! address the HTTP client is about to connect to (the check that actually protects).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

#[derive(Clone, Copy, Debug, Default)]
pub struct UrlPolicy {
    /// Accept `http://` as well as `https://` (development and tests only).
    pub allow_http: bool,
    /// Accept loopback, private, link-local and metadata addresses (development and tests only).
    pub allow_private_networks: bool,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("URL is required")]
    Missing,
    #[error("URL must be a valid HTTPS URL: {0}")]
    Malformed(String),
    #[error("URL must be a valid HTTPS URL: the scheme must be https")]
    NotHttps,
    #[error("URL must be a valid HTTPS URL: {0} is a loopback, private, link-local or metadata address")]
    BlockedAddress(IpAddr),
}

pub const MAX_URL_LEN: usize = 2048;

impl UrlPolicy {
    /// Parses and checks a destination URL. Host names are not resolved here (see `is_allowed_ip`).
    pub fn check_url(&self, raw: &str) -> Result<Url, UrlError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(UrlError::Missing);
        }
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::Malformed(format!("longer than {MAX_URL_LEN} characters")));
        }
        let url = Url::parse(raw).map_err(|e| UrlError::Malformed(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(UrlError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Malformed("credentials in the URL are not allowed".into()));
        }
        let literal = match url.host() {
            None => return Err(UrlError::Malformed("a host is required".into())),
            Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        };
        match literal {
            Some(ip) if !self.is_allowed_ip(ip) => Err(UrlError::BlockedAddress(ip)),
            _ => Ok(url),
        }
    }

    pub fn is_allowed_ip(&self, ip: IpAddr) -> bool {
        self.allow_private_networks || !is_internal(ip)
    }
}

/// Loopback, private, shared, link-local (incl. cloud metadata), unspecified, multicast,
/// broadcast and documentation ranges: nothing a public webhook receiver lives on.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || a >= 240 // reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, includes fd00:ec2::254 (AWS metadata)
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 can reach IPv4 internals
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy { allow_http: false, allow_private_networks: false };

    #[test]
    fn accepts_public_https() {
        let url = STRICT.check_url("https://your-app.com/webhooks/driftwood").unwrap();
        assert_eq!(url.host_str(), Some("your-app.com"));
    }

    #[test]
    fn refuses_missing_malformed_and_plain_http() {
        assert_eq!(STRICT.check_url("  "), Err(UrlError::Missing));
        assert!(matches!(STRICT.check_url("not a url"), Err(UrlError::Malformed(_))));
        assert_eq!(STRICT.check_url("http://example.com/"), Err(UrlError::NotHttps));
        assert_eq!(STRICT.check_url("ftp://example.com/"), Err(UrlError::NotHttps));
        assert!(matches!(STRICT.check_url("https://u:p@example.com/"), Err(UrlError::Malformed(_))));
    }

    #[test]
    fn refuses_internal_literals_and_localhost() {
        for url in [
            "https://127.0.0.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00:ec2::254]/",
            "https://localhost:8443/",
            "https://0.0.0.0/",
            "https://100.64.1.1/",
        ] {
            assert!(matches!(STRICT.check_url(url), Err(UrlError::BlockedAddress(_))), "{url}");
        }
    }

    #[test]
    fn relaxations_are_explicit() {
        let dev = UrlPolicy { allow_http: true, allow_private_networks: true };
        assert!(dev.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(dev.is_allowed_ip("10.0.0.1".parse().unwrap()));
        assert!(!STRICT.is_allowed_ip("192.168.1.1".parse().unwrap()));
        assert!(STRICT.is_allowed_ip("93.184.216.34".parse().unwrap()));
        assert!(STRICT.is_allowed_ip("2606:2800:220:1::1".parse().unwrap()));
    }
}
