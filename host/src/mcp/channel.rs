//! An rmcp transport made of two channels: what a peer sends arrives on one, what magg sends
//! leaves on the other. The legacy SSE transport is built on it, on both sides: as a server
//! (messages POSTed by the client in, events on its stream out) and as a client of a backend
//! (events from the backend's stream in, POSTs out).

use std::borrow::Cow;

use rmcp::{
    service::{RxJsonRpcMessage, ServiceRole, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

/// How many messages wait in either direction before the sender waits.
pub const CAPACITY: usize = 64;

/// The other end has gone away: nothing more can be sent.
#[derive(Debug, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

/// One MCP connection over two channels, for the role `R` magg plays on it.
pub struct Channels<R: ServiceRole> {
    incoming: mpsc::Receiver<RxJsonRpcMessage<R>>,
    outgoing: mpsc::Sender<TxJsonRpcMessage<R>>,
    /// Stops the tasks that feed the channels when the transport is dropped.
    _tasks: Option<DropGuard>,
}

/// The ends of a [`Channels`] transport that stay with whoever moves the messages.
pub struct Ends<R: ServiceRole> {
    /// Sends what the peer said into the transport.
    pub incoming: mpsc::Sender<RxJsonRpcMessage<R>>,
    /// Receives what magg says to the peer.
    pub outgoing: mpsc::Receiver<TxJsonRpcMessage<R>>,
}

impl<R: ServiceRole> Channels<R> {
    /// A transport and its far ends. The connection ends when `incoming` of the ends is
    /// dropped (after the messages already sent are read); `tasks`, if given, is stopped when
    /// the transport is dropped.
    pub fn new(tasks: Option<DropGuard>) -> (Channels<R>, Ends<R>) {
        let (incoming_tx, incoming) = mpsc::channel(CAPACITY);
        let (outgoing, outgoing_rx) = mpsc::channel(CAPACITY);
        (
            Channels {
                incoming,
                outgoing,
                _tasks: tasks,
            },
            Ends {
                incoming: incoming_tx,
                outgoing: outgoing_rx,
            },
        )
    }
}

impl<R: ServiceRole> Transport<R> for Channels<R> {
    type Error = Closed;

    fn name() -> Cow<'static, str> {
        "channels".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<R>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outgoing = self.outgoing.clone();
        async move { outgoing.send(item).await.map_err(|_| Closed) }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<R>>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        Ok(())
    }
}
