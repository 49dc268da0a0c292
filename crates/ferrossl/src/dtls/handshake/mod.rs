//! The DTLS 1.2 handshake (RFC 6347 §4.2, RFC 5246 §7.3): one type per state for each side,
//! each with a method per message it accepts, returning the next state's type, so a transition
//! the protocol does not have cannot be written. States add messages to the flight being built
//! and say when it is complete; fragments, epochs and retransmission belong to the layer
//! beneath ([`super::flight`]).

mod client;
pub(crate) mod crypto;
mod resumption;
mod server;

use std::sync::Arc;

use rustls::{CipherSuite, HandshakeType, NamedGroup};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::ServerName;

use crate::ciphers::{self, CipherInfo};
use crate::config::{Config, Role, VerifySettings};
use crate::constants::OP_CIPHER_SERVER_PREFERENCE;
use crate::tls::AlpnDecision;
use crate::verify::{ChainVerifier, LeafKeyUsage, Purpose, VerifyOutcome};
use crate::x509::{X509Name, X509};

use super::codec::extensions::{HelloExtensions, UseSrtp};
use super::codec::message::{ClientHello, Message};
use super::codec::record::{HandshakeHeader, HANDSHAKE_HEADER_LEN};
use super::error::DtlsError;
use super::flight::FlightItem;
use super::key_schedule::{KeySchedule, PrfHash};
use super::record::{Aead, RecordLayer};
use super::srtp::SrtpProfile;
use super::DtlsParams;

pub use client::ClientState;
pub use crypto::SUPPORTED_GROUPS;
pub use server::ServerState;

/// A handshake message as it goes into the transcript and onto the wire unfragmented: header
/// with fragment_offset 0 and fragment_length = length (RFC 6347 §4.2.6), then the body.
pub fn encode_message(msg_type: HandshakeType, message_seq: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HANDSHAKE_HEADER_LEN + body.len());
    HandshakeHeader {
        msg_type,
        length: body.len() as u32,
        message_seq,
        fragment_offset: 0,
        fragment_length: body.len() as u32,
    }
    .encode(&mut out);
    out.extend_from_slice(body);
    out
}

/// The handshake messages so far, each as if sent in one fragment (RFC 6347 §4.2.6). Kept as
/// bytes because the hash is only known once the suite is chosen, and CertificateVerify signs
/// the messages themselves.
#[derive(Default)]
pub struct Transcript {
    bytes: Vec<u8>,
    last_start: usize,
}

impl Transcript {
    /// Appends one encoded message.
    pub fn add(&mut self, message: &[u8]) {
        self.last_start = self.bytes.len();
        self.bytes.extend_from_slice(message);
    }

    /// Starts over (the first ClientHello and the HelloVerifyRequest are left out,
    /// RFC 6347 §4.2.1).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Everything so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Everything before the last message added.
    pub fn bytes_before_last(&self) -> &[u8] {
        &self.bytes[..self.last_start]
    }

    /// The hash of everything so far.
    pub fn hash(&self, hash: PrfHash) -> Vec<u8> {
        hash.hash(&self.bytes)
    }

    /// The hash of everything before the last message (what the peer's Finished covers).
    pub fn hash_before_last(&self, hash: PrfHash) -> Vec<u8> {
        hash.hash(self.bytes_before_last())
    }
}

/// The flight being built.
#[derive(Default)]
pub struct FlightBuilder {
    items: Vec<FlightItem>,
    next_message_seq: u16,
    /// Set when the flight is complete: whether it waits for an answer.
    complete: Option<bool>,
}

impl FlightBuilder {
    /// Numbers our next message `seq` (a server answers with the ClientHello's message_seq,
    /// RFC 6347 §4.2.1).
    pub fn set_next_message_seq(&mut self, seq: u16) {
        self.next_message_seq = seq;
    }

    /// The completed flight and whether it waits for an answer.
    pub fn take(&mut self) -> Option<(Vec<FlightItem>, bool)> {
        let awaits_reply = self.complete.take()?;
        Some((std::mem::take(&mut self.items), awaits_reply))
    }
}

/// What the handshake negotiated, read by the engine's accessors.
#[derive(Default)]
pub struct SessionInfo {
    /// The suite.
    pub suite: Option<&'static CipherInfo>,
    /// ClientHello.random.
    pub client_random: Option<[u8; 32]>,
    /// ServerHello.random.
    pub server_random: Option<[u8; 32]>,
    /// The ECDHE group.
    pub group: Option<NamedGroup>,
    /// The master secret and randoms, once the handshake finished.
    pub keys: Option<KeySchedule>,
    /// The chain the peer presented, its own certificate first.
    pub peer_chain: Vec<X509>,
    /// How the peer's chain fared.
    pub verify_outcome: Option<VerifyOutcome>,
    /// The SRTP profile use_srtp selected.
    pub srtp_profile: Option<SrtpProfile>,
    /// The ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// Server: the name the client asked for (SNI).
    pub server_name: Option<String>,
    /// Client: the CA names of the server's CertificateRequest.
    pub client_ca_names: Option<Vec<X509Name>>,
    /// Whether the handshake resumed a session (an abbreviated handshake).
    pub resumed: bool,
    /// The verify_data of the Finished we sent.
    pub finished: Option<Vec<u8>>,
    /// The verify_data of the peer's Finished, once it checked out.
    pub peer_finished: Option<Vec<u8>>,
}

