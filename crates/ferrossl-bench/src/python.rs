//! The Python rows: `python/bench.py` run by the given interpreter, which prints its own
//! table (ferrossl's module, pyOpenSSL, the stdlib `ssl` module and pyrtls).

use std::process::Command;

use ferrossl_testkit::pki::TestPki;

/// The script, beside this crate's sources.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bench.py");

/// Runs the script with `interpreter` on the test PKI's ECDSA P-256 server; its table goes to
/// stdout as it comes. False if the interpreter could not run or a row failed.
pub fn run(interpreter: &str, pki: &TestPki, quick: bool) -> bool {
    let mut cmd = Command::new(interpreter);
    cmd.arg(SCRIPT)
        .arg("--cert")
        .arg(&pki.server_ecdsa.chain_path)
        .arg("--key")
        .arg(&pki.server_ecdsa.key_path)
        .arg("--ca")
        .arg(pki.ca_path());
    if quick {
        cmd.arg("--quick");
    }
    match cmd.status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            eprintln!("{SCRIPT} failed: {status}");
            false
        }
        Err(e) => {
            eprintln!("cannot run {interpreter}: {e}");
            false
        }
    }
}
