//! Upload and download progress of one request, readable while it runs: relaxed atomic
//! counters the transfer bumps as it goes, cheap enough to leave on for large transfers.

use std::sync::atomic::{AtomicU64, Ordering};

/// No total known.
const UNKNOWN: u64 = u64::MAX;

/// How far one request's upload and download are: bytes so far, and the totals when known.
/// Give it to a request with [`RequestBuilder::progress`](crate::RequestBuilder::progress) and
/// read it from anywhere while the request runs.
#[derive(Debug)]
pub struct Progress {
    uploaded: AtomicU64,
    upload_total: AtomicU64,
    downloaded: AtomicU64,
    download_total: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            uploaded: AtomicU64::new(0),
            upload_total: AtomicU64::new(UNKNOWN),
            downloaded: AtomicU64::new(0),
            download_total: AtomicU64::new(UNKNOWN),
        }
    }
}

impl Progress {
    /// A fresh progress record (nothing moved, no totals).
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Request body bytes handed to the connection so far (flow control paces them; a body held
    /// in memory counts once it is handed over whole).
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// The request body's length, when known.
    pub fn upload_total(&self) -> Option<u64> {
        known(self.upload_total.load(Ordering::Relaxed))
    }

    /// Response body bytes the caller has taken so far (decoded, when the body is).
    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    /// The response body's length, when the response announced it (not for decoded bodies:
    /// `content-length` counts the compressed bytes).
    pub fn download_total(&self) -> Option<u64> {
        known(self.download_total.load(Ordering::Relaxed))
    }

    pub(crate) fn add_uploaded(&self, n: u64) {
        self.uploaded.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_uploaded(&self, n: u64) {
        self.uploaded.store(n, Ordering::Relaxed);
    }

    pub(crate) fn set_upload_total(&self, n: Option<u64>) {
        self.upload_total
            .store(n.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }

    pub(crate) fn add_downloaded(&self, n: u64) {
        self.downloaded.fetch_add(n, Ordering::Relaxed);
    }

    /// A new response (a redirect's was dropped): its download starts from zero.
    pub(crate) fn start_download(&self, total: Option<u64>) {
        self.downloaded.store(0, Ordering::Relaxed);
        self.download_total
            .store(total.unwrap_or(UNKNOWN), Ordering::Relaxed);
    }
}

fn known(v: u64) -> Option<u64> {
    (v != UNKNOWN).then_some(v)
}
