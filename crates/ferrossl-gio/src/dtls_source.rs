//! The GSource of `g_datagram_based_create_source` on a DTLS connection: it wakes with the base
//! socket's source, but calls the application's GDatagramBasedSourceFunc with the DTLS
//! connection (which a callback may receive from), not with the socket underneath. For
//! G_IO_IN it is also ready, without the socket, while the connection holds input: a datagram
//! may carry several records, and the receive that decrypts them hands out the first and keeps
//! the others, which no socket readiness would announce.

use std::ffi::c_int;
use std::mem::size_of;

use gio::ffi::GDatagramBased;
use glib::ffi::{gboolean, gpointer, GIOCondition, GSource, GSourceFunc, GSourceFuncs, GFALSE};
use glib::gobject_ffi::{g_object_ref, g_object_unref, GObject};

/// Our source: GLib's header, then what dispatch needs.
#[repr(C)]
struct DatagramSource {
    source: GSource,
    /// A reference to the DTLS connection, dropped in `finalize`.
    connection: *mut GObject,
    condition: GIOCondition,
}

/// GLib only reads the table, for as long as sources made from it exist.
struct Funcs(GSourceFuncs);

// SAFETY: the table is immutable function pointers; GLib reads it from any thread.
unsafe impl Sync for Funcs {}

static FUNCS: Funcs = Funcs(GSourceFuncs {
    prepare: Some(prepare),
    check: Some(check),
    dispatch: Some(dispatch),
    finalize: Some(finalize),
    closure_callback: None,
    closure_marshal: None,
});

/// A new source for `connection` (ours) that wakes when `base`'s source for `condition` does.
///
/// # Safety
/// `connection` and `base` must be live; `cancellable` NULL or live. The caller owns the
/// returned source.
pub unsafe fn new(
    connection: *mut GDatagramBased,
    base: &gio::DatagramBased,
    condition: GIOCondition,
    cancellable: *mut gio::ffi::GCancellable,
) -> *mut GSource {
    // SAFETY: g_source_new allocates a zeroed struct of our size with GLib's header first
    // (repr(C)); we fill our fields before anyone else sees it. The child source is the base's
    // own, given a callback of its real type (GLib stores callbacks as GSourceFunc, hence the
    // cast, as in C) that keeps it alive; its readiness dispatches us. The parent keeps its own
    // reference to it.
    unsafe {
        let source = glib::ffi::g_source_new(
            &FUNCS.0 as *const GSourceFuncs as *mut GSourceFuncs,
            size_of::<DatagramSource>() as u32,
        );
        let ours = source.cast::<DatagramSource>();
        (*ours).connection = g_object_ref(connection.cast()).cast();
        (*ours).condition = condition;
        let child = crate::datagrams::create_source(
            base,
            glib::IOCondition::from_bits_truncate(condition),
            cancellable,
        );
        let keep = std::mem::transmute::<
            unsafe extern "C" fn(*mut GDatagramBased, GIOCondition, gpointer) -> gboolean,
            unsafe extern "C" fn(gpointer) -> gboolean,
        >(keep_waking);
        glib::ffi::g_source_set_callback(child, Some(keep), std::ptr::null_mut(), None);
        glib::ffi::g_source_add_child_source(source, child);
        glib::ffi::g_source_unref(child);
        source
    }
}

/// The base source's callback: nothing to do but stay (its readiness dispatches ours).
unsafe extern "C" fn keep_waking(_: *mut GDatagramBased, _: GIOCondition, _: gpointer) -> gboolean {
    glib::ffi::GTRUE
}

/// Whether our source's connection holds input its condition asks for.
///
/// # Safety
/// `source` must be a source of ours, not yet finalized.
unsafe fn holds_input(source: *mut GSource) -> bool {
    // SAFETY: the caller's guarantee: our struct, whose connection reference lives until
    // `finalize`.
    unsafe {
        let ours = source.cast::<DatagramSource>();
        (*ours).condition & glib::ffi::G_IO_IN != 0
            && crate::dtls_class::holds_input((*ours).connection.cast())
    }
}

unsafe extern "C" fn prepare(source: *mut GSource, timeout: *mut c_int) -> gboolean {
    // SAFETY: GLib prepares a live source of ours and passes where the poll timeout goes
    // (-1: no limit of ours; when ready, GLib does not wait at all).
    unsafe {
        *timeout = -1;
        gboolean::from(holds_input(source))
    }
}

unsafe extern "C" fn check(source: *mut GSource) -> gboolean {
    // SAFETY: GLib checks a live source of ours (a ready child source makes it ready besides).
    unsafe { gboolean::from(holds_input(source)) }
}

unsafe extern "C" fn dispatch(
    source: *mut GSource,
    callback: GSourceFunc,
    data: gpointer,
) -> gboolean {
    let Some(callback) = callback else {
        return GFALSE;
    };
    // SAFETY: GLib dispatches a source of ours, whose callback was set by the application as
    // a GDatagramBasedSourceFunc (the documented type of these sources' callbacks; GLib stores
    // every callback as a GSourceFunc).
    unsafe {
        let ours = source.cast::<DatagramSource>();
        let func = std::mem::transmute::<
            unsafe extern "C" fn(gpointer) -> gboolean,
            unsafe extern "C" fn(*mut GDatagramBased, GIOCondition, gpointer) -> gboolean,
        >(callback);
        let connection = (*ours).connection.cast::<GDatagramBased>();
        let ready = gio::ffi::g_datagram_based_condition_check(connection, (*ours).condition);
        func(connection, ready, data)
    }
}

unsafe extern "C" fn finalize(source: *mut GSource) {
    // SAFETY: GLib finalizes a source of ours once; we drop the reference `new` took.
    unsafe { g_object_unref((*source.cast::<DatagramSource>()).connection) }
}
