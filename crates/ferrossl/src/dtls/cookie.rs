//! Stateless cookie exchange (RFC 6347 §4.2.1): before a server commits any state to a client
//! address, it answers a ClientHello with a HelloVerifyRequest carrying a cookie, and goes on
//! only when the ClientHello comes back with it. The built-in cookie is an HMAC over the
//! client's address and ClientHello parameters under a rotating secret; applications may
//! supply their own ([`CookieCallbacks`], OpenSSL's cookie callbacks).
//!
//! Before the cookie is verified the server sends at most one datagram, never larger than the
//! ClientHello that caused it, and keeps nothing: it cannot be used to amplify traffic.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use rustls::{ContentType, HandshakeType};

use super::codec::message::{ClientHello, HelloVerifyRequest, MAX_COOKIE_LEN};
use super::codec::record::{
    records, HandshakeHeader, RecordHeader, DTLS10, HANDSHAKE_HEADER_LEN, RECORD_HEADER_LEN,
};
use super::codec::{put_bytes, put_u16, Reader};

/// What a cookie is bound to: the client's address and the ClientHello fields RFC 6347 §4.2.1
/// says a client repeats (version, random, session_id, cipher_suites, compression_methods).
pub struct CookieInput<'a> {
    /// The client's transport address, when there is one.
    pub peer_addr: Option<SocketAddr>,
    /// The repeated ClientHello fields, encoded.
    pub hello_params: &'a [u8],
    /// The time, for providers that rotate secrets.
    pub now: Instant,
}

