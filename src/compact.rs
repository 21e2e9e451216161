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

use crate::dictionary::{Decoder, Encoder};
use crate::parquet_pages;
use crate::scratch_io::{self, ScratchIo};
use polars::prelude::*;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Source rows per bucket: the bucket count is `rows / ROWS_PER_BUCKET`, rounded up.
pub(crate) const ROWS_PER_BUCKET: u64 = 2_000_000;
/// At most this many buckets.
pub(crate) const MAX_BUCKETS: usize = 128;
/// Bytes (polars' estimate of the gathered batches) held in the buckets' buffers before they
/// are written out. The split holds at most two such buffers (one being written), so this
/// bounds its memory whatever the source's size or width; it also sets the scratch files'
/// size (this divided by the bucket count). Measured on the 50 M-row workload, where polars
/// estimates about 45 bytes a row: in session 8, flushing every 4 M rows took 19.5–20 s, every
/// 8 M rows 17.6–18.9 s at the same 2.5 GB peak, every 16 M rows 18.7–20.7 s at a 4.0 GB
/// peak; in session 12, once batches were grouped morsel by morsel (more, smaller buffers),
/// 320 MiB peaked at 2.79–2.91 GB (10⁹ bytes) with the split at 4.33–4.73 s, 256 MiB at
/// 2.74–2.82 GB (4.37–4.73 s), 192 MiB (about 4 M rows) at 2.75–2.77 GB (4.01–4.46 s).
const FLUSH_BYTES: usize = 192 << 20;
/// Rows per batch handed over by polars' streaming engine.
const BATCH_ROWS: usize = 256 * 1024;

/// The split's settings (tests make them small).
#[derive(Debug, Clone, Copy)]
struct Tuning {
    /// Rows per batch of polars' engine.
    batch_rows: usize,
    /// Bytes buffered before the buckets' files are written.
    flush_bytes: usize,
    /// Distinct values of a coded column at most ([`crate::dictionary::Encoder::with_max`]).
    max_codes: usize,
    /// How scratch files are written and read.
    io: ScratchIo,
}

impl Tuning {
    const DEFAULT: Tuning = Tuning {
        batch_rows: BATCH_ROWS,
        flush_bytes: FLUSH_BYTES,
        max_codes: crate::dictionary::MAX_CODES,
        io: ScratchIo::Direct,
    };
}

/// The number of buckets for a source of `rows` rows (1 when unknown). The environment
/// variable `CUSTVAL_ROWS_PER_BUCKET` overrides [`ROWS_PER_BUCKET`] (for tests and tuning).
pub(crate) fn bucket_count(rows: Option<i64>) -> usize {
    buckets_for(rows, rows_per_bucket())
}

/// The parts a bucket of `rows` rows is read in ([`Buckets::split_bucket`]): 1 up to twice
/// the rows a bucket is meant to hold ([`bucket_count`]), else one part per that many rows.
/// Hashing spreads customers evenly, so only a few customers with very many rows make a
/// bucket that large.
pub(crate) fn parts_for(rows: u64) -> usize {
    let per = rows_per_bucket();
    if rows <= 2 * per {
        1
    } else {
        rows.div_ceil(per) as usize
    }
}

fn rows_per_bucket() -> u64 {
    std::env::var("CUSTVAL_ROWS_PER_BUCKET")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(ROWS_PER_BUCKET)
}

fn buckets_for(rows: Option<i64>, per_bucket: u64) -> usize {
    let rows = rows.unwrap_or(0).max(0) as u64;
    (rows.div_ceil(per_bucket) as usize).clamp(1, MAX_BUCKETS)
}

/// The column of the split's rows holding [`crate::summary::customer_hash`], the bucket
/// phase's customer key: the bucket is that hash modulo the bucket count (fixed seeds, so
/// reruns put every customer in the same bucket), and its top bits group the rows inside a
/// bucket's files ([`grouped_by_key`]).
const HASH: &str = "_customer_hash";

/// The split's hash column ([`HASH`]).
fn hash_expr() -> Expr {
    crate::summary::customer_hash().alias(HASH)
}

/// `rows` (one bucket's rows of one flush, in source order, with [`HASH`]) grouped by the top
/// bits of their customer key, about [`ROWS_PER_GROUP`] rows a group, rows of a group in
/// source order (one stable counting pass), without [`HASH`]. The bucket phase reads a
/// bucket's rows in key order ([`crate::summary::key_day_order`]); with its files grouped,
/// the rows of consecutive keys lie in one short stretch of each file, so its gathers in that
/// order reuse the cache lines they load instead of missing on almost every row. The rows of
/// one customer keep their order across the files (read in flush order), so every sum and
/// choice made in row order is unchanged.
fn grouped_by_key(mut rows: DataFrame) -> PolarsResult<DataFrame> {
    // polars gathers from many chunks value by value: one chunk first (one copy, in order;
    // the encoder made that copy before).
    rows.rechunk_mut();
    let hash = rows.column(HASH)?.u64()?.rechunk().into_owned();
    rows.drop_in_place(HASH)?;
    let n = rows.height();
    let bits = (n / ROWS_PER_GROUP)
        .max(1)
        .next_power_of_two()
        .trailing_zeros();
    if bits == 0 {
        return Ok(rows);
    }
    let hash = hash.cont_slice().expect("hashes have no nulls");
    let group = |h: u64| (h >> (64 - bits)) as usize;
    let mut next = vec![0 as IdxSize; (1 << bits) + 1];
    for &h in hash {
        next[group(h) + 1] += 1;
    }
    for g in 0..1 << bits {
        next[g + 1] += next[g];
    }
    let mut idx = vec![0 as IdxSize; n];
    for (i, &h) in hash.iter().enumerate() {
        let g = group(h);
        idx[next[g] as usize] = i as IdxSize;
        next[g] += 1;
    }
    rows.take(&IdxCa::from_vec(PlSmallStr::EMPTY, idx))
}

