//! GIO's `DtlsConnection` model: a DTLS association over a [`DatagramBased`] transport with a
//! datagram API, blocking calls with timeouts and a [`Cancellable`], GIO's close/shutdown
//! rules, and the accept-certificate decision with GIO's `TlsCertificateFlags`.
//!
//! It runs on [`Connection`] in DTLS memory-datagram mode, moving datagrams between it and
//! the base transport and driving the retransmission timer while it waits.

mod flags;

pub use flags::TlsCertificateFlags;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::connection::Connection;
use crate::constants::*;
use crate::context::Context;
use crate::transport::{Cancellable, DatagramBased, Timeout};
use crate::x509::{PKey, X509Store, X509};
use crate::{Error, Method};

/// Why a DtlsConnection call failed (GIO's `G_IO_ERROR_*` and `G_TLS_ERROR_*` cases).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GioError {
    /// The connection was closed (or this direction shut down).
    #[error("the connection is closed")]
    Closed,
    /// The cancellable was triggered.
    #[error("the operation was cancelled")]
    Cancelled,
    /// The timeout passed.
    #[error("the operation timed out")]
    TimedOut,
    /// Non-blocking: nothing can be done now.
    #[error("the operation would block")]
    WouldBlock,
    /// The peer went away without close_notify while one was required.
    #[error("the peer closed without close_notify")]
    Eof,
    /// The server required a certificate this client does not have.
    #[error("the server requires a client certificate")]
    CertificateRequired,
    /// The peer's certificate was refused (by the handler, or for lack of one).
    #[error("the peer's certificate was refused: {0:?}")]
    BadCertificate(TlsCertificateFlags),
    /// Any other DTLS failure.
    #[error("DTLS error: {0}")]
    Tls(#[from] Error),
    /// The base transport failed.
    #[error("transport error: {0}")]
    Io(#[from] io::Error),
}

/// The result type of this module.
pub type GioResult<T> = std::result::Result<T, GioError>;

/// The accept-certificate handler: `(peer certificate, problems) -> accept?`.
pub type AcceptCertificate = Arc<dyn Fn(&X509, TlsCertificateFlags) -> bool + Send + Sync>;

/// GIO's `TlsAuthenticationMode` for servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthenticationMode {
    /// Do not ask for a client certificate.
    None,
    /// Ask; go on without one.
    Requested,
    /// Require one.
    Required,
}

/// GIO's `TlsChannelBindingType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelBindingType {
    /// RFC 5929 tls-unique.
    Unique,
    /// RFC 5929 tls-server-end-point.
    ServerEndPoint,
    /// RFC 9266 tls-exporter.
    Exporter,
}

/// GIO's `TlsProtocolVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProtocolVersion {
    /// No association (before the handshake, after close).
    Unknown,
    /// DTLS 1.2.
    Dtls12,
    /// DTLS 1.3.
    Dtls13,
}

/// A DTLS connection over a datagram transport, client or server.
pub struct DtlsConnection<B: DatagramBased> {
    base: B,
    context: Context,
    conn: Option<Connection>,
    server_identity: Option<String>,
    advertised: Option<Vec<Vec<u8>>>,
    require_close_notify: bool,
    read_shut: bool,
    write_shut: bool,
    closed: bool,
    peer_errors: Arc<Mutex<TlsCertificateFlags>>,
    handler: Arc<Mutex<Option<AcceptCertificate>>>,
    validation_flags: TlsCertificateFlags,
    verify_mode: i32,
    certificate: Option<X509>,
}

/// The largest datagram the connection reads.
const MAX_DATAGRAM: usize = 65_535;

