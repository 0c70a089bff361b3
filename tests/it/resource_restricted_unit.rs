//! `breakglass_restricted_unit` end to end: the real terraform, the provider binary and the
//! emulated tenant, which enforces restricted management as Microsoft documents it
//! ("Restricted management administrative units in Microsoft Entra ID"; "Assign Microsoft Entra
//! roles with administrative unit scope"). Checks look at the tenant model and at what other
//! identities may do over HTTP, never at what the provider says about itself.
//!
//! What the documents say, and these cases prove: inside the unit a tenant-scoped User
//! Administrator can no longer reset a member's password, nor can the provider's own
//! tenant-wide Privileged Authentication Administrator; a role scoped to the unit (`managers`)
//! gives back what such a role may do — a non-administrator's password, the certificate user
//! ids of an administrator — but *nobody* can reset the password of a Global Administrator
//! member, and the documented way out (take it out, rotate, put it back) works.

use serde_json::{json, Value as Json};

use crate::harness::{required_providers, Case, Ctx, FakeTenant, Stage, Step};

const UNIT: &str = "breakglass_restricted_unit.bg";
const ADMIN: &str = "breakglass_account.admin";
const OPS: &str = "breakglass_account.ops";
const PROVIDER_SP: &str = "4f97c425-4dcd-40fc-b52d-0e5f5b1ab19b";
const USER_ADMIN_APP: &str = "17363f43-88b0-41e9-b101-a2a1d6767bd8";
const PROVIDER_APP: &str = "2b8cc7ca-52fb-4117-a0fe-19eb3a906139";
const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
/// A seed user without any role, put into the unit by someone else.
const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const CERT: &str = "X509:<PN>bg-ru-admin@contoso.com";

/// A regex matching `text` even where Terraform wrapped the diagnostic (`│` continuations).
fn phrase(text: &str) -> String {
    text.split_whitespace()
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"[\s│]+")
}

/// What a configuration of the case holds.
#[derive(Clone, Copy)]
struct Stack {
    rotate_admin: u32,
    rotate_ops: u32,
    admin_certificate: bool,
    /// `None`: no unit; else which accounts are members, and whether the provider manages.
    unit: Option<(&'static [&'static str], bool)>,
}

impl Stack {
    fn hcl(self) -> String {
        let certificate = match self.admin_certificate {
            true => format!("  certificate_user_ids = [{CERT:?}]\n"),
            false => String::new(),
        };
        let account = |name: &str, rotation: u32, extra: &str| {
            format!(
                "resource \"breakglass_account\" \"{name}\" {{\n  user_principal_name = \
                 \"bg-ru-{name}@contoso.onmicrosoft.com\"\n  display_name = \"BG {name}\"\n  \
                 password_rotation_trigger = {{ r = \"{rotation}\" }}\n{extra}  \
                 deletion_protection = false\n}}\n"
            )
        };
        let mut hcl = format!(
            "{}\ndata \"breakglass_client_config\" \"current\" {{}}\n{}{}\
             resource \"breakglass_role_assignment\" \"admin_ga\" {{\n  principal_id = \
             breakglass_account.admin.object_id\n  assignment_method = \"direct\"\n  \
             deletion_protection = false\n}}\n",
            required_providers(),
            account("admin", self.rotate_admin, &certificate),
            account("ops", self.rotate_ops, ""),
        );
        if let Some((members, managed)) = self.unit {
            let members: Vec<String> = members
                .iter()
                .map(|m| format!("breakglass_account.{m}.object_id"))
                .collect();
            let managers = match managed {
                true => {
                    "  managers {\n    principal_id = \
                     data.breakglass_client_config.current.object_id\n  }\n"
                }
                false => "",
            };
            hcl.push_str(&format!(
                "resource \"breakglass_restricted_unit\" \"bg\" {{\n  display_name = \
                 \"Emergency access\"\n  description = \"Break-glass accounts\"\n  members = \
                 [{}]\n{managers}  deletion_protection = false\n}}\n",
                members.join(", ")
            ));
        }
        hcl
    }
}

