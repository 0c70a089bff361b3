//! How requests reach the services: the proxy each URL goes through and the certificate
//! authorities TLS trusts. Both follow what azurerm / azuread users already configure for
//! Go's `net/http`.
//!
//! **Proxies** — `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (or their lower-case forms; the
//! first non-empty one wins), with the rules of Go's `http.ProxyFromEnvironment`
//! (golang.org/x/net/http/httpproxy): `https://` requests use `HTTPS_PROXY`, `http://` requests
//! `HTTP_PROXY`; a proxy value without a scheme means `http://`; `localhost` and loopback
//! addresses are never proxied; `NO_PROXY` is a comma list of `*` (nothing is proxied), IP
//! addresses, CIDR ranges, and domain names (`example.com` matches it and its subdomains,
//! `.example.com` / `*.example.com` only subdomains), each optionally with `:port`.
//! Differences from Go (README "Configuring the provider"): `socks5://` proxies are refused at
//! configure time instead of being used; in a CGI environment (`REQUEST_METHOD` set)
//! `HTTP_PROXY` is ignored and plain-http requests go direct, where Go fails them; names are
//! compared in ASCII lower case without IDNA conversion. `ALL_PROXY` is not read (Go does not
//! read it either).
//!
//! **Trust** — the bundled Mozilla roots (webpki-roots) plus either the certificates in
//! `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR` (directories of PEM files, separated as in
//! `PATH`) when either is set, or else the platform's store as rustls-native-certs reads it (the
//! OpenSSL locations on Linux, the keychain on macOS, the system store on Windows). A set
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` that yields no certificate is a configuration error, not a
//! silent fallback.

use std::net::IpAddr;

use tracing::debug;
use url::Url;

/// Proxy and trust settings for one HTTP client.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub proxy: ProxyConfig,
    /// Extra trust anchors (DER), added to the bundled roots.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Transport {
    /// Proxies from `env` (the provider's environment lookup) and the platform trust store.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Transport, String> {
        Ok(Transport {
            proxy: ProxyConfig::from_env(env)?,
            extra_roots: platform_roots(env)?,
        })
    }
}

/// The trust anchors besides the bundled roots (see the module docs): the files and
/// directories `SSL_CERT_FILE` / `SSL_CERT_DIR` name in `env` when either is set, else the
/// platform store.
fn platform_roots(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Vec<u8>>, String> {
    let file = env("SSL_CERT_FILE").filter(|v| !v.is_empty());
    let dirs = env("SSL_CERT_DIR").filter(|v| !v.is_empty());
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    let mut add = |loaded: rustls_native_certs::CertificateResult| {
        certs.extend(loaded.certs.into_iter().map(|c| c.as_ref().to_vec()));
        problems.extend(loaded.errors.into_iter().map(|e| e.to_string()));
    };
    if file.is_none() && dirs.is_none() {
        add(rustls_native_certs::load_native_certs());
    } else {
        if let Some(file) = &file {
            add(rustls_native_certs::load_certs_from_paths(
                Some(std::path::Path::new(file)),
                None,
            ));
        }
        for dir in dirs.iter().flat_map(|d| std::env::split_paths(d)) {
            add(rustls_native_certs::load_certs_from_paths(None, Some(&dir)));
        }
    }
    let overridden: Vec<String> = [("SSL_CERT_FILE", &file), ("SSL_CERT_DIR", &dirs)]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}={v}")))
        .collect();
    debug!(
        certificates = certs.len(),
        problems = problems.len(),
        from = %if overridden.is_empty() { "the platform store".to_owned() } else { overridden.join(" ") },
        "trusted certificate authorities loaded (in addition to the bundled roots)"
    );
    if certs.is_empty() && !overridden.is_empty() {
        return Err(format!(
            "{} yields no CA certificate{}; point it at a PEM file (or directories of them) \
             holding the certificate authorities to trust, or unset it",
            overridden.join(" and "),
            if problems.is_empty() {
                String::new()
            } else {
                format!(" ({})", problems.join("; "))
            }
        ));
    }
    Ok(certs)
}

/// Which proxy, if any, each request goes through (Go's `httpproxy.Config` semantics).
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    http: Option<Url>,
    https: Option<Url>,
    no_proxy: NoProxy,
    cgi: bool,
}

impl ProxyConfig {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ProxyConfig, String> {
        let first = |names: [&'static str; 2]| -> Option<(&'static str, String)> {
            names
                .into_iter()
                .find_map(|n| env(n).filter(|v| !v.is_empty()).map(|v| (n, v)))
        };
        let parse = |found: Option<(&'static str, String)>| -> Result<Option<Url>, String> {
            found
                .map(|(name, value)| parse_proxy(name, &value))
                .transpose()
        };
        Ok(ProxyConfig {
            http: parse(first(["HTTP_PROXY", "http_proxy"]))?,
            https: parse(first(["HTTPS_PROXY", "https_proxy"]))?,
            no_proxy: NoProxy::parse(
                &first(["NO_PROXY", "no_proxy"])
                    .map(|(_, v)| v)
                    .unwrap_or_default(),
            ),
            cgi: env("REQUEST_METHOD").is_some_and(|v| !v.is_empty()),
        })
    }

    /// Whether any proxy is configured at all.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for a request to `url`, or `None` to connect directly.
    pub fn proxy_for(&self, url: &Url) -> Option<Url> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" if !self.cgi => self.http.as_ref(),
            _ => None,
        }?;
        let host = url.host_str()?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        if host == "localhost" {
            return None;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return None;
        }
        if self.no_proxy.matches(&host, ip, port) {
            return None;
        }
        Some(proxy.clone())
    }

    /// The configured proxies with any credentials masked, for logs and diagnostics.
    pub fn describe(&self) -> String {
        let show = |u: &Option<Url>| u.as_ref().map_or("none".to_owned(), without_credentials);
        format!("https: {}, http: {}", show(&self.https), show(&self.http))
    }
}

/// `scheme://host:port` of a proxy URL, never its user info.
fn without_credentials(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.as_str().trim_end_matches('/').to_owned()
}

