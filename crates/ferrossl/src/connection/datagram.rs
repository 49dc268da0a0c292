//! The DTLS side of [`Connection`]: the same OpenSSL-shaped calls over the DTLS engine, where
//! a memory BIO carries whole datagrams (each `bio_write` is one datagram, each `bio_read`
//! returns one) or a connected UDP socket carries them, and the caller drives the
//! retransmission timer with `DTLSv1_get_timeout`/`DTLSv1_handle_timeout` (a blocking socket
//! drives it itself).

use std::collections::VecDeque;
use std::io;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Connection;
use crate::config::{Config, Role};
use crate::constants::*;
use crate::context::{AlpnSelection, ClientHello, Context, ServernameCallback};
use crate::dtls::{self, DtlsEngine, DtlsParams, ListenOutcome, SrtpProfile};
use crate::error::{Error, Result};
use crate::ex_data::ExData;
use crate::session::Session;
use crate::tls::AlpnDecision;

/// Datagram transport and engine of a DTLS connection.
pub(super) struct Datagrams {
    pub(super) engine: Option<DtlsEngine>,
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
    socket: Option<UdpSocket>,
    /// The peer's address when the datagrams travel without a socket of ours.
    peer_addr: Option<std::net::SocketAddr>,
    /// Set when a datagram handled since the last look may move the peer's address.
    peer_may_move: bool,
    /// Our connection ID, when the application chose it (a server routing by CID).
    connection_id: Option<Vec<u8>>,
    eof: bool,
    mtu: usize,
    nonblocking: bool,
    /// The context the servername callback switched to, for the connection to adopt.
    switched: Arc<Mutex<Option<Context>>>,
}

/// The largest datagram a socket read takes.
const MAX_DATAGRAM: usize = 65_535;

impl Datagrams {
    pub(super) fn new(socket: Option<UdpSocket>) -> Self {
        Self {
            engine: None,
            incoming: VecDeque::new(),
            outgoing: VecDeque::new(),
            socket,
            peer_addr: None,
            peer_may_move: false,
            connection_id: None,
            eof: false,
            mtu: dtls::DEFAULT_MTU,
            nonblocking: false,
            switched: Arc::default(),
        }
    }

    /// The largest datagram to send: the engine's MTU, or the one set before it started.
    fn path_mtu(&self) -> usize {
        self.engine.as_ref().map_or(self.mtu, |e| e.mtu())
    }

    /// Moves the engine's datagrams to the transport.
    fn flush(&mut self) -> Result<()> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        while let Some(d) = engine.poll_datagram() {
            match &self.socket {
                Some(s) => {
                    s.send(&d)
                        .map_err(|e| Error::from_transport(e, Error::WantWrite))?;
                }
                None => self.outgoing.push_back(d),
            }
        }
        Ok(())
    }

    /// The next datagram from the peer: a queued one (memory BIO), or one read from the socket
    /// waiting at most until the retransmission deadline.
    fn next_datagram(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some(d) = self.incoming.pop_front() {
            return Ok(Some(d));
        }
        let Some(socket) = &self.socket else {
            return Ok(None);
        };
        if !self.nonblocking {
            // Wait no longer than the retransmission timer allows.
            let deadline = self.engine.as_ref().and_then(DtlsEngine::next_timeout);
            let wait = deadline.map(|d| {
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            });
            socket
                .set_read_timeout(wait)
                .map_err(|e| Error::from_transport(e, Error::WantRead))?;
        }
        let mut buf = vec![0u8; MAX_DATAGRAM];
        match socket.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::from_transport(e, Error::WantRead)),
        }
    }

    /// Runs the retransmission timer if it is due; true when something was sent again.
    fn handle_timeout(&mut self) -> Result<bool> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(false);
        };
        let now = Instant::now();
        if engine.next_timeout().is_none_or(|t| t > now) {
            return Ok(false);
        }
        let before = engine.stats().retransmissions;
        engine.handle_timeout(now)?;
        let resent = engine.stats().retransmissions > before;
        self.flush()?;
        Ok(resent)
    }

    /// Feeds one datagram (or a timeout) to the engine; `WantRead` when there is nothing.
    fn step(&mut self) -> Result<()> {
        // A failed association says why again rather than asking for more input.
        if let Some(e) = self.engine.as_ref().and_then(DtlsEngine::error) {
            return Err(e.clone().into());
        }
        match self.next_datagram()? {
            Some(d) => {
                let engine = self.engine.as_mut().expect("engine exists");
                let result = engine.handle_datagram(&d, Instant::now());
                self.peer_may_move |= engine.datagram_may_move_peer();
                self.flush()?;
                result.map_err(Error::from)
            }
            None if self.eof && self.socket.is_none() => Err(Error::unexpected_eof()),
            None => {
                let blocking_socket = self.socket.is_some() && !self.nonblocking;
                if self.handle_timeout()? || blocking_socket {
                    return Ok(());
                }
                Err(Error::WantRead)
            }
        }
    }
}

