//! Run locks and staging leftovers on a local output root.
//!
//! A run holds an exclusive `flock(2)` on `<root>/_locks/<job>.lock` for its whole life, with its
//! run id written inside: a second run of the same job fails at once (exit 4, naming the holder's
//! run id) or, with `--wait`, waits for it. The lock also marks the run's staging directory as
//! live: a run holds `<root>/_staging/<run_id>.lock` too, and every run starts by removing the
//! staging directories whose lock nobody holds (runs that were killed). The kernel drops a dead
//! process's locks, so no lease can go stale.
//!
//! Object stores have no locks: there, schedule one run per job (Airflow `max_active_runs=1`).

use super::{Location, StorageError};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Locks held by a live run; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _job: Option<File>,
    staging: Option<(File, PathBuf)>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some((_, path)) = self.staging.take() {
            let _ = std::fs::remove_file(&path);
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

fn flock(f: &File, wait: bool) -> std::io::Result<bool> {
    let op = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
    // SAFETY: flock on a file descriptor that `f` keeps open.
    let rc = unsafe { libc::flock(f.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

fn open_lock(path: &Path) -> Result<File, StorageError> {
    let dir = path.parent().expect("a lock file has a parent");
    std::fs::create_dir_all(dir).map_err(|source| StorageError::Local {
        path: dir.to_path_buf(),
        op: "create directory",
        source,
    })?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StorageError::Local {
            path: path.to_path_buf(),
            op: "open lock file",
            source,
        })
}

/// A file-name-safe form of a job name.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Take the run lock of `job` on a local output (nothing on object stores), then remove the
/// staging leftovers of dead runs. Fails with [`StorageError::Locked`] when another run of the
/// job holds the lock, unless `wait`.
pub fn acquire(
    loc: &Location,
    job: &str,
    run_id: &str,
    wait: bool,
) -> Result<RunLock, StorageError> {
    let Location::Local(root) = loc else {
        return Ok(RunLock {
            _job: None,
            staging: None,
        });
    };
    let path = root.join("_locks").join(format!("{}.lock", safe(job)));
    let mut f = open_lock(&path)?;
    let err = |source| StorageError::Local {
        path: path.clone(),
        op: "lock",
        source,
    };
    if !flock(&f, false).map_err(err)? {
        let mut holder = String::new();
        let _ = f.read_to_string(&mut holder);
        if !wait {
            return Err(StorageError::Locked {
                path: path.clone(),
                holder: holder.trim().to_string(),
            });
        }
        tracing::info!(holder = %holder.trim(), "another run of this job holds the lock; waiting");
        flock(&f, true).map_err(err)?;
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = f.write_all(run_id.as_bytes());
    let staging_path = root.join("_staging").join(format!("{run_id}.lock"));
    let staging = open_lock(&staging_path)?;
    flock(&staging, false).map_err(|source| StorageError::Local {
        path: root.join("_staging"),
        op: "lock",
        source,
    })?;
    for removed in remove_leftovers(root)? {
        tracing::warn!(path = %removed.display(), "removed the staging leftovers of a dead run");
    }
    Ok(RunLock {
        _job: Some(f),
        staging: Some((staging, staging_path)),
    })
}

/// Staging directories under `root` (and their lock files) whose run is dead, with `live`
/// telling whether a run still holds them.
pub fn leftovers(root: &Path) -> Vec<(PathBuf, bool)> {
    let staging = root.join("_staging");
    let Ok(rd) = std::fs::read_dir(&staging) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "lock") {
            continue;
        }
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let lock = staging.join(format!("{name}.lock"));
        let live = File::open(&lock)
            .ok()
            .is_some_and(|f| matches!(flock(&f, false), Ok(false)));
        out.push((p, live));
    }
    out.sort();
    out
}

fn remove_leftovers(root: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut removed = Vec::new();
    // Lock files of dead runs that left no staging folder (killed before staging).
    if let Ok(rd) = std::fs::read_dir(root.join("_staging")) {
        for e in rd.flatten() {
            let p = e.path();
            let dead_lock = p.extension().is_some_and(|x| x == "lock")
                && !p.with_extension("").exists()
                && File::open(&p)
                    .ok()
                    .is_some_and(|f| matches!(flock(&f, false), Ok(true)));
            if dead_lock {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    for (p, live) in leftovers(root) {
        if live {
            continue;
        }
        std::fs::remove_dir_all(&p).map_err(|source| StorageError::Local {
            path: p.clone(),
            op: "remove staging leftovers",
            source,
        })?;
        let lock = PathBuf::from(format!("{}.lock", p.display()));
        let _ = std::fs::remove_file(lock);
        removed.push(p);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_run_is_refused_and_dead_staging_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let loc = Location::Local(tmp.path().to_path_buf());
        // A dead run's staging (no lock held) and a live one (lock held by `live`).
        std::fs::create_dir_all(tmp.path().join("_staging/dead/t/as_of=2024-01-01")).unwrap();
        std::fs::create_dir_all(tmp.path().join("_staging/alive/t")).unwrap();
        let live = open_lock(&tmp.path().join("_staging/alive.lock")).unwrap();
        assert!(flock(&live, false).unwrap());
        let first = acquire(&loc, "job a", "run-1", false).unwrap();
        assert!(!tmp.path().join("_staging/dead").exists());
        assert!(tmp.path().join("_staging/alive").exists());
        match acquire(&loc, "job a", "run-2", false) {
            Err(StorageError::Locked { holder, .. }) => assert_eq!(holder, "run-1"),
            other => panic!("expected Locked, got {other:?}"),
        }
        // Another job is not blocked.
        let other = acquire(&loc, "job b", "run-3", false).unwrap();
        drop(first);
        let again = acquire(&loc, "job a", "run-4", false).unwrap();
        drop((other, again, live));
        let names = leftovers(tmp.path());
        assert!(names.iter().all(|(_, live)| !live), "{names:?}");
    }
}
