# Judge the tenant's emergency access on every plan: a `check` block (Terraform 1.5 or later)
# warns — it does not fail the plan — when a finding is an error.

terraform {
  required_version = ">= 1.5"
  required_providers {
    breakglass = {
      source = "registry.terraform.io/breakglass/breakglass"
    }
  }
}

variable "emergency_account_ids" {
  description = "Object ids of the break-glass accounts, e.g. breakglass_account.emergency[*].object_id."
  type        = list(string)
  default = [
    "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05",
    "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06",
  ]
}

check "emergency_access" {
  data "breakglass_posture" "now" {
    accounts = var.emergency_account_ids
  }

  assert {
    condition = data.breakglass_posture.now.ok
    error_message = join("\n", [
      for f in data.breakglass_posture.now.findings : "${f.severity} ${f.id}: ${f.message} ${f.remedy}"
    ])
  }
}

# Outside a check block the same data source can feed outputs or other resources; a scoped
# data source (inside `check`) is visible only there.
data "breakglass_posture" "report" {
  accounts = var.emergency_account_ids
}

output "emergency_access_warnings" {
  description = "Findings that are warnings only (they do not make `ok` false)."
  value       = [for f in data.breakglass_posture.report.findings : f.message if f.severity == "warning"]
}
