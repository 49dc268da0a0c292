//! `NativeConnection` and `NativeSession`. The connection sits behind a re-entrant lock, so a
//! callback running inside a handshake can still reach the connection object; a call that would
//! need the connection while the handshake holds it gets a clear error instead of a deadlock.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use ferrossl::ex_data::ExData;
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use pyo3::exceptions::{PyBlockingIOError, PyOSError, PyTimeoutError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyType};

use crate::args;
use crate::ctx::{info_callback, verify_callback, HelloName, NativeContext, Owner, PendingContext};
use crate::errors::{clear_parked, ssl_error, take_parked, WantReadError};
use crate::stream::PyStream;

use crate::x509::{NativePKey, NativeX509};

thread_local! {
    /// Where `recv` decrypts and `bio_read` copies into before the bytes object is made.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most one `recv` or `bio_read` returns: a huge size asked for must not allocate (or
/// abort on) that much up front; a read may return less than asked anyway.
const MAX_READ: usize = 1 << 20;

/// This thread's scratch buffer, taken for one read (so that a read that finds nothing
/// allocates nothing) and given back when dropped. A callback that reads on another
/// connection during the read finds the slot empty and uses a buffer of its own.
struct Scratch {
    buf: Vec<u8>,
    /// How much of it the read may fill.
    len: usize,
}

impl Scratch {
    /// Room for a read of up to `len` bytes (at most [`MAX_READ`]).
    fn take(len: usize) -> Self {
        let len = len.min(MAX_READ);
        let mut buf = SCRATCH.with(|slot| std::mem::take(&mut *slot.borrow_mut()));
        if buf.len() < len {
            buf.resize(len, 0);
        }
        Self { buf, len }
    }

    fn room(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// The bytes object of the first `got` bytes the read left.
    fn bytes<'py>(&self, py: Python<'py>, got: usize) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.buf[..got])
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        SCRATCH.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.len() < self.buf.len() {
                *slot = std::mem::take(&mut self.buf);
            }
        });
    }
}

type Shared = ReentrantMutex<RefCell<ferrossl::Connection>>;

/// The connection under its lock.
type Locked<'a> = ReentrantMutexGuard<'a, RefCell<ferrossl::Connection>>;

#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeConnection {
    conn: Shared,
    ex: Arc<ExData>,
    /// Over a socket object rather than memory BIOs.
    has_socket: bool,
    /// The socket, when it is a `socket.socket`, whose readiness a blocking read waits for
    /// without holding the connection (see [`NativeConnection::wait_readable`]).
    peekable: Option<Py<PyAny>>,
}

/// `socket.socket`, the type whose `recv` takes `MSG_PEEK`.
static SOCKET_TYPE: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// Whether `sock` is a `socket.socket` (not an object that only looks like one).
pub(crate) fn is_socket(py: Python<'_>, sock: &Py<PyAny>) -> PyResult<bool> {
    let socket = SOCKET_TYPE.import(py, "socket", "socket")?;
    sock.bind(py).is_instance(socket)
}

/// The largest write pyOpenSSL takes at once: `SSL_write`'s length is a C int.
const MAX_WRITE: usize = i32::MAX as usize;

/// The most plaintext a read or write may seal or open without releasing the GIL: one
/// record's worth.
const SMALL_IO: usize = 16 * 1024;

/// `socket.MSG_PEEK`, the one `recv` flag that changes anything (2 on every platform Python
/// supports).
const MSG_PEEK: i64 = 2;

const BUSY: ferrossl::Error =
    ferrossl::Error::WrongState("the connection is busy: called from one of its own callbacks");

fn x509(c: ferrossl::X509) -> NativeX509 {
    NativeX509 { cert: c }
}

