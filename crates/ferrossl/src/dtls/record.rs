//! The record layer: epochs, 48-bit sequence numbers, AEAD protection and replay protection.
//!
//! AEAD records follow RFC 6347 §4.1.2.1 with the nonce of RFC 5288 §3 (AES-GCM: a 4-byte salt
//! from the key block, then an 8-byte explicit nonce sent in the record) or RFC 7905 §2
//! (ChaCha20-Poly1305: the 12-byte IV XOR the 64-bit epoch ‖ sequence number, nothing
//! sent). The additional data is epoch ‖ sequence ‖ type ‖ version ‖ plaintext length.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ContentType;

use super::codec::record::{RecordHeader, DTLS10, DTLS12, MAX_SEQUENCE, RECORD_HEADER_LEN};
use super::error::DtlsError;
use super::replay::ReplayWindow;
use crate::ciphers::Encryption;

/// The largest plaintext a record may carry (RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// The largest protected record body (RFC 5246 §6.2.3: plaintext + 2048).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
const TAG_LEN: usize = 16;
const EXPLICIT_NONCE_LEN: usize = 8;

/// One direction's AEAD key for one epoch.
pub struct Aead {
    key: LessSafeKey,
    /// GCM: the 4-byte salt in front, zeros behind. ChaCha20: the whole 12-byte IV.
    iv: [u8; 12],
    /// Whether the record carries the 8-byte explicit nonce (GCM) or none (ChaCha20).
    explicit_nonce: bool,
}

impl Aead {
    /// A key for `enc` from the key block's key and IV.
    pub fn new(enc: Encryption, key: &[u8], iv: &[u8]) -> Result<Self, DtlsError> {
        let alg = match enc {
            Encryption::Aes128Gcm => &aead::AES_128_GCM,
            Encryption::Aes256Gcm => &aead::AES_256_GCM,
            Encryption::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        let key = UnboundKey::new(alg, key)
            .map_err(|_| DtlsError::Internal("AEAD key of the wrong length".into()))?;
        let mut full = [0u8; 12];
        full[..iv.len()].copy_from_slice(iv);
        Ok(Self {
            key: LessSafeKey::new(key),
            iv: full,
            explicit_nonce: enc != Encryption::Chacha20Poly1305,
        })
    }

    /// Bytes a record body gains over its plaintext.
    fn overhead(&self) -> usize {
        TAG_LEN
            + if self.explicit_nonce {
                EXPLICIT_NONCE_LEN
            } else {
                0
            }
    }

    fn nonce(&self, explicit: [u8; 8]) -> Nonce {
        let mut nonce = self.iv;
        if self.explicit_nonce {
            nonce[4..].copy_from_slice(&explicit);
        } else {
            for (n, e) in nonce[4..].iter_mut().zip(explicit) {
                *n ^= e;
            }
        }
        Nonce::assume_unique_for_key(nonce)
    }

    fn seal(&self, header: &RecordHeader, plaintext: &[u8], out: &mut Vec<u8>) {
        let epoch_seq = header.epoch_sequence().to_be_bytes();
        if self.explicit_nonce {
            // The record's own epoch ‖ sequence is unique per key: a safe explicit nonce.
            out.extend_from_slice(&epoch_seq);
        }
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                self.nonce(epoch_seq),
                Aad::from(additional_data(header, plaintext.len())),
                &mut out[start..],
            )
            .expect("sealing cannot fail for a valid key and length");
        out.extend_from_slice(tag.as_ref());
    }

    fn open(&self, header: &RecordHeader, body: &[u8]) -> Option<Vec<u8>> {
        let (explicit, ciphertext) = if self.explicit_nonce {
            let (n, c) = body.split_at_checked(EXPLICIT_NONCE_LEN)?;
            (n.try_into().ok()?, c)
        } else {
            (header.epoch_sequence().to_be_bytes(), body)
        };
        let plain_len = ciphertext.len().checked_sub(TAG_LEN)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(
                self.nonce(explicit),
                Aad::from(additional_data(header, plain_len)),
                &mut buf,
            )
            .ok()?;
        let n = plain.len();
        buf.truncate(n);
        Some(buf)
    }
}

fn additional_data(header: &RecordHeader, plain_len: usize) -> [u8; 13] {
    let mut ad = [0u8; 13];
    ad[..8].copy_from_slice(&header.epoch_sequence().to_be_bytes());
    ad[8] = u8::from(header.content_type);
    ad[9..11].copy_from_slice(&header.version.to_be_bytes());
    ad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
    ad
}

