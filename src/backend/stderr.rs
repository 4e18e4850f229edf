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
    lines: Mutex<VecDeque<String>>,
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
        if lines.len() == MAX_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = crate::lock(&self.lines);
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect()
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
        ring.push(&"é".repeat(MAX_LINE_CHARS));
        assert!(ring.tail(1)[0].len() <= MAX_LINE_CHARS + '…'.len_utf8());
    }
}
