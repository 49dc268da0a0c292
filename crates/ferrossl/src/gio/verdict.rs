//! GIO's verdict on a certificate chain (`g_tls_database_verify_chain`,
//! `g_tls_certificate_verify`): every problem found, as a set of [`TlsCertificateFlags`],
//! where the handshake's verification stops at the first.

use rustls_pki_types::UnixTime;

use crate::constants::*;
use crate::ex_data::ExData;
use crate::verify::{certificate_matches_host, ChainVerifier, LeafKeyUsage, Purpose};
use crate::x509::{X509Store, X509};

use super::TlsCertificateFlags;

/// The problems with `chain` (the peer's certificate first, then the certificates that may
/// lead to an anchor) when `anchors` are trusted: UNKNOWN_CA when it reaches none of them,
/// EXPIRED and NOT_ACTIVATED for any certificate of the chain outside its validity at `now`,
/// BAD_IDENTITY when `identity` (a host name or IP address) is given and the peer's certificate
/// is not valid for it, GENERIC_ERROR for the other failures. An empty chain is UNKNOWN_CA.
pub fn chain_flags(
    chain: &[X509],
    anchors: &X509Store,
    identity: Option<&str>,
    purpose: Purpose,
    now: UnixTime,
) -> TlsCertificateFlags {
    let Some(leaf) = chain.first() else {
        return TlsCertificateFlags::UNKNOWN_CA;
    };
    let mut flags = validity_flags(chain, now);
    flags |= anchoring_flags(chain, anchors, purpose, now);
    if identity.is_some_and(|host| !certificate_matches_host(leaf, host)) {
        flags |= TlsCertificateFlags::BAD_IDENTITY;
    }
    flags
}

fn validity_flags(chain: &[X509], now: UnixTime) -> TlsCertificateFlags {
    let now = now.as_secs() as i64;
    let mut flags = TlsCertificateFlags::default();
    for cert in chain {
        if cert.not_before().unix_timestamp() > now {
            flags |= TlsCertificateFlags::NOT_ACTIVATED;
        }
        if cert.not_after().unix_timestamp() < now {
            flags |= TlsCertificateFlags::EXPIRED;
        }
    }
    flags
}

/// Whether the chain reaches an anchor, judged at a moment every certificate of it is valid
/// (when there is one): an expired certificate is then EXPIRED alone, not UNKNOWN_CA too. A
/// chain with no certificate trusted or issued by a trusted one is UNKNOWN_CA whatever else
/// is wrong with it (a self-signed CA certificate presented as the peer's, say).
fn anchoring_flags(
    chain: &[X509],
    anchors: &X509Store,
    purpose: Purpose,
    now: UnixTime,
) -> TlsCertificateFlags {
    if !touches_anchor(chain, anchors) {
        return TlsCertificateFlags::UNKNOWN_CA;
    }
    let verifier = ChainVerifier {
        store: anchors.clone(),
        mode: VERIFY_PEER,
        depth: None,
        callback: None,
        hostname: None,
        purpose,
        leaf_key_usage: LeafKeyUsage::AnyTls,
    };
    let ders: Vec<_> = chain.iter().map(X509::to_cert_der).collect();
    let outcome = verifier.verify(
        &ders[0],
        &ders[1..],
        moment_all_valid(chain, now),
        &ExData::default(),
    );
    let flags = TlsCertificateFlags::from_verify_error(outcome.result);
    // Time was judged above, certificate by certificate.
    TlsCertificateFlags(
        flags.0 & !(TlsCertificateFlags::EXPIRED.0 | TlsCertificateFlags::NOT_ACTIVATED.0),
    )
}

/// Whether a certificate of `chain` is an anchor or names one as its issuer.
fn touches_anchor(chain: &[X509], anchors: &X509Store) -> bool {
    let trusted = anchors.certificates();
    chain.iter().any(|cert| {
        trusted
            .iter()
            .any(|ca| ca == cert || ca.subject().to_der() == cert.issuer().to_der())
    })
}

/// `now` if every certificate of `chain` is valid then, else the first second of the window
/// they all share, else `now`.
fn moment_all_valid(chain: &[X509], now: UnixTime) -> UnixTime {
    let start = chain.iter().map(|c| c.not_before().unix_timestamp()).max();
    let end = chain.iter().map(|c| c.not_after().unix_timestamp()).min();
    let secs = now.as_secs() as i64;
    match (start, end) {
        (Some(start), Some(end)) if !(start..=end).contains(&secs) && start <= end => {
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(start.max(0) as u64))
        }
        _ => now,
    }
}
