//! A DTLS server for many clients on one UDP socket.
//!
//! One thread reads the socket and sorts datagrams by their source address. A datagram from
//! an address with an association goes to that association's queue. Any other datagram gets
//! the stateless cookie check (RFC 6347 §4.2.1): a HelloVerifyRequest goes back and nothing
//! is kept. Only a ClientHello whose cookie proves the sender can receive at its address
//! creates an association, within a bound on half-open ones. [`DtlsServer::accept`] gives
//! out a [`DtlsConnection`] for each; associations that fall silent expire.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::connection::{Connection, ListenOutcome};
use crate::context::Context;
use crate::transport::{
    may_carry_connection_id, Cancellable, DatagramQueue, PeerDatagrams, PeerMoves, Timeout,
};
use crate::x509::{PKey, X509Store, X509};
use crate::Method;

use super::{
    io_error, AcceptCertificate, AuthenticationMode, DtlsConnection, GioError, GioResult, Settings,
    TlsInteraction,
};

/// The bounds a [`DtlsServer`] keeps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Associations whose handshake has not finished (accepted or not); verified
    /// ClientHellos beyond this are dropped (the client retransmits later).
    pub max_half_open: usize,
    /// Associations in all.
    pub max_associations: usize,
    /// How long a half-open association may take to finish its handshake.
    pub handshake_timeout: Duration,
    /// How long an established association may stay silent before it is forgotten.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_half_open: 256,
            max_associations: 4096,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// What the server did with the datagrams it read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// HelloVerifyRequests sent (each answered a ClientHello statelessly).
    pub hello_verify_requests: u64,
    /// Datagrams dropped without an answer (not a ClientHello, or unusable).
    pub dropped: u64,
    /// Verified ClientHellos refused because a limit was reached.
    pub refused: u64,
    /// Associations made.
    pub associations_made: u64,
    /// Associations forgotten (idle, unfinished, restarted, or their connection dropped).
    pub expired: u64,
}

/// A DTLS server on one UDP socket, for many clients.
pub struct DtlsServer {
    shared: Arc<Shared>,
    router: Option<thread::JoinHandle<()>>,
}

struct Shared {
    socket: Arc<UdpSocket>,
    config: Mutex<ServerConfig>,
    peers: Mutex<HashMap<SocketAddr, Peer>>,
    /// Peers that moved, reported by their connections.
    moves: PeerMoves,
    backlog: Mutex<VecDeque<DtlsConnection<PeerDatagrams>>>,
    arrived: Condvar,
    stop: AtomicBool,
    stats: Counters,
}

/// The settings each accepted connection starts with, and the context built from them.
struct ServerConfig {
    settings: Settings,
    context: Option<Context>,
    limits: ServerLimits,
}

#[derive(Default)]
struct Counters {
    hello_verify_requests: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    associations_made: AtomicU64,
    expired: AtomicU64,
}

/// One client's association.
struct Peer {
    inbox: Arc<DatagramQueue>,
    established: Arc<AtomicBool>,
    created: Instant,
    last_seen: Instant,
    /// The verified ClientHello that made it: a late copy of it is no restart.
    hello: Vec<u8>,
    /// The connection ID we gave it, which its records carry once negotiated.
    cid: Option<Vec<u8>>,
}

impl Peer {
    fn is_established(&self) -> bool {
        self.established.load(Ordering::Acquire)
    }
}

/// How long the reading thread waits on the socket before it looks at the stop flag.
const READ_SLICE: Duration = Duration::from_millis(50);
/// How often associations are checked for expiry.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// The socket receive buffer the server asks for.
const RECEIVE_BUFFER: usize = 4 << 20;
/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

impl DtlsServer {
    /// A server on a socket bound to `addr`, presenting `certificate`.
    pub fn bind(addr: impl ToSocketAddrs, certificate: X509, key: PKey) -> GioResult<Self> {
        Self::new(UdpSocket::bind(addr)?, certificate, key)
    }

