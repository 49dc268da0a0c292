//! Certificate chain verification with OpenSSL's semantics: chains built with rustls-webpki,
//! failures reported as `X509_V_ERR_*` codes at a chain depth, and a verify callback called once
//! per depth, top of the chain first, whose answer overrides the verdict.
//!
//! Both engines (TLS over rustls and our DTLS) verify through [`ChainVerifier`], so a callback
//! behaves the same whichever protocol carries the certificates.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use crate::constants::*;
use crate::ex_data::ExData;
use crate::x509::{X509Store, X509};

/// What the verify callback is told about one certificate of the chain.
pub struct VerifyParams<'a> {
    /// The certificate at this depth.
    pub cert: &'a X509,
    /// `X509_V_OK`, or the `X509_V_ERR_*` code found at this depth.
    pub errnum: i32,
    /// 0 for the peer's own certificate, increasing towards the trust anchor.
    pub depth: u32,
    /// Whether verification found this depth acceptable.
    pub ok: bool,
    /// The application data of the connection being verified.
    pub ex_data: &'a ExData,
}

/// The verify callback (`SSL_CTX_set_verify`'s `verify_callback`): return true to accept the
/// certificate at this depth (overriding a failure), false to fail the handshake.
pub type VerifyCallback = Arc<dyn Fn(&VerifyParams<'_>) -> bool + Send + Sync>;

/// Which extended key usage the peer's certificate needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The peer is a server (we are the client).
    ServerAuth,
    /// The peer is a client (we are the server).
    ClientAuth,
}

/// What the peer's own key must be allowed to do, by its keyUsage extension (RFC 5280
/// §4.2.1.3); a certificate without the extension may be used for anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKeyUsage {
    /// Sign the handshake: digitalSignature. Every key exchange the engines run authenticates
    /// the peer by a signature with this key (ServerKeyExchange for ECDHE in TLS/DTLS 1.2,
    /// RFC 8422 §5.4; CertificateVerify, RFC 8446 §4.4.3 and RFC 5246 §7.4.8), and none uses
    /// static RSA encryption or (EC)DH agreement.
    Signing,
    /// Any TLS use: digitalSignature, keyEncipherment or keyAgreement. OpenSSL's SSL client and
    /// server purposes check this, so chains verified outside a handshake agree with
    /// `openssl verify -purpose sslserver`.
    AnyTls,
}

impl Purpose {
    /// Whether `cert`'s extendedKeyUsage, if it has one, allows this purpose (OpenSSL's
    /// check; anyExtendedKeyUsage alone does not count for TLS).
    fn allowed_by(self, cert: &X509) -> bool {
        cert.extended_key_usage().is_none_or(|eku| match self {
            Purpose::ServerAuth => eku.server_auth,
            Purpose::ClientAuth => eku.client_auth,
        })
    }
}

/// The settings one verification runs with; built from a context's configuration.
#[derive(Clone)]
pub struct ChainVerifier {
    /// The trust anchors.
    pub store: X509Store,
    /// `VERIFY_*` bits; only `VERIFY_PEER` decides whether a failure aborts.
    pub mode: i32,
    /// Maximum number of intermediate CAs between the peer's certificate and the anchor.
    pub depth: Option<u32>,
    /// The per-depth callback.
    pub callback: Option<VerifyCallback>,
    /// A host name or IP address the peer's certificate must match (opt-in).
    pub hostname: Option<String>,
    /// The certificate purpose to check.
    pub purpose: Purpose,
    /// What the peer's keyUsage must allow.
    pub leaf_key_usage: LeafKeyUsage,
}

/// The result of verifying a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// `X509_V_OK` or the first error found (kept even when the callback overrode it, as
    /// `SSL_get_verify_result` does).
    pub result: i32,
    /// The depth of that error.
    pub error_depth: u32,
    /// The verified chain, peer first, anchor last; the presented chain when verification failed.
    pub chain: Vec<X509>,
    /// Whether the handshake may go on.
    pub accepted: bool,
}

