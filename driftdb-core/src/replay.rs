//! Installing a transaction read back from the segments when the database opens.
//!
//! Those transactions were validated when they were committed and every frame was checked
//! (CRC) on the way in, so a data event is installed with one search of its key's chain: the
//! document after a PATCH is computed from the chain's newest document (decoded, patched,
//! encoded again), and only the rules that
//! tell a history that does not replay are checked again (an INSERT of a live key, a PATCH or
//! SOFT_DELETE of a missing one, a table that is not live). Anything else (a schema event)
//! takes the committing path, [`State::prepare`] then [`State::install`]. Both give the same
//! state; the model and crash tests compare reopened databases with the ones that wrote them.

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::event::{Event, body_of};
use crate::state::State;
use crate::storage::frame::EventType;

impl State {
    /// Install the transaction `events`, read from the segments, as `seq`.
    pub(crate) fn replay(&mut self, seq: u64, unix_ms: u64, events: Vec<Event>) -> Result<()> {
        let data_only = events.iter().all(|e| {
            e.key.is_some()
                && matches!(e.kind, EventType::Insert | EventType::Patch | EventType::SoftDelete)
        });
        if !data_only {
            let changes = self.prepare(&events)?;
            return self.install(seq, unix_ms, events, changes);
        }
        if seq != self.last_seq() + 1 {
            return Err(Error::invalid(format!(
                "seq {seq} does not follow the last seq {}",
                self.last_seq()
            )));
        }
        for event in events {
            let Some(table) = self.tables.get_mut(&*event.table) else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            let Some(incarnation) =
                table.schemas.last().filter(|s| s.schema.is_some()).map(|s| s.created_seq)
            else {
                return Err(Error::NoSuchTable { table: event.table.to_string() });
            };
            let Some(key) = event.key else { continue };
            let chain = table.rows.get_mut(&key);
            let live = chain.as_ref().is_some_and(|c| {
                c.last().is_some_and(|v| v.seq >= incarnation) && c.latest_bytes().is_some()
            });
            // The newest document (any incarnation, as the indexes saw it), decoded only when
            // an index or a PATCH needs it.
            let needs_old = !table.indexes.is_empty() || (event.kind == EventType::Patch && live);
            let old = match chain.as_ref() {
                Some(c) if needs_old => c.latest()?,
                _ => None,
            };
            let before: Vec<_> = table
                .indexes
                .iter()
                .map(|i| crate::index::indexed(old.as_ref(), &i.path))
                .collect();
            let patched = match (event.kind, live) {
                (EventType::Insert, false) => None,
                (EventType::Insert, true) => {
                    return Err(Error::DuplicateKey { table: event.table.to_string(), key });
                }
                (EventType::Patch, true) => {
                    let mut doc = old.unwrap_or_default();
                    doc.merge_patch(&event.body);
                    Some(doc)
                }
                (_, false) => {
                    return Err(Error::KeyNotFound { table: event.table.to_string(), key });
                }
                (_, true) => None,
            };
            let new = match event.kind {
                EventType::Insert => Some(&*event.body),
                _ => patched.as_ref(),
            };
            for (index, value) in table.indexes.iter_mut().zip(before) {
                index.on_change(&key, value, new, seq);
            }
            table.changed_seq = seq;
            let full = match &patched {
                Some(doc) => {
                    let mut out = Vec::new();
                    crate::msgpack::write_value(&mut out, doc)?;
                    Some(out)
                }
                None => None,
            };
            let body = body_of(&event.encoded)?;
            match chain {
                Some(chain) => chain.push_encoded(seq, event.kind, body, full.as_deref())?,
                None => {
                    let mut chain = Chain::default();
                    chain.push_encoded(seq, event.kind, body, full.as_deref())?;
                    table.rows.insert(key, chain);
                }
            }
        }
        self.commit_ms.push(unix_ms);
        Ok(())
    }
}
