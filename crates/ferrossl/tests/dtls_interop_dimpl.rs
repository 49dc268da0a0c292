//! DTLS 1.2 and 1.3 against dimpl 0.9 (an independent sans-IO DTLS stack on aws-lc-rs) in
//! process, both directions, with dimpl's cookie exchange, mutual certificates and DTLS-SRTP
//! keying material compared; DTLS 1.3 also with each suite and group, version sensing, and
//! over lossy links.

mod dtls_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::*;
use ferrossl::config::{Config, Role};
use ferrossl::constants::*;
use ferrossl::dtls::testing::{Link, LinkConditions};
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

/// One of dimpl's constructors: `Dtls::new_12`, `new_13`, or `new_auto`, which senses the
/// version (a server from the ClientHello, a client from the server's answer).
type NewDimpl = fn(Arc<dimpl::Config>, dimpl::DtlsCertificate, Instant) -> dimpl::Dtls;

fn dimpl_engine(id: &Identity, client: bool, now: Instant) -> dimpl::Dtls {
    dimpl_with(
        dimpl::Dtls::new_12,
        dimpl::Config::default(),
        id,
        client,
        now,
    )
}

fn dimpl_with(
    new: NewDimpl,
    config: dimpl::Config,
    id: &Identity,
    client: bool,
    now: Instant,
) -> dimpl::Dtls {
    let cert = dimpl::DtlsCertificate {
        certificate: id.cert_der.clone(),
        private_key: id.key_der.clone(),
    };
    let mut d = new(Arc::new(config), cert, now);
    d.set_active(client);
    d
}

