//! The state-machine bug classes DTLS fuzzing found in other stacks (USENIX Security 2020 and
//! follow-ups), replayed against ferrossl: each forged or misplaced message is rejected or
//! ignored as RFC 6347 says, and the amplification limit of the cookie exchange holds. The
//! records here are DTLS 1.2's, so every client is held to it (DTLS 1.3's cases are unit tests
//! of `dtls::engine13`).

mod dtls_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::*;
use ferrossl::config::Role;
use ferrossl::constants::*;
use ferrossl::dtls::codec::message::Message;
use ferrossl::dtls::codec::record::{
    handshake_fragments, records, HandshakeHeader, RecordHeader, DTLS12,
};
use ferrossl::dtls::{DtlsEngine, DtlsError, DtlsParams, HmacCookies};
use ferrossl::rustls::{AlertDescription, ContentType, HandshakeType};
use ferrossl_testkit::pki::TestPki;

/// One record as its own datagram.
#[derive(Clone)]
struct Rec {
    header: RecordHeader,
    body: Vec<u8>,
}

impl Rec {
    fn datagram(&self) -> Vec<u8> {
        let mut out = vec![];
        RecordHeader {
            length: self.body.len() as u16,
            ..self.header
        }
        .encode(&mut out);
        out.extend_from_slice(&self.body);
        out
    }

    /// The type of the first handshake fragment of a plaintext handshake record.
    fn handshake_type(&self) -> Option<HandshakeType> {
        if self.header.content_type != ContentType::Handshake || self.header.epoch != 0 {
            return None;
        }
        handshake_fragments(&self.body)
            .next()?
            .ok()
            .map(|(h, _)| h.msg_type)
    }
}

/// Everything `from` has queued, split into single records.
fn drain(from: &mut DtlsEngine) -> Vec<Rec> {
    let mut out = vec![];
    while let Some(d) = from.poll_datagram() {
        for (header, body) in records(&d) {
            out.push(Rec {
                header,
                body: body.to_vec(),
            });
        }
    }
    out
}

fn deliver(to: &mut DtlsEngine, recs: &[Rec], now: Instant) -> Result<(), DtlsError> {
    recs.iter()
        .try_for_each(|r| to.handle_datagram(&r.datagram(), now))
}

/// A plaintext (epoch 0) handshake message as one record.
fn plaintext(message: &Message, message_seq: u16, record_seq: u64) -> Rec {
    let mut body = vec![];
    message.encode(&mut body);
    let mut fragment = vec![];
    HandshakeHeader {
        msg_type: message.msg_type(),
        length: body.len() as u32,
        message_seq,
        fragment_offset: 0,
        fragment_length: body.len() as u32,
    }
    .encode(&mut fragment);
    fragment.extend_from_slice(&body);
    Rec {
        header: RecordHeader {
            content_type: ContentType::Handshake,
            version: DTLS12,
            epoch: 0,
            sequence: record_seq,
            length: 0,
        },
        body: fragment,
    }
}

/// A plaintext ChangeCipherSpec record.
fn plaintext_ccs(record_seq: u64) -> Rec {
    Rec {
        header: RecordHeader {
            content_type: ContentType::ChangeCipherSpec,
            version: DTLS12,
            epoch: 0,
            sequence: record_seq,
            length: 0,
        },
        body: vec![1],
    }
}

/// A client with a certificate and a server that requires one, run up to the client's second
/// flight, which is returned undelivered, split into records.
fn up_to_client_flight(pki: &TestPki, now: Instant) -> (DtlsEngine, DtlsEngine, Vec<Rec>) {
    let (mut c, mut s) = pair_with_default_params(
        dtls12(client_config_with_cert(pki, &pki.client_ecdsa)),
        server_config_verifying(
            &pki.server_ecdsa,
            pki,
            VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT,
        ),
        now,
    );
    transfer(&mut c, &mut s, now).unwrap();
    transfer(&mut s, &mut c, now).unwrap();
    let flight = drain(&mut c);
    let kinds: Vec<_> = flight
        .iter()
        .map(|r| (r.header.content_type, r.header.epoch, r.handshake_type()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ContentType::Handshake, 0, Some(HandshakeType::Certificate)),
            (
                ContentType::Handshake,
                0,
                Some(HandshakeType::ClientKeyExchange)
            ),
            (
                ContentType::Handshake,
                0,
                Some(HandshakeType::CertificateVerify)
            ),
            (ContentType::ChangeCipherSpec, 0, None),
            (ContentType::Handshake, 1, None),
        ]
    );
    (c, s, flight)
}

