//! `NativeContext`: the Rust `Context`, with Python callables adapted into its callbacks. Each
//! callback is given the Python `Connection` (found through the connection's ex_data) and
//! parks any exception it raises, so the running method re-raises it.

use std::sync::Arc;

use ferrossl::context::AlpnSelection;
use ferrossl::ex_data::ExData;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::args::FsPath;
use crate::errors::{park, ssl_error};
use crate::x509::{passphrase_callback, NativePKey, NativeStore, NativeX509};

/// The Python `Connection` owning a Rust connection: a weak reference, so no cycle keeps
/// either alive.
pub struct Owner(pub Py<PyAny>);

/// A context a servername callback switched to while the connection was busy.
pub struct PendingContext(pub std::sync::Mutex<Option<ferrossl::Context>>);

/// The SNI name of the ClientHello being handled, readable while the connection is busy.
pub struct HelloName(pub std::sync::Mutex<Option<String>>);

pub fn owner(py: Python<'_>, ex: &ExData) -> PyObject {
    match ex.get::<Owner>() {
        Some(weak) => weak.0.call0(py).unwrap_or_else(|_| py.None()),
        None => py.None(),
    }
}

/// Calls `f` under the GIL; an exception is parked and reported as a callback failure.
fn call<T>(what: &str, f: impl FnOnce(Python<'_>) -> PyResult<T>) -> Result<T, ferrossl::Error> {
    Python::with_gil(|py| {
        f(py).map_err(|e| {
            park(e);
            ferrossl::Error::Callback(format!("the {what} callback raised"))
        })
    })
}

#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeContext {
    pub ctx: ferrossl::Context,
}

#[pymethods]
impl NativeContext {
    #[new]
    fn new(method: i32) -> PyResult<Self> {
        ferrossl::Context::from_method_id(method)
            .map(|ctx| Self { ctx })
            .map_err(ssl_error)
    }

    fn is_dtls(&self) -> bool {
        self.ctx.method().is_dtls()
    }

    fn set_min_proto_version(&self, v: i32) -> PyResult<()> {
        self.ctx.set_min_proto_version(v).map_err(ssl_error)
    }

    fn set_max_proto_version(&self, v: i32) -> PyResult<()> {
        self.ctx.set_max_proto_version(v).map_err(ssl_error)
    }

    fn set_options(&self, op: u64) -> u64 {
        self.ctx.set_options(op)
    }

    fn clear_options(&self, op: u64) -> u64 {
        self.ctx.clear_options(op)
    }

    fn set_mode(&self, mode: u64) -> u64 {
        self.ctx.set_mode(mode)
    }

    fn use_certificate(&self, cert: &NativeX509) {
        self.ctx.use_certificate(cert.cert.clone())
    }

    fn add_extra_chain_cert(&self, cert: &NativeX509) {
        self.ctx.add_extra_chain_cert(cert.cert.clone())
    }

    fn use_certificate_file(&self, path: FsPath, filetype: i32) -> PyResult<()> {
        self.ctx
            .use_certificate_file(path, filetype)
            .map_err(ssl_error)
    }

    fn use_certificate_chain_file(&self, path: FsPath) -> PyResult<()> {
        self.ctx.use_certificate_chain_file(path).map_err(ssl_error)
    }

    fn use_privatekey(&self, key: &NativePKey) {
        self.ctx.use_privatekey(key.key.clone())
    }

    fn use_privatekey_file(&self, path: FsPath, filetype: i32) -> PyResult<()> {
        self.ctx
            .use_privatekey_file(path, filetype)
            .map_err(ssl_error)
    }

    fn set_passwd_cb(&self, source: Py<PyAny>) {
        self.ctx.set_passwd_cb(passphrase_callback(source, true))
    }

    fn check_privatekey(&self) -> PyResult<()> {
        self.ctx.check_privatekey().map_err(ssl_error)
    }

    /// `callback(conn, cert_der, errnum, depth, ok) -> bool`, or None.
    #[pyo3(signature = (mode, callback=None))]
    fn set_verify(&self, mode: i32, callback: Option<Py<PyAny>>) {
        self.ctx.set_verify(mode, callback.map(verify_callback))
    }

