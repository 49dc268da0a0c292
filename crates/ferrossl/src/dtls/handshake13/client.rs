//! The client's states (RFC 8446 §2): ClientHello (once more after a HelloRetryRequest),
//! then the server's ServerHello, EncryptedExtensions, [CertificateRequest,] Certificate,
//! CertificateVerify and Finished, then ours: [Certificate, [CertificateVerify,]] Finished.

use rustls::crypto::ActiveKeyExchange;
use rustls::{NamedGroup, SignatureScheme};

use crate::ciphers::CipherInfo;
use crate::config::Role;
use crate::verify::Purpose;
use crate::x509::{PKey, X509Name, X509};

use super::super::codec::extensions::{HelloExtensions, UseSrtp};
use super::super::codec::extensions13::{
    encode_cookie, encode_key_share_offer, encode_versions_offer, read_certificate_authorities,
    read_cookie, read_key_share_choice, read_key_share_retry, read_psk_choice,
    read_selected_version, KeyShareEntry, CERTIFICATE_AUTHORITIES, COOKIE, DTLS13, KEY_SHARE,
    PRE_SHARED_KEY, SUPPORTED_VERSIONS,
};
use super::super::codec::message::{ClientHello, ServerHello};
use super::super::codec::message13::{Certificate13, CertificateRequest13, Message13};
use super::super::codec::record::DTLS12;
use super::super::error::DtlsError;
use super::super::handshake::{random, sni_to_send, verify_peer_chain};
use super::super::key_schedule::PrfHash;
use super::super::key_schedule13::{EarlySecret, HandshakeSecret, Secret, TrafficSecrets};
use super::resumption13::{self, Resumable};
use super::{
    crypto, groups13, is_large, kx_group, own_certificate_entries, schemes13,
    sign_certificate_verify, suites13, unexpected, verify_certificate_verify, Context13, Secrets13,
    APPLICATION_EPOCH, HANDSHAKE_EPOCH,
};

/// The padding extension (RFC 7685).
const PADDING: u16 = 21;
/// The ClientHello body size padding brings a first ClientHello to.
const MIN_HELLO_LEN: usize = 256;

/// The client's handshake, state by state.
pub enum ClientState13 {
    /// ClientHello sent.
    ExpectServerHello(Box<ExpectServerHello>),
    /// Handshake keys in place.
    ExpectEncryptedExtensions(Box<Keyed>),
    /// The server's CertificateRequest may come before its Certificate.
    ExpectCertificateOrRequest(Box<Keyed>),
    /// The server asked for our certificate.
    ExpectCertificate(Box<Keyed>),
    /// The server's certificate verified: the proof that it holds the key comes next.
    ExpectCertificateVerify(Box<Keyed>, Vec<u8>),
    /// Waiting for the server's Finished.
    ExpectFinished(Box<Keyed>),
    /// Done.
    Established,
}

