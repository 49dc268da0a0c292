//! GIO's `TlsCertificateFlags`: the problems found with a peer certificate.

use std::ops::{BitAnd, BitOr, BitOrAssign};

use crate::constants::*;

/// A set of certificate problems, with GIO's bit values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsCertificateFlags(pub u32);

impl TlsCertificateFlags {
    /// The signing certificate authority is not known.
    pub const UNKNOWN_CA: Self = Self(1 << 0);
    /// The certificate does not match the expected identity.
    pub const BAD_IDENTITY: Self = Self(1 << 1);
    /// The certificate's activation time is still in the future.
    pub const NOT_ACTIVATED: Self = Self(1 << 2);
    /// The certificate has expired.
    pub const EXPIRED: Self = Self(1 << 3);
    /// The certificate has been revoked.
    pub const REVOKED: Self = Self(1 << 4);
    /// The certificate's algorithm is considered insecure.
    pub const INSECURE: Self = Self(1 << 5);
    /// Some other error occurred validating the certificate.
    pub const GENERIC_ERROR: Self = Self(1 << 6);
    /// Every flag.
    pub const VALIDATE_ALL: Self = Self(0x7f);

    /// No problem found.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag for an `X509_V_ERR_*` code (none for `X509_V_OK`).
    pub fn from_verify_error(code: i32) -> Self {
        match code {
            X509_V_OK => Self::default(),
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
            | X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
            | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
            | X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
            | X509_V_ERR_CERT_UNTRUSTED => Self::UNKNOWN_CA,
            X509_V_ERR_HOSTNAME_MISMATCH | X509_V_ERR_IP_ADDRESS_MISMATCH => Self::BAD_IDENTITY,
            X509_V_ERR_CERT_NOT_YET_VALID => Self::NOT_ACTIVATED,
            X509_V_ERR_CERT_HAS_EXPIRED => Self::EXPIRED,
            X509_V_ERR_CERT_REVOKED => Self::REVOKED,
            X509_V_ERR_EE_KEY_TOO_SMALL
            | X509_V_ERR_CA_KEY_TOO_SMALL
            | X509_V_ERR_CA_MD_TOO_WEAK => Self::INSECURE,
            _ => Self::GENERIC_ERROR,
        }
    }
}

impl BitOr for TlsCertificateFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for TlsCertificateFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TlsCertificateFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}
