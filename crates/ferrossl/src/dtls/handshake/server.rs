//! The server's states: a (cookie-verified) ClientHello, our flight (ServerHello, Certificate,
//! ServerKeyExchange, CertificateRequest, ServerHelloDone), the client's flight, then our
//! [NewSessionTicket,] ChangeCipherSpec and Finished. A ClientHello naming a session we can
//! resume (by ticket or cached ID) gets the abbreviated handshake instead (RFC 5246 §7.3):
//! ServerHello, [NewSessionTicket,] ChangeCipherSpec, Finished, then the client's.

use rustls::{CipherSuite, NamedGroup};

use crate::ciphers::CipherInfo;
use crate::constants::{VERIFY_FAIL_IF_NO_PEER_CERT, VERIFY_PEER};
use crate::verify::Purpose;

use super::super::codec::extensions::{HelloExtensions, UseSrtp, EC_POINT_UNCOMPRESSED};
use super::super::codec::extensions13::{read_versions_offer, SUPPORTED_VERSIONS};
use super::super::codec::message::{
    Certificate, CertificateRequest, ClientHello, DigitallySigned, EcdhParams, Message,
    NewSessionTicket, ServerHello, ServerKeyExchange,
};
use super::super::codec::message13::DOWNGRADE_TO_12;
use super::super::codec::record::DTLS12;
use super::super::error::DtlsError;
use super::super::key_schedule::{KeySchedule, PrfHash};
use super::super::record::MAX_PLAINTEXT;
use super::crypto::{self, KeyExchange, SIGNATURE_SCHEMES};
use super::resumption::SessionState;
use super::{
    choose_alpn, choose_srtp, dtls_suites, groups, pick_suite, random, requested_server_name,
    unexpected, unexpected_ccs, verify_data_matches, Context,
};

/// ClientCertificateType values we accept (RFC 5246 §7.4.4, RFC 8422 §5.5).
const CERTIFICATE_TYPES: [u8; 2] = [1, 64];

/// The server's handshake, state by state.
pub enum ServerState {
    /// Waiting for a ClientHello (with a valid cookie, when cookies are on).
    ExpectClientHello(ExpectClientHello),
    /// Our flight sent with a CertificateRequest.
    ExpectCertificate(ExpectCertificate),
    /// Waiting for the client's key.
    ExpectClientKeyExchange(ExpectClientKeyExchange),
    /// The client sent a certificate: its CertificateVerify must come.
    ExpectCertificateVerify(ExpectCertificateVerify),
    /// Waiting for the client to switch keys.
    ExpectChangeCipherSpec(ExpectChangeCipherSpec),
    /// Waiting for the client's Finished.
    ExpectFinished(ExpectFinished),
    /// Done.
    Established,
}

impl ServerState {
    /// A server waiting for its first ClientHello.
    pub fn start() -> Self {
        ServerState::ExpectClientHello(ExpectClientHello)
    }

    /// Takes the next handshake message.
    pub fn handle(self, message: Message, cx: &mut Context<'_>) -> Result<Self, DtlsError> {
        use Message as M;
        use ServerState as S;
        Ok(match (self, message) {
            (S::ExpectClientHello(s), M::ClientHello(m)) => match s.handle(m, cx)? {
                AfterHello::Certificate(next) => S::ExpectCertificate(next),
                AfterHello::KeyExchange(next) => S::ExpectClientKeyExchange(next),
                AfterHello::Resumed(next) => S::ExpectChangeCipherSpec(next),
            },
            (S::ExpectCertificate(s), M::Certificate(m)) => {
                S::ExpectClientKeyExchange(s.handle(m, cx)?)
            }
            (S::ExpectClientKeyExchange(s), M::ClientKeyExchange(m)) => match s.handle(&m, cx)? {
                AfterKeyExchange::CertificateVerify(next) => S::ExpectCertificateVerify(next),
                AfterKeyExchange::ChangeCipherSpec(next) => S::ExpectChangeCipherSpec(next),
            },
            (S::ExpectCertificateVerify(s), M::CertificateVerify(m)) => {
                S::ExpectChangeCipherSpec(s.handle(&m, cx)?)
            }
            (S::ExpectFinished(s), M::Finished(m)) => {
                s.handle(&m, cx)?;
                S::Established
            }
            (state, m) => return Err(unexpected(state.expects(), &m)),
        })
    }

