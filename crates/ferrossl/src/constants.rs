//! OpenSSL's numeric constants, with OpenSSL 3's values, so that code ported from OpenSSL or
//! pyOpenSSL can pass the same numbers.
//!
//! Options that ferrossl honours are named in [`crate::context::Context::set_options`]; the rest
//! are accepted and kept in the bitmask, since OpenSSL also treats most of them as no-ops today.

#![allow(missing_docs)]
// The names are OpenSSL's, mixed case included (OP_NO_TLSv1_2), so ported code reads the same.
#![allow(non_upper_case_globals)]

// Options (SSL_OP_*). Bits that OpenSSL 3 defines as 0 keep that value.
pub const OP_NO_SSLv2: u64 = 0;
pub const OP_MICROSOFT_SESS_ID_BUG: u64 = 0;
pub const OP_NETSCAPE_CHALLENGE_BUG: u64 = 0;
pub const OP_NETSCAPE_REUSE_CIPHER_CHANGE_BUG: u64 = 0;
pub const OP_SSLREF2_REUSE_CERT_TYPE_BUG: u64 = 0;
pub const OP_MICROSOFT_BIG_SSLV3_BUFFER: u64 = 0;
pub const OP_MSIE_SSLV2_RSA_PADDING: u64 = 0;
pub const OP_SSLEAY_080_CLIENT_DH_BUG: u64 = 0;
pub const OP_TLS_D5_BUG: u64 = 0;
pub const OP_TLS_BLOCK_PADDING_BUG: u64 = 0;
pub const OP_SINGLE_DH_USE: u64 = 0;
pub const OP_SINGLE_ECDH_USE: u64 = 0;
pub const OP_EPHEMERAL_RSA: u64 = 0;
pub const OP_PKCS1_CHECK_1: u64 = 0;
pub const OP_PKCS1_CHECK_2: u64 = 0;
pub const OP_NETSCAPE_CA_DN_BUG: u64 = 0;
pub const OP_NETSCAPE_DEMO_CIPHER_CHANGE_BUG: u64 = 0;
pub const OP_CLEANSE_PLAINTEXT: u64 = 1 << 1;
pub const OP_LEGACY_SERVER_CONNECT: u64 = 1 << 2;
pub const OP_ENABLE_KTLS: u64 = 1 << 3;
pub const OP_TLSEXT_PADDING: u64 = 1 << 4;
pub const OP_SAFARI_ECDHE_ECDSA_BUG: u64 = 1 << 6;
pub const OP_IGNORE_UNEXPECTED_EOF: u64 = 1 << 7;
pub const OP_ALLOW_CLIENT_RENEGOTIATION: u64 = 1 << 8;
pub const OP_DISABLE_TLSEXT_CA_NAMES: u64 = 1 << 9;
pub const OP_ALLOW_NO_DHE_KEX: u64 = 1 << 10;
pub const OP_DONT_INSERT_EMPTY_FRAGMENTS: u64 = 1 << 11;
pub const OP_NO_QUERY_MTU: u64 = 1 << 12;
pub const OP_COOKIE_EXCHANGE: u64 = 1 << 13;
pub const OP_NO_TICKET: u64 = 1 << 14;
pub const OP_CISCO_ANYCONNECT: u64 = 1 << 15;
pub const OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION: u64 = 1 << 16;
pub const OP_NO_COMPRESSION: u64 = 1 << 17;
pub const OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION: u64 = 1 << 18;
pub const OP_NO_ENCRYPT_THEN_MAC: u64 = 1 << 19;
pub const OP_ENABLE_MIDDLEBOX_COMPAT: u64 = 1 << 20;
pub const OP_PRIORITIZE_CHACHA: u64 = 1 << 21;
pub const OP_CIPHER_SERVER_PREFERENCE: u64 = 1 << 22;
pub const OP_TLS_ROLLBACK_BUG: u64 = 1 << 23;
pub const OP_NO_ANTI_REPLAY: u64 = 1 << 24;
pub const OP_NO_SSLv3: u64 = 1 << 25;
pub const OP_NO_TLSv1: u64 = 1 << 26;
pub const OP_NO_TLSv1_2: u64 = 1 << 27;
pub const OP_NO_TLSv1_1: u64 = 1 << 28;
pub const OP_NO_TLSv1_3: u64 = 1 << 29;
pub const OP_NO_DTLSv1: u64 = 1 << 26;
pub const OP_NO_DTLSv1_2: u64 = 1 << 27;
pub const OP_NO_RENEGOTIATION: u64 = 1 << 30;
pub const OP_CRYPTOPRO_TLSEXT_BUG: u64 = 1 << 31;
pub const OP_ALL: u64 = OP_CRYPTOPRO_TLSEXT_BUG
    | OP_DONT_INSERT_EMPTY_FRAGMENTS
    | OP_TLSEXT_PADDING
    | OP_SAFARI_ECDHE_ECDSA_BUG;

