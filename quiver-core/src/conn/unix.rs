//! Unix domain sockets: a rule's `unix_socket` path instead of TCP (`curl --unix-socket`).
//! The origin still names the request (`Host`, TLS server name); only the transport differs.

use std::io;
use std::path::PathBuf;

use super::{BoxFuture, Dial, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// Dials the socket at a path, whatever the origin.
#[derive(Clone, Debug)]
pub(crate) struct UnixDial {
    path: PathBuf,
}

impl UnixDial {
    pub(crate) fn new(path: PathBuf) -> UnixDial {
        UnixDial { path }
    }
}

impl Dial for UnixDial {
    fn dial<'a>(&'a self, origin: &'a Origin) -> BoxFuture<'a, Result<Stream>> {
        Box::pin(async move {
            match tokio::net::UnixStream::connect(&self.path).await {
                Ok(stream) => Ok(Stream::Boxed(Box::new(stream))),
                Err(e) => {
                    let kind = match e.kind() {
                        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
                        _ => ErrorKind::ConnectFailed,
                    };
                    Err(Error::with_source(
                        kind,
                        format!(
                            "cannot connect to {origin} over the Unix socket {}: {e}",
                            self.path.display()
                        ),
                        e,
                    ))
                }
            }
        })
    }
}