/// Go's `parseProxy`: a value without a scheme (`proxy:3128`) means `http://proxy:3128`.
fn parse_proxy(name: &str, value: &str) -> Result<Url, String> {
    let parsed = match Url::parse(value) {
        Ok(u) if u.has_host() && !u.cannot_be_a_base() => Some(u),
        // Only a value without `scheme://` is retried as `http://value`.
        _ if !value.contains("://") => Url::parse(&format!("http://{value}"))
            .ok()
            .filter(Url::has_host),
        _ => None,
    };
    // The value may hold credentials: name only the variable in errors.
    let url =
        parsed.ok_or_else(|| format!("{name} is not a proxy URL (expected http://host:port)"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "{name} names a {other}:// proxy; this provider supports http:// and https:// proxies \
             (an HTTP CONNECT proxy for HTTPS traffic)"
        )),
    }
}

/// `NO_PROXY`, parsed as Go's `httpproxy` does.
#[derive(Debug, Clone, Default)]
struct NoProxy {
    all: bool,
    entries: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone)]
enum NoProxyEntry {
    Cidr {
        network: IpAddr,
        prefix: u8,
    },
    Ip {
        ip: IpAddr,
        port: Option<u16>,
    },
    /// `suffix` starts with `.`; `exact` also matches the bare domain (`example.com` entries).
    Domain {
        suffix: String,
        exact: bool,
        port: Option<u16>,
    },
}

impl NoProxy {
    fn parse(value: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        for entry in value.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                no_proxy.all = true;
                continue;
            }
            if let Some((net, prefix)) = entry.split_once('/') {
                if let (Ok(network), Ok(prefix)) = (net.parse::<IpAddr>(), prefix.parse::<u8>()) {
                    let max = if network.is_ipv4() { 32 } else { 128 };
                    if prefix <= max {
                        no_proxy
                            .entries
                            .push(NoProxyEntry::Cidr { network, prefix });
                    }
                }
                continue;
            }
            let (host, port) = split_host_port(&entry);
            if host.is_empty() {
                continue;
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                no_proxy.entries.push(NoProxyEntry::Ip { ip, port });
                continue;
            }
            let host = host.strip_prefix('*').unwrap_or(host);
            let (suffix, exact) = match host.strip_prefix('.') {
                Some(_) => (host.to_owned(), false),
                None => (format!(".{host}"), true),
            };
            if suffix.len() > 1 {
                no_proxy.entries.push(NoProxyEntry::Domain {
                    suffix,
                    exact,
                    port,
                });
            }
        }
        no_proxy
    }

    fn matches(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        if self.all {
            return true;
        }
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.entries.iter().any(|entry| match (entry, ip) {
            (NoProxyEntry::Cidr { network, prefix }, Some(ip)) => in_network(ip, *network, *prefix),
            (
                NoProxyEntry::Ip {
                    ip: entry_ip,
                    port: p,
                },
                Some(ip),
            ) => *entry_ip == ip && port_ok(p),
            (
                NoProxyEntry::Domain {
                    suffix,
                    exact,
                    port: p,
                },
                None,
            ) => {
                (host.ends_with(suffix.as_str()) || (*exact && host == &suffix[1..])) && port_ok(p)
            }
            _ => false,
        })
    }
}

