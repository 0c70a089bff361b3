//! The bad-input table: for every validated attribute of every resource, data source and the
//! provider block, a wrong value, and what Terraform must then say — an error diagnostic at that
//! attribute's line (so the provider's attribute path reached Terraform) — with nothing written
//! to the tenant.
//!
//! A row is `(block, attribute path, HCL body, pattern)`: `block` is a resource type,
//! `data.<type>` for a data source or `provider`; the body is the whole block body (so each row
//! stands alone); the pattern is a regex over the diagnostic's summary and detail. Rows for the
//! declared validators are checked at `terraform validate`; `TENANT_CASES` are inputs only the
//! tenant can refuse (a domain it does not hold), checked at plan against the emulated tenant.
//!
//! `every_validated_attribute_has_a_row` fails when an attribute with declared validators has
//! fewer rows than validators (so a new attribute, or a new rule, must join the table), or when
//! a row names an attribute no schema has.

use std::collections::BTreeMap;

use breakglass::framework::{Attribute, AttributeKind, Block, Provider, Schema};
use breakglass::provider::BreakglassProvider;
use regex::Regex;
use serde_json::Value as Json;

use crate::harness::{required_providers, FakeTenant, Terraform, Workspace};

type Row = (&'static str, &'static str, &'static str, &'static str);

