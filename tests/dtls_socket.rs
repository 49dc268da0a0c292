//! DTLS over a real UDP socket with pyOpenSSL's Connection API, against OpenSSL: the blocking
//! socket runs the retransmission timer itself.

use std::net::UdpSocket;

use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error, Method};
use ferrossl_interop::TIMEOUT;
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::TestPki;

#[test]
fn dtls_client_over_udp_with_openssl_server() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_udp_port();
    let args = [
        "-dtls1_2".to_string(),
        "-naccept".into(),
        "1".into(),
        "-use_srtp".into(),
        "SRTP_AES128_CM_SHA1_80".into(),
        "-keymatexport".into(),
        "EXTRACTOR-dtls_srtp".into(),
        "-keymatexportlen".into(),
        "60".into(),
    ];
    let mut server =
        PeerProcess::spawn(&mut peer::openssl_s_server(port, &pki.server_rsa, &args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();

    let ctx = Context::new(Method::DtlsClient);
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER, None);
    ctx.set_tlsext_use_srtp("SRTP_AES128_CM_SHA1_80").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let mut conn = Connection::with_udp_socket(&ctx, socket).unwrap();
    conn.set_connect_state().unwrap();
    conn.do_handshake().unwrap();
    assert_eq!(conn.get_protocol_version_name(), "DTLSv1.2");
    assert_eq!(
        conn.get_selected_srtp_profile(),
        Some("SRTP_AES128_CM_SHA1_80")
    );
    let km = conn
        .export_keying_material(b"EXTRACTOR-dtls_srtp", 60, None)
        .unwrap();
    let hex: String = km.iter().map(|b| format!("{b:02X}")).collect();
    server
        .wait_for_output(&format!("Keying material: {hex}"), TIMEOUT)
        .unwrap();

    conn.send(b"hello over udp\n").unwrap();
    server.wait_for_output("hello over udp", TIMEOUT).unwrap();
    server.write_stdin(b"hello back\n").unwrap();
    let mut buf = [0u8; 256];
    let n = conn.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello back\n");
    assert!(!conn.shutdown().unwrap());
    // OpenSSL answers close_notify with its own.
    match conn.recv(&mut buf) {
        Err(Error::ZeroReturn) => {}
        other => panic!("expected the server's close_notify, got {other:?}"),
    }
    server.wait_with_timeout(TIMEOUT).unwrap();
}

/// gnutls-serv binds every address, so this runs in a private network namespace (see
/// `in_loopback_namespace`).
#[test]
fn dtls_client_over_udp_with_gnutls_server() {
    if !peer::require_tool("gnutls-serv")
        || !ferrossl_interop::in_loopback_namespace("dtls_client_over_udp_with_gnutls_server")
    {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_udp_port();
    let args = [
        "--udp".to_string(),
        "--echo".into(),
        "--srtp-profiles=SRTP_AES128_CM_HMAC_SHA1_80".into(),
    ];
    let mut server =
        PeerProcess::spawn(&mut peer::gnutls_serv(port, &pki.server_ecdsa, &args)).unwrap();
    server
        .wait_for_output("listening on IPv4", TIMEOUT)
        .unwrap();

    let ctx = Context::new(Method::DtlsClient);
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER, None);
    ctx.set_tlsext_use_srtp("SRTP_AES128_CM_SHA1_80").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let mut conn = Connection::with_udp_socket(&ctx, socket).unwrap();
    conn.set_connect_state().unwrap();
    conn.set_tlsext_host_name("localhost").unwrap();
    conn.do_handshake().unwrap();
    assert_eq!(conn.get_protocol_version_name(), "DTLSv1.2");
    assert_eq!(
        conn.get_selected_srtp_profile(),
        Some("SRTP_AES128_CM_SHA1_80")
    );
    conn.send(b"echo this datagram").unwrap();
    let mut buf = [0u8; 256];
    let n = conn.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"echo this datagram");
    let _ = conn.shutdown();
    server.kill();
}
