//! GIO's verdict on a chain (`ferrossl::gio::chain_flags`) and the certificate facts GIO's
//! certificate properties show: subjectAltName entries and RFC 4514 names.

use ferrossl::gio::{chain_flags, TlsCertificateFlags as F};
use ferrossl::verify::{certificate_matches_host, Purpose};
use ferrossl::{X509Store, X509};
use ferrossl_testkit::pki::{Identity, TestPki};
use rustls_pki_types::UnixTime;

fn anchors(pki: &TestPki) -> X509Store {
    let store = X509Store::new();
    store
        .add_cert(X509::from_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    store
}

fn chain(id: &Identity) -> Vec<X509> {
    X509::stack_from_pem(&std::fs::read(&id.chain_path).unwrap()).unwrap()
}

fn flags(pki: &TestPki, id: &Identity, identity: Option<&str>) -> F {
    chain_flags(
        &chain(id),
        &anchors(pki),
        identity,
        Purpose::ServerAuth,
        UnixTime::now(),
    )
}

#[test]
fn a_good_chain_has_no_flags_and_a_wrong_name_is_bad_identity() {
    let pki = TestPki::generate();
    assert_eq!(
        flags(&pki, &pki.server_ecdsa, Some("localhost")),
        F::default()
    );
    assert_eq!(
        flags(&pki, &pki.server_ecdsa, Some("127.0.0.1")),
        F::default()
    );
    assert_eq!(flags(&pki, &pki.server_chain, None), F::default());
    assert_eq!(
        flags(&pki, &pki.server_ecdsa, Some("example.com")),
        F::BAD_IDENTITY
    );
}

#[test]
fn unanchored_chains_are_unknown_ca_with_their_other_problems() {
    let pki = TestPki::generate();
    assert_eq!(flags(&pki, &pki.untrusted, None), F::UNKNOWN_CA);
    assert_eq!(flags(&pki, &pki.self_signed, None), F::UNKNOWN_CA);
    // A CA certificate presented as the peer's own: unknown, not merely unfit.
    assert_eq!(flags(&pki, &pki.other_ca, None), F::UNKNOWN_CA);
    assert_eq!(
        flags(&pki, &pki.untrusted, Some("example.com")),
        F::UNKNOWN_CA | F::BAD_IDENTITY
    );
    let nothing_trusted = X509Store::new();
    let got = chain_flags(
        &chain(&pki.server_ecdsa),
        &nothing_trusted,
        None,
        Purpose::ServerAuth,
        UnixTime::now(),
    );
    assert_eq!(got, F::UNKNOWN_CA);
    assert_eq!(
        chain_flags(
            &[],
            &anchors(&pki),
            None,
            Purpose::ServerAuth,
            UnixTime::now()
        ),
        F::UNKNOWN_CA
    );
}

#[test]
fn time_problems_are_reported_alone_for_anchored_chains() {
    let pki = TestPki::generate();
    assert_eq!(flags(&pki, &pki.expired, None), F::EXPIRED);
    assert_eq!(flags(&pki, &pki.not_yet_valid, None), F::NOT_ACTIVATED);
}

#[test]
fn subject_alt_names_and_host_matching() {
    let pki = TestPki::generate();
    let cert = X509::from_pem(pki.server_rsa.cert_pem.as_bytes()).unwrap();
    assert_eq!(cert.dns_names(), ["localhost"]);
    let ips: Vec<String> = cert
        .ip_addresses()
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    assert_eq!(ips, ["127.0.0.1", "::1"]);
    assert!(certificate_matches_host(&cert, "localhost"));
    assert!(certificate_matches_host(&cert, "::1"));
    assert!(!certificate_matches_host(&cert, "example.com"));
    assert!(!certificate_matches_host(&cert, "not a name"));
    let ca = X509::from_pem(pki.ca.cert_pem.as_bytes()).unwrap();
    assert!(ca.dns_names().is_empty() && ca.ip_addresses().is_empty());
}

#[test]
fn names_in_rfc4514_form_are_reversed_and_escaped() {
    let pki = TestPki::generate();
    let ca = X509::from_pem(pki.ca.cert_pem.as_bytes()).unwrap();
    let subject = ca.subject();
    let expected: Vec<String> = subject
        .entries()
        .iter()
        .rev()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(subject.to_rfc4514(), expected.join(","));
    assert!(subject.to_rfc4514().contains("CN=ferrossl test root CA"));
}
