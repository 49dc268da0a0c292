//! The audit tools from the registries — testssl.sh, sslscan, nmap's ssl scripts (Debian) and
//! sslyze (PyPI) — against `ferrossl s_server -www -serverpref` on 127.0.0.1, one test per
//! tool. Each test audits two servers: an RSA certificate and an ECDSA certificate. (Without
//! `-serverpref` the client's order decides, as in `openssl s_server`, and testssl.sh reports
//! that as cipher_order, HIGH: docs/security.md.) Every verdict
//! is read from the tool's machine-readable output, never from its colours, and after each
//! scan the server must still complete a verified handshake and answer a GET.
//!
//! What counts as a finding, per tool:
//! - testssl.sh (`--jsonfile`): severity HIGH or CRITICAL fails, and so do WARN and FATAL (the
//!   scan did not run to the end). LOW and MEDIUM must be among [`TRIAGED`]: a new one fails
//!   until someone triages it.
//! - sslyze (`--json_out`): any vulnerability a plugin reports (Heartbleed, CCS injection,
//!   ROBOT, insecure or client-initiated renegotiation, compression, no downgrade
//!   protection), a protocol below TLS 1.2, a chain our test CA does not validate, and
//!   non-compliance with Mozilla's "intermediate" configuration (its exit status).
//! - sslscan (`--xml`): SSLv2/3 or TLS 1.0/1.1, insecure renegotiation, Heartbleed,
//!   compression, a cipher it rates below "strong"/"acceptable", a key exchange group under
//!   128 bits, an expired, self-signed or weak certificate; and, from its text since the
//!   XML lacks it, a server that does not refuse a TLS_FALLBACK_SCSV retry.
//! - nmap (`-oX`, ssl-enum-ciphers and the vulnerability scripts): any cipher graded below A
//!   (nmap grades A to F: B already means a weakness such as a small key exchange), any
//!   warning of ssl-enum-ciphers, any script reporting VULNERABLE or failing to run.
//!
//! The tools trust our test CA where they can (`--add-ca`, `--certinfo_ca_file`), so trust
//! findings are about the server, not about a CA no tool knows; the certificates are made
//! here as a public CA would make them (see [`AuditPki`]).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferrossl::constants::VERIFY_PEER;
use ferrossl::{Connection, Context, Error, Method};
use ferrossl_testkit::peer::{self, PeerProcess};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CrlDistributionPoint, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};

const FERROSSL: &str = env!("CARGO_BIN_EXE_ferrossl");
const STARTUP: Duration = Duration::from_secs(10);
/// The sslyze release scripts/test.sh installs (works on Python 3.11).
const SSLYZE_PIN: &str = "sslyze==6.3.1";

/// One server under audit.
struct Target {
    label: &'static str,
    identity: fn(&AuditPki) -> &Leaf,
    /// Whether the certificate's key is RSA (else ECDSA).
    rsa: bool,
}

const TARGETS: [Target; 2] = [
    Target {
        label: "RSA",
        identity: |pki| &pki.rsa,
        rsa: true,
    },
    Target {
        label: "ECDSA",
        identity: |pki| &pki.ecdsa,
        rsa: false,
    },
];

/// A running `ferrossl s_server -www`; killed on drop, on every path.
struct Server {
    process: PeerProcess,
    port: u16,
}

impl Server {
    fn start(pki: &AuditPki, target: &Target) -> Self {
        let id = (target.identity)(pki);
        let port = peer::free_tcp_port();
        let mut cmd = Command::new(FERROSSL);
        cmd.args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-www"]);
        cmd.arg("-cert").arg(&id.cert).arg("-key").arg(&id.key);
        cmd.arg("-serverpref");
        let mut process = PeerProcess::spawn(&mut cmd).unwrap();
        process.wait_for_output("ACCEPT", STARTUP).unwrap();
        Self { process, port }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// After a scan: a verified handshake (our client, our CA, SNI localhost) and a GET must
    /// still work, and the server must not have panicked.
    fn assert_serves(&self, pki: &AuditPki, after: &str) {
        let page = get_page(self.port, &pki.ca)
            .unwrap_or_else(|e| panic!("after {after}: the server no longer serves: {e}"));
        assert!(
            page.starts_with("HTTP/1.0 200 ok") && page.contains("ferrossl s_server"),
            "after {after}: unexpected answer {page:?}"
        );
        let log = self.process.stderr();
        assert!(!log.contains("panicked"), "after {after}: {log}");
    }
}

/// GET / over a fresh connection that verifies the server against `ca`.
fn get_page(port: u16, ca: &Path) -> Result<String, String> {
    let text = |e: Error| e.to_string();
    let ctx = Context::new(Method::TlsClient);
    ctx.load_verify_locations(Some(ca), None).map_err(text)?;
    ctx.set_verify(VERIFY_PEER, None);
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    // Every wait is bounded: a read that times out surfaces as an error below.
    stream
        .set_read_timeout(Some(STARTUP))
        .map_err(|e| e.to_string())?;
    let mut conn = Connection::with_stream(&ctx, stream).map_err(text)?;
    conn.set_connect_state().map_err(text)?;
    conn.set_tlsext_host_name("localhost").map_err(text)?;
    conn.do_handshake().map_err(text)?;
    conn.sendall(b"GET / HTTP/1.0\r\n\r\n").map_err(text)?;
    let mut page = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.recv(&mut buf) {
            Ok(n) => page.extend_from_slice(&buf[..n]),
            Err(Error::ZeroReturn) => break,
            Err(e) => return Err(format!("{e} after {} bytes", page.len())),
        }
    }
    Ok(String::from_utf8_lossy(&page).into_owned())
}

