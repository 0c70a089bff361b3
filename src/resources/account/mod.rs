//! `breakglass_account`: a cloud-only emergency-access ("break-glass") user in Microsoft Entra.
//!
//! Microsoft's guidance for these accounts drives the rules here: cloud-only (never synced or
//! federated, so an on-premises or IdP outage cannot lock them out), preferably on the initial
//! `*.onmicrosoft.com` domain, with a long random password that works when needed (no forced
//! change at first sign-in). The password is either generated here and kept in state (so it can
//! be written to a vault), or supplied write-only and never stored.
//!
//! Order follows the trait: schema, validate, plan, create, read, update, delete, import.
//! `rules` holds Entra's UPN and password rules and the generator; `errors` the domain checks
//! and how Graph's refusals read; `credentials` the certificate user ids and the registered
//! authentication methods.

mod credentials;
mod errors;
mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::shared;
use crate::azure::users::{self, NewUser, User, UserChanges, Users};
use crate::azure::{AzureClients, Deadline, Secret};
use crate::framework::typed::{ModelPlan, ModelResource};
use crate::framework::validators::{
    also_requires, characters, conflicts_with, int_between, length_between, whole_number,
};
use crate::framework::{
    Attribute, AttributePath, Diagnostic, Diagnostics, Failure, Operation, Schema, Tf,
    TimeoutDefaults, Timeouts, Type,
};
use credentials::{registered_methods, MethodModel};
use errors::{
    api_diagnostic, create_error, delete_error, domain_diagnostics, update_failure, Check,
};
use rules::{alias_of, domain_of, generate_password};

pub struct AccountResource;

const TYPE_NAME: &str = "breakglass_account";

/// azuread's defaults for users; waiting for Microsoft Entra replication counts towards them.
const TIMEOUTS: TimeoutDefaults = TimeoutDefaults {
    create: Duration::from_secs(5 * 60),
    read: Duration::from_secs(5 * 60),
    update: Duration::from_secs(5 * 60),
    delete: Duration::from_secs(5 * 60),
    includes: "waiting for Microsoft Entra replication counts towards it",
};
/// Plan-time lookups should not hold a plan up for long.
const PLAN_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

// ---- schema and model ---------------------------------------------------------------------

/// Config, plan and state of a `breakglass_account`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountModel {
    id: Tf<String>,
    object_id: Tf<String>,
    user_principal_name: Tf<String>,
    display_name: Tf<String>,
    mail_nickname: Tf<String>,
    account_enabled: Tf<bool>,
    usage_location: Tf<String>,
    password_length: Tf<i64>,
    password_rotation_trigger: Tf<BTreeMap<String, String>>,
    password: Tf<String>,
    password_wo: Tf<String>,
    password_wo_version: Tf<i64>,
    force_password_change: Tf<bool>,
    permanently_delete_on_destroy: Tf<bool>,
    created_date_time: Tf<String>,
    on_premises_sync_enabled: Tf<bool>,
    certificate_user_ids: Tf<BTreeSet<String>>,
    authentication_methods: Tf<Vec<MethodModel>>,
    deletion_protection: Tf<bool>,
    timeouts: Tf<Timeouts>,
}

