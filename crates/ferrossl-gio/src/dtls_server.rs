//! `FerrosslDtlsServerConnection`: GDtlsServerConnection over a GDatagramBased. The work is
//! [`DtlsCommon`]'s; this is the GObject type.

use std::sync::OnceLock;

use gio::subclass::prelude::*;

use crate::dtls::{DtlsCommon, DTLS_PROPERTIES};
use crate::dtls_class;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct DtlsServerConnection {
        common: DtlsCommon,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for DtlsServerConnection {
        const NAME: &'static str = "FerrosslDtlsServerConnection";
        type Type = super::DtlsServerConnection;
        type Interfaces = (
            gio::Initable,
            gio::DatagramBased,
            gio::DtlsConnection,
            gio::DtlsServerConnection,
        );
    }

    const SERVER_PROPERTIES: [&str; 1] = ["authentication-mode"];

    impl ObjectImpl for DtlsServerConnection {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                let dtls = DTLS_PROPERTIES
                    .iter()
                    .map(|n| glib::ParamSpecOverride::for_interface::<gio::DtlsConnection>(n));
                let server = SERVER_PROPERTIES.iter().map(|n| {
                    glib::ParamSpecOverride::for_interface::<gio::DtlsServerConnection>(n)
                });
                dtls.chain(server).collect()
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            self.common.set_property(pspec.name(), value);
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            self.common.property(pspec.name())
        }
    }

    impl InitableImpl for DtlsServerConnection {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            self.common.init()
        }
    }

    impl DtlsServerConnection {
        pub(crate) fn common(&self) -> &DtlsCommon {
            &self.common
        }
    }
}

glib::wrapper! {
    /// A DTLS server connection.
    pub struct DtlsServerConnection(ObjectSubclass<imp::DtlsServerConnection>)
        @implements gio::Initable, gio::DatagramBased, gio::DtlsConnection,
            gio::DtlsServerConnection;
}

// SAFETY: GDtlsServerConnectionInterface has no methods, only `authentication-mode`.
unsafe impl IsImplementable<imp::DtlsServerConnection> for gio::DtlsServerConnection {}

// SAFETY: `dtls_class` fills GDtlsConnectionInterface with functions of its slots' C
// signatures.
unsafe impl IsImplementable<imp::DtlsServerConnection> for gio::DtlsConnection {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        dtls_class::install_dtls(iface.as_mut());
    }
}

// SAFETY: `dtls_class` fills GDatagramBasedInterface with functions of its slots' C
// signatures.
unsafe impl IsImplementable<imp::DtlsServerConnection> for gio::DatagramBased {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        dtls_class::install_datagram(iface.as_mut());
    }
}
