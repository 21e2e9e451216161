//! The same job reading from and writing to a real S3-compatible server (moto, started on
//! 127.0.0.1 by this test; `.ci/run` installs it from `tests/requirements.txt`), with access
//! keys, through the object-store code path.

mod common;
use common::*;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use polars::prelude::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{python} -m moto.server` ({e}); run `pip install -r tests/requirements.txt`"));
    let mut server = Server { child, port };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("moto exited with {status}; is `moto[server]` installed? (pip install -r tests/requirements.txt)");
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "moto did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Create the bucket (moto does not check signatures for CreateBucket).
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        s,
        "PUT /custval-test HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        server.port
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    server.port = port;
    server
}

fn store(port: u16) -> impl ObjectStore {
    AmazonS3Builder::new()
        .with_bucket_name("custval-test")
        .with_region("us-east-1")
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap()
}

/// Run custval in `dir` with the test server's access keys (and no other AWS settings).
fn with_keys(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let out = custval()
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The bytes of one object.
fn get(rt: &tokio::runtime::Runtime, s3: &impl ObjectStore, key: &str) -> bytes::Bytes {
    rt.block_on(async { s3.get(&ObjPath::from(key)).await?.bytes().await })
        .unwrap()
}

fn parquet_bytes(df: &mut DataFrame) -> Vec<u8> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(df).unwrap();
    buf
}

#[test]
fn run_reads_and_writes_s3() {
    let server = start_moto();
    let s3 = store(server.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // X buys on 2024-01-01 (10) and 2024-01-21 (30); Y once on 2024-01-15 (5).
    let day = |d: &str| {
        (chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
    };
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("cid".into(), ["X", "X", "Y"]),
        Column::new(
            "d".into(),
            [day("2024-01-01"), day("2024-01-21"), day("2024-01-15")],
        )
        .cast(&DataType::Date)
        .unwrap(),
        Column::new("amount".into(), [10.0, 30.0, 5.0]),
    ])
    .unwrap();
    rt.block_on(s3.put(
        &ObjPath::from("input/part-0.parquet"),
        parquet_bytes(&mut df).into(),
    ))
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}", server.port);
    std::fs::write(
        dir.path().join("job.toml"),
        format!(
            r#"
name = "s3"
as_of = "2024-01-31"
[source]
uri = "s3://custval-test/input/"
storage = {{ region = "us-east-1", endpoint = "{endpoint}", allow_http = true }}
[columns]
customer_id = "cid"
timestamp = "d"
amount = "amount"
[output]
uri = "s3://custval-test/out"
storage = {{ region = "us-east-1", endpoint = "{endpoint}", allow_http = true }}
tables = ["customer_features", "segment_summary"]
[quality]
max_staleness_days = 3650
[clv]
# Three hand-made customers cannot identify the models; this test is about storage.
on_fit_failure = "null"
"#
        ),
    )
    .unwrap();
    let run = || {
        let out = with_keys(dir.path(), &["run", "job.toml"]);
        assert!(out.status.success());
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("testing"),
            "credentials must never be logged"
        );
    };
    run();
    let list = |prefix: &str| -> Vec<String> {
        use futures::TryStreamExt;
        let mut v: Vec<String> = rt
            .block_on(
                s3.list(Some(&ObjPath::from(prefix)))
                    .map_ok(|m| m.location.to_string())
                    .try_collect::<Vec<_>>(),
            )
            .unwrap();
        v.sort();
        v
    };
    let tables_only = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|k| !k.starts_with("out/runs/"))
            .collect()
    };
    assert_eq!(list("out/runs").len(), 1, "one runs row per run");
    let first = tables_only(list("out"));
    assert_eq!(
        first,
        [
            "out/customer_features/as_of=2024-01-31/_SUCCESS",
            "out/customer_features/as_of=2024-01-31/_manifest.json",
            "out/customer_features/as_of=2024-01-31/part-00000.parquet",
            "out/report/as_of=2024-01-31/_SUCCESS",
            "out/report/as_of=2024-01-31/_manifest.json",
            "out/report/as_of=2024-01-31/index.html",
            "out/segment_summary/as_of=2024-01-31/_SUCCESS",
            "out/segment_summary/as_of=2024-01-31/_manifest.json",
            "out/segment_summary/as_of=2024-01-31/part-00000.parquet",
        ]
    );
    // The report is stored as a web page: a browser opens it straight from the bucket.
    let report = rt
        .block_on(async {
            s3.get(&ObjPath::from("out/report/as_of=2024-01-31/index.html"))
                .await
        })
        .unwrap();
    assert_eq!(
        report
            .attributes
            .get(&object_store::Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("text/html; charset=utf-8")
    );
    let data = get(
        &rt,
        &s3,
        "out/customer_features/as_of=2024-01-31/part-00000.parquet",
    );
    let tmp = dir.path().join("downloaded.parquet");
    std::fs::write(&tmp, &data).unwrap();
    let rows = by_key(read_rows(&tmp), "customer_id");
    assert_eq!(rows.len(), 2);
    // X: repeat day 01-21 → frequency 1, recency 20, T 30, monetary 30.
    assert_eq!(i(&rows["X"], "frequency"), 1);
    assert_eq!(f(&rows["X"], "recency"), 20.0);
    assert_eq!(f(&rows["X"], "T"), 30.0);
    assert_eq!(f(&rows["X"], "monetary"), 30.0);
    assert_eq!(f(&rows["Y"], "T"), 16.0);
    let manifest = manifest_of(&rt, &s3);
    assert_eq!(manifest["rows"], 2);
    assert_eq!(
        manifest["input_files"][0]["uri"],
        "s3://custval-test/input/part-0.parquet"
    );
    // Rerun: same objects, no duplicates.
    run();
    assert_eq!(tables_only(list("out")), first);
    assert_eq!(list("out/runs").len(), 2);
    assert!(manifest_of(&rt, &s3)["data_e_tag"].as_str().is_some());

    // A run killed right after its data PUT leaves new data under the previous manifest and
    // _SUCCESS. Resume must not take that partition for up to date.
    let cmd = |args: &[&str]| with_keys(dir.path(), args);
    let backfill = [
        "backfill",
        "--allow-degraded",
        "job.toml",
        "--from",
        "2024-01-31",
        "--to",
        "2024-01-31",
        "--every",
        "day",
    ];
    let out = cmd(&backfill);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("skipped"),
        "up to date"
    );
    let data_key = ObjPath::from("out/customer_features/as_of=2024-01-31/part-00000.parquet");
    let good = get(&rt, &s3, data_key.as_ref());
    let mut stale = good.to_vec();
    stale.extend_from_slice(b"new data of a killed run");
    rt.block_on(s3.put(&data_key, stale.into())).unwrap();
    let plan = cmd(&["plan", "job.toml"]);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("customer_features: data does not match manifest"),
        "{stdout}"
    );
    let out = cmd(&backfill);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("skipped"),
        "recomputed"
    );
    let repaired = get(&rt, &s3, data_key.as_ref());
    assert_eq!(
        repaired, good,
        "the recomputed partition is the one of the first run"
    );

    // The run lease: a live run's lease makes a second run fail at once (exit 4, naming the
    // holder); an expired lease (a killed run) is taken over; a finished run releases it.
    let lease = ObjPath::from("out/_locks/s3.lease");
    assert!(
        rt.block_on(s3.head(&lease)).is_err(),
        "finished runs leave no lease"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let put_lease = |run_id: &str, expires_at: u64| {
        let body = serde_json::json!({ "run_id": run_id, "expires_at": expires_at }).to_string();
        rt.block_on(s3.put(&lease, body.into_bytes().into()))
            .unwrap();
    };
    put_lease("other-run", now + 3600);
    let t0 = std::time::Instant::now();
    let out = cmd(&["run", "job.toml"]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another run of this job is in progress (run other-run"),
        "{stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "fails fast");
    put_lease("dead-run", now - 1);
    let out = cmd(&["run", "job.toml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("took over the expired lease"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rt.block_on(s3.head(&lease)).is_err(),
        "the run released its lease"
    );
}

fn manifest_of(rt: &tokio::runtime::Runtime, s3: &impl ObjectStore) -> serde_json::Value {
    let bytes = get(
        rt,
        s3,
        "out/customer_features/as_of=2024-01-31/_manifest.json",
    );
    serde_json::from_slice(&bytes).unwrap()
}

/// A server that accepts connections and never answers.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    port
}

#[test]
fn a_silent_store_fails_within_the_timeout() {
    let port = silent_server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        format!(
            r#"
name = "silent"
as_of = "2024-01-31"
[source]
uri = "s3://custval-test/input/"
storage = {{ region = "us-east-1", endpoint = "http://127.0.0.1:{port}", allow_http = true, timeout_s = 2, retries = 1 }}
[columns]
customer_id = "cid"
timestamp = "d"
amount = "amount"
[output]
uri = "out"
"#
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let out = with_keys(dir.path(), &["run", "job.toml"]);
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(took < Duration::from_secs(40), "took {took:?}");
    assert!(!err.contains("testing"), "credentials must never be logged");
}
