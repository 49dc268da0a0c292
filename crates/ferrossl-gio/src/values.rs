//! GValues of the types gtk-rs has no safe constructor for: GPtrArray-valued properties
//! (`dns-names`, `ip-addresses`).

use glib::ffi::{gpointer, GBytes};
use glib::prelude::*;
use glib::translate::{from_glib, IntoGlibPtr, ToGlibPtrMut};

/// A GValue of type G_TYPE_PTR_ARRAY owning an array of `items`, each a new reference that
/// `free` drops with the array.
fn ptr_array_value(items: Vec<gpointer>, free: unsafe extern "C" fn(gpointer)) -> glib::Value {
    // SAFETY: g_ptr_array_new_with_free_func returns a new array that we own; each item is a
    // reference handed over to it, which `free` releases; g_value_take_boxed moves our
    // reference to the array into the GValue, which is initialised with the array's GType.
    unsafe {
        let array = glib::ffi::g_ptr_array_new_with_free_func(Some(free));
        for item in items {
            glib::ffi::g_ptr_array_add(array, item);
        }
        let mut value = glib::Value::from_type(from_glib(glib::ffi::g_ptr_array_get_type()));
        glib::gobject_ffi::g_value_take_boxed(value.to_glib_none_mut().0, array.cast());
        value
    }
}

unsafe extern "C" fn unref_bytes(bytes: gpointer) {
    // SAFETY: the array holds only GBytes references it owns (see `bytes_array`).
    unsafe { glib::ffi::g_bytes_unref(bytes.cast::<GBytes>()) }
}

unsafe extern "C" fn unref_object(object: gpointer) {
    // SAFETY: the array holds only GObject references it owns (see `objects_array`).
    unsafe { glib::gobject_ffi::g_object_unref(object.cast()) }
}

/// A GPtrArray of GBytes, one per string (what `dns-names` holds).
pub fn bytes_array(strings: &[String]) -> glib::Value {
    let items = strings
        .iter()
        .map(|s| {
            let bytes = glib::Bytes::from(s.as_bytes());
            // SAFETY: hands our reference to the array, which unrefs it with `unref_bytes`.
            let ptr: *mut GBytes = unsafe { bytes.into_glib_ptr() };
            ptr.cast()
        })
        .collect();
    ptr_array_value(items, unref_bytes)
}

/// A GPtrArray of GObjects (what `ip-addresses` holds, with GInetAddresses).
pub fn objects_array<O: IsA<glib::Object>>(objects: Vec<O>) -> glib::Value {
    let items = objects
        .into_iter()
        .map(|o| {
            // SAFETY: hands our reference to the array, which unrefs it with `unref_object`.
            let ptr: *mut glib::gobject_ffi::GObject = unsafe { o.upcast().into_glib_ptr() };
            ptr.cast()
        })
        .collect();
    ptr_array_value(items, unref_object)
}

/// A G_TYPE_POINTER value holding a new GList of new GByteArrays, one per item: what
/// `accepted-cas` gives (its reader owns the list, as with GIO's other backends).
pub fn byte_arrays_list(items: &[Vec<u8>]) -> glib::Value {
    let mut list: *mut glib::ffi::GList = std::ptr::null_mut();
    for item in items.iter().rev() {
        // SAFETY: g_byte_array_new_take adopts a g_malloc'd copy of the item (g_memdup2
        // allocates it); the list takes our reference to each array, and the reader of the
        // property owns list and arrays.
        unsafe {
            let data = glib::ffi::g_memdup2(item.as_ptr().cast(), item.len()).cast::<u8>();
            let array = glib::ffi::g_byte_array_new_take(data, item.len());
            list = glib::ffi::g_list_prepend(list, array.cast());
        }
    }
    let mut value = glib::Value::from_type(glib::Type::POINTER);
    // SAFETY: the value was initialised as a pointer.
    unsafe { glib::gobject_ffi::g_value_set_pointer(value.to_glib_none_mut().0, list.cast()) };
    value
}
