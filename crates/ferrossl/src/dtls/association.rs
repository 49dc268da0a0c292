//! [`DtlsEngine`]: one association of either DTLS version behind one interface, as BoringSSL
//! keeps its record layers apart behind one SSL object. A client starts in the version its
//! configuration allows (DTLS 1.3 when the maximum says so); a server starts as DTLS 1.2 and
//! becomes DTLS 1.3 when the first ClientHello offers it and the configuration allows it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::ciphers::CipherInfo;
use crate::config::{Config, Role};
use crate::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
use crate::error::{Error, Result};
use crate::verify::VerifyOutcome;
use crate::x509::{X509Name, X509};

use super::codec::extensions13::{read_cookie, COOKIE};
use super::codec::message::ClientHello;
use super::cookie::{initial_hello, CookieProvider, ListenOutcome};
use super::engine::{check_mtu, Engine12};
use super::engine13::Engine13;
use super::error::DtlsError;
use super::handshake::SessionInfo;
use super::handshake13::{cookie13, groups13, suites13};
use super::srtp::SrtpProfile;
use super::version_sensing::{
    answers_with_12, first_fragment, first_hello_offers_13, holds_client_hello_fragment, offers_13,
    second_hello_fragment, UndecidedHello,
};
use super::{DtlsParams, DtlsStats};

/// OpenSSL's name for a DTLS version.
pub fn dtls_version_name(version: i32) -> &'static str {
    match version {
        DTLS1_3_VERSION => "DTLSv1.3",
        _ => "DTLSv1.2",
    }
}

enum Inner {
    V12(Box<Engine12>),
    V13(Box<Engine13>),
}

/// One DTLS association, client or server, of DTLS 1.2 or 1.3.
pub struct DtlsEngine {
    inner: Inner,
    config: Arc<Config>,
    /// Server: the parameters a DTLS 1.3 engine would start with.
    params: Option<DtlsParams>,
    /// Client offering both versions: the DTLS 1.2 engine that takes over when the server
    /// answers with 1.2, until a DTLS 1.3 ServerHello makes it useless.
    fallback: Option<Box<Engine12>>,
    /// Server: the datagrams of a first ClientHello not yet whole enough to tell its version.
    undecided: Option<UndecidedHello>,
    /// DTLS 1.3 server: the ClientHello of a restarted client that ended the association.
    restart_hello: Option<Vec<u8>>,
    /// Whether the last datagram handled may move the peer's address.
    may_move_peer: bool,
}

/// What a server does with a datagram while it may still choose its version.
enum Chosen {
    /// The engine that runs takes it.
    Already,
    /// Kept until the first ClientHello is whole.
    NotYet,
    /// The engine just chosen takes these, the datagram's own among them.
    Replay(Vec<Vec<u8>>),
}

/// Calls the same method on whichever engine runs.
macro_rules! either {
    ($self:expr, $e:ident => $body:expr) => {
        match &$self.inner {
            Inner::V12($e) => $body,
            Inner::V13($e) => $body,
        }
    };
    (mut $self:expr, $e:ident => $body:expr) => {
        match &mut $self.inner {
            Inner::V12($e) => $body,
            Inner::V13($e) => $body,
        }
    };
}

impl DtlsEngine {
    /// Starts an association as `role`. A client queues its ClientHello at once (`now` arms
    /// the retransmission timer); a server waits for one.
    pub fn new(config: Arc<Config>, role: Role, params: DtlsParams, now: Instant) -> Result<Self> {
        let (dtls12, dtls13) = config.dtls_versions();
        if !dtls12 && !dtls13 {
            return Err(Error::UnsupportedProtocol(
                "DTLS 1.2 is disabled (OP_NO_DTLSv1_2) and DTLS 1.0 is refused",
            ));
        }
        let mut fallback = None;
        let inner = if dtls13 && (role == Role::Client || !dtls12) {
            let hello12 = if dtls12 && role == Role::Client {
                let engine = Engine12::new(config.clone(), role, params.clone(), now)?;
                let hello = engine.sent_hello();
                fallback = Some(Box::new(engine));
                hello
            } else {
                None
            };
            Inner::V13(Box::new(new13(
                config.clone(),
                role,
                params.clone(),
                now,
                hello12,
            )?))
        } else {
            Inner::V12(Box::new(Engine12::new(
                config.clone(),
                role,
                params.clone(),
                now,
            )?))
        };
        if dtls13 && role == Role::Server {
            check13(&config, role, &params)?;
        }
        Ok(Self {
            inner,
            params: (dtls13 && role == Role::Server).then_some(params),
            config,
            fallback,
            undecided: None,
            restart_hello: None,
            may_move_peer: false,
        })
    }