impl ClientState13 {
    /// Builds the first ClientHello. It offers the post-quantum hybrid but carries a share
    /// of the first classic group only, so that it fits one datagram; a server that wants
    /// the hybrid asks with a HelloRetryRequest.
    /// `fallback` is the ClientHello a DTLS 1.2 client would send: the hello then offers
    /// DTLS 1.2 too, with everything of that one, so that a 1.2 server can answer it.
    pub fn start(cx: &mut Context13<'_>, fallback: Option<ClientHello>) -> Result<Self, DtlsError> {
        let groups = groups13(cx.config);
        let first = groups.iter().copied().find(|g| !is_large(*g));
        let shares = first.map(start_share).transpose()?.into_iter().collect();
        let params = cx.params;
        let server_name = sni_to_send(params);
        let mut cipher_suites: Vec<_> = suites13(cx.config).iter().map(|c| c.suite).collect();
        let mut versions = vec![DTLS13];
        // RFC 9147 §5.3: the session ID a DTLS 1.2 server gave us goes in
        // legacy_session_id, so that the 1.2 server can resume the session.
        let mut session_id = Vec::new();
        let mut extensions = match fallback {
            Some(hello12) => {
                cipher_suites.extend(hello12.cipher_suites);
                versions.push(DTLS12);
                session_id = hello12.session_id;
                hello12.extensions
            }
            None => HelloExtensions {
                server_name,
                use_srtp: (!params.srtp_profiles.is_empty()).then(|| UseSrtp {
                    profiles: params.srtp_profiles.iter().map(|p| p.id()).collect(),
                    mki: Vec::new(),
                }),
                alpn: (!params.alpn_protocols.is_empty()).then(|| params.alpn_protocols.clone()),
                connection_id: params.connection_id.clone(),
                ..Default::default()
            },
        };
        extensions.supported_groups = Some(groups);
        // RSA PKCS#1 stays in the list for signatures in certificates (RFC 8446 §4.2.3).
        extensions.signature_algorithms = Some(crypto::SIGNATURE_SCHEMES.to_vec());
        let mut offer = Vec::new();
        encode_versions_offer(&versions, &mut offer);
        extensions.set_raw(SUPPORTED_VERSIONS, offer);
        let mut state = ExpectServerHello {
            hello: ClientHello {
                client_version: DTLS12,
                random: random()?,
                session_id,
                cookie: Vec::new(),
                cipher_suites,
                compression_methods: vec![0],
                extensions,
            },
            shares,
            retry_suite: None,
            resumption: None,
        };
        state.set_key_shares();
        state.pad();
        state.resumption = resumption13::offer(cx.params, &suites13(cx.config), cx.now_secs());
        state.add_resumption(cx);
        cx.session.client_random = Some(state.hello.random);
        cx.send(&Message13::ClientHello(state.hello.clone()));
        cx.finish_flight(true);
        Ok(ClientState13::ExpectServerHello(Box::new(state)))
    }

    /// The ClientHello sent, while the ServerHello is still to come and no
    /// HelloRetryRequest came (after one, the server speaks DTLS 1.3 and a 1.2 answer can
    /// only be forged: RFC 8446 §4.1.4).
    pub fn sent_hello(&self) -> Option<&ClientHello> {
        match self {
            ClientState13::ExpectServerHello(s) if s.retry_suite.is_none() => Some(&s.hello),
            _ => None,
        }
    }

    /// Takes the next handshake message and its body as received (for the transcript).
    pub fn handle(
        self,
        message: Message13,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<Self, DtlsError> {
        use ClientState13 as S;
        use Message13 as M;
        Ok(match (self, message) {
            (S::ExpectServerHello(s), M::ServerHello(m)) => (*s).handle(m, raw, cx)?,
            (S::ExpectEncryptedExtensions(s), M::EncryptedExtensions(m)) => {
                let s = s.handle_encrypted_extensions(&m, raw, cx)?;
                match &s.resumed {
                    Some(state) => {
                        cx.restore_peer_chain(&state.peer_chain);
                        S::ExpectFinished(s)
                    }
                    None => S::ExpectCertificateOrRequest(s),
                }
            }
            (S::ExpectCertificateOrRequest(mut s), M::CertificateRequest(m)) => {
                s.handle_certificate_request(m, raw, cx)?;
                S::ExpectCertificate(s)
            }
            (S::ExpectCertificateOrRequest(s) | S::ExpectCertificate(s), M::Certificate(m)) => {
                let leaf = s.handle_certificate(&m, raw, cx)?;
                S::ExpectCertificateVerify(s, leaf)
            }
            (S::ExpectCertificateVerify(s, leaf), M::CertificateVerify(m)) => {
                let th = cx.transcript.hash(s.hash);
                verify_certificate_verify(&leaf, &m, Role::Server, &th)?;
                cx.transcript
                    .add(rustls::HandshakeType::CertificateVerify, raw);
                S::ExpectFinished(s)
            }
            (S::ExpectFinished(s), M::Finished(m)) => {
                s.handle_finished(&m, raw, cx)?;
                S::Established
            }
            (state, m) => return Err(unexpected(state.expects(), &m)),
        })
    }

    /// What the state waits for, for error messages.
    pub(super) fn expects(&self) -> &'static str {
        match self {
            ClientState13::ExpectServerHello(_) => "ServerHello or HelloRetryRequest",
            ClientState13::ExpectEncryptedExtensions(_) => "EncryptedExtensions",
            ClientState13::ExpectCertificateOrRequest(_) => "Certificate or CertificateRequest",
            ClientState13::ExpectCertificate(_) => "Certificate",
            ClientState13::ExpectCertificateVerify(..) => "CertificateVerify",
            ClientState13::ExpectFinished(_) => "Finished",
            ClientState13::Established => "NewSessionTicket",
        }
    }
}

