//! `addnode`'s eligibility check and `setup`'s installation of this build's
//! `concoord` on a node.
//!
//! A node is eligible when SSH reaches it, it runs the OS and CPU
//! architecture this build is for, and it has room for the binary and some
//! data. Whether concoord is installed (and whether it is *this* build, by
//! checksum) is reported, not required: `setup` installs it.

use crate::config::Node;
use crate::ssh::{Ssh, quote};
use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

/// Free space a node needs besides the binary: logs and a little data.
const SPARE_BYTES: u64 = 64 << 20;
/// Upload chunk.
const CHUNK: usize = 256 << 10;

/// What a node said about itself.
#[derive(Debug, PartialEq, Eq)]
pub struct Probe {
    /// `uname -s`, lower-cased (`linux`).
    pub os: String,
    /// `uname -m` (`x86_64`).
    pub arch: String,
    /// Free space in the home directory, bytes.
    pub free_bytes: u64,
    /// The installed binary's SHA-256 and `--version`, if any.
    pub installed: Option<(String, String)>,
}

/// The remote script that prints the probe, one item per line.
fn probe_script(remote_dir: &str) -> String {
    let bin = quote(&format!("{remote_dir}/bin/concoord"));
    format!(
        "uname -s; uname -m; df -Pk . | awk 'NR==2 {{print $4}}'; \
         if [ -x {bin} ]; then sha256sum {bin} | cut -d' ' -f1; {bin} --version 2>&1 | head -n 1; \
         else echo none; fi"
    )
}

fn parse_probe(stdout: &str) -> Result<Probe> {
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let [os, arch, free_kib, installed, rest @ ..] = lines.as_slice() else {
        bail!("the node's answer to the eligibility probe is incomplete: {stdout:?}");
    };
    let free_kib: u64 = free_kib
        .parse()
        .with_context(|| format!("cannot read free disk space from {free_kib:?}"))?;
    let installed = match *installed {
        "none" => None,
        sum => Some((
            sum.to_string(),
            rest.first().copied().unwrap_or("").to_string(),
        )),
    };
    Ok(Probe {
        os: os.to_lowercase(),
        arch: arch.to_string(),
        free_bytes: free_kib.saturating_mul(1024),
        installed,
    })
}

/// Asks `node` about itself.
pub fn probe(ssh: &Ssh, node: &Node, remote_dir: &str) -> Result<Probe> {
    let out = ssh.run(node, &probe_script(remote_dir))?;
    if !out.ok() {
        bail!(
            "{}: the eligibility probe failed (exit {}): {}",
            node.host,
            out.code,
            out.stderr.trim()
        );
    }
    parse_probe(&out.stdout).with_context(|| node.host.clone())
}

/// This build's binary to deploy, and its SHA-256.
pub struct LocalBinary {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

impl LocalBinary {
    /// Reads `path`, or the `concoord` next to this executable.
    pub fn load(path: Option<&Path>) -> Result<LocalBinary> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => std::env::current_exe()
                .context("cannot find this executable")?
                .with_file_name("concoord"),
        };
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| {
                format!(
                    "cannot read the concoord binary to install ({}); build it, or pass --binary PATH",
                    path.display()
                )
            })?;
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        Ok(LocalBinary { bytes, sha256 })
    }
}

/// What is wrong with `probe` for running `local`, if anything (fatal), and
/// what to note (not fatal).
pub fn judge(probe: &Probe, local: Option<&LocalBinary>, host: &str) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let os = std::env::consts::OS;
    if probe.os != os {
        problems.push(format!(
            "the node runs {}, this build of concoord is for {os}: build concoord for that system",
            probe.os
        ));
    }
    let arch = std::env::consts::ARCH;
    let same_arch = probe.arch == arch || (arch == "aarch64" && probe.arch == "arm64");
    if !same_arch {
        problems.push(format!(
            "the node's CPU is {}, this build is for {arch}: build concoord for {} (cargo build --target …)",
            probe.arch, probe.arch
        ));
    }
    let need = local.map_or(0, |l| l.bytes.len() as u64) + SPARE_BYTES;
    if probe.free_bytes < need {
        problems.push(format!(
            "only {} MiB free in the home directory, {} MiB needed: free some space",
            probe.free_bytes >> 20,
            need.div_ceil(1 << 20)
        ));
    }
    match (&probe.installed, local) {
        (None, _) => notes.push(format!(
            "concoord is not installed: run `openreplica setup {host}`"
        )),
        (Some((sum, version)), Some(l)) if *sum == l.sha256 => {
            notes.push(format!("{version} is installed (this build)"))
        }
        (Some((_, version)), _) => notes.push(format!(
            "another concoord build is installed ({version}): `openreplica setup {host}` replaces it with this one"
        )),
    }
    (problems, notes)
}

