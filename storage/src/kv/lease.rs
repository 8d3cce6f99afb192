//! The maintenance lease of a store that several processes write at once (the NATS engine).
//!
//! Commits of many processes interleave safely: each expects the counters record it was
//! computed from. Maintenance does not: `gc` removes objects that no committed version needs,
//! and an object that a put in another process has written (or found, and reused) but not yet
//! committed is such an object; `prune` rewrites a document's version pages. So maintenance
//! takes the store's lease first, a record under `meta/maintenance`:
//! `epoch u64 BE ‖ expires_ms u64 BE ‖ holder (UTF-8)`. The epoch is odd while a lease is
//! held, even otherwise.
//!
//! - Taking it: compare-and-swap from an even epoch `e` to `e + 1`. From then on every batch
//!   of this process expects the lease record (the engine's fence), so once the lease is
//!   broken nothing more of the maintenance lands.
//! - Giving it back: compare-and-swap to `e + 2`.
//! - Commits read the epoch before writing their objects and expect it unchanged. A commit
//!   that finds it changed waits for the maintenance to end, checks that every object it
//!   names still reads back whole, and commits expecting the new epoch; when an object was
//!   removed, it reports so and writes nothing.
//! - A lease past its expiry (its holder died) is broken by the next writer that waits for
//!   it: compare-and-swap from the odd record to the next even epoch.
//! - Objects that a put is about to write are marked first, `meta/pending/<id>` → the time
//!   (ms, u64 BE), in a batch that expects the epoch; the put's commit removes the marks.
//!   `gc` spares marked objects (they are not referenced yet, but about to be) until a mark
//!   is [`PENDING_MS`] old: a put that died before its commit leaves it, and `gc` then drops
//!   the mark with the object.

use std::time::{Duration, Instant};

use super::*;

/// The `meta` key of the lease record.
pub(crate) const META_MAINTENANCE: &[u8] = b"maintenance";

/// How long a lease holds before another process may break it.
const LEASE_MS: u64 = 10 * 60 * 1000;

/// The prefix of the `meta` keys that mark objects of puts not committed yet.
const PENDING: &[u8] = b"pending/";

/// How long `gc` spares an object whose put has not committed.
pub(crate) const PENDING_MS: u64 = 60 * 60 * 1000;

fn pending_key(hash: &ContentHash) -> Vec<u8> {
    let mut k = PENDING.to_vec();
    k.extend_from_slice(hash.as_bytes());
    k
}

/// The lease record as a commit saw it (`None`: never taken): commits expect it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Epoch(pub(crate) Option<Vec<u8>>);

impl Epoch {
    /// The expectation that the lease record still holds this epoch.
    pub(crate) fn expectation(&self) -> crate::engine::Change {
        (Space::Meta, META_MAINTENANCE.to_vec(), self.0.clone())
    }
}

/// What this process holds: the record it wrote, and how many maintenance calls are inside
/// it (gc inside prune).
#[derive(Debug, Default)]
pub(crate) struct Held {
    record: Option<Vec<u8>>,
    depth: u32,
}

struct Record {
    epoch: u64,
    expires_ms: u64,
    holder: String,
}

impl Record {
    fn parse(bytes: &[u8]) -> StoreResult<Self> {
        let bad = || StoreError::corrupt("maintenance lease record", "is cut short");
        let epoch = bytes.get(..8).ok_or_else(bad)?;
        let expires = bytes.get(8..16).ok_or_else(bad)?;
        Ok(Self {
            epoch: u64::from_be_bytes(epoch.try_into().map_err(|_| bad())?),
            expires_ms: u64::from_be_bytes(expires.try_into().map_err(|_| bad())?),
            holder: String::from_utf8_lossy(&bytes[16..]).into_owned(),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = self.epoch.to_be_bytes().to_vec();
        v.extend_from_slice(&self.expires_ms.to_be_bytes());
        v.extend_from_slice(self.holder.as_bytes());
        v
    }
}

/// Who this process is, for the messages of processes that wait for it.
fn holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!("process {} on host '{host}'", std::process::id())
}

impl Kv {
    /// Whether other processes write these records at the same time.
    pub(crate) fn shared(&self) -> bool {
        self.engine.shared()
    }

