//! The GDtlsConnection and GDatagramBased methods of the DTLS connection.

use std::ffi::{c_char, c_int, c_uint};

use ferrossl::gio::ChannelBindingType;
use gio::ffi::{
    GAsyncReadyCallback, GAsyncResult, GCancellable, GDatagramBased, GDtlsConnection,
    GInputMessage, GOutputMessage, GTask, GTlsChannelBindingType,
};
use glib::ffi::{gboolean, gpointer, GByteArray, GError, GIOCondition, GSource, GFALSE, GTRUE};
use glib::translate::{from_glib_borrow, Borrowed, IntoGlibPtr};

use crate::dtls::{dtls_common_of, timeout, Dtls};

/// Fills GDtlsConnectionInterface's slots.
pub fn install_dtls(iface: &mut gio::ffi::GDtlsConnectionInterface) {
    iface.handshake = Some(handshake);
    iface.handshake_async = Some(handshake_async);
    iface.handshake_finish = Some(task_finish);
    iface.shutdown = Some(shutdown);
    iface.shutdown_async = Some(shutdown_async);
    iface.shutdown_finish = Some(task_finish);
    iface.set_advertised_protocols = Some(set_advertised_protocols);
    iface.get_negotiated_protocol = Some(negotiated_protocol);
    iface.get_binding_data = Some(binding_data);
}

/// Fills GDatagramBasedInterface's slots.
pub fn install_datagram(iface: &mut gio::ffi::GDatagramBasedInterface) {
    iface.receive_messages = Some(receive_messages);
    iface.send_messages = Some(send_messages);
    iface.create_source = Some(create_source);
    iface.condition_check = Some(condition_check);
    iface.condition_wait = Some(condition_wait);
}

/// Borrows the connection GIO passed.
///
/// # Safety
/// `conn` must be a live DTLS connection of ours, borrowed for the call.
unsafe fn connection<P>(conn: *mut P) -> Borrowed<glib::Object> {
    // SAFETY: the caller's guarantee.
    unsafe { from_glib_borrow(conn.cast::<glib::gobject_ffi::GObject>()) }
}

/// Runs `f` on the association of the connection `obj`.
fn with_dtls<T>(
    obj: &glib::Object,
    cancellable: Option<&gio::Cancellable>,
    f: impl FnOnce(&mut Dtls) -> Result<T, ferrossl::gio::GioError>,
) -> Result<T, glib::Error> {
    match dtls_common_of(obj) {
        Some((common, role)) => common.with_dtls(obj, role, cancellable, f),
        None => Err(glib::Error::new(
            gio::IOErrorEnum::NotSupported,
            "Not a ferrossl connection",
        )),
    }
}

/// Stores `result`'s error for GIO; returns the value or `failed`.
///
/// # Safety
/// `error` must be NULL or point to a NULL `GError*`.
unsafe fn report<T>(result: Result<T, glib::Error>, error: *mut *mut GError, failed: T) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            if !error.is_null() {
                // SAFETY: the caller's guarantee; GIO owns the stored error.
                unsafe { *error = e.into_glib_ptr() };
            }
            failed
        }
    }
}

fn cancellable_of(ptr: *mut GCancellable) -> Option<gio::Cancellable> {
    // SAFETY: GIO passes NULL or a live cancellable; we take our own reference.
    unsafe { glib::translate::from_glib_none(ptr) }
}

unsafe extern "C" fn handshake(
    conn: *mut GDtlsConnection,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection, an optional cancellable and its error slot.
    unsafe {
        let conn = connection(conn);
        let c = cancellable_of(cancellable);
        let result = with_dtls(&conn, c.as_ref(), |d| d.handshake(None));
        report(result.map(|()| GTRUE), error, GFALSE)
    }
}

unsafe extern "C" fn shutdown(
    conn: *mut GDtlsConnection,
    read: gboolean,
    write: gboolean,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: as for `handshake`.
    unsafe {
        let conn = connection(conn);
        let c = cancellable_of(cancellable);
        let result = with_dtls(&conn, c.as_ref(), |d| {
            d.shutdown(read != 0, write != 0, None)
        });
        report(result.map(|()| GTRUE), error, GFALSE)
    }
}

