//! Peer verification with OpenSSL's semantics: X509_V_ERR codes, the per-depth callback and its
//! override, verify modes, depth, hostname checks and client authentication.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ferrossl::constants::*;
use ferrossl::verify::VerifyCallback;
use ferrossl::{Context, Error, Method};
use ferrossl_testkit::pki::{Identity, TestPki};

/// (depth, errnum, ok) of every callback call.
type Calls = Arc<Mutex<Vec<(u32, i32, bool)>>>;

fn recording(answer: bool) -> (VerifyCallback, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let cb: VerifyCallback = Arc::new(move |p| {
        seen.lock().unwrap().push((p.depth, p.errnum, p.ok));
        answer || p.ok
    });
    (cb, calls)
}

fn verify_failure(pki: &TestPki, server: &Identity) -> (i32, u32) {
    let (mut c, mut s) = pair(&client_ctx(pki), &server_ctx(server));
    match handshake(&mut c, &mut s) {
        Err(("client", Error::CertificateVerify { code, depth })) => {
            assert_eq!(c.get_verify_result(), code);
            (code, depth)
        }
        other => panic!("expected a verify failure on the client, got {other:?}"),
    }
}

#[test]
fn failures_carry_openssl_codes() {
    let pki = TestPki::generate();
    assert_eq!(
        verify_failure(&pki, &pki.expired),
        (X509_V_ERR_CERT_HAS_EXPIRED, 0)
    );
    assert_eq!(
        verify_failure(&pki, &pki.not_yet_valid),
        (X509_V_ERR_CERT_NOT_YET_VALID, 0)
    );
    assert_eq!(
        verify_failure(&pki, &pki.self_signed),
        (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0)
    );
    assert_eq!(
        verify_failure(&pki, &pki.untrusted),
        (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0)
    );
}

#[test]
fn the_server_learns_why_through_the_alert() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.untrusted));
    assert!(handshake(&mut c, &mut s).is_err());
    // The client's alert reaches the server.
    transfer(&mut c, &mut s);
    match s.do_handshake() {
        Err(Error::Protocol(rustls::Error::AlertReceived(a))) => {
            assert_eq!(a, rustls::AlertDescription::UnknownCA)
        }
        other => panic!("expected an unknown_ca alert, got {other:?}"),
    }
}

#[test]
fn callback_sees_each_depth_top_first_and_can_override() {
    let pki = TestPki::generate();
    // Success through an intermediate: anchor (2), intermediate (1), leaf (0), all ok.
    let cctx = client_ctx(&pki);
    let (cb, calls) = recording(false);
    cctx.set_verify(VERIFY_PEER, Some(cb));
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_chain));
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![(2, 0, true), (1, 0, true), (0, 0, true)]
    );
    assert_eq!(c.get_verified_chain().unwrap().len(), 3);
    assert_eq!(
        c.get_peer_cert_chain().unwrap().len(),
        2,
        "leaf and intermediate were sent"
    );

    // A failure the callback accepts: the handshake goes on, the result keeps the code.
    let cctx = client_ctx(&pki);
    let (cb, calls) = recording(true);
    cctx.set_verify(VERIFY_PEER, Some(cb));
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.expired));
    handshake(&mut c, &mut s).unwrap();
    assert!(calls
        .lock()
        .unwrap()
        .contains(&(0, X509_V_ERR_CERT_HAS_EXPIRED, false)));
    assert_eq!(c.get_verify_result(), X509_V_ERR_CERT_HAS_EXPIRED);
    assert!(c.get_verified_chain().is_none());

    // A good chain the callback rejects.
    let cctx = client_ctx(&pki);
    cctx.set_verify(VERIFY_PEER, Some(Arc::new(|p| p.depth != 0)));
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_ecdsa));
    match handshake(&mut c, &mut s) {
        Err(("client", Error::CertificateVerify { code, depth: 0 })) => {
            assert_eq!(code, X509_V_ERR_CERT_REJECTED)
        }
        other => panic!("expected rejection, got {other:?}"),
    }
}

#[test]
fn verify_none_reports_but_does_not_fail() {
    let pki = TestPki::generate();
    let cctx = Context::new(Method::Tls);
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.self_signed));
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(
        c.get_verify_result(),
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    );
}

#[test]
fn a_trusted_self_signed_certificate_is_its_own_anchor() {
    let pki = TestPki::generate();
    let cctx = Context::new(Method::Tls);
    cctx.load_verify_locations(Some(pki.self_signed.cert_path.as_ref()), None)
        .unwrap();
    cctx.set_verify(VERIFY_PEER, None);
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.self_signed));
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.get_verified_chain().unwrap().len(), 1);
}

#[test]
fn verify_depth_counts_intermediates() {
    let pki = TestPki::generate();
    let cctx = client_ctx(&pki);
    cctx.set_verify_depth(0);
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_chain));
    match handshake(&mut c, &mut s) {
        Err(("client", Error::CertificateVerify { code, .. })) => {
            assert_eq!(code, X509_V_ERR_CERT_CHAIN_TOO_LONG)
        }
        other => panic!("expected chain too long, got {other:?}"),
    }
    cctx.set_verify_depth(1);
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_chain));
    handshake(&mut c, &mut s).unwrap();
}

