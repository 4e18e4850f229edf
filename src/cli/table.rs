//! Plain-text tables and the small formatting helpers the commands share.
//!
//! Columns are as wide as their widest cell, so the output reads well in a
//! terminal and stays stable for the golden tests; headers are bold only when
//! stdout is a terminal that wants colour (`anstream` strips the styling
//! otherwise, and honours `NO_COLOR`).

use std::fmt::Write;

use anstyle::Style;

pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const GOOD: Style = anstyle::AnsiColor::Green.on_default();
pub const WARN: Style = anstyle::AnsiColor::Yellow.on_default();
pub const BAD: Style = anstyle::AnsiColor::Red.on_default().bold();

/// A table: a header row and data rows, left-aligned, two spaces apart.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self { headers: headers.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines; the header styled with `BOLD`.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            let last = cells.len().saturating_sub(1);
            for (i, cell) in cells.into_iter().enumerate() {
                if i == last {
                    out.push_str(cell);
                } else {
                    let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
                }
            }
            out.trim_end().to_string()
        };
        let mut out = format!("{BOLD}{}{BOLD:#}\n", line(self.headers.clone()));
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        out
    }
}

/// `1h 02m`, `3m 05s`, `42s`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d {:02}h", secs / 86400, (secs % 86400) / 3600),
    }
}

/// `61.2 MiB` from KiB.
pub fn size_kib(kib: u64) -> String {
    if kib < 1024 { format!("{kib} KiB") } else { format!("{:.1} MiB", kib as f64 / 1024.0) }
}

/// The home directory, for [`under_home`].
pub fn home() -> String {
    std::env::var("HOME").unwrap_or_default()
}

/// `path` (or a text holding it, such as a sharing key `workspace:/home/…`)
/// with the home directory written as `~`.
pub fn under_home(path: &str, home: &str) -> String {
    if home.is_empty() || home == "/" {
        return path.to_string();
    }
    let Some(at) = path.find(home) else { return path.to_string() };
    let rest = &path[at + home.len()..];
    if rest.is_empty() || rest.starts_with('/') { format!("{}~{rest}", &path[..at]) } else { path.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let mut table = Table::new(&["NAME", "STATE"]);
        table.row(vec!["everything".into(), "idle".into()]);
        table.row(vec!["m".into(), "backing off".into()]);
        let plain = anstream::adapter::strip_str(&table.render()).to_string();
        assert_eq!(plain, "NAME        STATE\neverything  idle\nm           backing off\n");
    }

    #[test]
    fn humane_units() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(185), "3m 05s");
        assert_eq!(duration(3720), "1h 02m");
        assert_eq!(duration(90000), "1d 01h");
        assert_eq!(size_kib(512), "512 KiB");
        assert_eq!(size_kib(62_669), "61.2 MiB");
        assert_eq!(under_home("/home/ada/src", "/home/ada"), "~/src");
        assert_eq!(under_home("workspace:/home/ada", "/home/ada"), "workspace:~");
        assert_eq!(under_home("/home/adam", "/home/ada"), "/home/adam");
    }
}
