//! The provider block's settings in one table: attribute name, type, sensitivity, the
//! environment variables it falls back to, and its documentation. The schema, the resolver and
//! the "set `x` or `ARM_X`" diagnostics are all derived from this table, so the three can never
//! disagree about a name.
//!
//! Environment names are the ones azurerm and azuread read, so a pipeline already set up for
//! those providers configures this one too; endpoint overrides have our own `BREAKGLASS_` names
//! because azurerm has no equivalent.

use crate::azure::cloud::CloudEnvironment;
use crate::framework::validators::{conflicts_with, string_rule, Validator};
use crate::framework::{AttributePath, Diagnostic, Value};
use crate::provider::checks::{self, PlainHttp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    String,
    Bool,
}

#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    pub kind: SettingKind,
    pub sensitive: bool,
    /// Environment variables consulted, in order, when the attribute is not set in config.
    pub env: &'static [&'static str],
    /// Markdown; the schema appends the environment variable sentence.
    pub description: &'static str,
    /// The format rule, checked as a validator on the attribute at `terraform validate` and
    /// on an environment value when `configure` resolves it.
    pub rule: Rule,
    /// Attributes that may not be set together with this one in the block.
    pub conflicts: &'static [&'static str],
}

/// The format rules of `provider/checks.rs`, one per setting that has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    None,
    Guid,
    Endpoint(PlainHttp),
    InlineCertificate,
    Environment,
}

impl Rule {
    /// Why `value` is wrong, phrased to follow the setting's name.
    pub fn check(self, value: &str) -> Result<(), String> {
        match self {
            Rule::None => Ok(()),
            Rule::Guid => checks::guid(value),
            Rule::Endpoint(plain_http) => checks::endpoint(value, plain_http).map(|_| ()),
            Rule::InlineCertificate => checks::inline_certificate(value),
            Rule::Environment => match CloudEnvironment::parse(value) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "is {value:?}; valid values are {}",
                    CloudEnvironment::valid_names()
                )),
            },
        }
    }

    fn description(self) -> &'static str {
        match self {
            Rule::None => "",
            Rule::Guid => "must be a GUID",
            Rule::Endpoint(_) => "must be an absolute `https://` URL (`http://` for loopback)",
            Rule::InlineCertificate => "must be PEM text or a base64-encoded PKCS#12 bundle",
            Rule::Environment => "must be `public`, `usgovernment` or `china`",
        }
    }
}

impl Setting {
    /// `tenant_id` (or `ARM_TENANT_ID`) — how diagnostics tell the user where to set a value.
    pub fn where_to_set(&self) -> String {
        match self.env {
            [] => format!("`{}`", self.name),
            [one] => format!("`{}` (or the {one} environment variable)", self.name),
            many => format!(
                "`{}` (or one of the environment variables {})",
                self.name,
                many.join(", ")
            ),
        }
    }

