//! Daemonised child processes that outlive `cargo xtask`, and stopping them again.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Starts `program` in its own session (so a terminal's Ctrl-C or hangup does not reach it), with stdin
/// from /dev/null and stdout/stderr appended to `log`. Returns its pid, which is also its process group.
pub fn spawn_daemon(
    program: &Path,
    args: &[String],
    log: &Path,
    path: Option<&str>,
) -> Result<u32> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    // The child is deliberately not waited on: it must keep running after we exit. If it dies while we
    // still run it stays a zombie until we exit; `is_running` treats zombies as dead.
    Ok(child.id())
}

/// True if `pid` is alive, not a zombie, and still runs `program` (guards against pid reuse).
pub fn is_running(pid: u32, program: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state field follows the parenthesised command name, which may itself contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        reap(pid);
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    argv0 == program.as_os_str().as_encoded_bytes()
}

/// Collects the exit status if `pid` is our own child; harmless (ECHILD) otherwise.
fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: plain syscall on an integer pid.
    unsafe {
        libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG);
    }
}

fn signal_group(pid: u32, sig: libc::c_int) {
    // SAFETY: plain syscalls. Each daemon leads its own process group (setsid), so the negative pid
    // reaches anything it forked too; fall back to the pid alone if the group is already gone.
    unsafe {
        if libc::kill(-(pid as libc::pid_t), sig) != 0 {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// SIGTERM each process in the given order, wait up to `grace` for all to exit, then SIGKILL any left.
/// Returns the names of the processes that had to be killed.
pub fn stop_all(procs: &[(String, u32, &Path)], grace: Duration) -> Vec<String> {
    let mut killed = Vec::new();
    let deadline = Instant::now() + grace;
    for (_, pid, program) in procs {
        if is_running(*pid, program) {
            signal_group(*pid, libc::SIGTERM);
            // Stop in order: each process gets a moment before the one it depends on goes away, which
            // keeps the logs free of connection errors during shutdown.
            let step = Instant::now() + Duration::from_secs(2);
            while is_running(*pid, program) && Instant::now() < step.min(deadline) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    while Instant::now() < deadline && procs.iter().any(|(_, pid, p)| is_running(*pid, p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (name, pid, program) in procs {
        if is_running(*pid, program) {
            signal_group(*pid, libc::SIGKILL);
            killed.push(name.clone());
        }
    }
    let kill_deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < kill_deadline && procs.iter().any(|(_, pid, p)| is_running(*pid, p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Exited daemons linger as zombies until init reaps them; give it a moment so that `ps` right after
    // `cluster down` shows nothing.
    let reap_deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < reap_deadline
        && procs
            .iter()
            .any(|(_, pid, _)| Path::new(&format!("/proc/{pid}")).exists())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    killed
}
