//! The chain-verification table: chains with one defect each, made by the `openssl` command at
//! test time. `openssl verify` proves each row's expected X509_V_ERR code and depth; then
//! ferrossl's verify callback (over TLS and over DTLS), `ferrossl s_client` and `openssl
//! s_client` must all report that code against a server presenting the chain.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrossl::constants::*;
use ferrossl::verify::{verify_error_string, VerifyParams};
use ferrossl::{Connection, Context, Error, Method};
use ferrossl_testkit::peer::{self, PeerProcess};

const TIMEOUT: Duration = Duration::from_secs(10);
const FERROSSL: &str = env!("CARGO_BIN_EXE_ferrossl");

/// The name every leaf is issued for (and that a client asks for, but in the wrong-name row).
const HOST: &str = "good.test";

const CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign";
const LEAF: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                    extendedKeyUsage=serverAuth\nsubjectAltName=DNS:good.test";

/// One row: the leaf and intermediates a server presents, the name the client checks, and the
/// first error OpenSSL reports (code, depth).
struct Row {
    what: &'static str,
    leaf: &'static str,
    intermediates: &'static [&'static str],
    host: &'static str,
    /// The trusted certificates' file name (without ".pem").
    trust: &'static str,
    expected: (i32, u32),
}

const ROWS: &[Row] = &[
    Row {
        what: "a good chain",
        leaf: "good",
        intermediates: &["inter"],
        host: HOST,
        trust: "root",
        expected: (X509_V_OK, 0),
    },
    Row {
        what: "expired leaf",
        leaf: "expired",
        intermediates: &["inter"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_CERT_HAS_EXPIRED, 0),
    },
    Row {
        what: "leaf not yet valid",
        leaf: "future",
        intermediates: &["inter"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_CERT_NOT_YET_VALID, 0),
    },
    Row {
        what: "wrong name",
        leaf: "good",
        intermediates: &["inter"],
        host: "wrong.test",
        trust: "root",
        expected: (X509_V_ERR_HOSTNAME_MISMATCH, 0),
    },
    Row {
        what: "missing intermediate",
        leaf: "good",
        intermediates: &[],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0),
    },
    Row {
        what: "leaf keyUsage only keyCertSign",
        leaf: "ku_certsign",
        intermediates: &["inter"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_INVALID_PURPOSE, 0),
    },
    Row {
        what: "leaf extendedKeyUsage only clientAuth",
        leaf: "eku_client",
        intermediates: &["inter"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_INVALID_PURPOSE, 0),
    },
    Row {
        what: "intermediate keyUsage without keyCertSign",
        leaf: "under_noku",
        intermediates: &["inter_noku"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_INVALID_CA, 1),
    },
    Row {
        what: "intermediate with basicConstraints CA:FALSE",
        leaf: "under_nonca",
        intermediates: &["inter_nonca"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_INVALID_CA, 1),
    },
    Row {
        what: "path length exceeded",
        leaf: "under_pathlen",
        intermediates: &["inter_below_pathlen", "inter_pathlen0"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_PATH_LENGTH_EXCEEDED, 2),
    },
    Row {
        what: "name constraints violated",
        leaf: "under_nc",
        intermediates: &["inter_nc"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_PERMITTED_VIOLATION, 0),
    },
    Row {
        what: "expired leaf under an intermediate without keyCertSign",
        leaf: "expired_under_noku",
        intermediates: &["inter_noku"],
        host: HOST,
        trust: "root",
        // OpenSSL checks extensions before validity.
        expected: (X509_V_ERR_INVALID_CA, 1),
    },
    Row {
        what: "trusted self-signed leaf for clients only",
        leaf: "selfsigned_client",
        intermediates: &[],
        host: HOST,
        trust: "selfsigned_client",
        expected: (X509_V_ERR_INVALID_PURPOSE, 0),
    },
    Row {
        what: "self-signed leaf",
        leaf: "selfsigned",
        intermediates: &[],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0),
    },
];

