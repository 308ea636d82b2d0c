//! The kernel: find its source, configure it from the profile, build it once
//! out of tree into the cache, and hand out the artifacts.
//!
//! The cache key hashes the source identity, the profile's config inputs
//! (defconfig name and fragment bytes, which determine the merged config for
//! a given source) and the cross compiler's version. A warm run computes the
//! key, finds the published directory and runs no make at all.

use crate::cache;
use crate::kconfig;
use crate::process;
use crate::profile::Profile;
use crate::progress::{self, BuildStats, Progress};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Goes into every kernel cache key: the harness's own version, and a
/// recipe number to bump when the build steps change in a way the key
/// cannot see. (Not a hash of the harness's source: an unrelated edit must
/// not cost a 7-minute rebuild.)
pub const RECIPE: &str = concat!("kernel-recipe-2 harness-", env!("CARGO_PKG_VERSION"));

/// Where the kernel source comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    Tarball(PathBuf),
    Tree(PathBuf),
}

impl KernelSource {
    /// Resolves `--kernel-src`, or the newest Debian `linux-source-*` tarball.
    pub fn resolve(arg: Option<&Path>) -> Result<KernelSource> {
        let Some(p) = arg else {
            return default_tarball().context(
                "no kernel source given and no /usr/src/linux-source-*.tar.xz found: \
                 install the profile's kernel.source_package (apt-get install linux-source-VERSION) \
                 or pass --kernel-src DIR|TARBALL",
            );
        };
        let p = p.canonicalize().with_context(|| format!("--kernel-src {}: no such file or directory", p.display()))?;
        if p.is_dir() {
            let ok = p.join("Makefile").is_file() && p.join("Kconfig").is_file() && p.join("arch").is_dir();
            if !ok {
                bail!("--kernel-src {}: not a kernel tree (no top-level Makefile, Kconfig and arch/)", p.display());
            }
            Ok(KernelSource::Tree(p))
        } else if is_tarball(&p) {
            Ok(KernelSource::Tarball(p))
        } else {
            bail!(
                "--kernel-src {}: expected a kernel tree or a .tar, .tar.xz, .tar.gz or .tar.bz2 tarball",
                p.display()
            )
        }
    }

    /// A string that changes whenever the source does.
    fn identity(&self) -> Result<String> {
        match self {
            KernelSource::Tarball(p) => {
                let m = p.metadata().with_context(|| format!("reading {}", p.display()))?;
                let mtime = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
                Ok(format!("tarball:{}:{}:{}", p.display(), m.len(), mtime.as_nanos()))
            }
            KernelSource::Tree(p) => Ok(format!("tree:{}:{}", p.display(), tree_fingerprint(p)?)),
        }
    }
}

fn is_tarball(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    [".tar", ".tar.xz", ".tar.gz", ".tgz", ".tar.bz2"].iter().any(|s| n.ends_with(s))
}

/// Debian installs `/usr/src/linux-source-X.Y.tar.xz`; Ubuntu
/// `/usr/src/linux-source-X.Y.Z/linux-source-X.Y.Z.tar.bz2`. Take the newest.
fn default_tarball() -> Option<KernelSource> {
    newest_source_tarball(Path::new("/usr/src")).map(KernelSource::Tarball)
}

/// The newest `linux-source-*` tarball under `usr_src`, in either layout.
fn newest_source_tarball(usr_src: &Path) -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        let v = name.strip_prefix("linux-source-")?;
        let v = [".tar.xz", ".tar.bz2"].iter().find_map(|s| v.strip_suffix(s)).unwrap_or(v);
        Some(v.split(['.', '-']).map(|x| x.parse().unwrap_or(0)).collect())
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(usr_src).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(key) = version(&name) else { continue };
        let path = e.path();
        if path.is_file() && (name.ends_with(".tar.xz") || name.ends_with(".tar.bz2")) {
            found.push((key, path));
        } else if path.is_dir() {
            for ext in [".tar.bz2", ".tar.xz"] {
                let inner = path.join(format!("{name}{ext}"));
                if inner.is_file() {
                    found.push((key.clone(), inner));
                }
            }
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Size and mtime of every file in a tree: cheap next to a build, and any
/// edit changes it, so an edited tree gets a fresh build.
fn tree_fingerprint(root: &Path) -> Result<String> {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let name = e.file_name();
            if name == ".git" {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if let Ok(m) = e.metadata() {
                let mtime = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
                entries.push(format!("{}:{}:{}", e.path().display(), m.len(), mtime.as_nanos()));
            }
        }
    }
    entries.sort();
    Ok(cache::digest(entries))
}

