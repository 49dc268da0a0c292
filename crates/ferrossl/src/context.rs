//! [`Context`]: the mutable, OpenSSL-style builder (`SSL_CTX`) that produces the immutable
//! [`Config`] snapshots the engines read.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::{Config, Method, VerifySettings};
use crate::constants::*;
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::verify::VerifyCallback;
use crate::x509::{read_file as read, PKey, PassphraseCallback, X509Store, X509};

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
    snapshot: Option<Arc<Config>>,
}

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
        };
        Self {
            inner: Arc::new(Mutex::new(Inner {
                config,
                passphrase: None,
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
        let snapshot = Arc::new(inner.config.clone());
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
        0 | TLS1_2_VERSION | TLS1_3_VERSION | DTLS1_2_VERSION => Ok(version),
        SSL3_VERSION | TLS1_VERSION | TLS1_1_VERSION | DTLS1_VERSION => Err(
            Error::UnsupportedProtocol("versions below TLS 1.2 / DTLS 1.2 are refused on purpose"),
        ),
        other => Err(Error::InvalidArgument(format!(
            "unknown protocol version {other:#x}"
        ))),
    }
}
