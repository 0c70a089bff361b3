# Quickstart: the whole emergency-access ("break-glass") procedure, done properly, as a root
# module of an existing stack would use ../modules/breakglass:
#
#   1. two cloud-only users on the tenant's initial *.onmicrosoft.com domain, long random passwords
#   2. a permanent active Global Administrator assignment for each, through PIM
#   3. both excluded, additively, from every conditional-access policy that could lock them out
#   4. Entra sign-in and audit logs to Log Analytics, an action group, a sign-in alert that mails
#      and texts on any sign-in of either account, and a tamper alert on changes to them
#   5. a posture check (posture.tf, Terraform 1.5 or later) that warns on every plan when any of
#      it degrades
#
# `make demo` runs this against the bundled emulated tenant, passing the credentials through the
# environment variables azurerm and azuread already read (ARM_TENANT_ID, ARM_CLIENT_ID,
# ARM_CLIENT_SECRET) plus BREAKGLASS_*_ENDPOINT overrides. Against a real tenant, set the ARM_*
# variables (or use_oidc / use_msi), drop the overrides, and change the variables below.

terraform {
  required_version = ">= 1.0"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

variable "subscription_id" {
  description = "The subscription holding the monitoring resources."
  type        = string
  default     = "eeb0c733-9a1c-437b-b310-e18599b1b281"
}

variable "domain" {
  description = "The tenant's initial domain (Microsoft recommends it for emergency accounts)."
  type        = string
  default     = "contoso.onmicrosoft.com"
}

variable "deletion_protection" {
  description = "Keep Terraform from destroying the accounts and their roles (on by default; the e2e test turns it off to clean up)."
  type        = bool
  default     = true
}

provider "breakglass" {
  subscription_id = var.subscription_id
}

data "breakglass_client_config" "current" {}

module "breakglass" {
  source = "../modules/breakglass"

  domain              = var.domain
  workspace_id        = "/subscriptions/${var.subscription_id}/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass"
  resource_group_name = "rg-breakglass-monitoring"
  location            = "westeurope"
  deletion_protection = var.deletion_protection

  email_receivers = [{ name = "soc", email_address = "soc@contoso.com" }]
  sms_receivers   = [{ name = "oncall", country_code = "1", phone_number = "4255550100" }]
}

output "signed_in_as" {
  description = "The service principal the provider authenticated as, and how."
  value = {
    tenant_id = data.breakglass_client_config.current.tenant_id
    client_id = data.breakglass_client_config.current.client_id
    method    = data.breakglass_client_config.current.authentication_method
  }
}

output "accounts" {
  description = "The emergency accounts: user principal name => object id."
  value       = { for k, upn in module.breakglass.user_principal_names : upn => module.breakglass.object_ids[k] }
}

output "global_admin_status" {
  description = "PIM status of each account's permanent Global Administrator assignment."
  value       = module.breakglass.global_admin_status
}

output "excluded_from_policies" {
  description = "Conditional-access policies that now exclude the accounts."
  value       = module.breakglass.excluded_from_policies
}

output "alert_query" {
  description = "The KQL the sign-in alert runs."
  value       = module.breakglass.alert_query
}

output "posture_warnings" {
  description = "Posture findings that are warnings (they do not fail the check)."
  value       = [for f in module.breakglass.posture_findings : "${f.id}: ${f.message}" if f.severity == "warning"]
}

output "passwords" {
  description = "Store them in a vault, then print once with: terraform output -json passwords"
  value       = module.breakglass.passwords
  sensitive   = true
}
