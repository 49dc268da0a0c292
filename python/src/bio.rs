//! `ferrossl.bio`'s native half: the SSL object, BIOs and TLSSocket of the Rust API.

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

use ferrossl::bio::{Bio, BioMethod, Ssl};
use ferrossl::socket::TlsSocket;

use crate::ctx::NativeContext;
use crate::errors::ssl_error;
use crate::stream::PyStream;

#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeSsl {
    ssl: Ssl,
}

#[pymethods]
impl NativeSsl {
    #[new]
    fn new(ctx: &NativeContext) -> PyResult<Self> {
        Ssl::new(&ctx.ctx)
            .map(|ssl| Self { ssl })
            .map_err(ssl_error)
    }

    fn set_connect_state(&self) -> PyResult<()> {
        self.ssl.set_connect_state().map_err(ssl_error)
    }

    fn set_accept_state(&self) -> PyResult<()> {
        self.ssl.set_accept_state().map_err(ssl_error)
    }

    /// Runs over a Python socket object whose descriptor is `fd`.
    fn set_socket(&self, py: Python<'_>, sock: Py<PyAny>, fd: i32) -> PyResult<()> {
        let is_socket = crate::conn::is_socket(py, &sock)?;
        self.ssl
            .set_stream(Box::new(PyStream { sock, is_socket }), fd)
            .map_err(ssl_error)
    }

    fn get_fd(&self) -> i32 {
        self.ssl.get_fd()
    }

    fn connect(&self, py: Python<'_>) -> PyResult<()> {
        let ssl = self.ssl.clone();
        py.allow_threads(move || ssl.connect()).map_err(ssl_error)
    }

    fn accept(&self, py: Python<'_>) -> PyResult<()> {
        let ssl = self.ssl.clone();
        py.allow_threads(move || ssl.accept()).map_err(ssl_error)
    }

    fn write(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<usize> {
        let ssl = self.ssl.clone();
        py.allow_threads(move || ssl.write(&data))
            .map_err(ssl_error)
    }

    fn read<'py>(&self, py: Python<'py>, length: isize) -> PyResult<Bound<'py, PyBytes>> {
        let ssl = self.ssl.clone();
        let data = py
            .allow_threads(move || ssl.read(length))
            .map_err(ssl_error)?;
        Ok(PyBytes::new(py, &data))
    }

    fn shutdown(&self) -> PyResult<bool> {
        self.ssl.shutdown().map_err(ssl_error)
    }

    fn error(&self) -> i32 {
        self.ssl.error()
    }

    fn free(&self) {
        self.ssl.free()
    }
}

#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeBio {
    bio: Bio,
}

fn method(name: &str) -> PyResult<BioMethod> {
    Ok(match name {
        "mem" => BioMethod::Mem,
        "connect" => BioMethod::Connect,
        "accept" => BioMethod::Accept,
        "socket" => BioMethod::Socket,
        "ssl" => BioMethod::Ssl,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown BIO method {other:?}"
            )))
        }
    })
}

#[pymethods]
impl NativeBio {
    #[new]
    fn new(kind: &str) -> PyResult<Self> {
        Ok(Self {
            bio: Bio::new(method(kind)?),
        })
    }

    fn set_ssl(&self, ssl: &NativeSsl, flag: i32) -> PyResult<()> {
        self.bio.set_ssl(&ssl.ssl, flag).map_err(ssl_error)
    }

    fn set_conn_hostname(&self, v: &str) -> PyResult<()> {
        self.bio.set_conn_hostname(v).map_err(ssl_error)
    }

    fn set_conn_address(&self, v: &str) -> PyResult<()> {
        self.bio.set_conn_address(v).map_err(ssl_error)
    }

    fn set_conn_port(&self, v: &str) -> PyResult<()> {
        self.bio.set_conn_port(v).map_err(ssl_error)
    }

    fn set_conn_family(&self, v: i32) -> PyResult<()> {
        self.bio.set_conn_family(v).map_err(ssl_error)
    }

    fn get_conn_hostname(&self) -> PyResult<String> {
        self.bio.get_conn_hostname().map_err(ssl_error)
    }

