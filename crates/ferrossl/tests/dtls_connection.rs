//! pyOpenSSL's DTLS API on `Connection`: memory BIOs carrying one datagram per call,
//! `DTLSv1_listen`, the retransmission timer calls, SRTP, MTU and close.

mod common;

use std::time::Duration;

use common::*;
use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error, Method};
use ferrossl_testkit::pki::TestPki;

fn dtls_pair(pki: &TestPki) -> (Connection, Connection) {
    let sctx = Context::new(Method::Dtls);
    sctx.use_certificate_chain_file(&pki.server_ecdsa.chain_path)
        .unwrap();
    sctx.use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    sctx.set_options(OP_COOKIE_EXCHANGE);
    sctx.set_tlsext_use_srtp("SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32")
        .unwrap();
    let cctx = Context::new(Method::Dtls);
    cctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    cctx.set_verify(VERIFY_PEER, None);
    cctx.set_tlsext_use_srtp("SRTP_AES128_CM_SHA1_80").unwrap();
    pair(&cctx, &sctx)
}

/// Moves every queued datagram; returns how many.
fn move_datagrams(from: &mut Connection, to: &mut Connection) -> usize {
    let mut n = 0;
    while let Ok(d) = from.bio_read(65536) {
        to.bio_write(&d).unwrap();
        n += 1;
    }
    n
}

#[test]
fn listen_handshake_data_srtp_and_close_over_memory_datagrams() {
    let pki = TestPki::generate();
    let (mut c, mut s) = dtls_pair(&pki);
    assert!(
        matches!(s.dtls_listen(), Err(Error::WantRead)),
        "nothing yet"
    );
    let _ = c.do_handshake();
    assert!(
        c.dtls_get_timeout().is_some(),
        "the ClientHello's timer runs"
    );
    let hello = c.bio_read(65536).unwrap();
    s.bio_write(&hello).unwrap();
    assert!(matches!(s.dtls_listen(), Err(Error::WantRead)));
    let verify_request = s.bio_read(65536).unwrap();
    assert!(
        verify_request.len() <= hello.len(),
        "no amplification before the cookie"
    );
    c.bio_write(&verify_request).unwrap();
    let _ = c.do_handshake();
    move_datagrams(&mut c, &mut s);
    s.dtls_listen().unwrap();
    for _ in 0..10 {
        let _ = s.do_handshake();
        move_datagrams(&mut s, &mut c);
        let _ = c.do_handshake();
        move_datagrams(&mut c, &mut s);
    }
    assert!(c.is_handshake_done() && s.is_handshake_done());
    // DTLS_METHOD at both ends: DTLS 1.3, admitted by a HelloRetryRequest's cookie.
    assert_eq!(c.get_protocol_version_name(), "DTLSv1.3");
    assert_eq!(s.get_protocol_version(), DTLS1_3_VERSION);
    assert_eq!(
        c.get_selected_srtp_profile(),
        Some("SRTP_AES128_CM_SHA1_80")
    );
    let km = c
        .export_keying_material(b"EXTRACTOR-dtls_srtp", 60, None)
        .unwrap();
    assert_eq!(
        km,
        s.export_keying_material(b"EXTRACTOR-dtls_srtp", 60, None)
            .unwrap()
    );
    assert_eq!(c.get_cipher_name(), s.get_cipher_name());
    assert_eq!(
        c.get_peer_certificate().unwrap().subject().get("CN"),
        Some("localhost")
    );
    assert!(c.get_cleartext_mtu().unwrap() < 1200);

    // One record per send, one per recv; records sent together leave in one datagram.
    c.send(b"first").unwrap();
    c.send(b"second").unwrap();
    assert_eq!(move_datagrams(&mut c, &mut s), 1);
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first");
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"second");
    assert!(matches!(s.recv(&mut buf), Err(Error::WantRead)));

    // Garbage is dropped silently; the association lives on.
    s.bio_write(&[0x17, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 2, 1, 2])
        .unwrap();
    assert!(matches!(s.recv(&mut buf), Err(Error::WantRead)));
    s.send(b"still here").unwrap();
    move_datagrams(&mut s, &mut c);
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still here");

    assert!(!c.shutdown().unwrap());
    move_datagrams(&mut c, &mut s);
    assert!(matches!(s.recv(&mut buf), Err(Error::ZeroReturn)));
    assert!(s.shutdown().unwrap());
}