/// The ALPN protocols a DTLS handshake offers (client) or picks from (server without a
/// callback): the connection's own list, else its configuration's.
fn alpn_protocols(own: &Option<Vec<Vec<u8>>>, config: &Config) -> Vec<Vec<u8>> {
    own.clone().unwrap_or_else(|| config.alpn_protos.clone())
}

/// A DTLS server's ALPN decision by `context`'s select callback, if it has one.
fn alpn_select(context: &Context, ex_data: &Arc<ExData>) -> Option<dtls::AlpnSelectCallback> {
    let cb = context.hello_callbacks().1?;
    let ex = ex_data.clone();
    Some(Arc::new(move |offered: &[Vec<u8>]| {
        let hello = ClientHello {
            server_name: None,
            alpn: offered,
            ex_data: &ex,
            new_context: None,
        };
        match cb(&hello) {
            Ok(AlpnSelection::Select(p)) if offered.contains(&p) => AlpnDecision::Select(p),
            Ok(AlpnSelection::NoOverlap) => AlpnDecision::None,
            _ => AlpnDecision::Abort,
        }
    }))
}

impl Connection {
    /// A DTLS connection over a connected UDP socket. A blocking socket handles the
    /// retransmission timer itself; a non-blocking one returns `WantRead`, and the caller calls
    /// [`Connection::dtls_handle_timeout`] when [`Connection::dtls_get_timeout`] says so.
    pub fn with_udp_socket(context: &crate::Context, socket: UdpSocket) -> Result<Self> {
        if !context.method().is_dtls() {
            return Err(Error::InvalidArgument(
                "a UDP socket needs a DTLS method".into(),
            ));
        }
        socket
            .peer_addr()
            .map_err(|e| Error::from_transport(e, Error::WantRead))?;
        let mut conn = Self::new(context)?;
        conn.dgram = Some(Box::new(Datagrams::new(Some(socket))));
        Ok(conn)
    }

    /// Makes the UDP socket non-blocking (calls then fail with `WantRead` instead of waiting)
    /// or blocking (the default; the connection runs the retransmission timer while it waits).
    pub fn set_dtls_nonblocking(&mut self, nonblocking: bool) -> Result<()> {
        let Some(dgram) = self.dgram.as_mut() else {
            return Err(Error::WrongState("not a DTLS connection"));
        };
        if let Some(s) = &dgram.socket {
            s.set_nonblocking(nonblocking)
                .map_err(|e| Error::from_transport(e, Error::WantRead))?;
        }
        dgram.nonblocking = nonblocking;
        Ok(())
    }

    fn dgram(&mut self) -> &mut Datagrams {
        self.dgram.as_mut().expect("a DTLS connection")
    }

    /// Creates the DTLS engine on first use.
    fn dtls_engine(&mut self) -> Result<()> {
        if self.dgram().engine.is_some() {
            return Ok(());
        }
        let role = self.role.ok_or(Error::WrongState(
            "connection state not set: call set_connect_state or set_accept_state",
        ))?;
        let params = self.dtls_params(role)?;
        if role == Role::Client {
            // get_session hands out the session the handshake fills.
            self.session = params.session.clone();
        }
        let engine = DtlsEngine::new(self.config.clone(), role, params, Instant::now())?;
        self.dgram().engine = Some(engine);
        self.info(SSL_CB_HANDSHAKE_START, 1);
        self.dgram().flush()
    }

