# <principal_id>/<role_definition_id> for the whole tenant, or with the directory scope appended
# (without its leading slash). The method (pim or direct) is detected from how it was made.
terraform import breakglass_role_assignment.global_admin 00000000-0000-0000-0000-000000000001/62e90394-69f5-4237-9190-012177145e10
terraform import breakglass_role_assignment.unit_admin 00000000-0000-0000-0000-000000000001/fe930be7-5e62-47db-91af-98c3a49a38b1/administrativeUnits/00000000-0000-0000-0000-000000000009
