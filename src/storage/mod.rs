//! Storage: URIs → places to read from and write to. The only module that talks to object stores.
//!
//! A URI is a local path (the default), `file://`, `s3://`, `gs://`, `az://`/`abfss://` or
//! `http(s)://`. Reading transactions goes through polars' cloud I/O ([`polars_cloud_options`]);
//! writing output goes through [`Location`] and the commit protocol in [`commit`].
//!
//! Credentials are never part of a job file: each backend reads the standard environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, ...).
//! Nothing in this module logs option values.

pub(crate) mod commit;
pub(crate) mod lock;

use object_store::path::Path as ObjPath;
use object_store::ObjectStore;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// A storage failure, naming the URI and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URI's scheme is not one custval can read or write.
    #[error("{uri}: unsupported URI scheme {scheme:?}; use a local path, file://, s3://, gs://, az://, abfss:// or https://")]
    Scheme {
        /// The URI as given.
        uri: String,
        /// Its scheme.
        scheme: String,
    },
    /// The object store for the URI cannot be set up (bad URL or settings).
    #[error("{uri}: cannot configure the object store: {source}")]
    Config {
        /// The URI as given.
        uri: String,
        /// The object store's error.
        source: object_store::Error,
    },
    /// An object-store operation failed.
    #[error("{uri}: {op} failed: {source}")]
    Object {
        /// URI of the object.
        uri: String,
        /// The operation (e.g. `get`, `put`, `list`).
        op: &'static str,
        /// The object store's error.
        source: object_store::Error,
    },
    /// A local file-system operation failed.
    #[error("{path}: {op} failed: {source}")]
    Local {
        /// The file or directory.
        path: PathBuf,
        /// The operation (e.g. `read`, `write`, `lock`).
        op: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another run of the same job holds the run lock, and the run was not told to wait.
    #[error("another run of this job is in progress (run {holder}, lock {path}); wait for it, or pass --wait")]
    Locked {
        /// The lock file, or the lease object on object stores.
        path: PathBuf,
        /// Run id of the holder (on object stores, with how long its lease stays valid).
        holder: String,
    },
}

pub(crate) use crate::store_options::{StorageOptions, RETRY_WINDOW_S};

