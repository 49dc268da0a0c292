//! GTlsClientConnection against `openssl s_server` on 127.0.0.1, from C (built here with
//! gcc against GIO) and from PyGObject: TLS 1.3 and 1.2 handshakes verified against the
//! test CA, ALPN, data both ways, close with close_notify; and an untrusted server refused
//! through accept-certificate with UNKNOWN_CA, the server receiving the unknown_ca alert. The C
//! client also against `gnutls-serv --echo` (TLS 1.3 and 1.2, ALPN, an untrusted server). A
//! client certificate asked of the connection's GTlsInteraction, from PyGObject.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ferrossl_testkit::peer::{
    free_tcp_port, gnutls_serv, in_loopback_namespace, openssl_s_server, require_tool, PeerProcess,
};
use ferrossl_testkit::pki::{Identity, TestPki};

/// `openssl s_server` answering each line with its reversal (killed when dropped).
fn server(id: &Identity, extra: &[&str]) -> (PeerProcess, u16) {
    let port = free_tcp_port();
    let mut args: Vec<String> = ["-rev", "-msg", "-alpn", "x-ferrossl"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut peer =
        PeerProcess::spawn(&mut openssl_s_server(port, id, &args)).expect("spawn s_server");
    peer.wait_for_tcp_port(port, Duration::from_secs(10))
        .expect("s_server listens");
    (peer, port)
}

/// Runs one client program (`[program, args...]`) against a server with `id`.
fn client_run(
    client: &[String],
    id: &Identity,
    mode: &str,
    server_extra: &[&str],
) -> (String, PeerProcess) {
    client_run_in(gio_env, client, id, mode, server_extra)
}

/// [`client_run`] with the environment `env` makes.
fn client_run_in(
    env: Env,
    client: &[String],
    id: &Identity,
    mode: &str,
    server_extra: &[&str],
) -> (String, PeerProcess) {
    let (peer, port) = server(id, server_extra);
    let pki_ca = &client[1];
    let mut cmd = Command::new(&client[0]);
    cmd.args(&client[2..])
        .args([port.to_string(), pki_ca.clone(), mode.to_string()]);
    let out = run(env(&mut cmd));
    (out, peer)
}

/// How long s_server may take to print what it saw.
const PEER_WAIT: Duration = Duration::from_secs(5);

fn assert_checks(out: &str, checks: &[&str]) {
    for check in checks {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}

const TRUSTED_CHECKS: [&str; 7] = [
    "type",
    "peer-errors",
    "peer-certificate",
    "alpn",
    "protocol-version",
    "ciphersuite",
    "echo",
];

fn trusted_session(
    client: &[String],
    pki: &TestPki,
    server_extra: &[&str],
    version: &str,
) -> String {
    trusted_session_in(gio_env, client, pki, server_extra, version)
}

fn trusted_session_in(
    env: Env,
    client: &[String],
    pki: &TestPki,
    server_extra: &[&str],
    version: &str,
) -> String {
    let (out, mut peer) = client_run_in(env, client, &pki.server_ecdsa, "trusted", server_extra);
    assert_checks(&out, &TRUSTED_CHECKS);
    assert_checks(&out, &["closed"]);
    assert!(out.contains(version), "expected {version} in:\n{out}");
    // The server read our close_notify, then saw the connection end.
    peer.wait_for_output("CONNECTION CLOSED", PEER_WAIT)
        .unwrap();
    let seen = peer.stdout();
    assert!(
        seen.contains("warning close_notify"),
        "s_server saw no close_notify:\n{seen}"
    );
    out
}

fn untrusted_session(client: &[String], pki: &TestPki) {
    let (out, mut peer) = client_run(client, &pki.untrusted, "untrusted", &[]);
    assert_checks(&out, &["type", "refused", "signal"]);
    peer.wait_for_output("alert unknown ca", PEER_WAIT).unwrap();
}

fn python_client(pki: &TestPki) -> Vec<String> {
    vec![
        "/usr/bin/python3".into(),
        pki.ca_path().to_str().unwrap().into(),
        test_file("python/client.py").to_str().unwrap().into(),
    ]
}

fn c_client(pki: &TestPki) -> Option<Vec<String>> {
    let program = c_program("client")?;
    Some(vec![
        program.to_str().unwrap().into(),
        pki.ca_path().to_str().unwrap().into(),
    ])
}

/// What only the C client checks: the peer certificate the getter lends stays valid and is
/// the same object each time.
const C_CHECKS: [&str; 1] = ["same-peer-certificate"];

#[test]
fn c_client_against_openssl_s_server() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let Some(client) = c_client(&pki) else { return };
    let out = trusted_session(&client, &pki, &[], "version 5");
    assert_checks(&out, &C_CHECKS);
    trusted_session(&client, &pki, &["-tls1_2"], "version 4");
    untrusted_session(&client, &pki);
}

#[test]
fn python_client_against_openssl_s_server() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let client = python_client(&pki);
    let out = trusted_session(&client, &pki, &[], "version tls-1-3");
    assert_checks(&out, &["binding"]);
    trusted_session(&client, &pki, &["-tls1_2"], "version tls-1-2");
    untrusted_session(&client, &pki);
}

