//! GTlsServerConnection for `openssl s_client` on 127.0.0.1, from PyGObject and from C: a
//! handshake verified by s_client against the test CA, ALPN, a line each way, the close with
//! close_notify; a required client certificate checked against the server's database; and a
//! client certificate from an unknown CA refused through accept-certificate. The C and Python
//! servers also for `gnutls-cli` (which must read our close_notify), with and without a client
//! certificate.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ferrossl_testkit::peer::{
    free_tcp_port, gnutls_cli, openssl_s_client, require_tool, PeerProcess,
};
use ferrossl_testkit::pki::{Identity, TestPki};

const WAIT: Duration = Duration::from_secs(10);

fn path(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Starts `program` (a server of ours) on a free port and waits until it listens.
fn start_server(program: &[String], pki: &TestPki, mode: &str) -> (PeerProcess, u16) {
    start_server_in(Backend::Ferrossl, program, pki, mode)
}

/// [`start_server`] with the environment `env` makes.
fn start_server_in(
    backend: Backend,
    program: &[String],
    pki: &TestPki,
    mode: &str,
) -> (PeerProcess, u16) {
    let port = free_tcp_port();
    let mut cmd = Command::new(&program[0]);
    cmd.args(&program[1..]).args([
        port.to_string(),
        path(&pki.server_ecdsa.chain_path),
        path(&pki.server_ecdsa.key_path),
        path(&pki.ca_path()),
        mode.to_string(),
    ]);
    let mut server = PeerProcess::spawn(backend.env(&mut cmd)).expect("spawn server");
    server.wait_for_output("listening", WAIT).unwrap();
    (server, port)
}

/// s_client verifying the server against the test CA, presenting `client_id` if given.
fn s_client(pki: &TestPki, port: u16, client_id: Option<&Identity>) -> PeerProcess {
    let mut args: Vec<String> = vec!["-CAfile".into(), path(&pki.ca_path())];
    for a in [
        "-verify_return_error",
        "-alpn",
        "x-ferrossl",
        "-servername",
        "localhost",
        "-ign_eof",
    ] {
        args.push(a.into());
    }
    if let Some(id) = client_id {
        args.extend([
            "-cert".into(),
            path(&id.cert_path),
            "-key".into(),
            path(&id.key_path),
        ]);
    }
    PeerProcess::spawn(&mut openssl_s_client(port, &args)).expect("spawn s_client")
}

fn assert_checks(out: &str, checks: &[&str]) {
    for check in checks {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}

/// One session: s_client sends a line and must get it back reversed, then see the close.
fn session(
    backend: Backend,
    program: &[String],
    pki: &TestPki,
    mode: &str,
    client_id: Option<&Identity>,
) -> String {
    let (mut server, port) = start_server_in(backend, program, pki, mode);
    let mut client = s_client(pki, port, client_id);
    client.write_stdin(b"hello from s_client\n").unwrap();
    if let Err(e) = client.wait_for_output("tneilc_s morf olleh", WAIT) {
        let _ = server.wait_with_timeout(Duration::from_millis(100));
        panic!(
            "{e}\n--- our server ---\n{}{}",
            server.stdout(),
            server.stderr()
        );
    }
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    // s_client ends when it reads our close_notify ("closed"), not on an error.
    client.wait_for_output("closed", WAIT).unwrap();
    server.stdout()
}

fn sessions(backend: Backend, program: &[String]) {
    let pki = TestPki::generate();
    let out = session(backend, program, &pki, "anonymous", None);
    assert_checks(
        &out,
        &[
            "type",
            "handshake",
            "alpn",
            "protocol-version",
            "no-client-certificate",
            "read",
            "closed",
        ],
    );
    let out = session(backend, program, &pki, "required", Some(&pki.client_ecdsa));
    assert_checks(
        &out,
        &[
            "handshake",
            "client-certificate",
            "client-trusted",
            "asked-about-a-good-certificate",
            "read",
            "closed",
        ],
    );

    let (mut server, port) = start_server_in(backend, program, &pki, "reject");
    let mut client = s_client(&pki, port, Some(&pki.untrusted));
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    assert_checks(&server.stdout(), &["refused", "signal"]);
    // The client learns of the refusal by an alert. The engine picks it from the first problem
    // it finds, and this certificate (a server's) also lacks the clientAuth purpose, which it
    // reports before the unknown issuer: unsupported_certificate.
    if backend == Backend::Gnutls {
        // The GnuTLS backend sends no alert: it drops the connection, and s_client ends on
        // that (asserted, so that a change there shows).
        let _ = client.wait_with_timeout(WAIT);
        let seen = client.stdout() + &client.stderr();
        assert!(
            !seen.contains("SSL alert number") && seen.contains("errno="),
            "{seen}"
        );
    } else {
        client.wait_for_output("SSL alert number", WAIT).unwrap();
    }
}

#[test]
fn python_server_for_openssl_s_client() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    sessions(
        Backend::Ferrossl,
        &[
            "/usr/bin/python3".into(),
            path(&test_file("python/server.py")),
        ],
    );
}

#[test]
fn c_server_for_openssl_s_client() {
    if !require_tool("openssl") {
        return;
    }
    let Some(program) = c_program("server") else {
        return;
    };
    sessions(Backend::Ferrossl, &[path(&program)]);
}

/// The C and Python servers on glib-networking's GnuTLS backend, for the same s_client
/// sessions, to show that the test checks what GIO promises.
#[test]
fn c_and_python_servers_on_the_gnutls_backend() {
    if !require_tool("openssl") || !have_gnutls_backend() || !have_pygobject() {
        return;
    }
    let Some(program) = c_program("server") else {
        return;
    };
    sessions(Backend::Gnutls, &[path(&program)]);
    sessions(
        Backend::Gnutls,
        &[
            "/usr/bin/python3".into(),
            path(&test_file("python/server.py")),
        ],
    );
}

/// gnutls-cli verifying the server as localhost against the test CA, with ALPN, presenting
/// `client_id` if given.
fn gnutls_client(pki: &TestPki, port: u16, client_id: Option<&Identity>) -> PeerProcess {
    let mut args = vec![
        format!("--x509cafile={}", path(&pki.ca_path())),
        "--verify-hostname=localhost".into(),
        "--sni-hostname=localhost".into(),
        "--alpn=x-ferrossl".into(),
    ];
    if let Some(id) = client_id {
        args.push(format!("--x509certfile={}", path(&id.cert_path)));
        args.push(format!("--x509keyfile={}", path(&id.key_path)));
    }
    PeerProcess::spawn(&mut gnutls_cli(port, &args)).expect("spawn gnutls-cli")
}

#[test]
fn c_server_for_gnutls_cli() {
    if !require_tool("gnutls-cli") {
        return;
    }
    let Some(program) = c_program("server") else {
        return;
    };
    gnutls_cli_sessions(&[path(&program)]);
}

#[test]
fn python_server_for_gnutls_cli() {
    if !require_tool("gnutls-cli") || !have_pygobject() {
        return;
    }
    gnutls_cli_sessions(&[
        "/usr/bin/python3".into(),
        path(&test_file("python/server.py")),
    ]);
}

/// Our server `program` for gnutls-cli: without a client certificate and with a required
/// one; gnutls-cli gets its line back reversed and reads our close_notify.
fn gnutls_cli_sessions(program: &[String]) {
    let pki = TestPki::generate();
    for (mode, client_id, checks) in [
        ("anonymous", None, &["no-client-certificate", "alpn"][..]),
        (
            "required",
            Some(&pki.client_ecdsa),
            &[
                "client-certificate",
                "client-trusted",
                "asked-about-a-good-certificate",
            ][..],
        ),
    ] {
        let (mut server, port) = start_server(program, &pki, mode);
        let mut client = gnutls_client(&pki, port, client_id);
        client.write_stdin(b"hello from s_client\n").unwrap();
        client.wait_for_output("tneilc_s morf olleh", WAIT).unwrap();
        server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
        // gnutls-cli says this when it reads close_notify (an abrupt end is an error).
        client
            .wait_for_output("Peer has closed the GnuTLS connection", WAIT)
            .unwrap();
        let out = server.stdout();
        assert_checks(
            &out,
            &["type", "handshake", "protocol-version", "read", "closed"],
        );
        assert_checks(&out, checks);
    }
}
