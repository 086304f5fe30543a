//! Who sent a request: the client IP and the scheme, believing `X-Forwarded-For` and
//! `X-Forwarded-Proto` only from `TRUSTED_PROXIES`. Anyone else could write those headers
//! to dodge the per-IP limit or pose as another origin, so actix's `connection_info`,
//! which believes them from anyone, is not used.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::config::Cidr;
use crate::store::sessions::Device;

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (canonical(self.addr), canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address that arrived mapped into IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted(proxies: &[Cidr], ip: IpAddr) -> bool {
    proxies.iter().any(|cidr| cidr.contains(ip))
}

/// The client's IP: the TCP peer, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not a trusted proxy (read from the right, since every hop
/// appends and only the part our own proxies wrote can be believed).
/// How many characters of `User-Agent` a session keeps.
const USER_AGENT_CHARS: usize = 256;

/// The client of a login, as its session will show it.
pub fn device(req: &HttpRequest, ip: Option<IpAddr>) -> Device {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(USER_AGENT_CHARS)
                .collect()
        })
        .unwrap_or_default();
    Device {
        user_agent,
        ip: ip.map(|ip| ip.to_string()).unwrap_or_default(),
    }
}

pub fn client_ip(req: &HttpRequest, proxies: &[Cidr]) -> Option<IpAddr> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted(proxies, peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        // A hop our proxies wrote that is not an address (`unknown`): no client IP, rather
        // than the proxy's own, which would put every client behind it in one count.
        let ip = parse_hop(hop)?;
        if !trusted(proxies, ip) {
            return Some(ip);
        }
    }
    // Every hop is a proxy of ours (or there is none): the request came from inside.
    Some(peer)
}

/// An address as proxies write it: bare, `1.2.3.4:5678`, or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()?;
    Some(canonical(ip))
}

/// `http` or `https`: this service speaks plain HTTP itself, so `https` can only come from a
/// trusted proxy's `X-Forwarded-Proto` (its first value: the hop nearest the client).
pub fn scheme(req: &HttpRequest, proxies: &[Cidr]) -> String {
    let from_proxy = req
        .peer_addr()
        .is_some_and(|peer| trusted(proxies, canonical(peer.ip())));
    let forwarded = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| v == "http" || v == "https");
    match forwarded {
        Some(proto) if from_proxy => proto,
        _ => "http".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn cidr(s: &str) -> Cidr {
        let (addr, prefix) = s.split_once('/').unwrap();
        Cidr {
            addr: addr.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
        }
    }

    fn request(peer: &str, xff: &[&str]) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for value in xff {
            req = req.append_header(("x-forwarded-for", *value));
        }
        req.to_http_request()
    }

    #[test]
    fn cidrs_contain_what_they_should() {
        assert!(cidr("10.0.0.0/8").contains("10.255.1.2".parse().unwrap()));
        assert!(!cidr("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
        assert!(cidr("127.0.0.1/32").contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(cidr("fd00::/8").contains("fd12::1".parse().unwrap()));
        assert!(!cidr("fd00::/8").contains("fe80::1".parse().unwrap()));
        assert!(!cidr("fd00::/8").contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = [cidr("10.0.0.0/8")];
        let untrusted = request("203.0.113.9:5000", &["198.51.100.1"]);
        assert_eq!(client_ip(&untrusted, &proxies), "203.0.113.9".parse().ok());
        let proxied = request("10.0.0.2:5000", &["198.51.100.1"]);
        assert_eq!(client_ip(&proxied, &proxies), "198.51.100.1".parse().ok());
    }

    #[test]
    fn a_spoofed_leftmost_hop_is_ignored() {
        // The client wrote "1.1.1.1" itself; our proxies appended the real address.
        let proxies = [cidr("10.0.0.0/8")];
        let req = request("10.0.0.2:5000", &["1.1.1.1, 198.51.100.1", "10.0.0.3"]);
        assert_eq!(client_ip(&req, &proxies), "198.51.100.1".parse().ok());
        let garbage = request("10.0.0.2:5000", &["nonsense"]);
        assert_eq!(client_ip(&garbage, &proxies), None);
        let from_inside = request("10.0.0.2:5000", &["10.0.0.9"]);
        assert_eq!(client_ip(&from_inside, &proxies), "10.0.0.2".parse().ok());
    }

    #[test]
    fn forwarded_hops_may_carry_ports() {
        let proxies = [cidr("10.0.0.0/8")];
        let v4 = request("10.0.0.2:5000", &["198.51.100.1:4711"]);
        assert_eq!(client_ip(&v4, &proxies), "198.51.100.1".parse().ok());
        let v6 = request("10.0.0.2:5000", &["[2001:db8::1]:443"]);
        assert_eq!(client_ip(&v6, &proxies), "2001:db8::1".parse().ok());
    }

    #[test]
    fn forwarded_proto_is_believed_only_from_trusted_proxies() {
        let proxies = [cidr("10.0.0.0/8")];
        let proxied = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-forwarded-proto", "HTTPS"))
            .to_http_request();
        assert_eq!(scheme(&proxied, &proxies), "https");
        let direct = TestRequest::default()
            .peer_addr("203.0.113.9:5000".parse().unwrap())
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        assert_eq!(scheme(&direct, &proxies), "http");
    }
}
