//! The `provider "breakglass"` block: schema, validation, environment fallbacks, configure.
