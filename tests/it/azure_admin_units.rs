//! The typed administrative-unit, certificate-user-id and authentication-method calls of the
//! client layer against the in-process emulated tenant: restricted units, `$ref` members,
//! scoped role members, the typed error predicates, and create retries that cannot duplicate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use breakglass::azure::administrative_units::{
    self as au, AdministrativeUnits, MemberAdded, MemberKind, NewUnit, UnitChanges,
};
use breakglass::azure::conditional_access::authentication_strengths;
use breakglass::azure::users::{self, MethodKind, NewUser, UserChanges, Users};
use breakglass::provider::Secret;
use serde_json::json;

use crate::azure_support::{deadline, Emulator};

const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const LEGACY_EMERGENCY: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e05";

async fn new_account(users: &Users<'_>, alias: &str) -> String {
    let password = Secret::new("Correct-Horse-Battery-9!".to_owned());
    let upn = format!("{alias}@contoso.onmicrosoft.com");
    users
        .create(
            &NewUser {
                user_principal_name: &upn,
                display_name: alias,
                mail_nickname: alias,
                account_enabled: true,
                usage_location: None,
                password: &password,
                force_password_change: false,
            },
            &deadline(),
        )
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn restricted_unit_lifecycle_members_and_scoped_roles() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let units = AdministrativeUnits::new(&clients.graph);
    let users = Users::new(&clients.graph);
    let account = new_account(&users, "bg-au-1").await;

    let unit = units
        .create(
            &NewUnit {
                display_name: "Emergency access",
                description: Some("Break-glass accounts"),
                restricted: true,
            },
            &deadline(),
        )
        .await
        .unwrap();
    assert!(unit.is_member_management_restricted);
    assert_eq!(
        units.get(&unit.id, &deadline()).await.unwrap(),
        Some(unit.clone())
    );
    let found = units
        .find_by_display_name("emergency access", deadline())
        .await
        .unwrap();
    assert_eq!(found, std::slice::from_ref(&unit));

    units
        .update(
            &unit.id,
            &UnitChanges {
                description: Some(None),
                ..UnitChanges::default()
            },
            &deadline(),
        )
        .await
        .unwrap();
    assert_eq!(
        units
            .get(&unit.id, &deadline())
            .await
            .unwrap()
            .unwrap()
            .description,
        None
    );
    // The restriction cannot change; UnitChanges has no field for it, Graph refuses a raw try.
    let refused = clients
        .graph
        .patch(
            &format!("/directory/administrativeUnits/{}", unit.id),
            json!({"isMemberManagementRestricted": false}),
            &deadline(),
        )
        .await
        .unwrap_err();
    assert!(au::is_restriction_change_refused(&refused), "{refused}");

    // Members.
    assert_eq!(
        units
            .add_member(&unit.id, &account, &deadline())
            .await
            .unwrap(),
        MemberAdded::Added
    );
    assert_eq!(
        units
            .add_member(&unit.id, &account, &deadline())
            .await
            .unwrap(),
        MemberAdded::AlreadyMember
    );
    let members = units.members(&unit.id, deadline()).await.unwrap().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].id, account);
    assert_eq!(members[0].kind, MemberKind::User);
    assert_eq!(
        units.member_ids(&unit.id, deadline()).await.unwrap(),
        Some(vec![account.clone()])
    );
    assert_eq!(
        users
            .is_management_restricted(&account, &deadline())
            .await
            .unwrap(),
        Some(true)
    );
    let restricted = units
        .restricted_units_of_user(&account, deadline())
        .await
        .unwrap();
    assert_eq!(
        restricted.iter().map(|u| &u.id).collect::<Vec<_>>(),
        [&unit.id]
    );

    // Scoped role members.
    let scoped = units
        .add_scoped_role_member(&unit.id, USER_ADMINISTRATOR, &tenant.object_id, &deadline())
        .await
        .unwrap();
    assert!(scoped.is(USER_ADMINISTRATOR, &tenant.object_id));
    assert_eq!(scoped.administrative_unit_id, unit.id);
    let duplicate = units
        .add_scoped_role_member(&unit.id, USER_ADMINISTRATOR, &tenant.object_id, &deadline())
        .await
        .unwrap_err();
    assert!(au::is_scoped_role_conflict(&duplicate), "{duplicate}");
    let not_scopable = units
        .add_scoped_role_member(
            &unit.id,
            GLOBAL_ADMINISTRATOR,
            &tenant.object_id,
            &deadline(),
        )
        .await
        .unwrap_err();
    assert!(au::is_role_not_scopable(&not_scopable), "{not_scopable}");
    let listed = units
        .scoped_role_members(&unit.id, deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&scoped));
    assert!(units
        .remove_scoped_role_member(&unit.id, &scoped.id, &deadline())
        .await
        .unwrap());
    assert!(!units
        .remove_scoped_role_member(&unit.id, &scoped.id, &deadline())
        .await
        .unwrap());

    // Removing members and the unit; the account survives the unit.
    assert!(units
        .remove_member(&unit.id, &account, &deadline())
        .await
        .unwrap());
    assert!(!units
        .remove_member(&unit.id, &account, &deadline())
        .await
        .unwrap());
    assert_eq!(
        users
            .is_management_restricted(&account, &deadline())
            .await
            .unwrap(),
        Some(false)
    );
    assert!(units.delete(&unit.id, &deadline()).await.unwrap());
    assert!(!units.delete(&unit.id, &deadline()).await.unwrap());
    assert_eq!(units.get(&unit.id, &deadline()).await.unwrap(), None);
    assert_eq!(units.members(&unit.id, deadline()).await.unwrap(), None);
    assert!(users.get(&account, &deadline()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_denied_write_inside_a_restricted_unit_is_recognised_and_a_scoped_role_lifts_it() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let units = AdministrativeUnits::new(&clients.graph);
    let users = Users::new(&clients.graph);
    let account = new_account(&users, "bg-au-2").await;
    let unit = units
        .create(
            &NewUnit {
                display_name: "Emergency access",
                description: None,
                restricted: true,
            },
            &deadline(),
        )
        .await
        .unwrap();
    units
        .add_member(&unit.id, &account, &deadline())
        .await
        .unwrap();

    let rotate = UserChanges {
        password: Some((Secret::new("Rotated-Password-7!".to_owned()), false)),
        ..UserChanges::default()
    };
    let denied = users
        .update(&account, &rotate, &deadline())
        .await
        .unwrap_err();
    let restricted = users
        .is_management_restricted(&account, &deadline())
        .await
        .unwrap()
        .unwrap();
    assert!(
        au::is_restricted_unit_denied(&denied, restricted),
        "{denied}"
    );
    assert!(users::is_request_denied(&denied));
    // The same 403 on an account outside any restricted unit is not this case.
    assert!(!au::is_restricted_unit_denied(&denied, false));
    assert!(
        !denied.to_string().contains("Rotated-Password-7!"),
        "no secret in the error: {denied}"
    );

    units
        .add_scoped_role_member(&unit.id, USER_ADMINISTRATOR, &tenant.object_id, &deadline())
        .await
        .unwrap();
    users.update(&account, &rotate, &deadline()).await.unwrap();

    // A Global Administrator member stays out of reach even so (documented limitation).
    units
        .add_member(&unit.id, LEGACY_EMERGENCY, &deadline())
        .await
        .unwrap();
    let denied = users
        .update(LEGACY_EMERGENCY, &rotate, &deadline())
        .await
        .unwrap_err();
    assert!(au::is_restricted_unit_denied(&denied, true), "{denied}");
}

#[tokio::test]
async fn the_restricted_unit_limit_is_recognised() {
    let tenant = Emulator::start().await;
    tenant
        .settings(json!({"graph.restricted_unit_limit": 1}))
        .await;
    let clients = tenant.clients();
    let units = AdministrativeUnits::new(&clients.graph);
    let new = |name| NewUnit {
        display_name: name,
        description: None,
        restricted: true,
    };
    units.create(&new("First"), &deadline()).await.unwrap();
    let full = units.create(&new("Second"), &deadline()).await.unwrap_err();
    assert!(au::is_unit_limit(&full), "{full}");
    assert_eq!(au::RESTRICTED_UNIT_LIMIT, 100);
    // An unrestricted unit is still possible.
    units
        .create(
            &NewUnit {
                display_name: "Ordinary",
                description: None,
                restricted: false,
            },
            &deadline(),
        )
        .await
        .unwrap();
}

/// In front of the emulator: the first POST whose path ends with `suffix` takes effect, then
/// the connection drops before the answer arrives.
fn drop_first_post(
    router: axum::Router,
    suffix: &'static str,
    armed: Arc<AtomicBool>,
) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let armed = armed.clone();
            async move {
                let hit =
                    req.method() == axum::http::Method::POST && req.uri().path().ends_with(suffix);
                let response = next.run(req).await;
                if hit && armed.swap(false, Ordering::SeqCst) {
                    let failing = futures::stream::once(async {
                        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "dropped after the create took effect",
                        ))
                    });
                    return axum::response::Response::new(axum::body::Body::from_stream(failing));
                }
                response
            }
        },
    ))
}

