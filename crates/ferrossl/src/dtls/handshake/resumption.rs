//! Session resumption (RFC 5246 §7.3 abbreviated handshakes, RFC 5077 tickets). One encoding
//! of a session's state serves the client's [`Session`](crate::session::Session), the
//! server's cache (keyed by session ID under the context's session ID context) and the
//! tickets sealed with the context's rotating ticket keys. Only sessions made with the
//! extended master secret are kept or resumed (RFC 7627 §5.3).

use rustls::CipherSuite;

use crate::ciphers::{self, CipherInfo};
use crate::constants::{OP_NO_TICKET, SESS_CACHE_SERVER};
use crate::session::{DtlsSession, ServerSessions, TimedTicketer};

use super::super::codec::message::{Certificate, ClientHello};
use super::super::codec::{put_bytes, put_u16, Reader};
use super::super::error::DtlsError;
use super::super::key_schedule::KeySchedule;
use super::{dtls_suites, random, Context};

/// The version of the state encoding.
const STATE_VERSION: u8 = 1;
/// RFC 7627 §5.3: the flag saying the master secret is an extended one.
const EXTENDED_MASTER_SECRET: u8 = 1;

/// What resuming a session needs: its suite and master secret, and the peer's chain as it
/// was presented then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    /// The suite the session was made with.
    pub suite: CipherSuite,
    /// Its (extended) master secret.
    pub master: [u8; 48],
    /// Server: the SNI name the session was made for (empty: none).
    pub server_name: Vec<u8>,
    /// The peer's certificates, its own first (empty when it sent none).
    pub peer_chain: Vec<Vec<u8>>,
}

impl SessionState {
    /// The state of the session `keys` established.
    pub fn of(suite: &CipherInfo, keys: &KeySchedule, cx: &Context<'_>) -> Self {
        Self {
            suite: suite.suite,
            master: *keys.master_secret(),
            server_name: cx.sni_bytes(),
            peer_chain: cx.peer_chain_der(),
        }
    }

    /// version ‖ suite ‖ extended-master-secret flag ‖ master secret ‖ server name ‖ peer
    /// chain (as a Certificate body).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![STATE_VERSION];
        put_u16(&mut out, self.suite.into());
        out.push(EXTENDED_MASTER_SECRET);
        out.extend_from_slice(&self.master);
        put_bytes(&mut out, 2, &self.server_name);
        Certificate {
            chain: self.peer_chain.clone(),
        }
        .encode(&mut out);
        out
    }

    /// Reads an encoding; `None` for anything else, and for a session without the extended
    /// master secret, which must not be resumed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        if r.u8("version").ok()? != STATE_VERSION {
            return None;
        }
        let suite = CipherSuite::from(r.u16("suite").ok()?);
        if r.u8("extended master secret").ok()? != EXTENDED_MASTER_SECRET {
            return None;
        }
        let master = r.array("master secret").ok()?;
        let server_name = r.prefixed(2, "server name").ok()?.to_vec();
        let chain = Certificate::read(r.rest()).ok()?.chain;
        Some(Self {
            suite,
            master,
            server_name,
            peer_chain: chain,
        })
    }

    /// The suite to resume with, if this configuration still enables it, the client offers
    /// it, and the client asks for the same server name (RFC 6066 §3).
    pub fn usable_suite(
        &self,
        hello: &ClientHello,
        cx: &Context<'_>,
    ) -> Option<&'static CipherInfo> {
        if self.server_name != cx.sni_bytes() {
            return None;
        }
        let info = ciphers::info(self.suite)?;
        let enabled = dtls_suites(cx.config).iter().any(|c| c.suite == self.suite);
        (enabled && hello.cipher_suites.contains(&self.suite)).then_some(info)
    }
}

/// Client: what a ClientHello offers to resume.
pub struct Offer {
    /// The session ID to send (empty: none).
    pub session_id: Vec<u8>,
    /// The session_ticket extension: the ticket, empty to ask for one, `None` when tickets
    /// are off.
    pub ticket_extension: Option<Vec<u8>>,
    /// The session offered and its ticket, when there is one to resume.
    pub session: Option<(SessionState, Option<Vec<u8>>)>,
}

