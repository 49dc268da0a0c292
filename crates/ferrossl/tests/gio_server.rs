//! The many-client DTLS server over real UDP sockets on 127.0.0.1: hundreds of concurrent
//! echo clients, floods of ClientHellos from many addresses that create no state, the bound
//! on half-open associations and their expiry, a client restarting on the same address, and
//! the settings accepted connections start with.

mod gio_common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferrossl::gio::{
    AuthenticationMode, DtlsConnection, DtlsServer, GioError, InteractionResult, ServerLimits,
    TlsInteraction, TlsPassword, TlsPasswordFlags,
};
use ferrossl::transport::{Timeout, UdpDatagrams};
use ferrossl::{Connection, Context, Error, Method, X509};
use ferrossl_testkit::pki::TestPki;
use gio_common::{database, identity, refusal};

const TEN_SECONDS: Duration = Duration::from_secs(10);

fn server(pki: &TestPki) -> DtlsServer {
    let (cert, key) = identity(&pki.server_ecdsa);
    DtlsServer::bind("127.0.0.1:0", cert, key).unwrap()
}

fn client_socket(server: SocketAddr, local: &str) -> UdpSocket {
    let socket = UdpSocket::bind(local).unwrap();
    socket.connect(server).unwrap();
    socket
}

fn client(pki: &TestPki, socket: UdpSocket) -> DtlsConnection<UdpDatagrams> {
    let mut c = DtlsConnection::client(UdpDatagrams::connected(socket).unwrap(), Some("localhost"));
    c.set_database(Some(&database(pki))).unwrap();
    c
}

