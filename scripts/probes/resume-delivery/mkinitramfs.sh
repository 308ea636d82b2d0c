#!/bin/sh
# Probe (issue 33, resume-delivery): builds the tiny newc initramfs the probes
# boot: static busybox, the probe /init and mbox (mbox.c, the guest's reader
# of the mailbox). Not product code.
# usage: mkinitramfs.sh OUT.cpio
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bb=$(ls -d /root/.cache/tiny4412-harness/busybox-static-armhf-*/busybox | head -1)
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev"
cp "$bb" "$root/bin/busybox"
mknod "$root/dev/console" c 5 1
cp "$here/init" "$root/init"
arm-linux-gnueabihf-gcc -static -O2 -Wall -o "$root/bin/mbox" "$here/mbox.c"
chmod 755 "$root/init" "$root/bin/busybox"
(cd "$root" && find . | cpio -o -H newc --quiet) > "$1"
rm -rf "$root"
