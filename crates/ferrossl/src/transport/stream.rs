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

/// [`Stream::discard_received`] for a socket: reads that never wait (`MSG_DONTWAIT`, which
/// leaves the socket's blocking mode, shared with its clones, as it is), bounded by what one
/// flight can hold; a peer that keeps sending is not waited for.
#[cfg(unix)]
fn discard_received(socket: socket2::SockRef<'_>) {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut budget: usize = 64 * 1024;
    while budget > 0 {
        match socket.recv_with_flags(&mut buf, libc::MSG_DONTWAIT) {
            Ok(n) if n > 0 => budget = budget.saturating_sub(n),
            _ => break,
        }
    }
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
        discard_received(socket2::SockRef::from(&*self));
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }

    fn discard_received(&mut self) {
        discard_received(socket2::SockRef::from(&*self));
    }
}