    fn get_verify_mode(&self) -> i32 {
        self.ctx.verify_mode()
    }

    fn set_verify_depth(&self, depth: u32) {
        self.ctx.set_verify_depth(depth)
    }

    fn get_verify_depth(&self) -> u32 {
        self.ctx.verify_depth()
    }

    #[pyo3(signature = (cafile=None, capath=None))]
    fn load_verify_locations(
        &self,
        cafile: Option<FsPath>,
        capath: Option<FsPath>,
    ) -> PyResult<()> {
        self.ctx
            .load_verify_locations(cafile.as_deref(), capath.as_deref())
            .map_err(ssl_error)
    }

    fn set_default_verify_paths(&self) -> PyResult<()> {
        self.ctx.set_default_verify_paths().map_err(ssl_error)
    }

    fn get_cert_store(&self) -> NativeStore {
        NativeStore {
            store: self.ctx.get_cert_store(),
        }
    }

    fn set_check_hostname(&self, check: bool) {
        self.ctx.set_check_hostname(check)
    }

    fn set_cipher_list(&self, list: &str) -> PyResult<()> {
        self.ctx.set_cipher_list(list).map_err(ssl_error)
    }

    fn set_ciphersuites(&self, list: &str) -> PyResult<()> {
        self.ctx.set_ciphersuites(list).map_err(ssl_error)
    }

    fn get_cipher_list(&self) -> Vec<String> {
        self.ctx.get_cipher_list()
    }

    fn set_tmp_ecdh(&self, curve: &str) -> PyResult<()> {
        self.ctx.set_tmp_ecdh(curve).map_err(ssl_error)
    }

