//! `ferrossl.dtls`' native half: `gio::DtlsConnection` over a Python datagram socket, and its
//! `Cancellable`. Every blocking call runs with the GIL released; the socket is reached under
//! the GIL one wait slice at a time (`transport::wait_in_slices`), so a `Cancellable`
//! triggered from another thread, or a signal handler's exception, stops the call within a
//! slice.

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrossl::gio::{
    AuthenticationMode, ChannelBindingType, DtlsConnection, GioError, GioResult,
    TlsCertificateFlags, TlsProtocolVersion,
};
use ferrossl::transport::{wait_in_slices, Cancellable, DatagramBased, Timeout};
use parking_lot::ReentrantMutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};

use crate::errors::{clear_parked, park, take_parked};
use crate::stream::to_io;
use crate::x509::{NativePKey, NativeStore, NativeX509};

/// A Python `socket.socket` of type `SOCK_DGRAM`: connected, or talking to one peer through
/// `sendto`/`recvfrom` (datagrams from anyone else are dropped). The socket's own timeout is
/// set for each wait slice and put back when the call ends.
pub struct PyDatagrams {
    sock: Py<PyAny>,
    peer: Option<Peer>,
}

struct Peer {
    /// The address as the socket module takes it, for `sendto`.
    address: Py<PyAny>,
    ip: IpAddr,
    port: u16,
}

/// The (IP, port) of a socket-module address tuple; None for a non-IP address.
fn ip_port(address: &Bound<'_, PyAny>) -> Option<(IpAddr, u16)> {
    let host: String = address.get_item(0).ok()?.extract().ok()?;
    let port: u16 = address.get_item(1).ok()?.extract().ok()?;
    // An IPv6 link-local address may carry "%scope".
    let ip = host.split('%').next()?.parse().ok()?;
    Some((ip, port))
}

impl PyDatagrams {
    fn new(sock: Py<PyAny>, peer: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let peer = peer
            .map(|address| {
                let (ip, port) = ip_port(address).ok_or_else(|| {
                    PyValueError::new_err("peer_address must be a numeric (host, port) address")
                })?;
                Ok::<_, PyErr>(Peer {
                    address: address.clone().unbind(),
                    ip,
                    port,
                })
            })
            .transpose()?;
        Ok(Self { sock, peer })
    }

    /// Runs `attempt` on the socket in wait slices, restoring the socket's timeout after.
    fn wait<T>(
        &self,
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
        mut attempt: impl FnMut(&Bound<'_, PyAny>) -> PyResult<Option<T>>,
    ) -> io::Result<T> {
        let saved = Python::with_gil(|py| {
            self.sock
                .call_method0(py, "gettimeout")
                .map_err(|e| to_io(py, e))
        })?;
        let result = wait_in_slices(timeout, cancellable, |slice| {
            Python::with_gil(|py| {
                let sock = self.sock.bind(py);
                // A timeout of 0.0 makes the socket non-blocking.
                let secs = slice.map_or(0.0, |d| d.as_secs_f64());
                // Signal handlers (Ctrl-C) run between slices; what they raise ends the call.
                py.check_signals()
                    .and_then(|_| sock.call_method1("settimeout", (secs,)))
                    .and_then(|_| attempt(sock))
                    .map_err(|e| to_io(py, e))
            })
        });
        Python::with_gil(|py| {
            // A socket closed under the call cannot take its timeout back; the call's own
            // result says what happened.
            let _ = self.sock.call_method1(py, "settimeout", (saved,));
        });
        result
    }
}

impl DatagramBased for PyDatagrams {
    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        self.wait(timeout, cancellable, |sock| {
            let data = PyBytes::new(sock.py(), datagram);
            let sent = match &self.peer {
                Some(peer) => sock.call_method1("sendto", (data, peer.address.bind(sock.py())))?,
                None => sock.call_method1("send", (data,))?,
            };
            sent.extract().map(Some)
        })
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        self.wait(timeout, cancellable, |sock| {
            let data = match &self.peer {
                Some(peer) => {
                    let got = sock.call_method1("recvfrom", (buf.len(),))?;
                    let from = got.get_item(1)?;
                    if ip_port(&from) != Some((peer.ip, peer.port)) {
                        return Ok(None);
                    }
                    got.get_item(0)?
                }
                None => sock.call_method1("recv", (buf.len(),))?,
            };
            let bytes = data.downcast::<PyBytes>()?.as_bytes();
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok(Some(n))
        })
    }
}

