//! What a DTLS endpoint reads of a datagram before it knows the peer's version, keeping
//! nothing (RFC 9147 §5.1, RFC 8446 §4.2.1): whether a ClientHello offers DTLS 1.3, its
//! cookie, and whether a server answered a hello offering both versions in DTLS 1.2. A server
//! whose first ClientHello is fragmented ahead of supported_versions keeps its fragments in an
//! [`UndecidedHello`] until the whole hello tells.

use rustls::{ContentType, HandshakeType};

use super::codec::extensions13::{
    read_cookie, read_selected_version, read_versions_offer, COOKIE, DTLS13, SUPPORTED_VERSIONS,
};
use super::codec::message::{ClientHello, ServerHello};
use super::codec::record::{handshake_fragments, records, HandshakeHeader};
use super::codec::Reader;
use super::flight::{Fragment, Reassembler};

/// How many datagrams an undecided first ClientHello may span.
const MAX_HELLO_DATAGRAMS: usize = 64;

/// The datagrams of a server's first ClientHello whose fragments seen so far do not say
/// whether it offers DTLS 1.3 (a small MTU, or a big key share ahead of supported_versions).
#[derive(Default)]
pub(super) struct UndecidedHello {
    datagrams: Vec<Vec<u8>>,
    reassembler: Option<Reassembler>,
}

impl UndecidedHello {
    /// Keeps `datagram` when it carries ClientHello fragments. Once they make the hello whole,
    /// tells whether it offers DTLS 1.3 (a hello that does not parse offers nothing: the
    /// DTLS 1.2 engine then refuses it with the right alert).
    pub fn add(&mut self, datagram: &[u8]) -> Option<bool> {
        if self.datagrams.len() >= MAX_HELLO_DATAGRAMS {
            return None;
        }
        let mut kept = false;
        for (record, body) in records(datagram) {
            if record.content_type != ContentType::Handshake || record.epoch != 0 {
                continue;
            }
            for (header, fragment) in handshake_fragments(body).map_while(Result::ok) {
                if header.msg_type != HandshakeType::ClientHello {
                    continue;
                }
                let reassembler = self.reassembler.get_or_insert_with(|| {
                    let mut r = Reassembler::default();
                    r.restart_at(header.message_seq);
                    r
                });
                kept |= reassembler.insert(0, &header, fragment) == Fragment::Accepted;
            }
        }
        if kept {
            self.datagrams.push(datagram.to_vec());
        }
        let hello = self.reassembler.as_mut()?.pop()?;
        Some(ClientHello::read(&hello.body).is_ok_and(|h| offers_13(&h)))
    }

    /// The datagrams kept, in the order they came.
    pub fn into_datagrams(self) -> Vec<Vec<u8>> {
        self.datagrams
    }
}

/// Whether `datagram` starts with the first fragment of a ClientHello that answers a retry
/// (message_seq above 0) and does not hold it whole.
pub(super) fn second_hello_fragment(datagram: &[u8]) -> bool {
    first_handshake_fragment(datagram).is_some_and(|(h, _)| {
        h.msg_type == HandshakeType::ClientHello
            && h.message_seq > 0
            && h.fragment_offset == 0
            && h.fragment_length < h.length
    })
}

/// Whether `datagram` holds a fragment of a ClientHello in epoch 0.
pub(super) fn holds_client_hello_fragment(datagram: &[u8]) -> bool {
    records(datagram).any(|(record, body)| {
        record.content_type == ContentType::Handshake
            && record.epoch == 0
            && handshake_fragments(body)
                .map_while(Result::ok)
                .any(|(h, _)| h.msg_type == HandshakeType::ClientHello)
    })
}

