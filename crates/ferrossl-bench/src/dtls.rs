//! The DTLS implementations under test, each pair driven in memory on one thread over a
//! transport that keeps datagram boundaries: ferrossl's `Connection` over memory BIOs (one
//! datagram per `bio_write`/`bio_read`), OpenSSL's DTLS 1.2 through the `openssl` crate over a
//! queue of datagrams, and dimpl (sans-IO); ferrossl and dimpl also in DTLS 1.3 (wolfSSL, over
//! the same queue, is in `wolf.rs`). Every server has an ECDSA P-256 certificate (dimpl
//! supports no other), no side but wolfSSL's sends a cookie exchange and no client certificate
//! is asked for. The handshake-under-loss runs use ferrossl's seeded link simulation: on a fake
//! clock for ferrossl and dimpl, on the wall clock for OpenSSL, whose timer reads it, and for
//! wolfSSL.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrossl::constants::*;
use ferrossl::dtls::testing::{Link, LinkConditions, Simulation};
use ferrossl::dtls::{DtlsEngine, DtlsParams};
use ferrossl_testkit::pki::{Identity, TestPki};

use crate::peers::{check_round, openssl_handshake, Peer};

/// The datagram size limit on every side: room for a 1,200-byte payload and DTLS's headers.
pub const MTU: usize = 1500;

/// The suite every side negotiates in DTLS 1.2.
pub const SUITE: &str = "ECDHE-ECDSA-AES128-GCM-SHA256";

/// The suite every side negotiates in DTLS 1.3.
const SUITE13: &str = "TLS_AES_128_GCM_SHA256";

/// The longest simulated time a handshake under loss may take before it counts as failed.
pub const LOSSY_LIMIT: Duration = Duration::from_secs(120);

// --- ferrossl ---

pub struct Ferrossl {
    client: ferrossl::Context,
    server: ferrossl::Context,
}

impl Ferrossl {
    /// DTLS 1.2 ends, with [`SUITE`] (the client allows no later version).
    pub fn new(pki: &TestPki) -> Self {
        let server = ferrossl::Context::new(ferrossl::Method::Dtls);
        server
            .use_certificate_chain_file(&pki.server_ecdsa.chain_path)
            .unwrap();
        server
            .use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
            .unwrap();
        let client = ferrossl::Context::new(ferrossl::Method::Dtls);
        client
            .load_verify_locations(Some(pki.ca_path().as_ref()), None)
            .unwrap();
        client.set_verify(VERIFY_PEER, None);
        client.set_cipher_list(SUITE).unwrap();
        client.set_max_proto_version(DTLS1_2_VERSION).unwrap();
        Self { client, server }
    }

    /// DTLS 1.3 only on the client (the server accepts 1.2 too, as it does by default once 1.3
    /// is allowed), with [`SUITE13`]; `groups` narrows the client's groups (X25519 alone, as
    /// dimpl offers it first, is answered without a HelloRetryRequest; by default the
    /// client's post-quantum hybrid, which it sends no share of, is asked for by one).
    pub fn new13(pki: &TestPki, groups: Option<&[&str]>) -> Self {
        let f = Self::new(pki);
        f.server.set_max_proto_version(DTLS1_3_VERSION).unwrap();
        f.client.set_min_proto_version(DTLS1_3_VERSION).unwrap();
        f.client.set_max_proto_version(DTLS1_3_VERSION).unwrap();
        f.client.set_ciphersuites(SUITE13).unwrap();
        if let Some(groups) = groups {
            f.client.set_groups(groups).unwrap();
        }
        f
    }

    fn connection(ctx: &ferrossl::Context, client: bool) -> ferrossl::Connection {
        let mut c = ferrossl::Connection::new(ctx).unwrap();
        if client {
            c.set_connect_state().unwrap();
        } else {
            c.set_accept_state().unwrap();
        }
        c.set_ciphertext_mtu(MTU).unwrap();
        c
    }
}

