//! Synthetic transaction histories drawn from a BTYD population whose parameters are known.
//!
//! # Why
//!
//! Model fits need data whose true parameters are known, so that a test can check that a fit
//! recovers them. Benchmarks at a million customers need *distinct* customers. Copies of one
//! sample such as CDNOW collapse into a few hundred distinct `(x, t_x, T)` rows, so they measure
//! the deduplication and not the fit (see `BTYD_NOTES.md`, "Speed"). This module simulates such
//! a population. It is pure computation (no polars, no I/O); writing the rows out is left to the
//! caller.
//!
//! # What is simulated
//!
//! Each customer `i` (id `C0000001` for `i = 0`) is drawn independently:
//!
//! 1. **Acquisition day** `d₀`: uniform on `[start, end]` ([`Acquisition::Uniform`]) or `start`
//!    for everyone ([`Acquisition::AtStart`]). The first transaction happens on `d₀`.
//! 2. **Purchase process**, BG/NBD (Fader, Hardie & Lee 2005, assumptions i–v). The purchase rate
//!    is `λ ~ Gamma(shape r, rate α)` per day and the dropout probability is `p ~ Beta(a, b)`.
//!    While alive, repeat purchases arrive at exponential gaps with rate `λ`. The customer drops
//!    out with probability `p` right after each *repeat* purchase ([`Dropout`]).
//! 3. **Days**: a purchase at continuous time `t` after acquisition lands on day `d₀ + ⌊t⌋`. It
//!    is kept while that day is `≤ end`, that is while `t < end − d₀ + 1`. The number of rows
//!    minus one is therefore exactly the BG/NBD count `X(end − d₀ + 1)`, with nothing lost to
//!    rounding. Several purchases can land on one day. They are separate orders (separate rows),
//!    and the customer summary merges them into one purchase period.
//! 4. **Spend**, Gamma-Gamma (Fader & Hardie 2013, note 025): `ν ~ Gamma(shape q, rate v)` per
//!    customer, and each transaction's amount is `z ~ Gamma(shape p, rate ν)`. The population
//!    mean is `E[z] = p·v/(q−1)` ([`expected_mean_amount`]). Amounts are rounded to cents (at
//!    least 0.01) and multiplied by [`B2B_SPEND_SCALE`] when `b2b` is set.
//! 5. **Cosmetic columns**, which no model uses: quantity `1 + Poisson(0.5)` (`1 + Poisson(4)` for
//!    b2b), category (each customer prefers 1–4 of [`CATEGORIES`]; 85 % of orders come from
//!    those), channel (the customer's main channel for 80 % of orders, otherwise any of
//!    [`CHANNELS`]), region and industry.
//!
//! # Dropout after the first purchase
//!
//! In the BG/NBD a customer cannot drop out at time 0: a customer with no repeat purchase has
//! likelihood `e^{−λT}` (eq. 3, the `δ_{x>0}` term), and `P(alive | x = 0) = 1`. `custval`'s
//! `models::bgnbd` fits exactly that model, so [`Dropout::AfterRepeatPurchases`] is the default
//! and data generated with it should be recovered by the fit. [`Dropout::AfterEveryPurchase`]
//! adds a dropout draw right after the first purchase. That is the MBG/NBD of Batislam, Denizel
//! & Filiztekin (2007). Use it to test how a BG/NBD fit behaves when its assumption is wrong.
//!
//! # Determinism
//!
//! Every customer has their own ChaCha8 generator, keyed by `(seed, customer index)`. The key is
//! the two numbers written side by side, not a hash of them, so two different pairs never share
//! a stream. With a hash such as `seed ^ splitmix(i)`, two pairs can share one by chance. Each
//! generator has two streams. Stream 0 draws the purchase process and the amounts. Stream 1
//! draws the cosmetic columns. So turning `b2b` on or off, or changing how categories are drawn,
//! leaves every customer's days and unscaled amounts unchanged. Customers are generated in
//! parallel with rayon and concatenated in customer order, so the output does not depend on the
//! number of threads. It does depend on the versions of `rand_distr` and `rand_chacha`, which
//! `Cargo.lock` pins.
//!
//! # Cost
//!
//! With the defaults a customer has about 4.5 rows. Each row holds four `String`s, so a million
//! customers (4.5 M rows) peak at about 1.8 GB and take a few seconds on two cores; the time goes
//! into allocating those strings. The rate `λ` has no upper bound: a small `α` or a very long
//! window gives some customers thousands of rows.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp1, Gamma, Poisson};
use rayon::prelude::*;

