//! TLS and proxy pieces for the production-shaped e2e path: a certificate authority generated
//! per test (no key is committed), and an HTTP CONNECT proxy that counts the tunnels it opens.
//!
//! The proxy maps exactly one public authority (e.g. `login.breakglass.test:443`) to the
//! emulated tenant's loopback socket, so a client can only reach the tenant by that name
//! *through* the proxy: the name resolves nowhere else. It connects to nothing but that one
//! socket, refuses every other target (403) and every non-CONNECT request (405), and records
//! what it refused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A throw-away certificate authority.
pub struct TestCa {
    pub cert_pem: String,
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "breakglass e2e test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            cert_pem: cert.pem(),
            params,
            key,
        }
    }

    /// A server certificate (PEM) and key (PKCS#8 PEM) for `names`, signed by this CA.
    pub fn server_certificate(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("server key");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// What the proxy saw; shared with checks that run while it is serving.
#[derive(Default)]
pub struct ProxyLog {
    connects: AtomicUsize,
    refused: Mutex<Vec<String>>,
}

impl ProxyLog {
    /// Tunnels opened to the mapped authority.
    pub fn connects(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }

    /// Request lines the proxy refused (wrong target, not CONNECT).
    pub fn refused(&self) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// An HTTP CONNECT proxy on an ephemeral loopback port; stops when dropped.
pub struct ConnectProxy {
    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`.
    pub url: String,
    pub log: Arc<ProxyLog>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ConnectProxy {
    /// Tunnels `CONNECT {authority}` to `upstream`; nothing else.
    pub fn start(authority: &str, upstream: SocketAddr) -> ConnectProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let log = Arc::new(ProxyLog::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (authority, shared) = (authority.to_ascii_lowercase(), log.clone());
        let thread = std::thread::Builder::new()
            .name("connect-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let accept = async {
                        loop {
                            let Ok((client, _)) = listener.accept().await else {
                                continue;
                            };
                            let (authority, log) = (authority.clone(), shared.clone());
                            tokio::spawn(tunnel(client, authority, upstream, log));
                        }
                    };
                    tokio::select! {
                        () = accept => {},
                        _ = stopped => {},
                    }
                });
            })
            .expect("spawn proxy");
        ConnectProxy {
            url,
            log,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One client connection: read the request head, answer, then relay bytes both ways.
async fn tunnel(
    mut client: tokio::net::TcpStream,
    authority: String,
    upstream: SocketAddr,
    log: Arc<ProxyLog>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let refuse = |status: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    if method != "CONNECT" {
        log.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request_line);
        let _ = client
            .write_all(refuse("405 Method Not Allowed").as_bytes())
            .await;
        return;
    }
    if !target.eq_ignore_ascii_case(&authority) {
        log.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request_line);
        let _ = client.write_all(refuse("403 Forbidden").as_bytes()).await;
        return;
    }
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
        let _ = client.write_all(refuse("502 Bad Gateway").as_bytes()).await;
        return;
    };
    log.connects.fetch_add(1, Ordering::SeqCst);
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    // Bytes the client sent after the head (a TLS ClientHello, if it did not wait) go on.
    let after = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(head.len(), |p| p + 4);
    if after < head.len() && server.write_all(&head[after..]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