/// Skips the test with `why` printed, or fails under CI, where every tool is installed.
fn unavailable(why: &str) -> Option<PathBuf> {
    assert!(std::env::var_os("CI").is_none(), "required under CI: {why}");
    eprintln!("skipped: {why}");
    None
}

/// The first of `names` found on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|n| peer::find_on_path(n))
}

/// Runs `cmd` to completion within `limit`: killed and failed on timeout or a failing exit.
fn run_tool(tool: &str, cmd: &mut Command, limit: Duration) -> String {
    run_tool_status(tool, cmd, limit).unwrap_or_else(|e| panic!("{tool} failed: {e}"))
}

/// Runs `cmd` to completion within `limit` (killed and failed on timeout); Ok holds what it
/// printed on stdout, Err what a failing exit printed.
fn run_tool_status(tool: &str, cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let started = Instant::now();
    let mut process = PeerProcess::spawn(cmd).unwrap_or_else(|e| panic!("{tool}: {e}"));
    process.close_stdin();
    let status = process.wait_with_timeout(limit);
    let elapsed = started.elapsed();
    eprintln!("{tool}: {:.1} s", elapsed.as_secs_f64());
    assert!(elapsed < limit, "{tool} killed after {limit:?}: {status:?}");
    status.map(|_| process.stdout()).map_err(|e| e.to_string())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A certificate and its key, PEM files.
struct Leaf {
    cert: PathBuf,
    key: PathBuf,
}

/// The audited identities, in a directory removed on drop: a CA (ECDSA P-256) and leaves
/// for localhost and 127.0.0.1 (RSA-2048, ECDSA P-256), valid 90 days as a public CA's.
/// They carry the authority key identifier RFC 5280 §4.2.1.1 requires, which sslyze's
/// path validation insists on and TestPki's leaves lack; a certificate the tools could
/// fault would hide what they say about the server.
struct AuditPki {
    dir: PathBuf,
    ca: PathBuf,
    rsa: Leaf,
    ecdsa: Leaf,
}

impl AuditPki {
    fn generate() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ferrossl-audit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = params("ferrossl audit CA", Vec::new());
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = Issuer::from_params(&ca, &ca_key);
        let leaf = |name: &str, alg| issue(&dir, name, alg, &issuer);
        Self {
            rsa: leaf("rsa", &PKCS_RSA_SHA256),
            ecdsa: leaf("ecdsa", &PKCS_ECDSA_P256_SHA256),
            ca: ca_path,
            dir,
        }
    }

    /// A fresh path in the directory for a tool's report.
    fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }
}

impl Drop for AuditPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parameters valid from yesterday for 90 days, with key identifiers.
fn params(cn: &str, names: Vec<String>) -> CertificateParams {
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let day = Duration::from_secs(24 * 3600);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    params.not_before = date_time_ymd(1970, 1, 1) + since_epoch - day;
    params.not_after = params.not_before + 90 * day;
    params.use_authority_key_identifier_extension = true;
    params
}

fn issue(
    dir: &Path,
    name: &str,
    alg: &'static SignatureAlgorithm,
    issuer: &Issuer<'_, &KeyPair>,
) -> Leaf {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut leaf = params("localhost", vec!["localhost".into(), "127.0.0.1".into()]);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Where a public CA publishes revocation (RFC 5280 §4.2.1.13); no tool here fetches it.
    leaf.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec!["http://127.0.0.1/audit-ca.crl".into()],
    }];
    let (cert, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, leaf.signed_by(&key, issuer).unwrap().pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Leaf {
        cert,
        key: key_path,
    }
}