/// Product categories. Each customer prefers 1–4 of them.
pub const CATEGORIES: [&str; 8] = [
    "electronics",
    "home",
    "apparel",
    "grocery",
    "beauty",
    "sports",
    "toys",
    "books",
];
/// Sales channels, in the order of the weights used to draw a customer's main channel.
pub const CHANNELS: [&str; 4] = ["web", "store", "partner", "phone"];
/// Regions, drawn uniformly.
pub const REGIONS: [&str; 4] = ["North", "South", "East", "West"];
/// Industries, drawn uniformly. They only mean something for b2b data, but are always filled.
pub const INDUSTRIES: [&str; 6] = [
    "retail",
    "manufacturing",
    "technology",
    "healthcare",
    "finance",
    "services",
];
/// Factor applied to every amount when [`GenerateOptions::b2b`] is set.
pub const B2B_SPEND_SCALE: f64 = 20.0;

/// Cumulative probabilities of the main channel over [`CHANNELS`] (b2c: mostly web and store).
const MAIN_CHANNEL_CDF_B2C: [f64; 4] = [0.50, 0.85, 0.90, 1.0];
/// Cumulative probabilities of the main channel over [`CHANNELS`] (b2b: partner and phone too).
const MAIN_CHANNEL_CDF_B2B: [f64; 4] = [0.35, 0.40, 0.75, 1.0];
/// Share of orders placed through the customer's main channel; the rest pick any channel.
const MAIN_CHANNEL_SHARE: f64 = 0.8;
/// Share of orders from the customer's preferred categories; the rest pick any category.
const PREFERRED_CATEGORY_SHARE: f64 = 0.85;
/// Mean of the Poisson part of `quantity` (b2c, b2b).
const EXTRA_QUANTITY_MEAN: (f64, f64) = (0.5, 4.0);
/// Customers per rayon task. The output does not depend on it (each customer has its own RNG).
const CHUNK: usize = 1024;
/// Third word of every ChaCha key: keeps these streams apart from any other use of the seed.
const KEY_DOMAIN: u64 = 0x6375_7374_7661_6c67; // "custvalg"
/// Epoch day of 2023-01-01.
const DEFAULT_START: i32 = 19_358;
/// Epoch day of 2024-12-31.
const DEFAULT_END: i32 = 20_088;

/// When may a customer drop out? See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dropout {
    /// BG/NBD: only right after a repeat purchase, never right after the first.
    #[default]
    AfterRepeatPurchases,
    /// MBG/NBD: right after every purchase, the first included.
    AfterEveryPurchase,
}

/// How acquisition days are spread over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Acquisition {
    /// Uniform on `[start, end]`: a cohort mix, like a real customer base.
    #[default]
    Uniform,
    /// Everyone on `start`: one cohort, all observed for the whole window (for closed-form checks).
    AtStart,
}

