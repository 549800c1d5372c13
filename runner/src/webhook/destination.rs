//! Where webhooks may go. A job's descriptor names the URLs, so without a
//! rule anyone who can run a job could make the server POST to addresses
//! only it can reach: a cloud's metadata service (169.254.169.254,
//! fd00:ec2::254), link-local and private networks. Those are refused unless
//! the server runs with `--allow-private-webhooks`.
//!
//! Loopback stays allowed: a developer's server posting to a receiver on
//! the same machine is the normal local setup (and what the tests do).
//!
//! Checked twice: a literal IP in a URL when a job is run or a pipeline
//! stored (a 400 naming the field), and every address a host name resolves
//! to at delivery, inside the HTTP client's resolver, so a name that
//! resolves differently later (DNS rebinding) is caught when it connects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::descriptor::{DescriptorError, Rule, Webhooks};

/// What kind of refused address `ip` is, or `None` if webhooks may go there.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        None
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT, some clouds' metadata)")
    } else if a == 0 || ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("unspecified, broadcast, multicast or reserved")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // IPv4 written as IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4
    // 2002::/16) is judged as the IPv4 address it carries.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
    }
    if s[0] == 0x2002 {
        return refused_v4(Ipv4Addr::from(((s[1] as u32) << 16) | s[2] as u32));
    }
    if ip.is_loopback() {
        None
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique-local (private, cloud metadata)")
    } else if ip.is_unspecified() || ip.is_multicast() || s[..6] == [0; 6] {
        Some("unspecified, multicast or IPv4-compatible")
    } else {
        None
    }
}

/// Why `url`'s host is refused when it is a literal IP (names are checked
/// at delivery).
fn refused_literal(url: &str) -> Option<(IpAddr, &'static str)> {
    // The URL parser writes IP hosts canonically (decimal or octal IPv4
    // become dotted quads, IPv6 is bracketed).
    let parsed = reqwest::Url::parse(url).ok()?;
    let ip: IpAddr = parsed.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    refused_kind(ip).map(|kind| (ip, kind))
}

/// Refuse a descriptor whose webhooks name a refused literal address.
pub fn check_webhooks(hooks: Option<&Webhooks>, allow_private: bool) -> Result<(), DescriptorError> {
    let Some(hooks) = hooks.filter(|_| !allow_private) else { return Ok(()) };
    for (field, url) in [("progress", &hooks.progress), ("result", &hooks.result)] {
        let Some(url) = url else { continue };
        if let Some((ip, kind)) = refused_literal(url) {
            return Err(DescriptorError::pipeline(
                Rule::InvalidOption,
                format!("webhooks.{field} '{url}' points at {ip}, a {kind} address; {HOW_TO_ALLOW}"),
            ));
        }
    }
    Ok(())
}

const HOW_TO_ALLOW: &str =
    "this server posts no webhooks to private, link-local or metadata addresses (start it with --allow-private-webhooks to allow them)";

/// The addresses `host` resolved to, or why the delivery is refused.
pub(crate) fn allowed(host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
    match addrs.iter().find_map(|a| refused_kind(a.ip()).map(|kind| (a.ip(), kind))) {
        Some((ip, kind)) => Err(format!("refused: {host} resolves to {ip}, a {kind} address; {HOW_TO_ALLOW}")),
        None => Ok(addrs),
    }
}

/// The HTTP client's resolver when private addresses are refused: the
/// addresses it connects to are the ones checked.
pub(crate) struct CheckedResolver;

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = allowed(&host, addrs)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// At delivery, before any attempt: why `url` may not be posted to, if so.
pub(crate) async fn refusal(url: &str) -> Option<String> {
    if let Some((ip, kind)) = refused_literal(url) {
        return Some(format!("refused: {ip} is a {kind} address; {HOW_TO_ALLOW}"));
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    // Unresolvable names fail in the attempts, with the client's own error.
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port)).await.ok()?.collect();
    allowed(&host, addrs).err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<&'static str> {
        refused_kind(s.parse().unwrap())
    }

    #[test]
    fn metadata_link_local_private_and_their_ipv6_forms_are_refused() {
        for ip in [
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "fc00::1",
            "::",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(kind(ip).is_some(), "{ip} should be refused");
        }
        for ip in
            ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "93.184.216.34", "2606:4700::1111", "100.128.0.1"]
        {
            assert_eq!(kind(ip), None, "{ip} should be allowed");
        }
    }

    #[test]
    fn a_literal_address_is_refused_naming_the_field_unless_allowed() {
        let hooks = Webhooks {
            progress: Some("http://127.0.0.1:9/p".into()),
            result: Some("http://[::ffff:a9fe:a9fe]/latest".into()),
        };
        let err = check_webhooks(Some(&hooks), false).unwrap_err().to_string();
        assert!(
            err.contains("webhooks.result")
                && err.contains("169.254.169.254")
                && err.contains("--allow-private-webhooks"),
            "{err}"
        );
        check_webhooks(Some(&hooks), true).unwrap();
        // A decimal IPv4 is a literal too once parsed.
        let hooks = Webhooks { progress: Some("http://2852039166/".into()), result: None };
        assert!(check_webhooks(Some(&hooks), false).unwrap_err().to_string().contains("webhooks.progress"));
    }

    #[test]
    fn a_name_resolving_to_a_refused_address_is_refused_with_the_reason() {
        let addrs = vec!["127.0.0.1:80".parse().unwrap(), "169.254.169.254:80".parse().unwrap()];
        let err = allowed("metadata.example", addrs).unwrap_err();
        assert!(err.contains("metadata.example resolves to 169.254.169.254, a link-local"), "{err}");
        assert!(allowed("localhost", vec!["127.0.0.1:80".parse().unwrap()]).is_ok());
    }

    #[tokio::test]
    async fn delivery_refuses_literals_and_lets_loopback_names_through() {
        assert!(refusal("http://169.254.169.254/latest/meta-data").await.unwrap().contains("link-local"));
        assert_eq!(refusal("http://localhost:9/hook").await, None);
    }
}