/// Fails with every finding at once, so one run shows the whole picture.
fn assert_no_findings(tool: &str, target: &Target, findings: &[String]) {
    assert!(
        findings.is_empty(),
        "{tool} against {}: {} finding(s):\n  {}",
        target.label,
        findings.len(),
        findings.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// testssl.sh

/// testssl.sh findings below HIGH that are not defects of ours, with the reason.
const TRIAGED: [(&str, &str, &str); 2] = [
    (
        "HSTS",
        "LOW",
        "the -www status page is a diagnostic page like openssl s_server's: HTTP headers are \
         the application's, not the TLS library's",
    ),
    (
        "security_headers",
        "MEDIUM",
        "as HSTS: no X-Frame-Options or CSP on a diagnostic page",
    ),
];

/// Ids whose absence would mean testssl skipped the checks this test is about.
const TESTSSL_EXPECTED: [&str; 12] = [
    "SSLv2",
    "SSLv3",
    "TLS1",
    "TLS1_1",
    "heartbleed",
    "CCS",
    "ROBOT",
    "secure_renego",
    "secure_client_renego",
    "CRIME_TLS",
    "fallback_SCSV",
    "cert_chain_of_trust",
];

fn testssl() -> Option<PathBuf> {
    on_path(&["testssl", "testssl.sh"])
        .or_else(|| unavailable("testssl.sh not installed (apt-get install testssl.sh)"))
}

#[test]
fn testssl_finds_nothing_high() {
    let Some(tool) = testssl() else { return };
    let pki = AuditPki::generate();
    for target in &TARGETS {
        let server = Server::start(&pki, target);
        let json = pki.scratch("testssl.json");
        let mut cmd = Command::new(&tool);
        // Protocols, cipher categories, forward secrecy, server preferences, certificate,
        // HTTP headers, every vulnerability check, ciphers per protocol, client simulation.
        cmd.args(["-p", "-s", "-f", "-P", "-S", "-h", "-U", "-E", "-c"]);
        cmd.args([
            "--quiet",
            "--warnings",
            "off",
            "--color",
            "0",
            "--nodns",
            "none",
        ]);
        cmd.arg("--add-ca").arg(&pki.ca);
        cmd.arg("--jsonfile").arg(&json).arg(server.address());
        run_tool("testssl.sh", &mut cmd, Duration::from_secs(200));
        let report = json::parse(&read(&json)).expect("testssl JSON");
        check_testssl(target, report.items());
        server.assert_serves(&pki, "testssl.sh");
    }
}

fn check_testssl(target: &Target, items: &[json::Value]) {
    let ids: Vec<String> = items.iter().map(|i| field(i, "id")).collect();
    for id in TESTSSL_EXPECTED {
        assert!(ids.iter().any(|i| i == id), "testssl did not report {id}");
    }
    let mut findings = Vec::new();
    for item in items {
        let (id, severity, finding) = (
            field(item, "id"),
            field(item, "severity"),
            field(item, "finding"),
        );
        match testssl_verdict(&id, &severity) {
            Ok(None) => {}
            Ok(Some(why)) => eprintln!("testssl, {}: {severity} {id}: {why}", target.label),
            Err(()) => findings.push(format!("{severity} {id}: {finding}")),
        }
    }
    assert_no_findings("testssl.sh", target, &findings);
    let order = items.iter().find(|i| field(i, "id") == "cipher_order");
    let severity = order.map(|o| field(o, "severity"));
    assert_eq!(severity.as_deref(), Some("OK"), "-serverpref: {order:?}");
    assert_clients_connect(target, items);
}

/// A string field of a testssl finding ("" when absent).
fn field(item: &json::Value, key: &str) -> String {
    item.get(key).as_str().unwrap_or("").to_string()
}

/// Err for a finding; Ok(None) for a clean result; Ok(Some(reason)) for a triaged one.
fn testssl_verdict(id: &str, severity: &str) -> Result<Option<&'static str>, ()> {
    let reason = match severity {
        "OK" | "INFO" | "DEBUG" => return Ok(None),
        "LOW" | "MEDIUM" => TRIAGED
            .iter()
            .find(|(i, s, _)| *i == id && *s == severity)
            .map(|(_, _, why)| *why),
        // HIGH and CRITICAL are findings; WARN and FATAL: the scan did not run to its end.
        _ => None,
    };
    reason.map(Some).ok_or(())
}

/// testssl's simulated clients that we refuse on purpose (docs/refused.md), and whether only
/// with an RSA certificate; every other one must connect.
const REFUSED_CLIENTS: [(&str, bool, &str); 7] = [
    ("ie_6_xp", false, "SSLv3/TLS 1.0 only"),
    ("ie_8_win7", false, "TLS 1.0 only"),
    ("ie_8_xp", false, "TLS 1.0 only"),
    ("java_7u25", false, "TLS 1.0 only"),
    // Windows 7 and 8.1 pair GCM with ECDHE only for ECDSA certificates: with RSA they
    // offer CBC suites and DHE, both refused.
    ("ie_11_win7", true, "ECDHE-RSA with CBC or DHE-RSA only"),
    ("ie_11_win81", true, "ECDHE-RSA with CBC or DHE-RSA only"),
    (
        "ie_11_winphone81",
        true,
        "ECDHE-RSA with CBC or DHE-RSA only",
    ),
];

fn refused_client(target: &Target, client: &str) -> bool {
    REFUSED_CLIENTS
        .iter()
        .any(|(c, rsa_only, _)| *c == client && (!rsa_only || target.rsa))
}

fn assert_clients_connect(target: &Target, items: &[json::Value]) {
    let sims: Vec<(String, String)> = items
        .iter()
        .filter_map(|i| {
            let id = field(i, "id");
            let client = id.strip_prefix("clientsimulation-")?.to_string();
            Some((client, field(i, "finding")))
        })
        .collect();
    assert!(
        sims.len() > 10,
        "testssl simulated too few clients: {sims:?}"
    );
    let failed: Vec<&(String, String)> = sims
        .iter()
        .filter(|(c, f)| f.contains("No connection") && !refused_client(target, c))
        .collect();
    assert!(
        failed.is_empty(),
        "clients that could not connect: {failed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// sslyze

fn sslyze() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FERROSSL_SSLYZE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FERROSSL_SSLYZE={} is missing",
            path.display()
        );
        return Some(path);
    }
    on_path(&["sslyze"]).or_else(|| {
        unavailable(&format!(
            "sslyze not found (pip install {SSLYZE_PIN}, or set FERROSSL_SSLYZE as \
             scripts/test.sh does)"
        ))
    })
}

