//! The DTLS 1.3 record layer (RFC 9147 §4): epoch 0 in DTLSPlaintext records, every later
//! epoch (2: handshake, 3 and up: application data) in unified-header records protected by
//! [`Protection`]. Each epoch has its own 64-bit record numbers and replay window; the read
//! side keeps the handshake epoch and the previous application epoch a while after the next
//! one opens, since their records can still arrive late (§4.2.1).

use rustls::ContentType;

use super::codec::record::{records, RecordHeader, DTLS12, MAX_SEQUENCE, RECORD_HEADER_LEN};
use super::codec::unified::{is_unified, read_record};
use super::error::DtlsError;
use super::record::TAG_LEN;
use super::record13::Protection;
use super::replay::ReplayWindow;

/// Epochs a receiver can read at once: the handshake epoch and two application ones.
const MAX_READ_EPOCHS: usize = 3;

/// One received record, opened.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    /// Its epoch.
    pub epoch: u64,
    /// Its record number within the epoch.
    pub sequence: u64,
    /// The real content type.
    pub content_type: ContentType,
    /// The content.
    pub content: Vec<u8>,
}

struct ReadEpoch {
    protection: Protection,
    window: ReplayWindow,
    /// One past the highest record number received, for reconstruction (§4.2.2).
    next: u64,
}

struct WriteEpoch {
    epoch: u64,
    protection: Option<Protection>,
    next: u64,
}

/// Both directions' epochs.
pub struct Epochs13 {
    read: Vec<ReadEpoch>,
    plaintext_window: ReplayWindow,
    /// Whether epoch 0 is still readable: until the peer's first protected record.
    plaintext_open: bool,
    write: Vec<WriteEpoch>,
    /// The connection ID our records carry (the peer's), when one was negotiated.
    send_cid: Option<Vec<u8>>,
    /// The connection ID the peer's records carry (ours); empty when none.
    receive_cid: Vec<u8>,
    /// Whether a record opened since [`Epochs13::take_newest_with_cid`] carried our CID and
    /// a record number above all before it in the newest epoch.
    newest_with_cid: bool,
}

impl Default for Epochs13 {
    fn default() -> Self {
        Self {
            read: Vec::new(),
            plaintext_window: ReplayWindow::default(),
            plaintext_open: true,
            write: vec![WriteEpoch {
                epoch: 0,
                protection: None,
                next: 0,
            }],
            send_cid: None,
            receive_cid: Vec::new(),
            newest_with_cid: false,
        }
    }
}

impl Epochs13 {
    /// Opens `protection`'s epoch for reading; beyond three readable epochs the oldest is
    /// forgotten.
    pub fn install_read(&mut self, protection: Protection) {
        self.read.push(ReadEpoch {
            protection,
            window: ReplayWindow::default(),
            next: 0,
        });
        if self.read.len() > MAX_READ_EPOCHS {
            self.read.remove(0);
        }
    }

    /// Sends from now on under `protection`'s epoch; earlier write epochs stay for
    /// retransmitting what was sent under them.
    pub fn install_write(&mut self, protection: Protection) {
        self.write.push(WriteEpoch {
            epoch: protection.epoch(),
            protection: Some(protection),
            next: 0,
        });
    }

    /// The number our next epoch-0 record would get.
    pub fn next_plaintext_sequence(&self) -> u64 {
        self.write
            .iter()
            .find(|w| w.epoch == 0)
            .map_or(0, |w| w.next)
    }

    /// Numbers our next epoch-0 record `sequence` (a stateless server answering a
    /// ClientHello with its record number).
    pub fn set_plaintext_write_sequence(&mut self, sequence: u64) {
        if let Some(plain) = self.write.iter_mut().find(|w| w.epoch == 0) {
            plain.next = sequence;
        }
    }

    /// Forgets write epochs older than `epoch` (nothing of them will be sent again).
    pub fn retire_write_before(&mut self, epoch: u64) {
        let newest = self.write_epoch();
        self.write.retain(|w| w.epoch >= epoch.min(newest));
    }

    /// Uses connection IDs (RFC 9147 §9) in protected records: `send` (the peer's) in ours,
    /// `receive` (ours) in the peer's; an empty one means none that way.
    pub fn set_connection_ids(&mut self, send: Vec<u8>, receive: Vec<u8>) {
        self.send_cid = Some(send).filter(|c| !c.is_empty());
        self.receive_cid = receive;
    }

