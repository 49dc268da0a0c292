//! The TLS engine: an adapter that runs TLS 1.2 and 1.3 on rustls and exposes what the
//! OpenSSL-shaped [`crate::connection::Connection`] needs. Sans-IO: bytes in, bytes out.

mod hello;
mod verifier;

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::ServerName;

use crate::ciphers::{self, CipherInfo};
use crate::config::{Config, Role, VerifySettings, Version};
use crate::constants::*;
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::verify::{ChainVerifier, Purpose, VerifyOutcome};
use crate::x509::X509;
use hello::HelloScanner;
use verifier::PeerVerifier;

/// The crypto provider every TLS connection uses: aws-lc-rs with its default suites and groups.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// What a connection adds to its context's configuration.
pub struct EngineParams<'a> {
    /// The SNI name a client sends.
    pub server_name: Option<&'a str>,
    /// A name the server's certificate must match (`set1_host`), besides `check_hostname`.
    pub verify_host: Option<&'a str>,
    /// Verification settings (the context's, or the connection's own `set_verify`).
    pub verify: &'a VerifySettings,
    /// The connection's application data, handed to callbacks.
    pub ex_data: Arc<ExData>,
}

/// Secrets the engine logged (NSS key log labels), used for `master_key`.
#[derive(Debug, Default)]
struct SecretLog {
    entries: Mutex<Vec<(String, Vec<u8>)>>,
}

impl rustls::KeyLog for SecretLog {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        self.entries
            .lock()
            .expect("secret log lock")
            .push((label.to_string(), secret.to_vec()));
    }
}

/// One TLS session over rustls.
pub struct TlsEngine {
    conn: rustls::Connection,
    role: Role,
    /// Scans our outgoing bytes (client: ClientHello; server: ServerHello).
    outgoing_hello: HelloScanner,
    /// Scans the peer's bytes.
    incoming_hello: HelloScanner,
    verify_outcome: Arc<Mutex<Option<VerifyOutcome>>>,
    secrets: Arc<SecretLog>,
}

