//! AutoMTLS, go-plugin's way of making sure only the Terraform process that started us can talk
//! to us: Terraform passes its client certificate in `PLUGIN_CLIENT_CERT`, we generate a server
//! certificate at start-up and announce it in the handshake line, and both sides pin the other.
//!
//! Two things keep this from being a stock rustls setup:
//!
//! * Terraform's certificate is self-signed and marked as a CA, which WebPKI path validation
//!   refuses as an end-entity certificate. We do not need a path anyway: the client is accepted
//!   when it presents exactly the certificate Terraform announced, byte for byte, and proves it
//!   holds the key by signing the handshake.
//! * go-plugin generates that certificate with an ECDSA P-521 key, which ring (our TLS crypto)
//!   cannot verify; P-521 handshake signatures are checked with the RustCrypto `p521` crate.
//!
//! Our own certificate is a plain (non-CA) self-signed P-256 certificate for `localhost`, the
//! name go-plugin verifies, so it passes both Go's pinning and WebPKI in the test clients.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

/// A slow or stalled client must not hold a handshake task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    #[error("PLUGIN_CLIENT_CERT does not hold a PEM certificate")]
    ClientCertificate,
    #[error("could not generate the server certificate: {0}")]
    ServerCertificate(#[from] rcgen::Error),
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The TLS side of one provider process.
pub struct AutoMtls {
    server_cert: CertificateDer<'static>,
    acceptor: TlsAcceptor,
}

impl AutoMtls {
    /// Generates the server certificate and pins `client_cert_pem`.
    pub fn new(client_cert_pem: &str) -> Result<AutoMtls, MtlsError> {
        let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
            .map_err(|_| MtlsError::ClientCertificate)?;
        let (server_cert, server_key) = server_certificate()?;

        let crypto = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = PinnedClientCertificate {
            expected: client_cert,
            algorithms: crypto.signature_verification_algorithms,
        };
        let mut config = rustls::ServerConfig::builder_with_provider(crypto)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(vec![server_cert.clone()], server_key)?;
        // gRPC runs over HTTP/2, and grpc-go (Terraform) refuses servers that do not say so.
        config.alpn_protocols = vec![b"h2".to_vec()];

        Ok(AutoMtls {
            server_cert,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// DER of the server certificate, for the handshake line.
    pub fn server_cert_der(&self) -> &[u8] {
        self.server_cert.as_ref()
    }

    /// Accepts connections and completes their TLS handshakes in the background; only
    /// connections from the pinned client come out of the stream. The accept loop stops when
    /// the stream is dropped.
    pub fn incoming(&self, listener: TcpListener) -> ReceiverStream<io::Result<TlsConnection>> {
        let (accepted, stream) = mpsc::channel(16);
        let acceptor = self.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = accepted.closed() => return,
                    result = listener.accept() => match result {
                        Ok((tcp, peer)) => {
                            // gRPC's small request/response frames otherwise wait out Nagle's
                            // algorithm against delayed ACKs (~40 ms a round trip; measured in
                            // BENCHMARKS.md). tonic only sets this on sockets it accepts itself.
                            if let Err(error) = tcp.set_nodelay(true) {
                                tracing::debug!(%error, "TCP_NODELAY could not be set");
                            }
                            (tcp, peer)
                        }
                        Err(error) => {
                            tracing::warn!(%error, "accepting a plugin connection failed");
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let accepted = accepted.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = accepted.send(Ok(TlsConnection(tls))).await;
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(%peer, %error, "refused a plugin connection");
                        }
                        Err(_) => tracing::warn!(%peer, "plugin TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(stream)
    }
}

/// Self-signed server certificate and its PKCS#8 key.
fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), MtlsError> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "terraform-provider-breakglass");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    // The certificate lives as long as this process; the margin absorbs clock skew.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(366);

    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key))
}

/// Accepts exactly one client certificate (see the module docs).
#[derive(Debug)]
struct PinnedClientCertificate {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA hints: Go clients then offer their certificate without filtering by issuer.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss.signature());
        }
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss.signature());
        }
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self.algorithms.supported_schemes();
        schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        schemes
    }
}