/// What a worker thread of an asynchronous call runs: the handshake (no data) or a shutdown
/// of the halves packed in the task data (bit 0 read, bit 1 write).
unsafe extern "C" fn in_thread(
    task: *mut GTask,
    source: *mut glib::gobject_ffi::GObject,
    data: gpointer,
    cancellable: *mut GCancellable,
) {
    // SAFETY: GIO runs this with the task, its source object (our connection), the data
    // given at creation and the task's cancellable; the error passes to the task.
    unsafe {
        let conn = connection(source);
        let c = cancellable_of(cancellable);
        let halves = data as usize;
        let result = with_dtls(&conn, c.as_ref(), |d| match halves {
            0 => d.handshake(None),
            _ => d.shutdown(halves & 1 != 0, halves & 2 != 0, None),
        });
        match result {
            Ok(()) => gio::ffi::g_task_return_boolean(task, GTRUE),
            Err(e) => gio::ffi::g_task_return_error(task, e.into_glib_ptr()),
        }
    }
}

/// Starts `in_thread` for `conn` with `halves` (0 for the handshake).
///
/// # Safety
/// GIO's arguments to an async method of our connection.
unsafe fn run_async(
    conn: *mut GDtlsConnection,
    halves: usize,
    io_priority: c_int,
    cancellable: *mut GCancellable,
    callback: GAsyncReadyCallback,
    user_data: gpointer,
) {
    // SAFETY: the task keeps the connection alive until it completes; we drop our reference
    // to the task once it runs. `halves` travels as the task data, a plain integer.
    unsafe {
        if halves == 0 {
            if let Some((common, _)) = dtls_common_of(&connection(conn)) {
                common.caller().begin();
            }
        }
        let task = gio::ffi::g_task_new(conn.cast(), cancellable, callback, user_data);
        gio::ffi::g_task_set_priority(task, io_priority);
        gio::ffi::g_task_set_task_data(task, halves as gpointer, None);
        gio::ffi::g_task_run_in_thread(task, Some(in_thread));
        glib::gobject_ffi::g_object_unref(task.cast());
    }
}

unsafe extern "C" fn handshake_async(
    conn: *mut GDtlsConnection,
    io_priority: c_int,
    cancellable: *mut GCancellable,
    callback: GAsyncReadyCallback,
    user_data: gpointer,
) {
    // SAFETY: GIO's arguments, passed on.
    unsafe { run_async(conn, 0, io_priority, cancellable, callback, user_data) }
}

unsafe extern "C" fn shutdown_async(
    conn: *mut GDtlsConnection,
    read: gboolean,
    write: gboolean,
    io_priority: c_int,
    cancellable: *mut GCancellable,
    callback: GAsyncReadyCallback,
    user_data: gpointer,
) {
    let halves = usize::from(read != 0) | usize::from(write != 0) << 1;
    // Shutting down nothing still needs a non-zero mark to tell it from the handshake.
    let halves = if halves == 0 { 4 } else { halves };
    // SAFETY: GIO's arguments, passed on.
    unsafe { run_async(conn, halves, io_priority, cancellable, callback, user_data) }
}

unsafe extern "C" fn task_finish(
    conn: *mut GDtlsConnection,
    result: *mut GAsyncResult,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection, the GTask `run_async` made and its error slot.
    unsafe {
        if let Some((common, _)) = dtls_common_of(&connection(conn)) {
            common.caller().end();
        }
        gio::ffi::g_task_propagate_boolean(result.cast(), error)
    }
}

unsafe extern "C" fn set_advertised_protocols(
    conn: *mut GDtlsConnection,
    protocols: *const *const c_char,
) {
    // SAFETY: GIO calls with our connection and a NULL-terminated string array (or NULL).
    unsafe {
        let conn = connection(conn);
        let list: Vec<String> = if protocols.is_null() {
            Vec::new()
        } else {
            glib::translate::FromGlibPtrContainer::from_glib_none(protocols as *mut *mut c_char)
        };
        if let Some((common, _)) = dtls_common_of(&conn) {
            common.set_advertised(list);
        }
    }
}

