//! The leader's side of replication as a pure state machine (ADR 0010): which followers
//! are in sync, where the high watermark is, and which ISR change to propose. It owns no
//! log and no clock; the partition feeds it events (its own appends, follower fetches,
//! committed metadata, the time) and acts on what it answers. Kept pure so the rules
//! can be tested directly and by the randomized model test below.

use std::collections::BTreeMap;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The follower's log end offset (its last fetch offset); -1 before its first fetch
    /// in this leader epoch.
    pub leo: i64,
    /// The leader's log end offset when that fetch arrived.
    leader_leo_at_fetch: i64,
    /// When that fetch arrived (ms).
    pub last_fetch_ms: i64,
    /// The last time the follower was known to hold everything the leader had (ms).
    pub last_caught_up_ms: i64,
}

/// The leader's replication state for one partition in one leader epoch.
#[derive(Debug, Clone)]
pub struct LeaderState {
    me: i32,
    /// The epoch this state belongs to; a new epoch starts a new state.
    pub leader_epoch: i32,
    /// The partition epoch of the committed placement this state last took.
    pub partition_epoch: i32,
    /// Replica ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// The committed ISR.
    pub isr: Vec<i32>,
    /// An ISR change proposed to the controller and not yet committed or refused.
    pending: Option<Vec<i32>>,
    followers: BTreeMap<i32, Progress>,
    hw: i64,
    /// The leader's log end offset when it took this epoch: a follower joins the ISR only
    /// once it holds at least this much (it then has nothing of an older leader's tail).
    epoch_start: i64,
    /// `min.insync.replicas`.
    min_isr: usize,
}

