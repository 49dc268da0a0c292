//! Hostile clients against `ferrossl s_server` (issue 16): random bytes, half-open and
//! oversized ClientHellos over TCP; random datagrams and spoofed ClientHellos against
//! `s_server -dtls`. Each test ends by showing that a normal client still gets in and that the
//! server still runs. Every loop and wait is bounded, every socket is on 127.0.0.0/8, and the
//! junk comes from a seeded generator so that a failure can be replayed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use ferrossl::{Connection, Context, Error, Method};
use ferrossl_testkit::peer::{self, PeerProcess};

const FERROSSL: &str = env!("CARGO_BIN_EXE_ferrossl");
const TIMEOUT: Duration = Duration::from_secs(10);
/// TLS alert descriptions (RFC 8446 §6) the server may send.
const DECODE_ERROR: u8 = 50;

/// xorshift64*: junk that is the same on every run (a failing seed replays).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------
// The server under test, and what it costs

/// One test at a time: each floods the machine, and the 2 s deadline of a normal client
/// must not pay for another test's flood.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn s_server(accept: &str, extra: &[&str]) -> PeerProcess {
    let mut args = vec!["s_server", "-accept", accept];
    args.extend(extra);
    let mut cmd = std::process::Command::new(FERROSSL);
    cmd.args(&args);
    let mut server = PeerProcess::spawn(&mut cmd).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    server
}

/// Ends the server, failing unless it was still running and never panicked.
fn assert_still_running(mut server: PeerProcess) {
    let said = server.stderr();
    assert!(!said.contains("panicked"), "{said}");
    let end = server.wait_with_timeout(Duration::from_millis(200));
    let err = end.expect_err("the server exited by itself");
    assert!(err.to_string().contains("still running"), "{err}");
}

/// What the server process holds, from /proc: its peak resident memory and its threads.
#[derive(Clone, Copy, Debug)]
struct Usage {
    peak_kb: u64,
    threads: u64,
}

/// A `ferrossl s_server` on 127.0.0.1, its pid, and what it used when it started.
struct Hosted {
    server: PeerProcess,
    pid: u32,
    before: Usage,
}

fn host(port: u16, extra: &[&str]) -> Hosted {
    let accept = format!("127.0.0.1:{port}");
    let server = s_server(&accept, extra);
    let pid = server_pid(&accept);
    Hosted {
        server,
        pid,
        before: usage(pid),
    }
}

/// The pid of the `ferrossl` serving `accept` (unique by its port), found by command line:
/// the peer wrapper does not hand out its child's id.
fn server_pid(accept: &str) -> u32 {
    let mine = |cmdline: &[u8]| {
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.first() == Some(&FERROSSL.as_bytes()) && args.contains(&accept.as_bytes())
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .find(|(_, path)| std::fs::read(path.join("cmdline")).is_ok_and(|c| mine(&c)))
        .map(|(pid, _)| pid)
        .unwrap_or_else(|| panic!("no ferrossl process serves {accept}"))
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    Usage {
        peak_kb: field("VmHWM:"),
        threads: field("Threads:"),
    }
}

/// Polls `pid` until its thread count is at most `at_most`; the count it ended at.
fn threads_settle(pid: u32, at_most: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let threads = usage(pid).threads;
        if threads <= at_most || Instant::now() > deadline {
            return threads;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// Normal clients and TLS bytes

/// One handshake and `GET /` against `-www` by the library's own client, one attempt, no
/// retries: the handshake must finish within `within`. Returns the page and the time from
/// connect to the end of the handshake.
fn get_page(port: u16, within: Duration) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    // A short read timeout returns WantRead, so the loops below can look at the clock.
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut conn = Connection::with_stream(&Context::new(Method::TlsClient), stream).unwrap();
    conn.set_connect_state().unwrap();
    loop {
        match conn.do_handshake() {
            Ok(()) => break,
            Err(Error::WantRead) if started.elapsed() < within => {}
            Err(e) => return Err(format!("handshake after {:?}: {e}", started.elapsed())),
        }
    }
    let handshake = started.elapsed();
    conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let page = read_to_close_notify(&mut conn, Instant::now() + TIMEOUT)?;
    Ok((page, handshake))
}

fn read_to_close_notify(conn: &mut Connection, deadline: Instant) -> Result<String, String> {
    let mut page = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.recv(&mut buf) {
            Ok(n) => page.extend_from_slice(&buf[..n]),
            Err(Error::ZeroReturn) => return Ok(String::from_utf8_lossy(&page).into_owned()),
            Err(Error::WantRead) if Instant::now() < deadline => {}
            Err(e) => return Err(format!("page: {e} after {page:?}")),
        }
    }
}

/// A normal client gets the status page, within `within` for its handshake.
fn assert_served(port: u16, within: Duration) -> Duration {
    let (page, took) = get_page(port, within).unwrap();
    assert!(
        page.starts_with("HTTP/1.0 200 ok") && page.contains("ferrossl s_server"),
        "{page}"
    );
    took
}

/// The first flight of the library's own TLS client: a ClientHello record.
fn tls_client_hello() -> Vec<u8> {
    let mut conn = Connection::new(&Context::new(Method::TlsClient)).unwrap();
    conn.set_connect_state().unwrap();
    assert!(matches!(conn.do_handshake(), Err(Error::WantRead)));
    let hello = conn.bio_read(65_536).unwrap();
    assert_eq!(hello[..2], [0x16, 0x03], "a handshake record");
    hello
}

/// A TLS record: handshake type, version 3.1, the fragment's length, the fragment.
fn record(fragment: &[u8]) -> Vec<u8> {
    let len = u16::try_from(fragment.len()).unwrap().to_be_bytes();
    [&[0x16, 0x03, 0x01, len[0], len[1]], fragment].concat()
}

/// How a connection ended from the client's side.
#[derive(Debug, PartialEq)]
enum End {
    /// The server closed (EOF or reset) after sending these bytes.
    Closed(Vec<u8>),
    /// Still open at the deadline.
    Open(Vec<u8>),
}

/// Reads until the server closes the connection or `deadline` passes.
fn read_until_closed(s: &mut TcpStream, deadline: Instant) -> End {
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return End::Open(said);
        }
        s.set_read_timeout(Some(left.min(Duration::from_millis(100))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return End::Closed(said),
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return End::Closed(said),
        }
    }
}

