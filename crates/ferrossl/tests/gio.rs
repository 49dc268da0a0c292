//! GIO's DtlsConnection model over in-memory datagram pairs and real UDP sockets: handshake,
//! datagrams both ways, certificate decisions with GIO's flags, close rules, cancellation and
//! channel binding.

mod gio_common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferrossl::gio::{
    AuthenticationMode, ChannelBindingType, DtlsConnection, GioError, RehandshakeMode,
    TlsCertificateFlags, TlsProtocolVersion,
};
use ferrossl::transport::{Cancellable, DatagramBased, MemoryDatagrams, Timeout, UdpDatagrams};
use ferrossl::X509Store;
use ferrossl_testkit::pki::{Identity, TestPki};
use gio_common::{database, identity, refusal};

const WAIT: Timeout = Timeout::Block;

/// Runs a server in a thread that echoes datagrams until the client closes.
fn echo_server(
    base: MemoryDatagrams,
    id: &Identity,
    configure: impl FnOnce(&mut DtlsConnection<MemoryDatagrams>) + Send + 'static,
) -> thread::JoinHandle<Result<Vec<u8>, GioError>> {
    let (cert, key) = identity(id);
    thread::spawn(move || {
        let mut server = DtlsConnection::server(base, cert, key);
        configure(&mut server);
        server.handshake(None)?;
        let binding = server.get_channel_binding_data(ChannelBindingType::Exporter)?;
        loop {
            let d = server.receive(Timeout::after(Duration::from_secs(10)), None)?;
            if d.is_empty() {
                break;
            }
            server.send(&d, None)?;
        }
        server.close(None)?;
        Ok(binding)
    })
}

#[test]
fn handshake_data_alpn_binding_and_close() {
    let pki = TestPki::generate();
    let (a, b) = MemoryDatagrams::pair();
    let server = echo_server(b, &pki.server_ecdsa, |s| {
        s.set_advertised_protocols(Some(&["webrtc", "c-webrtc"]))
            .unwrap();
    });
    let mut client = DtlsConnection::client(a, Some("localhost"));
    client.set_database(Some(&database(&pki))).unwrap();
    client
        .set_advertised_protocols(Some(&["c-webrtc"]))
        .unwrap();
    assert_eq!(client.get_protocol_version(), TlsProtocolVersion::Unknown);
    assert_eq!(client.get_ciphersuite_name(), None);
    client.handshake(None).unwrap();
    client.handshake(None).unwrap();
    assert_eq!(client.get_protocol_version(), TlsProtocolVersion::Dtls13);
    assert!(client
        .get_ciphersuite_name()
        .unwrap()
        .starts_with("TLS_AES_"));
    assert_eq!(
        client.get_negotiated_protocol().as_deref(),
        Some("c-webrtc")
    );
    assert!(client.get_peer_certificate_errors().is_empty());
    assert_eq!(
        client.get_peer_certificate().unwrap().subject().get("CN"),
        Some("localhost")
    );
    let binding = client
        .get_channel_binding_data(ChannelBindingType::Exporter)
        .unwrap();
    assert_eq!(binding.len(), 32);
    assert_eq!(
        client
            .get_channel_binding_data(ChannelBindingType::ServerEndPoint)
            .unwrap()
            .len(),
        32
    );
    // RFC 9266 §1: tls-unique is not defined for (D)TLS 1.3 (GIO says NOT_SUPPORTED).
    assert!(client
        .get_channel_binding_data(ChannelBindingType::Unique)
        .is_err());

    let sent = client
        .send_messages(&[b"one", b"two", b"three"], WAIT, None)
        .unwrap();
    assert_eq!(sent, 3);
    let mut got = Vec::new();
    while got.len() < 3 {
        let mut bufs = vec![Vec::new(); 3];
        let n = client
            .receive_messages(&mut bufs, Timeout::after(Duration::from_secs(10)), None)
            .unwrap();
        got.extend(bufs.into_iter().take(n));
    }
    assert_eq!(
        got,
        vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );

    client.close(None).unwrap();
    client.close(None).unwrap();
    assert!(matches!(client.send(b"late", None), Err(GioError::Closed)));
    assert!(matches!(client.receive(WAIT, None), Err(GioError::Closed)));
    assert_eq!(client.get_protocol_version(), TlsProtocolVersion::Unknown);
    assert_eq!(
        server.join().unwrap().unwrap(),
        binding,
        "channel bindings equal on both ends"
    );
}

