//! Id columns on scratch as two integers per value: the split writes a string column whose
//! values all fit in a string view (up to 12 bytes, as customer and order ids usually do, and
//! not ending in a NUL byte) as the value's first 8 bytes and next 4, zero-padded (a `u64`
//! and a `u32`), and the bucket phase builds the views back from them ([`join`]).
//!
//! A short string's view holds its length and bytes, so these are the value itself: written
//! as plain integers they are copied, not parsed, and the length is where the zero padding
//! starts. As strings, the split had to count every value's bytes before writing it (polars'
//! writer sizes its buffers by them), and the bucket phase decoded each value's length and
//! bytes into a new view, then copied the views of a bucket's files into one array: together
//! the largest steps left in reading the scratch back (measured on the 50 M-row workload). 12
//! bytes a value is what a 12-byte id took as a string (8 bytes and a length), and ids of up
//! to 8 bytes leave the `u32` zero, which the scratch encoding turns into a few bytes per
//! page: in this VM's kernel every byte written to scratch costs about 3 ns of copying.

use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray, Utf8ViewArray, View};

/// The high bit of each of a view's 12 string bytes (the bits above its length field).
const ASCII_HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080;

/// The 12 string bytes of a short string's view (its bits above the length field).
#[inline]
fn payload(view: &View) -> u128 {
    view.as_u128() >> 32
}

/// The length of a string whose zero-padded 12 bytes are `p`: up to its last non-zero byte.
#[inline]
fn length_of(p: u128) -> u32 {
    // `p` has at most 96 significant bits.
    (128 - p.leading_zeros()).div_ceil(8)
}

/// Each value's first 8 and next 4 bytes (a null is null in the first), or None when a
/// valid value is longer than a view holds or ends in a NUL byte (its length would be lost).
pub(crate) fn split(strings: &Utf8ViewArray) -> Option<(PrimitiveArray<u64>, PrimitiveArray<u32>)> {
    if cfg!(target_endian = "big") {
        return None;
    }
    let views = strings.views();
    let valid = strings.validity().filter(|v| v.unset_bits() > 0);
    let (mut lo, mut hi) = (vec![0u64; views.len()], vec![0u32; views.len()]);
    let mut bad = false;
    for (i, ((l, h), v)) in lo
        .iter_mut()
        .zip(hi.iter_mut())
        .zip(views.iter())
        .enumerate()
    {
        if valid.is_some_and(|valid| !valid.get_bit(i)) {
            // A null's view is whatever the array holds: written as zero.
            continue;
        }
        let p = payload(v);
        *l = p as u64;
        *h = (p >> 64) as u32;
        bad |= v.length > View::MAX_INLINE_SIZE || length_of(p) != v.length;
    }
    if bad {
        return None;
    }
    Some((
        PrimitiveArray::from_vec(lo).with_validity(strings.validity().cloned()),
        PrimitiveArray::from_vec(hi),
    ))
}