/// GIO's `Cancellable`: a flag another thread sets to stop a blocking call.
#[pyclass(module = "ferrossl._native", frozen)]
#[derive(Default)]
pub struct NativeCancellable {
    inner: Cancellable,
}

#[pymethods]
impl NativeCancellable {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn cancel(&self) {
        self.inner.cancel()
    }

    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    fn reset(&self) {
        self.inner.reset()
    }
}

type Conn = DtlsConnection<PyDatagrams>;

const BUSY: GioError = GioError::Tls(ferrossl::Error::WrongState(
    "the connection is busy: called from its own accept-certificate handler",
));

/// The most datagrams one `receive_messages` call returns (it may always return fewer).
const MAX_MESSAGES: usize = 1024;

/// The blocking-call timeout: None blocks, 0 does not wait, seconds set a deadline (one past
/// what the clock can represent blocks).
fn timeout(seconds: Option<f64>) -> PyResult<Timeout> {
    match seconds {
        None => Ok(Timeout::Block),
        Some(0.0) => Ok(Timeout::NonBlocking),
        Some(s) if s > 0.0 => Ok(Duration::try_from_secs_f64(s)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))
            .map_or(Timeout::Block, Timeout::Deadline)),
        Some(_) => Err(PyValueError::new_err(
            "timeout must be None, 0 or a positive number of seconds",
        )),
    }
}

/// The Python exception for a GioError: built by `ferrossl.dtls._error(kind, message,
/// detail)`, where the exception classes and GIO's codes live. An exception raised by the
/// socket or by the accept-certificate handler is raised as it is.
fn gio_error(py: Python<'_>, e: GioError, handshake: bool) -> PyErr {
    if let Some(parked) = take_parked() {
        return parked;
    }
    let message = e.to_string();
    let (kind, detail) = match e {
        GioError::Closed => ("closed", 0),
        GioError::Cancelled => ("cancelled", 0),
        GioError::TimedOut => ("timed-out", 0),
        GioError::WouldBlock => ("would-block", 0),
        GioError::Eof => ("eof", 0),
        GioError::CertificateRequired => ("certificate-required", 0),
        GioError::BadCertificate(flags) => ("bad-certificate", i64::from(flags.0)),
        GioError::Tls(ferrossl::Error::InvalidArgument(m)) => return PyValueError::new_err(m),
        GioError::Tls(ferrossl::Error::NotSupported(_)) => ("not-supported", 0),
        GioError::Tls(_) if handshake => ("handshake", 0),
        GioError::Tls(_) => ("tls", 0),
        GioError::Io(e) => ("io", e.raw_os_error().map_or(0, i64::from)),
        _ => ("tls", 0),
    };
    python_error(py, kind, message, detail)
}

/// `ferrossl.dtls._error(kind, message, detail)`, raised.
fn python_error(py: Python<'_>, kind: &str, message: String, detail: i64) -> PyErr {
    py.import("ferrossl.dtls")
        .and_then(|m| m.call_method1("_error", (kind, message, detail)))
        .map_or_else(|err| err, PyErr::from_value)
}

/// The accept-certificate handler: asks `callback(cert, flags)`; an exception it raises is
/// parked (the handshake fails and the running call raises it).
fn accept_handler(callback: Py<PyAny>) -> ferrossl::gio::AcceptCertificate {
    Arc::new(move |cert, flags| {
        Python::with_gil(|py| {
            let cert = NativeX509 { cert: cert.clone() };
            match callback
                .call1(py, (cert, flags.0))
                .and_then(|v| v.is_truthy(py))
            {
                Ok(accept) => accept,
                Err(e) => {
                    park(e);
                    false
                }
            }
        })
    })
}

/// A `gio::DtlsConnection` behind a re-entrant lock: a call from the accept-certificate
/// handler (inside the handshake) gets a clear error instead of a deadlock.
#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeDtlsConnection {
    conn: ReentrantMutex<RefCell<Conn>>,
}

impl NativeDtlsConnection {
    fn wrap(conn: Conn) -> Self {
        Self {
            conn: ReentrantMutex::new(RefCell::new(conn)),
        }
    }

