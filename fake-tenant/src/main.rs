//! `breakglass-fake-tenant --listen 127.0.0.1:0 [--seed NAME|FILE] [--state-file FILE]
//! [--tls-cert FILE --tls-key FILE] [--public-url URL]`
//!
//! Serves the emulated tenant (over HTTPS with `--tls-cert`/`--tls-key`) and, once it accepts
//! connections, prints exactly one JSON line on stdout
//! (`{"ready":true,"url":…,"listen":…,"tenant_id":…,"client_id":…,"client_secret":…}`) so
//! scripts can configure the provider from it. `url` is the public base URL every emitted URL
//! follows: `--public-url` (where `{port}` stands for the bound port), else
//! `http(s)://<listen address>`. Those are emulator credentials from the seed,
//! not secrets. SIGTERM or Ctrl-C shuts down gracefully, writing the state to `--state-file`.
//! When `--state-file` names an existing file, the instance starts from it instead of the seed.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use fake_tenant::AppState;
use serde_json::json;

struct Options {
    listen: String,
    seed: String,
    state_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    public_url: Option<String>,
}

const USAGE: &str = "usage: breakglass-fake-tenant --listen ADDR:PORT [--seed NAME|FILE] [--state-file FILE] [--tls-cert FILE --tls-key FILE] [--public-url URL]";

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:0".to_owned(),
        seed: "default".to_owned(),
        state_file: None,
        tls_cert: None,
        tls_key: None,
        public_url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--listen" => options.listen = value("--listen")?,
            "--seed" => options.seed = value("--seed")?,
            "--state-file" => options.state_file = Some(PathBuf::from(value("--state-file")?)),
            "--tls-cert" => options.tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => options.tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--public-url" => options.public_url = Some(value("--public-url")?),
            "-h" | "--help" => {
                return Err(format!(
                    "{USAGE}\nembedded seeds: {}",
                    fake_tenant::seed::embedded_names().join(", ")
                ))
            }
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    if options.tls_cert.is_some() != options.tls_key.is_some() {
        return Err(format!("--tls-cert and --tls-key go together\n{USAGE}"));
    }
    Ok(options)
}

/// The seed to start from: a previous run's state file when there is one, else `--seed`.
fn initial_seed(options: &Options) -> Result<serde_json::Value, String> {
    if let Some(path) = options.state_file.as_ref().filter(|p| p.exists()) {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read state file {}: {e}", path.display()))?;
        return serde_json::from_str(&text)
            .map_err(|e| format!("state file {} is not valid JSON: {e}", path.display()));
    }
    fake_tenant::seed::load(&options.seed)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn run(options: Options) -> Result<(), String> {
    let seed = initial_seed(&options)?;
    let tenant = fake_tenant::seed::build(&seed)?;
    let state = AppState::new(tenant);
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(fake_tenant::tls::server_config_from_files(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = match &options.public_url {
        Some(public) => fake_tenant::state::public_url(public, address.port())?,
        None => format!("{scheme}://{address}"),
    };
    state.set_base_url(&url);

    let ready = {
        let tenant = state.tenant();
        let app = tenant.auth.primary_application();
        json!({
            "ready": true,
            "url": url,
            "listen": address.to_string(),
            "tenant_id": tenant.tenant_id,
            "client_id": app.map(|a| a.principal.app_id.clone()),
            "client_secret": app.and_then(|a| a.client_secrets.first().cloned()),
        })
    };
    // The listener is bound, so connections are accepted (queued) from here on.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the ready line: {e}"))?;
    drop(stdout);

    fake_tenant::tls::serve(
        listener,
        tls,
        fake_tenant::app(state.clone()),
        shutdown_signal(),
    )
    .await
    .map_err(|e| format!("server failed: {e}"))?;

    if let Some(path) = &options.state_file {
        let dump = fake_tenant::admin::dump(&state.tenant());
        let text =
            serde_json::to_string_pretty(&dump).map_err(|e| format!("cannot encode state: {e}"))?;
        std::fs::write(path, text)
            .map_err(|e| format!("cannot write state file {}: {e}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("breakglass-fake-tenant: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("breakglass-fake-tenant: {message}");
            ExitCode::FAILURE
        }
    }
}
