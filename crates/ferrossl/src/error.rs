//! One error type for the whole library.
//!
//! The variants follow the outcomes that OpenSSL's `SSL_get_error` distinguishes (want read, want
//! write, zero return, syscall, ssl) and split the "ssl" case into precise causes, so Rust callers
//! can match on what went wrong while the Python binding can still present OpenSSL's
//! `[(lib, func, reason)]` error list through [`Error::openssl_errors`].

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A specialised `Result` for ferrossl.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way an operation of ferrossl can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// More ciphertext from the peer is needed before the operation can go on
    /// (`SSL_ERROR_WANT_READ`).
    #[error("the operation needs more data from the peer (want read)")]
    WantRead,
    /// The transport cannot take more bytes now (`SSL_ERROR_WANT_WRITE`).
    #[error("the transport cannot take more data now (want write)")]
    WantWrite,
    /// A certificate lookup callback asked to be called again (`SSL_ERROR_WANT_X509_LOOKUP`).
    #[error("the operation waits for a certificate lookup")]
    WantX509Lookup,
    /// The peer closed the TLS session cleanly with a close_notify alert
    /// (`SSL_ERROR_ZERO_RETURN`).
    #[error("the peer closed the TLS session (close_notify received)")]
    ZeroReturn,
    /// The transport failed or ended without a close_notify (`SSL_ERROR_SYSCALL`).
    /// `errno` is -1 for an unexpected end of file, as pyOpenSSL reports it.
    #[error("{message} (errno {errno})")]
    SysCall {
        /// The OS error number, or -1 for an unexpected EOF.
        errno: i32,
        /// What happened, e.g. "Unexpected EOF".
        message: String,
    },
    /// The TLS engine refused the peer's messages or failed the handshake.
    #[error("TLS protocol error: {0}")]
    Protocol(rustls::Error),
    /// The peer's certificate chain failed verification and the verify callback did not
    /// override the failure.
    #[error("certificate verify failed: {} (X509_V_ERR {code}) at depth {depth}", crate::verify::verify_error_string(*.code))]
    CertificateVerify {
        /// The X509_V_ERR_* code.
        code: i32,
        /// The chain depth at which verification failed (0 = the peer's own certificate).
        depth: u32,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Bytes that should hold a certificate do not.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// Bytes that should hold a private key do not, or the key type is unsupported.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// An encrypted private key needs a passphrase and none (or a wrong one) was given.
    #[error("bad decrypt: {0}")]
    BadPassphrase(String),
    /// The private key does not belong to the certificate.
    #[error("key values mismatch: the private key does not match the certificate's public key")]
    KeyMismatch,
    /// An operation needs a certificate or a key that was not set.
    #[error("no {0} assigned")]
    Missing(&'static str),
    /// The requested protocol version is refused on purpose (see the docs' table of refusals).
    #[error("protocol not supported: {0}")]
    UnsupportedProtocol(&'static str),
    /// A feature the engine refuses by design or cannot provide (see the docs' table).
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// A cipher string selected no cipher suite the engine has.
    #[error("no cipher match")]
    NoCipherMatch,
    /// The peer spoke plain HTTP to a TLS server; the reason is OpenSSL's ("http request").
    #[error("the peer sent plain HTTP, not TLS ({0})")]
    PlainHttp(&'static str),
    /// An argument was out of range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The call is not allowed in the connection's current state.
    #[error("wrong state: {0}")]
    WrongState(&'static str),
    /// A write after this side sent close_notify (OpenSSL's "protocol is shutdown").
    #[error("cannot send after shutdown (protocol is shutdown)")]
    ProtocolIsShutdown,
    /// No trust store was found on this system.
    #[error("no system certificate store found: {0}")]
    NoSystemStore(String),
    /// A blocking operation gave up after its timeout.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// A DTLS server's client restarted (RFC 6347 §4.2.8): a new ClientHello with a valid
    /// cookie ended the established association. `Connection::dtls_take_restart_hello` gives
    /// that datagram, to hand to a new server connection.
    #[error("the DTLS peer restarted: a new ClientHello ended the association; hand it to a new connection")]
    PeerRestarted,
    /// A callback supplied by the user failed; the handshake was aborted.
    #[error("callback failed: {0}")]
    Callback(String),
    /// A server refused a client's retry at a lower version than both support: its
    /// ClientHello carried TLS_FALLBACK_SCSV (RFC 7507 §3), the mark of a downgraded retry.
    #[error("inappropriate fallback: the client retried below the highest version both support")]
    InappropriateFallback,
}

/// One entry of an OpenSSL-style error list: library, function and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorEntry {
    /// The library, e.g. "SSL routines".
    pub lib: String,
    /// The function; OpenSSL 3 leaves it empty and so does ferrossl.
    pub func: String,
    /// The reason, in OpenSSL's words where one exists, e.g. "certificate verify failed".
    pub reason: String,
}

impl Error {
    /// The `SSL_ERROR_*` value that `SSL_get_error` would return for this error.
    pub fn ssl_error_code(&self) -> i32 {
        use crate::constants::*;
        match self {
            Error::WantRead => SSL_ERROR_WANT_READ,
            Error::WantWrite => SSL_ERROR_WANT_WRITE,
            Error::WantX509Lookup => SSL_ERROR_WANT_X509_LOOKUP,
            Error::ZeroReturn => SSL_ERROR_ZERO_RETURN,
            Error::SysCall { .. } | Error::File { .. } => SSL_ERROR_SYSCALL,
            _ => SSL_ERROR_SSL,
        }
    }

    /// The error as OpenSSL's error queue would hold it: one or more `(lib, func, reason)`.
    pub fn openssl_errors(&self) -> Vec<ErrorEntry> {
        let (lib, reason) = match self {
            Error::Protocol(e) => ("SSL routines", protocol_reason(e)),
            Error::CertificateVerify { .. } => {
                ("SSL routines", "certificate verify failed".to_string())
            }
            Error::File { .. } => ("system library", self.to_string()),
            Error::InvalidCertificate(_) => ("PEM routines", self.to_string()),
            Error::InvalidKey(_) => ("PEM routines", self.to_string()),
            Error::BadPassphrase(_) => ("PEM routines", "bad decrypt".to_string()),
            Error::KeyMismatch => (
                "x509 certificate routines",
                "key values mismatch".to_string(),
            ),
            Error::NoCipherMatch => ("SSL routines", "no cipher match".to_string()),
            Error::PlainHttp(reason) => ("SSL routines", reason.to_string()),
            Error::ProtocolIsShutdown => ("SSL routines", "protocol is shutdown".to_string()),
            Error::InappropriateFallback => ("SSL routines", "inappropriate fallback".to_string()),
            Error::UnsupportedProtocol(_) => ("SSL routines", "unsupported protocol".to_string()),
            _ => ("SSL routines", self.to_string()),
        };
        vec![ErrorEntry {
            lib: lib.to_string(),
            func: String::new(),
            reason,
        }]
    }

    /// The unexpected-EOF error that pyOpenSSL reports as `SysCallError(-1, "Unexpected EOF")`.
    pub(crate) fn unexpected_eof() -> Self {
        Error::SysCall {
            errno: -1,
            message: "Unexpected EOF".to_string(),
        }
    }

    /// Maps a transport error: would-block becomes the matching want, EOF an unexpected EOF.
    pub(crate) fn from_transport(e: io::Error, want: Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock => want,
            io::ErrorKind::UnexpectedEof => Error::unexpected_eof(),
            _ => Error::SysCall {
                errno: e.raw_os_error().unwrap_or(-1),
                message: e.to_string(),
            },
        }
    }

    /// Whether the error only asks the caller to retry after more I/O.
    pub fn is_want(&self) -> bool {
        matches!(
            self,
            Error::WantRead | Error::WantWrite | Error::WantX509Lookup
        )
    }
}

/// OpenSSL's reason for a fatal alert the peer sent (its `SSL_R_*` at 1000 + the alert's
/// code): the words programs match, such as "tlsv1 alert unknown ca".
fn alert_reason(description: u8) -> Option<&'static str> {
    Some(match description {
        10 => "sslv3 alert unexpected message",
        20 => "sslv3 alert bad record mac",
        21 => "tlsv1 alert decryption failed",
        22 => "tlsv1 alert record overflow",
        30 => "sslv3 alert decompression failure",
        40 => "sslv3 alert handshake failure",
        41 => "sslv3 alert no certificate",
        42 => "sslv3 alert bad certificate",
        43 => "sslv3 alert unsupported certificate",
        44 => "sslv3 alert certificate revoked",
        45 => "sslv3 alert certificate expired",
        46 => "sslv3 alert certificate unknown",
        47 => "sslv3 alert illegal parameter",
        48 => "tlsv1 alert unknown ca",
        49 => "tlsv1 alert access denied",
        50 => "tlsv1 alert decode error",
        51 => "tlsv1 alert decrypt error",
        60 => "tlsv1 alert export restriction",
        70 => "tlsv1 alert protocol version",
        71 => "tlsv1 alert insufficient security",
        80 => "tlsv1 alert internal error",
        86 => "tlsv1 alert inappropriate fallback",
        90 => "tlsv1 alert user cancelled",
        100 => "tlsv1 alert no renegotiation",
        109 => "tlsv13 alert missing extension",
        110 => "tlsv1 unsupported extension",
        111 => "tlsv1 certificate unobtainable",
        112 => "tlsv1 unrecognized name",
        113 => "tlsv1 bad certificate status response",
        114 => "tlsv1 bad certificate hash value",
        115 => "tlsv1 alert unknown psk identity",
        116 => "tlsv13 alert certificate required",
        120 => "tlsv1 alert no application protocol",
        _ => return None,
    })
}

/// OpenSSL's reason string for an engine error, where OpenSSL has a close equivalent.
fn protocol_reason(e: &rustls::Error) -> String {
    use rustls::{Error as E, PeerIncompatible as P};
    match e {
        E::AlertReceived(alert) => match alert_reason(u8::from(*alert)) {
            Some(reason) => reason.to_string(),
            None => format!("ssl/tls alert number {}", u8::from(*alert)),
        },
        E::PeerIncompatible(P::NoCipherSuitesInCommon) => "no shared cipher".to_string(),
        E::PeerIncompatible(P::NoSignatureSchemesInCommon) => {
            "no suitable signature algorithm".to_string()
        }
        E::PeerIncompatible(P::ServerDoesNotSupportTls12Or13)
        | E::PeerIncompatible(P::Tls12NotOffered)
        | E::PeerIncompatible(P::Tls12NotOfferedOrEnabled) => "unsupported protocol".to_string(),
        E::InvalidCertificate(_) => "certificate verify failed".to_string(),
        E::NoCertificatesPresented => "peer did not return a certificate".to_string(),
        E::DecryptError => "decryption failed or bad record mac".to_string(),
        E::InvalidMessage(_) => "wrong version number".to_string(),
        E::NoApplicationProtocol => "no application protocol".to_string(),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "unexpected message".to_string()
        }
        other => other.to_string(),
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Protocol(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::WantRead | Error::WantWrite => io::ErrorKind::WouldBlock,
            Error::ZeroReturn => io::ErrorKind::UnexpectedEof,
            Error::SysCall { errno: -1, .. } => io::ErrorKind::UnexpectedEof,
            Error::InvalidArgument(_) => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

impl fmt::Display for ErrorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.lib, self.func, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription;

    fn reason(e: Error) -> String {
        e.openssl_errors()[0].reason.clone()
    }

    #[test]
    fn received_alerts_read_as_openssl_words_them() {
        let alert = |a| reason(Error::Protocol(rustls::Error::AlertReceived(a)));
        assert_eq!(alert(AlertDescription::UnknownCA), "tlsv1 alert unknown ca");
        assert_eq!(
            alert(AlertDescription::HandshakeFailure),
            "sslv3 alert handshake failure"
        );
        assert_eq!(
            alert(AlertDescription::CertificateRequired),
            "tlsv13 alert certificate required"
        );
        assert_eq!(
            alert(AlertDescription::Unknown(200)),
            "ssl/tls alert number 200"
        );
    }

    #[test]
    fn local_failures_read_as_openssl_words_them() {
        assert_eq!(reason(Error::PlainHttp("http request")), "http request");
        assert_eq!(reason(Error::ProtocolIsShutdown), "protocol is shutdown");
        assert_eq!(
            reason(Error::Protocol(rustls::Error::NoApplicationProtocol)),
            "no application protocol"
        );
    }
}
