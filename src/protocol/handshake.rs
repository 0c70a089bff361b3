//! go-plugin's launch contract, as Terraform's plugin client drives it.
//!
//! Terraform starts the provider with environment variables and reads one line from its stdout:
//!
//! * `TF_PLUGIN_MAGIC_COOKIE` must hold Terraform's documented value. It is not security, only
//!   a way to tell "started by Terraform" from "someone ran the binary by hand".
//! * `PLUGIN_PROTOCOL_VERSIONS` lists the protocol majors Terraform speaks; we speak 6 only.
//! * `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` bound the TCP port to listen on.
//! * `PLUGIN_CLIENT_CERT` (PEM) switches on AutoMTLS: the server presents a certificate it
//!   generated and accepts only this client certificate.
//!
//! The answer is `CORE|PROTOCOL|NETWORK|ADDRESS|grpc|CERT`, CERT being the server certificate's
//! DER in unpadded standard base64 (empty without AutoMTLS).

use std::fmt;
use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

/// Environment variable and value Terraform sets for every provider it launches.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// go-plugin's own handshake format version (first field of the handshake line).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol major this provider implements.
pub const PROTOCOL_VERSION: u32 = 6;

/// Source address under which `--debug` offers the provider to Terraform.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/breakglass/breakglass";

/// Inclusive TCP port range to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

/// What Terraform asked for when it launched us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// `None` when Terraform set no range: the OS picks any free port.
    pub ports: Option<PortRange>,
    /// PEM of the only client certificate to accept (AutoMTLS); `None` serves plaintext.
    pub client_cert_pem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// The magic cookie is missing or wrong: a person ran the binary.
    NotLaunchedByTerraform,
    /// Terraform offered protocol versions that do not include ours.
    ProtocolMismatch {
        offered: String,
    },
    InvalidPortRange {
        detail: String,
    },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::NotLaunchedByTerraform => write!(
                f,
                "terraform-provider-breakglass is a Terraform plugin, not a program to run by hand.\n\
                 Terraform starts it by itself: declare the provider in a configuration's\n\
                 required_providers block and run `terraform init`, then `terraform plan`.\n\
                 To attach a debugger instead, start it with --debug and follow what it prints."
            ),
            LaunchError::ProtocolMismatch { offered } => write!(
                f,
                "terraform-provider-breakglass speaks Terraform plugin protocol \
                 {PROTOCOL_VERSION}, but this Terraform offered only version(s) {offered}. \
                 Use Terraform 1.0 or later."
            ),
            LaunchError::InvalidPortRange { detail } => write!(
                f,
                "terraform-provider-breakglass cannot choose a port to listen on: {detail}"
            ),
        }
    }
}

impl std::error::Error for LaunchError {}

impl Launch {
    /// Reads the launch contract from the process environment.
    pub fn from_process_env() -> Result<Launch, LaunchError> {
        Launch::from_env(|key| std::env::var(key).ok())
    }

    /// Reads the launch contract through `env` (a lookup, so tests need no process env).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Launch, LaunchError> {
        if env(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(LaunchError::NotLaunchedByTerraform);
        }
        // Absent means a client that predates version negotiation; it expects our default.
        if let Some(offered) = env("PLUGIN_PROTOCOL_VERSIONS").filter(|v| !v.trim().is_empty()) {
            let speaks_ours = offered
                .split(',')
                .any(|v| v.trim().parse::<u32>() == Ok(PROTOCOL_VERSION));
            if !speaks_ours {
                return Err(LaunchError::ProtocolMismatch { offered });
            }
        }
        Ok(Launch {
            ports: port_range(env("PLUGIN_MIN_PORT"), env("PLUGIN_MAX_PORT"))?,
            client_cert_pem: env("PLUGIN_CLIENT_CERT").filter(|pem| !pem.trim().is_empty()),
        })
    }
}