/// A finished, published kernel build.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The `O=` directory: what `make -C` takes to build modules.
    pub build_dir: PathBuf,
    pub source_dir: PathBuf,
    pub release: String,
    pub arch: String,
    pub cross_compile: String,
    /// The profile's `make_vars`: a module's make needs them too (the same
    /// compiler flags, or its vermagic and ABI differ from the kernel's).
    pub make_vars: Vec<String>,
    /// Whether this call built it (false: it came from the cache).
    pub built_now: bool,
}

impl Kernel {
    pub fn image(&self, profile: &Profile) -> PathBuf {
        self.build_dir.join("arch").join(&self.arch).join("boot").join(&profile.kernel.image)
    }
    pub fn dtb(&self, dtb: &str) -> PathBuf {
        self.build_dir.join("arch").join(&self.arch).join("boot/dts").join(dtb)
    }
}

/// Options that change which kernel is built.
pub struct BuildOptions<'a> {
    pub source: &'a KernelSource,
    pub cross_compile: &'a str,
    pub configs_dir: &'a Path,
    pub jobs: usize,
}

/// The cache key of the profile's kernel for these options.
pub fn cache_key(profile: &Profile, opts: &BuildOptions) -> Result<String> {
    let gcc = format!("{}gcc", opts.cross_compile);
    let compiler =
        process::output(&gcc, &["--version"]).with_context(|| format!("probing the cross compiler {gcc}"))?;
    let compiler = compiler.lines().next().unwrap_or_default().to_string();
    let mut parts = vec![
        RECIPE.to_string(),
        opts.source.identity()?,
        profile.arch.clone(),
        profile.kernel.defconfig.clone(),
        profile.kernel.image.clone(),
        profile.kernel.dtbs.join(","),
        compiler,
    ];
    for f in profile.fragment_paths(opts.configs_dir) {
        parts.push(std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?);
    }
    // Only where a profile has them, so that no other profile's key moves.
    if !profile.kernel.make_vars.is_empty() {
        parts.push(profile.kernel.make_vars.join("\n"));
    }
    for (_, text) in crate::patches::series(profile, opts.configs_dir)? {
        parts.push(text);
    }
    Ok(cache::digest(&parts))
}

/// Returns the profile's kernel, building it if the cache does not have it.
pub fn get(profile: &Profile, opts: &BuildOptions) -> Result<Kernel> {
    let requests = kconfig::read_fragments(&profile.fragment_paths(opts.configs_dir))?;
    let key = cache_key(profile, opts)?;
    let root = cache::root();
    let entry = root.join("kernels").join(format!("{}-{key}", profile.name));

    let source_dir = prepared_tree(profile, opts, &root)?;
    let logs = cache::logs_dir(&entry);
    let (build_dir, built_now) =
        cache::get_or_build(&entry, &format!("building the {} kernel", profile.name), |tmp| {
            build(profile, opts, &source_dir, &requests, tmp, &logs)
        })?;
    cache::touch(&build_dir);
    let release = std::fs::read_to_string(build_dir.join("include/config/kernel.release"))
        .with_context(|| format!("reading the kernel release from {}", build_dir.display()))?
        .trim()
        .to_string();
    Ok(Kernel {
        build_dir,
        source_dir,
        release,
        arch: profile.arch.clone(),
        cross_compile: opts.cross_compile.to_string(),
        make_vars: profile.kernel.make_vars.clone(),
        built_now,
    })
}

