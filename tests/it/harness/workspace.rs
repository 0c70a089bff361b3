//! One private Terraform working directory and the commands run in it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::terraform::Terraform;
use super::PROVIDER_SOURCE;

/// A command that has not finished after this long is killed and the step fails. Not a
/// performance assertion: a guard so a hung provider cannot hang the whole suite.
const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

/// Variables that would let the developer's own Azure or Terraform setup leak into a test.
const INHERITED_PREFIXES: [&str; 4] = ["ARM_", "TF_", "BREAKGLASS_", "ACTIONS_ID_TOKEN_"];

pub struct Workspace {
    dir: tempfile::TempDir,
    terraform: &'static Terraform,
    env: Vec<(String, String)>,
}

/// What one terraform command did.
#[derive(Debug)]
pub struct Output {
    pub command: String,
    pub exit_code: Option<i32>,
    /// stdout followed by stderr.
    pub text: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The output with every run of whitespace collapsed to one space: Terraform wraps
    /// diagnostic details at its terminal width, so a phrase may span lines.
    pub fn flattened(&self) -> String {
        self.text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Whether `pattern` matches the output as printed or with line wrapping undone.
    pub fn matches(&self, pattern: &regex::Regex) -> bool {
        pattern.is_match(&self.text) || pattern.is_match(&self.flattened())
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "$ {} (exit code {:?})", self.command, self.exit_code)?;
        writeln!(f, "----- terraform output -----")?;
        writeln!(f, "{}", self.text.trim_end())?;
        write!(f, "----------------------------")
    }
}

impl Workspace {
    /// A fresh directory; `env` is what the provider will see (e.g. `FakeTenant::provider_env`).
    pub fn new(terraform: &'static Terraform, env: Vec<(String, String)>) -> Workspace {
        Workspace::with_cli_config(terraform, env, &cli_config(provider_dir()))
    }

    /// Like `new`, with this CLI configuration instead of the `dev_overrides` one: for tests of
    /// how Terraform installs the provider (filesystem mirrors).
    pub fn with_cli_config(
        terraform: &'static Terraform,
        env: Vec<(String, String)>,
        cli_config: &str,
    ) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("breakglass-e2e-")
            .tempdir()
            .expect("temp dir");
        let ws = Workspace {
            dir,
            terraform,
            env,
        };
        std::fs::write(ws.cli_config_path(), cli_config).expect("write CLI config");
        ws
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Another empty working directory with the same Terraform and provider environment (a
    /// second checkout of the same stack, e.g. for an import).
    pub fn fresh(&self) -> Workspace {
        Workspace::new(self.terraform, self.env.clone())
    }

    fn cli_config_path(&self) -> PathBuf {
        self.dir.path().join("terraform.rc")
    }

    /// Replaces the configuration (`main.tf`).
    /// Writes `main.tf`; a configuration that calls modules gets them installed (`terraform
    /// get`, which only copies local modules: providers stay on the dev override).
    pub fn write_config(&self, hcl: &str) {
        std::fs::write(self.dir.path().join("main.tf"), hcl).expect("write main.tf");
        if hcl.contains("module \"") {
            let out = self.run(&["get", "-no-color"]);
            assert!(out.success(), "`{}` failed\n{out}", out.command);
        }
    }

    /// Runs `terraform <args>`; never panics on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Like `run`, with extra environment variables for this command only.
    pub fn run_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let cmd = self.command(args, extra_env);
        let command = format!("terraform {}", args.join(" "));
        let (exit_code, text) = run_to_completion(cmd, &command);
        Output {
            command,
            exit_code,
            text,
        }
    }

    /// The `terraform <args>` command `run_with` would run, not yet started — for tests that
    /// drive the process themselves (kill it mid-apply).
    pub fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(&self.terraform.path);
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if INHERITED_PREFIXES.iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(&key);
            }
        }
        cmd.env("TF_CLI_CONFIG_FILE", self.cli_config_path())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a command that must succeed; panics with the full output otherwise.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.success(), "terraform command failed\n{out}");
        out
    }

    /// `terraform show -json` of the current state.
    pub fn state(&self) -> State {
        let out = self.ok(&["show", "-json", "-no-color"]);
        let start = out.text.find('{').unwrap_or(0);
        let json: Json = serde_json::Deserializer::from_str(&out.text[start..])
            .into_iter()
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("`terraform show -json` printed no JSON\n{out}"));
        State(json)
    }
}

