//! Handshakes and data over simulated links that lose, duplicate and reorder datagrams
//! (`ferrossl::dtls::testing`), on a fake clock, many seeds each.

mod dtls_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dtls_common::*;
use ferrossl::constants::*;
use ferrossl::dtls::testing::{LinkConditions, Simulation};
use ferrossl::dtls::DtlsParams;
use ferrossl_testkit::pki::TestPki;

const MESSAGES: u64 = 30;

struct Outcome {
    retransmissions: u32,
    simulated: Duration,
    lost: u64,
    sent: u64,
}

fn run(pki: &TestPki, conditions: LinkConditions, seed: u64) -> Outcome {
    run_version(pki, conditions, seed, false)
}

/// One run over `conditions`, in DTLS 1.3 when `v13`.
fn run_version(pki: &TestPki, conditions: LinkConditions, seed: u64, v13: bool) -> Outcome {
    let start = Instant::now();
    let version = |config| if v13 { config } else { dtls12(config) };
    // Small datagrams make the RSA flights fragment; client authentication makes them longer.
    let params = DtlsParams {
        mtu: 400,
        ..Default::default()
    };
    let (c, s) = pair(
        version(client_config_with_cert(pki, &pki.client_ecdsa)),
        version(server_config_verifying(
            &pki.server_rsa,
            pki,
            VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        )),
        params.clone(),
        params,
        start,
    );
    let expected_version = if v13 {
        DTLS1_3_VERSION
    } else {
        DTLS1_2_VERSION
    };
    let mut sim = Simulation::new(c, s, conditions, seed, start);
    let limit = Duration::from_secs(600);
    // The server finishes first and talks at once; its data may overtake its Finished.
    sim.run_until(limit, |s| s.server.engine.is_established())
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    for i in 1..=MESSAGES / 2 {
        sim.send_application(false, format!("s{i}").as_bytes(), 1000 + i)
            .unwrap();
    }
    sim.handshake(limit)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    assert_eq!(sim.client.engine.protocol_version(), Some(expected_version));
    let simulated = sim.now - start;
    for i in 1..=MESSAGES {
        sim.send_application(true, format!("c{i}").as_bytes(), i)
            .unwrap();
        if i > MESSAGES / 2 {
            sim.send_application(false, format!("s{i}").as_bytes(), 1000 + i)
                .unwrap();
        }
        sim.step();
    }
    sim.settle(limit).unwrap();
    // Every datagram the link delivered arrived once; the others did not arrive.
    for (sender, receiver, prefix, base) in [
        (&sim.client, &sim.server, "c", 0),
        (&sim.server, &sim.client, "s", 1000),
    ] {
        let delivered: BTreeSet<String> = sender
            .delivered_tags
            .iter()
            .map(|t| format!("{prefix}{}", t - base))
            .collect();
        let received: Vec<String> = receiver
            .received
            .iter()
            .map(|d| String::from_utf8(d.clone()).unwrap())
            .collect();
        let unique: BTreeSet<String> = received.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            received.len(),
            "seed {seed}: a datagram twice"
        );
        assert_eq!(unique, delivered, "seed {seed}: delivered vs received");
    }
    assert_eq!(
        sim.client
            .engine
            .export_keying_material(b"EXPERIMENTAL-loss", 32, None)
            .unwrap(),
        sim.server
            .engine
            .export_keying_material(b"EXPERIMENTAL-loss", 32, None)
            .unwrap()
    );
    let links = [sim.client.link.stats(), sim.server.link.stats()];
    Outcome {
        retransmissions: sim.client.engine.stats().retransmissions
            + sim.server.engine.stats().retransmissions,
        simulated,
        lost: links.iter().map(|l| l.lost).sum(),
        sent: links.iter().map(|l| l.sent).sum(),
    }
}

fn sweep(loss: f64, seeds: u64, max_retransmissions: u32) {
    sweep_version(loss, seeds, max_retransmissions, false)
}

