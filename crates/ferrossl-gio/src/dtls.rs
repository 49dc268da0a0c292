//! What the DTLS client and server connections share: their settings and properties, and the
//! association, a `ferrossl::gio::DtlsConnection` (the library's model of GIO's DTLS
//! connection: handshake with retransmissions, datagrams, shutdown, GIO's certificate
//! decision). `dtls_client.rs` and `dtls_server.rs` are the GObject types around it.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ferrossl::constants::DTLS1_3_VERSION;
use ferrossl::gio::{AuthenticationMode, DtlsConnection, GioError};
use ferrossl::transport::Timeout;
use ferrossl::X509;
use gio::prelude::*;

use crate::caller::CallerContext;
use crate::certificate::{key_of, x509_of, Certificate};
use crate::database::store_of;
use crate::datagrams::GioDatagrams;
use crate::errors;
use crate::identity::host_of;
use crate::shared::Shared;
use crate::values;
use crate::verdict::{chain_verifier, decide, Judging, Peer};

/// The association.
pub type Dtls = DtlsConnection<GioDatagrams>;

/// What the application configured, applied when the association starts.
struct Settings {
    base: Option<gio::DatagramBased>,
    judging: Judging,
    certificate: Option<gio::TlsCertificate>,
    advertised: Vec<String>,
    require_close_notify: bool,
    authentication_mode: gio::TlsAuthenticationMode,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base: None,
            judging: Judging::with(Some(gio::TlsBackend::default().default_database())),
            certificate: None,
            advertised: Vec::new(),
            require_close_notify: true,
            authentication_mode: gio::TlsAuthenticationMode::None,
        }
    }
}

/// The DTLS connection properties (on the GDtlsConnection interface).
pub const DTLS_PROPERTIES: [&str; 12] = [
    "base-socket",
    "database",
    "interaction",
    "require-close-notify",
    "rehandshake-mode",
    "certificate",
    "peer-certificate",
    "peer-certificate-errors",
    "advertised-protocols",
    "negotiated-protocol",
    "protocol-version",
    "ciphersuite-name",
];

/// Which end of the association this is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// One DTLS connection's state, inside its GObject.
#[derive(Default)]
pub struct DtlsCommon {
    settings: Mutex<Shared<Settings>>,
    dtls: Mutex<Option<Dtls>>,
    /// For `g_dtls_connection_get_negotiated_protocol`, which returns a borrowed string.
    negotiated: OnceLock<CString>,
    /// The peer's certificate object (GIO's getter returns it borrowed, so the connection
    /// must hold it and hand out the same one each time) and the problems found with it.
    peer: Mutex<Shared<Peer>>,
    /// The main context of the caller of an asynchronous handshake, where accept-certificate
    /// belongs while the handshake runs in a worker thread.
    caller: CallerContext,
    /// The handshake finished (readable without the association's lock).
    established: AtomicBool,
}

/// The shared state of a DTLS connection object of ours.
pub fn dtls_common_of(obj: &glib::Object) -> Option<(&DtlsCommon, Role)> {
    use glib::subclass::prelude::ObjectSubclassIsExt;
    if let Some(client) = obj.downcast_ref::<crate::dtls_client::DtlsClientConnection>() {
        return Some((client.imp().common(), Role::Client));
    }
    obj.downcast_ref::<crate::dtls_server::DtlsServerConnection>()
        .map(|server| (server.imp().common(), Role::Server))
}

impl DtlsCommon {
    fn settings(&self) -> MutexGuard<'_, Shared<Settings>> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a writable property of GDtlsConnection, GDtlsClientConnection or
    /// GDtlsServerConnection.
    pub fn set_property(&self, name: &str, value: &glib::Value) {
        let mut s = self.settings();
        match name {
            "base-socket" => s.base = value.get().expect("datagram based"),
            "database" => s.judging.database = value.get().expect("database"),
            "interaction" => s.judging.interaction = value.get().expect("interaction"),
            "require-close-notify" => s.require_close_notify = value.get().expect("bool"),
            "certificate" => s.certificate = value.get().expect("certificate"),
            "advertised-protocols" => s.advertised = strv(value),
            "validation-flags" => s.judging.validation_flags = value.get().expect("flags"),
            "server-identity" => s.judging.server_identity = value.get().expect("identity"),
            "authentication-mode" => s.authentication_mode = value.get().expect("mode"),
            // Renegotiation is refused by design: the mode changes nothing.
            "rehandshake-mode" => {}
            other => unreachable!("{other} is read-only"),
        }
    }

