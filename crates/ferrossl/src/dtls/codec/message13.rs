//! Handshake message bodies of DTLS 1.3 (RFC 8446 §4 as RFC 9147 §5 uses them). ClientHello
//! and ServerHello keep their DTLS 1.2 wire format ([`super::message`]); a HelloRetryRequest
//! is a ServerHello with a fixed random (RFC 8446 §4.1.3).

use rustls::{HandshakeType, SignatureScheme};

use super::extensions::HelloExtensions;
use super::message::{ClientHello, DigitallySigned, ServerHello};
use super::{put_bytes, put_prefixed, put_u16, DecodeError, Reader};

/// ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// The last eight bytes of a ServerHello.random from a server that could have negotiated
/// DTLS 1.3 but chose 1.2 (RFC 8446 §4.1.3, RFC 9147 §5.3).
pub const DOWNGRADE_TO_12: [u8; 8] = *b"DOWNGRD\x01";

/// The synthetic message standing for the first ClientHello after a HelloRetryRequest
/// (RFC 8446 §4.4.1).
pub const MESSAGE_HASH: u8 = 254;

/// One certificate of a Certificate message, with its extensions (RFC 8446 §4.4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateEntry {
    /// The DER certificate.
    pub cert: Vec<u8>,
    /// Its extensions (OCSP status, SCTs), kept as bytes.
    pub extensions: Vec<u8>,
}

/// Certificate (RFC 8446 §4.4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate13 {
    /// Empty in a handshake; echoes CertificateRequest's context otherwise.
    pub context: Vec<u8>,
    /// The chain, the sender's own certificate first.
    pub entries: Vec<CertificateEntry>,
}

impl Certificate13 {
    fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let context = r.prefixed(1, "certificate_request_context")?.to_vec();
        let mut list = r.sub(3, "certificate_list")?;
        let mut entries = Vec::new();
        while !list.is_empty() {
            let cert = list.prefixed(3, "cert_data")?;
            if cert.is_empty() {
                return Err(DecodeError("empty cert_data"));
            }
            let extensions = list.prefixed(2, "CertificateEntry extensions")?.to_vec();
            entries.push(CertificateEntry {
                cert: cert.to_vec(),
                extensions,
            });
        }
        r.finish("Certificate")?;
        Ok(Self { context, entries })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, 1, &self.context);
        put_prefixed(out, 3, |o| {
            for entry in &self.entries {
                put_bytes(o, 3, &entry.cert);
                put_bytes(o, 2, &entry.extensions);
            }
        });
    }
}

/// CertificateRequest (RFC 8446 §4.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest13 {
    /// Empty in a handshake.
    pub context: Vec<u8>,
    /// Its extensions; signature_algorithms is mandatory.
    pub extensions: HelloExtensions,
}

/// NewSessionTicket (RFC 8446 §4.6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSessionTicket13 {
    /// Seconds the ticket may be used for.
    pub lifetime: u32,
    /// Added to the ticket's age when the client offers it.
    pub age_add: u32,
    /// Distinguishes the tickets of one connection.
    pub nonce: Vec<u8>,
    /// The ticket itself.
    pub ticket: Vec<u8>,
    /// Its extensions, kept as bytes.
    pub extensions: Vec<u8>,
}

