//! Scraping a replica's `--metrics-addr` from a test: one plain HTTP/1.1
//! GET over a socket (the replica's side is hyper), and reading a sample
//! from the OpenMetrics text page.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: its status code, its head (status line and headers) and its body.
pub struct Page {
    /// The status code (200, 404, ...).
    pub status: u16,
    /// Status line and headers, as received.
    pub head: String,
    /// The body.
    pub body: String,
}

/// `GET path` from `addr` with `Connection: close`; `None` if it cannot be had.
pub fn get(addr: &str, path: &str) -> Option<Page> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Page {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// The value of the sample `name` (with its labels, as printed, e.g.
/// `concoord_role{role="leader"}`) on `page`.
pub fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Scrapes `addr`'s `/metrics`, panicking with the reason if it fails.
pub fn metrics(addr: &str) -> String {
    let page =
        get(addr, "/metrics").unwrap_or_else(|| panic!("no answer from http://{addr}/metrics"));
    assert_eq!(page.status, 200, "{}", page.head);
    page.body
}
