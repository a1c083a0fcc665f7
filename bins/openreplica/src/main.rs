//! `openreplica`: configure remote machines and launch ConCoord replicas and
//! name servers on them over SSH.
//!
//! ```text
//! openreplica addsshkey ~/.ssh/concoord.pem     # how to log in
//! openreplica addusername ec2-user
//! openreplica addnode ec2-54-186-26-155…        # checks the node over SSH
//! openreplica setup --all                       # copies this build's concoord
//! openreplica replica -o counter --count 3      # founds, then joins with -b
//! openreplica status | stop | logs HOST
//! ```
//!
//! Everything remote goes through the system `ssh` (see `ssh.rs`); what was
//! started is recorded next to the configuration (see `state.rs`).

mod config;
mod launch;
mod manage;
mod node_check;
mod ssh;
mod state;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use config::{Config, Node};
use indicatif::MultiProgress;
use ssh::{Ssh, for_each_node};
use state::{Kind, State};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Configure remote machines over SSH and launch ConCoord replicas and name
/// servers on them.
#[derive(Parser)]
#[command(name = "openreplica", version, about, long_about = None)]
struct Cli {
    /// The configuration file [default: $OPENREPLICA_CONFIG, else
    /// ~/.config/openreplica/config.toml]. What was started is recorded in
    /// launched.toml next to it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Add the host key of a node never connected to before to known_hosts
    /// (a changed key is still refused).
    #[arg(long, global = true)]
    accept_new_host_keys: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the configuration file.
    Config,
    /// Use this private key to log in to the nodes.
    Addsshkey {
        /// The key file (e.g. ~/.ssh/my-key-pair.pem).
        file: PathBuf,
    },
    /// Log in to the nodes as this user.
    Addusername {
        /// The login (e.g. ec2-user).
        user: String,
    },
    /// Add a node, after checking over SSH that it can run concoord.
    Addnode {
        /// Its host name or address (replicas listen on it unless -a says otherwise).
        host: String,
        /// Its SSH port, if not 22 (or ~/.ssh/config's).
        #[arg(long)]
        ssh_port: Option<u16>,
        /// Add it even if the check fails.
        #[arg(long)]
        force: bool,
    },
    /// Remove a node from the configuration (what runs there keeps running).
    Removenode {
        /// The node.
        host: String,
    },
    /// Set another option: known-hosts FILE, remote-dir DIR,
    /// connect-timeout SECS or parallel N.
    Set {
        /// The option.
        #[arg(value_parser = ["known-hosts", "remote-dir", "connect-timeout", "parallel"])]
        key: String,
        /// Its value.
        value: String,
    },
    /// Copy this build's concoord binary to nodes (checksum verified; nothing
    /// to do where it is already installed).
    Setup {
        /// The nodes (configured ones).
        hosts: Vec<String>,
        /// Every configured node.
        #[arg(long, conflicts_with = "hosts")]
        all: bool,
        /// The binary to install [default: the concoord next to openreplica].
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Start replicas on the nodes: `openreplica replica [--node HOST]
    /// [--count N] CONCOORD-REPLICA-ARGS…` (e.g. -o counter -w). The first
    /// founds the instance, the next join it.
    #[command(disable_help_flag = false)]
    Replica(LaunchArgs),
    /// Start a name server on a node: `openreplica nameserver [--node HOST]
    /// -n DOMAIN [CONCOORD-NAMESERVER-ARGS…]`; it follows the instance
    /// started here unless -b is given.
    Nameserver(LaunchArgs),
    /// Show what was started, whether it runs, and the instance's view.
    Status {
        /// The concoord binary to ask the instance with [default: the one
        /// next to openreplica].
        #[arg(long, value_name = "PATH")]
        concoord: Option<PathBuf>,
    },
    /// Stop what was started (everywhere, or on one node).
    Stop {
        /// Only on this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// Print the end of the logs of what runs on a node.
    Logs {
        /// The node.
        host: String,
        /// Lines per log.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
}

#[derive(clap::Args)]
struct LaunchArgs {
    /// The node to start on [default: the next configured node, round-robin].
    #[arg(long)]
    node: Option<String>,
    /// How many to start (on consecutive nodes unless --node).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Arguments for `concoord replica` / `concoord nameserver` (-a and -p
    /// default to the node and a free port from 14000; -b to the replicas
    /// already started).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let path = match &cli.config {
        Some(p) => p.clone(),
        None => config::default_path()?,
    };
    let mut config = Config::load(&path)?;
    let ssh = Ssh::new(&config, cli.accept_new_host_keys);
    let state_path = State::path_for(&path);
    match cli.command {
        Command::Config => {
            println!("# {}", path.display());
            print!(
                "{}",
                toml::to_string_pretty(&config).context("cannot encode the configuration")?
            );
            Ok(())
        }
        Command::Addsshkey { file } => {
            let file = std::fs::canonicalize(&file)
                .with_context(|| format!("cannot find the key {}", file.display()))?;
            let mode = std::fs::metadata(&file)?.permissions().mode();
            if mode & 0o077 != 0 {
                eprintln!(
                    "warning: others can read {}; ssh refuses such a key: chmod 600 {}",
                    file.display(),
                    file.display()
                );
            }
            println!("Adding SSHKEY to CONFIG: {}", file.display());
            config.sshkey = Some(file);
            config.save(&path)
        }
        Command::Addusername { user } => {
            println!("Adding USERNAME to CONFIG: {user}");
            config.username = Some(user);
            config.save(&path)
        }
        Command::Addnode {
            host,
            ssh_port,
            force,
        } => addnode(&ssh, &mut config, &path, host, ssh_port, force),
        Command::Removenode { host } => {
            config.require_node(&host)?;
            config.nodes.retain(|n| n.host != host);
            println!("Removing NODE from CONFIG: {host}");
            config.save(&path)
        }
        Command::Set { key, value } => {
            set(&mut config, &key, value)?;
            config.save(&path)
        }
        Command::Setup { hosts, all, binary } => {
            setup(&ssh, &config, hosts, all, binary.as_deref())
        }
        Command::Replica(args) => launch(&ssh, &config, &state_path, Kind::Replica, args),
        Command::Nameserver(args) => launch(&ssh, &config, &state_path, Kind::Nameserver, args),
        Command::Status { concoord } => {
            let state = State::load(&state_path)?;
            let concoord = match concoord {
                Some(p) => p,
                None => sibling("concoord")?,
            };
            manage::status(&ssh, &config, &state, &concoord)
        }
        Command::Stop { node } => {
            let mut state = State::load(&state_path)?;
            let result = manage::stop(&ssh, &config, &mut state, node.as_deref());
            state.save(&state_path)?;
            result
        }
        Command::Logs { host, lines } => {
            let state = State::load(&state_path)?;
            manage::logs(&ssh, &config, &state, &host, lines)
        }
    }
}

/// A binary installed next to this one.
fn sibling(name: &str) -> Result<PathBuf> {
    Ok(std::env::current_exe()
        .context("cannot find this executable")?
        .with_file_name(name))
}

fn set(config: &mut Config, key: &str, value: String) -> Result<()> {
    match key {
        "known-hosts" => config.known_hosts = Some(PathBuf::from(value)),
        "remote-dir" => {
            if value.is_empty() || value.starts_with('/') || value.contains("..") {
                bail!("remote-dir is a directory under the login's home, e.g. .concoord");
            }
            config.remote_dir = Some(value)
        }
        "connect-timeout" => {
            config.connect_timeout_secs = Some(
                value
                    .parse()
                    .context("connect-timeout is a number of seconds")?,
            )
        }
        "parallel" => config.parallel = Some(value.parse().context("parallel is a number")?),
        other => bail!("unknown option {other}"),
    }
    println!("Setting {key} in CONFIG");
    Ok(())
}

fn addnode(
    ssh: &Ssh,
    config: &mut Config,
    path: &Path,
    host: String,
    ssh_port: Option<u16>,
    force: bool,
) -> Result<()> {
    println!("Adding NODE to CONFIG: {host}");
    let node = Node {
        host: host.clone(),
        ssh_port,
    };
    let local = node_check::LocalBinary::load(None).ok();
    let verdict = node_check::probe(ssh, &node, config.remote_dir())
        .map(|p| node_check::judge(&p, local.as_ref(), &host));
    let problems = match verdict {
        Ok((problems, notes)) => {
            for n in notes {
                println!("  {n}");
            }
            problems
        }
        Err(e) => vec![format!("{e:#}")],
    };
    for p in &problems {
        eprintln!("  {p}");
    }
    if !problems.is_empty() && !force {
        bail!("{host} was not added (add it anyway with --force)");
    }
    config.nodes.retain(|n| n.host != host);
    config.nodes.push(node);
    config.save(path)
}

fn setup(
    ssh: &Ssh,
    config: &Config,
    hosts: Vec<String>,
    all: bool,
    binary: Option<&Path>,
) -> Result<()> {
    let nodes: Vec<Node> = if all {
        config.nodes.clone()
    } else if hosts.is_empty() {
        bail!("name the nodes to set up, or pass --all");
    } else {
        hosts
            .iter()
            .map(|h| config.require_node(h).cloned())
            .collect::<Result<_>>()?
    };
    if nodes.is_empty() {
        bail!("no node is configured: add one with `openreplica addnode HOST`");
    }
    let local = node_check::LocalBinary::load(binary)?;
    let bars = MultiProgress::new();
    let results = for_each_node(&nodes, config.parallel(), |node| {
        node_check::setup(ssh, node, config.remote_dir(), &local, &bars)
    });
    let mut failed = 0;
    for r in results {
        match r {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} nodes were not set up", nodes.len());
    }
    Ok(())
}

fn launch(
    ssh: &Ssh,
    config: &Config,
    state_path: &Path,
    kind: Kind,
    args: LaunchArgs,
) -> Result<()> {
    let mut state = State::load(state_path)?;
    let mut result = Ok(());
    for _ in 0..args.count.max(1) {
        let node = match launch::pick_node(config, &state, args.node.as_deref()) {
            Ok(n) => n.clone(),
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        match launch::start(ssh, config, &mut state, &node, kind, &args.args) {
            Ok(l) => println!(
                "started {} {} on {} (pid {}, log ~/{})",
                kind.subcommand(),
                l.addr,
                l.host,
                l.pid,
                l.log
            ),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        // Record each start at once: a later failure must not lose it.
        state.save(state_path)?;
    }
    let boot = state.bootstrap();
    if !boot.is_empty() {
        println!("bootstrap: {boot}");
        if kind == Kind::Replica && result.is_ok() {
            println!("call it:   concoord call -b {boot} METHOD [ARGS…]");
        }
    }
    if let Some(domain) = launch::flag_value(&args.args, "-n", "--domainname") {
        println!("domain:    {domain}");
    }
    result
}
