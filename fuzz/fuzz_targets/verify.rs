//! Chain verification (ChainVerifier, as both engines and crypto.X509StoreContext run it) of
//! fuzzed chains against a fixed trust store, under fuzzed settings and verification time.
//!
//! Input: 6 bytes of settings, then the chain as certificates each prefixed by a 2-byte
//! big-endian length, peer first. corpus/verify holds real chains under fixtures/verify-root.pem.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferrossl::constants::VERIFY_PEER;
use ferrossl::ex_data::ExData;
use ferrossl::rustls::pki_types::{CertificateDer, UnixTime};
use ferrossl::verify::{ChainVerifier, LeafKeyUsage, Purpose};
use ferrossl::{X509Store, X509};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static X509Store {
    static STORE: OnceLock<X509Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = X509Store::new();
        for cert in X509::stack_from_pem(include_bytes!("../fixtures/verify-root.pem")).unwrap() {
            store.add_cert(cert).unwrap();
        }
        store
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((settings, mut rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let [flags, accept, time @ ..] = *settings;
    let mut certs = Vec::new();
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        certs.push(CertificateDer::from(&tail[..len]));
        rest = &tail[len..];
    }
    let Some((end_entity, intermediates)) = certs.split_first() else {
        return;
    };
    // The callback accepts or rejects each depth by one bit of `accept`.
    let callback = (flags & 0x08 != 0).then(|| {
        Arc::new(move |p: &ferrossl::verify::VerifyParams<'_>| {
            let _ = (p.cert.subject(), p.errnum, p.ok);
            accept >> (p.depth % 8) & 1 != 0
        }) as ferrossl::verify::VerifyCallback
    });
    let verifier = ChainVerifier {
        store: store().clone(),
        mode: if flags & 0x10 != 0 { VERIFY_PEER } else { 0 },
        depth: (flags & 0x60 != 0).then(|| u32::from(flags >> 5 & 3) - 1),
        callback,
        hostname: match flags & 0x06 {
            0 => None,
            2 => Some("localhost".into()),
            4 => Some("127.0.0.1".into()),
            _ => Some("*.example".into()),
        },
        purpose: if flags & 1 == 0 {
            Purpose::ServerAuth
        } else {
            Purpose::ClientAuth
        },
        leaf_key_usage: if flags & 0x80 == 0 {
            LeafKeyUsage::Signing
        } else {
            LeafKeyUsage::AnyTls
        },
    };
    // Seconds since 1970 from 4 bytes: spans every validity period the seeds have.
    let now = UnixTime::since_unix_epoch(Duration::from_secs(u64::from(u32::from_be_bytes(time))));
    let outcome = verifier.verify(end_entity, intermediates, now, &ExData::default());
    if outcome.result == 0 {
        assert!(outcome.accepted, "a chain without error is accepted");
        // A verified chain starts with the peer's certificate and ends at a trusted one.
        assert_eq!(outcome.chain[0].to_der(), end_entity.as_ref());
        let top = outcome.chain.last().unwrap();
        assert!(
            store().certificates().contains(top),
            "chain ends at a trusted certificate"
        );
    }
});
