//! Scratch files written and read past the page cache (`O_DIRECT`), where the file system
//! allows it.
//!
//! Scratch files are written once and read back once by the same run, then deleted. Through
//! the page cache every byte is copied into a cache page the kernel must first allocate, and
//! those pages count as the run's memory (a container's memory limit includes its page
//! cache): on the 50 M-row workload 1.87 GB of cache for the scratch beside the process's own
//! 2.5 GB. With direct I/O the bytes go from the run's own (reused) buffers to the disk and
//! back, and the cache holds none of them. On this project's machine (a virtual machine whose
//! host takes freed memory back within seconds) allocating cache pages was most of the cost:
//! writing 2 GB took 3.4–5.3 s of kernel time buffered and 0.2 s direct (`dd`, 1.3 GB/s), and
//! reading it back direct 2.1 GB/s. On a slow disk (a network volume) direct I/O waits for the
//! disk where buffered writes would not: [`ScratchIo::Buffered`] (`--scratch-io buffered`)
//! keeps the page cache.
//!
//! A file system that refuses `O_DIRECT` (tmpfs, some network file systems) gets buffered I/O,
//! file by file, silently: the bytes are the same either way.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// How scratch files are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScratchIo {
    /// `O_DIRECT` where the file system allows it, else buffered.
    #[default]
    Direct,
    /// Through the page cache.
    Buffered,
}

/// Alignment of direct I/O's buffers, offsets and lengths (the largest logical block size of
/// common devices).
const ALIGN: usize = 4096;

/// Bytes written per `write` call through the aligned bounce buffer.
const CHUNK: usize = 1 << 22;

/// A heap buffer aligned to [`ALIGN`], of which the first `len` bytes are valid.
pub(crate) struct Aligned {
    ptr: std::ptr::NonNull<u8>,
    capacity: usize,
    len: usize,
}

// SAFETY: `Aligned` owns its allocation exclusively, like a `Vec<u8>`.
unsafe impl Send for Aligned {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for Aligned {}

impl Aligned {
    /// A buffer of `capacity` bytes (rounded up to [`ALIGN`], at least one block), zeroed
    /// or not, `len` 0.
    fn new(capacity: usize, zeroed: bool) -> Aligned {
        let capacity = capacity.max(1).next_multiple_of(ALIGN);
        let layout = Self::layout(capacity);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe {
            match zeroed {
                true => std::alloc::alloc_zeroed(layout),
                false => std::alloc::alloc(layout),
            }
        };
        let Some(ptr) = std::ptr::NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        Aligned {
            ptr,
            capacity,
            len: 0,
        }
    }

    fn layout(capacity: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(capacity, ALIGN).expect("a valid buffer layout")
    }

