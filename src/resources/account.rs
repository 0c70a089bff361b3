//! `breakglass_account`: a cloud-only emergency-access ("break-glass") user in Microsoft Entra.
//!
//! Microsoft's guidance for these accounts drives the rules here: cloud-only (never synced or
//! federated, so an on-premises or IdP outage cannot lock them out), preferably on the initial
//! `*.onmicrosoft.com` domain, with a long random password that works when needed (no forced
//! change at first sign-in). The password is either generated here and kept in state (so it can
//! be written to a vault), or supplied write-only and never stored.
//!
//! Order follows the trait: schema, validate, plan, create, read, update, delete, import.

use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::OsRng;
use rand::seq::SliceRandom;

use super::shared;
use crate::azure::users::{self, Domain, NewUser, User, UserChanges, Users};
use crate::azure::{AzureClients, AzureError, Deadline};
use crate::framework::{
    ApplyOutcome, Attribute, AttributePath, Block, Diagnostic, Diagnostics, ImportedResource,
    NestingMode, PlanRequest, PlannedChange, ProviderData, Resource, Schema, Type, Value,
};
use crate::logging;
use crate::provider::Secret;

pub struct AccountResource;

const TYPE_NAME: &str = "breakglass_account";

/// Long enough to be unguessable, short enough for every tool that has to handle it.
const DEFAULT_PASSWORD_LENGTH: i64 = 64;
/// 16 is the floor we accept for an account that bypasses MFA policies; 256 is Entra's limit.
const PASSWORD_LENGTH_MIN: i64 = 16;
const PASSWORD_LENGTH_MAX: i64 = 256;

/// Per-operation deadline when the `timeouts` block does not say otherwise (azuread's default
/// for users).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Plan-time lookups should not hold a plan up for long.
const PLAN_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Attributes that exist only in configuration and state: the tenant has no record of them, so
/// reads carry them over from the prior state (and imports start them at null).
const CONFIG_ONLY: [&str; 6] = [
    "password_length",
    "password_rotation_trigger",
    "password_wo_version",
    "force_password_change",
    "permanently_delete_on_destroy",
    "timeouts",
];

// ---- schema -------------------------------------------------------------------------------

fn timeouts_block() -> Block {
    let timeout = |operation: &str| {
        Attribute::optional(
            operation,
            Type::String,
            &format!(
                "How long {operation} may take, as a Go duration such as `\"10m\"` or \
                 `\"1h30m\"`. Defaults to 5 minutes; waiting for Microsoft Entra replication \
                 counts towards it."
            ),
        )
    };
    Block {
        type_name: "timeouts".into(),
        nesting: NestingMode::Single,
        description: "Deadlines for each operation, including retries and consistency waits."
            .into(),
        attributes: vec![
            timeout("create"),
            timeout("read"),
            timeout("update"),
            timeout("delete"),
        ],
        blocks: vec![],
        // Terraform requires both to be zero for a single-nested block.
        min_items: 0,
        max_items: 0,
    }
}

fn account_schema() -> Schema {
    Schema {
        version: 0,
        description: "A cloud-only Microsoft Entra emergency-access (\"break-glass\") user \
            account, managed through Microsoft Graph `/users`.\n\n\
            **Safety rules.** The user principal name must use a verified, *managed* domain \
            of the tenant (federated domains are refused, since their sign-ins depend on an \
            external identity provider); a warning recommends the initial \
            `*.onmicrosoft.com` domain, which survives custom-domain and federation failures. \
            Accounts synced from on-premises directories cannot be managed or imported. \
            `force_password_change` defaults to `false` so the account works the moment it is \
            needed. Destroying the account soft-deletes it (restorable for 30 days) unless \
            `permanently_delete_on_destroy` is set.\n\n\
            **Password.** Either the provider generates one (`password_length`, stored in the \
            sensitive `password` attribute so it can be written to a vault; change \
            `password_rotation_trigger` to rotate), or you supply one write-only with \
            `password_wo` and `password_wo_version` (Terraform 1.11 or later; bump the version \
            to rotate), in which case the password is never stored in plan or state.\n\n\
            **Import.** By object id or by user principal name (any case): \
            `terraform import breakglass_account.example 00000000-0000-0000-0000-000000000000` \
            or `terraform import breakglass_account.example bg-01@contoso.onmicrosoft.com`. \
            Microsoft Graph never returns passwords, so an imported account has a null \
            `password` until the next rotation (a `password_rotation_trigger` change or a \
            `password_wo_version` bump) sets one."
            .into(),
        attributes: vec![
            Attribute::computed(
                "id",
                Type::String,
                "The object id of the user (same as `object_id`).",
            ),
            Attribute::computed(
                "object_id",
                Type::String,
                "The object id (GUID) Microsoft Entra assigned to the user; use it in role \
                 assignments and conditional-access exclusions.",
            ),
            Attribute::required(
                "user_principal_name",
                Type::String,
                "The sign-in name, `alias@domain`. The domain must be a verified, managed \
                 (not federated) domain of the tenant; the initial `*.onmicrosoft.com` domain \
                 is recommended. Compared case-insensitively with the tenant.",
            ),
            Attribute::required(
                "display_name",
                Type::String,
                "The name shown in the Entra admin center and sign-in pages.",
            ),
            Attribute::optional_computed(
                "mail_nickname",
                Type::String,
                "The mail alias. Defaults to the alias part of `user_principal_name`.",
            ),
            Attribute::optional_computed(
                "account_enabled",
                Type::Bool,
                "Whether the account can sign in. Defaults to `true`.",
            ),
            Attribute::optional(
                "usage_location",
                Type::String,
                "Two-letter country code (ISO 3166-1 alpha-2, e.g. `NL`), needed before \
                 licences can be assigned. Unset means none.",
            ),
            Attribute::optional(
                "password_length",
                Type::Number,
                "Length of the generated password, 16 to 256; unset means 64. Changing it \
                 generates and sets a new password. Conflicts with `password_wo`.",
            ),
            Attribute::optional(
                "password_rotation_trigger",
                Type::map(Type::String),
                "Arbitrary values; any change generates and sets a new password (for example \
                 `{ rotated = \"2025-06\" }`). Conflicts with `password_wo`.",
            ),
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
                 in plan or state (Terraform 1.11 or later). Must meet Entra's complexity \
                 rules: 8 to 256 printable ASCII characters, three of lower case, upper case, \
                 digits and symbols, not containing the alias. Requires \
                 `password_wo_version`.",
            )
            .sensitive()
            .write_only(),
            Attribute::optional(
                "password_wo_version",
                Type::Number,
                "Version of `password_wo`. Terraform cannot see write-only values change, so \
                 bump this to set a new `password_wo`. Required with `password_wo`.",
            ),
            Attribute::optional(
                "force_password_change",
                Type::Bool,
                "Whether a password this provider sets must be changed at the next sign-in. \
                 Defaults to `false`: an emergency account must work the moment it is needed. \
                 Applies when a password is set (create and rotation).",
            ),
            Attribute::optional(
                "permanently_delete_on_destroy",
                Type::Bool,
                "On destroy, also remove the user from deleted items, so it cannot be \
                 restored. Defaults to `false`: destroy soft-deletes, and the user stays \
                 restorable for 30 days.",
            ),
            Attribute::computed(
                "created_date_time",
                Type::String,
                "When the user was created (RFC 3339).",
            ),
            Attribute::computed(
                "on_premises_sync_enabled",
                Type::Bool,
                "Whether the user is synced from an on-premises directory. Always null or \
                 `false` for a manageable emergency account.",
            ),
        ],
        blocks: vec![timeouts_block()],
        deprecated: false,
    }
}