fn account_schema() -> Schema {
    Schema {
        version: 0,
        description: include_str!("description.md").trim_end().to_owned(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "The object id of the user (same as `object_id`).",
            )
            .use_state_for_unknown(),
            Attribute::computed(
                "object_id",
                Type::String,
                "The object id (GUID) Microsoft Entra assigned to the user; use it in role \
                 assignments and conditional-access exclusions.",
            )
            .use_state_for_unknown(),
            Attribute::required(
                "user_principal_name",
                Type::String,
                "The sign-in name, `alias@domain`. The domain must be a verified, managed \
                 (not federated) domain of the tenant; the initial `*.onmicrosoft.com` domain \
                 is recommended.",
            )
            .case_insensitive()
            .validate(rules::user_principal_name()),
            Attribute::required(
                "display_name",
                Type::String,
                "The name shown in the Entra admin center and sign-in pages.",
            ),
            Attribute::optional_computed(
                "mail_nickname",
                Type::String,
                "The mail alias. Defaults to the alias part of `user_principal_name`.",
            )
            .validate(length_between(1, 64).summary("Invalid mail nickname"))
            .validate(
                characters("ASCII letters, digits and symbols except `@`", |c| {
                    c.is_ascii_graphic() && c != '@'
                })
                .summary("Invalid mail nickname"),
            ),
            Attribute::optional(
                "account_enabled",
                Type::Bool,
                "Whether the account can sign in.",
            )
            .default(true),
            Attribute::optional(
                "usage_location",
                Type::String,
                "Two-letter country code (ISO 3166-1 alpha-2, e.g. `NL`), needed before \
                 licences can be assigned. Unset means none.",
            )
            .validate(length_between(2, 2).summary("Invalid usage location"))
            .validate(
                characters("upper-case letters (an ISO 3166-1 alpha-2 code)", |c| {
                    c.is_ascii_uppercase()
                })
                .summary("Invalid usage location"),
            ),
            Attribute::optional(
                "password_length",
                Type::Number,
                "Length of the generated password; unset means 64. Changing it generates and \
                 sets a new password.",
            )
            .config_only()
            .validate(
                int_between(rules::PASSWORD_LENGTH_MIN, rules::PASSWORD_LENGTH_MAX)
                    .summary("Invalid password length"),
            ),
            Attribute::optional(
                "password_rotation_trigger",
                Type::map(Type::String),
                "Arbitrary values; any change generates and sets a new password (for example \
                 `{ rotated = \"2025-06\" }`).",
            )
            .config_only(),
            Attribute::computed(
                "password",
                Type::String,
                "The generated password, for handing to a vault. Null when `password_wo` is \
                 used and after an import (Microsoft Graph never returns passwords).",
            )
            .sensitive(),
            Attribute::optional(
                "password_wo",
                Type::String,
                "A password you supply, write-only: sent to Microsoft Entra and never stored \
                 in plan or state (Terraform 1.11 or later): 8 to 256 printable ASCII \
                 characters, three of lower case, upper case, digits and symbols, not \
                 containing the alias.",
            )
            .sensitive()
            .write_only()
            .validate(rules::password_complexity())
            .validate(
                conflicts_with(&["password_length", "password_rotation_trigger"])
                    .summary("Conflicting password settings"),
            )
            .validate(
                also_requires(&["password_wo_version"]).summary("Missing password_wo_version"),
            ),
            Attribute::optional(
                "password_wo_version",
                Type::Number,
                "Version of `password_wo`. Terraform cannot see write-only values change, so \
                 bump this to set a new `password_wo`.",
            )
            .config_only()
            .validate(whole_number())
            .validate(also_requires(&["password_wo"]).summary("Missing password_wo")),
            Attribute::optional(
                "force_password_change",
                Type::Bool,
                "Whether a password this provider sets must be changed at the next sign-in. \
                 Defaults to `false`: an emergency account must work the moment it is needed. \
                 Applies when a password is set (create and rotation).",
            )
            .config_only(),
            Attribute::optional(
                "permanently_delete_on_destroy",
                Type::Bool,
                "On destroy, also remove the user from deleted items, so it cannot be \
                 restored. Defaults to `false`: destroy soft-deletes, and the user stays \
                 restorable for 30 days.",
            )
            .config_only(),
            Attribute::computed(
                "created_date_time",
                Type::String,
                "When the user was created (RFC 3339).",
            )
            .use_state_for_unknown(),
            Attribute::computed(
                "on_premises_sync_enabled",
                Type::Bool,
                "Whether the user is synced from an on-premises directory. Always null or \
                 `false` for a manageable emergency account.",
            )
            .use_state_for_unknown(),
            credentials::certificate_user_ids_attribute(),
            credentials::authentication_methods_attribute(),
            shared::deletion_protection_attribute("account"),
        ],
        blocks: vec![TIMEOUTS.block()],
        deprecated: false,
    }
}

/// How the password is provided, decided by configuration alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordMode {
    Generated,
    WriteOnly,
}

impl AccountModel {
    fn password_mode(&self) -> PasswordMode {
        if self.password_wo.is_null() && self.password_wo_version.is_null() {
            PasswordMode::Generated
        } else {
            PasswordMode::WriteOnly
        }
    }