    fn get_conn_address(&self) -> PyResult<String> {
        self.bio.get_conn_address().map_err(ssl_error)
    }

    fn get_conn_port(&self) -> PyResult<String> {
        self.bio.get_conn_port().map_err(ssl_error)
    }

    fn get_conn_family(&self) -> PyResult<i32> {
        self.bio.get_conn_family().map_err(ssl_error)
    }

    fn set_accept_name(&self, v: &str) -> PyResult<()> {
        self.bio.set_accept_name(v).map_err(ssl_error)
    }

    fn set_accept_port(&self, v: &str) -> PyResult<()> {
        self.bio.set_accept_port(v).map_err(ssl_error)
    }

    fn set_accept_family(&self, v: i32) -> PyResult<()> {
        self.bio.set_accept_family(v).map_err(ssl_error)
    }

    fn get_accept_name(&self) -> PyResult<String> {
        self.bio.get_accept_name().map_err(ssl_error)
    }

    fn get_accept_port(&self) -> PyResult<String> {
        self.bio.get_accept_port().map_err(ssl_error)
    }

    fn get_accept_family(&self) -> PyResult<i32> {
        self.bio.get_accept_family().map_err(ssl_error)
    }

    fn get_fd(&self) -> i32 {
        self.bio.get_fd()
    }

    fn set_non_blocking(&self, nonblocking: bool) -> PyResult<()> {
        self.bio.set_non_blocking(nonblocking).map_err(ssl_error)
    }

    fn push(&self, other: &NativeBio) -> PyResult<NativeBio> {
        self.bio
            .push(&other.bio)
            .map(|bio| NativeBio { bio })
            .map_err(ssl_error)
    }

    fn pop(&self) -> PyResult<Option<NativeBio>> {
        Ok(self
            .bio
            .pop()
            .map_err(ssl_error)?
            .map(|bio| NativeBio { bio }))
    }

    fn write(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<usize> {
        let bio = self.bio.clone();
        py.allow_threads(move || bio.write(&data))
            .map_err(ssl_error)
    }

    fn read<'py>(&self, py: Python<'py>, length: isize) -> PyResult<Bound<'py, PyBytes>> {
        let bio = self.bio.clone();
        let data = py
            .allow_threads(move || bio.read(length))
            .map_err(ssl_error)?;
        Ok(PyBytes::new(py, &data))
    }

    fn should_retry(&self) -> bool {
        self.bio.should_retry()
    }

    fn do_connect(&self, py: Python<'_>) -> PyResult<()> {
        let bio = self.bio.clone();
        py.allow_threads(move || bio.do_connect())
            .map_err(ssl_error)
    }

    fn do_accept(&self, py: Python<'_>) -> PyResult<Option<NativeBio>> {
        let bio = self.bio.clone();
        let accepted = py
            .allow_threads(move || bio.do_accept())
            .map_err(ssl_error)?;
        Ok(accepted.map(|bio| NativeBio { bio }))
    }

    fn error(&self) -> i32 {
        self.bio.error()
    }

    fn error_string(&self) -> String {
        self.bio.error_string()
    }

    fn free(&self) {
        self.bio.free()
    }
}

#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeTlsSocket {
    sock: std::sync::Mutex<TlsSocket>,
    /// The properties after the last operation: readable while another thread blocks in
    /// `accept` or `receive` holding the socket.
    props: std::sync::Mutex<Props>,
}

