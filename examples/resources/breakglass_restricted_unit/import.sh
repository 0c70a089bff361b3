# A unit is imported by its object id. The import adopts the unit's current members and the role
# assignments at its scope; an ordinary (unrestricted) unit would be planned for replacement.
terraform import breakglass_restricted_unit.emergency 00000000-0000-0000-0000-000000000000
