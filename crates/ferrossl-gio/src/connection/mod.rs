//! What client and server connections share: their settings and properties, the handshake
//! with GIO's certificate decision, and the streams. `client.rs` and `server.rs` are the
//! GObject types around it.
//!
//! The peer's certificate is judged during the handshake, from the engine's verify callback:
//! GIO's verdict (the connection's database, and for a client `server-identity`) and, when it
//! finds problems, the `accept-certificate` signal decide, so that a refused certificate fails
//! the handshake with the matching alert.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ferrossl::constants::*;
use ferrossl::gio::{channel_binding_data, ChannelBindingType, GioError};
use ferrossl::Connection;
use gio::prelude::*;
use glib::translate::{from_glib, IntoGlib};

use crate::caller::CallerContext;
use crate::certificate::x509_of;
use crate::core::Core;
use crate::shared::Shared;
use crate::streams;
use crate::values;
use crate::verdict::{Judging, Peer};

mod engine;
mod peer;

/// Which end of the connection this is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The properties GTlsConnection declares and leaves to its implementations.
pub const CONNECTION_PROPERTIES: [&str; 13] = [
    "base-io-stream",
    "require-close-notify",
    "rehandshake-mode",
    "use-system-certdb",
    "database",
    "interaction",
    "certificate",
    "peer-certificate",
    "peer-certificate-errors",
    "advertised-protocols",
    "negotiated-protocol",
    "protocol-version",
    "ciphersuite-name",
];

/// What the application configured.
struct Settings {
    judging: Judging,
    certificate: Option<gio::TlsCertificate>,
    advertised: Vec<String>,
    authentication_mode: gio::TlsAuthenticationMode,
    rehandshake_mode: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            judging: Judging::with(None),
            certificate: None,
            advertised: Vec::new(),
            authentication_mode: gio::TlsAuthenticationMode::None,
            rehandshake_mode: 1, // G_TLS_REHANDSHAKE_SAFELY
        }
    }
}

/// One connection's state, inside its GObject.
#[derive(Default)]
pub struct Common {
    core: Arc<Core>,
    settings: Mutex<Shared<Settings>>,
    peer: Mutex<Shared<Peer>>,
    streams: OnceLock<Shared<(gio::InputStream, gio::OutputStream)>>,
    /// For `g_tls_connection_get_negotiated_protocol`, which returns a borrowed string.
    negotiated: OnceLock<CString>,
    /// The main context of the caller of an asynchronous handshake, where its signals and
    /// notifications belong while the handshake itself runs in a worker thread.
    caller: CallerContext,
    /// A worker thread finished the handshake: the caller's `handshake_finish` notifies.
    notify_pending: AtomicBool,
    /// A client's session to resume (`copy_session_state`).
    resume: Mutex<Option<ferrossl::session::Session>>,
    /// A client's certificate request during the handshake: the CA names the server listed
    /// (`accepted-cas` while the handshake holds the engine), whether the client had no
    /// certificate to send, and the error of the interaction asked for one, if it failed.
    request: Mutex<Shared<CertificateRequest>>,
}

/// What a client learnt when the server asked for its certificate.
#[derive(Default)]
struct CertificateRequest {
    accepted_cas: Option<Vec<ferrossl::X509Name>>,
    missing_certificate: bool,
    interaction_error: Option<glib::Error>,
}

/// The shared state of a connection object of ours.
pub fn common_of(conn: &gio::TlsConnection) -> Option<(&Common, Role)> {
    use glib::subclass::prelude::ObjectSubclassIsExt;
    if let Some(client) = conn.downcast_ref::<crate::client::ClientConnection>() {
        return Some((client.imp().common(), Role::Client));
    }
    conn.downcast_ref::<crate::server::ServerConnection>()
        .map(|server| (server.imp().common(), Role::Server))
}

