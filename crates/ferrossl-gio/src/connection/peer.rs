//! The peer's certificate: collected by the engine's verify callback, judged by GIO's rules
//! (the connection's database, a client's `server-identity`), and decided by the
//! `accept-certificate` signal in the right main context (see `crate::verdict`).

use ferrossl::verify::VerifyCallback;
use ferrossl::X509;
use gio::prelude::*;

use super::{common_of, Common, Role};
use crate::shared::Shared;
use crate::verdict::{chain_verifier, decide};

impl Common {
    /// GIO's decision on the peer's chain: the database's verdict, then the accept-certificate
    /// signal (a client's only if the verdict found problems it validates).
    fn accept_peer(&self, conn: &gio::TlsConnection, role: Role, chain: &[X509]) -> bool {
        let judging = self.settings().judging.clone();
        decide(
            chain,
            judging,
            role == Role::Client,
            |peer| **self.peer() = peer,
            |certificate, errors| {
                self.caller
                    .emit_accept(conn.upcast_ref(), certificate, errors)
            },
        )
    }
}

/// The engine's verify callback: GIO's decision at the peer's own certificate.
pub(super) fn verifier(conn: &gio::TlsConnection) -> VerifyCallback {
    let connection = Shared(conn.downgrade());
    chain_verifier(move |presented| {
        // The callback runs inside the handshake this connection object started.
        let connection = &connection;
        let Some(conn) = connection.0.upgrade() else {
            return false;
        };
        common_of(&conn).is_some_and(|(common, role)| common.accept_peer(&conn, role, presented))
    })
}
