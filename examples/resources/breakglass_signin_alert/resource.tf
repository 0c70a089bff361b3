# A severity-0 alert the moment an emergency-access account signs in — interactively or not,
# successfully or not — and a tamper alert when someone changes the accounts or a
# conditional-access policy. The provider writes the KQL (see the `query` and `tamper_query`
# attributes); the accounts' UPNs are looked up from their object ids.
#
# The chain: breakglass_account.*.object_id -> accounts; the workspace that
# breakglass_entra_diagnostic_setting exports to -> workspace_id; breakglass_action_group.*.id
# -> action_group_ids. On a brand-new workspace the plan warns that Entra's tables do not exist
# yet and the rules are written with skipQueryValidation; they alert once logs arrive.

terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {
  subscription_id = "eeb0c733-9a1c-437b-b310-e18599b1b281"
}

variable "account_object_ids" {
  description = "Object ids of the emergency-access accounts (breakglass_account.<name>.object_id)."
  type        = list(string)
  default = [
    "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05",
  ]
}

variable "workspace_id" {
  description = "The workspace Entra's logs go to (breakglass_entra_diagnostic_setting.<name>.workspace_id)."
  type        = string
  default     = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass"
}

variable "action_group_ids" {
  description = "Action groups to notify (breakglass_action_group.<name>.id)."
  type        = list(string)
  default = [
    "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/actionGroups/ag-breakglass",
  ]
}

resource "breakglass_signin_alert" "breakglass" {
  resource_group_name = "rg-breakglass-monitoring"
  name                = "breakglass-signin"
  location            = "westeurope"
  accounts            = var.account_object_ids
  workspace_id        = var.workspace_id
  action_group_ids    = var.action_group_ids

  # The defaults, spelled out: critical, every five minutes over the last five minutes (each
  # sign-in is evaluated exactly once), stateless, interactive and non-interactive sign-ins.
  severity                = 0
  evaluation_frequency    = "PT5M"
  window_size             = "PT5M"
  auto_mitigate           = false
  include_non_interactive = true

  # The tamper rule (breakglass-signin-tamper) is on without this block too.
  tamper_alert {
    severity = 1
  }
}

output "signin_query" {
  description = "The KQL of the sign-in rule, for review."
  value       = breakglass_signin_alert.breakglass.query
}

output "rule_drift" {
  description = "Changes found in the tenant that the next apply reverts; empty when in sync."
  value       = breakglass_signin_alert.breakglass.rule_drift
}
