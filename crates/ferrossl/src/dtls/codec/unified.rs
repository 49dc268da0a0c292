//! The DTLS 1.3 unified header (RFC 9147 §4): the compact header of every encrypted record.
//!
//! ```text
//! 0 1 2 3 4 5 6 7
//! 0 0 1 C S L E E    C: a connection ID follows, S: 16-bit sequence number (else 8),
//! [connection ID]    L: a 16-bit length follows (else the record fills the datagram),
//! sequence (1|2)     EE: the low two bits of the epoch
//! [length (2)]
//! ```
//!
//! The sequence number bytes travel encrypted (§4.2.3); this module only frames them.

use super::{put_u16, DecodeError, Reader};

const FIXED_MASK: u8 = 0b1110_0000;
const FIXED_BITS: u8 = 0b0010_0000;
const CID_BIT: u8 = 0b0001_0000;
const SEQ16_BIT: u8 = 0b0000_1000;
const LENGTH_BIT: u8 = 0b0000_0100;
const EPOCH_MASK: u8 = 0b0000_0011;

/// Whether a record starting with `first` has a unified header: its first three bits are
/// 001, which no DTLSPlaintext content type uses (RFC 9147 §4.1).
pub fn is_unified(first: u8) -> bool {
    first & FIXED_MASK == FIXED_BITS
}

/// How many low bits of the record sequence number the header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceWidth {
    /// One byte: for short-lived or low-rate associations.
    Bits8,
    /// Two bytes: what implementations send by default (§4: "SHOULD" unless
    /// bandwidth is at a premium).
    Bits16,
}

impl SequenceWidth {
    /// The number of bytes on the wire.
    pub fn bytes(self) -> usize {
        match self {
            Self::Bits8 => 1,
            Self::Bits16 => 2,
        }
    }

    /// The number of sequence number bits carried.
    pub fn bits(self) -> u32 {
        8 * self.bytes() as u32
    }
}

/// One unified header, as read off the wire (sequence bits still encrypted) or as about to
/// be written (before they are encrypted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnifiedHeader<'a> {
    /// The epoch's low two bits.
    pub epoch_bits: u8,
    /// The receiver's connection ID, when the association uses one (RFC 9147 §9).
    pub cid: Option<&'a [u8]>,
    /// The sequence number's low bits, as they are on the wire.
    pub sequence: u16,
    /// How many of them the header carries.
    pub width: SequenceWidth,
    /// Whether the header carries the record's length; without it the record runs to the
    /// end of the datagram, so it must be the datagram's last.
    pub has_length: bool,
}

/// A record split off a datagram: its header, the header's exact bytes (the AEAD's
/// additional data once the sequence bits are decrypted), and the encrypted body.
#[derive(Debug, PartialEq, Eq)]
pub struct UnifiedRecord<'a> {
    /// The header fields.
    pub header: UnifiedHeader<'a>,
    /// The header as it was on the wire.
    pub header_bytes: &'a [u8],
    /// The encrypted record (DTLSCiphertext's encrypted_record).
    pub ciphertext: &'a [u8],
}

impl<'a> UnifiedHeader<'a> {
    /// The header's length on the wire.
    pub fn encoded_len(&self) -> usize {
        1 + self.cid.map_or(0, <[u8]>::len) + self.width.bytes() + 2 * usize::from(self.has_length)
    }

    /// Where the sequence number bytes start within the header.
    pub fn sequence_offset(&self) -> usize {
        1 + self.cid.map_or(0, <[u8]>::len)
    }

    /// Writes the header; `length` is the encrypted record's length, written when
    /// `has_length` is set.
    pub fn encode(&self, length: u16, out: &mut Vec<u8>) {
        let mut first = FIXED_BITS | (self.epoch_bits & EPOCH_MASK);
        if self.cid.is_some() {
            first |= CID_BIT;
        }
        if self.width == SequenceWidth::Bits16 {
            first |= SEQ16_BIT;
        }
        if self.has_length {
            first |= LENGTH_BIT;
        }
        out.push(first);
        out.extend_from_slice(self.cid.unwrap_or_default());
        match self.width {
            SequenceWidth::Bits8 => out.push(self.sequence as u8),
            SequenceWidth::Bits16 => put_u16(out, self.sequence),
        }
        if self.has_length {
            put_u16(out, length);
        }
    }
}

