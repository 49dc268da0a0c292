//! A Python socket object as a byte stream: `recv`/`send` are called under the GIL, a socket
//! that would block or timed out reads as `WouldBlock` (pyOpenSSL's Want* errors), and any
//! other exception is parked to be raised by the method that was running.

use std::io::{self, Read, Write};

use pyo3::exceptions::{PyBlockingIOError, PyOSError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::park;

pub struct PyStream {
    pub sock: Py<PyAny>,
    /// A `socket.socket`, whose `recv` takes flags.
    pub is_socket: bool,
}

/// The io::Error for an exception a socket method raised (others are parked).
pub fn to_io(py: Python<'_>, err: PyErr) -> io::Error {
    if err.is_instance_of::<PyBlockingIOError>(py) || err.is_instance_of::<PyTimeoutError>(py) {
        return io::ErrorKind::WouldBlock.into();
    }
    if err.is_instance_of::<PyOSError>(py) {
        let errno = err
            .value(py)
            .getattr("errno")
            .ok()
            .and_then(|e| e.extract::<i32>().ok());
        if let Some(errno) = errno {
            return io::Error::from_raw_os_error(errno);
        }
    }
    let text = err.to_string();
    park(err);
    io::Error::other(text)
}

impl Read for PyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::with_gil(|py| {
            let data = self
                .sock
                .call_method1(py, "recv", (buf.len(),))
                .map_err(|e| to_io(py, e))?;
            let data = data
                .downcast_bound::<PyBytes>(py)
                .map_err(|e| to_io(py, e.into()))?;
            let bytes = data.as_bytes();
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            Ok(n)
        })
    }
}

impl Write for PyStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Python::with_gil(|py| {
            let n = self
                .sock
                .call_method1(py, "send", (PyBytes::new(py, data),))
                .map_err(|e| to_io(py, e))?;
            n.extract::<usize>(py).map_err(|e| to_io(py, e))
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ferrossl::transport::Stream for PyStream {
    fn discard_received(&mut self) {
        if !self.is_socket {
            return;
        }
        // Only what is there now: `select` with a zero timeout says so, and a `recv` of a
        // readable socket does not wait (whatever its timeout or blocking mode, which stay
        // the program's).
        Python::with_gil(|py| {
            let Ok(select) = py.import("select").and_then(|m| m.getattr("select")) else {
                return;
            };
            let sock = self.sock.bind(py);
            // What one flight can hold; a peer that keeps sending is not waited for.
            for _ in 0..16 {
                let readable = select
                    .call1(((sock,), (), (), 0))
                    .and_then(|r| r.get_item(0))
                    .and_then(|r| r.is_truthy());
                if !matches!(readable, Ok(true)) {
                    break;
                }
                match sock.call_method1("recv", (4096,)) {
                    Ok(data) if data.len().is_ok_and(|n| n > 0) => {}
                    _ => break,
                }
            }
        })
    }

    fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => 0,
            std::net::Shutdown::Write => 1,
            std::net::Shutdown::Both => 2,
        };
        Python::with_gil(|py| {
            self.sock
                .call_method1(py, "shutdown", (how,))
                .map(|_| ())
                .map_err(|e| to_io(py, e))
        })
    }
}
