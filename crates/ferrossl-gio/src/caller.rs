//! The main context of an asynchronous handshake's caller. The handshake runs in a worker
//! thread, but GIO's backends emit its signals in the caller's context, where the
//! application's handlers expect to run.

use std::sync::Mutex;

use glib::prelude::*;

use crate::shared::Shared;

/// The context an asynchronous handshake was started from, while it runs.
#[derive(Default)]
pub struct CallerContext(Mutex<Option<glib::MainContext>>);

impl CallerContext {
    /// An asynchronous handshake starts in this thread: remembers its main context.
    pub fn begin(&self) {
        *self.lock() = Some(glib::MainContext::ref_thread_default());
    }

    /// The asynchronous handshake ended (its `finish`).
    pub fn end(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<glib::MainContext>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The caller's context, when this thread does not own it (we are the worker thread).
    pub fn foreign(&self) -> Option<glib::MainContext> {
        self.lock().clone().filter(|c| !c.is_owner())
    }

    /// Emits accept-certificate on `conn` in the caller's context, this (worker) thread
    /// waiting for the answer, or here when no asynchronous handshake is running elsewhere.
    pub fn emit_accept(
        &self,
        conn: &glib::Object,
        certificate: &gio::TlsCertificate,
        errors: gio::TlsCertificateFlags,
    ) -> bool {
        let emit = move |conn: &glib::Object, certificate: &gio::TlsCertificate| {
            conn.emit_by_name::<bool>("accept-certificate", &[certificate, &errors])
        };
        let Some(context) = self.foreign() else {
            return emit(conn, certificate);
        };
        let (answer, wait) = std::sync::mpsc::channel();
        let payload = Shared((conn.clone(), certificate.clone()));
        context.invoke(move || {
            let payload = &payload;
            let _ = answer.send(emit(&payload.0 .0, &payload.0 .1));
        });
        // No answer means the caller's context was dropped with the call: refuse.
        wait.recv().unwrap_or(false)
    }
}
