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

# A module named `module` cannot load on 6.12 (/sys/module/module is the
# module loader's own parameters): it is built under another name from the
# same objects. 3.5 kbuild's <name>-objs and <name>-y both count.
ifneq ($(filter module.o,$(obj-m)),)
$(info linux-3.5 API: module-named-module: module.ko is built as $(COMPAT35_MODULE_NAME).ko)
obj-m := $(filter-out module.o,$(obj-m)) $(COMPAT35_MODULE_NAME).o
$(COMPAT35_MODULE_NAME)-y := $(or $(strip $(module-objs) $(module-y)),module.o)
endif
