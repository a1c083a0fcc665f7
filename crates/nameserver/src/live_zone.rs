//! The zone the DNS server answers from, kept equal to the live view.
//!
//! hickory's in-memory zone handler does the answering (exact and
//! wildcard-free lookups, NXDOMAIN versus NODATA, the SOA in the authority
//! section, SRV and NS targets in the additional section). On every view
//! change [`LiveZone::publish`] computes the zone's records from the view
//! ([`zone_records`]) and, if they differ from what is served, swaps the
//! whole record map under the handler's write lock with a bumped serial: a
//! query sees the old zone or the new one, never a mix.

use crate::errors::NameserverError;
use crate::live_view::LiveView;
use crate::serial::{next_serial, today};
use crate::zone_records::{RecordData, ZoneRecord, ZoneSpec, zone_records};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, ZoneType};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What was published last.
#[derive(Default)]
struct Published {
    /// The records with serial 0 (to tell whether anything changed).
    content: Vec<ZoneRecord>,
    serial: Option<u32>,
    /// The records served, serial included.
    served: Vec<ZoneRecord>,
}

/// A zone answered from the live view.
pub struct LiveZone {
    spec: ZoneSpec,
    origin: Name,
    handler: Arc<InMemoryZoneHandler>,
    published: Mutex<Published>,
}

impl LiveZone {
    /// An empty zone for `spec` (it answers NXDOMAIN, without a SOA, until
    /// the first [`publish`](Self::publish)).
    pub fn new(spec: ZoneSpec) -> Result<LiveZone, NameserverError> {
        let origin = absolute(&spec.apex())?;
        let handler =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        Ok(LiveZone {
            spec,
            origin,
            handler: Arc::new(handler),
            published: Mutex::new(Published::default()),
        })
    }

    /// The zone's name and TTL.
    pub fn spec(&self) -> &ZoneSpec {
        &self.spec
    }

    /// The zone's apex as hickory names it.
    pub fn origin(&self) -> LowerName {
        LowerName::new(&self.origin)
    }

    /// The handler to register with a hickory `Catalog`.
    pub fn handler(&self) -> Arc<InMemoryZoneHandler> {
        self.handler.clone()
    }

    /// The serial served now (`None` before the first publication).
    pub fn serial(&self) -> Option<u32> {
        self.published.lock().ok().and_then(|p| p.serial)
    }

    /// The records served now, SOA last.
    pub fn records(&self) -> Vec<ZoneRecord> {
        self.published
            .lock()
            .map(|p| p.served.clone())
            .unwrap_or_default()
    }

    /// Serves the records of `view`. Returns the new serial if they changed,
    /// `None` if the zone already said exactly this.
    pub async fn publish(&self, view: &LiveView) -> Result<Option<u32>, NameserverError> {
        let content = zone_records(&self.spec, view, 0);
        let (serial, served) = {
            let Ok(mut p) = self.published.lock() else {
                return Err(NameserverError::Poisoned);
            };
            if p.serial.is_some() && p.content == content {
                return Ok(None);
            }
            let serial = next_serial(p.serial, today());
            let served = zone_records(&self.spec, view, serial);
            p.content = content;
            p.serial = Some(serial);
            p.served = served.clone();
            (serial, served)
        };
        let map = record_map(&served)?;
        *self.handler.records_mut().await = map;
        Ok(Some(serial))
    }
}

/// An absolute hickory name from an absolute presentation name.
fn absolute(name: &str) -> Result<Name, NameserverError> {
    Name::from_ascii(name).map_err(|e| NameserverError::BadName {
        name: name.to_string(),
        detail: e.to_string(),
    })
}

/// The records as hickory's handler keeps them: one record set per name and type.
fn record_map(records: &[ZoneRecord]) -> Result<BTreeMap<RrKey, Arc<RecordSet>>, NameserverError> {
    let mut sets: BTreeMap<RrKey, RecordSet> = BTreeMap::new();
    for r in records {
        let name = absolute(&r.name)?;
        let rdata = to_rdata(&r.data)?;
        let rtype = rdata.record_type();
        sets.entry(RrKey::new(LowerName::new(&name), rtype))
            .or_insert_with(|| RecordSet::with_ttl(name.clone(), rtype, r.ttl))
            .insert(Record::from_rdata(name, r.ttl, rdata), 0);
    }
    Ok(sets.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
}

fn to_rdata(data: &RecordData) -> Result<RData, NameserverError> {
    Ok(match data {
        RecordData::Address(IpAddr::V4(ip)) => RData::A(A(*ip)),
        RecordData::Address(IpAddr::V6(ip)) => RData::AAAA(AAAA(*ip)),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, absolute(target)?)),
        RecordData::Txt(t) => RData::TXT(TXT::new(vec![t.clone()])),
        RecordData::Ns(n) => RData::NS(NS(absolute(n)?)),
        RecordData::Soa {
            mname,
            rname,
            serial,
            minimum,
        } => RData::SOA(SOA::new(
            absolute(mname)?,
            absolute(rname)?,
            *serial,
            3600,
            600,
            86_400,
            *minimum,
        )),
    })
}
