# Two emergency-access ("break-glass") accounts, as Microsoft recommends: cloud-only, on the
# tenant's initial *.onmicrosoft.com domain, with long random passwords that work the moment
# they are needed (no forced change at first sign-in).

terraform {
  required_version = ">= 1.11"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

provider "breakglass" {}

# 1. The provider generates the password and keeps it in the sensitive `password` attribute,
#    from where it can be written to a vault. Change the trigger to rotate it.
resource "breakglass_account" "primary" {
  user_principal_name = "bg-01@contoso.onmicrosoft.com"
  display_name        = "Emergency Access 01"
  usage_location      = "NL"
  password_length     = 64

  password_rotation_trigger = {
    rotated = "2025-06"
  }

  # Certificate-based sign-in: the values a certificate maps to this account by (unique in the
  # tenant). Leave the attribute out to leave the tenant's values alone; [] removes them.
  certificate_user_ids = ["X509:<PN>bg-01@contoso.onmicrosoft.com"]

  timeouts {
    create = "10m"
  }
}

output "primary_object_id" {
  description = "Exclude this object id from conditional-access policies."
  value       = breakglass_account.primary.object_id
}

# Registered methods, read from Graph on every plan. A passkey is registered by a person with the
# key (mysignins.microsoft.com); afterwards this is true.
output "primary_has_phishing_resistant_method" {
  value = try(anytrue([for m in breakglass_account.primary.authentication_methods : m.phishing_resistant]), false)
}

output "primary_password" {
  value     = breakglass_account.primary.password
  sensitive = true
}

# 2. The password comes from elsewhere (here a variable; an ephemeral resource works too) and is
#    write-only: it is never stored in plan or state. Bump the version to set a new one.
variable "secondary_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "breakglass_account" "secondary" {
  user_principal_name = "bg-02@contoso.onmicrosoft.com"
  display_name        = "Emergency Access 02"
  password_wo         = var.secondary_password
  password_wo_version = 1

  # Destroy soft-deletes by default (restorable for 30 days); set this to purge as well.
  permanently_delete_on_destroy = false
}