#[tokio::test]
async fn a_unit_create_whose_answer_is_lost_is_found_not_repeated() {
    let armed = Arc::new(AtomicBool::new(false));
    let layer = armed.clone();
    let tenant = Emulator::start_wrapped(move |r| {
        drop_first_post(r, "/directory/administrativeUnits", layer)
    })
    .await;
    let clients = tenant.clients();
    let units = AdministrativeUnits::new(&clients.graph);
    let new = NewUnit {
        display_name: "Emergency access",
        description: None,
        restricted: true,
    };
    // A unit of the same name that already exists must not be taken for ours.
    let older = units.create(&new, &deadline()).await.unwrap();
    armed.store(true, Ordering::SeqCst);
    let created = units.create(&new, &deadline()).await.unwrap();
    assert!(!armed.load(Ordering::SeqCst), "the answer was dropped once");
    assert_ne!(created.id, older.id);
    let same_name = units
        .find_by_display_name("Emergency access", deadline())
        .await
        .unwrap();
    assert_eq!(same_name.len(), 2, "{same_name:?}");
    assert_eq!(
        tenant
            .requests("POST", "^/v1.0/directory/administrativeUnits$")
            .await
            .len(),
        2,
        "one POST per create, none re-sent"
    );
}

#[tokio::test]
async fn a_scoped_role_add_and_a_member_add_survive_a_lost_answer() {
    let armed_role = Arc::new(AtomicBool::new(false));
    let armed_member = Arc::new(AtomicBool::new(false));
    let (role_layer, member_layer) = (armed_role.clone(), armed_member.clone());
    let tenant = Emulator::start_wrapped(move |r| {
        let r = drop_first_post(r, "/scopedRoleMembers", role_layer);
        drop_first_post(r, "/members/$ref", member_layer)
    })
    .await;
    let clients = tenant.clients();
    let units = AdministrativeUnits::new(&clients.graph);
    let users = Users::new(&clients.graph);
    let account = new_account(&users, "bg-au-3").await;
    let unit = units
        .create(
            &NewUnit {
                display_name: "Emergency access",
                description: None,
                restricted: true,
            },
            &deadline(),
        )
        .await
        .unwrap();

    armed_role.store(true, Ordering::SeqCst);
    let scoped = units
        .add_scoped_role_member(&unit.id, USER_ADMINISTRATOR, &tenant.object_id, &deadline())
        .await
        .unwrap();
    assert!(!armed_role.load(Ordering::SeqCst));
    assert!(scoped.is(USER_ADMINISTRATOR, &tenant.object_id));
    assert_eq!(
        tenant.requests("POST", "/scopedRoleMembers$").await.len(),
        1,
        "found by the probe, not re-sent"
    );
    assert_eq!(
        units
            .scoped_role_members(&unit.id, deadline())
            .await
            .unwrap()
            .unwrap()
            .len(),
        1
    );

    // The member add is re-sent after the drop; the second answer says "already there".
    armed_member.store(true, Ordering::SeqCst);
    let added = units
        .add_member(&unit.id, &account, &deadline())
        .await
        .unwrap();
    assert!(!armed_member.load(Ordering::SeqCst));
    assert_eq!(added, MemberAdded::AlreadyMember);
    assert_eq!(tenant.requests("POST", "/members/\\$ref$").await.len(), 2);
    assert_eq!(
        units.member_ids(&unit.id, deadline()).await.unwrap(),
        Some(vec![account])
    );
}