impl NativeConnection {
    /// Takes the connection's lock, waiting for it (if it must) without the GIL: the thread
    /// holding it may need the GIL (a socket call, a callback) before it lets go.
    fn lock(&self) -> Locked<'_> {
        if let Some(guard) = self.conn.try_lock() {
            return guard;
        }
        Python::with_gil(|py| loop {
            py.allow_threads(|| drop(self.conn.lock()));
            if let Some(guard) = self.conn.try_lock() {
                return guard;
            }
        })
    }

    /// `recv` over a `socket.socket`: whenever the read would have to wait for the socket,
    /// it waits for the socket to be readable (a `MSG_PEEK`, which leaves the bytes in place)
    /// without holding the connection, then reads the socket once under it; so another
    /// thread's `shutdown` or `send` goes through while a read waits, as with pyOpenSSL, even
    /// when what arrives is no data (a TLS 1.3 session ticket). A socket with a timeout that
    /// expires, or a non-blocking one with nothing to read, raises WantReadError as a read
    /// would.
    fn recv_from_socket(&self, py: Python<'_>, buf: &mut [u8], peek: bool) -> PyResult<usize> {
        loop {
            if !self.with_lock(|c| c.recv_awaits_transport())? {
                return self.run(py, |c| if peek { c.recv_peek(buf) } else { c.recv(buf) });
            }
            self.wait_readable(py)?;
            match self.run(py, |c| c.recv_once(buf, peek)) {
                // What came was no data yet: wait again, letting other threads in.
                Err(e) if e.is_instance_of::<WantReadError>(py) => continue,
                other => return other,
            }
        }
    }

    /// Waits, without the connection, until the socket has something to read.
    fn wait_readable(&self, py: Python<'_>) -> PyResult<()> {
        let Some(sock) = &self.peekable else {
            return Ok(());
        };
        match sock.call_method1(py, intern!(py, "recv"), (1, MSG_PEEK)) {
            Err(e)
                if e.is_instance_of::<PyBlockingIOError>(py)
                    || e.is_instance_of::<PyTimeoutError>(py) =>
            {
                Err(ssl_error(ferrossl::Error::WantRead))
            }
            // A signal's exception (KeyboardInterrupt) is the caller's.
            Err(e) if !e.is_instance_of::<PyOSError>(py) => Err(e),
            // Data, EOF or a socket error: the read itself reports it.
            _ => Ok(()),
        }
    }

    /// Whether this thread is inside one of the connection's callbacks (it holds the lock,
    /// and the connection is borrowed by the operation that called back).
    fn in_own_callback(&self) -> bool {
        self.conn
            .try_lock()
            .is_some_and(|guard| guard.try_borrow_mut().is_err())
    }

    /// Runs `f` on the connection under its lock, with the GIL held (for cheap calls).
    fn with_lock<R>(&self, f: impl FnOnce(&mut ferrossl::Connection) -> R) -> PyResult<R> {
        let guard = self.lock();
        let mut c = guard.try_borrow_mut().map_err(|_| ssl_error(BUSY))?;
        Ok(f(&mut c))
    }

    /// Runs `f` on the connection with the GIL released. An exception raised by a callback
    /// that cannot fail the operation (info, keylog) is raised once the operation is over.
    fn run<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut ferrossl::Connection) -> ferrossl::Result<R> + Send,
    ) -> PyResult<R> {
        clear_parked();
        let conn = &self.conn;
        let result = py.allow_threads(move || {
            let guard = conn.lock();
            let mut c = guard.try_borrow_mut().map_err(|_| BUSY)?;
            f(&mut c)
        });
        finish(result)
    }

    /// As [`Self::run`] for a read or write of `payload` bytes: on a memory-BIO connection
    /// past its handshake, a call that seals or opens at most a record or so keeps the GIL,
    /// because releasing and taking it back costs as much as other threads could gain (a
    /// third of a 64-byte write); handshakes, sockets and big payloads release it.
    fn run_io<R: Send>(
        &self,
        py: Python<'_>,
        payload: usize,
        f: impl FnOnce(&mut ferrossl::Connection) -> ferrossl::Result<R> + Send,
    ) -> PyResult<R> {
        if payload <= SMALL_IO && !self.has_socket {
            // Only a free lock: waiting for it with the GIL held would deadlock with a call
            // on another thread that holds the lock while its callback waits for the GIL.
            if let Some(guard) = self.conn.try_lock() {
                if let Ok(mut c) = guard.try_borrow_mut() {
                    if c.is_handshake_done() {
                        clear_parked();
                        return finish(f(&mut c));
                    }
                }
            }
        }
        self.run(py, f)
    }

    /// pyOpenSSL's error for a memory-BIO method on a connection over a socket.
    fn memory_only(&self) -> PyResult<()> {
        if self.has_socket {
            return Err(PyTypeError::new_err("Connection sock was not None"));
        }
        Ok(())
    }

    /// Reads from the connection (no GIL release: these are cheap).
    fn look<R>(&self, f: impl FnOnce(&ferrossl::Connection) -> R) -> PyResult<R> {
        let guard = self.lock();
        let c = guard.try_borrow().map_err(|_| ssl_error(BUSY))?;
        Ok(f(&c))
    }
}

