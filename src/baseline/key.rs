//! The key environment values are hashed with (HMAC-SHA256): a value is
//! never stored, and without the key a hash cannot be tested against
//! guesses. The key comes from `FIREBREAK_BASELINE_KEY` when set, otherwise
//! (for a directory store) from `<DIR>/baseline.key`, created on first use
//! with 32 random bytes and mode 0600.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::BaselineError;

/// The environment variable that supplies the key (any non-empty text).
pub const KEY_ENV: &str = "FIREBREAK_BASELINE_KEY";
/// The key file's name in a directory store.
pub const KEY_FILE: &str = "baseline.key";

/// A hashing key; wiped when dropped, never printed.
pub struct EnvKey {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EnvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvKey({})", self.id())
    }
}

impl EnvKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            key: Zeroizing::new(bytes.to_vec()),
        }
    }

    /// A fingerprint of the key (not the key): which key hashed a baseline.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"firebreak-baseline-key-id\0");
        h.update(&*self.key);
        hex::encode(&h.finalize()[..8])
    }

    /// HMAC-SHA256 of `value` under this key, hex.
    pub fn hash(&self, value: &str) -> String {
        // HMAC takes a key of any length: `new_from_slice` cannot fail.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(value.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    /// The key from `FIREBREAK_BASELINE_KEY`, if set.
    pub fn from_env() -> Option<Self> {
        std::env::var(KEY_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| Self::from_bytes(v.as_bytes()))
    }

    /// The key of a directory store: read, or created on first use (0600).
    pub fn load_or_create(dir: &Path) -> Result<Self, BaselineError> {
        let path = dir.join(KEY_FILE);
        let io = |source: std::io::Error| BaselineError::Store {
            location: path.display().to_string(),
            message: format!("cannot read or create the hashing key: {source}"),
            hint: format!("check the directory's permissions, or set {KEY_ENV}"),
        };
        match std::fs::read(&path) {
            Ok(bytes) if !bytes.is_empty() => return Ok(Self::from_bytes(&bytes)),
            Ok(_) => {
                return Err(BaselineError::Store {
                    location: path.display().to_string(),
                    message: "the hashing key file is empty".into(),
                    hint: "restore it from a backup: baselines hashed with the lost key cannot be compared any more".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        getrandom::fill(&mut bytes).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(&bytes).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(Self::from_bytes(&bytes))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(&path)
                .map(|b| Self::from_bytes(&b))
                .map_err(io),
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_and_stable() {
        let a = EnvKey::from_bytes(b"one");
        let b = EnvKey::from_bytes(b"two");
        assert_eq!(a.hash("secret"), a.hash("secret"));
        assert_ne!(a.hash("secret"), b.hash("secret"));
        assert_ne!(a.hash("secret"), a.hash("secreT"));
        assert_eq!(a.hash("x").len(), 64);
        assert_ne!(a.id(), b.id());
        // RFC 4231 test case 2.
        assert_eq!(
            EnvKey::from_bytes(b"Jefe").hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(!format!("{a:?}").contains("one"));
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = EnvKey::load_or_create(dir.path()).unwrap();
        let k2 = EnvKey::load_or_create(dir.path()).unwrap();
        assert_eq!(k1.id(), k2.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
