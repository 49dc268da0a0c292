//! [`Connection`]: one TLS session with pyOpenSSL's and OpenSSL's semantics, over a memory BIO
//! (the caller moves ciphertext with `bio_write`/`bio_read`) or over a byte stream such as a
//! `TcpStream` (blocking or non-blocking).
//!
//! The outcomes follow `SSL_get_error`: [`Error::WantRead`] when ciphertext is missing,
//! [`Error::WantWrite`] when the transport is full, [`Error::ZeroReturn`] after the peer's
//! close_notify and an unexpected-EOF [`Error::SysCall`] when the transport ends without one.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;

use crate::config::{Config, Role, VerifySettings};
use crate::constants::*;
use crate::context::{check_alpn, AlpnSelection, ClientHello, Context};
use crate::dtls::DtlsEngine;
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::session::Session;
use crate::tls::{AlpnDecision, EngineParams, Plaintext, Processed, TlsEngine};
use crate::transport::Stream;
use crate::verify::VerifyCallback;
use crate::x509::X509Name;
use crate::x509::X509;

mod datagram;
mod negotiated;
mod one_record;
#[cfg(test)]
mod tests;

pub use crate::dtls::ListenOutcome;

use datagram::Datagrams;
use negotiated::Negotiated;
use one_record::RecordCursor;

/// The largest plaintext one TLS record carries (RFC 8446 §5.1).
const MAX_RECORD_PLAINTEXT: usize = 1 << 14;

/// A byte queue read from the front: a Vec with a read offset, compacted as it drains and
/// freed once drained, so that an idle connection's queues hold no memory.
#[derive(Default)]
struct ByteQueue {
    buf: Vec<u8>,
    pos: usize,
}

impl ByteQueue {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        } else if self.pos > self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// The error for input the engine could not take: the engine's own failure, if it failed
/// earlier (so that it is reported again, as OpenSSL does, rather than a full buffer),
/// else the transport's.
fn read_failed(engine: &mut TlsEngine, e: io::Error) -> Error {
    match engine.process() {
        Err(failed) => failed,
        Ok(_) => Error::from_transport(e, Error::WantRead),
    }
}

/// The largest TLS record on the wire: a 5-byte header and at most 2^14 + 256 bytes of
/// protected payload (RFC 8446 §5.2).
const MAX_RECORD_LEN: usize = 5 + (1 << 14) + 256;

/// Where `bio_read` puts ciphertext: it takes what fits and tells how much it holds. Its
/// `io::Write` face (for the engine) is `put`, which cannot fail.
trait Sink: io::Write {
    /// Takes what fits of `data`; returns how much.
    fn put(&mut self, data: &[u8]) -> usize;

    /// Bytes taken so far.
    fn taken(&self) -> usize;

    /// Whether no more fits.
    fn is_full(&self) -> bool;

    /// How many more bytes fit.
    fn room(&self) -> usize;

