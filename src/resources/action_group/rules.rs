//! What the action group service accepts, as declared validators: the short name, e-mail
//! addresses, country codes and phone numbers.
//!
//! - Short name: "The short name can be up to 12 characters" ("Action groups"; the service
//!   answers `GroupShortNameIsTooLong` otherwise).
//! - E-mail: an `addr-spec` as mail systems take it — one `@`, a local part of 1–64 characters
//!   and a domain of at most 253, made of dot-separated labels of 1–63 letters, digits and
//!   hyphens that neither start nor end with a hyphen (RFC 5321 §4.5.3.1 sizes, RFC 1035 §2.3.1
//!   labels), at least two labels, no white space. Quoted local parts and address literals,
//!   which RFC 5321 allows but alerting mailboxes never use, are refused.
//! - Phone numbers: the service takes the country code and the national number separately,
//!   digits only ("Action groups": SMS and voice receivers); an E.164 number has a country code
//!   of 1–3 digits and at most 15 digits in all (ITU-T E.164 §6).

use crate::framework::validators::{string_rule, Validator};

/// At most 12 characters (the service's limit).
pub const MAX_SHORT_NAME: usize = crate::azure::action_groups::MAX_SHORT_NAME;

fn is_label(label: &str) -> bool {
    (1..=63).contains(&label.chars().count())
        && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Why `text` is not an e-mail address the service will deliver to, if it is not one.
pub fn email_problem(text: &str) -> Option<&'static str> {
    let Some((local, domain)) = text.split_once('@') else {
        return Some("has no `@`");
    };
    if domain.contains('@') {
        return Some("has more than one `@`");
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains white space or control characters");
    }
    if !(1..=64).contains(&local.chars().count())
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.contains(['"', '(', ')', ',', ':', ';', '<', '>', '[', '\\', ']'])
    {
        return Some("has no usable part before the `@`");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if domain.chars().count() > 253 || labels.len() < 2 || !labels.iter().all(|l| is_label(l)) {
        return Some("has no domain name such as `contoso.com` after the `@`");
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Some("ends in a number, not a domain name");
    }
    None
}

pub fn email_address() -> Validator {
    string_rule(
        "must be an e-mail address such as `soc@contoso.com`",
        "Invalid e-mail address",
        |text, shown| match email_problem(text) {
            None => Ok(()),
            Some(why) => Err(format!(
                "must be an e-mail address such as soc@contoso.com; {shown} {why}"
            )),
        },
    )
}

pub fn country_code() -> Validator {
    string_rule(
        "must be a country calling code of 1 to 3 digits, without `+` (e.g. `1`, `31`, `353`)",
        "Invalid country code",
        |text, shown| {
            if (1..=3).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err(format!(
                    "must be a country calling code of 1 to 3 digits without `+` (e.g. \"1\", \
                     \"31\"); {shown} is not"
                ))
            }
        },
    )
}

pub fn phone_number() -> Validator {
    string_rule(
        "must be the national number, digits only, without the country code (4 to 14 digits)",
        "Invalid phone number",
        |text, shown| {
            if !text.bytes().all(|b| b.is_ascii_digit()) {
                Err(format!(
                    "must be digits only (no spaces, `+`, `-` or letters), without the country \
                     code; {shown} is not"
                ))
            } else if !(4..=14).contains(&text.len()) {
                Err(format!(
                    "must be 4 to 14 digits (an E.164 number has at most 15 with its country \
                     code); {shown} has {}",
                    text.len()
                ))
            } else {
                Ok(())
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Value;

    #[test]
    fn e_mail_addresses() {
        for good in [
            "soc@contoso.com",
            "on-call.team+bg@alerts.contoso.co.uk",
            "o'brien@contoso.com",
            "bg@xn--bcher-kva.example",
        ] {
            assert_eq!(email_problem(good), None, "{good}");
        }
        for bad in [
            "not-an-address",
            "a@b",
            "a@@contoso.com",
            "a@contoso..com",
            "a b@contoso.com",
            "@contoso.com",
            "a@-contoso.com",
            "a@contoso.com.",
            "a@10.0.0.1",
            "a.@contoso.com",
            "a@contoso.com\n",
        ] {
            assert!(email_problem(bad).is_some(), "{bad:?}");
        }
        let why = email_address()
            .check_standalone(&"soc(at)contoso.com".into(), false)
            .unwrap();
        assert!(why.contains("\"soc(at)contoso.com\" has no `@`"), "{why}");
    }

    #[test]
    fn phone_numbers_and_country_codes_are_digits() {
        let phone = phone_number();
        assert!(phone
            .check_standalone(&"5551234567".into(), false)
            .is_none());
        for bad in [
            "555-123-4567",
            "555 1234",
            "+15551234567",
            "55512345abc",
            "123",
        ] {
            assert!(
                phone.check_standalone(&Value::from(bad), false).is_some(),
                "{bad}"
            );
        }
        let cc = country_code();
        assert!(cc.check_standalone(&"1".into(), false).is_none());
        assert!(cc.check_standalone(&"353".into(), false).is_none());
        for bad in ["+1", "", "1234", "x"] {
            assert!(
                cc.check_standalone(&Value::from(bad), false).is_some(),
                "{bad}"
            );
        }
    }
}