fn start_share(group: NamedGroup) -> Result<(NamedGroup, Box<dyn ActiveKeyExchange>), DtlsError> {
    let kx = kx_group(group)
        .ok_or_else(|| DtlsError::Internal(format!("no key exchange for {group:?}")))?;
    let share = kx
        .start()
        .map_err(|e| DtlsError::Internal(format!("cannot start {group:?}: {e}")))?;
    Ok((group, share))
}

/// The version a ServerHello or HelloRetryRequest chose; anything but DTLS 1.3 is refused
/// (this client offers nothing else).
fn selected_version(sh: &ServerHello) -> Result<(), DtlsError> {
    match sh
        .extensions
        .raw(SUPPORTED_VERSIONS)
        .map(read_selected_version)
    {
        Some(Ok(DTLS13)) => Ok(()),
        Some(Err(e)) => Err(e.into()),
        _ => Err(DtlsError::ProtocolVersion(
            "the server did not choose DTLS 1.3",
        )),
    }
}

/// Waiting for ServerHello or a HelloRetryRequest.
pub struct ExpectServerHello {
    hello: ClientHello,
    shares: Vec<(NamedGroup, Box<dyn ActiveKeyExchange>)>,
    /// The suite a HelloRetryRequest named: the ServerHello must agree.
    retry_suite: Option<&'static CipherInfo>,
    /// The session offered for resumption, and its ticket.
    resumption: Option<(Resumable, Vec<u8>)>,
}

impl ExpectServerHello {
    fn set_key_shares(&mut self) {
        let entries: Vec<KeyShareEntry> = self
            .shares
            .iter()
            .map(|(group, kx)| KeyShareEntry {
                group: *group,
                key_exchange: kx.pub_key().to_vec(),
            })
            .collect();
        let mut body = Vec::new();
        encode_key_share_offer(&entries, &mut body);
        self.hello.extensions.set_raw(KEY_SHARE, body);
    }

    /// RFC 7685 padding up to [`MIN_HELLO_LEN`]: a server answers a first ClientHello with
    /// no more bytes than it received (RFC 9147 §5.1), and its HelloRetryRequest with a
    /// cookie is close to a short ClientHello's size.
    fn pad(&mut self) {
        let mut body = Vec::new();
        self.hello.encode(&mut body);
        // The padding extension's own type and length take four bytes.
        let missing = MIN_HELLO_LEN.saturating_sub(body.len() + 4);
        if missing > 0 {
            self.hello.extensions.set_raw(PADDING, vec![0; missing]);
        }
    }

    /// Offers the session to resume, with its binder over the transcript so far and the
    /// hello (so after everything else in the hello is final).
    fn add_resumption(&mut self, cx: &Context13<'_>) {
        if let Some((state, ticket)) = &self.resumption {
            let now_ms = (cx.params.wall_clock)().as_secs() * 1000;
            resumption13::add_offer(&mut self.hello, state, ticket, cx.transcript, now_ms);
        }
    }

    /// The PSK the server accepted in its ServerHello, if it accepted ours.
    fn accepted_psk(
        &self,
        sh: &ServerHello,
        hash: PrfHash,
    ) -> Result<Option<Resumable>, DtlsError> {
        let Some(choice) = sh.extensions.raw(PRE_SHARED_KEY) else {
            return Ok(None);
        };
        let (0, Some((state, _))) = (read_psk_choice(choice)?, &self.resumption) else {
            return Err(DtlsError::IllegalParameter("a PSK that was not offered"));
        };
        let same_hash = crate::ciphers::info(state.suite).is_some_and(|s| PrfHash::of(s) == hash);
        if !same_hash {
            return Err(DtlsError::IllegalParameter(
                "a suite the PSK cannot go with",
            ));
        }
        Ok(Some(state.clone()))
    }

