//! DTLS from C on 127.0.0.1: GDtlsClientConnection over a connected UDP GSocket against
//! `openssl s_server -dtls1_2` (DTLS 1.2 by fallback: our connections offer 1.3 too; handshake
//! verified against the test CA, a datagram each way, close; an untrusted server refused
//! through accept-certificate), and GDtlsServerConnection for `openssl s_client -dtls1_2`
//! (with and without a required client certificate); our DTLS client and server with each
//! other over DTLS 1.3 (data both ways, a cancelled receive, a socket timeout, a shutdown of
//! the write side), the same on glib-networking's GnuTLS backend, and each of ours with the
//! other backend's (DTLS 1.2, once glib-networking's priority lets GnuTLS use the extended
//! master secret); records a server sent together in one datagram, held by our client's
//! connection after its first receive, waking condition_check/_wait and its GSource.
//! (PyGObject cannot pass GDatagramBased's message arrays, so DTLS data is tested from C.)

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ferrossl_testkit::peer::{
    free_udp_port, gnutls_serv, in_loopback_namespace, openssl_s_client, openssl_s_server,
    require_tool, PeerProcess,
};
use ferrossl_testkit::pki::{Identity, TestPki};

const WAIT: Duration = Duration::from_secs(10);

fn dtls_server(id: &Identity) -> (PeerProcess, u16) {
    let port = free_udp_port();
    let args = ["-dtls1_2".to_string()];
    let mut server =
        PeerProcess::spawn(&mut openssl_s_server(port, id, &args)).expect("spawn s_server");
    server.wait_for_udp_port(port, WAIT).unwrap();
    (server, port)
}

fn client_on(
    backend: Backend,
    program: &std::path::Path,
    pki: &TestPki,
    port: u16,
    mode: &str,
) -> PeerProcess {
    let mut cmd = Command::new(program);
    cmd.args([
        port.to_string(),
        pki.ca_path().to_str().unwrap().to_string(),
        mode.to_string(),
    ]);
    PeerProcess::spawn(backend.env(&mut cmd)).expect("spawn client")
}

