use super::*;
use crate::test_support::Rng;

fn leader(isr: &[i32], min_isr: usize) -> LeaderState {
    LeaderState::new(1, 0, 0, vec![1, 2, 3], isr.to_vec(), 0, 10, min_isr, 0)
}

#[test]
fn the_high_watermark_is_the_smallest_log_end_in_the_isr() {
    let mut s = leader(&[1, 2, 3], 1);
    assert_eq!(s.hw(), 0, "followers have not fetched yet");
    assert!(!s.fetched(2, 10, 10, 5), "follower 3 is still unknown");
    assert!(s.fetched(3, 7, 10, 6));
    assert_eq!(s.hw(), 7);
    assert!(s.fetched(3, 10, 10, 7));
    assert_eq!(s.hw(), 10);
    assert!(!s.appended(12), "nobody else has 10..12 yet");
    assert!(!s.fetched(2, 12, 12, 8));
    assert_eq!(s.hw(), 10);
    assert!(s.fetched(3, 12, 12, 9));
    assert_eq!(s.hw(), 12);
}

#[test]
fn the_high_watermark_stalls_while_the_isr_is_below_min_insync_replicas() {
    let mut s = leader(&[1], 2);
    assert!(!s.appended(20));
    assert_eq!(s.hw(), 0);
    assert!(!s.enough_replicas());
    // The follower catches up; once it is in the ISR the HW moves.
    s.fetched(2, 20, 20, 1);
    assert_eq!(s.propose(1, 100), Some(vec![1, 2]));
    assert!(s.update(1, vec![1, 2, 3], vec![1, 2], 2, 20, 2));
    assert_eq!(s.hw(), 20);
    assert!(s.enough_replicas());
}

#[test]
fn a_replication_factor_below_min_insync_replicas_does_not_stall_reads() {
    let mut s = LeaderState::new(1, 0, 0, vec![1], vec![1], 0, 0, 2, 0);
    assert!(s.appended(5));
    assert_eq!(s.hw(), 5);
    assert!(!s.enough_replicas(), "acks=all still refused, as Kafka does");
}

#[test]
fn lagging_followers_are_proposed_out_and_caught_up_ones_in() {
    let mut s = leader(&[1, 2, 3], 1);
    s.fetched(2, 10, 10, 0);
    s.fetched(3, 10, 10, 0);
    s.appended(15);
    // 2 keeps fetching the end; 3 stops.
    s.fetched(2, 15, 15, 900);
    assert_eq!(s.propose(1000, 1000), None, "within the lag");
    s.fetched(2, 15, 15, 1500);
    assert_eq!(s.propose(1500, 1000), Some(vec![1, 2]));
    assert_eq!(s.propose(1500, 1000), None, "one change in flight at a time");
    // While the shrink is in flight the HW still waits for 3.
    s.appended(16);
    s.fetched(2, 16, 16, 1600);
    assert_eq!(s.hw(), 10);
    s.update(1, vec![1, 2, 3], vec![1, 2], 1, 16, 1600);
    assert_eq!(s.hw(), 16);
    // 3 comes back and catches up: proposed in.
    s.fetched(3, 12, 16, 1700);
    assert_eq!(s.propose(1700, 1000), None, "not at the HW yet");
    s.fetched(3, 16, 16, 1800);
    assert_eq!(s.propose(1800, 1000), Some(vec![1, 2, 3]));
    s.refused();
    assert_eq!(s.propose(1800, 1000), Some(vec![1, 2, 3]), "a refused change may be proposed again");
}

#[test]
fn a_follower_that_fetches_what_the_leader_had_at_its_previous_fetch_stays_caught_up() {
    let mut s = leader(&[1, 2], 1);
    s.fetched(2, 10, 10, 0);
    for t in 1..50 {
        // The leader always has more than the follower asks for, but the follower always
        // asks for what the leader had at its previous fetch.
        let leo = 10 + t * 5;
        s.appended(leo);
        s.fetched(2, leo - 5, leo, t * 100);
    }
    assert_eq!(s.propose(49 * 100, 1000), None);
}

#[test]
fn a_follower_joins_only_with_this_epochs_start() {
    // Leader took over at 10 with HW 4; a follower at 6 is past the HW but may still hold
    // an older leader's records at 4..6 that this leader does not have.
    let mut s = LeaderState::new(1, 3, 0, vec![1, 2], vec![1], 4, 10, 1, 0);
    s.fetched(2, 6, 10, 1);
    assert_eq!(s.propose(1, 1000), None);
    s.fetched(2, 10, 10, 2);
    assert_eq!(s.propose(2, 1000), Some(vec![1, 2]));
}

