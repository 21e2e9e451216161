//! Writing a generated history ([`crate::generate`]) as Parquet, locally or to object storage.
//!
//! Layout: `<output>/transactions/part-00000.parquet`, ... (customers split evenly over the
//! files; rows sorted by `order_date` inside each file so that row-group statistics prune by
//! date) and `<output>/attributes.parquet` (one row per customer).
//! Transaction columns: `customer_id`, `order_id`, `order_date` (Date), `amount` (Float64),
//! `quantity` (Int32), `category`, `channel` (String). Attribute columns: `customer_id`,
//! `region`, `industry`, `channel`.

use crate::error::{compute, RunError};
use crate::generate::{generate, GenerateOptions, Transactions};
use crate::parquet_pages::to_parquet;
use crate::storage;
use crate::storage::StorageOptions;
use polars::prelude::*;

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// Transaction rows written, over all files.
    pub transactions: usize,
    /// Transaction files written (`part-NNNNN.parquet`); can be fewer than asked for.
    pub files: usize,
}

/// Transactions rows `[a, b)` as a frame sorted by date.
fn frame(tx: &Transactions, a: usize, b: usize) -> PolarsResult<DataFrame> {
    let df = DataFrame::new_infer_height(vec![
        Column::new("customer_id".into(), &tx.customer_id[a..b]),
        Column::new("order_id".into(), &tx.order_id[a..b]),
        Column::new("order_date".into(), &tx.day[a..b]).cast(&DataType::Date)?,
        Column::new("amount".into(), &tx.amount[a..b]),
        Column::new("quantity".into(), &tx.quantity[a..b]),
        Column::new("category".into(), &tx.category[a..b]),
        Column::new("channel".into(), &tx.channel[a..b]),
    ])?;
    df.sort(
        ["order_date", "customer_id"],
        SortMultipleOptions::default(),
    )
}

/// Generate and write a history.
pub fn write(
    output: &str,
    storage_opts: &StorageOptions,
    opts: &GenerateOptions,
    files: usize,
) -> Result<Written, RunError> {
    let loc = storage::open(output, storage_opts)?;
    let (tx, attrs) = generate(opts);
    // Split on customer boundaries: rows come grouped by customer.
    let n = tx.customer_id.len();
    let mut bounds = vec![0];
    for k in 1..files {
        let mut cut = n * k / files;
        while cut > 0 && cut < n && tx.customer_id[cut] == tx.customer_id[cut - 1] {
            cut += 1;
        }
        if cut > *bounds.last().unwrap() && cut < n {
            bounds.push(cut);
        }
    }
    bounds.push(n);
    for (i, w) in bounds.windows(2).enumerate() {
        let mut df = frame(&tx, w[0], w[1]).map_err(compute("generate"))?;
        let bytes = to_parquet(&mut df).map_err(compute("generate"))?;
        storage::put(&loc, &format!("transactions/part-{i:05}.parquet"), bytes)?;
    }
    let mut a = DataFrame::new_infer_height(vec![
        Column::new("customer_id".into(), attrs.customer_id),
        Column::new("region".into(), attrs.region),
        Column::new("industry".into(), attrs.industry),
        Column::new("channel".into(), attrs.channel),
    ])
    .map_err(compute("generate"))?;
    storage::put(
        &loc,
        "attributes.parquet",
        to_parquet(&mut a).map_err(compute("generate"))?,
    )?;
    Ok(Written {
        transactions: n,
        files: bounds.len() - 1,
    })
}
