//! The single integration-test binary (one link step for every e2e and protocol test).
//! Each area adds its module here.

mod azure_admin_units;
mod azure_arm;
mod azure_auth;
mod azure_conditional_access;
mod azure_directory_objects;
mod azure_http;
mod azure_monitor;
mod azure_redact;
mod azure_support;
mod bad_input;
mod client_config;
mod docs;
mod examples;
mod harness;
mod import_existing;
mod monitor_support;
mod no_panic;
mod performance;
mod posture;
mod protocol;
mod provider_config;
mod release;
mod reliability_faults;
mod resource_account;
mod resource_action_group;
mod resource_ca_exclusion;
mod resource_entra_diagnostic_setting;
mod resource_restricted_unit;
mod resource_role_assignment;
mod resource_signin_alert;
mod sdk_python;
mod secrets;
mod tidy;
mod transport;