/// The strings whose bytes are `lo` and `hi` ([`split`]), as one chunk named `name`: null
/// where `lo` is.
///
/// # Errors
/// When the columns differ in length, `hi` has nulls, or the bytes are not UTF-8: they were
/// not written by [`split`].
pub(crate) fn join(
    name: PlSmallStr,
    lo: &UInt64Chunked,
    hi: &UInt32Chunked,
) -> PolarsResult<StringChunked> {
    polars_ensure!(
        lo.len() == hi.len(),
        ComputeError: "id halves of {name} differ in length ({} and {})", lo.len(), hi.len()
    );
    let mut views: Vec<View> = Vec::with_capacity(lo.len());
    let mut bytes = 0usize;
    let mut bad = false;
    let hi = hi.rechunk();
    let hi = hi
        .cont_slice()
        .map_err(|_| polars_err!(ComputeError: "id halves of {name}: the high half has nulls"))?;
    let mut at = 0;
    for arr in lo.downcast_iter() {
        let valid = arr.validity().filter(|v| v.unset_bits() > 0);
        for (i, &l) in arr.values().iter().enumerate() {
            let null = valid.is_some_and(|v| !v.get_bit(i));
            let p = match null {
                true => 0,
                false => u128::from(l) | (u128::from(hi[at + i]) << 64),
            };
            let len = length_of(p);
            let bits = (p << 32) | u128::from(len);
            // UTF-8: ASCII, as ids nearly always are, is seen from the bits at once.
            if p & (ASCII_HIGH_BITS >> 32) != 0 {
                let b = bits.to_le_bytes();
                bad |= std::str::from_utf8(&b[4..4 + len as usize]).is_err();
            }
            bytes += len as usize;
            // SAFETY: View is 16 bytes of plain integers (length, prefix, buffer index,
            // offset) laid out as the u128's bytes on this little-endian machine; `bits` is
            // an inline view (length at most 12, zero after the string).
            views.push(unsafe { std::mem::transmute::<u128, View>(bits) });
        }
        at += arr.len();
    }
    polars_ensure!(!bad, ComputeError: "id halves of {name} are not UTF-8");
    let validity = match lo.null_count() {
        0 => None,
        _ => Some(
            lo.rechunk()
                .downcast_as_array()
                .validity()
                .cloned()
                .expect("nulls have a validity"),
        ),
    };
    // SAFETY: every view is inline and holds UTF-8 bytes (checked above); no data buffers
    // are referenced.
    let arr = unsafe {
        Utf8ViewArray::new_unchecked(
            ArrowDataType::Utf8View,
            views.into(),
            Default::default(),
            validity,
            Some(bytes),
            0,
        )
    };
    Ok(StringChunked::with_chunk(name, arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_come_back_as_they_went_in() {
        let ids = [
            Some("C0423799"),
            None,
            Some(""),
            Some("O00006490208"),
            Some("é✓"),
            Some("a\0b"),
            Some("\0x"),
            Some("12345678"),
            Some("123456789"),
        ];
        let arr = Utf8ViewArray::from_slice(ids);
        let (lo, hi) = split(&arr).unwrap();
        // Ids of up to 8 bytes leave the second part zero.
        assert_eq!(hi.values()[0], 0);
        assert_eq!(hi.values()[7], 0);
        assert_ne!(hi.values()[8], 0);
        // Two chunks each side, split at different places.
        let lo =
            UInt64Chunked::from_chunk_iter("lo".into(), [lo.clone().sliced(0, 2), lo.sliced(2, 7)]);
        let hi =
            UInt32Chunked::from_chunk_iter("hi".into(), [hi.clone().sliced(0, 5), hi.sliced(5, 4)]);
        let back = join("id".into(), &lo, &hi).unwrap();
        assert_eq!(back.chunks().len(), 1);
        let got: Vec<Option<&str>> = back.iter().collect();
        assert_eq!(got, ids);
    }

    #[test]
    fn long_values_and_trailing_nul_bytes_are_not_split() {
        let arr = Utf8ViewArray::from_slice([Some("short"), Some("thirteen char")]);
        assert!(split(&arr).is_none());
        // A long value under a null slot does not count.
        let arr = arr.with_validity(Some([true, false].into_iter().collect()));
        assert!(split(&arr).is_some());
        // "ab\0" would come back as "ab".
        assert!(split(&Utf8ViewArray::from_slice_values(["ab", "ab\0"])).is_none());
    }

    #[test]
    fn columns_not_written_by_split_are_an_error() {
        let lo = UInt64Chunked::from_vec("lo".into(), vec![0x41]);
        let hi = UInt32Chunked::from_vec("hi".into(), vec![0]);
        assert_eq!(join("id".into(), &lo, &hi).unwrap().get(0), Some("A"));
        // Not UTF-8.
        let bad = UInt64Chunked::from_vec("lo".into(), vec![0xff]);
        assert!(join("id".into(), &bad, &hi).is_err());
        // Lengths differ; nulls in the second part.
        let two = UInt32Chunked::from_vec("hi".into(), vec![0, 0]);
        assert!(join("id".into(), &lo, &two).is_err());
        let null = UInt32Chunked::from_slice_options("hi".into(), &[None]);
        assert!(join("id".into(), &lo, &null).is_err());
    }
}
