//! How the tenant's refusals of diagnostic-setting calls read as diagnostics: the missing
//! Azure role at `/providers/Microsoft.aadiam` (with the command that grants it), the
//! five-setting limit, and the duplicate-export warning.

use crate::azure::diagnostic_settings::{
    authorization_failure, is_aadiam_authorization_failed, DiagnosticSetting, AADIAM_SCOPE,
    MAX_SETTINGS,
};
use crate::azure::{AuthMethodKind, AzureError};
use crate::framework::{AttributePath, Diagnostic};

/// Built-in roles that include `microsoft.aadiam/diagnosticSettings/*` ("Azure built-in
/// roles": Owner `*`, Contributor `*` except authorization writes).
pub const WRITING_ROLES: &[(&str, &str)] = &[
    ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
];

/// Built-in roles that reach the scope but cannot write settings: Reader (`*/read`) and User
/// Access Administrator (`*/read` and `Microsoft.Authorization/*`).
pub const READ_ONLY_ROLES: &[(&str, &str)] = &[
    ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
    (
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
    ),
];

/// Who the provider signed in as, for the grant command.
pub struct Principal<'a> {
    pub object_id: &'a str,
    pub method: AuthMethodKind,
}

impl Principal<'_> {
    /// `--assignee-principal-type` as `az role assignment create` spells it: a user for the
    /// Azure CLI sign-in, a service principal (apps and managed identities) otherwise.
    fn principal_type(&self) -> &'static str {
        match self.method {
            AuthMethodKind::AzureCli => "User",
            _ => "ServicePrincipal",
        }
    }

    fn noun(&self) -> &'static str {
        match self.method {
            AuthMethodKind::AzureCli => "The signed-in user",
            AuthMethodKind::ManagedIdentity => "The managed identity",
            _ => "The service principal",
        }
    }
}

/// How to fix it: the exact grant, who may make it, and the documents.
pub fn grant_instructions(principal: &Principal<'_>) -> String {
    let id = if principal.object_id.is_empty() {
        "<object id of the provider's principal>"
    } else {
        principal.object_id
    };
    format!(
        "Microsoft Entra's tenant diagnostic settings are authorized by Azure RBAC at the scope \
         {AADIAM_SCOPE}: Entra directory roles (even Global Administrator) do not count, and a \
         role on a subscription does not reach it (a subscription is not a parent of that \
         scope). Grant a role that includes microsoft.aadiam/diagnosticSettings/* — Contributor \
         or Owner — at exactly that scope:\n\n  az role assignment create --assignee-object-id \
         {id} --assignee-principal-type {} --role Contributor --scope {AADIAM_SCOPE}\n\nMaking \
         that assignment needs Owner or User Access Administrator at {AADIAM_SCOPE} or at the \
         root scope \"/\"; a Global Administrator can get User Access Administrator at \"/\" by \
         elevating access (\"Elevate access to manage all Azure subscriptions and management \
         groups\"). A new assignment can take a few minutes to take effect. (Field reports: \
         azure-rest-api-specs#11085, terraform-provider-azurerm#12986 and #18624.)",
        principal.principal_type()
    )
}

/// ARM's 403 on an aadiam call, as the diagnostic that says what is missing; `None` for other
/// errors.
pub fn aadiam_denied(e: &AzureError, principal: &Principal<'_>) -> Option<Diagnostic> {
    if !is_aadiam_authorization_failed(e) {
        return None;
    }
    let refused = match authorization_failure(e) {
        Some(f) => format!(
            "Azure Resource Manager refused `{}` over scope `{}` (403 AuthorizationFailed)",
            f.action, f.scope
        ),
        None => "Azure Resource Manager answered 403 AuthorizationFailed".to_owned(),
    };
    let object_id = authorization_failure(e)
        .map(|f| f.object_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| principal.object_id.to_owned());
    let principal = Principal {
        object_id: &object_id,
        method: principal.method,
    };
    Some(Diagnostic::error(
        format!("Missing Azure role at {AADIAM_SCOPE}"),
        format!(
            "{} {object_id} holds no Azure role at {AADIAM_SCOPE}: {refused}.\n\n{}",
            principal.noun(),
            grant_instructions(&principal)
        ),
    ))
}