/// The source `--kernel-src` names (`arg`), or, for a profile whose source
/// the user must give (FriendlyARM's 3.5: `kernel.source`), the one its
/// environment variable names; none is an error for such a profile, which
/// says how to get one. `None`: the default (Debian's) source.
pub fn profile_source(profile: &Profile, arg: Option<&Path>) -> Result<Option<KernelSource>> {
    let spec = profile.kernel.source.as_ref();
    let from_env = spec.and_then(|s| std::env::var_os(&s.env).filter(|v| !v.is_empty()).map(|v| (s, PathBuf::from(v))));
    let source = match (arg, from_env) {
        (Some(p), _) => KernelSource::resolve(Some(p))?,
        (None, Some((s, p))) => KernelSource::resolve(Some(&p)).with_context(|| {
            format!(
                "${} names the {} profile's kernel \
            source",
                s.env, profile.name
            )
        })?,
        (None, None) => match spec {
            None => return Ok(None),
            Some(s) => bail!(
                "the {} profile builds Linux {} from your own copy of its source, and none was given: pass \
                    --kernel-src DIR|TARBALL or set {}=DIR|TARBALL. {}",
                profile.name,
                s.version,
                s.env,
                s.hint
            ),
        },
    };
    if let (Some(s), KernelSource::Tree(t)) = (spec, &source) {
        check_version(t, &s.version, &profile.name)?;
    }
    Ok(Some(source))
}

/// Fails unless `tree` is Linux `version`, naming what it is.
fn check_version(tree: &Path, version: &str, profile: &str) -> Result<()> {
    let found = crate::patches::tree_version(tree)?;
    if found != version {
        bail!("{}: this is Linux {found}, and the {profile} profile needs a Linux {version} tree", tree.display());
    }
    Ok(())
}

/// The tree the profile's kernel is built from: [`source_tree`], or, for a
/// profile with a patch series, a patched copy of it (checked to be the
/// version the profile names before it is patched).
fn prepared_tree(profile: &Profile, opts: &BuildOptions, root: &Path) -> Result<PathBuf> {
    let series = crate::patches::series(profile, opts.configs_dir)?;
    if series.is_empty() {
        let tree = source_tree(opts.source, root)?;
        if let Some(s) = &profile.kernel.source {
            check_version(&tree, &s.version, &profile.name)?;
        }
        return Ok(tree);
    }
    let version = profile.kernel.source.as_ref().map(|s| s.version.clone());
    crate::patches::patched_tree(&opts.source.identity()?, &series, root, |dest, logs| {
        match opts.source {
            KernelSource::Tarball(t) => {
                let tmp = dest.parent().context("a patched tree has a parent")?;
                extract(t, tmp, logs)?;
            }
            KernelSource::Tree(t) => crate::patches::copy_tree(t, dest, logs)?,
        }
        match &version {
            Some(v) => check_version(dest, v, &profile.name),
            None => Ok(()),
        }
    })
}

/// The source tree to build from: the tree itself, or the tarball extracted
/// once into the cache.
fn source_tree(source: &KernelSource, root: &Path) -> Result<PathBuf> {
    let tarball = match source {
        KernelSource::Tree(p) => return Ok(p.clone()),
        KernelSource::Tarball(p) => p,
    };
    let entry = root.join("sources").join(format!("{}-{}", stem(tarball), cache::digest([source.identity()?])));
    // The log is outside the temporary, which a failed extraction removes.
    let logs = cache::logs_dir_under(root, &entry);
    let (dir, _) = cache::get_or_build(&entry, "extracting the kernel source", |tmp| extract(tarball, tmp, &logs))?;
    Ok(dir.join("linux"))
}

fn stem(path: &Path) -> String {
    path.file_name().unwrap_or_default().to_string_lossy().replace(".tar", "").replace(['.'], "_")
}

