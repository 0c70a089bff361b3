//! Generates the gRPC server and client code for Terraform's plugin protocol and go-plugin's side
//! services. protox parses the .proto files in pure Rust, so no `protoc` has to be installed.

const PROTOS: &[&str] = &["proto/tfplugin6.proto", "proto/go_plugin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The integration tests drive the binary through the generated clients.
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