    /// Takes what fits of `bufs`, in order, so that one engine write hands out every queued
    /// record that fits (`io::Write`'s default takes only the first).
    fn put_all(&mut self, bufs: &[io::IoSlice<'_>]) -> usize {
        let start = self.taken();
        for buf in bufs {
            if self.put(buf) < buf.len() {
                break;
            }
        }
        self.taken() - start
    }

    /// Takes one whole DTLS datagram, truncated to the room left (the rest is lost, as with
    /// `BIO_read` on a datagram BIO).
    fn datagram(&mut self, datagram: Vec<u8>) {
        self.put(&datagram);
    }
}

/// `bio_read`'s answer: a Vec that takes bytes only up to `limit`, so the engine keeps the
/// rest for later.
struct BoundedVec {
    buf: Vec<u8>,
    limit: usize,
}

impl Sink for BoundedVec {
    fn put(&mut self, data: &[u8]) -> usize {
        if self.buf.capacity() == 0 {
            // Room for one whole record at once, so that a full record is not copied again
            // by a reallocation; allocated only once there is something to hold.
            self.buf.reserve_exact(self.limit.min(MAX_RECORD_LEN));
        }
        let n = data.len().min(self.limit - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    fn taken(&self) -> usize {
        self.buf.len()
    }

    fn is_full(&self) -> bool {
        self.buf.len() >= self.limit
    }

    fn room(&self) -> usize {
        self.limit.saturating_sub(self.buf.len())
    }

    fn datagram(&mut self, mut datagram: Vec<u8>) {
        // The datagram is the whole answer: handed out as it is, without a copy.
        datagram.truncate(self.limit);
        self.buf = datagram;
    }
}

impl io::Write for BoundedVec {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Ok(self.put(data))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.put_all(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `bio_read_into`'s answer: the caller's buffer, filled from the front.
struct SliceSink<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn taken(&self) -> usize {
        self.len
    }

    fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    fn room(&self) -> usize {
        self.buf.len() - self.len
    }
}

impl io::Write for SliceSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Ok(self.put(data))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.put_all(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where ciphertext goes.
enum Transport {
    /// Memory BIO: the application moves ciphertext itself.
    Memory {
        incoming: ByteQueue,
        eof: bool,
        /// The engine holds bytes that `bio_write` handed it directly and that nothing has
        /// processed yet.
        unprocessed: bool,
    },
    /// A byte stream the connection reads and writes.
    Stream(Box<dyn Stream>),
}

/// The last operation's unmet need, for `want_read` / `want_write`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Nothing,
    Read,
    Write,
}

/// One TLS connection (pyOpenSSL's `Connection`, OpenSSL's `SSL`).
pub struct Connection {
    context: Context,
    config: Arc<Config>,
    role: Option<Role>,
    engine: Option<TlsEngine>,
    transport: Transport,
    /// Where a stream transport stands within the record being read.
    stream_record: RecordCursor,
    transport_eof: bool,
    ex_data: Arc<ExData>,
    server_name: Option<String>,
    verify_host: Option<String>,
    verify: Option<VerifySettings>,
    alpn_protos: Option<Vec<Vec<u8>>>,
    session: Option<Session>,
    request_ocsp: bool,
    shutdown: i32,
    peeked: ByteQueue,
    want: Want,
    /// DTLS: the datagram transport and engine (None for TLS).
    dgram: Option<Box<Datagrams>>,
}

impl Connection {
    /// A connection over a memory BIO (pyOpenSSL's `Connection(context, None)`).
    pub fn new(context: &Context) -> Result<Self> {
        Self::with_transport(
            context,
            Transport::Memory {
                incoming: ByteQueue::default(),
                eof: false,
                unprocessed: false,
            },
        )
    }

    /// A connection over a byte stream, e.g. a connected `TcpStream`.
    pub fn with_stream(context: &Context, stream: impl Stream + 'static) -> Result<Self> {
        Self::with_transport(context, Transport::Stream(Box::new(stream)))
    }

    fn with_transport(context: &Context, transport: Transport) -> Result<Self> {
        let config = context.config();
        let dgram = match (&transport, config.method.is_dtls()) {
            (Transport::Memory { .. }, true) => Some(Box::new(Datagrams::new(None))),
            (Transport::Stream(_), true) => {
                return Err(Error::InvalidArgument(
                    "DTLS runs over datagrams: use a memory BIO or with_udp_socket".into(),
                ))
            }
            (_, false) => None,
        };
        Ok(Self {
            context: context.clone(),
            role: config.method.fixed_role(),
            config,
            engine: None,
            transport,
            stream_record: RecordCursor::default(),
            transport_eof: false,
            ex_data: Arc::new(ExData::default()),
            server_name: None,
            verify_host: None,
            verify: None,
            alpn_protos: None,
            session: None,
            request_ocsp: false,
            shutdown: 0,
            peeked: ByteQueue::default(),
            want: Want::Nothing,
            dgram,
        })
    }

    /// Accepts one TCP connection from `listener` and prepares a server-side TLS connection
    /// over it (pyOpenSSL's `Connection.accept`). The handshake happens on first use or on
    /// [`Connection::do_handshake`].
    pub fn accept(context: &Context, listener: &TcpListener) -> Result<(Self, SocketAddr)> {
        let (stream, addr) = listener
            .accept()
            .map_err(|e| Error::from_transport(e, Error::WantRead))?;
        let mut conn = Self::with_stream(context, stream)?;
        conn.set_accept_state()?;
        Ok((conn, addr))
    }

    /// Connects a TCP socket to `addr` and prepares the client side (pyOpenSSL's `connect`).
    /// Replaces a memory BIO that has not been used yet.
    pub fn connect(&mut self, addr: impl ToSocketAddrs) -> Result<()> {
        if self.engine.is_some() || matches!(self.transport, Transport::Stream(_)) {
            return Err(Error::WrongState(
                "connect on a connection that already has a transport",
            ));
        }
        let stream =
            TcpStream::connect(addr).map_err(|e| Error::from_transport(e, Error::WantWrite))?;
        self.transport = Transport::Stream(Box::new(stream));
        self.set_connect_state()
    }

    /// Like [`Connection::connect`], but returns the OS error number (0 on success) as
    /// `connect_ex` does.
    pub fn connect_ex(&mut self, addr: impl ToSocketAddrs) -> i32 {
        match self.connect(addr) {
            Ok(()) => 0,
            Err(Error::SysCall { errno, .. }) => errno,
            Err(_) => -1,
        }
    }

    /// Runs this connection over `stream` from now on (replacing a memory BIO or an earlier
    /// stream); allowed before the handshake starts.
    pub fn set_stream(&mut self, stream: Box<dyn Stream>) -> Result<()> {
        self.before_handshake()?;
        self.transport = Transport::Stream(stream);
        self.transport_eof = false;
        Ok(())
    }

    /// Whether the connection runs over a stream (rather than a memory BIO).
    pub fn has_stream(&self) -> bool {
        matches!(self.transport, Transport::Stream(_))
    }

    /// Makes this connection the client end.
    pub fn set_connect_state(&mut self) -> Result<()> {
        self.set_role(Role::Client)
    }

    /// Makes this connection the server end.
    pub fn set_accept_state(&mut self) -> Result<()> {
        self.set_role(Role::Server)
    }

    /// Whether the handshake has started (an engine exists).
    fn started(&self) -> bool {
        self.engine.is_some() || self.dgram.as_ref().is_some_and(|d| d.engine.is_some())
    }

    fn set_role(&mut self, role: Role) -> Result<()> {
        if self.started() {
            return Err(Error::WrongState("the handshake has already started"));
        }
        if let Some(fixed) = self.config.method.fixed_role() {
            if fixed != role {
                return Err(Error::WrongState(
                    "the context's method fixes the other role",
                ));
            }
        }
        self.role = Some(role);
        Ok(())
    }

    /// The role, once set.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// The context this connection was made from.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The application data of this connection, also handed to its callbacks.
    pub fn ex_data(&self) -> &Arc<ExData> {
        &self.ex_data
    }

    /// Sets the SNI name a client sends (`set_tlsext_host_name`). Rejects names that are
    /// empty, longer than 255 bytes, contain NUL, or are IP literals (RFC 6066 §3).
    pub fn set_tlsext_host_name(&mut self, name: &str) -> Result<()> {
        if name.is_empty() || name.len() > 255 || name.contains('\0') {
            return Err(Error::InvalidArgument(
                "server name must be 1 to 255 bytes without NUL".into(),
            ));
        }
        if name.parse::<std::net::IpAddr>().is_ok() {
            return Err(Error::InvalidArgument(
                "server name must be a host name, not an IP address (RFC 6066 section 3)".into(),
            ));
        }
        if rustls_pki_types::DnsName::try_from(name).is_err() {
            return Err(Error::InvalidArgument(format!(
                "{name:?} is not a valid DNS name"
            )));
        }
        self.before_handshake()?;
        self.server_name = Some(name.to_string());
        Ok(())
    }

    /// The SNI name: the one a client set, or the one a server received.
    pub fn get_servername(&self) -> Option<String> {
        match (self.role, self.negotiated()) {
            (Some(Role::Server), Some(engine)) => engine.server_name(),
            _ => self.server_name.clone(),
        }
    }

    /// Requires the server's certificate to match `host` (a DNS name or an IP address),
    /// as OpenSSL's `SSL_set1_host` does.
    pub fn set1_host(&mut self, host: &str) -> Result<()> {
        rustls_pki_types::ServerName::try_from(host)
            .map_err(|e| Error::InvalidArgument(format!("invalid host {host:?}: {e}")))?;
        self.before_handshake()?;
        self.verify_host = Some(host.to_string());
        Ok(())
    }

    /// Overrides the context's verification mode and callback for this connection.
    pub fn set_verify(&mut self, mode: i32, callback: Option<VerifyCallback>) -> Result<()> {
        self.before_handshake()?;
        let mut verify = self.config.verify.clone();
        verify.mode = mode;
        verify.callback = callback;
        self.verify = Some(verify);
        Ok(())
    }

    /// The `VERIFY_*` bits in force for this connection.
    pub fn get_verify_mode(&self) -> i32 {
        self.verify_settings().mode
    }

    fn verify_settings(&self) -> &VerifySettings {
        self.verify.as_ref().unwrap_or(&self.config.verify)
    }

    fn before_handshake(&self) -> Result<()> {
        match self.started() {
            true => Err(Error::WrongState("the handshake has already started")),
            false => Ok(()),
        }
    }

    fn params(&self) -> EngineParams<'_> {
        EngineParams {
            server_name: self.server_name.as_deref(),
            verify_host: self.verify_host.as_deref(),
            verify: self.verify_settings(),
            alpn_protos: self
                .alpn_protos
                .as_deref()
                .unwrap_or(&self.config.alpn_protos),
            session: self
                .session
                .clone()
                .unwrap_or_else(|| Session::with_timeout(self.config.session_timeout)),
            request_ocsp: self.request_ocsp,
            ex_data: self.ex_data.clone(),
        }
    }

    fn engine(&mut self) -> Result<&mut TlsEngine> {
        if self.engine.is_none() {
            self.start_engine()?;
        }
        Ok(self.engine.as_mut().expect("engine set above"))
    }

    /// Creates the engine. Cold: kept out of `engine`, which every data call runs.
    #[cold]
    fn start_engine(&mut self) -> Result<()> {
        let role = self.role.ok_or(Error::WrongState(
            "connection state not set: call set_connect_state or set_accept_state",
        ))?;
        let params = self.params();
        let engine = TlsEngine::new(&self.config, role, &params)?;
        if role == Role::Client {
            self.session = Some(params.session);
        }
        self.engine = Some(engine);
        self.info(SSL_CB_HANDSHAKE_START, 1);
        Ok(())
    }

    /// Tells the info callback, if any.
    fn info(&self, point: i32, ret: i32) {
        if let Some(cb) = &self.config.info {
            cb(&self.ex_data, point, ret);
        }
    }

    fn role_bits(&self) -> i32 {
        match self.role {
            Some(Role::Server) => SSL_ST_ACCEPT,
            _ => SSL_ST_CONNECT,
        }
    }

    /// A server got the ClientHello: the servername callback may switch contexts, the ALPN
    /// callback picks a protocol, the OCSP callback gives a response to staple; then the
    /// handshake goes on under the (possibly new) configuration.
    fn on_client_hello(&mut self) -> Result<()> {
        let engine = self.engine.as_mut().expect("engine exists");
        let (server_name, alpn) = engine.client_hello().expect("a ClientHello is waiting");
        let (servername_cb, _) = self.context.hello_callbacks();
        let mut hello = ClientHello {
            server_name: server_name.as_deref(),
            alpn: &alpn,
            ex_data: &self.ex_data,
            new_context: None,
        };
        let decided = servername_cb
            .map_or(Ok(()), |cb| cb(&mut hello))
            .and_then(|()| {
                if let Some(ctx) = hello.new_context.take() {
                    self.config = ctx.config();
                    self.context = ctx;
                }
                let (_, alpn_cb) = self.context.hello_callbacks();
                let decision = match alpn_cb {
                    // A client that offers no ALPN gets none; OpenSSL never asks the
                    // callback then (RFC 7301 §3.1: the server's answer is optional).
                    Some(_) if alpn.is_empty() => AlpnDecision::None,
                    None => AlpnDecision::None,
                    Some(cb) => match cb(&hello)? {
                        AlpnSelection::Select(p) if alpn.contains(&p) => AlpnDecision::Select(p),
                        AlpnSelection::Select(p) => {
                            return Err(Error::Callback(format!(
                                "the ALPN callback chose {:?}, which the client did not offer",
                                String::from_utf8_lossy(&p)
                            )))
                        }
                        AlpnSelection::NoOverlap => AlpnDecision::None,
                        AlpnSelection::Abort => AlpnDecision::Abort,
                    },
                };
                let ocsp = match &self.config.ocsp_server {
                    Some(cb) => cb(&self.ex_data)?,
                    None => Vec::new(),
                };
                Ok((decision, ocsp))
            });
        let engine = self.engine.as_mut().expect("engine exists");
        match decided {
            Ok((AlpnDecision::Abort, _)) => {
                // RFC 7301 §3.2: no protocol the server accepts → no_application_protocol.
                engine.abort_hello(rustls::AlertDescription::NoApplicationProtocol);
                Err(Error::Protocol(rustls::Error::NoApplicationProtocol))
            }
            Ok((decision, ocsp)) => {
                let params = EngineParams {
                    server_name: None,
                    verify_host: None,
                    verify: self.verify.as_ref().unwrap_or(&self.config.verify),
                    alpn_protos: &[],
                    session: Session::default(),
                    request_ocsp: false,
                    ex_data: self.ex_data.clone(),
                };
                engine.accept(&self.config, &params, decision, ocsp)
            }
            Err(e) => {
                // RFC 8446 §6.2: a failure the peer did not cause is an internal_error.
                engine.abort_hello(rustls::AlertDescription::InternalError);
                Err(e)
            }
        }
    }

    /// Notes what the last operation was missing, for `want_read` / `want_write`. By
    /// reference: the caller returns the result as it is.
    fn remember<T>(&mut self, result: &Result<T>) {
        self.want = match result {
            Err(Error::WantRead) => Want::Read,
            Err(Error::WantWrite) => Want::Write,
            _ => Want::Nothing,
        };
    }

    /// Runs the handshake as far as the transport allows.
    pub fn do_handshake(&mut self) -> Result<()> {
        let result = self.handshake();
        self.remember(&result);
        result
    }

    fn handshake(&mut self) -> Result<()> {
        if self.dgram.is_some() {
            return self.dtls_handshake();
        }
        let was_done = self.is_handshake_done();
        let result = self.run_handshake();
        match &result {
            Err(Error::CertificateVerify { code, .. }) => {
                let alert = rustls::AlertDescription::from(crate::verify::certificate_error(*code));
                self.info(SSL_CB_WRITE_ALERT, (2 << 8) | i32::from(u8::from(alert)));
            }
            Err(Error::Protocol(rustls::Error::AlertReceived(alert))) => {
                self.info(SSL_CB_READ_ALERT, (2 << 8) | i32::from(u8::from(*alert)));
            }
            _ => {}
        }
        self.report_handshake_exit(was_done, &result);
        result
    }

    /// Tells the info callback how a handshake call ended: SSL_CB_HANDSHAKE_DONE the first time
    /// it completes, then SSL_CB_EXIT with 1, or SSL_CB_EXIT with -1 when it failed.
    fn report_handshake_exit(&self, was_done: bool, result: &Result<()>) {
        let exit = self.role_bits() | SSL_CB_EXIT;
        match result {
            Ok(()) if !was_done => {
                self.info(SSL_CB_HANDSHAKE_DONE, 1);
                self.info(exit, 1);
            }
            Ok(()) => {}
            Err(_) => self.info(exit, -1),
        }
    }

    fn run_handshake(&mut self) -> Result<()> {
        self.engine()?;
        loop {
            self.push()?;
            if !self.engine()?.is_handshaking() {
                return Ok(());
            }
            if self.transport_eof {
                return Err(Error::unexpected_eof());
            }
            self.pull()?;
            self.info(self.role_bits() | SSL_CB_LOOP, 1);
        }
    }

    /// Whether the handshake has completed.
    pub fn is_handshake_done(&self) -> bool {
        match &self.engine {
            // TLS without the dynamic call: every send and recv asks.
            Some(tls) => !tls.is_handshaking(),
            None => self.negotiated().is_some_and(|e| !e.handshaking()),
        }
    }

    /// Takes ciphertext from the transport into the engine and processes it.
    fn pull(&mut self) -> Result<()> {
        let engine = self.engine.as_mut().expect("engine exists before pull");
        let n = match &mut self.transport {
            Transport::Memory {
                incoming,
                eof,
                unprocessed,
                ..
            } => {
                if std::mem::take(unprocessed) {
                    // First what bio_write handed the engine (whose buffer it may have
                    // filled); the queue's turn comes on the next pull. Input goes on.
                    1
                } else if incoming.is_empty() && !*eof {
                    // A connection that failed earlier says so again rather than asking for
                    // more input.
                    engine.process()?;
                    return Err(Error::WantRead);
                } else {
                    let mut bytes = incoming.as_slice();
                    let n = engine
                        .read_tls(&mut bytes)
                        .map_err(|e| read_failed(engine, e))?;
                    incoming.consume(n);
                    n
                }
            }
            Transport::Stream(stream) => engine
                .read_tls(&mut self.stream_record.reader(stream.as_mut()))
                .map_err(|e| read_failed(engine, e))?,
        };
        if n == 0 {
            self.transport_eof = true;
        }
        let mut processed = engine.process();
        if matches!(processed, Ok(Processed::ClientHello)) {
            processed = self.on_client_hello().map(|()| Processed::Progress);
        }
        // Send what processing produced (responses, or the alert explaining a failure) even
        // when it failed; the caller learns about a full transport on its next write.
        match self.push() {
            Ok(()) | Err(Error::WantWrite) => {}
            Err(e) if processed.is_ok() => return Err(e),
            Err(_) => {}
        }
        if let (Err(_), Transport::Stream(stream)) = (&processed, &mut self.transport) {
            // Records are read one at a time: the rest of the peer's flight is still in the
            // socket, and closing it unread would reset the connection under the alert.
            stream.discard_received();
        }
        if self.config.options & OP_IGNORE_UNEXPECTED_EOF != 0 && n == 0 {
            self.shutdown |= SSL_RECEIVED_SHUTDOWN;
        }
        processed.map(|_| ())
    }

    /// Processes what `bio_write` handed the engine, so that the read after it finds the
    /// plaintext at once rather than after a miss and a `pull`. A failure is left to `pull`,
    /// which reports it once the plaintext decrypted before has been read, as it would have.
    fn process_handed_input(&mut self) {
        if let (Transport::Memory { unprocessed, .. }, Some(engine)) =
            (&mut self.transport, self.engine.as_mut())
        {
            if *unprocessed && engine.process().is_ok() {
                *unprocessed = false;
            }
        }
    }

    /// Writes the engine's pending ciphertext to the transport.
    #[inline] // Nothing to do for a memory BIO, which every send asks twice.
    fn push(&mut self) -> Result<()> {
        // A memory BIO leaves ciphertext in the engine until `bio_read` takes it, which
        // then copies it once, straight into the caller's buffer.
        match self.transport {
            Transport::Memory { .. } => Ok(()),
            Transport::Stream(_) => self.push_to_stream(),
        }
    }

    fn push_to_stream(&mut self) -> Result<()> {
        let (Some(engine), Transport::Stream(stream)) = (self.engine.as_mut(), &mut self.transport)
        else {
            return Ok(());
        };
        while engine.wants_write() {
            engine
                .write_tls(stream.as_mut())
                .map_err(|e| Error::from_transport(e, Error::WantWrite))?;
        }
        Ok(())
    }

    fn ensure_handshake(&mut self) -> Result<()> {
        if self.is_handshake_done() {
            Ok(())
        } else {
            self.handshake()
        }
    }

    /// Reads decrypted data into `buf` (`recv`/`read`/`recv_into`), doing the handshake first
    /// if needed. Returns [`Error::ZeroReturn`] once the peer has closed the session.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let result = self.read_plaintext(buf, false, false);
        self.remember(&result);
        result
    }

    /// Like [`Connection::recv`], but leaves the data to be read again (`MSG_PEEK`).
    pub fn recv_peek(&mut self, buf: &mut [u8]) -> Result<usize> {
        let result = self.read_plaintext(buf, true, false);
        self.remember(&result);
        result
    }

    /// Like [`Connection::recv`] (or, with `peek`, [`Connection::recv_peek`]), but reads the
    /// transport at most once: [`Error::WantRead`] when that read gave no plaintext yet (a
    /// TLS 1.3 session ticket, part of a record). For a caller that waits for the socket to be
    /// readable itself, without holding the connection, and then calls again.
    pub fn recv_once(&mut self, buf: &mut [u8], peek: bool) -> Result<usize> {
        let result = self.read_plaintext(buf, peek, true);
        self.remember(&result);
        result
    }

    #[inline(always)] // Into `recv`: its 64-byte result goes straight to recv's caller.
    fn read_plaintext(&mut self, buf: &mut [u8], peek: bool, one_read: bool) -> Result<usize> {
        self.ensure_handshake()?;
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.peeked.is_empty() {
            let n = buf.len().min(self.peeked.len());
            buf[..n].copy_from_slice(&self.peeked.as_slice()[..n]);
            if !peek {
                // A peeked datagram is read whole, truncated or not.
                let used = if self.dgram.is_some() {
                    self.peeked.len()
                } else {
                    n
                };
                self.peeked.consume(used);
            }
            return Ok(n);
        }
        if self.dgram.is_some() {
            return self.dtls_recv(buf, peek);
        }
        self.process_handed_input();
        let mut pulled = false;
        loop {
            match self.engine()?.read_plaintext(buf) {
                Plaintext::Closed => {
                    if self.shutdown & SSL_RECEIVED_SHUTDOWN == 0 {
                        self.info(SSL_CB_READ_ALERT, 1 << 8);
                    }
                    self.shutdown |= SSL_RECEIVED_SHUTDOWN;
                    return Err(Error::ZeroReturn);
                }
                Plaintext::Data(n) => {
                    if peek {
                        self.peeked.push(&buf[..n]);
                    }
                    return Ok(n);
                }
                Plaintext::Empty if one_read && pulled => return Err(Error::WantRead),
                Plaintext::Empty => {
                    self.pull()?;
                    pulled = true;
                }
                Plaintext::Eof => {
                    if self.config.options & OP_IGNORE_UNEXPECTED_EOF != 0 {
                        return Err(Error::ZeroReturn);
                    }
                    return Err(Error::unexpected_eof());
                }
                Plaintext::Failed(e) => return Err(Error::from_transport(e, Error::WantRead)),
            }
        }
    }

    /// Reads up to `length` bytes (any amount with `length < 0`), as a socket's `recv`
    /// does: the first read may wait (on a blocking transport), later ones only take what is
    /// already decrypted, so a peer that sent less than `length` is answered at once. An
    /// empty result means the peer closed the session.
    pub fn read_up_to(&mut self, length: isize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let want = match usize::try_from(length) {
                Ok(n) => (n - out.len()).min(buf.len()),
                Err(_) => buf.len(),
            };
            if want == 0 {
                return Ok(out);
            }
            match self.recv(&mut buf[..want]) {
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Error::ZeroReturn) => return Ok(out),
                Err(e) if e.is_want() && !out.is_empty() => return Ok(out),
                Err(e) => return Err(e),
            }
            if self.pending() == 0 {
                return Ok(out);
            }
        }
    }

