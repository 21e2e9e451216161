//! Id columns on scratch as two integers per value: the split writes a string column whose
//! values all fit in a string view (up to 12 bytes, as customer and order ids usually do) as
//! the view's two 64-bit halves, and the bucket phase puts the views back together
//! ([`join`]).
//!
//! A short string's view holds its length and bytes, so the halves are the value itself:
//! written as plain integers they are copied, not parsed. As strings, the split had to count
//! every value's bytes before writing it (polars' writer sizes its buffers by them), and the
//! bucket phase decoded each value's length and bytes into a new view, then copied the views
//! of a bucket's files into one array: together the largest steps left in reading the
//! scratch back (measured on the 50 M-row workload).

use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray, Utf8ViewArray, View};

/// The high bit of each of a view's 12 string bytes (the bits above its length field).
const ASCII_HIGH_BITS: u128 = 0x8080_8080_8080_8080_8080_8080;

/// The halves of each view of `strings` (low, high; a null is null in the low half), or None
/// when a valid value is longer than a view holds.
pub(crate) fn split(strings: &Utf8ViewArray) -> Option<(PrimitiveArray<u64>, PrimitiveArray<u64>)> {
    if cfg!(target_endian = "big") {
        return None;
    }
    let views = strings.views();
    let (lo, hi): (Vec<u64>, Vec<u64>) = match strings.validity().filter(|v| v.unset_bits() > 0) {
        // No nulls (ids nearly never are): one pass.
        None => {
            let (mut lo, mut hi) = (vec![0u64; views.len()], vec![0u64; views.len()]);
            let mut long = false;
            for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(views.iter()) {
                let bits = v.as_u128();
                *l = bits as u64;
                *h = (bits >> 64) as u64;
                long |= v.length > View::MAX_INLINE_SIZE;
            }
            if long {
                return None;
            }
            (lo, hi)
        }
        Some(valid) => {
            let (mut lo, mut hi) = (
                Vec::with_capacity(views.len()),
                Vec::with_capacity(views.len()),
            );
            for (view, ok) in views.iter().zip(valid.iter()) {
                if ok && view.length > View::MAX_INLINE_SIZE {
                    return None;
                }
                // A null's view is whatever the array holds: written as zero.
                let bits = if ok { view.as_u128() } else { 0 };
                lo.push(bits as u64);
                hi.push((bits >> 64) as u64);
            }
            (lo, hi)
        }
    };
    Some((
        PrimitiveArray::from_vec(lo).with_validity(strings.validity().cloned()),
        PrimitiveArray::from_vec(hi),
    ))
}

/// The strings whose views' halves are `lo` and `hi` ([`split`]), as one chunk named `name`:
/// null where `lo` is.
///
/// # Errors
/// When the halves differ in length, or a view is not a short string's (a length above 12,
/// or bytes after the string): the columns were not written by [`split`].
pub(crate) fn join(
    name: PlSmallStr,
    lo: &UInt64Chunked,
    hi: &UInt64Chunked,
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
            let bits = match null {
                true => 0,
                false => u128::from(l) | (u128::from(hi[at + i]) << 64),
            };
            let len = bits as u32;
            // A short string's view: at most 12 bytes, zero after them, UTF-8 (ASCII, as ids
            // nearly always are, is seen from the bits at once).
            let used = 32 + 8 * len.min(12);
            bad |= len > View::MAX_INLINE_SIZE || (used < 128 && bits >> used != 0);
            if (bits >> 32) & ASCII_HIGH_BITS != 0 && !bad {
                let b = bits.to_le_bytes();
                bad |= std::str::from_utf8(&b[4..4 + len as usize]).is_err();
            }
            bytes += len as usize;
            // SAFETY: View is 16 bytes of plain integers (length, prefix, buffer index,
            // offset) laid out as the u128's bytes on this little-endian machine.
            views.push(unsafe { std::mem::transmute::<u128, View>(bits) });
        }
        at += arr.len();
    }
    polars_ensure!(!bad, ComputeError: "id halves of {name} do not hold short UTF-8 strings");
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
    // SAFETY: every view is inline (checked above) and holds the bytes of a valid string
    // written by `split`; no data buffers are referenced.
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
        ];
        let arr = Utf8ViewArray::from_slice(ids);
        let (lo, hi) = split(&arr).unwrap();
        // Two chunks each side, split at different places.
        let lo =
            UInt64Chunked::from_chunk_iter("lo".into(), [lo.clone().sliced(0, 2), lo.sliced(2, 4)]);
        let hi =
            UInt64Chunked::from_chunk_iter("hi".into(), [hi.clone().sliced(0, 5), hi.sliced(5, 1)]);
        let back = join("id".into(), &lo, &hi).unwrap();
        assert_eq!(back.chunks().len(), 1);
        let got: Vec<Option<&str>> = back.iter().collect();
        assert_eq!(got, ids);
    }

    #[test]
    fn a_long_value_is_not_split() {
        let arr = Utf8ViewArray::from_slice([Some("short"), Some("thirteen char")]);
        assert!(split(&arr).is_none());
        // A long value under a null slot does not count.
        let arr = arr.with_validity(Some([true, false].into_iter().collect()));
        assert!(split(&arr).is_some());
    }

    #[test]
    fn halves_that_are_not_short_strings_are_an_error() {
        let lo = UInt64Chunked::from_vec("lo".into(), vec![13]);
        let hi = UInt64Chunked::from_vec("hi".into(), vec![0]);
        assert!(join("id".into(), &lo, &hi).is_err());
        // Length 1 with a byte after the string.
        let lo = UInt64Chunked::from_vec("lo".into(), vec![1 | (0x4141 << 32)]);
        assert!(join("id".into(), &lo, &hi).is_err());
        // Length 1, not UTF-8.
        let lo = UInt64Chunked::from_vec("lo".into(), vec![1 | (0xff << 32)]);
        assert!(join("id".into(), &lo, &hi).is_err());
    }
}
