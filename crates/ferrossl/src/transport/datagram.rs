//! Datagram transports (GIO's `DatagramBased`): send and receive whole datagrams with a
//! [`Timeout`] per call — block, fail at once ("would block"), or wait until a deadline — and
//! a [`Cancellable`] another thread can trigger to stop a blocked call promptly.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long one send or receive may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Wait as long as it takes (or until cancelled).
    Block,
    /// Do not wait: fail with `WouldBlock` when nothing can be done now.
    NonBlocking,
    /// Wait until this instant, then fail with `TimedOut`.
    Deadline(Instant),
}

impl Timeout {
    /// A deadline `d` from now.
    pub fn after(d: Duration) -> Self {
        Timeout::Deadline(Instant::now() + d)
    }

    /// How long to wait before looking at the cancellable again: None for a non-blocking
    /// call, `TimedOut` once the deadline has passed.
    pub(crate) fn slice(self) -> io::Result<Option<Duration>> {
        match self {
            Timeout::NonBlocking => Ok(None),
            Timeout::Block => Ok(Some(POLL_SLICE)),
            Timeout::Deadline(d) => match d.saturating_duration_since(Instant::now()) {
                left if left.is_zero() => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "datagram operation timed out",
                )),
                left => Ok(Some(left.min(POLL_SLICE))),
            },
        }
    }

    /// The earlier of two timeouts.
    pub fn min(self, other: Timeout) -> Timeout {
        match (self, other) {
            (Timeout::NonBlocking, _) | (_, Timeout::NonBlocking) => Timeout::NonBlocking,
            (Timeout::Block, t) | (t, Timeout::Block) => t,
            (Timeout::Deadline(a), Timeout::Deadline(b)) => Timeout::Deadline(a.min(b)),
        }
    }
}

/// Lets another thread stop a blocking call; the call fails with `Interrupted` within one
/// polling slice (about 20 ms).
#[derive(Clone, Debug, Default)]
pub struct Cancellable {
    cancelled: Arc<AtomicBool>,
}

impl Cancellable {
    /// A fresh, untriggered cancellable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers it: blocked calls return `Interrupted`.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Whether it was triggered.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Untriggers it, for reuse.
    pub fn reset(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
    }

    pub(crate) fn check(cancellable: Option<&Cancellable>) -> io::Result<()> {
        match cancellable {
            Some(c) if c.is_cancelled() => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "operation was cancelled",
            )),
            _ => Ok(()),
        }
    }
}

/// The slice a blocking call waits between looks at its cancellable.
const POLL_SLICE: Duration = Duration::from_millis(20);

/// A transport of whole datagrams.
pub trait DatagramBased: Send {
    /// Sends one datagram.
    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize>;

    /// Receives one datagram into `buf` (a longer one is truncated, as UDP does).
    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize>;

    /// The peer's address, when the transport knows it: a server binds its cookies to it.
    fn peer_address(&self) -> Option<SocketAddr> {
        None
    }

    /// Where the last datagram received came from, when that was not the peer's address: a
    /// datagram taken in because it may carry a connection ID (RFC 9146 §6).
    fn last_source(&self) -> Option<SocketAddr> {
        None
    }

    /// The peer now sends from `address` (a datagram from there carried our connection ID
    /// and a record newer than all before it): send there from now on.
    fn move_peer(&self, _address: SocketAddr) {}
}

/// Whether `datagram` could be a record carrying a connection ID: a DTLS 1.2 tls12_cid
/// record (RFC 9146 §4) or a DTLS 1.3 unified header with its C bit (RFC 9147 §4). Only
/// such a datagram from an unknown address is worth the engine's look.
pub fn may_carry_connection_id(datagram: &[u8]) -> bool {
    match datagram.first() {
        Some(25) => true,
        Some(&first) => first & 0b1111_0000 == 0b0011_0000,
        None => false,
    }
}

/// A UDP socket: connected, or sending to a fixed peer and accepting datagrams only from it
/// (and, from elsewhere, those that may carry a connection ID: the peer may have moved).
#[derive(Debug)]
pub struct UdpDatagrams {
    socket: UdpSocket,
    peer: Mutex<Option<SocketAddr>>,
    last_source: Mutex<Option<SocketAddr>>,
}

