//! DTLS between two ferrossl engines in memory: every DTLS 1.2 suite family and key type, data
//! both ways, exporters, client authentication and verification failures (in both versions
//! where they differ).

mod dtls_common;

use std::time::Instant;

use dtls_common::*;
use ferrossl::constants::*;
use ferrossl::dtls::{DtlsError, DtlsParams, SrtpProfile};
use ferrossl::rustls::AlertDescription;
use ferrossl::Context;
use ferrossl::Method;
use ferrossl_testkit::pki::TestPki;

#[test]
fn every_suite_and_key_type_handshakes_and_carries_data() {
    let pki = TestPki::generate();
    let cases = [
        (&pki.server_ecdsa, "ECDHE-ECDSA-AES256-GCM-SHA384"),
        (&pki.server_ecdsa, "ECDHE-ECDSA-AES128-GCM-SHA256"),
        (&pki.server_ecdsa, "ECDHE-ECDSA-CHACHA20-POLY1305"),
        (&pki.server_rsa, "ECDHE-RSA-AES256-GCM-SHA384"),
        (&pki.server_rsa, "ECDHE-RSA-AES128-GCM-SHA256"),
        (&pki.server_rsa, "ECDHE-RSA-CHACHA20-POLY1305"),
        (&pki.server_ed25519, "ECDHE-ECDSA-AES128-GCM-SHA256"),
        (&pki.server_chain, "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ];
    for (id, suite) in cases {
        for group in ["X25519", "P-256", "P-384"] {
            let now = Instant::now();
            let cctx = client_context(&pki);
            cctx.set_cipher_list(suite).unwrap();
            cctx.set_groups(&[group]).unwrap();
            // Cipher lists name DTLS 1.2 suites.
            cctx.set_max_proto_version(DTLS1_2_VERSION).unwrap();
            let (mut c, mut s) = pair_with_default_params(cctx.config(), server_config(id), now);
            assert!(c.is_handshaking() && s.is_handshaking());
            handshake(&mut c, &mut s, now).unwrap();
            assert_eq!(c.cipher().unwrap().openssl_name, suite);
            assert_eq!(s.cipher().unwrap().openssl_name, suite);
            assert_eq!(c.protocol_version(), Some(DTLS1_2_VERSION));
            assert_eq!(
                c.group().unwrap(),
                ferrossl::ciphers::group_by_name(group).unwrap()
            );
            assert_eq!(c.verify_outcome().unwrap().result, X509_V_OK);
            assert_eq!(
                c.peer_certificates()[0].subject().get("CN"),
                Some("localhost")
            );
            assert_eq!(c.client_random(), s.client_random());
            assert_eq!(c.server_random(), s.server_random());
            assert_eq!(c.master_secret(), s.master_secret());
            assert!(s.peer_certificates().is_empty());
            let ekm = c.export_keying_material(b"EXPERIMENTAL-x", 48, Some(b"ctx"));
            assert_eq!(
                ekm.unwrap(),
                s.export_keying_material(b"EXPERIMENTAL-x", 48, Some(b"ctx"))
                    .unwrap()
            );
            c.send(b"ping").unwrap();
            transfer(&mut c, &mut s, now).unwrap();
            assert_eq!(s.recv().unwrap(), b"ping");
            s.send(b"pong").unwrap();
            transfer(&mut s, &mut c, now).unwrap();
            assert_eq!(c.recv().unwrap(), b"pong");
            assert!(c.recv().is_none());
        }
    }
}

#[test]
fn srtp_alpn_sni_and_the_srtp_exporter() {
    let pki = TestPki::generate();
    for version in [DTLS1_2_VERSION, DTLS1_3_VERSION] {
        srtp_alpn_sni_and_the_srtp_exporter_in(&pki, version);
    }
}

/// Both ends allow both versions; the client is held to `version`.
fn held_to(
    config: std::sync::Arc<ferrossl::config::Config>,
    version: i32,
) -> std::sync::Arc<ferrossl::config::Config> {
    if version == DTLS1_2_VERSION {
        dtls12(config)
    } else {
        config
    }
}

fn srtp_alpn_sni_and_the_srtp_exporter_in(pki: &TestPki, version: i32) {
    let now = Instant::now();
    let client_params = DtlsParams {
        srtp_profiles: SrtpProfile::parse_list("SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")
            .unwrap(),
        alpn_protocols: vec![b"webrtc".to_vec(), b"c-webrtc".to_vec()],
        server_name: Some("localhost".into()),
        ..Default::default()
    };
    let server_params = DtlsParams {
        srtp_profiles: vec![SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes128Gcm],
        alpn_protocols: vec![b"c-webrtc".to_vec()],
        ..Default::default()
    };
    let (mut c, mut s) = pair(
        held_to(client_config(pki), version),
        server_config(&pki.server_ecdsa),
        client_params,
        server_params,
        now,
    );
    handshake(&mut c, &mut s, now).unwrap();
    assert_eq!(c.protocol_version(), Some(version));
    // The server's preference wins (as in OpenSSL).
    assert_eq!(
        c.selected_srtp_profile(),
        Some(SrtpProfile::Aes128CmSha1_80)
    );
    assert_eq!(
        s.selected_srtp_profile(),
        Some(SrtpProfile::Aes128CmSha1_80)
    );
    assert_eq!(c.alpn_protocol(), Some(&b"c-webrtc"[..]));
    assert_eq!(s.server_name(), Some("localhost"));
    let len = SrtpProfile::Aes128CmSha1_80.keying_material_len();
    let a = c
        .export_keying_material(b"EXTRACTOR-dtls_srtp", len, None)
        .unwrap();
    assert_eq!(a.len(), 60);
    assert_eq!(
        a,
        s.export_keying_material(b"EXTRACTOR-dtls_srtp", len, None)
            .unwrap()
    );
    // RFC 5705 §4 reserves the DTLS 1.2 PRF's own labels; RFC 8446 §7.5 has no such list.
    assert_eq!(
        c.export_keying_material(b"master secret", 10, None)
            .is_err(),
        version == DTLS1_2_VERSION
    );
}

#[test]
fn alpn_without_overlap_is_fatal_with_no_application_protocol() {
    let pki = TestPki::generate();
    for version in [DTLS1_2_VERSION, DTLS1_3_VERSION] {
        alpn_without_overlap_in(&pki, version);
    }
}

fn alpn_without_overlap_in(pki: &TestPki, version: i32) {
    let now = Instant::now();
    let (mut c, mut s) = pair(
        held_to(client_config(pki), version),
        server_config(&pki.server_ecdsa),
        DtlsParams {
            alpn_protocols: vec![b"h3".to_vec()],
            ..Default::default()
        },
        DtlsParams {
            alpn_protocols: vec![b"webrtc".to_vec()],
            ..Default::default()
        },
        now,
    );
    let (side, err) = handshake(&mut c, &mut s, now).unwrap_err();
    assert_eq!(side, "server");
    assert_eq!(err, DtlsError::NoApplicationProtocol);
    assert_eq!(
        c.error(),
        Some(&DtlsError::AlertReceived(
            AlertDescription::NoApplicationProtocol
        ))
    );
}

#[test]
fn client_authentication_required_and_provided() {
    let pki = TestPki::generate();
    for client_id in [&pki.client_ecdsa, &pki.client_rsa] {
        let now = Instant::now();
        let (mut c, mut s) = pair_with_default_params(
            client_config_with_cert(&pki, client_id),
            server_config_verifying(
                &pki.server_rsa,
                &pki,
                VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
            ),
            now,
        );
        handshake(&mut c, &mut s, now).unwrap();
        assert_eq!(
            s.peer_certificates()[0].subject().get("CN"),
            Some("ferrossl test client")
        );
        assert_eq!(s.verify_outcome().unwrap().result, X509_V_OK);
        assert_eq!(c.client_ca_names(), Some(&[][..]));
    }
}

#[test]
fn client_without_certificate_is_refused_when_one_is_required() {
    let pki = TestPki::generate();
    // RFC 8446 §4.4.2.4 gives DTLS 1.3 an alert of its own for it.
    for (version, error, alert) in [
        (
            DTLS1_2_VERSION,
            DtlsError::NoPeerCertificate,
            AlertDescription::HandshakeFailure,
        ),
        (
            DTLS1_3_VERSION,
            DtlsError::CertificateRequired,
            AlertDescription::CertificateRequired,
        ),
    ] {
        client_without_certificate_in(&pki, version, error, alert);
    }
}

fn client_without_certificate_in(
    pki: &TestPki,
    version: i32,
    error: DtlsError,
    alert: AlertDescription,
) {
    let now = Instant::now();
    let (mut c, mut s) = pair_with_default_params(
        held_to(client_config(pki), version),
        server_config_verifying(
            &pki.server_ecdsa,
            pki,
            VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        ),
        now,
    );
    let (side, err) = handshake(&mut c, &mut s, now).unwrap_err();
    assert_eq!((side, &err), ("server", &error));
    assert_eq!(c.error(), Some(&DtlsError::AlertReceived(alert)));
    let e: ferrossl::Error = err.into();
    assert_eq!(
        e.openssl_errors()[0].reason,
        "peer did not return a certificate"
    );

    // Without FAIL_IF_NO_PEER_CERT the same client gets in.
    let (mut c, mut s) = pair_with_default_params(
        held_to(client_config(pki), version),
        server_config_verifying(&pki.server_ecdsa, pki, VERIFY_PEER),
        now,
    );
    handshake(&mut c, &mut s, now).unwrap();
    assert_eq!(c.protocol_version(), Some(version));
    assert!(s.peer_certificates().is_empty());
}

#[test]
fn untrusted_server_gets_unknown_ca_and_the_callback_can_override() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s) =
        pair_with_default_params(client_config(&pki), server_config(&pki.untrusted), now);
    let (side, err) = handshake(&mut c, &mut s, now).unwrap_err();
    assert_eq!(side, "client");
    assert_eq!(
        err,
        DtlsError::Certificate {
            code: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            depth: 0
        }
    );
    assert_eq!(
        s.error(),
        Some(&DtlsError::AlertReceived(AlertDescription::UnknownCA))
    );
    assert_eq!(
        c.verify_outcome().unwrap().result,
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    );
    let e: ferrossl::Error = err.into();
    assert!(matches!(e, ferrossl::Error::CertificateVerify { .. }));

    // Expired: certificate_expired.
    let (mut c, mut s) =
        pair_with_default_params(client_config(&pki), server_config(&pki.expired), now);
    handshake(&mut c, &mut s, now).unwrap_err();
    assert_eq!(
        s.error(),
        Some(&DtlsError::AlertReceived(
            AlertDescription::CertificateExpired
        ))
    );

    // A callback accepting everything overrides; the result is kept.
    let ctx = Context::new(Method::Dtls);
    ctx.set_verify(VERIFY_PEER, Some(std::sync::Arc::new(|_: &_| true)));
    let (mut c, mut s) = pair_with_default_params(ctx.config(), server_config(&pki.untrusted), now);
    handshake(&mut c, &mut s, now).unwrap();
    assert_ne!(c.verify_outcome().unwrap().result, X509_V_OK);

    // VERIFY_NONE: the failure is recorded, not fatal.
    let (mut c, mut s) = pair_with_default_params(
        Context::new(Method::Dtls).config(),
        server_config(&pki.self_signed),
        now,
    );
    handshake(&mut c, &mut s, now).unwrap();
    assert_eq!(
        c.verify_outcome().unwrap().result,
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    );
}

