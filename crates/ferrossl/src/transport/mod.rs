//! Transports a connection can run over. They sit at the bottom of the stack: engines never see
//! them; only [`crate::connection`] and the API families do.

mod datagram;
mod stream;

pub use datagram::{
    may_carry_connection_id, wait_in_slices, Cancellable, DatagramBased, DatagramQueue,
    MemoryDatagrams, PeerDatagrams, PeerMoves, Timeout, UdpDatagrams,
};
pub use stream::Stream;