impl UdpDatagrams {
    /// Over a connected UDP socket.
    pub fn connected(socket: UdpSocket) -> io::Result<Self> {
        socket.peer_addr()?;
        Ok(Self {
            socket,
            peer: Mutex::new(None),
            last_source: Mutex::new(None),
        })
    }

    /// Over an unconnected socket, talking to `peer` only.
    pub fn with_peer(socket: UdpSocket, peer: SocketAddr) -> Self {
        Self {
            socket,
            peer: Mutex::new(Some(peer)),
            last_source: Mutex::new(None),
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        *self.peer.lock().expect("peer lock")
    }

    /// The socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Runs `op` with the socket's timeout set for one slice at a time until it succeeds, the
    /// timeout passes or `cancellable` is triggered.
    fn wait<T>(
        &self,
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
        mut op: impl FnMut(&UdpSocket) -> io::Result<Option<T>>,
    ) -> io::Result<T> {
        wait_in_slices(timeout, cancellable, |slice| {
            self.socket.set_nonblocking(slice.is_none())?;
            self.socket.set_read_timeout(slice)?;
            self.socket.set_write_timeout(slice)?;
            op(&self.socket)
        })
    }
}

/// The waiting loop of a socket-backed [`DatagramBased`]: calls `attempt` with the longest
/// wait it may make (None: must not wait) until it returns a value, the timeout passes
/// (`TimedOut`) or `cancellable` is triggered (`Interrupted`). `attempt` returns `Ok(None)`
/// for a datagram to ignore and `WouldBlock` for a wait that ended empty; a non-blocking
/// call returns that `WouldBlock`. For transports over sockets this crate does not own.
pub fn wait_in_slices<T>(
    timeout: Timeout,
    cancellable: Option<&Cancellable>,
    mut attempt: impl FnMut(Option<Duration>) -> io::Result<Option<T>>,
) -> io::Result<T> {
    loop {
        Cancellable::check(cancellable)?;
        let slice = timeout.slice()?;
        match attempt(slice) {
            Ok(Some(v)) => return Ok(v),
            // A datagram from somebody else: not ours, keep waiting.
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && slice.is_some() => {}
            Err(e) => return Err(e),
        }
    }
}

impl DatagramBased for UdpDatagrams {
    fn send_datagram(
        &self,
        datagram: &[u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        self.wait(timeout, cancellable, |s| {
            match self.peer() {
                Some(peer) => s.send_to(datagram, peer),
                None => s.send(datagram),
            }
            .map(Some)
        })
    }

    fn peer_address(&self) -> Option<SocketAddr> {
        self.peer().or_else(|| self.socket.peer_addr().ok())
    }

    fn last_source(&self) -> Option<SocketAddr> {
        *self.last_source.lock().expect("source lock")
    }

    fn move_peer(&self, address: SocketAddr) {
        let mut peer = self.peer.lock().expect("peer lock");
        if peer.is_some() {
            *peer = Some(address);
        }
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        self.wait(timeout, cancellable, |s| match self.peer() {
            Some(peer) => {
                let (n, from) = s.recv_from(buf)?;
                let moved = from != peer;
                let take = !moved || may_carry_connection_id(&buf[..n]);
                if take {
                    *self.last_source.lock().expect("source lock") = moved.then_some(from);
                }
                Ok(take.then_some(n))
            }
            None => s.recv(buf).map(Some),
        })
    }
}

/// A queue of datagrams one side pushes and a [`DatagramBased`] end pops, with the waiting
/// rules of [`Timeout`] and [`Cancellable`]. Closing it ends the popping side: once empty, a
/// receive fails with `ConnectionAborted`.
#[derive(Debug, Default)]
pub struct DatagramQueue {
    state: Mutex<QueueState>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    /// Each datagram, with where it came from when that is worth telling.
    datagrams: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    closed: bool,
}

impl DatagramQueue {
    /// Adds a datagram; false (and dropped) once the queue is closed.
    pub fn push(&self, datagram: Vec<u8>) -> bool {
        self.push_from(datagram, None)
    }

    /// Adds a datagram that came from `source` (an address other than the one expected).
    pub fn push_from(&self, datagram: Vec<u8>, source: Option<SocketAddr>) -> bool {
        let mut state = self.state.lock().expect("queue lock");
        if state.closed {
            return false;
        }
        state.datagrams.push_back((datagram, source));
        self.arrived.notify_all();
        true
    }

