//! The hello extensions DTLS 1.3 adds (RFC 8446 §4.2, as RFC 9147 §5 uses them), and the
//! connection ID extension of RFC 9146 §3 (also RFC 9147 §9). Several have one body in a
//! ClientHello and another in a ServerHello or HelloRetryRequest, so each form has its own
//! reader and writer; [`super::extensions::HelloExtensions`] carries them as raw bodies.

use rustls::NamedGroup;

use super::{
    put_bytes, put_distinguished_names, put_prefixed, put_u16, read_distinguished_names,
    DecodeError, Reader,
};

/// pre_shared_key (RFC 8446 §4.2.11).
pub const PRE_SHARED_KEY: u16 = 41;
/// supported_versions (RFC 8446 §4.2.1).
pub const SUPPORTED_VERSIONS: u16 = 43;
/// cookie (RFC 8446 §4.2.2).
pub const COOKIE: u16 = 44;
/// psk_key_exchange_modes (RFC 8446 §4.2.9).
pub const PSK_KEY_EXCHANGE_MODES: u16 = 45;
/// certificate_authorities (RFC 8446 §4.2.4).
pub const CERTIFICATE_AUTHORITIES: u16 = 47;
/// key_share (RFC 8446 §4.2.8).
pub const KEY_SHARE: u16 = 51;
/// connection_id (RFC 9146 §3).
pub const CONNECTION_ID: u16 = 54;

/// DTLS 1.3 on the wire (RFC 9147 §5.3: the one's complement of 1.3's "3.4").
pub const DTLS13: u16 = 0xFEFC;
/// psk_dhe_ke: resumption with a fresh (EC)DHE exchange, the only mode ferrossl uses
/// (RFC 8446 §4.2.9).
pub const PSK_DHE_KE: u8 = 1;

/// One key share: a group and a public value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyShareEntry {
    /// The group.
    pub group: NamedGroup,
    /// The public value in the group's encoding.
    pub key_exchange: Vec<u8>,
}

impl KeyShareEntry {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let group = NamedGroup::from(r.u16("key share group")?);
        let key_exchange = r.prefixed(2, "key_exchange")?;
        if key_exchange.is_empty() {
            return Err(DecodeError("empty key_exchange"));
        }
        Ok(Self {
            group,
            key_exchange: key_exchange.to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, u16::from(self.group));
        put_bytes(out, 2, &self.key_exchange);
    }
}

/// A PSK a client offers: a ticket and its obfuscated age (RFC 8446 §4.2.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PskIdentity {
    /// The ticket.
    pub identity: Vec<u8>,
    /// The ticket's age plus its ticket_age_add, modulo 2^32.
    pub obfuscated_ticket_age: u32,
}

/// A ClientHello's pre_shared_key: identities and one binder each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PskOffer {
    /// The PSKs offered.
    pub identities: Vec<PskIdentity>,
    /// One HMAC per identity, in the same order.
    pub binders: Vec<Vec<u8>>,
}

/// Reads a body that must be consumed whole.
fn whole<T>(
    data: &[u8],
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(data);
    let value = read(&mut r)?;
    r.finish(what)?;
    Ok(value)
}

/// ClientHello's supported_versions: the versions offered, most preferred first.
pub fn read_versions_offer(data: &[u8]) -> Result<Vec<u16>, DecodeError> {
    whole(data, "supported_versions", |r| {
        let list = r.prefixed(1, "supported_versions")?;
        if list.is_empty() || list.len() % 2 != 0 {
            return Err(DecodeError("supported_versions list"));
        }
        Ok(list
            .chunks_exact(2)
            .map(|v| u16::from_be_bytes([v[0], v[1]]))
            .collect())
    })
}

/// Writes ClientHello's supported_versions.
pub fn encode_versions_offer(versions: &[u16], out: &mut Vec<u8>) {
    put_prefixed(out, 1, |out| versions.iter().for_each(|v| put_u16(out, *v)));
}

/// ServerHello's (and HelloRetryRequest's) supported_versions: the version chosen.
pub fn read_selected_version(data: &[u8]) -> Result<u16, DecodeError> {
    whole(data, "selected_version", |r| r.u16("selected_version"))
}

/// ClientHello's key_share: the shares offered, at most one per group (RFC 8446 §4.2.8).
pub fn read_key_share_offer(data: &[u8]) -> Result<Vec<KeyShareEntry>, DecodeError> {
    whole(data, "key_share", |r| {
        let mut list = r.sub(2, "client_shares")?;
        let mut shares: Vec<KeyShareEntry> = Vec::new();
        while !list.is_empty() {
            let share = KeyShareEntry::read(&mut list)?;
            if shares.iter().any(|s| s.group == share.group) {
                return Err(DecodeError("two key shares for one group"));
            }
            shares.push(share);
        }
        Ok(shares)
    })
}

