//! Handshake message bodies of DTLS 1.2 with ECDHE key exchange (RFC 5246 §7.4, RFC 6347
//! §4.2, RFC 8422 §5).

use rustls::{CipherSuite, HandshakeType, NamedGroup, SignatureScheme};

use super::extensions::HelloExtensions;
use super::{
    put_bytes, put_distinguished_names, put_prefixed, put_u16, put_uint, read_distinguished_names,
    DecodeError, Reader,
};

/// `named_curve` in ECParameters (RFC 8422 §5.4); the other curve types are deprecated.
const CURVE_TYPE_NAMED: u8 = 3;
/// Finished.verify_data is 12 bytes in TLS 1.2 (RFC 5246 §7.4.9).
pub const VERIFY_DATA_LEN: usize = 12;
/// The longest cookie DTLS 1.2 can carry (RFC 6347 §4.2.1).
pub const MAX_COOKIE_LEN: usize = 255;

/// ClientHello (RFC 6347 §4.2.1: TLS's, plus a cookie).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The highest version the client speaks.
    pub client_version: u16,
    /// 32 random bytes.
    pub random: [u8; 32],
    /// A session to resume: its ID, or a fresh one beside a ticket (RFC 5077 §3.4).
    pub session_id: Vec<u8>,
    /// The cookie from a HelloVerifyRequest, empty at first.
    pub cookie: Vec<u8>,
    /// Cipher suites in preference order.
    pub cipher_suites: Vec<CipherSuite>,
    /// Compression methods; must contain null (0).
    pub compression_methods: Vec<u8>,
    /// Extensions.
    pub extensions: HelloExtensions,
}

impl ClientHello {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let client_version = r.u16("client_version")?;
        let random = r.array("client random")?;
        let session_id = r.prefixed(1, "session_id")?;
        let cookie = r.prefixed(1, "cookie")?.to_vec();
        let mut suites = r.sub(2, "cipher_suites")?;
        let mut cipher_suites = Vec::new();
        while !suites.is_empty() {
            cipher_suites.push(CipherSuite::from(suites.u16("cipher_suites")?));
        }
        let compression_methods = r.prefixed(1, "compression_methods")?.to_vec();
        let extensions = if r.is_empty() {
            HelloExtensions::default()
        } else {
            HelloExtensions::read(r.prefixed(2, "extensions")?)?
        };
        r.finish("ClientHello")?;
        if session_id.len() > 32 || cipher_suites.is_empty() || compression_methods.is_empty() {
            return Err(DecodeError("ClientHello"));
        }
        Ok(Self {
            client_version,
            random,
            session_id: session_id.to_vec(),
            cookie,
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.client_version);
        out.extend_from_slice(&self.random);
        put_bytes(out, 1, &self.session_id);
        put_bytes(out, 1, &self.cookie);
        put_prefixed(out, 2, |o| {
            self.cipher_suites
                .iter()
                .for_each(|s| put_u16(o, (*s).into()))
        });
        put_bytes(out, 1, &self.compression_methods);
        self.extensions.encode(out);
    }
}

/// ServerHello (RFC 5246 §7.4.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The version chosen.
    pub server_version: u16,
    /// 32 random bytes.
    pub random: [u8; 32],
    /// The session's identifier: new, the client's when resuming, or empty when the server
    /// does not cache.
    pub session_id: Vec<u8>,
    /// The suite chosen.
    pub cipher_suite: CipherSuite,
    /// The compression chosen (always null).
    pub compression_method: u8,
    /// Extensions, answering the client's.
    pub extensions: HelloExtensions,
}

impl ServerHello {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let server_version = r.u16("server_version")?;
        let random = r.array("server random")?;
        let session_id = r.prefixed(1, "session_id")?.to_vec();
        let cipher_suite = CipherSuite::from(r.u16("cipher_suite")?);
        let compression_method = r.u8("compression_method")?;
        let extensions = if r.is_empty() {
            HelloExtensions::default()
        } else {
            HelloExtensions::read(r.prefixed(2, "extensions")?)?
        };
        r.finish("ServerHello")?;
        if session_id.len() > 32 {
            return Err(DecodeError("session_id"));
        }
        Ok(Self {
            server_version,
            random,
            session_id,
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.server_version);
        out.extend_from_slice(&self.random);
        put_bytes(out, 1, &self.session_id);
        put_u16(out, self.cipher_suite.into());
        out.push(self.compression_method);
        self.extensions.encode(out);
    }
}

/// HelloVerifyRequest (RFC 6347 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloVerifyRequest {
    /// Always DTLS 1.0 (0xFEFF), whatever will be negotiated.
    pub server_version: u16,
    /// The cookie the client must echo.
    pub cookie: Vec<u8>,
}

