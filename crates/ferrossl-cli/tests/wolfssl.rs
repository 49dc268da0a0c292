//! `ferrossl s_server -dtls` and `s_client -dtls1_2` against wolfSSL's example server and
//! client, built from source by `tests/peers/wolfssl.sh` (wolfSSL is GPL: a test peer only).
//! wolfSSL is the peer that speaks DTLS 1.3 and connection IDs; these tests keep DTLS 1.2
//! with it working, both ways, with RSA and ECDSA certificates.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::{Identity, TestPki};

const TIMEOUT: Duration = Duration::from_secs(15);
const FERROSSL: &str = env!("CARGO_BIN_EXE_ferrossl");

/// The directory holding wolfSSL's `client` and `server`, built once per test run; None (the
/// test skips, or fails under CI) when the build tools are missing.
fn wolfssl() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        for tool in ["autoreconf", "libtoolize", "make", "openssl"] {
            if !peer::require_tool(tool) {
                return None;
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/peers/wolfssl.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "building wolfSSL failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
    .as_ref()
}

/// A wolfSSL example program, run in its directory (it looks for `certs/` there).
fn wolfssl_program(dir: &PathBuf, name: &str, args: &[String]) -> PeerProcess {
    let mut cmd = Command::new(dir.join(name));
    cmd.current_dir(dir).args(args);
    PeerProcess::spawn(&mut cmd).unwrap()
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn identities(pki: &TestPki) -> [(&'static str, &Identity); 2] {
    [("RSA", &pki.server_rsa), ("ECDSA", &pki.server_ecdsa)]
}

/// Each case: a certificate, and whether both ends ask for connection IDs.
fn cases(pki: &TestPki) -> Vec<(&'static str, &Identity, bool)> {
    identities(pki)
        .into_iter()
        .flat_map(|(kind, id)| [(kind, id, false), (kind, id, true)])
        .collect()
}

/// wolfSSL's option for asking its peer for a connection ID: "wolf", 776f6c66 in hex.
const WOLFSSL_CID: [&str; 2] = ["--cid", "wolf"];

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A DTLS version as each program names it.
#[derive(Clone, Copy)]
struct Version {
    /// wolfSSL's -v.
    wolfssl: &'static str,
    /// Our flag.
    flag: &'static str,
    /// How both print it.
    name: &'static str,
}

const DTLS12: Version = Version {
    wolfssl: "3",
    flag: "-dtls1_2",
    name: "DTLSv1.2",
};
const DTLS13: Version = Version {
    wolfssl: "4",
    flag: "-dtls1_3",
    name: "DTLSv1.3",
};

/// wolfSSL's client against our server: RSA and ECDSA, with and without connection IDs; with
/// `client_auth` the client presents the test client certificate and our server requires one.
fn wolfssl_client_with_ferrossl_server(version: Version, client_auth: bool) {
    let Some(dir) = wolfssl() else { return };
    let pki = TestPki::generate();
    for (kind, id, cid) in cases(&pki) {
        let port = peer::free_udp_port();
        let accept = format!("127.0.0.1:{port}");
        let (cert, key, ca) = (
            path(&id.chain_path),
            path(&id.key_path),
            path(&pki.ca_path()),
        );
        let mut args = vec![
            "s_server",
            version.flag,
            "-accept",
            &accept,
            "-cert",
            &cert,
            "-key",
            &key,
        ];
        if cid {
            args.extend(["-cid", "4"]);
        }
        if client_auth {
            args.extend(["-Verify", "1", "-CAfile", &ca]);
        }
        let mut server = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
        server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
        // -u DTLS, -v the version, -x no client certificate, -A the CA to verify with.
        let mut client_args = strings(&["-u", "-v", version.wolfssl, "-h", "127.0.0.1", "-p"]);
        client_args.extend([port.to_string(), "-A".into(), ca]);
        if client_auth {
            let client = &pki.client_ecdsa;
            client_args.extend(["-c".into(), path(&client.chain_path)]);
            client_args.extend(["-k".into(), path(&client.key_path)]);
        } else {
            client_args.push("-x".into());
        }
        if cid {
            client_args.extend(strings(&WOLFSSL_CID));
        }
        let mut client = wolfssl_program(dir, "client", &client_args);
        client.wait_with_timeout(TIMEOUT).unwrap();
        let out = client.stdout();
        assert!(
            out.contains(&format!("SSL version is {}", version.name)),
            "{kind}: {out}"
        );
        if version.name == DTLS13.name {
            // wolfSSL offers the hybrid without a share; our server's retry asks for it.
            assert!(
                out.contains("SSL curve name is X25519MLKEM768"),
                "{kind}: {out}"
            );
        }
        // The example sends "hello wolfssl!" and prints the answer: our server's echo.
        assert!(out.trim_end().ends_with("hello wolfssl!"), "{kind}: {out}");
        server
            .wait_for_output(&format!("Protocol: {}", version.name), TIMEOUT)
            .unwrap();
        server.wait_for_output("hello wolfssl!", TIMEOUT).unwrap();
        let said = server.stderr();
        if client_auth {
            assert!(said.contains("CN=ferrossl test client"), "{said}");
        }
        assert_connection_ids(cid, &out, &said);
    }
}

/// Our client against wolfSSL's server, as above; with `client_auth` the server requires a
/// certificate and verifies it against the test root.
fn ferrossl_client_with_wolfssl_server(version: Version, client_auth: bool) {
    let Some(dir) = wolfssl() else { return };
    let pki = TestPki::generate();
    for (kind, id, cid) in cases(&pki) {
        let port = peer::free_udp_port();
        let ca = path(&pki.ca_path());
        // -d: no client certificate asked for; one connection, then the server exits.
        let mut server_args = strings(&["-u", "-v", version.wolfssl, "-p"]);
        server_args.extend([port.to_string(), "-c".into(), path(&id.chain_path)]);
        server_args.extend(["-k".into(), path(&id.key_path)]);
        if client_auth {
            server_args.extend(["-A".into(), ca.clone()]);
        } else {
            server_args.push("-d".into());
        }
        if cid {
            server_args.extend(strings(&WOLFSSL_CID));
        }
        let mut server = wolfssl_program(dir, "server", &server_args);
        server.wait_for_udp_port(port, TIMEOUT).unwrap();
        let connect = format!("127.0.0.1:{port}");
        let client = &pki.client_rsa;
        let (cert, key) = (path(&client.chain_path), path(&client.key_path));
        let mut args = vec![
            "s_client",
            "-connect",
            &connect,
            version.flag,
            "-CAfile",
            &ca,
            "-verify_return_error",
        ];
        if cid {
            args.extend(["-cid", "4"]);
        }
        if client_auth {
            args.extend(["-cert", &cert, "-key", &key]);
        }
        let mut client = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
        client
            .wait_for_output("Verify return code: 0 (ok)", TIMEOUT)
            .unwrap();
        client.write_stdin(b"hello from ferrossl\n").unwrap();
        // The example answers any message with this line.
        client
            .wait_for_output("I hear you fa shizzle!", TIMEOUT)
            .unwrap();
        server.wait_with_timeout(TIMEOUT).unwrap();
        let said = server.stdout();
        assert!(
            said.contains(&format!("SSL version is {}", version.name)),
            "{kind}: {said}"
        );
        assert!(
            said.contains("Client message: hello from ferrossl"),
            "{kind}: {said}"
        );
        assert_connection_ids(cid, &said, &client.stderr());
        client.kill();
    }
}

#[test]
fn wolfssl_client_with_ferrossl_dtls12_server() {
    wolfssl_client_with_ferrossl_server(DTLS12, false);
}

#[test]
fn ferrossl_dtls12_client_with_wolfssl_server() {
    ferrossl_client_with_wolfssl_server(DTLS12, false);
}

/// DTLS 1.3 (RFC 9147): wolfSSL's client gets a HelloRetryRequest with a cookie from our
/// stateless listener and the post-quantum hybrid it offered.
#[test]
fn wolfssl_client_with_ferrossl_dtls13_server() {
    wolfssl_client_with_ferrossl_server(DTLS13, false);
}

/// Our client sends a classic share first, which wolfSSL's server takes as it is.
#[test]
fn ferrossl_dtls13_client_with_wolfssl_server() {
    ferrossl_client_with_wolfssl_server(DTLS13, false);
}

#[test]
fn dtls13_client_authentication_both_ways_with_wolfssl() {
    wolfssl_client_with_ferrossl_server(DTLS13, true);
    ferrossl_client_with_wolfssl_server(DTLS13, true);
}

/// With CIDs, wolfSSL says it negotiated them and our end reports sending the CID wolfSSL
/// asked for (the data exchanged afterwards travelled in tls12_cid records); without, neither
/// speaks of one.
fn assert_connection_ids(cid: bool, wolfssl: &str, ours: &str) {
    let line = ours
        .lines()
        .find(|l| l.starts_with("Connection ID:"))
        .unwrap_or_else(|| panic!("no Connection ID line in {ours}"));
    if cid {
        assert!(
            wolfssl.contains("CID extension was negotiated"),
            "{wolfssl}"
        );
        assert!(line.starts_with("Connection ID: received "), "{line}");
        assert!(line.ends_with(", sent 776f6c66"), "{line}");
    } else {
        assert!(!wolfssl.contains("CID extension"), "{wolfssl}");
        assert_eq!(line, "Connection ID: none");
    }
}

/// KeyUpdate (RFC 9147 §8) both ways with data after it: wolfSSL's client updates its keys
/// (and asks us to) before it talks; our client does with a "K" line, and wolfSSL's server
/// updates its own before answering and then reads once more.
#[test]
fn dtls13_key_update_both_ways_with_wolfssl() {
    let Some(dir) = wolfssl() else { return };
    let pki = TestPki::generate();
    let id = &pki.server_ecdsa;
    let ca = path(&pki.ca_path());
    let (cert, key) = (path(&id.chain_path), path(&id.key_path));

    let port = peer::free_udp_port();
    let accept = format!("127.0.0.1:{port}");
    let args = [
        "s_server", "-accept", &accept, "-dtls1_3", "-cert", &cert, "-key", &key, "-naccept", "1",
    ];
    let mut server = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let mut client_args = strings(&["-u", "-v", "4", "-x", "-I", "-h", "127.0.0.1", "-p"]);
    client_args.extend([port.to_string(), "-A".into(), ca.clone()]);
    let mut client = wolfssl_program(dir, "client", &client_args);
    client.wait_with_timeout(TIMEOUT).unwrap();
    // Its message after the update came through, and our echo of it went back.
    assert!(
        client.stdout().contains("hello wolfssl!"),
        "{}",
        client.stdout()
    );
    server
        .wait_for_output("hello wolfssl!hello wolfssl!", TIMEOUT)
        .unwrap();
    server.kill();

    let port = peer::free_udp_port();
    let mut server_args = strings(&["-u", "-v", "4", "-d", "-U", "-p"]);
    server_args.extend([port.to_string(), "-c".into(), cert, "-k".into(), key]);
    let mut server = wolfssl_program(dir, "server", &server_args);
    server.wait_for_udp_port(port, TIMEOUT).unwrap();
    let connect = format!("127.0.0.1:{port}");
    let args = [
        "s_client",
        "-connect",
        &connect,
        "-dtls1_3",
        "-CAfile",
        &ca,
        "-verify_return_error",
    ];
    let mut client = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
    client
        .wait_for_output("Verify return code: 0 (ok)", TIMEOUT)
        .unwrap();
    client.write_stdin(b"K\n").unwrap();
    client.wait_for_output("KEYUPDATE", TIMEOUT).unwrap();
    client.write_stdin(b"after our update\n").unwrap();
    client
        .wait_for_output("I hear you fa shizzle!", TIMEOUT)
        .unwrap();
    client.write_stdin(b"after both updates\n").unwrap();
    server.wait_with_timeout(TIMEOUT).unwrap();
    let said = server.stdout();
    assert!(said.contains("Client message: after our update"), "{said}");
    assert!(
        said.contains("Client message: after both updates"),
        "{said}"
    );
    client.kill();
}

const SRTP_PROFILE: &str = "SRTP_AES128_CM_SHA1_80";

/// The SRTP keying material our end exports: its hex after "Keying material: ".
fn our_srtp_material(process: &mut PeerProcess) -> String {
    process
        .wait_for_output("Keying material: ", TIMEOUT)
        .unwrap();
    let out = process.stdout();
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material: "))
        .unwrap();
    line.to_string()
}

/// wolfSSL's: its hex after "Exported key material: ".
fn wolfssl_srtp_material(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split("Exported key material: ").nth(1))
        .unwrap_or_else(|| panic!("no keying material in {out}"))
        .trim()
        .to_string()
}

/// DTLS-SRTP (RFC 5764): the profile is agreed and both ends export the same keying
/// material, in DTLS 1.2 and 1.3, both ways.
#[test]
fn srtp_keying_material_agrees_with_wolfssl() {
    let Some(dir) = wolfssl() else { return };
    let pki = TestPki::generate();
    let id = &pki.server_ecdsa;
    let (cert, key, ca) = (
        path(&id.chain_path),
        path(&id.key_path),
        path(&pki.ca_path()),
    );
    let export = [
        "-use_srtp",
        SRTP_PROFILE,
        "-keymatexport",
        "EXTRACTOR-dtls_srtp",
    ];
    for version in [DTLS12, DTLS13] {
        let port = peer::free_udp_port();
        let accept = format!("127.0.0.1:{port}");
        let mut args = vec![
            "s_server",
            version.flag,
            "-accept",
            &accept,
            "-cert",
            &cert,
            "-key",
            &key,
            "-naccept",
            "1",
            "-keymatexportlen",
            "60",
        ];
        args.extend(export);
        let mut server = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
        server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
        let mut client_args = strings(&["-u", "-v", version.wolfssl, "-x", "--srtp"]);
        client_args.push(SRTP_PROFILE.into());
        client_args.extend(strings(&["-h", "127.0.0.1", "-p"]));
        client_args.extend([port.to_string(), "-A".into(), ca.clone()]);
        let mut client = wolfssl_program(dir, "client", &client_args);
        client.wait_with_timeout(TIMEOUT).unwrap();
        let theirs = wolfssl_srtp_material(&client.stdout());
        assert_eq!(our_srtp_material(&mut server), theirs, "{}", version.name);
        server.kill();

        let port = peer::free_udp_port();
        let mut server_args = strings(&["-u", "-v", version.wolfssl, "-d", "--srtp"]);
        server_args.push(SRTP_PROFILE.into());
        server_args.extend(["-p".into(), port.to_string(), "-c".into(), cert.clone()]);
        server_args.extend(["-k".into(), key.clone()]);
        let mut server = wolfssl_program(dir, "server", &server_args);
        server.wait_for_udp_port(port, TIMEOUT).unwrap();
        let connect = format!("127.0.0.1:{port}");
        let mut args = vec![
            "s_client",
            "-connect",
            &connect,
            version.flag,
            "-CAfile",
            &ca,
            "-keymatexportlen",
            "60",
        ];
        args.extend(export);
        let mut client = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
        let ours = our_srtp_material(&mut client);
        client.write_stdin(b"srtp\n").unwrap();
        server.wait_with_timeout(TIMEOUT).unwrap();
        assert_eq!(
            ours,
            wolfssl_srtp_material(&server.stdout()),
            "{}",
            version.name
        );
        client.kill();
    }
}

/// DTLS 1.3 resumption with tickets both ways: wolfSSL's client resumes (`-r`) with the
/// ticket our server issued, and our client resumes with wolfSSL's, through the library
/// (`set_session`) over a UDP socket, the way an application does.
#[test]
fn dtls13_resumption_both_ways_with_wolfssl() {
    use ferrossl::constants::{DTLS1_3_VERSION, VERIFY_PEER};
    use ferrossl::{Connection, Context, Method};
    let Some(dir) = wolfssl() else { return };
    let pki = TestPki::generate();
    let id = &pki.server_ecdsa;
    let (cert, key, ca) = (
        path(&id.chain_path),
        path(&id.key_path),
        path(&pki.ca_path()),
    );

    let port = peer::free_udp_port();
    let accept = format!("127.0.0.1:{port}");
    let args = [
        "s_server", "-dtls1_3", "-accept", &accept, "-cert", &cert, "-key", &key, "-naccept", "2",
    ];
    let mut server = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let mut client_args = strings(&["-u", "-v", "4", "-x", "-r", "-h", "127.0.0.1", "-p"]);
    client_args.extend([port.to_string(), "-A".into(), ca.clone()]);
    let mut client = wolfssl_program(dir, "client", &client_args);
    client.wait_with_timeout(TIMEOUT).unwrap();
    let out = client.stdout();
    assert!(out.contains("SSL reused session"), "{out}");
    server.kill();

    let port = peer::free_udp_port();
    let mut server_args = strings(&["-u", "-v", "4", "-d", "-C", "2", "-p"]);
    server_args.extend([port.to_string(), "-c".into(), cert, "-k".into(), key]);
    let mut server = wolfssl_program(dir, "server", &server_args);
    server.wait_for_udp_port(port, TIMEOUT).unwrap();
    let ctx = Context::new(Method::Dtls);
    ctx.set_min_proto_version(DTLS1_3_VERSION).unwrap();
    ctx.set_max_proto_version(DTLS1_3_VERSION).unwrap();
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER, None);
    let mut session = None;
    for round in 0..2 {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(("127.0.0.1", port)).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut conn = Connection::with_udp_socket(&ctx, socket).unwrap();
        conn.set_connect_state().unwrap();
        if let Some(s) = &session {
            conn.set_session(s).unwrap();
        }
        conn.do_handshake().unwrap();
        conn.sendall(b"ticket test").unwrap();
        let mut buf = [0u8; 256];
        let n = conn.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"I hear you"), "round {round}");
        // The ticket came after the handshake, with the server's answer at the latest.
        session = conn.get_session();
        assert_eq!(conn.session_reused(), round == 1, "round {round}");
    }
    server.wait_with_timeout(TIMEOUT).unwrap();
    assert!(
        server.stdout().contains("SSL reused session"),
        "{}",
        server.stdout()
    );
}

