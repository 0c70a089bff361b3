//! The posture checks: pure functions from what was read ([`Observed`]) to findings. Each check
//! has a stable id, a documented severity and the source it follows:
//!
//! - Microsoft, "Manage emergency access accounts in Microsoft Entra ID" (learn.microsoft.com,
//!   `security-emergency-access`): two or more cloud-only accounts on the `*.onmicrosoft.com`
//!   domain, permanently assigned Global Administrator, excluded from at least one (better: every)
//!   conditional-access policy, sign-ins monitored with an alert, validated at least every 90
//!   days, and — since MFA became mandatory for the admin portals — a phishing-resistant method
//!   (passkey/FIDO2 or certificate-based authentication).
//! - CISA SCuBA, Microsoft Entra ID baseline: MS.AAD.7.1 "A minimum of two users and a maximum of
//!   eight users SHALL be provisioned with the Global Administrator role"; MS.AAD.7.4 permanent
//!   active assignments of highly privileged roles only for emergency access accounts.
//! - Maester MT.1005: every conditional-access policy excludes an emergency account or group.

use std::collections::BTreeSet;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the data source read about one account.
#[derive(Debug, Clone, Default)]
pub struct AccountObserved {
    pub object_id: String,
    /// `None` when the tenant has no such user.
    pub user_principal_name: Option<String>,
    pub enabled: bool,
    pub synced: bool,
    pub permanent_global_admin: bool,
    /// An active Global Administrator assignment that ends.
    pub time_bound_global_admin: bool,
    /// Display names (and ids) of enabled blocking policies that apply to the account but do
    /// not exclude it, directly or through a group.
    pub policies_not_excluding: Vec<String>,
    /// Ids of enabled sign-in alerts that watch the account and notify someone.
    pub alerted_by: Vec<String>,
    /// Phishing-resistant methods registered (`fido2`, `windowsHelloForBusiness`, …, and
    /// `x509Certificate` for a certificate-based-authentication mapping).
    pub phishing_resistant_methods: Vec<String>,
    pub last_password_change: Option<String>,
    pub last_sign_in: Option<String>,
}