impl HelloVerifyRequest {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let server_version = r.u16("server_version")?;
        let cookie = r.prefixed(1, "cookie")?.to_vec();
        r.finish("HelloVerifyRequest")?;
        Ok(Self {
            server_version,
            cookie,
        })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.server_version);
        put_bytes(out, 1, &self.cookie);
    }
}

/// Certificate (RFC 5246 §7.4.2): DER certificates, the sender's own first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The chain; a client without a certificate sends it empty.
    pub chain: Vec<Vec<u8>>,
}

impl Certificate {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let mut list = r.sub(3, "certificate_list")?;
        r.finish("Certificate")?;
        let mut chain = Vec::new();
        while !list.is_empty() {
            let cert = list.prefixed(3, "certificate")?;
            if cert.is_empty() {
                return Err(DecodeError("empty certificate"));
            }
            chain.push(cert.to_vec());
        }
        Ok(Self { chain })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_prefixed(out, 3, |o| {
            self.chain.iter().for_each(|c| put_bytes(o, 3, c))
        });
    }
}

/// ServerECDHParams (RFC 8422 §5.4): the curve and the server's ephemeral public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcdhParams {
    /// The group.
    pub group: NamedGroup,
    /// The public key (X25519 bytes or an uncompressed point).
    pub public: Vec<u8>,
}

impl EcdhParams {
    /// Writes the params: the bytes the server's signature covers.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(CURVE_TYPE_NAMED);
        put_u16(out, self.group.into());
        put_bytes(out, 1, &self.public);
    }
}

/// A signature with the scheme that made it (RFC 5246 §4.7 `digitally-signed`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitallySigned {
    /// The scheme.
    pub scheme: SignatureScheme,
    /// The signature.
    pub signature: Vec<u8>,
}

impl DigitallySigned {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            scheme: SignatureScheme::from(r.u16("signature scheme")?),
            signature: r.prefixed(2, "signature")?.to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.scheme.into());
        put_bytes(out, 2, &self.signature);
    }
}

/// ServerKeyExchange for ECDHE (RFC 8422 §5.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeyExchange {
    /// The signed parameters.
    pub params: EcdhParams,
    /// The signature over client_random ‖ server_random ‖ params.
    pub signed: DigitallySigned,
}

impl ServerKeyExchange {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        if r.u8("curve_type")? != CURVE_TYPE_NAMED {
            return Err(DecodeError("curve_type (only named curves exist)"));
        }
        let group = NamedGroup::from(r.u16("named_curve")?);
        let public = r.prefixed(1, "ECDH public key")?.to_vec();
        let signed = DigitallySigned::read(&mut r)?;
        r.finish("ServerKeyExchange")?;
        if public.is_empty() {
            return Err(DecodeError("empty ECDH public key"));
        }
        Ok(Self {
            params: EcdhParams { group, public },
            signed,
        })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.params.encode(out);
        self.signed.encode(out);
    }
}

/// CertificateRequest (RFC 5246 §7.4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest {
    /// ClientCertificateType values (rsa_sign = 1, ecdsa_sign = 64).
    pub certificate_types: Vec<u8>,
    /// Schemes the server accepts in CertificateVerify.
    pub signature_schemes: Vec<SignatureScheme>,
    /// DER distinguished names of acceptable CAs.
    pub ca_names: Vec<Vec<u8>>,
}

impl CertificateRequest {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let certificate_types = r.prefixed(1, "certificate_types")?.to_vec();
        let mut schemes = r.sub(2, "supported_signature_algorithms")?;
        let mut signature_schemes = Vec::new();
        while !schemes.is_empty() {
            signature_schemes.push(SignatureScheme::from(
                schemes.u16("supported_signature_algorithms")?,
            ));
        }
        let ca_names = read_distinguished_names(&mut r)?;
        r.finish("CertificateRequest")?;
        if certificate_types.is_empty() || signature_schemes.is_empty() {
            return Err(DecodeError("CertificateRequest"));
        }
        Ok(Self {
            certificate_types,
            signature_schemes,
            ca_names,
        })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, 1, &self.certificate_types);
        put_prefixed(out, 2, |o| {
            self.signature_schemes
                .iter()
                .for_each(|s| put_u16(o, (*s).into()))
        });
        put_distinguished_names(out, &self.ca_names);
    }
}

/// NewSessionTicket (RFC 5077 §3.3): a ticket the client offers to resume; empty when the
/// server acknowledged the extension but issues none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSessionTicket {
    /// How long the ticket may be used, in seconds (0: unspecified).
    pub lifetime_hint: u32,
    /// The opaque ticket.
    pub ticket: Vec<u8>,
}

