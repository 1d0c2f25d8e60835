//! Uploaded media (event images) behind the `object_store` abstraction: a local
//! folder by default, any S3-compatible store in production, chosen by URL.

use std::sync::Arc;

use bytes::Bytes;
use object_store::{
    ObjectStore, ObjectStoreExt, local::LocalFileSystem, path::Path, prefix::PrefixStore,
};

use crate::config::MediaConfig;

#[derive(Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    public_base: String,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MediaStore({})", self.store)
    }
}

pub type MediaError = object_store::Error;

/// Why the media store named by `OBJECT_STORE_URL` could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreSetupError {
    #[error("OBJECT_STORE_URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("OBJECT_STORE_URL: {0}")]
    Store(#[from] object_store::Error),
    #[error("OBJECT_STORE_URL {dir}: {source}")]
    Folder {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

impl MediaStore {
    pub fn from_config(config: &MediaConfig) -> Result<Self, StoreSetupError> {
        let url = &config.store_url;
        let store: Arc<dyn ObjectStore> = if url.contains("://") && !url.starts_with("file://") {
            let parsed = url::Url::parse(url)?;
            // Only the S3 builder's own variables are passed on, never the
            // whole environment.
            let options = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
            let (store, prefix) = object_store::parse_url_opts(&parsed, options)?;
            if prefix.as_ref().is_empty() {
                Arc::from(store)
            } else {
                Arc::new(PrefixStore::new(store, prefix))
            }
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir).map_err(|source| StoreSetupError::Folder {
                dir: dir.to_owned(),
                source,
            })?;
            Arc::new(LocalFileSystem::new_with_prefix(dir)?)
        };
        Ok(Self {
            store,
            public_base: config.public_url.clone(),
        })
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), MediaError> {
        self.store.put(&Path::parse(key)?, bytes.into()).await?;
        Ok(())
    }

    /// The object's bytes, or `None` if there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, MediaError> {
        match self.store.get(&Path::parse(key)?).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deleting what is already gone succeeds: a retried delete is harmless.
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        match self.store.delete(&Path::parse(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn public_url(&self, key: &str) -> String {
        format!("{}/{key}", self.public_base)
    }
}