unsafe extern "C" fn negotiated_protocol(conn: *mut GDtlsConnection) -> *const c_char {
    // SAFETY: GIO calls with our connection; the string lives as long as it.
    let conn = unsafe { connection(conn) };
    dtls_common_of(&conn).map_or(std::ptr::null(), |(common, _)| common.negotiated_ptr())
}

unsafe extern "C" fn binding_data(
    conn: *mut GDtlsConnection,
    kind: GTlsChannelBindingType,
    data: *mut GByteArray,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection, a byte array (or NULL) and an error slot; an
    // array of element size 0 (PyGObject before GLib 2.85) is refused untouched.
    unsafe {
        let conn = connection(conn);
        let kind = match kind {
            gio::ffi::G_TLS_CHANNEL_BINDING_TLS_UNIQUE => ChannelBindingType::Unique,
            gio::ffi::G_TLS_CHANNEL_BINDING_TLS_SERVER_END_POINT => {
                ChannelBindingType::ServerEndPoint
            }
            _ => ChannelBindingType::Exporter,
        };
        let result =
            with_dtls(&conn, None, |d| d.get_channel_binding_data(kind)).and_then(|bytes| {
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
        report(result.map(|()| GTRUE), error, GFALSE)
    }
}

unsafe extern "C" fn receive_messages(
    conn: *mut GDatagramBased,
    messages: *mut GInputMessage,
    num_messages: c_uint,
    _flags: c_int,
    timeout_us: i64,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> c_int {
    if num_messages == 0 {
        return 0;
    }
    // SAFETY: GIO calls with our connection and `num_messages` messages whose vectors are
    // writable buffers of their sizes; we fill the first message (one datagram per call). The
    // end of the association (the peer's close_notify) is no message, as GIO documents for a
    // peer that closed the connection.
    unsafe {
        let conn = connection(conn);
        let c = cancellable_of(cancellable);
        let result = match dtls_common_of(&conn) {
            Some((common, role)) => common.receive(&conn, role, timeout_us, c.as_ref()),
            None => Err(glib::Error::new(
                gio::IOErrorEnum::NotSupported,
                "Not a ferrossl connection",
            )),
        };
        let result = result.map(|datagram| {
            if datagram.is_empty() {
                return 0;
            }
            scatter(&mut *messages, &datagram);
            1
        });
        report(result, error, -1)
    }
}

/// Copies a datagram into a message's vectors (what does not fit is lost, as with UDP).
///
/// # Safety
/// The message's vectors must be writable buffers of their sizes.
unsafe fn scatter(message: &mut GInputMessage, datagram: &[u8]) {
    let mut rest = datagram;
    let mut copied = 0;
    for i in 0..message.num_vectors as usize {
        // SAFETY: the caller's guarantee.
        let vector = unsafe { &*message.vectors.add(i) };
        let n = rest.len().min(vector.size);
        // SAFETY: `n` fits both the vector and what is left of the datagram.
        unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), vector.buffer.cast::<u8>(), n) };
        rest = &rest[n..];
        copied += n;
    }
    message.bytes_received = copied;
    message.flags = 0;
}

