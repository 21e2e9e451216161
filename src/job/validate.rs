//! Validation: from the parsed [`JobFile`] to the [`Job`] the runner executes. Every error names
//! the file, the line and the key ([`JobError`]).

use super::*;
use std::path::{Path, PathBuf};

/// Names of every output table, for messages.
fn table_names() -> String {
    Table::ALL.map(Table::as_str).join(", ")
}

/// serde's "unknown field `amont`, expected one of `customer_id`, `amount`, ..." with a hint
/// naming the closest known key.
pub(super) fn did_you_mean(message: String) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message;
    };
    let best = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| {
            (
                crate::text::edit_distance(&unknown.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .min();
    match best {
        Some((d, k)) if d <= 3 && d < unknown.len() => format!("{message} (did you mean `{k}`?)"),
        _ => message,
    }
}

/// Byte offset of the line that sets `key` (`"section.field"` or `"section"`): the field's line
/// inside `[section]` if present, else the section header, else the start of the file. Used for
/// the line numbers of errors found after parsing.
fn key_offset(text: &str, key: &str) -> std::ops::Range<usize> {
    let (section, field) = key.split_once('.').unwrap_or((key, ""));
    let header = format!("[{section}]");
    let mut offset = 0;
    let mut in_section = false;
    let mut found = None;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            if in_section {
                break;
            }
            in_section = t == header;
            if in_section {
                found = Some(offset);
            }
        } else if in_section && !field.is_empty() {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == field {
                    return offset..offset;
                }
            }
        }
        offset += line.len();
    }
    let o = found.unwrap_or(0);
    o..o
}