/// Parameters of the simulated population. Days are epoch days (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Number of customers. Every customer has at least one transaction.
    pub customers: usize,
    /// First possible acquisition day.
    pub start: i32,
    /// Last day of the history (inclusive).
    pub end: i32,
    /// Seed. The same options and seed always produce the same output.
    pub seed: u64,
    /// BG/NBD: shape of the purchase rate `λ ~ Gamma(r, rate α)`, per day.
    pub r: f64,
    /// BG/NBD: rate (in days) of the purchase-rate Gamma.
    pub alpha: f64,
    /// BG/NBD: first shape of the dropout probability `p ~ Beta(a, b)`.
    pub a: f64,
    /// BG/NBD: second shape of the dropout Beta.
    pub b: f64,
    /// Gamma-Gamma: shape of each transaction's amount `z ~ Gamma(p, rate ν)`.
    pub p: f64,
    /// Gamma-Gamma: shape of the per-customer `ν ~ Gamma(q, rate v)`. The mean spend is finite
    /// only for `q > 1`.
    pub q: f64,
    /// Gamma-Gamma: rate of the per-customer `ν`.
    pub v: f64,
    /// Business customers: amounts × [`B2B_SPEND_SCALE`], larger quantities, more partner and
    /// phone orders. Attributes are returned either way.
    pub b2b: bool,
    /// How acquisition days are spread.
    pub acquisition: Acquisition,
    /// When a customer may drop out.
    pub dropout: Dropout,
}

impl Default for GenerateOptions {
    /// 10 000 customers acquired from 2023-01-01 to 2024-12-31, seed 42, `r = 0.5, α = 20,
    /// a = 0.8, b = 3` (a purchase every 40 days on average, about one customer in five drops
    /// out after each repeat purchase), `p = 6, q = 4, v = 15` (mean amount 30), b2c, BG/NBD
    /// dropout.
    fn default() -> Self {
        GenerateOptions {
            customers: 10_000,
            start: DEFAULT_START,
            end: DEFAULT_END,
            seed: 42,
            r: 0.5,
            alpha: 20.0,
            a: 0.8,
            b: 3.0,
            p: 6.0,
            q: 4.0,
            v: 15.0,
            b2b: false,
            acquisition: Acquisition::Uniform,
            dropout: Dropout::AfterRepeatPurchases,
        }
    }
}

impl GenerateOptions {
    /// Sets the number of customers.
    #[must_use]
    pub fn with_customers(mut self, n: usize) -> Self {
        self.customers = n;
        self
    }
    /// Sets the window: first acquisition day `start` and last day `end` (epoch days).
    #[must_use]
    pub fn with_window(mut self, start: i32, end: i32) -> Self {
        self.start = start;
        self.end = end;
        self
    }
    /// Sets the seed of the random streams.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// BG/NBD parameters `r, α, a, b`.
    #[must_use]
    pub fn with_bgnbd(mut self, r: f64, alpha: f64, a: f64, b: f64) -> Self {
        (self.r, self.alpha, self.a, self.b) = (r, alpha, a, b);
        self
    }
    /// Gamma-Gamma parameters `p, q, v`.
    #[must_use]
    pub fn with_gamma_gamma(mut self, p: f64, q: f64, v: f64) -> Self {
        (self.p, self.q, self.v) = (p, q, v);
        self
    }
    /// Sets whether to simulate business customers (see [`GenerateOptions::b2b`]).
    #[must_use]
    pub fn with_b2b(mut self, b2b: bool) -> Self {
        self.b2b = b2b;
        self
    }
    /// Sets how acquisition days are spread over the window.
    #[must_use]
    pub fn with_acquisition(mut self, acquisition: Acquisition) -> Self {
        self.acquisition = acquisition;
        self
    }
    /// Sets when a customer may drop out.
    #[must_use]
    pub fn with_dropout(mut self, dropout: Dropout) -> Self {
        self.dropout = dropout;
        self
    }

    /// Checks that the window is not empty and that every parameter is finite and > 0.
    pub fn validate(&self) -> Result<(), GenerateError> {
        if self.start > self.end {
            return Err(GenerateError::EmptyWindow {
                start: self.start,
                end: self.end,
            });
        }
        let params = [
            ("r", self.r),
            ("alpha", self.alpha),
            ("a", self.a),
            ("b", self.b),
            ("p", self.p),
            ("q", self.q),
            ("v", self.v),
        ];
        for (name, value) in params {
            if !(value.is_finite() && value > 0.0) {
                return Err(GenerateError::InvalidParameter {
                    name,
                    value,
                    expected: "a finite number > 0",
                });
            }
        }
        Ok(())
    }
}

