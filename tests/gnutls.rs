//! ferrossl against GnuTLS's `gnutls-serv` and `gnutls-cli`: TLS 1.2 and 1.3, RSA and ECDSA,
//! with and without client certificates, data both ways, close_notify.
//!
//! gnutls-serv cannot be told to bind only 127.0.0.1, so those tests run in a private network
//! namespace whose only interface is loopback.

use ferrossl::constants::*;
use ferrossl_interop::*;
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::TestPki;

/// GnuTLS priority strings that pin one version.
fn priority(version: i32) -> String {
    let v = if version == TLS1_3_VERSION {
        "VERS-TLS1.3"
    } else {
        "VERS-TLS1.2"
    };
    format!("--priority=NORMAL:-VERS-ALL:+{v}")
}

#[test]
fn ferrossl_client_with_gnutls_serv() {
    if !peer::require_tool("gnutls-serv")
        || !in_loopback_namespace("ferrossl_client_with_gnutls_serv")
    {
        return;
    }
    let pki = TestPki::generate();
    for (version, _, server, client_cert) in matrix(&pki) {
        let port = peer::free_tcp_port();
        let mut args = vec!["--echo".to_string(), priority(version)];
        if client_cert {
            args.extend([
                "--require-client-cert".into(),
                format!("--x509cafile={}", pki.ca_path().display()),
            ]);
        }
        let mut cmd = peer::gnutls_serv(port, server, &args);
        let mut server_proc = PeerProcess::spawn(&mut cmd).unwrap();
        server_proc.wait_for_tcp_port(port, TIMEOUT).unwrap();
        let id = client_cert.then_some(&pki.client_ecdsa);
        let ctx = context(&pki, id, VERIFY_PEER, version);
        let mut conn = connect(&ctx, port, Some("localhost")).unwrap();
        assert_eq!(conn.get_protocol_version(), version);
        conn.sendall(b"echo me please\n").unwrap();
        read_until(&mut conn, "echo me please").unwrap();
        close_both_ways(&mut conn).unwrap();
        server_proc.kill();
    }
}

#[test]
fn ferrossl_server_with_gnutls_cli() {
    if !peer::require_tool("gnutls-cli") {
        return;
    }
    let pki = TestPki::generate();
    for (version, _, server, client_cert) in matrix(&pki) {
        let mode = server_verify_mode(client_cert);
        let ctx = context(&pki, Some(server), mode, version);
        let srv = TestServer::start(ctx, 1, |conn| {
            read_until(conn, "hello from gnutls")?;
            conn.sendall(b"hello from ferrossl\n")?;
            let peer = conn.get_peer_certificate().is_some();
            let _ = conn.shutdown()?;
            Ok((peer, conn.get_protocol_version()))
        });
        let mut args = vec![
            priority(version),
            format!("--x509cafile={}", pki.ca_path().display()),
            "--sni-hostname=localhost".into(),
            "--verify-hostname=localhost".into(),
        ];
        if client_cert {
            let id = &pki.client_rsa;
            args.extend([
                format!("--x509certfile={}", id.cert_path.display()),
                format!("--x509keyfile={}", id.key_path.display()),
            ]);
        }
        let mut cmd = peer::gnutls_cli(srv.port, &args);
        let mut client = PeerProcess::spawn(&mut cmd).unwrap();
        client.write_stdin(b"hello from gnutls\n").unwrap();
        client
            .wait_for_output("hello from ferrossl", TIMEOUT)
            .unwrap();
        let (saw_cert, negotiated) = srv.join_one().unwrap();
        assert_eq!(saw_cert, client_cert);
        assert_eq!(negotiated, version);
        client.close_stdin();
        let _ = client.wait_with_timeout(TIMEOUT);
    }
}
