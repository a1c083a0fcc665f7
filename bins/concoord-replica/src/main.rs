//! `concoord-replica`: the replica alone, with the same flags as
//! `concoord replica`.

use clap::Parser;
use concoord_replica_cli::{ReplicaArgs, builtin};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "concoord-replica",
    version,
    about = "Serve a ready-made ConCoord object"
)]
struct Args {
    #[command(flatten)]
    replica: ReplicaArgs,
}

fn main() -> ExitCode {
    builtin::serve_from_args(Args::parse().replica)
}