fn port_range(min: Option<String>, max: Option<String>) -> Result<Option<PortRange>, LaunchError> {
    let parse = |name: &str, value: Option<String>| -> Result<Option<u16>, LaunchError> {
        match value.filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => {
                v.trim()
                    .parse::<u16>()
                    .map(Some)
                    .map_err(|_| LaunchError::InvalidPortRange {
                        detail: format!("{name} is {v:?}, not a port number"),
                    })
            }
        }
    };
    let min = parse("PLUGIN_MIN_PORT", min)?;
    let max = parse("PLUGIN_MAX_PORT", max)?;
    let range = match (min, max) {
        (None, None) => return Ok(None),
        (Some(min), None) => PortRange { min, max: u16::MAX },
        (None, Some(max)) => PortRange { min: 1024, max },
        (Some(min), Some(max)) => PortRange { min, max },
    };
    if range.min > range.max {
        return Err(LaunchError::InvalidPortRange {
            detail: format!(
                "PLUGIN_MIN_PORT ({}) is greater than PLUGIN_MAX_PORT ({})",
                range.min, range.max
            ),
        });
    }
    Ok(Some(range))
}

/// The one stdout line that tells go-plugin where and how to connect.
pub fn handshake_line(address: SocketAddr, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|tcp|{address}|grpc|{cert}")
}

/// The `TF_REATTACH_PROVIDERS` value for `--debug`: Terraform connects to this already
/// running process (plaintext, no cookie) instead of starting one.
pub fn reattach_config(address: SocketAddr, pid: u32) -> String {
    serde_json::json!({
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": pid,
            // Terraform does not manage the lifetime of a provider marked Test.
            "Test": true,
            "Addr": { "Network": "tcp", "String": address.to_string() },
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    const COOKIE: (&str, &str) = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);

    #[test]
    fn missing_or_wrong_cookie_means_run_by_hand() {
        assert_eq!(
            Launch::from_env(env(&[])),
            Err(LaunchError::NotLaunchedByTerraform)
        );
        assert_eq!(
            Launch::from_env(env(&[(MAGIC_COOKIE_KEY, "nope")])),
            Err(LaunchError::NotLaunchedByTerraform)
        );
        let message = LaunchError::NotLaunchedByTerraform.to_string();
        assert!(message.contains("not a program to run by hand"));
    }

    #[test]
    fn protocol_six_must_be_offered_when_versions_are_listed() {
        assert!(Launch::from_env(env(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", "5,6")])).is_ok());
        assert!(Launch::from_env(env(&[COOKIE])).is_ok());
        assert_eq!(
            Launch::from_env(env(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", "4,5")])),
            Err(LaunchError::ProtocolMismatch {
                offered: "4,5".into()
            })
        );
    }

    #[test]
    fn port_range_and_client_cert_are_read() {
        let launch = Launch::from_env(env(&[
            COOKIE,
            ("PLUGIN_MIN_PORT", "10000"),
            ("PLUGIN_MAX_PORT", "25000"),
            ("PLUGIN_CLIENT_CERT", "-----BEGIN CERTIFICATE-----\n..."),
        ]))
        .unwrap();
        assert_eq!(
            launch.ports,
            Some(PortRange {
                min: 10000,
                max: 25000
            })
        );
        assert!(launch.client_cert_pem.is_some());
        assert_eq!(Launch::from_env(env(&[COOKIE])).unwrap().ports, None);
        assert!(matches!(
            Launch::from_env(env(&[
                COOKIE,
                ("PLUGIN_MIN_PORT", "9"),
                ("PLUGIN_MAX_PORT", "8")
            ])),
            Err(LaunchError::InvalidPortRange { .. })
        ));
        assert!(matches!(
            Launch::from_env(env(&[COOKIE, ("PLUGIN_MIN_PORT", "ten")])),
            Err(LaunchError::InvalidPortRange { .. })
        ));
    }

    #[test]
    fn handshake_line_has_six_fields_and_unpadded_cert() {
        let address: SocketAddr = "127.0.0.1:12345".parse().unwrap();
        assert_eq!(
            handshake_line(address, Some(&[1, 2, 3, 4])),
            "1|6|tcp|127.0.0.1:12345|grpc|AQIDBA"
        );
        assert_eq!(
            handshake_line(address, None),
            "1|6|tcp|127.0.0.1:12345|grpc|"
        );
    }

    #[test]
    fn reattach_config_names_the_provider_and_address() {
        let address: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&reattach_config(address, 77)).unwrap();
        let entry = &config[PROVIDER_ADDRESS];
        assert_eq!(entry["ProtocolVersion"], 6);
        assert_eq!(entry["Pid"], 77);
        assert_eq!(entry["Addr"]["String"], "127.0.0.1:4242");
    }
}
