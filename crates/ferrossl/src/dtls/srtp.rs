//! SRTP protection profiles negotiated by use_srtp (RFC 5764 §4.1.2, RFC 7714 §14.2), with
//! OpenSSL's names.

use crate::error::{Error, Result};

/// An SRTP protection profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (0x0001).
    Aes128CmSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 (0x0002).
    Aes128CmSha1_32,
    /// SRTP_AEAD_AES_128_GCM (0x0007).
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM (0x0008).
    AeadAes256Gcm,
}

const ALL: [SrtpProfile; 4] = [
    SrtpProfile::Aes128CmSha1_80,
    SrtpProfile::Aes128CmSha1_32,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AeadAes256Gcm,
];

impl SrtpProfile {
    /// The IANA identifier.
    pub fn id(self) -> u16 {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 0x0001,
            SrtpProfile::Aes128CmSha1_32 => 0x0002,
            SrtpProfile::AeadAes128Gcm => 0x0007,
            SrtpProfile::AeadAes256Gcm => 0x0008,
        }
    }

    /// OpenSSL's name, as `get_selected_srtp_profile` returns it.
    pub fn name(self) -> &'static str {
        match self {
            SrtpProfile::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
            SrtpProfile::Aes128CmSha1_32 => "SRTP_AES128_CM_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// The profile with this identifier.
    pub fn from_id(id: u16) -> Option<Self> {
        ALL.into_iter().find(|p| p.id() == id)
    }

    /// Bytes of keying material the profile needs from "EXTRACTOR-dtls_srtp": two master keys
    /// and two master salts (RFC 5764 §4.2).
    pub fn keying_material_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmSha1_80 | SrtpProfile::Aes128CmSha1_32 => 2 * (16 + 14),
            SrtpProfile::AeadAes128Gcm => 2 * (16 + 12),
            SrtpProfile::AeadAes256Gcm => 2 * (32 + 12),
        }
    }

    /// Parses `set_tlsext_use_srtp`'s colon-separated list, e.g.
    /// `SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32`.
    pub fn parse_list(list: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for name in list.split(':') {
            let p = ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| Error::InvalidArgument(format!("unknown SRTP profile {name:?}")))?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lists() {
        let list = SrtpProfile::parse_list("SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM").unwrap();
        assert_eq!(
            list,
            [SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes256Gcm]
        );
        assert_eq!(SrtpProfile::from_id(1), Some(SrtpProfile::Aes128CmSha1_80));
        assert_eq!(SrtpProfile::Aes128CmSha1_80.keying_material_len(), 60);
        assert!(SrtpProfile::parse_list("SRTP_BOGUS").is_err());
        assert!(SrtpProfile::parse_list("").is_err());
    }
}