fn sweep_version(loss: f64, seeds: u64, max_retransmissions: u32, v13: bool) {
    let pki = TestPki::generate();
    let mut worst = 0;
    let mut total = 0;
    let mut slowest = Duration::ZERO;
    let (mut lost, mut sent) = (0, 0);
    for seed in 0..seeds {
        let o = run_version(&pki, LinkConditions::lossy(loss), seed, v13);
        assert!(
            o.retransmissions <= max_retransmissions,
            "seed {seed}: {} retransmissions at {loss} loss",
            o.retransmissions
        );
        worst = worst.max(o.retransmissions);
        total += o.retransmissions;
        slowest = slowest.max(o.simulated);
        lost += o.lost;
        sent += o.sent;
    }
    eprintln!(
        "{} {loss} loss, {seeds} seeds: {lost} of {sent} datagrams lost; {total} retransmissions \
         in all, at most {worst} in one handshake; slowest handshake {slowest:?} of simulated \
         time",
        if v13 { "DTLS 1.3" } else { "DTLS 1.2" }
    );
}

#[test]
fn perfect_link_needs_no_retransmission() {
    let pki = TestPki::generate();
    let o = run(&pki, LinkConditions::perfect(), 1);
    assert_eq!(o.retransmissions, 0);
}

#[test]
fn ten_percent_loss_with_duplication_and_reordering() {
    sweep(0.10, 40, 12);
}

#[test]
fn thirty_percent_loss_with_duplication_and_reordering() {
    sweep(0.30, 40, 30);
}

#[test]
fn dtls13_perfect_link_needs_no_retransmission() {
    let pki = TestPki::generate();
    let o = run_version(&pki, LinkConditions::perfect(), 1, true);
    assert_eq!(o.retransmissions, 0);
}

#[test]
fn dtls13_ten_percent_loss_with_duplication_and_reordering() {
    sweep_version(0.10, 40, 12, true);
}

#[test]
fn dtls13_thirty_percent_loss_with_duplication_and_reordering() {
    sweep_version(0.30, 40, 30, true);
}

/// RFC 9147 §7.1: the server acknowledges the records of the client's flight it received,
/// and the client's retransmission then carries only the record that was lost.
#[test]
fn dtls13_an_ack_stops_retransmission_of_what_it_names() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let params = DtlsParams {
        mtu: 300,
        ..Default::default()
    };
    let (mut c, mut s) = pair(
        client_config_with_cert(&pki, &pki.client_rsa),
        server_config_verifying(&pki.server_ecdsa, &pki, VERIFY_PEER),
        params.clone(),
        params,
        now,
    );
    // ClientHello, HelloRetryRequest, ClientHello, the server's flight: the client's flight
    // (Certificate, CertificateVerify, Finished) is queued.
    for _ in 0..2 {
        transfer(&mut c, &mut s, now).unwrap();
        transfer(&mut s, &mut c, now).unwrap();
    }
    assert!(c.is_established() && !s.is_established());
    let flight: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_datagram()).collect();
    assert!(
        flight.len() >= 3,
        "a fragmented client flight: {}",
        flight.len()
    );
    // The first datagram is lost; the server acknowledges the rest after a quarter of the
    // retransmission timeout.
    for d in &flight[1..] {
        s.handle_datagram(d, now).unwrap();
    }
    assert!(!s.is_established());
    let ack_time = s.next_timeout().expect("an ACK timer");
    assert!(ack_time < now + Duration::from_secs(1));
    s.handle_timeout(ack_time).unwrap();
    let ack = s.poll_datagram().expect("an ACK");
    c.handle_datagram(&ack, ack_time).unwrap();
    let deadline = c.next_timeout().unwrap();
    c.handle_timeout(deadline).unwrap();
    let again: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_datagram()).collect();
    assert_eq!(again.len(), 1, "only the unacknowledged records");
    assert!(again[0].len() <= flight[0].len());
    s.handle_datagram(&again[0], deadline).unwrap();
    assert!(s.is_established());
    // The server acknowledges the whole flight: the client stops its timer.
    transfer(&mut s, &mut c, deadline).unwrap();
    assert_eq!(c.next_timeout(), None);
}

#[test]
fn lost_final_flight_is_sent_again_when_the_client_retransmits() {
    let pki = TestPki::generate();
    let now = Instant::now();
    // DTLS 1.2, where the server's flight is its last (in 1.3 the client's is, and ACKs
    // replace the answer to a retransmission: see the ACK test above).
    let (mut c, mut s) = pair_with_default_params(
        dtls12(client_config(&pki)),
        server_config(&pki.server_ecdsa),
        now,
    );
    transfer(&mut c, &mut s, now).unwrap();
    transfer(&mut s, &mut c, now).unwrap();
    transfer(&mut c, &mut s, now).unwrap();
    assert!(s.is_established());
    assert!(s.next_timeout().is_none(), "the last flight has no timer");
    // The server's ChangeCipherSpec and Finished are lost.
    while s.poll_datagram().is_some() {}
    let deadline = c.next_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(1));
    c.handle_timeout(deadline).unwrap();
    assert_eq!(
        c.next_timeout(),
        Some(deadline + Duration::from_secs(2)),
        "doubled"
    );
    transfer(&mut c, &mut s, deadline).unwrap();
    assert_eq!(s.stats().retransmissions, 1, "answered the retransmission");
    transfer(&mut s, &mut c, deadline).unwrap();
    assert!(c.is_established());
    assert!(c.next_timeout().is_none());
    // Data from the client tells the server its flight arrived: nothing is kept any more.
    c.send(b"done").unwrap();
    transfer(&mut c, &mut s, deadline).unwrap();
    assert_eq!(s.recv().unwrap(), b"done");
}

