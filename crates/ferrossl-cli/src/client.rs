//! `ferrossl s_client`: a TLS client modelled on `openssl s_client`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error, Method};

use crate::args::{Args, Spec};
use crate::identity::{
    alpn_list, describe, export_keying_material, handshake, handshake_deadline, key_log,
    pin_version, wants_dtls,
};

pub const SPEC: Spec = Spec {
    options: &[
        "connect",
        "servername",
        "CAfile",
        "CApath",
        "verify_hostname",
        "verify_ip",
        "cert",
        "key",
        "alpn",
        "keylogfile",
        "use_srtp",
        "cid",
        "keymatexport",
        "keymatexportlen",
        "handshake_timeout",
    ],
    switches: &[
        "verify_return_error",
        "tls1_2",
        "tls1_3",
        "dtls",
        "dtls1_2",
        "dtls1_3",
        "quiet",
    ],
};

pub const USAGE: &str = "usage: ferrossl s_client -connect HOST:PORT [-servername N] [-CAfile F]
       [-CApath DIR] [-verify_hostname NAME | -verify_ip IP] [-cert F -key F]
       [-verify_return_error] [-alpn a,b] [-tls1_2 | -tls1_3] [-quiet]
       [-keylogfile F] [-keymatexport LABEL [-keymatexportlen N]] [-handshake_timeout SECS]
       [-dtls | -dtls1_2 | -dtls1_3 [-use_srtp PROFILES] [-cid N]]
  Prints the session on stderr, then pipes stdin to the server and the server's data to
  stdout. -verify_return_error aborts when the server's certificate does not verify; the
  certificate must match -verify_hostname or -verify_ip when given (else the result is
  reported, as openssl's does). -CApath takes a directory of hashed CA files. With -dtls
  or -dtls1_3 (DTLS 1.2 or 1.3 over UDP) each stdin line goes as one datagram (with 1.3 a line \"K\" or \"k\"
  sends a KeyUpdate, asking the peer to update too or not); -cid N asks the server for a
  random connection ID of N bytes (RFC 9146; 0: none, while using the server's).";

fn context(args: &Args) -> Result<Context, String> {
    let text = |e: Error| e.to_string();
    let ctx = Context::new(Method::TlsClient);
    let (cafile, capath) = (args.value("CAfile"), args.value("CApath"));
    if cafile.is_some() || capath.is_some() {
        ctx.load_verify_locations(cafile.map(AsRef::as_ref), capath.map(AsRef::as_ref))
            .map_err(text)?;
    }
    let mode = if args.has("verify_return_error") {
        VERIFY_PEER
    } else {
        VERIFY_NONE
    };
    ctx.set_verify(mode, None);
    if let Some(cert) = args.value("cert") {
        ctx.use_certificate_chain_file(cert).map_err(text)?;
        ctx.use_privatekey_file(args.value("key").unwrap_or(cert), FILETYPE_PEM)
            .map_err(text)?;
    }
    if let Some(list) = args.value("alpn") {
        let protos = alpn_list(list);
        let refs: Vec<&[u8]> = protos.iter().map(Vec::as_slice).collect();
        ctx.set_alpn_protos(&refs).map_err(text)?;
    }
    pin_version(&ctx, args.has("tls1_2"), args.has("tls1_3"))?;
    key_log(&ctx, args.value("keylogfile"))?;
    Ok(ctx)
}

pub fn run(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &SPEC)?;
    let target = args.value("connect").ok_or("-connect is required")?;
    if wants_dtls(&args)? {
        return crate::dtls::client(&args, target);
    }
    let ctx = context(&args)?;
    let expected = expected_identity(&args)?;
    let deadline = handshake_deadline(&args)?;
    let stream =
        TcpStream::connect(target).map_err(|e| format!("cannot connect to {target}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut conn = Connection::with_stream(&ctx, stream).map_err(|e| e.to_string())?;
    conn.set_connect_state().map_err(|e| e.to_string())?;
    let host = args.value("servername").map(str::to_string).or_else(|| {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        host.parse::<std::net::IpAddr>()
            .is_err()
            .then(|| host.to_string())
    });
    if let Some(name) = &host {
        conn.set_tlsext_host_name(name).map_err(|e| e.to_string())?;
    }
    if let Some(expected) = &expected {
        conn.set1_host(expected).map_err(|e| e.to_string())?;
    }
    handshake(&mut conn, deadline)?;
    if !args.has("quiet") {
        eprintln!("CONNECTED to {target}\n{}", describe(&conn));
    }
    export_keying_material(&conn, &args)?;
    pipe(&mut conn)
}

/// The name (`-verify_hostname`) or address (`-verify_ip`) the server's certificate must
/// match, as openssl's `s_client` checks them.
fn expected_identity(args: &Args) -> Result<Option<String>, String> {
    match (args.value("verify_hostname"), args.value("verify_ip")) {
        (Some(_), Some(_)) => Err("-verify_hostname and -verify_ip exclude each other".into()),
        (Some(name), None) if name.parse::<std::net::IpAddr>().is_ok() => Err(format!(
            "-verify_hostname {name}: that is an address; use -verify_ip"
        )),
        (Some(name), None) => Ok(Some(name.to_string())),
        (None, Some(ip)) => ip
            .parse::<std::net::IpAddr>()
            .map(|a| Some(a.to_string()))
            .map_err(|_| format!("-verify_ip {ip}: not an IP address")),
        (None, None) => Ok(None),
    }
}

/// Copies stdin to the connection and the connection to stdout; at stdin's end, sends
/// close_notify and waits a little for the server's data and close.
fn pipe(conn: &mut Connection) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 16384];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    break;
                }
                Ok(n) => {
                    if tx.send(Some(buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut closing: Option<Instant> = None;
    let mut buf = [0u8; 16384];
    loop {
        while let Ok(input) = rx.try_recv() {
            match input {
                Some(data) => conn.sendall(&data).map_err(|e| e.to_string())?,
                None => {
                    let _ = conn.shutdown();
                    closing = Some(Instant::now());
                }
            }
        }
        match conn.recv(&mut buf) {
            Ok(n) => {
                let mut out = std::io::stdout();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
            Err(Error::WantRead) => {}
            Err(Error::ZeroReturn) => {
                let _ = conn.shutdown();
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
        if closing.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            return Ok(());
        }
    }
}