/// Drains dimpl's output: datagrams to `out`, events to `events`; returns dimpl's next timer.
fn poll_dimpl(d: &mut dimpl::Dtls, out: &mut Vec<Vec<u8>>, events: &mut DimplEvents) -> Instant {
    let mut buf = vec![0u8; 2048];
    loop {
        match d.poll_output(&mut buf) {
            dimpl::Output::Packet(p) => out.push(p.to_vec()),
            dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
            dimpl::Output::Timeout(t) => return t,
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
    mut done: impl FnMut(&mut DtlsEngine, &DimplEvents) -> bool,
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

// --- DTLS 1.3 ---

/// `config` (which allows DTLS 1.3 as every configuration does) with `change` made to it.
fn dtls13_with(config: Arc<Config>, change: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut config = (*config).clone();
    change(&mut config);
    Arc::new(config)
}

/// Our client, which allows DTLS 1.2 and 1.3 (so it offers both in one ClientHello), with a
/// certificate (dimpl's server asks for one) and every SRTP profile.
fn client13(pki: &TestPki, change: impl FnOnce(&mut Config), now: Instant) -> DtlsEngine {
    let config = dtls13_with(client_config_with_cert(pki, &pki.client_ecdsa), change);
    let params = DtlsParams {
        srtp_profiles: all_profiles(),
        ..Default::default()
    };
    DtlsEngine::new(config, Role::Client, params, now).unwrap()
}

/// Our server, which accepts DTLS 1.2 and 1.3 and requires a client certificate; with
/// `cookies` it answers a first ClientHello with a HelloRetryRequest carrying a cookie.
fn server13(
    pki: &TestPki,
    cookies: bool,
    change: impl FnOnce(&mut Config),
    now: Instant,
) -> DtlsEngine {
    let config = dtls13_with(
        server_config_verifying(
            &pki.server_ecdsa,
            pki,
            VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        ),
        change,
    );
    let params = DtlsParams {
        srtp_profiles: vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80],
        cookies: cookies.then(|| Arc::new(HmacCookies::new(Duration::from_secs(30))) as _),
        ..Default::default()
    };
    DtlsEngine::new(config, Role::Server, params, now).unwrap()
}

/// The handshake over a perfect link.
fn connect(ours: &mut DtlsEngine, theirs: &mut dimpl::Dtls, now: Instant) -> DimplEvents {
    let mut events = DimplEvents::default();
    exchange(ours, theirs, &mut events, now, |o, e| {
        o.is_established() && e.connected
    });
    events
}

/// The ServerHello.random that makes it a HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Carries the first ClientHello to the server and checks that the server answers with a
/// HelloRetryRequest alone (it travels in the clear, before any key); delivers it.
fn expect_hello_retry(ours: &mut DtlsEngine, theirs: &mut dimpl::Dtls, now: Instant) {
    let mut events = DimplEvents::default();
    let mut answer = Vec::new();
    if ours.role() == Role::Client {
        let hello = ours.poll_datagram().unwrap();
        theirs.handle_timeout(now).unwrap();
        theirs.handle_packet(&hello).unwrap();
        poll_dimpl(theirs, &mut answer, &mut events);
    } else {
        let mut hello = Vec::new();
        theirs.handle_timeout(now).unwrap();
        poll_dimpl(theirs, &mut hello, &mut events);
        assert_eq!(hello.len(), 1, "one ClientHello datagram");
        ours.handle_datagram(&hello[0], now).unwrap();
        answer.extend(std::iter::from_fn(|| ours.poll_datagram()));
    }
    assert_eq!(answer.len(), 1, "one datagram answers the ClientHello");
    assert!(
        answer[0].windows(32).any(|w| w == HELLO_RETRY_RANDOM),
        "not a HelloRetryRequest"
    );
    if ours.role() == Role::Client {
        ours.handle_datagram(&answer[0], now).unwrap();
    } else {
        theirs.handle_packet(&answer[0]).unwrap();
    }
}

/// What every DTLS 1.3 handshake with dimpl shows: DTLS 1.3 on both ends, each end's
/// certificate received by the other (ours verified), the same DTLS-SRTP keys.
fn check13(ours: &DtlsEngine, theirs: &dimpl::Dtls, events: &DimplEvents, pki: &TestPki) {
    assert_eq!(ours.protocol_version(), Some(DTLS1_3_VERSION));
    assert_eq!(
        theirs.protocol_version().map(|v| i32::from(v.as_u16())),
        Some(DTLS1_3_VERSION)
    );
    let (mine, peer) = match ours.role() {
        Role::Client => (&pki.client_ecdsa, &pki.server_ecdsa),
        Role::Server => (&pki.server_ecdsa, &pki.client_ecdsa),
    };
    assert_eq!(ours.verify_outcome().unwrap().result, X509_V_OK);
    assert_eq!(ours.peer_certificates()[0].to_der(), &peer.cert_der[..]);
    assert_eq!(events.peer_cert.as_deref(), Some(&mine.cert_der[..]));
    check_keying(ours, events);
}

/// Sends `count` messages each way at once; each end gets the other's, in order.
fn talk(
    ours: &mut DtlsEngine,
    theirs: &mut dimpl::Dtls,
    events: &mut DimplEvents,
    now: Instant,
    count: usize,
) {
    events.data.clear();
    for i in 0..count {
        ours.send(format!("to dimpl {i}").as_bytes()).unwrap();
        theirs
            .send_application_data(format!("to ferrossl {i}").as_bytes())
            .unwrap();
    }
    let mut received = Vec::new();
    exchange(ours, theirs, events, now, |o, e| {
        received.extend(std::iter::from_fn(|| o.recv()));
        received.len() >= count && e.data.len() >= count
    });
    let expected = |to: &str| -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| format!("to {to} {i}").into_bytes())
            .collect()
    };
    assert_eq!(events.data, expected("dimpl"));
    assert_eq!(received, expected("ferrossl"));
}

#[test]
fn dtls13_ferrossl_client_to_dimpl_server() {
    let pki = TestPki::generate();
    let now = Instant::now();
    // dimpl's default server sends a HelloRetryRequest with a cookie and asks for a client
    // certificate.
    let mut theirs = dimpl_with(
        dimpl::Dtls::new_13,
        dimpl::Config::default(),
        &pki.server_ecdsa,
        false,
        now,
    );
    let mut ours = client13(&pki, |_| {}, now);
    expect_hello_retry(&mut ours, &mut theirs, now);
    let mut events = connect(&mut ours, &mut theirs, now);
    check13(&ours, &theirs, &events, &pki);
    // dimpl has no hybrid group: the retry keeps the X25519 share we sent first.
    assert_eq!(ours.group(), Some(rustls::NamedGroup::X25519));
    talk(&mut ours, &mut theirs, &mut events, now, 5);
    ours.close().unwrap();
    exchange(&mut ours, &mut theirs, &mut events, now, |_, e| e.closed);
}

