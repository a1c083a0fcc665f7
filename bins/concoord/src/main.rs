//! `concoord`: run replicas, call replicated objects, inspect an instance, and
//! start a local cluster. Thin: parsing and wiring only.

mod call;
mod cluster;
mod logdaemon;
mod nameserver;
mod object;
mod status;
mod view_change;

use clap::{Parser, Subcommand};
use concoord_replica_cli::{ReplicaArgs, builtin};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "concoord",
    version,
    about = "ConCoord: replicated objects kept alive by Multi-Paxos",
    after_help = "Quick start:\n  concoord cluster -n 3 -o concoord.object.counter.Counter\n  concoord call -b 127.0.0.1:14000 increment\n  concoord call -b 127.0.0.1:14000 getvalue"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a replica of an object (a new instance, or joining one with -b).
    Replica(ReplicaArgs),
    /// Call a method of a replicated object and print the reply as JSON.
    Call(call::CallArgs),
    /// Show each replica's role, leader, ballot, progress and view (exit code 4 if they
    /// belong to different instances).
    Status(status::StatusArgs),
    /// Start a local cluster of N replicas on 127.0.0.1; Ctrl-C stops it.
    Cluster(cluster::ClusterArgs),
    /// Write a standalone client proxy for an object's source (and check it with -s).
    Object(object::ObjectArgs),
    /// Add a running replica to the view.
    Add(view_change::AddArgs),
    /// Remove a replica from the view (and stop it).
    Remove(view_change::RemoveArgs),
    /// Answer DNS for an instance from outside its view (follows it like a client).
    Nameserver(nameserver::NameserverArgs),
    /// Collect and print the log lines of replicas started with -l.
    #[command(name = "logdaemon")]
    LogDaemon(logdaemon::LogDaemonArgs),
    /// Store the AWS access key id for Route53 publication (-r).
    #[command(name = "route53id")]
    Route53Id(nameserver::Route53IdArgs),
    /// Store the AWS secret access key for Route53 publication (-r).
    #[command(name = "route53key")]
    Route53Key(nameserver::Route53KeyArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Replica(args) => builtin::serve_from_args(args),
        Command::Call(args) => call::run(args),
        Command::Status(args) => status::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Object(args) => object::run(args),
        Command::Add(args) => view_change::add(args),
        Command::Remove(args) => view_change::remove(args),
        Command::Nameserver(args) => nameserver::run(args),
        Command::LogDaemon(args) => logdaemon::run(args),
        Command::Route53Id(args) => nameserver::store_id(args),
        Command::Route53Key(args) => nameserver::store_key(args),
    }
}
