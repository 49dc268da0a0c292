//! GIO's `DtlsConnection` model: a DTLS association over a [`DatagramBased`] transport with a
//! datagram API, blocking calls with timeouts and a [`Cancellable`], GIO's close/shutdown
//! rules, and the accept-certificate decision with GIO's `TlsCertificateFlags`.
//!
//! It runs on [`Connection`] in DTLS memory-datagram mode, moving datagrams between it and
//! the base transport and driving the retransmission timer while it waits.

#[cfg(feature = "tokio")]
mod asynchronous;
mod binding;
mod flags;
mod interaction;
mod server;
mod verdict;

#[cfg(feature = "tokio")]
pub use asynchronous::AsyncDtlsConnection;
pub use binding::channel_binding_data;
pub use flags::TlsCertificateFlags;
pub use interaction::{InteractionResult, TlsInteraction, TlsPassword, TlsPasswordFlags};
pub use server::{DtlsServer, ServerLimits, ServerStats};
pub use verdict::chain_flags;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::connection::Connection;
use crate::constants::*;
use crate::context::{AlpnSelection, Context};
use crate::transport::{Cancellable, DatagramBased, Timeout};
use crate::verify::VerifyCallback;
use crate::x509::{PKey, X509Name, X509Store, X509};
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

/// GIO's deprecated `TlsRehandshakeMode`: kept for compatibility, it changes nothing
/// (renegotiation is refused on purpose; DTLS 1.3 has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RehandshakeMode {
    /// Never rehandshake.
    Never,
    /// Allow safe rehandshakes only.
    Safely,
    /// Allow unsafe rehandshakes.
    Unsafely,
}

/// What a connection is configured with. A [`DtlsServer`] hands a copy to every connection it
/// accepts, with the context built from it once for all of them.
#[derive(Clone)]
pub(crate) struct Settings {
    method: Method,
    identity: Option<(Vec<X509>, PKey)>,
    database: Option<X509Store>,
    advertised: Option<Vec<Vec<u8>>>,
    verify_mode: i32,
    validation_flags: TlsCertificateFlags,
    require_close_notify: bool,
    handler: Option<AcceptCertificate>,
    interaction: Option<Arc<dyn TlsInteraction>>,
    srtp_profiles: Option<String>,
    connection_id_length: Option<u8>,
    versions: (i32, i32),
}

impl Settings {
    /// GIO's defaults: the system's database, peers verified, close_notify required; a
    /// server asks for no client certificate.
    pub(crate) fn new(method: Method) -> Self {
        let database = X509Store::new();
        // A machine without a system store leaves the database empty: every peer is
        // UNKNOWN_CA, as GIO has it.
        let _ = database.load_system_roots();
        Self {
            method,
            identity: None,
            database: Some(database),
            advertised: None,
            verify_mode: match method {
                Method::DtlsServer => VERIFY_NONE,
                _ => VERIFY_PEER,
            },
            validation_flags: TlsCertificateFlags::VALIDATE_ALL,
            require_close_notify: true,
            handler: None,
            interaction: None,
            srtp_profiles: None,
            connection_id_length: None,
            versions: (0, 0),
        }
    }

    /// The engine's configuration for these settings; verification callbacks are per
    /// connection (see [`DtlsConnection::verifier`]).
    pub(crate) fn context(&self) -> crate::Result<Context> {
        let context = Context::new(self.method);
        context.set_cert_store(self.database.clone().unwrap_or_default());
        if let Some((chain, key)) = &self.identity {
            context.use_certificate(chain[0].clone());
            for extra in &chain[1..] {
                context.add_extra_chain_cert(extra.clone());
            }
            context.use_privatekey(key.clone());
        }
        context.set_verify(self.verify_mode, None);
        if self.method == Method::DtlsServer && self.verify_mode & VERIFY_PEER != 0 {
            // The CertificateRequest names the CAs of the database (a client's accepted CAs).
            let names = self.database.iter().flat_map(X509Store::certificates);
            context.set_client_ca_list(names.map(|ca| ca.subject()).collect());
        }
        if let Some(profiles) = &self.srtp_profiles {
            context.set_tlsext_use_srtp(profiles)?;
        }
        context.set_dtls_connection_id_length(self.connection_id_length);
        context.set_min_proto_version(self.versions.0)?;
        context.set_max_proto_version(self.versions.1)?;
        if let Some(protocols) = &self.advertised {
            let refs: Vec<&[u8]> = protocols.iter().map(Vec::as_slice).collect();
            context.set_alpn_protos(&refs)?;
            if self.method == Method::DtlsServer {
                // GIO's server picks the first of its own protocols the client offers.
                let ours = protocols.clone();
                context.set_alpn_select_callback(Arc::new(move |hello| {
                    Ok(ours
                        .iter()
                        .find(|p| hello.alpn_offered().contains(p))
                        .map_or(AlpnSelection::NoOverlap, |p| {
                            AlpnSelection::Select(p.clone())
                        }))
                }));
            }
        }
        Ok(context)
    }

