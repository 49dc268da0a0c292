//! The client's states: ClientHello (again with a cookie after a HelloVerifyRequest), then the
//! server's flight, then ours (Certificate, ClientKeyExchange, CertificateVerify,
//! ChangeCipherSpec, Finished), then the server's [NewSessionTicket,] ChangeCipherSpec and
//! Finished. When the server resumes the offered session (RFC 5246 §7.3), its
//! [NewSessionTicket,] ChangeCipherSpec and Finished follow the ServerHello, and ours end the
//! handshake.

use rustls::SignatureScheme;

use crate::ciphers::CipherInfo;
use crate::verify::Purpose;
use crate::x509::{KeyType, PKey, X509Name, X509};

use super::super::codec::extensions::{HelloExtensions, UseSrtp, EC_POINT_UNCOMPRESSED};
use super::super::codec::message::{
    Certificate, CertificateRequest, ClientHello, EcdhParams, HelloVerifyRequest, Message,
    NewSessionTicket, ServerHello, ServerKeyExchange,
};
use super::super::codec::message13::DOWNGRADE_TO_12;
use super::super::codec::record::{DTLS10, DTLS12};
use super::super::error::DtlsError;
use super::super::key_schedule::{KeySchedule, PrfHash};
use super::super::record::MAX_PLAINTEXT;
use super::super::srtp::SrtpProfile;
use super::crypto::{self, KeyExchange, SIGNATURE_SCHEMES};
use super::resumption::SessionState;
use super::{
    dtls_suites, groups, random, sni_to_send, unexpected, unexpected_ccs, verify_data_matches,
    Context,
};
use crate::session::DtlsSession;

/// A server that keeps asking for new cookies is not making progress.
const MAX_HELLO_VERIFY_REQUESTS: u8 = 4;
/// ClientCertificateType values (RFC 5246 §7.4.4, RFC 8422 §5.5).
const RSA_SIGN: u8 = 1;
const ECDSA_SIGN: u8 = 64;

/// The client's handshake, state by state.
pub enum ClientState {
    /// ClientHello sent.
    ExpectServerHello(ExpectServerHello),
    /// ServerHello received.
    ExpectCertificate(ExpectCertificate),
    /// Server certificate verified.
    ExpectServerKeyExchange(ExpectServerKeyExchange),
    /// Server key exchange verified.
    ExpectCertificateRequestOrDone(ExpectCertificateRequestOrDone),
    /// The server asked for our certificate.
    ExpectServerHelloDone(ExpectServerHelloDone),
    /// The server acknowledged the session_ticket extension: its NewSessionTicket comes
    /// before its ChangeCipherSpec (RFC 5077 §3.3).
    ExpectNewSessionTicket(Ending),
    /// Our second flight sent, or the server resumed the session.
    ExpectChangeCipherSpec(Ending),
    /// The server switched to the new keys.
    ExpectFinished(ExpectFinished),
    /// Done.
    Established,
}

impl ClientState {
    /// Builds the first ClientHello.
    pub fn start(cx: &mut Context<'_>) -> Result<Self, DtlsError> {
        let client_random = random()?;
        let params = cx.params;
        let server_name = sni_to_send(params);
        let offer = cx.resumption_offer()?;
        let extensions = HelloExtensions {
            server_name,
            supported_groups: Some(groups(cx.config)),
            ec_point_formats: Some(vec![EC_POINT_UNCOMPRESSED]),
            signature_algorithms: Some(SIGNATURE_SCHEMES.to_vec()),
            use_srtp: (!params.srtp_profiles.is_empty()).then(|| UseSrtp {
                profiles: params.srtp_profiles.iter().map(|p| p.id()).collect(),
                mki: Vec::new(),
            }),
            alpn: (!params.alpn_protocols.is_empty()).then(|| params.alpn_protocols.clone()),
            extended_master_secret: true,
            record_size_limit: Some(MAX_PLAINTEXT as u16),
            renegotiation_info: Some(Vec::new()),
            session_ticket: offer.ticket_extension,
            connection_id: params.connection_id.clone(),
            ..Default::default()
        };
        let hello = ClientHello {
            client_version: DTLS12,
            random: client_random,
            session_id: offer.session_id,
            cookie: Vec::new(),
            cipher_suites: dtls_suites(cx.config).iter().map(|c| c.suite).collect(),
            compression_methods: vec![0],
            extensions,
        };
        cx.session.client_random = Some(client_random);
        cx.send(&Message::ClientHello(hello.clone()));
        cx.finish_flight(true);
        Ok(ClientState::ExpectServerHello(ExpectServerHello {
            hello,
            hello_verify_requests: 0,
            offered: offer.session,
            offered_dtls13: false,
        }))
    }

