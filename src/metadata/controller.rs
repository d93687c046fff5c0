//! The active controller's duties besides ordering changes (which the quorum does):
//! broker liveness. Brokers heartbeat to the quorum leader every
//! `broker.heartbeat.interval.ms`; the leader fences a broker that sent none for
//! `broker.session.timeout.ms` and takes away the leadership of its partitions, and gives
//! leaderless partitions a leader again once one of their in-sync replicas is back
//! (Kafka's `BrokerHeartbeatManager` and `ReplicationControlManager`). Leaders are
//! elected from the ISR (ADR 0010); ISR changes the leaders ask for arrive as
//! `AlterPartition` records and are validated where they are applied.
//!
//! Every node runs [`run`]; only the current leader acts. A new leader counts every broker
//! as seen when it takes over, so a leader change never fences healthy brokers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use strom_protocol::metadata_record::{Record, RESOURCE_BROKER, RESOURCE_TOPIC};

use super::image::{Image, PartitionImage};
use super::quorum::Quorum;

/// Heartbeats received by this node while it leads the quorum.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Broker id → (broker epoch, when its last heartbeat arrived).
    seen: Mutex<HashMap<i32, (i64, Instant)>>,
    /// When this node last became leader (heartbeats before that were sent elsewhere).
    since: Mutex<Option<(u64, Instant)>>,
}

impl Liveness {
    /// Records a heartbeat; refuses one from a broker the image does not know at that
    /// epoch (a stale process, or a node that is not a broker of this cluster).
    pub fn heartbeat(&self, image: &Image, broker: i32, epoch: i64) -> Result<(), String> {
        match image.brokers.get(&broker) {
            Some(b) if b.epoch == epoch => {
                self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(broker, (epoch, Instant::now()));
                Ok(())
            }
            Some(b) => Err(format!("broker {broker} is registered at epoch {}, not {epoch}", b.epoch)),
            None => Err(format!("broker {broker} is not registered")),
        }
    }

    /// Counts a registration this node has not seen before as a heartbeat: a broker that
    /// just registered (a restart: a new epoch) gets a whole session to send its first.
    fn observe(&self, image: &Image, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (&id, b) in &image.brokers {
            if seen.get(&id).is_none_or(|(e, _)| *e != b.epoch) {
                seen.insert(id, (b.epoch, now));
            }
        }
    }

    fn last_seen(&self, broker: i32, epoch: i64) -> Option<Instant> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&broker).filter(|(e, _)| *e == epoch).map(|(_, t)| *t)
    }
}

/// The change the controller makes to `image` at `now`: fence brokers silent for longer
/// than `session`, take their partitions' leadership away, and give leaderless
/// partitions whose first replica is live again a leader. Empty when nothing changes.
pub fn duties(image: &Image, live: &dyn Fn(i32, i64) -> bool) -> Vec<Record> {
    let mut out = Vec::new();
    let mut down = Vec::new();
    for (&id, b) in &image.brokers {
        let alive = live(id, b.epoch);
        if b.fenced && alive && !b.in_controlled_shutdown {
            // Heartbeats again at the same epoch (it was paused or cut off): back in.
            out.push(Record::BrokerRegistrationChange {
                broker_id: id,
                broker_epoch: b.epoch,
                fenced: Some(false),
                in_controlled_shutdown: false,
            });
        }
        if !b.fenced && !alive {
            out.push(Record::BrokerRegistrationChange {
                broker_id: id,
                broker_epoch: b.epoch,
                fenced: Some(true),
                in_controlled_shutdown: false,
            });
            down.push(id);
        }
    }
    let back: Vec<i32> = out
        .iter()
        .filter_map(|r| match r {
            Record::BrokerRegistrationChange { broker_id, fenced: Some(false), .. } => Some(*broker_id),
            _ => None,
        })
        .collect();
    let usable = |id: i32| {
        !down.contains(&id)
            && (back.contains(&id) || image.brokers.get(&id).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown))
    };
    for t in image.topics.values() {
        let unclean = unclean_allowed(image, &t.name);
        for (&index, p) in &t.partitions {
            if let Some(change) = elect(p, &usable, unclean) {
                out.push(Record::PartitionChange {
                    topic_id: t.id,
                    partition: index,
                    leader: change.0,
                    isr: change.1,
                    replicas: None,
                });
            }
        }
    }
    out
}