    /// A server on an unconnected UDP socket; it reads the socket from now on.
    pub fn new(socket: UdpSocket, certificate: X509, key: PKey) -> GioResult<Self> {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(READ_SLICE))?;
        // Room for bursts from many clients while the reading thread waits for a core (the
        // kernel may cap it lower; that is only a smaller buffer).
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER);
        let mut settings = Settings::new(Method::DtlsServer);
        settings.identity = Some((vec![certificate], key));
        let shared = Arc::new(Shared {
            socket: Arc::new(socket),
            config: Mutex::new(ServerConfig {
                settings,
                context: None,
                limits: ServerLimits::default(),
            }),
            peers: Mutex::default(),
            moves: Arc::default(),
            backlog: Mutex::default(),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
            stats: Counters::default(),
        });
        let reader = shared.clone();
        let router = thread::Builder::new()
            .name("dtls-server".into())
            .spawn(move || reader.route())?;
        Ok(Self {
            shared,
            router: Some(router),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> GioResult<SocketAddr> {
        Ok(self.shared.socket.local_addr()?)
    }

    /// Changes the settings that connections accepted from now on start with.
    fn configure(&self, change: impl FnOnce(&mut Settings) -> GioResult<()>) -> GioResult<()> {
        let mut config = self.shared.config();
        change(&mut config.settings)?;
        config.context = None;
        Ok(())
    }

    /// The client-certificate policy.
    pub fn set_authentication_mode(&self, mode: AuthenticationMode) -> GioResult<()> {
        self.configure(|s| {
            s.set_authentication_mode(mode);
            Ok(())
        })
    }

    /// The trust anchors for client certificates (`None`: every one is `UNKNOWN_CA`).
    pub fn set_database(&self, database: Option<&X509Store>) -> GioResult<()> {
        self.configure(|s| {
            s.database = database.cloned();
            Ok(())
        })
    }

    /// The ALPN protocols the server accepts, in its order of preference.
    pub fn set_advertised_protocols(&self, protocols: Option<&[&str]>) -> GioResult<()> {
        self.configure(|s| s.set_advertised(protocols))
    }

    /// The accept-certificate handler each connection starts with.
    pub fn set_accept_certificate_handler(&self, handler: AcceptCertificate) -> GioResult<()> {
        self.configure(|s| {
            s.handler = Some(handler);
            Ok(())
        })
    }

    /// Whether connections require the peer's close_notify (default true).
    pub fn set_require_close_notify(&self, require: bool) -> GioResult<()> {
        self.configure(|s| {
            s.require_close_notify = require;
            Ok(())
        })
    }

    /// The interaction asked for the password of an encrypted key.
    pub fn set_interaction(&self, interaction: Option<Arc<dyn TlsInteraction>>) -> GioResult<()> {
        self.configure(|s| {
            s.interaction = interaction;
            Ok(())
        })
    }

    /// Replaces the certificate chain and key from PEM (an encrypted key asks the
    /// interaction).
    pub fn set_certificate_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> GioResult<()> {
        self.configure(|s| s.set_identity_pem(cert_pem, key_pem))
    }

    /// The DTLS-SRTP profiles the server accepts (see [`DtlsConnection::set_srtp_profiles`]).
    pub fn set_srtp_profiles(&self, profiles: Option<&str>) -> GioResult<()> {
        self.configure(|s| s.set_srtp_profiles(profiles))
    }

    /// Negotiates DTLS connection IDs (see [`DtlsConnection::set_connection_id_length`]).
    pub fn set_connection_id_length(&self, length: Option<u8>) -> GioResult<()> {
        self.configure(|s| {
            s.connection_id_length = length;
            Ok(())
        })
    }

    /// Bounds the DTLS versions (see [`DtlsConnection::set_protocol_versions`]).
    pub fn set_protocol_versions(&self, min: i32, max: i32) -> GioResult<()> {
        self.configure(|s| {
            s.versions = (min, max);
            Ok(())
        })
    }

    /// The bounds on associations.
    pub fn set_limits(&self, limits: ServerLimits) {
        self.shared.config().limits = limits;
    }

    /// The next new association, waiting per `timeout`. Run its handshake (or let the first
    /// receive do it) on a thread of its own: the server keeps sorting datagrams meanwhile.
    pub fn accept(
        &self,
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> GioResult<DtlsConnection<PeerDatagrams>> {
        let mut backlog = self.shared.backlog.lock().expect("backlog lock");
        loop {
            Cancellable::check(cancellable).map_err(io_error)?;
            // Associations that expired while waiting here are skipped.
            while let Some(conn) = backlog.pop_front() {
                if !conn.base().is_closed() {
                    return Ok(conn);
                }
            }
            let slice = timeout.slice().map_err(io_error)?;
            let slice = slice.ok_or(GioError::WouldBlock)?;
            backlog = self
                .shared
                .arrived
                .wait_timeout(backlog, slice)
                .expect("backlog lock")
                .0;
        }
    }

    /// How many associations exist (half-open ones included).
    pub fn association_count(&self) -> usize {
        self.shared.peers().len()
    }

    /// How many associations have not finished their handshake.
    pub fn half_open_count(&self) -> usize {
        half_open(&self.shared.peers())
    }

    /// What the server did so far.
    pub fn stats(&self) -> ServerStats {
        let c = &self.shared.stats;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        ServerStats {
            hello_verify_requests: get(&c.hello_verify_requests),
            dropped: get(&c.dropped),
            refused: get(&c.refused),
            associations_made: get(&c.associations_made),
            expired: get(&c.expired),
        }
    }
}

impl Drop for DtlsServer {
    /// Stops reading the socket; connections already accepted then see their association
    /// end.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(router) = self.router.take() {
            let _ = router.join();
        }
        for peer in self.shared.peers().values() {
            peer.inbox.close();
        }
    }
}

