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
    /// The handshake, as far as it goes without blocking (before a non-blocking call).
    fn handshake_nonblocking(&self) -> Result<(), glib::Error> {
        if self.core.handshake_done() {
            return Ok(());
        }
        let gone = || glib::Error::new(gio::IOErrorEnum::Closed, "The TLS connection is gone");
        let connection = self.connection.0.upgrade().ok_or_else(gone)?;
        match crate::connection::common_of(&connection) {
            Some((common, role)) => common.handshake_nonblocking(&connection, role),
            None => Err(gone()),
        }
    }

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
        type Interfaces = (gio::PollableInputStream,);
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
        type Interfaces = (gio::PollableOutputStream,);
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
    pub struct TlsInputStream(ObjectSubclass<imp::TlsInputStream>)
        @extends gio::InputStream, @implements gio::PollableInputStream;
}

glib::wrapper! {
    /// Plaintext to the peer.
    pub struct TlsOutputStream(ObjectSubclass<imp::TlsOutputStream>)
        @extends gio::OutputStream, @implements gio::PollableOutputStream;
}

// SAFETY: GPollableInputStreamInterface is the interface struct of gio::PollableInputStream;
// each function stored has the C signature of its slot.
unsafe impl IsImplementable<imp::TlsInputStream> for gio::PollableInputStream {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        let iface = iface.as_mut();
        iface.can_poll = Some(pollable::input_can_poll);
        iface.is_readable = Some(pollable::is_readable);
        iface.create_source = Some(pollable::input_source);
        iface.read_nonblocking = Some(pollable::read_nonblocking);
    }
}

// SAFETY: as above, for GPollableOutputStreamInterface; `writev_nonblocking` keeps GIO's
// default, which calls `write_nonblocking`.
unsafe impl IsImplementable<imp::TlsOutputStream> for gio::PollableOutputStream {
    fn interface_init(iface: &mut glib::Interface<Self>) {
        let iface = iface.as_mut();
        iface.can_poll = Some(pollable::output_can_poll);
        iface.is_writable = Some(pollable::is_writable);
        iface.create_source = Some(pollable::output_source);
        iface.write_nonblocking = Some(pollable::write_nonblocking);
    }
}

/// The pollable interfaces' functions: non-blocking I/O through the core.
mod pollable {
    use gio::ffi::{GCancellable, GPollableInputStream, GPollableOutputStream};
    use glib::ffi::{gboolean, GError, GSource};
    use glib::translate::{from_glib_borrow, Borrowed, IntoGlib, IntoGlibPtr, ToGlibPtr};

    use super::*;

    /// Runs `f` with the link of the input stream GIO passed.
    ///
    /// # Safety
    /// `stream` must be a live `TlsInputStream`, borrowed for the call.
    unsafe fn with_input<R>(
        stream: *mut GPollableInputStream,
        f: impl FnOnce(Option<&Link>) -> R,
    ) -> R {
        // SAFETY: the caller's guarantee.
        let stream: Borrowed<gio::InputStream> = unsafe { from_glib_borrow(stream.cast()) };
        f(stream
            .downcast_ref::<TlsInputStream>()
            .and_then(|s| s.imp().link.get()))
    }

    /// Runs `f` with the link of the output stream GIO passed.
    ///
    /// # Safety
    /// `stream` must be a live `TlsOutputStream`, borrowed for the call.
    unsafe fn with_output<R>(
        stream: *mut GPollableOutputStream,
        f: impl FnOnce(Option<&Link>) -> R,
    ) -> R {
        // SAFETY: the caller's guarantee.
        let stream: Borrowed<gio::OutputStream> = unsafe { from_glib_borrow(stream.cast()) };
        f(stream
            .downcast_ref::<TlsOutputStream>()
            .and_then(|s| s.imp().link.get()))
    }

    /// A GSource for our stream that wakes with `child` (or at once without one).
    ///
    /// # Safety
    /// `stream` must be a live stream of ours and `cancellable` NULL or a live cancellable.
    unsafe fn source(
        stream: *mut glib::gobject_ffi::GObject,
        child: Option<glib::Source>,
        cancellable: *mut GCancellable,
    ) -> *mut GSource {
        // SAFETY: the caller's guarantee; g_pollable_source_new_full takes its own reference
        // to the child (ours drops at the end) and returns a new source, which the caller owns.
        unsafe {
            let child_ptr: *mut GSource = child
                .as_ref()
                .map_or(std::ptr::null_mut(), |c| c.to_glib_none().0);
            let source = gio::ffi::g_pollable_source_new_full(stream, child_ptr, cancellable);
            if child.is_none() {
                glib::ffi::g_source_set_ready_time(source, 0);
            }
            source
        }
    }