    /// The whole allocation, of a buffer made zeroed.
    fn spare(&mut self) -> &mut [u8] {
        // SAFETY: only called on buffers allocated zeroed: `capacity` initialised bytes.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity) }
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len <= capacity` bytes of the allocation are initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.capacity)) }
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path, write: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    if write {
        o.write(true).create(true).truncate(true);
    } else {
        o.read(true);
    }
    o.custom_flags(libc::O_DIRECT).open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path, _write: bool) -> io::Result<File> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Whether an error says the file system does not do direct I/O (so buffered I/O is tried).
fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL) || e.kind() == io::ErrorKind::Unsupported
}

thread_local! {
    /// Each thread's bounce buffer for direct writes (reused, so its pages are touched once).
    static BOUNCE: std::cell::RefCell<Option<Aligned>> = const { std::cell::RefCell::new(None) };
}

/// A file's bytes as pieces in order: an encoder's page buffers as it made them and the bytes
/// between them. They are written piece by piece and never first copied into one buffer of
/// the whole file: on this machine the fresh memory for such a buffer was the cost (the
/// 50 M-row workload's `customer_features`, 312 MB: 1.45 s on one core, 1.1 s of it the
/// kernel clearing new pages).
#[derive(Clone, Debug, Default)]
pub(crate) struct Pieces {
    pieces: Vec<bytes::Bytes>,
    len: usize,
}

impl Pieces {
    /// Appends `piece` (an empty one is left out).
    pub(crate) fn push(&mut self, piece: bytes::Bytes) {
        if !piece.is_empty() {
            self.len += piece.len();
            self.pieces.push(piece);
        }
    }

    /// The file's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The pieces, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().map(|b| &b[..])
    }

    /// The whole file in one buffer.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for piece in self.iter() {
            out.extend_from_slice(piece);
        }
        out
    }

    /// The pieces as an object store's upload body (no copy).
    pub(crate) fn to_payload(&self) -> object_store::PutPayload {
        self.pieces.iter().cloned().collect()
    }
}

impl From<Vec<u8>> for Pieces {
    fn from(bytes: Vec<u8>) -> Pieces {
        let mut p = Pieces::default();
        p.push(bytes.into());
        p
    }
}

/// Writes `data` as the file `path` (created or truncated).
pub(crate) fn write(path: &Path, data: &Pieces, io: ScratchIo) -> io::Result<()> {
    if io == ScratchIo::Direct {
        match write_direct(path, data) {
            Err(e) if refused(&e) => {}
            done => return done,
        }
    }
    let mut f = File::create(path)?;
    for piece in data.iter() {
        f.write_all(piece)?;
    }
    Ok(())
}

/// [`write`] with `O_DIRECT`: whole aligned blocks from a bounce buffer, the last one padded
/// with zeros, then the file cut to its length.
fn write_direct(path: &Path, data: &Pieces) -> io::Result<()> {
    let mut f = open_direct(path, true)?;
    BOUNCE.with(|cell| -> io::Result<()> {
        let mut slot = cell.borrow_mut();
        let spare = slot
            .get_or_insert_with(|| Aligned::new(CHUNK, true))
            .spare();
        let mut filled = 0;
        for mut piece in data.iter() {
            while !piece.is_empty() {
                let n = piece.len().min(CHUNK - filled);
                spare[filled..filled + n].copy_from_slice(&piece[..n]);
                filled += n;
                piece = &piece[n..];
                if filled == CHUNK {
                    f.write_all(&spare[..CHUNK])?;
                    filled = 0;
                }
            }
        }
        if filled > 0 {
            let padded = filled.next_multiple_of(ALIGN);
            spare[filled..padded].fill(0);
            f.write_all(&spare[..padded])?;
        }
        Ok(())
    })?;
    if !data.len().is_multiple_of(ALIGN) {
        f.set_len(data.len() as u64)?;
    }
    Ok(())
}

/// The bytes of the file `path`, in a buffer polars can read from without a copy.
pub(crate) fn read(path: &Path, io: ScratchIo) -> io::Result<polars_buffer::Buffer<u8>> {
    if io == ScratchIo::Direct {
        match read_direct(path) {
            Err(e) if refused(&e) => {}
            done => return done.map(polars_buffer::Buffer::from_owner),
        }
    }
    std::fs::read(path).map(polars_buffer::Buffer::from_vec)
}

/// [`read`] with `O_DIRECT`, into an aligned buffer (not zeroed first: the kernel writes
/// every byte that is then read).
#[cfg(target_os = "linux")]
fn read_direct(path: &Path) -> io::Result<Aligned> {
    use std::os::fd::AsRawFd;
    let f = open_direct(path, false)?;
    let len = usize::try_from(f.metadata()?.len()).map_err(io::Error::other)?;
    let mut buf = Aligned::new(len, false);
    let mut at = 0;
    while at < len {
        // Whole blocks from an aligned offset: the last read stops at the end of the file.
        let end = (at + CHUNK).min(len.next_multiple_of(ALIGN));
        // SAFETY: `at..end` lies inside the allocation (`end <= capacity`); the kernel writes
        // at most `end - at` bytes there.
        let n = unsafe {
            libc::pread(
                f.as_raw_fd(),
                buf.ptr.as_ptr().add(at).cast(),
                end - at,
                at as libc::off_t,
            )
        };
        match n {
            0 => break,
            n if n > 0 => at += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
        if !at.is_multiple_of(ALIGN) && at < len {
            return Err(io::Error::other(format!(
                "{}: a direct read stopped at byte {at} of {len}",
                path.display()
            )));
        }
    }
    if at < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{}: {at} of {len} bytes read", path.display()),
        ));
    }
    // The first `len` bytes were written by the reads above.
    buf.len = len;
    Ok(buf)
}

#[cfg(not(target_os = "linux"))]
fn read_direct(_path: &Path) -> io::Result<Aligned> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` cut into pieces of the given lengths in turn (the last piece takes the rest).
    fn cut(bytes: &[u8], lengths: &[usize]) -> Pieces {
        let mut pieces = Pieces::default();
        let (mut at, mut k) = (0, 0);
        while at < bytes.len() {
            let n = lengths[k % lengths.len()].min(bytes.len() - at);
            pieces.push(bytes::Bytes::copy_from_slice(&bytes[at..at + n]));
            at += n;
            k += 1;
        }
        pieces
    }

    /// Files of every length around the block and chunk sizes come back byte for byte, written
    /// and read either way and across the two ways, whole or in pieces that straddle the
    /// bounce buffer's chunks.
    #[test]
    fn bytes_come_back_whatever_the_length_and_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let lengths = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 3 * ALIGN + 17,
        ];
        for (k, &len) in lengths.iter().enumerate() {
            let bytes: Vec<u8> = (0..len)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
                .collect();
            let ways = [
                Pieces::from(bytes.clone()),
                cut(&bytes, &[1, ALIGN - 1, 17, CHUNK - 5, 3 * ALIGN]),
            ];
            for (w, data) in [ScratchIo::Direct, ScratchIo::Buffered]
                .into_iter()
                .flat_map(|w| ways.iter().map(move |d| (w, d)))
            {
                assert_eq!(data.len(), len);
                assert_eq!(data.to_vec(), bytes);
                let path = dir
                    .path()
                    .join(format!("f{k}-{w:?}-{}", data.iter().count()));
                write(&path, data, w).unwrap();
                assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
                for r in [ScratchIo::Direct, ScratchIo::Buffered] {
                    let back = read(&path, r).unwrap();
                    assert_eq!(
                        back.as_slice(),
                        &bytes[..],
                        "length {len}, {w:?} then {r:?}"
                    );
                }
            }
        }
    }

    /// On tmpfs (`/dev/shm`, where the machine has it): before Linux 6.6 it refuses
    /// `O_DIRECT` and the bytes go through the fallback; since, through direct I/O. Either
    /// way they come back the same.
    #[test]
    fn a_file_system_without_direct_io_falls_back() {
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3 * ALIGN + 11).map(|i| i as u8).collect();
        write(&path, &cut(&bytes, &[5, ALIGN]), ScratchIo::Direct).unwrap();
        assert_eq!(
            read(&path, ScratchIo::Direct).unwrap().as_slice(),
            &bytes[..]
        );
    }

    /// A rewrite truncates: a shorter file after a longer one has the shorter length.
    #[test]
    fn a_rewrite_replaces_a_longer_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, &vec![7u8; 3 * ALIGN + 5].into(), ScratchIo::Direct).unwrap();
        write(&path, &b"short".to_vec().into(), ScratchIo::Direct).unwrap();
        assert_eq!(read(&path, ScratchIo::Direct).unwrap().as_slice(), b"short");
    }

    /// A missing file is an error, not an empty buffer.
    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for io in [ScratchIo::Direct, ScratchIo::Buffered] {
            let e = read(&dir.path().join("absent"), io).err().unwrap();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        }
    }
}
