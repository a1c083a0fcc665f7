//! `concoord status`: the state digest, which makes every replica serialize
//! its whole object on its loop, is computed only when asked for
//! (`--digest`); the replicas' digests agree at the same executed slot.

use concoord_integration_tests::{Cluster, binary, output_within, runtime, wait_until};
use std::process::Command;
use std::time::Duration;

fn status_json(boot: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = output_within(
        Command::new(binary("concoord"))
            .args(["status", "-b", boot, "--json"])
            .args(extra),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "status: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn the_state_digest_is_computed_only_when_asked_for_and_agrees_across_replicas() {
    let mut cluster = Cluster::start("status_digest", "127.0.71.1", 3);
    let rt = runtime();
    let boot = cluster.bootstrap_live();
    rt.block_on(async {
        let c = concoord_client::proxies::Counter::connect(&boot)
            .await
            .expect("connect");
        for _ in 0..10 {
            c.increment().await.expect("increment");
        }
    });
    cluster.settled_states();

    let plain = status_json(&boot, &[]);
    assert_eq!(plain.len(), 3);
    for r in &plain {
        assert!(r["state_digest"].is_null(), "no digest unless asked: {r}");
    }

    // The client's goodbye is executed after the reads above: ask again
    // until every replica is at the same slot.
    let mut states: Vec<(u64, String)> = Vec::new();
    wait_until(Duration::from_secs(10), "replicas at one slot", || {
        states = status_json(&boot, &["--digest"])
            .iter()
            .map(|r| {
                let digest = r["state_digest"].as_str().expect("a digest when asked");
                (
                    r["executed"].as_u64().expect("executed"),
                    digest.to_string(),
                )
            })
            .collect();
        states.len() == 3 && states.iter().all(|s| s.0 == states[0].0)
    });
    assert!(
        states.iter().all(|s| *s == states[0]),
        "replicas at the same slot agree: {states:?}"
    );

    let human = output_within(
        Command::new(binary("concoord")).args(["status", "-b", &boot, "--digest"]),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains(&format!("state digest {}", states[0].1)),
        "{text}"
    );
}
