//! A throwaway PKI, generated into a temporary directory that lives as long as [`TestPki`].

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
};
use time::{Duration, OffsetDateTime};

/// A certificate with its key, in memory and on disk.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// File holding `cert_pem`.
    pub cert_path: PathBuf,
    /// File holding `key_pem`.
    pub key_path: PathBuf,
    /// File holding the certificate followed by its intermediates (PEM).
    pub chain_path: PathBuf,
}

/// A CA that can issue certificates.
struct Authority {
    params: CertificateParams,
    key: KeyPair,
}

impl Authority {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// The whole test PKI. Every file lives in a temporary directory removed on drop.
pub struct TestPki {
    dir: PathBuf,
    /// Root CA (ECDSA P-256), CN "ferrossl test root CA".
    pub ca: Identity,
    /// RSA-2048 server certificate for localhost, 127.0.0.1 and ::1.
    pub server_rsa: Identity,
    /// ECDSA P-256 server certificate for the same names.
    pub server_ecdsa: Identity,
    /// Ed25519 server certificate for the same names.
    pub server_ed25519: Identity,
    /// ECDSA P-384 server certificate issued by an intermediate CA; `chain_path` has both.
    pub server_chain: Identity,
    /// RSA-2048 client certificate, CN "ferrossl test client".
    pub client_rsa: Identity,
    /// ECDSA P-256 client certificate, CN "ferrossl test client".
    pub client_ecdsa: Identity,
    /// Server certificate from the root that expired a year ago.
    pub expired: Identity,
    /// Server certificate from the root that becomes valid in a year.
    pub not_yet_valid: Identity,
    /// Self-signed server certificate for localhost, not issued by the root.
    pub self_signed: Identity,
    /// Server certificate for localhost issued by `other_ca`, which nothing trusts.
    pub untrusted: Identity,
    /// An unrelated CA.
    pub other_ca: Identity,
}

const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl TestPki {
    /// Generates every identity (a few RSA keys make this take up to a second or two).
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ferrossl-pki-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("create PKI directory");
        let now = OffsetDateTime::now_utc();
        let valid = (now - Duration::days(1), now + Duration::days(30));

        let root = authority("ferrossl test root CA", &PKCS_ECDSA_P256_SHA256);
        let ca = write_identity(
            &dir,
            "ca",
            &root.params.self_signed(&root.key).unwrap(),
            &root.key,
            &[],
        );
        let other = authority("ferrossl unrelated CA", &PKCS_ECDSA_P256_SHA256);
        let other_ca = write_identity(
            &dir,
            "other-ca",
            &other.params.self_signed(&other.key).unwrap(),
            &other.key,
            &[],
        );
        let intermediate = {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = ca_params("ferrossl test intermediate CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            Authority { params, key }
        };
        let intermediate_cert = intermediate
            .params
            .signed_by(&intermediate.key, &root.issuer())
            .unwrap();

        let server = |name: &str, alg, period, issuer: Option<&Authority>| {
            let key = KeyPair::generate_for(alg).unwrap();
            let params = leaf_params(
                "localhost",
                &SERVER_NAMES,
                ExtendedKeyUsagePurpose::ServerAuth,
                period,
            );
            let cert = match issuer {
                Some(a) => params.signed_by(&key, &a.issuer()).unwrap(),
                None => params.self_signed(&key).unwrap(),
            };
            write_identity(&dir, name, &cert, &key, &[])
        };
        let client = |name: &str, alg| {
            let key = KeyPair::generate_for(alg).unwrap();
            let params = leaf_params(
                "ferrossl test client",
                &[],
                ExtendedKeyUsagePurpose::ClientAuth,
                valid,
            );
            write_identity(
                &dir,
                name,
                &params.signed_by(&key, &root.issuer()).unwrap(),
                &key,
                &[],
            )
        };
        let server_chain = {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
            let params = leaf_params(
                "localhost",
                &SERVER_NAMES,
                ExtendedKeyUsagePurpose::ServerAuth,
                valid,
            );
            let cert = params.signed_by(&key, &intermediate.issuer()).unwrap();
            write_identity(
                &dir,
                "server-chain",
                &cert,
                &key,
                &[intermediate_cert.pem()],
            )
        };
        let year = Duration::days(365);
        Self {
            server_rsa: server("server-rsa", &PKCS_RSA_SHA256, valid, Some(&root)),
            server_ecdsa: server("server-ecdsa", &PKCS_ECDSA_P256_SHA256, valid, Some(&root)),
            server_ed25519: server("server-ed25519", &PKCS_ED25519, valid, Some(&root)),
            server_chain,
            client_rsa: client("client-rsa", &PKCS_RSA_SHA256),
            client_ecdsa: client("client-ecdsa", &PKCS_ECDSA_P256_SHA256),
            expired: server(
                "expired",
                &PKCS_ECDSA_P256_SHA256,
                (now - 2 * year, now - year),
                Some(&root),
            ),
            not_yet_valid: server(
                "not-yet-valid",
                &PKCS_ECDSA_P256_SHA256,
                (now + year, now + 2 * year),
                Some(&root),
            ),
            self_signed: server("self-signed", &PKCS_ECDSA_P256_SHA256, valid, None),
            untrusted: server("untrusted", &PKCS_ECDSA_P256_SHA256, valid, Some(&other)),
            ca,
            other_ca,
            dir,
        }
    }

    /// The root CA's PEM file.
    pub fn ca_path(&self) -> PathBuf {
        self.ca.cert_path.clone()
    }

    /// A directory holding the root in OpenSSL's hashed form (`<subject hash>.0`), as
    /// `openssl rehash` makes it; None without the openssl command.
    pub fn ca_dir(&self) -> Option<PathBuf> {
        let out = Command::new("openssl")
            .args(["x509", "-hash", "-noout", "-in"])
            .arg(&self.ca.cert_path)
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let hash = String::from_utf8(out.stdout).ok()?.trim().to_string();
        let dir = self.dir.join("capath");
        std::fs::create_dir_all(&dir).ok()?;
        std::fs::write(dir.join(format!("{hash}.0")), &self.ca.cert_pem).ok()?;
        Some(dir)
    }

    /// Writes `contents` to a file of the PKI directory.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    /// The RSA server key as PKCS#1 PEM ("BEGIN RSA PRIVATE KEY").
    pub fn rsa_key_pkcs1_pem(&self) -> Option<PathBuf> {
        self.openssl_convert(
            "rsa-pkcs1.pem",
            &self.server_rsa.key_path,
            &["pkey", "-traditional"],
        )
    }

    /// The ECDSA server key as SEC1 PEM ("BEGIN EC PRIVATE KEY").
    pub fn ec_key_sec1_pem(&self) -> Option<PathBuf> {
        self.openssl_convert("ec-sec1.pem", &self.server_ecdsa.key_path, &["ec"])
    }

    /// The identity's key as PKCS#8 DER.
    pub fn key_der_path(&self, id: &Identity) -> PathBuf {
        self.write(&format!("{}.key.der", stem(&id.key_path)), &id.key_der)
    }

    /// The identity's certificate as DER.
    pub fn cert_der_path(&self, id: &Identity) -> PathBuf {
        self.write(&format!("{}.cert.der", stem(&id.cert_path)), &id.cert_der)
    }

    /// The identity's key as encrypted PKCS#8 (PBES2, AES-256-CBC).
    pub fn encrypted_pkcs8_pem(&self, id: &Identity, password: &str) -> Option<PathBuf> {
        let name = format!("{}.p8enc.pem", stem(&id.key_path));
        let pass = format!("pass:{password}");
        self.openssl_convert(
            &name,
            &id.key_path,
            &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", &pass],
        )
    }

    /// The identity's key in OpenSSL's traditional encrypted form (DEK-Info: AES-256-CBC).
    pub fn legacy_encrypted_pem(&self, id: &Identity, password: &str) -> Option<PathBuf> {
        let name = format!("{}.legacy-enc.pem", stem(&id.key_path));
        let pass = format!("pass:{password}");
        self.openssl_convert(
            &name,
            &id.key_path,
            &["pkey", "-traditional", "-aes256", "-passout", &pass],
        )
    }

    fn openssl_convert(&self, name: &str, input: &Path, args: &[&str]) -> Option<PathBuf> {
        let out = self.dir.join(name);
        let status = Command::new("openssl")
            .args(args)
            .arg("-in")
            .arg(input)
            .arg("-out")
            .arg(&out)
            .output()
            .ok()?;
        status.status.success().then_some(out)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "ferrossl tests");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(3 * 365);
    params.not_after = now + Duration::days(3 * 365);
    params
}

fn authority(cn: &str, alg: &'static SignatureAlgorithm) -> Authority {
    Authority {
        params: ca_params(cn),
        key: KeyPair::generate_for(alg).unwrap(),
    }
}

fn leaf_params(
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    (not_before, not_after): (OffsetDateTime, OffsetDateTime),
) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name = name(cn);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    // RFC 5280 §4.2.1.1 requires it of every certificate a CA issues; strict path builders
    // (sslyze's) refuse a leaf without it.
    params.use_authority_key_identifier_extension = true;
    params
}