impl<B: DatagramBased> DtlsConnection<B> {
    fn new(base: B, method: Method) -> Self {
        let context = Context::new(method);
        // GIO's default database is the system's; without one, every peer is UNKNOWN_CA.
        let _ = context.set_default_verify_paths();
        let mut dtls = Self {
            base,
            context,
            conn: None,
            server_identity: None,
            advertised: None,
            require_close_notify: true,
            read_shut: false,
            write_shut: false,
            closed: false,
            peer_errors: Arc::default(),
            handler: Arc::default(),
            validation_flags: TlsCertificateFlags::VALIDATE_ALL,
            verify_mode: VERIFY_PEER,
            certificate: None,
        };
        dtls.install_verifier(VERIFY_PEER);
        dtls
    }

    /// Verification goes through GIO's decision: problems become flags, the handler (if any)
    /// is asked once with all of them at the peer's own certificate.
    fn install_verifier(&mut self, mode: i32) {
        self.verify_mode = mode;
        let (errors, handler, mask) = (
            self.peer_errors.clone(),
            self.handler.clone(),
            self.validation_flags,
        );
        self.context.set_verify(
            mode,
            Some(Arc::new(move |p| {
                let mut found = errors.lock().expect("errors lock");
                *found |= TlsCertificateFlags::from_verify_error(p.errnum) & mask;
                if p.depth > 0 {
                    return true;
                }
                if found.is_empty() {
                    return true;
                }
                let handler = handler.lock().expect("handler lock").clone();
                handler.is_some_and(|h| h(p.cert, *found))
            })),
        );
    }

    /// `DtlsClientConnection::new(base, server_identity)`: the identity is the name sent as
    /// SNI and the certificate's expected name (an IP address is only checked).
    pub fn client(base: B, server_identity: Option<&str>) -> Self {
        let mut dtls = Self::new(base, Method::DtlsClient);
        dtls.server_identity = server_identity.map(str::to_string);
        dtls
    }

    /// `DtlsServerConnection::new(base, certificate)`.
    pub fn server(base: B, certificate: X509, key: PKey) -> Self {
        let mut dtls = Self::new(base, Method::DtlsServer);
        dtls.set_authentication_mode(AuthenticationMode::None);
        dtls.context.use_certificate(certificate.clone());
        dtls.context.use_privatekey(key);
        dtls.certificate = Some(certificate);
        dtls
    }

    /// Sets our certificate (a client's is optional).
    pub fn set_certificate(&mut self, certificate: X509, key: PKey) {
        self.context.use_certificate(certificate.clone());
        self.context.use_privatekey(key);
        self.certificate = Some(certificate);
    }

    /// Our certificate.
    pub fn get_certificate(&self) -> Option<&X509> {
        self.certificate.as_ref()
    }

    /// The trust anchors; `None` makes every peer certificate `UNKNOWN_CA`.
    pub fn set_database(&mut self, database: Option<&X509Store>) -> GioResult<()> {
        let context = Context::new(self.context.method());
        for cert in database.map(X509Store::certificates).unwrap_or_default() {
            context.get_cert_store().add_cert(cert)?;
        }
        // Carry the other settings over to the context with the new store.
        let chain = self.context.certificate_chain();
        if let (Some(first), Some(key)) = (chain.first(), self.context.config().key.clone()) {
            context.use_certificate(first.clone());
            context.use_privatekey(key);
        }
        self.context = context;
        if let Some(protos) = self.advertised.clone() {
            let names: Vec<String> = protos
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            self.set_advertised_protocols(Some(&refs))?;
        }
        self.install_verifier(self.verify_mode);
        Ok(())
    }

    /// The trust anchors in use.
    pub fn get_database(&self) -> X509Store {
        self.context.get_cert_store()
    }

    /// Sets the accept-certificate handler, asked when verification found problems.
    pub fn set_accept_certificate_handler(&mut self, handler: AcceptCertificate) {
        *self.handler.lock().expect("handler lock") = Some(handler);
    }

    /// Which problems count (GIO's client `validation-flags`).
    pub fn set_validation_flags(&mut self, flags: TlsCertificateFlags) {
        self.validation_flags = flags;
        self.install_verifier(self.verify_mode);
    }

