//! Async forms of the DtlsConnection calls for tokio programs (GIO's `*_async` calls).
//!
//! Each call runs the blocking one on tokio's blocking pool with a [`Cancellable`] that is
//! triggered when the future is dropped, so abandoning a call (a `select!`, a timeout)
//! stops it within one polling slice and frees the connection. Datagrams that a receive
//! took just as it was abandoned are not lost: the next receive returns them first. Calls on
//! one connection run one at a time, in the order they were made.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::transport::{Cancellable, DatagramBased, Timeout};

use super::{DtlsConnection, GioError, GioResult};

/// A [`DtlsConnection`] driven from async code.
pub struct AsyncDtlsConnection<B: DatagramBased + 'static> {
    inner: Arc<Mutex<DtlsConnection<B>>>,
    /// Datagrams received for a receive that was abandoned meanwhile.
    unclaimed: Arc<Mutex<VecDeque<Vec<u8>>>>,
}

/// Cancels the blocking call when the future that waits for it goes away.
struct CancelOnDrop(Cancellable);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl<B: DatagramBased + 'static> AsyncDtlsConnection<B> {
    /// Wraps a connection (configure it first, or later through [`Self::with`]).
    pub fn new(connection: DtlsConnection<B>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(connection)),
            unclaimed: Arc::default(),
        }
    }

    /// Runs `f` on the connection now (for the quick, non-blocking calls: properties,
    /// settings). Waits while an async call holds the connection.
    pub fn with<R>(&self, f: impl FnOnce(&mut DtlsConnection<B>) -> R) -> R {
        f(&mut lock(&self.inner))
    }

    async fn run<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut DtlsConnection<B>, &Cancellable) -> GioResult<R> + Send + 'static,
    ) -> GioResult<R> {
        self.run_keeping(op, |_| {}).await
    }

    /// Runs `op` on the blocking pool; a result nobody waits for any more goes to `abandoned`.
    async fn run_keeping<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut DtlsConnection<B>, &Cancellable) -> GioResult<R> + Send + 'static,
        abandoned: impl FnOnce(R) + Send + 'static,
    ) -> GioResult<R> {
        let guard = CancelOnDrop(Cancellable::new());
        let cancellable = guard.0.clone();
        let inner = self.inner.clone();
        let (tx, rx) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut connection = lock(&inner);
            let result = op(&mut connection, &cancellable);
            // The send fails only when the future was dropped: keep what it would have got,
            // before the next call can take the connection.
            if let Err(Ok(value)) = tx.send(result) {
                abandoned(value);
            }
            drop(connection);
        });
        let result = rx.await.map_err(|_| {
            GioError::Io(std::io::Error::other(
                "the DTLS task ended without a result",
            ))
        })?;
        drop(guard);
        result
    }

    /// Receives with `op`, unless datagrams an abandoned receive took are waiting.
    async fn receive_with(
        &self,
        count: usize,
        op: impl FnOnce(&mut DtlsConnection<B>, &Cancellable) -> GioResult<Vec<Vec<u8>>>
            + Send
            + 'static,
    ) -> GioResult<Vec<Vec<u8>>> {
        let unclaimed = self.unclaimed.clone();
        let keep = unclaimed.clone();
        // Looked at with the connection held: an abandoned receive stashes before it lets go.
        let take_waiting_or_receive = move |c: &mut DtlsConnection<B>, cancel: &Cancellable| {
            let waiting: Vec<Vec<u8>> = {
                let mut unclaimed = lock(&unclaimed);
                let n = count.min(unclaimed.len());
                unclaimed.drain(..n).collect()
            };
            if waiting.is_empty() {
                op(c, cancel)
            } else {
                Ok(waiting)
            }
        };
        self.run_keeping(take_waiting_or_receive, move |datagrams| {
            lock(&keep).extend(datagrams)
        })
        .await
    }

    /// `handshake_async`.
    pub async fn handshake(&self) -> GioResult<()> {
        self.run(|c, cancel| c.handshake(Some(cancel))).await
    }

    /// `send_messages_async`: sends each datagram; returns how many were sent.
    pub async fn send_messages(
        &self,
        messages: Vec<Vec<u8>>,
        timeout: Timeout,
    ) -> GioResult<usize> {
        self.run(move |c, cancel| {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            c.send_messages(&refs, timeout, Some(cancel))
        })
        .await
    }

    /// Sends one datagram.
    pub async fn send(&self, message: Vec<u8>) -> GioResult<()> {
        self.run(move |c, cancel| c.send(&message, Some(cancel)))
            .await
    }

    /// `receive_messages_async`: up to `count` datagrams (see
    /// [`DtlsConnection::receive_messages`]); an empty result is the end.
    pub async fn receive_messages(
        &self,
        count: usize,
        timeout: Timeout,
    ) -> GioResult<Vec<Vec<u8>>> {
        self.receive_with(count, move |c, cancel| {
            let mut buffers = vec![Vec::new(); count];
            let n = c.receive_messages(&mut buffers, timeout, Some(cancel))?;
            buffers.truncate(n);
            Ok(buffers)
        })
        .await
    }

    /// Receives one datagram; empty at the end of the association.
    pub async fn receive(&self, timeout: Timeout) -> GioResult<Vec<u8>> {
        let mut one = self
            .receive_with(1, move |c, cancel| {
                let d = c.receive(timeout, Some(cancel))?;
                Ok(if d.is_empty() { Vec::new() } else { vec![d] })
            })
            .await?;
        Ok(one.pop().unwrap_or_default())
    }

    /// `shutdown_async`.
    pub async fn shutdown(&self, read: bool, write: bool) -> GioResult<()> {
        self.run(move |c, cancel| c.shutdown(read, write, Some(cancel)))
            .await
    }

    /// `close_async`.
    pub async fn close(&self) -> GioResult<()> {
        self.run(|c, cancel| c.close(Some(cancel))).await
    }
}

fn lock<T>(inner: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a call leaves the value as it was at the panic; keep serving.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
