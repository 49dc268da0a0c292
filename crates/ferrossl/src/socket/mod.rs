//! [`TlsSocket`]: a TLS socket with the life cycle of a plain one — bind, listen, accept,
//! connect with a timeout, send and receive with `SO_SNDTIMEO`/`SO_RCVTIMEO` semantics — and
//! every state visible as a property.
//!
//! ```no_run
//! use ferrossl::socket::TlsSocket;
//! # fn main() -> ferrossl::Result<()> {
//! let mut client = TlsSocket::new(None, None)?;
//! client.connect("example.com", 443, 300_000)?;
//! client.send(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")?;
//! let page = client.receive(-1)?;
//! # Ok(()) }
//! ```

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::bio::{AF_INET, AF_INET6};
use crate::connection::Connection;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::Method;

/// `SO_*` option numbers (Linux values) accepted by [`TlsSocket::set_option`].
pub mod options {
    #![allow(missing_docs)]
    pub const SO_DEBUG: i32 = 1;
    pub const SO_REUSEADDR: i32 = 2;
    pub const SO_TYPE: i32 = 3;
    pub const SO_ERROR: i32 = 4;
    pub const SO_DONTROUTE: i32 = 5;
    pub const SO_BROADCAST: i32 = 6;
    pub const SO_SNDBUF: i32 = 7;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_KEEPALIVE: i32 = 9;
    pub const SO_OOBINLINE: i32 = 10;
    pub const SO_LINGER: i32 = 13;
    pub const SO_REUSEPORT: i32 = 15;
    pub const SO_RCVTIMEO: i32 = 20;
    pub const SO_SNDTIMEO: i32 = 21;
}
use options::*;

/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: i32 = 6;
/// Linux's `SOMAXCONN` since 5.4: the backlog `listen(-1)` asks for.
pub const SOMAXCONN: i32 = 4096;
/// `SHUT_RDWR`: the reason [`TlsSocket::shutdown`] records.
pub const SHUT_RDWR: i32 = 2;

/// Where a socket is: what [`TlsSocket::info`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    /// The IP address.
    pub address: String,
    /// The port.
    pub port: u16,
    /// `AF_INET` or `AF_INET6`.
    pub family: i32,
}

/// A TLS socket (the `TLSSocket` of OpenSSL bindings).
pub struct TlsSocket {
    socket: Option<Socket>,
    context: Context,
    conn: Option<Connection>,
    host: String,
    port: u16,
    family: i32,
    is_client: bool,
    is_bound: bool,
    is_listening: bool,
    is_connected: bool,
    is_closed: bool,
    is_shutdown: bool,
    is_blocking: bool,
    shutdown_reason: i32,
    send_timeout: u64,
    receive_timeout: u64,
}

impl TlsSocket {
    /// A socket over `socket` (a new IPv4 TCP socket when None) with `context` (a TLS
    /// context for either role when None).
    pub fn new(socket: Option<Socket>, context: Option<Context>) -> Result<Self> {
        let family = match socket.as_ref().and_then(|s| s.domain().ok()) {
            Some(d) if d == Domain::IPV6 => AF_INET6,
            _ => AF_INET,
        };
        Ok(Self {
            socket,
            context: context.unwrap_or_else(|| Context::new(Method::Tls)),
            conn: None,
            host: "localhost".into(),
            port: 0,
            family,
            is_client: false,
            is_bound: false,
            is_listening: false,
            is_connected: false,
            is_closed: false,
            is_shutdown: false,
            is_blocking: true,
            shutdown_reason: -1,
            send_timeout: 0,
            receive_timeout: 0,
        })
    }

    /// Uses `family` (`AF_INET` or `AF_INET6`) for the socket this object will create.
    pub fn set_family(&mut self, family: i32) -> Result<()> {
        if family != AF_INET && family != AF_INET6 {
            return Err(Error::InvalidArgument(format!(
                "unsupported family {family}"
            )));
        }
        if self.socket.is_some() {
            return Err(Error::WrongState("the socket exists already"));
        }
        self.family = family;
        Ok(())
    }

    fn open(&mut self) -> Result<&Socket> {
        self.check_open()?;
        if self.socket.is_none() {
            let domain = if self.family == AF_INET6 {
                Domain::IPV6
            } else {
                Domain::IPV4
            };
            self.socket = Some(Socket::new(domain, Type::STREAM, None).map_err(os_error)?);
        }
        Ok(self.socket.as_ref().expect("created above"))
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed {
            return Err(Error::WrongState("the socket is closed"));
        }
        Ok(())
    }