#[test]
fn a_lost_flight_is_resent_by_handle_timeout() {
    let pki = TestPki::generate();
    let (mut c, _s) = dtls_pair(&pki);
    let _ = c.do_handshake();
    let first = c.bio_read(65536).unwrap();
    assert!(!c.dtls_handle_timeout().unwrap(), "not due yet");
    let wait = c.dtls_get_timeout().unwrap();
    assert!(wait <= Duration::from_secs(1));
    std::thread::sleep(wait + Duration::from_millis(20));
    assert!(
        c.dtls_handle_timeout().unwrap(),
        "due: the hello goes out again"
    );
    let again = c.bio_read(65536).unwrap();
    // The same handshake message in a new record (RFC 6347 §4.1: a fresh sequence number).
    assert_eq!(again[13..], first[13..]);
    assert_ne!(again[3..11], first[3..11]);
}

#[test]
fn dtls_misuse_is_refused() {
    let ctx = Context::new(Method::Dtls);
    let mut c = Connection::new(&ctx).unwrap();
    assert!(c.get_cleartext_mtu().is_err());
    assert!(matches!(
        c.set_ciphertext_mtu(64),
        Err(Error::InvalidArgument(_))
    ));
    c.set_ciphertext_mtu(600).unwrap();
    assert!(c.dtls_get_timeout().is_none());
    assert!(ctx.set_tlsext_use_srtp("SRTP_NOT_A_PROFILE").is_err());
    let tls = Connection::new(&Context::new(Method::Tls)).unwrap();
    assert!(tls.dtls_get_timeout().is_none());
    let mut tls = tls;
    assert!(tls.dtls_handle_timeout().is_err());
    assert!(tls.set_ciphertext_mtu(1000).is_err());
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(Connection::with_udp_socket(&Context::new(Method::Tls), socket).is_err());
}

/// Our Finished is the peer's peer Finished, both ways, in full and abbreviated handshakes.
fn assert_finished_match(c: &Connection, s: &Connection) {
    let ours = c.get_finished().unwrap().expect("the client sent Finished");
    assert_eq!(ours.len(), 12, "verify_data is 12 bytes in DTLS 1.2");
    assert_eq!(Some(ours), s.get_peer_finished().unwrap());
    let theirs = s.get_finished().unwrap().expect("the server sent Finished");
    assert_eq!(Some(theirs.clone()), c.get_peer_finished().unwrap());
    assert_ne!(Some(theirs), c.get_finished().unwrap());
}

#[test]
fn finished_messages_are_exposed_for_dtls() {
    let pki = TestPki::generate();
    let sctx = Context::new(Method::Dtls);
    sctx.use_certificate_chain_file(&pki.server_ecdsa.chain_path)
        .unwrap();
    sctx.use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    let cctx = client_of(DTLS1_2_VERSION);
    let (mut c, mut s) = pair(&cctx, &sctx);
    assert_eq!(c.get_finished().unwrap(), None, "before the handshake");
    assert_eq!(s.get_peer_finished().unwrap(), None);
    handshake(&mut c, &mut s).unwrap();
    assert_finished_match(&c, &s);
    let first = c.get_finished().unwrap();
    let session = c.get_session().unwrap();
    let (mut c, mut s) = pair(&cctx, &sctx);
    c.set_session(&session).unwrap();
    handshake(&mut c, &mut s).unwrap();
    assert!(c.session_reused());
    assert_finished_match(&c, &s);
    assert_ne!(
        c.get_finished().unwrap(),
        first,
        "new handshake, new transcript"
    );
}

fn dtls_server_ctx(id: &ferrossl_testkit::pki::Identity) -> Context {
    let ctx = Context::new(Method::Dtls);
    ctx.use_certificate_chain_file(&id.chain_path).unwrap();
    ctx.use_privatekey_file(&id.key_path, FILETYPE_PEM).unwrap();
    ctx
}

