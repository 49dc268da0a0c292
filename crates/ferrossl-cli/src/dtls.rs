//! `s_server -dtls` and `s_client -dtls`: DTLS 1.2 over UDP through the GIO-style API, the
//! server being the many-client [`DtlsServer`] (it echoes every datagram by default).

use std::io::{Read, Write};
use std::net::{ToSocketAddrs, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferrossl::constants::{DTLS1_2_VERSION, DTLS1_3_VERSION};
use ferrossl::gio::{
    AuthenticationMode, DtlsConnection, DtlsServer, GioError, TlsCertificateFlags,
    TlsProtocolVersion,
};
use ferrossl::transport::{DatagramBased, Timeout, UdpDatagrams};
use ferrossl::X509Store;

use crate::args::Args;
use crate::identity::{print_keying_material, Throwaway};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

fn text(e: GioError) -> String {
    e.to_string()
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn database(args: &Args) -> Result<Option<X509Store>, String> {
    let Some(ca) = args.value("CAfile") else {
        return Ok(None);
    };
    let store = X509Store::new();
    store
        .load_file(ca.as_ref())
        .map_err(|e| format!("cannot load {ca}: {e}"))?;
    Ok(Some(store))
}

/// The DTLS version bounds: -dtls negotiates 1.3 when both ends can (a client offers 1.3
/// and 1.2 in one ClientHello), -dtls1_2 and -dtls1_3 pin one.
fn versions(args: &Args) -> (i32, i32) {
    if args.has("dtls1_3") {
        (DTLS1_3_VERSION, DTLS1_3_VERSION)
    } else if args.has("dtls1_2") {
        (DTLS1_2_VERSION, DTLS1_2_VERSION)
    } else {
        (0, DTLS1_3_VERSION)
    }
}

fn alpn(args: &Args) -> Option<Vec<&str>> {
    args.value("alpn")
        .map(|list| list.split(',').filter(|p| !p.is_empty()).collect())
}

/// Runs the server: prints ACCEPT once it listens, then echoes each association's
/// datagrams (and prints them) until it closes; with -naccept N it ends after N.
pub fn server(args: &Args, address: &str) -> Result<(), String> {
    let throwaway = Throwaway::generate()?;
    let server = DtlsServer::bind(address, throwaway.cert.clone(), throwaway.key.clone())
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    match (args.value("cert"), args.value("key")) {
        (Some(cert), key) => server
            .set_certificate_pem(&read(cert)?, &read(key.unwrap_or(cert))?)
            .map_err(text)?,
        (None, Some(_)) => return Err("-key needs -cert".into()),
        (None, None) => eprintln!(
            "Using a throwaway certificate for localhost, SHA-256 fingerprint {}",
            throwaway.cert.digest("sha256").map_err(|e| e.to_string())?
        ),
    }
    if let Some(store) = database(args)? {
        server.set_database(Some(&store)).map_err(text)?;
    }
    let mode = if args.value("Verify").is_some() {
        AuthenticationMode::Required
    } else if args.value("verify").is_some() {
        AuthenticationMode::Requested
    } else {
        AuthenticationMode::None
    };
    server.set_authentication_mode(mode).map_err(text)?;
    server
        .set_advertised_protocols(alpn(args).as_deref())
        .map_err(text)?;
    server
        .set_srtp_profiles(args.value("use_srtp"))
        .map_err(text)?;
    server
        .set_connection_id_length(args.number::<u8>("cid")?)
        .map_err(text)?;
    let (min, max) = versions(args);
    server.set_protocol_versions(min, max).map_err(text)?;
    let naccept = args.number::<u64>("naccept")?;
    println!("ACCEPT");
    let _ = std::io::stdout().flush();
    let export = keying_material_request(args)?;
    let quiet = args.has("quiet");
    let mut sessions = Vec::new();
    while naccept.is_none_or(|n| (sessions.len() as u64) < n) {
        let conn = server.accept(Timeout::Block, None).map_err(text)?;
        let export = export.clone();
        sessions.push(thread::spawn(move || {
            let peer = conn.base().peer_addr();
            if let Err(e) = echo(conn, export, quiet) {
                eprintln!("association with {peer}: {e}");
            }
        }));
    }
    for s in sessions {
        let _ = s.join();
    }
    Ok(())
}

fn echo<B: DatagramBased>(
    mut conn: DtlsConnection<B>,
    export: Option<(String, usize)>,
    quiet: bool,
) -> Result<(), GioError> {
    conn.handshake_within(Timeout::after(HANDSHAKE_TIMEOUT), None)?;
    if !quiet {
        eprintln!("{}", describe(&conn));
    }
    report_keying_material(&conn, export)?;
    loop {
        let d = conn.receive(Timeout::Block, None)?;
        if d.is_empty() {
            eprintln!("DONE");
            return conn.close(None);
        }
        let mut out = std::io::stdout();
        let _ = out.write_all(&d).and_then(|()| out.flush());
        conn.send(&d, None)?;
    }
}

/// -keymatexport LABEL [-keymatexportlen N] (20 bytes by default, as OpenSSL has it).
fn keying_material_request(args: &Args) -> Result<Option<(String, usize)>, String> {
    let len = args.number::<usize>("keymatexportlen")?.unwrap_or(20);
    Ok(args.value("keymatexport").map(|l| (l.to_string(), len)))
}

fn report_keying_material<B: DatagramBased>(
    conn: &DtlsConnection<B>,
    export: Option<(String, usize)>,
) -> Result<(), GioError> {
    if let Some((label, len)) = export {
        let material = conn.export_keying_material(label.as_bytes(), len, None)?;
        print_keying_material(&label, &material);
    }
    Ok(())
}

fn describe<B: DatagramBased>(conn: &DtlsConnection<B>) -> String {
    let flags = conn.get_peer_certificate_errors();
    let protocol = match conn.get_protocol_version() {
        TlsProtocolVersion::Dtls13 => "DTLSv1.3",
        _ => "DTLSv1.2",
    };
    format!(
        "Protocol: {}\nCipher: {}\nALPN protocol: {}\nSRTP profile: {}\nConnection ID: {}\nPeer subject: {}\nVerify return code: {}",
        protocol,
        conn.get_ciphersuite_name().unwrap_or("none"),
        conn.get_negotiated_protocol().as_deref().unwrap_or("none"),
        conn.get_selected_srtp_profile().unwrap_or("none"),
        connection_ids(conn),
        conn.get_peer_certificate()
            .map(|c| c.subject().to_string())
            .unwrap_or_else(|| "none".into()),
        if flags.is_empty() {
            "0 (ok)".to_string()
        } else {
            format!("{flags:?}")
        },
    )
}

/// "received HEX, sent HEX" for the connection IDs in use (RFC 9146), or "none".
fn connection_ids<B: DatagramBased>(conn: &DtlsConnection<B>) -> String {
    let hex = |b: &[u8]| match b {
        [] => "none".to_string(),
        _ => b.iter().map(|x| format!("{x:02x}")).collect(),
    };
    match conn.connection_ids() {
        Some((ours, peers)) if !ours.is_empty() || !peers.is_empty() => {
            format!("received {}, sent {}", hex(&ours), hex(&peers))
        }
        _ => "none".to_string(),
    }
}

/// Runs the client: each stdin line goes as one datagram; received datagrams go to stdout.
/// Without -verify_return_error a certificate problem is reported, not fatal, as with
/// `openssl s_client`.
pub fn client(args: &Args, target: &str) -> Result<(), String> {
    let peer = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} has no address"))?;
    let local = if peer.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket
        .connect(peer)
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let host = args.value("servername").map(str::to_string).or_else(|| {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.parse::<std::net::IpAddr>()
            .is_err()
            .then(|| host.to_string())
    });
    let base = UdpDatagrams::connected(socket).map_err(|e| e.to_string())?;
    let mut conn = DtlsConnection::client(base, host.as_deref());
    if let Some(store) = database(args)? {
        conn.set_database(Some(&store)).map_err(text)?;
    }
    if !args.has("verify_return_error") {
        conn.set_accept_certificate_handler(Arc::new(|_, flags: TlsCertificateFlags| {
            eprintln!("verify error: {flags:?} (going on: no -verify_return_error)");
            true
        }));
    }
    if let Some(cert) = args.value("cert") {
        conn.set_certificate_pem(&read(cert)?, &read(args.value("key").unwrap_or(cert))?)
            .map_err(text)?;
    }
    conn.set_advertised_protocols(alpn(args).as_deref())
        .map_err(text)?;
    conn.set_connection_id_length(args.number::<u8>("cid")?);
    let (min, max) = versions(args);
    conn.set_protocol_versions(min, max);
    conn.set_srtp_profiles(args.value("use_srtp"))
        .map_err(text)?;
    conn.handshake_within(Timeout::after(HANDSHAKE_TIMEOUT), None)
        .map_err(|e| format!("handshake failed: {e}"))?;
    if !args.has("quiet") {
        eprintln!("CONNECTED to {target}\n{}", describe(&conn));
    }
    report_keying_material(&conn, keying_material_request(args)?).map_err(text)?;
    let _ = std::io::stdout().flush();
    pipe(&mut conn)
}

/// Stdin lines as datagrams to the server, its datagrams to stdout; at stdin's end, sends
/// close_notify and waits a little for what is still on its way.
fn pipe<B: DatagramBased>(conn: &mut DtlsConnection<B>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
    thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = Vec::new();
        for byte in stdin.lock().bytes() {
            let Ok(b) = byte else { break };
            line.push(b);
            if b == b'\n' && tx.send(Some(std::mem::take(&mut line))).is_err() {
                return;
            }
        }
        if !line.is_empty() {
            let _ = tx.send(Some(line));
        }
        let _ = tx.send(None);
    });
    let mut closing: Option<Instant> = None;
    loop {
        while let Ok(input) = rx.try_recv() {
            match input {
                // As openssl's s_client: a line "K" updates the keys and asks the peer to
                // update its own, "k" updates ours only.
                Some(line) if line == b"K\n" || line == b"k\n" => {
                    conn.key_update(line[0] == b'K', None).map_err(text)?;
                    eprintln!("KEYUPDATE");
                }
                Some(line) => conn.send(&line, None).map_err(text)?,
                None => {
                    conn.shutdown(false, true, None).map_err(text)?;
                    closing = Some(Instant::now());
                }
            }
        }
        match conn.receive(Timeout::after(Duration::from_millis(50)), None) {
            Ok(d) if d.is_empty() => return Ok(()),
            Ok(d) => {
                let mut out = std::io::stdout();
                let _ = out.write_all(&d).and_then(|()| out.flush());
            }
            Err(GioError::TimedOut) => {}
            Err(e) => return Err(e.to_string()),
        }
        if closing.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            return Ok(());
        }
    }
}