#[test]
fn hostname_checks_use_the_sni_name() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s) = pair(
        client_config(&pki),
        server_config(&pki.server_ecdsa),
        DtlsParams {
            verify_host: Some("example.com".into()),
            ..Default::default()
        },
        DtlsParams::default(),
        now,
    );
    let (_, err) = handshake(&mut c, &mut s, now).unwrap_err();
    assert_eq!(
        err,
        DtlsError::Certificate {
            code: X509_V_ERR_HOSTNAME_MISMATCH,
            depth: 0
        }
    );
    assert_eq!(
        s.error(),
        Some(&DtlsError::AlertReceived(AlertDescription::BadCertificate))
    );
}

#[test]
fn no_shared_cipher_and_mismatched_key() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let cctx = client_context(&pki);
    // Cipher lists name DTLS 1.2 suites; every DTLS 1.3 suite works with every key.
    cctx.set_cipher_list("ECDHE-RSA-AES128-GCM-SHA256").unwrap();
    cctx.set_max_proto_version(DTLS1_2_VERSION).unwrap();
    let (mut c, mut s) =
        pair_with_default_params(cctx.config(), server_config(&pki.server_ecdsa), now);
    let (side, err) = handshake(&mut c, &mut s, now).unwrap_err();
    assert_eq!((side, err), ("server", DtlsError::NoSharedCipher));
    assert_eq!(
        c.error(),
        Some(&DtlsError::AlertReceived(
            AlertDescription::HandshakeFailure
        ))
    );
}

