//! What every resource and data source needs the same way: Azure errors as diagnostics,
//! deadlines from a `timeouts` block, and deletion protection.
//!
//! The client layer (`src/azure`) knows nothing of Terraform; the conversion of its typed
//! errors into diagnostics lives here, on the Terraform side of the boundary.

use crate::azure::{AzureError, Deadline};
use crate::framework::{
    Attribute, AttributePath, Diagnostic, Diagnostics, Failure, Operation, Tf, TimeoutDefaults,
    Timeouts, Type,
};

impl From<AzureError> for Diagnostic {
    fn from(e: AzureError) -> Self {
        let summary = match &e {
            AzureError::Auth(_) => "Authentication failed",
            AzureError::Api(a) if a.status == 403 => "Permission denied by the tenant",
            AzureError::Api(a) if a.status == 404 => "Object not found",
            AzureError::Api(_) => "Request rejected by the tenant",
            AzureError::Transport { .. } => "Network error",
            AzureError::Deadline { .. } => "Timed out",
            AzureError::InvalidResponse { .. } => "Unexpected response",
        };
        Diagnostic::error(summary, e.to_string())
    }
}

impl From<AzureError> for Diagnostics {
    fn from(e: AzureError) -> Self {
        Diagnostic::from(e).into()
    }
}

impl From<AzureError> for Failure {
    fn from(e: AzureError) -> Self {
        Failure::new(Diagnostic::from(e))
    }
}

/// The deadline for `operation` from a decoded `timeouts` block, or the resource's default.
pub fn deadline(
    defaults: &TimeoutDefaults,
    timeouts: &Tf<Timeouts>,
    operation: Operation,
) -> Result<Deadline, Diagnostic> {
    defaults
        .duration(timeouts.get(), operation)
        .map(Deadline::after)
}

/// `deletion_protection`: on by default, the provider's own setting (the tenant has no record of
/// it). While it is on, a destroy or a replacement fails at plan (Terraform ≥ 1.3 plans
/// destroys with the provider) and, for older Terraform, again before anything is deleted.
pub fn deletion_protection_attribute(what: &str) -> Attribute {
    Attribute::optional(
        "deletion_protection",
        Type::Bool,
        &format!(
            "While true, Terraform cannot destroy or replace the {what}: the plan (and, on \
             Terraform older than 1.3, the apply) fails before anything is deleted. Set it to \
             `false` and apply first to allow that."
        ),
    )
    .default(true)
    .config_only()
}

/// The error `deletion_protection` raises; `None` when it is off. `action` is what Terraform
/// was about to do ("destroy", "replace").
pub fn protected(deletion_protection: &Tf<bool>, what: &str, action: &str) -> Option<Diagnostic> {
    // A state written before the attribute existed holds null: protected, as the default is.
    if deletion_protection.get() == Some(&false) {
        return None;
    }
    Some(
        Diagnostic::error(
            "Deletion protection is on",
            format!(
                "Terraform would {action} the {what}, and its `deletion_protection` is true, so \
                 nothing was deleted. An emergency-access {what} must not disappear by \
                 accident. If it is really to go, set `deletion_protection = false`, run \
                 `terraform apply`, then {action} it."
            ),
        )
        .at(AttributePath::root("deletion_protection")),
    )
}
