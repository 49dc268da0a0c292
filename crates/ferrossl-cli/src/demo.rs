//! `ferrossl demo`: a server and a client in one process on 127.0.0.1, one TLS 1.3 and one
//! TLS 1.2 session, each verified (throwaway CA, host name checked), data both ways and a
//! close_notify both ways; prints a short report.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error, Method};

use crate::identity::Throwaway;

const TIMEOUT: Duration = Duration::from_secs(10);

pub fn run() -> Result<(), String> {
    let id = Throwaway::generate()?;
    let server_ctx = Context::new(Method::TlsServer);
    server_ctx.use_certificate(id.cert.clone());
    server_ctx.use_privatekey(id.key.clone());
    let client_ctx = Context::new(Method::TlsClient);
    client_ctx
        .get_cert_store()
        .add_cert(id.ca.clone())
        .map_err(|e| e.to_string())?;
    client_ctx.set_verify(VERIFY_PEER, None);
    client_ctx.set_check_hostname(true);

    println!("ferrossl demo: TLS over TCP and DTLS over UDP on 127.0.0.1, server certificate from a throwaway CA");
    for (version, name) in [(TLS1_3_VERSION, "TLS 1.3"), (TLS1_2_VERSION, "TLS 1.2")] {
        client_ctx
            .set_min_proto_version(version)
            .map_err(|e| e.to_string())?;
        client_ctx
            .set_max_proto_version(version)
            .map_err(|e| e.to_string())?;
        let report = exchange(&server_ctx, &client_ctx).map_err(|e| format!("{name}: {e}"))?;
        println!("\n{name}\n{report}");
    }
    let report = dtls_exchange(&id).map_err(|e| format!("DTLS 1.2: {e}"))?;
    println!("\nDTLS 1.2 over UDP (GIO-style DtlsConnection)\n{report}");
    println!("\nall three sessions verified, exchanged data and closed cleanly");
    Ok(())
}

/// One DTLS association over two UDP sockets on 127.0.0.1: the server echoes a datagram.
fn dtls_exchange(id: &Throwaway) -> Result<String, String> {
    use ferrossl::gio::{ChannelBindingType, DtlsConnection};
    use ferrossl::transport::{Timeout, UdpDatagrams};
    let text = |e: ferrossl::gio::GioError| e.to_string();
    let (a, b) = (
        std::net::UdpSocket::bind("127.0.0.1:0"),
        std::net::UdpSocket::bind("127.0.0.1:0"),
    );
    let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
    a.connect(b.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    b.connect(a.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (cert, key) = (id.cert.clone(), id.key.clone());
    let server = std::thread::spawn(move || -> Result<(), ferrossl::gio::GioError> {
        let mut s = DtlsConnection::server(UdpDatagrams::connected(b)?, cert, key);
        let d = s.receive(Timeout::after(TIMEOUT), None)?;
        s.send(&[&b"echo: "[..], &d].concat(), None)?;
        let _ = s.receive(Timeout::after(TIMEOUT), None)?;
        s.close(None)
    });
    let store = ferrossl::X509Store::new();
    store.add_cert(id.ca.clone()).map_err(|e| e.to_string())?;
    let mut c = DtlsConnection::client(
        UdpDatagrams::connected(a).map_err(|e| e.to_string())?,
        Some("localhost"),
    );
    c.set_database(Some(&store)).map_err(text)?;
    let start = Instant::now();
    c.handshake(None).map_err(text)?;
    let handshake = start.elapsed();
    c.send(b"hello over DTLS", None).map_err(text)?;
    let reply = c.receive(Timeout::after(TIMEOUT), None).map_err(text)?;
    let binding = c
        .get_channel_binding_data(ChannelBindingType::Exporter)
        .map_err(text)?;
    let report = format!(
        "  protocol       {:?}\n  cipher         {}\n  peer subject   {}\n  handshake      {:.2} ms\n  client read    {:?}\n  tls-exporter   {} bytes of channel binding",
        c.get_protocol_version(),
        c.get_ciphersuite_name().unwrap_or("?"),
        c.get_peer_certificate().map(|p| p.subject().to_string()).unwrap_or_default(),
        handshake.as_secs_f64() * 1000.0,
        String::from_utf8_lossy(&reply),
        binding.len(),
    );
    c.close(None).map_err(text)?;
    server
        .join()
        .map_err(|_| "server thread panicked".to_string())?
        .map_err(text)?;
    Ok(report)
}

/// One session: the server echoes a greeting; both ends close with close_notify.
fn exchange(server_ctx: &Context, client_ctx: &Context) -> Result<String, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let server_ctx = server_ctx.clone();
    let server = std::thread::spawn(move || -> Result<usize, Error> {
        let (stream, _) = listener.accept().map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        let mut conn = Connection::with_stream(&server_ctx, stream)?;
        conn.set_accept_state()?;
        let mut buf = [0u8; 1024];
        let n = conn.recv(&mut buf)?;
        let reply = [&b"echo: "[..], &buf[..n]].concat();
        conn.sendall(&reply)?;
        // Wait for the client's close_notify, then answer it.
        while !matches!(conn.recv(&mut buf), Err(Error::ZeroReturn)) {}
        conn.shutdown()?;
        Ok(n + reply.len())
    });

    let start = Instant::now();
    let stream = TcpStream::connect(addr).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut conn = Connection::with_stream(client_ctx, stream)?;
    conn.set_connect_state()?;
    conn.set_tlsext_host_name("localhost")?;
    conn.do_handshake()?;
    let handshake = start.elapsed();
    conn.sendall(b"hello from the ferrossl client")?;
    let mut buf = [0u8; 1024];
    let n = conn.recv(&mut buf)?;
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    if !conn.shutdown()? {
        conn.shutdown()?;
    }
    let bytes = server
        .join()
        .map_err(|_| Error::WrongState("server thread panicked"))??;
    Ok(format!(
        "  protocol       {}\n  cipher         {} ({} bits)\n  key exchange   {}\n  verify result  {} ({})\n  peer subject   {}\n  handshake      {:.2} ms\n  server got     {bytes} bytes in and out; client read {reply:?}\n  close_notify   sent and received by both ends",
        conn.get_protocol_version_name(),
        conn.get_cipher_name().unwrap_or("?"),
        conn.get_cipher_bits().unwrap_or(0),
        conn.get_group_name().unwrap_or_default(),
        conn.get_verify_result(),
        ferrossl::verify::verify_error_string(conn.get_verify_result()),
        conn.get_peer_certificate().map(|c| c.subject().to_string()).unwrap_or_default(),
        handshake.as_secs_f64() * 1000.0,
    ))
}

fn io(e: std::io::Error) -> Error {
    Error::SysCall {
        errno: e.raw_os_error().unwrap_or(-1),
        message: e.to_string(),
    }
}
