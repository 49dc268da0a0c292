//! `cargo run --release -p ferrossl-bench [-- --quick] [--python PATH]`: ferrossl against rustls
//! used directly and OpenSSL 3 (the `openssl` crate) for TLS, against OpenSSL's DTLS and dimpl
//! for DTLS 1.2, against dimpl and its own DTLS 1.2 for DTLS 1.3, and, given an interpreter, its Python module against pyOpenSSL, `ssl` and
//! pyrtls; in memory on one thread, repetitions interleaved, printed as markdown tables of
//! medians (min–max) and ratios. `--quick` runs every row briefly to show it works; it asserts
//! no timing.

// Unsafe code only where an API has no safe form, allowed one function at a time.
#![deny(unsafe_code)]

mod dtls;
mod peers;
mod python;

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

/// The DTLS 1.2 rows: ferrossl, OpenSSL and dimpl.
fn dtls_rows(pki: &TestPki, budget: &Budget, quick: bool) -> Vec<Row> {
    let (f, o, d) = (
        dtls::Ferrossl::new(pki),
        dtls::OpenSsl::new(pki),
        dtls::Dimpl::new(pki),
    );
    let shape = (3, budget.reps);
    let mut rows = vec![measure(
        "DTLS 1.2 handshakes/s, ECDSA P-256",
        "/s",
        shape,
        |i| {
            Some(match i {
                0 => handshakes(|| f.pair(), budget),
                1 => handshakes(|| o.pair(), budget),
                _ => handshakes(|| d.pair(), budget),
            })
        },
        "≥ 1.0× OpenSSL",
    )];
    // Datagrams per second: transfers per second times the datagrams in one transfer.
    let per_transfer = BULK_BYTES.div_ceil(DATAGRAM_PAYLOAD) as f64;
    rows.push(measure(
        "DTLS 1.2 bulk, 1,200-byte payloads, datagrams/s",
        "/s",
        shape,
        |i| {
            let transfers = match i {
                0 => bulk(&f, budget, DATAGRAM_PAYLOAD),
                1 => bulk(&o, budget, DATAGRAM_PAYLOAD),
                _ => bulk(&d, budget, DATAGRAM_PAYLOAD),
            };
            Some(transfers * per_transfer)
        },
        "≥ 1.0× OpenSSL",
    ));
    let seeds = if quick { 2 } else { 25 };
    // OpenSSL's runs take real time: quick mode shows that one completes, briefly.
    let (wall_seeds, wall_limit) = if quick {
        (1, Duration::from_secs(5))
    } else {
        (seeds, dtls::LOSSY_LIMIT)
    };
    let cases = [
        (
            0.1,
            "DTLS 1.2 handshake time, 10% loss (ms; OpenSSL's on the wall clock)",
        ),
        (
            0.3,
            "DTLS 1.2 handshake time, 30% loss (ms; OpenSSL's on the wall clock)",
        ),
    ];
    std::thread::scope(|scope| {
        // OpenSSL's runs mostly sleep: all of them at once, each on its own thread, while the
        // simulated runs compute, so that they take about the time of the slowest.
        let o = &o;
        let runs: Vec<Vec<_>> = cases
            .iter()
            .map(|&(loss, _)| {
                (1..=wall_seeds)
                    .map(|seed| scope.spawn(move || dtls::openssl_lossy(o, loss, seed, wall_limit)))
                    .collect()
            })
            .collect();
        for ((loss, name), runs) in cases.into_iter().zip(runs) {
            rows.push(lossy_row(&f, &d, name, loss, seeds, runs));
        }
    });
    rows
}