    /// Whether a record opened since the last call carried our connection ID and a record
    /// number above all before it (RFC 9147 §9: only such a record may move the peer's
    /// address); clears it.
    pub fn take_newest_with_cid(&mut self) -> bool {
        std::mem::take(&mut self.newest_with_cid)
    }

    /// The connection IDs in use: the one the peer's records carry, the one ours carry.
    pub fn connection_ids(&self) -> (&[u8], &[u8]) {
        (
            &self.receive_cid,
            self.send_cid.as_deref().unwrap_or_default(),
        )
    }

    /// The epoch records go out in.
    pub fn write_epoch(&self) -> u64 {
        self.write.last().map_or(0, |w| w.epoch)
    }

    /// The newest epoch the peer's records can be read in.
    pub fn read_epoch(&self) -> u64 {
        self.read.last().map_or(0, |r| r.protection.epoch())
    }

    /// What a record of `epoch` adds to its content: header, type byte and tag.
    pub fn overhead(&self, epoch: u64) -> usize {
        if epoch == 0 {
            RECORD_HEADER_LEN
        } else {
            1 + self.send_cid.as_ref().map_or(0, Vec::len) + 2 + 2 + 1 + TAG_LEN
        }
    }

    /// Appends one record of `epoch` to `out` and returns its record number.
    pub fn seal(
        &mut self,
        epoch: u64,
        content_type: ContentType,
        content: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u64, DtlsError> {
        let cid = self.send_cid.clone();
        let write = self
            .write
            .iter_mut()
            .find(|w| w.epoch == epoch)
            .ok_or_else(|| DtlsError::Internal(format!("no keys to send in epoch {epoch}")))?;
        let sequence = write.next;
        if sequence > MAX_SEQUENCE {
            return Err(DtlsError::Internal("record numbers exhausted".into()));
        }
        write.next += 1;
        match &write.protection {
            None => {
                RecordHeader {
                    content_type,
                    version: DTLS12,
                    epoch: 0,
                    sequence,
                    length: content.len() as u16,
                }
                .encode(out);
                out.extend_from_slice(content);
            }
            Some(p) => p.seal(sequence, cid.as_deref(), content_type, content, 0, out)?,
        }
        Ok(sequence)
    }

    /// Opens the next record of `datagram` that authenticates and is not a replay, and
    /// moves `datagram` past it; records before it that do not are counted in `discarded`
    /// (RFC 9147 §4.5.2: invalid records are dropped silently). One record at a time, since
    /// handling one may install the keys of the next.
    pub fn open_next(
        &mut self,
        datagram: &mut &[u8],
        discarded: &mut u64,
    ) -> Result<Option<Received>, DtlsError> {
        while let Some(&first) = datagram.first() {
            let opened = if is_unified(first) {
                let Ok((record, rest)) = read_record(datagram, self.receive_cid.len()) else {
                    break;
                };
                *datagram = rest;
                // Another association's connection ID: not ours to open.
                let ours = record.header.cid.unwrap_or_default() == self.receive_cid.as_slice();
                if ours {
                    self.open_protected(&record)?
                } else {
                    None
                }
            } else {
                let Some((header, body)) = records(datagram).next() else {
                    break;
                };
                *datagram = &datagram[RECORD_HEADER_LEN + body.len()..];
                self.open_plaintext(&header, body)
            };
            match opened {
                Some(received) => return Ok(Some(received)),
                None => *discarded += 1,
            }
        }
        if !datagram.is_empty() {
            // What is left does not parse as a record.
            *discarded += 1;
            *datagram = &[];
        }
        Ok(None)
    }

    fn open_plaintext(&mut self, header: &RecordHeader, body: &[u8]) -> Option<Received> {
        // Only the hellos, ACKs and alerts of epoch 0 travel in the clear.
        let allowed = matches!(
            header.content_type,
            ContentType::Handshake | ContentType::Alert
        ) || u8::from(header.content_type) == super::codec::ack::ACK_CONTENT_TYPE;
        if header.epoch != 0 || !allowed || !self.plaintext_open {
            return None;
        }
        if !self.plaintext_window.is_fresh(header.sequence) {
            return None;
        }
        self.plaintext_window.mark(header.sequence);
        Some(Received {
            epoch: 0,
            sequence: header.sequence,
            content_type: header.content_type,
            content: body.to_vec(),
        })
    }

    fn open_protected(
        &mut self,
        record: &super::codec::unified::UnifiedRecord<'_>,
    ) -> Result<Option<Received>, DtlsError> {
        // The newest readable epoch with these low bits (§4.2.2).
        let newest_epoch = self.read_epoch();
        let Some(read) = self
            .read
            .iter_mut()
            .rev()
            .find(|r| r.protection.epoch() & 3 == u64::from(record.header.epoch_bits))
        else {
            return Ok(None);
        };
        let Some(opened) = read.protection.open(record, read.next)? else {
            return Ok(None);
        };
        if !read.window.is_fresh(opened.sequence) {
            return Ok(None);
        }
        self.newest_with_cid |= record.header.cid.is_some()
            && read.protection.epoch() == newest_epoch
            && read.window.is_newest(opened.sequence);
        read.window.mark(opened.sequence);
        read.next = read.next.max(opened.sequence + 1);
        // Once the peer protects its records, its plaintext ones are stale or forged.
        self.plaintext_open = false;
        Ok(Some(Received {
            epoch: read.protection.epoch(),
            sequence: opened.sequence,
            content_type: opened.content_type,
            content: opened.content,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ciphers::Encryption;
    use crate::dtls::key_schedule::PrfHash;
    use crate::dtls::key_schedule13::Secret;

    fn protection(epoch: u64, secret: u8) -> Protection {
        let keys = Secret::new(PrfHash::Sha256, &[secret; 32]).traffic_keys(16);
        Protection::new(epoch, Encryption::Aes128Gcm, &keys).unwrap()
    }

    fn open_all(epochs: &mut Epochs13, mut datagram: &[u8], discarded: &mut u64) -> Vec<Received> {
        let mut all = Vec::new();
        while let Some(r) = epochs.open_next(&mut datagram, discarded).unwrap() {
            all.push(r);
        }
        all
    }

    #[test]
    fn plaintext_then_protected_records_with_replays_dropped() {
        let (mut tx, mut rx) = (Epochs13::default(), Epochs13::default());
        let mut datagram = Vec::new();
        tx.seal(0, ContentType::Handshake, b"hello", &mut datagram)
            .unwrap();
        let mut discarded = 0;
        let got = open_all(&mut rx, &datagram, &mut discarded);
        assert_eq!(got[0].content, b"hello");
        assert!(open_all(&mut rx, &datagram, &mut discarded).is_empty());
        assert_eq!(discarded, 1, "a replay");

        tx.install_write(protection(2, 1));
        rx.install_read(protection(2, 1));
        let mut datagram = Vec::new();
        tx.seal(2, ContentType::Handshake, b"one", &mut datagram)
            .unwrap();
        tx.seal(2, ContentType::Handshake, b"two", &mut datagram)
            .unwrap();
        let got = open_all(&mut rx, &datagram, &mut discarded);
        assert_eq!(
            got.iter()
                .map(|r| (r.epoch, r.sequence))
                .collect::<Vec<_>>(),
            [(2, 0), (2, 1)]
        );
        // Epoch 0 is closed now that the peer protects its records.
        let mut plain = Vec::new();
        tx.seal(0, ContentType::Handshake, b"late", &mut plain)
            .unwrap();
        assert!(open_all(&mut rx, &plain, &mut discarded).is_empty());
    }

    #[test]
    fn application_records_and_unknown_epochs() {
        let (mut tx, mut rx) = (Epochs13::default(), Epochs13::default());
        tx.install_write(protection(3, 7));
        let mut datagram = Vec::new();
        tx.seal(3, ContentType::ApplicationData, b"data", &mut datagram)
            .unwrap();
        let mut discarded = 0;
        assert!(open_all(&mut rx, &datagram, &mut discarded).is_empty());
        assert_eq!(discarded, 1, "no keys for epoch 3 yet");
        rx.install_read(protection(3, 7));
        let got = open_all(&mut rx, &datagram, &mut discarded);
        assert_eq!((got[0].epoch, &got[0].content[..]), (3, &b"data"[..]));
        // Application data never travels in the clear.
        let mut plain = Vec::new();
        Epochs13::default()
            .seal(0, ContentType::ApplicationData, b"x", &mut plain)
            .unwrap();
        assert!(open_all(&mut Epochs13::default(), &plain, &mut discarded).is_empty());
    }
}
