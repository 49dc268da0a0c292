//! Flights (RFC 6347 §4.2.4): the handshake hands over whole messages and says when a flight
//! is complete; this layer fragments them for the MTU (§4.2.3), packs records into datagrams,
//! keeps the last flight for retransmission with exponential back-off (§4.2.4.1), and
//! reassembles the peer's fragments into messages in message_seq order (§4.2.2).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustls::{ContentType, HandshakeType};

use super::codec::record::{HandshakeHeader, CHANGE_CIPHER_SPEC, HANDSHAKE_HEADER_LEN};
use super::error::DtlsError;
use super::record::RecordLayer;

/// The smallest datagram the engine will fragment for: below this, headers leave too little
/// room for progress.
pub const MIN_MTU: usize = 128;
/// The largest handshake message accepted (a certificate chain is the biggest).
const MAX_MESSAGE: u32 = 1 << 16;
/// How far ahead of the next expected message fragments are buffered: a whole flight (at
/// most five messages in DTLS 1.2) and then some.
const MAX_MESSAGES_AHEAD: u16 = 8;
/// The most message bytes buffered at once: the peer's claims drive these allocations.
const MAX_BUFFERED: usize = 1 << 17;
/// A fragment smaller than this does not start in the tail of a datagram; the next datagram
/// takes it whole.
const MIN_FRAGMENT: usize = 64;

/// One item of a flight, with the epoch it is sent in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlightItem {
    /// A whole handshake message: header (as one fragment) and body.
    Handshake {
        /// Epoch of its records.
        epoch: u16,
        /// Header and body.
        message: Vec<u8>,
    },
    /// ChangeCipherSpec (its own content type, RFC 6347 §4.1).
    ChangeCipherSpec {
        /// Epoch of its record (the one it ends).
        epoch: u16,
    },
}

/// Seals `items` into datagrams of at most `mtu` bytes, fragmenting messages as needed and
/// packing several records into one datagram when they fit (RFC 6347 §4.1.1).
pub fn pack(
    items: &[FlightItem],
    mtu: usize,
    records: &mut RecordLayer,
) -> Result<Vec<Vec<u8>>, DtlsError> {
    let mut datagrams = Vec::new();
    let mut current = Vec::new();
    for item in items {
        match item {
            FlightItem::ChangeCipherSpec { epoch } => {
                if !current.is_empty() && current.len() + records.overhead(*epoch) + 1 > mtu {
                    datagrams.push(std::mem::take(&mut current));
                }
                records.seal(
                    *epoch,
                    ContentType::ChangeCipherSpec,
                    &CHANGE_CIPHER_SPEC,
                    &mut current,
                )?;
            }
            FlightItem::Handshake { epoch, message } => {
                let (head, body) = message.split_at(HANDSHAKE_HEADER_LEN);
                let msg_type = HandshakeType::from(head[0]);
                let message_seq = u16::from_be_bytes([head[4], head[5]]);
                let mut offset = 0;
                loop {
                    let overhead = records.overhead(*epoch) + HANDSHAKE_HEADER_LEN;
                    let room = mtu.saturating_sub(current.len() + overhead);
                    let remaining = body.len() - offset;
                    // A full datagram takes nothing more, not even a message with no body.
                    if (room == 0 || room < remaining.min(MIN_FRAGMENT)) && !current.is_empty() {
                        datagrams.push(std::mem::take(&mut current));
                        continue;
                    }
                    // An MTU below the headers still makes progress, one byte at a time.
                    let take = remaining.min(room.max(1));
                    let header = HandshakeHeader {
                        msg_type,
                        length: body.len() as u32,
                        message_seq,
                        fragment_offset: offset as u32,
                        fragment_length: take as u32,
                    };
                    let mut fragment = Vec::with_capacity(HANDSHAKE_HEADER_LEN + take);
                    header.encode(&mut fragment);
                    fragment.extend_from_slice(&body[offset..offset + take]);
                    records.seal(*epoch, ContentType::Handshake, &fragment, &mut current)?;
                    offset += take;
                    if offset == body.len() {
                        break;
                    }
                }
            }
        }
    }
    if !current.is_empty() {
        datagrams.push(current);
    }
    Ok(datagrams)
}

