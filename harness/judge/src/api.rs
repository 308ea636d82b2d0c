//! Which module API a module is built for (api.rs on the build side
//! builds it; the expectations file may name it).

use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
pub enum Api {
    /// The board's Linux 3.5 API: the module builds as it is, and what a
    /// port to the test kernel must change is listed.
    #[serde(rename = "3.5")]
    #[value(name = "3.5")]
    Linux35,
    /// The test kernel's own API: no layer; a 3.5 module fails with the
    /// explanations of what changed.
    #[serde(rename = "native")]
    #[value(name = "native")]
    Native,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Linux35 => "3.5",
            Api::Native => "native",
        })
    }
}
