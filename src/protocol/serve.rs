//! Running the provider as a go-plugin server: listen, announce, serve, stop.
//!
//! Lifetime rules Terraform relies on:
//! * the handshake line is printed once the port is bound, and nothing else goes to stdout;
//! * Ctrl-C (SIGINT, which the terminal sends to the whole process group) is ignored: Terraform
//!   handles it by calling StopProvider and then Shutdown, and must not lose us mid-apply;
//! * GRPCController.Shutdown or SIGTERM stop the server gracefully and the process exits 0.
//! * if Terraform itself dies (SIGKILL, an OOM kill, a cancelled CI job) the process exits at
//!   once: nobody would record what an in-flight call still changes in the tenant, so it must
//!   not go on changing it (`watch_parent`).
//!
//! `--debug` instead serves plaintext without the cookie check, prints a
//! `TF_REATTACH_PROVIDERS` value for a person to export, survives individual Terraform commands
//! (Shutdown is ignored) and stops on Ctrl-C.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::framework::Provider;
use crate::protocol::go_plugin::{Broker, Controller, ShutdownSignal, Stdio};
use crate::protocol::handshake::{self, Launch, PortRange};
use crate::protocol::mtls::{AutoMtls, MtlsError};
use crate::protocol::proto::go_plugin::grpc_broker_server::GrpcBrokerServer;
use crate::protocol::proto::go_plugin::grpc_controller_server::GrpcControllerServer;
use crate::protocol::proto::go_plugin::grpc_stdio_server::GrpcStdioServer;
use crate::protocol::proto::tfplugin6::provider_server::ProviderServer as ProviderGrpcServer;
use crate::protocol::wire::ProviderService;

/// The name go-plugin health-checks.
const HEALTH_SERVICE_NAME: &str = "plugin";

/// Schemas and states of a large configuration can exceed gRPC's 4 MiB default; Terraform's
/// client allows up to 2 GiB, the Go plugin SDKs 256 MiB.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// After shutdown starts, how long in-flight calls may take before the process exits anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

pub enum ServeMode {
    /// Launched by Terraform, with what the environment said.
    Managed(Launch),
    /// Started by a person with `--debug`.
    Debug,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not listen for Terraform: {0}")]
    Listen(io::Error),
    #[error(transparent)]
    Mtls(#[from] MtlsError),
    #[error("could not write the handshake line to stdout: {0}")]
    Announce(io::Error),
    #[error("could not install signal handlers: {0}")]
    Signals(io::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `provider` until Terraform (or a signal) stops it.
pub async fn serve<D: Send + Sync + 'static>(
    provider: Arc<dyn Provider<Data = D>>,
    mode: ServeMode,
) -> Result<(), ServeError> {
    let debug = matches!(mode, ServeMode::Debug);
    let (ports, client_cert_pem) = match mode {
        ServeMode::Managed(launch) => (launch.ports, launch.client_cert_pem),
        ServeMode::Debug => (None, None),
    };
    let mtls = client_cert_pem.as_deref().map(AutoMtls::new).transpose()?;

    let listener = bind(ports).await.map_err(ServeError::Listen)?;
    let address = listener.local_addr().map_err(ServeError::Listen)?;
    let shutdown = ShutdownSignal::new();
    watch_signals(shutdown.clone(), debug).map_err(ServeError::Signals)?;
    if !debug {
        watch_parent();
    }

    if debug {
        announce(&debug_instructions(address)).map_err(ServeError::Announce)?;
    } else {
        let cert = mtls.as_ref().map(AutoMtls::server_cert_der);
        announce(&handshake::handshake_line(address, cert)).map_err(ServeError::Announce)?;
    }
    tracing::debug!(%address, tls = mtls.is_some(), "plugin server listening");

    let services = Services {
        provider,
        shutdown: shutdown.clone(),
        honour_shutdown_rpc: !debug,
    };
    match mtls {
        Some(mtls) => services.run(mtls.incoming(listener)).await,
        None => services.run(plain_incoming(listener)).await,
    }
}

/// Serves `provider` in plaintext on `listener` until `shutdown` is triggered, the way
/// `--debug` does but without printing or signal handling: Terraform attaches through
/// [`handshake::reattach_config`] and its Shutdown calls are ignored. This is how a provider
/// embedded in another process (the protocol tests) is driven by a real Terraform.
pub async fn serve_reattachable<D: Send + Sync + 'static>(
    provider: Arc<dyn Provider<Data = D>>,
    listener: TcpListener,
    shutdown: ShutdownSignal,
) -> Result<(), ServeError> {
    Services {
        provider,
        shutdown,
        honour_shutdown_rpc: false,
    }
    .run(plain_incoming(listener))
    .await
}

/// Plaintext connections (`--debug`, reattach) with TCP_NODELAY, as in `AutoMtls::incoming`.
fn plain_incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        let tcp = accepted?;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set");
        }
        Ok(tcp)
    })
}

/// Everything served on the plugin port.
struct Services<D> {
    provider: Arc<dyn Provider<Data = D>>,
    shutdown: ShutdownSignal,
    honour_shutdown_rpc: bool,
}