    /// Whether this configuration sets a new password on the account `prior` describes.
    fn rotates_password_of(&self, prior: &AccountModel) -> bool {
        match self.password_mode() {
            PasswordMode::Generated => {
                self.password_rotation_trigger != prior.password_rotation_trigger
                    || self.password_length != prior.password_length
                    // Switching from a write-only password to a generated one.
                    || prior.password_wo_version.is_set()
            }
            PasswordMode::WriteOnly => self.password_wo_version != prior.password_wo_version,
        }
    }

    fn upn(&self) -> &str {
        self.user_principal_name.as_deref().unwrap_or_default()
    }

    fn force_password_change(&self) -> bool {
        self.force_password_change.get() == Some(&true)
    }

    /// State for `user` as the tenant reports it. The protocol layer carries the
    /// configuration-only attributes over and keeps the configured UPN spelling (the attribute
    /// is declared case-insensitive).
    fn observed(user: &User, password: Tf<String>) -> AccountModel {
        AccountModel {
            id: Tf::Known(user.id.clone()),
            object_id: Tf::Known(user.id.clone()),
            user_principal_name: Tf::Known(user.user_principal_name.clone()),
            display_name: user.display_name.clone().into(),
            mail_nickname: user.mail_nickname.clone().into(),
            account_enabled: user.account_enabled.into(),
            usage_location: user.usage_location.clone().into(),
            password,
            password_wo: Tf::Null,
            created_date_time: user.created_date_time.clone().into(),
            // Graph answers null for a user that was never synced: that is `false`, and a
            // known value keeps update plans from showing it "known after apply".
            on_premises_sync_enabled: Tf::Known(user.on_premises_sync_enabled.unwrap_or(false)),
            certificate_user_ids: Tf::Known(user.certificate_user_ids().iter().cloned().collect()),
            ..AccountModel::default()
        }
    }

    /// The properties whose planned value (`self`) differs from `prior`.
    fn changes_from(&self, prior: &AccountModel) -> UserChanges {
        fn changed<T: PartialEq + Clone>(new: &Tf<T>, old: &Tf<T>) -> Option<T> {
            (new != old).then(|| new.get().cloned()).flatten()
        }
        let upn_changed = !self
            .upn()
            .eq_ignore_ascii_case(prior.user_principal_name.as_deref().unwrap_or_default());
        UserChanges {
            user_principal_name: upn_changed.then(|| self.upn().to_owned()),
            display_name: changed(&self.display_name, &prior.display_name),
            mail_nickname: changed(&self.mail_nickname, &prior.mail_nickname),
            account_enabled: changed(&self.account_enabled, &prior.account_enabled),
            usage_location: (self.usage_location != prior.usage_location)
                .then(|| self.usage_location.get().cloned()),
            password: None,
            certificate_user_ids: changed(&self.certificate_user_ids, &prior.certificate_user_ids)
                .map(|ids| ids.into_iter().collect()),
        }
    }
}

