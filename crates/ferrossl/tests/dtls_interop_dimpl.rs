//! DTLS 1.2 against dimpl 0.9 (an independent sans-IO DTLS stack on aws-lc-rs) in process,
//! both directions, with dimpl's cookie exchange, mutual certificates and DTLS-SRTP keying
//! material compared.

mod dtls_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::*;
use ferrossl::config::Role;
use ferrossl::constants::*;
use ferrossl::dtls::{DtlsEngine, DtlsParams, HmacCookies, SrtpProfile};
use ferrossl_testkit::pki::{Identity, TestPki};

#[derive(Default)]
struct DimplEvents {
    connected: bool,
    peer_cert: Option<Vec<u8>>,
    keying: Option<(Vec<u8>, dimpl::SrtpProfile)>,
    data: Vec<Vec<u8>>,
    closed: bool,
}

fn dimpl_engine(id: &Identity, client: bool, now: Instant) -> dimpl::Dtls {
    let cert = dimpl::DtlsCertificate {
        certificate: id.cert_der.clone(),
        private_key: id.key_der.clone(),
    };
    let mut d = dimpl::Dtls::new_12(Arc::new(dimpl::Config::default()), cert, now);
    d.set_active(client);
    d
}

/// Drains dimpl's output: datagrams to `out`, events to `events`.
fn poll_dimpl(d: &mut dimpl::Dtls, out: &mut Vec<Vec<u8>>, events: &mut DimplEvents) {
    let mut buf = vec![0u8; 2048];
    loop {
        match d.poll_output(&mut buf) {
            dimpl::Output::Packet(p) => out.push(p.to_vec()),
            dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
            dimpl::Output::Timeout(_) => break,
            dimpl::Output::Connected => events.connected = true,
            dimpl::Output::PeerCert(c) => events.peer_cert = Some(c.to_vec()),
            dimpl::Output::KeyingMaterial(km, profile) => {
                events.keying = Some((km.to_vec(), profile))
            }
            dimpl::Output::ApplicationData(data) => events.data.push(data.to_vec()),
            dimpl::Output::CloseNotify => events.closed = true,
            _ => {}
        }
    }
}

/// Moves datagrams both ways until `done`, for at most 30 rounds.
fn exchange(
    ours: &mut DtlsEngine,
    theirs: &mut dimpl::Dtls,
    events: &mut DimplEvents,
    now: Instant,
    done: impl Fn(&DtlsEngine, &DimplEvents) -> bool,
) {
    for _ in 0..30 {
        theirs.handle_timeout(now).unwrap();
        let mut out = vec![];
        poll_dimpl(theirs, &mut out, events);
        for d in out {
            ours.handle_datagram(&d, now).unwrap();
        }
        while let Some(d) = ours.poll_datagram() {
            theirs.handle_packet(&d).unwrap();
        }
        let mut out = vec![];
        poll_dimpl(theirs, &mut out, events);
        for d in out {
            ours.handle_datagram(&d, now).unwrap();
        }
        if done(ours, events) {
            return;
        }
    }
    panic!(
        "no progress: ours established {}, dimpl connected {}",
        ours.is_established(),
        events.connected
    );
}

fn profile_of(p: dimpl::SrtpProfile) -> SrtpProfile {
    match p {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => SrtpProfile::Aes128CmSha1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => SrtpProfile::AeadAes128Gcm,
        dimpl::SrtpProfile::AEAD_AES_256_GCM => SrtpProfile::AeadAes256Gcm,
        other => panic!("unexpected profile {other:?}"),
    }
}

fn check_keying(ours: &DtlsEngine, events: &DimplEvents) {
    let (theirs, profile) = events.keying.clone().expect("dimpl exported keys");
    let profile = profile_of(profile);
    assert_eq!(ours.selected_srtp_profile(), Some(profile));
    let mine = ours
        .export_keying_material(b"EXTRACTOR-dtls_srtp", profile.keying_material_len(), None)
        .unwrap();
    assert_eq!(mine, theirs);
}

fn all_profiles() -> Vec<SrtpProfile> {
    vec![
        SrtpProfile::Aes128CmSha1_80,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm,
    ]
}

#[test]
fn ferrossl_client_to_dimpl_server() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let mut theirs = dimpl_engine(&pki.server_ecdsa, false, now);
    let params = DtlsParams {
        srtp_profiles: all_profiles(),
        ..Default::default()
    };
    // dimpl's server asks for a client certificate and sends a cookie first.
    let mut ours = DtlsEngine::new(
        client_config_with_cert(&pki, &pki.client_ecdsa),
        Role::Client,
        params,
        now,
    )
    .unwrap();
    let mut events = DimplEvents::default();
    exchange(&mut ours, &mut theirs, &mut events, now, |o, e| {
        o.is_established() && e.connected
    });
    assert_eq!(ours.verify_outcome().unwrap().result, X509_V_OK);
    assert_eq!(
        events.peer_cert.as_deref(),
        Some(&pki.client_ecdsa.cert_der[..])
    );
    check_keying(&ours, &events);
    ours.send(b"to dimpl").unwrap();
    theirs.send_application_data(b"to ferrossl").unwrap();
    exchange(&mut ours, &mut theirs, &mut events, now, |_, e| {
        !e.data.is_empty()
    });
    assert_eq!(events.data, [b"to dimpl".to_vec()]);
    assert_eq!(ours.recv().unwrap(), b"to ferrossl");
    ours.close().unwrap();
    exchange(&mut ours, &mut theirs, &mut events, now, |_, e| e.closed);
}

#[test]
fn dimpl_client_to_ferrossl_server_with_our_cookie() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let mut theirs = dimpl_engine(&pki.client_ecdsa, true, now);
    let params = DtlsParams {
        srtp_profiles: vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80],
        cookies: Some(Arc::new(HmacCookies::new(Duration::from_secs(30)))),
        ..Default::default()
    };
    let mut ours = DtlsEngine::new(
        server_config_verifying(
            &pki.server_ecdsa,
            &pki,
            VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        ),
        Role::Server,
        params,
        now,
    )
    .unwrap();
    let mut events = DimplEvents::default();
    exchange(&mut ours, &mut theirs, &mut events, now, |o, e| {
        o.is_established() && e.connected
    });
    assert_eq!(
        ours.peer_certificates()[0].subject().get("CN"),
        Some("ferrossl test client")
    );
    assert_eq!(ours.verify_outcome().unwrap().result, X509_V_OK);
    assert_eq!(
        ours.selected_srtp_profile(),
        Some(SrtpProfile::AeadAes128Gcm)
    );
    check_keying(&ours, &events);
    theirs.send_application_data(b"to ferrossl").unwrap();
    exchange(&mut ours, &mut theirs, &mut events, now, |o, _| {
        o.stats().datagrams_sent > 0
    });
    let mut got = None;
    for _ in 0..5 {
        if let Some(d) = ours.recv() {
            got = Some(d);
            break;
        }
        exchange(&mut ours, &mut theirs, &mut events, now, |_, _| true);
    }
    assert_eq!(got.unwrap(), b"to ferrossl");
    ours.send(b"to dimpl").unwrap();
    exchange(&mut ours, &mut theirs, &mut events, now, |_, e| {
        !e.data.is_empty()
    });
    assert_eq!(events.data, [b"to dimpl".to_vec()]);
}