/// The header and bytes of the first handshake fragment in the first record of `datagram`,
/// when that record is an epoch-0 handshake record: what a stateless peer can read of a
/// datagram without keeping anything.
fn first_handshake_fragment(datagram: &[u8]) -> Option<(HandshakeHeader, &[u8])> {
    let (record, body) = records(datagram).next()?;
    if record.content_type != ContentType::Handshake || record.epoch != 0 {
        return None;
    }
    let mut r = Reader::new(body);
    let header = HandshakeHeader::read(&mut r).ok()?;
    let fragment = r.take(header.fragment_length as usize, "fragment").ok()?;
    Some((header, fragment))
}

/// What the first fragment of a ClientHello at the start of `datagram` tells without the
/// rest: its random, whether it offers DTLS 1.3 (None when the fragment ends before
/// supported_versions) and the DTLS 1.3 cookie, when the fragment holds it.
pub(super) struct FirstFragment {
    pub random: [u8; 32],
    pub offers_13: Option<bool>,
    pub cookie: Option<Vec<u8>>,
}

pub(super) fn first_fragment(datagram: &[u8]) -> Option<FirstFragment> {
    let (header, fragment) = first_handshake_fragment(datagram)?;
    if header.msg_type != HandshakeType::ClientHello || header.fragment_offset != 0 {
        return None;
    }
    let mut hello = Reader::new(fragment);
    // legacy_version, random, session_id, cookie, cipher_suites, compression_methods.
    hello.u16("legacy_version").ok()?;
    let random = hello.array("random").ok()?;
    let mut found = FirstFragment {
        random,
        // The whole hello without supported_versions offers no 1.3.
        offers_13: header.is_last_fragment().then_some(false),
        cookie: None,
    };
    hello.prefixed(1, "session_id").ok()?;
    if !hello.prefixed(1, "cookie").ok()?.is_empty() {
        // A DTLS 1.2 cookie: the client took our HelloVerifyRequest and went on in 1.2.
        found.offers_13 = Some(false);
        return Some(found);
    }
    hello.prefixed(2, "cipher_suites").ok()?;
    hello.prefixed(1, "compression_methods").ok()?;
    hello.u16("extensions length").ok()?;
    while let (Ok(typ), Ok(data)) = (hello.u16("type"), hello.prefixed(2, "extension")) {
        match typ {
            SUPPORTED_VERSIONS => {
                found.offers_13 = Some(read_versions_offer(data).is_ok_and(|v| v.contains(&DTLS13)))
            }
            COOKIE => found.cookie = read_cookie(data).ok(),
            _ => {}
        }
    }
    Some(found)
}

/// Whether the ClientHello starting in the first record of `datagram` offers DTLS 1.3, read
/// from its first fragment alone.
pub(super) fn first_hello_offers_13(datagram: &[u8]) -> Option<bool> {
    first_fragment(datagram)?.offers_13
}

pub(super) fn offers_13(hello: &ClientHello) -> bool {
    // A DTLS 1.2 cookie means the client is going on in 1.2 after a HelloVerifyRequest.
    hello.cookie.is_empty()
        && hello
            .extensions
            .raw(SUPPORTED_VERSIONS)
            .and_then(|v| read_versions_offer(v).ok())
            .is_some_and(|v| v.contains(&DTLS13))
}

/// Whether `datagram` starts with a DTLS 1.2 answer to a ClientHello: a HelloVerifyRequest,
/// or a ServerHello (whole in its record) without a supported_versions choosing 1.3.
pub(super) fn answers_with_12(datagram: &[u8]) -> bool {
    let Some((header, fragment)) = first_handshake_fragment(datagram) else {
        return false;
    };
    let whole = header.fragment_offset == 0 && header.is_last_fragment();
    match header.msg_type {
        HandshakeType::HelloVerifyRequest => true,
        HandshakeType::ServerHello if whole => ServerHello::read(fragment).is_ok_and(|sh| {
            sh.extensions
                .raw(SUPPORTED_VERSIONS)
                .and_then(|v| read_selected_version(v).ok())
                != Some(DTLS13)
        }),
        _ => false,
    }
}