    /// Runs `f` with the GIL released (waiting for the lock included: the holder may need
    /// the GIL to reach its socket). `handshake` says a TLS failure is a handshake failure.
    fn run<R: Send>(
        &self,
        py: Python<'_>,
        handshake: bool,
        f: impl FnOnce(&mut Conn) -> GioResult<R> + Send,
    ) -> PyResult<R> {
        clear_parked();
        let conn = &self.conn;
        py.allow_threads(move || {
            let guard = conn.lock();
            let mut c = guard.try_borrow_mut().map_err(|_| BUSY)?;
            f(&mut c)
        })
        .map_err(|e| gio_error(py, e, handshake))
    }

    /// Reads a setting or a result (no I/O).
    fn look<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&Conn) -> R + Send) -> PyResult<R> {
        self.run(py, false, |c| Ok(f(c)))
    }
}

fn cancellable(c: Option<PyRef<'_, NativeCancellable>>) -> Option<Cancellable> {
    c.map(|c| c.inner.clone())
}

#[pymethods]
impl NativeDtlsConnection {
    #[staticmethod]
    #[pyo3(signature = (sock, peer, server_identity))]
    fn client(
        sock: Py<PyAny>,
        peer: Option<Bound<'_, PyTuple>>,
        server_identity: Option<&str>,
    ) -> PyResult<Self> {
        let base = PyDatagrams::new(sock, peer.as_ref().map(|p| p.as_any()))?;
        Ok(Self::wrap(DtlsConnection::client(base, server_identity)))
    }

    #[staticmethod]
    #[pyo3(signature = (sock, peer, cert, key))]
    fn server(
        sock: Py<PyAny>,
        peer: Option<Bound<'_, PyTuple>>,
        cert: &NativeX509,
        key: &NativePKey,
    ) -> PyResult<Self> {
        let base = PyDatagrams::new(sock, peer.as_ref().map(|p| p.as_any()))?;
        let conn = DtlsConnection::server(base, cert.cert.clone(), key.key.clone());
        Ok(Self::wrap(conn))
    }

    #[pyo3(signature = (cancellable=None))]
    fn handshake(
        &self,
        py: Python<'_>,
        cancellable: Option<PyRef<'_, NativeCancellable>>,
    ) -> PyResult<()> {
        let c = self::cancellable(cancellable);
        self.run(py, true, move |conn| conn.handshake(c.as_ref()))
    }

    #[pyo3(signature = (messages, timeout=None, cancellable=None))]
    fn send_messages(
        &self,
        py: Python<'_>,
        messages: Vec<PyBackedBytes>,
        timeout: Option<f64>,
        cancellable: Option<PyRef<'_, NativeCancellable>>,
    ) -> PyResult<usize> {
        let (t, c) = (self::timeout(timeout)?, self::cancellable(cancellable));
        self.run(py, false, move |conn| {
            let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
            conn.send_messages(&refs, t, c.as_ref())
        })
    }

