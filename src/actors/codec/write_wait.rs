//! Whether a pipelined write waits a scheduler turn first: kept while the waits bring
//! something (see [`CodecActor::write_soon`](super::CodecActor::write_soon)).
//!
//! A wait lets replies to messages read meanwhile join the write, which pays against a
//! peer that keeps sending (fewer, larger writes for it to take in). Against a peer that
//! answers a whole batch at once and sends nothing else, no turn ever sees a read: the
//! wait is then only a task poll and an I/O poll per batch. So each wait's first turn is
//! judged: one that saw a read raises a score by [`WAIT_PAID`], one that saw none lowers
//! it by one, up to [`WAIT_SCORE_MAX`]. At zero, writes go out at once, but every
//! [`WAIT_PROBE_EVERY`]-th pipelined write still waits, to look again.

/// What a wait whose first turn saw a read adds to the score.
pub(crate) const WAIT_PAID: u8 = 4;
/// The highest score, and the one a connection starts with: it waits as before until
/// that many turns in a row saw no read.
pub(crate) const WAIT_SCORE_MAX: u8 = 16;
/// While the score is zero, one pipelined write in this many still waits.
pub(crate) const WAIT_PROBE_EVERY: u8 = 16;

/// The judge of one connection's waits.
#[derive(Debug)]
pub(crate) struct WriteWait {
    score: u8,
    /// Pipelined writes that went out at once since the last wait.
    writes_at_once: u8,
}

impl Default for WriteWait {
    fn default() -> Self {
        Self {
            score: WAIT_SCORE_MAX,
            writes_at_once: 0,
        }
    }
}

impl WriteWait {
    /// Whether the pipelined write about to start waits a turn first.
    pub(crate) fn should_wait(&mut self) -> bool {
        if self.score == 0 {
            self.writes_at_once += 1;
            if self.writes_at_once < WAIT_PROBE_EVERY {
                return false;
            }
        }
        self.writes_at_once = 0;
        true
    }

    /// The first turn of a wait ended; `saw_read`: the socket was read during it.
    pub(crate) fn judge(&mut self, saw_read: bool) {
        self.score = match saw_read {
            true => self.score.saturating_add(WAIT_PAID).min(WAIT_SCORE_MAX),
            false => self.score.saturating_sub(1),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of the next `n` pipelined writes wait, each wait's turn seeing a read or not.
    fn waits(judge: &mut WriteWait, n: usize, saw_read: bool) -> usize {
        (0..n)
            .filter(|_| {
                let waits = judge.should_wait();
                if waits {
                    judge.judge(saw_read);
                }
                waits
            })
            .count()
    }

    #[test]
    fn a_connection_waits_until_its_waits_stop_bringing_reads() {
        let mut judge = WriteWait::default();
        assert_eq!(waits(&mut judge, usize::from(WAIT_SCORE_MAX), false), 16);
        // The score is spent: one write in WAIT_PROBE_EVERY still waits.
        assert_eq!(
            waits(&mut judge, 10 * usize::from(WAIT_PROBE_EVERY), false),
            10
        );
    }

    #[test]
    fn waits_that_bring_reads_keep_it_waiting() {
        let mut judge = WriteWait::default();
        assert_eq!(waits(&mut judge, 1000, true), 1000);
        // Reads during one turn in four are enough.
        let mut judge = WriteWait::default();
        let waited = (0..1000)
            .filter(|i| {
                let waits = judge.should_wait();
                if waits {
                    judge.judge(i % 4 == 0);
                }
                waits
            })
            .count();
        assert_eq!(waited, 1000);
    }

    #[test]
    fn a_probe_that_sees_a_read_brings_the_wait_back() {
        let mut judge = WriteWait::default();
        waits(&mut judge, 100, false);
        assert!(!judge.should_wait(), "spent: writes go out at once");
        let probes_until_one_waits = (0..WAIT_PROBE_EVERY).find(|_| judge.should_wait());
        assert!(probes_until_one_waits.is_some());
        judge.judge(true);
        assert_eq!(waits(&mut judge, usize::from(WAIT_PAID), false), 4);
        assert!(!judge.should_wait());
    }
}