/// Everything the checks judge.
#[derive(Debug, Clone)]
pub struct Observed {
    pub accounts: Vec<AccountObserved>,
    /// Principals holding Global Administrator at tenant scope (active).
    pub global_admins: usize,
    /// The workspace judged (given, or the one the covering alerts read).
    pub workspace_id: Option<String>,
    /// Sign-in categories an enabled diagnostic setting exports to that workspace.
    pub exported_categories: BTreeSet<String>,
    /// Whether alerts and diagnostic settings could be read at all (no subscription, no
    /// permission): then their checks say so instead of guessing.
    pub monitoring_readable: Result<(), String>,
    pub now: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub account: Option<String>,
    pub message: String,
    pub remedy: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Every check, as the docs list them: id, severity, what it wants.
pub const CHECKS: &[(&str, Severity, &str)] = &[
    ("accounts.count", Severity::Error, "at least two emergency accounts (Microsoft); more than four is a warning"),
    ("tenant.global_admins", Severity::Warning, "two to eight Global Administrators in the tenant (CISA MS.AAD.7.1)"),
    ("account.exists", Severity::Error, "the account exists"),
    ("account.cloud_only", Severity::Error, "not synchronized from on-premises (Microsoft)"),
    ("account.enabled", Severity::Error, "sign-in enabled"),
    ("account.initial_domain", Severity::Warning, "on the `*.onmicrosoft.com` domain (Microsoft)"),
    ("account.permanent_global_admin", Severity::Error, "a permanent *active* Global Administrator assignment; eligible or time-bound does not count (Microsoft; CISA MS.AAD.7.4)"),
    ("account.ca_excluded", Severity::Error, "excluded from every enabled policy that blocks or restricts its sign-in (Maester MT.1005)"),
    ("account.signin_alert", Severity::Error, "an enabled sign-in alert whose query matches the account and whose action group has an enabled receiver (Microsoft)"),
    ("workspace.signin_logs", Severity::Error, "interactive and non-interactive sign-in logs exported to the alerts' workspace by an enabled diagnostic setting (Microsoft)"),
    ("account.phishing_resistant", Severity::Warning, "a phishing-resistant method: passkey (FIDO2) or certificate-based authentication (Microsoft)"),
    ("account.password_age", Severity::Warning, "password changed in the last 90 days, where the tenant exposes it"),
    ("account.validated", Severity::Warning, "signed in (validated) in the last 90 days, where the tenant exposes it (Microsoft)"),
];

const STALE_DAYS: i64 = 90;

pub fn evaluate(o: &Observed) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push =
        |id, severity, account: Option<&AccountObserved>, message: String, remedy: &str| {
            out.push(Finding {
                id,
                severity,
                account: account.map(|a| a.object_id.clone()),
                message,
                remedy: remedy.to_owned(),
            })
        };
    let n = o.accounts.len();
    if n < 2 {
        push("accounts.count", Severity::Error, None, format!("{n} emergency account(s); Microsoft recommends two or more, so one lost credential does not lock the tenant out."), "Create a second emergency account and add it here.");
    } else if n > 4 {
        push("accounts.count", Severity::Warning, None, format!("{n} emergency accounts: each is a standing Global Administrator to protect and monitor."), "Keep two to four emergency accounts.");
    }
    if !(2..=8).contains(&o.global_admins) {
        push(
            "tenant.global_admins",
            Severity::Warning,
            None,
            format!(
                "{} principals hold Global Administrator; CISA MS.AAD.7.1 asks for two to eight.",
                o.global_admins
            ),
            "Move day-to-day administrators to less privileged or eligible roles.",
        );
    }
    for a in &o.accounts {
        let Some(upn) = &a.user_principal_name else {
            push(
                "account.exists",
                Severity::Error,
                Some(a),
                format!("No user with object id {} exists.", a.object_id),
                "Check the object id, or create the account.",
            );
            continue;
        };
        if a.synced {
            push("account.cloud_only", Severity::Error, Some(a), format!("{upn} is synchronized from an on-premises directory; an on-premises or sync outage would lock it out."), "Use a cloud-only account (exclude this one from synchronization or create a new one).");
        }
        if !a.enabled {
            push(
                "account.enabled",
                Severity::Error,
                Some(a),
                format!("{upn} cannot sign in: the account is disabled."),
                "Enable the account (account_enabled = true).",
            );
        }
        if !upn.to_ascii_lowercase().ends_with(".onmicrosoft.com") {
            push("account.initial_domain", Severity::Warning, Some(a), format!("{upn} is not on the tenant's *.onmicrosoft.com domain, which keeps working when custom domains or federation fail."), "Use the initial *.onmicrosoft.com domain.");
        }
        if !a.permanent_global_admin {
            let why = if a.time_bound_global_admin {
                "its active Global Administrator assignment expires"
            } else {
                "it holds no active Global Administrator assignment (an eligible one needs an activation that may be impossible in an emergency)"
            };
            push(
                "account.permanent_global_admin",
                Severity::Error,
                Some(a),
                format!("{upn}: {why}."),
                "Assign Global Administrator permanently and active (breakglass_role_assignment).",
            );
        }
        if !a.policies_not_excluding.is_empty() {
            push(
                "account.ca_excluded",
                Severity::Error,
                Some(a),
                format!(
                    "{upn} is not excluded from these enabled conditional-access policies: {}.",
                    a.policies_not_excluding.join(", ")
                ),
                "Exclude the account (breakglass_ca_exclusion) from every policy listed.",
            );
        }
        match &o.monitoring_readable {
            Ok(()) if a.alerted_by.is_empty() => push("account.signin_alert", Severity::Error, Some(a), format!("No enabled sign-in alert watches {upn} and notifies an enabled receiver."), "Create a breakglass_signin_alert covering the account, with an action group that has an enabled receiver."),
            Ok(()) => {}
            Err(why) => push("account.signin_alert", Severity::Error, Some(a), format!("Sign-in alerts for {upn} could not be checked: {why}."), "Give the provider read access to the alert rules, or set alert_ids."),
        }
        if a.phishing_resistant_methods.is_empty() {
            push("account.phishing_resistant", Severity::Warning, Some(a), format!("{upn} has no phishing-resistant method (passkey or certificate-based authentication) registered."), "Register a FIDO2 security key or passkey (see the account docs), or map a certificate with certificate_user_ids.");
        }
        if let Some(days) = age_in_days(a.last_password_change.as_deref(), o.now) {
            if days > STALE_DAYS {
                push(
                    "account.password_age",
                    Severity::Warning,
                    Some(a),
                    format!("The password of {upn} was last changed {days} days ago."),
                    "Rotate it (password_rotation_trigger or password_wo_version).",
                );
            }
        }
        if let Some(days) = age_in_days(a.last_sign_in.as_deref(), o.now) {
            if days > STALE_DAYS {
                push("account.validated", Severity::Warning, Some(a), format!("{upn} last signed in {days} days ago; Microsoft asks to validate emergency accounts at least every 90 days."), "Sign in with the account in a planned drill and confirm the alert fires.");
            }
        }
    }
    match (&o.monitoring_readable, &o.workspace_id) {
        (Err(_), _) => {}
        (Ok(()), None) => push("workspace.signin_logs", Severity::Error, None, "No Log Analytics workspace receives the sign-in logs the alerts need.".to_owned(), "Set workspace_id, or create a breakglass_entra_diagnostic_setting and a sign-in alert."),
        (Ok(()), Some(ws)) => {
            let missing: Vec<&str> = ["SignInLogs", "NonInteractiveUserSignInLogs"].into_iter().filter(|c| !o.exported_categories.contains(*c)).collect();
            if !missing.is_empty() {
                push("workspace.signin_logs", Severity::Error, None, format!("No enabled diagnostic setting exports {} to {ws}.", missing.join(" and ")), "Export both sign-in categories with breakglass_entra_diagnostic_setting.");
            }
        }
    }
    out
}