#[test]
fn the_servername_callback_switches_dtls_servers_to_another_context() {
    use std::sync::{Arc, Mutex};
    let pki = TestPki::generate();
    let default_ctx = dtls_server_ctx(&pki.server_ecdsa);
    let rsa_ctx = dtls_server_ctx(&pki.server_rsa);
    // The strict host also asks for a client certificate.
    let strict_ctx = dtls_server_ctx(&pki.server_rsa);
    strict_ctx.set_verify(VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT, None);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let names = seen.clone();
    default_ctx.set_tlsext_servername_callback(Arc::new(move |hello| {
        names
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_string));
        match hello.server_name() {
            Some("rsa.localhost") => hello.set_context(&rsa_ctx),
            Some("strict.localhost") => hello.set_context(&strict_ctx),
            Some("nowhere.localhost") => return Err(Error::Callback("no such host".into())),
            Some("bare.localhost") => hello.set_context(&Context::new(Method::Dtls)),
            _ => {}
        }
        Ok(())
    }));
    let cctx = Context::new(Method::Dtls);
    for (name, served) in [
        (Some("rsa.localhost"), &pki.server_rsa),
        (Some("localhost"), &pki.server_ecdsa),
        (None, &pki.server_ecdsa),
    ] {
        let (mut c, mut s) = pair(&cctx, &default_ctx);
        if let Some(n) = name {
            c.set_tlsext_host_name(n).unwrap();
        }
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(c.get_peer_certificate().unwrap().to_der(), served.cert_der);
        assert_eq!(s.get_certificate().unwrap().to_der(), served.cert_der);
        assert_eq!(s.get_servername().as_deref(), name);
    }
    // The new context's verification applies to the handshake it took over.
    let (mut c, mut s) = pair(&cctx, &default_ctx);
    c.set_tlsext_host_name("strict.localhost").unwrap();
    assert!(matches!(
        handshake(&mut c, &mut s),
        Err(("server", Error::Protocol(_)))
    ));
    // A failing callback aborts the handshake with internal_error.
    let (mut c, mut s) = pair(&cctx, &default_ctx);
    c.set_tlsext_host_name("nowhere.localhost").unwrap();
    let result = handshake(&mut c, &mut s);
    assert!(
        matches!(result, Err(("server", Error::Callback(_)))),
        "{result:?}"
    );
    let err = c.do_handshake().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(ferrossl::rustls::Error::AlertReceived(
                ferrossl::rustls::AlertDescription::InternalError
            ))
        ),
        "{err:?}"
    );
    // A context without a certificate cannot serve the handshake.
    let (mut c, mut s) = pair(&cctx, &default_ctx);
    c.set_tlsext_host_name("bare.localhost").unwrap();
    let result = handshake(&mut c, &mut s);
    assert!(
        matches!(&result, Err(("server", Error::Callback(m))) if m.contains("certificate")),
        "{result:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 6);
}

/// Runs `c` and `s` until both finished the handshake.
#[test]
fn after_a_servername_switch_the_new_contexts_alpn_callback_decides() {
    use ferrossl::context::AlpnSelection;
    use std::sync::Arc;
    let pki = TestPki::generate();
    let default_ctx = dtls_server_ctx(&pki.server_ecdsa);
    default_ctx.set_alpn_select_callback(Arc::new(|_| Ok(AlpnSelection::Select(b"a".to_vec()))));
    let other_ctx = dtls_server_ctx(&pki.server_rsa);
    other_ctx.set_alpn_select_callback(Arc::new(|_| Ok(AlpnSelection::Select(b"b".to_vec()))));
    // A context without a callback picks from its own list.
    let listed_ctx = dtls_server_ctx(&pki.server_rsa);
    listed_ctx.set_alpn_protos(&[b"c"]).unwrap();
    default_ctx.set_tlsext_servername_callback(Arc::new(move |hello| {
        match hello.server_name() {
            Some("other.localhost") => hello.set_context(&other_ctx),
            Some("listed.localhost") => hello.set_context(&listed_ctx),
            _ => {}
        }
        Ok(())
    }));
    let cctx = Context::new(Method::Dtls);
    cctx.set_alpn_protos(&[b"a", b"b", b"c"]).unwrap();
    for (name, chosen) in [
        ("localhost", &b"a"[..]),
        ("other.localhost", b"b"),
        ("listed.localhost", b"c"),
    ] {
        let (mut c, mut s) = pair(&cctx, &default_ctx);
        c.set_tlsext_host_name(name).unwrap();
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(
            c.get_alpn_proto_negotiated().as_deref(),
            Some(chosen),
            "{name}"
        );
        assert_eq!(
            s.get_alpn_proto_negotiated().as_deref(),
            Some(chosen),
            "{name}"
        );
    }
}

