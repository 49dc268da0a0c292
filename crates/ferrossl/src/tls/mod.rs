//! The TLS engine: an adapter that runs TLS 1.2 and 1.3 on rustls and exposes what the
//! OpenSSL-shaped [`crate::connection::Connection`] needs. Sans-IO: bytes in, bytes out.

mod hello;
mod verifier;

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCertUsingSni;
use rustls::sign::{SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, DistinguishedName, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::ServerName;

use crate::ciphers::{self, CipherInfo};
use crate::config::{Config, KeylogCallback, Role, VerifySettings, Version};
use crate::constants::*;
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::session::{ConnectionSessions, ServerSessions, Session, TimedTicketer};
use crate::verify::{ChainVerifier, LeafKeyUsage, Purpose, VerifyOutcome};
use crate::x509::{X509Name, X509};
use hello::HelloScanner;
use verifier::{client_hooks, with_client_scope, ClientIdentity, ClientScope, PeerVerifier};

/// aws-lc-rs's provider as it comes, made once.
pub(crate) fn default_provider() -> &'static Arc<CryptoProvider> {
    static DEFAULT: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// Engine configurations made from one configuration snapshot on first use and shared by
/// its connections, which clone them and add their own parts. A clone of a configuration
/// starts with an empty cache: whatever the copy changes, its engines are made anew.
#[derive(Default)]
pub(crate) struct EngineCache {
    provider: OnceLock<Arc<CryptoProvider>>,
    client: OnceLock<Arc<ClientConfig>>,
    server: OnceLock<Arc<ServerConfig>>,
}

impl Clone for EngineCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// The crypto provider of `config`'s snapshot.
fn provider(config: &Config) -> Arc<CryptoProvider> {
    config
        .engines
        .provider
        .get_or_init(|| narrowed_provider(config))
        .clone()
}

/// aws-lc-rs, narrowed to the configuration's suites and groups.
fn narrowed_provider(config: &Config) -> Arc<CryptoProvider> {
    let default = default_provider();
    if config.tls12_suites.is_none() && config.tls13_suites.is_none() && config.groups.is_none() {
        return default.clone();
    }
    let mut p = (**default).clone();
    p.cipher_suites = ciphers::enabled(config)
        .filter_map(|c| {
            default
                .cipher_suites
                .iter()
                .find(|s| s.suite() == c.suite)
                .copied()
        })
        .collect();
    if let Some(groups) = &config.groups {
        p.kx_groups = groups
            .iter()
            .filter_map(|g| default.kx_groups.iter().find(|k| k.name() == *g).copied())
            .collect();
    }
    Arc::new(p)
}

/// What a connection adds to its context's configuration.
pub struct EngineParams<'a> {
    /// The SNI name a client sends.
    pub server_name: Option<&'a str>,
    /// A name the server's certificate must match (`set1_host`), besides `check_hostname`.
    pub verify_host: Option<&'a str>,
    /// Verification settings (the context's, or the connection's own `set_verify`).
    pub verify: &'a VerifySettings,
    /// ALPN protocols a client offers (the connection's, or the context's).
    pub alpn_protos: &'a [Vec<u8>],
    /// The session a client tries to resume, which also receives the new session.
    pub session: Session,
    /// Whether a client asked for a stapled OCSP response (`request_ocsp`).
    pub request_ocsp: bool,
    /// The connection's application data, handed to callbacks.
    pub ex_data: Arc<ExData>,
}

/// The server's decision on ALPN, made by the connection's callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlpnDecision {
    /// No ALPN in the ServerHello.
    None,
    /// This protocol.
    Select(Vec<u8>),
    /// Abort with no_application_protocol.
    Abort,
}

/// Secrets the engine logs, passed on to the key log callback. Of them only the TLS 1.2
/// master secret is kept, for `master_key`: TLS 1.3's traffic secrets are not held for the
/// connection's lifetime (nothing asks for them later).
struct SecretLog {
    master_secret: Mutex<Option<Vec<u8>>>,
    callback: Option<KeylogCallback>,
    ex_data: Arc<ExData>,
}