/// The principal holds only roles that cannot write settings at the scope.
pub fn read_only_role(principal: &Principal<'_>, roles: &[&str]) -> Diagnostic {
    Diagnostic::error(
        format!("Azure role at {AADIAM_SCOPE} cannot write diagnostic settings"),
        format!(
            "{} {} holds only {} at (or above) {AADIAM_SCOPE}, which can read but not write \
             Microsoft Entra diagnostic settings (microsoft.aadiam/diagnosticSettings/write).\n\n{}",
            principal.noun(),
            principal.object_id,
            roles.join(" and "),
            grant_instructions(principal)
        ),
    )
}

/// The tenant already has the maximum number of settings and ours would be another one.
pub fn limit_reached(existing: &[DiagnosticSetting], name: &str) -> Diagnostic {
    let names: Vec<String> = existing.iter().map(|s| format!("{:?}", s.name)).collect();
    Diagnostic::error(
        "Too many Entra diagnostic settings",
        format!(
            "A tenant has at most {MAX_SETTINGS} diagnostic settings (Azure Monitor service \
             limits, a hard limit), and this one already has {}: {}. Creating {name:?} would be \
             one more. Add the categories to one of them instead (import it into this resource \
             by name), or delete a setting nobody needs.",
            existing.len(),
            names.join(", ")
        ),
    )
    .at(AttributePath::root("name"))
}

/// Another setting ships some of our categories to the same workspace.
pub fn duplicate_export(other: &DiagnosticSetting, categories: &[String]) -> Diagnostic {
    Diagnostic::warning(
        "Entra logs would be ingested twice",
        format!(
            "The diagnostic setting {:?} already exports {} to this workspace. Azure Monitor \
             ingests (and bills) one copy per setting, so those records would arrive twice. \
             Drop the categories from one of the two settings.",
            other.name,
            categories.join(", ")
        ),
    )
    .at(AttributePath::root("categories"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::error::{ApiError, Service};
    use serde_json::json;

    fn denied(action: &str) -> AzureError {
        let body = json!({"error": {"code": "AuthorizationFailed", "message": format!(
            "The client '374cfff1-0fa8-48d6-a0c2-7cac102135c0' with object id \
             '374cfff1-0fa8-48d6-a0c2-7cac102135c0' does not have authorization to perform \
             action '{action}' over scope '/providers/microsoft.aadiam/diagnosticSettings/x' or \
             the scope is invalid. If access was recently granted, please refresh your credentials.")}});
        ApiError::from_body(
            Service::ResourceManager,
            "PUT",
            "u",
            403,
            Some(&body),
            None,
            None,
        )
        .into()
    }

    #[test]
    fn a_403_names_the_role_the_scope_and_the_command() {
        let principal = Principal {
            object_id: "",
            method: AuthMethodKind::ClientSecret,
        };
        let d = aadiam_denied(
            &denied("microsoft.aadiam/diagnosticSettings/write"),
            &principal,
        )
        .expect("recognised");
        assert_eq!(
            d.summary,
            "Missing Azure role at /providers/Microsoft.aadiam"
        );
        for part in [
            "374cfff1-0fa8-48d6-a0c2-7cac102135c0",
            "microsoft.aadiam/diagnosticSettings/write",
            "az role assignment create --assignee-object-id 374cfff1-0fa8-48d6-a0c2-7cac102135c0 \
             --assignee-principal-type ServicePrincipal --role Contributor --scope \
             /providers/Microsoft.aadiam",
            "User Access Administrator",
        ] {
            assert!(d.detail.contains(part), "{part}\n{}", d.detail);
        }
        let other = ApiError::from_body(
            Service::ResourceManager,
            "PUT",
            "u",
            403,
            Some(
                &json!({"error": {"code": "AuthorizationFailed", "message": "The client 'a' with object id 'a' does not have authorization to perform action 'Microsoft.Insights/actionGroups/write' over scope '/subscriptions/s' or the scope is invalid."}}),
            ),
            None,
            None,
        );
        assert!(aadiam_denied(&other.into(), &principal).is_none());
    }

    #[test]
    fn azure_cli_sign_ins_are_granted_as_users() {
        let principal = Principal {
            object_id: "u1",
            method: AuthMethodKind::AzureCli,
        };
        assert!(grant_instructions(&principal).contains("--assignee-principal-type User"));
    }
}
