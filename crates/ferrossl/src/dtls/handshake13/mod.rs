//! The DTLS 1.3 handshake (RFC 8446 §4 over RFC 9147 §5): one type per state for each side,
//! each with a method per message it accepts. States add messages to the flight being built
//! and install keys; fragments, epochs, ACKs and retransmission belong to the engine beneath
//! ([`super::engine13`]).
//!
//! What DTLS changes against TLS 1.3, and where it is handled: the transcript hashes TLS's
//! 4-byte message headers, not DTLS's 12-byte ones (RFC 9147 §5.2, [`Transcript13`]); the
//! server's HelloRetryRequest carries a stateless cookie (§5.1, [`cookie13`]); labels use the
//! "dtls13" prefix ([`super::key_schedule13`]).

mod client;
pub mod cookie13;
pub mod resumption13;
mod server;

use std::time::Instant;

use rustls::crypto::{aws_lc_rs::kx_group, SupportedKxGroup};
use rustls::{HandshakeType, NamedGroup, SignatureScheme};

use crate::ciphers::{self, CipherInfo};
use crate::config::{Config, Role};
use crate::x509::{PKey, X509};

use super::codec::message::DigitallySigned;
use super::codec::message13::{CertificateEntry, Message13, MESSAGE_HASH};
use super::cookie::CookieProvider;
use super::epochs13::Epochs13;
use super::error::DtlsError;
use super::handshake::crypto;
use super::handshake::{verify_data_matches, SessionInfo};
use super::key_schedule::PrfHash;
use super::key_schedule13::{Secret, TrafficSecrets};
use super::record13::Protection;
use super::DtlsParams;

pub use client::ClientState13;
pub use server::ServerState13;

/// The epoch of handshake traffic (RFC 9147 §6.1); epoch 1 is 0-RTT, which ferrossl does not
/// use.
pub const HANDSHAKE_EPOCH: u64 = 2;
/// The first epoch of application data.
pub const APPLICATION_EPOCH: u64 = 3;

/// Groups for DTLS 1.3 in preference order: the post-quantum hybrid first (RFC 9147 leaves
/// the choice to TLS; draft-ietf-tls-ecdhe-mlkem), then the classic ones.
const GROUPS13: [NamedGroup; 4] = [
    NamedGroup::X25519MLKEM768,
    NamedGroup::X25519,
    NamedGroup::secp256r1,
    NamedGroup::secp384r1,
];

/// The key exchange of a group, from the crypto provider.
pub fn kx_group(group: NamedGroup) -> Option<&'static dyn SupportedKxGroup> {
    Some(match group {
        NamedGroup::X25519MLKEM768 => kx_group::X25519MLKEM768,
        NamedGroup::X25519 => kx_group::X25519,
        NamedGroup::secp256r1 => kx_group::SECP256R1,
        NamedGroup::secp384r1 => kx_group::SECP384R1,
        _ => return None,
    })
}

/// Whether a group's shares are too big for the first ClientHello (a post-quantum hybrid:
/// 1216 bytes alone).
fn is_large(group: NamedGroup) -> bool {
    group == NamedGroup::X25519MLKEM768
}

/// The groups a configuration enables for DTLS 1.3, in preference order.
pub fn groups13(config: &Config) -> Vec<NamedGroup> {
    match &config.groups {
        Some(list) => list
            .iter()
            .copied()
            .filter(|g| GROUPS13.contains(g))
            .collect(),
        None => GROUPS13.to_vec(),
    }
}

/// The TLS 1.3 suites a configuration enables, in preference order.
pub fn suites13(config: &Config) -> Vec<&'static CipherInfo> {
    ciphers::enabled(config).filter(|c| c.tls13).collect()
}

/// A suite's AEAD key length.
fn key_len(suite: &CipherInfo) -> usize {
    match suite.enc {
        ciphers::Encryption::Aes128Gcm => 16,
        ciphers::Encryption::Aes256Gcm | ciphers::Encryption::Chacha20Poly1305 => 32,
    }
}

