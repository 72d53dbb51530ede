//! `explain`'s text form.

use std::io::{self, Write};

use super::Explanation;

/// Writes the explanation for a person.
pub fn write(w: &mut dyn Write, e: &Explanation) -> io::Result<()> {
    writeln!(w, "Pod {}", e.pod)?;
    if e.request.is_empty() && e.errors.is_empty() {
        writeln!(w, "  asks nothing of linkmeter: every node fits, score 0")?;
    }
    for line in &e.request {
        writeln!(w, "  {line}")?;
    }
    for line in &e.errors {
        writeln!(w, "  error: {line}")?;
    }
    let fitting = e.nodes.iter().filter(|n| n.fits).count();
    writeln!(w)?;
    writeln!(w, "{fitting} of {} nodes fit", e.nodes.len())?;
    let width = e.nodes.iter().map(|n| n.node.len()).max().unwrap_or(4);
    for n in &e.nodes {
        writeln!(w)?;
        if n.fits {
            writeln!(w, "{:<width$}  fits, score {}", n.node, n.score)?;
        } else {
            writeln!(w, "{:<width$}  does not fit", n.node)?;
        }
        for r in &n.reasons {
            writeln!(w, "  - {r}")?;
        }
        for note in &n.notes {
            writeln!(w, "  + {note}")?;
        }
    }
    Ok(())
}