/// Retransmission timer settings (RFC 6347 §4.2.4.1; RFC 6298 for the 60 s ceiling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// The first timeout: 1 s by default.
    pub initial: Duration,
    /// The ceiling doubling stops at: 60 s by default.
    pub max: Duration,
    /// How many retransmissions of one flight before the handshake fails.
    pub max_retransmissions: u32,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_retransmissions: 12,
        }
    }
}

/// The last flight sent and its timer; `F` is the flight as the record layer resends it
/// (DTLS 1.2's items, or DTLS 1.3's messages with their acknowledgement state).
#[derive(Debug)]
pub struct Retransmitter<F = Vec<FlightItem>> {
    flight: Option<F>,
    deadline: Option<Instant>,
    timeout: Duration,
    retransmissions: u32,
}

impl<F> Default for Retransmitter<F> {
    fn default() -> Self {
        Self {
            flight: None,
            deadline: None,
            timeout: Duration::ZERO,
            retransmissions: 0,
        }
    }
}

impl<F> Retransmitter<F> {
    /// Keeps a new flight. A flight that waits for an answer arms the timer at the initial
    /// value (back-off restarts after each round trip); the final flight of a handshake only
    /// answers the peer's retransmissions.
    pub fn start(
        &mut self,
        flight: F,
        awaits_reply: bool,
        config: &RetransmitConfig,
        now: Instant,
    ) {
        self.flight = Some(flight);
        self.timeout = config.initial;
        self.retransmissions = 0;
        self.deadline = awaits_reply.then(|| now + config.initial);
    }

    /// Stops the timer but keeps the flight (DTLS 1.3: the peer acknowledged all of it).
    pub fn stop_timer(&mut self) {
        self.deadline = None;
    }

    /// Forgets the flight (the peer proved it has everything).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// When the timer fires.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The flight to resend, if one is kept.
    pub fn flight(&self) -> Option<&F> {
        self.flight.as_ref()
    }

    /// The kept flight, to update its acknowledgement state.
    pub fn flight_mut(&mut self) -> Option<&mut F> {
        self.flight.as_mut()
    }

    /// How many times the timer resent the kept flight.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// The timer fired: doubles the timeout up to the ceiling. Fails once the flight was
    /// resent `max_retransmissions` times.
    pub fn back_off(&mut self, config: &RetransmitConfig, now: Instant) -> Result<(), DtlsError> {
        if self.retransmissions >= config.max_retransmissions {
            self.deadline = None;
            return Err(DtlsError::Timeout {
                retransmissions: self.retransmissions,
            });
        }
        self.retransmissions += 1;
        self.timeout = (self.timeout * 2).min(config.max);
        self.deadline = Some(now + self.timeout);
        Ok(())
    }
}

/// Timer retransmissions of one flight after which its datagrams shrink (RFC 6347 §4.1.1.1).
const PMTU_BACKOFF_AFTER: u32 = 2;
/// The datagram size the back-off stops at (or the configured MTU, when that is smaller).
const PMTU_FLOOR: usize = 256;

/// RFC 6347 §4.1.1.1 (and RFC 9147 §4.4): when retransmissions go unanswered, the path may
/// drop datagrams this big, so the next ones are halved, down to a floor; the handshake keeps
/// the smaller size. Application data keeps the configured MTU.
pub fn backed_off_mtu(current: usize, configured: usize, retransmissions: u32) -> usize {
    if retransmissions < PMTU_BACKOFF_AFTER {
        return current;
    }
    (current / 2).max(PMTU_FLOOR.min(configured))
}

/// A handshake message put back together.
#[derive(Debug, PartialEq, Eq)]
pub struct Assembled {
    /// The epoch its fragments arrived in.
    pub epoch: u16,
    /// Its type.
    pub msg_type: HandshakeType,
    /// Its message_seq.
    pub message_seq: u16,
    /// The body.
    pub body: Vec<u8>,
}

struct Partial {
    epoch: u16,
    msg_type: HandshakeType,
    body: Vec<u8>,
    /// Received byte ranges, sorted and merged.
    filled: Vec<(usize, usize)>,
}

impl Partial {
    fn complete(&self) -> bool {
        self.body.is_empty() || self.filled == [(0, self.body.len())]
    }

    fn add(&mut self, start: usize, bytes: &[u8]) {
        let end = start + bytes.len();
        self.body[start..end].copy_from_slice(bytes);
        self.filled.push((start, end));
        self.filled.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.filled.len());
        for &(s, e) in &self.filled {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.filled = merged;
    }
}

