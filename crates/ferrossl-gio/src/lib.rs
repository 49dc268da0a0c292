//! `libgioferrossl.so`: a GIO module that implements the `gio-tls-backend` extension point
//! under the name `ferrossl` (`GIO_USE_TLS=ferrossl`).
//!
//! This crate is glue only: GObject types whose methods call into `ferrossl`, where all
//! certificate handling and protocol logic live (the library itself forbids `unsafe`). The
//! glue needs `unsafe` for GIO's C entry points and for the GObject class and interface tables
//! gtk-rs has no safe subclassing for; each block says why it is sound.
//!
//! The types: `backend` (the GTlsBackend GIO instantiates), `certificate` and
//! `database`; TLS connections (`client`, `server`) share `connection`, over
//! `core` (the engine and the base stream) and `streams`; DTLS connections
//! (`dtls_client`, `dtls_server`) share `dtls`, over `datagrams`.

#![deny(unsafe_op_in_unsafe_fn)]

mod backend;
mod caller;
mod certificate;
mod client;
mod connection;
mod core;
mod database;
mod datagrams;
mod dtls;
mod dtls_class;
mod dtls_client;
mod dtls_server;
mod dtls_source;
mod errors;
mod identity;
mod module;
mod server;
mod shared;
mod streams;
mod tls_class;
mod values;
mod verdict;