impl std::fmt::Debug for SecretLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretLog")
    }
}

impl rustls::KeyLog for SecretLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if let Some(cb) = &self.callback {
            // NSS key log format: label, client random and secret in hex.
            let line = format!("{label} {} {}", hex(client_random), hex(secret));
            cb(&self.ex_data, line.as_bytes());
        }
        // The NSS label of the TLS 1.2 master secret.
        if label == "CLIENT_RANDOM" {
            *self.master_secret.lock().expect("secret log lock") = Some(secret.to_vec());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a session stands.
enum State {
    /// Server: collecting the ClientHello.
    Accepting(Box<rustls::server::Acceptor>),
    /// Server: the ClientHello is here; the connection decides (SNI, ALPN) before going on.
    HelloReceived(Box<rustls::server::Accepted>),
    /// The handshake or the session is running.
    Running(Box<rustls::Connection>),
    /// The server failed before it had a connection.
    Failed(rustls::Error),
}

/// The result of processing input.
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// Input was used; carry on.
    Progress,
    /// A server received the ClientHello: call [`TlsEngine::client_hello`], decide, then
    /// [`TlsEngine::accept`].
    ClientHello,
}

/// What a read of decrypted data found.
pub enum Plaintext {
    /// This many bytes.
    Data(usize),
    /// Nothing: the peer sent close_notify.
    Closed,
    /// Nothing yet.
    Empty,
    /// Nothing: the transport ended without close_notify.
    Eof,
    /// The engine failed.
    Failed(io::Error),
}

/// One TLS session over rustls.
pub struct TlsEngine {
    state: State,
    role: Role,
    /// An alert the server must send although it has no connection (a failed ClientHello).
    pending_alert: Option<rustls::server::AcceptedAlert>,
    /// A fatal alert record we wrote ourselves (a callback failed at the ClientHello).
    raw_alert: Vec<u8>,
    /// Scans our outgoing bytes (client: ClientHello; server: ServerHello).
    outgoing_hello: HelloScanner,
    /// Scans the peer's bytes.
    incoming_hello: HelloScanner,
    verify_outcome: Arc<Mutex<Option<VerifyOutcome>>>,
    ca_names: Arc<Mutex<Option<Vec<X509Name>>>>,
    secrets: Arc<SecretLog>,
    ex_data: Arc<ExData>,
    /// Client: what the shared client hooks act on while this connection is processed.
    client_scope: Option<Arc<ClientScope>>,
    /// The running connection has processed all it was given, without failing: processing
    /// again would change nothing, so [`TlsEngine::process`] skips it. Only ever true while
    /// running (that state is the last).
    settled: bool,
    /// A short read emptied the running connection's plaintext, and nothing has come in or
    /// been processed since: another read would find nothing (the peer had not closed).
    drained: bool,
    /// The last processing saw the peer's close_notify.
    peer_closed: bool,
}