    pub(crate) fn set_identity_pem(&mut self, cert_pem: &[u8], key_pem: &[u8]) -> GioResult<()> {
        self.identity = Some(interaction::load_identity(
            cert_pem,
            key_pem,
            self.interaction.as_ref(),
        )?);
        Ok(())
    }

    pub(crate) fn set_advertised(&mut self, protocols: Option<&[&str]>) -> GioResult<()> {
        if let Some(p) = protocols {
            let refs: Vec<&[u8]> = p.iter().map(|s| s.as_bytes()).collect();
            crate::context::check_alpn(&refs)?;
        }
        self.advertised = protocols.map(|p| p.iter().map(|s| s.as_bytes().to_vec()).collect());
        Ok(())
    }

    pub(crate) fn set_srtp_profiles(&mut self, profiles: Option<&str>) -> GioResult<()> {
        if let Some(list) = profiles {
            // Checked now, so that a bad list fails here and not at the handshake.
            Context::new(self.method).set_tlsext_use_srtp(list)?;
        }
        self.srtp_profiles = profiles.map(str::to_string);
        Ok(())
    }

    pub(crate) fn set_authentication_mode(&mut self, mode: AuthenticationMode) {
        self.verify_mode = match mode {
            AuthenticationMode::None => VERIFY_NONE,
            AuthenticationMode::Requested => VERIFY_PEER,
            AuthenticationMode::Required => VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        };
    }
}

/// A DTLS connection over a datagram transport, client or server.
pub struct DtlsConnection<B: DatagramBased> {
    base: B,
    settings: Settings,
    /// Built from `settings` when first needed; a server's connections share its context
    /// until one of them changes a setting.
    context: Option<Context>,
    conn: Option<Connection>,
    server_identity: Option<String>,
    read_shut: bool,
    write_shut: bool,
    closed: bool,
    peer_errors: Arc<Mutex<TlsCertificateFlags>>,
    handler: Arc<Mutex<Option<AcceptCertificate>>>,
    /// Where a server learns that this association finished its handshake.
    established: Option<Arc<AtomicBool>>,
    /// Our connection ID, when a server chose it.
    connection_id: Option<Vec<u8>>,
    /// A verify callback that replaces GIO's decision (see [`DtlsConnection::set_verify_callback`]).
    verify_callback: Option<VerifyCallback>,
}

/// The largest datagram the connection reads.
const MAX_DATAGRAM: usize = 65_535;

impl<B: DatagramBased> DtlsConnection<B> {
    pub(crate) fn with_settings(base: B, settings: Settings, context: Option<Context>) -> Self {
        Self {
            base,
            handler: Arc::new(Mutex::new(settings.handler.clone())),
            settings,
            context,
            conn: None,
            server_identity: None,
            read_shut: false,
            write_shut: false,
            closed: false,
            peer_errors: Arc::default(),
            established: None,
            connection_id: None,
            verify_callback: None,
        }
    }

    /// Uses `cid` as our connection ID (a many-client server routes by the ones it picks).
    pub(crate) fn set_connection_id(&mut self, cid: Vec<u8>) {
        self.connection_id = Some(cid);
    }

    /// RFC 9146 §6, RFC 9147 §9: the last datagram came from a new address, carried our
    /// connection ID and authenticated as the newest: the peer is there now.
    fn follow_peer(&mut self) {
        let moved = self
            .conn
            .as_mut()
            .is_some_and(Connection::dtls_take_peer_may_move);
        if let (true, Some(source)) = (moved, self.base.last_source()) {
            self.base.move_peer(source);
        }
    }

    pub(crate) fn report_established(&mut self, flag: Arc<AtomicBool>) {
        self.established = Some(flag);
    }

    /// `DtlsClientConnection::new(base, server_identity)`: the identity is the name sent as
    /// SNI and the certificate's expected name (an IP address is only checked).
    pub fn client(base: B, server_identity: Option<&str>) -> Self {
        let mut dtls = Self::with_settings(base, Settings::new(Method::DtlsClient), None);
        dtls.server_identity = server_identity.map(str::to_string);
        dtls
    }

