//! Reading the mail password: the one piece of the mail settings that
//! does I/O (the settings themselves are pure, in
//! `understudy_brain::notify::mail`).

use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::config::{MailConfig, Secret, MAX_NAME};

/// A password file is one short line; anything much longer is not one.
const MAX_PASSWORD_FILE: u64 = 1024;

/// Reads the password of mail settings, when the notifier is built.
pub trait LoadPassword {
    /// The password: `password`, or the first line of `password_file`. The
    /// file must belong to its owner alone. Errors name the file, never its
    /// content.
    fn load_password(&self) -> Result<Option<Secret>, String>;
}

impl LoadPassword for MailConfig {
    fn load_password(&self) -> Result<Option<Secret>, String> {
        if let Some(pw) = &self.password {
            return Ok(Some(pw.clone()));
        }
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        read_secret_file(file, "password", MAX_NAME).map(Some)
    }
}

/// The first line of a file that holds a secret (`what`: "password",
/// "community"), at most `max` bytes: the file must be a regular file that
/// only its owner may read. Errors name the file, never its content.
pub fn read_secret_file(file: &str, what: &str, max: usize) -> Result<Secret, String> {
    let path = Path::new(file);
    let name = path.display();
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!("{what} file {name}: no such file"),
        _ => format!("{what} file {name}: cannot read: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("{what} file {name}: not a regular file"));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} file {name}: mode {mode:04o} lets other users read it (chmod 600 {name})"
        ));
    }
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_PASSWORD_FILE).read_to_string(&mut text))
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidData => format!("{what} file {name}: not UTF-8 text"),
            _ => format!("{what} file {name}: cannot read: {e}"),
        })?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(format!("{what} file {name}: the first line is empty"));
    }
    if line.len() > max {
        return Err(format!(
            "{what} file {name}: the {what} is longer than {max} bytes"
        ));
    }
    if line.chars().any(char::is_control) {
        return Err(format!(
            "{what} file {name}: the {what} contains control characters"
        ));
    }
    Ok(Secret::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("us-mailpw-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        fs::write(&file, "s3cret\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = MailConfig::new("m", &["a@x"], "t");
        c.password_file = Some(file.display().to_string());
        let err = c.load_password().unwrap_err();
        assert!(
            err.contains("mode 0644") && !err.contains("s3cret"),
            "{err}"
        );
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(c.load_password().unwrap().unwrap().expose(), "s3cret");
        c.password_file = Some(dir.join("missing").display().to_string());
        assert!(c.load_password().unwrap_err().contains("no such file"));
        c.password_file = None;
        assert_eq!(c.load_password().unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
