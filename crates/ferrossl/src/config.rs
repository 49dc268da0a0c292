//! The immutable configuration that both engines read. A [`crate::context::Context`] produces
//! one snapshot per change; connections keep the snapshot they were made with.

use std::sync::Arc;

use crate::constants::*;
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::verify::VerifyCallback;
use crate::x509::{PKey, X509Name, X509Store, X509};

/// Receives each NSS key log line (`SSLKEYLOGFILE` format, without the newline) with the
/// application data of the connection that produced it.
pub type KeylogCallback = Arc<dyn Fn(&ExData, &[u8]) + Send + Sync>;

/// The info callback: `(connection's ex_data, where, ret)` with OpenSSL's `SSL_CB_*` values.
pub type InfoCallback = Arc<dyn Fn(&ExData, i32, i32) + Send + Sync>;

/// A server's OCSP callback: returns the DER OCSPResponse to staple; empty means none.
pub type OcspServerCallback = Arc<dyn Fn(&ExData) -> Result<Vec<u8>> + Send + Sync>;

/// A client's OCSP callback: gets the stapled response (empty when none) and returns whether
/// the handshake may go on.
pub type OcspClientCallback = Arc<dyn Fn(&ExData, &[u8]) -> Result<bool> + Send + Sync>;

/// A client's certificate callback (OpenSSL's `SSL_CTX_set_client_cert_cb`): called during
/// the handshake when the server asks for a certificate and none is configured, with the CA
/// names the server listed (empty when it named none); returns the certificate chain (ours
/// first) and its key, or `None` to go on without.
pub type ClientCertCallback = Arc<dyn Fn(&[X509Name]) -> Option<(Vec<X509>, PKey)> + Send + Sync>;

/// The methods of pyOpenSSL's `Context(method)`, with pyOpenSSL's numeric values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `TLS_METHOD` (and its alias `SSLv23_METHOD`): TLS 1.2 and 1.3, either role.
    Tls,
    /// `TLS_CLIENT_METHOD`.
    TlsClient,
    /// `TLS_SERVER_METHOD`.
    TlsServer,
    /// `TLSv1_2_METHOD`: TLS 1.2 only.
    Tls12,
    /// `DTLS_METHOD`: DTLS 1.2 and 1.3, either role.
    Dtls,
    /// `DTLS_CLIENT_METHOD`.
    DtlsClient,
    /// `DTLS_SERVER_METHOD`.
    DtlsServer,
}

impl Method {
    /// pyOpenSSL's `SSLv2_METHOD`: refused.
    pub const SSLV2_METHOD: i32 = 1;
    /// pyOpenSSL's `SSLv3_METHOD`: refused.
    pub const SSLV3_METHOD: i32 = 2;
    /// pyOpenSSL's `SSLv23_METHOD`.
    pub const SSLV23_METHOD: i32 = 3;
    /// pyOpenSSL's `TLSv1_METHOD`: refused.
    pub const TLSV1_METHOD: i32 = 4;
    /// pyOpenSSL's `TLSv1_1_METHOD`: refused.
    pub const TLSV1_1_METHOD: i32 = 5;
    /// pyOpenSSL's `TLSv1_2_METHOD`.
    pub const TLSV1_2_METHOD: i32 = 6;
    /// pyOpenSSL's `TLS_METHOD`.
    pub const TLS_METHOD: i32 = 7;
    /// pyOpenSSL's `TLS_SERVER_METHOD`.
    pub const TLS_SERVER_METHOD: i32 = 8;
    /// pyOpenSSL's `TLS_CLIENT_METHOD`.
    pub const TLS_CLIENT_METHOD: i32 = 9;
    /// pyOpenSSL's `DTLS_METHOD`.
    pub const DTLS_METHOD: i32 = 10;
    /// pyOpenSSL's `DTLS_SERVER_METHOD`.
    pub const DTLS_SERVER_METHOD: i32 = 11;
    /// pyOpenSSL's `DTLS_CLIENT_METHOD`.
    pub const DTLS_CLIENT_METHOD: i32 = 12;