    /// `DtlsServerConnection::new(base, certificate)`.
    pub fn server(base: B, certificate: X509, key: PKey) -> Self {
        let mut dtls = Self::with_settings(base, Settings::new(Method::DtlsServer), None);
        dtls.set_certificate(certificate, key);
        dtls
    }

    /// Changes a setting: the connection stops sharing a context built from the old ones.
    fn settings_mut(&mut self) -> &mut Settings {
        self.context = None;
        &mut self.settings
    }

    /// Sets our certificate (a client's is optional).
    pub fn set_certificate(&mut self, certificate: X509, key: PKey) {
        self.settings_mut().identity = Some((vec![certificate], key));
    }

    /// Sets our certificate chain and key from PEM (GIO's `TlsCertificate` from files). An
    /// encrypted key asks the interaction for its password.
    pub fn set_certificate_pem(&mut self, cert_pem: &[u8], key_pem: &[u8]) -> GioResult<()> {
        self.settings_mut().set_identity_pem(cert_pem, key_pem)
    }

    /// Our certificate.
    pub fn get_certificate(&self) -> Option<&X509> {
        self.settings.identity.as_ref().map(|(chain, _)| &chain[0])
    }

    /// The trust anchors; `None` makes every peer certificate `UNKNOWN_CA`.
    pub fn set_database(&mut self, database: Option<&X509Store>) -> GioResult<()> {
        self.settings_mut().database = database.cloned();
        Ok(())
    }

    /// The trust anchors in use (empty when the database was set to `None`).
    pub fn get_database(&self) -> X509Store {
        self.settings.database.clone().unwrap_or_default()
    }

    /// Sets the object asked for passwords (`set_interaction`); `None` asks nobody.
    pub fn set_interaction(&mut self, interaction: Option<Arc<dyn TlsInteraction>>) {
        self.settings.interaction = interaction;
    }

    /// The interaction in use.
    pub fn get_interaction(&self) -> Option<Arc<dyn TlsInteraction>> {
        self.settings.interaction.clone()
    }

    /// Sets the accept-certificate handler, asked when verification found problems.
    pub fn set_accept_certificate_handler(&mut self, handler: AcceptCertificate) {
        *self.handler.lock().expect("handler lock") = Some(handler);
    }

    /// Judges the peer's certificate with `callback`, the engine's verify callback (called once
    /// per depth of the chain, top first; false at any depth refuses the certificate, and the
    /// engine's own first problem picks the alert), instead of the decision made here (the
    /// engine's verdict as [`TlsCertificateFlags`], then the accept-certificate handler). For a
    /// binding that makes GIO's decision itself, as the GIO module does with its
    /// `GTlsDatabase`; [`get_peer_certificate_errors`](Self::get_peer_certificate_errors) then
    /// stays empty. `None` restores the decision made here. It applies to the association the
    /// next handshake starts. A ferrossl addition to GIO's API.
    pub fn set_verify_callback(&mut self, callback: Option<VerifyCallback>) {
        self.verify_callback = callback;
    }

    /// Which problems count (GIO's client `validation-flags`).
    pub fn set_validation_flags(&mut self, flags: TlsCertificateFlags) {
        self.settings.validation_flags = flags;
    }

    /// The problems that count.
    pub fn get_validation_flags(&self) -> TlsCertificateFlags {
        self.settings.validation_flags
    }

    /// A server's client-certificate policy.
    pub fn set_authentication_mode(&mut self, mode: AuthenticationMode) {
        self.settings_mut().set_authentication_mode(mode);
    }

    /// Whether a peer vanishing without close_notify is an error (default true).
    pub fn set_require_close_notify(&mut self, require: bool) {
        self.settings.require_close_notify = require;
    }

    /// Whether close_notify is required.
    pub fn get_require_close_notify(&self) -> bool {
        self.settings.require_close_notify
    }

    /// Deprecated in GIO and ignored here: renegotiation is refused on purpose.
    pub fn set_rehandshake_mode(&mut self, mode: RehandshakeMode) {
        let _ = mode;
    }

    /// Always [`RehandshakeMode::Safely`], GIO's answer since 2.64 whatever was set; no
    /// rehandshake ever happens.
    pub fn get_rehandshake_mode(&self) -> RehandshakeMode {
        RehandshakeMode::Safely
    }

    /// The ALPN protocols to offer or accept (None: no ALPN).
    pub fn set_advertised_protocols(&mut self, protocols: Option<&[&str]>) -> GioResult<()> {
        self.settings_mut().set_advertised(protocols)
    }

