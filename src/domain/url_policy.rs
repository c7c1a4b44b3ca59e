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
    #[error("{0} is not a globally reachable address (loopback, private, link-local, metadata or reserved)")]
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
        // The `url` crate already reads every IPv4 spelling (decimal, hex, octal, short forms)
        // as the address it means, so `host()` below is what a client would connect to.
        let url = Url::parse(raw).map_err(|e| UrlError::Malformed(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(UrlError::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Malformed("credentials in the URL are not allowed".into()));
        }
        let host = url.host().ok_or_else(|| UrlError::Malformed("a host is required".into()))?;
        self.check_parsed_host(host)?;
        Ok(url)
    }

    /// Parses and checks a bare host (an SMTP server): a name, an IPv4 address in any spelling,
    /// or an IPv6 address with or without brackets.
    pub fn check_host(&self, raw: &str) -> Result<Host<String>, UrlError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(UrlError::Malformed("a host is required".into()));
        }
        let host = match raw.parse::<Ipv6Addr>() {
            Ok(v6) => Host::Ipv6(v6),
            Err(_) => Host::parse(raw).map_err(|e| UrlError::Malformed(format!("'{raw}' is not a host name or IP address: {e}")))?,
        };
        self.check_parsed_host(host.clone())?;
        Ok(host)
    }

    /// Refuses literal addresses that are not globally reachable, and `localhost` names.
    fn check_parsed_host<S: AsRef<str>>(&self, host: Host<S>) -> Result<(), UrlError> {
        let literal = match &host {
            Host::Domain(d) if is_localhost_name(d.as_ref()) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Host::Domain(_) => None,
            Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        };
        match literal {
            Some(ip) if !self.is_allowed_ip(ip) => Err(UrlError::BlockedAddress(ip)),
            _ => Ok(()),
        }
    }

    pub fn is_allowed_ip(&self, ip: IpAddr) -> bool {
        self.allow_private_networks || is_globally_reachable(ip)
    }
}

/// `localhost` and its subdomains (RFC 6761), with or without the trailing dot of a fully
/// qualified name.
fn is_localhost_name(domain: &str) -> bool {
    let name = domain.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// IPv4 ranges that are not globally reachable (IANA IPv4 special-purpose registry, plus
/// multicast and the reserved 240/4 that includes the broadcast address).
const NON_GLOBAL_V4: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and 255.255.255.255
];

/// IPv6 ranges that are not globally reachable (IANA IPv6 special-purpose registry), judged
/// after the translated forms whose IPv4 address decides (see `translated_v4`).
const NON_GLOBAL_V6: [(Ipv6Addr, u8); 12] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96),          // ::, ::1 and IPv4-compatible ::a.b.c.d
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96),     // SIIT ::ffff:0:a.b.c.d
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),  // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),      // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),     // IETF protocol assignments, incl. Teredo 2001::/32
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16),     // segment routing (SRv6) SIDs
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),      // unique local, incl. fd00:ec2::254 (AWS metadata)
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),     // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),     // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),      // multicast
];

/// The one decision on addresses: whether `ip` is a public Internet address. Both the check
/// when a target is saved and the resolver every connection goes through ask this.
pub fn is_globally_reachable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !NON_GLOBAL_V4.iter().any(|&(net, len)| in_v4_net(v4, net, len)),
        IpAddr::V6(v6) => match translated_v4(v6) {
            Some(v4) => is_globally_reachable(IpAddr::V4(v4)),
            None => !is_isatap(v6) && !NON_GLOBAL_V6.iter().any(|&(net, len)| in_v6_net(v6, net, len)),
        },
    }
}

/// IPv6 forms through which a connection reaches an IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`),
/// well-known NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`).
fn translated_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [_, high, low, ..] = ip.segments();
    let ([a, b], [c, d]) = (high.to_be_bytes(), low.to_be_bytes());
    if in_v6_net(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    let last_32 = Ipv4Addr::from_bits(ip.to_bits() as u32);
    let mapped = in_v6_net(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);
    let nat64 = in_v6_net(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
    (mapped || nat64).then_some(last_32)
}

/// ISATAP interface identifiers (`…:0:5efe:a.b.c.d`, `…:200:5efe:…`) tunnel to an IPv4 address
/// inside a site: never a public receiver.
fn is_isatap(ip: Ipv6Addr) -> bool {
    let [.., ug, isatap, _, _] = ip.segments();
    ug & 0xfcff == 0 && isatap == 0x5efe
}

fn in_v4_net(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    ip.to_bits() & mask == net.to_bits() & mask
}

fn in_v6_net(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    ip.to_bits() & mask == net.to_bits() & mask
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
            "https://localhost./",
            "https://x.LOCALHOST./",
            "https://0.0.0.0/",
            "https://100.64.1.1/",
            "https://[::127.0.0.1]:8443/",
            "https://[2002:7f00:1::]:8443/",
        ] {
            assert!(matches!(STRICT.check_url(url), Err(UrlError::BlockedAddress(_))), "{url}");
        }
    }

    #[test]
    fn every_ipv4_spelling_is_judged_as_the_address_it_means() {
        for host in ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "127.0.0.1.", "0x7f000001", "0", "%31%32%37.0.0.1", "0xa9.254.169.254"] {
            assert!(matches!(STRICT.check_url(&format!("https://{host}/")), Err(UrlError::BlockedAddress(_))), "{host}");
        }
        assert!(matches!(STRICT.check_url("https://[fe80::1%25eth0]/"), Err(UrlError::Malformed(_))), "zone ids are not URLs");
    }

    #[test]
    fn special_purpose_ranges_are_not_globally_reachable() {
        let internal = [
            "0.1.2.3",
            "10.1.1.1",
            "100.127.255.255",
            "127.8.8.8",
            "169.254.0.1",
            "172.31.255.255",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:10.0.0.1",
            "::ffff:0:8.8.8.8",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::808:808",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1ff::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2606:4700::0:5efe:a00:1",
            "2606:4700::200:5efe:808:808",
        ];
        for ip in internal {
            assert!(!is_globally_reachable(ip.parse().unwrap()), "{ip}");
        }
        let public = [
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700::1111",
            "2001:200::1",
            "2a00:1450:4001::200e",
        ];
        for ip in public {
            assert!(is_globally_reachable(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn bare_hosts_are_checked_like_url_hosts() {
        assert_eq!(STRICT.check_host("smtp.example.com"), Ok(Host::Domain("smtp.example.com".into())));
        assert_eq!(STRICT.check_host(" 8.8.8.8 "), Ok(Host::Ipv4(Ipv4Addr::new(8, 8, 8, 8))));
        for blocked in ["10.0.0.1", "169.254.169.254", "0x7f.1", "::1", "[::1]", "localhost", "Localhost.", "mail.localhost"] {
            assert!(matches!(STRICT.check_host(blocked), Err(UrlError::BlockedAddress(_))), "{blocked}");
        }
        for malformed in ["", "bad host", "smtp.example.com:25", "a/b", "[::1"] {
            assert!(matches!(STRICT.check_host(malformed), Err(UrlError::Malformed(_))), "{malformed}");
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