    /// The ClientHello a client waiting for the ServerHello sent.
    pub fn sent_hello(&self) -> Option<&ClientHello> {
        match self {
            ClientState::ExpectServerHello(s) => Some(&s.hello),
            _ => None,
        }
    }

    /// Goes on from `hello`, which offered DTLS 1.3 as well and went out instead of ours
    /// (the server chose 1.2). Returns it encoded as the transcript's first message.
    pub fn adopt_hello(&mut self, hello: ClientHello, cx: &mut Context<'_>) -> Option<()> {
        let ClientState::ExpectServerHello(s) = self else {
            return None;
        };
        cx.transcript.clear();
        cx.flight.set_next_message_seq(0);
        cx.session.client_random = Some(hello.random);
        s.hello = hello.clone();
        s.offered_dtls13 = true;
        cx.send(&Message::ClientHello(hello));
        cx.finish_flight(true);
        Some(())
    }

    /// Takes the next handshake message.
    pub fn handle(self, message: Message, cx: &mut Context<'_>) -> Result<Self, DtlsError> {
        use ClientState as S;
        use Message as M;
        Ok(match (self, message) {
            (S::ExpectServerHello(s), M::HelloVerifyRequest(m)) => {
                S::ExpectServerHello(s.handle_hello_verify_request(m, cx)?)
            }
            (S::ExpectServerHello(s), M::ServerHello(m)) => s.handle_server_hello(m, cx)?,
            (S::ExpectCertificate(s), M::Certificate(m)) => {
                S::ExpectServerKeyExchange(s.handle(m, cx)?)
            }
            (S::ExpectServerKeyExchange(s), M::ServerKeyExchange(m)) => {
                S::ExpectCertificateRequestOrDone(s.handle(m, cx)?)
            }
            (S::ExpectCertificateRequestOrDone(s), M::CertificateRequest(m)) => {
                S::ExpectServerHelloDone(s.handle_certificate_request(m, cx))
            }
            (S::ExpectCertificateRequestOrDone(s), M::ServerHelloDone) => {
                s.handle_server_hello_done(cx)?
            }
            (S::ExpectServerHelloDone(s), M::ServerHelloDone) => s.handle(cx)?,
            (S::ExpectNewSessionTicket(s), M::NewSessionTicket(m)) => {
                S::ExpectChangeCipherSpec(s.handle(m))
            }
            (S::ExpectFinished(s), M::Finished(m)) => {
                s.handle(&m, cx)?;
                S::Established
            }
            (state, m) => return Err(unexpected(state.expects(), &m)),
        })
    }

    /// Takes the server's ChangeCipherSpec.
    pub fn handle_change_cipher_spec(self) -> Result<Self, DtlsError> {
        match self {
            ClientState::ExpectChangeCipherSpec(s) => {
                Ok(ClientState::ExpectFinished(ExpectFinished { ending: s }))
            }
            state => Err(unexpected_ccs(state.expects())),
        }
    }

    pub(super) fn expects(&self) -> &'static str {
        match self {
            ClientState::ExpectServerHello(_) => "ServerHello or HelloVerifyRequest",
            ClientState::ExpectCertificate(_) => "Certificate",
            ClientState::ExpectServerKeyExchange(_) => "ServerKeyExchange",
            ClientState::ExpectCertificateRequestOrDone(_) => {
                "CertificateRequest or ServerHelloDone"
            }
            ClientState::ExpectServerHelloDone(_) => "ServerHelloDone",
            ClientState::ExpectNewSessionTicket(_) => "NewSessionTicket",
            ClientState::ExpectChangeCipherSpec(_) => "ChangeCipherSpec",
            ClientState::ExpectFinished(_) => "Finished",
            ClientState::Established => "no handshake message",
        }
    }
}

