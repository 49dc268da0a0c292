//! DTLS 1.3 record protection for one epoch and direction (RFC 9147 §4).
//!
//! Sealing: DTLSInnerPlaintext (content ‖ real type ‖ zero padding) is encrypted with the
//! traffic key; the nonce is the IV XOR the 64-bit sequence number (without the epoch, unlike
//! DTLS 1.2); the additional data is the unified header as written before its sequence bits
//! are encrypted (§4.2.3). Opening reverses each step; any record that fails to open is
//! invalid and the caller drops it (§4.5.2).

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::ContentType;

use super::codec::record::{encode_inner_plaintext, read_inner_plaintext};
use super::codec::unified::{SequenceWidth, UnifiedHeader, UnifiedRecord};
use super::error::DtlsError;
use super::key_schedule13::TrafficKeys;
use super::record::{MAX_PLAINTEXT, TAG_LEN};
use super::record_number::{reconstruct, sequence_bits, SequenceNumberKey, SnCipher};
use crate::ciphers::Encryption;

/// The largest DTLSInnerPlaintext: 2^14 bytes of content and padding, plus the type (RFC 8446
/// §5.4, which RFC 9147 §4 keeps).
const MAX_INNER_PLAINTEXT: usize = MAX_PLAINTEXT + 1;
/// The largest encrypted record a peer may send (RFC 8446 §5.2).
const MAX_ENCRYPTED_RECORD: usize = MAX_PLAINTEXT + 256;

/// What one record opened to.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// The full 64-bit sequence number, reconstructed from the header's low bits.
    pub sequence: u64,
    /// The real content type, from inside the encryption.
    pub content_type: ContentType,
    /// The content, padding removed.
    pub content: Vec<u8>,
}

/// One direction's keys for one epoch.
pub struct Protection {
    epoch: u64,
    key: LessSafeKey,
    iv: [u8; 12],
    sn: SequenceNumberKey,
}

impl Protection {
    /// The protection of `epoch` from the traffic keys that the key schedule derived.
    pub fn new(epoch: u64, enc: Encryption, keys: &TrafficKeys) -> Result<Self, DtlsError> {
        let (alg, sn_cipher) = match enc {
            Encryption::Aes128Gcm => (&aead::AES_128_GCM, SnCipher::Aes128),
            Encryption::Aes256Gcm => (&aead::AES_256_GCM, SnCipher::Aes256),
            Encryption::Chacha20Poly1305 => (&aead::CHACHA20_POLY1305, SnCipher::ChaCha20),
        };
        let wrong = |what| DtlsError::Internal(format!("DTLS 1.3 {what} of the wrong length"));
        let key = UnboundKey::new(alg, &keys.key).map_err(|_| wrong("key"))?;
        let iv = keys.iv.as_slice().try_into().map_err(|_| wrong("IV"))?;
        let sn = SequenceNumberKey::new(sn_cipher, &keys.sn).ok_or_else(|| wrong("sn key"))?;
        Ok(Self {
            epoch,
            key: LessSafeKey::new(key),
            iv,
            sn,
        })
    }

