//! What create, update and delete do in the tenant, per method: a PIM schedule request and
//! the wait for provisioning, or a direct role assignment. Each returns the state that
//! matches the tenant, also when it fails part-way.

use tracing::info;

use super::errors::{create_error, permanence_forbidden};
use super::{Desired, RoleAssignmentModel, REMOVAL_JUSTIFICATION};
use crate::azure::http::CreateProbe;
use crate::azure::role_management::{
    is_assignment_missing, is_policy_violation, AdminAction, AssignmentKey, PimView,
    RequestDetails, RoleManagement, ScheduleRequest,
};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{Diagnostic, Failure};

pub async fn create_pim(
    clients: &AzureClients,
    desired: &Desired,
    deadline: Deadline,
) -> Result<RoleAssignmentModel, Failure> {
    let rm = RoleManagement::new(&clients.graph);
    let key = &desired.key;
    let assign_probe = rm.assign_probe(key, time::OffsetDateTime::now_utc(), deadline);
    let probe: &CreateProbe<'_> = &|| assign_probe();
    let request = rm
        .while_principal_replicates(key, &deadline, || {
            rm.submit(
                AdminAction::Assign,
                key,
                &desired.details,
                None,
                probe,
                &deadline,
            )
        })
        .await
        .map_err(|e| Failure::new(create_error(key, e)))?;
    if request.has_failed() {
        return Err(Diagnostic::error(
            "PIM refused the assignment",
            format!(
                "PIM request {} for {} ended with status {}.",
                request.id,
                key.describe(),
                request.status
            ),
        )
        .into());
    }
    info!(request_id = %request.id, status = %request.status, "PIM accepted the assignment request");
    // From here on the request exists: whatever happens, state must say so.
    let waited = rm.wait_provisioned(key, &request, deadline).await;
    finish_pim_write(desired, &request, waited, "create")
}

fn finish_pim_write(
    desired: &Desired,
    request: &ScheduleRequest,
    waited: Result<Option<PimView>, AzureError>,
    operation: &str,
) -> Result<RoleAssignmentModel, Failure> {
    match waited {
        Ok(Some(view)) => Ok(desired.state(Some(&view))),
        Ok(None) => Err(Diagnostic::error(
            "Assignment vanished",
            format!(
                "PIM provisioned request {} for {}, but the assignment could not be read back \
                 afterwards; it may have been removed meanwhile.",
                request.id,
                desired.key.describe()
            ),
        )
        .into()),
        Err(e) => {
            // The request was accepted and may still complete: keep it in state (Terraform
            // marks a failed create tainted), showing how far PIM got.
            let pending = PimView {
                schedule: None,
                request: Some(request.clone()),
            };
            Err(Failure::new(Diagnostic::error(
                "PIM did not finish provisioning the assignment",
                format!(
                    "PIM accepted request {} ({} of {}) but it was not provisioned and \
                     readable in time: {e}\n\nThe request may still complete. Raise \
                     timeouts.{operation} if PIM is slow in this tenant, then apply again.",
                    request.id,
                    request.action,
                    desired.key.describe()
                ),
            ))
            .with_model(&desired.state(Some(&pending))))
        }
    }
}

pub async fn create_direct(
    clients: &AzureClients,
    desired: &Desired,
    deadline: Deadline,
) -> Result<RoleAssignmentModel, Failure> {
    let rm = RoleManagement::new(&clients.graph);
    let key = &desired.key;
    let direct_probe = rm.direct_probe(key, deadline);
    let probe: &CreateProbe<'_> = &|| direct_probe();
    rm.while_principal_replicates(key, &deadline, || rm.create_direct(key, probe, &deadline))
        .await
        .map_err(|e| Failure::new(create_error(key, e)))?;
    let state = desired.state(None);
    match rm.wait_direct(key, true, deadline).await {
        Ok(()) => Ok(state),
        // Created but not yet readable: it exists, so it belongs in state.
        Err(e) => Err(Failure::from(e).with_model(&state)),
    }
}

/// An `adminUpdate`; any failure leaves the assignment as it was, so the prior state stands.
pub async fn update_pim(
    clients: &AzureClients,
    desired: &Desired,
    prior: &RoleAssignmentModel,
    deadline: Deadline,
) -> Result<RoleAssignmentModel, Failure> {
    let rm = RoleManagement::new(&clients.graph);
    let key = &desired.key;
    // Re-sending an adminUpdate after an ambiguous failure sets the same values again.
    let resend: &CreateProbe<'_> = &|| Box::pin(async { Ok::<_, AzureError>(None) });
    let start = prior.start_date_time.as_deref();
    let request = match rm
        .submit(
            AdminAction::Update,
            key,
            &desired.details,
            start,
            resend,
            &deadline,
        )
        .await
    {
        Ok(r) => r,
        Err(e) if is_assignment_missing(&e) || e.is_not_found() => {
            return Err(Diagnostic::error(
                "The assignment no longer exists",
                format!(
                    "PIM has no active assignment of {} to update ({e}). Run terraform apply \
                     again: the refresh will notice and plan to create it.",
                    key.describe()
                ),
            )
            .into())
        }
        Err(e) if is_policy_violation(&e) => {
            let mut d = permanence_forbidden(key, None);
            d.detail = d
                .detail
                .replace("Nothing was written.", "The assignment was left as it is.");
            d.detail.push_str(&format!("\n\nPIM answered: {e}"));
            return Err(d.into());
        }
        Err(e) => return Err(e.into()),
    };
    match rm.wait_provisioned(key, &request, deadline).await {
        // The old schedule stays in force until PIM finishes; keep the prior state.
        Err(e) => Err(Diagnostic::error(
            "PIM did not finish updating the assignment",
            format!(
                "PIM accepted request {} (adminUpdate of {}) but it was not provisioned in \
                 time: {e}\n\nRaise timeouts.update if PIM is slow, then apply again.",
                request.id,
                key.describe()
            ),
        )
        .into()),
        other => finish_pim_write(desired, &request, other, "update"),
    }
}

pub async fn delete_pim(
    clients: &AzureClients,
    key: &AssignmentKey,
    deadline: Deadline,
) -> Result<(), Diagnostic> {
    let rm = RoleManagement::new(&clients.graph);
    let details = RequestDetails {
        justification: Some(REMOVAL_JUSTIFICATION.to_owned()),
        ..RequestDetails::default()
    };
    // A re-sent removal of an assignment already being removed answers
    // RoleAssignmentDoesNotExist, which counts as done below.
    let resend: &CreateProbe<'_> = &|| Box::pin(async { Ok::<_, AzureError>(None) });
    let request = match rm
        .submit(AdminAction::Remove, key, &details, None, resend, &deadline)
        .await
    {
        Ok(request) => {
            info!(request_id = %request.id, "PIM accepted the removal request");
            Some(request)
        }
        // Already gone, or its principal is: nothing left to remove.
        Err(e) if is_assignment_missing(&e) || e.is_not_found() => None,
        Err(e) => {
            let mut d = Diagnostic::from(e);
            d.summary = format!("Could not remove {}", key.describe());
            return Err(d);
        }
    };
    Ok(rm.wait_revoked(key, request.as_ref(), deadline).await?)
}

pub async fn delete_direct(
    clients: &AzureClients,
    key: &AssignmentKey,
    deadline: Deadline,
) -> Result<(), Diagnostic> {
    let rm = RoleManagement::new(&clients.graph);
    if let Some(assignment) = rm.direct_assignment(key, deadline).await? {
        rm.delete_direct(&assignment.id, &deadline).await?;
    }
    Ok(rm.wait_direct(key, false, deadline).await?)
}
