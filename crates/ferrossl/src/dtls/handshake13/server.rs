//! The server's states (RFC 8446 §2): a ClientHello, answered by a stateless
//! HelloRetryRequest when a cookie or another key share is needed, else by our flight
//! (ServerHello, EncryptedExtensions, [CertificateRequest,] Certificate, CertificateVerify,
//! Finished); then the client's [Certificate, [CertificateVerify,]] Finished.

use rustls::{HandshakeType, NamedGroup, SignatureScheme};

use crate::ciphers::CipherInfo;
use crate::config::Role;
use crate::constants::{VERIFY_FAIL_IF_NO_PEER_CERT, VERIFY_PEER};
use crate::verify::Purpose;

use super::super::codec::extensions::{HelloExtensions, UseSrtp};
use super::super::codec::extensions13::{
    encode_certificate_authorities, encode_cookie, encode_key_share_choice, read_cookie,
    read_key_share_offer, read_versions_offer, KeyShareEntry, CERTIFICATE_AUTHORITIES, COOKIE,
    DTLS13, KEY_SHARE, PRE_SHARED_KEY, SUPPORTED_VERSIONS,
};
use super::super::codec::message::{ClientHello, ServerHello};
use super::super::codec::message13::{
    Certificate13, CertificateRequest13, Message13, HELLO_RETRY_REQUEST_RANDOM,
};
use super::super::codec::put_u16;
use super::super::codec::record::DTLS12;
use super::super::error::DtlsError;
use super::super::handshake::{
    choose_alpn, choose_srtp, pick_suite, random, requested_server_name, verify_peer_chain,
};
use super::super::key_schedule::PrfHash;
use super::super::key_schedule13::{EarlySecret, MasterSecret, Secret, TrafficSecrets};
use super::cookie13::{self, RetryState};
use super::resumption13::{self, Resumable};
use super::{
    crypto, groups13, kx_group, own_certificate_entries, schemes13, sign_certificate_verify,
    suites13, unexpected, verify_certificate_verify, Context13, Secrets13, Transcript13,
    APPLICATION_EPOCH, HANDSHAKE_EPOCH,
};

/// The server's handshake, state by state.
pub enum ServerState13 {
    /// Waiting for a ClientHello; a stateless HelloRetryRequest leaves the server here.
    ExpectClientHello,
    /// Our flight sent with a CertificateRequest.
    ExpectCertificate(Box<Flown>),
    /// The client's certificate verified: its proof of the key comes next.
    ExpectCertificateVerify(Box<Flown>, Vec<u8>),
    /// Waiting for the client's Finished.
    ExpectFinished(Box<Flown>),
    /// Done.
    Established,
}

impl ServerState13 {
    /// Takes the next handshake message and its body as received (for the transcript).
    pub fn handle(
        self,
        message: Message13,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<Self, DtlsError> {
        use Message13 as M;
        use ServerState13 as S;
        Ok(match (self, message) {
            (S::ExpectClientHello, M::ClientHello(m)) => handle_client_hello(&m, raw, cx)?,
            (S::ExpectCertificate(s), M::Certificate(m)) => s.handle_certificate(&m, raw, cx)?,
            (S::ExpectCertificateVerify(s, leaf), M::CertificateVerify(m)) => {
                let th = cx.transcript.hash(s.hash);
                verify_certificate_verify(&leaf, &m, Role::Client, &th)?;
                cx.transcript.add(HandshakeType::CertificateVerify, raw);
                S::ExpectFinished(s)
            }
            (S::ExpectFinished(s), M::Finished(m)) => {
                (*s).handle_finished(&m, raw, cx)?;
                S::Established
            }
            (state, m) => return Err(unexpected(state.expects(), &m)),
        })
    }

    /// What the state waits for, for error messages.
    pub(super) fn expects(&self) -> &'static str {
        match self {
            ServerState13::ExpectClientHello => "ClientHello",
            ServerState13::ExpectCertificate(_) => "Certificate",
            ServerState13::ExpectCertificateVerify(..) => "CertificateVerify",
            ServerState13::ExpectFinished(_) => "Finished",
            ServerState13::Established => "no handshake message",
        }
    }
}

