//! The DTLS 1.3 key schedule: TLS 1.3's (RFC 8446 §7.1) with the label prefix "dtls13"
//! instead of "tls13 " (RFC 9147 §5.9), plus the record number key "sn" beside each traffic
//! key and IV (§4.2.3).
//!
//! The stages are types: [`EarlySecret`] becomes a [`HandshakeSecret`] once the (EC)DHE
//! secret is known, which becomes a [`MasterSecret`]; a secret cannot be used out of order.

use aws_lc_rs::{hkdf, hmac};

use super::key_schedule::PrfHash;

/// HKDF labels of DTLS 1.3 start with this instead of TLS 1.3's "tls13 " (RFC 9147 §5.9).
const DTLS13_PREFIX: &[u8] = b"dtls13";

impl PrfHash {
    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            PrfHash::Sha256 => hkdf::HKDF_SHA256,
            PrfHash::Sha384 => hkdf::HKDF_SHA384,
        }
    }

    fn len(self) -> usize {
        self.hmac().digest_algorithm().output_len()
    }
}

/// An output length for aws-lc-rs's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The schedule's hash and label prefix: what every derivation needs.
#[derive(Clone, Copy, Debug)]
struct Labels {
    hash: PrfHash,
    prefix: &'static [u8],
}

impl Labels {
    /// The HkdfLabel structure (RFC 8446 §7.1): length, "prefix" + label, context; None when
    /// a field does not fit its length prefix.
    fn hkdf_label(&self, label: &[u8], context: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut info = u16::try_from(len).ok()?.to_be_bytes().to_vec();
        info.push(u8::try_from(self.prefix.len() + label.len()).ok()?);
        info.extend_from_slice(self.prefix);
        info.extend_from_slice(label);
        info.push(u8::try_from(context.len()).ok()?);
        info.extend_from_slice(context);
        Some(info)
    }

    /// HKDF-Expand-Label(secret, label, context, length) (RFC 8446 §7.1); None when the
    /// length is beyond what HKDF gives (255 hash lengths) or a field does not fit.
    fn try_expand(
        &self,
        secret: &hkdf::Prk,
        label: &[u8],
        context: &[u8],
        len: usize,
    ) -> Option<Vec<u8>> {
        let info = self.hkdf_label(label, context, len)?;
        let mut out = vec![0; len];
        let info = [info.as_slice()];
        let okm = secret.expand(&info, Len(len)).ok()?;
        okm.fill(&mut out).ok()?;
        Some(out)
    }

    /// HKDF-Expand-Label for the schedule's own labels and lengths, which always fit.
    fn expand(&self, secret: &hkdf::Prk, label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
        self.try_expand(secret, label, context, len)
            .expect("the schedule's labels, contexts (hashes) and lengths fit HkdfLabel")
    }

    /// Derive-Secret(secret, label, transcript_hash): the transcript is passed hashed.
    fn derive(&self, secret: &hkdf::Prk, label: &[u8], transcript_hash: &[u8]) -> Vec<u8> {
        self.expand(secret, label, transcript_hash, self.hash.len())
    }

    /// A secret's bytes as a key for the next expansion.
    fn prk(&self, secret: &[u8]) -> hkdf::Prk {
        hkdf::Prk::new_less_safe(self.hash.hkdf(), secret)
    }

    /// HKDF-Extract(salt, ikm).
    fn extract(&self, salt: &[u8], ikm: &[u8]) -> hkdf::Prk {
        hkdf::Salt::new(self.hash.hkdf(), salt).extract(ikm)
    }

    /// Hash(""), the context of the "derived" step and of binder keys.
    fn empty_hash(&self) -> Vec<u8> {
        self.hash.hash(&[])
    }

    /// The salt for the next extraction: Derive-Secret(secret, "derived", "").
    fn derived(&self, secret: &hkdf::Prk) -> Vec<u8> {
        self.derive(secret, b"derived", &self.empty_hash())
    }
}

/// A pair of traffic secrets, one per direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficSecrets {
    /// The client's sending secret.
    pub client: Vec<u8>,
    /// The server's sending secret.
    pub server: Vec<u8>,
}

/// The first stage: from the PSK, or from zeros without one.
pub struct EarlySecret {
    labels: Labels,
    prk: hkdf::Prk,
}

impl EarlySecret {
    /// Early Secret = HKDF-Extract(0, PSK), with a string of zeros when there is no PSK.
    pub fn new(hash: PrfHash, psk: Option<&[u8]>) -> Self {
        let labels = Labels {
            hash,
            prefix: DTLS13_PREFIX,
        };
        Self::with_labels(labels, psk)
    }

    fn with_labels(labels: Labels, psk: Option<&[u8]>) -> Self {
        let zeros = vec![0; labels.hash.len()];
        let prk = labels.extract(&zeros, psk.unwrap_or(&zeros));
        Self { labels, prk }
    }

    /// The key that PSK binders are computed with: "res binder" for a resumption PSK.
    pub fn resumption_binder_key(&self) -> Vec<u8> {
        self.labels
            .derive(&self.prk, b"res binder", &self.labels.empty_hash())
    }

