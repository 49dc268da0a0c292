//! DTLS 1.2 (RFC 6347) and DTLS 1.3 (RFC 9147), sans-IO.
//!
//! rustls has no DTLS, so this engine is ferrossl's own; it reuses the library's
//! configuration, certificate verification ([`crate::verify::ChainVerifier`]), keys and cipher
//! names, and rustls's key exchange groups. It never touches a socket or reads a clock: the
//! caller moves datagrams and time.
//!
//! ```text
//! loop {
//!     for datagram in socket input  -> engine.handle_datagram(&datagram, now)?
//!     while let Some(d) = engine.poll_datagram() -> socket output
//!     if now >= engine.next_timeout() -> engine.handle_timeout(now)?
//!     while let Some(data) = engine.recv() -> application
//! }
//! ```
//!
//! [`DtlsEngine`] is one association of either version: a client starts in the version its
//! configuration allows (offering 1.3 and 1.2 in one ClientHello when both are), a server
//! becomes a 1.3 one when the first ClientHello offers 1.3. Beneath it, per version:
//!
//! - DTLS 1.2: [`record`] (epochs, AEAD, sequence numbers) with [`replay`], [`flight`]
//!   (fragmentation, reassembly, retransmission of whole flights), [`key_schedule`] and the
//!   typed handshake states; [`cookie`] serves `DTLSv1_listen`.
//! - DTLS 1.3: [`epochs13`] (the unified header of [`codec::unified`], record number
//!   encryption of [`record_number`], protection of [`record13`]), `flight13` (fragments and
//!   what the peer acknowledged, [`codec::ack`]), [`key_schedule13`] and the typed handshake
//!   states (a stateless HelloRetryRequest cookie, tickets); [`listen13`] answers ClientHellos
//!   statelessly.
//!
//! Both share the wire codecs ([`codec`]), reassembly, the retransmission timer, the replay
//! window, cookies and error-to-alert mapping; [`testing`] simulates lossy links for tests
//! and benchmarks.
//!
//! DTLS 1.2: ECDHE-ECDSA and ECDHE-RSA with AES-128/256-GCM and ChaCha20-Poly1305; X25519,
//! P-256, P-384; ECDSA, RSA PKCS#1 and PSS, Ed25519 signatures; extended master secret
//! (required); session resumption by ID and by ticket (RFC 5077); SNI, ALPN, use_srtp,
//! record_size_limit; connection IDs (RFC 9146); the RFC 5705 exporter; a servername callback
//! that may switch the configuration; restarted clients (RFC 6347 §4.2.8); path MTU back-off
//! (§4.1.1.1). Renegotiation is refused with a no_renegotiation warning.
//!
//! DTLS 1.3: the TLS 1.3 suites; X25519MLKEM768 (asked for by HelloRetryRequest), X25519,
//! P-256, P-384; certificates and client authentication, resumption by ticket (psk_dhe_ke),
//! ALPN, SNI, use_srtp, the TLS 1.3 exporter; ACKs and selective retransmission, KeyUpdate,
//! connection IDs and the peer address following them (NAT rebinding). No 0-RTT.

mod association;
pub mod codec;
pub mod cookie;
mod engine;
mod engine13;
pub mod epochs13;
pub mod error;
pub mod flight;
mod flight13;
mod handshake;
mod handshake13;
pub mod key_schedule;
pub mod key_schedule13;
pub mod record;
pub mod record13;
pub mod record_number;
pub mod replay;
mod sending;
pub mod srtp;
pub mod testing;
mod version_sensing;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::UnixTime;

use crate::config::{Config, VerifySettings};
use crate::ex_data::ExData;
use crate::session::Session;
use crate::tls::AlpnDecision;

pub use association::{dtls_version_name, listen13, DtlsEngine};
pub use cookie::{
    CookieCallbacks, CookieGenerateCallback, CookieInput, CookieProvider, CookieVerifyCallback,
    HmacCookies, ListenOutcome,
};
pub use engine::DtlsStats;
pub use error::DtlsError;
pub use flight::RetransmitConfig;
pub use srtp::SrtpProfile;

