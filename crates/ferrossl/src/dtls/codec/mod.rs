//! Typed wire formats, kept apart from the handshake logic: record and handshake headers
//! ([`record`]), handshake message bodies ([`message`]) and hello extensions ([`extensions`]).
//! Every type decodes from a byte slice, rejects trailing bytes and encodes back to the same
//! bytes.

pub mod ack;
pub mod extensions;
pub mod extensions13;
pub mod message;
pub mod message13;
pub mod record;
pub mod unified;

pub use super::error::DecodeError;

/// A cursor over bytes being decoded. Every read names the field, so a failure says what was
/// missing.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A big-endian integer of `n` bytes (n ≤ 8).
    fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, DecodeError> {
        Ok(self
            .take(n, what)?
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(self.uint(2, what)? as u16)
    }

    /// A big-endian 24-bit integer.
    pub fn u24(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(self.uint(3, what)? as u32)
    }

    /// A big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(self.uint(4, what)? as u32)
    }

    /// A big-endian 48-bit integer (record sequence numbers).
    pub fn u48(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.uint(6, what)
    }

    /// A big-endian 64-bit integer (DTLS 1.3 record numbers).
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.uint(8, what)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Bytes behind a length prefix of `width` bytes (1, 2 or 3).
    pub fn prefixed(&mut self, width: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.uint(width, what)? as usize;
        self.take(len, what)
    }

    /// A sub-reader over bytes behind a length prefix of `width` bytes.
    pub fn sub(&mut self, width: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        self.prefixed(width, what).map(Reader::new)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails when bytes are left over: a message must fill its body exactly.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(what))
        }
    }
}

/// Appends the low `n` bytes of `v`, big-endian.
pub fn put_uint(out: &mut Vec<u8>, v: u64, n: usize) {
    out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
}

/// Appends a big-endian u16.
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends what `body` writes behind a length prefix of `width` bytes, patched afterwards.
pub fn put_prefixed(out: &mut Vec<u8>, width: usize, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.resize(at + width, 0);
    body(out);
    let len = (out.len() - at - width) as u64;
    debug_assert!(len < 1 << (8 * width), "length prefix overflow");
    out[at..at + width].copy_from_slice(&len.to_be_bytes()[8 - width..]);
}

/// Appends `bytes` behind a length prefix of `width` bytes.
pub fn put_bytes(out: &mut Vec<u8>, width: usize, bytes: &[u8]) {
    put_uint(out, bytes.len() as u64, width);
    out.extend_from_slice(bytes);
}

/// Reads a list of DER distinguished names, each with a 2-byte length, inside a 2-byte
/// length: CertificateRequest's certificate_authorities (RFC 5246 §7.4.4) and the DTLS 1.3
/// extension of that name (RFC 8446 §4.2.4).
pub fn read_distinguished_names(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut names = r.sub(2, "certificate_authorities")?;
    let mut out = Vec::new();
    while !names.is_empty() {
        out.push(names.prefixed(2, "distinguished name")?.to_vec());
    }
    Ok(out)
}

/// Writes what [`read_distinguished_names`] reads.
pub fn put_distinguished_names(out: &mut Vec<u8>, names: &[Vec<u8>]) {
    put_prefixed(out, 2, |o| names.iter().for_each(|n| put_bytes(o, 2, n)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_the_missing_field_and_rejects_leftovers() {
        let mut r = Reader::new(&[0, 2, 0xAA, 0xBB, 7]);
        let mut sub = r.sub(2, "list").unwrap();
        assert_eq!(sub.u16("pair").unwrap(), 0xAABB);
        assert!(sub.finish("list").is_ok());
        assert_eq!(r.finish("message"), Err(DecodeError("message")));
        assert_eq!(r.u16("field"), Err(DecodeError("field")));
        // A length prefix that promises more than there is.
        assert_eq!(
            Reader::new(&[0, 9, 1]).prefixed(2, "vector"),
            Err(DecodeError("vector"))
        );
    }

    #[test]
    fn prefixed_writer_patches_the_length() {
        let mut out = vec![];
        put_prefixed(&mut out, 3, |o| o.extend_from_slice(b"abcd"));
        assert_eq!(out, [0, 0, 4, b'a', b'b', b'c', b'd']);
        put_uint(&mut out, 0x0102_0304_0506, 6);
        assert_eq!(&out[7..], [1, 2, 3, 4, 5, 6]);
    }
}
