//! The native half of the `ferrossl` Python package: thin PyO3 wrappers over the Rust API.
//! Argument checking in pyOpenSSL's style lives in `ferrossl/SSL.py` and `ferrossl/crypto.py`,
//! but for the connection's I/O methods, which check their own (`args`) so that Python calls
//! them directly; no protocol logic lives in either.

#![deny(unsafe_code)]

mod args;
mod bio;
mod conn;
mod ctx;
mod dtls;
mod errors;
mod stream;
mod x509;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<x509::NativeX509>()?;
    m.add_class::<x509::NativePKey>()?;
    m.add_class::<x509::NativeStore>()?;
    m.add_class::<ctx::NativeContext>()?;
    m.add_class::<conn::NativeConnection>()?;
    m.add_class::<conn::NativeSession>()?;
    m.add_class::<bio::NativeSsl>()?;
    m.add_class::<bio::NativeBio>()?;
    m.add_class::<bio::NativeTlsSocket>()?;
    dtls::register(m)?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(x509::verify_certificate, m)?)?;
    m.add_function(wrap_pyfunction!(x509::supported_curves, m)?)?;
    m.add_function(wrap_pyfunction!(x509::name_entries, m)?)?;
    Ok(())
}