#[test]
fn truncation_walks_back_epoch_by_epoch() {
    // Follower epochs: 0 at 0, 2 at 5, 3 at 8; LEO 12. Leader has 0 at 0, 1 at 4, 4 at 9.
    let own = [(0, 0i64), (2, 5), (3, 8)];
    let own_end_of = |e: i32| {
        let i = own.iter().rposition(|(ep, _)| *ep <= e)?;
        Some((own[i].0, own.get(i + 1).map_or(12, |n| n.1)))
    };
    // Asked 3: the leader's largest <= 3 is 1, ending at 9. Ours for 1 is epoch 0, ending at 5.
    assert_eq!(truncation_step(3, Some((1, 9)), own_end_of, 12, 0), (5, false));
    // Now our latest is 0 (0..5); the leader's epoch 0 ends at 4.
    assert_eq!(truncation_step(0, Some((0, 4)), own_end_of, 5, 0), (4, true));
    assert_eq!(truncation_step(0, None, own_end_of, 5, 2), (2, true));
}

/// Leader epochs of the records of one replica's log, by offset.
type Log = Vec<i32>;

/// Largest epoch at or below `e` in `log` and where it ends (the leader's
/// OffsetForLeaderEpoch answer).
fn end_of(log: &Log, e: i32) -> Option<(i32, i64)> {
    let i = log.iter().rposition(|&x| x <= e)?;
    let epoch = log[i];
    Some((epoch, log.iter().position(|&x| x > epoch).unwrap_or(log.len()) as i64))
}

struct Model {
    logs: Vec<Log>,
    alive: Vec<bool>,
    leader: Option<usize>,
    state: Option<LeaderState>,
    epoch: i32,
    partition_epoch: i32,
    isr: Vec<i32>,
    /// The leader epoch each follower last truncated for.
    synced_for: Vec<i32>,
    /// What each follower was told the HW is.
    hw_of: Vec<i64>,
    /// The longest prefix ever exposed below a high watermark: never lost, never changed.
    committed: Log,
    now: i64,
}

const LAG: i64 = 1000;
const MIN_ISR: usize = 2;

impl Model {
    fn new() -> Model {
        let state = LeaderState::new(0, 0, 0, vec![0, 1, 2], vec![0, 1, 2], 0, 0, MIN_ISR, 0);
        Model {
            logs: vec![Vec::new(); 3],
            alive: vec![true; 3],
            leader: Some(0),
            state: Some(state),
            epoch: 0,
            partition_epoch: 0,
            isr: vec![0, 1, 2],
            synced_for: vec![0; 3],
            hw_of: vec![0; 3],
            committed: Vec::new(),
            now: 0,
        }
    }

    fn note_hw(&mut self) {
        let (Some(l), Some(s)) = (self.leader, &self.state) else { return };
        let hw = s.hw() as usize;
        let log = &self.logs[l];
        assert!(hw <= log.len());
        if hw > self.committed.len() {
            assert_eq!(&log[..self.committed.len()], &self.committed[..], "committed records changed");
            self.committed = log[..hw].to_vec();
        }
    }

    fn elect(&mut self) {
        self.epoch += 1;
        self.partition_epoch += 1;
        let next = self.isr.iter().map(|&r| r as usize).find(|&r| self.alive[r]);
        self.leader = next;
        self.state = next.map(|l| {
            let leo = self.logs[l].len() as i64;
            assert!(
                self.logs[l].starts_with(&self.committed),
                "the new leader {l} lacks committed records: {:?} vs {:?}",
                self.logs[l],
                self.committed
            );
            self.synced_for[l] = self.epoch;
            // The new leader's own records carry the new epoch from here on.
            LeaderState::new(
                l as i32,
                self.epoch,
                self.partition_epoch,
                vec![0, 1, 2],
                self.isr.clone(),
                self.hw_of[l],
                leo,
                MIN_ISR,
                self.now,
            )
        });
    }

