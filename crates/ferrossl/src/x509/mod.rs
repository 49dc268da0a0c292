//! Certificates ([`X509`]), distinguished names ([`X509Name`]), private keys ([`PKey`]) and the
//! trust store ([`X509Store`]), with the loading and dumping that OpenSSL users expect.

mod key;
pub mod pem;
mod store;

pub use key::{KeyType, PKey, PassphraseCallback};
pub(crate) use store::read_file;
pub use store::X509Store;

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};

/// An X.509 certificate. Cheap to clone: the DER bytes are shared.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct X509 {
    der: Arc<[u8]>,
}

impl X509 {
    /// Reads a DER-encoded certificate, rejecting bytes that do not parse as one.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        match X509Certificate::from_der(der) {
            Ok(([], _)) => Ok(Self { der: der.into() }),
            Ok(_) => Err(Error::InvalidCertificate(
                "trailing bytes after the certificate".into(),
            )),
            Err(e) => Err(Error::InvalidCertificate(format!(
                "not a DER certificate: {e}"
            ))),
        }
    }

    /// Reads the first certificate of PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        Self::stack_from_pem(pem)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidCertificate("no certificate found in PEM input".into()))
    }

    /// Reads every certificate of PEM text, in order (a chain file); other blocks are skipped.
    pub fn stack_from_pem(pem: &[u8]) -> Result<Vec<Self>> {
        let blocks = pem::parse_all(pem).map_err(|e| Error::InvalidCertificate(e.to_string()))?;
        blocks
            .iter()
            .filter(|b| {
                matches!(
                    b.label.as_str(),
                    "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
                )
            })
            .map(|b| Self::from_der(&b.der))
            .collect()
    }

    /// Reads a certificate in either encoding ([`crate::constants::FILETYPE_PEM`] or
    /// [`crate::constants::FILETYPE_ASN1`]).
    pub fn load(data: &[u8], filetype: i32) -> Result<Self> {
        match filetype {
            crate::constants::FILETYPE_PEM => Self::from_pem(data),
            crate::constants::FILETYPE_ASN1 => Self::from_der(data),
            other => Err(Error::InvalidArgument(format!("unknown file type {other}"))),
        }
    }

    /// The DER encoding.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding.
    pub fn to_pem(&self) -> String {
        pem::PemBlock {
            label: "CERTIFICATE".into(),
            headers: vec![],
            der: self.der.to_vec(),
        }
        .encode()
    }

    pub(crate) fn to_cert_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.der.to_vec())
    }

    fn parsed(&self) -> X509Certificate<'_> {
        // Construction already proved the bytes parse.
        X509Certificate::from_der(&self.der)
            .expect("validated at construction")
            .1
    }

    /// The subject name.
    pub fn subject(&self) -> X509Name {
        X509Name::from_parsed(self.parsed().subject())
    }

    /// The issuer name.
    pub fn issuer(&self) -> X509Name {
        X509Name::from_parsed(self.parsed().issuer())
    }

    /// The serial number as big-endian bytes (as encoded, without a sign byte added).
    pub fn serial_number(&self) -> Vec<u8> {
        self.parsed().raw_serial().to_vec()
    }

    /// The X.509 version field: 0 for v1, 2 for v3.
    pub fn version(&self) -> u32 {
        self.parsed().version().0
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> time::OffsetDateTime {
        self.parsed().validity().not_before.to_datetime()
    }

    /// End of the validity period.
    pub fn not_after(&self) -> time::OffsetDateTime {
        self.parsed().validity().not_after.to_datetime()
    }

    /// Whether the certificate's validity period ended before now.
    pub fn has_expired(&self) -> bool {
        self.not_after() < time::OffsetDateTime::now_utc()
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> Vec<u8> {
        self.parsed().public_key().raw.to_vec()
    }

    /// The public key's size in bits (RSA modulus, EC field size).
    pub fn public_key_bits(&self) -> usize {
        spki_bits(self.parsed().public_key())
    }

    /// The OID of the certificate's signature algorithm, dotted ("1.2.840.10045.4.3.2").
    pub fn signature_algorithm_oid(&self) -> String {
        self.parsed().signature_algorithm.algorithm.to_id_string()
    }

    /// Whether subject and issuer are the same name (a self-issued, typically self-signed, cert).
    pub fn is_self_issued(&self) -> bool {
        let c = self.parsed();
        c.subject().as_raw() == c.issuer().as_raw()
    }

    /// Whether the basic-constraints extension marks this certificate as a CA.
    pub fn is_ca(&self) -> bool {
        self.parsed().is_ca()
    }

    /// The keyUsage extension (RFC 5280 §4.2.1.3), when the certificate has one. A keyUsage
    /// that cannot be read (malformed, or present twice) allows nothing: a verifier reading it
    /// fails closed.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        match self.parsed().key_usage() {
            Ok(Some(ext)) => Some(KeyUsage(ext.value.flags)),
            Ok(None) => None,
            Err(_) => Some(KeyUsage(0)),
        }
    }

    /// The TLS purposes of the extendedKeyUsage extension (RFC 5280 §4.2.1.12), when the
    /// certificate has one; an unreadable one allows nothing.
    pub fn extended_key_usage(&self) -> Option<ExtendedKeyUsage> {
        match self.parsed().extended_key_usage() {
            Ok(Some(ext)) => Some(ExtendedKeyUsage {
                server_auth: ext.value.server_auth,
                client_auth: ext.value.client_auth,
            }),
            Ok(None) => None,
            Err(_) => Some(ExtendedKeyUsage::default()),
        }
    }

    /// The DNS names of the subjectAltName extension, in order (none without one, or when it
    /// cannot be read).
    pub fn dns_names(&self) -> Vec<String> {
        use x509_parser::extensions::GeneralName;
        self.subject_alt_names()
            .into_iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The IP addresses of the subjectAltName extension, in order; entries of other lengths
    /// than 4 and 16 bytes are skipped.
    pub fn ip_addresses(&self) -> Vec<std::net::IpAddr> {
        use x509_parser::extensions::GeneralName;
        self.subject_alt_names()
            .into_iter()
            .filter_map(|name| match name {
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes),
                _ => None,
            })
            .collect()
    }

    fn subject_alt_names(&self) -> Vec<x509_parser::extensions::GeneralName<'_>> {
        // The names borrow the DER that `self` holds, so they outlive the parsed view.
        match self.parsed().subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.clone(),
            _ => Vec::new(),
        }
    }

    /// The certificate's fingerprint as OpenSSL prints it: upper-case hex pairs joined by ':'.
    /// `algorithm` is one of OpenSSL's digest names: "md5", "sha1", "sha224", "sha256",
    /// "sha384", "sha512", "sha512-256" or "sha3-256"/"-384"/"-512" (a fingerprint is not a
    /// signature: MD5 and SHA-1 stay available for it, as programs still print them).
    pub fn digest(&self, algorithm: &str) -> Result<String> {
        use aws_lc_rs::digest;
        let alg = match algorithm
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "md5" => return Ok(fingerprint(&md5_digest(&self.der))),
            "sha1" => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            "sha224" => &digest::SHA224,
            "sha256" => &digest::SHA256,
            "sha384" => &digest::SHA384,
            "sha512" => &digest::SHA512,
            "sha512256" => &digest::SHA512_256,
            "sha3256" => &digest::SHA3_256,
            "sha3384" => &digest::SHA3_384,
            "sha3512" => &digest::SHA3_512,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown digest algorithm {algorithm:?}"
                )))
            }
        };
        Ok(fingerprint(digest::digest(alg, &self.der).as_ref()))
    }
}

