//! [`Context`]: the mutable, OpenSSL-style builder (`SSL_CTX`) that produces the immutable
//! [`Config`] snapshots the engines read.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::{
    ClientCertCallback, Config, InfoCallback, KeylogCallback, Method, OcspClientCallback,
    OcspServerCallback, VerifySettings,
};
use crate::constants::*;
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::verify::VerifyCallback;
use crate::x509::{read_file as read, PKey, PassphraseCallback, X509Name, X509Store, X509};

/// The settings shared by many connections (pyOpenSSL's `Context`, OpenSSL's `SSL_CTX`).
///
/// Cheap to clone: clones are handles to the same context. A change affects connections made
/// after it; a connection keeps the configuration it was made with.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Mutex<Inner>>,
    ex_data: Arc<ExData>,
}

struct Inner {
    config: Config,
    passphrase: Option<PassphraseCallback>,
    servername_callback: Option<ServernameCallback>,
    alpn_select_callback: Option<AlpnSelectCallback>,
    cookie_callbacks: (Option<CookieGenerateCallback>, Option<CookieVerifyCallback>),
    cookie_secret: Arc<crate::dtls::HmacCookies>,
    snapshot: Option<Arc<Config>>,
}

/// Makes a DTLS cookie for the connection whose application data is given
/// (`set_cookie_generate_callback`).
pub type CookieGenerateCallback = Arc<dyn Fn(&ExData) -> Result<Vec<u8>> + Send + Sync>;

/// Checks a DTLS cookie (`set_cookie_verify_callback`).
pub type CookieVerifyCallback = Arc<dyn Fn(&ExData, &[u8]) -> Result<bool> + Send + Sync>;

/// How long a DTLS cookie secret serves before it is replaced (the previous one stays valid
/// for one more period, so cookies in flight still verify).
const COOKIE_ROTATION: std::time::Duration = std::time::Duration::from_secs(300);

/// What a server knows when a ClientHello arrives; given to the servername and ALPN
/// callbacks. The servername callback may switch the connection to another context.
pub struct ClientHello<'a> {
    pub(crate) server_name: Option<&'a str>,
    pub(crate) alpn: &'a [Vec<u8>],
    pub(crate) ex_data: &'a ExData,
    pub(crate) new_context: Option<Context>,
}

impl ClientHello<'_> {
    /// The SNI name the client sent.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name
    }

    /// The ALPN protocols the client offered, in its order.
    pub fn alpn_offered(&self) -> &[Vec<u8>] {
        self.alpn
    }

    /// The application data of the connection.
    pub fn ex_data(&self) -> &ExData {
        self.ex_data
    }

    /// Makes the connection use `context` from here on: its certificate, key, verification
    /// and other settings (virtual hosting by SNI name).
    pub fn set_context(&mut self, context: &Context) {
        self.new_context = Some(context.clone());
    }
}

/// The server's servername callback (`set_tlsext_servername_callback`). An error aborts the
/// handshake.
pub type ServernameCallback = Arc<dyn Fn(&mut ClientHello<'_>) -> Result<()> + Send + Sync>;

/// What an ALPN select callback decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlpnSelection {
    /// Use this protocol (one the client offered).
    Select(Vec<u8>),
    /// Go on without ALPN (pyOpenSSL's `NO_OVERLAPPING_PROTOCOLS`).
    NoOverlap,
    /// Abort the handshake with a no_application_protocol alert (pyOpenSSL: `b""`).
    Abort,
}

