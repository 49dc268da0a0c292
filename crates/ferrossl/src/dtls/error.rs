//! What can end a DTLS association, and the one place that decides which alert each failure
//! sends. Handshake code returns a [`DtlsError`]; the engine asks [`DtlsError::alert`] what to
//! send, so the alert on the wire and the error the caller sees never disagree.

use rustls::AlertDescription;

/// A fatal DTLS failure. Invalid records are not errors: they are dropped silently
/// (RFC 6347 §4.1.2.7), so one bad datagram never ends an association.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    /// A handshake message or extension is malformed.
    #[error("malformed {0}")]
    Decode(&'static str),
    /// A field holds a value the protocol forbids here.
    #[error("illegal parameter: {0}")]
    IllegalParameter(&'static str),
    /// A message arrived that the handshake does not allow at this point.
    #[error("unexpected {got} while expecting {expected}")]
    UnexpectedMessage {
        /// What the handshake waited for.
        expected: &'static str,
        /// What arrived.
        got: String,
    },
    /// The server answered with an extension the client did not offer (RFC 5246 §7.4.1.4).
    #[error("unsolicited extension in the ServerHello")]
    UnsupportedExtension,
    /// A message lacks an extension the protocol requires there (RFC 8446 §9.2).
    #[error("missing extension: {0}")]
    MissingExtension(&'static str),
    /// The peers share no cipher suite usable with the certificate.
    #[error("no shared cipher")]
    NoSharedCipher,
    /// The peers share no other parameter the handshake needs.
    #[error("handshake failure: {0}")]
    HandshakeFailure(&'static str),
    /// The peer sent no certificate although ours requires one.
    #[error("peer did not return a certificate")]
    NoPeerCertificate,
    /// DTLS 1.3: the client sent no certificate although the server requires one; unlike
    /// DTLS 1.2, TLS 1.3 has an alert saying so (RFC 8446 §4.4.2.4).
    #[error("peer did not return a certificate (certificate_required)")]
    CertificateRequired,
    /// The peer's certificate chain failed verification (`X509_V_ERR_*` code at a depth).
    #[error("certificate verify failed: {} (X509_V_ERR {code}) at depth {depth}",
        crate::verify::verify_error_string(*.code))]
    Certificate {
        /// The X509_V_ERR_* code.
        code: i32,
        /// The chain depth of the failure.
        depth: u32,
    },
    /// A signature or a Finished message did not verify.
    #[error("decrypt error: {0}")]
    DecryptError(&'static str),
    /// ALPN found no protocol both ends speak (RFC 7301 §3.2).
    #[error("no application protocol in common")]
    NoApplicationProtocol,
    /// The peer does not speak DTLS 1.2.
    #[error("unsupported protocol version: {0}")]
    ProtocolVersion(&'static str),
    /// A record decrypted to more than the protocol allows (RFC 8446 §5.4).
    #[error("record overflow: a record over 2^14 bytes of content")]
    RecordOverflow,
    /// A local failure: a key that cannot sign, the random generator.
    #[error("internal error: {0}")]
    Internal(String),
    /// An application callback failed or gave something unusable; the handshake is aborted.
    #[error("callback failed: {0}")]
    Callback(String),
    /// The peer ended the association with a fatal alert.
    #[error("peer sent fatal alert {0:?}")]
    AlertReceived(AlertDescription),
    /// Server: the client restarted (RFC 6347 §4.2.8). A ClientHello in epoch 0 with a valid
    /// cookie arrived on the established association, which ends; the engine keeps the
    /// datagram for a new association ([`super::DtlsEngine::take_restart_hello`]).
    #[error("the peer restarted: a new ClientHello with a valid cookie ended the association")]
    PeerRestarted,
    /// The peer stopped answering: the last flight was sent this many times in vain.
    #[error("handshake timed out after {retransmissions} retransmissions")]
    Timeout {
        /// How many retransmissions went unanswered.
        retransmissions: u32,
    },
}

impl DtlsError {
    /// The fatal alert we send for this failure; `None` when the peer already knows (it sent
    /// the alert) or cannot be told (it stopped answering).
    pub fn alert(&self) -> Option<AlertDescription> {
        use AlertDescription as A;
        Some(match self {
            DtlsError::Decode(_) => A::DecodeError,
            DtlsError::IllegalParameter(_) => A::IllegalParameter,
            DtlsError::UnexpectedMessage { .. } => A::UnexpectedMessage,
            DtlsError::UnsupportedExtension => A::UnsupportedExtension,
            DtlsError::MissingExtension(_) => A::MissingExtension,
            DtlsError::NoSharedCipher
            | DtlsError::HandshakeFailure(_)
            // TLS 1.2 has no certificate_required alert; OpenSSL sends handshake_failure.
            | DtlsError::NoPeerCertificate => A::HandshakeFailure,
            DtlsError::CertificateRequired => A::CertificateRequired,
            DtlsError::Certificate { code, .. } => {
                A::from(crate::verify::certificate_error(*code))
            }
            DtlsError::DecryptError(_) => A::DecryptError,
            DtlsError::RecordOverflow => A::RecordOverflow,
            DtlsError::NoApplicationProtocol => A::NoApplicationProtocol,
            DtlsError::ProtocolVersion(_) => A::ProtocolVersion,
            // RFC 5246 §7.2.2: a failure the peer did not cause.
            DtlsError::Internal(_) | DtlsError::Callback(_) => A::InternalError,
            // The restarted peer has forgotten the old keys: an alert under them is noise.
            DtlsError::AlertReceived(_)
            | DtlsError::Timeout { .. }
            | DtlsError::PeerRestarted => return None,
        })
    }
}

impl From<DtlsError> for crate::Error {
    fn from(e: DtlsError) -> Self {
        use rustls::{Error as R, PeerIncompatible as P};
        match e {
            DtlsError::Certificate { code, depth } => {
                crate::Error::CertificateVerify { code, depth }
            }
            DtlsError::AlertReceived(alert) => R::AlertReceived(alert).into(),
            DtlsError::NoSharedCipher => R::PeerIncompatible(P::NoCipherSuitesInCommon).into(),
            DtlsError::NoPeerCertificate | DtlsError::CertificateRequired => {
                R::NoCertificatesPresented.into()
            }
            DtlsError::ProtocolVersion(_) => {
                R::PeerIncompatible(P::ServerDoesNotSupportTls12Or13).into()
            }
            DtlsError::Callback(message) => crate::Error::Callback(message),
            DtlsError::PeerRestarted => crate::Error::PeerRestarted,
            other => R::General(other.to_string()).into(),
        }
    }
}

/// A codec failure: which field could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl From<DecodeError> for DtlsError {
    fn from(e: DecodeError) -> Self {
        DtlsError::Decode(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;

    #[test]
    fn every_sent_alert_has_a_reason_and_certificate_codes_pick_their_alert() {
        assert_eq!(
            DtlsError::Certificate {
                code: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                depth: 0
            }
            .alert(),
            Some(AlertDescription::UnknownCA)
        );
        assert_eq!(
            DtlsError::Certificate {
                code: X509_V_ERR_CERT_HAS_EXPIRED,
                depth: 0
            }
            .alert(),
            Some(AlertDescription::CertificateExpired)
        );
        assert_eq!(DtlsError::Timeout { retransmissions: 3 }.alert(), None);
        let e: crate::Error = DtlsError::NoSharedCipher.into();
        assert_eq!(e.openssl_errors()[0].reason, "no shared cipher");
        let e: crate::Error = DtlsError::DecryptError("Finished verify_data mismatch").into();
        assert!(e.to_string().contains("Finished verify_data mismatch"));
    }
}