impl StorageError {
    /// The object or file does not exist: bad input (the URI is wrong), not an outage.
    pub fn is_not_found(&self) -> bool {
        match self {
            StorageError::Object { source, .. } => {
                matches!(source, object_store::Error::NotFound { .. })
            }
            StorageError::Local { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// object_store's client and retry settings from [`StorageOptions`].
trait ClientSettings {
    fn client_options(&self) -> object_store::ClientOptions;
    fn retry_config(&self) -> object_store::RetryConfig;
}

impl ClientSettings for StorageOptions {
    fn client_options(&self) -> object_store::ClientOptions {
        // `allow_http` belongs to the client: set here, it holds for every backend (GCS and
        // HTTP stores take it from the client options only).
        object_store::ClientOptions::new()
            .with_timeout(self.timeout())
            .with_connect_timeout(self.timeout())
            .with_allow_http(self.allow_http.unwrap_or(false))
    }

    fn retry_config(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            max_retries: self.retries(),
            retry_timeout: std::time::Duration::from_secs(RETRY_WINDOW_S),
            backoff: object_store::BackoffConfig::default(),
        }
    }
}

/// Where output goes: a local directory or a prefix in an object store.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A prefix in an object store.
    Remote {
        /// The URI as given (for messages).
        uri: String,
        /// The store's client, built from the URI and the storage options.
        store: Arc<dyn ObjectStore>,
        /// The URI's path inside the store: every output object is below it.
        prefix: ObjPath,
    },
}

impl Location {
    /// The URI of `rel` below this location, for messages and manifests.
    pub fn display(&self, rel: &str) -> String {
        match self {
            Location::Local(p) => p.join(rel).display().to_string(),
            Location::Remote { uri, .. } => format!("{}/{}", uri.trim_end_matches('/'), rel),
        }
    }
}

pub(crate) use crate::text::{is_local, scheme_of};

/// Absolute local path of a local URI.
pub(crate) fn local_path(uri: &str) -> PathBuf {
    let p = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// Open an output location.
pub(crate) fn open(uri: &str, opts: &StorageOptions) -> Result<Location, StorageError> {
    if is_local(uri) {
        return Ok(Location::Local(local_path(uri)));
    }
    let url = url::Url::parse(uri).map_err(|e| StorageError::Config {
        uri: uri.to_string(),
        source: object_store::Error::Generic {
            store: "url",
            source: Box::new(e),
        },
    })?;
    let cfg = |source| StorageError::Config {
        uri: uri.to_string(),
        source,
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_url(uri)
                .with_client_options(opts.client_options())
                .with_retry(opts.retry_config())
                .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
            if let Some(r) = &opts.region {
                b = b.with_region(r);
            }
            if let Some(e) = &opts.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(a) = opts.allow_http {
                b = b.with_allow_http(a);
            }
            if opts.path_style == Some(false) {
                b = b.with_virtual_hosted_style_request(true);
            }
            Arc::new(b.build().map_err(cfg)?)
        }
        "gs" | "gcs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(uri)
                .with_client_options(opts.client_options())
                .with_retry(opts.retry_config())
                .build()
                .map_err(cfg)?,
        ),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(uri)
                .with_client_options(opts.client_options())
                .with_retry(opts.retry_config())
                .build()
                .map_err(cfg)?,
        ),
        "http" | "https" => {
            let base = format!("{}://{}", url.scheme(), url.authority());
            Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(base)
                    .with_client_options(opts.client_options())
                    .with_retry(opts.retry_config())
                    .build()
                    .map_err(cfg)?,
            )
        }
        other => {
            return Err(StorageError::Scheme {
                uri: uri.to_string(),
                scheme: other.to_string(),
            })
        }
    };
    let prefix = ObjPath::from_url_path(url.path()).map_err(|e| StorageError::Config {
        uri: uri.to_string(),
        source: e.into(),
    })?;
    Ok(Location::Remote {
        uri: uri.to_string(),
        store,
        prefix,
    })
}

/// polars cloud options for reading `uri` with `opts` (None for local paths).
pub(crate) fn polars_cloud_options(
    uri: &str,
    opts: &StorageOptions,
) -> polars::prelude::PolarsResult<Option<polars::prelude::cloud::CloudOptions>> {
    use polars::prelude::cloud::CloudOptions;
    use polars::prelude::PlRefPath;
    if is_local(uri) {
        return Ok(None);
    }
    let scheme = PlRefPath::new(uri).scheme();
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if matches!(scheme_of(uri), Some("s3" | "s3a")) {
        if let Some(r) = &opts.region {
            pairs.push(("aws_region", r.clone()));
        }
        if let Some(e) = &opts.endpoint {
            pairs.push(("aws_endpoint", e.clone()));
        }
        if let Some(a) = opts.allow_http {
            pairs.push(("allow_http", a.to_string()));
        }
        if opts.path_style == Some(false) {
            pairs.push(("aws_virtual_hosted_style_request", "true".into()));
        }
    }
    // Timeouts and retries for polars' own reads (object_store client keys).
    if matches!(
        scheme_of(uri),
        Some("s3" | "s3a" | "gs" | "gcs" | "az" | "azure" | "abfs" | "abfss" | "adl")
    ) {
        let t = format!("{}s", opts.timeout().as_secs());
        pairs.push(("timeout", t.clone()));
        pairs.push(("connect_timeout", t));
    }
    let retry = polars::prelude::cloud::CloudRetryConfig {
        max_retries: Some(opts.retries()),
        retry_timeout: Some(std::time::Duration::from_secs(RETRY_WINDOW_S)),
        ..Default::default()
    };
    CloudOptions::from_untyped_config(scheme, pairs).map(|o| Some(o.with_retry_config(retry)))
}

