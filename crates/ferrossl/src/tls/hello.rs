//! Reads the client and server randoms from the hello messages as they pass by.
//!
//! The engine does not expose them, but ClientHello and ServerHello travel in plaintext records
//! (RFC 8446 §5.1, RFC 5246 §6.2), so their `random` fields can be read off the wire: record
//! header (5 bytes), handshake header (4 bytes), legacy_version (2 bytes), then 32 random bytes.

/// The ServerHello.random that marks a HelloRetryRequest (RFC 8446 §4.1.3): the real
/// ServerHello follows later.
const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA2, 0x33, 0x9C,
];

const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
/// Record header + handshake header + legacy_version + random.
const HELLO_PREFIX: usize = 5 + 4 + 2 + 32;

/// Scans one direction of the byte stream for one hello message's random.
#[derive(Debug)]
pub(crate) struct HelloScanner {
    wanted: u8,
    pending: Vec<u8>,
    random: Option<[u8; 32]>,
    done: bool,
    /// Whether a whole record has passed (only the first record can be plain HTTP).
    past_first_record: bool,
    /// OpenSSL's reason when the stream began with plain HTTP instead of a record.
    plain_http: Option<&'static str>,
}

impl HelloScanner {
    pub(crate) fn client_hello() -> Self {
        Self::new(CLIENT_HELLO)
    }

    pub(crate) fn server_hello() -> Self {
        Self::new(SERVER_HELLO)
    }

    fn new(wanted: u8) -> Self {
        Self {
            wanted,
            pending: Vec::new(),
            random: None,
            done: false,
            past_first_record: false,
            plain_http: None,
        }
    }

    /// The random, once seen.
    pub(crate) fn random(&self) -> Option<&[u8; 32]> {
        self.random.as_ref()
    }

    /// OpenSSL's reason ("http request", "https proxy request") when the peer spoke plain
    /// HTTP to a TLS endpoint, the usual mistake behind an unreadable first record.
    pub(crate) fn plain_http(&self) -> Option<&'static str> {
        self.plain_http
    }

    /// Whether scanning is over: the hello was seen, or no plaintext hello can come.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds the next bytes of this direction.
    pub(crate) fn scan(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        self.pending.extend_from_slice(bytes);
        // Walk whole plaintext records until the wanted hello appears or encryption starts.
        while self.pending.len() >= 5 {
            let record_len =
                5 + usize::from(u16::from_be_bytes([self.pending[3], self.pending[4]]));
            if self.pending[0] == CONTENT_HANDSHAKE
                && self.pending[5..].first() == Some(&self.wanted)
            {
                if self.pending.len() < HELLO_PREFIX {
                    return;
                }
                let random: [u8; 32] = self.pending[11..43].try_into().expect("32 bytes");
                if random != HELLO_RETRY_REQUEST_RANDOM {
                    self.random = Some(random);
                    self.finish();
                    return;
                }
            } else if self.pending[0] != CONTENT_HANDSHAKE
                && self.pending[0] != 20
                && self.pending[0] != 21
            {
                // Application data or garbage: no plaintext hello can follow.
                if !self.past_first_record {
                    self.plain_http = plain_http_reason(&self.pending);
                }
                self.finish();
                return;
            }
            if self.pending.len() < record_len {
                return;
            }
            self.pending.drain(..record_len);
            self.past_first_record = true;
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.pending = Vec::new();
    }
}

/// Recognises an HTTP request line where a TLS record header should be.
fn plain_http_reason(start: &[u8]) -> Option<&'static str> {
    const METHODS: [&[u8]; 4] = [b"GET ", b"POST ", b"HEAD ", b"PUT "];
    if METHODS.iter().any(|m| start.starts_with(m)) {
        Some("http request")
    } else if start.starts_with(b"CONNE") {
        Some("https proxy request")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(kind: u8, random: [u8; 32]) -> Vec<u8> {
        let mut body = vec![kind, 0, 0, 40, 3, 3];
        body.extend_from_slice(&random);
        body.extend_from_slice(&[0; 6]);
        let mut rec = vec![CONTENT_HANDSHAKE, 3, 3];
        rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
        rec.extend(body);
        rec
    }

    #[test]
    fn finds_random_split_across_calls() {
        let wire = hello(CLIENT_HELLO, [7; 32]);
        let mut s = HelloScanner::client_hello();
        for b in wire.chunks(3) {
            s.scan(b);
        }
        assert_eq!(s.random(), Some(&[7; 32]));
    }

    #[test]
    fn skips_hello_retry_request() {
        let mut wire = hello(SERVER_HELLO, HELLO_RETRY_REQUEST_RANDOM);
        wire.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        wire.extend(hello(SERVER_HELLO, [9; 32]));
        let mut s = HelloScanner::server_hello();
        s.scan(&wire);
        assert_eq!(s.random(), Some(&[9; 32]));
    }

    #[test]
    fn gives_up_on_garbage() {
        let mut s = HelloScanner::server_hello();
        s.scan(b"GET / HTTP/1.1\r\n");
        // Once given up, a later hello is not believed.
        s.scan(&hello(SERVER_HELLO, [1; 32]));
        assert!(s.random().is_none());
        assert_eq!(s.plain_http(), Some("http request"));
    }

    #[test]
    fn names_a_proxy_request_but_not_later_garbage() {
        let mut s = HelloScanner::client_hello();
        s.scan(b"CONNECT example.org:443 HTTP/1.1\r\n");
        assert_eq!(s.plain_http(), Some("https proxy request"));
        let mut s = HelloScanner::client_hello();
        let mut wire = vec![20, 3, 3, 0, 1, 1];
        wire.extend_from_slice(b"GET / HTTP/1.1\r\n");
        s.scan(&wire);
        assert_eq!(s.plain_http(), None);
    }
}
