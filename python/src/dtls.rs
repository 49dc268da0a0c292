//! `ferrossl.dtls`' native half: `gio::DtlsConnection` over a Python datagram socket or one
//! client's share of a `gio::DtlsServer`, the server, the `Cancellable`, and the interaction
//! asked for passwords. Every blocking call runs with the GIL released and waits one slice at a
//! time (`transport::wait_in_slices`), taking the GIL between slices (to reach a Python socket
//! and run signal handlers), so a `Cancellable` triggered from another thread, or a signal
//! handler's exception, stops the call within a slice.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrossl::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
use ferrossl::gio::{
    AuthenticationMode, ChannelBindingType, DtlsConnection, DtlsServer, GioError, GioResult,
    InteractionResult, ServerLimits, TlsCertificateFlags, TlsInteraction, TlsPassword,
    TlsProtocolVersion,
};
use ferrossl::transport::{wait_in_slices, Cancellable, DatagramBased, PeerDatagrams, Timeout};
use parking_lot::{Mutex, ReentrantMutex};
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

/// Waits per `timeout` in slices, running signal handlers between them (what they raise ends
/// the wait): `attempt` gets each slice's own timeout and reports an empty slice as `TimedOut`.
fn in_slices<T>(
    timeout: Timeout,
    cancellable: Option<&Cancellable>,
    mut attempt: impl FnMut(Timeout) -> io::Result<T>,
) -> io::Result<T> {
    wait_in_slices(timeout, cancellable, |slice| {
        Python::with_gil(|py| py.check_signals().map_err(|e| to_io(py, e)))?;
        match attempt(slice.map_or(Timeout::NonBlocking, Timeout::after)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(e),
        }
    })
}

/// What a connection runs over: a Python socket, or one client's share of a `DtlsServer`'s
/// socket (whose waits also let signal handlers run).
pub enum Base {
    Socket(PyDatagrams),
    Server(PeerDatagrams),
}

impl DatagramBased for Base {
    /// The server's cookies are bound to it: a DTLS 1.3 association checks the cookie of
    /// the HelloRetryRequest that the server's stateless listener sent to this address.
    fn peer_address(&self) -> Option<SocketAddr> {
        match self {
            Base::Socket(s) => s.peer.as_ref().map(|p| SocketAddr::new(p.ip, p.port)),
            Base::Server(p) => p.peer_address(),
        }
    }

    /// A `DtlsServer` routes a moved client's datagrams by its connection ID.
    fn last_source(&self) -> Option<SocketAddr> {
        match self {
            Base::Socket(_) => None,
            Base::Server(p) => p.last_source(),
        }
    }