#[async_trait]
impl Resource for AccountResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        account_schema()
    }

    // ---- validate -----------------------------------------------------------------------

    async fn validate(&self, config: &Value) -> Diagnostics {
        validate_config(config)
    }

    // ---- plan ---------------------------------------------------------------------------

    async fn modify_plan(&self, req: &PlanRequest<'_>, plan: &mut PlannedChange) {
        if req.proposed.is_null() {
            return;
        }
        if let Some(secret) = req.config.get("password_wo").as_str() {
            logging::register_secret(secret);
        }
        plan_account(req.config, req.prior, &mut plan.planned);
        if req.prior.get("on_premises_sync_enabled").as_bool() == Some(true) {
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
        let Some(upn) = plan
            .planned
            .get("user_principal_name")
            .as_str()
            .map(str::to_owned)
        else {
            return;
        };
        let prior_upn = req.prior.get("user_principal_name");
        if prior_upn
            .as_str()
            .is_some_and(|p| domain_of(p).eq_ignore_ascii_case(domain_of(&upn)))
        {
            return;
        }
        let Some(clients) = req
            .data
            .and_then(|d| AzureClients::from_provider_data(d).ok())
        else {
            plan.diagnostics.push(
                Diagnostic::warning(
                    "Domain not checked",
                    format!(
                        "The provider is not configured yet, so whether {} is a verified, \
                         managed domain of the tenant could not be checked at plan time. It is \
                         checked before the user is created.",
                        domain_of(&upn)
                    ),
                )
                .at(AttributePath::root("user_principal_name")),
            );
            return;
        };
        let deadline = Deadline::after(PLAN_CHECK_TIMEOUT);
        plan.diagnostics
            .extend(domain_diagnostics(clients, &upn, &deadline, true).await);
    }

    // ---- create -------------------------------------------------------------------------

    async fn create(&self, data: &ProviderData, config: &Value, planned: &Value) -> ApplyOutcome {
        let fail = |d: Diagnostic| ApplyOutcome::failed(Value::Null, d.into());
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return fail(d),
        };
        let deadline = match shared::deadline(planned, "create", DEFAULT_TIMEOUT) {
            Ok(d) => d,
            Err(d) => return fail(d),
        };
        let upn = planned
            .get("user_principal_name")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let display_name = planned
            .get("display_name")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mail_nickname = planned
            .get("mail_nickname")
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| alias_of(&upn).to_owned());
        let account_enabled = planned.get("account_enabled").as_bool().unwrap_or(true);
        let usage_location = planned.get("usage_location").as_str().map(str::to_owned);

        // Repeated here in case the plan could not check it (provider configured late).
        let domain_check = domain_diagnostics(clients, &upn, &deadline, false).await;
        if domain_check.has_errors() {
            return ApplyOutcome::failed(Value::Null, domain_check);
        }

        let (password, state_password) = match password_for_create(config, planned, &upn) {
            Ok(p) => p,
            Err(d) => return fail(d),
        };
        let new_user = NewUser {
            user_principal_name: &upn,
            display_name: &display_name,
            mail_nickname: &mail_nickname,
            account_enabled,
            usage_location: usage_location.as_deref(),
            password: &password,
            force_password_change: force_password_change(planned),
        };
        let users = Users::new(&clients.graph);
        let created = match users.create(&new_user, &deadline).await {
            Ok(user) => user,
            Err(e) => {
                let diagnostic = create_error(&users, e, &upn, config, &deadline).await;
                return fail(diagnostic);
            }
        };

        // Entra replicates asynchronously: until the new user reads back consistently, the
        // refresh after apply could find nothing and plan to create it again.
        match users.wait_readable(&created.id, &deadline).await {
            Ok(user) => ApplyOutcome::ok(account_state(&user, planned, state_password)),
            Err(e) => {
                // The user exists; keep it in state so Terraform does not lose track of it.
                let state = account_state(&created, planned, state_password);
                ApplyOutcome::failed(
                    state,
                    Diagnostic::error(
                        "Account created but not yet readable",
                        format!(
                            "User {upn} was created with object id {}, but Microsoft Entra \
                             did not return it consistently in time: {e}. It is recorded in \
                             state; the next plan refreshes it.",
                            created.id
                        ),
                    )
                    .into(),
                )
            }
        }
    }

    // ---- read ---------------------------------------------------------------------------

    async fn read(&self, data: &ProviderData, state: &Value) -> Result<Option<Value>, Diagnostics> {
        let clients = AzureClients::from_provider_data(data)?;
        let deadline = shared::deadline(state, "read", DEFAULT_TIMEOUT)?;
        let id = object_id_of(state)?;
        if let Some(secret) = state.get("password").as_str() {
            logging::register_secret(secret);
        }
        match Users::new(&clients.graph).get(&id, &deadline).await {
            Ok(None) => Ok(None),
            Ok(Some(user)) => Ok(Some(account_state(&user, state, state.get("password")))),
            Err(e) => Err(api_diagnostic(e, "read", &id).into()),
        }
    }

    // ---- update -------------------------------------------------------------------------

    async fn update(
        &self,
        data: &ProviderData,
        config: &Value,
        prior: &Value,
        planned: &Value,
    ) -> ApplyOutcome {
        let fail = |d: Diagnostic| ApplyOutcome::failed(prior.clone(), d.into());
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return fail(d),
        };
        let deadline = match shared::deadline(planned, "update", DEFAULT_TIMEOUT) {
            Ok(d) => d,
            Err(d) => return fail(d),
        };
        let id = match object_id_of(prior) {
            Ok(id) => id,
            Err(d) => return fail(d),
        };
        let upn = planned
            .get("user_principal_name")
            .as_str()
            .unwrap_or_default()
            .to_owned();

        let mut changes = property_changes(prior, planned);
        if changes.user_principal_name.is_some() {
            let domain_check = domain_diagnostics(clients, &upn, &deadline, false).await;
            if domain_check.has_errors() {
                return ApplyOutcome::failed(prior.clone(), domain_check);
            }
        }
        let mut state_password = prior.get("password");
        match password_for_update(config, prior, planned, &upn) {
            Ok(None) => {}
            Ok(Some((secret, stored))) => {
                changes.password = Some((secret, force_password_change(planned)));
                state_password = stored;
            }
            Err(d) => return fail(d),
        }

        let mut new_state = planned.clone();
        new_state.set("password", state_password.clone());
        if changes.is_empty() {
            // Only configuration-side settings changed (trigger-free knobs, timeouts).
            return ApplyOutcome::ok(new_state);
        }

        let users = Users::new(&clients.graph);
        if let Err(e) = users.update(&id, &changes, &deadline).await {
            return fail(update_error(e, &upn, &changes, config));
        }
        let what = format!("the changes to user {upn} to replicate");
        match users
            .wait_until(&id, &what, &deadline, |u| changes.visible_in(u))
            .await
        {
            Ok(user) => ApplyOutcome::ok(account_state(&user, planned, state_password)),
            // The PATCH was accepted, so the planned values are what the tenant holds.
            Err(e) => ApplyOutcome::failed(
                new_state,
                Diagnostic::error(
                    "Account updated but not yet consistent",
                    format!(
                        "Microsoft Entra accepted the changes to {upn} but did not return them \
                         consistently in time: {e}. The next plan refreshes the account."
                    ),
                )
                .into(),
            ),
        }
    }

    // ---- delete -------------------------------------------------------------------------

    async fn delete(&self, data: &ProviderData, prior: &Value) -> Diagnostics {
        let clients = match AzureClients::from_provider_data(data) {
            Ok(c) => c,
            Err(d) => return d.into(),
        };
        let deadline = match shared::deadline(prior, "delete", DEFAULT_TIMEOUT) {
            Ok(d) => d,
            Err(d) => return d.into(),
        };
        let id = match object_id_of(prior) {
            Ok(id) => id,
            Err(d) => return d.into(),
        };
        let upn = prior
            .get("user_principal_name")
            .as_str()
            .unwrap_or(&id)
            .to_owned();
        let users = Users::new(&clients.graph);
        // A 404 means someone else already deleted it: the goal is reached.
        let just_deleted = match users.delete(&id, &deadline).await {
            Ok(existed) => existed,
            Err(e) if users::is_request_denied(&e) => {
                return privileged_user_denied(e, &upn, "delete").into()
            }
            Err(e) => return api_diagnostic(e, "delete", &upn).into(),
        };
        if prior.get("permanently_delete_on_destroy").as_bool() == Some(true) {
            if let Err(e) = users.purge_deleted(&id, just_deleted, &deadline).await {
                return Diagnostic::error(
                    "Account deleted but not purged",
                    format!(
                        "User {upn} ({id}) was soft-deleted, but removing it from deleted items \
                         failed: {e}. It stays restorable for 30 days; delete it from \
                         /directory/deletedItems by hand if it must be gone."
                    ),
                )
                .into();
            }
        }
        Diagnostics::new()
    }

    // ---- import -------------------------------------------------------------------------

    async fn import(
        &self,
        data: &ProviderData,
        id: &str,
    ) -> Result<Vec<ImportedResource>, Diagnostics> {
        let clients = AzureClients::from_provider_data(data)?;
        let key = id.trim();
        let deadline = Deadline::after(DEFAULT_TIMEOUT);
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
        let mut state = empty_state();
        state.set("id", Value::String(user.id));
        Ok(vec![ImportedResource {
            type_name: TYPE_NAME.to_owned(),
            state,
        }])
    }
}

