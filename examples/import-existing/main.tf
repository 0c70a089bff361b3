# Adopting what the hand-run PowerShell procedure made (see README.md): the configuration below
# describes the emergency access as it should be. Imported (imports.tf on Terraform 1.5 or later,
# import.sh on older ones), the first plan adds nothing and destroys nothing; it changes in place
# only what the script got wrong:
#
#   - the password the script kept in a variable is rotated (password_rotation_trigger);
#   - the diagnostic setting gains the non-interactive sign-in and audit logs it lacked;
#   - the alert's case-sensitive UPN match becomes the provider's KQL (object id or UPN, any case,
#     interactive and non-interactive), and a tamper rule is added beside it;
#   - the conditional-access exclusion is completed wherever the account is missing; the
#     exclusions the script overwrote cannot be recovered by anyone: see README.md.

terraform {
  required_version = ">= 1.0"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

variable "subscription_id" {
  description = "The subscription holding the monitoring resources the script created."
  type        = string
  default     = "eeb0c733-9a1c-437b-b310-e18599b1b281"
}

locals {
  resource_group = "rg-breakglass-monitoring"
  workspace_id   = "/subscriptions/${var.subscription_id}/resourceGroups/${local.resource_group}/providers/Microsoft.OperationalInsights/workspaces/law-breakglass"
}

provider "breakglass" {
  subscription_id = var.subscription_id
}

resource "breakglass_account" "bkr_admin01" {
  user_principal_name = "bkr-admin01@contoso.onmicrosoft.com"
  display_name        = "Break Glass Admin 01"

  # The script's password sat in a PowerShell variable (and its transcript): replace it with one
  # only Terraform's state holds. Change the value to rotate again.
  password_rotation_trigger = { adopted = "after-import" }
}

resource "breakglass_role_assignment" "bkr_admin01_global_admin" {
  principal_id  = breakglass_account.bkr_admin01.object_id
  justification = "Break glass account"
}

resource "breakglass_ca_exclusion" "emergency" {
  user_ids = [breakglass_account.bkr_admin01.object_id]
}

resource "breakglass_entra_diagnostic_setting" "signin_logs" {
  name         = "EntraSignInLogs"
  workspace_id = local.workspace_id
  # Defaults: SignInLogs, NonInteractiveUserSignInLogs and AuditLogs (the script sent only the first).
}

resource "breakglass_action_group" "breakglass" {
  resource_group_name = local.resource_group
  name                = "ag-breakglass"
  short_name          = "breakglass"

  email_receivers {
    name          = "secops"
    email_address = "secops@contoso.com"
  }

  sms_receivers {
    name         = "oncall"
    country_code = "1"
    phone_number = "4255550100"
  }
}

resource "breakglass_signin_alert" "breakglass" {
  resource_group_name = local.resource_group
  name                = "alert-breakglass-signin"
  location            = "westeurope"
  accounts            = [breakglass_account.bkr_admin01.object_id]
  workspace_id        = breakglass_entra_diagnostic_setting.signin_logs.workspace_id
  action_group_ids    = [breakglass_action_group.breakglass.id]
}

output "password" {
  description = "The new password: store it in the vault, then: terraform output -raw password"
  value       = breakglass_account.bkr_admin01.password
  sensitive   = true
}