/// What the client offered and what the server chose so far.
struct Negotiated {
    hello: ClientHello,
    suite: &'static CipherInfo,
    client_random: [u8; 32],
    server_random: [u8; 32],
    session_id: Vec<u8>,
    /// Whether the server acknowledged the session_ticket extension.
    ticket_expected: bool,
}

/// Waiting for ServerHello (or a HelloVerifyRequest).
pub struct ExpectServerHello {
    hello: ClientHello,
    hello_verify_requests: u8,
    /// The session offered for resumption, with its ticket.
    offered: Option<(SessionState, Option<Vec<u8>>)>,
    /// Whether the hello offered DTLS 1.3 too (a 1.2 answer is then checked for the
    /// downgrade mark).
    offered_dtls13: bool,
}

impl ExpectServerHello {
    fn handle_hello_verify_request(
        mut self,
        hvr: HelloVerifyRequest,
        cx: &mut Context<'_>,
    ) -> Result<Self, DtlsError> {
        if self.hello_verify_requests >= MAX_HELLO_VERIFY_REQUESTS {
            return Err(DtlsError::UnexpectedMessage {
                expected: "ServerHello",
                got: "yet another HelloVerifyRequest".into(),
            });
        }
        // RFC 6347 §4.2.1: the server_version is DTLS 1.0 whatever will be negotiated; accept
        // 1.2 too, as other implementations send it.
        if hvr.server_version != DTLS10 && hvr.server_version != DTLS12 {
            return Err(DtlsError::ProtocolVersion(
                "HelloVerifyRequest of an unknown version",
            ));
        }
        if hvr.cookie.is_empty() {
            return Err(DtlsError::IllegalParameter(
                "empty cookie in HelloVerifyRequest",
            ));
        }
        self.hello_verify_requests += 1;
        self.hello.cookie = hvr.cookie;
        // RFC 6347 §4.2.6: the first ClientHello and the HelloVerifyRequest are not part of
        // the handshake transcript.
        cx.transcript.clear();
        cx.send(&Message::ClientHello(self.hello.clone()));
        cx.finish_flight(true);
        Ok(self)
    }