// ---- validation ---------------------------------------------------------------------------

/// Static checks on configuration (values may be unknown; only known ones are checked).
fn validate_config(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let at = AttributePath::root;

    let upn = config.get("user_principal_name");
    if let Some(upn) = upn.as_str() {
        if let Some(problem) = upn_problem(upn) {
            diags.push(
                Diagnostic::error(
                    "Invalid user principal name",
                    format!("{upn:?} is not a valid user principal name: {problem}."),
                )
                .at(at("user_principal_name")),
            );
        }
    }

    if let Some(nickname) = config.get("mail_nickname").as_str() {
        if nickname.is_empty()
            || nickname.len() > 64
            || !nickname.chars().all(|c| c.is_ascii_graphic() && c != '@')
        {
            diags.push(
                Diagnostic::error(
                    "Invalid mail nickname",
                    "mail_nickname must be 1 to 64 ASCII characters without spaces or `@`.",
                )
                .at(at("mail_nickname")),
            );
        }
    }

    if let Some(location) = config.get("usage_location").as_str() {
        if location.len() != 2 || !location.chars().all(|c| c.is_ascii_uppercase()) {
            diags.push(
                Diagnostic::error(
                    "Invalid usage location",
                    format!(
                        "{location:?} is not a two-letter upper-case country code (ISO \
                         3166-1 alpha-2), such as \"NL\" or \"US\"."
                    ),
                )
                .at(at("usage_location")),
            );
        }
    }

    let length = config.get("password_length");
    if let Value::Number(n) = &length {
        let ok = n
            .as_i64()
            .is_some_and(|l| (PASSWORD_LENGTH_MIN..=PASSWORD_LENGTH_MAX).contains(&l));
        if !ok {
            diags.push(
                Diagnostic::error(
                    "Invalid password length",
                    format!(
                        "password_length must be a whole number from {PASSWORD_LENGTH_MIN} to \
                         {PASSWORD_LENGTH_MAX}."
                    ),
                )
                .at(at("password_length")),
            );
        }
    }

    let password_wo = config.get("password_wo");
    if let Some(secret) = password_wo.as_str() {
        logging::register_secret(secret);
    }
    let generated_settings: Vec<&str> = ["password_length", "password_rotation_trigger"]
        .into_iter()
        .filter(|name| !config.get(name).is_null())
        .collect();
    if !password_wo.is_null() && !generated_settings.is_empty() {
        diags.push(
            Diagnostic::error(
                "Conflicting password settings",
                format!(
                    "password_wo supplies the password, while {} configure a generated one. \
                     Use one mode: remove password_wo (and password_wo_version) to have the \
                     provider generate the password, or remove {} to supply it write-only.",
                    generated_settings.join(" and "),
                    generated_settings.join(" and ")
                ),
            )
            .at(at("password_wo")),
        );
    }
    let version = config.get("password_wo_version");
    if !password_wo.is_null() && version.is_null() {
        diags.push(
            Diagnostic::error(
                "Missing password_wo_version",
                "password_wo needs password_wo_version: Terraform never stores write-only \
                 values, so the version is how the provider learns that a new password is to \
                 be set. Start with 1 and bump it to rotate.",
            )
            .at(at("password_wo_version")),
        );
    }
    if password_wo.is_null() && !version.is_null() {
        diags.push(
            Diagnostic::error(
                "Missing password_wo",
                "password_wo_version is set but password_wo is not. Set password_wo (for \
                 example from an ephemeral value or a vault), or remove password_wo_version to \
                 have the provider generate the password.",
            )
            .at(at("password_wo")),
        );
    }
    if let Some(secret) = password_wo.as_str() {
        if let Some(problem) = password_problem(secret, upn.as_str()) {
            // Never echo the value: say only what is wrong with it.
            diags.push(
                Diagnostic::error(
                    "Password does not meet Microsoft Entra complexity rules",
                    format!(
                        "The value of password_wo {problem}. Entra requires 8 to 256 printable \
                         ASCII characters from at least three of: lower case, upper case, \
                         digits, symbols; and no part of the user's alias."
                    ),
                )
                .at(at("password_wo")),
            );
        }
    }

    diags.extend(shared::validate_timeouts(config));
    diags
}

