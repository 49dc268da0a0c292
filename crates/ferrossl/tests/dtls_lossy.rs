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
    let start = Instant::now();
    // Small datagrams make the RSA flights fragment; client authentication makes them longer.
    let params = DtlsParams {
        mtu: 400,
        ..Default::default()
    };
    let (c, s) = pair(
        client_config_with_cert(pki, &pki.client_ecdsa),
        server_config_verifying(
            &pki.server_rsa,
            pki,
            VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        ),
        params.clone(),
        params,
        start,
    );
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
    let pki = TestPki::generate();
    let mut worst = 0;
    let mut total = 0;
    let mut slowest = Duration::ZERO;
    let (mut lost, mut sent) = (0, 0);
    for seed in 0..seeds {
        let o = run(&pki, LinkConditions::lossy(loss), seed);
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
        "{loss} loss, {seeds} seeds: {lost} of {sent} datagrams lost; {total} retransmissions \
         in all, at most {worst} in one handshake; slowest handshake {slowest:?} of simulated \
         time"
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
fn lost_final_flight_is_sent_again_when_the_client_retransmits() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s) =
        pair_with_default_params(client_config(&pki), server_config(&pki.server_ecdsa), now);
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
/// datagrams, over a path that loses every datagram longer than `path_mtu`.
fn over_narrow_path(pki: &TestPki, path_mtu: usize) -> Simulation {
    let start = Instant::now();
    let params = DtlsParams {
        retransmit: ferrossl::dtls::RetransmitConfig {
            max_retransmissions: 8,
            ..Default::default()
        },
        ..Default::default()
    };
    let (c, s) = pair(
        client_config_with_cert(pki, &pki.client_rsa),
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
    for path_mtu in [700, 400, 256] {
        let mut sim = over_narrow_path(&pki, path_mtu);
        sim.handshake(Duration::from_secs(900))
            .unwrap_or_else(|e| panic!("path MTU {path_mtu}: {e}"));
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
    let mut sim = over_narrow_path(&pki, 200);
    assert!(sim.handshake(Duration::from_secs(3600)).is_err());
    let errors = [&sim.client.error, &sim.server.error];
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, Some(ferrossl::dtls::DtlsError::Timeout { .. }))),
        "{errors:?}"
    );
}