#[test]
fn fragmentation_for_small_mtus_and_close_notify() {
    let pki = TestPki::generate();
    let now = Instant::now();
    for mtu in [128, 256, 576] {
        let params = DtlsParams {
            mtu,
            ..Default::default()
        };
        let (mut c, mut s) = pair(
            client_config_with_cert(&pki, &pki.client_rsa),
            server_config_verifying(&pki.server_rsa, &pki, VERIFY_PEER),
            params.clone(),
            params,
            now,
        );
        let mut sizes = vec![];
        for _ in 0..10 {
            while let Some(d) = c.poll_datagram() {
                sizes.push(d.len());
                s.handle_datagram(&d, now).unwrap();
            }
            while let Some(d) = s.poll_datagram() {
                sizes.push(d.len());
                c.handle_datagram(&d, now).unwrap();
            }
        }
        assert!(c.is_established() && s.is_established(), "mtu {mtu}");
        // The server chose DTLS 1.3 from the whole first ClientHello, not its first fragment.
        assert_eq!(c.protocol_version(), Some(DTLS1_3_VERSION), "mtu {mtu}");
        assert!(sizes.iter().all(|n| *n <= mtu), "mtu {mtu}: {sizes:?}");
        assert!(c.cleartext_mtu() < mtu);
        let big = vec![7u8; c.cleartext_mtu()];
        c.send(&big).unwrap();
        let d = c.poll_datagram().unwrap();
        assert_eq!(d.len(), mtu);
        s.handle_datagram(&d, now).unwrap();
        assert_eq!(s.recv().unwrap(), big);
    }
    let (mut c, mut s) =
        pair_with_default_params(client_config(&pki), server_config(&pki.server_ecdsa), now);
    handshake(&mut c, &mut s, now).unwrap();
    c.close().unwrap();
    transfer(&mut c, &mut s, now).unwrap();
    assert!(s.peer_closed());
    assert!(c.send(b"more").is_err(), "nothing after close_notify");
    s.close().unwrap();
    transfer(&mut s, &mut c, now).unwrap();
    assert!(c.peer_closed());
    assert!(c.send(&vec![0; 20000]).is_err());
}