impl LeaderState {
    /// The state of a broker that just became leader at `leader_epoch`, holding `leo`
    /// records and knowing `hw` as committed. ISR members get a whole lag period to send
    /// their first fetch.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        hw: i64,
        leo: i64,
        min_isr: usize,
        now_ms: i64,
    ) -> LeaderState {
        let followers = replicas
            .iter()
            .filter(|&&r| r != me)
            .map(|&r| (r, Progress { leo: -1, leader_leo_at_fetch: -1, last_fetch_ms: -1, last_caught_up_ms: now_ms }))
            .collect();
        let mut s = LeaderState {
            me,
            leader_epoch,
            partition_epoch,
            replicas,
            isr,
            pending: None,
            followers,
            hw: hw.min(leo),
            epoch_start: leo,
            min_isr,
        };
        s.advance(leo);
        s
    }

    /// Takes a newer committed placement at the same leader epoch (an ISR change, a
    /// reassignment, a new `min.insync.replicas`). Returns whether the high watermark moved.
    pub fn update(
        &mut self,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        min_isr: usize,
        leo: i64,
        now_ms: i64,
    ) -> bool {
        if partition_epoch != self.partition_epoch {
            // Whatever was in flight was either this commit or lost to it.
            self.pending = None;
        }
        self.partition_epoch = partition_epoch;
        for &r in &replicas {
            if r != self.me {
                self.followers.entry(r).or_insert(Progress {
                    leo: -1,
                    leader_leo_at_fetch: -1,
                    last_fetch_ms: -1,
                    last_caught_up_ms: now_ms,
                });
            }
        }
        self.followers.retain(|r, _| replicas.contains(r));
        self.replicas = replicas;
        self.isr = isr;
        self.min_isr = min_isr;
        self.advance(leo)
    }

    /// The high watermark.
    pub fn hw(&self) -> i64 {
        self.hw
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// The ISR change in flight, if any.
    pub fn pending(&self) -> Option<&[i32]> {
        self.pending.as_deref()
    }

    /// Each follower's progress.
    pub fn followers(&self) -> impl Iterator<Item = (i32, &Progress)> {
        self.followers.iter().map(|(&id, p)| (id, p))
    }

    /// `min.insync.replicas`.
    pub fn min_isr(&self) -> usize {
        self.min_isr
    }

    /// Whether `acks=all` may append: the committed ISR has `min.insync.replicas` members.
    pub fn enough_replicas(&self) -> bool {
        self.isr.len() >= self.min_isr
    }

    /// Whether `id` is a replica other than the leader.
    pub fn is_follower(&self, id: i32) -> bool {
        self.followers.contains_key(&id)
    }

    /// The leader appended; its log now ends at `leo`. Returns whether the HW moved.
    pub fn appended(&mut self, leo: i64) -> bool {
        self.advance(leo)
    }

    /// A follower fetched at `fetch_offset` (so it holds everything below) while the
    /// leader's log ends at `leo`. Returns whether the high watermark moved.
    pub fn fetched(&mut self, id: i32, fetch_offset: i64, leo: i64, now_ms: i64) -> bool {
        let Some(f) = self.followers.get_mut(&id) else { return false };
        // Kafka's rule: caught up now if it asks for the leader's end; caught up as of its
        // previous fetch if it asks for what the leader had then.
        if fetch_offset >= leo {
            f.last_caught_up_ms = now_ms;
        } else if fetch_offset >= f.leader_leo_at_fetch && f.last_fetch_ms >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.leader_leo_at_fetch = leo;
        f.last_fetch_ms = now_ms;
        f.leo = fetch_offset.min(leo);
        self.advance(leo)
    }

    /// Moves the HW to the smallest log end among the ISR members (committed ISR and
    /// any member a pending change adds), unless the committed ISR is smaller than
    /// `min(min.insync.replicas, replication factor)` (KIP-966). Never backwards.
    fn advance(&mut self, leo: i64) -> bool {
        let floor = self.min_isr.min(self.replicas.len()).max(1);
        if self.isr.len() < floor || !self.isr.contains(&self.me) {
            return false;
        }
        let members = self.isr.iter().chain(self.pending.iter().flatten());
        let mut low = leo;
        for &m in members {
            if m == self.me {
                continue;
            }
            low = low.min(self.followers.get(&m).map_or(-1, |f| f.leo));
        }
        if low > self.hw {
            self.hw = low;
            true
        } else {
            false
        }
    }

    /// The ISR change to propose now, if any (and none is in flight): followers not
    /// caught up for `lag_ms` leave; followers holding the HW and this epoch's start
    /// join. The proposal is remembered as in flight until [`Self::update`] brings a newer
    /// partition epoch or [`Self::refused`] is called.
    pub fn propose(&mut self, now_ms: i64, lag_ms: i64) -> Option<Vec<i32>> {
        if self.pending.is_some() {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.retain(|r| *r == self.me || self.followers.get(r).is_some_and(|f| now_ms - f.last_caught_up_ms <= lag_ms));
        // Shrinks and expansions are separate proposals: a follower just found lagging
        // still holds the HW the lagging held back, and must not be let straight back in.
        if isr.len() == self.isr.len() {
            for (&id, f) in &self.followers {
                // Kafka's rule: holding the HW and this epoch's start is enough to join.
                if !isr.contains(&id) && f.leo >= self.hw && f.leo >= self.epoch_start {
                    isr.push(id);
                }
            }
        }
        if !isr.contains(&self.me) {
            isr.insert(0, self.me);
        }
        // Replica order, so equal sets compare equal and elections prefer the preferred.
        isr.sort_by_key(|r| self.replicas.iter().position(|x| x == r).unwrap_or(usize::MAX));
        if isr == self.isr {
            return None;
        }
        self.pending = Some(isr.clone());
        Some(isr)
    }

    /// The proposal in flight was refused or lost: the next [`Self::propose`] may try again.
    pub fn refused(&mut self) {
        self.pending = None;
    }
}

/// One round of KIP-279 truncation on a follower. It asked the leader about `asked`, its
/// latest epoch; the leader answered `(epoch, end)`: its largest epoch at or below
/// `asked` and where that epoch ends on the leader (`None`: UNDEFINED, the leader has
/// nothing that old). `own_end_of(e)` is the follower's largest epoch at or below `e`
/// and its end. Returns the offset to truncate to and whether the logs now agree; if
/// not, the follower asks again with its (now smaller) latest epoch. Each round lowers
/// that epoch, so the exchange ends.
pub fn truncation_step(
    asked: i32,
    answer: Option<(i32, i64)>,
    own_end_of: impl Fn(i32) -> Option<(i32, i64)>,
    own_leo: i64,
    own_start: i64,
) -> (i64, bool) {
    match answer {
        // Nothing in common that the leader can vouch for: keep nothing.
        None => (own_start, true),
        Some((epoch, end)) => {
            let own = own_end_of(epoch).map_or(own_start, |(_, o)| o);
            let to = end.min(own).min(own_leo).max(own_start);
            (to, epoch == asked)
        }
    }
}

#[cfg(test)]
mod tests;
