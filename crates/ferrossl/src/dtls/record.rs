//! The record layer: epochs, 48-bit sequence numbers, AEAD protection and replay protection.
//!
//! AEAD records follow RFC 6347 §4.1.2.1 with the nonce of RFC 5288 §3 (AES-GCM: a 4-byte salt
//! from the key block, then an 8-byte explicit nonce sent in the record) or RFC 7905 §2
//! (ChaCha20-Poly1305: the 12-byte IV XOR the 64-bit epoch ‖ sequence number, nothing
//! sent). The additional data is epoch ‖ sequence ‖ type ‖ version ‖ plaintext length.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ContentType;

use super::codec::record::{
    encode_inner_plaintext, read_inner_plaintext, RecordHeader, DTLS10, DTLS12, MAX_SEQUENCE,
    RECORD_HEADER_LEN, TLS12_CID,
};
use super::error::DtlsError;
use super::replay::ReplayWindow;
use crate::ciphers::Encryption;

/// The largest plaintext a record may carry (RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// The largest protected record body (RFC 5246 §6.2.3: plaintext + 2048).
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 2048;
/// The AEAD tag of every suite DTLS runs (GCM, ChaCha20-Poly1305).
pub(super) const TAG_LEN: usize = 16;
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

    /// Appends the protected `plaintext` of the record numbered `epoch_seq`, authenticated
    /// with `aad`.
    fn seal(&self, epoch_seq: u64, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let epoch_seq = epoch_seq.to_be_bytes();
        if self.explicit_nonce {
            // The record's own epoch ‖ sequence is unique per key: a safe explicit nonce.
            out.extend_from_slice(&epoch_seq);
        }
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(epoch_seq), Aad::from(aad), &mut out[start..])
            .expect("sealing cannot fail for a valid key and length");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens the protected `body` of the record numbered `epoch_seq`; `aad` gives the
    /// additional data for the plaintext's length.
    fn open(
        &self,
        epoch_seq: u64,
        body: &[u8],
        aad: impl FnOnce(usize) -> Vec<u8>,
    ) -> Option<Vec<u8>> {
        let (explicit, ciphertext) = if self.explicit_nonce {
            let (n, c) = body.split_at_checked(EXPLICIT_NONCE_LEN)?;
            (n.try_into().ok()?, c)
        } else {
            (epoch_seq.to_be_bytes(), body)
        };
        let plain_len = ciphertext.len().checked_sub(TAG_LEN)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(self.nonce(explicit), Aad::from(aad(plain_len)), &mut buf)
            .ok()?;
        let n = plain.len();
        buf.truncate(n);
        Some(buf)
    }
}

fn additional_data(header: &RecordHeader, plain_len: usize) -> Vec<u8> {
    let mut ad = header.epoch_sequence().to_be_bytes().to_vec();
    ad.push(u8::from(header.content_type));
    ad.extend_from_slice(&header.version.to_be_bytes());
    ad.extend_from_slice(&(plain_len as u16).to_be_bytes());
    ad
}