    /// The negotiated ALPN protocol.
    pub fn get_negotiated_protocol(&self) -> Option<String> {
        let p = self.conn.as_ref()?.get_alpn_proto_negotiated()?;
        Some(String::from_utf8_lossy(&p).into_owned())
    }

    /// The DTLS-SRTP profiles to offer or accept (RFC 5764 `use_srtp`, a list such as
    /// `"SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM"`); `None` for no SRTP. A ferrossl
    /// addition to GIO's API, for WebRTC-style media keys.
    pub fn set_srtp_profiles(&mut self, profiles: Option<&str>) -> GioResult<()> {
        self.settings_mut().set_srtp_profiles(profiles)
    }

    /// Negotiates DTLS connection IDs of `length` bytes (RFC 9146; see
    /// [`Context::set_dtls_connection_id_length`]). A ferrossl addition to GIO's API.
    pub fn set_connection_id_length(&mut self, length: Option<u8>) {
        self.settings_mut().connection_id_length = length;
    }

    /// Bounds the DTLS versions (`DTLS1_2_VERSION`, `DTLS1_3_VERSION`; 0: no bound), as
    /// [`Context::set_min_proto_version`] and [`Context::set_max_proto_version`] do. DTLS 1.3
    /// needs a maximum of `DTLS1_3_VERSION`. A ferrossl addition to GIO's API.
    pub fn set_protocol_versions(&mut self, min: i32, max: i32) {
        self.settings_mut().versions = (min, max);
    }

    /// The connection IDs negotiated: the one the peer's records carry to us and the one
    /// ours carry to it (empty where none); None before the handshake.
    pub fn connection_ids(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.conn.as_ref()?.dtls_connection_ids()
    }