/// Invalid [`GenerateOptions`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A population parameter is not a finite number > 0.
    #[error("generate: {name} = {value} is invalid: expected {expected}")]
    InvalidParameter {
        /// The parameter's name (`r`, `alpha`, `a`, `b`, `p`, `q` or `v`).
        name: &'static str,
        /// The value given.
        value: f64,
        /// What the value must be.
        expected: &'static str,
    },
    /// The window is empty: the start day is after the end day.
    #[error("generate: start day {start} is after end day {end} (epoch days); set start <= end")]
    EmptyWindow {
        /// First possible acquisition day (epoch day).
        start: i32,
        /// Last day of the history (epoch day).
        end: i32,
    },
}

/// One row per transaction (order). Rows are grouped by customer, in customer order, and by day
/// within a customer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transactions {
    /// `C` + the 1-based customer index, zero-padded to 7 digits (wider above 9 999 999).
    pub customer_id: Vec<String>,
    /// Epoch day of the transaction, in `[start, end]`.
    pub day: Vec<i32>,
    /// `O` + the 1-based row number, zero-padded to 9 digits; unique.
    pub order_id: Vec<String>,
    /// Amount in currency units, rounded to cents, ≥ 0.01.
    pub amount: Vec<f64>,
    /// Items in the order, ≥ 1.
    pub quantity: Vec<i32>,
    /// One of [`CATEGORIES`].
    pub category: Vec<String>,
    /// One of [`CHANNELS`].
    pub channel: Vec<String>,
}

impl Transactions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.customer_id.len()
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.customer_id.is_empty()
    }
}

/// One row per customer, in customer order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes {
    /// The customer's id, as in [`Transactions::customer_id`].
    pub customer_id: Vec<String>,
    /// One of [`REGIONS`].
    pub region: Vec<String>,
    /// One of [`INDUSTRIES`].
    pub industry: Vec<String>,
    /// The customer's main channel, one of [`CHANNELS`].
    pub channel: Vec<String>,
}

/// Population mean purchase rate `E[λ] = r/α`, in purchases per day while alive.
pub fn expected_mean_rate(opts: &GenerateOptions) -> f64 {
    opts.r / opts.alpha
}

/// Population mean amount per transaction `E[z] = p·v/(q−1)` (× [`B2B_SPEND_SCALE`] for b2b).
/// Comes from `E[z | ν] = p/ν` and `E[1/ν] = v/(q−1)`. Infinite when `q ≤ 1`.
pub fn expected_mean_amount(opts: &GenerateOptions) -> f64 {
    if opts.q <= 1.0 {
        return f64::INFINITY;
    }
    let scale = if opts.b2b { B2B_SPEND_SCALE } else { 1.0 };
    opts.p * opts.v / (opts.q - 1.0) * scale
}

/// Generates the population described by `opts`. See the module doc.
///
/// # Panics
///
/// If [`GenerateOptions::validate`] fails. Use [`try_generate`] to get the error instead.
pub fn generate(opts: &GenerateOptions) -> (Transactions, Attributes) {
    try_generate(opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`generate`], but returns invalid options as an error.
pub fn try_generate(opts: &GenerateOptions) -> Result<(Transactions, Attributes), GenerateError> {
    opts.validate()?;
    let samplers = Samplers::new(opts);
    let n = opts.customers;
    let chunks: Vec<Chunk> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut chunk = Chunk::default();
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                simulate_customer(opts, &samplers, i, &mut chunk);
            }
            chunk
        })
        .collect();

    let rows: usize = chunks.iter().map(|c| c.tx.len()).sum();
    let mut tx = Transactions::default();
    let mut attrs = Attributes::default();
    reserve_tx(&mut tx, rows);
    attrs.customer_id.reserve(n);
    attrs.region.reserve(n);
    attrs.industry.reserve(n);
    attrs.channel.reserve(n);
    for mut c in chunks {
        tx.customer_id.append(&mut c.tx.customer_id);
        tx.day.append(&mut c.tx.day);
        tx.amount.append(&mut c.tx.amount);
        tx.quantity.append(&mut c.tx.quantity);
        tx.category.append(&mut c.tx.category);
        tx.channel.append(&mut c.tx.channel);
        attrs.customer_id.append(&mut c.attrs.customer_id);
        attrs.region.append(&mut c.attrs.region);
        attrs.industry.append(&mut c.attrs.industry);
        attrs.channel.append(&mut c.attrs.channel);
    }
    tx.order_id = (1..=rows)
        .into_par_iter()
        .map(|k| format!("O{k:09}"))
        .collect();
    Ok((tx, attrs))
}