/// What is wrong with a UPN's shape, if anything. The alias rules are Entra's: letters,
/// digits and `' . - _ ! # ^ ~`, at most 64 characters, no leading, trailing or doubled dot.
fn upn_problem(upn: &str) -> Option<&'static str> {
    let Some((alias, domain)) = upn.split_once('@') else {
        return Some("it must have the form alias@domain");
    };
    if alias.is_empty() || domain.is_empty() || domain.contains('@') {
        return Some("it must have the form alias@domain, with exactly one @");
    }
    if alias.len() > 64 {
        return Some("the alias before @ may have at most 64 characters");
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c))
    {
        return Some("the alias may contain only letters, digits and ' . - _ ! # ^ ~");
    }
    if alias.starts_with('.') || alias.ends_with('.') || alias.contains("..") {
        return Some("the alias may not start or end with a dot or contain two dots in a row");
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !labels_ok || !domain.contains('.') {
        return Some("the part after @ must be a domain name such as contoso.onmicrosoft.com");
    }
    None
}

/// Entra's password rules for cloud users, phrased as the rest of a sentence starting "The
/// value …"; `None` when the password passes. Never includes the password.
fn password_problem(password: &str, upn: Option<&str>) -> Option<String> {
    let length = password.chars().count();
    if !(8..=256).contains(&length) {
        return Some(format!(
            "has {length} characters, outside the allowed 8 to 256"
        ));
    }
    if !password.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Some("contains characters other than printable ASCII".into());
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .into_iter()
    .filter(|present| *present)
    .count();
    if classes < 3 {
        return Some(format!(
            "uses {classes} of the four character classes; at least 3 are required"
        ));
    }
    if let Some(alias) = upn.map(alias_of) {
        // Entra checks aliases of three or more characters; shorter ones would forbid nearly
        // every password.
        if alias.len() >= 3 && password.to_lowercase().contains(&alias.to_lowercase()) {
            return Some("contains the user's alias".into());
        }
    }
    None
}

