//! Both ends of a DTLS 1.3 association (two `DtlsEngine`s, the server with a certificate made
//! once per process) run a handshake while the input schedules what the link does: the real
//! datagrams are delivered in any order, dropped or replayed, and arbitrary datagrams, forged
//! protected records and real records with a byte changed are mixed in, with time passing in
//! steps of the input's choosing and data, KeyUpdates and closes sent now and then. A setting
//! makes the client resume a session from a clean handshake made earlier in the process.
//!
//! Nothing may panic, and a datagram holding one protected record that cannot authenticate
//! (forged, or a real one changed) must be dropped silently (RFC 9147 §4.5.2): while the
//! engine has not failed, `handle_datagram` returns `Ok` for it.
//!
//! The input: one byte of settings, then operations of one byte each with their operands
//! (see [`run`]); when the input ends, the real datagrams still queued are delivered.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrossl::constants::DTLS1_3_VERSION;
use ferrossl::dtls::{DtlsEngine, DtlsParams, HmacCookies};
use ferrossl::session::Session;
use ferrossl::{Connection, Context, Method, PKey, Role, X509};
use libfuzzer_sys::fuzz_target;

/// Operations run per input, at most.
const MAX_OPS: usize = 256;
/// Datagrams queued per direction, at most (the oldest is lost beyond).
const MAX_QUEUED: usize = 64;
/// Real datagrams remembered per direction for replays.
const MAX_SEEN: usize = 16;
/// The connection IDs each end asks for when the settings turn them on.
const CLIENT_CID: &[u8] = &[0xC1, 0x1E];
const SERVER_CID: &[u8] = &[0x5E, 0x2F, 0x0E, 0x21];
/// A datagram size that fragments the post-quantum key share and certificate.
const SMALL_MTU: usize = 300;

/// The unified header's bits (RFC 9147 §4): 001CSLEE.
const UNIFIED: u8 = 0b0010_0000;
const CID_BIT: u8 = 0b0001_0000;
const SEQ16_BIT: u8 = 0b0000_1000;
const LENGTH_BIT: u8 = 0b0000_0100;
/// An AEAD tag: no protected record is shorter.
const TAG_LEN: usize = 16;
/// The header of an epoch-0 record (DTLSPlaintext).
const PLAINTEXT_HEADER_LEN: usize = 13;

/// The contexts, built once: clients by (offer DTLS 1.3 only, classic group only), servers by
/// (DTLS 1.3 only).
struct Configs {
    clients: [Context; 4],
    servers: [Context; 2],
}

fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let versions = |ctx: &Context, only13: bool| {
            ctx.set_max_proto_version(DTLS1_3_VERSION).unwrap();
            if only13 {
                ctx.set_min_proto_version(DTLS1_3_VERSION).unwrap();
            }
        };
        let client = |only13: bool, classic: bool| {
            let ctx = Context::new(Method::Dtls);
            versions(&ctx, only13);
            if classic {
                ctx.set_groups(&["X25519"]).unwrap();
            }
            ctx
        };
        let server = |only13: bool| {
            let ctx = Context::new(Method::Dtls);
            versions(&ctx, only13);
            ctx.use_certificate(X509::from_der(cert.der()).unwrap());
            ctx.use_privatekey(PKey::from_der(&key.serialize_der()).unwrap());
            ctx
        };
        Configs {
            clients: [
                client(false, false),
                client(false, true),
                client(true, false),
                client(true, true),
            ],
            servers: [server(false), server(true)],
        }
    })
}

/// A session from a clean handshake between two of the contexts (over memory BIOs), made once
/// per pair and process, for a client that resumes; None if none came.
fn session(client: usize, server: usize) -> Option<Session> {
    static SESSIONS: Mutex<Vec<((usize, usize), Session)>> = Mutex::new(Vec::new());
    let mut sessions = SESSIONS.lock().unwrap();
    if let Some((_, s)) = sessions.iter().find(|(pair, _)| *pair == (client, server)) {
        return Some(s.clone());
    }
    let configs = configs();
    let mut c = Connection::new(&configs.clients[client]).ok()?;
    let mut s = Connection::new(&configs.servers[server]).ok()?;
    c.set_connect_state().ok()?;
    s.set_accept_state().ok()?;
    for _ in 0..10 {
        let _ = c.do_handshake();
        while let Ok(d) = c.bio_read(1 << 16) {
            let _ = s.bio_write(&d);
        }
        let _ = s.do_handshake();
        while let Ok(d) = s.bio_read(1 << 16) {
            let _ = c.bio_write(&d);
        }
        // The ticket follows the handshake: reading takes it in.
        let _ = c.recv(&mut [0; 16]);
    }
    let session = c.get_session().filter(Session::is_resumable)?;
    sessions.push(((client, server), session.clone()));
    Some(session)
}

/// The input, read front to back; reads past its end give zeros.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One end, with the real datagrams on their way to it.
struct End {
    engine: DtlsEngine,
    /// Whether its configuration allows DTLS 1.3 only (it can never become a 1.2 engine).
    only13: bool,
    /// The length of the connection ID the peer's records carry to it (0: none).
    cid_len: usize,
    queued: Vec<Vec<u8>>,
    seen: Vec<Vec<u8>>,
}