fn half_open(peers: &HashMap<SocketAddr, Peer>) -> usize {
    peers.values().filter(|p| !p.is_established()).count()
}

/// Whether `datagram` starts with an epoch-0 handshake record holding a ClientHello: the
/// only thing that may open (or, from a known address, restart) an association.
fn starts_client_hello(datagram: &[u8]) -> bool {
    const HANDSHAKE: u8 = 22;
    const CLIENT_HELLO: u8 = 1;
    // RFC 6347 §4.1: type, version, epoch, sequence number (6), length; then the
    // handshake header's msg_type.
    datagram.len() > 13
        && datagram[0] == HANDSHAKE
        && datagram[3..5] == [0, 0]
        && datagram[13] == CLIENT_HELLO
}

/// The connection ID of `len` bytes a record at the start of `datagram` carries: after the
/// 11-byte header start of a tls12_cid record (RFC 9146 §4), or after a unified header's first
/// byte when its C bit is set (RFC 9147 §4).
fn connection_id_of(datagram: &[u8], len: usize) -> Option<&[u8]> {
    if !may_carry_connection_id(datagram) {
        return None;
    }
    let start = if datagram[0] == 25 { 11 } else { 1 };
    datagram.get(start..start + len)
}

/// A random connection ID no association of `peers` has.
fn unique_cid(peers: &HashMap<SocketAddr, Peer>, len: usize) -> Vec<u8> {
    loop {
        let mut cid = vec![0; len];
        aws_lc_rs::rand::fill(&mut cid).expect("the system random generator works");
        if !peers.values().any(|p| p.cid.as_deref() == Some(&cid[..])) {
            return cid;
        }
    }
}

