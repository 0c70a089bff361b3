//! `make docs`: writes the registry-layout documentation under `docs/` from the provider's
//! schemas, `examples/` and `docs-src/` (see `breakglass::docs`).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match breakglass::docs::write(root) {
        Ok(files) => {
            eprintln!("docs: wrote {} files under docs/", files.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("docs: {e}");
            ExitCode::FAILURE
        }
    }
}