    fn handle_server_hello(
        self,
        sh: ServerHello,
        cx: &mut Context<'_>,
    ) -> Result<ClientState, DtlsError> {
        if sh.server_version != DTLS12 {
            return Err(DtlsError::ProtocolVersion(
                "the server did not choose DTLS 1.2",
            ));
        }
        let suite = self
            .hello
            .cipher_suites
            .contains(&sh.cipher_suite)
            .then(|| crate::ciphers::info(sh.cipher_suite))
            .flatten()
            .filter(|s| !s.tls13)
            .ok_or(DtlsError::IllegalParameter(
                "the server chose a cipher suite that was not offered",
            ))?;
        // RFC 8446 §4.1.3 (RFC 9147 §5.3): a server able to speak DTLS 1.3 that answers a
        // client offering it with 1.2 marks its random; seeing the mark means an attacker
        // removed 1.3 from the offer.
        if self.offered_dtls13 && sh.random[24..] == DOWNGRADE_TO_12 {
            return Err(DtlsError::IllegalParameter(
                "a downgrade from DTLS 1.3 to 1.2 (the server random says so)",
            ));
        }
        if sh.compression_method != 0 {
            return Err(DtlsError::IllegalParameter(
                "the server chose compression, which was not offered",
            ));
        }
        let ext = &sh.extensions;
        let offered = &self.hello.extensions;
        if ext.unsolicited(offered) {
            return Err(DtlsError::UnsupportedExtension);
        }
        // RFC 7627 §5.3: a resumed session needs it as much as a new one.
        if !ext.extended_master_secret {
            return Err(DtlsError::HandshakeFailure(
                "the server does not support the extended master secret (RFC 7627)",
            ));
        }
        if ext
            .renegotiation_info
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return Err(DtlsError::HandshakeFailure(
                "renegotiation_info must be empty in an initial handshake (RFC 5746 §3.4)",
            ));
        }
        if ext
            .ec_point_formats
            .as_ref()
            .is_some_and(|f| !f.contains(&EC_POINT_UNCOMPRESSED))
        {
            return Err(DtlsError::IllegalParameter(
                "the server does not accept uncompressed EC points",
            ));
        }
        if let Some(srtp) = &ext.use_srtp {
            let offered_ids = offered.use_srtp.as_ref().map(|u| &u.profiles[..]);
            let profile = match srtp.profiles[..] {
                [id] if offered_ids.is_some_and(|o| o.contains(&id)) => SrtpProfile::from_id(id),
                _ => None,
            };
            // RFC 5764 §4.1.1: one profile, one we offered, and no MKI we did not send.
            if profile.is_none() || !srtp.mki.is_empty() {
                return Err(DtlsError::IllegalParameter(
                    "use_srtp must select one offered profile",
                ));
            }
            cx.session.srtp_profile = profile;
        }
        if let Some(protocols) = &ext.alpn {
            let offered_alpn = offered.alpn.as_deref().unwrap_or_default();
            match &protocols[..] {
                [p] if offered_alpn.contains(p) => cx.session.alpn = Some(p.clone()),
                // RFC 7301 §3.1: exactly one protocol, from the client's list.
                _ => {
                    return Err(DtlsError::IllegalParameter(
                        "ALPN must select one offered protocol",
                    ))
                }
            }
        }
        if let Some(limit) = ext.record_size_limit {
            if limit < 64 {
                return Err(DtlsError::IllegalParameter(
                    "record_size_limit below 64 (RFC 8449 §4)",
                ));
            }
            cx.records.peer_limit = usize::from(limit).min(MAX_PLAINTEXT);
        }
        if let Some(server_cid) = &ext.connection_id {
            // RFC 9146 §3: our records carry the server's CID, its records ours.
            let ours = cx.params.connection_id.clone().unwrap_or_default();
            cx.records.set_connection_ids(server_cid.clone(), ours);
        }
        cx.session.server_random = Some(sh.random);
        cx.session.suite = Some(suite);
        let ticket_expected = ext.session_ticket.is_some();
        let resumed = !sh.session_id.is_empty() && sh.session_id == self.hello.session_id;
        if let (true, Some((state, ticket))) = (resumed, self.offered) {
            let ending = resume(state, ticket, &sh, suite, self.hello.random, cx)?;
            return Ok(match ticket_expected {
                true => ClientState::ExpectNewSessionTicket(ending),
                false => ClientState::ExpectChangeCipherSpec(ending),
            });
        }
        Ok(ClientState::ExpectCertificate(ExpectCertificate {
            negotiated: Negotiated {
                client_random: self.hello.random,
                hello: self.hello,
                suite,
                server_random: sh.random,
                session_id: sh.session_id,
                ticket_expected,
            },
        }))
    }
}

/// The server accepted our session (RFC 5246 §7.3): its master secret with the new randoms,
/// and the server's ChangeCipherSpec and Finished come next.
fn resume(
    state: SessionState,
    ticket: Option<Vec<u8>>,
    sh: &ServerHello,
    suite: &'static CipherInfo,
    client_random: [u8; 32],
    cx: &mut Context<'_>,
) -> Result<Ending, DtlsError> {
    // RFC 5246 §7.4.1.3: a resumed session keeps its cipher suite.
    if sh.cipher_suite != state.suite {
        return Err(DtlsError::IllegalParameter(
            "the server resumed the session with another cipher suite",
        ));
    }
    let keys = KeySchedule::resumed(PrfHash::of(suite), state.master, client_random, sh.random);
    cx.install_keys(&keys, suite)?;
    cx.restore_peer_chain(&state.peer_chain);
    cx.session.resumed = true;
    Ok(Ending {
        keys,
        suite,
        session_id: sh.session_id.clone(),
        ticket,
        new_ticket: false,
    })
}

/// Waiting for the server's Certificate.
pub struct ExpectCertificate {
    negotiated: Negotiated,
}