    /// The method for pyOpenSSL's number; the SSLv2, SSLv3, TLS 1.0 and TLS 1.1 methods are
    /// refused with [`Error::UnsupportedProtocol`].
    pub fn from_id(id: i32) -> Result<Self> {
        match id {
            Self::SSLV2_METHOD => Err(Error::UnsupportedProtocol("SSLv2 is insecure and refused")),
            Self::SSLV3_METHOD => Err(Error::UnsupportedProtocol("SSLv3 is insecure and refused")),
            Self::TLSV1_METHOD => Err(Error::UnsupportedProtocol(
                "TLS 1.0 is deprecated (RFC 8996) and refused",
            )),
            Self::TLSV1_1_METHOD => Err(Error::UnsupportedProtocol(
                "TLS 1.1 is deprecated (RFC 8996) and refused",
            )),
            Self::SSLV23_METHOD | Self::TLS_METHOD => Ok(Method::Tls),
            Self::TLSV1_2_METHOD => Ok(Method::Tls12),
            Self::TLS_SERVER_METHOD => Ok(Method::TlsServer),
            Self::TLS_CLIENT_METHOD => Ok(Method::TlsClient),
            Self::DTLS_METHOD => Ok(Method::Dtls),
            Self::DTLS_SERVER_METHOD => Ok(Method::DtlsServer),
            Self::DTLS_CLIENT_METHOD => Ok(Method::DtlsClient),
            other => Err(Error::InvalidArgument(format!(
                "method must be one of the *_METHOD constants, not {other}"
            ))),
        }
    }

    /// Whether this is a DTLS method.
    pub fn is_dtls(self) -> bool {
        matches!(self, Method::Dtls | Method::DtlsClient | Method::DtlsServer)
    }

    /// The role a method fixes, if it fixes one.
    pub fn fixed_role(self) -> Option<Role> {
        match self {
            Method::TlsClient | Method::DtlsClient => Some(Role::Client),
            Method::TlsServer | Method::DtlsServer => Some(Role::Server),
            _ => None,
        }
    }
}

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// We connect (`set_connect_state`).
    Client,
    /// We accept (`set_accept_state`).
    Server,
}

/// The protocol versions ferrossl speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// TLS 1.2 (RFC 5246).
    Tls12,
    /// TLS 1.3 (RFC 8446).
    Tls13,
}

impl Version {
    /// The wire value (0x0303, 0x0304).
    pub fn wire(self) -> i32 {
        match self {
            Version::Tls12 => TLS1_2_VERSION,
            Version::Tls13 => TLS1_3_VERSION,
        }
    }

    /// OpenSSL's name: "TLSv1.2" or "TLSv1.3".
    pub fn name(self) -> &'static str {
        match self {
            Version::Tls12 => "TLSv1.2",
            Version::Tls13 => "TLSv1.3",
        }
    }
}

/// Verification settings of one end.
#[derive(Clone, Default)]
pub struct VerifySettings {
    /// `VERIFY_*` bits.
    pub mode: i32,
    /// `set_verify_depth`; `None` means OpenSSL's default of 100.
    pub depth: Option<u32>,
    /// The per-depth verify callback.
    pub callback: Option<VerifyCallback>,
    /// Whether a client checks the server's name against the name it connects to
    /// (the SNI name, or the one given to `set1_host`).
    pub check_hostname: bool,
}

/// Everything a connection needs to know from its context.
#[derive(Clone)]
pub struct Config {
    /// The method the context was made with.
    pub method: Method,
    /// `set_min_proto_version` as a wire value; 0 = lowest supported.
    pub min_version: i32,
    /// `set_max_proto_version` as a wire value; 0 = highest supported.
    pub max_version: i32,
    /// `OP_*` bits.
    pub options: u64,
    /// `MODE_*` bits.
    pub mode: u64,
    /// Our certificate followed by the extra chain certificates.
    pub cert_chain: Vec<X509>,
    /// Our private key.
    pub key: Option<PKey>,
    /// Verification of the peer.
    pub verify: VerifySettings,
    /// Trust anchors.
    pub store: X509Store,
    /// Application data of the context (`Context.set_app_data`).
    pub ex_data: Arc<ExData>,
    /// ALPN protocols a client offers, in preference order.
    pub alpn_protos: Vec<Vec<u8>>,
    /// TLS 1.2 suites (`set_cipher_list`); `None` = the default list.
    pub tls12_suites: Option<Vec<rustls::CipherSuite>>,
    /// TLS 1.3 suites (`set_ciphersuites`); `None` = the default list.
    pub tls13_suites: Option<Vec<rustls::CipherSuite>>,
    /// Key exchange groups (`set_groups`, `set_tmp_ecdh`); `None` = the default list.
    pub groups: Option<Vec<rustls::NamedGroup>>,
    /// `SESS_CACHE_*` mode.
    pub session_cache_mode: i64,
    /// Session lifetime in seconds (`set_timeout`).
    pub session_timeout: u64,
    /// The session ID context (`set_session_id`): servers resume only sessions made under
    /// the same context.
    pub session_id_context: Vec<u8>,
    /// CA names a server sends in its CertificateRequest.
    pub client_ca_list: Vec<X509Name>,
    /// Key log lines go here.
    pub keylog: Option<KeylogCallback>,
    /// Handshake progress goes here.
    pub info: Option<InfoCallback>,
    /// Server: what to staple.
    pub ocsp_server: Option<OcspServerCallback>,
    /// Client: judges the stapled response.
    pub ocsp_client: Option<OcspClientCallback>,
    /// Client: gives a certificate when the server asks for one and none is configured.
    pub client_cert_cb: Option<ClientCertCallback>,
    /// DTLS-SRTP profiles (`set_tlsext_use_srtp`), as OpenSSL names them, joined by ':';
    /// empty when SRTP is off.
    pub srtp_profiles: String,
    /// DTLS 1.2 connection IDs (RFC 9146): the length of the random CID each association
    /// asks its peer for (0: none, while using the peer's); None leaves CIDs off.
    pub dtls_cid_length: Option<u8>,
    /// The context's session ticket keys.
    pub ticket_keys: Arc<dyn rustls::server::ProducesTickets>,
    /// `cert_chain` and `key` checked against each other and ready for the engines: `None`
    /// when either is missing, `Err` when they do not match. Filled in by [`Config::seal`].
    pub(crate) identity: Result<Option<Arc<rustls::sign::CertifiedKey>>, ()>,
    /// The engine configurations this snapshot's connections share.
    pub(crate) engines: crate::tls::EngineCache,
}