/// The current wall-clock time, for certificate validity. The engine asks only when it
/// verifies a chain; tests can pin it.
pub type WallClock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// A server's servername callback: given the client's SNI name and ALPN offer, it may switch
/// the handshake to another configuration (certificate, key, verification) and ALPN policy.
pub type ServernameCallback =
    Arc<dyn Fn(Option<&str>, &[Vec<u8>]) -> crate::Result<Option<Switched>> + Send + Sync>;

/// What the servername callback switched a server's handshake to (virtual hosting by SNI
/// name, RFC 6066 §3): everything chosen after it comes from here, ALPN included.
#[derive(Clone)]
pub struct Switched {
    /// The other context's configuration.
    pub config: Arc<Config>,
    /// Replaces [`DtlsParams::alpn_protocols`].
    pub alpn_protocols: Vec<Vec<u8>>,
    /// Replaces [`DtlsParams::alpn_select`].
    pub alpn_select: Option<AlpnSelectCallback>,
}

/// A server's ALPN choice among the client's offer.
pub type AlpnSelectCallback = Arc<dyn Fn(&[Vec<u8>]) -> AlpnDecision + Send + Sync>;

/// A datagram size that fits common paths with room for IP and UDP headers (as WebRTC uses).
pub const DEFAULT_MTU: usize = 1200;

/// What a DTLS connection adds to its context's [`crate::config::Config`].
#[derive(Clone)]
pub struct DtlsParams {
    /// The largest datagram to send, headers of DTLS included (`set_ciphertext_mtu`).
    pub mtu: usize,
    /// The retransmission timer.
    pub retransmit: RetransmitConfig,
    /// SRTP profiles (`set_tlsext_use_srtp`): a client offers them, a server picks its first
    /// one the client offers.
    pub srtp_profiles: Vec<SrtpProfile>,
    /// ALPN protocols: a client offers them; a server without `alpn_select` picks its first
    /// one the client offers.
    pub alpn_protocols: Vec<Vec<u8>>,
    /// A server's ALPN callback.
    pub alpn_select: Option<AlpnSelectCallback>,
    /// A server's servername callback, run when the ClientHello arrives.
    pub servername: Option<ServernameCallback>,
    /// The name a client sends as SNI (DNS names only) and checks when the configuration's
    /// `check_hostname` is on.
    pub server_name: Option<String>,
    /// A name the server's certificate must match (`set1_host`).
    pub verify_host: Option<String>,
    /// Verification settings overriding the configuration's (`Connection.set_verify`).
    pub verify: Option<VerifySettings>,
    /// Server: require a cookie exchange with this provider before keeping any state.
    pub cookies: Option<Arc<dyn CookieProvider>>,
    /// Server: the cookie secret of its context, which a DTLS 1.3 server checks a
    /// HelloRetryRequest cookie with (made by it or by the stateless listener before it) when
    /// `cookies` does not require cookies.
    pub cookie_secret: Option<Arc<dyn CookieProvider>>,
    /// The peer's address, which cookies are bound to.
    pub peer_addr: Option<SocketAddr>,
    /// The connection's application data, handed to the verify callback.
    pub ex_data: Arc<ExData>,
    /// The wall clock.
    pub wall_clock: WallClock,
    /// Client: the session to offer (`set_session`), which a full handshake then fills for
    /// later resumption.
    pub session: Option<Session>,
    /// The connection ID this endpoint asks its peer to put in the protected records it
    /// sends (RFC 9146); empty asks for none while accepting the peer's. None: no CIDs.
    pub connection_id: Option<Vec<u8>>,
}

impl Default for DtlsParams {
    fn default() -> Self {
        Self {
            mtu: DEFAULT_MTU,
            retransmit: RetransmitConfig::default(),
            srtp_profiles: Vec::new(),
            alpn_protocols: Vec::new(),
            alpn_select: None,
            servername: None,
            server_name: None,
            verify_host: None,
            verify: None,
            cookies: None,
            cookie_secret: None,
            peer_addr: None,
            ex_data: Arc::new(ExData::default()),
            wall_clock: Arc::new(UnixTime::now),
            session: None,
            connection_id: None,
        }
    }
}
