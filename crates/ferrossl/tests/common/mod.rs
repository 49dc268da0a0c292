//! Helpers shared by the integration tests: contexts from the test PKI and memory-BIO pumping.
#![allow(dead_code)] // each test binary uses a different subset

use ferrossl::constants::*;
use ferrossl::{Connection, Context, Error, Method};
use ferrossl_testkit::pki::{Identity, TestPki};

/// A server context with `id` as its identity.
pub fn server_ctx(id: &Identity) -> Context {
    let ctx = Context::new(Method::Tls);
    ctx.use_certificate_chain_file(&id.chain_path).unwrap();
    ctx.use_privatekey_file(&id.key_path, FILETYPE_PEM).unwrap();
    ctx
}

/// A client context that verifies the server against the test root.
pub fn client_ctx(pki: &TestPki) -> Context {
    let ctx = Context::new(Method::Tls);
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER, None);
    ctx
}

/// A memory-BIO pair, client first.
pub fn pair(client: &Context, server: &Context) -> (Connection, Connection) {
    let mut c = Connection::new(client).unwrap();
    c.set_connect_state().unwrap();
    let mut s = Connection::new(server).unwrap();
    s.set_accept_state().unwrap();
    (c, s)
}

/// Moves every pending ciphertext byte from `from` to `to`; returns how many moved.
pub fn transfer(from: &mut Connection, to: &mut Connection) -> usize {
    let mut moved = 0;
    while let Ok(bytes) = from.bio_read(1 << 20) {
        moved += bytes.len();
        to.bio_write(&bytes).unwrap();
    }
    moved
}

/// Drives both handshakes to the end or to the first error, which is returned with the side
/// it happened on ("client" or "server").
pub fn handshake(c: &mut Connection, s: &mut Connection) -> Result<(), (&'static str, Error)> {
    for _ in 0..20 {
        let rc = c.do_handshake();
        transfer(c, s);
        let rs = s.do_handshake();
        transfer(s, c);
        match (rc, rs) {
            (Ok(()), Ok(())) if c.is_handshake_done() && s.is_handshake_done() => return Ok(()),
            (Err(e), _) if !e.is_want() => return Err(("client", e)),
            (_, Err(e)) if !e.is_want() => return Err(("server", e)),
            _ => {}
        }
    }
    // The last flight may still need reading on one side.
    let rc = c.do_handshake();
    match rc {
        Ok(()) if s.is_handshake_done() => Ok(()),
        Ok(()) => Err(("server", Error::WantRead)),
        Err(e) => Err(("client", e)),
    }
}

/// Sends `data` from `a` and reads it all at `b`.
pub fn send_through(a: &mut Connection, b: &mut Connection, data: &[u8]) -> Vec<u8> {
    a.sendall(data).unwrap();
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 65536];
    while got.len() < data.len() {
        transfer(a, b);
        match b.recv(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Error::WantRead) => {
                transfer(a, b);
            }
            Err(e) => panic!("recv failed: {e}"),
        }
    }
    got
}