fn client_verdict(
    pki: &TestPki,
    server_id: &Identity,
    name: &str,
    db: Option<X509Store>,
    accept: Option<bool>,
) -> (Result<(), GioError>, TlsCertificateFlags) {
    let (a, b) = MemoryDatagrams::pair();
    let (cert, key) = identity(server_id);
    let server = thread::spawn(move || {
        let mut s = DtlsConnection::server(b, cert, key);
        let _ = s.handshake(None);
    });
    let mut client = DtlsConnection::client(a, Some(name));
    client.set_database(db.as_ref()).unwrap();
    if let Some(answer) = accept {
        client.set_accept_certificate_handler(Arc::new(move |_, _| answer));
    }
    let result = client.handshake(None);
    let flags = client.get_peer_certificate_errors();
    drop(client);
    let _ = pki;
    let _ = server.join();
    (result, flags)
}

#[test]
fn certificate_problems_become_gio_flags_and_the_handler_decides() {
    let pki = TestPki::generate();
    let db = || Some(database(&pki));
    let (r, f) = client_verdict(&pki, &pki.server_ecdsa, "localhost", None, None);
    assert!(matches!(r, Err(GioError::BadCertificate(_))), "{r:?}");
    assert!(f.contains(TlsCertificateFlags::UNKNOWN_CA));
    let (r, f) = client_verdict(&pki, &pki.server_ecdsa, "localhost", None, Some(true));
    assert!(r.is_ok(), "the handler accepted: {r:?}");
    assert!(f.contains(TlsCertificateFlags::UNKNOWN_CA));
    let (r, f) = client_verdict(&pki, &pki.server_ecdsa, "wrong.example", db(), Some(false));
    assert!(matches!(r, Err(GioError::BadCertificate(_))));
    assert!(f.contains(TlsCertificateFlags::BAD_IDENTITY));
    let (r, f) = client_verdict(&pki, &pki.expired, "localhost", db(), None);
    assert!(r.is_err());
    assert!(f.contains(TlsCertificateFlags::EXPIRED));
    let (r, f) = client_verdict(&pki, &pki.server_ecdsa, "localhost", db(), None);
    assert!(r.is_ok() && f.is_empty());
}

#[test]
fn client_without_certificate_against_a_server_requiring_one() {
    let pki = TestPki::generate();
    let (a, b) = MemoryDatagrams::pair();
    let server = echo_server(b, &pki.server_ecdsa, |s| {
        s.set_authentication_mode(AuthenticationMode::Required)
    });
    let mut client = DtlsConnection::client(a, Some("localhost"));
    client.set_database(Some(&database(&pki))).unwrap();
    let err = refusal(&mut client);
    assert!(matches!(err, GioError::CertificateRequired), "{err:?}");
    assert!(
        !client.get_accepted_cas().is_empty(),
        "the server named the CAs of its database"
    );
    // Deprecated and ignored; GIO answers SAFELY whatever was set.
    client.set_rehandshake_mode(RehandshakeMode::Unsafely);
    assert_eq!(client.get_rehandshake_mode(), RehandshakeMode::Safely);
    assert!(server.join().unwrap().is_err());
}