impl Common {
    fn settings(&self) -> MutexGuard<'_, Shared<Settings>> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn peer(&self) -> MutexGuard<'_, Shared<Peer>> {
        self.peer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request(&self) -> MutexGuard<'_, Shared<CertificateRequest>> {
        self.request.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// GObject's `constructed`: GIO's defaults, and the streams.
    pub fn constructed(&self, conn: &gio::TlsConnection) {
        self.core.set_require_close_notify(true);
        // Peers are verified against the system's trust store unless told otherwise (a server
        // too, when it asks for client certificates), as with GIO's other backends.
        self.settings().judging.database = Some(default_database());
        let (input, output) = streams::pair(&self.core, conn);
        let _ = self.streams.set(Shared((input, output)));
    }

    /// GInitable's `init`: a connection needs its base stream.
    pub fn init(&self) -> Result<(), glib::Error> {
        match self.core.base_stream() {
            Some(_) => Ok(()),
            None => Err(glib::Error::new(
                gio::IOErrorEnum::InvalidArgument,
                "A TLS connection needs a base-io-stream",
            )),
        }
    }

    pub fn input_stream(&self) -> gio::InputStream {
        self.streams
            .get()
            .expect("made in constructed")
            .0
             .0
            .clone()
    }

    pub fn output_stream(&self) -> gio::OutputStream {
        self.streams
            .get()
            .expect("made in constructed")
            .0
             .1
            .clone()
    }

    pub fn close(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
        self.core.close(cancellable)
    }

    /// Sets a writable property of GTlsConnection, GTlsClientConnection or
    /// GTlsServerConnection.
    #[allow(deprecated)] // rehandshake-mode, use-system-certdb, validation-flags, use-ssl3
    pub fn set_property(&self, name: &str, value: &glib::Value) {
        let mut settings = self.settings();
        match name {
            "base-io-stream" => {
                if let Ok(Some(stream)) = value.get::<Option<gio::IOStream>>() {
                    self.core.set_base(stream);
                }
            }
            "require-close-notify" => self
                .core
                .set_require_close_notify(value.get().expect("bool")),
            "rehandshake-mode" => {
                settings.rehandshake_mode = value
                    .get::<gio::TlsRehandshakeMode>()
                    .expect("mode")
                    .into_glib()
            }
            "use-system-certdb" => {
                let use_it: bool = value.get().expect("bool");
                settings.judging.database = use_it.then(default_database);
            }
            "database" => settings.judging.database = value.get().expect("database"),
            "interaction" => settings.judging.interaction = value.get().expect("interaction"),
            "certificate" => settings.certificate = value.get().expect("certificate"),
            "advertised-protocols" => {
                settings.advertised = value
                    .get::<glib::StrV>()
                    .expect("strv")
                    .iter()
                    .map(|p| p.to_string())
                    .collect()
            }
            "validation-flags" => settings.judging.validation_flags = value.get().expect("flags"),
            "server-identity" => settings.judging.server_identity = value.get().expect("identity"),
            "authentication-mode" => settings.authentication_mode = value.get().expect("mode"),
            "use-ssl3" => {}
            other => unreachable!("{other} is read-only"),
        }
    }

    /// Reads a property of GTlsConnection, GTlsClientConnection or GTlsServerConnection.
    #[allow(deprecated)]
    pub fn property(&self, name: &str) -> glib::Value {
        if let Some(value) = self.session_property(name) {
            return value;
        }
        let settings = self.settings();
        match name {
            "base-io-stream" => self.core.base_stream().to_value(),
            "require-close-notify" => self.core.require_close_notify().to_value(),
            "rehandshake-mode" => {
                // SAFETY: the stored value came from a valid GTlsRehandshakeMode.
                let mode: gio::TlsRehandshakeMode = unsafe { from_glib(settings.rehandshake_mode) };
                mode.to_value()
            }
            "use-system-certdb" => {
                (settings.judging.database.as_ref() == Some(&default_database())).to_value()
            }
            "database" => settings.judging.database.to_value(),
            "interaction" => settings.judging.interaction.to_value(),
            "certificate" => settings.certificate.to_value(),
            "peer-certificate" => self.peer().certificate.to_value(),
            "peer-certificate-errors" => self.peer().errors.to_value(),
            "advertised-protocols" => strv_value(&settings.advertised),
            "validation-flags" => settings.judging.validation_flags.to_value(),
            "server-identity" => settings.judging.server_identity.to_value(),
            "authentication-mode" => settings.authentication_mode.to_value(),
            "use-ssl3" => false.to_value(),
            "accepted-cas" => self.accepted_cas(),
            other => unreachable!("no property {other}"),
        }
    }

    /// The CA names the server sent in its CertificateRequest, DER, in a new GList.
    fn accepted_cas(&self) -> glib::Value {
        let session = self.core.try_session();
        let names = match session.as_ref().and_then(|s| s.engine()) {
            Some(engine) => engine.get_client_ca_list(),
            // The handshake holds the engine: an interaction asked for a certificate reads
            // the names the request carried.
            None => self.request().accepted_cas.clone().unwrap_or_default(),
        };
        let ders: Vec<Vec<u8>> = names.iter().map(|n| n.to_der().to_vec()).collect();
        values::byte_arrays_list(&ders)
    }

    /// The properties the engine knows; defaults before the handshake, and while one runs (a
    /// signal handler may ask).
    fn session_property(&self, name: &str) -> Option<glib::Value> {
        let read = |f: &dyn Fn(&Connection) -> glib::Value, default: glib::Value| {
            let session = self.core.try_session();
            Some(
                session
                    .as_ref()
                    .and_then(|s| s.established())
                    .map_or(default, f),
            )
        };
        match name {
            "negotiated-protocol" => read(
                &|c| negotiated_protocol(c).to_value(),
                None::<String>.to_value(),
            ),
            "protocol-version" => read(
                &|c| protocol_version(c).to_value(),
                gio::TlsProtocolVersion::Unknown.to_value(),
            ),
            "ciphersuite-name" => read(&|c| ciphersuite(c).to_value(), None::<String>.to_value()),
            _ => None,
        }
    }

    /// The handshake, creating the engine from the current settings the first time.
    pub fn handshake(
        &self,
        conn: &gio::TlsConnection,
        role: Role,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<(), glib::Error> {
        let first = !self.core.handshake_done();
        let result = self.core.handshake(|| self.engine(conn, role), cancellable);
        // As glib-networking: a handshake that the server ends after it asked for a
        // certificate the client did not have fails for that reason: the interaction's error
        // when it failed, else G_TLS_ERROR_CERTIFICATE_REQUIRED. (Our own refusal of the
        // server's certificate stays BAD_CERTIFICATE.)
        let refused_by_peer = |e: &glib::Error| {
            e.matches(gio::TlsError::Handshake) || e.matches(gio::TlsError::CertificateRequired)
        };
        let result = match result {
            Err(e) if refused_by_peer(&e) && self.request().missing_certificate => {
                let interaction_error = self.request().interaction_error.take();
                Err(interaction_error.unwrap_or_else(|| {
                    glib::Error::new(
                        gio::TlsError::CertificateRequired,
                        "The server requires a TLS client certificate",
                    )
                }))
            }
            other => other,
        };
        if let Some(session) = self.core.try_session() {
            if let Some(protocol) = session.established().and_then(negotiated_protocol) {
                let _ = self
                    .negotiated
                    .set(CString::new(protocol).unwrap_or_default());
            }
        }
        if first {
            match self.caller.foreign() {
                Some(_) => self.notify_pending.store(true, Ordering::Release),
                None => notify_handshake_properties(conn),
            }
        }
        result
    }

    /// `g_tls_client_connection_copy_session_state`: this client will try to resume the
    /// session of `source`, a connection whose handshake is done. The session is shared: a
    /// TLS 1.3 ticket `source` receives later (with its first read) is there too.
    pub fn copy_session_from(&self, source: &Common) {
        let session = source.core.try_session();
        let shared = session
            .as_ref()
            .and_then(|s| s.established())
            .and_then(Connection::get_session);
        if let Some(shared) = shared {
            *self.resume.lock().unwrap_or_else(|e| e.into_inner()) = Some(shared);
        }
    }

    /// The handshake as far as it goes without blocking (for the pollable streams): Ok once
    /// done, WOULD_BLOCK while it waits for the peer.
    pub fn handshake_nonblocking(
        &self,
        conn: &gio::TlsConnection,
        role: Role,
    ) -> Result<(), glib::Error> {
        if self.core.handshake_done() {
            return Ok(());
        }
        let result = self.core.handshake_nonblocking(|| self.engine(conn, role));
        if result.is_ok() {
            if let Some(protocol) = self
                .core
                .try_session()
                .and_then(|s| s.established().and_then(negotiated_protocol))
            {
                let _ = self
                    .negotiated
                    .set(CString::new(protocol).unwrap_or_default());
            }
            notify_handshake_properties(conn);
        }
        result
    }

    /// An asynchronous handshake starts: remembers the caller's main context.
    pub fn begin_async_handshake(&self) {
        self.caller.begin();
    }

    /// The caller's `handshake_finish`, in its main context: the notifications the worker
    /// thread left.
    pub fn finish_async_handshake(&self, conn: &gio::TlsConnection) {
        self.caller.end();
        if self.notify_pending.swap(false, Ordering::AcqRel) {
            notify_handshake_properties(conn);
        }
    }

    /// Channel binding data of the established connection (`get_binding_data`).
    pub fn binding_data(
        &self,
        kind: ChannelBindingType,
        role: Role,
    ) -> Result<Vec<u8>, glib::Error> {
        use gio::TlsChannelBindingError as E;
        let own = self.settings().certificate.as_ref().and_then(x509_of);
        let session = self.core.try_session();
        let Some(engine) = session.as_ref().and_then(|s| s.established()) else {
            return Err(glib::Error::new(
                E::InvalidState,
                "The TLS handshake has not completed",
            ));
        };
        let server = role == Role::Server;
        channel_binding_data(engine, kind, server, own.as_ref().filter(|_| server)).map_err(|e| {
            let code = match &e {
                GioError::Tls(ferrossl::Error::NotSupported(_)) => E::NotSupported,
                GioError::Tls(ferrossl::Error::Missing(_)) => E::NotAvailable,
                GioError::Tls(ferrossl::Error::WrongState(_)) => E::InvalidState,
                _ => E::GeneralError,
            };
            glib::Error::new(code, &e.to_string())
        })
    }

    pub fn negotiated_ptr(&self) -> *const c_char {
        self.negotiated
            .get()
            .map_or(std::ptr::null(), |s| s.as_ptr())
    }
}

/// Tells watchers (libsoup follows these) what the handshake changed; no lock is held.
fn notify_handshake_properties(conn: &gio::TlsConnection) {
    for name in [
        "peer-certificate",
        "peer-certificate-errors",
        "negotiated-protocol",
        "protocol-version",
        "ciphersuite-name",
    ] {
        conn.notify(name);
    }
}

fn misc(e: ferrossl::Error) -> glib::Error {
    glib::Error::new(gio::TlsError::Misc, &e.to_string())
}

fn strv_value(list: &[String]) -> glib::Value {
    if list.is_empty() {
        glib::Value::from_type(<glib::StrV as StaticType>::static_type())
    } else {
        glib::StrV::from(list.to_vec()).to_value()
    }
}

/// The backend's default database.
fn default_database() -> gio::TlsDatabase {
    gio::TlsBackend::default().default_database()
}

fn negotiated_protocol(conn: &Connection) -> Option<String> {
    conn.get_alpn_proto_negotiated()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
}

fn protocol_version(conn: &Connection) -> gio::TlsProtocolVersion {
    match conn.get_protocol_version() {
        TLS1_2_VERSION => gio::TlsProtocolVersion::Tls12,
        TLS1_3_VERSION => gio::TlsProtocolVersion::Tls13,
        _ => gio::TlsProtocolVersion::Unknown,
    }
}

/// The IANA name of the cipher suite, as GIO documents `ciphersuite-name`.
fn ciphersuite(conn: &Connection) -> Option<String> {
    let name = conn.get_cipher_name()?;
    Some(
        ferrossl::ciphers::by_name(name)
            .map_or(name, |c| c.iana_name)
            .to_string(),
    )
}