/// The value after `label` on the line of `text` that has it.
fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
}

#[test]
fn c_client_channel_bindings_match_the_server() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let Some(client) = c_client(&pki) else { return };
    // Without -rev, s_server prints its connection's facts, the exported keying material too.
    let port = free_tcp_port();
    let args: Vec<String> = [
        "-keymatexport",
        "EXPORTER-Channel-Binding",
        "-keymatexportlen",
        "32",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut peer =
        PeerProcess::spawn(&mut openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    peer.wait_for_tcp_port(port, Duration::from_secs(10))
        .unwrap();
    let mut cmd = Command::new(&client[0]);
    cmd.args([port.to_string(), client[1].clone(), "binding".into()]);
    let out = run(gio_env(&mut cmd));
    assert_checks(
        &out,
        &["exporter", "server-end-point", "no-tls-unique-in-1.3"],
    );
    peer.wait_for_output("Keying material:", PEER_WAIT).unwrap();
    let server_says = field(&peer.stdout(), "Keying material:")
        .unwrap()
        .to_string();
    assert_eq!(
        field(&out, "exporter "),
        Some(server_says.as_str()),
        "{out}"
    );
    // tls-server-end-point: SHA-256 of the server's certificate (it is signed with SHA-256).
    let cert = ferrossl::X509::from_pem(pki.server_ecdsa.cert_pem.as_bytes()).unwrap();
    let digest = cert.digest("sha256").unwrap().replace(':', "");
    assert_eq!(
        field(&out, "server-end-point "),
        Some(digest.as_str()),
        "{out}"
    );
}

#[test]
fn python_async_handshake_asks_accept_certificate_in_the_main_thread() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let client = vec![
        "/usr/bin/python3".to_string(),
        path(&pki.ca_path()),
        path(&test_file("python/async_client.py")),
    ];
    let (out, _server) = client_run(&client, &pki.untrusted, "refuse", &[]);
    assert_checks(
        &out,
        &[
            "asked-once",
            "asked-in-main-thread",
            "notified-in-main-thread",
            "refused",
        ],
    );
    let (out, _server) = client_run(&client, &pki.untrusted, "accept", &[]);
    assert_checks(
        &out,
        &[
            "asked-once",
            "asked-in-main-thread",
            "accepted",
            "peer-errors",
            "echo",
        ],
    );
}

fn path(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn python_client_sees_close_notify_and_truncation() {
    if !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let id = &pki.server_ecdsa;
    let args = [
        path(&id.chain_path),
        path(&id.key_path),
        path(&pki.ca_path()),
    ];
    let out = run_python("eof.py", &[&args[0], &args[1], &args[2]]);
    assert_checks(
        &out,
        &[
            "implicit-handshake",
            "close-notify-is-eof",
            "truncation-detected",
            "truncation-tolerated",
        ],
    );
}

#[test]
fn python_misuse_and_misbehaving_peers_end_in_errors() {
    if !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let id = &pki.server_ecdsa;
    let args = [
        path(&pki.ca_path()),
        path(&id.chain_path),
        path(&id.key_path),
    ];
    let out = run_python("misuse.py", &[&args[0], &args[1], &args[2]]);
    assert_checks(
        &out,
        &[
            "defaults",
            "closed-before-handshake",
            "handshake-after-close",
            "not-tls",
            "handshake-fails-again",
            "hang-up",
            "cancelled",
            "server-without-certificate",
            "server-certificate-without-key",
            "certificate-required",
        ],
    );
}

#[test]
fn python_client_reads_while_another_thread_writes() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let (_server, port) = server(&pki.server_ecdsa, &[]);
    let ca = pki.ca_path();
    let out = run_python("duplex.py", &[&port.to_string(), ca.to_str().unwrap()]);
    assert_checks(&out, &["duplex"]);
}

