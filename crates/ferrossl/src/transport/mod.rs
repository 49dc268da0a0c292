//! Transports a connection can run over. They sit at the bottom of the stack: engines never see
//! them; only [`crate::connection`] and the API families do.

mod stream;

pub use stream::Stream;