#[test]
fn dtls13_dimpl_client_to_ferrossl_server_with_our_cookie() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let mut theirs = dimpl_with(
        dimpl::Dtls::new_13,
        dimpl::Config::default(),
        &pki.client_ecdsa,
        true,
        now,
    );
    let mut ours = server13(&pki, true, |_| {}, now);
    expect_hello_retry(&mut ours, &mut theirs, now);
    let mut events = connect(&mut ours, &mut theirs, now);
    check13(&ours, &theirs, &events, &pki);
    // Our first profile that dimpl offers.
    assert_eq!(
        ours.selected_srtp_profile(),
        Some(SrtpProfile::AeadAes128Gcm)
    );
    talk(&mut ours, &mut theirs, &mut events, now, 5);
    theirs.close().unwrap();
    exchange(&mut ours, &mut theirs, &mut events, now, |o, _| {
        o.peer_closed()
    });
}

/// Each DTLS 1.3 suite, chosen by our end alone, both ways: dimpl enables all three.
#[test]
fn dtls13_each_suite_both_ways() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let suites = [
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    for suite in suites {
        let only = |c: &mut Config| c.tls13_suites = Some(vec![suite]);
        for we_are_client in [true, false] {
            let (mut ours, id) = if we_are_client {
                (client13(&pki, only, now), &pki.server_ecdsa)
            } else {
                (server13(&pki, false, only, now), &pki.client_ecdsa)
            };
            let new: NewDimpl = dimpl::Dtls::new_13;
            let mut theirs = dimpl_with(new, dimpl::Config::default(), id, !we_are_client, now);
            let mut events = connect(&mut ours, &mut theirs, now);
            check13(&ours, &theirs, &events, &pki);
            assert_eq!(ours.cipher().map(|c| c.suite), Some(suite));
            talk(&mut ours, &mut theirs, &mut events, now, 2);
        }
    }
}

/// A group other than the share sent first, asked for by a HelloRetryRequest: dimpl's
/// server asks our client, our server asks dimpl's client (whose first share is X25519).
#[test]
fn dtls13_each_group_by_hello_retry_both_ways() {
    let pki = TestPki::generate();
    let now = Instant::now();
    for group in [rustls::NamedGroup::secp256r1, rustls::NamedGroup::secp384r1] {
        let dimpl_group = dimpl::NamedGroup::from_u16(u16::from(group));
        let config = dimpl::Config::builder()
            .kx_groups(&[dimpl_group])
            .build()
            .unwrap();
        let mut theirs = dimpl_with(dimpl::Dtls::new_13, config, &pki.server_ecdsa, false, now);
        let mut ours = client13(&pki, |_| {}, now);
        let mut events = connect(&mut ours, &mut theirs, now);
        check13(&ours, &theirs, &events, &pki);
        assert_eq!(ours.group(), Some(group));
        talk(&mut ours, &mut theirs, &mut events, now, 1);

        let new: NewDimpl = dimpl::Dtls::new_13;
        let mut theirs = dimpl_with(new, dimpl::Config::default(), &pki.client_ecdsa, true, now);
        let mut ours = server13(&pki, false, |c| c.groups = Some(vec![group]), now);
        let mut events = connect(&mut ours, &mut theirs, now);
        check13(&ours, &theirs, &events, &pki);
        assert_eq!(ours.group(), Some(group));
        talk(&mut ours, &mut theirs, &mut events, now, 1);
    }
}