/// What the server chose from a ClientHello.
struct Choice {
    suite: &'static CipherInfo,
    group: NamedGroup,
    client_schemes: Vec<SignatureScheme>,
}

fn choose(hello: &ClientHello, cx: &Context13<'_>) -> Result<Choice, DtlsError> {
    let ext = &hello.extensions;
    let versions = ext
        .raw(SUPPORTED_VERSIONS)
        .map(read_versions_offer)
        .transpose()?
        .unwrap_or_default();
    if !versions.contains(&DTLS13) {
        return Err(DtlsError::ProtocolVersion(
            "the client does not offer DTLS 1.3",
        ));
    }
    if hello.compression_methods != [0] {
        return Err(DtlsError::IllegalParameter(
            "DTLS 1.3 allows only null compression",
        ));
    }
    let suite = pick_suite(cx.config, &suites13(cx.config), &hello.cipher_suites)?;
    let client_groups = ext
        .supported_groups
        .as_ref()
        .ok_or(DtlsError::MissingExtension("supported_groups"))?;
    // Ours first: the hybrid is worth a HelloRetryRequest to a client that offers it.
    let group = groups13(cx.config)
        .into_iter()
        .find(|g| client_groups.contains(g))
        .ok_or(DtlsError::HandshakeFailure(
            "no key exchange group in common",
        ))?;
    let client_schemes = ext
        .signature_algorithms
        .clone()
        .ok_or(DtlsError::MissingExtension("signature_algorithms"))?;
    let key = cx
        .config
        .key
        .as_ref()
        .ok_or_else(|| DtlsError::Internal("no private key".into()))?;
    let allowed: Vec<SignatureScheme> = schemes13()
        .into_iter()
        .filter(|s| client_schemes.contains(s))
        .collect();
    if !crypto::can_sign(key, &allowed) {
        return Err(DtlsError::HandshakeFailure(
            "no signature scheme in common with the client",
        ));
    }
    Ok(Choice {
        suite,
        group,
        client_schemes,
    })
}

/// The HelloRetryRequest for a first ClientHello (RFC 8446 §4.1.4): the suite, the group
/// whose share is missing (if one is), and the cookie that lets us forget both.
fn hello_retry_request(
    suite: &CipherInfo,
    group: Option<NamedGroup>,
    cookie: &[u8],
) -> ServerHello {
    let mut extensions = HelloExtensions::default();
    extensions.set_raw(SUPPORTED_VERSIONS, DTLS13.to_be_bytes().to_vec());
    if let Some(group) = group {
        let mut body = Vec::new();
        put_u16(&mut body, group.into());
        extensions.set_raw(KEY_SHARE, body);
    }
    let mut body = Vec::new();
    encode_cookie(cookie, &mut body);
    extensions.set_raw(COOKIE, body);
    ServerHello {
        server_version: DTLS12,
        random: HELLO_RETRY_REQUEST_RANDOM,
        // RFC 9147 §5.3: a DTLS 1.3 server does not echo legacy_session_id.
        session_id: Vec::new(),
        cipher_suite: suite.suite,
        compression_method: 0,
        extensions,
    }
}

