//! `disk` monitor (the product's disk monitor, READ method): each check
//! reads `io_size` bytes from the start of the device, in the blocking
//! pool, under the monitor's timeout like every check.
//!
//! The read bypasses the page cache: with `O_DIRECT` (the size rounded up
//! to whole 4096-byte blocks, into an aligned buffer), or, where the device
//! or its filesystem refuses direct I/O, with a plain read after asking the
//! kernel to drop the cached pages of that range (`POSIX_FADV_DONTNEED`).
//! A read that fails, returns fewer bytes than `io_size` (the device is
//! gone or smaller), or does not return within the timeout is an error. A
//! read that hangs keeps its thread; the next check does not start a second
//! one on the same device but reports that the first has not returned.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::Instant;

pub use understudy_brain::monitor::disk::DiskMonitorConfig;

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

/// Alignment and granularity of a direct read.
const BLOCK: usize = 4096;

impl BuildProbe for DiskMonitorConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(DiskProbe::new(self.clone())))
    }
}

/// Reads a device at each check.
pub struct DiskProbe {
    config: Arc<DiskMonitorConfig>,
    /// When the read in flight started, if one is.
    in_flight: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl DiskProbe {
    pub fn new(config: DiskMonitorConfig) -> Self {
        DiskProbe {
            config: Arc::new(config),
            in_flight: Arc::new(std::sync::Mutex::new(None)),
        }
    }
}

impl Probe for DiskProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let config = self.config.clone();
        let in_flight = self.in_flight.clone();
        {
            let mut started = in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = *started {
                let secs = at.elapsed().as_secs();
                let device = config.device.clone();
                return Box::pin(async move {
                    Check::Error(format!(
                        "the read of {device} started {secs} s ago has not returned (the device hangs)"
                    ))
                });
            }
            *started = Some(Instant::now());
        }
        Box::pin(async move {
            let task = {
                let (config, in_flight) = (config.clone(), in_flight.clone());
                tokio::task::spawn_blocking(move || {
                    let r = read_device(&config.device, config.io_size as usize);
                    *in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    r
                })
            };
            match task.await {
                Ok(Ok(())) => Check::Normal,
                Ok(Err(e)) => Check::Error(e),
                Err(e) => {
                    *in_flight.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    Check::Error(format!("reading {}: {e}", config.device))
                }
            }
        })
    }
}

/// Reads `size` bytes from the start of `path`, past the page cache.
pub fn read_device(path: &str, size: usize) -> Result<(), String> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(file) => match read_direct(&file, size) {
            // Direct I/O refused for this file or size: read through the
            // cache, dropped first.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => read_uncached(path, size),
            other => judge(path, size, other),
        },
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => read_uncached(path, size),
        Err(e) => Err(open_error(path, &e)),
    }
}

fn open_error(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("{path} does not exist"),
        _ => format!("cannot open {path}: {e}"),
    }
}

fn judge(path: &str, size: usize, read: std::io::Result<usize>) -> Result<(), String> {
    match read {
        Ok(n) if n >= size => Ok(()),
        Ok(n) => Err(format!(
            "read {n} of {size} bytes from {path}: the device ends there (gone, or smaller than io_size)"
        )),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

/// Reads up to `size` bytes rounded up to whole blocks with `O_DIRECT`;
/// how many bytes came.
fn read_direct(file: &File, size: usize) -> std::io::Result<usize> {
    let want = size.div_ceil(BLOCK).max(1) * BLOCK;
    let mut raw = vec![0u8; want + BLOCK];
    let off = raw.as_ptr().align_offset(BLOCK);
    let buf = &mut raw[off..off + want];
    read_all(file, buf)
}

/// Reads until `buf` is full or the end of the device.
fn read_all(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn read_uncached(path: &str, size: usize) -> Result<(), String> {
    let file = File::open(path).map_err(|e| open_error(path, &e))?;
    // SAFETY: posix_fadvise only reads its integer arguments; the
    // descriptor is open for the whole call.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            0,
            size as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
    let mut buf = vec![0u8; size];
    judge(path, size, read_all(&file, &mut buf))
}

#[cfg(test)]
mod tests {
    use super::super::testing::run_check;
    use super::*;

    fn probe(device: &str, io_size: u32) -> DiskProbe {
        DiskProbe::new(DiskMonitorConfig {
            device: device.into(),
            io_size,
        })
    }

    #[test]
    fn a_readable_file_is_normal_and_a_short_or_missing_one_is_an_error() {
        let path = std::env::temp_dir().join(format!("us-diskw-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(run_check(&mut probe(p, 10_000)), Check::Normal);
        assert_eq!(run_check(&mut probe(p, 512)), Check::Normal);
        match run_check(&mut probe(p, 20_000)) {
            Check::Error(e) => assert!(e.contains("read 10000 of 20000 bytes"), "{e}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&path).unwrap();
        match run_check(&mut probe(p, 512)) {
            Check::Error(e) => assert!(e.contains("does not exist"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_read_still_in_flight_is_not_doubled() {
        let mut p = probe("/nonexistent", 1);
        *p.in_flight.lock().unwrap() = Some(Instant::now());
        match run_check(&mut p) {
            Check::Error(e) => assert!(e.contains("has not returned"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