    /// A server's client-certificate policy.
    pub fn set_authentication_mode(&mut self, mode: AuthenticationMode) {
        let bits = match mode {
            AuthenticationMode::None => VERIFY_NONE,
            AuthenticationMode::Requested => VERIFY_PEER,
            AuthenticationMode::Required => VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        };
        self.install_verifier(bits);
    }

    /// Whether a peer vanishing without close_notify is an error (default true).
    pub fn set_require_close_notify(&mut self, require: bool) {
        self.require_close_notify = require;
    }

    /// Whether close_notify is required.
    pub fn get_require_close_notify(&self) -> bool {
        self.require_close_notify
    }

    /// The ALPN protocols to offer or accept (None: no ALPN).
    pub fn set_advertised_protocols(&mut self, protocols: Option<&[&str]>) -> GioResult<()> {
        self.advertised = protocols.map(|p| p.iter().map(|s| s.as_bytes().to_vec()).collect());
        if let Some(p) = protocols {
            let refs: Vec<&[u8]> = p.iter().map(|s| s.as_bytes()).collect();
            self.context.set_alpn_protos(&refs)?;
            if self.context.method() == Method::DtlsServer {
                let ours = self.advertised.clone().unwrap_or_default();
                self.context
                    .set_alpn_select_callback(Arc::new(move |hello| {
                        Ok(ours
                            .iter()
                            .find(|p| hello.alpn_offered().contains(p))
                            .map_or(crate::context::AlpnSelection::NoOverlap, |p| {
                                crate::context::AlpnSelection::Select(p.clone())
                            }))
                    }));
            }
        }
        Ok(())
    }

    /// The negotiated ALPN protocol.
    pub fn get_negotiated_protocol(&self) -> Option<String> {
        let p = self.conn.as_ref()?.get_alpn_proto_negotiated()?;
        Some(String::from_utf8_lossy(&p).into_owned())
    }

    fn check_open(&self) -> GioResult<()> {
        if self.closed {
            Err(GioError::Closed)
        } else {
            Ok(())
        }
    }

    fn connection(&mut self) -> GioResult<&mut Connection> {
        if self.conn.is_none() {
            let mut conn = Connection::new(&self.context)?;
            match self.context.method() {
                Method::DtlsServer => conn.set_accept_state()?,
                _ => {
                    conn.set_connect_state()?;
                    if let Some(id) = &self.server_identity {
                        if id.parse::<std::net::IpAddr>().is_err() {
                            conn.set_tlsext_host_name(id)?;
                        }
                        conn.set1_host(id)?;
                    }
                }
            }
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("set above"))
    }

    /// Sends what the engine has for the peer.
    fn flush(&mut self, cancellable: Option<&Cancellable>) -> GioResult<()> {
        let conn = self.conn.as_mut().expect("connection exists");
        while let Ok(d) = conn.bio_read(MAX_DATAGRAM) {
            self.base
                .send_datagram(&d, Timeout::Block, cancellable)
                .map_err(io_error)?;
        }
        Ok(())
    }

