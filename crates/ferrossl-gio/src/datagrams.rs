//! ferrossl's datagram transport over a GDatagramBased (a UDP GSocket, usually), for the DTLS
//! connections.

use std::io;
use std::sync::Mutex;

use ferrossl::transport::{Cancellable, DatagramBased, Timeout};
use gio::ffi::{GInputMessage, GInputVector, GOutputMessage, GOutputVector};
use gio::prelude::*;
use glib::translate::ToGlibPtr;

use crate::shared::Shared;

/// The base socket of a DTLS connection, with the GCancellable of the GIO call in progress
/// (ferrossl's own cancellable is not used: GIO's cancels the socket's waits itself).
pub struct GioDatagrams {
    base: Shared<gio::DatagramBased>,
    cancellable: Mutex<Shared<Option<gio::Cancellable>>>,
}

impl GioDatagrams {
    pub fn new(base: gio::DatagramBased) -> Self {
        Self {
            base: Shared(base),
            cancellable: Mutex::new(Shared(None)),
        }
    }

    /// The cancellable the next waits honour (that of the GIO call being served).
    pub fn set_cancellable(&self, cancellable: Option<&gio::Cancellable>) {
        let mut current = self.cancellable.lock().unwrap_or_else(|e| e.into_inner());
        current.0 = cancellable.cloned();
    }

    fn cancellable(&self) -> Option<gio::Cancellable> {
        self.cancellable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }
}

/// GIO's timeout in microseconds: -1 to block, 0 not to, else how long; None when a deadline
/// has passed already.
fn micros(timeout: Timeout) -> Option<i64> {
    match timeout {
        Timeout::Block => Some(-1),
        Timeout::NonBlocking => Some(0),
        Timeout::Deadline(at) => {
            let left = at.saturating_duration_since(std::time::Instant::now());
            (!left.is_zero()).then(|| i64::try_from(left.as_micros()).unwrap_or(i64::MAX).max(1))
        }
    }
}

/// A GIO error as the io::Error kinds ferrossl's DTLS connection acts on.
fn io_error(e: glib::Error) -> io::Error {
    let kind = match e.kind::<gio::IOErrorEnum>() {
        Some(gio::IOErrorEnum::WouldBlock) => io::ErrorKind::WouldBlock,
        Some(gio::IOErrorEnum::TimedOut) => io::ErrorKind::TimedOut,
        Some(gio::IOErrorEnum::Cancelled) => io::ErrorKind::Interrupted,
        Some(gio::IOErrorEnum::ConnectionRefused) => io::ErrorKind::ConnectionRefused,
        Some(gio::IOErrorEnum::Closed) => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.message().to_string())
}

/// The base as a GSocket with a timeout of its own (`g_socket_set_timeout`). GLib refuses
/// datagram calls on such a socket (and its GDatagramBased wrapper then emits a critical about
/// its own return value), so the connection uses the socket's own calls there. A bounded call
/// gives up with `G_IO_ERROR_TIMED_OUT` at the shorter of its timeout and the socket's; a
/// blocking one (-1) keeps waiting, as GIO wants of a blocking datagram call (its wrapper
/// treats a timeout there as a bug).
pub fn socket_with_timeout(base: &gio::DatagramBased) -> Option<&gio::Socket> {
    base.downcast_ref::<gio::Socket>()
        .filter(|socket| socket.timeout() != 0)
}

/// Waits on a socket with a timeout of its own, as [`socket_with_timeout`] says.
fn socket_wait(
    socket: &gio::Socket,
    condition: glib::IOCondition,
    timeout_us: i64,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    loop {
        match socket.condition_timed_wait(condition, timeout_us, cancellable) {
            Err(e) if timeout_us < 0 && e.matches(gio::IOErrorEnum::TimedOut) => {}
            other => return other,
        }
    }
}

/// Waits until `base` meets `condition` (or `timeout_us` passes, -1 for no limit, or a bounded
/// wait reaches the socket's own timeout). An error set means failure, whatever GLib returned
/// with it.
pub fn condition_wait(
    base: &gio::DatagramBased,
    condition: glib::IOCondition,
    timeout_us: i64,
    cancellable: Option<&gio::Cancellable>,
) -> Result<(), glib::Error> {
    if let Some(socket) = socket_with_timeout(base) {
        return socket_wait(socket, condition, timeout_us, cancellable);
    }
    let mut error = std::ptr::null_mut();
    // SAFETY: live base and cancellable, borrowed for the call; GIO sets `error` or not.
    unsafe {
        gio::ffi::g_datagram_based_condition_wait(
            base.to_glib_none().0,
            glib::translate::IntoGlib::into_glib(condition),
            timeout_us,
            cancellable.to_glib_none().0,
            &mut error,
        );
        if error.is_null() {
            Ok(())
        } else {
            Err(glib::translate::from_glib_full(error))
        }
    }
}

/// The base's readiness for `condition` now.
pub fn condition_check(
    base: &gio::DatagramBased,
    condition: glib::IOCondition,
) -> glib::IOCondition {
    match socket_with_timeout(base) {
        Some(socket) => gio::prelude::SocketExt::condition_check(socket, condition),
        None => base.condition_check(condition),
    }
}

