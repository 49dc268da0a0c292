//! pyOpenSSL's argument rules for the I/O methods that Python calls without a wrapper
//! (`send`, `sendall`, `recv`, `bio_read`, `bio_write`): the buffers they take and the errors
//! they raise for anything else, so that a small read or write costs no Python frame.

use pyo3::exceptions::{PyDeprecationWarning, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyInt, PyMemoryView, PyString};

/// A file-system path argument (str, bytes or os.PathLike), converted as pyOpenSSL converts
/// one: `os.fspath`, then a str encoded strictly in the file-system encoding. A non-path
/// raises os.fspath's TypeError; a str it cannot encode (a lone surrogate, or a surrogate
/// escape from an undecodable name) raises UnicodeEncodeError; bytes pass as they are.
pub struct FsPath(pub std::path::PathBuf);

impl<'py> FromPyObject<'py> for FsPath {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        use std::os::unix::ffi::OsStrExt;
        let py = obj.py();
        let path = py.import("os")?.call_method1("fspath", (obj,))?;
        let encoded = if path.is_instance_of::<PyString>() {
            let encoding = py.import("sys")?.call_method0("getfilesystemencoding")?;
            path.call_method1("encode", (encoding,))?
        } else {
            path
        };
        let bytes = encoded.downcast::<PyBytes>()?.as_bytes();
        Ok(Self(std::ffi::OsStr::from_bytes(bytes).into()))
    }
}

impl std::ops::Deref for FsPath {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for FsPath {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

/// The bytes of a buffer argument: a `bytes` object borrowed as it is; a `str` encoded as
/// UTF-8 with a DeprecationWarning (pyOpenSSL still takes one); any other object with the
/// buffer protocol (`bytearray`, `memoryview`, ...) copied.
pub fn buffer(obj: &Bound<'_, PyAny>) -> PyResult<PyBackedBytes> {
    if let Ok(bytes) = obj.downcast::<PyBytes>() {
        return Ok(bytes.clone().into());
    }
    let py = obj.py();
    if let Ok(text) = obj.downcast::<PyString>() {
        PyErr::warn(
            py,
            &py.get_type::<PyDeprecationWarning>(),
            c"str for buf is no longer accepted, use bytes",
            1,
        )?;
        return Ok(text
            .call_method1("encode", ("utf-8",))?
            .downcast_into::<PyBytes>()?
            .into());
    }
    // The limited API has no buffer access before Python 3.11: a memoryview copies it.
    let view = PyMemoryView::from(obj)
        .map_err(|_| PyTypeError::new_err("buf must be a memoryview, buffer or byte string"))?;
    let copy = py.get_type::<PyBytes>().call1((view,))?;
    Ok(copy.downcast_into::<PyBytes>()?.into())
}

/// The data and flags of `send`/`sendall`, checked in pyOpenSSL's order: the flags are
/// ignored but must be an int, as a socket's methods take; then the length, as the object
/// reports it (a test double may claim any size), against `max_len`.
pub fn send_buffer(
    buf: &Bound<'_, PyAny>,
    flags: Option<&Bound<'_, PyAny>>,
    max_len: Option<usize>,
) -> PyResult<PyBackedBytes> {
    if flags.is_some_and(|f| !f.is_instance_of::<PyInt>()) {
        return Err(PyTypeError::new_err("flags must be an integer"));
    }
    if let Some(max) = max_len {
        if !buf.is_instance_of::<PyString>() && buf.len().is_ok_and(|n| n > max) {
            return Err(PyValueError::new_err(format!(
                "Cannot send more than {max} bytes at once."
            )));
        }
    }
    buffer(buf)
}

/// An integer argument, with pyOpenSSL's message for another type.
pub fn int<'py>(obj: &Bound<'py, PyAny>, message: &'static str) -> PyResult<Bound<'py, PyInt>> {
    obj.downcast::<PyInt>()
        .cloned()
        .map_err(|_| PyTypeError::new_err(message))
}
