//! What the GIO tests share: identities from the test PKI as library objects, a database
//! holding the test CA, and how a client learns that its server refused it.

use std::time::Duration;

use ferrossl::gio::{DtlsConnection, GioError};
use ferrossl::transport::{DatagramBased, Timeout};
use ferrossl::{PKey, X509Store, X509};
use ferrossl_testkit::pki::{Identity, TestPki};

/// The certificate and key of `id`.
pub fn identity(id: &Identity) -> (X509, PKey) {
    (
        X509::from_pem(id.cert_pem.as_bytes()).unwrap(),
        PKey::from_pem(id.key_pem.as_bytes(), None).unwrap(),
    )
}

/// A database that trusts the test CA.
pub fn database(pki: &TestPki) -> X509Store {
    let store = X509Store::new();
    store
        .add_cert(X509::from_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    store
}

/// The error with which a server's refusal (of a missing client certificate, say) reaches
/// `client`: its handshake's, or in DTLS 1.3, whose client finishes its handshake before the
/// server's verdict (RFC 8446 §4.4.2.4), its next read's.
pub fn refusal<B: DatagramBased>(client: &mut DtlsConnection<B>) -> GioError {
    match client.handshake(None) {
        Err(e) => e,
        Ok(()) => client
            .receive(Timeout::after(Duration::from_secs(10)), None)
            .unwrap_err(),
    }
}