#[test]
fn c_client_sees_the_ca_names_a_server_accepts() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let Some(client) = c_client(&pki) else { return };
    // -verify asks for a client certificate without requiring one, naming the CAs of -CAfile.
    let port = free_tcp_port();
    let args = [
        "-verify".to_string(),
        "1".into(),
        "-CAfile".into(),
        path(&pki.ca_path()),
    ];
    let mut peer =
        PeerProcess::spawn(&mut openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    peer.wait_for_tcp_port(port, Duration::from_secs(10))
        .unwrap();
    let mut cmd = Command::new(&client[0]);
    cmd.args([port.to_string(), client[1].clone(), "cas".into()]);
    let out = run(gio_env(&mut cmd));
    assert!(out.contains("accepted-cas 1\n"), "{out}");
    let name = ferrossl::X509::from_pem(pki.ca.cert_pem.as_bytes())
        .unwrap()
        .subject();
    assert!(
        out.contains(&format!("ca-name-bytes {}\n", name.to_der().len())),
        "{out}"
    );
}

#[test]
fn c_client_resumes_a_copied_session() {
    if !require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let Some(client) = c_client(&pki) else { return };
    // s_server -www serves a page that says whether the connection resumed a session.
    let port = free_tcp_port();
    let args = ["-www".to_string()];
    let mut peer =
        PeerProcess::spawn(&mut openssl_s_server(port, &pki.server_ecdsa, &args)).unwrap();
    peer.wait_for_tcp_port(port, Duration::from_secs(10))
        .unwrap();
    let mut cmd = Command::new(&client[0]);
    cmd.args([port.to_string(), client[1].clone(), "resume".into()]);
    let out = run(gio_env(&mut cmd));
    assert!(out.contains("page1 New, TLSv1.3"), "{out}");
    assert!(out.contains("page2 Reused, TLSv1.3"), "{out}");
}

#[test]
fn python_async_io_runs_the_implicit_handshake_without_blocking() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let (_server, port) = server(&pki.server_ecdsa, &[]);
    let ca = pki.ca_path();
    let out = run_python("async_io.py", &[&port.to_string(), ca.to_str().unwrap()]);
    assert_checks(&out, &["pollable", "echo", "handshake-done"]);
}

/// `gnutls-serv --echo` (it sends each line back as it is) with ALPN, TLS 1.3 and 1.2 or
/// `priority` only, in this test's private network namespace (it binds every address).
fn gnutls_server(id: &Identity, priority: Option<&str>) -> (PeerProcess, u16) {
    let port = free_tcp_port();
    let mut args = vec!["--echo".to_string(), "--alpn=x-ferrossl".into()];
    args.extend(priority.map(|p| format!("--priority={p}")));
    let mut peer =
        PeerProcess::spawn(&mut gnutls_serv(port, id, &args)).expect("spawn gnutls-serv");
    peer.wait_for_output("listening", Duration::from_secs(10))
        .expect("gnutls-serv listens");
    (peer, port)
}

#[test]
fn c_client_against_gnutls_serv() {
    if !require_tool("gnutls-serv") || !in_loopback_namespace("c_client_against_gnutls_serv") {
        return;
    }
    let pki = TestPki::generate();
    let Some(client) = c_client(&pki) else { return };
    let versions = ["version 5", "version 4"];
    clients_against_gnutls_serv(&pki, &client, versions, &C_CHECKS);
}

#[test]
fn python_client_against_gnutls_serv() {
    if !require_tool("gnutls-serv")
        || !have_pygobject()
        || !in_loopback_namespace("python_client_against_gnutls_serv")
    {
        return;
    }
    let pki = TestPki::generate();
    let client = vec![
        "/usr/bin/python3".to_string(),
        path(&pki.ca_path()),
        path(&test_file("python/client.py")),
    ];
    let versions = ["version tls-1-3", "version tls-1-2"];
    clients_against_gnutls_serv(&pki, &client, versions, &["binding"]);
}

