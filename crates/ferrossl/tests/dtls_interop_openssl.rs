//! DTLS 1.2 against OpenSSL's `s_server` and `s_client` over UDP on 127.0.0.1, both
//! directions, with the cookie exchange and use_srtp, comparing the SRTP keying material
//! ("EXTRACTOR-dtls_srtp", RFC 5764 §4.2) that OpenSSL prints with ours, and session
//! resumption both ways (by ticket and by session ID).

mod dtls_common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::*;
use ferrossl::config::Role;
use ferrossl::constants::*;
use ferrossl::dtls::{cookie, DtlsEngine, DtlsParams, HmacCookies, ListenOutcome, SrtpProfile};
use ferrossl_testkit::peer::{
    free_udp_port, openssl_s_client, openssl_s_server, require_tool, PeerProcess,
};
use ferrossl_testkit::pki::TestPki;

const WAIT: Duration = Duration::from_secs(15);

fn srtp_args() -> Vec<String> {
    [
        "-dtls1_2",
        "-use_srtp",
        "SRTP_AES128_CM_SHA1_80",
        "-keymatexport",
        "EXTRACTOR-dtls_srtp",
        "-keymatexportlen",
        "60",
    ]
    .map(String::from)
    .to_vec()
}

/// Runs `engine` over the connected `socket` until `done` holds, with every wait bounded.
fn drive(
    engine: &mut DtlsEngine,
    socket: &UdpSocket,
    limit: Duration,
    mut done: impl FnMut(&mut DtlsEngine) -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(d) = engine.poll_datagram() {
            socket.send(&d).map_err(|e| format!("send: {e}"))?;
        }
        if done(engine) {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("not done within {limit:?}"));
        }
        let wait = engine
            .next_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            engine
                .handle_datagram(&buf[..n], Instant::now())
                .map_err(|e| format!("engine failed: {e}"))?;
        }
        engine
            .handle_timeout(Instant::now())
            .map_err(|e| format!("engine failed: {e}"))?;
    }
}

/// The keying material OpenSSL printed ("Keying material: <hex>").
fn printed_keying_material(output: &str) -> Vec<u8> {
    let hex = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material: "))
        .unwrap_or_else(|| panic!("no keying material in:\n{output}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn srtp_params() -> DtlsParams {
    DtlsParams {
        srtp_profiles: vec![SrtpProfile::Aes128CmSha1_80],
        ..Default::default()
    }
}

/// We connect to `openssl s_server -listen` (which insists on a cookie exchange).
fn client_against_s_server(pki: &TestPki, id: &ferrossl_testkit::pki::Identity, cipher: &str) {
    let port = free_udp_port();
    let mut extra = srtp_args();
    let chain = id.chain_path.display().to_string();
    // -cert takes the first certificate of the file; -cert_chain sends the intermediates.
    extra.extend(
        [
            "-listen",
            "-naccept",
            "1",
            "-cipher",
            cipher,
            "-cert_chain",
            &chain,
        ]
        .map(String::from),
    );
    let mut server = PeerProcess::spawn(&mut openssl_s_server(port, id, &extra)).unwrap();
    server.wait_for_output("ACCEPT", WAIT).unwrap();

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    let mut engine = DtlsEngine::new(
        client_config(pki),
        Role::Client,
        srtp_params(),
        Instant::now(),
    )
    .unwrap();
    drive(&mut engine, &socket, WAIT, |e| e.is_established())
        .map_err(|e| format!("{e}\n{}\n{}", server.stdout(), server.stderr()))
        .unwrap();
    assert_eq!(engine.cipher().unwrap().openssl_name, cipher);
    assert_eq!(engine.verify_outcome().unwrap().result, X509_V_OK);
    assert_eq!(
        engine.selected_srtp_profile(),
        Some(SrtpProfile::Aes128CmSha1_80)
    );
    server.wait_for_output("Keying material: ", WAIT).unwrap();
    let ours = engine
        .export_keying_material(b"EXTRACTOR-dtls_srtp", 60, None)
        .unwrap();
    assert_eq!(ours, printed_keying_material(&server.stdout()));

    engine.send(b"hello from ferrossl\n").unwrap();
    drive(&mut engine, &socket, WAIT, |_| true).unwrap();
    server.wait_for_output("hello from ferrossl", WAIT).unwrap();
    server.write_stdin(b"hello from openssl\n").unwrap();
    let mut got = Vec::new();
    drive(&mut engine, &socket, WAIT, |e| {
        while let Some(d) = e.recv() {
            got.extend(d);
        }
        got.ends_with(b"hello from openssl\n")
    })
    .unwrap();
    engine.close().unwrap();
    drive(&mut engine, &socket, WAIT, |_| true).unwrap();
    server.wait_with_timeout(WAIT).unwrap();
}

#[test]
fn ferrossl_client_to_openssl_server_ecdsa_with_cookie_and_srtp() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    client_against_s_server(&pki, &pki.server_ecdsa, "ECDHE-ECDSA-AES128-GCM-SHA256");
    client_against_s_server(&pki, &pki.server_ecdsa, "ECDHE-ECDSA-CHACHA20-POLY1305");
}

#[test]
fn ferrossl_client_to_openssl_server_rsa() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    client_against_s_server(&pki, &pki.server_rsa, "ECDHE-RSA-AES256-GCM-SHA384");
    client_against_s_server(&pki, &pki.server_chain, "ECDHE-ECDSA-AES256-GCM-SHA384");
}

