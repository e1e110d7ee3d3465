//! Where the server may send requests of its own: webhook deliveries (broker) and
//! subscribed calendar feeds (scheduler) alike. URLs are http(s) only; requests to
//! private, loopback, link-local and other non-public addresses are refused unless
//! `BROKER_ALLOWED_TARGETS` (one allow-list for every outbound request; the name is
//! older than its second user) names the host or a CIDR containing the address. The
//! check runs where the address is known — in the DNS resolver the HTTP client uses, on
//! IP-literal URLs, and on every redirect — so a name that later resolves somewhere
//! private (DNS rebinding) is refused too.

use crate::error::AppError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether an address is on the public internet (the only place webhooks go by default).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Only global unicast (`2000::/3`) counts as public, less the ranges in it that are not
/// really the public internet or that embed an IPv4 address the check would not see:
/// that rules out at once everything outside it — `::a.b.c.d` (IPv4-compatible),
/// `64:ff9b::/96` and `64:ff9b:1::/48` (NAT64), `fec0::/10` (site-local), unique local,
/// link-local, multicast, loopback, the unspecified and discard addresses.
fn is_public_v6(ip: Ipv6Addr) -> bool {
    let [a, b, ..] = ip.segments();
    let global_unicast = (a & 0xe000) == 0x2000;
    global_unicast
        && !(a == 0x2001 && b < 0x0200) // 2001::/23 IETF protocol assignments: Teredo 2001::/32 (embeds IPv4), ORCHID, benchmarking
        && !(a == 0x2001 && b == 0x0db8) // documentation
        && a != 0x2002 // 6to4: 2002:a.b.c.d::/48 reaches the IPv4 address it embeds
        && !(a == 0x3fff && b < 0x1000) // documentation (3fff::/20)
}

/// The variable that lists what may be reached although not public.
pub const ALLOW_VAR: &str = "BROKER_ALLOWED_TARGETS";

/// `BROKER_ALLOWED_TARGETS`: hosts and CIDRs, comma-separated (default none).
pub fn allowed_from(env: &crate::platform::settings::Vars) -> Vec<String> {
    env.var(ALLOW_VAR)
        .map(|v| v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default()
}

/// The outbound request policy, built from `BROKER_ALLOWED_TARGETS`.
#[derive(Clone, Debug, Default)]
pub struct TargetPolicy {
    hosts: Vec<String>,
    nets: Vec<Cidr>,
    /// An endpoint of this server itself (its base URL) that may be called, when one is
    /// on (the broker's demo receiver).
    builtin: Option<String>,
}

impl TargetPolicy {
    pub fn new(allowed: &[String]) -> Self {
        let mut policy = Self::default();
        for entry in allowed {
            match Cidr::parse(entry) {
                Some(net) => policy.nets.push(net),
                None => policy.hosts.push(entry.to_ascii_lowercase()),
            }
        }
        policy
    }

    /// Also permits an endpoint of this server at `base` (the broker's demo receiver):
    /// that base and one numeric id, on an IP literal, and nothing else at that address.
    pub fn with_builtin(mut self, base: Option<String>) -> Self {
        self.builtin = base;
        self
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.nets.iter().any(|n| n.contains(ip))
    }

    fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Checks a URL as far as can be done without DNS: scheme, no credentials, and the
    /// address when the host is an IP literal. `field` names the request field at fault.
    pub fn check_url(&self, raw: &str, field: &str) -> Result<Url, AppError> {
        let url = Url::parse(raw).map_err(|e| AppError::invalid(field, format!("not a valid URL: {e}")))?;
        if self.builtin.as_deref().is_some_and(|base| is_builtin(base, raw) && url.as_str() == raw) {
            return Ok(url);
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AppError::invalid(field, "only http and https endpoints are supported"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AppError::invalid(field, "credentials in the URL are not allowed; sign requests instead"));
        }
        let host = url.host_str().ok_or_else(|| AppError::invalid(field, "the URL has no host"))?;
        if raw.len() > 2048 {
            return Err(AppError::invalid(field, "the URL is longer than 2048 characters"));
        }
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        match literal {
            Some(ip) if !self.allows_host(host) && !self.allows_ip(ip) => Err(AppError::invalid(
                field,
                format!("{ip} is a private, loopback or link-local address; BROKER_ALLOWED_TARGETS can permit it"),
            )),
            _ => Ok(url),
        }
    }
}

/// Whether `url` is the built-in endpoint at `base`: the exact base, then one id.
pub fn is_builtin(base: &str, url: &str) -> bool {
    url.strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|id| !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()))
}

/// A redirect policy for clients that follow redirects: at most `max` hops, each to a
/// URL the policy accepts (the resolver then checks the addresses a name gives).
pub fn guarded_redirects(policy: Arc<TargetPolicy>, max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= max {
            return attempt.error(format!("more than {max} redirects"));
        }
        match policy.check_url(attempt.url().as_str(), "url") {
            Ok(_) => attempt.follow(),
            Err(e) => attempt.error(format!("redirected to a refused address: {}", e.message)),
        }
    })
}

/// An HTTP client held to `policy`: names resolved by the guarded resolver, no proxy
/// (which would resolve names itself, out of the resolver's sight), no redirects unless
/// the caller sets [`guarded_redirects`], and the whole request bounded by `timeout`.
pub fn guarded_client(policy: Arc<TargetPolicy>, timeout: std::time::Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
}

/// A DNS resolver that only returns addresses the policy allows.
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = if policy.allows_host(&host) {
                addrs
            } else {
                addrs.into_iter().filter(|a| policy.allows_ip(a.ip())).collect()
            };
            if allowed.is_empty() {
                let msg = format!("refused: {host} resolves only to private, loopback or link-local addresses");
                return Err(msg.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        let none = TargetPolicy::new(&[]);
        for ip in [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::",
            "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
            // The gaps a review found: NAT64, IPv4-compatible, 6to4, site-local.
            "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "::127.0.0.1", "::169.254.169.254",
            "2002:7f00:1::", "2002:a9fe:a9fe::1", "fec0::1", "feff::1",
            // Teredo, documentation, discard, multicast.
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1", "3fff::1", "100::1", "ff02::1",
        ] {
            assert!(!none.allows_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1", "2a00:1450:4007:80e::200e", "2001:4860:4860::8888"] {
            assert!(none.allows_ip(ip.parse().unwrap()), "{ip}");
        }
        let some = TargetPolicy::new(&["127.0.0.1".into(), "10.0.0.0/8".into(), "hooks.internal".into()]);
        assert!(some.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!some.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(some.allows_ip("10.200.1.1".parse().unwrap()));
        assert!(some.allows_host("HOOKS.internal"));
    }

    #[test]
    fn urls_are_checked_and_the_field_named() {
        let policy = TargetPolicy::new(&[]);
        assert!(policy.check_url("https://example.com/hook", "url").is_ok());
        for bad in ["ftp://example.com/", "not a url", "http://user:pw@example.com/", "http://127.0.0.1:8080/", "http://[::1]/", "http://169.254.169.254/latest"] {
            let err = policy.check_url(bad, "url").unwrap_err();
            assert_eq!(err.field.as_deref(), Some("url"), "{bad}");
        }
        assert!(TargetPolicy::new(&["127.0.0.1".into()]).check_url("http://127.0.0.1:8080/", "url").is_ok());
    }
}
