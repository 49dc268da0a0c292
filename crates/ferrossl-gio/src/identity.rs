//! The host a GSocketConnectable names, as the certificate checks want it.

use gio::prelude::*;

/// The host name or IP address of `identity` (GNetworkAddress, GNetworkService,
/// GInetSocketAddress, GInetAddress... wrapped in an address); None for other kinds.
pub fn host_of(identity: &gio::SocketConnectable) -> Option<String> {
    if let Some(address) = identity.downcast_ref::<gio::NetworkAddress>() {
        return Some(address.hostname().to_string());
    }
    if let Some(service) = identity.downcast_ref::<gio::NetworkService>() {
        return Some(service.domain().to_string());
    }
    if let Some(address) = identity.downcast_ref::<gio::InetSocketAddress>() {
        return Some(address.address().to_str().to_string());
    }
    None
}
