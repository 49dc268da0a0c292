//! Private keys: loading PKCS#8, PKCS#1 and SEC1 in PEM or DER, decrypting encrypted PEM
//! (PKCS#8 `ENCRYPTED PRIVATE KEY` and OpenSSL's traditional `DEK-Info` form) through a
//! passphrase callback, and matching a key against a certificate.

use std::fmt;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs::sign::any_supported_type;
use rustls::sign::SigningKey;
use rustls::SignatureAlgorithm;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use x509_parser::prelude::FromDer;

use super::pem::{self, PemBlock};
use super::X509;
use crate::constants::{FILETYPE_ASN1, FILETYPE_PEM};
use crate::error::{Error, Result};

/// Supplies the passphrase of an encrypted key. Called with the maximum length and whether the
/// passphrase is asked for encryption (true) or decryption (false), as OpenSSL's
/// `pem_password_cb` is.
pub type PassphraseCallback = Arc<dyn Fn(usize, bool) -> Result<Vec<u8>> + Send + Sync>;

/// OpenSSL's limit on passphrase length (PEM_BUFSIZE).
const MAX_PASSPHRASE: usize = 1024;

/// The algorithm family of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA (PKCS#1 v1.5 and PSS signatures).
    Rsa,
    /// ECDSA over a NIST curve.
    Ec,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// OpenSSL's NID for this key type (EVP_PKEY_RSA, EVP_PKEY_EC, EVP_PKEY_ED25519).
    pub fn nid(self) -> i32 {
        match self {
            KeyType::Rsa => 6,
            KeyType::Ec => 408,
            KeyType::Ed25519 => 1087,
        }
    }

    /// The key type of an OpenSSL NID, or None for another algorithm.
    pub fn from_nid(nid: i32) -> Option<Self> {
        [KeyType::Rsa, KeyType::Ec, KeyType::Ed25519]
            .into_iter()
            .find(|k| k.nid() == nid)
    }
}

/// A private key that can sign for TLS. Cheap to clone.
#[derive(Clone)]
pub struct PKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    der: PrivateKeyDer<'static>,
    signing: Arc<dyn SigningKey>,
    spki: Vec<u8>,
    kind: KeyType,
}

