# Permanent Global Administrator for two emergency-access ("break-glass") accounts, so the
# tenant can be recovered even when PIM activation, MFA or conditional access is unavailable.

terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

variable "primary_account_object_id" {
  description = "Object id of the first emergency-access account (e.g. breakglass_account.primary.object_id)."
  type        = string
}

variable "secondary_account_object_id" {
  description = "Object id of the second emergency-access account."
  type        = string
}

# 1. Through PIM (the default): an adminAssign request with no expiration. PIM records the
#    justification and ticket; the plan fails early if the role's PIM settings do not allow
#    permanent active assignments. Import: terraform import breakglass_role_assignment.primary <principal_id>/<role_definition_id>
resource "breakglass_role_assignment" "primary" {
  principal_id       = var.primary_account_object_id
  role_definition_id = "62e90394-69f5-4237-9190-012177145e10" # Global Administrator (the default)
  justification      = "Emergency access account: permanent Global Administrator per break-glass runbook"
  ticket_number      = "CHG-2025-0042"
  ticket_system      = "ServiceNow"

  timeouts {
    create = "15m" # includes waiting for PIM to provision the assignment
  }
}

# 2. A direct role assignment outside PIM: the documented fallback for tenants whose Global
#    Administrator settings require every active assignment to expire, or that have no PIM.
#    Graph records no justification or ticket for it.
resource "breakglass_role_assignment" "secondary" {
  principal_id      = var.secondary_account_object_id
  assignment_method = "direct"
}

output "primary_schedule_id" {
  description = "The PIM schedule that keeps the primary account's assignment in force."
  value       = breakglass_role_assignment.primary.schedule_id
}