fn handshake_datagrams(c: &mut Connection, s: &mut Connection) {
    for _ in 0..10 {
        let _ = c.do_handshake();
        move_datagrams(c, s);
        let _ = s.do_handshake();
        move_datagrams(s, c);
    }
    assert!(c.is_handshake_done() && s.is_handshake_done());
}

fn assert_alive(c: &mut Connection, s: &mut Connection, data: &[u8]) {
    c.send(data).unwrap();
    move_datagrams(c, s);
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], data);
}

#[test]
fn a_restarted_client_gets_a_new_association_after_a_cookie_exchange() {
    for version in [DTLS1_2_VERSION, DTLS1_3_VERSION] {
        a_restarted_client_gets_a_new_association_in(version);
    }
}

/// A client context held to `version`; DTLS 1.2 for what only it has (12-byte Finished
/// messages, HelloVerifyRequests).
fn client_of(version: i32) -> Context {
    let ctx = Context::new(Method::Dtls);
    ctx.set_max_proto_version(version).unwrap();
    ctx
}

fn a_restarted_client_gets_a_new_association_in(version: i32) {
    let pki = TestPki::generate();
    let sctx = dtls_server_ctx(&pki.server_ecdsa);
    let cctx = client_of(version);
    // A classic group keeps DTLS 1.3's second ClientHello in one datagram: nothing here runs
    // the timers that would resend the rest of a fragmented one.
    cctx.set_groups(&["X25519"]).unwrap();
    let (mut c, mut s) = pair(&cctx, &sctx);
    handshake_datagrams(&mut c, &mut s);
    // The client restarts: a new ClientHello in epoch 0 on the old association.
    let (mut restarted, _) = pair(&cctx, &sctx);
    let _ = restarted.do_handshake();
    move_datagrams(&mut restarted, &mut s);
    let mut buf = [0u8; 64];
    assert!(matches!(s.recv(&mut buf), Err(Error::WantRead)));
    // A stateless HelloVerifyRequest (HelloRetryRequest in DTLS 1.3) answers it; the old
    // association still works.
    assert_eq!(move_datagrams(&mut s, &mut restarted), 1);
    assert_alive(&mut c, &mut s, b"still the old one");
    // The ClientHello with the cookie ends the old association, precisely.
    let _ = restarted.do_handshake();
    move_datagrams(&mut restarted, &mut s);
    assert!(matches!(s.recv(&mut buf), Err(Error::PeerRestarted)));
    assert!(matches!(s.send(b"x"), Err(Error::PeerRestarted)));
    let hello = s
        .dtls_take_restart_hello()
        .expect("the ClientHello is kept");
    assert!(s.dtls_take_restart_hello().is_none(), "handed out once");
    // A new server connection takes it and completes the handshake.
    let mut fresh = Connection::new(&sctx).unwrap();
    fresh.set_accept_state().unwrap();
    fresh.bio_write(&hello).unwrap();
    handshake_datagrams(&mut restarted, &mut fresh);
    assert_eq!(fresh.get_protocol_version(), version);
    assert_alive(&mut restarted, &mut fresh, b"after the restart");
}

