//! Test helpers: run the real binary in a temp dir, write inputs with polars, read outputs back
//! with the independent `parquet` crate.
#![allow(dead_code)]

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use polars::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub type Row = HashMap<String, Field>;

/// The custval binary.
pub fn custval() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custval"))
}

/// Run custval with `args` in `dir`, returning the output; prints it for failing tests.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    let out = custval()
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("custval runs");
    eprintln!(
        "$ custval {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn write_parquet(df: &mut DataFrame, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(f).finish(df).unwrap();
}

/// Read every row of a Parquet file with the `parquet` crate.
pub fn read_rows(path: &Path) -> Vec<Row> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = SerializedFileReader::new(f).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            r.unwrap()
                .get_column_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect()
}

/// Column names of a Parquet file, in order, with their physical/logical type text.
pub fn read_schema(path: &Path) -> Vec<(String, String)> {
    let f = std::fs::File::open(path).unwrap();
    let reader = SerializedFileReader::new(f).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    schema
        .columns()
        .iter()
        .map(|c| {
            let t = match c.logical_type_ref() {
                Some(l) => format!("{l:?}"),
                None => format!("{:?}", c.physical_type()),
            };
            (c.name().to_string(), t)
        })
        .collect()
}

pub fn s(row: &Row, k: &str) -> String {
    match &row[k] {
        Field::Str(v) => v.clone(),
        other => panic!("{k}: expected string, found {other:?}"),
    }
}

pub fn f(row: &Row, k: &str) -> f64 {
    match &row[k] {
        Field::Double(v) => *v,
        other => panic!("{k}: expected double, found {other:?}"),
    }
}

pub fn i(row: &Row, k: &str) -> i64 {
    match &row[k] {
        Field::Long(v) => *v,
        Field::Int(v) => *v as i64,
        other => panic!("{k}: expected integer, found {other:?}"),
    }
}

pub fn date(row: &Row, k: &str) -> i32 {
    match &row[k] {
        Field::Date(v) => *v,
        other => panic!("{k}: expected date, found {other:?}"),
    }
}

/// Rows keyed by a string column.
pub fn by_key(rows: Vec<Row>, k: &str) -> HashMap<String, Row> {
    rows.into_iter().map(|r| (s(&r, k), r)).collect()
}

pub fn partition(root: &Path, table: &str, as_of: &str) -> PathBuf {
    root.join(table).join(format!("as_of={as_of}"))
}

/// Snapshot of every file under `root` except the append-only `runs/` log and the run locks
/// (`_locks/`, holding the last run id): relative path →
/// bytes.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if !rel.starts_with("runs/") && !rel.starts_with("_locks/") {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Rows of the runs table under `root`, sorted by start time.
pub fn runs(root: &Path) -> Vec<Row> {
    let mut rows: Vec<Row> = std::fs::read_dir(root.join("runs"))
        .map(|rd| {
            rd.flat_map(|e| read_rows(&e.unwrap().path()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    rows.sort_by_key(|r| match &r["started"] {
        Field::TimestampMicros(t) => *t,
        other => panic!("started: {other:?}"),
    });
    rows
}