#[test]
fn sslyze_finds_no_vulnerability() {
    let Some(tool) = sslyze() else { return };
    let pki = AuditPki::generate();
    for target in &TARGETS {
        let server = Server::start(&pki, target);
        let json = pki.scratch("sslyze.json");
        let mut cmd = Command::new(&tool);
        // The default scan commands, Mozilla "intermediate" compliance (exit status 1 if
        // not), the test CA as an extra trust store.
        cmd.arg("--quiet").arg("--certinfo_ca_file").arg(&pki.ca);
        cmd.arg("--json_out").arg(&json).arg(server.address());
        let compliance = run_tool_status("sslyze", &mut cmd, Duration::from_secs(120));
        let report = json::parse(&read(&json)).expect("sslyze JSON");
        let results = report.get("server_scan_results").items();
        assert_eq!(results.len(), 1, "{report:?}");
        let mut findings = sslyze_findings(&results[0]);
        // sslyze exits with 1 when the server does not comply with Mozilla's configuration.
        if let Err(output) = compliance {
            findings.push(format!("not Mozilla-intermediate compliant: {output}"));
        }
        assert_no_findings("sslyze", target, &findings);
        server.assert_serves(&pki, "sslyze");
    }
}

/// Each check: (scan command, path in its result, the value that is not a finding).
const SSLYZE_EXPECTED: [(&str, &str, Expect); 13] = [
    (
        "ssl_2_0_cipher_suites",
        "is_tls_version_supported",
        Expect::Bool(false),
    ),
    (
        "ssl_3_0_cipher_suites",
        "is_tls_version_supported",
        Expect::Bool(false),
    ),
    (
        "tls_1_0_cipher_suites",
        "is_tls_version_supported",
        Expect::Bool(false),
    ),
    (
        "tls_1_1_cipher_suites",
        "is_tls_version_supported",
        Expect::Bool(false),
    ),
    (
        "tls_1_2_cipher_suites",
        "is_tls_version_supported",
        Expect::Bool(true),
    ),
    (
        "tls_1_3_cipher_suites",
        "is_tls_version_supported",
        Expect::Bool(true),
    ),
    (
        "tls_compression",
        "supports_compression",
        Expect::Bool(false),
    ),
    (
        "openssl_ccs_injection",
        "is_vulnerable_to_ccs_injection",
        Expect::Bool(false),
    ),
    (
        "heartbleed",
        "is_vulnerable_to_heartbleed",
        Expect::Bool(false),
    ),
    ("robot", "robot_result", Expect::Prefix("NOT_VULNERABLE")),
    (
        "tls_fallback_scsv",
        "supports_fallback_scsv",
        Expect::Bool(true),
    ),
    (
        "session_renegotiation",
        "supports_secure_renegotiation",
        Expect::Bool(true),
    ),
    (
        "session_renegotiation",
        "is_vulnerable_to_client_renegotiation_dos",
        Expect::Bool(false),
    ),
];

