//! Two connections pumped through their memory BIOs: handshakes, bulk data, the want/EOF/close
//! outcomes, and what each end reports.

mod common;

use common::*;
use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error};
use ferrossl_testkit::pki::TestPki;

fn versioned(ctx: &Context, version: i32) -> &Context {
    ctx.set_min_proto_version(version).unwrap();
    ctx.set_max_proto_version(version).unwrap();
    ctx
}

#[test]
fn handshake_and_one_mib_both_ways_each_version_and_key_type() {
    let pki = TestPki::generate();
    for id in [&pki.server_ecdsa, &pki.server_rsa, &pki.server_ed25519] {
        for (version, name) in [(TLS1_2_VERSION, "TLSv1.2"), (TLS1_3_VERSION, "TLSv1.3")] {
            let sctx = server_ctx(id);
            let cctx = client_ctx(&pki);
            let (mut c, mut s) = pair(versioned(&cctx, version), &sctx);
            handshake(&mut c, &mut s).unwrap();
            assert_eq!(c.get_protocol_version_name(), name);
            assert_eq!(s.get_protocol_version(), version);
            assert_eq!(c.get_cipher_name(), s.get_cipher_name());
            assert_eq!(c.get_cipher_version(), Some(name));
            assert!(c.get_cipher_bits().unwrap() >= 128);
            assert_eq!(c.get_verify_result(), X509_V_OK);
            assert_eq!(
                c.get_peer_certificate().unwrap().subject().get("CN"),
                Some("localhost")
            );
            // The randoms come off the wire and must agree on both ends.
            assert_eq!(c.client_random().unwrap(), s.client_random().unwrap());
            assert_eq!(c.server_random().unwrap(), s.server_random().unwrap());
            assert_ne!(c.client_random(), c.server_random());
            if version == TLS1_2_VERSION {
                assert_eq!(c.master_key().unwrap().len(), 48);
                assert_eq!(c.master_key(), s.master_key());
            } else {
                assert!(c.master_key().is_none(), "TLS 1.3 has no master secret");
            }
            let ekm = c
                .export_keying_material(b"EXPORTER-test", 32, None)
                .unwrap();
            assert_eq!(
                ekm,
                s.export_keying_material(b"EXPORTER-test", 32, None)
                    .unwrap()
            );

            let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
            assert_eq!(send_through(&mut c, &mut s, &data), data);
            assert_eq!(send_through(&mut s, &mut c, &data), data);
        }
    }
}

#[test]
fn want_read_exactly_when_ciphertext_is_missing() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    // Server with nothing received: wants to read.
    assert!(matches!(s.do_handshake(), Err(Error::WantRead)));
    assert!(s.want_read());
    // Client wrote its hello and now waits for the server.
    assert!(matches!(c.do_handshake(), Err(Error::WantRead)));
    let hello = c.bio_read(65536).unwrap();
    // Nothing more to read from the client's BIO.
    assert!(matches!(c.bio_read(65536), Err(Error::WantRead)));
    // Half a ClientHello is not enough.
    s.bio_write(&hello[..hello.len() / 2]).unwrap();
    assert!(matches!(s.do_handshake(), Err(Error::WantRead)));
    s.bio_write(&hello[hello.len() / 2..]).unwrap();
    assert!(matches!(s.do_handshake(), Err(Error::WantRead)));
    assert!(s.bio_pending() > 0, "the server's flight is waiting");
    handshake(&mut c, &mut s).unwrap();
    // Handshake done, no application data yet.
    let mut buf = [0u8; 16];
    assert!(matches!(s.recv(&mut buf), Err(Error::WantRead)));
    c.send(b"ping").unwrap();
    let record = c.bio_read(65536).unwrap();
    s.bio_write(&record[..3]).unwrap();
    assert!(matches!(s.recv(&mut buf), Err(Error::WantRead)));
    s.bio_write(&record[3..]).unwrap();
    assert_eq!(s.recv(&mut buf).unwrap(), 4);
    assert!(!s.want_read());
}

#[test]
fn clean_close_notify_both_ways() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_rsa));
    handshake(&mut c, &mut s).unwrap();
    assert!(
        !c.shutdown().unwrap(),
        "first shutdown only sends close_notify"
    );
    assert_eq!(c.get_shutdown(), SSL_SENT_SHUTDOWN);
    transfer(&mut c, &mut s);
    let mut buf = [0u8; 8];
    assert!(matches!(s.recv(&mut buf), Err(Error::ZeroReturn)));
    assert_eq!(s.get_shutdown(), SSL_RECEIVED_SHUTDOWN);
    assert!(
        s.shutdown().unwrap(),
        "peer already closed: shutdown completes"
    );
    assert!(matches!(c.shutdown(), Err(Error::WantRead)));
    transfer(&mut s, &mut c);
    assert!(c.shutdown().unwrap());
    assert_eq!(c.get_shutdown(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    assert!(c.send(b"late").is_err(), "no sending after close_notify");
}

#[test]
fn truncated_stream_is_an_unexpected_eof() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    c.send(b"partial").unwrap();
    transfer(&mut c, &mut s);
    s.bio_shutdown().unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(s.recv(&mut buf).unwrap(), 7);
    match s.recv(&mut buf) {
        Err(Error::SysCall { errno: -1, message }) => assert_eq!(message, "Unexpected EOF"),
        other => panic!("expected SysCall(-1, Unexpected EOF), got {other:?}"),
    }
    // During the handshake too.
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    let _ = c.do_handshake();
    transfer(&mut c, &mut s);
    let _ = s.do_handshake();
    c.bio_shutdown().unwrap();
    assert!(matches!(
        c.do_handshake(),
        Err(Error::SysCall { errno: -1, .. })
    ));
}