// ---- planning -----------------------------------------------------------------------------

/// How the password is provided, decided by configuration alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordMode {
    Generated,
    WriteOnly,
}

fn password_mode(config: &Value) -> PasswordMode {
    if config.get("password_wo").is_null() && config.get("password_wo_version").is_null() {
        PasswordMode::Generated
    } else {
        PasswordMode::WriteOnly
    }
}

/// Whether this plan sets a new password on an existing account.
fn rotation_requested(config: &Value, prior: &Value) -> bool {
    let changed = |name: &str| !same_value(&config.get(name), &prior.get(name));
    match password_mode(config) {
        PasswordMode::Generated => {
            changed("password_rotation_trigger")
                || changed("password_length")
                // Switching from a write-only password to a generated one.
                || !prior.get("password_wo_version").is_null()
        }
        PasswordMode::WriteOnly => changed("password_wo_version"),
    }
}

/// Refines the framework's default plan: defaults, values that never change once created, and
/// the password.
fn plan_account(config: &Value, prior: &Value, planned: &mut Value) {
    let creating = prior.is_null();
    let planned_upn = planned.get("user_principal_name");

    if config.get("account_enabled").is_null() {
        planned.set("account_enabled", Value::Bool(true));
    }

    if config.get("mail_nickname").is_null() {
        let upn_kept = match (
            planned_upn.as_str(),
            prior.get("user_principal_name").as_str(),
        ) {
            (Some(new), Some(old)) => new.eq_ignore_ascii_case(old),
            _ => false,
        };
        let nickname = if upn_kept && !prior.get("mail_nickname").is_null() {
            prior.get("mail_nickname")
        } else {
            match planned_upn.as_str() {
                Some(upn) => Value::from(alias_of(upn)),
                None => Value::Unknown,
            }
        };
        planned.set("mail_nickname", nickname);
    }

    if !creating {
        for name in [
            "id",
            "object_id",
            "created_date_time",
            "on_premises_sync_enabled",
        ] {
            planned.set(name, prior.get(name));
        }
    }

    let password = match password_mode(config) {
        // Never stored: the secret lives only in configuration.
        PasswordMode::WriteOnly => Value::Null,
        PasswordMode::Generated if creating || rotation_requested(config, prior) => Value::Unknown,
        PasswordMode::Generated => prior.get("password"),
    };
    planned.set("password", password);
}

/// Plan-time (and pre-write) checks of the UPN's domain. With `advise`, a managed domain that
/// is not the initial one earns a warning.
async fn domain_diagnostics(
    clients: &AzureClients,
    upn: &str,
    deadline: &Deadline,
    advise: bool,
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let path = AttributePath::root("user_principal_name");
    let domain_name = domain_of(upn);
    if domain_name.is_empty() {
        return diags;
    }
    let domain = match Users::new(&clients.graph)
        .domain(domain_name, deadline)
        .await
    {
        Ok(domain) => domain,
        Err(e) => {
            if advise {
                diags.push(
                    Diagnostic::warning(
                        "Domain not checked",
                        format!(
                            "Could not look up domain {domain_name} to check that it is a \
                             verified, managed domain (the provider's principal needs \
                             Domain.Read.All or Directory.Read.All): {e}"
                        ),
                    )
                    .at(path),
                );
            }
            return diags;
        }
    };
    let problem = match &domain {
        None => Some(format!(
            "{domain_name} is not a domain of this tenant. Use one of the tenant's verified \
             domains, preferably its initial *.onmicrosoft.com domain."
        )),
        Some(d) if !d.is_verified => Some(format!(
            "{domain_name} is a domain of this tenant but is not verified, so Microsoft Entra \
             refuses user principal names in it. Verify the domain first, or use the initial \
             *.onmicrosoft.com domain."
        )),
        Some(d) if d.is_federated() => Some(format!(
            "{domain_name} is a federated domain: sign-ins for it are handed to an external \
             identity provider, and an emergency-access account must keep working when that \
             provider fails. Use a managed domain, preferably the initial \
             *.onmicrosoft.com domain."
        )),
        Some(_) => None,
    };
    if let Some(detail) = problem {
        diags.push(
            Diagnostic::error("Unsuitable domain for a break-glass account", detail).at(path),
        );
    } else if advise && domain.as_ref().is_some_and(|d: &Domain| !d.is_initial) {
        diags.push(
            Diagnostic::warning(
                "Break-glass account outside the initial domain",
                format!(
                    "{domain_name} is a managed custom domain. Microsoft recommends the \
                     initial *.onmicrosoft.com domain for emergency-access accounts, because \
                     it keeps working when a custom domain's DNS or federation settings break."
                ),
            )
            .at(path),
        );
    }
    diags
}

// ---- create/update helpers ----------------------------------------------------------------

/// The password to send on create, and what `password` holds in state afterwards.
fn password_for_create(
    config: &Value,
    planned: &Value,
    upn: &str,
) -> Result<(Secret, Value), Diagnostic> {
    match password_mode(config) {
        PasswordMode::Generated => {
            let secret = generate_password(password_length(planned), alias_of(upn));
            let stored = Value::String(secret.clone());
            Ok((Secret::new(secret), stored))
        }
        PasswordMode::WriteOnly => Ok((write_only_password(config)?, Value::Null)),
    }
}

