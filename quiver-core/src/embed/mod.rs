//! The toolkit for embedders: what the C, Python and Node bindings (and any other code that
//! runs quiver inside another language's runtime) need beyond the client API, kept here so that
//! no binding carries engine behaviour of its own.
//!
//! - [`background`]: the process-wide runtime quiver's connections run on, fork-safe.
//! - [`Signal`]: a one-shot signal (cancel tokens, close); [`crate::Client::closed_signal`].
//! - [`Prefetch`]: a response body pulled ahead into a bounded buffer, taken in batches.
//! - [`on_first_poll`]: a request's future built on the heap where it first runs, so a task
//!   spawned from a caller's thread is small there.
//! - [`monotonic`]: an event's instant on the system's monotonic clock, which every language
//!   reads the same way.
//! - Names: [`crate::Protocol`], [`crate::TlsRoots`], [`crate::ConnectProtocol`] and
//!   [`crate::ErrorKind`] parse from the strings every binding accepts (`FromStr`).
//! - Datagram channels and UDP tunnels split into one [`crate::DatagramSender`] and one
//!   [`crate::DatagramReceiver`] type, whose receives are cancel-safe and batched.

mod clock;
mod deferred;
mod prefetch;
pub(crate) mod runtime;

pub use self::clock::monotonic;
pub use self::deferred::on_first_poll;
pub use self::prefetch::{Collected, Prefetch, Taken};
pub use self::runtime::{background, fork_generation, is_runtime_thread};
pub use crate::signal::Signal;
