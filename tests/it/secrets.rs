//! Secrets: the whole quickstart (apply, refresh, a saved plan, destroy) at `TF_LOG=trace` and
//! `TF_LOG_PROVIDER=trace`, once per authentication method the emulated tenant supports, and
//! every artefact searched for every secret the run used.
//!
//! Searched: each command's stdout and stderr (Terraform's trace log and the provider's lines,
//! which Terraform copies there), `terraform show -json` of the state and of the saved plan, and
//! every file left in the working directory (state, its backup, the plan file, a crash log if
//! either program wrote one).
//!
//! Searched for: the credential of the method (client secret; certificate password, private key
//! and PKCS#12 archive; CI request token; App Service identity header), every JWT the emulated
//! tenant issued or was shown during the run (access tokens, CI ID tokens, client assertions —
//! `AuthState::tokens_seen`), each by its payload and its signature separately, anything shaped
//! like a JWT at all, and the account's password. Allowed: the generated password in the state
//! (and so in the state a saved plan carries), where the provider documents it; nothing else.
//! With `password_wo` (Terraform ≥ 1.11) the password is found nowhere, state and plan included.

use std::path::Path;

use base64::Engine;
use regex::Regex;
use serde_json::Value as Json;

use crate::harness::{ClientCertificate, FakeTenant, Terraform, Workspace};

/// What one search looked through and found.
#[derive(Default)]
struct Search {
    /// (artefact, text)
    artefacts: Vec<(String, String)>,
}

impl Search {
    fn add(&mut self, name: impl Into<String>, text: impl Into<String>) {
        self.artefacts.push((name.into(), text.into()));
    }

    /// Every file under `dir`, by name (binary files lossily, so ASCII secrets still show).
    fn add_files(&mut self, dir: &Path, label: &str) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    let name = path.strip_prefix(dir).unwrap_or(&path).display();
                    self.add(
                        format!("{label}:{name}"),
                        String::from_utf8_lossy(&bytes).into_owned(),
                    );
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        self.artefacts.iter().map(|(_, t)| t.len()).sum()
    }

    /// Artefacts holding `needle` (named `what`), except those `allowed` names.
    fn hits(&self, what: &str, needle: &str, allowed: &dyn Fn(&str) -> bool) -> Vec<String> {
        if needle.len() < 8 {
            panic!("{what} is too short to search for meaningfully");
        }
        self.artefacts
            .iter()
            .filter(|(name, text)| text.contains(needle) && !allowed(name))
            .map(|(name, _)| format!("{what} in {name}"))
            .collect()
    }
}

/// The artefacts a state holds: the state files and `show -json` of state and saved plan.
fn is_state(artefact: &str) -> bool {
    artefact.contains("terraform.tfstate")
        || artefact.starts_with("terraform show -json")
        || artefact.ends_with(":tfplan")
}

fn never(_: &str) -> bool {
    false
}

