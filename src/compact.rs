//! The compact store: the scan's rows split into customer buckets, the unit of memory and of
//! parallel work.
//!
//! A customer's rows all land in one bucket (a hash of the customer id), so everything computed
//! per customer (the daily table, the summary, the activity features, duplicate detection) is
//! computed bucket by bucket, and only small per-customer tables and additive counts cross
//! buckets ([`crate::pipeline`]). Memory then grows with the rows of one bucket and with the
//! number of customers, not with the transactions. The bucket is also the seam where a later
//! scale-out maps buckets onto several machines.
//!
//! Small sources (up to [`ROWS_PER_BUCKET`] rows) are one bucket read straight from the scan.
//! Larger ones are split in one streaming pass of polars' engine into
//! `<scratch>/custval-XXXX/bucket=K/*.parquet`, a directory removed when the run ends, whether
//! it succeeds or fails.

use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Source rows per bucket: the bucket count is `rows / ROWS_PER_BUCKET`, rounded up.
pub(crate) const ROWS_PER_BUCKET: u64 = 2_000_000;
/// At most this many buckets (files open at once while splitting).
pub(crate) const MAX_BUCKETS: usize = 128;

/// The number of buckets for a source of `rows` rows (1 when unknown). The environment
/// variable `CUSTVAL_ROWS_PER_BUCKET` overrides [`ROWS_PER_BUCKET`] (for tests and tuning).
pub(crate) fn bucket_count(rows: Option<i64>) -> usize {
    let per = std::env::var("CUSTVAL_ROWS_PER_BUCKET")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(ROWS_PER_BUCKET);
    buckets_for(rows, per)
}

fn buckets_for(rows: Option<i64>, per_bucket: u64) -> usize {
    let rows = rows.unwrap_or(0).max(0) as u64;
    (rows.div_ceil(per_bucket) as usize).clamp(1, MAX_BUCKETS)
}

/// The bucket of each row: a fixed-seed hash of the customer id, so that reruns put every
/// customer in the same bucket.
pub(crate) fn bucket_expr(n: usize) -> Expr {
    (col("customer_id").hash(0x5eed_c057, 0x0c0f_fee5, 0xba5e_ba11, 0x0dd_ba11) % lit(n as u64))
        .alias("bucket")
}

/// The scan's rows, split by customer bucket.
pub(crate) struct Buckets {
    n: usize,
    /// One bucket: the scan itself.
    whole: Option<LazyFrame>,
    /// Several: the scratch directory holding `bucket=K/` folders.
    dir: Option<ScratchDir>,
}

/// A run's directory under the scratch root (`--scratch`): removed when dropped (the run
/// succeeded or failed), and locked while the process lives, so that a later run removes it
/// if the process was killed ([`sweep_dead_scratch`]).
#[derive(Debug)]
pub(crate) struct ScratchDir {
    dir: tempfile::TempDir,
    /// Released on drop, or by the kernel when the process dies.
    _lock: std::fs::File,
}

impl ScratchDir {
    /// Sweeps the dead runs' directories under `root`, then creates and locks a new one.
    pub(crate) fn new(root: &Path) -> std::io::Result<ScratchDir> {
        std::fs::create_dir_all(root)?;
        sweep_dead_scratch(root);
        let dir = tempfile::Builder::new()
            .prefix(SCRATCH_PREFIX)
            .tempdir_in(root)?;
        let lock = hold_scratch_lock(dir.path())?;
        Ok(ScratchDir { dir, _lock: lock })
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Scratch directories are `<scratch>/custval-XXXXXX/`.
const SCRATCH_PREFIX: &str = "custval-";
/// The lock file inside a scratch directory, held (`flock`) while its run lives.
const SCRATCH_LOCK: &str = ".lock";

/// Creates `<dir>/.lock` already locked: the file is locked under a temporary name and renamed,
/// so a sweeping run never sees an unlocked lock of a live directory.
fn hold_scratch_lock(dir: &Path) -> std::io::Result<std::fs::File> {
    let tmp = dir.join(".lock.new");
    let f = std::fs::File::create(&tmp)?;
    if !crate::storage::lock::flock(&f, false)? {
        return Err(std::io::Error::other("scratch lock already held"));
    }
    std::fs::rename(&tmp, dir.join(SCRATCH_LOCK))?;
    Ok(f)
}

/// Removes the scratch directories of runs that died without cleaning up (killed by a
/// scheduler's timeout, SIGKILL, the OOM killer): those whose `.lock` nobody holds. A run
/// cleans its own directory on success and failure; this catches the rest, so scratch space
/// does not fill up with the buckets of killed runs. Directories without a lock (another
/// tool's, or an older custval's) are left alone.
fn sweep_dead_scratch(scratch: &Path) {
    let Ok(rd) = std::fs::read_dir(scratch) else {
        return;
    };
    for e in rd.flatten() {
        let dir = e.path();
        let ours = e.file_name().to_string_lossy().starts_with(SCRATCH_PREFIX);
        if !ours || !dir.is_dir() {
            continue;
        }
        let Ok(f) = std::fs::File::open(dir.join(SCRATCH_LOCK)) else {
            continue;
        };
        if matches!(crate::storage::lock::flock(&f, false), Ok(true)) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => tracing::warn!(
                    dir = %dir.display(),
                    "removed the scratch directory of a run that died without cleaning up"
                ),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove a dead run's scratch directory")
                }
            }
        }
    }
}