/// Makes and checks cookies.
pub trait CookieProvider: Send + Sync {
    /// A cookie (at most 255 bytes) for this client.
    fn generate(&self, input: &CookieInput<'_>) -> Vec<u8>;
    /// Whether `cookie` is one this provider made for this client.
    fn verify(&self, input: &CookieInput<'_>, cookie: &[u8]) -> bool;
}

/// Makes a cookie for a client.
pub type CookieGenerateCallback = Arc<dyn Fn(&CookieInput<'_>) -> Vec<u8> + Send + Sync>;
/// Checks a client's cookie.
pub type CookieVerifyCallback = Arc<dyn Fn(&CookieInput<'_>, &[u8]) -> bool + Send + Sync>;

/// The application's cookie generate and verify callbacks (OpenSSL's
/// `SSL_CTX_set_cookie_generate_cb` and `SSL_CTX_set_cookie_verify_cb`).
#[derive(Clone)]
pub struct CookieCallbacks {
    /// Makes a cookie.
    pub generate: CookieGenerateCallback,
    /// Checks a cookie.
    pub verify: CookieVerifyCallback,
}

impl CookieProvider for CookieCallbacks {
    fn generate(&self, input: &CookieInput<'_>) -> Vec<u8> {
        (self.generate)(input)
    }

    fn verify(&self, input: &CookieInput<'_>, cookie: &[u8]) -> bool {
        (self.verify)(input, cookie)
    }
}

struct Secrets {
    current: hmac::Key,
    previous: Option<hmac::Key>,
    rotated_at: Option<Instant>,
}

/// HMAC-SHA256 cookies under a secret that rotates every `rotation`; cookies made under the
/// previous secret stay valid, so a rotation never fails a handshake in progress.
pub struct HmacCookies {
    secrets: Mutex<Secrets>,
    rotation: Duration,
}

fn fresh_key() -> hmac::Key {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random generator works")
}

impl HmacCookies {
    /// A provider with a random secret, rotated every `rotation`.
    pub fn new(rotation: Duration) -> Self {
        Self {
            secrets: Mutex::new(Secrets {
                current: fresh_key(),
                previous: None,
                rotated_at: None,
            }),
            rotation,
        }
    }

    /// Replaces the secret now; cookies of the previous secret stay valid until the next
    /// rotation.
    pub fn rotate(&self) {
        let mut s = self.secrets.lock().expect("cookie secret lock");
        let old = std::mem::replace(&mut s.current, fresh_key());
        s.previous = Some(old);
    }

    fn with_keys<T>(&self, now: Instant, f: impl FnOnce(&Secrets) -> T) -> T {
        let mut s = self.secrets.lock().expect("cookie secret lock");
        match s.rotated_at {
            None => s.rotated_at = Some(now),
            Some(at) if now.saturating_duration_since(at) >= self.rotation => {
                let old = std::mem::replace(&mut s.current, fresh_key());
                s.previous = Some(old);
                s.rotated_at = Some(now);
            }
            Some(_) => {}
        }
        f(&s)
    }
}

fn mac(key: &hmac::Key, input: &CookieInput<'_>) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    match input.peer_addr {
        Some(SocketAddr::V4(a)) => {
            ctx.update(&[4]);
            ctx.update(&a.ip().octets());
            ctx.update(&a.port().to_be_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            ctx.update(&[6]);
            ctx.update(&a.ip().octets());
            ctx.update(&a.port().to_be_bytes());
        }
        None => ctx.update(&[0]),
    }
    ctx.update(input.hello_params);
    ctx.sign()
}

impl CookieProvider for HmacCookies {
    fn generate(&self, input: &CookieInput<'_>) -> Vec<u8> {
        self.with_keys(input.now, |s| mac(&s.current, input).as_ref().to_vec())
    }

    fn verify(&self, input: &CookieInput<'_>, cookie: &[u8]) -> bool {
        self.with_keys(input.now, |s| {
            std::iter::once(&s.current)
                .chain(s.previous.as_ref())
                .any(|key| {
                    aws_lc_rs::constant_time::verify_slices_are_equal(
                        mac(key, input).as_ref(),
                        cookie,
                    )
                    .is_ok()
                })
        })
    }
}

/// The ClientHello fields a cookie covers, encoded.
pub(crate) fn hello_params(hello: &ClientHello) -> Vec<u8> {
    let mut out = Vec::new();
    put_u16(&mut out, hello.client_version);
    out.extend_from_slice(&hello.random);
    put_bytes(&mut out, 1, &hello.session_id);
    for suite in &hello.cipher_suites {
        put_u16(&mut out, (*suite).into());
    }
    put_bytes(&mut out, 1, &hello.compression_methods);
    out
}

/// A ClientHello found at the start of a datagram, unfragmented, in epoch 0.
pub(crate) struct InitialHello {
    pub record: RecordHeader,
    pub handshake: HandshakeHeader,
    pub hello: ClientHello,
}

/// Finds a whole ClientHello in the first record of `datagram`. A stateless server cannot
/// reassemble, so a fragmented first ClientHello is not accepted (as in OpenSSL's
/// `DTLSv1_listen`).
pub(crate) fn initial_hello(datagram: &[u8]) -> Option<InitialHello> {
    let (record, body) = records(datagram).next()?;
    if record.content_type != ContentType::Handshake || record.epoch != 0 {
        return None;
    }
    let mut r = Reader::new(body);
    let handshake = HandshakeHeader::read(&mut r).ok()?;
    if handshake.msg_type != HandshakeType::ClientHello
        || handshake.fragment_offset != 0
        || handshake.fragment_length != handshake.length
    {
        return None;
    }
    let hello = ClientHello::read(r.take(handshake.length as usize, "ClientHello").ok()?).ok()?;
    Some(InitialHello {
        record,
        handshake,
        hello,
    })
}

/// The HelloVerifyRequest datagram answering `initial`: its message_seq and record sequence
/// number repeat the ClientHello's (RFC 6347 §4.2.1 and erratum 5186), so that no state is
/// needed to pick them.
pub(crate) fn hello_verify_request(initial: &InitialHello, cookie: Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    HelloVerifyRequest {
        server_version: DTLS10,
        cookie,
    }
    .encode(&mut body);
    let mut fragment = Vec::with_capacity(HANDSHAKE_HEADER_LEN + body.len());
    HandshakeHeader {
        msg_type: HandshakeType::HelloVerifyRequest,
        length: body.len() as u32,
        message_seq: initial.handshake.message_seq,
        fragment_offset: 0,
        fragment_length: body.len() as u32,
    }
    .encode(&mut fragment);
    fragment.extend_from_slice(&body);
    let mut datagram = Vec::with_capacity(RECORD_HEADER_LEN + fragment.len());
    RecordHeader {
        content_type: ContentType::Handshake,
        version: DTLS10,
        epoch: 0,
        sequence: initial.record.sequence,
        length: fragment.len() as u16,
    }
    .encode(&mut datagram);
    datagram.extend_from_slice(&fragment);
    datagram
}

/// What a stateless listener does with a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum ListenOutcome {
    /// Not a usable ClientHello (or the answer would be bigger than it): drop it.
    Drop,
    /// Send this HelloVerifyRequest back to the sender; nothing is kept.
    HelloVerifyRequest(Vec<u8>),
    /// The ClientHello carries a valid cookie: make a server engine with the same provider
    /// and give it this datagram.
    Verified,
}

/// Checks the cookie of a ClientHello at the start of `datagram`, without keeping any state
/// (`DTLSv1_listen`).
pub fn listen(
    provider: &dyn CookieProvider,
    peer_addr: Option<SocketAddr>,
    datagram: &[u8],
    now: Instant,
) -> ListenOutcome {
    let Some(initial) = initial_hello(datagram) else {
        return ListenOutcome::Drop;
    };
    verify_or_challenge(provider, peer_addr, &initial, datagram.len(), now)
}

/// The shared core of [`listen`] and a server engine's first ClientHello.
pub(crate) fn verify_or_challenge(
    provider: &dyn CookieProvider,
    peer_addr: Option<SocketAddr>,
    initial: &InitialHello,
    datagram_len: usize,
    now: Instant,
) -> ListenOutcome {
    let params = hello_params(&initial.hello);
    let input = CookieInput {
        peer_addr,
        hello_params: &params,
        now,
    };
    if !initial.hello.cookie.is_empty() && provider.verify(&input, &initial.hello.cookie) {
        return ListenOutcome::Verified;
    }
    let cookie = provider.generate(&input);
    if cookie.is_empty() || cookie.len() > MAX_COOKIE_LEN {
        return ListenOutcome::Drop;
    }
    let answer = hello_verify_request(initial, cookie);
    // Never answer with more bytes than were received (no amplification).
    if answer.len() > datagram_len {
        return ListenOutcome::Drop;
    }
    ListenOutcome::HelloVerifyRequest(answer)
}

#[cfg(test)]
mod tests {
    use super::super::codec::extensions::HelloExtensions;
    use super::super::codec::record::DTLS12;
    use super::*;

    fn hello_datagram(cookie: &[u8], seq: u16) -> Vec<u8> {
        let mut body = vec![];
        ClientHello {
            client_version: DTLS12,
            random: [5; 32],
            session_id: vec![],
            cookie: cookie.to_vec(),
            cipher_suites: vec![rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
            compression_methods: vec![0],
            extensions: HelloExtensions {
                extended_master_secret: true,
                ..Default::default()
            },
        }
        .encode(&mut body);
        let mut fragment = vec![];
        HandshakeHeader {
            msg_type: HandshakeType::ClientHello,
            length: body.len() as u32,
            message_seq: seq,
            fragment_offset: 0,
            fragment_length: body.len() as u32,
        }
        .encode(&mut fragment);
        fragment.extend_from_slice(&body);
        let mut d = vec![];
        RecordHeader {
            content_type: ContentType::Handshake,
            version: DTLS12,
            epoch: 0,
            sequence: 7,
            length: fragment.len() as u16,
        }
        .encode(&mut d);
        d.extend_from_slice(&fragment);
        d
    }

    #[test]
    fn cookies_bind_the_address_and_survive_one_rotation() {
        let now = Instant::now();
        let cookies = HmacCookies::new(Duration::from_secs(30));
        let addr: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let first = hello_datagram(&[], 0);
        let ListenOutcome::HelloVerifyRequest(hvr) = listen(&cookies, Some(addr), &first, now)
        else {
            panic!("expected a HelloVerifyRequest");
        };
        assert!(hvr.len() <= first.len(), "no amplification");
        let (record, body) = records(&hvr).next().unwrap();
        assert_eq!((record.sequence, record.version), (7, DTLS10));
        let mut r = Reader::new(body);
        let h = HandshakeHeader::read(&mut r).unwrap();
        assert_eq!(h.msg_type, HandshakeType::HelloVerifyRequest);
        let cookie = HelloVerifyRequest::read(r.rest()).unwrap().cookie;
        let second = hello_datagram(&cookie, 1);
        assert_eq!(
            listen(&cookies, Some(addr), &second, now),
            ListenOutcome::Verified
        );
        let elsewhere: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        assert!(matches!(
            listen(&cookies, Some(elsewhere), &second, now),
            ListenOutcome::HelloVerifyRequest(_)
        ));
        cookies.rotate();
        assert_eq!(
            listen(&cookies, Some(addr), &second, now),
            ListenOutcome::Verified,
            "the previous secret still verifies"
        );
        // The scheduled rotation after that retires the cookie's secret.
        let later = now + Duration::from_secs(31);
        assert!(matches!(
            listen(&cookies, Some(addr), &second, later),
            ListenOutcome::HelloVerifyRequest(_)
        ));
        assert_eq!(
            listen(&cookies, Some(addr), b"garbage", now),
            ListenOutcome::Drop
        );
    }

    #[test]
    fn callbacks_and_oversized_answers() {
        let cb = CookieCallbacks {
            generate: Arc::new(|_| vec![1; 200]),
            verify: Arc::new(|_, c| c == [1; 200]),
        };
        let first = hello_datagram(&[], 0);
        assert_eq!(
            listen(&cb, None, &first, Instant::now()),
            ListenOutcome::Drop,
            "a 200-byte cookie would make the answer bigger than the hello"
        );
        let second = hello_datagram(&[1; 200], 1);
        assert_eq!(
            listen(&cb, None, &second, Instant::now()),
            ListenOutcome::Verified
        );
    }
}