    /// Waits for one datagram (or the DTLS timer), feeding it to the engine.
    fn wait_input(&mut self, timeout: Timeout, cancellable: Option<&Cancellable>) -> GioResult<()> {
        let timer = self.conn.as_ref().and_then(Connection::dtls_get_timeout);
        let wait = match timer {
            Some(d) => timeout.min(Timeout::Deadline(Instant::now() + d)),
            None => timeout,
        };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        match self.base.receive_datagram(&mut buf, wait, cancellable) {
            Ok(n) => {
                self.conn
                    .as_mut()
                    .expect("connection exists")
                    .bio_write(&buf[..n])?;
                Ok(())
            }
            // UDP has no end of stream; after the handshake, the peer's port being closed (a
            // connected socket's ECONNREFUSED, from ICMP port unreachable) is the peer going
            // away without close_notify, which `require_close_notify` decides on.
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused
                    && self
                        .conn
                        .as_ref()
                        .is_some_and(Connection::is_handshake_done) =>
            {
                self.conn
                    .as_mut()
                    .expect("connection exists")
                    .bio_shutdown()?;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut && wait != timeout => {
                self.conn
                    .as_mut()
                    .expect("connection exists")
                    .dtls_handle_timeout()?;
                self.flush(cancellable)
            }
            Err(e) => Err(io_error(e)),
        }
    }

    /// Runs the handshake (also done implicitly by the first send or receive). Calling it
    /// again after it finished does nothing.
    pub fn handshake(&mut self, cancellable: Option<&Cancellable>) -> GioResult<()> {
        self.handshake_within(Timeout::Block, cancellable)
    }

    fn handshake_within(
        &mut self,
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<()> {
        self.check_open()?;
        loop {
            let result = self.connection()?.do_handshake();
            self.flush(cancellable)?;
            match result {
                Ok(()) => return Ok(()),
                Err(Error::WantRead) => self.wait_input(timeout, cancellable)?,
                Err(e) => return Err(self.handshake_error(e)),
            }
        }
    }

    fn handshake_error(&self, e: Error) -> GioError {
        let flags = *self.peer_errors.lock().expect("errors lock");
        match e {
            Error::CertificateVerify { .. } => GioError::BadCertificate(flags),
            Error::Protocol(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired,
            ))
            | Error::Protocol(rustls::Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure,
            )) if self.context.method() == Method::DtlsClient && self.certificate.is_none() => {
                GioError::CertificateRequired
            }
            Error::Protocol(rustls::Error::NoCertificatesPresented) => {
                GioError::BadCertificate(flags)
            }
            other => GioError::Tls(other),
        }
    }