/// The server's ALPN select callback (`set_alpn_select_callback`).
pub type AlpnSelectCallback = Arc<dyn Fn(&ClientHello<'_>) -> Result<AlpnSelection> + Send + Sync>;

impl Context {
    /// A context for `method`.
    pub fn new(method: Method) -> Self {
        let ex_data = Arc::new(ExData::default());
        let config = Config {
            method,
            min_version: 0,
            max_version: 0,
            options: OP_ALL | OP_NO_SSLv3 | OP_NO_COMPRESSION,
            mode: MODE_AUTO_RETRY,
            cert_chain: Vec::new(),
            key: None,
            verify: VerifySettings::default(),
            store: X509Store::new(),
            ex_data: ex_data.clone(),
            alpn_protos: Vec::new(),
            tls12_suites: None,
            tls13_suites: None,
            groups: None,
            session_cache_mode: SESS_CACHE_SERVER,
            session_timeout: crate::session::DEFAULT_TIMEOUT,
            session_id_context: Vec::new(),
            client_ca_list: Vec::new(),
            keylog: None,
            info: None,
            ocsp_server: None,
            ocsp_client: None,
            client_cert_cb: None,
            ticket_keys: rustls::crypto::aws_lc_rs::Ticketer::new()
                .expect("the aws-lc-rs ticketer needs only the system RNG"),
            identity: Ok(None),
            engines: Default::default(),
            srtp_profiles: String::new(),
            dtls_cid_length: None,
        };
        Self {
            inner: Arc::new(Mutex::new(Inner {
                config,
                passphrase: None,
                servername_callback: None,
                alpn_select_callback: None,
                cookie_callbacks: (None, None),
                cookie_secret: Arc::new(crate::dtls::HmacCookies::new(COOKIE_ROTATION)),
                snapshot: None,
            })),
            ex_data,
        }
    }

    /// A context for pyOpenSSL's method number (`TLS_METHOD`, ...). The SSLv2, SSLv3, TLS 1.0
    /// and TLS 1.1 methods fail with [`Error::UnsupportedProtocol`].
    pub fn from_method_id(id: i32) -> Result<Self> {
        Ok(Self::new(Method::from_id(id)?))
    }

    /// The recommended client context: it verifies the server's chain against the system's
    /// trusted roots and checks the server's name against the name connected to (the SNI name).
    /// Unlike OpenSSL's and pyOpenSSL's defaults, nothing here has to be remembered.
    pub fn client() -> Result<Self> {
        let ctx = Self::new(Method::TlsClient);
        ctx.set_default_verify_paths()?;
        ctx.set_verify(VERIFY_PEER, None);
        ctx.set_check_hostname(true);
        Ok(ctx)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.inner.lock().expect("context lock");
        inner.snapshot = None;
        f(&mut inner)
    }

    fn read<R>(&self, f: impl FnOnce(&Inner) -> R) -> R {
        f(&self.inner.lock().expect("context lock"))
    }

    /// The configuration connections made now will use.
    pub fn config(&self) -> Arc<Config> {
        let mut inner = self.inner.lock().expect("context lock");
        if let Some(snapshot) = &inner.snapshot {
            return snapshot.clone();
        }
        let snapshot = Arc::new(inner.config.clone().seal());
        inner.snapshot = Some(snapshot.clone());
        snapshot
    }

    /// The method the context was made with.
    pub fn method(&self) -> Method {
        self.read(|i| i.config.method)
    }

    /// The application data of the context (`set_app_data`/`get_app_data`).
    pub fn ex_data(&self) -> &ExData {
        &self.ex_data
    }

    /// Sets the lowest protocol version (`TLS1_2_VERSION`, `TLS1_3_VERSION`; 0 = no bound).
    pub fn set_min_proto_version(&self, version: i32) -> Result<()> {
        let v = check_version(version)?;
        self.with(|i| i.config.min_version = v);
        Ok(())
    }

    /// Sets the highest protocol version (`TLS1_2_VERSION`, `TLS1_3_VERSION`; 0 = no bound).
    pub fn set_max_proto_version(&self, version: i32) -> Result<()> {
        let v = check_version(version)?;
        self.with(|i| i.config.max_version = v);
        Ok(())
    }

    /// Adds `OP_*` options and returns the new bitmask. `OP_NO_TLSv1_2` and `OP_NO_TLSv1_3`
    /// remove versions, `OP_NO_TICKET` turns session tickets off and
    /// `OP_CIPHER_SERVER_PREFERENCE` makes a server pick by its own order; compression is
    /// never used, so `OP_NO_COMPRESSION` always holds.
    pub fn set_options(&self, options: u64) -> u64 {
        self.with(|i| {
            i.config.options |= options;
            i.config.options
        })
    }

    /// Removes `OP_*` options and returns the new bitmask.
    pub fn clear_options(&self, options: u64) -> u64 {
        self.with(|i| {
            i.config.options &= !options;
            i.config.options
        })
    }

    /// The `OP_*` bitmask.
    pub fn options(&self) -> u64 {
        self.read(|i| i.config.options)
    }

    /// Adds `MODE_*` bits and returns the new mode.
    pub fn set_mode(&self, mode: u64) -> u64 {
        self.with(|i| {
            i.config.mode |= mode;
            i.config.mode
        })
    }

    /// The `MODE_*` bits.
    pub fn mode(&self) -> u64 {
        self.read(|i| i.config.mode)
    }

    /// Sets our certificate (the chain's first element), keeping extra chain certificates.
    pub fn use_certificate(&self, cert: X509) {
        self.with(|i| {
            if i.config.cert_chain.is_empty() {
                i.config.cert_chain.push(cert);
            } else {
                i.config.cert_chain[0] = cert;
            }
        })
    }

    /// Reads our certificate from a file (`FILETYPE_PEM` or `FILETYPE_ASN1`).
    pub fn use_certificate_file(&self, path: impl AsRef<Path>, filetype: i32) -> Result<()> {
        let data = read(path.as_ref())?;
        self.use_certificate(X509::load(&data, filetype)?);
        Ok(())
    }

    /// Reads our certificate followed by its chain from a PEM file.
    pub fn use_certificate_chain_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let data = read(path.as_ref())?;
        let chain = X509::stack_from_pem(&data)?;
        if chain.is_empty() {
            return Err(Error::InvalidCertificate(format!(
                "no certificate found in {}",
                path.as_ref().display()
            )));
        }
        self.with(|i| i.config.cert_chain = chain);
        Ok(())
    }

    /// Appends a certificate to the chain sent after ours.
    pub fn add_extra_chain_cert(&self, cert: X509) {
        self.with(|i| i.config.cert_chain.push(cert))
    }

    /// Our certificate chain (ours first).
    pub fn certificate_chain(&self) -> Vec<X509> {
        self.read(|i| i.config.cert_chain.clone())
    }

    /// Sets our private key.
    pub fn use_privatekey(&self, key: PKey) {
        self.with(|i| i.config.key = Some(key))
    }

    /// Reads our private key from a file (`FILETYPE_PEM` or `FILETYPE_ASN1`); an encrypted PEM
    /// key asks the passphrase callback.
    pub fn use_privatekey_file(&self, path: impl AsRef<Path>, filetype: i32) -> Result<()> {
        let data = read(path.as_ref())?;
        let passphrase = self.read(|i| i.passphrase.clone());
        self.use_privatekey(PKey::load(&data, filetype, passphrase.as_ref())?);
        Ok(())
    }

    /// Sets the callback that supplies passphrases of encrypted keys.
    pub fn set_passwd_cb(&self, callback: PassphraseCallback) {
        self.with(|i| i.passphrase = Some(callback))
    }

    /// Checks that the private key matches the certificate.
    pub fn check_privatekey(&self) -> Result<()> {
        self.read(|i| {
            let key = i.config.key.as_ref().ok_or(Error::Missing("private key"))?;
            let cert = i
                .config
                .cert_chain
                .first()
                .ok_or(Error::Missing("certificate"))?;
            key.matches(cert)
        })
    }

    /// Sets how the peer is verified (`VERIFY_*` bits) and the per-depth callback.
    pub fn set_verify(&self, mode: i32, callback: Option<VerifyCallback>) {
        self.with(|i| {
            i.config.verify.mode = mode;
            i.config.verify.callback = callback;
        })
    }

    /// The `VERIFY_*` bits.
    pub fn verify_mode(&self) -> i32 {
        self.read(|i| i.config.verify.mode)
    }

    /// The verify callback, if any.
    pub fn verify_callback(&self) -> Option<VerifyCallback> {
        self.read(|i| i.config.verify.callback.clone())
    }

    /// Sets the maximum number of intermediate certificates allowed in the peer's chain.
    pub fn set_verify_depth(&self, depth: u32) {
        self.with(|i| i.config.verify.depth = Some(depth))
    }

    /// The verify depth (OpenSSL's default is 100).
    pub fn verify_depth(&self) -> u32 {
        self.read(|i| i.config.verify.depth.unwrap_or(100))
    }

    /// Makes clients check the server certificate's name against the name they connect to:
    /// the SNI name, or the name given to `Connection::set1_host`. Off by default, as in
    /// OpenSSL and pyOpenSSL; [`Context::client`] turns it on.
    pub fn set_check_hostname(&self, check: bool) {
        self.with(|i| i.config.verify.check_hostname = check)
    }

    /// Whether clients check the server's name.
    pub fn check_hostname(&self) -> bool {
        self.read(|i| i.config.verify.check_hostname)
    }

    /// Adds trusted certificates from a PEM file and/or a hashed directory.
    pub fn load_verify_locations(
        &self,
        cafile: Option<&Path>,
        capath: Option<&Path>,
    ) -> Result<()> {
        if cafile.is_none() && capath.is_none() {
            return Err(Error::InvalidArgument(
                "cafile and capath cannot both be None".into(),
            ));
        }
        let store = self.get_cert_store();
        if let Some(file) = cafile {
            store.load_file(file)?;
        }
        if let Some(dir) = capath {
            store.load_dir(dir)?;
        }
        self.with(|_| ());
        Ok(())
    }

    /// Adds the system's trusted roots; fails with [`Error::NoSystemStore`] when there are none.
    pub fn set_default_verify_paths(&self) -> Result<()> {
        self.get_cert_store().load_system_roots()?;
        Ok(())
    }

    /// The trust store (a handle: certificates added to it apply to later handshakes).
    pub fn get_cert_store(&self) -> X509Store {
        self.read(|i| i.config.store.clone())
    }

    /// Replaces the trust store with `store` (`SSL_CTX_set_cert_store`); the store is shared,
    /// not copied, so several contexts can use one.
    pub fn set_cert_store(&self, store: X509Store) {
        self.with(|i| i.config.store = store)
    }
}

