//! ARM through the client layer: api-version on every call, typed ARM errors, PUT/GET/DELETE
//! on resource groups in the emulated tenant, and `nextLink` paging.

use std::time::Duration;

use async_trait::async_trait;
use breakglass::azure::auth::AccessToken;
use breakglass::azure::http::HttpPipeline;
use breakglass::azure::{AuthMethodKind, AzureError, Deadline, TokenSource};
use breakglass::provider::AuthMethod;
use futures::TryStreamExt;
use serde_json::{json, Value as Json};

use crate::azure_support::{deadline, fast_policy, Emulator};

const SUBSCRIPTION: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";
const API: &str = "2021-04-01";

#[tokio::test]
async fn resource_group_lifecycle_and_typed_arm_errors() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let rg = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-breakglass-it");

    let missing = clients.arm.get(&rg, API, &deadline()).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert_eq!(missing.code(), Some("ResourceGroupNotFound"), "{missing}");
    assert!(
        missing.to_string().contains("Azure Resource Manager"),
        "{missing}"
    );
    assert_eq!(
        clients
            .arm
            .get_optional(&rg, API, &deadline())
            .await
            .unwrap(),
        None
    );

    let created = clients
        .arm
        .put(&rg, API, json!({"location": "West Europe"}), &deadline())
        .await
        .unwrap();
    assert_eq!(created["location"], "westeurope");
    let listed = clients
        .arm
        .list_all(
            &format!("/subscriptions/{SUBSCRIPTION}/resourcegroups"),
            API,
            deadline(),
        )
        .await
        .unwrap();
    assert!(listed.iter().any(|g| g["name"] == "rg-breakglass-it"));
    assert!(clients.arm.delete(&rg, API, &deadline()).await.unwrap());

    let bad_version = clients
        .arm
        .get(&rg, "1999-01-01", &deadline())
        .await
        .unwrap_err();
    assert_eq!(bad_version.status(), Some(400), "{bad_version}");
    assert!(bad_version.code().is_some(), "{bad_version}");

    // Every ARM request carried its api-version; tokens were asked for ARM's audience.
    let log = tenant.requests("", "^/subscriptions/").await;
    assert!(log
        .iter()
        .all(|r| r["query"].as_str().unwrap_or("").contains("api-version=")));
}

/// Hands out a fixed bearer, for a stand-in server that does not check it.
struct FixedToken;

#[async_trait]
impl TokenSource for FixedToken {
    fn method(&self) -> AuthMethodKind {
        AuthMethodKind::ClientSecret
    }
    fn describe(&self) -> String {
        "a fixed test token".into()
    }
    async fn fetch(
        &self,
        _scope: &str,
        _http: &HttpPipeline,
        _deadline: &Deadline,
    ) -> Result<AccessToken, AzureError> {
        Ok(AccessToken::new("fixed".into(), Duration::from_secs(3600)))
    }
}

