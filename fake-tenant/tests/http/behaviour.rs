//! Behaviours driven through the admin API: fault rules, throttling, latency, request ids,
//! the request log with redaction, counters, reset, dump/load, and the real binary.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json_body, TestTenant};

const TENANTS: &str = "/tenants?api-version=2022-12-01";

async fn add_fault(t: &TestTenant, rule: Value) {
    let response = t
        .admin(Method::POST, "/faults")
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn fault_rule_fails_n_times_with_retry_after_then_the_service_answers() {
    let t = TestTenant::start().await;
    add_fault(
        &t,
        json!({"method": "GET", "path": "^/v1\\.0/me$", "status": 503, "retry_after": 2, "times": 2}),
    )
    .await;
    for _ in 0..2 {
        let response = t.graph(Method::GET, "/me").send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
        let request_id = response.headers()["request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], json!("ServiceUnavailable"));
        assert_eq!(body["error"]["innerError"]["request-id"], json!(request_id));
    }
    // Other methods and paths were never affected; the rule is now spent.
    assert_eq!(
        t.graph(Method::GET, "/me").send().await.unwrap().status(),
        400
    );
    let rules = json_body(t.admin(Method::GET, "/faults").send().await.unwrap()).await;
    assert_eq!(rules["value"][0]["remaining"], json!(0));
    assert_eq!(rules["value"][0]["hits"], json!(2));

    // A rule with an explicit body returns it verbatim.
    add_fault(
        &t,
        json!({"path": "^/tenants$", "status": 409, "body": {"error": {"code": "Conflict", "message": "busy"}}}),
    )
    .await;
    let conflict = t.arm(Method::GET, TENANTS).send().await.unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(json_body(conflict).await["error"]["message"], json!("busy"));
}

#[tokio::test]
async fn dropped_connection_fault_gives_the_client_a_transport_error_once() {
    let t = TestTenant::start().await;
    add_fault(&t, json!({"path": "^/tenants$", "drop_connection": true})).await;
    let outcome = match t.arm(Method::GET, TENANTS).send().await {
        Err(e) => Err(e),
        Ok(response) => response.bytes().await.map(|_| ()),
    };
    assert!(outcome.is_err(), "the connection should have been dropped");
    assert_eq!(
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        200
    );
    let log = t.requests("?path=^/tenants$").await;
    assert_eq!(
        log[0]["status"],
        Value::Null,
        "dropped requests are logged without a status"
    );
    assert_eq!(log[1]["status"], json!(200));
}

fn new_user(upn: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": "Fault test",
        "mailNickname": upn.split('@').next().unwrap(),
        "userPrincipalName": upn,
        "passwordProfile": {"password": "Corr3ct-Horse-Battery!"},
    })
}

async fn user_exists(t: &TestTenant, upn: &str) -> bool {
    let status = t
        .graph(Method::GET, &format!("/users/{upn}"))
        .send()
        .await
        .unwrap()
        .status();
    status == 200
}