enum Expect {
    Bool(bool),
    Prefix(&'static str),
}

fn sslyze_findings(result: &json::Value) -> Vec<String> {
    let mut findings = Vec::new();
    for status in ["connectivity_status", "scan_status"] {
        if result.get(status).as_str() != Some("COMPLETED") {
            findings.push(format!("{status}: {:?}", result.get(status)));
        }
    }
    let scans = result.get("scan_result");
    for (command, key, expect) in &SSLYZE_EXPECTED {
        let scan = scans.get(command);
        let value = scan.get("result").get(key);
        let fine = match expect {
            Expect::Bool(b) => value.as_bool() == Some(*b),
            Expect::Prefix(p) => value.as_str().is_some_and(|s| s.starts_with(p)),
        };
        if scan.get("status").as_str() != Some("COMPLETED") || !fine {
            findings.push(format!(
                "{command}: {key} = {value:?} ({:?})",
                scan.get("status")
            ));
        }
    }
    findings.extend(sslyze_cipher_findings(scans));
    findings.extend(sslyze_certificate_findings(scans.get("certificate_info")));
    findings
}

/// Accepted suites: none anonymous, none under 128 bits, each with an ephemeral key.
fn sslyze_cipher_findings(scans: &json::Value) -> Vec<String> {
    let mut findings = Vec::new();
    for version in ["tls_1_2_cipher_suites", "tls_1_3_cipher_suites"] {
        let accepted = scans
            .get(version)
            .get("result")
            .get("accepted_cipher_suites");
        if accepted.items().is_empty() {
            findings.push(format!("{version}: nothing accepted"));
        }
        for suite in accepted.items() {
            let cipher = suite.get("cipher_suite");
            let weak = cipher.get("is_anonymous").as_bool() != Some(false)
                || cipher
                    .get("key_size")
                    .as_f64()
                    .is_none_or(|bits| bits < 128.0)
                || suite.get("ephemeral_key").is_null();
            if weak {
                findings.push(format!("{version}: weak suite {suite:?}"));
            }
        }
    }
    findings
}

/// The chain must validate against our test CA (the only store that can know it), in valid
/// order, without SHA-1 and without sending the anchor.
fn sslyze_certificate_findings(info: &json::Value) -> Vec<String> {
    let mut findings = Vec::new();
    let deployments = info.get("result").get("certificate_deployments").items();
    if deployments.is_empty() {
        findings.push(format!("certificate_info: no certificate ({info:?})"));
    }
    for deployment in deployments {
        let ours = deployment
            .get("path_validation_results")
            .items()
            .iter()
            .find(|p| p.get("trust_store").get("name").as_str() == Some("Supplied CA file"));
        if ours.and_then(|p| p.get("was_validation_successful").as_bool()) != Some(true) {
            findings.push(format!("chain not valid under the test CA: {ours:?}"));
        }
        for (key, good) in [
            ("received_chain_has_valid_order", true),
            ("verified_chain_has_sha1_signature", false),
            ("received_chain_contains_anchor_certificate", false),
        ] {
            if deployment.get(key).as_bool() != Some(good) {
                findings.push(format!("{key} = {:?}", deployment.get(key)));
            }
        }
    }
    findings
}

// ---------------------------------------------------------------------------------------------
// sslscan

#[test]
fn sslscan_finds_nothing_weak() {
    let Some(tool) = on_path(&["sslscan"])
        .or_else(|| unavailable("sslscan not installed (apt-get install sslscan)"))
    else {
        return;
    };
    let pki = AuditPki::generate();
    for target in &TARGETS {
        let server = Server::start(&pki, target);
        let xml_path = pki.scratch("sslscan.xml");
        let mut cmd = Command::new(&tool);
        cmd.args(["--no-colour", "--show-sigs"]);
        cmd.arg(format!("--xml={}", xml_path.display()));
        cmd.arg(server.address());
        let text = run_tool("sslscan", &mut cmd, Duration::from_secs(120));
        let elements = xml::elements(&read(&xml_path));
        let mut findings = sslscan_findings(&elements);
        // Its TLS_FALLBACK_SCSV verdict is only in its text (RFC 7507).
        if !text.contains("Server supports TLS Fallback SCSV") {
            findings.push("no TLS Fallback SCSV".to_string());
        }
        assert_no_findings("sslscan", target, &findings);
        server.assert_serves(&pki, "sslscan");
    }
}

fn sslscan_findings(elements: &[xml::Element]) -> Vec<String> {
    let mut findings = Vec::new();
    let named = |name: &'static str| elements.iter().filter(move |e| e.name == name);
    for protocol in named("protocol") {
        let version = format!("{} {}", protocol.attr("type"), protocol.attr("version"));
        let wanted = if matches!(version.as_str(), "tls 1.2" | "tls 1.3") {
            "1"
        } else {
            "0"
        };
        if protocol.attr("enabled") != wanted {
            findings.push(format!("{version} enabled={}", protocol.attr("enabled")));
        }
    }
    if named("protocol").count() != 6 {
        findings.push("not every protocol was probed".into());
    }
    for e in named("renegotiation") {
        if e.attr("supported") == "1" && e.attr("secure") != "1" {
            findings.push("insecure renegotiation".into());
        }
    }
    for e in named("compression") {
        if e.attr("supported") != "0" {
            findings.push("compression (CRIME)".into());
        }
    }
    let heartbleed: Vec<_> = named("heartbleed").collect();
    if heartbleed.is_empty() || heartbleed.iter().any(|e| e.attr("vulnerable") != "0") {
        findings.push(format!("heartbleed: {heartbleed:?}"));
    }
    findings.extend(sslscan_cipher_findings(elements));
    findings.extend(sslscan_certificate_findings(elements));
    findings
}

fn sslscan_cipher_findings(elements: &[xml::Element]) -> Vec<String> {
    let mut findings = Vec::new();
    let ciphers: Vec<_> = elements.iter().filter(|e| e.name == "cipher").collect();
    if ciphers.is_empty() {
        findings.push("no cipher accepted".into());
    }
    for c in ciphers {
        if !matches!(c.attr("strength"), "strong" | "acceptable") {
            findings.push(format!(
                "cipher {} rated {}",
                c.attr("cipher"),
                c.attr("strength")
            ));
        }
    }
    for g in elements.iter().filter(|e| e.name == "group") {
        if g.attr("bits").parse::<u32>().map_or(true, |b| b < 128) {
            findings.push(format!(
                "group {} of {} bits",
                g.attr("name"),
                g.attr("bits")
            ));
        }
    }
    findings
}

fn sslscan_certificate_findings(elements: &[xml::Element]) -> Vec<String> {
    let mut findings = Vec::new();
    let text = |name: &str| {
        elements
            .iter()
            .find(|e| e.name == name)
            .map_or(String::new(), |e| e.text.trim().to_string())
    };
    if text("expired") != "false" || text("self-signed") != "false" {
        findings.push(format!(
            "expired {} self-signed {}",
            text("expired"),
            text("self-signed")
        ));
    }
    let signature = text("signature-algorithm").to_lowercase();
    if signature.is_empty() || signature.contains("sha1") || signature.contains("md5") {
        findings.push(format!("certificate signature {signature:?}"));
    }
    match elements.iter().find(|e| e.name == "pk") {
        Some(pk) => {
            let bits: u32 = pk.attr("bits").parse().unwrap_or(0);
            // sslscan gives an RSA key's modulus, an EC key's security level (P-256: 128).
            let minimum = if pk.attr("type") == "RSA" { 2048 } else { 128 };
            if pk.attr("error") != "false" || bits < minimum {
                findings.push(format!("{} key of {bits} bits", pk.attr("type")));
            }
        }
        None => findings.push("no certificate key reported".into()),
    }
    findings
}

// ---------------------------------------------------------------------------------------------
// nmap

/// Forced with `+` (the port is not a known TLS port); tls-ticketbleed is left out: it needs
/// packet capture, which a connect scan does not have (testssl checks Ticketbleed).
const NMAP_SCRIPTS: &str = "+ssl-enum-ciphers,+ssl-cert,+ssl-heartbleed,+ssl-ccs-injection,\
                            +ssl-poodle,+ssl-dh-params,+sslv2,+sslv2-drown,+ssl-known-key";

#[test]
fn nmap_grades_every_cipher_a() {
    let Some(tool) =
        on_path(&["nmap"]).or_else(|| unavailable("nmap not installed (apt-get install nmap)"))
    else {
        return;
    };
    let pki = AuditPki::generate();
    for target in &TARGETS {
        let server = Server::start(&pki, target);
        let xml_path = pki.scratch("nmap.xml");
        let mut cmd = Command::new(&tool);
        // A connect scan of the one port, no ping, no DNS: no privileges needed.
        cmd.args(["-sT", "-Pn", "-n", "-p", &server.port.to_string()]);
        cmd.args(["--script", NMAP_SCRIPTS, "-oX"]).arg(&xml_path);
        cmd.arg("127.0.0.1");
        run_tool("nmap", &mut cmd, Duration::from_secs(120));
        let elements = xml::elements(&read(&xml_path));
        assert_no_findings("nmap", target, &nmap_findings(&elements));
        server.assert_serves(&pki, "nmap");
    }
}

fn nmap_findings(elements: &[xml::Element]) -> Vec<String> {
    let mut findings = Vec::new();
    let scripts: Vec<&str> = elements
        .iter()
        .filter(|e| e.name == "script")
        .map(|e| e.attr("id"))
        .collect();
    for e in elements.iter().filter(|e| e.name == "script") {
        if e.attr("output").contains("ERROR") {
            findings.push(format!("{} failed: {}", e.attr("id"), e.attr("output")));
        }
    }
    for needed in ["ssl-enum-ciphers", "ssl-cert"] {
        if !scripts.contains(&needed) {
            findings.push(format!("{needed} did not report (scripts: {scripts:?})"));
        }
    }
    let keyed = |key: &'static str| {
        elements
            .iter()
            .filter(move |e| e.attr("key") == key)
            .map(|e| e.text.trim())
    };
    findings.extend(
        keyed("state")
            .filter(|s| s.contains("VULNERABLE"))
            .map(String::from),
    );
    if keyed("least strength").collect::<Vec<_>>() != ["A"] {
        findings.push(format!(
            "least strength {:?}",
            keyed("least strength").collect::<Vec<_>>()
        ));
    }
    findings.extend(
        keyed("strength")
            .filter(|s| *s != "A")
            .map(|s| format!("a cipher graded {s}")),
    );
    for e in elements.iter().filter(|e| e.name == "table") {
        let key = e.attr("key");
        if key == "warnings" || ["SSLv3", "TLSv1.0", "TLSv1.1"].contains(&key) {
            findings.push(format!("ssl-enum-ciphers reports {key}"));
        }
    }
    let order = "server";
    let preferences: Vec<&str> = keyed("cipher preference").collect();
    if preferences != [order, order] {
        findings.push(format!(
            "cipher preference {preferences:?}, expected {order} (TLS 1.2, 1.3)"
        ));
    }
    findings
}