/// The emulator answers ARM lists in one page, so a three-page collection is served by a
/// stand-in whose `nextLink`s are absolute and carry the api-version, as ARM's do.
#[tokio::test]
async fn arm_lists_follow_next_link_across_pages() {
    use axum::extract::Query;
    use std::collections::HashMap;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let page_base = base.clone();
    let app = axum::Router::new().route(
        "/subscriptions/s/resourcegroups",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let base = page_base.clone();
            async move {
                if q.get("api-version").map(String::as_str) != Some(API) {
                    return axum::Json(json!({"error": {"code": "MissingApiVersionParameter", "message": "no api-version"}}));
                }
                let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
                let value: Vec<Json> = (0..2).map(|i| json!({"name": format!("rg-{page}-{i}")})).collect();
                let mut body = json!({"value": value});
                if page < 2 {
                    body["nextLink"] = json!(format!(
                        "{base}/subscriptions/s/resourcegroups?api-version={API}&page={}",
                        page + 1
                    ));
                }
                axum::Json(body)
            }
        }),
    );
    // A page pointing elsewhere must not receive our bearer token.
    let app = app.route(
        "/subscriptions/s/elsewhere",
        axum::routing::get(|| async {
            axum::Json(json!({"value": [{"name": "rg-x"}], "nextLink": "http://attacker.invalid/steal?api-version=2021-04-01"}))
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let tenant = Emulator::start().await;
    let mut config = tenant.config(AuthMethod::AzureCli);
    config.cloud.resource_manager = base;
    let clients = tenant.clients_with_source(config, Box::new(FixedToken), fast_policy());
    let names: Vec<String> = clients
        .arm
        .list("/subscriptions/s/resourcegroups", API, deadline())
        .map_ok(|g| g["name"].as_str().unwrap().to_owned())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        names,
        ["rg-0-0", "rg-0-1", "rg-1-0", "rg-1-1", "rg-2-0", "rg-2-1"]
    );

    let err = clients
        .arm
        .list_all("/subscriptions/s/elsewhere", API, deadline())
        .await
        .unwrap_err();
    assert!(matches!(err, AzureError::InvalidResponse { .. }), "{err}");
    assert!(err.to_string().contains("attacker.invalid"), "{err}");
}

/// ARM's long-running operations, served by a stand-in (the emulator completes everything
/// synchronously): a PUT tracked through `Azure-AsyncOperation`, a DELETE through `Location`,
/// and an operation that fails.
#[tokio::test]
async fn long_running_operations_are_followed_to_their_end() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, put};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let polls = Arc::new(AtomicU32::new(0));
    let headers = |pairs: &[(&'static str, String)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    };
    let (b1, b2, b3) = (base.clone(), base.clone(), base.clone());
    let delete_polls = Arc::new(AtomicU32::new(0));
    let (p1, p2) = (polls.clone(), delete_polls.clone());
    let app = axum::Router::new()
        .route(
            "/subscriptions/s/resourceGroups/rg",
            put(move || {
                let b = b1.clone();
                async move {
                    let h = headers(&[
                        ("azure-asyncoperation", format!("{b}/ops/put")),
                        ("retry-after", "0".into()),
                    ]);
                    (StatusCode::CREATED, h, axum::Json(json!({"name": "rg", "properties": {"provisioningState": "Accepted"}})))
                }
            })
            .get(|| async { axum::Json(json!({"name": "rg", "properties": {"provisioningState": "Succeeded"}})) })
            .delete(move || {
                let b = b2.clone();
                async move {
                    let h = headers(&[("location", format!("{b}/ops/delete")), ("retry-after", "0".into())]);
                    (StatusCode::ACCEPTED, h).into_response()
                }
            }),
        )
        .route(
            "/ops/put",
            get(move || {
                let n = p1.fetch_add(1, Ordering::SeqCst);
                async move {
                    let state = if n < 2 { "InProgress" } else { "Succeeded" };
                    (headers(&[("retry-after", "0".into())]), axum::Json(json!({"status": state})))
                }
            }),
        )
        .route(
            "/ops/delete",
            get(move || {
                let n = p2.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 4 {
                        (StatusCode::ACCEPTED, headers(&[("retry-after", "0".into())])).into_response()
                    } else {
                        StatusCode::OK.into_response()
                    }
                }
            }),
        )
        .route(
            "/subscriptions/s/resourceGroups/broken",
            put(move || {
                let b = b3.clone();
                async move {
                    let h = headers(&[("azure-asyncoperation", format!("{b}/ops/fail")), ("retry-after", "0".into())]);
                    (StatusCode::CREATED, h, axum::Json(json!({"name": "broken"})))
                }
            }),
        )
        .route(
            "/ops/fail",
            get(|| async {
                axum::Json(json!({"status": "Failed", "error": {"code": "InvalidTemplate", "message": "the rule references a missing table"}}))
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let tenant = Emulator::start().await;
    let mut config = tenant.config(AuthMethod::AzureCli);
    config.cloud.resource_manager = base;
    let clients = tenant.clients_with_source(config, Box::new(FixedToken), fast_policy());

    let done = clients
        .arm
        .put(
            "/subscriptions/s/resourceGroups/rg",
            API,
            json!({"location": "westeurope"}),
            &deadline(),
        )
        .await
        .unwrap();
    // The final state comes from a GET after the operation succeeded, not the 201 body.
    assert_eq!(done["properties"]["provisioningState"], "Succeeded");
    assert_eq!(polls.load(Ordering::SeqCst), 3);

    assert!(clients
        .arm
        .delete("/subscriptions/s/resourceGroups/rg", API, &deadline())
        .await
        .unwrap());
    assert_eq!(delete_polls.load(Ordering::SeqCst), 5);

    let err = clients
        .arm
        .put(
            "/subscriptions/s/resourceGroups/broken",
            API,
            json!({"location": "westeurope"}),
            &deadline(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidTemplate"), "{err}");
    assert!(err.to_string().contains("missing table"), "{err}");
    assert!(err.to_string().contains("failed"), "{err}");
}