/// dimpl's version-sensing ends (`Dtls::new_auto`) settle on DTLS 1.3 with ours, and its
/// client's hello, which a DTLS 1.2 server can also take, gets DTLS 1.2 from a server of ours
/// that does not allow 1.3.
#[test]
fn dimpl_version_sensing_ends_get_dtls13_from_ours() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let auto: NewDimpl = dimpl::Dtls::new_auto;
    let mut theirs = dimpl_with(
        auto,
        dimpl::Config::default(),
        &pki.server_ecdsa,
        false,
        now,
    );
    let mut ours = client13(&pki, |_| {}, now);
    let mut events = connect(&mut ours, &mut theirs, now);
    check13(&ours, &theirs, &events, &pki);
    talk(&mut ours, &mut theirs, &mut events, now, 2);

    let mut theirs = dimpl_with(auto, dimpl::Config::default(), &pki.client_ecdsa, true, now);
    let mut ours = server13(&pki, false, |_| {}, now);
    let mut events = connect(&mut ours, &mut theirs, now);
    check13(&ours, &theirs, &events, &pki);
    talk(&mut ours, &mut theirs, &mut events, now, 2);

    let mut theirs = dimpl_with(auto, dimpl::Config::default(), &pki.client_ecdsa, true, now);
    let mut ours = DtlsEngine::new(
        dtls12(server_config_verifying(
            &pki.server_ecdsa,
            &pki,
            VERIFY_PEER,
        )),
        Role::Server,
        DtlsParams::default(),
        now,
    )
    .unwrap();
    let mut events = connect(&mut ours, &mut theirs, now);
    check12(&ours, &theirs);
    talk(&mut ours, &mut theirs, &mut events, now, 2);
}

fn check12(ours: &DtlsEngine, theirs: &dimpl::Dtls) {
    assert_eq!(ours.protocol_version(), Some(DTLS1_2_VERSION));
    assert_eq!(
        theirs.protocol_version().map(|v| i32::from(v.as_u16())),
        Some(DTLS1_2_VERSION)
    );
}

/// Our client offering both versions goes on in DTLS 1.2 with dimpl's DTLS 1.2 server, after
/// its HelloVerifyRequest.
#[test]
fn dtls13_client_falls_back_to_dimpl_12_server() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let mut theirs = dimpl_engine(&pki.server_ecdsa, false, now);
    let mut ours = client13(&pki, |_| {}, now);
    let mut events = connect(&mut ours, &mut theirs, now);
    check12(&ours, &theirs);
    assert_eq!(ours.verify_outcome().unwrap().result, X509_V_OK);
    check_keying(&ours, &events);
    talk(&mut ours, &mut theirs, &mut events, now, 2);
}

/// The longest simulated time a handshake over lossy links may take.
const LOSSY_LIMIT: Duration = Duration::from_secs(300);

/// Runs the handshake over links that lose `loss` of the datagrams and duplicate and reorder
/// some (`LinkConditions::lossy`), on a fake clock that jumps to the next timer or arrival;
/// returns the simulated time it ended at and how many datagrams the links lost.
fn lossy_handshake(
    ours: &mut DtlsEngine,
    theirs: &mut dimpl::Dtls,
    events: &mut DimplEvents,
    loss: f64,
    seed: u64,
    start: Instant,
) -> (Instant, u64) {
    let mut to_dimpl = Link::new(LinkConditions::lossy(loss), seed);
    let mut to_ours = Link::new(LinkConditions::lossy(loss), !seed);
    let mut now = start;
    // Each round moves the clock on or handles something due: the count bounds a clock that
    // stops.
    for _ in 0..100_000 {
        assert!(
            now - start < LOSSY_LIMIT,
            "seed {seed}: no handshake within {LOSSY_LIMIT:?}"
        );
        let fail = |e: &dyn std::fmt::Display| panic!("seed {seed} at {:?}: {e}", now - start);
        // dimpl wants its clock set before it takes a datagram.
        theirs.handle_timeout(now).unwrap_or_else(|e| fail(&e));
        if ours.next_timeout().is_some_and(|t| t <= now) {
            ours.handle_timeout(now).unwrap_or_else(|e| fail(&e));
        }
        for (_, d) in to_dimpl.receive(now) {
            theirs.handle_packet(&d).unwrap_or_else(|e| fail(&e));
        }
        for (_, d) in to_ours.receive(now) {
            ours.handle_datagram(&d, now).unwrap_or_else(|e| fail(&e));
        }
        while let Some(d) = ours.poll_datagram() {
            to_dimpl.send(d, 0, now);
        }
        let mut out = Vec::new();
        let dimpl_timer = poll_dimpl(theirs, &mut out, events);
        for d in out {
            to_ours.send(d, 0, now);
        }
        if ours.is_established() && events.connected {
            return (now, to_dimpl.stats().lost + to_ours.stats().lost);
        }
        let next = [
            ours.next_timeout(),
            Some(dimpl_timer),
            to_dimpl.next_arrival(),
            to_ours.next_arrival(),
        ];
        // dimpl may leave its timer at the present (an ACK it finds nothing to put in once
        // due), which a real clock soon passes: the clock moves on by at least a millisecond.
        let next = next.into_iter().flatten().min().unwrap();
        now = next.max(now + Duration::from_millis(1));
    }
    panic!(
        "seed {seed}: the clock stopped at {:?}: ours due at {:?}",
        now - start,
        ours.next_timeout().map(|t| t - start)
    );
}

