//! The async forms of the DtlsConnection calls under tokio, over UDP on 127.0.0.1: handshake,
//! datagrams both ways, shutdown and close; an abandoned call is cancelled and leaves the
//! connection usable.

use std::net::UdpSocket;
use std::time::Duration;

use ferrossl::gio::{AsyncDtlsConnection, DtlsConnection, GioError, TlsProtocolVersion};
use ferrossl::transport::{Timeout, UdpDatagrams};
use ferrossl::{PKey, X509Store, X509};
use ferrossl_testkit::pki::TestPki;

fn pair(
    pki: &TestPki,
) -> (
    AsyncDtlsConnection<UdpDatagrams>,
    AsyncDtlsConnection<UdpDatagrams>,
) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    let store = X509Store::new();
    store
        .add_cert(X509::from_pem(pki.ca.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let mut client = DtlsConnection::client(UdpDatagrams::connected(a).unwrap(), Some("localhost"));
    client.set_database(Some(&store)).unwrap();
    let server = DtlsConnection::server(
        UdpDatagrams::connected(b).unwrap(),
        X509::from_pem(pki.server_ecdsa.cert_pem.as_bytes()).unwrap(),
        PKey::from_pem(pki.server_ecdsa.key_pem.as_bytes(), None).unwrap(),
    );
    (
        AsyncDtlsConnection::new(client),
        AsyncDtlsConnection::new(server),
    )
}

const WAIT: Timeout = Timeout::Block;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_datagrams_and_close() {
    let pki = TestPki::generate();
    let (client, server) = pair(&pki);
    let (c, s) = tokio::join!(client.handshake(), server.handshake());
    c.unwrap();
    s.unwrap();
    assert_eq!(
        client.with(|c| c.get_protocol_version()),
        TlsProtocolVersion::Dtls13
    );
    let sent = client
        .send_messages(vec![b"one".to_vec(), b"two".to_vec()], WAIT)
        .await
        .unwrap();
    assert_eq!(sent, 2);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(server.receive_messages(2, WAIT).await.unwrap());
    }
    assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    server.send(b"back".to_vec()).await.unwrap();
    assert_eq!(client.receive(WAIT).await.unwrap(), b"back");
    // The server stops writing; the client sees the end, then both close.
    server.shutdown(false, true).await.unwrap();
    assert!(client.receive(WAIT).await.unwrap().is_empty());
    client.close().await.unwrap();
    assert!(server.receive(WAIT).await.unwrap().is_empty());
    server.close().await.unwrap();
    assert!(matches!(
        client.send(b"late".to_vec()).await,
        Err(GioError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_call_is_cancelled_and_frees_the_connection() {
    let pki = TestPki::generate();
    let (client, server) = pair(&pki);
    let (c, s) = tokio::join!(client.handshake(), server.handshake());
    c.unwrap();
    s.unwrap();
    // Nothing comes: the timeout drops the receive, which must stop promptly.
    let abandoned = tokio::time::timeout(Duration::from_millis(100), server.receive(WAIT)).await;
    assert!(
        abandoned.is_err(),
        "nothing was sent, the receive cannot finish"
    );
    // The connection is free again at once (a blocked call would keep it locked).
    let start = std::time::Instant::now();
    client.send(b"after".to_vec()).await.unwrap();
    assert_eq!(server.receive(WAIT).await.unwrap(), b"after");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
