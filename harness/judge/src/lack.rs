//! One name a module's own code uses that the board's Linux 3.5 lacks
//! (found by board_api.rs on the build side; the verdict shows it).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of name a module used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameKind {
    Function,
    Macro,
    Type,
    StructMember,
    /// Declared on the board too, but not exported there (or only by code
    /// its defconfig leaves out): the module would not load.
    ExportedSymbol,
    Name,
    /// A header the module includes that the board's tree does not have.
    Header,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Function => "function",
            NameKind::Macro => "macro",
            NameKind::Type => "type",
            NameKind::StructMember => "struct member",
            NameKind::ExportedSymbol => "exported symbol",
            NameKind::Name => "name",
            NameKind::Header => "header",
        })
    }
}

/// One name a module's own code uses that the board's 3.5 lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lack {
    pub name: String,
    pub kind: NameKind,
    /// `file:line` of each use, relative to the module directory.
    pub at: Vec<String>,
    /// The version that added it, where known.
    pub since: Option<String>,
    /// The form that builds on both the board and here, where known.
    pub instead: Option<String>,
    /// Why the board lacks it, when it is not simply absent ("exported
    /// only by code tiny4412_linux_defconfig leaves out").
    pub note: Option<String>,
}

impl fmt::Display for Lack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.name, self.kind)?;
        if let Some(v) = &self.since {
            write!(f, ", since Linux {v}")?;
        }
        write!(f, ") at {}", self.at.join(", "))?;
        if let Some(n) = &self.note {
            write!(f, ": {n}")?;
        }
        if let Some(i) = &self.instead {
            write!(f, "\n  on 3.5 and here: {i}")?;
        }
        Ok(())
    }
}
