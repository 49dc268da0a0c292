//! A DTLS 1.3 flight as sent: its messages cut into fragments, one record each, with the
//! record numbers each fragment went out under. ACKs (RFC 9147 §7) name records, so they
//! mark fragments received, and a retransmission resends only the others (§7.1), cut at the
//! same boundaries (some peers reassemble badly when they move).

use rustls::ContentType;

use super::codec::ack::RecordNumber;
use super::codec::record::{HandshakeHeader, HANDSHAKE_HEADER_LEN};
use super::epochs13::Epochs13;
use super::error::DtlsError;
use super::handshake13::OutMessage;

#[derive(Debug)]
struct SentFragment {
    message: usize,
    offset: usize,
    len: usize,
    acked: bool,
}

/// Records remembered for one flight: beyond, the oldest (long retransmitted again) go.
const MAX_RECORDS: usize = 1024;

/// One flight and what the peer acknowledged of it.
#[derive(Debug)]
pub struct SentFlight {
    messages: Vec<OutMessage>,
    fragments: Vec<SentFragment>,
    /// Every record sent for the flight, retransmissions included, and its fragment.
    records: Vec<(RecordNumber, usize)>,
}

impl SentFlight {
    /// Cuts `messages` into fragments that fit datagrams of `mtu` bytes.
    pub fn new(messages: Vec<OutMessage>, mtu: usize, epochs: &Epochs13) -> Self {
        let mut fragments = Vec::new();
        for (index, m) in messages.iter().enumerate() {
            let room = mtu
                .saturating_sub(epochs.overhead(m.epoch) + HANDSHAKE_HEADER_LEN)
                .max(1);
            let mut offset = 0;
            loop {
                let len = room.min(m.body.len() - offset);
                fragments.push(SentFragment {
                    message: index,
                    offset,
                    len,
                    acked: false,
                });
                offset += len;
                if offset >= m.body.len() {
                    break;
                }
            }
        }
        Self {
            messages,
            fragments,
            records: Vec::new(),
        }
    }

    /// Cuts the fragments not yet acknowledged that no longer fit datagrams of `mtu` bytes
    /// (the path MTU backed off) into pieces that do, in place: the records already sent
    /// keep naming the first piece, so an ACK of one of them marks only that piece.
    pub fn cut_to(&mut self, mtu: usize, epochs: &Epochs13) {
        let mut fragments = Vec::with_capacity(self.fragments.len());
        let mut first_piece = Vec::with_capacity(self.fragments.len());
        for f in self.fragments.drain(..) {
            first_piece.push(fragments.len());
            let epoch = self.messages[f.message].epoch;
            let room = mtu
                .saturating_sub(epochs.overhead(epoch) + HANDSHAKE_HEADER_LEN)
                .max(1);
            if f.acked || f.len <= room {
                fragments.push(f);
                continue;
            }
            let mut offset = f.offset;
            while offset < f.offset + f.len {
                let len = room.min(f.offset + f.len - offset);
                fragments.push(SentFragment {
                    message: f.message,
                    offset,
                    len,
                    acked: false,
                });
                offset += len;
            }
        }
        for (_, fragment) in &mut self.records {
            *fragment = first_piece[*fragment];
        }
        self.fragments = fragments;
    }

    /// Seals every fragment not yet acknowledged into datagrams of at most `mtu` bytes.
    pub fn pack(&mut self, mtu: usize, epochs: &mut Epochs13) -> Result<Vec<Vec<u8>>, DtlsError> {
        let mut datagrams = Vec::new();
        let mut datagram = Vec::new();
        for (index, f) in self.fragments.iter().enumerate() {
            if f.acked {
                continue;
            }
            let m = &self.messages[f.message];
            let mut content = Vec::with_capacity(HANDSHAKE_HEADER_LEN + f.len);
            HandshakeHeader {
                msg_type: m.msg_type,
                length: m.body.len() as u32,
                message_seq: m.message_seq,
                fragment_offset: f.offset as u32,
                fragment_length: f.len as u32,
            }
            .encode(&mut content);
            content.extend_from_slice(&m.body[f.offset..f.offset + f.len]);
            if !datagram.is_empty()
                && datagram.len() + epochs.overhead(m.epoch) + content.len() > mtu
            {
                datagrams.push(std::mem::take(&mut datagram));
            }
            let sequence = epochs.seal(m.epoch, ContentType::Handshake, &content, &mut datagram)?;
            self.records.push((
                RecordNumber {
                    epoch: m.epoch,
                    sequence,
                },
                index,
            ));
        }
        if !datagram.is_empty() {
            datagrams.push(datagram);
        }
        if self.records.len() > MAX_RECORDS {
            self.records.drain(..self.records.len() - MAX_RECORDS);
        }
        Ok(datagrams)
    }

