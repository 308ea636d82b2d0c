//! Machine profiles: `configs/profiles/NAME.toml`, data rather than code, in the
//! spirit of kunit's `qemu_configs/`. A profile names the kernel to build and
//! the QEMU machine to boot it on; it is validated before anything is built.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The file stem; filled in by [`Profile::load`].
    #[serde(skip)]
    pub name: String,
    /// Where the profile was read from, for error messages.
    #[serde(skip)]
    pub path: PathBuf,
    pub description: String,
    /// Kernel ARCH= value.
    pub arch: String,
    /// Default CROSS_COMPILE= prefix; `--cross-compile` overrides it.
    pub cross_compile: String,
    /// The module API a module directory is built for unless the command
    /// line or its expectations file says otherwise (`"3.5"` for the
    /// Tiny4412's profiles: its vendor kernel's); native when absent.
    #[serde(default)]
    pub api: Option<crate::api::Api>,
    /// The API the kernel itself has (`"3.5"`: FriendlyARM's own kernel):
    /// a unit built for it needs no layer and builds natively.
    #[serde(default)]
    pub kernel_api: Option<crate::api::Api>,
    pub kernel: KernelSpec,
    pub qemu: QemuSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// A defconfig target of the kernel tree, e.g. `exynos_defconfig`.
    pub defconfig: String,
    /// Fragment files under `configs/fragments/`, merged in order.
    pub fragments: Vec<String>,
    /// The boot image, relative to `arch/$ARCH/boot/`.
    pub image: String,
    /// Device trees to build, relative to `arch/$ARCH/boot/dts/`; none
    /// for a kernel that boots from the board id (ATAGs).
    #[serde(default)]
    pub dtbs: Vec<String>,
    /// The Debian package of the kernel source this profile is made for,
    /// installed when no `/usr/src/linux-source-*` tarball is there and
    /// `--kernel-src` is not given; none: nothing is installed.
    #[serde(default)]
    pub source_package: Option<String>,
    /// How many objects a build of it compiles, as measured (make's CC, AS,
    /// LD and DTC lines): the progress total on a machine that has not
    /// built it yet.
    #[serde(default)]
    pub objects: Option<u64>,
    /// The source is not Debian's but one the user has (FriendlyARM's),
    /// of this version (`VERSION.PATCHLEVEL` of its top Makefile); see
    /// [`SourceSpec`].
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// A folder under `configs/patches/` whose `*.patch` files are applied,
    /// in name order, to a copy of the source before it is configured.
    #[serde(default)]
    pub patches: Option<String>,
    /// `NAME=VALUE` words given to every make of this kernel and of the
    /// modules built against it (a compiler's flags the tree predates).
    #[serde(default)]
    pub make_vars: Vec<String>,
}

/// A kernel source the harness cannot install: the user names it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// `VERSION.PATCHLEVEL` the tree must have, e.g. `"3.5"`.
    pub version: String,
    /// The environment variable that names the tree or tarball when
    /// `--kernel-src` is not given.
    pub env: String,
    /// How to get the source, said when none is given.
    pub hint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSpec {
    pub binary: String,
    pub machine: String,
    pub smp: u32,
    /// `-m` value; absent for boards whose RAM size is fixed (smdkc210).
    pub memory: Option<String>,
    /// The dtb QEMU passes to the kernel; must be one of `kernel.dtbs`.
    /// None: QEMU passes the machine's board id (ATAGs), as for 3.5.
    pub dtb: Option<String>,
    /// `console=` value, e.g. `ttySAC0,115200n8`.
    pub console: String,
    /// Further kernel command line arguments, each with a reason in the profile.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Default limits in seconds for this machine (a debug kernel under TCG
    /// is many times slower); `--timeout` and friends override them.
    pub timeout: Option<u64>,
    pub step_timeout: Option<u64>,
    pub silence_timeout: Option<u64>,
    /// The SoC's register blocks (`configs/memory-maps/NAME.toml`), naming
    /// the device accesses the machine does not model.
    pub memory_map: Option<String>,
    /// The largest initramfs the kernel can reach where QEMU loads it (in
    /// lowmem, whose size the command line's `vmalloc=` sets); a larger
    /// one is refused before booting.
    pub initramfs_max_mb: Option<u64>,
    /// Whether the virtual Tiny4412 (`compat35/board/`, written for the
    /// stand-in kernel's API) can be loaded on this kernel; default yes.
    pub virtual_board: Option<bool>,
    /// How a check resumes a booted guest of this machine instead of
    /// booting it (guest/snapshot.rs); none: every check boots.
    #[serde(default)]
    pub resume: Option<ResumeSpec>,
    /// Why a machine without `resume` boots every check, said on the check's
    /// `boot` line (a shipped profile has one or the other; a user's own may
    /// have neither).
    #[serde(default)]
    pub no_resume: Option<String>,
}

/// Where a resumed guest finds its run: the top of RAM, which the kernel
/// is told not to use (`mem=`), and the host writes into before the guest
/// runs (guest/inbox.rs, rootfs/programs/inbox.c).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeSpec {
    /// The kernel's `mem=`: the RAM it uses, from the start of RAM.
    pub mem: String,
    /// The physical address of the inbox: the end of that RAM.
    pub inbox: u64,
    /// The inbox's size in bytes: what is left of RAM above it.
    pub inbox_size: u64,
}

