//! TLS features on the wire against OpenSSL's `s_server`/`s_client`: ALPN, SNI, session
//! resumption and tickets, exporters, OCSP stapling, key logging and client CA lists.

use std::process::Command;
use std::sync::{Arc, Mutex};

use ferrossl::constants::*;
use ferrossl::context::AlpnSelection;
use ferrossl::Context;
use ferrossl_interop::*;
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::{Identity, TestPki};

fn s_client(port: u16, pki: &TestPki, extra: &[&str]) -> PeerProcess {
    let mut args: Vec<String> = vec![
        "-CAfile".into(),
        pki.ca_path().display().to_string(),
        "-verify_return_error".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    PeerProcess::spawn(&mut peer::openssl_s_client(port, &args)).unwrap()
}

/// Closes s_client's stdin, which makes it send close_notify and exit, and returns its output.
fn finish(mut client: PeerProcess) -> String {
    client.close_stdin();
    let _ = client.wait_with_timeout(TIMEOUT);
    format!("{}{}", client.stdout(), client.stderr())
}

/// A ferrossl server session that answers the client's close and reports a value.
fn wait_close(conn: &mut ferrossl::Connection) -> Result<(), ferrossl::Error> {
    let mut buf = [0u8; 1024];
    loop {
        match conn.recv(&mut buf) {
            Ok(_) => {}
            Err(ferrossl::Error::ZeroReturn) => break,
            Err(e) => return Err(e),
        }
    }
    let _ = conn.shutdown();
    Ok(())
}

fn server_ctx(id: &Identity, pki: &TestPki) -> Context {
    context(pki, Some(id), VERIFY_NONE, 0)
}

#[test]
fn alpn_both_directions() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    // ferrossl client, OpenSSL server.
    let port = peer::free_tcp_port();
    let args = [
        "-alpn".to_string(),
        "h2,http/1.1".into(),
        "-naccept".into(),
        "1".into(),
    ];
    let mut server =
        PeerProcess::spawn(&mut peer::openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let ctx = context(&pki, None, VERIFY_PEER, 0);
    ctx.set_alpn_protos(&[b"http/1.1", b"spdy/3"]).unwrap();
    let mut conn = connect(&ctx, port, None).unwrap();
    assert_eq!(
        conn.get_alpn_proto_negotiated().as_deref(),
        Some(&b"http/1.1"[..])
    );
    close_both_ways(&mut conn).unwrap();

    // ferrossl server choosing, OpenSSL client offering.
    for (choice, expect) in [
        (AlpnSelection::Select(b"h2".to_vec()), "ALPN protocol: h2"),
        (AlpnSelection::NoOverlap, "No ALPN negotiated"),
        (AlpnSelection::Abort, "no application protocol"),
    ] {
        let ctx = server_ctx(&pki.server_ecdsa, &pki);
        ctx.set_alpn_select_callback(Arc::new(move |_| Ok(choice.clone())));
        let srv = TestServer::start(ctx, 1, wait_close);
        let out = finish(s_client(srv.port, &pki, &["-alpn", "h2,http/1.1"]));
        assert!(out.contains(expect), "{expect:?} in:\n{out}");
        let _ = srv.join();
    }
}

#[test]
fn sni_both_directions() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let ctx = server_ctx(&pki.server_ecdsa, &pki);
    let rsa_ctx = server_ctx(&pki.server_rsa, &pki);
    ctx.set_tlsext_servername_callback(Arc::new(move |hello| {
        if hello.server_name() == Some("rsa.localhost") {
            hello.set_context(&rsa_ctx);
        }
        Ok(())
    }));
    let srv = TestServer::start(ctx, 2, |conn| {
        let name = conn.get_servername();
        wait_close(conn)?;
        Ok(name)
    });
    let rsa = finish(s_client(srv.port, &pki, &["-servername", "rsa.localhost"]));
    assert!(rsa.contains("Server public key is 2048 bit"), "{rsa}");
    let ec = finish(s_client(srv.port, &pki, &["-servername", "localhost"]));
    assert!(ec.contains("Server public key is 256 bit"), "{ec}");
    let names = srv.join().unwrap();
    assert_eq!(
        names,
        vec![
            Some("rsa.localhost".to_string()),
            Some("localhost".to_string())
        ]
    );

    // ferrossl client sending SNI to OpenSSL.
    let port = peer::free_tcp_port();
    let args = [
        "-servername".to_string(),
        "ferrossl.test".into(),
        "-cert2".into(),
        pki.server_rsa.cert_path.display().to_string(),
        "-key2".into(),
        pki.server_rsa.key_path.display().to_string(),
        "-naccept".into(),
        "1".into(),
    ];
    let mut server =
        PeerProcess::spawn(&mut peer::openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let ctx = context(&pki, None, VERIFY_PEER, 0);
    let mut conn = connect(&ctx, port, Some("ferrossl.test")).unwrap();
    assert_eq!(
        conn.get_peer_certificate().unwrap().public_key_bits(),
        2048,
        "OpenSSL switched to its second certificate"
    );
    close_both_ways(&mut conn).unwrap();
}

#[test]
fn openssl_client_resumes_with_ferrossl_server() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (flag, no_ticket) in [
        ("-tls1_2", false),
        ("-tls1_2", true),
        ("-tls1_3", false),
        ("-tls1_3", true),
    ] {
        let ctx = server_ctx(&pki.server_ecdsa, &pki);
        if no_ticket {
            ctx.set_options(OP_NO_TICKET);
        }
        let srv = TestServer::start(ctx, 2, |conn| {
            // TLS 1.3 tickets go out after the handshake; send data so they are flushed.
            conn.sendall(b"hello\n")?;
            wait_close(conn)?;
            Ok(conn.session_reused())
        });
        let sess =
            std::env::temp_dir().join(format!("ferrossl-sess-{}-{}", std::process::id(), srv.port));
        let sess = sess.display().to_string();
        let mut first = s_client(srv.port, &pki, &[flag, "-sess_out", &sess]);
        // TLS 1.3 tickets arrive after the handshake, with the data.
        first.wait_for_output("hello", TIMEOUT).unwrap();
        let first = finish(first);
        assert!(first.contains("New,"), "{first}");
        if flag == "-tls1_2" {
            // TLS 1.2 tickets come inside the handshake (RFC 5077): present unless refused.
            let has_ticket = first.contains("TLS session ticket:");
            assert_eq!(
                has_ticket, !no_ticket,
                "{flag} no_ticket={no_ticket}:\n{first}"
            );
        }
        let second = finish(s_client(srv.port, &pki, &[flag, "-sess_in", &sess]));
        assert!(
            second.contains("Reused,"),
            "{flag} no_ticket={no_ticket}:\n{second}"
        );
        assert_eq!(srv.join().unwrap(), vec![false, true]);
        let _ = std::fs::remove_file(&sess);
    }
}