impl SessionInfo {
    /// The peer's chain as DER, for a session's state or ticket.
    pub fn peer_chain_der(&self) -> Vec<Vec<u8>> {
        self.peer_chain
            .iter()
            .map(|c| c.to_der().to_vec())
            .collect()
    }

    /// A resumed session's peer chain, as it was verified when the session was made.
    pub fn restore_peer_chain(&mut self, chain: &[Vec<u8>]) {
        self.peer_chain = chain
            .iter()
            .filter_map(|d| X509::from_der(d).ok())
            .collect();
    }
}

/// The suite a server picks among `ours` (its suites usable here, in its order) and the
/// client's `offered`: by the client's preference unless OP_CIPHER_SERVER_PREFERENCE.
pub(crate) fn pick_suite(
    config: &Config,
    ours: &[&'static CipherInfo],
    offered: &[CipherSuite],
) -> Result<&'static CipherInfo, DtlsError> {
    let chosen = if config.options & OP_CIPHER_SERVER_PREFERENCE != 0 {
        ours.iter().copied().find(|c| offered.contains(&c.suite))
    } else {
        offered
            .iter()
            .find_map(|s| ours.iter().copied().find(|c| c.suite == *s))
    };
    chosen.ok_or(DtlsError::NoSharedCipher)
}

/// The servername callback may switch a server to another configuration for this handshake
/// (virtual hosting by SNI name, RFC 6066 §3), before anything is chosen from either.
pub(crate) fn run_servername_callback(
    hello: &ClientHello,
    config: &mut Arc<Config>,
    params: &mut DtlsParams,
) -> Result<(), DtlsError> {
    let Some(callback) = params.servername.clone() else {
        return Ok(());
    };
    let ext = &hello.extensions;
    let name = ext
        .server_name
        .as_deref()
        .and_then(|n| std::str::from_utf8(n).ok());
    let alpn = ext.alpn.as_deref().unwrap_or_default();
    let switched = callback(name.filter(|n| !n.is_empty()), alpn).map_err(|e| match e {
        crate::Error::Callback(message) => DtlsError::Callback(message),
        other => DtlsError::Callback(format!("servername callback: {other}")),
    })?;
    if let Some(switched) = switched {
        // The pair was checked when the context's configuration was sealed.
        if !matches!(switched.config.identity, Ok(Some(_))) {
            return Err(DtlsError::Callback(
                "the servername callback's context has no matching certificate and key".into(),
            ));
        }
        *config = switched.config;
        params.alpn_protocols = switched.alpn_protocols;
        params.alpn_select = switched.alpn_select;
    }
    Ok(())
}

/// The name a client sends as SNI: its server name when that is a DNS name (RFC 6066 §3
/// carries no addresses).
pub(crate) fn sni_to_send(params: &DtlsParams) -> Option<Vec<u8>> {
    params
        .server_name
        .as_deref()
        .filter(|n| matches!(ServerName::try_from(*n), Ok(ServerName::DnsName(_))))
        .map(|n| n.as_bytes().to_vec())
}

/// The SRTP profile a server picks (RFC 5764 §4.1.1): its first one the client offers.
pub(crate) fn choose_srtp(offer: Option<&UseSrtp>, params: &DtlsParams) -> Option<SrtpProfile> {
    let offer = offer?;
    params
        .srtp_profiles
        .iter()
        .copied()
        .find(|p| offer.profiles.contains(&p.id()))
}

/// The host name a ClientHello's server_name asks for (RFC 6066 §3), if any.
pub(crate) fn requested_server_name(ext: &HelloExtensions) -> Result<Option<String>, DtlsError> {
    ext.server_name
        .as_ref()
        .filter(|n| !n.is_empty())
        .map(|n| {
            String::from_utf8(n.clone())
                .map_err(|_| DtlsError::IllegalParameter("server_name is not a host name"))
        })
        .transpose()
}

/// What a state may touch.
pub struct Context<'a> {
    /// Our side.
    pub role: Role,
    /// The context's configuration.
    pub config: &'a Config,
    /// The engine's parameters.
    pub params: &'a DtlsParams,
    /// The transcript.
    pub transcript: &'a mut Transcript,
    /// The flight being built.
    pub flight: &'a mut FlightBuilder,
    /// The record layer, for new keys.
    pub records: &'a mut RecordLayer,
    /// Negotiated results.
    pub session: &'a mut SessionInfo,
}

