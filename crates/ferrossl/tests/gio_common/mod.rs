//! What the GIO tests share: identities from the test PKI as library objects, and a
//! database holding the test CA.

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
