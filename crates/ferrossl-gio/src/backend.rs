//! `FerrosslBackend`: the GTlsBackend GIO instantiates once per process, which names the
//! types GIO's `g_tls_*_new` functions create.

use gio::ffi::{GTlsBackend, GTlsDatabase};
use glib::ffi::{gboolean, GType, GTRUE};
use glib::prelude::*;
use glib::subclass::prelude::*;
use std::sync::OnceLock;

use glib::translate::{IntoGlib, IntoGlibPtr};

use crate::database::FileDatabase;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct Backend {}

    #[glib::object_subclass]
    impl ObjectSubclass for Backend {
        const NAME: &'static str = "FerrosslBackend";
        type Type = super::Backend;
        type Interfaces = (gio::TlsBackend,);
    }

    impl ObjectImpl for Backend {}
}

glib::wrapper! {
    /// The TLS backend object.
    pub struct Backend(ObjectSubclass<imp::Backend>) @implements gio::TlsBackend;
}

// SAFETY: GTlsBackendInterface is the interface struct of gio::TlsBackend, and every function
// stored in it below has exactly the C signature of its slot.
unsafe impl IsImplementable<imp::Backend> for gio::TlsBackend {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        let iface = iface.as_mut();
        iface.supports_tls = Some(supports_tls);
        iface.supports_dtls = Some(supports_dtls);
        iface.get_default_database = Some(default_database);
        iface.get_certificate_type = Some(certificate_type);
        iface.get_client_connection_type = Some(client_connection_type);
        iface.get_server_connection_type = Some(server_connection_type);
        iface.get_file_database_type = Some(file_database_type);
        iface.get_dtls_client_connection_type = Some(dtls_client_connection_type);
        iface.get_dtls_server_connection_type = Some(dtls_server_connection_type);
    }
}

extern "C" fn supports_tls(_backend: *mut GTlsBackend) -> gboolean {
    GTRUE
}

extern "C" fn supports_dtls(_backend: *mut GTlsBackend) -> gboolean {
    GTRUE
}

/// The system's trust store, loaded once per process and shared (transfer full).
extern "C" fn default_database(_backend: *mut GTlsBackend) -> *mut GTlsDatabase {
    static DEFAULT: OnceLock<SharedDatabase> = OnceLock::new();
    let database = DEFAULT.get_or_init(|| SharedDatabase(FileDatabase::system()));
    // SAFETY: a new reference for the caller, which owns it (transfer full).
    unsafe { database.0.clone().into_glib_ptr() }
}

/// The default database, shared by every thread that asks for it.
struct SharedDatabase(gio::TlsDatabase);

// SAFETY: GObject reference counting is atomic, and our database's state is a thread-safe
// store that is never changed after construction; gtk-rs marks GObjects !Send only because it
// cannot know that of every class.
unsafe impl Send for SharedDatabase {}
// SAFETY: as for Send: the shared object is only cloned (a reference taken) through `&`.
unsafe impl Sync for SharedDatabase {}

extern "C" fn file_database_type() -> GType {
    FileDatabase::static_type().into_glib()
}

extern "C" fn certificate_type() -> GType {
    crate::certificate::Certificate::static_type().into_glib()
}

extern "C" fn client_connection_type() -> GType {
    crate::client::ClientConnection::static_type().into_glib()
}

extern "C" fn server_connection_type() -> GType {
    crate::server::ServerConnection::static_type().into_glib()
}

extern "C" fn dtls_client_connection_type() -> GType {
    crate::dtls_client::DtlsClientConnection::static_type().into_glib()
}

extern "C" fn dtls_server_connection_type() -> GType {
    crate::dtls_server::DtlsServerConnection::static_type().into_glib()
}

impl Backend {
    /// The GType GIO's extension point is given.
    pub fn gtype() -> glib::Type {
        Self::static_type()
    }
}