    fn dtls_params(&self, role: Role) -> Result<DtlsParams> {
        let dgram = self.dgram.as_ref().expect("a DTLS connection");
        let peer_addr = dgram
            .socket
            .as_ref()
            .and_then(|s| s.peer_addr().ok())
            .or(dgram.peer_addr);
        let cookies = (role == Role::Server && self.config.options & OP_COOKIE_EXCHANGE != 0)
            .then(|| self.context.cookie_provider(self.ex_data.clone()));
        let cookie_secret =
            (role == Role::Server).then(|| self.context.cookie_provider(self.ex_data.clone()));
        let servername = self
            .context
            .hello_callbacks()
            .0
            .filter(|_| role == Role::Server)
            .map(|cb| self.dtls_servername(cb, dgram.switched.clone()));
        let srtp = match self.config.srtp_profiles.as_str() {
            "" => Vec::new(),
            list => SrtpProfile::parse_list(list)?,
        };
        Ok(DtlsParams {
            mtu: dgram.mtu,
            srtp_profiles: srtp,
            alpn_protocols: alpn_protocols(&self.alpn_protos, &self.config),
            alpn_select: alpn_select(&self.context, &self.ex_data),
            servername,
            server_name: self.server_name.clone(),
            verify_host: self.verify_host.clone(),
            verify: self.verify.clone(),
            cookies,
            cookie_secret,
            peer_addr,
            ex_data: self.ex_data.clone(),
            session: (role == Role::Client).then(|| {
                self.session
                    .clone()
                    .unwrap_or_else(|| Session::with_timeout(self.config.session_timeout))
            }),
            connection_id: match &dgram.connection_id {
                Some(chosen) => Some(chosen.clone()),
                None => self
                    .config
                    .dtls_cid_length
                    .map(|n| random_cid(usize::from(n)))
                    .transpose()?,
            },
            ..DtlsParams::default()
        })
    }

    /// The engine's servername callback: the context's, with `hello.set_context` switching
    /// the handshake to another context (which the connection adopts, see
    /// [`Connection::adopt_switched_context`]).
    ///
    /// The new context's ALPN callback (or, without one, its protocol list) decides for the
    /// handshake it takes over, as on the TLS path; a list set on the connection stays.
    fn dtls_servername(
        &self,
        cb: ServernameCallback,
        switched: Arc<Mutex<Option<Context>>>,
    ) -> dtls::ServernameCallback {
        let ex = self.ex_data.clone();
        let own_alpn = self.alpn_protos.clone();
        Arc::new(move |server_name: Option<&str>, alpn: &[Vec<u8>]| {
            let mut hello = ClientHello {
                server_name,
                alpn,
                ex_data: &ex,
                new_context: None,
            };
            cb(&mut hello)?;
            Ok(hello.new_context.map(|ctx| {
                let config = ctx.config();
                let switch = dtls::Switched {
                    alpn_protocols: alpn_protocols(&own_alpn, &config),
                    alpn_select: alpn_select(&ctx, &ex),
                    config,
                };
                *switched.lock().expect("context slot") = Some(ctx);
                switch
            }))
        })
    }

    /// Takes on the context the servername callback chose, as the TLS path does.
    fn adopt_switched_context(&mut self) {
        let switched = self.dgram().switched.lock().expect("context slot").take();
        if let Some(ctx) = switched {
            self.config = ctx.config();
            self.context = ctx;
        }
    }

    pub(super) fn dtls_handshake(&mut self) -> Result<()> {
        self.dtls_engine()?;
        let was_done = self.is_handshake_done();
        let result = loop {
            if self.is_handshake_done() {
                break Ok(());
            }
            let step = self.dgram().step();
            self.adopt_switched_context();
            if let Err(e) = step {
                break Err(e);
            }
        };
        self.report_handshake_exit(was_done, &result);
        result
    }

    pub(super) fn dtls_send(&mut self, data: &[u8]) -> Result<usize> {
        self.dtls_handshake()?;
        if self.shutdown & SSL_SENT_SHUTDOWN != 0 {
            return Err(Error::ProtocolIsShutdown);
        }
        let dgram = self.dgram();
        dgram.engine.as_mut().expect("engine exists").send(data)?;
        dgram.flush()?;
        Ok(data.len())
    }