    fn move_peer(&self, address: SocketAddr) {
        if let Base::Server(p) = self {
            p.move_peer(address);
        }
    }

    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        match self {
            Base::Socket(s) => s.send_datagram(datagram, timeout, cancellable),
            Base::Server(p) => p.send_datagram(datagram, timeout, cancellable),
        }
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        match self {
            Base::Socket(s) => s.receive_datagram(buf, timeout, cancellable),
            Base::Server(p) => in_slices(timeout, cancellable, |slice| {
                p.receive_datagram(buf, slice, None)
            }),
        }
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

type Conn = DtlsConnection<Base>;

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
        GioError::Tls(ferrossl::Error::BadPassphrase(_)) => ("bad-password", 0),
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

/// A Python `TlsInteraction`, asked through `ferrossl.dtls._ask_password(interaction,
/// description, flags) -> (result, value)`; an exception it raises is parked (the running
/// call raises it) and the question fails.
struct PyInteraction(Py<PyAny>);

impl TlsInteraction for PyInteraction {
    fn ask_password(&self, password: &mut TlsPassword) -> InteractionResult {
        Python::with_gil(|py| {
            let answer = py
                .import("ferrossl.dtls")
                .and_then(|m| {
                    let args = (&self.0, password.description(), password.flags().0);
                    m.call_method1("_ask_password", args)
                })
                .and_then(|v| v.extract::<(u8, Option<Vec<u8>>)>());
            match answer {
                Ok((result, value)) => {
                    if let Some(value) = value {
                        password.set_value(&value);
                    }
                    match result {
                        1 => InteractionResult::Handled,
                        2 => InteractionResult::Failed,
                        _ => InteractionResult::Unhandled,
                    }
                }
                Err(e) => {
                    park(e);
                    InteractionResult::Failed
                }
            }
        })
    }
}

fn interaction(obj: Option<Py<PyAny>>) -> Option<Arc<dyn TlsInteraction>> {
    obj.map(|o| Arc::new(PyInteraction(o)) as Arc<dyn TlsInteraction>)
}

/// GIO's TlsAuthenticationMode values: 0 none, 1 requested, 2 required.
fn authentication_mode(mode: u8) -> PyResult<AuthenticationMode> {
    match mode {
        0 => Ok(AuthenticationMode::None),
        1 => Ok(AuthenticationMode::Requested),
        2 => Ok(AuthenticationMode::Required),
        _ => Err(PyValueError::new_err("unknown TlsAuthenticationMode")),
    }
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
        let conn = DtlsConnection::client(Base::Socket(base), server_identity);
        Ok(Self::wrap(conn))
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
        let conn = DtlsConnection::server(Base::Socket(base), cert.cert.clone(), key.key.clone());
        Ok(Self::wrap(conn))
    }