    /// Takes one datagram from the peer. Bad records are dropped silently (RFC 6347
    /// §4.1.2.7, RFC 9147 §4.5.2); an error means the association failed (a fatal alert is
    /// queued when the peer should hear why).
    pub fn handle_datagram(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<(), DtlsError> {
        match self
            .choose_server_version(datagram, now)
            .map_err(|e| DtlsError::Internal(e.to_string()))?
        {
            Chosen::Already => self.handle_one(datagram, now),
            Chosen::NotYet => Ok(()),
            Chosen::Replay(datagrams) => datagrams
                .iter()
                .try_for_each(|datagram| self.handle_one(datagram, now)),
        }
    }

    fn handle_one(&mut self, datagram: &[u8], now: Instant) -> std::result::Result<(), DtlsError> {
        if self.handle_restart13(datagram, now)? {
            return Ok(());
        }
        self.fall_back_to_12(datagram, now)
            .map_err(|e| DtlsError::Internal(e.to_string()))?;
        either!(mut self, e => e.take_newest_with_cid());
        let result = either!(mut self, e => e.handle_datagram(datagram, now));
        self.may_move_peer = result.is_ok() && either!(mut self, e => e.take_newest_with_cid());
        result?;
        if self.fallback.is_some() && self.session().suite.is_some() {
            // The server chose DTLS 1.3.
            self.fallback = None;
        }
        Ok(())
    }

    /// A client that offered both versions goes on in DTLS 1.2 when the server answers so:
    /// with a HelloVerifyRequest, or a ServerHello that does not choose 1.3.
    fn fall_back_to_12(&mut self, datagram: &[u8], now: Instant) -> Result<()> {
        let Inner::V13(e13) = &self.inner else {
            return Ok(());
        };
        if self.fallback.is_none() || !answers_with_12(datagram) {
            return Ok(());
        }
        let (Some(hello), mut e12) = (e13.sent_hello(), self.fallback.take().expect("checked"))
        else {
            return Ok(());
        };
        e12.adopt_hello(hello, e13.next_plaintext_sequence(), now)?;
        self.inner = Inner::V12(e12);
        Ok(())
    }

    /// A server still waiting for its first ClientHello becomes a DTLS 1.3 server when that
    /// ClientHello offers 1.3. When its first fragment ends before supported_versions, its
    /// datagrams wait until the hello is whole, then go to the engine of its version.
    fn choose_server_version(&mut self, datagram: &[u8], now: Instant) -> Result<Chosen> {
        let Inner::V12(e) = &self.inner else {
            return Ok(Chosen::Already);
        };
        if self.params.is_none() || !e.awaits_client_hello() {
            return Ok(Chosen::Already);
        }
        let (offers_13, pending) = match first_hello_offers_13(datagram) {
            Some(offers_13) => {
                let mut pending = self.undecided.take().map(UndecidedHello::into_datagrams);
                if let Some(pending) = &mut pending {
                    pending.push(datagram.to_vec());
                }
                (offers_13, pending)
            }
            None if holds_client_hello_fragment(datagram) => {
                let undecided = self.undecided.get_or_insert_with(UndecidedHello::default);
                let Some(offers_13) = undecided.add(datagram) else {
                    return Ok(Chosen::NotYet);
                };
                let pending = self.undecided.take().map(UndecidedHello::into_datagrams);
                (offers_13, pending)
            }
            None => return Ok(Chosen::Already),
        };
        if offers_13 {
            let params = self.params.take().expect("checked above");
            self.inner = Inner::V13(Box::new(new13(
                self.config.clone(),
                Role::Server,
                params,
                now,
                None,
            )?));
        }
        Ok(pending.map_or(Chosen::Already, Chosen::Replay))
    }

    /// Whether the last datagram handled may move the peer (RFC 9146 §6, RFC 9147 §9): it
    /// carried our connection ID and a record that authenticated with a number above all
    /// before it. A transport that received it from a new address sends there from now on;
    /// without a connection ID an address change is a new association.
    pub fn datagram_may_move_peer(&self) -> bool {
        self.may_move_peer
    }

    /// Server: the ClientHello datagram that ended a DTLS 1.2 association with
    /// [`DtlsError::PeerRestarted`], once, for a new server engine.
    pub fn take_restart_hello(&mut self) -> Option<Vec<u8>> {
        match &mut self.inner {
            Inner::V12(e) => e.take_restart_hello(),
            Inner::V13(_) => self.restart_hello.take(),
        }
    }

    /// RFC 6347 §4.2.8, kept for DTLS 1.3 (RFC 9147 has no rule of its own): an established
    /// server's ClientHello in the clear, other than the one that began the association, may
    /// come from a client restarted on the same address. It gets a stateless
    /// HelloRetryRequest and the association goes on; only a valid cookie, proof that the
    /// client reads our datagrams, ends it. Returns whether the datagram was such a hello.
    fn handle_restart13(
        &mut self,
        datagram: &[u8],
        now: Instant,
    ) -> std::result::Result<bool, DtlsError> {
        let Inner::V13(e) = &mut self.inner else {
            return Ok(false);
        };
        if let Some(hello) = self.restart_hello.as_mut() {
            // The rest of a fragmented hello that ended the association: the records go
            // with it to the next one (one datagram may carry several).
            if holds_client_hello_fragment(datagram) {
                hello.extend_from_slice(datagram);
            }
            return Err(DtlsError::PeerRestarted);
        }
        if e.role() != Role::Server || !e.handshake_done() {
            return Ok(false);
        }
        let Some(first) = first_fragment(datagram) else {
            return Ok(false);
        };
        if Some(first.random) == e.session().client_random {
            // A late copy of the hello that began this association.
            return Ok(false);
        }
        let (cookies, peer) = e.retry_cookies();
        match listen13(&self.config, cookies, peer, datagram, now) {
            Some(ListenOutcome::HelloVerifyRequest(retry)) => e.send_stateless(retry),
            Some(ListenOutcome::Verified) => {
                self.restart_hello = Some(datagram.to_vec());
                return Err(e.end(DtlsError::PeerRestarted));
            }
            Some(ListenOutcome::Drop) | None => return Ok(false),
        }
        Ok(true)
    }

    /// Sends a KeyUpdate (`SSL_key_update`, DTLS 1.3 only); `request_peer` asks the peer to
    /// update its keys too. Ours change once the peer acknowledges it (RFC 9147 §8).
    pub fn key_update(&mut self, request_peer: bool, now: Instant) -> Result<()> {
        match &mut self.inner {
            Inner::V12(_) => Err(Error::UnsupportedProtocol(
                "DTLS 1.2 has no KeyUpdate (and renegotiation is refused)",
            )),
            Inner::V13(e) => e.key_update(request_peer, now),
        }
    }

    /// The next datagram to send.
    pub fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        either!(mut self, e => e.poll_datagram())
    }

