//! Shared pieces of the interop tests: ferrossl's client and server ends over real TCP sockets,
//! with every wait bounded.

use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error, Method};
use ferrossl_testkit::pki::{Identity, TestPki};

/// How long any single wait in these tests may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The versions every interop case runs with: (ferrossl bound, OpenSSL/GnuTLS flag name).
pub const VERSIONS: [(i32, &str); 2] = [(TLS1_2_VERSION, "tls1_2"), (TLS1_3_VERSION, "tls1_3")];

/// Every interop case as `(version, flag, server, client_cert)`, in a fixed order: each of
/// [`VERSIONS`], with an RSA then an ECDSA server, without then with a client certificate.
pub fn matrix(pki: &TestPki) -> Vec<(i32, &'static str, &Identity, bool)> {
    let mut cases = Vec::new();
    for (version, flag) in VERSIONS {
        for server in [&pki.server_rsa, &pki.server_ecdsa] {
            for client_cert in [false, true] {
                cases.push((version, flag, server, client_cert));
            }
        }
    }
    cases
}

/// A ferrossl server's verify mode for a case: it requires a client certificate exactly when the
/// client sends one.
pub fn server_verify_mode(client_cert: bool) -> i32 {
    if client_cert {
        VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT
    } else {
        VERIFY_NONE
    }
}

/// A context with `id` as identity (if any), trusting the test root, verifying the peer when
/// `verify` is set, and limited to `version`.
pub fn context(pki: &TestPki, id: Option<&Identity>, verify: i32, version: i32) -> Context {
    let ctx = Context::new(Method::Tls);
    if let Some(id) = id {
        ctx.use_certificate_chain_file(&id.chain_path).unwrap();
        ctx.use_privatekey_file(&id.key_path, FILETYPE_PEM).unwrap();
    }
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(verify, None);
    ctx.set_min_proto_version(version).unwrap();
    ctx.set_max_proto_version(version).unwrap();
    ctx
}

/// Connects to 127.0.0.1:`port` (retrying until the peer listens) and completes the handshake.
pub fn connect(ctx: &Context, port: u16, sni: Option<&str>) -> Result<Connection, Error> {
    let deadline = Instant::now() + TIMEOUT;
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => panic!("cannot connect to port {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut conn = Connection::with_stream(ctx, stream)?;
    conn.set_connect_state()?;
    if let Some(name) = sni {
        conn.set_tlsext_host_name(name)?;
    }
    conn.do_handshake()?;
    Ok(conn)
}

/// Reads until `needle` has arrived; returns everything read.
pub fn read_until(conn: &mut Connection, needle: &str) -> Result<String, Error> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + TIMEOUT;
    while !String::from_utf8_lossy(&got).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?}"
        );
        let n = conn.recv(&mut buf)?;
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// Sends close_notify and waits for the peer's: a clean, bidirectional close.
pub fn close_both_ways(conn: &mut Connection) -> Result<(), Error> {
    if conn.shutdown()? {
        return Ok(());
    }
    match conn.shutdown() {
        Ok(true) => Ok(()),
        Ok(false) => panic!("second shutdown must wait for the peer"),
        Err(e) => Err(e),
    }
}

/// A ferrossl server on 127.0.0.1 that accepts `count` clients one after another, runs
/// `session` on each, and returns what the sessions returned. The port is known before the
/// clients start.
pub struct TestServer<T> {
    /// The listening port.
    pub port: u16,
    handle: JoinHandle<Result<Vec<T>, Error>>,
}

impl<T: Send + 'static> TestServer<T> {
    /// Starts listening and serves `count` connections in a thread.
    pub fn start(
        ctx: Context,
        count: usize,
        session: impl Fn(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let mut results = Vec::with_capacity(count);
            for _ in 0..count {
                let stream = accept_within(&listener, TIMEOUT);
                let mut conn = Connection::with_stream(&ctx, stream)?;
                conn.set_accept_state()?;
                conn.do_handshake()?;
                results.push(session(&mut conn)?);
            }
            Ok(results)
        });
        Self { port, handle }
    }

    /// Waits for the sessions' results.
    pub fn join(self) -> Result<Vec<T>, Error> {
        self.handle.join().expect("server thread panicked")
    }

    /// Waits for the only session's result.
    pub fn join_one(self) -> Result<T, Error> {
        Ok(self.join()?.pop().expect("one session"))
    }
}

fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    let deadline = Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("no client connected: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream
}

pub use ferrossl_testkit::peer::in_loopback_namespace;