fn attr(ctx: &Ctx<'_>, address: &str, name: &str) -> Result<String, String> {
    ctx.state
        .attribute(address, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{address}.{name} is not a string in state"))
}

/// What the tenant-scoped User Administrator identity gets for resetting `user`'s password.
fn user_admin_resets(tenant: &FakeTenant, user: &str) -> u16 {
    let body = json!({"passwordProfile": {"password": "Helpdesk-Reset-2026!", "forceChangePasswordNextSignIn": false}});
    let path = format!("/users/{user}");
    tenant
        .graph_as(USER_ADMIN_APP, reqwest::Method::PATCH, &path, Some(body))
        .0
}

fn signs_in(ctx: &Ctx<'_>, address: &str) -> Result<bool, String> {
    let (id, password) = (attr(ctx, address, "id")?, attr(ctx, address, "password")?);
    let t = ctx.tenant().state.tenant();
    Ok(t.directory.password_matches(&id, &password))
}

fn unit_members(tenant: &FakeTenant, unit: &str) -> Vec<String> {
    let t = tenant.state.tenant();
    let mut members = t
        .directory
        .units
        .members
        .get(&unit.to_ascii_lowercase())
        .cloned()
        .unwrap_or_default();
    members.sort();
    members
}

fn restricted(tenant: &FakeTenant, user: &str) -> bool {
    let t = tenant.state.tenant();
    !t.directory.units.restricted_units_of(user).is_empty()
}

fn expect(what: &str, ok: bool) -> Result<(), String> {
    match ok {
        true => Ok(()),
        false => Err(what.to_owned()),
    }
}

/// The documented limitation, as the provider must word it.
fn no_role_can(upn: &str) -> String {
    format!(
        "{}[\\s\\S]*{}[\\s\\S]*{}",
        phrase("Blocked by a restricted management administrative unit"),
        phrase("no role can do this."),
        phrase(&format!("take {upn} out of the unit"))
    )
}

/// "needs <roles> at scope /administrativeUnits/<guid>".
fn missing_role(roles: &str) -> String {
    format!(
        "{}[\\s│]+at[\\s│]+scope[\\s│]+/administrativeUnits/[0-9a-f-]{{36}}",
        phrase(&format!("needs {roles}"))
    )
}

#[test]
fn restricted_unit_blocks_tenant_admins_and_managers_keep_what_unit_roles_allow() {
    let base = Stack {
        rotate_admin: 0,
        rotate_ops: 0,
        admin_certificate: false,
        unit: None,
    };
    let both: &[&str] = &["admin", "ops"];
    let unmanaged = Stack {
        rotate_admin: 1,
        unit: Some((both, false)),
        ..base
    };
    // Terraform changes the accounts before the unit that lists them, so the managers must be
    // in place one apply before the account changes that need them.
    let managers_on = Stack {
        unit: Some((both, true)),
        ..unmanaged
    };
    let managed = Stack {
        rotate_ops: 1,
        admin_certificate: true,
        ..managers_on
    };
    let admin_upn = "bg-ru-admin@contoso.onmicrosoft.com";
    let admin_password = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (remember, still) = (admin_password.clone(), admin_password.clone());
    let unit_id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (keep_unit, gone_unit) = (unit_id.clone(), unit_id.clone());
    Case::new()
        .with_tenant(FakeTenant::start())
        .step(Step::Apply(base.hcl()))
        // Before the unit: the tenant-scoped User Administrator resets a non-administrator.
        .step(Step::check(|ctx| {
            let ops = attr(ctx, OPS, "id")?;
            let status = user_admin_resets(ctx.tenant(), &ops);
            expect(
                &format!("before the unit: {status}, not 204"),
                status == 204,
            )
        }))
        // Before the unit: the provider's tenant-wide Privileged Authentication Administrator
        // rotates the Global Administrator's password.
        .step(Step::Apply(
            Stack {
                rotate_admin: 1,
                ..base
            }
            .hcl(),
        ))
        .step(Step::check(|ctx| {
            expect(
                "the rotated password does not sign in",
                signs_in(ctx, ADMIN)?,
            )
        }))
        .step(Step::Apply(unmanaged.hcl()))
        .step(Step::check(move |ctx| {
            let (unit, admin, ops) = (
                attr(ctx, UNIT, "id")?,
                attr(ctx, ADMIN, "id")?,
                attr(ctx, OPS, "id")?,
            );
            let t = ctx.tenant();
            let mut want = vec![admin.clone(), ops.clone()];
            want.sort();
            expect(
                "the unit holds the accounts",
                unit_members(t, &unit) == want,
            )?;
            let stored = t
                .state
                .tenant()
                .directory
                .units
                .units
                .get_latest(&unit)
                .cloned();
            let flag = stored.map(|u| u["isMemberManagementRestricted"].clone());
            expect("the unit is restricted", flag == Some(Json::Bool(true)))?;
            expect(
                "both are restricted",
                restricted(t, &admin) && restricted(t, &ops),
            )?;
            let state_flag = ctx
                .state
                .attribute(UNIT, "is_member_management_restricted")?;
            expect("state says restricted", state_flag == Json::Bool(true))?;
            // After the unit: the same reset is refused.
            let status = user_admin_resets(t, &ops);
            expect(&format!("after the unit: {status}, not 403"), status == 403)?;
            *remember.lock().unwrap() = attr(ctx, ADMIN, "password")?;
            Ok(())
        }))
        // The provider's tenant-wide role no longer counts, and no role scoped to the unit can
        // reset a Global Administrator: the diagnostic says so and names the way out.
        .step(Step::expect_error(
            Stack {
                rotate_admin: 2,
                ..unmanaged
            }
            .hcl(),
            Stage::Apply,
            &no_role_can(admin_upn),
        ))
        .step(Step::expect_error(
            Stack {
                rotate_ops: 1,
                ..unmanaged
            }
            .hcl(),
            Stage::Apply,
            &missing_role(
                "one of Privileged Authentication Administrator, User Administrator, Helpdesk \
                 Administrator, Password Administrator or Authentication Administrator",
            ),
        ))
        .step(Step::expect_error(
            Stack {
                admin_certificate: true,
                ..unmanaged
            }
            .hcl(),
            Stage::Apply,
            &format!(
                "{}[\\s\\S]*certificate_user_ids",
                missing_role("Privileged Authentication Administrator")
            ),
        ))
        .step(Step::check(move |ctx| {
            let id = attr(ctx, ADMIN, "id")?;
            let t = ctx.tenant().state.tenant();
            let old = still.lock().unwrap().clone();
            expect(
                "a refused rotation changed nothing",
                t.directory.password_matches(&id, &old),
            )
        }))
        // With the provider in `managers` (Privileged Authentication Administrator at the
        // unit's scope, the default): a non-administrator's password and an administrator's
        // certificate user ids.
        .step(Step::Apply(managers_on.hcl()))
        .step(Step::import_state_verify(UNIT, &[]))
        .step(Step::Apply(managed.hcl()))
        .step(Step::check(move |ctx| {
            let unit = attr(ctx, UNIT, "id")?;
            *keep_unit.lock().unwrap() = unit.clone();
            let t = ctx.tenant();
            let scope = format!("/administrativeUnits/{unit}");
            let roles = t.state.tenant().pim.directory_roles_at(PROVIDER_SP, &scope);
            let granted = roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR));
            expect(&format!("the provider holds {roles:?} at {scope}"), granted)?;
            let managers = ctx.state.attribute(UNIT, "managers")?;
            let role = managers[0]["role_definition_id"].clone();
            expect(
                "the default role",
                role == PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            )?;
            expect("the ops password was rotated", signs_in(ctx, OPS)?)?;
            let admin = attr(ctx, ADMIN, "id")?;
            let user = t.state.tenant().directory.users.get_latest(&admin).cloned();
            let ids = user.map(|u| u["authorizationInfo"]["certificateUserIds"].clone());
            expect("the certificate id was written", ids == Some(json!([CERT])))
        }))
        .step(Step::expect_error(
            Stack {
                rotate_admin: 2,
                ..managed
            }
            .hcl(),
            Stage::Apply,
            &no_role_can(admin_upn),
        ))
        // Members removed and added by hand: ours shows in the plan, someone else's never.
        .step(Step::check(|ctx| {
            let (unit, ops) = (attr(ctx, UNIT, "id")?, attr(ctx, OPS, "id")?);
            let t = ctx.tenant();
            let path = format!("/directory/administrativeUnits/{unit}/members/{ops}/$ref");
            let removed = t.graph_as(PROVIDER_APP, reqwest::Method::DELETE, &path, None);
            expect(&format!("removing by hand: {removed:?}"), removed.0 == 204)?;
            let reference =
                json!({"@odata.id": format!("{}/v1.0/directoryObjects/{ALICE}", t.base_url)});
            let path = format!("/directory/administrativeUnits/{unit}/members/$ref");
            let added = t.graph_as(PROVIDER_APP, reqwest::Method::POST, &path, Some(reference));
            expect(&format!("adding by hand: {added:?}"), added.0 == 204)?;
            let out =
                ctx.workspace
                    .run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            let drift = out.exit_code == Some(2) && out.text.contains(&ops);
            expect(&format!("the plan must add {ops} back\n{out}"), drift)?;
            expect(
                &format!("someone else's member is not ours\n{out}"),
                !out.text.contains(ALICE),
            )
        }))
        .step(Step::Apply(managed.hcl()))
        .step(Step::check(|ctx| {
            let (unit, ops) = (attr(ctx, UNIT, "id")?, attr(ctx, OPS, "id")?);
            let members = unit_members(ctx.tenant(), &unit);
            expect("the apply put the member back", members.contains(&ops))?;
            expect(
                "someone else's member stays",
                members.iter().any(|m| m == ALICE),
            )
        }))
        // The documented way out: take the administrator out, rotate, put it back.
        .step(Step::Apply(
            Stack {
                unit: Some((&["ops"], true)),
                ..managed
            }
            .hcl(),
        ))
        .step(Step::check(|ctx| {
            let admin = attr(ctx, ADMIN, "id")?;
            expect("out of the unit", !restricted(ctx.tenant(), &admin))
        }))
        .step(Step::Apply(
            Stack {
                rotate_admin: 2,
                unit: Some((&["ops"], true)),
                ..managed
            }
            .hcl(),
        ))
        .step(Step::check(|ctx| {
            expect("rotated outside the unit", signs_in(ctx, ADMIN)?)
        }))
        .step(Step::Apply(
            Stack {
                rotate_admin: 2,
                ..managed
            }
            .hcl(),
        ))
        .step(Step::check(|ctx| {
            let admin = attr(ctx, ADMIN, "id")?;
            expect("back in the unit", restricted(ctx.tenant(), &admin))
        }))
        // Removing the unit never deletes the accounts; they are manageable again.
        .step(Step::Apply(
            Stack {
                rotate_admin: 2,
                unit: None,
                ..managed
            }
            .hcl(),
        ))
        .step(Step::check(move |ctx| {
            let (admin, ops) = (attr(ctx, ADMIN, "id")?, attr(ctx, OPS, "id")?);
            let t = ctx.tenant();
            let model = t.state.tenant();
            let alive = |id: &str| model.directory.users.get_latest(id).is_some();
            expect(
                "the accounts and Alice live on",
                alive(&admin) && alive(&ops) && alive(ALICE),
            )?;
            let unit = gone_unit.lock().unwrap().clone();
            expect(
                "the unit is gone",
                model.directory.units.units.get_latest(&unit).is_none(),
            )?;
            let scope = format!("/administrativeUnits/{unit}");
            let left = !model.pim.directory_roles_at(PROVIDER_SP, &scope).is_empty();
            drop(model);
            expect("the manager assignment was removed", !left)?;
            let status = user_admin_resets(t, &ops);
            expect(&format!("released: {status}, not 204"), status == 204)
        }))
        .step(Step::destroy_check(|_| Ok(())))
        .run();
}