// ---------------------------------------------------------------------------------------------
// Just enough JSON and XML to read the tools' reports.

mod json {
    /// A parsed JSON value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    static NULL: Value = Value::Null;

    impl Value {
        /// The member `key` of an object; null when absent or not an object.
        pub fn get(&self, key: &str) -> &Value {
            match self {
                Value::Object(members) => members
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(&NULL, |(_, v)| v),
                _ => &NULL,
            }
        }

        /// The elements of an array; empty for anything else.
        pub fn items(&self) -> &[Value] {
            match self {
                Value::Array(items) => items,
                _ => &[],
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }

        pub fn as_bool(&self) -> Option<bool> {
            match self {
                Value::Bool(b) => Some(*b),
                _ => None,
            }
        }

        pub fn as_f64(&self) -> Option<f64> {
            match self {
                Value::Number(n) => Some(*n),
                _ => None,
            }
        }

        pub fn is_null(&self) -> bool {
            *self == Value::Null
        }
    }

    /// Parses a whole document.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let value = p.value()?;
        p.skip_space();
        if p.at != p.chars.len() {
            return Err(format!("trailing data at {}", p.at));
        }
        Ok(value)
    }

    struct Parser {
        chars: Vec<char>,
        at: usize,
    }

    impl Parser {
        fn skip_space(&mut self) {
            while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
                self.at += 1;
            }
        }

