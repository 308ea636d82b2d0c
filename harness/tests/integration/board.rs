//! `board-image` for the Tiny4412: every file is there, U-Boot's own tool
//! reads the uImage, the dtb is the Tiny4412's, and the module's vermagic
//! matches the kernel it ships with. The image is assembled from the
//! emulated board's kernel (`--profile exynos4210`, which the suite builds
//! anyway): the board's own full kernel (profile tiny4412) takes 12 minutes
//! to build, so the suite checks its configuration instead, below.

use crate::common::{harness, text};
use std::process::Command;

#[test]
fn tiny4412_board_image_is_complete_and_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("img");
    let o = harness(&["board-image", "--profile", "exynos4210", "--initramfs", "--out", out.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for f in ["zImage", "exynos4412-tiny4412.dtb", "zImage-dtb", "uImage", "mmc_byte.ko", "uInitrd", "BOOT.txt"] {
        let p = out.join(f);
        assert!(p.is_file() && p.metadata().unwrap().len() > 0, "{f} missing or empty");
    }
    // zImage-dtb is exactly the zImage with the dtb behind it.
    let z = std::fs::read(out.join("zImage")).unwrap();
    let d = std::fs::read(out.join("exynos4412-tiny4412.dtb")).unwrap();
    assert_eq!(std::fs::read(out.join("zImage-dtb")).unwrap(), [z, d].concat());

    let l = Command::new("mkimage").arg("-l").arg(out.join("uImage")).output().expect("mkimage (u-boot-tools)");
    let listing = String::from_utf8_lossy(&l.stdout);
    assert!(l.status.success(), "{listing}");
    assert!(listing.contains("ARM Linux Kernel Image (uncompressed)"), "{listing}");
    assert!(listing.contains("Load Address: 40008000") && listing.contains("Entry Point:  40008000"), "{listing}");
    let l = Command::new("mkimage").arg("-l").arg(out.join("uInitrd")).output().unwrap();
    assert!(String::from_utf8_lossy(&l.stdout).contains("RAMDisk Image"));

    let (model, compatible) = harness::real_board::dtb_identity(&out.join("exynos4412-tiny4412.dtb")).unwrap();
    assert!(model.contains("TINY4412"), "{model}");
    assert_eq!(compatible.first().map(String::as_str), Some("friendlyarm,tiny4412"), "{compatible:?}");

    // The release inside the uImage name and the .ko's vermagic agree.
    let release = listing
        .lines()
        .find_map(|l| l.strip_prefix("Image Name:   Linux "))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(release.ends_with("-emulated"), "{release}: the image of --profile exynos4210");
    let info = harness::module::modinfo(&out.join("mmc_byte.ko")).unwrap();
    let vermagic = info.require("vermagic").unwrap();
    assert_eq!(vermagic.split_whitespace().next(), Some(release.as_str()), "{vermagic} vs {release}");
    let boot = std::fs::read_to_string(out.join("BOOT.txt")).unwrap();
    assert!(boot.contains("bootm 0x41000000 0x42000000") && boot.contains("exynos4210 kernel profile"), "{boot}");
}

/// The board's own kernel (profile tiny4412, what `board-image` builds by
/// default) keeps what the board has and the emulated kernel drops: its
/// configuration is made and checked (every requested symbol survives), not
/// built.
#[test]
fn tiny4412_kernel_configures_with_the_boards_drivers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("config");
    let o = harness(&["kernel", "--profile", "tiny4412", "--config-only", out.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let config = std::fs::read_to_string(out.join(".config")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        out.join(".config").to_str().unwrap(),
        "stdout names the .config: {t}"
    );
    // What the board has: SD/MMC (its SDHCI and the Synopsys DW-MMC for the
    // eMMC), USB, networking, the appended dtb its U-Boot needs.
    for y in [
        "CONFIG_MMC_SDHCI_S3C=y",
        "CONFIG_MMC_DW_EXYNOS=y",
        "CONFIG_USB=y",
        "CONFIG_NET=y",
        "CONFIG_ARM_APPENDED_DTB=y",
    ] {
        assert!(config.lines().any(|l| l == y), "{y} missing from the tiny4412 profile's .config");
    }
    assert!(!config.contains("CONFIG_LOCALVERSION=\"-emulated\""), "the board's kernel is not the emulated one");
    assert!(!out.join("vmlinux").exists(), "--config-only built a kernel");
}
