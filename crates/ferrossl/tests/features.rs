//! TLS features between two ferrossl ends over memory BIOs: ALPN, SNI with context switching,
//! sessions, key logging (checked by decrypting a record), OCSP, client CA lists, the info
//! callback, cipher and group selection.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use ferrossl::constants::*;
use ferrossl::context::AlpnSelection;
use ferrossl::rustls::{AlertDescription, Error as TlsError};
use ferrossl::{Connection, Context, Error};
use ferrossl_testkit::pki::TestPki;

fn alpn_server(pki: &TestPki, choice: AlpnSelection) -> (Context, Arc<Mutex<Vec<Vec<u8>>>>) {
    let sctx = server_ctx(&pki.server_ecdsa);
    let offered = Arc::new(Mutex::new(Vec::new()));
    let seen = offered.clone();
    sctx.set_alpn_select_callback(Arc::new(move |hello| {
        *seen.lock().unwrap() = hello.alpn_offered().to_vec();
        Ok(choice.clone())
    }));
    (sctx, offered)
}

#[test]
fn alpn_select_callback_outcomes() {
    let pki = TestPki::generate();
    let cctx = client_ctx(&pki);
    cctx.set_alpn_protos(&[b"h2", b"http/1.1"]).unwrap();

    let (sctx, offered) = alpn_server(&pki, AlpnSelection::Select(b"http/1.1".to_vec()));
    let (mut c, mut s) = pair(&cctx, &sctx);
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(
        *offered.lock().unwrap(),
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert_eq!(
        c.get_alpn_proto_negotiated().as_deref(),
        Some(&b"http/1.1"[..])
    );
    assert_eq!(
        s.get_alpn_proto_negotiated().as_deref(),
        Some(&b"http/1.1"[..])
    );

    let (sctx, _) = alpn_server(&pki, AlpnSelection::NoOverlap);
    let (mut c, mut s) = pair(&cctx, &sctx);
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.get_alpn_proto_negotiated(), None);

    let (sctx, _) = alpn_server(&pki, AlpnSelection::Abort);
    let (mut c, mut s) = pair(&cctx, &sctx);
    handshake(&mut c, &mut s).unwrap_err();
    assert!(matches!(
        c.do_handshake(),
        Err(Error::Protocol(TlsError::AlertReceived(
            AlertDescription::NoApplicationProtocol
        )))
    ));

    // A callback that picks something never offered, or fails, aborts with internal_error.
    {
        let (sctx, _) = alpn_server(&pki, AlpnSelection::Select(b"spdy/1".to_vec()));
        let (mut c, mut s) = pair(&cctx, &sctx);
        let err = handshake(&mut c, &mut s).unwrap_err();
        assert!(matches!(err, ("server", Error::Callback(_))), "{err:?}");
        transfer(&mut s, &mut c);
        assert!(matches!(
            c.do_handshake(),
            Err(Error::Protocol(TlsError::AlertReceived(
                AlertDescription::InternalError
            )))
        ));
    }
    let sctx = server_ctx(&pki.server_ecdsa);
    sctx.set_alpn_select_callback(Arc::new(|_| Err(Error::Callback("boom".into()))));
    let (mut c, mut s) = pair(&cctx, &sctx);
    assert!(matches!(
        handshake(&mut c, &mut s),
        Err(("server", Error::Callback(_)))
    ));

    // Bad protocol lists are refused.
    assert!(cctx.set_alpn_protos(&[]).is_err());
    assert!(cctx.set_alpn_protos(&[b""]).is_err());
    assert!(cctx.set_alpn_protos(&[&[b'a'; 256]]).is_err());
}

