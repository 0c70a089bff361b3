# Ship Microsoft Entra's sign-in and audit logs to the Log Analytics workspace the break-glass
# alerts watch. The defaults are exactly what breakglass_signin_alert reads: SignInLogs,
# NonInteractiveUserSignInLogs and AuditLogs.
#
# The provider's principal needs an Azure role at /providers/Microsoft.aadiam (Entra directory
# roles and subscription roles do not count); the plan checks it and prints the
# `az role assignment create ... --scope /providers/Microsoft.aadiam` that grants it. A tenant
# has at most five diagnostic settings, shared with other teams; the plan refuses a sixth and
# warns when another setting already exports the same logs to this workspace.

terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

variable "workspace_id" {
  description = "Resource id of the Log Analytics workspace (e.g. azurerm_log_analytics_workspace.x.id)."
  type        = string
  default     = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass"
}

# 1. What the alerts need (the default categories).
resource "breakglass_entra_diagnostic_setting" "breakglass" {
  name         = "breakglass-monitoring"
  workspace_id = var.workspace_id
}

# 2. Everything CISA SCuBA MS.AAD.4.1 asks to send to the security operations centre, e.g. to
#    a SIEM's own workspace (add ManagedIdentitySignInLogs and ProvisioningLogs when those
#    features are in use). Do not export the same categories to the same workspace twice:
#    each setting's copy is ingested and billed.
variable "soc_workspace_id" {
  description = "Resource id of the security operations centre's workspace."
  type        = string
  default     = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-soc/providers/Microsoft.OperationalInsights/workspaces/law-soc"
}

resource "breakglass_entra_diagnostic_setting" "soc" {
  name         = "soc-scuba"
  workspace_id = var.soc_workspace_id
  categories = [
    "AuditLogs",
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "ADFSSignInLogs",
    "RiskyUsers",
    "UserRiskEvents",
    "RiskyServicePrincipals",
    "ServicePrincipalRiskEvents",
    "EnrichedOffice365AuditLogs",
    "MicrosoftGraphActivityLogs",
  ]
}

output "workspace_id" {
  description = "Feed this into breakglass_signin_alert.workspace_id."
  value       = breakglass_entra_diagnostic_setting.breakglass.workspace_id
}