/// One authentication method: the environment that selects it and its own secrets.
struct Method {
    name: &'static str,
    env: Vec<(String, String)>,
    secrets: Vec<(&'static str, String)>,
    /// Files the method needs (certificate archive); kept alive for the run.
    _dir: Option<tempfile::TempDir>,
}

fn without(env: Vec<(String, String)>, names: &[&str]) -> Vec<(String, String)> {
    env.into_iter()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .collect()
}

fn client_secret(tenant: &FakeTenant) -> Method {
    Method {
        name: "client_secret",
        env: tenant.provider_env(),
        secrets: vec![("client secret", tenant.client_secret.clone())],
        _dir: None,
    }
}

/// A PKCS#12 archive with a password, registered on the provider's app registration.
fn certificate(tenant: &FakeTenant) -> Method {
    use rsa::pkcs8::EncodePrivateKey;
    let certificate = ClientCertificate::new("breakglass-secrets-e2e");
    tenant.register_client_certificate(&certificate);
    let (cert, key_pem) = (&certificate.cert, &certificate.key_pem);
    let key_der = certificate.key.to_pkcs8_der().unwrap();
    let password = format!("pfx-{}", uuid::Uuid::new_v4().simple());
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![1u8],
        p12_keystore::PrivateKey::from_der(key_der.as_bytes()).unwrap(),
        vec![p12_keystore::Certificate::from_der(cert.der()).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "breakglass",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    let pfx = store.writer(&password).write().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pfx");
    std::fs::write(&path, &pfx).unwrap();

    let mut secrets = vec![
        ("certificate password", password.clone()),
        (
            "PKCS#12 archive (base64)",
            base64::engine::general_purpose::STANDARD.encode(&pfx)[..64].to_owned(),
        ),
        (
            "private key (base64 DER)",
            base64::engine::general_purpose::STANDARD.encode(key_der.as_bytes())[..64].to_owned(),
        ),
    ];
    // Every line of the key's PEM body (a leak of any part of it is a leak).
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        if line.len() >= 32 {
            secrets.push(("private key (PEM line)", line.to_owned()));
        }
    }
    let mut env = without(tenant.provider_env(), &["ARM_CLIENT_SECRET"]);
    env.push((
        "ARM_CLIENT_CERTIFICATE_PATH".into(),
        path.display().to_string(),
    ));
    env.push(("ARM_CLIENT_CERTIFICATE_PASSWORD".into(), password));
    Method {
        name: "client_certificate",
        env,
        secrets,
        _dir: Some(dir),
    }
}

/// OIDC through the emulated CI issuer, the way GitHub Actions hands it to a job.
fn oidc(tenant: &FakeTenant) -> Method {
    let request_token = tenant.state.tenant().auth.ci_oidc.request_token.clone();
    let mut env = without(tenant.provider_env(), &["ARM_CLIENT_SECRET"]);
    env.extend([
        ("ARM_USE_OIDC".to_owned(), "true".to_owned()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL".to_owned(),
            format!("{}/_fake/oidc/token", tenant.base_url),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
            request_token.clone(),
        ),
    ]);
    Method {
        name: "oidc",
        env,
        secrets: vec![("CI OIDC request token", request_token)],
        _dir: None,
    }
}

fn managed_identity_env(tenant: &FakeTenant) -> Vec<(String, String)> {
    let mi_client_id = tenant.state.tenant().auth.managed_identities[0]
        .app_id
        .clone();
    let mut env = without(
        tenant.provider_env(),
        &["ARM_CLIENT_SECRET", "ARM_CLIENT_ID"],
    );
    env.extend([
        ("ARM_CLIENT_ID".to_owned(), mi_client_id),
        ("ARM_USE_MSI".to_owned(), "true".to_owned()),
    ]);
    env
}

fn managed_identity_imds(tenant: &FakeTenant) -> Method {
    let mut env = managed_identity_env(tenant);
    env.push((
        "ARM_MSI_ENDPOINT".into(),
        format!("{}/metadata/identity/oauth2/token", tenant.base_url),
    ));
    Method {
        name: "managed_identity (IMDS)",
        env,
        // IMDS has no credential of its own: only the tokens it hands out.
        secrets: Vec::new(),
        _dir: None,
    }
}

fn managed_identity_app_service(tenant: &FakeTenant) -> Method {
    let header = tenant.state.tenant().auth.identity_header.clone();
    let mut env = managed_identity_env(tenant);
    env.extend([
        (
            "IDENTITY_ENDPOINT".to_owned(),
            format!("{}/msi/token", tenant.base_url),
        ),
        ("IDENTITY_HEADER".to_owned(), header.clone()),
    ]);
    Method {
        name: "managed_identity (App Service)",
        env,
        secrets: vec![("App Service identity header", header)],
        _dir: None,
    }
}

/// The quickstart as shipped (without its `check` block, so Terraform 1.0 runs it too); its
/// module is copied into the workspace by `run_quickstart`.
fn quickstart() -> String {
    crate::examples::quickstart()
}

/// The shared module as shipped, unchanged.
fn module_as_shipped(main_tf: String) -> String {
    main_tf
}

/// The quickstart's module with a write-only password instead of a generated one, taken from
/// an ephemeral variable (Terraform ≥ 1.10) as write-only values are meant to be — a literal
/// would sit in the file and in the configuration a saved plan shows. The root passes its own
/// ephemeral variable down.
fn module_write_only(main_tf: String) -> String {
    let generated = "  password_length     = 64\n";
    assert!(main_tf.contains(generated), "the module changed shape");
    let variable = "variable \"account_password\" {\n  type      = string\n  sensitive = true\n  ephemeral = true\n}\n";
    let main_tf = main_tf.replace(
        generated,
        "  password_wo         = var.account_password\n  password_wo_version = 1\n",
    );
    format!("{main_tf}\n{variable}")
}

fn quickstart_write_only() -> String {
    let config = quickstart();
    let call = "  deletion_protection = var.deletion_protection\n";
    assert!(config.contains(call), "the quickstart changed shape");
    let variable = "variable \"account_password\" {\n  type      = string\n  sensitive = true\n  ephemeral = true\n}\n";
    let config = config
        .replacen(
            call,
            &format!("{call}  account_password    = var.account_password\n"),
            1,
        )
        .replace(
            "required_version = \">= 1.0\"",
            "required_version = \">= 1.11\"",
        );
    format!("{config}\n{variable}")
}

const TRACE: [(&str, &str); 2] = [("TF_LOG", "trace"), ("TF_LOG_PROVIDER", "trace")];

/// Runs the quickstart's lifecycle at trace level and returns what it left behind, plus the
/// accounts' passwords as the state held them after apply (null with `password_wo`).
/// `signs_in` gets each account's object id and password after apply, while it exists.
/// `module` edits the shared module's `main.tf` before it is copied in.
fn run_quickstart(
    terraform: &'static Terraform,
    mut env: Vec<(String, String)>,
    config: &str,
    module: fn(String) -> String,
    signs_in: &dyn Fn(&str, Option<&str>),
) -> (Search, Vec<Option<String>>) {
    // Destroy is part of the lifecycle searched.
    env.push(("TF_VAR_deletion_protection".into(), "false".into()));
    let ws = Workspace::new(terraform, env);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules");
    let modules = ws.dir().join("modules");
    crate::harness::copy_dir(&shipped, &modules);
    let main_tf = modules.join("breakglass/main.tf");
    let edited = module(std::fs::read_to_string(&main_tf).expect("module main.tf"));
    std::fs::write(&main_tf, edited).expect("write module main.tf");
    ws.write_config(config);
    let mut search = Search::default();
    fn run(ws: &Workspace, search: &mut Search, args: &[&str]) -> String {
        let out = ws.run_with(args, &TRACE);
        assert!(out.success(), "terraform {} failed\n{out}", args.join(" "));
        search.add(format!("terraform {}", args.join(" ")), out.text.clone());
        out.text
    }
    let applied = run(&ws, &mut search, &["apply", "-auto-approve", "-no-color"]);
    // The provider's own lines are in the capture, at trace level.
    assert!(
        applied.contains("provider.terraform-provider-breakglass")
            && applied.contains("HTTP exchange"),
        "no provider trace lines in the output\n{applied}"
    );
    let state = run(&ws, &mut search, &["show", "-json", "-no-color"]);
    let accounts = accounts_of(&state);
    assert_eq!(accounts.len(), 2, "the quickstart makes two accounts");
    for (object_id, password) in &accounts {
        signs_in(object_id, password.as_deref());
    }
    let refresh = ["apply", "-refresh-only", "-auto-approve", "-no-color"];
    run(&ws, &mut search, &refresh);
    let planned = run(&ws, &mut search, &["plan", "-out=tfplan", "-no-color"]);
    assert!(planned.contains("No changes"), "{planned}");
    run(&ws, &mut search, &["show", "-json", "-no-color", "tfplan"]);
    search.add_files(ws.dir(), "file before destroy");
    run(&ws, &mut search, &["destroy", "-auto-approve", "-no-color"]);
    search.add_files(ws.dir(), "file after destroy");
    (search, accounts.into_iter().map(|(_, p)| p).collect())
}

/// Every account's object id and password from `terraform show -json`, in whatever module.
fn accounts_of(show_json: &str) -> Vec<(String, Option<String>)> {
    fn walk(module: &Json, out: &mut Vec<(String, Option<String>)>) {
        for r in module["resources"].as_array().into_iter().flatten() {
            if r["type"] == "breakglass_account" {
                let values = &r["values"];
                out.push((
                    values["object_id"].as_str().unwrap_or_default().to_owned(),
                    values["password"].as_str().map(str::to_owned),
                ));
            }
        }
        for child in module["child_modules"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let start = show_json.find('{').expect("show -json printed JSON");
    let json: Json = serde_json::Deserializer::from_str(&show_json[start..])
        .into_iter()
        .next()
        .and_then(Result::ok)
        .expect("show -json printed JSON");
    let mut out = Vec::new();
    walk(&json["values"]["root_module"], &mut out);
    out
}

/// Everything no artefact may hold, and the JWT shape anywhere.
fn leaks(
    search: &Search,
    tenant: &FakeTenant,
    secrets: &[(&'static str, String)],
    passwords: &[String],
    allowed: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for (what, secret) in secrets {
        found.extend(search.hits(what, secret, &never));
    }
    let tokens = tenant.state.tenant().auth.tokens_seen.clone();
    assert!(!tokens.is_empty(), "the run used no token at all");
    for token in &tokens {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "not a JWT");
        found.extend(search.hits("a token", token, &never));
        found.extend(search.hits("a token's payload", parts[1], &never));
        found.extend(search.hits("a token's signature", parts[2], &never));
    }
    let jwt = Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}").unwrap();
    for (name, text) in &search.artefacts {
        if jwt.is_match(text) {
            found.push(format!("something shaped like a JWT in {name}"));
        }
    }
    for value in passwords {
        found.extend(search.hits("an account's password", value, allowed));
    }
    found.sort();
    found.dedup();
    found
}

fn report(method: &str, search: &Search, secrets: usize, tokens: usize, passwords: usize) {
    // Counts for RELIABILITY.md; visible with --no-capture.
    eprintln!(
        "secrets: {method}: {} artefacts, {} bytes, {secrets} credentials + {tokens} tokens + {passwords} passwords searched, 0 hits",
        search.artefacts.len(),
        search.bytes()
    );
}

fn quickstart_leaks_nothing(setup: fn(&FakeTenant) -> Method) {
    let Some(terraform) = crate::harness::requires_terraform("1.0") else {
        return;
    };
    let tenant = FakeTenant::start();
    let method = setup(&tenant);
    // The password in state is the one Entra has: the search looks for the real secret.
    let verify = |id: &str, password: Option<&str>| {
        let password = password.expect("the generated password is in state, as documented");
        assert!(tenant
            .state
            .tenant()
            .directory
            .password_matches(id, password));
    };
    let (search, passwords) = run_quickstart(
        terraform,
        method.env.clone(),
        &quickstart(),
        module_as_shipped,
        &verify,
    );
    let passwords: Vec<String> = passwords.into_iter().flatten().collect();
    let found = leaks(&search, &tenant, &method.secrets, &passwords, &is_state);
    assert!(found.is_empty(), "{}: {}", method.name, found.join("\n"));
    // The allowance is used, so the search for each password could have found it.
    for password in &passwords {
        assert!(!search.hits("p", password, &never).is_empty());
    }
    let tokens = tenant.state.tenant().auth.tokens_seen.len();
    report(
        method.name,
        &search,
        method.secrets.len(),
        tokens,
        passwords.len(),
    );
}

#[test]
fn quickstart_at_trace_with_a_client_secret_leaks_nothing() {
    quickstart_leaks_nothing(client_secret);
}

#[test]
fn quickstart_at_trace_with_a_client_certificate_leaks_nothing() {
    quickstart_leaks_nothing(certificate);
}

#[test]
fn quickstart_at_trace_with_ci_oidc_leaks_nothing() {
    quickstart_leaks_nothing(oidc);
}

#[test]
fn quickstart_at_trace_with_managed_identity_from_imds_leaks_nothing() {
    quickstart_leaks_nothing(managed_identity_imds);
}

#[test]
fn quickstart_at_trace_with_managed_identity_from_app_service_leaks_nothing() {
    quickstart_leaks_nothing(managed_identity_app_service);
}

/// `password_wo`: the password reaches Entra (the emulator's hash checks it) and no artefact,
/// state and saved plan included.
#[test]
fn write_only_password_is_in_no_state_plan_or_log_tf1_11() {
    let Some(terraform) = crate::harness::requires_terraform("1.11") else {
        return;
    };
    let tenant = FakeTenant::start();
    let method = client_secret(&tenant);
    let password = format!("Wo-{}!", uuid::Uuid::new_v4().simple());
    let verify = |id: &str, in_state: Option<&str>| {
        assert_eq!(
            in_state, None,
            "a write-only password has no value in state"
        );
        assert!(
            tenant
                .state
                .tenant()
                .directory
                .password_matches(id, &password),
            "the write-only password did not reach Entra"
        );
    };
    let mut env = method.env.clone();
    env.push(("TF_VAR_account_password".into(), password.clone()));
    let (search, _) = run_quickstart(
        terraform,
        env,
        &quickstart_write_only(),
        module_write_only,
        &verify,
    );
    let found = leaks(
        &search,
        &tenant,
        &method.secrets,
        std::slice::from_ref(&password),
        &never,
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
    let tokens = tenant.state.tenant().auth.tokens_seen.len();
    report("password_wo", &search, method.secrets.len(), tokens, 1);
}
