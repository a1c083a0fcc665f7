//! Publishing the zone to Amazon Route53 (`-r`, cargo feature `route53`).
//!
//! The leader publishes; every other replica's publisher stays idle until it
//! leads. On every change of the record set (every view change) and when it
//! becomes leader, the publisher reads the hosted zone's record sets back,
//! and sends one change batch that UPSERTs every record set that differs
//! from the view's and DELETEs the stale ones it owns:
//!
//! * `DOMAIN` A, AAAA and TXT;
//! * `_concoord._tcp.DOMAIN` SRV (never SRV on the apex, the original's bug);
//! * `*.ipaddr.DOMAIN` A and AAAA (the SRV targets).
//!
//! What those sets hold is [`crate::route53_records`]. Nothing else in the
//! hosted zone is touched: the apex NS and SOA are Route53's own (its name
//! servers answer for the zone), and other names belong to the zone's owner.
//!
//! It runs in its own task and takes the view from a `watch` channel, so a
//! slow or failing Route53 never holds up consensus: a failed attempt is
//! retried with exponential backoff (1 s doubling to 30 s), always with the
//! newest view.
//!
//! Credentials: those stored by `concoord route53id/route53key` (see
//! [`crate::credentials`]), else the standard AWS chain (environment,
//! profile). Endpoint: `--route53-endpoint URL`, else `AWS_ENDPOINT_URL`,
//! else AWS's.

use crate::Route53Options;
use crate::credentials;
use crate::errors::NameserverError;
use crate::follower::Publication;
use crate::route53_records::{RecordSetValue, RecordSets, desired, is_ours};
use crate::zone_records::ZoneSpec;
use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_route53::Client;
use aws_sdk_route53::config::Credentials;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_http_client::tls;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// First pause after a failed publication.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Longest pause between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Record-set pages read from one hosted zone at most (100 sets a page).
const PAGES_MAX: usize = 100;

/// The publisher of one zone.
pub struct Publisher {
    spec: ZoneSpec,
    client: Client,
    zone_id: Option<String>,
}

impl Publisher {
    /// A publisher for `spec`, with the credentials and endpoint of `options`.
    pub async fn new(
        spec: ZoneSpec,
        options: &Route53Options,
    ) -> Result<Publisher, NameserverError> {
        let client = client(options.endpoint.as_deref()).await?;
        Ok(Publisher {
            spec,
            client,
            zone_id: None,
        })
    }

