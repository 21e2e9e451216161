//! The report's charts: inline SVG drawn by plotters' SVG backend. Text sizes come from
//! plotters' built-in estimate (no font files), and the SVG refers to no external resource.
//!
//! Categories sit on a numeric axis with one key point per category (`with_key_points`), so
//! every label is drawn exactly once at the centre of its band.

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Width of every chart, pixels (the page lays charts out at most this wide).
const W: u32 = 640;
/// Room for category labels left of horizontal bars.
const LABEL_W: u32 = 150;
const FONT: &str = "sans-serif";

/// Series colours (Okabe–Ito, then Tol's muted colours).
const COLORS: [RGBColor; 12] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(120, 120, 120),
    RGBColor(136, 34, 85),
    RGBColor(68, 170, 153),
    RGBColor(153, 153, 51),
    RGBColor(51, 34, 136),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// Series `i`'s colour as CSS hex, for legends drawn in HTML below a chart.
pub(crate) fn color_hex(i: usize) -> String {
    let RGBColor(r, g, b) = color(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn render(
    w: u32,
    h: u32,
    f: impl for<'a> FnOnce(&DrawingArea<SVGBackend<'a>, Shift>) -> DrawResult,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        f(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    // plotters writes a viewBox: the page scales the chart down on narrow screens.
    Ok(out)
}

/// The axis range covering `values` and 0, with 5 % headroom; never empty.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo <= 0.0 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    (if lo < 0.0 { lo - pad } else { lo }, hi + pad)
}

/// Categories on a numeric axis: band `i` covers [i, i + 1) and its label (the only key point)
/// sits at i + 0.5, so every category is labelled once, at the centre of its band.
struct Bands {
    inner: RangedCoordf64,
    n: usize,
}

impl Bands {
    fn new(n: usize) -> Bands {
        Bands {
            inner: (0.0..n.max(1) as f64).into(),
            n,
        }
    }
}

impl Ranged for Bands {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.n).map(|i| i as f64 + 0.5).collect()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for Bands {
    fn format(value: &f64) -> String {
        format!("{value}")
    }
}

/// The label of the band centred at `v`; with many bands only every k-th is labelled (at most
/// 12 labels per axis).
fn category(labels: &[String], v: f64) -> String {
    let i = (v - 0.5).round();
    let step = labels.len().div_ceil(12).max(1);
    if i >= 0.0 && (i as usize) < labels.len() && (v - 0.5 - i).abs() < 1e-6 {
        let i = i as usize;
        if (labels.len() - 1 - i).is_multiple_of(step) {
            return labels[i].clone();
        }
    }
    String::new()
}

/// Horizontal bars, one per label, first label on top.
pub(crate) fn hbars(
    labels: &[String],
    values: &[f64],
    x_desc: &str,
    fmt: &dyn Fn(f64) -> String,
) -> Result<String, String> {
    let n = labels.len();
    let (lo, hi) = span(values.iter().copied());
    // Reverse so the first label is drawn at the top.
    let rev: Vec<String> = labels.iter().rev().cloned().collect();
    render(W, 60 + 26 * n as u32, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(38)
            .y_label_area_size(LABEL_W)
            .build_cartesian_2d(lo..hi, Bands::new(n))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(6)
            .x_label_formatter(&|v| fmt(*v))
            .y_label_formatter(&|v| category(&rev, *v))
            .x_desc(x_desc)
            .label_style((FONT, 12))
            .max_light_lines(2)
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
            let row = (n - 1 - i) as f64;
            let mut r = Rectangle::new([(0.0, row), (v, row + 1.0)], color(0).filled());
            r.set_margin(4, 4, 0, 0);
            r
        }))?;
        Ok(())
    })
}

/// A chart with one band per x label and a numeric y axis, its mesh drawn.
fn over_categories<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    x_labels: &[String],
    y: std::ops::Range<f64>,
    y_desc: &str,
    fmt: &dyn Fn(f64) -> String,
) -> Result<
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<Bands, RangedCoordf64>>,
    Box<dyn std::error::Error>,
> {
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(Bands::new(x_labels.len()), y)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|v| category(x_labels, *v))
        .y_labels(6)
        .y_label_formatter(&|v| fmt(*v))
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .max_light_lines(2)
        .draw()?;
    Ok(chart)
}

/// Vertical stacked bars: one bar per x label, one layer per series (values ≥ 0). The legend is
/// the caller's (HTML, with [`color_hex`]).
pub(crate) fn stacked_bars(
    x_labels: &[String],
    series: &[(String, Vec<f64>)],
    y_desc: &str,
    fmt: &dyn Fn(f64) -> String,
) -> Result<String, String> {
    let n = x_labels.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| series.iter().map(|(_, v)| v[i].max(0.0)).sum())
        .collect();
    let (_, hi) = span(totals.iter().copied());
    render(W, 320, |root| {
        let mut chart = over_categories(root, x_labels, 0.0..hi, y_desc, fmt)?;
        let mut base = vec![0.0; n];
        for (k, (_, values)) in series.iter().enumerate() {
            let c = color(k);
            let bars: Vec<Rectangle<(f64, f64)>> = (0..n)
                .map(|i| {
                    let v = values[i].max(0.0);
                    let mut r = Rectangle::new(
                        [(i as f64, base[i]), (i as f64 + 1.0, base[i] + v)],
                        c.filled(),
                    );
                    r.set_margin(0, 0, 6, 6);
                    base[i] += v;
                    r
                })
                .collect();
            chart.draw_series(bars)?;
        }
        Ok(())
    })
}