/// A new password for an update, if the plan rotates it.
fn password_for_update(
    config: &Value,
    prior: &Value,
    planned: &Value,
    upn: &str,
) -> Result<Option<(Secret, Value)>, Diagnostic> {
    if !rotation_requested(config, prior) {
        return Ok(None);
    }
    password_for_create(config, planned, upn).map(Some)
}

fn write_only_password(config: &Value) -> Result<Secret, Diagnostic> {
    match config.get("password_wo").as_str() {
        Some(secret) => Ok(Secret::new(secret)),
        None => Err(Diagnostic::error(
            "password_wo has no value",
            "password_wo must be known when the account is created or its \
             password_wo_version changes.",
        )
        .at(AttributePath::root("password_wo"))),
    }
}

fn password_length(planned: &Value) -> usize {
    planned
        .get("password_length")
        .as_i64()
        .unwrap_or(DEFAULT_PASSWORD_LENGTH)
        .clamp(PASSWORD_LENGTH_MIN, PASSWORD_LENGTH_MAX) as usize
}

fn force_password_change(planned: &Value) -> bool {
    planned.get("force_password_change").as_bool() == Some(true)
}

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// Symbols Entra accepts that need no quoting in HCL, JSON or a shell: the password should
/// survive being pasted at 3 a.m.
const SYMBOLS: &[u8] = b"!#%*+-.:=?@^_~";

/// A random password from the operating system's CSPRNG with every character class present
/// and the alias absent, so it always meets Entra's complexity rules.
fn generate_password(length: usize, alias: &str) -> String {
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    loop {
        let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS]
            .iter()
            .filter_map(|class| class.choose(&mut OsRng).copied())
            .collect();
        while chars.len() < length {
            chars.extend(all.choose(&mut OsRng));
        }
        chars.shuffle(&mut OsRng);
        let password = String::from_utf8(chars).expect("ASCII alphabet");
        if password_problem(&password, Some(&format!("{alias}@x"))).is_none() {
            return password;
        }
    }
}

/// Properties whose planned value differs from the prior state.
fn property_changes(prior: &Value, planned: &Value) -> UserChanges {
    let changed = |name: &str| !same_value(&prior.get(name), &planned.get(name));
    let text = |name: &str| planned.get(name).as_str().map(str::to_owned);
    UserChanges {
        user_principal_name: changed("user_principal_name")
            .then(|| text("user_principal_name"))
            .flatten(),
        display_name: changed("display_name")
            .then(|| text("display_name"))
            .flatten(),
        mail_nickname: changed("mail_nickname")
            .then(|| text("mail_nickname"))
            .flatten(),
        account_enabled: changed("account_enabled")
            .then(|| planned.get("account_enabled").as_bool())
            .flatten(),
        usage_location: changed("usage_location").then(|| text("usage_location")),
        password: None,
    }
}

async fn create_error(
    users: &Users<'_>,
    e: AzureError,
    upn: &str,
    config: &Value,
    deadline: &Deadline,
) -> Diagnostic {
    let upn_path = AttributePath::root("user_principal_name");
    if users::is_upn_conflict(&e) {
        let existing = users.get(upn, deadline).await.ok().flatten();
        let import_id = existing
            .as_ref()
            .map(|u| u.id.clone())
            .unwrap_or_else(|| upn.to_owned());
        let owner = existing
            .map(|u| format!(" (object id {})", u.id))
            .unwrap_or_default();
        return Diagnostic::error(
            "User already exists",
            format!(
                "A user with user principal name {upn}{owner} already exists in the tenant, so \
                 it cannot be created again. To manage it with Terraform, import it \
                 (replace NAME with this resource's name):\n\n  terraform import \
                 {TYPE_NAME}.NAME {import_id}\n\nor choose another user_principal_name."
            ),
        )
        .at(upn_path);
    }
    if users::is_invalid_upn_domain(&e) {
        return Diagnostic::error(
            "Unsuitable domain for a break-glass account",
            format!("Microsoft Entra refused the domain of {upn}: {e}"),
        )
        .at(upn_path);
    }
    if users::is_password_policy_violation(&e) {
        let path = match password_mode(config) {
            PasswordMode::WriteOnly => AttributePath::root("password_wo"),
            PasswordMode::Generated => AttributePath::root("password_length"),
        };
        return Diagnostic::error(
            "Password refused by the tenant's password policy",
            format!("Microsoft Entra refused the password for {upn}: {e}"),
        )
        .at(path);
    }
    api_diagnostic(e, "create", upn)
}

fn update_error(e: AzureError, upn: &str, changes: &UserChanges, config: &Value) -> Diagnostic {
    if users::is_request_denied(&e)
        && (changes.password.is_some()
            || changes.account_enabled.is_some()
            || changes.user_principal_name.is_some())
    {
        return privileged_user_denied(e, upn, "change the password, sign-in state or name of");
    }
    if users::is_upn_conflict(&e) {
        return Diagnostic::error(
            "User principal name taken",
            format!("Another object already uses user principal name {upn}: {e}"),
        )
        .at(AttributePath::root("user_principal_name"));
    }
    if users::is_invalid_upn_domain(&e) {
        return Diagnostic::error(
            "Unsuitable domain for a break-glass account",
            format!("Microsoft Entra refused the domain of {upn}: {e}"),
        )
        .at(AttributePath::root("user_principal_name"));
    }
    if users::is_password_policy_violation(&e) {
        let path = match password_mode(config) {
            PasswordMode::WriteOnly => AttributePath::root("password_wo"),
            PasswordMode::Generated => AttributePath::root("password_length"),
        };
        return Diagnostic::error(
            "Password refused by the tenant's password policy",
            format!("Microsoft Entra refused the new password for {upn}: {e}"),
        )
        .at(path);
    }
    api_diagnostic(e, "update", upn)
}

