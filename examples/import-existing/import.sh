#!/usr/bin/env sh
# Terraform 1.0 to 1.4 (no import blocks): bring the script's objects under main.tf's resources
# one `terraform import` at a time, then `terraform plan`. The ids are those of imports.tf; see
# there for finding yours. On Terraform 1.5 or later use imports.tf instead (and do not run this).
set -eu
cd "$(dirname "$0")"
if [ -f imports.tf ]; then
  echo "import.sh: this Terraform may not read imports.tf (import blocks need 1.5): move it away first" >&2
  exit 1
fi
terraform import breakglass_account.bkr_admin01 bkr-admin01@contoso.onmicrosoft.com
terraform import breakglass_role_assignment.bkr_admin01_global_admin 4b2f53b1-cd40-453b-bd3b-1e5d06ad287b/62e90394-69f5-4237-9190-012177145e10
terraform import breakglass_ca_exclusion.emergency 4b2f53b1-cd40-453b-bd3b-1e5d06ad287b
terraform import breakglass_entra_diagnostic_setting.signin_logs EntraSignInLogs
terraform import breakglass_action_group.breakglass /subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/microsoft.insights/actionGroups/ag-breakglass
terraform import breakglass_signin_alert.breakglass /subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/scheduledQueryRules/alert-breakglass-signin