#[test]
fn hostname_is_checked_only_when_asked() {
    let pki = TestPki::generate();
    let sctx = server_ctx(&pki.server_ecdsa);
    // Not asked: a wrong SNI name does not matter (pyOpenSSL's behaviour).
    let cctx = client_ctx(&pki);
    let (mut c, mut s) = pair(&cctx, &sctx);
    c.set_tlsext_host_name("wrong.example").unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(s.get_servername().as_deref(), Some("wrong.example"));

    cctx.set_check_hostname(true);
    let (mut c, mut s) = pair(&cctx, &sctx);
    c.set_tlsext_host_name("wrong.example").unwrap();
    match handshake(&mut c, &mut s) {
        Err(("client", Error::CertificateVerify { code, depth: 0 })) => {
            assert_eq!(code, X509_V_ERR_HOSTNAME_MISMATCH)
        }
        other => panic!("expected hostname mismatch, got {other:?}"),
    }
    let (mut c, mut s) = pair(&cctx, &sctx);
    c.set_tlsext_host_name("localhost").unwrap();
    handshake(&mut c, &mut s).unwrap();

    // set1_host checks an IP address without SNI.
    let (mut c, mut s) = pair(&client_ctx(&pki), &sctx);
    c.set1_host("127.0.0.1").unwrap();
    handshake(&mut c, &mut s).unwrap();
    let (mut c, mut s) = pair(&client_ctx(&pki), &sctx);
    c.set1_host("10.9.8.7").unwrap();
    assert!(matches!(
        handshake(&mut c, &mut s),
        Err((
            "client",
            Error::CertificateVerify {
                code: X509_V_ERR_IP_ADDRESS_MISMATCH,
                ..
            }
        ))
    ));
}

#[test]
fn bad_server_names_are_refused() {
    let pki = TestPki::generate();
    let mut c = ferrossl::Connection::new(&client_ctx(&pki)).unwrap();
    for bad in ["", "127.0.0.1", "::1", "a\0b", &"a".repeat(256)] {
        assert!(
            matches!(c.set_tlsext_host_name(bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

fn client_auth_server(pki: &TestPki, mode: i32) -> Context {
    let sctx = server_ctx(&pki.server_ecdsa);
    sctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    sctx.set_verify(mode, None);
    sctx
}

#[test]
fn client_certificates() {
    let pki = TestPki::generate();
    for version in [TLS1_2_VERSION, TLS1_3_VERSION] {
        let required = client_auth_server(&pki, VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT);
        required.set_max_proto_version(version).unwrap();

        // Without a certificate: refused.
        let (mut c, mut s) = pair(&client_ctx(&pki), &required);
        let err = handshake(&mut c, &mut s).unwrap_err();
        assert!(matches!(err.1, Error::Protocol(_)), "{err:?}");

        // With one: the server sees and verifies it.
        for id in [&pki.client_ecdsa, &pki.client_rsa] {
            let cctx = client_ctx(&pki);
            cctx.use_certificate_file(&id.cert_path, FILETYPE_PEM)
                .unwrap();
            cctx.use_privatekey_file(&id.key_path, FILETYPE_PEM)
                .unwrap();
            let (mut c, mut s) = pair(&cctx, &required);
            handshake(&mut c, &mut s).unwrap();
            let peer = s.get_peer_certificate().unwrap();
            assert_eq!(peer.subject().get("CN"), Some("ferrossl test client"));
            assert_eq!(s.get_verify_result(), X509_V_OK);
            assert_eq!(
                s.get_peer_cert_chain().unwrap().len(),
                0,
                "the server's view omits the leaf"
            );
        }

        // Requested but optional: a client without one gets through.
        let optional = client_auth_server(&pki, VERIFY_PEER);
        optional.set_max_proto_version(version).unwrap();
        let (mut c, mut s) = pair(&client_ctx(&pki), &optional);
        handshake(&mut c, &mut s).unwrap();
        assert!(s.get_peer_certificate().is_none());

        // An untrusted client certificate is refused with its code.
        let cctx = client_ctx(&pki);
        cctx.use_certificate_file(&pki.untrusted.cert_path, FILETYPE_PEM)
            .unwrap();
        cctx.use_privatekey_file(&pki.untrusted.key_path, FILETYPE_PEM)
            .unwrap();
        let (mut c, mut s) = pair(&cctx, &required);
        let err = handshake(&mut c, &mut s).unwrap_err();
        assert!(
            matches!(err, ("server", Error::CertificateVerify { .. })),
            "{err:?}"
        );
    }
}

/// OpenSSL matches an issuer to a CA after canonicalising names, so a leaf whose issuer is a
/// UTF8String still chains to a CA whose subject is a PrintableString; ferrossl agrees.
#[test]
fn issuer_names_match_across_string_types() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, DnValue, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let named = |value: DnValue| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, value);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let printable = named(DnValue::PrintableString(
        "Testing Root CA".try_into().unwrap(),
    ));
    let ca = printable.self_signed(&ca_key).unwrap();
    let utf8 = named(DnValue::Utf8String("Testing Root CA".into()));
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::from_params(&utf8, &ca_key))
        .unwrap();

    let sctx = Context::new(Method::Tls);
    sctx.use_certificate(ferrossl::X509::from_der(leaf.der()).unwrap());
    sctx.use_privatekey(ferrossl::PKey::from_der(&leaf_key.serialize_der()).unwrap());
    let cctx = Context::new(Method::Tls);
    cctx.get_cert_store()
        .add_cert(ferrossl::X509::from_der(ca.der()).unwrap())
        .unwrap();
    cctx.set_verify(VERIFY_PEER, None);
    let (mut c, mut s) = pair(&cctx, &sctx);
    handshake(&mut c, &mut s).unwrap();
    let chain = c.get_verified_chain().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1].to_der(), ca.der().as_ref());
}