/// The Python outcome of a call: an exception a callback raised during it comes first.
fn finish<R>(result: ferrossl::Result<R>) -> PyResult<R> {
    let result = result.map_err(ssl_error)?;
    match take_parked() {
        Some(raised) => Err(raised),
        None => Ok(result),
    }
}

fn bytes_opt(py: Python<'_>, v: Option<Vec<u8>>) -> Option<Bound<'_, PyBytes>> {
    v.map(|b| PyBytes::new(py, &b))
}

#[pymethods]
impl NativeConnection {
    #[new]
    #[pyo3(signature = (ctx, sock=None))]
    fn new(py: Python<'_>, ctx: &NativeContext, sock: Option<Py<PyAny>>) -> PyResult<Self> {
        let has_socket = sock.is_some();
        let peekable = match &sock {
            Some(s) if is_socket(py, s)? => Some(s.clone_ref(py)),
            _ => None,
        };
        let conn = match sock {
            Some(sock) => ferrossl::Connection::with_stream(
                &ctx.ctx,
                PyStream {
                    sock,
                    is_socket: peekable.is_some(),
                },
            ),
            None => ferrossl::Connection::new(&ctx.ctx),
        }
        .map_err(ssl_error)?;
        let ex = conn.ex_data().clone();
        ex.insert(PendingContext(Mutex::new(None)));
        ex.insert(HelloName(Mutex::new(None)));
        Ok(Self {
            conn: ReentrantMutex::new(RefCell::new(conn)),
            ex,
            has_socket,
            peekable,
        })
    }

    /// Registers the Python `Connection` (a weak reference) that callbacks receive.
    fn set_owner(&self, weak: Py<PyAny>) {
        self.ex.insert(Owner(weak));
    }

    fn set_context(&self, ctx: &NativeContext) -> PyResult<()> {
        let guard = self.lock();
        let result = match guard.try_borrow_mut() {
            Ok(mut c) => c.set_context(&ctx.ctx),
            // Inside the servername callback: the switch happens when the callback returns.
            Err(_) => {
                if let Some(p) = self.ex.get::<PendingContext>() {
                    *p.0.lock().expect("pending context lock") = Some(ctx.ctx.clone());
                }
                Ok(())
            }
        };
        result.map_err(ssl_error)
    }

    fn get_servername(&self) -> Option<String> {
        let guard = self.lock();
        let name = match guard.try_borrow() {
            Ok(c) => c.get_servername(),
            Err(_) => self
                .ex
                .get::<HelloName>()
                .and_then(|n| n.0.lock().expect("hello name lock").clone()),
        };
        name
    }

    fn set_tlsext_host_name(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let name = name.to_string();
        self.run(py, move |c| c.set_tlsext_host_name(&name))
    }

    fn set_connect_state(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| c.set_connect_state())
    }

    fn set_accept_state(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| c.set_accept_state())
    }

    fn role(&self) -> PyResult<Option<&'static str>> {
        self.look(|c| {
            c.role().map(|r| match r {
                ferrossl::Role::Client => "client",
                ferrossl::Role::Server => "server",
            })
        })
    }

    fn do_handshake(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| c.do_handshake())
    }

    fn is_handshake_done(&self) -> PyResult<bool> {
        self.look(|c| c.is_handshake_done())
    }

    // The I/O methods below take pyOpenSSL's arguments and raise its errors themselves:
    // `ferrossl.SSL.Connection` binds them to its instances, so a small read or write costs
    // no Python frame (an exception passing through one is most of such a call's cost).

    #[pyo3(signature = (buf, flags=None))]
    fn send(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let data = args::send_buffer(buf, flags, Some(MAX_WRITE))?;
        let data: &[u8] = &data;
        self.run_io(py, data.len(), move |c| c.send(data))
    }

    /// Sends all of `buf`; returns its length, as pyOpenSSL does.
    #[pyo3(signature = (buf, flags=None))]
    fn sendall(
        &self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        flags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let data = args::send_buffer(buf, flags, None)?;
        let data: &[u8] = &data;
        self.run_io(py, data.len(), move |c| c.sendall(data))?;
        Ok(data.len())
    }

    #[pyo3(signature = (bufsiz, flags=None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        bufsiz: usize,
        flags: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let peek = match flags {
            Some(f) if !f.is_none() => f.bitand(MSG_PEEK)?.is_truthy()?,
            _ => false,
        };
        // What one call decrypts is bounded by what the engine takes per read (a record
        // over a socket, what `bio_write` handed over otherwise), whatever `bufsiz` is.
        let mut scratch = Scratch::take(bufsiz);
        if self.peekable.is_some() && bufsiz > 0 {
            let got = self.recv_from_socket(py, scratch.room(), peek)?;
            return Ok(scratch.bytes(py, got));
        }
        let buf = scratch.room();
        let got = self.run_io(
            py,
            0,
            move |c| {
                if peek {
                    c.recv_peek(buf)
                } else {
                    c.recv(buf)
                }
            },
        )?;
        Ok(scratch.bytes(py, got))
    }

    fn pending(&self) -> PyResult<usize> {
        self.with_lock(|c| c.pending())
    }

    fn bio_write(&self, py: Python<'_>, buf: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.memory_only()?;
        let data = args::buffer(buf)?;
        let data: &[u8] = &data;
        self.run_io(py, data.len(), move |c| c.bio_write(data))
    }

    fn bio_read<'py>(
        &self,
        py: Python<'py>,
        bufsiz: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.memory_only()?;
        let n: usize = args::int(bufsiz, "bufsiz must be an integer")?.extract()?;
        // A copy of ciphertext sealed earlier.
        let mut scratch = Scratch::take(n);
        let buf = scratch.room();
        let got = match self.run_io(py, 0, move |c| c.bio_read_into(buf)) {
            // Called from one of the connection's own callbacks, the engine is mid-step: what
            // it produces can be taken once the callback returns, so the send BIO reads as
            // empty, as OpenSSL's does then (Twisted flushes it when a verify or servername
            // callback aborts the connection).
            Err(_) if self.in_own_callback() => Err(ssl_error(ferrossl::Error::WantRead)),
            other => other,
        }?;
        Ok(scratch.bytes(py, got))
    }

    fn bio_shutdown(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| c.bio_shutdown())
    }

    fn shutdown(&self, py: Python<'_>) -> PyResult<bool> {
        self.run(py, |c| c.shutdown())
    }

    fn get_shutdown(&self) -> PyResult<i32> {
        self.look(|c| c.get_shutdown())
    }

    fn set_shutdown(&self, py: Python<'_>, state: i32) -> PyResult<()> {
        self.run(py, move |c| {
            c.set_shutdown(state);
            Ok(())
        })
    }

    fn want_read(&self) -> PyResult<bool> {
        self.look(|c| c.want_read())
    }

    fn want_write(&self) -> PyResult<bool> {
        self.look(|c| c.want_write())
    }

    fn get_cipher_name(&self) -> PyResult<Option<&'static str>> {
        self.look(|c| c.get_cipher_name())
    }

    fn get_cipher_bits(&self) -> PyResult<Option<u32>> {
        self.look(|c| c.get_cipher_bits())
    }

    fn get_cipher_version(&self) -> PyResult<Option<&'static str>> {
        self.look(|c| c.get_cipher_version())
    }

    fn get_protocol_version(&self) -> PyResult<i32> {
        self.look(|c| c.get_protocol_version())
    }

    fn get_protocol_version_name(&self) -> PyResult<&'static str> {
        self.look(|c| c.get_protocol_version_name())
    }

    fn get_certificate(&self) -> PyResult<Option<NativeX509>> {
        self.look(|c| c.get_certificate().map(x509))
    }

    fn get_peer_certificate(&self) -> PyResult<Option<NativeX509>> {
        self.look(|c| c.get_peer_certificate().map(x509))
    }

    fn get_peer_cert_chain(&self) -> PyResult<Option<Vec<NativeX509>>> {
        self.look(|c| {
            c.get_peer_cert_chain()
                .map(|v| v.into_iter().map(x509).collect())
        })
    }

    fn get_verified_chain(&self) -> PyResult<Option<Vec<NativeX509>>> {
        self.look(|c| {
            c.get_verified_chain()
                .map(|v| v.into_iter().map(x509).collect())
        })
    }

    fn get_verify_result(&self) -> PyResult<i32> {
        self.look(|c| c.get_verify_result())
    }

    fn client_random<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes_opt(py, self.look(|c| c.client_random())?))
    }

    fn server_random<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes_opt(py, self.look(|c| c.server_random())?))
    }

    fn master_key<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes_opt(py, self.look(|c| c.master_key())?))
    }

    #[pyo3(signature = (label, olen, context=None))]
    fn export_keying_material<'py>(
        &self,
        py: Python<'py>,
        label: Vec<u8>,
        olen: usize,
        context: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = self
            .look(|c| c.export_keying_material(&label, olen, context.as_deref()))?
            .map_err(ssl_error)?;
        Ok(PyBytes::new(py, &out))
    }

    fn get_alpn_proto_negotiated<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let p = self
            .look(|c| c.get_alpn_proto_negotiated())?
            .unwrap_or_default();
        Ok(PyBytes::new(py, &p))
    }

    fn set_alpn_protos(&self, py: Python<'_>, protos: Vec<Vec<u8>>) -> PyResult<()> {
        self.run(py, move |c| {
            let refs: Vec<&[u8]> = protos.iter().map(Vec::as_slice).collect();
            c.set_alpn_protos(&refs)
        })
    }

    fn get_session(&self) -> PyResult<Option<NativeSession>> {
        self.look(|c| c.get_session().map(|session| NativeSession { session }))
    }

    fn set_session(&self, py: Python<'_>, session: &NativeSession) -> PyResult<()> {
        let s = session.session.clone();
        self.run(py, move |c| c.set_session(&s))
    }

    fn session_reused(&self) -> PyResult<bool> {
        self.look(|c| c.session_reused())
    }

    #[pyo3(signature = (mode, callback=None))]
    fn set_verify(&self, py: Python<'_>, mode: i32, callback: Option<Py<PyAny>>) -> PyResult<()> {
        let cb = callback.map(verify_callback);
        self.run(py, move |c| c.set_verify(mode, cb))
    }

    fn get_verify_mode(&self) -> PyResult<i32> {
        self.look(|c| c.get_verify_mode())
    }

    fn request_ocsp(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| c.request_ocsp())
    }

    fn get_client_ca_list(&self) -> PyResult<Vec<Vec<u8>>> {
        self.look(|c| {
            c.get_client_ca_list()
                .iter()
                .map(|n| n.to_der().to_vec())
                .collect()
        })
    }

    fn get_state_string(&self) -> PyResult<&'static str> {
        self.look(|c| c.get_state_string())
    }

    fn get_group_name(&self) -> PyResult<Option<String>> {
        self.look(|c| c.get_group_name())
    }

    fn use_certificate(&self, py: Python<'_>, cert: &NativeX509) -> PyResult<()> {
        let cert = cert.cert.clone();
        self.run(py, move |c| c.use_certificate(cert))
    }

    fn use_privatekey(&self, py: Python<'_>, key: &NativePKey) -> PyResult<()> {
        let key = key.key.clone();
        self.run(py, move |c| c.use_privatekey(key))
    }

    fn set_options(&self, py: Python<'_>, options: u64) -> PyResult<u64> {
        self.run(py, move |c| c.set_options(options))
    }

    fn set_info_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        let cb = info_callback(callback);
        self.run(py, move |c| c.set_info_callback(cb))
    }

    fn dtls_listen(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |c| c.dtls_listen())
    }

    /// Seconds until the retransmission timer fires, or None.
    fn dtls_get_timeout(&self) -> PyResult<Option<f64>> {
        self.look(|c| c.dtls_get_timeout().map(|d| d.as_secs_f64()))
    }

    fn dtls_handle_timeout(&self, py: Python<'_>) -> PyResult<bool> {
        self.run(py, |c| c.dtls_handle_timeout())
    }

    fn set_ciphertext_mtu(&self, py: Python<'_>, mtu: usize) -> PyResult<()> {
        self.run(py, move |c| c.set_ciphertext_mtu(mtu))
    }

    fn get_cleartext_mtu(&self) -> PyResult<usize> {
        self.look(|c| c.get_cleartext_mtu())?.map_err(ssl_error)
    }

    fn get_selected_srtp_profile(&self) -> PyResult<Option<&'static str>> {
        self.look(|c| c.get_selected_srtp_profile())
    }
}

#[pyclass(module = "ferrossl._native", frozen)]
pub struct NativeSession {
    pub session: ferrossl::session::Session,
}

#[pymethods]
impl NativeSession {
    #[new]
    fn new() -> Self {
        Self {
            session: ferrossl::session::Session::default(),
        }
    }

    fn time(&self) -> u64 {
        self.session.time()
    }

    fn timeout(&self) -> u64 {
        self.session.timeout()
    }
}