/// The (level, description) of a TLS alert record at the start of `said`.
fn alert(said: &[u8]) -> Option<(u8, u8)> {
    (said.len() >= 7 && said[0] == 0x15 && said[3..5] == [0, 2]).then(|| (said[5], said[6]))
}

/// Whether the server has not closed `s` yet (nothing to read, no EOF).
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let open = matches!((&*s).read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

// ---------------------------------------------------------------------------------------
// 1. Random bytes

/// What one junk connection sends, and whether the server must close it at once.
struct Junk {
    bytes: Vec<u8>,
    /// Read until the server closes, instead of closing first.
    read: bool,
    /// The bytes are already a protocol error (bad record type, oversized or empty record,
    /// a whole or oversized handshake message), so the server has no reason to wait.
    refusable: bool,
}

fn junk(seed: u64) -> Junk {
    let mut rng = Rng::new(seed);
    let read = rng.below(2) == 0;
    let len = rng.below(20_000) as usize;
    let bytes = match rng.below(8) {
        0 => Vec::new(),
        1..=3 => rng.bytes(len),
        4 | 5 => [&[0x16, 0x03, 0x01][..], &rng.bytes(len)].concat(),
        _ => record(&rng.bytes(len.min(16_384))),
    };
    Junk {
        refusable: refusable(&bytes),
        bytes,
        read,
    }
}

/// Whether rustls must refuse `b` as it stands: a record header it rejects (unknown type, a
/// version not 3.x, empty, or over 2^14 + 2048 bytes), or a whole handshake record whose
/// first message it rejects on sight (over 64 KiB) or has whole (junk: never a good hello).
fn refusable(b: &[u8]) -> bool {
    if b.len() < 5 {
        return false;
    }
    let record_len = usize::from(u16::from_be_bytes([b[3], b[4]]));
    if !(20..=23).contains(&b[0]) || b[1] != 0x03 || record_len >= 16_384 + 2048 {
        return true;
    }
    if record_len == 0 && b[0] != 23 {
        return true;
    }
    let Some(fragment) = b.get(5..5 + record_len) else {
        return false;
    };
    if b[0] != 0x16 || fragment.len() < 4 {
        return false;
    }
    let message_len = u32::from_be_bytes([0, fragment[1], fragment[2], fragment[3]]) as usize;
    message_len > 0xffff || message_len + 4 <= fragment.len()
}

/// What the 1,000 junk connections saw.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    read: usize,
    /// Of those read, the ones the server had to refuse at once.
    refusable: usize,
    closed: usize,
    alerts: usize,
    left_open: usize,
    /// Refusable junk the server did not close within the bound: the defects.
    kept: Vec<u64>,
}

