//! Loading identities: encodings, key types, passphrases, mismatches and broken files.

mod common;

use std::sync::Arc;

use ferrossl::constants::*;
use ferrossl::{Context, Error, KeyType, Method, PKey, X509};
use ferrossl_testkit::pki::TestPki;

fn pass(p: &'static str) -> ferrossl::x509::PassphraseCallback {
    Arc::new(move |_max, _encrypt| Ok(p.as_bytes().to_vec()))
}

#[test]
fn key_encodings_and_types() {
    let pki = TestPki::generate();
    let rsa = PKey::from_pem(pki.server_rsa.key_pem.as_bytes(), None).unwrap();
    assert_eq!((rsa.key_type(), rsa.bits()), (KeyType::Rsa, 2048));
    let ec = PKey::from_pem(pki.server_ecdsa.key_pem.as_bytes(), None).unwrap();
    assert_eq!((ec.key_type(), ec.bits()), (KeyType::Ec, 256));
    let ed = PKey::from_der(&pki.server_ed25519.key_der).unwrap();
    assert_eq!(ed.key_type(), KeyType::Ed25519);
    let p384 = PKey::from_pem(pki.server_chain.key_pem.as_bytes(), None).unwrap();
    assert_eq!(p384.bits(), 384);

    let ctx = Context::new(Method::Tls);
    if let Some(path) = pki.rsa_key_pkcs1_pem() {
        ctx.use_privatekey_file(&path, FILETYPE_PEM).unwrap();
    }
    if let Some(path) = pki.ec_key_sec1_pem() {
        ctx.use_privatekey_file(&path, FILETYPE_PEM).unwrap();
    }
    ctx.use_privatekey_file(pki.key_der_path(&pki.server_ecdsa), FILETYPE_ASN1)
        .unwrap();
    ctx.use_certificate_file(pki.cert_der_path(&pki.server_ecdsa), FILETYPE_ASN1)
        .unwrap();
    ctx.check_privatekey().unwrap();
}

#[test]
fn encrypted_keys_use_the_passphrase_callback() {
    let pki = TestPki::generate();
    let files = [
        pki.encrypted_pkcs8_pem(&pki.server_ecdsa, "s3cret"),
        pki.legacy_encrypted_pem(&pki.server_rsa, "s3cret"),
    ];
    for path in files.into_iter().flatten() {
        let ctx = Context::new(Method::Tls);
        let err = ctx.use_privatekey_file(&path, FILETYPE_PEM).unwrap_err();
        assert!(matches!(err, Error::BadPassphrase(_)), "no callback: {err}");
        ctx.set_passwd_cb(pass("wrong"));
        let err = ctx.use_privatekey_file(&path, FILETYPE_PEM).unwrap_err();
        assert!(
            matches!(err, Error::BadPassphrase(_) | Error::InvalidKey(_)),
            "{err}"
        );
        ctx.set_passwd_cb(pass("s3cret"));
        ctx.use_privatekey_file(&path, FILETYPE_PEM).unwrap();
        // A callback's own failure comes back as it was.
        ctx.set_passwd_cb(Arc::new(|_, _| {
            Err(Error::Callback("user cancelled".into()))
        }));
        assert!(matches!(
            ctx.use_privatekey_file(&path, FILETYPE_PEM),
            Err(Error::Callback(_))
        ));
    }
}

#[test]
fn mismatched_key_is_named() {
    let pki = TestPki::generate();
    let ctx = Context::new(Method::Tls);
    ctx.use_certificate_file(&pki.server_rsa.cert_path, FILETYPE_PEM)
        .unwrap();
    ctx.use_privatekey_file(&pki.server_ecdsa.key_path, FILETYPE_PEM)
        .unwrap();
    assert!(matches!(ctx.check_privatekey(), Err(Error::KeyMismatch)));
    assert!(ctx
        .check_privatekey()
        .unwrap_err()
        .to_string()
        .contains("mismatch"));
    // A server with a mismatched pair fails before it sends anything.
    let mut s = ferrossl::Connection::new(&ctx).unwrap();
    s.set_accept_state().unwrap();
    assert!(matches!(s.do_handshake(), Err(Error::KeyMismatch)));
    let empty = Context::new(Method::Tls);
    assert!(matches!(empty.check_privatekey(), Err(Error::Missing(_))));
}