#[tokio::test]
async fn certificate_user_ids_round_trip_and_conflicts_are_typed() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let users = Users::new(&clients.graph);
    let first = new_account(&users, "bg-cba-a").await;
    let second = new_account(&users, "bg-cba-b").await;
    assert_eq!(
        users
            .certificate_user_ids(&first, &deadline())
            .await
            .unwrap(),
        Some(vec![])
    );
    let values = vec![
        "X509:<PN>bg-cba-a@contoso.onmicrosoft.com".to_owned(),
        "X509:<SKI>aB1cD2eF3gH4iJ5kL6mN7oP8qR".to_owned(),
    ];
    assert!(values
        .iter()
        .all(|v| users::is_well_formed_certificate_user_id(v)));
    users
        .set_certificate_user_ids(&first, &values, &deadline())
        .await
        .unwrap();
    assert_eq!(
        users
            .certificate_user_ids(&first, &deadline())
            .await
            .unwrap(),
        Some(values.clone())
    );
    assert_eq!(
        users
            .holders_of_certificate_user_id(&values[1], deadline())
            .await
            .unwrap(),
        std::slice::from_ref(&first)
    );

    let conflict = users
        .set_certificate_user_ids(&second, &values[1..], &deadline())
        .await
        .unwrap_err();
    assert!(
        users::is_certificate_user_id_conflict(&conflict),
        "{conflict}"
    );
    assert!(
        !users::is_upn_conflict(&conflict),
        "not a UPN conflict: {conflict}"
    );
    assert!(!users::is_certificate_user_ids_invalid(&conflict));
    assert_eq!(
        users
            .certificate_user_ids(&second, &deadline())
            .await
            .unwrap(),
        Some(vec![]),
        "nothing written"
    );

    let malformed = vec!["bg-cba-b@contoso.onmicrosoft.com".to_owned()];
    assert!(!users::is_well_formed_certificate_user_id(&malformed[0]));
    let invalid = users
        .set_certificate_user_ids(&second, &malformed, &deadline())
        .await
        .unwrap_err();
    assert!(
        users::is_certificate_user_ids_invalid(&invalid),
        "{invalid}"
    );
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("X509:<PN>bg-{i}@contoso"))
        .collect();
    let too_many = users
        .set_certificate_user_ids(&second, &eleven, &deadline())
        .await
        .unwrap_err();
    assert!(
        users::is_certificate_user_ids_invalid(&too_many),
        "{too_many}"
    );

    users
        .set_certificate_user_ids(&first, &[], &deadline())
        .await
        .unwrap();
    users
        .set_certificate_user_ids(&second, &values[1..], &deadline())
        .await
        .unwrap();
}

