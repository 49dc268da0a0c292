//! Arbitrary datagrams into a DTLS server (with and without the cookie exchange) and into a
//! client that sent its hello: every datagram must be dropped or fail the association
//! cleanly, never panic or hang.
#![no_main]

use std::sync::OnceLock;

use ferrossl::constants::OP_COOKIE_EXCHANGE;
use ferrossl::{Connection, Context, Method, PKey, X509};
use libfuzzer_sys::fuzz_target;

fn server_context(cookies: bool) -> &'static Context {
    static CTX: OnceLock<[Context; 2]> = OnceLock::new();
    &CTX.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let make = |cookies: bool| {
            let ctx = Context::new(Method::Dtls);
            ctx.use_certificate(X509::from_der(cert.der()).unwrap());
            ctx.use_privatekey(PKey::from_der(&key.serialize_der()).unwrap());
            if cookies {
                ctx.set_options(OP_COOKIE_EXCHANGE);
            }
            ctx
        };
        [make(false), make(true)]
    })[usize::from(cookies)]
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut conn = if selector & 1 == 0 {
        let mut c = Connection::new(server_context(selector & 2 != 0)).unwrap();
        c.set_accept_state().unwrap();
        c
    } else {
        let mut c = Connection::new(&Context::new(Method::Dtls)).unwrap();
        c.set_connect_state().unwrap();
        let _ = c.do_handshake();
        let _ = c.bio_read(1 << 16);
        c
    };
    for datagram in rest.split(|b| *b == 0xA5) {
        let _ = conn.bio_write(datagram);
        let _ = conn.do_handshake();
        let mut buf = [0u8; 256];
        let _ = conn.recv(&mut buf);
        while conn.bio_read(1 << 16).is_ok() {}
    }
});