#[test]
fn finished_before_change_cipher_spec_waits_for_it() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s, flight) = up_to_client_flight(&pki, now);
    // Finished (epoch 1) overtakes the ChangeCipherSpec: held, not processed.
    deliver(&mut s, &flight[..3], now).unwrap();
    deliver(&mut s, &flight[4..5], now).unwrap();
    assert!(s.is_handshaking());
    assert!(s.poll_datagram().is_none(), "no Finished of ours yet");
    deliver(&mut s, &flight[3..4], now).unwrap();
    assert!(
        s.is_established(),
        "the held Finished counts once the keys switch"
    );
    transfer(&mut s, &mut c, now).unwrap();
    assert!(c.is_established());
}

#[test]
fn plaintext_finished_before_change_cipher_spec_is_fatal() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (_c, mut s, flight) = up_to_client_flight(&pki, now);
    deliver(&mut s, &flight[..3], now).unwrap();
    // The Finished's place (message_seq) but in the clear, before any ChangeCipherSpec.
    let fake = plaintext(&Message::Finished(vec![0; 12]), 4, 100);
    let err = deliver(&mut s, &[fake], now).unwrap_err();
    assert!(
        matches!(
            err,
            DtlsError::UnexpectedMessage {
                expected: "ChangeCipherSpec",
                ..
            }
        ),
        "{err:?}"
    );
    let alert = drain(&mut s).pop().unwrap();
    assert_eq!(alert.header.content_type, ContentType::Alert);
    assert_eq!(
        alert.body,
        [2, u8::from(AlertDescription::UnexpectedMessage)]
    );
}

#[test]
fn early_finished_is_fatal() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, _s) = pair_with_default_params(
        dtls12(client_config(&pki)),
        server_config(&pki.server_ecdsa),
        now,
    );
    drain(&mut c);
    // Finished where the ServerHello belongs.
    let err = deliver(
        &mut c,
        &[plaintext(&Message::Finished(vec![0; 12]), 0, 0)],
        now,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected Finished while expecting ServerHello or HelloVerifyRequest"
    );
    assert_eq!(
        drain(&mut c)[0].body,
        [2, u8::from(AlertDescription::UnexpectedMessage)]
    );
    // Once failed, always failed.
    assert!(c.handle_datagram(&[22], now).is_err());
    assert!(!c.is_handshaking());
}

#[test]
fn repeated_change_cipher_spec_is_ignored() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s, flight) = up_to_client_flight(&pki, now);
    // A ChangeCipherSpec far too early (before Certificate) changes nothing.
    deliver(&mut s, &[plaintext_ccs(50)], now).unwrap();
    deliver(&mut s, &flight[..4], now).unwrap();
    // Two more, with fresh sequence numbers, after the switch: old epoch, ignored.
    deliver(&mut s, &[plaintext_ccs(51), plaintext_ccs(52)], now).unwrap();
    deliver(&mut s, &flight[4..], now).unwrap();
    assert!(s.is_established());
    transfer(&mut s, &mut c, now).unwrap();
    assert!(c.is_established());
    c.send(b"still fine").unwrap();
    transfer(&mut c, &mut s, now).unwrap();
    assert_eq!(s.recv().unwrap(), b"still fine");
}

#[test]
fn application_data_before_the_handshake_ends_is_not_delivered_early() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s, flight) = up_to_client_flight(&pki, now);
    // Application data in the clear is never accepted.
    let clear = Rec {
        header: RecordHeader {
            content_type: ContentType::ApplicationData,
            version: DTLS12,
            epoch: 0,
            sequence: 77,
            length: 0,
        },
        body: b"forged".to_vec(),
    };
    deliver(&mut s, std::slice::from_ref(&clear), now).unwrap();
    deliver(&mut c, &[clear], now).unwrap();
    deliver(&mut s, &flight, now).unwrap();
    assert!(s.is_established());
    // The server's data overtakes its ChangeCipherSpec and Finished.
    let server_flight = drain(&mut s);
    s.send(b"early").unwrap();
    let early = drain(&mut s);
    deliver(&mut c, &early, now).unwrap();
    assert!(c.recv().is_none() && c.is_handshaking());
    deliver(&mut c, &server_flight, now).unwrap();
    assert!(c.is_established());
    assert_eq!(c.recv().unwrap(), b"early", "released after the Finished");
    assert!(c.recv().is_none() && s.recv().is_none());
    assert!(s.stats().records_discarded >= 1 && c.stats().records_discarded >= 1);
}