/// Panics unless a pair of `peer` negotiates `version` and, where given, `group`, so that a
/// row never measures the wrong thing.
pub fn check_ferrossl(peer: &Ferrossl, version: i32, group: Option<&str>) {
    let (c, s) = peer.pair();
    for end in [&c, &s] {
        assert_eq!(end.get_protocol_version(), version, "ferrossl DTLS version");
        if let Some(group) = group {
            assert_eq!(
                end.get_group_name().as_deref(),
                Some(group),
                "ferrossl group"
            );
        }
    }
}

/// Panics unless both ends of a dimpl pair report `version`.
pub fn check_dimpl(peer: &Dimpl, version: i32) {
    let (c, s, _) = peer.pair();
    for end in [&c, &s] {
        let v = end.protocol_version().map(|v| i32::from(v.as_u16()));
        assert_eq!(v, Some(version), "dimpl DTLS version");
    }
}

fn move_datagrams(from: &mut ferrossl::Connection, to: &mut ferrossl::Connection) {
    while let Ok(d) = from.bio_read(MTU) {
        to.bio_write(&d).unwrap();
    }
}

impl Peer for Ferrossl {
    type Pair = (ferrossl::Connection, ferrossl::Connection);

    fn pair(&self) -> Self::Pair {
        let mut c = Self::connection(&self.client, true);
        let mut s = Self::connection(&self.server, false);
        for round in 0.. {
            if c.is_handshake_done() && s.is_handshake_done() {
                break;
            }
            check_round(round, "ferrossl DTLS");
            let _ = c.do_handshake();
            move_datagrams(&mut c, &mut s);
            let _ = s.do_handshake();
            move_datagrams(&mut s, &mut c);
        }
        (c, s)
    }

    fn transfer(&self, (c, s): &mut Self::Pair, data: &[u8], chunk: usize) {
        let mut buf = vec![0u8; MTU];
        for piece in data.chunks(chunk) {
            c.send(piece).unwrap();
            move_datagrams(c, s);
            assert_eq!(s.recv(&mut buf).unwrap(), piece.len());
        }
    }
}

// --- OpenSSL DTLS over a queue of datagrams ---

/// One end of an in-memory datagram path: each write is one datagram, each read returns one.
#[derive(Clone, Default, Debug)]
pub struct DatagramPipe {
    inbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    outbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl DatagramPipe {
    pub fn pair() -> (Self, Self) {
        let a = Self::default();
        let b = Self {
            inbox: a.outbox.clone(),
            outbox: a.inbox.clone(),
        };
        (a, b)
    }
}

impl Read for DatagramPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let d = self
            .inbox
            .borrow_mut()
            .pop_front()
            .ok_or(io::ErrorKind::WouldBlock)?;
        // A datagram longer than the buffer is truncated, as a UDP socket does.
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }
}

