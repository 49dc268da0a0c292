//! `cargo run --release -p ferrossl-bench [-- --quick] [--python PATH]`: ferrossl against rustls
//! used directly and OpenSSL 3 (the `openssl` crate) for TLS, against OpenSSL's DTLS, dimpl and
//! wolfSSL for DTLS 1.2, against wolfSSL, dimpl, and its own and OpenSSL's DTLS 1.2 for DTLS
//! 1.3, and, given an interpreter, its Python module against pyOpenSSL, `ssl` and pyrtls; in
//! memory on one thread, repetitions interleaved, printed as markdown tables of medians
//! (min–max) and ratios. `--quick` runs every row briefly to show it works; it asserts no
//! timing. wolfSSL (GPL) is linked only with the default feature `wolfssl`; without it, its
//! cells say "n/a".

// Unsafe code only where an API has no safe form, allowed one function at a time.
#![deny(unsafe_code)]

mod dtls;
mod peers;
mod python;
#[cfg(feature = "wolfssl")]
mod wolf;

/// Built without the `wolfssl` feature: no wolfSSL peer, so its cells say "n/a".
#[cfg(not(feature = "wolfssl"))]
mod wolf {
    use std::time::Duration;

    use ferrossl_testkit::pki::TestPki;

    pub enum WolfSsl {}

    impl WolfSsl {
        pub fn new(_: &TestPki) -> Option<Self> {
            None
        }

        pub fn new13(_: &TestPki, _hybrid: bool) -> Option<Self> {
            None
        }
    }

    impl crate::peers::Peer for WolfSsl {
        type Pair = ();
        fn pair(&self) {}
        fn transfer(&self, _: &mut (), _: &[u8], _: usize) {}
    }

    pub fn wolfssl_lossy(w: &WolfSsl, _: f64, _: u64, _: Duration) -> Option<Duration> {
        match *w {}
    }
}

use std::time::{Duration, Instant};

use ferrossl::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
use ferrossl_testkit::pki::TestPki;
use peers::{Ferrossl, OpenSsl, Peer, Resume, Rustls, Setup};

/// How long one measurement runs, and how many interleaved repetitions make a row.
struct Budget {
    run: Duration,
    reps: usize,
}

/// Median, min and max of a row's samples.
#[derive(Clone, Copy)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.total_cmp(b));
    Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

/// The statistics of a non-empty sample.
fn stat_of(v: Vec<f64>) -> Option<Stat> {
    (!v.is_empty()).then(|| stat(v))
}

/// Runs `op` repeatedly for the budget; returns operations per second.
fn rate(budget: &Budget, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while n < 2 || start.elapsed() < budget.run {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// What one bulk transfer moves; a DTLS transfer sends it in [`DATAGRAM_PAYLOAD`] pieces.
const BULK_BYTES: usize = 1 << 20;

/// The application payload of one DTLS datagram in the bulk row.
const DATAGRAM_PAYLOAD: usize = 1200;

/// Connected pairs made per second by `pair`.
fn handshakes<T>(mut pair: impl FnMut() -> T, budget: &Budget) -> f64 {
    rate(budget, || {
        std::hint::black_box(pair());
    })
}

/// Transfers of [`BULK_BYTES`] per second over one established pair, in `chunk` writes.
fn bulk<P: Peer>(peer: &P, budget: &Budget, chunk: usize) -> f64 {
    let data = vec![0x5a; BULK_BYTES];
    let mut pair = peer.pair();
    rate(budget, || peer.transfer(&mut pair, &data, chunk))
}

/// Resident memory growth per connection pair kept open after its handshake, in KiB.
fn memory_per_pair<P: Peer>(peer: &P, count: usize) -> f64 {
    let warm: Vec<_> = (0..16).map(|_| peer.pair()).collect();
    drop(warm);
    let before = rss_kib();
    let pairs: Vec<_> = (0..count).map(|_| peer.pair()).collect();
    let after = rss_kib();
    drop(pairs);
    (after - before) as f64 / count as f64
}

fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Sealing 1 MiB in `size` pieces with aws-lc-rs AES-128-GCM: the ceiling of bulk TLS, MB/s.
fn aes_gcm_ceiling(budget: &Budget, size: usize) -> f64 {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).unwrap());
    let mut buf = vec![0u8; size];
    let pieces = (1 << 20) / size;
    rate(budget, || {
        for i in 0..pieces {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buf,
            );
            std::hint::black_box(tag.is_ok());
        }
    }) * (pieces * size) as f64
        / 1e6
}

