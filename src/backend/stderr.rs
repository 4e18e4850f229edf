//! A backend's stderr, kept apart from the protocol.
//!
//! MCP servers log to stderr; a crash's cause is usually in its last lines. The
//! ring keeps the most recent lines (bounded in count and length) so errors can
//! quote them without the daemon growing.

use std::collections::VecDeque;
use std::sync::Mutex;

const MAX_LINES: usize = 200;
const MAX_LINE_CHARS: usize = 2000;

#[derive(Default)]
pub struct StderrRing {
    lines: Mutex<Lines>,
}

#[derive(Default)]
struct Lines {
    kept: VecDeque<String>,
    /// How many lines were ever pushed: the sequence number of the next one,
    /// so a follower (`mcp-gateway logs -f`) can ask for what is new.
    pushed: u64,
}

impl StderrRing {
    pub fn push(&self, line: &str) {
        let mut line = line.trim_end().to_string();
        if line.len() > MAX_LINE_CHARS {
            let cut = (0..=MAX_LINE_CHARS).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
            line.truncate(cut);
            line.push('…');
        }
        let mut lines = crate::lock(&self.lines);
        if lines.kept.len() == MAX_LINES {
            lines.kept.pop_front();
        }
        lines.kept.push_back(line);
        lines.pushed += 1;
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = crate::lock(&self.lines);
        lines.kept.iter().skip(lines.kept.len().saturating_sub(n)).cloned().collect()
    }

    /// The kept lines numbered `since` and later (older ones may have been
    /// dropped), and the number to ask from next time.
    pub fn since(&self, since: u64) -> (Vec<String>, u64) {
        let lines = crate::lock(&self.lines);
        let first = lines.pushed - lines.kept.len() as u64;
        let skip = usize::try_from(since.saturating_sub(first)).unwrap_or(usize::MAX);
        (lines.kept.iter().skip(skip).cloned().collect(), lines.pushed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_bounded() {
        let ring = StderrRing::default();
        for i in 0..(MAX_LINES + 10) {
            ring.push(&format!("line {i}\n"));
        }
        assert_eq!(ring.tail(2), vec![format!("line {}", MAX_LINES + 8), format!("line {}", MAX_LINES + 9)]);
        assert_eq!(ring.tail(usize::MAX).len(), MAX_LINES);
        let (new, next) = ring.since(MAX_LINES as u64 + 8);
        assert_eq!(new.len(), 2);
        assert_eq!(next, MAX_LINES as u64 + 10);
        assert!(ring.since(next).0.is_empty(), "nothing new");
        assert_eq!(ring.since(0).0.len(), MAX_LINES, "lines already dropped are skipped");
        ring.push(&"é".repeat(MAX_LINE_CHARS));
        assert!(ring.tail(1)[0].len() <= MAX_LINE_CHARS + '…'.len_utf8());
    }
}
