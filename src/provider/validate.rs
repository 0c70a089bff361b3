//! Static checks of the provider block beyond its attributes' validators, run by Terraform at
//! `validate` time (and again by `configure`). Only the config is looked at — the environment
//! belongs to the run, not to the configuration — and unknown values are skipped: they are
//! checked once known, in configure.

use crate::framework::{Diagnostic, Diagnostics, Value};
use crate::provider::settings::{self, Setting};

pub fn validate(config: &Value) -> Diagnostics {
    // Each setting's format rule and the certificate conflict are validators on the schema
    // (see `Setting::validators`); what remains is the rule across all methods.
    let mut diags = Diagnostics::new();
    auth_conflicts(config, &mut diags);
    diags
}

/// Each authentication method the config selects, with the attribute that selects it.
fn auth_conflicts(config: &Value, diags: &mut Diagnostics) {
    let is_set = |s: &Setting| config.get(s.name).as_str().is_some();
    let is_true = |s: &Setting| config.get(s.name).as_bool() == Some(true);

    let mut selected: Vec<(&Setting, &str)> = Vec::new();
    if is_set(settings::CLIENT_SECRET) {
        selected.push((settings::CLIENT_SECRET, "client secret"));
    }
    if is_set(settings::CLIENT_CERTIFICATE) {
        selected.push((settings::CLIENT_CERTIFICATE, "client certificate"));
    } else if is_set(settings::CLIENT_CERTIFICATE_PATH) {
        selected.push((settings::CLIENT_CERTIFICATE_PATH, "client certificate"));
    }
    for (s, label) in [
        (settings::USE_OIDC, "OIDC"),
        (settings::USE_MSI, "managed identity"),
        (settings::USE_CLI, "Azure CLI"),
    ] {
        if is_true(s) {
            selected.push((s, label));
        }
    }

    let Some(((first, first_label), rest)) = selected.split_first() else {
        return;
    };
    for (s, label) in rest {
        diags.push(
            Diagnostic::error(
                "Conflicting authentication methods",
                format!(
                    "`{}` selects {label} authentication, but `{}` already selects \
                     {first_label} authentication. Configure exactly one of `client_secret`, \
                     `client_certificate`/`client_certificate_path`, `use_oidc`, `use_msi` or \
                     `use_cli`.",
                    s.name, first.name
                ),
            )
            .at(s.path()),
        );
    }
}
