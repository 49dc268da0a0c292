//! OpenSSL's BIO model: source/sink BIOs (memory, connect, accept, socket) and the SSL filter,
//! chained with `push`/`pop`, plus the `SSL` object they carry. A chain `ssl -> connect` is a
//! TLS client in a few lines; `ssl -> accept` a TLS server.
//!
//! ```no_run
//! use ferrossl::bio::{Bio, BioMethod, Ssl, BIO_CLOSE};
//! use ferrossl::{Context, Method};
//! # fn main() -> ferrossl::Result<()> {
//! let ctx = Context::new(Method::TlsClient);
//! let ssl = Ssl::new(&ctx)?;
//! ssl.set_connect_state()?;
//! let filter = Bio::new(BioMethod::Ssl);
//! filter.set_ssl(&ssl, BIO_CLOSE)?;
//! let connect = Bio::new(BioMethod::Connect);
//! connect.set_conn_hostname("example.com:443")?;
//! let chain = filter.push(&connect)?;
//! chain.write(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")?;
//! let page = chain.read(-1)?;
//! # Ok(()) }
//! ```

mod ssl;

pub use ssl::Ssl;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::transport::Stream;

/// `set_ssl`/`set_fd` flag: freeing the BIO frees what it holds.
pub const BIO_CLOSE: i32 = 1;
/// `set_ssl`/`set_fd` flag: freeing the BIO leaves what it holds alone.
pub const BIO_NOCLOSE: i32 = 0;
/// Address families, with Linux's values.
pub const AF_UNSPEC: i32 = 0;
/// IPv4.
pub const AF_INET: i32 = 2;
/// IPv6.
pub const AF_INET6: i32 = 10;

/// The BIO types (`BIO_s_mem`, `BIO_s_connect`, `BIO_s_accept`, `BIO_s_socket`, `BIO_f_ssl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BioMethod {
    /// A memory buffer.
    Mem,
    /// A TCP client socket made from a host name and port.
    Connect,
    /// A listening TCP socket.
    Accept,
    /// A connected socket (from `set_fd`, or one `do_accept` yielded).
    Socket,
    /// The SSL filter: TLS over the next BIO of the chain.
    Ssl,
}

/// One BIO, a node of a chain. Cloning gives another handle to the same BIO.
#[derive(Clone)]
pub struct Bio {
    node: Arc<Mutex<Node>>,
}

struct Node {
    kind: Kind,
    next: Option<Bio>,
    retry: bool,
    error: i32,
    error_text: String,
    nonblocking: bool,
    freed: bool,
}

enum Kind {
    Mem(std::collections::VecDeque<u8>),
    Connect(Endpoint, Option<TcpStream>),
    Accept(Endpoint, Option<TcpListener>),
    Socket(Option<TcpStream>),
    Ssl(Option<(Ssl, i32)>),
}

/// Where a connect or accept BIO goes: host (name or address), port (number or service
/// name) and family.
#[derive(Clone, Debug, Default)]
struct Endpoint {
    host: String,
    address: String,
    port: String,
    family: i32,
}

impl Endpoint {
    fn socket_addrs(&self) -> Result<Vec<SocketAddr>> {
        let host = if self.address.is_empty() {
            &self.host
        } else {
            &self.address
        };
        let (host, port) = match (host.rsplit_once(':'), self.port.is_empty()) {
            // "host:port" in the host name, as OpenSSL accepts it; "[v6]" brackets stripped.
            (Some((h, p)), true) if !h.is_empty() && !p.contains(']') => {
                (h.trim_matches(['[', ']']), p)
            }
            _ => (host.trim_matches(['[', ']']), self.port.as_str()),
        };
        let port = service_port(port)?;
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::InvalidArgument(format!("cannot resolve {host}:{port}: {e}")))?
            .filter(|a| match self.family {
                AF_INET => a.is_ipv4(),
                AF_INET6 => a.is_ipv6(),
                _ => true,
            })
            .collect::<Vec<_>>();
        if addrs.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "no address of the wanted family for {host}"
            )));
        }
        Ok(addrs)
    }
}