#[tokio::test]
async fn dropped_after_commit_loses_only_the_answer() {
    let t = TestTenant::start().await;
    let upn = "after-commit@contoso.onmicrosoft.com";
    add_fault(
        &t,
        json!({"method": "POST", "path": "^/v1\\.0/users$", "drop_connection": "after_commit"}),
    )
    .await;
    let outcome = match t
        .graph(Method::POST, "/users")
        .json(&new_user(upn))
        .send()
        .await
    {
        Err(e) => Err(e),
        Ok(response) => response.bytes().await.map(|_| ()),
    };
    assert!(outcome.is_err(), "the answer should have been lost");
    // The service committed the create all the same.
    assert!(user_exists(&t, upn).await);
    let log = t.requests("?method=POST&path=^/v1\\.0/users$").await;
    assert_eq!(log[0]["status"], Value::Null, "the client got no status");
    assert_eq!(log[0]["committedStatus"], json!(201));
    assert_eq!(log[0]["fault"]["kind"], json!("after_commit"));
    // A rule dropping before the response leaves nothing behind.
    add_fault(
        &t,
        json!({"method": "POST", "path": "^/v1\\.0/users$", "drop_connection": "before_response"}),
    )
    .await;
    let other = "before-response@contoso.onmicrosoft.com";
    assert!(t
        .graph(Method::POST, "/users")
        .json(&new_user(other))
        .send()
        .await
        .is_err());
    assert!(!user_exists(&t, other).await);
    let bad = t
        .admin(Method::POST, "/faults")
        .json(&json!({"path": "x", "drop_connection": "sometimes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn held_requests_wait_for_the_rule_to_go_and_are_never_processed() {
    let t = TestTenant::start().await;
    let logged_before = t.requests("").await.len();
    // Everything after the first request is held.
    add_fault(
        &t,
        json!({"path": ".*", "after": 1, "hold": true, "times": null}),
    )
    .await;
    assert_eq!(
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        200
    );
    let upn = "held@contoso.onmicrosoft.com";
    let held = tokio::spawn({
        let request = t.graph(Method::POST, "/users").json(&new_user(upn));
        async move {
            match request.send().await {
                Err(e) => Err(e),
                Ok(response) => response.bytes().await.map(|_| ()),
            }
        }
    });
    // The rule counts the held request as a hit while it waits.
    let rule = loop {
        let rules = json_body(t.admin(Method::GET, "/faults").send().await.unwrap()).await;
        if rules["value"][0]["hits"] == json!(1) {
            break rules["value"][0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(!held.is_finished(), "a held request gets no answer");
    assert_eq!(
        t.requests("").await.len(),
        logged_before + 1,
        "held requests are not logged yet"
    );
    let removed = t
        .admin(Method::DELETE, &format!("/faults/{}", rule["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert!(held.await.unwrap().is_err(), "released without an answer");
    assert!(
        !user_exists(&t, upn).await,
        "a held request is never processed"
    );
    let log = t.requests("?method=POST&path=^/v1\\.0/users$").await;
    assert_eq!(log[0]["fault"]["kind"], json!("hold"));
    assert_eq!(log[0]["status"], Value::Null);
}

#[tokio::test]
async fn after_lets_the_first_matches_through() {
    let t = TestTenant::start().await;
    add_fault(&t, json!({"path": "^/tenants$", "status": 503, "after": 2})).await;
    let statuses = [
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 200, 503, 200]);
}

/// Graph serializes writes to one policy and the last PATCH's arrays replace the stored ones
/// whole (facts file, "Conditional Access policies"): writers that read the same version and
/// each add their own exclusion leave exactly one writer's array — the lost update the
/// provider's read-back has to detect.
#[tokio::test]
async fn concurrent_policy_patches_are_serialized_and_the_last_writer_wins() {
    let t = TestTenant::start().await;
    let path = "/identity/conditionalAccess/policies/ca000000-0000-4000-8000-000000000001";
    let read = json_body(t.graph(Method::GET, path).send().await.unwrap()).await;
    let users = read["conditions"]["users"].clone();
    // Seeded users none of which policy 01 excludes yet.
    let writers = [
        "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e01",
        "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e04",
        "5d2c6f0e-3b1a-4c8e-9f7d-0a1b2c3d4e06",
    ];
    let arrays: Vec<Value> = writers
        .iter()
        .map(|w| {
            let mut list = users["excludeUsers"].as_array().unwrap().clone();
            assert!(!list.contains(&json!(w)), "{w} is already excluded");
            list.push(json!(w));
            Value::Array(list)
        })
        .collect();
    for _round in 0..5 {
        let tasks: Vec<_> = arrays
            .iter()
            .map(|list| {
                let mut mine = users.clone();
                mine["excludeUsers"] = list.clone();
                let request = t
                    .graph(Method::PATCH, path)
                    .json(&json!({"conditions": {"users": mine}}));
                tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), 204);
        }
        let after = json_body(t.graph(Method::GET, path).send().await.unwrap()).await;
        let stored = &after["conditions"]["users"]["excludeUsers"];
        assert!(
            arrays.contains(stored),
            "the stored array is no single writer's: {stored}"
        );
    }
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_per_family() {
    let t = TestTenant::start().await;
    let response = t
        .admin(Method::PUT, "/throttle")
        .json(&json!([
            {"family": "arm", "limit": 2, "window_s": 60},
            {"family": "graph", "limit": 1, "window_s": 60},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for _ in 0..2 {
        assert_eq!(
            t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
            200
        );
    }
    let throttled = t.arm(Method::GET, TENANTS).send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        json_body(throttled).await["error"]["code"],
        json!("TooManyRequests")
    );

    assert_eq!(
        t.graph(Method::GET, "/me").send().await.unwrap().status(),
        400
    );
    let graph_throttled = t.graph(Method::GET, "/me").send().await.unwrap();
    assert_eq!(graph_throttled.status(), 429);
    assert!(graph_throttled.headers().contains_key("retry-after"));
    let body = json_body(graph_throttled).await;
    assert_eq!(body["error"]["code"], json!("TooManyRequests"));
    assert!(body["error"]["innerError"]["request-id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    // Removing the limit lifts it at once.
    t.admin(Method::PUT, "/throttle")
        .json(&json!({"family": "arm", "limit": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn latency_and_delay_faults_show_in_the_request_log_durations() {
    let t = TestTenant::start().await;
    t.set_settings(json!({"latency.arm_ms": 150})).await;
    t.arm(Method::GET, TENANTS).send().await.unwrap();
    t.set_settings(json!({"latency.arm_ms": null})).await;
    add_fault(&t, json!({"path": "^/v1\\.0/me$", "delay_ms": 120})).await;
    // A delay-only rule slows the request down but the service still answers.
    assert_eq!(
        t.graph(Method::GET, "/me").send().await.unwrap().status(),
        400
    );

    let arm = t.requests("?family=arm").await;
    assert!(arm[0]["durationMs"].as_u64().unwrap() >= 150, "{}", arm[0]);
    let graph = t.requests("?family=graph").await;
    assert!(
        graph[0]["durationMs"].as_u64().unwrap() >= 120,
        "{}",
        graph[0]
    );
    assert!(graph[0]["receivedAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn request_ids_are_set_and_client_ids_echoed() {
    let t = TestTenant::start().await;
    let graph = t
        .graph(Method::GET, "/me")
        .header("client-request-id", "7e1f3c8a-0000-4000-8000-000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(
        graph.headers()["client-request-id"],
        "7e1f3c8a-0000-4000-8000-000000000001"
    );
    assert!(!graph.headers()["request-id"].is_empty());
    let body = json_body(graph).await;
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        json!("7e1f3c8a-0000-4000-8000-000000000001")
    );

    let arm = t
        .arm(Method::GET, TENANTS)
        .header("x-ms-correlation-request-id", "corr-42")
        .send()
        .await
        .unwrap();
    assert_eq!(arm.headers()["x-ms-correlation-request-id"], "corr-42");
    assert!(arm.headers().contains_key("x-ms-request-id"));
}

#[tokio::test]
async fn request_log_redacts_secrets_and_filters_by_method_and_path() {
    let t = TestTenant::start().await;
    t.graph(Method::GET, "/me").send().await.unwrap();
    let log = t.requests("").await;
    let text = json!(log).to_string();
    assert!(
        !text.contains(&t.client_secret),
        "client secret leaked into the log"
    );
    assert!(
        !text.contains(&t.graph_token),
        "access token leaked into the log"
    );

    let token_requests = t.requests("?method=POST&path=/oauth2/v2.0/token$").await;
    assert_eq!(token_requests.len(), 2, "the harness fetched two tokens");
    assert_eq!(
        token_requests[0]["requestBody"]["client_secret"],
        json!("[REDACTED]")
    );
    assert_eq!(
        token_requests[0]["requestBody"]["grant_type"],
        json!("client_credentials")
    );
    assert_eq!(
        token_requests[0]["responseBody"]["access_token"],
        json!("[REDACTED]")
    );
    assert_eq!(
        token_requests[0]["responseBody"]["token_type"],
        json!("Bearer")
    );

    let me = t.requests("?method=GET&path=^/v1\\.0/me$").await;
    assert_eq!(me.len(), 1);
    assert_eq!(
        me[0]["requestHeaders"]["authorization"],
        json!("[REDACTED]")
    );
    assert_eq!(me[0]["status"], json!(400));

    assert_eq!(
        t.admin(Method::DELETE, "/requests")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(t.requests("").await.is_empty());
}

#[tokio::test]
async fn counters_count_responses_per_family_and_status() {
    let t = TestTenant::start().await;
    t.graph(Method::GET, "/me").send().await.unwrap();
    t.arm(Method::GET, TENANTS).send().await.unwrap();
    t.http.get(t.url(TENANTS)).send().await.unwrap();
    let counters = json_body(t.admin(Method::GET, "/counters").send().await.unwrap()).await;
    assert_eq!(counters["requests"]["token"]["200"], json!(2));
    assert_eq!(counters["requests"]["graph"]["400"], json!(1));
    assert_eq!(counters["requests"]["arm"]["200"], json!(1));
    assert_eq!(counters["requests"]["arm"]["401"], json!(1));
    assert_eq!(counters["tokens_issued"][&t.client_id], json!(2));
}

async fn federated_credential_count(t: &TestTenant) -> usize {
    let state = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    state["auth"]["applications"][0]["federatedIdentityCredentials"]
        .as_array()
        .unwrap()
        .len()
}

async fn add_federated_credential(t: &TestTenant) {
    let response = t
        .admin(
            Method::POST,
            &format!("/auth/applications/{}/federatedIdentityCredentials", t.client_id),
        )
        .json(&json!({"name": "extra", "issuer": "https://issuer.example", "subject": "s", "audiences": ["a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn reset_returns_to_the_seed_and_clears_the_log() {
    let t = TestTenant::start().await;
    add_federated_credential(&t).await;
    t.set_settings(json!({"graph.replication_lag_ms": 500}))
        .await;
    assert_eq!(federated_credential_count(&t).await, 2);

    assert_eq!(
        t.admin(Method::POST, "/reset")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(federated_credential_count(&t).await, 1);
    assert!(t.requests("").await.is_empty());
    let settings = json_body(t.admin(Method::GET, "/settings").send().await.unwrap()).await;
    assert_eq!(settings, json!({}));
    // Tokens issued before the reset are still valid: the tenant id and keys did not change.
    assert_eq!(
        t.arm(Method::GET, TENANTS).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn dump_and_load_round_trip_the_tenant() {
    let t = TestTenant::start().await;
    let before = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    for area in ["tenant", "auth", "directory", "pim", "arm"] {
        assert!(before.get(area).is_some(), "dump lacks {area}");
    }
    add_federated_credential(&t).await;
    let changed = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    assert_ne!(changed, before);

    let loaded = t
        .admin(Method::POST, "/state")
        .json(&before)
        .send()
        .await
        .unwrap();
    assert_eq!(loaded.status(), 204);
    let after = json_body(t.admin(Method::GET, "/state").send().await.unwrap()).await;
    for area in ["tenant", "auth", "directory", "pim", "arm"] {
        assert_eq!(
            after[area], before[area],
            "area {area} does not survive dump -> load -> dump"
        );
    }

    // Loading the changed dump brings the change back; reset still goes to the original seed.
    t.admin(Method::POST, "/state")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(federated_credential_count(&t).await, 2);
    t.admin(Method::POST, "/reset").send().await.unwrap();
    assert_eq!(federated_credential_count(&t).await, 1);
}

/// Kills the child on drop so a failed assertion does not leave a server running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type StdoutLines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts the real binary with `--state-file` and reads its ready line.
fn start_binary(state_file: &std::path::Path) -> (Child, Value, StdoutLines) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_breakglass-fake-tenant"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--seed",
                "default",
                "--state-file",
            ])
            .arg(state_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("a ready line").expect("readable");
    let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
    (child, ready, lines)
}

fn terminate(child: &mut Child) {
    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

#[tokio::test]
async fn binary_prints_one_ready_line_serves_tokens_and_keeps_state_across_restarts() {
    let state_file =
        std::env::temp_dir().join(format!("fake-tenant-state-{}.json", uuid::Uuid::new_v4()));
    let (mut child, ready, mut lines) = start_binary(&state_file);
    assert_eq!(ready["ready"], json!(true));
    assert_eq!(
        ready["tenant_id"],
        json!("46810bcd-886d-469e-a664-c8d3691d74fd")
    );
    let url = ready["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"));

    let http = reqwest::Client::new();
    let token = http
        .post(format!(
            "{url}/{}/oauth2/v2.0/token",
            ready["tenant_id"].as_str().unwrap()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ready["client_id"].as_str().unwrap()),
            ("client_secret", ready["client_secret"].as_str().unwrap()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let registered = http
        .post(format!(
            "{url}/_fake/auth/applications/{}/federatedIdentityCredentials",
            ready["client_id"].as_str().unwrap()
        ))
        .json(&json!({"name": "survives-restart", "issuer": "https://issuer.example", "subject": "s", "audiences": ["a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    terminate(&mut child);
    assert!(lines.next().is_none(), "exactly one line on stdout");
    let dumped: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(dumped["tenant"]["id"], ready["tenant_id"]);
    assert_eq!(
        dumped["auth"]["applications"][0]["appId"],
        ready["client_id"]
    );

    // A second instance on the same state file starts from it, not from the seed.
    let (mut second, ready, _) = start_binary(&state_file);
    let state: Value = http
        .get(format!("{}/_fake/state", ready["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    terminate(&mut second);
    std::fs::remove_file(&state_file).unwrap();
    let names: Vec<&str> = state["auth"]["applications"][0]["federatedIdentityCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"survives-restart"), "{names:?}");
}

#[tokio::test]
async fn unknown_paths_answer_in_the_service_error_shapes() {
    let t = TestTenant::start().await;
    let graph = t
        .graph(Method::GET, "/users/x/nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(graph.status(), 400);
    let request_id = graph.headers()["request-id"].to_str().unwrap().to_owned();
    let body = json_body(graph).await;
    assert_eq!(body["error"]["code"], json!("BadRequest"));
    assert_eq!(
        body["error"]["message"],
        json!("Resource not found for the segment 'nonsense'.")
    );
    assert_eq!(body["error"]["innerError"]["request-id"], json!(request_id));
    let arm = t.arm(Method::GET, "/nothing-here").send().await.unwrap();
    assert_eq!(arm.status(), 404);
    assert_eq!(json_body(arm).await["error"]["code"], json!("NotFound"));
}
