//! `gio::channel_binding_data` over TLS connections: both ends agree on tls-exporter and
//! tls-server-end-point; tls-unique does not exist in TLS 1.3, nor, over rustls, in TLS 1.2.

use ferrossl::constants::*;
use ferrossl::gio::{channel_binding_data, ChannelBindingType as B, GioError};
use ferrossl::{Connection, Context, Error, Method, X509};
use ferrossl_testkit::pki::TestPki;

fn pump(from: &mut Connection, to: &mut Connection) {
    while let Ok(bytes) = from.bio_read(65536) {
        to.bio_write(&bytes).unwrap();
    }
}

/// A client and a server after their handshake at `version`, and the server's certificate.
fn pair(version: i32) -> (Connection, Connection, X509) {
    let pki = TestPki::generate();
    let server_ctx = Context::new(Method::Tls);
    server_ctx
        .use_certificate_file(&pki.server_ecdsa.cert_path, FILETYPE_PEM)
        .unwrap();
    server_ctx
        .use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    server_ctx.set_max_proto_version(version).unwrap();
    let mut server = Connection::new(&server_ctx).unwrap();
    server.set_accept_state().unwrap();
    let mut client = Connection::new(&Context::new(Method::Tls)).unwrap();
    client.set_connect_state().unwrap();
    for _ in 0..10 {
        let _ = client.do_handshake();
        pump(&mut client, &mut server);
        let _ = server.do_handshake();
        pump(&mut server, &mut client);
    }
    assert!(client.is_handshake_done() && server.is_handshake_done());
    let cert = X509::from_pem(pki.server_ecdsa.cert_pem.as_bytes()).unwrap();
    (client, server, cert)
}

#[test]
fn both_ends_agree_on_exporter_and_server_end_point() {
    for version in [TLS1_3_VERSION, TLS1_2_VERSION] {
        let (client, server, cert) = pair(version);
        let ours = |kind| channel_binding_data(&client, kind, false, None).unwrap();
        let theirs = |kind| channel_binding_data(&server, kind, true, Some(&cert)).unwrap();
        assert_eq!(ours(B::Exporter).len(), 32);
        assert_eq!(ours(B::Exporter), theirs(B::Exporter));
        // SHA-256 of the certificate, its signature being ECDSA with SHA-256.
        assert_eq!(ours(B::ServerEndPoint).len(), 32);
        assert_eq!(ours(B::ServerEndPoint), theirs(B::ServerEndPoint));
    }
}

#[test]
fn tls_unique_is_refused_in_tls_1_3() {
    let (client, _server, _) = pair(TLS1_3_VERSION);
    let got = channel_binding_data(&client, B::Unique, false, None);
    assert!(
        matches!(got, Err(GioError::Tls(Error::NotSupported(_)))),
        "{got:?}"
    );
}

#[test]
fn a_server_without_its_certificate_has_no_server_end_point() {
    let (_client, server, _) = pair(TLS1_3_VERSION);
    let got = channel_binding_data(&server, B::ServerEndPoint, true, None);
    assert!(
        matches!(got, Err(GioError::Tls(Error::Missing(_)))),
        "{got:?}"
    );
}

#[test]
fn tls_unique_over_tls_1_2_is_not_supported_by_the_engine() {
    // It needs the first Finished message, which rustls does not expose.
    let (client, _server, _) = pair(TLS1_2_VERSION);
    let got = channel_binding_data(&client, B::Unique, false, None);
    assert!(
        matches!(got, Err(GioError::Tls(Error::NotSupported(_)))),
        "{got:?}"
    );
}