/// `DTLSv1_listen` done outside the engine: the engine made afterwards (with or without the
/// cookie provider) takes over from the verified ClientHello.
#[test]
fn stateless_listen_then_an_engine_takes_over() {
    use ferrossl::config::Role;
    use ferrossl::dtls::codec::record::records;
    use ferrossl::dtls::{cookie, DtlsEngine, HmacCookies, ListenOutcome};
    use std::sync::Arc;
    let pki = TestPki::generate();
    for engine_checks_cookie_too in [false, true] {
        let now = Instant::now();
        let cookies = Arc::new(HmacCookies::new(std::time::Duration::from_secs(60)));
        let addr = "198.51.100.7:4444".parse().unwrap();
        // The DTLS 1.2 listener (DTLS 1.3 has `listen13`).
        let mut c = DtlsEngine::new(
            dtls12(client_config(&pki)),
            Role::Client,
            DtlsParams::default(),
            now,
        )
        .unwrap();
        let first = c.poll_datagram().unwrap();
        let ListenOutcome::HelloVerifyRequest(hvr) =
            cookie::listen(cookies.as_ref(), Some(addr), &first, now)
        else {
            panic!("expected a challenge");
        };
        c.handle_datagram(&hvr, now).unwrap();
        let second = c.poll_datagram().unwrap();
        assert_eq!(
            cookie::listen(cookies.as_ref(), Some(addr), &second, now),
            ListenOutcome::Verified
        );
        let params = DtlsParams {
            cookies: engine_checks_cookie_too.then(|| cookies.clone() as Arc<_>),
            peer_addr: Some(addr),
            ..Default::default()
        };
        let mut s =
            DtlsEngine::new(server_config(&pki.server_ecdsa), Role::Server, params, now).unwrap();
        s.handle_datagram(&second, now).unwrap();
        let answer = s.poll_datagram().unwrap();
        let (hello_record, _) = records(&second).next().unwrap();
        let (answer_record, _) = records(&answer).next().unwrap();
        assert_eq!(
            answer_record.sequence, hello_record.sequence,
            "the ServerHello reuses the ClientHello's record number (RFC 6347 §4.2.1)"
        );
        c.handle_datagram(&answer, now).unwrap();
        handshake(&mut c, &mut s, now).unwrap();
    }
}
