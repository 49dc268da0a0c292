//! Certificates, keys and trust stores for `ferrossl.crypto`.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::args::FsPath;
use crate::errors::{crypto_error, park, CryptoError};

#[pyclass(module = "ferrossl._native", frozen)]
#[derive(Clone)]
pub struct NativeX509 {
    pub cert: ferrossl::X509,
}

#[pymethods]
impl NativeX509 {
    #[staticmethod]
    fn from_der(der: &[u8]) -> PyResult<Self> {
        ferrossl::X509::from_der(der)
            .map(|cert| Self { cert })
            .map_err(crypto_error)
    }

    #[staticmethod]
    fn from_pem(pem: &[u8]) -> PyResult<Self> {
        ferrossl::X509::from_pem(pem)
            .map(|cert| Self { cert })
            .map_err(crypto_error)
    }

    #[staticmethod]
    fn stack_from_pem(pem: &[u8]) -> PyResult<Vec<Self>> {
        let certs = ferrossl::X509::stack_from_pem(pem).map_err(crypto_error)?;
        Ok(certs.into_iter().map(|cert| Self { cert }).collect())
    }

    fn to_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.cert.to_der())
    }

    fn to_pem<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.cert.to_pem().as_bytes())
    }

    fn subject(&self) -> (Vec<(String, String)>, Vec<u8>) {
        let n = self.cert.subject();
        (n.entries().to_vec(), n.to_der().to_vec())
    }

    fn issuer(&self) -> (Vec<(String, String)>, Vec<u8>) {
        let n = self.cert.issuer();
        (n.entries().to_vec(), n.to_der().to_vec())
    }

    fn serial<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.cert.serial_number())
    }

    fn version(&self) -> u32 {
        self.cert.version()
    }

    fn not_before(&self) -> String {
        asn1_time(self.cert.not_before())
    }

    fn not_after(&self) -> String {
        asn1_time(self.cert.not_after())
    }

    fn has_expired(&self) -> bool {
        self.cert.has_expired()
    }

    fn digest(&self, name: &str) -> PyResult<String> {
        self.cert.digest(name).map_err(crypto_error)
    }

    fn public_key_spki<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.cert.public_key_spki())
    }

    fn public_key_bits(&self) -> usize {
        self.cert.public_key_bits()
    }
}

/// OpenSSL's ASN1 time text, e.g. "20250101000000Z".
fn asn1_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[pyclass(module = "ferrossl._native", frozen)]
#[derive(Clone)]
pub struct NativePKey {
    pub key: ferrossl::PKey,
}

/// A passphrase callback over a Python callable (or fixed bytes), with pyOpenSSL's checks:
/// anything but bytes raises `ValueError("Bytes expected")`; a passphrase longer than OpenSSL
/// asks for is cut to length when `truncate` (as `Context.set_passwd_cb` does: the key then
/// fails to decrypt) or refused (as `crypto.load_privatekey` does).
pub fn passphrase_callback(
    source: Py<PyAny>,
    truncate: bool,
) -> ferrossl::x509::PassphraseCallback {
    Arc::new(move |max, verify| {
        Python::with_gil(|py| {
            let value = if source.bind(py).is_callable() {
                source.call1(py, (max, verify))
            } else {
                Ok(source.clone_ref(py))
            };
            let pass = value.and_then(|v| {
                v.downcast_bound::<PyBytes>(py)
                    .map(|b| b.as_bytes().to_vec())
                    .map_err(|_| pyo3::exceptions::PyValueError::new_err("Bytes expected"))
            });
            match pass {
                Ok(mut p) if p.len() > max && truncate => {
                    p.truncate(max);
                    Ok(p)
                }
                Ok(p) if p.len() > max => {
                    park(pyo3::exceptions::PyValueError::new_err(
                        "passphrase returned by callback is too long",
                    ));
                    Err(ferrossl::Error::Callback("passphrase too long".into()))
                }
                Ok(p) => Ok(p),
                Err(e) => {
                    let text = e.to_string();
                    park(e);
                    Err(ferrossl::Error::Callback(text))
                }
            }
        })
    })
}

#[pymethods]
impl NativePKey {
    #[staticmethod]
    #[pyo3(signature = (pem, passphrase=None))]
    fn from_pem(pem: &[u8], passphrase: Option<Py<PyAny>>) -> PyResult<Self> {
        let cb = passphrase.map(|p| passphrase_callback(p, false));
        ferrossl::PKey::from_pem(pem, cb.as_ref())
            .map(|key| Self { key })
            .map_err(crypto_error)
    }

