//! The `SSL` object of the BIO API family: a connection that runs over a socket given with
//! `set_fd`, or over the rest of a BIO chain when it sits in an SSL filter.

use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Bio, ChainStream};
use crate::connection::Connection;
use crate::context::Context;
use crate::error::{Error, Result};

/// One TLS connection (OpenSSL's `SSL`). Cloning gives another handle to the same object.
#[derive(Clone)]
pub struct Ssl {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    conn: Option<Connection>,
    fd: i32,
    last_error: i32,
}

impl Ssl {
    /// An SSL object for `context`.
    pub fn new(context: &Context) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                conn: Some(Connection::new(context)?),
                fd: -1,
                last_error: 0,
            })),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::WrongState("SSL lock poisoned"))
    }

    /// Runs `f` on the connection and records the `SSL_ERROR_*` outcome for [`Ssl::error`].
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut inner = self.lock()?;
        let conn = inner
            .conn
            .as_mut()
            .ok_or(Error::WrongState("SSL object was freed"))?;
        let result = f(conn);
        inner.last_error = match &result {
            Ok(_) => 0,
            Err(e) => e.ssl_error_code(),
        };
        result
    }

    pub(crate) fn context(&self) -> Result<Context> {
        self.with(|c| Ok(c.context().clone()))
    }

    /// Makes this the client end.
    pub fn set_connect_state(&self) -> Result<()> {
        self.with(Connection::set_connect_state)
    }

    /// Makes this the server end.
    pub fn set_accept_state(&self) -> Result<()> {
        self.with(Connection::set_accept_state)
    }

    /// Runs over a connected socket. The SSL owns the descriptor from now on.
    pub fn set_fd(&self, fd: OwnedFd) -> Result<()> {
        let stream = TcpStream::from(fd);
        let raw = stream.as_raw_fd();
        self.with(|c| c.set_stream(Box::new(stream)))?;
        self.lock()?.fd = raw;
        Ok(())
    }

    /// Runs over any byte stream (a binding's socket object, say); `fd` is what
    /// [`Ssl::get_fd`] reports for it.
    pub fn set_stream(&self, stream: Box<dyn crate::transport::Stream>, fd: i32) -> Result<()> {
        self.with(|c| c.set_stream(stream))?;
        self.lock()?.fd = fd;
        Ok(())
    }

    /// The socket's descriptor, or -1 when there is none.
    pub fn get_fd(&self) -> i32 {
        self.lock().map_or(-1, |i| i.fd)
    }

    /// Makes a filter's SSL run over the rest of its chain, on first use.
    pub(crate) fn attach(&self, next: Option<Bio>) -> Result<()> {
        self.with(|c| match (c.has_stream(), next) {
            (true, _) => Ok(()),
            (false, Some(next)) => c.set_stream(Box::new(ChainStream(next))),
            (false, None) => Err(Error::WrongState(
                "the SSL filter has nothing after it in its chain",
            )),
        })
    }

    /// Runs the handshake as a client.
    pub fn connect(&self) -> Result<()> {
        self.with(|c| {
            if !c.is_handshake_done() && c.role().is_none() {
                c.set_connect_state()?;
            }
            c.do_handshake()
        })
    }

    /// Runs the handshake as a server.
    pub fn accept(&self) -> Result<()> {
        self.with(|c| {
            if !c.is_handshake_done() && c.role().is_none() {
                c.set_accept_state()?;
            }
            c.do_handshake()
        })
    }

    /// Sends `data`; returns the byte count.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        self.with(|c| c.sendall(data).map(|()| data.len()))
    }

    /// Reads up to `length` bytes; `-1` reads everything available (waiting for the first
    /// bytes on a blocking transport). An empty result means the peer closed the session.
    pub fn read(&self, length: isize) -> Result<Vec<u8>> {
        self.with(|c| c.read_up_to(length))
    }

    /// Sends close_notify; true once the peer's close_notify has arrived too.
    pub fn shutdown(&self) -> Result<bool> {
        self.with(Connection::shutdown)
    }

    /// The `SSL_ERROR_*` number of the last operation (0 after a success).
    pub fn error(&self) -> i32 {
        self.lock().map_or(0, |i| i.last_error)
    }

    /// Frees the connection; later calls fail with a clear error.
    pub fn free(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.conn = None;
            inner.fd = -1;
        }
    }

    /// Runs `f` with the connection, for what this type does not wrap.
    pub fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.with(f)
    }
}

impl std::fmt::Debug for Ssl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ssl(fd {})", self.get_fd())
    }
}
