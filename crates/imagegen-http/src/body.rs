//! [`read_bounded`]: reading a body, up to a limit.

use bytes::{Bytes, BytesMut};

use crate::error::TransportError;

/// Why a body could not be read whole. Both keep what did arrive: a cut-off answer to a
/// paid request may still name the job.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the limit; reading stopped there.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// The bytes read before the limit was reached.
        partial: Bytes,
    },
    /// The connection broke (or timed out) before the body ended.
    #[error("the body broke off after {} bytes", partial.len())]
    Interrupted {
        /// What arrived.
        partial: Bytes,
        /// What failed (always [`TransportError::MaybeSent`]).
        #[source]
        source: TransportError,
    },
}

impl BodyError {
    /// The bytes that arrived.
    pub fn partial(&self) -> &Bytes {
        match self {
            Self::TooLarge { partial, .. } | Self::Interrupted { partial, .. } => partial,
        }
    }
}

/// Reads `response`'s body, at most `limit` bytes. A `Content-Length` over the limit
/// fails before reading.
pub async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge {
            limit,
            partial: Bytes::new(),
        });
    }
    // The common case, one chunk: no copy.
    let mut first: Option<Bytes> = None;
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let held = first.as_ref().map_or(0, Bytes::len) + body.len();
                if held + chunk.len() > limit {
                    let mut partial = BytesMut::with_capacity(limit);
                    if let Some(first) = first.take() {
                        partial.extend_from_slice(&first);
                    }
                    partial.extend_from_slice(&body);
                    partial.extend_from_slice(&chunk[..limit - held]);
                    return Err(BodyError::TooLarge {
                        limit,
                        partial: partial.freeze(),
                    });
                }
                match first.take() {
                    None if body.is_empty() => first = Some(chunk),
                    None => body.extend_from_slice(&chunk),
                    Some(earlier) => {
                        body.extend_from_slice(&earlier);
                        body.extend_from_slice(&chunk);
                    }
                }
            }
            Ok(None) => return Ok(first.unwrap_or_else(|| body.freeze())),
            Err(error) => {
                let partial = match first.take() {
                    Some(first) => first,
                    None => body.freeze(),
                };
                return Err(BodyError::Interrupted {
                    partial,
                    source: TransportError::from_body(error, status),
                });
            }
        }
    }
}