#[async_trait]
impl ModelResource<AzureClients> for AccountResource {
    type Model = AccountModel;

    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        account_schema()
    }

    fn deletion_refused(&self, prior: &Self::Model, action: &str) -> Option<Diagnostic> {
        shared::protected(&prior.deletion_protection, "account", action)
    }

    // Validation is declared on the schema (`rules` holds the UPN and password rules).

    // ---- plan ---------------------------------------------------------------------------

    async fn modify_plan(&self, plan: &mut ModelPlan<'_, AccountModel, AzureClients>) {
        let (config, prior, planned) = (&plan.config, plan.prior.as_ref(), &mut plan.planned);
        if config.mail_nickname.is_null() {
            let upn_kept = planned
                .user_principal_name
                .get()
                .zip(prior)
                .is_some_and(|(new, p)| new.eq_ignore_ascii_case(p.upn()));
            planned.mail_nickname = match (prior, planned.user_principal_name.get()) {
                (Some(p), _) if upn_kept && p.mail_nickname.is_set() => p.mail_nickname.clone(),
                (_, Some(upn)) => Tf::Known(alias_of(upn).to_owned()),
                _ => Tf::Unknown,
            };
        }
        planned.password = match (config.password_mode(), prior) {
            // Never stored: the secret lives only in configuration.
            (PasswordMode::WriteOnly, _) => Tf::Null,
            (PasswordMode::Generated, Some(p)) if !config.rotates_password_of(p) => {
                p.password.clone()
            }
            (PasswordMode::Generated, _) => Tf::Unknown,
        };

        if prior.and_then(|p| p.on_premises_sync_enabled.get()) == Some(&true) {
            // Entra Connect can take over a cloud user by matching its UPN or mail ("soft
            // match"); from then on it depends on the on-premises directory it must survive.
            plan.diagnostics.push(
                Diagnostic::warning(
                    "Break-glass account is now synced from on-premises",
                    "Microsoft Entra reports this account as synced from an on-premises \
                     directory, so it no longer survives an on-premises or synchronisation \
                     outage, and most of its properties can only be changed on-premises. \
                     Exclude it from synchronisation (or create a new cloud-only account).",
                )
                .at(AttributePath::root("on_premises_sync_enabled")),
            );
        }

        // The domain only needs checking when it is about to be used.
        let Some(upn) = plan.planned.user_principal_name.get() else {
            return;
        };
        if prior.is_some_and(|p| domain_of(p.upn()).eq_ignore_ascii_case(domain_of(upn))) {
            return;
        }
        let deadline = Deadline::after(PLAN_CHECK_TIMEOUT);
        let found = domain_diagnostics(plan.data, upn, &deadline, Check::Plan).await;
        plan.diagnostics.extend(found);
    }

    // ---- create -------------------------------------------------------------------------

    async fn create(
        &self,
        clients: &AzureClients,
        config: AccountModel,
        planned: AccountModel,
    ) -> Result<AccountModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Create)?;
        let upn = planned.upn().to_owned();

        // Repeated here in case the plan could not check it (provider configured late).
        require_suitable_domain(clients, &upn, &deadline).await?;

        let users = Users::new(&clients.graph);
        credentials::refuse_taken(&users, &planned, &deadline).await?;
        let (password, state_password) = new_password(&config, &planned)?;
        let nickname = planned.mail_nickname.as_deref().unwrap_or(alias_of(&upn));
        let new_user = NewUser {
            user_principal_name: &upn,
            display_name: planned.display_name.as_deref().unwrap_or_default(),
            mail_nickname: nickname,
            account_enabled: planned.account_enabled.get() != Some(&false),
            usage_location: planned.usage_location.as_deref(),
            password: &password,
            force_password_change: planned.force_password_change(),
        };
        let created = match users.create(&new_user, &deadline).await {
            Ok(user) => user,
            Err(e) => {
                let mode = config.password_mode();
                return Err(create_error(&users, e, &upn, mode, &deadline).await.into());
            }
        };

        // Entra replicates asynchronously: until the new user reads back consistently, the
        // refresh after apply could find nothing and plan to create it again.
        match users.wait_readable(&created.id, &deadline).await {
            Ok(user) => {
                let state = AccountModel::observed(&user, state_password);
                credentials::complete_create(&users, state, &planned, &deadline).await
            }
            // The user exists; keep it in state so Terraform does not lose track of it.
            Err(e) => Err(Failure::new(Diagnostic::error(
                "Account created but not yet readable",
                format!(
                    "User {upn} was created with object id {}, but Microsoft Entra did not \
                     return it consistently in time: {e}. It is recorded in state; the next \
                     plan refreshes it.",
                    created.id
                ),
            ))
            .with_model(&AccountModel::observed(&created, state_password))),
        }
    }

    // ---- read ---------------------------------------------------------------------------

    async fn read(
        &self,
        clients: &AzureClients,
        state: AccountModel,
    ) -> Result<Option<AccountModel>, Diagnostics> {
        let deadline = shared::deadline(&TIMEOUTS, &state.timeouts, Operation::Read)?;
        let id = state.id.required("id")?;
        let users = Users::new(&clients.cached.graph);
        let user = match users.get(&id, &deadline).await {
            Ok(Some(user)) => user,
            Ok(None) => return Ok(None),
            Err(e) => return Err(api_diagnostic(e, "read", &id).into()),
        };
        let methods = registered_methods(&users, &id, deadline)
            .await
            .map_err(|e| api_diagnostic(e, "read the authentication methods of", &id))?;
        Ok(Some(AccountModel {
            authentication_methods: methods,
            ..AccountModel::observed(&user, state.password.clone())
        }))
    }

    // ---- update -------------------------------------------------------------------------

    async fn update(
        &self,
        clients: &AzureClients,
        config: AccountModel,
        prior: AccountModel,
        planned: AccountModel,
    ) -> Result<AccountModel, Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &planned.timeouts, Operation::Update)?;
        let id = prior.id.required("id")?;
        let upn = planned.upn().to_owned();

        let mut changes = planned.changes_from(&prior);
        if changes.user_principal_name.is_some() {
            require_suitable_domain(clients, &upn, &deadline).await?;
        }
        let mut new_state = planned;
        new_state.password = prior.password.clone();
        if config.rotates_password_of(&prior) {
            let (secret, stored) = new_password(&config, &new_state)?;
            changes.password = Some((secret, new_state.force_password_change()));
            new_state.password = stored;
        }
        if changes.is_empty() {
            // Only configuration-side settings changed (trigger-free knobs, timeouts, or a
            // UPN spelled in another case, which Entra treats as the same name).
            return Ok(new_state);
        }

        let users = Users::new(&clients.graph);
        if let Err(e) = users.update(&id, &changes, &deadline).await {
            let mode = config.password_mode();
            let who = (id.as_str(), upn.as_str());
            return Err(update_failure(clients, e, who, &changes, mode, &deadline)
                .await
                .into());
        }
        let what = format!("the changes to user {upn} to replicate");
        match users
            .wait_until(&id, &what, &deadline, |u| changes.visible_in(u))
            .await
        {
            Ok(user) => Ok(AccountModel {
                authentication_methods: prior.authentication_methods.clone(),
                ..AccountModel::observed(&user, new_state.password.clone())
            }),
            // The PATCH was accepted, so the planned values are what the tenant holds.
            Err(e) => Err(Failure::new(Diagnostic::error(
                "Account updated but not yet consistent",
                format!(
                    "Microsoft Entra accepted the changes to {upn} but did not return them \
                     consistently in time: {e}. The next plan refreshes the account."
                ),
            ))
            .with_model(&new_state)),
        }
    }

    // ---- delete -------------------------------------------------------------------------

    async fn delete(&self, clients: &AzureClients, prior: AccountModel) -> Result<(), Failure> {
        let deadline = shared::deadline(&TIMEOUTS, &prior.timeouts, Operation::Delete)?;
        let id = prior.id.required("id")?;
        let upn = prior.user_principal_name.as_deref().unwrap_or(&id);
        let users = Users::new(&clients.graph);
        // A 404 means someone else already deleted it: the goal is reached.
        let just_deleted = match users.delete(&id, &deadline).await {
            Ok(existed) => existed,
            Err(e) if users::is_request_denied(&e) => {
                return Err(delete_error(clients, e, (&id, upn), &deadline).await.into())
            }
            Err(e) => return Err(api_diagnostic(e, "delete", upn).into()),
        };
        if prior.permanently_delete_on_destroy.get() == Some(&true) {
            if let Err(e) = users.purge_deleted(&id, just_deleted, &deadline).await {
                return Err(Diagnostic::error(
                    "Account deleted but not purged",
                    format!(
                        "User {upn} ({id}) was soft-deleted, but removing it from deleted items \
                         failed: {e}. It stays restorable for 30 days; delete it from \
                         /directory/deletedItems by hand if it must be gone."
                    ),
                )
                .into());
            }
        }
        Ok(())
    }

    // ---- import -------------------------------------------------------------------------

    async fn import(&self, clients: &AzureClients, id: &str) -> Result<AccountModel, Diagnostics> {
        let key = id.trim();
        let deadline = Deadline::after(TIMEOUTS.read);
        let user = Users::new(&clients.graph)
            .get(key, &deadline)
            .await
            .map_err(|e| api_diagnostic(e, "import", key))?
            .ok_or_else(|| {
                Diagnostic::error(
                    "No such user",
                    format!(
                        "Microsoft Entra has no user with object id or user principal name \
                         {key:?}. Check the id, or create the account with Terraform instead."
                    ),
                )
            })?;
        if user.is_synced() {
            return Err(Diagnostic::error(
                "Synced users cannot be break-glass accounts",
                format!(
                    "User {} ({}) is synced from an on-premises directory. Emergency-access \
                     accounts must be cloud-only so that an on-premises or synchronisation \
                     outage cannot lock them out. Create a new cloud-only account with \
                     breakglass_account instead.",
                    user.user_principal_name, user.id
                ),
            )
            .into());
        }
        Ok(AccountModel {
            id: Tf::Known(user.id),
            // An imported emergency account is protected, as a created one is by default.
            deletion_protection: Tf::Known(true),
            ..AccountModel::default()
        })
    }
}