#[test]
fn sni_callback_switches_context() {
    let pki = TestPki::generate();
    let default_ctx = server_ctx(&pki.server_ecdsa);
    let other_ctx = server_ctx(&pki.server_rsa);
    let names = Arc::new(Mutex::new(Vec::new()));
    let seen = names.clone();
    default_ctx.set_tlsext_servername_callback(Arc::new(move |hello| {
        seen.lock()
            .unwrap()
            .push(hello.server_name().map(str::to_string));
        if hello.server_name() == Some("rsa.localhost") {
            hello.set_context(&other_ctx);
        }
        Ok(())
    }));
    for (name, bits) in [
        (Some("rsa.localhost"), 2048),
        (Some("localhost"), 256),
        (None, 256),
    ] {
        let (mut c, mut s) = pair(&client_ctx(&pki), &default_ctx);
        if let Some(n) = name {
            c.set_tlsext_host_name(n).unwrap();
        }
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(c.get_peer_certificate().unwrap().public_key_bits(), bits);
        assert_eq!(s.get_servername().as_deref(), name);
        assert_eq!(c.get_servername().as_deref(), name);
    }
    assert_eq!(names.lock().unwrap().len(), 3);
    // A failing callback aborts the handshake.
    let sctx = server_ctx(&pki.server_ecdsa);
    sctx.set_tlsext_servername_callback(Arc::new(|_| Err(Error::Callback("no such host".into()))));
    let (mut c, mut s) = pair(&client_ctx(&pki), &sctx);
    assert!(matches!(
        handshake(&mut c, &mut s),
        Err(("server", Error::Callback(_)))
    ));
}

/// Handshakes and moves one message each way, so TLS 1.3 tickets reach the client.
fn full_exchange(c: &mut Connection, s: &mut Connection) {
    handshake(c, s).unwrap();
    assert_eq!(send_through(s, c, b"ticket time"), b"ticket time");
    assert_eq!(send_through(c, s, b"thanks"), b"thanks");
}

#[test]
fn sessions_resume_and_honour_options() {
    let pki = TestPki::generate();
    for version in [TLS1_2_VERSION, TLS1_3_VERSION] {
        for no_ticket in [false, true] {
            let cctx = client_ctx(&pki);
            cctx.set_max_proto_version(version).unwrap();
            let sctx = server_ctx(&pki.server_ecdsa);
            if no_ticket {
                sctx.set_options(OP_NO_TICKET);
            }
            let (mut c, mut s) = pair(&cctx, &sctx);
            assert!(c.get_session().is_none());
            full_exchange(&mut c, &mut s);
            assert!(!c.session_reused());
            let session = c.get_session().expect("the server issued a session");

            let (mut c2, mut s2) = pair(&cctx, &sctx);
            c2.set_session(&session).unwrap();
            full_exchange(&mut c2, &mut s2);
            assert!(
                c2.session_reused(),
                "version {version:#x} no_ticket {no_ticket}"
            );
            assert!(s2.session_reused());
            assert!(c2.get_peer_certificate().is_some() || version == TLS1_3_VERSION);

            // Without set_session nothing is resumed.
            let (mut c3, mut s3) = pair(&cctx, &sctx);
            full_exchange(&mut c3, &mut s3);
            assert!(!c3.session_reused());
        }
    }
}

#[test]
fn session_cache_off_and_id_contexts() {
    let pki = TestPki::generate();
    let cctx = client_ctx(&pki);
    cctx.set_max_proto_version(TLS1_2_VERSION).unwrap();
    let resumed = |first: &Context, second: &Context| {
        let (mut c, mut s) = pair(&cctx, first);
        full_exchange(&mut c, &mut s);
        let session = c.get_session();
        let (mut c2, mut s2) = pair(&cctx, second);
        if let Some(session) = &session {
            c2.set_session(session).unwrap();
        }
        full_exchange(&mut c2, &mut s2);
        c2.session_reused()
    };
    // Stateful cache off and no tickets: nothing to resume.
    let off = server_ctx(&pki.server_ecdsa);
    off.set_options(OP_NO_TICKET);
    assert_eq!(
        off.set_session_cache_mode(SESS_CACHE_OFF),
        SESS_CACHE_SERVER
    );
    assert!(!resumed(&off, &off));
    // Two contexts sharing a session ID context share the cache; different ones do not.
    let a = server_ctx(&pki.server_ecdsa);
    let b = server_ctx(&pki.server_ecdsa);
    let c = server_ctx(&pki.server_ecdsa);
    for (ctx, id) in [(&a, &b"shared"[..]), (&b, b"shared"), (&c, b"other")] {
        ctx.set_options(OP_NO_TICKET);
        ctx.set_session_id(id).unwrap();
    }
    assert!(resumed(&a, &b));
    assert!(!resumed(&a, &c));
    assert!(a.set_session_id(&[0; 33]).is_err());
    assert_eq!(a.get_timeout(), 300);
}