/// Whether `unclean.leader.election.enable` is set for `topic` (topic override, else the
/// broker-wide dynamic config, else Kafka's default: false).
fn unclean_allowed(image: &Image, topic: &str) -> bool {
    let key = "unclean.leader.election.enable";
    let topic_value = image.configs.get(&(RESOURCE_TOPIC, topic.to_string())).and_then(|c| c.get(key));
    let broker_value = image.configs.get(&(RESOURCE_BROKER, String::new())).and_then(|c| c.get(key));
    topic_value.or(broker_value).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The leader and ISR a partition should get when brokers come and go (ADR 0010), or
/// `None` if nothing changes. Unusable brokers leave the ISR (unless the last member:
/// it stays so it can come back as leader with everything committed); a leader that
/// is not usable is replaced by the first usable ISR member in replica order; with
/// none, the partition is leaderless, or, if `unclean`, led by any usable replica with
/// whatever it holds.
pub fn elect(
    p: &PartitionImage,
    usable: &dyn Fn(i32) -> bool,
    unclean: bool,
) -> Option<(Option<i32>, Option<Vec<i32>>)> {
    let live_isr: Vec<i32> = p.isr.iter().copied().filter(|&r| usable(r)).collect();
    let isr = if live_isr.is_empty() { p.isr.clone() } else { live_isr.clone() };
    let leader = if p.leader >= 0 && usable(p.leader) && p.isr.contains(&p.leader) {
        p.leader
    } else if let Some(&first) = p.replicas.iter().find(|r| live_isr.contains(r)) {
        first
    } else if unclean {
        match p.replicas.iter().copied().find(|&r| usable(r)) {
            Some(r) => {
                tracing::warn!(leader = r, isr = ?p.isr, "unclean leader election: records not on the new leader are lost");
                return Some((Some(r), Some(vec![r])));
            }
            None => -1,
        }
    } else {
        -1
    };
    let leader_change = (leader != p.leader).then_some(leader);
    let isr_change = (isr != p.isr).then_some(isr);
    if leader_change.is_none() && isr_change.is_none() {
        return None;
    }
    Some((leader_change, isr_change))
}

/// Kafka's preferred-leader election for one partition (ElectLeaders type 0 and
/// `auto.leader.rebalance.enable`): the first replica, if it is live, in the ISR and not
/// leading yet. `Err` is the answer ElectLeaders gives when there is nothing to do.
pub fn preferred_election(p: &PartitionImage, usable: &dyn Fn(i32) -> bool) -> Result<i32, crate::error::ErrorCode> {
    use crate::error::ErrorCode;
    let Some(&preferred) = p.replicas.first() else { return Err(ErrorCode::PreferredLeaderNotAvailable) };
    if p.leader == preferred {
        return Err(ErrorCode::ElectionNotNeeded);
    }
    if !usable(preferred) || !p.isr.contains(&preferred) {
        return Err(ErrorCode::PreferredLeaderNotAvailable);
    }
    Ok(preferred)
}

/// The partition changes that hand leadership back to preferred replicas wherever they
/// are live and in sync (`auto.leader.rebalance.enable`). Kafka waits until a broker's
/// imbalance passes `leader.imbalance.per.broker.percentage`; Strom rebalances every
/// imbalanced partition at each check.
pub fn rebalance_leaders(image: &Image, usable: &dyn Fn(i32) -> bool) -> Vec<Record> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            if p.leader >= 0 {
                if let Ok(l) = preferred_election(p, usable) {
                    out.push(Record::PartitionChange {
                        topic_id: t.id,
                        partition: index,
                        leader: Some(l),
                        isr: None,
                        replicas: None,
                    });
                }
            }
        }
    }
    out
}

