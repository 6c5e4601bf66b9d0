//! Who is really calling: the client's address behind the proxies we trust, and its user
//! agent. Sign-in throttling, the code-entry budget, the audit log and the approver's view all
//! key on the address, so a client must not be able to choose it.
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to: `client, proxy1, proxy2`, and
//! our peer is the last proxy. Anything left of a hop we do not trust may have been written by
//! the client, so the client is the **right-most hop that is not a trusted proxy**: start from
//! the peer, and while the hop at hand is trusted, step one entry to the left. With no trusted
//! proxies configured the header is ignored and the peer is the client.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use actix_web::{HttpRequest, http::header};
use serde::{Deserialize, Deserializer, de};

/// The user agent is shown to people and stored; longer ones are cut to this many characters.
pub const USER_AGENT_MAX: usize = 200;

/// What a service reads about the network in front of it:
///
/// ```toml
/// [network]
/// # The proxies (or the web) whose X-Forwarded-For is believed; addresses or CIDR blocks,
/// # comma-separated. Empty: X-Forwarded-For is ignored.
/// trusted_proxies = "127.0.0.1, 10.0.0.0/8"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkSettings {
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
}

/// Addresses and CIDR blocks whose `X-Forwarded-For` entries are believed. Read from a string
/// (`"127.0.0.1, 10.0.0.0/8, ::1"`, which is what an environment variable gives) or a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    network: IpAddr,
    prefix: u8,
}

impl Block {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Block {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network = address
            .parse::<IpAddr>()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has a prefix length out of 0..={max}"))?,
        };
        Ok(Block { network, prefix })
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split([',', ' '])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Block::from_str)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = TrustedProxies;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("IP addresses or CIDR blocks, comma-separated or as a list")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<TrustedProxies, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TrustedProxies, A::Error> {
                let mut blocks = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    blocks.extend(
                        entry
                            .parse::<TrustedProxies>()
                            .map_err(de::Error::custom)?
                            .0,
                    );
                }
                Ok(TrustedProxies(blocks))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` entries in order (left-most
    /// first): the right-most hop that is not trusted. An entry that is not an address stops
    /// the walk at the trusted hop that passed it on, since whoever wrote it is beyond what we
    /// can check. When every hop is trusted, the left-most one is the client.
    pub fn client_behind(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = peer.to_canonical();
        for entry in forwarded_for.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match parse_hop(entry) {
                Some(hop) => client = hop,
                None => break,
            }
        }
        client
    }

    /// The client address of `req` (see [`TrustedProxies::client_behind`]); `None` only when
    /// actix knows no peer (a test request).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(peer) {
            return Some(peer.to_canonical());
        }
        // Several headers count as one list, in order.
        let values: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect();
        let entries: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
        Some(self.client_behind(peer, &entries))
    }

    /// [`TrustedProxies::client_ip`] as text, `unknown` without a peer.
    pub fn client_address(&self, req: &HttpRequest) -> String {
        self.client_ip(req)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// Whether two client addresses look like the same network: the same /24 for IPv4, the same
/// /64 for IPv6 (a home or shop line). Anything that is not an address is a different network.
/// A hint for people, not a security boundary: a device approved from another network than the
/// approver's is the shape of a phishing attempt (RFC 8628 §5.4).
pub fn same_network(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (parse_hop(a), parse_hop(b)) else {
        return false;
    };
    let prefix = if a.is_ipv4() { 24 } else { 64 };
    Block { network: a, prefix }.contains(b)
}

/// The request's user agent, cut to [`USER_AGENT_MAX`] characters.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(USER_AGENT_MAX).collect())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s} is an address"))
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies("10.0.0.0/8, 192.0.2.1");
        // The client wrote 1.1.1.1 itself; the proxy appended the address it saw.
        let client = trusted.client_behind(ip("10.0.0.5"), &["1.1.1.1", " 203.0.113.9"]);
        assert_eq!(client, ip("203.0.113.9"));
        // Two trusted proxies in a row are both stepped over.
        let client =
            trusted.client_behind(ip("10.0.0.5"), &["1.1.1.1", "203.0.113.9", "192.0.2.1"]);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = proxies("10.0.0.0/8");
        let client = trusted.client_behind(ip("198.51.100.7"), &["10.0.0.1", "1.1.1.1"]);
        assert_eq!(client, ip("198.51.100.7"));
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client_behind(ip("127.0.0.1"), &["1.1.1.1"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn garbage_stops_the_walk_and_all_trusted_gives_the_left_most() {
        let trusted = proxies("127.0.0.1/32");
        assert_eq!(
            trusted.client_behind(ip("127.0.0.1"), &["1.1.1.1", "not-an-ip"]),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_behind(ip("127.0.0.1"), &["127.0.0.1", "127.0.0.1"]),
            ip("127.0.0.1")
        );
        assert_eq!(
            trusted.client_behind(ip("127.0.0.1"), &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn blocks_match_by_prefix_and_mapped_addresses_count_as_v4() {
        let trusted = proxies("10.1.0.0/16,2001:db8::/32");
        assert!(trusted.trusts(ip("10.1.200.3")));
        assert!(!trusted.trusts(ip("10.2.0.1")));
        assert!(trusted.trusts(ip("::ffff:10.1.0.9")));
        assert!(trusted.trusts(ip("2001:db8:ffff::1")));
        assert!(!trusted.trusts(ip("2001:db9::1")));
        assert!(proxies("0.0.0.0/0").trusts(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("example.com".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn networks_are_compared_by_their_line() {
        assert!(same_network("203.0.113.5", "203.0.113.200"));
        assert!(!same_network("203.0.113.5", "203.0.114.5"));
        assert!(same_network("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"));
        assert!(!same_network("2001:db8:1:2::1", "2001:db8:1:3::1"));
        assert!(!same_network("203.0.113.5", "2001:db8::1"));
        assert!(!same_network("unknown", "unknown"));
    }

    #[test]
    fn settings_read_a_string_or_a_list() {
        let from_string: NetworkSettings =
            serde_json::from_str(r#"{"trusted_proxies": "127.0.0.1, ::1"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        let from_list: NetworkSettings =
            serde_json::from_str(r#"{"trusted_proxies": ["127.0.0.1", "::1"]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_string.trusted_proxies, from_list.trusted_proxies);
        let empty: NetworkSettings = serde_json::from_str("{}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty.trusted_proxies, TrustedProxies::default());
    }

    #[test]
    fn reads_every_forwarded_header_of_a_request() {
        let req = TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap_or_else(|_| panic!("addr")))
            .append_header(("x-forwarded-for", "1.1.1.1, 203.0.113.1"))
            .append_header(("x-forwarded-for", "127.0.0.1"))
            .insert_header((header::USER_AGENT, "x".repeat(300)))
            .to_http_request();
        assert_eq!(
            proxies("127.0.0.1").client_address(&req),
            "203.0.113.1".to_owned()
        );
        assert_eq!(
            TrustedProxies::default().client_address(&req),
            "127.0.0.1".to_owned()
        );
        assert_eq!(user_agent(&req).map(|ua| ua.len()), Some(USER_AGENT_MAX));
    }
}
