//! `FerrosslFileDatabase`: a GTlsFileDatabase over a `ferrossl::X509Store` of trust anchors,
//! read from the PEM file named by `anchors`. The backend's default database is one of these
//! whose anchors are the system's trust store (it has no `anchors` file).

use std::ffi::c_char;
use std::sync::{Mutex, OnceLock};

use ferrossl::verify::Purpose;
use ferrossl::{X509Store, X509};
use gio::ffi::{
    GSocketConnectable, GTlsCertificate, GTlsCertificateFlags, GTlsDatabase,
    GTlsDatabaseLookupFlags, GTlsDatabaseVerifyFlags, GTlsInteraction,
};
use gio::prelude::*;
use gio::subclass::prelude::*;
use glib::ffi::{GByteArray, GError, GList};
use glib::translate::{from_glib_borrow, Borrowed, IntoGlibPtr};

use crate::certificate::{chain_of, x509_of, Certificate};
use crate::identity::host_of;

/// GIO's purpose string for verifying a client (`G_TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT`).
const PURPOSE_CLIENT: &str = "1.3.6.1.5.5.7.3.2";

/// What our certificate handles start with; the rest is the certificate's SHA-256.
const HANDLE_PREFIX: &str = "ferrossl:sha256:";

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct FileDatabase {
        pub(super) anchors_path: Mutex<Option<String>>,
        pub(super) store: OnceLock<X509Store>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for FileDatabase {
        const NAME: &'static str = "FerrosslFileDatabase";
        type Type = super::FileDatabase;
        type ParentType = gio::TlsDatabase;
        type Interfaces = (gio::Initable, gio::TlsFileDatabase);
    }

    impl ObjectImpl for FileDatabase {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: OnceLock<Vec<glib::ParamSpec>> = OnceLock::new();
            PROPS.get_or_init(|| {
                vec![glib::ParamSpecOverride::for_interface::<gio::TlsFileDatabase>("anchors")]
            })
        }

        fn set_property(&self, _id: usize, value: &glib::Value, _pspec: &glib::ParamSpec) {
            *self.anchors_path.lock().expect("anchors lock") = value.get().expect("string");
        }

        fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
            self.anchors_path.lock().expect("anchors lock").to_value()
        }
    }

    impl InitableImpl for FileDatabase {
        fn init(&self, _cancellable: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            if self.store.get().is_some() {
                return Ok(());
            }
            let store = X509Store::new();
            let path = self.anchors_path.lock().expect("anchors lock").clone();
            match path {
                Some(path) => {
                    store.load_file(path.as_ref()).map_err(|e| {
                        glib::Error::new(gio::TlsError::BadCertificate, &e.to_string())
                    })?;
                }
                // A machine without a trust store trusts nothing: every peer is UNKNOWN_CA.
                None => {
                    let _ = store.load_system_roots();
                }
            }
            let _ = self.store.set(store);
            Ok(())
        }
    }

    impl FileDatabase {
        pub(super) fn store(&self) -> X509Store {
            self.store.get().cloned().unwrap_or_default()
        }
    }
}

glib::wrapper! {
    /// A database of trust anchors.
    pub struct FileDatabase(ObjectSubclass<imp::FileDatabase>)
        @extends gio::TlsDatabase, @implements gio::Initable, gio::TlsFileDatabase;
}

// SAFETY: GTlsFileDatabaseInterface has no methods, only the `anchors` property.
unsafe impl IsImplementable<imp::FileDatabase> for gio::TlsFileDatabase {}

