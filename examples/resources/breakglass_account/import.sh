# An account is imported by its object id or by its user principal name (any case):
terraform import breakglass_account.emergency 00000000-0000-0000-0000-000000000000
terraform import breakglass_account.emergency bg-01@contoso.onmicrosoft.com
# Microsoft Graph never returns passwords: the imported account has a null `password` until the
# next rotation (a `password_rotation_trigger` change or a `password_wo_version` bump) sets one.