impl End {
    fn new(engine: DtlsEngine, only13: bool, cid_len: usize) -> Self {
        Self {
            engine,
            only13,
            cid_len,
            queued: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Hands it a datagram; errors end the association, which the fuzzer may do.
    fn deliver(&mut self, datagram: &[u8], now: Instant) {
        let _ = self.engine.handle_datagram(datagram, now);
    }

    /// Hands it a datagram of one protected record that cannot authenticate: unless the
    /// association already failed, it is dropped without an error.
    fn deliver_invalid(&mut self, datagram: &[u8], now: Instant) {
        let checked = self.engine.error().is_none()
            && (self.only13 || self.engine.protocol_version() == Some(DTLS1_3_VERSION));
        let result = self.engine.handle_datagram(datagram, now);
        if checked {
            assert!(
                result.is_ok(),
                "a record that cannot authenticate failed the association: {result:?}\n\
                 datagram: {datagram:02x?}"
            );
        }
    }

    /// Takes the real datagram at `index` (modulo the queue) off the queue.
    fn take(&mut self, index: u8) -> Option<Vec<u8>> {
        if self.queued.is_empty() {
            return None;
        }
        let d = self.queued.remove(usize::from(index) % self.queued.len());
        if self.seen.len() == MAX_SEEN {
            self.seen.remove(0);
        }
        self.seen.push(d.clone());
        Some(d)
    }

    /// Delivers every queued real datagram in order.
    fn deliver_all(&mut self, now: Instant) {
        while let Some(d) = self.take(0) {
            self.deliver(&d, now);
        }
    }
}

/// Moves what each engine sent into the other's queue.
fn collect(client: &mut End, server: &mut End) {
    fn from_to(from: &mut End, to: &mut End) {
        while let Some(d) = from.engine.poll_datagram() {
            if to.queued.len() == MAX_QUEUED {
                to.queued.remove(0);
            }
            to.queued.push(d);
        }
    }
    from_to(client, server);
    from_to(server, client);
}

/// The protected records of a datagram (unified headers with a length, as the engine writes
/// them), each as (start, header length, end), the epoch-0 records beside them skipped; None
/// when the datagram does not parse so or holds no protected record.
fn protected_records(datagram: &[u8], cid_len: usize) -> Option<Vec<(usize, usize, usize)>> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let first = datagram[at];
        if first & 0b1110_0000 != UNIFIED {
            // DTLSPlaintext: 13 bytes of header, the length last.
            let len = datagram.get(at + 11..at + 13)?;
            at += PLAINTEXT_HEADER_LEN + usize::from(u16::from_be_bytes([len[0], len[1]]));
            continue;
        }
        if first & LENGTH_BIT == 0 {
            return None;
        }
        let cid = if first & CID_BIT != 0 { cid_len } else { 0 };
        let seq = if first & SEQ16_BIT != 0 { 2 } else { 1 };
        let header = 1 + cid + seq + 2;
        let len_at = at + header - 2;
        let len = usize::from(u16::from_be_bytes([
            *datagram.get(len_at)?,
            *datagram.get(len_at + 1)?,
        ]));
        let end = at + header + len;
        if end > datagram.len() || len < TAG_LEN {
            return None;
        }
        records.push((at, header, end));
        at = end;
    }
    (at == datagram.len() && !records.is_empty()).then_some(records)
}

/// A protected record no key opens: a unified header with the input's epoch bits, sequence
/// number and connection ID (of the receiver's length, when the input sets the bit), then the
/// input's bytes as ciphertext and tag. With the length bit the header says how long it is;
/// without, it fills the datagram.
fn forged_record(input: &mut Input<'_>, cid_len: usize) -> Vec<u8> {
    let flags = input.byte();
    let first = UNIFIED | (flags & (CID_BIT | SEQ16_BIT | LENGTH_BIT | 0b11));
    let mut record = vec![first];
    if first & CID_BIT != 0 {
        let mut cid = input.bytes(cid_len).to_vec();
        cid.resize(cid_len, 0);
        record.extend_from_slice(&cid);
    }
    let seq = input.u16().to_be_bytes();
    record.extend_from_slice(if first & SEQ16_BIT != 0 {
        &seq
    } else {
        &seq[1..]
    });
    let len = TAG_LEN + usize::from(input.byte());
    let mut body = input.bytes(len).to_vec();
    body.resize(body.len().max(TAG_LEN), 0xA5);
    if first & LENGTH_BIT != 0 {
        record.extend_from_slice(&(body.len() as u16).to_be_bytes());
    }
    record.extend_from_slice(&body);
    record
}