/// A directory of certificates made with `openssl`, removed when dropped.
struct Pki {
    dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Pki {
    fn generate() -> Self {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ferrossl-chain-table-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.issue("root", None, CA, &["-days", "3650"]);
        pki.issue("inter", Some("root"), CA, &["-days", "3650"]);
        pki.issue("good", Some("inter"), LEAF, &["-days", "365"]);
        pki.issue_window("expired", "inter", "20200101000000Z", "20210101000000Z");
        pki.issue_window("future", "inter", "20400101000000Z", "20410101000000Z");
        let leaf_with = |ku: &str, eku: &str| {
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,{ku}\nextendedKeyUsage={eku}\nsubjectAltName=DNS:{HOST}")
        };
        let days = ["-days", "365"];
        pki.issue(
            "ku_certsign",
            Some("inter"),
            &leaf_with("keyCertSign", "serverAuth"),
            &days,
        );
        pki.issue(
            "ku_encipher",
            Some("inter"),
            &leaf_with("keyEncipherment", "serverAuth"),
            &days,
        );
        pki.issue(
            "eku_client",
            Some("inter"),
            &leaf_with("digitalSignature", "clientAuth"),
            &days,
        );
        let noku = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature";
        pki.issue("inter_noku", Some("root"), noku, &days);
        pki.issue("under_noku", Some("inter_noku"), LEAF, &days);
        let nonca = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign";
        pki.issue("inter_nonca", Some("root"), nonca, &days);
        pki.issue("under_nonca", Some("inter_nonca"), LEAF, &days);
        let pathlen0 = "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign";
        pki.issue("inter_pathlen0", Some("root"), pathlen0, &days);
        pki.issue("inter_below_pathlen", Some("inter_pathlen0"), CA, &days);
        pki.issue("under_pathlen", Some("inter_below_pathlen"), LEAF, &days);
        let nc = format!("{CA}\nnameConstraints=critical,permitted;DNS:allowed.test");
        pki.issue("inter_nc", Some("root"), &nc, &days);
        pki.issue("under_nc", Some("inter_nc"), LEAF, &days);
        pki.issue("selfsigned", None, LEAF, &days);
        pki.issue(
            "selfsigned_client",
            None,
            &leaf_with("digitalSignature", "clientAuth"),
            &days,
        );
        pki.issue_window(
            "expired_under_noku",
            "inter_noku",
            "20200101000000Z",
            "20210101000000Z",
        );
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn openssl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A P-256 key and a signing request for `name`, with `ext` written beside them.
    fn request(&self, name: &str, ext: &str) {
        let key = format!("{name}.key");
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ]);
        let subject = format!("/CN={name}");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &subject,
            "-out",
            &format!("{name}.csr"),
        ]);
        std::fs::write(self.path(&format!("{name}.ext")), format!("{ext}\n")).unwrap();
    }

    /// Issues `name.pem` by `issuer` (self-signed without one) with the extensions `ext`.
    fn issue(&self, name: &str, issuer: Option<&str>, ext: &str, validity: &[&str]) {
        self.request(name, ext);
        let (csr, extfile, out) = (
            format!("{name}.csr"),
            format!("{name}.ext"),
            format!("{name}.pem"),
        );
        let mut args = vec![
            "x509", "-req", "-in", &csr, "-extfile", &extfile, "-out", &out,
        ];
        let (ca, ca_key, own_key);
        match issuer {
            Some(issuer) => {
                (ca, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
                args.extend(["-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial"]);
            }
            None => {
                own_key = format!("{name}.key");
                args.extend(["-signkey", &own_key]);
            }
        }
        args.extend(validity);
        self.openssl(&args);
    }

    /// Issues a leaf by `issuer` valid from `start` to `end` (`openssl ca`, since `x509 -req`
    /// of OpenSSL 3.0 only counts days from now).
    fn issue_window(&self, name: &str, issuer: &str, start: &str, end: &str) {
        self.request(name, LEAF);
        let conf = "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\n\
                    default_md=sha256\npolicy=p\nserial=serial\nunique_subject=no\n\
                    [p]\ncommonName=supplied\n";
        std::fs::write(self.path("ca.cnf"), conf).unwrap();
        std::fs::write(self.path("index.txt"), "").unwrap();
        std::fs::write(self.path("serial"), "1000\n").unwrap();
        let (ca, ca_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        let (csr, extfile, out) = (
            format!("{name}.csr"),
            format!("{name}.ext"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &ca,
            "-keyfile",
            &ca_key,
            "-in",
            &csr,
            "-out",
            &out,
            "-startdate",
            start,
            "-enddate",
            end,
            "-extfile",
            &extfile,
            "-notext",
        ]);
    }

    /// The row's intermediates in one PEM file, when it has any.
    fn intermediates_file(&self, row: &Row) -> Option<PathBuf> {
        let mut pem = Vec::new();
        for inter in row.intermediates {
            pem.extend(std::fs::read(self.path(&format!("{inter}.pem"))).unwrap());
        }
        let path = self.path(&format!("{}-intermediates.pem", row.what.replace(' ', "_")));
        std::fs::write(&path, pem).unwrap();
        (!row.intermediates.is_empty()).then_some(path)
    }

    /// The leaf followed by the intermediates, as a server presents them.
    fn chain_file(&self, row: &Row) -> PathBuf {
        let mut pem = std::fs::read(self.path(&format!("{}.pem", row.leaf))).unwrap();
        if let Some(inter) = self.intermediates_file(row) {
            pem.extend(std::fs::read(inter).unwrap());
        }
        let path = self.path(&format!("{}-chain.pem", row.what.replace(' ', "_")));
        std::fs::write(&path, pem).unwrap();
        path
    }
}

/// `openssl verify`'s first error for a row as (code, depth, text), or (0, 0, "ok").
fn openssl_verify(pki: &Pki, row: &Row) -> (i32, u32, String) {
    let untrusted = pki.intermediates_file(row);
    let trust = format!("{}.pem", row.trust);
    let out = Command::new("openssl")
        .current_dir(&pki.dir)
        .args([
            "verify",
            "-CAfile",
            &trust,
            "-purpose",
            "sslserver",
            "-verify_hostname",
            row.host,
        ])
        .args(
            untrusted
                .iter()
                .flat_map(|u| ["-untrusted".as_ref(), u.as_os_str()]),
        )
        .arg(format!("{}.pem", row.leaf))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    first_error(&text).unwrap_or_else(|| {
        assert!(text.contains(": OK"), "{}: {text}", row.what);
        (X509_V_OK, 0, "ok".into())
    })
}

/// Reads "error N at D depth lookup: TEXT" (openssl verify and s_client print it so).
fn first_error(text: &str) -> Option<(i32, u32, String)> {
    let line = text.lines().find(|l| l.contains(" depth lookup:"))?;
    let rest = &line[line.find("error ")? + 6..];
    let mut words = rest.split_whitespace();
    let code = words.next()?.parse().ok()?;
    let depth = words.nth(1)?.parse().ok()?;
    Some((
        code,
        depth,
        line[line.find("lookup:")? + 7..].trim().to_string(),
    ))
}

/// The first (depth, errnum) with an error that the verify callback was shown, when a ferrossl
/// client of `method` verifies the row's chain; and the connection's verify result.
fn callback_verdict(pki: &Pki, row: &Row, method: Method) -> (Option<(i32, u32)>, i32) {
    let server_ctx = Context::new(method);
    server_ctx
        .use_certificate_chain_file(pki.chain_file(row))
        .unwrap();
    server_ctx
        .use_privatekey_file(pki.path(&format!("{}.key", row.leaf)), FILETYPE_PEM)
        .unwrap();
    let client_ctx = Context::new(method);
    client_ctx
        .load_verify_locations(Some(pki.path(&format!("{}.pem", row.trust)).as_ref()), None)
        .unwrap();
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    client_ctx.set_verify(
        VERIFY_PEER,
        Some(Arc::new(move |p: &VerifyParams<'_>| {
            let mut first = record.lock().unwrap();
            if p.errnum != X509_V_OK && first.is_none() {
                *first = Some((p.errnum, p.depth));
            }
            p.ok
        })),
    );
    let mut client = Connection::new(&client_ctx).unwrap();
    client.set_connect_state().unwrap();
    client.set1_host(row.host).unwrap();
    let mut server = Connection::new(&server_ctx).unwrap();
    server.set_accept_state().unwrap();
    for _ in 0..20 {
        let c = client.do_handshake();
        move_bytes(&mut client, &mut server);
        let s = server.do_handshake();
        move_bytes(&mut server, &mut client);
        if c.is_ok() && s.is_ok() || is_fatal(&c) {
            break;
        }
    }
    let first = *seen.lock().unwrap();
    (first, client.get_verify_result())
}