/// A pair for a run over lossy links: ours as client (or server, with cookies) and dimpl as
/// the other end, both sending datagrams of at most `mtu` bytes. dimpl gets a seeded
/// generator (its timer jitter, so the run is reproducible) and as many retransmissions as
/// ours allow, so that loss does not end its handshake first.
fn lossy_pair(
    pki: &TestPki,
    we_are_client: bool,
    seed: u64,
    mtu: usize,
    start: Instant,
) -> (DtlsEngine, dimpl::Dtls) {
    let (mut ours, id) = if we_are_client {
        (client13(pki, |_| {}, start), &pki.server_ecdsa)
    } else {
        (server13(pki, true, |_| {}, start), &pki.client_ecdsa)
    };
    ours.set_mtu(mtu).unwrap();
    let config = dimpl::Config::builder()
        .dangerously_set_rng_seed(seed)
        .mtu(mtu)
        .flight_retries(12)
        .handshake_timeout(LOSSY_LIMIT)
        .build()
        .unwrap();
    let new: NewDimpl = dimpl::Dtls::new_13;
    (ours, dimpl_with(new, config, id, !we_are_client, start))
}

/// The largest datagrams dimpl sends by default.
const DIMPL_MTU: usize = 1150;

/// Datagrams small enough that both ends' certificate flights are fragmented.
const SMALL_MTU: usize = 400;

/// Both directions over links that lose 30% of the datagrams, several seeds each, and
/// fragmented flights both ways with either end as the client; then the keys agree and data
/// flows. (dimpl takes a datagram whose first message it has seen for a duplicate, new
/// fragments in it included: our server's flight gets past that once unanswered
/// retransmissions cut its datagrams smaller.)
#[test]
fn dtls13_handshakes_over_lossy_links_both_ways() {
    let pki = TestPki::generate();
    let start = Instant::now();
    let (mut slowest, mut lost, mut retransmissions) = (Duration::ZERO, 0, 0);
    let cases = [
        (true, DIMPL_MTU),
        (false, DIMPL_MTU),
        (true, SMALL_MTU),
        (false, SMALL_MTU),
    ];
    for seed in 1..=8 {
        for (we_are_client, mtu) in cases {
            let (mut ours, mut theirs) = lossy_pair(&pki, we_are_client, seed, mtu, start);
            let mut events = DimplEvents::default();
            let (end, dropped) =
                lossy_handshake(&mut ours, &mut theirs, &mut events, 0.3, seed, start);
            slowest = slowest.max(end - start);
            lost += dropped;
            retransmissions += ours.stats().retransmissions;
            check13(&ours, &theirs, &events, &pki);
            talk(&mut ours, &mut theirs, &mut events, end, 3);
        }
    }
    // The links did lose handshake datagrams, and our end recovered some by retransmitting.
    assert!(lost > 0 && retransmissions > 0);
    eprintln!(
        "DTLS 1.3 with dimpl, 30% loss: {lost} datagrams lost, {retransmissions} retransmissions \
         of ours, slowest handshake {slowest:?} of simulated time"
    );
}