    fn resolve(&self, host: &str, port: u16) -> Result<SockAddr> {
        (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::InvalidArgument(format!("cannot resolve {host}: {e}")))?
            .find(|a| a.is_ipv6() == (self.family == AF_INET6))
            .map(SockAddr::from)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{host} has no address of the socket's family"))
            })
    }

    /// Connects to `host:port` within `timeout_ms` and completes the TLS handshake as a client
    /// (sending `host` as SNI when it is a name).
    pub fn connect(&mut self, host: &str, port: u16, timeout_ms: u64) -> Result<()> {
        if self.is_listening || self.is_connected {
            return Err(Error::WrongState(
                "connect on a listening or connected socket",
            ));
        }
        let addr = self.resolve(host, port)?;
        let socket = self.open()?;
        socket
            .connect_timeout(&addr, Duration::from_millis(timeout_ms.max(1)))
            .map_err(|e| timeout_or(e, format!("connect to {host}:{port}")))?;
        let stream: TcpStream = socket.try_clone().map_err(os_error)?.into();
        let mut conn = Connection::with_stream(&self.context, stream)?;
        conn.set_connect_state()?;
        if host.parse::<std::net::IpAddr>().is_err() && host != "localhost" {
            conn.set_tlsext_host_name(host)?;
        }
        (self.host, self.port, self.is_client) = (host.to_string(), port, true);
        self.conn = Some(conn);
        self.is_connected = true;
        let result = self.conn.as_mut().expect("set above").do_handshake();
        self.blocking_outcome(result, "handshake")
    }

    /// Binds to `host:port`.
    pub fn bind(&mut self, port: u16, host: &str) -> Result<()> {
        if self.is_bound {
            return Err(Error::WrongState("the socket is already bound"));
        }
        let addr = self.resolve(host, port)?;
        let socket = self.open()?;
        socket.set_reuse_address(true).map_err(os_error)?;
        socket.bind(&addr).map_err(os_error)?;
        let bound = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(port, |a| a.port());
        (self.host, self.port, self.is_bound) = (host.to_string(), bound, true);
        Ok(())
    }

    /// Listens for clients; `backlog < 0` means `SOMAXCONN`.
    pub fn listen(&mut self, backlog: i32) -> Result<()> {
        if !self.is_bound || self.is_connected {
            return Err(Error::WrongState(
                "listen needs a bound, unconnected socket",
            ));
        }
        let backlog = if backlog < 0 { SOMAXCONN } else { backlog };
        self.open()?.listen(backlog).map_err(os_error)?;
        self.is_listening = true;
        Ok(())
    }

    /// Accepts a client and completes the TLS handshake as the server. A non-blocking socket
    /// with no client waiting fails with [`Error::WantRead`] ("would block").
    pub fn accept(&mut self) -> Result<TlsSocket> {
        if !self.is_listening {
            return Err(Error::WrongState("accept needs a listening socket"));
        }
        let (socket, addr) = self
            .open()?
            .accept()
            .map_err(|e| Error::from_transport(e, Error::WantRead))?;
        let peer = addr.as_socket();
        let mut client = TlsSocket::new(Some(socket), Some(self.context.clone()))?;
        client.apply_timeouts(self.send_timeout, self.receive_timeout)?;
        let stream: TcpStream = client.open()?.try_clone().map_err(os_error)?.into();
        let mut conn = Connection::with_stream(&self.context, stream)?;
        conn.set_accept_state()?;
        client.conn = Some(conn);
        client.is_connected = true;
        if let Some(peer) = peer {
            (client.host, client.port) = (peer.ip().to_string(), peer.port());
        }
        let result = client.conn.as_mut().expect("set above").do_handshake();
        client.blocking_outcome(result, "handshake")?;
        Ok(client)
    }

    fn connection(&mut self) -> Result<&mut Connection> {
        self.check_open()?;
        if self.is_shutdown {
            return Err(Error::WrongState("the socket is shut down"));
        }
        self.conn
            .as_mut()
            .ok_or(Error::WrongState("the socket is not connected"))
    }

    /// On a blocking socket a "would block" can only come from the timeout: say so.
    fn blocking_outcome<T>(&self, result: Result<T>, what: &str) -> Result<T> {
        match result {
            Err(e) if e.is_want() && self.is_blocking => Err(Error::TimedOut(format!(
                "{what} gave up after the socket timeout (send {} ms, receive {} ms)",
                self.send_timeout, self.receive_timeout
            ))),
            other => other,
        }
    }

    /// Sends `data`; returns the byte count.
    pub fn send(&mut self, data: &[u8]) -> Result<usize> {
        let result = self.connection()?.sendall(data).map(|()| data.len());
        self.blocking_outcome(result, "send")
    }

    /// Streams everything `reader` yields (a file, say); returns the byte count.
    pub fn send_from(&mut self, reader: &mut dyn Read) -> Result<usize> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::from_transport(e, Error::WantRead)),
            };
            total += self.send(&buf[..n])?;
        }
    }

    /// Receives up to `length` bytes (any amount with `length < 0`), as a socket's `recv`:
    /// waits (up to the receive timeout) for the first bytes, then returns what has come
    /// without waiting for more. An empty result means the peer closed the session.
    pub fn receive(&mut self, length: isize) -> Result<Vec<u8>> {
        let result = self.connection()?.read_up_to(length);
        self.blocking_outcome(result, "receive")
    }

    /// Reads up to `length` bytes of what is available (default 1024 in the seed API).
    pub fn read(&mut self, length: usize) -> Result<Vec<u8>> {
        // One read returns what is available: a huge `length` must not allocate (or abort on)
        // that much up front.
        let mut buf = vec![0u8; length.min(1 << 20)];
        let result = match self.connection()?.recv(&mut buf) {
            Ok(n) => Ok(n),
            Err(Error::ZeroReturn) => Ok(0),
            Err(e) => Err(e),
        };
        let n = self.blocking_outcome(result, "read")?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Sends close_notify (best effort) and shuts the socket down both ways.
    pub fn shutdown(&mut self) -> Result<()> {
        self.check_open()?;
        if let Some(conn) = self.conn.as_mut() {
            if conn.is_handshake_done()
                && conn.get_shutdown() & crate::constants::SSL_SENT_SHUTDOWN == 0
            {
                let _ = conn.shutdown();
            }
        }
        if let Some(s) = &self.socket {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.is_shutdown = true;
        self.shutdown_reason = SHUT_RDWR;
        Ok(())
    }

    /// Closes the socket (after a best-effort close_notify). Closing twice is not an error.
    pub fn close(&mut self) -> Result<()> {
        if self.is_closed {
            return Ok(());
        }
        if !self.is_shutdown && self.is_connected {
            let _ = self.shutdown();
        }
        self.conn = None;
        self.socket = None;
        (
            self.is_closed,
            self.is_connected,
            self.is_listening,
            self.is_bound,
        ) = (true, false, false, false);
        Ok(())
    }

    /// Sets an `SO_*` option; time options take milliseconds, flags take 0 or 1.
    pub fn set_option(&mut self, option: i32, value: i64) -> Result<()> {
        let socket = self.open()?;
        let flag = value != 0;
        let r = match option {
            SO_REUSEADDR => socket.set_reuse_address(flag),
            SO_REUSEPORT => socket.set_reuse_port(flag),
            SO_KEEPALIVE => socket.set_keepalive(flag),
            SO_BROADCAST => socket.set_broadcast(flag),
            SO_OOBINLINE => socket.set_out_of_band_inline(flag),
            SO_SNDBUF => socket.set_send_buffer_size(value.max(0) as usize),
            SO_RCVBUF => socket.set_recv_buffer_size(value.max(0) as usize),
            SO_LINGER => socket.set_linger((value >= 0).then(|| Duration::from_secs(value as u64))),
            SO_RCVTIMEO => return self.apply_timeouts(self.send_timeout, value.max(0) as u64),
            SO_SNDTIMEO => return self.apply_timeouts(value.max(0) as u64, self.receive_timeout),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unsupported socket option {other}"
                )))
            }
        };
        r.map_err(os_error)
    }

    /// Reads an `SO_*` option (times in milliseconds, flags as 0 or 1).
    pub fn get_option(&mut self, option: i32) -> Result<i64> {
        let socket = self.open()?;
        let r = match option {
            SO_REUSEADDR => socket.reuse_address().map(i64::from),
            SO_REUSEPORT => socket.reuse_port().map(i64::from),
            SO_KEEPALIVE => socket.keepalive().map(i64::from),
            SO_BROADCAST => socket.broadcast().map(i64::from),
            SO_OOBINLINE => socket.out_of_band_inline().map(i64::from),
            SO_SNDBUF => socket.send_buffer_size().map(|n| n as i64),
            SO_RCVBUF => socket.recv_buffer_size().map(|n| n as i64),
            SO_LINGER => socket
                .linger()
                .map(|l| l.map_or(-1, |d| d.as_secs() as i64)),
            SO_TYPE => socket.r#type().map(|t| {
                if t == Type::STREAM {
                    SOCK_STREAM as i64
                } else {
                    -1
                }
            }),
            SO_ERROR => socket
                .take_error()
                .map(|e| e.and_then(|e| e.raw_os_error()).unwrap_or(0) as i64),
            SO_RCVTIMEO => Ok(self.receive_timeout as i64),
            SO_SNDTIMEO => Ok(self.send_timeout as i64),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unsupported socket option {other}"
                )))
            }
        };
        r.map_err(os_error)
    }

    fn apply_timeouts(&mut self, send_ms: u64, receive_ms: u64) -> Result<()> {
        let socket = self.open()?;
        let d = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        socket.set_write_timeout(d(send_ms)).map_err(os_error)?;
        socket.set_read_timeout(d(receive_ms)).map_err(os_error)?;
        (self.send_timeout, self.receive_timeout) = (send_ms, receive_ms);
        Ok(())
    }

    /// Sets the send timeout in milliseconds (0: none).
    pub fn set_send_timeout(&mut self, ms: u64) -> Result<()> {
        self.apply_timeouts(ms, self.receive_timeout)
    }

    /// Sets the receive timeout in milliseconds (0: none).
    pub fn set_receive_timeout(&mut self, ms: u64) -> Result<()> {
        self.apply_timeouts(self.send_timeout, ms)
    }

    /// Blocking (true, the default) or non-blocking mode.
    pub fn set_blocking(&mut self, blocking: bool) -> Result<()> {
        self.open()?.set_nonblocking(!blocking).map_err(os_error)?;
        self.is_blocking = blocking;
        Ok(())
    }

    /// The local address, port and family, if the socket has an address.
    pub fn info(&self) -> Option<SocketInfo> {
        let addr: SocketAddr = self.socket.as_ref()?.local_addr().ok()?.as_socket()?;
        Some(SocketInfo {
            address: addr.ip().to_string(),
            port: addr.port(),
            family: if addr.is_ipv6() { AF_INET6 } else { AF_INET },
        })
    }

    /// The underlying socket.
    pub fn get_socket(&self) -> Option<&Socket> {
        self.socket.as_ref()
    }

    /// The TLS context.
    pub fn get_context(&self) -> &Context {
        &self.context
    }

    /// The TLS connection, once connected.
    pub fn connection_mut(&mut self) -> Option<&mut Connection> {
        self.conn.as_mut()
    }

    /// The host bound, connected or to connect to (default "localhost").
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port bound or connected to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `AF_INET` (default) or `AF_INET6`.
    pub fn family(&self) -> i32 {
        self.family
    }

    /// `SOCK_STREAM`.
    pub fn socket_type(&self) -> i32 {
        SOCK_STREAM
    }

    /// `IPPROTO_TCP`.
    pub fn protocol(&self) -> i32 {
        IPPROTO_TCP
    }

    /// The socket's file descriptor, or -1.
    pub fn id(&self) -> i32 {
        self.socket.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    /// Whether this socket connected to a server.
    pub fn is_client(&self) -> bool {
        self.is_client
    }

    /// Whether the socket is bound.
    pub fn is_bound(&self) -> bool {
        self.is_bound
    }

    /// Whether the socket is connected.
    pub fn is_connected(&self) -> bool {
        self.is_connected
    }

    /// Whether the socket listens.
    pub fn is_listening(&self) -> bool {
        self.is_listening
    }

    /// Whether the socket is closed.
    pub fn is_closed(&self) -> bool {
        self.is_closed
    }

    /// Whether the socket is shut down.
    pub fn is_shutdown(&self) -> bool {
        self.is_shutdown
    }

    /// Whether the socket blocks.
    pub fn is_blocking(&self) -> bool {
        self.is_blocking
    }

    /// The reason of the last shutdown (`SHUT_RDWR`), or -1 if never shut down.
    pub fn shutdown_reason(&self) -> i32 {
        self.shutdown_reason
    }

    /// The send timeout in milliseconds (0: none).
    pub fn send_timeout(&self) -> u64 {
        self.send_timeout
    }

    /// The receive timeout in milliseconds (0: none).
    pub fn receive_timeout(&self) -> u64 {
        self.receive_timeout
    }
}

impl std::fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<TLSSocket {}:{} family {} id {}>",
            self.host,
            self.port,
            self.family,
            self.id()
        )
    }
}

fn os_error(e: io::Error) -> Error {
    Error::SysCall {
        errno: e.raw_os_error().unwrap_or(-1),
        message: e.to_string(),
    }
}

fn timeout_or(e: io::Error, what: String) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::TimedOut(what),
        _ => os_error(e),
    }
}
