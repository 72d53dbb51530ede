//! Plain-text tables and lists for the report: columns padded to their widest cell,
//! long lists cut with "… and N more".

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// Renders `rows` (the first is the header) indented by two spaces, one line each.
/// `align[i]` applies to column `i`; missing entries are left-aligned.
pub fn table(rows: &[Vec<String>], align: &[Align]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            line.push(' ');
            let last = i + 1 == row.len();
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
                Align::Left => {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            if !last {
                line.push(' ');
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The first `max` of `items` joined by `, `, then "… and N more" for the rest.
pub fn joined(items: &[String], max: usize) -> String {
    let mut text = items
        .iter()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        text.push_str(&format!(", … and {} more", items.len() - max));
    }
    text
}

/// Like [`joined`], broken into lines of at most about `width` characters, each
/// indented by two spaces and ending with a newline.
pub fn wrapped(items: &[String], max: usize, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(" ");
    let mut words: Vec<String> = items.iter().take(max).cloned().collect();
    if items.len() > max {
        words.push(format!("… and {} more", items.len() - max));
    }
    let count = words.len();
    for (i, word) in words.into_iter().enumerate() {
        let word = if i + 1 < count {
            format!("{word},")
        } else {
            word
        };
        if line.len() > 2 && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(&word);
    }
    if line.len() > 1 {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// "… and N more" for a table cut at `shown` rows of `total`, or nothing.
pub fn more(shown: usize, total: usize, what: &str) -> String {
    if total > shown {
        format!("  … and {} more {what}\n", total - shown)
    } else {
        String::new()
    }
}

/// µs as milliseconds with one decimal.
pub fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// kbit/s as Mbit/s: whole numbers from 100 up, one decimal below.
pub fn mbps(kbps: u64) -> String {
    let m = kbps as f64 / 1000.0;
    if m >= 100.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// ‰ as a percentage with one decimal.
pub fn percent(permille: u32) -> String {
    format!("{:.1} %", f64::from(permille) / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_and_cuts_lists() {
        let rows = vec![
            vec!["ZONE".to_owned(), "NODES".to_owned()],
            vec!["za".to_owned(), "12".to_owned()],
        ];
        assert_eq!(
            table(&rows, &[Align::Left, Align::Right]),
            "  ZONE  NODES\n  za       12\n"
        );
        let names: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        assert_eq!(joined(&names, 3), "n0, n1, n2, … and 2 more");
        assert_eq!(joined(&names, 5), "n0, n1, n2, n3, n4");
        assert_eq!(
            wrapped(&names, 4, 12),
            "  n0, n1,\n  n2, n3,\n  … and 1 more\n"
        );
        assert_eq!(wrapped(&[], 4, 12), "");
        assert_eq!(ms(1260), "1.3");
        assert_eq!(mbps(940_000), "940");
        assert_eq!(mbps(12_340), "12.3");
        assert_eq!(percent(32), "3.2 %");
    }
}
