//! `FerrosslClientConnection`: GTlsClientConnection over any GIOStream.
//!
//! Properties live here; the I/O is the shared [`Core`]'s. The peer's certificate is judged
//! during the handshake, from the engine's verify callback: GIO's verdict (the connection's
//! database, `server-identity`) and, when it finds problems, the `accept-certificate` signal
//! decide, so a refused certificate fails the handshake with the matching alert.

use std::ffi::{c_char, CString};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ferrossl::constants::*;
use ferrossl::verify::VerifyCallback;
use ferrossl::{Connection, Context, Method, X509};
use gio::prelude::*;
use gio::subclass::prelude::*;
use glib::translate::IntoGlib;

use crate::certificate::{key_of, x509_of, Certificate};
use crate::core::Core;
use crate::database::store_of;
use crate::identity::host_of;
use crate::shared::Shared;
use crate::{streams, tls_class};

/// What the application configured.
#[derive(Default)]
struct Settings {
    database: Option<gio::TlsDatabase>,
    interaction: Option<gio::TlsInteraction>,
    certificate: Option<gio::TlsCertificate>,
    advertised: Vec<String>,
    server_identity: Option<gio::SocketConnectable>,
    validation_flags: u32,
    rehandshake_mode: i32,
}

/// What the handshake learnt of the peer.
struct Peer {
    certificate: Option<gio::TlsCertificate>,
    errors: gio::TlsCertificateFlags,
}