fn run_junk(port: u16, seed: u64, tally: &Mutex<Tally>) {
    let junk = junk(seed);
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        panic!("connection {seed} refused");
    };
    // The server may close before all is sent: a failed write is its right.
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(&junk.bytes);
    let mut t = tally.lock().unwrap();
    t.sent += junk.bytes.len();
    if !junk.read {
        return;
    }
    drop(t);
    // Well under the default -handshake_timeout (10 s): refused, not timed out.
    let bound = if junk.refusable { 5000 } else { 300 };
    let end = read_until_closed(&mut s, Instant::now() + Duration::from_millis(bound));
    let mut t = tally.lock().unwrap();
    t.read += 1;
    t.refusable += usize::from(junk.refusable);
    match end {
        End::Closed(said) => {
            t.closed += 1;
            t.alerts += usize::from(alert(&said).is_some());
        }
        End::Open(_) if junk.refusable => t.kept.push(seed),
        End::Open(_) => t.left_open += 1,
    }
}

/// 1,000 connections of junk, 50 at a time; the server closes what is plainly wrong, stays
/// up, and serves a normal client afterwards.
#[test]
fn random_bytes_from_a_thousand_connections() {
    let _serial = one_at_a_time();
    let port = peer::free_tcp_port();
    let Hosted {
        server,
        pid,
        before,
    } = host(port, &["-www"]);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    thread::scope(|scope| {
        for _ in 0..50 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= 1000 {
                    break;
                }
                run_junk(port, 0x5EED_0000 + i as u64, &tally);
            });
        }
    });
    let tally = tally.into_inner().unwrap();
    eprintln!("junk: {tally:?} in {:?}", started.elapsed());
    assert!(tally.kept.is_empty(), "refusable junk kept open: {tally:?}");
    assert!(tally.closed > 0 && tally.alerts > 0, "{tally:?}");
    let took = assert_served(port, Duration::from_secs(2));
    let threads = threads_settle(pid, before.threads + 2, Duration::from_secs(5));
    let after = usage(pid);
    eprintln!("normal client's handshake {took:?}; server {before:?} -> {after:?}");
    assert!(threads <= before.threads + 2, "threads left: {after:?}");
    assert_still_running(server);
}

// ---------------------------------------------------------------------------------------
// 2. Half-open ClientHellos

/// `count` connections, opened as fast as they go, that send the first 50 bytes of a real
/// ClientHello and stall. Each must be accepted by the kernel at once: a connect that takes
/// a second had its SYN dropped by a full accept queue.
fn stall(port: u16, count: usize) -> Vec<TcpStream> {
    let partial = tls_client_hello()[..50].to_vec();
    (0..count)
        .map(|i| {
            let started = Instant::now();
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(900),
                "connect {i} took {took:?}"
            );
            s.write_all(&partial).unwrap();
            s
        })
        .collect()
}