impl ChainVerifier {
    /// Verifies `end_entity` with the `intermediates` the peer sent, at time `now`.
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        ex_data: &ExData,
    ) -> VerifyOutcome {
        // The peer's own certificate must parse: dropping it would let an intermediate (or a
        // trusted root the peer sent) stand in for it.
        let presented: Vec<X509> = match X509::from_der(end_entity) {
            Ok(leaf) => std::iter::once(leaf)
                .chain(intermediates.iter().filter_map(|c| X509::from_der(c).ok()))
                .collect(),
            Err(_) => Vec::new(),
        };
        if presented.is_empty() {
            return VerifyOutcome {
                result: X509_V_ERR_UNSPECIFIED,
                error_depth: 0,
                chain: presented,
                accepted: false,
            };
        }
        let (chain, failure) = match self.build_chain(end_entity, intermediates, now, &presented) {
            Ok(chain) => {
                // OpenSSL's order: the chain's length while building it, then the extensions,
                // then the name.
                let failure = self
                    .check_depth(&chain)
                    .or_else(|| self.check_key_usage(&chain))
                    .or_else(|| self.check_name(end_entity));
                (chain, failure)
            }
            // OpenSSL checks extensions before signatures and validity: a bad keyUsage in the
            // presented chain is reported before an expired or badly signed certificate.
            Err(failure @ (code, _)) if checked_after_extensions(code) => {
                let failure = self.check_key_usage(&presented).unwrap_or(failure);
                (presented, Some(failure))
            }
            Err(failure) => (presented, Some(failure)),
        };
        self.decide(chain, failure, ex_data)
    }

    fn build_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        presented: &[X509],
    ) -> Result<Vec<X509>, (i32, u32)> {
        // A trusted self-issued certificate is its own anchor (OpenSSL accepts a self-signed
        // certificate that is in the store; webpki would call it a CA used as end entity).
        if presented[0].is_self_issued() && self.store.contains(&presented[0]) {
            if !self.purpose.allowed_by(&presented[0]) {
                return Err((X509_V_ERR_INVALID_PURPOSE, 0));
            }
            return check_validity(&presented[0], now, 0).map(|()| vec![presented[0].clone()]);
        }
        let ee =
            webpki::EndEntityCert::try_from(end_entity).map_err(|_| (X509_V_ERR_UNSPECIFIED, 0))?;
        let usage = match self.purpose {
            Purpose::ServerAuth => webpki::KeyUsage::server_auth(),
            Purpose::ClientAuth => webpki::KeyUsage::client_auth(),
        };
        let verify = |anchors: &[TrustAnchor<'_>]| {
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                anchors,
                intermediates,
                now,
                usage,
                None,
                None,
            )
            .map(|path| {
                let mut chain = vec![presented[0].clone()];
                chain.extend(
                    path.intermediate_certificates()
                        .filter_map(|c| X509::from_der(c.der().as_ref()).ok()),
                );
                chain.extend(self.store.cert_for_anchor(path.anchor()));
                chain
            })
        };
        let anchors = self.store.anchors();
        match verify(&anchors) {
            Ok(chain) => Ok(chain),
            Err(webpki::Error::UnknownIssuer) => {
                // OpenSSL matches names after canonicalising them (string types, case,
                // spaces); webpki compares bytes. Retry with anchors restated under the
                // issuer names the chain actually uses, when those are equivalent.
                let restated = self.restated_anchors(presented);
                if restated.is_empty() {
                    return Err(map_webpki_error(
                        &webpki::Error::UnknownIssuer,
                        presented,
                        now,
                    ));
                }
                let all: Vec<TrustAnchor<'_>> = anchors
                    .iter()
                    .cloned()
                    .chain(restated.iter().cloned())
                    .collect();
                verify(&all).map_err(|e| map_webpki_error(&e, presented, now))
            }
            Err(e) => Err(map_webpki_error(&e, presented, now)),
        }
    }

    /// Trust anchors whose subject names the issuer of a presented certificate once both
    /// names are canonicalised, restated with that issuer's exact encoding.
    fn restated_anchors(&self, presented: &[X509]) -> Vec<TrustAnchor<'static>> {
        let mut out = Vec::new();
        for cert in presented {
            let issuer = cert.issuer();
            let wanted = canonical(&issuer);
            for trusted in self.store.certificates() {
                let subject = trusted.subject();
                if subject.to_der() != issuer.to_der() && canonical(&subject) == wanted {
                    if let Ok(anchor) = webpki::anchor_from_trusted_cert(&trusted.to_cert_der()) {
                        let mut anchor = anchor.to_owned();
                        anchor.subject = name_contents(issuer.to_der()).to_vec().into();
                        out.push(anchor);
                    }
                }
            }
        }
        out
    }

    /// The keyUsage checks webpki leaves out, in OpenSSL's order: the peer's certificate for
    /// its purpose first, then each CA, which must be allowed to sign certificates (RFC 5280
    /// §4.2.1.3, §6.1.4 (n)).
    fn check_key_usage(&self, chain: &[X509]) -> Option<(i32, u32)> {
        let leaf_allowed = |ku: crate::x509::KeyUsage| match self.leaf_key_usage {
            LeafKeyUsage::Signing => ku.digital_signature(),
            LeafKeyUsage::AnyTls => {
                ku.digital_signature() || ku.key_encipherment() || ku.key_agreement()
            }
        };
        if chain[0].key_usage().is_some_and(|ku| !leaf_allowed(ku)) {
            return Some((X509_V_ERR_INVALID_PURPOSE, 0));
        }
        chain
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, ca)| ca.key_usage().is_some_and(|ku| !ku.key_cert_sign()))
            .map(|(depth, _)| (X509_V_ERR_INVALID_CA, depth as u32))
    }

    /// OpenSSL's verify depth counts the intermediates: depth N allows the peer's certificate,
    /// N intermediates and the anchor.
    fn check_depth(&self, chain: &[X509]) -> Option<(i32, u32)> {
        let limit = self.depth? as usize;
        (chain.len() > limit + 2).then_some((X509_V_ERR_CERT_CHAIN_TOO_LONG, limit as u32 + 1))
    }

    fn check_name(&self, end_entity: &CertificateDer<'_>) -> Option<(i32, u32)> {
        let host = self.hostname.as_deref()?;
        let name = ServerName::try_from(host).ok()?;
        let code = match name {
            ServerName::IpAddress(_) => X509_V_ERR_IP_ADDRESS_MISMATCH,
            _ => X509_V_ERR_HOSTNAME_MISMATCH,
        };
        let ee = webpki::EndEntityCert::try_from(end_entity).ok()?;
        ee.verify_is_valid_for_subject_name(&name)
            .err()
            .map(|_| (code, 0))
    }

    /// Runs the callback over the chain, top first, and settles the verdict.
    fn decide(
        &self,
        chain: Vec<X509>,
        failure: Option<(i32, u32)>,
        ex_data: &ExData,
    ) -> VerifyOutcome {
        let (mut result, mut error_depth) = failure.unwrap_or((X509_V_OK, 0));
        let mut rejected = failure.is_some();
        if let Some(cb) = &self.callback {
            rejected = false;
            for (depth, cert) in chain.iter().enumerate().rev() {
                let depth = depth as u32;
                let errnum = match failure {
                    Some((code, d)) if d == depth => code,
                    _ => X509_V_OK,
                };
                let params = VerifyParams {
                    cert,
                    errnum,
                    depth,
                    ok: errnum == X509_V_OK,
                    ex_data,
                };
                if !cb(&params) {
                    if result == X509_V_OK {
                        (result, error_depth) = (X509_V_ERR_CERT_REJECTED, depth);
                    }
                    rejected = true;
                    break;
                }
            }
        }
        VerifyOutcome {
            result,
            error_depth,
            chain,
            accepted: !rejected || self.mode & VERIFY_PEER == 0,
        }
    }
}

