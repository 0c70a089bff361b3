//! What every resource and data source needs the same way: Azure errors as diagnostics, and
//! deadlines from a `timeouts` block.
//!
//! The client layer (`src/azure`) knows nothing of Terraform; the conversion of its typed
//! errors into diagnostics lives here, on the Terraform side of the boundary.

use crate::azure::{AzureError, Deadline};
use crate::framework::{
    Diagnostic, Diagnostics, Failure, Operation, Tf, TimeoutDefaults, Timeouts,
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
            AzureError::Contended { .. } => "Concurrent change",
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
