//! DTLS 1.2 session resumption between ferrossl ends: by session ID (the server's cache) and
//! by ticket (RFC 5077), the abbreviated handshake's retransmissions, fallback to a full
//! handshake for unknown or expired sessions, and resumption over a lossy link. Clients are
//! held to DTLS 1.2 but where a case says otherwise (DTLS 1.3 resumption has unit tests in
//! `dtls::engine13`).

mod common;
mod dtls_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::{dtls12, handshake as engine_handshake, later, pair, server_config};
use ferrossl::config::Config;
use ferrossl::constants::*;
use ferrossl::dtls::codec::message::Message;
use ferrossl::dtls::codec::record::{handshake_fragments, records, HandshakeHeader, RecordHeader};
use ferrossl::dtls::testing::{LinkConditions, Simulation};
use ferrossl::dtls::{DtlsEngine, DtlsError, DtlsParams, WallClock};
use ferrossl::session::Session;
use ferrossl::{Connection, Context, Method};
use ferrossl_testkit::pki::TestPki;
use rustls_pki_types::UnixTime;

/// Client parameters that offer and fill `session`.
fn with_session(session: &Session) -> DtlsParams {
    DtlsParams {
        session: Some(session.clone()),
        ..Default::default()
    }
}

/// A wall clock `ahead` seconds in the future.
fn clock_ahead(ahead: u64) -> WallClock {
    Arc::new(move || {
        UnixTime::since_unix_epoch(Duration::from_secs(UnixTime::now().as_secs() + ahead))
    })
}

/// One handshake offering `session`; returns both engines after it completed.
fn connect(
    client: &Arc<Config>,
    server: &Arc<Config>,
    session: &Session,
    server_params: DtlsParams,
) -> (DtlsEngine, DtlsEngine) {
    let now = Instant::now();
    let (mut c, mut s) = pair(
        client.clone(),
        server.clone(),
        with_session(session),
        server_params,
        now,
    );
    engine_handshake(&mut c, &mut s, now).unwrap();
    (c, s)
}

/// Full handshake, then a resumption of its session; checks both and returns the session.
fn full_then_resumed(client: Arc<Config>, server: Arc<Config>) -> Session {
    let session = Session::default();
    let (c, s) = connect(&client, &server, &session, DtlsParams::default());
    assert!(!c.session_reused() && !s.session_reused());
    assert!(
        session.is_resumable(),
        "the full handshake fills the session"
    );
    let first_master = c.master_secret();

    let (mut c, mut s) = connect(&client, &server, &session, DtlsParams::default());
    assert!(c.session_reused() && s.session_reused());
    assert_eq!(
        c.master_secret(),
        first_master,
        "the session's master secret"
    );
    assert_eq!(
        c.peer_certificates()[0].subject().get("CN"),
        Some("localhost"),
        "the peer's chain comes with the session"
    );
    // New randoms give new keys (RFC 5246 §6.3).
    let exported = c
        .export_keying_material(b"EXPERIMENTAL-r", 32, None)
        .unwrap();
    assert_eq!(
        exported,
        s.export_keying_material(b"EXPERIMENTAL-r", 32, None)
            .unwrap()
    );
    c.send(b"resumed").unwrap();
    dtls_common::transfer(&mut c, &mut s, Instant::now()).unwrap();
    assert_eq!(s.recv().unwrap(), b"resumed");
    session
}

/// A client configuration held to DTLS 1.2.
fn client_config(pki: &TestPki) -> Arc<Config> {
    dtls12(dtls_common::client_config(pki))
}

fn server_context(pki: &TestPki) -> Context {
    let ctx = Context::new(Method::Dtls);
    ctx.use_certificate_chain_file(&pki.server_ecdsa.chain_path)
        .unwrap();
    ctx.use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    ctx
}

#[test]
fn resumes_by_session_id_from_the_server_cache() {
    let pki = TestPki::generate();
    let server = server_context(&pki);
    server.set_options(OP_NO_TICKET);
    server.set_session_id(b"dtls-id-test").unwrap();
    full_then_resumed(client_config(&pki), server.config());
}

#[test]
fn resumes_by_ticket_without_a_server_cache() {
    let pki = TestPki::generate();
    let server = server_context(&pki);
    server.set_session_cache_mode(SESS_CACHE_OFF);
    let session = full_then_resumed(client_config(&pki), server.config());
    // The ticket is not renewed (its lifetime stays as issued) and resumes again.
    let (c, s) = connect(
        &client_config(&pki),
        &server.config(),
        &session,
        DtlsParams::default(),
    );
    assert!(c.session_reused() && s.session_reused());
}