fn is_fatal(r: &Result<(), Error>) -> bool {
    matches!(r, Err(e) if !matches!(e, Error::WantRead | Error::WantWrite))
}

fn move_bytes(from: &mut Connection, to: &mut Connection) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.bio_read_into(&mut buf) {
        to.bio_write(&buf[..n]).unwrap();
    }
}

/// Serves the row's chain with `openssl s_server` to `ferrossl s_client` and `openssl
/// s_client`, both with -verify_return_error (so that each reports the first error, which is
/// what the table holds); returns what each printed.
fn s_client_outputs(pki: &Pki, row: &Row) -> (String, String) {
    let port = peer::free_tcp_port();
    let (leaf, key) = (format!("{}.pem", row.leaf), format!("{}.key", row.leaf));
    let accept = format!("127.0.0.1:{port}");
    let chain = pki.intermediates_file(row);
    // Three accepts: the probe that waits for the port, then the two clients.
    let mut server = PeerProcess::spawn(
        Command::new("openssl")
            .current_dir(&pki.dir)
            .args(["s_server", "-accept", &accept, "-cert", &leaf, "-key", &key])
            .args(
                chain
                    .iter()
                    .flat_map(|c| ["-cert_chain".as_ref(), c.as_os_str()]),
            )
            .args(["-naccept", "3", "-quiet"]),
    )
    .unwrap();
    server.wait_for_tcp_port(port, TIMEOUT).unwrap();
    let connect = format!("127.0.0.1:{port}");
    let root = pki
        .path(&format!("{}.pem", row.trust))
        .display()
        .to_string();
    let args = [
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        &root,
        "-verify_hostname",
        row.host,
        "-verify_return_error",
    ];
    let ours = client_output(Command::new(FERROSSL).args(args));
    let theirs = client_output(Command::new("openssl").args(args));
    server.kill();
    (ours, theirs)
}

