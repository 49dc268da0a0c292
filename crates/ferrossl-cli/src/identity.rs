//! Throwaway certificates (when no -cert is given) and the settings shared by both commands.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrossl::constants::*;
use ferrossl::{Context, PKey, X509};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and a leaf for localhost, 127.0.0.1 and ::1 issued by it, made up on the spot.
pub struct Throwaway {
    pub ca: X509,
    pub cert: X509,
    pub key: PKey,
}

impl Throwaway {
    pub fn generate() -> Result<Self, String> {
        let err = |e: rcgen::Error| format!("cannot make a throwaway certificate: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ferrossl throwaway CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
                .map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params
            .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
            .map_err(err)?;
        let text = |e: ferrossl::Error| e.to_string();
        Ok(Self {
            ca: X509::from_der(ca.der()).map_err(text)?,
            cert: X509::from_der(cert.der()).map_err(text)?,
            key: PKey::from_der(&key.serialize_der()).map_err(text)?,
        })
    }
}

/// Applies -tls1_2 / -tls1_3.
pub fn pin_version(ctx: &Context, tls1_2: bool, tls1_3: bool) -> Result<(), String> {
    let version = match (tls1_2, tls1_3) {
        (true, true) => return Err("-tls1_2 and -tls1_3 exclude each other".into()),
        (true, false) => TLS1_2_VERSION,
        (false, true) => TLS1_3_VERSION,
        (false, false) => return Ok(()),
    };
    ctx.set_min_proto_version(version)
        .map_err(|e| e.to_string())?;
    ctx.set_max_proto_version(version)
        .map_err(|e| e.to_string())
}

/// Parses "-alpn a,b" into protocol names.
pub fn alpn_list(value: &str) -> Vec<Vec<u8>> {
    value
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.as_bytes().to_vec())
        .collect()
}

/// Writes key log lines to -keylogfile, or to $SSLKEYLOGFILE when set.
pub fn key_log(ctx: &Context, file: Option<&str>) -> Result<(), String> {
    let Some(path) = file
        .map(str::to_string)
        .or_else(|| std::env::var("SSLKEYLOGFILE").ok())
    else {
        return Ok(());
    };
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open key log file {path}: {e}"))?;
    let out = Arc::new(Mutex::new(out));
    ctx.set_keylog_callback(Arc::new(move |_, line| {
        if let Ok(mut f) = out.lock() {
            let _ = f.write_all(line).and_then(|()| f.write_all(b"\n"));
        }
    }));
    Ok(())
}

/// Completes the handshake over a stream with a short read timeout, retrying when a read timed
/// out (`WantRead`).
pub fn handshake(conn: &mut ferrossl::Connection, deadline: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match conn.do_handshake() {
            Ok(()) => return Ok(()),
            // The socket's short read timeout brings us back here to look at the clock.
            Err(ferrossl::Error::WantRead) if started.elapsed() < deadline => continue,
            Err(ferrossl::Error::WantRead) => {
                return Err(format!(
                    "handshake failed: not done within {} s (-handshake_timeout)",
                    deadline.as_secs_f64()
                ))
            }
            Err(e) => return Err(format!("handshake failed: {e}")),
        }
    }
}

/// `-handshake_timeout SECS` (default 10): how long a handshake may take.
pub fn handshake_deadline(args: &crate::args::Args) -> Result<Duration, String> {
    args.seconds("handshake_timeout", 10.0)
}

/// A one-line description of a finished handshake.
pub fn describe(conn: &ferrossl::Connection) -> String {
    let alpn = conn
        .get_alpn_proto_negotiated()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .unwrap_or_else(|| "none".into());
    let peer = conn
        .get_peer_certificate()
        .map(|c| c.subject().to_string())
        .unwrap_or_else(|| "none".into());
    format!(
        "Protocol: {}\nCipher: {}\nALPN protocol: {alpn}\nPeer subject: {peer}\nVerify return code: {} ({})",
        conn.get_protocol_version_name(),
        conn.get_cipher_name().unwrap_or("none"),
        conn.get_verify_result(),
        ferrossl::verify::verify_error_string(conn.get_verify_result()),
    )
}

/// Prints exported keying material the way `openssl s_server`/`s_client -keymatexport` do.
pub fn print_keying_material(label: &str, material: &[u8]) {
    let hex: String = material.iter().map(|b| format!("{b:02X}")).collect();
    println!(
        "Keying material exporter:\n    Label: '{label}'\n    Length: {} bytes\n    Keying material: {hex}",
        material.len()
    );
    let _ = std::io::stdout().flush();
}

/// -dtls, -dtls1_2 or -dtls1_3; a TLS-only flag with them, or -use_srtp or -cid without
/// them, is an error.
pub fn wants_dtls(args: &crate::args::Args) -> Result<bool, String> {
    let dtls = args.has("dtls") || args.has("dtls1_2") || args.has("dtls1_3");
    if dtls {
        for tls_only in ["tls1_2", "tls1_3", "www"] {
            if args.has(tls_only) {
                return Err(format!("-{tls_only} does not go with -dtls"));
            }
        }
    } else {
        for dtls_only in ["use_srtp", "cid"] {
            if args.value(dtls_only).is_some() {
                return Err(format!("-{dtls_only} needs -dtls"));
            }
        }
    }
    Ok(dtls)
}

/// -keymatexport for a TLS connection.
pub fn export_keying_material(
    conn: &ferrossl::Connection,
    args: &crate::args::Args,
) -> Result<(), String> {
    let Some(label) = args.value("keymatexport") else {
        return Ok(());
    };
    let len = args.number::<usize>("keymatexportlen")?.unwrap_or(20);
    let material = conn
        .export_keying_material(label.as_bytes(), len, None)
        .map_err(|e| format!("keying material: {e}"))?;
    print_keying_material(label, &material);
    Ok(())
}