impl Config {
    /// Prepares what the engines need from this configuration, once per snapshot instead of
    /// once per connection.
    pub(crate) fn seal(mut self) -> Self {
        self.identity = match (self.cert_chain.first(), &self.key) {
            (Some(cert), Some(key)) => match key.matches(cert) {
                Ok(()) => {
                    let chain = self.cert_chain.iter().map(X509::to_cert_der).collect();
                    Ok(Some(Arc::new(rustls::sign::CertifiedKey::new(
                        chain,
                        key.signing_key(),
                    ))))
                }
                Err(_) => Err(()),
            },
            _ => Ok(None),
        };
        self
    }

    /// Our certified key, with an OCSP response to staple when one is given.
    /// A client's certificate when the server asks for one: the configured one, else what
    /// the certificate callback gives for the CA names `accepted` (`None` when it gives
    /// nothing, or a certificate whose key does not match).
    pub(crate) fn client_identity(&self, accepted: &[X509Name]) -> Option<(Vec<X509>, PKey)> {
        if let (Some(key), Some(_)) = (&self.key, self.cert_chain.first()) {
            return Some((self.cert_chain.clone(), key.clone()));
        }
        let (chain, key) = (self.client_cert_cb.as_ref()?)(accepted)?;
        key.matches(chain.first()?).ok()?;
        Some((chain, key))
    }

    pub(crate) fn certified_key(
        &self,
        ocsp: Option<Vec<u8>>,
    ) -> Result<Option<Arc<rustls::sign::CertifiedKey>>> {
        let Some(key) = self.identity.clone().map_err(|()| Error::KeyMismatch)? else {
            return Ok(None);
        };
        match ocsp.filter(|o| !o.is_empty()) {
            None => Ok(Some(key)),
            Some(response) => {
                let mut stapled = (*key).clone();
                stapled.ocsp = Some(response);
                Ok(Some(Arc::new(stapled)))
            }
        }
    }

    /// The DTLS versions this configuration allows: (DTLS 1.2, DTLS 1.3). Both by default, as
    /// `DTLS_METHOD` promises: a client offers both in one ClientHello and a server answers
    /// with the highest the client offers. `set_max_proto_version(DTLS1_2_VERSION)` turns 1.3
    /// off; `set_min_proto_version(DTLS1_3_VERSION)` or `OP_NO_DTLSv1_2` turns 1.2 off.
    pub fn dtls_versions(&self) -> (bool, bool) {
        let dtls13 = self.max_version == 0 || self.max_version == DTLS1_3_VERSION;
        let dtls12 = self.options & OP_NO_DTLSv1_2 == 0 && self.min_version != DTLS1_3_VERSION;
        (dtls12, dtls13)
    }

    /// The versions this configuration allows, lowest first. Empty when options and bounds
    /// exclude every version.
    pub fn versions(&self) -> Vec<Version> {
        [Version::Tls12, Version::Tls13]
            .into_iter()
            .filter(|v| self.method != Method::Tls12 || *v == Version::Tls12)
            .filter(|v| match v {
                Version::Tls12 => self.options & OP_NO_TLSv1_2 == 0,
                Version::Tls13 => self.options & OP_NO_TLSv1_3 == 0,
            })
            .filter(|v| self.min_version == 0 || v.wire() >= self.min_version)
            .filter(|v| self.max_version == 0 || v.wire() <= self.max_version)
            .collect()
    }
}