impl Write for DatagramPipe {
    fn write(&mut self, datagram: &[u8]) -> io::Result<usize> {
        self.outbox.borrow_mut().push_back(datagram.to_vec());
        Ok(datagram.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct OpenSsl {
    client: openssl::ssl::SslContext,
    server: openssl::ssl::SslContext,
}

impl OpenSsl {
    pub fn new(pki: &TestPki) -> Self {
        use openssl::ssl::{SslContext, SslFiletype, SslMethod, SslOptions, SslVerifyMode};
        let id = &pki.server_ecdsa;
        let mut server = SslContext::builder(SslMethod::dtls()).unwrap();
        server.set_certificate_chain_file(&id.chain_path).unwrap();
        server
            .set_private_key_file(&id.key_path, SslFiletype::PEM)
            .unwrap();
        // The memory transport has no path MTU to ask: the MTU is set per connection.
        server.set_options(SslOptions::NO_QUERY_MTU);
        let mut client = SslContext::builder(SslMethod::dtls()).unwrap();
        client.set_ca_file(pki.ca_path()).unwrap();
        client.set_verify(SslVerifyMode::PEER);
        client.set_cipher_list(SUITE).unwrap();
        client.set_options(SslOptions::NO_QUERY_MTU);
        Self {
            client: client.build(),
            server: server.build(),
        }
    }

    /// A fresh client and server connection, each with the MTU.
    fn connections(&self) -> (openssl::ssl::Ssl, openssl::ssl::Ssl) {
        let mut c = openssl::ssl::Ssl::new(&self.client).unwrap();
        let mut s = openssl::ssl::Ssl::new(&self.server).unwrap();
        c.set_mtu(MTU as u32).unwrap();
        s.set_mtu(MTU as u32).unwrap();
        (c, s)
    }
}

type OsslDtls = openssl::ssl::SslStream<DatagramPipe>;

impl Peer for OpenSsl {
    type Pair = (OsslDtls, OsslDtls);

    fn pair(&self) -> Self::Pair {
        let (a, b) = DatagramPipe::pair();
        let (c, s) = self.connections();
        openssl_handshake(c, s, a, b)
    }

    fn transfer(&self, (c, s): &mut Self::Pair, data: &[u8], chunk: usize) {
        let mut buf = vec![0u8; MTU];
        for piece in data.chunks(chunk) {
            assert_eq!(c.write(piece).unwrap(), piece.len());
            assert_eq!(s.read(&mut buf).unwrap(), piece.len());
        }
    }
}

// --- dimpl ---

pub struct Dimpl {
    config: Arc<dimpl::Config>,
    client_cert: dimpl::DtlsCertificate,
    server_cert: dimpl::DtlsCertificate,
    /// `dimpl::Dtls::new_12` or `new_13`.
    new: fn(Arc<dimpl::Config>, dimpl::DtlsCertificate, Instant) -> dimpl::Dtls,
}

/// What one dimpl end reported while its output was drained.
#[derive(Default)]
struct DimplEnd {
    connected: bool,
    received: usize,
    timeout: Option<Instant>,
}

impl Dimpl {
    /// DTLS 1.2 ends.
    pub fn new(pki: &TestPki) -> Self {
        Self::with(pki, dimpl::Dtls::new_12)
    }

    /// DTLS 1.3 ends (X25519 first, TLS_AES_128_GCM_SHA256 first: as the ferrossl column).
    pub fn new13(pki: &TestPki) -> Self {
        Self::with(pki, dimpl::Dtls::new_13)
    }

    fn with(
        pki: &TestPki,
        new: fn(Arc<dimpl::Config>, dimpl::DtlsCertificate, Instant) -> dimpl::Dtls,
    ) -> Self {
        // A fixed seed makes dimpl's timer jitter, and so the lossy runs, reproducible.
        let config = dimpl::Config::builder()
            .dangerously_set_rng_seed(1)
            .mtu(MTU)
            .use_server_cookie(false)
            .require_client_certificate(false)
            .build()
            .unwrap();
        let cert = |id: &Identity| dimpl::DtlsCertificate {
            certificate: id.cert_der.clone(),
            private_key: id.key_der.clone(),
        };
        Self {
            config: Arc::new(config),
            client_cert: cert(&pki.client_ecdsa),
            server_cert: cert(&pki.server_ecdsa),
            new,
        }
    }

    fn engines(&self, now: Instant) -> (dimpl::Dtls, dimpl::Dtls) {
        let mut c = (self.new)(self.config.clone(), self.client_cert.clone(), now);
        c.set_active(true);
        let mut s = (self.new)(self.config.clone(), self.server_cert.clone(), now);
        s.set_active(false);
        (c, s)
    }
}

/// Drains `from`'s output, handing each datagram to `deliver`; returns what `from` reported.
fn drain_dimpl(
    from: &mut dimpl::Dtls,
    buf: &mut Vec<u8>,
    mut deliver: impl FnMut(&[u8]),
) -> DimplEnd {
    let mut end = DimplEnd::default();
    loop {
        match from.poll_output(buf) {
            dimpl::Output::Packet(p) => deliver(p),
            dimpl::Output::BufferTooSmall { needed } => buf.resize(needed, 0),
            dimpl::Output::Connected => end.connected = true,
            dimpl::Output::ApplicationData(d) => end.received += d.len(),
            dimpl::Output::Timeout(t) => {
                end.timeout = Some(t);
                return end;
            }
            _ => {}
        }
    }
}

impl Peer for Dimpl {
    type Pair = (dimpl::Dtls, dimpl::Dtls, Vec<u8>);

    fn pair(&self) -> Self::Pair {
        let now = Instant::now();
        let (mut c, mut s) = self.engines(now);
        let mut buf = vec![0u8; MTU];
        let (mut c_done, mut s_done) = (false, false);
        // dimpl sets up each end's state (its random) on its first timeout call.
        c.handle_timeout(now).unwrap();
        s.handle_timeout(now).unwrap();
        for round in 0.. {
            if c_done && s_done {
                break;
            }
            check_round(round, "dimpl");
            c_done |= drain_dimpl(&mut c, &mut buf, |p| s.handle_packet(p).unwrap()).connected;
            s_done |= drain_dimpl(&mut s, &mut buf, |p| c.handle_packet(p).unwrap()).connected;
        }
        (c, s, buf)
    }

    fn transfer(&self, (c, s, buf): &mut Self::Pair, data: &[u8], chunk: usize) {
        for piece in data.chunks(chunk) {
            c.send_application_data(piece).unwrap();
            drain_dimpl(c, buf, |p| s.handle_packet(p).unwrap());
            let got = drain_dimpl(s, buf, |_| {}).received;
            assert_eq!(got, piece.len());
        }
    }
}

// --- handshakes under loss, on a fake clock ---

/// The simulated time ferrossl's engines (with `f`'s configurations, so in the version they
/// choose) need to finish a handshake over links with `loss` (and the harness's duplication
/// and reordering), or None if they did not within the limit.
pub fn ferrossl_lossy(f: &Ferrossl, loss: f64, seed: u64) -> Option<Duration> {
    let now = Instant::now();
    let params = || DtlsParams {
        mtu: MTU,
        ..Default::default()
    };
    let client = DtlsEngine::new(
        f.client.config(),
        ferrossl::config::Role::Client,
        params(),
        now,
    )
    .unwrap();
    let server = DtlsEngine::new(
        f.server.config(),
        ferrossl::config::Role::Server,
        params(),
        now,
    )
    .unwrap();
    let mut sim = Simulation::new(client, server, LinkConditions::lossy(loss), seed, now);
    sim.handshake(LOSSY_LIMIT).ok()?;
    Some(sim.now - now)
}

/// The links to the server and to the client of a lossy run, seeded as the simulation seeds
/// its two.
pub fn links(loss: f64, seed: u64) -> (Link, Link) {
    let to_server = Link::new(LinkConditions::lossy(loss), seed);
    let to_client = Link::new(LinkConditions::lossy(loss), seed ^ 0x5EED_5EED_5EED_5EED);
    (to_server, to_client)
}

/// The same for two dimpl engines (of `d`'s version), over the same seeded links as
/// [`ferrossl_lossy`].
pub fn dimpl_lossy(d: &Dimpl, loss: f64, seed: u64) -> Option<Duration> {
    let start = Instant::now();
    let mut now = start;
    let (mut c, mut s) = d.engines(now);
    let (mut to_server, mut to_client) = links(loss, seed);
    let mut buf = vec![0u8; MTU];
    let (mut c_done, mut s_done) = (false, false);
    c.handle_timeout(now).ok()?;
    s.handle_timeout(now).ok()?;
    loop {
        let ce = drain_dimpl(&mut c, &mut buf, |p| to_server.send(p.to_vec(), 0, now));
        let se = drain_dimpl(&mut s, &mut buf, |p| to_client.send(p.to_vec(), 0, now));
        c_done |= ce.connected;
        s_done |= se.connected;
        if c_done && s_done {
            return Some(now - start);
        }
        let next = [
            ce.timeout,
            se.timeout,
            to_server.next_arrival(),
            to_client.next_arrival(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        // dimpl's DTLS 1.3 may leave a timer at the present (an ACK it finds nothing to put in
        // once due), which a real clock soon passes: the fake one moves on a millisecond.
        now = if next <= now {
            now + Duration::from_millis(1)
        } else {
            next
        };
        if now - start > LOSSY_LIMIT {
            return None;
        }
        for (_, p) in to_server.receive(now) {
            // A damaged or unexpected datagram is dropped, as the peer would.
            let _ = s.handle_packet(&p);
        }
        for (_, p) in to_client.receive(now) {
            let _ = c.handle_packet(&p);
        }
        c.handle_timeout(now).ok()?;
        s.handle_timeout(now).ok()?;
    }
}

// --- OpenSSL under loss, on the wall clock ---

/// The longest the OpenSSL run sleeps between two calls into its connections when no datagram
/// is due: how late it may notice an expired timer, small against the first timeout (1 s).
const WALL_TICK: Duration = Duration::from_millis(10);

/// One OpenSSL end of a lossy run.
enum OsslEnd {
    Handshaking(openssl::ssl::MidHandshakeSslStream<DatagramPipe>),
    /// Established, and still read so that it answers a retransmitted flight.
    Done(OsslDtls),
}

impl OsslEnd {
    /// The end after a handshake call, or None if the handshake failed.
    fn after(r: Result<OsslDtls, openssl::ssl::HandshakeError<DatagramPipe>>) -> Option<Self> {
        match r {
            Ok(s) => Some(Self::Done(s)),
            Err(openssl::ssl::HandshakeError::WouldBlock(m)) => Some(Self::Handshaking(m)),
            Err(_) => None,
        }
    }

    /// Lets OpenSSL take what arrived; finding nothing to read, it retransmits if its timer
    /// has expired (`dtls1_read_failed` calls `dtls1_handle_timeout`).
    fn step(self) -> Option<Self> {
        match self {
            Self::Handshaking(m) => Self::after(m.handshake()),
            Self::Done(mut s) => {
                let _ = s.ssl_read(&mut [0u8; MTU]);
                Some(Self::Done(s))
            }
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, Self::Done(_))
    }
}

/// Puts every datagram `from` wrote on `link`.
pub fn send_all(from: &DatagramPipe, link: &mut Link, now: Instant) {
    for d in from.outbox.borrow_mut().drain(..) {
        link.send(d, 0, now);
    }
}

/// Hands `to` every datagram that has arrived on `link`; returns whether any had.
pub fn deliver(link: &mut Link, to: &DatagramPipe, now: Instant) -> bool {
    let arrived = link.receive(now);
    let any = !arrived.is_empty();
    to.inbox
        .borrow_mut()
        .extend(arrived.into_iter().map(|(_, d)| d));
    any
}

/// The wall-clock time two OpenSSL ends need to finish a handshake over the same seeded links
/// as [`ferrossl_lossy`], the links' clock being the real one; None if they failed or did not
/// finish within `limit`. OpenSSL 3.0's timer starts at 1 s and doubles up to 60 s; the 13th
/// timeout of one flight fails the handshake. A run mostly sleeps, so runs can go in parallel.
pub fn openssl_lossy(o: &OpenSsl, loss: f64, seed: u64, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let (mut to_server, mut to_client) = links(loss, seed);
    // Not joined: the run carries every datagram between the two pipes.
    let (cp, sp) = (DatagramPipe::default(), DatagramPipe::default());
    let (c, s) = o.connections();
    let mut c = OsslEnd::after(c.connect(cp.clone()))?;
    let mut s = OsslEnd::after(s.accept(sp.clone()))?;
    loop {
        let now = Instant::now();
        send_all(&cp, &mut to_server, now);
        send_all(&sp, &mut to_client, now);
        if c.is_done() && s.is_done() {
            return Some(now - start);
        }
        if now - start > limit {
            return None;
        }
        let next = [to_server.next_arrival(), to_client.next_arrival()]
            .into_iter()
            .flatten()
            .fold(now + WALL_TICK, Instant::min);
        std::thread::sleep(next.saturating_duration_since(now));
        let now = Instant::now();
        deliver(&mut to_server, &sp, now);
        deliver(&mut to_client, &cp, now);
        c = c.step()?;
        s = s.step()?;
    }
}