/// A client program (`[program, CA file, args...]`) against `gnutls-serv --echo`: TLS 1.3 and
/// 1.2 sessions (the program printing `versions`) with the trusted checks and `extra`, an
/// untrusted server refused (gnutls-serv receiving the alert).
fn clients_against_gnutls_serv(
    pki: &TestPki,
    client: &[String],
    versions: [&str; 2],
    extra: &[&str],
) {
    for (priority, version) in [
        (None, versions[0]),
        (Some("NORMAL:-VERS-ALL:+VERS-TLS1.2"), versions[1]),
    ] {
        let (mut peer, port) = gnutls_server(&pki.server_ecdsa, priority);
        let mut cmd = Command::new(&client[0]);
        cmd.args(&client[2..])
            .args([port.to_string(), client[1].clone(), "echo".into()]);
        let out = run(gio_env(&mut cmd));
        assert_checks(&out, &TRUSTED_CHECKS);
        assert_checks(&out, &["closed"]);
        assert_checks(&out, extra);
        assert!(out.contains(version), "expected {version} in:\n{out}");
        peer.kill();
    }
    let (mut peer, port) = gnutls_server(&pki.untrusted, None);
    let mut cmd = Command::new(&client[0]);
    cmd.args(&client[2..])
        .args([port.to_string(), client[1].clone(), "untrusted".into()]);
    let out = run(gio_env(&mut cmd));
    assert_checks(&out, &["type", "refused", "signal"]);
    // gnutls-serv names no alert, but says it received one (not a bare end of the connection).
    peer.wait_for_output("A TLS fatal alert has been received", PEER_WAIT)
        .unwrap();
}

/// The C and Python clients on glib-networking's GnuTLS backend against the same s_server, to
/// show that they test what GIO promises.
#[test]
fn c_and_python_clients_on_the_gnutls_backend() {
    if !require_tool("openssl") || !have_gnutls_backend() || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let Some(client) = c_client(&pki) else { return };
    let out = trusted_session_in(gnutls_backend_env, &client, &pki, &[], "version 5");
    assert_checks(&out, &C_CHECKS);
    untrusted_on_the_gnutls_backend(&client, &pki);
    let client = python_client(&pki);
    if glib_before_2_85() {
        // Before GLib 2.85 PyGObject hands get_channel_binding_data a byte array of element
        // size 0 (see the script); ours refuses it with an error, the GnuTLS backend divides by
        // zero on it and the script dies of SIGFPE, after every check before that one passed.
        let (_peer, port) = server(&pki.server_ecdsa, &[]);
        let mut cmd = Command::new(&client[0]);
        cmd.args(&client[2..])
            .args([port.to_string(), client[1].clone(), "trusted".into()]);
        let mut script = PeerProcess::spawn(gnutls_backend_env(&mut cmd)).unwrap();
        let failure = script
            .wait_with_timeout(PROGRAM_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(failure.contains("SIGFPE"), "{failure}");
        assert!(
            failure.contains("ok alpn\n") && !failure.contains("ok binding"),
            "{failure}"
        );
    } else {
        let out = trusted_session_in(gnutls_backend_env, &client, &pki, &[], "version tls-1-3");
        assert_checks(&out, &["binding"]);
    }
    untrusted_on_the_gnutls_backend(&client, &pki);
}

/// Whether the GLib the tests build against is older than 2.85.
fn glib_before_2_85() -> bool {
    let version = Command::new("pkg-config")
        .args(["--modversion", "gio-2.0"])
        .output()
        .expect("run pkg-config");
    let version = String::from_utf8_lossy(&version.stdout);
    let mut parts = version
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) < (2, 85)
}

/// The refusal on the GnuTLS backend: the client's checks pass, but that backend sends the
/// server no alert, it only closes the connection (s_server sees an unexpected end, where
/// ours sends unknown_ca); asserted, so that a change there shows. The Python script also
/// checks peer-certificate-errors while accept-certificate runs: ours has the verdict there
/// already, the GnuTLS backend (glib-networking 2.74) still 0, and the script fails there.
fn untrusted_on_the_gnutls_backend(client: &[String], pki: &TestPki) {
    let (mut peer, port) = server(&pki.untrusted, &[]);
    let mut cmd = Command::new(&client[0]);
    cmd.args(&client[2..])
        .args([port.to_string(), client[1].clone(), "untrusted".into()]);
    let mut program = PeerProcess::spawn(gnutls_backend_env(&mut cmd)).unwrap();
    let ended = program.wait_with_timeout(PROGRAM_TIMEOUT);
    let out = program.stdout();
    assert_checks(&out, &["type", "refused", "signal"]);
    if client[0].ends_with("python3") {
        let failure = ended.unwrap_err().to_string();
        assert!(
            failure.contains("FAILED errors-during-signal"),
            "the GnuTLS backend's behaviour changed:\n{failure}"
        );
    } else {
        ended.unwrap();
    }
    peer.wait_for_output("unexpected eof", PEER_WAIT).unwrap();
    assert!(
        !peer.stdout().contains("alert unknown ca"),
        "{}",
        peer.stdout()
    );
}