    /// Handshake Secret = HKDF-Extract(Derive-Secret(early, "derived", ""), (EC)DHE).
    pub fn into_handshake(self, shared_secret: &[u8]) -> HandshakeSecret {
        let salt = self.labels.derived(&self.prk);
        HandshakeSecret {
            labels: self.labels,
            prk: self.labels.extract(&salt, shared_secret),
        }
    }
}

/// The second stage, which protects the rest of the handshake.
pub struct HandshakeSecret {
    labels: Labels,
    prk: hkdf::Prk,
}

impl HandshakeSecret {
    /// The handshake traffic secrets, over the transcript up to ServerHello.
    pub fn traffic_secrets(&self, transcript_hash: &[u8]) -> TrafficSecrets {
        TrafficSecrets {
            client: self
                .labels
                .derive(&self.prk, b"c hs traffic", transcript_hash),
            server: self
                .labels
                .derive(&self.prk, b"s hs traffic", transcript_hash),
        }
    }

    /// Master Secret = HKDF-Extract(Derive-Secret(handshake, "derived", ""), 0).
    pub fn into_master(self) -> MasterSecret {
        let salt = self.labels.derived(&self.prk);
        let zeros = vec![0; self.labels.hash.len()];
        MasterSecret {
            labels: self.labels,
            prk: self.labels.extract(&salt, &zeros),
        }
    }
}

/// The last stage: application traffic, the exporter and resumption.
pub struct MasterSecret {
    labels: Labels,
    prk: hkdf::Prk,
}

impl MasterSecret {
    /// The first application traffic secrets, over the transcript up to the server's
    /// Finished.
    pub fn traffic_secrets(&self, transcript_hash: &[u8]) -> TrafficSecrets {
        TrafficSecrets {
            client: self
                .labels
                .derive(&self.prk, b"c ap traffic", transcript_hash),
            server: self
                .labels
                .derive(&self.prk, b"s ap traffic", transcript_hash),
        }
    }

    /// The exporter master secret, over the transcript up to the server's Finished.
    pub fn exporter_master(&self, transcript_hash: &[u8]) -> Vec<u8> {
        self.labels
            .derive(&self.prk, b"exp master", transcript_hash)
    }

    /// The resumption master secret, over the transcript up to the client's Finished.
    pub fn resumption_master(&self, transcript_hash: &[u8]) -> Vec<u8> {
        self.labels
            .derive(&self.prk, b"res master", transcript_hash)
    }
}

/// What one direction's records are protected with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficKeys {
    /// The AEAD key.
    pub key: Vec<u8>,
    /// The AEAD IV, XORed with the record number for each nonce.
    pub iv: Vec<u8>,
    /// The record number encryption key (RFC 9147 §4.2.3).
    pub sn: Vec<u8>,
}

/// Operations on one traffic secret.
#[derive(Clone, Copy, Debug)]
pub struct Secret<'a> {
    labels: Labels,
    bytes: &'a [u8],
}

impl<'a> Secret<'a> {
    /// A DTLS 1.3 secret made with `hash`.
    pub fn new(hash: PrfHash, bytes: &'a [u8]) -> Self {
        Self {
            labels: Labels {
                hash,
                prefix: DTLS13_PREFIX,
            },
            bytes,
        }
    }

    fn expand(&self, label: &[u8], context: &[u8], len: usize) -> Vec<u8> {
        self.labels
            .expand(&self.labels.prk(self.bytes), label, context, len)
    }

    /// The record protection keys of a traffic secret: "key", "iv" (12 bytes) and "sn", the
    /// latter two as long as the AEAD key.
    pub fn traffic_keys(&self, key_len: usize) -> TrafficKeys {
        TrafficKeys {
            key: self.expand(b"key", &[], key_len),
            iv: self.expand(b"iv", &[], 12),
            sn: self.expand(b"sn", &[], key_len),
        }
    }

    /// The next generation of an application traffic secret, after a KeyUpdate (RFC 8446
    /// §7.2).
    pub fn next_generation(&self) -> Vec<u8> {
        self.expand(b"traffic upd", &[], self.labels.hash.len())
    }

    /// Finished's verify_data: HMAC(finished_key, transcript hash) with finished_key
    /// expanded from this (handshake traffic) secret (RFC 8446 §4.4.4).
    pub fn finished(&self, transcript_hash: &[u8]) -> Vec<u8> {
        let finished_key = self.expand(b"finished", &[], self.labels.hash.len());
        let algorithm = self.labels.hash.hmac();
        hmac::sign(&hmac::Key::new(algorithm, &finished_key), transcript_hash)
            .as_ref()
            .to_vec()
    }

    /// The PSK a ticket stands for, from the resumption master secret and the ticket's
    /// nonce (RFC 8446 §4.6.1).
    pub fn resumption_psk(&self, ticket_nonce: &[u8]) -> Vec<u8> {
        self.expand(b"resumption", ticket_nonce, self.labels.hash.len())
    }

