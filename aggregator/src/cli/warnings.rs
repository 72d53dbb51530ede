//! Warnings on stderr, bounded: a hostile input may have a million bad items, and a
//! person needs the first few and a count, not a million lines.

use super::exit::one_line;

/// Warning lines printed per source; the rest are counted in one closing line.
pub const SHOWN: usize = 10;

/// Warnings about one source (an input file, the cluster, the calculation), kept until
/// the source has been read to the end so that a file which turns out malformed prints
/// only its one failure line.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    source: String,
    shown: Vec<String>,
    total: u64,
}

impl Warnings {
    /// No warnings yet about `source` (a file name, `stdin`, `the cluster`).
    pub fn new(source: impl Into<String>) -> Self {
        Warnings {
            source: source.into(),
            shown: Vec::new(),
            total: 0,
        }
    }

    /// Records one warning.
    pub fn push(&mut self, line: impl Into<String>) {
        self.total += 1;
        if self.shown.len() < SHOWN {
            self.shown.push(one_line(&line.into()));
        }
    }

    /// Warnings recorded, shown or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Prints the first [`SHOWN`] warnings, then one line with the count of the rest.
    pub fn print(&self) {
        for line in &self.shown {
            eprintln!("linkmeter-aggregator: warning: {}: {line}", self.source);
        }
        let rest = self.total - self.shown.len() as u64;
        if rest > 0 {
            eprintln!(
                "linkmeter-aggregator: warning: {}: … and {rest} more warnings",
                self.source
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_lines_and_counts_all() {
        let mut w = Warnings::new("f.json");
        for i in 0..25 {
            w.push(format!("item {i}\nbad"));
        }
        assert_eq!(w.total(), 25);
        assert_eq!(w.shown.len(), SHOWN);
        assert_eq!(w.shown[0], "item 0 bad");
    }
}