    /// Closes the queue: what is queued can still be read, then receiving fails.
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.arrived.notify_all();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("queue lock").closed
    }

    /// How many datagrams wait.
    pub fn len(&self) -> usize {
        self.state.lock().expect("queue lock").datagrams.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next datagram into `buf` (truncated as UDP does), waiting per `timeout`.
    pub fn pop(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        self.pop_from(buf, timeout, cancellable).map(|(n, _)| n)
    }

    /// As [`DatagramQueue::pop`], with the source the datagram was pushed with.
    pub fn pop_from(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<(usize, Option<SocketAddr>)> {
        let mut state = self.state.lock().expect("queue lock");
        loop {
            Cancellable::check(cancellable)?;
            if let Some((d, source)) = state.datagrams.pop_front() {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                return Ok((n, source));
            }
            if state.closed {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the datagram queue was closed",
                ));
            }
            let Some(slice) = timeout.slice()? else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            state = self
                .arrived
                .wait_timeout(state, slice)
                .expect("queue lock")
                .0;
        }
    }
}

/// One end of an in-memory datagram pair (for tests and in-process peers).
#[derive(Clone, Debug)]
pub struct MemoryDatagrams {
    inbox: Arc<DatagramQueue>,
    outbox: Arc<DatagramQueue>,
}

impl MemoryDatagrams {
    /// Two connected ends.
    pub fn pair() -> (Self, Self) {
        let (a, b) = (
            Arc::new(DatagramQueue::default()),
            Arc::new(DatagramQueue::default()),
        );
        (
            Self {
                inbox: a.clone(),
                outbox: b.clone(),
            },
            Self {
                inbox: b,
                outbox: a,
            },
        )
    }
}

impl DatagramBased for MemoryDatagrams {
    fn send_datagram(
        &self,
        datagram: &[u8],
        _timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        Cancellable::check(cancellable)?;
        self.outbox.push(datagram.to_vec());
        Ok(datagram.len())
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        self.inbox.pop(buf, timeout, cancellable)
    }
}

/// Moves of peers, (old address, new address), as their transports saw them.
pub type PeerMoves = Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>;

/// One peer's share of a UDP socket that many peers use: datagrams to the peer go out
/// through the shared socket; datagrams from it arrive through a queue that whoever reads
/// the socket fills (a demultiplexing server).
#[derive(Debug)]
pub struct PeerDatagrams {
    socket: Arc<UdpSocket>,
    peer: Mutex<SocketAddr>,
    inbox: Arc<DatagramQueue>,
    last_source: Mutex<Option<SocketAddr>>,
    /// Where moves of the peer are reported, for whoever routes by address.
    moves: Option<PeerMoves>,
}

impl PeerDatagrams {
    /// The peer at `peer` on `socket`, its datagrams arriving in `inbox`.
    pub fn new(socket: Arc<UdpSocket>, peer: SocketAddr, inbox: Arc<DatagramQueue>) -> Self {
        Self {
            socket,
            peer: Mutex::new(peer),
            inbox,
            last_source: Mutex::new(None),
            moves: None,
        }
    }

    /// Reports each move of the peer to `moves`.
    pub fn reporting_moves(mut self, moves: PeerMoves) -> Self {
        self.moves = Some(moves);
        self
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        *self.peer.lock().expect("peer lock")
    }

    /// Whether whoever fills the queue gave up on this peer.
    pub fn is_closed(&self) -> bool {
        self.inbox.is_closed()
    }
}

impl DatagramBased for PeerDatagrams {
    fn peer_address(&self) -> Option<SocketAddr> {
        Some(self.peer_addr())
    }

    fn last_source(&self) -> Option<SocketAddr> {
        *self.last_source.lock().expect("source lock")
    }

    fn move_peer(&self, address: SocketAddr) {
        let old = std::mem::replace(&mut *self.peer.lock().expect("peer lock"), address);
        if let Some(moves) = self.moves.as_ref().filter(|_| old != address) {
            moves.lock().expect("moves lock").push((old, address));
        }
    }

