//! Certificate loading as the public API offers it: DER, PEM and chain files (in memory and
//! through a context's file loaders), every accessor of a loaded certificate, its names, and
//! adding it to a trust store. The first byte picks the loader; the rest is the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ferrossl::constants::{FILETYPE_ASN1, FILETYPE_PEM};
use ferrossl::{Context, Method, X509Name, X509Store, X509};
use libfuzzer_sys::fuzz_target;

/// One scratch file per process for the path-taking loaders (the fuzzer runs one input at a
/// time, so reusing it is safe).
fn scratch_file() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("ferrossl-fuzz-x509-{}.pem", std::process::id()))
    })
}

fn exercise(cert: &X509) {
    let _ = (
        cert.serial_number(),
        cert.version(),
        cert.not_before(),
        cert.not_after(),
        cert.has_expired(),
    );
    let _ = (
        cert.public_key_spki(),
        cert.public_key_bits(),
        cert.signature_algorithm_oid(),
    );
    let _ = (cert.is_self_issued(), cert.is_ca(), format!("{cert:?}"));
    for alg in ["md5", "sha1", "SHA-256", "sha3-512", "sha512_256", "nope"] {
        let _ = cert.digest(alg);
    }
    for name in [cert.subject(), cert.issuer()] {
        let _ = (
            name.oneline(),
            name.to_string(),
            format!("{name:?}"),
            name.get("CN"),
        );
        // A name's DER that reads back gives the same entries. (It may not read back: x509-parser
        // takes some malformed names inside a certificate that it refuses on their own.)
        if let Ok(again) = X509Name::from_der(name.to_der()) {
            assert_eq!(again.entries(), name.entries(), "name DER round trip");
        }
    }
    // Both encodings give back the same certificate.
    assert_eq!(&X509::from_der(cert.to_der()).expect("DER re-parses"), cert);
    assert_eq!(
        &X509::from_pem(cert.to_pem().as_bytes()).expect("PEM re-parses"),
        cert
    );
    // Not every certificate can be an anchor; either answer is fine, a panic is not.
    let _ = X509Store::new().add_cert(cert.clone());
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            if let Ok(cert) = X509::load(data, FILETYPE_ASN1) {
                exercise(&cert);
            }
        }
        1 => {
            if let Ok(chain) = X509::stack_from_pem(data) {
                let first = X509::from_pem(data).ok();
                assert_eq!(
                    first.as_ref(),
                    chain.first(),
                    "from_pem is the chain's first"
                );
                chain.iter().for_each(exercise);
            }
        }
        2 => {
            if let Ok(name) = X509Name::from_der(data) {
                let _ = (name.oneline(), name.to_string(), name.entries().len());
            }
        }
        _ => {
            // The context's file loaders over the same bytes.
            let path = scratch_file();
            if std::fs::write(path, data).is_err() {
                return;
            }
            let ctx = Context::new(Method::Tls);
            let _ = ctx.use_certificate_file(path, FILETYPE_PEM);
            let _ = ctx.use_certificate_file(path, FILETYPE_ASN1);
            let _ = ctx.use_certificate_chain_file(path);
            let _ = ctx.load_verify_locations(Some(path), None);
            let _ = ctx.load_client_ca(path);
            let _ = (
                ctx.certificate_chain(),
                ctx.get_client_ca_list(),
                ctx.check_privatekey(),
            );
        }
    }
});
