//! Where a replica's log goes and how it looks: the console (stderr), as
//! text or JSON (`--log-format`), and with `-l` a copy of every record to a
//! `concoord logdaemon` (see `net_log`).
//!
//! Colours only when stderr is a terminal: a log file or a pipe gets plain
//! text. `RUST_LOG` overrides the level (`-d` means debug).

use crate::net_log::NetLog;
use std::io::IsTerminal;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log records are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// What to set up.
#[derive(Clone, Debug, Default)]
pub struct LogSetup {
    /// Debug level unless `RUST_LOG` says otherwise.
    pub debug: bool,
    /// Text or JSON, on the console and to the log daemon alike.
    pub format: LogFormat,
    /// Ship records to a log daemon too.
    pub ship: Option<NetLog>,
}

type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> Boxed
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => fmt.with_ansi(ansi).boxed(),
        LogFormat::Json => fmt.json().boxed(),
    }
}

/// Installs the process's log subscriber (a second call does nothing).
pub fn init(setup: LogSetup) {
    let default = if setup.debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal();
    let mut layers = vec![layer(setup.format, std::io::stderr, ansi)];
    if let Some(ship) = setup.ship {
        layers.push(layer(setup.format, ship, false));
    }
    let _ = tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init();
}