/// A ClientHello: with a valid cookie, the retry it answers is put back into the
/// transcript; without one, a HelloRetryRequest goes out when cookies are required or the
/// client sent no share of the group we want. Otherwise our flight.
fn handle_client_hello(
    hello: &ClientHello,
    raw: &[u8],
    cx: &mut Context13<'_>,
) -> Result<ServerState13, DtlsError> {
    let mut choice = choose(hello, cx)?;
    let shares = hello
        .extensions
        .raw(KEY_SHARE)
        .map(read_key_share_offer)
        .transpose()?
        .ok_or(DtlsError::MissingExtension("key_share"))?;
    let cookie = hello.extensions.raw(COOKIE).map(read_cookie).transpose()?;
    match cookie {
        Some(cookie) => {
            let Some(state) = cookie13::open(
                cx.cookies,
                cx.params.peer_addr,
                &hello.random,
                &cookie,
                cx.now,
            ) else {
                return Err(DtlsError::IllegalParameter(
                    "a cookie this server did not make",
                ));
            };
            resume_after_retry(hello, &state, &cookie, &mut choice, cx)?;
        }
        None => {
            let has_share = shares.iter().any(|s| s.group == choice.group);
            if cx.params.cookies.is_some() || !has_share {
                return send_retry(hello, raw, &choice, has_share, cx);
            }
        }
    }
    let server_name = hello.extensions.server_name.clone().unwrap_or_default();
    let resumed = resumption13::accept(
        cx.config,
        hello,
        raw,
        choice.suite,
        &server_name,
        cx.transcript,
        cx.now_secs(),
    )?;
    cx.transcript.add(HandshakeType::ClientHello, raw);
    let share =
        shares
            .iter()
            .find(|s| s.group == choice.group)
            .ok_or(DtlsError::IllegalParameter(
                "no key share for the group the HelloRetryRequest asked for",
            ))?;
    send_flight(hello, share, &choice, resumed, cx)
}

/// Answers with a stateless HelloRetryRequest; the state stays ExpectClientHello.
fn send_retry(
    hello: &ClientHello,
    raw: &[u8],
    choice: &Choice,
    has_share: bool,
    cx: &mut Context13<'_>,
) -> Result<ServerState13, DtlsError> {
    let hash = PrfHash::of(choice.suite);
    let mut first = Transcript13::default();
    first.add(HandshakeType::ClientHello, raw);
    let state = RetryState {
        suite: choice.suite.suite,
        group: (!has_share).then_some(choice.group),
        hello_hash: first.hash(hash),
    };
    let cookie = cookie13::make(
        cx.cookies,
        cx.params.peer_addr,
        &hello.random,
        &state,
        cx.now,
    );
    if cookie.is_empty() {
        return Err(DtlsError::Internal(
            "the cookie provider made no cookie".into(),
        ));
    }
    let hrr = hello_retry_request(choice.suite, state.group, &cookie);
    let mut body = Vec::new();
    hrr.encode(&mut body);
    cx.send_outside_transcript(HandshakeType::ServerHello, body);
    // Stateless: nothing is kept to retransmit; the client's retransmission gets another.
    cx.finish_flight(false);
    Ok(ServerState13::ExpectClientHello)
}

/// Puts the first ClientHello and our HelloRetryRequest back into the transcript from the
/// cookie, and holds the client to what the retry named.
fn resume_after_retry(
    hello: &ClientHello,
    state: &RetryState,
    cookie: &[u8],
    choice: &mut Choice,
    cx: &mut Context13<'_>,
) -> Result<(), DtlsError> {
    let suite = suites13(cx.config)
        .into_iter()
        .find(|c| c.suite == state.suite && hello.cipher_suites.contains(&c.suite))
        .ok_or(DtlsError::IllegalParameter(
            "the second ClientHello dropped the suite of the HelloRetryRequest",
        ))?;
    choice.suite = suite;
    if let Some(group) = state.group {
        choice.group = group;
    }
    let hrr = hello_retry_request(suite, state.group, cookie);
    let mut body = Vec::new();
    hrr.encode(&mut body);
    cx.transcript.add_message_hash(&state.hello_hash);
    cx.transcript.add(HandshakeType::ServerHello, &body);
    // Its message_seq follows the retry's: ours does too (as after a HelloVerifyRequest).
    Ok(())
}