/// Whether OpenSSL reports `code` only after the chain's extensions were found good: the
/// signature and validity checks run after them (its `verify_chain`).
fn checked_after_extensions(code: i32) -> bool {
    matches!(
        code,
        X509_V_ERR_CERT_HAS_EXPIRED
            | X509_V_ERR_CERT_NOT_YET_VALID
            | X509_V_ERR_CERT_SIGNATURE_FAILURE
    )
}

/// A name as OpenSSL compares it: attribute by attribute, values case-folded with runs of
/// white space collapsed, whatever string type encoded them.
fn canonical(name: &crate::x509::X509Name) -> Vec<(String, String)> {
    name.entries()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase(),
            )
        })
        .collect()
}

/// The contents of a DER Name (what follows the SEQUENCE tag and length), which is how trust
/// anchors hold subjects.
fn name_contents(der: &[u8]) -> &[u8] {
    match der.get(1) {
        Some(&len) if len < 0x80 => &der[2..],
        Some(&len) => der.get(2 + usize::from(len & 0x7f)..).unwrap_or(&[]),
        None => &[],
    }
}

fn check_validity(cert: &X509, now: UnixTime, depth: u32) -> Result<(), (i32, u32)> {
    let now = now.as_secs() as i64;
    if cert.not_before().unix_timestamp() > now {
        Err((X509_V_ERR_CERT_NOT_YET_VALID, depth))
    } else if cert.not_after().unix_timestamp() < now {
        Err((X509_V_ERR_CERT_HAS_EXPIRED, depth))
    } else {
        Ok(())
    }
}