/// The additional data of a tls12_cid record (RFC 9146 §5): a placeholder of eight 0xff
/// bytes, tls12_cid, the CID's length, tls12_cid, then the header's version, epoch, sequence
/// number and CID, and the length of the DTLSInnerPlaintext.
fn cid_additional_data(header: &RecordHeader, cid: &[u8], inner_len: usize) -> Vec<u8> {
    let mut ad = vec![0xFF; 8];
    ad.extend_from_slice(&[TLS12_CID, cid.len() as u8, TLS12_CID]);
    ad.extend_from_slice(&header.version.to_be_bytes());
    ad.extend_from_slice(&header.epoch_sequence().to_be_bytes());
    ad.extend_from_slice(cid);
    ad.extend_from_slice(&(inner_len as u16).to_be_bytes());
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
    /// The connection ID the peer asked for: it goes into every protected record we send
    /// (RFC 9146 §4). Empty: none.
    send_cid: Vec<u8>,
    /// The connection ID we asked for, which the peer's protected records carry. Empty: none.
    receive_cid: Vec<u8>,
    /// Whether a record opened since [`RecordLayer::take_newest_with_cid`] carried our CID
    /// and a sequence number above all before it in the current epoch.
    newest_with_cid: bool,
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
            send_cid: Vec::new(),
            receive_cid: Vec::new(),
            newest_with_cid: false,
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

    /// Records the connection IDs both peers asked for (RFC 9146 §3): `send` goes into our
    /// protected records, `receive` is expected in the peer's. From epoch 1 on.
    pub fn set_connection_ids(&mut self, send: Vec<u8>, receive: Vec<u8>) {
        self.send_cid = send;
        self.receive_cid = receive;
    }

    /// The connection ID the peer's records carry to us (empty: none).
    pub fn receive_cid(&self) -> &[u8] {
        &self.receive_cid
    }

    /// The connection ID our records carry to the peer (empty: none).
    pub fn send_cid(&self) -> &[u8] {
        &self.send_cid
    }

    /// Whether records of `epoch` go out as tls12_cid records: protected ones, once the peer
    /// asked for a connection ID.
    fn sends_cid(&self, epoch: u16) -> bool {
        epoch > 0 && !self.send_cid.is_empty()
    }

    /// Bytes a record in `epoch` adds to its plaintext: header and AEAD expansion, and with
    /// a connection ID the CID and the inner content type.
    pub fn overhead(&self, epoch: u16) -> usize {
        let cid = if self.sends_cid(epoch) {
            self.send_cid.len() + 1
        } else {
            0
        };
        RECORD_HEADER_LEN
            + cid
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
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        let aead = self.write[usize::from(epoch)].aead.as_ref();
        if let (Some(aead), true) = (aead, self.sends_cid(epoch)) {
            // RFC 9146 §4: DTLSInnerPlaintext (content and real type) under a tls12_cid
            // header that carries the peer's CID.
            let cid = &self.send_cid;
            let inner_len = plaintext.len() + 1;
            let header = RecordHeader {
                content_type: ContentType::from(TLS12_CID),
                version: DTLS12,
                epoch,
                sequence,
                length: (inner_len + expansion) as u16,
            };
            let mut inner = Vec::with_capacity(inner_len);
            encode_inner_plaintext(plaintext, content_type, 0, &mut inner);
            header.encode_with_cid(cid, out);
            let aad = cid_additional_data(&header, cid, inner_len);
            aead.seal(header.epoch_sequence(), &aad, &inner, out);
            return Ok(());
        }
        let header = RecordHeader {
            content_type,
            version: DTLS12,
            epoch,
            sequence,
            length: (plaintext.len() + expansion) as u16,
        };
        header.encode(out);
        match aead {
            Some(aead) => {
                let aad = additional_data(&header, plaintext.len());
                aead.seal(header.epoch_sequence(), &aad, plaintext, out)
            }
            None => out.extend_from_slice(plaintext),
        }
        Ok(())
    }

    /// Whether a record opened since the last call carried our connection ID and a sequence
    /// number above all before it (RFC 9146 §6); clears it.
    pub fn take_newest_with_cid(&mut self) -> bool {
        std::mem::take(&mut self.newest_with_cid)
    }

    /// Authenticates and decrypts a record of the current or an older epoch: its real content
    /// type (from inside a tls12_cid record) and plaintext. `None` means drop it silently
    /// (RFC 6347 §4.1.2.7): unknown epoch, replayed, too long or forged.
    pub fn open(&mut self, header: &RecordHeader, body: &[u8]) -> Option<(ContentType, Vec<u8>)> {
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
        let with_cid = u8::from(header.content_type) == TLS12_CID;
        let (content_type, plain) = match (&state.aead, with_cid) {
            (Some(aead), true) => {
                // The parser only frames tls12_cid records that carry our CID.
                let cid = &self.receive_cid;
                let aad = |len| cid_additional_data(header, cid, len);
                read_inner_plaintext(aead.open(header.epoch_sequence(), body, aad)?)?
            }
            // A tls12_cid record in the clear is not one; once we asked for a CID, a
            // protected record without it is not this association's (RFC 9146 §4: every
            // protected record carries it).
            (None, true) => return None,
            (Some(_), false) if !self.receive_cid.is_empty() => return None,
            (Some(aead), false) => {
                let aad = |len| additional_data(header, len);
                (
                    header.content_type,
                    aead.open(header.epoch_sequence(), body, aad)?,
                )
            }
            (None, false) => (header.content_type, body.to_vec()),
        };
        if plain.len() > MAX_PLAINTEXT || u8::from(content_type) == TLS12_CID {
            return None;
        }
        // RFC 9146 §6: only an authenticated record with a CID and a sequence number above
        // all before it may tell that the peer's address changed.
        self.newest_with_cid |=
            with_cid && header.epoch == self.read_epoch && state.window.is_newest(header.sequence);
        state.window.mark(header.sequence);
        Some((content_type, plain))
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
                .map(|(h, body)| b.open(&h, body).unwrap().1)
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
            assert_eq!(b.open(&h, body).unwrap().1, b"third");
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
        assert_eq!(layer.open(&h, body).unwrap().1, b"hello");
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
