//! wolfSSL's DTLS 1.2 and 1.3 (the C library as the `wolfssl-sys` crate builds it, through the
//! safe `wolfssl` crate), over the queue of datagrams of OpenSSL's column, in memory on one
//! thread. Each pair is a wolfSSL client and server with the settings of the other columns
//! (ECDSA P-256 server, the client verifying it, the same suite and group, MTU 1,500, no client
//! certificate), but one: a wolfSSL server always makes a cookie exchange (a HelloVerifyRequest
//! in DTLS 1.2, for which wolfSSL has no switch; a HelloRetryRequest with a cookie in DTLS 1.3,
//! which `wolfSSL_disable_hrr_cookie` would turn off, a call the `wolfssl` crate does not
//! offer), one round trip more than the others. wolfSSL's retransmission timer is the
//! application's: handshakes under loss run on the wall clock, as OpenSSL's do, since wolfSSL
//! reads it itself to space its DTLS 1.3 retransmissions (at least 100 ms apart in this build).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use ferrossl_testkit::pki::TestPki;
use wolfssl::{
    ContextBuilder, CurveGroup, IOCallbackResult, IOCallbacks, Method, Poll, ProtocolVersion,
    RootCertificate, Secret, Session, SessionConfig, SslVerifyMode,
};

use crate::dtls::{deliver, links, send_all, DatagramPipe, MTU, SUITE};
use crate::peers::{check_round, Peer};

/// wolfSSL's name of the suite every side negotiates in DTLS 1.3.
const SUITE13: &str = "TLS13-AES128-GCM-SHA256";

/// wolfSSL reads and writes one datagram per call, as OpenSSL does.
impl IOCallbacks for DatagramPipe {
    fn recv(&mut self, buf: &mut [u8]) -> IOCallbackResult<usize> {
        callback_result(self.read(buf))
    }

    fn send(&mut self, buf: &[u8]) -> IOCallbackResult<usize> {
        callback_result(self.write(buf))
    }
}

fn callback_result(r: io::Result<usize>) -> IOCallbackResult<usize> {
    match r {
        Ok(n) => IOCallbackResult::Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => IOCallbackResult::WouldBlock,
        Err(e) => IOCallbackResult::Err(e),
    }
}

type WolfEnd = Session<DatagramPipe>;

pub struct WolfSsl {
    client: wolfssl::Context,
    server: wolfssl::Context,
    /// The group the client offers, and whose key share it sends first.
    group: CurveGroup,
}

impl WolfSsl {
    /// DTLS 1.2 ends: [`SUITE`] with X25519. (An `Option` as in a build without wolfSSL.)
    pub fn new(pki: &TestPki) -> Option<Self> {
        let w = Self::with(pki, false, CurveGroup::EccX25519);
        let suite = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
        w.check(ProtocolVersion::DtlsV1_2, "X25519", suite);
        Some(w)
    }

    /// DTLS 1.3 ends: TLS_AES_128_GCM_SHA256 with X25519, or with the X25519MLKEM768 hybrid,
    /// whose key share the client sends at once (the server's cookie exchange makes its
    /// HelloRetryRequest all the same).
    pub fn new13(pki: &TestPki, hybrid: bool) -> Option<Self> {
        let (group, name) = match hybrid {
            true => (CurveGroup::X25519MLKEM768, "X25519MLKEM768"),
            false => (CurveGroup::EccX25519, "X25519"),
        };
        let w = Self::with(pki, true, group);
        w.check(ProtocolVersion::DtlsV1_3, name, "TLS_AES_128_GCM_SHA256");
        Some(w)
    }

    fn with(pki: &TestPki, dtls13: bool, group: CurveGroup) -> Self {
        let (client, server, suite) = match dtls13 {
            true => (Method::DtlsClientV1_3, Method::DtlsServerV1_3, SUITE13),
            false => (Method::DtlsClientV1_2, Method::DtlsServerV1_2, SUITE),
        };
        let id = &pki.server_ecdsa;
        let server = ContextBuilder::new(server)
            .unwrap()
            .with_certificate(Secret::Asn1Buffer(&id.cert_der))
            .unwrap()
            .with_private_key(Secret::Asn1Buffer(&id.key_der))
            .unwrap()
            .build();
        let client = ContextBuilder::new(client)
            .unwrap()
            .with_root_certificate(RootCertificate::Asn1Buffer(&pki.ca.cert_der))
            .unwrap()
            .with_verify_method(SslVerifyMode::SslVerifyPeer)
            .with_cipher_list(suite)
            .unwrap()
            .with_groups(&[group])
            .unwrap()
            .build();
        Self {
            client,
            server,
            group,
        }
    }

    /// A client or server over `io`, non-blocking, with the MTU.
    fn end(&self, client: bool, io: DatagramPipe) -> WolfEnd {
        let config = SessionConfig::new(io)
            .with_dtls_nonblocking(true)
            .with_dtls_mtu(MTU as u16);
        let (ctx, config) = match client {
            true => (&self.client, config.with_keyshare_group(self.group)),
            false => (&self.server, config),
        };
        ctx.new_session(config).unwrap()
    }