/// Rows per key group of a scratch file ([`grouped_by_key`]).
const ROWS_PER_GROUP: usize = 16;

/// The scan's rows, split by customer bucket.
pub(crate) struct Buckets {
    n: usize,
    /// The distinct days of the rows, ascending, when they were split (seen on the way).
    days: Option<Vec<i32>>,
    /// One bucket: the scan itself.
    whole: Option<LazyFrame>,
    /// Several: the scratch directory holding `bucket=K/` folders.
    dir: Option<ScratchDir>,
    /// The columns written there as codes, with their strings.
    decoders: Vec<(PlSmallStr, Decoder)>,
    /// The columns written there as two integers ([`crate::inline_ids`]).
    packed: Vec<PlSmallStr>,
    /// The scan's columns, in order.
    names: Vec<PlSmallStr>,
    /// Rows written to each bucket (empty for one bucket: not counted).
    rows: Vec<u64>,
    /// How the scratch files are written and read.
    io: ScratchIo,
    /// Folders being read ahead ([`Buckets::prefetch`]).
    prefetched: Mutex<std::collections::HashMap<PathBuf, Prefetch>>,
    /// Folders being deleted ([`Buckets::release`]), joined on drop.
    deleting: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Drop for Buckets {
    /// Waits for the folders still being deleted: the scratch directory (`dir`, dropped
    /// after this) is removed only once nothing else works in it.
    fn drop(&mut self) {
        let deleting = self.deleting.get_mut().unwrap_or_else(|p| p.into_inner());
        for h in deleting.drain(..) {
            let _ = h.join();
        }
    }
}

/// A folder's files being read on a thread of their own ([`read_folder`]).
type Prefetch = std::thread::JoinHandle<std::io::Result<Option<Vec<polars_buffer::Buffer<u8>>>>>;

/// The bytes of the Parquet files of the scratch folder `dir`, in file-name order (the order
/// they were written); None when there is no such folder or it has no files.
fn read_folder(
    dir: &Path,
    io: ScratchIo,
) -> std::io::Result<Option<Vec<polars_buffer::Buffer<u8>>>> {
    match parquet_files(dir)? {
        Some(files) if !files.is_empty() => files
            .iter()
            .map(|f| scratch_io::read(f, io))
            .collect::<std::io::Result<Vec<_>>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// The Parquet files of the scratch folder `dir`, in file-name order (the order they were
/// written); None when there is no such folder.
fn parquet_files(dir: &Path) -> std::io::Result<Option<Vec<PathBuf>>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    files.sort();
    Ok(Some(files))
}

/// The string columns the split writes as codes ([`crate::dictionary`]), when the source has
/// them: low-cardinality columns, read back as strings.
const CODED: [&str; 4] = ["category", "region", "industry", "channel"];

/// The coded columns [`Buckets::read`] leaves as codes: the bucket phase only counts distinct
/// categories ([`crate::categories`]), which codes tell as well as strings; the rejected rows
/// get their strings back ([`Buckets::strings`]).
const KEPT_CODED: [&str; 1] = ["category"];

/// The string columns the split writes as two integers per value ([`crate::inline_ids`]),
/// when every value is short (up to 12 bytes): the ids.
const PACKED: [&str; 2] = ["customer_id", "order_id"];

/// The scratch columns of the halves of packed column `name`.
fn halves(name: &str) -> [PlSmallStr; 2] {
    [format!("_lo_{name}").into(), format!("_hi_{name}").into()]
}

/// The part column of [`Buckets::split_bucket`].
const PART: &str = "_part";

/// How scratch folders are scanned: plain files, no Hive partitions.
fn scratch_scan_args() -> ScanArgsParquet {
    ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The strings of column `name`'s `codes`, chunk by chunk.
fn decoded(name: &PlSmallStr, decoder: &Decoder, codes: &UInt32Chunked) -> PolarsResult<Column> {
    let chunks = codes
        .downcast_iter()
        .map(|c| decoder.decode(c))
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(StringChunked::from_chunk_iter(name.clone(), chunks).into_column())
}

/// How the split writes the string columns.
#[derive(Debug, Clone, Default)]
struct Layout {
    /// As codes ([`crate::dictionary`]).
    coded: Vec<PlSmallStr>,
    /// As two integers per value ([`crate::inline_ids`]).
    packed: Vec<PlSmallStr>,
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
    /// Creating the scratch directory `dir`, the run's temporary directory under it or a
    /// bucket file there failed (a full disk among others).
    #[error("scratch directory {dir}: {source}; free space there or pass --scratch DIR")]
    Scratch {
        /// The scratch directory (`--scratch`) the buckets were to be written under.
        dir: PathBuf,
        /// The I/O error from the file system.
        source: std::io::Error,
    },
    /// Reading the source or encoding the bucket files with polars failed.
    #[error(transparent)]
    Polars(#[from] PolarsError),
    /// A coded column has more distinct values than a dictionary holds
    /// ([`crate::dictionary::MAX_CODES`]): [`Buckets::split`] starts again without coding it.
    #[error("column {0} has too many distinct values to code")]
    TooManyValues(PlSmallStr),
    /// A packed column has a value longer than a string view holds (or ending in a NUL
    /// byte): [`Buckets::split`] starts again without packing it.
    #[error("column {0} has values too long to pack")]
    LongValues(PlSmallStr),
}

/// The split's state between polars' batches: each bucket's rows not yet written, and the
/// thread writing the earlier ones.
struct Splitter {
    pending: Vec<Option<DataFrame>>,
    pending_bytes: usize,
    flush_bytes: usize,
    /// Flushes so far: the number of the next bucket files.
    flushes: usize,
    /// Hands each flush's buffers to the writer: while it encodes them, polars reads on and
    /// the next buffers fill (at most two flushes' rows are held).
    to_writer: Option<std::sync::mpsc::SyncSender<Flush>>,
    writer: Option<std::thread::JoinHandle<Result<(), SplitError>>>,
    /// The error that stopped the split, kept whole (polars only carries a message back).
    failed: Option<SplitError>,
    /// The distinct days of the rows (the freshness check's input, found on the way).
    days: std::collections::BTreeSet<i32>,
    /// The string columns written as codes, with their dictionaries.
    coded: Vec<(PlSmallStr, Encoder)>,
    /// The string columns written as two integers.
    packed: Vec<PlSmallStr>,
    /// Rows sent to each bucket.
    rows: Vec<u64>,
}

/// One flush: its number (the files' name) and each non-empty bucket's rows.
type Flush = (usize, Vec<(usize, DataFrame)>);

impl Splitter {
    /// A splitter into `n` buckets under `dir` (this run's directory under the scratch root
    /// `scratch`), writing every `flush_bytes` bytes.
    /// The string columns are written as `layout` says, coded columns of at most `max_codes`
    /// distinct values each.
    fn new(
        scratch: &Path,
        dir: &Path,
        n: usize,
        flush_bytes: usize,
        (layout, max_codes): (&Layout, usize),
        io: ScratchIo,
    ) -> Splitter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Flush>(0);
        let (scratch, dir) = (scratch.to_path_buf(), dir.to_path_buf());
        let writer = std::thread::spawn(move || {
            use rayon::prelude::*;
            for (flush, parts) in rx {
                let file = format!("part-{flush:06}.parquet");
                parts.into_par_iter().try_for_each(|(b, rows)| {
                    let mut rows = grouped_by_key(rows)?;
                    let bytes = parquet_pages::encode(&mut rows, parquet_pages::Encoding::SCRATCH)?;
                    drop(rows);
                    let bucket = dir.join(format!("bucket={b}"));
                    std::fs::create_dir_all(&bucket)
                        .and_then(|()| scratch_io::write(&bucket.join(&file), &bytes, io))
                        .map_err(|source| SplitError::Scratch {
                            dir: scratch.clone(),
                            source,
                        })
                })?;
            }
            Ok(())
        });
        Splitter {
            pending: vec![None; n],
            pending_bytes: 0,
            flush_bytes,
            flushes: 0,
            to_writer: Some(tx),
            writer: Some(writer),
            failed: None,
            days: std::collections::BTreeSet::new(),
            rows: vec![0; n],
            coded: layout
                .coded
                .iter()
                .map(|c| (c.clone(), Encoder::with_max(max_codes)))
                .collect(),
            packed: layout.packed.clone(),
        }
    }

    /// Adds the distinct non-null days of a batch to [`Splitter::days`]: a bitmap over the
    /// batch's range (batches of a source in time order span a few days), a set otherwise.
    fn note_days(&mut self, day: &Int32Chunked) {
        let (Some(lo), Some(hi)) = (day.min(), day.max()) else {
            return;
        };
        let span = (hi as i64 - lo as i64) as usize + 1;
        if span > 1 << 22 {
            self.days.extend(day.iter().flatten());
            return;
        }
        let mut seen = vec![0u64; span.div_ceil(64)];
        let mut mark = |d: i32| {
            let i = (d - lo) as usize;
            seen[i / 64] |= 1 << (i % 64);
        };
        // Chunk by chunk over the values (polars' per-value iterator was slower than the rest).
        for arr in day.downcast_iter() {
            match arr.validity().filter(|v| v.unset_bits() > 0) {
                None => arr.values().iter().for_each(|&d| mark(d)),
                Some(valid) => arr
                    .values()
                    .iter()
                    .zip(valid.iter())
                    .filter(|&(_, ok)| ok)
                    .for_each(|(&d, _)| mark(d)),
            }
        }
        for (w, bits) in seen.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                self.days.insert(lo + (w * 64 + b) as i32);
                bits &= bits - 1;
            }
        }
    }

    /// Appends a batch's rows (with their `bucket` column) to the buckets' buffers, in order,
    /// one polars morsel (a chunk of every column) at a time: gathers from a batch of many
    /// morsels are several times slower, and making the batch one chunk first copied every
    /// value once more (measured on the 50 M-row workload: split 4.5–4.8 → 4.25–4.7 s).
    fn push(&mut self, mut batch: DataFrame) -> Result<(), SplitError> {
        let pieces: Vec<DataFrame> = batch.split_chunks().collect();
        for piece in pieces {
            self.push_piece(piece)?;
        }
        Ok(())
    }

    /// [`Splitter::push`] of one single-chunk piece.
    fn push_piece(&mut self, mut batch: DataFrame) -> Result<(), SplitError> {
        let n = self.pending.len();
        // Single-chunk already (a morsel); a no-op then.
        batch.rechunk_mut_par();
        // The batch's size as strings: the flush threshold was tuned on it.
        let bytes = batch_bytes(&batch).max(1);
        for (name, encoder) in &mut self.coded {
            let Ok(strings) = batch.column(name.as_str()).and_then(|c| c.str().cloned()) else {
                continue;
            };
            let mut codes = Vec::with_capacity(strings.chunks().len());
            for arr in strings.downcast_iter() {
                codes.push(
                    encoder
                        .encode(arr)
                        .map_err(|_| SplitError::TooManyValues(name.clone()))?,
                );
            }
            let codes = UInt32Chunked::from_chunk_iter(name.clone(), codes);
            batch.with_column(codes.into_column())?;
        }
        for name in &self.packed {
            let Ok(strings) = batch.column(name.as_str()).and_then(|c| c.str().cloned()) else {
                continue;
            };
            let (mut lo, mut hi) = (Vec::new(), Vec::new());
            for arr in strings.downcast_iter() {
                let (l, h) = crate::inline_ids::split(arr)
                    .ok_or_else(|| SplitError::LongValues(name.clone()))?;
                lo.push(l);
                hi.push(h);
            }
            let [lo_name, hi_name] = halves(name);
            batch.drop_in_place(name.as_str())?;
            batch.with_column(UInt64Chunked::from_chunk_iter(lo_name, lo).into_column())?;
            batch.with_column(UInt32Chunked::from_chunk_iter(hi_name, hi).into_column())?;
        }
        let hashes = batch.column(HASH)?.u64()?.rechunk();
        let hashes = hashes.cont_slice().expect("hashes have no nulls");
        // A stable counting sort by bucket: `starts[b]..starts[b + 1]` are bucket b's rows.
        let bucket = |h: u64| (h % n as u64) as usize;
        let mut starts = vec![0usize; n + 1];
        for &h in hashes {
            starts[bucket(h) + 1] += 1;
        }
        for b in 0..n {
            starts[b + 1] += starts[b];
        }
        let mut next = starts.clone();
        let mut order = vec![0 as IdxSize; hashes.len()];
        for (i, &h) in hashes.iter().enumerate() {
            order[next[bucket(h)]] = i as IdxSize;
            next[bucket(h)] += 1;
        }
        if let Ok(day) = batch.column("day").and_then(|d| d.i32().cloned()) {
            self.note_days(&day);
        }
        let grouped = batch.take(&IdxCa::from_vec(PlSmallStr::EMPTY, order))?;
        for b in 0..n {
            let len = starts[b + 1] - starts[b];
            if len == 0 {
                continue;
            }
            self.rows[b] += len as u64;
            let part = grouped.slice(starts[b] as i64, len);
            match &mut self.pending[b] {
                Some(rows) => {
                    rows.vstack_mut_owned(part)?;
                }
                none => *none = Some(part),
            }
        }
        self.pending_bytes += bytes;
        if self.pending_bytes >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands every bucket's buffered rows to the writer, as the buckets' next files.
    fn flush(&mut self) -> Result<(), SplitError> {
        let parts: Vec<(usize, DataFrame)> = self
            .pending
            .iter_mut()
            .enumerate()
            .filter_map(|(b, rows)| rows.take().map(|r| (b, r)))
            .collect();
        self.pending_bytes = 0;
        if parts.is_empty() {
            return Ok(());
        }
        let flush = self.flushes;
        self.flushes += 1;
        let sent = match &self.to_writer {
            Some(tx) => tx.send((flush, parts)).is_ok(),
            None => false,
        };
        match sent {
            true => Ok(()),
            // The writer stopped: its error says why.
            false => self.finish(),
        }
    }

    /// Writes what is left and waits for the writer: its first error, if any.
    fn finish(&mut self) -> Result<(), SplitError> {
        if self.to_writer.is_some() && self.pending_bytes > 0 {
            self.flush()?;
        }
        drop(self.to_writer.take());
        match self.writer.take() {
            Some(w) => w.join().expect("the bucket writer does not panic"),
            // Joined already: its error was returned then.
            None => Ok(()),
        }
    }
}

/// polars' estimate of a batch's bytes ([`DataFrame::estimated_size`]), with each string
/// array's bytes (the sum of its values' lengths) estimated from 256 evenly spaced values: the
/// flush threshold needs no more, and polars counts every value's length where the array
/// does not know its total (as after a gather or a dictionary decode): 1 % of a 50 M-row run.
fn batch_bytes(batch: &DataFrame) -> usize {
    const SAMPLE: usize = 256;
    batch
        .columns()
        .iter()
        .map(|c| match c.dtype() {
            DataType::String => c.str().map_or(0, |ca| {
                ca.downcast_iter()
                    .map(|a| {
                        let n = a.len();
                        let step = n.div_ceil(SAMPLE).max(1);
                        let (sum, seen) =
                            (0..n).step_by(step).fold((0usize, 0usize), |(s, k), i| {
                                (s + a.views()[i].length as usize, k + 1)
                            });
                        match seen {
                            0 => 0,
                            _ => sum * n / seen,
                        }
                    })
                    .sum()
            }),
            _ => c.as_materialized_series().estimated_size(),
        })
        .sum()
}

impl Buckets {
    /// Split `rows` (the scan of [`crate::source::scan_files`]) into `n` buckets under
    /// `scratch`. With `n == 1` nothing is written.
    ///
    /// polars' streaming engine reads the source and hashes the customer ids on all cores and
    /// hands over batches in source order; each batch is grouped by bucket (a stable counting
    /// sort, one gather) and appended to the buckets' buffers. Every [`FLUSH_BYTES`] the
    /// buffers are grouped by customer key ([`grouped_by_key`]), encoded on all cores
    /// ([`parquet_pages::Encoding::SCRATCH`]) and written as `bucket=K/part-NNNNNN.parquet`
    /// by a writer thread, so memory holds at most about twice that whatever the source's
    /// size. (polars' partitioned sink took 6–7 s for what takes about 4.5 s here at 50 M
    /// rows: it looked for dictionaries in the id columns and compressed on one thread.)
    ///
    /// The low-cardinality string columns ([`CODED`]) are written as codes. One with more
    /// distinct values than a dictionary holds stops the split, which starts again without
    /// coding it (one more pass over the source, for a column that is not what its name says).
    pub(crate) fn split(
        rows: LazyFrame,
        n: usize,
        scratch: &Path,
        io: ScratchIo,
    ) -> Result<Buckets, SplitError> {
        Self::split_with(
            rows,
            n,
            scratch,
            Tuning {
                io,
                ..Tuning::DEFAULT
            },
        )
    }

    /// [`Buckets::split`] with the settings `tuning`.
    fn split_with(
        mut rows: LazyFrame,
        n: usize,
        scratch: &Path,
        tuning: Tuning,
    ) -> Result<Buckets, SplitError> {
        let schema = rows.collect_schema()?;
        let strings = |names: &[&str]| -> Vec<PlSmallStr> {
            names
                .iter()
                .filter(|c| schema.get(c) == Some(&DataType::String))
                .map(|c| PlSmallStr::from(*c))
                .collect()
        };
        let mut layout = Layout {
            coded: strings(&CODED),
            packed: strings(&PACKED),
        };
        loop {
            match Self::split_in(rows.clone(), n, scratch, tuning, &layout) {
                Err(SplitError::TooManyValues(column)) => {
                    tracing::info!(
                        %column,
                        max = tuning.max_codes,
                        "too many distinct values to code on scratch: splitting again with the column as strings"
                    );
                    layout.coded.retain(|c| c != &column);
                }
                Err(SplitError::LongValues(column)) => {
                    tracing::info!(
                        %column,
                        "values longer than 12 bytes (or ending in a NUL byte): splitting again with the column as strings"
                    );
                    layout.packed.retain(|c| c != &column);
                }
                done => return done,
            }
        }
    }

    /// One pass of [`Buckets::split_with`], the string columns written as `layout` says.
    fn split_in(
        mut rows: LazyFrame,
        n: usize,
        scratch: &Path,
        tuning: Tuning,
        layout: &Layout,
    ) -> Result<Buckets, SplitError> {
        let names = rows.collect_schema()?.iter_names_cloned().collect();
        if n <= 1 {
            return Ok(Buckets {
                n: 1,
                days: None,
                whole: Some(rows),
                dir: None,
                decoders: Vec::new(),
                packed: Vec::new(),
                names,
                rows: Vec::new(),
                io: tuning.io,
                prefetched: Mutex::default(),
                deleting: Mutex::default(),
            });
        }
        let dir = ScratchDir::new(scratch).map_err(|source| SplitError::Scratch {
            dir: scratch.to_path_buf(),
            source,
        })?;
        let splitter = Arc::new(Mutex::new(Splitter::new(
            scratch,
            dir.path(),
            n,
            tuning.flush_bytes,
            (layout, tuning.max_codes),
            tuning.io,
        )));
        let sink = splitter.clone();
        let callback = PlanCallback::new(move |batch: DataFrame| {
            let mut s = sink.lock().expect("the splitter is not poisoned");
            match s.push(batch) {
                Ok(()) => Ok(false),
                Err(e) => {
                    let msg = e.to_string();
                    s.failed = Some(e);
                    Err(PolarsError::ComputeError(msg.into()))
                }
            }
        });
        let ran = rows
            .with_column(hash_expr())
            .sink_batches(callback, true, NonZeroUsize::new(tuning.batch_rows))
            .and_then(|lf| lf.collect_with_engine(Engine::Streaming));
        let mut s = splitter.lock().expect("the splitter is not poisoned");
        let failed = s.failed.take();
        // Wait for the writer before reporting any error: the scratch directory is removed
        // with `dir` only once nothing writes into it.
        let written = s.finish();
        if let Some(e) = failed {
            return Err(e);
        }
        ran?;
        written?;
        tracing::debug!(files_per_bucket = s.flushes, "split written");
        Ok(Buckets {
            n,
            days: Some(std::mem::take(&mut s.days).into_iter().collect()),
            whole: None,
            dir: Some(dir),
            decoders: s
                .coded
                .iter()
                .map(|(name, e)| (name.clone(), e.decoder()))
                .collect(),
            packed: s.packed.clone(),
            names,
            rows: std::mem::take(&mut s.rows),
            io: tuning.io,
            prefetched: Mutex::default(),
            deleting: Mutex::default(),
        })
    }

    /// The number of buckets.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The distinct non-null days of the rows, ascending, when they were split (None for one
    /// bucket: nothing was read yet).
    pub(crate) fn days(&self) -> Option<&[i32]> {
        self.days.as_deref()
    }

    /// The rows of bucket `i`, or None when no customer hashed to it, with the coded columns
    /// as strings again but the categories ([`KEPT_CODED`]: `UInt32` codes, numbered over all
    /// buckets, when the rows were split).
    pub(crate) fn read(&self, i: usize) -> PolarsResult<Option<DataFrame>> {
        match self.scan(i)? {
            Some(lf) => self.decode(lf.collect()?).map(Some),
            None => Ok(None),
        }
    }

    /// Rows as stored on scratch with the coded columns as strings again (but
    /// [`KEPT_CODED`]) and the packed ones joined ([`Buckets::read`]).
    fn decode(&self, mut rows: DataFrame) -> PolarsResult<DataFrame> {
        for (name, decoder) in &self.decoders {
            if KEPT_CODED.contains(&name.as_str()) {
                continue;
            }
            // One chunk of codes, so one of strings: the bucket phase reads some of these
            // columns by row number, from one chunk (copying 4-byte codes, not 16-byte views).
            let codes = rows.column(name.as_str())?.u32()?.rechunk();
            rows.with_column(decoded(name, decoder, &codes)?)?;
        }
        if self.packed.is_empty() {
            return Ok(rows);
        }
        for name in &self.packed {
            let [lo, hi] = halves(name);
            let ids = crate::inline_ids::join(
                name.clone(),
                rows.column(lo.as_str())?.u64()?,
                rows.column(hi.as_str())?.u32()?,
            )?;
            rows.with_column(ids.into_column())?;
        }
        // The scan's columns in the scan's order (without the halves).
        rows.select(self.names.iter().cloned())
    }

    /// `rows` (some of [`Buckets::read`]'s) with the columns read as codes as strings again.
    pub(crate) fn strings(&self, mut rows: DataFrame) -> PolarsResult<DataFrame> {
        for (name, decoder) in &self.decoders {
            let Ok(codes) = rows.column(name.as_str()).and_then(|c| c.u32().cloned()) else {
                continue;
            };
            rows.with_column(decoded(name, decoder, &codes)?)?;
        }
        Ok(rows)
    }

    /// Rows the split wrote to bucket `i` (0 for one bucket read from the scan).
    pub(crate) fn rows(&self, i: usize) -> u64 {
        self.rows.get(i).copied().unwrap_or(0)
    }

    /// Re-splits bucket `i`'s files into `parts` parts by a hash of (customer, day), read with
    /// [`Buckets::read_part`]: every customer day is whole in one part, which is all the
    /// daily table needs, and each part holds about `1/parts` of the rows. For a bucket that a
    /// few customers with very many rows made large (a guest or placeholder id holding a
    /// large share of the source): the bucket phase then holds two parts at a time, and memory
    /// stays bounded whatever one customer's rows. Two files at a time are read; within each
    /// part the rows keep the bucket's order. The bucket's own files are deleted afterwards.
    /// A file that cannot be read or written (a full disk) is [`SplitError::Scratch`].
    pub(crate) fn split_bucket(&self, i: usize, parts: usize) -> Result<(), SplitError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let src = dir.path().join(format!("bucket={i}"));
        let Ok(Some(files)) = parquet_files(&src) else {
            return Ok(());
        };
        let scratch = |source| SplitError::Scratch {
            dir: dir.path().to_path_buf(),
            source,
        };
        // The parts' files are written on a thread of their own while the next are encoded:
        // a direct write waits for the disk.
        let (to_writer, written) =
            std::sync::mpsc::sync_channel::<(PathBuf, scratch_io::Pieces)>(4);
        type ToWriter = std::sync::mpsc::SyncSender<(PathBuf, scratch_io::Pieces)>;
        let one = |file: &std::path::PathBuf, to_writer: &ToWriter| -> Result<(), SplitError> {
            let bytes = scratch_io::read(file, self.io).map_err(scratch)?;
            let rows = LazyFrame::scan_parquet_sources(
                ScanSources::Buffers([bytes].into()),
                scratch_scan_args(),
            )?
            .collect()?;
            let schema = rows.schema();
            let [lo, hi] = halves("customer_id");
            let keys: Vec<Expr> = ["customer_id", lo.as_str(), hi.as_str(), "day"]
                .into_iter()
                .filter(|c| schema.contains(c))
                .map(col)
                .collect();
            let parted = rows
                .lazy()
                .with_column(
                    (as_struct(keys).hash(0x9a27_5eed, 0xda1, 0x5eed, 0xb0c4e7)
                        % lit(parts as u64))
                    .alias(PART),
                )
                .collect()?;
            let name = file.file_name().expect("a scratch file has a name");
            for mut g in parted.partition_by_stable([PART], true)? {
                let j = g.column(PART)?.u64()?.get(0).expect("a part has rows");
                g.drop_in_place(PART)?;
                let bytes = parquet_pages::encode(&mut g, parquet_pages::Encoding::SCRATCH)?;
                let part = dir.path().join(format!("bucket={i}.part={j}"));
                std::fs::create_dir_all(&part).map_err(scratch)?;
                // The writer stopped on an error, which it reports.
                if to_writer.send((part.join(name), bytes)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        };
        let io = self.io;
        std::thread::scope(|scope| -> Result<(), SplitError> {
            let writer = scope.spawn(move || -> std::io::Result<()> {
                for (path, bytes) in written {
                    scratch_io::write(&path, &bytes, io)?;
                }
                Ok(())
            });
            // Two files at a time: each writes its own file name in every part.
            let split = files.chunks(2).try_for_each(|pair| {
                use rayon::prelude::*;
                pair.par_iter().try_for_each(|f| one(f, &to_writer))
            });
            drop(to_writer);
            let wrote = writer
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
                .map_err(scratch);
            split.and(wrote)
        })?;
        self.release(i);
        Ok(())
    }

    /// Part `j` of bucket `i` after [`Buckets::split_bucket`], as [`Buckets::read`] reads a
    /// bucket; None when no row fell in it.
    pub(crate) fn read_part(&self, i: usize, j: usize) -> PolarsResult<Option<DataFrame>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        match self.scan_dir(&dir.path().join(format!("bucket={i}.part={j}")))? {
            Some(lf) => self.decode(lf.collect()?).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes the parts of bucket `i` ([`Buckets::split_bucket`]).
    pub(crate) fn release_parts(&self, i: usize, parts: usize) {
        if let Some(dir) = &self.dir {
            for j in 0..parts {
                let folder = dir.path().join(format!("bucket={i}.part={j}"));
                if let Some(h) = self.take_prefetched(&folder) {
                    let _ = h.join();
                }
                self.delete(folder);
            }
        }
    }

    /// Removes `folder` on a thread of its own: deleting a large file waits for the disk
    /// without using the CPU (measured here: 0.22 s for a 650 MB file, the guest bucket's
    /// size at 50 M rows, with both cores otherwise idle), which the bucket phase need not
    /// wait for. A failure is ignored (see [`Buckets::release`]).
    fn delete(&self, folder: PathBuf) {
        let handle = std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(folder);
        });
        let mut deleting = self
            .deleting
            .lock()
            .expect("the deletion list is not poisoned");
        deleting.retain(|h| !h.is_finished());
        deleting.push(handle);
    }

    /// The scan of bucket `i`'s rows as stored, or None when no customer hashed to it.
    fn scan(&self, i: usize) -> PolarsResult<Option<LazyFrame>> {
        if let Some(lf) = &self.whole {
            return Ok(Some(lf.clone()));
        }
        let dir = self
            .dir
            .as_ref()
            .expect("several buckets live in a scratch directory")
            .path()
            .join(format!("bucket={i}"));
        self.scan_dir(&dir)
    }

    /// The scan of the Parquet files of the scratch folder `dir` (in file-name order, the
    /// order they were written), or None when there is no such folder or it has no files.
    /// The files are read whole first ([`scratch_io::read`]), or were read ahead
    /// ([`Buckets::prefetch`]).
    fn scan_dir(&self, dir: &Path) -> PolarsResult<Option<LazyFrame>> {
        let ahead = self.take_prefetched(dir);
        let files = match ahead {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("reading ahead panicked")))?,
            None => read_folder(dir, self.io)?,
        };
        let Some(buffers) = files else {
            return Ok(None);
        };
        LazyFrame::scan_parquet_sources(ScanSources::Buffers(buffers.into()), scratch_scan_args())
            .map(Some)
    }

