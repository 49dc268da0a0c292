//! The engine's certificate verifier hooks, backed by [`ChainVerifier`], so that chains are
//! judged with OpenSSL's semantics (per-depth callback, verify modes) and the outcome is kept
//! for `get_verify_result` / `get_verified_chain`.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::OcspClientCallback;
use crate::constants::{VERIFY_FAIL_IF_NO_PEER_CERT, VERIFY_PEER};
use crate::ex_data::ExData;
use crate::verify::{certificate_error, ChainVerifier, VerifyOutcome};

/// One connection's verifier: the chain rules plus where to leave the outcome.
pub(crate) struct PeerVerifier {
    pub(crate) chain: ChainVerifier,
    pub(crate) ex_data: Arc<ExData>,
    pub(crate) outcome: Arc<Mutex<Option<VerifyOutcome>>>,
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
    /// CA names a server sends in its CertificateRequest.
    pub(crate) ca_names: Vec<DistinguishedName>,
    /// A client's judge of the stapled OCSP response (set when the client asked for one).
    pub(crate) ocsp_client: Option<OcspClientCallback>,
}

impl PeerVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let outcome = self
            .chain
            .verify(end_entity, intermediates, now, &self.ex_data);
        let verdict = if outcome.accepted {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(certificate_error(
                outcome.result,
            )))
        };
        *self.outcome.lock().expect("verify outcome lock") = Some(outcome);
        verdict
    }
}

impl std::fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerVerifier")
            .field("mode", &self.chain.mode)
            .finish()
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)?;
        if let Some(judge) = &self.ocsp_client {
            match judge(&self.ex_data, ocsp_response) {
                Ok(true) => {}
                Ok(false) => return Err(rustls::CertificateError::InvalidOcspResponse.into()),
                Err(e) => return Err(rustls::Error::General(format!("OCSP callback failed: {e}"))),
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        self.chain.mode & VERIFY_PEER != 0
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.mode & VERIFY_PEER != 0 && self.chain.mode & VERIFY_FAIL_IF_NO_PEER_CERT != 0
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.ca_names
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