impl TlsEngine {
    /// Starts a session as `role`. A server only collects the ClientHello until
    /// [`TlsEngine::accept`]; a client sends its hello at once.
    pub fn new(config: &Config, role: Role, params: &EngineParams<'_>) -> Result<Self> {
        let mut engine = Self {
            state: match role {
                Role::Server => State::Accepting(Box::default()),
                // Until the connection below replaces it.
                Role::Client => State::Failed(rustls::Error::HandshakeNotComplete),
            },
            role,
            pending_alert: None,
            raw_alert: Vec::new(),
            outgoing_hello: HelloScanner::client_hello(),
            incoming_hello: HelloScanner::server_hello(),
            verify_outcome: Arc::new(Mutex::new(None)),
            ca_names: Arc::new(Mutex::new(None)),
            secrets: Arc::new(SecretLog {
                master_secret: Mutex::default(),
                callback: config.keylog.clone(),
                ex_data: params.ex_data.clone(),
            }),
            ex_data: params.ex_data.clone(),
            client_scope: None,
            settled: false,
            drained: false,
            peer_closed: false,
        };
        if role == Role::Server {
            protocol_versions(config)?;
            // A mismatched pair is reported now; a missing one may still come from the
            // servername callback's context switch.
            config.certified_key(None)?;
            (engine.outgoing_hello, engine.incoming_hello) =
                (HelloScanner::server_hello(), HelloScanner::client_hello());
            return Ok(engine);
        }
        let base = base_client_config(config)?;
        engine.client_scope = Some(Arc::new(ClientScope {
            verifier: engine.verifier(config, role, params),
            identity: Arc::new(ClientIdentity {
                key: config.certified_key(None)?,
                callback: config.client_cert_cb.clone(),
                ca_names: engine.ca_names.clone(),
            }),
        }));
        let mut cc = (*base).clone();
        cc.resumption = Resumption::store(Arc::new(ConnectionSessions(params.session.clone())));
        if config.options & OP_NO_TICKET != 0 {
            cc.resumption = cc
                .resumption
                .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
        }
        cc.enable_sni = params.server_name.is_some();
        cc.alpn_protocols = params.alpn_protos.to_vec();
        cc.key_log = engine.secrets.clone();
        let name = match params.server_name {
            Some(n) => ServerName::try_from(n.to_string())
                .map_err(|e| Error::InvalidArgument(format!("invalid server name {n:?}: {e}")))?,
            // No name: SNI is off and the name is never checked, as in OpenSSL.
            None => ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()),
        };
        let mut conn: rustls::Connection =
            rustls::ClientConnection::new(Arc::new(cc), name)?.into();
        conn.set_buffer_limit(None);
        engine.state = State::Running(Box::new(conn));
        Ok(engine)
    }

    fn verifier(
        &self,
        config: &Config,
        role: Role,
        params: &EngineParams<'_>,
    ) -> Arc<PeerVerifier> {
        Arc::new(PeerVerifier {
            chain: chain_verifier(config, role, params),
            ex_data: params.ex_data.clone(),
            outcome: self.verify_outcome.clone(),
            algorithms: provider(config).signature_verification_algorithms,
            ca_names: config
                .client_ca_list
                .iter()
                .map(|n| DistinguishedName::from(n.to_der().to_vec()))
                .collect(),
            ocsp_client: match role {
                Role::Client if params.request_ocsp => config.ocsp_client.clone(),
                _ => None,
            },
        })
    }

    /// The SNI name and ALPN offer of the ClientHello a server received.
    pub fn client_hello(&self) -> Option<(Option<String>, Vec<Vec<u8>>)> {
        let State::HelloReceived(accepted) = &self.state else {
            return None;
        };
        let hello = accepted.client_hello();
        let alpn = hello
            .alpn()
            .map(|a| a.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        Some((hello.server_name().map(str::to_string), alpn))
    }

    /// Goes on with the server handshake under `config` (possibly another context's, chosen by
    /// the servername callback), with the ALPN decision and an OCSP response to staple.
    pub fn accept(
        &mut self,
        config: &Config,
        params: &EngineParams<'_>,
        alpn: AlpnDecision,
        ocsp: Vec<u8>,
    ) -> Result<()> {
        let State::HelloReceived(accepted) = std::mem::replace(
            &mut self.state,
            State::Failed(rustls::Error::HandshakeNotComplete),
        ) else {
            return Err(Error::WrongState("no ClientHello is waiting"));
        };
        let built = self.server_config(config, params, alpn, ocsp);
        let (sc, signing_key) = match built {
            Ok(built) => built,
            Err(e) => {
                self.state = State::Failed(rustls::Error::General(e.to_string()));
                return Err(e);
            }
        };
        if is_inappropriate_fallback(&accepted.client_hello(), config) {
            self.abort_hello(rustls::AlertDescription::InappropriateFallback);
            return Err(Error::InappropriateFallback);
        }
        if tls13_cannot_sign(&accepted.client_hello(), &*signing_key, config) {
            self.abort_hello(rustls::AlertDescription::HandshakeFailure);
            return Err(Error::Protocol(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoSignatureSchemesInCommon,
            )));
        }
        match accepted.into_connection(Arc::new(sc)) {
            Ok(mut conn) => {
                conn.set_buffer_limit(None);
                self.state = State::Running(Box::new(conn.into()));
                Ok(())
            }
            Err((e, alert)) => {
                self.pending_alert = Some(alert);
                self.state = State::Failed(e.clone());
                Err(Error::Protocol(e))
            }
        }
    }

    /// Fails a server at the ClientHello with a fatal `alert` (a callback refused).
    pub fn abort_hello(&mut self, alert: rustls::AlertDescription) {
        // A plaintext alert record (RFC 8446 §5.1, §6): type 21, legacy version, length 2,
        // level fatal (2), description.
        self.raw_alert = vec![21, 3, 3, 0, 2, 2, u8::from(alert)];
        self.state = State::Failed(rustls::Error::General(format!("aborted with {alert:?}")));
    }

    fn server_config(
        &self,
        config: &Config,
        params: &EngineParams<'_>,
        alpn: AlpnDecision,
        ocsp: Vec<u8>,
    ) -> Result<(ServerConfig, Arc<dyn SigningKey>)> {
        let mut sc = if params.verify.mode & VERIFY_PEER != 0 {
            // The verifier is this connection's own, and rustls takes one only in the builder.
            server_settings(config, Some(self.verifier(config, Role::Server, params)))?
        } else {
            (*base_server_config(config)?).clone()
        };
        let key = config
            .certified_key(Some(ocsp))?
            .ok_or(Error::Missing("certificate and private key"))?;
        let signing_key = key.key.clone();
        sc.cert_resolver = Arc::new(SingleCertAndKey::from(key));
        sc.key_log = self.secrets.clone();
        sc.alpn_protocols = match alpn {
            AlpnDecision::None => Vec::new(),
            AlpnDecision::Select(p) => vec![p],
            AlpnDecision::Abort => {
                return Err(Error::WrongState("an aborted ClientHello cannot go on"))
            }
        };
        Ok((sc, signing_key))
    }

    #[inline]
    fn conn(&self) -> Option<&rustls::Connection> {
        match &self.state {
            State::Running(c) => Some(c),
            _ => None,
        }
    }

    /// Takes ciphertext from `rd` (one read call). Ok(0) means the transport reached EOF.
    pub fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        let mut tee;
        // Once the peer's hello has passed, its bytes go to the engine as they are.
        let rd: &mut dyn Read = if self.incoming_hello.is_done() {
            rd
        } else {
            tee = TeeReader {
                inner: rd,
                scanner: &mut self.incoming_hello,
            };
            &mut tee
        };
        let read = match &mut self.state {
            State::Accepting(acceptor) => acceptor.read_tls(rd),
            State::Running(conn) => conn.read_tls(rd),
            // Input waits while the connection decides, or after a failure.
            State::HelloReceived(_) | State::Failed(_) => Err(io::ErrorKind::WouldBlock.into()),
        };
        // EOF is news too: the connection reports it when processed, or when read.
        if read.is_ok() {
            (self.settled, self.drained) = (false, false);
        }
        read
    }

    /// Writes pending ciphertext to `wr` (one write call).
    pub fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        if let Some(mut alert) = self.pending_alert.take() {
            return alert.write(wr);
        }
        if !self.raw_alert.is_empty() {
            let n = wr.write(&self.raw_alert)?;
            self.raw_alert.drain(..n);
            return Ok(n);
        }
        let mut tee;
        // Once our hello has passed, our bytes go out as they are.
        let wr: &mut dyn Write = if self.outgoing_hello.is_done() {
            wr
        } else {
            tee = TeeWriter {
                inner: wr,
                scanner: &mut self.outgoing_hello,
            };
            &mut tee
        };
        match &mut self.state {
            State::Running(conn) => conn.write_tls(wr),
            _ => Ok(0),
        }
    }

    /// Processes the ciphertext taken so far.
    #[inline] // A settled engine answers at once; every `recv` that finds no input asks.
    pub fn process(&mut self) -> Result<Processed> {
        if self.settled {
            return Ok(Processed::Progress);
        }
        self.process_state()
    }

    fn process_state(&mut self) -> Result<Processed> {
        match &mut self.state {
            State::Accepting(acceptor) => match acceptor.accept() {
                Ok(None) => Ok(Processed::Progress),
                Ok(Some(accepted)) => {
                    self.state = State::HelloReceived(Box::new(accepted));
                    Ok(Processed::ClientHello)
                }
                Err((e, alert)) => {
                    self.state = State::Failed(e.clone());
                    if let Some(reason) = self.incoming_hello.plain_http() {
                        // An HTTP client would not understand an alert; OpenSSL sends none.
                        return Err(Error::PlainHttp(reason));
                    }
                    self.pending_alert = Some(alert);
                    Err(Error::Protocol(e))
                }
            },
            State::HelloReceived(_) => Ok(Processed::ClientHello),
            State::Running(_) => match self.process_packets() {
                Some(Err(e)) => Err(self.map_error(e)),
                _ => Ok(Processed::Progress),
            },
            State::Failed(e) => Err(match self.incoming_hello.plain_http() {
                // Said again as it was first said.
                Some(reason) => Error::PlainHttp(reason),
                None => Error::Protocol(e.clone()),
            }),
        }
    }

    /// Makes the running connection process what it holds (None before it runs). A failure
    /// stays: rustls returns it again on every later call.
    fn process_packets(&mut self) -> Option<std::result::Result<rustls::IoState, rustls::Error>> {
        let State::Running(conn) = &mut self.state else {
            return None;
        };
        let processed = match &self.client_scope {
            Some(scope) => with_client_scope(scope, || conn.process_new_packets()),
            None => conn.process_new_packets(),
        };
        self.settled = processed.is_ok();
        self.drained = false;
        if let Ok(state) = &processed {
            self.peer_closed = state.peer_has_closed();
        }
        Some(processed)
    }

    /// The engine's state after processing what it has buffered (None before it runs, or
    /// once it failed).
    fn io_state(&mut self) -> Option<rustls::IoState> {
        self.process_packets()?.ok()
    }

    /// Whether a read would have nothing to report (data, the peer's close, a failure)
    /// until more ciphertext comes.
    pub fn awaits_ciphertext(&mut self) -> bool {
        self.io_state()
            .is_some_and(|s| s.plaintext_bytes_to_read() == 0 && !s.peer_has_closed())
    }

    /// Ciphertext waiting to be written.
    pub fn tls_pending(&mut self) -> usize {
        let queued = self.raw_alert.len() + usize::from(self.pending_alert.is_some());
        queued + self.io_state().map_or(0, |s| s.tls_bytes_to_write())
    }

    /// Decrypted bytes waiting to be read.
    pub fn plaintext_pending(&mut self) -> usize {
        self.io_state().map_or(0, |s| s.plaintext_bytes_to_read())
    }

    /// Turns an engine error into ours, keeping the X509_V_ERR code of a failed verification.
    fn map_error(&self, e: rustls::Error) -> Error {
        if let rustls::Error::InvalidCertificate(_) = e {
            if let Some(outcome) = self.verify_outcome().filter(|o| !o.accepted) {
                return Error::CertificateVerify {
                    code: outcome.result,
                    depth: outcome.error_depth,
                };
            }
        }
        Error::Protocol(e)
    }

    /// Reads decrypted application data into `buf` (not empty).
    #[inline]
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> Plaintext {
        let State::Running(conn) = &mut self.state else {
            return Plaintext::Empty;
        };
        if self.drained {
            return Plaintext::Empty;
        }
        let read = match conn.reader().read(buf) {
            Ok(0) => Plaintext::Closed,
            Ok(n) => Plaintext::Data(n),
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => Plaintext::Empty,
                io::ErrorKind::UnexpectedEof => Plaintext::Eof,
                _ => Plaintext::Failed(e),
            },
        };
        // The engine's read takes all there is until `buf` is full: a short one empties it.
        self.drained = !self.peer_closed && matches!(read, Plaintext::Data(n) if n < buf.len());
        read
    }

    /// Queues application data for encryption; takes all of it.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<usize> {
        let State::Running(conn) = &mut self.state else {
            return Err(Error::WrongState("the handshake has not started"));
        };
        conn.writer().write(data).map_err(|e| Error::SysCall {
            errno: -1,
            message: e.to_string(),
        })
    }

    /// Whether the handshake is still going on.
    #[inline]
    pub fn is_handshaking(&self) -> bool {
        self.conn().is_none_or(|c| c.is_handshaking())
    }

    /// Whether ciphertext waits to be written.
    #[inline]
    pub fn wants_write(&self) -> bool {
        self.pending_alert.is_some()
            || !self.raw_alert.is_empty()
            || self.conn().is_some_and(|c| c.wants_write())
    }

    /// Queues a close_notify alert.
    pub fn send_close_notify(&mut self) {
        if let State::Running(conn) = &mut self.state {
            conn.send_close_notify()
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated cipher suite, once known.
    pub fn cipher(&self) -> Option<&'static CipherInfo> {
        ciphers::info(self.conn()?.negotiated_cipher_suite()?.suite())
    }

    /// The negotiated version, once known.
    pub fn version(&self) -> Option<Version> {
        match self.conn()?.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => Some(Version::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(Version::Tls13),
            _ => None,
        }
    }

    /// The negotiated key exchange group's name ("X25519", "secp256r1"...).
    pub fn group(&self) -> Option<String> {
        Some(format!(
            "{:?}",
            self.conn()?.negotiated_key_exchange_group()?.name()
        ))
    }

    /// The peer's certificate chain as sent (peer first).
    pub fn peer_chain(&self) -> Vec<X509> {
        self.conn()
            .and_then(|c| c.peer_certificates())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| X509::from_der(c).ok())
            .collect()
    }

    /// The outcome of verifying the peer, if a chain was verified.
    pub fn verify_outcome(&self) -> Option<VerifyOutcome> {
        self.verify_outcome
            .lock()
            .expect("verify outcome lock")
            .clone()
    }

    /// Client: the CA names the server sent in its CertificateRequest.
    pub fn received_ca_names(&self) -> Option<Vec<X509Name>> {
        self.ca_names.lock().expect("ca names lock").clone()
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn()?.alpn_protocol()
    }

    /// The SNI name the client sent (server side).
    pub fn server_name(&self) -> Option<String> {
        match &self.state {
            State::Running(c) => match &**c {
                rustls::Connection::Server(s) => s.server_name().map(str::to_string),
                rustls::Connection::Client(_) => None,
            },
            State::HelloReceived(a) => a.client_hello().server_name().map(str::to_string),
            _ => None,
        }
    }

    /// Whether this session was resumed.
    pub fn session_reused(&self) -> bool {
        self.conn().and_then(|c| c.handshake_kind()) == Some(rustls::HandshakeKind::Resumed)
    }

    /// The ClientHello random.
    pub fn client_random(&self) -> Option<[u8; 32]> {
        self.hello_random(Role::Client)
    }

    /// The ServerHello random.
    pub fn server_random(&self) -> Option<[u8; 32]> {
        self.hello_random(Role::Server)
    }

    fn hello_random(&self, sender: Role) -> Option<[u8; 32]> {
        let scanner = if sender == self.role {
            &self.outgoing_hello
        } else {
            &self.incoming_hello
        };
        scanner.random().copied()
    }

    /// The TLS 1.2 master secret; TLS 1.3 has none.
    pub fn master_key(&self) -> Option<Vec<u8>> {
        self.secrets
            .master_secret
            .lock()
            .expect("secret log lock")
            .clone()
    }

    /// Keying material per RFC 5705 / RFC 8446 §7.5.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let conn = self.conn().ok_or(Error::WrongState("no session yet"))?;
        let mut out = vec![0u8; len];
        conn.export_keying_material(&mut out, label, context)
            .map_err(Error::Protocol)?;
        Ok(out)
    }

    /// The application data handed to callbacks.
    pub fn ex_data(&self) -> &Arc<ExData> {
        &self.ex_data
    }
}

