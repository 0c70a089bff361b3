//! How the account's tenant-side failures read: the domain checks, and Graph's errors turned
//! into diagnostics that say what to do next.

use crate::azure::users::{self, UserChanges, Users};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{AttributePath, Diagnostic, Diagnostics};
use crate::resources::restricted_unit::access::{restricted_denial, Need};

use super::{PasswordMode, TYPE_NAME};

/// The checks of the UPN's domain: at plan time (`Check::Plan`, which also advises, and says
/// so when the provider cannot look yet) and again before a write (`Check::Write`).
pub enum Check {
    Plan,
    Write,
}

pub async fn domain_diagnostics(
    clients: Option<&AzureClients>,
    upn: &str,
    deadline: &Deadline,
    check: Check,
) -> Diagnostics {
    let advise = matches!(check, Check::Plan);
    let name = super::rules::domain_of(upn);
    let at = |d: Diagnostic| Diagnostics::from(d.at(AttributePath::root("user_principal_name")));
    let not_checked = |why: String| {
        let why = format!("Whether {name} is a verified, managed domain of the tenant {why}");
        at(Diagnostic::warning("Domain not checked", why))
    };
    let Some(clients) = clients.filter(|_| !name.is_empty()) else {
        return match advise && !name.is_empty() {
            true => not_checked(
                "could not be checked at plan time: the provider is not configured yet. It is \
                 checked before the user is created."
                    .to_owned(),
            ),
            false => Diagnostics::new(),
        };
    };
    let domain = match Users::new(&clients.cached.graph)
        .domain(name, deadline)
        .await
    {
        Ok(domain) => domain,
        Err(e) if advise => {
            return not_checked(format!(
                "could not be checked (the provider's principal needs Domain.Read.All or \
                 Directory.Read.All): {e}"
            ))
        }
        Err(_) => return Diagnostics::new(),
    };
    let initial = "preferably its initial *.onmicrosoft.com domain";
    let problem = match &domain {
        None => format!("{name} is not a domain of this tenant. Use one of the tenant's verified domains, {initial}."),
        Some(d) if !d.is_verified => format!(
            "{name} is a domain of this tenant but is not verified, so Microsoft Entra refuses \
             user principal names in it. Verify the domain first, or use the initial \
             *.onmicrosoft.com domain."
        ),
        Some(d) if d.is_federated() => format!(
            "{name} is a federated domain: sign-ins for it are handed to an external identity \
             provider, and an emergency-access account must keep working when that provider \
             fails. Use a managed domain, {initial}."
        ),
        Some(d) if advise && !d.is_initial => {
            return at(Diagnostic::warning(
                "Break-glass account outside the initial domain",
                format!(
                    "{name} is a managed custom domain. Microsoft recommends the initial \
                     *.onmicrosoft.com domain for emergency-access accounts, because it keeps \
                     working when a custom domain's DNS or federation settings break."
                ),
            ))
        }
        Some(_) => return Diagnostics::new(),
    };
    at(Diagnostic::error(
        "Unsuitable domain for a break-glass account",
        problem,
    ))
}

pub async fn create_error(
    users: &Users<'_>,
    e: AzureError,
    upn: &str,
    mode: PasswordMode,
    deadline: &Deadline,
) -> Diagnostic {
    let upn_path = AttributePath::root("user_principal_name");
    if users::is_upn_conflict(&e) {
        let existing = users.get(upn, deadline).await.ok().flatten();
        let import_id = existing
            .as_ref()
            .map(|u| u.id.clone())
            .unwrap_or_else(|| upn.to_owned());
        let owner = existing
            .map(|u| format!(" (object id {})", u.id))
            .unwrap_or_default();
        return Diagnostic::error(
            "User already exists",
            format!(
                "A user with user principal name {upn}{owner} already exists in the tenant, so \
                 it cannot be created again. To manage it with Terraform, import it \
                 (replace NAME with this resource's name):\n\n  terraform import \
                 {TYPE_NAME}.NAME {import_id}\n\nor choose another user_principal_name.\n\n\
                 If an earlier apply of this configuration was interrupted after Microsoft \
                 Entra created the user (the provider or Terraform killed before state was \
                 written), this is that user: import it. Its generated password was lost with \
                 the interrupted run, so after the import give password_rotation_trigger a \
                 new value (e.g. {{ reason = \"imported\" }}) to have Terraform set a password it \
                 knows."
            ),
        )
        .at(upn_path);
    }
    shared_errors(e, upn, mode, "create")
}

