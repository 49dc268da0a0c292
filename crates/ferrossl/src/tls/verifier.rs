//! The engine's certificate verifier hooks, backed by [`ChainVerifier`], so that chains are
//! judged with OpenSSL's semantics (per-depth callback, verify modes) and the outcome is kept
//! for `get_verify_result` / `get_verified_chain`.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

use crate::config::{ClientCertCallback, OcspClientCallback};
use crate::constants::{VERIFY_FAIL_IF_NO_PEER_CERT, VERIFY_PEER};
use crate::ex_data::ExData;
use crate::verify::{certificate_error, ChainVerifier, VerifyOutcome};
use crate::x509::{X509Name, X509};

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

impl PeerVerifier {
    /// A server's chain as a client sees it (reached through the shared client hooks), then
    /// the stapled OCSP response when the client asked for one.
    fn verify_server(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
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

/// What the client hooks act on for the connection being processed on this thread.
pub(crate) struct ClientScope {
    pub(crate) verifier: Arc<PeerVerifier>,
    pub(crate) identity: Arc<ClientIdentity>,
}

thread_local! {
    static CLIENT_SCOPE: std::cell::RefCell<Option<Arc<ClientScope>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (engine processing) with `scope` as the connection the client hooks act on.
///
/// The engine resumes a session only under the very verifier and certificate resolver objects
/// that made it, so every client shares the two [`client_hooks`]; the per-connection parts
/// (settings, callbacks, where results go) reach them through this scope. The engine calls the
/// hooks synchronously from packet processing, on the calling thread.
pub(crate) fn with_client_scope<R>(scope: &Arc<ClientScope>, f: impl FnOnce() -> R) -> R {
    let previous = CLIENT_SCOPE.with(|s| s.replace(Some(scope.clone())));
    let result = f();
    CLIENT_SCOPE.with(|s| *s.borrow_mut() = previous);
    result
}

fn current_scope() -> Option<Arc<ClientScope>> {
    CLIENT_SCOPE.with(|s| s.borrow().clone())
}

/// The verifier and certificate resolver every client connection shares.
pub(crate) fn client_hooks() -> (Arc<dyn ServerCertVerifier>, Arc<dyn ResolvesClientCert>) {
    static HOOKS: std::sync::OnceLock<(Arc<dyn ServerCertVerifier>, Arc<dyn ResolvesClientCert>)> =
        std::sync::OnceLock::new();
    HOOKS
        .get_or_init(|| (Arc::new(ClientHooks), Arc::new(ClientHooks)))
        .clone()
}

#[derive(Debug)]
struct ClientHooks;

fn no_scope() -> rustls::Error {
    rustls::Error::General("certificate check outside connection processing".into())
}

impl ServerCertVerifier for ClientHooks {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked by the chain verifier, per OpenSSL's opt-in rules.
        let scope = current_scope().ok_or_else(no_scope)?;
        scope
            .verifier
            .verify_server(end_entity, intermediates, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The signature algorithms of the connection being processed, or the provider's defaults.
fn algorithms() -> WebPkiSupportedAlgorithms {
    match current_scope() {
        Some(scope) => scope.verifier.algorithms,
        None => super::default_provider().signature_verification_algorithms,
    }
}

impl ResolvesClientCert for ClientHooks {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        current_scope()?
            .identity
            .resolve(root_hint_subjects, schemes)
    }

    fn has_certs(&self) -> bool {
        // Asked while the ClientHello is built, outside any scope: answering false would make
        // the engine drop the transcript that client authentication needs later.
        true
    }
}

/// A client's certificate choice: the configured one, else the certificate callback's; also
/// records the CA names the server asked for.
pub(crate) struct ClientIdentity {
    pub(crate) key: Option<Arc<CertifiedKey>>,
    pub(crate) callback: Option<ClientCertCallback>,
    pub(crate) ca_names: Arc<Mutex<Option<Vec<X509Name>>>>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("key", &self.key)
            .field("callback", &self.callback.is_some())
            .finish_non_exhaustive()
    }
}

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let names: Vec<X509Name> = root_hint_subjects
            .iter()
            .filter_map(|n| X509Name::from_der(n).ok())
            .collect();
        *self.ca_names.lock().expect("ca names lock") = Some(names.clone());
        if self.key.is_some() {
            return self.key.clone();
        }
        let (chain, key) = (self.callback.as_ref()?)(&names)?;
        key.matches(chain.first()?).ok()?;
        let ders = chain.iter().map(X509::to_cert_der).collect();
        Some(Arc::new(CertifiedKey::new(ders, key.signing_key())))
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}
