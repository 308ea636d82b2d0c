//! A module's vermagic against the kernel a board runs, before the first
//! step: a module built for another kernel is refused by insmod
//! ("invalid module format", exit 8), and every expectation after it would
//! fail for that one reason. The replay reads the board's `uname -r -v`,
//! and when a module cannot load there it says so in one line, with what
//! would: the profile whose kernel the board runs, or `--ko`.
//!
//! What is compared is what the kernel's module loader compares
//! (`same_magic`): the release, and the flags that uname also shows (SMP,
//! preemption). The rest of the vermagic (mod_unload, the ARM
//! architecture) uname does not show; a module that differs only there is
//! left to insmod.

use std::path::Path;

/// The board's kernel as `uname -r -v` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardKernel {
    /// `uname -r`: `3.5.0-FriendlyARM`, `6.12.38`.
    pub release: String,
    /// `uname -v`: `#1 SMP PREEMPT Fri Jan 4 ...`.
    pub version: String,
}

impl BoardKernel {
    /// From the one line of `uname -r -v`.
    pub fn parse(line: &str) -> Option<BoardKernel> {
        let (release, version) = line.trim().split_once(' ')?;
        (!release.is_empty()).then(|| BoardKernel { release: release.to_string(), version: version.trim().to_string() })
    }

