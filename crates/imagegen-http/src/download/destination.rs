//! Destinations: where a download writes. A writer is streamed into and cannot be
//! rewound; a file is written through a locked temporary [`PartFile`](super::PartFile) in
//! the same directory (mode 0644, not a temporary file's private 0600), rewound on a
//! retry, and renamed into place only once the image is whole, so the final path never
//! holds a partial image.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::error::DownloadError;

/// Where a download writes.
pub(crate) trait Destination: Send {
    /// Writes `bytes`.
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>>;
    /// Flushes.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>>;
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Starts over; `false` when the destination cannot be rewound.
    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>>;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) struct WriterDestination<'w, W: ?Sized> {
    pub(crate) writer: &'w mut W,
    pub(crate) written: u64,
}

impl<W: AsyncWrite + Unpin + Send + ?Sized> Destination for WriterDestination<'_, W> {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>> {
        Box::pin(async move {
            if bytes.is_empty() {
                return Ok(());
            }
            self.writer
                .write_all(bytes)
                .await
                .map_err(|e| DownloadError::io("writing the image", &e))?;
            self.written += bytes.len() as u64;
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>> {
        Box::pin(async move {
            self.writer
                .flush()
                .await
                .map_err(|e| DownloadError::io("flushing the image", &e))
        })
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>> {
        Box::pin(async { Ok(false) })
    }
}

/// Memory: a buffer that grows as the image arrives, emptied on a retry (so, unlike a
/// writer, a broken transfer is tried again from the start).
pub(crate) struct MemoryDestination {
    pub(crate) bytes: Vec<u8>,
}

impl Destination for MemoryDestination {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>> {
        self.bytes.extend_from_slice(bytes);
        Box::pin(async { Ok(()) })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>> {
        Box::pin(async { Ok(()) })
    }

    fn written(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>> {
        self.bytes.clear();
        Box::pin(async { Ok(true) })
    }
}

/// A part file being written through an async handle.
pub(crate) struct FileDestination {
    file: tokio::fs::File,
    written: u64,
}

impl FileDestination {
    /// Writes through `file` (a [`PartFile`](super::PartFile)'s, empty).
    pub(crate) fn new(file: std::fs::File) -> Self {
        Self {
            file: tokio::fs::File::from_std(file),
            written: 0,
        }
    }

    /// Syncs what was written to the disk.
    pub(crate) async fn sync(&mut self) -> Result<(), DownloadError> {
        self.file
            .sync_all()
            .await
            .map_err(|e| DownloadError::io("syncing the file", &e))
    }

    /// The file handle back, once every write has finished.
    pub(crate) async fn into_std(self) -> std::fs::File {
        self.file.into_std().await
    }
}

impl Destination for FileDestination {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), DownloadError>> {
        Box::pin(async move {
            self.file
                .write_all(bytes)
                .await
                .map_err(|e| DownloadError::io("writing the image file", &e))?;
            self.written += bytes.len() as u64;
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), DownloadError>> {
        Box::pin(async move {
            self.file
                .flush()
                .await
                .map_err(|e| DownloadError::io("flushing the image file", &e))
        })
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<bool, DownloadError>> {
        Box::pin(async move {
            let fail = |e: io::Error| DownloadError::io("rewinding the image file", &e);
            self.file.flush().await.map_err(fail)?;
            self.file.set_len(0).await.map_err(fail)?;
            self.file.rewind().await.map_err(fail)?;
            self.written = 0;
            Ok(true)
        })
    }
}

/// An [`AsyncWrite`] that counts bytes; handy for measuring without storing.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingSink {
    /// Bytes written.
    pub bytes: u64,
}

impl AsyncWrite for CountingSink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.bytes += buf.len() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