/// The records of a controlled shutdown of `broker`: marked as shutting down and fenced,
/// its partitions left without a leader (clients get LEADER_NOT_AVAILABLE instead of
/// timing out against a broker that is gone).
pub fn controlled_shutdown(image: &Image, broker: i32) -> Vec<Record> {
    let Some(b) = image.brokers.get(&broker) else { return Vec::new() };
    let mut out = vec![Record::BrokerRegistrationChange {
        broker_id: broker,
        broker_epoch: b.epoch,
        fenced: Some(true),
        in_controlled_shutdown: true,
    }];
    // Leadership moves to another in-sync replica before the broker stops (Kafka's
    // controlled shutdown), so producers see a NOT_LEADER and move on instead of timing out.
    let usable =
        |id: i32| id != broker && image.brokers.get(&id).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown);
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            if p.leader != broker && !p.isr.contains(&broker) {
                continue;
            }
            if let Some((leader, isr)) = elect(p, &usable, false) {
                out.push(Record::PartitionChange { topic_id: t.id, partition: index, leader, isr, replicas: None });
            }
        }
    }
    out
}

/// The change that starts, replaces or (`target == None`) cancels the reassignment of one
/// partition (KIP-455, ADR 0011): the replica set becomes the target followed by the
/// original replicas it drops, which stay until every target replica is in sync
/// ([`complete_reassignments`] then finishes the move). Replicas a replaced reassignment
/// had added but the new one does not want leave at once, and the ISR with them. Empty
/// when nothing changes. `usable` says which brokers may lead.
pub fn reassign(
    image: &Image,
    topic_id: strom_protocol::Uuid,
    index: i32,
    p: &PartitionImage,
    target: Option<&[i32]>,
    usable: &dyn Fn(i32) -> bool,
) -> Result<Vec<Record>, (crate::error::ErrorCode, String)> {
    use crate::error::ErrorCode;
    let original = p.original_replicas();
    let target: Vec<i32> = match target {
        None if !p.reassigning() => {
            return Err((ErrorCode::NoReassignmentInProgress, "no reassignment to cancel".into()));
        }
        None => original.clone(),
        Some(t) => {
            let invalid = |m: String| Err((ErrorCode::InvalidReplicaAssignment, m));
            if t.is_empty() {
                return invalid("the replica list is empty".into());
            }
            for (i, r) in t.iter().enumerate() {
                if t[..i].contains(r) {
                    return invalid(format!("broker {r} is listed twice"));
                }
                if !image.brokers.contains_key(r) {
                    return invalid(format!("broker {r} is not registered"));
                }
            }
            t.to_vec()
        }
    };
    let dropped: Vec<i32> = original.iter().copied().filter(|r| !target.contains(r)).collect();
    let replicas: Vec<i32> = target.iter().copied().chain(dropped.iter().copied()).collect();
    let adding: Vec<i32> = target.iter().copied().filter(|r| !original.contains(r)).collect();
    let isr: Vec<i32> = p.isr.iter().copied().filter(|r| replicas.contains(r)).collect();
    // A leaderless partition stays so; its reassignment completes once it has a leader.
    let leader = if p.leader < 0 || isr.contains(&p.leader) {
        p.leader
    } else {
        match target.iter().copied().find(|r| isr.contains(r) && usable(*r)) {
            Some(l) => l,
            None => return Err((ErrorCode::InvalidReplicaAssignment, "no in-sync replica of it could lead".into())),
        }
    };
    if replicas == p.replicas && adding == p.adding && dropped == p.removing {
        return Ok(Vec::new());
    }
    Ok(vec![
        Record::PartitionReassignment {
            topic_id,
            partition: index,
            partition_epoch: p.partition_epoch,
            adding,
            removing: dropped,
        },
        Record::PartitionChange {
            topic_id,
            partition: index,
            leader: (leader != p.leader).then_some(leader),
            isr: (isr != p.isr).then_some(isr),
            replicas: (replicas != p.replicas).then_some(replicas),
        },
    ])
}

