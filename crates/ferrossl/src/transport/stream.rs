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
}

impl Stream for TcpStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }

    fn as_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
}