impl<D: Send + Sync + 'static> Services<D> {
    async fn run<I, IO>(self, incoming: I) -> Result<(), ServeError>
    where
        I: tokio_stream::Stream<Item = Result<IO, io::Error>>,
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
    {
        let shutdown = self.shutdown;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status(HEALTH_SERVICE_NAME, ServingStatus::Serving)
            .await;
        let provider_service = ProviderGrpcServer::new(ProviderService::new(self.provider))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let router = Server::builder()
            .add_service(health_service)
            .add_service(GrpcControllerServer::new(Controller::new(
                shutdown.clone(),
                self.honour_shutdown_rpc,
            )))
            .add_service(GrpcStdioServer::new(Stdio::new(shutdown.clone())))
            .add_service(GrpcBrokerServer::new(Broker::new(shutdown.clone())))
            .add_service(provider_service);

        let serving = router.serve_with_incoming_shutdown(incoming, shutdown.triggered());
        let drain_deadline = {
            let stopped = shutdown.triggered();
            async move {
                stopped.await;
                tokio::time::sleep(DRAIN_LIMIT).await;
            }
        };
        tokio::select! {
            result = serving => result?,
            () = drain_deadline => {
                tracing::warn!("calls still running {DRAIN_LIMIT:?} after shutdown; exiting anyway");
            }
        }
        tracing::debug!("plugin server stopped");
        Ok(())
    }
}

/// Binds 127.0.0.1 on a free port inside `ports` (any port when `None`). The scan starts at a
/// random offset because Terraform starts several providers at once within the same range.
async fn bind(ports: Option<PortRange>) -> io::Result<TcpListener> {
    let Some(range) = ports else {
        return TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await;
    };
    let span = u32::from(range.max - range.min) + 1;
    let start = rand::random::<u32>() % span;
    for offset in 0..span {
        let port = range.min + ((start + offset) % span) as u16;
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            return Ok(listener);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "no free port on 127.0.0.1 between PLUGIN_MIN_PORT {} and PLUGIN_MAX_PORT {}",
            range.min, range.max
        ),
    ))
}

fn announce(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

fn debug_instructions(address: SocketAddr) -> String {
    let reattach = handshake::reattach_config(address, std::process::id());
    format!(
        "terraform-provider-breakglass is running in debug mode.\n\
         To make Terraform use this process, run this in the shell where you run terraform:\n\
         \n\
         \texport TF_REATTACH_PROVIDERS='{reattach}'\n\
         \n\
         Press Ctrl-C to stop the provider."
    )
}

/// How often the provider looks whether Terraform is still its parent.
const PARENT_POLL: Duration = Duration::from_millis(200);

/// Exits the process as soon as Terraform, which started it, is gone. A dead parent cannot
/// call Shutdown, and an orphaned provider would otherwise finish its in-flight calls —
/// creating users, assigning roles — with no Terraform left to record them in state (and then
/// live on, holding its port, until someone kills it). The parent is gone when the process
/// has been re-parented (to init or a subreaper), i.e. its parent id changed.
#[cfg(unix)]
fn watch_parent() {
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PARENT_POLL).await;
            let now = std::os::unix::process::parent_id();
            if parent_is_gone(parent, now) {
                tracing::warn!(
                    terraform_pid = parent,
                    "Terraform is gone; exiting without finishing in-flight calls"
                );
                std::process::exit(1);
            }
        }
    });
}

#[cfg(not(unix))]
fn watch_parent() {}

/// Whether the parent that started us (`started_by`) has died, given our parent id `now`.
fn parent_is_gone(started_by: u32, now: u32) -> bool {
    started_by != now
}

#[cfg(unix)]
fn watch_signals(shutdown: ShutdownSignal, debug: bool) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = interrupt.recv() => {
                    if debug {
                        break;
                    }
                    tracing::trace!("ignoring SIGINT; Terraform stops the provider itself");
                }
                Some(()) = terminate.recv() => break,
                else => return,
            }
        }
        tracing::debug!("stopping on signal");
        shutdown.trigger();
    });
    Ok(())
}

#[cfg(not(unix))]
fn watch_signals(shutdown: ShutdownSignal, debug: bool) -> io::Result<()> {
    if debug {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shutdown.trigger();
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_parent_id_means_terraform_is_gone() {
        assert!(!parent_is_gone(4242, 4242));
        // Re-parented to init, or to a subreaper such as a container's init.
        assert!(parent_is_gone(4242, 1));
        assert!(parent_is_gone(4242, 77));
    }

    #[tokio::test]
    async fn binds_inside_the_requested_range_on_loopback() {
        // Find a free port, then ask for a range that holds only it.
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let listener = bind(Some(PortRange {
            min: port,
            max: port,
        }))
        .await
        .unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(address.port(), port);
        assert!(address.ip().is_loopback());

        // The only port is now taken: binding again must fail, not wander outside the range.
        let error = bind(Some(PortRange {
            min: port,
            max: port,
        }))
        .await
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
    }
}