impl ExpectCertificate {
    fn handle(
        self,
        cert: Certificate,
        cx: &mut Context<'_>,
    ) -> Result<ExpectServerKeyExchange, DtlsError> {
        let leaf = cx.verify_peer_chain(&cert.chain, Purpose::ServerAuth)?;
        Ok(ExpectServerKeyExchange {
            negotiated: self.negotiated,
            leaf,
        })
    }
}

/// Waiting for ServerKeyExchange.
pub struct ExpectServerKeyExchange {
    negotiated: Negotiated,
    leaf: Vec<u8>,
}

impl ExpectServerKeyExchange {
    fn handle(
        self,
        ske: ServerKeyExchange,
        cx: &mut Context<'_>,
    ) -> Result<ExpectCertificateRequestOrDone, DtlsError> {
        let n = &self.negotiated;
        let offered_groups = n.hello.extensions.supported_groups.as_deref();
        if !offered_groups.is_some_and(|g| g.contains(&ske.params.group)) {
            return Err(DtlsError::IllegalParameter(
                "the server chose an ECDHE group that was not offered",
            ));
        }
        if !crypto::scheme_fits_suite(ske.signed.scheme, n.suite.auth) {
            return Err(DtlsError::IllegalParameter(
                "signature scheme that does not fit the cipher suite",
            ));
        }
        // RFC 8422 §5.4: the signature covers both randoms and the parameters.
        let mut signed = Vec::new();
        signed.extend_from_slice(&n.client_random);
        signed.extend_from_slice(&n.server_random);
        ske.params.encode(&mut signed);
        crypto::verify(
            &self.leaf,
            &ske.signed,
            &signed,
            "bad ServerKeyExchange signature",
        )?;
        cx.session.group = Some(ske.params.group);
        Ok(ExpectCertificateRequestOrDone {
            negotiated: self.negotiated,
            server_params: ske.params,
        })
    }
}

/// Waiting for CertificateRequest or ServerHelloDone.
pub struct ExpectCertificateRequestOrDone {
    negotiated: Negotiated,
    server_params: EcdhParams,
}

impl ExpectCertificateRequestOrDone {
    fn handle_certificate_request(
        self,
        request: CertificateRequest,
        cx: &mut Context<'_>,
    ) -> ExpectServerHelloDone {
        cx.session.client_ca_names = Some(
            request
                .ca_names
                .iter()
                .filter_map(|n| X509Name::from_der(n).ok())
                .collect(),
        );
        ExpectServerHelloDone {
            negotiated: self.negotiated,
            server_params: self.server_params,
            request,
        }
    }

    fn handle_server_hello_done(self, cx: &mut Context<'_>) -> Result<ClientState, DtlsError> {
        send_second_flight(self.negotiated, &self.server_params, None, cx)
    }
}

/// The server asked for our certificate; waiting for ServerHelloDone.
pub struct ExpectServerHelloDone {
    negotiated: Negotiated,
    server_params: EcdhParams,
    request: CertificateRequest,
}

impl ExpectServerHelloDone {
    fn handle(self, cx: &mut Context<'_>) -> Result<ClientState, DtlsError> {
        send_second_flight(
            self.negotiated,
            &self.server_params,
            Some(&self.request),
            cx,
        )
    }
}

/// Our certificate chain and key (configured, or from the certificate callback), if we have
/// them and the request allows them.
fn client_identity(request: &CertificateRequest, cx: &Context<'_>) -> Option<(Vec<X509>, PKey)> {
    let names = cx.session.client_ca_names.as_deref().unwrap_or_default();
    let (chain, key) = cx.config.client_identity(names)?;
    let wanted_type = match key.key_type() {
        KeyType::Rsa => RSA_SIGN,
        KeyType::Ec | KeyType::Ed25519 => ECDSA_SIGN,
    };
    (request.certificate_types.contains(&wanted_type)
        && crypto::can_sign(&key, &request.signature_schemes))
    .then_some((chain, key))
}