/// A port number or a service name ("https"), looked up in /etc/services when there is one.
fn service_port(port: &str) -> Result<u16> {
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    let known = [
        ("http", 80),
        ("https", 443),
        ("ftp", 21),
        ("ssh", 22),
        ("smtp", 25),
        ("imaps", 993),
        ("pop3s", 995),
        ("ldaps", 636),
    ];
    if let Some((_, n)) = known.iter().find(|(name, _)| *name == port) {
        return Ok(*n);
    }
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    services
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let (num, proto) = f.next()?.split_once('/')?;
            (name == port && proto == "tcp").then(|| num.parse().ok())?
        })
        .next()
        .ok_or_else(|| Error::InvalidArgument(format!("unknown port or service {port:?}")))
}

impl Bio {
    /// A new BIO of the given type.
    pub fn new(method: BioMethod) -> Self {
        let kind = match method {
            BioMethod::Mem => Kind::Mem(Default::default()),
            BioMethod::Connect => Kind::Connect(Endpoint::default(), None),
            BioMethod::Accept => Kind::Accept(Endpoint::default(), None),
            BioMethod::Socket => Kind::Socket(None),
            BioMethod::Ssl => Kind::Ssl(None),
        };
        Self {
            node: Arc::new(Mutex::new(Node {
                kind,
                next: None,
                retry: false,
                error: 0,
                error_text: String::new(),
                nonblocking: false,
                freed: false,
            })),
        }
    }

    /// A memory BIO holding `data`.
    pub fn mem_with(data: &[u8]) -> Self {
        let bio = Self::new(BioMethod::Mem);
        bio.lock().expect("new BIO").kind = Kind::Mem(data.iter().copied().collect());
        bio
    }

