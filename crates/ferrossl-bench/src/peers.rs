//! The three TLS implementations under test, each driven in memory with one thread: ferrossl's
//! `Connection` over memory BIOs, rustls used directly, and OpenSSL through the `openssl` crate.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use ferrossl::constants::*;
use ferrossl_testkit::pki::Identity;

/// What a run needs: the server identity, the CA, a TLS version and a TLS 1.3 suite.
pub struct Setup<'a> {
    pub server: &'a Identity,
    pub ca_der: &'a [u8],
    pub ca_path: &'a std::path::Path,
    pub tls13: bool,
    /// OpenSSL's name of the suite to use (TLS 1.3 or 1.2 name).
    pub suite: &'a str,
    /// Whether clients keep sessions to resume (rustls's session store is off otherwise).
    pub resume: bool,
}

/// The most flights a handshake between two in-memory ends may take: a pair that needs more
/// is stuck, and the benchmark stops with an error rather than spinning.
pub const HANDSHAKE_ROUNDS: usize = 32;

/// Panics unless the handshake made progress within [`HANDSHAKE_ROUNDS`].
pub fn check_round(round: usize, who: &str) {
    assert!(round < HANDSHAKE_ROUNDS, "{who}: handshake stuck");
}

/// One implementation: make a connected pair, then move bytes.
pub trait Peer {
    type Pair;
    fn pair(&self) -> Self::Pair;
    /// Sends `data` client → server in `chunk`-sized writes and reads it all back.
    fn transfer(&self, pair: &mut Self::Pair, data: &[u8], chunk: usize);
}

/// An implementation whose client can resume in this harness.
pub trait Resume: Peer {
    /// A pair whose client resumes the session of the previous call's (the first call primes
    /// it with a full handshake). Panics if the handshake was not a resumption, so a row
    /// never measures the wrong thing.
    fn resumed_pair(&self) -> Self::Pair;
}

// --- ferrossl ---

pub struct Ferrossl {
    client: ferrossl::Context,
    server: ferrossl::Context,
    /// The session the next resumed pair offers.
    session: RefCell<Option<ferrossl::session::Session>>,
    /// Ciphertext on its way between the ends: one buffer reused, as the rustls column
    /// reuses its own.
    wire: RefCell<Vec<u8>>,
}

impl Ferrossl {
    pub fn new(s: &Setup<'_>) -> Self {
        let server = ferrossl::Context::new(ferrossl::Method::Tls);
        server
            .use_certificate_chain_file(&s.server.chain_path)
            .unwrap();
        server
            .use_privatekey_file(&s.server.key_path, FILETYPE_PEM)
            .unwrap();
        let client = ferrossl::Context::new(ferrossl::Method::Tls);
        client.load_verify_locations(Some(s.ca_path), None).unwrap();
        client.set_verify(VERIFY_PEER, None);
        let v = if s.tls13 {
            TLS1_3_VERSION
        } else {
            TLS1_2_VERSION
        };
        client.set_min_proto_version(v).unwrap();
        client.set_max_proto_version(v).unwrap();
        if s.tls13 {
            client.set_ciphersuites(s.suite).unwrap();
        } else {
            client.set_cipher_list(s.suite).unwrap();
        }
        Self {
            client,
            server,
            session: RefCell::new(None),
            wire: RefCell::new(vec![0; 1 << 16]),
        }
    }

    fn pump(&self, from: &mut ferrossl::Connection, to: &mut ferrossl::Connection) {
        pump(from, to, &mut self.wire.borrow_mut());
    }

    fn handshake(
        &self,
        session: Option<&ferrossl::session::Session>,
    ) -> (ferrossl::Connection, ferrossl::Connection) {
        let mut c = ferrossl::Connection::new(&self.client).unwrap();
        c.set_connect_state().unwrap();
        if let Some(session) = session {
            c.set_session(session).unwrap();
        }
        let mut s = ferrossl::Connection::new(&self.server).unwrap();
        s.set_accept_state().unwrap();
        for round in 0.. {
            if c.is_handshake_done() && s.is_handshake_done() {
                break;
            }
            check_round(round, "ferrossl");
            let _ = c.do_handshake();
            self.pump(&mut c, &mut s);
            let _ = s.do_handshake();
            self.pump(&mut s, &mut c);
        }
        (c, s)
    }
}

/// Moves all of `from`'s ciphertext to `to` through `wire`; a short read means there is no
/// more (as with `BIO_read`).
fn pump(from: &mut ferrossl::Connection, to: &mut ferrossl::Connection, wire: &mut [u8]) {
    while let Ok(n) = from.bio_read_into(wire) {
        to.bio_write(&wire[..n]).unwrap();
        if n < wire.len() {
            break;
        }
    }
}

impl Peer for Ferrossl {
    type Pair = (ferrossl::Connection, ferrossl::Connection);

    fn pair(&self) -> Self::Pair {
        self.handshake(None)
    }