#[test]
fn client_certificate_without_certificate_verify_is_not_accepted() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (_c, mut s, flight) = up_to_client_flight(&pki, now);
    // Everything but CertificateVerify.
    let without: Vec<Rec> = flight
        .iter()
        .filter(|r| r.handshake_type() != Some(HandshakeType::CertificateVerify))
        .cloned()
        .collect();
    deliver(&mut s, &without, now).unwrap();
    assert!(
        s.is_handshaking(),
        "no authentication without proof of the key"
    );
    assert!(s.poll_datagram().is_none());
    // A Finished in CertificateVerify's place is refused outright.
    let err = deliver(
        &mut s,
        &[plaintext(&Message::Finished(vec![0; 12]), 3, 90)],
        now,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            DtlsError::UnexpectedMessage {
                expected: "CertificateVerify",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn client_certificate_without_certificate_verify_times_out() {
    let pki = TestPki::generate();
    let mut now = Instant::now();
    let (_c, mut s, flight) = up_to_client_flight(&pki, now);
    let without: Vec<Rec> = flight
        .iter()
        .filter(|r| r.handshake_type() != Some(HandshakeType::CertificateVerify))
        .cloned()
        .collect();
    deliver(&mut s, &without, now).unwrap();
    // The server keeps asking (retransmitting its flight) and finally gives up.
    let mut result = Ok(());
    for _ in 0..20 {
        now = s.next_timeout().unwrap();
        result = s.handle_timeout(now);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(DtlsError::Timeout {
            retransmissions: 12
        })
    );
    assert!(s.next_timeout().is_none());
}

#[test]
fn records_after_close_notify_are_ignored() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let (mut c, mut s) = pair_with_default_params(
        dtls12(client_config(&pki)),
        server_config(&pki.server_ecdsa),
        now,
    );
    handshake(&mut c, &mut s, now).unwrap();
    c.send(b"after").unwrap();
    let late = drain(&mut c);
    c.close().unwrap();
    let close = drain(&mut c);
    deliver(&mut s, &close, now).unwrap();
    assert!(s.peer_closed());
    deliver(&mut s, &late, now).unwrap();
    assert!(s.recv().is_none(), "data after close_notify is dropped");
    // The server may still answer with its own close_notify.
    s.close().unwrap();
    deliver(&mut c, &drain(&mut s), now).unwrap();
    assert!(c.peer_closed());
}

fn cookie_server(pki: &TestPki) -> DtlsEngine {
    let params = DtlsParams {
        cookies: Some(Arc::new(HmacCookies::new(Duration::from_secs(60)))),
        peer_addr: Some("127.0.0.1:9999".parse().unwrap()),
        ..Default::default()
    };
    DtlsEngine::new(
        server_config(&pki.server_ecdsa),
        Role::Server,
        params,
        Instant::now(),
    )
    .unwrap()
}

#[test]
fn before_the_cookie_the_server_sends_one_small_datagram_and_keeps_nothing() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let mut s = cookie_server(&pki);
    let mut c = DtlsEngine::new(
        dtls12(client_config(&pki)),
        Role::Client,
        DtlsParams::default(),
        now,
    )
    .unwrap();
    let hello = c.poll_datagram().unwrap();
    for _ in 0..3 {
        s.handle_datagram(&hello, now).unwrap();
        let answer = s.poll_datagram().expect("a HelloVerifyRequest");
        assert!(s.poll_datagram().is_none(), "exactly one datagram");
        assert!(
            answer.len() <= hello.len(),
            "{} > {}",
            answer.len(),
            hello.len()
        );
        assert!(s.next_timeout().is_none(), "no retransmission state");
        assert!(s.is_handshaking() && s.cipher().is_none());
    }
    // Junk and fragments get nothing at all.
    for junk in [&b"\x16\xfe\xfd"[..], &hello[..hello.len() - 1], &[0u8; 300]] {
        s.handle_datagram(junk, now).unwrap();
        assert!(s.poll_datagram().is_none());
    }
    // A wrong cookie gets a fresh challenge, not a handshake.
    s.handle_datagram(&hello, now).unwrap();
    let hvr = s.poll_datagram().unwrap();
    c.handle_datagram(&hvr, now).unwrap();
    let mut with_cookie = c.poll_datagram().unwrap();
    let cookie_at = 13 + 12 + 2 + 32 + 1 + 1; // record, handshake, version, random, sid, len
    with_cookie[cookie_at] ^= 1;
    s.handle_datagram(&with_cookie, now).unwrap();
    let answer = s.poll_datagram().unwrap();
    assert_eq!(
        records(&answer).next().unwrap().1[0],
        u8::from(HandshakeType::HelloVerifyRequest)
    );
}