#[tokio::test]
async fn authentication_methods_registration_and_strengths_are_typed() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let users = Users::new(&clients.graph);
    let account = new_account(&users, "bg-methods").await;
    tenant
        .admin(
            reqwest::Method::POST,
            &format!("/directory/users/{account}/fido2"),
            Some(json!({"displayName": "Vault key", "passkeyType": "deviceBound"})),
        )
        .await;
    let methods = users
        .authentication_methods(&account, deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(methods.len(), 2);
    assert_eq!(methods[0].kind, MethodKind::Password);
    assert!(!methods[0].kind.is_phishing_resistant());
    match &methods[1].kind {
        MethodKind::Fido2 {
            passkey_type,
            attestation_level,
            ..
        } => {
            assert_eq!(passkey_type.as_deref(), Some("deviceBound"));
            assert_eq!(attestation_level.as_deref(), Some("attested"));
        }
        other => panic!("expected a passkey, got {other:?}"),
    }
    assert!(methods[1].kind.is_phishing_resistant());
    assert_eq!(methods[1].kind.name(), "fido2");
    assert_eq!(methods[1].display_name.as_deref(), Some("Vault key"));
    assert_eq!(
        users
            .authentication_methods("00000000-0000-4000-8000-0000000000ff", deadline())
            .await
            .unwrap(),
        None
    );

    let row = users
        .registration_details(&account, &deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.methods_registered, ["passKeyDeviceBound"]);
    assert!(row.is_passwordless_capable);

    let strengths = authentication_strengths(&clients.graph, deadline())
        .await
        .unwrap();
    let phishing_resistant = strengths
        .iter()
        .find(|s| s.id == "00000000-0000-0000-0000-000000000004")
        .expect("built-in phishing-resistant strength");
    assert!(phishing_resistant.allows("x509CertificateMultiFactor"));
    assert!(phishing_resistant.allows("fido2"));
    assert!(!phishing_resistant.allows("password"));
    assert!(!phishing_resistant.allows("x509CertificateSingleFactor"));
    let mfa = strengths
        .iter()
        .find(|s| s.id == "00000000-0000-0000-0000-000000000002")
        .unwrap();
    assert!(
        !mfa.allows("password"),
        "password alone is one factor of a pair"
    );
}