/// Signature schemes of TLS 1.3: RSA PKCS#1 v1.5 cannot sign handshake messages any more
/// (RFC 8446 §4.2.3).
fn schemes13() -> Vec<SignatureScheme> {
    crypto::SIGNATURE_SCHEMES
        .into_iter()
        .filter(|s| {
            !matches!(
                s,
                SignatureScheme::RSA_PKCS1_SHA256
                    | SignatureScheme::RSA_PKCS1_SHA384
                    | SignatureScheme::RSA_PKCS1_SHA512
            )
        })
        .collect()
}

/// The content a CertificateVerify signs (RFC 8446 §4.4.3): 64 spaces, a context string
/// naming the signer's side, a zero byte, the transcript hash. DTLS 1.3 keeps TLS's strings.
fn certificate_verify_content(signer: Role, transcript_hash: &[u8]) -> Vec<u8> {
    let context: &[u8] = match signer {
        Role::Server => b"TLS 1.3, server CertificateVerify",
        Role::Client => b"TLS 1.3, client CertificateVerify",
    };
    let mut content = vec![0x20; 64];
    content.extend_from_slice(context);
    content.push(0);
    content.extend_from_slice(transcript_hash);
    content
}

/// Our chain as the entries of a Certificate message.
fn own_certificate_entries(chain: &[X509]) -> Vec<CertificateEntry> {
    chain
        .iter()
        .map(|c| CertificateEntry {
            cert: c.to_der().to_vec(),
            extensions: Vec::new(),
        })
        .collect()
}

/// Signs a CertificateVerify as `signer` with one of `offered`.
fn sign_certificate_verify(
    key: &PKey,
    offered: &[SignatureScheme],
    signer: Role,
    transcript_hash: &[u8],
) -> Result<DigitallySigned, DtlsError> {
    let allowed: Vec<SignatureScheme> = schemes13()
        .into_iter()
        .filter(|s| offered.contains(s))
        .collect();
    crypto::sign(
        key,
        &allowed,
        &certificate_verify_content(signer, transcript_hash),
    )?
    .ok_or(DtlsError::HandshakeFailure(
        "no signature scheme in common with the peer",
    ))
}

/// Checks the peer's CertificateVerify against its certificate `leaf`.
fn verify_certificate_verify(
    leaf: &[u8],
    signed: &DigitallySigned,
    signer: Role,
    transcript_hash: &[u8],
) -> Result<(), DtlsError> {
    if !schemes13().contains(&signed.scheme) {
        return Err(DtlsError::IllegalParameter(
            "a signature scheme TLS 1.3 does not allow",
        ));
    }
    crypto::verify(
        leaf,
        signed,
        &certificate_verify_content(signer, transcript_hash),
        "CertificateVerify signature",
    )
}

/// The handshake messages so far with TLS's 4-byte headers (RFC 9147 §5.2: DTLS's
/// message_seq and fragment fields stay out of the transcript).
#[derive(Default)]
pub struct Transcript13 {
    bytes: Vec<u8>,
}

impl Transcript13 {
    /// Appends one message.
    pub fn add(&mut self, msg_type: HandshakeType, body: &[u8]) {
        self.bytes.push(u8::from(msg_type));
        self.bytes
            .extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        self.bytes.extend_from_slice(body);
    }

    /// The hash of everything so far.
    pub fn hash(&self, hash: PrfHash) -> Vec<u8> {
        hash.hash(&self.bytes)
    }

    /// After a HelloRetryRequest the first ClientHello is replaced by a message_hash message
    /// holding its hash (RFC 8446 §4.4.1).
    pub fn replace_with_message_hash(&mut self, hash: PrfHash) {
        let first = self.hash(hash);
        self.bytes.clear();
        self.add_message_hash(&first);
    }

