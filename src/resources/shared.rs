//! What every resource and data source needs the same way: Azure errors as diagnostics,
//! deadlines from a `timeouts` block, deletion protection, and for the ARM resources the id
//! rule, the subscription, the caller's object id and Azure Monitor's ISO 8601 durations.
//!
//! The client layer (`src/azure`) knows nothing of Terraform; the conversion of its typed
//! errors into diagnostics lives here, on the Terraform side of the boundary.

use crate::azure::arm::ResourceId;
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::validators::{string_rule, Validator};
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

// ---- Azure Resource Manager ---------------------------------------------------------------

/// A validator for an ARM resource id of one type, parsed by the client layer's
/// `ResourceId` rules (`parse` is e.g. `log_analytics::parse_workspace_id`).
pub fn arm_id_rule(what: &'static str, parse: fn(&str) -> Result<ResourceId, String>) -> Validator {
    string_rule(
        format!("must be the resource id of {what}"),
        "Invalid resource id",
        move |text, _| match parse(text) {
            Ok(_) => Ok(()),
            Err(why) => Err(format!("must be the resource id of {what}: {why}")),
        },
    )
}

/// The object id (`oid` claim) of the principal the provider signs in to ARM as, from the
/// token Entra issued: the documented way for a client to learn who it is.
pub async fn arm_caller_object_id(
    clients: &AzureClients,
    deadline: &Deadline,
) -> Result<String, AzureError> {
    let token = clients
        .tokens
        .token(&clients.arm.service().scope, deadline)
        .await?;
    Ok(token
        .claims()
        .and_then(|c| c["oid"].as_str().map(str::to_owned))
        .unwrap_or_default())
}

/// The subscription ARM resources of this provider live in: the provider's `subscription_id`
/// (or `ARM_SUBSCRIPTION_ID`), else `fallback` (e.g. the subscription of a referenced
/// workspace).
pub fn subscription(clients: &AzureClients, fallback: Option<&str>) -> Result<String, Diagnostic> {
    clients
        .config
        .subscription_id
        .clone()
        .or_else(|| fallback.map(str::to_owned))
        .ok_or_else(|| {
            Diagnostic::error(
                "No Azure subscription",
                "This resource lives in an Azure subscription, and none is configured: set \
                 `subscription_id` in the provider block, or the ARM_SUBSCRIPTION_ID \
                 environment variable.",
            )
        })
}

/// ISO 8601 durations of whole minutes as ARM writes them for Azure Monitor
/// (`PT5M`, `PT1H`, `P1D`, `P1DT12H`): the number of minutes, or why the text is not one.
pub fn iso_duration_minutes(text: &str) -> Result<u64, String> {
    let not_one = || {
        format!(
            "{text:?} is not an ISO 8601 duration (write e.g. `PT5M` for five minutes, `PT1H` \
             for an hour, `P1D` for a day)"
        )
    };
    let rest = text.strip_prefix('P').ok_or_else(not_one)?;
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return Err(not_one()),
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    if rest.is_empty() {
        return Err(not_one());
    }
    let mut seconds: u64 = 0;
    for (part, units) in [
        (date, &[('W', 604_800u64), ('D', 86_400)][..]),
        (time, &[('H', 3_600u64), ('M', 60), ('S', 1)][..]),
    ] {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            // Units in their order, each at most once, each after a number.
            let position = units[next_unit..]
                .iter()
                .position(|(u, _)| *u == c)
                .map(|p| p + next_unit)
                .ok_or_else(not_one)?;
            let n: u64 = number.parse().map_err(|_| not_one())?;
            seconds = n
                .checked_mul(units[position].1)
                .and_then(|s| s.checked_add(seconds))
                .ok_or_else(not_one)?;
            number.clear();
            next_unit = position + 1;
        }
        if !number.is_empty() {
            return Err(not_one());
        }
    }
    if seconds == 0 || !seconds.is_multiple_of(60) {
        return Err(format!(
            "{text:?} is not a whole number of minutes greater than zero"
        ));
    }
    Ok(seconds / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations_in_minutes() {
        for (text, minutes) in [
            ("PT5M", 5),
            ("PT1H", 60),
            ("PT60M", 60),
            ("P1D", 1440),
            ("P1DT12H", 2160),
            ("PT90S", -1),
            ("P1W", 10080),
            ("PT300S", 5),
        ] {
            match iso_duration_minutes(text) {
                Ok(m) => assert_eq!(m as i64, minutes, "{text}"),
                Err(e) => assert_eq!(minutes, -1, "{text}: {e}"),
            }
        }
        for bad in [
            "PT7X",
            "",
            "P",
            "PT",
            "5m",
            "PT5",
            "PTM",
            "PT5M5M",
            "PT5M1H",
            "P1DT",
            "pt5m",
            "PT-5M",
            "PT0M",
            "P99999999999999999999D",
        ] {
            assert!(iso_duration_minutes(bad).is_err(), "{bad:?}");
        }
        assert!(iso_duration_minutes("PT7X")
            .unwrap_err()
            .contains("not an ISO 8601 duration"));
    }

    #[test]
    fn arm_id_rule_explains_the_expected_shape() {
        let rule = arm_id_rule(
            "a Log Analytics workspace",
            crate::azure::log_analytics::parse_workspace_id,
        );
        let ok = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law";
        assert!(rule.check_standalone(&ok.into(), false).is_none());
        let why = rule.check_standalone(&"law".into(), false).unwrap();
        assert!(why.contains("/subscriptions/<subscription id>"), "{why}");
    }
}
