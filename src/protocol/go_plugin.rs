//! The services go-plugin's client expects next to the provider: the controller Terraform uses
//! to stop us, the stdio stream it subscribes to, and the broker stream it opens on connect.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::protocol::proto::go_plugin::{
    grpc_broker_server::GrpcBroker, grpc_controller_server::GrpcController,
    grpc_stdio_server::GrpcStdio, ConnInfo, Empty, StdioData,
};

/// A one-way latch shared by everything that must end when the server stops.
#[derive(Clone)]
pub struct ShutdownSignal(watch::Sender<bool>);

impl ShutdownSignal {
    pub fn new() -> Self {
        ShutdownSignal(watch::Sender::new(false))
    }

    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Completes once `trigger` has been called (immediately if it already was).
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.subscribe();
        async move {
            // An error means the sender is gone, which only happens as the process ends.
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// `plugin.GRPCController`: Terraform calls Shutdown when it no longer needs this process.
pub struct Controller {
    shutdown: ShutdownSignal,
    /// In `--debug` mode the process outlives each Terraform command, so Shutdown is ignored.
    honour_shutdown: bool,
}

impl Controller {
    pub fn new(shutdown: ShutdownSignal, honour_shutdown: bool) -> Self {
        Controller {
            shutdown,
            honour_shutdown,
        }
    }
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        if self.honour_shutdown {
            tracing::debug!("Terraform asked the provider to shut down");
            self.shutdown.trigger();
        } else {
            tracing::debug!("ignoring Shutdown in debug mode; stop the provider with Ctrl-C");
        }
        Ok(Response::new(Empty {}))
    }
}

/// `plugin.GRPCStdio`: we write logs to stderr directly, so the stream carries nothing; it is
/// answered (instead of UNIMPLEMENTED) so go-plugin does not warn about it, and it ends at
/// shutdown so graceful shutdown is not held up by it.
pub struct Stdio {
    shutdown: ShutdownSignal,
}

impl Stdio {
    pub fn new(shutdown: ShutdownSignal) -> Self {
        Stdio { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = SilentUntil<StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(SilentUntil::new(self.shutdown.triggered())))
    }
}

/// `plugin.GRPCBroker`: go-plugin opens it on every connection; a provider never brokers
/// further connections, so incoming messages are ignored and nothing is sent.
pub struct Broker {
    shutdown: ShutdownSignal,
}

impl Broker {
    pub fn new(shutdown: ShutdownSignal) -> Self {
        Broker { shutdown }
    }
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = SilentUntil<ConnInfo>;

    async fn start_stream(
        &self,
        _request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        Ok(Response::new(SilentUntil::new(self.shutdown.triggered())))
    }
}

/// A response stream that yields nothing and ends when `until` completes.
pub struct SilentUntil<T> {
    until: Pin<Box<dyn Future<Output = ()> + Send>>,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T> SilentUntil<T> {
    fn new(until: impl Future<Output = ()> + Send + 'static) -> Self {
        SilentUntil {
            until: Box::pin(until),
            _item: std::marker::PhantomData,
        }
    }
}

impl<T> Stream for SilentUntil<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.until.as_mut().poll(cx).map(|()| None)
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn silent_stream_ends_exactly_when_shutdown_is_triggered() {
        let shutdown = ShutdownSignal::new();
        let mut stream = SilentUntil::<StdioData>::new(shutdown.triggered());
        // Still open: polling once yields nothing.
        assert!(futures_poll_once(&mut stream).is_none());
        shutdown.trigger();
        assert!(stream.next().await.is_none());
        // A stream opened after the trigger ends at once.
        let mut late = SilentUntil::<StdioData>::new(shutdown.triggered());
        assert!(late.next().await.is_none());
    }

    #[tokio::test]
    async fn debug_mode_controller_ignores_shutdown() {
        let shutdown = ShutdownSignal::new();
        Controller::new(shutdown.clone(), false)
            .shutdown(Request::new(Empty {}))
            .await
            .unwrap();
        assert!(!*shutdown.0.borrow());
        Controller::new(shutdown.clone(), true)
            .shutdown(Request::new(Empty {}))
            .await
            .unwrap();
        assert!(*shutdown.0.borrow());
    }

    fn futures_poll_once<S: Stream + Unpin>(stream: &mut S) -> Option<Poll<Option<S::Item>>> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match Pin::new(stream).poll_next(&mut cx) {
            Poll::Pending => None,
            ready => Some(ready),
        }
    }
}