    /// Stores `result`'s error for GIO, and returns the byte count or -1.
    ///
    /// # Safety
    /// `error` must be NULL or point to a NULL `GError*`.
    unsafe fn report(result: Result<usize, glib::Error>, error: *mut *mut GError) -> isize {
        match result {
            Ok(n) => n as isize,
            Err(e) => {
                if !error.is_null() {
                    // SAFETY: the caller's guarantee; GIO owns the stored error.
                    unsafe { *error = e.into_glib_ptr() };
                }
                -1
            }
        }
    }

    pub unsafe extern "C" fn input_can_poll(stream: *mut GPollableInputStream) -> gboolean {
        // SAFETY: GIO calls with our live input stream.
        unsafe { with_input(stream, |l| l.is_some_and(|l| l.core.can_poll())) }.into_glib()
    }

    pub unsafe extern "C" fn is_readable(stream: *mut GPollableInputStream) -> gboolean {
        // SAFETY: GIO calls with our live input stream.
        unsafe { with_input(stream, |l| l.is_some_and(|l| l.core.is_readable())) }.into_glib()
    }

    pub unsafe extern "C" fn input_source(
        stream: *mut GPollableInputStream,
        cancellable: *mut GCancellable,
    ) -> *mut GSource {
        // SAFETY: GIO calls with our live input stream and an optional cancellable.
        unsafe {
            let child = with_input(stream, |l| {
                l.and_then(|l| l.core.base_source(l.core.read_wait()))
            });
            source(stream.cast(), child, cancellable)
        }
    }

    pub unsafe extern "C" fn read_nonblocking(
        stream: *mut GPollableInputStream,
        buffer: *mut u8,
        count: usize,
        error: *mut *mut GError,
    ) -> isize {
        // SAFETY: GIO calls with our live input stream, a buffer of `count` writable bytes
        // and an error slot.
        unsafe {
            let buf = std::slice::from_raw_parts_mut(buffer, count);
            let result = with_input(stream, |l| match l {
                Some(link) => link
                    .handshake_nonblocking()
                    .and_then(|()| link.core.read_nonblocking(buf)),
                None => Err(not_attached()),
            });
            report(result, error)
        }
    }

    pub unsafe extern "C" fn output_can_poll(stream: *mut GPollableOutputStream) -> gboolean {
        // SAFETY: GIO calls with our live output stream.
        unsafe { with_output(stream, |l| l.is_some_and(|l| l.core.can_poll())) }.into_glib()
    }

    pub unsafe extern "C" fn is_writable(stream: *mut GPollableOutputStream) -> gboolean {
        // SAFETY: GIO calls with our live output stream.
        unsafe { with_output(stream, |l| l.is_some_and(|l| l.core.is_writable())) }.into_glib()
    }

    pub unsafe extern "C" fn output_source(
        stream: *mut GPollableOutputStream,
        cancellable: *mut GCancellable,
    ) -> *mut GSource {
        // SAFETY: GIO calls with our live output stream and an optional cancellable.
        unsafe {
            let child = with_output(stream, |l| {
                l.and_then(|l| l.core.base_source(l.core.write_wait()))
            });
            source(stream.cast(), child, cancellable)
        }
    }

    pub unsafe extern "C" fn write_nonblocking(
        stream: *mut GPollableOutputStream,
        buffer: *mut u8,
        count: usize,
        error: *mut *mut GError,
    ) -> isize {
        // SAFETY: GIO calls with our live output stream, `count` readable bytes at `buffer`
        // and an error slot.
        unsafe {
            let buf = match count {
                0 => &[][..],
                _ => std::slice::from_raw_parts(buffer, count),
            };
            let result = with_output(stream, |l| match l {
                Some(link) => link
                    .handshake_nonblocking()
                    .and_then(|()| link.core.write_nonblocking(buf)),
                None => Err(not_attached()),
            });
            report(result, error)
        }
    }

    fn not_attached() -> glib::Error {
        glib::Error::new(gio::IOErrorEnum::NotInitialized, "Stream not attached")
    }
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