    /// Encrypts and sends `data` (`send`/`write`), doing the handshake first if needed.
    /// Returns how many bytes were taken: all of them, unless the transport is full before
    /// any could be taken ([`Error::WantWrite`]).
    pub fn send(&mut self, data: &[u8]) -> Result<usize> {
        let result = self.write_plaintext(data);
        self.remember(&result);
        result
    }

    fn write_plaintext(&mut self, data: &[u8]) -> Result<usize> {
        if self.dgram.is_some() {
            return self.dtls_send(data);
        }
        self.ensure_handshake()?;
        if self.shutdown & SSL_SENT_SHUTDOWN != 0 {
            return Err(Error::ProtocolIsShutdown);
        }
        if data.is_empty() {
            return Ok(0);
        }
        // With MODE_ENABLE_PARTIAL_WRITE a write stops after one full record (2^14 bytes,
        // RFC 8446 §5.1), as OpenSSL's does; the caller sends the rest.
        let data = if self.config.mode & MODE_ENABLE_PARTIAL_WRITE != 0 {
            &data[..data.len().min(MAX_RECORD_PLAINTEXT)]
        } else {
            data
        };
        // Ciphertext from an earlier call goes first, so a slow peer bounds what we buffer.
        self.push()?;
        let engine = self.engine()?;
        // A record that failed when a read processed it (behind data that read returned)
        // fails the write with its own error, not the engine's refusal to write.
        engine.process()?;
        let n = engine.write_plaintext(data)?;
        match self.push() {
            Ok(()) | Err(Error::WantWrite) => Ok(n),
            Err(e) => Err(e),
        }
    }