#[test]
fn cancelling_a_blocked_handshake_is_prompt() {
    // Nobody answers on the other end.
    let (a, _silent) = MemoryDatagrams::pair();
    let mut client = DtlsConnection::client(a, Some("localhost"));
    let cancel = Cancellable::new();
    let trigger = cancel.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        trigger.cancel();
    });
    let start = Instant::now();
    assert!(matches!(
        client.handshake(Some(&cancel)),
        Err(GioError::Cancelled)
    ));
    assert!(
        start.elapsed() < Duration::from_millis(50 + 100),
        "{:?}",
        start.elapsed()
    );
    t.join().unwrap();
    // A deadline gives up too, and a non-blocking receive says so at once.
    let start = Instant::now();
    assert!(matches!(
        client.receive(Timeout::after(Duration::from_millis(100)), None),
        Err(GioError::TimedOut)
    ));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn partial_shutdown_and_udp_transport() {
    let pki = TestPki::generate();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    let (cert, key) = identity(&pki.server_rsa);
    let server = thread::spawn(move || -> Result<Vec<u8>, GioError> {
        let mut s = DtlsConnection::server(UdpDatagrams::connected(b).unwrap(), cert, key);
        s.handshake(None)?;
        let d = s.receive(Timeout::after(Duration::from_secs(10)), None)?;
        // Writing is shut down; reading still works.
        s.shutdown(false, true, None)?;
        assert!(matches!(s.send(b"x", None), Err(GioError::Closed)));
        let end = s.receive(Timeout::after(Duration::from_secs(10)), None)?;
        assert!(end.is_empty(), "the client's close_notify");
        Ok(d)
    });
    let mut client = DtlsConnection::client(UdpDatagrams::connected(a).unwrap(), Some("localhost"));
    client.set_database(Some(&database(&pki))).unwrap();
    client.send(b"over udp", None).unwrap();
    // The server shut down its writing side: we see its close_notify as the end.
    assert!(client
        .receive(Timeout::after(Duration::from_secs(10)), None)
        .unwrap()
        .is_empty());
    client.shutdown(false, true, None).unwrap();
    assert_eq!(server.join().unwrap().unwrap(), b"over udp");
    client.close(None).unwrap();
    assert!(
        client.base().socket().local_addr().is_ok(),
        "the base socket stays open"
    );
}

/// The server's port closes without close_notify: the client's next receive sees the
/// socket's ECONNREFUSED as the end, an error only while close_notify is required.
fn receive_after_the_server_vanished(require_close_notify: bool) -> Result<Vec<u8>, GioError> {
    let pki = TestPki::generate();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    let (cert, key) = identity(&pki.server_ecdsa);
    let server = thread::spawn(move || {
        let mut s = DtlsConnection::server(UdpDatagrams::connected(b).unwrap(), cert, key);
        s.handshake(None).unwrap();
        // Dropped without close(): the socket closes, no close_notify is sent.
    });
    let mut client = DtlsConnection::client(UdpDatagrams::connected(a).unwrap(), Some("localhost"));
    client.set_database(Some(&database(&pki))).unwrap();
    client.set_require_close_notify(require_close_notify);
    client.handshake(None).unwrap();
    server.join().unwrap();
    client.send(b"anyone there?", None).unwrap();
    client.receive(Timeout::after(Duration::from_secs(10)), None)
}

#[test]
fn a_vanished_peer_is_eof_or_the_end_per_require_close_notify() {
    assert!(matches!(
        receive_after_the_server_vanished(true),
        Err(GioError::Eof)
    ));
    assert!(receive_after_the_server_vanished(false).unwrap().is_empty());
}

/// A transport that counts the datagrams it sends, over another one.
struct Counting {
    inner: MemoryDatagrams,
    sent: Arc<std::sync::atomic::AtomicUsize>,
}

