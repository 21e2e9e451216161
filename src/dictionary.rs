//! Dictionaries for the split's low-cardinality string columns (category, channel, region,
//! industry): the split writes each such column to scratch as `UInt32` codes, numbered in
//! order of first appearance over the whole split, and the bucket phase reads them back as
//! strings again ([`Decoder::decode`]), views copied from one small table.
//!
//! A code is 4 bytes where a string view is 16: the split's gathers and concatenations of those
//! columns move a quarter of the bytes, and the scratch files hold small integers instead of
//! strings (measured on the 50 M-row workload, where category and channel were half of the
//! split's string gathers and concatenations). Decoding costs one 16-byte copy per row, from a
//! table of at most [`MAX_CODES`] views that stays in cache.

use crate::codes::short_key;
use polars::prelude::{polars_ensure, PlHashMap, PolarsResult};
use polars_arrow::array::{Array, PrimitiveArray, Utf8ViewArray, View};

/// Distinct values a column may have to be coded: more, and the split writes it as strings
/// (its dictionary would no longer be small; the split starts again without coding it).
pub(crate) const MAX_CODES: usize = 1 << 20;

/// Slots of the direct-mapped cache in front of the map (a power of two): the coded columns
/// are low-cardinality, so nearly every row is one compare there.
const CACHE_SLOTS: usize = 1024;

/// An empty cache slot: no short key has length 2³² − 1.
const NO_KEY: u128 = u128::MAX;

/// The codes given so far to one column's strings.
#[derive(Debug)]
pub(crate) struct Encoder {
    cache: Vec<(u128, u32)>,
    /// Strings of up to 12 bytes, keyed by their view ([`short_key`]).
    short: PlHashMap<u128, u32>,
    long: PlHashMap<Box<str>, u32>,
    values: Vec<Box<str>>,
    /// At most this many distinct values.
    max: usize,
}

/// The column had more distinct values than the encoder's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyValues;

impl Default for Encoder {
    /// An encoder of up to [`MAX_CODES`] values.
    fn default() -> Self {
        Encoder::with_max(MAX_CODES)
    }
}

