# Quickstart: one emergency-access ("break-glass") account, done properly.
#
#   1. a cloud-only user on the tenant's initial *.onmicrosoft.com domain with a long random password
#   2. a permanent active Global Administrator assignment through PIM
#   3. excluded, additively, from every conditional-access policy that could lock it out
#
# `make demo` runs this against the bundled emulated tenant, passing the credentials through the
# environment variables azurerm and azuread already read (ARM_TENANT_ID, ARM_CLIENT_ID,
# ARM_CLIENT_SECRET) plus BREAKGLASS_*_ENDPOINT overrides. Against a real tenant, set the ARM_*
# variables (or use_oidc / use_msi), drop the overrides, and change the domain below.

terraform {
  required_version = ">= 1.0"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

variable "domain" {
  description = "The tenant's initial domain (Microsoft recommends it for emergency accounts)."
  type        = string
  default     = "contoso.onmicrosoft.com"
}

variable "deletion_protection" {
  description = "Keep Terraform from destroying the account and its role (on by default; the e2e test turns it off to clean up)."
  type        = bool
  default     = true
}

data "breakglass_client_config" "current" {}

resource "breakglass_account" "emergency" {
  user_principal_name = "bg-emergency-01@${var.domain}"
  display_name        = "Emergency Access 01"
  password_length     = 64
  deletion_protection = var.deletion_protection
}

resource "breakglass_role_assignment" "global_admin" {
  principal_id  = breakglass_account.emergency.object_id
  justification       = "Emergency access account: permanent Global Administrator"
  deletion_protection = var.deletion_protection
}

resource "breakglass_ca_exclusion" "emergency" {
  user_ids = [breakglass_account.emergency.object_id]
}

output "signed_in_as" {
  description = "The service principal the provider authenticated as, and how."
  value = {
    tenant_id = data.breakglass_client_config.current.tenant_id
    client_id = data.breakglass_client_config.current.client_id
    method    = data.breakglass_client_config.current.authentication_method
  }
}

output "account" {
  description = "The emergency account's UPN and object id."
  value = {
    user_principal_name = breakglass_account.emergency.user_principal_name
    object_id           = breakglass_account.emergency.object_id
  }
}

output "global_admin_status" {
  description = "PIM status of the permanent Global Administrator assignment."
  value       = breakglass_role_assignment.global_admin.status
}

output "excluded_from_policies" {
  description = "Conditional-access policies that now exclude the account."
  value       = breakglass_ca_exclusion.emergency.policy_ids
}

output "password" {
  description = "Store it in a vault, then print it once with: terraform output -raw password"
  value       = breakglass_account.emergency.password
  sensitive   = true
}