/// What every client of `config`'s snapshot shares: provider, versions and the client hooks.
fn base_client_config(config: &Config) -> Result<Arc<ClientConfig>> {
    if let Some(cc) = config.engines.client.get() {
        return Ok(cc.clone());
    }
    let versions = protocol_versions(config)?;
    let (verifier, resolver) = client_hooks();
    let cc = ClientConfig::builder_with_provider(provider(config))
        .with_protocol_versions(&versions)
        .map_err(Error::Protocol)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(resolver);
    Ok(config.engines.client.get_or_init(|| Arc::new(cc)).clone())
}

/// What every server of `config`'s snapshot that does not ask for client certificates
/// shares.
fn base_server_config(config: &Config) -> Result<Arc<ServerConfig>> {
    if let Some(sc) = config.engines.server.get() {
        return Ok(sc.clone());
    }
    let sc = server_settings(config, None)?;
    Ok(config.engines.server.get_or_init(|| Arc::new(sc)).clone())
}

/// A server's engine configuration from the context's settings, verifying client
/// certificates with `verifier` if given. Each connection sets its own certificate (with the
/// OCSP response it staples), key log and ALPN choice.
fn server_settings(config: &Config, verifier: Option<Arc<PeerVerifier>>) -> Result<ServerConfig> {
    let versions = protocol_versions(config)?;
    let builder = ServerConfig::builder_with_provider(provider(config))
        .with_protocol_versions(&versions)
        .map_err(Error::Protocol)?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut sc = builder.with_cert_resolver(Arc::new(ResolvesServerCertUsingSni::new()));
    sc.ignore_client_order = config.options & OP_CIPHER_SERVER_PREFERENCE != 0;
    let caching = config.session_cache_mode & SESS_CACHE_SERVER != 0;
    sc.session_storage = if caching {
        Arc::new(ServerSessions::of(config))
    } else {
        Arc::new(rustls::server::NoServerSessionStorage {})
    };
    if config.options & OP_NO_TICKET == 0 {
        sc.ticketer = Arc::new(TimedTicketer::of(config));
    } else if !caching {
        sc.send_tls13_tickets = 0;
    }
    Ok(sc)
}