/// Installs `local` on `node` as `REMOTE_DIR/bin/concoord`, unless the same
/// build is there already; verifies the checksum after copying.
pub fn setup(
    ssh: &Ssh,
    node: &Node,
    remote_dir: &str,
    local: &LocalBinary,
    bars: &MultiProgress,
) -> Result<String> {
    let found = probe(ssh, node, remote_dir)?;
    let (problems, _) = judge(&found, Some(local), &node.host);
    if !problems.is_empty() {
        bail!("{} cannot run concoord: {}", node.host, problems.join("; "));
    }
    if found
        .installed
        .as_ref()
        .is_some_and(|(sum, _)| *sum == local.sha256)
    {
        return Ok(format!(
            "{}: this build of concoord is already installed (sha256 {}), nothing to do",
            node.host,
            &local.sha256[..16]
        ));
    }
    let bin_dir = format!("{remote_dir}/bin");
    let upload = format!("{bin_dir}/.concoord.upload");
    let started = Instant::now();
    let mut child = ssh.spawn(
        node,
        &format!("mkdir -p {} && cat > {}", quote(&bin_dir), quote(&upload)),
    )?;
    let bar = bars.add(ProgressBar::new(local.bytes.len() as u64));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("uploading to {}", node.host));
    if let Some(mut stdin) = child.stdin.take() {
        for chunk in local.bytes.chunks(CHUNK) {
            if stdin.write_all(chunk).is_err() {
                break; // the remote side ended; its status says why
            }
            bar.inc(chunk.len() as u64);
        }
    }
    bar.finish_and_clear();
    let out = ssh.wait(node, child)?;
    if !out.ok() {
        bail!(
            "{}: the upload failed (exit {}): {}",
            node.host,
            out.code,
            out.stderr.trim()
        );
    }
    let target = format!("{bin_dir}/concoord");
    let check = format!(
        "sum=$(sha256sum {up} | cut -d' ' -f1); if [ \"$sum\" != {want} ]; then rm -f {up}; echo \"$sum\"; exit 3; fi; \
         chmod 755 {up} && mv -f {up} {target} && {target} --version",
        up = quote(&upload),
        want = quote(&local.sha256),
        target = quote(&target),
    );
    let out = ssh.run(node, &check)?;
    match out.code {
        0 => {}
        3 => bail!(
            "{}: the copy is damaged (sha256 {} on the node, {} here); run setup again",
            node.host,
            out.stdout.trim(),
            local.sha256
        ),
        code => bail!(
            "{}: installing the binary failed (exit {code}): {}",
            node.host,
            out.stderr.trim()
        ),
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "{}: installed {} as ~/{target} ({:.1} MiB in {secs:.1} s, sha256 {} verified)",
        node.host,
        out.stdout.trim(),
        local.bytes.len() as f64 / (1 << 20) as f64,
        &local.sha256[..16]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_read_with_or_without_an_installed_binary() {
        let p = parse_probe("Linux\nx86_64\n1048576\nnone\n").expect("probe");
        assert_eq!(p.os, "linux");
        assert_eq!(p.free_bytes, 1 << 30);
        assert_eq!(p.installed, None);
        let p = parse_probe("Linux\nx86_64\n10\nabc123\nconcoord 0.1.0\n").expect("probe");
        assert_eq!(
            p.installed,
            Some(("abc123".into(), "concoord 0.1.0".into()))
        );
        assert!(
            parse_probe("Linux\n").is_err(),
            "a cut-off answer is an error"
        );
    }

    #[test]
    fn an_incompatible_or_full_node_is_refused_with_the_reason() {
        let probe = Probe {
            os: "freebsd".into(),
            arch: "riscv64".into(),
            free_bytes: 1 << 20,
            installed: None,
        };
        let (problems, notes) = judge(&probe, None, "n1");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("freebsd"));
        assert!(problems[1].contains("riscv64"));
        assert!(problems[2].contains("free"));
        assert!(notes[0].contains("openreplica setup n1"));
    }
}