    fn lock(&self) -> Result<MutexGuard<'_, Node>> {
        let node = self
            .node
            .lock()
            .map_err(|_| Error::WrongState("BIO lock poisoned"))?;
        if node.freed {
            return Err(Error::WrongState("BIO was freed"));
        }
        Ok(node)
    }

    fn same(&self, other: &Bio) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }

    /// The BIO's type.
    pub fn method(&self) -> Result<BioMethod> {
        Ok(match self.lock()?.kind {
            Kind::Mem(_) => BioMethod::Mem,
            Kind::Connect(..) => BioMethod::Connect,
            Kind::Accept(..) => BioMethod::Accept,
            Kind::Socket(_) => BioMethod::Socket,
            Kind::Ssl(_) => BioMethod::Ssl,
        })
    }

    /// The next BIO of the chain.
    pub fn next(&self) -> Result<Option<Bio>> {
        Ok(self.lock()?.next.clone())
    }

    /// Appends `other` (a BIO or a chain) to the end of this chain and returns this chain's
    /// head. A chain cannot contain the same BIO twice.
    pub fn push(&self, other: &Bio) -> Result<Bio> {
        let mut seen = vec![self.clone()];
        let mut cur = other.clone();
        loop {
            if seen.iter().any(|b| b.same(&cur)) {
                return Err(Error::InvalidArgument(
                    "a BIO cannot be pushed into its own chain".into(),
                ));
            }
            seen.push(cur.clone());
            let Some(next) = cur.next()? else { break };
            cur = next;
        }
        let mut tail = self.clone();
        while let Some(next) = tail.next()? {
            if seen[1..].iter().any(|b| b.same(&next)) {
                return Err(Error::InvalidArgument(
                    "a BIO cannot be pushed into its own chain".into(),
                ));
            }
            tail = next;
        }
        tail.lock()?.next = Some(other.clone());
        Ok(self.clone())
    }

    /// Takes this BIO out of its chain: returns the rest of the chain after it.
    pub fn pop(&self) -> Result<Option<Bio>> {
        Ok(self.lock()?.next.take())
    }

    /// Whether the last operation should be retried (it would have blocked).
    pub fn should_retry(&self) -> bool {
        self.node.lock().map(|n| n.retry).unwrap_or(false)
    }

    /// The last `SSL_ERROR_*`-style error number of this BIO (0 when none).
    pub fn error(&self) -> i32 {
        self.node.lock().map(|n| n.error).unwrap_or(0)
    }

    /// The last error as text.
    pub fn error_string(&self) -> String {
        self.node
            .lock()
            .map(|n| n.error_text.clone())
            .unwrap_or_default()
    }

    /// Frees the BIO: later calls fail. An SSL filter set with `BIO_CLOSE` frees its SSL.
    pub fn free(&self) {
        if let Ok(mut node) = self.node.lock() {
            if let Kind::Ssl(Some((ssl, BIO_CLOSE))) = &node.kind {
                ssl.free();
            }
            node.kind = Kind::Socket(None);
            node.next = None;
            node.freed = true;
        }
    }

    /// Records the outcome of an operation for `should_retry`/`error`.
    fn settle<T>(&self, result: Result<T>) -> Result<T> {
        if let Ok(mut node) = self.node.lock() {
            node.retry = matches!(&result, Err(e) if e.is_want());
            (node.error, node.error_text) = match &result {
                Ok(_) => (0, String::new()),
                Err(e) => (e.ssl_error_code(), e.to_string()),
            };
        }
        result
    }

    // --- connect and accept settings ---

    fn endpoint(&self, f: impl FnOnce(&mut Endpoint)) -> Result<()> {
        let mut node = self.lock()?;
        match &mut node.kind {
            Kind::Connect(ep, None) | Kind::Accept(ep, None) => {
                f(ep);
                Ok(())
            }
            Kind::Connect(..) | Kind::Accept(..) => {
                Err(Error::WrongState("the socket is already open"))
            }
            _ => Err(Error::WrongState("not a connect or accept BIO")),
        }
    }

    fn endpoint_value(&self, f: impl FnOnce(&Endpoint) -> String) -> Result<String> {
        match &self.lock()?.kind {
            Kind::Connect(ep, _) | Kind::Accept(ep, _) => Ok(f(ep)),
            _ => Err(Error::WrongState("not a connect or accept BIO")),
        }
    }

    /// Sets the host to connect to ("host" or "host:port").
    pub fn set_conn_hostname(&self, name: &str) -> Result<()> {
        self.endpoint(|e| e.host = name.to_string())
    }

    /// Sets the address to connect to (an IP address; takes precedence over the host name).
    pub fn set_conn_address(&self, address: &str) -> Result<()> {
        self.endpoint(|e| e.address = address.to_string())
    }

    /// Sets the port: a number or a service name ("https").
    pub fn set_conn_port(&self, port: &str) -> Result<()> {
        service_port(port)?;
        self.endpoint(|e| e.port = port.to_string())
    }

    /// Sets the address family (`AF_INET`, `AF_INET6`, `AF_UNSPEC`).
    pub fn set_conn_family(&self, family: i32) -> Result<()> {
        check_family(family)?;
        self.endpoint(|e| e.family = family)
    }

    /// The host to connect to.
    pub fn get_conn_hostname(&self) -> Result<String> {
        self.endpoint_value(|e| e.host.clone())
    }

    /// The address to connect to.
    pub fn get_conn_address(&self) -> Result<String> {
        self.endpoint_value(|e| e.address.clone())
    }

    /// The port, as given.
    pub fn get_conn_port(&self) -> Result<String> {
        self.endpoint_value(|e| e.port.clone())
    }

    /// The address family.
    pub fn get_conn_family(&self) -> Result<i32> {
        self.endpoint_value(|e| e.family.to_string())
            .map(|f| f.parse().unwrap_or(0))
    }

    /// Sets the host name an accept BIO binds to (empty: every address of the family).
    pub fn set_accept_name(&self, name: &str) -> Result<()> {
        self.endpoint(|e| e.host = name.to_string())
    }

    /// Sets the port an accept BIO listens on.
    pub fn set_accept_port(&self, port: &str) -> Result<()> {
        service_port(port)?;
        self.endpoint(|e| e.port = port.to_string())
    }

    /// Sets the family an accept BIO listens with.
    pub fn set_accept_family(&self, family: i32) -> Result<()> {
        check_family(family)?;
        self.endpoint(|e| e.family = family)
    }

    /// The name an accept BIO binds to.
    pub fn get_accept_name(&self) -> Result<String> {
        self.endpoint_value(|e| e.host.clone())
    }

    /// The port an accept BIO listens on; after listening on port 0, the port chosen.
    pub fn get_accept_port(&self) -> Result<String> {
        let node = self.lock()?;
        match &node.kind {
            Kind::Accept(_, Some(l)) => Ok(l
                .local_addr()
                .map(|a| a.port().to_string())
                .unwrap_or_default()),
            Kind::Accept(ep, None) => Ok(ep.port.clone()),
            _ => Err(Error::WrongState("not an accept BIO")),
        }
    }

    /// The family an accept BIO listens with.
    pub fn get_accept_family(&self) -> Result<i32> {
        self.get_conn_family()
    }

    /// Makes the BIO's socket (or the chain's) blocking or not.
    pub fn set_non_blocking(&self, nonblocking: bool) -> Result<()> {
        let next = {
            let mut node = self.lock()?;
            node.nonblocking = nonblocking;
            match &node.kind {
                Kind::Connect(_, Some(s)) | Kind::Socket(Some(s)) => {
                    set_stream_nonblocking(s, nonblocking)?
                }
                Kind::Accept(_, Some(l)) => l.set_nonblocking(nonblocking).map_err(io_error)?,
                _ => {}
            }
            node.next.clone()
        };
        match next {
            Some(n) => n.set_non_blocking(nonblocking),
            None => Ok(()),
        }
    }

    /// The socket's file descriptor, or -1 when there is none.
    pub fn get_fd(&self) -> i32 {
        let Ok(node) = self.lock() else { return -1 };
        match &node.kind {
            Kind::Connect(_, Some(s)) | Kind::Socket(Some(s)) => s.as_raw_fd(),
            Kind::Accept(_, Some(l)) => l.as_raw_fd(),
            Kind::Ssl(_) => node.next.as_ref().map_or(-1, Bio::get_fd),
            _ => -1,
        }
    }

    /// Makes this a socket BIO over a connected socket. With `BIO_NOCLOSE` the descriptor is
    /// duplicated, so freeing the BIO leaves the caller's socket open.
    pub fn set_fd(&self, fd: OwnedFd, flag: i32) -> Result<()> {
        let stream = TcpStream::from(fd);
        let stream = if flag == BIO_NOCLOSE {
            // Keep the caller's descriptor open whatever happens to this BIO: work on a
            // duplicate and let the original go without closing it.
            let dup = stream.try_clone().map_err(io_error)?;
            std::mem::forget(stream);
            dup
        } else {
            stream
        };
        self.lock()?.kind = Kind::Socket(Some(stream));
        Ok(())
    }

    /// Connects a connect BIO (or the connect BIO of this chain). A non-blocking BIO whose
    /// connection is under way fails with a retry (`should_retry`), as in OpenSSL.
    pub fn do_connect(&self) -> Result<()> {
        let result = self.connect_chain();
        self.settle(result)
    }

    fn connect_chain(&self) -> Result<()> {
        let next = {
            let mut node = self.lock()?;
            let nonblocking = node.nonblocking;
            if let Kind::Connect(ep, stream) = &mut node.kind {
                if stream.is_none() {
                    *stream = Some(open_connection(ep, nonblocking)?);
                }
                let s = stream.as_ref().expect("set above");
                // A non-blocking connect is done once the peer's address is known.
                return match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(_) => match s.take_error() {
                        Ok(Some(e)) | Err(e) => {
                            *stream = None;
                            Err(Error::from_transport(e, Error::WantWrite))
                        }
                        Ok(None) => Err(Error::WantWrite),
                    },
                };
            }
            node.next.clone()
        };
        match next {
            Some(n) => n.connect_chain(),
            None => Err(Error::WrongState("no connect BIO in this chain")),
        }
    }

    /// On an accept BIO (or a chain ending in one): the first call binds and listens and
    /// returns `None`; later calls wait for a client and return a new chain for it — a socket
    /// BIO, behind a fresh server-side SSL filter when the chain has an SSL filter in front.
    pub fn do_accept(&self) -> Result<Option<Bio>> {
        let result = self.accept_chain(None);
        self.settle(result)
    }

    fn accept_chain(&self, template: Option<Ssl>) -> Result<Option<Bio>> {
        let next = {
            let mut node = self.lock()?;
            let nonblocking = node.nonblocking;
            match &mut node.kind {
                Kind::Accept(ep, listener) => {
                    let Some(l) = listener else {
                        let l = open_listener(ep)?;
                        l.set_nonblocking(nonblocking).map_err(io_error)?;
                        *listener = Some(l);
                        return Ok(None);
                    };
                    let (stream, _) = l
                        .accept()
                        .map_err(|e| Error::from_transport(e, Error::WantRead))?;
                    set_stream_nonblocking(&stream, nonblocking)?;
                    let socket = Bio::new(BioMethod::Socket);
                    socket.lock()?.kind = Kind::Socket(Some(stream));
                    let Some(template) = template else {
                        return Ok(Some(socket));
                    };
                    let ssl = Ssl::new(&template.context()?)?;
                    ssl.set_accept_state()?;
                    let filter = Bio::new(BioMethod::Ssl);
                    filter.set_ssl(&ssl, BIO_CLOSE)?;
                    return filter.push(&socket).map(Some);
                }
                Kind::Ssl(Some((ssl, _))) => {
                    let ssl = ssl.clone();
                    let next = node.next.clone();
                    drop(node);
                    return match next {
                        Some(n) => n.accept_chain(Some(ssl)),
                        None => Err(Error::WrongState("no accept BIO in this chain")),
                    };
                }
                _ => node.next.clone(),
            }
        };
        match next {
            Some(n) => n.accept_chain(template),
            None => Err(Error::WrongState("no accept BIO in this chain")),
        }
    }

    /// Puts `ssl` in this SSL filter; `BIO_CLOSE` frees the SSL with the BIO.
    pub fn set_ssl(&self, ssl: &Ssl, flag: i32) -> Result<()> {
        let mut node = self.lock()?;
        match &mut node.kind {
            Kind::Ssl(slot) => {
                *slot = Some((ssl.clone(), flag));
                Ok(())
            }
            _ => Err(Error::WrongState(
                "set_ssl needs an SSL filter BIO (BIO_f_ssl)",
            )),
        }
    }

    /// The SSL of this filter.
    pub fn get_ssl(&self) -> Result<Option<Ssl>> {
        match &self.lock()?.kind {
            Kind::Ssl(slot) => Ok(slot.as_ref().map(|(s, _)| s.clone())),
            _ => Err(Error::WrongState("not an SSL filter BIO")),
        }
    }

    // --- data ---

    /// Writes `data` through the chain; returns the byte count.
    pub fn write(&self, data: &[u8]) -> Result<usize> {
        let result = self.write_node(data);
        self.settle(result)
    }

    /// Reads up to `length` bytes (`-1`: whatever is available, waiting for at least some on a
    /// blocking BIO). An empty result means the end of the data.
    pub fn read(&self, length: isize) -> Result<Vec<u8>> {
        let result = self.read_node(length);
        self.settle(result)
    }

    /// Runs `op` on the socket of a connect BIO (connecting first) or a socket BIO.
    fn with_socket<T>(
        &self,
        op: impl FnOnce(&mut TcpStream) -> io::Result<T>,
        want: Error,
    ) -> Result<T> {
        if matches!(self.lock()?.kind, Kind::Connect(..)) {
            self.connect_chain()?;
        }
        match &mut self.lock()?.kind {
            Kind::Connect(_, Some(s)) | Kind::Socket(Some(s)) => {
                op(s).map_err(|e| Error::from_transport(e, want))
            }
            _ => Err(Error::WrongState("this BIO has no socket")),
        }
    }

    /// The SSL of a filter, attached to the rest of the chain.
    fn attached_ssl(&self) -> Result<Option<Ssl>> {
        let node = self.lock()?;
        let Kind::Ssl(Some((ssl, _))) = &node.kind else {
            return Ok(None);
        };
        let (ssl, next) = (ssl.clone(), node.next.clone());
        drop(node);
        ssl.attach(next)?;
        Ok(Some(ssl))
    }

    fn write_node(&self, data: &[u8]) -> Result<usize> {
        if let Some(ssl) = self.attached_ssl()? {
            return ssl.write(data);
        }
        let mut node = self.lock()?;
        match &mut node.kind {
            Kind::Mem(buf) => {
                buf.extend(data);
                Ok(data.len())
            }
            Kind::Connect(..) | Kind::Socket(Some(_)) => {
                drop(node);
                self.with_socket(|s| s.write(data), Error::WantWrite)
            }
            _ => Err(Error::WrongState("this BIO cannot be written to")),
        }
    }

    fn read_node(&self, length: isize) -> Result<Vec<u8>> {
        if let Some(ssl) = self.attached_ssl()? {
            return ssl.read(length);
        }
        let want = usize::try_from(length).unwrap_or(16 * 1024);
        let mut node = self.lock()?;
        match &mut node.kind {
            Kind::Mem(q) if q.is_empty() => Err(Error::WantRead),
            Kind::Mem(q) => {
                let n = if length < 0 {
                    q.len()
                } else {
                    want.min(q.len())
                };
                Ok(q.drain(..n).collect())
            }
            Kind::Connect(..) | Kind::Socket(Some(_)) => {
                drop(node);
                // One socket read returns what has arrived: a huge `length` must not
                // allocate (or abort on) that much up front.
                let mut buf = vec![0u8; want.min(1 << 20)];
                let n = self.with_socket(|s| s.read(&mut buf), Error::WantRead)?;
                buf.truncate(n);
                Ok(buf)
            }
            _ => Err(Error::WrongState("this BIO cannot be read from")),
        }
    }
}

