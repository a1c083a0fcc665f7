//! `concoord-bench`: N concurrent clients against a running instance; prints
//! ops/s and latency percentiles (HdrHistogram, microseconds).
//!
//! ```text
//! concoord-bench -b 127.0.0.1:14000 --workload incr --clients 16 --duration 10
//! ```

use clap::{Parser, ValueEnum};
use concoord_client::{CallMode, Client, ClientOptions, blocking};
use hdrhistogram::Histogram;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Workload {
    /// Counter increments (writes through the log).
    Incr,
    /// Counter reads (linearizable reads, no log write).
    Get,
    /// KeyValue puts of `--value-size` bytes to one of `--keys` keys
    /// (against `-o keyvalue`; writes through the log).
    Put,
    /// Lock acquire + release round trips, contended by every client
    /// (against `-o concoord.object.lock.Lock`).
    Lock,
    /// Barrier waits, every client a party (against
    /// `-o concoord.object.barrier.Barrier`; re-initialised for --clients
    /// parties); reports rounds per second too.
    Barrier,
}

/// The original's proxy types, as call modes.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Type 0: one call at a time per client.
    Serial,
    /// Type 1: blocking calls from threads.
    Blocking,
    /// Type 2: client-side batching.
    Batched,
    /// Type 3: pipelined; the leader batches (server-side batching).
    Pipelined,
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
    /// How calls are sent (the original's proxy types 0–3).
    #[arg(short = 'm', long, value_enum, default_value = "pipelined")]
    mode: Mode,
    /// All callers share one client (one connection and session), as callers
    /// sharing one proxy do; otherwise each caller has its own.
    #[arg(long)]
    shared: bool,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Bytes of each value the put workload writes.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Keys the put workload spreads its writes over.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
}

/// What every caller runs: the workload and, for puts, the value and the
/// number of keys.
#[derive(Clone)]
struct Job {
    workload: Workload,
    value: Arc<str>,
    keys: u64,
    callers: u64,
}

impl Job {
    fn of(args: &Args) -> Job {
        Job {
            workload: args.workload,
            value: "x".repeat(args.value_size).into(),
            keys: args.keys,
            callers: u64::from(args.clients),
        }
    }
}

/// A caller's walk over the keys: the keys are cut into one block per
/// caller and each caller writes its own block in turn, so concurrent puts
/// write different keys and, after `--keys` puts spread evenly, every key
/// exists (`scripts/large-object-bench.sh` fills an object that way).
struct KeyCursor {
    first: u64,
    block: u64,
    written: u64,
}

impl KeyCursor {
    fn new(caller: u64, callers: u64, keys: u64) -> KeyCursor {
        let block = keys.div_ceil(callers.max(1)).max(1);
        KeyCursor {
            first: caller.saturating_mul(block),
            block,
            written: 0,
        }
    }

    fn next(&mut self, keys: u64) -> String {
        let key = (self.first + self.written % self.block) % keys;
        self.written += 1;
        format!("key{key}")
    }
}

struct Outcome {
    histogram: Histogram<u64>,
    errors: u64,
}

/// One operation of the workload. `Ok(false)`: the run ended during a
/// barrier wait (its round will not complete), which is not counted.
async fn call(
    client: &Client,
    job: &Job,
    keys: &mut KeyCursor,
    stop_at: Instant,
) -> Result<bool, concoord_client::ClientError> {
    match job.workload {
        Workload::Incr => client.call::<_, ()>("increment", &()).await.map(|_| true),
        Workload::Put => {
            // The reply is the previous value, as large as the new one: it
            // is skipped, not decoded.
            let key = keys.next(job.keys);
            client
                .call::<_, serde::de::IgnoredAny>("put", &(key, &*job.value))
                .await
                .map(|_| true)
        }
        Workload::Get => client.call::<_, i64>("getvalue", &()).await.map(|_| true),
        Workload::Lock => {
            client.call::<_, u64>("acquire", &()).await?;
            client.call::<_, ()>("release", &()).await.map(|_| true)
        }
        Workload::Barrier => {
            // Parties that stop early leave the last round incomplete, so a
            // wait gives up shortly after the end of the run.
            let wait = stop_at.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
            // The reply is the barrier's Result<index, BarrierError>.
            let index: Option<Result<u64, serde_json::Value>> =
                client.call_waiting("wait", &(), wait).await?;
            Ok(matches!(index, Some(Ok(_))))
        }
    }
}

fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())
}

/// The measurement window of one caller: counts what completes after the
/// warm-up and before the end.
struct Window {
    warmup_until: Instant,
    stop_at: Instant,
    outcome: Outcome,
}

impl Window {
    fn new(warmup_until: Instant, stop_at: Instant) -> Result<Window, String> {
        Ok(Window {
            warmup_until,
            stop_at,
            outcome: Outcome {
                histogram: new_histogram()?,
                errors: 0,
            },
        })
    }

    /// When the next call starts, or `None` once the run is over.
    fn next(&self) -> Option<Instant> {
        let now = Instant::now();
        (now < self.stop_at).then_some(now)
    }

    fn record(&mut self, started: Instant, outcome: Result<bool, concoord_client::ClientError>) {
        if started < self.warmup_until || matches!(outcome, Ok(false)) {
            return;
        }
        if outcome.is_ok() {
            let micros = (started.elapsed().as_micros() as u64).max(1);
            let _ = self.outcome.histogram.record(micros);
        } else {
            self.outcome.errors += 1;
        }
    }
}

async fn one_caller(
    client: Client,
    job: Job,
    caller: u64,
    warmup_until: Instant,
    stop_at: Instant,
) -> Result<Outcome, String> {
    let mut window = Window::new(warmup_until, stop_at)?;
    let mut keys = KeyCursor::new(caller, job.callers, job.keys);
    while let Some(started) = window.next() {
        let outcome = call(&client, &job, &mut keys, stop_at).await;
        window.record(started, outcome);
    }
    Ok(window.outcome)
}

fn one_blocking_caller(
    client: blocking::Client,
    job: Job,
    caller: u64,
    warmup_until: Instant,
    stop_at: Instant,
) -> Result<Outcome, String> {
    // The blocking client's own runtime runs the connection; this thread just
    // waits for each reply, as a blocking caller does.
    futures::executor::block_on(one_caller(
        client.as_async().clone(),
        job,
        caller,
        warmup_until,
        stop_at,
    ))
}

/// One client per caller, or one shared by all.
async fn clients<C: Clone, F>(
    callers: u32,
    shared: bool,
    mut connect: impl FnMut() -> F,
) -> Result<Vec<C>, String>
where
    F: std::future::Future<Output = Result<C, concoord_client::ClientError>>,
{
    let mut out: Vec<C> = Vec::new();
    for _ in 0..callers {
        let client = match out.first() {
            Some(first) if shared => first.clone(),
            _ => connect().await.map_err(|e| e.to_string())?,
        };
        out.push(client);
    }
    Ok(out)
}

/// Blocking callers, one thread each (the original's proxy type 1).
fn run_blocking(
    args: &Args,
    options: ClientOptions,
    warmup_until: Instant,
    stop_at: Instant,
) -> Vec<Result<Outcome, String>> {
    let connect =
        || std::future::ready(blocking::Client::connect_with(&args.boot, options.clone()));
    // Not inside tokio: a blocking client runs its own runtime.
    let clients = match futures::executor::block_on(clients(args.clients, args.shared, connect)) {
        Ok(c) => c,
        Err(e) => return vec![Err(e)],
    };
    let mut threads = Vec::new();
    let job = Job::of(args);
    for (caller, client) in (0..).zip(clients) {
        let job = job.clone();
        threads.push(std::thread::spawn(move || {
            one_blocking_caller(client, job, caller, warmup_until, stop_at)
        }));
    }
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| "a caller thread panicked".to_string())
                .and_then(|r| r)
        })
        .collect()
}

/// Runs the workload on async clients, one task per caller.
fn run_async(
    args: &Args,
    options: ClientOptions,
    warmup_until: Instant,
    stop_at: Instant,
) -> Vec<Result<Outcome, String>> {
    concoord_transport::cli::block_on(async {
        let connect = || Client::connect_with(&args.boot, options.clone());
        let clients = match clients(args.clients, args.shared, connect).await {
            Ok(c) => c,
            Err(e) => return vec![Err(e)],
        };
        let mut tasks = Vec::new();
        let job = Job::of(args);
        for (caller, client) in (0..).zip(clients) {
            tasks.push(tokio::spawn(one_caller(
                client,
                job.clone(),
                caller,
                warmup_until,
                stop_at,
            )));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.map_err(|e| e.to_string()).and_then(|r| r));
        }
        out
    })
}