        fn next(&mut self) -> Result<char, String> {
            let c = *self.chars.get(self.at).ok_or("unexpected end")?;
            self.at += 1;
            Ok(c)
        }

        fn expect(&mut self, word: &str) -> Result<(), String> {
            for want in word.chars() {
                if self.next()? != want {
                    return Err(format!("expected {word:?} at {}", self.at));
                }
            }
            Ok(())
        }

        fn value(&mut self) -> Result<Value, String> {
            self.skip_space();
            match self.chars.get(self.at).copied().ok_or("unexpected end")? {
                '{' => self.object(),
                '[' => self.array(),
                '"' => self.string().map(Value::String),
                't' => self.expect("true").map(|()| Value::Bool(true)),
                'f' => self.expect("false").map(|()| Value::Bool(false)),
                'n' => self.expect("null").map(|()| Value::Null),
                _ => self.number(),
            }
        }

        /// Runs `item` for each element of a `open ... close` list separated by commas.
        fn list(
            &mut self,
            close: char,
            mut item: impl FnMut(&mut Self) -> Result<(), String>,
        ) -> Result<(), String> {
            self.at += 1;
            self.skip_space();
            if self.chars.get(self.at) == Some(&close) {
                self.at += 1;
                return Ok(());
            }
            loop {
                item(self)?;
                self.skip_space();
                match self.next()? {
                    ',' => self.skip_space(),
                    c if c == close => return Ok(()),
                    c => return Err(format!("unexpected {c:?} at {}", self.at)),
                }
            }
        }