    /// Takes the client's ChangeCipherSpec.
    pub fn handle_change_cipher_spec(self) -> Result<Self, DtlsError> {
        match self {
            ServerState::ExpectChangeCipherSpec(s) => Ok(ServerState::ExpectFinished(s.handle())),
            state => Err(unexpected_ccs(state.expects())),
        }
    }

    pub(super) fn expects(&self) -> &'static str {
        match self {
            ServerState::ExpectClientHello(_) => "ClientHello",
            ServerState::ExpectCertificate(_) => "Certificate",
            ServerState::ExpectClientKeyExchange(_) => "ClientKeyExchange",
            // A client that sent a certificate must prove it holds the key.
            ServerState::ExpectCertificateVerify(_) => "CertificateVerify",
            ServerState::ExpectChangeCipherSpec(_) => "ChangeCipherSpec",
            ServerState::ExpectFinished(_) => "Finished",
            ServerState::Established => "no handshake message",
        }
    }
}

/// Where the ClientHello leads.
enum AfterHello {
    Certificate(ExpectCertificate),
    KeyExchange(ExpectClientKeyExchange),
    Resumed(ExpectChangeCipherSpec),
}

/// Where ClientKeyExchange leads.
enum AfterKeyExchange {
    CertificateVerify(ExpectCertificateVerify),
    ChangeCipherSpec(ExpectChangeCipherSpec),
}

/// What the server chose, and its ECDHE key.
struct Negotiated {
    suite: &'static CipherInfo,
    kx: KeyExchange,
    client_random: [u8; 32],
    server_random: [u8; 32],
    session_id: Vec<u8>,
    issue_ticket: bool,
}

/// Waiting for a ClientHello.
pub struct ExpectClientHello;

impl ExpectClientHello {
    fn handle(self, hello: ClientHello, cx: &mut Context<'_>) -> Result<AfterHello, DtlsError> {
        // DTLS versions count down: 0xFEFD (1.2) is below 0xFEFF (1.0).
        if hello.client_version > DTLS12 {
            return Err(DtlsError::ProtocolVersion(
                "the client does not offer DTLS 1.2",
            ));
        }
        if !hello.compression_methods.contains(&0) {
            return Err(DtlsError::IllegalParameter(
                "the client does not offer null compression",
            ));
        }
        let ext = &hello.extensions;
        // RFC 8446 §4.2.1: a supported_versions without 1.2 (a DTLS 1.3-only client) is a
        // version we do not share, whatever legacy_version says.
        let versions = ext
            .raw(SUPPORTED_VERSIONS)
            .map(read_versions_offer)
            .transpose()?;
        if versions.is_some_and(|v| !v.contains(&DTLS12)) {
            return Err(DtlsError::ProtocolVersion(
                "the client does not offer DTLS 1.2",
            ));
        }
        // RFC 5746 §3.6: an initial ClientHello carries an empty renegotiation_info (or the
        // SCSV).
        if ext
            .renegotiation_info
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return Err(DtlsError::HandshakeFailure(
                "renegotiation_info must be empty in an initial handshake (RFC 5746 §3.6)",
            ));
        }
        let secure_renegotiation = ext.renegotiation_info.is_some()
            || hello
                .cipher_suites
                .contains(&CipherSuite::TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
        if !ext.extended_master_secret {
            return Err(DtlsError::HandshakeFailure(
                "the client does not offer the extended master secret (RFC 7627)",
            ));
        }
        if ext
            .ec_point_formats
            .as_ref()
            .is_some_and(|f| !f.contains(&EC_POINT_UNCOMPRESSED))
        {
            return Err(DtlsError::IllegalParameter(
                "the client does not accept uncompressed EC points",
            ));
        }
        let alpn = match &ext.alpn {
            Some(offer) => choose_alpn(offer, cx.params)?,
            None => None,
        };
        let srtp = choose_srtp(ext.use_srtp.as_ref(), cx.params);
        if let Some(name) = requested_server_name(ext)? {
            cx.session.server_name = Some(name);
        }
        if let Some(limit) = ext.record_size_limit {
            if limit < 64 {
                return Err(DtlsError::IllegalParameter(
                    "record_size_limit below 64 (RFC 8449 §4)",
                ));
            }
            cx.records.peer_limit = usize::from(limit).min(MAX_PLAINTEXT);
        }
        // RFC 9146 §3: when both want connection IDs, our records carry the client's CID and
        // its records ours.
        let connection_id = match (&ext.connection_id, &cx.params.connection_id) {
            (Some(client_cid), Some(ours)) => {
                cx.records
                    .set_connection_ids(client_cid.clone(), ours.clone());
                Some(ours.clone())
            }
            _ => None,
        };
        let mut server_random = random()?;
        // RFC 8446 §4.1.3 (RFC 9147 §5.3): a server able to speak DTLS 1.3 that answers
        // in 1.2 says so in its random, so that a client that offered 1.3 notices when an
        // attacker took it out of the offer.
        if cx.config.dtls_versions().1 {
            server_random[24..].copy_from_slice(&DOWNGRADE_TO_12);
        }
        cx.session.client_random = Some(hello.random);
        cx.session.server_random = Some(server_random);
        cx.session.srtp_profile = srtp;
        cx.session.alpn = alpn.clone();
        let resumption = cx
            .session_to_resume(&hello)
            .and_then(|(state, from_ticket)| {
                Some((state.usable_suite(&hello, cx)?, state, from_ticket))
            });
        // RFC 5077 §3.2: the empty extension in the ServerHello promises a NewSessionTicket.
        // A session resumed from a ticket keeps that ticket, so its lifetime stays as issued.
        let issue_ticket = ext.session_ticket.is_some()
            && cx.tickets_enabled()
            && !resumption
                .as_ref()
                .is_some_and(|(_, _, from_ticket)| *from_ticket);
        let extensions = HelloExtensions {
            server_name: ext.server_name.as_ref().map(|_| Vec::new()),
            ec_point_formats: ext
                .ec_point_formats
                .as_ref()
                .map(|_| vec![EC_POINT_UNCOMPRESSED]),
            use_srtp: srtp.map(|p| UseSrtp {
                profiles: vec![p.id()],
                mki: Vec::new(),
            }),
            alpn: alpn.map(|p| vec![p]),
            extended_master_secret: true,
            record_size_limit: ext.record_size_limit.map(|_| MAX_PLAINTEXT as u16),
            renegotiation_info: secure_renegotiation.then(Vec::new),
            session_ticket: issue_ticket.then(Vec::new),
            connection_id,
            ..Default::default()
        };
        let hello_out = HelloOut {
            server_random,
            extensions,
            issue_ticket,
        };
        if let Some((suite, state, _)) = resumption {
            return resume(&hello, hello_out, state, suite, cx);
        }
        full_handshake(&hello, hello_out, cx)
    }
}

