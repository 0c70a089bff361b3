//! terraform-provider-breakglass: started by Terraform as a go-plugin process (see
//! `protocol::handshake`), or by a person with `--debug` to attach a debugger.

use std::process::ExitCode;
use std::sync::Arc;

use breakglass::protocol::handshake::Launch;
use breakglass::protocol::{serve, ServeMode};
use breakglass::provider::BreakglassProvider;

const USAGE: &str = "usage: terraform-provider-breakglass [--debug]\n\
    \n\
    Terraform starts this program by itself. Run it by hand only with --debug, which prints a\n\
    TF_REATTACH_PROVIDERS value that makes Terraform use this process instead.";

fn main() -> ExitCode {
    breakglass::logging::init();

    let mut debug = false;
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            // Go providers take flags with one or two dashes; accept both for familiarity.
            "--debug" | "-debug" => debug = true,
            "--help" | "-help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let mode = if debug {
        ServeMode::Debug
    } else {
        match Launch::from_process_env() {
            Ok(launch) => ServeMode::Managed(launch),
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
    };

    // One thread: every RPC waits on the network, never on the CPU for long, so a second
    // scheduler thread (and its stack, its malloc arena, the work-stealing code) would only add
    // memory to each of the several provider processes a command starts (BENCHMARKS.md, P2).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("terraform-provider-breakglass: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let provider = Arc::new(BreakglassProvider::new());
    let result = runtime.block_on(serve(provider, mode));
    // Background tasks (accept loops, idle HTTP pools) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "provider server failed");
            eprintln!("terraform-provider-breakglass: {error}");
            ExitCode::FAILURE
        }
    }
}
