# A tenant diagnostic setting is imported by its name (or its full id), in any case:
terraform import breakglass_entra_diagnostic_setting.breakglass breakglass-monitoring
terraform import breakglass_entra_diagnostic_setting.breakglass /providers/microsoft.aadiam/diagnosticSettings/breakglass-monitoring
