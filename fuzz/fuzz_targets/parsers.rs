//! The input parsers: PEM, certificates, keys, distinguished names and cipher strings.
#![no_main]

use ferrossl::ciphers::{parse_cipher_list, parse_ciphersuites};
use ferrossl::{PKey, X509Name, X509};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = X509::from_der(data) {
        let _ = (cert.subject(), cert.issuer(), cert.not_after(), cert.digest("sha256"));
    }
    let _ = X509::stack_from_pem(data);
    let _ = PKey::from_der(data);
    let _ = PKey::from_pem(data, None);
    let _ = X509Name::from_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_cipher_list(text);
        let _ = parse_ciphersuites(text);
    }
});