    /// Sends all of `data`, retrying partial sends (`sendall`).
    pub fn sendall(&mut self, data: &[u8]) -> Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.send(rest)?;
            rest = &rest[n..];
        }
        // Blocking transports: make sure everything left our buffers.
        let result = self.push();
        self.remember(&result);
        result
    }

    /// Bytes of decrypted data that can be read without touching the transport.
    pub fn pending(&mut self) -> usize {
        let buffered = self.engine.as_mut().map_or(0, |e| e.plaintext_pending());
        self.peeked.len() + buffered
    }

    /// Whether `recv` would have to read the transport before it could report anything
    /// (data, the peer's close, a failure). A caller over a blocking socket may wait for
    /// the socket to be readable first, without holding the connection, so that another
    /// thread can use it meanwhile (a `shutdown` while a read waits, as OpenSSL allows).
    pub fn recv_awaits_transport(&mut self) -> bool {
        self.dgram.is_none()
            && self.peeked.is_empty()
            && !self.transport_eof
            && self.is_handshake_done()
            && self
                .engine
                .as_mut()
                .is_some_and(TlsEngine::awaits_ciphertext)
    }

    /// Whether the last operation stopped because it needed more ciphertext.
    pub fn want_read(&self) -> bool {
        self.want == Want::Read
    }

    /// Whether the last operation stopped because the transport was full.
    pub fn want_write(&self) -> bool {
        self.want == Want::Write
    }

    /// Sends close_notify (first call) and reports whether the peer's close_notify has been
    /// received too (`SSL_shutdown`): false after the first call unless the peer closed first;
    /// later calls wait for the peer's close_notify ([`Error::WantRead`] when it is not there
    /// yet on a memory BIO or non-blocking transport).
    pub fn shutdown(&mut self) -> Result<bool> {
        let result = self.close();
        self.remember(&result);
        result
    }

    fn close(&mut self) -> Result<bool> {
        if self.dgram.is_some() {
            return self.dtls_close();
        }
        if !self.is_handshake_done() {
            return Err(Error::WrongState("shutdown while in init"));
        }
        if self.shutdown & SSL_SENT_SHUTDOWN == 0 {
            self.engine()?.send_close_notify();
            self.info(SSL_CB_WRITE_ALERT, 1 << 8);
            self.shutdown |= SSL_SENT_SHUTDOWN;
            self.push()?;
            return Ok(self.shutdown & SSL_RECEIVED_SHUTDOWN != 0);
        }
        self.push()?;
        let mut scratch = [0u8; 4096];
        while self.shutdown & SSL_RECEIVED_SHUTDOWN == 0 {
            // Data that arrives before the peer's close_notify is discarded, as OpenSSL does.
            match self.read_plaintext(&mut scratch, false, false) {
                Ok(_) => {}
                Err(Error::ZeroReturn) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The `SENT_SHUTDOWN` / `RECEIVED_SHUTDOWN` bits.
    pub fn get_shutdown(&self) -> i32 {
        self.shutdown
    }

    /// Sets the shutdown bits (e.g. to skip waiting for the peer's close_notify).
    pub fn set_shutdown(&mut self, state: i32) {
        self.shutdown = state & (SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }

    /// Shuts down halves of the underlying socket (`sock_shutdown`).
    pub fn sock_shutdown(&self, how: Shutdown) -> Result<()> {
        match &self.transport {
            Transport::Stream(s) => s
                .shutdown(how)
                .map_err(|e| Error::from_transport(e, Error::WantWrite)),
            Transport::Memory { .. } => {
                Err(Error::WrongState("a memory BIO connection has no socket"))
            }
        }
    }

    /// The TCP socket underneath, if any.
    pub fn tcp_stream(&self) -> Option<&TcpStream> {
        match &self.transport {
            Transport::Stream(s) => s.as_tcp(),
            Transport::Memory { .. } => None,
        }
    }

    // --- Memory BIO ---

    /// Hands ciphertext received from the peer to the connection. Returns the byte count.
    pub fn bio_write(&mut self, data: &[u8]) -> Result<usize> {
        if self.dgram.is_some() {
            return self.dtls_bio_write(data);
        }
        match &mut self.transport {
            Transport::Memory {
                incoming,
                eof,
                unprocessed,
                ..
            } => {
                if *eof {
                    return Err(Error::WrongState("bio_write after bio_shutdown"));
                }
                let mut rest = data;
                // After the handshake, with nothing queued, the engine takes the bytes itself
                // (a few KiB per call, up to a full record's buffer): one copy fewer than
                // queueing them. What it leaves is queued.
                if let Some(engine) = self.engine.as_mut().filter(|e| !e.handshaking()) {
                    while incoming.is_empty() && !rest.is_empty() {
                        match engine.read_tls(&mut rest) {
                            Ok(n) if n > 0 => *unprocessed = true,
                            _ => break,
                        }
                    }
                }
                incoming.push(rest);
                Ok(data.len())
            }
            Transport::Stream(_) => {
                Err(Error::WrongState("bio_write needs a memory BIO connection"))
            }
        }
    }

    /// Takes up to `n` bytes of ciphertext to send to the peer; [`Error::WantRead`] when there
    /// is none (as pyOpenSSL raises it). On a DTLS connection: the next datagram, cut to `n`
    /// bytes (the rest of it is lost).
    pub fn bio_read(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut out = BoundedVec {
            buf: Vec::new(),
            limit: n,
        };
        self.read_ciphertext(&mut out)?;
        Ok(out.buf)
    }

    /// Like [`Connection::bio_read`], into the caller's `buf` (OpenSSL's
    /// `BIO_read(bio, buf, len)`): returns how many bytes it wrote, [`Error::WantRead`] when
    /// there is nothing to send (also for an empty `buf`). A reused buffer saves `bio_read`'s
    /// allocation per call. On a DTLS connection each call takes one datagram, cut to
    /// `buf.len()` bytes (the rest of it is lost; 0 bytes for an empty `buf`).
    pub fn bio_read_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.read_ciphertext(&mut SliceSink { buf, len: 0 })
    }

    /// Hands ciphertext to `out`, straight from the engine (one copy, into the caller's
    /// memory): as much as fits for TLS, one datagram for DTLS.
    fn read_ciphertext(&mut self, out: &mut impl Sink) -> Result<usize> {
        if self.dgram.is_some() {
            return self.dtls_bio_read(out);
        }
        if matches!(self.transport, Transport::Stream(_)) {
            return Err(Error::WrongState("bio_read needs a memory BIO connection"));
        }
        if let Some(engine) = self.engine.as_mut() {
            while engine.wants_write() && !out.is_full() {
                if engine.write_tls(out).unwrap_or(0) == 0 {
                    break;
                }
            }
        }
        // Nothing to hand out: no buffer was allocated for the answer.
        match out.taken() {
            0 => Err(Error::WantRead),
            n => Ok(n),
        }
    }

    /// Ciphertext waiting for `bio_read`.
    pub fn bio_pending(&mut self) -> usize {
        match &self.transport {
            Transport::Memory { .. } => self.engine.as_mut().map_or(0, TlsEngine::tls_pending),
            Transport::Stream(_) => 0,
        }
    }

    /// Tells the connection that the peer's ciphertext has ended (`bio_shutdown`): reads then
    /// fail with an unexpected EOF unless the peer's close_notify came first.
    pub fn bio_shutdown(&mut self) -> Result<()> {
        if self.dgram.is_some() {
            self.dtls_bio_shutdown();
            return Ok(());
        }
        match &mut self.transport {
            Transport::Memory { eof, .. } => {
                *eof = true;
                Ok(())
            }
            Transport::Stream(_) => Err(Error::WrongState(
                "bio_shutdown needs a memory BIO connection",
            )),
        }
    }

    // --- Introspection ---

    /// OpenSSL's name of the negotiated cipher suite.
    pub fn get_cipher_name(&self) -> Option<&'static str> {
        Some(self.negotiated()?.cipher()?.openssl_name)
    }

    /// Secret bits of the negotiated cipher.
    pub fn get_cipher_bits(&self) -> Option<u32> {
        Some(self.negotiated()?.cipher()?.bits)
    }

    /// The protocol version the negotiated cipher belongs to ("TLSv1.2", "TLSv1.3").
    pub fn get_cipher_version(&self) -> Option<&'static str> {
        Some(self.negotiated()?.cipher()?.version)
    }

    /// The negotiated protocol version on the wire (0x303, 0x304); 0 before negotiation.
    pub fn get_protocol_version(&self) -> i32 {
        self.negotiated_version().map_or(0, |v| v.0)
    }

    /// "TLSv1.2", "TLSv1.3", or "Unknown" before negotiation.
    pub fn get_protocol_version_name(&self) -> &'static str {
        self.negotiated_version().map_or("Unknown", |v| v.1)
    }

    fn negotiated_version(&self) -> Option<(i32, &'static str)> {
        self.negotiated()?.version()
    }

    /// The engine in use, TLS or DTLS, for what both can tell.
    fn negotiated(&self) -> Option<&dyn Negotiated> {
        match (&self.engine, &self.dgram) {
            (Some(tls), _) => Some(tls),
            (None, Some(d)) => d.engine.as_ref().map(|e| e as &dyn Negotiated),
            (None, None) => None,
        }
    }

    /// Our certificate.
    pub fn get_certificate(&self) -> Option<X509> {
        self.config.cert_chain.first().cloned()
    }

    /// The peer's certificate.
    pub fn get_peer_certificate(&self) -> Option<X509> {
        self.negotiated()?.peer_chain().into_iter().next()
    }

    /// The chain the peer sent. As in OpenSSL, a server's view leaves out the client's own
    /// certificate (get it with [`Connection::get_peer_certificate`]).
    pub fn get_peer_cert_chain(&self) -> Option<Vec<X509>> {
        let engine = self.negotiated()?;
        let mut chain = engine.peer_chain();
        if chain.is_empty() {
            return None;
        }
        if engine.role() == Role::Server {
            chain.remove(0);
        }
        Some(chain)
    }

    /// The verified chain, peer first, anchor last; None unless verification succeeded.
    pub fn get_verified_chain(&self) -> Option<Vec<X509>> {
        let outcome = self.negotiated()?.verify_outcome()?;
        (outcome.result == X509_V_OK).then_some(outcome.chain)
    }

    /// `X509_V_OK` or the error verification found (even when a callback overrode it).
    pub fn get_verify_result(&self) -> i32 {
        self.negotiated()
            .and_then(|e| e.verify_outcome())
            .map_or(X509_V_OK, |o| o.result)
    }

    /// The ClientHello random, once the hello has passed.
    pub fn client_random(&self) -> Option<Vec<u8>> {
        Some(self.negotiated()?.client_random()?.to_vec())
    }

    /// The ServerHello random, once the hello has passed.
    pub fn server_random(&self) -> Option<Vec<u8>> {
        Some(self.negotiated()?.server_random()?.to_vec())
    }

    /// The TLS 1.2 master secret; None for TLS 1.3, which has none.
    pub fn master_key(&self) -> Option<Vec<u8>> {
        self.negotiated()?.master_key()
    }

    /// The negotiated ALPN protocol.
    pub fn get_alpn_proto_negotiated(&self) -> Option<Vec<u8>> {
        self.negotiated()?.alpn()
    }

    /// Whether the session was resumed.
    pub fn session_reused(&self) -> bool {
        self.negotiated().is_some_and(|e| e.session_reused())
    }

    /// Keying material (RFC 5705, RFC 8446 §7.5), available after the handshake.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        // TLS 1.3 derives the output with HKDF-Expand-Label, whose length is a uint16
        // (RFC 8446 §7.1); the same bound on TLS 1.2 and DTLS keeps a wrong length from
        // allocating gigabytes.
        if len > usize::from(u16::MAX) {
            return Err(Error::InvalidArgument(format!(
                "keying material of {len} bytes asked for; the most is 65535"
            )));
        }
        match self.negotiated() {
            Some(e) if !e.handshaking() => e.export(label, len, context),
            _ => Err(Error::WrongState(
                "keying material is available after the handshake",
            )),
        }
    }

    /// Renegotiation is refused by the engine on purpose: always false ("not possible").
    pub fn renegotiate(&mut self) -> bool {
        false
    }

    /// Never true: renegotiation is refused on purpose.
    pub fn renegotiate_pending(&self) -> bool {
        false
    }

    /// Always 0: renegotiation is refused on purpose.
    pub fn total_renegotiations(&self) -> i64 {
        0
    }

    /// The verify_data of the Finished message we sent: DTLS only (`None` before it was
    /// sent); the TLS engine does not expose it.
    pub fn get_finished(&self) -> Result<Option<Vec<u8>>> {
        self.dtls_finished(DtlsEngine::finished)
    }

    /// The verify_data of the peer's Finished message: DTLS only (`None` until it arrived
    /// and checked out); the TLS engine does not expose it.
    pub fn get_peer_finished(&self) -> Result<Option<Vec<u8>>> {
        self.dtls_finished(DtlsEngine::peer_finished)
    }
}

