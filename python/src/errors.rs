//! Exceptions, and the hand-over of an exception raised inside a Python callback: the callback
//! wrapper parks it here, the engine fails the handshake, and the method that was running
//! raises the parked exception instead of a generic error (as pyOpenSSL does).

use std::cell::RefCell;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _native,
    Error,
    PyException,
    "An error occurred in an SSL operation."
);
create_exception!(
    _native,
    WantReadError,
    Error,
    "More data from the peer is needed."
);
create_exception!(
    _native,
    WantWriteError,
    Error,
    "The transport cannot take more data now."
);
create_exception!(
    _native,
    WantX509LookupError,
    Error,
    "A certificate lookup is pending."
);
create_exception!(
    _native,
    ZeroReturnError,
    Error,
    "The peer closed the TLS session."
);
create_exception!(
    _native,
    SysCallError,
    Error,
    "The transport failed or ended early."
);
create_exception!(
    _native,
    CryptoError,
    PyException,
    "An error in a crypto operation."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("WantReadError", py.get_type::<WantReadError>())?;
    m.add("WantWriteError", py.get_type::<WantWriteError>())?;
    m.add("WantX509LookupError", py.get_type::<WantX509LookupError>())?;
    m.add("ZeroReturnError", py.get_type::<ZeroReturnError>())?;
    m.add("SysCallError", py.get_type::<SysCallError>())?;
    m.add("CryptoError", py.get_type::<CryptoError>())?;
    Ok(())
}

thread_local! {
    static PARKED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Parks the exception a callback raised, for the running method to raise.
pub fn park(err: PyErr) {
    PARKED.with(|p| {
        let mut slot = p.borrow_mut();
        if slot.is_none() {
            *slot = Some(err);
        }
    });
}

/// The exception a callback raised during the last call, if any.
pub fn take_parked() -> Option<PyErr> {
    PARKED.with(|p| p.borrow_mut().take())
}

/// Drops a parked exception left by an earlier call.
pub fn clear_parked() {
    take_parked();
}

/// The Python exception for a ferrossl error.
pub fn ssl_error(e: ferrossl::Error) -> PyErr {
    if let Some(parked) = take_parked() {
        return parked;
    }
    use ferrossl::Error as E;
    match e {
        E::WantRead => WantReadError::new_err(()),
        E::WantWrite => WantWriteError::new_err(()),
        E::WantX509Lookup => WantX509LookupError::new_err(()),
        E::ZeroReturn => ZeroReturnError::new_err(()),
        E::SysCall { errno, message } => SysCallError::new_err((errno, message)),
        E::InvalidArgument(m) => PyValueError::new_err(m),
        other => Error::new_err((errors_list(&other),)),
    }
}

/// The Python exception for a failure of a crypto object (loading, dumping).
pub fn crypto_error(e: ferrossl::Error) -> PyErr {
    if let Some(parked) = take_parked() {
        return parked;
    }
    match e {
        ferrossl::Error::InvalidArgument(m) => PyValueError::new_err(m),
        other => CryptoError::new_err((errors_list(&other),)),
    }
}

fn errors_list(e: &ferrossl::Error) -> Vec<(String, String, String)> {
    e.openssl_errors()
        .into_iter()
        .map(|x| (x.lib, x.func, x.reason))
        .collect()
}