/// TLS_FALLBACK_SCSV (RFC 7507 §6), which a client adds when it retries with a lower version
/// after a failed handshake.
const TLS_FALLBACK_SCSV: u16 = 0x5600;

/// Whether a ClientHello is a downgraded retry that RFC 7507 §3 requires refusing with
/// inappropriate_fallback: it carries TLS_FALLBACK_SCSV and we speak TLS 1.3, which it does
/// not offer (no TLS 1.3 suite, 0x13XX, RFC 8446 §B.4). An attacker who broke the first
/// attempt would otherwise get the weaker version. (TLS 1.3's downgrade sentinel in the
/// ServerHello random protects clients that check it; this protects the others.)
fn is_inappropriate_fallback(hello: &rustls::server::ClientHello<'_>, config: &Config) -> bool {
    let suites = hello.cipher_suites();
    suites.iter().any(|s| u16::from(*s) == TLS_FALLBACK_SCSV)
        && !offers_tls13(hello)
        && config.versions().contains(&Version::Tls13)
}

/// Whether a ClientHello offers a TLS 1.3 cipher suite (0x13XX, RFC 8446 §B.4).
fn offers_tls13(hello: &rustls::server::ClientHello<'_>) -> bool {
    hello
        .cipher_suites()
        .iter()
        .any(|s| u16::from(*s) >> 8 == 0x13)
}

