//! Number formatting for the report: thousands separators, compact axis labels, percentages.
//! Non-finite values print as "–" (never "NaN").

/// `1234567.8` → `"1,234,568"`; values below 100 in magnitude keep two decimals.
pub(crate) fn amount(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() >= 100.0 {
        grouped(v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

/// An integer with thousands separators.
pub(crate) fn count(v: i64) -> String {
    grouped(v)
}

fn grouped(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Compact axis label: `1.2M`, `35k`, `950`, `0.5`.
pub(crate) fn compact(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.abs() >= 100.0 || x.fract().abs() < 1e-9 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{unit}")
}

/// Three significant digits, compact for large values: `0.000123`, `0.0562`, `1.78`, `562`,
/// `17.8k`.
pub(crate) fn significant(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.abs() >= 1000.0 {
        return compact(v);
    }
    if v == 0.0 {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A share as a percentage: `0.1234` → `"12.3 %"`.
pub(crate) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1} %", v * 100.0)
    } else {
        "–".into()
    }
}

/// A plain number with `digits` decimals.
pub(crate) fn fixed(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(-1234567), "-1,234,567");
        assert_eq!(amount(1234567.6), "1,234,568");
        assert_eq!(amount(12.345), "12.35");
        assert_eq!(amount(f64::NAN), "–");
        assert_eq!(compact(1_250_000.0), "1.25M");
        assert_eq!(compact(35_000.0), "35k");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(0.5), "0.5");
        assert_eq!(compact(-2_000.0), "-2k");
        assert_eq!(pct(0.1234), "12.3 %");
        assert_eq!(pct(f64::INFINITY), "–");
        assert_eq!(fixed(1.0 / 3.0, 3), "0.333");
        assert_eq!(significant(0.000123456), "0.000123");
        assert_eq!(significant(0.0562341), "0.0562");
        assert_eq!(significant(1.7782), "1.78");
        assert_eq!(significant(562.34), "562");
        assert_eq!(significant(17_782.8), "17.8k");
        assert_eq!(significant(1.0), "1");
    }
}