    /// Receives one application datagram (truncated to `buf`).
    pub(super) fn dtls_recv(&mut self, buf: &mut [u8], peek: bool) -> Result<usize> {
        self.dtls_handshake()?;
        loop {
            let dgram = self.dgram();
            let engine = dgram.engine.as_mut().expect("engine exists");
            if let Some(d) = engine.recv() {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                if peek {
                    self.peeked.push(&d);
                }
                return Ok(n);
            }
            if engine.peer_closed() {
                self.shutdown |= SSL_RECEIVED_SHUTDOWN;
                return Err(Error::ZeroReturn);
            }
            dgram.step()?;
        }
    }

    pub(super) fn dtls_close(&mut self) -> Result<bool> {
        if !self.is_handshake_done() {
            return Err(Error::WrongState("shutdown while in init"));
        }
        if self.shutdown & SSL_SENT_SHUTDOWN == 0 {
            self.shutdown |= SSL_SENT_SHUTDOWN;
            let dgram = self.dgram();
            dgram.engine.as_mut().expect("engine exists").close()?;
            dgram.flush()?;
            self.info(SSL_CB_WRITE_ALERT, 1 << 8);
        }
        let dgram = self.dgram();
        if dgram.engine.as_ref().is_some_and(DtlsEngine::peer_closed) {
            self.shutdown |= SSL_RECEIVED_SHUTDOWN;
        }
        Ok(self.shutdown & SSL_RECEIVED_SHUTDOWN != 0)
    }

    pub(super) fn dtls_bio_write(&mut self, datagram: &[u8]) -> Result<usize> {
        let dgram = self.dgram();
        if dgram.socket.is_some() {
            return Err(Error::WrongState("bio_write needs a memory BIO connection"));
        }
        dgram.incoming.push_back(datagram.to_vec());
        Ok(datagram.len())
    }

    /// Hands the next datagram to `out` (which cuts it to its room).
    pub(super) fn dtls_bio_read(&mut self, out: &mut impl super::Sink) -> Result<usize> {
        let dgram = self.dgram();
        if dgram.socket.is_some() {
            return Err(Error::WrongState("bio_read needs a memory BIO connection"));
        }
        dgram.flush()?;
        let mut datagram = dgram.outgoing.pop_front().ok_or(Error::WantRead)?;
        // OpenSSL's memory BIO hands out every byte pending: the whole datagrams queued
        // after this one join it while they fit the caller's buffer and the path MTU (a
        // datagram may carry several records, RFC 6347 §4.1.1, RFC 9147 §4), so that what
        // the engine sent together after a handshake (an ACK, a ticket, the first data)
        // leaves in one read, as programs written for OpenSSL expect.
        let limit = out.room().min(dgram.path_mtu());
        while let Some(next) = dgram.outgoing.front() {
            if datagram.len() + next.len() > limit {
                break;
            }
            datagram.extend_from_slice(next);
            dgram.outgoing.pop_front();
        }
        out.datagram(datagram);
        Ok(out.taken())
    }

    pub(super) fn dtls_bio_shutdown(&mut self) {
        self.dgram().eof = true;
    }

    /// Whether [`Connection::recv`] on a DTLS connection whose handshake is done would report
    /// something without reading the transport: an application datagram already decrypted (a
    /// datagram may carry several records, RFC 6347 §4.1.1, RFC 9147 §4; a read hands out the
    /// first and keeps the others), a peeked one, or the end (the peer's close_notify; a memory
    /// BIO's end of input with nothing queued). For a caller that waits for the transport to be
    /// readable before reading: it must not wait while this holds. Datagrams given to
    /// [`Connection::bio_write`] and not yet processed are not looked into (they may hold no
    /// data). Not a DTLS connection, or before the handshake: false.
    pub fn dtls_recv_ready(&self) -> bool {
        let Some(d) = self.dgram.as_ref().filter(|_| self.is_handshake_done()) else {
            return false;
        };
        let held = d
            .engine
            .as_ref()
            .is_some_and(|e| e.has_received() || e.peer_closed());
        let ended = d.eof && d.socket.is_none() && d.incoming.is_empty();
        held || ended || !self.peeked.is_empty()
    }

