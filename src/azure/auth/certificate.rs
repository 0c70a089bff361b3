//! Client certificates: loading PKCS#12 or PEM (optionally password-protected) and signing the
//! RS256 client-assertion JWT the token endpoint accepts instead of a secret. The header carries
//! `x5t#S256`, the base64url SHA-256 of the certificate's DER, which is how Entra finds the
//! registered certificate to verify the signature with.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Lifetime of one assertion; Entra only needs it for the token request itself.
const ASSERTION_LIFETIME_SECS: u64 = 600;

pub struct ClientCertificate {
    key: RsaPrivateKey,
    thumbprint_s256: String,
    subject: String,
}

impl ClientCertificate {
    /// Loads a PKCS#12 archive (`.pfx`/`.p12`) or PEM text holding the private key and the
    /// certificate. `password` decrypts the archive or an `ENCRYPTED PRIVATE KEY` block.
    /// Errors name what is wrong with the file, never the password.
    pub fn load(data: &[u8], password: Option<&str>) -> Result<Self, String> {
        let text_start = data
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        if data[text_start..].starts_with(b"-----BEGIN") {
            Self::from_pem(data, password)
        } else {
            Self::from_pkcs12(data, password.unwrap_or(""))
        }
    }

    fn from_pkcs12(data: &[u8], password: &str) -> Result<Self, String> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            data,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| {
            format!("the PKCS#12 archive could not be opened ({e}); check the file and client_certificate_password")
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or("the PKCS#12 archive holds no private key")?;
        let key = RsaPrivateKey::from_pkcs8_der(chain.key().as_der())
            .map_err(|e| format!("the archive's private key is not an RSA key ({e})"))?;
        let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        Self::pair(key, &certs)
    }

    fn from_pem(data: &[u8], password: Option<&str>) -> Result<Self, String> {
        let blocks =
            pem::parse_many(data).map_err(|e| format!("the PEM text could not be parsed ({e})"))?;
        let mut key = None;
        let mut certs = Vec::new();
        for block in &blocks {
            match block.tag() {
                "CERTIFICATE" => certs.push(block.contents().to_vec()),
                "PRIVATE KEY" => {
                    key = Some(
                        RsaPrivateKey::from_pkcs8_der(block.contents()).map_err(|e| {
                            format!("the PRIVATE KEY block is not an RSA key ({e})")
                        })?,
                    )
                }
                "RSA PRIVATE KEY" => {
                    key = Some(
                        RsaPrivateKey::from_pkcs1_der(block.contents())
                            .map_err(|e| format!("the RSA PRIVATE KEY block is invalid ({e})"))?,
                    )
                }
                "ENCRYPTED PRIVATE KEY" => {
                    let password = password
                        .ok_or("the private key is encrypted; set client_certificate_password")?;
                    key = Some(
                        RsaPrivateKey::from_pkcs8_encrypted_der(block.contents(), password)
                            .map_err(|_| {
                                "the encrypted private key could not be decrypted; check client_certificate_password".to_owned()
                            })?,
                    )
                }
                _ => {}
            }
        }
        let key = key.ok_or("the PEM text holds no private key")?;
        Self::pair(key, &certs)
    }

    /// Picks the certificate that belongs to `key` (bundles often carry the issuing CAs too).
    fn pair(key: RsaPrivateKey, certs: &[Vec<u8>]) -> Result<Self, String> {
        if certs.is_empty() {
            return Err("no certificate found next to the private key".into());
        }
        let public = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| format!("encoding the public key failed ({e})"))?;
        for der in certs {
            let (_, cert) = x509_parser::parse_x509_certificate(der)
                .map_err(|e| format!("a certificate could not be parsed ({e})"))?;
            if cert.public_key().raw == public.as_bytes() {
                return Ok(ClientCertificate {
                    key,
                    thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
                    subject: cert.subject().to_string(),
                });
            }
        }
        Err("none of the certificates matches the private key".into())
    }

    /// base64url SHA-256 thumbprint of the certificate (the `x5t#S256` header value).
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A signed client assertion for `client_id`, addressed to the token endpoint `audience`.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970")?
            .as_secs();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint_s256});
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let signature = signer
            .try_sign(signing_input.as_bytes())
            .map_err(|e| format!("signing the client assertion failed ({e})"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    /// One key pair for all tests: RSA key generation is slow in debug builds.
    fn key_and_cert() -> (RsaPrivateKey, String, Vec<u8>) {
        static PAIR: std::sync::OnceLock<(RsaPrivateKey, String, Vec<u8>)> =
            std::sync::OnceLock::new();
        PAIR.get_or_init(generate_key_and_cert).clone()
    }

    fn generate_key_and_cert() -> (RsaPrivateKey, String, Vec<u8>) {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let key_pem = pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, pkcs8::LineEnding::LF)
            .unwrap()
            .to_string();
        let kp = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["breakglass-test".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        (key, format!("{}{key_pem}", cert.pem()), cert.der().to_vec())
    }

    #[test]
    fn pem_assertion_is_signed_and_names_the_certificate() {
        let (key, pem_text, der) = key_and_cert();
        let cert = ClientCertificate::load(pem_text.as_bytes(), None).unwrap();
        assert_eq!(
            cert.thumbprint_s256(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(&der))
        );

        let jwt = cert
            .assertion("app-id", "https://login/t/oauth2/v2.0/token")
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t#S256"], cert.thumbprint_s256());
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "app-id");
        assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");

        let verifier = VerifyingKey::<Sha256>::new(key.to_public_key());
        let sig =
            Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
        verifier
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn pkcs12_needs_the_right_password() {
        let (key, _, der) = key_and_cert();
        let key_der = pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(
            vec![1u8],
            p12_keystore::PrivateKey::from_der(key_der.as_bytes()).unwrap(),
            vec![p12_keystore::Certificate::from_der(&der).unwrap()],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("bg", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let pfx = store.writer("pfx-pass-123").write().unwrap();

        let cert = ClientCertificate::load(&pfx, Some("pfx-pass-123")).unwrap();
        assert_eq!(
            cert.thumbprint_s256(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(&der))
        );
        let err = ClientCertificate::load(&pfx, Some("wrong")).err().unwrap();
        assert!(err.contains("client_certificate_password"), "{err}");
        assert!(!err.contains("wrong"));
    }

    #[test]
    fn encrypted_pem_key_needs_its_password() {
        let (key, pem_text, _) = key_and_cert();
        let cert_pem: String = pem_text
            .split("-----BEGIN PRIVATE KEY")
            .next()
            .unwrap()
            .to_owned();
        // PBKDF2 with few rounds instead of the default scrypt, which takes seconds in debug.
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            2048,
            b"saltsalt",
            b"0123456789abcdef",
        )
        .unwrap();
        let der = pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_bytes()).unwrap();
        let enc = info
            .encrypt_with_params(params, "pem-pass")
            .unwrap()
            .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
            .unwrap();
        let text = format!("{cert_pem}{}", enc.as_str());
        assert!(ClientCertificate::load(text.as_bytes(), Some("pem-pass")).is_ok());
        assert!(ClientCertificate::load(text.as_bytes(), None).is_err());
        assert!(ClientCertificate::load(text.as_bytes(), Some("nope")).is_err());
    }
}
