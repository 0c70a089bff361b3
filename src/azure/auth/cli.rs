//! Azure CLI: `az account get-access-token` in a subprocess, using whatever account the user
//! logged in with (`az login`). Only used when enabled (`use_cli`), because it silently acts as
//! a person rather than as an automation identity.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value as Json;

use super::{AccessToken, TokenSource};
use crate::azure::error::{AuthError, AuthMethodKind, AzureError};
use crate::azure::http::HttpPipeline;
use crate::azure::retry::Deadline;

pub struct AzureCliSource {
    /// The `az` executable (a path in tests).
    program: String,
    tenant_id: Option<String>,
}

impl AzureCliSource {
    pub fn new(program: impl Into<String>, tenant_id: Option<String>) -> Self {
        AzureCliSource {
            program: program.into(),
            tenant_id,
        }
    }

    /// The argument list for a token for `scope`.
    pub fn args(&self, scope: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            super::scope_to_resource(scope),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = &self.tenant_id {
            args.push("--tenant".into());
            args.push(t.clone());
        }
        args
    }

    fn failure(&self, problem: String, remedy: &str) -> AzureError {
        AuthError {
            method: AuthMethodKind::AzureCli,
            attempted: self.describe(),
            problem,
            remedy: remedy.to_owned(),
            code: None,
        }
        .into()
    }
}

/// Reads `az account get-access-token` output: `accessToken` and `expires_on` (Unix seconds,
/// CLI ≥ 2.54). Older CLIs only print `expiresOn` in local time without a zone, which cannot be
/// read reliably; such tokens are treated as valid for five minutes and then fetched again.
pub fn parse_cli_token(stdout: &[u8]) -> Result<AccessToken, String> {
    let out: Json = serde_json::from_slice(stdout)
        .map_err(|_| "`az account get-access-token` did not print JSON".to_owned())?;
    let token = out["accessToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("`az account get-access-token` printed no accessToken")?;
    let lifetime = super::json_seconds(out.get("expires_on"))
        .map(super::lifetime_until)
        .unwrap_or(Duration::from_secs(300));
    Ok(AccessToken::new(token.to_owned(), lifetime))
}

#[async_trait]
impl TokenSource for AzureCliSource {
    fn method(&self) -> AuthMethodKind {
        AuthMethodKind::AzureCli
    }

    fn describe(&self) -> String {
        match &self.tenant_id {
            Some(t) => format!("`{} account get-access-token` for tenant {t}", self.program),
            None => format!("`{} account get-access-token`", self.program),
        }
    }

    async fn fetch(
        &self,
        scope: &str,
        _http: &HttpPipeline,
        deadline: &Deadline,
    ) -> Result<AccessToken, AzureError> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(self.args(scope)).kill_on_drop(true);
        let output = tokio::time::timeout(deadline.remaining(), command.output())
            .await
            .map_err(|_| {
                self.failure(
                    "the Azure CLI did not answer before the deadline".into(),
                    "Run the same command by hand to see whether it waits for input.",
                )
            })?
            .map_err(|e| {
                self.failure(
                    format!("the Azure CLI could not be started ({e})"),
                    "Install the Azure CLI and make sure `az` is on PATH, or use another authentication method.",
                )
            })?;
        if !output.status.success() {
            // The CLI's own message ("Please run 'az login'…") is the most useful part; it never
            // contains the token since the command failed.
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(self.failure(
                format!(
                    "the Azure CLI exited with {}: {}",
                    output.status,
                    first.trim()
                ),
                "Run `az login` (with --tenant for the target tenant) and try again.",
            ));
        }
        parse_cli_token(&output.stdout)
            .map_err(|p| self.failure(p, "Update the Azure CLI to a current version."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_asks_for_the_resource_in_the_tenant() {
        let cli = AzureCliSource::new("az", Some("tenant-1".into()));
        assert_eq!(
            cli.args("https://graph.microsoft.com/.default"),
            [
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
                "https://graph.microsoft.com",
                "--tenant",
                "tenant-1"
            ]
        );
    }

    #[test]
    fn output_with_unix_expiry_is_understood() {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let out = format!(
            r#"{{"accessToken":"tok","expiresOn":"2030-01-01 00:00:00.000000","expires_on":{exp},"tenant":"t","tokenType":"Bearer"}}"#
        );
        let token = parse_cli_token(out.as_bytes()).unwrap();
        assert_eq!(token.secret(), "tok");
        assert!(token.lifetime > Duration::from_secs(3500));
        assert!(parse_cli_token(b"not json").is_err());
    }
}
