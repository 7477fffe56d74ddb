//! The real node's images, made locally because the test cluster has no registry: Debian's static
//! busybox in one layer, written as OCI image archives that `ctr images import` reads.
//!
//! Two names share the layer: [`IMAGE`] for the tests' containers (no entrypoint; `sh` by default) and
//! [`PAUSE_IMAGE`], containerd's pod sandbox image, whose only job is to sleep.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{debian, util};

/// The tests' image. `ecs-operator.test` is no registry: pods find the image already imported.
pub const IMAGE: &str = "ecs-operator.test/busybox:1.35";
/// containerd's sandbox ("pause") image.
pub const PAUSE_IMAGE: &str = "ecs-operator.test/pause:1";
/// Part of the node cache key: change it when the recipe below changes.
pub const KEY: &str = "busybox-static oci-archive v1";

/// The archives [`build`] writes, in the node directory.
pub fn archives(node_dir: &Path) -> [PathBuf; 2] {
    [
        node_dir.join("images/busybox.tar"),
        node_dir.join("images/pause.tar"),
    ]
}

/// Writes both archives into `<node_dir>/images/`.
pub fn build(node_dir: &Path) -> Result<()> {
    let images = node_dir.join("images");
    let work = images.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let deb = debian::download("busybox-static", &work.join("deb"))?;
    let rootfs = work.join("rootfs");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&rootfs))?;
    // Only the binary: the package's docs would just make the layer bigger.
    let _ = std::fs::remove_dir_all(rootfs.join("usr"));
    let busybox = rootfs.join("bin/busybox");
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .context("running busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
        }
    }
    for dir in ["etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    util::write_file(
        &rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )?;
    util::write_file(&rootfs.join("etc/group"), "root:x:0:\n")?;

    // Fixed times and owners: the same package always gives the same digests.
    let layer = work.join("layer.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&layer)
        .arg("."))?;
    let [busybox_tar, pause_tar] = archives(node_dir);
    write_archive(&work, &layer, IMAGE, None, Some(&["sh"]), &busybox_tar)?;
    // PID 1 ignores SIGTERM, so containerd's SIGKILL of a sandbox is what ends it, as with the real pause.
    write_archive(
        &work,
        &layer,
        PAUSE_IMAGE,
        Some(&["/bin/sleep", "2147483647"]),
        None,
        &pause_tar,
    )?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// An OCI image layout (oci-layout, index.json, blobs/sha256/…) of one image, as a tar archive.
fn write_archive(
    work: &Path,
    layer: &Path,
    name: &str,
    entrypoint: Option<&[&str]>,
    cmd: Option<&[&str]>,
    out: &Path,
) -> Result<()> {
    let layout = work.join(format!("layout-{}", name.replace(['/', ':'], "_")));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let layer_data = std::fs::read(layer)?;
    let layer_digest = put_blob(&blobs, &layer_data)?;
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Entrypoint":{},"Cmd":{}}},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer_digest}"]}}}}"#,
        json_list(entrypoint),
        json_list(cmd),
    );
    let config_digest = put_blob(&blobs, config.as_bytes())?;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer_data.len(),
    );
    let manifest_digest = put_blob(&blobs, manifest.as_bytes())?;
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    // containerd names the imported image after io.containerd.image.name.
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_digest}","size":{},"annotations":{{"io.containerd.image.name":"{name}","org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
        manifest.len(),
    );
    util::write_file(&layout.join("index.json"), index)?;
    util::write_file(
        &layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(out)
        .args(["oci-layout", "index.json", "blobs"]))
}

fn json_list(items: Option<&[&str]>) -> String {
    match items {
        None => "null".into(),
        Some(items) => {
            let mut s = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{item:?}");
            }
            s.push(']');
            s
        }
    }
}

/// Stores `data` under its sha256 and returns the hex digest.
fn put_blob(blobs: &Path, data: &[u8]) -> Result<String> {
    let tmp = blobs.join("tmp");
    std::fs::write(&tmp, data)?;
    let out = Command::new("sha256sum")
        .arg(&tmp)
        .output()
        .context("running sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum failed");
    }
    let digest = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if digest.len() != 64 {
        bail!("unexpected sha256sum output");
    }
    std::fs::rename(&tmp, blobs.join(&digest))?;
    Ok(digest)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", cmd.get_program());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_quote_each_item() {
        assert_eq!(json_list(None), "null");
        assert_eq!(
            json_list(Some(&["/bin/sleep", "1"])),
            r#"["/bin/sleep","1"]"#
        );
    }
}