/// What became of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Its message was already delivered: the peer is retransmitting.
    Old,
    /// Kept.
    Accepted,
    /// Dropped: too far ahead, too big, or inconsistent with earlier fragments.
    Dropped,
}

/// Puts the peer's fragments back into messages and releases them in order.
#[derive(Default)]
pub struct Reassembler {
    next_seq: u16,
    pending: BTreeMap<u16, Partial>,
}

impl Reassembler {
    /// The message_seq expected next.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Restarts at `seq` (a server adopting the first ClientHello's message_seq).
    pub fn restart_at(&mut self, seq: u16) {
        self.next_seq = seq;
        self.pending.clear();
    }

    /// Takes one fragment received in `epoch`.
    pub fn insert(&mut self, epoch: u16, h: &HandshakeHeader, fragment: &[u8]) -> Fragment {
        if h.message_seq < self.next_seq {
            return Fragment::Old;
        }
        if h.message_seq - self.next_seq >= MAX_MESSAGES_AHEAD || h.length > MAX_MESSAGE {
            return Fragment::Dropped;
        }
        if !self.pending.contains_key(&h.message_seq) {
            let buffered: usize = self.pending.values().map(|p| p.body.len()).sum();
            if buffered + h.length as usize > MAX_BUFFERED {
                return Fragment::Dropped;
            }
        }
        let partial = self
            .pending
            .entry(h.message_seq)
            .or_insert_with(|| Partial {
                epoch,
                msg_type: h.msg_type,
                body: vec![0; h.length as usize],
                filled: Vec::new(),
            });
        // Fragments of one message must agree on everything but their range.
        if partial.epoch != epoch
            || partial.msg_type != h.msg_type
            || partial.body.len() != h.length as usize
        {
            return Fragment::Dropped;
        }
        partial.add(h.fragment_offset as usize, fragment);
        Fragment::Accepted
    }

    /// The next message, once all its bytes are here.
    pub fn pop(&mut self) -> Option<Assembled> {
        // The last number cannot be followed: a peer that got there stalls rather than wraps.
        if self.next_seq == u16::MAX || !self.pending.get(&self.next_seq)?.complete() {
            return None;
        }
        let partial = self.pending.remove(&self.next_seq)?;
        let message_seq = self.next_seq;
        self.next_seq += 1;
        Some(Assembled {
            epoch: partial.epoch,
            msg_type: partial.msg_type,
            message_seq,
            body: partial.body,
        })
    }