/// One real protected record of a queued datagram with one byte changed, where it makes the
/// record fail to authenticate: in its encrypted sequence number, ciphertext or tag.
fn corrupted_record(end: &mut End, input: &mut Input<'_>) -> Option<Vec<u8>> {
    let (index, which, at, flip) = (input.byte(), input.byte(), input.u16(), input.byte() | 1);
    let datagram = end.take(index)?;
    let records = protected_records(&datagram, end.cid_len)?;
    let (start, header, stop) = records[usize::from(which) % records.len()];
    let mut record = datagram[start..stop].to_vec();
    let first = record[0];
    let cid = if first & CID_BIT != 0 { end.cid_len } else { 0 };
    let seq = if first & SEQ16_BIT != 0 { 2 } else { 1 };
    // The sequence number bytes, then everything after the header.
    let changeable: Vec<usize> = (1 + cid..1 + cid + seq)
        .chain(header..record.len())
        .collect();
    record[changeable[usize::from(at) % changeable.len()]] ^= flip;
    Some(record)
}

fn run(data: &[u8]) {
    let mut input = Input(data);
    let settings = input.byte();
    let (client_only13, classic) = (settings & 1 != 0, settings & 2 != 0);
    let server_only13 = settings & 4 != 0;
    let cookies = settings & 8 != 0;
    let cids = settings & 16 != 0;
    let resume = settings & 64 != 0;
    let mtu = if settings & 32 != 0 {
        SMALL_MTU
    } else {
        ferrossl::dtls::DEFAULT_MTU
    };

    let configs = configs();
    let (client_index, server_index) = (
        usize::from(client_only13) * 2 + usize::from(classic),
        usize::from(server_only13),
    );
    let mut now = Instant::now();
    let client_params = DtlsParams {
        mtu,
        connection_id: cids.then(|| CLIENT_CID.to_vec()),
        session: resume
            .then(|| session(client_index, server_index))
            .flatten(),
        ..DtlsParams::default()
    };
    let server_params = DtlsParams {
        mtu,
        connection_id: cids.then(|| SERVER_CID.to_vec()),
        cookies: cookies.then(|| {
            Arc::new(HmacCookies::new(Duration::from_secs(300)))
                as Arc<dyn ferrossl::dtls::CookieProvider>
        }),
        peer_addr: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 4433))),
        ..DtlsParams::default()
    };
    let client_config = configs.clients[client_index].config();
    let server_config = configs.servers[server_index].config();
    let (Ok(client), Ok(server)) = (
        DtlsEngine::new(client_config, Role::Client, client_params, now),
        DtlsEngine::new(server_config, Role::Server, server_params, now),
    ) else {
        panic!("the engines must start");
    };
    let cid_len = |on: &[u8]| if cids { on.len() } else { 0 };
    let mut client = End::new(client, client_only13, cid_len(CLIENT_CID));
    let mut server = End::new(server, server_only13, cid_len(SERVER_CID));
    collect(&mut client, &mut server);

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        // The high bit picks the end the operation is about.
        let end = if op & 0x80 != 0 {
            &mut client
        } else {
            &mut server
        };
        match op & 0x0F {
            // A real datagram, in any order.
            0..=2 => {
                if let Some(d) = end.take(input.byte()) {
                    end.deliver(&d, now);
                }
            }
            // A real datagram lost.
            3 => {
                end.take(input.byte());
            }
            // Arbitrary bytes.
            4 => {
                let len = usize::from(input.byte()) * 4;
                let d = input.bytes(len).to_vec();
                end.deliver(&d, now);
            }
            // A forged protected record.
            5 | 6 => {
                let d = forged_record(&mut input, end.cid_len);
                end.deliver_invalid(&d, now);
            }
            // A real protected record changed.
            7 | 8 => {
                if let Some(d) = corrupted_record(end, &mut input) {
                    end.deliver_invalid(&d, now);
                }
            }
            // A real datagram again.
            9 => {
                let index = usize::from(input.byte());
                if !end.seen.is_empty() {
                    let d = end.seen[index % end.seen.len()].clone();
                    end.deliver(&d, now);
                }
            }
            // Time passes: up to 2^15 ms a step, then both timers run.
            10 | 11 => {
                let step = input.byte();
                now += Duration::from_millis((1u64 << (step & 15)) + u64::from(step >> 4));
                let _ = client.engine.handle_timeout(now);
                let _ = server.engine.handle_timeout(now);
            }
            // The application sends, reads, updates its keys, closes or changes the MTU.
            12 | 13 => {
                let what = input.byte();
                let _ = match what % 5 {
                    0 | 1 => {
                        let data = input.bytes(usize::from(what)).to_vec();
                        end.engine.send(&data)
                    }
                    2 => end.engine.key_update(what & 0x80 != 0, now),
                    3 => end.engine.close(),
                    _ => end.engine.set_mtu(128 + usize::from(input.byte()) * 8),
                };
                while end.engine.recv().is_some() {}
            }
            // Everything queued, both ways.
            _ => {
                client.deliver_all(now);
                collect(&mut client, &mut server);
                server.deliver_all(now);
            }
        }
        collect(&mut client, &mut server);
    }
    // The link settles: what is still queued arrives, a few rounds.
    for _ in 0..8 {
        server.deliver_all(now);
        collect(&mut client, &mut server);
        client.deliver_all(now);
        collect(&mut client, &mut server);
    }
    let _ = (client.engine.recv(), server.engine.recv());
}

fuzz_target!(|data: &[u8]| run(data));