fn reserve_tx(tx: &mut Transactions, rows: usize) {
    tx.customer_id.reserve(rows);
    tx.day.reserve(rows);
    tx.amount.reserve(rows);
    tx.quantity.reserve(rows);
    tx.category.reserve(rows);
    tx.channel.reserve(rows);
}

/// Distributions shared by all customers (they depend on the options only).
struct Samplers {
    lambda: Gamma<f64>,
    dropout: Beta<f64>,
    nu: Gamma<f64>,
    extra_quantity: Poisson<f64>,
    main_channel_cdf: [f64; 4],
    spend_scale: f64,
}

impl Samplers {
    /// `opts` must be valid, so none of the constructors can fail.
    fn new(opts: &GenerateOptions) -> Self {
        // rand_distr's Gamma takes a scale: rate α is scale 1/α.
        let lambda = Gamma::new(opts.r, 1.0 / opts.alpha).expect("r, alpha validated");
        let dropout = Beta::new(opts.a, opts.b).expect("a, b validated");
        let nu = Gamma::new(opts.q, 1.0 / opts.v).expect("q, v validated");
        let (quantity_mean, main_channel_cdf, spend_scale) = if opts.b2b {
            (EXTRA_QUANTITY_MEAN.1, MAIN_CHANNEL_CDF_B2B, B2B_SPEND_SCALE)
        } else {
            (EXTRA_QUANTITY_MEAN.0, MAIN_CHANNEL_CDF_B2C, 1.0)
        };
        Samplers {
            lambda,
            dropout,
            nu,
            extra_quantity: Poisson::new(quantity_mean).expect("constant mean > 0"),
            main_channel_cdf,
            spend_scale,
        }
    }
}

#[derive(Default)]
struct Chunk {
    tx: Transactions,
    attrs: Attributes,
}

