//! The cluster key: 32 secret bytes shared by every server of the cluster,
//! kept in a file of 64 hex digits that only its owner may read.
//!
//! Loading refuses a file that other users can read: a key they can read is
//! a key they can forge heartbeats and peer requests with.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Key length in bytes.
pub const KEY_BYTES: usize = 32;

/// A key file is a line of hex digits; anything much longer is not one.
const MAX_FILE_BYTES: u64 = 4096;

#[derive(Clone)]
pub struct ClusterKey {
    /// HMAC state with the key already absorbed: every frame starts from a
    /// copy instead of hashing the key again.
    mac: HmacSha256,
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> ClusterKey {
        let mac = HmacSha256::new_from_slice(&bytes).expect("HMAC accepts keys of any length");
        ClusterKey { mac }
    }

    /// A fresh MAC computation under this key.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// Reads the key file at `path`. Every error names the file.
    pub fn load(path: &Path) -> Result<ClusterKey, String> {
        let name = path.display();
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(format!(
                    "{name}: no such file (write one with `understudy keygen FILE` and copy it to every server)"
                ))
            }
            Err(e) => return Err(format!("{name}: cannot read: {e}")),
        };
        if !meta.is_file() {
            return Err(format!("{name}: not a regular file"));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{name}: mode {mode:04o} lets other users read the cluster key (chmod 600 {name})"
            ));
        }
        let mut text = String::new();
        fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text))
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidData => format!("{name}: not a key file (not text)"),
                _ => format!("{name}: cannot read: {e}"),
            })?;
        // Never quote the file's content: it may be most of a key.
        let digits = text.trim();
        if digits.len() != KEY_BYTES * 2 {
            return Err(format!(
                "{name}: expected {} hex digits (a {}-bit key), found {} characters",
                KEY_BYTES * 2,
                KEY_BYTES * 8,
                digits.chars().count()
            ));
        }
        let bytes = super::from_hex(digits)
            .and_then(|b| <[u8; KEY_BYTES]>::try_from(b).ok())
            .ok_or_else(|| format!("{name}: not a key: expected only hex digits (0-9, a-f)"))?;
        Ok(ClusterKey::from_bytes(bytes))
    }

    /// Writes a new random key to `path` with mode 0600. Without `force` an
    /// existing file is left alone; with it the file is replaced atomically
    /// (a temporary file in the same folder, synced, then renamed), so a
    /// crash leaves either the old key or the new one.
    pub fn generate(path: &Path, force: bool) -> Result<(), String> {
        let name = path.display();
        let mut bytes = [0u8; KEY_BYTES];
        super::random_bytes(&mut bytes)
            .map_err(|e| format!("{name}: cannot read random bytes from /dev/urandom: {e}"))?;
        let mut line = super::to_hex(&bytes);
        line.push('\n');

        if !force {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| match e.kind() {
                    ErrorKind::AlreadyExists => format!(
                        "{name}: exists already, not replaced (--force replaces it; \
                         every server then needs the new key)"
                    ),
                    _ => format!("{name}: cannot create: {e}"),
                })?;
            return f
                .write_all(line.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| {
                    // A half-written key must not stay behind looking valid.
                    let _ = fs::remove_file(path);
                    format!("{name}: cannot write: {e}")
                });
        }

        crate::atomic_file::write_atomically(path, line.as_bytes(), 0o600)
            .map_err(|e| format!("{name}: cannot write the new key: {e}"))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A fresh folder under /tmp, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let mut r = [0u8; 6];
            crate::wire::random_bytes(&mut r).unwrap();
            let dir = std::env::temp_dir().join(format!(
                "understudy-{tag}-{}-{}",
                std::process::id(),
                crate::wire::to_hex(&r)
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn same_key(a: &ClusterKey, b: &ClusterKey) -> bool {
        let sealed = crate::wire::seal(a, b"probe");
        crate::wire::open(b, &sealed).is_ok()
    }

    #[test]
    fn debug_hides_the_key() {
        let key = ClusterKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "ClusterKey(..)");
    }

    #[test]
    fn loads_a_good_key() {
        let dir = TempDir::new("key-good");
        let path = dir.0.join("cluster.key");
        let hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
        write(&path, &format!("  {hex}\n\n"), 0o600);
        let key = ClusterKey::load(&path).unwrap();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&crate::wire::from_hex(hex).unwrap());
        assert!(same_key(&key, &ClusterKey::from_bytes(bytes)));
        // Read-only for the owner is fine too.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(ClusterKey::load(&path).is_ok());
    }

    #[test]
    fn refuses_bad_hex_and_wrong_length() {
        let dir = TempDir::new("key-bad");
        let path = dir.0.join("cluster.key");
        write(&path, &format!("{}zz\n", "a".repeat(62)), 0o600);
        let e = ClusterKey::load(&path).unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(e.contains("hex digits"), "{e}");
        assert!(!e.contains("aaaa"), "quotes the key: {e}");

        write(&path, "abcd\n", 0o600);
        let e = ClusterKey::load(&path).unwrap_err();
        assert!(e.contains("expected 64 hex digits"), "{e}");
        assert!(e.contains("found 4 characters"), "{e}");

        write(&path, "", 0o600);
        assert!(ClusterKey::load(&path).is_err());
    }

    #[test]
    fn refuses_a_key_others_can_read() {
        let dir = TempDir::new("key-mode");
        let path = dir.0.join("cluster.key");
        write(&path, &"ab".repeat(32), 0o644);
        let e = ClusterKey::load(&path).unwrap_err();
        let name = path.display();
        assert_eq!(
            e,
            format!("{name}: mode 0644 lets other users read the cluster key (chmod 600 {name})")
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(ClusterKey::load(&path).unwrap_err().contains("mode 0640"));
    }

    #[test]
    fn missing_file_is_named() {
        let dir = TempDir::new("key-missing");
        let path = dir.0.join("nope.key");
        let e = ClusterKey::load(&path).unwrap_err();
        assert!(
            e.starts_with(&format!("{}: no such file", path.display())),
            "{e}"
        );
        // A folder is not a key file either.
        let e = ClusterKey::load(&dir.0).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn generate_writes_a_private_key_and_keeps_an_existing_one() {
        let dir = TempDir::new("key-gen");
        let path = dir.0.join("cluster.key");
        ClusterKey::generate(&path, false).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let first = ClusterKey::load(&path).unwrap();

        let e = ClusterKey::generate(&path, false).unwrap_err();
        assert!(e.contains("exists already"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text);

        ClusterKey::generate(&path, true).unwrap();
        let second = ClusterKey::load(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(!same_key(&first, &second));
        // No temporary file left behind.
        let entries: Vec<_> = fs::read_dir(&dir.0).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn generate_in_a_missing_folder_names_the_file() {
        let dir = TempDir::new("key-gen-missing");
        let path = dir.0.join("sub").join("cluster.key");
        let e = ClusterKey::generate(&path, false).unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        let e = ClusterKey::generate(&path, true).unwrap_err();
        assert!(e.contains("cannot write the new key"), "{e}");
    }
}