#[derive(Clone)]
struct Props {
    host: String,
    port: u16,
    numbers: [(&'static str, i64); 7],
    flags: [(&'static str, bool); 7],
}

fn props(s: &TlsSocket) -> Props {
    Props {
        host: s.host().to_string(),
        port: s.port(),
        numbers: [
            ("family", i64::from(s.family())),
            ("type", i64::from(s.socket_type())),
            ("protocol", i64::from(s.protocol())),
            ("id", i64::from(s.id())),
            ("shutdown_reason", i64::from(s.shutdown_reason())),
            ("send_timeout", s.send_timeout() as i64),
            ("receive_timeout", s.receive_timeout() as i64),
        ],
        flags: [
            ("is_client", s.is_client()),
            ("is_bound", s.is_bound()),
            ("is_connected", s.is_connected()),
            ("is_listening", s.is_listening()),
            ("is_closed", s.is_closed()),
            ("is_shutdown", s.is_shutdown()),
            ("is_blocking", s.is_blocking()),
        ],
    }
}

fn wrap(sock: TlsSocket) -> NativeTlsSocket {
    NativeTlsSocket {
        props: std::sync::Mutex::new(props(&sock)),
        sock: std::sync::Mutex::new(sock),
    }
}

impl NativeTlsSocket {
    fn with<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut TlsSocket) -> ferrossl::Result<R> + Send,
    ) -> PyResult<R> {
        py.allow_threads(|| {
            let mut sock = self
                .sock
                .lock()
                .map_err(|_| ferrossl::Error::WrongState("socket lock poisoned"))?;
            let result = f(&mut sock);
            if let Ok(mut p) = self.props.lock() {
                *p = props(&sock);
            }
            result
        })
        .map_err(ssl_error)
    }
}

#[pymethods]
impl NativeTlsSocket {
    #[new]
    #[pyo3(signature = (ctx=None))]
    fn new(ctx: Option<&NativeContext>) -> PyResult<Self> {
        TlsSocket::new(None, ctx.map(|c| c.ctx.clone()))
            .map(wrap)
            .map_err(ssl_error)
    }

    fn set_family(&self, py: Python<'_>, family: i32) -> PyResult<()> {
        self.with(py, |s| s.set_family(family))
    }

    fn connect(&self, py: Python<'_>, host: String, port: u16, timeout_ms: u64) -> PyResult<()> {
        self.with(py, |s| s.connect(&host, port, timeout_ms))
    }

    fn bind(&self, py: Python<'_>, port: u16, host: String) -> PyResult<()> {
        self.with(py, |s| s.bind(port, &host))
    }

    fn listen(&self, py: Python<'_>, backlog: i32) -> PyResult<()> {
        self.with(py, |s| s.listen(backlog))
    }

    fn accept(&self, py: Python<'_>) -> PyResult<NativeTlsSocket> {
        self.with(py, |s| s.accept()).map(wrap)
    }

    fn send(&self, py: Python<'_>, data: PyBackedBytes) -> PyResult<usize> {
        self.with(py, |s| s.send(&data))
    }

    fn receive<'py>(&self, py: Python<'py>, length: isize) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.with(py, |s| s.receive(length))?;
        Ok(PyBytes::new(py, &data))
    }

    fn read<'py>(&self, py: Python<'py>, length: usize) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.with(py, |s| s.read(length))?;
        Ok(PyBytes::new(py, &data))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.close())
    }

    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.shutdown())
    }

    fn set_option(&self, py: Python<'_>, option: i32, value: i64) -> PyResult<()> {
        self.with(py, |s| s.set_option(option, value))
    }

    fn get_option(&self, py: Python<'_>, option: i32) -> PyResult<i64> {
        self.with(py, |s| s.get_option(option))
    }

    fn set_blocking(&self, py: Python<'_>, blocking: bool) -> PyResult<()> {
        self.with(py, |s| s.set_blocking(blocking))
    }

    fn set_send_timeout(&self, py: Python<'_>, ms: u64) -> PyResult<()> {
        self.with(py, |s| s.set_send_timeout(ms))
    }

    fn set_receive_timeout(&self, py: Python<'_>, ms: u64) -> PyResult<()> {
        self.with(py, |s| s.set_receive_timeout(ms))
    }

    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let info = self.with(py, |s| Ok(s.info()))?;
        let d = PyDict::new(py);
        if let Some(info) = info {
            d.set_item("address", info.address)?;
            d.set_item("port", info.port)?;
            d.set_item("family", info.family)?;
        }
        Ok(d)
    }

    /// Every property at once, as a dict.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let p = self
            .props
            .lock()
            .map_err(|_| ssl_error(ferrossl::Error::WrongState("socket lock poisoned")))?
            .clone();
        let d = PyDict::new(py);
        d.set_item("host", p.host)?;
        d.set_item("port", p.port)?;
        for (k, v) in p.numbers {
            d.set_item(k, v)?;
        }
        for (k, v) in p.flags {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
}
