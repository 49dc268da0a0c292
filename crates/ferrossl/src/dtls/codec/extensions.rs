//! Hello extensions: one typed field per extension ferrossl understands, unknown ones kept
//! as bytes. Repeating an extension is refused (RFC 5246 §7.4.1.4).

use rustls::{NamedGroup, SignatureScheme};

use super::extensions13::{encode_connection_id, read_connection_id, CONNECTION_ID};
use super::{put_bytes, put_prefixed, put_u16, DecodeError, Reader};

const SERVER_NAME: u16 = 0;
const SUPPORTED_GROUPS: u16 = 10;
const EC_POINT_FORMATS: u16 = 11;
const SIGNATURE_ALGORITHMS: u16 = 13;
const USE_SRTP: u16 = 14;
const ALPN: u16 = 16;
const EXTENDED_MASTER_SECRET: u16 = 23;
const RECORD_SIZE_LIMIT: u16 = 28;
const SESSION_TICKET: u16 = 35;
const RENEGOTIATION_INFO: u16 = 0xFF01;

/// The `uncompressed` EC point format, the only one in use (RFC 8422 §5.1.2).
pub const EC_POINT_UNCOMPRESSED: u8 = 0;

/// The use_srtp extension (RFC 5764 §4.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UseSrtp {
    /// SRTP protection profile identifiers; the server answers with exactly one.
    pub profiles: Vec<u16>,
    /// The SRTP master key identifier (empty: none).
    pub mki: Vec<u8>,
}

/// The extensions of a ClientHello or ServerHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloExtensions {
    /// server_name (RFC 6066 §3): the host name a client asks for; a server acknowledges with
    /// an empty value.
    pub server_name: Option<Vec<u8>>,
    /// supported_groups (RFC 8422 §5.1.1).
    pub supported_groups: Option<Vec<NamedGroup>>,
    /// ec_point_formats (RFC 8422 §5.1.2).
    pub ec_point_formats: Option<Vec<u8>>,
    /// signature_algorithms (RFC 5246 §7.4.1.4.1).
    pub signature_algorithms: Option<Vec<SignatureScheme>>,
    /// use_srtp (RFC 5764 §4.1.1).
    pub use_srtp: Option<UseSrtp>,
    /// application_layer_protocol_negotiation (RFC 7301 §3.1).
    pub alpn: Option<Vec<Vec<u8>>>,
    /// extended_master_secret (RFC 7627 §5.1), which carries no data.
    pub extended_master_secret: bool,
    /// record_size_limit (RFC 8449 §4).
    pub record_size_limit: Option<u16>,
    /// SessionTicket (RFC 5077 §3.2).
    pub session_ticket: Option<Vec<u8>>,
    /// renegotiation_info (RFC 5746 §3.2): empty on an initial handshake.
    pub renegotiation_info: Option<Vec<u8>>,
    /// connection_id (RFC 9146 §3): the CID the sender wants in the records it receives.
    pub connection_id: Option<Vec<u8>>,
    /// Extensions ferrossl does not interpret: (type, data).
    pub unknown: Vec<(u16, Vec<u8>)>,
}

impl HelloExtensions {
    /// Reads the extensions block (the bytes behind its u16 length prefix).
    pub fn read(block: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(block);
        let mut exts = Self::default();
        let mut seen: Vec<u16> = Vec::new();
        while !r.is_empty() {
            let typ = r.u16("extension type")?;
            let data = r.prefixed(2, "extension data")?;
            if seen.contains(&typ) {
                return Err(DecodeError("repeated extension"));
            }
            seen.push(typ);
            exts.read_one(typ, data)?;
        }
        Ok(exts)
    }