impl Default for Peer {
    fn default() -> Self {
        Self {
            certificate: None,
            errors: gio::TlsCertificateFlags::empty(),
        }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct ClientConnection {
        pub(crate) core: Arc<Core>,
        settings: Mutex<Shared<Settings>>,
        peer: Mutex<Shared<Peer>>,
        streams: OnceLock<Shared<(gio::InputStream, gio::OutputStream)>>,
        /// For `g_tls_connection_get_negotiated_protocol`, which returns a borrowed string.
        negotiated: OnceLock<CString>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ClientConnection {
        const NAME: &'static str = "FerrosslClientConnection";
        type Type = super::ClientConnection;
        type ParentType = gio::TlsConnection;
        type Interfaces = (gio::Initable, gio::TlsClientConnection);
    }

    const CONNECTION_PROPERTIES: [&str; 13] = [
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

    const CLIENT_PROPERTIES: [&str; 4] = [
        "validation-flags",
        "server-identity",
        "use-ssl3",
        "accepted-cas",
    ];

    impl ObjectImpl for ClientConnection {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                let connection = CONNECTION_PROPERTIES
                    .iter()
                    .map(|n| glib::ParamSpecOverride::for_class::<gio::TlsConnection>(n));
                let client = CLIENT_PROPERTIES
                    .iter()
                    .map(|n| glib::ParamSpecOverride::for_interface::<gio::TlsClientConnection>(n));
                connection.chain(client).collect()
            })
        }

        fn constructed(&self) {
            self.parent_constructed();
            self.core.set_require_close_notify(true);
            self.settings().database = Some(default_database());
            let obj = self.obj();
            let (input, output) = streams::pair(&self.core, obj.upcast_ref());
            let _ = self.streams.set(Shared((input, output)));
        }

        #[allow(deprecated)] // rehandshake-mode, use-system-certdb, validation-flags, use-ssl3
        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut settings = self.settings();
            match pspec.name() {
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
                    settings.database = use_it.then(default_database);
                }
                "database" => settings.database = value.get().expect("database"),
                "interaction" => settings.interaction = value.get().expect("interaction"),
                "certificate" => settings.certificate = value.get().expect("certificate"),
                "advertised-protocols" => {
                    settings.advertised = value
                        .get::<glib::StrV>()
                        .expect("strv")
                        .iter()
                        .map(|p| p.to_string())
                        .collect()
                }
                "validation-flags" => {
                    settings.validation_flags = value
                        .get::<gio::TlsCertificateFlags>()
                        .expect("flags")
                        .bits()
                }
                "server-identity" => settings.server_identity = value.get().expect("identity"),
                "use-ssl3" => {}
                other => unreachable!("{other} is read-only"),
            }
        }

        #[allow(deprecated)]
        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let name = pspec.name();
            if let Some(value) = self.session_property(name) {
                return value;
            }
            let settings = self.settings();
            match name {
                "base-io-stream" => self.core.base_stream().to_value(),
                "require-close-notify" => self.core.require_close_notify().to_value(),
                "rehandshake-mode" => {
                    // SAFETY: the stored value came from a valid GTlsRehandshakeMode.
                    let mode: gio::TlsRehandshakeMode =
                        unsafe { glib::translate::from_glib(settings.rehandshake_mode) };
                    mode.to_value()
                }
                "use-system-certdb" => {
                    (settings.database.as_ref() == Some(&default_database())).to_value()
                }
                "database" => settings.database.to_value(),
                "interaction" => settings.interaction.to_value(),
                "certificate" => settings.certificate.to_value(),
                "peer-certificate" => self.peer().certificate.to_value(),
                "peer-certificate-errors" => self.peer().errors.to_value(),
                "advertised-protocols" => {
                    let list = &settings.advertised;
                    if list.is_empty() {
                        glib::Value::from_type(
                            <glib::StrV as glib::prelude::StaticType>::static_type(),
                        )
                    } else {
                        glib::StrV::from(list.clone()).to_value()
                    }
                }
                "validation-flags" => {
                    gio::TlsCertificateFlags::from_bits_truncate(settings.validation_flags)
                        .to_value()
                }
                "server-identity" => settings.server_identity.to_value(),
                "use-ssl3" => false.to_value(),
                // A GList of DER names; this backend has none to give yet.
                "accepted-cas" => glib::Value::from_type(glib::Type::POINTER),
                other => unreachable!("no property {other}"),
            }
        }
    }

    impl IOStreamImpl for ClientConnection {
        fn input_stream(&self) -> gio::InputStream {
            self.streams
                .get()
                .expect("made in constructed")
                .0
                 .0
                .clone()
        }

        fn output_stream(&self) -> gio::OutputStream {
            self.streams
                .get()
                .expect("made in constructed")
                .0
                 .1
                .clone()
        }

        fn close(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            self.core.close(cancellable)
        }
    }

    impl InitableImpl for ClientConnection {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            match self.core.base_stream() {
                Some(_) => Ok(()),
                None => Err(glib::Error::new(
                    gio::IOErrorEnum::InvalidArgument,
                    "A TLS connection needs a base-io-stream",
                )),
            }
        }
    }

    impl ClientConnection {
        fn settings(&self) -> MutexGuard<'_, Shared<Settings>> {
            self.settings.lock().unwrap_or_else(|e| e.into_inner())
        }

        fn peer(&self) -> MutexGuard<'_, Shared<Peer>> {
            self.peer.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The properties the engine knows; defaults before the handshake, and while one
        /// runs (a signal handler may ask).
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
                "ciphersuite-name" => {
                    read(&|c| ciphersuite(c).to_value(), None::<String>.to_value())
                }
                _ => None,
            }
        }

        /// The handshake, creating the engine from the current settings.
        pub(crate) fn handshake(
            &self,
            cancellable: Option<&gio::Cancellable>,
        ) -> Result<(), glib::Error> {
            let first = !self.core.handshake_done();
            let result = self.core.handshake(|| self.engine(), cancellable);
            if let Some(session) = self.core.try_session() {
                if let Some(protocol) = session.established().and_then(negotiated_protocol) {
                    let _ = self
                        .negotiated
                        .set(CString::new(protocol).unwrap_or_default());
                }
            }
            if first {
                self.notify_handshake_properties();
            }
            result
        }

        /// Tells watchers (libsoup follows these) what the handshake changed; no lock is held.
        fn notify_handshake_properties(&self) {
            let obj = self.obj();
            for name in [
                "peer-certificate",
                "peer-certificate-errors",
                "negotiated-protocol",
                "protocol-version",
                "ciphersuite-name",
            ] {
                obj.notify(name);
            }
        }

        pub(crate) fn negotiated_ptr(&self) -> *const c_char {
            self.negotiated
                .get()
                .map_or(std::ptr::null(), |s| s.as_ptr())
        }

        fn engine(&self) -> Result<Connection, glib::Error> {
            let tls_error =
                |e: ferrossl::Error| glib::Error::new(gio::TlsError::Misc, &e.to_string());
            let settings = self.settings();
            let context = Context::new(Method::Tls);
            // Our database's anchors also let the engine pick the alert for a refusal.
            if let Some(store) = settings.database.as_ref().and_then(store_of) {
                context.set_cert_store(store);
            }
            if let Some(certificate) = &settings.certificate {
                use_identity(&context, certificate)?;
            }
            if !settings.advertised.is_empty() {
                let protocols: Vec<&[u8]> =
                    settings.advertised.iter().map(|p| p.as_bytes()).collect();
                context.set_alpn_protos(&protocols).map_err(tls_error)?;
            }
            let host = settings.server_identity.as_ref().and_then(host_of);
            drop(settings);
            let mut conn = Connection::new(&context).map_err(tls_error)?;
            conn.set_connect_state().map_err(tls_error)?;
            conn.set_verify(VERIFY_PEER, Some(self.verifier()))
                .map_err(tls_error)?;
            // SNI carries host names only (RFC 6066 §3); a name it cannot carry is not sent.
            if let Some(host) = host.filter(|h| h.parse::<std::net::IpAddr>().is_err()) {
                let _ = conn.set_tlsext_host_name(&host);
            }
            Ok(conn)
        }

        /// The engine's verify callback: collects the chain, top first, and decides at the
        /// peer's own certificate.
        fn verifier(&self) -> VerifyCallback {
            let connection = Shared(self.obj().downgrade());
            let collected = Arc::new(Mutex::new(Vec::new()));
            Arc::new(move |params| {
                let mut chain = collected.lock().unwrap_or_else(|e| e.into_inner());
                chain.push(params.cert.clone());
                if params.depth > 0 {
                    return true;
                }
                let presented: Vec<X509> = chain.drain(..).rev().collect();
                drop(chain);
                // The callback runs inside the handshake this connection object started.
                let connection = &connection;
                connection
                    .0
                    .upgrade()
                    .is_some_and(|c| c.imp().accept_peer(&presented))
            })
        }

        /// GIO's decision on the peer's chain: the database's verdict, then, if it found
        /// problems, the accept-certificate signal.
        fn accept_peer(&self, chain: &[X509]) -> bool {
            let Some(certificate) = Certificate::from_chain(chain) else {
                return false;
            };
            let (database, identity, interaction) = {
                let s = self.settings();
                (
                    s.database.clone(),
                    s.server_identity.clone(),
                    s.interaction.clone(),
                )
            };
            let mut errors = match &database {
                Some(db) => db
                    .verify_chain(
                        &certificate,
                        gio::TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER,
                        identity.as_ref(),
                        interaction.as_ref(),
                        gio::TlsDatabaseVerifyFlags::NONE,
                        gio::Cancellable::NONE,
                    )
                    .unwrap_or(gio::TlsCertificateFlags::GENERIC_ERROR),
                None => {
                    gio::TlsCertificateFlags::UNKNOWN_CA
                        | certificate.verify(identity.as_ref(), None::<&gio::TlsCertificate>)
                }
            };
            if identity.is_none() {
                errors |= gio::TlsCertificateFlags::BAD_IDENTITY;
            }
            {
                let mut peer = self.peer();
                peer.certificate = Some(certificate.clone());
                peer.errors = errors;
            }
            errors.is_empty()
                || self
                    .obj()
                    .emit_by_name::<bool>("accept-certificate", &[&certificate, &errors])
        }
    }
}

