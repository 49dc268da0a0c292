//! libsoup 3 through PyGObject over the module: an HTTPS GET from `openssl s_server -www` and
//! from `ferrossl s_server -www` with the test CA as the session's TLS database, through
//! libsoup's synchronous API and its asynchronous one (which needs pollable streams), and an
//! untrusted server refused.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use ferrossl_testkit::peer::{free_tcp_port, openssl_s_server, require_tool, PeerProcess};
use ferrossl_testkit::pki::{Identity, TestPki};

/// Whether libsoup 3's GObject introspection data is installed; under CI its absence fails.
fn have_soup() -> bool {
    let found = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import gi; gi.require_version('Soup', '3.0')"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "libsoup 3's GIR data is required under CI: apt-get install gir1.2-soup-3.0"
        );
        eprintln!("skipped: libsoup 3 GIR data not installed (apt-get install gir1.2-soup-3.0)");
    }
    found
}

fn web_server(id: &Identity) -> (PeerProcess, u16) {
    let port = free_tcp_port();
    let args = ["-www".to_string()];
    let mut peer =
        PeerProcess::spawn(&mut openssl_s_server(port, id, &args)).expect("spawn s_server");
    peer.wait_for_tcp_port(port, Duration::from_secs(10))
        .expect("s_server listens");
    (peer, port)
}

fn fetch(pki: &TestPki, id: &Identity, mode: &str) -> String {
    let (_server, port) = web_server(id);
    let ca = pki.ca_path();
    run_python(
        "soup.py",
        &[&port.to_string(), ca.to_str().unwrap(), mode, "-www"],
    )
}

const TRUSTED_CHECKS: [&str; 7] = [
    "status",
    "page",
    "peer-errors",
    "version",
    "ciphersuite",
    "async",
    "async-page",
];

fn assert_checks(out: &str, checks: &[&str]) {
    for check in checks {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}

/// The workspace's `ferrossl` command (crates/ferrossl-cli), which this package does not
/// build: it lies in the profile directory this test runs from (`target/<profile>/ferrossl`,
/// wherever CARGO_TARGET_DIR puts `target/`). scripts/test.sh builds every target of the
/// workspace before it tests; when this test runs alone before the command was ever built,
/// it builds it here (cargo holds no lock on the target directory while tests run).
fn ferrossl_command() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let command = profile_dir.join("ferrossl");
    if command.is_file() {
        return command;
    }
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("no profile directory above {}", exe.display()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "-p",
            "ferrossl-cli",
            "--bin",
            "ferrossl",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target directory"))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let mut cargo = PeerProcess::spawn(&mut build).expect("run cargo build");
    cargo
        .wait_with_timeout(Duration::from_secs(600))
        .expect("cargo build -p ferrossl-cli");
    assert!(
        command.is_file(),
        "no {} after building it",
        command.display()
    );
    command
}

/// `ferrossl s_server -www` on 127.0.0.1 with `id`, once it listens (it prints ACCEPT then).
fn ferrossl_web_server(id: &Identity) -> (PeerProcess, u16) {
    let port = free_tcp_port();
    let mut cmd = Command::new(ferrossl_command());
    cmd.args([
        "s_server",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-www",
        "-quiet",
    ])
    .arg("-cert")
    .arg(&id.chain_path)
    .arg("-key")
    .arg(&id.key_path);
    let mut peer = PeerProcess::spawn(&mut cmd).expect("spawn ferrossl s_server");
    peer.wait_for_output("ACCEPT", Duration::from_secs(10))
        .expect("ferrossl s_server listens");
    (peer, port)
}

#[test]
fn libsoup_fetches_from_ferrossl_s_server_www() {
    if !have_pygobject() || !have_soup() {
        return;
    }
    let pki = TestPki::generate();
    let (_server, port) = ferrossl_web_server(&pki.server_ecdsa);
    let ca = pki.ca_path();
    let args = [port.to_string(), ca.to_str().unwrap().to_string()];
    let out = run_python(
        "soup.py",
        &[&args[0], &args[1], "trusted", "ferrossl s_server"],
    );
    assert_checks(&out, &TRUSTED_CHECKS);
    let (_server, port) = ferrossl_web_server(&pki.untrusted);
    let out = run_python(
        "soup.py",
        &[
            &port.to_string(),
            &args[1],
            "untrusted",
            "ferrossl s_server",
        ],
    );
    assert_checks(&out, &["refused", "signal"]);
}

#[test]
fn libsoup_fetches_from_openssl_s_server_www() {
    if !require_tool("openssl") || !have_pygobject() || !have_soup() {
        return;
    }
    let pki = TestPki::generate();
    let out = fetch(&pki, &pki.server_ecdsa, "trusted");
    for check in [
        "status",
        "page",
        "peer-errors",
        "version",
        "ciphersuite",
        "async",
        "async-page",
    ] {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
    // The same fetch on glib-networking's GnuTLS backend, to show the script checks what GIO
    // promises.
    let (_server, port) = web_server(&pki.server_ecdsa);
    let ca = pki.ca_path();
    let args = [&port.to_string(), ca.to_str().unwrap(), "trusted", "-www"];
    if have_gnutls_backend() {
        assert_checks(
            &run_python_in(gnutls_backend_env, "soup.py", &args),
            &TRUSTED_CHECKS,
        );
    }
    let out = fetch(&pki, &pki.untrusted, "untrusted");
    for check in ["refused", "signal"] {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}