    /// The hash of everything so far followed by a message of type `msg_type` whose body is
    /// `full_len` bytes long but of which only `partial` is given (a ClientHello up to its
    /// PSK binders, RFC 8446 §4.2.11.2).
    pub fn hash_with_partial(
        &self,
        hash: PrfHash,
        msg_type: HandshakeType,
        full_len: usize,
        partial: &[u8],
    ) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        bytes.push(u8::from(msg_type));
        bytes.extend_from_slice(&(full_len as u32).to_be_bytes()[1..]);
        bytes.extend_from_slice(partial);
        hash.hash(&bytes)
    }

    /// Starts with the message_hash of a first ClientHello whose hash is `hello_hash` (a
    /// stateless server rebuilding the transcript from its cookie).
    pub fn add_message_hash(&mut self, hello_hash: &[u8]) {
        self.add(HandshakeType::from(MESSAGE_HASH), hello_hash);
    }
}

/// One handshake message of a flight, as the engine fragments and resends it.
#[derive(Clone, Debug)]
pub struct OutMessage {
    /// The epoch it goes out in.
    pub epoch: u64,
    /// Its type.
    pub msg_type: HandshakeType,
    /// Its message_seq.
    pub message_seq: u16,
    /// Its body.
    pub body: Vec<u8>,
}

/// The flight being built.
#[derive(Default)]
pub struct FlightBuilder13 {
    messages: Vec<OutMessage>,
    next_message_seq: u16,
    complete: Option<bool>,
}

impl FlightBuilder13 {
    /// Numbers our next message `seq` (a stateless server answers the ClientHello with its
    /// message_seq, as in DTLS 1.2).
    pub fn set_next_message_seq(&mut self, seq: u16) {
        self.next_message_seq = seq;
    }

    /// A post-handshake message (RFC 8446 §4.6) as a flight of its own, in `epoch`; it is
    /// kept until acknowledged.
    pub fn post_handshake(&mut self, epoch: u64, message: &Message13) -> Result<(), DtlsError> {
        let mut body = Vec::new();
        message.encode(&mut body);
        let message_seq = self.next_message_seq;
        // A peer can drive this up (KeyUpdates it asks us to answer): fail, never wrap.
        self.next_message_seq = message_seq
            .checked_add(1)
            .ok_or_else(|| DtlsError::Internal("handshake message numbers exhausted".into()))?;
        self.messages.push(OutMessage {
            epoch,
            msg_type: message.msg_type(),
            message_seq,
            body,
        });
        self.complete = Some(true);
        Ok(())
    }

    /// The completed flight and whether it waits for an answer (a flight that ends the
    /// handshake waits only for an ACK).
    pub fn take(&mut self) -> Option<(Vec<OutMessage>, bool)> {
        let awaits_reply = self.complete.take()?;
        Some((std::mem::take(&mut self.messages), awaits_reply))
    }
}

/// The secrets an established association keeps.
pub struct Secrets13 {
    /// The suite.
    pub suite: &'static CipherInfo,
    /// The current application traffic secrets, which KeyUpdate replaces (RFC 8446 §7.2).
    pub application: TrafficSecrets,
    /// The exporter master secret (RFC 8446 §7.5).
    pub exporter: Vec<u8>,
    /// The resumption master secret, which tickets' PSKs come from (RFC 8446 §4.6.1).
    pub resumption: Vec<u8>,
}

/// What a state may touch.
pub struct Context13<'a> {
    /// Our side.
    pub role: Role,
    /// The context's configuration.
    pub config: &'a Config,
    /// The engine's parameters.
    pub params: &'a DtlsParams,
    /// The transcript.
    pub transcript: &'a mut Transcript13,
    /// The flight being built.
    pub flight: &'a mut FlightBuilder13,
    /// The record layer, for new keys.
    pub records: &'a mut Epochs13,
    /// Negotiated results.
    pub session: &'a mut SessionInfo,
    /// The secrets, once the handshake derived them.
    pub secrets: &'a mut Option<Secrets13>,
    /// Server: makes and checks HelloRetryRequest cookies.
    pub cookies: &'a dyn CookieProvider,
    /// The time, for cookies.
    pub now: Instant,
}