#[test]
fn the_session_id_context_separates_server_caches() {
    let pki = TestPki::generate();
    let a = server_context(&pki);
    a.set_options(OP_NO_TICKET);
    a.set_session_id(b"context a").unwrap();
    let b = server_context(&pki);
    b.set_options(OP_NO_TICKET);
    b.set_session_id(b"context b").unwrap();
    let client = client_config(&pki);
    let session = Session::default();
    connect(&client, &a.config(), &session, DtlsParams::default());
    let (c, s) = connect(&client, &b.config(), &session, DtlsParams::default());
    assert!(!c.session_reused() && !s.session_reused(), "unknown in b");
    // The full handshake with b replaced the session, which b now resumes.
    let (c, _) = connect(&client, &b.config(), &session, DtlsParams::default());
    assert!(c.session_reused());
}

#[test]
fn unknown_tickets_and_disabled_resumption_fall_back_to_full_handshakes() {
    let pki = TestPki::generate();
    let client = client_config(&pki);
    let issuer = server_context(&pki);
    issuer.set_session_cache_mode(SESS_CACHE_OFF);
    let session = Session::default();
    connect(&client, &issuer.config(), &session, DtlsParams::default());
    // Another context's ticket keys cannot open the ticket.
    let stranger = server_context(&pki);
    stranger.set_session_cache_mode(SESS_CACHE_OFF);
    let (c, s) = connect(&client, &stranger.config(), &session, DtlsParams::default());
    assert!(!c.session_reused() && !s.session_reused());
    // Neither tickets nor a cache: nothing to resume, and the handshake still completes.
    let nothing = server_context(&pki);
    nothing.set_session_cache_mode(SESS_CACHE_OFF);
    nothing.set_options(OP_NO_TICKET);
    let fresh = Session::default();
    connect(&client, &nothing.config(), &fresh, DtlsParams::default());
    let (c, s) = connect(&client, &nothing.config(), &fresh, DtlsParams::default());
    assert!(!c.session_reused() && !s.session_reused());
    // A client with OP_NO_TICKET offers no ticket: a cache-less server cannot resume.
    let no_ticket_client = Context::new(Method::Dtls);
    no_ticket_client.set_options(OP_NO_TICKET);
    no_ticket_client
        .set_max_proto_version(DTLS1_2_VERSION)
        .unwrap();
    let with_tickets = server_context(&pki);
    with_tickets.set_session_cache_mode(SESS_CACHE_OFF);
    let session = Session::default();
    let no_ticket = no_ticket_client.config();
    connect(
        &no_ticket,
        &with_tickets.config(),
        &session,
        DtlsParams::default(),
    );
    assert!(
        !session.is_resumable(),
        "no ID and no ticket: nothing to keep"
    );
}

#[test]
fn expired_sessions_are_not_resumed() {
    let pki = TestPki::generate();
    let server = server_context(&pki);
    server.set_timeout(60);
    let client_ctx = Context::new(Method::Dtls);
    client_ctx.set_timeout(60);
    let client = client_ctx.config();
    let session = Session::default();
    connect(&client, &server.config(), &session, DtlsParams::default());
    // The server's clock is past the session's lifetime: cache entry and ticket are stale.
    let late_server = DtlsParams {
        wall_clock: clock_ahead(120),
        ..Default::default()
    };
    let (c, s) = connect(&client, &server.config(), &session, late_server);
    assert!(!c.session_reused() && !s.session_reused());
    // The client's clock is past it: the session is not even offered.
    let late_client = DtlsParams {
        wall_clock: clock_ahead(120),
        ..with_session(&session)
    };
    let now = Instant::now();
    let (mut c, mut s) = pair(
        client.clone(),
        server.config(),
        late_client,
        DtlsParams::default(),
        now,
    );
    engine_handshake(&mut c, &mut s, now).unwrap();
    assert!(!c.session_reused() && !s.session_reused());
}