    /// Marks the fragments of the acknowledged records; numbers of records never sent are
    /// ignored.
    pub fn acknowledge(&mut self, acked: &[RecordNumber]) {
        for (number, fragment) in &self.records {
            if acked.contains(number) {
                self.fragments[*fragment].acked = true;
            }
        }
    }

    /// How many fragments the peer acknowledged.
    pub fn acked_count(&self) -> usize {
        self.fragments.iter().filter(|f| f.acked).count()
    }

    /// Whether the peer acknowledged every fragment.
    pub fn all_acked(&self) -> bool {
        self.fragments.iter().all(|f| f.acked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::HandshakeType;

    fn message(seq: u16, len: usize) -> OutMessage {
        OutMessage {
            epoch: 0,
            msg_type: HandshakeType::Certificate,
            message_seq: seq,
            body: vec![seq as u8; len],
        }
    }

    #[test]
    fn fragments_cut_to_a_smaller_mtu_cover_the_same_bytes() {
        let mut epochs = Epochs13::default();
        let mut flight = SentFlight::new(vec![message(0, 500), message(1, 10)], 400, &epochs);
        let first = flight.pack(400, &mut epochs).unwrap();
        assert!(first.iter().all(|d| d.len() <= 400));
        flight.cut_to(150, &epochs);
        let again = flight.pack(150, &mut epochs).unwrap();
        assert!(again.iter().all(|d| d.len() <= 150), "{again:?}");
        let mut covered: Vec<(u16, usize, usize)> = flight
            .fragments
            .iter()
            .map(|f| (flight.messages[f.message].message_seq, f.offset, f.len))
            .collect();
        covered.sort_unstable();
        let mut next = (0u16, 0usize);
        for (seq, offset, len) in covered {
            if seq != next.0 {
                assert_eq!((next.1, seq), ([500, 10][next.0 as usize], next.0 + 1));
                next = (seq, 0);
            }
            assert_eq!(offset, next.1, "no gap, no overlap");
            next.1 += len;
        }
        assert_eq!(next, (1, 10));
    }

    #[test]
    fn only_unacknowledged_fragments_go_out_again() {
        let mut epochs = Epochs13::default();
        let mut flight = SentFlight::new(vec![message(0, 500), message(1, 10)], 200, &epochs);
        let first = flight.pack(200, &mut epochs).unwrap();
        assert!(first.iter().all(|d| d.len() <= 200));
        let records: usize = flight.records.len();
        assert_eq!(records, flight.fragments.len());
        assert!(records >= 4, "500 bytes need several fragments");
        // The peer acknowledges all but the last record.
        let acked: Vec<RecordNumber> = flight.records[..records - 1].iter().map(|r| r.0).collect();
        flight.acknowledge(&acked);
        assert!(!flight.all_acked());
        let again = flight.pack(200, &mut epochs).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(flight.records.len(), records + 1, "one record resent");
        // An ACK for records never sent changes nothing.
        flight.acknowledge(&[RecordNumber {
            epoch: 7,
            sequence: 99,
        }]);
        assert!(!flight.all_acked());
        let last = flight.records.last().unwrap().0;
        flight.acknowledge(&[last]);
        assert!(flight.all_acked());
        assert!(flight.pack(200, &mut epochs).unwrap().is_empty());
    }
}
