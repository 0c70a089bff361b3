# An action group is imported by its ARM id (compared case-insensitively, as ARM does):
terraform import breakglass_action_group.oncall /subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.Insights/actionGroups/ag-breakglass