fn age_in_days(when: Option<&str>, now: Option<OffsetDateTime>) -> Option<i64> {
    let then = OffsetDateTime::parse(when?, &Rfc3339).ok()?;
    Some((now? - then).whole_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(id: &str) -> AccountObserved {
        AccountObserved {
            object_id: id.into(),
            user_principal_name: Some(format!("{id}@contoso.onmicrosoft.com")),
            enabled: true,
            permanent_global_admin: true,
            alerted_by: vec!["alert".into()],
            phishing_resistant_methods: vec!["fido2".into()],
            ..AccountObserved::default()
        }
    }

    fn tenant(accounts: Vec<AccountObserved>) -> Observed {
        Observed {
            accounts,
            global_admins: 3,
            workspace_id: Some("ws".into()),
            exported_categories: ["SignInLogs", "NonInteractiveUserSignInLogs"]
                .map(String::from)
                .into(),
            monitoring_readable: Ok(()),
            now: Some(OffsetDateTime::now_utc()),
        }
    }

    fn ids(f: &[Finding]) -> Vec<(&str, &str)> {
        f.iter().map(|f| (f.id, f.severity.as_str())).collect()
    }

    #[test]
    fn a_healthy_pair_has_no_findings() {
        assert!(evaluate(&tenant(vec![healthy("a"), healthy("b")])).is_empty());
    }

    #[test]
    fn each_degradation_is_its_finding() {
        let mut a = healthy("a");
        a.synced = true;
        a.enabled = false;
        a.permanent_global_admin = false;
        a.policies_not_excluding = vec!["MFA for all".into()];
        a.alerted_by.clear();
        a.phishing_resistant_methods.clear();
        a.last_password_change = Some("2020-01-01T00:00:00Z".into());
        let mut o = tenant(vec![a, healthy("b")]);
        o.exported_categories.remove("NonInteractiveUserSignInLogs");
        o.global_admins = 9;
        let findings = evaluate(&o);
        let found = ids(&findings);
        for expected in [
            ("tenant.global_admins", "warning"),
            ("account.cloud_only", "error"),
            ("account.enabled", "error"),
            ("account.permanent_global_admin", "error"),
            ("account.ca_excluded", "error"),
            ("account.signin_alert", "error"),
            ("account.phishing_resistant", "warning"),
            ("account.password_age", "warning"),
            ("workspace.signin_logs", "error"),
        ] {
            assert!(
                found.contains(&expected),
                "{expected:?} missing from {found:?}"
            );
        }
    }

    #[test]
    fn one_account_is_an_error_five_a_warning() {
        assert_eq!(
            ids(&evaluate(&tenant(vec![healthy("a")]))),
            [("accounts.count", "error")]
        );
        let five = (0..5).map(|i| healthy(&i.to_string())).collect();
        assert_eq!(
            ids(&evaluate(&tenant(five))),
            [("accounts.count", "warning")]
        );
    }

    #[test]
    fn every_check_is_documented() {
        let documented: BTreeSet<&str> = CHECKS.iter().map(|c| c.0).collect();
        let mut a = healthy("a");
        a.user_principal_name = None;
        for f in evaluate(&tenant(vec![a])) {
            assert!(documented.contains(f.id), "{}", f.id);
        }
    }
}
