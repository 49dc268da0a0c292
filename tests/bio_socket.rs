//! The BIO and TLSSocket API family against real peers: a BIO-chain HTTPS client, an
//! accept-BIO server for `openssl s_client` and curl, TLSSocket echo over IPv4 and IPv6 with
//! concurrent clients, timeouts, non-blocking calls, properties in every state, and misuse.

use std::time::{Duration, Instant};

use ferrossl::bio::{Bio, BioMethod, Ssl, AF_INET, AF_INET6, BIO_CLOSE};
use ferrossl::constants::*;
use ferrossl::socket::{options::*, TlsSocket, SHUT_RDWR};
use ferrossl::{Context, Error, Method};
use ferrossl_interop::*;
use ferrossl_testkit::peer::{self, PeerProcess};
use ferrossl_testkit::pki::TestPki;

fn client_chain(pki: &TestPki, port: u16) -> Bio {
    let ctx = context(pki, None, VERIFY_PEER, 0);
    let ssl = Ssl::new(&ctx).unwrap();
    ssl.set_connect_state().unwrap();
    let filter = Bio::new(BioMethod::Ssl);
    filter.set_ssl(&ssl, BIO_CLOSE).unwrap();
    let connect = Bio::new(BioMethod::Connect);
    connect.set_conn_hostname("127.0.0.1").unwrap();
    connect.set_conn_port(&port.to_string()).unwrap();
    filter.push(&connect).unwrap()
}

fn read_all(chain: &Bio) -> String {
    let mut page = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match chain.read(-1) {
            Ok(data) if data.is_empty() => break,
            Ok(data) => page.extend(data),
            Err(Error::SysCall { .. }) => break,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    String::from_utf8_lossy(&page).into_owned()
}

#[test]
fn bio_chain_fetches_a_page_from_openssl_www() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = TestPki::generate();
    let port = peer::free_tcp_port();
    let mut server = PeerProcess::spawn(&mut peer::openssl_s_server(
        port,
        &pki.server_ecdsa,
        &["-www".into(), "-naccept".into(), "1".into()],
    ))
    .unwrap();
    server.wait_for_output("ACCEPT", TIMEOUT).unwrap();
    let chain = client_chain(&pki, port);
    assert_eq!(chain.get_fd(), -1, "not connected before first use");
    chain.write(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(chain.get_fd() > 0);
    let page = read_all(&chain);
    assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
    assert!(page.contains("TLSv1.3"), "{page}");
    chain.free();
    assert!(
        matches!(chain.read(10), Err(Error::WrongState(_))),
        "read after free"
    );
}

#[test]
fn accept_bio_serves_openssl_and_curl() {
    let pki = TestPki::generate();
    let ctx = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, 0);
    let template = Ssl::new(&ctx).unwrap();
    template.set_accept_state().unwrap();
    let filter = Bio::new(BioMethod::Ssl);
    filter.set_ssl(&template, BIO_CLOSE).unwrap();
    let accept = Bio::new(BioMethod::Accept);
    accept.set_accept_name("127.0.0.1").unwrap();
    accept.set_accept_port("0").unwrap();
    let chain = filter.push(&accept).unwrap();
    assert!(
        chain.do_accept().unwrap().is_none(),
        "the first call listens"
    );
    let port: u16 = accept.get_accept_port().unwrap().parse().unwrap();

    let mut clients = Vec::new();
    if peer::require_tool("openssl") {
        let args = [
            "-CAfile".to_string(),
            pki.ca_path().display().to_string(),
            "-verify_return_error".into(),
            "-quiet".into(),
        ];
        let mut c = PeerProcess::spawn(&mut peer::openssl_s_client(port, &args)).unwrap();
        c.write_stdin(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        clients.push(c);
    }
    if peer::require_tool("curl") {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(pki.ca_path())
            .arg(format!("https://localhost:{port}/"));
        clients.push(PeerProcess::spawn(&mut cmd).unwrap());
    }
    // The clients connect in whichever order they start: serve them all, then check that
    // each one got its page.
    for _ in 0..clients.len() {
        let conn = chain.do_accept().unwrap().expect("a client chain");
        let mut request = Vec::new();
        while !String::from_utf8_lossy(&request).contains("\r\n\r\n") {
            request.extend(conn.read(-1).unwrap());
        }
        assert!(String::from_utf8_lossy(&request).starts_with("GET / "));
        conn.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nserved by a ferrossl accept BIO\n",
        )
        .unwrap();
        let ssl = conn.get_ssl().unwrap().unwrap();
        let _ = ssl.shutdown();
        conn.free();
    }
    for client in &mut clients {
        client
            .wait_for_output("served by a ferrossl accept BIO", TIMEOUT)
            .unwrap();
    }
}

