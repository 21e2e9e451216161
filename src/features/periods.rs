//! Calendar periods over epoch days: ISO weeks, calendar months and calendar quarters.
//!
//! Days are `i32` epoch days (days since 1970-01-01, which is day 0). Every period has an
//! integer *index* that grows by one from each period to the next, so `index(day) + 1` is the
//! following period and differences of indices count periods:
//! - `Week`: ISO 8601 weeks, Monday to Sunday. Index 0 is the week of Monday 1969-12-29
//!   (1970-01-01 was a Thursday). Labels use the ISO week-numbering year, which differs from
//!   the calendar year around New Year: 2021-01-03 (a Sunday) is in `2020-W53` and week
//!   `2021-W01` starts on Monday 2021-01-04 (the week that holds the year's first Thursday).
//! - `Month`: index = 12 · year + (month − 1); label `2024-01`.
//! - `Quarter`: index = 4 · year + (month − 1) / 3; Q1 = January–March; label `2024-Q1`.
//!
//! [`as_of_dates`] lists the last day of every period whose last day lies in `[from, to]`:
//! the as-of dates of a backfill that computes the tables "at the end of each period".
//!
//! Days are converted with chrono's proleptic Gregorian calendar; the supported range is
//! chrono's (about ±262,000 years), and days outside it panic.

use chrono::{Datelike, NaiveDate};

/// Days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

/// Epoch day of a calendar date. Panics on an invalid date (a bug in the caller).
pub(crate) fn epoch_day(year: i32, month: u32, day: u32) -> i32 {
    let d = NaiveDate::from_ymd_opt(year, month, day)
        .unwrap_or_else(|| panic!("invalid date {year}-{month}-{day}"));
    from_date(d)
}

fn from_date(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - UNIX_EPOCH_FROM_CE
}

fn to_date(day: i32) -> NaiveDate {
    day.checked_add(UNIX_EPOCH_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or_else(|| panic!("epoch day {day} is outside the supported date range"))
}

/// A calendar period length, as named in the job file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// ISO week, Monday to Sunday.
    Week,
    /// Calendar month.
    Month,
    /// Calendar quarter (Q1 = January–March).
    Quarter,
}

impl Period {
    /// Parses `"week"`, `"month"` or `"quarter"` (exact, lower case).
    pub fn parse(s: &str) -> Result<Period, String> {
        match s {
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            "quarter" => Ok(Period::Quarter),
            other => Err(format!(
                "expected \"week\", \"month\" or \"quarter\", found {other:?}"
            )),
        }
    }

    /// The job-file name: `"week"`, `"month"` or `"quarter"`.
    pub fn name(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
        }
    }

    /// Index of the period that contains `day` (monotone: later days never get a lower index).
    pub fn index(self, day: i32) -> i32 {
        match self {
            // Day -3 (1969-12-29) is a Monday; weeks are counted from it.
            Period::Week => (day + 3).div_euclid(7),
            Period::Month => {
                let d = to_date(day);
                d.year() * 12 + d.month0() as i32
            }
            Period::Quarter => {
                let d = to_date(day);
                d.year() * 4 + (d.month0() / 3) as i32
            }
        }
    }

    /// First epoch day of period `index`.
    pub fn start(self, index: i32) -> i32 {
        match self {
            Period::Week => index * 7 - 3,
            Period::Month => epoch_day(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1),
            Period::Quarter => {
                epoch_day(index.div_euclid(4), index.rem_euclid(4) as u32 * 3 + 1, 1)
            }
        }
    }

    /// Last epoch day of period `index` (inclusive).
    pub fn end(self, index: i32) -> i32 {
        self.start(index + 1) - 1
    }

    /// Label of period `index`: `2024-W05` (ISO week-numbering year and week), `2024-01`,
    /// `2024-Q1`.
    pub fn label(self, index: i32) -> String {
        match self {
            Period::Week => {
                let w = to_date(self.start(index)).iso_week();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
            Period::Month => format!(
                "{:04}-{:02}",
                index.div_euclid(12),
                index.rem_euclid(12) + 1
            ),
            Period::Quarter => format!("{:04}-Q{}", index.div_euclid(4), index.rem_euclid(4) + 1),
        }
    }
}