impl Context13<'_> {
    /// The wall-clock time in seconds, for tickets.
    fn now_secs(&self) -> u64 {
        (self.params.wall_clock)().as_secs()
    }

    /// Checks the peer's Finished (RFC 8446 §4.4.4) against its handshake traffic secret and
    /// the transcript so far, then records it and adds it to the transcript.
    fn check_peer_finished(
        &mut self,
        hash: PrfHash,
        peer_secret: &[u8],
        verify_data: &[u8],
        raw: &[u8],
    ) -> Result<(), DtlsError> {
        let expected = Secret::new(hash, peer_secret).finished(&self.transcript.hash(hash));
        if !verify_data_matches(&expected, verify_data) {
            return Err(DtlsError::DecryptError("Finished verify_data mismatch"));
        }
        self.session.peer_finished = Some(verify_data.to_vec());
        self.transcript.add(HandshakeType::Finished, raw);
        Ok(())
    }

    /// A resumed session's peer chain, as it was verified when the session was made.
    fn restore_peer_chain(&mut self, chain: &[Vec<u8>]) {
        self.session.restore_peer_chain(chain);
        self.session.resumed = true;
    }

    /// Adds a message to the flight (in the current write epoch) and the transcript.
    fn send(&mut self, message: &Message13) {
        let mut body = Vec::new();
        message.encode(&mut body);
        if let Message13::Finished(verify_data) = message {
            self.session.finished = Some(verify_data.clone());
        }
        self.transcript.add(message.msg_type(), &body);
        self.send_outside_transcript(message.msg_type(), body);
    }

    /// Adds a message to the flight only (a stateless HelloRetryRequest, post-handshake
    /// messages).
    fn send_outside_transcript(&mut self, msg_type: HandshakeType, body: Vec<u8>) {
        let seq = self.flight.next_message_seq;
        self.flight.next_message_seq += 1;
        self.flight.messages.push(OutMessage {
            epoch: self.records.write_epoch(),
            msg_type,
            message_seq: seq,
            body,
        });
    }

    /// Closes the flight.
    fn finish_flight(&mut self, awaits_reply: bool) {
        self.flight.complete = Some(awaits_reply);
    }

    /// Installs a pair of traffic secrets as `epoch`'s keys: ours to write, the peer's to
    /// read.
    fn install(
        &mut self,
        epoch: u64,
        suite: &CipherInfo,
        secrets: &TrafficSecrets,
    ) -> Result<(), DtlsError> {
        let (ours, theirs) = secrets.split(self.role);
        self.records.install_read(protection(epoch, suite, theirs)?);
        self.records.install_write(protection(epoch, suite, ours)?);
        Ok(())
    }
}

impl TrafficSecrets {
    /// Our sending secret and the peer's, for `role`.
    pub fn split(&self, role: Role) -> (&[u8], &[u8]) {
        match role {
            Role::Client => (&self.client, &self.server),
            Role::Server => (&self.server, &self.client),
        }
    }
}

/// The record protection of `epoch` from one direction's traffic secret.
pub fn protection(epoch: u64, suite: &CipherInfo, secret: &[u8]) -> Result<Protection, DtlsError> {
    let keys = Secret::new(PrfHash::of(suite), secret).traffic_keys(key_len(suite));
    Protection::new(epoch, suite.enc, &keys)
}

/// Either side's handshake.
pub enum Handshake13 {
    /// We are the client.
    Client(Box<ClientState13>),
    /// We are the server.
    Server(Box<ServerState13>),
    /// Gone after a fatal error.
    Failed,
}

