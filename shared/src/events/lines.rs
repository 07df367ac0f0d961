//! An event's waitlist split over lines, so a hot drop's arrivals are not all written to one
//! item.
//!
//! Every arrival after the stock is taken joins the waitlist. With one line, each of them
//! adds 1 to the event item's `tail`, so the event takes only as many arrivals a second as one
//! DynamoDB item takes writes (~1,000), and the holds and promotions compete with them. With
//! `waitlist_lines` = N > 1 the waitlist is N items of their own (`EVENT#<event>#LINES`, each
//! with its `tail`, `head` and `waiting`) and an arrival joins one picked at random: the
//! event item is not written by an arrival that waits, and the event takes about N times
//! 1,000 arrivals a second.
//!
//! - **Positions.** The `k`-th arrival of line `s` gets position `k × N + s`: unique, about
//!   the count of arrivals before it (the lines fill at about the same pace), with gaps.
//! - **Order.** Each line is served in order, and a freed place goes to the earliest arrival
//!   (its entry's `arrived_at`, in milliseconds; positions break ties) at the front of any
//!   line: the waitlist is served in arrival order across lines, whatever their lengths.
//!   (Choosing the shorter of two lines by reading them was tried: under a burst every
//!   arrival reads the same lengths and they all join the same line.)
//! - **Nobody waits while a place is free.** A line item carries `full`, never set while a
//!   place is free: the hold (or late payment) that takes the last place sets every line's
//!   flag in its own transaction — it is conditioned on `taken` being exactly one short of the
//!   stock, and any other hold on `taken` being at least two short —; a
//!   place given back to stock clears every flag in its transaction, under the condition that
//!   no line moved since it was read (so a place goes back to stock only when nobody waits in
//!   any line). Joining a line is conditioned on its `full`, so an arrival and a freed place
//!   serialize on the line item, as they do on the event item with one line. When a flag
//!   lags (a deploy changed the stock), the arrival that meets it repairs every flag in one
//!   transaction that checks `taken` against the stock on the event item.
//! - **Closing.** Closing the waitlist marks the event and every line `waitlist_closed` in
//!   one write, then closes the lines' entries. A position taken on a line just before it
//!   closed is met by the sweep (voided if its entry has not landed, which makes the landing
//!   fail and its shopper read the event again).
//!
//! Line items appear when first written (the last place's hold); a line never written reads
//! as empty (`head` 1, `tail` 0) and not `full`. Holds still write the event item
//! (`taken < stock`, two write units in a transaction): ~500 a second, the stock's pace only —
//! a drop of 100 places is taken in a fifth of a second and everyone after it joins a line.

use crate::domain::ids::EventId;
use crate::events::items::{self as ev, EventState, FULL, HEAD, TAIL, TAKEN, WAITING};
use crate::ports::store::{Cond, Item, ItemExt, Key, Store, StoreError, TxOp, Update};

/// One line of the waitlist as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub index: i64,
    /// The next `k` to promote (`k`s below it have left the line).
    pub head: i64,
    /// The last `k` handed out.
    pub tail: i64,
    pub waiting: i64,
    pub full: bool,
    /// The item holding its counters: the event item when the waitlist is one line.
    pub key: Key,
    /// Whether `head` / `tail` are stored (a line never written has neither).
    stored_head: bool,
    stored_tail: bool,
}

impl Line {
    /// The one line of a waitlist that is not split: the event item's counters.
    pub fn of_event(e: &EventState) -> Line {
        Line {
            index: 0,
            head: e.head,
            tail: e.tail,
            waiting: e.waiting,
            full: e.taken >= e.stock(),
            key: ev::event_key(e.id()),
            stored_head: true,
            stored_tail: true,
        }
    }

    fn of_item(event: &EventId, index: i64, item: Option<&Item>) -> Line {
        let n = |a: &str| item.and_then(|i| i.i64_attr(a));
        Line {
            index,
            head: n(HEAD).unwrap_or(1),
            tail: n(TAIL).unwrap_or(0),
            waiting: n(WAITING).unwrap_or(0),
            full: n(FULL) == Some(1),
            key: ev::line_key(event, index),
            stored_head: n(HEAD).is_some(),
            stored_tail: n(TAIL).is_some(),
        }
    }

    /// Whether its counters are on the event item (a waitlist of one line).
    pub fn on_event(&self) -> bool {
        self.key.sk == "EVENT"
    }

    pub fn is_empty(&self) -> bool {
        self.head > self.tail
    }

    /// The condition that the line is as read: nobody joined or left its front since.
    pub fn as_read(&self) -> Cond {
        let attr = |name: &str, stored: bool, v: i64| match stored {
            true => Cond::eq(name, v),
            false => Cond::AttrNotExists(name.into()),
        };
        Cond::And(vec![attr(HEAD, self.stored_head, self.head), attr(TAIL, self.stored_tail, self.tail)])
    }

    /// The line's front moves past `head` (`waiting_delta`: −1 when a waiting entry leaves
    /// with it), conditioned on nobody having moved it first. On the event item (one line),
    /// callers that also write the event add their updates to it.
    pub fn advance(&self, waiting_delta: i64) -> (Key, Vec<Update>, Cond) {
        let mut updates = vec![Update::set(HEAD, self.head + 1)];
        if waiting_delta != 0 {
            updates.push(Update::Add(WAITING.into(), waiting_delta));
        }
        let cond = match self.stored_head {
            true => Cond::eq(HEAD, self.head),
            false => Cond::AttrNotExists(HEAD.into()),
        };
        (self.key.clone(), updates, cond)
    }
}