// Modes (SSL_MODE_*).
pub const MODE_ENABLE_PARTIAL_WRITE: u64 = 0x1;
pub const MODE_ACCEPT_MOVING_WRITE_BUFFER: u64 = 0x2;
pub const MODE_AUTO_RETRY: u64 = 0x4;
pub const MODE_NO_AUTO_CHAIN: u64 = 0x8;
pub const MODE_RELEASE_BUFFERS: u64 = 0x10;
pub const MODE_SEND_FALLBACK_SCSV: u64 = 0x80;
pub const MODE_ASYNC: u64 = 0x100;

// Verification modes (SSL_VERIFY_*).
pub const VERIFY_NONE: i32 = 0x00;
pub const VERIFY_PEER: i32 = 0x01;
pub const VERIFY_FAIL_IF_NO_PEER_CERT: i32 = 0x02;
pub const VERIFY_CLIENT_ONCE: i32 = 0x04;
pub const VERIFY_POST_HANDSHAKE: i32 = 0x08;

// Session cache modes (SSL_SESS_CACHE_*).
pub const SESS_CACHE_OFF: i64 = 0x0;
pub const SESS_CACHE_CLIENT: i64 = 0x1;
pub const SESS_CACHE_SERVER: i64 = 0x2;
pub const SESS_CACHE_BOTH: i64 = SESS_CACHE_CLIENT | SESS_CACHE_SERVER;
pub const SESS_CACHE_NO_AUTO_CLEAR: i64 = 0x80;
pub const SESS_CACHE_NO_INTERNAL_LOOKUP: i64 = 0x100;
pub const SESS_CACHE_NO_INTERNAL_STORE: i64 = 0x200;
pub const SESS_CACHE_NO_INTERNAL: i64 =
    SESS_CACHE_NO_INTERNAL_LOOKUP | SESS_CACHE_NO_INTERNAL_STORE;

// Encodings (SSL_FILETYPE_*).
pub const FILETYPE_PEM: i32 = 1;
pub const FILETYPE_ASN1: i32 = 2;

// SSL_get_error results.
pub const SSL_ERROR_NONE: i32 = 0;
pub const SSL_ERROR_SSL: i32 = 1;
pub const SSL_ERROR_WANT_READ: i32 = 2;
pub const SSL_ERROR_WANT_WRITE: i32 = 3;
pub const SSL_ERROR_WANT_X509_LOOKUP: i32 = 4;
pub const SSL_ERROR_SYSCALL: i32 = 5;
pub const SSL_ERROR_ZERO_RETURN: i32 = 6;
pub const SSL_ERROR_WANT_CONNECT: i32 = 7;
pub const SSL_ERROR_WANT_ACCEPT: i32 = 8;

// Shutdown state (SSL_get_shutdown).
pub const SSL_SENT_SHUTDOWN: i32 = 1;
pub const SSL_RECEIVED_SHUTDOWN: i32 = 2;

