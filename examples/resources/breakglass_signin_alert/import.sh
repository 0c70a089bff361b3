# The alert is imported by the sign-in rule's ARM id (compared case-insensitively, as ARM does);
# the accounts are read back from its query, and the tamper rule is found by its name
# (<name>-tamper):
terraform import breakglass_signin_alert.breakglass /subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/scheduledQueryRules/breakglass-signin