// ---- helpers ------------------------------------------------------------------------------

/// The password to send when one is set (create, rotation), and what `password` holds in
/// state afterwards.
fn new_password(
    config: &AccountModel,
    planned: &AccountModel,
) -> Result<(Secret, Tf<String>), Diagnostic> {
    match config.password_mode() {
        PasswordMode::Generated => {
            let length = planned
                .password_length
                .get()
                .copied()
                .unwrap_or(rules::DEFAULT_PASSWORD_LENGTH)
                .clamp(rules::PASSWORD_LENGTH_MIN, rules::PASSWORD_LENGTH_MAX);
            let secret = generate_password(length as usize, alias_of(planned.upn()));
            Ok((Secret::new(secret.clone()), Tf::Known(secret)))
        }
        PasswordMode::WriteOnly => match config.password_wo.get() {
            Some(secret) => Ok((Secret::new(secret.as_str()), Tf::Null)),
            None => Err(Diagnostic::error(
                "password_wo has no value",
                "password_wo must be known when the account is created or its \
                 password_wo_version changes.",
            )
            .at(AttributePath::root("password_wo"))),
        },
    }
}

async fn require_suitable_domain(
    clients: &AzureClients,
    upn: &str,
    deadline: &Deadline,
) -> Result<(), Failure> {
    let found = domain_diagnostics(Some(clients), upn, deadline, Check::Write).await;
    match found.has_errors() {
        true => Err(found.into()),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{decode, typed, Number, Severity, Value};
    use crate::protocol::testing;
    use crate::protocol::validate::declared_validators;

    fn config(attrs: &[(&str, Value)]) -> Value {
        testing::config(&account_schema(), attrs)
    }

    async fn errors_at(cfg: &Value) -> Vec<String> {
        let diags = declared_validators(&account_schema(), cfg);
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn model_and_schema_have_the_same_fields() {
        assert_eq!(
            crate::framework::model::field_names::<AccountModel>(),
            account_schema().field_names()
        );
    }

    #[tokio::test]
    async fn validation_points_at_the_attribute() {
        let upn = ("user_principal_name", Value::from("bg@contoso.com"));
        let one = ("password_wo_version", Value::Number(Number::Int(1)));
        let both = config(&[
            upn.clone(),
            ("password_wo", "Correct-Horse-9".into()),
            one.clone(),
            ("password_length", Value::Number(Number::Int(32))),
        ]);
        assert_eq!(errors_at(&both).await, ["password_wo"]);

        let weak = config(&[upn.clone(), ("password_wo", "weakpassword".into()), one]);
        assert_eq!(errors_at(&weak).await, ["password_wo"]);
        let diags = declared_validators(&account_schema(), &weak);
        assert!(diags.iter().all(|d| !d.detail.contains("weakpassword")));

        let short = config(&[("password_length", Value::Number(Number::Int(15)))]);
        assert_eq!(errors_at(&short).await, ["password_length"]);
        let huge = config(&[("password_length", Value::Number(Number::Float(1e300)))]);
        assert_eq!(errors_at(&huge).await, ["password_length"]);

        let no_version = config(&[("password_wo", "Correct-Horse-9".into())]);
        assert_eq!(errors_at(&no_version).await, ["password_wo"]);

        let unknowns = config(&[
            ("user_principal_name", Value::Unknown),
            ("password_wo", Value::Unknown),
            ("password_wo_version", Value::Unknown),
        ]);
        assert!(errors_at(&unknowns).await.is_empty());

        let timeouts = |create: &str| {
            config(&[(
                "timeouts",
                Value::object([
                    ("create", Value::from(create)),
                    ("read", Value::Null),
                    ("update", Value::Null),
                    ("delete", Value::Null),
                ]),
            )])
        };
        assert_eq!(errors_at(&timeouts("soon")).await, ["timeouts.create"]);
        assert_eq!(
            errors_at(&timeouts("9999999999999999999h")).await,
            ["timeouts.create"]
        );
    }

    fn created_state() -> Value {
        config(&[
            ("id", "u1".into()),
            ("object_id", "u1".into()),
            ("user_principal_name", "bg@contoso.onmicrosoft.com".into()),
            ("display_name", "BG".into()),
            ("mail_nickname", "bg".into()),
            ("account_enabled", true.into()),
            ("password", "Generated-Passw0rd".into()),
            ("created_date_time", "2026-01-01T00:00:00Z".into()),
        ])
    }

    /// The framework's plan followed by the resource's, without a tenant.
    async fn plan(cfg: &Value, prior: &Value) -> Value {
        testing::plan(&*typed(AccountResource), cfg, prior)
            .await
            .planned
    }

    #[tokio::test]
    async fn create_plans_defaults_and_an_unknown_generated_password() {
        let cfg = config(&[
            ("user_principal_name", "bg@contoso.onmicrosoft.com".into()),
            ("display_name", "BG".into()),
        ]);
        let planned = plan(&cfg, &Value::Null).await;
        assert_eq!(planned.get("account_enabled"), Value::Bool(true));
        assert_eq!(planned.get("mail_nickname"), Value::from("bg"));
        assert_eq!(planned.get("password"), Value::Unknown);
        assert_eq!(planned.get("id"), Value::Unknown);

        let mut wo = cfg.clone();
        wo.set("password_wo", "Correct-Horse-9".into());
        wo.set("password_wo_version", Value::Number(Number::Int(1)));
        assert_eq!(plan(&wo, &Value::Null).await.get("password"), Value::Null);
    }

    #[tokio::test]
    async fn updates_keep_the_password_unless_a_rotation_is_asked_for() {
        let prior = created_state();
        let mut cfg = prior.clone();
        for computed in [
            "id",
            "object_id",
            "mail_nickname",
            "account_enabled",
            "password",
            "created_date_time",
        ] {
            cfg.set(computed, Value::Null);
        }
        cfg.set("display_name", "BG renamed".into());
        let planned = plan(&cfg, &prior).await;
        assert_eq!(planned.get("password"), prior.get("password"));
        assert_eq!(planned.get("id"), Value::from("u1"));
        assert_eq!(
            planned.get("created_date_time"),
            prior.get("created_date_time")
        );
        assert_eq!(planned.get("mail_nickname"), Value::from("bg"));

        cfg.set(
            "password_rotation_trigger",
            Value::Map([("rotated".to_owned(), Value::from("2026-11"))].into()),
        );
        assert_eq!(plan(&cfg, &prior).await.get("password"), Value::Unknown);
    }

    #[test]
    fn a_write_only_version_bump_rotates() {
        let mut prior: AccountModel = decode(&created_state()).unwrap();
        prior.password = Tf::Null;
        prior.password_wo_version = Tf::Known(1);
        let mut cfg = prior.clone();
        cfg.password_wo = Tf::Known("Correct-Horse-9".into());
        assert!(!cfg.rotates_password_of(&prior));
        cfg.password_wo_version = Tf::Known(2);
        assert!(cfg.rotates_password_of(&prior));
    }

    #[test]
    fn a_upn_in_another_case_is_no_property_change() {
        let prior: AccountModel = decode(&created_state()).unwrap();
        let mut planned = prior.clone();
        planned.user_principal_name = Tf::Known("BG@Contoso.onmicrosoft.com".into());
        assert!(planned.changes_from(&prior).is_empty());
        planned.user_principal_name = Tf::Known("bg2@contoso.onmicrosoft.com".into());
        assert!(planned.changes_from(&prior).user_principal_name.is_some());
    }

    #[test]
    fn schema_attributes_all_have_descriptions() {
        let schema = account_schema();
        assert!(schema.attributes.iter().all(|a| !a.description.is_empty()));
        assert!(schema.attribute("password").unwrap().sensitive);
        assert!(schema.attribute("password_wo").unwrap().write_only);
    }
}