    fn take_prefetched(&self, dir: &Path) -> Option<Prefetch> {
        self.prefetched
            .lock()
            .expect("the read-ahead map is not poisoned")
            .remove(dir)
    }

    /// Starts reading bucket `i`'s files on a thread of their own, for [`Buckets::read`] to
    /// take: with direct I/O ([`ScratchIo::Direct`]) a read waits for the disk, and this
    /// overlaps that wait with the buckets being processed. Buckets read in parts
    /// ([`parts_for`]) are not read ahead.
    pub(crate) fn prefetch(&self, i: usize) {
        let Some(dir) = &self.dir else {
            return;
        };
        if i >= self.n || parts_for(self.rows(i)) > 1 {
            return;
        }
        self.read_ahead(dir.path().join(format!("bucket={i}")));
    }

    /// [`Buckets::prefetch`] of part `j` of bucket `i` ([`Buckets::split_bucket`]), for
    /// [`Buckets::read_part`] to take.
    pub(crate) fn prefetch_part(&self, i: usize, j: usize) {
        let Some(dir) = &self.dir else {
            return;
        };
        if j < parts_for(self.rows(i)) {
            self.read_ahead(dir.path().join(format!("bucket={i}.part={j}")));
        }
    }

    fn read_ahead(&self, folder: PathBuf) {
        let io = self.io;
        let key = folder.clone();
        let handle = std::thread::spawn(move || read_folder(&folder, io));
        let earlier = self
            .prefetched
            .lock()
            .expect("the read-ahead map is not poisoned")
            .insert(key, handle);
        if let Some(h) = earlier {
            let _ = h.join();
        }
    }

