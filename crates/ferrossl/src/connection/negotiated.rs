//! What both engines can tell about a session, so the connection's introspection calls serve
//! TLS and DTLS alike.

use crate::ciphers::CipherInfo;
use crate::config::Role;
use crate::dtls::{dtls_version_name, DtlsEngine};
use crate::error::Result;
use crate::tls::TlsEngine;
use crate::verify::VerifyOutcome;
use crate::x509::{X509Name, X509};

pub(super) trait Negotiated {
    fn handshaking(&self) -> bool;
    fn role(&self) -> Role;
    fn cipher(&self) -> Option<&'static CipherInfo>;
    /// The version as (wire value, OpenSSL's name).
    fn version(&self) -> Option<(i32, &'static str)>;
    fn peer_chain(&self) -> Vec<X509>;
    fn verify_outcome(&self) -> Option<VerifyOutcome>;
    fn client_random(&self) -> Option<[u8; 32]>;
    fn server_random(&self) -> Option<[u8; 32]>;
    fn master_key(&self) -> Option<Vec<u8>>;
    fn alpn(&self) -> Option<Vec<u8>>;
    fn export(&self, label: &[u8], len: usize, context: Option<&[u8]>) -> Result<Vec<u8>>;
    fn server_name(&self) -> Option<String>;
    fn group(&self) -> Option<String>;
    fn ca_names(&self) -> Option<Vec<X509Name>>;
    fn session_reused(&self) -> bool;
}

impl Negotiated for TlsEngine {
    fn handshaking(&self) -> bool {
        self.is_handshaking()
    }
    fn role(&self) -> Role {
        TlsEngine::role(self)
    }
    fn cipher(&self) -> Option<&'static CipherInfo> {
        TlsEngine::cipher(self)
    }
    fn version(&self) -> Option<(i32, &'static str)> {
        TlsEngine::version(self).map(|v| (v.wire(), v.name()))
    }
    fn peer_chain(&self) -> Vec<X509> {
        TlsEngine::peer_chain(self)
    }
    fn verify_outcome(&self) -> Option<VerifyOutcome> {
        TlsEngine::verify_outcome(self)
    }
    fn client_random(&self) -> Option<[u8; 32]> {
        TlsEngine::client_random(self)
    }
    fn server_random(&self) -> Option<[u8; 32]> {
        TlsEngine::server_random(self)
    }
    fn master_key(&self) -> Option<Vec<u8>> {
        TlsEngine::master_key(self)
    }
    fn alpn(&self) -> Option<Vec<u8>> {
        self.alpn_protocol().map(<[u8]>::to_vec)
    }
    fn export(&self, label: &[u8], len: usize, context: Option<&[u8]>) -> Result<Vec<u8>> {
        self.export_keying_material(label, len, context)
    }
    fn server_name(&self) -> Option<String> {
        TlsEngine::server_name(self)
    }
    fn group(&self) -> Option<String> {
        TlsEngine::group(self)
    }
    fn ca_names(&self) -> Option<Vec<X509Name>> {
        self.received_ca_names()
    }
    fn session_reused(&self) -> bool {
        TlsEngine::session_reused(self)
    }
}

impl Negotiated for DtlsEngine {
    fn handshaking(&self) -> bool {
        !self.is_established()
    }
    fn role(&self) -> Role {
        DtlsEngine::role(self)
    }
    fn cipher(&self) -> Option<&'static CipherInfo> {
        DtlsEngine::cipher(self)
    }
    fn version(&self) -> Option<(i32, &'static str)> {
        self.protocol_version().map(|v| (v, dtls_version_name(v)))
    }
    fn peer_chain(&self) -> Vec<X509> {
        self.peer_certificates().to_vec()
    }
    fn verify_outcome(&self) -> Option<VerifyOutcome> {
        DtlsEngine::verify_outcome(self).cloned()
    }
    fn client_random(&self) -> Option<[u8; 32]> {
        DtlsEngine::client_random(self)
    }
    fn server_random(&self) -> Option<[u8; 32]> {
        DtlsEngine::server_random(self)
    }
    fn master_key(&self) -> Option<Vec<u8>> {
        self.master_secret().map(|m| m.to_vec())
    }
    fn alpn(&self) -> Option<Vec<u8>> {
        self.alpn_protocol().map(<[u8]>::to_vec)
    }
    fn export(&self, label: &[u8], len: usize, context: Option<&[u8]>) -> Result<Vec<u8>> {
        self.export_keying_material(label, len, context)
    }
    fn server_name(&self) -> Option<String> {
        DtlsEngine::server_name(self).map(str::to_string)
    }
    fn group(&self) -> Option<String> {
        DtlsEngine::group(self).map(|g| format!("{g:?}"))
    }
    fn ca_names(&self) -> Option<Vec<X509Name>> {
        self.client_ca_names().map(<[X509Name]>::to_vec)
    }
    fn session_reused(&self) -> bool {
        DtlsEngine::session_reused(self)
    }
}
