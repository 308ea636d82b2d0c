/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <plat/fb.h> of the Tiny4412's Linux 3.5: the display controller's platform data as 3.5 declared
 * it (a board file's, which an LCD lesson includes). 3.5's set_platdata and
 * gpio setup helpers were the board file's and are not given.
 */
#include <compat35/mark.h>
COMPAT35_USED_mach_headers

#ifndef COMPAT35_PLAT_FB_H
#define COMPAT35_PLAT_FB_H

#include <linux/fb.h>

struct platform_device;

#define S3C_FB_MAX_WIN 5

/* FriendlyARM's fields: the timing moved to the platform data (vtiming). */
struct s3c_fb_pd_win {
	unsigned short default_bpp;
	unsigned short max_bpp;
	unsigned short xres;
	unsigned short yres;
	unsigned short virtual_x;
	unsigned short virtual_y;
	unsigned short width;
	unsigned short height;
};

struct s3c_fb_platdata {
	void (*setup_gpio)(void);
	struct s3c_fb_pd_win *win[S3C_FB_MAX_WIN];
	struct fb_videomode *vtiming;
	u32 vidcon0;
	u32 vidcon1;
};

#endif /* COMPAT35_PLAT_FB_H */