/// Writes ClientHello's key_share (possibly empty: the server's HelloRetryRequest then names
/// the group).
pub fn encode_key_share_offer(shares: &[KeyShareEntry], out: &mut Vec<u8>) {
    put_prefixed(out, 2, |out| shares.iter().for_each(|s| s.encode(out)));
}

/// ServerHello's key_share: the one share the server chose.
pub fn read_key_share_choice(data: &[u8]) -> Result<KeyShareEntry, DecodeError> {
    whole(data, "key_share", KeyShareEntry::read)
}

/// Writes ServerHello's key_share.
pub fn encode_key_share_choice(share: &KeyShareEntry, out: &mut Vec<u8>) {
    share.encode(out);
}

/// HelloRetryRequest's key_share: the group the client must send a share for.
pub fn read_key_share_retry(data: &[u8]) -> Result<NamedGroup, DecodeError> {
    whole(data, "key_share", |r| {
        Ok(NamedGroup::from(r.u16("selected_group")?))
    })
}

/// certificate_authorities: the DER names of the CAs a CertificateRequest accepts.
pub fn read_certificate_authorities(data: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    whole(data, "certificate_authorities", read_distinguished_names)
}

/// Writes the certificate_authorities extension.
pub fn encode_certificate_authorities(names: &[Vec<u8>], out: &mut Vec<u8>) {
    put_distinguished_names(out, names);
}

/// The cookie extension, in a HelloRetryRequest and the ClientHello that answers it.
pub fn read_cookie(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    whole(data, "cookie", |r| {
        let cookie = r.prefixed(2, "cookie")?;
        if cookie.is_empty() {
            return Err(DecodeError("empty cookie"));
        }
        Ok(cookie.to_vec())
    })
}

/// Writes the cookie extension.
pub fn encode_cookie(cookie: &[u8], out: &mut Vec<u8>) {
    put_bytes(out, 2, cookie);
}

/// psk_key_exchange_modes: the modes a client accepts.
pub fn read_psk_modes(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    whole(data, "psk_key_exchange_modes", |r| {
        let modes = r.prefixed(1, "ke_modes")?;
        if modes.is_empty() {
            return Err(DecodeError("no psk_key_exchange_modes"));
        }
        Ok(modes.to_vec())
    })
}

/// ClientHello's pre_shared_key: as many binders as identities, each at least 32 bytes.
pub fn read_psk_offer(data: &[u8]) -> Result<PskOffer, DecodeError> {
    whole(data, "pre_shared_key", |r| {
        let mut ids = r.sub(2, "identities")?;
        let mut identities = Vec::new();
        while !ids.is_empty() {
            let identity = ids.prefixed(2, "identity")?;
            if identity.is_empty() {
                return Err(DecodeError("empty PSK identity"));
            }
            identities.push(PskIdentity {
                identity: identity.to_vec(),
                obfuscated_ticket_age: ids.u32("obfuscated_ticket_age")?,
            });
        }
        let mut list = r.sub(2, "binders")?;
        let mut binders = Vec::new();
        while !list.is_empty() {
            let binder = list.prefixed(1, "binder")?;
            if binder.len() < 32 {
                return Err(DecodeError("PSK binder shorter than 32 bytes"));
            }
            binders.push(binder.to_vec());
        }
        if identities.is_empty() || identities.len() != binders.len() {
            return Err(DecodeError("PSK identities and binders do not pair up"));
        }
        Ok(PskOffer {
            identities,
            binders,
        })
    })
}

/// Writes ClientHello's pre_shared_key.
pub fn encode_psk_offer(offer: &PskOffer, out: &mut Vec<u8>) {
    put_prefixed(out, 2, |out| {
        for id in &offer.identities {
            put_bytes(out, 2, &id.identity);
            out.extend_from_slice(&id.obfuscated_ticket_age.to_be_bytes());
        }
    });
    put_prefixed(out, 2, |out| {
        offer.binders.iter().for_each(|b| put_bytes(out, 1, b));
    });
}

/// ServerHello's pre_shared_key: the index of the identity the server accepted.
pub fn read_psk_choice(data: &[u8]) -> Result<u16, DecodeError> {
    whole(data, "pre_shared_key", |r| r.u16("selected_identity"))
}

/// connection_id: the CID the sender wants to receive in the peer's records (RFC 9146 §3);
/// empty asks the peer to use one while sending none.
pub fn read_connection_id(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    whole(data, "connection_id", |r| {
        Ok(r.prefixed(1, "cid")?.to_vec())
    })
}