/// OpenSSL connects to us; we answer statelessly (`DTLSv1_listen`) until the cookie checks
/// out, then hand the ClientHello to an engine with the same cookie provider.
fn s_client_against_us(
    pki: &TestPki,
    server_config: Arc<ferrossl::config::Config>,
    extra: &[&str],
) -> (DtlsEngine, PeerProcess) {
    let port = free_udp_port();
    let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let mut args = srtp_args();
    args.extend(
        [
            "-CAfile",
            &pki.ca_path().display().to_string(),
            "-verify_return_error",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut client = PeerProcess::spawn(&mut openssl_s_client(port, &args)).unwrap();

    let cookies = Arc::new(HmacCookies::new(Duration::from_secs(60)));
    let mut buf = vec![0u8; 65536];
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let start = Instant::now();
    let mut challenges = 0;
    let (first, peer): (Vec<u8>, SocketAddr) = loop {
        assert!(start.elapsed() < WAIT, "no ClientHello with a valid cookie");
        let (n, from) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("{e}\n{}", client.stderr()))
            .unwrap();
        match cookie::listen(cookies.as_ref(), Some(from), &buf[..n], Instant::now()) {
            ListenOutcome::Verified => break (buf[..n].to_vec(), from),
            ListenOutcome::HelloVerifyRequest(hvr) => {
                assert!(hvr.len() <= n, "no amplification");
                challenges += 1;
                socket.send_to(&hvr, from).unwrap();
            }
            ListenOutcome::Drop => {}
        }
    };
    assert!(
        challenges >= 1,
        "OpenSSL's first ClientHello carries no cookie"
    );
    socket.connect(peer).unwrap();
    let params = DtlsParams {
        cookies: Some(cookies),
        peer_addr: Some(peer),
        ..srtp_params()
    };
    let mut engine = DtlsEngine::new(server_config, Role::Server, params, Instant::now()).unwrap();
    engine.handle_datagram(&first, Instant::now()).unwrap();
    drive(&mut engine, &socket, WAIT, |e| e.is_established())
        .map_err(|e| format!("{e}\n{}\n{}", client.stdout(), client.stderr()))
        .unwrap();
    client.wait_for_output("Keying material: ", WAIT).unwrap();
    let ours = engine
        .export_keying_material(b"EXTRACTOR-dtls_srtp", 60, None)
        .unwrap();
    assert_eq!(ours, printed_keying_material(&client.stdout()));
    assert_eq!(
        engine.selected_srtp_profile(),
        Some(SrtpProfile::Aes128CmSha1_80)
    );

    client.write_stdin(b"hello from openssl\n").unwrap();
    let mut got = Vec::new();
    drive(&mut engine, &socket, WAIT, |e| {
        while let Some(d) = e.recv() {
            got.extend(d);
        }
        got.ends_with(b"hello from openssl\n")
    })
    .unwrap();
    engine.send(b"hello from ferrossl\n").unwrap();
    drive(&mut engine, &socket, WAIT, |_| true).unwrap();
    client.wait_for_output("hello from ferrossl", WAIT).unwrap();
    (engine, client)
}

#[test]
fn openssl_client_to_ferrossl_server_with_cookie_and_srtp() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (id, cipher) in [
        (&pki.server_ecdsa, "ECDHE-ECDSA-AES256-GCM-SHA384"),
        (&pki.server_rsa, "ECDHE-RSA-CHACHA20-POLY1305"),
    ] {
        let (mut engine, mut client) =
            s_client_against_us(&pki, server_config(id), &["-cipher", cipher]);
        assert_eq!(engine.cipher().unwrap().openssl_name, cipher);
        // s_client ends on EOF of its stdin and sends close_notify.
        client.close_stdin();
        let socket_done = client.wait_with_timeout(WAIT);
        assert!(socket_done.is_ok(), "{socket_done:?}");
        engine.close().unwrap();
    }
}