/// Extracts `tarball` into `tmp/linux`, with its log in `logs`.
fn extract(tarball: &Path, tmp: &Path, logs: &Path) -> Result<()> {
    eprintln!("harness: extracting {}", tarball.display());
    std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = logs.join("extract.log");
    let mut args: Vec<OsString> = vec!["-xf".into(), tarball.into(), "-C".into(), tmp.into(), "--no-same-owner".into()];
    // A third of the tree is data no build reads: AMD GPU register
    // headers (454 MB) and the documentation below Documentation/
    // (whose Kconfig, at its top, is sourced). The write of the rest is
    // what an extraction spends its time on, with the decompression.
    args.extend(
        ["--exclude=*/drivers/gpu/drm/amd/include/asic_reg", "--exclude=*/Documentation/*/*"].map(OsString::from),
    );
    // Debian's tarball is xz in 62 blocks, which xz 5.4 decompresses on
    // every core.
    let envs = [("XZ_OPT", OsString::from("-T0"))];
    process::Logged::new("tar", &args, &log, Duration::from_secs(20 * 60)).envs(&envs).run(|_| {})?;
    let top = top_level_dir(tmp)?;
    if !(top.join("Makefile").is_file() && top.join("Kconfig").is_file()) {
        bail!("{}: not a kernel source tarball (no top-level Makefile and Kconfig inside)", tarball.display());
    }
    std::fs::rename(&top, tmp.join("linux")).context("naming the extracted tree")?;
    Ok(())
}

/// The one directory a kernel tarball unpacks into.
fn top_level_dir(dir: &Path) -> Result<PathBuf> {
    let dirs: Vec<PathBuf> = std::fs::read_dir(dir)?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("expected one top-level directory in the tarball, found {}", dirs.len()),
    }
}

/// Writes the profile's `.config` into `out` (a fresh directory) without
/// building: `harness kernel --config-only`. What a profile that is built
/// only when asked (tiny4412, for board-image) would get is checked so,
/// every requested symbol included, without its 12-minute build.
pub fn configure_only(profile: &Profile, opts: &BuildOptions, out: &Path) -> Result<PathBuf> {
    let requests = kconfig::read_fragments(&profile.fragment_paths(opts.configs_dir))?;
    let src = prepared_tree(profile, opts, &cache::root())?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    configure(profile, opts, &src, &requests, out, &out.join("logs"))?;
    Ok(out.join(".config"))
}

/// `make ARGS` in the source tree, building into `out` for the profile.
fn make_args(profile: &Profile, opts: &BuildOptions, src: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "-C".into(),
        src.into(),
        format!("O={}", out.display()).into(),
        format!("ARCH={}", profile.arch).into(),
        format!("CROSS_COMPILE={}", opts.cross_compile).into(),
    ];
    a.extend(profile.kernel.make_vars.iter().map(OsString::from));
    a.extend(extra.iter().map(OsString::from));
    a
}

