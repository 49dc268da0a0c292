//! DTLS 1.2 with GnuTLS's `gnutls-cli --udp` as the client of a ferrossl server on 127.0.0.1:
//! the cookie exchange, use_srtp and the SRTP keying material GnuTLS prints.

mod dtls_common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dtls_common::*;
use ferrossl::config::Role;
use ferrossl::constants::*;
use ferrossl::dtls::{DtlsEngine, DtlsParams, HmacCookies, SrtpProfile};
use ferrossl_testkit::peer::{free_udp_port, gnutls_cli, require_tool, PeerProcess};
use ferrossl_testkit::pki::TestPki;

const WAIT: Duration = Duration::from_secs(15);

fn hex_after<'a>(output: &'a str, marker: &str) -> Option<&'a str> {
    output.lines().find_map(|l| {
        let at = l.find(marker)?;
        Some(l[at + marker.len()..].trim())
    })
}

#[test]
fn gnutls_client_to_ferrossl_server() {
    if !require_tool("gnutls-cli") {
        return;
    }
    let pki = TestPki::generate();
    for (id, mode) in [
        (&pki.server_ecdsa, VERIFY_NONE),
        (&pki.server_rsa, VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT),
    ] {
        let port = free_udp_port();
        let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let mut args: Vec<String> = [
            "--udp",
            "--priority=NORMAL:-VERS-ALL:+VERS-DTLS1.2",
            "--srtp-profiles=SRTP_AES128_CM_HMAC_SHA1_80",
            "--keymatexport=EXTRACTOR-dtls_srtp",
            "--keymatexportsize=60",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--x509cafile={}", pki.ca_path().display()));
        if mode != VERIFY_NONE {
            args.push(format!(
                "--x509certfile={}",
                pki.client_ecdsa.chain_path.display()
            ));
            args.push(format!(
                "--x509keyfile={}",
                pki.client_ecdsa.key_path.display()
            ));
        }
        let mut client = PeerProcess::spawn(&mut gnutls_cli(port, &args)).unwrap();

        socket.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, peer) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("{e}\n{}", client.stderr()))
            .unwrap();
        socket.connect(peer).unwrap();
        let params = DtlsParams {
            srtp_profiles: vec![SrtpProfile::Aes128CmSha1_80],
            cookies: Some(Arc::new(HmacCookies::new(Duration::from_secs(60)))),
            peer_addr: Some(peer),
            ..Default::default()
        };
        let config = if mode == VERIFY_NONE {
            server_config(id)
        } else {
            server_config_verifying(id, &pki, mode)
        };
        let mut engine = DtlsEngine::new(config, Role::Server, params, Instant::now()).unwrap();
        engine.handle_datagram(&buf[..n], Instant::now()).unwrap();
        let start = Instant::now();
        let mut got = Vec::new();
        let mut sent = false;
        while !got.ends_with(b"hello from gnutls\n") {
            assert!(
                start.elapsed() < WAIT,
                "stuck: established {}, error {:?}\n{}\n{}",
                engine.is_established(),
                engine.error(),
                client.stdout(),
                client.stderr()
            );
            while let Some(d) = engine.poll_datagram() {
                socket.send(&d).unwrap();
            }
            if engine.is_established() && !sent {
                // The handshake is done; gnutls-cli sends its stdin line by line.
                client.write_stdin(b"hello from gnutls\n").unwrap();
                sent = true;
            }
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            if let Ok(n) = socket.recv(&mut buf) {
                engine.handle_datagram(&buf[..n], Instant::now()).unwrap();
            }
            engine.handle_timeout(Instant::now()).unwrap();
            while let Some(d) = engine.recv() {
                got.extend(d);
            }
        }
        assert_eq!(
            engine.selected_srtp_profile(),
            Some(SrtpProfile::Aes128CmSha1_80)
        );
        if mode != VERIFY_NONE {
            assert_eq!(engine.verify_outcome().unwrap().result, X509_V_OK);
            assert_eq!(
                engine.peer_certificates()[0].subject().get("CN"),
                Some("ferrossl test client")
            );
        }
        let ours = engine
            .export_keying_material(b"EXTRACTOR-dtls_srtp", 60, None)
            .unwrap();
        let ours_hex: String = ours.iter().map(|b| format!("{b:02x}")).collect();
        // gnutls-cli's output may lag behind the handshake: wait for the line.
        let _ = client.wait_for_output("Key material: ", Duration::from_secs(10));
        let out = client.stdout();
        let theirs = hex_after(&out, "Key material: ")
            .unwrap_or_else(|| panic!("no key material printed:\n{out}"));
        assert_eq!(theirs.to_ascii_lowercase(), ours_hex);
        engine.send(b"hello from ferrossl\n").unwrap();
        while let Some(d) = engine.poll_datagram() {
            socket.send(&d).unwrap();
        }
        client.wait_for_output("hello from ferrossl", WAIT).unwrap();
        engine.close().unwrap();
        while let Some(d) = engine.poll_datagram() {
            socket.send(&d).unwrap();
        }
        client.wait_with_timeout(WAIT).unwrap();
    }
}