#[test]
fn ferrossl_client_resumes_with_openssl_server() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (version, flag) in VERSIONS {
        let port = peer::free_tcp_port();
        let args = [format!("-{flag}"), "-naccept".into(), "2".into()];
        let mut server =
            PeerProcess::spawn(&mut peer::openssl_s_server(port, &pki.server_ecdsa, &args))
                .unwrap();
        server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
        let ctx = context(&pki, None, VERIFY_PEER, version);
        let mut first = connect(&ctx, port, None).unwrap();
        first.sendall(b"one\n").unwrap();
        server.wait_for_output("one", TIMEOUT).unwrap();
        server.write_stdin(b"ticket please\n").unwrap();
        read_until(&mut first, "ticket please").unwrap();
        let session = first.get_session().expect("OpenSSL issued a session");
        close_both_ways(&mut first).unwrap();

        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut second = ferrossl::Connection::with_stream(&ctx, stream).unwrap();
        second.set_connect_state().unwrap();
        second.set_session(&session).unwrap();
        second.do_handshake().unwrap();
        assert!(second.session_reused(), "{flag}");
        second.sendall(b"two\n").unwrap();
        server.wait_for_output("two", TIMEOUT).unwrap();
        close_both_ways(&mut second).unwrap();
        server.wait_with_timeout(TIMEOUT).unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn exporter_matches_openssl_keymatexport() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (version, flag) in VERSIONS {
        let ctx = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, version);
        let srv = TestServer::start(ctx, 1, |conn| {
            let ekm = conn.export_keying_material(b"EXPERIMENTAL-ferrossl", 32, None)?;
            wait_close(conn)?;
            Ok(ekm)
        });
        let out = finish(s_client(
            srv.port,
            &pki,
            &[
                &format!("-{flag}"),
                "-keymatexport",
                "EXPERIMENTAL-ferrossl",
                "-keymatexportlen",
                "32",
            ],
        ));
        let ekm = srv.join_one().unwrap();
        assert!(
            out.contains(&format!("Keying material: {}", hex(&ekm))),
            "{flag}:\n{out}"
        );
    }
}