struct ReadState {
    aead: Option<Aead>,
    window: ReplayWindow,
}

struct WriteState {
    aead: Option<Aead>,
    next_sequence: u64,
}

/// Both directions' epochs. Epoch 0 is plaintext; each ChangeCipherSpec moves one direction to
/// the next installed epoch. Older epochs stay readable so that retransmitted handshake
/// records can still be recognised.
pub struct RecordLayer {
    read: Vec<ReadState>,
    write: Vec<WriteState>,
    read_epoch: u16,
    write_epoch: u16,
    /// The largest plaintext the peer accepts in a protected record (RFC 8449 §4).
    pub peer_limit: usize,
}

impl Default for RecordLayer {
    fn default() -> Self {
        Self {
            read: vec![ReadState {
                aead: None,
                window: ReplayWindow::default(),
            }],
            write: vec![WriteState {
                aead: None,
                next_sequence: 0,
            }],
            read_epoch: 0,
            write_epoch: 0,
            peer_limit: MAX_PLAINTEXT,
        }
    }
}

impl RecordLayer {
    /// The epoch records are accepted in.
    pub fn read_epoch(&self) -> u16 {
        self.read_epoch
    }

    /// The epoch new records go out in.
    pub fn write_epoch(&self) -> u16 {
        self.write_epoch
    }

    /// Installs the keys of the next epoch in both directions; each becomes current at its
    /// ChangeCipherSpec.
    pub fn install_next_epoch(&mut self, read: Aead, write: Aead) {
        self.read.push(ReadState {
            aead: Some(read),
            window: ReplayWindow::default(),
        });
        self.write.push(WriteState {
            aead: Some(write),
            next_sequence: 0,
        });
    }

    /// Whether keys for `epoch` are installed on the read side.
    pub fn can_read(&self, epoch: u16) -> bool {
        usize::from(epoch) < self.read.len()
    }

    /// Moves reading to the next epoch (the peer's ChangeCipherSpec arrived).
    pub fn activate_read(&mut self) {
        debug_assert!(self.can_read(self.read_epoch + 1));
        self.read_epoch += 1;
    }

    /// Moves writing to the next epoch (we sent ChangeCipherSpec).
    pub fn activate_write(&mut self) {
        debug_assert!(usize::from(self.write_epoch) + 1 < self.write.len());
        self.write_epoch += 1;
    }

    /// Starts epoch `epoch`'s sequence numbers at `seq`: a server's first records reuse the
    /// ClientHello's (RFC 6347 §4.2.1).
    pub fn set_write_sequence(&mut self, epoch: u16, seq: u64) {
        if let Some(state) = self.write.get_mut(usize::from(epoch)) {
            state.next_sequence = seq;
        }
    }

    /// Bytes a record in `epoch` adds to its plaintext: header and AEAD expansion.
    pub fn overhead(&self, epoch: u16) -> usize {
        RECORD_HEADER_LEN
            + self.write[usize::from(epoch)]
                .aead
                .as_ref()
                .map_or(0, Aead::overhead)
    }