/// Finishes the reassignments whose target replicas are all in the ISR (Kafka completes
/// one when an ISR expansion brings the last of them in): the replica set becomes the
/// target, the removed replicas leave the ISR, and if the leader is one of them
/// leadership moves to the first live in-sync target replica.
pub fn complete_reassignments(image: &Image, usable: &dyn Fn(i32) -> bool) -> Vec<Record> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (&index, p) in &t.partitions {
            if !p.reassigning() {
                continue;
            }
            let target = p.target_replicas();
            if p.leader < 0 || !target.iter().all(|r| p.isr.contains(r)) {
                continue;
            }
            let leader = if target.contains(&p.leader) {
                p.leader
            } else {
                match target.iter().copied().find(|r| usable(*r)) {
                    Some(l) => l,
                    None => continue,
                }
            };
            let isr: Vec<i32> = p.isr.iter().copied().filter(|r| target.contains(r)).collect();
            out.push(Record::PartitionReassignment {
                topic_id: t.id,
                partition: index,
                partition_epoch: p.partition_epoch,
                adding: Vec::new(),
                removing: Vec::new(),
            });
            out.push(Record::PartitionChange {
                topic_id: t.id,
                partition: index,
                leader: (leader != p.leader).then_some(leader),
                isr: (isr != p.isr).then_some(isr),
                replicas: Some(target),
            });
        }
    }
    out
}

/// Runs the controller's duties on this node whenever it leads the quorum, every quarter
/// of the session timeout, until the quorum is dropped.
pub async fn run(quorum: Weak<Quorum>, session: Duration, rebalance_every: Option<Duration>) {
    let tick = (session / 4).max(Duration::from_millis(50));
    let mut last_rebalance = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let Some(q) = quorum.upgrade() else { return };
        let me = q.node_id();
        if q.leader() != Some(me) {
            *q.liveness().since.lock().unwrap_or_else(|p| p.into_inner()) = None;
            continue;
        }
        let term = q.view().term;
        let since = {
            let mut s = q.liveness().since.lock().unwrap_or_else(|p| p.into_inner());
            match *s {
                Some((t, at)) if t == term => at,
                _ => {
                    let now = Instant::now();
                    *s = Some((term, now));
                    now
                }
            }
        };
        let image = q.published().borrow().image.clone();
        let now = Instant::now();
        let liveness = q.liveness().clone();
        liveness.observe(&image, now);
        let live = |id: i32, epoch: i64| {
            let last = liveness.last_seen(id, epoch).map_or(since, |t| t.max(since));
            now.duration_since(last) < session
        };
        let mut change = duties(&image, &live);
        let usable = |id: i32| {
            image.brokers.get(&id).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown && live(id, b.epoch))
        };
        if change.is_empty() {
            // Alone in its change: a reassignment record is refused if another record of
            // the same change moved its partition's epoch first.
            change = complete_reassignments(&image, &usable);
            if !change.is_empty() {
                tracing::info!(partitions = change.len() / 2, "controller: completing reassignments");
            }
        }
        if change.is_empty() && rebalance_every.is_some_and(|every| now.duration_since(last_rebalance) >= every) {
            last_rebalance = now;
            change = rebalance_leaders(&image, &usable);
        }
        if change.is_empty() {
            continue;
        }
        let elections =
            change.iter().filter(|r| matches!(r, Record::PartitionChange { leader: Some(l), .. } if *l >= 0)).count();
        tracing::info!(records = change.len(), elections, "controller: fencing silent brokers / electing leaders");
        match q.write_as_leader(change).await {
            Ok(super::quorum::Applied::Ok) => {
                crate::metrics::LEADER_ELECTIONS.fetch_add(elections as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(super::quorum::Applied::Refused(why)) => tracing::warn!(%why, "controller change refused"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "controller change not committed"),
        }
    }
}

