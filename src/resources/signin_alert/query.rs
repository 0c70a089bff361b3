//! The KQL the alert rules run — written by the provider, never by users, and pure: the same
//! accounts always give the same text, so a plan shows exactly the query that will be stored.
//!
//! **Quoting** follows the Kusto reference page "The string data type" (string literals): a
//! double-quoted literal ends at the first unescaped `"`; inside it a backslash escapes the
//! enclosing quote, `\t`, `\n` and the backslash itself, and a newline or carriage return must
//! be escaped. [`literal`] escapes exactly those, so any text — a UPN with `'`, `"`, `\` or a
//! line break — stays one literal and cannot end it early or add query text after it. GUIDs
//! are validated before they get here but are quoted the same way.
//!
//! **Sign-ins** ([`signin_query`]): Microsoft's own "sign-in of a break-glass account" sample
//! matches the account's object id (`UserId`); the provider also matches the user principal
//! name case-insensitively (`in~`, "The case-insensitive in~ string operator"), so a failed
//! sign-in under another casing of the name is caught too. `SigninLogs` holds interactive and
//! `AADNonInteractiveUserSignInLogs` non-interactive sign-ins ("Sign-in logs in Microsoft Entra
//! ID"); `union isfuzzy=true` ("union operator") lets the query run while only one of the two
//! tables exists yet. Successful and failed sign-ins both count (no `ResultType` filter). The
//! result is summarized by a `BreakGlassAccount` column that names each account by its UPN
//! whichever spelling or id matched, so splitting by that dimension alerts once per account.
//!
//! **Tamper** ([`tamper_query`]): `AuditLogs` records whose `OperationName` is one of the
//! documented activities below ("Microsoft Entra audit log activity reference"; compared with
//! `in~`, since casing differs between the reference and the service) and whose
//! `TargetResources` name one of the accounts — by object id (`has`), because a deleted user's
//! target carries an id-prefixed UPN — plus every conditional-access policy added, changed or
//! deleted, since a new or edited policy is how emergency access gets locked out.

/// Audit activities that change an emergency account: passwords, authentication methods,
/// disabling, deletion, and role removals (directly and through PIM).
pub const ACCOUNT_ACTIVITIES: &[&str] = &[
    // Core Directory, UserManagement. "Reset user password" is not in the reference but many
    // field queries look for it; matching it too costs nothing.
    "Reset password",
    "Reset user password",
    "Change user password",
    "Set force change user password",
    "Disable account",
    "Delete user",
    "Hard Delete user",
    "Disable Strong Authentication",
    "Update StsRefreshTokenValidFrom Timestamp",
    // Authentication Methods, UserManagement.
    "User registered security info",
    "User deleted security info",
    "User updated security info",
    "User changed default security info",
    "Admin registered security info",
    "Admin deleted security info",
    "Admin updated security info",
    // Device Registration Service, UserManagement.
    "Add FIDO2 security key",
    "Delete FIDO2 security key(s)",
    "Add Windows Hello for Business credential",
    "Delete Windows Hello for Business credential",
    "Add passwordless phone sign-in credential",
    "Delete passwordless phone sign-in credential",
    "Add platform credential",
    "Delete platform credential",
    // Core Directory and PIM, RoleManagement.
    "Remove member from role",
    "Remove eligible member from role",
    "Remove scoped member from role",
    "Remove member from role scoped over Restricted Management Administrative Unit",
    "Remove permanent direct role assignment",
    "Remove member from role in PIM requested (permanent)",
    "Remove member from role in PIM completed (permanent)",
    "Remove member from role in PIM requested (timebound)",
    "Remove member from role in PIM completed (timebound)",
];

/// Conditional Access, Policy: any policy added, changed or deleted.
pub const POLICY_ACTIVITIES: &[&str] = &[
    "Add Conditional Access policy",
    "Update Conditional Access policy",
    "Delete Conditional Access policy",
];

/// The result column the sign-in rule splits by: one alert series per account.
pub const SIGNIN_DIMENSION: &str = "BreakGlassAccount";
/// The result columns the tamper rule splits by.
pub const TAMPER_DIMENSIONS: [&str; 2] = ["OperationName", "Target"];
/// What `Target` says for a policy change that names none of the accounts.
pub const POLICY_TARGET: &str = "conditional-access policy";