#[test]
fn lost_final_flights_of_the_abbreviated_handshake_are_resent() {
    let pki = TestPki::generate();
    let server = server_config(&pki.server_ecdsa);
    let client = client_config(&pki);
    let session = Session::default();
    connect(&client, &server, &session, DtlsParams::default());
    let now = Instant::now();
    let (mut c, mut s) = pair(
        client,
        server,
        with_session(&session),
        DtlsParams::default(),
        now,
    );
    // The server's flight (ServerHello, ChangeCipherSpec, Finished) is lost: the client's timer sends its ClientHello again, which makes the server resend.
    dtls_common::transfer(&mut c, &mut s, now).unwrap();
    while s.poll_datagram().is_some() {}
    let t1 = later(now, 2);
    c.handle_timeout(t1).unwrap();
    dtls_common::transfer(&mut c, &mut s, t1).unwrap();
    assert_eq!(s.stats().retransmissions, 1);
    dtls_common::transfer(&mut s, &mut c, t1).unwrap();
    assert!(c.is_established() && c.session_reused());
    // The client's ChangeCipherSpec and Finished are lost: the server's timer resends its
    // flight, whose Finished makes the client resend its own, untimed, last flight.
    while c.poll_datagram().is_some() {}
    assert!(
        c.next_timeout().is_none(),
        "the client's last flight has no timer"
    );
    let t2 = later(t1, 3);
    let resent_before = c.stats().retransmissions;
    s.handle_timeout(t2).unwrap();
    dtls_common::transfer(&mut s, &mut c, t2).unwrap();
    assert_eq!(c.stats().retransmissions, resent_before + 1);
    dtls_common::transfer(&mut c, &mut s, t2).unwrap();
    assert!(s.is_established() && s.session_reused());
    assert!(s.next_timeout().is_none());
}

