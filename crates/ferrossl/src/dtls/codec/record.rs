//! The DTLS 1.2 record header (RFC 6347 §4.1), the handshake header with its fragment fields
//! (§4.2.2), and the two one-record messages: ChangeCipherSpec and Alert.

use rustls::{AlertDescription, ContentType, HandshakeType};

use super::{put_u16, put_uint, DecodeError, Reader};

/// DTLS 1.2 on the wire (the one's complement of 1.2, RFC 6347 §4.1).
pub const DTLS12: u16 = 0xFEFD;
/// DTLS 1.0: what a HelloVerifyRequest carries whatever the version (RFC 6347 §4.2.1).
pub const DTLS10: u16 = 0xFEFF;
/// type(1) + version(2) + epoch(2) + sequence_number(6) + length(2).
pub const RECORD_HEADER_LEN: usize = 13;
/// msg_type(1) + length(3) + message_seq(2) + fragment_offset(3) + fragment_length(3).
pub const HANDSHAKE_HEADER_LEN: usize = 12;
/// The largest record sequence number: it is 48 bits wide.
pub const MAX_SEQUENCE: u64 = (1 << 48) - 1;

/// One record's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// What the record carries.
    pub content_type: ContentType,
    /// The record-layer version.
    pub version: u16,
    /// The key epoch: 0 in the clear, 1 after the first ChangeCipherSpec.
    pub epoch: u16,
    /// The 48-bit record sequence number within the epoch.
    pub sequence: u64,
    /// The length of the record body.
    pub length: u16,
}

impl RecordHeader {
    /// Reads a header, which for a tls12_cid record (RFC 9146 §4) holds `cid` before the
    /// length.
    fn read_with_cid(r: &mut Reader<'_>, cid: &[u8]) -> Result<Self, DecodeError> {
        let content_type = r.u8("record type")?;
        let version = r.u16("record version")?;
        let epoch = r.u16("record epoch")?;
        let sequence = r.u48("record sequence number")?;
        if content_type == TLS12_CID && (cid.is_empty() || r.take(cid.len(), "CID")? != cid) {
            return Err(DecodeError("a connection ID that is not ours"));
        }
        Ok(Self {
            content_type: ContentType::from(content_type),
            version,
            epoch,
            sequence,
            length: r.u16("record length")?,
        })
    }

    /// Writes the header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with_cid(&[], out);
    }

    /// Writes the header with `cid` between sequence number and length, as a tls12_cid
    /// record has it (RFC 9146 §4); an empty `cid` writes the plain header.
    pub fn encode_with_cid(&self, cid: &[u8], out: &mut Vec<u8>) {
        out.push(u8::from(self.content_type));
        put_u16(out, self.version);
        put_u16(out, self.epoch);
        put_uint(out, self.sequence, 6);
        out.extend_from_slice(cid);
        put_u16(out, self.length);
    }

    /// epoch ‖ sequence_number: the 64-bit value the AEAD nonce and additional data use
    /// (RFC 6347 §4.1.2.1).
    pub fn epoch_sequence(&self) -> u64 {
        u64::from(self.epoch) << 48 | self.sequence
    }
}

/// The outer content type of a DTLS 1.2 record that carries a connection ID (RFC 9146 §4).
pub const TLS12_CID: u8 = 25;

/// Splits a datagram into its records. A datagram may hold several (RFC 6347 §4.1.1); parsing
/// stops at the first malformed header, and the rest of the datagram is dropped.
pub fn records(datagram: &[u8]) -> impl Iterator<Item = (RecordHeader, &[u8])> {
    records_with_cid(datagram, &[])
}

/// [`records`] for an endpoint that asked its peer for the connection ID `cid` (RFC 9146):
/// a tls12_cid record carries the CID between sequence number and length, and one with another
/// CID is not for this association (parsing stops there). With an empty `cid`, tls12_cid
/// records cannot be framed and end the parse as malformed headers do.
pub fn records_with_cid<'a>(
    datagram: &'a [u8],
    cid: &'a [u8],
) -> impl Iterator<Item = (RecordHeader, &'a [u8])> {
    let mut r = Reader::new(datagram);
    std::iter::from_fn(move || {
        let header = RecordHeader::read_with_cid(&mut r, cid).ok()?;
        let body = r.take(usize::from(header.length), "record body").ok()?;
        Some((header, body))
    })
}

/// Appends DTLSInnerPlaintext (RFC 9146 §4, RFC 9147 §4): the content, its real type, then
/// `padding` zeros.
pub fn encode_inner_plaintext(
    content: &[u8],
    content_type: ContentType,
    padding: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(content);
    out.push(u8::from(content_type));
    out.resize(out.len() + padding, 0);
}

/// Splits DTLSInnerPlaintext into its real type and content: the type is the last non-zero
/// byte, the zeros behind it padding. None when it is all zeros (no type at all).
pub fn read_inner_plaintext(mut inner: Vec<u8>) -> Option<(ContentType, Vec<u8>)> {
    let at = inner.iter().rposition(|&b| b != 0)?;
    let content_type = ContentType::from(inner[at]);
    inner.truncate(at);
    Some((content_type, inner))
}

/// A handshake message header, which in DTLS also says which part of the message follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeHeader {
    /// The message type.
    pub msg_type: HandshakeType,
    /// The length of the whole message body.
    pub length: u32,
    /// The message's place in the handshake (RFC 6347 §4.2.2).
    pub message_seq: u16,
    /// Where this fragment starts within the body.
    pub fragment_offset: u32,
    /// How many body bytes this fragment carries.
    pub fragment_length: u32,
}

