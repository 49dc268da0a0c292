//! The DTLS 1.3 ACK message (RFC 9147 §7): the record numbers of the handshake records
//! received, so that the sender retransmits only what is missing.

use super::{put_prefixed, put_uint, DecodeError, Reader};

/// The content type of an ACK record (RFC 9147 §7; IANA TLS ContentType 26).
pub const ACK_CONTENT_TYPE: u8 = 26;

/// A record's full number: its epoch and its sequence number within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordNumber {
    /// The epoch.
    pub epoch: u64,
    /// The sequence number within the epoch.
    pub sequence: u64,
}

/// Writes an ACK of `records`, which RFC 9147 §7 asks to be in increasing order.
pub fn encode_ack(records: &[RecordNumber], out: &mut Vec<u8>) {
    let mut sorted = records.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    put_prefixed(out, 2, |out| {
        for record in &sorted {
            put_uint(out, record.epoch, 8);
            put_uint(out, record.sequence, 8);
        }
    });
}

/// Reads an ACK's record numbers.
pub fn read_ack(body: &[u8]) -> Result<Vec<RecordNumber>, DecodeError> {
    let mut r = Reader::new(body);
    let mut list = r.sub(2, "ACK record_numbers")?;
    let mut records = Vec::new();
    while !list.is_empty() {
        records.push(RecordNumber {
            epoch: list.u64("ACK epoch")?,
            sequence: list.u64("ACK sequence_number")?,
        });
    }
    r.finish("ACK")?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_sorted_deduplicated_and_read_back() {
        let a = RecordNumber {
            epoch: 2,
            sequence: 7,
        };
        let b = RecordNumber {
            epoch: 0,
            sequence: 1,
        };
        let mut wire = Vec::new();
        encode_ack(&[a, b, a], &mut wire);
        assert_eq!(wire.len(), 2 + 32);
        assert_eq!(&wire[..2], [0, 32]);
        assert_eq!(read_ack(&wire).unwrap(), vec![b, a]);
    }

    #[test]
    fn malformed_acks_are_decode_errors() {
        assert!(
            read_ack(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 1]).is_err(),
            "half a record number"
        );
        assert!(read_ack(&[0, 0, 9]).is_err(), "trailing bytes");
        assert!(read_ack(&[0]).is_err());
        assert_eq!(read_ack(&[0, 0]).unwrap(), vec![]);
    }
}
