# Terraform 1.5 or later: the plan imports these, then applies main.tf's improvements in place.
# On Terraform 1.0 to 1.4, delete this file and run ./import.sh instead.
#
# The ids are the ones the script's tenant has (the emulated tenant's `script-made` seed). In your
# tenant: the account by its UPN as written; the role assignment as <object id>/<role id>, the
# object id from `az ad user show --id <upn> --query id -o tsv`; the exclusion by that object id.

terraform {
  required_version = ">= 1.5"
}

import {
  to = breakglass_account.bkr_admin01
  id = "bkr-admin01@contoso.onmicrosoft.com"
}

import {
  to = breakglass_role_assignment.bkr_admin01_global_admin
  id = "4b2f53b1-cd40-453b-bd3b-1e5d06ad287b/62e90394-69f5-4237-9190-012177145e10"
}

import {
  to = breakglass_ca_exclusion.emergency
  id = "4b2f53b1-cd40-453b-bd3b-1e5d06ad287b"
}

import {
  to = breakglass_entra_diagnostic_setting.signin_logs
  id = "EntraSignInLogs"
}

import {
  to = breakglass_action_group.breakglass
  id = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/microsoft.insights/actionGroups/ag-breakglass"
}

import {
  to = breakglass_signin_alert.breakglass
  id = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/scheduledQueryRules/alert-breakglass-signin"
}
