//! The harness checking itself, on Terraform's built-in `terraform_data` resource (1.4+), so
//! every step is proven — including that each check can fail — independently of any breakglass
//! resource.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{required_providers, requires_terraform, Case, FakeTenant, Stage, Step};

/// A config using our provider (configured against the tenant through the data source) and a
/// built-in resource whose lifecycle the harness drives.
fn config(resource_body: &str) -> String {
    format!(
        "{}\nprovider \"breakglass\" {{}}\n\ndata \"breakglass_client_config\" \"current\" {{}}\n\n\
         resource \"terraform_data\" \"marker\" {{\n{resource_body}\n}}\n",
        required_providers()
    )
}

/// Runs `case`, which must fail with a message containing `expected`.
fn expect_case_failure(min_terraform: &str, case: Case, expected: &str) {
    if requires_terraform(min_terraform).is_none() {
        return;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| case.run()));
    let payload = outcome.expect_err("the case should have failed");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(
        message.contains(expected),
        "failed for another reason than {expected:?}:\n{message}"
    );
}

#[test]
fn steps_apply_check_import_and_destroy_tf1_4() {
    Case::new()
        .requires("1.4")
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config("  input = \"break-glass\"")))
        .step(Step::check(|ctx| {
            let input = ctx.state.attribute("terraform_data.marker", "input")?;
            if input != "break-glass" {
                return Err(format!("input is {input}"));
            }
            let tenant = ctx
                .state
                .attribute("data.breakglass_client_config.current", "tenant_id")?;
            if tenant != ctx.tenant().tenant_id.as_str() {
                return Err(format!("tenant_id is {tenant}"));
            }
            Ok(())
        }))
        .step(Step::PlanEmpty)
        // An imported terraform_data has only its id; input/output live in config alone.
        .step(Step::import_state_verify(
            "terraform_data.marker",
            &["input", "output"],
        ))
        .step(Step::destroy_check(|ctx| {
            match ctx.state.resource("terraform_data.marker") {
                Some(_) => Err("terraform_data.marker survived destroy".into()),
                None => Ok(()),
            }
        }))
        .run();
}

#[test]
fn a_plan_with_changes_after_apply_fails_the_case_tf1_4() {
    // `timestamp()` is unknown until apply, so every plan replaces the resource.
    let case = Case::new()
        .requires("1.4")
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config("  triggers_replace = timestamp()")));
    expect_case_failure("1.4", case, "expected an empty plan");
}

#[test]
fn an_import_that_loses_attributes_fails_the_case_tf1_4() {
    let case = Case::new()
        .requires("1.4")
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config("  input = \"break-glass\"")))
        .step(Step::import_state_verify("terraform_data.marker", &[]));
    expect_case_failure("1.4", case, "does not reproduce state");
}

#[test]
fn a_failing_destroy_check_fails_the_case_tf1_4() {
    let case = Case::new()
        .requires("1.4")
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(config("  input = \"break-glass\"")))
        .step(Step::destroy_check(|_| {
            Err("the tenant still has it".into())
        }));
    expect_case_failure("1.4", case, "destroy check failed: the tenant still has it");
}

#[test]
fn an_expected_error_that_does_not_happen_fails_the_case() {
    let case = Case::new().step(Step::expect_error(
        format!("{}\nprovider \"breakglass\" {{}}\n", required_providers()),
        Stage::Validate,
        "Error",
    ));
    expect_case_failure("1.0", case, "but it succeeded");
}