#[test]
fn missing_and_corrupt_files() {
    let pki = TestPki::generate();
    let ctx = Context::new(Method::Tls);
    let missing = pki
        .write("nothing-here", b"")
        .with_file_name("does-not-exist.pem");
    assert!(matches!(
        ctx.use_certificate_file(&missing, FILETYPE_PEM),
        Err(Error::File { .. })
    ));
    assert!(matches!(
        ctx.load_verify_locations(Some(missing.as_ref()), None),
        Err(Error::File { .. })
    ));
    let garbage = pki.write(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    assert!(matches!(
        ctx.use_certificate_file(&garbage, FILETYPE_PEM),
        Err(Error::InvalidCertificate(_))
    ));
    let truncated = pki.write(
        "truncated.pem",
        &pki.server_ecdsa.cert_pem.as_bytes()[..200],
    );
    assert!(ctx.use_certificate_file(&truncated, FILETYPE_PEM).is_err());
    let not_der = pki.write("random.der", &[0x30, 0x82, 0xff, 0xff, 1, 2, 3]);
    assert!(matches!(
        ctx.use_certificate_file(&not_der, FILETYPE_ASN1),
        Err(Error::InvalidCertificate(_))
    ));
    assert!(matches!(
        ctx.use_privatekey_file(&not_der, FILETYPE_ASN1),
        Err(Error::InvalidKey(_))
    ));
    let cert_as_key = pki.server_ecdsa.cert_path.clone();
    assert!(matches!(
        ctx.use_privatekey_file(&cert_as_key, FILETYPE_PEM),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        ctx.use_certificate_file(&pki.server_ecdsa.cert_path, 99),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn certificate_fields() {
    let pki = TestPki::generate();
    let cert = X509::from_pem(pki.server_ecdsa.cert_pem.as_bytes()).unwrap();
    assert_eq!(cert.subject().get("CN"), Some("localhost"));
    assert_eq!(cert.issuer().get("CN"), Some("ferrossl test root CA"));
    assert!(!cert.has_expired());
    assert!(X509::from_pem(pki.expired.cert_pem.as_bytes())
        .unwrap()
        .has_expired());
    assert_eq!(cert.digest("sha256").unwrap().len(), 32 * 3 - 1);
    assert!(cert.digest("md4").is_err());
    assert_eq!(X509::from_der(cert.to_der()).unwrap(), cert);
    assert_eq!(X509::from_pem(cert.to_pem().as_bytes()).unwrap(), cert);
    assert_eq!(
        X509::stack_from_pem(
            std::fs::read(&pki.server_chain.chain_path)
                .unwrap()
                .as_slice()
        )
        .unwrap()
        .len(),
        2
    );
}

#[test]
fn trust_directories_and_system_store() {
    let pki = TestPki::generate();
    if let Some(dir) = pki.ca_dir() {
        let ctx = Context::new(Method::Tls);
        ctx.load_verify_locations(None, Some(dir.as_ref())).unwrap();
        assert_eq!(ctx.get_cert_store().certificates().len(), 1);
    }
    let ctx = Context::new(Method::Tls);
    assert!(ctx.load_verify_locations(None, None).is_err());
    // The system store either loads or says clearly that there is none.
    match ctx.set_default_verify_paths() {
        Ok(()) => assert!(!ctx.get_cert_store().certificates().is_empty()),
        Err(e) => assert!(matches!(e, Error::NoSystemStore(_)), "{e}"),
    }
}

#[test]
fn refused_methods_and_versions() {
    for id in [1, 2, 4, 5] {
        assert!(matches!(
            Context::from_method_id(id),
            Err(Error::UnsupportedProtocol(_))
        ));
    }
    assert!(matches!(
        Context::from_method_id(99),
        Err(Error::InvalidArgument(_))
    ));
    let ctx = Context::from_method_id(7).unwrap();
    assert!(matches!(
        ctx.set_min_proto_version(TLS1_1_VERSION),
        Err(Error::UnsupportedProtocol(_))
    ));
    // Options that exclude every version are reported when a connection starts.
    let opts = ctx.set_options(OP_NO_TLSv1_2 | OP_NO_TLSv1_3);
    assert_eq!(
        opts & (OP_NO_TLSv1_2 | OP_NO_TLSv1_3),
        OP_NO_TLSv1_2 | OP_NO_TLSv1_3
    );
    let mut c = ferrossl::Connection::new(&ctx).unwrap();
    c.set_connect_state().unwrap();
    assert!(matches!(
        c.do_handshake(),
        Err(Error::UnsupportedProtocol(_))
    ));
    assert_eq!(ctx.clear_options(OP_NO_TLSv1_3) & OP_NO_TLSv1_3, 0);
}

#[test]
fn generated_keys_sign_a_handshake() {
    for (kind, bits) in [
        (KeyType::Rsa, 2048),
        (KeyType::Ec, 256),
        (KeyType::Ec, 384),
        (KeyType::Ec, 521),
    ] {
        let key = PKey::generate(kind, bits).unwrap();
        assert_eq!((key.key_type(), key.bits()), (kind, bits));
        let again = PKey::generate(kind, bits).unwrap();
        assert_ne!(key.public_key_spki(), again.public_key_spki());
        // The PEM it writes reads back as the same key.
        let reread = PKey::from_pem(key.to_pem().as_bytes(), None).unwrap();
        assert_eq!(reread.public_key_spki(), key.public_key_spki());

        let signer = rcgen::KeyPair::try_from(key.private_key_der().secret_der()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = X509::from_der(params.self_signed(&signer).unwrap().der()).unwrap();
        assert_eq!(cert.public_key_bits(), bits);
        let server = Context::new(Method::Tls);
        server.use_certificate(cert.clone());
        server.use_privatekey(key);
        server.check_privatekey().unwrap();
        let client = Context::new(Method::Tls);
        client.get_cert_store().add_cert(cert).unwrap();
        client.set_verify(VERIFY_PEER, None);
        let (mut c, mut s) = common::pair(&client, &server);
        common::handshake(&mut c, &mut s).unwrap();
        assert_eq!(c.get_verify_result(), X509_V_OK);
    }
}

#[test]
fn key_generation_refuses_unsupported_sizes() {
    for (kind, bits) in [
        (KeyType::Rsa, 1024),
        (KeyType::Rsa, 2047),
        (KeyType::Ec, 255),
        (KeyType::Ed25519, 253),
    ] {
        let err = PKey::generate(kind, bits).unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey(_)),
            "{kind:?} {bits}: {err}"
        );
    }
}

#[test]
fn key_types_round_trip_through_nids() {
    for kind in [KeyType::Rsa, KeyType::Ec, KeyType::Ed25519] {
        assert_eq!(KeyType::from_nid(kind.nid()), Some(kind));
    }
    assert_eq!(KeyType::from_nid(116), None); // EVP_PKEY_DSA
}