/// `host:port`, `[v6]:port`, or a bare host / v6 address.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<ProxyConfig, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProxyConfig::from_env(&move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn via(c: &ProxyConfig, url: &str) -> Option<String> {
        c.proxy_for(&Url::parse(url).unwrap())
            .map(|u| u.to_string())
    }

    #[test]
    fn https_and_http_use_their_own_variable_and_a_bare_host_means_http() {
        let c = config(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("http_proxy", "http://plain:8080"),
        ])
        .unwrap();
        assert_eq!(
            via(&c, "https://graph.microsoft.com/v1.0/users").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        assert_eq!(
            via(&c, "http://example.org/").as_deref(),
            Some("http://plain:8080/")
        );
        // Go does not fall back from HTTPS_PROXY to HTTP_PROXY.
        let only_http = config(&[("HTTP_PROXY", "http://plain:8080")]).unwrap();
        assert_eq!(via(&only_http, "https://graph.microsoft.com/"), None);
        // Upper case wins over lower case; an empty value counts as unset.
        let both = config(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:1")]).unwrap();
        assert_eq!(
            via(&both, "https://a.example/").as_deref(),
            Some("http://lower:1/")
        );
    }

    #[test]
    fn loopback_is_never_proxied() {
        let c = config(&[("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1")]).unwrap();
        for url in [
            "http://localhost:8080/",
            "https://127.0.0.1/",
            "http://127.8.9.1/",
            "https://[::1]:443/",
        ] {
            assert_eq!(via(&c, url), None, "{url}");
        }
        assert!(
            via(&c, "http://169.254.169.254/metadata").is_some(),
            "IMDS needs NO_PROXY, as with Go"
        );
    }

    #[test]
    fn no_proxy_follows_go_rules() {
        let c = config(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", " corp.example, .internal.test,*.wild.test, 10.0.0.0/8, 192.168.1.7, api.port.test:8443, [fd00::1]:443 "),
        ])
        .unwrap();
        let direct = |url: &str| via(&c, url).is_none();
        assert!(direct("https://corp.example/"), "a domain matches itself");
        assert!(direct("https://a.b.corp.example/"), "and its subdomains");
        assert!(!direct("https://notcorp.example/"), "but not a longer name");
        assert!(
            direct("https://x.internal.test/") && !direct("https://internal.test/"),
            "a leading dot: subdomains only"
        );
        assert!(
            direct("https://x.wild.test/") && !direct("https://wild.test/"),
            "*. is the same as ."
        );
        assert!(
            direct("https://10.20.30.40/") && !direct("https://11.0.0.1/"),
            "CIDR"
        );
        assert!(
            direct("https://192.168.1.7/") && !direct("https://192.168.1.8/"),
            "single IP"
        );
        assert!(
            direct("https://api.port.test:8443/") && !direct("https://api.port.test/"),
            "port-specific entries"
        );
        assert!(direct("https://[fd00::1]/"), "IPv6 with the default port");
        assert!(direct("https://CORP.EXAMPLE/"), "case-insensitive");
        let all = config(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]).unwrap();
        assert_eq!(via(&all, "https://graph.microsoft.com/"), None);
    }

    #[test]
    fn cgi_ignores_http_proxy_and_bad_values_are_errors_without_credentials() {
        let cgi = config(&[
            ("HTTP_PROXY", "http://p:1"),
            ("HTTPS_PROXY", "http://p:2"),
            ("REQUEST_METHOD", "GET"),
        ])
        .unwrap();
        assert_eq!(via(&cgi, "http://example.org/"), None);
        assert!(via(&cgi, "https://example.org/").is_some());

        let socks = config(&[("HTTPS_PROXY", "socks5://user:hunter2@p:1080")]).unwrap_err();
        assert!(
            socks.contains("HTTPS_PROXY") && socks.contains("socks5"),
            "{socks}"
        );
        assert!(!socks.contains("hunter2"), "{socks}");

        let with_auth = config(&[("HTTPS_PROXY", "http://user:hunter2@p:3128")]).unwrap();
        assert!(
            via(&with_auth, "https://x.example/")
                .unwrap()
                .contains("user:hunter2@"),
            "credentials reach the proxy"
        );
        assert!(
            !with_auth.describe().contains("hunter2"),
            "{}",
            with_auth.describe()
        );
        assert!(config(&[]).unwrap().is_empty());
    }
}