/// A real OCSP response for the ECDSA server certificate, signed by the test root.
fn ocsp_response(pki: &TestPki) -> Vec<u8> {
    let req = pki.write("ocsp-req.der", b"");
    let resp = pki.write("ocsp-resp.der", b"");
    let serial = Command::new("openssl")
        .args(["x509", "-serial", "-noout", "-in"])
        .arg(&pki.server_ecdsa.cert_path)
        .output()
        .unwrap();
    let serial = String::from_utf8(serial.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    let index = pki.write(
        "index.txt",
        format!("V\t391231235959Z\t\t{serial}\tunknown\t/CN=localhost\n").as_bytes(),
    );
    let run = |args: Vec<String>| {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p = |x: &std::path::Path| x.display().to_string();
    run(vec![
        "ocsp".into(),
        "-issuer".into(),
        p(&pki.ca_path()),
        "-cert".into(),
        p(&pki.server_ecdsa.cert_path),
        "-no_nonce".into(),
        "-reqout".into(),
        p(&req),
    ]);
    run(vec![
        "ocsp".into(),
        "-index".into(),
        p(&index),
        "-rsigner".into(),
        p(&pki.ca_path()),
        "-rkey".into(),
        p(&pki.ca.key_path),
        "-CA".into(),
        p(&pki.ca_path()),
        "-reqin".into(),
        p(&req),
        "-respout".into(),
        p(&resp),
        "-ndays".into(),
        "1".into(),
    ]);
    std::fs::read(resp).unwrap()
}

#[test]
fn ocsp_stapling_both_directions() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let response = ocsp_response(&pki);
    // ferrossl server staples; OpenSSL's client parses it.
    let ctx = server_ctx(&pki.server_ecdsa, &pki);
    let staple = response.clone();
    ctx.set_ocsp_server_callback(Arc::new(move |_| Ok(staple.clone())));
    let srv = TestServer::start(ctx, 1, wait_close);
    let out = finish(s_client(srv.port, &pki, &["-status"]));
    assert!(out.contains("OCSP Response Status: successful"), "{out}");
    assert!(out.contains("Cert Status: good"), "{out}");
    srv.join().unwrap();

    // OpenSSL server staples a file; the ferrossl client's callback gets those bytes.
    let port = peer::free_tcp_port();
    let file = pki.write("staple.der", &response);
    let args = [
        "-status_file".to_string(),
        file.display().to_string(),
        "-naccept".into(),
        "1".into(),
    ];
    let mut server =
        PeerProcess::spawn(&mut peer::openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let ctx = context(&pki, None, VERIFY_PEER, 0);
    let got = Arc::new(Mutex::new(None));
    let sink = got.clone();
    ctx.set_ocsp_client_callback(Arc::new(move |_, resp| {
        *sink.lock().unwrap() = Some(resp.to_vec());
        Ok(true)
    }));
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut conn = ferrossl::Connection::with_stream(&ctx, stream).unwrap();
    conn.set_connect_state().unwrap();
    conn.request_ocsp().unwrap();
    conn.do_handshake().unwrap();
    assert_eq!(got.lock().unwrap().as_deref(), Some(&response[..]));
    close_both_ways(&mut conn).unwrap();
}

#[test]
fn keylog_lines_match_openssl_keylogfile() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    for (version, flag) in VERSIONS {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let ctx = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, version);
        ctx.set_keylog_callback(Arc::new(move |_, line| {
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).into_owned())
        }));
        let srv = TestServer::start(ctx, 1, wait_close);
        let file = pki.write(&format!("keylog-{flag}.txt"), b"");
        let path = file.display().to_string();
        finish(s_client(
            srv.port,
            &pki,
            &[&format!("-{flag}"), "-keylogfile", &path],
        ));
        srv.join().unwrap();
        let theirs = std::fs::read_to_string(&file).unwrap();
        let ours = lines.lock().unwrap().clone();
        let wanted: Vec<&str> = theirs
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("EXPORTER_SECRET"))
            .collect();
        assert!(!wanted.is_empty(), "{flag}: OpenSSL logged nothing");
        for line in wanted {
            assert!(
                ours.iter().any(|o| o == line),
                "{flag}: {line} missing from {ours:?}"
            );
        }
    }
}