impl Context {
    /// Sets the ALPN protocols a client offers (each 1 to 255 bytes).
    pub fn set_alpn_protos(&self, protos: &[&[u8]]) -> Result<()> {
        let protos = check_alpn(protos)?;
        self.with(|i| i.config.alpn_protos = protos);
        Ok(())
    }

    /// Sets the server's ALPN select callback.
    pub fn set_alpn_select_callback(&self, callback: AlpnSelectCallback) {
        self.with(|i| i.alpn_select_callback = Some(callback))
    }

    /// Sets the server's servername (SNI) callback.
    pub fn set_tlsext_servername_callback(&self, callback: ServernameCallback) {
        self.with(|i| i.servername_callback = Some(callback))
    }

    pub(crate) fn hello_callbacks(
        &self,
    ) -> (Option<ServernameCallback>, Option<AlpnSelectCallback>) {
        self.read(|i| {
            (
                i.servername_callback.clone(),
                i.alpn_select_callback.clone(),
            )
        })
    }

    /// Selects TLS 1.2 suites with an OpenSSL cipher string; "no cipher match" when it selects
    /// none. TLS 1.3 suites are set with [`Context::set_ciphersuites`].
    pub fn set_cipher_list(&self, list: &str) -> Result<()> {
        let suites = crate::ciphers::parse_cipher_list(list)?;
        self.with(|i| i.config.tls12_suites = Some(suites));
        Ok(())
    }

