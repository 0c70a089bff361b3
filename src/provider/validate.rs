//! Static checks of the provider block, run by Terraform at `validate` time (and again by
//! `configure`). Only the config is looked at — the environment belongs to the run, not to the
//! configuration — and unknown values are skipped: they are checked once known, in configure.

use crate::framework::{Diagnostic, Diagnostics, Value};
use crate::provider::checks::{self, PlainHttp};
use crate::provider::cloud::CloudEnvironment;
use crate::provider::settings::{self, Setting};

pub fn validate(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let known = |s: &Setting| config.get(s.name).as_str().map(str::to_owned);

    for s in [
        settings::TENANT_ID,
        settings::CLIENT_ID,
        settings::SUBSCRIPTION_ID,
    ] {
        if let Some(v) = known(s) {
            if let Err(reason) = checks::guid(&v) {
                diags.push(invalid(s, &reason));
            }
        }
    }

    if let Some(v) = known(settings::ENVIRONMENT) {
        if CloudEnvironment::parse(&v).is_none() {
            diags.push(
                Diagnostic::error(
                    "Unknown Azure environment",
                    format!(
                        "`environment` is {v:?}; valid values are {}.",
                        CloudEnvironment::valid_names()
                    ),
                )
                .at(settings::ENVIRONMENT.path()),
            );
        }
    }

    for (s, rule) in [
        (settings::LOGIN_ENDPOINT, PlainHttp::Loopback),
        (settings::GRAPH_ENDPOINT, PlainHttp::Loopback),
        (settings::RESOURCE_MANAGER_ENDPOINT, PlainHttp::Loopback),
        // The request token travels to this URL, so it gets the same protection.
        (settings::OIDC_REQUEST_URL, PlainHttp::Loopback),
        (settings::MSI_ENDPOINT, PlainHttp::LoopbackOrLinkLocal),
    ] {
        if let Some(v) = known(s) {
            if let Err(reason) = checks::endpoint(&v, rule) {
                diags.push(invalid(s, &reason));
            }
        }
    }

    if let Some(v) = known(settings::CLIENT_CERTIFICATE) {
        if let Err(reason) = checks::inline_certificate(&v) {
            diags.push(invalid(settings::CLIENT_CERTIFICATE, &reason));
        }
        if known(settings::CLIENT_CERTIFICATE_PATH).is_some() {
            diags.push(
                Diagnostic::error(
                    "Conflicting client certificate settings",
                    "`client_certificate` and `client_certificate_path` both give the client \
                     certificate; set only one of them.",
                )
                .at(settings::CLIENT_CERTIFICATE_PATH.path()),
            );
        }
    }

    auth_conflicts(config, &mut diags);
    diags
}

fn invalid(s: &Setting, reason: &str) -> Diagnostic {
    Diagnostic::error(
        format!("Invalid `{}`", s.name),
        format!("`{}` {reason}.", s.name),
    )
    .at(s.path())
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