/// What an extendedKeyUsage extension allows for TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtendedKeyUsage {
    /// id-kp-serverAuth: a TLS server's certificate.
    pub server_auth: bool,
    /// id-kp-clientAuth: a TLS client's certificate.
    pub client_auth: bool,
}

/// The bits of a keyUsage extension, bit 0 (digitalSignature) first as RFC 5280 numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsage(u16);

impl KeyUsage {
    /// Signatures other than on certificates and CRLs: handshake signatures.
    pub fn digital_signature(self) -> bool {
        self.0 & 1 != 0
    }

    /// Encrypting keys: RSA key transport.
    pub fn key_encipherment(self) -> bool {
        self.0 & (1 << 2) != 0
    }

    /// Static (EC)DH key agreement.
    pub fn key_agreement(self) -> bool {
        self.0 & (1 << 4) != 0
    }

    /// Signing certificates: what a CA's key must be allowed to do.
    pub fn key_cert_sign(self) -> bool {
        self.0 & (1 << 5) != 0
    }
}

fn md5_digest(data: &[u8]) -> Vec<u8> {
    use md5::{Digest, Md5};
    Md5::digest(data).to_vec()
}

/// Upper-case hex pairs joined by ':', as OpenSSL prints fingerprints.
fn fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl fmt::Debug for X509 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509")
            .field("subject", &self.subject().to_string())
            .field("issuer", &self.issuer().to_string())
            .finish()
    }
}