    /// Time left until the retransmission timer fires (`DTLSv1_get_timeout`); None when no
    /// timer runs. Not a DTLS connection: None.
    pub fn dtls_get_timeout(&self) -> Option<Duration> {
        let deadline = self.dgram.as_ref()?.engine.as_ref()?.next_timeout()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Runs the retransmission timer if due (`DTLSv1_handle_timeout`); true when a flight was
    /// sent again.
    pub fn dtls_handle_timeout(&mut self) -> Result<bool> {
        match self.dgram.as_mut() {
            Some(d) => d.handle_timeout(),
            None => Err(Error::WrongState(
                "DTLSv1_handle_timeout needs a DTLS connection",
            )),
        }
    }

    /// Answers ClientHellos statelessly until one carries a valid cookie (`DTLSv1_listen`):
    /// `WantRead` while waiting (a HelloVerifyRequest may be waiting in `bio_read`); Ok once
    /// a verified ClientHello is queued for the handshake.
    pub fn dtls_listen(&mut self) -> Result<()> {
        if self.dgram.is_none() || self.role == Some(Role::Client) {
            return Err(Error::WrongState("DTLSv1_listen is for DTLS servers"));
        }
        self.role = Some(Role::Server);
        let provider = self.context.cookie_provider(self.ex_data.clone());
        let config = self.config.clone();
        let dgram = self.dgram();
        let peer = dgram
            .socket
            .as_ref()
            .and_then(|s| s.peer_addr().ok())
            .or(dgram.peer_addr);
        loop {
            let Some(d) = dgram.next_datagram()? else {
                return Err(Error::WantRead);
            };
            let now = Instant::now();
            // A DTLS 1.3 ClientHello gets a stateless HelloRetryRequest, any other a
            // HelloVerifyRequest.
            let outcome = dtls::listen13(&config, provider.clone(), peer, &d, now)
                .unwrap_or_else(|| dtls::cookie::listen(provider.as_ref(), peer, &d, now));
            match outcome {
                ListenOutcome::Drop => {}
                ListenOutcome::HelloVerifyRequest(reply) => match &dgram.socket {
                    Some(s) => {
                        s.send(&reply)
                            .map_err(|e| Error::from_transport(e, Error::WantWrite))?;
                    }
                    None => dgram.outgoing.push_back(reply),
                },
                ListenOutcome::Verified => {
                    dgram.incoming.push_front(d);
                    return Ok(());
                }
            }
        }
    }

    /// Checks one datagram from `peer` against `context`'s cookies without any connection or
    /// state: a server reading one socket for many peers calls it for every datagram from a
    /// peer it has no association with, answers a HelloVerifyRequest, and makes a server
    /// connection only once the ClientHello is `Verified` (RFC 6347 §4.2.1). The connection
    /// made then takes that datagram as its first and does not check the cookie again.
    pub fn dtls_stateless_listen(
        context: &crate::Context,
        peer: std::net::SocketAddr,
        datagram: &[u8],
    ) -> ListenOutcome {
        let provider = context.cookie_provider(Arc::default());
        let now = Instant::now();
        if let Some(outcome) = dtls::listen13(
            &context.config(),
            provider.clone(),
            Some(peer),
            datagram,
            now,
        ) {
            return outcome;
        }
        dtls::cookie::listen(provider.as_ref(), Some(peer), datagram, now)
    }

    /// Server: after [`Error::PeerRestarted`], the new ClientHello datagram that ended the
    /// association (RFC 6347 §4.2.8), once. Hand it to a new server connection with
    /// `bio_write` (over a memory BIO) to serve the restarted client.
    pub fn dtls_take_restart_hello(&mut self) -> Option<Vec<u8>> {
        self.dgram.as_mut()?.engine.as_mut()?.take_restart_hello()
    }

    /// Tells a DTLS connection over a memory BIO its peer's address, which a server binds
    /// its cookies to (as a stateless listener did before the connection existed).
    pub fn set_dtls_peer_address(&mut self, peer: Option<std::net::SocketAddr>) {
        if let Some(dgram) = self.dgram.as_mut() {
            dgram.peer_addr = peer;
        }
    }

    /// Sets the path MTU (`set_ciphertext_mtu`): the largest datagram DTLS may send.
    pub fn set_ciphertext_mtu(&mut self, mtu: usize) -> Result<()> {
        let Some(dgram) = self.dgram.as_mut() else {
            return Err(Error::WrongState("an MTU applies to DTLS connections"));
        };
        match dgram.engine.as_mut() {
            Some(e) => e.set_mtu(mtu),
            None if mtu >= 128 => {
                dgram.mtu = mtu;
                Ok(())
            }
            None => Err(Error::InvalidArgument(format!(
                "MTU {mtu} is below DTLS's minimum of 128"
            ))),
        }
    }

    /// The largest application datagram that fits the MTU (`get_cleartext_mtu`).
    pub fn get_cleartext_mtu(&self) -> Result<usize> {
        match self.dgram.as_ref().and_then(|d| d.engine.as_ref()) {
            Some(e) => Ok(e.cleartext_mtu()),
            None => Err(Error::WrongState(
                "the cleartext MTU is known once the handshake started",
            )),
        }
    }

    /// One of the engine's Finished messages; the TLS engine does not expose them.
    pub(super) fn dtls_finished(
        &self,
        which: fn(&DtlsEngine) -> Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        let Some(dgram) = &self.dgram else {
            return Err(Error::NotSupported(
                "the TLS engine does not expose Finished messages",
            ));
        };
        Ok(dgram.engine.as_ref().and_then(which).map(<[u8]>::to_vec))
    }

    /// The SRTP profile the handshake selected ("SRTP_AES128_CM_SHA1_80"...).
    pub fn get_selected_srtp_profile(&self) -> Option<&'static str> {
        Some(
            self.dgram
                .as_ref()?
                .engine
                .as_ref()?
                .selected_srtp_profile()?
                .name(),
        )
    }