/// ServerHello, EncryptedExtensions, [CertificateRequest,] Certificate, CertificateVerify,
/// Finished; then the application keys are ours to send with.
fn send_flight(
    hello: &ClientHello,
    share: &KeyShareEntry,
    choice: &Choice,
    resumed: Option<Resumable>,
    cx: &mut Context13<'_>,
) -> Result<ServerState13, DtlsError> {
    let suite = choice.suite;
    let hash = PrfHash::of(suite);
    // Decided before any key is installed: an alert refusing the offer (no shared ALPN
    // protocol, say) must go in the clear, the only epoch the client can read yet.
    let ee = encrypted_extensions(hello, cx)?;
    let kx = kx_group(choice.group).expect("groups13 lists provider groups");
    let completed = kx
        .start_and_complete(&share.key_exchange)
        .map_err(|_| DtlsError::IllegalParameter("invalid key share"))?;
    let server_random = random()?;
    let mut extensions = HelloExtensions::default();
    extensions.set_raw(SUPPORTED_VERSIONS, DTLS13.to_be_bytes().to_vec());
    let mut body = Vec::new();
    encode_key_share_choice(
        &KeyShareEntry {
            group: choice.group,
            key_exchange: completed.pub_key.clone(),
        },
        &mut body,
    );
    extensions.set_raw(KEY_SHARE, body);
    if resumed.is_some() {
        // The first (and only) identity offered.
        extensions.set_raw(PRE_SHARED_KEY, vec![0, 0]);
    }
    // RFC 9147 §9: when both want connection IDs, ours answers the client's here, and
    // protected records carry the receiver's from now on.
    if let (Some(theirs), Some(ours)) = (&hello.extensions.connection_id, &cx.params.connection_id)
    {
        extensions.connection_id = Some(ours.clone());
        cx.records.set_connection_ids(theirs.clone(), ours.clone());
    }
    cx.send(&Message13::ServerHello(ServerHello {
        server_version: DTLS12,
        random: server_random,
        // RFC 9147 §5.3: a DTLS 1.3 server does not echo legacy_session_id.
        session_id: Vec::new(),
        cipher_suite: suite.suite,
        compression_method: 0,
        extensions,
    }));
    cx.session.suite = Some(suite);
    cx.session.group = Some(choice.group);
    cx.session.client_random = Some(hello.random);
    cx.session.server_random = Some(server_random);
    let psk = resumed.as_ref().map(|r| r.psk.as_slice());
    let handshake = EarlySecret::new(hash, psk).into_handshake(completed.secret.secret_bytes());
    let traffic = handshake.traffic_secrets(&cx.transcript.hash(hash));
    cx.install(HANDSHAKE_EPOCH, suite, &traffic)?;
    cx.send(&Message13::EncryptedExtensions(ee));
    match &resumed {
        // A resumed session was authenticated when it was made (RFC 8446 §2.2).
        Some(state) => cx.restore_peer_chain(&state.peer_chain),
        None => send_certificates(choice, cx)?,
    }
    let request = resumed.is_none() && requests_certificate(cx);
    let finished = Secret::new(hash, &traffic.server).finished(&cx.transcript.hash(hash));
    cx.send(&Message13::Finished(finished));
    cx.finish_flight(true);
    let master = handshake.into_master();
    let server_finished = cx.transcript.hash(hash);
    let application = master.traffic_secrets(&server_finished);
    let exporter = master.exporter_master(&server_finished);
    cx.install(APPLICATION_EPOCH, suite, &application)?;
    let flown = Box::new(Flown {
        suite,
        hash,
        traffic,
        master,
        application,
        exporter,
    });
    Ok(if request {
        ServerState13::ExpectCertificate(flown)
    } else {
        ServerState13::ExpectFinished(flown)
    })
}

/// Whether our verification settings ask the client for a certificate.
fn requests_certificate(cx: &Context13<'_>) -> bool {
    cx.params.verify.as_ref().unwrap_or(&cx.config.verify).mode & VERIFY_PEER != 0
}