    /// When [`DtlsEngine::handle_timeout`] must be called (`DTLSv1_get_timeout`).
    pub fn next_timeout(&self) -> Option<Instant> {
        either!(self, e => e.next_timeout())
    }

    /// Lets time pass (`DTLSv1_handle_timeout`).
    pub fn handle_timeout(&mut self, now: Instant) -> std::result::Result<(), DtlsError> {
        either!(mut self, e => e.handle_timeout(now))
    }

    /// The connection IDs negotiated: the one the peer's records carry to us, and the one
    /// ours carry to the peer; empty where none.
    pub fn connection_ids(&self) -> (&[u8], &[u8]) {
        either!(self, e => e.connection_ids())
    }

    /// Our role.
    pub fn role(&self) -> Role {
        either!(self, e => e.role())
    }

    /// Whether the handshake is still running (neither finished nor failed).
    pub fn is_handshaking(&self) -> bool {
        self.error().is_none() && !self.handshake_done()
    }

    /// Whether the handshake finished and the association has not failed.
    pub fn is_established(&self) -> bool {
        self.error().is_none() && self.handshake_done()
    }

    fn handshake_done(&self) -> bool {
        match &self.inner {
            Inner::V12(e) => e.is_established(),
            Inner::V13(e) => e.handshake_done(),
        }
    }

