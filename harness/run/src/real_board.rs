//! A real board: `configs/boards/NAME.toml`, and the image folder that
//! `board-image` assembles for it from the QEMU profile's cached kernel.

use crate::kernel::Kernel;
use crate::module::Module;
use crate::prepare::Prepared;
use crate::process;
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    #[serde(skip)]
    pub name: String,
    pub description: String,
    /// The profile whose kernel the board runs.
    pub kernel_profile: String,
    /// The board's device tree, relative to `arch/$ARCH/boot/dts/`.
    pub dtb: String,
    pub load_address: String,
    pub kernel_staging_address: String,
    pub ramdisk_staging_address: String,
    pub console: String,
}

impl Board {
    /// The board meant when none is named: the only one in
    /// `configs_dir/boards/` (today's `tiny4412.toml`); with several, the
    /// user names one.
    pub fn default_name(configs_dir: &Path) -> Result<String> {
        let dir = configs_dir.join("boards");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
            .collect();
        names.sort();
        match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("no board in {}: add one (configs/boards/tiny4412.toml comments its fields)", dir.display()),
            many => bail!("several boards in {}: pass --board with one of {}", dir.display(), many.join(", ")),
        }
    }

    /// The board `name` and the profile its kernel comes from: its
    /// `kernel_profile`, or `profile` (board-image --profile: the emulated
    /// board's smaller kernel, which boots the initramfs as well).
    pub fn load(name: &str, profile: Option<&str>, configs_dir: &Path) -> Result<(Board, Profile)> {
        let path = configs_dir.join("boards").join(format!("{name}.toml"));
        if !path.is_file() {
            bail!("unknown board {name:?}: boards are the .toml files in {}", configs_dir.join("boards").display());
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut board: Board = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: invalid board: {}", path.display(), e.to_string().trim_end()))?;
        board.name = name.to_string();
        if let Some(p) = profile {
            // This image's kernel: what BOOT.txt names.
            board.kernel_profile = p.to_string();
        }
        let profile = Profile::load(&board.kernel_profile, configs_dir)?;
        if !profile.kernel.dtbs.contains(&board.dtb) {
            bail!(
                "{}: dtb {:?} is not built by profile {} (add it to the profile's kernel.dtbs, or use the board's \
                    kernel_profile)",
                path.display(),
                board.dtb,
                profile.name
            );
        }
        for a in [&board.load_address, &board.kernel_staging_address, &board.ramdisk_staging_address] {
            parse_address(a).with_context(|| format!("{}: bad address {a:?}", path.display()))?;
        }
        Ok((board, profile))
    }
}

fn parse_address(a: &str) -> Result<u64> {
    let hex = a.strip_prefix("0x").context("addresses are written 0x…")?;
    u64::from_str_radix(hex, 16).context("not a hexadecimal address")
}

/// What `board-image` produced.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub boot_text: String,
    pub kernel_release: String,
}

/// Assembles the board's files in `out` from a prepared run (the board
/// profile's kernel, the modules, the plan), with the harness's initramfs
/// as a U-Boot ramdisk when `initramfs`.
pub fn build_image(board: &Board, p: &Prepared, out: &Path, initramfs: bool) -> Result<Image> {
    build_image_with(board, p, out, initramfs.then(crate::prepare::new_nonce).as_deref())
}