unsafe extern "C" fn send_messages(
    conn: *mut GDatagramBased,
    messages: *mut GOutputMessage,
    num_messages: c_uint,
    _flags: c_int,
    timeout_us: i64,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> c_int {
    // SAFETY: GIO calls with our connection and `num_messages` messages whose vectors are
    // readable buffers of their sizes.
    unsafe {
        let conn = connection(conn);
        let c = cancellable_of(cancellable);
        let datagrams: Vec<Vec<u8>> = (0..num_messages as usize)
            .map(|i| gather(&*messages.add(i)))
            .collect();
        let refs: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        let result = with_dtls(&conn, c.as_ref(), |d| {
            d.send_messages(&refs, timeout(timeout_us), None)
        });
        let result = result.map(|sent| {
            for (i, datagram) in datagrams.iter().enumerate().take(sent) {
                (*messages.add(i)).bytes_sent = datagram.len() as c_uint;
            }
            sent as c_int
        });
        report(result, error, -1)
    }
}

/// A message's vectors as one datagram.
///
/// # Safety
/// The message's vectors must be readable buffers of their sizes.
unsafe fn gather(message: &GOutputMessage) -> Vec<u8> {
    let mut datagram = Vec::new();
    for i in 0..message.num_vectors as usize {
        // SAFETY: the caller's guarantee.
        unsafe {
            let vector = &*message.vectors.add(i);
            if vector.size > 0 {
                let bytes = std::slice::from_raw_parts(vector.buffer.cast::<u8>(), vector.size);
                datagram.extend_from_slice(bytes);
            }
        }
    }
    datagram
}

/// The base socket of the connection GIO passed.
///
/// # Safety
/// `conn` must be a live DTLS connection of ours.
unsafe fn base(conn: *mut GDatagramBased) -> Option<gio::DatagramBased> {
    // SAFETY: the caller's guarantee.
    let conn = unsafe { connection(conn) };
    dtls_common_of(&conn).and_then(|(common, _)| common.base_socket())
}

/// Whether the connection GIO passed holds input a receive would return at once (records
/// after the first of a datagram, the peer's close_notify), which no readiness of the base
/// socket announces.
///
/// # Safety
/// `conn` must be a live DTLS connection of ours.
pub unsafe fn holds_input(conn: *mut GDatagramBased) -> bool {
    // SAFETY: the caller's guarantee.
    let conn = unsafe { connection(conn) };
    dtls_common_of(&conn).is_some_and(|(common, _)| common.holds_input())
}

/// G_IO_IN when `condition` asks for it and the connection holds input.
///
/// # Safety
/// `conn` must be a live DTLS connection of ours.
unsafe fn held(conn: *mut GDatagramBased, condition: glib::IOCondition) -> glib::IOCondition {
    // SAFETY: the caller's guarantee.
    if condition.contains(glib::IOCondition::IN) && unsafe { holds_input(conn) } {
        glib::IOCondition::IN
    } else {
        glib::IOCondition::empty()
    }
}

// Readiness is the base socket's, or input the connection holds already (see `dtls_source`).
unsafe extern "C" fn create_source(
    conn: *mut GDatagramBased,
    condition: GIOCondition,
    cancellable: *mut GCancellable,
) -> *mut GSource {
    // SAFETY: GIO calls with our connection and an optional cancellable; the new source
    // passes to the caller.
    unsafe {
        match base(conn) {
            Some(b) => crate::dtls_source::new(conn, &b, condition, cancellable),
            None => glib::ffi::g_timeout_source_new(0),
        }
    }
}

unsafe extern "C" fn condition_check(
    conn: *mut GDatagramBased,
    condition: GIOCondition,
) -> GIOCondition {
    // SAFETY: GIO calls with our connection.
    unsafe {
        let condition = glib::IOCondition::from_bits_truncate(condition);
        match base(conn) {
            Some(b) => glib::translate::IntoGlib::into_glib(
                crate::datagrams::condition_check(&b, condition) | held(conn, condition),
            ),
            None => glib::ffi::G_IO_HUP,
        }
    }
}

unsafe extern "C" fn condition_wait(
    conn: *mut GDatagramBased,
    condition: GIOCondition,
    timeout_us: i64,
    cancellable: *mut GCancellable,
    error: *mut *mut GError,
) -> gboolean {
    // SAFETY: GIO calls with our connection and its arguments; the error, if any, passes to
    // the caller.
    unsafe {
        let Some(b) = base(conn) else { return GFALSE };
        let condition = glib::IOCondition::from_bits_truncate(condition);
        let c = cancellable_of(cancellable);
        // What the connection holds is there now: no datagram will come for it. A cancelled
        // wait fails all the same, as a GSocket's does.
        let result = if !held(conn, condition).is_empty() {
            c.as_ref().map_or(
                Ok(()),
                gio::prelude::CancellableExtManual::set_error_if_cancelled,
            )
        } else {
            crate::datagrams::condition_wait(&b, condition, timeout_us, c.as_ref())
        };
        report(result.map(|()| GTRUE), error, GFALSE)
    }
}
