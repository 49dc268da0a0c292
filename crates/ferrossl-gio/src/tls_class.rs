//! The GTlsConnectionClass methods: the handshake, synchronous and in a worker thread, and
//! the negotiated protocol.

use std::ffi::{c_char, c_int};

use gio::ffi::{
    GAsyncReadyCallback, GAsyncResult, GCancellable, GTask, GTlsChannelBindingType,
    GTlsClientConnection, GTlsConnection, GTlsConnectionClass,
};
use glib::ffi::{gboolean, gpointer, GByteArray, GError, GFALSE, GTRUE};
use glib::translate::{from_glib_borrow, Borrowed, IntoGlibPtr};

use crate::connection::common_of;
use ferrossl::gio::ChannelBindingType;

/// Fills the class's method slots.
pub fn install(class: &mut GTlsConnectionClass) {
    class.handshake = Some(handshake);
    class.handshake_async = Some(handshake_async);
    class.handshake_finish = Some(handshake_finish);
    class.get_negotiated_protocol = Some(negotiated_protocol);
    class.get_binding_data = Some(binding_data);
}

/// Borrows the connection GIO passed to one of our class's methods.
///
/// # Safety
/// `conn` must be a live instance of one of our connection classes, borrowed for the call.
unsafe fn connection(conn: *mut GTlsConnection) -> Borrowed<gio::TlsConnection> {
    // SAFETY: the caller's guarantee.
    unsafe { from_glib_borrow(conn) }
}

fn run_handshake(
    conn: &gio::TlsConnection,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    match common_of(conn) {
        Some((common, role)) => common.handshake(conn, role, cancellable),
        None => Err(glib::Error::new(
            gio::IOErrorEnum::NotSupported,
            "Not a ferrossl connection",
        )),
    }
}

/// Reports `result` the way GIO's `(error)` out-parameters work.
///
/// # Safety
/// `error` must be NULL or point to a NULL `GError*`.
unsafe fn report(result: Result<(), glib::Error>, error: *mut *mut GError) -> gboolean {
    match result {
        Ok(()) => GTRUE,
        Err(e) => {
            if !error.is_null() {
                // SAFETY: the caller's guarantee; the caller owns the error we store.
                unsafe { *error = e.into_glib_ptr() };
            }
            GFALSE
        }
    }
}

unsafe extern "C" fn handshake(
    conn: *mut GTlsConnection,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection, an optional cancellable and its error slot.
    unsafe {
        let conn = connection(conn);
        let cancellable: Borrowed<Option<gio::Cancellable>> = from_glib_borrow(cancellable);
        report(run_handshake(&conn, cancellable.as_ref().as_ref()), error)
    }
}

unsafe extern "C" fn handshake_async(
    conn: *mut GTlsConnection,
    io_priority: c_int,
    cancellable: *mut GCancellable,
    callback: GAsyncReadyCallback,
    user_data: gpointer,
) {
    // SAFETY: GIO calls with our connection, an optional cancellable, and a callback with
    // its data; the task keeps the connection alive until it completes, and we drop our
    // reference to the task once it runs.
    unsafe {
        if let Some((common, _)) = common_of(&connection(conn)) {
            common.begin_async_handshake();
        }
        let task = gio::ffi::g_task_new(conn.cast(), cancellable, callback, user_data);
        gio::ffi::g_task_set_priority(task, io_priority);
        gio::ffi::g_task_run_in_thread(task, Some(handshake_in_thread));
        glib::gobject_ffi::g_object_unref(task.cast());
    }
}

/// The worker thread's part of `handshake_async`: the blocking handshake.
unsafe extern "C" fn handshake_in_thread(
    task: *mut GTask,
    source: *mut glib::gobject_ffi::GObject,
    _task_data: gpointer,
    cancellable: *mut GCancellable,
) {
    // SAFETY: GIO runs this with the task, its source object (our connection) and its
    // cancellable; the error's ownership passes to the task.
    unsafe {
        let conn = connection(source.cast());
        let cancellable: Borrowed<Option<gio::Cancellable>> = from_glib_borrow(cancellable);
        match run_handshake(&conn, cancellable.as_ref().as_ref()) {
            Ok(()) => gio::ffi::g_task_return_boolean(task, GTRUE),
            Err(e) => gio::ffi::g_task_return_error(task, e.into_glib_ptr()),
        }
    }
}

unsafe extern "C" fn handshake_finish(
    conn: *mut GTlsConnection,
    result: *mut GAsyncResult,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection, the GTask `handshake_async` made and an error
    // slot, in the caller's main context.
    unsafe {
        let conn = connection(conn);
        if let Some((common, _)) = common_of(&conn) {
            common.finish_async_handshake(&conn);
        }
        gio::ffi::g_task_propagate_boolean(result.cast(), error)
    }
}

unsafe extern "C" fn negotiated_protocol(conn: *mut GTlsConnection) -> *const c_char {
    // SAFETY: GIO calls with our connection; the string lives as long as the connection.
    let conn = unsafe { connection(conn) };
    common_of(&conn).map_or(std::ptr::null(), |(common, _)| common.negotiated_ptr())
}

unsafe extern "C" fn binding_data(
    conn: *mut GTlsConnection,
    kind: GTlsChannelBindingType,
    data: *mut GByteArray,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection, a byte array to fill (or NULL) and an error slot.
    // GLib before 2.85 annotates the array wrongly, and PyGObject then passes one of element
    // size 0, which g_byte_array_append would divide by: such an array is refused untouched.
    unsafe {
        let conn = connection(conn);
        let kind = match kind {
            gio::ffi::G_TLS_CHANNEL_BINDING_TLS_UNIQUE => Some(ChannelBindingType::Unique),
            gio::ffi::G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT => {
                Some(ChannelBindingType::ServerEndPoint)
            }
            gio::ffi::G_TLS_CHANNEL_BINDING_TLS_EXPORTER => Some(ChannelBindingType::Exporter),
            _ => None,
        };
        let result = match (common_of(&conn), kind) {
            (Some((common, role)), Some(kind)) => common.binding_data(kind, role),
            _ => Err(glib::Error::new(
                gio::TlsChannelBindingError::NotImplemented,
                "Unknown channel binding type",
            )),
        };
        let result = result.and_then(|bytes| {
            if data.is_null() {
                return Ok(());
            }
            if glib::ffi::g_array_get_element_size(data.cast()) != 1 {
                return Err(glib::Error::new(
                    gio::TlsChannelBindingError::GeneralError,
                    "The byte array for the binding data has elements of the wrong size",
                ));
            }
            glib::ffi::g_byte_array_append(data, bytes.as_ptr(), bytes.len() as u32);
            Ok(())
        });
        report(result, error)
    }
}

/// `g_tls_client_connection_copy_session_state`.
pub unsafe extern "C" fn copy_session_state(
    conn: *mut GTlsClientConnection,
    source: *mut GTlsClientConnection,
) {
    // SAFETY: GIO calls with two live client connections (ours, or `source` another
    // backend's, which has nothing we can use).
    let (conn, source) = unsafe { (connection(conn.cast()), connection(source.cast())) };
    if let (Some((ours, _)), Some((theirs, _))) = (common_of(&conn), common_of(&source)) {
        ours.copy_session_from(theirs);
    }
}