    /// The epoch these keys protect.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The nonce of record `sequence` (RFC 8446 §5.3, as RFC 9147 §4 uses it).
    fn nonce(&self, sequence: u64) -> Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(sequence.to_be_bytes()) {
            *n ^= s;
        }
        Nonce::assume_unique_for_key(nonce)
    }

    /// Appends record `sequence` carrying `content` of `content_type` to `out`, with `cid` in
    /// its header when the peer asked for one, and `padding` zero bytes inside the encryption.
    /// The header always carries a 16-bit sequence number and the length, so records can
    /// share a datagram. Content and padding together may not pass 2^14 bytes (the caller
    /// fragments): an error otherwise, and nothing is written. The 16-byte tag alone leaves
    /// the sequence number mask its 16-byte sample.
    pub fn seal(
        &self,
        sequence: u64,
        cid: Option<&[u8]>,
        content_type: ContentType,
        content: &[u8],
        padding: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), DtlsError> {
        if content.len() + padding > MAX_PLAINTEXT {
            return Err(DtlsError::Internal(format!(
                "a DTLS 1.3 record of {} bytes, over 2^14",
                content.len() + padding
            )));
        }
        let header = UnifiedHeader {
            epoch_bits: (self.epoch & 3) as u8,
            cid,
            sequence: sequence as u16,
            width: SequenceWidth::Bits16,
            has_length: true,
        };
        let start = out.len();
        header.encode((content.len() + 1 + padding + TAG_LEN) as u16, out);
        let body = out.len();
        encode_inner_plaintext(content, content_type, padding, out);
        let (head, inner) = out[start..].split_at_mut(body - start);
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(sequence), Aad::from(&*head), inner)
            .expect("sealing cannot fail for a valid key and length");
        out.extend_from_slice(tag.as_ref());
        let (head, ciphertext) = out[start..].split_at_mut(body - start);
        let masked = self.sn.apply(&header, head, ciphertext);
        debug_assert!(masked, "a sealed record is at least its tag long");
        Ok(())
    }

    /// Opens a record whose header named this epoch; `expected` is one more than the highest
    /// sequence number received in the epoch. None: the record is invalid (drop it; RFC 9147
    /// §4.5.2), an oversized one included. An error: it authenticated but holds no content type
    /// or more than 2^14 bytes of content (RFC 8446 §5.4).
    pub fn open(
        &self,
        record: &UnifiedRecord<'_>,
        expected: u64,
    ) -> Result<Option<Opened>, DtlsError> {
        if record.ciphertext.len() > MAX_ENCRYPTED_RECORD {
            return Ok(None);
        }
        let mut head = record.header_bytes.to_vec();
        if !self.sn.apply(&record.header, &mut head, record.ciphertext) {
            return Ok(None);
        }
        let low = sequence_bits(&record.header, &head);
        let sequence = reconstruct(expected, low, record.header.width);
        let mut buf = record.ciphertext.to_vec();
        let Ok(inner) = self
            .key
            .open_in_place(self.nonce(sequence), Aad::from(&head), &mut buf)
        else {
            return Ok(None);
        };
        if inner.len() > MAX_INNER_PLAINTEXT {
            return Err(DtlsError::RecordOverflow);
        }
        let inner_len = inner.len();
        buf.truncate(inner_len);
        let Some((content_type, content)) = read_inner_plaintext(buf) else {
            return Err(DtlsError::UnexpectedMessage {
                expected: "a record with a content type",
                got: "a record of padding only".into(),
            });
        };
        Ok(Some(Opened {
            sequence,
            content_type,
            content,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls::codec::unified::read_record;
    use crate::dtls::key_schedule::PrfHash;
    use crate::dtls::key_schedule13::Secret;

    fn pair(enc: Encryption, key_len: usize) -> (Protection, Protection) {
        let secret = [0x42u8; 32];
        let keys = Secret::new(PrfHash::Sha256, &secret).traffic_keys(key_len);
        (
            Protection::new(5, enc, &keys).unwrap(),
            Protection::new(5, enc, &keys).unwrap(),
        )
    }

    #[test]
    fn every_cipher_round_trips_and_hides_the_sequence_number() {
        for (enc, key_len) in [
            (Encryption::Aes128Gcm, 16),
            (Encryption::Aes256Gcm, 32),
            (Encryption::Chacha20Poly1305, 32),
        ] {
            let (tx, rx) = pair(enc, key_len);
            let mut wire = Vec::new();
            tx.seal(
                0x1_0203,
                Some(&[7, 7]),
                ContentType::ApplicationData,
                b"hello",
                3,
                &mut wire,
            )
            .unwrap();
            let (record, rest) = read_record(&wire, 2).unwrap();
            assert!(rest.is_empty());
            assert_eq!(record.header.epoch_bits, 1, "epoch 5's low bits");
            assert_ne!(
                record.header.sequence, 0x0203,
                "sequence bits travel encrypted"
            );
            let opened = rx.open(&record, 0x1_0200).unwrap().unwrap();
            assert_eq!(opened.sequence, 0x1_0203);
            assert_eq!(opened.content_type, ContentType::ApplicationData);
            assert_eq!(opened.content, b"hello");
        }
    }

    #[test]
    fn tampering_and_wrong_keys_make_invalid_records() {
        let (tx, rx) = pair(Encryption::Aes128Gcm, 16);
        let mut wire = Vec::new();
        tx.seal(9, None, ContentType::Handshake, &[1; 40], 0, &mut wire)
            .unwrap();
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] ^= 0x01;
            if let Ok((record, _)) = read_record(&bad, 0) {
                assert_eq!(rx.open(&record, 9).unwrap(), None, "flipped byte {i}");
            }
        }
        let other = Protection::new(
            5,
            Encryption::Aes128Gcm,
            &Secret::new(PrfHash::Sha256, &[1; 32]).traffic_keys(16),
        )
        .unwrap();
        let (record, _) = read_record(&wire, 0).unwrap();
        assert_eq!(other.open(&record, 9).unwrap(), None);
    }

    #[test]
    fn sizes_beyond_2_to_the_14_are_refused_both_ways() {
        let (tx, rx) = pair(Encryption::Chacha20Poly1305, 32);
        let most = vec![1u8; MAX_PLAINTEXT];
        let mut wire = Vec::new();
        tx.seal(1, None, ContentType::ApplicationData, &most, 0, &mut wire)
            .unwrap();
        let (record, _) = read_record(&wire, 0).unwrap();
        let opened = rx.open(&record, 1).unwrap().unwrap();
        assert_eq!(opened.content.len(), MAX_PLAINTEXT);
        let mut refused = Vec::new();
        let over = tx.seal(
            2,
            None,
            ContentType::ApplicationData,
            &most,
            1,
            &mut refused,
        );
        assert!(over.is_err() && refused.is_empty());
        // An empty record still leaves the mask its sample: the tag is 16 bytes.
        let mut empty = Vec::new();
        tx.seal(3, None, ContentType::Alert, &[], 0, &mut empty)
            .unwrap();
        let (record, _) = read_record(&empty, 0).unwrap();
        let opened = rx.open(&record, 3).unwrap().unwrap();
        assert_eq!(
            (opened.content_type, opened.content.len()),
            (ContentType::Alert, 0)
        );
    }

    #[test]
    fn a_record_of_padding_only_is_an_unexpected_message() {
        let (tx, rx) = pair(Encryption::Aes128Gcm, 16);
        let mut wire = Vec::new();
        // Content type 0 is what padding looks like: nothing marks where content ends.
        tx.seal(3, None, ContentType::from(0), &[0, 0], 4, &mut wire)
            .unwrap();
        let (record, _) = read_record(&wire, 0).unwrap();
        assert!(matches!(
            rx.open(&record, 3),
            Err(DtlsError::UnexpectedMessage { .. })
        ));
    }

    #[test]
    fn records_share_a_datagram() {
        let (tx, rx) = pair(Encryption::Aes256Gcm, 32);
        let mut wire = Vec::new();
        tx.seal(10, None, ContentType::Handshake, b"first", 0, &mut wire)
            .unwrap();
        tx.seal(
            11,
            None,
            ContentType::ApplicationData,
            b"second",
            0,
            &mut wire,
        )
        .unwrap();
        let (first, rest) = read_record(&wire, 0).unwrap();
        let (second, rest) = read_record(rest, 0).unwrap();
        assert!(rest.is_empty());
        assert_eq!(rx.open(&first, 10).unwrap().unwrap().content, b"first");
        let second = rx.open(&second, 11).unwrap().unwrap();
        assert_eq!((second.sequence, second.content), (11, b"second".to_vec()));
    }
}
