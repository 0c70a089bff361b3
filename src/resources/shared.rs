//! Pieces every resource needs the same way: the GUID rule and per-operation deadlines from a
//! `timeouts` block.

use std::time::Duration;

use crate::azure::Deadline;
use crate::framework::{AttributePath, Diagnostic, Value};

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
