//! The account's own rules: Entra's user principal name and password rules (as validators and
//! for the password that needs the UPN), and the password generator that always meets them.

use rand::rngs::OsRng;
use rand::seq::SliceRandom;

use crate::framework::validators::{cross_rule, string_rule, Validator};
use crate::framework::Value;

/// 16 is the floor we accept for an account that bypasses MFA policies; 256 is Entra's limit.
pub const PASSWORD_LENGTH_MIN: i64 = 16;
pub const PASSWORD_LENGTH_MAX: i64 = 256;
/// Long enough to be unguessable, short enough for every tool that has to handle it.
pub const DEFAULT_PASSWORD_LENGTH: i64 = 64;

pub fn user_principal_name() -> Validator {
    string_rule(
        "must have the form `alias@domain`",
        "Invalid user principal name",
        |upn, shown| match upn_problem(upn) {
            None => Ok(()),
            Some(problem) => Err(format!(
                "is not a valid user principal name ({shown}): {problem}"
            )),
        },
    )
}

/// Entra's complexity rules for a supplied password; it must not contain the sibling UPN's
/// alias. The reason never quotes the value.
pub fn password_complexity() -> Validator {
    cross_rule(
        "must meet Microsoft Entra's password complexity rules",
        "Password does not meet Microsoft Entra complexity rules",
        |value, siblings| {
            let Value::String(secret) = value else {
                return Ok(());
            };
            match password_problem(secret, siblings.get("user_principal_name").as_str()) {
                None => Ok(()),
                Some(problem) => Err(format!(
                    "{problem}. Entra requires 8 to 256 printable ASCII characters from at \
                     least three of: lower case, upper case, digits, symbols; and no part of \
                     the user's alias"
                )),
            }
        },
    )
}

/// What is wrong with a UPN's shape, if anything. The alias rules are Entra's: letters,
/// digits and `' . - _ ! # ^ ~`, at most 64 characters, no leading, trailing or doubled dot.
pub fn upn_problem(upn: &str) -> Option<&'static str> {
    let Some((alias, domain)) = upn.split_once('@') else {
        return Some("it must have the form alias@domain");
    };
    if alias.is_empty() || domain.is_empty() || domain.contains('@') {
        return Some("it must have the form alias@domain, with exactly one @");
    }
    if alias.len() > 64 {
        return Some("the alias before @ may have at most 64 characters");
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c))
    {
        return Some("the alias may contain only letters, digits and ' . - _ ! # ^ ~");
    }
    if alias.starts_with('.') || alias.ends_with('.') || alias.contains("..") {
        return Some("the alias may not start or end with a dot or contain two dots in a row");
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !labels_ok || !domain.contains('.') {
        return Some("the part after @ must be a domain name such as contoso.onmicrosoft.com");
    }
    None
}

/// Entra's password rules for cloud users, phrased as the rest of a sentence starting "The
/// value …"; `None` when the password passes. Never includes the password.
pub fn password_problem(password: &str, upn: Option<&str>) -> Option<String> {
    let length = password.chars().count();
    if !(8..=256).contains(&length) {
        return Some(format!(
            "has {length} characters, outside the allowed 8 to 256"
        ));
    }
    if !password.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Some("contains characters other than printable ASCII".into());
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .into_iter()
    .filter(|present| *present)
    .count();
    if classes < 3 {
        return Some(format!(
            "uses {classes} of the four character classes; at least 3 are required"
        ));
    }
    if let Some(alias) = upn.map(alias_of) {
        // Entra checks aliases of three or more characters; shorter ones would forbid nearly
        // every password.
        if alias.len() >= 3 && password.to_lowercase().contains(&alias.to_lowercase()) {
            return Some("contains the user's alias".into());
        }
    }
    None
}

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// Symbols Entra accepts that need no quoting in HCL, JSON or a shell: the password should
/// survive being pasted at 3 a.m.
const SYMBOLS: &[u8] = b"!#%*+-.:=?@^_~";

/// A random password from the operating system's CSPRNG with every character class present
/// and the alias absent, so it always meets Entra's complexity rules.
pub fn generate_password(length: usize, alias: &str) -> String {
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    loop {
        let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS]
            .iter()
            .filter_map(|class| class.choose(&mut OsRng).copied())
            .collect();
        while chars.len() < length {
            chars.extend(all.choose(&mut OsRng));
        }
        chars.shuffle(&mut OsRng);
        let password = String::from_utf8(chars).expect("ASCII alphabet");
        if password_problem(&password, Some(&format!("{alias}@x"))).is_none() {
            return password;
        }
    }
}

pub fn alias_of(upn: &str) -> &str {
    upn.split('@').next().unwrap_or(upn)
}

pub fn domain_of(upn: &str) -> &str {
    upn.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_always_meet_entra_complexity() {
        for length in [16, 17, 64, 256] {
            for _ in 0..50 {
                let p = generate_password(length, "bg-admin");
                assert_eq!(p.chars().count(), length);
                assert_eq!(password_problem(&p, Some("bg-admin@contoso.com")), None);
                assert!(p.bytes().all(|b| [LOWER, UPPER, DIGITS, SYMBOLS]
                    .iter()
                    .any(|class| class.contains(&b))));
            }
        }
        assert_ne!(generate_password(64, "x"), generate_password(64, "x"));
    }

    #[test]
    fn password_rules_follow_entra_and_never_echo_the_value() {
        let upn = Some("breakglass1@contoso.com");
        assert_eq!(password_problem("Corr3ct-Horse", upn), None);
        assert_eq!(
            password_problem("correct-horse-7", upn),
            None,
            "3 of 4 classes"
        );
        for bad in [
            "Sh0rt!",
            "alllowercaseletters",
            "Breakglass1-Passw0rd!",
            "Pässwörd-123",
        ] {
            let problem = password_problem(bad, upn).expect(bad);
            assert!(!problem.contains(bad), "{problem}");
        }
        assert!(password_problem(&"Aa1-".repeat(65), upn).is_some());
    }

    #[test]
    fn upns_need_alias_at_a_domain() {
        assert_eq!(upn_problem("bg-01@contoso.onmicrosoft.com"), None);
        assert_eq!(upn_problem("o'neil.bg@contoso.com"), None);
        for bad in [
            "bg-01",
            "@contoso.com",
            "bg@",
            "a@b@contoso.com",
            "bg 01@contoso.com",
            ".bg@contoso.com",
            "bg..01@contoso.com",
            "bg@localhost",
            "bg@-contoso.com",
        ] {
            assert!(upn_problem(bad).is_some(), "{bad}");
        }
    }
}