impl ferrossl::transport::DatagramBased for Counting {
    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> std::io::Result<usize> {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.send_datagram(datagram, timeout, cancellable)
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> std::io::Result<usize> {
        self.inner.receive_datagram(buf, timeout, cancellable)
    }
}

#[test]
fn map_base_keeps_the_association_and_settings() {
    let pki = TestPki::generate();
    let (a, b) = MemoryDatagrams::pair();
    let server = echo_server(b, &pki.server_ecdsa, |s| {
        s.set_advertised_protocols(Some(&["echo/1"])).unwrap();
    });
    let mut client = DtlsConnection::client(a, Some("localhost"));
    client.set_database(Some(&database(&pki))).unwrap();
    client.set_advertised_protocols(Some(&["echo/1"])).unwrap();
    client.set_require_close_notify(false);
    client.handshake(None).unwrap();
    let mut client = client.map_base(|inner| Counting {
        inner,
        sent: Arc::default(),
    });
    assert_eq!(client.get_negotiated_protocol().as_deref(), Some("echo/1"));
    assert!(!client.get_require_close_notify());
    client.send(b"over the new base", None).unwrap();
    assert_eq!(
        client
            .receive(Timeout::after(Duration::from_secs(10)), None)
            .unwrap(),
        b"over the new base"
    );
    client.close(None).unwrap();
    let sent = client
        .base()
        .sent
        .load(std::sync::atomic::Ordering::Relaxed);
    // In DTLS 1.3 the ACK of the server's NewSessionTicket rides with the record.
    assert_eq!(
        sent, 2,
        "the record and close_notify went through the new base"
    );
    server.join().unwrap().unwrap();
}

/// `set_verify_callback` replaces GIO's decision: the callback sees the chain (the peer's own
/// certificate last, at depth 0) and its answer decides, whatever the engine found; a server's
/// callback is asked about a trusted client certificate too.
#[test]
fn a_verify_callback_replaces_the_decision() {
    use std::sync::Mutex;
    let pki = TestPki::generate();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = |answer: bool| -> ferrossl::verify::VerifyCallback {
        let seen = seen.clone();
        Arc::new(move |p| {
            let cn = p.cert.subject().get("CN").unwrap_or_default().to_string();
            seen.lock().unwrap().push((p.depth, cn, p.errnum));
            answer
        })
    };
    for answer in [true, false] {
        seen.lock().unwrap().clear();
        let (a, b) = MemoryDatagrams::pair();
        let server = echo_server(b, &pki.server_ecdsa, |_| {});
        let mut client = DtlsConnection::client(a, Some("localhost"));
        // No database: the engine finds UNKNOWN_CA, which only the callback decides on.
        client.set_database(None).unwrap();
        client.set_verify_callback(Some(recorder(answer)));
        let result = client.handshake(None);
        assert_eq!(result.is_ok(), answer, "{result:?}");
        assert!(client.get_peer_certificate_errors().is_empty());
        let seen = seen.lock().unwrap().clone();
        let (depth, cn, _) = seen.last().expect("the callback was called").clone();
        assert_eq!((depth, cn.as_str()), (0, "localhost"), "{seen:?}");
        assert!(
            seen.iter().any(|s| s.2 != 0),
            "the engine's problem: {seen:?}"
        );
        if answer {
            client.close(None).unwrap();
        }
        drop(client);
        let _ = server.join();
    }

    // A server asking for a certificate: the callback sees a trusted one too.
    seen.lock().unwrap().clear();
    let (a, b) = MemoryDatagrams::pair();
    let callback = recorder(true);
    let db = database(&pki);
    let server = echo_server(b, &pki.server_ecdsa, move |s| {
        s.set_authentication_mode(AuthenticationMode::Requested);
        s.set_database(Some(&db)).unwrap();
        s.set_verify_callback(Some(callback));
    });
    let mut client = DtlsConnection::client(a, Some("localhost"));
    client.set_database(Some(&database(&pki))).unwrap();
    let (cert, key) = identity(&pki.client_ecdsa);
    client.set_certificate(cert, key);
    client.handshake(None).unwrap();
    client.close(None).unwrap();
    server.join().unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(depth, _, errnum)| *depth == 0 && *errnum == 0),
        "{seen:?}"
    );
}

