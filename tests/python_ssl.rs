//! ferrossl against Python's `ssl` module (OpenSSL underneath, driven the way Python programs
//! drive it), both directions, TLS 1.2 and 1.3, with and without client certificates.

use std::process::{Command, Stdio};

use ferrossl::constants::*;
use ferrossl_interop::*;
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::TestPki;

/// A one-connection echo server: prints READY, echoes one line, then unwraps (close_notify).
const PY_SERVER: &str = r#"
import socket, ssl, sys
port, cert, key, ca, version, need_client = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
v = ssl.TLSVersion.TLSv1_3 if version == "tls1_3" else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = ctx.maximum_version = v
if need_client == "1":
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
with socket.create_server(("127.0.0.1", int(port))) as srv:
    srv.settimeout(10)
    print("READY", flush=True)
    raw, _ = srv.accept()
    raw.settimeout(10)
    tls = ctx.wrap_socket(raw, server_side=True)
    line = b""
    while not line.endswith(b"\n"):
        line += tls.recv(1024)
    tls.sendall(b"echo: " + line)
    peer = tls.getpeercert()
    print("PEER", peer["subject"] if peer else None, tls.version(), flush=True)
    tls.unwrap().close()
"#;

/// A client: verifies the server by name, sends a line, prints the reply, closes cleanly.
const PY_CLIENT: &str = r#"
import socket, ssl, sys
port, ca, version, cert, key = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
v = ssl.TLSVersion.TLSv1_3 if version == "tls1_3" else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = ctx.maximum_version = v
if cert != "-":
    ctx.load_cert_chain(cert, key)
with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"hello from python\n")
        reply = b""
        while not reply.endswith(b"\n"):
            reply += tls.recv(1024)
        print("REPLY", reply.decode().strip(), tls.version(), flush=True)
        tls.unwrap()
"#;

#[test]
fn ferrossl_client_with_python_server() {
    let Some(python) = peer::python3() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required under CI"
        );
        eprintln!("skipped: python3 not found");
        return;
    };
    let pki = TestPki::generate();
    for (version, flag, server, client_cert) in matrix(&pki) {
        let port = peer::free_tcp_port();
        let mut cmd = Command::new(&python);
        cmd.arg("-c").arg(PY_SERVER).arg(port.to_string());
        cmd.args([&server.chain_path, &server.key_path, &pki.ca_path()]);
        cmd.args([flag, if client_cert { "1" } else { "0" }]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut py = PeerProcess::spawn(&mut cmd).unwrap();
        py.wait_for_output("READY", TIMEOUT).unwrap();
        let id = client_cert.then_some(&pki.client_ecdsa);
        let ctx = context(&pki, id, VERIFY_PEER, version);
        let mut conn = connect(&ctx, port, Some("localhost")).unwrap();
        conn.sendall(b"hi python\n").unwrap();
        read_until(&mut conn, "echo: hi python").unwrap();
        close_both_ways(&mut conn).unwrap();
        py.wait_with_timeout(TIMEOUT).unwrap();
        let expected = if version == TLS1_3_VERSION {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        };
        assert!(py.stdout().contains(expected), "{}", py.stdout());
        assert_eq!(
            py.stdout().contains("ferrossl test client"),
            client_cert,
            "{}",
            py.stdout()
        );
    }
}

#[test]
fn ferrossl_server_with_python_client() {
    let Some(python) = peer::python3() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required under CI"
        );
        eprintln!("skipped: python3 not found");
        return;
    };
    let pki = TestPki::generate();
    for (version, flag, server, client_cert) in matrix(&pki) {
        let mode = server_verify_mode(client_cert);
        let ctx = context(&pki, Some(server), mode, version);
        let srv = TestServer::start(ctx, 1, |conn| {
            read_until(conn, "hello from python")?;
            conn.sendall(b"hello from ferrossl\n")?;
            close_both_ways(conn)?;
            Ok(conn.get_peer_certificate().is_some())
        });
        let mut cmd = Command::new(&python);
        cmd.arg("-c")
            .arg(PY_CLIENT)
            .arg(srv.port.to_string())
            .arg(pki.ca_path())
            .arg(flag);
        if client_cert {
            cmd.args([&pki.client_rsa.cert_path, &pki.client_rsa.key_path]);
        } else {
            cmd.args(["-", "-"]);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut py = PeerProcess::spawn(&mut cmd).unwrap();
        py.wait_with_timeout(TIMEOUT).unwrap();
        assert_eq!(srv.join_one().unwrap(), client_cert);
        assert!(
            py.stdout().contains("REPLY hello from ferrossl"),
            "{}\n{}",
            py.stdout(),
            py.stderr()
        );
    }
}