/// A failure while splitting: writing the scratch directory (storage) or reading the source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SplitError {
    /// Creating the scratch directory `dir` or the run's temporary directory under it failed.
    #[error("scratch directory {dir}: {source}; free space there or pass --scratch DIR")]
    Scratch {
        /// The scratch directory (`--scratch`) the buckets were to be written under.
        dir: PathBuf,
        /// The I/O error from the file system.
        source: std::io::Error,
    },
    /// Reading the source or writing the bucket files with polars failed.
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

/// Whether a polars error comes from a full disk (ENOSPC), which polars' Parquet sink wraps
/// in its own error types with the OS message.
fn disk_full(e: &PolarsError) -> bool {
    let text = e.to_string();
    text.contains("No space left on device") || text.contains("os error 28")
}

impl Buckets {
    /// Split `rows` (the scan of [`crate::source::scan_files`]) into `n` buckets under
    /// `scratch`. With `n == 1` nothing is written.
    pub(crate) fn split(rows: LazyFrame, n: usize, scratch: &Path) -> Result<Buckets, SplitError> {
        if n <= 1 {
            return Ok(Buckets {
                n: 1,
                whole: Some(rows),
                dir: None,
            });
        }
        let scratch_err = |source| SplitError::Scratch {
            dir: scratch.to_path_buf(),
            source,
        };
        let dir = ScratchDir::new(scratch).map_err(scratch_err)?;
        let base = dir.path().display().to_string();
        let options = ParquetWriteOptions {
            compression: ParquetCompression::Lz4Raw,
            // Buckets are read whole, never filtered by statistics: computing them was a tenth
            // of the split (measured with polars' Python release on the 50 M-row workload).
            statistics: StatisticsOptions::empty(),
            row_group_size: Some(64 * 1024),
            ..Default::default()
        };
        rows.sink(
            SinkDestination::Partitioned {
                base_path: PlRefPath::new(base.as_str()),
                file_path_provider: None,
                partition_strategy: PartitionStrategy::Keyed {
                    keys: vec![bucket_expr(n)],
                    include_keys: false,
                    keys_pre_grouped: false,
                },
                max_rows_per_file: 0,
                approximate_bytes_per_file: 0,
            },
            FileWriteFormat::Parquet(std::sync::Arc::new(options)),
            UnifiedSinkArgs {
                mkdir: true,
                // Rows keep their source order inside a bucket: float sums and the choice of
                // the first of duplicate rows are the same on every run.
                maintain_order: true,
                ..Default::default()
            },
        )?
        .collect_with_engine(Engine::Streaming)
        .map_err(|e| match disk_full(&e) {
            // polars reports a full scratch disk as a Parquet error: it is a storage failure
            // of the scratch directory (exit 4), not an unreadable source.
            true => scratch_err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("no space left on device; free space there or pass --scratch DIR ({e})"),
            )),
            false => SplitError::Polars(e),
        })?;
        Ok(Buckets {
            n,
            whole: None,
            dir: Some(dir),
        })
    }

    /// The number of buckets.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The rows of bucket `i`, or None when no customer hashed to it.
    pub(crate) fn rows(&self, i: usize) -> PolarsResult<Option<LazyFrame>> {
        if let Some(lf) = &self.whole {
            return Ok(Some(lf.clone()));
        }
        let dir = self
            .dir
            .as_ref()
            .expect("several buckets live in a scratch directory")
            .path()
            .join(format!("bucket={i}"));
        if !dir.is_dir() {
            return Ok(None);
        }
        let args = ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(false),
                ..Default::default()
            },
            ..Default::default()
        };
        LazyFrame::scan_parquet(PlRefPath::new(dir.display().to_string().as_str()), args).map(Some)
    }

    /// The scratch directory, when the rows were split.
    #[cfg(test)]
    pub(crate) fn scratch_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_from_other_polars_errors() {
        let full = PolarsError::ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
                .into(),
        );
        assert!(disk_full(&full));
        let io = PolarsError::from(std::io::Error::from_raw_os_error(28));
        assert!(disk_full(&io));
        let other = PolarsError::ComputeError("parquet: File out of specification".into());
        assert!(!disk_full(&other));
    }

    #[test]
    fn bucket_counts() {
        let b = |rows| buckets_for(rows, ROWS_PER_BUCKET);
        assert_eq!(b(None), 1);
        assert_eq!(b(Some(0)), 1);
        assert_eq!(b(Some(2_000_000)), 1);
        assert_eq!(b(Some(2_000_001)), 2);
        assert_eq!(b(Some(50_000_000)), 25);
        assert_eq!(b(Some(i64::MAX)), MAX_BUCKETS);
    }

    #[test]
    fn scratch_of_dead_runs_is_swept_and_live_scratch_is_kept() {
        let scratch = tempfile::tempdir().unwrap();
        // A dead run's directory: its lock file exists and nobody holds it.
        let dead = scratch.path().join("custval-dead01");
        std::fs::create_dir_all(dead.join("bucket=0")).unwrap();
        std::fs::write(dead.join(SCRATCH_LOCK), b"").unwrap();
        // A live one: the lock is held (by this process, through another descriptor).
        let live = scratch.path().join("custval-live01");
        std::fs::create_dir_all(&live).unwrap();
        let held = hold_scratch_lock(&live).unwrap();
        // No lock file (another tool's, or an older custval's): left alone.
        let other = scratch.path().join("custval-nolock");
        std::fs::create_dir_all(&other).unwrap();
        let df =
            df!("customer_id" => ["a", "b", "c", "d"], "amount" => [1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = Buckets::split(df.lazy(), 2, scratch.path()).unwrap();
        assert!(!dead.exists(), "the dead run's scratch is removed");
        assert!(live.exists() && other.exists());
        // This split's own directory is locked while the buckets live, and removed with them.
        let own = b.scratch_dir().unwrap().to_path_buf();
        let f = std::fs::File::open(own.join(SCRATCH_LOCK)).unwrap();
        assert!(!crate::storage::lock::flock(&f, false).unwrap());
        drop(b);
        assert!(!own.exists());
        drop(held);
    }

    #[test]
    fn split_keeps_every_row_once_and_each_customer_in_one_bucket() {
        let n = 2000;
        let df = df!(
            "customer_id" => (0..n).map(|i| format!("c{}", i % 137)).collect::<Vec<_>>(),
            "amount" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        )
        .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let b = Buckets::split(df.lazy(), 5, scratch.path()).unwrap();
        assert_eq!(b.len(), 5);
        let mut total = 0;
        let mut seen = std::collections::HashMap::new();
        for i in 0..b.len() {
            let Some(lf) = b.rows(i).unwrap() else {
                continue;
            };
            let part = lf.collect().unwrap();
            total += part.height();
            // Rows keep their source order inside a bucket.
            let amounts: Vec<f64> = part
                .column("amount")
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            assert!(amounts.windows(2).all(|w| w[0] < w[1]));
            for c in part.column("customer_id").unwrap().str().unwrap().iter() {
                let prev = seen.insert(c.unwrap().to_string(), i);
                assert!(prev.is_none_or(|p| p == i), "customer in two buckets");
            }
        }
        assert_eq!(total, n);
        assert_eq!(seen.len(), 137);
        let dir = b.scratch_dir().unwrap().to_path_buf();
        drop(b);
        assert!(!dir.exists(), "scratch is removed");
    }
}
