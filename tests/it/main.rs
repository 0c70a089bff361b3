//! The single integration-test binary (one link step for every e2e and protocol test).
//! Each area adds its module here.

mod harness;
mod provider_config;
mod protocol;
mod azure_support;
mod azure_arm;
mod azure_auth;
mod azure_http;
mod azure_redact;
mod client_config;
