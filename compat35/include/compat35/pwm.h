/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 3.5's PWM timers by number (plat-samsung/pwm.c): pwm_request(id, label),
 * pwm_config(pwm, duty_ns, period_ns), pwm_enable(), pwm_disable(),
 * pwm_free(). 6.12 has pwm_config/enable/disable on its own PWM devices
 * (inline, over pwm_apply_might_sleep) and no pwm_request or pwm_free
 * (gone by 6.4): a device comes from pwm_get(dev, con_id).
 *
 * Here the timers are the virtual board's (../../board/pwm.c): PWM0's
 * output, TOUT_0, is GPD0_0, the buzzer's pin. On a board running 6.12,
 * without the model, pwm_request() fails with -ENODEV. A pwm_device that
 * is not one of the model's (a module's own pwm_get()) goes to the
 * kernel's calls as before.
 */
#ifndef COMPAT35_PWM_H
#define COMPAT35_PWM_H

#include <linux/pwm.h>
#include <linux/err.h>
#include <compat35/mark.h>
#include <compat35/board.h>

static inline struct pwm_device *compat35_pwm_request(int id, const char *label)
{
	struct pwm_device *(*model)(int, const char *) = symbol_get(tiny4412_board_pwm_request);
	struct pwm_device *pwm = ERR_PTR(-ENODEV);

	if (model) {
		pwm = model(id, label);
		symbol_put(tiny4412_board_pwm_request);
	}
	return pwm;
}

/* The model's answer, or -ENOTTY: not the model's device. */
static inline int compat35_pwm_model(struct pwm_device *pwm, int op, int duty_ns, int period_ns)
{
	int (*model)(struct pwm_device *, int, int, int) = symbol_get(tiny4412_board_pwm);
	int ret = -ENOTTY;

	if (model) {
		ret = model(pwm, op, duty_ns, period_ns);
		symbol_put(tiny4412_board_pwm);
	}
	return ret;
}

static inline int compat35_pwm_config(struct pwm_device *pwm, int duty_ns, int period_ns)
{
	int ret = compat35_pwm_model(pwm, TINY4412_PWM_CONFIG, duty_ns, period_ns);

	return ret == -ENOTTY ? (pwm_config)(pwm, duty_ns, period_ns) : ret;
}

static inline int compat35_pwm_enable(struct pwm_device *pwm)
{
	int ret = compat35_pwm_model(pwm, TINY4412_PWM_ENABLE, 0, 0);

	return ret == -ENOTTY ? (pwm_enable)(pwm) : ret;
}

static inline void compat35_pwm_disable(struct pwm_device *pwm)
{
	if (compat35_pwm_model(pwm, TINY4412_PWM_DISABLE, 0, 0) == -ENOTTY)
		(pwm_disable)(pwm);
}

static inline void compat35_pwm_free(struct pwm_device *pwm)
{
	if (compat35_pwm_model(pwm, TINY4412_PWM_FREE, 0, 0) == -ENOTTY)
		pwm_put(pwm);
}

#define pwm_request(id, label) ({ COMPAT35_USED_pwm_legacy compat35_pwm_request((id), (label)); })
#define pwm_free(pwm) ({ COMPAT35_USED_pwm_legacy compat35_pwm_free(pwm); })
#define pwm_config(pwm, duty_ns, period_ns) compat35_pwm_config((pwm), (duty_ns), (period_ns))
#define pwm_enable(pwm) compat35_pwm_enable(pwm)
#define pwm_disable(pwm) compat35_pwm_disable(pwm)

#endif