/// The DTLS 1.3 rows: ferrossl and dimpl in DTLS 1.3 (no OpenSSL release has it), and
/// ferrossl in DTLS 1.2 beside them. Both 1.3 columns use X25519, which dimpl offers first
/// and ferrossl's client is narrowed to; ferrossl's default, the post-quantum hybrid that its
/// server asks for by a HelloRetryRequest, has a row of its own.
fn dtls13_rows(pki: &TestPki, budget: &Budget, quick: bool) -> Vec<Row> {
    let f13 = dtls::Ferrossl::new13(pki, Some(&["X25519"]));
    let hybrid = dtls::Ferrossl::new13(pki, None);
    let (d13, f12) = (dtls::Dimpl::new13(pki), dtls::Ferrossl::new(pki));
    dtls::check_ferrossl(&f13, DTLS1_3_VERSION, Some("X25519"));
    dtls::check_ferrossl(&hybrid, DTLS1_3_VERSION, Some("X25519MLKEM768"));
    dtls::check_ferrossl(&f12, DTLS1_2_VERSION, None);
    dtls::check_dimpl(&d13, DTLS1_3_VERSION);
    let shape = (3, budget.reps);
    let mut rows = vec![measure(
        "DTLS 1.3 handshakes/s, ECDSA P-256, X25519",
        "/s",
        shape,
        |i| {
            Some(match i {
                0 => handshakes(|| f13.pair(), budget),
                1 => handshakes(|| d13.pair(), budget),
                _ => handshakes(|| f12.pair(), budget),
            })
        },
        "—",
    )];
    rows.push(measure(
        "DTLS 1.3 handshakes/s, ECDSA P-256, X25519MLKEM768 by HelloRetryRequest",
        "/s",
        shape,
        |i| (i == 0).then(|| handshakes(|| hybrid.pair(), budget)),
        "—",
    ));
    let per_transfer = BULK_BYTES.div_ceil(DATAGRAM_PAYLOAD) as f64;
    rows.push(measure(
        "DTLS 1.3 bulk, 1,200-byte payloads, datagrams/s",
        "/s",
        shape,
        |i| {
            let transfers = match i {
                0 => bulk(&f13, budget, DATAGRAM_PAYLOAD),
                1 => bulk(&d13, budget, DATAGRAM_PAYLOAD),
                _ => bulk(&f12, budget, DATAGRAM_PAYLOAD),
            };
            Some(transfers * per_transfer)
        },
        "—",
    ));
    let seeds = if quick { 2 } else { 25 };
    for loss in [0.1, 0.3] {
        rows.push(lossy13_row(&f13, &d13, &f12, loss, seeds));
    }
    rows
}

/// Median simulated completion times (ms) of ferrossl's DTLS 1.3, dimpl's DTLS 1.3 and
/// ferrossl's DTLS 1.2 handshakes over the same seeded links; the name says how many
/// completed within the limit.
fn lossy13_row(
    f13: &dtls::Ferrossl,
    d13: &dtls::Dimpl,
    f12: &dtls::Ferrossl,
    loss: f64,
    seeds: u64,
) -> Row {
    let times = |run: &dyn Fn(u64) -> Option<Duration>| -> Vec<f64> {
        (1..=seeds)
            .filter_map(run)
            .map(|t| t.as_secs_f64() * 1e3)
            .collect()
    };
    let v13 = times(&|seed| dtls::ferrossl_lossy(f13, loss, seed));
    let dimpl = times(&|seed| dtls::dimpl_lossy(d13, loss, seed));
    let v12 = times(&|seed| dtls::ferrossl_lossy(f12, loss, seed));
    Row {
        name: format!(
            "DTLS 1.3 handshake time, {:.0}% loss (ms, simulated); completed: ferrossl 1.3 \
             {}/{seeds}, dimpl 1.3 {}/{seeds}, ferrossl 1.2 {}/{seeds}",
            loss * 100.0,
            v13.len(),
            dimpl.len(),
            v12.len()
        ),
        unit: "ms",
        stats: vec![stat_of(v13), stat_of(dimpl), stat_of(v12)],
        target: "completes under 30% loss",
    }
}

/// Completion times (ms) over `seeds` seeded runs, each implementation on the same seeded
/// links: ferrossl's and dimpl's simulated, OpenSSL's (`openssl`, still running, maybe over
/// fewer seeds) on the wall clock. The name says how many runs completed within the limit.
fn lossy_row(
    f: &dtls::Ferrossl,
    d: &dtls::Dimpl,
    name: &str,
    loss: f64,
    seeds: u64,
    openssl: Vec<std::thread::ScopedJoinHandle<'_, Option<Duration>>>,
) -> Row {
    let ms = |t: Duration| t.as_secs_f64() * 1e3;
    let times = |run: &dyn Fn(u64) -> Option<Duration>| -> Vec<f64> {
        (1..=seeds).filter_map(run).map(ms).collect()
    };
    let ours = times(&|seed| dtls::ferrossl_lossy(f, loss, seed));
    let dimpl = times(&|seed| dtls::dimpl_lossy(d, loss, seed));
    let openssl_runs = openssl.len();
    let openssl: Vec<f64> = openssl
        .into_iter()
        .filter_map(|run| run.join().expect("OpenSSL lossy run"))
        .map(ms)
        .collect();
    Row {
        name: format!(
            "{name}; completed: ferrossl {}/{seeds}, OpenSSL {}/{openssl_runs}, dimpl {}/{seeds}",
            ours.len(),
            openssl.len(),
            dimpl.len()
        ),
        unit: "ms",
        stats: vec![stat_of(ours), stat_of(openssl), stat_of(dimpl)],
        target: "completes under 30% loss",
    }
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
    print_table(
        &["ferrossl", "OpenSSL", "dimpl"],
        &dtls_rows(&pki, &budget, quick),
    );
    println!();
    print_table(
        &["ferrossl 1.3", "dimpl 1.3", "ferrossl 1.2"],
        &dtls13_rows(&pki, &budget, quick),
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
