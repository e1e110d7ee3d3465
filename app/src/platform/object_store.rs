//! Object storage behind one small trait: a local folder (embedded default) and any
//! S3-compatible service (production). Callers never learn which one they talk to.

use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("local object store: {0}")]
    Io(#[from] std::io::Error),
    #[error("s3: {0}")]
    S3(String),
}

pub type SharedStore = Arc<dyn ObjectStore>;

/// The object store failing is the store being unavailable to the client; the cause is
/// logged and kept as the error's source.
impl From<StoreError> for crate::error::AppError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "object store error");
        crate::error::AppError::unavailable("the object store is unavailable; retry later").caused_by(err)
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Where the objects live, for logs and `/readyz`.
    fn describe(&self) -> String;
    /// Stores `body` under `key`, replacing any previous object. Returns once durable.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;
    /// The object's bytes, or `None` when there is no such key.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// Removes the object; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Up to `limit` keys starting with `prefix`, in byte order, strictly after `start_after`.
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Cheap reachability probe for readiness checks.
    async fn check(&self) -> Result<(), StoreError>;
    /// Stores the file at `path` under `key` without holding it all in memory.
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError>;
    /// Writes the object to `path` without holding it all in memory; false if missing.
    async fn download(&self, key: &str, path: &Path) -> Result<bool, StoreError>;
}

/// Keys are relative, slash-separated paths of safe characters, so the same key is valid
/// as an S3 key and as a file path (no `..`, no absolute paths).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.=/".contains(c);
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.chars().all(ok_char)
        && !key.starts_with('/')
        && !key.ends_with('/')
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok { Ok(()) } else { Err(StoreError::InvalidKey(key.to_owned())) }
}

// ---------------------------------------------------------------------------------------
// Local folder

pub struct LocalFolder {
    root: PathBuf,
}

impl LocalFolder {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl ObjectStore for LocalFolder {
    fn describe(&self) -> String {
        format!("folder {}", self.root.display())
    }

    #[tracing::instrument(skip(self, body), fields(bytes = body.len()), err)]
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_durably(&path, &body))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    #[tracing::instrument(skip(self), err)]
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(skip(self), err)]
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        let keys = tokio::task::spawn_blocking(move || {
            // Walk only the directory the prefix names, not the whole store.
            let dir = match prefix.rfind('/') {
                Some(i) => root.join(&prefix[..i]),
                None => root.clone(),
            };
            let mut keys = Vec::new();
            collect_keys(&root, &dir, &mut keys)?;
            keys.retain(|k| k.starts_with(&prefix) && start_after.as_deref().is_none_or(|s| k.as_str() > s));
            keys.sort();
            keys.truncate(limit);
            Ok::<_, std::io::Error>(keys)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(keys)
    }

    async fn check(&self) -> Result<(), StoreError> {
        tokio::fs::metadata(&self.root).await?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let target = self.path(key)?;
        let source = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let dir = target.parent().expect("keys are relative paths below the root");
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(".tmp-{}", rand::random::<u64>()));
            std::fs::copy(&source, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn download(&self, key: &str, path: &Path) -> Result<bool, StoreError> {
        match tokio::fs::copy(self.path(key)?, path).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Write to a temporary sibling, fsync, then rename: readers never see half an object
/// and a crash leaves either the old object or the new one.
fn write_durably(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("keys are relative paths below the root");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", rand::random::<u64>()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn collect_keys(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_keys(root, &path, out)?;
        } else if !entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let rel = path.strip_prefix(root).expect("walk stays below the root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// S3

#[derive(Clone, Debug)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which S3-compatible servers expect.
    pub path_style: bool,
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    endpoint: String,
}

impl S3Store {
    pub fn new(settings: &S3Settings) -> Self {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            // Checksums only where S3 requires them: many S3-compatible servers reject the
            // SDK's default CRC32 trailers on uploads.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .region(Region::new(settings.region.clone()))
            .force_path_style(settings.path_style);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        if let (Some(key), Some(secret)) = (&settings.access_key, &settings.secret_key) {
            config = config.credentials_provider(Credentials::new(key, secret, None, None, "switchboard-env"));
        }
        Self {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            endpoint: settings.endpoint.clone().unwrap_or_else(|| "aws".into()),
        }
    }

    /// Creates the bucket when it does not exist yet (development and tests).
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        if self.check().await.is_ok() {
            return Ok(());
        }
        self.client.create_bucket().bucket(&self.bucket).send().await.map_err(s3_error)?;
        Ok(())
    }
}

fn s3_error<E: std::error::Error + 'static>(err: aws_sdk_s3::error::SdkError<E>) -> StoreError {
    StoreError::S3(aws_sdk_s3::error::DisplayErrorContext(err).to_string())
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        format!("s3 {}/{}", self.endpoint, self.bucket)
    }

    #[tracing::instrument(skip(self, body), fields(bytes = body.len()), err)]
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| StoreError::S3(e.to_string()))?;
                Ok(Some(data.into_bytes()))
            }
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(err) => Err(s3_error(err)),
        }
    }

    #[tracing::instrument(skip(self), err)]
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(s3_error)?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.map(str::to_owned))
                .set_continuation_token(token.take())
                .max_keys((limit - keys.len()).min(1000) as i32)
                .send()
                .await
                .map_err(s3_error)?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || keys.len() >= limit {
                break;
            }
        }
        keys.truncate(limit);
        Ok(keys)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(s3_error)?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        validate_key(key)?;
        let body = aws_sdk_s3::primitives::ByteStream::from_path(path).await.map_err(|e| StoreError::S3(e.to_string()))?;
        self.client.put_object().bucket(&self.bucket).key(key).body(body).send().await.map_err(s3_error)?;
        Ok(())
    }

    #[tracing::instrument(skip(self), err)]
    async fn download(&self, key: &str, path: &Path) -> Result<bool, StoreError> {
        use tokio::io::AsyncWriteExt;
        validate_key(key)?;
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(false),
            Err(err) => return Err(s3_error(err)),
        };
        let mut body = out.body;
        let mut file = tokio::fs::File::create(path).await?;
        while let Some(chunk) = body.try_next().await.map_err(|e| StoreError::S3(e.to_string()))? {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(true)
    }
}