    /// Reads a property of GDtlsConnection, GDtlsClientConnection or GDtlsServerConnection.
    #[allow(deprecated)] // rehandshake-mode, validation-flags
    pub fn property(&self, name: &str) -> glib::Value {
        if let Some(value) = self.association_property(name) {
            return value;
        }
        let s = self.settings();
        match name {
            "base-socket" => s.base.to_value(),
            "database" => s.judging.database.to_value(),
            "interaction" => s.judging.interaction.to_value(),
            "require-close-notify" => s.require_close_notify.to_value(),
            "rehandshake-mode" => gio::TlsRehandshakeMode::Safely.to_value(),
            "certificate" => s.certificate.to_value(),
            "advertised-protocols" => glib::StrV::from(s.advertised.clone()).to_value(),
            "validation-flags" => s.judging.validation_flags.to_value(),
            "server-identity" => s.judging.server_identity.to_value(),
            "authentication-mode" => s.authentication_mode.to_value(),
            "accepted-cas" => {
                let dtls = self.dtls.try_lock().ok();
                let names = dtls
                    .as_ref()
                    .and_then(|d| d.as_ref())
                    .map(Dtls::get_accepted_cas);
                let ders: Vec<Vec<u8>> = names
                    .unwrap_or_default()
                    .iter()
                    .map(|n| n.to_der().to_vec())
                    .collect();
                values::byte_arrays_list(&ders)
            }
            other => unreachable!("no property {other}"),
        }
    }

    /// GInitable's `init`: a connection needs its base socket.
    pub fn init(&self) -> Result<(), glib::Error> {
        match self.settings().base {
            Some(_) => Ok(()),
            None => Err(glib::Error::new(
                gio::IOErrorEnum::InvalidArgument,
                "A DTLS connection needs a base-socket",
            )),
        }
    }

    /// The properties the association knows (defaults before it, and while a call holds it:
    /// a signal handler may ask).
    fn association_property(&self, name: &str) -> Option<glib::Value> {
        let dtls = self.dtls.try_lock().ok();
        let dtls = dtls.as_ref().and_then(|d| d.as_ref());
        Some(match name {
            "peer-certificate" => self.peer_certificate(dtls).to_value(),
            "peer-certificate-errors" => self.peer().errors.to_value(),
            "negotiated-protocol" => dtls.and_then(Dtls::get_negotiated_protocol).to_value(),
            "protocol-version" => gio_version(dtls.map(Dtls::get_protocol_version)).to_value(),
            "ciphersuite-name" => dtls.and_then(Dtls::get_ciphersuite_name).to_value(),
            _ => return None,
        })
    }

    fn peer(&self) -> MutexGuard<'_, Shared<Peer>> {
        self.peer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The peer's certificate object: the one judged during the handshake, else (a server
    /// that asked for none) made once from the association's.
    fn peer_certificate(&self, dtls: Option<&Dtls>) -> Option<gio::TlsCertificate> {
        let mut peer = self.peer();
        if peer.certificate.is_none() {
            peer.certificate = dtls
                .and_then(Dtls::get_peer_certificate)
                .and_then(|c| Certificate::from_chain(&[c]));
        }
        peer.certificate.clone()
    }

    /// GIO's decision on the peer's chain, as for TLS (`crate::verdict`): the database's
    /// verdict, then accept-certificate (a client's only if the verdict found problems, a
    /// server's always), in the main context of an asynchronous handshake's caller.
    fn accept_peer(&self, conn: &glib::Object, role: Role, chain: &[X509]) -> bool {
        let judging = self.settings().judging.clone();
        decide(
            chain,
            judging,
            role == Role::Client,
            |peer| **self.peer() = peer,
            |certificate, errors| self.caller.emit_accept(conn, certificate, errors),
        )
    }