impl NewSessionTicket13 {
    fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let lifetime = r.u32("ticket_lifetime")?;
        let age_add = r.u32("ticket_age_add")?;
        let nonce = r.prefixed(1, "ticket_nonce")?.to_vec();
        let ticket = r.prefixed(2, "ticket")?.to_vec();
        let extensions = r.prefixed(2, "NewSessionTicket extensions")?.to_vec();
        r.finish("NewSessionTicket")?;
        if ticket.is_empty() {
            return Err(DecodeError("empty ticket"));
        }
        Ok(Self {
            lifetime,
            age_add,
            nonce,
            ticket,
            extensions,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.extend_from_slice(&self.age_add.to_be_bytes());
        put_bytes(out, 1, &self.nonce);
        put_bytes(out, 2, &self.ticket);
        put_bytes(out, 2, &self.extensions);
    }
}

/// One DTLS 1.3 handshake message, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message13 {
    /// ClientHello.
    ClientHello(ClientHello),
    /// ServerHello, or a HelloRetryRequest (see [`Message13::is_hello_retry_request`]).
    ServerHello(ServerHello),
    /// EncryptedExtensions.
    EncryptedExtensions(HelloExtensions),
    /// CertificateRequest.
    CertificateRequest(CertificateRequest13),
    /// Certificate.
    Certificate(Certificate13),
    /// CertificateVerify.
    CertificateVerify(DigitallySigned),
    /// Finished: verify_data, as long as the suite's hash.
    Finished(Vec<u8>),
    /// NewSessionTicket.
    NewSessionTicket(NewSessionTicket13),
    /// KeyUpdate: whether the peer is asked to update too (RFC 8446 §4.6.3).
    KeyUpdate(bool),
}

/// Reads an extensions block that must be present (possibly empty).
fn read_extensions(r: &mut Reader<'_>, what: &'static str) -> Result<HelloExtensions, DecodeError> {
    HelloExtensions::read(r.prefixed(2, what)?)
}

/// Writes an extensions block, with its length even when empty.
fn encode_extensions(extensions: &HelloExtensions, out: &mut Vec<u8>) {
    if *extensions == HelloExtensions::default() {
        put_u16(out, 0);
    } else {
        extensions.encode(out);
    }
}

impl Message13 {
    /// Decodes a complete message body of type `msg_type`.
    pub fn read(msg_type: HandshakeType, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let message = match msg_type {
            HandshakeType::ClientHello => return Ok(Self::ClientHello(ClientHello::read(body)?)),
            HandshakeType::ServerHello => return Ok(Self::ServerHello(ServerHello::read(body)?)),
            HandshakeType::EncryptedExtensions => {
                Self::EncryptedExtensions(read_extensions(&mut r, "EncryptedExtensions")?)
            }
            HandshakeType::CertificateRequest => {
                let context = r.prefixed(1, "certificate_request_context")?.to_vec();
                let extensions = read_extensions(&mut r, "CertificateRequest extensions")?;
                Self::CertificateRequest(CertificateRequest13 {
                    context,
                    extensions,
                })
            }
            HandshakeType::Certificate => return Ok(Self::Certificate(Certificate13::read(body)?)),
            HandshakeType::CertificateVerify => Self::CertificateVerify(DigitallySigned {
                scheme: SignatureScheme::from(r.u16("signature scheme")?),
                signature: r.prefixed(2, "signature")?.to_vec(),
            }),
            HandshakeType::Finished => Self::Finished(r.rest().to_vec()),
            HandshakeType::NewSessionTicket => {
                return Ok(Self::NewSessionTicket(NewSessionTicket13::read(body)?))
            }
            HandshakeType::KeyUpdate => match r.u8("request_update")? {
                0 => Self::KeyUpdate(false),
                1 => Self::KeyUpdate(true),
                _ => return Err(DecodeError("KeyUpdate request_update")),
            },
            _ => return Err(DecodeError("handshake message DTLS 1.3 does not have")),
        };
        r.finish("handshake message")?;
        Ok(message)
    }

    /// The message type.
    pub fn msg_type(&self) -> HandshakeType {
        match self {
            Self::ClientHello(_) => HandshakeType::ClientHello,
            Self::ServerHello(_) => HandshakeType::ServerHello,
            Self::EncryptedExtensions(_) => HandshakeType::EncryptedExtensions,
            Self::CertificateRequest(_) => HandshakeType::CertificateRequest,
            Self::Certificate(_) => HandshakeType::Certificate,
            Self::CertificateVerify(_) => HandshakeType::CertificateVerify,
            Self::Finished(_) => HandshakeType::Finished,
            Self::NewSessionTicket(_) => HandshakeType::NewSessionTicket,
            Self::KeyUpdate(_) => HandshakeType::KeyUpdate,
        }
    }