glib::wrapper! {
    /// A TLS client connection.
    pub struct ClientConnection(ObjectSubclass<imp::ClientConnection>)
        @extends gio::TlsConnection, gio::IOStream,
        @implements gio::Initable, gio::TlsClientConnection;
}

// SAFETY: GTlsClientConnectionInterface's one slot gets a function of its C signature.
unsafe impl IsImplementable<imp::ClientConnection> for gio::TlsClientConnection {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        iface.as_mut().copy_session_state = Some(tls_class::copy_session_state);
    }
}

// SAFETY: GTlsConnectionClass is the class struct of gio::TlsConnection; `tls_class` fills
// its slots with functions of their C signatures.
unsafe impl IsSubclassable<imp::ClientConnection> for gio::TlsConnection {
    fn class_init(class: &mut glib::Class<Self>) {
        Self::parent_class_init::<imp::ClientConnection>(class);
        tls_class::install(class.as_mut());
    }
}

impl ClientConnection {
    /// Runs the handshake (the `handshake` vfunc).
    pub fn handshake_now(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
        self.imp().handshake(cancellable)
    }

    /// The negotiated ALPN protocol, borrowed from the connection (NULL for none).
    pub fn negotiated_ptr(&self) -> *const c_char {
        self.imp().negotiated_ptr()
    }
}

/// The backend's default database.
fn default_database() -> gio::TlsDatabase {
    gio::TlsBackend::default().default_database()
}

/// Presents `certificate` (with its issuers) and its key when the server asks.
fn use_identity(context: &Context, certificate: &gio::TlsCertificate) -> Result<(), glib::Error> {
    let chain = crate::certificate::chain_of(certificate);
    let key = key_of(certificate).ok_or_else(|| {
        glib::Error::new(
            gio::TlsError::BadCertificate,
            "The certificate has no private key",
        )
    })?;
    let leaf = x509_of(certificate).expect("a chain has its leaf");
    context.use_certificate(leaf);
    for extra in chain.into_iter().skip(1) {
        context.add_extra_chain_cert(extra);
    }
    context.use_privatekey(key);
    Ok(())
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