/// The client options the flags ask for.
fn client_options(args: &Args) -> ClientOptions {
    let mode = match args.mode {
        Mode::Serial => CallMode::Serial,
        Mode::Batched => CallMode::batched(),
        Mode::Pipelined | Mode::Blocking => CallMode::Pipelined,
    };
    ClientOptions {
        token: args.token.clone(),
        mode,
        ..ClientOptions::default()
    }
}

/// Re-initialises the barrier for `--clients` parties.
fn reset_barrier(args: &Args, options: &ClientOptions) -> Result<(), concoord_client::ClientError> {
    concoord_transport::cli::block_on(async {
        let c = Client::connect_with(&args.boot, options.clone()).await?;
        c.call::<_, ()>(concoord_client::CONCOORD_INIT, &(args.clients as u64,))
            .await
    })
}

/// Every caller's latencies in one histogram, and the errors they counted;
/// `Err` with the exit code if a caller could not run.
fn merge(results: Vec<Result<Outcome, String>>) -> Result<(Histogram<u64>, u64), ExitCode> {
    let mut total = match Histogram::<u64>::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(1));
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
                return Err(ExitCode::from(3));
            }
        }
    }
    Ok((total, errors))
}

/// Prints the run's numbers, as text or one JSON line.
fn print_report(args: &Args, total: &Histogram<u64>, errors: u64, measured: Duration) {
    let ops = total.len();
    let ops_per_sec = ops as f64 / measured.as_secs_f64();
    let workload = format!("{:?}", args.workload).to_lowercase();
    let mode = format!("{:?}", args.mode).to_lowercase();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "workload": workload,
                "mode": mode,
                "shared_client": args.shared,
                "clients": args.clients,
                "duration_secs": measured.as_secs_f64(),
                "ops": ops,
                "errors": errors,
                "ops_per_sec": ops_per_sec.round(),
                "latency_us_p50": total.value_at_quantile(0.50),
                "latency_us_p99": total.value_at_quantile(0.99),
                "latency_us_p999": total.value_at_quantile(0.999),
                "latency_us_max": total.max(),
                "value_size": matches!(args.workload, Workload::Put).then_some(args.value_size),
                "barrier_rounds_per_sec": matches!(args.workload, Workload::Barrier)
                    .then(|| (ops_per_sec / f64::from(args.clients.max(1))).round()),
            })
        );
    } else {
        println!(
            "workload={workload} mode={mode} shared={} clients={} ops={ops} errors={errors} ops/s={ops_per_sec:.0} p50={}us p99={}us p999={}us max={}us",
            args.shared,
            args.clients,
            total.value_at_quantile(0.50),
            total.value_at_quantile(0.99),
            total.value_at_quantile(0.999),
            total.max()
        );
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = client_options(&args);
    let measured = Duration::from_secs_f64(args.duration.max(0.1));
    let warmup_until = Instant::now() + Duration::from_secs_f64(args.warmup.max(0.0));
    let stop_at = warmup_until + measured;
    if let Workload::Barrier = args.workload
        && let Err(e) = reset_barrier(&args, &options)
    {
        eprintln!(
            "error: cannot set the barrier to {} parties: {e}",
            args.clients
        );
        return ExitCode::from(3);
    }
    let results = if let Mode::Blocking = args.mode {
        run_blocking(&args, options, warmup_until, stop_at)
    } else {
        run_async(&args, options, warmup_until, stop_at)
    };
    let (total, errors) = match merge(results) {
        Ok(merged) => merged,
        Err(code) => return code,
    };
    print_report(&args, &total, errors, measured);
    if total.is_empty() {
        eprintln!("error: no operation completed");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::KeyCursor;
    use std::collections::BTreeSet;

    #[test]
    fn callers_write_disjoint_blocks_that_cover_every_key() {
        let (keys, callers) = (1000, 64);
        let mut cursors: Vec<KeyCursor> = (0..callers)
            .map(|c| KeyCursor::new(c, callers, keys))
            .collect();
        let mut seen = BTreeSet::new();
        // 16 puts each (the block size, rounded up): every key once.
        for cursor in &mut cursors {
            for _ in 0..16 {
                seen.insert(cursor.next(keys));
            }
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn more_callers_than_keys_still_name_existing_keys() {
        let mut cursor = KeyCursor::new(2047, 2048, 1000);
        assert_eq!(cursor.next(1000), "key47");
        assert_eq!(cursor.next(1000), "key47");
    }
}
