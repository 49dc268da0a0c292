//! `ferrossl s_server`: a TLS server modelled on `openssl s_server`.

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrossl::constants::*;
use ferrossl::context::AlpnSelection;
use ferrossl::{Connection, Context, Error, Method};
use socket2::{Domain, Socket, Type};

use crate::args::{Args, Spec};
use crate::identity::{
    alpn_list, describe, export_keying_material, handshake, handshake_deadline, key_log,
    pin_version, wants_dtls, Throwaway,
};

pub const SPEC: Spec = Spec {
    options: &[
        "accept",
        "cert",
        "key",
        "CAfile",
        "Verify",
        "verify",
        "alpn",
        "naccept",
        "keylogfile",
        "use_srtp",
        "cid",
        "keymatexport",
        "keymatexportlen",
        "cipher",
        "ciphersuites",
        "handshake_timeout",
        "idle_timeout",
        "max_conns",
    ],
    switches: &[
        "tls1_2",
        "tls1_3",
        "dtls",
        "dtls1_2",
        "dtls1_3",
        "www",
        "quiet",
        "serverpref",
    ],
};

pub const USAGE: &str =
    "usage: ferrossl s_server -accept [HOST:]PORT [-cert F] [-key F] [-CAfile F]
       [-Verify N | -verify N] [-alpn a,b] [-tls1_2 | -tls1_3] [-www] [-quiet] [-naccept N]
       [-keylogfile F] [-keymatexport LABEL [-keymatexportlen N]]
       [-cipher LIST] [-ciphersuites LIST] [-serverpref]
       [-handshake_timeout SECS] [-idle_timeout SECS] [-max_conns N]
       [-dtls | -dtls1_2 | -dtls1_3 [-use_srtp PROFILES] [-cid N]]
  HOST defaults to 127.0.0.1. -cipher (TLS 1.2) and -ciphersuites (TLS 1.3) take OpenSSL's
  cipher strings; with -serverpref the server's order decides, not the client's.
  Clients are served at once, each on its own thread: a handshake must finish within
  -handshake_timeout (10 s), a connection silent for -idle_timeout (300 s) is closed, and
  beyond -max_conns (256) open connections a new one is closed on arrival. Without -cert a
  throwaway certificate is made and its SHA-256 fingerprint printed. -Verify requires a
  client certificate, -verify asks for one.
  -www answers HTTP GET with a status page; otherwise data is piped to stdout and stdin lines
  go to the client. With -dtls or -dtls1_3 (DTLS 1.2 or 1.3 over UDP) the server takes many clients on one
  socket and echoes every datagram back (and prints it); -cid N asks each client for a
  random connection ID of N bytes (RFC 9146; 0: none, while using the client's).";

fn context(args: &Args) -> Result<Context, String> {
    let ctx = Context::new(Method::TlsServer);
    let text = |e: Error| e.to_string();
    match (args.value("cert"), args.value("key")) {
        (Some(cert), key) => {
            ctx.use_certificate_chain_file(cert).map_err(text)?;
            ctx.use_privatekey_file(key.unwrap_or(cert), FILETYPE_PEM)
                .map_err(text)?;
            ctx.check_privatekey().map_err(text)?;
        }
        (None, Some(_)) => return Err("-key needs -cert".into()),
        (None, None) => {
            let t = Throwaway::generate()?;
            eprintln!(
                "Using a throwaway certificate for localhost, SHA-256 fingerprint {}",
                t.cert.digest("sha256").map_err(text)?
            );
            ctx.use_certificate(t.cert);
            ctx.add_extra_chain_cert(t.ca);
            ctx.use_privatekey(t.key);
        }
    }
    if let Some(ca) = args.value("CAfile") {
        ctx.load_verify_locations(Some(ca.as_ref()), None)
            .map_err(text)?;
    }
    if let Some(depth) = args.number::<u32>("Verify")? {
        ctx.set_verify(VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT, None);
        ctx.set_verify_depth(depth);
    } else if let Some(depth) = args.number::<u32>("verify")? {
        ctx.set_verify(VERIFY_PEER, None);
        ctx.set_verify_depth(depth);
    }
    if let Some(list) = args.value("alpn") {
        // Server preference, as OpenSSL's s_server picks; a client offering none of ours
        // gets the fatal no_application_protocol alert (RFC 7301 §3.2), as from s_server.
        let ours = alpn_list(list);
        ctx.set_alpn_select_callback(Arc::new(move |hello| {
            Ok(ours
                .iter()
                .find(|p| hello.alpn_offered().contains(p))
                .map_or(AlpnSelection::Abort, |p| AlpnSelection::Select(p.clone())))
        }));
    }
    if let Some(list) = args.value("cipher") {
        ctx.set_cipher_list(list).map_err(text)?;
    }
    if let Some(list) = args.value("ciphersuites") {
        ctx.set_ciphersuites(list).map_err(text)?;
    }
    if args.has("serverpref") {
        ctx.set_options(OP_CIPHER_SERVER_PREFERENCE);
    }
    pin_version(&ctx, args.has("tls1_2"), args.has("tls1_3"))?;
    key_log(&ctx, args.value("keylogfile"))?;
    Ok(ctx)
}

fn listen_address(accept: &str) -> String {
    if accept.contains(':') {
        accept.to_string()
    } else {
        format!("127.0.0.1:{accept}")
    }
}

/// The accept queue asked for (the kernel caps it at net.core.somaxconn). std's
/// `TcpListener::bind` asks for 128, fewer than -max_conns: a burst of connections (a flood
/// of half-open ones) overflowed it while the accept loop waited for a core, and each SYN
/// dropped then costs the client behind it a second, its first retransmission.
const ACCEPT_QUEUE: i32 = 4096;

/// A listener on the first of `address`'s addresses that binds, as `TcpListener::bind`
/// makes it (SO_REUSEADDR), but with [`ACCEPT_QUEUE`].
fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last = std::io::Error::other("no address");
    for addr in address.to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(ACCEPT_QUEUE))
        {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// What keeps one client from holding the server: deadlines and a bound on connections.
#[derive(Clone, Copy)]
struct Limits {
    handshake: Duration,
    idle: Duration,
    max_conns: usize,
}

impl Limits {
    fn from_args(args: &Args) -> Result<Self, String> {
        let max_conns = args.number::<usize>("max_conns")?.unwrap_or(256);
        if max_conns == 0 {
            return Err("-max_conns must be at least 1".into());
        }
        Ok(Self {
            handshake: handshake_deadline(args)?,
            idle: args.seconds("idle_timeout", 300.0)?,
            max_conns,
        })
    }
}

pub fn run(argv: &[String]) -> Result<(), String> {
    let args = Args::parse(argv, &SPEC)?;
    let accept = args.value("accept").ok_or("-accept is required")?;
    if wants_dtls(&args)? {
        return crate::dtls::server(&args, &listen_address(accept));
    }
    let ctx = context(&args)?;
    let limits = Limits::from_args(&args)?;
    let listener =
        listen(&listen_address(accept)).map_err(|e| format!("cannot listen on {accept}: {e}"))?;
    let naccept = args.number::<u64>("naccept")?;
    println!("ACCEPT");
    let _ = std::io::stdout().flush();
    let lines = Arc::new(Mutex::new(stdin_lines()));
    let args = Arc::new(args);
    let open = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    let mut served = 0;
    while naccept.is_none_or(|n| served < n) {
        let (stream, peer) = listener
            .accept()
            .map_err(|e| format!("accept failed: {e}"))?;
        served += 1;
        if open.load(Ordering::Acquire) >= limits.max_conns {
            eprintln!(
                "connection from {peer}: closed, {} connections are open (-max_conns)",
                limits.max_conns
            );
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let (ctx, args, lines, open) = (ctx.clone(), args.clone(), lines.clone(), open.clone());
        workers.push(std::thread::spawn(move || {
            if let Err(e) = serve(&ctx, stream, &args, &lines, limits) {
                eprintln!("connection from {peer}: {e}");
            }
            open.fetch_sub(1, Ordering::AcqRel);
        }));
        workers.retain(|w| !w.is_finished());
    }
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// Stdin lines, read by one thread for the server's whole life.
fn stdin_lines() -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().split(b'\n') {
            let Ok(mut line) = line else { break };
            line.push(b'\n');
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn serve(
    ctx: &Context,
    stream: TcpStream,
    args: &Args,
    lines: &Mutex<Receiver<Vec<u8>>>,
    limits: Limits,
) -> Result<(), String> {
    let text = |e: Error| e.to_string();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut conn = Connection::with_stream(ctx, stream).map_err(text)?;
    conn.set_accept_state().map_err(text)?;
    handshake(&mut conn, limits.handshake)?;
    if !args.has("quiet") {
        eprintln!("{}", describe(&conn));
    }
    export_keying_material(&conn, args)?;
    if args.has("www") {
        return status_page(&mut conn, limits.handshake);
    }
    let mut buf = [0u8; 16384];
    let mut heard = Instant::now();
    loop {
        // Stdin lines go to whichever client takes them first.
        let line = lines.lock().map_or(None, |l| l.try_recv().ok());
        if let Some(line) = line {
            conn.sendall(&line).map_err(text)?;
            continue;
        }
        match conn.recv(&mut buf) {
            Ok(n) => {
                heard = Instant::now();
                let mut out = std::io::stdout();
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
            Err(Error::WantRead) if heard.elapsed() < limits.idle => {}
            Err(Error::WantRead) => {
                let _ = conn.shutdown();
                return Err(format!(
                    "closed after {} s without data (-idle_timeout)",
                    limits.idle.as_secs_f64()
                ));
            }
            Err(Error::ZeroReturn) => {
                eprintln!("DONE");
                let _ = conn.shutdown();
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Answers one HTTP request (which must come within `deadline`) with a page describing the
/// session, then closes.
fn status_page(conn: &mut Connection, deadline: Duration) -> Result<(), String> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && !request.windows(2).any(|w| w == b"\n\n")
    {
        match conn.recv(&mut buf) {
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(Error::WantRead) if started.elapsed() < deadline => {}
            Err(Error::WantRead) => return Err("no request in time".into()),
            Err(e) => return Err(format!("no request: {e}")),
        }
        // A request line and headers fit in far less; a client streaming more is not served.
        if request.len() > 64 * 1024 {
            return Err("request too large".into());
        }
    }
    let body = format!(
        "<html><body><pre>\nferrossl s_server\n{}\n</pre></body></html>\n",
        describe(conn)
    );
    let response = format!(
        "HTTP/1.0 200 ok\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.sendall(response.as_bytes())
        .map_err(|e| e.to_string())?;
    let _ = conn.shutdown();
    Ok(())
}