impl NewSessionTicket {
    /// Reads a body.
    pub fn read(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let lifetime_hint = r.u32("ticket_lifetime_hint")?;
        let ticket = r.prefixed(2, "ticket")?.to_vec();
        r.finish("NewSessionTicket")?;
        Ok(Self {
            lifetime_hint,
            ticket,
        })
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uint(out, u64::from(self.lifetime_hint), 4);
        put_bytes(out, 2, &self.ticket);
    }
}

/// One handshake message, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// HelloRequest: a server asking to renegotiate (refused).
    HelloRequest,
    /// ClientHello.
    ClientHello(ClientHello),
    /// ServerHello.
    ServerHello(ServerHello),
    /// HelloVerifyRequest.
    HelloVerifyRequest(HelloVerifyRequest),
    /// Certificate.
    Certificate(Certificate),
    /// ServerKeyExchange (ECDHE).
    ServerKeyExchange(ServerKeyExchange),
    /// CertificateRequest.
    CertificateRequest(CertificateRequest),
    /// ServerHelloDone.
    ServerHelloDone,
    /// CertificateVerify.
    CertificateVerify(DigitallySigned),
    /// ClientKeyExchange (ECDHE): the client's ephemeral public key.
    ClientKeyExchange(Vec<u8>),
    /// Finished: verify_data.
    Finished(Vec<u8>),
    /// NewSessionTicket (RFC 5077 §3.3).
    NewSessionTicket(NewSessionTicket),
}

impl Message {
    /// Decodes a complete message body of type `msg_type`.
    pub fn read(msg_type: HandshakeType, body: &[u8]) -> Result<Self, DecodeError> {
        let empty = |name| {
            if body.is_empty() {
                Ok(())
            } else {
                Err(DecodeError(name))
            }
        };
        Ok(match msg_type {
            HandshakeType::HelloRequest => {
                empty("HelloRequest")?;
                Message::HelloRequest
            }
            HandshakeType::ClientHello => Message::ClientHello(ClientHello::read(body)?),
            HandshakeType::ServerHello => Message::ServerHello(ServerHello::read(body)?),
            HandshakeType::HelloVerifyRequest => {
                Message::HelloVerifyRequest(HelloVerifyRequest::read(body)?)
            }
            HandshakeType::Certificate => Message::Certificate(Certificate::read(body)?),
            HandshakeType::ServerKeyExchange => {
                Message::ServerKeyExchange(ServerKeyExchange::read(body)?)
            }
            HandshakeType::CertificateRequest => {
                Message::CertificateRequest(CertificateRequest::read(body)?)
            }
            HandshakeType::ServerHelloDone => {
                empty("ServerHelloDone")?;
                Message::ServerHelloDone
            }
            HandshakeType::CertificateVerify => {
                let mut r = Reader::new(body);
                let signed = DigitallySigned::read(&mut r)?;
                r.finish("CertificateVerify")?;
                Message::CertificateVerify(signed)
            }
            HandshakeType::ClientKeyExchange => {
                let mut r = Reader::new(body);
                let public = r.prefixed(1, "ECDH public key")?.to_vec();
                r.finish("ClientKeyExchange")?;
                if public.is_empty() {
                    return Err(DecodeError("empty ECDH public key"));
                }
                Message::ClientKeyExchange(public)
            }
            HandshakeType::Finished => {
                if body.len() != VERIFY_DATA_LEN {
                    return Err(DecodeError("Finished"));
                }
                Message::Finished(body.to_vec())
            }
            HandshakeType::NewSessionTicket => {
                Message::NewSessionTicket(NewSessionTicket::read(body)?)
            }
            _ => return Err(DecodeError("handshake message of an unknown type")),
        })
    }

    /// The message type.
    pub fn msg_type(&self) -> HandshakeType {
        match self {
            Message::HelloRequest => HandshakeType::HelloRequest,
            Message::ClientHello(_) => HandshakeType::ClientHello,
            Message::ServerHello(_) => HandshakeType::ServerHello,
            Message::HelloVerifyRequest(_) => HandshakeType::HelloVerifyRequest,
            Message::Certificate(_) => HandshakeType::Certificate,
            Message::ServerKeyExchange(_) => HandshakeType::ServerKeyExchange,
            Message::CertificateRequest(_) => HandshakeType::CertificateRequest,
            Message::ServerHelloDone => HandshakeType::ServerHelloDone,
            Message::CertificateVerify(_) => HandshakeType::CertificateVerify,
            Message::ClientKeyExchange(_) => HandshakeType::ClientKeyExchange,
            Message::Finished(_) => HandshakeType::Finished,
            Message::NewSessionTicket(_) => HandshakeType::NewSessionTicket,
        }
    }