    /// Appends one record of `plaintext` in `epoch` to `out`.
    pub fn seal(
        &mut self,
        epoch: u16,
        content_type: ContentType,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DtlsError> {
        let state = &mut self.write[usize::from(epoch)];
        if state.next_sequence > MAX_SEQUENCE {
            // RFC 6347 §4.1: sequence numbers must not wrap; without renegotiation the
            // association has to end.
            return Err(DtlsError::Internal(
                "record sequence numbers exhausted".into(),
            ));
        }
        let expansion = state.aead.as_ref().map_or(0, Aead::overhead);
        let header = RecordHeader {
            content_type,
            version: DTLS12,
            epoch,
            sequence: state.next_sequence,
            length: (plaintext.len() + expansion) as u16,
        };
        state.next_sequence += 1;
        header.encode(out);
        match &state.aead {
            Some(aead) => aead.seal(&header, plaintext, out),
            None => out.extend_from_slice(plaintext),
        }
        Ok(())
    }

    /// Authenticates and decrypts a record of the current or an older epoch. `None` means
    /// drop it silently (RFC 6347 §4.1.2.7): unknown epoch, replayed, too long or forged.
    pub fn open(&mut self, header: &RecordHeader, body: &[u8]) -> Option<Vec<u8>> {
        if header.epoch > self.read_epoch || body.len() > MAX_CIPHERTEXT {
            return None;
        }
        let state = &mut self.read[usize::from(header.epoch)];
        // Version 1.0 appears in the clear before negotiation (HelloVerifyRequest, some
        // ClientHellos); protected records must say 1.2.
        let version_ok =
            header.version == DTLS12 || (header.epoch == 0 && header.version == DTLS10);
        if !version_ok || !state.window.is_fresh(header.sequence) {
            return None;
        }
        let plain = match &state.aead {
            Some(aead) => aead.open(header, body)?,
            None => body.to_vec(),
        };
        if plain.len() > MAX_PLAINTEXT {
            return None;
        }
        state.window.mark(header.sequence);
        Some(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::record::records;
    use super::*;

    fn pair(enc: Encryption) -> (RecordLayer, RecordLayer) {
        let key = vec![7u8; if enc == Encryption::Aes128Gcm { 16 } else { 32 }];
        let iv = vec![
            9u8;
            if enc == Encryption::Chacha20Poly1305 {
                12
            } else {
                4
            }
        ];
        let mut a = RecordLayer::default();
        let mut b = RecordLayer::default();
        for layer in [&mut a, &mut b] {
            layer.install_next_epoch(
                Aead::new(enc, &key, &iv).unwrap(),
                Aead::new(enc, &key, &iv).unwrap(),
            );
            layer.activate_read();
            layer.activate_write();
        }
        (a, b)
    }

    #[test]
    fn each_suite_seals_opens_and_refuses_tampering_and_replay() {
        for enc in [
            Encryption::Aes128Gcm,
            Encryption::Aes256Gcm,
            Encryption::Chacha20Poly1305,
        ] {
            let (mut a, mut b) = pair(enc);
            let mut datagram = vec![];
            a.seal(1, ContentType::ApplicationData, b"first", &mut datagram)
                .unwrap();
            a.seal(1, ContentType::ApplicationData, b"second", &mut datagram)
                .unwrap();
            let expected = RECORD_HEADER_LEN * 2 + 11 + 2 * (a.overhead(1) - RECORD_HEADER_LEN);
            assert_eq!(datagram.len(), expected);
            let opened: Vec<_> = records(&datagram)
                .map(|(h, body)| b.open(&h, body).unwrap())
                .collect();
            assert_eq!(opened, [b"first".to_vec(), b"second".to_vec()]);
            // Replays are refused.
            let (h, body) = records(&datagram).next().unwrap();
            assert!(b.open(&h, body).is_none(), "{enc:?} replay");
            // A flipped bit is refused, and does not burn the sequence number.
            let mut forged = vec![];
            a.seal(1, ContentType::ApplicationData, b"third", &mut forged)
                .unwrap();
            let last = forged.len() - 1;
            forged[last] ^= 1;
            let (h, body) = records(&forged).next().unwrap();
            assert!(b.open(&h, body).is_none(), "{enc:?} forgery");
            forged[last] ^= 1;
            let (h, body) = records(&forged).next().unwrap();
            assert_eq!(b.open(&h, body).unwrap(), b"third");
            // The header is authenticated too.
            let mut other_type = vec![];
            a.seal(1, ContentType::ApplicationData, b"x", &mut other_type)
                .unwrap();
            other_type[0] = u8::from(ContentType::Alert);
            let (h, body) = records(&other_type).next().unwrap();
            assert!(b.open(&h, body).is_none());
        }
    }

    #[test]
    fn epochs_ahead_are_not_opened_and_old_plaintext_stays_readable() {
        let mut layer = RecordLayer::default();
        let mut out = vec![];
        layer
            .seal(0, ContentType::Handshake, b"hello", &mut out)
            .unwrap();
        let (mut h, body) = records(&out).next().unwrap();
        h.epoch = 1;
        assert!(layer.open(&h, body).is_none());
        h.epoch = 0;
        h.version = 0x0303;
        assert!(
            layer.open(&h, body).is_none(),
            "TLS version in a DTLS record"
        );
        h.version = DTLS10;
        assert_eq!(layer.open(&h, body).unwrap(), b"hello");
        layer.set_write_sequence(0, 41);
        let mut out = vec![];
        layer
            .seal(0, ContentType::Alert, &[1, 0], &mut out)
            .unwrap();
        assert_eq!(records(&out).next().unwrap().0.sequence, 41);
        layer.set_write_sequence(0, MAX_SEQUENCE + 1);
        assert!(layer
            .seal(0, ContentType::Alert, &[1, 0], &mut out)
            .is_err());
    }
}
