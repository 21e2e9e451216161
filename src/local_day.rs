//! The local calendar day of zone-aware timestamps in a business time zone, computed from a
//! cache of each UTC hour's offset instead of one time-zone lookup per value.
//!
//! polars' `convert_time_zone(..).dt().date()` asks `chrono-tz` for the offset of every value
//! (a binary search over the zone's transitions, then the conversion): on the 50 M-row
//! workload with zone-aware timestamps that was about 7 % of the run's CPU samples. A zone's
//! offset changes only at its transitions, months apart, so here the offset is looked up once
//! per UTC hour (at the hour's first and last second; an hour whose two differ holds a
//! transition and its values are converted one by one) and kept in a direct-mapped table, and
//! the day is `(t + offset) div 86400 s`. Exact unless a zone changes its offset and back
//! within one UTC hour (its transitions are months apart in every zone the test checks).
//!
//! Pure: a column in, a column out.

use chrono::{Offset as _, TimeZone as _};
use polars::prelude::*;
use std::cell::RefCell;

/// Slots of the hour table (a power of two): 2¹⁷ hours, about 15 years, so that the
/// timestamps of a history of up to that span hit after their first pass in any order (a miss
/// costs two zone lookups, a hit none); 8 bytes a slot, 1 MiB per thread.
const SLOTS: usize = 1 << 17;

/// A slot's offset (seconds east of UTC), or this when the hour holds a transition.
const MIXED: i32 = i32::MIN;

/// A zone and each slot's (UTC hour, offset); an empty slot is `(i32::MIN, MIXED)`, which
/// sends the one hour that could match it to the zone lookup.
type HourTable = (chrono_tz::Tz, Vec<(i32, i32)>);

thread_local! {
    /// Per thread, the last zone's table.
    static HOURS: RefCell<Option<HourTable>> = const { RefCell::new(None) };
}

/// The offset of `tz` at UTC second `secs`, or `None` outside chrono's range.
fn offset_at(tz: chrono_tz::Tz, secs: i64) -> Option<i32> {
    let utc = chrono::DateTime::from_timestamp(secs, 0)?.naive_utc();
    Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// Units of `unit` per second.
pub(crate) fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Nanoseconds => 1_000_000_000,
        TimeUnit::Microseconds => 1_000_000,
        TimeUnit::Milliseconds => 1_000,
    }
}

/// A zone's offsets by UTC hour, for values in one time unit.
struct Hours<'a> {
    tz: chrono_tz::Tz,
    /// Units per second and per hour.
    u: i64,
    per_hour: i64,
    table: &'a mut [(i32, i32)],
}

impl Hours<'_> {
    /// The local wall-clock time of UTC instant `v` (in the same unit, as if it were UTC),
    /// `None` where chrono cannot represent it.
    #[inline]
    fn local(&mut self, v: i64) -> Option<i64> {
        let hour = v.div_euclid(self.per_hour);
        // Hours beyond ±245,000 years are looked up every time.
        let cached = i32::try_from(hour).ok().and_then(|h| {
            let slot = &mut self.table[h as u32 as usize & (SLOTS - 1)];
            if slot.0 != h {
                let start = i64::from(h) * 3_600;
                let first = offset_at(self.tz, start)?;
                let last = offset_at(self.tz, start + 3_599)?;
                *slot = (h, if first == last { first } else { MIXED });
            }
            (slot.1 != MIXED).then_some(slot.1)
        });
        let offset = match cached {
            Some(o) => o,
            None => offset_at(self.tz, v.div_euclid(self.u))?,
        };
        v.checked_add(offset as i64 * self.u)
    }
}