    /// The SRTP profile the handshake selected.
    pub fn get_selected_srtp_profile(&self) -> Option<&'static str> {
        self.conn.as_ref()?.get_selected_srtp_profile()
    }

    /// Keying material from the association (RFC 5705; "EXTRACTOR-dtls_srtp" gives the SRTP
    /// keys of RFC 5764 §4.2). A ferrossl addition to GIO's API.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        length: usize,
        context: Option<&[u8]>,
    ) -> GioResult<Vec<u8>> {
        Ok(self
            .established_connection()?
            .export_keying_material(label, length, context)?)
    }

    fn established_connection(&self) -> GioResult<&Connection> {
        self.conn
            .as_ref()
            .filter(|c| c.is_handshake_done())
            .ok_or(GioError::Tls(Error::WrongState(
                "keying material and channel bindings are available after the handshake",
            )))
    }

    /// The CA names a server sent in its CertificateRequest (a client's `accepted-cas`):
    /// empty before the request and when the server named none.
    pub fn get_accepted_cas(&self) -> Vec<X509Name> {
        self.conn
            .as_ref()
            .map(Connection::get_client_ca_list)
            .unwrap_or_default()
    }

    fn check_open(&self) -> GioResult<()> {
        if self.closed {
            Err(GioError::Closed)
        } else {
            Ok(())
        }
    }

    /// Verification goes through GIO's decision: problems become flags, the handler (if any)
    /// is asked once with all of them at the peer's own certificate.
    fn verifier(&self) -> VerifyCallback {
        let (errors, handler, mask) = (
            self.peer_errors.clone(),
            self.handler.clone(),
            self.settings.validation_flags,
        );
        Arc::new(move |p| {
            let mut found = errors.lock().expect("errors lock");
            *found |= TlsCertificateFlags::from_verify_error(p.errnum) & mask;
            if p.depth > 0 || found.is_empty() {
                return true;
            }
            let handler = handler.lock().expect("handler lock").clone();
            handler.is_some_and(|h| h(p.cert, *found))
        })
    }

    fn connection(&mut self) -> GioResult<&mut Connection> {
        if self.conn.is_none() {
            if self.context.is_none() {
                self.context = Some(self.settings.context()?);
            }
            let mut conn = Connection::new(self.context.as_ref().expect("built above"))?;
            conn.set_dtls_peer_address(self.base.peer_address());
            if let Some(cid) = &self.connection_id {
                conn.set_dtls_connection_id(cid.clone());
            }
            let verifier = self
                .verify_callback
                .clone()
                .unwrap_or_else(|| self.verifier());
            conn.set_verify(self.settings.verify_mode, Some(verifier))?;
            match self.settings.method {
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
        self.follow_peer();
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
            // connected socket's ECONNREFUSED, from ICMP port unreachable) or a many-client
            // server ending the association (expiry, the peer's restart) is the peer going
            // away without close_notify, which `require_close_notify` decides on.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted
                ) && self
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

    /// Runs the handshake, giving up per `timeout` (a ferrossl addition: GIO bounds
    /// handshakes only through cancellation).
    pub fn handshake_within(
        &mut self,
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<()> {
        self.check_open()?;
        loop {
            let result = self.connection()?.do_handshake();
            self.flush(cancellable)?;
            match result {
                Ok(()) => {
                    if let Some(flag) = &self.established {
                        flag.store(true, Ordering::Release);
                    }
                    return Ok(());
                }
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
            )) if self.settings.method == Method::DtlsClient
                && self.settings.identity.is_none() =>
            {
                GioError::CertificateRequired
            }
            Error::Protocol(rustls::Error::NoCertificatesPresented) => {
                GioError::BadCertificate(flags)
            }
            other => GioError::Tls(other),
        }
    }

    /// Updates the DTLS 1.3 keys (RFC 9147 §8); `request_peer` asks the peer to update its
    /// own. A ferrossl addition to GIO's API.
    pub fn key_update(
        &mut self,
        request_peer: bool,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<()> {
        self.check_open()?;
        let conn = self
            .conn
            .as_mut()
            .filter(|c| c.is_handshake_done())
            .ok_or(GioError::Tls(Error::WrongState(
                "the handshake has not finished",
            )))?;
        conn.dtls_key_update(request_peer)?;
        self.flush(cancellable)
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
                    self.follow_peer();
                }
                Err(Error::ZeroReturn) => return Ok(got),
                Err(Error::WantRead) if got > 0 => return Ok(got),
                Err(Error::WantRead) => match self.wait_input(timeout, cancellable) {
                    Err(GioError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(GioError::WouldBlock)
                    }
                    other => other?,
                },
                Err(Error::SysCall { .. }) if !self.settings.require_close_notify => {
                    return Ok(got)
                }
                Err(Error::SysCall { .. }) => return Err(GioError::Eof),
                // DTLS 1.3: a server's refusal of our (missing) certificate comes after our
                // handshake ended (RFC 8446 §4.4.2.4).
                Err(e) => return Err(self.handshake_error(e)),
            }
        }
        Ok(got)
    }

    /// Whether a receive would return at once with what the connection already holds, without
    /// the base transport: a datagram received and not yet handed out (a datagram may carry
    /// several records, and a receive hands out one at a time, keeping the others), or the
    /// end of the association to report (the peer's close_notify, or its going away). A
    /// binding that waits for the base to be readable before receiving (GIO's
    /// `condition_check`, `condition_wait` and GSource of a DTLS connection) asks this first:
    /// no datagram will come to wake it for what is held already. False before the handshake
    /// and once reading is shut down. A ferrossl addition to GIO's API.
    pub fn has_pending(&self) -> bool {
        !self.read_shut
            && !self.closed
            && self.conn.as_ref().is_some_and(Connection::dtls_recv_ready)
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
            Some(DTLS1_3_VERSION) if !self.closed => TlsProtocolVersion::Dtls13,
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
        let conn = self.established_connection()?;
        let server = self.settings.method == Method::DtlsServer;
        let own = self.get_certificate().filter(|_| server);
        binding::channel_binding_data(conn, kind, server, own)
    }

    /// The base transport.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The same connection (settings, association, state) over `wrap(base)`: lets a binding
    /// keep connections over different transports, such as a [`DtlsServer`]'s, behind one type.
    pub fn map_base<C: DatagramBased>(self, wrap: impl FnOnce(B) -> C) -> DtlsConnection<C> {
        DtlsConnection {
            base: wrap(self.base),
            settings: self.settings,
            context: self.context,
            conn: self.conn,
            server_identity: self.server_identity,
            read_shut: self.read_shut,
            write_shut: self.write_shut,
            closed: self.closed,
            peer_errors: self.peer_errors,
            handler: self.handler,
            established: self.established,
            connection_id: self.connection_id,
            verify_callback: self.verify_callback,
        }
    }
}

fn io_error(e: io::Error) -> GioError {
    match e.kind() {
        io::ErrorKind::Interrupted => GioError::Cancelled,
        io::ErrorKind::TimedOut => GioError::TimedOut,
        io::ErrorKind::WouldBlock => GioError::WouldBlock,
        _ => GioError::Io(e),
    }
}
