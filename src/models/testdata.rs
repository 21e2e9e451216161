//! Test helpers: the CDNOW sample summary built in plain Rust, and the lifetimes fixtures.

use std::collections::BTreeMap;

pub(crate) fn path(rel: &str) -> String {
    format!("{}/tests/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) struct Summary {
    pub frequency: Vec<f64>,
    pub recency: Vec<f64>,
    pub t: Vec<f64>,
    pub monetary: Vec<f64>,
}

/// CDNOW 1/10 sample, calibration through 1997-09-30 inclusive, time in weeks (days / 7),
/// same-day purchases merged (dollars summed), monetary = mean of the repeat days' sums.
pub(crate) fn cdnow_sample_summary() -> Summary {
    let file = path("data/cdnow/CDNOW_sample.txt");
    let text = std::fs::read_to_string(&file)
        .or_else(|_| {
            std::fs::read_to_string(format!(
                "{}/../shared/data/cdnow/CDNOW_sample.txt",
                env!("CARGO_MANIFEST_DIR")
            ))
        })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let end = days_from_civil(1997, 9, 30);
    // customer -> day -> dollars
    let mut by_customer: BTreeMap<u64, BTreeMap<i64, f64>> = BTreeMap::new();
    for (ln, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        assert_eq!(cols.len(), 5, "{file}:{}: expected 5 columns", ln + 1);
        let id: u64 = cols[0].parse().unwrap();
        let ymd: i64 = cols[2].parse().unwrap();
        let day = days_from_civil(ymd / 10_000, ymd / 100 % 100, ymd % 100);
        let dollars: f64 = cols[4].parse().unwrap();
        by_customer.entry(id).or_default();
        if day <= end {
            *by_customer.get_mut(&id).unwrap().entry(day).or_insert(0.0) += dollars;
        }
    }
    let mut s = Summary {
        frequency: vec![],
        recency: vec![],
        t: vec![],
        monetary: vec![],
    };
    for days in by_customer.values() {
        // Every sample customer's first purchase is in Q1 1997, inside calibration.
        let first = *days
            .keys()
            .next()
            .expect("customer without calibration purchase");
        let last = *days.keys().last().unwrap();
        let repeat: Vec<f64> = days.values().skip(1).copied().collect();
        s.frequency.push(repeat.len() as f64);
        s.recency.push((last - first) as f64 / 7.0);
        s.t.push((end - first) as f64 / 7.0);
        s.monetary.push(if repeat.is_empty() {
            0.0
        } else {
            repeat.iter().sum::<f64>() / repeat.len() as f64
        });
    }
    s
}

/// A CSV with a header; returns the header and rows of strings.
pub(crate) fn read_csv(rel: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let file = path(rel);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

pub(crate) fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let k = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|r| r[k].parse().unwrap()).collect()
}

/// `(frequency, recency, T)` of `fixtures/lifetimes/synthetic_summary.csv` (3,000 customers).
pub(crate) fn synthetic_rfm() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (h, rows) = read_csv("fixtures/lifetimes/synthetic_summary.csv");
    (
        column(&h, &rows, "frequency"),
        column(&h, &rows, "recency"),
        column(&h, &rows, "T"),
    )
}

pub(crate) fn read_json(rel: &str) -> serde_json::Value {
    let file = path(rel);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}")))
        .unwrap()
}

#[test]
fn civil_days() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(
        days_from_civil(1997, 9, 30) - days_from_civil(1997, 1, 1),
        272
    );
    assert_eq!(
        days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
        2
    );
}

#[test]
fn cdnow_summary_shape() {
    // Figures from the README and the lifetimes-made reference JSON.
    let s = cdnow_sample_summary();
    assert_eq!(s.frequency.len(), 2357);
    assert_eq!(s.frequency.iter().filter(|&&x| x > 0.0).count(), 946);
    assert_eq!(s.frequency.iter().sum::<f64>(), 2457.0);
}

/// Small deterministic generator (SplitMix64) for simulated populations.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform on (0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub(crate) fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
    /// Standard Gamma(shape) by Marsaglia & Tsang (2000), boosted for shape < 1.
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.normal();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * z * z + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// Simulates `n` customers from BG/NBD (λ ~ Gamma(r, α), p ~ Beta(a, b), dropout after each
/// repeat purchase) observed for T ~ Uniform(1, t_max) time units. Returns (x, t_x, T).
pub(crate) fn simulate_bgnbd(
    n: usize,
    p: &super::BgNbdParams,
    t_max: f64,
    seed: u64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    simulate(n, p, t_max, seed, false)
}

/// As [`simulate_bgnbd`], for MBG/NBD (dropout possible right after the first purchase too).
/// `a = 0` simulates the no-dropout (NBD) limit with either.
pub(crate) fn simulate_mbgnbd(
    n: usize,
    p: &super::BgNbdParams,
    t_max: f64,
    seed: u64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    simulate(n, p, t_max, seed, true)
}

fn simulate(
    n: usize,
    p: &super::BgNbdParams,
    t_max: f64,
    seed: u64,
    drop_at_first: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let (mut xs, mut txs, mut ts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for _ in 0..n {
        let big_t = 1.0 + (t_max - 1.0) * rng.uniform();
        let lambda = rng.gamma(p.r) / p.alpha;
        let drop = if p.a == 0.0 {
            0.0
        } else {
            let (ga, gb) = (rng.gamma(p.a), rng.gamma(p.b));
            ga / (ga + gb)
        };
        let (mut t, mut x, mut tx) = (0.0, 0.0, 0.0);
        let dead_at_start = drop_at_first && rng.uniform() < drop;
        if !dead_at_start {
            loop {
                t += -rng.uniform().ln() / lambda;
                if t > big_t {
                    break;
                }
                x += 1.0;
                tx = t;
                if rng.uniform() < drop {
                    break;
                }
            }
        }
        xs.push(x);
        txs.push(tx);
        ts.push(big_t);
    }
    (xs, txs, ts)
}

/// The P(alive) and expected-purchase bands (90 days, no spend model) of the first `n`
/// customers under `draws`, as the interval tests at the models' limits use them.
pub(crate) fn purchase_bands(
    draws: &[crate::models::PurchaseModel],
    (x, tx, t): (&[f64], &[f64], &[f64]),
    n: usize,
) -> crate::models::intervals::Intervals {
    crate::models::intervals::customer_intervals(
        draws,
        None,
        90.0,
        &x[..n],
        &tx[..n],
        &t[..n],
        &vec![0.0; n],
        &crate::models::ClvOptions::default(),
    )
}

/// The customers of the warm-start sample a fit's message names ("… a 4061-customer
/// subsample …").
pub(crate) fn sampled_customers(message: &str) -> Option<usize> {
    let end = message.find("-customer subsample")?;
    let digits = message[..end]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?;
    digits.parse().ok()
}