/// One table row: each column's samples, interleaved; None where a column cannot run it.
struct Row {
    name: String,
    unit: &'static str,
    stats: Vec<Option<Stat>>,
    target: &'static str,
}

/// Runs `f(column)` for every column, `reps` times round-robin, so that a noisy machine
/// affects every column alike.
fn measure(
    name: &str,
    unit: &'static str,
    (columns, reps): (usize, usize),
    mut f: impl FnMut(usize) -> Option<f64>,
    target: &'static str,
) -> Row {
    let mut samples = vec![Vec::new(); columns];
    for _ in 0..reps {
        for (i, s) in samples.iter_mut().enumerate() {
            s.extend(f(i));
        }
    }
    Row {
        name: name.to_string(),
        unit,
        stats: samples.into_iter().map(stat_of).collect(),
        target,
    }
}

fn cell(s: Option<Stat>, unit: &str) -> String {
    match s {
        Some(s) if unit == "KiB" => format!("{:.1} {unit}", s.median),
        Some(s) => format!("{:.0} {unit} ({:.0}–{:.0})", s.median, s.min, s.max),
        None => "n/a".into(),
    }
}

fn ratio(a: Option<Stat>, b: Option<Stat>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}×", a.median / b.median),
        _ => "n/a".into(),
    }
}

/// Prints a markdown table: the columns, then ferrossl (the first) over each of the others.
/// A row only the first column has (a ceiling) leaves the ratios empty.
fn print_table(columns: &[&str], rows: &[Row]) {
    let ratios: Vec<String> = columns[1..]
        .iter()
        .map(|c| format!("{}/{c}", columns[0]))
        .collect();
    println!(
        "| benchmark | {} | {} | target |",
        columns.join(" | "),
        ratios.join(" | ")
    );
    println!("|---|{}---|", "---|".repeat(2 * columns.len() - 1));
    for row in rows {
        let alone = row.stats[1..].iter().all(Option::is_none);
        let cells: Vec<String> = row
            .stats
            .iter()
            .enumerate()
            .map(|(i, &s)| match s {
                None if alone && i > 0 => String::new(),
                s => cell(s, row.unit),
            })
            .chain(row.stats[1..].iter().map(|&b| match alone {
                true => String::new(),
                false => ratio(row.stats[0], b),
            }))
            .collect();
        println!("| {} | {} | {} |", row.name, cells.join(" | "), row.target);
    }
}

