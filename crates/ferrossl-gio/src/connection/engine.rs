//! The engine of a connection, made from its settings when the handshake starts.

use std::sync::Arc;

use ferrossl::config::ClientCertCallback;
use ferrossl::constants::*;
use ferrossl::context::AlpnSelection;
use ferrossl::{Connection, Context, Method, X509};
use gio::prelude::*;

use super::peer::verifier;
use super::{common_of, misc, Common, Role};
use crate::certificate::{chain_of, key_of, x509_of};
use crate::database::store_of;
use crate::identity::host_of;
use crate::shared::Shared;

impl Common {
    pub(super) fn engine(
        &self,
        conn: &gio::TlsConnection,
        role: Role,
    ) -> Result<Connection, glib::Error> {
        let settings = self.settings();
        let context = Context::new(Method::Tls);
        // Our database's anchors also let the engine pick the alert for a refusal.
        if let Some(store) = settings.judging.database.as_ref().and_then(store_of) {
            let asks = settings.authentication_mode != gio::TlsAuthenticationMode::None;
            if role == Role::Server && asks {
                // The CertificateRequest names the CAs a client certificate may come from.
                context
                    .set_client_ca_list(store.certificates().iter().map(X509::subject).collect());
            }
            context.set_cert_store(store);
        }
        match &settings.certificate {
            Some(certificate) => use_identity(&context, certificate)?,
            None if role == Role::Server => {
                return Err(glib::Error::new(
                    gio::TlsError::CertificateRequired,
                    "A TLS server needs a certificate",
                ))
            }
            None => {}
        }
        if !settings.advertised.is_empty() {
            set_alpn(&context, &settings.advertised, role)?;
        }
        if role == Role::Client && settings.certificate.is_none() {
            context.set_client_cert_callback(Some(request_certificate(conn)));
        }
        let host = settings.judging.server_identity.as_ref().and_then(host_of);
        let mode = settings.authentication_mode;
        drop(settings);
        let mut engine = Connection::new(&context).map_err(misc)?;
        match role {
            Role::Client => {
                engine.set_connect_state().map_err(misc)?;
                if let Some(session) = self
                    .resume
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                {
                    engine.set_session(session).map_err(misc)?;
                }
                engine
                    .set_verify(VERIFY_PEER, Some(verifier(conn)))
                    .map_err(misc)?;
                // SNI carries host names only (RFC 6066 §3); a name it cannot carry is not sent.
                if let Some(host) = host.filter(|h| h.parse::<std::net::IpAddr>().is_err()) {
                    let _ = engine.set_tlsext_host_name(&host);
                }
            }
            Role::Server => {
                engine.set_accept_state().map_err(misc)?;
                let verify = match mode {
                    gio::TlsAuthenticationMode::Requested => VERIFY_PEER,
                    gio::TlsAuthenticationMode::Required => {
                        VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT
                    }
                    _ => VERIFY_NONE,
                };
                engine
                    .set_verify(verify, Some(verifier(conn)))
                    .map_err(misc)?;
            }
        }
        Ok(engine)
    }
}

/// The ALPN protocols a client offers, or those a server accepts: GIO's server picks the first
/// of its own protocols that the client offers.
fn set_alpn(context: &Context, protocols: &[String], role: Role) -> Result<(), glib::Error> {
    let refs: Vec<&[u8]> = protocols.iter().map(|p| p.as_bytes()).collect();
    context.set_alpn_protos(&refs).map_err(misc)?;
    if role == Role::Server {
        let ours: Vec<Vec<u8>> = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        context.set_alpn_select_callback(Arc::new(move |hello| {
            Ok(ours
                .iter()
                .find(|p| hello.alpn_offered().contains(p))
                .map_or(AlpnSelection::NoOverlap, |p| {
                    AlpnSelection::Select(p.clone())
                }))
        }));
    }
    Ok(())
}

/// A client's certificate callback, for a server that asks for a certificate when the
/// connection has none: as glib-networking does, the connection's `interaction` is asked
/// (`g_tls_interaction_invoke_request_certificate`, which runs it in its own main context), and
/// the `certificate` it sets on the connection is sent.
fn request_certificate(conn: &gio::TlsConnection) -> ClientCertCallback {
    let connection = Shared(conn.downgrade());
    Arc::new(move |names| {
        // The callback runs inside the handshake this connection object started.
        let connection = &connection;
        let conn = connection.0.upgrade()?;
        let (common, _) = common_of(&conn)?;
        common.request().accepted_cas = Some(names.to_vec());
        let interaction = common.settings().judging.interaction.clone();
        if let Some(interaction) = interaction {
            let asked = interaction.invoke_request_certificate(
                &conn,
                gio::TlsCertificateRequestFlags::None,
                gio::Cancellable::NONE,
            );
            if let Err(e) = asked {
                common.request().interaction_error = Some(e);
            }
        }
        let certificate = common.settings().certificate.clone();
        let identity = certificate.and_then(|c| Some((chain_of(&c), key_of(&c)?)));
        common.request().missing_certificate = identity.is_none();
        identity
    })
}

/// Presents `certificate` (with its issuers) and its key.
fn use_identity(context: &Context, certificate: &gio::TlsCertificate) -> Result<(), glib::Error> {
    let chain = chain_of(certificate);
    let key = key_of(certificate).ok_or_else(|| {
        glib::Error::new(
            gio::TlsError::BadCertificate,
            "The certificate has no private key",
        )
    })?;
    let leaf = x509_of(certificate).expect("a chain has its leaf");
    context.use_certificate(leaf);
    for extra in chain.into_iter().skip(1) {
        context.add_extra_chain_cert(extra);
    }
    context.use_privatekey(key);
    Ok(())
}