/// Every line of an event as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lines {
    pub count: i64,
    pub lines: Vec<Line>,
}

impl Lines {
    /// The event item's one line, or every line item.
    pub async fn read<S: Store + ?Sized>(store: &S, e: &EventState) -> Result<Lines, StoreError> {
        if e.lines <= 1 {
            return Ok(Lines { count: 1, lines: vec![Line::of_event(e)] });
        }
        let mut lines = Vec::new();
        for s in 0..e.lines {
            lines.push(read_line(store, e.id(), s).await?);
        }
        Ok(Lines { count: e.lines, lines })
    }

    /// The line whose front holds the smallest position.
    pub fn front(&self) -> Option<&Line> {
        self.lines.iter().filter(|l| !l.is_empty()).min_by_key(|l| position(l.head, l.index, self.count))
    }

    pub fn is_empty(&self) -> bool {
        self.front().is_none()
    }

    pub fn waiting(&self) -> i64 {
        self.lines.iter().map(|l| l.waiting).sum()
    }

    fn items(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| !l.on_event())
    }

    /// Sets `full` on the line items under the condition that none moved since read (a line
    /// on the event item is conditioned by the caller's own write).
    pub fn set_full_as_read(&self, full: bool) -> Vec<TxOp> {
        self.items()
            .map(|l| TxOp::Update {
                key: l.key.clone(),
                updates: vec![Update::set(FULL, i64::from(full))],
                cond: Some(l.as_read()),
            })
            .collect()
    }

    /// Checks that the line items did not move since read.
    pub fn unmoved(&self) -> Vec<TxOp> {
        self.items().map(|l| TxOp::Check { key: l.key.clone(), cond: l.as_read() }).collect()
    }
}

/// Line item `s` of `event` as stored (empty when never written).
pub async fn read_line<S: Store + ?Sized>(store: &S, event: &EventId, s: i64) -> Result<Line, StoreError> {
    Ok(Line::of_item(event, s, store.get(&ev::line_key(event, s)).await?.as_ref()))
}

/// The position of the `k`-th arrival of line `line` among `lines`.
pub fn position(k: i64, line: i64, lines: i64) -> i64 {
    k * lines.max(1) + line
}

/// The line of `position` among `lines`.
pub fn line_of(position: i64, lines: i64) -> i64 {
    position.rem_euclid(lines.max(1))
}

/// The item holding line `line`'s counters among `lines`.
pub fn key(event: &EventId, line: i64, lines: i64) -> Key {
    if lines <= 1 { ev::event_key(event) } else { ev::line_key(event, line) }
}

/// `full` set on every line item of `e` unconditionally (the caller conditions `taken` on the
/// event item in the same transaction); nothing for a waitlist of one line.
pub fn set_full(e: &EventState, full: bool) -> Vec<TxOp> {
    let lines = if e.lines > 1 { 0..e.lines } else { 0..0 };
    lines
        .map(|s| TxOp::Update {
            key: ev::line_key(e.id(), s),
            updates: vec![Update::set(FULL, i64::from(full))],
            cond: None,
        })
        .collect()
}

/// Sets (or clears) the `full` flags of the line items from the event item in one transaction
/// that checks `taken` against the stock: called by an arrival whose line's flag disagreed with
/// the event it read as full.
pub async fn sync_full<S: Store + ?Sized>(store: &S, e: &EventState) -> Result<(), StoreError> {
    let full = e.taken >= e.stock();
    let check = match full {
        true => Cond::Ge(TAKEN.into(), e.stock()),
        false => Cond::Lt(TAKEN.into(), e.stock()),
    };
    let mut ops = vec![TxOp::Check { key: ev::event_key(e.id()), cond: check }];
    ops.extend(set_full(e, full));
    match store.transact(ops, None).await {
        Ok(()) | Err(StoreError::TransactionCancelled { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(index: i64, head: i64, tail: i64) -> Line {
        let event = EventId::parse("drop").unwrap();
        Line { head, tail, waiting: tail - head + 1, full: true, ..Line::of_item(&event, index, None) }
    }

    #[test]
    fn positions_interleave_the_lines_and_name_their_line() {
        assert_eq!(position(1, 0, 1), 1, "one line: positions 1, 2, 3, …");
        assert_eq!(position(3, 0, 1), 3);
        assert_eq!([position(1, 0, 4), position(1, 3, 4), position(2, 0, 4)], [4, 7, 8]);
        for (k, s) in [(1, 0), (1, 3), (7, 2), (12, 31)] {
            assert_eq!(line_of(position(k, s, 32), 32), s);
        }
    }

    #[test]
    fn the_front_is_the_smallest_position_at_the_head_of_any_line() {
        let lines = Lines { count: 3, lines: vec![line(0, 5, 9), line(1, 4, 4), line(2, 5, 4)] };
        // Line 1's head (4·3+1 = 13) is ahead of line 0's (5·3 = 15); line 2 is empty.
        assert_eq!(lines.front().map(|l| l.index), Some(1));
        assert_eq!(lines.waiting(), 5 + 1);
        let empty = Lines { count: 2, lines: vec![line(0, 3, 2), line(1, 1, 0)] };
        assert!(empty.is_empty());
    }

    #[test]
    fn a_line_never_written_reads_empty_and_is_conditioned_on_absence() {
        let l = Line::of_item(&EventId::parse("drop").unwrap(), 2, None);
        assert!(!l.on_event());
        assert!(l.is_empty() && !l.full);
        assert_eq!(l.as_read(), Cond::And(vec![Cond::AttrNotExists(HEAD.into()), Cond::AttrNotExists(TAIL.into())]));
    }
}