/// `build_image`, with the initramfs (uInitrd) when given the nonce its
/// steps mark with: a LAVA job (lava.rs) knows it, to judge the job's log.
pub fn build_image_with(board: &Board, p: &Prepared, out: &Path, nonce: Option<&str>) -> Result<Image> {
    let initramfs = nonce.is_some();
    let k = &p.kernel;
    let profile = &p.profile;
    require_config(&profile.name, &k.build_dir, initramfs)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let work = tempfile::tempdir_in(out).context("creating a work directory")?;
    let mut files = Vec::new();
    let put = |name: &str, from: &Path| -> Result<PathBuf> {
        let to = out.join(name);
        std::fs::copy(from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(to)
    };
    let zimage = put("zImage", &k.image(profile))?;
    files.push(zimage.clone());
    let dtb_name = Path::new(&board.dtb).file_name().context("dtb has no file name")?.to_string_lossy().into_owned();
    let dtb = put(&dtb_name, &k.dtb(&board.dtb))?;
    files.push(dtb.clone());

    // The old FriendlyARM U-Boot passes no device tree: the kernel finds it
    // appended to itself (CONFIG_ARM_APPENDED_DTB).
    let mut appended = std::fs::read(&zimage).context("reading zImage")?;
    appended.extend(std::fs::read(&dtb).context("reading the dtb")?);
    let zimage_dtb = work.path().join("zImage-dtb");
    std::fs::write(&zimage_dtb, &appended).context("writing zImage-dtb")?;
    let zimage_dtb = put("zImage-dtb", &zimage_dtb)?;
    files.push(zimage_dtb.clone());

    let uimage = out.join("uImage");
    mkimage(
        &[
            "-A",
            "arm",
            "-O",
            "linux",
            "-T",
            "kernel",
            "-C",
            "none",
            "-a",
            &board.load_address,
            "-e",
            &board.load_address,
            "-n",
            &format!("Linux {} {}", k.release, board.name),
        ],
        &zimage_dtb,
        &uimage,
        work.path(),
    )?;
    files.push(uimage);

    let unit = p.single()?;
    for m in &unit.modules {
        files.push(put(&format!("{}.ko", m.name), &m.ko)?);
    }
    for prog in &unit.programs {
        files.push(put(&prog.name, &prog.path)?);
    }

    if let Some(nonce) = nonce {
        files.push(write_uinitrd(p, out, work.path(), nonce)?);
    }
    let boot_text = boot_commands(board, k, &unit.modules, initramfs);
    let readme = out.join("BOOT.txt");
    std::fs::write(&readme, &boot_text).with_context(|| format!("writing {}", readme.display()))?;
    files.push(readme);
    Ok(Image { dir: out.to_path_buf(), files, boot_text, kernel_release: k.release.clone() })
}

/// What the board's kernel must have: an appended dtb (the board's U-Boot
/// passes none), and an MMC driver unless the root is an initramfs.
fn require_config(profile: &str, build_dir: &Path, initramfs: bool) -> Result<()> {
    let config = std::fs::read_to_string(build_dir.join(".config")).context("reading the kernel .config")?;
    if !config.lines().any(|l| l == "CONFIG_ARM_APPENDED_DTB=y") {
        bail!(
            "the {} kernel lacks CONFIG_ARM_APPENDED_DTB, which the board's U-Boot (no device tree support) needs",
            profile
        );
    }
    if !initramfs && !config.lines().any(|l| l == "CONFIG_MMC=y") {
        bail!(
            "the {} kernel has no MMC driver, so it cannot mount the SD card's root: add --initramfs, or drop \
                --profile for the board's own kernel",
            profile
        );
    }
    Ok(())
}

/// The harness's initramfs for the board's run, as a U-Boot ramdisk
/// (`uInitrd` in `out`).
fn write_uinitrd(p: &Prepared, out: &Path, work: &Path, nonce: &str) -> Result<PathBuf> {
    let cpio = work.join("initramfs.cpio");
    let programs = p.all_programs();
    let modules = p.guest_modules();
    let guest = crate::guest::rootfs::Guest {
        modules: &modules,
        programs: &programs,
        plan: &p.single()?.plan,
        nonce,
        loader: None,
        census: None,
    };
    crate::guest::rootfs::write_initramfs(&crate::repo_root().join("rootfs"), &crate::busybox::get()?, &guest, &cpio)?;
    let uinitrd = out.join("uInitrd");
    mkimage(
        &["-A", "arm", "-O", "linux", "-T", "ramdisk", "-C", "none", "-a", "0", "-e", "0", "-n", "harness initramfs"],
        &cpio,
        &uinitrd,
        work,
    )?;
    Ok(uinitrd)
}

fn mkimage(args: &[&str], input: &Path, output: &Path, log_dir: &Path) -> Result<()> {
    let mut a: Vec<OsString> = args.iter().map(OsString::from).collect();
    a.extend(["-d".into(), input.into(), output.into()]);
    process::Logged::new("mkimage", &a, &log_dir.join("mkimage.log"), Duration::from_secs(60)).run(|_| {})
}

/// The U-Boot commands to boot the image, for the human at the bench.
pub fn boot_commands(board: &Board, k: &Kernel, modules: &[Module], initramfs: bool) -> String {
    let (kaddr, raddr) = (&board.kernel_staging_address, &board.ramdisk_staging_address);
    let root = if initramfs { "rdinit=/init" } else { "root=/dev/mmcblk0p2 rootwait" };
    let bootm = if initramfs { format!("bootm {kaddr} {raddr}") } else { format!("bootm {kaddr}") };
    let mut s = String::new();
    let _ = writeln!(s, "{} — Linux {} ({} kernel profile)", board.description, k.release, board.kernel_profile);
    let _ = writeln!(
        s,
        "\nFiles: zImage, {}, zImage-dtb (dtb appended), uImage (zImage-dtb for U-Boot, load/entry {}),",
        Path::new(&board.dtb).file_name().unwrap_or_default().to_string_lossy(),
        board.load_address
    );
    let kos: Vec<String> = modules.iter().map(|m| format!("{}.ko (vermagic {})", m.name, m.vermagic.trim())).collect();
    let _ =
        writeln!(s, "       {}{}", kos.join(", "), if initramfs { ", uInitrd (the harness initramfs)" } else { "" });
    let _ = writeln!(s, "\nFrom the first FAT partition of the SD card (copy the files there), at the U-Boot prompt:");
    let _ = writeln!(s, "  setenv bootargs console={} {root}", board.console);
    let _ = writeln!(s, "  fatload mmc 0:1 {kaddr} uImage");
    if initramfs {
        let _ = writeln!(s, "  fatload mmc 0:1 {raddr} uInitrd");
    }
    let _ = writeln!(s, "  {bootm}");
    let _ = writeln!(s, "\nOver TFTP (a U-Boot with networking; set your addresses):");
    let _ = writeln!(s, "  setenv serverip 192.168.1.10; setenv ipaddr 192.168.1.230");
    let _ = writeln!(s, "  setenv bootargs console={} {root}", board.console);
    let _ = writeln!(s, "  tftp {kaddr} uImage");
    if initramfs {
        let _ = writeln!(s, "  tftp {raddr} uInitrd");
    }
    let _ = writeln!(s, "  {bootm}");
    let insmod: Vec<String> = modules.iter().map(|m| format!("insmod {}.ko", m.name)).collect();
    let rmmod: Vec<String> = modules.iter().rev().map(|m| format!("rmmod {}", m.name)).collect();
    let _ = writeln!(s, "\nThen load the module on the board: {}; {}", insmod.join("; "), rmmod.join("; "));
    s
}

/// The `model` and `compatible` strings of a flattened device tree.
pub fn dtb_identity(dtb: &Path) -> Result<(String, Vec<String>)> {
    let data = std::fs::read(dtb).with_context(|| format!("reading {}", dtb.display()))?;
    let fdt = fdt::Fdt::new(&data).map_err(|e| anyhow::anyhow!("{}: not a device tree blob: {e:?}", dtb.display()))?;
    let root = fdt.root();
    let model = root.model().to_string();
    let compatible = root.compatible().all().map(str::to_string).collect();
    Ok((model, compatible))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny4412_board_loads_on_its_own_kernel() {
        let (b, p) = Board::load("tiny4412", None, &crate::repo_root().join("configs")).unwrap();
        assert_eq!(p.name, "tiny4412");
        assert!(
            !p.kernel.fragments.iter().any(|f| f == "emulated.config"),
            "the real board keeps MMC, USB and Ethernet"
        );
        assert_eq!(b.dtb, "samsung/exynos4412-tiny4412.dtb");
        assert_eq!(parse_address(&b.load_address).unwrap(), 0x4000_8000);
        let err = Board::load("tiny9999", None, &crate::repo_root().join("configs")).unwrap_err().to_string();
        assert!(err.contains("unknown board"), "{err}");
    }

    #[test]
    fn another_profile_serves_the_board_only_if_it_builds_the_boards_dtb() {
        let configs = crate::repo_root().join("configs");
        let (_, p) = Board::load("tiny4412", Some("exynos4210"), &configs).unwrap();
        assert_eq!(p.name, "exynos4210");
        let err = format!("{:#}", Board::load("tiny4412", Some("vexpress-a9"), &configs).unwrap_err());
        assert!(err.contains("exynos4412-tiny4412.dtb") && err.contains("not built by profile vexpress-a9"), "{err}");
    }

    #[test]
    fn boot_commands_name_the_images_and_addresses() {
        let (b, _) = Board::load("tiny4412", None, &crate::repo_root().join("configs")).unwrap();
        let k = Kernel {
            build_dir: "/k".into(),
            source_dir: "/s".into(),
            release: "6.12.117".into(),
            arch: "arm".into(),
            cross_compile: "arm-linux-gnueabihf-".into(),
            make_vars: Vec::new(),
            built_now: false,
        };
        let m = [Module {
            ko: "/m.ko".into(),
            name: "mmc_byte".into(),
            vermagic: "6.12.117 SMP".into(),
            depends: vec![],
            modpost_warnings: vec![],
            sources: None,
        }];
        let t = boot_commands(&b, &k, &m, true);
        for want in [
            "fatload mmc 0:1 0x41000000 uImage",
            "fatload mmc 0:1 0x42000000 uInitrd",
            "bootm 0x41000000 0x42000000",
            "console=ttySAC0,115200n8 rdinit=/init",
            "insmod mmc_byte.ko",
        ] {
            assert!(t.contains(want), "{want} missing from:\n{t}");
        }
        assert!(boot_commands(&b, &k, &m, false).contains("bootm 0x41000000\n"));
    }

    #[test]
    fn the_default_board_is_the_only_one_there() {
        assert_eq!(Board::default_name(&crate::repo_root().join("configs")).unwrap(), "tiny4412");
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("boards")).unwrap();
        assert!(Board::default_name(d.path()).unwrap_err().to_string().contains("no board in"));
        for b in ["a.toml", "b.toml"] {
            std::fs::write(d.path().join("boards").join(b), "").unwrap();
        }
        assert!(Board::default_name(d.path()).unwrap_err().to_string().contains("pass --board with one of a, b"));
    }
}