    fn send_datagram(
        &self,
        datagram: &[u8],
        _timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        // The shared socket stays blocking; a UDP send does not wait for the peer.
        Cancellable::check(cancellable)?;
        self.socket.send_to(datagram, self.peer_addr())
    }

    fn receive_datagram(
        &self,
        buf: &mut [u8],
        timeout: Timeout,
        cancellable: Option<&Cancellable>,
    ) -> io::Result<usize> {
        let popped = self.inbox.pop_from(buf, timeout, cancellable);
        if let Ok((_, source)) = &popped {
            *self.last_source.lock().expect("source lock") = *source;
        }
        popped.map(|(n, _)| n).map_err(|e| {
            if e.kind() == io::ErrorKind::ConnectionAborted {
                io::Error::new(
                    e.kind(),
                    "the server ended this association (idle, restarted by its peer, or closed)",
                )
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_pair_timeouts_and_cancel() {
        let (a, b) = MemoryDatagrams::pair();
        a.send_datagram(b"one", Timeout::Block, None).unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(
            b.receive_datagram(&mut buf, Timeout::NonBlocking, None)
                .unwrap(),
            2,
            "truncated"
        );
        assert_eq!(
            b.receive_datagram(&mut buf, Timeout::NonBlocking, None)
                .unwrap_err()
                .kind(),
            io::ErrorKind::WouldBlock
        );
        let start = Instant::now();
        let err = b
            .receive_datagram(&mut buf, Timeout::after(Duration::from_millis(50)), None)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50));
        let cancel = Cancellable::new();
        let trigger = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            trigger.cancel();
        });
        let start = Instant::now();
        let err = b
            .receive_datagram(&mut buf, Timeout::Block, Some(&cancel))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        // A loose bound: a loaded machine may delay the cancelling thread.
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        t.join().unwrap();
    }

    #[test]
    fn wait_in_slices_bounds_waits_and_stops_on_cancel() {
        let mut slices = Vec::new();
        let err = wait_in_slices::<()>(Timeout::NonBlocking, None, |slice| {
            slices.push(slice);
            Err(io::ErrorKind::WouldBlock.into())
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(
            slices,
            [None],
            "a non-blocking call tries once, without waiting"
        );
        let mut tries = 0;
        let got = wait_in_slices(Timeout::Block, None, |slice| {
            assert!(slice.is_some_and(|s| s <= POLL_SLICE));
            tries += 1;
            match tries {
                1 => Err(io::ErrorKind::WouldBlock.into()),
                2 => Ok(None),
                _ => Ok(Some(tries)),
            }
        })
        .unwrap();
        assert_eq!(
            got, 3,
            "an empty wait and an ignored datagram both go round again"
        );
        let err = wait_in_slices::<()>(Timeout::after(Duration::from_millis(30)), None, |slice| {
            std::thread::sleep(slice.unwrap());
            Err(io::ErrorKind::WouldBlock.into())
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let cancel = Cancellable::new();
        let err = wait_in_slices::<()>(Timeout::Block, Some(&cancel), |_| {
            cancel.cancel();
            Err(io::ErrorKind::WouldBlock.into())
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        let err = wait_in_slices::<()>(Timeout::Block, None, |_| {
            Err(io::ErrorKind::ConnectionRefused.into())
        })
        .unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::ConnectionRefused,
            "other errors end the wait"
        );
    }

    #[test]
    fn udp_with_peer_ignores_strangers() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let a = UdpDatagrams::with_peer(a, b_addr);
        stranger.send_to(b"not for you", a_addr).unwrap();
        b.send_to(b"hello", a_addr).unwrap();
        let mut buf = [0u8; 64];
        let n = a
            .receive_datagram(&mut buf, Timeout::after(Duration::from_secs(2)), None)
            .unwrap();
        assert_eq!(&buf[..n], b"hello");
        b.connect(a_addr).unwrap();
        let b = UdpDatagrams::connected(b).unwrap();
        a.send_datagram(b"back", Timeout::Block, None).unwrap();
        let n = b
            .receive_datagram(&mut buf, Timeout::after(Duration::from_secs(2)), None)
            .unwrap();
        assert_eq!(&buf[..n], b"back");
        assert_eq!(
            b.receive_datagram(&mut buf, Timeout::NonBlocking, None)
                .unwrap_err()
                .kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
