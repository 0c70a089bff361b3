//! The request pipeline against the emulated tenant: retries (429 with Retry-After, 5xx),
//! deadlines, typed errors, paging, and creates that must not be repeated blindly. Waits are
//! measured from the emulator's request log, never from the test's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use breakglass::azure::{AzureError, Deadline, RetryPolicy};
use futures::{FutureExt, TryStreamExt};
use serde_json::{json, Value as Json};

use crate::azure_support::{deadline, fast_policy, gap_ms, user_body, Emulator};

#[tokio::test]
async fn throttled_request_waits_for_retry_after() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    tenant
        .fault(json!({"method": "GET", "path": "^/v1.0/domains$", "status": 429, "retry_after": 2, "times": 1}))
        .await;
    let domains = clients
        .graph
        .list_all("/domains", deadline())
        .await
        .unwrap();
    assert!(!domains.is_empty());

    let log = tenant.requests("GET", "^/v1.0/domains$").await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0]["status"], 429);
    assert_eq!(log[1]["status"], 200);
    // Retry-After: 2 overrides the 20 ms backoff of the test policy.
    assert!(
        gap_ms(&log[0], &log[1]) >= 2000,
        "gap {} ms",
        gap_ms(&log[0], &log[1])
    );
}

#[tokio::test]
async fn transient_server_errors_are_retried() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    tenant
        .fault(json!({"method": "GET", "path": "^/v1.0/organization$", "status": 503, "times": 2}))
        .await;
    tenant
        .fault(json!({"method": "GET", "path": "^/v1.0/domains$", "status": 502, "times": 1}))
        .await;
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    clients.graph.get("/domains", &deadline()).await.unwrap();
    let statuses: Vec<Json> = tenant
        .requests("GET", "^/v1.0/organization$")
        .await
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(503), json!(503), json!(200)]);
    assert_eq!(tenant.requests("GET", "^/v1.0/domains$").await.len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_keep_graph_details() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    let missing = "11111111-2222-3333-4444-555555555555";
    let err = clients
        .graph
        .get(&format!("/users/{missing}"), &deadline())
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    let api = err.api().expect("an API error");
    assert_eq!(api.code.as_deref(), Some("Request_ResourceNotFound"));
    assert!(api.request_id.as_deref().is_some_and(|id| !id.is_empty()));
    let log = tenant
        .requests("GET", &format!("^/v1.0/users/{missing}$"))
        .await;
    assert_eq!(log.len(), 1);
    // The id we sent is the one the service echoed into innerError.
    assert_eq!(
        api.client_request_id.as_deref(),
        log[0]["requestHeaders"]["client-request-id"].as_str()
    );
    let shown = err.to_string();
    assert!(
        shown.contains("404") && shown.contains("Request_ResourceNotFound"),
        "{shown}"
    );
    assert!(shown.contains(missing), "{shown}");
    assert_eq!(
        clients
            .graph
            .get_optional(&format!("/users/{missing}"), &deadline())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn retries_stop_at_the_deadline_with_the_last_error() {
    let tenant = Emulator::start().await;
    let policy = RetryPolicy {
        max_attempts: 1000,
        ..fast_policy()
    };
    let clients = tenant.clients_with_policy(policy);
    tenant
        .fault(
            json!({"method": "GET", "path": "^/v1.0/organization$", "status": 503, "times": null}),
        )
        .await;
    let err = clients
        .graph
        .get(
            "/organization",
            &Deadline::after(Duration::from_millis(1500)),
        )
        .await
        .unwrap_err();
    match &err {
        AzureError::Deadline { attempts, last, .. } => {
            assert!(*attempts >= 2, "{err}");
            assert_eq!(last.as_ref().and_then(|l| l.status()), Some(503), "{err}");
        }
        other => panic!("expected a deadline error, got {other}"),
    }
    assert!(err.to_string().contains("timeouts"), "{err}");

    // A Retry-After longer than the time left ends the operation at once instead of sleeping
    // past the deadline.
    tenant
        .fault(json!({"method": "GET", "path": "^/v1.0/domains$", "status": 429, "retry_after": 120, "times": 1}))
        .await;
    let err = clients
        .graph
        .get("/domains", &Deadline::after(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert!(matches!(err, AzureError::Deadline { .. }), "{err}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(tenant.requests("GET", "^/v1.0/domains$").await.len(), 1);
}

#[tokio::test]
async fn paging_follows_next_links_across_pages() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    for i in 0..5 {
        let alias = format!("bg-page-{i}");
        let body = user_body(
            &alias,
            "contoso.onmicrosoft.com",
            "Correct-Horse-Battery-9!",
        );
        let none: &breakglass::azure::http::CreateProbe<'_> = &|| async { Ok(None) }.boxed();
        clients
            .graph
            .create("/users", body, none, &deadline())
            .await
            .unwrap();
    }
    let all_at_once = clients
        .graph
        .list_all("/users?$top=999", deadline())
        .await
        .unwrap();
    assert!(all_at_once.len() >= 5);

    let paged: Vec<Json> = clients
        .graph
        .list("/users?$top=2", deadline())
        .try_collect()
        .await
        .unwrap();
    let ids = |v: &[Json]| -> Vec<String> {
        v.iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&paged), ids(&all_at_once));
    let pages = tenant.requests("GET", "^/v1.0/users$").await.len() - 1;
    assert_eq!(
        pages,
        all_at_once.len().div_ceil(2),
        "one request per page of two"
    );
}

/// A layer in front of the emulator that lets the first `POST /v1.0/users` take effect and
/// then drops the connection before the answer reaches the client — the case where a blind
/// re-send would create a second account.
fn drop_first_user_create(router: axum::Router, armed: Arc<AtomicBool>) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let armed = armed.clone();
            async move {
                let is_create =
                    req.method() == axum::http::Method::POST && req.uri().path() == "/v1.0/users";
                let response = next.run(req).await;
                if is_create && armed.swap(false, Ordering::SeqCst) {
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
async fn create_after_a_dropped_answer_finds_the_object_instead_of_duplicating_it() {
    let armed = Arc::new(AtomicBool::new(true));
    let layer_armed = armed.clone();
    let tenant = Emulator::start_wrapped(move |r| drop_first_user_create(r, layer_armed)).await;
    let clients = tenant.clients();
    let upn = "bg-dup-check@contoso.onmicrosoft.com";
    let graph = clients.graph.clone();
    let probe_calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let calls = probe_calls.clone();
    let probe = move || {
        let graph = graph.clone();
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let found = graph
                .list_all(
                    &format!("/users?$filter=userPrincipalName eq '{upn}'"),
                    deadline(),
                )
                .await?;
            Ok(found.into_iter().next())
        }
        .boxed()
    };
    let user = clients
        .graph
        .create(
            "/users",
            user_body(
                "bg-dup-check",
                "contoso.onmicrosoft.com",
                "Correct-Horse-Battery-9!",
            ),
            &probe,
            &deadline(),
        )
        .await
        .unwrap();
    assert_eq!(user["userPrincipalName"], upn);
    assert!(
        !armed.load(Ordering::SeqCst),
        "the connection was dropped once"
    );
    assert_eq!(probe_calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        tenant.requests("POST", "^/v1.0/users$").await.len(),
        1,
        "never re-sent"
    );
    let same_upn = clients
        .graph
        .list_all(
            &format!("/users?$filter=userPrincipalName eq '{upn}'"),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(same_upn.len(), 1);
}

#[tokio::test]
async fn create_is_re_sent_when_the_probe_finds_nothing() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    // The emulator's own dropped connection happens before the handler: nothing was created.
    tenant
        .fault(
            json!({"method": "POST", "path": "^/v1.0/users$", "drop_connection": true, "times": 1}),
        )
        .await;
    let upn = "bg-resend@contoso.onmicrosoft.com";
    let graph = clients.graph.clone();
    let probe = move || {
        let graph = graph.clone();
        async move {
            let found = graph
                .list_all(
                    &format!("/users?$filter=userPrincipalName eq '{upn}'"),
                    deadline(),
                )
                .await?;
            Ok(found.into_iter().next())
        }
        .boxed()
    };
    clients
        .graph
        .create(
            "/users",
            user_body(
                "bg-resend",
                "contoso.onmicrosoft.com",
                "Correct-Horse-Battery-9!",
            ),
            &probe,
            &deadline(),
        )
        .await
        .unwrap();
    assert_eq!(tenant.requests("POST", "^/v1.0/users$").await.len(), 2);
    let same_upn = clients
        .graph
        .list_all(
            &format!("/users?$filter=userPrincipalName eq '{upn}'"),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(same_upn.len(), 1);
}

#[tokio::test]
async fn a_rejected_token_is_replaced_once() {
    let tenant = Emulator::start().await;
    let clients = tenant.clients();
    clients
        .graph
        .get("/organization", &deadline())
        .await
        .unwrap();
    // Graph refuses the cached token once (revoked, say): the client gets a new one and retries.
    tenant
        .fault(json!({"method": "GET", "path": "^/v1.0/domains$", "status": 401, "times": 1}))
        .await;
    clients.graph.get("/domains", &deadline()).await.unwrap();
    assert_eq!(tenant.tokens_issued(&tenant.client_id).await, 2);
    // A token that keeps being refused is an error, not a loop.
    tenant
        .fault(json!({"method": "GET", "path": "^/v1.0/domains$", "status": 401, "times": null}))
        .await;
    let err = clients
        .graph
        .get("/domains", &deadline())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(tenant.requests("GET", "^/v1.0/domains$").await.len(), 4);
}

#[tokio::test]
async fn consistency_wait_outlasts_replication_lag() {
    use breakglass::azure::ConsistencyWait;

    let tenant = Emulator::start().await;
    tenant
        .settings(json!({"graph.replication_lag_ms": 600}))
        .await;
    let clients = tenant.clients();
    let none: &breakglass::azure::http::CreateProbe<'_> = &|| async { Ok(None) }.boxed();
    let user = clients
        .graph
        .create(
            "/users",
            user_body(
                "bg-lag",
                "contoso.onmicrosoft.com",
                "Correct-Horse-Battery-9!",
            ),
            none,
            &deadline(),
        )
        .await
        .unwrap();
    let path = format!("/users/{}", user["id"].as_str().unwrap());
    let read_deadline = deadline();
    let seen = ConsistencyWait::new("user bg-lag to be readable", deadline())
        .consecutive(3)
        .interval(Duration::from_millis(100))
        .until(
            || clients.graph.get_optional(&path, &read_deadline),
            Option::is_some,
        )
        .await
        .unwrap();
    assert_eq!(seen.unwrap()["id"], user["id"]);
    let reads: Vec<Json> = tenant
        .requests("GET", &format!("^/v1.0{path}$"))
        .await
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    // Not found while replicating, then three good reads in a row.
    assert_eq!(reads.first(), Some(&json!(404)), "{reads:?}");
    assert_eq!(
        reads[reads.len() - 3..],
        [json!(200), json!(200), json!(200)],
        "{reads:?}"
    );
}

/// Under replication lag a probe that looks once can miss the user the dropped create made; a
/// probe that waits (briefly) with `ConsistencyWait` finds it, so the create is not re-sent.
#[tokio::test]
async fn a_probe_that_waits_out_replication_lag_prevents_the_duplicate() {
    use breakglass::azure::ConsistencyWait;

    let armed = Arc::new(AtomicBool::new(true));
    let layer_armed = armed.clone();
    let tenant = Emulator::start_wrapped(move |r| drop_first_user_create(r, layer_armed)).await;
    tenant
        .settings(json!({"graph.replication_lag_ms": 700}))
        .await;
    let clients = tenant.clients();
    let upn = "bg-lagged@contoso.onmicrosoft.com";
    let graph = clients.graph.clone();
    let probe = move || {
        let graph = graph.clone();
        async move {
            let path = format!("/users?$filter=userPrincipalName eq '{upn}'");
            let wait = ConsistencyWait::new(
                "a possibly created user to replicate",
                Deadline::after(Duration::from_secs(3)),
            )
            .consecutive(1)
            .interval(Duration::from_millis(100));
            let read_deadline = deadline();
            match wait
                .until(
                    || graph.list_all(&path, read_deadline),
                    |found| !found.is_empty(),
                )
                .await
            {
                Ok(found) => Ok(found.into_iter().next()),
                // Not there after the wait: the create really did not happen.
                Err(AzureError::Deadline { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
        .boxed()
    };
    let user = clients
        .graph
        .create(
            "/users",
            user_body(
                "bg-lagged",
                "contoso.onmicrosoft.com",
                "Correct-Horse-Battery-9!",
            ),
            &probe,
            &deadline(),
        )
        .await
        .unwrap();
    assert_eq!(user["userPrincipalName"], upn);
    assert!(!armed.load(Ordering::SeqCst));
    assert_eq!(tenant.requests("POST", "^/v1.0/users$").await.len(), 1);
    // The probe did see "nothing yet" before the user replicated.
    let probes = tenant.requests("GET", "^/v1.0/users$").await;
    assert!(probes.len() >= 2, "{probes:?}");
}