/// Reproducible-ish builds: the same inputs give the same version string.
fn make_envs() -> [(&'static str, OsString); 2] {
    [("KBUILD_BUILD_USER", "harness".into()), ("KBUILD_BUILD_HOST", "harness".into())]
}

/// The defconfig, the fragments merged on it, `olddefconfig`, and the check
/// that every requested symbol survived, into `out/.config`.
fn configure(
    profile: &Profile,
    opts: &BuildOptions,
    src: &Path,
    requests: &[kconfig::Request],
    out: &Path,
    logs: &Path,
) -> Result<()> {
    let envs = make_envs();
    let short = Duration::from_secs(10 * 60);
    // Outside `out`, which is removed if the build fails: every log path an
    // error names must exist.
    std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;

    eprintln!(
        "harness: configuring the {} kernel ({} + {})",
        profile.name,
        profile.kernel.defconfig,
        profile.kernel.fragments.join(" + ")
    );
    // An old tree is one whose kconfig Makefile has no `olddefconfig` (3.5's);
    // a tree without that Makefile (the suite's stand-in) is taken as new.
    let kconfig_makefile = std::fs::read_to_string(src.join("scripts/kconfig/Makefile"));
    if kconfig_makefile.as_deref().map_or(true, |m| m.contains("olddefconfig")) {
        let defconfig = make_args(profile, opts, src, out, &[&profile.kernel.defconfig]);
        process::Logged::new("make", &defconfig, &logs.join("defconfig.log"), short).envs(&envs).run(|_| {})?;
        let mut merge: Vec<OsString> = vec!["-m".into(), "-O".into(), out.into(), out.join(".config").into()];
        merge.extend(profile.fragment_paths(opts.configs_dir).into_iter().map(OsString::from));
        let script = src.join("scripts/kconfig/merge_config.sh");
        let merge_envs = [("ARCH", profile.arch.clone().into()), ("CROSS_COMPILE", opts.cross_compile.into())];
        process::Logged::new(&script.to_string_lossy(), &merge, &logs.join("merge_config.log"), short)
            .dir(src)
            .envs(&merge_envs)
            .run(|_| {})?;
        let olddefconfig = make_args(profile, opts, src, out, &["olddefconfig"]);
        process::Logged::new("make", &olddefconfig, &logs.join("olddefconfig.log"), short).envs(&envs).run(|_| {})?;
    } else {
        configure_old_tree(profile, opts, src, out, logs)?;
    }
    kconfig::verify(requests, &out.join(".config"))
        .with_context(|| format!("configuring the {} kernel (profile {})", profile.name, profile.path.display()))
}

/// An old tree's configuration (Linux 3.5 has no `olddefconfig`, and its
/// merge_config.sh writes into the source tree): the defconfig, from
/// `arch/$ARCH/configs/` or, as FriendlyARM ships its board's, the tree's
/// top, with the fragments merged here, then `alldefconfig` on that
/// (`KCONFIG_ALLCONFIG`), which keeps every value whose dependencies hold
/// and gives the rest their defaults, as `olddefconfig` does.
fn configure_old_tree(profile: &Profile, opts: &BuildOptions, src: &Path, out: &Path, logs: &Path) -> Result<()> {
    let name = &profile.kernel.defconfig;
    let path = [src.join("arch").join(&profile.arch).join("configs").join(name), src.join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{}: no {name} in arch/{}/configs/ or at the top of the tree", src.display(), profile.arch)
        })?;
    let base = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let fragments: Vec<String> = profile
        .fragment_paths(opts.configs_dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display())))
        .collect::<Result<_>>()?;
    let all = out.join("harness-allconfig");
    std::fs::write(&all, kconfig::merge(&base, &fragments)).with_context(|| format!("writing {}", all.display()))?;
    let allconfig = format!("KCONFIG_ALLCONFIG={}", all.display());
    let args = make_args(profile, opts, src, out, &[&allconfig, "alldefconfig"]);
    process::Logged::new("make", &args, &logs.join("alldefconfig.log"), Duration::from_secs(10 * 60))
        .envs(&make_envs())
        .run(|_| {})
}