/// A refused update: a restricted administrative unit (which role at which scope is missing),
/// then the certificate user ids, then the rest.
pub async fn update_failure(
    clients: &AzureClients,
    e: AzureError,
    (id, upn): (&str, &str),
    changes: &UserChanges,
    mode: PasswordMode,
    deadline: &Deadline,
) -> Diagnostic {
    let needs = [
        (
            changes.display_name.is_some() || changes.mail_nickname.is_some(),
            Need::Properties,
        ),
        (
            changes.account_enabled.is_some() || changes.user_principal_name.is_some(),
            Need::Sensitive,
        ),
        (changes.password.is_some(), Need::Password),
        (
            changes.certificate_user_ids.is_some(),
            Need::CertificateUserIds,
        ),
    ];
    let needs: Vec<Need> = needs.iter().filter(|(n, _)| *n).map(|(_, n)| *n).collect();
    if let Some(d) = restricted_denial(clients, id, upn, &needs, &e, deadline).await {
        return d;
    }
    if let Some(ids) = &changes.certificate_user_ids {
        let users = Users::new(&clients.graph);
        if let Some(d) = certificate_write_error(&users, &e, ids, id, deadline).await {
            return d;
        }
    }
    update_error(e, upn, changes, mode)
}

/// A refused delete (403): a restricted unit, or Entra's protection of privileged users.
pub async fn delete_error(
    clients: &AzureClients,
    e: AzureError,
    (id, upn): (&str, &str),
    deadline: &Deadline,
) -> Diagnostic {
    match restricted_denial(clients, id, upn, &[Need::Delete], &e, deadline).await {
        Some(d) => d,
        None => privileged_user_denied(e, upn, "delete"),
    }
}

fn update_error(e: AzureError, upn: &str, changes: &UserChanges, mode: PasswordMode) -> Diagnostic {
    if users::is_request_denied(&e)
        && (changes.password.is_some()
            || changes.account_enabled.is_some()
            || changes.user_principal_name.is_some())
    {
        return privileged_user_denied(e, upn, "change the password, sign-in state or name of");
    }
    if users::is_upn_conflict(&e) {
        return Diagnostic::error(
            "User principal name taken",
            format!("Another object already uses user principal name {upn}: {e}"),
        )
        .at(AttributePath::root("user_principal_name"));
    }
    shared_errors(e, upn, mode, "update")
}

/// The errors create and update share: the domain and the password policy.
fn shared_errors(e: AzureError, upn: &str, mode: PasswordMode, action: &str) -> Diagnostic {
    if users::is_invalid_upn_domain(&e) {
        return Diagnostic::error(
            "Unsuitable domain for a break-glass account",
            format!("Microsoft Entra refused the domain of {upn}: {e}"),
        )
        .at(AttributePath::root("user_principal_name"));
    }
    if users::is_password_policy_violation(&e) {
        let path = match mode {
            PasswordMode::WriteOnly => AttributePath::root("password_wo"),
            PasswordMode::Generated => AttributePath::root("password_length"),
        };
        return Diagnostic::error(
            "Password refused by the tenant's password policy",
            format!("Microsoft Entra refused the password for {upn}: {e}"),
        )
        .at(path);
    }
    api_diagnostic(e, action, upn)
}