/// Measures one implementation's memory in a fresh process, so that memory the others freed
/// cannot hide its growth (`--memory NAME COUNT`, run by [`memory_in_child`]).
fn memory_in_child(name: &str, count: usize) -> f64 {
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--memory", name, &count.to_string()])
        .output()
        .expect("run the memory probe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

fn memory_probe(name: &str, count: usize) -> f64 {
    let pki = TestPki::generate();
    let ca_path = pki.ca_path();
    let s = Setup {
        server: &pki.server_ecdsa,
        ca_der: &pki.ca.cert_der,
        ca_path: &ca_path,
        tls13: true,
        suite: "TLS_AES_128_GCM_SHA256",
        resume: false,
    };
    match name {
        "ferrossl" => memory_per_pair(&Ferrossl::new(&s), count),
        "rustls" => memory_per_pair(&Rustls::new(&s), count),
        _ => memory_per_pair(&OpenSsl::new(&s), count),
    }
}

/// The TLS rows: ferrossl, rustls and OpenSSL.
fn tls_rows(pki: &TestPki, budget: &Budget, quick: bool) -> Vec<Row> {
    let ca_path = pki.ca_path();
    let setup = |server, tls13: bool, suite, resume| Setup {
        server,
        ca_der: &pki.ca.cert_der,
        ca_path: &ca_path,
        tls13,
        suite,
        resume,
    };
    let shape = (3, budget.reps);
    let mut rows = Vec::new();
    let handshake_cases = [
        (
            "TLS 1.3 handshakes/s, ECDSA P-256",
            &pki.server_ecdsa,
            true,
            "TLS_AES_128_GCM_SHA256",
            "≥ 0.95× rustls, ≥ 1.5× OpenSSL",
        ),
        (
            "TLS 1.3 handshakes/s, RSA-2048",
            &pki.server_rsa,
            true,
            "TLS_AES_128_GCM_SHA256",
            "≥ 0.95× rustls, ≥ 1.5× OpenSSL",
        ),
        (
            "TLS 1.2 handshakes/s, ECDSA P-256",
            &pki.server_ecdsa,
            false,
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "≥ 0.95× rustls",
        ),
        (
            "TLS 1.2 handshakes/s, RSA-2048",
            &pki.server_rsa,
            false,
            "ECDHE-RSA-AES128-GCM-SHA256",
            "≥ 0.95× rustls",
        ),
    ];
    for (name, id, tls13, suite, target) in handshake_cases {
        let s = setup(id, tls13, suite, false);
        let (f, r, o) = (Ferrossl::new(&s), Rustls::new(&s), OpenSsl::new(&s));
        rows.push(measure(
            name,
            "/s",
            shape,
            |i| {
                Some(match i {
                    0 => handshakes(|| f.pair(), budget),
                    1 => handshakes(|| r.pair(), budget),
                    _ => handshakes(|| o.pair(), budget),
                })
            },
            target,
        ));
    }
    let resumed_cases = [
        (
            "TLS 1.3 resumed handshakes/s, ECDSA P-256",
            true,
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            "TLS 1.2 resumed handshakes/s, ECDSA P-256",
            false,
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
    ];
    for (name, tls13, suite) in resumed_cases {
        let s = setup(&pki.server_ecdsa, tls13, suite, true);
        let (f, r, o) = (Ferrossl::new(&s), Rustls::new(&s), OpenSsl::new(&s));
        rows.push(measure(
            name,
            "/s",
            shape,
            |i| {
                Some(match i {
                    0 => handshakes(|| f.resumed_pair(), budget),
                    1 => handshakes(|| r.resumed_pair(), budget),
                    _ => handshakes(|| o.resumed_pair(), budget),
                })
            },
            "≥ 0.95× rustls",
        ));
    }
    let suites = [
        ("AES-128-GCM", "TLS_AES_128_GCM_SHA256"),
        ("AES-256-GCM", "TLS_AES_256_GCM_SHA384"),
        ("ChaCha20-Poly1305", "TLS_CHACHA20_POLY1305_SHA256"),
    ];
    let writes = [("16 KiB", 16384), ("1 KiB", 1024)];
    for ((size, chunk), (cipher, suite)) in writes
        .into_iter()
        .flat_map(|w| suites.into_iter().map(move |s| (w, s)))
    {
        let name = format!("TLS 1.3 bulk, {size} writes, {cipher}");
        let s = setup(&pki.server_ecdsa, true, suite, false);
        let (f, r, o) = (Ferrossl::new(&s), Rustls::new(&s), OpenSsl::new(&s));
        rows.push(measure(
            &name,
            "MB/s",
            shape,
            |i| {
                let transfers = match i {
                    0 => bulk(&f, budget, chunk),
                    1 => bulk(&r, budget, chunk),
                    _ => bulk(&o, budget, chunk),
                };
                Some(transfers * BULK_BYTES as f64 / 1e6)
            },
            "≥ 0.95× rustls, ≥ 1.0× OpenSSL",
        ));
    }
    let count = if quick { 20 } else { 2000 };
    rows.push(measure(
        "memory per idle connection pair (client + server)",
        "KiB",
        (3, 1),
        |i| Some(memory_in_child(["ferrossl", "rustls", "openssl"][i], count)),
        "≤ 0.5× OpenSSL",
    ));
    for size in [16384, 1200] {
        rows.push(measure(
            &format!("ceiling: raw AES-128-GCM seal, {size}-byte records (aws-lc-rs)"),
            "MB/s",
            shape,
            |i| (i == 0).then(|| aes_gcm_ceiling(budget, size)),
            "TLS bulk ≥ 65% of it at 16 KiB",
        ));
    }
    rows
}

/// Every DTLS implementation and configuration the two DTLS tables compare; wolfSSL's are None
/// in a build without the `wolfssl` feature.
struct DtlsPeers {
    f: dtls::Ferrossl,
    o: dtls::OpenSsl,
    d: dtls::Dimpl,
    w: Option<wolf::WolfSsl>,
    /// DTLS 1.3, X25519 (ferrossl's client narrowed to it, as dimpl offers it first).
    f13: dtls::Ferrossl,
    /// DTLS 1.3 with ferrossl's default, the post-quantum hybrid, asked for by its server's
    /// HelloRetryRequest.
    f13_hybrid: dtls::Ferrossl,
    d13: dtls::Dimpl,
    w13: Option<wolf::WolfSsl>,
    w13_hybrid: Option<wolf::WolfSsl>,
}

impl DtlsPeers {
    /// The peers, each checked to negotiate what its row says.
    fn new(pki: &TestPki) -> Self {
        let p = Self {
            f: dtls::Ferrossl::new(pki),
            o: dtls::OpenSsl::new(pki),
            d: dtls::Dimpl::new(pki),
            w: wolf::WolfSsl::new(pki),
            f13: dtls::Ferrossl::new13(pki, Some(&["X25519"])),
            f13_hybrid: dtls::Ferrossl::new13(pki, None),
            d13: dtls::Dimpl::new13(pki),
            w13: wolf::WolfSsl::new13(pki, false),
            w13_hybrid: wolf::WolfSsl::new13(pki, true),
        };
        dtls::check_ferrossl(&p.f13, DTLS1_3_VERSION, Some("X25519"));
        dtls::check_ferrossl(&p.f13_hybrid, DTLS1_3_VERSION, Some("X25519MLKEM768"));
        dtls::check_ferrossl(&p.f, DTLS1_2_VERSION, None);
        dtls::check_dimpl(&p.d13, DTLS1_3_VERSION);
        p
    }
}

/// Transfers of [`BULK_BYTES`] per second in [`DATAGRAM_PAYLOAD`] pieces, as datagrams/s.
fn datagrams<P: Peer>(peer: &P, budget: &Budget) -> f64 {
    bulk(peer, budget, DATAGRAM_PAYLOAD) * BULK_BYTES.div_ceil(DATAGRAM_PAYLOAD) as f64
}

/// The DTLS 1.2 handshake and bulk rows: ferrossl, OpenSSL, dimpl and wolfSSL.
fn dtls_rows(p: &DtlsPeers, budget: &Budget) -> Vec<Row> {
    let shape = (4, budget.reps);
    let w = p.w.as_ref();
    vec![
        measure(
            "DTLS 1.2 handshakes/s, ECDSA P-256",
            "/s",
            shape,
            |i| match i {
                0 => Some(handshakes(|| p.f.pair(), budget)),
                1 => Some(handshakes(|| p.o.pair(), budget)),
                2 => Some(handshakes(|| p.d.pair(), budget)),
                _ => w.map(|w| handshakes(|| w.pair(), budget)),
            },
            "≥ 1.0× OpenSSL",
        ),
        measure(
            "DTLS 1.2 bulk, 1,200-byte payloads, datagrams/s",
            "/s",
            shape,
            |i| match i {
                0 => Some(datagrams(&p.f, budget)),
                1 => Some(datagrams(&p.o, budget)),
                2 => Some(datagrams(&p.d, budget)),
                _ => w.map(|w| datagrams(w, budget)),
            },
            "≥ 1.0× OpenSSL",
        ),
    ]
}

/// The DTLS 1.3 handshake and bulk rows: ferrossl, wolfSSL and dimpl in DTLS 1.3 (no OpenSSL
/// release has it), and ferrossl and OpenSSL in DTLS 1.2 beside them. The columns use X25519
/// but for the row of ferrossl's default, the post-quantum hybrid, which wolfSSL has too.
fn dtls13_rows(p: &DtlsPeers, budget: &Budget) -> Vec<Row> {
    let shape = (5, budget.reps);
    let (w13, w13_hybrid) = (p.w13.as_ref(), p.w13_hybrid.as_ref());
    vec![
        measure(
            "DTLS 1.3 handshakes/s, ECDSA P-256, X25519",
            "/s",
            shape,
            |i| match i {
                0 => Some(handshakes(|| p.f13.pair(), budget)),
                1 => w13.map(|w| handshakes(|| w.pair(), budget)),
                2 => Some(handshakes(|| p.d13.pair(), budget)),
                3 => Some(handshakes(|| p.f.pair(), budget)),
                _ => Some(handshakes(|| p.o.pair(), budget)),
            },
            "—",
        ),
        measure(
            "DTLS 1.3 handshakes/s, ECDSA P-256, X25519MLKEM768 after a HelloRetryRequest",
            "/s",
            shape,
            |i| match i {
                0 => Some(handshakes(|| p.f13_hybrid.pair(), budget)),
                1 => w13_hybrid.map(|w| handshakes(|| w.pair(), budget)),
                _ => None,
            },
            "—",
        ),
        measure(
            "DTLS 1.3 bulk, 1,200-byte payloads, datagrams/s",
            "/s",
            shape,
            |i| match i {
                0 => Some(datagrams(&p.f13, budget)),
                1 => w13.map(|w| datagrams(w, budget)),
                2 => Some(datagrams(&p.d13, budget)),
                3 => Some(datagrams(&p.f, budget)),
                _ => Some(datagrams(&p.o, budget)),
            },
            "—",
        ),
    ]
}

type Run<'scope> = std::thread::ScopedJoinHandle<'scope, Option<Duration>>;

/// Starts `run(seed)` for seeds 1 to `seeds`, each on a thread of its own.
fn spawn_runs<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    seeds: u64,
    run: impl Fn(u64) -> Option<Duration> + Send + Copy + 'scope,
) -> Vec<Run<'scope>> {
    (1..=seeds)
        .map(|seed| scope.spawn(move || run(seed)))
        .collect()
}

/// A column of a handshake-under-loss row: completion times (ms) and how many runs it had.
type Times = (Vec<f64>, usize);

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

/// The completion times of the runs that completed.
fn joined(runs: Vec<Run<'_>>) -> Times {
    let n = runs.len();
    let times = runs
        .into_iter()
        .filter_map(|r| r.join().expect("lossy run"));
    (times.map(ms).collect(), n)
}

/// A handshake-under-loss row; the name says how many runs of each column completed.
fn lossy_row(name: String, columns: &[(&str, &Times)]) -> Row {
    let completed: Vec<String> = columns
        .iter()
        .map(|(who, (times, runs))| format!("{who} {}/{runs}", times.len()))
        .collect();
    Row {
        name: format!("{name}; completed: {}", completed.join(", ")),
        unit: "ms",
        stats: columns.iter().map(|(_, t)| stat_of(t.0.clone())).collect(),
        target: "completes under 30% loss",
    }
}

/// The handshake-under-loss rows of both DTLS tables, a 10% and a 30% loss row in each, over
/// `seeds` seeded runs per column, every implementation on the same seeded links: ferrossl's
/// and dimpl's on a fake clock, OpenSSL's and wolfSSL's (whose timers read the wall clock) on
/// the real one. Those mostly sleep: all of them go at once, each on a thread of its own,
/// while the simulated runs compute, so that they take about the time of the slowest.
/// OpenSSL's runs serve both tables.
fn lossy_rows(p: &DtlsPeers, quick: bool) -> (Vec<Row>, Vec<Row>) {
    let seeds = if quick { 2 } else { 25 };
    // The wall-clock runs take real time: quick mode shows that they complete, briefly (four
    // seeds at once, so that a seed whose retransmissions keep being lost leaves a number).
    let (wall_seeds, limit) = if quick {
        (4, Duration::from_secs(8))
    } else {
        (seeds, dtls::LOSSY_LIMIT)
    };
    let simulated = |run: &dyn Fn(u64) -> Option<Duration>| -> Times {
        (
            (1..=seeds).filter_map(run).map(ms).collect(),
            seeds as usize,
        )
    };
    let (mut rows12, mut rows13) = (Vec::new(), Vec::new());
    std::thread::scope(|scope| {
        // No wolfSSL runs in a build without it.
        let wolf_seeds = |w: Option<&wolf::WolfSsl>| if w.is_some() { wall_seeds } else { 0 };
        let losses = [0.1, 0.3];
        let wall = losses.map(|loss| {
            let o = &p.o;
            let openssl = spawn_runs(scope, wall_seeds, move |seed| {
                dtls::openssl_lossy(o, loss, seed, limit)
            });
            let (w, w13) = (p.w.as_ref(), p.w13.as_ref());
            let w = spawn_runs(scope, wolf_seeds(w), move |seed| {
                wolf::wolfssl_lossy(w?, loss, seed, limit)
            });
            let w13 = spawn_runs(scope, wolf_seeds(w13), move |seed| {
                wolf::wolfssl_lossy(w13?, loss, seed, limit)
            });
            (openssl, w, w13)
        });
        let simulated = losses.map(|loss| {
            [
                simulated(&|seed| dtls::ferrossl_lossy(&p.f, loss, seed)),
                simulated(&|seed| dtls::dimpl_lossy(&p.d, loss, seed)),
                simulated(&|seed| dtls::ferrossl_lossy(&p.f13, loss, seed)),
                simulated(&|seed| dtls::dimpl_lossy(&p.d13, loss, seed)),
            ]
        });
        for ((loss, (o, w, w13)), [f, d, f13, d13]) in losses.into_iter().zip(wall).zip(simulated) {
            let (o, w, w13) = (joined(o), joined(w), joined(w13));
            let pct = loss * 100.0;
            rows12.push(lossy_row(
                format!(
                    "DTLS 1.2 handshake time, {pct:.0}% loss (ms; OpenSSL's and wolfSSL's on \
                     the wall clock)"
                ),
                &[
                    ("ferrossl", &f),
                    ("OpenSSL", &o),
                    ("dimpl", &d),
                    ("wolfSSL", &w),
                ],
            ));
            rows13.push(lossy_row(
                format!(
                    "DTLS 1.3 handshake time, {pct:.0}% loss (ms; wolfSSL's and OpenSSL's on \
                     the wall clock)"
                ),
                &[
                    ("ferrossl 1.3", &f13),
                    ("wolfSSL 1.3", &w13),
                    ("dimpl 1.3", &d13),
                    ("ferrossl 1.2", &f),
                    ("OpenSSL 1.2", &o),
                ],
            ));
        }
    });
    (rows12, rows13)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, name, count] = args.as_slice() {
        if flag == "--memory" {
            println!("{:.2}", memory_probe(name, count.parse().unwrap_or(1000)));
            return;
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let python = args
        .iter()
        .position(|a| a == "--python")
        .and_then(|i| args.get(i + 1));
    let budget = if quick {
        Budget {
            run: Duration::from_millis(20),
            reps: 1,
        }
    } else {
        Budget {
            run: Duration::from_millis(400),
            reps: 5,
        }
    };
    let pki = TestPki::generate();
    print_table(
        &["ferrossl", "rustls", "OpenSSL"],
        &tls_rows(&pki, &budget, quick),
    );
    println!();
    let dtls_peers = DtlsPeers::new(&pki);
    let mut dtls12 = dtls_rows(&dtls_peers, &budget);
    let mut dtls13 = dtls13_rows(&dtls_peers, &budget);
    let (lossy12, lossy13) = lossy_rows(&dtls_peers, quick);
    dtls12.extend(lossy12);
    dtls13.extend(lossy13);
    print_table(&["ferrossl", "OpenSSL", "dimpl", "wolfSSL"], &dtls12);
    println!();
    print_table(
        &[
            "ferrossl 1.3",
            "wolfSSL 1.3",
            "dimpl 1.3",
            "ferrossl 1.2",
            "OpenSSL 1.2",
        ],
        &dtls13,
    );
    println!();
    match python {
        Some(interpreter) => {
            if !python::run(interpreter, &pki, quick) {
                std::process::exit(1);
            }
        }
        None => println!("Python rows: not run (give --python PATH, an interpreter with ferrossl, pyOpenSSL and pyrtls)"),
    }
    if quick {
        println!("\nquick mode: every row ran; the numbers are not meant to be read");
    }
}