impl Profile {
    /// Loads `name_or_path`: a file path if it ends in `.toml` or exists,
    /// otherwise a name looked up in `configs_dir/profiles/`.
    pub fn load(name_or_path: &str, configs_dir: &Path) -> Result<Profile> {
        let candidate = Path::new(name_or_path);
        let path = if name_or_path.ends_with(".toml") || candidate.is_file() {
            candidate.to_path_buf()
        } else {
            let path = configs_dir.join("profiles").join(format!("{name_or_path}.toml"));
            if !path.is_file() {
                bail!(
                    "unknown profile {name_or_path:?}: available profiles are {} (from {})",
                    Self::available(configs_dir).join(", "),
                    configs_dir.join("profiles").display()
                );
            }
            path
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading profile {}", path.display()))?;
        let mut profile: Profile = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: invalid profile: {}", path.display(), e.to_string().trim_end()))?;
        profile.name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        profile.path = path;
        profile.validate(configs_dir)?;
        Ok(profile)
    }

    /// Names of the profiles shipped in `configs_dir/profiles/`.
    pub fn available(configs_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(configs_dir.join("profiles"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                if p.extension()? != "toml" {
                    return None;
                }
                Some(p.file_stem()?.to_string_lossy().into_owned())
            })
            .collect();
        names.sort();
        names
    }

    /// Fragment paths, resolved against `configs_dir/fragments/`.
    pub fn fragment_paths(&self, configs_dir: &Path) -> Vec<PathBuf> {
        self.kernel.fragments.iter().map(|f| configs_dir.join("fragments").join(f)).collect()
    }

    /// Checks everything that can be checked without building or booting.
    fn validate(&self, configs_dir: &Path) -> Result<()> {
        let at = self.path.display();
        for frag in self.fragment_paths(configs_dir) {
            if !frag.is_file() {
                bail!("{at}: kernel.fragments names {}, which does not exist", frag.display());
            }
        }
        if let Some(dtb) = self.qemu.dtb.as_ref().filter(|d| !self.kernel.dtbs.contains(d)) {
            bail!(
                "{at}: qemu.dtb {dtb:?} is not among kernel.dtbs {:?}; add it there so that it gets built",
                self.kernel.dtbs
            );
        }
        if self.qemu.smp == 0 {
            bail!("{at}: qemu.smp must be at least 1");
        }
        if self.qemu.console.is_empty() || self.qemu.console.contains(char::is_whitespace) {
            bail!("{at}: qemu.console must be one word such as ttySAC0,115200n8");
        }
        if let Some(m) = &self.qemu.memory_map {
            let path = configs_dir.join("memory-maps").join(m);
            if !path.is_file() {
                bail!("{at}: qemu.memory_map names {}, which does not exist", path.display());
            }
        }
        if let Some(dir) = &self.kernel.patches {
            let path = configs_dir.join("patches").join(dir);
            if !path.is_dir() {
                bail!("{at}: kernel.patches names {}, which does not exist", path.display());
            }
        }
        if let Some(bad) = self.kernel.make_vars.iter().find(|v| {
            !v.split_once('=')
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        }) {
            bail!("{at}: kernel.make_vars: {bad:?} is not NAME=VALUE");
        }
        if self.qemu.resume.is_some() && self.qemu.no_resume.is_some() {
            bail!("{at}: qemu.no_resume says why a machine cannot resume: not with [qemu.resume]");
        }
        if let Some(r) = &self.qemu.resume {
            let mb = r.mem.strip_suffix('M').and_then(|n| n.parse::<u64>().ok());
            if mb.is_none() || r.inbox % 4096 != 0 || r.inbox_size < 1 << 20 || r.inbox_size % 4096 != 0 {
                bail!(
                    "{at}: qemu.resume needs mem = \"<N>M\", and inbox and inbox_size (at least 1 MiB) in whole \
                     4 KiB pages"
                );
            }
        }
        if !self.kernel.defconfig.ends_with("defconfig") {
            bail!("{at}: kernel.defconfig {:?} is not a defconfig target", self.kernel.defconfig);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs() -> PathBuf {
        crate::repo_root().join("configs")
    }

    #[test]
    fn shipped_profiles_load_and_validate() {
        let names = Profile::available(&configs());
        assert!(names.contains(&"exynos4210".to_string()), "{names:?}");
        assert!(names.contains(&"vexpress-a9".to_string()), "{names:?}");
        for name in names {
            let p = Profile::load(&name, &configs()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            // A shipped profile resumes, or says why not (the boot line
            // quotes it); a user's own profile may say neither.
            assert!(
                p.qemu.resume.is_some() || p.qemu.no_resume.is_some(),
                "{name}: [qemu.resume], or qemu.no_resume = \"why\" (docs/resume.md)"
            );
        }
    }

    /// The suite's replay tests boot vexpress-a9-small for a shorter cold
    /// build; what they show holds for vexpress-a9 only while the two boot
    /// the same machine the same way and build from the same base.
    #[test]
    fn the_small_vexpress_profile_is_vexpress_a9_with_one_fragment_more() {
        let full = Profile::load("vexpress-a9", &configs()).unwrap();
        let small = Profile::load("vexpress-a9-small", &configs()).unwrap();
        assert_eq!(format!("{:?}", small.qemu), format!("{:?}", full.qemu), "the [qemu] tables differ");
        assert_eq!(small.kernel.defconfig, full.kernel.defconfig);
        assert_eq!((&small.kernel.image, &small.kernel.dtbs), (&full.kernel.image, &full.kernel.dtbs));
        assert_eq!(small.kernel.fragments, [full.kernel.fragments.clone(), vec!["small.config".to_string()]].concat());
    }

    /// `--gdb` into the kernel is the default profile's guest with debug
    /// info: the same machine, booted the same way, from the same config
    /// plus gdb.config.
    #[test]
    fn the_gdb_profile_is_the_default_with_one_fragment_more() {
        let plain = Profile::load("exynos4210", &configs()).unwrap();
        let gdb = Profile::load("exynos4210-gdb", &configs()).unwrap();
        assert_eq!(format!("{:?}", gdb.qemu), format!("{:?}", plain.qemu), "the [qemu] tables differ");
        assert_eq!(
            (&gdb.kernel.defconfig, &gdb.kernel.image, &gdb.api),
            (&plain.kernel.defconfig, &plain.kernel.image, &plain.api)
        );
        assert_eq!(gdb.kernel.fragments, [plain.kernel.fragments.clone(), vec!["gdb.config".to_string()]].concat());
    }

    /// 3.5's __cpu_up waits 1 s of guest time for the second CPU, which
    /// calibrates its delay loop first unless lpj= presets it: on a loaded
    /// host that outlasted the wait and the boot hung before the console in
    /// about a third of runs (the profile's comment says how it was found).
    #[test]
    fn the_3_5_kernel_skips_the_second_cpus_delay_calibration() {
        let p = Profile::load("tiny4412-3.5", &configs()).unwrap();
        let lpj: Vec<&String> = p.qemu.cmdline.iter().filter(|a| a.starts_with("lpj=")).collect();
        assert_eq!(lpj.len(), 1, "{:?}", p.qemu.cmdline);
        let value: u64 = lpj[0]["lpj=".len()..].parse().unwrap();
        assert!(value > 0, "{value}");
    }

    /// The board's kernel under QEMU keeps every value of the board's
    /// defconfig that a module can see (its structures' layout, its
    /// vermagic, its timing): its fragment may only change what QEMU's
    /// machine needs.
    #[test]
    fn the_3_5_fragment_leaves_what_a_module_sees_as_the_board_has_it() {
        let p = Profile::load("tiny4412-3.5", &configs()).unwrap();
        let requests = crate::kconfig::read_fragments(&p.fragment_paths(&configs())).unwrap();
        let visible = [
            "CONFIG_HZ",
            "CONFIG_HZ_100",
            "CONFIG_PREEMPT",
            "CONFIG_PREEMPT_NONE",
            "CONFIG_NR_CPUS",
            "CONFIG_SMP",
            "CONFIG_KEYS",
            "CONFIG_SLAB",
            "CONFIG_SLUB",
            "CONFIG_MODVERSIONS",
            "CONFIG_LOCALVERSION",
            "CONFIG_AEABI",
            "CONFIG_DEBUG_SPINLOCK",
            "CONFIG_DEBUG_LOCK_ALLOC",
            "CONFIG_MODULE_UNLOAD",
        ];
        for r in &requests {
            if r.symbol == "CONFIG_MODULE_UNLOAD" && r.value == crate::kconfig::Value::Set("y".into()) {
                continue; // the board's value, requested so that it is checked
            }
            assert!(
                !visible.contains(&r.symbol.as_str()),
                "{}: {} changes what a module sees on the board",
                r.origin,
                r.symbol
            );
        }
        assert_eq!((p.qemu.dtb.as_deref(), p.kernel_api), (None, Some(crate::api::Api::Linux35)));
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let err = Profile::load("tiny9999", &configs()).unwrap_err().to_string();
        assert!(err.contains("unknown profile \"tiny9999\""), "{err}");
        assert!(err.contains("exynos4210"), "{err}");
    }

    #[test]
    fn malformed_toml_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, "description = \"x\"\narch = \n").unwrap();
        let err = Profile::load(p.to_str().unwrap(), &configs()).unwrap_err().to_string();
        assert!(err.contains("bad.toml: invalid profile"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn dtb_must_be_built() {
        let text = std::fs::read_to_string(configs().join("profiles/exynos4210.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nodtb.toml");
        std::fs::write(&p, text.replace("dtb = \"samsung/exynos4210-smdkv310.dtb\"", "dtb = \"x.dtb\"")).unwrap();
        let err = Profile::load(p.to_str().unwrap(), &configs()).unwrap_err().to_string();
        assert!(err.contains("qemu.dtb \"x.dtb\" is not among kernel.dtbs"), "{err}");
    }
}