impl Connection {
    /// Sets the ALPN protocols this client offers, overriding the context's.
    pub fn set_alpn_protos(&mut self, protos: &[&[u8]]) -> Result<()> {
        let protos = check_alpn(protos)?;
        self.before_handshake()?;
        self.alpn_protos = Some(protos);
        Ok(())
    }

    /// The session to resume (client side), from an earlier connection's `get_session`.
    pub fn set_session(&mut self, session: &Session) -> Result<()> {
        self.before_handshake()?;
        if self.role == Some(Role::Server) {
            return Err(Error::WrongState("set_session is for clients"));
        }
        self.session = Some(session.clone());
        Ok(())
    }

    /// The session after the handshake (None before). A client's session fills with what
    /// the server issues (TLS 1.3 tickets arrive with the first data); `set_session` on a
    /// later connection resumes it.
    pub fn get_session(&self) -> Option<Session> {
        if !self.is_handshake_done() {
            return None;
        }
        // A server's session is the engine's and cannot be handed out: it gets an empty one,
        // which resumes nothing.
        Some(self.session.clone().unwrap_or_default())
    }

    /// Asks the server for a stapled OCSP response, which the context's OCSP client callback
    /// then judges.
    pub fn request_ocsp(&mut self) -> Result<()> {
        self.before_handshake()?;
        self.request_ocsp = true;
        Ok(())
    }

