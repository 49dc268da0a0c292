//! TLS sessions for resumption: the client's [`Session`] objects (`get_session`/`set_session`)
//! and the server's session cache and ticket keys, with OpenSSL's session ID context and
//! timeout.
//!
//! The engine keeps session values opaque, so a [`Session`] lives in memory only: it cannot be
//! turned into bytes (see the docs' table of refusals). A TLS 1.3 ticket is used up when a
//! resumption spends it, as RFC 8446 §C.4 advises; servers send two per handshake.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::server::{ProducesTickets, StoresServerSessions};
use rustls::NamedGroup;
use rustls_pki_types::ServerName;

/// OpenSSL's default session lifetime in seconds.
pub const DEFAULT_TIMEOUT: u64 = 300;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A client's resumable session (pyOpenSSL's `Session`). Cloning gives another handle to the
/// same session.
#[derive(Clone, Default)]
pub struct Session {
    inner: Arc<Mutex<SessionState>>,
}

#[derive(Default)]
struct SessionState {
    tls12: Option<Tls12ClientSessionValue>,
    tls13: VecDeque<Tls13ClientSessionValue>,
    dtls: Option<DtlsSession>,
    kx_hint: Option<NamedGroup>,
    created: u64,
    timeout: u64,
}

impl Session {
    /// An empty session for one connection, whose sessions live `timeout` seconds.
    pub(crate) fn with_timeout(timeout: u64) -> Self {
        let session = Self::default();
        session.inner.lock().expect("session lock").timeout = timeout;
        session
    }

    /// Whether the session holds anything a handshake could resume.
    pub fn is_resumable(&self) -> bool {
        let s = self.inner.lock().expect("session lock");
        (s.tls12.is_some() || !s.tls13.is_empty() || s.dtls.is_some()) && !s.expired()
    }

    /// The DTLS session to offer, unless it expired by `now` (seconds since the Unix epoch).
    pub(crate) fn dtls(&self, now: u64) -> Option<DtlsSession> {
        let s = self.inner.lock().expect("session lock");
        (!s.expired_at(now)).then(|| s.dtls.clone()).flatten()
    }

    /// Keeps what a DTLS handshake established at `now`, to live `timeout` seconds.
    pub(crate) fn set_dtls(&self, value: DtlsSession, now: u64, timeout: u64) {
        let mut s = self.inner.lock().expect("session lock");
        s.dtls = Some(value);
        s.created = now;
        s.timeout = timeout;
    }

    /// When the session was established, in seconds since the Unix epoch.
    pub fn time(&self) -> u64 {
        self.inner.lock().expect("session lock").created
    }

    /// The session's lifetime in seconds.
    pub fn timeout(&self) -> u64 {
        self.inner.lock().expect("session lock").timeout
    }

    /// The session bytes cannot be exported: the engine keeps them opaque.
    pub fn to_bytes(&self) -> crate::Result<Vec<u8>> {
        Err(crate::Error::NotSupported(
            "session serialization: the engine keeps session state opaque",
        ))
    }
}

impl SessionState {
    fn expired(&self) -> bool {
        self.expired_at(now_secs())
    }

    fn expired_at(&self, now: u64) -> bool {
        self.created != 0 && self.created.saturating_add(self.timeout) < now
    }

    fn touch(&mut self) {
        self.created = now_secs();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.lock().expect("session lock");
        f.debug_struct("Session")
            .field("tls12", &s.tls12.is_some())
            .field("tls13_tickets", &s.tls13.len())
            .field("dtls", &s.dtls.is_some())
            .field("created", &s.created)
            .finish()
    }
}

/// A DTLS 1.2 client's resumable session: the ID and ticket to offer, and the state the DTLS
/// engine encoded (suite, master secret, peer chain), which only it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DtlsSession {
    pub(crate) session_id: Vec<u8>,
    pub(crate) ticket: Option<Vec<u8>>,
    pub(crate) state: Vec<u8>,
}

/// The engine's view of one client connection's session: it resumes from the [`Session`]
/// given to `set_session` and records what the server issues into it. Server names are
/// ignored: the session belongs to the connection, as in OpenSSL.
#[derive(Debug)]
pub(crate) struct ConnectionSessions(pub(crate) Session);

impl ClientSessionStore for ConnectionSessions {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.0.inner.lock().expect("session lock").kx_hint = Some(group);
    }

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.inner.lock().expect("session lock").kx_hint
    }

    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        let mut s = self.0.inner.lock().expect("session lock");
        s.tls12 = Some(value);
        s.touch();
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let s = self.0.inner.lock().expect("session lock");
        if s.expired() {
            return None;
        }
        s.tls12.clone()
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.0.inner.lock().expect("session lock").tls12 = None;
    }

    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        let mut s = self.0.inner.lock().expect("session lock");
        s.tls13.push_back(value);
        s.touch();
    }

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        let mut s = self.0.inner.lock().expect("session lock");
        if s.expired() {
            return None;
        }
        s.tls13.pop_front()
    }
}

/// Bound on the server cache; past it the oldest entries go first.
const SERVER_CACHE_LIMIT: usize = 20_000;

