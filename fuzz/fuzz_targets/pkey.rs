//! Private key loading: PKCS#8, PKCS#1 and SEC1 in DER and PEM, encrypted PKCS#8 and
//! OpenSSL's traditional DEK-Info encryption under each kind of passphrase answer, and the
//! PEM a loaded key writes back. The first byte picks the encoding and the passphrase.
#![no_main]

use std::sync::Arc;

use ferrossl::constants::{FILETYPE_ASN1, FILETYPE_PEM};
use ferrossl::x509::PassphraseCallback;
use ferrossl::{Error, PKey};
use libfuzzer_sys::fuzz_target;

/// The passphrase of the encrypted seeds in corpus/pkey (see make_corpus.py).
const SEED_PASSPHRASE: &[u8] = b"fuzz";

fn fixed(pass: Vec<u8>) -> PassphraseCallback {
    Arc::new(move |_, _| Ok(pass.clone()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let passphrase = match (selector >> 1) % 4 {
        0 => None,
        1 => Some(fixed(SEED_PASSPHRASE.to_vec())),
        // Longer than the 1024 bytes a callback may answer.
        2 => Some(fixed(vec![b'x'; 1025])),
        _ => Some(
            Arc::new(|_, _| Err(Error::Callback("no passphrase".into()))) as PassphraseCallback,
        ),
    };
    let filetype = if selector & 1 == 0 {
        FILETYPE_PEM
    } else {
        FILETYPE_ASN1
    };
    let Ok(key) = PKey::load(data, filetype, passphrase.as_ref()) else {
        return;
    };
    let _ = (
        key.key_type(),
        key.bits(),
        key.public_key_spki(),
        format!("{key:?}"),
    );
    // The unencrypted PEM reads back to the same key, in the same encoding.
    let again = PKey::from_pem(key.to_pem().as_bytes(), None).expect("a written key reads back");
    assert_eq!(
        again.private_key_der(),
        key.private_key_der(),
        "key PEM round trip"
    );
    assert_eq!(again.public_key_spki(), key.public_key_spki());
});