/// What our ServerHello says, either way.
struct HelloOut {
    server_random: [u8; 32],
    extensions: HelloExtensions,
    issue_ticket: bool,
}

/// The abbreviated handshake (RFC 5246 §7.3, RFC 6347 §4.2.4): ServerHello echoing the
/// client's session ID, [NewSessionTicket,] ChangeCipherSpec and Finished, keyed by the
/// session's master secret.
fn resume(
    hello: &ClientHello,
    out: HelloOut,
    state: SessionState,
    suite: &'static CipherInfo,
    cx: &mut Context<'_>,
) -> Result<AfterHello, DtlsError> {
    cx.session.suite = Some(suite);
    cx.session.resumed = true;
    cx.restore_peer_chain(&state.peer_chain);
    // RFC 6066 §3: a resuming ServerHello carries no server_name.
    let extensions = HelloExtensions {
        server_name: None,
        ..out.extensions
    };
    cx.send(&Message::ServerHello(ServerHello {
        server_version: DTLS12,
        random: out.server_random,
        session_id: hello.session_id.clone(),
        cipher_suite: suite.suite,
        compression_method: 0,
        extensions,
    }));
    let hash = PrfHash::of(suite);
    let keys = KeySchedule::resumed(hash, state.master, hello.random, out.server_random);
    if out.issue_ticket {
        send_ticket(&state, cx);
    }
    cx.install_keys(&keys, suite)?;
    cx.change_cipher_spec();
    let ours = keys.verify_data(false, &cx.transcript.hash(hash));
    cx.send(&Message::Finished(ours.to_vec()));
    cx.finish_flight(true);
    Ok(AfterHello::Resumed(ExpectChangeCipherSpec {
        ending: Ending {
            keys,
            suite,
            session_id: Vec::new(),
            issue_ticket: false,
        },
    }))
}

/// NewSessionTicket for `state` (RFC 5077 §3.3); empty when it cannot be sealed.
fn send_ticket(state: &SessionState, cx: &mut Context<'_>) {
    let ticket = cx.seal_ticket(state).unwrap_or_default();
    cx.send(&Message::NewSessionTicket(NewSessionTicket {
        lifetime_hint: cx.ticket_lifetime(),
        ticket,
    }));
}