    /// Selects TLS 1.3 suites by name, joined by ':'.
    pub fn set_ciphersuites(&self, list: &str) -> Result<()> {
        let suites = crate::ciphers::parse_ciphersuites(list)?;
        self.with(|i| i.config.tls13_suites = Some(suites));
        Ok(())
    }

    /// OpenSSL's names of the enabled suites, TLS 1.3 first.
    pub fn get_cipher_list(&self) -> Vec<String> {
        self.read(|i| {
            crate::ciphers::enabled(&i.config)
                .map(|c| c.openssl_name.to_string())
                .collect()
        })
    }

    /// Sets the key exchange groups in preference order ("X25519", "P-256", "P-384",
    /// "X25519MLKEM768"...).
    pub fn set_groups(&self, names: &[&str]) -> Result<()> {
        let groups = names
            .iter()
            .map(|n| {
                crate::ciphers::group_by_name(n)
                    .ok_or_else(|| Error::InvalidArgument(format!("unsupported group {n:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if groups.is_empty() {
            return Err(Error::InvalidArgument("the group list is empty".into()));
        }
        self.with(|i| i.config.groups = Some(groups));
        Ok(())
    }

    /// Uses one elliptic curve for ECDHE, by OpenSSL's or the SECG name.
    pub fn set_tmp_ecdh(&self, curve: &str) -> Result<()> {
        match crate::ciphers::group_by_name(curve) {
            Some(g) => {
                self.with(|i| i.config.groups = Some(vec![g]));
                Ok(())
            }
            None => Err(Error::NotSupported(
                "this curve is not offered (X25519, P-256 and P-384 are)",
            )),
        }
    }

    /// Finite-field DHE is refused on purpose.
    pub fn load_tmp_dh(&self, _path: impl AsRef<Path>) -> Result<()> {
        Err(Error::NotSupported(
            "finite-field DHE suites are not offered; ECDHE is used",
        ))
    }

    /// Sets the `SESS_CACHE_*` mode and returns the previous one.
    pub fn set_session_cache_mode(&self, mode: i64) -> i64 {
        self.with(|i| std::mem::replace(&mut i.config.session_cache_mode, mode))
    }

    /// The `SESS_CACHE_*` mode.
    pub fn get_session_cache_mode(&self) -> i64 {
        self.read(|i| i.config.session_cache_mode)
    }

    /// Sets the session lifetime in seconds and returns the previous one.
    pub fn set_timeout(&self, seconds: u64) -> u64 {
        self.with(|i| std::mem::replace(&mut i.config.session_timeout, seconds))
    }

    /// The session lifetime in seconds (300 by default).
    pub fn get_timeout(&self) -> u64 {
        self.read(|i| i.config.session_timeout)
    }

    /// Sets the session ID context (at most 32 bytes): a server resumes only sessions made
    /// under the same context.
    pub fn set_session_id(&self, id: &[u8]) -> Result<()> {
        if id.len() > 32 {
            return Err(Error::InvalidArgument(
                "the session ID context is at most 32 bytes".into(),
            ));
        }
        self.with(|i| i.config.session_id_context = id.to_vec());
        Ok(())
    }

    /// Sets the CA names a server sends when it asks for a client certificate.
    pub fn set_client_ca_list(&self, names: Vec<X509Name>) {
        self.with(|i| i.config.client_ca_list = names)
    }

    /// Adds a certificate's subject to the CA names a server sends.
    pub fn add_client_ca(&self, ca: &X509) {
        self.with(|i| i.config.client_ca_list.push(ca.subject()))
    }

    /// Sets the CA names from the certificates of a PEM file (`SSL_load_client_CA_file`).
    pub fn load_client_ca(&self, path: impl AsRef<Path>) -> Result<()> {
        let certs = X509::stack_from_pem(&read(path.as_ref())?)?;
        if certs.is_empty() {
            return Err(Error::InvalidCertificate(format!(
                "no certificate found in {}",
                path.as_ref().display()
            )));
        }
        self.set_client_ca_list(certs.iter().map(X509::subject).collect());
        Ok(())
    }

    /// The CA names a server will send.
    pub fn get_client_ca_list(&self) -> Vec<X509Name> {
        self.read(|i| i.config.client_ca_list.clone())
    }

    /// Sets the key log callback (NSS SSLKEYLOGFILE lines).
    pub fn set_keylog_callback(&self, callback: KeylogCallback) {
        self.with(|i| i.config.keylog = Some(callback))
    }

    /// Sets the info callback.
    pub fn set_info_callback(&self, callback: InfoCallback) {
        self.with(|i| i.config.info = Some(callback))
    }

    /// Sets the DTLS-SRTP profiles (RFC 5764), e.g. "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM".
    pub fn set_tlsext_use_srtp(&self, profiles: &str) -> Result<()> {
        crate::dtls::SrtpProfile::parse_list(profiles)?;
        self.with(|i| i.config.srtp_profiles = profiles.to_string());
        Ok(())
    }

    /// Negotiates DTLS connection IDs (RFC 9146): each association asks its peer for a
    /// random CID of `length` bytes (0 asks for none while using the peer's), so that its
    /// records stay recognisable when the peer's address changes. None (the default) leaves
    /// CIDs off. A ferrossl addition: OpenSSL has no DTLS connection IDs.
    pub fn set_dtls_connection_id_length(&self, length: Option<u8>) {
        self.with(|i| i.config.dtls_cid_length = length)
    }

    /// Sets the callback that makes DTLS cookies (`DTLSv1_listen`, `OP_COOKIE_EXCHANGE`).
    pub fn set_cookie_generate_callback(&self, callback: CookieGenerateCallback) {
        self.with(|i| i.cookie_callbacks.0 = Some(callback))
    }

    /// Sets the callback that checks DTLS cookies.
    pub fn set_cookie_verify_callback(&self, callback: CookieVerifyCallback) {
        self.with(|i| i.cookie_callbacks.1 = Some(callback))
    }

    /// The cookie maker of a DTLS server connection whose application data is `ex_data`: the
    /// application's callbacks when both are set, otherwise HMAC cookies with the context's
    /// rotating secret.
    pub(crate) fn cookie_provider(
        &self,
        ex_data: Arc<ExData>,
    ) -> Arc<dyn crate::dtls::CookieProvider> {
        self.read(|i| match &i.cookie_callbacks {
            (Some(generate), Some(verify)) => {
                let (generate, verify, ex) = (generate.clone(), verify.clone(), ex_data.clone());
                Arc::new(crate::dtls::CookieCallbacks {
                    generate: Arc::new(move |_| generate(&ex_data).unwrap_or_default()),
                    verify: Arc::new(move |_, cookie| verify(&ex, cookie).unwrap_or(false)),
                }) as Arc<dyn crate::dtls::CookieProvider>
            }
            _ => i.cookie_secret.clone(),
        })
    }

    /// Sets the server's OCSP callback: what it returns is stapled (nothing when empty).
    pub fn set_ocsp_server_callback(&self, callback: OcspServerCallback) {
        self.with(|i| i.config.ocsp_server = Some(callback))
    }

    /// Sets the client's OCSP callback, which judges the stapled response.
    pub fn set_ocsp_client_callback(&self, callback: OcspClientCallback) {
        self.with(|i| i.config.ocsp_client = Some(callback))
    }

    /// Sets the client's certificate callback (`SSL_CTX_set_client_cert_cb`), asked for a
    /// certificate when a server requests one and none is configured; `None` removes it.
    pub fn set_client_cert_callback(&self, callback: Option<ClientCertCallback>) {
        self.with(|i| i.config.client_cert_cb = callback)
    }
}

/// Checks an ALPN protocol list (RFC 7301 §3.1: each name 1 to 255 bytes, the list non-empty).
pub(crate) fn check_alpn(protos: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
    if protos.is_empty() || protos.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(Error::InvalidArgument(
            "ALPN protocols must be a non-empty list of 1 to 255 byte names".into(),
        ));
    }
    Ok(protos.iter().map(|p| p.to_vec()).collect())
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.read(|i| {
            f.debug_struct("Context")
                .field("method", &i.config.method)
                .field("options", &format_args!("{:#x}", i.config.options))
                .field("verify_mode", &i.config.verify.mode)
                .finish()
        })
    }
}

fn check_version(version: i32) -> Result<i32> {
    match version {
        0 | TLS1_2_VERSION | TLS1_3_VERSION | DTLS1_2_VERSION | DTLS1_3_VERSION => Ok(version),
        SSL3_VERSION | TLS1_VERSION | TLS1_1_VERSION | DTLS1_VERSION => Err(
            Error::UnsupportedProtocol("versions below TLS 1.2 / DTLS 1.2 are refused on purpose"),
        ),
        other => Err(Error::InvalidArgument(format!(
            "unknown protocol version {other:#x}"
        ))),
    }
}