    fn offered_suite(
        &self,
        sh: &ServerHello,
        cx: &Context13<'_>,
    ) -> Result<&'static CipherInfo, DtlsError> {
        // RFC 9147 §5.3: no echo of legacy_session_id; some older servers echo it all the
        // same, which does no harm.
        let echo_ok = sh.session_id.is_empty() || sh.session_id == self.hello.session_id;
        if !echo_ok || sh.compression_method != 0 {
            return Err(DtlsError::IllegalParameter(
                "legacy_session_id_echo or compression that the client did not send",
            ));
        }
        let suite = suites13(cx.config)
            .into_iter()
            .find(|c| c.suite == sh.cipher_suite)
            .ok_or(DtlsError::IllegalParameter(
                "a cipher suite that was not offered",
            ))?;
        if self.retry_suite.is_some_and(|s| s.suite != suite.suite) {
            return Err(DtlsError::IllegalParameter(
                "a ServerHello suite other than the HelloRetryRequest's",
            ));
        }
        Ok(suite)
    }

    fn handle(
        self,
        sh: ServerHello,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<ClientState13, DtlsError> {
        selected_version(&sh)?;
        let suite = self.offered_suite(&sh, cx)?;
        if Message13::ServerHello(sh.clone()).is_hello_retry_request() {
            return self.handle_retry(sh, suite, raw, cx);
        }
        let choice = sh
            .extensions
            .raw(KEY_SHARE)
            .ok_or(DtlsError::MissingExtension("key_share in the ServerHello"))?;
        let choice = read_key_share_choice(choice)?;
        let hash = PrfHash::of(suite);
        let resumed = self.accepted_psk(&sh, hash)?;
        let Some((group, share)) = self.shares.into_iter().find(|(g, _)| *g == choice.group) else {
            return Err(DtlsError::IllegalParameter(
                "a key share in a group the client sent none for",
            ));
        };
        let shared = share
            .complete(&choice.key_exchange)
            .map_err(|_| DtlsError::IllegalParameter("invalid key share"))?;
        cx.transcript.add(rustls::HandshakeType::ServerHello, raw);
        // RFC 9147 §9: the server's connection_id answers ours in the ServerHello; from the
        // handshake epoch on, records carry the receiver's.
        if let (Some(theirs), Some(ours)) = (&sh.extensions.connection_id, &cx.params.connection_id)
        {
            cx.records.set_connection_ids(theirs.clone(), ours.clone());
        }
        let psk = resumed.as_ref().map(|r| r.psk.as_slice());
        let handshake = EarlySecret::new(hash, psk).into_handshake(shared.secret_bytes());
        let traffic = handshake.traffic_secrets(&cx.transcript.hash(hash));
        cx.install(HANDSHAKE_EPOCH, suite, &traffic)?;
        cx.session.suite = Some(suite);
        cx.session.group = Some(group);
        cx.session.server_random = Some(sh.random);
        Ok(ClientState13::ExpectEncryptedExtensions(Box::new(Keyed {
            suite,
            hash,
            handshake,
            traffic,
            offered: self.hello.extensions,
            request: None,
            resumed,
        })))
    }

    /// RFC 8446 §4.1.4: one HelloRetryRequest, which must change something; the second
    /// ClientHello repeats the first with the cookie and the share asked for.
    fn handle_retry(
        mut self,
        hrr: ServerHello,
        suite: &'static CipherInfo,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<ClientState13, DtlsError> {
        if self.retry_suite.is_some() {
            return Err(DtlsError::UnexpectedMessage {
                expected: "ServerHello",
                got: "a second HelloRetryRequest".into(),
            });
        }
        let cookie = hrr.extensions.raw(COOKIE).map(read_cookie).transpose()?;
        let group = hrr
            .extensions
            .raw(KEY_SHARE)
            .map(read_key_share_retry)
            .transpose()?;
        if let Some(group) = group {
            let offered = self
                .hello
                .extensions
                .supported_groups
                .as_ref()
                .is_some_and(|g| g.contains(&group));
            if !offered || self.shares.iter().any(|(g, _)| *g == group) {
                return Err(DtlsError::IllegalParameter(
                    "a HelloRetryRequest for a group not offered or already shared",
                ));
            }
            self.shares = vec![start_share(group)?];
            self.set_key_shares();
        }
        if cookie.is_none() && group.is_none() {
            return Err(DtlsError::IllegalParameter(
                "a HelloRetryRequest that changes nothing",
            ));
        }
        if let Some(cookie) = cookie {
            let mut body = Vec::new();
            encode_cookie(&cookie, &mut body);
            // Ahead of the key share: a stateless server that sees only the first fragment
            // of a big second ClientHello (a hybrid share) finds its cookie there.
            let unknown = &mut self.hello.extensions.unknown;
            let at = unknown
                .iter()
                .position(|(t, _)| *t == KEY_SHARE)
                .unwrap_or(unknown.len());
            unknown.insert(at, (COOKIE, body));
        }
        // RFC 8446 §4.1.2 lets the second ClientHello drop its padding: it is no first
        // datagram to be answered statelessly any more.
        self.hello.extensions.unknown.retain(|(t, _)| *t != PADDING);
        self.send_second_hello(suite, raw, cx)
    }

    fn send_second_hello(
        mut self,
        suite: &'static CipherInfo,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<ClientState13, DtlsError> {
        cx.transcript.replace_with_message_hash(PrfHash::of(suite));
        cx.transcript.add(rustls::HandshakeType::ServerHello, raw);
        self.retry_suite = Some(suite);
        self.add_resumption(cx);
        cx.send(&Message13::ClientHello(self.hello.clone()));
        cx.finish_flight(true);
        Ok(ClientState13::ExpectServerHello(Box::new(self)))
    }
}