impl Context<'_> {
    /// Adds a message to the flight and the transcript.
    fn send(&mut self, message: &Message) {
        let mut body = Vec::new();
        message.encode(&mut body);
        if let Message::Finished(verify_data) = message {
            self.session.finished = Some(verify_data.clone());
        }
        let seq = self.flight.next_message_seq;
        self.flight.next_message_seq += 1;
        let encoded = encode_message(message.msg_type(), seq, &body);
        self.transcript.add(&encoded);
        self.flight.items.push(FlightItem::Handshake {
            epoch: self.records.write_epoch(),
            message: encoded,
        });
    }

    /// Adds ChangeCipherSpec; what follows goes out under the new keys.
    fn change_cipher_spec(&mut self) {
        self.flight.items.push(FlightItem::ChangeCipherSpec {
            epoch: self.records.write_epoch(),
        });
        self.records.activate_write();
    }

    /// Closes the flight.
    fn finish_flight(&mut self, awaits_reply: bool) {
        self.flight.complete = Some(awaits_reply);
    }

    /// Installs epoch 1's keys from the key block.
    fn install_keys(&mut self, keys: &KeySchedule, suite: &CipherInfo) -> Result<(), DtlsError> {
        let k = keys.traffic_keys(suite.enc);
        let client = Aead::new(suite.enc, &k.client_key, &k.client_iv)?;
        let server = Aead::new(suite.enc, &k.server_key, &k.server_iv)?;
        match self.role {
            Role::Client => self.records.install_next_epoch(server, client),
            Role::Server => self.records.install_next_epoch(client, server),
        }
        Ok(())
    }

    /// The peer's chain as DER, for the session state.
    fn peer_chain_der(&self) -> Vec<Vec<u8>> {
        self.session.peer_chain_der()
    }

    /// A resumed session's peer chain, as it was verified when the session was made.
    fn restore_peer_chain(&mut self, chain: &[Vec<u8>]) {
        self.session.restore_peer_chain(chain);
    }

    /// The verification settings in force: the connection's, else the context's.
    fn verify_settings(&self) -> &VerifySettings {
        self.params.verify.as_ref().unwrap_or(&self.config.verify)
    }

    /// Verifies the peer's chain and keeps it and the outcome. Returns the peer's own
    /// certificate.
    fn verify_peer_chain(
        &mut self,
        chain: &[Vec<u8>],
        purpose: Purpose,
    ) -> Result<Vec<u8>, DtlsError> {
        verify_peer_chain(self.config, self.params, self.session, chain, purpose)
    }
}

/// Verifies the peer's chain (either DTLS version) and keeps it and the outcome in
/// `session`. Returns the peer's own certificate.
pub(crate) fn verify_peer_chain(
    config: &Config,
    params: &DtlsParams,
    session: &mut SessionInfo,
    chain: &[Vec<u8>],
    purpose: Purpose,
) -> Result<Vec<u8>, DtlsError> {
    let Some(leaf) = chain.first() else {
        return Err(DtlsError::NoPeerCertificate);
    };
    let certs = chain
        .iter()
        .map(|der| X509::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| DtlsError::Decode("peer certificate"))?;
    let verify = params.verify.as_ref().unwrap_or(&config.verify);
    let hostname = match purpose {
        Purpose::ClientAuth => None,
        Purpose::ServerAuth => params
            .verify_host
            .clone()
            .or_else(|| params.server_name.clone().filter(|_| verify.check_hostname)),
    };
    let verifier = ChainVerifier {
        store: config.store.clone(),
        mode: verify.mode,
        depth: verify.depth,
        callback: verify.callback.clone(),
        hostname,
        purpose,
        leaf_key_usage: LeafKeyUsage::Signing,
    };
    let ders: Vec<CertificateDer<'_>> =
        chain.iter().map(|c| CertificateDer::from(&c[..])).collect();
    let outcome = verifier.verify(&ders[0], &ders[1..], (params.wall_clock)(), &params.ex_data);
    let (accepted, code, depth) = (outcome.accepted, outcome.result, outcome.error_depth);
    session.peer_chain = certs;
    session.verify_outcome = Some(outcome);
    if !accepted {
        return Err(DtlsError::Certificate { code, depth });
    }
    Ok(leaf.clone())
}

