//! Directory objects by bare id through the client layer: the user-or-group lookups behind
//! `breakglass_ca_exclusion`'s plan warnings and import, against the emulated tenant's seed.

use breakglass::azure::directory_objects::{exists, kind_of, PrincipalKind};

use crate::azure_support::{deadline, Emulator};

const ALICE: &str = "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01";
const EXCLUSION_GROUP: &str = "8a7b6c5d-0000-4e1f-9a2b-3c4d5e6f7a01";
const NOBODY: &str = "0badc0de-0000-4000-8000-000000000001";

#[tokio::test]
async fn ids_are_told_apart_as_users_groups_or_neither() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let graph = &clients.graph;
    let d = deadline();

    assert_eq!(
        kind_of(graph, ALICE, &d).await.unwrap(),
        Some(PrincipalKind::User)
    );
    assert_eq!(
        kind_of(graph, &EXCLUSION_GROUP.to_uppercase(), &d)
            .await
            .unwrap(),
        Some(PrincipalKind::Group)
    );
    assert_eq!(kind_of(graph, NOBODY, &d).await.unwrap(), None);
    // A group id is no user and a user id no group: the question is asked per collection.
    assert!(!exists(graph, PrincipalKind::User, EXCLUSION_GROUP, &d)
        .await
        .unwrap());
    assert!(!exists(graph, PrincipalKind::Group, ALICE, &d)
        .await
        .unwrap());

    // Groups are asked for their id only; users as the account resource reads them (so that
    // an account this process has just read answers from its read cache); the emulator, which
    // checks `$select` against the entity's properties, accepted both.
    for (collection, select) in [
        ("users", "$select=id,userPrincipalName,displayName,mailNickname,accountEnabled,usageLocation,createdDateTime,onPremisesSyncEnabled,authorizationInfo"),
        ("groups", "$select=id"),
    ] {
        let answered = tenant
            .requests("GET", &format!("^/v1.0/{collection}/"))
            .await;
        assert!(!answered.is_empty(), "no GET /{collection}/{{id}}");
        for entry in answered {
            assert_eq!(entry["query"], select, "{entry}");
            assert!(
                matches!(entry["status"].as_u64(), Some(200 | 404)),
                "{entry}"
            );
        }
    }
}