// SAFETY: GTlsDatabaseClass is the class struct of gio::TlsDatabase, and each function stored
// has the C signature of its slot. The async slots keep GIO's defaults, which run these
// synchronous ones in a worker thread: our state is a thread-safe store.
unsafe impl IsSubclassable<imp::FileDatabase> for gio::TlsDatabase {
    fn class_init(class: &mut glib::Class<Self>) {
        Self::parent_class_init::<imp::FileDatabase>(class);
        let class = class.as_mut();
        class.verify_chain = Some(verify_chain);
        class.lookup_certificate_issuer = Some(lookup_certificate_issuer);
        class.lookup_certificates_issued_by = Some(lookup_certificates_issued_by);
        class.create_certificate_handle = Some(create_certificate_handle);
        class.lookup_certificate_for_handle = Some(lookup_certificate_for_handle);
    }
}

impl FileDatabase {
    /// The database of the system's trust store (the backend's default database).
    pub fn system() -> gio::TlsDatabase {
        gio::Initable::builder::<FileDatabase>()
            .build(gio::Cancellable::NONE)
            .expect("the system store loads or stays empty")
            .upcast()
    }
}

/// The anchors of a database of ours; None for another backend's.
pub fn store_of(database: &gio::TlsDatabase) -> Option<X509Store> {
    database
        .downcast_ref::<FileDatabase>()
        .map(|db| db.imp().store())
}

/// The store of the database GIO calls a vfunc on.
///
/// # Safety
/// `database` must be a live instance of our class, borrowed for the call.
unsafe fn store(database: *mut GTlsDatabase) -> X509Store {
    // SAFETY: the caller's guarantee; vfuncs of our class get instances of it.
    let database: Borrowed<gio::TlsDatabase> = unsafe { from_glib_borrow(database) };
    store_of(&database).unwrap_or_default()
}

/// Borrows an optional object GIO passed.
///
/// # Safety
/// `ptr` must be NULL or a live instance of `T`, borrowed for the call.
unsafe fn borrow<T: glib::translate::FromGlibPtrBorrow<*mut P>, P: 'static>(
    ptr: *mut P,
) -> Borrowed<T> {
    // SAFETY: the caller's guarantee.
    unsafe { from_glib_borrow(ptr) }
}

#[allow(clippy::too_many_arguments)] // GIO's signature.
unsafe extern "C" fn verify_chain(
    database: *mut GTlsDatabase,
    chain: *mut GTlsCertificate,
    purpose: *const c_char,
    identity: *mut GSocketConnectable,
    _interaction: *mut GTlsInteraction,
    _flags: GTlsDatabaseVerifyFlags,
    _cancellable: *mut gio::ffi::GCancellable,
    _error: *mut *mut GError,
) -> GTlsCertificateFlags {
    // SAFETY: GIO passes our database, a live chain, a NUL-terminated purpose and an optional
    // identity, all borrowed for the call.
    let (anchors, chain, purpose, identity) = unsafe {
        (
            store(database),
            borrow::<gio::TlsCertificate, _>(chain),
            std::ffi::CStr::from_ptr(purpose),
            borrow::<Option<gio::SocketConnectable>, _>(identity),
        )
    };
    let purpose = match purpose.to_str() {
        Ok(PURPOSE_CLIENT) => Purpose::ClientAuth,
        _ => Purpose::ServerAuth,
    };
    let host = identity.as_ref().as_ref().and_then(host_of);
    ferrossl::gio::chain_flags(
        &chain_of(&chain),
        &anchors,
        host.as_deref(),
        purpose,
        ferrossl::rustls::pki_types::UnixTime::now(),
    )
    .0
}

unsafe extern "C" fn lookup_certificate_issuer(
    database: *mut GTlsDatabase,
    certificate: *mut GTlsCertificate,
    _interaction: *mut GTlsInteraction,
    _flags: GTlsDatabaseLookupFlags,
    _cancellable: *mut gio::ffi::GCancellable,
    _error: *mut *mut GError,
) -> *mut GTlsCertificate {
    // SAFETY: GIO passes our database and a live certificate, borrowed for the call.
    let (anchors, certificate) = unsafe {
        (
            store(database),
            borrow::<gio::TlsCertificate, _>(certificate),
        )
    };
    let Some(cert) = x509_of(&certificate) else {
        return std::ptr::null_mut();
    };
    let issuer = cert.issuer();
    let found = anchors
        .certificates()
        .into_iter()
        .find(|ca| ca.subject().to_der() == issuer.to_der());
    // SAFETY: the caller takes the new reference (transfer full), or NULL for none found.
    unsafe {
        owned(
            found
                .as_ref()
                .and_then(|ca| Certificate::from_chain(std::slice::from_ref(ca))),
        )
    }
}

