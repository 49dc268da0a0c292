//! `ferrossl s_server -dtls` and `s_client -dtls` against `openssl s_server -dtls1_2`,
//! `openssl s_client -dtls1_2`, `gnutls-serv --udp` and each other, on 127.0.0.1: data both
//! ways, the DTLS-SRTP keying material both ends print, client certificates and ALPN. `-dtls`
//! negotiates DTLS 1.3 between our own ends and falls back to 1.2 against OpenSSL 3.0 and
//! GnuTLS, which have no 1.3.

use std::process::Command;
use std::time::Duration;

use ferrossl_testkit::peer::{self, in_loopback_namespace, PeerProcess};
use ferrossl_testkit::pki::TestPki;

const TIMEOUT: Duration = Duration::from_secs(15);
const FERROSSL: &str = env!("CARGO_BIN_EXE_ferrossl");
const SRTP: &str = "SRTP_AES128_CM_SHA1_80";
const EXPORT: [&str; 4] = [
    "-keymatexport",
    "EXTRACTOR-dtls_srtp",
    "-keymatexportlen",
    "60",
];

fn ferrossl(args: &[&str]) -> Command {
    let mut cmd = Command::new(FERROSSL);
    cmd.args(args);
    cmd
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The hex keying material a process printed ("Keying material: HEX").
fn keying_material(process: &mut PeerProcess) -> String {
    process
        .wait_for_output("Keying material: ", TIMEOUT)
        .unwrap();
    let out = process.stdout();
    let hex = out
        .lines()
        .find_map(|l| l.split("Keying material: ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(hex.len(), 120, "60 bytes: {hex}");
    hex
}

fn ferrossl_server(port: u16, extra: &[&str]) -> PeerProcess {
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec!["s_server", "-dtls", "-accept", &accept];
    args.extend(extra);
    let mut server = PeerProcess::spawn(&mut ferrossl(&args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    server
}

#[test]
fn openssl_client_with_ferrossl_dtls_server() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_udp_port();
    let (cert, key) = (
        pki.server_rsa.chain_path.display().to_string(),
        pki.server_rsa.key_path.display().to_string(),
    );
    let mut args = vec![
        "-cert",
        &cert,
        "-key",
        &key,
        "-use_srtp",
        SRTP,
        "-naccept",
        "1",
    ];
    args.extend(EXPORT);
    let mut server = ferrossl_server(port, &args);

    let ca = pki.ca_path().display().to_string();
    let mut client_args = strings(&[
        "-dtls1_2",
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-use_srtp",
        SRTP,
    ]);
    client_args.extend(strings(&EXPORT));
    let mut client = PeerProcess::spawn(&mut peer::openssl_s_client(port, &client_args)).unwrap();
    assert_eq!(keying_material(&mut client), keying_material(&mut server));
    client.write_stdin(b"ping over dtls\n").unwrap();
    server.wait_for_output("ping over dtls", TIMEOUT).unwrap();
    // The echo comes back to openssl's stdout (after its own line, printed by the server).
    client.wait_for_output("ping over dtls", TIMEOUT).unwrap();
    client.close_stdin();
    server.wait_for_output("DONE", TIMEOUT).unwrap();
    assert!(server.wait_with_timeout(TIMEOUT).unwrap().success());
    client.kill();
}

#[test]
fn ferrossl_dtls_client_with_openssl_server_and_a_client_certificate() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_udp_port();
    let ca = pki.ca_path().display().to_string();
    let mut server_args = strings(&[
        "-dtls1_2",
        "-listen",
        "-naccept",
        "1",
        "-use_srtp",
        SRTP,
        "-Verify",
        "1",
        "-CAfile",
        &ca,
    ]);
    server_args.extend(strings(&EXPORT));
    let mut server = PeerProcess::spawn(&mut peer::openssl_s_server(
        port,
        &pki.server_ecdsa,
        &server_args,
    ))
    .unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();

    let (cert, key) = (
        pki.client_ecdsa.chain_path.display().to_string(),
        pki.client_ecdsa.key_path.display().to_string(),
    );
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-dtls",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-cert",
        &cert,
        "-key",
        &key,
        "-use_srtp",
        SRTP,
    ];
    args.extend(EXPORT);
    let mut client = PeerProcess::spawn(&mut ferrossl(&args)).unwrap();
    // -dtls offers 1.3 and 1.2 in one ClientHello; OpenSSL 3.0 answers (after its
    // HelloVerifyRequest) with 1.2, and the client goes on from the same hello.
    client
        .wait_for_output("Protocol: DTLSv1.2", TIMEOUT)
        .unwrap();
    assert_eq!(keying_material(&mut client), keying_material(&mut server));
    client
        .wait_for_output("Verify return code: 0", TIMEOUT)
        .unwrap();
    client.write_stdin(b"hello from ferrossl\n").unwrap();
    server
        .wait_for_output("hello from ferrossl", TIMEOUT)
        .unwrap();
    server.write_stdin(b"hello back\n").unwrap();
    client.wait_for_output("hello back", TIMEOUT).unwrap();
    client.close_stdin();
    assert!(client.wait_with_timeout(TIMEOUT).unwrap().success());
    server.kill();
}

/// gnutls-serv binds every address: this runs in a private network namespace.
#[test]
fn ferrossl_dtls_client_with_gnutls_server() {
    if !peer::require_tool("gnutls-serv")
        || !in_loopback_namespace("ferrossl_dtls_client_with_gnutls_server")
    {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_udp_port();
    let args = strings(&[
        "--udp",
        "--echo",
        "--srtp-profiles=SRTP_AES128_CM_HMAC_SHA1_80",
    ]);
    let mut server =
        PeerProcess::spawn(&mut peer::gnutls_serv(port, &pki.server_ecdsa, &args)).unwrap();
    server
        .wait_for_output("listening on IPv4", TIMEOUT)
        .unwrap();
    let ca = pki.ca_path().display().to_string();
    let connect = format!("127.0.0.1:{port}");
    let mut client = PeerProcess::spawn(&mut ferrossl(&[
        "s_client",
        "-dtls",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-CAfile",
        &ca,
        "-verify_return_error",
        "-use_srtp",
        SRTP,
    ]))
    .unwrap();
    // GnuTLS has no DTLS 1.3: the client falls back.
    client
        .wait_for_output("Protocol: DTLSv1.2", TIMEOUT)
        .unwrap();
    client
        .wait_for_output("SRTP profile: SRTP_AES128_CM_SHA1_80", TIMEOUT)
        .unwrap();
    client.write_stdin(b"echo me, gnutls\n").unwrap();
    client.wait_for_output("echo me, gnutls", TIMEOUT).unwrap();
    client.close_stdin();
    assert!(client.wait_with_timeout(TIMEOUT).unwrap().success());
    server.kill();
}

#[test]
fn ferrossl_dtls_ends_with_alpn_and_a_required_client_certificate() {
    let pki = TestPki::generate();
    let port = peer::free_udp_port();
    let ca = pki.ca_path().display().to_string();
    let (cert, key) = (
        pki.server_ecdsa.chain_path.display().to_string(),
        pki.server_ecdsa.key_path.display().to_string(),
    );
    let mut server = ferrossl_server(
        port,
        &[
            "-cert", &cert, "-key", &key, "-CAfile", &ca, "-Verify", "1", "-alpn", "x,echo",
            "-naccept", "2",
        ],
    );
    let connect = format!("127.0.0.1:{port}");
    let client_cmd = |extra: &[&str]| {
        let mut args = vec![
            "s_client",
            "-dtls",
            "-connect",
            &connect,
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-alpn",
            "echo",
        ];
        args.extend(extra);
        ferrossl(&args)
    };
    // Without a certificate the server refuses the association. In DTLS 1.3 the client's
    // handshake ends before the server's verdict, which comes as a certificate_required
    // alert (RFC 8446 §4.4.2.4).
    let out = client_cmd(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Protocol: DTLSv1.3"), "{stderr}");
    assert!(
        stderr.contains("the server requires a client certificate"),
        "{stderr}"
    );

    let (ccert, ckey) = (
        pki.client_rsa.chain_path.display().to_string(),
        pki.client_rsa.key_path.display().to_string(),
    );
    let mut client =
        PeerProcess::spawn(&mut client_cmd(&["-cert", &ccert, "-key", &ckey])).unwrap();
    client
        .wait_for_output("ALPN protocol: echo", TIMEOUT)
        .unwrap();
    client.write_stdin(b"one line\n").unwrap();
    client.wait_for_output("one line", TIMEOUT).unwrap();
    client.close_stdin();
    assert!(client.wait_with_timeout(TIMEOUT).unwrap().success());
    server.wait_for_output("DONE", TIMEOUT).unwrap();
    assert!(server.wait_with_timeout(TIMEOUT).unwrap().success());
}

#[test]
fn dtls_flags_that_do_not_fit_exit_1() {
    for args in [
        vec!["s_server", "-accept", "127.0.0.1:0", "-use_srtp", SRTP],
        vec!["s_server", "-dtls", "-accept", "127.0.0.1:0", "-tls1_3"],
        vec![
            "s_server",
            "-dtls",
            "-accept",
            "127.0.0.1:0",
            "-use_srtp",
            "NO_SUCH",
        ],
        vec!["s_client", "-dtls", "-connect", "127.0.0.1:1", "-tls1_2"],
        vec!["s_client", "-dtls", "-connect", "no.such.host.invalid:4433"],
    ] {
        let out = ferrossl(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.is_empty() && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
