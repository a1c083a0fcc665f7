//! The replica's command line, between the runtime (`concoord-replica`,
//! generic over the object, no flags) and the binaries: `concoord replica`'s
//! flags ([`ReplicaArgs`]), logging setup (console, JSON, `-l` to a log
//! daemon, and the daemon itself), the catalogue of ready-made objects
//! (`-o NAME`), and [`main`] for a user's own replica binary, so that binary
//! and `concoord replica -o NAME` share one flag definition.
//!
//! Serve your own object from a three-line binary; it takes every flag of
//! `concoord replica` (`-a -p -b -d -t`, `-n DOMAIN` for the name server):
//!
//! ```no_run
//! # use concoord_objects::Counter as TenCounter;
//! fn main() -> std::process::ExitCode {
//!     concoord_replica_cli::main::<TenCounter>()
//! }
//! ```

#![deny(missing_docs)]

pub mod builtin;
pub mod cli;
pub mod log_daemon;
pub mod logging;
pub mod net_log;

use clap::{CommandFactory, FromArgMatches, Parser};
use concoord_object::ReplicatedObject;
use concoord_replica::{ReplicaError, run};
use concoord_transport::cli::block_on_threads;
use std::process::ExitCode;

pub use cli::ReplicaArgs;

#[derive(Parser, Debug)]
#[command(about = "Serve a replicated object (ConCoord replica)", version)]
struct StandaloneArgs {
    #[command(flatten)]
    replica: ReplicaArgs,
}

/// Entry point for a user's replica binary serving object type `O`: parses
/// the `concoord replica` flags from the command line, logs to the console,
/// and runs until killed. `-o`, if given, must name `O`.
pub fn main<O: ReplicatedObject>() -> ExitCode {
    // The binary serves one object: its help names it and leaves out -o
    // (still accepted, and checked, for scripts written for `concoord
    // replica`).
    let command = StandaloneArgs::command()
        .mut_arg("objectname", |a| a.hide(true))
        .about(format!(
            "Serve a replicated {} (a ConCoord replica)",
            O::type_name()
        ));
    let args = match StandaloneArgs::from_arg_matches(&command.get_matches()) {
        Ok(parsed) => parsed.replica,
        Err(e) => e.exit(),
    };
    if let Err(e) = args.init_logging() {
        return report(Err(e));
    }
    if let Some(name) = &args.objectname {
        let class = O::type_name().rsplit('.').next().unwrap_or_default();
        if name != O::type_name() && name != class {
            eprintln!(
                "error: this binary serves {}, not {name}; drop -o or use `concoord replica -o {name}`",
                O::type_name()
            );
            return ExitCode::from(2);
        }
    }
    let threads = args.threads;
    let result = args
        .to_options()
        .map(|opts| block_on_threads(threads, run::<O>(opts)));
    report(result.and_then(|r| r))
}

/// Prints an error the way every ConCoord binary does and picks the exit code.
pub fn report(result: Result<(), ReplicaError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                ReplicaError::Fatal(_) => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}
