//! The state and I/O of one TLS connection: a `ferrossl::Connection` in memory-BIO mode whose
//! ciphertext goes to and comes from the base GIOStream. The connection object and its two
//! streams share it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use ferrossl::{Connection, Error};
use gio::prelude::*;

use crate::errors;
use crate::shared::Shared;

mod nonblocking;

/// Largest read from the base stream at once: a full TLS record with its overhead.
const READ_CHUNK: usize = 16 * 1024 + 512;

/// What the handshake produced, and where the connection stands.
#[derive(Default)]
pub struct Session {
    /// The engine, from the start of the handshake on.
    conn: Option<Connection>,
    handshake_done: bool,
    /// A failed handshake fails every later call the same way.
    failed: Option<glib::Error>,
    closed: bool,
    /// Ciphertext taken from the engine that a non-blocking write could not send yet.
    outgoing: Vec<u8>,
    /// The base stream reached its end.
    peer_eof: bool,
}

impl Session {
    /// The engine once the handshake finished.
    pub fn established(&self) -> Option<&Connection> {
        self.conn.as_ref().filter(|_| self.handshake_done)
    }

    /// The engine, from the start of the handshake on (also after a failed one).
    pub fn engine(&self) -> Option<&Connection> {
        self.conn.as_ref()
    }
}

/// The base stream and its two halves, with their pollable forms when they have them.
struct Base {
    stream: gio::IOStream,
    input: gio::InputStream,
    output: gio::OutputStream,
    pollable: Option<(gio::PollableInputStream, gio::PollableOutputStream)>,
}

impl Base {
    fn new(stream: gio::IOStream) -> Self {
        let input = stream.input_stream();
        let output = stream.output_stream();
        let pollable_in = input
            .dynamic_cast_ref::<gio::PollableInputStream>()
            .filter(|p| p.can_poll());
        let pollable_out = output
            .dynamic_cast_ref::<gio::PollableOutputStream>()
            .filter(|p| p.can_poll());
        let pollable = pollable_in.cloned().zip(pollable_out.cloned());
        Self {
            stream,
            input,
            output,
            pollable,
        }
    }
}

/// One connection's shared core.
///
/// Two locks: `writer` orders the ciphertext on its way to the base stream (whoever takes
/// ciphertext from the engine holds it until that ciphertext is written), `session` guards the
/// engine. `writer` is always taken first. A blocking write waits for the peer holding only
/// `writer`, so that a read in another thread goes on meanwhile (the peer may be waiting for
/// us to read before it reads more); a read waits for the peer holding neither.
#[derive(Default)]
pub struct Core {
    writer: Mutex<()>,
    session: Mutex<Session>,
    base: std::sync::OnceLock<Shared<Base>>,
    require_close_notify: AtomicBool,
    /// The handshake finished (readable without the session's lock).
    established: AtomicBool,
}

impl Core {
    /// Sets the base stream (the construct-only `base-io-stream`).
    pub fn set_base(&self, stream: gio::IOStream) {
        let _ = self.base.set(Shared(Base::new(stream)));
    }

    /// The base stream, once set.
    pub fn base_stream(&self) -> Option<gio::IOStream> {
        self.base.get().map(|b| b.0.stream.clone())
    }

    fn base(&self) -> Result<&Base, glib::Error> {
        self.base
            .get()
            .map(|b| &b.0)
            .ok_or_else(errors::not_connected)
    }

    pub fn set_require_close_notify(&self, require: bool) {
        self.require_close_notify.store(require, Ordering::Relaxed);
    }

    pub fn require_close_notify(&self) -> bool {
        self.require_close_notify.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer's lock if free: a reader never waits for a blocked writer.
    fn try_writer(&self) -> Option<MutexGuard<'_, ()>> {
        self.writer.try_lock().ok()
    }