#[test]
fn expired_sessions_give_a_full_handshake() {
    let pki = TestPki::generate();
    let cctx = client_ctx(&pki);
    let sctx = server_ctx(&pki.server_ecdsa);
    assert_eq!(sctx.set_timeout(1), 300);
    let (mut c, mut s) = pair(&cctx, &sctx);
    full_exchange(&mut c, &mut s);
    let session = c.get_session().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (mut c2, mut s2) = pair(&cctx, &sctx);
    c2.set_session(&session).unwrap();
    full_exchange(&mut c2, &mut s2);
    assert!(!c2.session_reused());
    assert!(
        session.to_bytes().is_err(),
        "session bytes are opaque to the engine"
    );
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256.
fn expand_label(secret: &[u8], label: &str, len: usize) -> Vec<u8> {
    use aws_lc_rs::hkdf;
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let full = format!("tls13 {label}");
    let info = [
        &(len as u16).to_be_bytes()[..],
        &[full.len() as u8],
        full.as_bytes(),
        &[0],
    ];
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let mut out = vec![0u8; len];
    prk.expand(&info, Len(len)).unwrap().fill(&mut out).unwrap();
    out
}

#[test]
fn keylog_lines_decrypt_a_tls13_record() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    let pki = TestPki::generate();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let cctx = client_ctx(&pki);
    cctx.set_ciphersuites("TLS_AES_128_GCM_SHA256").unwrap();
    cctx.set_keylog_callback(Arc::new(move |_, line| {
        sink.lock()
            .unwrap()
            .push(String::from_utf8(line.to_vec()).unwrap())
    }));
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    let random = c
        .client_random()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let lines = lines.lock().unwrap().clone();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{label} {random} "))),
            "{label} in {lines:?}"
        );
    }
    let secret_hex = lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("CLIENT_TRAFFIC_SECRET_0 {random} ")))
        .unwrap();
    let secret: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret_hex[i..i + 2], 16).unwrap())
        .collect();

    // The client's first application record after the handshake has sequence number 0.
    c.send(b"the plaintext Wireshark would show").unwrap();
    let record = c.bio_read(65536).unwrap();
    assert_eq!(record[0], 23, "an application_data record");
    let key = expand_label(&secret, "key", 16);
    let iv = expand_label(&secret, "iv", 12);
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap());
    let mut body = record[5..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(&iv).unwrap(),
            Aad::from(&record[..5]),
            &mut body,
        )
        .unwrap();
    // TLSInnerPlaintext: content, then the real content type (23).
    assert_eq!(plain.last(), Some(&23));
    assert_eq!(
        &plain[..plain.len() - 1],
        b"the plaintext Wireshark would show"
    );

    // TLS 1.2 logs CLIENT_RANDOM with the master secret.
    let lines12 = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines12.clone();
    let cctx = client_ctx(&pki);
    cctx.set_max_proto_version(TLS1_2_VERSION).unwrap();
    cctx.set_keylog_callback(Arc::new(move |_, line| {
        sink.lock()
            .unwrap()
            .push(String::from_utf8(line.to_vec()).unwrap())
    }));
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    let master: String = c
        .master_key()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let random: String = c
        .client_random()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        *lines12.lock().unwrap(),
        vec![format!("CLIENT_RANDOM {random} {master}")]
    );
}

