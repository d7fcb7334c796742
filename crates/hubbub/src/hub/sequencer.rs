//! Puts a room's changes back into `pos` order at each node.
//!
//! Every durable change of a room takes the room's next `pos` and publishes exactly
//! one event, so a node can tell a gap from a late arrival. Changes commit
//! concurrently (SQLite commits a batch of sends at once; no lock spans commit and
//! publish), so their publishers may run in any order; events from other nodes travel
//! through Redis and may arrive out of order (two nodes publishing at once) or not at
//! all (Redis restarting). A publisher may also never run (its request was cancelled
//! between commit and publish). The sequencer delivers a room's events in `pos`
//! order; when a gap stays open longer than `GAP_WAIT`, or after the bus reconnects,
//! it reads what is missing from the store (`Fill`) and delivers that instead.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Frame, Hub};

/// How long a gap may stay open before the store fills it.
pub const GAP_WAIT: Duration = Duration::from_millis(400);

/// Reads the changes of `room` after `after_pos` from the store as frames; the last
/// `seq` delivered tells new messages from updated ones. Returns the frames and the
/// room's `pos` as of the read.
pub type Fill = Arc<
    dyn Fn(
            String,
            i64,
            i64,
        ) -> Pin<Box<dyn Future<Output = anyhow::Result<(Vec<Frame>, i64)>> + Send>>
        + Send
        + Sync,
>;

struct RoomSeq {
    /// The next `pos` to deliver.
    next: i64,
    last_seq: i64,
    held: BTreeMap<i64, Frame>,
    /// When the current gap opened (or a resync was asked for).
    since: Option<Instant>,
    filling: bool,
}

pub struct Sequencer {
    /// Each room has its own lock, held while its frames are handed to the
    /// subscribers' queues: two publishers of one room never interleave.
    rooms: Mutex<HashMap<Arc<str>, Arc<Mutex<RoomSeq>>>>,
    fill: Fill,
}

impl Sequencer {
    pub fn new(fill: Fill) -> Sequencer {
        Sequencer {
            rooms: Mutex::new(HashMap::new()),
            fill,
        }
    }

    /// The state of `room`, created with `next` as the first `pos` to deliver.
    fn room(&self, room: &str, next: i64) -> Arc<Mutex<RoomSeq>> {
        self.rooms
            .lock()
            .entry(Arc::from(room))
            .or_insert_with(|| {
                Arc::new(Mutex::new(RoomSeq {
                    next,
                    last_seq: 0,
                    held: BTreeMap::new(),
                    since: None,
                    filling: false,
                }))
            })
            .clone()
    }

    /// Takes one change and hands `deliver` what may be delivered now, in order,
    /// under the room's lock (so deliveries of one room never interleave).
    pub fn offer(&self, room: &str, f: Frame, mut deliver: impl FnMut(&Frame)) {
        let st = self.room(room, f.pos);
        let mut st = st.lock();
        if f.pos < st.next {
            // Delivered already, or covered by a fill from the store.
            return;
        }
        if f.pos > st.next || st.filling {
            st.held.insert(f.pos, f);
            st.since.get_or_insert_with(Instant::now);
            return;
        }
        let mut out = vec![f];
        st.next += 1;
        drain(&mut st, &mut out);
        out.iter().for_each(&mut deliver);
    }

    /// Sets where a room starts when nothing is known of it yet: a connection just
    /// read the room at `pos` (after subscribing), so changes up to `pos` reach it
    /// through that read and the next one to deliver is `pos + 1`.
    pub fn seed(&self, room: &str, pos: i64) {
        self.room(room, pos + 1);
    }

    /// Asks for every known room to be re-read from the store (the bus reconnected,
    /// so anything may have been missed).
    pub fn resync_all(&self) {
        let past = Instant::now()
            .checked_sub(GAP_WAIT * 2)
            .unwrap_or_else(Instant::now);
        for st in self.rooms.lock().values() {
            st.lock().since = Some(past);
        }
    }

    /// Rooms whose gap has waited long enough: (room, pos delivered so far, last seq).
    fn due(&self) -> Vec<(Arc<str>, i64, i64)> {
        let mut out = Vec::new();
        for (room, st) in self.rooms.lock().iter() {
            let mut st = st.lock();
            if !st.filling && st.since.is_some_and(|t| t.elapsed() >= GAP_WAIT) {
                st.filling = true;
                out.push((room.clone(), st.next - 1, st.last_seq));
            }
        }
        out
    }

    /// Merges what the store said with what is held and hands `deliver` the result,
    /// in order, under the room's lock.
    fn filled(&self, room: &str, frames: Vec<Frame>, pos: i64, mut deliver: impl FnMut(&Frame)) {
        let Some(st) = self.rooms.lock().get(room).cloned() else {
            return;
        };
        let mut st = st.lock();
        st.filling = false;
        let mut out: Vec<Frame> = frames.into_iter().filter(|f| f.pos >= st.next).collect();
        for f in &out {
            st.last_seq = st.last_seq.max(f.seq);
        }
        st.next = st.next.max(pos + 1);
        let next = st.next;
        st.held.retain(|p, _| *p >= next);
        st.since = None;
        drain(&mut st, &mut out);
        out.iter().for_each(&mut deliver);
    }