/// Entra protects users holding privileged roles: only a caller with a higher-privileged role
/// may change their credentials or delete them. Break-glass accounts are usually Global
/// Administrators, so this is the common 403.
fn privileged_user_denied(e: AzureError, upn: &str, action: &str) -> Diagnostic {
    Diagnostic::error(
        "Not allowed to manage a privileged account",
        format!(
            "Microsoft Entra refused to {action} {upn}: {e}\n\nIf {upn} holds a privileged \
             directory role (such as Global Administrator, as emergency-access accounts \
             usually do), only a caller holding the Privileged Authentication Administrator \
             or Global Administrator role may do this. Assign the provider's service \
             principal the Privileged Authentication Administrator role (and make sure it has \
             the User.ReadWrite.All application permission), then apply again."
        ),
    )
}

pub fn api_diagnostic(e: AzureError, action: &str, who: &str) -> Diagnostic {
    let permission_hint = if users::is_request_denied(&e) {
        " The provider's principal needs the Microsoft Graph application permission \
         User.ReadWrite.All to manage users."
    } else {
        ""
    };
    let mut d = Diagnostic::from(e);
    d.detail = format!(
        "Could not {action} user {who}: {}{permission_hint}",
        d.detail
    );
    d
}

// ---------------------------------------------------------------------------------------------
// Certificate user ids

/// The first of `ids` some live account other than `own_id` holds, with its holders named
/// "upn (object id)". A lookup that fails counts as free: the write checks again.
pub async fn first_taken(
    users: &Users<'_>,
    ids: &[String],
    own_id: &str,
    deadline: &Deadline,
) -> Option<(String, String)> {
    for value in ids {
        let holders = users.holders_of_certificate_user_id(value, *deadline).await;
        let mut names = Vec::new();
        for holder in holders.unwrap_or_default() {
            if !holder.eq_ignore_ascii_case(own_id) {
                names.push(match users.get(&holder, deadline).await {
                    Ok(Some(u)) => format!("{} ({holder})", u.user_principal_name),
                    _ => holder,
                });
            }
        }
        if !names.is_empty() {
            return Some((value.clone(), names.join(", ")));
        }
    }
    None
}

/// A refused write of certificate user ids, as a diagnostic on the attribute; `None` when the
/// error is about something else.
pub async fn certificate_write_error(
    users: &Users<'_>,
    e: &AzureError,
    ids: &[String],
    own_id: &str,
    deadline: &Deadline,
) -> Option<Diagnostic> {
    let at = AttributePath::root("certificate_user_ids");
    if users::is_certificate_user_id_conflict(e) {
        let (value, holders) = first_taken(users, ids, own_id, deadline).await.unwrap_or((
            "One of the values".to_owned(),
            "another (perhaps soft-deleted) account".to_owned(),
        ));
        return Some(taken_conflict(&value, &holders, Some(e)));
    }
    if users::is_certificate_user_ids_invalid(e) {
        let detail = format!("Microsoft Entra refused the certificate user ids: {e}");
        return Some(Diagnostic::error("Invalid certificate user ids", detail).at(at));
    }
    if users::is_request_denied(e) {
        let detail = format!(
            "Microsoft Entra refused to write the certificate user ids: {e}\n\nFor cloud-only \
             users this needs at least the Privileged Authentication Administrator role \
             (\"Mapping to the certificateUserIds attribute in Microsoft Entra ID\"). Assign it \
             to the provider's service principal (tenant-wide, or at the scope of an \
             administrative unit the account is in), then apply again."
        );
        let summary = "Privileged Authentication Administrator needed";
        return Some(Diagnostic::error(summary, detail).at(at));
    }
    None
}

pub fn taken_conflict(value: &str, holders: &str, e: Option<&AzureError>) -> Diagnostic {
    let service = e
        .map(|e| format!(" The service said: {e}"))
        .unwrap_or_default();
    Diagnostic::error(
        "Certificate user id already in use",
        format!(
            "{value} is already a certificate user id of {holders}: Microsoft Entra allows each \
             value on one account of the tenant only (soft-deleted users keep theirs until \
             they are purged). Nothing was written.{service}"
        ),
    )
    .at(AttributePath::root("certificate_user_ids"))
}