/// The server-side session cache, shared by every context in the process and keyed by the
/// session ID context, so contexts sharing `set_session_id` resume each other's sessions.
fn server_cache() -> &'static Mutex<ServerCache> {
    static CACHE: OnceLock<Mutex<ServerCache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

#[derive(Default)]
struct ServerCache {
    entries: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    order: VecDeque<Vec<u8>>,
}

/// One context's handle on the server cache.
#[derive(Debug)]
pub(crate) struct ServerSessions {
    pub(crate) id_context: Vec<u8>,
    pub(crate) timeout: u64,
}

impl ServerSessions {
    /// The handle for `config`'s session ID context and timeout.
    pub(crate) fn of(config: &crate::config::Config) -> Self {
        Self {
            id_context: config.session_id_context.clone(),
            timeout: config.session_timeout,
        }
    }

    /// Caches `value` under `key` at `now` (seconds since the Unix epoch).
    pub(crate) fn put_at(&self, key: &[u8], value: Vec<u8>, now: u64) {
        let mut cache = server_cache().lock().expect("cache lock");
        while cache.entries.len() >= SERVER_CACHE_LIMIT {
            let Some(old) = cache.order.pop_front() else {
                break;
            };
            cache.entries.remove(&old);
        }
        let key = self.key(key);
        cache.order.push_back(key.clone());
        cache.entries.insert(key, (value, now + self.timeout));
    }

    /// The value cached under `key`, unless it expired by `now`.
    pub(crate) fn get_at(&self, key: &[u8], now: u64) -> Option<Vec<u8>> {
        let cache = server_cache().lock().expect("cache lock");
        let (value, expiry) = cache.entries.get(&self.key(key))?;
        (*expiry >= now).then(|| value.clone())
    }

    fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + self.id_context.len() + key.len());
        k.push(self.id_context.len() as u8);
        k.extend_from_slice(&self.id_context);
        k.extend_from_slice(key);
        k
    }
}

impl StoresServerSessions for ServerSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.put_at(&key, value, now_secs());
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_at(key, now_secs())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut cache = server_cache().lock().expect("cache lock");
        let (value, expiry) = cache.entries.remove(&self.key(key))?;
        (expiry >= now_secs()).then_some(value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// Ticket keys of one context, with the context's timeout enforced: a ticket carries the time
/// it was issued (inside the encryption) and is refused once older than the timeout.
pub(crate) struct TimedTicketer {
    pub(crate) keys: Arc<dyn ProducesTickets>,
    pub(crate) timeout: u64,
}

impl TimedTicketer {
    /// The ticketer for `config`'s keys and timeout.
    pub(crate) fn of(config: &crate::config::Config) -> Self {
        Self {
            keys: config.ticket_keys.clone(),
            timeout: config.session_timeout,
        }
    }

    /// Seals `plain` into a ticket issued at `now` (seconds since the Unix epoch).
    pub(crate) fn encrypt_at(&self, plain: &[u8], now: u64) -> Option<Vec<u8>> {
        let mut stamped = now.to_be_bytes().to_vec();
        stamped.extend_from_slice(plain);
        self.keys.encrypt(&stamped)
    }

    /// Opens a ticket, unless it is forged, sealed under a retired key, or older than the
    /// timeout at `now`.
    pub(crate) fn decrypt_at(&self, cipher: &[u8], now: u64) -> Option<Vec<u8>> {
        let plain = self.keys.decrypt(cipher)?;
        let (stamp, rest) = plain.split_first_chunk::<8>()?;
        let issued = u64::from_be_bytes(*stamp);
        (issued.saturating_add(self.timeout) >= now).then(|| rest.to_vec())
    }
}

impl std::fmt::Debug for TimedTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedTicketer")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ProducesTickets for TimedTicketer {
    fn enabled(&self) -> bool {
        self.keys.enabled()
    }

    fn lifetime(&self) -> u32 {
        self.timeout.min(u64::from(u32::MAX)) as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.encrypt_at(plain, now_secs())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.decrypt_at(cipher, now_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cache_separates_id_contexts_and_expires() {
        let a = ServerSessions {
            id_context: b"a".to_vec(),
            timeout: 300,
        };
        let b = ServerSessions {
            id_context: b"b".to_vec(),
            timeout: 300,
        };
        assert!(a.put(b"key".to_vec(), b"value".to_vec()));
        assert_eq!(a.get(b"key").as_deref(), Some(&b"value"[..]));
        assert!(b.get(b"key").is_none());
        let a_too = ServerSessions {
            id_context: b"a".to_vec(),
            timeout: 300,
        };
        assert_eq!(a_too.take(b"key").as_deref(), Some(&b"value"[..]));
        assert!(a.get(b"key").is_none());
    }

    #[test]
    fn tickets_expire_with_the_timeout() {
        let keys = rustls::crypto::aws_lc_rs::Ticketer::new().unwrap();
        let live = TimedTicketer {
            keys: keys.clone(),
            timeout: 300,
        };
        let ticket = live.encrypt(b"state").unwrap();
        assert_eq!(live.decrypt(&ticket).as_deref(), Some(&b"state"[..]));
        let stamped_old = keys
            .encrypt(&[&0u64.to_be_bytes()[..], b"state"].concat())
            .unwrap();
        assert!(live.decrypt(&stamped_old).is_none());
    }
}
