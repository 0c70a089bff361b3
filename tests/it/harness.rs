//! End-to-end harness: real `terraform`, the provider binary this build produced, and the
//! emulated tenant served in-process.
//!
//! A test is a [`Case`] — a list of [`Step`]s run in one private working directory, in the
//! style of azuread's acceptance tests: apply a config (a second plan must then be empty),
//! check state and tenant, import and compare with state, expect an error, destroy and check
//! the tenant. Terraform is run with `-no-color`, a private `TF_CLI_CONFIG_FILE` whose
//! `dev_overrides` point `registry.terraform.io/breakglass/breakglass` at the built binary, and
//! an environment stripped of the caller's `ARM_*`/`TF_*` settings. Whenever a step fails, the
//! panic message carries the command and Terraform's full output.
//!
//! Terraform itself is found by the rule `scripts/ensure-terraform.sh` uses: the one on PATH if
//! it is at least 1.0, else `.tools/bin/terraform` (installed by `make tools`). A case needing a
//! newer Terraform declares it and is skipped with a visible `SKIP` line when the one found is
//! older. If no Terraform is found at all the case is skipped too, unless
//! `BREAKGLASS_E2E_REQUIRED=1` (set by `make test`), where that is a failure.

#![allow(dead_code)] // Each e2e module uses its own subset of the harness.

mod case;
pub mod convergence;
#[cfg(test)]
mod selftest;
mod tenant;
mod terraform;
mod tls;
mod workspace;

// Re-exported for the e2e modules; each uses its own subset.
#[allow(unused_imports)]
pub use case::{copy_dir, Case, Ctx, Stage, Step};
pub use tenant::{ClientCertificate, FakeTenant};
#[allow(unused_imports)]
pub use terraform::{requires_terraform, Terraform, Version};
#[allow(unused_imports)]
pub use tls::{ConnectProxy, TestCa};
#[allow(unused_imports)]
pub use workspace::{State, Workspace};

/// The provider's source address, as configurations name it.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/breakglass/breakglass";

/// `terraform { required_providers { … } }` for the breakglass provider. Configurations start
/// with this, then add a `provider "breakglass"` block if they need one.
pub fn required_providers() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    breakglass = {{\n      source = \"{PROVIDER_SOURCE}\"\n    }}\n  }}\n}}\n"
    )
}