    /// Whether a datagram handled since the last call may move the peer's address: it carried
    /// our connection ID and a record newer than all before it (RFC 9146 §6, RFC 9147 §9).
    /// Clears it.
    pub fn dtls_take_peer_may_move(&mut self) -> bool {
        self.dgram
            .as_mut()
            .is_some_and(|d| std::mem::take(&mut d.peer_may_move))
    }

    /// Uses `cid` as our connection ID instead of a random one of the context's length (a
    /// server that routes datagrams by CID picks them). Before the handshake.
    pub fn set_dtls_connection_id(&mut self, cid: Vec<u8>) {
        if let Some(dgram) = self.dgram.as_mut() {
            dgram.connection_id = Some(cid);
        }
    }

    /// Sends a DTLS 1.3 KeyUpdate (`SSL_key_update`); `request_peer` asks the peer to update
    /// its keys too (`SSL_KEY_UPDATE_REQUESTED`).
    pub fn dtls_key_update(&mut self, request_peer: bool) -> Result<()> {
        let Some(dgram) = self.dgram.as_mut() else {
            return Err(Error::WrongState(
                "KeyUpdate applies to DTLS connections here",
            ));
        };
        let engine = dgram
            .engine
            .as_mut()
            .ok_or(Error::WrongState("the DTLS handshake has not started"))?;
        engine.key_update(request_peer, Instant::now())?;
        dgram.flush()
    }

    /// The DTLS connection IDs negotiated (RFC 9146): the one the peer's records carry to
    /// us and the one ours carry to the peer, empty where none; None without a DTLS engine.
    pub fn dtls_connection_ids(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let engine = self.dgram.as_ref()?.engine.as_ref()?;
        let (ours, peers) = engine.connection_ids();
        Some((ours.to_vec(), peers.to_vec()))
    }
}

/// A random connection ID of `len` bytes (RFC 9146 §3 leaves the choice to the receiver:
/// random ones are hard for an on-path party to link across address changes).
fn random_cid(len: usize) -> Result<Vec<u8>> {
    let mut cid = vec![0; len];
    aws_lc_rs::rand::fill(&mut cid)
        .map_err(|_| crate::Error::InvalidArgument("no randomness for a connection ID".into()))?;
    Ok(cid)
}