    /// Sends each datagram; returns how many were sent.
    pub fn send_messages(
        &mut self,
        messages: &[&[u8]],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<usize> {
        self.check_open()?;
        if self.write_shut {
            return Err(GioError::Closed);
        }
        self.handshake_within(timeout, cancellable)?;
        for m in messages {
            self.conn.as_mut().expect("connection exists").send(m)?;
            self.flush(cancellable)?;
        }
        Ok(messages.len())
    }

    /// Receives up to `buffers.len()` datagrams: waits (per `timeout`) for the first, takes
    /// the others only if already there. Returns the sizes; an empty result is the end.
    pub fn receive_messages(
        &mut self,
        buffers: &mut [Vec<u8>],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<usize> {
        self.check_open()?;
        if self.read_shut {
            return Err(GioError::Closed);
        }
        self.handshake_within(timeout, cancellable)?;
        let mut got = 0;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while got < buffers.len() {
            let conn = self.conn.as_mut().expect("connection exists");
            match conn.recv(&mut buf) {
                Ok(n) => {
                    buffers[got] = buf[..n].to_vec();
                    got += 1;
                }
                Err(Error::ZeroReturn) => return Ok(got),
                Err(Error::WantRead) if got > 0 => return Ok(got),
                Err(Error::WantRead) => match self.wait_input(timeout, cancellable) {
                    Err(GioError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(GioError::WouldBlock)
                    }
                    other => other?,
                },
                Err(Error::SysCall { .. }) if !self.require_close_notify => return Ok(got),
                Err(Error::SysCall { .. }) => return Err(GioError::Eof),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(got)
    }

    /// Sends one datagram.
    pub fn send(&mut self, message: &[u8], cancellable: Option<&Cancellable>) -> GioResult<()> {
        self.send_messages(&[message], Timeout::Block, cancellable)
            .map(|_| ())
    }

    /// Receives one datagram; empty at the end of the association.
    pub fn receive(
        &mut self,
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<Vec<u8>> {
        let mut bufs = [Vec::new()];
        let n = self.receive_messages(&mut bufs, timeout, cancellable)?;
        Ok(if n == 0 {
            Vec::new()
        } else {
            std::mem::take(&mut bufs[0])
        })
    }

    /// Shuts down reading and/or writing. Shutting down writing sends close_notify; both
    /// closes the connection. The base transport is never closed.
    pub fn shutdown(
        &mut self,
        read: bool,
        write: bool,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<()> {
        if self.closed {
            return Ok(());
        }
        if write && !self.write_shut {
            self.write_shut = true;
            if let Some(conn) = self.conn.as_mut().filter(|c| c.is_handshake_done()) {
                let _ = conn.shutdown();
                self.flush(cancellable)?;
            }
        }
        self.read_shut |= read;
        if self.read_shut && self.write_shut {
            self.closed = true;
        }
        Ok(())
    }

    /// Closes both directions; closing again is not an error.
    pub fn close(&mut self, cancellable: Option<&Cancellable>) -> GioResult<()> {
        self.shutdown(true, true, cancellable)
    }

    /// The peer's certificate, after the handshake.
    pub fn get_peer_certificate(&self) -> Option<X509> {
        self.conn.as_ref()?.get_peer_certificate()
    }

    /// The problems verification found with the peer's certificate.
    pub fn get_peer_certificate_errors(&self) -> TlsCertificateFlags {
        *self.peer_errors.lock().expect("errors lock")
    }

    /// The protocol version (Unknown before the handshake and after close).
    pub fn get_protocol_version(&self) -> TlsProtocolVersion {
        match self.conn.as_ref().map(Connection::get_protocol_version) {
            Some(DTLS1_2_VERSION) if !self.closed => TlsProtocolVersion::Dtls12,
            _ => TlsProtocolVersion::Unknown,
        }
    }

    /// The IANA name of the cipher suite (None before the handshake).
    pub fn get_ciphersuite_name(&self) -> Option<&'static str> {
        let name = self.conn.as_ref()?.get_cipher_name()?;
        crate::ciphers::by_name(name).map(|c| c.iana_name)
    }

    /// Channel binding data (RFC 5929, RFC 9266).
    pub fn get_channel_binding_data(&self, kind: ChannelBindingType) -> GioResult<Vec<u8>> {
        let conn = self
            .conn
            .as_ref()
            .filter(|c| c.is_handshake_done())
            .ok_or(GioError::Tls(Error::WrongState(
                "channel binding data is available after the handshake",
            )))?;
        match kind {
            // RFC 9266 §2: 32 bytes of the exporter with this label and no context.
            ChannelBindingType::Exporter => {
                Ok(conn.export_keying_material(b"EXPORTER-Channel-Binding", 32, None)?)
            }
            ChannelBindingType::ServerEndPoint => {
                let cert = match self.context.method() {
                    Method::DtlsServer => self.certificate.clone(),
                    _ => conn.get_peer_certificate(),
                }
                .ok_or(GioError::Tls(Error::Missing("server certificate")))?;
                Ok(server_end_point(&cert)?)
            }
            ChannelBindingType::Unique => Err(GioError::Tls(Error::NotSupported(
                "tls-unique needs the Finished message, which the engine does not expose",
            ))),
        }
    }

    /// The base transport.
    pub fn base(&self) -> &B {
        &self.base
    }
}

/// RFC 5929 §4.1: the certificate's hash with its signature's hash, SHA-256 for MD5/SHA-1.
fn server_end_point(cert: &X509) -> crate::Result<Vec<u8>> {
    let alg = match cert.signature_algorithm_oid().as_str() {
        "1.2.840.10045.4.3.3" | "1.2.840.113549.1.1.12" => "sha384",
        "1.2.840.10045.4.3.4" | "1.2.840.113549.1.1.13" => "sha512",
        _ => "sha256",
    };
    let hex = cert.digest(alg)?;
    Ok(hex
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect())
}

fn io_error(e: io::Error) -> GioError {
    match e.kind() {
        io::ErrorKind::Interrupted => GioError::Cancelled,
        io::ErrorKind::TimedOut => GioError::TimedOut,
        io::ErrorKind::WouldBlock => GioError::WouldBlock,
        _ => GioError::Io(e),
    }
}
