//! The TLS 1.2 key schedule as DTLS 1.2 uses it: the PRF (RFC 5246 §5) with the suite's hash,
//! the extended master secret (RFC 7627 §4), the key block (RFC 5246 §6.3), Finished
//! verify_data (§7.4.9) and the keying material exporter (RFC 5705 §4).

use aws_lc_rs::{digest, hmac};

use crate::ciphers::{CipherInfo, Encryption};

use super::codec::message::VERIFY_DATA_LEN;

/// The hash of a suite's PRF and handshake transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrfHash {
    /// SHA-256 (every suite but the AES-256-GCM ones).
    Sha256,
    /// SHA-384 (the `_SHA384` suites).
    Sha384,
}

impl PrfHash {
    /// The PRF hash of a TLS 1.2 suite.
    pub fn of(suite: &CipherInfo) -> Self {
        if suite.mac == "SHA384" {
            PrfHash::Sha384
        } else {
            PrfHash::Sha256
        }
    }

    pub(super) fn hmac(self) -> hmac::Algorithm {
        match self {
            PrfHash::Sha256 => hmac::HMAC_SHA256,
            PrfHash::Sha384 => hmac::HMAC_SHA384,
        }
    }

    /// Hashes `data` (the handshake transcript).
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            PrfHash::Sha256 => &digest::SHA256,
            PrfHash::Sha384 => &digest::SHA384,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// PRF(secret, label, seed) = P_hash(secret, label ‖ seed), filling `out` (RFC 5246 §5).
pub fn prf(hash: PrfHash, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hash.hmac(), secret);
    let full_seed: Vec<u8> = std::iter::once(label)
        .chain(seed.iter().copied())
        .flatten()
        .copied()
        .collect();
    // A(1) = HMAC(secret, seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = hmac::sign(&key, &full_seed);
    for chunk in out.chunks_mut(hash.hmac().digest_algorithm().output_len()) {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(&full_seed);
        let block = ctx.sign();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        a = hmac::sign(&key, a.as_ref());
    }
}

/// The traffic keys of both directions for an AEAD suite (RFC 5246 §6.3 with no MAC keys).
pub struct TrafficKeys {
    /// client_write_key.
    pub client_key: Vec<u8>,
    /// server_write_key.
    pub server_key: Vec<u8>,
    /// client_write_IV: the GCM salt (4 bytes) or the ChaCha20 IV (12 bytes).
    pub client_iv: Vec<u8>,
    /// server_write_IV.
    pub server_iv: Vec<u8>,
}

/// Labels RFC 5705 §4 and RFC 7627 reserve: an exporter must not reproduce the handshake's
/// own secrets.
const RESERVED_LABELS: [&[u8]; 5] = [
    b"client finished",
    b"server finished",
    b"master secret",
    b"key expansion",
    b"extended master secret",
];

/// The master secret of one association and the randoms that go with it.
#[derive(Clone)]
pub struct KeySchedule {
    hash: PrfHash,
    master: [u8; 48],
    client_random: [u8; 32],
    server_random: [u8; 32],
}

impl KeySchedule {
    /// master_secret = PRF(pre_master_secret, "extended master secret", session_hash)
    /// (RFC 7627 §4), where session_hash is the transcript hash through ClientKeyExchange.
    pub fn extended(
        hash: PrfHash,
        pre_master: &[u8],
        session_hash: &[u8],
        client_random: [u8; 32],
        server_random: [u8; 32],
    ) -> Self {
        let mut master = [0u8; 48];
        prf(
            hash,
            pre_master,
            b"extended master secret",
            &[session_hash],
            &mut master,
        );
        Self {
            hash,
            master,
            client_random,
            server_random,
        }
    }

    /// A resumed session's schedule: its master secret with the new randoms (RFC 5246 §7.3).
    pub fn resumed(
        hash: PrfHash,
        master: [u8; 48],
        client_random: [u8; 32],
        server_random: [u8; 32],
    ) -> Self {
        Self {
            hash,
            master,
            client_random,
            server_random,
        }
    }

    /// The PRF hash.
    pub fn hash(&self) -> PrfHash {
        self.hash
    }

    /// The 48-byte master secret.
    pub fn master_secret(&self) -> &[u8; 48] {
        &self.master
    }

    /// Finished.verify_data = PRF(master_secret, finished_label, Hash(handshake_messages)).
    pub fn verify_data(&self, client: bool, handshake_hash: &[u8]) -> [u8; VERIFY_DATA_LEN] {
        let label: &[u8] = if client {
            b"client finished"
        } else {
            b"server finished"
        };
        let mut out = [0u8; VERIFY_DATA_LEN];
        prf(self.hash, &self.master, label, &[handshake_hash], &mut out);
        out
    }