/// At most this many accounts per rule: every account adds a level to the expression that
/// names it, and Log Analytics bounds query complexity. Microsoft recommends two emergency
/// accounts.
pub const MAX_ACCOUNTS: usize = 10;

/// One emergency account as the queries name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The object id (a GUID).
    pub object_id: String,
    /// The user principal name Graph reports, if the user could be read.
    pub user_principal_name: Option<String>,
}

impl Account {
    /// How alerts name the account: its UPN, else its object id.
    fn label(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .unwrap_or(&self.object_id)
    }
}

/// A KQL double-quoted string literal holding exactly `text`.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|i| literal(i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `iif(<matches first>, "<label>", iif(…, <otherwise>))`: the label of the first account
/// `matches` says a row belongs to.
fn label_expression(
    accounts: &[Account],
    matches: impl Fn(&Account) -> String,
    otherwise: &str,
) -> String {
    accounts.iter().rev().fold(otherwise.to_owned(), |rest, a| {
        format!("iif({}, {}, {rest})", matches(a), literal(a.label()))
    })
}

/// The sign-in rule's query.
pub fn signin_query(accounts: &[Account], include_non_interactive: bool) -> String {
    let ids = list(accounts.iter().map(|a| a.object_id.to_ascii_lowercase()));
    let upns: Vec<&str> = accounts
        .iter()
        .filter_map(|a| a.user_principal_name.as_deref())
        .collect();
    let source = if include_non_interactive {
        "union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs"
    } else {
        "SigninLogs"
    };
    let filter = match upns.is_empty() {
        true => format!("UserId in~ ({ids})"),
        false => format!(
            "UserId in~ ({ids}) or UserPrincipalName in~ ({})",
            list(&upns)
        ),
    };
    let label = label_expression(
        accounts,
        |a| {
            let id = format!("UserId =~ {}", literal(&a.object_id.to_ascii_lowercase()));
            match &a.user_principal_name {
                Some(upn) => format!("{id} or UserPrincipalName =~ {}", literal(upn)),
                None => id,
            }
        },
        "tolower(UserPrincipalName)",
    );
    format!(
        "// Every sign-in of an emergency-access account, interactive{} or not, successful or \
         failed (written by terraform-provider-breakglass).\n\
         {source}\n\
         | where {filter}\n\
         | extend {SIGNIN_DIMENSION} = {label}\n\
         | summarize count() by {SIGNIN_DIMENSION}",
        if include_non_interactive { "" } else { " only" }
    )
}

/// The tamper rule's query.
pub fn tamper_query(accounts: &[Account]) -> String {
    let targets = accounts
        .iter()
        .map(|a| {
            format!(
                "TargetResources has {}",
                literal(&a.object_id.to_ascii_lowercase())
            )
        })
        .collect::<Vec<_>>()
        .join(" or ");
    let label = label_expression(
        accounts,
        |a| {
            format!(
                "TargetResources has {}",
                literal(&a.object_id.to_ascii_lowercase())
            )
        },
        &literal(POLICY_TARGET),
    );
    format!(
        "// Changes to emergency-access accounts, and to conditional-access policies (written \
         by terraform-provider-breakglass).\n\
         AuditLogs\n\
         | where (OperationName in~ ({}) and ({targets}))\n    or OperationName in~ ({})\n\
         | extend Target = {label}\n\
         | summarize count() by OperationName, Target",
        list(ACCOUNT_ACTIVITIES),
        list(POLICY_ACTIVITIES),
    )
}

/// Reads one double-quoted literal at the start of `text`: its value and the rest. The
/// inverse of [`literal`], by the same rules.
pub fn read_literal(text: &str) -> Option<(String, &str)> {
    let mut chars = text.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => value.push(match chars.next()?.1 {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                other @ ('"' | '\\' | '\'') => other,
                _ => return None,
            }),
            '\n' | '\r' => return None,
            c => value.push(c),
        }
    }
    None
}

/// The object ids a sign-in query of ours names (`UserId in~ (…)`), e.g. to import a rule.
/// `None` when the query is not one this provider wrote.
pub fn accounts_in(query: &str) -> Option<Vec<String>> {
    let marker = "| where UserId in~ (";
    let mut rest = &query[query.find(marker)? + marker.len()..];
    let mut ids = Vec::new();
    loop {
        let (id, after) = read_literal(rest.trim_start())?;
        ids.push(id);
        rest = after.trim_start();
        match rest.chars().next()? {
            ',' => rest = &rest[1..],
            ')' => return Some(ids),
            _ => return None,
        }
    }
}