    /// TLS-Exporter(label, context, length) from the exporter master secret (RFC 8446
    /// §7.5): the same function whether or not a context is given, as TLS 1.3 defines it.
    /// None for a label over 249 bytes or more output than HKDF gives (255 hash lengths).
    pub fn export(&self, label: &[u8], context: &[u8], len: usize) -> Option<Vec<u8>> {
        let labels = self.labels;
        let empty = labels.hash.hash(&[]);
        let per_label =
            labels.try_expand(&labels.prk(self.bytes), label, &empty, labels.hash.len())?;
        let context_hash = labels.hash.hash(context);
        labels.try_expand(&labels.prk(&per_label), b"exporter", &context_hash, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const TLS13: Labels = Labels {
        hash: PrfHash::Sha256,
        prefix: b"tls13 ",
    };

    /// HKDF-Expand-Label itself, against RFC 9001 §A.1 (QUIC's initial secrets use TLS 1.3's
    /// labels): only the prefix differs in DTLS 1.3.
    #[test]
    fn expand_label_matches_rfc_9001() {
        let initial = TLS13.extract(
            &hex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
            &hex("8394c8f03e515708"),
        );
        let client = TLS13.expand(&initial, b"client in", &[], 32);
        assert_eq!(
            client,
            hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        );
        let client = TLS13.prk(&client);
        assert_eq!(
            TLS13.expand(&client, b"quic key", &[], 16),
            hex("1f369613dd76d5467730efcbe3b1a22d")
        );
        assert_eq!(
            TLS13.expand(&client, b"quic iv", &[], 12),
            hex("fa044b2f42a3fd3b46fb255c")
        );
        assert_eq!(
            TLS13.expand(&client, b"quic hp", &[], 16),
            hex("9f50449e04a0e810283a1e9933adedd2")
        );
    }

    /// The stages chained as RFC 8448 §3 (a full handshake without PSK) shows them.
    #[test]
    fn stages_match_rfc_8448() {
        let early = EarlySecret::with_labels(TLS13, None);
        assert_eq!(
            TLS13.derived(&early.prk),
            hex("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
        );
        let handshake = early.into_handshake(&hex(
            "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d",
        ));
        let secrets = handshake.traffic_secrets(&hex(
            "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8",
        ));
        assert_eq!(
            secrets.client,
            hex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
        );
        assert_eq!(
            secrets.server,
            hex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
        );
        let server = Secret {
            labels: TLS13,
            bytes: &secrets.server,
        };
        let keys = server.traffic_keys(16);
        assert_eq!(keys.key, hex("3fce516009c21727d0f2e4e86ee403bc"));
        assert_eq!(keys.iv, hex("5d313eb2671276ee13000b30"));
    }

    /// The exact HkdfLabel bytes: DTLS 1.3's prefix is "dtls13", six bytes with no space
    /// (RFC 9147 §5.9), where TLS 1.3's is "tls13 ".
    #[test]
    fn hkdf_label_bytes_use_the_dtls13_prefix() {
        let labels = Labels {
            hash: PrfHash::Sha256,
            prefix: DTLS13_PREFIX,
        };
        let mut expected = vec![0x00, 0x10, 9];
        expected.extend_from_slice(b"dtls13key");
        expected.push(0);
        assert_eq!(labels.hkdf_label(b"key", &[], 16).unwrap(), expected);
        assert_eq!(labels.hkdf_label(&[b'x'; 250], &[], 16), None);
        assert_eq!(labels.hkdf_label(b"key", &[], 1 << 16), None);
    }

    #[test]
    fn exports_beyond_what_hkdf_gives_are_refused() {
        let secret = [9u8; 32];
        let exporter = Secret::new(PrfHash::Sha256, &secret);
        assert_eq!(
            exporter.export(b"EXPORTER-test", b"", 32).unwrap().len(),
            32
        );
        let most = 255 * 32;
        assert_eq!(
            exporter.export(b"EXPORTER-test", b"", most).unwrap().len(),
            most
        );
        assert_eq!(exporter.export(b"EXPORTER-test", b"", most + 1), None);
        assert_eq!(exporter.export(&[b'l'; 250], b"", 32), None);
        assert_ne!(
            exporter.export(b"EXPORTER-test", b"a", 32),
            exporter.export(b"EXPORTER-test", b"", 32)
        );
    }

    #[test]
    fn dtls_labels_differ_from_tls_labels() {
        let dtls = EarlySecret::new(PrfHash::Sha256, None);
        let tls = EarlySecret::with_labels(TLS13, None);
        assert_ne!(dtls.labels.derived(&dtls.prk), tls.labels.derived(&tls.prk));
        let secret = [7u8; 48];
        let keys = Secret::new(PrfHash::Sha384, &secret).traffic_keys(32);
        assert_eq!((keys.key.len(), keys.iv.len(), keys.sn.len()), (32, 12, 32));
        assert_ne!(keys.key, keys.sn);
        let next = Secret::new(PrfHash::Sha384, &secret).next_generation();
        assert_eq!(next.len(), 48);
        assert_ne!(next, secret);
    }
}
