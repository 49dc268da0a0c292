//! The trust store: the certificates a verifier accepts as chain roots.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls_pki_types::TrustAnchor;

use super::X509;
use crate::error::{Error, Result};

/// A set of trusted certificates (OpenSSL's `X509_STORE`). Cloning gives another handle to the
/// same store, so a store obtained from a context can be added to afterwards.
#[derive(Clone, Default)]
pub struct X509Store {
    inner: Arc<RwLock<StoreInner>>,
}

#[derive(Default)]
struct StoreInner {
    certs: Vec<X509>,
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    flags: u64,
}

impl X509Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trusted certificate. Adding the same certificate twice is not an error.
    pub fn add_cert(&self, cert: X509) -> Result<()> {
        let anchor = webpki::anchor_from_trusted_cert(&cert.to_cert_der())
            .map_err(|e| Error::InvalidCertificate(format!("cannot be a trust anchor: {e}")))?
            .to_owned();
        let mut inner = self.inner.write().expect("store lock");
        if !inner.certs.contains(&cert) {
            inner.certs.push(cert);
            Arc::make_mut(&mut inner.anchors).push(anchor);
        }
        Ok(())
    }

    /// Adds every certificate of a PEM file (`cafile` of `load_verify_locations`).
    pub fn load_file(&self, path: &Path) -> Result<usize> {
        let data = read_file(path)?;
        let certs = X509::stack_from_pem(&data)?;
        if certs.is_empty() {
            return Err(Error::InvalidCertificate(format!(
                "no certificate found in {}",
                path.display()
            )));
        }
        let n = certs.len();
        for cert in certs {
            self.add_cert(cert)?;
        }
        Ok(n)
    }

    /// Adds the certificates of a hashed directory as `openssl rehash` makes it (`capath`):
    /// files named `<8 hex digits>.<n>`. They are read now, not at verification time.
    pub fn load_dir(&self, dir: &Path) -> Result<usize> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::File {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut n = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_hashed_name(name) {
                n += self.load_file(&entry.path())?;
            }
        }
        Ok(n)
    }

    /// Adds the system's trusted roots. Fails with [`Error::NoSystemStore`] when none is found.
    pub fn load_system_roots(&self) -> Result<usize> {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            let why = found
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| {
                    "no certificates in the usual locations (set SSL_CERT_FILE or SSL_CERT_DIR)"
                        .into()
                });
            return Err(Error::NoSystemStore(why));
        }
        let mut n = 0;
        for der in found.certs {
            // A system store can hold certificates webpki cannot use as anchors; skip them.
            if let Ok(cert) = X509::from_der(&der) {
                if self.add_cert(cert).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// The trusted certificates, in the order they were added.
    pub fn certificates(&self) -> Vec<X509> {
        self.inner.read().expect("store lock").certs.clone()
    }

    /// Sets X509_V_FLAG_* verification flags (kept for callers; see the docs for which apply).
    pub fn set_flags(&self, flags: u64) {
        self.inner.write().expect("store lock").flags |= flags;
    }

    /// The verification flags.
    pub fn flags(&self) -> u64 {
        self.inner.read().expect("store lock").flags
    }

    pub(crate) fn anchors(&self) -> Arc<Vec<TrustAnchor<'static>>> {
        self.inner.read().expect("store lock").anchors.clone()
    }

    /// The stored certificate whose subject and key make up `anchor`.
    pub(crate) fn cert_for_anchor(&self, anchor: &TrustAnchor<'_>) -> Option<X509> {
        let inner = self.inner.read().expect("store lock");
        inner
            .anchors
            .iter()
            .position(|a| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            })
            // An anchor restated under an equivalent issuer name keeps its key.
            .or_else(|| {
                inner
                    .anchors
                    .iter()
                    .position(|a| a.subject_public_key_info == anchor.subject_public_key_info)
            })
            .map(|i| inner.certs[i].clone())
    }

    /// Whether exactly this certificate is trusted.
    pub(crate) fn contains(&self, cert: &X509) -> bool {
        self.inner.read().expect("store lock").certs.contains(cert)
    }
}

impl std::fmt::Debug for X509Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.read().expect("store lock");
        write!(f, "X509Store({} certificates)", inner.certs.len())
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

fn is_hashed_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((hash, n)) => {
            hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_hashed_name;

    #[test]
    fn hashed_names() {
        assert!(is_hashed_name("9d66eef0.0"));
        assert!(is_hashed_name("9D66EEF0.12"));
        assert!(!is_hashed_name("9d66eef0.r0"));
        assert!(!is_hashed_name("ca.pem"));
        assert!(!is_hashed_name("9d66eef.0"));
    }
}
