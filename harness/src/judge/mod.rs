//! Judging: the console as typed lines, steps and kernel reports, and the
//! verdict. Nothing here touches the file system or a process (a test
//! enforces it): a saved console log judges the same as a live one.

pub mod event;
pub mod expect;
pub mod ktap;
pub mod report;
pub mod step;
pub mod symbols;
pub mod verdict;
pub mod watch;

#[cfg(test)]
mod tests {
    /// The rule of this directory, checked on its source: no file system,
    /// no processes, no network, no clock outside the tests.
    #[test]
    fn the_judge_does_no_io() {
        let dir = crate::repo_root().join("harness/src/judge");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // Only the code before the test modules counts.
            let code = text.split("#[cfg(test)]").next().unwrap();
            for banned in ["std::fs", "std::process", "std::net", "OpenOptions", "duct::", "Command::", "SystemTime", "std::env"] {
                assert!(!code.contains(banned), "{} uses {banned}: the judge does no I/O", path.display());
            }
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} files in {}", dir.display());
    }
}
