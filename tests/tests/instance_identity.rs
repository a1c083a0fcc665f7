//! An instance knows itself: a founder restarted with its original command
//! (no `-b`, no state) does not found a second, empty instance on its old
//! address; a client, `concoord call` and `concoord status` refuse or flag a
//! bootstrap list that names replicas of two instances.

use concoord_client::proxies::Counter;
use concoord_client::{Client, ClientError};
use concoord_integration_tests::{
    COUNTER, Cluster, Replica, binary, output_within, runtime, wait_until,
};
use std::process::Command;
use std::time::Duration;

/// Increments the cluster's counter `n` times; the instance its founder
/// reports.
fn count_to(
    cluster: &mut Cluster,
    rt: &tokio::runtime::Runtime,
    n: usize,
) -> concoord_transport::InstanceId {
    let boot = cluster.bootstrap_live();
    rt.block_on(async {
        let counter = Counter::connect(&boot).await.expect("connect");
        for _ in 0..n {
            counter.increment().await.expect("increment");
        }
    });
    cluster
        .status(&cluster.replicas[0].addr)
        .and_then(|s| s.instance)
        .expect("the founder reports its instance")
}

/// Starts the founder's replica (port 14000) again with `-b` and `extra`;
/// it must rejoin `instance` and read `count` there.
fn rejoin_and_read(
    cluster: &mut Cluster,
    rt: &tokio::runtime::Runtime,
    test: &str,
    extra: &[&str],
    instance: concoord_transport::InstanceId,
    count: i64,
) {
    let founder_addr = cluster.replicas[0].addr.clone();
    let ip = founder_addr
        .rsplit_once(':')
        .map_or("", |(ip, _)| ip)
        .to_string();
    let others = cluster.bootstrap_live();
    cluster.replicas[0] = Replica::start(test, &ip, 14000, Some(&others), extra);
    wait_until(Duration::from_secs(30), "the founder to rejoin", || {
        cluster
            .status(&founder_addr)
            .is_some_and(|s| s.instance == Some(instance) && s.executed > 0)
    });
    let value = rt.block_on(async {
        let counter = Counter::connect(&founder_addr).await.expect("connect");
        counter.getvalue().await.expect("read")
    });
    assert_eq!(
        value, count,
        "the rejoined replica reads the instance's count"
    );
}

#[test]
fn a_founder_restarted_without_its_state_refuses_to_found_a_second_instance() {
    let test = "instance_restarted_founder";
    let mut cluster = Cluster::start(test, "127.0.70.1", 3);
    cluster.wait_for_members(3);
    let rt = runtime();
    let instance = count_to(&mut cluster, &rt, 7);

    // The founder dies and is started again with the command that founded
    // the instance: same address, same peer secret file, no -b.
    cluster.replicas[0].kill9();
    let mut again = Replica::start_as_user(COUNTER, test, "127.0.70.1", 14000, None, &[], &[]);
    let status = again
        .exit_within(Duration::from_secs(15))
        .expect("the restarted founder stops instead of founding");
    assert_eq!(status.code(), Some(2), "a flag-level refusal (exit code 2)");
    let log = std::fs::read_to_string(&again.log).unwrap_or_default();
    assert!(
        log.contains(&format!("member of running instance {instance}")) && log.contains("-b "),
        "the refusal names the instance and says to rejoin with -b:\n{log}"
    );

    // Rejoined with -b as the message says, it serves the instance's state.
    rejoin_and_read(&mut cluster, &rt, test, &[], instance, 7);
    for r in &cluster.replicas {
        let s = cluster.status(&r.addr).expect("status");
        assert_eq!(s.instance, Some(instance), "{} is of the instance", r.addr);
    }
}

#[test]
fn clients_and_tools_refuse_a_bootstrap_list_that_mixes_two_instances() {
    // Two instances founded apart (with the same peer secret file, the
    // dangerous case: the secret cannot tell them apart).
    let test = "instance_mixed_bootstrap";
    let a = Cluster::start(test, "127.0.70.2", 1);
    let b = Cluster::start(test, "127.0.70.3", 1);
    let (a_addr, b_addr) = (a.replicas[0].addr.clone(), b.replicas[0].addr.clone());
    let a_instance = a.status(&a_addr).and_then(|s| s.instance).expect("a's id");
    let b_instance = b.status(&b_addr).and_then(|s| s.instance).expect("b's id");
    assert_ne!(
        a_instance, b_instance,
        "every founding makes a new instance"
    );

    let rt = runtime();
    let mixed = format!("{a_addr}, {b_addr}");
    let refused = rt.block_on(Client::connect(&mixed));
    match refused {
        Err(ClientError::MixedInstances {
            first,
            first_instance,
            other,
            other_instance,
        }) => {
            assert_eq!(
                (first.as_str(), other.as_str()),
                (a_addr.as_str(), b_addr.as_str())
            );
            assert_eq!((first_instance, other_instance), (a_instance, b_instance));
        }
        other => panic!("expected MixedInstances, got {:?}", other.map(|_| ())),
    }
    // One instance at a time is fine.
    rt.block_on(async {
        let counter = Counter::connect(&a_addr).await.expect("connect to a");
        counter.increment().await.expect("increment a");
    });

    let call = output_within(
        Command::new(binary("concoord")).args(["call", "-b", &mixed, "getvalue"]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&call.stderr);
    assert!(!call.status.success(), "concoord call refuses");
    assert!(
        stderr.contains("mixes two instances")
            && stderr.contains(&a_instance.to_string())
            && stderr.contains(&b_instance.to_string()),
        "the error names both instances: {stderr}"
    );

    let status = output_within(
        Command::new(binary("concoord")).args(["status", "-b", &mixed]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(4), "status flags it: {stderr}");
    assert!(
        stderr.contains("2 different instances") && stderr.contains(&a_addr),
        "{stderr}"
    );
    let one = output_within(
        Command::new(binary("concoord")).args(["status", "-b", &a_addr]),
        Duration::from_secs(20),
    );
    assert!(one.status.success());
    assert!(String::from_utf8_lossy(&one.stdout).contains(&format!("instance {a_instance}")));
}

/// A durable founder that lost its data directory (its peer secret file is
/// elsewhere and survived) is refused like an in-memory one. The refusal
/// must leave no identity behind in the directory: otherwise its restart
/// with `-b`, as the message says, resumes as the lone founder of the
/// instance that was never founded — a second instance on the address.
#[test]
fn a_durable_founder_refused_at_start_then_rejoins_with_b_as_a_new_member() {
    let test = "instance_durable_founder_refused";
    let mut cluster = Cluster::start_with(COUNTER, test, "127.0.70.4", 3, &[], true);
    let rt = runtime();
    let instance = count_to(&mut cluster, &rt, 5);
    let dir = cluster.data_dir(14000).expect("durable");
    let dir_arg = dir.to_string_lossy().to_string();

    cluster.replicas[0].kill9();
    std::fs::remove_dir_all(&dir).expect("the disk is lost");
    let durable = ["-w", "--data-dir", dir_arg.as_str()];
    let mut again = Replica::start_as_user(COUNTER, test, "127.0.70.4", 14000, None, &durable, &[]);
    let status = again
        .exit_within(Duration::from_secs(15))
        .expect("the restarted founder stops instead of founding");
    assert_eq!(status.code(), Some(2), "refused: {:?}", again.log);
    assert!(
        !dir.join("identity").exists(),
        "a refused founder leaves no identity in its data directory"
    );

    rejoin_and_read(&mut cluster, &rt, test, &durable, instance, 5);
}
