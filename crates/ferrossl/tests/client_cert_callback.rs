//! The client certificate callback (`Context::set_client_cert_callback`, OpenSSL's
//! `SSL_CTX_set_client_cert_cb`): asked when a server requests a certificate and the client has
//! none configured, over TLS 1.3, TLS 1.2, DTLS 1.2 and DTLS 1.3.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ferrossl::constants::*;
use ferrossl::{Context, Method, PKey, X509Name, X509};
use ferrossl_testkit::pki::{Identity, TestPki};

/// The CA names of every call.
type Calls = Arc<Mutex<Vec<Vec<X509Name>>>>;

fn identity(id: &Identity) -> (Vec<X509>, PKey) {
    let chain = X509::stack_from_pem(&std::fs::read(&id.chain_path).unwrap()).unwrap();
    let key = PKey::from_pem(&std::fs::read(&id.key_path).unwrap(), None).unwrap();
    (chain, key)
}

/// A server of `method` (TLS, or DTLS up to `max`) requiring a client certificate from the
/// test CA, which it names.
fn server(pki: &TestPki, method: Method, max: i32) -> Context {
    let ctx = Context::new(method);
    ctx.use_certificate_chain_file(&pki.server_ecdsa.chain_path)
        .unwrap();
    ctx.use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT, None);
    ctx.add_client_ca(&X509::from_pem(pki.ca.cert_pem.as_bytes()).unwrap());
    ctx.set_max_proto_version(max).unwrap();
    ctx
}

/// A client of `method` (up to `max`) whose callback gives `gives` and records its calls.
fn client(pki: &TestPki, method: Method, max: i32, gives: Option<&Identity>) -> (Context, Calls) {
    let ctx = Context::new(method);
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER, None);
    ctx.set_max_proto_version(max).unwrap();
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let answer = gives.map(identity);
    ctx.set_client_cert_callback(Some(Arc::new(move |names: &[X509Name]| {
        seen.lock().unwrap().push(names.to_vec());
        answer.clone()
    })));
    (ctx, calls)
}

const CASES: [(&str, Method, i32); 4] = [
    ("TLS 1.3", Method::Tls, TLS1_3_VERSION),
    ("TLS 1.2", Method::Tls, TLS1_2_VERSION),
    ("DTLS 1.2", Method::Dtls, DTLS1_2_VERSION),
    ("DTLS 1.3", Method::Dtls, DTLS1_3_VERSION),
];

#[test]
fn the_callback_gives_the_certificate_a_server_asks_for() {
    let pki = TestPki::generate();
    let ca = X509::from_pem(pki.ca.cert_pem.as_bytes())
        .unwrap()
        .subject();
    for (name, method, max) in CASES {
        let (client_ctx, calls) = client(&pki, method, max, Some(&pki.client_ecdsa));
        let (mut c, mut s) = pair(&client_ctx, &server(&pki, method, max));
        handshake(&mut c, &mut s).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(c.get_protocol_version(), max, "{name}");
        let peer = s.get_peer_certificate().expect("the client's certificate");
        assert_eq!(
            peer.subject().get("CN"),
            Some("ferrossl test client"),
            "{name}"
        );
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{name}: asked once");
        // TLS 1.3 and DTLS 1.2 carry the names in the request; this DTLS 1.3 engine reads
        // none (certificate_authorities), and passes an empty list.
        if name != "DTLS 1.3" {
            assert_eq!(
                calls[0],
                vec![ca.clone()],
                "{name}: the CA names the server sent"
            );
        }
    }
}

#[test]
fn without_an_answer_the_client_sends_no_certificate() {
    let pki = TestPki::generate();
    for (name, method, max) in CASES {
        let (client_ctx, calls) = client(&pki, method, max, None);
        let (mut c, mut s) = pair(&client_ctx, &server(&pki, method, max));
        let failed = handshake(&mut c, &mut s);
        assert!(failed.is_err(), "{name}: the server requires a certificate");
        assert!(s.get_peer_certificate().is_none(), "{name}");
        assert_eq!(calls.lock().unwrap().len(), 1, "{name}");
    }
}

#[test]
fn a_configured_certificate_or_no_request_does_not_ask() {
    let pki = TestPki::generate();
    for (name, method, max) in CASES {
        // A configured certificate is used as it is.
        let (client_ctx, calls) = client(&pki, method, max, None);
        client_ctx
            .use_certificate_chain_file(&pki.client_ecdsa.chain_path)
            .unwrap();
        client_ctx
            .use_privatekey_file(&pki.client_ecdsa.key_path, FILETYPE_PEM)
            .unwrap();
        let (mut c, mut s) = pair(&client_ctx, &server(&pki, method, max));
        handshake(&mut c, &mut s).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(s.get_peer_certificate().is_some(), "{name}");
        assert!(calls.lock().unwrap().is_empty(), "{name}");

        // A server that asks for none.
        let (client_ctx, calls) = client(&pki, method, max, Some(&pki.client_ecdsa));
        let server_ctx = server(&pki, method, max);
        server_ctx.set_verify(VERIFY_NONE, None);
        let (mut c, mut s) = pair(&client_ctx, &server_ctx);
        handshake(&mut c, &mut s).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(s.get_peer_certificate().is_none(), "{name}");
        assert!(calls.lock().unwrap().is_empty(), "{name}");
    }
}

/// A certificate whose key does not match is not sent.
#[test]
fn a_mismatched_answer_is_not_sent() {
    let pki = TestPki::generate();
    for (name, method, max) in CASES {
        let client_ctx = Context::new(method);
        client_ctx
            .load_verify_locations(Some(pki.ca_path().as_ref()), None)
            .unwrap();
        client_ctx.set_max_proto_version(max).unwrap();
        let (chain, _) = identity(&pki.client_ecdsa);
        let (_, other_key) = identity(&pki.server_ecdsa);
        client_ctx.set_client_cert_callback(Some(Arc::new(move |_: &[X509Name]| {
            Some((chain.clone(), other_key.clone()))
        })));
        let (mut c, mut s) = pair(&client_ctx, &server(&pki, method, max));
        assert!(handshake(&mut c, &mut s).is_err(), "{name}");
        assert!(s.get_peer_certificate().is_none(), "{name}");
    }
}