    /// Server: the CA names it sends; client: the names the server sent (after the handshake).
    pub fn get_client_ca_list(&self) -> Vec<X509Name> {
        match (self.role, self.negotiated()) {
            (Some(Role::Client), Some(engine)) => engine.ca_names().unwrap_or_default(),
            (Some(Role::Client), None) => Vec::new(),
            _ => self.config.client_ca_list.clone(),
        }
    }

    /// Changes this connection's own copy of the configuration (before the handshake).
    fn reconfigure<R>(&mut self, f: impl FnOnce(&mut Config) -> R) -> Result<R> {
        self.before_handshake()?;
        let mut config = (*self.config).clone();
        let result = f(&mut config);
        self.config = Arc::new(config.seal());
        Ok(result)
    }

    /// Uses `cert` for this connection only (`SSL_use_certificate`).
    pub fn use_certificate(&mut self, cert: X509) -> Result<()> {
        self.reconfigure(|c| match c.cert_chain.first_mut() {
            Some(first) => *first = cert,
            None => c.cert_chain.push(cert),
        })
    }

    /// Uses `key` for this connection only (`SSL_use_PrivateKey`).
    pub fn use_privatekey(&mut self, key: crate::PKey) -> Result<()> {
        self.reconfigure(|c| c.key = Some(key))
    }

