//! ferrossl: a memory-safe SSL/TLS library with the API shapes OpenSSL and pyOpenSSL users
//! know, running TLS 1.2 and 1.3 on rustls (aws-lc-rs provider).
//!
//! The layers, each importing only those below it:
//! 1. [`error`], [`constants`], [`ex_data`], [`x509`], [`ciphers`], [`verify`]; [`transport`]
//!    sits here too;
//! 2. [`config`]: the immutable configuration both engines read;
//! 3. the engines ([`tls`]) and [`context`], the OpenSSL-style builder of configurations;
//! 4. [`connection`]: the OpenSSL-shaped connection over an engine.
//!
//! ```
//! use ferrossl::{constants::*, Connection, Context, Method};
//! # fn main() -> ferrossl::Result<()> {
//! let server_ctx = Context::new(Method::Tls);
//! # let pki = ferrossl_testkit::pki::TestPki::generate();
//! # let (cert_file, key_file) = (&pki.server_ecdsa.cert_path, &pki.server_ecdsa.key_path);
//! server_ctx.use_certificate_file(cert_file, FILETYPE_PEM)?;
//! server_ctx.use_privatekey_file(key_file, FILETYPE_PEM)?;
//! let mut server = Connection::new(&server_ctx)?;
//! server.set_accept_state()?;
//!
//! let mut client = Connection::new(&Context::new(Method::Tls))?;
//! client.set_connect_state()?;
//!
//! // Memory BIOs: move ciphertext between the two ends until both finish the handshake.
//! fn pump(from: &mut Connection, to: &mut Connection) {
//!     while let Ok(bytes) = from.bio_read(65536) {
//!         to.bio_write(&bytes).unwrap();
//!     }
//! }
//! while !(client.is_handshake_done() && server.is_handshake_done()) {
//!     let _ = client.do_handshake();
//!     pump(&mut client, &mut server);
//!     let _ = server.do_handshake();
//!     pump(&mut server, &mut client);
//! }
//! client.send(b"hello")?;
//! let bytes = client.bio_read(65536)?;
//! server.bio_write(&bytes)?;
//! let mut buf = [0u8; 16];
//! let n = server.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bio;
pub mod ciphers;
pub mod config;
pub mod connection;
pub mod constants;
pub mod context;
pub mod dtls;
pub mod error;
pub mod ex_data;
pub mod gio;
pub mod session;
pub mod socket;
pub mod tls;
pub mod transport;
pub mod verify;
pub mod x509;

/// The engine, re-exported: [`Error::Protocol`] carries its error type.
pub use rustls;

pub use config::{Method, Role, Version};
pub use connection::Connection;
pub use context::Context;
pub use error::{Error, ErrorEntry, Result};
pub use x509::{KeyType, PKey, X509Name, X509Store, X509};

/// The user guide's examples run as doctests, so the guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide.md")]
pub struct GuideExamples;

/// The BIO guide's examples are compiled as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide-bio.md")]
pub struct BioGuideExamples;

/// The GIO guide's examples are doctests as well.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide-gio.md")]
pub struct GioGuideExamples;
