//! libsoup 3 through PyGObject over the module: an HTTPS GET from `openssl s_server -www`
//! with the test CA as the session's TLS database, through libsoup's synchronous API and its
//! asynchronous one (which needs pollable streams), and an untrusted server refused.

mod common;

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
    run_python("soup.py", &[&port.to_string(), ca.to_str().unwrap(), mode])
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
    let out = fetch(&pki, &pki.untrusted, "untrusted");
    for check in ["refused", "signal"] {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}