/// A new GSource of the base's for `condition` (the caller owns it).
pub fn create_source(
    base: &gio::DatagramBased,
    condition: glib::IOCondition,
    cancellable: *mut gio::ffi::GCancellable,
) -> *mut glib::ffi::GSource {
    let condition = glib::translate::IntoGlib::into_glib(condition);
    // SAFETY: a live base; the cancellable is NULL or live for the call; the new source passes
    // to the caller. A socket's source calls back as a GDatagramBased source does.
    unsafe {
        match socket_with_timeout(base) {
            Some(socket) => {
                gio::ffi::g_socket_create_source(socket.to_glib_none().0, condition, cancellable)
            }
            None => gio::ffi::g_datagram_based_create_source(
                base.to_glib_none().0,
                condition,
                cancellable,
            ),
        }
    }
}

/// One call (`attempt`, which must not block) on a GSocket with a timeout of its own, after
/// waiting for the socket as [`socket_with_timeout`] says.
fn on_socket<T>(
    socket: &gio::Socket,
    condition: glib::IOCondition,
    timeout_us: i64,
    cancellable: Option<&gio::Cancellable>,
    mut attempt: impl FnMut() -> Result<T, glib::Error>,
) -> io::Result<T> {
    loop {
        if timeout_us != 0 {
            socket_wait(socket, condition, timeout_us, cancellable).map_err(io_error)?;
        }
        match attempt() {
            Err(e) if timeout_us < 0 && e.matches(gio::IOErrorEnum::WouldBlock) => {}
            // A GSocket whose own source reached the timeout fails the next call with
            // TIMED_OUT once; a call that does not wait has not timed out.
            Err(e) if timeout_us <= 0 && e.matches(gio::IOErrorEnum::TimedOut) => {
                if timeout_us == 0 {
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "no datagram"));
                }
            }
            other => return other.map_err(io_error),
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// The result of a GIO call that returns a count and sets an error: the error wins, whatever
/// the count says (GLib returns 0 with an error set for a GSocket with a timeout).
///
/// # Safety
/// `error` must be NULL or a GError the caller owns.
unsafe fn outcome(count: i32, error: *mut glib::ffi::GError) -> io::Result<i32> {
    if error.is_null() {
        return Ok(count);
    }
    // SAFETY: the caller's guarantee; we take ownership of the error.
    let error: glib::Error = unsafe { glib::translate::from_glib_full(error) };
    Err(io_error(error))
}

impl DatagramBased for GioDatagrams {
    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        _cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        let timeout = micros(timeout).ok_or_else(timed_out)?;
        let cancellable = self.cancellable();
        if let Some(socket) = socket_with_timeout(&self.base.0) {
            return on_socket(
                socket,
                glib::IOCondition::OUT,
                timeout,
                cancellable.as_ref(),
                || socket.send_with_blocking(datagram, false, cancellable.as_ref()),
            );
        }
        let mut vector = GOutputVector {
            buffer: datagram.as_ptr().cast(),
            size: datagram.len(),
        };
        let mut message = GOutputMessage {
            address: std::ptr::null_mut(),
            vectors: &mut vector,
            num_vectors: 1,
            bytes_sent: 0,
            control_messages: std::ptr::null_mut(),
            num_control_messages: 0,
        };
        let mut error = std::ptr::null_mut();
        // SAFETY: one message whose one vector points at `datagram`, all alive for the call;
        // the base and cancellable are live objects; GIO fills `bytes_sent` and `error`.
        let sent = unsafe {
            let n = gio::ffi::g_datagram_based_send_messages(
                self.base.0.to_glib_none().0,
                &mut message,
                1,
                0,
                timeout,
                cancellable.to_glib_none().0,
                &mut error,
            );
            outcome(n, error)?
        };
        match sent {
            1 => Ok(message.bytes_sent as usize),
            _ => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "datagram not sent",
            )),
        }
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        _cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        let timeout = micros(timeout).ok_or_else(timed_out)?;
        let cancellable = self.cancellable();
        if let Some(socket) = socket_with_timeout(&self.base.0) {
            return on_socket(
                socket,
                glib::IOCondition::IN,
                timeout,
                cancellable.as_ref(),
                || socket.receive_with_blocking(&mut *buf, false, cancellable.as_ref()),
            );
        }
        let mut vector = GInputVector {
            buffer: buf.as_mut_ptr().cast(),
            size: buf.len(),
        };
        let mut message = GInputMessage {
            address: std::ptr::null_mut(),
            vectors: &mut vector,
            num_vectors: 1,
            bytes_received: 0,
            flags: 0,
            control_messages: std::ptr::null_mut(),
            num_control_messages: std::ptr::null_mut(),
        };
        let mut error = std::ptr::null_mut();
        // SAFETY: one message whose one vector points at `buf`, all alive for the call; GIO
        // writes at most `buf.len()` bytes there and fills `bytes_received` and `error`.
        let received = unsafe {
            let n = gio::ffi::g_datagram_based_receive_messages(
                self.base.0.to_glib_none().0,
                &mut message,
                1,
                0,
                timeout,
                cancellable.to_glib_none().0,
                &mut error,
            );
            outcome(n, error)?
        };
        match received {
            1 => Ok(message.bytes_received),
            _ => Err(io::Error::new(io::ErrorKind::WouldBlock, "no datagram")),
        }
    }
}
