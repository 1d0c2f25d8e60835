//! The SSRF guard of outgoing webhooks: an organizer names the URL, so a
//! delivery must never reach the platform's own network (loopback, private
//! ranges, link-local and the cloud metadata address, and their IPv6 and
//! IPv4-mapped forms).
//!
//! Checked when an endpoint is registered (for a clear 422) and again at
//! every connection: the HTTP client resolves names through
//! [`GuardedResolver`], which hands the connector only allowed addresses,
//! so the address checked is the address connected to (a name that
//! resolves elsewhere the second time, DNS rebinding, cannot slip
//! through). Literal IP hosts never reach a resolver: [`check_url`] refuses
//! them before the request.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use url::{Host, Url};

/// Why a URL or an address may not receive webhooks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("must be an absolute http(s) URL")]
    NotHttp,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry credentials")]
    Credentials,
    #[error("{0} is a private, loopback, link-local or reserved address")]
    Forbidden(IpAddr),
    #[error("the host does not resolve")]
    Unresolvable,
}

/// Where deliveries may go.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Plain `http://` URLs (development only).
    pub allow_http: bool,
    /// `127.0.0.0/8` and `::1`, for a receiver on the same machine
    /// (`WEBHOOKS_ALLOW_LOOPBACK`, refused in production).
    pub allow_loopback: bool,
}

impl Policy {
    /// The address's refusal, if any.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if ip.is_loopback() && self.allow_loopback {
            return Ok(());
        }
        if forbidden(ip) {
            Err(Refusal::Forbidden(ip))
        } else {
            Ok(())
        }
    }

    /// The URL's shape, and its host if that is an IP literal. A name is
    /// checked when resolved ([`Policy::resolve`]).
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(Refusal::NotHttps),
            _ => return Err(Refusal::NotHttp),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match url.host() {
            None => Err(Refusal::NotHttp),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
        }
    }

    /// The allowed addresses `host` resolves to; refused if it resolves
    /// only to forbidden ones (any forbidden address is dropped, so a name
    /// with a public and a private address connects to the public one).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Refusal::Unresolvable)?
            .collect();
        let mut refused = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check_ip(a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    refused.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (false, _) => Ok(allowed),
            (true, Some(e)) => Err(e),
            (true, None) => Err(Refusal::Unresolvable),
        }
    }

    /// A registered URL: its shape, and where its name resolves now.
    pub async fn check_endpoint(&self, url: &Url) -> Result<(), Refusal> {
        self.check_url(url)?;
        if let Some(Host::Domain(name)) = url.host() {
            self.resolve(name, url.port_or_known_default().unwrap_or(443))
                .await?;
        }
        Ok(())
    }

    /// The client deliveries go out on: names resolved through the guard,
    /// no redirects (a 3xx is a failed attempt), bounded waits.
    pub fn client(
        &self,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(*self)))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .pool_max_idle_per_host(8)
            .user_agent("Boxoffice-Webhooks/1")
            .build()
    }
}

/// Resolves through [`Policy::resolve`]: the connector sees only allowed
/// addresses.
struct GuardedResolver(Policy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, NAT64
/// `64:ff9b::a.b.c.d`) is judged as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: the cloud metadata address
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 is a metadata address)
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_http: false,
        allow_loopback: false,
    };

    #[test]
    fn refuses_the_platform_network_in_every_spelling() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(STRICT.check_ip(ip).is_err(), "{bad} allowed");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(STRICT.check_ip(ip), Ok(()), "{good} refused");
        }
    }

    #[test]
    fn loopback_only_when_allowed() {
        let local = Policy {
            allow_http: true,
            allow_loopback: true,
        };
        assert_eq!(local.check_ip("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(local.check_ip("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert!(local.check_ip("10.0.0.1".parse().unwrap()).is_err());
        assert!(local.check_ip("169.254.169.254".parse().unwrap()).is_err());
    }

    #[test]
    fn urls_must_be_https_without_credentials() {
        let check = |u: &str| STRICT.check_url(&Url::parse(u).unwrap());
        assert_eq!(check("https://hooks.example.com/x"), Ok(()));
        assert_eq!(check("http://hooks.example.com/x"), Err(Refusal::NotHttps));
        assert_eq!(check("ftp://hooks.example.com/x"), Err(Refusal::NotHttp));
        assert_eq!(
            check("https://user:pw@hooks.example.com/x"),
            Err(Refusal::Credentials)
        );
        assert!(matches!(
            check("https://[::1]/x"),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            check("https://169.254.169.254/latest/meta-data"),
            Err(Refusal::Forbidden(_))
        ));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let err = STRICT.resolve("localhost", 443).await.unwrap_err();
        assert!(matches!(err, Refusal::Forbidden(_)), "{err:?}");
    }
}
