//! Images the simulator has promised: what to draw, when it becomes available, when it
//! expires. Encoded bytes are cached within a byte budget and redrawn (identically) when
//! evicted, so memory stays bounded however many jobs pile up.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::fault::lock;
use crate::image::ImageSpec;

/// One promised image.
#[derive(Debug, Clone)]
pub(crate) struct StoredImage {
    pub(crate) spec: ImageSpec,
    /// When the image exists (before: KoalaImages blocks, the CDN answers 404).
    pub(crate) available_at: Duration,
    /// When the image is forgotten.
    pub(crate) expires_at: Duration,
    /// Set when the generation fails: the URL then answers an error.
    pub(crate) failure: Option<String>,
    cell: Arc<OnceCell<Bytes>>,
}

impl StoredImage {
    pub(crate) fn new(spec: ImageSpec, available_at: Duration, expires_at: Duration) -> Self {
        Self {
            spec,
            available_at,
            expires_at,
            failure: None,
            cell: Arc::new(OnceCell::new()),
        }
    }

    #[must_use]
    pub(crate) fn failing(mut self, message: impl Into<String>) -> Self {
        self.failure = Some(message.into());
        self
    }
}

#[derive(Debug)]
pub(crate) struct ImageStore {
    inner: Mutex<StoreInner>,
    capacity: usize,
    byte_budget: usize,
}

#[derive(Debug, Default)]
struct StoreInner {
    images: HashMap<String, StoredImage>,
    cached: VecDeque<(String, usize)>,
    cached_bytes: usize,
}

impl ImageStore {
    pub(crate) fn new(capacity: usize, byte_budget: usize) -> Self {
        Self {
            inner: Mutex::new(StoreInner::default()),
            capacity: capacity.max(1),
            byte_budget,
        }
    }

    /// Whether `n` more images fit, after dropping expired and (if needed) the oldest
    /// available ones.
    pub(crate) fn make_room(&self, n: usize, now: Duration) -> bool {
        let mut inner = lock(&self.inner);
        if inner.images.len() + n <= self.capacity {
            return true;
        }
        inner.images.retain(|_, img| img.expires_at > now);
        let excess = (inner.images.len() + n).saturating_sub(self.capacity);
        if excess > 0 {
            let mut done: Vec<(Duration, String)> = inner
                .images
                .iter()
                .filter(|(_, img)| img.available_at <= now)
                .map(|(name, img)| (img.available_at, name.clone()))
                .collect();
            done.sort_unstable();
            for (_, name) in done.into_iter().take(excess) {
                inner.images.remove(&name);
            }
        }
        inner.images.len() + n <= self.capacity
    }

    pub(crate) fn insert(&self, name: String, image: StoredImage) {
        lock(&self.inner).images.insert(name, image);
    }

    /// The image called `name`, unless unknown or expired.
    pub(crate) fn get(&self, name: &str, now: Duration) -> Option<StoredImage> {
        let mut inner = lock(&self.inner);
        match inner.images.get(name) {
            Some(img) if img.expires_at > now => Some(img.clone()),
            Some(_) => {
                inner.images.remove(name);
                None
            }
            None => None,
        }
    }

    pub(crate) fn remove(&self, name: &str) {
        lock(&self.inner).images.remove(name);
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).images.len()
    }

    /// The encoded bytes of `image` (drawn once, then cached within the byte budget).
    pub(crate) async fn bytes(&self, name: &str, image: &StoredImage) -> Result<Bytes, String> {
        let mut drew = false;
        let bytes = image
            .cell
            .get_or_try_init(|| {
                drew = true;
                let spec = image.spec.clone();
                async move {
                    tokio::task::spawn_blocking(move || spec.encode())
                        .await
                        .map_err(|e| format!("image encoder stopped: {e}"))?
                }
            })
            .await?
            .clone();
        if drew {
            self.account(name, bytes.len());
        }
        Ok(bytes)
    }

    fn account(&self, name: &str, size: usize) {
        let mut inner = lock(&self.inner);
        inner.cached.push_back((name.to_owned(), size));
        inner.cached_bytes += size;
        while inner.cached_bytes > self.byte_budget {
            let Some((old, old_size)) = inner.cached.pop_front() else {
                break;
            };
            inner.cached_bytes = inner.cached_bytes.saturating_sub(old_size);
            if let Some(img) = inner.images.get_mut(&old) {
                img.cell = Arc::new(OnceCell::new());
            }
        }
    }

    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        lock(&self.inner).cached_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageFormat;

    fn img(available: u64, expires: u64) -> StoredImage {
        StoredImage::new(
            ImageSpec::new("x", 0, 16, 16, ImageFormat::Png),
            Duration::from_secs(available),
            Duration::from_secs(expires),
        )
    }

    #[test]
    fn expired_images_are_gone_and_room_is_made_from_finished_ones() {
        let store = ImageStore::new(2, 1 << 20);
        store.insert("a".into(), img(0, 10));
        store.insert("b".into(), img(5, 100));
        assert!(store.get("a", Duration::from_secs(11)).is_none());
        store.insert("a".into(), img(0, 10));
        // At t=20, "a" expired; room for one more without evicting "b".
        assert!(store.make_room(1, Duration::from_secs(20)));
        assert_eq!(store.len(), 1);
        store.insert("c".into(), img(50, 200));
        // Full: "b" is available (finished) and can go; "c" is not yet.
        assert!(store.make_room(1, Duration::from_secs(20)));
        assert!(store.get("b", Duration::from_secs(20)).is_none());
        store.insert("d".into(), img(60, 200));
        assert!(
            !store.make_room(1, Duration::from_secs(20)),
            "nothing finished to drop"
        );
    }

    #[tokio::test]
    async fn bytes_are_cached_within_the_budget() {
        let store = ImageStore::new(10, 1);
        store.insert("a".into(), img(0, 100));
        let a = store.get("a", Duration::ZERO).unwrap();
        let first = store.bytes("a", &a).await.unwrap();
        // Over budget: evicted from the cache, redrawn identically.
        assert_eq!(store.cached_bytes(), 0);
        let again = store.get("a", Duration::ZERO).unwrap();
        assert_eq!(store.bytes("a", &again).await.unwrap(), first);
    }
}