#[test]
fn spoofed_client_hellos_never_end_an_association() {
    let pki = TestPki::generate();
    let sctx = dtls_server_ctx(&pki.server_ecdsa);
    sctx.set_options(OP_COOKIE_EXCHANGE);
    let cctx = client_of(DTLS1_2_VERSION);
    let (mut c, mut s) = pair(&cctx, &sctx);
    let _ = c.do_handshake();
    let first = c.bio_read(65536).unwrap();
    s.bio_write(&first).unwrap();
    s.dtls_listen().unwrap_err();
    move_datagrams(&mut s, &mut c);
    handshake_datagrams(&mut c, &mut s);
    let (mut spoofer, _) = pair(&cctx, &sctx);
    let _ = spoofer.do_handshake();
    let hello = spoofer.bio_read(65536).unwrap();
    // Without a cookie, and with a made-up one: a HelloVerifyRequest each time, no change.
    let mut forged = hello.clone();
    // The cookie length byte follows the record header (13), the handshake header (12),
    // the version (2), the random (32) and the empty session ID (1).
    let at = 13 + 12 + 2 + 32 + 1;
    assert_eq!(forged[at], 0, "no cookie yet");
    forged.splice(at..=at, [4u8, 1, 2, 3, 4]);
    let grow = |d: &mut Vec<u8>, by: u16| {
        for (pos, width) in [(11usize, 2usize), (14, 3), (22, 3)] {
            let mut v = 0u32;
            for b in &d[pos..pos + width] {
                v = (v << 8) | u32::from(*b);
            }
            v += u32::from(by);
            for i in 0..width {
                d[pos + i] = (v >> (8 * (width - 1 - i))) as u8;
            }
        }
    };
    grow(&mut forged, 4);
    for datagram in [&hello, &forged] {
        s.bio_write(datagram).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(s.recv(&mut buf), Err(Error::WantRead)));
        let answer = s.bio_read(65536).unwrap();
        assert_eq!(answer[13], 3, "a HelloVerifyRequest");
        assert!(s.dtls_take_restart_hello().is_none());
        assert_alive(&mut c, &mut s, b"unharmed");
        assert_alive(&mut s, &mut c, b"both ways");
    }
    // A delayed copy of the hello that began the association changes nothing either.
    s.bio_write(&first).unwrap();
    assert_alive(&mut c, &mut s, b"old news");
    assert!(s.bio_read(65536).is_err(), "not even answered");
}

/// Drives non-blocking UDP connections until `done`, running their timers; bounded.
fn drive_udp(conns: &mut [&mut Connection], done: impl Fn(&[&mut Connection]) -> bool) {
    let start = std::time::Instant::now();
    while !done(conns) {
        assert!(start.elapsed() < Duration::from_secs(20), "no progress");
        for c in conns.iter_mut() {
            let _ = c.do_handshake();
            let _ = c.dtls_handle_timeout();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_restarted_client_over_udp_is_served_by_a_connection_on_a_clone_of_the_socket() {
    for version in [DTLS1_2_VERSION, DTLS1_3_VERSION] {
        a_restarted_client_over_udp_in(version);
    }
}

fn a_restarted_client_over_udp_in(version: i32) {
    use std::net::UdpSocket;
    let pki = TestPki::generate();
    let sctx = dtls_server_ctx(&pki.server_ecdsa);
    let cctx = client_of(version);
    let server_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    server_socket
        .connect(client_socket.local_addr().unwrap())
        .unwrap();
    client_socket
        .connect(server_socket.local_addr().unwrap())
        .unwrap();
    let udp = |ctx: &Context, socket: &UdpSocket, server: bool| {
        let mut conn = Connection::with_udp_socket(ctx, socket.try_clone().unwrap()).unwrap();
        conn.set_dtls_nonblocking(true).unwrap();
        match server {
            true => conn.set_accept_state().unwrap(),
            false => conn.set_connect_state().unwrap(),
        }
        conn
    };
    let mut s = udp(&sctx, &server_socket, true);
    let mut c = udp(&cctx, &client_socket, false);
    drive_udp(&mut [&mut c, &mut s], |cs| {
        cs.iter().all(|c| c.is_handshake_done())
    });
    // The client restarts from the same address.
    let mut restarted = udp(&cctx, &client_socket, false);
    let mut buf = [0u8; 64];
    let start = std::time::Instant::now();
    // The old association answers with a HelloVerifyRequest, then ends on the cookie.
    loop {
        assert!(start.elapsed() < Duration::from_secs(20), "no restart seen");
        let _ = restarted.do_handshake();
        match s.recv(&mut buf) {
            Err(Error::PeerRestarted) => break,
            Err(Error::WantRead) => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("{other:?}"),
        }
    }
    // The restarted client's datagram went to the old connection; its timer sends it again.
    let mut fresh = udp(&sctx, &server_socket, true);
    drive_udp(&mut [&mut restarted, &mut fresh], |cs| {
        cs.iter().all(|c| c.is_handshake_done())
    });
    restarted.send(b"over udp again").unwrap();
    let start = std::time::Instant::now();
    let n = loop {
        assert!(start.elapsed() < Duration::from_secs(20));
        match fresh.recv(&mut buf) {
            Ok(n) => break n,
            Err(Error::WantRead) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(&buf[..n], b"over udp again");
}