    /// A new key pair of OpenSSL type `type_nid` (EVP_PKEY_RSA or EVP_PKEY_EC) and size.
    #[staticmethod]
    fn generate(py: Python<'_>, type_nid: i32, bits: usize) -> PyResult<Self> {
        let kind = ferrossl::KeyType::from_nid(type_nid).ok_or_else(|| {
            CryptoError::new_err((vec![(
                "ferrossl".to_string(),
                String::new(),
                format!("no such key type {type_nid}"),
            )],))
        })?;
        // RSA generation takes a while: other Python threads run meanwhile.
        py.allow_threads(|| ferrossl::PKey::generate(kind, bits))
            .map(|key| Self { key })
            .map_err(crypto_error)
    }

    #[staticmethod]
    fn from_der(der: &[u8]) -> PyResult<Self> {
        ferrossl::PKey::from_der(der)
            .map(|key| Self { key })
            .map_err(crypto_error)
    }

    fn bits(&self) -> usize {
        self.key.bits()
    }

    fn type_nid(&self) -> i32 {
        self.key.key_type().nid()
    }

    fn to_pem<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.key.to_pem().as_bytes())
    }

    fn private_der<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.key.private_key_der().secret_der())
    }

    fn public_spki<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.key.public_key_spki())
    }

    fn matches(&self, cert: &NativeX509) -> bool {
        self.key.matches(&cert.cert).is_ok()
    }
}

#[pyclass(module = "ferrossl._native", frozen)]
#[derive(Clone)]
pub struct NativeStore {
    pub store: ferrossl::X509Store,
}

#[pymethods]
impl NativeStore {
    #[new]
    fn new() -> Self {
        Self {
            store: ferrossl::X509Store::new(),
        }
    }

    fn add_cert(&self, cert: &NativeX509) -> PyResult<()> {
        self.store.add_cert(cert.cert.clone()).map_err(crypto_error)
    }

    fn set_flags(&self, flags: u64) {
        self.store.set_flags(flags)
    }

    fn load_file(&self, path: FsPath) -> PyResult<usize> {
        self.store.load_file(&path).map_err(crypto_error)
    }

    fn load_dir(&self, path: FsPath) -> PyResult<usize> {
        self.store.load_dir(&path).map_err(crypto_error)
    }

    fn certificates(&self) -> Vec<NativeX509> {
        self.store
            .certificates()
            .into_iter()
            .map(|cert| NativeX509 { cert })
            .collect()
    }
}

/// Verifies `cert` with `untrusted` intermediates against `store`: (X509_V_ERR code, depth,
/// OpenSSL's text for the code, chain as DER, peer first).
#[pyfunction]
pub fn verify_certificate(
    store: &NativeStore,
    cert: &NativeX509,
    untrusted: Vec<NativeX509>,
) -> (i32, u32, &'static str, Vec<Vec<u8>>) {
    let verifier = ferrossl::verify::ChainVerifier {
        store: store.store.clone(),
        mode: ferrossl::constants::VERIFY_PEER,
        depth: None,
        callback: None,
        hostname: None,
        purpose: ferrossl::verify::Purpose::ServerAuth,
        leaf_key_usage: ferrossl::verify::LeafKeyUsage::AnyTls,
    };
    let ee = ferrossl::rustls::pki_types::CertificateDer::from(cert.cert.to_der().to_vec());
    let inter: Vec<_> = untrusted
        .iter()
        .map(|c| ferrossl::rustls::pki_types::CertificateDer::from(c.cert.to_der().to_vec()))
        .collect();
    let outcome = verifier.verify(
        &ee,
        &inter,
        ferrossl::rustls::pki_types::UnixTime::now(),
        &Default::default(),
    );
    let chain = outcome.chain.iter().map(|c| c.to_der().to_vec()).collect();
    let text = ferrossl::verify::verify_error_string(outcome.result);
    (outcome.result, outcome.error_depth, text, chain)
}

/// The (attribute, value) pairs of a DER distinguished name.
#[pyfunction]
pub fn name_entries(der: &[u8]) -> PyResult<Vec<(String, String)>> {
    let name = ferrossl::X509Name::from_der(der).map_err(crypto_error)?;
    Ok(name.entries().to_vec())
}

/// The elliptic curves ferrossl's key exchange offers, by OpenSSL's short names.
#[pyfunction]
pub fn supported_curves() -> Vec<&'static str> {
    vec!["prime256v1", "secp384r1", "X25519"]
}
