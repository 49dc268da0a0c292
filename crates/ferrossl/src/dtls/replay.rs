//! Anti-replay: a sliding window over record sequence numbers (RFC 6347 §4.1.2.6).
//!
//! The window is checked before a record is decrypted and updated only after it authenticated,
//! so forged records cannot move it.

/// How many sequence numbers below the highest one seen are still accepted. RFC 6347 asks for
/// at least 32 and recommends 64; a wider window tolerates more reordering.
pub const WINDOW: u64 = 128;

/// The sequence numbers seen in one epoch.
#[derive(Clone, Debug, Default)]
pub struct ReplayWindow {
    /// The highest sequence number accepted so far.
    highest: Option<u64>,
    /// Bit i set: `highest - i` was accepted.
    seen: u128,
}

impl ReplayWindow {
    /// Whether a record with this sequence number may be new: not seen, not left behind.
    pub fn is_fresh(&self, seq: u64) -> bool {
        let Some(highest) = self.highest else {
            return true;
        };
        if seq > highest {
            return true;
        }
        let age = highest - seq;
        age < WINDOW && self.seen & (1u128 << age) == 0
    }

    /// Whether `seq` is above every sequence number accepted so far.
    pub fn is_newest(&self, seq: u64) -> bool {
        self.highest.is_none_or(|highest| seq > highest)
    }

    /// Records `seq` as accepted.
    pub fn mark(&mut self, seq: u64) {
        match self.highest {
            Some(highest) if seq <= highest => {
                let age = highest - seq;
                if age < WINDOW {
                    self.seen |= 1u128 << age;
                }
            }
            Some(highest) => {
                let shift = seq - highest;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.highest = Some(seq);
            }
            None => {
                self.seen = 1;
                self.highest = Some(seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_stale_records_are_refused() {
        let mut w = ReplayWindow::default();
        assert!(w.is_fresh(5));
        w.mark(5);
        assert!(!w.is_fresh(5));
        assert!(w.is_fresh(3), "older but inside the window and unseen");
        w.mark(3);
        assert!(!w.is_fresh(3));
        w.mark(200);
        assert!(!w.is_fresh(5), "fell out of the window");
        assert!(w.is_fresh(200 - WINDOW + 1));
        assert!(!w.is_fresh(200 - WINDOW));
        assert!(w.is_fresh(199));
        w.mark(199);
        w.mark(201);
        assert!(!w.is_fresh(199) && !w.is_fresh(200) && !w.is_fresh(201));
        assert!(w.is_fresh(198) && w.is_fresh(202));
        // A big jump clears the window.
        w.mark(201 + 10 * WINDOW);
        assert!(!w.is_fresh(201));
    }

    #[test]
    fn reordered_arrivals_each_accepted_once() {
        let mut w = ReplayWindow::default();
        let order = [10u64, 2, 7, 3, 11, 1, 0, 9, 4, 8, 6, 5];
        for seq in order {
            assert!(w.is_fresh(seq), "{seq}");
            w.mark(seq);
        }
        for seq in order {
            assert!(!w.is_fresh(seq), "{seq} twice");
        }
    }
}
