//! `FerrosslBackend`: the GTlsBackend GIO instantiates once per process, which names the
//! types GIO's `g_tls_*_new` functions create.

use gio::ffi::{GTlsBackend, GTlsDatabase};
use glib::ffi::{gboolean, GType, GFALSE, GTRUE};
use glib::prelude::*;
use glib::subclass::prelude::*;
use glib::translate::IntoGlib;

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
        iface.get_certificate_type = Some(no_type);
        iface.get_client_connection_type = Some(no_type);
        iface.get_server_connection_type = Some(no_type);
        iface.get_file_database_type = Some(no_type);
        iface.get_dtls_client_connection_type = Some(no_type);
        iface.get_dtls_server_connection_type = Some(no_type);
    }
}

extern "C" fn supports_tls(_backend: *mut GTlsBackend) -> gboolean {
    GTRUE
}

/// DTLS types are not there yet: say so rather than hand GIO a type it cannot create.
extern "C" fn supports_dtls(_backend: *mut GTlsBackend) -> gboolean {
    GFALSE
}

extern "C" fn default_database(_backend: *mut GTlsBackend) -> *mut GTlsDatabase {
    std::ptr::null_mut()
}

extern "C" fn no_type() -> GType {
    glib::Type::INVALID.into_glib()
}

impl Backend {
    /// The GType GIO's extension point is given.
    pub fn gtype() -> glib::Type {
        Self::static_type()
    }
}