/// Lines over categories (one point per x label; a missing value breaks the line). The legend is
/// the caller's.
pub(crate) fn lines(
    x_labels: &[String],
    series: &[(String, Vec<Option<f64>>)],
    y_desc: &str,
    fmt: &dyn Fn(f64) -> String,
) -> Result<String, String> {
    let (lo, hi) = span(series.iter().flat_map(|(_, v)| v.iter().flatten().copied()));
    render(W, 320, |root| {
        let mut chart = over_categories(root, x_labels, lo..hi, y_desc, fmt)?;
        for (k, (_, values)) in series.iter().enumerate() {
            let c = color(k);
            let points: Vec<(f64, Option<f64>)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64 + 0.5, v.filter(|v| v.is_finite())))
                .collect();
            for run in points.split(|(_, v)| v.is_none()).filter(|r| r.len() > 1) {
                chart.draw_series(LineSeries::new(
                    run.iter().map(|&(x, v)| (x, v.unwrap_or_default())),
                    c.stroke_width(2),
                ))?;
            }
            chart.draw_series(
                points
                    .iter()
                    .filter_map(|&(x, v)| v.map(|v| Circle::new((x, v), 3, c.filled()))),
            )?;
        }
        Ok(())
    })
}

/// A heatmap: rows top to bottom, columns left to right, the value printed in each cell and the
/// cell shaded by it (darker = larger). `None` cells stay blank.
pub(crate) fn heatmap(
    row_labels: &[String],
    col_labels: &[String],
    cells: &[Vec<Option<f64>>],
    x_desc: &str,
    y_desc: &str,
    fmt: &dyn Fn(f64) -> String,
) -> Result<String, String> {
    let (nr, nc) = (row_labels.len(), col_labels.len());
    let max = cells
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let rev: Vec<String> = row_labels.iter().rev().cloned().collect();
    let h = 70 + (24 * nr as u32).clamp(120, 480);
    render(W, h, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(120)
            .build_cartesian_2d(Bands::new(nc), Bands::new(nr))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&|v| category(col_labels, *v))
            .y_label_formatter(&|v| category(&rev, *v))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 12))
            .max_light_lines(2)
            .draw()?;
        for (r, row) in cells.iter().enumerate() {
            let y = (nr - 1 - r) as f64;
            for (c, v) in row.iter().enumerate() {
                let Some(v) = v.filter(|v| v.is_finite()) else {
                    continue;
                };
                let t = if max > 0.0 {
                    (v / max).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let fill = shade(t);
                let mut rect =
                    Rectangle::new([(c as f64, y), (c as f64 + 1.0, y + 1.0)], fill.filled());
                rect.set_margin(1, 1, 1, 1);
                chart.draw_series(std::iter::once(rect))?;
                let ink = if t > 0.55 { WHITE } else { BLACK };
                let style = TextStyle::from((FONT, 11).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(
                    fmt(v),
                    (c as f64 + 0.5, y + 0.5),
                    style,
                )))?;
            }
        }
        Ok(())
    })
}

/// White → blue.
fn shade(t: f64) -> RGBColor {
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(240.0, 8.0), lerp(246.0, 69.0), lerp(252.0, 148.0))
}

/// A curve on [0, 1] × [0, 1] (the Pareto curve) with the diagonal and labelled vertical marks.
pub(crate) fn share_curve(
    points: &[(f64, f64)],
    marks: &[(f64, String)],
    x_desc: &str,
    y_desc: &str,
) -> Result<String, String> {
    render(W, 340, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v: &f64| format!("{:.0} %", *v * 100.0))
            .y_label_formatter(&|v: &f64| format!("{:.0} %", *v * 100.0))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 12))
            .max_light_lines(2)
            .draw()?;
        chart.draw_series(LineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            RGBColor(170, 170, 170).stroke_width(1),
        ))?;
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color(0).stroke_width(2),
        ))?;
        for (k, (x, label)) in marks.iter().enumerate() {
            let c = color(k + 1);
            chart.draw_series(LineSeries::new(
                vec![(*x, 0.0), (*x, 1.0)],
                c.stroke_width(2),
            ))?;
            let style = TextStyle::from((FONT, 12).into_font()).color(&c);
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x + 0.01, 0.08 + 0.08 * k as f64),
                style,
            )))?;
        }
        Ok(())
    })
}

/// A histogram from precomputed bins `(lo, hi, count)` on a numeric x axis (in the caller's
/// units, e.g. log10 of the value), x labels through `x_fmt`.
pub(crate) fn histogram(
    bins: &[(f64, f64, f64)],
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(f64) -> String,
) -> Result<String, String> {
    let lo = bins.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
    let hi = bins.iter().map(|b| b.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let (_, top) = span(bins.iter().map(|b| b.2));
    render(W, 300, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(8)
            .x_label_formatter(&|v| x_fmt(*v))
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 12))
            .max_light_lines(2)
            .draw()?;
        chart.draw_series(bins.iter().map(|&(a, b, n)| {
            let mut r = Rectangle::new([(a, 0.0), (b, n)], color(0).filled());
            r.set_margin(0, 0, 1, 1);
            r
        }))?;
        Ok(())
    })
}