/// wolfSSL's server taking only the hybrid group answers our classic share with a
/// HelloRetryRequest (with its cookie); our second ClientHello, two datagrams with the
/// hybrid share, carries the cookie in its first fragment, where a stateless server looks.
#[test]
fn ferrossl_dtls13_client_gets_the_hybrid_through_wolfssl_retry() {
    let Some(dir) = wolfssl() else { return };
    let pki = TestPki::generate();
    let id = &pki.server_ecdsa;
    let port = peer::free_udp_port();
    let mut server_args = strings(&["-u", "-v", "4", "-d", "--pqc", "X25519MLKEM768", "-p"]);
    server_args.extend([port.to_string(), "-c".into(), path(&id.chain_path)]);
    server_args.extend(["-k".into(), path(&id.key_path)]);
    let mut server = wolfssl_program(dir, "server", &server_args);
    server.wait_for_udp_port(port, TIMEOUT).unwrap();
    let (connect, ca) = (format!("127.0.0.1:{port}"), path(&pki.ca_path()));
    let args = [
        "s_client",
        "-connect",
        &connect,
        "-dtls1_3",
        "-CAfile",
        &ca,
        "-verify_return_error",
    ];
    let mut client = PeerProcess::spawn(Command::new(FERROSSL).args(args)).unwrap();
    client
        .wait_for_output("Verify return code: 0 (ok)", TIMEOUT)
        .unwrap();
    client.write_stdin(b"post-quantum\n").unwrap();
    client
        .wait_for_output("I hear you fa shizzle!", TIMEOUT)
        .unwrap();
    server.wait_with_timeout(TIMEOUT).unwrap();
    let said = server.stdout();
    assert!(said.contains("SSL curve name is X25519MLKEM768"), "{said}");
    assert!(said.contains("Client message: post-quantum"), "{said}");
    client.kill();
}