    /// The session, unless another thread holds it (a handshake in progress): property
    /// getters must not wait for a handshake that may be emitting a signal to their caller.
    pub fn try_session(&self) -> Option<MutexGuard<'_, Session>> {
        self.session.try_lock().ok()
    }

    pub fn handshake_done(&self) -> bool {
        self.established.load(Ordering::Acquire)
    }

    /// Runs the handshake to its end, creating the engine with `make` the first time.
    pub fn handshake(
        &self,
        make: impl FnOnce() -> Result<Connection, glib::Error>,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<(), glib::Error> {
        let base = self.base()?;
        let _writer = self.lock_writer();
        let mut session = self.lock();
        if session.handshake_done {
            return Ok(());
        }
        if let Some(e) = &session.failed {
            return Err(e.clone());
        }
        if session.conn.is_none() {
            session.conn = Some(make()?);
        }
        let result = drive_handshake(&mut session, base, cancellable);
        match &result {
            Ok(()) => self.established.store(true, Ordering::Release),
            // A cancelled or timed-out handshake cannot resume midway either.
            Err(e) => session.failed = Some(e.clone()),
        }
        result
    }

    /// Reads decrypted data; 0 at the end of the stream.
    pub fn read(
        &self,
        buf: &mut [u8],
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<usize, glib::Error> {
        let base = self.base()?;
        loop {
            if let Some(n) = self.try_read(&mut self.lock(), buf)? {
                return Ok(n);
            }
            // What reading made the engine say (a TLS 1.3 key update, say) goes out first,
            // unless a writer is at work, which sends it with its own.
            if let Some(_writer) = self.try_writer() {
                let ciphertext = take_ciphertext(&mut self.lock());
                write_all(base, &ciphertext, cancellable)?;
            }
            // Wait for the peer without the locks, so that writes go on meanwhile.
            let data = read_base(base, cancellable)?;
            feed(&mut self.lock(), &data)?;
        }
    }

    /// One read attempt: Some(bytes read, 0 at the end) or None when more input is needed.
    fn try_read(
        &self,
        session: &mut Session,
        buf: &mut [u8],
    ) -> Result<Option<usize>, glib::Error> {
        if session.closed {
            return Err(closed());
        }
        let conn = session.conn.as_mut().ok_or_else(errors::not_connected)?;
        match conn.recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(Error::ZeroReturn) => Ok(Some(0)),
            // After the peer's end of stream nothing more can come: never wait for it.
            Err(Error::WantRead) if session.peer_eof && self.require_close_notify() => {
                Err(errors::eof())
            }
            Err(Error::WantRead) if session.peer_eof => Ok(Some(0)),
            Err(Error::WantRead) => Ok(None),
            Err(e) if errors::is_unexpected_eof(&e) && !self.require_close_notify() => Ok(Some(0)),
            Err(e) => Err(errors::io(&e)),
        }
    }

    /// Encrypts and sends `buf`; returns how much was taken (all of it).
    pub fn write(
        &self,
        buf: &[u8],
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<usize, glib::Error> {
        let base = self.base()?;
        let _writer = self.lock_writer();
        let (n, ciphertext) = {
            let mut session = self.lock();
            if session.closed {
                return Err(closed());
            }
            let conn = session.conn.as_mut().ok_or_else(errors::not_connected)?;
            let n = conn.send(buf).map_err(|e| errors::io(&e))?;
            (n, take_ciphertext(&mut session))
        };
        write_all(base, &ciphertext, cancellable)?;
        Ok(n)
    }

    /// Sends close_notify (after a handshake) and closes the base stream.
    pub fn close(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
        let base = self.base()?;
        let _writer = self.lock_writer();
        let ciphertext = {
            let mut session = self.lock();
            if session.closed {
                return Ok(());
            }
            session.closed = true;
            let established = session.handshake_done;
            match session.conn.as_mut() {
                Some(conn) if established => {
                    // Queues close_notify; the peer's answer is not waited for, as GIO does.
                    let _ = conn.shutdown();
                    take_ciphertext(&mut session)
                }
                _ => Vec::new(),
            }
        };
        let sent = write_all(base, &ciphertext, cancellable);
        // The base stream closes even when the peer is gone and close_notify could not go.
        let closed = base.stream.close(cancellable);
        sent.and(closed)
    }
}

fn drive_handshake(
    session: &mut Session,
    base: &Base,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    loop {
        let conn = session.conn.as_mut().expect("created before");
        let step = conn.do_handshake();
        // What the engine produced goes out first, an alert explaining a failure included.
        let flushed = flush(session, base, cancellable);
        match step {
            Ok(()) => {
                flushed?;
                session.handshake_done = true;
                return Ok(());
            }
            Err(Error::WantRead) if session.peer_eof => return Err(eof_during_handshake()),
            Err(Error::WantRead) => {
                flushed?;
                let data = read_base(base, cancellable)?;
                feed(session, &data)?;
            }
            Err(e) => return Err(errors::handshake(&e)),
        }
    }
}

/// The peer's input ended while the handshake still wanted more (the engine should have
/// failed on it; never wait on it again).
fn eof_during_handshake() -> glib::Error {
    errors::handshake(&Error::SysCall {
        errno: -1,
        message: "Unexpected EOF".into(),
    })
}

/// Writes the engine's pending ciphertext to the base stream (the caller holds `writer`).
fn flush(
    session: &mut Session,
    base: &Base,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    let ciphertext = take_ciphertext(session);
    write_all(base, &ciphertext, cancellable)
}

/// Takes the ciphertext waiting to go out: what a non-blocking write left, then the engine's.
/// The caller holds `writer` until it has written it.
fn take_ciphertext(session: &mut Session) -> Vec<u8> {
    let mut out = std::mem::take(&mut session.outgoing);
    if let Some(conn) = session.conn.as_mut() {
        while let Ok(bytes) = conn.bio_read(READ_CHUNK) {
            out.extend_from_slice(&bytes);
        }
    }
    out
}

fn closed() -> glib::Error {
    glib::Error::new(gio::IOErrorEnum::Closed, "The connection is closed")
}

fn write_all(
    base: &Base,
    bytes: &[u8],
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    match base.output.write_all(bytes, cancellable)? {
        (_, None) => Ok(()),
        (_, Some(partial_failure)) => Err(partial_failure),
    }
}

/// Reads what the peer sent (empty at the end of the stream).
fn read_base(base: &Base, cancellable: Option<&gio::Cancellable>) -> Result<Vec<u8>, glib::Error> {
    let mut buf = vec![0u8; READ_CHUNK];
    let n = base.input.read(&mut buf[..], cancellable)?;
    buf.truncate(n);
    Ok(buf)
}

/// Hands the peer's bytes to the engine; no bytes means the peer's end of stream.
fn feed(session: &mut Session, data: &[u8]) -> Result<(), glib::Error> {
    let conn = session.conn.as_mut().ok_or_else(errors::not_connected)?;
    let result = if data.is_empty() {
        session.peer_eof = true;
        conn.bio_shutdown()
    } else {
        conn.bio_write(data).map(|_| ())
    };
    result.map_err(|e| errors::io(&e))
}