impl HandshakeHeader {
    /// Reads a header and checks that the fragment lies within the message.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let h = Self {
            msg_type: HandshakeType::from(r.u8("handshake type")?),
            length: r.u24("handshake length")?,
            message_seq: r.u16("message_seq")?,
            fragment_offset: r.u24("fragment_offset")?,
            fragment_length: r.u24("fragment_length")?,
        };
        if u64::from(h.fragment_offset) + u64::from(h.fragment_length) > u64::from(h.length) {
            return Err(DecodeError("handshake fragment beyond the message end"));
        }
        Ok(h)
    }

    /// Writes the header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.msg_type));
        put_uint(out, u64::from(self.length), 3);
        put_u16(out, self.message_seq);
        put_uint(out, u64::from(self.fragment_offset), 3);
        put_uint(out, u64::from(self.fragment_length), 3);
    }

    /// Whether this fragment ends the message.
    pub fn is_last_fragment(&self) -> bool {
        self.fragment_offset + self.fragment_length == self.length
    }
}

/// Splits a handshake record body into fragments (one record may carry several).
pub fn handshake_fragments(
    body: &[u8],
) -> impl Iterator<Item = Result<(HandshakeHeader, &[u8]), DecodeError>> {
    let mut r = Reader::new(body);
    std::iter::from_fn(move || {
        if r.is_empty() {
            return None;
        }
        let item = HandshakeHeader::read(&mut r).and_then(|h| {
            let fragment = r.take(h.fragment_length as usize, "handshake fragment")?;
            Ok((h, fragment))
        });
        if item.is_err() {
            r.rest();
        }
        Some(item)
    })
}

/// The ChangeCipherSpec body: the single byte 1 (RFC 5246 §7.1).
pub const CHANGE_CIPHER_SPEC: [u8; 1] = [1];

/// Whether a record body is a well-formed ChangeCipherSpec.
pub fn is_change_cipher_spec(body: &[u8]) -> bool {
    body == CHANGE_CIPHER_SPEC
}

/// An alert's level (RFC 5246 §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertLevel {
    /// The association may go on.
    Warning,
    /// The association ends.
    Fatal,
}

/// An alert message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Warning or fatal.
    pub level: AlertLevel,
    /// What happened.
    pub description: AlertDescription,
}

impl Alert {
    /// Reads an alert record body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let level = match r.u8("alert level")? {
            1 => AlertLevel::Warning,
            2 => AlertLevel::Fatal,
            _ => return Err(DecodeError("alert level")),
        };
        let description = AlertDescription::from(r.u8("alert description")?);
        r.finish("alert")?;
        Ok(Self { level, description })
    }

    /// The two-byte alert body.
    pub fn encode(&self) -> [u8; 2] {
        let level = match self.level {
            AlertLevel::Warning => 1,
            AlertLevel::Fatal => 2,
        };
        [level, u8::from(self.description)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trip_and_datagram_split() {
        let h = RecordHeader {
            content_type: ContentType::Handshake,
            version: DTLS12,
            epoch: 1,
            sequence: MAX_SEQUENCE,
            length: 3,
        };
        let mut datagram = vec![];
        h.encode(&mut datagram);
        datagram.extend_from_slice(b"abc");
        assert_eq!(datagram.len(), RECORD_HEADER_LEN + 3);
        assert_eq!(h.epoch_sequence(), 1 << 48 | MAX_SEQUENCE);
        let second = RecordHeader { length: 1, ..h };
        second.encode(&mut datagram);
        datagram.push(b'z');
        // A truncated third record is dropped, the first two survive.
        datagram.extend_from_slice(&[22, 0xFE]);
        let got: Vec<_> = records(&datagram).collect();
        assert_eq!(got, [(h, &b"abc"[..]), (second, &b"z"[..])]);
    }

    #[test]
    fn handshake_header_round_trip_and_bounds() {
        let h = HandshakeHeader {
            msg_type: HandshakeType::Certificate,
            length: 1000,
            message_seq: 2,
            fragment_offset: 900,
            fragment_length: 100,
        };
        let mut out = vec![];
        h.encode(&mut out);
        assert_eq!(out.len(), HANDSHAKE_HEADER_LEN);
        assert_eq!(HandshakeHeader::read(&mut Reader::new(&out)), Ok(h));
        assert!(h.is_last_fragment());
        let mut bad = vec![];
        HandshakeHeader {
            fragment_length: 101,
            ..h
        }
        .encode(&mut bad);
        assert!(HandshakeHeader::read(&mut Reader::new(&bad)).is_err());
        // Two fragments in one record body, then garbage.
        let mut body = vec![];
        for seq in [0u16, 1] {
            HandshakeHeader {
                msg_type: HandshakeType::ServerHelloDone,
                length: 0,
                message_seq: seq,
                fragment_offset: 0,
                fragment_length: 0,
            }
            .encode(&mut body);
        }
        body.push(0xFF);
        let frags: Vec<_> = handshake_fragments(&body).collect();
        assert_eq!(frags.len(), 3);
        assert!(frags[0].is_ok() && frags[1].is_ok() && frags[2].is_err());
    }

    #[test]
    fn alerts() {
        let a = Alert {
            level: AlertLevel::Fatal,
            description: AlertDescription::HandshakeFailure,
        };
        assert_eq!(a.encode(), [2, 40]);
        assert_eq!(Alert::read(&a.encode()), Ok(a));
        assert!(Alert::read(&[3, 0]).is_err());
        assert!(Alert::read(&[1, 0, 0]).is_err());
        assert!(is_change_cipher_spec(&[1]) && !is_change_cipher_spec(&[1, 1]));
    }
}