impl Context<'_> {
    /// Server: the SNI name received, as bytes (empty: none).
    fn sni_bytes(&self) -> Vec<u8> {
        self.session
            .server_name
            .as_deref()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The wall-clock time in seconds, for session lifetimes.
    fn now_secs(&self) -> u64 {
        (self.params.wall_clock)().as_secs()
    }

    /// Whether tickets are on (`OP_NO_TICKET` turns them off, RFC 5077).
    pub(super) fn tickets_enabled(&self) -> bool {
        self.config.options & OP_NO_TICKET == 0
    }

    /// Server: whether the context caches sessions by ID.
    pub(super) fn server_caching(&self) -> bool {
        self.config.session_cache_mode & SESS_CACHE_SERVER != 0
    }

    /// Client: what the ClientHello offers from the connection's `set_session`, unless the
    /// session expired.
    pub(super) fn resumption_offer(&self) -> Result<Offer, DtlsError> {
        let offered = self
            .params
            .session
            .as_ref()
            .and_then(|s| s.dtls(self.now_secs()))
            .and_then(|s| Some((SessionState::decode(&s.state)?, s)));
        // An empty extension asks for a ticket (RFC 5077 §3.2).
        let ticket_extension = self.tickets_enabled().then(|| {
            offered
                .as_ref()
                .and_then(|(_, s)| s.ticket.clone())
                .unwrap_or_default()
        });
        let with_ticket = ticket_extension.as_ref().is_some_and(|t| !t.is_empty());
        let session_id = match &offered {
            Some((_, s)) if !s.session_id.is_empty() => s.session_id.clone(),
            // RFC 5077 §3.4: beside a ticket the client sends a session ID of its own, which
            // the server echoes when it accepts the ticket.
            Some(_) if with_ticket => random()?.to_vec(),
            _ => Vec::new(),
        };
        Ok(Offer {
            session: offered
                .filter(|_| !session_id.is_empty())
                .map(|(state, s)| (state, s.ticket)),
            session_id,
            ticket_extension,
        })
    }

    /// Client: keeps the session for a later `set_session`, for the context's timeout.
    pub(super) fn remember_session(&self, session: DtlsSession) {
        if let Some(s) = &self.params.session {
            s.set_dtls(session, self.now_secs(), self.config.session_timeout);
        }
    }

    /// Server: the session the ClientHello asks to resume, from its ticket (when tickets
    /// are on) or else from the cache, and whether it came from a ticket. Unknown, expired or
    /// forged ones give `None`, and the handshake goes on in full.
    pub(super) fn session_to_resume(&self, hello: &ClientHello) -> Option<(SessionState, bool)> {
        let now = self.now_secs();
        let ticket = hello
            .extensions
            .session_ticket
            .as_ref()
            .filter(|t| !t.is_empty() && self.tickets_enabled());
        let state = match ticket {
            // RFC 5077 §3.4: the ticket decides; the session ID only signals resumption.
            Some(t) => TimedTicketer::of(self.config).decrypt_at(t, now)?,
            None if !hello.session_id.is_empty() && self.server_caching() => {
                ServerSessions::of(self.config).get_at(&hello.session_id, now)?
            }
            None => return None,
        };
        Some((SessionState::decode(&state)?, ticket.is_some()))
    }

    /// Server: a new session ID when the cache is on (RFC 5246 §7.4.1.3), else none.
    pub(super) fn new_session_id(&self) -> Result<Vec<u8>, DtlsError> {
        Ok(match self.server_caching() {
            true => random()?.to_vec(),
            false => Vec::new(),
        })
    }

    /// Server: caches a finished session under its ID.
    pub(super) fn cache_session(&self, session_id: &[u8], state: &SessionState) {
        if !session_id.is_empty() && self.server_caching() {
            ServerSessions::of(self.config).put_at(session_id, state.encode(), self.now_secs());
        }
    }

    /// Server: a ticket for `state`, sealed with the context's ticket keys; `None` when
    /// sealing fails (an empty NewSessionTicket then says so, RFC 5077 §3.3).
    pub(super) fn seal_ticket(&self, state: &SessionState) -> Option<Vec<u8>> {
        TimedTicketer::of(self.config).encrypt_at(&state.encode(), self.now_secs())
    }

    /// Server: the ticket lifetime hint, the context's session timeout.
    pub(super) fn ticket_lifetime(&self) -> u32 {
        self.config.session_timeout.min(u64::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_refuses_sessions_without_extended_master_secret() {
        let state = SessionState {
            suite: CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            master: [7; 48],
            server_name: b"localhost".to_vec(),
            peer_chain: vec![vec![1, 2, 3]],
        };
        let bytes = state.encode();
        assert_eq!(SessionState::decode(&bytes), Some(state));
        let mut classic = bytes.clone();
        classic[3] = 0;
        assert_eq!(SessionState::decode(&classic), None);
        assert_eq!(SessionState::decode(&bytes[..20]), None);
        assert_eq!(SessionState::decode(&[]), None);
    }
}