#[test]
fn client_ca_names_reach_openssl() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let ctx = server_ctx(&pki.server_ecdsa, &pki);
    ctx.set_verify(VERIFY_PEER, None);
    ctx.load_client_ca(pki.ca_path()).unwrap();
    let srv = TestServer::start(ctx, 1, wait_close);
    let out = finish(s_client(srv.port, &pki, &[]));
    assert!(
        out.contains("Acceptable client certificate CA names"),
        "{out}"
    );
    assert!(out.contains("ferrossl test root CA"), "{out}");
    srv.join().unwrap();
}

#[test]
fn cipher_strings_groups_and_info_callback_on_the_wire() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let ctx = context(&pki, Some(&pki.server_rsa), VERIFY_NONE, 0);
    ctx.set_cipher_list("ECDHE+CHACHA20:!ECDSA").unwrap();
    ctx.set_groups(&["P-384"]).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    ctx.set_info_callback(Arc::new(move |_, point, ret| {
        sink.lock().unwrap().push((point, ret))
    }));
    let srv = TestServer::start(ctx, 1, |conn| {
        let seen = (
            conn.get_cipher_name(),
            conn.get_group_name(),
            conn.get_state_string(),
        );
        wait_close(conn)?;
        Ok(seen)
    });
    let out = finish(s_client(srv.port, &pki, &["-tls1_2"]));
    assert!(
        out.contains("Cipher is ECDHE-RSA-CHACHA20-POLY1305"),
        "{out}"
    );
    assert!(out.contains("Server Temp Key: ECDH, secp384r1"), "{out}");
    let (cipher, group, state) = srv.join_one().unwrap();
    assert_eq!(cipher, Some("ECDHE-RSA-CHACHA20-POLY1305"));
    assert_eq!(group.as_deref(), Some("secp384r1"));
    assert_eq!(state, "SSL negotiation finished successfully");
    let events = events.lock().unwrap().clone();
    assert_eq!(events.first(), Some(&(SSL_CB_HANDSHAKE_START, 1)));
    assert!(events.contains(&(SSL_CB_HANDSHAKE_DONE, 1)));
    assert!(events.contains(&(SSL_CB_ACCEPT_EXIT, 1)));
    assert!(
        events.contains(&(SSL_CB_READ_ALERT, 1 << 8)),
        "the client's close_notify: {events:?}"
    );

    // An OpenSSL client offering only suites the server refused gets a handshake failure.
    let ctx = context(&pki, Some(&pki.server_rsa), VERIFY_NONE, 0);
    ctx.set_cipher_list("ECDHE-RSA-AES256-GCM-SHA384").unwrap();
    let srv = TestServer::start(ctx, 1, wait_close);
    let out = finish(s_client(
        srv.port,
        &pki,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
    ));
    assert!(
        out.contains("handshake failure") || out.contains("no shared cipher"),
        "{out}"
    );
    assert!(srv.join().is_err());
}

/// RFC 7507: a client's retry at TLS 1.2 marked with TLS_FALLBACK_SCSV is refused with
/// inappropriate_fallback by a server that speaks TLS 1.3, and accepted by one that does not
/// (there the retry is at the server's best). Found by sslscan's fallback check.
#[test]
fn fallback_scsv_below_tls13_is_refused() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let retry = ["-tls1_2", "-fallback_scsv"];

    let srv = TestServer::start(server_ctx(&pki.server_ecdsa, &pki), 1, wait_close);
    let out = finish(s_client(srv.port, &pki, &retry));
    assert!(out.contains("tlsv1 alert inappropriate fallback"), "{out}");
    let err = srv.join().unwrap_err();
    assert!(
        matches!(err, ferrossl::Error::InappropriateFallback),
        "{err:?}"
    );
    assert_eq!(err.openssl_errors()[0].reason, "inappropriate fallback");

    let tls12_only = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, TLS1_2_VERSION);
    let srv = TestServer::start(tls12_only, 1, wait_close);
    let out = finish(s_client(srv.port, &pki, &retry));
    assert!(out.contains("Protocol  : TLSv1.2"), "{out}");
    srv.join().unwrap();

    // Without the mark, a TLS 1.2 client is served as before.
    let srv = TestServer::start(server_ctx(&pki.server_ecdsa, &pki), 1, wait_close);
    let out = finish(s_client(srv.port, &pki, &["-tls1_2"]));
    assert!(out.contains("Protocol  : TLSv1.2"), "{out}");
    srv.join().unwrap();
}
