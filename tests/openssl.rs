//! ferrossl against OpenSSL's `s_server` and `s_client`: TLS 1.2 and 1.3, RSA and ECDSA server
//! certificates, with and without client certificates, data both ways, close_notify.

use std::time::Duration;

use ferrossl::constants::*;
use ferrossl_interop::*;
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::{Identity, TestPki};

fn client_against_s_server(
    pki: &TestPki,
    server: &Identity,
    client_cert: bool,
    version: i32,
    flag: &str,
) {
    let port = peer::free_tcp_port();
    let mut args = vec![format!("-{flag}"), "-naccept".into(), "1".into()];
    if client_cert {
        args.extend([
            "-Verify".into(),
            "2".into(),
            "-CAfile".into(),
            pki.ca_path().display().to_string(),
        ]);
    }
    let mut cmd = peer::openssl_s_server(port, server, &args);
    let mut server_proc = PeerProcess::spawn(&mut cmd).unwrap();
    server_proc.wait_for_output("ACCEPT", TIMEOUT).unwrap();

    let id = client_cert.then_some(&pki.client_ecdsa);
    let ctx = context(pki, id, VERIFY_PEER, version);
    let mut conn = connect(&ctx, port, Some("localhost")).unwrap();
    assert_eq!(conn.get_protocol_version(), version);
    assert_eq!(conn.get_verify_result(), X509_V_OK);
    conn.sendall(b"hello from ferrossl\n").unwrap();
    server_proc
        .wait_for_output("hello from ferrossl", TIMEOUT)
        .unwrap();
    server_proc.write_stdin(b"hello from openssl\n").unwrap();
    read_until(&mut conn, "hello from openssl").unwrap();
    // OpenSSL answers close_notify with its own.
    close_both_ways(&mut conn).unwrap();
    server_proc.wait_with_timeout(TIMEOUT).unwrap();
}

fn server_against_s_client(
    pki: &TestPki,
    server: &Identity,
    client_cert: bool,
    version: i32,
    flag: &str,
) {
    let mode = server_verify_mode(client_cert);
    let ctx = context(pki, Some(server), mode, version);
    let srv = TestServer::start(ctx, 1, move |conn| {
        let line = read_until(conn, "hello from openssl")?;
        conn.sendall(b"hello from ferrossl\n")?;
        let peer_cn = conn
            .get_peer_certificate()
            .and_then(|c| c.subject().get("CN").map(str::to_string));
        // Our close_notify makes s_client exit; it answers with its own first.
        let _ = conn.shutdown()?;
        Ok((line, peer_cn, conn.get_protocol_version()))
    });
    let mut args = vec![
        format!("-{flag}"),
        "-CAfile".into(),
        pki.ca_path().display().to_string(),
        "-verify_return_error".into(),
        "-servername".into(),
        "localhost".into(),
        "-quiet".into(),
    ];
    if client_cert {
        let id = &pki.client_rsa;
        args.extend([
            "-cert".into(),
            id.cert_path.display().to_string(),
            "-key".into(),
            id.key_path.display().to_string(),
        ]);
    }
    let mut cmd = peer::openssl_s_client(srv.port, &args);
    let mut client = PeerProcess::spawn(&mut cmd).unwrap();
    client.write_stdin(b"hello from openssl\n").unwrap();
    client
        .wait_for_output("hello from ferrossl", TIMEOUT)
        .unwrap();
    let (line, peer_cn, negotiated) = srv.join_one().unwrap();
    assert!(line.contains("hello from openssl"));
    assert_eq!(negotiated, version);
    assert_eq!(
        peer_cn.as_deref(),
        client_cert.then_some("ferrossl test client")
    );
    client.close_stdin();
    client.wait_with_timeout(TIMEOUT).unwrap();
}

#[test]
fn ferrossl_client_with_openssl_s_server() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (version, flag, server, client_cert) in matrix(&pki) {
        client_against_s_server(&pki, server, client_cert, version, flag);
    }
}

#[test]
fn ferrossl_server_with_openssl_s_client() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (version, flag, server, client_cert) in matrix(&pki) {
        server_against_s_client(&pki, server, client_cert, version, flag);
    }
}

#[test]
fn untrusted_openssl_server_is_refused_with_its_code() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_tcp_port();
    let mut cmd = peer::openssl_s_server(port, &pki.untrusted, &["-naccept".into(), "1".into()]);
    let mut server_proc = PeerProcess::spawn(&mut cmd).unwrap();
    server_proc.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let ctx = context(&pki, None, VERIFY_PEER, TLS1_3_VERSION);
    match connect(&ctx, port, None) {
        Err(ferrossl::Error::CertificateVerify { code, depth }) => {
            assert_eq!(
                (code, depth),
                (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0)
            )
        }
        other => panic!("expected a verify failure, got {other:?}"),
    }
    // OpenSSL reports the alert we sent.
    let _ = server_proc.wait_with_timeout(Duration::from_secs(5));
    assert!(
        server_proc.stderr().contains("unknown ca"),
        "{}",
        server_proc.stderr()
    );
}

#[test]
fn connection_connect_accept_and_sock_shutdown() {
    let pki = TestPki::generate();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sctx = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, 0);
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = ferrossl::Connection::accept(&sctx, &listener).unwrap();
        assert!(peer.ip().is_loopback());
        conn.tcp_stream()
            .unwrap()
            .set_read_timeout(Some(TIMEOUT))
            .unwrap();
        let line = read_until(&mut conn, "over tcp").unwrap();
        conn.sendall(b"ack\n").unwrap();
        let _ = conn.shutdown();
        line
    });
    let cctx = context(&pki, None, VERIFY_PEER, 0);
    let mut refused = ferrossl::Connection::new(&cctx).unwrap();
    assert_ne!(refused.connect_ex(("127.0.0.1", peer::free_tcp_port())), 0);
    let mut conn = ferrossl::Connection::new(&cctx).unwrap();
    assert!(
        conn.sock_shutdown(std::net::Shutdown::Both).is_err(),
        "a memory BIO has no socket"
    );
    assert_eq!(conn.connect_ex(("127.0.0.1", port)), 0);
    assert!(
        conn.connect(("127.0.0.1", port)).is_err(),
        "connected already"
    );
    conn.tcp_stream()
        .unwrap()
        .set_read_timeout(Some(TIMEOUT))
        .unwrap();
    conn.sendall(b"hello over tcp\n").unwrap();
    read_until(&mut conn, "ack").unwrap();
    assert!(server.join().unwrap().contains("hello over tcp"));
    conn.sock_shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(
        conn.recv(&mut buf),
        Err(ferrossl::Error::ZeroReturn)
    ));
}