/// A distinguished name: an ordered list of (attribute, value) pairs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct X509Name {
    entries: Vec<(String, String)>,
    der: Vec<u8>,
}

impl X509Name {
    fn from_parsed(name: &x509_parser::x509::X509Name<'_>) -> Self {
        let registry = x509_parser::objects::oid_registry();
        let entries = name
            .iter_attributes()
            .map(|attr| {
                let oid = attr.attr_type().to_id_string();
                let key = openssl_short_name(&oid)
                    .map(str::to_string)
                    .or_else(|| {
                        x509_parser::objects::oid2sn(attr.attr_type(), registry)
                            .ok()
                            .map(str::to_string)
                    })
                    .unwrap_or(oid);
                let value = attr
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|_| String::from_utf8_lossy(attr.as_slice()).into_owned());
                (key, value)
            })
            .collect();
        Self {
            entries,
            der: name.as_raw().to_vec(),
        }
    }

    /// Reads a DER-encoded Name.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        match x509_parser::x509::X509Name::from_der(der) {
            Ok((_, name)) => Ok(Self::from_parsed(&name)),
            Err(e) => Err(Error::InvalidArgument(format!("not a DER name: {e}"))),
        }
    }

    /// The (short attribute name, value) pairs in order, e.g. ("CN", "localhost").
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The first value of an attribute by its short name ("CN", "O", "C", ...).
    pub fn get(&self, short_name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == short_name)
            .map(|(_, v)| v.as_str())
    }

    /// The DER encoding of the Name.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// The RFC 4514 string form, most specific attribute first with commas between, e.g.
    /// "CN=localhost,O=Example" (the form GnuTLS and GIO's backends print).
    pub fn to_rfc4514(&self) -> String {
        let parts: Vec<String> = self
            .entries
            .iter()
            .rev()
            .map(|(k, v)| format!("{k}={}", rfc4514_escape(v)))
            .collect();
        parts.join(",")
    }

    /// OpenSSL's one-line form, e.g. "/C=US/CN=localhost".
    pub fn oneline(&self) -> String {
        self.entries
            .iter()
            .map(|(k, v)| format!("/{k}={v}"))
            .collect()
    }
}

/// Escapes an attribute value for RFC 4514 §2.4: the special characters anywhere, a leading
/// '#' or space and a trailing space.
fn rfc4514_escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An iPAddress entry of subjectAltName: 4 bytes for IPv4, 16 for IPv6 (RFC 5280 §4.2.1.6).
fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(<[u8; 4]>::try_from(bytes).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(bytes).ok()?.into()),
        _ => None,
    }
}

/// OpenSSL's short names of the usual name attributes (RFC 4519 and PKCS#9).
fn openssl_short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.46" => "dnQualifier",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

impl fmt::Display for X509Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .entries
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

impl fmt::Debug for X509Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<X509Name object '{}'>", self.oneline())
    }
}

/// The size of a public key in bits as OpenSSL reports it: the RSA modulus, or the order of a
/// named EC curve (x509-parser counts the point's bytes, which gives 528 for P-521).
pub(crate) fn spki_bits(spki: &x509_parser::x509::SubjectPublicKeyInfo) -> usize {
    use x509_parser::der_parser::oid;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    match curve {
        Some(c) if c == oid!(1.2.840 .10045 .3 .1 .7) => 256,
        Some(c) if c == oid!(1.3.132 .0 .34) => 384,
        Some(c) if c == oid!(1.3.132 .0 .35) => 521,
        _ => spki.parsed().map(|k| k.key_size()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::rfc4514_escape;

    #[test]
    fn rfc4514_escapes_specials_and_edge_spaces() {
        assert_eq!(rfc4514_escape("plain name"), "plain name");
        assert_eq!(
            rfc4514_escape("a,b+c\"d\\e;f<g>h"),
            "a\\,b\\+c\\\"d\\\\e\\;f\\<g\\>h"
        );
        assert_eq!(rfc4514_escape("#lead"), "\\#lead");
        assert_eq!(rfc4514_escape(" both "), "\\ both\\ ");
        assert_eq!(rfc4514_escape(""), "");
    }
}