    fn flags(&self) -> Flags {
        let w: Vec<&str> = self.version.split_whitespace().collect();
        Flags {
            smp: w.contains(&"SMP"),
            // PREEMPT and PREEMPT_DYNAMIC build a preemptible kernel
            // (vermagic `preempt`); PREEMPT_RT is `preempt_rt`.
            preempt: w.iter().any(|x| x.starts_with("PREEMPT") && *x != "PREEMPT_RT"),
            rt: w.contains(&"PREEMPT_RT"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Flags {
    smp: bool,
    preempt: bool,
    rt: bool,
}

fn vermagic_flags(words: &[&str]) -> Flags {
    Flags { smp: words.contains(&"SMP"), preempt: words.contains(&"preempt"), rt: words.contains(&"preempt_rt") }
}

/// Why a module of this vermagic cannot load on the board; `None` when
/// nothing uname shows stands in the way (or the vermagic is unknown).
pub fn refusal(board: &BoardKernel, vermagic: &str) -> Option<String> {
    let words: Vec<&str> = vermagic.split_whitespace().collect();
    let release = words.first()?;
    if *release != board.release {
        return Some(format!("it was built for Linux {release}, the board runs {}", board.release));
    }
    let (theirs, ours) = (board.flags(), vermagic_flags(&words));
    let say = |f: &Flags| {
        let smp = if f.smp { "SMP" } else { "uniprocessor" };
        let pre = if f.rt {
            ", PREEMPT_RT"
        } else if f.preempt {
            ", preemptible"
        } else {
            ""
        };
        format!("{smp}{pre}")
    };
    (theirs != ours).then(|| {
        format!("it was built for a {} kernel, the board's is {} ({})", say(&ours), say(&theirs), board.version)
    })
}

/// A kernel build the harness has: its profile, release and `uname -v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKernel {
    pub profile: String,
    pub release: String,
    pub version: String,
}

/// What would load instead: the profile whose kernel build is the one the
/// board runs (its release and version), else one of the board's release,
/// else a module built against the board's own kernel.
pub fn advice(board: &BoardKernel, built: &[KnownKernel]) -> String {
    if let Some(b) = built.iter().find(|b| b.release == board.release && b.version == board.version) {
        return format!("the board runs the {0} profile's kernel: build with --profile {0}", b.profile);
    }
    if let Some(b) = built.iter().find(|b| b.release == board.release) {
        return format!(
            "the {0} profile builds Linux {1}: build with --profile {0} (if that is the kernel the board booted)",
            b.profile, b.release
        );
    }
    format!(
        "no profile here builds Linux {}: give --ko FILE, a module built against the board's own kernel \
         (make -C <its build tree> M=<module folder> modules)",
        board.release
    )
}

/// The kernel builds in the harness's cache (each entry's release and
/// `UTS_VERSION`); an entry that cannot be read is left out.
pub fn cached() -> Vec<KnownKernel> {
    let Ok(entries) = crate::cache::entries() else {
        return Vec::new();
    };
    entries.iter().filter_map(|e| read_built(&e.path, &e.profile)).collect()
}

fn read_built(dir: &Path, profile: &str) -> Option<KnownKernel> {
    let release = std::fs::read_to_string(dir.join("include/config/kernel.release")).ok()?.trim().to_string();
    // 6.x keeps UTS_VERSION in utsversion.h, 3.5 in compile.h.
    let header = ["include/generated/utsversion.h", "include/generated/compile.h"]
        .iter()
        .find_map(|h| std::fs::read_to_string(dir.join(h)).ok().filter(|t| t.contains("UTS_VERSION")))?;
    Some(KnownKernel { profile: profile.to_string(), release, version: uts_version(&header)? })
}

/// `#define UTS_VERSION "#1 SMP ..."`'s string.
fn uts_version(header: &str) -> Option<String> {
    let rest = header.lines().find_map(|l| l.trim().strip_prefix("#define UTS_VERSION"))?;
    Some(rest.trim().trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(line: &str) -> BoardKernel {
        BoardKernel::parse(line).unwrap()
    }

    #[test]
    fn a_module_of_another_release_or_kind_of_kernel_is_refused() {
        let stock = board("3.5.0-FriendlyARM #1 SMP PREEMPT Fri Aug 8 11:22:33 CST 2014");
        assert_eq!(refusal(&stock, "3.5.0-FriendlyARM SMP preempt mod_unload ARMv7 p2v8 "), None);
        let other = refusal(&stock, "6.12.38-emulated SMP mod_unload ARMv7 p2v8 ").unwrap();
        assert_eq!(other, "it was built for Linux 6.12.38-emulated, the board runs 3.5.0-FriendlyARM");
        let up = refusal(&stock, "3.5.0-FriendlyARM preempt mod_unload ARMv7 ").unwrap();
        assert!(up.contains("built for a uniprocessor, preemptible kernel, the board's is SMP, preemptible"), "{up}");
        let uniprocessor = board("3.5.0-FriendlyARM #1 PREEMPT Fri Aug 8 11:22:33 CST 2014");
        assert!(refusal(&uniprocessor, "3.5.0-FriendlyARM SMP preempt mod_unload ARMv7 ").is_some());
        assert_eq!(refusal(&uniprocessor, "3.5.0-FriendlyARM preempt mod_unload ARMv7 "), None);
        let dynamic = board("6.12.38 #1 SMP PREEMPT_DYNAMIC Mon Dec  7 02:00:00 UTC 2026");
        assert_eq!(refusal(&dynamic, "6.12.38 SMP preempt mod_unload ARMv7 p2v8"), None);
        assert!(refusal(&dynamic, "6.12.38 SMP mod_unload ARMv7 p2v8").is_some());
        // A module whose vermagic is unknown (on the board already) is left to insmod.
        assert_eq!(refusal(&stock, ""), None);
        assert_eq!(BoardKernel::parse("3.5.0"), None);
    }

    #[test]
    fn the_advice_names_the_profile_whose_kernel_the_board_runs_else_ko() {
        let b = board("6.12.38 #1 SMP Mon Dec  7 02:00:00 UTC 2026");
        let built = |p: &str, r: &str, v: &str| KnownKernel { profile: p.into(), release: r.into(), version: v.into() };
        let cache = [
            built("exynos4210", "6.12.38-emulated", "#1 SMP PREEMPT x"),
            built("vexpress-a9-small", "6.12.38", "#1 SMP Mon Dec  7 02:00:00 UTC 2026"),
        ];
        assert_eq!(
            advice(&b, &cache),
            "the board runs the vexpress-a9-small profile's kernel: build with --profile vexpress-a9-small"
        );
        let rebuilt = [built("vexpress-a9", "6.12.38", "#2 SMP Sun Dec  6 02:00:00 UTC 2026")];
        assert!(advice(&b, &rebuilt)
            .starts_with("the vexpress-a9 profile builds Linux 6.12.38: build with --profile vexpress-a9"));
        let stock = board("3.5.0-FriendlyARM #1 SMP PREEMPT Fri Aug 8 11:22:33 CST 2014");
        assert!(advice(&stock, &cache).contains("give --ko FILE, a module built against the board's own kernel"));
    }

    #[test]
    fn uts_version_is_read_from_either_header() {
        assert_eq!(
            uts_version("#define UTS_VERSION \"#1 SMP PREEMPT Mon Dec  7 UTC 2026\"\n").as_deref(),
            Some("#1 SMP PREEMPT Mon Dec  7 UTC 2026")
        );
        assert_eq!(
            uts_version("/* compile.h */\n#define UTS_MACHINE \"arm\"\n#define UTS_VERSION \"#1 SMP\"\n").as_deref(),
            Some("#1 SMP")
        );
        assert_eq!(uts_version("#define LINUX_COMPILE_BY \"x\"\n"), None);
    }
}
