//! The as-of / lookback window and the column mapping are pushed into the Parquet scan
//! (checked on the optimized plan, as polars' own `predicate_at_scan` tests do).

use custval::job::{self, Overrides};
use std::path::Path;

#[test]
fn window_and_projection_reach_the_parquet_scan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("jobs/cdnow.toml")).unwrap();
    text = text.replace(
        "uri = \"../sample_data/cdnow/transactions.parquet\"",
        &format!(
            "uri = \"{}\"",
            root.join("sample_data/cdnow/transactions.parquet")
                .display()
        ),
    );
    text = text.replace(
        "time_unit = \"day\"",
        "time_unit = \"day\"\nlookback_days = 90",
    );
    let job = job::from_str(&text, Path::new("cdnow.toml"), &Overrides::default()).unwrap();
    let scan = custval::source::scan(&job).unwrap();
    let plan = scan.lf.explain(true).unwrap();
    eprintln!("{plan}");
    let scan_part = &plan[plan.find("Parquet SCAN").expect("a Parquet scan")..];
    // Both window bounds are evaluated by the scan itself (row groups are skipped by their
    // statistics), and only the mapped columns are read.
    assert!(scan_part.contains("SELECTION"), "{plan}");
    assert!(!plan.contains("FILTER [(col(\"order_date\")"), "{plan}");
    assert!(scan_part.contains("4 COLUMNS"), "{plan}");
    // lookback_days = 90 ending 1998-06-30: the window is [1998-04-02, 1998-07-01); rows with a
    // null timestamp are read too, to be counted as rejected.
    assert!(
        scan_part.contains(
            "SELECTION: ((col(\"order_date\") < 1998-07-01) & (col(\"order_date\") >= 1998-04-02)) | col(\"order_date\").is_null()"
        ),
        "{plan}"
    );
}
