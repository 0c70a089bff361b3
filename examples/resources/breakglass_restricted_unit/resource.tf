# The emergency accounts in a restricted management administrative unit: administrators and
# applications with tenant-wide roles (Global Administrator included) can no longer reset their
# passwords, change their methods, disable or delete them. Only roles assigned at the unit's
# scope can, and for an account holding Global Administrator no role can rotate the password:
# take it out of the unit (remove it from `members`, apply), rotate (apply), put it back (apply).

terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

# The identity Terraform runs as: it keeps a role at the unit's scope.
data "breakglass_client_config" "current" {}

variable "account_object_ids" {
  description = "Object ids of the emergency accounts (e.g. breakglass_account.primary.object_id)."
  type        = list(string)
}

resource "breakglass_restricted_unit" "emergency" {
  display_name = "Emergency access accounts"
  description  = "Break-glass accounts; only roles scoped to this unit may change them"
  members      = var.account_object_ids

  # Privileged Authentication Administrator (the default): certificate_user_ids and
  # authentication methods of every member, passwords of members without an admin role.
  managers {
    principal_id = data.breakglass_client_config.current.object_id
  }
  # User Administrator: display names and the other ordinary properties.
  managers {
    principal_id       = data.breakglass_client_config.current.object_id
    role_definition_id = "fe930be7-5e62-47db-91af-98c3a49a38b1"
  }

  # On by default: destroy and replacement are refused until this is false and applied.
  deletion_protection = true
}

output "unit_id" {
  description = "The unit's object id (also its import id)."
  value       = breakglass_restricted_unit.emergency.id
}