        fn object(&mut self) -> Result<Value, String> {
            let mut members = Vec::new();
            self.list('}', |p| {
                let key = p.string()?;
                p.skip_space();
                p.expect(":")?;
                members.push((key, p.value()?));
                Ok(())
            })?;
            Ok(Value::Object(members))
        }

        fn array(&mut self) -> Result<Value, String> {
            let mut items = Vec::new();
            self.list(']', |p| {
                items.push(p.value()?);
                Ok(())
            })?;
            Ok(Value::Array(items))
        }

        fn string(&mut self) -> Result<String, String> {
            self.expect("\"")?;
            let mut out = String::new();
            loop {
                match self.next()? {
                    '"' => return Ok(out),
                    '\\' => out.push(self.escape()?),
                    c => out.push(c),
                }
            }
        }

        fn escape(&mut self) -> Result<char, String> {
            Ok(match self.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'u' => {
                    let hex: String = (0..4).map(|_| self.next()).collect::<Result<_, _>>()?;
                    let unit = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                    // A surrogate half stands for a character the reports never need.
                    char::from_u32(unit).unwrap_or('\u{fffd}')
                }
                c => c,
            })
        }

        fn number(&mut self) -> Result<Value, String> {
            let start = self.at;
            while self
                .chars
                .get(self.at)
                .is_some_and(|c| c.is_ascii_digit() || "+-.eE".contains(*c))
            {
                self.at += 1;
            }
            let text: String = self.chars[start..self.at].iter().collect();
            text.parse()
                .map(Value::Number)
                .map_err(|_| format!("bad value {text:?} at {start}"))
        }
    }
}

mod xml {
    /// One start tag, its attributes and the text up to the next tag.
    #[derive(Debug)]
    pub struct Element {
        pub name: String,
        attrs: Vec<(String, String)>,
        pub text: String,
    }

    impl Element {
        /// The attribute's value, "" when absent.
        pub fn attr(&self, name: &str) -> &str {
            self.attrs
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v)
        }
    }

    /// Every start tag of the document in order (declarations, comments and end tags
    /// skipped; CDATA sections read as text). Nesting is not kept: the checks do not need it.
    pub fn elements(doc: &str) -> Vec<Element> {
        let mut out: Vec<Element> = Vec::new();
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            rest = &rest[open..];
            if let Some(body) = rest.strip_prefix("<![CDATA[") {
                let end = body.find("]]>").unwrap_or(body.len());
                if let Some(last) = out.last_mut() {
                    last.text.push_str(&body[..end]);
                }
                rest = &body[(end + 3).min(body.len())..];
                continue;
            }
            let close = rest.find('>').unwrap_or(rest.len() - 1);
            let tag = &rest[1..close];
            rest = &rest[close + 1..];
            if tag.starts_with(['/', '?', '!']) {
                continue;
            }
            let mut element = start_tag(tag.trim_end_matches('/'));
            element.text = unescape(&rest[..rest.find('<').unwrap_or(rest.len())]);
            out.push(element);
        }
        out
    }

    fn start_tag(tag: &str) -> Element {
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let mut attrs = Vec::new();
        let mut rest = &tag[name_end..];
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].trim().to_string();
            let value_end = rest[eq + 2..].find('"').map_or(rest.len(), |e| eq + 2 + e);
            attrs.push((name, unescape(&rest[eq + 2..value_end])));
            rest = &rest[(value_end + 1).min(rest.len())..];
        }
        Element {
            name: tag[..name_end].to_string(),
            attrs,
            text: String::new(),
        }
    }

    fn unescape(text: &str) -> String {
        text.replace("&#xa;", "\n")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }
}