    /// Whether this is a HelloRetryRequest.
    pub fn is_hello_retry_request(&self) -> bool {
        matches!(self, Self::ServerHello(sh) if sh.random == HELLO_RETRY_REQUEST_RANDOM)
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::ClientHello(m) => m.encode(out),
            Self::ServerHello(m) => m.encode(out),
            Self::EncryptedExtensions(e) => encode_extensions(e, out),
            Self::CertificateRequest(m) => {
                put_bytes(out, 1, &m.context);
                encode_extensions(&m.extensions, out);
            }
            Self::Certificate(m) => m.encode(out),
            Self::CertificateVerify(s) => {
                put_u16(out, s.scheme.into());
                put_bytes(out, 2, &s.signature);
            }
            Self::Finished(verify_data) => out.extend_from_slice(verify_data),
            Self::NewSessionTicket(m) => m.encode(out),
            Self::KeyUpdate(request) => out.push(u8::from(*request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::CipherSuite;

    fn round_trip(message: Message13) {
        let mut body = Vec::new();
        message.encode(&mut body);
        assert_eq!(Message13::read(message.msg_type(), &body).unwrap(), message);
    }

    #[test]
    fn every_message_round_trips() {
        round_trip(Message13::EncryptedExtensions(HelloExtensions::default()));
        round_trip(Message13::EncryptedExtensions(HelloExtensions {
            alpn: Some(vec![b"h2".to_vec()]),
            ..Default::default()
        }));
        round_trip(Message13::CertificateRequest(CertificateRequest13 {
            context: Vec::new(),
            extensions: HelloExtensions {
                signature_algorithms: Some(vec![SignatureScheme::ED25519]),
                ..Default::default()
            },
        }));
        round_trip(Message13::Certificate(Certificate13 {
            context: Vec::new(),
            entries: vec![
                CertificateEntry {
                    cert: vec![0x30, 1, 2],
                    extensions: Vec::new(),
                },
                CertificateEntry {
                    cert: vec![0x30; 300],
                    extensions: vec![0, 5, 0, 0],
                },
            ],
        }));
        round_trip(Message13::CertificateVerify(DigitallySigned {
            scheme: SignatureScheme::RSA_PSS_SHA256,
            signature: vec![9; 256],
        }));
        round_trip(Message13::Finished(vec![7; 48]));
        round_trip(Message13::NewSessionTicket(NewSessionTicket13 {
            lifetime: 7200,
            age_add: 0xDEAD_BEEF,
            nonce: vec![0],
            ticket: vec![1; 40],
            extensions: Vec::new(),
        }));
        round_trip(Message13::KeyUpdate(true));
        round_trip(Message13::KeyUpdate(false));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let bad: [(HandshakeType, &[u8]); 5] = [
            (HandshakeType::KeyUpdate, &[2]),
            (HandshakeType::KeyUpdate, &[0, 0]),
            (HandshakeType::EncryptedExtensions, &[]),
            (HandshakeType::Certificate, &[0, 0, 0, 3, 0, 0, 0]),
            (HandshakeType::ServerHelloDone, &[]),
        ];
        for (typ, body) in bad {
            assert!(Message13::read(typ, body).is_err(), "{typ:?} {body:?}");
        }
    }

    #[test]
    fn a_hello_retry_request_is_told_by_its_random() {
        let hrr = ServerHello {
            server_version: 0xFEFD,
            random: HELLO_RETRY_REQUEST_RANDOM,
            session_id: Vec::new(),
            cipher_suite: CipherSuite::TLS13_AES_128_GCM_SHA256,
            compression_method: 0,
            extensions: HelloExtensions::default(),
        };
        assert!(Message13::ServerHello(hrr.clone()).is_hello_retry_request());
        let sh = ServerHello {
            random: [1; 32],
            ..hrr
        };
        assert!(!Message13::ServerHello(sh).is_hello_retry_request());
    }
}
