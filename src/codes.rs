//! Codes for the distinct strings of an arrow string array, numbered in order of first
//! appearance: a hash map keyed by the string itself, packed into 16 bytes when it is short
//! (up to 12 bytes, as arrow's string views inline it), so that the usual short categories,
//! channels and regions cost one integer hash each.

use polars::prelude::PlHashMap;
use polars_arrow::array::Utf8ViewArray;

/// The codes given so far.
#[derive(Debug, Default)]
pub(crate) struct StringCodes<'a> {
    /// The last codes looked up by short key, direct-mapped ([`CACHE_SLOTS`] slots, empty
    /// until the first short string): the columns coded are low-cardinality, so nearly every
    /// lookup is one compare here instead of a hash-map probe (the map lookups were 3 % of a
    /// 50 M-row run, mostly coding the category and channel columns of the scratch files).
    cache: Vec<(u128, u32)>,
    short: PlHashMap<u128, u32>,
    long: PlHashMap<&'a str, u32>,
    values: Vec<&'a str>,
}

/// Strings up to this many bytes are keyed by [`packed`].
const SHORT: usize = 12;

/// Slots of [`StringCodes`]' cache (a power of two).
const CACHE_SLOTS: usize = 64;

/// No short key: its length field (the low 32 bits) would be 2³² − 1.
const NO_KEY: u128 = u128::MAX;

/// The cache slot of a short key.
#[inline]
fn slot(k: u128) -> usize {
    let h = (k as u64 ^ (k >> 64) as u64 ^ (k >> 32) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
}

/// The length and bytes of a short string in one integer: equal only for equal strings.
fn packed(s: &str) -> u128 {
    let mut buf = [0u8; 16];
    buf[..4].copy_from_slice(&(s.len() as u32).to_le_bytes());
    buf[4..4 + s.len()].copy_from_slice(s.as_bytes());
    u128::from_le_bytes(buf)
}

/// [`packed`] of the short string `i` of `strings`, read from its view: on a little-endian
/// machine a view's 16 bytes are the length, then the string (when it is inline), so the key
/// is the view with the bytes after the string cleared (polars' arrays keep them zero: its
/// validation rejects a view with non-zero padding; the mask costs nothing).
#[inline]
pub(crate) fn short_key(strings: &Utf8ViewArray, i: usize) -> u128 {
    if cfg!(target_endian = "little") {
        let view = strings.views()[i];
        let bits = 32 + 8 * view.length as usize;
        match bits < 128 {
            true => view.as_u128() & ((1u128 << bits) - 1),
            false => view.as_u128(),
        }
    } else {
        packed(strings.value(i))
    }
}

impl<'a> StringCodes<'a> {
    /// The code of value `i` of `strings` (whatever its validity), a new code numbered from 0
    /// for a string not seen before.
    #[inline]
    pub(crate) fn code(&mut self, strings: &'a Utf8ViewArray, i: usize) -> u32 {
        let next = self.values.len() as u32;
        let code = match strings.views()[i].length as usize <= SHORT {
            true => {
                let k = short_key(strings, i);
                if self.cache.is_empty() {
                    self.cache = vec![(NO_KEY, 0); CACHE_SLOTS];
                }
                let at = slot(k);
                if self.cache[at].0 == k {
                    return self.cache[at].1;
                }
                let code = *self.short.entry(k).or_insert(next);
                self.cache[at] = (k, code);
                code
            }
            false => *self.long.entry(strings.value(i)).or_insert(next),
        };
        if code == next {
            self.values.push(strings.value(i));
        }
        code
    }

    /// The distinct strings, by code.
    pub(crate) fn values(&self) -> &[&'a str] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_a_code_and_others_do_not() {
        let words = [
            "a",
            "",
            "b",
            "a",
            "abcdefghijkl",
            "abcdefghijklm",
            "abcdefghijkl",
            "a\0",
            "",
            "abcdefghijklm",
            "b",
        ];
        let arr = Utf8ViewArray::from_slice_values(words);
        let mut codes = StringCodes::default();
        let got: Vec<u32> = (0..words.len()).map(|i| codes.code(&arr, i)).collect();
        assert_eq!(got, [0, 1, 2, 0, 3, 4, 3, 5, 1, 4, 2]);
        assert_eq!(
            codes.values(),
            ["a", "", "b", "abcdefghijkl", "abcdefghijklm", "a\0"]
        );
    }

    #[test]
    fn codes_survive_cache_evictions() {
        // More distinct short strings than cache slots, revisited in another order: every
        // lookup, hit or miss, gives the code of the string's first appearance.
        let words: Vec<String> = (0..1000)
            .map(|i| format!("w{}", (i * 7919) % 300))
            .collect();
        let refs: Vec<&str> = words.iter().map(|w| w.as_str()).collect();
        let arr = Utf8ViewArray::from_slice_values(&refs);
        let mut codes = StringCodes::default();
        let mut first: std::collections::HashMap<&str, u32> = Default::default();
        for (i, w) in words.iter().enumerate() {
            let n = first.len() as u32;
            let want = *first.entry(w.as_str()).or_insert(n);
            assert_eq!(codes.code(&arr, i), want, "{w}");
        }
        assert_eq!(codes.values().len(), 300);
    }
}
