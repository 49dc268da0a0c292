//! The cipher suites ferrossl offers, with OpenSSL's names and attributes.
//!
//! Every suite is an AEAD suite with forward secrecy: the three TLS 1.3 suites and the six
//! ECDHE suites of TLS 1.2. CBC, RSA key exchange, DHE, static DH, export and NULL suites are
//! refused on purpose (see the docs' table of refusals).

use rustls::CipherSuite;

/// Bulk cipher of a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// AES-128 in GCM mode.
    Aes128Gcm,
    /// AES-256 in GCM mode.
    Aes256Gcm,
    /// ChaCha20 with Poly1305.
    Chacha20Poly1305,
}

/// Authentication (certificate) type of a TLS 1.2 suite; TLS 1.3 suites authenticate with any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// Any certificate type (TLS 1.3).
    Any,
    /// RSA certificates.
    Rsa,
    /// ECDSA certificates.
    Ecdsa,
}

/// One cipher suite as OpenSSL describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherInfo {
    /// The IANA code point.
    pub suite: CipherSuite,
    /// OpenSSL's name, e.g. "ECDHE-RSA-AES128-GCM-SHA256".
    pub openssl_name: &'static str,
    /// The IANA / RFC name, e.g. "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".
    pub iana_name: &'static str,
    /// Secret key bits of the bulk cipher.
    pub bits: u32,
    /// The lowest protocol version the suite is defined for, as OpenSSL names it.
    pub version: &'static str,
    /// Whether this is a TLS 1.3 suite.
    pub tls13: bool,
    /// The authentication type.
    pub auth: Authentication,
    /// The bulk cipher.
    pub enc: Encryption,
    /// The handshake hash ("SHA256" or "SHA384").
    pub mac: &'static str,
}

macro_rules! suite {
    ($suite:ident, $ossl:literal, $bits:literal, $tls13:literal, $auth:ident, $enc:ident, $mac:literal) => {
        CipherInfo {
            suite: CipherSuite::$suite,
            openssl_name: $ossl,
            iana_name: if $tls13 { $ossl } else { stringify!($suite) },
            bits: $bits,
            version: if $tls13 { "TLSv1.3" } else { "TLSv1.2" },
            tls13: $tls13,
            auth: Authentication::$auth,
            enc: Encryption::$enc,
            mac: $mac,
        }
    };
}

/// Every suite, in ferrossl's default preference order (TLS 1.3 first, then ECDSA before RSA,
/// AES-GCM before ChaCha20, as OpenSSL's DEFAULT orders them).
pub const ALL: &[CipherInfo] = &[
    suite!(
        TLS13_AES_256_GCM_SHA384,
        "TLS_AES_256_GCM_SHA384",
        256,
        true,
        Any,
        Aes256Gcm,
        "SHA384"
    ),
    suite!(
        TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_CHACHA20_POLY1305_SHA256",
        256,
        true,
        Any,
        Chacha20Poly1305,
        "SHA256"
    ),
    suite!(
        TLS13_AES_128_GCM_SHA256,
        "TLS_AES_128_GCM_SHA256",
        128,
        true,
        Any,
        Aes128Gcm,
        "SHA256"
    ),
    suite!(
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        256,
        false,
        Ecdsa,
        Aes256Gcm,
        "SHA384"
    ),
    suite!(
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384",
        256,
        false,
        Rsa,
        Aes256Gcm,
        "SHA384"
    ),
    suite!(
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        256,
        false,
        Ecdsa,
        Chacha20Poly1305,
        "SHA256"
    ),
    suite!(
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305",
        256,
        false,
        Rsa,
        Chacha20Poly1305,
        "SHA256"
    ),
    suite!(
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        128,
        false,
        Ecdsa,
        Aes128Gcm,
        "SHA256"
    ),
    suite!(
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256",
        128,
        false,
        Rsa,
        Aes128Gcm,
        "SHA256"
    ),
];

/// The description of a suite, if ferrossl offers it.
pub fn info(suite: CipherSuite) -> Option<&'static CipherInfo> {
    ALL.iter().find(|c| c.suite == suite)
}

/// A suite by its OpenSSL or IANA name.
pub fn by_name(name: &str) -> Option<&'static CipherInfo> {
    ALL.iter().find(|c| {
        c.openssl_name.eq_ignore_ascii_case(name) || c.iana_name.eq_ignore_ascii_case(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_suite_has_a_name() {
        for s in rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES {
            let i = info(s.suite()).expect("named");
            assert_eq!(i.tls13, s.version() == &rustls::version::TLS13);
        }
        assert_eq!(by_name("ecdhe-rsa-aes128-gcm-sha256").unwrap().bits, 128);
        assert_eq!(
            by_name("TLS_AES_128_GCM_SHA256").unwrap().version,
            "TLSv1.3"
        );
        assert!(by_name("AES128-SHA").is_none());
    }
}