impl PKey {
    /// Reads a DER key, recognising PKCS#8, PKCS#1 (RSA) and SEC1 (EC) encodings.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let key = PrivateKeyDer::try_from(der)
            .map_err(|e| Error::InvalidKey(format!("not a DER private key: {e}")))?
            .clone_key();
        Self::from_key_der(key)
    }

    /// Generates a new key pair (`EVP_PKEY_keygen`): RSA with a 2048, 3072, 4096 or 8192-bit
    /// modulus and public exponent 65537, or ECDSA over P-256, P-384 or P-521 (`bits` 256,
    /// 384 or 521). Other sizes and Ed25519 fail with [`Error::InvalidKey`]: aws-lc-rs
    /// generates RSA keys of these four sizes only, and signs with none under 2048 bits.
    pub fn generate(kind: KeyType, bits: usize) -> Result<Self> {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{self, EcdsaKeyPair};
        let failed = |_| Error::InvalidKey(format!("generating a {bits}-bit {kind:?} key failed"));
        let pkcs8 = match (kind, bits) {
            (KeyType::Rsa, _) => {
                let size = match bits {
                    2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                    3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
                    8192 => aws_lc_rs::rsa::KeySize::Rsa8192,
                    _ => {
                        return Err(Error::InvalidKey(format!(
                            "cannot generate a {bits}-bit RSA key: the sizes are 2048, 3072, \
                             4096 and 8192 bits"
                        )))
                    }
                };
                let pair = aws_lc_rs::rsa::KeyPair::generate(size).map_err(failed)?;
                pair.as_der().map_err(failed)?.as_ref().to_vec()
            }
            (KeyType::Ec, 256 | 384 | 521) => {
                let alg = match bits {
                    256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    _ => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                };
                let pair = EcdsaKeyPair::generate(alg).map_err(failed)?;
                pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec()
            }
            _ => {
                return Err(Error::InvalidKey(format!(
                    "cannot generate a {bits}-bit {kind:?} key: RSA (2048, 3072, 4096, 8192 \
                     bits) and EC (256, 384, 521 bits) are generated"
                )))
            }
        };
        Self::from_key_der(PrivatePkcs8KeyDer::from(pkcs8).into())
    }

    /// Reads the first private key of PEM text. Encrypted keys ask `passphrase` for their
    /// passphrase; without a callback they fail with [`Error::BadPassphrase`].
    pub fn from_pem(pem: &[u8], passphrase: Option<&PassphraseCallback>) -> Result<Self> {
        let blocks = pem::parse_all(pem).map_err(|e| Error::InvalidKey(e.to_string()))?;
        let block = blocks
            .iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .ok_or_else(|| Error::InvalidKey("no private key found in PEM input".into()))?;
        Self::from_pem_block(block, passphrase)
    }

    /// Reads a key in either encoding ([`FILETYPE_PEM`] or [`FILETYPE_ASN1`]).
    pub fn load(
        data: &[u8],
        filetype: i32,
        passphrase: Option<&PassphraseCallback>,
    ) -> Result<Self> {
        match filetype {
            FILETYPE_PEM => Self::from_pem(data, passphrase),
            FILETYPE_ASN1 => Self::from_der(data),
            other => Err(Error::InvalidArgument(format!("unknown file type {other}"))),
        }
    }

    fn from_pem_block(block: &PemBlock, passphrase: Option<&PassphraseCallback>) -> Result<Self> {
        let key: PrivateKeyDer<'static> = match block.label.as_str() {
            "PRIVATE KEY" => PrivatePkcs8KeyDer::from(block.der.clone()).into(),
            "ENCRYPTED PRIVATE KEY" => {
                let pass = ask_passphrase(passphrase)?;
                PrivatePkcs8KeyDer::from(decrypt_pkcs8(&block.der, &pass)?).into()
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                let der = match block.header("DEK-Info") {
                    Some(dek) => {
                        decrypt_traditional(dek, &block.der, &ask_passphrase(passphrase)?)?
                    }
                    None => block.der.clone(),
                };
                if block.label.starts_with("RSA") {
                    PrivatePkcs1KeyDer::from(der).into()
                } else {
                    PrivateSec1KeyDer::from(der).into()
                }
            }
            other => {
                return Err(Error::InvalidKey(format!(
                    "unsupported PEM key type '{other}'"
                )))
            }
        };
        Self::from_key_der(key)
    }

    fn from_key_der(der: PrivateKeyDer<'static>) -> Result<Self> {
        let signing = any_supported_type(&der).map_err(|e| {
            Error::InvalidKey(format!(
                "unsupported or malformed key (RSA 2048-8192, ECDSA P-256/P-384/P-521 and \
                 Ed25519 are supported): {e}"
            ))
        })?;
        let kind = match signing.algorithm() {
            SignatureAlgorithm::RSA => KeyType::Rsa,
            SignatureAlgorithm::ECDSA => KeyType::Ec,
            SignatureAlgorithm::ED25519 => KeyType::Ed25519,
            other => {
                return Err(Error::InvalidKey(format!(
                    "unsupported key algorithm {other:?}"
                )))
            }
        };
        let spki = signing
            .public_key()
            .map(|k| k.as_ref().to_vec())
            .ok_or_else(|| Error::InvalidKey("cannot derive the public key".into()))?;
        Ok(Self {
            inner: Arc::new(KeyInner {
                der,
                signing,
                spki,
                kind,
            }),
        })
    }

    /// The key's algorithm family.
    pub fn key_type(&self) -> KeyType {
        self.inner.kind
    }

    /// The key size in bits as OpenSSL reports it (RSA modulus, EC field; 253 for Ed25519).
    pub fn bits(&self) -> usize {
        if self.inner.kind == KeyType::Ed25519 {
            return 253;
        }
        x509_parser::x509::SubjectPublicKeyInfo::from_der(&self.inner.spki)
            .map(|(_, spki)| super::spki_bits(&spki))
            .unwrap_or(0)
    }

    /// The DER SubjectPublicKeyInfo of the matching public key.
    pub fn public_key_spki(&self) -> &[u8] {
        &self.inner.spki
    }

    /// The private key's DER, in the encoding it was read from.
    pub fn private_key_der(&self) -> &PrivateKeyDer<'static> {
        &self.inner.der
    }

    /// The unencrypted PEM encoding, in the form it was read (PKCS#8, PKCS#1 or SEC1).
    pub fn to_pem(&self) -> String {
        let label = match &self.inner.der {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        PemBlock {
            label: label.into(),
            headers: vec![],
            der: self.inner.der.secret_der().to_vec(),
        }
        .encode()
    }

    pub(crate) fn signing_key(&self) -> Arc<dyn SigningKey> {
        self.inner.signing.clone()
    }

    /// Checks that this key is the private half of `cert`'s public key
    /// (`SSL_CTX_check_private_key`).
    pub fn matches(&self, cert: &X509) -> Result<()> {
        if cert.public_key_spki() == self.inner.spki {
            Ok(())
        } else {
            Err(Error::KeyMismatch)
        }
    }
}