    /// Drops buffered fragments from epochs before `epoch`: after a ChangeCipherSpec, every
    /// later message must come in the new epoch.
    pub fn drop_epochs_before(&mut self, epoch: u16) {
        self.pending.retain(|_, p| p.epoch >= epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::record::{handshake_fragments, records};
    use super::*;

    fn message(msg_type: HandshakeType, seq: u16, len: usize) -> Vec<u8> {
        let mut m = vec![];
        HandshakeHeader {
            msg_type,
            length: len as u32,
            message_seq: seq,
            fragment_offset: 0,
            fragment_length: len as u32,
        }
        .encode(&mut m);
        m.extend((0..len).map(|i| i as u8));
        m
    }

    #[test]
    fn fragments_fit_the_mtu_and_reassemble_in_any_order() {
        let items = vec![
            FlightItem::Handshake {
                epoch: 0,
                message: message(HandshakeType::Certificate, 3, 3000),
            },
            FlightItem::Handshake {
                epoch: 0,
                message: message(HandshakeType::ServerHelloDone, 4, 0),
            },
            FlightItem::ChangeCipherSpec { epoch: 0 },
        ];
        for mtu in [MIN_MTU, 500, 1200, 5000] {
            let mut layer = RecordLayer::default();
            let datagrams = pack(&items, mtu, &mut layer).unwrap();
            assert!(datagrams.iter().all(|d| d.len() <= mtu), "mtu {mtu}");
            if mtu == 5000 {
                assert_eq!(datagrams.len(), 1, "everything packs into one datagram");
            }
            let mut r = Reassembler::default();
            r.restart_at(3);
            let mut ccs = 0;
            // Deliver backwards, and every datagram twice.
            for d in datagrams.iter().rev().chain(datagrams.iter()) {
                for (h, body) in records(d) {
                    if h.content_type == ContentType::ChangeCipherSpec {
                        ccs += 1;
                        continue;
                    }
                    for f in handshake_fragments(body) {
                        let (hh, frag) = f.unwrap();
                        assert_ne!(r.insert(0, &hh, frag), Fragment::Dropped);
                    }
                }
            }
            assert_eq!(ccs, 2);
            let cert = r.pop().unwrap();
            assert_eq!(
                cert.body,
                message(HandshakeType::Certificate, 3, 3000)[12..]
            );
            assert_eq!(r.pop().unwrap().msg_type, HandshakeType::ServerHelloDone);
            assert!(r.pop().is_none());
            assert_eq!(r.next_seq(), 5);
        }
    }

    #[test]
    fn reassembly_refuses_inconsistent_and_far_fragments() {
        let mut r = Reassembler::default();
        let h = HandshakeHeader {
            msg_type: HandshakeType::ServerHello,
            length: 10,
            message_seq: 0,
            fragment_offset: 0,
            fragment_length: 5,
        };
        assert_eq!(r.insert(0, &h, &[1; 5]), Fragment::Accepted);
        assert!(r.pop().is_none(), "half a message");
        let other_type = HandshakeHeader {
            msg_type: HandshakeType::Certificate,
            fragment_offset: 5,
            ..h
        };
        assert_eq!(r.insert(0, &other_type, &[2; 5]), Fragment::Dropped);
        assert_eq!(
            r.insert(
                1,
                &HandshakeHeader {
                    fragment_offset: 5,
                    ..h
                },
                &[2; 5]
            ),
            Fragment::Dropped,
            "other epoch"
        );
        let far = HandshakeHeader {
            message_seq: MAX_MESSAGES_AHEAD,
            ..h
        };
        assert_eq!(r.insert(0, &far, &[0; 5]), Fragment::Dropped);
        assert_eq!(
            r.insert(
                0,
                &HandshakeHeader {
                    fragment_offset: 3,
                    fragment_length: 7,
                    ..h
                },
                &[1; 7]
            ),
            Fragment::Accepted,
            "overlapping fragment"
        );
        assert_eq!(r.pop().unwrap().body.len(), 10);
        assert_eq!(r.insert(0, &h, &[1; 5]), Fragment::Old);
        // Buffered fragments of an old epoch go when the epoch changes.
        let next = HandshakeHeader {
            message_seq: 1,
            ..h
        };
        assert_eq!(r.insert(0, &next, &[0; 5]), Fragment::Accepted);
        r.drop_epochs_before(1);
        assert_eq!(
            r.insert(
                1,
                &HandshakeHeader {
                    fragment_offset: 5,
                    ..next
                },
                &[0; 5]
            ),
            Fragment::Accepted
        );
        assert!(r.pop().is_none(), "the epoch-0 half was dropped");
        r.restart_at(2);
        // Claimed lengths count against the buffer before any byte arrives.
        let huge = |seq| HandshakeHeader {
            message_seq: seq,
            length: MAX_MESSAGE,
            fragment_length: 1,
            ..h
        };
        assert_eq!(r.insert(0, &huge(3), &[0]), Fragment::Accepted);
        assert_eq!(r.insert(0, &huge(4), &[0]), Fragment::Accepted);
        assert_eq!(r.insert(0, &huge(5), &[0]), Fragment::Dropped);
        assert_eq!(
            r.insert(0, &huge(3), &[0]),
            Fragment::Accepted,
            "same message"
        );
    }

    #[test]
    fn back_off_doubles_to_the_ceiling_then_gives_up() {
        let config = RetransmitConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            max_retransmissions: 4,
        };
        let now = Instant::now();
        let mut t = Retransmitter::default();
        t.start(
            vec![FlightItem::ChangeCipherSpec { epoch: 0 }],
            true,
            &config,
            now,
        );
        assert_eq!(t.deadline(), Some(now + Duration::from_secs(1)));
        let mut waits = vec![];
        while t.back_off(&config, now).is_ok() {
            waits.push(t.deadline().unwrap() - now);
        }
        assert_eq!(
            waits,
            [2, 4, 5, 5].map(Duration::from_secs),
            "1 s, doubling, capped"
        );
        assert!(t.deadline().is_none());
        t.start(vec![], false, &config, now);
        assert!(t.deadline().is_none() && t.flight().is_some());
        t.clear();
        assert!(t.flight().is_none());
    }
}