    /// The description shown in `terraform providers schema` and the docs.
    pub fn full_description(&self) -> String {
        match self.env {
            [] => self.description.to_owned(),
            [one] => format!(
                "{} Can also be set with the `{one}` environment variable.",
                self.description
            ),
            many => format!(
                "{} Can also be set with the {} environment variables (first one set wins).",
                self.description,
                many.iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn path(&self) -> AttributePath {
        AttributePath::root(self.name)
    }

    /// The validators the schema attaches to this setting's attribute.
    pub fn validators(&'static self) -> Vec<Validator> {
        let mut validators = Vec::new();
        if self.rule != Rule::None {
            let rule = self.rule;
            let summary = match rule {
                Rule::Environment => "Unknown Azure environment".to_owned(),
                _ => format!("Invalid `{}`", self.name),
            };
            validators.push(string_rule(
                rule.description(),
                &summary,
                move |value, _| rule.check(value),
            ));
        }
        if !self.conflicts.is_empty() {
            validators.push(
                conflicts_with(self.conflicts).summary("Conflicting client certificate settings"),
            );
        }
        validators
    }
}

pub const TENANT_ID: &Setting = &Setting {
    name: "tenant_id",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_TENANT_ID"],
    description:
        "The Microsoft Entra tenant (directory) ID, a GUID, that holds the emergency-access \
        accounts. Required for client secret, client certificate and OIDC authentication.",
    rule: Rule::Guid,
    conflicts: &[],
};

pub const CLIENT_ID: &Setting = &Setting {
    name: "client_id",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_CLIENT_ID"],
    description: "The application (client) ID, a GUID, of the app registration or user-assigned \
        managed identity the provider signs in as.",
    rule: Rule::Guid,
    conflicts: &[],
};

pub const CLIENT_SECRET: &Setting = &Setting {
    name: "client_secret",
    kind: SettingKind::String,
    sensitive: true,
    env: &["ARM_CLIENT_SECRET"],
    description:
        "A client secret of the app registration. Selects client secret authentication. \
        Prefer a certificate, OIDC or a managed identity for a tenant's most privileged automation.",
    rule: Rule::None,
    conflicts: &[],
};

pub const CLIENT_CERTIFICATE: &Setting = &Setting {
    name: "client_certificate",
    kind: SettingKind::String,
    sensitive: true,
    env: &["ARM_CLIENT_CERTIFICATE"],
    description: "The client certificate and its private key, as a base64-encoded PKCS#12 bundle \
        or as PEM text. Selects client certificate authentication. Conflicts with \
        `client_certificate_path`.",
    rule: Rule::InlineCertificate,
    conflicts: &[],
};

pub const CLIENT_CERTIFICATE_PATH: &Setting = &Setting {
    name: "client_certificate_path",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_CLIENT_CERTIFICATE_PATH"],
    description:
        "Path to a PKCS#12 (`.pfx`/`.p12`) or PEM file holding the client certificate and \
        its private key. Selects client certificate authentication. Conflicts with \
        `client_certificate`.",
    rule: Rule::None,
    conflicts: &["client_certificate"],
};

pub const CLIENT_CERTIFICATE_PASSWORD: &Setting = &Setting {
    name: "client_certificate_password",
    kind: SettingKind::String,
    sensitive: true,
    env: &["ARM_CLIENT_CERTIFICATE_PASSWORD"],
    description: "The password protecting the client certificate bundle, if it has one.",
    rule: Rule::None,
    conflicts: &[],
};

pub const USE_OIDC: &Setting = &Setting {
    name: "use_oidc",
    kind: SettingKind::Bool,
    sensitive: false,
    env: &["ARM_USE_OIDC"],
    description: "Authenticate with an OpenID Connect token from a CI system (workload identity \
        federation), exchanged for an Entra token as a client assertion. The token comes from \
        `oidc_token`, the file named by `ARM_OIDC_TOKEN_FILE_PATH`, or is requested from \
        `oidc_request_url` with `oidc_request_token` (GitHub Actions).",
    rule: Rule::None,
    conflicts: &[],
};

pub const OIDC_TOKEN: &Setting = &Setting {
    name: "oidc_token",
    kind: SettingKind::String,
    sensitive: true,
    env: &["ARM_OIDC_TOKEN"],
    description: "The OIDC ID token to exchange, for CI systems that hand it over directly. If \
        neither this nor `ARM_OIDC_TOKEN` is set, the file named by `ARM_OIDC_TOKEN_FILE_PATH` is \
        read instead (re-read on every sign-in, since projected tokens rotate).",
    rule: Rule::None,
    conflicts: &[],
};

pub const OIDC_REQUEST_URL: &Setting = &Setting {
    name: "oidc_request_url",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"],
    description: "The URL to request an OIDC token from (GitHub Actions sets it for jobs with \
        `id-token: write`). Must be `https://` unless it is a loopback address.",
    rule: Rule::Endpoint(PlainHttp::Loopback),
    conflicts: &[],
};

pub const OIDC_REQUEST_TOKEN: &Setting = &Setting {
    name: "oidc_request_token",
    kind: SettingKind::String,
    sensitive: true,
    env: &["ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
    description: "The bearer token that authorises the request to `oidc_request_url`.",
    rule: Rule::None,
    conflicts: &[],
};

pub const USE_MSI: &Setting = &Setting {
    name: "use_msi",
    kind: SettingKind::Bool,
    sensitive: false,
    env: &["ARM_USE_MSI"],
    description:
        "Authenticate as the Azure managed identity of the machine running Terraform. Set \
        `client_id` to pick a user-assigned identity; leave it unset for the system-assigned one.",
    rule: Rule::None,
    conflicts: &[],
};

pub const MSI_ENDPOINT: &Setting = &Setting {
    name: "msi_endpoint",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_MSI_ENDPOINT"],
    description: "The managed identity token endpoint, when it is not the instance metadata \
        service's default. Plain `http://` is accepted only for loopback and link-local hosts, \
        where Azure serves it.",
    rule: Rule::Endpoint(PlainHttp::LoopbackOrLinkLocal),
    conflicts: &[],
};

pub const USE_CLI: &Setting = &Setting {
    name: "use_cli",
    kind: SettingKind::Bool,
    sensitive: false,
    env: &["ARM_USE_CLI"],
    description: "Authenticate with the account signed in to the Azure CLI (`az login`). This is \
        the fallback when no other method is configured; set it to `false` to forbid that.",
    rule: Rule::None,
    conflicts: &[],
};

pub const ENVIRONMENT: &Setting = &Setting {
    name: "environment",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_ENVIRONMENT"],
    description: "The Azure cloud: `public` (default), `usgovernment` or `china`. Chooses the \
        sign-in, Microsoft Graph and Azure Resource Manager endpoints and token scopes.",
    rule: Rule::Environment,
    conflicts: &[],
};

pub const SUBSCRIPTION_ID: &Setting = &Setting {
    name: "subscription_id",
    kind: SettingKind::String,
    sensitive: false,
    env: &["ARM_SUBSCRIPTION_ID"],
    description: "The Azure subscription ID, a GUID, holding the monitoring resources (Log \
        Analytics alert rules, action groups) of the break-glass sign-in alerts.",
    rule: Rule::Guid,
    conflicts: &[],
};

pub const LOGIN_ENDPOINT: &Setting = &Setting {
    name: "login_endpoint",
    kind: SettingKind::String,
    sensitive: false,
    env: &["BREAKGLASS_LOGIN_ENDPOINT"],
    description: "Overrides the Microsoft Entra sign-in endpoint of the chosen `environment` (for \
        private clouds or the emulated tenant). Token scopes stay those of `environment`. Must be \
        an absolute `https://` URL; `http://` only for loopback hosts.",
    rule: Rule::Endpoint(PlainHttp::Loopback),
    conflicts: &[],
};

pub const GRAPH_ENDPOINT: &Setting = &Setting {
    name: "graph_endpoint",
    kind: SettingKind::String,
    sensitive: false,
    env: &["BREAKGLASS_GRAPH_ENDPOINT"],
    description: "Overrides the Microsoft Graph endpoint of the chosen `environment` (without the \
        `/v1.0` suffix). Token scopes stay those of `environment`. Must be an absolute `https://` \
        URL; `http://` only for loopback hosts.",
    rule: Rule::Endpoint(PlainHttp::Loopback),
    conflicts: &[],
};

pub const RESOURCE_MANAGER_ENDPOINT: &Setting = &Setting {
    name: "resource_manager_endpoint",
    kind: SettingKind::String,
    sensitive: false,
    env: &["BREAKGLASS_RESOURCE_MANAGER_ENDPOINT"],
    description:
        "Overrides the Azure Resource Manager endpoint of the chosen `environment`. Token \
        scopes stay those of `environment`. Must be an absolute `https://` URL; `http://` only for \
        loopback hosts.",
    rule: Rule::Endpoint(PlainHttp::Loopback),
    conflicts: &[],
};

/// Every setting, in the order the schema lists them.
pub const ALL: [&Setting; 18] = [
    TENANT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    CLIENT_CERTIFICATE,
    CLIENT_CERTIFICATE_PATH,
    CLIENT_CERTIFICATE_PASSWORD,
    USE_OIDC,
    OIDC_TOKEN,
    OIDC_REQUEST_URL,
    OIDC_REQUEST_TOKEN,
    USE_MSI,
    MSI_ENDPOINT,
    USE_CLI,
    ENVIRONMENT,
    SUBSCRIPTION_ID,
    LOGIN_ENDPOINT,
    GRAPH_ENDPOINT,
    RESOURCE_MANAGER_ENDPOINT,
];

/// Read only from the environment: a file holding the OIDC token (AKS workload identity and
/// several CI systems project one), as azurerm and azuread accept it.
pub const OIDC_TOKEN_FILE_PATH_ENV: &str = "ARM_OIDC_TOKEN_FILE_PATH";

/// Where a resolved value came from, so diagnostics can say what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Config,
    Env(&'static str),
}

impl Origin {
    /// "`tenant_id`" or "the ARM_TENANT_ID environment variable".
    pub fn describe(&self, setting: &Setting) -> String {
        match self {
            Origin::Config => format!("`{}`", setting.name),
            Origin::Env(var) => format!("the {var} environment variable"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved<T> {
    pub value: T,
    pub origin: Origin,
}

/// Reads settings with the precedence config → environment. `env` looks a variable up (the
/// process environment in production, a fixed map in tests).
pub struct Sources<'a> {
    pub config: &'a Value,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    /// The first non-empty value among the config attribute and its environment variables.
    /// Config values are used as written; environment values are trimmed, since a stray
    /// newline from `$(cat file)` is a common mistake in CI definitions.
    pub fn string(&self, setting: &'static Setting) -> Option<Resolved<String>> {
        if let Some(s) = self.config.get(setting.name).as_str() {
            return Some(Resolved {
                value: s.to_owned(),
                origin: Origin::Config,
            });
        }
        self.env_value(setting)
    }

    fn env_value(&self, setting: &'static Setting) -> Option<Resolved<String>> {
        setting.env.iter().find_map(|var| {
            let v = (self.env)(var)?;
            let v = v.trim();
            (!v.is_empty()).then(|| Resolved {
                value: v.to_owned(),
                origin: Origin::Env(var),
            })
        })
    }

    /// A boolean setting; an environment value that is not a boolean is an error naming the
    /// variable rather than a silent `false`.
    pub fn bool(&self, setting: &'static Setting) -> Result<Option<Resolved<bool>>, Diagnostic> {
        if let Some(b) = self.config.get(setting.name).as_bool() {
            return Ok(Some(Resolved {
                value: b,
                origin: Origin::Config,
            }));
        }
        let Some(raw) = self.env_value(setting) else {
            return Ok(None);
        };
        let value = match raw.value.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                let Origin::Env(var) = raw.origin else {
                    unreachable!("env_value only returns environment origins")
                };
                return Err(Diagnostic::error(
                    format!("Invalid {var}"),
                    format!(
                        "The {var} environment variable must be `true` or `false` to set `{}`.",
                        setting.name
                    ),
                )
                .at(setting.path()));
            }
        };
        Ok(Some(Resolved {
            value,
            origin: raw.origin,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_unique_names_and_every_setting_is_documented() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for s in ALL {
            assert!(s.description.len() > 20, "{} needs a description", s.name);
        }
    }

    #[test]
    fn secrets_are_sensitive() {
        for s in [
            CLIENT_SECRET,
            CLIENT_CERTIFICATE,
            CLIENT_CERTIFICATE_PASSWORD,
            OIDC_TOKEN,
            OIDC_REQUEST_TOKEN,
        ] {
            assert!(s.sensitive, "{}", s.name);
        }
    }

    #[test]
    fn where_to_set_names_attribute_and_variables() {
        assert_eq!(
            TENANT_ID.where_to_set(),
            "`tenant_id` (or the ARM_TENANT_ID environment variable)"
        );
        assert!(OIDC_REQUEST_URL
            .where_to_set()
            .contains("ARM_OIDC_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_URL"));
    }
}