/// Waits until the server has said `needle` `count` times (its stderr is read by a thread).
fn wait_for_count(server: &PeerProcess, needle: &str, count: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let seen = server.stderr().matches(needle).count();
        if seen >= count || Instant::now() > deadline {
            return seen;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for the server to close every one of `stalled`, reading them in order: the first
/// one's close and the latest, since `from`.
fn all_closed(stalled: &mut [TcpStream], from: Instant, bound: Duration) -> (Duration, Duration) {
    let deadline = from + bound;
    let mut closes = Vec::new();
    for (i, s) in stalled.iter_mut().enumerate() {
        let end = read_until_closed(s, deadline);
        assert!(
            matches!(end, End::Closed(_)),
            "stalled {i} still open: {end:?}"
        );
        closes.push(from.elapsed());
    }
    (closes[0], closes[closes.len() - 1])
}

/// 200 half-open ClientHellos: a normal client still finishes its handshake within 2 s
/// while they stand, and the server closes them once -handshake_timeout (2 s) has passed.
#[test]
fn half_open_hellos_neither_keep_others_out_nor_stay() {
    let _serial = one_at_a_time();
    let port = peer::free_tcp_port();
    let Hosted {
        server,
        pid,
        before,
    } = host(port, &["-www", "-handshake_timeout", "2"]);
    let opened = Instant::now();
    let mut stalled = stall(port, 200);
    let opening = opened.elapsed();
    let took = assert_served(port, Duration::from_secs(2));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let open = stalled.iter().filter(|s| still_open(s)).count();
    let during = usage(pid);
    assert_eq!(
        open, 200,
        "the half-open ones stood while the client was served"
    );
    // The first one opened is read first: its close is timed exactly.
    let (first, last) = all_closed(&mut stalled, opened, Duration::from_secs(6));
    assert!(
        first >= Duration::from_millis(1900),
        "closed early: {first:?}"
    );
    let threads = threads_settle(pid, before.threads + 2, Duration::from_secs(3));
    eprintln!(
        "200 stalled opened in {opening:?}; normal handshake {took:?}; closed from {first:?} \
         to {last:?}; server {before:?} -> {during:?} -> {threads} threads"
    );
    assert!(threads <= before.threads + 2, "threads left: {threads}");
    assert_served(port, Duration::from_secs(2));
    assert_still_running(server);
}

/// Up to -max_conns (20) stalled connections are held; more are closed on arrival, a normal
/// client among them too, and once the stalled ones time out the server serves again.
#[test]
fn beyond_max_conns_arrivals_are_closed_until_the_stalled_time_out() {
    let _serial = one_at_a_time();
    let port = peer::free_tcp_port();
    let accept = format!("127.0.0.1:{port}");
    let server = s_server(
        &accept,
        &["-www", "-max_conns", "20", "-handshake_timeout", "2"],
    );
    let opened = Instant::now();
    let mut stalled = stall(port, 20);
    let mut extra = stall(port, 10);
    let (_, refused) = all_closed(&mut extra, opened, Duration::from_secs(1));
    // Turned away at once, not left to time out.
    let asked = Instant::now();
    let turned_away = get_page(port, Duration::from_secs(1)).expect_err("served beyond 20");
    let answered = asked.elapsed();
    // Under the 2 s -handshake_timeout: closed on arrival, not left to time out.
    assert!(
        answered < Duration::from_millis(1500),
        "{turned_away} after {answered:?}"
    );
    let open = stalled.iter().filter(|s| still_open(s)).count();
    assert_eq!(open, 20, "the first 20 are held until their deadline");
    assert_eq!(wait_for_count(&server, "(-max_conns)", 11), 11);
    let (_, last) = all_closed(&mut stalled, opened, Duration::from_secs(6));
    let (attempts, served) = serve_again(port, Duration::from_secs(1));
    eprintln!(
        "max_conns: extra closed by {refused:?}, a normal client turned away in {answered:?} \
         ({turned_away}), stalled closed by {last:?}, served again after {attempts} \
         attempt(s) in {served:?}"
    );
    assert_still_running(server);
}

/// Connects until a normal client is served, for at most `within`: a stalled connection's
/// slot is given back just after its socket closes, so the first try may come too early.
fn serve_again(port: u16, within: Duration) -> (u32, Duration) {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match get_page(port, Duration::from_secs(2)) {
            Ok(_) => return (attempts, started.elapsed()),
            Err(e) if started.elapsed() > within => panic!("not served again: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. Oversized ClientHellos

/// A handshake record of 16,384 bytes opening a ClientHello that claims `claimed` bytes.
fn oversized_hello_start(claimed: u32) -> Vec<u8> {
    let mut fragment = vec![1];
    fragment.extend_from_slice(&claimed.to_be_bytes()[1..]);
    fragment.extend(Rng::new(u64::from(claimed)).bytes(16_384 - 4));
    record(&fragment)
}

/// Sends `bytes`, then reads what the server answers until it closes (within 3 s): what
/// it said, failing unless it closed within a second.
fn answer_to(port: u16, bytes: &[u8], what: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    let _ = s.write_all(bytes);
    let end = read_until_closed(&mut s, started + Duration::from_secs(6));
    let took = started.elapsed();
    eprintln!("{what}: {end:?} after {took:?}");
    let End::Closed(said) = end else {
        panic!("{what}: still open");
    };
    // Under half the default -handshake_timeout (10 s): refused, not timed out.
    assert!(
        took < Duration::from_secs(5),
        "{what}: closed after {took:?}"
    );
    said
}

/// Streams a ClientHello claiming 16 MiB, record after record (all 16 MiB if the server
/// kept reading); returns the bytes written before the server closed, and how it ended.
fn stream_sixteen_mib(port: u16) -> (usize, End) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut reader = s.try_clone().unwrap();
    let reading = thread::spawn(move || read_until_closed(&mut reader, Instant::now() + TIMEOUT));
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let continuation = record(&Rng::new(16).bytes(16_384));
    let mut written = 0;
    let mut chunk = oversized_hello_start(0xFF_FFFF);
    while written < (16 << 20) && s.write_all(&chunk).is_ok() {
        written += chunk.len();
        chunk.clone_from(&continuation);
    }
    (written, reading.join().unwrap())
}

/// ClientHellos too large for any sane limit are refused at once (rustls holds a handshake
/// message to 64 KiB, a record to 2^14 + 2048 bytes), the server's memory does not follow
/// the claim, and a normal client is served afterwards.
#[test]
fn oversized_client_hellos_are_refused_at_once() {
    let _serial = one_at_a_time();
    let port = peer::free_tcp_port();
    let Hosted {
        server,
        pid,
        before,
    } = host(port, &["-www"]);
    // A handshake message claiming 16 MiB, then one just over rustls's 64 KiB, each in one
    // whole record. rustls refuses them on sight but queues no alert for this error (its
    // Acceptor hands back an empty AcceptedAlert), so the server closes without one: a
    // clean EOF. Should the library learn to send decode_error here, that passes too.
    for (claim, what) in [(0xFF_FFFF, "16 MiB ClientHello"), (0x1_0000, "64 KiB + 1")] {
        let said = answer_to(port, &oversized_hello_start(claim), what);
        let quiet_or_decode_error = said.is_empty() || alert(&said) == Some((2, DECODE_ERROR));
        assert!(quiet_or_decode_error, "{what}: {said:?}");
    }
    // A record header promising 65,535 bytes (TLSPlaintext allows 2^14, rustls 2^14 + 2048):
    // decode_error, before the rest arrives.
    let big_record = [&[0x16, 0x03, 0x01, 0xff, 0xff][..], &[1; 4096]].concat();
    let said = answer_to(port, &big_record, "65,535-byte record");
    assert_eq!(alert(&said), Some((2, DECODE_ERROR)), "{said:?}");
    // A record of 2^14 + 257 bytes holding a whole 16,637-byte junk ClientHello.
    let overflow = record(&[&[1, 0, 0x40, 0xfd][..], &[0x03; 16_637]].concat());
    let said = answer_to(port, &overflow, "2^14 + 257-byte record");
    assert_eq!(
        alert(&said).map(|a| a.0),
        Some(2),
        "a fatal alert: {said:?}"
    );
    let (written, streamed) = stream_sixteen_mib(port);
    eprintln!("16 MiB streamed: {written} bytes written before {streamed:?}");
    assert!(written < 16 << 20, "the server read all 16 MiB");
    assert!(matches!(streamed, End::Closed(_)), "{streamed:?}");
    assert_served(port, Duration::from_secs(2));
    let after = usage(pid);
    eprintln!("server {before:?} -> {after:?}");
    assert!(
        after.peak_kb < before.peak_kb + 8 * 1024,
        "{before:?} -> {after:?}"
    );
    assert_still_running(server);
}

// ---------------------------------------------------------------------------------------
// 4. DTLS: random datagrams and spoofed ClientHellos

/// The first datagram of the library's DTLS client: a ClientHello without a cookie.
fn dtls_client_hello() -> Vec<u8> {
    let mut conn = Connection::new(&Context::new(Method::DtlsClient)).unwrap();
    conn.set_connect_state().unwrap();
    assert!(matches!(conn.do_handshake(), Err(Error::WantRead)));
    let hello = conn.bio_read(65_535).unwrap();
    assert_eq!(
        hello[..3],
        [0x16, 0xfe, 0xfd],
        "a plaintext handshake record (DTLS 1.3 keeps 1.2's header for it)"
    );
    hello
}

/// A random datagram of 0..1500 bytes; every fourth starts with a DTLS 1.2 handshake
/// record header (epoch 0), and some of those claim to be a ClientHello.
fn random_datagram(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(1500) as usize;
    let mut d = rng.bytes(len);
    if d.len() > 14 && rng.below(4) == 0 {
        d[..5].copy_from_slice(&[0x16, 0xfe, 0xfd, 0, 0]);
        d[13] = if rng.below(2) == 0 { 1 } else { d[13] };
    }
    d
}

/// Every datagram already waiting on `s` (none is waited for).
fn drain(s: &UdpSocket) -> Vec<Vec<u8>> {
    s.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_535];
    // More than the server could ever owe, so the loop is bounded.
    while got.len() < 20_000 {
        match s.recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    s.set_nonblocking(false).unwrap();
    got
}

/// The next datagram on `s`, waiting at most `within`.
fn receive(s: &UdpSocket, within: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = s.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// How long the server is given to answer before the answers are counted: it answers at
/// once or never, so this only covers scheduling.
const SETTLE: Duration = Duration::from_millis(300);

/// 10,000 random datagrams from 8 sockets; the server may answer none of them with more
/// than it got.
fn datagram_flood(server: SocketAddr) {
    let sockets: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut rng = Rng::new(0xD7_15);
    let mut sent = [(0usize, 0usize); 8];
    for i in 0..10_000 {
        let d = random_datagram(&mut rng);
        let _ = sockets[i % 8].send_to(&d, server);
        sent[i % 8].0 += 1;
        sent[i % 8].1 += d.len();
        if i % 200 == 199 {
            // Loopback drops what overflows the server's buffer; keep most of it arriving.
            thread::sleep(Duration::from_millis(2));
        }
    }
    thread::sleep(SETTLE);
    for (s, (count, bytes)) in sockets.iter().zip(sent) {
        let replies = drain(s);
        let replied: usize = replies.iter().map(Vec::len).sum();
        assert!(replies.len() <= count && replied <= bytes, "amplified");
        if !replies.is_empty() {
            eprintln!(
                "{} replies ({replied} bytes) to random datagrams",
                replies.len()
            );
        }
    }
}

/// A UDP socket on the `n`th loopback address after 127.0.0.1 (Linux routes all of
/// 127.0.0.0/8 to lo, so these are sources a server cannot tell from remote ones).
fn spoofed_source(n: usize) -> UdpSocket {
    UdpSocket::bind(format!("127.0.{}.{}:0", 1 + n / 250, 2 + n % 250)).unwrap()
}

/// One ClientHello (offering DTLS 1.3 and 1.2) from each of `count` addresses (50 at a
/// time, so that loopback drops none), never followed up: each gets exactly one stateless
/// HelloRetryRequest no larger than the hello (RFC 9147 §5.1), and nothing more.
fn spoofed_hellos(server: SocketAddr, count: usize) -> Duration {
    let hello = dtls_client_hello();
    let started = Instant::now();
    let mut sources = Vec::new();
    for batch in 0..count.div_ceil(50) {
        let first = sources.len();
        sources.extend((batch * 50..count.min(batch * 50 + 50)).map(spoofed_source));
        for s in &sources[first..] {
            s.send_to(&hello, server).unwrap();
        }
        for s in &sources[first..] {
            let r = receive(s, Duration::from_secs(2));
            let r = r.unwrap_or_else(|| panic!("{:?}: no answer", s.local_addr()));
            assert!(
                r.len() <= hello.len(),
                "amplified: {} > {}",
                r.len(),
                hello.len()
            );
            // A HelloRetryRequest is a ServerHello (type 2) with a special random.
            assert!(r[0] == 0x16 && r[13] == 2, "a HelloRetryRequest: {r:?}");
        }
    }
    let answered = started.elapsed();
    thread::sleep(SETTLE);
    for s in &sources {
        let more = drain(s);
        assert!(more.is_empty(), "{:?} got more: {more:?}", s.local_addr());
    }
    answered
}

/// `openssl s_client -dtls1_2` sends a line and gets it echoed.
fn openssl_dtls_echo(port: u16) {
    let args = ["-dtls1_2".to_string()];
    let mut client = PeerProcess::spawn(&mut peer::openssl_s_client(port, &args)).unwrap();
    client.write_stdin(b"still here after the flood\n").unwrap();
    client
        .wait_for_output("still here after the flood", TIMEOUT)
        .unwrap();
    client.kill();
}

/// `s_server -dtls`: 10,000 random datagrams and ClientHellos from 500 addresses that never
/// answer; no amplification, no state or threads kept, and openssl's client still connects.
#[test]
fn dtls_server_shrugs_off_random_datagrams_and_spoofed_hellos() {
    let _serial = one_at_a_time();
    if !peer::require_tool("openssl") {
        return;
    }
    let port = peer::free_udp_port();
    let Hosted {
        server,
        pid,
        before,
    } = host(port, &["-dtls"]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    datagram_flood(addr);
    let flood = started.elapsed();
    let spoofed = spoofed_hellos(addr, 500);
    let after = usage(pid);
    eprintln!("dtls: flood {flood:?}, 500 spoofed hellos {spoofed:?}; {before:?} -> {after:?}");
    assert!(after.threads <= before.threads, "{before:?} -> {after:?}");
    assert!(
        after.peak_kb < before.peak_kb + 16 * 1024,
        "{before:?} -> {after:?}"
    );
    openssl_dtls_echo(port);
    assert_still_running(server);
}
