//! `openreplica status`, `stop` and `logs`: the processes it started, found
//! again by the node and pid it recorded.
//!
//! A recorded pid counts as ours only while `/proc/PID/cmdline` still names
//! `bin/concoord`: a pid the system reused for something else is reported
//! gone and never signalled.

use crate::config::{Config, Node};
use crate::ssh::{Ssh, for_each_node, quote};
use crate::state::{Launched, State};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Shell function: is pid $1 still a concoord process?
const OURS: &str = "ours() { [ -r /proc/$1/cmdline ] && tr '\\0' ' ' < /proc/$1/cmdline | grep -q 'bin/concoord'; }";

/// The recorded processes grouped by node, for the nodes in `only` (all if
/// `None`), in the configuration's order.
fn by_node<'a>(
    config: &Config,
    state: &'a State,
    only: Option<&str>,
) -> Vec<(Node, Vec<&'a Launched>)> {
    let mut groups: BTreeMap<&str, Vec<&Launched>> = BTreeMap::new();
    for l in &state.launched {
        if only.is_none_or(|h| h == l.host) {
            groups.entry(l.host.as_str()).or_default().push(l);
        }
    }
    let mut out = Vec::new();
    for node in &config.nodes {
        if let Some(launched) = groups.remove(node.host.as_str()) {
            out.push((node.clone(), launched));
        }
    }
    // Nodes removed from the configuration since: still reachable by name.
    for (host, launched) in groups {
        let node = Node {
            host: host.to_string(),
            ssh_port: None,
        };
        out.push((node, launched));
    }
    out
}

fn pid_list(launched: &[&Launched]) -> String {
    launched
        .iter()
        .map(|l| l.pid.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `script(pids)` on every node of `groups` (a bounded number at a
/// time), with the recorded pids of that node.
fn on_each_group<T: Send>(
    ssh: &Ssh,
    config: &Config,
    groups: &[(Node, Vec<&Launched>)],
    script: impl Fn(&str) -> String + Sync,
    read: impl Fn(&Node, &str) -> T + Sync,
) -> Vec<Result<T, String>> {
    let nodes: Vec<Node> = groups.iter().map(|(n, _)| n.clone()).collect();
    for_each_node(&nodes, config.parallel(), |node| {
        let pids = groups
            .iter()
            .find(|(n, _)| n.host == node.host)
            .map(|(_, l)| pid_list(l))
            .unwrap_or_default();
        let out = ssh.run(node, &script(&pids)).map_err(|e| e.to_string())?;
        Ok(read(node, &out.stdout))
    })
}

/// Prints each recorded process and whether it runs, then the instance's
/// view as `concoord status` reports it. Fails if a process is down or a
/// node cannot be reached.
pub fn status(ssh: &Ssh, config: &Config, state: &State, concoord: &Path) -> Result<()> {
    if state.launched.is_empty() {
        println!("nothing started: start replicas with `openreplica replica -o OBJECT`");
        return Ok(());
    }
    let groups = by_node(config, state, None);
    let answers = on_each_group(
        ssh,
        config,
        &groups,
        |pids| {
            format!(
                "{OURS}; for p in {pids}; do if ours $p; then echo \"$p up\"; else echo \"$p down\"; fi; done"
            )
        },
        |_, stdout| -> BTreeMap<u32, bool> {
            stdout
                .lines()
                .filter_map(|l| {
                    let (pid, state) = l.split_once(' ')?;
                    Some((pid.parse().ok()?, state == "up"))
                })
                .collect()
        },
    );
    let mut down = 0;
    println!(
        "{:<24} {:<11} {:<24} {:>8}  STATE",
        "NODE", "KIND", "ADDRESS", "PID"
    );
    for ((node, launched), answer) in groups.iter().zip(&answers) {
        for l in launched {
            let running = match answer {
                Ok(pids) if pids.get(&l.pid) == Some(&true) => "running",
                Ok(_) => "not running",
                Err(_) => "unknown (node unreachable)",
            };
            if running != "running" {
                down += 1;
            }
            println!(
                "{:<24} {:<11} {:<24} {:>8}  {running}",
                node.host,
                l.kind.subcommand(),
                l.addr,
                l.pid
            );
        }
        if let Err(e) = answer {
            println!("  {e}");
        }
    }
    let boot = state.bootstrap();
    if !boot.is_empty() {
        println!("\nthe instance (concoord status -b {boot}):");
        let out = Command::new(concoord)
            .args(["status", "-b", &boot])
            .output()
            .with_context(|| format!("cannot run {}", concoord.display()))?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    if down > 0 {
        bail!(
            "{down} of {} recorded processes are not running",
            state.launched.len()
        );
    }
    Ok(())
}

/// Stops the recorded processes (on `only`, or everywhere): SIGTERM, then
/// SIGKILL after 5 s; forgets those of the nodes that answered.
pub fn stop(ssh: &Ssh, config: &Config, state: &mut State, only: Option<&str>) -> Result<()> {
    let groups = by_node(config, state, only);
    if groups.is_empty() {
        println!("nothing to stop");
        return Ok(());
    }
    let results = on_each_group(
        ssh,
        config,
        &groups,
        |pids| {
            format!(
                "{OURS}; for p in {pids}; do ours $p && kill $p; done; i=0; \
                 while [ $i -lt 50 ]; do left=; for p in {pids}; do ours $p && left=1; done; \
                 [ -z \"$left\" ] && exit 0; sleep 0.1; i=$((i+1)); done; \
                 for p in {pids}; do ours $p && kill -9 $p && echo \"$p\"; done; exit 0"
            )
        },
        |node, stdout| {
            for pid in stdout.lines() {
                println!(
                    "{}: pid {pid} did not stop within 5 s and was killed",
                    node.host
                );
            }
        },
    );
    let mut failed = Vec::new();
    let mut stopped = Vec::new();
    for ((node, launched), result) in groups.iter().zip(results) {
        match result {
            Ok(()) => {
                for l in launched {
                    println!(
                        "stopped {} {} on {} (pid {})",
                        l.kind.subcommand(),
                        l.addr,
                        node.host,
                        l.pid
                    );
                }
                stopped.push(node.host.clone());
            }
            Err(e) => failed.push(e),
        }
    }
    state.launched.retain(|l| !stopped.contains(&l.host));
    if state.replicas().next().is_none() {
        state.peer_secret = None;
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

/// Prints the last `lines` lines of the logs of the processes recorded on
/// `host` (or of every log in its log directory if none is recorded).
pub fn logs(ssh: &Ssh, config: &Config, state: &State, host: &str, lines: usize) -> Result<()> {
    let node = match config.node(host) {
        Some(n) => n.clone(),
        None => {
            // A node removed from the configuration since it was used.
            if !state.launched.iter().any(|l| l.host == host) {
                config.require_node(host)?;
            }
            Node {
                host: host.to_string(),
                ssh_port: None,
            }
        }
    };
    let files: Vec<String> = state
        .launched
        .iter()
        .filter(|l| l.host == host)
        .map(|l| quote(&l.log))
        .collect();
    let files = if files.is_empty() {
        format!("{}/logs/*.log", quote(config.remote_dir()))
    } else {
        files.join(" ")
    };
    let out = ssh.run(&node, &format!("tail -n {lines} {files}"))?;
    print!("{}", out.stdout);
    if !out.ok() {
        bail!("{host}: cannot read the logs: {}", out.stderr.trim());
    }
    Ok(())
}