/// Runs an s_client with no input, so that it ends after the handshake; returns its output.
fn client_output(cmd: &mut Command) -> String {
    let mut client = PeerProcess::spawn(cmd).unwrap();
    client.close_stdin();
    let _ = client.wait_with_timeout(TIMEOUT);
    client.kill();
    client.stdout() + &client.stderr()
}

#[test]
fn every_defect_gets_openssls_code_everywhere() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = Pki::generate();
    for row in ROWS {
        let (code, depth, text) = openssl_verify(&pki, row);
        assert_eq!(
            (code, depth),
            row.expected,
            "openssl verify, {}: {text}",
            row.what
        );
        assert_eq!(
            verify_error_string(code),
            text,
            "{}: OpenSSL's text",
            row.what
        );
        for method in [Method::Tls, Method::Dtls] {
            let (first, result) = callback_verdict(&pki, row, method);
            let want = (code != X509_V_OK).then_some((code, depth));
            assert_eq!(
                first, want,
                "{} over {method:?}: the callback's first error",
                row.what
            );
            assert_eq!(
                result, code,
                "{} over {method:?}: get_verify_result",
                row.what
            );
        }
        let (ours, theirs) = s_client_outputs(&pki, row);
        let verdict = format!("Verify return code: {code} ({text})");
        assert!(
            theirs.contains(&verdict),
            "{}: openssl s_client: {theirs}",
            row.what
        );
        let ours_expected = match code {
            X509_V_OK => verdict,
            _ => format!("certificate verify failed: {text} (X509_V_ERR {code}) at depth {depth}"),
        };
        assert!(
            ours.contains(&ours_expected),
            "{}: ferrossl s_client: {ours}",
            row.what
        );
    }
}

/// A leaf whose keyUsage allows only keyEncipherment passes OpenSSL's SSL server purpose (it
/// accepts any of digitalSignature, keyEncipherment, keyAgreement), but no handshake ferrossl
/// runs can use it: every key exchange is authenticated by a signature with the leaf's key
/// (RFC 8446 §4.4.2.2, RFC 8422 §5.3). Ferrossl refuses it with unsuitable purpose.
#[test]
fn a_leaf_that_may_not_sign_is_refused_in_a_handshake() {
    if !peer::require_tool("openssl") {
        return;
    }
    let pki = Pki::generate();
    let row = Row {
        what: "leaf keyUsage only keyEncipherment",
        leaf: "ku_encipher",
        intermediates: &["inter"],
        host: HOST,
        trust: "root",
        expected: (X509_V_ERR_INVALID_PURPOSE, 0),
    };
    assert_eq!(
        openssl_verify(&pki, &row).0,
        X509_V_OK,
        "OpenSSL's purpose check accepts it"
    );
    for method in [Method::Tls, Method::Dtls] {
        let (first, result) = callback_verdict(&pki, &row, method);
        assert_eq!(first, Some(row.expected), "{method:?}");
        assert_eq!(result, X509_V_ERR_INVALID_PURPOSE, "{method:?}");
    }
}
