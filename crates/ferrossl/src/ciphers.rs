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

/// The suites a configuration enables, TLS 1.3 first, in preference order.
pub fn enabled(config: &crate::config::Config) -> impl Iterator<Item = &'static CipherInfo> + '_ {
    let pick = move |c: &&CipherInfo| {
        let list = if c.tls13 {
            &config.tls13_suites
        } else {
            &config.tls12_suites
        };
        list.as_ref().is_none_or(|l| l.contains(&c.suite))
    };
    let ordered = |tls13: bool| {
        let list = if tls13 {
            &config.tls13_suites
        } else {
            &config.tls12_suites
        };
        let mut v: Vec<&'static CipherInfo> = ALL
            .iter()
            .filter(|c| c.tls13 == tls13)
            .filter(pick)
            .collect();
        if let Some(l) = list {
            v.sort_by_key(|c| l.iter().position(|s| *s == c.suite));
        }
        v
    };
    ordered(true).into_iter().chain(ordered(false))
}

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

/// Whether a suite matches one OpenSSL cipher-string alias ("HIGH", "ECDHE", "aRSA", "AESGCM",
/// an OpenSSL suite name...). Aliases for what ferrossl never offers (RSA key exchange, DHE,
/// CBC, NULL...) match nothing.
fn matches_alias(c: &CipherInfo, alias: &str) -> bool {
    let tls12 = !c.tls13;
    match alias.to_ascii_uppercase().as_str() {
        "ALL" | "DEFAULT" | "HIGH" | "FIPS" => true,
        "COMPLEMENTOFDEFAULT"
        | "COMPLEMENTOFALL"
        | "MEDIUM"
        | "LOW"
        | "EXPORT"
        | "NULL"
        | "ENULL"
        | "ANULL"
        | "ADH"
        | "AECDH"
        | "RC4"
        | "DES"
        | "3DES"
        | "MD5"
        | "SHA1"
        | "SHA"
        | "PSK"
        | "SRP"
        | "CAMELLIA"
        | "ARIA"
        | "SEED"
        | "IDEA"
        | "DHE"
        | "EDH"
        | "KDHE"
        | "KEDH"
        | "DH"
        | "RSA"
        | "KRSA"
        | "AESCCM"
        | "AESCCM8"
        | "TLSV1"
        | "SSLV3" => false,
        "ECDHE" | "EECDH" | "KECDHE" | "KEECDH" | "ECDH" => tls12,
        "AECDSA" | "ECDSA" => c.auth == Authentication::Ecdsa,
        "ARSA" => c.auth == Authentication::Rsa,
        "AES" => c.enc != Encryption::Chacha20Poly1305,
        "AESGCM" => c.enc != Encryption::Chacha20Poly1305,
        "AES128" => c.enc == Encryption::Aes128Gcm,
        "AES256" => c.enc == Encryption::Aes256Gcm,
        "CHACHA20" => c.enc == Encryption::Chacha20Poly1305,
        "SHA256" => c.mac == "SHA256",
        "SHA384" => c.mac == "SHA384",
        "TLSV1.2" => tls12,
        "AEAD" => true,
        _ => c.openssl_name.eq_ignore_ascii_case(alias) || c.iana_name.eq_ignore_ascii_case(alias),
    }
}

