//! The state and I/O of one TLS connection: a `ferrossl::Connection` in memory-BIO mode whose
//! ciphertext goes to and comes from the base GIOStream. The connection object and its two
//! streams share it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use ferrossl::{Connection, Error};
use gio::prelude::*;

use crate::errors;
use crate::shared::Shared;

/// Largest read from the base stream at once: a full TLS record with its overhead.
const READ_CHUNK: usize = 16 * 1024 + 512;

/// What the handshake produced, and where the connection stands.
#[derive(Default)]
pub struct Session {
    /// The engine, from the start of the handshake on.
    pub conn: Option<Connection>,
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
#[derive(Default)]
pub struct Core {
    session: Mutex<Session>,
    base: std::sync::OnceLock<Shared<Base>>,
    require_close_notify: AtomicBool,
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

    /// The session, unless another thread holds it (a handshake in progress): property
    /// getters must not wait for a handshake that may be emitting a signal to their caller.
    pub fn try_session(&self) -> Option<MutexGuard<'_, Session>> {
        self.session.try_lock().ok()
    }

    pub fn handshake_done(&self) -> bool {
        self.try_session().is_some_and(|s| s.handshake_done)
    }

    /// Runs the handshake to its end, creating the engine with `make` the first time.
    pub fn handshake(
        &self,
        make: impl FnOnce() -> Result<Connection, glib::Error>,
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<(), glib::Error> {
        let base = self.base()?;
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
        if let Err(e) = &result {
            // A cancelled or timed-out handshake cannot resume midway either.
            session.failed = Some(e.clone());
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
            {
                let mut session = self.lock();
                if let Some(n) = self.try_read(&mut session, buf)? {
                    return Ok(n);
                }
                flush(&mut session, base, cancellable)?;
            }
            // Wait for the peer without the lock, so that writes (from another thread) go on.
            let data = read_base(base, cancellable)?;
            let mut session = self.lock();
            feed(&mut session, &data)?;
        }
    }

    /// One read attempt: Some(bytes read, 0 at the end) or None when more input is needed.
    fn try_read(
        &self,
        session: &mut Session,
        buf: &mut [u8],
    ) -> Result<Option<usize>, glib::Error> {
        if session.closed {
            return Err(glib::Error::new(
                gio::IOErrorEnum::Closed,
                "The connection is closed",
            ));
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
        let mut session = self.lock();
        if session.closed {
            return Err(glib::Error::new(
                gio::IOErrorEnum::Closed,
                "The connection is closed",
            ));
        }
        let conn = session.conn.as_mut().ok_or_else(errors::not_connected)?;
        let n = conn.send(buf).map_err(|e| errors::io(&e))?;
        flush(&mut session, base, cancellable)?;
        Ok(n)
    }

    /// Sends close_notify (after a handshake) and closes the base stream.
    pub fn close(&self, cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
        let base = self.base()?;
        let mut session = self.lock();
        if session.closed {
            return Ok(());
        }
        session.closed = true;
        let mut sent = Ok(());
        if session.handshake_done {
            if let Some(conn) = session.conn.as_mut() {
                // Queues close_notify; the peer's answer is not waited for, as GIO does.
                let _ = conn.shutdown();
            }
            sent = flush(&mut session, base, cancellable);
        }
        drop(session);
        // The base stream closes even when the peer is gone and close_notify could not go.
        let closed = base.stream.close(cancellable);
        sent.and(closed)
    }
}

/// The non-blocking side (GPollableInputStream, GPollableOutputStream), for callers that
/// wait on GSources: used after the handshake, over a pollable base stream.
impl Core {
    /// Whether the base stream is pollable, so that ours can be.
    pub fn can_poll(&self) -> bool {
        self.base.get().is_some_and(|b| b.0.pollable.is_some())
    }

    fn pollable(
        &self,
    ) -> Result<&(gio::PollableInputStream, gio::PollableOutputStream), glib::Error> {
        self.base()?.pollable.as_ref().ok_or_else(|| {
            glib::Error::new(
                gio::IOErrorEnum::NotSupported,
                "The base stream is not pollable",
            )
        })
    }

    /// The session for a non-blocking call: WOULD_BLOCK while another call holds it, an
    /// error before the handshake (run it first, e.g. with `g_tls_connection_handshake_async`).
    fn nonblocking_session(&self) -> Result<MutexGuard<'_, Session>, glib::Error> {
        let session = self.try_session().ok_or_else(would_block)?;
        if !session.handshake_done {
            return Err(errors::not_connected());
        }
        Ok(session)
    }

    /// Reads without blocking: WOULD_BLOCK when neither decrypted data nor ciphertext waits.
    pub fn read_nonblocking(&self, buf: &mut [u8]) -> Result<usize, glib::Error> {
        let (input, output) = self.pollable()?;
        let mut session = self.nonblocking_session()?;
        loop {
            push_nonblocking(&mut session, output)?;
            if let Some(n) = self.try_read(&mut session, buf)? {
                return Ok(n);
            }
            let mut chunk = vec![0u8; READ_CHUNK];
            let n = input.read_nonblocking(&mut chunk, gio::Cancellable::NONE)?;
            chunk.truncate(usize::try_from(n).unwrap_or(0));
            feed(&mut session, &chunk)?;
        }
    }

    /// Writes without blocking: WOULD_BLOCK while earlier ciphertext still waits for room.
    pub fn write_nonblocking(&self, buf: &[u8]) -> Result<usize, glib::Error> {
        let (_, output) = self.pollable()?;
        let mut session = self.nonblocking_session()?;
        push_nonblocking(&mut session, output)?;
        if !session.outgoing.is_empty() {
            return Err(would_block());
        }
        if session.closed {
            return Err(glib::Error::new(
                gio::IOErrorEnum::Closed,
                "The connection is closed",
            ));
        }
        let conn = session.conn.as_mut().ok_or_else(errors::not_connected)?;
        let n = conn.send(buf).map_err(|e| errors::io(&e))?;
        push_nonblocking(&mut session, output)?;
        Ok(n)
    }

    /// Whether a read would return without blocking.
    pub fn is_readable(&self) -> bool {
        let Ok((input, _)) = self.pollable() else {
            return false;
        };
        match self.try_session() {
            Some(mut s) => s.conn.as_mut().is_some_and(|c| c.pending() > 0) || input.is_readable(),
            None => false,
        }
    }

    /// Whether a write would return without blocking.
    pub fn is_writable(&self) -> bool {
        self.pollable()
            .is_ok_and(|(_, output)| output.is_writable())
            && self.try_session().is_some()
    }

    /// What a read source waits for: nothing when decrypted data waits, room to send when
    /// our ciphertext waits (the peer may be waiting for it before it answers), else input.
    pub fn read_wait(&self) -> Wait {
        let Some(mut session) = self.try_session() else {
            return Wait::Now;
        };
        if session.conn.as_mut().is_some_and(|c| c.pending() > 0) {
            Wait::Now
        } else if !session.outgoing.is_empty() {
            Wait::Writable
        } else {
            Wait::Readable
        }
    }

    /// The base stream's source for `wait` (None for `Wait::Now`).
    pub fn base_source(&self, wait: Wait) -> Option<glib::Source> {
        let (input, output) = self.pollable().ok()?;
        let none = gio::Cancellable::NONE;
        // The callback is replaced when our source adopts this one as its child.
        let priority = glib::Priority::DEFAULT;
        match wait {
            Wait::Now => None,
            Wait::Readable => {
                Some(input.create_source(none, None, priority, |_| glib::ControlFlow::Continue))
            }
            Wait::Writable => {
                Some(output.create_source(none, None, priority, |_| glib::ControlFlow::Continue))
            }
        }
    }
}

/// What a non-blocking caller's source must wait for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: the call can proceed now.
    Now,
    /// The base stream's input.
    Readable,
    /// Room in the base stream's output.
    Writable,
}