/// Checks an ECDSA P-521/SHA-512 handshake signature (DER) made with the key of `cert`.
fn verify_p521(
    message: &[u8],
    cert: &CertificateDer<'_>,
    signature: &[u8],
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use p521::ecdsa::signature::Verifier;
    use p521::ecdsa::{Signature, VerifyingKey};

    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    // A point of any other curve has another length and is rejected here.
    let key = VerifyingKey::from_sec1_bytes(&parsed.public_key().subject_public_key.data)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    let signature = Signature::from_der(signature)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    key.verify(message, &signature)
        .map(|()| HandshakeSignatureValid::assertion())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))
}

/// A TLS connection from the pinned client, in the shape tonic serves.
pub struct TlsConnection(TlsStream<TcpStream>);

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_certificate_is_a_localhost_leaf_for_server_and_client_auth() {
        let (der, _) = server_certificate().unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        // A CA certificate would be rejected as an end entity by WebPKI clients.
        assert!(!cert.is_ca());
        let names = cert.subject_alternative_name().unwrap().unwrap();
        assert!(format!("{:?}", names.value).contains("localhost"));
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert!(cert.validity().is_valid());
    }

    #[test]
    fn only_the_announced_client_certificate_is_accepted() {
        let (announced, _) = server_certificate().unwrap();
        let (other, _) = server_certificate().unwrap();
        let verifier = PinnedClientCertificate {
            expected: announced.clone(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        assert!(verifier
            .verify_client_cert(&announced, &[], UnixTime::now())
            .is_ok());
        assert!(verifier
            .verify_client_cert(&other, &[], UnixTime::now())
            .is_err());
        assert!(verifier
            .supported_verify_schemes()
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
    }

    #[test]
    fn p521_handshake_signatures_are_verified() {
        use p521::ecdsa::signature::Signer;
        use p521::ecdsa::{Signature, SigningKey};

        // A P-521 key like go-plugin's (fixed scalar: the test needs no randomness).
        let mut scalar = [0u8; 66];
        scalar[65] = 42;
        let signing = SigningKey::from_slice(&scalar).unwrap();
        let point = p521::ecdsa::VerifyingKey::from(&signing).to_encoded_point(false);
        let cert = certificate_with_spki(&p521_spki(point.as_bytes()));

        let message = b"TLS 1.3, client CertificateVerify";
        let signature: Signature = signing.sign(message);
        let der = signature.to_der();
        assert!(verify_p521(message, &cert, der.as_bytes()).is_ok());
        assert!(verify_p521(b"another transcript", &cert, der.as_bytes()).is_err());

        // A P-256 certificate cannot pass as P-521.
        let (p256_cert, _) = server_certificate().unwrap();
        assert!(verify_p521(message, &p256_cert, der.as_bytes()).is_err());
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// SubjectPublicKeyInfo of an uncompressed P-521 point.
    fn p521_spki(point: &[u8]) -> Vec<u8> {
        let ec_public_key = tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        let secp521r1 = tlv(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x23]);
        let bits = [&[0u8][..], point].concat();
        tlv(
            0x30,
            &[
                tlv(0x30, &[ec_public_key, secp521r1].concat()),
                tlv(0x03, &bits),
            ]
            .concat(),
        )
    }

    /// Minimal DER certificate around a given SubjectPublicKeyInfo (signature not checked).
    fn certificate_with_spki(spki: &[u8]) -> CertificateDer<'static> {
        // ecdsa-with-SHA512
        let algorithm = tlv(
            0x30,
            &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04]),
        );
        let name = tlv(
            0x30,
            &tlv(
                0x31,
                &tlv(
                    0x30,
                    &[tlv(0x06, &[0x55, 0x04, 0x03]), tlv(0x0c, b"t")].concat(),
                ),
            ),
        );
        let validity = tlv(
            0x30,
            &[tlv(0x17, b"200101000000Z"), tlv(0x17, b"400101000000Z")].concat(),
        );
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x02, &[2])),
                tlv(0x02, &[1]),
                algorithm.clone(),
                name.clone(),
                validity,
                name,
                spki.to_vec(),
            ]
            .concat(),
        );
        let cert = tlv(0x30, &[tbs, algorithm, tlv(0x03, &[0, 0])].concat());
        CertificateDer::from(cert)
    }
}