#[test]
fn retransmitted_hello_verify_request_changes_nothing() {
    let pki = TestPki::generate();
    let now = Instant::now();
    let mut s = cookie_server(&pki);
    let mut c = DtlsEngine::new(
        dtls12(client_config(&pki)),
        Role::Client,
        DtlsParams::default(),
        now,
    )
    .unwrap();
    let hello = c.poll_datagram().unwrap();
    s.handle_datagram(&hello, now).unwrap();
    let hvr = s.poll_datagram().unwrap();
    c.handle_datagram(&hvr, now).unwrap();
    let second_hello = c.poll_datagram().unwrap();
    assert!(c.poll_datagram().is_none());
    // The same HelloVerifyRequest again (a duplicate): dropped.
    c.handle_datagram(&hvr, now).unwrap();
    assert!(c.poll_datagram().is_none());
    // A retransmitted one (the server answering our first ClientHello's retransmission,
    // with its record number): the client only repeats its current flight.
    let first_hello_again = {
        let mut h = hello.clone();
        h[10] = 9; // a later record sequence number
        h
    };
    s.handle_datagram(&first_hello_again, now).unwrap();
    let hvr_again = s.poll_datagram().unwrap();
    c.handle_datagram(&hvr_again, now).unwrap();
    let repeated = c.poll_datagram().unwrap();
    assert!(c.poll_datagram().is_none(), "one flight, once");
    let body = |d: &[u8]| records(d).next().unwrap().1.to_vec();
    assert_eq!(
        body(&repeated),
        body(&second_hello),
        "same cookie, same hello"
    );
    // And the handshake goes on.
    s.handle_datagram(&second_hello, now).unwrap();
    handshake(&mut c, &mut s, now).unwrap();
    assert_eq!(c.verify_outcome().unwrap().result, X509_V_OK);
}

/// Flips, truncates and extends datagrams at random during handshakes: the engines may fail
/// (plaintext handshake messages are not authenticated in DTLS 1.2), but never panic, and a
/// failure is always reported, never a silent hang with a timer armed forever.
#[test]
fn mangled_datagrams_never_panic() {
    use ferrossl::dtls::testing::SimRng;
    let pki = TestPki::generate();
    let mut outcomes = [0usize; 2];
    for seed in 0..150u64 {
        let mut rng = SimRng::new(seed);
        let mut now = Instant::now();
        let cookies = seed % 2 == 0;
        let (mut c, mut s) = pair(
            dtls12(client_config_with_cert(&pki, &pki.client_rsa)),
            server_config_verifying(&pki.server_ecdsa, &pki, VERIFY_PEER),
            DtlsParams {
                mtu: 300,
                ..Default::default()
            },
            DtlsParams {
                cookies: cookies
                    .then(|| Arc::new(HmacCookies::new(Duration::from_secs(60))) as Arc<_>),
                ..Default::default()
            },
            now,
        );
        let mangle = |d: Vec<u8>, rng: &mut SimRng| -> Vec<u8> {
            let mut d = d;
            match rng.next_u64() % 4 {
                0 if !d.is_empty() => {
                    let i = (rng.next_u64() as usize) % d.len();
                    d[i] ^= 1 << (rng.next_u64() % 8);
                }
                1 => d.truncate((rng.next_u64() as usize) % (d.len() + 1)),
                2 => d.extend((0..rng.next_u64() % 40).map(|i| i as u8)),
                _ => {
                    let i = (rng.next_u64() as usize) % (d.len().max(1));
                    if i < d.len() {
                        d[i] = rng.next_u64() as u8;
                    }
                }
            }
            d
        };
        let mut settled = false;
        for _ in 0..200 {
            let pass = |from: &mut DtlsEngine, to: &mut DtlsEngine, rng: &mut SimRng| {
                while let Some(d) = from.poll_datagram() {
                    let d = if rng.chance(0.2) { mangle(d, rng) } else { d };
                    let _ = to.handle_datagram(&d, now);
                }
            };
            pass(&mut c, &mut s, &mut rng);
            pass(&mut s, &mut c, &mut rng);
            if (c.is_established() && s.is_established())
                || (c.error().is_some() && s.error().is_some())
            {
                settled = true;
                break;
            }
            let next = [c.next_timeout(), s.next_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) => {
                    now = now.max(t);
                    let _ = c.handle_timeout(now);
                    let _ = s.handle_timeout(now);
                }
                None => {
                    settled = true;
                    break;
                }
            }
        }
        assert!(
            settled,
            "seed {seed}: still retransmitting after 200 rounds"
        );
        let done = c.is_established() && s.is_established();
        outcomes[usize::from(done)] += 1;
        if !done {
            // A stalled handshake is always explained by a failure on one side.
            assert!(c.error().is_some() || s.error().is_some(), "seed {seed}");
        }
    }
    eprintln!(
        "mangled handshakes: {} failed, {} finished",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[1] > 0);
}
