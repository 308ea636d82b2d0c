# The steps a module goes through, framed by markers in the kernel log.
# Sourced by the QEMU guest's /init. Markers go to /dev/kmsg, not stdout, so
# that they land in the kernel log in true order with the module's printk
# (harness/src/step.rs documents the protocol and parses it).

HARNESS_KMEMLEAK=/sys/kernel/debug/kmemleak

# harness_step NAME CMD [ARG...]: runs CMD and reports its output and status.
harness_step() {
    _name=$1
    shift
    echo "@@harness begin $_name" > /dev/kmsg
    "$@" > /tmp/harness-step.out 2>&1
    _rc=$?
    while IFS= read -r _line; do
        echo "@@harness out $_name $_line" > /dev/kmsg
    done < /tmp/harness-step.out
    rm -f /tmp/harness-step.out
    echo "@@harness end $_name rc=$_rc" > /dev/kmsg
}

# insmod, then say where the module's code landed: reports printed after the
# module is gone (kmemleak's) carry bare addresses the kernel can no longer
# name, and the harness names them from these and the .ko.
harness_insmod() {
    insmod "$1" || return $?
    # Every code section: gcc puts functions called only from __init code in
    # .text.unlikely, and a module may have .text.hot, .init.text, ...
    for _s in $(ls -A "/sys/module/$2/sections" 2>/dev/null); do
        case $_s in
        .ARM.*) ;;
        *.text*) echo "@@harness section $_s $(cat "/sys/module/$2/sections/$_s")" > /dev/kmsg ;;
        esac
    done
    return 0
}

# Succeeds when module $1 is not in /proc/modules.
harness_module_gone() {
    ! grep -q "^$1 " /proc/modules
}

# kmemleak reports only objects older than its minimum age (5 s), and only
# after two scans find them unreferenced and unchanged; then print the
# suspects. Suspects that are the kernel's own (boot-time false positives)
# are told apart by the harness: no frame or task ties them to the module.
# (A baseline scan before insmod would do the same at 20 s of emulated time.)
harness_kmemleak_report() {
    sleep 6
    echo scan > $HARNESS_KMEMLEAK
    echo scan > $HARNESS_KMEMLEAK
    cat $HARNESS_KMEMLEAK
}

# The steps, in order. Their names are the ones expectations files use.
harness_run_steps() {
    harness_step insmod harness_insmod "$MODULE_KO" "$MODULE_NAME"
    harness_step rmmod rmmod "$MODULE_NAME"
    harness_step gone harness_module_gone "$MODULE_NAME"
    if [ -e $HARNESS_KMEMLEAK ]; then
        harness_step leaks harness_kmemleak_report
    fi
}
