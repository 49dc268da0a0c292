//! The `ferrossl` command against OpenSSL, curl and ferrossl's own BIO client.

use std::process::Command;
use std::time::Duration;

use ferrossl::bio::{Bio, BioMethod, Ssl, BIO_CLOSE};
use ferrossl::{Context, Method};
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::{Identity, TestPki};

const TIMEOUT: Duration = Duration::from_secs(10);
const FERROSSL: &str = env!("CARGO_BIN_EXE_ferrossl");

fn ferrossl(args: &[&str]) -> Command {
    let mut cmd = Command::new(FERROSSL);
    cmd.args(args);
    cmd
}

/// `-cert` and `-key` values for `id`.
fn cert_and_key(id: &Identity) -> (String, String) {
    let path = |p: &std::path::Path| p.display().to_string();
    (path(&id.chain_path), path(&id.key_path))
}

fn s_server(port: u16, extra: &[&str]) -> PeerProcess {
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec!["s_server", "-accept", &accept];
    args.extend(extra);
    let mut server = PeerProcess::spawn(&mut ferrossl(&args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    server
}

#[test]
fn demo_runs_both_protocols() {
    let out = ferrossl(&["demo"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("TLSv1.3") && text.contains("TLSv1.2"),
        "{text}"
    );
    assert!(text.contains("verify result  0 (ok)"), "{text}");
}

#[test]
fn bad_input_exits_1_with_a_message() {
    for args in [
        vec!["s_server", "-bogus"],
        vec!["s_server"],
        vec![
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-cert",
            "/no/such/file.pem",
        ],
        vec!["s_server", "-accept", "127.0.0.1:0", "-naccept", "two"],
        vec!["s_client", "-connect"],
        vec!["s_client", "-connect", "127.0.0.1:notaport"],
        vec!["nonsense"],
        vec![],
    ] {
        let out = ferrossl(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.is_empty() && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    let help = ferrossl(&["s_client", "-help"]).output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("-connect HOST:PORT"));
}

#[test]
fn ferrossl_server_with_openssl_client() {
    if !peer::require_tool("openssl") {
        return;
    }
    let port = peer::free_tcp_port();
    let mut server = s_server(port, &["-naccept", "1"]);
    // Not -quiet: that implies -ign_eof, and the client must close at stdin's end.
    let mut client = PeerProcess::spawn(&mut peer::openssl_s_client(port, &[])).unwrap();
    client.write_stdin(b"hello from openssl\n").unwrap();
    server
        .wait_for_output("hello from openssl", TIMEOUT)
        .unwrap();
    server.write_stdin(b"hello from ferrossl\n").unwrap();
    client
        .wait_for_output("hello from ferrossl", TIMEOUT)
        .unwrap();
    client.close_stdin();
    let _ = client.wait_with_timeout(TIMEOUT);
    server.wait_with_timeout(TIMEOUT).unwrap();
    assert!(
        server.stderr().contains("SHA-256 fingerprint"),
        "{}",
        server.stderr()
    );
    assert!(server.stderr().contains("DONE"), "{}", server.stderr());
}

/// RFC 7301 §3.2: `-alpn` with no overlap is fatal (no_application_protocol, as from
/// `openssl s_server`); a client offering no ALPN at all is served without it.
#[test]
fn alpn_without_overlap_is_fatal_but_no_offer_is_fine() {
    if !peer::require_tool("openssl") {
        return;
    }
    let port = peer::free_tcp_port();
    let mut server = s_server(port, &["-alpn", "h2", "-naccept", "2"]);
    let offer = ["-alpn".to_string(), "http/1.1".to_string()];
    let mut refused = PeerProcess::spawn(&mut peer::openssl_s_client(port, &offer)).unwrap();
    refused.close_stdin();
    let _ = refused.wait_with_timeout(TIMEOUT);
    let said = refused.stdout() + &refused.stderr();
    assert!(said.contains("no application protocol"), "{said}");
    let mut plain = PeerProcess::spawn(&mut peer::openssl_s_client(port, &[])).unwrap();
    plain.write_stdin(b"no alpn here\n").unwrap();
    server.wait_for_output("no alpn here", TIMEOUT).unwrap();
    plain.close_stdin();
    let _ = plain.wait_with_timeout(TIMEOUT);
    assert!(
        plain.stdout().contains("No ALPN negotiated"),
        "{}",
        plain.stdout()
    );
    server.wait_with_timeout(TIMEOUT).unwrap();
}

/// `s_client -verify_hostname`, `-verify_ip` and `-CApath`, as openssl's: the certificate
/// must match the name or address; a hashed CA directory is a trust store.
#[test]
fn s_client_checks_the_name_or_address_it_is_told() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_tcp_port();
    let (cert, key) = cert_and_key(&pki.server_rsa);
    let mut server = s_server(port, &["-cert", &cert, "-key", &key, "-naccept", "7"]);
    let ca = pki.ca_path().display().to_string();
    // A hashed directory, as `openssl rehash` makes it.
    let hash = Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in", &ca])
        .output()
        .unwrap();
    let capath = pki.ca_path().parent().unwrap().join("capath");
    std::fs::create_dir_all(&capath).unwrap();
    let hashed = format!("{}.0", String::from_utf8_lossy(&hash.stdout).trim());
    std::fs::copy(pki.ca_path(), capath.join(hashed)).unwrap();
    let capath = capath.display().to_string();
    let connect = format!("127.0.0.1:{port}");
    let client = |extra: &[&str]| {
        let mut args = vec!["s_client", "-connect", &connect, "-verify_return_error"];
        args.extend(extra);
        let out = ferrossl(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (extra, verdict) in [
        (
            vec!["-CAfile", &ca, "-verify_hostname", "localhost"],
            "Verify return code: 0 (ok)",
        ),
        (
            vec!["-CAfile", &ca, "-verify_hostname", "other.example"],
            "hostname mismatch",
        ),
        (
            vec!["-CAfile", &ca, "-verify_ip", "127.0.0.1"],
            "Verify return code: 0 (ok)",
        ),
        (
            vec!["-CAfile", &ca, "-verify_ip", "192.0.2.7"],
            "IP address mismatch",
        ),
        (
            vec!["-CApath", &capath, "-verify_hostname", "localhost"],
            "Verify return code: 0 (ok)",
        ),
        (
            vec!["-verify_hostname", "localhost"],
            "unable to get local issuer certificate",
        ),
    ] {
        let (code, said) = client(&extra);
        assert!(said.contains(verdict), "{extra:?}: {said}");
        assert_eq!(
            code,
            Some(i32::from(!verdict.contains("(ok)"))),
            "{extra:?}: {said}"
        );
    }
    // Bad input is refused before connecting (the server's seventh connection comes last).
    for bad in [
        vec!["-verify_ip", "not-an-address"],
        vec!["-verify_hostname", "127.0.0.1"],
        vec!["-verify_hostname", "a", "-verify_ip", "127.0.0.1"],
    ] {
        let (code, said) = client(&bad);
        assert_eq!(code, Some(1), "{bad:?}");
        assert!(said.contains("-verify_"), "{bad:?}: {said}");
    }
    let _ = client(&["-CAfile", &ca]);
    server.wait_with_timeout(TIMEOUT).unwrap();
}

/// `-serverpref`: the server's cipher order decides (TLS 1.3 and 1.2), not the client's.
#[test]
fn serverpref_puts_the_servers_cipher_order_first() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let (cert, key) = cert_and_key(&pki.server_ecdsa);
    let ours_13 = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    let theirs_13 = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
    let ours_12 = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256";
    let theirs_12 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305";
    for (serverpref, expected_13, expected_12) in [
        (
            false,
            "TLS_AES_128_GCM_SHA256",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            true,
            "TLS_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ),
    ] {
        let port = peer::free_tcp_port();
        let mut args = vec!["-cert", &cert, "-key", &key, "-naccept", "2"];
        args.extend(["-ciphersuites", ours_13, "-cipher", ours_12]);
        if serverpref {
            args.push("-serverpref");
        }
        let mut server = s_server(port, &args);
        for (offer, expected) in [
            (vec!["-ciphersuites", theirs_13], expected_13),
            (vec!["-tls1_2", "-cipher", theirs_12], expected_12),
        ] {
            let offer: Vec<String> = offer.into_iter().map(String::from).collect();
            let out = peer::openssl_s_client(port, &offer)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                said.contains(&format!("Cipher is {expected}")),
                "serverpref {serverpref}: {said}"
            );
        }
        server.wait_with_timeout(TIMEOUT).unwrap();
    }
}

/// Stalled clients (half a ClientHello, then nothing) hold no one else up, and their
/// handshakes end at the deadline.
#[test]
fn stalled_clients_neither_block_others_nor_stay() {
    if !peer::require_tool("openssl") {
        return;
    }
    let port = peer::free_tcp_port();
    let mut server = s_server(port, &["-handshake_timeout", "1", "-naccept", "3"]);
    let stalled: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            std::io::Write::write_all(&mut s, &[0x16, 0x03, 0x01, 0x00]).unwrap();
            s
        })
        .collect();
    let started = std::time::Instant::now();
    let mut client = PeerProcess::spawn(&mut peer::openssl_s_client(port, &[])).unwrap();
    client.write_stdin(b"not held up\n").unwrap();
    server.wait_for_output("not held up", TIMEOUT).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    client.close_stdin();
    let _ = client.wait_with_timeout(TIMEOUT);
    server.wait_with_timeout(TIMEOUT).unwrap();
    let said = server.stderr();
    assert_eq!(said.matches("not done within 1 s").count(), 2, "{said}");
    drop(stalled);
}

/// A server that never answers: the client's handshake ends at its deadline.
#[test]
fn s_client_handshake_has_a_deadline() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let connect = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let out = ferrossl(&["s_client", "-connect", &connect, "-handshake_timeout", "1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not done within 1 s"), "{said}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// RFC 8446 §4.1.1: a TLS 1.3 client whose signature_algorithms the server's key cannot
/// meet (ECDSA only, an RSA server) gets handshake_failure instead of a ServerHello.
#[test]
fn tls13_certificate_must_suit_the_clients_signature_algorithms() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_tcp_port();
    let (cert, key) = cert_and_key(&pki.server_rsa);
    let mut server = s_server(port, &["-cert", &cert, "-key", &key, "-naccept", "2"]);
    let run = |sigalgs: &str| {
        let args: Vec<String> = ["-tls1_3", "-msg", "-sigalgs", sigalgs]
            .into_iter()
            .map(String::from)
            .collect();
        let out = peer::openssl_s_client(port, &args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let refused = run("ECDSA+SHA256:ECDSA+SHA384");
    assert!(refused.contains("handshake failure"), "{refused}");
    assert!(!refused.contains("ServerHello"), "{refused}");
    let served = run("RSA-PSS+SHA256");
    assert!(served.contains("Cipher is TLS_"), "{served}");
    server.wait_with_timeout(TIMEOUT).unwrap();
    assert!(
        server.stderr().contains("NoSignatureSchemesInCommon"),
        "{}",
        server.stderr()
    );
}

/// Bad limits are refused with a message.
#[test]
fn s_server_refuses_bad_limits() {
    for bad in [
        ["-handshake_timeout", "0"],
        ["-handshake_timeout", "soon"],
        ["-idle_timeout", "-1"],
        ["-max_conns", "0"],
    ] {
        let mut args = vec!["s_server", "-accept", "127.0.0.1:0"];
        args.extend(bad);
        let out = ferrossl(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?}");
    }
}

#[test]
fn ferrossl_client_with_openssl_server() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (flag, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let port = peer::free_tcp_port();
        let mut server = PeerProcess::spawn(&mut peer::openssl_s_server(
            port,
            &pki.server_rsa,
            &["-naccept".into(), "1".into(), "-alpn".into(), "h2".into()],
        ))
        .unwrap();
        server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
        let connect = format!("127.0.0.1:{port}");
        let ca = pki.ca_path().display().to_string();
        let keylog = pki.write(&format!("keylog{flag}"), b"");
        let mut cmd = ferrossl(&[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            &ca,
            "-verify_return_error",
            flag,
            "-alpn",
            "h2,http/1.1",
            "-servername",
            "localhost",
        ]);
        cmd.env("SSLKEYLOGFILE", &keylog);
        let mut client = PeerProcess::spawn(&mut cmd).unwrap();
        client
            .wait_for_output("Verify return code: 0 (ok)", TIMEOUT)
            .unwrap();
        client.write_stdin(b"hello from ferrossl\n").unwrap();
        server
            .wait_for_output("hello from ferrossl", TIMEOUT)
            .unwrap();
        server.write_stdin(b"hello from openssl\n").unwrap();
        client
            .wait_for_output("hello from openssl", TIMEOUT)
            .unwrap();
        client.close_stdin();
        client.wait_with_timeout(TIMEOUT).unwrap();
        let report = client.stderr();
        assert!(report.contains(&format!("Protocol: {name}")), "{report}");
        assert!(report.contains("ALPN protocol: h2"), "{report}");
        assert!(
            report.contains("Peer subject: O=ferrossl tests, CN=localhost"),
            "{report}"
        );
        assert!(
            !std::fs::read_to_string(&keylog).unwrap().is_empty(),
            "SSLKEYLOGFILE honoured"
        );
    }
}

#[test]
fn www_answers_curl_and_a_bio_chain() {
    let port = peer::free_tcp_port();
    let mut server = s_server(port, &["-www", "-naccept", "2"]);
    if peer::require_tool("curl") {
        let out = Command::new("curl")
            .args(["-sSk", "--max-time", "10"])
            .arg(format!("https://127.0.0.1:{port}/"))
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout);
        assert!(
            page.contains("ferrossl s_server") && page.contains("Protocol: TLSv1.3"),
            "{page}"
        );
    } else {
        // Keep -naccept 2 satisfied.
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    }
    // The BIO family's HTTPS client, against our own server.
    let ssl = Ssl::new(&Context::new(Method::TlsClient)).unwrap();
    ssl.set_connect_state().unwrap();
    let filter = Bio::new(BioMethod::Ssl);
    filter.set_ssl(&ssl, BIO_CLOSE).unwrap();
    let connect = Bio::new(BioMethod::Connect);
    connect
        .set_conn_hostname(&format!("127.0.0.1:{port}"))
        .unwrap();
    let chain = filter.push(&connect).unwrap();
    chain.write(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut page = Vec::new();
    loop {
        match chain.read(-1) {
            Ok(d) if d.is_empty() => break,
            Ok(d) => page.extend(d),
            Err(e) => panic!("{e}"),
        }
    }
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.starts_with("HTTP/1.0 200 ok") && page.contains("ferrossl s_server"),
        "{page}"
    );
    server.wait_with_timeout(TIMEOUT).unwrap();
}