/// Reads one unified-header record from the front of `datagram`; returns it and what
/// follows it. `cid_len` is the length of the connection ID this endpoint asked its peer to
/// use (0 when none): the header does not say how long its CID is (RFC 9147 §9).
pub fn read_record<'a>(
    datagram: &'a [u8],
    cid_len: usize,
) -> Result<(UnifiedRecord<'a>, &'a [u8]), DecodeError> {
    let mut r = Reader::new(datagram);
    let first = r.u8("unified header")?;
    if !is_unified(first) {
        return Err(DecodeError("unified header: not 001 in the top bits"));
    }
    let cid = match (first & CID_BIT != 0, cid_len) {
        (false, _) => None,
        // A connection ID this endpoint never asked for: the record cannot be ours.
        (true, 0) => return Err(DecodeError("connection ID that was not negotiated")),
        (true, n) => Some(r.take(n, "connection ID")?),
    };
    let width = if first & SEQ16_BIT != 0 {
        SequenceWidth::Bits16
    } else {
        SequenceWidth::Bits8
    };
    let sequence = match width {
        SequenceWidth::Bits8 => u16::from(r.u8("sequence number")?),
        SequenceWidth::Bits16 => r.u16("sequence number")?,
    };
    let has_length = first & LENGTH_BIT != 0;
    let header = UnifiedHeader {
        epoch_bits: first & EPOCH_MASK,
        cid,
        sequence,
        width,
        has_length,
    };
    let ciphertext = if has_length {
        let length = r.u16("record length")?;
        r.take(usize::from(length), "encrypted record")?
    } else {
        r.rest()
    };
    let header_bytes = &datagram[..header.encoded_len()];
    Ok((
        UnifiedRecord {
            header,
            header_bytes,
            ciphertext,
        },
        r.rest(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cid: Option<&[u8]>, width: SequenceWidth, has_length: bool) -> UnifiedHeader<'_> {
        UnifiedHeader {
            epoch_bits: 3,
            cid,
            sequence: 0x1234,
            width,
            has_length,
        }
    }

    #[test]
    fn every_form_reads_back_what_was_written() {
        let body = [0xAB; 20];
        for cid in [None, Some(&[9u8, 8, 7][..])] {
            for width in [SequenceWidth::Bits8, SequenceWidth::Bits16] {
                for has_length in [false, true] {
                    let written = header(cid, width, has_length);
                    let mut wire = Vec::new();
                    written.encode(body.len() as u16, &mut wire);
                    assert_eq!(wire.len(), written.encoded_len());
                    wire.extend_from_slice(&body);
                    let (record, rest) = read_record(&wire, 3).unwrap();
                    let expected_sequence = match width {
                        SequenceWidth::Bits8 => 0x34,
                        SequenceWidth::Bits16 => 0x1234,
                    };
                    assert_eq!(record.header.sequence, expected_sequence);
                    assert_eq!(record.header.cid, cid);
                    assert_eq!(record.header.epoch_bits, 3);
                    assert_eq!(record.header_bytes, &wire[..written.encoded_len()]);
                    assert_eq!(record.ciphertext, &body);
                    assert!(rest.is_empty());
                }
            }
        }
    }

    #[test]
    fn the_common_form_is_0x2c_plus_epoch() {
        // No CID, 16-bit sequence number, length present: what most stacks send (0x2c|EE).
        let mut wire = Vec::new();
        header(None, SequenceWidth::Bits16, true).encode(5, &mut wire);
        assert_eq!(wire, [0x2F, 0x12, 0x34, 0x00, 0x05]);
        assert!(is_unified(0x2F) && !is_unified(22) && !is_unified(0x40));
    }

    #[test]
    fn a_length_splits_records_and_the_last_may_omit_it() {
        let mut wire = Vec::new();
        header(None, SequenceWidth::Bits8, true).encode(2, &mut wire);
        wire.extend_from_slice(&[1, 2]);
        header(None, SequenceWidth::Bits8, false).encode(0, &mut wire);
        wire.extend_from_slice(&[3, 4, 5]);
        let (first, rest) = read_record(&wire, 0).unwrap();
        assert_eq!(first.ciphertext, [1, 2]);
        let (second, rest) = read_record(rest, 0).unwrap();
        assert_eq!(second.ciphertext, [3, 4, 5]);
        assert!(rest.is_empty());
    }

    #[test]
    fn malformed_headers_are_decode_errors() {
        // A CID bit when none was negotiated, a truncated CID, a length past the end, and a
        // DTLSPlaintext header.
        assert!(read_record(&[0x3C, 1, 2, 0, 1, 0], 0).is_err());
        assert!(read_record(&[0x34, 1], 4).is_err());
        assert!(read_record(&[0x2C, 1, 2, 0, 9, 0], 0).is_err());
        assert!(read_record(&[22, 0xFE, 0xFD], 0).is_err());
        assert!(read_record(&[], 0).is_err());
    }
}