/// Rows checked at `terraform validate` (any Terraform ≥ 1.0).
pub const CASES: &[Row] = &[
    // ---- breakglass_account
    (
        "breakglass_account",
        "user_principal_name",
        "user_principal_name = \"bg-no-at-sign.contoso.com\"\ndisplay_name = \"x\"",
        "Invalid user principal name.*alias@domain",
    ),
    (
        "breakglass_account",
        "mail_nickname",
        "user_principal_name = \"bg-a@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\nmail_nickname = \"\"",
        "Invalid mail nickname.*1 to 64 characters",
    ),
    (
        "breakglass_account",
        "mail_nickname",
        "user_principal_name = \"bg-b@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\nmail_nickname = \"bg@home\"",
        "Invalid mail nickname.*may contain only ASCII",
    ),
    (
        "breakglass_account",
        "usage_location",
        "user_principal_name = \"bg-c@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\nusage_location = \"NLD\"",
        "Invalid usage location.*2 to 2 characters",
    ),
    (
        "breakglass_account",
        "usage_location",
        "user_principal_name = \"bg-d@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\nusage_location = \"nl\"",
        "Invalid usage location.*upper-case",
    ),
    (
        "breakglass_account",
        "password_length",
        "user_principal_name = \"bg-e@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\npassword_length = 8",
        "Invalid password length.*16 to 256",
    ),
    (
        "breakglass_account",
        "password_wo_version",
        "user_principal_name = \"bg-f@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\npassword_wo_version = 1.5",
        "Invalid number.*whole number",
    ),
    (
        "breakglass_account",
        "password_wo_version",
        "user_principal_name = \"bg-g@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\npassword_wo_version = 1",
        "Missing password_wo.*`password_wo`",
    ),
    (
        "breakglass_account",
        "timeouts.create",
        "user_principal_name = \"bg-h@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ntimeouts {\n  create = \"5 minutes\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_account",
        "timeouts.read",
        "user_principal_name = \"bg-i@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ntimeouts {\n  read = \"-5m\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_account",
        "timeouts.update",
        "user_principal_name = \"bg-j@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ntimeouts {\n  update = \"9999999999h\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_account",
        "timeouts.delete",
        "user_principal_name = \"bg-k@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ntimeouts {\n  delete = \"\"\n}",
        "Invalid timeout",
    ),
    // ---- breakglass_role_assignment
    (
        "breakglass_role_assignment",
        "principal_id",
        "principal_id = \"bg-01@contoso.onmicrosoft.com\"",
        "Not an object id.*not a GUID",
    ),
    (
        "breakglass_role_assignment",
        "role_definition_id",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nrole_definition_id = \"Global Administrator\"",
        "Not an object id.*not a GUID",
    ),
    (
        "breakglass_role_assignment",
        "directory_scope_id",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\ndirectory_scope_id = \"administrativeUnits/3ed29667-91a0-4a96-9654-80c9dde3898d\"",
        "Invalid directory scope.*must start with `/`",
    ),
    (
        "breakglass_role_assignment",
        "justification",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\njustification = \"   \"",
        "Empty value",
    ),
    (
        "breakglass_role_assignment",
        "justification",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nassignment_method = \"direct\"\njustification = \"Emergency access\"",
        "Not available for direct assignments.*justification",
    ),
    (
        "breakglass_role_assignment",
        "ticket_number",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nticket_number = \"\"",
        "Empty value",
    ),
    (
        "breakglass_role_assignment",
        "ticket_number",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nassignment_method = \"direct\"\nticket_number = \"CHG-1\"",
        "Not available for direct assignments.*ticket_number",
    ),
    (
        "breakglass_role_assignment",
        "ticket_system",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nticket_system = \"\\t\"",
        "Empty value",
    ),
    (
        "breakglass_role_assignment",
        "ticket_system",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nassignment_method = \"direct\"\nticket_system = \"ServiceNow\"",
        "Not available for direct assignments.*ticket_system",
    ),
    (
        "breakglass_role_assignment",
        "assignment_method",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nassignment_method = \"eligible\"",
        "Invalid assignment method.*`pim`, `direct`",
    ),
    (
        "breakglass_role_assignment",
        "timeouts.create",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\ntimeouts {\n  create = \"1y\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_role_assignment",
        "timeouts.read",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\ntimeouts {\n  read = \"ten minutes\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_role_assignment",
        "timeouts.update",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\ntimeouts {\n  update = \"5\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_role_assignment",
        "timeouts.delete",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\ntimeouts {\n  delete = \"PT5M\"\n}",
        "Invalid timeout",
    ),
    // ---- breakglass_ca_exclusion
    (
        "breakglass_ca_exclusion",
        "user_ids",
        "user_ids = [\"bg-01@contoso.onmicrosoft.com\"]",
        "Not an object id.*\"bg-01@contoso.onmicrosoft.com\"",
    ),
    (
        "breakglass_ca_exclusion",
        "user_ids",
        "user_ids = []",
        "No principal to exclude",
    ),
    (
        "breakglass_ca_exclusion",
        "group_ids",
        "group_ids = [\"CA-Exclusion-EmergencyAccess\"]",
        "Not an object id.*CA-Exclusion-EmergencyAccess",
    ),
    (
        "breakglass_ca_exclusion",
        "policy_filter.include_states",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\npolicy_filter {\n  include_states = []\n}",
        "No policy state in scope",
    ),
    (
        "breakglass_ca_exclusion",
        "policy_filter.include_states",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\npolicy_filter {\n  include_states = [\"on\"]\n}",
        "Unknown policy state.*\"on\"",
    ),
    (
        "breakglass_ca_exclusion",
        "policy_filter.exclude_policy_ids",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\npolicy_filter {\n  exclude_policy_ids = [\"MFA for all users\"]\n}",
        "Not an object id",
    ),
    (
        "breakglass_ca_exclusion",
        "timeouts.create",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\ntimeouts {\n  create = \"30 m\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_ca_exclusion",
        "timeouts.read",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\ntimeouts {\n  read = \"1e3s\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_ca_exclusion",
        "timeouts.update",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\ntimeouts {\n  update = \"m5\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_ca_exclusion",
        "timeouts.delete",
        "user_ids = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\ntimeouts {\n  delete = \"2562048h\"\n}",
        "Invalid timeout",
    ),
    // ---- the provider block (each row its own aliased block)
    // ---- breakglass_account: certificate-based authentication
    (
        "breakglass_account",
        "certificate_user_ids",
        "user_principal_name = \"bg-cu1@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ncertificate_user_ids = [\"X509:<PN>u0@contoso.com\",\"X509:<PN>u1@contoso.com\",\"X509:<PN>u2@contoso.com\",\"X509:<PN>u3@contoso.com\",\"X509:<PN>u4@contoso.com\",\"X509:<PN>u5@contoso.com\",\"X509:<PN>u6@contoso.com\",\"X509:<PN>u7@contoso.com\",\"X509:<PN>u8@contoso.com\",\"X509:<PN>u9@contoso.com\",\"X509:<PN>u10@contoso.com\"]",
        "Invalid certificate user ids.*0 to 10",
    ),
    (
        "breakglass_account",
        "certificate_user_ids",
        "user_principal_name = \"bg-cu2@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ncertificate_user_ids = [\"bg@contoso.com\"]",
        "Invalid certificate user ids.*not a certificate user id",
    ),
    (
        "breakglass_account",
        "certificate_user_ids",
        "user_principal_name = \"bg-cu3@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\ncertificate_user_ids = [\"X509:<PN>a@contoso.com\", \"x509:<pn>A@contoso.com\"]",
        "Invalid certificate user ids.*twice",
    ),
    // ---- breakglass_action_group
    (
        "breakglass_action_group",
        "resource_group_name",
        "resource_group_name = \" \"\nname = \"ag\"\nshort_name = \"bg\"",
        "Invalid resource group name",
    ),
    (
        "breakglass_action_group",
        "name",
        "resource_group_name = \"rg\"\nname = \"\"\nshort_name = \"bg\"",
        "Invalid action group name",
    ),
    (
        "breakglass_action_group",
        "short_name",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"thirteen-char\"",
        "Invalid short name.*1 to 12 characters",
    ),
    (
        "breakglass_action_group",
        "email_receivers.name",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\nemail_receivers {\n  name = \"\"\n  email_address = \"soc@contoso.com\"\n}",
        "Invalid receiver name",
    ),
    (
        "breakglass_action_group",
        "email_receivers.email_address",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\nemail_receivers {\n  name = \"soc\"\n  email_address = \"soc.contoso.com\"\n}",
        "Invalid e-mail address",
    ),
    (
        "breakglass_action_group",
        "sms_receivers.name",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\nsms_receivers {\n  name = \"\"\n  country_code = \"1\"\n  phone_number = \"4255550100\"\n}",
        "Invalid receiver name",
    ),
    (
        "breakglass_action_group",
        "sms_receivers.country_code",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\nsms_receivers {\n  name = \"oncall\"\n  country_code = \"+1\"\n  phone_number = \"4255550100\"\n}",
        "Invalid country code",
    ),
    (
        "breakglass_action_group",
        "sms_receivers.phone_number",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\nsms_receivers {\n  name = \"oncall\"\n  country_code = \"1\"\n  phone_number = \"555-CALL-NOW\"\n}",
        "Invalid phone number.*digits only",
    ),
    (
        "breakglass_action_group",
        "timeouts.create",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\ntimeouts {\n  create = \"5 minutes\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_action_group",
        "timeouts.read",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\ntimeouts {\n  read = \"-1m\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_action_group",
        "timeouts.update",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\ntimeouts {\n  update = \"1d\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_action_group",
        "timeouts.delete",
        "resource_group_name = \"rg\"\nname = \"ag\"\nshort_name = \"bg\"\ntimeouts {\n  delete = \"\"\n}",
        "Invalid timeout",
    ),
    // ---- breakglass_entra_diagnostic_setting
    (
        "breakglass_entra_diagnostic_setting",
        "name",
        "name = \"\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"",
        "Invalid (diagnostic setting|setting) name",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "workspace_id",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/workspaces/law\"",
        "Invalid resource id.*Log Analytics workspace",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "categories",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\ncategories = []",
        "No category to export",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "categories",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\ncategories = [\"Sign-in logs\"]",
        "Invalid category",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "timeouts.create",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\ntimeouts {\n  create = \"10 m\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "timeouts.read",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\ntimeouts {\n  read = \"5\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "timeouts.update",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\ntimeouts {\n  update = \"1w\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_entra_diagnostic_setting",
        "timeouts.delete",
        "name = \"diag\"\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\ntimeouts {\n  delete = \"-10m\"\n}",
        "Invalid timeout",
    ),
    // ---- breakglass_restricted_unit
    (
        "breakglass_restricted_unit",
        "display_name",
        "display_name = \"\"",
        "Invalid display name.*1 to 256",
    ),
    (
        "breakglass_restricted_unit",
        "members",
        "display_name = \"Emergency access\"\nmembers = [\"bg-emergency-01@contoso.onmicrosoft.com\"]",
        "GUID",
    ),
    (
        "breakglass_restricted_unit",
        "managers.principal_id",
        "display_name = \"Emergency access\"\nmanagers {\n  principal_id = \"terraform\"\n}",
        "GUID",
    ),
    (
        "breakglass_restricted_unit",
        "managers.role_definition_id",
        "display_name = \"Emergency access\"\nmanagers {\n  principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\n  role_definition_id = \"Privileged Authentication Administrator\"\n}",
        "GUID",
    ),
    (
        "breakglass_restricted_unit",
        "managers.role_definition_id",
        "display_name = \"Emergency access\"\nmanagers {\n  principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\n  role_definition_id = \"62e90394-69f5-4237-9190-012177145e10\"\n}",
        "Role cannot be scoped to a unit.*Global Administrator",
    ),
    (
        "breakglass_restricted_unit",
        "timeouts.create",
        "display_name = \"Emergency access\"\ntimeouts {\n  create = \"1h 30m\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_restricted_unit",
        "timeouts.read",
        "display_name = \"Emergency access\"\ntimeouts {\n  read = \"0.5\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_restricted_unit",
        "timeouts.update",
        "display_name = \"Emergency access\"\ntimeouts {\n  update = \"PT10M\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_restricted_unit",
        "timeouts.delete",
        "display_name = \"Emergency access\"\ntimeouts {\n  delete = \"ten\"\n}",
        "Invalid timeout",
    ),
    // ---- breakglass_signin_alert
    (
        "breakglass_signin_alert",
        "resource_group_name",
        "resource_group_name = \"\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]",
        "Invalid resource group name",
    ),
    (
        "breakglass_signin_alert",
        "name",
        "resource_group_name = \"rg\"\nname = \" \"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]",
        "Invalid alert rule name",
    ),
    (
        "breakglass_signin_alert",
        "location",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]",
        "Invalid location",
    ),
    (
        "breakglass_signin_alert",
        "accounts",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = []\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]",
        "Invalid number of accounts",
    ),
    (
        "breakglass_signin_alert",
        "accounts",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"bg-emergency-01@contoso.onmicrosoft.com\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]",
        "GUID",
    ),
    (
        "breakglass_signin_alert",
        "workspace_id",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"law-breakglass\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]",
        "Invalid resource id.*Log Analytics workspace",
    ),
    (
        "breakglass_signin_alert",
        "action_group_ids",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = []",
        "No action group",
    ),
    (
        "breakglass_signin_alert",
        "action_group_ids",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"]",
        "Invalid resource id.*action group",
    ),
    (
        "breakglass_signin_alert",
        "severity",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\nseverity = 5",
        "Invalid severity.*0 to 4",
    ),
    (
        "breakglass_signin_alert",
        "evaluation_frequency",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\nevaluation_frequency = \"PT7X\"",
        "Invalid duration",
    ),
    (
        "breakglass_signin_alert",
        "window_size",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\nwindow_size = \"PT3M\"",
        "Invalid duration",
    ),
    (
        "breakglass_signin_alert",
        "window_size",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\nevaluation_frequency = \"PT1H\"\nwindow_size = \"PT5M\"",
        "window",
    ),
    (
        "breakglass_signin_alert",
        "tamper_alert.severity",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\ntamper_alert {\n  severity = -1\n}",
        "Invalid severity",
    ),
    (
        "breakglass_signin_alert",
        "timeouts.create",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\ntimeouts {\n  create = \"2 h\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_signin_alert",
        "timeouts.read",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\ntimeouts {\n  read = \"1s1\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_signin_alert",
        "timeouts.update",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\ntimeouts {\n  update = \"+\"\n}",
        "Invalid timeout",
    ),
    (
        "breakglass_signin_alert",
        "timeouts.delete",
        "resource_group_name = \"rg\"\nname = \"bg-signin\"\nlocation = \"westeurope\"\naccounts = [\"46810bcd-886d-469e-a664-c8d3691d74fd\"]\nworkspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law\"\naction_group_ids = [\"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg/providers/Microsoft.Insights/actionGroups/ag\"]\ntimeouts {\n  delete = \"P1D\"\n}",
        "Invalid timeout",
    ),
    // ---- data.breakglass_posture
    (
        "data.breakglass_posture",
        "accounts",
        "accounts = []",
        "1 to 50",
    ),
    (
        "data.breakglass_posture",
        "accounts",
        "accounts = [\"bg-emergency-01@contoso.onmicrosoft.com\"]",
        "GUID",
    ),
    (
        "provider",
        "tenant_id",
        "tenant_id = \"contoso.onmicrosoft.com\"",
        "Invalid `tenant_id`",
    ),
    (
        "provider",
        "client_id",
        "client_id = \"terraform-breakglass\"",
        "Invalid `client_id`",
    ),
    (
        "provider",
        "subscription_id",
        "subscription_id = \"/subscriptions/1\"",
        "Invalid `subscription_id`",
    ),
    (
        "provider",
        "client_certificate",
        "client_certificate = \"not a certificate\"",
        "Invalid `client_certificate`",
    ),
    (
        "provider",
        "client_certificate_path",
        "client_certificate = \"not a certificate either\"\nclient_certificate_path = \"/tmp/client.pem\"",
        "Conflicting client certificate settings",
    ),
    (
        "provider",
        "oidc_request_url",
        "oidc_request_url = \"http://token.actions.example.com/\"",
        "Invalid `oidc_request_url`",
    ),
    (
        "provider",
        "msi_endpoint",
        "msi_endpoint = \"ftp://169.254.169.254/metadata/identity/oauth2/token\"",
        "Invalid `msi_endpoint`",
    ),
    (
        "provider",
        "environment",
        "environment = \"germany\"",
        "Unknown Azure environment.*public",
    ),
    (
        "provider",
        "login_endpoint",
        "login_endpoint = \"login.microsoftonline.com\"",
        "Invalid `login_endpoint`",
    ),
    (
        "provider",
        "graph_endpoint",
        "graph_endpoint = \"http://graph.example.com\"",
        "Invalid `graph_endpoint`",
    ),
    (
        "provider",
        "resource_manager_endpoint",
        "resource_manager_endpoint = \"https://\"",
        "Invalid `resource_manager_endpoint`",
    ),
    // Not a declared validator: the provider's rule across authentication methods.
    (
        "provider",
        "use_msi",
        "client_secret = \"s3cret-in-a-bad-block\"\nuse_msi = true",
        "Conflicting authentication methods",
    ),
];

/// Rows on write-only attributes: Terraform ≥ 1.11 (older ones are refused them outright, see
/// `protocol::real_terraform_drives_the_whole_resource_lifecycle_tf1_0`).
pub const WRITE_ONLY_CASES: &[Row] = &[
    (
        "breakglass_account",
        "password_wo",
        "user_principal_name = \"bg-wo-a@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\npassword_wo = \"short\"\npassword_wo_version = 1",
        "Password does not meet Microsoft Entra complexity rules",
    ),
    (
        "breakglass_account",
        "password_wo",
        "user_principal_name = \"bg-wo-b@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\npassword_wo = \"Corr3ct-Horse-Battery\"\npassword_wo_version = 1\npassword_length = 32",
        "Conflicting password settings.*password_length",
    ),
    (
        "breakglass_account",
        "password_wo",
        "user_principal_name = \"bg-wo-c@contoso.onmicrosoft.com\"\ndisplay_name = \"x\"\npassword_wo = \"Corr3ct-Horse-Battery\"",
        "Missing password_wo_version",
    ),
];

/// Inputs only the tenant can refuse, checked at plan against the emulated tenant's default
/// seed (`contoso.net` is unverified, `fabrikam.com` federated).
pub const TENANT_CASES: &[Row] = &[
    (
        "breakglass_account",
        "user_principal_name",
        "user_principal_name = \"bg-t1@contoso.net\"\ndisplay_name = \"x\"",
        "Unsuitable domain for a break-glass account.*not verified",
    ),
    (
        "breakglass_account",
        "user_principal_name",
        "user_principal_name = \"bg-t2@fabrikam.com\"\ndisplay_name = \"x\"",
        "Unsuitable domain for a break-glass account.*federated",
    ),
    (
        "breakglass_account",
        "user_principal_name",
        "user_principal_name = \"bg-t3@example.org\"\ndisplay_name = \"x\"",
        "Unsuitable domain for a break-glass account.*not a domain of this tenant",
    ),
    (
        "breakglass_role_assignment",
        "role_definition_id",
        "principal_id = \"46810bcd-886d-469e-a664-c8d3691d74fd\"\nrole_definition_id = \"00000000-0000-0000-0000-00000000dead\"\nassignment_method = \"direct\"",
        "No such directory role",
    ),
];

// ---- the configuration a table becomes ---------------------------------------------------------

/// Where each row's attribute sits in the generated `main.tf` (1-based line).
struct Placed {
    row: Row,
    line: usize,
}

/// One block per row, named `case_<i>`; provider rows become aliased provider blocks, each with
/// a data source that uses it (Terraform validates a provider configuration only when
/// something uses it).
fn configuration(rows: &[Row]) -> (String, Vec<Placed>) {
    let mut hcl = required_providers();
    let mut placed = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let (block, path, body, _) = *row;
        let name = format!("case_{i}");
        let header = match block {
            "provider" => format!("provider \"breakglass\" {{\n  alias = \"{name}\""),
            data if data.starts_with("data.") => {
                format!("data \"{}\" \"{name}\" {{", &data[5..])
            }
            resource => format!("resource \"{resource}\" \"{name}\" {{"),
        };
        let first_body_line = hcl.lines().count() + header.lines().count() + 1;
        hcl.push_str(&header);
        hcl.push('\n');
        for line in body.lines() {
            hcl.push_str("  ");
            hcl.push_str(line);
            hcl.push('\n');
        }
        hcl.push_str("}\n");
        if block == "provider" {
            hcl.push_str(&format!(
                "data \"breakglass_client_config\" \"{name}\" {{\n  provider = breakglass.{name}\n}}\n"
            ));
        }
        let line = attribute_line(body, path)
            .unwrap_or_else(|| panic!("row {i}: the body sets no {path}:\n{body}"));
        placed.push(Placed {
            row: *row,
            line: first_body_line + line,
        });
    }
    (hcl, placed)
}

/// The 0-based line of `path` (`timeouts.create`) within `body`: each segment found after the
/// previous one, as `name =` or `name {`.
fn attribute_line(body: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = body.lines().collect();
    let mut from = 0;
    let mut found = None;
    for segment in path.split('.') {
        let at = (from..lines.len()).find(|&i| {
            let text = lines[i].trim_start();
            text.strip_prefix(segment)
                .is_some_and(|rest| rest.trim_start().starts_with(['=', '{']))
        })?;
        found = Some(at);
        from = at + 1;
    }
    found
}

/// Error diagnostics Terraform printed as JSON: `(line, summary + detail)`.
fn diagnostics_of(json_lines: &str) -> Vec<(Option<usize>, String)> {
    let mut out = Vec::new();
    let mut push = |d: &Json| {
        if d["severity"] == "error" {
            let line = d["range"]["start"]["line"].as_u64().map(|l| l as usize);
            let text = format!(
                "{} {}",
                d["summary"].as_str().unwrap_or_default(),
                d["detail"].as_str().unwrap_or_default()
            );
            out.push((line, text.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    };
    // `validate -json` prints one document; `plan -json` one object per line.
    if let Ok(doc) = serde_json::from_str::<Json>(json_lines.trim()) {
        for d in doc["diagnostics"].as_array().into_iter().flatten() {
            push(d);
        }
        return out;
    }
    for line in json_lines.lines() {
        if let Ok(event) = serde_json::from_str::<Json>(line) {
            if event["type"] == "diagnostic" {
                push(&event["diagnostic"]);
            }
        }
    }
    out
}

/// Every row found its diagnostic at its line; all misses reported together.
fn expect_rows(placed: &[Placed], found: &[(Option<usize>, String)], output: &str) {
    let mut misses = Vec::new();
    for (i, p) in placed.iter().enumerate() {
        let (block, path, _, pattern) = p.row;
        let re = Regex::new(&format!("(?s){pattern}")).expect("row pattern");
        let hit = found
            .iter()
            .any(|(line, text)| *line == Some(p.line) && re.is_match(text));
        if !hit {
            let at_line: Vec<&String> = found
                .iter()
                .filter(|(l, _)| *l == Some(p.line))
                .map(|(_, t)| t)
                .collect();
            misses.push(format!(
                "row {i} ({block} {path}, line {}): no error matching /{pattern}/; at that line: {at_line:?}",
                p.line
            ));
        }
    }
    assert!(
        misses.is_empty(),
        "{} of {} rows missed:\n{}\n----- terraform output -----\n{output}",
        misses.len(),
        placed.len(),
        misses.join("\n")
    );
}

/// Requests that changed something (the token endpoint's POST only signs in).
fn writes(tenant: &FakeTenant) -> Vec<String> {
    tenant
        .state
        .tenant()
        .behaviour
        .request_log
        .iter()
        .filter(|r| r["family"] != "token" && r["method"] != "GET")
        .map(|r| format!("{} {}", r["method"], r["path"]))
        .collect()
}

/// The validate-stage table: `terraform validate -json` names every row at its line; then
/// `terraform apply` of the same configuration against the emulated tenant stops before the
/// provider is even configured, so the tenant sees no request at all.
fn run_validate_table(terraform: &'static Terraform, rows: &[Row]) {
    let tenant = FakeTenant::start();
    let ws = Workspace::new(terraform, tenant.provider_env());
    let (hcl, placed) = configuration(rows);
    ws.write_config(&hcl);
    let out = ws.run(&["validate", "-json", "-no-color"]);
    assert_eq!(out.exit_code, Some(1), "{out}");
    let start = out.text.find('{').unwrap_or(0);
    expect_rows(&placed, &diagnostics_of(&out.text[start..]), &out.text);

    let applied = ws.run(&["apply", "-auto-approve", "-no-color"]);
    assert!(!applied.success(), "{applied}");
    // It failed for the table's reasons (the first row's, say), not for another one.
    let first = Regex::new(rows[0].3).unwrap();
    assert!(applied.matches(&first), "{applied}");
    let log = tenant.state.tenant().behaviour.request_log.len();
    assert_eq!(log, 0, "the tenant saw {log} requests:\n{applied}");
    assert!(
        !applied.text.contains("s3cret-in-a-bad-block"),
        "a sensitive value was shown\n{applied}"
    );
}

#[test]
fn every_bad_input_is_refused_at_its_attribute_before_anything_is_written() {
    let Some(terraform) = crate::harness::requires_terraform("1.0") else {
        return;
    };
    run_validate_table(terraform, CASES);
}

#[test]
fn bad_write_only_input_is_refused_at_its_attribute_tf1_11() {
    let Some(terraform) = crate::harness::requires_terraform("1.11") else {
        return;
    };
    run_validate_table(terraform, WRITE_ONLY_CASES);
}

/// Inputs only the tenant can judge: `terraform apply` fails at plan, each row at its line,
/// and the tenant's request log holds reads only.
#[test]
fn inputs_the_tenant_refuses_fail_the_plan_and_write_nothing() {
    let Some(terraform) = crate::harness::requires_terraform("1.0") else {
        return;
    };
    let tenant = FakeTenant::start();
    let ws = Workspace::new(terraform, tenant.provider_env());
    let (hcl, placed) = configuration(TENANT_CASES);
    ws.write_config(&hcl);
    let out = ws.run(&["plan", "-json", "-no-color"]);
    assert_eq!(out.exit_code, Some(1), "{out}");
    expect_rows(&placed, &diagnostics_of(&out.text), &out.text);
    let applied = ws.run(&["apply", "-auto-approve", "-no-color"]);
    assert!(!applied.success(), "{applied}");
    assert_eq!(writes(&tenant), Vec::<String>::new(), "{applied}");
    assert!(ws.state().is_empty());
}

// ---- the coverage rule ----------------------------------------------------------------------------

/// Attribute paths with declared validators, and how many, of one schema.
fn validated_paths(schema: &Schema) -> BTreeMap<String, usize> {
    fn walk(
        attributes: &[Attribute],
        blocks: &[Block],
        at: &str,
        out: &mut BTreeMap<String, usize>,
    ) {
        let join = |name: &str| {
            if at.is_empty() {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            }
        };
        for a in attributes {
            if !a.validators.is_empty() {
                out.insert(join(&a.name), a.validators.len());
            }
            if let AttributeKind::Nested { attributes, .. } = &a.kind {
                walk(attributes, &[], &join(&a.name), out);
            }
        }
        for b in blocks {
            walk(&b.attributes, &b.blocks, &join(&b.type_name), out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&schema.attributes, &schema.blocks, "", &mut out);
    out
}

/// Every attribute path of one schema (validated or not).
fn all_paths(schema: &Schema) -> Vec<String> {
    fn walk(attributes: &[Attribute], blocks: &[Block], at: &str, out: &mut Vec<String>) {
        let join = |name: &str| {
            if at.is_empty() {
                name.to_owned()
            } else {
                format!("{at}.{name}")
            }
        };
        for a in attributes {
            out.push(join(&a.name));
            if let AttributeKind::Nested { attributes, .. } = &a.kind {
                walk(attributes, &[], &join(&a.name), out);
            }
        }
        for b in blocks {
            walk(&b.attributes, &b.blocks, &join(&b.type_name), out);
        }
    }
    let mut out = Vec::new();
    walk(&schema.attributes, &schema.blocks, "", &mut out);
    out
}

#[test]
fn every_validated_attribute_has_a_row() {
    let provider = BreakglassProvider::with_env(std::sync::Arc::new(|_: &str| None));
    let mut schemas: Vec<(String, Schema)> = vec![("provider".into(), provider.schema())];
    schemas.extend(
        provider
            .resources()
            .iter()
            .map(|r| (r.type_name().to_owned(), r.schema())),
    );
    schemas.extend(
        provider
            .data_sources()
            .iter()
            .map(|d| (format!("data.{}", d.type_name()), d.schema())),
    );
    let rows: Vec<&Row> = CASES
        .iter()
        .chain(WRITE_ONLY_CASES)
        .chain(TENANT_CASES)
        .collect();
    let mut problems = Vec::new();
    for (block, schema) in &schemas {
        for (path, validators) in validated_paths(schema) {
            let n = CASES
                .iter()
                .chain(WRITE_ONLY_CASES)
                .filter(|r| r.0 == block && r.1 == path)
                .count();
            if n < validators {
                problems.push(format!(
                    "{block} {path}: {validators} declared validators, {n} rows in tests/it/bad_input.rs"
                ));
            }
        }
    }
    for (block, path, _, pattern) in rows {
        match schemas.iter().find(|(b, _)| b == block) {
            None => problems.push(format!("row for {block}, which does not exist")),
            Some((_, schema)) if !all_paths(schema).contains(&path.to_string()) => problems.push(
                format!("row for {block} {path}, which has no such attribute"),
            ),
            Some(_) => {}
        }
        if Regex::new(pattern).is_err() {
            problems.push(format!("row for {block} {path}: bad pattern {pattern:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The table's own machinery: lines are found per path segment.
#[test]
fn attribute_lines_follow_the_path() {
    let body = "a = 1\ntimeouts {\n  read = \"x\"\n  create = \"y\"\n}\ncreate = 2";
    assert_eq!(attribute_line(body, "a"), Some(0));
    assert_eq!(attribute_line(body, "timeouts.create"), Some(3));
    assert_eq!(attribute_line(body, "create"), Some(3));
    assert_eq!(attribute_line(body, "missing"), None);
}
