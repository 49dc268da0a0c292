//! The non-blocking side of the core (GPollableInputStream, GPollableOutputStream), for
//! callers that wait on GSources: used after the handshake, over a pollable base stream.

use std::sync::MutexGuard;

use gio::prelude::*;

use std::sync::atomic::Ordering;

use ferrossl::{Connection, Error};

use super::{eof_during_handshake, feed, Core, Session, READ_CHUNK};
use crate::errors;

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

    /// Runs the handshake as far as it goes without blocking (`make` creates the engine the
    /// first time): Ok once it is done, WOULD_BLOCK while it waits for the peer. GIO lets the
    /// first read or write of a connection run the handshake, the non-blocking ones too.
    pub fn handshake_nonblocking(
        &self,
        make: impl FnOnce() -> Result<Connection, glib::Error>,
    ) -> Result<(), glib::Error> {
        let (input, output) = self.pollable()?;
        let _writer = self.try_writer().ok_or_else(would_block)?;
        let mut session = self.try_session().ok_or_else(would_block)?;
        if session.handshake_done {
            return Ok(());
        }
        if let Some(e) = &session.failed {
            return Err(e.clone());
        }
        if session.conn.is_none() {
            session.conn = Some(make()?);
        }
        let result = step_handshake(&mut session, input, output);
        match &result {
            Ok(()) => {
                session.handshake_done = true;
                self.established.store(true, Ordering::Release);
            }
            Err(e) if e.matches(gio::IOErrorEnum::WouldBlock) => {}
            Err(e) => session.failed = Some(e.clone()),
        }
        result
    }

    /// Reads without blocking: WOULD_BLOCK when neither decrypted data nor ciphertext waits.
    pub fn read_nonblocking(&self, buf: &mut [u8]) -> Result<usize, glib::Error> {
        let (input, output) = self.pollable()?;
        // Sending what waits needs the writer's lock; a writer at work sends it itself.
        let writer = self.try_writer();
        let mut session = self.nonblocking_session()?;
        loop {
            if writer.is_some() {
                push_nonblocking(&mut session, output)?;
            }
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
        let _writer = self.try_writer().ok_or_else(would_block)?;
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

    /// What a read source waits for: nothing when decrypted data waits (or the handshake has
    /// not started), room to send when our ciphertext waits (the peer may be waiting for it
    /// before it answers), else input.
    pub fn read_wait(&self) -> Wait {
        let Some(mut session) = self.try_session() else {
            return Wait::Now;
        };
        let waiting_out = !session.outgoing.is_empty();
        match session.conn.as_mut().map(|c| c.pending()) {
            None => Wait::Now,
            Some(decrypted) if decrypted > 0 => Wait::Now,
            Some(_) if waiting_out => Wait::Writable,
            Some(_) => Wait::Readable,
        }
    }

    /// What a write source waits for: room to send, but during a handshake, what a read
    /// waits for (a write cannot go on before the handshake ends).
    pub fn write_wait(&self) -> Wait {
        if self.handshake_done() {
            Wait::Writable
        } else {
            self.read_wait()
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

/// Handshake steps until it is done or would block.
fn step_handshake(
    session: &mut Session,
    input: &gio::PollableInputStream,
    output: &gio::PollableOutputStream,
) -> Result<(), glib::Error> {
    loop {
        let step = session
            .conn
            .as_mut()
            .expect("created before")
            .do_handshake();
        // What the engine produced goes out first, an alert explaining a failure included.
        let pushed = push_nonblocking(session, output);
        match step {
            Ok(()) => return pushed,
            Err(Error::WantRead) if session.peer_eof => return Err(eof_during_handshake()),
            Err(Error::WantRead) => {
                pushed?;
                let mut chunk = vec![0u8; READ_CHUNK];
                let n = input.read_nonblocking(&mut chunk, gio::Cancellable::NONE)?;
                chunk.truncate(usize::try_from(n).unwrap_or(0));
                feed(session, &chunk)?;
            }
            Err(e) => return Err(errors::handshake(&e)),
        }
    }
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
