//! The peer's certificate: collected by the engine's verify callback, judged by GIO's rules
//! (the connection's database, a client's `server-identity`), and decided by the
//! `accept-certificate` signal in the right main context: a client's when that finds problems,
//! a server's always (GIO's rule: a client certificate is accepted only if a handler says so).

use std::sync::{Arc, Mutex};

use ferrossl::verify::VerifyCallback;
use ferrossl::X509;
use gio::prelude::*;

use super::{common_of, Common, Role};
use crate::certificate::Certificate;
use crate::shared::Shared;

impl Common {
    /// GIO's decision on the peer's chain: the database's verdict, then the accept-certificate
    /// signal (a client's only if the verdict found problems).
    fn accept_peer(&self, conn: &gio::TlsConnection, role: Role, chain: &[X509]) -> bool {
        let Some(certificate) = Certificate::from_chain(chain) else {
            return false;
        };
        let (database, identity, interaction) = {
            let s = self.settings();
            let identity = (role == Role::Client)
                .then(|| s.server_identity.clone())
                .flatten();
            (s.database.clone(), identity, s.interaction.clone())
        };
        let purpose = match role {
            Role::Client => gio::TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER,
            Role::Server => gio::TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT,
        };
        let mut errors = match &database {
            Some(db) => db
                .verify_chain(
                    &certificate,
                    purpose,
                    identity.as_ref(),
                    interaction.as_ref(),
                    gio::TlsDatabaseVerifyFlags::NONE,
                    gio::Cancellable::NONE,
                )
                .unwrap_or(gio::TlsCertificateFlags::GENERIC_ERROR),
            None => {
                gio::TlsCertificateFlags::UNKNOWN_CA
                    | certificate.verify(identity.as_ref(), None::<&gio::TlsCertificate>)
            }
        };
        // A client that names no server cannot have checked it is talking to the right one.
        if role == Role::Client && identity.is_none() {
            errors |= gio::TlsCertificateFlags::BAD_IDENTITY;
        }
        {
            let mut peer = self.peer();
            peer.certificate = Some(certificate.clone());
            peer.errors = errors;
        }
        // A client accepts a server's chain without problems; a server asks the signal about
        // every client certificate, as GIO documents (it is accepted only if a handler says so).
        (role == Role::Client && errors.is_empty())
            || self
                .caller
                .emit_accept(conn.upcast_ref(), &certificate, errors)
    }
}

/// The engine's verify callback: collects the chain, top first, and lets GIO decide at the
/// peer's own certificate.
pub(super) fn verifier(conn: &gio::TlsConnection) -> VerifyCallback {
    let connection = Shared(conn.downgrade());
    let collected = Arc::new(Mutex::new(Vec::new()));
    Arc::new(move |params| {
        let mut chain = collected.lock().unwrap_or_else(|e| e.into_inner());
        chain.push(params.cert.clone());
        if params.depth > 0 {
            return true;
        }
        let presented: Vec<X509> = chain.drain(..).rev().collect();
        drop(chain);
        // The callback runs inside the handshake this connection object started.
        let connection = &connection;
        let Some(conn) = connection.0.upgrade() else {
            return false;
        };
        common_of(&conn).is_some_and(|(common, role)| common.accept_peer(&conn, role, &presented))
    })
}
