# The alert is imported by the sign-in rule's ARM id (compared case-insensitively, as ARM does);
# the tamper rule is found by its name (<name>-tamper). The accounts are read back from the query:
# the object ids of a query this provider wrote, or, for a rule written by hand (such as the
# PowerShell procedure's `SigninLogs | where UserPrincipalName == "..."`), the users whose
# principal names it compares UserPrincipalName with; the next apply rewrites such a query.
terraform import breakglass_signin_alert.breakglass /subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/scheduledQueryRules/breakglass-signin
