//! Release tarballs: resolved by version in Apache's archive layout under a mirror (or given as
//! a local file), verified against the published `.sha512`, cached locally by checksum.

pub mod nisshi;
mod sha512;

pub use sha512::parse_sha512;

use crate::inventory::Inventory;
use anyhow::{Context, Result, bail};
use futures::StreamExt;
use sha2::{Digest, Sha512};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A verified tarball on the operator's machine.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub file_name: String,
    pub path: PathBuf,
    pub sha512: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Product {
    Kafka,
    ZooKeeper,
}

/// (file name, path under the mirror, versioned install dir) in Apache's archive layout.
pub fn layout(product: Product, version: &str, scala: &str) -> (String, String, String) {
    match product {
        Product::Kafka => {
            let base = format!("kafka_{scala}-{version}");
            let file = format!("{base}.tgz");
            (file.clone(), format!("kafka/{version}/{file}"), base)
        }
        Product::ZooKeeper => {
            let base = format!("apache-zookeeper-{version}-bin");
            let file = format!("{base}.tar.gz");
            (
                file.clone(),
                format!("zookeeper/zookeeper-{version}/{file}"),
                format!("zookeeper-{version}"),
            )
        }
    }
}

/// Resolve, download if needed, verify, and return the cached artifact.
pub async fn fetch(inv: &Inventory, product: Product) -> Result<Artifact> {
    let (version, local) = match product {
        Product::Kafka => (&inv.kafka.version, &inv.artifacts.kafka_tarball),
        Product::ZooKeeper => (&inv.zookeeper.version, &inv.artifacts.zookeeper_tarball),
    };
    let (file_name, rel, _) = layout(product, version, &inv.kafka.scala_version);
    if let Some(path) = local {
        let sha512 = hash_file(path).await?;
        return Ok(Artifact {
            file_name: path.file_name().unwrap().to_string_lossy().into_owned(),
            path: path.clone(),
            sha512,
        });
    }
    let url = format!("{}/{rel}", inv.artifacts.mirror);
    let cache = &inv.artifacts.cache_dir;
    let client = http_client()?;
    let sum_url = format!("{url}.sha512");
    let sum_text = get_text(&client, &sum_url).await?;
    let sha512 = parse_sha512(&sum_text).with_context(|| format!("parsing {sum_url}"))?;
    let path = blob_path(cache, &sha512, &file_name);
    if !path.is_file() {
        download::<Sha512>(&client, &url, &path, &sha512, "the .sha512").await?;
    }
    Ok(Artifact {
        file_name,
        path,
        sha512,
    })
}

fn blob_path(cache: &Path, sha512: &str, file_name: &str) -> PathBuf {
    cache.join("sha512").join(sha512).join(file_name)
}

/// A successful response, or an error naming the URL and what to check.
async fn get(client: &reqwest::Client, url: &str) -> Result<reqwest::Response> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !resp.status().is_success() {
        bail!(
            "GET {url}: HTTP {}; check artifacts.mirror (or $CLUSTERCTL_MIRROR) and the version",
            resp.status()
        );
    }
    Ok(resp)
}

fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .build()?)
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String> {
    get(client, url)
        .await?
        .text()
        .await
        .with_context(|| format!("reading {url}"))
}

/// Stream to a temp file while hashing with `D`; only a file whose digest is `want` (as
/// `source` says) is renamed into the cache.
async fn download<D: Digest>(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    want: &str,
    source: &str,
) -> Result<()> {
    let resp = get(client, url).await?;
    let dir = dest.parent().unwrap();
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dest.with_extension("part");
    let mut out = tokio::fs::File::create(&tmp)
        .await
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut hasher = D::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("downloading {url}"))?;
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    drop(out);
    let got = hex::encode(hasher.finalize());
    if !sha512::same(&got, want) {
        let _ = tokio::fs::remove_file(&tmp).await;
        bail!("checksum mismatch for {url}: {source} says {want}, the download is {got}");
    }
    tokio::fs::rename(&tmp, dest).await?;
    Ok(())
}

pub async fn hash_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || hash_file_sync(&path)).await?
}

/// sha512 of a file, hex.
fn hash_file_sync(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha512::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_layout() {
        assert_eq!(
            layout(Product::Kafka, "3.9.1", "2.13"),
            (
                "kafka_2.13-3.9.1.tgz".into(),
                "kafka/3.9.1/kafka_2.13-3.9.1.tgz".into(),
                "kafka_2.13-3.9.1".into()
            )
        );
        assert_eq!(
            layout(Product::ZooKeeper, "3.8.4", "2.13"),
            (
                "apache-zookeeper-3.8.4-bin.tar.gz".into(),
                "zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz".into(),
                "zookeeper-3.8.4".into()
            )
        );
    }
}
