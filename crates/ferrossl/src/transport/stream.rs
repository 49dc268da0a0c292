//! Byte-stream transports (TCP, Unix sockets, or anything `Read + Write`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

/// A reliable, ordered byte stream a TLS connection can run over.
pub trait Stream: Read + Write + Send {
    /// Shuts down the read, write or both halves (`shutdown(2)`), where the stream has halves.
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let _ = how;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this stream cannot be shut down in halves",
        ))
    }

    /// The TCP socket underneath, if there is one.
    fn as_tcp(&self) -> Option<&TcpStream> {
        None
    }

    /// Reads and drops what the peer has already sent, without waiting (a connection that
    /// failed calls it after its alert). A socket closed with unread bytes sends a reset,
    /// and the peer may then lose the alert that explains the failure.
    fn discard_received(&mut self) {}
}

/// [`Stream::discard_received`] for a socket: a bounded non-blocking drain, after which the
/// socket's blocking mode is what it was.
#[cfg(unix)]
fn discard_received<S: Read + std::os::fd::AsFd>(stream: &mut S) {
    let sock = socket2::SockRef::from(&*stream);
    let Ok(was_nonblocking) = sock.nonblocking() else {
        return;
    };
    if sock.set_nonblocking(true).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    // What one flight can hold; a peer that keeps sending is not waited for.
    let mut budget: usize = 64 * 1024;
    while budget > 0 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => budget = budget.saturating_sub(n),
            _ => break,
        }
    }
    let _ = socket2::SockRef::from(&*stream).set_nonblocking(was_nonblocking);
}

impl Stream for TcpStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }

    fn as_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }

    #[cfg(unix)]
    fn discard_received(&mut self) {
        discard_received(self);
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }

    fn discard_received(&mut self) {
        discard_received(self);
    }
}
