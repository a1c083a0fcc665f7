//! Network namespaces for partition tests: one namespace per node, each with
//! a veth link on a bridge in the root namespace (where the test and its
//! clients run). Cutting a node's link is a real partition: its packets are
//! dropped, connections hang rather than reset, and timers must notice.
//!
//! Traffic stays inside the 10.77.N.0/24 subnet of namespaces this harness
//! creates. Needs root (`ip netns`); everything is removed on drop.

use std::process::{Command, Stdio};

/// A bridge and its namespaces.
pub struct Net {
    prefix: String,
    subnet: u8,
    nodes: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// Creates `nodes` namespaces `PREFIX1..` on bridge `PREFIXbr` with
    /// addresses 10.77.SUBNET.1.. (the root namespace is .254).
    pub fn create(prefix: &str, subnet: u8, nodes: usize) -> Result<Net, String> {
        let net = Net {
            prefix: prefix.to_string(),
            subnet,
            nodes,
        };
        net.teardown();
        let br = net.bridge();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["addr", "add", &format!("10.77.{subnet}.254/24"), "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 1..=nodes {
            let ns = net.namespace(i);
            let host_end = format!("{ns}v");
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &host_end, "master", &br, "up"])?;
            let addr = format!("{}/24", net.addr(i));
            ip(&[
                "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", "eth0",
            ])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "eth0", "up"])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }

    /// Node `i`'s namespace (1-based).
    pub fn namespace(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// Node `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.77.{}.{i}", self.subnet)
    }

    /// A command run inside node `i`'s namespace.
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespace(i)]).arg(program);
        c
    }

    /// Cuts node `i` off: every packet to or from it is lost.
    pub fn isolate(&self, i: usize) {
        let ns = self.namespace(i);
        ip(&["netns", "exec", &ns, "ip", "link", "set", "eth0", "down"]).expect("cut the link");
    }

    /// Reconnects node `i`.
    pub fn heal(&self, i: usize) {
        let ns = self.namespace(i);
        ip(&["netns", "exec", &ns, "ip", "link", "set", "eth0", "up"]).expect("restore the link");
    }

    fn teardown(&self) {
        for i in 1..=self.nodes {
            // Deleting the host end removes the pair at once; a namespace's
            // own cleanup is deferred by the kernel, and a quick re-run
            // would find the old pair still there.
            let _ = ip(&["link", "del", &format!("{}v", self.namespace(i))]);
            let _ = ip(&["netns", "del", &self.namespace(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}