    #[pyo3(signature = (cancellable=None, timeout=None))]
    fn handshake(
        &self,
        py: Python<'_>,
        cancellable: Option<PyRef<'_, NativeCancellable>>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let (t, c) = (self::timeout(timeout)?, self::cancellable(cancellable));
        self.run(py, true, move |conn| conn.handshake_within(t, c.as_ref()))
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

    fn set_authentication_mode(&self, py: Python<'_>, mode: u8) -> PyResult<()> {
        let mode = authentication_mode(mode)?;
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

    /// Loads the chain and key from PEM; an encrypted key asks the interaction.
    fn set_certificate_pem(&self, py: Python<'_>, chain: Vec<u8>, key: Vec<u8>) -> PyResult<()> {
        self.run(py, false, move |c| c.set_certificate_pem(&chain, &key))
    }

    /// The chain's first certificate, as the connection holds it.
    fn get_certificate(&self, py: Python<'_>) -> PyResult<Option<NativeX509>> {
        self.look(py, |c| {
            c.get_certificate()
                .map(|cert| NativeX509 { cert: cert.clone() })
        })
    }

    #[pyo3(signature = (interaction))]
    fn set_interaction(&self, py: Python<'_>, interaction: Option<Py<PyAny>>) -> PyResult<()> {
        let interaction = self::interaction(interaction);
        self.run(py, false, move |c| {
            c.set_interaction(interaction);
            Ok(())
        })
    }

    /// The DER of each CA name the server's CertificateRequest gave.
    fn get_accepted_cas(&self, py: Python<'_>) -> PyResult<Vec<Vec<u8>>> {
        self.look(py, |c| {
            c.get_accepted_cas()
                .iter()
                .map(|name| name.to_der().to_vec())
                .collect()
        })
    }

    #[pyo3(signature = (profiles))]
    fn set_srtp_profiles(&self, py: Python<'_>, profiles: Option<String>) -> PyResult<()> {
        self.run(py, false, move |c| c.set_srtp_profiles(profiles.as_deref()))
    }

    fn get_selected_srtp_profile(&self, py: Python<'_>) -> PyResult<Option<&'static str>> {
        self.look(py, Conn::get_selected_srtp_profile)
    }

    #[pyo3(signature = (label, length, context=None))]
    fn export_keying_material<'py>(
        &self,
        py: Python<'py>,
        label: Vec<u8>,
        length: usize,
        context: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let material = self.run(py, false, move |c| {
            c.export_keying_material(&label, length, context.as_deref())
        })?;
        Ok(PyBytes::new(py, &material))
    }

    fn get_peer_certificate(&self, py: Python<'_>) -> PyResult<Option<NativeX509>> {
        self.look(py, |c| {
            c.get_peer_certificate().map(|cert| NativeX509 { cert })
        })
    }

    fn get_peer_certificate_errors(&self, py: Python<'_>) -> PyResult<u32> {
        self.look(py, |c| c.get_peer_certificate_errors().0)
    }

    /// GIO's TlsProtocolVersion value: 0 unknown, 202 DTLS 1.2, 203 DTLS 1.3 (see
    /// [`GIO_DTLS_1_3`]).
    fn get_protocol_version(&self, py: Python<'_>) -> PyResult<u16> {
        self.look(py, |c| match c.get_protocol_version() {
            TlsProtocolVersion::Dtls12 => GIO_DTLS_1_2,
            TlsProtocolVersion::Dtls13 => GIO_DTLS_1_3,
            TlsProtocolVersion::Unknown => 0,
        })
    }

    /// Bounds the DTLS versions, each a TlsProtocolVersion value (0: no bound).
    fn set_protocol_versions(&self, py: Python<'_>, min: u16, max: u16) -> PyResult<()> {
        let (min, max) = wire_versions(min, max)?;
        self.run(py, false, move |c| {
            c.set_protocol_versions(min, max);
            Ok(())
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

/// GIO's TlsProtocolVersion value for DTLS 1.2.
const GIO_DTLS_1_2: u16 = 202;
/// DTLS 1.3's TlsProtocolVersion value, a ferrossl addition: GIO's enumeration ends at
/// DTLS 1.2 (202), and this is the next value of its DTLS numbering.
const GIO_DTLS_1_3: u16 = 203;

/// The wire versions (`DTLS1_2_VERSION`, `DTLS1_3_VERSION`, 0 for no bound) that bound a
/// connection to the TlsProtocolVersion values `min` and `max`; a ValueError for a value that
/// is no DTLS version ferrossl speaks, or bounds that leave none.
fn wire_versions(min: u16, max: u16) -> PyResult<(i32, i32)> {
    let wire = |v: u16| match v {
        0 => Ok(0),
        GIO_DTLS_1_2 => Ok(DTLS1_2_VERSION),
        GIO_DTLS_1_3 => Ok(DTLS1_3_VERSION),
        201 => Err(PyValueError::new_err("DTLS 1.0 is refused on purpose")),
        other => Err(PyValueError::new_err(format!(
            "{other} is not a DTLS protocol version"
        ))),
    };
    let (min, max) = (wire(min)?, wire(max)?);
    if min == DTLS1_3_VERSION && max == DTLS1_2_VERSION {
        return Err(PyValueError::new_err(
            "a minimum of DTLS 1.3 and a maximum of DTLS 1.2 leave no version",
        ));
    }
    Ok((min, max))
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

/// GIO-style errors for the server's calls: the transport's wait results as GIO names them.
fn wait_error(e: io::Error) -> GioError {
    match e.kind() {
        io::ErrorKind::Interrupted => GioError::Cancelled,
        io::ErrorKind::TimedOut => GioError::TimedOut,
        io::ErrorKind::WouldBlock => GioError::WouldBlock,
        _ => GioError::Io(e),
    }
}

/// The socket module's form of an address: (host, port) for IPv4, (host, port, flowinfo,
/// scope_id) for IPv6.
fn socket_address(py: Python<'_>, addr: SocketAddr) -> PyResult<Bound<'_, PyTuple>> {
    match addr {
        SocketAddr::V4(a) => PyTuple::new(
            py,
            [
                a.ip().to_string().into_pyobject(py)?.into_any(),
                a.port().into_pyobject(py)?.into_any(),
            ],
        ),
        SocketAddr::V6(a) => PyTuple::new(
            py,
            [
                a.ip().to_string().into_pyobject(py)?.into_any(),
                a.port().into_pyobject(py)?.into_any(),
                a.flowinfo().into_pyobject(py)?.into_any(),
                a.scope_id().into_pyobject(py)?.into_any(),
            ],
        ),
    }
}

/// `gio::DtlsServer`, until `close()` drops it. Its calls hold their own reference, so a
/// close during an accept takes effect when that accept sees it (within a wait slice).
#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeDtlsServer {
    server: Mutex<Option<Arc<DtlsServer>>>,
}

impl NativeDtlsServer {
    fn server(&self) -> PyResult<Arc<DtlsServer>> {
        let server = self.server.lock().clone();
        server.ok_or_else(|| gio_error_now(GioError::Closed))
    }

    /// Changes a setting with the GIL released (the server's lock may be held by its reader).
    fn configure(
        &self,
        py: Python<'_>,
        change: impl FnOnce(&DtlsServer) -> GioResult<()> + Send,
    ) -> PyResult<()> {
        let server = self.server()?;
        clear_parked();
        py.allow_threads(|| change(&server))
            .map_err(|e| gio_error(py, e, false))
    }
}

fn gio_error_now(e: GioError) -> PyErr {
    Python::with_gil(|py| gio_error(py, e, false))
}

impl Drop for NativeDtlsServer {
    /// Drops the server (its reading thread stops within a read slice) without the GIL.
    fn drop(&mut self) {
        if let Some(server) = self.server.get_mut().take() {
            Python::with_gil(|py| py.allow_threads(move || drop(server)));
        }
    }
}

#[pymethods]
impl NativeDtlsServer {
    #[new]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        cert: &NativeX509,
        key: &NativePKey,
    ) -> PyResult<Self> {
        let (cert, key) = (cert.cert.clone(), key.key.clone());
        let server = py
            .allow_threads(move || DtlsServer::bind((host.as_str(), port), cert, key))
            .map_err(|e| gio_error(py, e, false))?;
        Ok(Self {
            server: Mutex::new(Some(Arc::new(server))),
        })
    }

    fn local_address<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let addr = self
            .server()?
            .local_addr()
            .map_err(|e| gio_error(py, e, false))?;
        socket_address(py, addr)
    }

    /// The next client's connection; stops with `Closed` when the server is closed meanwhile.
    #[pyo3(signature = (timeout=None, cancellable=None))]
    fn accept(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancellable: Option<PyRef<'_, NativeCancellable>>,
    ) -> PyResult<NativeDtlsConnection> {
        let (t, c) = (self::timeout(timeout)?, self::cancellable(cancellable));
        let server = self.server()?;
        let open = &self.server;
        clear_parked();
        let conn = py
            .allow_threads(move || {
                in_slices(t, c.as_ref(), |slice| {
                    if open.lock().is_none() {
                        return Err(io::Error::other(GioError::Closed));
                    }
                    server.accept(slice, None).map_err(|e| match e {
                        GioError::TimedOut => io::ErrorKind::TimedOut.into(),
                        GioError::WouldBlock => io::ErrorKind::WouldBlock.into(),
                        other => io::Error::other(other),
                    })
                })
                .map_err(|e| match e.downcast::<GioError>() {
                    Ok(gio) => gio,
                    Err(e) => wait_error(e),
                })
            })
            .map_err(|e| gio_error(py, e, false))?;
        Ok(NativeDtlsConnection::wrap(conn.map_base(Base::Server)))
    }

    fn close(&self, py: Python<'_>) {
        let server = self.server.lock().take();
        py.allow_threads(move || drop(server));
    }

    fn set_authentication_mode(&self, py: Python<'_>, mode: u8) -> PyResult<()> {
        let mode = authentication_mode(mode)?;
        self.configure(py, move |s| s.set_authentication_mode(mode))
    }

    #[pyo3(signature = (store))]
    fn set_database(&self, py: Python<'_>, store: Option<&NativeStore>) -> PyResult<()> {
        let store = store.map(|s| s.store.clone());
        self.configure(py, move |s| s.set_database(store.as_ref()))
    }

    #[pyo3(signature = (protocols))]
    fn set_advertised_protocols(
        &self,
        py: Python<'_>,
        protocols: Option<Vec<String>>,
    ) -> PyResult<()> {
        self.configure(py, move |s| {
            let refs: Option<Vec<&str>> = protocols
                .as_ref()
                .map(|p| p.iter().map(String::as_str).collect());
            s.set_advertised_protocols(refs.as_deref())
        })
    }

    fn set_require_close_notify(&self, py: Python<'_>, require: bool) -> PyResult<()> {
        self.configure(py, move |s| s.set_require_close_notify(require))
    }

    #[pyo3(signature = (interaction))]
    fn set_interaction(&self, py: Python<'_>, interaction: Option<Py<PyAny>>) -> PyResult<()> {
        let interaction = self::interaction(interaction);
        self.configure(py, move |s| s.set_interaction(interaction))
    }

    fn set_certificate_pem(&self, py: Python<'_>, chain: Vec<u8>, key: Vec<u8>) -> PyResult<()> {
        self.configure(py, move |s| s.set_certificate_pem(&chain, &key))
    }

    #[pyo3(signature = (profiles))]
    fn set_srtp_profiles(&self, py: Python<'_>, profiles: Option<String>) -> PyResult<()> {
        self.configure(py, move |s| s.set_srtp_profiles(profiles.as_deref()))
    }

    /// Bounds the DTLS versions of the associations to come (TlsProtocolVersion values).
    fn set_protocol_versions(&self, py: Python<'_>, min: u16, max: u16) -> PyResult<()> {
        let (min, max) = wire_versions(min, max)?;
        self.configure(py, move |s| s.set_protocol_versions(min, max))
    }

    /// `ServerLimits`: the two counts, then the two timeouts in seconds.
    fn set_limits(
        &self,
        py: Python<'_>,
        max_half_open: usize,
        max_associations: usize,
        handshake_timeout: f64,
        idle_timeout: f64,
    ) -> PyResult<()> {
        let seconds = |s: f64| {
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    PyValueError::new_err("the timeouts must be positive numbers of seconds")
                })
        };
        let limits = ServerLimits {
            max_half_open,
            max_associations,
            handshake_timeout: seconds(handshake_timeout)?,
            idle_timeout: seconds(idle_timeout)?,
        };
        self.configure(py, move |s| {
            s.set_limits(limits);
            Ok(())
        })
    }

    fn association_count(&self) -> PyResult<usize> {
        Ok(self.server()?.association_count())
    }

    fn half_open_count(&self) -> PyResult<usize> {
        Ok(self.server()?.half_open_count())
    }

    /// `ServerStats` in field order: hello_verify_requests, dropped, refused,
    /// associations_made, expired.
    fn stats(&self) -> PyResult<(u64, u64, u64, u64, u64)> {
        let s = self.server()?.stats();
        Ok((
            s.hello_verify_requests,
            s.dropped,
            s.refused,
            s.associations_made,
            s.expired,
        ))
    }
}

/// `ServerLimits::default()`: the counts, then the timeouts in seconds.
#[pyfunction]
fn default_server_limits() -> (usize, usize, f64, f64) {
    let d = ServerLimits::default();
    (
        d.max_half_open,
        d.max_associations,
        d.handshake_timeout.as_secs_f64(),
        d.idle_timeout.as_secs_f64(),
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeCancellable>()?;
    m.add_class::<NativeDtlsConnection>()?;
    m.add_class::<NativeDtlsServer>()?;
    m.add_function(wrap_pyfunction!(default_server_limits, m)?)
}
