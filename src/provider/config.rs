//! The resolved provider configuration: what `configure` hands to the Azure client layer.
//!
//! Resolution order for every setting is config, then environment (see `settings.rs`). The
//! authentication method is chosen once, here, so the client layer receives exactly one
//! `AuthMethod` with everything it needs and never reads the environment itself.

use std::path::PathBuf;

use crate::azure::cloud::CloudEnvironment;
pub use crate::azure::config::{
    AuthMethod, CertificateSource, OidcTokenSource, ProviderConfig, Secret,
};
use crate::framework::{Diagnostic, Diagnostics};
use crate::provider::checks::{self, PlainHttp};
use crate::provider::settings::{self, Origin, Resolved, Setting, Sources};

/// The authentication methods in the order they win when several are set through the
/// environment alone (azurerm's order: the most specific credential first, the CLI last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    ClientCertificate,
    ClientSecret,
    Oidc,
    ManagedIdentity,
    AzureCli,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::ClientCertificate => "client certificate",
            Method::ClientSecret => "client secret",
            Method::Oidc => "OIDC",
            Method::ManagedIdentity => "managed identity",
            Method::AzureCli => "Azure CLI",
        }
    }
}

/// Resolves config + environment into a `ProviderConfig`, or every problem found at once.
pub fn resolve(
    sources: &Sources<'_>,
    terraform_version: &str,
) -> Result<ProviderConfig, Diagnostics> {
    // The config's own rules first (conflicts, formats); Terraform has normally run them at
    // validate time already, but configure must not depend on that.
    let mut diags = crate::provider::validate::validate(sources.config);
    for s in settings::ALL {
        if sources.config.get(s.name).is_unknown() {
            diags.push(
                Diagnostic::error(
                    format!("`{}` is not known yet", s.name),
                    format!(
                        "The provider cannot be configured from a value only known after apply. \
                         Set `{}` from a variable or the environment instead of from another \
                         resource's attribute.",
                        s.name
                    ),
                )
                .at(s.path()),
            );
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }

    let tenant_id = guid_setting(sources, settings::TENANT_ID, &mut diags);
    let client_id = guid_setting(sources, settings::CLIENT_ID, &mut diags);
    let subscription_id = guid_setting(sources, settings::SUBSCRIPTION_ID, &mut diags);

    let environment = match sources.string(settings::ENVIRONMENT) {
        None => CloudEnvironment::Public,
        Some(r) => CloudEnvironment::parse(&r.value).unwrap_or_else(|| {
            diags.push(
                Diagnostic::error(
                    "Unknown Azure environment",
                    format!(
                        "{} is {:?}; valid values are {}.",
                        r.origin.describe(settings::ENVIRONMENT),
                        r.value,
                        CloudEnvironment::valid_names()
                    ),
                )
                .at(settings::ENVIRONMENT.path()),
            );
            CloudEnvironment::Public
        }),
    };

    let mut cloud = environment.endpoints();
    for (setting, slot) in [
        (settings::LOGIN_ENDPOINT, &mut cloud.login),
        (settings::GRAPH_ENDPOINT, &mut cloud.graph),
        (
            settings::RESOURCE_MANAGER_ENDPOINT,
            &mut cloud.resource_manager,
        ),
    ] {
        if let Some(url) = endpoint_setting(sources, setting, PlainHttp::Loopback, &mut diags) {
            *slot = url;
        }
    }

    let auth = auth_method(sources, &mut diags);
    if let Some(auth) = &auth {
        let needs_tenant_and_client = matches!(
            auth,
            AuthMethod::ClientSecret { .. }
                | AuthMethod::ClientCertificate { .. }
                | AuthMethod::Oidc { .. }
        );
        if needs_tenant_and_client {
            for (setting, value) in [
                (settings::TENANT_ID, &tenant_id),
                (settings::CLIENT_ID, &client_id),
            ] {
                if value.is_none() {
                    diags.push(missing(setting, auth.label()));
                }
            }
        }
    }

    match auth {
        Some(auth) if !diags.has_errors() => Ok(ProviderConfig {
            tenant_id,
            client_id,
            subscription_id,
            auth,
            environment,
            cloud,
            terraform_version: terraform_version.to_owned(),
        }),
        _ => Err(diags),
    }
}

fn missing(setting: &Setting, method: &str) -> Diagnostic {
    Diagnostic::error(
        format!("Missing `{}`", setting.name),
        format!(
            "Signing in with {method} authentication needs this value. Set {}.",
            setting.where_to_set()
        ),
    )
    .at(setting.path())
}

/// A GUID setting; config values were checked by `validate`, environment values are checked
/// here and reported with the variable's name.
fn guid_setting(
    sources: &Sources<'_>,
    setting: &'static Setting,
    diags: &mut Diagnostics,
) -> Option<String> {
    let r = sources.string(setting)?;
    if let Err(reason) = checks::guid(&r.value) {
        diags.push(
            Diagnostic::error(
                format!("Invalid `{}`", setting.name),
                format!("{} {reason}.", r.origin.describe(setting)),
            )
            .at(setting.path()),
        );
        return None;
    }
    Some(r.value.to_ascii_lowercase())
}

fn endpoint_setting(
    sources: &Sources<'_>,
    setting: &'static Setting,
    rule: PlainHttp,
    diags: &mut Diagnostics,
) -> Option<String> {
    let r = sources.string(setting)?;
    match checks::endpoint(&r.value, rule) {
        Ok(url) => Some(url),
        Err(reason) => {
            diags.push(
                Diagnostic::error(
                    format!("Invalid `{}`", setting.name),
                    format!("{} {reason}.", r.origin.describe(setting)),
                )
                .at(setting.path()),
            );
            None
        }
    }
}

fn bool_setting(
    sources: &Sources<'_>,
    setting: &'static Setting,
    diags: &mut Diagnostics,
) -> Option<Resolved<bool>> {
    sources.bool(setting).unwrap_or_else(|d| {
        diags.push(d);
        None
    })
}

/// Picks the method: one chosen in config wins over anything in the environment; among
/// environment-only choices the priority of `Method` applies; with nothing chosen the Azure
/// CLI is used unless `use_cli` is false (azurerm and azuread behave the same way).
fn auth_method(sources: &Sources<'_>, diags: &mut Diagnostics) -> Option<AuthMethod> {
    let certificate = sources.string(settings::CLIENT_CERTIFICATE);
    let certificate_path = sources.string(settings::CLIENT_CERTIFICATE_PATH);
    let secret = sources.string(settings::CLIENT_SECRET);
    let use_oidc = bool_setting(sources, settings::USE_OIDC, diags);
    let use_msi = bool_setting(sources, settings::USE_MSI, diags);
    let use_cli = bool_setting(sources, settings::USE_CLI, diags);

    let enabled =
        |b: &Option<Resolved<bool>>| b.as_ref().filter(|r| r.value).map(|r| r.origin.clone());
    let candidates: Vec<(Method, Origin)> = [
        (
            Method::ClientCertificate,
            certificate
                .as_ref()
                .or(certificate_path.as_ref())
                .map(|r| r.origin.clone()),
        ),
        (
            Method::ClientSecret,
            secret.as_ref().map(|r| r.origin.clone()),
        ),
        (Method::Oidc, enabled(&use_oidc)),
        (Method::ManagedIdentity, enabled(&use_msi)),
        (Method::AzureCli, enabled(&use_cli)),
    ]
    .into_iter()
    .filter_map(|(m, origin)| origin.map(|o| (m, o)))
    .collect();

    let chosen = candidates
        .iter()
        .find(|(_, o)| *o == Origin::Config)
        .or(candidates.first())
        .map(|(m, _)| *m);
    let method = match chosen {
        Some(m) => m,
        None if use_cli.as_ref().is_some_and(|r| !r.value) => {
            diags.push(Diagnostic::error(
                "No authentication method configured",
                format!(
                    "`use_cli` is false and no other method is set. Configure one of: {}, {} or {}, \
                     {}, {}.",
                    settings::CLIENT_SECRET.where_to_set(),
                    settings::CLIENT_CERTIFICATE.where_to_set(),
                    settings::CLIENT_CERTIFICATE_PATH.where_to_set(),
                    settings::USE_OIDC.where_to_set(),
                    settings::USE_MSI.where_to_set(),
                ),
            ));
            return None;
        }
        None => Method::AzureCli,
    };
    if candidates.len() > 1 {
        let ignored: Vec<&str> = candidates
            .iter()
            .filter(|(m, _)| *m != method)
            .map(|(m, _)| m.label())
            .collect();
        tracing::info!(
            chosen = method.label(),
            ignored = ?ignored,
            "several authentication methods are set; using the one with the highest precedence"
        );
    }

    Some(match method {
        Method::ClientSecret => AuthMethod::ClientSecret {
            secret: Secret::new(secret?.value),
        },
        Method::ClientCertificate => AuthMethod::ClientCertificate {
            certificate: certificate_source(certificate, certificate_path, diags)?,
            password: sources
                .string(settings::CLIENT_CERTIFICATE_PASSWORD)
                .map(|r| Secret::new(r.value)),
        },
        Method::Oidc => AuthMethod::Oidc {
            token: oidc_token_source(sources, diags)?,
        },
        Method::ManagedIdentity => AuthMethod::ManagedIdentity {
            endpoint: endpoint_setting(
                sources,
                settings::MSI_ENDPOINT,
                PlainHttp::LoopbackOrLinkLocal,
                diags,
            ),
        },
        Method::AzureCli => AuthMethod::AzureCli,
    })
}

fn certificate_source(
    inline: Option<Resolved<String>>,
    path: Option<Resolved<String>>,
    diags: &mut Diagnostics,
) -> Option<CertificateSource> {
    let use_inline = match (&inline, &path) {
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (Some(i), Some(p)) if i.origin == Origin::Config || p.origin == Origin::Config => {
            i.origin == Origin::Config
        }
        (Some(i), Some(p)) => {
            diags.push(
                Diagnostic::error(
                    "Conflicting client certificate settings",
                    format!(
                        "Both {} and {} are set; set only one.",
                        i.origin.describe(settings::CLIENT_CERTIFICATE),
                        p.origin.describe(settings::CLIENT_CERTIFICATE_PATH)
                    ),
                )
                .at(settings::CLIENT_CERTIFICATE_PATH.path()),
            );
            return None;
        }
        (None, None) => return None,
    };
    if use_inline {
        let r = inline?;
        if let Err(reason) = checks::inline_certificate(&r.value) {
            diags.push(
                Diagnostic::error(
                    "Invalid `client_certificate`",
                    format!(
                        "{} {reason}.",
                        r.origin.describe(settings::CLIENT_CERTIFICATE)
                    ),
                )
                .at(settings::CLIENT_CERTIFICATE.path()),
            );
            return None;
        }
        return Some(CertificateSource::Inline(Secret::new(r.value)));
    }
    let r = path?;
    let file = PathBuf::from(&r.value);
    if let Err(e) = std::fs::metadata(&file) {
        diags.push(
            Diagnostic::error(
                "Client certificate file not readable",
                format!(
                    "{} names {}, which cannot be read: {e}.",
                    r.origin.describe(settings::CLIENT_CERTIFICATE_PATH),
                    file.display()
                ),
            )
            .at(settings::CLIENT_CERTIFICATE_PATH.path()),
        );
        return None;
    }
    Some(CertificateSource::File(file))
}

fn oidc_token_source(sources: &Sources<'_>, diags: &mut Diagnostics) -> Option<OidcTokenSource> {
    if let Some(token) = sources.string(settings::OIDC_TOKEN) {
        return Some(OidcTokenSource::Token(Secret::new(token.value)));
    }
    if let Some(path) =
        (sources.env)(settings::OIDC_TOKEN_FILE_PATH_ENV).filter(|p| !p.trim().is_empty())
    {
        return Some(OidcTokenSource::TokenFile(PathBuf::from(path.trim())));
    }
    let url = sources.string(settings::OIDC_REQUEST_URL);
    let bearer = sources.string(settings::OIDC_REQUEST_TOKEN);
    match (url, bearer) {
        (Some(url), Some(bearer)) => {
            let url = match checks::endpoint(&url.value, PlainHttp::Loopback) {
                Ok(u) => u,
                Err(reason) => {
                    diags.push(
                        Diagnostic::error(
                            "Invalid `oidc_request_url`",
                            format!(
                                "{} {reason}.",
                                url.origin.describe(settings::OIDC_REQUEST_URL)
                            ),
                        )
                        .at(settings::OIDC_REQUEST_URL.path()),
                    );
                    return None;
                }
            };
            Some(OidcTokenSource::Request {
                url,
                bearer: Secret::new(bearer.value),
            })
        }
        (url, _) => {
            let missing = if url.is_some() {
                settings::OIDC_REQUEST_TOKEN
            } else {
                settings::OIDC_TOKEN
            };
            diags.push(
                Diagnostic::error(
                    "Missing OIDC token",
                    format!(
                        "OIDC authentication needs a token: set {}, or the {} environment \
                         variable, or both {} and {}.",
                        settings::OIDC_TOKEN.where_to_set(),
                        settings::OIDC_TOKEN_FILE_PATH_ENV,
                        settings::OIDC_REQUEST_URL.where_to_set(),
                        settings::OIDC_REQUEST_TOKEN.where_to_set(),
                    ),
                )
                .at(missing.path()),
            );
            None
        }
    }
}