#[test]
fn ocsp_stapling_callbacks() {
    let pki = TestPki::generate();
    let run = |staple: &'static [u8], accept: bool, request: bool| {
        let sctx = server_ctx(&pki.server_ecdsa);
        sctx.set_ocsp_server_callback(Arc::new(move |_| Ok(staple.to_vec())));
        let cctx = client_ctx(&pki);
        let got = Arc::new(Mutex::new(None));
        let sink = got.clone();
        cctx.set_ocsp_client_callback(Arc::new(move |_, resp| {
            *sink.lock().unwrap() = Some(resp.to_vec());
            Ok(accept)
        }));
        let (mut c, mut s) = pair(&cctx, &sctx);
        if request {
            c.request_ocsp().unwrap();
        }
        let result = handshake(&mut c, &mut s);
        let got = got.lock().unwrap().clone();
        (result.is_ok(), got)
    };
    assert_eq!(
        run(b"stapled-response", true, true),
        (true, Some(b"stapled-response".to_vec()))
    );
    assert_eq!(
        run(b"", true, true),
        (true, Some(Vec::new())),
        "empty means nothing stapled"
    );
    assert!(!run(b"stapled-response", false, true).0, "False aborts");
    assert_eq!(
        run(b"stapled-response", true, false),
        (true, None),
        "not requested: not called"
    );
}

#[test]
fn client_ca_list_travels_to_the_client() {
    let pki = TestPki::generate();
    let sctx = server_ctx(&pki.server_ecdsa);
    sctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    sctx.set_verify(VERIFY_PEER, None);
    sctx.load_client_ca(pki.ca_path()).unwrap();
    sctx.add_client_ca(&ferrossl::X509::from_pem(pki.other_ca.cert_pem.as_bytes()).unwrap());
    let expected: Vec<String> = sctx
        .get_client_ca_list()
        .iter()
        .map(|n| n.oneline())
        .collect();
    assert_eq!(expected.len(), 2);
    for version in [TLS1_2_VERSION, TLS1_3_VERSION] {
        let cctx = client_ctx(&pki);
        cctx.set_max_proto_version(version).unwrap();
        let (mut c, mut s) = pair(&cctx, &sctx);
        assert!(c.get_client_ca_list().is_empty());
        handshake(&mut c, &mut s).unwrap();
        let got: Vec<String> = c.get_client_ca_list().iter().map(|n| n.oneline()).collect();
        assert_eq!(got, expected);
        assert_eq!(s.get_client_ca_list().len(), 2);
    }
}

#[test]
fn info_callback_and_state_strings() {
    let pki = TestPki::generate();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let cctx = client_ctx(&pki);
    cctx.set_info_callback(Arc::new(move |_, point, ret| {
        sink.lock().unwrap().push((point, ret))
    }));
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_ecdsa));
    assert_eq!(c.get_state_string(), "before SSL initialization");
    let _ = c.do_handshake();
    assert_eq!(c.get_state_string(), "SSLv3/TLS write client hello");
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(
        c.get_state_string(),
        "SSL negotiation finished successfully"
    );
    c.shutdown().unwrap();
    let events = events.lock().unwrap().clone();
    let pos = |p: i32| {
        events
            .iter()
            .position(|e| e.0 == p)
            .unwrap_or_else(|| panic!("{p:#x} in {events:?}"))
    };
    assert!(pos(SSL_CB_HANDSHAKE_START) < pos(SSL_CB_CONNECT_LOOP));
    assert!(pos(SSL_CB_CONNECT_LOOP) < pos(SSL_CB_HANDSHAKE_DONE));
    assert!(
        events.contains(&(SSL_CB_CONNECT_EXIT, -1)),
        "a WantRead exit"
    );
    assert!(events.contains(&(SSL_CB_CONNECT_EXIT, 1)));
    assert_eq!(
        events.last(),
        Some(&(SSL_CB_WRITE_ALERT, 1 << 8)),
        "close_notify is a warning alert"
    );
}