#[test]
fn openssl_client_certificate_to_ferrossl_server() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let config = server_config_verifying(
        &pki.server_ecdsa,
        &pki,
        VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
    );
    let cert = pki.client_ecdsa.chain_path.display().to_string();
    let key = pki.client_ecdsa.key_path.display().to_string();
    let (engine, _client) = s_client_against_us(&pki, config, &["-cert", &cert, "-key", &key]);
    assert_eq!(engine.verify_outcome().unwrap().result, X509_V_OK);
    assert_eq!(
        engine.peer_certificates()[0].subject().get("CN"),
        Some("ferrossl test client")
    );
}

/// Two connections to one `openssl s_server`, the second offering the first's session.
fn resume_against_s_server(pki: &TestPki, extra: &[&str]) {
    let port = free_udp_port();
    let mut args: Vec<String> = ["-dtls1_2", "-listen", "-naccept", "2"]
        .map(String::from)
        .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut server =
        PeerProcess::spawn(&mut openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    server.wait_for_output("ACCEPT", WAIT).unwrap();
    let session = ferrossl::session::Session::default();
    // s_server -listen stays connected to its first peer's address: both connections come
    // from one socket.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    for resumed in [false, true] {
        let params = DtlsParams {
            session: Some(session.clone()),
            ..Default::default()
        };
        let mut engine =
            DtlsEngine::new(client_config(pki), Role::Client, params, Instant::now()).unwrap();
        drive(&mut engine, &socket, WAIT, |e| e.is_established())
            .map_err(|e| format!("{e}\n{}\n{}", server.stdout(), server.stderr()))
            .unwrap();
        assert_eq!(engine.session_reused(), resumed, "{extra:?}");
        assert!(session.is_resumable());
        engine.send(b"ping\n").unwrap();
        engine.close().unwrap();
        drive(&mut engine, &socket, WAIT, |_| true).unwrap();
    }
    server.wait_with_timeout(WAIT).unwrap();
}

#[test]
fn ferrossl_client_resumes_with_openssl_server_by_ticket_and_by_id() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    resume_against_s_server(&pki, &[]);
    resume_against_s_server(&pki, &["-no_ticket"]);
}

#[test]
fn openssl_client_resumes_with_ferrossl_server() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    // The PKI's own temporary folder holds the session file.
    let sess = pki
        .ca_path()
        .with_file_name("dtls-session.pem")
        .display()
        .to_string();
    let config = server_config(&pki.server_ecdsa);
    // By ticket, then (the client refusing tickets) by session ID from our cache.
    for tickets in [&[][..], &["-no_ticket"][..]] {
        for (flag, resumed) in [("-sess_out", false), ("-sess_in", true)] {
            let mut args = vec![flag, &sess];
            args.extend_from_slice(tickets);
            let (engine, mut client) = s_client_against_us(&pki, config.clone(), &args);
            assert_eq!(engine.session_reused(), resumed, "{tickets:?}");
            client.close_stdin();
            client.wait_with_timeout(WAIT).unwrap();
            let reused = client.stdout().lines().any(|l| l.starts_with("Reused,"));
            assert_eq!(reused, resumed, "{tickets:?}: {}", client.stdout());
        }
    }
}
