//! Reads a TLS byte stream one record at a time, as OpenSSL does without read-ahead.
//!
//! Bytes behind the record being read stay in the transport, so that the transport's
//! readiness (select, poll, an event loop) keeps telling of them: a close_notify that follows
//! the last data record is still there for the program that waits to read it.

use std::io::{self, Read};

/// The TLS record header (RFC 8446 §5.1): type, legacy version, then the fragment's length.
const HEADER: usize = 5;

/// Where the stream stands within the record being read.
#[derive(Debug, Default)]
pub(crate) struct RecordCursor {
    header: [u8; HEADER],
    /// How much of the header has been read.
    header_read: usize,
    /// How much of the fragment is still to be read (once the header is whole).
    fragment_left: usize,
}

impl RecordCursor {
    /// The most the next read may take without passing the end of the current record.
    fn limit(&self) -> usize {
        if self.header_read < HEADER {
            HEADER - self.header_read
        } else {
            self.fragment_left
        }
    }

    /// Accounts for `bytes` read (never more than [`RecordCursor::limit`]).
    fn advance(&mut self, bytes: &[u8]) {
        if self.header_read < HEADER {
            self.header[self.header_read..self.header_read + bytes.len()].copy_from_slice(bytes);
            self.header_read += bytes.len();
            if self.header_read == HEADER {
                self.fragment_left =
                    usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
            }
        } else {
            self.fragment_left -= bytes.len();
        }
        if self.header_read == HEADER && self.fragment_left == 0 {
            self.header_read = 0;
        }
    }

    /// A reader over `inner` that stops at the end of the current record.
    pub(crate) fn reader<'a, R: Read + ?Sized>(&'a mut self, inner: &'a mut R) -> OneRecord<'a, R> {
        OneRecord {
            inner,
            cursor: self,
        }
    }
}

/// See [`RecordCursor::reader`].
pub(crate) struct OneRecord<'a, R: ?Sized> {
    inner: &'a mut R,
    cursor: &'a mut RecordCursor,
}

impl<R: Read + ?Sized> Read for OneRecord<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.cursor.limit());
        let got = self.inner.read(&mut buf[..n])?;
        self.cursor.advance(&buf[..got]);
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, fragment: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
        r.extend_from_slice(fragment);
        r
    }

    #[test]
    fn stops_at_each_record_end() {
        let mut wire = record(23, b"first record");
        wire.extend(record(21, &[1, 0]));
        let mut input = wire.as_slice();
        let mut cursor = RecordCursor::default();
        let mut buf = [0u8; 4096];
        let mut reads = Vec::new();
        loop {
            let n = cursor.reader(&mut input).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            reads.push(n);
        }
        // Header, fragment; header, fragment: the alert never rides with the data.
        assert_eq!(reads, [5, 12, 5, 2]);
    }

    #[test]
    fn short_reads_and_empty_fragments_keep_their_place() {
        let mut wire = record(23, b"");
        wire.extend(record(23, b"abc"));
        let mut cursor = RecordCursor::default();
        let mut taken = 0;
        for b in wire.chunks(1) {
            let mut one = b;
            let mut buf = [0u8; 8];
            assert!(cursor.limit() >= 1);
            taken += cursor.reader(&mut one).read(&mut buf).unwrap();
        }
        assert_eq!(taken, wire.len());
        assert_eq!(cursor.limit(), HEADER);
    }
}
