//! Named RFM segments: the classic 11 segments on the R × F score grid.
//!
//! Rules are tried in order and the first match wins. The default grid (R rows, F columns):
//!
//! ```text
//!        F=1              F=2                F=3                F=4              F=5
//! R=5    New Customers    Potential Loyal.   Potential Loyal.   Champions        Champions
//! R=4    Promising        Potential Loyal.   Potential Loyal.   Loyal Customers  Loyal Customers
//! R=3    About To Sleep   About To Sleep     Need Attention     Loyal Customers  Loyal Customers
//! R=2    Hibernating      Hibernating        At Risk            At Risk          Can't Lose Them
//! R=1    Lost             Hibernating        At Risk            At Risk          Can't Lose Them
//! ```
//! M is not used by the defaults (it is highly correlated with F); a job can add `m` ranges.

use serde::{Deserialize, Serialize};
use toml::Spanned;
/// An inclusive score range 1..=5.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ScoreRange(pub u8, pub u8);

impl ScoreRange {
    /// Whether score `s` lies in the range.
    pub fn contains(&self, s: u8) -> bool {
        self.0 <= s && s <= self.1
    }
}

/// A validated segment rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentRule {
    /// The segment name written to `rfm_segment`.
    pub name: String,
    /// Recency scores the rule matches.
    pub r: ScoreRange,
    /// Frequency scores the rule matches.
    pub f: ScoreRange,
    /// Monetary scores the rule matches.
    pub m: ScoreRange,
}

/// The default rules, in match order.
pub(crate) fn default_rules() -> Vec<SegmentRule> {
    let rule = |name: &str, r: (u8, u8), f: (u8, u8)| SegmentRule {
        name: name.to_string(),
        r: ScoreRange(r.0, r.1),
        f: ScoreRange(f.0, f.1),
        m: ScoreRange(1, 5),
    };
    vec![
        rule("Champions", (5, 5), (4, 5)),
        rule("Loyal Customers", (3, 4), (4, 5)),
        rule("Potential Loyalists", (4, 5), (2, 3)),
        rule("New Customers", (5, 5), (1, 1)),
        rule("Promising", (4, 4), (1, 1)),
        rule("Need Attention", (3, 3), (3, 3)),
        rule("About To Sleep", (3, 3), (1, 2)),
        rule("Can't Lose Them", (1, 2), (5, 5)),
        rule("At Risk", (1, 2), (3, 4)),
        rule("Lost", (1, 1), (1, 1)),
        rule("Hibernating", (1, 2), (1, 2)),
    ]
}

/// The segment of one customer's scores, or `None` if no rule matches.
pub(crate) fn segment_of(rules: &[SegmentRule], r: u8, f: u8, m: u8) -> Option<&str> {
    rules
        .iter()
        .find(|s| s.r.contains(r) && s.f.contains(f) && s.m.contains(m))
        .map(|s| s.name.as_str())
}

/// The first (R, F, M) score combination that no rule matches.
pub(crate) fn uncovered(rules: &[SegmentRule]) -> Option<(u8, u8, u8)> {
    for r in 1..=5 {
        for f in 1..=5 {
            for m in 1..=5 {
                if segment_of(rules, r, f, m).is_none() {
                    return Some((r, f, m));
                }
            }
        }
    }
    None
}

/// One named RFM segment rule: score ranges such as `"4-5"` or `"3"`; a missing range matches any.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SegmentRuleFile {
    /// The segment name written to `rfm_segment`.
    pub name: String,
    /// Recency scores, `"N"` or `"N-M"` within 1–5; any score when missing.
    pub r: Option<String>,
    /// Frequency scores, written as for `r`.
    pub f: Option<String>,
    /// Monetary scores, written as for `r`.
    pub m: Option<String>,
}

/// `[rfm]`: RFM scoring and segments.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RfmFile {
    /// Segment rules, first match wins; they must cover every (R, F, M) score combination.
    /// Default: the 11 classic segments on the R × F grid (see README).
    pub segments: Option<Spanned<Vec<SegmentRuleFile>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_the_grid_with_eleven_names() {
        let rules = default_rules();
        assert_eq!(uncovered(&rules), None);
        let mut names: Vec<_> = rules.iter().map(|r| r.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 11);
    }

    #[test]
    fn grid_cells_by_hand() {
        let rules = default_rules();
        let cases = [
            (5, 5, "Champions"),
            (5, 1, "New Customers"),
            (4, 1, "Promising"),
            (4, 2, "Potential Loyalists"),
            (3, 3, "Need Attention"),
            (3, 2, "About To Sleep"),
            (3, 5, "Loyal Customers"),
            (2, 4, "At Risk"),
            (1, 5, "Can't Lose Them"),
            (2, 2, "Hibernating"),
            (1, 2, "Hibernating"),
            (1, 1, "Lost"),
        ];
        for (r, f, want) in cases {
            assert_eq!(segment_of(&rules, r, f, 3), Some(want), "R={r} F={f}");
        }
    }
}