    fn set_groups(&self, names: Vec<String>) -> PyResult<()> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.ctx.set_groups(&refs).map_err(ssl_error)
    }

    fn set_session_id(&self, id: &[u8]) -> PyResult<()> {
        self.ctx.set_session_id(id).map_err(ssl_error)
    }

    fn set_session_cache_mode(&self, mode: i64) -> i64 {
        self.ctx.set_session_cache_mode(mode)
    }

    fn get_session_cache_mode(&self) -> i64 {
        self.ctx.get_session_cache_mode()
    }

    fn set_timeout(&self, seconds: u64) -> u64 {
        self.ctx.set_timeout(seconds)
    }

    fn get_timeout(&self) -> u64 {
        self.ctx.get_timeout()
    }

    fn set_client_ca_list(&self, names_der: Vec<Vec<u8>>) -> PyResult<()> {
        let names = names_der
            .iter()
            .map(|d| ferrossl::X509Name::from_der(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ssl_error)?;
        self.ctx.set_client_ca_list(names);
        Ok(())
    }

    fn add_client_ca(&self, cert: &NativeX509) {
        self.ctx.add_client_ca(&cert.cert)
    }

    fn load_client_ca(&self, path: FsPath) -> PyResult<()> {
        self.ctx.load_client_ca(path).map_err(ssl_error)
    }

    fn set_alpn_protos(&self, protos: Vec<Vec<u8>>) -> PyResult<()> {
        let refs: Vec<&[u8]> = protos.iter().map(Vec::as_slice).collect();
        self.ctx.set_alpn_protos(&refs).map_err(ssl_error)
    }

    /// `callback(conn, offered: list[bytes]) -> bytes | None`; None means no overlap and
    /// b"" aborts the handshake.
    fn set_alpn_select_callback(&self, callback: Py<PyAny>) {
        self.ctx.set_alpn_select_callback(Arc::new(move |hello| {
            call("ALPN select", |py| {
                let offered =
                    PyList::new(py, hello.alpn_offered().iter().map(|p| PyBytes::new(py, p)))?;
                let chosen = callback.call1(py, (owner(py, hello.ex_data()), offered))?;
                if chosen.is_none(py) {
                    return Ok(AlpnSelection::NoOverlap);
                }
                let chosen: Vec<u8> = chosen.extract(py)?;
                Ok(if chosen.is_empty() {
                    AlpnSelection::Abort
                } else {
                    AlpnSelection::Select(chosen)
                })
            })
        }))
    }

    /// `callback(conn)`; the callback may call `conn.set_context(other)`.
    fn set_tlsext_servername_callback(&self, callback: Py<PyAny>) {
        self.ctx
            .set_tlsext_servername_callback(Arc::new(move |hello| {
                if let Some(name) = hello.ex_data().get::<HelloName>() {
                    *name.0.lock().expect("hello name lock") =
                        hello.server_name().map(str::to_string);
                }
                call("servername", |py| {
                    callback
                        .call1(py, (owner(py, hello.ex_data()),))
                        .map(|_| ())
                })?;
                let switched = hello
                    .ex_data()
                    .get::<PendingContext>()
                    .and_then(|p| p.0.lock().expect("pending context lock").take());
                if let Some(ctx) = switched {
                    hello.set_context(&ctx);
                }
                Ok(())
            }))
    }

    /// `callback(conn, where, ret)`.
    fn set_info_callback(&self, callback: Py<PyAny>) {
        self.ctx.set_info_callback(info_callback(callback))
    }

    fn set_tlsext_use_srtp(&self, profiles: &str) -> PyResult<()> {
        self.ctx.set_tlsext_use_srtp(profiles).map_err(ssl_error)
    }

    /// `callback(conn) -> bytes`.
    fn set_cookie_generate_callback(&self, callback: Py<PyAny>) {
        self.ctx.set_cookie_generate_callback(Arc::new(move |ex| {
            call("cookie generate", |py| {
                callback.call1(py, (owner(py, ex),))?.extract::<Vec<u8>>(py)
            })
        }))
    }

    /// `callback(conn, cookie: bytes) -> bool`.
    fn set_cookie_verify_callback(&self, callback: Py<PyAny>) {
        self.ctx
            .set_cookie_verify_callback(Arc::new(move |ex, cookie| {
                call("cookie verify", |py| {
                    callback
                        .call1(py, (owner(py, ex), PyBytes::new(py, cookie)))?
                        .is_truthy(py)
                })
            }))
    }

    /// `callback(conn, line: bytes)`.
    fn set_keylog_callback(&self, callback: Py<PyAny>) {
        self.ctx.set_keylog_callback(Arc::new(move |ex, line| {
            let _ = call("keylog", |py| {
                callback
                    .call1(py, (owner(py, ex), PyBytes::new(py, line)))
                    .map(|_| ())
            });
        }))
    }

    /// `callback(conn) -> bytes` (what to staple).
    fn set_ocsp_server_callback(&self, callback: Py<PyAny>) {
        self.ctx.set_ocsp_server_callback(Arc::new(move |ex| {
            call("OCSP server", |py| {
                let v = callback.call1(py, (owner(py, ex),))?;
                v.extract::<Vec<u8>>(py).map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(
                        "OCSP callback must return a bytestring.",
                    )
                })
            })
        }))
    }

    /// `callback(conn, response: bytes) -> bool`.
    fn set_ocsp_client_callback(&self, callback: Py<PyAny>) {
        self.ctx.set_ocsp_client_callback(Arc::new(move |ex, resp| {
            call("OCSP client", |py| {
                callback
                    .call1(py, (owner(py, ex), PyBytes::new(py, resp)))?
                    .is_truthy(py)
            })
        }))
    }
}

/// Adapts `callback(conn, where, ret)` to the info callback.
pub fn info_callback(callback: Py<PyAny>) -> ferrossl::config::InfoCallback {
    Arc::new(move |ex, point, ret| {
        let _ = call("info", |py| {
            callback.call1(py, (owner(py, ex), point, ret)).map(|_| ())
        });
    })
}

/// Adapts `callback(conn, cert_der, errnum, depth, ok) -> bool` to the verify callback.
pub fn verify_callback(callback: Py<PyAny>) -> ferrossl::verify::VerifyCallback {
    Arc::new(move |p| {
        call("verify", |py| {
            let der = PyBytes::new(py, p.cert.to_der());
            callback
                .call1(py, (owner(py, p.ex_data), der, p.errnum, p.depth, p.ok))?
                .is_truthy(py)
        })
        .unwrap_or(false)
    })
}
