//! Meters read from outside the controllers: the API server's audit log (writes, by client and
//! resource), its request counters (reads), and a process's RSS and CPU time.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// Writes (create, update, patch, delete) in `namespaces` between `from` and `to` by clients whose
/// User-Agent starts with `agent`, by `resource[/subresource]`.
pub fn writes(
    audit_log: &Path,
    agent: &str,
    namespaces: &[&str],
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut text = String::new();
    for file in audit_files(audit_log)? {
        text.push_str(&std::fs::read_to_string(file)?);
    }
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let verb = e["verb"].as_str().unwrap_or_default();
        if !matches!(verb, "create" | "update" | "patch" | "delete") {
            continue;
        }
        if !e["userAgent"]
            .as_str()
            .unwrap_or_default()
            .starts_with(agent)
        {
            continue;
        }
        let ns = e["objectRef"]["namespace"].as_str().unwrap_or_default();
        if !namespaces.contains(&ns) {
            continue;
        }
        let Some(at) = e["stageTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
        else {
            continue;
        };
        if at < from || at > to {
            continue;
        }
        let resource = e["objectRef"]["resource"].as_str().unwrap_or_default();
        let key = match e["objectRef"]["subresource"].as_str() {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        *out.entry(key).or_default() += 1;
    }
    Ok(out)
}

/// The audit log and the files the API server rotated it into (`audit-<time>.log` beside it): a
/// window of thousands of tasks can span a rotation.
fn audit_files(audit_log: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let (Some(dir), Some(stem)) = (audit_log.parent(), audit_log.file_stem()) else {
        return Ok(vec![audit_log.to_path_buf()]);
    };
    let prefix = format!("{}-", stem.to_string_lossy());
    let mut files = vec![audit_log.to_path_buf()];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".log")) {
            files.push(path);
        }
    }
    Ok(files)
}

/// GET and LIST requests the API server has served for the operator's kinds and what it reads
/// (pods, nodes, ControllerRevisions), from its own counters.
pub async fn reads(client: &kube::Client) -> anyhow::Result<f64> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let mut total = 0.0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let counted = ["verb=\"GET\"", "verb=\"LIST\""]
            .iter()
            .any(|v| line.contains(v))
            && (line.contains("group=\"ecs.operator.dev\"")
                || ["pods", "nodes", "controllerrevisions"]
                    .iter()
                    .any(|r| line.contains(&format!("resource=\"{r}\""))));
        if counted {
            total += line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        }
    }
    Ok(total)
}

/// Resident set size in MB and CPU seconds (user + system) of process `pid`.
pub fn process(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((rss_kb / 1024.0, ticks / hz.max(1.0)))
}

/// The p-th percentile (0–100) of `samples`, nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}