/// [CertificateRequest,] Certificate and CertificateVerify of a full handshake.
fn send_certificates(choice: &Choice, cx: &mut Context13<'_>) -> Result<(), DtlsError> {
    let hash = PrfHash::of(choice.suite);
    if requests_certificate(cx) {
        let mut extensions = HelloExtensions {
            signature_algorithms: Some(crypto::SIGNATURE_SCHEMES.to_vec()),
            ..Default::default()
        };
        // The CAs whose certificates we take (`set_client_ca_list`), as in DTLS 1.2.
        let names: Vec<_> = (cx.config.client_ca_list.iter())
            .map(|n| n.to_der().to_vec())
            .collect();
        if !names.is_empty() {
            let mut body = Vec::new();
            encode_certificate_authorities(&names, &mut body);
            extensions.set_raw(CERTIFICATE_AUTHORITIES, body);
        }
        cx.send(&Message13::CertificateRequest(CertificateRequest13 {
            context: Vec::new(),
            extensions,
        }));
    }
    cx.send(&Message13::Certificate(Certificate13 {
        context: Vec::new(),
        entries: own_certificate_entries(&cx.config.cert_chain),
    }));
    let key = cx.config.key.clone().expect("checked in choose");
    let th = cx.transcript.hash(hash);
    let signed = sign_certificate_verify(&key, &choice.client_schemes, Role::Server, &th)?;
    cx.send(&Message13::CertificateVerify(signed));
    Ok(())
}

/// What EncryptedExtensions answers: ALPN, use_srtp, the server_name acknowledgement.
fn encrypted_extensions(
    hello: &ClientHello,
    cx: &mut Context13<'_>,
) -> Result<HelloExtensions, DtlsError> {
    let ext = &hello.extensions;
    let alpn = match &ext.alpn {
        Some(offer) => choose_alpn(offer, cx.params)?,
        None => None,
    };
    let srtp = choose_srtp(ext.use_srtp.as_ref(), cx.params);
    if let Some(name) = requested_server_name(ext)? {
        cx.session.server_name = Some(name);
    }
    cx.session.alpn = alpn.clone();
    cx.session.srtp_profile = srtp;
    Ok(HelloExtensions {
        server_name: ext.server_name.as_ref().map(|_| Vec::new()),
        use_srtp: srtp.map(|p| UseSrtp {
            profiles: vec![p.id()],
            mki: Vec::new(),
        }),
        alpn: alpn.map(|p| vec![p]),
        ..Default::default()
    })
}

/// Our flight is out: what the client's flight is checked against.
pub struct Flown {
    suite: &'static CipherInfo,
    hash: PrfHash,
    traffic: TrafficSecrets,
    master: MasterSecret,
    application: TrafficSecrets,
    exporter: Vec<u8>,
}

impl Flown {
    fn handle_certificate(
        self: Box<Self>,
        certificate: &Certificate13,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<ServerState13, DtlsError> {
        if !certificate.context.is_empty() {
            return Err(DtlsError::IllegalParameter(
                "certificate_request_context must be empty in a handshake",
            ));
        }
        cx.transcript.add(HandshakeType::Certificate, raw);
        if certificate.entries.is_empty() {
            let mode = cx.params.verify.as_ref().unwrap_or(&cx.config.verify).mode;
            if mode & VERIFY_FAIL_IF_NO_PEER_CERT != 0 {
                return Err(DtlsError::CertificateRequired);
            }
            return Ok(ServerState13::ExpectFinished(self));
        }
        let chain: Vec<Vec<u8>> = certificate.entries.iter().map(|e| e.cert.clone()).collect();
        let leaf = verify_peer_chain(
            cx.config,
            cx.params,
            cx.session,
            &chain,
            Purpose::ClientAuth,
        )?;
        Ok(ServerState13::ExpectCertificateVerify(self, leaf))
    }

    fn handle_finished(
        self,
        verify_data: &[u8],
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<(), DtlsError> {
        let hash = self.hash;
        cx.check_peer_finished(hash, &self.traffic.client, verify_data, raw)?;
        *cx.secrets = Some(Secrets13 {
            suite: self.suite,
            application: self.application,
            exporter: self.exporter,
            resumption: self.master.resumption_master(&cx.transcript.hash(hash)),
        });
        Ok(())
    }
}