/// Spawns, collects stdout and stderr on their own threads (so neither pipe can fill up and
/// block Terraform), and kills the process if it outlives `COMMAND_DEADLINE`.
fn run_to_completion(mut cmd: Command, command: &str) -> (Option<i32>, String) {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for terraform") {
            break Some(status);
        }
        if started.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !err.is_empty() {
        text.push_str(&err);
    }
    match status {
        Some(s) => (s.code(), text),
        None => {
            text.push_str(&format!(
                "\n[harness] killed after {}s without finishing",
                COMMAND_DEADLINE.as_secs()
            ));
            (None, text)
        }
    }
}

/// The CLI configuration every workspace uses: our provider comes from the directory holding
/// the binary this build produced; everything else as usual.
fn cli_config(provider_dir: &Path) -> String {
    format!(
        "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
        provider_dir.display()
    )
}

/// A directory holding a hard link (or copy) of the provider binary this build produced, one per
/// build, shared by every test process. Terraform picks the first file named
/// `terraform-provider-breakglass*` in an override directory, and `target/debug` also holds
/// `terraform-provider-breakglass.d`; a link of our own also keeps a concurrent `cargo build`,
/// which replaces the binary, from changing it under a running test.
fn provider_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let built = Path::new(env!("CARGO_BIN_EXE_terraform-provider-breakglass"));
        let meta = std::fs::metadata(built)
            .unwrap_or_else(|e| panic!("provider binary {}: {e}", built.display()));
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let root = built.with_file_name("e2e-provider");
        let dir = root.join(format!("{}-{modified}", meta.len()));
        let binary = dir.join("terraform-provider-breakglass");
        if !binary.exists() {
            std::fs::create_dir_all(&dir).expect("create e2e provider dir");
            // Link (or copy) under a private name, then rename: another test process may be
            // doing the same, and Terraform must never see a half-written binary.
            let partial = dir.join(format!(".partial-{}", std::process::id()));
            let _ = std::fs::remove_file(&partial);
            if std::fs::hard_link(built, &partial).is_err() {
                std::fs::copy(built, &partial)
                    .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
            }
            std::fs::rename(&partial, &binary).expect("publish e2e provider binary");
        }
        dir
    })
}

/// `terraform show -json` output.
#[derive(Debug, Clone)]
pub struct State(pub Json);

impl State {
    /// Every resource instance in the state (root and child modules), as `(address, values)`.
    pub fn resources(&self) -> Vec<(String, Json)> {
        fn walk(module: &Json, out: &mut Vec<(String, Json)>) {
            for r in module["resources"].as_array().into_iter().flatten() {
                let address = r["address"].as_str().unwrap_or_default().to_owned();
                out.push((address, r["values"].clone()));
            }
            for child in module["child_modules"].as_array().into_iter().flatten() {
                walk(child, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.0["values"]["root_module"], &mut out);
        out
    }

    /// The attribute values of one resource instance (`breakglass_account.primary`).
    pub fn resource(&self, address: &str) -> Option<Json> {
        self.resources()
            .into_iter()
            .find(|(a, _)| a == address)
            .map(|(_, v)| v)
    }

    /// One attribute of one resource, or a message saying which part was missing.
    pub fn attribute(&self, address: &str, attribute: &str) -> Result<Json, String> {
        let values = self
            .resource(address)
            .ok_or_else(|| format!("{address} is not in state"))?;
        values
            .get(attribute)
            .cloned()
            .ok_or_else(|| format!("{address} has no attribute {attribute}"))
    }

    pub fn is_empty(&self) -> bool {
        self.resources().is_empty()
    }
}
