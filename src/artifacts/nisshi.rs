//! The nisshi broker binary on the operator's machine: a given file, a download checked
//! against its sha256, or a `cargo install` build cached by version.

use super::{Artifact, hash_file};
use crate::inventory::{BinarySource, Inventory, NisshiConfig};
use crate::report::Reporter;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where `cargo install` puts a version's binary (scripts/nisshi.sh builds the same path).
pub fn cargo_binary(cache: &Path, version: &str) -> PathBuf {
    cargo_root(cache, version).join("bin/nisshi")
}

fn cargo_root(cache: &Path, version: &str) -> PathBuf {
    cache.join("nisshi").join(version)
}

/// The binary to push, with the sha512 that marks it installed on a host.
pub async fn resolve(inv: &Inventory, n: &NisshiConfig, rep: &Reporter) -> Result<Artifact> {
    let cache = &inv.artifacts.cache_dir;
    let path = match &n.binary {
        BinarySource::Path { path, sha256 } => {
            if let Some(want) = sha256 {
                let got = sha256_file(path).await?;
                if &got != want {
                    bail!(
                        "nisshi.binary {}: sha256 is {got}, the inventory says {want}",
                        path.display()
                    );
                }
            }
            path.clone()
        }
        BinarySource::Url { url, sha256 } => {
            let dest = cache.join("sha256").join(sha256).join("nisshi");
            if !dest.is_file() {
                rep.line(&format!("  downloading {url}"));
                super::download::<Sha256>(
                    &super::http_client()?,
                    url,
                    &dest,
                    sha256,
                    "nisshi.sha256",
                )
                .await?;
            }
            dest
        }
        BinarySource::Cargo => {
            let bin = cargo_binary(cache, &n.version);
            if !bin.is_file() {
                rep.line(&format!(
                    "  building nisshi {} with cargo install (once per version; about 16 minutes on 2 cores)",
                    n.version
                ));
                cargo_install(cache, &n.version).await?;
            }
            bin
        }
    };
    Ok(Artifact {
        file_name: "nisshi".into(),
        sha512: sha512_memo(cache, &path).await?,
        path,
    })
}

/// The binary's sha512, remembered by path, size and mtime: hashing ~75 MB on every apply
/// would be most of a no-op apply's time.
async fn sha512_memo(cache: &Path, path: &Path) -> Result<String> {
    let meta = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let mtime = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let stamp = format!("{} {mtime}", meta.len());
    let key = hex::encode(Sha256::digest(path.to_string_lossy().as_bytes()));
    let memo = cache.join("sha512-memo").join(key);
    if let Ok(text) = tokio::fs::read_to_string(&memo).await
        && let Some((s, sha)) = text.trim().rsplit_once(' ')
        && s == stamp
    {
        return Ok(sha.to_string());
    }
    let sha = hash_file(path).await?;
    // Best effort: without the memo the next apply just hashes again.
    let tmp = memo.with_extension("tmp");
    if tokio::fs::create_dir_all(memo.parent().unwrap())
        .await
        .is_ok()
        && tokio::fs::write(&tmp, format!("{stamp} {sha}\n"))
            .await
            .is_ok()
    {
        let _ = tokio::fs::rename(&tmp, &memo).await;
    }
    Ok(sha)
}

fn cargo_command(cache: &Path, version: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("cargo");
    c.args([
        "install",
        "nisshi",
        "--version",
        version,
        "--locked",
        "--root",
    ])
    .arg(cargo_root(cache, version))
    // A separate target dir survives an interrupted build, so a re-run resumes.
    .env("CARGO_TARGET_DIR", cache.join("nisshi/target"));
    c
}

async fn cargo_install(cache: &Path, version: &str) -> Result<()> {
    let out = cargo_command(cache, version)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running cargo (is a Rust toolchain installed?)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        bail!(
            "cargo install nisshi --version {version} --locked failed ({}):\n{}\n\
             nisshi 0.8.1 needs rustc 1.96 or later: `rustup toolchain install 1.96.0` and run with \
             RUSTUP_TOOLCHAIN=1.96.0, or set nisshi.binary to a built binary",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let bin = cargo_binary(cache, version);
    if !bin.is_file() {
        bail!("cargo install succeeded but {} is missing", bin.display());
    }
    // The build tree (~1.7 GB) is only worth keeping while a build is unfinished.
    let _ = tokio::fs::remove_dir_all(cache.join("nisshi/target")).await;
    Ok(())
}

async fn sha256_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<String> {
        let mut f =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h)?;
        Ok(hex::encode(h.finalize()))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_build_lands_where_the_cache_looks() {
        let cache = Path::new("/c");
        assert_eq!(
            cargo_binary(cache, "0.8.1"),
            PathBuf::from("/c/nisshi/0.8.1/bin/nisshi")
        );
        let c = cargo_command(cache, "0.8.1");
        let args: Vec<_> = c.as_std().get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "install",
                "nisshi",
                "--version",
                "0.8.1",
                "--locked",
                "--root",
                "/c/nisshi/0.8.1"
            ]
        );
    }

    #[tokio::test]
    async fn a_given_binary_is_checked_against_its_sha256() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("nisshi"), b"hello\n").unwrap();
        let inv = |sha: &str| {
            crate::inventory::parse(
                &d.path().join("inv.yaml"),
                &format!(
                    "flavor: nisshi\nhosts:\n  b1: {{address: 10.0.0.1}}\ngroups:\n  kafka: [b1]\n\
                     nisshi:\n  storage: sqlite\n  binary: nisshi\n  sha256: {sha}\n"
                ),
            )
            .unwrap()
        };
        let good = inv("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
        let a = resolve(&good, good.nisshi.as_ref().unwrap(), &Reporter::new())
            .await
            .unwrap();
        assert_eq!(a.path, d.path().join("nisshi"));
        assert_eq!(a.sha512.len(), 128);
        let bad = inv(&"0".repeat(64));
        let e = resolve(&bad, bad.nisshi.as_ref().unwrap(), &Reporter::new())
            .await
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("the inventory says 0000"),
            "{e:#}"
        );
    }

    #[tokio::test]
    async fn the_sha512_memo_follows_the_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("nisshi");
        std::fs::write(&f, b"one").unwrap();
        let first = sha512_memo(d.path(), &f).await.unwrap();
        assert_eq!(first, hash_file(&f).await.unwrap());
        assert_eq!(sha512_memo(d.path(), &f).await.unwrap(), first, "memo hit");
        std::fs::write(&f, b"other").unwrap();
        let second = sha512_memo(d.path(), &f).await.unwrap();
        assert_ne!(second, first, "a changed file is hashed again");
        assert_eq!(second, hash_file(&f).await.unwrap());
    }

    #[tokio::test]
    async fn sha256_of_a_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("nisshi");
        std::fs::write(&f, b"hello\n").unwrap();
        assert_eq!(
            sha256_file(&f).await.unwrap(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
    }
}