/// A memory-BIO server over `base` that finishes its handshake with a client and returns,
/// to send the datagrams the test makes.
fn memory_server(
    base: MemoryDatagrams,
    id: &Identity,
    max_version: i32,
) -> thread::JoinHandle<(ferrossl::Connection, MemoryDatagrams)> {
    let (cert, key) = identity(id);
    thread::spawn(move || {
        let context = ferrossl::Context::new(ferrossl::Method::DtlsServer);
        context.use_certificate(cert);
        context.use_privatekey(key);
        context.set_max_proto_version(max_version).unwrap();
        let mut server = ferrossl::Connection::new(&context).unwrap();
        server.set_accept_state().unwrap();
        let mut buf = vec![0u8; 65_536];
        while !server.is_handshake_done() {
            let n = base
                .receive_datagram(&mut buf, Timeout::after(Duration::from_secs(10)), None)
                .unwrap();
            server.bio_write(&buf[..n]).unwrap();
            let _ = server.do_handshake();
            while let Ok(d) = server.bio_read(65_536) {
                base.send_datagram(&d, WAIT, None).unwrap();
            }
        }
        (server, base)
    })
}

/// What the server queued since its last read, as one datagram (the memory BIO hands out the
/// datagrams queued together in one read): it must be all there was.
fn one_datagram(server: &mut ferrossl::Connection) -> Vec<u8> {
    let datagram = server.bio_read(65_536).unwrap();
    assert!(server.bio_read(65_536).is_err(), "one datagram carries all");
    datagram
}

/// Several records in one datagram: the first receive decrypts them all and hands out the
/// first; `has_pending` says the others are held (a binding that waits for the socket would
/// wait forever for them), until the last is taken; the peer's close_notify held behind data
/// counts too. Over DTLS 1.2 and 1.3.
#[test]
fn records_sharing_a_datagram_are_pending_after_the_first() {
    use ferrossl::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
    let pki = TestPki::generate();
    for version in [DTLS1_2_VERSION, DTLS1_3_VERSION] {
        let (a, b) = MemoryDatagrams::pair();
        let server = memory_server(b, &pki.server_ecdsa, version);
        let mut client = DtlsConnection::client(a, Some("localhost"));
        client.set_database(Some(&database(&pki))).unwrap();
        client.set_protocol_versions(0, DTLS1_3_VERSION);
        assert!(!client.has_pending(), "nothing before the handshake");
        client.handshake(None).unwrap();
        let (mut server, base) = server.join().unwrap();
        assert!(!client.has_pending());

        for record in [&b"one"[..], b"two", b"three"] {
            server.send(record).unwrap();
        }
        base.send_datagram(&one_datagram(&mut server), WAIT, None)
            .unwrap();
        let soon = Timeout::after(Duration::from_secs(10));
        assert_eq!(client.receive(soon, None).unwrap(), b"one");
        assert!(client.has_pending(), "two records held ({version:#x})");
        assert_eq!(client.receive(Timeout::NonBlocking, None).unwrap(), b"two");
        assert!(client.has_pending(), "one record held");
        assert_eq!(
            client.receive(Timeout::NonBlocking, None).unwrap(),
            b"three"
        );
        assert!(!client.has_pending(), "all taken");
        assert!(matches!(
            client.receive(Timeout::NonBlocking, None),
            Err(GioError::WouldBlock)
        ));

        // The last data and the close_notify after it.
        server.send(b"last").unwrap();
        let _ = server.shutdown();
        base.send_datagram(&one_datagram(&mut server), WAIT, None)
            .unwrap();
        assert_eq!(client.receive(soon, None).unwrap(), b"last");
        assert!(client.has_pending(), "the end is held");
        assert!(client
            .receive(Timeout::NonBlocking, None)
            .unwrap()
            .is_empty());
        client.shutdown(true, false, None).unwrap();
        assert!(!client.has_pending(), "reading is shut down");
    }
}