fn echo_server(
    family: i32,
    host: &str,
    pki: &TestPki,
    clients: usize,
) -> (u16, std::thread::JoinHandle<()>) {
    let ctx = context(pki, Some(&pki.server_ecdsa), VERIFY_NONE, 0);
    let mut server = TlsSocket::new(None, Some(ctx)).unwrap();
    server.set_family(family).unwrap();
    server.bind(0, host).unwrap();
    server.listen(-1).unwrap();
    let port = server.port();
    let handle = std::thread::spawn(move || {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let mut conn = server.accept().unwrap();
                std::thread::spawn(move || {
                    let line = conn.receive(-1).unwrap();
                    conn.send(&line).unwrap();
                    conn.close().unwrap();
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    });
    (port, handle)
}

#[test]
fn tls_socket_echo_ipv4_and_ipv6_with_concurrent_clients() {
    let pki = TestPki::generate();
    for (family, host) in [(AF_INET, "127.0.0.1"), (AF_INET6, "::1")] {
        if family == AF_INET6 && std::net::TcpListener::bind("[::1]:0").is_err() {
            eprintln!("skipped: IPv6 loopback unavailable on this machine");
            continue;
        }
        let (port, server) = echo_server(family, host, &pki, 4);
        let clients: Vec<_> = (0..4)
            .map(|i| {
                let ctx = context(&pki, None, VERIFY_PEER, 0);
                let host = host.to_string();
                std::thread::spawn(move || {
                    let mut c = TlsSocket::new(None, Some(ctx)).unwrap();
                    c.set_family(family).unwrap();
                    c.set_receive_timeout(10_000).unwrap();
                    c.connect(&host, port, 5_000).unwrap();
                    let msg = format!("hello {i}\n");
                    assert_eq!(c.send(msg.as_bytes()).unwrap(), msg.len());
                    assert_eq!(c.receive(msg.len() as isize).unwrap(), msg.as_bytes());
                    c.close().unwrap();
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
    }
}

#[test]
fn timeouts_fire_and_non_blocking_calls_do_not_hang() {
    let pki = TestPki::generate();
    // A server that completes the handshake and then says nothing.
    let ctx = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, 0);
    let srv = TestServer::start(ctx, 1, |conn| {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = conn.shutdown();
        Ok(())
    });
    let mut c = TlsSocket::new(None, Some(context(&pki, None, VERIFY_PEER, 0))).unwrap();
    c.connect("127.0.0.1", srv.port, 5_000).unwrap();
    c.set_receive_timeout(200).unwrap();
    assert_eq!(c.get_option(SO_RCVTIMEO).unwrap(), 200);
    let start = Instant::now();
    assert!(matches!(c.receive(10), Err(Error::TimedOut(_))));
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    // Non-blocking: "would block" at once.
    c.set_blocking(false).unwrap();
    let start = Instant::now();
    assert!(matches!(c.receive(10), Err(Error::WantRead)));
    assert!(start.elapsed() < Duration::from_millis(200));
    srv.join().unwrap();

    // Non-blocking accept with nobody connecting.
    let mut listener = TlsSocket::new(None, None).unwrap();
    listener.bind(0, "127.0.0.1").unwrap();
    listener.listen(4).unwrap();
    listener.set_blocking(false).unwrap();
    let start = Instant::now();
    assert!(matches!(listener.accept(), Err(Error::WantRead)));
    assert!(start.elapsed() < Duration::from_millis(200));

    // A connect timeout to a port nobody answers on loopback is refused quickly, not hung.
    let mut c = TlsSocket::new(None, None).unwrap();
    let start = Instant::now();
    assert!(c
        .connect("127.0.0.1", peer::free_tcp_port(), 1_000)
        .is_err());
    assert!(start.elapsed() < Duration::from_millis(1500));
}

#[test]
fn properties_in_every_state() {
    let pki = TestPki::generate();
    let mut s = TlsSocket::new(
        None,
        Some(context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, 0)),
    )
    .unwrap();
    // Unbound.
    assert_eq!((s.host(), s.port(), s.family()), ("localhost", 0, AF_INET));
    assert_eq!((s.socket_type(), s.protocol()), (1, 6));
    assert_eq!(s.id(), -1);
    assert!(!s.is_bound() && !s.is_listening() && !s.is_connected() && !s.is_client());
    assert!(!s.is_closed() && !s.is_shutdown() && s.is_blocking());
    assert_eq!(s.shutdown_reason(), -1);
    assert!(s.info().is_none());
    // Bound.
    s.bind(0, "127.0.0.1").unwrap();
    assert!(s.is_bound() && !s.is_listening());
    assert!(s.id() > 0);
    let info = s.info().unwrap();
    assert_eq!(
        (info.address.as_str(), info.port, info.family),
        ("127.0.0.1", s.port(), AF_INET)
    );
    // Listening.
    s.listen(-1).unwrap();
    assert!(s.is_listening());
    assert!(
        matches!(s.connect("127.0.0.1", 1, 100), Err(Error::WrongState(_))),
        "connect on a listening socket"
    );
    // Connected (both ends).
    let port = s.port();
    let client_thread = {
        let ctx = context(&pki, None, VERIFY_PEER, 0);
        std::thread::spawn(move || {
            let mut c = TlsSocket::new(None, Some(ctx)).unwrap();
            c.connect("127.0.0.1", port, 5_000).unwrap();
            assert!(c.is_connected() && c.is_client() && !c.is_bound());
            assert_eq!(c.port(), port);
            c.send(b"x").unwrap();
            let _ = c.receive(-1);
            c
        })
    };
    let mut accepted = s.accept().unwrap();
    assert!(accepted.is_connected() && !accepted.is_client() && !accepted.is_listening());
    assert_eq!(accepted.receive(1).unwrap(), b"x");
    // Shut down.
    accepted.shutdown().unwrap();
    assert!(accepted.is_shutdown());
    assert_eq!(accepted.shutdown_reason(), SHUT_RDWR);
    assert!(matches!(accepted.send(b"y"), Err(Error::WrongState(_))));
    let mut client = client_thread.join().unwrap();
    // Closed.
    accepted.close().unwrap();
    accepted.close().unwrap();
    assert!(accepted.is_closed() && !accepted.is_connected());
    assert!(matches!(accepted.receive(1), Err(Error::WrongState(_))));
    client.close().unwrap();
    s.close().unwrap();
    assert!(s.is_closed() && !s.is_listening() && !s.is_bound());
}

#[test]
fn socket_options_and_misuse() {
    let mut s = TlsSocket::new(None, Some(Context::new(Method::Tls))).unwrap();
    s.set_option(SO_KEEPALIVE, 1).unwrap();
    assert_eq!(s.get_option(SO_KEEPALIVE).unwrap(), 1);
    s.set_option(SO_REUSEADDR, 1).unwrap();
    assert_eq!(s.get_option(SO_REUSEADDR).unwrap(), 1);
    s.set_option(SO_RCVBUF, 65536).unwrap();
    assert!(s.get_option(SO_RCVBUF).unwrap() >= 65536);
    s.set_option(SO_SNDTIMEO, 1500).unwrap();
    assert_eq!(s.send_timeout(), 1500);
    assert_eq!(s.get_option(SO_TYPE).unwrap(), 1);
    assert!(matches!(
        s.set_option(9999, 1),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(s.get_option(9999), Err(Error::InvalidArgument(_))));
    assert!(
        matches!(s.listen(1), Err(Error::WrongState(_))),
        "listen before bind"
    );
    assert!(matches!(s.accept(), Err(Error::WrongState(_))));
    assert!(matches!(s.send(b"x"), Err(Error::WrongState(_))));
    assert!(s.set_family(99).is_err());

    // BIO misuse.
    let a = Bio::new(BioMethod::Mem);
    let b = Bio::new(BioMethod::Mem);
    assert!(matches!(a.push(&a), Err(Error::InvalidArgument(_))));
    a.push(&b).unwrap();
    assert!(
        matches!(b.push(&a), Err(Error::InvalidArgument(_))),
        "a cycle through the chain"
    );
    assert!(matches!(a.read(4), Err(Error::WantRead)));
    assert!(a.should_retry());
    assert_eq!(a.write(b"data").unwrap(), 4);
    assert_eq!(a.read(-1).unwrap(), b"data");
    assert!(!a.should_retry());
    assert!(a.pop().unwrap().is_some());
    assert!(a.next().unwrap().is_none());
    assert!(Bio::new(BioMethod::Mem).set_conn_hostname("x").is_err());
    assert!(Bio::new(BioMethod::Connect)
        .set_conn_port("no-such-service")
        .is_err());
    assert!(
        Bio::new(BioMethod::Ssl).read(1).is_err(),
        "an SSL filter without SSL"
    );
    let ssl = Ssl::new(&Context::new(Method::Tls)).unwrap();
    ssl.free();
    assert!(matches!(ssl.write(b"x"), Err(Error::WrongState(_))));
    assert_eq!(ssl.get_fd(), -1);
    let filter = Bio::new(BioMethod::Ssl);
    filter
        .set_ssl(&Ssl::new(&Context::new(Method::Tls)).unwrap(), BIO_CLOSE)
        .unwrap();
    assert!(
        matches!(filter.write(b"x"), Err(Error::WrongState(_))),
        "nothing after the filter"
    );
    let connect = Bio::new(BioMethod::Connect);
    connect.set_conn_hostname("127.0.0.1").unwrap();
    connect
        .set_conn_port(&peer::free_tcp_port().to_string())
        .unwrap();
    assert!(
        matches!(connect.do_connect(), Err(Error::SysCall { .. })),
        "refused"
    );
    assert_ne!(connect.error(), 0);
    assert!(!connect.error_string().is_empty());
}

#[test]
fn ssl_object_over_a_socket_fd() {
    let pki = TestPki::generate();
    let ctx = context(&pki, Some(&pki.server_ecdsa), VERIFY_NONE, 0);
    let srv = TestServer::start(ctx, 1, |conn| {
        read_until(conn, "ping")?;
        conn.sendall(b"pong")?;
        let _ = conn.shutdown();
        Ok(())
    });
    let stream = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let ssl = Ssl::new(&context(&pki, None, VERIFY_PEER, 0)).unwrap();
    assert_eq!(ssl.get_fd(), -1);
    ssl.set_fd(stream.into()).unwrap();
    assert!(ssl.get_fd() > 0);
    ssl.connect().unwrap();
    assert_eq!(ssl.error(), 0);
    ssl.write(b"ping").unwrap();
    assert_eq!(ssl.read(-1).unwrap(), b"pong");
    srv.join().unwrap();
    assert_eq!(ssl.read(-1).unwrap(), b"", "closed by the peer");
    ssl.free();
}