#[test]
fn peek_and_pending() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    c.send(b"hello world").unwrap();
    transfer(&mut c, &mut s);
    let mut buf = [0u8; 5];
    assert_eq!(s.recv_peek(&mut buf).unwrap(), 5);
    assert_eq!(&buf, b"hello");
    assert!(s.pending() >= 5);
    let mut all = [0u8; 32];
    let n = s.recv(&mut all).unwrap();
    let mut got = all[..n].to_vec();
    if n < 11 {
        let m = s.recv(&mut all).unwrap();
        got.extend_from_slice(&all[..m]);
    }
    assert_eq!(got, b"hello world");
    assert_eq!(s.pending(), 0);
}

#[test]
fn zero_length_and_huge_writes() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.send(b"").unwrap(), 0);
    assert!(
        matches!(c.bio_read(100), Err(Error::WantRead)),
        "nothing sent for 0 bytes"
    );
    let huge = vec![0x5a; 16 << 20];
    assert_eq!(c.send(&huge).unwrap(), huge.len());
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 16];
    while received < huge.len() {
        transfer(&mut c, &mut s);
        received += s.recv(&mut buf).unwrap();
    }
    assert_eq!(received, huge.len());
}

#[test]
fn garbage_ciphertext_is_a_clear_error() {
    let pki = TestPki::generate();
    let sctx = server_ctx(&pki.server_ecdsa);
    for garbage in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0x16, 0x03, 0x01, 0xff, 0xff],
        vec![0u8; 1000],
        (0..=255u8).cycle().take(70000).collect(),
    ] {
        let mut s = Connection::new(&sctx).unwrap();
        s.set_accept_state().unwrap();
        s.bio_write(&garbage).unwrap();
        match s.do_handshake() {
            Err(Error::Protocol(_)) => {}
            // OpenSSL's reason for the usual mistake behind garbage: plain HTTP.
            Err(Error::PlainHttp("http request")) if garbage.starts_with(b"GET ") => {}
            Err(Error::WantRead) if garbage.len() == 5 => {}
            other => panic!("expected a protocol error, got {other:?}"),
        }
        // The connection stays failed, and says so again instead of panicking.
        assert!(s.do_handshake().is_err());
    }
    // Garbage after a good handshake.
    let (mut c, mut s) = pair(&client_ctx(&pki), &sctx);
    handshake(&mut c, &mut s).unwrap();
    s.bio_write(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    s.bio_write(&[0xAB; 32]).unwrap();
    let mut buf = [0u8; 16];
    let err = s.recv(&mut buf).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(!err.openssl_errors().is_empty());
}

#[test]
fn wrong_state_calls_are_errors() {
    let pki = TestPki::generate();
    let mut conn = Connection::new(&client_ctx(&pki)).unwrap();
    assert!(matches!(conn.do_handshake(), Err(Error::WrongState(_))));
    assert!(matches!(conn.shutdown(), Err(Error::WrongState(_))));
    assert!(conn.export_keying_material(b"x", 8, None).is_err());
    conn.set_connect_state().unwrap();
    let _ = conn.do_handshake();
    assert!(
        conn.set_accept_state().is_err(),
        "role fixed once the handshake started"
    );
    assert!(conn.set_tlsext_host_name("example.com").is_err());
    assert!(!conn.renegotiate());
    assert!(matches!(conn.get_finished(), Err(Error::NotSupported(_))));
}

#[test]
fn ciphertext_written_in_pieces_before_any_read_arrives_whole_and_in_order() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    // Records of varied sizes, more than the engine buffers at once, so that some ciphertext
    // goes to the engine at bio_write and the rest waits in the queue behind it.
    let mut sent = Vec::new();
    let mut wire = Vec::new();
    for i in 0..40u8 {
        let message = vec![i; 1000 + usize::from(i) * 371];
        c.send(&message).unwrap();
        sent.extend_from_slice(&message);
        wire.extend(c.bio_read(1 << 20).unwrap());
    }
    for piece in wire.chunks(4999) {
        s.bio_write(piece).unwrap();
    }
    let mut received = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.recv(&mut buf) {
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(Error::WantRead) => break,
            Err(e) => panic!("recv failed: {e}"),
        }
    }
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "the bytes arrived out of order");
}