fn assert_checks(out: &str, checks: &[&str]) {
    for check in checks {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}

#[test]
fn c_dtls_client_against_openssl_s_server() {
    if !require_tool("openssl") {
        return;
    }
    let Some(program) = c_program("dtls_client") else {
        return;
    };
    client_against_openssl_s_server(Backend::Ferrossl, &program);
}

/// The same on glib-networking's GnuTLS backend, to show the program tests what GIO promises.
#[test]
fn c_dtls_client_on_the_gnutls_backend_against_openssl_s_server() {
    if !require_tool("openssl") || !have_gnutls_backend() {
        return;
    }
    let Some(program) = c_program("dtls_client") else {
        return;
    };
    client_against_openssl_s_server(Backend::Gnutls, &program);
}

fn client_against_openssl_s_server(backend: Backend, program: &std::path::Path) {
    let pki = TestPki::generate();
    let (mut server, port) = dtls_server(&pki.server_ecdsa);
    let mut dtls = client_on(backend, program, &pki, port, "trusted");
    // s_server prints what it receives and sends what it reads on stdin.
    server.wait_for_output("hello dtls", WAIT).unwrap();
    server.write_stdin(b"pong\n").unwrap();
    // Then one more, which the client waits for on its connection's GSource.
    dtls.wait_for_output("received pong", WAIT).unwrap();
    server.write_stdin(b"again\n").unwrap();
    dtls.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    let out = dtls.stdout();
    assert_checks(
        &out,
        &[
            "type",
            "no-signal",
            "protocol-version",
            "peer-certificate",
            "same-peer-certificate",
            "peer-errors",
        ],
    );
    assert_checks(&out, &["ciphersuite", "sent", "received", "closed"]);
    if backend == Backend::Ferrossl {
        // A DTLS 1.2 suite, by its IANA name.
        assert!(out.contains("ciphersuite TLS_ECDHE_ECDSA_WITH_"), "{out}");
    }
    assert!(out.contains("received pong\n"), "{out}");
    assert_checks(&out, &["source-gives-the-connection", "from-source"]);
    assert!(out.contains("from-source again\n"), "{out}");

    // A wrong name too: accept-certificate sees both problems at once.
    let (_server, port) = dtls_server(&pki.untrusted);
    let mut dtls = client_on(backend, program, &pki, port, "untrusted-elsewhere");
    dtls.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    assert_checks(&dtls.stdout(), &["type", "refused", "signal"]);

    let (mut server, port) = dtls_server(&pki.untrusted);
    let mut dtls = client_on(backend, program, &pki, port, "untrusted");
    dtls.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    assert_checks(&dtls.stdout(), &["type", "refused", "signal"]);
    if backend == Backend::Gnutls {
        // The GnuTLS backend refuses without an alert (as over TLS): the client has ended, so
        // whatever it sent is in; asserted, so that a change there shows.
        std::thread::sleep(Duration::from_millis(300));
        let seen = server.stdout() + &server.stderr();
        assert!(!seen.contains("alert"), "{seen}");
    } else {
        server.wait_for_output("alert unknown ca", WAIT).unwrap();
    }
}

fn path(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Our DTLS server on `backend` in `mode`, and `openssl s_client -dtls1_2` for it (with the
/// certificate of `client_id`), which has sent a line.
fn dtls_session_start(
    backend: Backend,
    program: &std::path::Path,
    pki: &TestPki,
    mode: &str,
    client_id: Option<&Identity>,
) -> (PeerProcess, PeerProcess) {
    let port = free_udp_port();
    let mut cmd = Command::new(program);
    cmd.args([
        port.to_string(),
        path(&pki.server_ecdsa.chain_path),
        path(&pki.server_ecdsa.key_path),
        path(&pki.ca_path()),
        mode.to_string(),
    ]);
    let mut server = PeerProcess::spawn(backend.env(&mut cmd)).expect("spawn server");
    server.wait_for_output("listening", WAIT).unwrap();
    let mut args: Vec<String> = vec!["-dtls1_2".into(), "-CAfile".into(), path(&pki.ca_path())];
    for a in [
        "-verify_return_error",
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
    let mut client =
        PeerProcess::spawn(&mut openssl_s_client(port, &args)).expect("spawn s_client");
    // s_client sends a line once its handshake is done; until then stdin waits in the pipe.
    client.write_stdin(b"hello from s_client\n").unwrap();
    (server, client)
}

/// One session of our DTLS server with s_client: a line sent, its reversal printed.
fn dtls_session(
    backend: Backend,
    program: &std::path::Path,
    pki: &TestPki,
    mode: &str,
    client_id: Option<&Identity>,
) -> String {
    let (mut server, mut client) = dtls_session_start(backend, program, pki, mode, client_id);
    client.wait_for_output("tneilc_s morf olleh", WAIT).unwrap();
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    server.stdout()
}

/// Our DTLS server for `openssl s_client -dtls1_2`: without a client certificate, with a
/// required one (about which, good as it is, accept-certificate is asked, as GIO's rule for
/// servers says), and with one from an unknown CA, which accept-certificate refuses.
#[test]
fn c_dtls_server_for_openssl_s_client() {
    if !require_tool("openssl") {
        return;
    }
    let Some(program) = c_program("dtls_server") else {
        return;
    };
    dtls_server_sessions(Backend::Ferrossl, &program);
}

/// The same on glib-networking's GnuTLS backend, to show the program tests what GIO promises.
#[test]
fn c_dtls_server_on_the_gnutls_backend_for_openssl_s_client() {
    if !require_tool("openssl") || !have_gnutls_backend() {
        return;
    }
    let Some(program) = c_program("dtls_server") else {
        return;
    };
    dtls_server_sessions(Backend::Gnutls, &program);
}

fn dtls_server_sessions(backend: Backend, program: &std::path::Path) {
    let pki = TestPki::generate();
    let out = dtls_session(backend, program, &pki, "anonymous", None);
    assert_checks(
        &out,
        &[
            "type",
            "handshake",
            "protocol-version",
            "no-client-certificate",
            "read",
            "closed",
        ],
    );
    let out = dtls_session(backend, program, &pki, "required", Some(&pki.client_ecdsa));
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
    let (mut server, mut client) =
        dtls_session_start(backend, program, &pki, "reject", Some(&pki.untrusted));
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    assert_checks(&server.stdout(), &["refused", "signal"]);
    if backend == Backend::Ferrossl {
        // The engine's first problem picks the alert (as over TLS: this server certificate
        // also lacks the clientAuth purpose).
        client.wait_for_output("alert", WAIT).unwrap();
    }
    client.kill();
}

#[test]
fn python_dtls_async_handshake_asks_accept_certificate_in_the_main_thread() {
    if !require_tool("openssl") || !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    for (mode, outcome) in [("refuse", "refused"), ("accept", "accepted")] {
        let (_server, port) = dtls_server(&pki.untrusted);
        let ca = pki.ca_path();
        let out = run_python(
            "dtls_async.py",
            &[&port.to_string(), ca.to_str().unwrap(), mode],
        );
        assert_checks(
            &out,
            &["type", "asked-once", "asked-in-main-thread", outcome],
        );
    }
}

/// Our DTLS server ("pair" mode) and our DTLS client in `client_mode`, each on its backend,
/// both expecting DTLS `version` ("1.2" or "1.3"); the client is returned once it has ended
/// (its status unchecked), the server still running.
fn dtls_pair(
    pki: &TestPki,
    client_mode: &str,
    server_backend: Backend,
    client_backend: Backend,
    version: &str,
) -> (PeerProcess, PeerProcess) {
    dtls_pair_with_env(
        pki,
        client_mode,
        server_backend,
        client_backend,
        version,
        &[],
    )
}

/// [`dtls_pair`] with `env` added to both programs' environments.
fn dtls_pair_with_env(
    pki: &TestPki,
    client_mode: &str,
    server_backend: Backend,
    client_backend: Backend,
    version: &str,
    env: &[(&str, &str)],
) -> (PeerProcess, PeerProcess) {
    let (Some(server_program), Some(client_program)) =
        (c_program("dtls_server"), c_program("dtls_client"))
    else {
        panic!("the C programs were checked for before");
    };
    let port = free_udp_port();
    let mut cmd = Command::new(server_program);
    cmd.args([
        port.to_string(),
        path(&pki.server_ecdsa.chain_path),
        path(&pki.server_ecdsa.key_path),
        path(&pki.ca_path()),
        "pair".into(),
        version.into(),
    ]);
    cmd.envs(env.iter().copied());
    let mut server = PeerProcess::spawn(server_backend.env(&mut cmd)).unwrap();
    server.wait_for_output("listening", WAIT).unwrap();
    let mut cmd = Command::new(client_program);
    cmd.args([
        port.to_string(),
        path(&pki.ca_path()),
        client_mode.into(),
        version.into(),
    ]);
    cmd.envs(env.iter().copied());
    let mut client = PeerProcess::spawn(client_backend.env(&mut cmd)).unwrap();
    let _ = client.wait_with_timeout(PROGRAM_TIMEOUT);
    (server, client)
}

const PAIR_CLIENT_CHECKS: [&str; 10] = [
    "type",
    "protocol-version",
    "peer-errors",
    "sent",
    "received",
    "from-source",
    "cancelled",
    "shutdown-write",
    "read-after-shutdown",
    "peer-closed",
];

const PAIR_SERVER_CHECKS: [&str; 7] = [
    "handshake",
    "protocol-version",
    "ciphersuite",
    "read",
    "peer-shut-down-writing",
    "sent-after-peer-shutdown",
    "closed",
];

/// Our DTLS client and server with each other, over DTLS 1.3 (GIO's protocol-version
/// UNKNOWN, a TLS 1.3 cipher suite): data both ways, a cancelled receive, a socket
/// timeout (ending a bounded receive with G_IO_ERROR_TIMED_OUT, not a blocking one, and with no
/// GLib critical: warnings are fatal), a shutdown of the client's write side (the server reads
/// its close_notify, and the client still reads), the server's close_notify.
#[test]
fn c_dtls_client_and_server_with_each_other() {
    if c_program("dtls_server").is_none() || c_program("dtls_client").is_none() {
        return;
    }
    let pki = TestPki::generate();
    let (mut server, mut client) =
        dtls_pair(&pki, "pair", Backend::Ferrossl, Backend::Ferrossl, "1.3");
    client.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    let out = client.stdout();
    assert_checks(&out, &PAIR_CLIENT_CHECKS);
    assert!(
        out.contains("ciphersuite TLS_AES_") || out.contains("ciphersuite TLS_CHACHA20_"),
        "{out}"
    );
    assert_checks(
        &out,
        &[
            "socket-timeout",
            "blocking-past-socket-timeout",
            "source-with-socket-timeout",
            "closed",
        ],
    );
    assert!(out.contains("received sltd olleh\n"), "{out}");
    assert!(out.contains("from-source again\n"), "{out}");
    assert_checks(&server.stdout(), &PAIR_SERVER_CHECKS);
}

/// The same two programs on glib-networking's GnuTLS backend, to show that they test what GIO
/// promises: everything passes there but the socket timeout, where that backend hands the
/// receive to GLib's GSocket, which refuses datagram calls on a socket with a timeout and then
/// trips GIO's own check of its return value (a GLib CRITICAL, fatal here): the client dies
/// there, and the test asserts that.
#[test]
fn c_dtls_client_and_server_on_the_gnutls_backend() {
    if !have_gnutls_backend()
        || c_program("dtls_server").is_none()
        || c_program("dtls_client").is_none()
    {
        return;
    }
    let pki = TestPki::generate();
    let (mut server, mut client) = dtls_pair(
        &pki,
        "pair-without-socket-timeout",
        Backend::Gnutls,
        Backend::Gnutls,
        "1.2",
    );
    client.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    let out = client.stdout();
    assert_checks(&out, &PAIR_CLIENT_CHECKS);
    assert!(out.contains("received sltd olleh\n"), "{out}");
    assert_checks(&server.stdout(), &PAIR_SERVER_CHECKS);

    let (mut server, mut client) = dtls_pair(&pki, "pair", Backend::Gnutls, Backend::Gnutls, "1.2");
    server.kill();
    let failure = client
        .wait_with_timeout(PROGRAM_TIMEOUT)
        .unwrap_err()
        .to_string();
    assert!(failure.contains("ok cancelled\n"), "{failure}");
    assert!(!failure.contains("ok socket-timeout"), "{failure}");
    assert!(
        failure.contains("GLib-GIO-CRITICAL")
            && failure.contains("g_datagram_based_receive_messages"),
        "the GnuTLS backend's failure changed (fixed?):\n{failure}"
    );
}

/// Our DTLS client with a GDtlsServerConnection of glib-networking's GnuTLS backend, and the
/// other way round. GnuTLS (3.7) has DTLS 1.2 only, and glib-networking appends `%COMPAT` to
/// its GnuTLS priority, which turns the extended master secret off (`openssl s_client
/// -dtls1_2` against it shows "Extended master secret: no"); ferrossl's DTLS 1.2 requires it
/// (RFC 7627): each refuses the other's handshake, saying why (asserted, so that a change on
/// either side shows). With glib-networking's priority overridden without `%COMPAT`
/// (`G_TLS_GNUTLS_PRIORITY=NORMAL`), the pair's checks pass across the backends.
#[test]
fn c_dtls_across_backends_needs_the_extended_master_secret() {
    if !have_gnutls_backend()
        || c_program("dtls_server").is_none()
        || c_program("dtls_client").is_none()
    {
        return;
    }
    let pki = TestPki::generate();
    let (mut server, mut client) =
        dtls_pair(&pki, "pair", Backend::Gnutls, Backend::Ferrossl, "1.2");
    server.kill();
    let failure = client
        .wait_with_timeout(PROGRAM_TIMEOUT)
        .unwrap_err()
        .to_string();
    assert!(
        failure.contains("FAILED handshake")
            && failure.contains("does not support the extended master secret"),
        "{failure}"
    );

    let (mut server, mut client) = dtls_pair(
        &pki,
        "pair-without-socket-timeout",
        Backend::Ferrossl,
        Backend::Gnutls,
        "1.2",
    );
    client.kill();
    let failure = server
        .wait_with_timeout(PROGRAM_TIMEOUT)
        .unwrap_err()
        .to_string();
    assert!(
        failure.contains("FAILED handshake")
            && failure.contains("does not offer the extended master secret"),
        "{failure}"
    );

    let normal = [("G_TLS_GNUTLS_PRIORITY", "NORMAL")];
    let (mut server, mut client) = dtls_pair_with_env(
        &pki,
        "pair",
        Backend::Gnutls,
        Backend::Ferrossl,
        "1.2",
        &normal,
    );
    client.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    assert_checks(&client.stdout(), &PAIR_CLIENT_CHECKS);
    assert_checks(&server.stdout(), &PAIR_SERVER_CHECKS);
    let (mut server, mut client) = dtls_pair_with_env(
        &pki,
        "pair-without-socket-timeout",
        Backend::Ferrossl,
        Backend::Gnutls,
        "1.2",
        &normal,
    );
    client.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    server.wait_with_timeout(PROGRAM_TIMEOUT).unwrap();
    assert_checks(&client.stdout(), &PAIR_CLIENT_CHECKS);
    assert_checks(&server.stdout(), &PAIR_SERVER_CHECKS);
}

/// The Python program of the asynchronous DTLS handshake against `gnutls-serv --udp` (DTLS 1.2;
/// in this test's private network namespace, as it binds every address) with a certificate
/// the CA does not vouch for: accept-certificate is asked once, in the main thread, and its
/// answer decides.
#[test]
fn python_dtls_async_handshake_against_gnutls_serv() {
    if !require_tool("gnutls-serv")
        || !have_pygobject()
        || !in_loopback_namespace("python_dtls_async_handshake_against_gnutls_serv")
    {
        return;
    }
    let pki = TestPki::generate();
    for (mode, outcome) in [("refuse", "refused"), ("accept", "accepted")] {
        let port = free_udp_port();
        let args = ["--udp".to_string()];
        let mut server = PeerProcess::spawn(&mut gnutls_serv(port, &pki.untrusted, &args))
            .expect("spawn gnutls-serv");
        server.wait_for_output("listening", WAIT).unwrap();
        let ca = pki.ca_path();
        let out = run_python(
            "dtls_async.py",
            &[&port.to_string(), ca.to_str().unwrap(), mode],
        );
        assert_checks(
            &out,
            &["type", "asked-once", "asked-in-main-thread", outcome],
        );
        server.kill();
    }
}

/// A DTLS server of the library's on a UDP socket of its own, driven through its memory BIO so
/// that the test decides what each datagram carries (the memory BIO hands out the datagrams
/// queued together in one read).
struct PackingServer {
    socket: std::net::UdpSocket,
    conn: ferrossl::Connection,
    peer: Option<std::net::SocketAddr>,
    /// Datagrams sent so far.
    sent: usize,
}

impl PackingServer {
    fn new(id: &Identity, max_version: i32) -> Self {
        let context = ferrossl::Context::new(ferrossl::Method::DtlsServer);
        context.use_certificate_chain_file(&id.chain_path).unwrap();
        context
            .use_privatekey_file(&id.key_path, ferrossl::constants::FILETYPE_PEM)
            .unwrap();
        context.set_max_proto_version(max_version).unwrap();
        let mut conn = ferrossl::Connection::new(&context).unwrap();
        conn.set_accept_state().unwrap();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        Self {
            socket,
            conn,
            peer: None,
            sent: 0,
        }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// Sends what the engine queued, as few datagrams as the memory BIO makes of it.
    fn flush(&mut self) {
        while let Ok(d) = self.conn.bio_read(65_536) {
            let peer = self.peer.expect("the peer spoke first");
            self.socket.send_to(&d, peer).unwrap();
            self.sent += 1;
        }
    }

    /// Feeds the engine one datagram from the peer; false when none came in time.
    fn take_datagram(&mut self) -> bool {
        let mut buf = vec![0u8; 65_536];
        match self.socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                self.peer = Some(from);
                self.conn.bio_write(&buf[..n]).unwrap();
                true
            }
            Err(_) => false,
        }
    }

    fn handshake(&mut self) -> bool {
        while !self.conn.is_handshake_done() {
            if !self.take_datagram() {
                return false;
            }
            let _ = self.conn.do_handshake();
            self.flush();
        }
        true
    }

    /// The next application datagram from the peer (None when none came in time).
    fn receive(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65_536];
        loop {
            match self.conn.recv(&mut buf) {
                Ok(n) => return Some(buf[..n].to_vec()),
                Err(ferrossl::Error::WantRead) => {}
                Err(e) => panic!("server: {e}"),
            }
            self.flush();
            if !self.take_datagram() {
                return None;
            }
        }
    }

    /// Sends `records` and then, if `close`, close_notify, all in one datagram.
    fn send_together(&mut self, records: &[&[u8]], close: bool) {
        for record in records {
            self.conn.send(record).unwrap();
        }
        if close {
            let _ = self.conn.shutdown();
        }
        let before = self.sent;
        self.flush();
        assert_eq!(self.sent - before, 1, "one datagram carries them all");
    }
}

/// Records held by the connection wake GIO's waits: a server sends three records in one
/// datagram; our client's first receive returns the first and keeps the others, for which no
/// datagram will come. condition_check (G_IO_IN) says G_IO_IN, condition_wait returns at once,
/// and the GSource of g_datagram_based_create_source dispatches for each on a GMainLoop, with
/// the server silent meanwhile; then, with the records taken, condition_check says nothing.
/// A close_notify held behind data wakes the GSource too. Over DTLS 1.2 and 1.3. (On
/// glib-networking 2.74's GnuTLS backend, over DTLS 1.2, the same program fails at check-held,
/// and its 2 s condition_wait had not returned when the program's 20 s alarm ended it: not run
/// here.)
#[test]
fn c_dtls_records_held_by_the_connection_wake_its_waits() {
    use ferrossl::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
    let Some(program) = c_program("dtls_held") else {
        return;
    };
    let pki = TestPki::generate();
    for (version, name) in [(DTLS1_2_VERSION, "1.2"), (DTLS1_3_VERSION, "1.3")] {
        let out = held_records(&program, &pki, version, name);
        assert_checks(
            &out,
            &[
                "protocol-version",
                "received-first",
                "check-held",
                "wait-held",
                "source-held",
                "nothing-held",
                "received-last",
                "end-held",
            ],
        );
    }
}

/// The program `dtls_held` with a [`PackingServer`] limited to `version` (`name` for the
/// program); its output once it has ended, as it must, successfully.
fn held_records(program: &std::path::Path, pki: &TestPki, version: i32, name: &str) -> String {
    let mut server = PackingServer::new(&pki.server_ecdsa, version);
    let mut cmd = Command::new(program);
    cmd.args([server.port().to_string(), path(&pki.ca_path()), name.into()]);
    let mut client = PeerProcess::spawn(gio_env(&mut cmd)).expect("spawn dtls_held");
    let output = |client: &PeerProcess| client.stdout() + &client.stderr();
    assert!(server.handshake(), "handshake: {}", output(&client));
    assert_eq!(
        server.receive().as_deref(),
        Some(&b"ready"[..]),
        "{}",
        output(&client)
    );
    server.send_together(&[b"first", b"second", b"third"], false);
    let silent_from = server.sent;
    let done = server.receive();
    assert_eq!(
        server.sent, silent_from,
        "the server sent nothing while the client waited"
    );
    if done.as_deref() == Some(b"done") {
        server.send_together(&[b"last"], true);
    }
    if let Err(e) = client.wait_with_timeout(PROGRAM_TIMEOUT) {
        panic!("DTLS {name}: {e}");
    }
    client.stdout()
}
