//! `FerrosslCertificate`: GTlsCertificate over `ferrossl::X509` and `ferrossl::PKey`.
//!
//! GIO creates it through `g_initable_new` with the construct-only properties
//! (`certificate(-pem)`, `private-key(-pem)`, `issuer`); GLib itself splits PEM files into
//! certificates and links them into chains with `issuer`, asking `verify` which certificate
//! signed which.

use std::sync::{Mutex, OnceLock};

use ferrossl::verify::Purpose;
use ferrossl::{PKey, X509Store, X509};
use gio::ffi::{GSocketConnectable, GTlsCertificate, GTlsCertificateFlags};
use gio::prelude::*;
use gio::subclass::prelude::*;
use glib::translate::{from_glib_borrow, Borrowed};

use crate::identity::host_of;
use crate::values;

/// Longest issuer chain followed, against a cycle of issuers.
const MAX_CHAIN: usize = 16;

/// What construction set; parsed by `init`.
#[derive(Default)]
struct Inputs {
    der: Option<Vec<u8>>,
    pem: Option<String>,
    key_der: Option<Vec<u8>>,
    key_pem: Option<String>,
}

/// The certificate and key once `init` read them.
struct Parsed {
    cert: X509,
    key: Option<PKey>,
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct Certificate {
        inputs: Mutex<Inputs>,
        parsed: OnceLock<Parsed>,
        pub(super) issuer: Mutex<Option<gio::TlsCertificate>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Certificate {
        const NAME: &'static str = "FerrosslCertificate";
        type Type = super::Certificate;
        type ParentType = gio::TlsCertificate;
        type Interfaces = (gio::Initable,);
    }

    /// The properties GTlsCertificate declares and leaves to its implementations.
    const OVERRIDDEN: [&str; 11] = [
        "certificate",
        "certificate-pem",
        "private-key",
        "private-key-pem",
        "issuer",
        "not-valid-before",
        "not-valid-after",
        "subject-name",
        "issuer-name",
        "dns-names",
        "ip-addresses",
    ];

    impl ObjectImpl for Certificate {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                OVERRIDDEN
                    .iter()
                    .map(|name| glib::ParamSpecOverride::for_class::<gio::TlsCertificate>(name))
                    .collect()
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut inputs = self.inputs.lock().expect("inputs lock");
            match pspec.name() {
                "certificate" => inputs.der = byte_array(value),
                "certificate-pem" => inputs.pem = value.get().expect("string"),
                "private-key" => inputs.key_der = byte_array(value),
                "private-key-pem" => inputs.key_pem = value.get().expect("string"),
                "issuer" => {
                    *self.issuer.lock().expect("issuer lock") = value.get().expect("issuer")
                }
                other => unreachable!("{other} is read-only"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let parsed = self.parsed.get();
            let cert = parsed.map(|p| &p.cert);
            let key = parsed.and_then(|p| p.key.as_ref());
            match pspec.name() {
                "certificate" => cert.map(|c| glib::ByteArray::from(c.to_der())).to_value(),
                "certificate-pem" => cert.map(X509::to_pem).to_value(),
                "private-key" => key
                    .map(|k| glib::ByteArray::from(k.private_key_der().secret_der()))
                    .to_value(),
                "private-key-pem" => key.map(PKey::to_pem).to_value(),
                "issuer" => self.issuer.lock().expect("issuer lock").to_value(),
                "not-valid-before" => cert
                    .and_then(|c| date(c.not_before().unix_timestamp()))
                    .to_value(),
                "not-valid-after" => cert
                    .and_then(|c| date(c.not_after().unix_timestamp()))
                    .to_value(),
                "subject-name" => cert.map(|c| c.subject().to_rfc4514()).to_value(),
                "issuer-name" => cert.map(|c| c.issuer().to_rfc4514()).to_value(),
                "dns-names" => values::bytes_array(&cert.map(X509::dns_names).unwrap_or_default()),
                "ip-addresses" => values::objects_array(
                    cert.map(X509::ip_addresses)
                        .unwrap_or_default()
                        .into_iter()
                        .map(gio::InetAddress::from)
                        .collect(),
                ),
                other => unreachable!("no property {other}"),
            }
        }
    }

    impl InitableImpl for Certificate {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            let inputs = std::mem::take(&mut *self.inputs.lock().expect("inputs lock"));
            let parsed = parse(inputs).map_err(bad_certificate)?;
            // A second init is a no-op, as GInitable allows.
            let _ = self.parsed.set(parsed);
            Ok(())
        }
    }

    impl Certificate {
        pub(super) fn cert(&self) -> Option<&X509> {
            self.parsed.get().map(|p| &p.cert)
        }

        pub(super) fn key(&self) -> Option<&PKey> {
            self.parsed.get().and_then(|p| p.key.as_ref())
        }
    }
}

glib::wrapper! {
    /// A certificate, with its private key when it has one.
    pub struct Certificate(ObjectSubclass<imp::Certificate>)
        @extends gio::TlsCertificate, @implements gio::Initable;
}

// SAFETY: GTlsCertificateClass is the class struct of gio::TlsCertificate, and `verify` has
// the C signature of its slot.
unsafe impl IsSubclassable<imp::Certificate> for gio::TlsCertificate {
    fn class_init(class: &mut glib::Class<Self>) {
        Self::parent_class_init::<imp::Certificate>(class);
        class.as_mut().verify = Some(verify);
    }
}

fn byte_array(value: &glib::Value) -> Option<Vec<u8>> {
    let array: Option<glib::ByteArray> = value.get().expect("byte array");
    array.map(|a| a.to_vec())
}

fn date(unix: i64) -> Option<glib::DateTime> {
    glib::DateTime::from_unix_utc(unix).ok()
}

fn bad_certificate(message: String) -> glib::Error {
    glib::Error::new(gio::TlsError::BadCertificate, &message)
}

fn parse(inputs: Inputs) -> Result<Parsed, String> {
    let cert = match (&inputs.der, &inputs.pem) {
        (Some(der), _) => X509::from_der(der),
        (None, Some(pem)) => X509::from_pem(pem.as_bytes()),
        // Also what GLib's PKCS #12 constructors get: this backend does not read PKCS #12 yet.
        (None, None) => return Err("no certificate data (PKCS #12 is not supported)".into()),
    }
    .map_err(|e| format!("could not parse the certificate: {e}"))?;
    let key = match (&inputs.key_der, &inputs.key_pem) {
        (Some(der), _) => Some(PKey::from_der(der)),
        (None, Some(pem)) => Some(PKey::from_pem(pem.as_bytes(), None)),
        (None, None) => None,
    }
    .transpose()
    .map_err(|e| format!("could not parse the private key: {e}"))?;
    Ok(Parsed { cert, key })
}

impl Certificate {
    /// A certificate object for `chain` (the leaf first), each linked to the next as its
    /// issuer; None for an empty chain.
    pub fn from_chain(chain: &[X509]) -> Option<gio::TlsCertificate> {
        let mut issuer: Option<gio::TlsCertificate> = None;
        for cert in chain.iter().rev() {
            let made: Certificate = gio::Initable::builder()
                .property("certificate", glib::ByteArray::from(cert.to_der()))
                .property("issuer", issuer.as_ref())
                .build(gio::Cancellable::NONE)
                .expect("a parsed certificate parses again");
            issuer = Some(made.upcast());
        }
        issuer
    }
}

/// The certificate of any GTlsCertificate (ours, or another backend's by its DER).
pub fn x509_of(cert: &gio::TlsCertificate) -> Option<X509> {
    if let Some(ours) = cert.downcast_ref::<Certificate>() {
        return ours.imp().cert().cloned();
    }
    let der: Option<glib::ByteArray> = cert.property("certificate");
    der.and_then(|d| X509::from_der(&d).ok())
}

/// The private key of any GTlsCertificate, when it holds one.
pub fn key_of(cert: &gio::TlsCertificate) -> Option<PKey> {
    if let Some(ours) = cert.downcast_ref::<Certificate>() {
        return ours.imp().key().cloned();
    }
    let pem: Option<String> = cert.property("private-key-pem");
    pem.and_then(|p| PKey::from_pem(p.as_bytes(), None).ok())
}

/// `cert` followed by its issuers, as far as they are linked.
pub fn chain_of(cert: &gio::TlsCertificate) -> Vec<X509> {
    let mut chain = Vec::new();
    let mut next = Some(cert.clone());
    while let Some(current) = next.take() {
        if chain.len() == MAX_CHAIN {
            break;
        }
        let Some(x509) = x509_of(&current) else { break };
        chain.push(x509);
        next = current.issuer().filter(|i| i != &current);
    }
    chain
}

/// `g_tls_certificate_verify`: the chain from `cert` checked against `trusted_ca` alone, and
/// against `identity`'s host. Without `trusted_ca`, UNKNOWN_CA is never set (GIO's rule).
unsafe extern "C" fn verify(
    cert: *mut GTlsCertificate,
    identity: *mut GSocketConnectable,
    trusted_ca: *mut GTlsCertificate,
) -> GTlsCertificateFlags {
    // SAFETY: GIO calls the vfunc with a live certificate of our class and optional (possibly
    // NULL) identity and trusted CA, all borrowed for the call.
    let (cert, identity, trusted_ca): (
        Borrowed<gio::TlsCertificate>,
        Borrowed<Option<gio::SocketConnectable>>,
        Borrowed<Option<gio::TlsCertificate>>,
    ) = unsafe {
        (
            from_glib_borrow(cert),
            from_glib_borrow(identity),
            from_glib_borrow(trusted_ca),
        )
    };
    let anchors = X509Store::new();
    if let Some(ca) = trusted_ca.as_ref().as_ref().and_then(x509_of) {
        let _ = anchors.add_cert(ca);
    }
    let host = identity.as_ref().as_ref().and_then(host_of);
    let mut flags = ferrossl::gio::chain_flags(
        &chain_of(&cert),
        &anchors,
        host.as_deref(),
        Purpose::ServerAuth,
        ferrossl::rustls::pki_types::UnixTime::now(),
    );
    if trusted_ca.is_none() {
        flags.0 &= !ferrossl::gio::TlsCertificateFlags::UNKNOWN_CA.0;
    }
    flags.0
}