/// The full handshake's first flight: ServerHello (with a new session ID when the cache is
/// on), Certificate, ServerKeyExchange, [CertificateRequest,] ServerHelloDone.
fn full_handshake(
    hello: &ClientHello,
    out: HelloOut,
    cx: &mut Context<'_>,
) -> Result<AfterHello, DtlsError> {
    let ext = &hello.extensions;
    let key = cx
        .config
        .key
        .clone()
        .ok_or_else(|| DtlsError::Internal("no private key".into()))?;
    let client_schemes = ext.signature_algorithms.clone().unwrap_or_default();
    let suite = choose_suite(hello, cx, key.key_type())?;
    if !crypto::can_sign(&key, &client_schemes) {
        return Err(DtlsError::HandshakeFailure(
            "no signature scheme in common with the client",
        ));
    }
    let ours = groups(cx.config);
    // RFC 8422 §4: a client that names no groups is assumed to support P-256.
    let group = match &ext.supported_groups {
        Some(theirs) => ours.iter().copied().find(|g| theirs.contains(g)),
        None => ours
            .contains(&NamedGroup::secp256r1)
            .then_some(NamedGroup::secp256r1),
    }
    .ok_or(DtlsError::HandshakeFailure("no ECDHE group in common"))?;
    cx.session.suite = Some(suite);
    cx.session.group = Some(group);
    let server_random = out.server_random;
    let session_id = cx.new_session_id()?;
    cx.send(&Message::ServerHello(ServerHello {
        server_version: DTLS12,
        random: server_random,
        session_id: session_id.clone(),
        cipher_suite: suite.suite,
        compression_method: 0,
        extensions: out.extensions,
    }));
    cx.send(&Message::Certificate(Certificate {
        chain: cx
            .config
            .cert_chain
            .iter()
            .map(|c| c.to_der().to_vec())
            .collect(),
    }));
    let kx = KeyExchange::start(group)?;
    let params = EcdhParams {
        group,
        public: kx.public().to_vec(),
    };
    let mut signed = Vec::new();
    signed.extend_from_slice(&hello.random);
    signed.extend_from_slice(&server_random);
    params.encode(&mut signed);
    let signed = crypto::sign(&key, &client_schemes, &signed)?
        .ok_or_else(|| DtlsError::Internal("the key cannot sign any more".into()))?;
    cx.send(&Message::ServerKeyExchange(ServerKeyExchange {
        params,
        signed,
    }));
    let request_certificate = cx.verify_settings().mode & VERIFY_PEER != 0;
    if request_certificate {
        cx.send(&Message::CertificateRequest(CertificateRequest {
            certificate_types: CERTIFICATE_TYPES.to_vec(),
            signature_schemes: SIGNATURE_SCHEMES.to_vec(),
            ca_names: cx
                .config
                .client_ca_list
                .iter()
                .map(|n| n.to_der().to_vec())
                .collect(),
        }));
    }
    cx.send(&Message::ServerHelloDone);
    cx.finish_flight(true);
    let negotiated = Negotiated {
        suite,
        kx,
        client_random: hello.random,
        server_random,
        session_id,
        issue_ticket: out.issue_ticket,
    };
    Ok(if request_certificate {
        AfterHello::Certificate(ExpectCertificate { negotiated })
    } else {
        AfterHello::KeyExchange(ExpectClientKeyExchange {
            negotiated,
            client_cert: None,
        })
    })
}

/// The suite: by the client's preference unless OP_CIPHER_SERVER_PREFERENCE, among those the
/// certificate's key can authenticate.
fn choose_suite(
    hello: &ClientHello,
    cx: &Context<'_>,
    key: crate::x509::KeyType,
) -> Result<&'static CipherInfo, DtlsError> {
    let ours: Vec<&'static CipherInfo> = dtls_suites(cx.config)
        .into_iter()
        .filter(|c| crypto::key_fits_suite(key, c.auth))
        .collect();
    pick_suite(cx.config, &ours, &hello.cipher_suites)
}

/// Waiting for the client's Certificate.
pub struct ExpectCertificate {
    negotiated: Negotiated,
}

