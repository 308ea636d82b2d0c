/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How the layer says what it covered: each 3.5 API that the newer kernel
 * lacks, where a module uses it, is a compiler warning
 *
 *     hello.c:17:9: warning: linux-3.5 API: timer
 *
 * with the id of its entry in configs/kernel-changes.toml. The harness reads
 * these from the build log into the port list; a person building by hand
 * sees them as warnings, which is what they are: the module builds and runs,
 * and a port to this kernel has to change these lines.
 *
 * `#pragma GCC warning` is handled by the preprocessor, so it works inside
 * an expression, an initializer or a declaration (a `#pragma message` would
 * not: the C parser rejects it there). The ids are spelt out in each string
 * because _Pragma takes one literal, which cannot be pasted together.
 */
#ifndef COMPAT35_MARK_H
#define COMPAT35_MARK_H

#define COMPAT35_USED_timer             _Pragma("GCC warning \"linux-3.5 API: timer\"")
#define COMPAT35_USED_init_timer        _Pragma("GCC warning \"linux-3.5 API: init_timer\"")
#define COMPAT35_USED_class_create      _Pragma("GCC warning \"linux-3.5 API: class_create\"")
#define COMPAT35_USED_do_gettimeofday   _Pragma("GCC warning \"linux-3.5 API: do_gettimeofday\"")
#define COMPAT35_USED_timespec          _Pragma("GCC warning \"linux-3.5 API: timespec\"")
#define COMPAT35_USED_ioremap_nocache   _Pragma("GCC warning \"linux-3.5 API: ioremap_nocache\"")
#define COMPAT35_USED_devinit           _Pragma("GCC warning \"linux-3.5 API: devinit\"")
#define COMPAT35_USED_create_proc_entry _Pragma("GCC warning \"linux-3.5 API: create_proc_entry\"")
#define COMPAT35_USED_proc_fops         _Pragma("GCC warning \"linux-3.5 API: proc-fops\"")
#define COMPAT35_USED_mach_headers      _Pragma("GCC warning \"linux-3.5 API: mach-headers\"")
#define COMPAT35_USED_irqf_disabled     _Pragma("GCC warning \"linux-3.5 API: irqf-disabled\"")
#define COMPAT35_USED_access_ok_type    _Pragma("GCC warning \"linux-3.5 API: access_ok-type\"")
#define COMPAT35_USED_declare_tasklet   _Pragma("GCC warning \"linux-3.5 API: declare-tasklet-data\"")
#define COMPAT35_USED_sleep_on          _Pragma("GCC warning \"linux-3.5 API: sleep_on\"")
#define COMPAT35_USED_f_dentry          _Pragma("GCC warning \"linux-3.5 API: f_dentry\"")
#define COMPAT35_USED_no_llseek         _Pragma("GCC warning \"linux-3.5 API: no_llseek\"")
#define COMPAT35_USED_access_once       _Pragma("GCC warning \"linux-3.5 API: access_once\"")
#define COMPAT35_USED_gfp_temporary     _Pragma("GCC warning \"linux-3.5 API: gfp_temporary\"")
#define COMPAT35_USED_of_i2c            _Pragma("GCC warning \"linux-3.5 API: of_i2c\"")
#define COMPAT35_USED_i2c_probe_id     _Pragma("GCC warning \"linux-3.5 API: i2c-probe-id\"")
#define COMPAT35_USED_kobj_default_attrs _Pragma("GCC warning \"linux-3.5 API: kobj-default-attrs\"")
#define COMPAT35_USED_input_polldev     _Pragma("GCC warning \"linux-3.5 API: input-polldev\"")
#define COMPAT35_USED_clk_prepare       _Pragma("GCC warning \"linux-3.5 API: clk-prepare\"")
#define COMPAT35_USED_pwm_legacy        _Pragma("GCC warning \"linux-3.5 API: pwm-legacy\"")
#define COMPAT35_USED_strict_strtoul    _Pragma("GCC warning \"linux-3.5 API: strict_strtoul\"")
#define COMPAT35_USED_vm_flags          _Pragma("GCC warning \"linux-3.5 API: vm_flags\"")

#endif