impl Shared {
    fn config(&self) -> MutexGuard<'_, ServerConfig> {
        self.config.lock().expect("config lock")
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<SocketAddr, Peer>> {
        self.peers.lock().expect("peers lock")
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The reading thread: sorts datagrams until the server is dropped.
    fn route(&self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut swept = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.dispatch(from, &buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                // An ICMP error from an earlier send, reported on this socket: not fatal.
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
            if swept.elapsed() >= SWEEP_EVERY {
                self.expire(Instant::now());
                swept = Instant::now();
            }
        }
    }

    fn dispatch(&self, from: SocketAddr, datagram: &[u8]) {
        let now = Instant::now();
        let mut peers = self.peers();
        self.follow_moves(&mut peers);
        if !peers.contains_key(&from) && self.route_by_cid(&mut peers, from, datagram, now) {
            return;
        }
        if let Some(peer) = peers.get_mut(&from) {
            // RFC 6347 §4.2.8: a new ClientHello on an established association means the
            // client restarted; anything else belongs to the association.
            let restart = peer.is_established()
                && starts_client_hello(datagram)
                && datagram != peer.hello.as_slice();
            if !restart {
                peer.last_seen = now;
                if !peer.inbox.push(datagram.to_vec()) {
                    peers.remove(&from);
                    self.count(&self.stats.expired);
                }
                return;
            }
        }
        let context = match self.context() {
            Some(c) => c,
            None => return self.count(&self.stats.dropped),
        };
        match Connection::dtls_stateless_listen(&context, from, datagram) {
            ListenOutcome::Drop => self.count(&self.stats.dropped),
            ListenOutcome::HelloVerifyRequest(reply) => {
                let _ = self.socket.send_to(&reply, from);
                self.count(&self.stats.hello_verify_requests);
            }
            // The old association (if any) survives until the cookie proves the restart.
            ListenOutcome::Verified => self.admit(&mut peers, from, datagram, now, context),
        }
    }

    /// Re-keys the table for peers whose connection saw them move.
    fn follow_moves(&self, peers: &mut HashMap<SocketAddr, Peer>) {
        for (old, new) in std::mem::take(&mut *self.moves.lock().expect("moves lock")) {
            // An association already at the new address stays; the moved one keeps its old
            // key (and goes on being routed by its CID).
            if peers.contains_key(&new) {
                continue;
            }
            if let Some(peer) = peers.remove(&old) {
                peers.insert(new, peer);
            }
        }
    }

    /// A datagram from an unknown address that carries the connection ID of one of our
    /// associations goes to that association, with its source: if it authenticates as the
    /// newest, the peer moved there (NAT rebinding, RFC 9146 §6, RFC 9147 §9). Returns
    /// whether it was routed.
    fn route_by_cid(
        &self,
        peers: &mut HashMap<SocketAddr, Peer>,
        from: SocketAddr,
        datagram: &[u8],
        now: Instant,
    ) -> bool {
        let Some(cid_len) = self
            .config()
            .settings
            .connection_id_length
            .filter(|n| *n > 0)
        else {
            return false;
        };
        let Some(cid) = connection_id_of(datagram, usize::from(cid_len)) else {
            return false;
        };
        let Some(peer) = peers.values_mut().find(|p| p.cid.as_deref() == Some(cid)) else {
            return false;
        };
        peer.last_seen = now;
        peer.inbox.push_from(datagram.to_vec(), Some(from));
        true
    }

    /// The context connections share, built from the settings when they changed.
    fn context(&self) -> Option<Context> {
        let mut config = self.config();
        if config.context.is_none() {
            config.context = config.settings.context().ok();
        }
        config.context.clone()
    }

    fn admit(
        &self,
        peers: &mut HashMap<SocketAddr, Peer>,
        from: SocketAddr,
        hello: &[u8],
        now: Instant,
        context: Context,
    ) {
        let (settings, limits) = {
            let config = self.config();
            (config.settings.clone(), config.limits)
        };
        let replacing = peers.contains_key(&from);
        if half_open(peers) >= limits.max_half_open
            || (!replacing && peers.len() >= limits.max_associations)
        {
            return self.count(&self.stats.refused);
        }
        let inbox = Arc::new(DatagramQueue::default());
        inbox.push(hello.to_vec());
        let established = Arc::new(AtomicBool::new(false));
        // Our connection IDs are ours to pick: unique ones route the association's datagrams
        // whatever address they come from.
        let cid = settings
            .connection_id_length
            .filter(|n| *n > 0)
            .map(|n| unique_cid(peers, usize::from(n)));
        let peer = Peer {
            inbox: inbox.clone(),
            established: established.clone(),
            created: now,
            last_seen: now,
            hello: hello.to_vec(),
            cid: cid.clone(),
        };
        if let Some(old) = peers.insert(from, peer) {
            old.inbox.close();
            self.count(&self.stats.expired);
        }
        let base = PeerDatagrams::new(self.socket.clone(), from, inbox)
            .reporting_moves(self.moves.clone());
        let mut conn = DtlsConnection::with_settings(base, settings, Some(context));
        if let Some(cid) = cid {
            conn.set_connection_id(cid);
        }
        conn.report_established(established);
        self.backlog.lock().expect("backlog lock").push_back(conn);
        self.arrived.notify_all();
        self.count(&self.stats.associations_made);
    }

    /// Forgets associations whose connection is gone, whose handshake took too long, or
    /// that stayed silent too long; their connections see the end on their next receive.
    fn expire(&self, now: Instant) {
        let limits = self.config().limits;
        let mut peers = self.peers();
        let before = peers.len();
        peers.retain(|_, p| {
            // Only the table holds the queue: the connection was dropped.
            let abandoned = Arc::strong_count(&p.inbox) == 1;
            let stale = if p.is_established() {
                now.duration_since(p.last_seen) > limits.idle_timeout
            } else {
                now.duration_since(p.created) > limits.handshake_timeout
            };
            if abandoned || stale {
                p.inbox.close();
            }
            !(abandoned || stale)
        });
        let gone = (before - peers.len()) as u64;
        self.stats.expired.fetch_add(gone, Ordering::Relaxed);
    }
}