/// GTlsInteraction from PyGObject (`python/interaction.py`) against `openssl s_server -Verify 1`
/// (a client certificate from the test CA required, the CA named), over TLS 1.3 and 1.2: a
/// client without a certificate is asked for one through its interaction's request_certificate
/// (in the main thread, for a synchronous and an asynchronous handshake) and sends the one it
/// sets; an interaction that sets none leaves the handshake (or, in TLS 1.3, the first read) to
/// fail with CERTIFICATE_REQUIRED.
/// An encrypted private key is refused without asking anyone. The same on glib-networking's
/// GnuTLS backend, to show that this is what GIO does.
#[test]
fn python_client_certificate_from_the_interaction() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let Some(encrypted) = pki.encrypted_pkcs8_pem(&pki.client_ecdsa, "s3cret") else {
        return;
    };
    let mut backends = vec![Backend::Ferrossl];
    if have_gnutls_backend() {
        backends.push(Backend::Gnutls);
    }
    let ca = path(&pki.ca_path());
    let ok = [
        "encrypted-key-from-files-refused",
        "encrypted-key-pem-refused",
        "no-certificate-yet",
        "asked-once",
        "accepted-cas-while-asked",
        "handshake",
        "certificate-is-the-one-set",
        "echo",
    ];
    for backend in backends {
        // GIO runs an interaction in the main context it was made in (here the main thread's),
        // for the synchronous handshake of that context's thread too. The GnuTLS backend
        // (glib-networking 2.74) calls it now there, now in its handshake thread: not checked.
        let thread = match backend {
            Backend::Ferrossl => "asked-in-main-thread",
            Backend::Gnutls => "asked-once",
        };
        let env: Env = match backend {
            Backend::Ferrossl => gio_env,
            Backend::Gnutls => gnutls_backend_env,
        };
        for version in ["-tls1_3", "-tls1_2"] {
            for mode in ["sync", "async", "unhandled"] {
                let (mut peer, port) = server(
                    &pki.server_ecdsa,
                    &["-Verify", "1", "-CAfile", &ca, version],
                );
                let args = [
                    port.to_string(),
                    ca.clone(),
                    path(&pki.client_ecdsa.chain_path),
                    path(&pki.client_ecdsa.key_path),
                    path(&encrypted),
                    mode.to_string(),
                ];
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = run_python_in(env, "interaction.py", &args);
                assert_checks(&out, &[thread]);
                if mode == "unhandled" {
                    assert_checks(&out, &ok[..5]);
                    assert_checks(&out, &["refused"]);
                    // GIO's code for it; the GnuTLS backend (glib-networking 2.74) says MISC
                    // (asserted, so that a change there shows).
                    let code = match backend {
                        Backend::Ferrossl => "certificate-required",
                        Backend::Gnutls => "misc",
                    };
                    assert!(out.contains(&format!("tls-error {code}\n")), "{out}");
                } else {
                    assert_checks(&out, &ok);
                    // s_server verified the certificate the interaction set.
                    peer.wait_for_output("ferrossl test client", PEER_WAIT)
                        .unwrap();
                }
            }
        }
    }
}

/// The deprecated `validation-flags` of a client, as glib-networking reads them: a server
/// certificate whose problems are none of them is accepted without asking accept-certificate,
/// and the problems stay in peer-certificate-errors. On both backends.
#[test]
fn python_client_validation_flags_skip_the_signal() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let client = vec![
        "/usr/bin/python3".to_string(),
        path(&pki.ca_path()),
        path(&test_file("python/client.py")),
    ];
    let mut envs: Vec<Env> = vec![gio_env];
    if have_gnutls_backend() {
        envs.push(gnutls_backend_env);
    }
    for env in envs {
        let (out, _server) = client_run_in(env, &client, &pki.untrusted, "unvalidated", &[]);
        assert_checks(&out, &["type", "accepted-without-signal", "peer-errors"]);
    }
}