#[test]
fn cipher_and_group_selection() {
    let pki = TestPki::generate();
    let sctx = server_ctx(&pki.server_rsa);
    sctx.set_cipher_list("ECDHE+AESGCM:!AES128").unwrap();
    let cctx = client_ctx(&pki);
    cctx.set_max_proto_version(TLS1_2_VERSION).unwrap();
    cctx.set_groups(&["P-384"]).unwrap();
    let (mut c, mut s) = pair(&cctx, &sctx);
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.get_cipher_name(), Some("ECDHE-RSA-AES256-GCM-SHA384"));
    assert_eq!(c.get_cipher_bits(), Some(256));
    assert_eq!(s.get_group_name().as_deref(), Some("secp384r1"));

    let cctx = client_ctx(&pki);
    cctx.set_ciphersuites("TLS_CHACHA20_POLY1305_SHA256")
        .unwrap();
    let (mut c, mut s) = pair(&cctx, &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(s.get_cipher_name(), Some("TLS_CHACHA20_POLY1305_SHA256"));
    assert_eq!(
        cctx.get_cipher_list().first().map(String::as_str),
        Some("TLS_CHACHA20_POLY1305_SHA256")
    );

    // Suites with nothing in common fail cleanly.
    let sctx = server_ctx(&pki.server_ecdsa);
    sctx.set_cipher_list("aRSA").unwrap();
    let cctx = client_ctx(&pki);
    cctx.set_max_proto_version(TLS1_2_VERSION).unwrap();
    let (mut c, mut s) = pair(&cctx, &sctx);
    assert!(handshake(&mut c, &mut s).is_err());
    assert!(matches!(
        cctx.set_cipher_list("imaginary-cipher"),
        Err(Error::NoCipherMatch)
    ));
    assert_eq!(
        Error::NoCipherMatch.openssl_errors()[0].reason,
        "no cipher match"
    );
    assert!(matches!(
        cctx.set_tmp_ecdh("brainpoolP256r1"),
        Err(Error::NotSupported(_))
    ));
    cctx.set_tmp_ecdh("prime256v1").unwrap();
    assert!(matches!(
        cctx.load_tmp_dh("dh.pem"),
        Err(Error::NotSupported(_))
    ));
}

#[test]
fn exporter_lengths_are_bounded() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(&client_ctx(&pki), &server_ctx(&pki.server_ecdsa));
    handshake(&mut c, &mut s).unwrap();
    let most = c
        .export_keying_material(b"EXPERIMENTAL-len", 8160, None)
        .unwrap();
    assert_eq!(
        most,
        s.export_keying_material(b"EXPERIMENTAL-len", 8160, None)
            .unwrap()
    );
    for len in [65536, usize::MAX] {
        let err = c
            .export_keying_material(b"EXPERIMENTAL-len", len, None)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{len}: {err}");
    }
}

#[test]
fn partial_write_mode_sends_one_record_per_call() {
    let pki = TestPki::generate();
    let data = vec![7u8; 1 << 15];
    let partial = client_ctx(&pki);
    partial.set_mode(MODE_ENABLE_PARTIAL_WRITE);
    for (ctx, first_send) in [(partial, 1 << 14), (client_ctx(&pki), 1 << 15)] {
        let (mut c, mut s) = pair(&ctx, &server_ctx(&pki.server_ecdsa));
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(c.send(&data).unwrap(), first_send);
        c.sendall(&data[first_send..]).unwrap();
        transfer(&mut c, &mut s);
        let mut got = Vec::new();
        let mut buf = [0u8; 1 << 16];
        while got.len() < data.len() {
            let n = s.recv(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data);
    }
}