/// Handshake keys in place: what the rest of the handshake needs.
pub struct Keyed {
    suite: &'static CipherInfo,
    hash: PrfHash,
    handshake: HandshakeSecret,
    traffic: TrafficSecrets,
    offered: HelloExtensions,
    request: Option<CertificateRequest13>,
    /// The session the server resumed: no certificates come.
    resumed: Option<Resumable>,
}

impl Keyed {
    fn handle_encrypted_extensions(
        self: Box<Self>,
        ee: &HelloExtensions,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<Box<Self>, DtlsError> {
        // A server may tell its groups here (RFC 8446 §4.2.7); nothing else unasked.
        let answered = HelloExtensions {
            supported_groups: None,
            ..ee.clone()
        };
        if answered.unsolicited(&self.offered) {
            return Err(DtlsError::UnsupportedExtension);
        }
        if let Some(alpn) = &ee.alpn {
            let [protocol] = &alpn[..] else {
                return Err(DtlsError::IllegalParameter("ALPN must name one protocol"));
            };
            if !cx.params.alpn_protocols.contains(protocol) {
                return Err(DtlsError::IllegalParameter(
                    "an ALPN protocol that was not offered",
                ));
            }
            cx.session.alpn = Some(protocol.clone());
        }
        if let Some(srtp) = &ee.use_srtp {
            let profile = match &srtp.profiles[..] {
                [one] => cx
                    .params
                    .srtp_profiles
                    .iter()
                    .copied()
                    .find(|p| p.id() == *one),
                _ => None,
            };
            cx.session.srtp_profile = Some(profile.ok_or(DtlsError::IllegalParameter(
                "use_srtp must name one offered profile",
            ))?);
        }
        cx.transcript
            .add(rustls::HandshakeType::EncryptedExtensions, raw);
        Ok(self)
    }

    fn handle_certificate_request(
        &mut self,
        request: CertificateRequest13,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<(), DtlsError> {
        if !request.context.is_empty() {
            return Err(DtlsError::IllegalParameter(
                "certificate_request_context must be empty in a handshake",
            ));
        }
        if request.extensions.signature_algorithms.is_none() {
            return Err(DtlsError::MissingExtension(
                "signature_algorithms in the CertificateRequest",
            ));
        }
        let names = (request.extensions.raw(CERTIFICATE_AUTHORITIES))
            .map(read_certificate_authorities)
            .transpose()
            .map_err(|_| DtlsError::IllegalParameter("malformed certificate_authorities"))?;
        cx.session.client_ca_names = Some(
            (names.unwrap_or_default().iter())
                .filter_map(|n| X509Name::from_der(n).ok())
                .collect(),
        );
        cx.transcript
            .add(rustls::HandshakeType::CertificateRequest, raw);
        self.request = Some(request);
        Ok(())
    }

    fn handle_certificate(
        &self,
        certificate: &Certificate13,
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<Vec<u8>, DtlsError> {
        if !certificate.context.is_empty() {
            return Err(DtlsError::IllegalParameter(
                "certificate_request_context must be empty in a handshake",
            ));
        }
        let chain: Vec<Vec<u8>> = certificate.entries.iter().map(|e| e.cert.clone()).collect();
        let leaf = verify_peer_chain(
            cx.config,
            cx.params,
            cx.session,
            &chain,
            Purpose::ServerAuth,
        )?;
        cx.transcript.add(rustls::HandshakeType::Certificate, raw);
        Ok(leaf)
    }

    /// Checks the server's Finished, then sends ours (with our certificate when asked) and
    /// switches to the application keys.
    fn handle_finished(
        self: Box<Self>,
        verify_data: &[u8],
        raw: &[u8],
        cx: &mut Context13<'_>,
    ) -> Result<(), DtlsError> {
        let hash = self.hash;
        cx.check_peer_finished(hash, &self.traffic.server, verify_data, raw)?;
        let master = self.handshake.into_master();
        let server_finished = cx.transcript.hash(hash);
        let application = master.traffic_secrets(&server_finished);
        let exporter = master.exporter_master(&server_finished);
        if let Some(request) = &self.request {
            send_client_certificate(request, cx)?;
        }
        let finished = Secret::new(hash, &self.traffic.client).finished(&cx.transcript.hash(hash));
        cx.send(&Message13::Finished(finished));
        cx.finish_flight(true);
        cx.install(APPLICATION_EPOCH, self.suite, &application)?;
        *cx.secrets = Some(Secrets13 {
            suite: self.suite,
            application,
            exporter,
            resumption: master.resumption_master(&cx.transcript.hash(hash)),
        });
        Ok(())
    }
}

/// Our certificate chain and key (configured, or from the certificate callback), if we have
/// them and can sign with a scheme the server accepts.
fn client_identity(schemes: &[SignatureScheme], cx: &Context13<'_>) -> Option<(Vec<X509>, PKey)> {
    let names = cx.session.client_ca_names.as_deref().unwrap_or_default();
    let (chain, key) = cx.config.client_identity(names)?;
    let allowed: Vec<SignatureScheme> = schemes13()
        .into_iter()
        .filter(|s| schemes.contains(s))
        .collect();
    crypto::can_sign(&key, &allowed).then_some((chain, key))
}

/// Certificate (empty without a usable identity, RFC 8446 §4.4.2.4) and CertificateVerify.
fn send_client_certificate(
    request: &CertificateRequest13,
    cx: &mut Context13<'_>,
) -> Result<(), DtlsError> {
    let schemes = request
        .extensions
        .signature_algorithms
        .clone()
        .unwrap_or_default();
    let identity = client_identity(&schemes, cx);
    let entries = match &identity {
        Some((chain, _)) => own_certificate_entries(chain),
        None => Vec::new(),
    };
    cx.send(&Message13::Certificate(Certificate13 {
        context: request.context.clone(),
        entries,
    }));
    if let Some((_, key)) = identity {
        let hash = PrfHash::of(
            cx.session
                .suite
                .expect("chosen before the server's Finished"),
        );
        let th = cx.transcript.hash(hash);
        let signed = sign_certificate_verify(&key, &schemes, Role::Client, &th)?;
        cx.send(&Message13::CertificateVerify(signed));
    }
    Ok(())
}
