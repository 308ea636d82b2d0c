//! What a port of a module from Linux 3.5 to the test kernel must change
//! (found by changes.rs on the build side; the verdict shows it).

use std::fmt;

/// One 3.5 API a module built under `--api 3.5` used that the test kernel
/// lacks: what a port to the test kernel must change, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Port {
    pub id: String,
    pub what: String,
    pub instead: String,
    /// `file:line` of each use the build named (relative to the module
    /// directory), in the order first seen; empty for a use without a place
    /// (the module's name).
    pub at: Vec<String>,
    /// What the layer did instead.
    pub layer: String,
    /// What the mark said of this module beyond its id ("module.ko is built
    /// as module35.ko").
    pub note: Option<String>,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            writeln!(f, "{}", self.what)?;
        } else {
            writeln!(f, "{} ({})", self.what, self.at.join(", "))?;
        }
        if let Some(n) = &self.note {
            writeln!(f, "  here: {n}")?;
        }
        write_instead(f, &self.instead)
    }
}

/// `  works on 3.5 and here: ` and the form, its further lines indented
/// (a port's and a known change's explanation show it alike).
pub fn write_instead(f: &mut fmt::Formatter<'_>, instead: &str) -> fmt::Result {
    write!(f, "  works on 3.5 and here: ")?;
    let mut lines = instead.lines();
    if let Some(first) = lines.next() {
        writeln!(f, "{first}")?;
    }
    for l in lines {
        writeln!(f, "    {l}")?;
    }
    Ok(())
}