    /// The failure that ended the association, if any.
    pub fn error(&self) -> Option<&DtlsError> {
        either!(self, e => e.error())
    }

    /// Sends `data` as one application-data record in one datagram.
    pub fn send(&mut self, data: &[u8]) -> Result<()> {
        either!(mut self, e => e.send(data))
    }

    /// The next application datagram received, in arrival order.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        either!(mut self, e => e.recv())
    }

    /// Whether an application datagram received waits for [`recv`](Self::recv) (a datagram
    /// may carry several records: the ones after the first wait there).
    pub fn has_received(&self) -> bool {
        either!(self, e => e.has_received())
    }

    /// Queues a close_notify alert (once). Nothing may be sent afterwards.
    pub fn close(&mut self) -> Result<()> {
        either!(mut self, e => e.close())
    }

    /// Whether we sent close_notify.
    pub fn close_sent(&self) -> bool {
        either!(self, e => e.close_sent())
    }

    /// Whether the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        either!(self, e => e.peer_closed())
    }

    fn session(&self) -> &SessionInfo {
        either!(self, e => e.session())
    }

    /// The suite, once the ServerHello chose it.
    pub fn cipher(&self) -> Option<&'static CipherInfo> {
        self.session().suite
    }

    /// The protocol version's wire value (`DTLS1_2_VERSION`, `DTLS1_3_VERSION`), once
    /// negotiated.
    pub fn protocol_version(&self) -> Option<i32> {
        let version = match self.inner {
            Inner::V12(_) => DTLS1_2_VERSION,
            Inner::V13(_) => DTLS1_3_VERSION,
        };
        self.session().suite.map(|_| version)
    }

    /// The key exchange group, once known.
    pub fn group(&self) -> Option<rustls::NamedGroup> {
        self.session().group
    }

    /// The chain the peer presented, its own certificate first.
    pub fn peer_certificates(&self) -> &[X509] {
        &self.session().peer_chain
    }

    /// How the peer's chain fared (`get_verify_result`, the verified chain).
    pub fn verify_outcome(&self) -> Option<&VerifyOutcome> {
        self.session().verify_outcome.as_ref()
    }

    /// The SRTP profile use_srtp selected.
    pub fn selected_srtp_profile(&self) -> Option<SrtpProfile> {
        self.session().srtp_profile
    }

    /// The ALPN protocol selected.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session().alpn.as_deref()
    }

    /// Server: the host name the client sent (SNI).
    pub fn server_name(&self) -> Option<&str> {
        self.session().server_name.as_deref()
    }

    /// Client: the CA names the server's CertificateRequest listed (`None` when it sent none).
    pub fn client_ca_names(&self) -> Option<&[X509Name]> {
        self.session().client_ca_names.as_deref()
    }

    /// ClientHello.random.
    pub fn client_random(&self) -> Option<[u8; 32]> {
        self.session().client_random
    }

    /// ServerHello.random.
    pub fn server_random(&self) -> Option<[u8; 32]> {
        self.session().server_random
    }

    /// Whether the handshake resumed a session.
    pub fn session_reused(&self) -> bool {
        self.session().resumed
    }

    /// The verify_data of the Finished message we sent (`SSL_get_finished`).
    pub fn finished(&self) -> Option<&[u8]> {
        self.session().finished.as_deref()
    }

    /// The verify_data of the peer's Finished message, once verified.
    pub fn peer_finished(&self) -> Option<&[u8]> {
        self.session().peer_finished.as_deref()
    }

    /// The DTLS 1.2 master secret, once the handshake finished (DTLS 1.3 has none).
    pub fn master_secret(&self) -> Option<[u8; 48]> {
        self.session().keys.as_ref().map(|k| *k.master_secret())
    }

    /// Keying material: RFC 5705's in DTLS 1.2, where `context` `None` and `Some(b"")`
    /// differ; RFC 8446 §7.5's in DTLS 1.3. With the label "EXTRACTOR-dtls_srtp" and no
    /// context this is the SRTP keying material (RFC 5764 §4.2).
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        either!(self, e => e.export_keying_material(label, len, context))
    }

    /// The datagram size limit.
    pub fn mtu(&self) -> usize {
        either!(self, e => e.mtu())
    }

    /// Changes the datagram size limit (`set_ciphertext_mtu`).
    pub fn set_mtu(&mut self, mtu: usize) -> Result<()> {
        check_mtu(mtu)?;
        if let Some(params) = &mut self.params {
            params.mtu = mtu;
        }
        match &mut self.inner {
            Inner::V12(e) => e.set_mtu(mtu),
            Inner::V13(e) => {
                e.set_mtu(mtu);
                Ok(())
            }
        }
    }

    /// The most application data one datagram can carry (`get_cleartext_mtu`).
    pub fn cleartext_mtu(&self) -> usize {
        either!(self, e => e.cleartext_mtu())
    }

    /// Counters.
    pub fn stats(&self) -> DtlsStats {
        either!(self, e => e.stats())
    }
}

