//! DTLS 1.3 resumption with tickets (RFC 8446 §2.2, §4.2.11, §4.6.1): after a handshake the
//! server sends a NewSessionTicket whose ticket seals the session's state under the
//! context's rotating ticket keys; the client keeps it in its [`crate::session::Session`]
//! and offers it in a later ClientHello as a PSK, proven by a binder over that hello. A
//! resumed handshake skips the certificates and runs (EC)DHE all the same (psk_dhe_ke only,
//! so every resumption keeps forward secrecy).

use rustls::{CipherSuite, HandshakeType};

use crate::ciphers::CipherInfo;
use crate::session::{DtlsSession, TimedTicketer};

use super::super::codec::extensions::HelloExtensions;
use super::super::codec::extensions13::{
    encode_psk_offer, read_psk_modes, read_psk_offer, PskIdentity, PskOffer, PRE_SHARED_KEY,
    PSK_DHE_KE, PSK_KEY_EXCHANGE_MODES,
};
use super::super::codec::message::ClientHello;
use super::super::codec::message13::NewSessionTicket13;
use super::super::codec::{put_bytes, put_u16, Reader};
use super::super::error::DtlsError;
use super::super::handshake::verify_data_matches;
use super::super::key_schedule::PrfHash;
use super::super::key_schedule13::{EarlySecret, Secret};
use super::super::DtlsParams;
use super::Transcript13;
use crate::config::Config;
use crate::constants::OP_NO_TICKET;

/// The version of the state encoding (DTLS 1.2's is 1, so neither takes the other's).
const STATE_VERSION: u8 = 2;
/// How long a ticket is good for at most: seven days (RFC 8446 §4.6.1).
const MAX_LIFETIME: u32 = 7 * 24 * 3600;

/// What resuming needs: the suite (its hash goes with the PSK), the PSK, the ticket's age
/// obfuscation, when it was issued, and what the full handshake established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumable {
    /// The suite the session was made with.
    pub suite: CipherSuite,
    /// The PSK: HKDF-Expand-Label(resumption_master_secret, "resumption", nonce).
    pub psk: Vec<u8>,
    /// The ticket's ticket_age_add.
    pub age_add: u32,
    /// When the ticket was issued (the client: received), in seconds since the epoch.
    pub issued: u64,
    /// The SNI name the session was made for (empty: none).
    pub server_name: Vec<u8>,
    /// The peer's certificates then, its own first.
    pub peer_chain: Vec<Vec<u8>>,
}

impl Resumable {
    /// version ‖ suite ‖ psk ‖ age_add ‖ issued ‖ server name ‖ peer chain.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![STATE_VERSION];
        put_u16(&mut out, self.suite.into());
        put_bytes(&mut out, 1, &self.psk);
        out.extend_from_slice(&self.age_add.to_be_bytes());
        out.extend_from_slice(&self.issued.to_be_bytes());
        put_bytes(&mut out, 2, &self.server_name);
        for cert in &self.peer_chain {
            put_bytes(&mut out, 3, cert);
        }
        out
    }

    /// Reads an encoding; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        if r.u8("version").ok()? != STATE_VERSION {
            return None;
        }
        let suite = CipherSuite::from(r.u16("suite").ok()?);
        let psk = r.prefixed(1, "psk").ok()?.to_vec();
        let age_add = r.u32("age_add").ok()?;
        let issued = r.u64("issued").ok()?;
        let server_name = r.prefixed(2, "server name").ok()?.to_vec();
        let mut peer_chain = Vec::new();
        while !r.is_empty() {
            peer_chain.push(r.prefixed(3, "certificate").ok()?.to_vec());
        }
        Some(Self {
            suite,
            psk,
            age_add,
            issued,
            server_name,
            peer_chain,
        })
    }
}