    /// Adds `OP_*` options for this connection only; returns the new bitmask.
    pub fn set_options(&mut self, options: u64) -> Result<u64> {
        self.reconfigure(|c| {
            c.options |= options;
            c.options
        })
    }

    /// Sets an info callback for this connection only.
    pub fn set_info_callback(&mut self, callback: crate::config::InfoCallback) -> Result<()> {
        self.reconfigure(|c| c.info = Some(callback))
    }

    /// Switches this connection to another context (its certificate, key and settings).
    pub fn set_context(&mut self, context: &Context) -> Result<()> {
        if context.method().is_dtls() != self.config.method.is_dtls() {
            return Err(Error::InvalidArgument(
                "cannot switch between TLS and DTLS contexts".into(),
            ));
        }
        self.config = context.config();
        self.context = context.clone();
        Ok(())
    }

    /// The negotiated key exchange group ("X25519", "secp256r1", "X25519MLKEM768"...).
    pub fn get_group_name(&self) -> Option<String> {
        self.negotiated()?.group()
    }

    /// OpenSSL's description of where the handshake stands, for the states ferrossl can
    /// observe.
    pub fn get_state_string(&self) -> &'static str {
        let Some(engine) = self.negotiated() else {
            return "before SSL initialization";
        };
        if !engine.handshaking() {
            return "SSL negotiation finished successfully";
        }
        match (
            engine.role(),
            engine.client_random().is_some(),
            engine.server_random().is_some(),
        ) {
            (Role::Client, _, false) => "SSLv3/TLS write client hello",
            (Role::Client, _, true) => "SSLv3/TLS read server hello",
            (Role::Server, false, _) => "before SSL initialization",
            (Role::Server, true, false) => "SSLv3/TLS read client hello",
            (Role::Server, true, true) => "SSLv3/TLS write server hello",
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("handshake_done", &self.is_handshake_done())
            .field("version", &self.get_protocol_version_name())
            .field("shutdown", &self.shutdown)
            .finish()
    }
}
