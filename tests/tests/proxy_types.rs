//! The original's four proxy types against one cluster: 64 concurrent callers
//! sharing one proxy get the same results whichever type they use. (How fast
//! each type is, is measured by `concoord-bench --shared --mode …`, not here.)

use concoord_client::proxies::{BlockingCounter, Counter};
use concoord_client::{CallMode, ClientOptions};
use concoord_integration_tests::{Cluster, runtime};
use std::time::Instant;

const CALLERS: usize = 64;
const CALLS_EACH: usize = 5;

#[test]
fn all_four_proxy_types_give_identical_results() {
    let mut cluster = Cluster::start("proxy_types", "127.0.7.1", 3);
    let boot = cluster.bootstrap_live();
    let rt = runtime();
    let mut expected = 0;
    for (name, mode) in [
        ("0 basic", CallMode::Serial),
        ("2 client-side batching", CallMode::batched()),
        ("3 server-side batching", CallMode::Pipelined),
    ] {
        let started = Instant::now();
        let (ok, value) = rt.block_on(async {
            let options = ClientOptions {
                mode,
                ..ClientOptions::default()
            };
            let proxy = Counter::connect_with(&boot, options)
                .await
                .expect("connect");
            let tasks: Vec<_> = (0..CALLERS)
                .map(|_| {
                    let p = proxy.clone();
                    tokio::spawn(async move {
                        let mut ok = 0;
                        for _ in 0..CALLS_EACH {
                            if p.increment().await.is_ok() {
                                ok += 1;
                            }
                        }
                        ok
                    })
                })
                .collect();
            let mut ok = 0;
            for t in tasks {
                ok += t.await.expect("caller");
            }
            (ok, proxy.getvalue().await.expect("read"))
        });
        expected += CALLERS * CALLS_EACH;
        println!("proxy type {name}: {ok} calls in {:?}", started.elapsed());
        assert_eq!(ok, CALLERS * CALLS_EACH, "{name}: every call succeeded");
        assert_eq!(value as usize, expected, "{name}: every call counted once");
    }

    let started = Instant::now();
    let proxy = BlockingCounter::connect(&boot).expect("connect");
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let p = proxy.clone();
            std::thread::spawn(move || (0..CALLS_EACH).filter(|_| p.increment().is_ok()).count())
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().expect("caller")).sum();
    expected += CALLERS * CALLS_EACH;
    println!(
        "proxy type 1 blocking: {ok} calls in {:?}",
        started.elapsed()
    );
    assert_eq!(ok, CALLERS * CALLS_EACH);
    assert_eq!(proxy.getvalue().expect("read") as usize, expected);
}
