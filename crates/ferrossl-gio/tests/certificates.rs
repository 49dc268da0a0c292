//! GTlsCertificate (PEM files, chains, keys, properties, verify) and GTlsFileDatabase
//! (verify_chain sync and async with GIO's flags, issuer lookups, handles, the default
//! database), exercised from PyGObject.

mod common;

use common::*;
use ferrossl_testkit::pki::TestPki;

#[test]
fn certificates_and_databases_from_python() {
    if !have_pygobject() {
        return;
    }
    let pki = TestPki::generate();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let args = [
        path(&pki.ca_path()),
        path(&pki.server_chain.chain_path),
        path(&pki.server_chain.key_path),
        path(&pki.server_rsa.cert_path),
        path(&pki.untrusted.cert_path),
        path(&pki.expired.cert_path),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_python("certificates.py", &args);
    for check in [
        "type",
        "subject",
        "chain",
        "key",
        "dns-names",
        "ip-addresses",
        "validity",
        "no-key",
        "garbage-refused",
        "verify-ok",
        "verify-unknown-ca",
        "verify-identity",
        "db-trusted",
        "db-bad-identity",
        "db-unknown-ca",
        "db-expired",
        "db-issuer",
        "db-handle",
        "db-async",
        "default-db",
        "default-db-unknown-ca",
    ] {
        assert!(
            out.contains(&format!("ok {check}\n")),
            "no `ok {check}` in:\n{out}"
        );
    }
}