/// The generator of customer `index`, on `stream` (0: purchases and amounts, 1: cosmetics).
fn customer_rng(seed: u64, index: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(&KEY_DOMAIN.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// Index of the first cumulative probability above a uniform draw.
fn pick_cdf(rng: &mut ChaCha8Rng, cdf: &[f64]) -> usize {
    let u: f64 = rng.random();
    cdf.iter().position(|&c| u < c).unwrap_or(cdf.len() - 1)
}

/// Appends customer `i`'s attribute row and transaction rows to `out`.
fn simulate_customer(opts: &GenerateOptions, s: &Samplers, i: usize, out: &mut Chunk) {
    let mut behaviour = customer_rng(opts.seed, i as u64, 0);
    let mut cosmetic = customer_rng(opts.seed, i as u64, 1);
    let id = format!("C{:07}", i + 1);

    // Attributes and preferences (stream 1).
    let region = REGIONS[cosmetic.random_range(0..REGIONS.len())];
    let industry = INDUSTRIES[cosmetic.random_range(0..INDUSTRIES.len())];
    let main_channel = pick_cdf(&mut cosmetic, &s.main_channel_cdf);
    let mut categories: [usize; CATEGORIES.len()] = std::array::from_fn(|k| k);
    let preferred = cosmetic.random_range(1..=4usize);
    for k in 0..preferred {
        // Partial Fisher-Yates: the first `preferred` slots become a uniform random subset.
        let j = cosmetic.random_range(k..categories.len());
        categories.swap(k, j);
    }
    let preferred = &categories[..preferred];
    out.attrs.customer_id.push(id.clone());
    out.attrs.region.push(region.to_string());
    out.attrs.industry.push(industry.to_string());
    out.attrs.channel.push(CHANNELS[main_channel].to_string());

    // The BTYD draws (stream 0), always in this order.
    let acquired = match opts.acquisition {
        Acquisition::Uniform => behaviour.random_range(opts.start..=opts.end),
        Acquisition::AtStart => opts.start,
    };
    let lambda = s.lambda.sample(&mut behaviour);
    let p_drop = s.dropout.sample(&mut behaviour);
    // ν can underflow to 0 only for absurd (q, v); keep the scale 1/ν finite.
    let nu = s.nu.sample(&mut behaviour).max(1e-300);
    let spend = Gamma::new(opts.p, 1.0 / nu).expect("p validated, nu > 0");

    // A purchase at time t lands on day acquired + ⌊t⌋, which is ≤ end iff t < horizon.
    let horizon = f64::from(opts.end) - f64::from(acquired) + 1.0;
    let mut t = 0.0_f64;
    let mut repeat = false;
    loop {
        let z = spend.sample(&mut behaviour) * s.spend_scale;
        let amount = ((z * 100.0).round() / 100.0).max(0.01);
        // 0 <= t < horizon <= 2^32: the cast to i64 is a floor, and the day is at most `end`.
        let day = (i64::from(acquired) + t as i64) as i32;

        let extra = s.extra_quantity.sample(&mut cosmetic);
        let category = if cosmetic.random::<f64>() < PREFERRED_CATEGORY_SHARE {
            preferred[cosmetic.random_range(0..preferred.len())]
        } else {
            cosmetic.random_range(0..CATEGORIES.len())
        };
        let channel = if cosmetic.random::<f64>() < MAIN_CHANNEL_SHARE {
            main_channel
        } else {
            cosmetic.random_range(0..CHANNELS.len())
        };

        out.tx.customer_id.push(id.clone());
        out.tx.day.push(day);
        out.tx.amount.push(amount);
        out.tx.quantity.push(1 + extra as i32);
        out.tx.category.push(CATEGORIES[category].to_string());
        out.tx.channel.push(CHANNELS[channel].to_string());

        let may_drop = repeat || opts.dropout == Dropout::AfterEveryPurchase;
        if may_drop && behaviour.random::<f64>() < p_drop {
            break;
        }
        // λ can underflow to 0 for small r: such a customer never buys again.
        if lambda <= 0.0 {
            break;
        }
        let gap: f64 = Exp1.sample(&mut behaviour);
        t += gap / lambda;
        if t.is_nan() || t >= horizon {
            break;
        }
        repeat = true;
    }
}

/// Headline numbers of a transaction table, for tests and log lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Rows.
    pub transactions: usize,
    /// Distinct customer ids.
    pub customers: usize,
    /// Customers with exactly one row (one order, not one purchase day).
    pub one_time_buyers: usize,
    /// `transactions / customers` (0 when empty).
    pub mean_transactions_per_customer: f64,
    /// Mean of `amount` over rows (0 when empty).
    pub mean_amount: f64,
    /// Sum of `amount`.
    pub total_amount: f64,
    /// Earliest and latest day (`None` when empty).
    pub first_day: Option<i32>,
    /// Latest day (`None` when empty).
    pub last_day: Option<i32>,
}

/// Computes [`Stats`]. Rows need not be grouped by customer.
pub fn summary_stats(tx: &Transactions) -> Stats {
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for id in &tx.customer_id {
        *per_customer.entry(id.as_str()).or_insert(0) += 1;
    }
    let transactions = tx.len();
    let customers = per_customer.len();
    let total_amount: f64 = tx.amount.iter().sum();
    let ratio = |num: f64, den: usize| if den == 0 { 0.0 } else { num / den as f64 };
    Stats {
        transactions,
        customers,
        one_time_buyers: per_customer.values().filter(|&&c| c == 1).count(),
        mean_transactions_per_customer: ratio(transactions as f64, customers),
        mean_amount: ratio(total_amount, transactions),
        total_amount,
        first_day: tx.day.iter().copied().min(),
        last_day: tx.day.iter().copied().max(),
    }
}

#[cfg(test)]
mod tests;
