//! `authorizationInfo.certificateUserIds` on users: the values certificate-based
//! authentication binds a certificate to.
//!
//! "Mapping to the certificateUserIds attribute in Microsoft Entra ID" (learn.microsoft.com,
//! entra/identity/authentication/concept-certificate-based-authentication-certificateuserids):
//! - at most 10 values, each at most 1024 characters;
//! - each value unique: "Once a value is present on one user account, it can't be written to
//!   any other user account in the same Microsoft Entra tenant" (authorizationInfo resource
//!   type: "The identifiers must be unique in the tenant");
//! - values follow the `X509:<Mapping>` patterns, prefixes case-sensitive: `<PN>`, `<RFC822>`,
//!   `<I>…<S>…`, `<S>`, `<SKI>`, `<SHA1-PUKEY>`, `<I>…<SR>…`;
//! - cloud-only users: the writer needs at least Privileged Authentication Administrator;
//!   synced users get theirs only from Entra Connect (the synced-object rule in `users.rs`
//!   refuses the property for them).
//!
//! The documents give the rules but not the service's error texts. The duplicate answers like
//! the directory's other uniqueness checks (facts §3 Users: 400 `Request_BadRequest` "Another
//! object with the same value for property … already exists." + `ObjectConflict` detail whose
//! target names the property); malformed values answer with the directory's invalid-value
//! message. Both texts are the emulator's, modelled on those answers.

use serde_json::{Map, Value};

use super::administrative_units::GLOBAL_ADMINISTRATOR;
use super::restricted::{
    holds_scoped_privileged_authentication_admin, PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
};
use crate::error::GraphError;
use crate::state::Tenant;
use crate::token::Caller;

pub const MAX_VALUES: usize = 10;
pub const MAX_LENGTH: usize = 1024;

const CONFLICT: &str =
    "Another object with the same value for property certificateUserIds already exists.";

/// The documented `X509:<Mapping>` forms; the remainder after the tag must not be empty.
fn well_formed(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("X509:") else {
        return false;
    };
    let simple = ["<PN>", "<RFC822>", "<S>", "<SKI>", "<SHA1-PUKEY>"];
    if let Some(tail) = simple.iter().find_map(|tag| rest.strip_prefix(tag)) {
        return !tail.is_empty();
    }
    // Issuer and subject, or issuer and serial number.
    let Some(issuer_and) = rest.strip_prefix("<I>") else {
        return false;
    };
    for tag in ["<S>", "<SR>"] {
        if let Some((issuer, tail)) = issuer_and.split_once(tag) {
            return !issuer.is_empty() && !tail.is_empty();
        }
    }
    false
}

fn invalid() -> GraphError {
    GraphError::bad_request(
        "Invalid value specified for property 'certificateUserIds' of resource 'User'.",
    )
}

fn conflict() -> GraphError {
    GraphError::bad_request(CONFLICT).with_detail("ObjectConflict", CONFLICT, "certificateUserIds")
}

/// The certificate user ids stored on a user object (live or deleted).
fn ids_of(user: &Map<String, Value>) -> impl Iterator<Item = &str> {
    user.get("authorizationInfo")
        .and_then(|a| a.get("certificateUserIds"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Checks a `PATCH /users/{id}` body's `authorizationInfo` (if any) and returns the patch with
/// it normalised to `{"certificateUserIds": [...]}`; `null` clears the list.
pub(super) fn checked_patch(
    tenant: &Tenant,
    caller: &Caller,
    user_id: &str,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, GraphError> {
    let Some(info) = patch.get("authorizationInfo") else {
        return Ok(patch);
    };
    let ids: Vec<String> = match info {
        Value::Null => Vec::new(),
        Value::Object(info) => match info.get("certificateUserIds") {
            None => return Ok(without(patch, "authorizationInfo")),
            Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(invalid)?,
            Some(_) => return Err(invalid()),
        },
        _ => return Err(invalid()),
    };
    require_writer(tenant, caller, user_id)?;
    if ids.len() > MAX_VALUES
        || ids
            .iter()
            .any(|v| v.chars().count() > MAX_LENGTH || !well_formed(v))
    {
        return Err(invalid());
    }
    for (i, value) in ids.iter().enumerate() {
        if ids[..i]
            .iter()
            .any(|other| other.eq_ignore_ascii_case(value))
        {
            return Err(conflict());
        }
    }
    // Unique across the tenant: other live users and soft-deleted ones (a deleted user keeps
    // its values until it is purged, so a restore cannot collide).
    let directory = &tenant.directory;
    let others = directory
        .users
        .list_latest()
        .into_iter()
        .chain(directory.deleted_items.list_latest())
        .filter(|u| {
            !u["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(user_id))
        });
    for other in others {
        if ids_of(other).any(|taken| ids.iter().any(|v| v.eq_ignore_ascii_case(taken))) {
            return Err(conflict());
        }
    }
    let mut normalised = Map::new();
    normalised.insert(
        "certificateUserIds".into(),
        Value::Array(ids.into_iter().map(Value::String).collect()),
    );
    patch.insert("authorizationInfo".into(), Value::Object(normalised));
    Ok(patch)
}

fn without(mut patch: Map<String, Value>, key: &str) -> Map<String, Value> {
    patch.remove(key);
    patch
}

/// "Cloud-only users must have at least Privileged Authentication Administrator role to update
/// certificateUserIds": held tenant-wide (or Global Administrator), or scoped to an
/// administrative unit the user is in.
fn require_writer(tenant: &Tenant, caller: &Caller, user_id: &str) -> Result<(), GraphError> {
    let tenant_wide = caller.directory_roles.iter().any(|r| {
        r.eq_ignore_ascii_case(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
            || r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR)
    });
    if tenant_wide || holds_scoped_privileged_authentication_admin(tenant, caller, user_id) {
        Ok(())
    } else {
        Err(super::insufficient_privileges())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_patterns_are_well_formed() {
        for ok in [
            "X509:<PN>bob@woodgrove.com",
            "X509:<PN>bob@woodgrove",
            "X509:<RFC822>user@woodgrove.com",
            "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest",
            "X509:<S>DC=com,DC=contoso,OU=UserAccounts,CN=mfatest",
            "X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR",
            "X509:<SHA1-PUKEY>cD2eF3gH4iJ5kL6mN7oP8qR9sT",
            "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<SR>eF3gH4iJ5kL6mN7oP8qR9sT0uV",
        ] {
            assert!(well_formed(ok), "{ok}");
        }
        for bad in [
            "x509:<PN>bob@woodgrove.com",
            "X509:<pn>bob@woodgrove.com",
            "X509:<PN>",
            "X509:<I>CN=CA",
            "X509:<I><S>CN=x",
            "bob@woodgrove.com",
            "X509:<UPN>bob",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