/// Accepts `n` associations, each echoed on a thread of its own until its client closes.
fn echo_all(server: Arc<DtlsServer>, n: usize) -> thread::JoinHandle<Vec<Result<usize, GioError>>> {
    thread::spawn(move || {
        let mut sessions = Vec::new();
        for _ in 0..n {
            let mut conn = match server.accept(Timeout::after(Duration::from_secs(60)), None) {
                Ok(c) => c,
                Err(e) => {
                    sessions.push(thread::spawn(move || Err(e)));
                    continue;
                }
            };
            sessions.push(thread::spawn(move || {
                let mut echoed = 0;
                loop {
                    let d = match conn.receive(Timeout::after(Duration::from_secs(30)), None) {
                        Ok(d) if d.is_empty() => break,
                        Ok(d) => d,
                        // A lost close_notify (UDP): the association fell silent after
                        // its echoes.
                        Err(GioError::TimedOut) if echoed > 0 => return Ok(echoed),
                        Err(e) => return Err(e),
                    };
                    conn.send(&d, None)?;
                    echoed += 1;
                }
                conn.close(None)?;
                Ok(echoed)
            }));
        }
        sessions.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TEN_SECONDS;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_hundred_concurrent_clients_on_one_socket_are_echoed_intact() {
    const CLIENTS: usize = 200;
    const MESSAGES: usize = 5;
    let pki = Arc::new(TestPki::generate());
    let server = Arc::new(server(&pki));
    let addr = server.local_addr().unwrap();
    let echo = echo_all(server.clone(), CLIENTS);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let pki = pki.clone();
            thread::spawn(move || -> Result<(), GioError> {
                let mut c = client(&pki, client_socket(addr, "127.0.0.1:0"));
                c.handshake(None)?;
                for m in 0..MESSAGES {
                    // Distinct, sizeable payloads: a mix-up between clients would show.
                    let payload = format!("client {i} message {m} ").repeat(20);
                    echo_round_trip(&mut c, payload.as_bytes(), i)?;
                }
                c.close(None)
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        c.join()
            .unwrap()
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
    }
    let echoed = echo.join().unwrap();
    assert_eq!(echoed.len(), CLIENTS);
    for r in echoed {
        // At least one echo per message (more when a client had to send again).
        assert!(r.unwrap() >= MESSAGES);
    }
    let stats = server.stats();
    assert_eq!(stats.associations_made, CLIENTS as u64);
    assert!(stats.hello_verify_requests >= CLIENTS as u64, "{stats:?}");
}

/// Sends `payload` until its echo comes back, as a UDP application does: on a loaded
/// machine a datagram can be dropped, and DTLS does not resend application data. Late
/// echoes of earlier messages are skipped; anything else must be this client's own.
fn echo_round_trip(
    c: &mut DtlsConnection<UdpDatagrams>,
    payload: &[u8],
    client: usize,
) -> Result<(), GioError> {
    let own = format!("client {client} message ");
    for _ in 0..20 {
        c.send(payload, None)?;
        loop {
            match c.receive(Timeout::after(Duration::from_secs(3)), None) {
                Ok(back) if back == payload => return Ok(()),
                Ok(back) => assert!(
                    back.starts_with(own.as_bytes()),
                    "client {client} got another's data"
                ),
                Err(GioError::TimedOut) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Err(GioError::TimedOut)
}

/// The first datagram of a DTLS client: a ClientHello without a cookie.
fn first_hello() -> (Connection, Vec<u8>) {
    let mut conn = Connection::new(&Context::new(Method::DtlsClient)).unwrap();
    conn.set_connect_state().unwrap();
    assert!(matches!(conn.do_handshake(), Err(Error::WantRead)));
    let hello = conn.bio_read(65_535).unwrap();
    (conn, hello)
}

fn receive(socket: &UdpSocket) -> Option<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = socket.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Runs the cookie exchange by hand: returns the client and its ClientHello with the cookie
/// the server gave the address of `socket`.
fn hello_with_cookie(socket: &UdpSocket) -> (Connection, Vec<u8>) {
    let (mut conn, hello) = first_hello();
    socket.send(&hello).unwrap();
    let verify_request = receive(socket).expect("a HelloVerifyRequest");
    assert!(verify_request.len() <= hello.len(), "no amplification");
    conn.bio_write(&verify_request).unwrap();
    assert!(matches!(conn.do_handshake(), Err(Error::WantRead)));
    let second = conn.bio_read(65_535).unwrap();
    (conn, second)
}

#[test]
fn a_flood_of_client_hellos_from_many_addresses_creates_no_state() {
    let pki = TestPki::generate();
    let server = server(&pki);
    let addr = server.local_addr().unwrap();
    let (_, hello) = first_hello();
    // Many sources: other ports and other loopback addresses (all of 127.0.0.0/8 is ours).
    let mut sources = Vec::new();
    for i in 0..400u32 {
        let ip = format!("127.0.{}.{}", 1 + i / 200, 2 + i % 200);
        let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
        s.send_to(&hello, addr).unwrap();
        let answer = receive(&s).expect("a HelloVerifyRequest for every source");
        assert!(answer.len() <= hello.len(), "no amplification");
        s.send_to(b"\x16\xfe\xfd not a record at all", addr)
            .unwrap();
        sources.push(s);
    }
    eventually("the junk was dropped", || server.stats().dropped >= 400);
    assert_eq!(server.stats().hello_verify_requests, 400);
    assert_eq!(server.association_count(), 0, "{:?}", server.stats());

    // A valid cookie replayed from another address is no proof either.
    let a = client_socket(addr, "127.0.0.1:0");
    let (_, with_cookie) = hello_with_cookie(&a);
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let before = server.stats();
    b.send_to(&with_cookie, addr).unwrap();
    // DTLS 1.2 challenges it again; DTLS 1.3 drops it (its cookie binds the first hello).
    eventually("the replayed cookie was challenged or dropped", || {
        let now = server.stats();
        now.hello_verify_requests > before.hello_verify_requests || now.dropped > before.dropped
    });
    assert_eq!(server.association_count(), 0);

    // From its own address it is: one association, and a real client still gets through.
    a.send(&with_cookie).unwrap();
    eventually("the cookie's owner got an association", || {
        server.association_count() == 1
    });
    let echo = echo_all(Arc::new(server), 2);
    let mut c = client(&pki, client_socket(addr, "127.0.0.1:0"));
    c.send(b"still serving", None).unwrap();
    assert_eq!(
        c.receive(Timeout::after(TEN_SECONDS), None).unwrap(),
        b"still serving"
    );
    c.close(None).unwrap();
    drop(a);
    drop(sources);
    // The hand-made association never finishes; its echo thread ends when its handshake
    // fails or the server expires it, so only the real client's result is checked.
    let _ = echo;
}

#[test]
fn half_open_associations_are_bounded_and_expire() {
    let pki = TestPki::generate();
    let server = server(&pki);
    server.set_limits(ServerLimits {
        max_half_open: 2,
        handshake_timeout: Duration::from_secs(3),
        ..ServerLimits::default()
    });
    let addr = server.local_addr().unwrap();
    let sockets: Vec<_> = (0..3).map(|_| client_socket(addr, "127.0.0.1:0")).collect();
    for s in &sockets {
        let (_, hello) = hello_with_cookie(s);
        s.send(&hello).unwrap();
    }
    eventually("two associations and one refusal", || {
        server.association_count() == 2 && server.stats().refused == 1
    });
    assert_eq!(server.half_open_count(), 2);
    // Nobody finishes: both expire.
    eventually("the unfinished associations expired", || {
        server.association_count() == 0
    });
    assert_eq!(server.stats().expired, 2);
    // Those that were never accepted are not handed out afterwards.
    assert!(matches!(
        server.accept(Timeout::NonBlocking, None),
        Err(GioError::WouldBlock)
    ));
}

#[test]
fn a_client_restarting_on_the_same_address_replaces_its_association() {
    let pki = Arc::new(TestPki::generate());
    let server = Arc::new(server(&pki));
    let addr = server.local_addr().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(addr).unwrap();
    let local = socket.local_addr().unwrap();

    let srv = server.clone();
    let accepting = thread::spawn(move || -> Result<_, GioError> {
        let mut old = srv.accept(Timeout::after(TEN_SECONDS), None)?;
        let d = old.receive(Timeout::after(TEN_SECONDS), None)?;
        Ok((old, d))
    });
    let mut first = client(&pki, socket.try_clone().unwrap());
    first.send(b"before", None).unwrap();
    let (mut old, d) = accepting.join().unwrap().unwrap();
    assert_eq!(d, b"before");
    assert_eq!(server.association_count(), 1);

    // The client forgets everything and starts again from the same port (§4.2.8).
    drop(first);
    let mut second = client(&pki, socket);
    let srv = server.clone();
    let accepting = thread::spawn(move || -> Result<Vec<u8>, GioError> {
        let mut new = srv.accept(Timeout::after(TEN_SECONDS), None)?;
        let d = new.receive(Timeout::after(TEN_SECONDS), None)?;
        new.send(&d, None)?;
        Ok(d)
    });
    second.send(b"after", None).unwrap();
    assert_eq!(
        second.receive(Timeout::after(TEN_SECONDS), None).unwrap(),
        b"after"
    );
    assert_eq!(accepting.join().unwrap().unwrap(), b"after");
    assert_eq!(server.association_count(), 1, "replaced, not added");
    assert_eq!(old.base().peer_addr(), local);
    // The old association's connection sees its end: no close_notify came.
    assert!(matches!(
        old.receive(Timeout::after(TEN_SECONDS), None),
        Err(GioError::Eof)
    ));
}

#[test]
fn accepted_connections_start_with_the_servers_settings() {
    let pki = Arc::new(TestPki::generate());
    let server = Arc::new(server(&pki));
    server
        .set_authentication_mode(AuthenticationMode::Required)
        .unwrap();
    server.set_database(Some(&database(&pki))).unwrap();
    server.set_advertised_protocols(Some(&["echo/1"])).unwrap();
    let addr = server.local_addr().unwrap();
    let srv = server.clone();
    let accepting = thread::spawn(move || {
        (0..2)
            .map(|_| {
                let mut conn = srv.accept(Timeout::after(TEN_SECONDS), None)?;
                let result = conn.handshake(None);
                result.map(|()| (conn.get_negotiated_protocol(), conn.get_peer_certificate()))
            })
            .collect::<Vec<_>>()
    });

    // Without a certificate: CERTIFICATE_REQUIRED, and the CAs the server named.
    let mut anonymous = client(&pki, client_socket(addr, "127.0.0.1:0"));
    let err = refusal(&mut anonymous);
    assert!(matches!(err, GioError::CertificateRequired), "{err:?}");
    let cas = anonymous.get_accepted_cas();
    assert_eq!(cas.len(), 1);
    assert_eq!(
        cas[0].to_der(),
        X509::from_pem(pki.ca.cert_pem.as_bytes())
            .unwrap()
            .subject()
            .to_der()
    );

    let mut known = client(&pki, client_socket(addr, "127.0.0.1:0"));
    let (cert, key) = identity(&pki.client_ecdsa);
    known.set_certificate(cert, key);
    known.set_advertised_protocols(Some(&["echo/1"])).unwrap();
    known.handshake(None).unwrap();
    assert_eq!(known.get_negotiated_protocol().as_deref(), Some("echo/1"));

    let results = accepting.join().unwrap();
    assert!(results[0].is_err(), "the anonymous client was refused");
    let (alpn, peer) = results[1].as_ref().unwrap();
    assert_eq!(alpn.as_deref(), Some("echo/1"));
    assert_eq!(
        peer.as_ref().unwrap().subject().get("CN"),
        X509::from_pem(pki.client_ecdsa.cert_pem.as_bytes())
            .unwrap()
            .subject()
            .get("CN")
    );
}

/// Answers password questions from a list, and remembers the flags it was asked with.
struct Passwords {
    answers: Vec<&'static str>,
    asked: std::sync::Mutex<Vec<TlsPasswordFlags>>,
}

impl TlsInteraction for Passwords {
    fn ask_password(&self, password: &mut TlsPassword) -> InteractionResult {
        let mut asked = self.asked.lock().unwrap();
        asked.push(password.flags());
        match self.answers.get(asked.len() - 1) {
            Some(answer) => {
                password.set_value(answer.as_bytes());
                InteractionResult::Handled
            }
            None => InteractionResult::Unhandled,
        }
    }
}

#[test]
fn an_encrypted_key_asks_the_interaction_until_the_password_is_right() {
    let pki = TestPki::generate();
    let Some(path) = pki.encrypted_pkcs8_pem(&pki.server_ecdsa, "s3cret") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is needed to encrypt the key"
        );
        eprintln!("skipped: openssl is not installed to encrypt the test key");
        return;
    };
    let key_pem = std::fs::read(path).unwrap();
    let cert_pem = pki.server_ecdsa.cert_pem.as_bytes();
    let (_, any_key) = identity(&pki.server_ecdsa);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut conn = DtlsConnection::server(
        UdpDatagrams::with_peer(socket, "127.0.0.1:9".parse().unwrap()),
        X509::from_pem(cert_pem).unwrap(),
        any_key,
    );

    // No interaction: a clear error.
    let err = conn.set_certificate_pem(cert_pem, &key_pem).unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");

    // A wrong password first, then the right one: asked twice, the second time with RETRY.
    let interaction = Arc::new(Passwords {
        answers: vec!["wrong", "s3cret"],
        asked: Default::default(),
    });
    conn.set_interaction(Some(interaction.clone()));
    conn.set_certificate_pem(cert_pem, &key_pem).unwrap();
    let asked = interaction.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    assert!(!asked[0].contains(TlsPasswordFlags::RETRY));
    assert!(asked[1].contains(TlsPasswordFlags::RETRY));
    assert!(conn.get_interaction().is_some());

    // Only wrong answers: three tries, the last marked FINAL_TRY, then an error.
    let stubborn = Arc::new(Passwords {
        answers: vec!["a", "b", "c", "d"],
        asked: Default::default(),
    });
    conn.set_interaction(Some(stubborn.clone()));
    assert!(conn.set_certificate_pem(cert_pem, &key_pem).is_err());
    let asked = stubborn.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3);
    assert!(asked[2].contains(TlsPasswordFlags::FINAL_TRY));
}

#[test]
fn ipv6_clients_on_the_loopback() {
    let pki = Arc::new(TestPki::generate());
    let (cert, key) = identity(&pki.server_rsa);
    let server = match DtlsServer::bind("[::1]:0", cert, key) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "no ::1 under CI: {e}");
            eprintln!("skipped: no IPv6 loopback here: {e}");
            return;
        }
    };
    let addr = server.local_addr().unwrap();
    let echo = echo_all(server.clone(), 3);
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let pki = pki.clone();
            thread::spawn(move || -> Result<(), GioError> {
                let mut c = client(&pki, client_socket(addr, "[::1]:0"));
                echo_round_trip(
                    &mut c,
                    format!("client {i} message 0 over ::1").as_bytes(),
                    i,
                )?;
                c.close(None)
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap().unwrap();
    }
    assert!(echo.join().unwrap().into_iter().all(|r| r.is_ok()));
}

/// A client transport whose socket the test replaces, as a NAT rebinding changes the
/// client's address and port under a running association.
#[derive(Clone)]
struct Rebindable(Arc<std::sync::Mutex<Arc<UdpDatagrams>>>);

impl Rebindable {
    fn current(&self) -> Arc<UdpDatagrams> {
        self.0.lock().unwrap().clone()
    }
}

impl ferrossl::transport::DatagramBased for Rebindable {
    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        cancellable: Option<&ferrossl::transport::Cancellable>,
    ) -> std::io::Result<usize> {
        self.current().send_datagram(datagram, timeout, cancellable)
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&ferrossl::transport::Cancellable>,
    ) -> std::io::Result<usize> {
        self.current().receive_datagram(buf, timeout, cancellable)
    }
}

/// NAT rebinding (RFC 9146 §6, RFC 9147 §9): with connection IDs the server routes the
/// moved client's datagrams by CID and answers at its new address; without, the new
/// address is nobody the server knows.
#[test]
fn a_client_that_moves_keeps_its_association_only_with_connection_ids() {
    use ferrossl::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
    let pki = TestPki::generate();
    for (version, with_cid) in [
        (DTLS1_2_VERSION, true),
        (DTLS1_3_VERSION, true),
        (DTLS1_3_VERSION, false),
    ] {
        let server = server(&pki);
        server.set_protocol_versions(version, version).unwrap();
        let cid = with_cid.then_some(4);
        server.set_connection_id_length(cid).unwrap();
        let address = server.local_addr().unwrap();
        let server = Arc::new(server);
        let echo = echo_all(server.clone(), 1);

        let socket =
            |addr| Arc::new(UdpDatagrams::connected(client_socket(addr, "127.0.0.1:0")).unwrap());
        let transport = Rebindable(Arc::new(std::sync::Mutex::new(socket(address))));
        let mut c = DtlsConnection::client(transport.clone(), Some("localhost"));
        c.set_database(Some(&database(&pki))).unwrap();
        c.set_protocol_versions(version, version);
        // Asks for no CID of its own while using the server's.
        c.set_connection_id_length(with_cid.then_some(0));
        let round_trip = |c: &mut DtlsConnection<Rebindable>, text: &[u8]| {
            c.send(text, None).unwrap();
            c.receive(Timeout::after(Duration::from_secs(2)), None)
        };
        assert_eq!(round_trip(&mut c, b"before").unwrap(), b"before");
        let (ours, theirs) = c.connection_ids().unwrap();
        assert_eq!(
            (ours.len(), theirs.len()),
            (0, if with_cid { 4 } else { 0 })
        );

        // The NAT gives the client a new port.
        *transport.0.lock().unwrap() = socket(address);
        let after = round_trip(&mut c, b"after the move");
        if with_cid {
            assert_eq!(after.unwrap(), b"after the move", "version {version:#x}");
            assert_eq!(round_trip(&mut c, b"and on").unwrap(), b"and on");
            c.close(None).unwrap();
            assert_eq!(echo.join().unwrap().len(), 1);
        } else {
            assert!(matches!(after, Err(GioError::TimedOut)), "{after:?}");
        }
    }
}

/// The same on one socket: a server connection over an unconnected socket that talks to one
/// client takes a datagram from another address only for its connection ID, and follows
/// the client there once it authenticates as the newest.
#[test]
fn one_socket_follows_a_client_that_moves_with_a_connection_id() {
    use ferrossl::constants::DTLS1_3_VERSION;
    let pki = TestPki::generate();
    let server_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = server_socket.local_addr().unwrap();
    let first = client_socket(address, "127.0.0.1:0");
    let client_addr = first.local_addr().unwrap();
    let transport = Rebindable(Arc::new(std::sync::Mutex::new(Arc::new(
        UdpDatagrams::connected(first).unwrap(),
    ))));
    let (cert, key) = identity(&pki.server_ecdsa);
    let mut s = DtlsConnection::server(
        UdpDatagrams::with_peer(server_socket, client_addr),
        cert,
        key,
    );
    s.set_protocol_versions(DTLS1_3_VERSION, DTLS1_3_VERSION);
    s.set_connection_id_length(Some(6));
    let echo = thread::spawn(move || {
        for _ in 0..2 {
            let d = s.receive(Timeout::after(TEN_SECONDS), None).unwrap();
            s.send(&d, None).unwrap();
        }
        s.base().peer_address()
    });
    let mut c = DtlsConnection::client(transport.clone(), Some("localhost"));
    c.set_database(Some(&database(&pki))).unwrap();
    c.set_protocol_versions(DTLS1_3_VERSION, DTLS1_3_VERSION);
    c.set_connection_id_length(Some(0));
    c.send(b"here", None).unwrap();
    assert_eq!(
        c.receive(Timeout::after(TEN_SECONDS), None).unwrap(),
        b"here"
    );
    let moved = client_socket(address, "127.0.0.1:0");
    let new_addr = moved.local_addr().unwrap();
    *transport.0.lock().unwrap() = Arc::new(UdpDatagrams::connected(moved).unwrap());
    c.send(b"there", None).unwrap();
    assert_eq!(
        c.receive(Timeout::after(TEN_SECONDS), None).unwrap(),
        b"there"
    );
    use ferrossl::transport::DatagramBased;
    assert_eq!(echo.join().unwrap(), Some(new_addr));
}