/// A stateless listener's answer to a DTLS 1.3 ClientHello (`DTLSv1_listen`, and a
/// many-client server before it keeps anything): a valid cookie admits the client; without
/// one a HelloRetryRequest with a cookie goes back, no larger than the ClientHello. None when
/// the datagram is not a whole ClientHello offering DTLS 1.3 that the configuration takes.
pub fn listen13(
    config: &Arc<Config>,
    provider: Arc<dyn CookieProvider>,
    peer: Option<SocketAddr>,
    datagram: &[u8],
    now: Instant,
) -> Option<ListenOutcome> {
    if !config.dtls_versions().1 {
        return None;
    }
    if second_hello_fragment(datagram) {
        // A second ClientHello too big for one datagram (a post-quantum key share): its
        // cookie must be in the first fragment (ahead of the key share, as ours puts it and
        // as wolfSSL's stateless server requires), or nothing is admitted. The association
        // then reassembles the hello and checks the cookie again with the rest. A DTLS 1.2
        // one stays with the 1.2 listener.
        let first = first_fragment(datagram)?;
        if first.offers_13 == Some(false) {
            return None;
        }
        let valid = first.cookie.is_some_and(|cookie| {
            cookie13::open(provider.as_ref(), peer, &first.random, &cookie, now).is_some()
        });
        return Some(if valid {
            ListenOutcome::Verified
        } else {
            ListenOutcome::Drop
        });
    }
    let hello = initial_hello(datagram)?.hello;
    if !offers_13(&hello) {
        return None;
    }
    if let Some(cookie) = hello
        .extensions
        .raw(COOKIE)
        .and_then(|c| read_cookie(c).ok())
    {
        let valid = cookie13::open(provider.as_ref(), peer, &hello.random, &cookie, now);
        return Some(match valid {
            Some(_) => ListenOutcome::Verified,
            None => ListenOutcome::Drop,
        });
    }
    let params = DtlsParams {
        cookies: Some(provider),
        peer_addr: peer,
        ..DtlsParams::default()
    };
    let mut engine = new13(config.clone(), Role::Server, params, now, None).ok()?;
    if engine.handle_datagram(datagram, now).is_err() {
        return Some(ListenOutcome::Drop);
    }
    Some(match engine.poll_datagram() {
        Some(retry) => ListenOutcome::HelloVerifyRequest(retry),
        None => ListenOutcome::Drop,
    })
}

/// What a DTLS 1.3 association needs of its configuration.
fn check13(config: &Config, role: Role, params: &DtlsParams) -> Result<()> {
    if suites13(config).is_empty() {
        return Err(Error::NoCipherMatch);
    }
    if groups13(config).is_empty() {
        return Err(Error::InvalidArgument(
            "no key exchange group usable with DTLS 1.3 is enabled".into(),
        ));
    }
    check_mtu(params.mtu)?;
    match (config.cert_chain.first(), &config.key) {
        (Some(cert), Some(key)) => key.matches(cert),
        _ if role == Role::Server => Err(Error::Missing("certificate and private key")),
        _ => Ok(()),
    }
}

fn new13(
    config: Arc<Config>,
    role: Role,
    params: DtlsParams,
    now: Instant,
    fallback: Option<ClientHello>,
) -> Result<Engine13> {
    check13(&config, role, &params)?;
    Engine13::new(config, role, params, now, fallback)
}
