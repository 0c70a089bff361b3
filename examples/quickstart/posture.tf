# The posture check: on every `terraform plan`, a failed assertion prints a warning naming what
# degraded (a new conditional-access policy without the exclusion, a Global Administrator made
# eligible-only, a disabled alert, a deleted diagnostic setting, a synced account, ...). `check`
# blocks need Terraform 1.5; `make demo` leaves this file out on an older Terraform.

terraform {
  required_version = ">= 1.5"
}

check "emergency_access" {
  data "breakglass_posture" "now" {
    accounts = values(module.breakglass.object_ids)
  }

  assert {
    condition = data.breakglass_posture.now.ok
    error_message = join("\n", [
      for f in data.breakglass_posture.now.findings : "${f.severity} ${f.id}: ${f.message} ${f.remedy}" if f.severity == "error"
    ])
  }
}