    fn read_one(&mut self, typ: u16, data: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader::new(data);
        match typ {
            SERVER_NAME => {
                let mut name = Vec::new();
                if !r.is_empty() {
                    let mut list = r.sub(2, "server_name list")?;
                    while !list.is_empty() {
                        let kind = list.u8("server_name type")?;
                        let host = list.prefixed(2, "server_name")?;
                        // host_name(0) is the only name type (RFC 6066 §3).
                        if kind == 0 && name.is_empty() {
                            if host.is_empty() {
                                return Err(DecodeError("empty server_name"));
                            }
                            name = host.to_vec();
                        }
                    }
                }
                self.server_name = Some(name);
            }
            SUPPORTED_GROUPS => {
                let mut list = r.sub(2, "supported_groups")?;
                let mut groups = Vec::new();
                while !list.is_empty() {
                    groups.push(NamedGroup::from(list.u16("supported_groups")?));
                }
                self.supported_groups = Some(groups);
            }
            EC_POINT_FORMATS => {
                self.ec_point_formats = Some(r.prefixed(1, "ec_point_formats")?.to_vec());
            }
            SIGNATURE_ALGORITHMS => {
                let mut list = r.sub(2, "signature_algorithms")?;
                let mut schemes = Vec::new();
                while !list.is_empty() {
                    schemes.push(SignatureScheme::from(list.u16("signature_algorithms")?));
                }
                self.signature_algorithms = Some(schemes);
            }
            USE_SRTP => {
                let mut list = r.sub(2, "use_srtp profiles")?;
                let mut profiles = Vec::new();
                while !list.is_empty() {
                    profiles.push(list.u16("use_srtp profiles")?);
                }
                let mki = r.prefixed(1, "use_srtp mki")?.to_vec();
                self.use_srtp = Some(UseSrtp { profiles, mki });
            }
            ALPN => {
                let mut list = r.sub(2, "alpn list")?;
                let mut protocols = Vec::new();
                while !list.is_empty() {
                    let p = list.prefixed(1, "alpn protocol")?;
                    if p.is_empty() {
                        return Err(DecodeError("empty alpn protocol"));
                    }
                    protocols.push(p.to_vec());
                }
                self.alpn = Some(protocols);
            }
            EXTENDED_MASTER_SECRET => self.extended_master_secret = true,
            RECORD_SIZE_LIMIT => self.record_size_limit = Some(r.u16("record_size_limit")?),
            SESSION_TICKET => self.session_ticket = Some(r.rest().to_vec()),
            RENEGOTIATION_INFO => {
                self.renegotiation_info = Some(r.prefixed(1, "renegotiation_info")?.to_vec());
            }
            CONNECTION_ID => self.connection_id = Some(read_connection_id(r.rest())?),
            other => self.unknown.push((other, r.rest().to_vec())),
        }
        r.finish("extension data")
    }

    /// Writes the extensions block with its u16 length prefix; writes nothing when empty,
    /// since a hello may omit the block (RFC 5246 §7.4.1.2).
    pub fn encode(&self, out: &mut Vec<u8>) {
        if *self == Self::default() {
            return;
        }
        put_prefixed(out, 2, |out| {
            let mut ext = |typ: u16, body: &dyn Fn(&mut Vec<u8>)| {
                put_u16(out, typ);
                put_prefixed(out, 2, body);
            };
            if let Some(name) = &self.server_name {
                ext(SERVER_NAME, &|o| {
                    if !name.is_empty() {
                        put_prefixed(o, 2, |o| {
                            o.push(0);
                            put_bytes(o, 2, name);
                        });
                    }
                });
            }
            if let Some(groups) = &self.supported_groups {
                ext(SUPPORTED_GROUPS, &|o| {
                    put_prefixed(o, 2, |o| {
                        groups.iter().for_each(|g| put_u16(o, (*g).into()))
                    })
                });
            }
            if let Some(formats) = &self.ec_point_formats {
                ext(EC_POINT_FORMATS, &|o| put_bytes(o, 1, formats));
            }
            if let Some(schemes) = &self.signature_algorithms {
                ext(SIGNATURE_ALGORITHMS, &|o| {
                    put_prefixed(o, 2, |o| {
                        schemes.iter().for_each(|s| put_u16(o, (*s).into()))
                    })
                });
            }
            if let Some(srtp) = &self.use_srtp {
                ext(USE_SRTP, &|o| {
                    put_prefixed(o, 2, |o| srtp.profiles.iter().for_each(|p| put_u16(o, *p)));
                    put_bytes(o, 1, &srtp.mki);
                });
            }
            if let Some(protocols) = &self.alpn {
                ext(ALPN, &|o| {
                    put_prefixed(o, 2, |o| protocols.iter().for_each(|p| put_bytes(o, 1, p)))
                });
            }
            if self.extended_master_secret {
                ext(EXTENDED_MASTER_SECRET, &|_| {});
            }
            if let Some(limit) = self.record_size_limit {
                ext(RECORD_SIZE_LIMIT, &|o| put_u16(o, limit));
            }
            if let Some(ticket) = &self.session_ticket {
                ext(SESSION_TICKET, &|o| o.extend_from_slice(ticket));
            }
            if let Some(info) = &self.renegotiation_info {
                ext(RENEGOTIATION_INFO, &|o| put_bytes(o, 1, info));
            }
            if let Some(cid) = &self.connection_id {
                ext(CONNECTION_ID, &|o| encode_connection_id(cid, o));
            }
            for (typ, data) in &self.unknown {
                ext(*typ, &|o| o.extend_from_slice(data));
            }
        });
    }

