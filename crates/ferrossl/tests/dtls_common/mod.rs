//! Helpers shared by the DTLS integration tests: configurations from the test PKI and a
//! lossless in-memory exchange between two engines.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrossl::config::{Config, Role};
use ferrossl::constants::*;
use ferrossl::dtls::{DtlsEngine, DtlsError, DtlsParams};
use ferrossl::{Context, Method};
use ferrossl_testkit::pki::{Identity, TestPki};

/// A server configuration with `id` as its identity.
pub fn server_config(id: &Identity) -> Arc<Config> {
    let ctx = Context::new(Method::Dtls);
    ctx.use_certificate_chain_file(&id.chain_path).unwrap();
    ctx.use_privatekey_file(&id.key_path, FILETYPE_PEM).unwrap();
    ctx.config()
}

/// A server configuration that asks for client certificates with `mode`.
pub fn server_config_verifying(id: &Identity, pki: &TestPki, mode: i32) -> Arc<Config> {
    let ctx = Context::new(Method::Dtls);
    ctx.use_certificate_chain_file(&id.chain_path).unwrap();
    ctx.use_privatekey_file(&id.key_path, FILETYPE_PEM).unwrap();
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(mode, None);
    ctx.config()
}

/// A client configuration that verifies the server against the test root.
pub fn client_config(pki: &TestPki) -> Arc<Config> {
    client_context(pki).config()
}

/// The client context behind [`client_config`], for further settings.
pub fn client_context(pki: &TestPki) -> Context {
    let ctx = Context::new(Method::Dtls);
    ctx.load_verify_locations(Some(pki.ca_path().as_ref()), None)
        .unwrap();
    ctx.set_verify(VERIFY_PEER, None);
    ctx
}

/// A client configuration with a client certificate.
pub fn client_config_with_cert(pki: &TestPki, id: &Identity) -> Arc<Config> {
    let ctx = client_context(pki);
    ctx.use_certificate_chain_file(&id.chain_path).unwrap();
    ctx.use_privatekey_file(&id.key_path, FILETYPE_PEM).unwrap();
    ctx.config()
}

/// The same configuration held to DTLS 1.2 (`set_max_proto_version(DTLS1_2_VERSION)`), for
/// what only DTLS 1.2 has: a client held to it gets it from a server that allows both.
pub fn dtls12(config: Arc<Config>) -> Arc<Config> {
    let mut config = (*config).clone();
    config.max_version = DTLS1_2_VERSION;
    Arc::new(config)
}

/// A client and a server engine.
pub fn pair(
    client: Arc<Config>,
    server: Arc<Config>,
    client_params: DtlsParams,
    server_params: DtlsParams,
    now: Instant,
) -> (DtlsEngine, DtlsEngine) {
    let c = DtlsEngine::new(client, Role::Client, client_params, now).unwrap();
    let s = DtlsEngine::new(server, Role::Server, server_params, now).unwrap();
    (c, s)
}

/// A client and a server engine, both with the default DTLS parameters.
pub fn pair_with_default_params(
    client: Arc<Config>,
    server: Arc<Config>,
    now: Instant,
) -> (DtlsEngine, DtlsEngine) {
    pair(
        client,
        server,
        DtlsParams::default(),
        DtlsParams::default(),
        now,
    )
}

/// Moves every queued datagram from `from` to `to`; returns how many moved.
pub fn transfer(
    from: &mut DtlsEngine,
    to: &mut DtlsEngine,
    now: Instant,
) -> Result<usize, DtlsError> {
    let mut n = 0;
    while let Some(d) = from.poll_datagram() {
        n += 1;
        to.handle_datagram(&d, now)?;
    }
    Ok(n)
}

/// Runs both handshakes over a perfect link; the error says which side failed.
pub fn handshake(
    c: &mut DtlsEngine,
    s: &mut DtlsEngine,
    now: Instant,
) -> Result<(), (&'static str, DtlsError)> {
    for _ in 0..10 {
        // A failing side's alert still reaches the other side.
        if let Err(e) = transfer(c, s, now) {
            let _ = transfer(s, c, now);
            return Err(("server", e));
        }
        if let Err(e) = transfer(s, c, now) {
            let _ = transfer(c, s, now);
            return Err(("client", e));
        }
        if c.is_established() && s.is_established() {
            return Ok(());
        }
    }
    Err(("neither", DtlsError::Timeout { retransmissions: 0 }))
}

/// A second later.
pub fn later(now: Instant, secs: u64) -> Instant {
    now + Duration::from_secs(secs)
}
