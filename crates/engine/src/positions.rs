//! Positions leased in ranges: how a first-come coupon batch spread over buckets keeps its
//! coupons numbered exactly once.
//!
//! A coupon's position is its code (the n-th code of the batch) and its id, so the batch's
//! buckets ([`crate::leases`]) cannot each count from 0: a bucket leases positions, not only a
//! count. Its lease is a list of half-open ranges in the order leased, and its n-th issue takes
//! the n-th position the list names (`issue.lua` walks it). The pool (the batch's own
//! `scope_reservations` row) hands out the positions its buckets gave back first, then the next
//! positions never leased, which start at the pool's `reserved` plus the length of what was
//! given back. A take-back cuts a bucket's list after what it issued and gives the rest to the
//! pool, so every position is in at most one place: a bucket's list, the pool's free list, or
//! beyond the pool's next position.

/// Half-open ranges `[from, to)` of positions, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ranges(Vec<(i64, i64)>);

impl Ranges {
    /// From the flattened form Postgres keeps (`from, to, from, to …`); a trailing odd value
    /// and empty ranges are dropped.
    pub(crate) fn from_flat(flat: &[i64]) -> Self {
        let mut ranges = Ranges::default();
        for pair in flat.chunks_exact(2) {
            ranges.push(pair[0], pair[1]);
        }
        ranges
    }

    /// The flattened form.
    pub(crate) fn to_flat(&self) -> Vec<i64> {
        self.0.iter().flat_map(|&(from, to)| [from, to]).collect()
    }

    /// The form `issue.lua` reads: `from:to,from:to …`.
    pub(crate) fn to_arg(&self) -> String {
        self.0
            .iter()
            .map(|(from, to)| format!("{from}:{to}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many positions they name.
    pub(crate) fn len(&self) -> i64 {
        self.0.iter().map(|(from, to)| to - from).sum()
    }

    /// Appends `[from, to)`, joined to the last range when it continues it.
    pub(crate) fn push(&mut self, from: i64, to: i64) {
        if to <= from {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.1 == from => last.1 = to,
            _ => self.0.push((from, to)),
        }
    }

    /// Appends every range of `other`.
    pub(crate) fn extend(&mut self, other: Ranges) {
        for (from, to) in other.0 {
            self.push(from, to);
        }
    }

    /// Keeps the first `keep` positions named and returns the rest.
    pub(crate) fn split_off(&mut self, keep: i64) -> Ranges {
        let mut kept = Ranges::default();
        let mut rest = Ranges::default();
        let mut left = keep.max(0);
        for &(from, to) in &self.0 {
            let take = left.min(to - from);
            kept.push(from, from + take);
            rest.push(from + take, to);
            left -= take;
        }
        *self = kept;
        rest
    }

    /// The highest position named, if any.
    pub(crate) fn highest(&self) -> Option<i64> {
        self.0.iter().map(|(_, to)| to - 1).max()
    }

    /// Drops every position from `limit` on.
    pub(crate) fn keep_below(&mut self, limit: i64) {
        let kept = self
            .0
            .iter()
            .filter(|(from, _)| *from < limit)
            .map(|&(from, to)| (from, to.min(limit)))
            .collect();
        self.0 = kept;
    }

    /// The index in the list of `position`, if the list names it.
    pub(crate) fn index_of(&self, position: i64) -> Option<i64> {
        let mut before = 0;
        for &(from, to) in &self.0 {
            if (from..to).contains(&position) {
                return Some(before + position - from);
            }
            before += to - from;
        }
        None
    }
}

/// Takes `n` positions for a lease from a pool whose handed-back positions are `free` and
/// whose next position never leased is `next`: the handed-back ones first.
pub(crate) fn grant(free: &mut Ranges, next: i64, n: i64) -> Ranges {
    let rest = free.split_off(n);
    let mut granted = std::mem::replace(free, rest);
    let short = n - granted.len();
    granted.push(next, next + short.max(0));
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_split_and_index() {
        let mut r = Ranges::from_flat(&[0, 10, 10, 15, 40, 50]);
        assert_eq!(r.to_flat(), vec![0, 15, 40, 50]);
        assert_eq!(r.len(), 25);
        assert_eq!(r.to_arg(), "0:15,40:50");
        assert_eq!(r.index_of(14), Some(14));
        assert_eq!(r.index_of(41), Some(16));
        assert_eq!(r.index_of(20), None);
        let tail = r.split_off(18);
        assert_eq!(r.to_flat(), vec![0, 15, 40, 43]);
        assert_eq!(tail.to_flat(), vec![43, 50]);
        assert_eq!(r.clone().split_off(99).len(), 0);
        assert_eq!(r.highest(), Some(42));
        let mut below = r.clone();
        below.keep_below(41);
        assert_eq!(below.to_flat(), vec![0, 15, 40, 41]);
        below.keep_below(10);
        assert_eq!((below.to_flat(), below.highest()), (vec![0, 10], Some(9)));
        assert_eq!(Ranges::default().highest(), None);
    }

    #[test]
    fn a_grant_takes_handed_back_positions_first_and_never_one_twice() {
        let mut free = Ranges::from_flat(&[5, 8, 20, 22]);
        let first = grant(&mut free, 100, 4);
        assert_eq!(first.to_flat(), vec![5, 8, 20, 21]);
        let second = grant(&mut free, 100, 3);
        assert_eq!(second.to_flat(), vec![21, 22, 100, 102]);
        assert_eq!(free.len(), 0);
        let mut seen = std::collections::HashSet::new();
        for r in [&first, &second] {
            for pair in r.to_flat().chunks(2) {
                for p in pair[0]..pair[1] {
                    assert!(seen.insert(p), "position {p} granted twice");
                }
            }
        }
    }
}
