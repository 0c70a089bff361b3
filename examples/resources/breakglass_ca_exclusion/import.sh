# The comma-separated object ids of the excluded users and groups. Import adopts every existing
# exclusion of these principals (a later destroy removes them all).
terraform import breakglass_ca_exclusion.emergency 5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01,8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01