/// Turns webpki's reason into OpenSSL's code and the depth it concerns.
fn map_webpki_error(e: &webpki::Error, presented: &[X509], now: UnixTime) -> (i32, u32) {
    use webpki::Error as W;
    let top = presented.len() as u32 - 1;
    match e {
        W::UnknownIssuer => {
            let last = &presented[top as usize];
            if !last.is_self_issued() {
                (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, top)
            } else if top == 0 {
                (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0)
            } else {
                (X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, top)
            }
        }
        W::CertExpired { .. } | W::CertNotValidYet { .. } => presented
            .iter()
            .enumerate()
            .find_map(|(d, c)| check_validity(c, now, d as u32).err())
            .unwrap_or((X509_V_ERR_CERT_HAS_EXPIRED, 0)),
        W::InvalidSignatureForPublicKey
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | W::SignatureAlgorithmMismatch => (X509_V_ERR_CERT_SIGNATURE_FAILURE, 0),
        W::CaUsedAsEndEntity => (X509_V_ERR_INVALID_PURPOSE, 0),
        W::EndEntityUsedAsCa => {
            // The first certificate above the peer's that is not a CA.
            let depth = presented
                .iter()
                .skip(1)
                .position(|c| !c.is_ca())
                .map_or(1.min(top), |i| i as u32 + 1);
            (X509_V_ERR_INVALID_CA, depth)
        }
        W::RequiredEkuNotFoundContext(_) => (X509_V_ERR_INVALID_PURPOSE, 0),
        W::PathLenConstraintViolated => (X509_V_ERR_PATH_LENGTH_EXCEEDED, top),
        W::MaximumPathDepthExceeded => (X509_V_ERR_CERT_CHAIN_TOO_LONG, top),
        W::NameConstraintViolation => (X509_V_ERR_PERMITTED_VIOLATION, 0),
        W::CertRevoked => (X509_V_ERR_CERT_REVOKED, 0),
        W::UnsupportedCriticalExtension => (X509_V_ERR_INVALID_EXTENSION, 0),
        _ => (X509_V_ERR_UNSPECIFIED, 0),
    }
}

/// Whether `cert` is valid for `host`, a DNS name or an IP address, by its subjectAltName
/// (RFC 6125 matching, wildcards in the left-most label only), as a verifying client checks.
pub fn certificate_matches_host(cert: &X509, host: &str) -> bool {
    let Ok(name) = ServerName::try_from(host) else {
        return false;
    };
    let der = cert.to_cert_der();
    webpki::EndEntityCert::try_from(&der)
        .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
}

/// OpenSSL's text for an `X509_V_ERR_*` code (`X509_verify_cert_error_string`).
pub fn verify_error_string(code: i32) -> &'static str {
    match code {
        X509_V_OK => "ok",
        X509_V_ERR_UNSPECIFIED => "unspecified certificate verification error",
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT => "unable to get issuer certificate",
        X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY => "unable to decode issuer public key",
        X509_V_ERR_CERT_SIGNATURE_FAILURE => "certificate signature failure",
        X509_V_ERR_CERT_NOT_YET_VALID => "certificate is not yet valid",
        X509_V_ERR_CERT_HAS_EXPIRED => "certificate has expired",
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT => "self-signed certificate",
        X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => "self-signed certificate in certificate chain",
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY => "unable to get local issuer certificate",
        X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE => "unable to verify the first certificate",
        X509_V_ERR_CERT_CHAIN_TOO_LONG => "certificate chain too long",
        X509_V_ERR_CERT_REVOKED => "certificate revoked",
        X509_V_ERR_INVALID_CA => "invalid CA certificate",
        X509_V_ERR_PATH_LENGTH_EXCEEDED => "path length constraint exceeded",
        X509_V_ERR_INVALID_PURPOSE => "unsuitable certificate purpose",
        X509_V_ERR_CERT_UNTRUSTED => "certificate not trusted",
        X509_V_ERR_CERT_REJECTED => "certificate rejected",
        X509_V_ERR_INVALID_EXTENSION => "invalid or inconsistent certificate extension",
        X509_V_ERR_PERMITTED_VIOLATION => "permitted subtree violation",
        X509_V_ERR_HOSTNAME_MISMATCH => "hostname mismatch",
        X509_V_ERR_IP_ADDRESS_MISMATCH => "IP address mismatch",
        _ => "certificate verification error",
    }
}

/// The alert-carrying engine error for a failed verification, so that the alert sent matches
/// the reason (unknown_ca, certificate_expired, bad_certificate, ...).
pub fn certificate_error(code: i32) -> rustls::CertificateError {
    use rustls::CertificateError as C;
    match code {
        X509_V_ERR_CERT_HAS_EXPIRED => C::Expired,
        X509_V_ERR_CERT_NOT_YET_VALID => C::NotValidYet,
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY => C::UnknownIssuer,
        X509_V_ERR_CERT_SIGNATURE_FAILURE => C::BadSignature,
        // OpenSSL answers a chain that reaches no usable CA with unknown_ca.
        X509_V_ERR_INVALID_CA
        | X509_V_ERR_PATH_LENGTH_EXCEEDED
        | X509_V_ERR_CERT_CHAIN_TOO_LONG => C::UnknownIssuer,
        X509_V_ERR_CERT_REVOKED => C::Revoked,
        X509_V_ERR_INVALID_PURPOSE => C::InvalidPurpose,
        X509_V_ERR_CERT_REJECTED => C::ApplicationVerificationFailure,
        X509_V_ERR_HOSTNAME_MISMATCH | X509_V_ERR_IP_ADDRESS_MISMATCH => C::NotValidForName,
        _ => C::BadEncoding,
    }
}
