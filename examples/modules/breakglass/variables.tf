variable "domain" {
  description = "The tenant's initial domain, e.g. contoso.onmicrosoft.com (Microsoft recommends it for emergency accounts: it survives custom-domain and federation failures)."
  type        = string
}

variable "accounts" {
  description = "The emergency accounts, by a short key: each becomes <account_prefix><key>@<domain>. Microsoft recommends two or more."
  type = map(object({
    display_name = string
  }))
  default = {
    "01" = { display_name = "Emergency Access 01" }
    "02" = { display_name = "Emergency Access 02" }
  }
}

variable "account_prefix" {
  description = "Prefix of the accounts' user principal names."
  type        = string
  default     = "bg-emergency-"
}

variable "exclusion_group_ids" {
  description = "Object ids of groups to exclude from conditional access as well (e.g. an existing emergency-access exclusion group)."
  type        = list(string)
  default     = []
}

variable "workspace_id" {
  description = "Resource id of the Log Analytics workspace that receives the Entra sign-in and audit logs."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group for the action group and the alert rules."
  type        = string
}

variable "location" {
  description = "Region of the alert rules (the workspace's region)."
  type        = string
}

variable "email_receivers" {
  description = "Who is mailed when an emergency account signs in or is tampered with."
  type = list(object({
    name          = string
    email_address = string
  }))
}

variable "sms_receivers" {
  description = "Who is texted (country code and number, digits only)."
  type = list(object({
    name         = string
    country_code = string
    phone_number = string
  }))
  default = []
}

variable "names" {
  description = "Names of the tenant-level diagnostic setting, the action group and the sign-in alert."
  type = object({
    diagnostic_setting = string
    action_group       = string
    action_group_short = string
    alert              = string
  })
  default = {
    diagnostic_setting = "breakglass-entra-logs"
    action_group       = "ag-breakglass"
    action_group_short = "breakglass"
    alert              = "breakglass-signin"
  }
}

variable "deletion_protection" {
  description = "Keep Terraform from destroying or replacing the accounts and their role assignments."
  type        = bool
  default     = true
}