/// Parses an OpenSSL cipher list (`set_cipher_list`) into the TLS 1.2 suites it selects, in
/// order. Supports `:`, `,` and space separators, `+`-joined aliases (`ECDHE+AESGCM`), the
/// `!` (remove for good), `-` (remove) and `+` (move to the end) prefixes, `@STRENGTH` and
/// `@SECLEVEL=n`. TLS 1.3 suites are set with [`parse_ciphersuites`], as in OpenSSL.
pub fn parse_cipher_list(list: &str) -> Result<Vec<rustls::CipherSuite>, crate::Error> {
    let tls12: Vec<&CipherInfo> = ALL.iter().filter(|c| !c.tls13).collect();
    let mut chosen: Vec<&CipherInfo> = Vec::new();
    let mut banned: Vec<&CipherInfo> = Vec::new();
    for token in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        if token.eq_ignore_ascii_case("@STRENGTH") {
            chosen.sort_by_key(|c| std::cmp::Reverse(c.bits));
            continue;
        }
        if token.to_ascii_uppercase().starts_with("@SECLEVEL=") {
            continue;
        }
        let (op, expr) = match token.as_bytes()[0] {
            b @ (b'!' | b'-' | b'+') => (b, &token[1..]),
            _ => (b'=', token),
        };
        let selected: Vec<&CipherInfo> = tls12
            .iter()
            .copied()
            .filter(|c| expr.split('+').all(|alias| matches_alias(c, alias)))
            .collect();
        match op {
            b'!' => {
                chosen.retain(|c| !selected.contains(c));
                banned.extend(selected);
            }
            b'-' => chosen.retain(|c| !selected.contains(c)),
            b'+' => {
                let (moved, kept): (Vec<_>, Vec<_>) =
                    chosen.iter().partition(|c| selected.contains(c));
                chosen = kept.into_iter().chain(moved).collect();
            }
            _ => {
                for c in selected {
                    if !chosen.contains(&c) && !banned.contains(&c) {
                        chosen.push(c);
                    }
                }
            }
        }
    }
    if chosen.is_empty() {
        return Err(crate::Error::NoCipherMatch);
    }
    Ok(chosen.into_iter().map(|c| c.suite).collect())
}

/// Parses a TLS 1.3 suite list (`set_ciphersuites`): names joined by `:`.
pub fn parse_ciphersuites(list: &str) -> Result<Vec<rustls::CipherSuite>, crate::Error> {
    let mut suites = Vec::new();
    for name in list.split(':').filter(|n| !n.is_empty()) {
        match by_name(name).filter(|c| c.tls13) {
            Some(c) if !suites.contains(&c.suite) => suites.push(c.suite),
            Some(_) => {}
            None => return Err(crate::Error::NoCipherMatch),
        }
    }
    if suites.is_empty() {
        return Err(crate::Error::NoCipherMatch);
    }
    Ok(suites)
}

/// A key exchange group by OpenSSL's or the IANA name ("X25519", "P-256", "prime256v1",
/// "secp384r1", "X25519MLKEM768"...). P-521 is absent: neither the aws-lc-rs provider nor
/// the DTLS engine offers it for key exchange (P-521 keys still sign).
pub fn group_by_name(name: &str) -> Option<rustls::NamedGroup> {
    use rustls::NamedGroup as G;
    Some(match name.to_ascii_lowercase().as_str() {
        "x25519" => G::X25519,
        "p-256" | "prime256v1" | "secp256r1" => G::secp256r1,
        "p-384" | "secp384r1" => G::secp384r1,
        "x25519mlkem768" => G::X25519MLKEM768,
        _ => return None,
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

    fn names(list: &str) -> Vec<&'static str> {
        parse_cipher_list(list)
            .unwrap()
            .into_iter()
            .map(|s| info(s).unwrap().openssl_name)
            .collect()
    }

    #[test]
    fn cipher_strings() {
        assert_eq!(names("DEFAULT").len(), 6);
        assert_eq!(names("HIGH:!aNULL").len(), 6);
        assert_eq!(
            names("ECDHE+AESGCM:!ECDSA"),
            ["ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]
        );
        assert_eq!(
            names("ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-CHACHA20-POLY1305").len(),
            2
        );
        assert_eq!(
            names("AES128:AES256:@STRENGTH")[0..2],
            [
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-RSA-AES256-GCM-SHA384"
            ]
        );
        assert_eq!(
            names("ALL:-CHACHA20:+AES128").last(),
            Some(&"ECDHE-RSA-AES128-GCM-SHA256")
        );
        assert_eq!(
            names("ALL:!CHACHA20:CHACHA20").len(),
            4,
            "! removes for good"
        );
        for none in ["imaginary-cipher", "AES128-SHA", "RSA", "DHE", "eNULL", ""] {
            assert!(
                matches!(parse_cipher_list(none), Err(crate::Error::NoCipherMatch)),
                "{none}"
            );
        }
        assert_eq!(
            parse_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_ciphersuites("ECDHE-RSA-AES128-GCM-SHA256").is_err());
        assert_eq!(
            group_by_name("prime256v1"),
            Some(rustls::NamedGroup::secp256r1)
        );
        assert!(group_by_name("brainpoolP256r1").is_none());
        assert!(group_by_name("secp521r1").is_none());
    }
}