impl std::fmt::Debug for Bio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.method() {
            Ok(m) => write!(f, "Bio({m:?})"),
            Err(_) => f.write_str("Bio(freed)"),
        }
    }
}

/// The rest of a chain, seen by an SSL filter's connection as its transport.
pub(crate) struct ChainStream(pub(crate) Bio);

impl Read for ChainStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read_node(buf.len() as isize) {
            Ok(data) => {
                buf[..data.len()].copy_from_slice(&data);
                Ok(data.len())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Write for ChainStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.write_node(data).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for ChainStream {}

fn check_family(family: i32) -> Result<()> {
    match family {
        AF_UNSPEC | AF_INET | AF_INET6 => Ok(()),
        other => Err(Error::InvalidArgument(format!(
            "unsupported address family {other}"
        ))),
    }
}

fn io_error(e: io::Error) -> Error {
    Error::from_transport(e, Error::WantRead)
}

fn set_stream_nonblocking(s: &TcpStream, nonblocking: bool) -> Result<()> {
    s.set_nonblocking(nonblocking).map_err(io_error)
}

fn open_connection(ep: &Endpoint, nonblocking: bool) -> Result<TcpStream> {
    let mut last = None;
    for addr in ep.socket_addrs()? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .map_err(io_error)?;
        socket.set_nonblocking(nonblocking).map_err(io_error)?;
        match socket.connect(&addr.into()) {
            Ok(()) => return Ok(socket.into()),
            // Under way (non-blocking): `do_connect` finishes it.
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(socket.into())
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::from_transport(
        last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")),
        Error::WantWrite,
    ))
}

fn open_listener(ep: &Endpoint) -> Result<TcpListener> {
    let host = match (ep.host.as_str(), ep.family) {
        ("" | "*", AF_INET6) => "::",
        ("" | "*", _) => "0.0.0.0",
        (h, _) => h,
    };
    let ep = Endpoint {
        host: host.to_string(),
        ..ep.clone()
    };
    let addr = ep.socket_addrs()?[0];
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .map_err(io_error)?;
    socket.set_reuse_address(true).map_err(io_error)?;
    socket.bind(&addr.into()).map_err(io_error)?;
    socket.listen(128).map_err(io_error)?;
    Ok(socket.into())
}
