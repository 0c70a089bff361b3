//! Pieces every resource needs the same way: the GUID rule and per-operation deadlines from a
//! `timeouts` block.

use std::time::Duration;

use crate::azure::Deadline;
use crate::framework::{AttributePath, Diagnostic, Diagnostics, Value};

pub use crate::provider::checks::is_guid;

/// The deadline for `operation` ("create", "read", "update", "delete") from the `timeouts` block
/// of `value` (a config, plan or state), or `default` when unset. A malformed duration is an
/// error on `timeouts.<operation>`.
pub fn deadline(value: &Value, operation: &str, default: Duration) -> Result<Deadline, Diagnostic> {
    Deadline::from_timeouts(&value.get("timeouts"), operation, default).map_err(|why| {
        Diagnostic::error("Invalid timeout", why)
            .at(AttributePath::root("timeouts").attr(operation))
    })
}

/// Validate-time check of every duration in a `timeouts` block, each error on
/// `timeouts.<operation>` (the same rule `deadline` applies at apply time).
pub fn validate_timeouts(config: &Value) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    for operation in ["create", "read", "update", "delete"] {
        if let Err(error) = deadline(config, operation, Duration::ZERO) {
            diagnostics.push(error);
        }
    }
    diagnostics
}
