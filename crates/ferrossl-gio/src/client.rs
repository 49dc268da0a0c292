//! `FerrosslClientConnection`: GTlsClientConnection over any GIOStream. The work is
//! [`Common`]'s; this is the GObject type.

use std::sync::OnceLock;

use gio::prelude::*;
use gio::subclass::prelude::*;

use crate::connection::{Common, CONNECTION_PROPERTIES};
use crate::tls_class;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct ClientConnection {
        common: Common,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ClientConnection {
        const NAME: &'static str = "FerrosslClientConnection";
        type Type = super::ClientConnection;
        type ParentType = gio::TlsConnection;
        type Interfaces = (gio::Initable, gio::TlsClientConnection);
    }

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
            self.common.constructed(self.obj().upcast_ref());
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            self.common.set_property(pspec.name(), value);
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            self.common.property(pspec.name())
        }
    }

    impl IOStreamImpl for ClientConnection {
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

    impl InitableImpl for ClientConnection {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            self.common.init()
        }
    }

    impl ClientConnection {
        pub(crate) fn common(&self) -> &Common {
            &self.common
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
