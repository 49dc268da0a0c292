//! Arbitrary bytes from a "server" into a client connection that sent its hello.
#![no_main]

use ferrossl::{Connection, Context, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = Context::new(Method::TlsClient);
    let mut conn = Connection::new(&ctx).unwrap();
    conn.set_connect_state().unwrap();
    let _ = conn.do_handshake();
    let _ = conn.bio_read(1 << 16);
    for chunk in data.split(|b| *b == 0xA5) {
        let _ = conn.bio_write(chunk);
        let _ = conn.do_handshake();
        let mut buf = [0u8; 256];
        let _ = conn.recv(&mut buf);
        let _ = conn.bio_read(1 << 16);
    }
});
