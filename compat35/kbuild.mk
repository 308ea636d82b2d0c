# SPDX-License-Identifier: GPL-2.0
#
# The layer's part of a module's kbuild file. The harness builds a module
# under `--api 3.5` with a generated Kbuild in its copy of the module
# directory, which reads the module's own kbuild file (its Kbuild, else its
# Makefile, as kbuild would) and then this one:
#
#   COMPAT35_DIR := <this directory>
#   COMPAT35_MODULE_NAME := module35
#   include $(src)/Makefile
#   include $(COMPAT35_DIR)/kbuild.mk
#
# A person building by hand can write the same four lines.

# The layer's headers (<mach/…>, <plat/…>, <linux/of_i2c.h>, …) after the
# kernel's own (kbuild puts ccflags after LINUXINCLUDE), and compat35.h
# forced in before each file's first line. subdir-: also in the module's
# subdirectories.
subdir-ccflags-y += -I$(COMPAT35_DIR)/include -include $(COMPAT35_DIR)/include/compat35/compat35.h

# The shadows of the kernel headers whose structures hold a struct
# timer_list (compat35/shadow/, scripts/timer-shadows) come before every
# kernel include directory, so that a kernel header is found through its
# shadow whoever includes it: the shadow reads it with the layer's renaming
# of struct timer_list suspended (compat35/include/compat35/timer.h).
# LINUXINCLUDE is the top Makefile's; kbuild reads it when it compiles.
LINUXINCLUDE := -I$(COMPAT35_DIR)/shadow $(LINUXINCLUDE)

# A module named `module` cannot load on 6.12 (/sys/module/module is the
# module loader's own parameters): it is built under another name from the
# same objects. 3.5 kbuild's <name>-objs and <name>-y both count.
ifneq ($(filter module.o,$(obj-m)),)
$(info linux-3.5 API: module-named-module: module.ko is built as $(COMPAT35_MODULE_NAME).ko)
obj-m := $(filter-out module.o,$(obj-m)) $(COMPAT35_MODULE_NAME).o
$(COMPAT35_MODULE_NAME)-y := $(or $(strip $(module-objs) $(module-y)),module.o)
endif

# 3.5's compiler policy. 3.5's top Makefile made one diagnostic an error,
# -Werror-implicit-function-declaration; everything else its gcc reported
# was a warning. 6.12's scripts/Makefile.extrawarn adds -Werror= for
# implicit-int, return-type, strict-prototypes, date-time,
# incompatible-pointer-types and designated-init: under the layer these
# are warnings again, as the board's compiler showed them (ccflags come
# after KBUILD_CFLAGS, so the -Wno-error= wins). implicit-function-declaration
# stays an error, as on 3.5. The layer's own safety check is not a flag:
# the harness fails a build any of whose warnings names one of the layer's
# types (compat35_…), and the layer never converts a pointer itself.
subdir-ccflags-y += -Wno-error=incompatible-pointer-types -Wno-error=strict-prototypes \
	-Wno-error=implicit-int -Wno-error=return-type -Wno-error=date-time -Wno-error=designated-init
