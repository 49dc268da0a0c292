//! The text parsers: PEM framing (blocks, RFC 1421 headers, base64) and OpenSSL cipher strings.
#![no_main]

use ferrossl::ciphers::{parse_cipher_list, parse_ciphersuites};
use ferrossl::x509::pem;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(blocks) = pem::parse_all(data) {
        // Whatever was read must be written back so that it reads the same: chain files and
        // keys are re-emitted with encode().
        for block in blocks {
            let again = pem::parse_all(block.encode().as_bytes()).expect("re-encoded PEM parses");
            assert_eq!(again, [block], "PEM round trip");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_cipher_list(text);
        let _ = parse_ciphersuites(text);
    }
});
