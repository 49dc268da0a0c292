//! GIO's decision on the peer's certificate, which TLS and DTLS connections share: the
//! engine's verify callback collects the chain; the connection's database judges it (with a
//! client's `server-identity`); `accept-certificate` then decides, a client's only when the
//! database found problems, a server's always (GIO's rule: a client certificate is accepted
//! only if a handler says so).

use std::sync::{Arc, Mutex};

use ferrossl::verify::VerifyCallback;
use ferrossl::X509;
use gio::prelude::*;

use crate::certificate::Certificate;

/// The settings of a TLS or DTLS connection that GIO judges the peer by.
#[derive(Clone)]
pub struct Judging {
    pub database: Option<gio::TlsDatabase>,
    pub interaction: Option<gio::TlsInteraction>,
    pub server_identity: Option<gio::SocketConnectable>,
    pub validation_flags: gio::TlsCertificateFlags,
}

impl Judging {
    /// GIO's defaults, with `database`.
    pub fn with(database: Option<gio::TlsDatabase>) -> Self {
        Self {
            database,
            interaction: None,
            server_identity: None,
            validation_flags: gio::TlsCertificateFlags::VALIDATE_ALL,
        }
    }
}

/// What the handshake learnt of the peer.
pub struct Peer {
    pub certificate: Option<gio::TlsCertificate>,
    pub errors: gio::TlsCertificateFlags,
}

impl Default for Peer {
    fn default() -> Self {
        Self {
            certificate: None,
            errors: gio::TlsCertificateFlags::empty(),
        }
    }
}

/// GIO's decision on the peer's `chain` (peer first): `judging`'s verdict, handed to `record`
/// (for `peer-certificate` and its errors), then `ask` (the accept-certificate signal, in the
/// right main context) unless GIO's rule accepts it without asking.
pub fn decide(
    chain: &[X509],
    judging: Judging,
    we_are_client: bool,
    record: impl FnOnce(Peer),
    ask: impl FnOnce(&gio::TlsCertificate, gio::TlsCertificateFlags) -> bool,
) -> bool {
    let Some(certificate) = Certificate::from_chain(chain) else {
        return false;
    };
    let errors = judge(
        &certificate,
        judging.database.as_ref(),
        judging.interaction.as_ref(),
        we_are_client,
        judging.server_identity.as_ref(),
    );
    record(Peer {
        certificate: Some(certificate.clone()),
        errors,
    });
    accepted_without_asking(we_are_client, errors, judging.validation_flags)
        || ask(&certificate, errors)
}

/// The engine's verify callback: collects the chain, top first, and at the peer's own
/// certificate asks `decide` about it (peer first).
pub fn chain_verifier(decide: impl Fn(&[X509]) -> bool + Send + Sync + 'static) -> VerifyCallback {
    let collected = Arc::new(Mutex::new(Vec::new()));
    Arc::new(move |params| {
        let mut chain = collected.lock().unwrap_or_else(|e| e.into_inner());
        chain.push(params.cert.clone());
        if params.depth > 0 {
            return true;
        }
        let presented: Vec<X509> = chain.drain(..).rev().collect();
        drop(chain);
        decide(&presented)
    })
}

/// GIO's verdict on the peer's `certificate`: `database`'s `verify_chain` (every problem at
/// once; without a database, UNKNOWN_CA and the certificate's own problems), for the purpose
/// of the peer's role. A client checks `server_identity`; one that names no server cannot have
/// checked it is talking to the right one (BAD_IDENTITY).
fn judge(
    certificate: &gio::TlsCertificate,
    database: Option<&gio::TlsDatabase>,
    interaction: Option<&gio::TlsInteraction>,
    we_are_client: bool,
    server_identity: Option<&gio::SocketConnectable>,
) -> gio::TlsCertificateFlags {
    let (purpose, identity) = if we_are_client {
        (
            gio::TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER,
            server_identity,
        )
    } else {
        (gio::TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT, None)
    };
    let mut errors = match database {
        Some(db) => db
            .verify_chain(
                certificate,
                purpose,
                identity,
                interaction,
                gio::TlsDatabaseVerifyFlags::NONE,
                gio::Cancellable::NONE,
            )
            .unwrap_or(gio::TlsCertificateFlags::GENERIC_ERROR),
        None => {
            gio::TlsCertificateFlags::UNKNOWN_CA
                | certificate.verify(identity, None::<&gio::TlsCertificate>)
        }
    };
    if we_are_client && identity.is_none() {
        errors |= gio::TlsCertificateFlags::BAD_IDENTITY;
    }
    errors
}

/// Whether GIO accepts the peer's certificate without asking `accept-certificate`: only a
/// client, and only when the verdict found none of the problems its (deprecated)
/// `validation-flags` name, as glib-networking decides (all of them by default).
fn accepted_without_asking(
    we_are_client: bool,
    errors: gio::TlsCertificateFlags,
    validation_flags: gio::TlsCertificateFlags,
) -> bool {
    we_are_client && (errors & validation_flags).is_empty()
}