    /// Panics unless both ends of a pair negotiate `version`, `group` and `suite` (its IANA
    /// name), so that a row never measures the wrong thing.
    fn check(&self, version: ProtocolVersion, group: &str, suite: &str) {
        let (mut c, mut s) = self.pair();
        for end in [&mut c, &mut s] {
            assert_eq!(end.version(), version, "wolfSSL DTLS version");
            let curve = end.get_current_curve_name();
            assert_eq!(curve.as_deref(), Some(group), "wolfSSL group");
            let cipher = end.get_current_cipher_name();
            assert_eq!(cipher.as_deref(), Some(suite), "wolfSSL suite");
        }
    }
}

impl Peer for WolfSsl {
    type Pair = (WolfEnd, WolfEnd);

    fn pair(&self) -> Self::Pair {
        let (a, b) = DatagramPipe::pair();
        let (mut c, mut s) = (self.end(true, a), self.end(false, b));
        for round in 0.. {
            if c.is_init_finished() && s.is_init_finished() {
                break;
            }
            check_round(round, "wolfSSL");
            c.try_negotiate().unwrap();
            s.try_negotiate().unwrap();
        }
        (c, s)
    }

    fn transfer(&self, (c, s): &mut Self::Pair, data: &[u8], chunk: usize) {
        let mut buf = vec![0u8; MTU];
        for piece in data.chunks(chunk) {
            let sent = c.try_write_slice(piece).unwrap();
            assert!(matches!(sent, Poll::Ready(n) if n == piece.len()));
            let got = s.try_read_slice(&mut buf).unwrap();
            assert!(matches!(got, Poll::Ready(n) if n == piece.len()));
        }
    }
}

// --- under loss, on the wall clock ---

/// One wolfSSL end of a lossy run and its retransmission timer, which the application keeps:
/// as in wolfSSL's example programs and its own socket reads, each call into the end starts a
/// wait of `wolfSSL_dtls_get_current_timeout` (a quarter of it when
/// `wolfSSL_dtls13_use_quick_timeout` says so); if nothing arrives by then, the end is told
/// with `wolfSSL_dtls_got_timeout`. The timer runs while the handshake does, and in DTLS 1.3
/// also after it, while records may wait for their acknowledgement.
struct LossyEnd {
    end: WolfEnd,
    pipe: DatagramPipe,
    deadline: Instant,
}

impl LossyEnd {
    fn new(peer: &WolfSsl, client: bool) -> Option<Self> {
        let pipe = DatagramPipe::default();
        let mut end = Self {
            end: peer.end(client, pipe.clone()),
            pipe,
            deadline: Instant::now(),
        };
        end.end.try_negotiate().ok()?;
        end.rearm(Instant::now());
        Some(end)
    }

    fn rearm(&mut self, now: Instant) {
        let timeout = self.end.dtls_current_timeout();
        let quick = self.end.dtls13_use_quick_timeout();
        self.deadline = now + if quick { timeout / 4 } else { timeout };
    }

    fn is_done(&mut self) -> bool {
        self.end.is_init_finished()
    }

    /// When the timer expires, if it runs.
    fn timer(&mut self) -> Option<Instant> {
        let runs = !self.is_done() || self.end.version() == ProtocolVersion::DtlsV1_3;
        runs.then_some(self.deadline)
    }

    /// Lets wolfSSL take what `arrived`, or tells it that its timer expired; None if the
    /// handshake failed.
    fn step(&mut self, arrived: bool, now: Instant) -> Option<()> {
        if arrived {
            if !self.is_done() {
                self.end.try_negotiate().ok()?;
            }
            if self.is_done() {
                // Established, and still read so that it answers a retransmitted flight.
                let _ = self.end.try_read_slice(&mut [0u8; MTU]);
            }
        } else if self.timer().is_some_and(|t| t <= now) {
            if let Poll::Ready(true) = self.end.dtls_has_timed_out() {
                return None;
            }
        } else {
            return Some(());
        }
        self.rearm(now);
        Some(())
    }
}

/// The wall-clock time two wolfSSL ends (of `w`'s version) need to finish a handshake over the
/// same seeded links as the other columns, the links' clock being the real one; None if they
/// failed or did not finish within `limit`. wolfSSL's timer starts at 1 s and doubles up to
/// 64 s; the timeout after the one of 64 s fails the handshake. A run mostly sleeps (until the
/// next datagram is due or a timer expires), so runs can go in parallel.
pub fn wolfssl_lossy(w: &WolfSsl, loss: f64, seed: u64, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let (mut to_server, mut to_client) = links(loss, seed);
    let mut c = LossyEnd::new(w, true)?;
    let mut s = LossyEnd::new(w, false)?;
    loop {
        let now = Instant::now();
        send_all(&c.pipe, &mut to_server, now);
        send_all(&s.pipe, &mut to_client, now);
        if c.is_done() && s.is_done() {
            return Some(now - start);
        }
        if now - start > limit {
            return None;
        }
        // Nothing due and no timer running: nothing would ever happen.
        let next = [
            to_server.next_arrival(),
            to_client.next_arrival(),
            c.timer(),
            s.timer(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        std::thread::sleep(next.saturating_duration_since(now));
        let now = Instant::now();
        let to_s = deliver(&mut to_server, &s.pipe, now);
        let to_c = deliver(&mut to_client, &c.pipe, now);
        c.step(to_c, now)?;
        s.step(to_s, now)?;
    }
}
