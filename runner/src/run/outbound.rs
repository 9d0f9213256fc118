//! Where a run may send HTTP requests (a job's `allowed_outbound_hosts` and
//! `allowed_outbound_networks`, as Spin's `allowed_outbound_hosts`): origins by scheme,
//! host (exact, or `*.` and a domain) and port, and which addresses a name may resolve to.
//! Nothing is allowed by default.
//!
//! An address is checked as well as the name (a name allowed today may resolve to the
//! runner's own machine tomorrow: DNS rebinding): loopback, link-local, unspecified,
//! multicast and private addresses are refused unless a network allows them, or the origin
//! names that very address (`http://10.0.0.7:8080`).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Entries one job may list in each key.
pub const MAX_ENTRIES: usize = 64;

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    /// Lowercase, an IPv6 address without brackets; a leading `*.` matches any name under
    /// the domain (not the domain).
    host: String,
    port: u16,
    /// The host, when it is an address (read once, not at every connection).
    addr: Option<IpAddr>,
}

/// A job's outbound HTTP policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Outbound {
    origins: Vec<Origin>,
    networks: Vec<IpNet>,
}

impl Outbound {
    /// From the configuration's lists: each origin `scheme://host[:port]`, each network a
    /// CIDR (`172.16.0.0/12`) or an address. Errors name the entry.
    pub fn parse(hosts: &[String], networks: &[String]) -> Result<Self, String> {
        if hosts.len() > MAX_ENTRIES || networks.len() > MAX_ENTRIES {
            return Err(format!("at most {MAX_ENTRIES} entries in each list"));
        }
        let origins = hosts
            .iter()
            .map(|h| origin(h))
            .collect::<Result<Vec<_>, _>>()?;
        let networks = networks
            .iter()
            .map(|n| {
                IpNet::from_str(n)
                    .or_else(|_| IpAddr::from_str(n).map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "'allowed_outbound_networks' entry {n:?} is not a network such as \"172.16.0.0/12\" or an address"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { origins, networks })
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Whether a request to `url` is allowed by its origin; else why not.
    pub fn allows_url(&self, url: &reqwest::Url) -> Result<(), String> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("scheme {other:?} is not http or https")),
        };
        let host = bare_host(url);
        let port = url.port_or_known_default().unwrap_or(0);
        let matches = |o: &Origin| {
            o.https == https
                && o.port == port
                && match o.host.strip_prefix("*.") {
                    Some(domain) => host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                    None => o.host == *host,
                }
        };
        if self.origins.iter().any(matches) {
            return Ok(());
        }
        let scheme = if https { "https" } else { "http" };
        Err(format!(
            "{scheme}://{}:{port} is not among the job's allowed_outbound_hosts in service_config.json",
            url.host_str().unwrap_or_default()
        ))
    }

    /// Whether a connection to `ip` is allowed: any public address, and an address no
    /// public network holds only if a network allows it or an origin names it.
    pub fn allows_addr(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if !special(ip) {
            return true;
        }
        self.networks.iter().any(|n| n.contains(&ip))
            || self.origins.iter().any(|o| o.addr == Some(ip))
    }
}

/// A URL's host as origins are compared: lowercase, an IPv6 address without brackets.
fn bare_host(url: &reqwest::Url) -> &str {
    let host = url.host_str().unwrap_or_default();
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A URL's host, when it is written as an address.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    bare_host(url).parse().ok()
}

/// This machine itself (loopback, unspecified, any of its interfaces' addresses), however
/// written.
pub fn this_machine(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    ip.is_loopback() || ip.is_unspecified() || super::interfaces::is_local(ip)
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses no public service has: the machine itself, its links, private networks.
fn special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [b0, b1, ..] = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT; 0.0.0.0/8
                || (b0 == 100 && (64..128).contains(&b1))
                || b0 == 0
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// `scheme://host[:port]`, nothing more.
fn origin(entry: &str) -> Result<Origin, String> {
    let bad = |why: &str| {
        format!(
            "'allowed_outbound_hosts' entry {entry:?} {why}: write an origin such as \"https://*.example.com\" or \"http://10.0.0.7:8080\""
        )
    };
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad("has no scheme"))?;
    let https = match scheme {
        "http" => false,
        "https" => true,
        _ => return Err(bad("is not http or https")),
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(bad("is not only a host and a port"));
    }
    // The host part parsed as a URL's, so that it is compared as requests' are.
    let wildcard = rest.starts_with("*.");
    let probe = format!("{scheme}://{}", if wildcard { &rest[2..] } else { rest });
    let url = reqwest::Url::parse(&probe).map_err(|_| bad("is not a host and a port"))?;
    let host = url.host_str().ok_or_else(|| bad("has no host"))?;
    if wildcard && host.contains(['*', '[', ':']) {
        return Err(bad("may have one '*.' before a domain only"));
    }
    if host.contains('*') {
        return Err(bad("may have '*' only as its first label"));
    }
    let host = bare_host(&url);
    Ok(Origin {
        https,
        host: if wildcard {
            format!("*.{host}")
        } else {
            host.to_owned()
        },
        port: url.port_or_known_default().unwrap_or(0),
        addr: literal_ip(&url).filter(|_| !wildcard).map(canonical),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], nets: &[&str]) -> Outbound {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Outbound::parse(&s(hosts), &s(nets)).unwrap()
    }

    fn url(u: &str) -> reqwest::Url {
        reqwest::Url::parse(u).unwrap()
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let p = policy(
            &[
                "https://*.example.com",
                "http://query_service:8086",
                "http://10.0.0.7:8080",
                "http://[fd00::7]:8080",
            ],
            &[],
        );
        for ok in [
            "https://a.example.com/x?y",
            "https://a.b.example.com:443/",
            "https://A.Example.COM/",
            "http://query_service:8086/link_health/n/1",
            "http://10.0.0.7:8080/",
            "http://[fd00::7]:8080/x",
        ] {
            assert!(p.allows_url(&url(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "https://example.com/",
            "http://a.example.com/",
            "https://a.example.com:8443/",
            "https://evil-example.com/",
            "https://a.example.com.evil.net/",
            "http://query_service:8087/",
            "ftp://a.example.com/",
        ] {
            let e = p.allows_url(&url(refused)).unwrap_err();
            assert!(
                e.contains("allowed_outbound_hosts") || e.contains("scheme"),
                "{refused}: {e}"
            );
        }
    }

    #[test]
    fn an_address_of_the_machine_or_a_private_network_needs_allowing() {
        let p = policy(
            &["http://10.0.0.7:8080", "https://*.example.com"],
            &["172.16.0.0/12"],
        );
        for ok in ["93.184.216.34", "10.0.0.7", "172.20.1.2", "2606:4700::1111"] {
            assert!(p.allows_addr(ok.parse().unwrap()), "{ok}");
        }
        for refused in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.0.0.8",
            "192.168.1.1",
            "169.254.169.254",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            assert!(!p.allows_addr(refused.parse().unwrap()), "{refused}");
        }
    }

    #[test]
    fn entries_that_are_not_origins_are_named() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (hosts, nets, says) in [
            (&["example.com"][..], &[][..], "has no scheme"),
            (&["ftp://example.com"], &[], "is not http or https"),
            (
                &["https://example.com/path"],
                &[],
                "not only a host and a port",
            ),
            (&["https://a.*.example.com"], &[], "first label"),
            (&["https://x"], &["10.0.0.0/33"], "is not a network"),
        ] {
            let e = Outbound::parse(&s(hosts), &s(nets)).unwrap_err();
            assert!(e.contains(says), "{hosts:?} {nets:?}: {e}");
        }
    }
}