/// Writes connection_id.
pub fn encode_connection_id(cid: &[u8], out: &mut Vec<u8>) {
    put_bytes(out, 1, cid);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls::codec::message::ClientHello;
    use crate::dtls::codec::record::{handshake_fragments, records};

    /// The first datagram of wolfSSL 5.9.4's DTLS 1.3 client (`client -u -v 4`).
    const WOLFSSL_HELLO: &[u8] = include_bytes!("testdata/wolfssl-dtls13-client-hello.bin");

    fn extension(hello: &ClientHello, typ: u16) -> &[u8] {
        let found = hello.extensions.unknown.iter().find(|(t, _)| *t == typ);
        &found.unwrap_or_else(|| panic!("no extension {typ}")).1
    }

    #[test]
    fn a_real_dtls13_client_hello_reads() {
        let (header, body) = records(WOLFSSL_HELLO).next().unwrap();
        assert_eq!(header.epoch, 0);
        let (fragment, message) = handshake_fragments(body).next().unwrap().unwrap();
        assert!(fragment.is_last_fragment() && fragment.fragment_offset == 0);
        let hello = ClientHello::read(message).unwrap();
        assert_eq!(
            hello.client_version, 0xFEFD,
            "legacy_version stays DTLS 1.2"
        );
        let versions = read_versions_offer(extension(&hello, SUPPORTED_VERSIONS)).unwrap();
        assert_eq!(versions, [DTLS13]);
        assert_eq!(
            read_psk_modes(extension(&hello, PSK_KEY_EXCHANGE_MODES)).unwrap(),
            [0, PSK_DHE_KE]
        );
        let shares = read_key_share_offer(extension(&hello, KEY_SHARE)).unwrap();
        let p256 = shares.iter().find(|s| s.group == NamedGroup::secp256r1);
        assert_eq!(p256.map(|s| s.key_exchange.len()), Some(65), "{shares:?}");
        assert!(shares.iter().all(|s| !s.key_exchange.is_empty()));
    }

    #[test]
    fn every_form_reads_back_what_was_written() {
        let mut out = Vec::new();
        encode_versions_offer(&[DTLS13, 0xFEFD], &mut out);
        assert_eq!(read_versions_offer(&out).unwrap(), [DTLS13, 0xFEFD]);
        assert_eq!(
            read_selected_version(&DTLS13.to_be_bytes()).unwrap(),
            DTLS13
        );

        let shares = vec![
            KeyShareEntry {
                group: NamedGroup::X25519,
                key_exchange: vec![9; 32],
            },
            KeyShareEntry {
                group: NamedGroup::secp256r1,
                key_exchange: vec![4; 65],
            },
        ];
        out.clear();
        encode_key_share_offer(&shares, &mut out);
        assert_eq!(read_key_share_offer(&out).unwrap(), shares);
        out.clear();
        encode_key_share_offer(&[], &mut out);
        assert_eq!(read_key_share_offer(&out).unwrap(), []);
        out.clear();
        encode_key_share_choice(&shares[0], &mut out);
        assert_eq!(read_key_share_choice(&out).unwrap(), shares[0]);
        assert_eq!(
            read_key_share_retry(&[0x11, 0xEC]).unwrap(),
            NamedGroup::from(0x11EC)
        );

        out.clear();
        encode_cookie(b"stateless", &mut out);
        assert_eq!(read_cookie(&out).unwrap(), b"stateless");

        let offer = PskOffer {
            identities: vec![PskIdentity {
                identity: b"ticket".to_vec(),
                obfuscated_ticket_age: 0xDEAD_BEEF,
            }],
            binders: vec![vec![7; 32]],
        };
        out.clear();
        encode_psk_offer(&offer, &mut out);
        assert_eq!(read_psk_offer(&out).unwrap(), offer);
        assert_eq!(read_psk_choice(&[0, 0]).unwrap(), 0);

        out.clear();
        encode_connection_id(&[1, 2, 3], &mut out);
        assert_eq!(read_connection_id(&out).unwrap(), [1, 2, 3]);
        assert_eq!(read_connection_id(&[0]).unwrap(), []);
    }

    #[test]
    fn malformed_bodies_are_decode_errors() {
        assert!(
            read_versions_offer(&[3, 0xFE, 0xFC, 0xFE]).is_err(),
            "odd list"
        );
        assert!(read_versions_offer(&[0]).is_err(), "empty list");
        assert!(
            read_selected_version(&[0xFE, 0xFC, 0]).is_err(),
            "trailing byte"
        );
        let twice = [0, 10, 0, 0x1D, 0, 1, 9, 0, 0x1D, 0, 1, 8];
        assert!(
            read_key_share_offer(&twice).is_err(),
            "two shares for X25519"
        );
        assert!(
            read_key_share_choice(&[0, 0x1D, 0, 0]).is_err(),
            "empty share"
        );
        assert!(read_cookie(&[0, 0]).is_err(), "empty cookie");
        assert!(read_psk_modes(&[0]).is_err());
        let short_binder = [0, 7, 0, 1, b't', 0, 0, 0, 0, 0, 2, 1, 9];
        assert!(read_psk_offer(&short_binder).is_err());
        let unpaired = [0, 0, 0, 0];
        assert!(read_psk_offer(&unpaired).is_err());
        assert!(read_connection_id(&[4, 1, 2]).is_err(), "CID past the end");
    }
}
