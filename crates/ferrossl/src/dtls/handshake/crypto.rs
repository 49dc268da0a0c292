//! The handshake's public-key operations: ECDHE over X25519, P-256 and P-384 (RFC 8422,
//! RFC 7748), signatures made with the configured key and checked against the peer's
//! certificate.

use std::sync::OnceLock;

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{NamedGroup, SignatureScheme};
use rustls_pki_types::CertificateDer;

use crate::ciphers::Authentication;
use crate::x509::{KeyType, PKey};

use super::super::codec::message::DigitallySigned;
use super::super::error::DtlsError;

/// Groups in preference order.
pub const SUPPORTED_GROUPS: [NamedGroup; 3] = [
    NamedGroup::X25519,
    NamedGroup::secp256r1,
    NamedGroup::secp384r1,
];

/// Signature schemes offered and accepted, in preference order. SHA-1 and SHA-224 are absent
/// on purpose.
pub const SIGNATURE_SCHEMES: [SignatureScheme; 9] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// Whether a key can authenticate a suite: ECDHE_ECDSA suites take ECDSA and EdDSA keys
/// (RFC 8422 §2), ECDHE_RSA suites RSA keys.
pub fn key_fits_suite(key: KeyType, auth: Authentication) -> bool {
    match auth {
        Authentication::Ecdsa => matches!(key, KeyType::Ec | KeyType::Ed25519),
        Authentication::Rsa => key == KeyType::Rsa,
        Authentication::Any => true,
    }
}

/// Whether a signature scheme can authenticate a suite.
pub fn scheme_fits_suite(scheme: SignatureScheme, auth: Authentication) -> bool {
    use SignatureScheme as S;
    let ec = matches!(
        scheme,
        S::ECDSA_NISTP256_SHA256 | S::ECDSA_NISTP384_SHA384 | S::ED25519
    );
    match auth {
        Authentication::Ecdsa => ec,
        Authentication::Rsa => !ec,
        Authentication::Any => true,
    }
}

/// One side's ephemeral ECDHE key.
pub struct KeyExchange {
    group: NamedGroup,
    private: EphemeralPrivateKey,
    public: Vec<u8>,
}

fn algorithm(group: NamedGroup) -> Option<&'static agreement::Algorithm> {
    match group {
        NamedGroup::X25519 => Some(&agreement::X25519),
        NamedGroup::secp256r1 => Some(&agreement::ECDH_P256),
        NamedGroup::secp384r1 => Some(&agreement::ECDH_P384),
        _ => None,
    }
}

impl KeyExchange {
    /// A fresh key pair in `group`.
    pub fn start(group: NamedGroup) -> Result<Self, DtlsError> {
        let alg = algorithm(group)
            .ok_or_else(|| DtlsError::Internal(format!("unsupported group {group:?}")))?;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let private = EphemeralPrivateKey::generate(alg, &rng)
            .map_err(|_| DtlsError::Internal("cannot generate an ECDHE key".into()))?;
        let public = private
            .compute_public_key()
            .map_err(|_| DtlsError::Internal("cannot compute an ECDHE public key".into()))?
            .as_ref()
            .to_vec();
        Ok(Self {
            group,
            private,
            public,
        })
    }

    /// Our public key: X25519 bytes or an uncompressed point.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The premaster secret with the peer's public key. aws-lc validates the point (on the
    /// curve, not the identity) and refuses all-zero X25519 output.
    pub fn complete(self, peer_public: &[u8]) -> Result<Vec<u8>, DtlsError> {
        let alg = algorithm(self.group).expect("checked at start");
        agreement::agree_ephemeral(
            self.private,
            UnparsedPublicKey::new(alg, peer_public),
            DtlsError::IllegalParameter("invalid ECDHE public key"),
            |secret| Ok(secret.to_vec()),
        )
    }
}

/// Signs `message` with `key`, with the first scheme of ours that `offered` lists and the key
/// can make. `None` when there is none.
pub fn sign(
    key: &PKey,
    offered: &[SignatureScheme],
    message: &[u8],
) -> Result<Option<DigitallySigned>, DtlsError> {
    let acceptable: Vec<SignatureScheme> = SIGNATURE_SCHEMES
        .into_iter()
        .filter(|s| offered.contains(s))
        .collect();
    let Some(signer) = key.signing_key().choose_scheme(&acceptable) else {
        return Ok(None);
    };
    let signature = signer
        .sign(message)
        .map_err(|e| DtlsError::Internal(format!("signing failed: {e}")))?;
    Ok(Some(DigitallySigned {
        scheme: signer.scheme(),
        signature,
    }))
}

/// Whether `key` can sign with one of `offered`.
pub fn can_sign(key: &PKey, offered: &[SignatureScheme]) -> bool {
    let acceptable: Vec<SignatureScheme> = SIGNATURE_SCHEMES
        .into_iter()
        .filter(|s| offered.contains(s))
        .collect();
    key.signing_key().choose_scheme(&acceptable).is_some()
}

fn algorithms() -> &'static WebPkiSupportedAlgorithms {
    static ALGS: OnceLock<WebPkiSupportedAlgorithms> = OnceLock::new();
    ALGS.get_or_init(|| {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
    })
}

/// Checks `signed` over `message` with the public key of the DER certificate `cert`. TLS 1.2
/// does not bind ECDSA schemes to curves, so each algorithm the scheme maps to is tried.
pub fn verify(
    cert: &[u8],
    signed: &DigitallySigned,
    message: &[u8],
    what: &'static str,
) -> Result<(), DtlsError> {
    if !SIGNATURE_SCHEMES.contains(&signed.scheme) {
        return Err(DtlsError::IllegalParameter(
            "signature scheme that was not offered",
        ));
    }
    let der = CertificateDer::from(cert);
    let ee =
        webpki::EndEntityCert::try_from(&der).map_err(|_| DtlsError::Decode("peer certificate"))?;
    let (_, algs) = algorithms()
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == signed.scheme)
        .ok_or(DtlsError::IllegalParameter("unsupported signature scheme"))?;
    if algs.iter().any(|alg| {
        ee.verify_signature(*alg, message, &signed.signature)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(DtlsError::DecryptError(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdhe_agrees_in_every_group_and_refuses_bad_points() {
        for group in SUPPORTED_GROUPS {
            let a = KeyExchange::start(group).unwrap();
            let b = KeyExchange::start(group).unwrap();
            let (pa, pb) = (a.public().to_vec(), b.public().to_vec());
            assert_eq!(a.complete(&pb).unwrap(), b.complete(&pa).unwrap());
            let c = KeyExchange::start(group).unwrap();
            let bad = vec![0u8; pa.len()];
            assert!(c.complete(&bad).is_err(), "{group:?}");
        }
    }

    #[test]
    fn suites_and_schemes_match_key_types() {
        assert!(key_fits_suite(KeyType::Ed25519, Authentication::Ecdsa));
        assert!(!key_fits_suite(KeyType::Rsa, Authentication::Ecdsa));
        assert!(scheme_fits_suite(
            SignatureScheme::RSA_PSS_SHA256,
            Authentication::Rsa
        ));
        assert!(!scheme_fits_suite(
            SignatureScheme::ED25519,
            Authentication::Rsa
        ));
    }
}
