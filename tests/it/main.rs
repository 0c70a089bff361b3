//! The single integration-test binary (one link step for every e2e and protocol test).
//! Each area adds its module here.

mod harness;
mod provider_config;