/// `f` with this thread's hour table for `tz` and `unit`.
fn with_hours<R>(tz: chrono_tz::Tz, unit: TimeUnit, f: impl FnOnce(&mut Hours<'_>) -> R) -> R {
    let u = per_second(unit);
    HOURS.with(|cell| {
        let mut cell = cell.borrow_mut();
        // The table holds offsets by hour whatever the unit; a new zone starts it afresh.
        if cell.as_ref().is_none_or(|(z, _)| *z != tz) {
            *cell = Some((tz, vec![(i32::MIN, MIXED); SLOTS]));
        }
        let table = &mut cell.as_mut().expect("just set").1;
        f(&mut Hours {
            tz,
            u,
            per_hour: 3_600 * u,
            table,
        })
    })
}

/// The local day (days since 1970-01-01 in `tz`) of each value of `c`, a zone-aware
/// `Datetime` column (its values are UTC instants), as a `Date` column named as `c`. Nulls,
/// and instants chrono cannot represent, give null.
pub(crate) fn local_days(c: &Column, tz: chrono_tz::Tz) -> PolarsResult<Column> {
    let DataType::Datetime(unit, Some(_)) = c.dtype() else {
        polars_bail!(InvalidOperation: "local_days needs a zone-aware datetime, found {}", c.dtype());
    };
    let per_day = 86_400 * per_second(*unit);
    let values = c.as_materialized_series().to_physical_repr();
    let values = values.i64()?;
    let chunks: Vec<polars_arrow::array::PrimitiveArray<i32>> = with_hours(tz, *unit, |h| {
        let mut day_of =
            |v: i64| -> Option<i32> { i32::try_from(h.local(v)?.div_euclid(per_day)).ok() };
        values
            .downcast_iter()
            .map(|arr| match arr.validity() {
                Some(valid) if valid.unset_bits() > 0 => arr
                    .values()
                    .iter()
                    .zip(valid.iter())
                    .map(|(&v, ok)| if ok { day_of(v) } else { None })
                    .collect(),
                _ => arr.values().iter().map(|&v| day_of(v)).collect(),
            })
            .collect()
    });
    Ok(Int32Chunked::from_chunk_iter(c.name().clone(), chunks)
        .into_date()
        .into_series()
        .into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// polars' own conversion: the reference.
    fn polars_days(c: &Column, tz: chrono_tz::Tz) -> Vec<Option<i32>> {
        let df = DataFrame::new(c.len(), vec![c.clone()]).unwrap();
        let out = df
            .lazy()
            .select([col(c.name().clone())
                .dt()
                .convert_time_zone(TimeZone::from_chrono(&tz))
                .dt()
                .date()])
            .collect()
            .unwrap();
        let days = out.column(c.name()).unwrap().to_physical_repr();
        days.i32().unwrap().iter().collect()
    }

    #[test]
    fn local_days_equal_polars_conversion() {
        let zones = [
            "UTC",
            "America/New_York",
            "Europe/London",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
            "Pacific/Apia",
            "America/St_Johns",
            "Asia/Shanghai",
        ];
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 11
        };
        for (k, zone) in zones.iter().enumerate() {
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            for unit in [
                TimeUnit::Milliseconds,
                TimeUnit::Microseconds,
                TimeUnit::Nanoseconds,
            ] {
                let u = per_second(unit);
                let mut secs: Vec<Option<i64>> = Vec::new();
                // Random instants over 1900..2100 (2000..2100 for nanoseconds, whose i64
                // range ends in 2262), in no order, with nulls.
                let (lo, span) = match unit {
                    TimeUnit::Nanoseconds => (946_684_800i64, 3_155_760_000i64),
                    _ => (-2_208_988_800i64, 6_311_433_600i64),
                };
                for _ in 0..4_000 {
                    secs.push((next() % 10 != 0).then(|| lo + (next() % span as u64) as i64));
                }
                // Every second around each transition of 2020..2026 (where the offset at
                // either end of a UTC hour differs), and the hour's ends.
                for h in (1_577_836_800i64 / 3_600)..(1_798_761_600 / 3_600) {
                    let (a, b) = (offset_at(tz, h * 3_600), offset_at(tz, h * 3_600 + 3_599));
                    if a != b {
                        secs.extend((h * 3_600 - 2..h * 3_600 + 3_602).map(Some));
                    }
                }
                // Nanosecond values just before each whole second too.
                let values: Vec<Option<i64>> = secs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| s.map(|s| s * u - (i % 3) as i64))
                    .collect();
                let series = Series::new("ts".into(), values)
                    .cast(&DataType::Datetime(
                        unit,
                        Some(TimeZone::from_chrono(&chrono_tz::UTC)),
                    ))
                    .unwrap();
                // Several chunks.
                let mut c = series.slice(0, 1_000);
                c.append(&series.slice(1_000, series.len())).unwrap();
                let c = c.into_column();
                assert!(c.n_chunks() > 1);
                let got = local_days(&c, tz).unwrap();
                assert_eq!(got.dtype(), &DataType::Date);
                let got: Vec<Option<i32>> = got.to_physical_repr().i32().unwrap().iter().collect();
                // The local times themselves, against polars' (its naive local values).
                let local_want: Vec<Option<i64>> = {
                    let df = DataFrame::new(c.len(), vec![c.clone()]).unwrap();
                    let out = df
                        .lazy()
                        .select([col("ts")
                            .dt()
                            .convert_time_zone(TimeZone::from_chrono(&tz))
                            .dt()
                            .replace_time_zone(None, lit("raise"), NonExistent::Raise)])
                        .collect()
                        .unwrap();
                    let v = out.column("ts").unwrap().to_physical_repr();
                    v.i64().unwrap().iter().collect()
                };
                let phys = c.to_physical_repr();
                let local_got: Vec<Option<i64>> = with_hours(tz, unit, |h| {
                    phys.i64()
                        .unwrap()
                        .iter()
                        .map(|v| v.and_then(|v| h.local(v)))
                        .collect()
                });
                let bad = local_got
                    .iter()
                    .zip(&local_want)
                    .filter(|(g, w)| g != w)
                    .count();
                assert_eq!(bad, 0, "{zone} {unit:?}: {bad} local times differ");
                let want = polars_days(&c, tz);
                let bad = got.iter().zip(&want).filter(|(g, w)| g != w).count();
                assert_eq!(
                    bad,
                    0,
                    "{zone} {unit:?} (case {k}): {bad} of {} differ",
                    got.len()
                );
                assert!(want.iter().filter(|d| d.is_none()).count() > 100);
            }
        }
    }
}