#[inline]
fn slot(k: u128) -> usize {
    let h = (k as u64 ^ (k >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> (64 - CACHE_SLOTS.trailing_zeros())) as usize & (CACHE_SLOTS - 1)
}

impl Encoder {
    /// An encoder of up to `max` distinct values.
    pub(crate) fn with_max(max: usize) -> Encoder {
        Encoder {
            cache: vec![(NO_KEY, 0); CACHE_SLOTS],
            short: PlHashMap::default(),
            long: PlHashMap::default(),
            values: Vec::new(),
            max,
        }
    }

    /// The codes of `strings` (a null stays null), new strings numbered on from the codes
    /// given so far.
    pub(crate) fn encode(
        &mut self,
        strings: &Utf8ViewArray,
    ) -> Result<PrimitiveArray<u32>, TooManyValues> {
        let mut out = vec![0u32; strings.len()];
        let valid = strings.validity().filter(|v| v.unset_bits() > 0);
        for (i, (code, view)) in out.iter_mut().zip(strings.views().iter()).enumerate() {
            if valid.is_some_and(|v| !v.get_bit(i)) {
                continue;
            }
            // The cache is keyed by the whole view of a short string: its padding is zero in
            // polars' arrays, and were it not, the lookup would miss and go to the map, keyed
            // by the string alone.
            if view.length <= View::MAX_INLINE_SIZE {
                let k = view.as_u128();
                let (key, c) = self.cache[slot(k)];
                if key == k {
                    *code = c;
                    continue;
                }
            }
            *code = self.lookup(strings, i)?;
        }
        Ok(PrimitiveArray::from_vec(out).with_validity(strings.validity().cloned()))
    }

    /// The code of the valid value `i` of `strings`, from the maps: a new one when it was not
    /// seen before.
    #[cold]
    #[inline(never)]
    fn lookup(&mut self, strings: &Utf8ViewArray, i: usize) -> Result<u32, TooManyValues> {
        let next = self.values.len() as u32;
        let code = match strings.views()[i].length <= View::MAX_INLINE_SIZE {
            true => {
                let k = short_key(strings, i);
                let code = *self.short.entry(k).or_insert(next);
                self.cache[slot(k)] = (k, code);
                code
            }
            false => {
                let s = strings.value(i);
                match self.long.get(s) {
                    Some(&c) => c,
                    None => {
                        self.long.insert(s.into(), next);
                        next
                    }
                }
            }
        };
        if code == next {
            if self.values.len() >= self.max {
                return Err(TooManyValues);
            }
            self.values.push(strings.value(i).into());
        }
        Ok(code)
    }

    /// The decoder of the codes given.
    pub(crate) fn decoder(&self) -> Decoder {
        Decoder(Utf8ViewArray::from_slice_values(&self.values))
    }
}

/// The strings of one column's codes: the distinct values, by code.
#[derive(Debug, Clone)]
pub(crate) struct Decoder(Utf8ViewArray);

impl Decoder {
    /// The strings of `codes` (a null stays null).
    ///
    /// # Errors
    /// A valid code with no string: the codes were not this dictionary's (a scratch file not
    /// written by this split).
    pub(crate) fn decode(&self, codes: &PrimitiveArray<u32>) -> PolarsResult<Utf8ViewArray> {
        let table = self.0.views();
        let empty = View::default();
        let mut unknown = false;
        let mut view = |c: u32| match table.get(c as usize) {
            Some(v) => *v,
            None => {
                unknown = true;
                empty
            }
        };
        let views: Vec<View> = match codes.validity().filter(|v| v.unset_bits() > 0) {
            None => codes.values().iter().map(|&c| view(c)).collect(),
            Some(valid) => codes
                .values()
                .iter()
                .zip(valid.iter())
                .map(|(&c, ok)| if ok { view(c) } else { empty })
                .collect(),
        };
        polars_ensure!(
            !unknown,
            ComputeError: "a scratch code has no string in its dictionary ({} values): the scratch files were not written by this run",
            table.len()
        );
        let bytes = views.iter().map(|v| v.length as usize).sum();
        // SAFETY: every view is one of the dictionary's own (valid UTF-8, in its buffers) or
        // the empty string (a null's).
        Ok(unsafe {
            Utf8ViewArray::new_unchecked(
                self.0.dtype().clone(),
                views.into(),
                self.0.data_buffers().clone(),
                codes.validity().cloned(),
                Some(bytes),
                self.0.total_buffer_len(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(chunks: &[Vec<Option<&str>>]) -> (Vec<Vec<Option<String>>>, usize) {
        let mut enc = Encoder::default();
        let coded: Vec<PrimitiveArray<u32>> = chunks
            .iter()
            .map(|c| enc.encode(&Utf8ViewArray::from_slice(c)).unwrap())
            .collect();
        let dec = enc.decoder();
        let back = coded
            .iter()
            .map(|c| {
                dec.decode(c)
                    .unwrap()
                    .iter()
                    .map(|s| s.map(String::from))
                    .collect::<Vec<_>>()
            })
            .collect();
        (back, enc.values.len())
    }

    #[test]
    fn strings_come_back_as_they_went_in() {
        let long = "a category name longer than twelve bytes";
        let chunks = vec![
            vec![Some("cat01"), None, Some(""), Some(long), Some("cat01")],
            vec![
                Some(long),
                Some("x\0"),
                None,
                Some("abcdefghijkl"),
                Some("abcdefghijklm"),
            ],
            vec![None, None],
            vec![],
        ];
        let (back, distinct) = round_trip(&chunks);
        let want: Vec<Vec<Option<String>>> = chunks
            .iter()
            .map(|c| c.iter().map(|s| s.map(String::from)).collect())
            .collect();
        assert_eq!(back, want);
        assert_eq!(distinct, 6);
    }

    #[test]
    fn codes_are_shared_across_arrays_and_survive_cache_evictions() {
        // More distinct short strings than cache slots, revisited in another order.
        let words: Vec<String> = (0..5000)
            .map(|i| format!("w{}", (i * 7919) % 3000))
            .collect();
        let a = Utf8ViewArray::from_slice_values(&words[..2500]);
        let b = Utf8ViewArray::from_slice_values(&words[2500..]);
        let mut enc = Encoder::default();
        let (ca, cb) = (enc.encode(&a).unwrap(), enc.encode(&b).unwrap());
        let mut first: std::collections::HashMap<&str, u32> = Default::default();
        let got: Vec<u32> = ca
            .values()
            .iter()
            .chain(cb.values().iter())
            .copied()
            .collect();
        for (w, c) in words.iter().zip(got) {
            let n = first.len() as u32;
            assert_eq!(c, *first.entry(w.as_str()).or_insert(n), "{w}");
        }
        assert_eq!(enc.values.len(), 3000);
    }

    #[test]
    fn a_code_without_a_string_is_an_error() {
        let mut enc = Encoder::default();
        enc.encode(&Utf8ViewArray::from_slice_values(["a", "b"]))
            .unwrap();
        let dec = enc.decoder();
        assert!(dec.decode(&PrimitiveArray::from_vec(vec![1u32, 0])).is_ok());
        assert!(dec
            .decode(&PrimitiveArray::from_vec(vec![1u32, 2]))
            .is_err());
        // Under a null, any code is fine.
        let masked = PrimitiveArray::from_vec(vec![1u32, 2])
            .with_validity(Some([true, false].into_iter().collect()));
        assert!(dec.decode(&masked).is_ok());
    }

    #[test]
    fn too_many_distinct_values_are_refused() {
        let mut enc = Encoder::with_max(1000);
        let words: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        enc.encode(&Utf8ViewArray::from_slice_values(&words))
            .unwrap();
        let again = Utf8ViewArray::from_slice_values(["v7", "v0"]);
        assert!(enc.encode(&again).is_ok(), "known values still code");
        let new = Utf8ViewArray::from_slice_values(["v7", "a new one"]);
        assert_eq!(enc.encode(&new).unwrap_err(), TooManyValues);
    }
}
