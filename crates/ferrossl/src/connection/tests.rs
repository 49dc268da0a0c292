//! `bio_read_into` against `bio_read`: the same bytes, the same WantRead, and for DTLS one
//! datagram per call, cut to the buffer. And how a record that fails behind data is
//! reported: once the data is read, by every later call, with its own error.

use super::Connection;
use crate::constants::*;
use crate::error::Error;
use crate::{Context, Method};
use ferrossl_testkit::pki::TestPki;

fn pair(method: Method, pki: &TestPki) -> (Connection, Connection) {
    let server = Context::new(method);
    server
        .use_certificate_chain_file(&pki.server_ecdsa.chain_path)
        .unwrap();
    server
        .use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    let client = Context::new(method);
    client
        .load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    client.set_verify(VERIFY_PEER, None);
    let mut c = Connection::new(&client).unwrap();
    c.set_connect_state().unwrap();
    let mut s = Connection::new(&server).unwrap();
    s.set_accept_state().unwrap();
    (c, s)
}

/// Moves everything `from` has to `to`, one `bio_read_into` at a time.
fn pump(from: &mut Connection, to: &mut Connection) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.bio_read_into(&mut buf) {
        to.bio_write(&buf[..n]).unwrap();
    }
}

fn handshake(c: &mut Connection, s: &mut Connection) {
    for _ in 0..10 {
        let _ = c.do_handshake();
        pump(c, s);
        let _ = s.do_handshake();
        pump(s, c);
    }
    assert!(c.is_handshake_done() && s.is_handshake_done());
}

#[test]
fn tls_fills_the_buffer_and_leaves_the_rest_for_the_next_call() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(Method::Tls, &pki);
    let mut buf = [0u8; 64];
    assert!(matches!(c.bio_read_into(&mut buf), Err(Error::WantRead)));
    handshake(&mut c, &mut s);
    assert!(matches!(c.bio_read_into(&mut buf), Err(Error::WantRead)));

    c.send(&[7u8; 1000]).unwrap();
    let pending = c.bio_pending();
    assert!(pending > 1000, "one record with its overhead");
    // A buffer smaller than the record takes a part; the next call takes the rest.
    let mut small = [0u8; 100];
    assert_eq!(c.bio_read_into(&mut small).unwrap(), 100);
    assert_eq!(c.bio_pending(), pending - 100);
    s.bio_write(&small).unwrap();
    let mut rest = vec![0u8; 1 << 16];
    let n = c.bio_read_into(&mut rest).unwrap();
    assert_eq!(n, pending - 100, "a short read: nothing is left");
    assert!(matches!(c.bio_read_into(&mut rest), Err(Error::WantRead)));
    assert!(
        matches!(c.bio_read_into(&mut []), Err(Error::WantRead)),
        "an empty buffer takes nothing"
    );
    s.bio_write(&rest[..n]).unwrap();
    let mut got = [0u8; 2000];
    assert_eq!(s.recv(&mut got).unwrap(), 1000);
    assert_eq!(got[..1000], [7u8; 1000]);
}

#[test]
fn tls_bio_read_and_bio_read_into_hand_out_the_same_bytes() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(Method::Tls, &pki);
    handshake(&mut c, &mut s);
    // Two records queued: bio_read takes both up to its limit, as bio_read_into does.
    c.send(&[1u8; 300]).unwrap();
    c.send(&[2u8; 300]).unwrap();
    let pending = c.bio_pending();
    let first = c.bio_read(pending - 10).unwrap();
    assert_eq!(first.len(), pending - 10);
    let mut buf = [0u8; 64];
    assert_eq!(c.bio_read_into(&mut buf).unwrap(), 10);
    assert!(matches!(c.bio_read(100), Err(Error::WantRead)));
    s.bio_write(&first).unwrap();
    s.bio_write(&buf[..10]).unwrap();
    let mut got = [0u8; 600];
    let mut n = 0;
    while n < 600 {
        n += s.recv(&mut got[n..]).unwrap();
    }
    assert_eq!(got[..300], [1u8; 300]);
    assert_eq!(got[300..], [2u8; 300]);
}

