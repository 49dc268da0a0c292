//! The three symbols GIO looks up in a module file: load, unload and query.

use std::ffi::c_char;

use gio::ffi::GIOModule;
use glib::translate::IntoGlibPtr;

use crate::backend::Backend;

/// The extension point GIO's TLS backends implement.
const EXTENSION_POINT: &str = "gio-tls-backend";

/// Below glib-networking's backends (GnuTLS 0, OpenSSL -1): installing this module beside them
/// changes no program's backend until `GIO_USE_TLS=ferrossl` asks for it.
const PRIORITY: i32 = -10;

/// Called by GIO when it loads the module: registers the backend.
///
/// # Safety
/// GIO calls it once per load with the module being loaded.
#[no_mangle]
pub unsafe extern "C" fn g_io_module_load(module: *mut GIOModule) {
    // SAFETY: `module` is the live GIOModule (a GTypeModule) GIO is loading. Our GTypes are
    // static (registered once per process, never torn down), so the code behind them must
    // never be unmapped: one extra use keeps the module loaded for the life of the process.
    unsafe {
        glib::gobject_ffi::g_type_module_use(module.cast());
    }
    gio::IOExtensionPoint::implement(EXTENSION_POINT, Backend::gtype(), "ferrossl", PRIORITY);
}

/// Called by GIO when it unloads the module; never happens (see `g_io_module_load`).
///
/// # Safety
/// GIO calls it with the module being unloaded.
#[no_mangle]
pub unsafe extern "C" fn g_io_module_unload(_module: *mut GIOModule) {}

/// The extension points this module implements, so GIO can load it only when one is asked
/// for: a new NULL-terminated string array, which GIO frees.
#[no_mangle]
pub extern "C" fn g_io_module_query() -> *mut *mut c_char {
    let points = glib::StrV::from(vec![glib::GString::from(EXTENSION_POINT)]);
    // SAFETY: ownership of the array passes to the caller; it and its strings come from
    // g_malloc, as the g_strfreev GIO frees them with expects.
    unsafe { points.into_glib_ptr() }
}
