//! `FerrosslServerConnection`: GTlsServerConnection over any GIOStream. The work is
//! [`Common`]'s; this is the GObject type.

use std::sync::OnceLock;

use gio::prelude::*;
use gio::subclass::prelude::*;

use crate::connection::{Common, CONNECTION_PROPERTIES};
use crate::tls_class;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct ServerConnection {
        common: Common,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ServerConnection {
        const NAME: &'static str = "FerrosslServerConnection";
        type Type = super::ServerConnection;
        type ParentType = gio::TlsConnection;
        type Interfaces = (gio::Initable, gio::TlsServerConnection);
    }

    const SERVER_PROPERTIES: [&str; 1] = ["authentication-mode"];

    impl ObjectImpl for ServerConnection {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                let connection = CONNECTION_PROPERTIES
                    .iter()
                    .map(|n| glib::ParamSpecOverride::for_class::<gio::TlsConnection>(n));
                let server = SERVER_PROPERTIES
                    .iter()
                    .map(|n| glib::ParamSpecOverride::for_interface::<gio::TlsServerConnection>(n));
                connection.chain(server).collect()
            })
        }

        fn constructed(&self) {
            self.parent_constructed();
            self.common.constructed(self.obj().upcast_ref());
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            self.common.set_property(pspec.name(), value);
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            self.common.property(pspec.name())
        }
    }

    impl IOStreamImpl for ServerConnection {
        fn input_stream(&self) -> gio::InputStream {
            self.common.input_stream()
        }

        fn output_stream(&self) -> gio::OutputStream {
            self.common.output_stream()
        }

        fn close(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            self.common.close(cancellable)
        }
    }

    impl InitableImpl for ServerConnection {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            self.common.init()
        }
    }

    impl ServerConnection {
        pub(crate) fn common(&self) -> &Common {
            &self.common
        }
    }
}

glib::wrapper! {
    /// A TLS server connection.
    pub struct ServerConnection(ObjectSubclass<imp::ServerConnection>)
        @extends gio::TlsConnection, gio::IOStream,
        @implements gio::Initable, gio::TlsServerConnection;
}

// SAFETY: GTlsServerConnectionInterface has no methods, only `authentication-mode`.
unsafe impl IsImplementable<imp::ServerConnection> for gio::TlsServerConnection {}

// SAFETY: GTlsConnectionClass is the class struct of gio::TlsConnection; `tls_class` fills
// its slots with functions of their C signatures.
unsafe impl IsSubclassable<imp::ServerConnection> for gio::TlsConnection {
    fn class_init(class: &mut glib::Class<Self>) {
        Self::parent_class_init::<imp::ServerConnection>(class);
        tls_class::install(class.as_mut());
    }
}
