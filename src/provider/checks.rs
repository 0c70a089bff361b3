//! The provider block's format rules. `settings::Rule` attaches each to its attribute as a
//! validator (config values, at validate time), and `configure` applies the same function to
//! values that came from the environment. Each returns the reason a value is wrong, phrased to
//! follow "`name` …"; none of them ever echoes a sensitive value.

use std::net::IpAddr;

use base64::Engine;
use url::{Host, Url};

pub use crate::framework::validators::is_guid;

/// [`is_guid`] as a validation reason.
pub fn guid(value: &str) -> Result<(), String> {
    if is_guid(value) {
        Ok(())
    } else {
        Err(format!(
            "must be a GUID such as 00000000-0000-0000-0000-000000000000, got {value:?}"
        ))
    }
}

/// Which plain-http hosts an endpoint may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Only this machine: 127.0.0.0/8, ::1, `localhost` (the emulated tenant, local proxies).
    Loopback,
    /// Loopback or link-local (169.254.0.0/16, fe80::/10): where Azure's instance metadata
    /// service and other managed identity endpoints listen, unencrypted by design.
    LoopbackOrLinkLocal,
}

/// An absolute `https://` URL, or `http://` for the hosts `plain_http` allows; no credentials,
/// query or fragment. Returns the URL without a trailing slash, ready for path joins.
pub fn endpoint(value: &str, plain_http: PlainHttp) -> Result<String, String> {
    let url = Url::parse(value.trim())
        .map_err(|e| format!("must be an absolute URL such as https://host.example ({e})"))?;
    let host = url
        .host()
        .ok_or_else(|| "must be an absolute URL with a host".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if plain_http_allowed(&host, plain_http) => {}
        "http" => {
            let allowed = match plain_http {
                PlainHttp::Loopback => "loopback hosts (127.0.0.0/8, ::1, localhost)",
                PlainHttp::LoopbackOrLinkLocal => {
                    "loopback (127.0.0.0/8, ::1, localhost) and link-local (169.254.0.0/16) hosts"
                }
            };
            return Err(format!(
                "must use https:// — plain http:// is accepted only for {allowed}, because \
                 tokens would otherwise cross the network unencrypted; got host {host}"
            ));
        }
        other => return Err(format!("must be an https:// URL, got scheme {other}://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials (user:password@)".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query string or fragment".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn plain_http_allowed(host: &Host<&str>, rule: PlainHttp) -> bool {
    let ip = match host {
        Host::Domain(d) => return d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip),
        Host::Ipv6(ip) => IpAddr::V6(*ip),
    };
    if ip.is_loopback() {
        return true;
    }
    rule == PlainHttp::LoopbackOrLinkLocal
        && match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        }
}

/// A certificate given inline: PEM text, or base64 (of a PKCS#12 bundle or of PEM). Only the
/// encoding is checked here; parsing the bundle is the sign-in code's job.
pub fn inline_certificate(value: &str) -> Result<(), String> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(());
    }
    let compact: String = value.split_ascii_whitespace().collect();
    match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        Ok(bytes) if !bytes.is_empty() => Ok(()),
        _ => Err("must be a base64-encoded PKCS#12 bundle or PEM text".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(guid("46810bcd-886d-469e-a664-c8d3691d74fd").is_ok());
        assert!(guid("46810BCD-886D-469E-A664-C8D3691D74FD").is_ok());
        for bad in [
            "not-a-guid",
            "",
            "46810bcd886d469ea664c8d3691d74fd",
            "46810bcd-886d-469e-a664-c8d3691d74f",
            "46810bcd-886d-469e-a664-c8d3691d74fdx",
            "{46810bcd-886d-469e-a664-c8d3691d74fd}",
            "g6810bcd-886d-469e-a664-c8d3691d74fd",
        ] {
            assert!(guid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn https_endpoints_are_accepted_and_normalised() {
        assert_eq!(
            endpoint("https://graph.microsoft.com/", PlainHttp::Loopback).unwrap(),
            "https://graph.microsoft.com"
        );
        assert_eq!(
            endpoint("https://proxy.example:8443/graph/", PlainHttp::Loopback).unwrap(),
            "https://proxy.example:8443/graph"
        );
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:4567",
            "http://127.8.9.10",
            "http://[::1]:80/",
            "http://localhost:1234",
            "http://LOCALHOST",
        ] {
            assert!(endpoint(ok, PlainHttp::Loopback).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "http://169.254.169.254",
            "http://localhost.example.com",
            "http://[fe80::1]",
        ] {
            let err = endpoint(bad, PlainHttp::Loopback).unwrap_err();
            assert!(err.contains("loopback"), "{bad}: {err}");
        }
    }

    #[test]
    fn managed_identity_endpoints_may_be_link_local() {
        let imds = "http://169.254.169.254/metadata/identity/oauth2/token";
        assert_eq!(
            endpoint(imds, PlainHttp::LoopbackOrLinkLocal).unwrap(),
            imds
        );
        assert!(endpoint("http://[fe80::1]:80", PlainHttp::LoopbackOrLinkLocal).is_ok());
        assert!(endpoint("http://10.1.2.3", PlainHttp::LoopbackOrLinkLocal).is_err());
    }

    #[test]
    fn malformed_endpoints() {
        for bad in [
            "graph.microsoft.com",
            "/v1.0",
            "ftp://graph.microsoft.com",
            "https://user:pw@graph.microsoft.com",
            "https://graph.microsoft.com/?a=b",
            "https://graph.microsoft.com/#x",
            "",
        ] {
            assert!(endpoint(bad, PlainHttp::Loopback).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inline_certificates() {
        assert!(
            inline_certificate("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")
                .is_ok()
        );
        assert!(inline_certificate("MIIKAgEDMIIJ\nvgYJKoZIhvcN").is_ok());
        let err = inline_certificate("not base64 at all!").unwrap_err();
        assert!(!err.contains("not base64 at all"), "never echo the value");
        assert!(inline_certificate("").is_err());
    }
}
