output "object_ids" {
  description = "The accounts' object ids, by key."
  value       = { for k, a in breakglass_account.this : k => a.object_id }
}

output "user_principal_names" {
  description = "The accounts' user principal names, by key."
  value       = { for k, a in breakglass_account.this : k => a.user_principal_name }
}

output "passwords" {
  description = "The generated passwords, by key: store them in a vault (terraform output -json passwords)."
  value       = { for k, a in breakglass_account.this : k => a.password }
  sensitive   = true
}

output "global_admin_status" {
  description = "PIM status of each account's permanent Global Administrator assignment."
  value       = { for k, r in breakglass_role_assignment.global_admin : k => r.status }
}

output "excluded_from_policies" {
  description = "Conditional-access policies that exclude every account."
  value       = breakglass_ca_exclusion.this.policy_ids
}

output "alert_query" {
  description = "The KQL of the sign-in alert, for review."
  value       = breakglass_signin_alert.this.query
}

output "posture_ok" {
  description = "True when the posture has no error finding."
  value       = data.breakglass_posture.this.ok
}

output "posture_findings" {
  description = "What is wrong with emergency access, each with severity and remedy."
  value       = data.breakglass_posture.this.findings
}