/// Whether TLS 1.3 will be negotiated and the server's key can sign its CertificateVerify
/// with none of the client's signature_algorithms (an RSA key, a client that takes only
/// ECDSA). Then the handshake fails with handshake_failure before any ServerHello (RFC 8446
/// §4.1.1: no overlap in parameters), not after it.
fn tls13_cannot_sign(
    hello: &rustls::server::ClientHello<'_>,
    key: &dyn SigningKey,
    config: &Config,
) -> bool {
    use rustls::SignatureScheme as S;
    if !offers_tls13(hello) || !config.versions().contains(&Version::Tls13) {
        return false;
    }
    // The schemes TLS 1.3 allows in CertificateVerify (RFC 8446 §4.2.3): no PKCS#1 v1.5,
    // no SHA-1.
    let usable: Vec<S> = hello
        .signature_schemes()
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s,
                S::ECDSA_NISTP256_SHA256
                    | S::ECDSA_NISTP384_SHA384
                    | S::ECDSA_NISTP521_SHA512
                    | S::RSA_PSS_SHA256
                    | S::RSA_PSS_SHA384
                    | S::RSA_PSS_SHA512
                    | S::ED25519
                    | S::ED448
            )
        })
        .collect();
    key.choose_scheme(&usable).is_none()
}

