//! Debian packages the real node needs: installed with apt-get when a file they provide is missing, or
//! downloaded (not installed) to take a file out of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Installs each package whose marker file is missing. apt-get needs root; the package lists are
/// refreshed once if the first try fails (a fresh machine may have none).
pub fn ensure_installed(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, marker)| !Path::new(marker).exists())
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("apt-get install {}", missing.join(" "));
    if apt_get(
        &[&["install", "-y", "--no-install-recommends"], &missing[..]].concat(),
        None,
    )? {
        return Ok(());
    }
    apt_get(&["update"], None)?;
    if !apt_get(
        &[&["install", "-y", "--no-install-recommends"], &missing[..]].concat(),
        None,
    )? {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}

/// Downloads `package`'s .deb into `dir` and returns its path.
pub fn download(package: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    if !apt_get(&["download", package], Some(dir))? {
        apt_get(&["update"], None)?;
        if !apt_get(&["download", package], Some(dir))? {
            bail!("apt-get download {package} failed");
        }
    }
    let prefix = format!("{package}_");
    std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .with_context(|| {
            format!(
                "apt-get download {package} left no .deb in {}",
                dir.display()
            )
        })
}

fn apt_get(args: &[&str], dir: Option<&Path>) -> Result<bool> {
    let mut cmd = Command::new("apt-get");
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        // Progress goes to stderr with the rest of xtask's; stdout stays the caller's.
        .stdout(Stdio::from(std::io::stderr()));
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let status = cmd
        .status()
        .context("running apt-get (the real node needs a Debian-based machine)")?;
    Ok(status.success())
}