impl TlsEngine {
    /// Starts a session as `role`.
    pub fn new(config: &Config, role: Role, params: &EngineParams<'_>) -> Result<Self> {
        let versions = protocol_versions(config)?;
        let verify_outcome = Arc::new(Mutex::new(None));
        let secrets = Arc::new(SecretLog::default());
        let verifier = Arc::new(PeerVerifier {
            chain: chain_verifier(config, role, params),
            ex_data: params.ex_data.clone(),
            outcome: verify_outcome.clone(),
            algorithms: provider().signature_verification_algorithms,
        });
        let conn: rustls::Connection = match role {
            Role::Client => {
                let builder = ClientConfig::builder_with_provider(provider())
                    .with_protocol_versions(&versions)
                    .map_err(Error::Protocol)?
                    .dangerous()
                    .with_custom_certificate_verifier(verifier);
                let mut cc = match certified_key(config)? {
                    Some(key) => {
                        builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key)))
                    }
                    None => builder.with_no_client_auth(),
                };
                cc.resumption = client_resumption(config);
                cc.enable_sni = params.server_name.is_some();
                cc.key_log = secrets.clone();
                let name = match params.server_name {
                    Some(n) => ServerName::try_from(n.to_string()).map_err(|e| {
                        Error::InvalidArgument(format!("invalid server name {n:?}: {e}"))
                    })?,
                    // No name: SNI is off and the name is never checked, as in OpenSSL.
                    None => ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()),
                };
                rustls::ClientConnection::new(Arc::new(cc), name)?.into()
            }
            Role::Server => {
                let key =
                    certified_key(config)?.ok_or(Error::Missing("certificate and private key"))?;
                let builder = ServerConfig::builder_with_provider(provider())
                    .with_protocol_versions(&versions)
                    .map_err(Error::Protocol)?;
                let builder = if config.verify.mode & VERIFY_PEER != 0
                    || params.verify.mode & VERIFY_PEER != 0
                {
                    builder.with_client_cert_verifier(verifier)
                } else {
                    builder.with_no_client_auth()
                };
                let mut sc = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
                sc.ignore_client_order = config.options & OP_CIPHER_SERVER_PREFERENCE != 0;
                sc.key_log = secrets.clone();
                if config.options & OP_NO_TICKET != 0 {
                    sc.send_tls13_tickets = 0;
                }
                rustls::ServerConnection::new(Arc::new(sc))?.into()
            }
        };
        let (outgoing_hello, incoming_hello) = match role {
            Role::Client => (HelloScanner::client_hello(), HelloScanner::server_hello()),
            Role::Server => (HelloScanner::server_hello(), HelloScanner::client_hello()),
        };
        let mut engine = Self {
            conn,
            role,
            outgoing_hello,
            incoming_hello,
            verify_outcome,
            secrets,
        };
        engine.conn.set_buffer_limit(None);
        Ok(engine)
    }

    /// Takes ciphertext from `rd` (one read call). Ok(0) means the transport reached EOF.
    pub fn read_tls(&mut self, rd: &mut dyn Read) -> io::Result<usize> {
        if self.incoming_hello.is_done() {
            return self.conn.read_tls(rd);
        }
        let mut tee = TeeReader {
            inner: rd,
            scanner: &mut self.incoming_hello,
        };
        self.conn.read_tls(&mut tee)
    }

    /// Writes pending ciphertext to `wr` (one write call).
    pub fn write_tls(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        if self.outgoing_hello.is_done() {
            return self.conn.write_tls(wr);
        }
        let mut tee = TeeWriter {
            inner: wr,
            scanner: &mut self.outgoing_hello,
        };
        self.conn.write_tls(&mut tee)
    }

    /// Processes the ciphertext taken so far.
    pub fn process(&mut self) -> Result<rustls::IoState> {
        self.conn
            .process_new_packets()
            .map_err(|e| self.map_error(e))
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

    /// The decrypted application data reader.
    pub fn reader(&mut self) -> rustls::Reader<'_> {
        self.conn.reader()
    }

    /// Queues application data for encryption; takes all of it.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<usize> {
        self.conn.writer().write(data).map_err(|e| Error::SysCall {
            errno: -1,
            message: e.to_string(),
        })
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether ciphertext waits to be written.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Queues a close_notify alert.
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify()
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The negotiated cipher suite, once known.
    pub fn cipher(&self) -> Option<&'static CipherInfo> {
        ciphers::info(self.conn.negotiated_cipher_suite()?.suite())
    }

    /// The negotiated version, once known.
    pub fn version(&self) -> Option<Version> {
        match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => Some(Version::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(Version::Tls13),
            _ => None,
        }
    }

    /// The peer's certificate chain as sent (peer first).
    pub fn peer_chain(&self) -> Vec<X509> {
        self.conn
            .peer_certificates()
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

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The SNI name: what the client sent (server side).
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            rustls::Connection::Server(s) => s.server_name(),
            rustls::Connection::Client(_) => None,
        }
    }

    /// Whether this session was resumed.
    pub fn session_reused(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
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
        let entries = self.secrets.entries.lock().expect("secret log lock");
        entries
            .iter()
            .find(|(label, _)| label == "CLIENT_RANDOM")
            .map(|(_, secret)| secret.clone())
    }

    /// Keying material per RFC 5705 / RFC 8446 §7.5.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
        context: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.conn
            .export_keying_material(&mut out, label, context)
            .map_err(Error::Protocol)?;
        Ok(out)
    }
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
    }
}

fn certified_key(config: &Config) -> Result<Option<Arc<CertifiedKey>>> {
    let (Some(cert), Some(key)) = (config.cert_chain.first(), &config.key) else {
        return Ok(None);
    };
    key.matches(cert)?;
    let chain = config.cert_chain.iter().map(X509::to_cert_der).collect();
    Ok(Some(Arc::new(CertifiedKey::new(chain, key.signing_key()))))
}

fn client_resumption(config: &Config) -> Resumption {
    let resumption = Resumption::in_memory_sessions(256);
    if config.options & OP_NO_TICKET != 0 {
        resumption.tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly)
    } else {
        resumption
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