#[test]
fn resumption_over_lossy_links() {
    let pki = TestPki::generate();
    let server = server_config(&pki.server_rsa);
    let client = client_config(&pki);
    let session = Session::default();
    connect(&client, &server, &session, DtlsParams::default());
    for seed in 0..20 {
        let start = Instant::now();
        let (c, s) = pair(
            client.clone(),
            server.clone(),
            with_session(&session),
            DtlsParams::default(),
            start,
        );
        let mut sim = Simulation::new(c, s, LinkConditions::lossy(0.3), seed, start);
        sim.handshake(Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(sim.client.engine.session_reused() && sim.server.engine.session_reused());
        sim.send_application(true, b"after resumption", 1).unwrap();
        sim.settle(Duration::from_secs(600)).unwrap();
        assert_eq!(
            sim.client
                .engine
                .export_keying_material(b"EXPERIMENTAL-loss", 16, None)
                .unwrap(),
            sim.server
                .engine
                .export_keying_material(b"EXPERIMENTAL-loss", 16, None)
                .unwrap(),
            "seed {seed}"
        );
    }
}

#[test]
fn connections_hand_out_and_resume_sessions() {
    for version in [DTLS1_2_VERSION, DTLS1_3_VERSION] {
        connections_hand_out_and_resume_sessions_in(version);
    }
}

fn connections_hand_out_and_resume_sessions_in(version: i32) {
    let pki = TestPki::generate();
    let server = server_context(&pki);
    server.set_options(OP_COOKIE_EXCHANGE);
    let client = Context::new(Method::Dtls);
    client.set_max_proto_version(version).unwrap();
    let (mut c, mut s) = common::pair(&client, &server);
    assert!(c.get_session().is_none(), "no session before the handshake");
    common::handshake(&mut c, &mut s).unwrap();
    assert_eq!(c.get_protocol_version(), version);
    assert!(!c.session_reused() && !s.session_reused());
    // DTLS 1.3's ticket comes after the handshake (RFC 8446 §4.6.1): read it first.
    assert_eq!(common::send_through(&mut s, &mut c, b"hello"), b"hello");
    let session = c.get_session().unwrap();
    assert!(session.is_resumable());

    let (mut c, mut s) = common::pair(&client, &server);
    c.set_session(&session).unwrap();
    common::handshake(&mut c, &mut s).unwrap();
    assert!(c.session_reused() && s.session_reused());
    assert_eq!(common::send_through(&mut c, &mut s, b"ping"), b"ping");
    let mut server_side = Connection::new(&server).unwrap();
    server_side.set_accept_state().unwrap();
    assert!(server_side.set_session(&session).is_err(), "for clients");
}

/// The first record of `datagram` (a plaintext hello), with extended_master_secret taken out
/// of the hello it carries, as its own datagram.
fn without_extended_master_secret(datagram: &[u8]) -> Vec<u8> {
    let (header, body) = records(datagram).next().unwrap();
    let (fragment, data) = handshake_fragments(body).next().unwrap().unwrap();
    let mut message = Message::read(fragment.msg_type, data).unwrap();
    match &mut message {
        Message::ClientHello(h) => h.extensions.extended_master_secret = false,
        Message::ServerHello(h) => h.extensions.extended_master_secret = false,
        other => panic!("not a hello: {other:?}"),
    }
    let mut new_body = vec![];
    message.encode(&mut new_body);
    let mut record_body = vec![];
    HandshakeHeader {
        length: new_body.len() as u32,
        fragment_length: new_body.len() as u32,
        ..fragment
    }
    .encode(&mut record_body);
    record_body.extend_from_slice(&new_body);
    let mut out = vec![];
    RecordHeader {
        length: record_body.len() as u16,
        ..header
    }
    .encode(&mut out);
    out.extend_from_slice(&record_body);
    out
}

#[test]
fn a_resumption_without_extended_master_secret_is_aborted() {
    let pki = TestPki::generate();
    let server = server_config(&pki.server_ecdsa);
    let client = client_config(&pki);
    let session = Session::default();
    connect(&client, &server, &session, DtlsParams::default());
    let now = Instant::now();
    // RFC 7627 §5.3: the server aborts a resuming ClientHello without the extension...
    let (mut c, mut s) = pair(
        client.clone(),
        server.clone(),
        with_session(&session),
        DtlsParams::default(),
        now,
    );
    let hello = c.poll_datagram().unwrap();
    let err = s
        .handle_datagram(&without_extended_master_secret(&hello), now)
        .unwrap_err();
    assert!(matches!(err, DtlsError::HandshakeFailure(_)), "{err:?}");
    // ...and the client a resuming ServerHello without it.
    let (mut c, mut s) = pair(
        client,
        server,
        with_session(&session),
        DtlsParams::default(),
        now,
    );
    dtls_common::transfer(&mut c, &mut s, now).unwrap();
    let flight = s.poll_datagram().unwrap();
    let err = c
        .handle_datagram(&without_extended_master_secret(&flight), now)
        .unwrap_err();
    assert!(matches!(err, DtlsError::HandshakeFailure(_)), "{err:?}");
    assert!(!c.session_reused());
}

#[test]
fn contexts_sharing_a_session_id_context_resume_each_others_sessions() {
    let pki = TestPki::generate();
    let ids_only = server_context(&pki);
    ids_only.set_options(OP_NO_TICKET);
    ids_only.set_session_id(b"shared").unwrap();
    let with_tickets = server_context(&pki);
    with_tickets.set_session_id(b"shared").unwrap();
    let client = client_config(&pki);
    let session = Session::default();
    connect(&client, &ids_only.config(), &session, DtlsParams::default());
    // Resumed by ID from the shared cache; the abbreviated flight brings a ticket
    // (NewSessionTicket before ChangeCipherSpec, RFC 5077 §3.3)...
    let (c, s) = connect(
        &client,
        &with_tickets.config(),
        &session,
        DtlsParams::default(),
    );
    assert!(c.session_reused() && s.session_reused());
    // ...which a server without the cache then resumes.
    with_tickets.set_session_cache_mode(SESS_CACHE_OFF);
    let (c, s) = connect(
        &client,
        &with_tickets.config(),
        &session,
        DtlsParams::default(),
    );
    assert!(c.session_reused() && s.session_reused());
}

#[test]
fn a_session_is_resumed_only_for_the_server_name_it_was_made_for() {
    let pki = TestPki::generate();
    let server = server_config(&pki.server_ecdsa);
    let client = Context::new(Method::Dtls).config();
    let session = Session::default();
    let named = |name: &str| DtlsParams {
        server_name: Some(name.to_string()),
        ..with_session(&session)
    };
    let now = Instant::now();
    let run = |params: DtlsParams| {
        let (mut c, mut s) = pair(
            client.clone(),
            server.clone(),
            params,
            DtlsParams::default(),
            now,
        );
        engine_handshake(&mut c, &mut s, now).unwrap();
        (c.session_reused(), s.server_name().map(str::to_string))
    };
    assert_eq!(
        run(named("a.localhost")),
        (false, Some("a.localhost".into()))
    );
    assert_eq!(
        run(named("a.localhost")),
        (true, Some("a.localhost".into()))
    );
    // RFC 6066 §3: another name means a full handshake.
    assert_eq!(
        run(named("b.localhost")),
        (false, Some("b.localhost".into()))
    );
}
