//! The cookie of a stateless DTLS 1.3 server's HelloRetryRequest (RFC 9147 §5.1, RFC 8446
//! §4.2.2). It carries what the server needs to go on when the second ClientHello comes
//! back, so nothing is kept meanwhile: the suite and group the HelloRetryRequest named, and
//! the hash of the first ClientHello, which starts the transcript (§4.4.1). A MAC from the
//! server's [`CookieProvider`] binds it to the client's address and random.

use std::net::SocketAddr;
use std::time::Instant;

use rustls::{CipherSuite, NamedGroup};

use super::super::codec::{put_bytes, put_u16, Reader};
use super::super::cookie::{CookieInput, CookieProvider};

/// What a HelloRetryRequest decided, carried by its cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryState {
    /// The suite the HelloRetryRequest named.
    pub suite: CipherSuite,
    /// The group whose share it asked for, if it asked for one.
    pub group: Option<NamedGroup>,
    /// The hash of the first ClientHello.
    pub hello_hash: Vec<u8>,
}

impl RetryState {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u16(&mut out, self.suite.into());
        put_u16(&mut out, self.group.map_or(0, u16::from));
        put_bytes(&mut out, 1, &self.hello_hash);
        out
    }
}

fn mac_input<'a>(peer_addr: Option<SocketAddr>, bound: &'a [u8], now: Instant) -> CookieInput<'a> {
    CookieInput {
        peer_addr,
        hello_params: bound,
        now,
    }
}

/// The cookie for `state`, bound to the client's address and random. Empty when the
/// provider made no MAC.
pub fn make(
    provider: &dyn CookieProvider,
    peer_addr: Option<SocketAddr>,
    client_random: &[u8; 32],
    state: &RetryState,
    now: Instant,
) -> Vec<u8> {
    let mut cookie = state.encode();
    let mut bound = cookie.clone();
    bound.extend_from_slice(client_random);
    let tag = provider.generate(&mac_input(peer_addr, &bound, now));
    if tag.is_empty() {
        return Vec::new();
    }
    cookie.extend_from_slice(&tag);
    cookie
}

/// The state a cookie carries, if this provider made it for this client.
pub fn open(
    provider: &dyn CookieProvider,
    peer_addr: Option<SocketAddr>,
    client_random: &[u8; 32],
    cookie: &[u8],
    now: Instant,
) -> Option<RetryState> {
    let mut r = Reader::new(cookie);
    let suite = CipherSuite::from(r.u16("cookie suite").ok()?);
    let group = match r.u16("cookie group").ok()? {
        0 => None,
        g => Some(NamedGroup::from(g)),
    };
    let hello_hash = r.prefixed(1, "cookie hash").ok()?.to_vec();
    let tag = r.rest();
    let state_len = cookie.len() - tag.len();
    let mut bound = cookie[..state_len].to_vec();
    bound.extend_from_slice(client_random);
    provider
        .verify(&mac_input(peer_addr, &bound, now), tag)
        .then_some(RetryState {
            suite,
            group,
            hello_hash,
        })
}

#[cfg(test)]
mod tests {
    use super::super::super::cookie::HmacCookies;
    use super::*;
    use std::time::Duration;

    #[test]
    fn cookies_carry_the_state_and_bind_address_and_random() {
        let provider = HmacCookies::new(Duration::from_secs(60));
        let now = Instant::now();
        let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let state = RetryState {
            suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
            group: Some(NamedGroup::X25519MLKEM768),
            hello_hash: vec![7; 32],
        };
        let cookie = make(&provider, Some(addr), &[1; 32], &state, now);
        assert_eq!(
            open(&provider, Some(addr), &[1; 32], &cookie, now),
            Some(state)
        );
        let other: SocketAddr = "127.0.0.2:4433".parse().unwrap();
        assert_eq!(open(&provider, Some(other), &[1; 32], &cookie, now), None);
        assert_eq!(open(&provider, Some(addr), &[2; 32], &cookie, now), None);
        let mut forged = cookie.clone();
        forged[3] ^= 1;
        assert_eq!(open(&provider, Some(addr), &[1; 32], &forged, now), None);
        assert_eq!(open(&provider, Some(addr), &[1; 32], &[0, 1], now), None);
    }
}
