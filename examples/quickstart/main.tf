# Quickstart: point the provider at a tenant and read who it signed in as.
#
# `make demo` runs this against the bundled emulated tenant, passing the credentials through the
# environment variables azurerm and azuread already read (ARM_TENANT_ID, ARM_CLIENT_ID,
# ARM_CLIENT_SECRET) plus BREAKGLASS_*_ENDPOINT overrides. Against a real tenant, set the ARM_*
# variables (or use_oidc / use_msi) and drop the overrides.
#
# The break-glass resources (account, permanent Global Administrator assignment, conditional-access
# exclusions, sign-in alert) join this example as they are built; today it proves the whole path
# terraform → provider → token endpoint → Microsoft Graph.

terraform {
  required_version = ">= 1.0"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

data "breakglass_client_config" "current" {}

output "tenant_id" {
  description = "The tenant the provider signed in to."
  value       = data.breakglass_client_config.current.tenant_id
}

output "client_id" {
  description = "The application (client) id the provider authenticated as."
  value       = data.breakglass_client_config.current.client_id
}

output "object_id" {
  description = "The object id of that service principal in the tenant."
  value       = data.breakglass_client_config.current.object_id
}

output "authentication_method" {
  description = "How the provider signed in (client secret, certificate, OIDC, managed identity, Azure CLI)."
  value       = data.breakglass_client_config.current.authentication_method
}