unsafe extern "C" fn lookup_certificates_issued_by(
    database: *mut GTlsDatabase,
    issuer_raw_dn: *mut GByteArray,
    _interaction: *mut GTlsInteraction,
    _flags: GTlsDatabaseLookupFlags,
    _cancellable: *mut gio::ffi::GCancellable,
    _error: *mut *mut GError,
) -> *mut GList {
    // SAFETY: GIO passes our database and a live byte array, borrowed for the call; its data
    // pointer is valid for its length.
    let (anchors, dn) = unsafe {
        let array = &*issuer_raw_dn;
        let dn = match array.len {
            0 => &[][..],
            len => std::slice::from_raw_parts(array.data, len as usize),
        };
        (store(database), dn.to_vec())
    };
    let issued: Vec<X509> = anchors
        .certificates()
        .into_iter()
        .filter(|c| c.issuer().to_der() == dn.as_slice())
        .collect();
    let mut list: *mut GList = std::ptr::null_mut();
    for cert in issued.iter().rev() {
        // SAFETY: the list takes each new reference; the caller owns list and references
        // (transfer full).
        unsafe {
            let item = owned(Certificate::from_chain(std::slice::from_ref(cert)));
            list = glib::ffi::g_list_prepend(list, item.cast());
        }
    }
    list
}

unsafe extern "C" fn create_certificate_handle(
    database: *mut GTlsDatabase,
    certificate: *mut GTlsCertificate,
) -> *mut c_char {
    // SAFETY: GIO passes our database and a live certificate, borrowed for the call.
    let (anchors, certificate) = unsafe {
        (
            store(database),
            borrow::<gio::TlsCertificate, _>(certificate),
        )
    };
    let handle = x509_of(&certificate)
        .filter(|c| anchors.certificates().contains(c))
        .map(|c| handle_of(&c));
    // SAFETY: the caller owns the g_malloc'd string (transfer full), or gets NULL.
    unsafe { handle.map(glib::GString::from).into_glib_ptr() }
}

unsafe extern "C" fn lookup_certificate_for_handle(
    database: *mut GTlsDatabase,
    handle: *const c_char,
    _interaction: *mut GTlsInteraction,
    _flags: GTlsDatabaseLookupFlags,
    _cancellable: *mut gio::ffi::GCancellable,
    _error: *mut *mut GError,
) -> *mut GTlsCertificate {
    // SAFETY: GIO passes our database and a NUL-terminated handle, borrowed for the call.
    let (anchors, handle) = unsafe { (store(database), std::ffi::CStr::from_ptr(handle)) };
    let handle = handle.to_string_lossy();
    let found = anchors
        .certificates()
        .into_iter()
        .find(|c| handle_of(c) == handle);
    // SAFETY: the caller takes the new reference (transfer full), or NULL for none found.
    unsafe {
        owned(
            found
                .as_ref()
                .and_then(|c| Certificate::from_chain(std::slice::from_ref(c))),
        )
    }
}

fn handle_of(cert: &X509) -> String {
    let digest = cert.digest("sha256").expect("sha256 is known");
    format!("{HANDLE_PREFIX}{}", digest.replace(':', "").to_lowercase())
}

/// A certificate reference handed to C (transfer full), or NULL.
///
/// # Safety
/// The caller must pass ownership of the returned reference on.
unsafe fn owned(cert: Option<gio::TlsCertificate>) -> *mut GTlsCertificate {
    // SAFETY: the caller's guarantee.
    unsafe { cert.into_glib_ptr() }
}