    fn step(&mut self, rng: &mut Rng) {
        match rng.below(20) {
            0..=5 => {
                let (Some(l), Some(s)) = (self.leader, self.state.as_mut()) else { return };
                for _ in 0..=rng.below(3) {
                    self.logs[l].push(self.epoch);
                }
                s.appended(self.logs[l].len() as i64);
            }
            6..=12 => {
                let f = rng.below(3) as usize;
                let Some(l) = self.leader else { return };
                if f == l || !self.alive[f] {
                    return;
                }
                if self.synced_for[f] != self.epoch {
                    // KIP-279 against the leader, round by round.
                    while let Some(&asked) = self.logs[f].last() {
                        let answer = end_of(&self.logs[l], asked);
                        let own = self.logs[f].clone();
                        let (to, done) = truncation_step(asked, answer, |e| end_of(&own, e), own.len() as i64, 0);
                        self.logs[f].truncate(to as usize);
                        if done {
                            break;
                        }
                    }
                    assert!(self.logs[l].starts_with(&self.logs[f]), "truncation left a divergent tail");
                    self.synced_for[f] = self.epoch;
                }
                let Some(s) = self.state.as_mut() else { return };
                let at = self.logs[f].len();
                s.fetched(f as i32, at as i64, self.logs[l].len() as i64, self.now);
                let upto = (at + 1 + rng.below(8) as usize).min(self.logs[l].len());
                let more = self.logs[l][at..upto].to_vec();
                self.logs[f].extend(more);
                self.hw_of[f] = s.hw().min(self.logs[f].len() as i64);
            }
            13..=15 => {
                // Mostly short pauses, now and then one longer than the lag.
                self.now += if rng.below(8) == 0 { LAG * 2 } else { rng.below(LAG as u64 / 4) as i64 };
                let Some(s) = self.state.as_mut() else { return };
                if let Some(isr) = s.propose(self.now, LAG) {
                    if rng.below(4) == 0 {
                        s.refused();
                    } else {
                        self.partition_epoch += 1;
                        self.isr = isr.clone();
                        let leo = self.logs[self.leader.unwrap_or(0)].len() as i64;
                        s.update(self.partition_epoch, vec![0, 1, 2], isr, MIN_ISR, leo, self.now);
                    }
                }
            }
            16 => {
                // kill -9: the process dies; its files stay (the OS does not crash).
                let r = rng.below(3) as usize;
                if !self.alive[r] {
                    return;
                }
                self.alive[r] = false;
                if Some(r) == self.leader {
                    // The controller elects from the ISR without the dead leader; with
                    // nobody left it keeps the dead one so it can come back as leader.
                    let rest: Vec<i32> = self.isr.iter().copied().filter(|&x| x != r as i32).collect();
                    if rest.iter().any(|&x| self.alive[x as usize]) {
                        self.isr = rest;
                    }
                    self.elect();
                } else if self.isr.contains(&(r as i32)) {
                    // Fenced: out of the ISR.
                    self.isr.retain(|&x| x != r as i32);
                    self.partition_epoch += 1;
                    if let (Some(l), Some(s)) = (self.leader, self.state.as_mut()) {
                        let leo = self.logs[l].len() as i64;
                        s.update(self.partition_epoch, vec![0, 1, 2], self.isr.clone(), MIN_ISR, leo, self.now);
                    }
                }
            }
            _ => {
                let r = rng.below(3) as usize;
                if self.alive[r] {
                    return;
                }
                self.alive[r] = true;
                self.synced_for[r] = -1;
                if self.leader.is_none() {
                    self.elect();
                }
            }
        }
        self.note_hw();
        self.check();
    }

    fn check(&self) {
        let (Some(l), Some(s)) = (self.leader, &self.state) else { return };
        let hw = s.hw() as usize;
        for &m in &self.isr {
            let log = &self.logs[m as usize];
            assert!(log.len() >= hw, "ISR member {m} lacks records below the HW");
            assert_eq!(&log[..hw], &self.logs[l][..hw], "ISR member {m} differs below the HW");
        }
        for f in 0..3 {
            let h = self.hw_of[f].min(self.logs[f].len() as i64) as usize;
            if self.synced_for[f] == self.epoch {
                assert_eq!(&self.logs[f][..h.min(self.logs[l].len())], &self.logs[l][..h.min(self.logs[l].len())]);
            }
        }
    }
}

#[test]
fn random_interleavings_never_lose_or_change_committed_records() {
    let mut progressed = 0;
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut m = Model::new();
        for _ in 0..300 {
            m.step(&mut rng);
        }
        if m.committed.len() > 20 {
            progressed += 1;
        }
    }
    // The model must actually commit things, or the invariants are vacuous.
    assert!(progressed > 200, "only {progressed} runs committed more than 20 records");
}
