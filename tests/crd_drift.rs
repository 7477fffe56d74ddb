//! The committed CRD YAML (in `crds/` and in the Helm chart) must be exactly what the Rust types
//! generate. Regenerate with `cargo run -- crd --dir crds` (and copy into the chart's `crds/`).

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("crds")];
    // Any chart that ships the CRDs must ship the same ones.
    if let Ok(charts) = std::fs::read_dir(root.join("charts")) {
        for chart in charts.flatten() {
            let crds = chart.path().join("crds");
            if crds.is_dir() {
                dirs.push(crds);
            }
        }
    }
    let mut stale = Vec::new();
    for dir in &dirs {
        for (file, crd) in ecs_operator::crd::all() {
            let path = dir.join(file);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != ecs_operator::crd::to_yaml(&crd) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "CRD YAML differs from the Rust types in: {stale:?}\nregenerate: cargo run -- crd --dir crds (and the chart's crds/)"
    );
}
