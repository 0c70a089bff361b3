# Keep the two emergency-access accounts and the exclusion group out of every conditional-access
# policy that could lock them out — including policies someone creates later: each refresh
# re-evaluates the tenant, and `terraform plan` proposes adding the exclusion to any policy in
# scope that lacks it (see `missing_policy_ids`).
#
# Only these ids are added to each policy's excludeUsers / excludeGroups; every other exclusion
# and setting of the policies is left as it is. Destroy removes only the entries this resource
# added (`added_exclusions`, per policy and principal): where someone had already excluded the
# group or an account by hand — as most policies already exclude CA-Exclusion-EmergencyAccess —
# that exclusion stays.
#
# Import: terraform import breakglass_ca_exclusion.emergency <user id>,<user id>,<group id>
# Import adopts the exclusions present at that moment, so a later destroy removes all of them.

terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

variable "break_glass_user_ids" {
  description = "Object ids of the emergency-access accounts (e.g. from breakglass_account)."
  type        = list(string)
  default = [
    "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01",
    "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04",
  ]
}

resource "breakglass_ca_exclusion" "emergency" {
  user_ids  = var.break_glass_user_ids
  group_ids = ["8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01"] # CA-Exclusion-EmergencyAccess

  policy_filter {
    # Also cover disabled policies, so switching one on cannot lock the accounts out.
    include_states = ["enabled", "enabledForReportingButNotEnforced", "disabled"]

    # A policy owned by a team that manages its own exclusions.
    exclude_policy_ids = ["ca000000-0000-4000-8000-000000000012"]
  }

  timeouts {
    create = "15m"
    update = "15m"
  }
}

output "excluded_from" {
  description = "Conditional-access policies that exclude the emergency accounts now."
  value       = breakglass_ca_exclusion.emergency.policy_ids
}

output "not_yet_excluded_from" {
  description = "Policies in scope still without the exclusion; non-empty means drift."
  value       = breakglass_ca_exclusion.emergency.missing_policy_ids
}
