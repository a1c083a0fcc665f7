//! `concoord-bench`: N concurrent clients against a running instance; prints
//! ops/s and latency percentiles (HdrHistogram, microseconds).
//!
//! ```text
//! concoord-bench -b 127.0.0.1:14000 --workload incr --clients 16 --duration 10
//! ```

use clap::{Parser, ValueEnum};
use concoord_client::{Client, ClientOptions};
use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    /// Counter increments (writes through the log).
    Incr,
    /// Counter reads (linearizable reads, no log write).
    Get,
}

#[derive(Parser)]
#[command(
    name = "concoord-bench",
    version,
    about = "Load generator for a ConCoord instance"
)]
struct Args {
    /// Replicas of the instance (host:port, comma-separated).
    #[arg(short = 'b', long = "boot")]
    boot: String,
    /// What to run.
    #[arg(short = 'w', long, value_enum, default_value = "incr")]
    workload: Workload,
    /// Concurrent clients (each with its own connection and session).
    #[arg(short = 'c', long, default_value_t = 16)]
    clients: u32,
    /// Seconds of measurement.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The instance's security token.
    #[arg(short = 't', long = "token")]
    token: Option<String>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

struct Outcome {
    histogram: Histogram<u64>,
    errors: u64,
}

async fn one_client(
    boot: String,
    options: ClientOptions,
    workload: Workload,
    warmup_until: Instant,
    stop_at: Instant,
) -> Result<Outcome, String> {
    let client = Client::connect_with(&boot, options)
        .await
        .map_err(|e| e.to_string())?;
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let mut errors = 0;
    loop {
        let started = Instant::now();
        if started >= stop_at {
            break;
        }
        let result = match workload {
            Workload::Incr => client.call::<_, ()>("increment", &()).await.map(|_| ()),
            Workload::Get => client.call::<_, i64>("getvalue", &()).await.map(|_| ()),
        };
        let micros = started.elapsed().as_micros() as u64;
        if started >= warmup_until {
            match result {
                Ok(()) => {
                    let _ = histogram.record(micros.max(1));
                }
                Err(_) => errors += 1,
            }
        }
    }
    Ok(Outcome { histogram, errors })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ClientOptions {
        token: args.token.clone(),
        ..ClientOptions::default()
    };
    let measured = Duration::from_secs_f64(args.duration.max(0.1));
    let results = concoord_replica::block_on(async {
        let warmup_until = Instant::now() + Duration::from_secs_f64(args.warmup.max(0.0));
        let stop_at = warmup_until + measured;
        let tasks: Vec<_> = (0..args.clients)
            .map(|_| {
                tokio::spawn(one_client(
                    args.boot.clone(),
                    options.clone(),
                    args.workload,
                    warmup_until,
                    stop_at,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
        }
        out
    });
    let mut total = match Histogram::<u64>::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut errors = 0;
    for r in results {
        match r {
            Ok(o) => {
                let _ = total.add(&o.histogram);
                errors += o.errors;
            }
            Err(e) => {
                eprintln!("error: a client could not run: {e}");
                return ExitCode::from(3);
            }
        }
    }
    let ops = total.len();
    let ops_per_sec = ops as f64 / measured.as_secs_f64();
    let workload = format!("{:?}", args.workload).to_lowercase();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "workload": workload,
                "clients": args.clients,
                "duration_secs": measured.as_secs_f64(),
                "ops": ops,
                "errors": errors,
                "ops_per_sec": ops_per_sec.round(),
                "latency_us_p50": total.value_at_quantile(0.50),
                "latency_us_p99": total.value_at_quantile(0.99),
                "latency_us_p999": total.value_at_quantile(0.999),
                "latency_us_max": total.max(),
            })
        );
    } else {
        println!(
            "workload={workload} clients={} ops={ops} errors={errors} ops/s={ops_per_sec:.0} p50={}us p99={}us p999={}us max={}us",
            args.clients,
            total.value_at_quantile(0.50),
            total.value_at_quantile(0.99),
            total.value_at_quantile(0.999),
            total.max()
        );
    }
    if ops == 0 {
        eprintln!("error: no operation completed");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