impl fmt::Debug for PKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PKey")
            .field("type", &self.inner.kind)
            .field("bits", &self.bits())
            .finish()
    }
}

fn ask_passphrase(cb: Option<&PassphraseCallback>) -> Result<Vec<u8>> {
    let cb = cb.ok_or_else(|| {
        Error::BadPassphrase("the key is encrypted and no passphrase callback is set".into())
    })?;
    let pass = cb(MAX_PASSPHRASE, false)?;
    if pass.len() > MAX_PASSPHRASE {
        return Err(Error::BadPassphrase(format!(
            "passphrase longer than {MAX_PASSPHRASE} bytes"
        )));
    }
    Ok(pass)
}

fn decrypt_pkcs8(der: &[u8], pass: &[u8]) -> Result<Vec<u8>> {
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der)
        .map_err(|e| Error::InvalidKey(format!("malformed encrypted PKCS#8 key: {e}")))?;
    let doc = info.decrypt(pass).map_err(|_| {
        Error::BadPassphrase("wrong passphrase or unsupported PKCS#8 encryption".into())
    })?;
    Ok(doc.as_bytes().to_vec())
}

/// Decrypts OpenSSL's traditional PEM encryption: the key is EVP_BytesToKey(MD5, passphrase,
/// salt = first 8 bytes of the IV, one iteration), the cipher CBC with PKCS#7 padding.
fn decrypt_traditional(dek_info: &str, data: &[u8], pass: &[u8]) -> Result<Vec<u8>> {
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    let (cipher, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| Error::InvalidKey(format!("malformed DEK-Info '{dek_info}'")))?;
    let iv = decode_hex(iv_hex.trim())
        .ok_or_else(|| Error::InvalidKey(format!("malformed IV in DEK-Info '{dek_info}'")))?;
    let key_len = match cipher {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        "DES-EDE3-CBC" => 24,
        other => {
            return Err(Error::InvalidKey(format!(
                "unsupported PEM cipher '{other}'"
            )))
        }
    };
    let block_len = if cipher.starts_with("AES") { 16 } else { 8 };
    if iv.len() != block_len {
        return Err(Error::InvalidKey(format!(
            "IV of {cipher} must be {block_len} bytes"
        )));
    }
    let key = bytes_to_key(pass, &iv[..8], key_len);
    let mut buf = data.to_vec();
    let bad = |_| Error::BadPassphrase("wrong passphrase (bad decrypt)".into());
    let plain_len = match cipher {
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .expect("sizes checked")
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .expect("sizes checked")
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        "AES-256-CBC" => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .expect("sizes checked")
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
        _ => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .expect("sizes checked")
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map_err(bad)?
            .len(),
    };
    buf.truncate(plain_len);
    Ok(buf)
}

/// OpenSSL's EVP_BytesToKey with MD5 and one iteration: D_i = MD5(D_{i-1} || pass || salt).
fn bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    use md5::{Digest, Md5};
    let mut out = Vec::with_capacity(len + 16);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&prev);
        h.update(pass);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    out.truncate(len);
    out
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
