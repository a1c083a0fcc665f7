//! What every ConCoord command-line program shares, client tools and
//! replicas alike (feature `cli`): the TLS flags (`--tls-cert`, `--tls-key`,
//! `--tls-ca`), one definition for every command that opens or accepts
//! connections (replicas, `concoord call/status/add/remove`, users' replica
//! binaries), and [`block_on`] for their `main`. It lives here, in the crate
//! both sides depend on, so that a client tool needs neither the replica
//! runtime nor clap in a library that does not parse flags. See
//! docs/security.md for the certificate convention.

use crate::TlsError;
use crate::tls_config::{ClientTls, TlsFiles};
use clap::Args;
use std::path::PathBuf;

/// TLS flags. Without `--tls-ca`, connections are plain TCP.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsArgs {
    /// PEM certificate chain this process presents. A replica's must name
    /// concoord-replica://ADDR:PORT (its -a/-p) and the IP or DNS name of
    /// ADDR; a client's is optional.
    #[arg(long, value_name = "FILE", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificate of the CA that signs every certificate of the
    /// instance. Turns TLS on (mutual TLS on peer links).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The files, if TLS is on.
    pub fn files(&self) -> Option<TlsFiles> {
        self.tls_ca.as_ref().map(|ca| TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            ca: ca.clone(),
        })
    }

    /// A client's TLS settings, if TLS is on.
    pub fn client(&self) -> Result<Option<ClientTls>, TlsError> {
        self.files().map(|f| f.client()).transpose()
    }
}

/// Runs a future on a new multi-threaded runtime, for a program's `main`;
/// a runtime that cannot start ends the process with status 1.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    run_on(tokio::runtime::Runtime::new(), f)
}

/// Runs a server's future on a runtime of `threads` threads: 1 runs every
/// task on the calling thread (no task is ever woken from another thread,
/// which on a small machine shared by several processes is the fastest);
/// more adds that many worker threads for the spawned tasks, the future
/// itself staying on the calling thread; 0 adds one worker per core.
pub fn block_on_threads<F: std::future::Future>(threads: usize, f: F) -> F::Output {
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Runtime::new(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    run_on(runtime, f)
}

fn run_on<F: std::future::Future>(
    runtime: std::io::Result<tokio::runtime::Runtime>,
    f: F,
) -> F::Output {
    match runtime {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}
