//! `FerrosslDtlsClientConnection`: GDtlsClientConnection over a GDatagramBased. The work is
//! [`DtlsCommon`]'s; this is the GObject type.

use std::sync::OnceLock;

use gio::subclass::prelude::*;

use crate::dtls::{DtlsCommon, DTLS_PROPERTIES};
use crate::dtls_class;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct DtlsClientConnection {
        common: DtlsCommon,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for DtlsClientConnection {
        const NAME: &'static str = "FerrosslDtlsClientConnection";
        type Type = super::DtlsClientConnection;
        type Interfaces = (
            gio::Initable,
            gio::DatagramBased,
            gio::DtlsConnection,
            gio::DtlsClientConnection,
        );
    }

    const CLIENT_PROPERTIES: [&str; 3] = ["validation-flags", "server-identity", "accepted-cas"];

    impl ObjectImpl for DtlsClientConnection {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                let dtls = DTLS_PROPERTIES
                    .iter()
                    .map(|n| glib::ParamSpecOverride::for_interface::<gio::DtlsConnection>(n));
                let client = CLIENT_PROPERTIES.iter().map(|n| {
                    glib::ParamSpecOverride::for_interface::<gio::DtlsClientConnection>(n)
                });
                dtls.chain(client).collect()
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            self.common.set_property(pspec.name(), value);
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            self.common.property(pspec.name())
        }
    }

    impl InitableImpl for DtlsClientConnection {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            self.common.init()
        }
    }

    impl DtlsClientConnection {
        pub(crate) fn common(&self) -> &DtlsCommon {
            &self.common
        }
    }
}

glib::wrapper! {
    /// A DTLS client connection.
    pub struct DtlsClientConnection(ObjectSubclass<imp::DtlsClientConnection>)
        @implements gio::Initable, gio::DatagramBased, gio::DtlsConnection,
            gio::DtlsClientConnection;
}

// SAFETY: GDtlsClientConnectionInterface has no methods, only properties.
unsafe impl IsImplementable<imp::DtlsClientConnection> for gio::DtlsClientConnection {}

// SAFETY: `dtls_class` fills GDtlsConnectionInterface with functions of its slots' C
// signatures.
unsafe impl IsImplementable<imp::DtlsClientConnection> for gio::DtlsConnection {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        dtls_class::install_dtls(iface.as_mut());
    }
}

// SAFETY: `dtls_class` fills GDatagramBasedInterface with functions of its slots' C
// signatures.
unsafe impl IsImplementable<imp::DtlsClientConnection> for gio::DatagramBased {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        dtls_class::install_datagram(iface.as_mut());
    }
}