/// The period index of every day in a range, and the last day of every period it touches,
/// looked up instead of computed: the activity and churn tables index every purchase day of
/// every customer, and chrono's date arithmetic was a visible share of a run. Days outside the
/// range (or every day, when the range is longer than [`DayPeriods::MAX_DAYS`]) are computed.
#[derive(Clone, Debug)]
pub(crate) struct DayPeriods {
    period: Period,
    first_day: i32,
    index: Vec<i32>,
    first_index: i32,
    ends: Vec<i32>,
}

impl DayPeriods {
    /// The longest range tabulated (about 2,900 years).
    pub(crate) const MAX_DAYS: i64 = 1 << 20;

    /// The table of days `lo..=hi` (empty when `lo > hi` or the range is too long).
    pub(crate) fn new(period: Period, lo: i32, hi: i32) -> DayPeriods {
        let len = i64::from(hi) - i64::from(lo) + 1;
        if !(1..=Self::MAX_DAYS).contains(&len) {
            return DayPeriods {
                period,
                first_day: 0,
                index: Vec::new(),
                first_index: 0,
                ends: Vec::new(),
            };
        }
        let index: Vec<i32> = (lo..=hi).map(|d| period.index(d)).collect();
        let (first, last) = (index[0], index[index.len() - 1]);
        DayPeriods {
            period,
            first_day: lo,
            first_index: first,
            ends: (first..=last).map(|i| period.end(i)).collect(),
            index,
        }
    }

    /// [`Period::index`] of `day`.
    pub(crate) fn index(&self, day: i32) -> i32 {
        usize::try_from(i64::from(day) - i64::from(self.first_day))
            .ok()
            .and_then(|k| self.index.get(k))
            .map_or_else(|| self.period.index(day), |&i| i)
    }

    /// [`Period::end`] of period `index`.
    pub(crate) fn end(&self, index: i32) -> i32 {
        usize::try_from(i64::from(index) - i64::from(self.first_index))
            .ok()
            .and_then(|k| self.ends.get(k))
            .map_or_else(|| self.period.end(index), |&e| e)
    }
}

