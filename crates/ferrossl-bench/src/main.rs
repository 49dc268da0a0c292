//! `cargo run --release -p ferrossl-bench [-- --quick]`: ferrossl against rustls used directly
//! and OpenSSL 3 (the `openssl` crate), in memory on one thread, repetitions interleaved,
//! printed as a markdown table of medians (min–max) and ratios. `--quick` runs every row
//! briefly to show it works; it asserts no timing.

#![forbid(unsafe_code)]

mod peers;

use std::time::{Duration, Instant};

use ferrossl_testkit::pki::TestPki;
use peers::{Ferrossl, OpenSsl, Peer, Rustls, Setup};

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

fn handshakes<P: Peer>(peer: &P, budget: &Budget) -> f64 {
    rate(budget, || {
        std::hint::black_box(peer.pair());
    })
}

fn bulk<P: Peer>(peer: &P, budget: &Budget, chunk: usize) -> f64 {
    let data = vec![0x5a; 1 << 20];
    let mut pair = peer.pair();
    rate(budget, || peer.transfer(&mut pair, &data, chunk)) * data.len() as f64 / 1e6
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

/// One table row: the three implementations' samples, interleaved.
struct Row {
    name: String,
    unit: &'static str,
    ferrossl: Stat,
    rustls: Option<Stat>,
    openssl: Option<Stat>,
    target: &'static str,
}

fn measure(
    name: &str,
    unit: &'static str,
    reps: usize,
    mut f: impl FnMut(usize) -> f64,
    target: &'static str,
) -> Row {
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..reps {
        for (i, s) in samples.iter_mut().enumerate() {
            s.push(f(i));
        }
    }
    let [a, b, c] = samples;
    Row {
        name: name.to_string(),
        unit,
        ferrossl: stat(a),
        rustls: Some(stat(b)),
        openssl: Some(stat(c)),
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

fn ratio(a: Stat, b: Option<Stat>) -> String {
    b.map_or("n/a".into(), |b| format!("{:.2}×", a.median / b.median))
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
    };
    match name {
        "ferrossl" => memory_per_pair(&Ferrossl::new(&s), count),
        "rustls" => memory_per_pair(&Rustls::new(&s), count),
        _ => memory_per_pair(&OpenSsl::new(&s), count),
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
    let ca_der = pki.ca.cert_der.clone();
    let ca_path = pki.ca_path();
    let setup = |server, tls13: bool, suite| Setup {
        server,
        ca_der: &ca_der,
        ca_path: &ca_path,
        tls13,
        suite,
    };
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
        let s = setup(id, tls13, suite);
        let (f, r, o) = (Ferrossl::new(&s), Rustls::new(&s), OpenSsl::new(&s));
        rows.push(measure(
            name,
            "/s",
            budget.reps,
            |i| match i {
                0 => handshakes(&f, &budget),
                1 => handshakes(&r, &budget),
                _ => handshakes(&o, &budget),
            },
            target,
        ));
    }
    let bulk_cases = [
        (
            "TLS 1.3 bulk, 16 KiB writes, AES-128-GCM",
            "TLS_AES_128_GCM_SHA256",
            16384,
        ),
        (
            "TLS 1.3 bulk, 16 KiB writes, AES-256-GCM",
            "TLS_AES_256_GCM_SHA384",
            16384,
        ),
        (
            "TLS 1.3 bulk, 16 KiB writes, ChaCha20-Poly1305",
            "TLS_CHACHA20_POLY1305_SHA256",
            16384,
        ),
        (
            "TLS 1.3 bulk, 1 KiB writes, AES-128-GCM",
            "TLS_AES_128_GCM_SHA256",
            1024,
        ),
    ];
    for (name, suite, chunk) in bulk_cases {
        let s = setup(&pki.server_ecdsa, true, suite);
        let (f, r, o) = (Ferrossl::new(&s), Rustls::new(&s), OpenSsl::new(&s));
        rows.push(measure(
            name,
            "MB/s",
            budget.reps,
            |i| match i {
                0 => bulk(&f, &budget, chunk),
                1 => bulk(&r, &budget, chunk),
                _ => bulk(&o, &budget, chunk),
            },
            "≥ 0.95× rustls, ≥ 1.0× OpenSSL",
        ));
    }
    let count = if quick { 20 } else { 2000 };
    rows.push(measure(
        "memory per idle connection pair (client + server)",
        "KiB",
        1,
        |i| memory_in_child(["ferrossl", "rustls", "openssl"][i], count),
        "≤ 0.5× OpenSSL",
    ));

    println!(
        "| benchmark | ferrossl | rustls | OpenSSL | ferrossl/rustls | ferrossl/OpenSSL | target |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        let (fr, fo) = (
            ratio(row.ferrossl, row.rustls),
            ratio(row.ferrossl, row.openssl),
        );
        println!(
            "| {} | {} | {} | {} | {fr} | {fo} | {} |",
            row.name,
            cell(Some(row.ferrossl), row.unit),
            cell(row.rustls, row.unit),
            cell(row.openssl, row.unit),
            row.target
        );
    }
    for size in [16384, 1200] {
        let c = stat(
            (0..budget.reps)
                .map(|_| aes_gcm_ceiling(&budget, size))
                .collect(),
        );
        println!("| ceiling: raw AES-128-GCM seal, {size}-byte records (aws-lc-rs) | {:.0} MB/s ({:.0}–{:.0}) | | | | | TLS bulk ≥ 65% of it at 16 KiB |", c.median, c.min, c.max);
    }
    println!("| DTLS 1.2 rows (vs OpenSSL DTLS, dimpl) | pending | | | | | not measured yet |");
    println!("| Python rows (vs pyOpenSSL, ssl, pyrtls) | pending | | | | | not measured yet |");
    if quick {
        println!("\nquick mode: every row ran; the numbers are not meant to be read");
    }
}