impl ExpectCertificate {
    fn handle(
        self,
        cert: Certificate,
        cx: &mut Context<'_>,
    ) -> Result<ExpectClientKeyExchange, DtlsError> {
        if cert.chain.is_empty() {
            if cx.verify_settings().mode & VERIFY_FAIL_IF_NO_PEER_CERT != 0 {
                return Err(DtlsError::NoPeerCertificate);
            }
            return Ok(ExpectClientKeyExchange {
                negotiated: self.negotiated,
                client_cert: None,
            });
        }
        let leaf = cx.verify_peer_chain(&cert.chain, Purpose::ClientAuth)?;
        Ok(ExpectClientKeyExchange {
            negotiated: self.negotiated,
            client_cert: Some(leaf),
        })
    }
}

/// Waiting for ClientKeyExchange.
pub struct ExpectClientKeyExchange {
    negotiated: Negotiated,
    client_cert: Option<Vec<u8>>,
}

impl ExpectClientKeyExchange {
    fn handle(self, public: &[u8], cx: &mut Context<'_>) -> Result<AfterKeyExchange, DtlsError> {
        let n = self.negotiated;
        let pre_master = n.kx.complete(public)?;
        let hash = PrfHash::of(n.suite);
        // RFC 7627 §3: the session hash runs through ClientKeyExchange (just added).
        let keys = KeySchedule::extended(
            hash,
            &pre_master,
            &cx.transcript.hash(hash),
            n.client_random,
            n.server_random,
        );
        cx.install_keys(&keys, n.suite)?;
        let ending = Ending {
            keys,
            suite: n.suite,
            session_id: n.session_id,
            issue_ticket: n.issue_ticket,
        };
        Ok(match self.client_cert {
            Some(leaf) => {
                AfterKeyExchange::CertificateVerify(ExpectCertificateVerify { ending, leaf })
            }
            None => AfterKeyExchange::ChangeCipherSpec(ExpectChangeCipherSpec { ending }),
        })
    }
}

/// Waiting for the client's CertificateVerify.
pub struct ExpectCertificateVerify {
    ending: Ending,
    leaf: Vec<u8>,
}

impl ExpectCertificateVerify {
    fn handle(
        self,
        signed: &DigitallySigned,
        cx: &mut Context<'_>,
    ) -> Result<ExpectChangeCipherSpec, DtlsError> {
        // RFC 5246 §7.4.8: the signature covers every message before this one.
        crypto::verify(
            &self.leaf,
            signed,
            cx.transcript.bytes_before_last(),
            "bad CertificateVerify signature",
        )?;
        Ok(ExpectChangeCipherSpec {
            ending: self.ending,
        })
    }
}

/// The keys, and how the session is kept once the handshake ends.
struct Ending {
    keys: KeySchedule,
    suite: &'static CipherInfo,
    /// The new session's ID (empty when it is not cached or was resumed).
    session_id: Vec<u8>,
    /// Whether our last flight carries a NewSessionTicket.
    issue_ticket: bool,
}

/// Waiting for the client's ChangeCipherSpec.
pub struct ExpectChangeCipherSpec {
    ending: Ending,
}

impl ExpectChangeCipherSpec {
    fn handle(self) -> ExpectFinished {
        ExpectFinished {
            ending: self.ending,
        }
    }
}

/// Waiting for the client's Finished.
pub struct ExpectFinished {
    ending: Ending,
}

impl ExpectFinished {
    fn handle(self, verify_data: &[u8], cx: &mut Context<'_>) -> Result<(), DtlsError> {
        let Ending {
            keys,
            suite,
            session_id,
            issue_ticket,
        } = self.ending;
        let hash = keys.hash();
        let expected = keys.verify_data(true, &cx.transcript.hash_before_last(hash));
        if !verify_data_matches(&expected, verify_data) {
            return Err(DtlsError::DecryptError(
                "the client's Finished does not match the handshake",
            ));
        }
        cx.session.peer_finished = Some(verify_data.to_vec());
        if !cx.session.resumed {
            let state = SessionState::of(suite, &keys, cx);
            cx.cache_session(&session_id, &state);
            if issue_ticket {
                send_ticket(&state, cx);
            }
            cx.change_cipher_spec();
            let ours = keys.verify_data(false, &cx.transcript.hash(hash));
            cx.send(&Message::Finished(ours.to_vec()));
            // The last flight: kept to answer retransmissions, no timer (RFC 6347 §4.2.4).
            cx.finish_flight(false);
        }
        cx.session.keys = Some(keys);
        Ok(())
    }
}
