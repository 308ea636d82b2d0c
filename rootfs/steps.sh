# The steps a module goes through, framed by markers in the kernel log.
# Sourced by the QEMU guest's /init. Markers go to /dev/kmsg, not stdout, so
# that they land in the kernel log in true order with the module's printk
# (the harness's step.rs documents the protocol).

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

# Succeeds when module $1 is not in /proc/modules.
harness_module_gone() {
    ! grep -q "^$1 " /proc/modules
}

# The steps, in order. Their names are the ones expectations files use.
harness_run_steps() {
    harness_step insmod insmod "$MODULE_KO"
    harness_step rmmod rmmod "$MODULE_NAME"
    harness_step gone harness_module_gone "$MODULE_NAME"
}
