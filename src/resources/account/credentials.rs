//! The account's sign-in credentials beyond its password: `certificate_user_ids` (the values
//! certificate-based authentication binds a certificate to) and the computed
//! `authentication_methods` (what Graph lists as registered).
//!
//! "Mapping to the certificateUserIds attribute in Microsoft Entra ID": at most 10 values of at
//! most 1024 characters in the documented `X509:<Mapping>` forms, each unique in the tenant;
//! writing them for a cloud-only user needs at least Privileged Authentication Administrator.
//! Graph v1.0 has no per-user certificate method ("Microsoft Entra authentication methods API
//! overview"), so a certificate binding shows in `certificate_user_ids` only, never among the
//! methods.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::errors::{api_diagnostic, certificate_write_error, first_taken, taken_conflict};
use super::AccountModel;
use crate::azure::users::{
    self, is_well_formed_certificate_user_id, Users, MAX_CERTIFICATE_USER_IDS,
};
use crate::azure::{AzureError, Deadline};
use crate::framework::validators::{cross_rule, each, size_between, string_rule};
use crate::framework::{Attribute, Diagnostic, Diagnostics, Failure, Tf, Type, Value};

/// One entry of `authentication_methods`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MethodModel {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    display_name: Option<String>,
    phishing_resistant: bool,
}

pub fn certificate_user_ids_attribute() -> Attribute {
    let summary = "Invalid certificate user ids";
    Attribute::optional_computed(
        "certificate_user_ids",
        Type::set(Type::String),
        "Values certificate-based authentication maps a certificate to this account by \
         (`authorizationInfo.certificateUserIds`), e.g. `X509:<PN>bg-01@contoso.com` or \
         `X509:<SKI>…`. Each value can be held by one account in the tenant only. Unset: not \
         managed, and the attribute shows what the tenant holds; `[]` removes them all. \
         Writing them needs the Privileged Authentication Administrator role.",
    )
    .use_state_for_unknown()
    .validate(size_between(0, MAX_CERTIFICATE_USER_IDS).summary(summary))
    .validate(each(
        string_rule(
            "one of the documented `X509:<Mapping>` forms, at most 1024 characters",
            summary,
            |value, shown| match is_well_formed_certificate_user_id(value) {
                true => Ok(()),
                false => Err(format!(
                    "is {shown}, not a certificate user id: use one of the documented forms \
                     (case-sensitive) X509:<PN>…, X509:<RFC822>…, X509:<S>…, X509:<SKI>…, \
                     X509:<SHA1-PUKEY>…, X509:<I>…<S>… or X509:<I>…<SR>…, at most 1024 \
                     characters"
                )),
            },
        )
        .summary(summary),
    ))
    .validate(cross_rule(
        "each value once (compared case-insensitively)",
        summary,
        |value, _| {
            let Value::Set(items) = value else {
                return Ok(());
            };
            let mut seen = BTreeSet::new();
            for item in items.iter().filter_map(Value::as_str) {
                if !seen.insert(item.to_lowercase()) {
                    return Err(format!(
                        "holds {item:?} twice (Microsoft Entra compares them ignoring case)"
                    ));
                }
            }
            Ok(())
        },
    ))
}

pub fn authentication_methods_attribute() -> Attribute {
    let method = Type::Object(
        [
            ("type", Type::String),
            ("id", Type::String),
            ("display_name", Type::String),
            ("phishing_resistant", Type::Bool),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_owned(), t))
        .collect(),
    );
    Attribute::computed(
        "authentication_methods",
        Type::list(method),
        "The authentication methods Microsoft Graph lists as registered for the account \
         (`/users/{id}/authentication/methods`), sorted by type and id: `type` (`password`, \
         `fido2`, `microsoftAuthenticator`, `windowsHelloForBusiness`, …), `id`, \
         `display_name` and `phishing_resistant` (passkeys/FIDO2, Windows Hello for Business, \
         platform credential). A certificate mapping never appears here — Graph v1.0 has no \
         per-user certificate method; see `certificate_user_ids`. Null when the provider's \
         principal lacks `UserAuthenticationMethod.Read.All`.",
    )
    .use_state_for_unknown()
}

/// The registered methods; `Null` when the provider may not read them (a 403), so a missing
/// optional permission never breaks a refresh.
pub async fn registered_methods(
    users: &Users<'_>,
    id: &str,
    deadline: Deadline,
) -> Result<Tf<Vec<MethodModel>>, AzureError> {
    let found = match users.authentication_methods(id, deadline).await {
        Ok(found) => found,
        Err(e) if users::is_request_denied(&e) => {
            tracing::warn!(user = %id, "cannot read authentication methods (UserAuthenticationMethod.Read.All missing?): {e}");
            return Ok(Tf::Null);
        }
        Err(e) => return Err(e),
    };
    let mut methods: Vec<MethodModel> = found
        .unwrap_or_default()
        .into_iter()
        .map(|m| MethodModel {
            kind: m.kind.name().to_owned(),
            phishing_resistant: m.kind.is_phishing_resistant(),
            id: m.id,
            display_name: m.display_name,
        })
        .collect();
    methods.sort();
    Ok(Tf::Known(methods))
}

/// The certificate user ids to write on create, when there are any.
fn to_write(planned: &AccountModel) -> Option<Vec<String>> {
    let ids = planned.certificate_user_ids.get()?;
    (!ids.is_empty()).then(|| ids.iter().cloned().collect())
}

/// Before a create: an error on the attribute when another account already holds one of the
/// values, so nothing is written at all. (A value taken meanwhile, or held by a soft-deleted
/// user, is still refused by the write, and `complete_create` undoes the create.)
pub async fn refuse_taken(
    users: &Users<'_>,
    planned: &AccountModel,
    deadline: &Deadline,
) -> Result<(), Diagnostic> {
    let ids = to_write(planned).unwrap_or_default();
    match first_taken(users, &ids, "", deadline).await {
        Some((value, holders)) => Err(taken_conflict(&value, &holders, None)),
        None => Ok(()),
    }
}

/// After the user exists: its certificate user ids and its registered methods. A refused
/// write deletes and purges the user again (it never held anything), so a failed create leaves
/// nothing behind; only if that fails too does the user stay in state.
pub async fn complete_create(
    users: &Users<'_>,
    mut state: AccountModel,
    planned: &AccountModel,
    deadline: &Deadline,
) -> Result<AccountModel, Failure> {
    let id = state.id.as_deref().unwrap_or_default().to_owned();
    if let Some(ids) = to_write(planned) {
        if let Err(e) = users.set_certificate_user_ids(&id, &ids, deadline).await {
            let why = match certificate_write_error(users, &e, &ids, &id, deadline).await {
                Some(d) => d,
                None => api_diagnostic(e, "map certificates to", state.upn()),
            };
            let undone = match users.delete(&id, deadline).await {
                Ok(deleted) => users.purge_deleted(&id, deleted, deadline).await.map(drop),
                Err(e) => Err(e),
            };
            let Err(e) = undone else {
                return Err(Failure::new(why));
            };
            let kept = Diagnostic::error(
                "Account created without its certificate user ids",
                format!(
                    "User {id} was created, but its certificate user ids were refused and \
                     removing the user again failed: {e}. It is recorded in state."
                ),
            );
            return Err(Failure::new(Diagnostics(vec![why, kept])).with_model(&state));
        }
        state.certificate_user_ids = planned.certificate_user_ids.clone();
    }
    state.authentication_methods = registered_methods(users, &id, *deadline)
        .await
        .unwrap_or(Tf::Null);
    Ok(state)
}