/// The binder of `psk` over a ClientHello (RFC 8446 §4.2.11.2): Finished's HMAC, keyed from
/// the PSK's binder key, over the transcript so far (a retry's messages included) and the
/// hello up to its binders.
fn binder(
    hash: PrfHash,
    psk: &[u8],
    transcript: &Transcript13,
    hello_body: &[u8],
    binders_len: usize,
) -> Vec<u8> {
    let binder_key = EarlySecret::new(hash, Some(psk)).resumption_binder_key();
    let partial = &hello_body[..hello_body.len() - binders_len];
    let th =
        transcript.hash_with_partial(hash, HandshakeType::ClientHello, hello_body.len(), partial);
    Secret::new(hash, &binder_key).finished(&th)
}

/// The length of a pre_shared_key's binders list on the wire.
fn binders_len(binders: &[Vec<u8>]) -> usize {
    2 + binders.iter().map(|b| 1 + b.len()).sum::<usize>()
}

/// Client: the session to offer from `set_session`, if it is a DTLS 1.3 one whose suite we
/// still enable.
pub fn offer(
    params: &DtlsParams,
    suites: &[&'static CipherInfo],
    now: u64,
) -> Option<(Resumable, Vec<u8>)> {
    let session = params.session.as_ref()?.dtls(now)?;
    let state = Resumable::decode(&session.state)?;
    suites
        .iter()
        .any(|s| s.suite == state.suite)
        .then_some(())?;
    Some((state, session.ticket?))
}

/// Client: adds psk_key_exchange_modes and pre_shared_key (last, as RFC 8446 §4.2.11 asks)
/// to `hello`, with the binder over `transcript` and the hello itself.
pub fn add_offer(
    hello: &mut ClientHello,
    state: &Resumable,
    ticket: &[u8],
    transcript: &Transcript13,
    now_ms: u64,
) {
    let hash = PrfHash::of(crate::ciphers::info(state.suite).expect("an enabled suite"));
    let age = now_ms.saturating_sub(state.issued * 1000) as u32;
    hello
        .extensions
        .set_raw(PSK_KEY_EXCHANGE_MODES, vec![1, PSK_DHE_KE]);
    let mut offer = PskOffer {
        identities: vec![PskIdentity {
            identity: ticket.to_vec(),
            obfuscated_ticket_age: age.wrapping_add(state.age_add),
        }],
        binders: vec![vec![0; hash.hash(b"").len()]],
    };
    set_psk_last(&mut hello.extensions, &offer);
    let mut body = Vec::new();
    hello.encode(&mut body);
    offer.binders[0] = binder(
        hash,
        &state.psk,
        transcript,
        &body,
        binders_len(&offer.binders),
    );
    set_psk_last(&mut hello.extensions, &offer);
}

/// Puts pre_shared_key at the end of the extensions, where it must be.
pub fn set_psk_last(extensions: &mut HelloExtensions, offer: &PskOffer) {
    extensions.unknown.retain(|(t, _)| *t != PRE_SHARED_KEY);
    let mut body = Vec::new();
    encode_psk_offer(offer, &mut body);
    extensions.unknown.push((PRE_SHARED_KEY, body));
}

/// Server: the session a ClientHello offers and proves, if its ticket opens, it resumes
/// with psk_dhe_ke, for the same server name, with a suite of `suite`'s hash. An offer whose
/// binder does not verify is an attack or a bug: fatal (RFC 8446 §4.2.11).
pub fn accept(
    config: &Config,
    hello: &ClientHello,
    raw: &[u8],
    suite: &CipherInfo,
    server_name: &[u8],
    transcript: &Transcript13,
    now: u64,
) -> Result<Option<Resumable>, DtlsError> {
    let ext = &hello.extensions;
    let (Some(modes), Some(offer)) = (ext.raw(PSK_KEY_EXCHANGE_MODES), ext.raw(PRE_SHARED_KEY))
    else {
        return Ok(None);
    };
    if ext.unknown.last().map(|(t, _)| *t) != Some(PRE_SHARED_KEY) {
        return Err(DtlsError::IllegalParameter(
            "pre_shared_key is not the last extension",
        ));
    }
    let offer = read_psk_offer(offer)?;
    if !read_psk_modes(modes)?.contains(&PSK_DHE_KE) || config.options & OP_NO_TICKET != 0 {
        return Ok(None);
    }
    let Some(state) = TimedTicketer::of(config)
        .decrypt_at(&offer.identities[0].identity, now)
        .and_then(|plain| Resumable::decode(&plain))
    else {
        return Ok(None);
    };
    let hash = PrfHash::of(suite);
    let same_hash = crate::ciphers::info(state.suite).is_some_and(|s| PrfHash::of(s) == hash);
    if !same_hash || state.server_name != server_name {
        return Ok(None);
    }
    let expected = binder(
        hash,
        &state.psk,
        transcript,
        raw,
        binders_len(&offer.binders),
    );
    if !verify_data_matches(&expected, &offer.binders[0]) {
        return Err(DtlsError::DecryptError("PSK binder mismatch"));
    }
    Ok(Some(state))
}

/// Server: a NewSessionTicket for the session just established, sealed with the context's
/// ticket keys; `None` when tickets are off or sealing fails.
pub fn issue(
    config: &Config,
    suite: &CipherInfo,
    resumption_master: &[u8],
    server_name: &[u8],
    peer_chain: Vec<Vec<u8>>,
    now: u64,
) -> Option<NewSessionTicket13> {
    if config.options & OP_NO_TICKET != 0 {
        return None;
    }
    let mut age_add = [0u8; 4];
    aws_lc_rs::rand::fill(&mut age_add).ok()?;
    // One ticket per connection: its nonce need only differ from none.
    let nonce = vec![0];
    let state = Resumable {
        suite: suite.suite,
        psk: Secret::new(PrfHash::of(suite), resumption_master).resumption_psk(&nonce),
        age_add: u32::from_be_bytes(age_add),
        issued: now,
        server_name: server_name.to_vec(),
        peer_chain,
    };
    let ticket = TimedTicketer::of(config).encrypt_at(&state.encode(), now)?;
    Some(NewSessionTicket13 {
        lifetime: config.session_timeout.min(u64::from(MAX_LIFETIME)) as u32,
        age_add: state.age_add,
        nonce,
        ticket,
        extensions: Vec::new(),
    })
}

/// Client: keeps a ticket in the connection's session for a later `set_session`.
pub fn store(
    params: &DtlsParams,
    config: &Config,
    ticket: &NewSessionTicket13,
    suite: &CipherInfo,
    resumption_master: &[u8],
    peer_chain: Vec<Vec<u8>>,
    now: u64,
) {
    let (Some(session), false) = (&params.session, ticket.lifetime == 0) else {
        return;
    };
    let state = Resumable {
        suite: suite.suite,
        psk: Secret::new(PrfHash::of(suite), resumption_master).resumption_psk(&ticket.nonce),
        age_add: ticket.age_add,
        issued: now,
        server_name: Vec::new(),
        peer_chain,
    };
    let lifetime = u64::from(ticket.lifetime.min(MAX_LIFETIME)).min(config.session_timeout);
    session.set_dtls(
        DtlsSession {
            session_id: Vec::new(),
            ticket: Some(ticket.ticket.clone()),
            state: state.encode(),
        },
        now,
        lifetime,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_is_not_a_dtls12_one() {
        let state = Resumable {
            suite: CipherSuite::TLS13_AES_256_GCM_SHA384,
            psk: vec![3; 48],
            age_add: 0xDEAD_BEEF,
            issued: 1_700_000_000,
            server_name: b"localhost".to_vec(),
            peer_chain: vec![vec![0x30, 1], vec![0x30, 2, 3]],
        };
        assert_eq!(Resumable::decode(&state.encode()), Some(state.clone()));
        let mut v1 = state.encode();
        v1[0] = 1;
        assert_eq!(Resumable::decode(&v1), None);
    }
}