/// The last day of every period whose last day lies in `[from, to]`, ascending. Empty when
/// `from > to` or when no period ends inside the range.
pub(crate) fn as_of_dates(from: i32, to: i32, period: Period) -> Vec<i32> {
    if from > to {
        return Vec::new();
    }
    (period.index(from)..=period.index(to))
        .map(|i| period.end(i))
        .filter(|&e| e >= from && e <= to)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> i32 {
        epoch_day(y, m, day)
    }

    #[test]
    fn epoch_days_by_hand() {
        assert_eq!(d(1970, 1, 1), 0);
        assert_eq!(d(1970, 2, 1), 31);
        assert_eq!(d(1969, 12, 31), -1);
        // 2000 is a leap year: 30 years of 365 days plus 7 leap days (72, 76, ..., 96).
        assert_eq!(d(2000, 1, 1), 30 * 365 + 7);
    }

    #[test]
    fn parse_and_name() {
        for p in [Period::Week, Period::Month, Period::Quarter] {
            assert_eq!(Period::parse(p.name()), Ok(p));
        }
        let err = Period::parse("Month").unwrap_err();
        assert_eq!(
            err,
            "expected \"week\", \"month\" or \"quarter\", found \"Month\""
        );
    }

    #[test]
    fn the_table_equals_the_computation_inside_and_outside_its_range() {
        for p in [Period::Week, Period::Month, Period::Quarter] {
            let t = DayPeriods::new(p, d(2023, 11, 15), d(2024, 3, 3));
            for day in d(2023, 1, 1)..d(2025, 1, 1) {
                assert_eq!(t.index(day), p.index(day), "{p:?} day {day}");
            }
            for i in p.index(d(2022, 1, 1))..p.index(d(2026, 1, 1)) {
                assert_eq!(t.end(i), p.end(i), "{p:?} period {i}");
            }
            // Extreme days and an empty or too long range fall back to the computation.
            assert_eq!(t.index(-10_000_000), p.index(-10_000_000));
            assert_eq!(t.index(3_000_000), p.index(3_000_000));
            for t in [
                DayPeriods::new(p, 10, 9),
                DayPeriods::new(p, -(1 << 20), 1 << 20),
            ] {
                assert!(t.index.is_empty() && t.ends.is_empty());
                assert_eq!(t.index(d(2024, 2, 29)), p.index(d(2024, 2, 29)));
                assert_eq!(t.end(7), p.end(7));
            }
        }
    }

    #[test]
    fn months_with_leap_years() {
        let p = Period::Month;
        let feb24 = p.index(d(2024, 2, 10));
        assert_eq!(feb24, 2024 * 12 + 1);
        assert_eq!(p.start(feb24), d(2024, 2, 1));
        assert_eq!(p.end(feb24), d(2024, 2, 29)); // 2024 is a leap year
        assert_eq!(p.end(p.index(d(2023, 2, 1))), d(2023, 2, 28));
        assert_eq!(p.end(p.index(d(1900, 2, 1))), d(1900, 2, 28)); // divisible by 100
        assert_eq!(p.end(p.index(d(2000, 2, 1))), d(2000, 2, 29)); // divisible by 400
        assert_eq!(p.label(feb24), "2024-02");
        // Year boundary: December → January is one step.
        assert_eq!(p.index(d(2024, 1, 1)) - p.index(d(2023, 12, 31)), 1);
        assert_eq!(p.label(p.index(d(2023, 12, 31))), "2023-12");
        // Before the epoch.
        assert_eq!(p.label(p.index(d(1969, 12, 15))), "1969-12");
        assert_eq!(p.start(p.index(d(1969, 12, 15))), -31);
    }

    #[test]
    fn quarters() {
        let p = Period::Quarter;
        let q = p.index(d(2024, 3, 31));
        assert_eq!(p.label(q), "2024-Q1");
        assert_eq!(p.start(q), d(2024, 1, 1));
        // Q1 2024 = 31 + 29 + 31 = 91 days.
        assert_eq!(p.end(q) - p.start(q) + 1, 91);
        assert_eq!(p.label(p.index(d(2024, 4, 1))), "2024-Q2");
        assert_eq!(p.label(p.index(d(2023, 12, 31))), "2023-Q4");
        assert_eq!(p.index(d(2024, 1, 1)) - p.index(d(2023, 12, 31)), 1);
        assert_eq!(p.end(p.index(d(2023, 11, 5))), d(2023, 12, 31));
    }

    #[test]
    fn iso_weeks() {
        let p = Period::Week;
        // 2021-01-04 is a Monday and starts ISO week 1 of 2021; the Sunday before is 2020-W53.
        let w1 = p.index(d(2021, 1, 4));
        assert_eq!(p.start(w1), d(2021, 1, 4));
        assert_eq!(p.end(w1), d(2021, 1, 10));
        assert_eq!(p.label(w1), "2021-W01");
        assert_eq!(p.index(d(2021, 1, 3)), w1 - 1);
        assert_eq!(p.label(w1 - 1), "2020-W53");
        assert_eq!(p.start(w1 - 1), d(2020, 12, 28));
        // 1970-01-01 (Thursday) is in the week starting Monday 1969-12-29 = index 0, 1970-W01.
        assert_eq!(p.index(0), 0);
        assert_eq!(p.start(0), -3);
        assert_eq!(p.label(0), "1970-W01");
        // 2024-01-29 (Monday) starts 2024-W05; 2024-12-30 (Monday) is 2025-W01.
        assert_eq!(p.label(p.index(d(2024, 2, 4))), "2024-W05");
        assert_eq!(p.label(p.index(d(2024, 12, 31))), "2025-W01");
    }

    #[test]
    fn as_of_dates_are_period_ends_inside_the_range() {
        assert_eq!(
            as_of_dates(d(2024, 1, 15), d(2024, 4, 30), Period::Month),
            [
                d(2024, 1, 31),
                d(2024, 2, 29),
                d(2024, 3, 31),
                d(2024, 4, 30)
            ]
        );
        // April is not finished on 2024-04-29, so its end is not listed.
        assert_eq!(
            as_of_dates(d(2024, 2, 1), d(2024, 4, 29), Period::Month),
            [d(2024, 2, 29), d(2024, 3, 31)]
        );
        assert_eq!(
            as_of_dates(d(2023, 12, 31), d(2024, 12, 30), Period::Quarter),
            [
                d(2023, 12, 31),
                d(2024, 3, 31),
                d(2024, 6, 30),
                d(2024, 9, 30)
            ]
        );
        // Sundays 2021-01-03 and 2021-01-10.
        assert_eq!(
            as_of_dates(d(2021, 1, 1), d(2021, 1, 10), Period::Week),
            [d(2021, 1, 3), d(2021, 1, 10)]
        );
        assert!(as_of_dates(d(2024, 1, 2), d(2024, 1, 30), Period::Month).is_empty());
        assert!(as_of_dates(5, 4, Period::Week).is_empty());
    }
}