pub(super) fn line_of(text: &str, span: std::ops::Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

/// A local relative URI of the job file, resolved against the job file's directory (so that a
/// job runs the same from any working directory); other URIs unchanged.
pub(super) fn resolve_from(base: &Path, uri: &str) -> String {
    if !crate::text::is_local(uri) || uri.trim().is_empty() {
        return uri.to_string();
    }
    let p = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if p.is_absolute() {
        return uri.to_string();
    }
    // Lexically normalised (`a/../b` → `b`), so paths read well in messages and manifests.
    let joined = base.join(p);
    let mut parts: Vec<std::path::Component> = Vec::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) =>
            {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = parts.iter().collect::<PathBuf>().display().to_string();
    if uri.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    out
}

pub(super) fn validate(
    mut file: JobFile,
    text: &str,
    path: &Path,
    overrides: &Overrides,
) -> Result<Job, JobError> {
    // Relative local URIs in the job file are relative to the job file's directory.
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = std::path::absolute(&base).unwrap_or(base);
    for uri in [
        Some(&mut file.source.uri),
        file.attributes.as_mut().map(|a| &mut a.uri),
        Some(&mut file.output.uri),
    ]
    .into_iter()
    .flatten()
    {
        let resolved = resolve_from(&base, uri.get_ref());
        *uri.get_mut() = resolved;
    }
    if let Some(x) = &mut file.relationship.satisfaction {
        x.uri = resolve_from(&base, &x.uri);
    }
    if let Some(x) = &mut file.relationship.interactions {
        x.uri = resolve_from(&base, &x.uri);
    }
    let ctx = Ctx { text, path };
    let invalid =
        |span: std::ops::Range<usize>, key: &str, message: String| ctx.invalid(span, key, message);
    let as_of = match (&overrides.as_of, &file.as_of) {
        (Some(d), _) => *d,
        (None, Some(s)) => parse_date(s.get_ref()).map_err(|m| invalid(s.span(), "as_of", m))?,
        (None, None) => {
            return Err(invalid(
                0..0,
                "as_of",
                "missing: set `as_of = \"YYYY-MM-DD\"` in the job file or pass --as-of".into(),
            ))
        }
    };
    if let Some(l) = &file.lookback_days {
        if !(1..=MAX_LOOKBACK_DAYS).contains(l.get_ref()) {
            return Err(invalid(
                l.span(),
                "lookback_days",
                format!(
                    "expected 1 to {MAX_LOOKBACK_DAYS} days (1,000 years), found {}",
                    l.get_ref()
                ),
            ));
        }
    }
    let unit_days = file.time_unit.days();
    for (key, s) in [
        ("source.uri", &file.source.uri),
        ("output.uri", &file.output.uri),
    ] {
        if s.get_ref().trim().is_empty() {
            return Err(invalid(s.span(), key, "must not be empty".into()));
        }
    }
    validate_storage(&file, &ctx)?;
    let tables = validate_output(&file, overrides, &ctx)?;
    validate_source(&file, &ctx)?;
    let segments = validate_rfm(&file, &ctx)?;
    let tiers = validate_tiers(&file.tiers, &ctx)?;
    let clv = validate_clv(&file.clv, overrides, &ctx)?;
    validate_columns(&file, &ctx)?;
    let behaviour = validate_behaviour(&file, &ctx)?;
    let min_date = file
        .quality
        .validate()
        .map_err(|m| invalid(key_offset(text, "quality"), "quality", m))?;
    Ok(Job {
        name: file.name,
        path: path.to_path_buf(),
        as_of,
        lookback_days: file.lookback_days.map(|l| l.into_inner()),
        unit_days,
        source: file.source,
        columns: file.columns,
        attributes: file.attributes,
        output_uri: overrides
            .output
            .clone()
            .unwrap_or_else(|| file.output.uri.get_ref().clone()),
        output_storage: file.output.storage,
        tables,
        segments,
        tiers,
        clv,
        behaviour,
        quality: file.quality,
        min_date,
        scratch: overrides.scratch.clone(),
        scratch_io: overrides.scratch_io,
        wait: overrides.wait,
    })
}

/// Storage options of the source, the output and the attributes: timeouts and retries in range.
fn validate_storage(file: &JobFile, ctx: &Ctx) -> Result<(), JobError> {
    let text = ctx.text;
    let mut storages: Vec<(&str, &StorageOptions)> = vec![
        ("source.storage", &file.source.storage),
        ("output.storage", &file.output.storage),
    ];
    if let Some(a) = &file.attributes {
        storages.push(("attributes.storage", &a.storage));
    }
    for (key, o) in storages {
        if o.timeout_s.is_some_and(|t| !(1..=3600).contains(&t)) {
            return Err(ctx.invalid(
                key_offset(text, key.split('.').next().unwrap_or(key)),
                key,
                format!(
                    "timeout_s: expected 1 to 3600 seconds, found {}",
                    o.timeout_s.unwrap_or_default()
                ),
            ));
        }
        if o.retries.is_some_and(|r| r > 20) {
            return Err(ctx.invalid(
                key_offset(text, key.split('.').next().unwrap_or(key)),
                key,
                format!(
                    "retries: expected 0 to 20, found {}",
                    o.retries.unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// `[output]` and `--output`: the tables to write (then the report, unless switched off), and a
/// writable URI.
fn validate_output(
    file: &JobFile,
    overrides: &Overrides,
    ctx: &Ctx,
) -> Result<Vec<Table>, JobError> {
    let mut tables: Vec<Table> = match &file.output.tables {
        None => Table::ALL.to_vec(),
        Some(t) => {
            let mut tables = Vec::new();
            for name in t.get_ref() {
                match Table::parse(name) {
                    Some(table) => tables.push(table),
                    None => {
                        return Err(ctx.invalid(
                            t.span(),
                            "output.tables",
                            format!("unknown table {name:?}; known tables: {}", table_names()),
                        ))
                    }
                }
            }
            if t.get_ref().is_empty() {
                return Err(ctx.invalid(
                    t.span(),
                    "output.tables",
                    format!(
                        "empty: name at least one table, or remove the key to write all ({})",
                        table_names()
                    ),
                ));
            }
            tables
        }
    };
    if file.output.report.unwrap_or(true) {
        tables.push(Table::Report);
    }
    if let Some(o) = &overrides.output {
        if o.trim().is_empty() {
            return Err(ctx.invalid(
                0..0,
                "--output",
                "must not be empty: give an output URI, or leave --output out to use output.uri"
                    .into(),
            ));
        }
    }
    // HTTP(S) servers are a read-only source: a publish needs PUT, DELETE and conditional writes.
    let (out_key, out_uri, out_span) = match &overrides.output {
        Some(o) => ("--output", o.as_str(), 0..0),
        None => (
            "output.uri",
            file.output.uri.get_ref().as_str(),
            file.output.uri.span(),
        ),
    };
    if matches!(crate::text::scheme_of(out_uri), Some("http" | "https")) {
        return Err(ctx.invalid(
            out_span,
            out_key,
            format!(
                "{out_uri}: HTTP(S) can be read from (source, attributes) but not written to; \
                 write the output to a local path, s3://, gs:// or az://"
            ),
        ));
    }
    Ok(tables)
}

/// `[source]`: an HTTP source names one file.
fn validate_source(file: &JobFile, ctx: &Ctx) -> Result<(), JobError> {
    // Polars cannot list or glob over HTTP: an HTTP source names one file.
    let src = file.source.uri.get_ref();
    if matches!(crate::text::scheme_of(src), Some("http" | "https"))
        && (src.ends_with('/') || src.contains(['*', '?', '[']))
    {
        return Err(ctx.invalid(
            file.source.uri.span(),
            "source.uri",
            format!(
                "{src}: an HTTP(S) source must name one Parquet file (a web server cannot be \
                 listed); name the file, or copy the folder to object storage"
            ),
        ));
    }
    Ok(())
}

/// `[rfm]`: the segment rules, which must cover every score.
fn validate_rfm(file: &JobFile, ctx: &Ctx) -> Result<Vec<SegmentRule>, JobError> {
    Ok(match &file.rfm.segments {
        None => crate::segments::rfm::default_rules(),
        Some(rules) => {
            let parsed = rules
                .get_ref()
                .iter()
                .map(|r| {
                    Ok(SegmentRule {
                        name: r.name.clone(),
                        r: parse_range(r.r.as_deref())?,
                        f: parse_range(r.f.as_deref())?,
                        m: parse_range(r.m.as_deref())?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|m| ctx.invalid(rules.span(), "rfm.segments", m))?;
            if let Some((r, f, m)) = crate::segments::rfm::uncovered(&parsed) {
                return Err(ctx.invalid(
                    rules.span(),
                    "rfm.segments",
                    format!("no rule matches scores R={r} F={f} M={m}; add a catch-all rule (a rule with no r/f/m matches every customer)"),
                ));
            }
            parsed
        }
    })
}

/// `[columns]` and `[attributes]`: an attribute mapped once, a known time zone.
fn validate_columns(file: &JobFile, ctx: &Ctx) -> Result<(), JobError> {
    let text = ctx.text;
    if let Some(a) = &file.attributes {
        for (name, from_tx, from_attr) in [
            ("region", &file.columns.region, &a.region),
            ("industry", &file.columns.industry, &a.industry),
            ("channel", &file.columns.channel, &a.channel),
        ] {
            if from_tx.is_some() && from_attr.is_some() {
                return Err(ctx.invalid(
                    a.uri.span(),
                    "attributes",
                    format!("{name} is mapped both in [columns] and in [attributes]; keep one"),
                ));
            }
        }
    }
    if let Some(tz) = &file.columns.timezone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(ctx.invalid(
                key_offset(text, "columns.timezone"),
                "columns.timezone",
                format!("unknown time zone {tz:?}; use an IANA name such as \"UTC\", \"Europe/Berlin\" or \"Asia/Shanghai\""),
            ));
        }
    }
    Ok(())
}

/// What every section validator needs to name the file and the line of an error.
struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Ctx<'_> {
    fn invalid(&self, span: std::ops::Range<usize>, key: &str, message: String) -> JobError {
        JobError::Invalid {
            path: self.path.to_path_buf(),
            line: line_of(self.text, span),
            key: key.to_string(),
            message,
        }
    }
}

/// `[tiers]`.
fn validate_tiers(t: &TiersFile, ctx: &Ctx) -> Result<TierMethod, JobError> {
    let bad = |m: String| ctx.invalid(key_offset(ctx.text, "tiers"), "tiers", m);
    let (high, medium) = match t.method {
        TierMethodName::Pareto => (t.high.unwrap_or(0.8), t.medium.unwrap_or(0.95)),
        TierMethodName::Percentile => (t.high.unwrap_or(0.2), t.medium.unwrap_or(0.3)),
    };
    let ok = |x: f64| (0.0..=1.0).contains(&x);
    if !ok(high) || !ok(medium) {
        return Err(bad(format!(
            "high and medium must lie in [0, 1], found high={high} medium={medium}"
        )));
    }
    if t.method == TierMethodName::Pareto {
        if medium < high {
            return Err(bad(format!(
                "pareto: medium ({medium}) is a cumulative revenue share and must be >= high ({high})"
            )));
        }
        Ok(TierMethod::Pareto { high, medium })
    } else {
        if high + medium > 1.0 {
            return Err(bad(format!(
                "percentile: high + medium must be <= 1, found {high} + {medium}"
            )));
        }
        Ok(TierMethod::Percentile { high, medium })
    }
}

/// `[clv]`: `None` when `clv.enabled = false`.
fn validate_clv(
    c: &ClvFile,
    overrides: &Overrides,
    ctx: &Ctx,
) -> Result<Option<ClvSettings>, JobError> {
    Ok(if c.enabled {
        let bad = |m: String| ctx.invalid(key_offset(ctx.text, "clv"), "clv", m);
        let (monthly, annual) = match (c.monthly_discount_rate, c.annual_discount_rate) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "set monthly_discount_rate or annual_discount_rate, not both".into(),
                ))
            }
            (Some(m), None) => (m, (1.0 + m).powi(12) - 1.0),
            (None, Some(a)) => (crate::models::monthly_rate_from_annual(a), a),
            (None, None) => (0.01, 1.01f64.powi(12) - 1.0),
        };
        // Bounds that keep every CLV finite and every loop short: a monthly rate of -99% would
        // compound to CLVs of 1e26.
        if !(monthly.is_finite() && monthly > -0.5 && monthly < 10.0) {
            return Err(bad(format!(
                "the monthly discount rate must lie in (-0.5, 10), found {monthly}"
            )));
        }
        for (k, v) in [
            ("margin", c.margin),
            ("acquisition_cost", c.acquisition_cost),
            ("penalizer_coef", c.penalizer_coef),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(format!("{k}: expected a number >= 0, found {v}")));
            }
        }
        if !(c.horizon_months > 0 && c.horizon_months <= MAX_HORIZON_MONTHS) {
            return Err(bad(format!(
                "horizon_months: expected 1 to {MAX_HORIZON_MONTHS} (100 years), found {}",
                c.horizon_months
            )));
        }
        if !(c.days_per_month.is_finite() && (1.0..=366.0).contains(&c.days_per_month)) {
            return Err(bad(format!(
                "days_per_month: expected a number of days in [1, 366], found {}",
                c.days_per_month
            )));
        }
        if !(c.purchase_horizon_days.is_finite()
            && c.purchase_horizon_days > 0.0
            && c.purchase_horizon_days <= 36_600.0)
        {
            return Err(bad(format!(
                "purchase_horizon_days: expected a number of days in (0, 36600], found {}",
                c.purchase_horizon_days
            )));
        }
        if let Some(r) = c.retention_rate {
            if !(0.0..1.0).contains(&r) {
                return Err(bad(format!(
                    "retention_rate: expected 0 <= r < 1, found {r}"
                )));
            }
        }
        if c.interval_draws > MAX_INTERVAL_DRAWS {
            return Err(bad(format!(
                "interval_draws: expected 0 (no intervals) to {MAX_INTERVAL_DRAWS}, found {}",
                c.interval_draws
            )));
        }
        let holdout = overrides.holdout_days.or(c.holdout_days);
        if let Some(h) = holdout {
            if h < 1 {
                return Err(bad(format!("holdout_days: expected >= 1, found {h}")));
            }
        }
        Some(ClvSettings {
            model: c.model.choice(),
            on_fit_failure: match c.on_fit_failure {
                OnFitFailureFile::Fail => crate::valuation::OnFitFailure::Fail,
                OnFitFailureFile::Null => crate::valuation::OnFitFailure::Null,
            },
            horizon_months: c.horizon_months,
            monthly_discount_rate: monthly,
            annual_discount_rate: annual,
            margin: c.margin,
            acquisition_cost: c.acquisition_cost,
            days_per_month: c.days_per_month,
            purchase_horizon_days: c.purchase_horizon_days,
            penalizer_coef: c.penalizer_coef,
            retention_rate: c.retention_rate,
            holdout_days: holdout,
            interval_draws: c.interval_draws,
        })
    } else {
        if overrides.holdout_days.is_some() || c.holdout_days.is_some() {
            tracing::warn!("clv.enabled = false: the holdout (model_diagnostics) is not computed");
        }
        None
    })
}

/// `[churn]`, `[loyalty]`, `[relationship]`, `[matrix]`.
fn validate_behaviour(file: &JobFile, ctx: &Ctx) -> Result<BehaviourSettings, JobError> {
    let bad = |key: &str, m: String| ctx.invalid(key_offset(ctx.text, key), key, m);
    let c = &file.churn;
    if let Some(d) = c.inactivity_days {
        if d < 1 {
            return Err(bad(
                "churn.inactivity_days",
                format!("expected >= 1, found {d}"),
            ));
        }
    }
    if !(c.floor_days > 0.0 && c.gap_multiplier > 0.0) {
        return Err(bad(
            "churn",
            "gap_multiplier and floor_days must be > 0".into(),
        ));
    }
    for (k, v) in [
        ("matrix.value_threshold", file.matrix.value_threshold),
        (
            "matrix.relationship_threshold",
            file.matrix.relationship_threshold,
        ),
    ] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(bad(k, format!("expected a finite number, found {v:?}")));
        }
    }
    if !(0.0 < c.watch_at && c.watch_at <= c.at_risk_at && c.at_risk_at <= 1.0) {
        return Err(bad(
            "churn",
            format!(
                "expected 0 < watch_at <= at_risk_at <= 1, found {} and {}",
                c.watch_at, c.at_risk_at
            ),
        ));
    }
    let l = &file.loyalty;
    crate::features::loyalty::LoyaltyWeights {
        repeat_rate: l.repeat_rate,
        regularity: l.regularity,
        tenure: l.tenure,
        active_share: l.active_share,
        breadth: l.breadth,
    }
    .validate()
    .map_err(|m| bad("loyalty", m))?;
    let r = &file.relationship;
    crate::features::loyalty::RelationshipWeights {
        loyalty: r.loyalty,
        interaction: r.interaction,
        depth: r.depth,
        breadth: r.breadth,
        satisfaction: r.satisfaction.as_ref().map_or(0.0, |x| x.weight),
        interactions: r.interactions.as_ref().map_or(0.0, |x| x.weight),
    }
    .validate()
    .map_err(|m| bad("relationship", m))?;
    if let Some(sat) = &r.satisfaction {
        if sat.max <= sat.min || sat.max.is_nan() || sat.min.is_nan() {
            return Err(bad(
                "relationship.satisfaction",
                "needs max > min (e.g. column = \"nps\", min = 0, max = 10)".into(),
            ));
        }
    }
    Ok(BehaviourSettings {
        churn: file.churn.clone(),
        loyalty: file.loyalty.clone(),
        relationship: file.relationship.clone(),
        matrix: file.matrix.clone(),
    })
}

/// Parse `"4-5"`, `"3"` or nothing (= 1-5).
pub(super) fn parse_range(s: Option<&str>) -> Result<ScoreRange, String> {
    let Some(s) = s else {
        return Ok(ScoreRange(1, 5));
    };
    let bad =
        || format!("score range: expected \"N\" or \"N-M\" with 1 <= N <= M <= 5, found {s:?}");
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u8>(), b.trim().parse::<u8>()),
        None => (s.trim().parse::<u8>(), s.trim().parse::<u8>()),
    };
    match (lo, hi) {
        (Ok(lo), Ok(hi)) if (1..=hi).contains(&lo) && hi <= 5 => Ok(ScoreRange(lo, hi)),
        _ => Err(bad()),
    }
}
