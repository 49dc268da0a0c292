//! Arbitrary bytes from a "client" into a server connection, split into several writes: the
//! connection must fail cleanly, never panic or hang.
#![no_main]

use std::sync::OnceLock;

use ferrossl::{Connection, Context, Method, PKey, X509};
use libfuzzer_sys::fuzz_target;

fn server_context() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ctx = Context::new(Method::Tls);
        ctx.use_certificate(X509::from_der(cert.der()).unwrap());
        ctx.use_privatekey(PKey::from_der(&key.serialize_der()).unwrap());
        ctx
    })
}

fuzz_target!(|data: &[u8]| {
    let mut conn = Connection::new(server_context()).unwrap();
    conn.set_accept_state().unwrap();
    for chunk in data.split(|b| *b == 0xA5) {
        let _ = conn.bio_write(chunk);
        let _ = conn.do_handshake();
        let _ = conn.bio_read(1 << 16);
        let mut buf = [0u8; 256];
        let _ = conn.recv(&mut buf);
    }
    let _ = conn.bio_shutdown();
    let _ = conn.do_handshake();
});
