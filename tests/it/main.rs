//! The single integration-test binary (one link step for every e2e and protocol test).
//! Each area adds its module here.

mod azure_admin_units;
mod azure_arm;
mod azure_auth;
mod azure_directory_objects;
mod azure_http;
mod azure_monitor;
mod azure_redact;
mod azure_support;
mod bad_input;
mod client_config;
mod examples;
mod harness;
mod no_panic;
mod protocol;
mod provider_config;
mod resource_account;
mod resource_ca_exclusion;
mod resource_role_assignment;
mod sdk_python;
mod secrets;
mod tidy;
mod transport;
