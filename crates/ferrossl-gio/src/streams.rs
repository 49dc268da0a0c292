//! The connection's input and output streams: reads and writes of plaintext, each running
//! the handshake first if it has not run (GIO's implicit handshake).

use std::sync::{Arc, OnceLock};

use gio::prelude::*;
use gio::subclass::prelude::*;

use crate::core::Core;
use crate::shared::Shared;

/// What a stream needs: the connection's core, and the connection (weakly: it owns the
/// streams) to run an implicit handshake through.
struct Link {
    core: Arc<Core>,
    connection: Shared<glib::WeakRef<gio::TlsConnection>>,
}

impl Link {
    fn ensure_handshake(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
        if self.core.handshake_done() {
            return Ok(());
        }
        match self.connection.0.upgrade() {
            Some(connection) => connection.handshake(cancellable),
            None => Err(glib::Error::new(
                gio::IOErrorEnum::Closed,
                "The TLS connection is gone",
            )),
        }
    }
}

fn link(cell: &OnceLock<Link>) -> Result<&Link, glib::Error> {
    cell.get()
        .ok_or_else(|| glib::Error::new(gio::IOErrorEnum::NotInitialized, "Stream not attached"))
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct TlsInputStream {
        pub(super) link: OnceLock<Link>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for TlsInputStream {
        const NAME: &'static str = "FerrosslInputStream";
        type Type = super::TlsInputStream;
        type ParentType = gio::InputStream;
    }

    impl ObjectImpl for TlsInputStream {}

    impl InputStreamImpl for TlsInputStream {
        fn read(
            &self,
            buffer: &mut [u8],
            cancellable: Option<&gio::Cancellable>,
        ) -> Result<usize, glib::Error> {
            let link = link(&self.link)?;
            link.ensure_handshake(cancellable)?;
            link.core.read(buffer, cancellable)
        }

        // Closing one half closes nothing: the connection's close sends close_notify.
        fn close(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            Ok(())
        }
    }

    #[derive(Default)]
    pub struct TlsOutputStream {
        pub(super) link: OnceLock<Link>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for TlsOutputStream {
        const NAME: &'static str = "FerrosslOutputStream";
        type Type = super::TlsOutputStream;
        type ParentType = gio::OutputStream;
    }

    impl ObjectImpl for TlsOutputStream {}

    impl OutputStreamImpl for TlsOutputStream {
        fn write(
            &self,
            buffer: &[u8],
            cancellable: Option<&gio::Cancellable>,
        ) -> Result<usize, glib::Error> {
            let link = link(&self.link)?;
            link.ensure_handshake(cancellable)?;
            link.core.write(buffer, cancellable)
        }

        // Every write is sent at once.
        fn flush(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            Ok(())
        }

        fn close(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            Ok(())
        }
    }
}

glib::wrapper! {
    /// Plaintext from the peer.
    pub struct TlsInputStream(ObjectSubclass<imp::TlsInputStream>) @extends gio::InputStream;
}

glib::wrapper! {
    /// Plaintext to the peer.
    pub struct TlsOutputStream(ObjectSubclass<imp::TlsOutputStream>) @extends gio::OutputStream;
}

/// The two streams of `connection`, over `core`.
pub fn pair(
    core: &Arc<Core>,
    connection: &gio::TlsConnection,
) -> (gio::InputStream, gio::OutputStream) {
    let make_link = || Link {
        core: core.clone(),
        connection: Shared(connection.downgrade()),
    };
    let input: TlsInputStream = glib::Object::new();
    let _ = input.imp().link.set(make_link());
    let output: TlsOutputStream = glib::Object::new();
    let _ = output.imp().link.set(make_link());
    (input.upcast(), output.upcast())
}