/// The user principal names a sign-in query written by someone else compares
/// `UserPrincipalName` with (`==`, `=~`, `in`, `in~`, double-quoted literals), e.g. the
/// hand-run script's `SigninLogs | where UserPrincipalName == "bg@contoso.com"`, so such a rule
/// can be imported and rewritten. `None` when there is no such comparison.
pub fn upns_in(query: &str) -> Option<Vec<String>> {
    const COLUMN: &str = "UserPrincipalName";
    let mut upns = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find(COLUMN) {
        rest = rest[at + COLUMN.len()..].trim_start();
        let operator = ["in~", "in", "==", "=~"]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .filter(|op| !op.starts_with("in") || rest[op.len()..].trim_start().starts_with('('));
        let Some(operator) = operator else { continue };
        let mut after = rest[operator.len()..].trim_start();
        if operator.starts_with("in") {
            after = after[1..].trim_start();
            while let Some((upn, tail)) = read_literal(after) {
                upns.push(upn);
                after = tail.trim_start();
                match after.chars().next() {
                    Some(',') => after = after[1..].trim_start(),
                    _ => break,
                }
            }
        } else if let Some((upn, tail)) = read_literal(after) {
            upns.push(upn);
            after = tail;
        }
        rest = after;
    }
    upns.sort_by_key(|u| u.to_lowercase());
    upns.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    (!upns.is_empty()).then_some(upns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn account(id: &str, upn: &str) -> Account {
        Account {
            object_id: id.to_owned(),
            user_principal_name: Some(upn.to_owned()),
        }
    }

    #[test]
    fn someone_elses_upn_comparisons_are_read_for_import() {
        assert_eq!(
            upns_in(
                r#"SigninLogs | where UserPrincipalName == "bkr-admin01@contoso.onmicrosoft.com""#
            ),
            Some(vec!["bkr-admin01@contoso.onmicrosoft.com".to_owned()])
        );
        assert_eq!(
            upns_in(
                r#"SigninLogs | where UserPrincipalName in~ ("b@x.com", "A@x.com") or UserPrincipalName =~ "a@X.com""#
            ),
            Some(vec!["A@x.com".to_owned(), "b@x.com".to_owned()])
        );
        assert_eq!(
            upns_in("SigninLogs | where UserPrincipalName has \"x\""),
            None
        );
        assert_eq!(upns_in("SigninLogs | where UserPrincipalNameX == 1"), None);
        assert_eq!(upns_in("SigninLogs | project UserPrincipalName"), None);
        assert_eq!(
            upns_in("SigninLogs | where UserPrincipalName in (\"unterminated"),
            None
        );
    }

    const A: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
    const B: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e02";

    #[test]
    fn literals_escape_what_the_string_type_page_says() {
        assert_eq!(literal("bg@contoso.com"), r#""bg@contoso.com""#);
        assert_eq!(literal(r#"o"brien"#), r#""o\"brien""#);
        assert_eq!(literal("o'brien"), r#""o'brien""#);
        assert_eq!(literal(r"a\b"), r#""a\\b""#);
        assert_eq!(literal("a\nb\tc\rd"), r#""a\nb\tc\rd""#);
        assert_eq!(
            read_literal(r#""o\"b\\x" | rest"#),
            Some((r#"o"b\x"#.into(), " | rest"))
        );
        assert_eq!(read_literal(r#""unterminated"#), None);
        assert_eq!(read_literal("\"line\nbreak\""), None);
    }

    #[test]
    fn the_signin_query_reads_both_tables_and_names_each_account() {
        let q = signin_query(
            &[
                account(&A.to_uppercase(), "BG-01@contoso.onmicrosoft.com"),
                account(B, "bg-02@contoso.onmicrosoft.com"),
            ],
            true,
        );
        let expected = format!(
            "// Every sign-in of an emergency-access account, interactive or not, successful \
             or failed (written by terraform-provider-breakglass).\n\
             union isfuzzy=true SigninLogs, AADNonInteractiveUserSignInLogs\n\
             | where UserId in~ (\"{A}\", \"{B}\") or UserPrincipalName in~ \
             (\"BG-01@contoso.onmicrosoft.com\", \"bg-02@contoso.onmicrosoft.com\")\n\
             | extend BreakGlassAccount = iif(UserId =~ \"{A}\" or UserPrincipalName =~ \
             \"BG-01@contoso.onmicrosoft.com\", \"BG-01@contoso.onmicrosoft.com\", \
             iif(UserId =~ \"{B}\" or UserPrincipalName =~ \"bg-02@contoso.onmicrosoft.com\", \
             \"bg-02@contoso.onmicrosoft.com\", tolower(UserPrincipalName)))\n\
             | summarize count() by BreakGlassAccount"
        );
        assert_eq!(q, expected);
        assert_eq!(accounts_in(&q), Some(vec![A.to_owned(), B.to_owned()]));
        let interactive = signin_query(&[account(A, "bg@x.com")], false);
        assert!(
            interactive.contains("\nSigninLogs\n| where"),
            "{interactive}"
        );
        let unknown_upn = signin_query(
            &[Account {
                object_id: A.into(),
                user_principal_name: None,
            }],
            true,
        );
        assert!(unknown_upn.contains(&format!("| where UserId in~ (\"{A}\")\n")));
        assert!(!unknown_upn.contains("UserPrincipalName in~"));
    }

    #[test]
    fn the_tamper_query_matches_targets_by_object_id_and_every_policy_change() {
        let q = tamper_query(&[account(A, "bg@x.com")]);
        assert!(q.starts_with("// Changes to emergency-access accounts"));
        assert!(q.contains(
            "\nAuditLogs\n| where (OperationName in~ (\"Reset password\", \"Reset user password\""
        ));
        assert!(q.contains(&format!("and (TargetResources has \"{A}\"))\n")));
        assert!(q.contains(
            "or OperationName in~ (\"Add Conditional Access policy\", \"Update Conditional \
             Access policy\", \"Delete Conditional Access policy\")"
        ));
        assert!(q.contains(&format!(
            "| extend Target = iif(TargetResources has \"{A}\", \"bg@x.com\", \"conditional-access policy\")"
        )));
        assert!(q.ends_with("| summarize count() by OperationName, Target"));
    }

    /// A UPN made of the characters that matter to quoting, and anything else.
    fn nasty_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("\\".to_owned()),
            Just("\n".to_owned()),
            Just("\r".to_owned()),
            Just("\t".to_owned()),
            Just(")".to_owned()),
            Just(" or true or ".to_owned()),
            Just("//".to_owned()),
            Just("|".to_owned()),
            "[a-z@.]{1,4}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn any_text_round_trips_through_one_literal(text in nasty_text()) {
            let quoted = literal(&text);
            prop_assert!(!quoted.contains('\n') && !quoted.contains('\r'));
            let input = format!("{quoted}) | tail");
            let (value, rest) = read_literal(&input).expect("one literal");
            prop_assert_eq!(value, text);
            prop_assert_eq!(rest, ") | tail");
        }

        #[test]
        fn a_upn_cannot_change_the_shape_of_the_query(upns in prop::collection::vec(nasty_text(), 1..4)) {
            let accounts: Vec<Account> = upns
                .iter()
                .enumerate()
                .map(|(i, u)| account(&format!("5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e{i:02}"), u))
                .collect();
            let q = signin_query(&accounts, true);
            // Line structure: the comment, the source, where, extend, summarize.
            prop_assert_eq!(q.lines().count(), 5);
            let ids: Vec<String> = accounts.iter().map(|a| a.object_id.clone()).collect();
            prop_assert_eq!(accounts_in(&q), Some(ids));
            // The UPN list holds exactly the UPNs, in order.
            let marker = "or UserPrincipalName in~ (";
            let mut rest = &q[q.find(marker).unwrap() + marker.len()..];
            for upn in &upns {
                let (value, after) = read_literal(rest.trim_start()).expect("a literal");
                prop_assert_eq!(&value, upn);
                rest = after.trim_start().trim_start_matches(',');
            }
            prop_assert!(rest.trim_start().starts_with(')'));
            prop_assert!(q.ends_with("| summarize count() by BreakGlassAccount"));
            prop_assert_eq!(tamper_query(&accounts).lines().count(), 6);
        }
    }
}
