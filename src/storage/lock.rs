//! Run locks and staging leftovers on a local output root.
//!
//! A run holds an exclusive `flock(2)` on `<root>/_locks/<job>.lock` for its whole life, with its
//! run id written inside: a second run of the same job fails at once (exit 4, naming the holder's
//! run id) or, with `--wait`, waits for it. The lock also marks the run's staging directory as
//! live: a run holds `<root>/_staging/<run_id>.lock` too, and every run starts by removing the
//! staging directories whose lock nobody holds (runs that were killed). The kernel drops a dead
//! process's locks, so no lease can go stale.
//!
//! Object stores have no locks. There a run holds a **lease**: the object
//! `<root>/_locks/<job>.lease` (JSON: run id, expiry), created with a conditional PUT that fails
//! when the object exists (`If-None-Match: *`), renewed every [`LEASE_RENEW_S`] seconds with a
//! PUT conditional on its ETag (`If-Match`), and deleted when the run ends. A second run of the
//! job finds the lease and fails at once (exit 4, naming the holder and the expiry) or, with
//! `--wait`, polls until it is gone. A killed run stops renewing: its lease expires after
//! [`LEASE_TTL_S`] seconds and the next run takes it over (again conditional on the ETag, so two
//! runs cannot both take it).

use super::{Location, StorageError};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// Seconds a lease on an object store stays valid without renewal (default).
pub(crate) const LEASE_TTL_S: u64 = 120;
/// Seconds between lease renewals (default: a quarter of the TTL).
pub(crate) const LEASE_RENEW_S: u64 = 30;
/// Environment variable that sets the lease TTL, 10 to 3600 s: how long a killed run blocks the
/// next one. Renewals come every quarter of it.
pub(crate) const LEASE_TTL_ENV: &str = "CUSTVAL_LEASE_TTL_S";

/// The lease TTL and the renewal interval, from [`LEASE_TTL_ENV`] or the defaults.
fn lease_timing() -> (u64, u64) {
    static TIMING: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *TIMING.get_or_init(read_lease_timing)
}

fn read_lease_timing() -> (u64, u64) {
    let Ok(raw) = std::env::var(LEASE_TTL_ENV) else {
        return (LEASE_TTL_S, LEASE_RENEW_S);
    };
    match raw.trim().parse::<u64>() {
        Ok(t) if (10..=3600).contains(&t) => (t, t / 4),
        _ => {
            // Said, not silently changed.
            tracing::warn!(
                value = %raw,
                "{LEASE_TTL_ENV} must be 10 to 3600 seconds; using the default {LEASE_TTL_S} s"
            );
            (LEASE_TTL_S, LEASE_RENEW_S)
        }
    }
}

/// A lease on an object store, renewed by a background thread until dropped.
#[derive(Debug)]
struct Lease {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        let _ = super::runtime().block_on(self.store.delete(&self.path));
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lease_body(run_id: &str) -> PutPayload {
    serde_json::json!({ "run_id": run_id, "expires_at": now_s() + lease_timing().0 })
        .to_string()
        .into()
}

/// Take the lease of `job` under `prefix`, or say who holds it.
fn acquire_lease(
    uri: &str,
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjPath,
    job: &str,
    run_id: &str,
    wait: bool,
) -> Result<Lease, StorageError> {
    let path = super::child(prefix, &format!("_locks/{}.lease", safe(job)));
    let shown = format!("{}/_locks/{}.lease", uri.trim_end_matches('/'), safe(job));
    let rt = super::runtime();
    let err = |op: &'static str| {
        let shown = shown.clone();
        move |source| StorageError::Object {
            uri: shown,
            op,
            source,
        }
    };
    let create = |mode: PutMode| {
        rt.block_on(store.put_opts(&path, lease_body(run_id), PutOptions::from(mode)))
    };
    // The lease object's ETag and version (GCS's generation: its conditional updates need it).
    let lease = loop {
        match create(PutMode::Create) {
            Ok(r) => break (r.e_tag, r.version),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Err(e) => return Err(err("put lease")(e)),
        }
        let current = match rt.block_on(store.get(&path)) {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => continue, // released meanwhile
            Err(e) => return Err(err("get lease")(e)),
        };
        let version = UpdateVersion {
            e_tag: current.meta.e_tag.clone(),
            version: current.meta.version.clone(),
        };
        let bytes = rt.block_on(current.bytes()).map_err(err("get lease"))?;
        let held: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let holder = held["run_id"].as_str().unwrap_or("unknown").to_string();
        let expires = held["expires_at"].as_u64().unwrap_or(0);
        if expires <= now_s() {
            // The holder stopped renewing (killed): take the lease over, unless another run
            // does so first.
            match create(PutMode::Update(version)) {
                Ok(r) => {
                    tracing::warn!(%holder, "took over the expired lease of a dead run");
                    break (r.e_tag, r.version);
                }
                Err(object_store::Error::Precondition { .. }) => continue,
                Err(e) => return Err(err("put lease")(e)),
            }
        }
        if !wait {
            return Err(StorageError::Locked {
                path: PathBuf::from(&shown),
                holder: format!(
                    "{holder}, lease valid for {} s more",
                    expires.saturating_sub(now_s())
                ),
            });
        }
        tracing::info!(%holder, "another run of this job holds the lease; waiting");
        std::thread::sleep(std::time::Duration::from_secs(5));
    };
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let renewer = {
        let (store, path, stop, run_id) = (
            store.clone(),
            path.clone(),
            stop.clone(),
            run_id.to_string(),
        );
        std::thread::spawn(move || {
            let (mut e_tag, mut version) = lease;
            loop {
                let (lock, cv) = &*stop;
                let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                let (guard, _) = cv
                    .wait_timeout(guard, std::time::Duration::from_secs(lease_timing().1))
                    .unwrap_or_else(|e| e.into_inner());
                if *guard {
                    return;
                }
                drop(guard);
                let mode = PutMode::Update(UpdateVersion {
                    e_tag: e_tag.clone(),
                    version: version.clone(),
                });
                match super::runtime().block_on(store.put_opts(
                    &path,
                    lease_body(&run_id),
                    PutOptions::from(mode),
                )) {
                    Ok(r) => (e_tag, version) = (r.e_tag, r.version),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew the run's lease; another run may start");
                        return;
                    }
                }
            }
        })
    };
    Ok(Lease {
        store: store.clone(),
        path,
        stop,
        renewer: Some(renewer),
    })
}

/// Locks held by a live run; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct RunLock {
    _job: Option<File>,
    staging: Option<(File, PathBuf)>,
    _lease: Option<Lease>,
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

pub(crate) fn flock(f: &File, wait: bool) -> std::io::Result<bool> {
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
pub(crate) fn acquire(
    loc: &Location,
    job: &str,
    run_id: &str,
    wait: bool,
) -> Result<RunLock, StorageError> {
    let root = match loc {
        Location::Local(root) => root,
        Location::Remote { uri, store, prefix } => {
            return Ok(RunLock {
                _job: None,
                staging: None,
                _lease: Some(acquire_lease(uri, store, prefix, job, run_id, wait)?),
            })
        }
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
        _lease: None,
    })
}

/// Staging directories under `root` (and their lock files) whose run is dead, with `live`
/// telling whether a run still holds them.
pub(crate) fn leftovers(root: &Path) -> Vec<(PathBuf, bool)> {
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
