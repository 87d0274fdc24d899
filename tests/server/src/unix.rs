//! The Unix domain socket listeners, in the server's folder: `http.sock` (HTTP/1.1, like the
//! `http` listener) and `h2c.sock` (HTTP/2 with prior knowledge, like `h2c`). Their connections
//! are counted and served like the TCP ones, with no peer address (`/headers` reports `peer`
//! as `null`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::endpoints::ConnCtx;
use crate::{h1, http2, Shared};

/// The file name of the HTTP/1.1 socket.
pub(crate) const HTTP_SOCKET: &str = "http.sock";

/// The file name of the HTTP/2 (prior knowledge) socket.
pub(crate) const H2C_SOCKET: &str = "h2c.sock";

/// What a Unix listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnixKind {
    /// HTTP/1.1, like `http`.
    Http,
    /// HTTP/2 with prior knowledge, like `h2c`.
    H2c,
}

/// Binds `dir/name`, replacing a socket file left there by an earlier server.
pub(crate) fn bind(dir: &Path, name: &str) -> io::Result<(UnixListener, PathBuf)> {
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if is_socket(&meta) => std::fs::remove_file(&path)?,
        _ => {}
    }
    let listener = UnixListener::bind(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot bind the Unix socket {} ({} bytes; 107 at most): {e}",
                path.display(),
                path.as_os_str().len()
            ),
        )
    })?;
    Ok((listener, path))
}

fn is_socket(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_socket()
}

/// Accepts and serves connections on `listener` until the server shuts down.
pub(crate) async fn accept_loop(
    listener: UnixListener,
    kind: UnixKind,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors: back off a little and go on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let open = shared.counters.on_accept();
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _open = open;
            tokio::select! {
                () = serve(stream, kind, &shared) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

async fn serve(stream: UnixStream, kind: UnixKind, shared: &Shared) {
    let conn_id = shared.next_conn_id.fetch_add(1, Ordering::SeqCst);
    let counters = Arc::clone(&shared.counters);
    match kind {
        UnixKind::Http => {
            let conn = Arc::new(ConnCtx::new(conn_id, None));
            h1::serve(stream, conn, counters, None).await;
        }
        UnixKind::H2c => {
            http2::serve(
                stream,
                conn_id,
                None,
                counters,
                shared.h2.clone(),
                None,
                false,
            )
            .await;
        }
    }
}