    fn fill_failed(&self, room: &str) {
        if let Some(st) = self.rooms.lock().get(room) {
            let mut st = st.lock();
            st.filling = false;
            st.since = Some(Instant::now());
        }
    }
}

/// Moves held frames that are now contiguous to `out`.
fn drain(st: &mut RoomSeq, out: &mut Vec<Frame>) {
    while let Some(f) = st.held.remove(&st.next) {
        out.push(f);
        st.next += 1;
    }
    for f in out.iter() {
        st.last_seq = st.last_seq.max(f.seq);
    }
    st.since = if st.held.is_empty() {
        None
    } else {
        Some(Instant::now())
    };
}

/// Checks for overdue gaps ten times a second and fills them from the store.
pub fn spawn_gap_timer(hub: &Arc<Hub>) {
    let weak: Weak<Hub> = Arc::downgrade(hub);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let Some(hub) = weak.upgrade() else { break };
            let Some(seq) = hub.sequencer.get() else {
                break;
            };
            for (room, after, last_seq) in seq.due() {
                let fill = seq.fill.clone();
                let hub = hub.clone();
                tokio::spawn(async move {
                    let Some(seq) = hub.sequencer.get() else {
                        return;
                    };
                    match fill(room.to_string(), after, last_seq).await {
                        Ok((frames, pos)) => {
                            let n = frames.len();
                            seq.filled(&room, frames, pos, |f| hub.deliver_room_now(&room, f));
                            if n > 0 {
                                metrics::counter!("hubbub_gap_fills_total").increment(1);
                                tracing::info!(room = %room, after, filled = n, "filled a gap from the store");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(room = %room, error = %e, "gap fill failed; will retry");
                            seq.fill_failed(&room);
                        }
                    }
                });
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ws::Utf8Bytes;

    fn f(pos: i64) -> Frame {
        Frame {
            room: Some(Arc::from("r")),
            pos,
            seq: pos,
            text: Utf8Bytes::from(pos.to_string()),
        }
    }

    fn seq() -> Sequencer {
        Sequencer::new(Arc::new(|_, _, _| Box::pin(async { Ok((Vec::new(), 0)) })))
    }

    fn poses(v: Vec<Frame>) -> Vec<i64> {
        v.iter().map(|f| f.pos).collect()
    }

    /// What `offer` delivers, collected.
    trait Collect {
        fn offer_all(&self, room: &str, f: Frame) -> Vec<Frame>;
        fn filled_all(&self, room: &str, frames: Vec<Frame>, pos: i64) -> Vec<Frame>;
    }

    impl Collect for Sequencer {
        fn offer_all(&self, room: &str, f: Frame) -> Vec<Frame> {
            let mut out = Vec::new();
            self.offer(room, f, |f| out.push(f.clone()));
            out
        }
        fn filled_all(&self, room: &str, frames: Vec<Frame>, pos: i64) -> Vec<Frame> {
            let mut out = Vec::new();
            self.filled(room, frames, pos, |f| out.push(f.clone()));
            out
        }
    }

    #[test]
    fn reorders_and_drops_duplicates() {
        let s = seq();
        assert_eq!(poses(s.offer_all("r", f(5))), [5]);
        assert!(s.offer_all("r", f(7)).is_empty());
        assert_eq!(poses(s.offer_all("r", f(6))), [6, 7]);
        assert!(s.offer_all("r", f(6)).is_empty(), "duplicate");
        assert_eq!(poses(s.offer_all("r", f(8))), [8]);
    }

    #[test]
    fn a_seeded_room_waits_for_its_first_change() {
        let s = seq();
        s.seed("r", 0);
        assert!(
            s.offer_all("r", f(2)).is_empty(),
            "pos 1 has not arrived yet"
        );
        assert_eq!(poses(s.offer_all("r", f(1))), [1, 2]);
        s.seed("r", 10);
        assert_eq!(
            poses(s.offer_all("r", f(3))),
            [3],
            "a seed never moves a known room"
        );
    }

    #[test]
    fn a_fill_covers_the_gap_and_releases_held_frames() {
        let s = seq();
        s.offer_all("r", f(1));
        assert!(s.offer_all("r", f(4)).is_empty());
        assert!(s.offer_all("r", f(5)).is_empty());
        s.resync_all();
        let due = s.due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, 1);
        // The store knew up to pos 4: frames 2..=4, then held 5 follows.
        let out = s.filled_all("r", vec![f(2), f(3), f(4)], 4);
        assert_eq!(poses(out), [2, 3, 4, 5]);
        assert!(s.offer_all("r", f(4)).is_empty());
        assert_eq!(poses(s.offer_all("r", f(6))), [6]);
    }

    #[test]
    fn concurrent_publishers_deliver_in_pos_order() {
        const THREADS: i64 = 8;
        const N: i64 = 4000;
        let s = Arc::new(seq());
        s.seed("r", 0);
        let delivered = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let (s, delivered) = (s.clone(), delivered.clone());
                scope.spawn(move || {
                    for pos in (1..=N).filter(|p| p % THREADS == t) {
                        s.offer("r", f(pos), |f| {
                            // A delivery takes a while (one queue per subscriber):
                            // long enough for another publisher to get in between.
                            std::thread::yield_now();
                            delivered.lock().push(f.pos)
                        });
                    }
                });
            }
        });
        assert_eq!(*delivered.lock(), (1..=N).collect::<Vec<_>>());
    }
}