    /// Writes the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::HelloRequest | Message::ServerHelloDone => {}
            Message::ClientHello(m) => m.encode(out),
            Message::ServerHello(m) => m.encode(out),
            Message::HelloVerifyRequest(m) => m.encode(out),
            Message::Certificate(m) => m.encode(out),
            Message::ServerKeyExchange(m) => m.encode(out),
            Message::CertificateRequest(m) => m.encode(out),
            Message::CertificateVerify(m) => m.encode(out),
            Message::ClientKeyExchange(public) => put_bytes(out, 1, public),
            Message::Finished(verify_data) => out.extend_from_slice(verify_data),
            Message::NewSessionTicket(m) => m.encode(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::extensions::UseSrtp;
    use super::*;

    fn round_trip(m: Message) {
        let mut body = vec![];
        m.encode(&mut body);
        let back = Message::read(m.msg_type(), &body).unwrap();
        assert_eq!(back, m);
        let mut again = vec![];
        back.encode(&mut again);
        assert_eq!(again, body);
        // Any truncation fails to decode, and so does a trailing byte.
        for cut in 0..body.len() {
            assert!(
                Message::read(m.msg_type(), &body[..cut]).is_err()
                    || matches!(m, Message::ClientHello(_) | Message::ServerHello(_)),
                "{:?} truncated at {cut}",
                m.msg_type()
            );
        }
        body.push(0);
        assert!(Message::read(m.msg_type(), &body).is_err());
    }

    #[test]
    fn every_message_round_trips() {
        let extensions = HelloExtensions {
            extended_master_secret: true,
            use_srtp: Some(UseSrtp {
                profiles: vec![1],
                mki: vec![],
            }),
            ..Default::default()
        };
        round_trip(Message::HelloRequest);
        round_trip(Message::ClientHello(ClientHello {
            client_version: 0xFEFD,
            random: [7; 32],
            session_id: vec![],
            cookie: vec![1, 2, 3],
            cipher_suites: vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
            compression_methods: vec![0],
            extensions: extensions.clone(),
        }));
        round_trip(Message::ServerHello(ServerHello {
            server_version: 0xFEFD,
            random: [9; 32],
            session_id: vec![1; 32],
            cipher_suite: CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            compression_method: 0,
            extensions,
        }));
        round_trip(Message::HelloVerifyRequest(HelloVerifyRequest {
            server_version: 0xFEFF,
            cookie: vec![5; 32],
        }));
        round_trip(Message::Certificate(Certificate {
            chain: vec![vec![1, 2], vec![3]],
        }));
        round_trip(Message::ServerKeyExchange(ServerKeyExchange {
            params: EcdhParams {
                group: NamedGroup::X25519,
                public: vec![4; 32],
            },
            signed: DigitallySigned {
                scheme: SignatureScheme::ED25519,
                signature: vec![1; 64],
            },
        }));
        round_trip(Message::CertificateRequest(CertificateRequest {
            certificate_types: vec![1, 64],
            signature_schemes: vec![SignatureScheme::RSA_PKCS1_SHA256],
            ca_names: vec![vec![0x30, 0]],
        }));
        round_trip(Message::ServerHelloDone);
        round_trip(Message::CertificateVerify(DigitallySigned {
            scheme: SignatureScheme::ECDSA_NISTP384_SHA384,
            signature: vec![2; 70],
        }));
        round_trip(Message::ClientKeyExchange(vec![4; 65]));
        round_trip(Message::Finished(vec![3; 12]));
        round_trip(Message::NewSessionTicket(NewSessionTicket {
            lifetime_hint: 300,
            ticket: vec![8; 100],
        }));
    }

    #[test]
    fn hello_without_extensions_and_bad_bodies() {
        let mut body = vec![0xFE, 0xFD];
        body.extend_from_slice(&[0; 32]);
        body.extend_from_slice(&[0, 0, 0, 2, 0xC0, 0x2B, 1, 0]);
        let hello = ClientHello::read(&body).unwrap();
        assert_eq!(hello.extensions, HelloExtensions::default());
        // No cipher suites.
        let mut empty = body.clone();
        empty.splice(36..40, [0, 0]);
        assert!(ClientHello::read(&empty).is_err());
        assert!(Message::read(HandshakeType::ServerHelloDone, &[0]).is_err());
        assert!(Message::read(HandshakeType::Finished, &[0; 11]).is_err());
        assert!(Message::read(HandshakeType::KeyUpdate, &[]).is_err());
        assert!(
            Certificate::read(&[0, 0, 3, 0, 0, 0]).is_err(),
            "empty cert"
        );
    }
}
