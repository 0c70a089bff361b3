# The smallest useful configuration: everything else comes from the environment variables
# azurerm and azuread already read (ARM_TENANT_ID, ARM_CLIENT_ID, ARM_CLIENT_SECRET or
# ARM_USE_OIDC / ARM_USE_MSI, ...).
terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {
  tenant_id = "00000000-0000-0000-0000-000000000000"
  client_id = "00000000-0000-0000-0000-000000000000"

  # Sign in with workload identity federation from CI instead of a stored secret.
  use_oidc = true

  # Sovereign clouds: "usgovernment" or "china".
  environment = "public"
}
