//! The `categories` column: distinct categories a customer bought in a window, counted from one
//! customer bucket's categories per customer and day.
//!
//! A bucket's categories are coded once ([`CategoryDays::from_rows`]); each as-of date then
//! counts them in one pass ([`CategoryDays::counts`]). With at most 64 distinct categories in
//! the bucket and the rows' (key, day) order at hand, each customer day holds one bit per
//! category and a window's count is the popcount of their union; otherwise the distinct
//! (key, category, day) triples are sorted and counted. polars' per-date group-by with a
//! distinct count of strings was the larger part of a backfill's per-date, per-bucket summary
//! (measured: 4.5 of 7 s over 12 month-ends of the 10 M-row workload). The same counts come
//! from [`crate::summary::daily_categories`] and [`crate::summary::category_counts`], which stay
//! for keys that are not 64-bit hashes; a test holds the paths equal.

use polars::prelude::*;
use polars_arrow::array::Array;

/// One bucket's categories per customer and day.
#[derive(Debug, Clone)]
pub(crate) struct CategoryDays(Coded);

#[derive(Debug, Clone)]
enum Coded {
    /// (customer key, biased day, one bit per category code), sorted by key and day: for
    /// buckets of at most 64 distinct categories whose rows come with their (key, day) order
    /// (no sort here, and one entry per customer day rather than per category).
    Masks(Vec<DayMask>),
    /// (customer key, category code << 32 | biased day), sorted ascending and distinct.
    Triples(Vec<(u64, u64)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayMask {
    key: u64,
    day: u64,
    mask: u64,
}

/// The day biased by 2³¹, so that it sorts as an unsigned number.
fn biased(day: i32) -> u64 {
    (i64::from(day) + (1i64 << 31)) as u64
}

/// Category codes ([`crate::codes::StringCodes`]: order of first appearance) of each value,
/// `None` for a null; `None` for all when there are more than `max` (at most 256) distinct
/// values.
///
/// A small direct-mapped cache of short strings' keys sits in front of the codes' hash map:
/// with a few dozen categories nearly every row is a hit (in `perf` profiles of the 50 M-row
/// run, [`CategoryDays::from_rows`] went from 1.9 % to 1.7 % of the samples).
fn codes(category: &StringChunked, max: usize) -> Option<Vec<Option<u8>>> {
    use polars_arrow::array::Array;
    /// Cache slots: a power of two, and more than the codes a `u8` holds, so that few
    /// categories share a slot.
    const SLOTS: usize = 1024;
    let max = max.min(256);
    let mut codes = crate::codes::StringCodes::default();
    // (key, code) per slot; the empty key (length u32::MAX) is never a short string's.
    let mut cache = vec![(u128::MAX, 0u8); SLOTS];
    let mut out = Vec::with_capacity(category.len());
    for arr in category.downcast_iter() {
        for i in 0..arr.len() {
            if !arr.is_valid(i) {
                out.push(None);
                continue;
            }
            let short = arr.views()[i].length <= polars_arrow::array::View::MAX_INLINE_SIZE;
            let key = short.then(|| crate::codes::short_key(arr, i));
            let slot = key.map(|k| {
                let h = (k as u64 ^ (k >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                (h >> (64 - SLOTS.trailing_zeros())) as usize
            });
            if let (Some(k), Some(s)) = (key, slot) {
                if cache[s].0 == k {
                    out.push(Some(cache[s].1));
                    continue;
                }
            }
            let code = codes.code(arr, i);
            if codes.values().len() > max {
                return None;
            }
            if let (Some(k), Some(s)) = (key, slot) {
                cache[s] = (k, code as u8);
            }
            out.push(Some(code as u8));
        }
    }
    Some(out)
}

impl CategoryDays {
    /// The categories of rows with the (64-bit hash) customer `key`, epoch `day` and
    /// `category`; rows with a null in any of them are left out (as
    /// [`crate::summary::daily_categories`] leaves them out). `order`, when given, is the
    /// [`crate::summary::key_day_order`] of the rows to count: every row with a key and a day,
    /// or some of them (the others are left out).
    pub(crate) fn from_rows(
        key: &UInt64Chunked,
        day: &Int32Chunked,
        category: &StringChunked,
        order: Option<&[(u64, u64)]>,
    ) -> CategoryDays {
        if let Some(order) = order {
            if let Some(code) = codes(category, 64) {
                return CategoryDays(Coded::Masks(masks(order, &code)));
            }
            // More categories than a mask holds: the triples of the rows `order` lists.
            return triples(order.iter().filter_map(|&(k, dr)| {
                let c = category.get((dr & 0xffff_ffff) as usize)?;
                Some((k, dr >> 32, c))
            }));
        }
        triples(
            key.iter()
                .zip(day.iter())
                .zip(category.iter())
                .filter_map(|((k, d), c)| Some((k?, biased(d?), c?))),
        )
    }

    /// [`CategoryDays::from_rows`] of a category column of strings, or of codes (`UInt32`:
    /// the split's, numbered over all buckets, [`crate::dictionary`]), which count the same.
    pub(crate) fn from_column(
        key: &UInt64Chunked,
        day: &Int32Chunked,
        category: &Series,
        order: Option<&[(u64, u64)]>,
    ) -> PolarsResult<CategoryDays> {
        Ok(match category.dtype() {
            DataType::UInt32 => CategoryDays::from_codes(key, day, category.u32()?, order),
            _ => CategoryDays::from_rows(key, day, category.str()?, order),
        })
    }

    /// [`CategoryDays::from_rows`] of category codes: renumbered in order of first appearance
    /// in the bucket (a table indexed by code, no hashing), so that a bucket of at most 64
    /// distinct categories gets masks whatever the codes' range.
    pub(crate) fn from_codes(
        key: &UInt64Chunked,
        day: &Int32Chunked,
        codes: &UInt32Chunked,
        order: Option<&[(u64, u64)]>,
    ) -> CategoryDays {
        if let Some(order) = order {
            if let Some(local) = local_codes(codes, 64) {
                return CategoryDays(Coded::Masks(masks(order, &local)));
            }
            return CategoryDays::of_part(codes, order);
        }
        triples_of_codes(
            key.iter()
                .zip(day.iter())
                .zip(codes.iter())
                .filter_map(|((k, d), c)| Some((k?, biased(d?), c?))),
        )
    }

    /// The categories of the rows `order` lists as triples of the split's codes (`UInt32`,
    /// numbered over all buckets), never masks: the coding of one part of a bucket that
    /// [`CategoryDays::merge`] joins with the others' ([`crate::compact::Buckets::split_bucket`]).
    pub(crate) fn of_part(codes: &UInt32Chunked, order: &[(u64, u64)]) -> CategoryDays {
        let codes = codes.rechunk();
        let codes = codes.downcast_as_array();
        triples_of_codes(order.iter().filter_map(|&(k, dr)| {
            let r = (dr & 0xffff_ffff) as usize;
            codes.is_valid(r).then(|| (k, dr >> 32, codes.value(r)))
        }))
    }

    /// The categories of a bucket from those of its parts ([`CategoryDays::of_part`]); None
    /// when a part was coded otherwise (masks, whose codes are the part's own).
    pub(crate) fn merge(parts: Vec<CategoryDays>) -> Option<CategoryDays> {
        let mut all = Vec::new();
        for p in parts {
            match p.0 {
                Coded::Triples(t) => all.extend(t),
                Coded::Masks(_) => return None,
            }
        }
        let mut all = crate::order::sort_hashed_pairs(all);
        all.dedup();
        Some(CategoryDays(Coded::Triples(all)))
    }

    /// Per customer with at least one category bought on a day in `[start_day, as_of_day]`:
    /// (key, distinct categories), ascending by key.
    pub(crate) fn counts(&self, start_day: Option<i32>, as_of_day: i32) -> Vec<(u64, i64)> {
        let lo = start_day.map_or(0, biased);
        let hi = biased(as_of_day);
        let mut out: Vec<(u64, i64)> = Vec::new();
        match &self.0 {
            Coded::Masks(days) => {
                let mut i = 0;
                while i < days.len() {
                    let key = days[i].key;
                    let mut seen = 0u64;
                    while i < days.len() && days[i].key == key {
                        if days[i].day >= lo && days[i].day <= hi {
                            seen |= days[i].mask;
                        }
                        i += 1;
                    }
                    if seen != 0 {
                        out.push((key, i64::from(seen.count_ones())));
                    }
                }
            }
            Coded::Triples(t) => {
                let mut i = 0;
                while i < t.len() {
                    let (key, code) = (t[i].0, t[i].1 >> 32);
                    let mut hit = false;
                    while i < t.len() && t[i].0 == key && t[i].1 >> 32 == code {
                        let day = t[i].1 & 0xffff_ffff;
                        hit |= day >= lo && day <= hi;
                        i += 1;
                    }
                    if hit {
                        match out.last_mut() {
                            Some((k, n)) if *k == key => *n += 1,
                            _ => out.push((key, 1)),
                        }
                    }
                }
            }
        }
        out
    }

    /// The `categories` column (Int64, 0 for none) for customers with the given keys, in their
    /// order.
    pub(crate) fn column(
        &self,
        keys: &UInt64Chunked,
        start_day: Option<i32>,
        as_of_day: i32,
    ) -> Column {
        let counts = self.counts(start_day, as_of_day);
        let values: Vec<i64> = keys
            .iter()
            .map(|k| {
                k.and_then(|k| counts.binary_search_by_key(&k, |&(c, _)| c).ok())
                    .map_or(0, |j| counts[j].1)
            })
            .collect();
        Column::new("categories".into(), values)
    }
}

/// The distinct (key, category code, biased day) triples of `rows` (key, biased day,
/// category), coded in order of first appearance.
fn triples<'a>(rows: impl Iterator<Item = (u64, u64, &'a str)>) -> CategoryDays {
    let mut codes: PlHashMap<&str, u64> = PlHashMap::new();
    let mut triples: Vec<(u64, u64)> = Vec::new();
    for (k, day, c) in rows {
        let next = codes.len() as u64;
        let code = *codes.entry(c).or_insert(next);
        triples.push((k, code << 32 | day));
    }
    let mut triples = crate::order::sort_hashed_pairs(triples);
    triples.dedup();
    CategoryDays(Coded::Triples(triples))
}

/// The bucket's own number (order of first appearance) of each code, `None` for a null;
/// `None` for all when there are more than `max` (at most 256) distinct codes.
fn local_codes(codes: &UInt32Chunked, max: usize) -> Option<Vec<Option<u8>>> {
    let max = max.min(256);
    const UNSEEN: u16 = u16::MAX;
    let mut table: Vec<u16> = Vec::new();
    let mut seen = 0usize;
    let mut out = Vec::with_capacity(codes.len());
    for arr in codes.downcast_iter() {
        for (i, &c) in arr.values().iter().enumerate() {
            if !arr.is_valid(i) {
                out.push(None);
                continue;
            }
            let c = c as usize;
            if c >= table.len() {
                table.resize(c + 1, UNSEEN);
            }
            if table[c] == UNSEEN {
                if seen == max {
                    return None;
                }
                table[c] = seen as u16;
                seen += 1;
            }
            out.push(Some(table[c] as u8));
        }
    }
    Some(out)
}

/// The distinct (key, code << 32 | biased day) of `rows` (key, biased day, code).
fn triples_of_codes(rows: impl Iterator<Item = (u64, u64, u32)>) -> CategoryDays {
    let triples: Vec<(u64, u64)> = rows
        .map(|(k, day, c)| (k, u64::from(c) << 32 | day))
        .collect();
    let mut triples = crate::order::sort_hashed_pairs(triples);
    triples.dedup();
    CategoryDays(Coded::Triples(triples))
}

/// One [`DayMask`] per (key, day) run of `order` ([`crate::summary::key_day_order`]) with a
/// category, from the rows' category `code`s (at most 64).
fn masks(order: &[(u64, u64)], code: &[Option<u8>]) -> Vec<DayMask> {
    // At most one per row: reserved at once (the pages never written are never touched),
    // rather than grown and copied a dozen times.
    let mut out: Vec<DayMask> = Vec::with_capacity(order.len());
    for &(key, dr) in order {
        let Some(c) = code[(dr & 0xffff_ffff) as usize] else {
            continue;
        };
        let (day, bit) = (dr >> 32, 1u64 << c);
        match out.last_mut() {
            Some(m) if m.key == key && m.day == day => m.mask |= bit,
            _ => out.push(DayMask {
                key,
                day,
                mask: bit,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{category_counts, daily_categories, CUSTOMER_KEY};
    use rand::{Rng, SeedableRng};

    /// Random rows: 300 customers (a few keys near 0 and u64::MAX), `cats` categories, days
    /// around the epoch, repeated triples, nulls in every column.
    fn rows_with(seed: u64, cats: u32) -> DataFrame {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = 5000;
        let mut key = Vec::new();
        let mut day = Vec::new();
        let mut cat = Vec::new();
        for _ in 0..n {
            let c: u64 = rng.random_range(0..300);
            key.push((!rng.random_ratio(1, 200)).then(|| match c {
                0 => 0,
                1 => u64::MAX,
                c => c.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            }));
            day.push((!rng.random_ratio(1, 200)).then(|| rng.random_range(-400..400)));
            cat.push(
                (!rng.random_ratio(1, 50)).then(|| format!("cat{}", rng.random_range(0..cats))),
            );
        }
        df!(CUSTOMER_KEY => key, "day" => day, "category" => cat).unwrap()
    }

    /// Both codings (with the rows' (key, day) order, and without) against polars' distinct
    /// counts, for 12 categories (bit masks) and 70 (more than a mask holds: triples).
    #[test]
    fn counts_equal_polars_distinct_counts_for_every_window() {
        for (seed, cats) in [(0, 12), (1, 12), (2, 12), (3, 70)] {
            let df = rows_with(seed, cats);
            let key = df.column(CUSTOMER_KEY).unwrap().u64().unwrap();
            let day = df.column("day").unwrap().i32().unwrap();
            let category = df.column("category").unwrap().str().unwrap();
            let order = crate::summary::key_day_order(key, day);
            let plain = CategoryDays::from_rows(key, day, category, None);
            let ordered = CategoryDays::from_rows(key, day, category, Some(&order));
            assert!(matches!(plain.0, Coded::Triples(_)));
            assert_eq!(matches!(ordered.0, Coded::Masks(_)), cats <= 64);
            // The same categories as the split's codes, numbered after 100 other values (as
            // in a bucket that sees a few of a source's categories), over two chunks.
            let mut enc = crate::dictionary::Encoder::default();
            let others: Vec<String> = (0..100).map(|i| format!("other{i}")).collect();
            enc.encode(&polars_arrow::array::Utf8ViewArray::from_slice_values(
                &others,
            ))
            .unwrap();
            let halves = [category.slice(0, 2000), category.slice(2000, df.height())];
            let codes = UInt32Chunked::from_chunk_iter(
                "category".into(),
                halves
                    .iter()
                    .map(|h| enc.encode(h.rechunk().downcast_as_array()).unwrap()),
            );
            let coded_plain = CategoryDays::from_codes(key, day, &codes, None);
            let coded_ordered = CategoryDays::from_codes(key, day, &codes, Some(&order));
            assert_eq!(matches!(coded_ordered.0, Coded::Masks(_)), cats <= 64);
            let triples = daily_categories(df.clone().lazy()).collect().unwrap();
            if let Coded::Triples(t) = &plain.0 {
                assert_eq!(t.len(), triples.height());
            }
            for (start, as_of) in [(None, 399), (None, 0), (Some(-100), 100), (Some(50), 50)] {
                let want = category_counts(triples.clone().lazy(), start, as_of)
                    .sort([CUSTOMER_KEY], SortMultipleOptions::default())
                    .collect()
                    .unwrap();
                let want: Vec<(u64, i64)> = want
                    .column(CUSTOMER_KEY)
                    .unwrap()
                    .u64()
                    .unwrap()
                    .into_no_null_iter()
                    .zip(
                        want.column("categories")
                            .unwrap()
                            .i64()
                            .unwrap()
                            .into_no_null_iter(),
                    )
                    .collect();
                assert!(!want.is_empty());
                for cd in [&plain, &ordered, &coded_plain, &coded_ordered] {
                    assert_eq!(
                        cd.counts(start, as_of),
                        want,
                        "seed {seed} window {start:?}..{as_of}"
                    );
                }
            }
        }
    }

    /// Given the order of some rows only (the rows the checks accepted), the counts are those
    /// of these rows alone, for both codings.
    #[test]
    fn an_order_of_some_rows_counts_only_those_rows() {
        for (seed, cats) in [(4, 12), (5, 70)] {
            let df = rows_with(seed, cats);
            let key = df.column(CUSTOMER_KEY).unwrap().u64().unwrap();
            let day = df.column("day").unwrap().i32().unwrap();
            let category = df.column("category").unwrap().str().unwrap();
            // Every third row is rejected.
            let order: Vec<(u64, u64)> = crate::summary::key_day_order(key, day)
                .into_iter()
                .filter(|&(_, dr)| (dr & 0xffff_ffff) % 3 != 0)
                .collect();
            let some = CategoryDays::from_rows(key, day, category, Some(&order));
            let mask =
                BooleanChunked::from_iter_values("m".into(), (0..df.height()).map(|i| i % 3 != 0));
            let kept = df.filter(&mask).unwrap();
            let alone = CategoryDays::from_rows(
                kept.column(CUSTOMER_KEY).unwrap().u64().unwrap(),
                kept.column("day").unwrap().i32().unwrap(),
                kept.column("category").unwrap().str().unwrap(),
                None,
            );
            let all = CategoryDays::from_rows(key, day, category, None);
            for (start, as_of) in [(None, 399), (Some(-100), 100)] {
                assert_eq!(some.counts(start, as_of), alone.counts(start, as_of));
                assert_ne!(some.counts(start, as_of), all.counts(start, as_of));
            }
        }
    }

    /// The cached codes equal a plain first-appearance numbering, across chunks, with nulls
    /// and with strings too long to be inlined; more distinct values than allowed give None.
    #[test]
    fn codes_number_values_in_order_of_first_appearance() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let words: Vec<String> = (0..40)
            .map(|i| match i % 3 {
                0 => format!("c{i}"),
                1 => format!("a much longer category name {i}"),
                _ => format!("cat{i:08}"),
            })
            .collect();
        let mut ca =
            StringChunked::from_iter_options("c".into(), std::iter::empty::<Option<&str>>());
        let mut all: Vec<Option<&str>> = Vec::new();
        for _ in 0..3 {
            let part: Vec<Option<&str>> = (0..2000)
                .map(|_| {
                    (!rng.random_ratio(1, 20)).then(|| words[rng.random_range(0..40)].as_str())
                })
                .collect();
            ca.append(&StringChunked::from_iter_options(
                "c".into(),
                part.iter().copied(),
            ))
            .unwrap();
            all.extend(part);
        }
        assert!(ca.chunks().len() >= 3);
        let mut seen: std::collections::HashMap<&str, u8> = Default::default();
        let want: Vec<Option<u8>> = all
            .iter()
            .map(|v| {
                v.map(|s| {
                    let next = seen.len() as u8;
                    *seen.entry(s).or_insert(next)
                })
            })
            .collect();
        assert_eq!(codes(&ca, 64), Some(want));
        assert_eq!(codes(&ca, 39), None);
    }

    #[test]
    fn column_follows_the_given_keys_with_zero_for_none() {
        let k = UInt64Chunked::from_slice("k".into(), &[9, 3, 3, 3, 7]);
        let d = Int32Chunked::from_slice("d".into(), &[1, 1, 2, 5, 9]);
        let c = StringChunked::from_iter_options(
            "c".into(),
            [Some("a"), Some("a"), Some("b"), Some("a"), None].into_iter(),
        );
        let order = crate::summary::key_day_order(&k, &d);
        for cd in [
            CategoryDays::from_rows(&k, &d, &c, None),
            CategoryDays::from_rows(&k, &d, &c, Some(&order)),
        ] {
            // Customer 3 bought a on days 1 and 5 and b on day 2; 9 bought a on day 1.
            let keys = UInt64Chunked::from_iter_options(
                "keys".into(),
                [Some(7), Some(3), None, Some(9)].into_iter(),
            );
            let col = cd.column(&keys, None, 4);
            let got: Vec<i64> = col.i64().unwrap().into_no_null_iter().collect();
            assert_eq!(got, [0, 2, 0, 1]);
            let got: Vec<i64> = cd
                .column(&keys, Some(3), 10)
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            assert_eq!(got, [0, 1, 0, 0]);
        }
    }
}