impl Handshake13 {
    /// Hands over the next handshake message, which arrived in `epoch` with body `raw`.
    pub fn handle(
        self,
        message: Message13,
        raw: &[u8],
        epoch: u64,
        cx: &mut Context13<'_>,
    ) -> Result<Self, DtlsError> {
        check_epoch(&message, epoch)?;
        match self {
            Handshake13::Client(s) => s
                .handle(message, raw, cx)
                .map(|s| Handshake13::Client(Box::new(s))),
            Handshake13::Server(s) => s
                .handle(message, raw, cx)
                .map(|s| Handshake13::Server(Box::new(s))),
            Handshake13::Failed => Err(DtlsError::Internal("handshake already failed".into())),
        }
    }

    /// What the handshake waits for, for error messages.
    pub fn expects(&self) -> &'static str {
        match self {
            Handshake13::Client(s) => s.expects(),
            Handshake13::Server(s) => s.expects(),
            Handshake13::Failed => "nothing (the handshake failed)",
        }
    }

    /// Whether the handshake finished.
    pub fn is_established(&self) -> bool {
        match self {
            Handshake13::Client(s) => matches!(**s, ClientState13::Established),
            Handshake13::Server(s) => matches!(**s, ServerState13::Established),
            Handshake13::Failed => false,
        }
    }
}

/// Each message has its epoch (RFC 9147 §6.1): the hellos in the clear, the rest of the
/// handshake under handshake keys, post-handshake messages under application keys. A
/// message in another epoch was forged or misrouted.
fn check_epoch(message: &Message13, epoch: u64) -> Result<(), DtlsError> {
    let allowed = match message {
        Message13::ClientHello(_) | Message13::ServerHello(_) => epoch == 0,
        Message13::NewSessionTicket(_) | Message13::KeyUpdate(_) => epoch >= APPLICATION_EPOCH,
        _ => epoch == HANDSHAKE_EPOCH,
    };
    if allowed {
        Ok(())
    } else {
        Err(DtlsError::UnexpectedMessage {
            expected: "a handshake message in its epoch",
            got: format!("{:?} in epoch {epoch}", message.msg_type()),
        })
    }
}

/// The error for a message the current state does not accept.
fn unexpected(expected: &'static str, got: &Message13) -> DtlsError {
    DtlsError::UnexpectedMessage {
        expected,
        got: format!("{:?}", got.msg_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_uses_tls_headers_and_message_hash() {
        let mut t = Transcript13::default();
        t.add(HandshakeType::ClientHello, &[1, 2, 3]);
        assert_eq!(t.bytes, [1, 0, 0, 3, 1, 2, 3]);
        let first = PrfHash::Sha256.hash(&t.bytes);
        t.replace_with_message_hash(PrfHash::Sha256);
        assert_eq!(t.bytes[..4], [254, 0, 0, 32]);
        assert_eq!(t.bytes[4..], first[..]);
    }

    #[test]
    fn every_group_has_a_provider_and_only_the_hybrid_is_large() {
        for g in GROUPS13 {
            assert_eq!(kx_group(g).unwrap().name(), g);
            assert_eq!(is_large(g), g == NamedGroup::X25519MLKEM768);
        }
        assert!(!schemes13().contains(&SignatureScheme::RSA_PKCS1_SHA256));
    }

    #[test]
    fn messages_out_of_their_epoch_are_refused() {
        let finished = Message13::Finished(vec![0; 32]);
        assert!(check_epoch(&finished, HANDSHAKE_EPOCH).is_ok());
        assert!(check_epoch(&finished, 0).is_err());
        assert!(check_epoch(&finished, APPLICATION_EPOCH).is_err());
        assert!(check_epoch(&Message13::KeyUpdate(false), HANDSHAKE_EPOCH).is_err());
        assert!(check_epoch(&Message13::KeyUpdate(false), 4).is_ok());
    }
}
