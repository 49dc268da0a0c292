//! One benchmark operation repeated inside [`measured`], for instruction counts that a shared,
//! noisy machine cannot blur:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect='callgrind::measured*' \
//!     target/release/examples/callgrind ferrossl|rustls hs|res|bulk16|bulk1 13|12 COUNT
//! ```

// Deny, not forbid: peers.rs allows unsafe code in one function (OpenSSL's `set_session`).
#![deny(unsafe_code)]

// The benchmark's own peers; this example uses the ferrossl and rustls ones.
#[path = "../src/peers.rs"]
#[allow(dead_code)]
mod peers;

use ferrossl_testkit::pki::TestPki;
use peers::{Ferrossl, Resume, Rustls, Setup};

/// Runs `op` `count` times; callgrind collects only inside this function.
#[inline(never)]
fn measured<T>(count: usize, mut op: impl FnMut() -> T) {
    for _ in 0..count {
        std::hint::black_box(op());
    }
}

fn run<P: Resume>(peer: &P, what: &str, count: usize) {
    match what {
        "hs" => measured(count, || peer.pair()),
        "res" => {
            peer.resumed_pair(); // primes the session
            measured(count, || peer.resumed_pair())
        }
        "bulk16" | "bulk1" => {
            let chunk = if what == "bulk16" { 16384 } else { 1024 };
            let data = vec![0x5a; 1 << 20];
            let mut pair = peer.pair();
            measured(count, || peer.transfer(&mut pair, &data, chunk))
        }
        other => panic!("unknown operation {other:?}: hs, res, bulk16 or bulk1"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, who, what, version, count] = args.as_slice() else {
        panic!("usage: callgrind ferrossl|rustls hs|res|bulk16|bulk1 13|12 COUNT");
    };
    let tls13 = version == "13";
    let pki = TestPki::generate();
    let ca_path = pki.ca_path();
    let setup = Setup {
        server: &pki.server_ecdsa,
        ca_der: &pki.ca.cert_der,
        ca_path: &ca_path,
        tls13,
        suite: if tls13 {
            "TLS_AES_128_GCM_SHA256"
        } else {
            "ECDHE-ECDSA-AES128-GCM-SHA256"
        },
        resume: what == "res",
    };
    let count = count.parse().expect("COUNT is a number");
    match who.as_str() {
        "ferrossl" => run(&Ferrossl::new(&setup), what, count),
        _ => run(&Rustls::new(&setup), what, count),
    }
}