fn write_identity(
    dir: &Path,
    name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
    intermediates: &[String],
) -> Identity {
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();
    let chain_path = if intermediates.is_empty() {
        cert_path.clone()
    } else {
        let path = dir.join(format!("{name}.chain.pem"));
        std::fs::write(&path, format!("{cert_pem}{}", intermediates.concat())).unwrap();
        path
    };
    Identity {
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        cert_pem,
        key_pem,
        cert_path,
        key_path,
        chain_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_identity() {
        let pki = TestPki::generate();
        for id in [
            &pki.ca,
            &pki.server_rsa,
            &pki.server_chain,
            &pki.expired,
            &pki.untrusted,
        ] {
            assert!(id.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
            assert!(id.key_pem.contains("PRIVATE KEY"));
            assert!(id.cert_path.exists() && id.key_path.exists());
        }
        let chain = std::fs::read_to_string(&pki.server_chain.chain_path).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        if let Some(dir) = pki.ca_dir() {
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
            let expired = Command::new("openssl")
                .args(["x509", "-checkend", "0", "-noout", "-in"])
                .arg(&pki.expired.cert_path)
                .status()
                .unwrap();
            assert!(
                !expired.success(),
                "the expired certificate must be expired"
            );
        }
        let dir = pki.dir.clone();
        drop(pki);
        assert!(!dir.exists());
    }
}