/// Entra protects users holding privileged roles: only a caller with a higher-privileged role
/// may change their credentials or delete them. Break-glass accounts are usually Global
/// Administrators, so this is the common 403.
fn privileged_user_denied(e: AzureError, upn: &str, action: &str) -> Diagnostic {
    Diagnostic::error(
        "Not allowed to manage a privileged account",
        format!(
            "Microsoft Entra refused to {action} {upn}: {e}\n\nIf {upn} holds a privileged \
             directory role (such as Global Administrator, as emergency-access accounts \
             usually do), only a caller holding the Privileged Authentication Administrator \
             or Global Administrator role may do this. Assign the provider's service \
             principal the Privileged Authentication Administrator role (and make sure it has \
             the User.ReadWrite.All application permission), then apply again."
        ),
    )
}

fn api_diagnostic(e: AzureError, action: &str, who: &str) -> Diagnostic {
    let permission_hint = if users::is_request_denied(&e) {
        " The provider's principal needs the Microsoft Graph application permission \
         User.ReadWrite.All to manage users."
    } else {
        ""
    };
    let mut d = Diagnostic::from(e);
    d.detail = format!(
        "Could not {action} user {who}: {}{permission_hint}",
        d.detail
    );
    d
}

// ---- state --------------------------------------------------------------------------------

/// Every attribute null: the shape of state before a read fills it.
fn empty_state() -> Value {
    let schema = account_schema();
    let mut names: Vec<String> = schema.attributes.iter().map(|a| a.name.clone()).collect();
    names.extend(schema.blocks.iter().map(|b| b.type_name.clone()));
    Value::object(names.into_iter().map(|n| (n, Value::Null)))
}

/// State for `user` as the tenant reports it; configuration-only attributes come from `base`
/// (the plan or the prior state).
fn account_state(user: &User, base: &Value, password: Value) -> Value {
    let mut state = empty_state();
    // Graph matches UPNs case-insensitively and may report another casing than the one
    // configured; keep the configured one so that casing alone never shows as a change.
    let upn = match base.get("user_principal_name").as_str() {
        Some(known) if known.eq_ignore_ascii_case(&user.user_principal_name) => known.to_owned(),
        _ => user.user_principal_name.clone(),
    };
    state.set("id", Value::String(user.id.clone()));
    state.set("object_id", Value::String(user.id.clone()));
    state.set("user_principal_name", Value::String(upn));
    state.set("display_name", Value::opt_string(user.display_name.clone()));
    state.set(
        "mail_nickname",
        Value::opt_string(user.mail_nickname.clone()),
    );
    state.set(
        "account_enabled",
        user.account_enabled.map(Value::Bool).unwrap_or(Value::Null),
    );
    state.set(
        "usage_location",
        Value::opt_string(user.usage_location.clone()),
    );
    state.set(
        "created_date_time",
        Value::opt_string(user.created_date_time.clone()),
    );
    state.set(
        "on_premises_sync_enabled",
        user.on_premises_sync_enabled
            .map(Value::Bool)
            .unwrap_or(Value::Null),
    );
    for name in CONFIG_ONLY {
        state.set(name, base.get(name));
    }
    state.set("password", password);
    state.set("password_wo", Value::Null);
    state
}

fn object_id_of(state: &Value) -> Result<String, Diagnostic> {
    state.get("id").as_str().map(str::to_owned).ok_or_else(|| {
        Diagnostic::error(
            "Account without an id",
            "The state of this breakglass_account has no object id. Remove it from state \
                 and import the user again.",
        )
    })
}

/// Equality as Terraform sees it for this schema's attributes: `1` equals `1.0`.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn alias_of(upn: &str) -> &str {
    upn.split('@').next().unwrap_or(upn)
}