    /// The key block split into keys and IVs for `enc` (RFC 5288 §3, RFC 7905 §2).
    pub fn traffic_keys(&self, enc: Encryption) -> TrafficKeys {
        let (key_len, iv_len) = match enc {
            Encryption::Aes128Gcm => (16, 4),
            Encryption::Aes256Gcm => (32, 4),
            Encryption::Chacha20Poly1305 => (32, 12),
        };
        let mut block = vec![0u8; 2 * (key_len + iv_len)];
        prf(
            self.hash,
            &self.master,
            b"key expansion",
            &[&self.server_random, &self.client_random],
            &mut block,
        );
        let (client_key, rest) = block.split_at(key_len);
        let (server_key, rest) = rest.split_at(key_len);
        let (client_iv, server_iv) = rest.split_at(iv_len);
        TrafficKeys {
            client_key: client_key.to_vec(),
            server_key: server_key.to_vec(),
            client_iv: client_iv.to_vec(),
            server_iv: server_iv.to_vec(),
        }
    }

    /// RFC 5705 keying material: PRF(master_secret, label, client_random ‖ server_random
    /// [‖ context_length ‖ context]). `None` and an empty context differ, as the RFC says.
    pub fn export(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, crate::Error> {
        if RESERVED_LABELS.contains(&label) {
            return Err(crate::Error::InvalidArgument(format!(
                "exporter label {:?} is reserved (RFC 5705 §4)",
                String::from_utf8_lossy(label)
            )));
        }
        let context_len;
        let mut seed: Vec<&[u8]> = vec![&self.client_random, &self.server_random];
        if let Some(context) = context {
            let n = u16::try_from(context.len()).map_err(|_| {
                crate::Error::InvalidArgument("exporter context longer than 65535 bytes".into())
            })?;
            context_len = n.to_be_bytes();
            seed.push(&context_len);
            seed.push(context);
        }
        let mut out = vec![0u8; len];
        prf(self.hash, &self.master, label, &seed, &mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Expected values from `openssl kdf ... TLS1-PRF` (OpenSSL 3.0).
    #[test]
    fn prf_matches_openssl() {
        let mut out = vec![0u8; 100];
        prf(
            PrfHash::Sha256,
            &unhex("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &[&unhex("a0ba9f936cda311827a6f796ffd5198c")],
            &mut out,
        );
        assert_eq!(
            out,
            unhex(
                "E3F229BA727BE17B8D122620557CD453C2AAB21D07C3D495329B52D4E61EDB5A6B301791E90D35C9\
                 C9A46B4E14BAF9AF0FA022F7077DEF17ABFD3797C0564BAB4FBC91666E9DEF9B97FCE34F796789BA\
                 A48082D122EE42C5A72E5A5110FFF70187347B66"
            )
        );
        let mut out = vec![0u8; 48];
        prf(
            PrfHash::Sha384,
            &unhex("b80b733d6ceefcdc71566ea48e5567df"),
            b"test label",
            &[&unhex("cd665cf6a8447dd6ff8b27555edb7465")],
            &mut out,
        );
        assert_eq!(
            out,
            unhex(
                "7B0C18E9CED410ED1804F2CFA34A336A1C14DFFB4900BB5FD7942107E81C83CD\
                 E9CA0FAA60BE9FE34F82B1233C9146A0"
            )
        );
    }

    #[test]
    fn key_block_exporter_and_finished() {
        let ks = KeySchedule::extended(PrfHash::Sha256, &[1; 32], &[2; 32], [3; 32], [4; 32]);
        let keys = ks.traffic_keys(Encryption::Chacha20Poly1305);
        assert_eq!((keys.client_key.len(), keys.client_iv.len()), (32, 12));
        assert_ne!(keys.client_key, keys.server_key);
        let gcm = ks.traffic_keys(Encryption::Aes128Gcm);
        assert_eq!((gcm.server_key.len(), gcm.server_iv.len()), (16, 4));
        // The key block is one PRF stream: the first 16 bytes agree whatever the suite.
        assert_eq!(gcm.client_key, keys.client_key[..16]);
        assert_ne!(
            ks.verify_data(true, &[0; 32]),
            ks.verify_data(false, &[0; 32])
        );
        let none = ks.export(b"EXPERIMENTAL-x", None, 20).unwrap();
        let empty = ks.export(b"EXPERIMENTAL-x", Some(b""), 20).unwrap();
        assert_ne!(none, empty, "no context differs from an empty one");
        assert!(ks.export(b"key expansion", None, 20).is_err());
    }
}
