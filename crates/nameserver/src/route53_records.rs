//! The record sets a Route53 hosted zone must hold for a view: every record
//! of [`zone_records`] except the apex NS and SOA (Route53's own), grouped
//! into record sets as Route53 keeps them, and which sets of a hosted zone
//! the publisher owns (and so may delete). Pure, and built without the
//! `route53` feature, so tests can compute what a hosted zone must hold.

use crate::live_view::LiveView;
use crate::zone_records::{RecordData, ZoneSpec, zone_records};
use std::collections::BTreeMap;

/// One record set as Route53 holds it: values in presentation form, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSetValue {
    /// Seconds.
    pub ttl: i64,
    /// The values.
    pub values: Vec<String>,
}

/// Record sets by (absolute lower-case name, type mnemonic).
pub type RecordSets = BTreeMap<(String, String), RecordSetValue>;

/// The record sets the view wants in Route53: every record but the apex NS
/// and SOA.
pub fn desired(spec: &ZoneSpec, view: &LiveView) -> RecordSets {
    let mut sets = RecordSets::new();
    for r in zone_records(spec, view, 0) {
        if matches!(r.data, RecordData::Ns(_) | RecordData::Soa { .. }) {
            continue;
        }
        let set = sets
            .entry((r.name.clone(), r.data.kind().to_string()))
            .or_insert_with(|| RecordSetValue {
                ttl: i64::from(r.ttl),
                values: Vec::new(),
            });
        set.values.push(r.data.presentation());
    }
    for set in sets.values_mut() {
        set.values.sort();
    }
    sets
}

/// Whether a record set of the hosted zone is one the publisher manages.
pub fn is_ours(spec: &ZoneSpec, name: &str, kind: &str) -> bool {
    let address = kind == "A" || kind == "AAAA";
    let ipaddr_suffix = format!(".{}.{}.", crate::zone_records::IPADDR_LABEL, spec.domain);
    (name == spec.apex() && (address || kind == "TXT"))
        || (name == spec.srv_name() && kind == "SRV")
        || (name.ends_with(&ipaddr_suffix) && address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone_records::spec;

    #[test]
    fn the_published_sets_leave_out_apex_ns_and_soa_and_put_srv_under_the_service() {
        let view = LiveView::of_addresses(1, &["127.0.0.1:14000", "127.0.0.1:14001"]);
        let sets = desired(&spec(), &view);
        let keys: Vec<(&str, &str)> = sets.keys().map(|(n, k)| (n.as_str(), k.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                ("127-0-0-1.ipaddr.counterdomain.com.", "A"),
                ("_concoord._tcp.counterdomain.com.", "SRV"),
                ("counterdomain.com.", "A"),
                ("counterdomain.com.", "TXT"),
            ]
        );
        for (key, _) in sets.keys() {
            assert!(is_ours(&spec(), key, "A") || is_ours(&spec(), key, "SRV"));
        }
    }

    #[test]
    fn only_our_names_are_ever_deleted() {
        let s = spec();
        assert!(is_ours(&s, "counterdomain.com.", "TXT"));
        assert!(is_ours(&s, "10-0-0-1.ipaddr.counterdomain.com.", "A"));
        assert!(!is_ours(&s, "counterdomain.com.", "NS"));
        assert!(!is_ours(&s, "counterdomain.com.", "SOA"));
        assert!(!is_ours(&s, "www.counterdomain.com.", "A"));
        assert!(!is_ours(&s, "counterdomain.com.", "MX"));
    }
}