    /// The epoch a commit expects: `None` on an engine one process holds, or while this
    /// process holds the lease (its fence stands for it). Waits while another process holds
    /// the lease, up to `wait`, and breaks a lease past its expiry.
    pub(crate) fn settled_epoch(&self, wait: Duration) -> StoreResult<Option<Epoch>> {
        if !self.shared() || lock(&self.held).depth > 0 {
            return Ok(None);
        }
        let start = Instant::now();
        loop {
            self.sync()?;
            let Some(bytes) = self.engine.get(Space::Meta, META_MAINTENANCE)? else {
                return Ok(Some(Epoch(None)));
            };
            let rec = Record::parse(&bytes)?;
            if rec.epoch % 2 == 0 {
                return Ok(Some(Epoch(Some(bytes.to_vec()))));
            }
            if crate::write::now_ms() > rec.expires_ms {
                let broken = Record {
                    epoch: rec.epoch + 1,
                    expires_ms: 0,
                    holder: format!("broken by {}", holder()),
                };
                // Broken here or by another process: look again either way.
                self.swap_lease(Some(&bytes), &broken.encode())?;
                continue;
            }
            if start.elapsed() >= wait {
                return Err(StoreError::Busy {
                    reason: format!(
                        "{} holds the store for maintenance (gc, prune or repack) until {} at \
                         the latest; nothing was written: retry when it is done (the CLI's \
                         --wait SECONDS waits longer)",
                        rec.holder,
                        strata_core::time::rfc3339(rec.expires_ms)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Takes the maintenance lease on a shared engine (waiting up to `wait` for another
    /// holder), or enters it again when this process holds it. Give it back with
    /// [`Kv::end_maintenance`]. Nothing on an engine one process holds.
    pub(crate) fn begin_maintenance(&self, wait: Duration) -> StoreResult<()> {
        if !self.shared() {
            return Ok(());
        }
        {
            let mut held = lock(&self.held);
            if held.depth > 0 {
                held.depth += 1;
                return Ok(());
            }
        }
        loop {
            let Some(Epoch(current)) = self.settled_epoch(wait)? else {
                return Ok(());
            };
            let epoch = match &current {
                None => 0,
                Some(b) => Record::parse(b)?.epoch,
            };
            let record = Record {
                epoch: epoch + 1,
                expires_ms: crate::write::now_ms() + LEASE_MS,
                holder: holder(),
            }
            .encode();
            if self.swap_lease(current.as_deref(), &record)? {
                self.engine.set_fence(Some((
                    Space::Meta,
                    META_MAINTENANCE.to_vec(),
                    Some(record.clone()),
                )));
                *lock(&self.held) = Held {
                    record: Some(record),
                    depth: 1,
                };
                return Ok(());
            }
        }
    }

    /// Replaces the lease record `from` (`None`: absent) with `to`; `false` when it no longer
    /// held `from` and nothing was written.
    fn swap_lease(&self, from: Option<&[u8]>, to: &[u8]) -> StoreResult<bool> {
        let mut b = Batch::default();
        b.put(Space::Meta, META_MAINTENANCE, to.to_vec());
        b.expect(Space::Meta, META_MAINTENANCE, from);
        self.write_guarded(b)
    }

    /// Gives back what [`Kv::begin_maintenance`] took.
    pub(crate) fn end_maintenance(&self) -> StoreResult<()> {
        let record = {
            let mut held = lock(&self.held);
            if held.depth == 0 {
                return Ok(());
            }
            held.depth -= 1;
            if held.depth > 0 {
                return Ok(());
            }
            held.record.take()
        };
        self.engine.set_fence(None);
        let Some(record) = record else {
            return Ok(());
        };
        let rec = Record::parse(&record)?;
        let done = Record {
            epoch: rec.epoch + 1,
            expires_ms: 0,
            holder: String::new(),
        };
        if self.swap_lease(Some(&record), &done.encode())? {
            return Ok(());
        }
        Err(StoreError::Busy {
            reason: "another process took over this process's maintenance lease (it ran past \
                     its time); what this maintenance wrote before is kept, the rest was not \
                     written: run it again"
                .into(),
        })
    }

    /// Marks `hashes` as objects of a put about to be written, if the lease record still
    /// holds `epoch`; `false` (nothing written) when a maintenance began since.
    pub(crate) fn mark_pending(&self, hashes: &[ContentHash], epoch: &Epoch) -> StoreResult<bool> {
        let now = crate::write::now_ms().to_be_bytes().to_vec();
        let mut b = Batch::default();
        for h in hashes {
            b.put(Space::Meta, pending_key(h), now.clone());
        }
        b.expect.push(epoch.expectation());
        self.write_guarded(b)
    }

    /// Adds the removal of the marks of `hashes` to a commit's batch (on a shared engine).
    pub(crate) fn unmark_pending(
        &self,
        batch: &mut Batch,
        hashes: impl Iterator<Item = ContentHash>,
    ) {
        if self.shared() {
            for h in hashes {
                batch.remove(Space::Meta, pending_key(&h));
            }
        }
    }

    /// The objects marked as a put's, with the time of each mark.
    pub(crate) fn pending_marks(&self) -> StoreResult<Vec<(ContentHash, u64)>> {
        let mut out = Vec::new();
        for kv in engine::with_prefix(&*self.engine, Space::Meta, PENDING) {
            let (k, v) = kv?;
            let bad = || StoreError::corrupt("pending object mark", "is malformed");
            let id: [u8; 32] = k[PENDING.len()..].try_into().map_err(|_| bad())?;
            let ms: [u8; 8] = (*v).try_into().map_err(|_| bad())?;
            out.push((ContentHash::from_bytes(id), u64::from_be_bytes(ms)));
        }
        Ok(out)
    }

    /// Removes the marks of `hashes` (expired ones, by `gc`).
    pub(crate) fn drop_pending_marks(&self, hashes: &[ContentHash]) -> StoreResult<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let mut b = Batch::default();
        self.unmark_pending(&mut b, hashes.iter().copied());
        self.write(b)
    }

    /// Whether the lease record still holds `epoch`.
    pub(crate) fn epoch_holds(&self, epoch: &Epoch) -> StoreResult<bool> {
        let now = self.engine.get(Space::Meta, META_MAINTENANCE)?;
        Ok(now.as_deref() == epoch.0.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_records_round_trip() {
        let r = Record {
            epoch: 7,
            expires_ms: 123,
            holder: "process 1 on host 'h'".into(),
        };
        let back = Record::parse(&r.encode()).unwrap();
        assert_eq!(
            (back.epoch, back.expires_ms, back.holder.as_str()),
            (7, 123, "process 1 on host 'h'")
        );
        assert!(Record::parse(&[1, 2, 3]).is_err());
    }
}