/// Certificate, ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished.
fn send_second_flight(
    n: Negotiated,
    server_params: &EcdhParams,
    request: Option<&CertificateRequest>,
    cx: &mut Context<'_>,
) -> Result<ClientState, DtlsError> {
    let identity = request.and_then(|r| client_identity(r, cx));
    if request.is_some() {
        // Without a usable certificate the list is empty (RFC 5246 §7.4.6).
        let chain = match &identity {
            Some((chain, _)) => chain.iter().map(|c| c.to_der().to_vec()).collect(),
            None => Vec::new(),
        };
        cx.send(&Message::Certificate(Certificate { chain }));
    }
    let kx = KeyExchange::start(server_params.group)?;
    cx.send(&Message::ClientKeyExchange(kx.public().to_vec()));
    let pre_master = kx.complete(&server_params.public)?;
    let hash = PrfHash::of(n.suite);
    // RFC 7627 §3: the session hash runs through ClientKeyExchange.
    let keys = KeySchedule::extended(
        hash,
        &pre_master,
        &cx.transcript.hash(hash),
        n.client_random,
        n.server_random,
    );
    if let (Some((_, key)), Some(request)) = (identity, request) {
        let schemes: Vec<SignatureScheme> = request.signature_schemes.clone();
        let signed = crypto::sign(&key, &schemes, cx.transcript.bytes())?.ok_or_else(|| {
            DtlsError::Internal("the client key cannot sign with an offered scheme".into())
        })?;
        cx.send(&Message::CertificateVerify(signed));
    }
    cx.install_keys(&keys, n.suite)?;
    cx.change_cipher_spec();
    let verify_data = keys.verify_data(true, &cx.transcript.hash(hash));
    cx.send(&Message::Finished(verify_data.to_vec()));
    cx.finish_flight(true);
    let ending = Ending {
        keys,
        suite: n.suite,
        session_id: n.session_id,
        ticket: None,
        new_ticket: false,
    };
    Ok(match n.ticket_expected {
        true => ClientState::ExpectNewSessionTicket(ending),
        false => ClientState::ExpectChangeCipherSpec(ending),
    })
}

/// The keys and what a later handshake needs to resume the session.
pub struct Ending {
    keys: KeySchedule,
    suite: &'static CipherInfo,
    /// The session ID the server gave (empty: it does not cache).
    session_id: Vec<u8>,
    /// The ticket to offer next time.
    ticket: Option<Vec<u8>>,
    /// Whether the server issued the ticket in this handshake.
    new_ticket: bool,
}

impl Ending {
    /// Takes the NewSessionTicket; an empty one issues nothing (RFC 5077 §3.3).
    fn handle(mut self, nst: NewSessionTicket) -> Self {
        if !nst.ticket.is_empty() {
            self.ticket = Some(nst.ticket);
            self.new_ticket = true;
        }
        self
    }
}

/// Waiting for the server's Finished.
pub struct ExpectFinished {
    ending: Ending,
}

impl ExpectFinished {
    fn handle(self, verify_data: &[u8], cx: &mut Context<'_>) -> Result<(), DtlsError> {
        let Ending {
            keys,
            suite,
            session_id,
            ticket,
            new_ticket,
        } = self.ending;
        let expected = keys.verify_data(false, &cx.transcript.hash_before_last(keys.hash()));
        if !verify_data_matches(&expected, verify_data) {
            return Err(DtlsError::DecryptError(
                "the server's Finished does not match the handshake",
            ));
        }
        cx.session.peer_finished = Some(verify_data.to_vec());
        if cx.session.resumed {
            // RFC 5246 §7.3: in an abbreviated handshake the client's ChangeCipherSpec and
            // Finished come last; kept to answer retransmissions, no timer (RFC 6347 §4.2.4).
            cx.change_cipher_spec();
            let ours = keys.verify_data(true, &cx.transcript.hash(keys.hash()));
            cx.send(&Message::Finished(ours.to_vec()));
            cx.finish_flight(false);
        }
        // A resumed session is kept as it was unless the server issued a new ticket.
        let resumable = !session_id.is_empty() || ticket.is_some();
        if resumable && (!cx.session.resumed || new_ticket) {
            let state = SessionState::of(suite, &keys, cx);
            cx.remember_session(DtlsSession {
                session_id,
                ticket,
                state: state.encode(),
            });
        }
        cx.session.keys = Some(keys);
        Ok(())
    }
}