    /// Publishes every change it is handed while this replica leads; returns
    /// when the channel closes.
    pub async fn run(mut self, mut publications: watch::Receiver<Publication>) {
        let mut published: Option<RecordSets> = None;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let current = publications.borrow_and_update().clone();
            let wanted = desired(&self.spec, &current.view);
            if !current.leading || current.view.replicas.is_empty() {
                published = None;
            } else if published.as_ref() != Some(&wanted) {
                match self.sync(&wanted).await {
                    Ok(changes) => {
                        info!(
                            changes,
                            epoch = current.view.epoch,
                            "Route53 records match the view"
                        );
                        published = Some(wanted);
                        backoff = BACKOFF_FIRST;
                    }
                    Err(e) => {
                        warn!(
                            retry_in_ms = backoff.as_millis() as u64,
                            "Route53 publication failed: {e}"
                        );
                        tokio::select! {
                            changed = publications.changed() => if changed.is_err() { return },
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
            if publications.changed().await.is_err() {
                return;
            }
        }
    }

    /// Makes the hosted zone hold `wanted` (and none of our stale sets);
    /// returns how many changes it sent.
    pub async fn sync(&mut self, wanted: &RecordSets) -> Result<usize, NameserverError> {
        let zone_id = self.zone_id().await?;
        let existing = read_zone(&self.client, &zone_id).await?;
        let changes = plan(&self.spec, wanted, &existing)?;
        if changes.is_empty() {
            return Ok(0);
        }
        let n = changes.len();
        let batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .comment("concoord view change")
            .build()
            .map_err(sdk)?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(sdk)?;
        Ok(n)
    }

    /// The hosted zone's id, found by name once.
    async fn zone_id(&mut self) -> Result<String, NameserverError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let apex = self.spec.apex();
        let out = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(&apex)
            .send()
            .await
            .map_err(sdk)?;
        let id = out
            .hosted_zones()
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(&apex))
            .map(|z| z.id().to_string())
            .ok_or_else(|| {
                NameserverError::Route53(format!(
                    "no hosted zone named {apex}; create it first (Route53 console, or \
                     `aws route53 create-hosted-zone --name {} --caller-reference concoord`)",
                    self.spec.domain
                ))
            })?;
        self.zone_id = Some(id.clone());
        Ok(id)
    }
}

/// The changes that turn `existing` into `wanted` for the sets we own.
fn plan(
    spec: &ZoneSpec,
    wanted: &RecordSets,
    existing: &RecordSets,
) -> Result<Vec<Change>, NameserverError> {
    let mut changes = Vec::new();
    for (key, set) in wanted {
        if existing.get(key) != Some(set) {
            changes.push(change(ChangeAction::Upsert, key, set)?);
        }
    }
    for (key, set) in existing {
        if is_ours(spec, &key.0, &key.1) && !wanted.contains_key(key) {
            changes.push(change(ChangeAction::Delete, key, set)?);
        }
    }
    Ok(changes)
}

fn change(
    action: ChangeAction,
    (name, kind): &(String, String),
    set: &RecordSetValue,
) -> Result<Change, NameserverError> {
    let records = set
        .values
        .iter()
        .map(|v| ResourceRecord::builder().value(v).build().map_err(sdk))
        .collect::<Result<Vec<_>, _>>()?;
    let rrset = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::from(kind.as_str()))
        .ttl(set.ttl)
        .set_resource_records(Some(records))
        .build()
        .map_err(sdk)?;
    Change::builder()
        .action(action)
        .resource_record_set(rrset)
        .build()
        .map_err(sdk)
}

/// Every record set of the hosted zone (names lower case, absolute).
pub async fn read_zone(client: &Client, zone_id: &str) -> Result<RecordSets, NameserverError> {
    let mut sets = RecordSets::new();
    let mut next: Option<(String, RrType)> = None;
    for _ in 0..PAGES_MAX {
        let mut req = client.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, kind)) = next.take() {
            req = req.start_record_name(name).start_record_type(kind);
        }
        let out = req.send().await.map_err(sdk)?;
        for s in out.resource_record_sets() {
            let mut name = s.name().to_ascii_lowercase();
            if !name.ends_with('.') {
                name.push('.');
            }
            let mut values: Vec<String> = s
                .resource_records()
                .iter()
                .map(|r| r.value().to_string())
                .collect();
            values.sort();
            sets.insert(
                (name, s.r#type().as_str().to_string()),
                RecordSetValue {
                    ttl: s.ttl().unwrap_or(0),
                    values,
                },
            );
        }
        match (
            out.is_truncated(),
            out.next_record_name(),
            out.next_record_type(),
        ) {
            (true, Some(name), Some(kind)) => next = Some((name.to_string(), kind.clone())),
            _ => return Ok(sets),
        }
    }
    Err(NameserverError::Route53(format!(
        "hosted zone {zone_id} has more than {PAGES_MAX} pages of record sets"
    )))
}

/// A Route53 client: rustls with ring (no aws-lc), the stored credentials
/// or the standard chain, and `endpoint` if given.
pub async fn client(endpoint: Option<&str>) -> Result<Client, NameserverError> {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    // Route53 is a global service, signed for us-east-1.
    let region = RegionProviderChain::default_provider().or_else("us-east-1");
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region);
    let stored = credentials::load(&credentials::default_path()?)?;
    if let Some((id, key)) = stored.complete() {
        loader = loader.credentials_provider(Credentials::new(id, key, None, None, "concoord"));
    }
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    Ok(Client::new(&loader.load().await))
}

/// The SDK's error with its sources: its own `Display` says only "service
/// error" or "dispatch failure".
fn sdk(e: impl std::error::Error) -> NameserverError {
    NameserverError::Route53(aws_sdk_route53::error::DisplayErrorContext(&e).to_string())
}