    /// Runs `f` on the association of `obj`, starting it from the settings the first time,
    /// with the GIO call's cancellable in force.
    pub fn with_dtls<T>(
        &self,
        obj: &glib::Object,
        role: Role,
        cancellable: Option<&gio::Cancellable>,
        f: impl FnOnce(&mut Dtls) -> Result<T, GioError>,
    ) -> Result<T, glib::Error> {
        let mut guard = self.dtls.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.start(obj, role)?);
        }
        let dtls = guard.as_mut().expect("started above");
        dtls.base().set_cancellable(cancellable);
        let result = f(dtls);
        dtls.base().set_cancellable(None);
        let established = dtls.get_protocol_version() != ferrossl::gio::TlsProtocolVersion::Unknown;
        if established {
            self.established.store(true, Ordering::Release);
        }
        if established && self.negotiated.get().is_none() {
            if let Some(p) = dtls.get_negotiated_protocol() {
                let _ = self.negotiated.set(CString::new(p).unwrap_or_default());
            }
        }
        result.map_err(|e| gio_error(&e, !established))
    }

    /// Receives one datagram. After the handshake the wait for the peer happens without
    /// holding the association, so that a send from another thread goes on meanwhile; the
    /// first receive runs the handshake, timers and all, as one call.
    pub fn receive(
        &self,
        obj: &glib::Object,
        role: Role,
        timeout_us: i64,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<Vec<u8>, glib::Error> {
        let once = |t: Timeout| {
            self.with_dtls(obj, role, cancellable, |d| {
                let mut bufs = [Vec::new()];
                d.receive_messages(&mut bufs, t, None)
                    .map(|_| -> Vec<u8> { std::mem::take(&mut bufs[0]) })
            })
        };
        if !self.established.load(Ordering::Acquire) || timeout_us == 0 {
            return once(timeout(timeout_us));
        }
        let deadline = u64::try_from(timeout_us)
            .ok()
            .map(|us| Instant::now() + Duration::from_micros(us));
        loop {
            match once(Timeout::NonBlocking) {
                Err(e) if e.matches(gio::IOErrorEnum::WouldBlock) => {}
                other => return other,
            }
            let left = match deadline {
                None => -1,
                Some(d) => match d.saturating_duration_since(Instant::now()) {
                    left if left.is_zero() => {
                        return Err(glib::Error::new(gio::IOErrorEnum::TimedOut, "Timed out"))
                    }
                    left => i64::try_from(left.as_micros()).unwrap_or(i64::MAX).max(1),
                },
            };
            let base = self.base_socket().ok_or_else(errors::not_connected)?;
            wait_readable(&base, left, cancellable)?;
        }
    }

    /// Whether a receive would return at once with what the association already holds (the
    /// records after the first of a datagram, the peer's close_notify): the base socket will
    /// not wake anyone for those. False while another call holds the association (it is
    /// receiving or handshaking: what it leaves held, the next look sees), so that a look from
    /// a GSource's `prepare`, perhaps in the middle of such a call, never waits.
    pub fn holds_input(&self) -> bool {
        match self.dtls.try_lock() {
            Ok(dtls) => dtls.as_ref().is_some_and(Dtls::has_pending),
            Err(std::sync::TryLockError::Poisoned(dtls)) => {
                dtls.into_inner().as_ref().is_some_and(Dtls::has_pending)
            }
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    /// Where an asynchronous handshake's caller waits for its signals.
    pub fn caller(&self) -> &CallerContext {
        &self.caller
    }

    pub fn negotiated_ptr(&self) -> *const std::ffi::c_char {
        self.negotiated
            .get()
            .map_or(std::ptr::null(), |s| s.as_ptr())
    }

    /// The base socket.
    pub fn base_socket(&self) -> Option<gio::DatagramBased> {
        self.settings().base.clone()
    }

    /// Sets the ALPN protocols to offer or accept (before the handshake).
    pub fn set_advertised(&self, protocols: Vec<String>) {
        self.settings().advertised = protocols;
    }

    fn start(&self, obj: &glib::Object, role: Role) -> Result<Dtls, glib::Error> {
        let s = self.settings();
        let base = GioDatagrams::new(s.base.clone().ok_or_else(errors::not_connected)?);
        let identity = match &s.certificate {
            Some(certificate) => match (x509_of(certificate), key_of(certificate)) {
                (Some(cert), Some(key)) => Some((cert, key)),
                _ => {
                    return Err(glib::Error::new(
                        gio::TlsError::BadCertificate,
                        "The certificate has no private key",
                    ))
                }
            },
            None => None,
        };
        let mut dtls = match (role, identity) {
            (Role::Client, identity) => {
                let host = s.judging.server_identity.as_ref().and_then(host_of);
                let mut dtls = DtlsConnection::client(base, host.as_deref());
                if let Some((cert, key)) = identity {
                    dtls.set_certificate(cert, key);
                }
                dtls
            }
            (Role::Server, Some((cert, key))) => {
                let mut dtls = DtlsConnection::server(base, cert, key);
                dtls.set_authentication_mode(match s.authentication_mode {
                    gio::TlsAuthenticationMode::Requested => AuthenticationMode::Requested,
                    gio::TlsAuthenticationMode::Required => AuthenticationMode::Required,
                    _ => AuthenticationMode::None,
                });
                dtls
            }
            (Role::Server, None) => {
                return Err(glib::Error::new(
                    gio::TlsError::CertificateRequired,
                    "A DTLS server needs a certificate",
                ))
            }
        };
        let store = s.judging.database.as_ref().and_then(store_of);
        dtls.set_database(store.as_ref())
            .map_err(|e| gio_error(&e, true))?;
        if !s.advertised.is_empty() {
            let protocols: Vec<&str> = s.advertised.iter().map(String::as_str).collect();
            dtls.set_advertised_protocols(Some(&protocols))
                .map_err(|e| gio_error(&e, true))?;
        }
        // DTLS 1.3 when the peer has it; a peer with DTLS 1.2 only gets 1.2 (the library's
        // default maximum is 1.2, so 1.3 is asked for here).
        dtls.set_protocol_versions(0, DTLS1_3_VERSION);
        dtls.set_require_close_notify(s.require_close_notify);
        dtls.set_verify_callback(Some(verifier(obj, role)));
        Ok(dtls)
    }
}

/// The association's verify callback: GIO's decision, made by the connection `obj`.
fn verifier(obj: &glib::Object, role: Role) -> ferrossl::verify::VerifyCallback {
    let connection = Shared(obj.downgrade());
    chain_verifier(move |presented| {
        // The callback runs inside the handshake this connection object started.
        let connection = &connection;
        let Some(conn) = connection.0.upgrade() else {
            return false;
        };
        dtls_common_of(&conn).is_some_and(|(common, _)| common.accept_peer(&conn, role, presented))
    })
}

/// Waits until `base` has a datagram (or `timeout_us` passes, -1 for no limit).
fn wait_readable(
    base: &gio::DatagramBased,
    timeout_us: i64,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    crate::datagrams::condition_wait(base, glib::IOCondition::IN, timeout_us, cancellable)
}

/// GIO's name for a DTLS version. GLib's GTlsProtocolVersion has no DTLS 1.3 value, and
/// GIO documents UNKNOWN for "a newer protocol version that GLib does not yet know about": so
/// DTLS 1.3 reads as UNKNOWN, as before the handshake (`ciphersuite-name` tells them apart).
fn gio_version(version: Option<ferrossl::gio::TlsProtocolVersion>) -> gio::TlsProtocolVersion {
    match version {
        Some(ferrossl::gio::TlsProtocolVersion::Dtls12) => gio::TlsProtocolVersion::Dtls12,
        Some(ferrossl::gio::TlsProtocolVersion::Dtls13) => gio::TlsProtocolVersion::Unknown,
        _ => gio::TlsProtocolVersion::Unknown,
    }
}

fn strv(value: &glib::Value) -> Vec<String> {
    value
        .get::<glib::StrV>()
        .map(|v| v.iter().map(|p| p.to_string()).collect())
        .unwrap_or_default()
}

/// A DTLS failure as GIO reports it; `handshaking` for failures before the association.
pub fn gio_error(e: &GioError, handshaking: bool) -> glib::Error {
    use gio::IOErrorEnum as Io;
    match e {
        GioError::Closed => glib::Error::new(Io::Closed, "The connection is closed"),
        GioError::Cancelled => glib::Error::new(Io::Cancelled, "Operation was cancelled"),
        GioError::TimedOut => glib::Error::new(Io::TimedOut, "Operation timed out"),
        GioError::WouldBlock => glib::Error::new(Io::WouldBlock, "Operation would block"),
        GioError::Eof => errors::eof(),
        GioError::CertificateRequired => glib::Error::new(
            gio::TlsError::CertificateRequired,
            "The server requires a client certificate",
        ),
        GioError::BadCertificate(_) => glib::Error::new(
            gio::TlsError::BadCertificate,
            "Unacceptable TLS certificate",
        ),
        GioError::Tls(e) if handshaking => errors::handshake(e),
        GioError::Tls(e) => errors::io(e),
        GioError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            glib::Error::new(Io::ConnectionRefused, &e.to_string())
        }
        other => glib::Error::new(Io::Failed, &other.to_string()),
    }
}

/// A timeout in GIO's microseconds (-1 blocks, 0 does not).
pub fn timeout(micros: i64) -> Timeout {
    match micros {
        t if t < 0 => Timeout::Block,
        0 => Timeout::NonBlocking,
        t => Timeout::after(std::time::Duration::from_micros(t as u64)),
    }
}
