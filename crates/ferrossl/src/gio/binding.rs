//! Channel binding data of an established connection (RFC 5929, RFC 9266), for GIO's
//! `get_channel_binding_data` over TLS and DTLS alike.

use crate::connection::Connection;
use crate::constants::{DTLS1_3_VERSION, TLS1_3_VERSION};
use crate::x509::X509;
use crate::Error;

use super::{ChannelBindingType, GioError, GioResult};

/// The binding of `kind` for `conn`, whose handshake is done. `server` says which end `conn`
/// is; `own_certificate` is a server's own certificate (tls-server-end-point names the
/// server's, whichever end asks). tls-unique does not exist in TLS 1.3 (RFC 8446 §C.5).
pub fn channel_binding_data(
    conn: &Connection,
    kind: ChannelBindingType,
    server: bool,
    own_certificate: Option<&X509>,
) -> GioResult<Vec<u8>> {
    match kind {
        // RFC 9266 §2: 32 bytes of the exporter with this label and no context.
        ChannelBindingType::Exporter => {
            Ok(conn.export_keying_material(b"EXPORTER-Channel-Binding", 32, None)?)
        }
        ChannelBindingType::ServerEndPoint => {
            let cert = if server {
                own_certificate.cloned()
            } else {
                conn.get_peer_certificate()
            }
            .ok_or(GioError::Tls(Error::Missing("server certificate")))?;
            Ok(server_end_point(&cert)?)
        }
        ChannelBindingType::Unique
            if matches!(
                conn.get_protocol_version(),
                TLS1_3_VERSION | DTLS1_3_VERSION
            ) =>
        {
            Err(GioError::Tls(Error::NotSupported(
                "tls-unique is not defined for (D)TLS 1.3",
            )))
        }
        // RFC 5929 §3.1: the first Finished of the handshake, the client's in a full one and
        // the server's in a resumption.
        ChannelBindingType::Unique => {
            let ours_first = conn.session_reused() == server;
            let first = if ours_first {
                conn.get_finished()?
            } else {
                conn.get_peer_finished()?
            };
            first.ok_or(GioError::Tls(Error::Missing("Finished message")))
        }
    }
}

/// RFC 5929 §4.1: the certificate's hash with its signature's hash, SHA-256 for MD5/SHA-1.
fn server_end_point(cert: &X509) -> crate::Result<Vec<u8>> {
    let alg = match cert.signature_algorithm_oid().as_str() {
        "1.2.840.10045.4.3.3" | "1.2.840.113549.1.1.12" => "sha384",
        "1.2.840.10045.4.3.4" | "1.2.840.113549.1.1.13" => "sha512",
        _ => "sha256",
    };
    let hex = cert.digest(alg)?;
    Ok(hex
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect())
}