/// ALPN (RFC 7301 §3.2): the application's callback decides, else the first of our protocols
/// the client offers; none in common is fatal when we have a list.
pub(crate) fn choose_alpn(
    offer: &[Vec<u8>],
    params: &DtlsParams,
) -> Result<Option<Vec<u8>>, DtlsError> {
    let decision = match &params.alpn_select {
        Some(select) => select(offer),
        None if params.alpn_protocols.is_empty() => AlpnDecision::None,
        None => params
            .alpn_protocols
            .iter()
            .find(|p| offer.contains(p))
            .map_or(AlpnDecision::Abort, |p| AlpnDecision::Select(p.clone())),
    };
    match decision {
        AlpnDecision::None => Ok(None),
        AlpnDecision::Select(p) if offer.contains(&p) => Ok(Some(p)),
        AlpnDecision::Select(_) => Err(DtlsError::Internal(
            "the ALPN callback chose a protocol the client did not offer".into(),
        )),
        AlpnDecision::Abort => Err(DtlsError::NoApplicationProtocol),
    }
}

/// The suites a configuration enables for DTLS 1.2, in preference order.
pub fn dtls_suites(config: &Config) -> Vec<&'static CipherInfo> {
    ciphers::enabled(config).filter(|c| !c.tls13).collect()
}

/// The ECDHE groups a configuration enables, in preference order.
pub fn groups(config: &Config) -> Vec<NamedGroup> {
    match &config.groups {
        Some(list) => list
            .iter()
            .copied()
            .filter(|g| SUPPORTED_GROUPS.contains(g))
            .collect(),
        None => SUPPORTED_GROUPS.to_vec(),
    }
}

pub(crate) fn random() -> Result<[u8; 32], DtlsError> {
    let mut r = [0u8; 32];
    aws_lc_rs::rand::fill(&mut r)
        .map_err(|_| DtlsError::Internal("the random generator failed".into()))?;
    Ok(r)
}

/// Compares verify_data in constant time.
pub(crate) fn verify_data_matches(expected: &[u8], got: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(expected, got).is_ok()
}

/// Either side's handshake.
pub enum Handshake {
    /// We are the client.
    Client(Box<ClientState>),
    /// We are the server.
    Server(Box<ServerState>),
    /// Gone after a fatal error.
    Failed,
}

impl Handshake {
    /// Hands over the next handshake message.
    pub fn handle(self, message: Message, cx: &mut Context<'_>) -> Result<Self, DtlsError> {
        match self {
            Handshake::Client(s) => s
                .handle(message, cx)
                .map(|s| Handshake::Client(Box::new(s))),
            Handshake::Server(s) => s
                .handle(message, cx)
                .map(|s| Handshake::Server(Box::new(s))),
            Handshake::Failed => Err(DtlsError::Internal("handshake already failed".into())),
        }
    }

    /// Hands over the peer's ChangeCipherSpec.
    pub fn handle_change_cipher_spec(self) -> Result<Self, DtlsError> {
        match self {
            Handshake::Client(s) => s
                .handle_change_cipher_spec()
                .map(|s| Handshake::Client(Box::new(s))),
            Handshake::Server(s) => s
                .handle_change_cipher_spec()
                .map(|s| Handshake::Server(Box::new(s))),
            Handshake::Failed => Err(DtlsError::Internal("handshake already failed".into())),
        }
    }

    /// What the handshake waits for, for error messages.
    pub fn expects(&self) -> &'static str {
        match self {
            Handshake::Client(s) => s.expects(),
            Handshake::Server(s) => s.expects(),
            Handshake::Failed => "nothing (the handshake failed)",
        }
    }

    /// Whether the peer's ChangeCipherSpec comes next.
    pub fn expects_change_cipher_spec(&self) -> bool {
        match self {
            Handshake::Client(s) => matches!(**s, ClientState::ExpectChangeCipherSpec(_)),
            Handshake::Server(s) => matches!(**s, ServerState::ExpectChangeCipherSpec(_)),
            Handshake::Failed => false,
        }
    }

    /// Whether the handshake finished.
    pub fn is_established(&self) -> bool {
        match self {
            Handshake::Client(s) => matches!(**s, ClientState::Established),
            Handshake::Server(s) => matches!(**s, ServerState::Established),
            Handshake::Failed => false,
        }
    }

    /// Whether a server still waits for its first ClientHello.
    pub fn awaits_client_hello(&self) -> bool {
        matches!(self, Handshake::Server(s) if matches!(**s, ServerState::ExpectClientHello(_)))
    }
}

/// The error for a message the current state does not accept.
fn unexpected(expected: &'static str, got: &Message) -> DtlsError {
    DtlsError::UnexpectedMessage {
        expected,
        got: format!("{:?}", got.msg_type()),
    }
}

/// The error for a ChangeCipherSpec the current state does not accept.
pub fn unexpected_ccs(expected: &'static str) -> DtlsError {
    DtlsError::UnexpectedMessage {
        expected,
        got: "ChangeCipherSpec".into(),
    }
}
