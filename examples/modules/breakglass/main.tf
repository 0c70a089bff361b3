# The whole emergency-access procedure, declaratively: accounts, permanent Global Administrator,
# conditional-access exclusion, sign-in logs to Log Analytics, an action group, sign-in and
# tamper alerts, and the posture of it all. See README.md.

resource "breakglass_account" "this" {
  for_each = var.accounts

  user_principal_name = "${var.account_prefix}${each.key}@${var.domain}"
  display_name        = each.value.display_name
  password_length     = 64
  deletion_protection = var.deletion_protection
}

resource "breakglass_role_assignment" "global_admin" {
  for_each = breakglass_account.this

  principal_id        = each.value.object_id
  justification       = "Emergency access account: permanent Global Administrator"
  deletion_protection = var.deletion_protection
}

resource "breakglass_ca_exclusion" "this" {
  user_ids  = [for a in breakglass_account.this : a.object_id]
  group_ids = length(var.exclusion_group_ids) > 0 ? var.exclusion_group_ids : null
}

resource "breakglass_entra_diagnostic_setting" "this" {
  name         = var.names.diagnostic_setting
  workspace_id = var.workspace_id
  # Defaults: SignInLogs, NonInteractiveUserSignInLogs, AuditLogs — what the alerts read.
}

resource "breakglass_action_group" "this" {
  resource_group_name = var.resource_group_name
  name                = var.names.action_group
  short_name          = var.names.action_group_short

  dynamic "email_receivers" {
    for_each = var.email_receivers
    content {
      name          = email_receivers.value.name
      email_address = email_receivers.value.email_address
    }
  }

  dynamic "sms_receivers" {
    for_each = var.sms_receivers
    content {
      name         = sms_receivers.value.name
      country_code = sms_receivers.value.country_code
      phone_number = sms_receivers.value.phone_number
    }
  }
}

resource "breakglass_signin_alert" "this" {
  resource_group_name = var.resource_group_name
  name                = var.names.alert
  location            = var.location
  accounts            = [for a in breakglass_account.this : a.object_id]
  workspace_id        = breakglass_entra_diagnostic_setting.this.workspace_id
  action_group_ids    = [breakglass_action_group.this.id]

  # On by default: a second rule on AuditLogs for password resets, method changes, disable,
  # delete and role removals of the accounts, and any conditional-access policy change.
  tamper_alert {}
}

# What the tenant's emergency access looks like now; the calling root module can assert on it
# in a `check` block (Terraform 1.5 or later).
data "breakglass_posture" "this" {
  accounts     = [for a in breakglass_account.this : a.object_id]
  workspace_id = breakglass_entra_diagnostic_setting.this.workspace_id
  alert_ids    = [breakglass_signin_alert.this.id]

  depends_on = [
    breakglass_role_assignment.global_admin,
    breakglass_ca_exclusion.this,
    breakglass_signin_alert.this,
  ]
}