fn build(
    profile: &Profile,
    opts: &BuildOptions,
    src: &Path,
    requests: &[kconfig::Request],
    out: &Path,
    logs: &Path,
) -> Result<()> {
    let started = Instant::now();
    configure(profile, opts, src, requests, out, logs)?;
    let envs = make_envs();

    let mut targets: Vec<String> = vec![profile.kernel.image.clone(), "modules".into()];
    targets.extend(profile.kernel.dtbs.iter().cloned());
    let config =
        std::fs::read_to_string(out.join(".config")).with_context(|| format!("reading {}/.config", out.display()))?;
    if config.lines().any(|l| l == "CONFIG_GDB_SCRIPTS=y") {
        // The kernel's gdb helpers (vmlinux-gdb.py), which `make all`
        // builds when the config asks for them and the targets above do not.
        targets.push("scripts_gdb".into());
    }
    let jobs = format!("-j{}", opts.jobs);
    let mut args: Vec<&str> = vec![&jobs];
    args.extend(targets.iter().map(String::as_str));
    let by_config =
        BuildStats::path(&cache::root(), &format!("{}-{}", profile.name, cache::digest([config.as_bytes()])));
    let by_profile = BuildStats::path(&cache::root(), &profile.name);
    let objects = |p: &Path| BuildStats::read(p).map(|s| s.objects);
    let total = progress::choose_total(objects(&by_config), profile.kernel.objects, objects(&by_profile));
    let progress = Progress::new(&profile.name, total);
    process::Logged::new(
        "make",
        &make_args(profile, opts, src, out, &args),
        &logs.join("build.log"),
        cache::BUILD_DEADLINE,
    )
    .envs(&envs)
    .run(|l| progress.line(l))
    .with_context(|| format!("building the {} kernel", profile.name))?;
    // Only for the next build's progress line: a failure to keep them is said, not fatal.
    let stats = progress.finish();
    for path in [&by_config, &by_profile] {
        if let Err(e) = stats.write(path) {
            eprintln!("harness: warning: {e:#}");
        }
    }
    std::fs::write(
        out.join("harness-kernel.txt"),
        format!("profile {}\nbuilt in {:.0} s\n", profile.name, started.elapsed().as_secs_f64()),
    )
    .context("writing the build stamp")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_and_ubuntu_source_layouts_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(newest_source_tarball(d), None);
        std::fs::write(d.join("linux-source-6.1.tar.xz"), "").unwrap();
        std::fs::write(d.join("linux-source-6.12.tar.xz"), "").unwrap();
        assert_eq!(newest_source_tarball(d), Some(d.join("linux-source-6.12.tar.xz")), "6.12 is newer than 6.1");
        std::fs::create_dir_all(d.join("linux-source-6.14.0")).unwrap();
        std::fs::write(d.join("linux-source-6.14.0/linux-source-6.14.0.tar.bz2"), "").unwrap();
        assert_eq!(newest_source_tarball(d), Some(d.join("linux-source-6.14.0/linux-source-6.14.0.tar.bz2")));
    }

    #[test]
    fn bad_kernel_src_paths_are_explained() {
        let err = KernelSource::resolve(Some(Path::new("/no/such/linux"))).unwrap_err().to_string();
        assert!(err.contains("--kernel-src /no/such/linux: no such file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = KernelSource::resolve(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("not a kernel tree"), "{err}");
        let f = dir.path().join("notes.txt");
        std::fs::write(&f, "x").unwrap();
        let err = KernelSource::resolve(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("expected a kernel tree or a .tar"), "{err}");
    }

    #[test]
    fn a_tarball_that_is_not_a_kernel_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("junk-1.0")).unwrap();
        std::fs::write(dir.path().join("junk-1.0/README"), "not linux").unwrap();
        let tar = dir.path().join("junk-1.0.tar.gz");
        let st = std::process::Command::new("tar")
            .args(["-czf", tar.to_str().unwrap(), "-C", dir.path().to_str().unwrap(), "junk-1.0"])
            .status()
            .unwrap();
        assert!(st.success());
        let src = KernelSource::resolve(Some(&tar)).unwrap();
        let cache = dir.path().join("cache");
        let err = source_tree(&src, &cache).unwrap_err().to_string();
        assert!(err.contains("not a kernel source tarball"), "{err}");
        // Nothing half-made is left to be mistaken for an extracted tree.
        let left: Vec<_> = std::fs::read_dir(cache.join("sources")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "{left:?}");
    }

    #[test]
    fn a_failed_extraction_names_a_log_that_is_still_there() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("linux-source-9.9.tar.xz");
        std::fs::write(&tar, "not xz data").unwrap();
        let src = KernelSource::resolve(Some(&tar)).unwrap();
        let err = format!("{:#}", source_tree(&src, &dir.path().join("cache")).unwrap_err());
        // The temporary the extraction ran in is gone; the log it names is not.
        let log = err
            .lines()
            .find_map(|l| l.trim().strip_prefix("full log: "))
            .unwrap_or_else(|| panic!("no log named:\n{err}"));
        assert!(Path::new(log).is_file(), "{log} does not exist:\n{err}");
        assert!(std::fs::read_to_string(log).unwrap().contains("xz"), "{log}");
    }

    #[test]
    fn tree_fingerprint_changes_when_a_file_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), "1").unwrap();
        let before = tree_fingerprint(dir.path()).unwrap();
        assert_eq!(before, tree_fingerprint(dir.path()).unwrap());
        std::fs::write(dir.path().join("a.c"), "22").unwrap();
        assert_ne!(before, tree_fingerprint(dir.path()).unwrap());
    }
}