    /// The body of an extension kept as bytes: one read by a codec of its own, such as
    /// DTLS 1.3's ([`super::extensions13`]).
    pub fn raw(&self, typ: u16) -> Option<&[u8]> {
        self.unknown
            .iter()
            .find(|(t, _)| *t == typ)
            .map(|(_, data)| &data[..])
    }

    /// Sets an extension kept as bytes, replacing one of the same type.
    pub fn set_raw(&mut self, typ: u16, data: Vec<u8>) {
        match self.unknown.iter_mut().find(|(t, _)| *t == typ) {
            Some(entry) => entry.1 = data,
            None => self.unknown.push((typ, data)),
        }
    }

    /// Extensions present in `self` that a client did not offer in `offered` (a server may
    /// only answer what was asked, RFC 5246 §7.4.1.4).
    pub fn unsolicited(&self, offered: &HelloExtensions) -> bool {
        (self.server_name.is_some() && offered.server_name.is_none())
            || (self.ec_point_formats.is_some() && offered.ec_point_formats.is_none())
            || (self.use_srtp.is_some() && offered.use_srtp.is_none())
            || (self.alpn.is_some() && offered.alpn.is_none())
            || (self.extended_master_secret && !offered.extended_master_secret)
            || (self.record_size_limit.is_some() && offered.record_size_limit.is_none())
            || (self.session_ticket.is_some() && offered.session_ticket.is_none())
            || (self.renegotiation_info.is_some() && offered.renegotiation_info.is_none())
            || (self.connection_id.is_some() && offered.connection_id.is_none())
            || self.supported_groups.is_some()
            || self.signature_algorithms.is_some()
            || !self.unknown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> HelloExtensions {
        HelloExtensions {
            server_name: Some(b"example.com".to_vec()),
            supported_groups: Some(vec![NamedGroup::X25519, NamedGroup::secp256r1]),
            ec_point_formats: Some(vec![EC_POINT_UNCOMPRESSED]),
            signature_algorithms: Some(vec![
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::RSA_PSS_SHA256,
            ]),
            use_srtp: Some(UseSrtp {
                profiles: vec![1, 7],
                mki: vec![],
            }),
            alpn: Some(vec![b"webrtc".to_vec(), b"c-webrtc".to_vec()]),
            extended_master_secret: true,
            record_size_limit: Some(16384),
            session_ticket: Some(vec![]),
            renegotiation_info: Some(vec![]),
            connection_id: Some(vec![1, 2, 3, 4]),
            unknown: vec![(0x1234, vec![9, 9])],
        }
    }

    #[test]
    fn round_trip() {
        let exts = full();
        let mut out = vec![];
        exts.encode(&mut out);
        let mut r = Reader::new(&out);
        let block = r.prefixed(2, "extensions").unwrap();
        assert!(r.is_empty());
        assert_eq!(HelloExtensions::read(block).unwrap(), exts);
        let mut again = vec![];
        HelloExtensions::read(block).unwrap().encode(&mut again);
        assert_eq!(again, out, "decode then encode gives the same bytes");
        let mut empty = vec![];
        HelloExtensions::default().encode(&mut empty);
        assert!(empty.is_empty());
        // The ServerHello form of server_name is empty.
        let ack = HelloExtensions {
            server_name: Some(vec![]),
            ..Default::default()
        };
        let mut out = vec![];
        ack.encode(&mut out);
        assert_eq!(out, [0, 4, 0, 0, 0, 0]);
        assert_eq!(HelloExtensions::read(&out[2..]).unwrap(), ack);
    }

    #[test]
    fn malformed_and_repeated_extensions_are_refused() {
        // extended_master_secret twice.
        assert!(HelloExtensions::read(&[0, 23, 0, 0, 0, 23, 0, 0]).is_err());
        // extended_master_secret with a body.
        assert!(HelloExtensions::read(&[0, 23, 0, 1, 0]).is_err());
        // An empty ALPN protocol name.
        assert!(HelloExtensions::read(&[0, 16, 0, 3, 0, 1, 0]).is_err());
        // Truncated.
        assert!(HelloExtensions::read(&[0, 10, 0, 4, 0, 2, 0]).is_err());
    }

    #[test]
    fn unsolicited_answers() {
        let offered = HelloExtensions {
            extended_master_secret: true,
            ..Default::default()
        };
        let answer = HelloExtensions {
            extended_master_secret: true,
            renegotiation_info: Some(vec![]),
            ..Default::default()
        };
        assert!(answer.unsolicited(&offered));
        assert!(!answer.unsolicited(&full()));
    }
}
