//! ferrossl's errors as the GErrors GIO's callers expect (G_TLS_ERROR, G_IO_ERROR).

use ferrossl::Error;

/// Whether `e` is the transport ending without the peer's close_notify.
pub fn is_unexpected_eof(e: &Error) -> bool {
    matches!(e, Error::SysCall { errno: -1, .. })
}

/// Whether the peer's bytes were no TLS records at all (GIO's NOT_TLS).
fn is_not_tls(e: &Error) -> bool {
    use ferrossl::rustls::{Error as R, InvalidMessage as M};
    matches!(
        e,
        Error::PlainHttp(_) | Error::Protocol(R::InvalidMessage(M::InvalidContentType))
    ) || is_unexpected_eof(e)
}

/// A failed handshake.
pub fn handshake(e: &Error) -> glib::Error {
    use ferrossl::rustls::{AlertDescription, Error as R};
    let code = match e {
        Error::CertificateVerify { .. } => gio::TlsError::BadCertificate,
        // TLS 1.3 servers say so when they require the client certificate we did not send.
        Error::Protocol(R::AlertReceived(AlertDescription::CertificateRequired)) => {
            gio::TlsError::CertificateRequired
        }
        e if is_not_tls(e) => gio::TlsError::NotTls,
        _ => gio::TlsError::Handshake,
    };
    let message = match e {
        Error::CertificateVerify { .. } => format!("Unacceptable TLS certificate ({e})"),
        e if is_unexpected_eof(e) => {
            "The peer closed the connection during the TLS handshake".into()
        }
        _ => format!("TLS handshake failed: {e}"),
    };
    glib::Error::new(code, &message)
}

/// A failure after the handshake.
pub fn io(e: &Error) -> glib::Error {
    use ferrossl::rustls::{AlertDescription, Error as R};
    match e {
        // In TLS 1.3 the client's handshake is over when the server refuses it for the
        // certificate it did not send: the first read learns it.
        Error::Protocol(R::AlertReceived(AlertDescription::CertificateRequired)) => {
            glib::Error::new(
                gio::TlsError::CertificateRequired,
                &format!("TLS error: {e}"),
            )
        }
        Error::ProtocolIsShutdown => glib::Error::new(
            gio::IOErrorEnum::Closed,
            "The TLS connection is closed for writing",
        ),
        e if is_unexpected_eof(e) => eof(),
        _ => glib::Error::new(gio::TlsError::Misc, &format!("TLS error: {e}")),
    }
}

/// The peer ended the connection without close_notify while one was required.
pub fn eof() -> glib::Error {
    glib::Error::new(gio::TlsError::Eof, "TLS connection closed unexpectedly")
}

/// An operation that needs the handshake's engine before the handshake started.
pub fn not_connected() -> glib::Error {
    glib::Error::new(
        gio::IOErrorEnum::NotConnected,
        "The TLS handshake has not run",
    )
}