    #[pyo3(signature = (count, timeout=None, cancellable=None))]
    fn receive_messages<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        timeout: Option<f64>,
        cancellable: Option<PyRef<'_, NativeCancellable>>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let (t, c) = (self::timeout(timeout)?, self::cancellable(cancellable));
        let got = self.run(py, false, move |conn| {
            let mut buffers = vec![Vec::new(); count.min(MAX_MESSAGES)];
            let n = conn.receive_messages(&mut buffers, t, c.as_ref())?;
            buffers.truncate(n);
            Ok(buffers)
        })?;
        Ok(got.iter().map(|b| PyBytes::new(py, b)).collect())
    }

    #[pyo3(signature = (shutdown_read, shutdown_write, cancellable=None))]
    fn shutdown(
        &self,
        py: Python<'_>,
        shutdown_read: bool,
        shutdown_write: bool,
        cancellable: Option<PyRef<'_, NativeCancellable>>,
    ) -> PyResult<()> {
        let c = self::cancellable(cancellable);
        self.run(py, false, move |conn| {
            conn.shutdown(shutdown_read, shutdown_write, c.as_ref())
        })
    }

    fn set_require_close_notify(&self, py: Python<'_>, require: bool) -> PyResult<()> {
        self.run(py, false, move |c| {
            c.set_require_close_notify(require);
            Ok(())
        })
    }

    fn get_require_close_notify(&self, py: Python<'_>) -> PyResult<bool> {
        self.look(py, Conn::get_require_close_notify)
    }

    fn set_certificate(&self, py: Python<'_>, cert: &NativeX509, key: &NativePKey) -> PyResult<()> {
        let (cert, key) = (cert.cert.clone(), key.key.clone());
        self.run(py, false, move |c| {
            c.set_certificate(cert, key);
            Ok(())
        })
    }

    #[pyo3(signature = (store))]
    fn set_database(&self, py: Python<'_>, store: Option<&NativeStore>) -> PyResult<()> {
        let store = store.map(|s| s.store.clone());
        self.run(py, false, move |c| c.set_database(store.as_ref()))
    }

    fn get_database(&self, py: Python<'_>) -> PyResult<NativeStore> {
        self.look(py, |c| NativeStore {
            store: c.get_database(),
        })
    }

    fn set_accept_certificate_handler(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        let handler = accept_handler(callback);
        self.run(py, false, move |c| {
            c.set_accept_certificate_handler(handler);
            Ok(())
        })
    }

    fn set_validation_flags(&self, py: Python<'_>, flags: u32) -> PyResult<()> {
        self.run(py, false, move |c| {
            c.set_validation_flags(TlsCertificateFlags(flags));
            Ok(())
        })
    }

    /// GIO's TlsAuthenticationMode values: 0 none, 1 requested, 2 required.
    fn set_authentication_mode(&self, py: Python<'_>, mode: u8) -> PyResult<()> {
        let mode = match mode {
            0 => AuthenticationMode::None,
            1 => AuthenticationMode::Requested,
            2 => AuthenticationMode::Required,
            _ => return Err(PyValueError::new_err("unknown TlsAuthenticationMode")),
        };
        self.run(py, false, move |c| {
            c.set_authentication_mode(mode);
            Ok(())
        })
    }

    #[pyo3(signature = (protocols))]
    fn set_advertised_protocols(
        &self,
        py: Python<'_>,
        protocols: Option<Vec<String>>,
    ) -> PyResult<()> {
        self.run(py, false, move |c| {
            let refs: Option<Vec<&str>> = protocols
                .as_ref()
                .map(|p| p.iter().map(String::as_str).collect());
            c.set_advertised_protocols(refs.as_deref())
        })
    }

    fn get_negotiated_protocol(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.look(py, Conn::get_negotiated_protocol)
    }

    fn get_peer_certificate(&self, py: Python<'_>) -> PyResult<Option<NativeX509>> {
        self.look(py, |c| {
            c.get_peer_certificate().map(|cert| NativeX509 { cert })
        })
    }

    fn get_peer_certificate_errors(&self, py: Python<'_>) -> PyResult<u32> {
        self.look(py, |c| c.get_peer_certificate_errors().0)
    }

    /// GIO's TlsProtocolVersion value: 0 unknown, 202 DTLS 1.2 (DTLS 1.3 has none yet: 0).
    fn get_protocol_version(&self, py: Python<'_>) -> PyResult<u16> {
        self.look(py, |c| match c.get_protocol_version() {
            TlsProtocolVersion::Dtls12 => 202,
            _ => 0,
        })
    }

    fn get_ciphersuite_name(&self, py: Python<'_>) -> PyResult<Option<&'static str>> {
        self.look(py, Conn::get_ciphersuite_name)
    }

    /// GIO's TlsChannelBindingType values: 0 tls-unique, 1 tls-server-end-point,
    /// 2 tls-exporter. A failure raises `ChannelBindingError` with GIO's reason.
    fn get_channel_binding_data<'py>(
        &self,
        py: Python<'py>,
        kind: u8,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let kind = match kind {
            0 => ChannelBindingType::Unique,
            1 => ChannelBindingType::ServerEndPoint,
            2 => ChannelBindingType::Exporter,
            _ => return Err(PyValueError::new_err("unknown TlsChannelBindingType")),
        };
        match self.look(py, move |c| c.get_channel_binding_data(kind))? {
            Ok(data) => Ok(PyBytes::new(py, &data)),
            Err(e) => Err(binding_error(py, e)),
        }
    }
}

/// `ChannelBindingError` with GIO's TlsChannelBindingError case for a failure.
fn binding_error(py: Python<'_>, e: GioError) -> PyErr {
    let kind = match &e {
        GioError::Tls(ferrossl::Error::WrongState(_)) => "binding-invalid-state",
        GioError::Tls(ferrossl::Error::NotSupported(_)) => "binding-not-supported",
        GioError::Tls(ferrossl::Error::Missing(_)) => "binding-not-available",
        _ => "binding-general-error",
    };
    python_error(py, kind, e.to_string(), 0)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeCancellable>()?;
    m.add_class::<NativeDtlsConnection>()
}
