//! Compact JWS as Entra uses it for access tokens (RS256) and client assertions (RS256 or
//! PS256), plus the emulator's two fixed signing keys.
//!
//! The keys under `fake-tenant/keys/` are test fixtures, not secrets: they let tokens survive a
//! restart with `--state-file` and keep start-up fast (no RSA key generation per instance).

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// A key the emulator signs with, and the `kid` it puts in token headers.
pub struct EmulatorKey {
    pub kid: &'static str,
    private: RsaPrivateKey,
    public: RsaPublicKey,
}

impl EmulatorKey {
    fn parse(kid: &'static str, pem: &str) -> EmulatorKey {
        let private =
            RsaPrivateKey::from_pkcs8_pem(pem).expect("embedded emulator key is valid PKCS#8");
        let public = RsaPublicKey::from(&private);
        EmulatorKey {
            kid,
            private,
            public,
        }
    }

    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// Signs `claims` as an RS256 JWT with this key's `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        sign_with(&self.private, &header, claims)
    }
}

/// Signs access tokens for Graph and ARM.
pub fn access_token_key() -> &'static EmulatorKey {
    static KEY: OnceLock<EmulatorKey> = OnceLock::new();
    KEY.get_or_init(|| {
        EmulatorKey::parse(
            "fake-tenant-access-token",
            include_str!("../keys/access-token-signing.pem"),
        )
    })
}

/// Signs the emulated CI OIDC issuer's ID tokens (the federated-credential flow).
pub fn ci_oidc_key() -> &'static EmulatorKey {
    static KEY: OnceLock<EmulatorKey> = OnceLock::new();
    KEY.get_or_init(|| {
        EmulatorKey::parse(
            "fake-tenant-ci-oidc",
            include_str!("../keys/ci-oidc-issuer.pem"),
        )
    })
}

/// Signs `header.claims` with RS256 and returns the compact serialization.
pub fn sign_with(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

/// A JWT split into its parts; the signature is not yet checked.
pub struct UnverifiedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedJwt {
    /// Parses a compact JWS; `None` when it is not three base64url parts of JSON objects.
    pub fn parse(token: &str) -> Option<UnverifiedJwt> {
        let mut parts = token.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let decode_object = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(map) => Some(map),
                _ => None,
            }
        };
        Some(UnverifiedJwt {
            header: decode_object(header)?,
            claims: decode_object(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
        })
    }

    /// True when `alg` is RS256 and the signature verifies with `key`.
    pub fn verify(&self, key: &RsaPublicKey) -> bool {
        self.verify_with(key, &["RS256"])
    }

    /// True when `alg` is one of `algorithms` (RS256: RSASSA-PKCS1-v1_5 with SHA-256; PS256:
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, RFC 7518 §3.5) and the
    /// signature verifies with `key`.
    pub fn verify_with(&self, key: &RsaPublicKey, algorithms: &[&str]) -> bool {
        let Some(alg) = self.header.get("alg").and_then(Value::as_str) else {
            return false;
        };
        if !algorithms.contains(&alg) {
            return false;
        }
        let input = self.signing_input.as_bytes();
        match alg {
            "RS256" => Signature::try_from(self.signature.as_slice()).is_ok_and(|signature| {
                VerifyingKey::<Sha256>::new(key.clone())
                    .verify(input, &signature)
                    .is_ok()
            }),
            "PS256" => {
                rsa::pss::Signature::try_from(self.signature.as_slice()).is_ok_and(|signature| {
                    rsa::pss::VerifyingKey::<Sha256>::new(key.clone())
                        .verify(input, &signature)
                        .is_ok()
                })
            }
            _ => false,
        }
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (`exp`, `nbf`, `iat`) in whole seconds. RFC 7519 §2 allows
    /// non-integer values, and MSAL Python sends them (`time.time()` floats): they count too.
    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f.floor() as i64)
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// The `aud` claim as a list (JWT allows a string or an array).
    pub fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_token_verifies_and_tampering_breaks_it() {
        let key = access_token_key();
        let token = key.sign(&json!({"aud": "https://graph.microsoft.com", "n": 1}));
        let parsed = UnverifiedJwt::parse(&token).unwrap();
        assert!(parsed.verify(key.public_key()));
        assert_eq!(parsed.header_str("kid"), Some(key.kid));
        assert!(
            !parsed.verify(ci_oidc_key().public_key()),
            "other key must not verify"
        );

        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(json!({"aud": "https://graph.microsoft.com", "n": 2}).to_string());
        parts[1] = &forged;
        let tampered = UnverifiedJwt::parse(&parts.join(".")).unwrap();
        assert!(!tampered.verify(key.public_key()));
    }

    #[test]
    fn ps256_signatures_verify_only_where_allowed() {
        use rsa::signature::RandomizedSigner;
        let key = access_token_key();
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "PS256", "typ": "JWT"}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(json!({"n": 1}).to_string());
        let input = format!("{header}.{claims}");
        let signature = rsa::pss::SigningKey::<Sha256>::new(key.private.clone())
            .sign_with_rng(&mut rand::thread_rng(), input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        let parsed = UnverifiedJwt::parse(&token).unwrap();
        assert!(parsed.verify_with(key.public_key(), &["RS256", "PS256"]));
        assert!(
            !parsed.verify(key.public_key()),
            "RS256-only checks refuse PS256"
        );
        assert!(!parsed.verify_with(ci_oidc_key().public_key(), &["PS256"]));
    }

    #[test]
    fn numeric_dates_may_be_fractional() {
        let token =
            access_token_key().sign(&json!({"exp": 1700000000.75, "nbf": 1700000000, "iat": "x"}));
        let parsed = UnverifiedJwt::parse(&token).unwrap();
        assert_eq!(parsed.claim_i64("exp"), Some(1700000000));
        assert_eq!(parsed.claim_i64("nbf"), Some(1700000000));
        assert_eq!(parsed.claim_i64("iat"), None);
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        assert!(UnverifiedJwt::parse("abc").is_none());
        assert!(UnverifiedJwt::parse("a.b.c.d").is_none());
        assert!(UnverifiedJwt::parse("e30.e30").is_none());
    }
}