    /// Deletes bucket `i`'s scratch files once its rows have been read. Each bucket is read
    /// once, so deleting it there spreads the file system's work over the bucket phase:
    /// deleting them all at the end stalled the run (measured on the 50 M-row workload: 0.6 s
    /// with both cores nearly idle, the kernel freeing 1.9 GB of cached pages), and they are
    /// deleted on a thread of their own ([`Buckets::delete`]). A failure is ignored here: the
    /// directory is removed with the run's scratch directory in any case.
    pub(crate) fn release(&self, i: usize) {
        if let Some(dir) = &self.dir {
            let folder = dir.path().join(format!("bucket={i}"));
            if let Some(h) = self.take_prefetched(&folder) {
                let _ = h.join();
            }
            self.delete(folder);
        }
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

    /// The sampled estimate is polars' own within a few percent, on strings of varied lengths
    /// (inline and in buffers), nulls, several chunks and the other column types.
    #[test]
    fn batch_bytes_is_close_to_polars_estimate() {
        let part = |lo: usize, hi: usize| {
            let ids: Vec<Option<String>> = (lo..hi)
                .map(|i| (i % 13 != 0).then(|| "x".repeat(1 + (i * 7919) % 40)))
                .collect();
            let amount: Vec<f64> = (lo..hi).map(|i| i as f64).collect();
            df!("customer_id" => ids, "amount" => amount).unwrap()
        };
        let mut batch = part(0, 30_000);
        batch.vstack_mut_owned(part(30_000, 50_000)).unwrap();
        assert_eq!(batch.column("customer_id").unwrap().n_chunks(), 2);
        let (got, want) = (batch_bytes(&batch), batch.estimated_size());
        assert!(
            (got as f64 - want as f64).abs() <= 0.05 * want as f64,
            "{got} vs {want}"
        );
    }

    #[test]
    fn a_bucket_file_that_cannot_be_written_is_a_scratch_error() {
        let scratch = tempfile::tempdir().unwrap();
        // The run's directory is a plain file: creating `bucket=K/` in it fails, as on a full
        // or read-only disk.
        let blocked = scratch.path().join("custval-blocked");
        std::fs::write(&blocked, b"").unwrap();
        let mut s = Splitter::new(
            scratch.path(),
            &blocked,
            2,
            1,
            (&Layout::default(), 1),
            ScratchIo::Direct,
        );
        let batch = df!("customer_id" => ["a"], HASH => [1u64]).unwrap();
        // The writer fails in the background: the next flush or the end reports it.
        let failed = s.push(batch).and_then(|()| s.finish());
        match failed {
            Err(SplitError::Scratch { dir, .. }) => assert_eq!(dir, scratch.path()),
            other => panic!("expected a scratch error, got {other:?}"),
        }
    }

    /// The low-cardinality columns are codes on scratch, the ids two integers, and all are
    /// the same strings, in the same column order, when read.
    #[test]
    fn coded_and_packed_columns_come_back_as_strings() {
        let n = 3000;
        let long = "a channel whose name is longer than a view inlines";
        let frame = |long_order_at: Option<usize>| {
            df!(
                "customer_id" => (0..n).map(|i| format!("c{}", i % 211)).collect::<Vec<_>>(),
                "amount" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
                "order_id" => (0..n)
                    .map(|i| match (i % 11, Some(i) == long_order_at) {
                        (_, true) => Some("an order id of 25 bytes".to_string()),
                        (0, _) => None,
                        _ => Some(format!("o{:011}", i / 2)),
                    })
                    .collect::<Vec<_>>(),
                "category" => (0..n).map(|i| (i % 7 != 3).then(|| format!("cat{}", i % 23))).collect::<Vec<_>>(),
                "channel" => (0..n).map(|i| if i % 5 == 0 { long } else { "web" }).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let scratch = tempfile::tempdir().unwrap();
        // 23 categories and two channels: both coded; with a cap of 20 values, the split
        // starts again with the categories as strings. Order ids of 12 bytes are packed; one
        // long one among the last rows starts the split again with them as strings.
        for (max_codes, long_order_at, category, packed_orders) in [
            (100, None, DataType::UInt32, true),
            (20, None, DataType::String, true),
            (100, Some(n - 3), DataType::UInt32, false),
        ] {
            let df = frame(long_order_at);
            let tuning = Tuning {
                max_codes,
                batch_rows: 500,
                ..Tuning::DEFAULT
            };
            let b = Buckets::split_with(df.clone().lazy(), 4, scratch.path(), tuning).unwrap();
            let (stored, back, names) = stored_and_read(&b);
            assert_eq!(stored.column("category").unwrap().dtype(), &category);
            assert_eq!(stored.column("channel").unwrap().dtype(), &DataType::UInt32);
            assert!(stored.column("customer_id").is_err(), "customer ids packed");
            assert_eq!(stored.column("order_id").is_err(), packed_orders);
            assert_eq!(names, df.get_column_names_owned());
            assert!(back.equals_missing(&sort(df.clone().lazy())));
        }
    }

    /// Bucket 1's first scratch file, all the buckets' rows read back (sorted), and the
    /// columns' names as read.
    fn stored_and_read(b: &Buckets) -> (DataFrame, DataFrame, Vec<PlSmallStr>) {
        let file = std::fs::read_dir(b.scratch_dir().unwrap().join("bucket=1"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let stored = ParquetReader::new(std::fs::File::open(file).unwrap())
            .finish()
            .unwrap();
        let mut parts = Vec::new();
        let mut names = Vec::new();
        for i in 0..b.len() {
            if let Some(part) = b.read(i).unwrap() {
                let part = b.strings(part).unwrap();
                assert_eq!(part.column("category").unwrap().dtype(), &DataType::String);
                names = part.get_column_names_owned();
                parts.push(part.lazy());
            }
        }
        (
            stored,
            sort(concat(parts, Default::default()).unwrap()),
            names,
        )
    }

    fn sort(lf: LazyFrame) -> DataFrame {
        lf.select([
            col("customer_id"),
            col("amount"),
            col("category"),
            col("channel"),
        ])
        .sort(["amount"], Default::default())
        .collect()
        .unwrap()
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
        let b = Buckets::split(df.lazy(), 2, scratch.path(), ScratchIo::Direct).unwrap();
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
        split_keeps_rows(ScratchIo::Direct, false);
    }

    /// The same through the page cache, and with every bucket read ahead.
    #[test]
    fn split_keeps_rows_buffered_and_read_ahead() {
        split_keeps_rows(ScratchIo::Buffered, false);
        split_keeps_rows(ScratchIo::Direct, true);
    }

    fn split_keeps_rows(io: ScratchIo, ahead: bool) {
        let n = 2000;
        // Days with nulls, bunched (a batch's bitmap) and far apart (a set).
        let day = |i: usize| match i % 10 {
            0 => None,
            9 if i > 1500 => Some(-20_000_000 + (i / 10) as i32),
            _ => Some(19_000 + (i % 37) as i32),
        };
        let df = df!(
            "customer_id" => (0..n).map(|i| format!("c{}", i % 137)).collect::<Vec<_>>(),
            "amount" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
            "day" => (0..n).map(day).collect::<Vec<_>>(),
        )
        .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        // Batches of 100 rows, files every 4 KB (about 3 batches): several files per bucket.
        let tuning = Tuning {
            batch_rows: 100,
            flush_bytes: 4096,
            io,
            ..Tuning::DEFAULT
        };
        let b = Buckets::split_with(df.lazy(), 5, scratch.path(), tuning).unwrap();
        assert_eq!(b.len(), 5);
        if ahead {
            (0..b.len() + 1).for_each(|i| b.prefetch(i));
        }
        let files = std::fs::read_dir(b.scratch_dir().unwrap().join("bucket=0"))
            .unwrap()
            .count();
        assert!(files >= 5, "{files} files in bucket 0");
        let mut total = 0;
        let mut seen = std::collections::HashMap::new();
        for i in 0..b.len() {
            let Some(part) = b.read(i).unwrap() else {
                continue;
            };
            total += part.height();
            // A customer's rows keep their source order inside a bucket.
            let amounts = part.column("amount").unwrap().f64().unwrap();
            let mut last = std::collections::HashMap::new();
            for (c, a) in part
                .column("customer_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .zip(amounts.iter())
            {
                let (c, a) = (c.unwrap().to_string(), a.unwrap());
                let prev = seen.insert(c.clone(), i);
                assert!(prev.is_none_or(|p| p == i), "customer in two buckets");
                let before = last.insert(c, a);
                assert!(
                    before.is_none_or(|b| b < a),
                    "a customer's rows out of order"
                );
            }
        }
        // Each file's rows are grouped by the top bits of the bucket phase's customer key.
        for file in std::fs::read_dir(b.scratch_dir().unwrap().join("bucket=0")).unwrap() {
            let mut rows = ParquetReader::new(std::fs::File::open(file.unwrap().path()).unwrap())
                .finish()
                .unwrap();
            // The ids are stored as their views' halves ([`crate::inline_ids`]).
            let [lo, hi] = halves("customer_id");
            let ids = crate::inline_ids::join(
                "customer_id".into(),
                rows.column(lo.as_str()).unwrap().u64().unwrap(),
                rows.column(hi.as_str()).unwrap().u32().unwrap(),
            )
            .unwrap();
            rows.with_column(ids.into_column()).unwrap();
            let bits = (rows.height() / ROWS_PER_GROUP)
                .max(1)
                .next_power_of_two()
                .trailing_zeros();
            let key = rows
                .lazy()
                .select([crate::summary::customer_hash()])
                .collect()
                .unwrap();
            let groups: Vec<u64> = key
                .column("customer_id")
                .unwrap()
                .u64()
                .unwrap()
                .into_no_null_iter()
                .map(|h| if bits == 0 { 0 } else { h >> (64 - bits) })
                .collect();
            assert!(groups.windows(2).all(|w| w[0] <= w[1]), "{groups:?}");
        }
        assert_eq!(total, n);
        assert_eq!(seen.len(), 137);
        let mut days: Vec<i32> = (0..n).filter_map(day).collect();
        days.sort_unstable();
        days.dedup();
        assert_eq!(b.days(), Some(days.as_slice()));
        let dir = b.scratch_dir().unwrap().to_path_buf();
        drop(b);
        assert!(!dir.exists(), "scratch is removed");
    }
}