/// The shared tokio runtime for object-store calls (polars keeps its own).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// Read a small object (or local file) below `loc`, `None` when it does not exist.
pub(crate) fn read_optional(loc: &Location, rel: &str) -> Result<Option<Vec<u8>>, StorageError> {
    match loc {
        Location::Local(root) => {
            let p = root.join(rel);
            match std::fs::read(&p) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(StorageError::Local {
                    path: p,
                    op: "read",
                    source,
                }),
            }
        }
        Location::Remote { store, prefix, .. } => {
            let path = child(prefix, rel);
            let r = runtime().block_on(async {
                use object_store::ObjectStoreExt;
                match store.get(&path).await {
                    Ok(g) => g.bytes().await.map(Some),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            r.map(|b| b.map(|b| b.to_vec()))
                .map_err(|source| StorageError::Object {
                    uri: loc.display(rel),
                    op: "get",
                    source,
                })
        }
    }
}

/// Write one object (or local file, atomically via a temp file and rename) below `loc`.
pub(crate) fn put(
    loc: &Location,
    rel: &str,
    data: crate::scratch_io::Pieces,
) -> Result<(), StorageError> {
    match loc {
        Location::Local(root) => {
            let p = root.join(rel);
            let dir = p.parent().expect("a file below the root");
            let io = |op: &'static str, path: &std::path::Path| {
                let path = path.to_path_buf();
                move |source| StorageError::Local { path, op, source }
            };
            std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
            let tmp = dir.join(format!(
                ".{}.tmp-{}",
                p.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            crate::scratch_io::write(&tmp, &data, crate::scratch_io::ScratchIo::Buffered)
                .map_err(io("write", &tmp))?;
            std::fs::rename(&tmp, &p).map_err(io("rename", &p))
        }
        Location::Remote { store, prefix, .. } => {
            use object_store::ObjectStoreExt;
            runtime()
                .block_on(store.put(&child(prefix, rel), data.to_payload()))
                .map(|_| ())
                .map_err(|source| StorageError::Object {
                    uri: loc.display(rel),
                    op: "put",
                    source,
                })
        }
    }
}

/// Check that `loc` can be written: write a marker object below it and remove it again (for
/// `validate`, so that an unwritable or unreachable output fails before the nightly run does).
pub(crate) fn check_writable(loc: &Location) -> Result<(), StorageError> {
    let rel = format!("_custval_write_check_{}", std::process::id());
    let existed = matches!(loc, Location::Local(root) if root.exists());
    put(loc, &rel, b"custval validate".to_vec().into())?;
    match loc {
        Location::Local(root) => {
            let p = root.join(&rel);
            std::fs::remove_file(&p).map_err(|source| StorageError::Local {
                path: p,
                op: "remove",
                source,
            })?;
            // Leave no trace: an output root that validate created goes again.
            if !existed {
                let _ = std::fs::remove_dir(root);
            }
            Ok(())
        }
        Location::Remote { store, prefix, .. } => {
            use object_store::ObjectStoreExt;
            runtime()
                .block_on(store.delete(&child(prefix, &rel)))
                .map_err(|source| StorageError::Object {
                    uri: loc.display(&rel),
                    op: "delete",
                    source,
                })
        }
    }
}

/// Size and ETag of the object (or local file) `rel` below `loc`; None when it does not exist.
pub(crate) fn head(
    loc: &Location,
    rel: &str,
) -> Result<Option<(u64, Option<String>)>, StorageError> {
    match loc {
        Location::Local(root) => {
            let p = root.join(rel);
            match std::fs::metadata(&p) {
                Ok(m) => Ok(Some((m.len(), None))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(StorageError::Local {
                    path: p,
                    op: "stat",
                    source,
                }),
            }
        }
        Location::Remote { store, prefix, .. } => {
            use object_store::ObjectStoreExt;
            match runtime().block_on(store.head(&child(prefix, rel))) {
                Ok(m) => Ok(Some((m.size, m.e_tag))),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(source) => Err(StorageError::Object {
                    uri: loc.display(rel),
                    op: "head",
                    source,
                }),
            }
        }
    }
}

/// Size and ETag of one object given by its full URI.
pub(crate) fn object_meta(
    uri: &str,
    opts: &StorageOptions,
) -> Result<(u64, Option<String>), StorageError> {
    let loc = open(uri, opts)?;
    let Location::Remote { store, prefix, .. } = &loc else {
        let p = local_path(uri);
        let m = std::fs::metadata(&p).map_err(|source| StorageError::Local {
            path: p,
            op: "stat",
            source,
        })?;
        return Ok((m.len(), None));
    };
    use object_store::ObjectStoreExt;
    let meta = runtime()
        .block_on(store.head(prefix))
        .map_err(|source| StorageError::Object {
            uri: uri.to_string(),
            op: "head",
            source,
        })?;
    Ok((meta.size, meta.e_tag))
}

/// Zero-byte files under a source URI (a file, a directory or an object-store prefix; glob
/// patterns are not searched). Polars' listing skips them silently; custval reports them.
pub(crate) fn empty_files(uri: &str, opts: &StorageOptions) -> Result<Vec<String>, StorageError> {
    if uri.contains(['*', '?', '[']) {
        return Ok(Vec::new());
    }
    // A plain web server cannot list (object_store lists HTTP with WebDAV's PROPFIND): one file
    // named by its URI is not searched; its size comes from HEAD.
    if matches!(scheme_of(uri), Some("http" | "https")) && !uri.ends_with('/') {
        let last = uri.rsplit('/').next().unwrap_or_default();
        if last.contains('.') {
            return Ok(Vec::new());
        }
    }
    let loc = open(uri, opts)?;
    match &loc {
        Location::Local(path) => {
            let mut out = Vec::new();
            let mut stack = vec![path.clone()];
            while let Some(p) = stack.pop() {
                let Ok(meta) = std::fs::metadata(&p) else {
                    continue;
                };
                if meta.is_dir() {
                    let rd = std::fs::read_dir(&p).map_err(|source| StorageError::Local {
                        path: p.clone(),
                        op: "list",
                        source,
                    })?;
                    stack.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
                } else if meta.len() == 0 {
                    out.push(p.display().to_string());
                }
            }
            out.sort();
            Ok(out)
        }
        Location::Remote {
            store, prefix, uri, ..
        } => {
            use futures::TryStreamExt;
            let objects: Vec<object_store::ObjectMeta> = runtime()
                .block_on(store.list(Some(prefix)).try_collect())
                .map_err(|source| StorageError::Object {
                    uri: uri.clone(),
                    op: "list",
                    source,
                })?;
            let base = uri.trim_end_matches('/');
            let mut out: Vec<String> = objects
                .iter()
                .filter(|o| o.size == 0)
                .filter_map(|o| {
                    let rest = o.location.as_ref().strip_prefix(prefix.as_ref())?;
                    Some(format!(
                        "{base}{}{}",
                        if rest.is_empty() || rest.starts_with('/') {
                            ""
                        } else {
                            "/"
                        },
                        rest
                    ))
                })
                .collect();
            out.sort();
            Ok(out)
        }
    }
}

/// `prefix/rel` as an object path (rel uses `/`).
pub(crate) fn child(prefix: &ObjPath, rel: &str) -> ObjPath {
    rel.split('/')
        .filter(|s| !s.is_empty())
        .fold(prefix.clone(), |p, part| p.join(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme_of("s3://b/k"), Some("s3"));
        assert_eq!(scheme_of("data/x.parquet"), None);
        assert!(is_local("file:///tmp/x"));
        assert!(is_local("/tmp/x"));
        assert!(!is_local("gs://b/x"));
        assert_eq!(local_path("file:///tmp/x"), PathBuf::from("/tmp/x"));
    }

    #[test]
    fn unknown_scheme_is_named() {
        let e = open("ftp://host/x", &StorageOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("unsupported URI scheme \"ftp\""),
            "{e}"
        );
    }
}