// Info callback points (SSL_CB_*) and handshake state bits (SSL_ST_*).
pub const SSL_ST_CONNECT: i32 = 0x1000;
pub const SSL_ST_ACCEPT: i32 = 0x2000;
pub const SSL_ST_MASK: i32 = 0x0FFF;
pub const SSL_CB_LOOP: i32 = 0x01;
pub const SSL_CB_EXIT: i32 = 0x02;
pub const SSL_CB_READ: i32 = 0x04;
pub const SSL_CB_WRITE: i32 = 0x08;
pub const SSL_CB_ALERT: i32 = 0x4000;
pub const SSL_CB_READ_ALERT: i32 = SSL_CB_ALERT | SSL_CB_READ;
pub const SSL_CB_WRITE_ALERT: i32 = SSL_CB_ALERT | SSL_CB_WRITE;
pub const SSL_CB_ACCEPT_LOOP: i32 = SSL_ST_ACCEPT | SSL_CB_LOOP;
pub const SSL_CB_ACCEPT_EXIT: i32 = SSL_ST_ACCEPT | SSL_CB_EXIT;
pub const SSL_CB_CONNECT_LOOP: i32 = SSL_ST_CONNECT | SSL_CB_LOOP;
pub const SSL_CB_CONNECT_EXIT: i32 = SSL_ST_CONNECT | SSL_CB_EXIT;
pub const SSL_CB_HANDSHAKE_START: i32 = 0x10;
pub const SSL_CB_HANDSHAKE_DONE: i32 = 0x20;

// Protocol versions, as on the wire.
pub const SSL3_VERSION: i32 = 0x0300;
pub const TLS1_VERSION: i32 = 0x0301;
pub const TLS1_1_VERSION: i32 = 0x0302;
pub const TLS1_2_VERSION: i32 = 0x0303;
pub const TLS1_3_VERSION: i32 = 0x0304;
pub const DTLS1_VERSION: i32 = 0xFEFF;
pub const DTLS1_2_VERSION: i32 = 0xFEFD;
pub const DTLS1_3_VERSION: i32 = 0xFEFC;

// X509 verification results (X509_V_*), as passed to the verify callback.
pub const X509_V_OK: i32 = 0;
pub const X509_V_ERR_UNSPECIFIED: i32 = 1;
pub const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
pub const X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: i32 = 6;
pub const X509_V_ERR_CERT_SIGNATURE_FAILURE: i32 = 7;
pub const X509_V_ERR_CERT_NOT_YET_VALID: i32 = 9;
pub const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;
pub const X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD: i32 = 13;
pub const X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD: i32 = 14;
pub const X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
pub const X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
pub const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
pub const X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
pub const X509_V_ERR_CERT_CHAIN_TOO_LONG: i32 = 22;
pub const X509_V_ERR_CERT_REVOKED: i32 = 23;
pub const X509_V_ERR_NO_ISSUER_PUBLIC_KEY: i32 = 24;
pub const X509_V_ERR_PATH_LENGTH_EXCEEDED: i32 = 25;
pub const X509_V_ERR_INVALID_PURPOSE: i32 = 26;
pub const X509_V_ERR_CERT_UNTRUSTED: i32 = 27;
pub const X509_V_ERR_CERT_REJECTED: i32 = 28;
pub const X509_V_ERR_INVALID_EXTENSION: i32 = 41;
pub const X509_V_ERR_PERMITTED_VIOLATION: i32 = 47;
pub const X509_V_ERR_EXCLUDED_VIOLATION: i32 = 48;
pub const X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX: i32 = 51;
pub const X509_V_ERR_HOSTNAME_MISMATCH: i32 = 62;
pub const X509_V_ERR_IP_ADDRESS_MISMATCH: i32 = 64;
pub const X509_V_ERR_EE_KEY_TOO_SMALL: i32 = 66;
pub const X509_V_ERR_CA_KEY_TOO_SMALL: i32 = 67;
pub const X509_V_ERR_CA_MD_TOO_WEAK: i32 = 68;
/// OpenSSL 3's code (1.1.1 used 24, now `X509_V_ERR_NO_ISSUER_PUBLIC_KEY`).
pub const X509_V_ERR_INVALID_CA: i32 = 79;
