//! Redaction of what the client layer logs. Bodies only ever reach the log at TRACE and only
//! through `json_body` / `form_body`; headers through `header_value`. Over-redacting a harmless
//! field is acceptable, leaking a credential is not, so the key test is deliberately broad.

use serde_json::Value as Json;

pub const REDACTED: &str = "[REDACTED]";

/// Property or form-field names whose values are credentials: `passwordProfile`,
/// `client_secret`, `secretText`, `client_assertion`, `access_token`, `Authorization`,
/// `privateKey`, ….
pub fn is_sensitive_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    [
        "password",
        "secret",
        "token",
        "assertion",
        "authorization",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
        || k.ends_with("key")
        || k == "identityheader"
}

/// A copy of a JSON body with every sensitive property's value replaced (whole subtrees, so
/// `passwordProfile` disappears together with the password inside it).
pub fn json_body(body: &Json) -> Json {
    match body {
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive_key(k) {
                        Json::String(REDACTED.to_owned())
                    } else {
                        json_body(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(json_body).collect()),
        other => other.clone(),
    }
}

/// A form body (token requests) rendered for the log with credentials replaced.
pub fn form_body(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            if is_sensitive_key(k) {
                format!("{k}={REDACTED}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value for the log.
pub fn header_value(name: &str, value: &str) -> String {
    if is_sensitive_key(name) || name.eq_ignore_ascii_case("x-identity-header") {
        REDACTED.to_owned()
    } else {
        value.to_owned()
    }
}

/// Tells the process-wide log redaction layer about a credential so that it is masked even
/// if it turns up somewhere unexpected (an error message echoing it, a debug print).
pub fn register_secret(secret: &str) {
    if !secret.is_empty() {
        crate::logging::register_secret(secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_create_body_loses_its_password_profile() {
        let body = json!({
            "displayName": "BG 1",
            "passwordProfile": {"password": "Hunter2!Hunter2!", "forceChangePasswordNextSignIn": false},
            "members": [{"secretText": "s3cr3t", "id": "a"}]
        });
        let logged = json_body(&body).to_string();
        assert!(!logged.contains("Hunter2"));
        assert!(!logged.contains("s3cr3t"));
        assert!(logged.contains("BG 1"));
        assert!(logged.contains("\"id\":\"a\""));
    }

    #[test]
    fn token_form_keeps_ids_and_hides_credentials() {
        let form = [
            ("client_id", "abc".to_owned()),
            ("client_secret", "topsecret".to_owned()),
            ("client_assertion", "eyJhbGciOi".to_owned()),
        ];
        let logged = form_body(&form);
        assert!(logged.contains("client_id=abc"));
        assert!(!logged.contains("topsecret"));
        assert!(!logged.contains("eyJhbGciOi"));
    }

    #[test]
    fn authorization_header_is_hidden() {
        assert_eq!(header_value("Authorization", "Bearer xyz"), REDACTED);
        assert_eq!(header_value("X-IDENTITY-HEADER", "xyz"), REDACTED);
        assert_eq!(header_value("client-request-id", "1"), "1");
    }
}
