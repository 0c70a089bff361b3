//! What the monitoring e2e tests (`resource_entra_diagnostic_setting`, `resource_action_group`,
//! `resource_signin_alert`) share: the seed's monitoring objects, configurations, another
//! administrator's Graph/ARM calls and the emulator's admin API (drift, sign-ins, the emulated
//! clock, notifications), request-log queries, and the bad-input table.

#![allow(dead_code)] // each test module uses a different part

use serde_json::{json, Value as Json};

use crate::harness::{required_providers, Ctx, FakeTenant};

pub const SUB: &str = "eeb0c733-9a1c-437b-b310-e18599b1b281";
pub const RG: &str = "rg-breakglass-monitoring";
pub const WORKSPACE: &str = "/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/resourceGroups/rg-breakglass-monitoring/providers/Microsoft.OperationalInsights/workspaces/law-breakglass";
pub const AADIAM_SETTINGS: &str = "/providers/microsoft.aadiam/diagnosticSettings";
pub const ALICE_UPN: &str = "alice@contoso.com";

/// Seed applications by display name: (app id, service principal object id, secret).
pub fn app(display_name: &str) -> (String, String, String) {
    let seed = fake_tenant::seed::load("default").expect("default seed");
    let app = seed["auth"]["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["displayName"] == display_name)
        .unwrap_or_else(|| panic!("no seed application {display_name}"))
        .clone();
    let text = |v: &Json| v.as_str().unwrap().to_owned();
    (
        text(&app["appId"]),
        text(&app["servicePrincipalId"]),
        text(&app["clientSecrets"][0]),
    )
}

/// `terraform { … }` and an empty provider block.
pub fn header() -> String {
    format!("{}\nprovider \"breakglass\" {{}}\n", required_providers())
}

pub fn diagnostic_setting(name: &str, extra: &str) -> String {
    format!(
        "resource \"breakglass_entra_diagnostic_setting\" \"entra\" {{\n  name         = \"{name}\"\n  workspace_id = \"{WORKSPACE}\"\n{extra}}}\n"
    )
}

pub fn action_group(extra: &str) -> String {
    format!(
        "resource \"breakglass_action_group\" \"oncall\" {{\n  resource_group_name = \"{RG}\"\n  name                = \"ag-breakglass\"\n  short_name          = \"bg-alert\"\n{extra}}}\n"
    )
}

pub const EMAIL_AND_SMS: &str = "  email_receivers {\n    name          = \"soc\"\n    email_address = \"soc@contoso.com\"\n  }\n  sms_receivers {\n    name         = \"oncall\"\n    country_code = \"1\"\n    phone_number = \"5551234567\"\n  }\n";

// ---------------------------------------------------------------------------------------------
// Another administrator, and the emulator's admin API

/// HTTP as an administrator outside Terraform: client-credentials tokens of a seed app for
/// Graph and ARM, and the emulator's `/_fake/` routes.
pub struct Admin {
    base: String,
    graph_token: String,
    arm_token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Admin {
    /// As the provider's own app (it holds what the drift needs).
    pub fn new(tenant: &FakeTenant) -> Admin {
        Admin::as_app(tenant, "terraform-breakglass")
    }

    pub fn as_app(tenant: &FakeTenant, display_name: &str) -> Admin {
        let (client_id, _, secret) = app(display_name);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let http = reqwest::Client::new();
        let token = |scope: &str| -> String {
            let answer: Json = runtime
                .block_on(async {
                    http.post(format!(
                        "{}/{}/oauth2/v2.0/token",
                        tenant.base_url, tenant.tenant_id
                    ))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id.as_str()),
                        ("client_secret", secret.as_str()),
                        ("scope", scope),
                    ])
                    .send()
                    .await?
                    .json()
                    .await
                })
                .expect("token");
            answer["access_token"]
                .as_str()
                .expect("access token")
                .to_owned()
        };
        Admin {
            graph_token: token("https://graph.microsoft.com/.default"),
            arm_token: token("https://management.azure.com/.default"),
            base: tenant.base_url.clone(),
            http,
            runtime,
        }
    }

    fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Json>,
    ) -> (u16, Json) {
        self.runtime.block_on(async {
            let mut request = self.http.request(method, &url);
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            if let Some(b) = body {
                request = request.json(&b);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            (status, response.json::<Json>().await.unwrap_or(Json::Null))
        })
    }

    fn ok(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Json>,
    ) -> Json {
        let shown = format!("{method} {url}");
        let (status, answer) = self.send(method, url, token, body);
        assert!((200..300).contains(&status), "{shown}: {status} {answer}");
        answer
    }

    /// `path` under ARM, `api-version` appended.
    pub fn arm(
        &self,
        method: reqwest::Method,
        path: &str,
        api_version: &str,
        body: Option<Json>,
    ) -> Json {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version={api_version}", self.base);
        self.ok(method, url, Some(&self.arm_token.clone()), body)
    }

    /// `path` under ARM; the status and body, whatever they are.
    pub fn arm_status(
        &self,
        method: reqwest::Method,
        path: &str,
        api_version: &str,
        body: Option<Json>,
    ) -> (u16, Json) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version={api_version}", self.base);
        self.send(method, url, Some(&self.arm_token.clone()), body)
    }

    pub fn graph(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        let url = format!("{}/v1.0{path}", self.base);
        self.ok(method, url, Some(&self.graph_token.clone()), body)
    }

    /// The emulator's admin API (`/_fake{path}`).
    pub fn fake(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        self.ok(method, format!("{}/_fake{path}", self.base), None, body)
    }

    /// A simulated sign-in (`POST /_fake/arm/signins`).
    pub fn sign_in(&self, event: Json) -> Json {
        self.fake(reqwest::Method::POST, "/arm/signins", Some(event))
    }

    /// Moves the emulated clock forward, running the evaluations that become due.
    pub fn advance(&self, seconds: u64) {
        self.fake(
            reqwest::Method::POST,
            "/clock/advance",
            Some(json!({ "seconds": seconds })),
        );
    }

    /// Every notification so far (after the due evaluations), then forgets them.
    pub fn take_notifications(&self) -> Vec<Json> {
        let all = self.fake(reqwest::Method::GET, "/arm/notifications", None);
        self.fake(reqwest::Method::DELETE, "/arm/notifications", None);
        all["value"].as_array().cloned().unwrap_or_default()
    }

    /// Evaluation errors the emulator recorded (rules that could not run).
    pub fn evaluation_errors(&self) -> Vec<Json> {
        let alerts = self.fake(reqwest::Method::GET, "/arm/alerts", None);
        alerts["evaluationErrors"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Looking into the tenant

/// Logged requests whose method matches `method` and path matches `path` (regexes).
pub fn requests(tenant: &FakeTenant, method: &str, path: &str) -> Vec<Json> {
    let (method, path) = (
        regex::Regex::new(method).unwrap(),
        regex::Regex::new(path).unwrap(),
    );
    tenant
        .state
        .tenant()
        .behaviour
        .request_log
        .iter()
        .filter(|r| {
            method.is_match(r["method"].as_str().unwrap_or_default())
                && path.is_match(r["path"].as_str().unwrap_or_default())
        })
        .cloned()
        .collect()
}

/// Every write (PUT, PATCH, POST, DELETE) the tenant saw on ARM or Graph.
pub fn writes(tenant: &FakeTenant) -> Vec<String> {
    requests(
        tenant,
        "^(PUT|PATCH|POST|DELETE)$",
        "^/(subscriptions|providers|v1.0)/",
    )
    .iter()
    .map(|r| format!("{} {}", r["method"], r["path"]))
    .collect()
}

/// `terraform plan` proposes changes and its output matches every pattern.
pub fn plan_proposes(ctx: &Ctx<'_>, patterns: &[&str]) -> Result<(), String> {
    let out = ctx
        .workspace
        .run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    if out.exit_code != Some(2) {
        return Err(format!("expected a plan with changes\n{out}"));
    }
    for p in patterns {
        if !out.matches(&regex::Regex::new(p).unwrap()) {
            return Err(format!("the plan does not match /{p}/\n{out}"));
        }
    }
    Ok(())
}

/// `terraform plan` succeeds and its output matches `pattern` (a warning, say).
pub fn plan_output_matches(ctx: &Ctx<'_>, pattern: &str) -> Result<(), String> {
    let out = ctx.workspace.run(&["plan", "-input=false", "-no-color"]);
    if out.success() && out.matches(&regex::Regex::new(pattern).unwrap()) {
        Ok(())
    } else {
        Err(format!(
            "expected a plan whose output matches /{pattern}/\n{out}"
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input, as data

/// One bad input the provider must refuse on its attribute, before anything is written. Kept
/// as a table so the reliability suite can run the same rows.
pub struct BadInput {
    pub resource: &'static str,
    pub attribute: &'static str,
    /// The HCL line that sets the bad value (replacing the attribute's line in the good
    /// configuration, or added to it).
    pub line: &'static str,
    /// What the diagnostic must say (a regex over Terraform's output, wrapping undone).
    pub says: &'static str,
}

pub const BAD_INPUT: &[BadInput] = &[
    BadInput {
        resource: "breakglass_action_group",
        attribute: "short_name",
        line: "short_name = \"thirteen-char\"",
        says: "Invalid short name.*`short_name` must be 1 to 12 characters long, but has 13",
    },
    BadInput {
        resource: "breakglass_action_group",
        attribute: "email_receivers[0].email_address",
        line: "email_address = \"soc.contoso.com\"",
        says: "Invalid e-mail address.*`email_receivers\\[0\\]\\.email_address` must be an e-mail address",
    },
    BadInput {
        resource: "breakglass_action_group",
        attribute: "sms_receivers[0].phone_number",
        line: "phone_number = \"555-CALL-NOW\"",
        says: "Invalid phone number.*`sms_receivers\\[0\\]\\.phone_number` must be digits only",
    },
    BadInput {
        resource: "breakglass_signin_alert",
        attribute: "severity",
        line: "severity = 5",
        says: "Invalid severity.*`severity` must be a whole number from 0 to 4; got 5",
    },
    BadInput {
        resource: "breakglass_signin_alert",
        attribute: "evaluation_frequency",
        line: "evaluation_frequency = \"PT7X\"",
        says: "Invalid duration.*`evaluation_frequency` must be an ISO 8601 duration: \"PT7X\" is not an ISO 8601 duration",
    },
    BadInput {
        resource: "breakglass_signin_alert",
        attribute: "workspace_id",
        line: "workspace_id = \"law-breakglass\"",
        says: "Invalid resource id.*`workspace_id` must be the resource id of a Log Analytics workspace",
    },
    BadInput {
        resource: "breakglass_entra_diagnostic_setting",
        attribute: "workspace_id",
        line: "workspace_id = \"/subscriptions/eeb0c733-9a1c-437b-b310-e18599b1b281/workspaces/law-breakglass\"",
        says: "Invalid resource id.*`workspace_id` must be the resource id of a Log Analytics workspace",
    },
];

/// The good configuration of `resource` with `bad.line` in place of the attribute's line
/// (matched by the attribute's last name), or added when the configuration has none.
pub fn with_bad_line(good: &str, bad: &BadInput) -> String {
    let key = bad.line.split('=').next().unwrap().trim();
    let mut replaced = false;
    let lines: Vec<String> = good
        .lines()
        .map(|l| {
            if !replaced && l.trim_start().split('=').next().map(str::trim) == Some(key) {
                replaced = true;
                let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
                format!("{indent}{}", bad.line)
            } else {
                l.to_owned()
            }
        })
        .collect();
    let mut text = lines.join("\n") + "\n";
    if !replaced {
        // Add it as the first attribute of the resource's block.
        let block = text
            .find(&format!("resource \"{}\"", bad.resource))
            .expect("the resource's block");
        let at = block + text[block..].find("{\n").expect("a block body") + 2;
        text.insert_str(at, &format!("  {}\n", bad.line));
    }
    text
}

#[test]
fn bad_lines_replace_or_extend_the_good_configuration() {
    let good = action_group(EMAIL_AND_SMS);
    let short = with_bad_line(&good, &BAD_INPUT[0]);
    assert!(
        short.contains("  short_name = \"thirteen-char\"\n"),
        "{short}"
    );
    assert!(!short.contains("bg-alert"), "{short}");
    let phone = with_bad_line(&good, &BAD_INPUT[2]);
    assert!(
        phone.contains("    phone_number = \"555-CALL-NOW\"\n"),
        "{phone}"
    );
    let added = with_bad_line(
        "terraform {\n}\nresource \"breakglass_signin_alert\" \"y\" {\n  name = \"a\"\n}\n",
        &BAD_INPUT[3],
    );
    assert!(
        added.ends_with(
            "resource \"breakglass_signin_alert\" \"y\" {\n  severity = 5\n  name = \"a\"\n}\n"
        ),
        "{added}"
    );
}