fn unit_only(protection: Option<bool>, members: &str) -> String {
    let protection = protection
        .map(|p| format!("  deletion_protection = {p}\n"))
        .unwrap_or_default();
    format!(
        "{}\nresource \"breakglass_restricted_unit\" \"bg\" {{\n  display_name = \"Emergency \
         access\"\n  members = [{members}]\n{protection}}}\n",
        required_providers()
    )
}

#[test]
fn restricted_unit_limit_protection_and_an_imported_ordinary_unit() {
    const BRANCH: &str = "3ed29667-91a0-4a96-9654-80c9dde3898d";
    let tenant = FakeTenant::start();
    tenant
        .state
        .tenant()
        .behaviour
        .settings
        .insert("graph.restricted_unit_limit".into(), Json::from(0));
    let alice = format!("{ALICE:?}");
    let branch = format!(
        "{}\nresource \"breakglass_restricted_unit\" \"branch\" {{\n  display_name = \"Contoso \
         Branch Offices\"\n  deletion_protection = false\n}}\n",
        required_providers()
    );
    Case::new()
        .with_tenant(tenant)
        .step(Step::expect_error(
            unit_only(Some(false), &alice),
            Stage::Apply,
            &phrase("the maximum of 100 restricted management administrative units"),
        ))
        .step(Step::check(|ctx| {
            let t = ctx.tenant().state.tenant();
            let restricted = t.directory.units.restricted_units_of(ALICE);
            expect("nothing was made", restricted.is_empty())?;
            drop(t);
            let mut t = ctx.tenant().state.tenant();
            t.behaviour
                .settings
                .insert("graph.restricted_unit_limit".into(), Json::from(100));
            Ok(())
        }))
        // Protected by default: destroy is refused and deletes nothing.
        .step(Step::Apply(unit_only(None, &alice)))
        .step(Step::check(|ctx| {
            let out = ctx
                .workspace
                .run(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
            let refused = regex::Regex::new(&phrase("Deletion protection is on")).unwrap();
            expect(
                &format!("destroy must be refused\n{out}"),
                !out.success() && out.matches(&refused),
            )?;
            expect("the unit stays", restricted(ctx.tenant(), ALICE))
        }))
        .step(Step::Apply(unit_only(Some(false), &alice)))
        .step(Step::destroy_check(|ctx| {
            let t = ctx.tenant();
            let model = t.state.tenant();
            let alive = model.directory.users.get_latest(ALICE).is_some();
            drop(model);
            expect(
                "the member lives on, released",
                alive && !restricted(t, ALICE),
            )
        }))
        // An ordinary unit imported by mistake: the plan replaces it, which protection stops.
        .step(Step::check(move |ctx| {
            ctx.workspace.write_config(&branch);
            let address = "breakglass_restricted_unit.branch";
            let out = ctx
                .workspace
                .run(&["import", "-input=false", "-no-color", address, BRANCH]);
            expect(&format!("import failed\n{out}"), out.success())?;
            let out = ctx.workspace.run(&["plan", "-input=false", "-no-color"]);
            let pattern = format!(
                "{}[\\s\\S]*{}",
                phrase("Administrative unit is not restricted"),
                phrase("Deletion protection is on")
            );
            let refused = regex::Regex::new(&pattern).unwrap();
            let replace = phrase("would replace the restricted administrative unit");
            let replace = regex::Regex::new(&replace).unwrap();
            let ok = !out.success() && out.matches(&refused) && out.matches(&replace);
            ctx.workspace.run(&["state", "rm", "-no-color", address]);
            ctx.workspace.write_config(&required_providers());
            expect(&format!("the plan must replace, and be refused\n{out}"), ok)?;
            let t = ctx.tenant().state.tenant();
            let unit = t.directory.units.units.get_latest(BRANCH).cloned();
            expect(
                "the ordinary unit is untouched",
                unit.is_some_and(|u| u["isMemberManagementRestricted"] == false),
            )
        }))
        .run();
}
