//! Storage options of one URI (`storage = { ... }` in the job file): plain data, a leaf module,
//! so that settings types anywhere (domain side tables included) can embed them without
//! depending on the storage layer, which turns them into object_store clients.

use serde::{Deserialize, Serialize};

/// Storage options for one URI. Only non-secret settings belong here: credentials come from the
/// environment (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, ...)
/// or the provider chains, never from the job file, and are never logged.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageOptions {
    /// Cloud region, e.g. `us-east-1` (S3).
    pub region: Option<String>,
    /// Endpoint of an S3-compatible server, e.g. `http://127.0.0.1:9000` (MinIO, moto, s3s).
    pub endpoint: Option<String>,
    /// Allow plain `http://` endpoints (S3-compatible servers in a private network). Default false.
    pub allow_http: Option<bool>,
    /// Use path-style requests (`endpoint/bucket/key`) instead of virtual-hosted style. Defaults to
    /// true when `endpoint` is set.
    pub path_style: Option<bool>,
    /// Seconds a connection or a request may take before it is abandoned (and retried).
    /// Default 30.
    pub timeout_s: Option<u64>,
    /// Retries of a failed request, with exponential backoff, started within 25 seconds of the
    /// first attempt (so a request that timed out is not retried). Default 3.
    pub retries: Option<usize>,
}

/// Default of `storage.timeout_s`.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// Default of `storage.retries`.
pub const DEFAULT_RETRIES: usize = 3;
/// The longest time retries of one request may take.
pub const RETRY_WINDOW_S: u64 = 25;

impl StorageOptions {
    /// The request and connect timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S).max(1))
    }

    /// Retries of a failed request.
    pub fn retries(&self) -> usize {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }
}