    fn transfer(&self, (c, s): &mut Self::Pair, data: &[u8], chunk: usize) {
        let wire = &mut self.wire.borrow_mut()[..];
        let mut buf = vec![0u8; 1 << 16];
        // Move and read as the data goes, as the other two do.
        for piece in data.chunks(chunk) {
            c.send(piece).unwrap();
            pump(c, s, wire);
            while let Ok(n) = s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

impl Resume for Ferrossl {
    fn resumed_pair(&self) -> Self::Pair {
        let last = self.session.borrow_mut().take();
        let (mut c, mut s) = self.handshake(last.as_ref());
        assert!(
            last.is_none() || c.session_reused(),
            "ferrossl did not resume"
        );
        // A TLS 1.3 server's tickets follow its handshake: the client reads them.
        self.pump(&mut s, &mut c);
        let _ = c.recv(&mut [0u8; 1]);
        *self.session.borrow_mut() = c.get_session();
        (c, s)
    }
}

// --- rustls, directly ---

pub struct Rustls {
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    /// Whether a resumed pair has primed the client's session store.
    primed: Cell<bool>,
}

impl Rustls {
    pub fn new(s: &Setup<'_>) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.cipher_suites.retain(|c| {
            ferrossl::ciphers::info(c.suite()).is_some_and(|i| i.openssl_name == s.suite)
        });
        let provider = Arc::new(provider);
        let chain: Vec<CertificateDer<'static>> = vec![s.server.cert_der.clone().into()];
        let key = PrivateKeyDer::try_from(s.server.key_der.clone()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(s.ca_der.to_vec().into()).unwrap();
        let versions: &[&rustls::SupportedProtocolVersion] = if s.tls13 {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS12]
        };
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Full handshakes unless the setup asks for resumption; the server then keeps a
        // session cache and issues tickets, as ferrossl's and OpenSSL's do by default.
        if !s.resume {
            client.resumption = rustls::client::Resumption::disabled();
        }
        let mut server = server;
        server.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().unwrap();
        Self {
            client: Arc::new(client),
            server: Arc::new(server),
            primed: Cell::new(false),
        }
    }
}

fn move_tls(from: &mut rustls::Connection, to: &mut rustls::Connection, buf: &mut Vec<u8>) {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).unwrap();
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets().unwrap();
    }
}

impl Peer for Rustls {
    type Pair = (rustls::Connection, rustls::Connection, Vec<u8>);

    fn pair(&self) -> Self::Pair {
        let mut c: rustls::Connection =
            rustls::ClientConnection::new(self.client.clone(), "localhost".try_into().unwrap())
                .unwrap()
                .into();
        let mut s: rustls::Connection = rustls::ServerConnection::new(self.server.clone())
            .unwrap()
            .into();
        let mut buf = Vec::new();
        for round in 0.. {
            if !(c.is_handshaking() || s.is_handshaking()) {
                break;
            }
            check_round(round, "rustls");
            move_tls(&mut c, &mut s, &mut buf);
            move_tls(&mut s, &mut c, &mut buf);
        }
        (c, s, buf)
    }