/// A client and an RSA server, both authenticating (long flights), that believe in 1200-byte
/// datagrams, over a path that loses every datagram longer than `path_mtu`; in DTLS 1.3
/// when `v13`.
fn over_narrow_path(pki: &TestPki, path_mtu: usize, v13: bool) -> Simulation {
    let start = Instant::now();
    let params = DtlsParams {
        retransmit: ferrossl::dtls::RetransmitConfig {
            max_retransmissions: 8,
            ..Default::default()
        },
        ..Default::default()
    };
    let client = client_config_with_cert(pki, &pki.client_rsa);
    let (c, s) = pair(
        if v13 { client } else { dtls12(client) },
        server_config_verifying(&pki.server_rsa, pki, VERIFY_PEER),
        params.clone(),
        params,
        start,
    );
    let conditions = LinkConditions {
        path_mtu: Some(path_mtu),
        ..LinkConditions::perfect()
    };
    Simulation::new(c, s, conditions, 7, start)
}

#[test]
fn unanswered_retransmissions_shrink_datagrams_until_the_path_takes_them() {
    let pki = TestPki::generate();
    for (path_mtu, v13) in [700, 400, 256]
        .into_iter()
        .flat_map(|m| [(m, false), (m, true)])
    {
        let mut sim = over_narrow_path(&pki, path_mtu, v13);
        sim.handshake(Duration::from_secs(900))
            .unwrap_or_else(|e| panic!("path MTU {path_mtu}, DTLS 1.3 {v13}: {e}"));
        assert!(sim.client.link.stats().lost + sim.server.link.stats().lost > 0);
        // Application data keeps the configured MTU.
        assert!(sim.client.engine.cleartext_mtu() > 1000);
        sim.send_application(true, b"through the narrow path", 1)
            .unwrap();
        sim.settle(Duration::from_secs(900)).unwrap();
        assert_eq!(sim.server.received, [b"through the narrow path".to_vec()]);
    }
}

#[test]
fn the_back_off_stops_at_its_floor() {
    let pki = TestPki::generate();
    // Below the 256-byte floor the server's certificate never gets through.
    let mut sim = over_narrow_path(&pki, 200, false);
    assert!(sim.handshake(Duration::from_secs(3600)).is_err());
    let errors = [&sim.client.error, &sim.server.error];
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, Some(ferrossl::dtls::DtlsError::Timeout { .. }))),
        "{errors:?}"
    );
}

/// Records that overtake the ServerHello (reordering, or a lost ServerHello sent again) are
/// kept until it brings their keys: the client finishes as soon as the ServerHello arrives,
/// without waiting for the rest of the flight again.
#[test]
fn dtls13_records_before_the_server_hello_wait_for_its_keys() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let params = DtlsParams {
        mtu: 400,
        ..Default::default()
    };
    let client = client_context(&pki);
    client.set_groups(&["X25519"]).unwrap();
    let (mut c, mut s) = pair(
        client.config(),
        server_config(&pki.server_rsa),
        params.clone(),
        params,
        now,
    );
    transfer(&mut c, &mut s, now).unwrap();
    let mut flight = Vec::new();
    while let Some(d) = s.poll_datagram() {
        flight.push(d);
    }
    assert!(flight.len() > 2, "a flight of several datagrams");
    // Everything but the first datagram (the ServerHello's) first, then that one.
    for d in flight[1..].iter().chain(&flight[..1]) {
        c.handle_datagram(d, now).unwrap();
    }
    assert!(c.is_established(), "no retransmission was needed");
    assert_eq!(c.protocol_version(), Some(DTLS1_3_VERSION));
    transfer(&mut c, &mut s, now).unwrap();
    assert!(s.is_established());
}
