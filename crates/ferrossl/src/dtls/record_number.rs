//! DTLS 1.3 record numbers: the encryption of the sequence number bits in the unified header
//! (RFC 9147 §4.2.3) and the reconstruction of the full 64-bit number from those bits
//! (§4.2.2).
//!
//! The mask is computed as QUIC's header protection computes it (RFC 9001 §5.4): AES-ECB of
//! the first 16 bytes of the ciphertext, or ChaCha20 with those bytes as counter and nonce.

use aws_lc_rs::aead::quic;

use super::codec::unified::{SequenceWidth, UnifiedHeader};

/// The cipher that masks sequence numbers: the one of the record's AEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnCipher {
    /// For AES-128-GCM.
    Aes128,
    /// For AES-256-GCM.
    Aes256,
    /// For ChaCha20-Poly1305.
    ChaCha20,
}

/// The bytes of ciphertext the mask is computed from; a shorter record is discarded.
pub const SAMPLE_LEN: usize = 16;

/// One direction's `sn_key` (RFC 9147 §4.2.3), derived with the "sn" label beside the
/// traffic key and IV.
pub struct SequenceNumberKey(quic::HeaderProtectionKey);

impl SequenceNumberKey {
    /// A key for `cipher` from `key` (16 or 32 bytes, as the cipher needs).
    pub fn new(cipher: SnCipher, key: &[u8]) -> Option<Self> {
        let algorithm = match cipher {
            SnCipher::Aes128 => &quic::AES_128,
            SnCipher::Aes256 => &quic::AES_256,
            SnCipher::ChaCha20 => &quic::CHACHA20,
        };
        quic::HeaderProtectionKey::new(algorithm, key)
            .ok()
            .map(Self)
    }

    /// The mask for a record whose encrypted body is `ciphertext`: None when it is shorter
    /// than [`SAMPLE_LEN`], which RFC 9147 §4.2.3 leaves no way to protect.
    fn mask(&self, ciphertext: &[u8]) -> Option<[u8; 5]> {
        self.0.new_mask(ciphertext.get(..SAMPLE_LEN)?).ok()
    }

    /// Encrypts (or decrypts: the mask is an XOR) the sequence number bytes of `header`, the
    /// encoded header of a record whose encrypted body is `ciphertext`. Returns false, leaving
    /// the header unchanged, when the record is too short to be protected.
    pub fn apply(
        &self,
        header: &UnifiedHeader<'_>,
        header_bytes: &mut [u8],
        ciphertext: &[u8],
    ) -> bool {
        let Some(mask) = self.mask(ciphertext) else {
            return false;
        };
        let start = header.sequence_offset();
        for (byte, m) in header_bytes[start..start + header.width.bytes()]
            .iter_mut()
            .zip(mask)
        {
            *byte ^= m;
        }
        true
    }
}

/// The sequence bits of `header` once `header_bytes` hold them decrypted.
pub fn sequence_bits(header: &UnifiedHeader<'_>, header_bytes: &[u8]) -> u16 {
    let start = header.sequence_offset();
    match header.width {
        SequenceWidth::Bits8 => u16::from(header_bytes[start]),
        SequenceWidth::Bits16 => u16::from_be_bytes([header_bytes[start], header_bytes[start + 1]]),
    }
}

/// The full sequence number whose low `width` bits are `low`: of all candidates, the one
/// closest to `expected`, one more than the highest number received in the epoch (RFC 9147
/// §4.2.2; the same rule as QUIC's packet numbers, RFC 9000 §A.3).
pub fn reconstruct(expected: u64, low: u16, width: SequenceWidth) -> u64 {
    let window = 1u64 << width.bits();
    let half = window / 2;
    let candidate = (expected & !(window - 1)) | u64::from(low);
    if candidate.saturating_add(half) <= expected && candidate < u64::MAX - window {
        candidate + window
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The masks of RFC 9001's Appendix A (A.2 for AES, A.5 for ChaCha20): DTLS 1.3 defines
    /// its record number mask with the same functions.
    #[test]
    fn masks_match_the_published_vectors() {
        let aes =
            SequenceNumberKey::new(SnCipher::Aes128, &hex("9f50449e04a0e810283a1e9933adedd2"))
                .unwrap();
        assert_eq!(
            aes.mask(&hex("d1b1c98dd7689fb8ec11d242b123dc9b"))
                .unwrap()
                .to_vec(),
            hex("437b9aec36")
        );
        let chacha = SequenceNumberKey::new(
            SnCipher::ChaCha20,
            &hex("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"),
        )
        .unwrap();
        assert_eq!(
            chacha
                .mask(&hex("5e5cd55c41f69080575d7999c25a5bfb"))
                .unwrap()
                .to_vec(),
            hex("aefefe7d03")
        );
    }

    #[test]
    fn applying_twice_restores_the_header_and_short_records_are_refused() {
        let key = SequenceNumberKey::new(SnCipher::Aes256, &[7; 32]).unwrap();
        let header = UnifiedHeader {
            epoch_bits: 3,
            cid: Some(&[1, 2]),
            sequence: 0xBEEF,
            width: SequenceWidth::Bits16,
            has_length: true,
        };
        let mut wire = Vec::new();
        header.encode(32, &mut wire);
        let plain = wire.clone();
        let ciphertext = [0x5A; 32];
        assert!(key.apply(&header, &mut wire, &ciphertext));
        assert_ne!(wire, plain);
        assert_eq!(wire[..3], plain[..3], "only the sequence bytes change");
        assert_eq!(wire[5..], plain[5..]);
        assert!(key.apply(&header, &mut wire, &ciphertext));
        assert_eq!(wire, plain);
        assert_eq!(sequence_bits(&header, &wire), 0xBEEF);
        assert!(!key.apply(&header, &mut wire, &ciphertext[..15]));
        assert_eq!(wire, plain);
    }

    #[test]
    fn reconstruction_picks_the_closest_candidate() {
        use SequenceWidth::*;
        // RFC 9000 §A.3's example: expected 0xa82f30eb, 16 bits 0x9b32 → 0xa82f9b32.
        assert_eq!(reconstruct(0xa82f30eb, 0x9b32, Bits16), 0xa82f9b32);
        assert_eq!(reconstruct(0, 5, Bits8), 5);
        assert_eq!(
            reconstruct(250, 3, Bits8),
            259,
            "past a wrap of the low bits"
        );
        assert_eq!(
            reconstruct(260, 250, Bits8),
            250,
            "a late record from before the wrap"
        );
        assert_eq!(reconstruct(100, 0x7f, Bits8), 0x7f);
        assert_eq!(reconstruct(0x1_0005, 0xFFFE, Bits16), 0xFFFE);
        assert_eq!(
            reconstruct(u64::MAX, 0xFF, Bits8),
            u64::MAX,
            "no overflow at the top"
        );
    }
}
