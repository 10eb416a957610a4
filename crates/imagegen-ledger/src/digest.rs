//! SHA-256 as the ledger writes it everywhere (lower-case hex): image contents, request
//! keys, idempotency request hashes, gateway keys and account keys.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// `bytes` as lower-case hex.
///
/// ```
/// assert_eq!(imagegen_ledger::digest::hex(&[0x0f, 0xa0]), "0fa0");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The SHA-256 of `bytes`, lower-case hex.
///
/// ```
/// assert_eq!(
///     imagegen_ledger::digest::sha256_hex(b""),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The SHA-256 (lower-case hex) and size of the file at `path`, read in 64 KiB pieces.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("empty.png");
/// std::fs::write(&path, b"")?;
/// let (hash, size) = imagegen_ledger::digest::file_sha256(&path)?;
/// assert_eq!((hash.len(), size), (64, 0));
/// # Ok(()) }
/// ```
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut size: u64 = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
        size = size.saturating_add(u64::try_from(read).unwrap_or(u64::MAX));
    }
    Ok((hex(&hash.finalize()), size))
}
