# Who the provider signs in as: handy for excluding the automation's own principal, granting it
# a role on an administrative unit, or just checking the credentials work.
terraform {
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

data "breakglass_client_config" "current" {}

output "provider_principal" {
  value = {
    tenant_id = data.breakglass_client_config.current.tenant_id
    object_id = data.breakglass_client_config.current.object_id
    method    = data.breakglass_client_config.current.authentication_method
  }
}