    fn transfer(&self, (c, s, buf): &mut Self::Pair, data: &[u8], chunk: usize) {
        let mut out = vec![0u8; 1 << 16];
        // The engine bounds what it buffers: move and read as the data goes.
        for piece in data.chunks(chunk) {
            c.writer().write_all(piece).unwrap();
            move_tls(c, s, buf);
            while let Ok(n) = s.reader().read(&mut out) {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

impl Resume for Rustls {
    fn resumed_pair(&self) -> Self::Pair {
        // The client configuration's session store keeps what the last handshake received.
        let pair = self.pair();
        let primed = self.primed.replace(true);
        assert!(
            !primed || pair.0.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            "rustls did not resume"
        );
        pair
    }
}

// --- OpenSSL, through the openssl crate, over an in-memory duplex ---

#[derive(Clone, Default, Debug)]
pub struct Pipe {
    inbox: Rc<RefCell<VecDeque<u8>>>,
    outbox: Rc<RefCell<VecDeque<u8>>>,
}

impl Pipe {
    fn pair() -> (Pipe, Pipe) {
        let (a, b) = (
            Rc::new(RefCell::new(VecDeque::new())),
            Rc::new(RefCell::new(VecDeque::new())),
        );
        (
            Pipe {
                inbox: a.clone(),
                outbox: b.clone(),
            },
            Pipe {
                inbox: b,
                outbox: a,
            },
        )
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.inbox.borrow_mut();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = q.read(buf)?;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.outbox.borrow_mut().extend(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct OpenSsl {
    client: openssl::ssl::SslContext,
    server: openssl::ssl::SslContext,
    /// The session the next resumed pair offers: only ever one a client of `client` received.
    session: RefCell<Option<openssl::ssl::SslSession>>,
}

impl OpenSsl {
    pub fn new(s: &Setup<'_>) -> Self {
        use openssl::ssl::{SslContext, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
        let mut server = SslContext::builder(SslMethod::tls()).unwrap();
        server
            .set_certificate_chain_file(&s.server.chain_path)
            .unwrap();
        server
            .set_private_key_file(&s.server.key_path, SslFiletype::PEM)
            .unwrap();
        // The full-handshake rows keep no server state; the resumption rows keep a session
        // cache and issue tickets (OpenSSL's defaults), as the other two servers do.
        if !s.resume {
            server.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        }
        let mut client = SslContext::builder(SslMethod::tls()).unwrap();
        client.set_ca_file(s.ca_path).unwrap();
        client.set_verify(SslVerifyMode::PEER);
        let v = if s.tls13 {
            SslVersion::TLS1_3
        } else {
            SslVersion::TLS1_2
        };
        client.set_min_proto_version(Some(v)).unwrap();
        client.set_max_proto_version(Some(v)).unwrap();
        if s.tls13 {
            client.set_ciphersuites(s.suite).unwrap();
        } else {
            client.set_cipher_list(s.suite).unwrap();
        }
        client.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        Self {
            client: client.build(),
            server: server.build(),
            session: RefCell::new(None),
        }
    }

    /// A client of `self.client`; with `resume`, it offers the kept session if there is one.
    #[allow(unsafe_code)]
    fn client(&self, resume: bool) -> openssl::ssl::Ssl {
        let mut c = openssl::ssl::Ssl::new(&self.client).unwrap();
        c.set_hostname("localhost").unwrap();
        if let Some(session) = self.session.borrow().as_ref().filter(|_| resume) {
            // SAFETY: `SSL_set_session` needs a session of the same `SslContext` as `c`.
            // `self.session` is only ever set, in `resumed_pair`, to the session of a client
            // made here, from `self.client`, which is also `c`'s context.
            unsafe { c.set_session(session) }.unwrap();
        }
        c
    }
}

type OsslStream = openssl::ssl::SslStream<Pipe>;

impl Peer for OpenSsl {
    type Pair = (OsslStream, OsslStream);

    fn pair(&self) -> Self::Pair {
        let (a, b) = Pipe::pair();
        let s = openssl::ssl::Ssl::new(&self.server).unwrap();
        openssl_handshake(self.client(false), s, a, b)
    }

    fn transfer(&self, (c, s): &mut Self::Pair, data: &[u8], chunk: usize) {
        let mut out = vec![0u8; 1 << 16];
        for piece in data.chunks(chunk) {
            c.write_all(piece).unwrap();
            let mut got = 0;
            while got < piece.len() {
                got += s.read(&mut out).unwrap();
            }
        }
    }
}

impl Resume for OpenSsl {
    fn resumed_pair(&self) -> Self::Pair {
        use openssl::ssl::ShutdownState;
        let resuming = self.session.borrow().is_some();
        let (a, b) = Pipe::pair();
        let s = openssl::ssl::Ssl::new(&self.server).unwrap();
        let (mut c, mut s) = openssl_handshake(self.client(true), s, a, b);
        assert!(
            !resuming || c.ssl().session_reused(),
            "OpenSSL did not resume"
        );
        // A TLS 1.3 server's tickets follow its handshake: reading makes the client take
        // them, and its session is then the one of the latest ticket.
        let _ = c.ssl_read(&mut [0u8; 1]);
        // Freeing a connection that was not shut down marks its session not resumable (and
        // drops it from the cache): mark both ends closed, as a close_notify exchange would.
        c.set_shutdown(ShutdownState::SENT | ShutdownState::RECEIVED);
        s.set_shutdown(ShutdownState::SENT | ShutdownState::RECEIVED);
        *self.session.borrow_mut() = c.ssl().session().map(ToOwned::to_owned);
        (c, s)
    }
}

/// Runs an OpenSSL client and server to the end of their handshake over a non-blocking
/// in-memory transport (bytes for TLS, datagrams for DTLS).
pub fn openssl_handshake<S: Read + Write + std::fmt::Debug>(
    c: openssl::ssl::Ssl,
    s: openssl::ssl::Ssl,
    a: S,
    b: S,
) -> (openssl::ssl::SslStream<S>, openssl::ssl::SslStream<S>) {
    use openssl::ssl::{HandshakeError, MidHandshakeSslStream, SslStream};
    fn step<S: Read + Write + std::fmt::Debug>(
        r: Result<SslStream<S>, HandshakeError<S>>,
    ) -> Result<SslStream<S>, MidHandshakeSslStream<S>> {
        match r {
            Err(HandshakeError::WouldBlock(m)) => Err(m),
            other => Ok(other.unwrap()),
        }
    }
    let mut client = step(c.connect(a));
    let mut server = step(s.accept(b));
    for round in 0.. {
        if client.is_ok() && server.is_ok() {
            break;
        }
        check_round(round, "OpenSSL");
        client = client.or_else(|m| step(m.handshake()));
        server = server.or_else(|m| step(m.handshake()));
    }
    (client.ok().unwrap(), server.ok().unwrap())
}