/// Sends this broker's heartbeats to the quorum leader until the quorum is dropped.
pub async fn heartbeats(quorum: Weak<Quorum>, broker: i32, epoch: Arc<std::sync::atomic::AtomicI64>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(q) = quorum.upgrade() else { return };
        let e = epoch.load(std::sync::atomic::Ordering::Relaxed);
        if e < 0 {
            continue;
        }
        if let Err(err) = q.send_heartbeat(broker, e, every).await {
            tracing::debug!(error = %format!("{err:#}"), "heartbeat not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::Uuid;

    fn image() -> Image {
        let mut img = Image::default();
        let id = Uuid([7; 16]);
        let mut records = vec![Record::Topic { name: "t".into(), id }];
        for b in 1..=3 {
            records.push(Record::RegisterBroker {
                broker_id: b,
                incarnation_id: Uuid([b as u8; 16]),
                broker_epoch: 10 + i64::from(b),
                endpoints: vec![],
                rack: None,
                fenced: false,
            });
        }
        for p in 0..3 {
            records.push(Record::Partition {
                topic_id: id,
                partition: p,
                replicas: vec![p + 1],
                isr: vec![p + 1],
                leader: p + 1,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        for r in &records {
            img.apply(r).expect("apply");
        }
        img
    }

    #[test]
    fn a_silent_broker_is_fenced_and_loses_leadership_then_gets_it_back() {
        let img = image();
        assert!(duties(&img, &|_, _| true).is_empty(), "all live: nothing to do");
        let change = duties(&img, &|id, _| id != 2);
        let mut next = img.clone();
        for r in &change {
            next.apply(r).expect("apply");
        }
        assert!(next.brokers[&2].fenced);
        let t = next.topic("t").expect("topic");
        assert_eq!(t.partitions[&1].leader, -1, "broker 2's partition has no leader");
        assert_eq!(t.partitions[&0].leader, 1);
        assert_eq!(t.partitions[&1].leader_epoch, 1, "a leader change bumps the epoch");
        // Fenced and still silent: nothing more to do.
        assert!(duties(&next, &|id, _| id != 2).is_empty());
        // Broker 2 restarts and registers again (unfenced, next epoch): it leads again.
        next.apply(&Record::RegisterBroker {
            broker_id: 2,
            incarnation_id: Uuid([9; 16]),
            broker_epoch: 13,
            endpoints: vec![],
            rack: None,
            fenced: false,
        })
        .expect("register");
        let back = duties(&next, &|_, _| true);
        for r in &back {
            next.apply(r).expect("apply");
        }
        let t = next.topic("t").expect("topic");
        assert_eq!((t.partitions[&1].leader, t.partitions[&1].leader_epoch), (2, 2));
    }

    #[test]
    fn a_fenced_broker_that_heartbeats_again_is_unfenced_and_leads_again() {
        let mut img = image();
        for r in duties(&img, &|id, _| id != 3) {
            img.apply(&r).expect("apply");
        }
        assert!(img.brokers[&3].fenced);
        let change = duties(&img, &|_, _| true);
        for r in &change {
            img.apply(r).expect("apply");
        }
        assert!(!img.brokers[&3].fenced, "{change:?}");
        assert_eq!(img.topic("t").expect("topic").partitions[&2].leader, 3);
        assert!(duties(&img, &|_, _| true).is_empty(), "settled");
    }

    #[test]
    fn a_new_registration_counts_as_seen() {
        let img = image();
        let l = Liveness::default();
        let t = Instant::now();
        l.observe(&img, t);
        assert_eq!(l.last_seen(2, 12), Some(t));
        // A heartbeat later is newer; observing the same epoch again keeps it.
        l.heartbeat(&img, 2, 12).expect("heartbeat");
        let hb = l.last_seen(2, 12).expect("seen");
        l.observe(&img, t);
        assert_eq!(l.last_seen(2, 12), Some(hb));
    }

    #[test]
    fn controlled_shutdown_fences_and_leaves_partitions_leaderless() {
        let img = image();
        let mut next = img.clone();
        for r in controlled_shutdown(&img, 3) {
            next.apply(&r).expect("apply");
        }
        assert!(next.brokers[&3].fenced && next.brokers[&3].in_controlled_shutdown);
        assert_eq!(next.topic("t").expect("topic").partitions[&2].leader, -1);
        assert!(controlled_shutdown(&img, 99).is_empty());
    }

    #[test]
    fn heartbeats_from_unknown_brokers_or_stale_epochs_are_refused() {
        let img = image();
        let l = Liveness::default();
        assert!(l.heartbeat(&img, 1, 11).is_ok());
        assert!(l.heartbeat(&img, 1, 10).is_err());
        assert!(l.heartbeat(&img, 42, 0).is_err());
        assert!(l.last_seen(1, 11).is_some());
        assert!(l.last_seen(1, 10).is_none());
    }

    fn apply_all(img: &mut Image, records: &[Record]) {
        *img = super::super::log::applied(img, records).expect("apply");
    }

    fn part(img: &Image, p: i32) -> PartitionImage {
        img.topic("t").expect("topic").partitions[&p].clone()
    }

    /// Sets the ISR as the partition's leader would (an AlterPartition at its epochs).
    fn set_isr(img: &mut Image, p: i32, isr: Vec<i32>) {
        let cur = part(img, p);
        let r = Record::AlterPartition {
            topic_id: Uuid([7; 16]),
            partition: p,
            leader_epoch: cur.leader_epoch,
            partition_epoch: cur.partition_epoch,
            isr,
        };
        apply_all(img, &[r]);
    }

    #[test]
    fn a_reassignment_adds_replicas_waits_for_them_in_sync_then_drops_the_old_ones_and_moves_the_leader() {
        let mut img = image();
        let all = |_: i32| true;
        let id = Uuid([7; 16]);
        // Partition 0 lives on broker 1; move it to [2, 3] (RF 1 -> 2, off its leader).
        let p = part(&img, 0);
        let change = reassign(&img, id, 0, &p, Some(&[2, 3]), &all).expect("valid");
        apply_all(&mut img, &change);
        let p = part(&img, 0);
        assert_eq!((p.replicas.clone(), p.adding.clone(), p.removing.clone()), (vec![2, 3, 1], vec![2, 3], vec![1]));
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1]), "the old leader serves until the move completes");
        let restored = super::super::log::applied(&Image::default(), &img.to_records()).expect("snapshot");
        assert_eq!(restored, img, "a snapshot keeps the reassignment");
        assert!(complete_reassignments(&img, &all).is_empty(), "new replicas not in sync yet");
        set_isr(&mut img, 0, vec![1, 2]);
        assert!(complete_reassignments(&img, &all).is_empty(), "broker 3 not in sync yet");
        set_isr(&mut img, 0, vec![1, 2, 3]);
        let done = complete_reassignments(&img, &all);
        apply_all(&mut img, &done);
        let p = part(&img, 0);
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![2, 3], vec![2, 3], 2));
        assert!(!p.reassigning());
        assert_eq!(p.leader_epoch, 1, "the leader moved: a new epoch");
        assert!(complete_reassignments(&img, &all).is_empty(), "settled");
    }

    #[test]
    fn a_reassignment_can_be_cancelled_or_replaced_and_bad_targets_are_refused() {
        let mut img = image();
        let all = |_: i32| true;
        let id = Uuid([7; 16]);
        let p = part(&img, 1);
        use crate::error::ErrorCode;
        assert_eq!(reassign(&img, id, 1, &p, None, &all).map_err(|e| e.0), Err(ErrorCode::NoReassignmentInProgress));
        for bad in [&[][..], &[1, 1][..], &[1, 9][..]] {
            assert_eq!(
                reassign(&img, id, 1, &p, Some(bad), &all).map_err(|e| e.0),
                Err(ErrorCode::InvalidReplicaAssignment),
                "{bad:?}"
            );
        }
        assert!(reassign(&img, id, 1, &p, Some(&[2]), &all).expect("same set").is_empty());
        let change = reassign(&img, id, 1, &p, Some(&[2, 3]), &all).expect("valid");
        apply_all(&mut img, &change);
        set_isr(&mut img, 1, vec![2, 3]);
        // Replaced before it completes: broker 3 (added, in sync) leaves at once.
        let p = part(&img, 1);
        let change = reassign(&img, id, 1, &p, Some(&[2, 1]), &all).expect("valid");
        apply_all(&mut img, &change);
        let p = part(&img, 1);
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.adding.clone()), (vec![2, 1], vec![2], vec![1]));
        // Cancelled: back to the original replicas.
        let change = reassign(&img, id, 1, &p, None, &all).expect("cancel");
        apply_all(&mut img, &change);
        let p = part(&img, 1);
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![2], vec![2], 2));
        assert!(!p.reassigning());
    }

    #[test]
    fn a_reassignment_composed_from_a_stale_image_is_refused_whole() {
        let mut img = image();
        let all = |_: i32| true;
        let id = Uuid([7; 16]);
        let stale = part(&img, 2);
        set_isr(&mut img, 2, vec![3]); // any change moves the partition epoch
        let change = reassign(&img, id, 2, &stale, Some(&[3, 1]), &all).expect("valid");
        assert!(super::super::log::applied(&img, &change).is_err());
    }
}