fn protocol_versions(config: &Config) -> Result<Vec<&'static SupportedProtocolVersion>> {
    let versions: Vec<_> = config
        .versions()
        .into_iter()
        .map(|v| match v {
            Version::Tls12 => &rustls::version::TLS12,
            Version::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    if versions.is_empty() {
        return Err(Error::UnsupportedProtocol(
            "no protocols available: options and version bounds exclude TLS 1.2 and 1.3",
        ));
    }
    Ok(versions)
}

fn chain_verifier(config: &Config, role: Role, params: &EngineParams<'_>) -> ChainVerifier {
    let verify = params.verify;
    let hostname = match role {
        Role::Server => None,
        Role::Client => params
            .verify_host
            .or(params.server_name.filter(|_| verify.check_hostname))
            .map(str::to_string),
    };
    ChainVerifier {
        store: config.store.clone(),
        mode: verify.mode,
        depth: verify.depth,
        callback: verify.callback.clone(),
        hostname,
        purpose: match role {
            Role::Client => Purpose::ServerAuth,
            Role::Server => Purpose::ClientAuth,
        },
        leaf_key_usage: LeafKeyUsage::Signing,
    }
}

/// Copies what passes through a reader into a hello scanner.
struct TeeReader<'a> {
    inner: &'a mut dyn Read,
    scanner: &'a mut HelloScanner,
}

impl Read for TeeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scanner.scan(&buf[..n]);
        Ok(n)
    }
}

/// Copies what passes through a writer into a hello scanner.
struct TeeWriter<'a> {
    inner: &'a mut dyn Write,
    scanner: &'a mut HelloScanner,
}

impl Write for TeeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.scanner.scan(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        let mut left = n;
        for b in bufs {
            let take = left.min(b.len());
            self.scanner.scan(&b[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
