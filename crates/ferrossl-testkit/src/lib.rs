//! Test support for ferrossl: a throwaway PKI generated at test time ([`pki`]) and real peer
//! programs run as child processes with bounded waits ([`peer`]).

pub mod peer;
pub mod pki;