fn would_block() -> glib::Error {
    glib::Error::new(gio::IOErrorEnum::WouldBlock, "Operation would block")
}

/// Sends the waiting ciphertext as far as the base stream takes it without blocking.
fn push_nonblocking(
    session: &mut Session,
    output: &gio::PollableOutputStream,
) -> Result<(), glib::Error> {
    if let Some(conn) = session.conn.as_mut() {
        while let Ok(bytes) = conn.bio_read(READ_CHUNK) {
            session.outgoing.extend_from_slice(&bytes);
        }
    }
    while !session.outgoing.is_empty() {
        match output.write_nonblocking(&session.outgoing, gio::Cancellable::NONE) {
            Ok(n) => {
                session.outgoing.drain(..usize::try_from(n).unwrap_or(0));
            }
            Err(e) if e.matches(gio::IOErrorEnum::WouldBlock) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
            Err(Error::WantRead) if session.peer_eof => {
                // The engine should have failed on the end of input; never wait on it again.
                return Err(errors::handshake(&Error::SysCall {
                    errno: -1,
                    message: "Unexpected EOF".into(),
                }));
            }
            Err(Error::WantRead) => {
                flushed?;
                let data = read_base(base, cancellable)?;
                feed(session, &data)?;
            }
            Err(e) => return Err(errors::handshake(&e)),
        }
    }
}

/// Writes the engine's pending ciphertext to the base stream.
fn flush(
    session: &mut Session,
    base: &Base,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    if !session.outgoing.is_empty() {
        let waiting = std::mem::take(&mut session.outgoing);
        write_all(base, &waiting, cancellable)?;
    }
    let Some(conn) = session.conn.as_mut() else {
        return Ok(());
    };
    while let Ok(bytes) = conn.bio_read(READ_CHUNK) {
        write_all(base, &bytes, cancellable)?;
    }
    Ok(())
}

fn write_all(
    base: &Base,
    bytes: &[u8],
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
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
