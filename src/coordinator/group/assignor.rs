//! Server-side assignors for KIP-848 groups: `uniform` (the default) and `range`.

use std::collections::{BTreeMap, BTreeSet};

use strom_protocol::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What an assignor sees of one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub id: String,
    /// Topics the member is subscribed to, resolved to ids.
    pub topics: BTreeSet<Uuid>,
    /// What the member owns now, to keep movement small.
    pub current: Assignment,
}

/// Names of the assignors, in preference order.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Runs the named assignor; `partitions` gives each topic's partition count.
pub fn assign(name: &str, members: &[MemberSpec], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    match name {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

/// Spreads every subscribed partition so member loads differ by at most one where
/// subscriptions allow, keeping partitions where they are when that is within quota.
fn uniform(members: &[MemberSpec], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.iter().map(|m| (m.id.clone(), Assignment::new())).collect();
    let mut load: BTreeMap<String, usize> = members.iter().map(|m| (m.id.clone(), 0)).collect();
    let all: Vec<(Uuid, i32)> = partitions
        .iter()
        .filter(|(t, _)| members.iter().any(|m| m.topics.contains(t)))
        .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
        .collect();
    let subscribers = |t: &Uuid| members.iter().filter(|m| m.topics.contains(t)).count().max(1);
    // Keeping up to the floor of the fair share, then filling the least-loaded, keeps loads
    // within one of each other for homogeneous subscriptions.
    let quota = |t: &Uuid| (all.len() / subscribers(t)).max(1);
    let mut unassigned = Vec::new();
    // Keep current owners up to their quota.
    for (t, p) in &all {
        let keeper = members.iter().find(|m| m.topics.contains(t) && m.current.get(t).is_some_and(|s| s.contains(p)));
        match keeper {
            Some(m) if load[&m.id] < quota(t) => {
                out.get_mut(&m.id).map(|a| a.entry(*t).or_default().insert(*p));
                *load.get_mut(&m.id).expect("member in load map") += 1;
            }
            _ => unassigned.push((*t, *p)),
        }
    }
    // The rest go to the least-loaded subscribed member (ties by member id).
    for (t, p) in unassigned {
        let target = members.iter().filter(|m| m.topics.contains(&t)).min_by_key(|m| (load[&m.id], m.id.clone()));
        if let Some(m) = target {
            out.get_mut(&m.id).map(|a| a.entry(t).or_default().insert(p));
            *load.get_mut(&m.id).expect("member in load map") += 1;
        }
    }
    out
}

/// Per topic, contiguous ranges of partitions to subscribed members in member-id order.
fn range(members: &[MemberSpec], partitions: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.iter().map(|m| (m.id.clone(), Assignment::new())).collect();
    for (t, n) in partitions {
        let mut subs: Vec<&MemberSpec> = members.iter().filter(|m| m.topics.contains(t)).collect();
        if subs.is_empty() {
            continue;
        }
        subs.sort_by(|a, b| a.id.cmp(&b.id));
        let n = *n as usize;
        let (per, extra) = (n / subs.len(), n % subs.len());
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let count = per + usize::from(i < extra);
            let set: BTreeSet<i32> = (next..next + count).map(|p| p as i32).collect();
            next += count;
            if !set.is_empty() {
                out.get_mut(&m.id).map(|a| a.insert(*t, set));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, topics: &[Uuid]) -> MemberSpec {
        MemberSpec { id: id.into(), topics: topics.iter().copied().collect(), current: Assignment::new() }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_spreads_six_partitions_over_three_members_two_each() {
        let t = Uuid([1; 16]);
        let members = vec![spec("a", &[t]), spec("b", &[t]), spec("c", &[t])];
        let out = uniform(&members, &BTreeMap::from([(t, 6)]));
        assert!(out.values().all(|a| count(a) == 2), "{out:?}");
        let all: BTreeSet<i32> = out.values().flat_map(|a| a[&t].iter().copied()).collect();
        assert_eq!(all, (0..6).collect());
    }

    #[test]
    fn uniform_keeps_partitions_in_place_when_a_member_joins() {
        let t = Uuid([1; 16]);
        let mut a = spec("a", &[t]);
        a.current = BTreeMap::from([(t, (0..6).collect())]);
        let out = uniform(&[a, spec("b", &[t])], &BTreeMap::from([(t, 6)]));
        assert_eq!(count(&out["a"]), 3);
        assert_eq!(count(&out["b"]), 3);
        assert!(out["a"][&t].iter().all(|p| *p < 6));
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let t = Uuid([2; 16]);
        let out = range(&[spec("b", &[t]), spec("a", &[t])], &BTreeMap::from([(t, 5)]));
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t], BTreeSet::from([3, 4]));
    }
}