fn recv(conn: &mut Connection) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = conn.recv(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn dtls_takes_whole_datagrams_per_call_and_cuts_the_first_to_the_buffer() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(Method::Dtls, &pki);
    handshake(&mut c, &mut s);
    let mut buf = [0u8; 2048];
    while c.bio_read_into(&mut buf).is_ok() {} // what the handshake left (an ACK, say)
    assert!(matches!(c.bio_read_into(&mut buf), Err(Error::WantRead)));

    // Two datagrams that fit the MTU together leave in one read, as from OpenSSL's memory
    // BIO; each stays a record of its own.
    c.send(b"first").unwrap();
    c.send(b"second").unwrap();
    let both = c.bio_read_into(&mut buf).unwrap();
    s.bio_write(&buf[..both]).unwrap();
    assert!(matches!(c.bio_read_into(&mut buf), Err(Error::WantRead)));
    assert_eq!(recv(&mut s), b"first");
    assert_eq!(recv(&mut s), b"second");
    // A buffer with room for one takes one.
    c.send(b"first").unwrap();
    c.send(b"second").unwrap();
    let one = c.bio_read_into(&mut buf[..both - 1]).unwrap();
    assert!(one < both - 1);
    let two = c.bio_read_into(&mut buf[one..]).unwrap();
    assert_eq!((one + 1, one + two), (two, both), "one datagram each");

    // A short buffer takes the front of the datagram; the rest of it is gone.
    c.send(b"third").unwrap();
    c.send(b"fourth").unwrap();
    let mut short = [0u8; 8];
    assert_eq!(c.bio_read_into(&mut short).unwrap(), 8);
    let n = c.bio_read_into(&mut buf).unwrap();
    s.bio_write(&buf[..n]).unwrap();
    assert_eq!(recv(&mut s), b"fourth");
    // An empty buffer still takes (and drops) a datagram, as bio_read(0) does.
    c.send(b"fifth").unwrap();
    assert_eq!(c.bio_read_into(&mut []).unwrap(), 0);
    assert!(matches!(c.bio_read_into(&mut buf), Err(Error::WantRead)));
}

#[test]
fn a_stream_connection_has_no_memory_bio_to_read() {
    let ctx = Context::new(Method::Tls);
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut conn = Connection::with_stream(&ctx, a).unwrap();
    assert!(matches!(
        conn.bio_read_into(&mut [0u8; 16]),
        Err(Error::WrongState(_))
    ));
}

#[test]
fn data_and_close_notify_in_one_write_read_as_data_then_zero_return() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(Method::Tls, &pki);
    handshake(&mut c, &mut s);
    c.send(b"last words").unwrap();
    assert!(!c.shutdown().unwrap(), "the peer has not closed yet");
    let flight = c.bio_read(1 << 16).unwrap();
    s.bio_write(&flight).unwrap();
    // A short read empties the decrypted data; the close_notify behind it still counts.
    assert_eq!(recv(&mut s), b"last words");
    assert!(matches!(s.recv(&mut [0u8; 64]), Err(Error::ZeroReturn)));
    // More data after a short read is found once it comes.
    s.send(b"reply").unwrap();
    pump(&mut s, &mut c);
    assert_eq!(recv(&mut c), b"reply");
    assert!(matches!(c.recv(&mut [0u8; 64]), Err(Error::WantRead)));
    s.send(b"again").unwrap();
    pump(&mut s, &mut c);
    assert_eq!(recv(&mut c), b"again");
}

/// `good` sealed as one record, then a record whose last byte is flipped (it cannot be
/// decrypted), as one flight.
fn data_then_a_bad_record(c: &mut Connection, good: &[u8]) -> Vec<u8> {
    c.send(good).unwrap();
    let mut flight = c.bio_read(1 << 16).unwrap();
    c.send(b"bad!").unwrap();
    let mut bad = c.bio_read(1 << 16).unwrap();
    *bad.last_mut().unwrap() ^= 1;
    flight.extend_from_slice(&bad);
    flight
}

#[test]
fn a_bad_record_behind_data_fails_every_later_call_with_its_own_error() {
    let pki = TestPki::generate();
    let (mut c, mut s) = pair(Method::Tls, &pki);
    handshake(&mut c, &mut s);
    let flight = data_then_a_bad_record(&mut c, b"request");
    s.bio_write(&flight).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(s.recv(&mut buf).unwrap(), 7);
    // The write learns of the failure as the reads do, not as a transport error.
    let sent = s.send(b"response");
    assert!(matches!(sent, Err(Error::Protocol(_))), "{sent:?}");
    // More input from the peer does not bury the failure under a full buffer.
    c.send(&[1u8; 40_000]).unwrap();
    pump(&mut c, &mut s);
    for _ in 0..3 {
        let read = s.recv(&mut buf);
        assert!(matches!(read, Err(Error::Protocol(_))), "{read:?}");
    }
}