fn domain_of(upn: &str) -> &str {
    upn.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Number, Severity};

    fn config(attrs: &[(&str, Value)]) -> Value {
        let mut v = empty_state();
        for (k, val) in attrs {
            v.set(k, val.clone());
        }
        v
    }

    fn errors_at(diags: &Diagnostics) -> Vec<String> {
        diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn generated_passwords_always_meet_entra_complexity() {
        for length in [16, 17, 64, 256] {
            for _ in 0..50 {
                let p = generate_password(length, "bg-admin");
                assert_eq!(p.chars().count(), length);
                assert_eq!(password_problem(&p, Some("bg-admin@contoso.com")), None);
                assert!(p.bytes().all(|b| [LOWER, UPPER, DIGITS, SYMBOLS]
                    .iter()
                    .any(|class| class.contains(&b))));
            }
        }
        assert_ne!(generate_password(64, "x"), generate_password(64, "x"));
    }

    #[test]
    fn password_rules_follow_entra_and_never_echo_the_value() {
        let upn = Some("breakglass1@contoso.com");
        assert_eq!(password_problem("Corr3ct-Horse", upn), None);
        assert_eq!(
            password_problem("correct-horse-7", upn),
            None,
            "3 of 4 classes"
        );
        for bad in [
            "Sh0rt!",
            "alllowercaseletters",
            "Breakglass1-Passw0rd!",
            "Pässwörd-123",
        ] {
            let problem = password_problem(bad, upn).expect(bad);
            assert!(!problem.contains(bad), "{problem}");
        }
        assert!(password_problem(&"Aa1-".repeat(65), upn).is_some());
    }

    #[test]
    fn upns_need_alias_at_a_domain() {
        assert_eq!(upn_problem("bg-01@contoso.onmicrosoft.com"), None);
        assert_eq!(upn_problem("o'neil.bg@contoso.com"), None);
        for bad in [
            "bg-01",
            "@contoso.com",
            "bg@",
            "a@b@contoso.com",
            "bg 01@contoso.com",
            ".bg@contoso.com",
            "bg..01@contoso.com",
            "bg@localhost",
            "bg@-contoso.com",
        ] {
            assert!(upn_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn validation_points_at_the_attribute() {
        let both = config(&[
            ("user_principal_name", "bg@contoso.com".into()),
            ("password_wo", "Correct-Horse-9".into()),
            ("password_wo_version", Value::Number(Number::Int(1))),
            ("password_length", Value::Number(Number::Int(32))),
        ]);
        assert_eq!(errors_at(&validate_config(&both)), ["password_wo"]);

        let weak = config(&[
            ("user_principal_name", "bg@contoso.com".into()),
            ("password_wo", "weakpassword".into()),
            ("password_wo_version", Value::Number(Number::Int(1))),
        ]);
        let diags = validate_config(&weak);
        assert_eq!(errors_at(&diags), ["password_wo"]);
        assert!(diags.iter().all(|d| !d.detail.contains("weakpassword")));

        let short = config(&[("password_length", Value::Number(Number::Int(15)))]);
        assert_eq!(errors_at(&validate_config(&short)), ["password_length"]);

        let no_version = config(&[("password_wo", "Correct-Horse-9".into())]);
        assert_eq!(
            errors_at(&validate_config(&no_version)),
            ["password_wo_version"]
        );

        let unknowns = config(&[
            ("user_principal_name", Value::Unknown),
            ("password_wo", Value::Unknown),
            ("password_wo_version", Value::Unknown),
        ]);
        assert!(validate_config(&unknowns).is_empty());

        let bad_timeout = config(&[(
            "timeouts",
            Value::object([
                ("create", Value::from("soon")),
                ("read", Value::Null),
                ("update", Value::Null),
                ("delete", Value::Null),
            ]),
        )]);
        assert_eq!(
            errors_at(&validate_config(&bad_timeout)),
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

    #[test]
    fn create_plans_defaults_and_an_unknown_generated_password() {
        let cfg = config(&[
            ("user_principal_name", "bg@contoso.onmicrosoft.com".into()),
            ("display_name", "BG".into()),
        ]);
        let mut planned = cfg.clone();
        plan_account(&cfg, &Value::Null, &mut planned);
        assert_eq!(planned.get("account_enabled"), Value::Bool(true));
        assert_eq!(planned.get("mail_nickname"), Value::from("bg"));
        assert_eq!(planned.get("password"), Value::Unknown);

        let mut wo = cfg.clone();
        wo.set("password_wo", "Correct-Horse-9".into());
        wo.set("password_wo_version", Value::Number(Number::Int(1)));
        let mut planned = wo.clone();
        plan_account(&wo, &Value::Null, &mut planned);
        assert_eq!(planned.get("password"), Value::Null);
    }

    #[test]
    fn updates_keep_the_password_unless_a_rotation_is_asked_for() {
        let prior = created_state();
        let mut cfg = prior.clone();
        for computed in [
            "id",
            "object_id",
            "mail_nickname",
            "account_enabled",
            "password",
        ] {
            cfg.set(computed, Value::Null);
        }
        cfg.set("display_name", "BG renamed".into());
        // What the default plan does with a changed object: computed values become unknown.
        let mut planned = cfg.clone();
        for computed in ["id", "object_id", "password", "created_date_time"] {
            planned.set(computed, Value::Unknown);
        }
        plan_account(&cfg, &prior, &mut planned);
        assert_eq!(planned.get("password"), prior.get("password"));
        assert_eq!(planned.get("id"), Value::from("u1"));
        assert_eq!(planned.get("mail_nickname"), Value::from("bg"));

        cfg.set(
            "password_rotation_trigger",
            Value::Map([("rotated".to_owned(), Value::from("2026-11"))].into()),
        );
        let mut planned = cfg.clone();
        plan_account(&cfg, &prior, &mut planned);
        assert_eq!(planned.get("password"), Value::Unknown);
        assert!(rotation_requested(&cfg, &prior));
    }

    #[test]
    fn a_write_only_version_bump_rotates() {
        let mut prior = created_state();
        prior.set("password", Value::Null);
        prior.set("password_wo_version", Value::Number(Number::Int(1)));
        let mut cfg = prior.clone();
        cfg.set("password_wo", "Correct-Horse-9".into());
        assert!(!rotation_requested(&cfg, &prior));
        cfg.set("password_wo_version", Value::Number(Number::Float(2.0)));
        assert!(rotation_requested(&cfg, &prior));
    }

    #[test]
    fn state_keeps_the_configured_upn_casing() {
        let user = User {
            id: "u1".into(),
            user_principal_name: "bg@contoso.onmicrosoft.com".into(),
            display_name: Some("BG".into()),
            mail_nickname: Some("bg".into()),
            account_enabled: Some(true),
            usage_location: None,
            created_date_time: None,
            on_premises_sync_enabled: None,
        };
        let base = config(&[("user_principal_name", "BG@Contoso.onmicrosoft.com".into())]);
        let state = account_state(&user, &base, Value::Null);
        assert_eq!(
            state.get("user_principal_name"),
            Value::from("BG@Contoso.onmicrosoft.com")
        );
        let renamed = config(&[("user_principal_name", "other@contoso.com".into())]);
        let state = account_state(&user, &renamed, Value::Null);
        assert_eq!(
            state.get("user_principal_name"),
            Value::from("bg@contoso.onmicrosoft.com")
        );
    }

    #[test]
    fn schema_attributes_all_have_descriptions() {
        let schema = account_schema();
        assert!(schema.attributes.iter().all(|a| !a.description.is_empty()));
        assert!(schema.attribute("password").unwrap().sensitive);
        assert!(schema.attribute("password_wo").unwrap().write_only);
        // The empty state has every attribute and block.
        assert_eq!(
            empty_state().entries().unwrap().len(),
            schema.attributes.len() + schema.blocks.len()
        );
    }
}
