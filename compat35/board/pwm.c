// SPDX-License-Identifier: GPL-2.0
/*
 * The Exynos 4412's PWM timers 0-4 as 3.5's legacy API sees them
 * (plat-samsung/pwm.c: pwm_request(id, label), pwm_config(), pwm_enable(),
 * pwm_disable(), pwm_free()), for the layer's calls of those names
 * (compat35/include/compat35/pwm.h). QEMU models the timers' registers,
 * but 6.12's kernel owns them (a clock source); the model keeps each
 * timer's state instead, with 3.5's checks and errors. PWM0's output,
 * TOUT_0, is GPD0_0, the buzzer's pin: when GPD0_0 is set to TOUT_0
 * (GPD0CON function 2, which a lesson does with s3c_gpio_cfgpin()), the
 * buzzer sounds while PWM0 runs with a duty above 0 (`buzzer pwm`), and
 * is quiet when it stops (`buzzer off`). Each change of PWM0 is a `PWM0`
 * change: its frequency and duty, or off.
 */
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/err.h>
#include <compat35/board.h>
#include "board.h"

#define NPWM 5
#define NS_IN_HZ 1000000000UL

struct pwm35 {
	int id;
	const char *label;
	int use_count;
	int duty_ns, period_ns;
	bool running;
};

static struct pwm35 pwms[NPWM] = { { 0 }, { 1 }, { 2 }, { 3 }, { 4 } };
static DEFINE_MUTEX(pwm_lock);
/* PWM0 driven through this API at all (else its state is unknown). */
static bool pwm0_driven;

int board_pwm0_output(void)
{
	struct pwm35 *p = &pwms[0];

	if (!READ_ONCE(pwm0_driven))
		return -1;
	return READ_ONCE(p->running) && READ_ONCE(p->duty_ns) > 0;
}

static void pwm0_changed(void)
{
	struct pwm35 *p = &pwms[0];

	WRITE_ONCE(pwm0_driven, true);
	if (p->running && p->period_ns > 0)
		board_note("PWM0", "%lu Hz duty %d%%", NS_IN_HZ / p->period_ns,
			   (int)div_u64((u64)p->duty_ns * 100, p->period_ns));
	else
		board_note("PWM0", "off");
	board_outputs_changed();
}

static struct pwm35 *ours(struct pwm_device *pwm)
{
	struct pwm35 *p = (struct pwm35 *)pwm;

	return p >= pwms && p < pwms + NPWM ? p : NULL;
}

/* 3.5's: -ENOENT for a timer it does not have, -EBUSY for one in use. */
struct pwm_device *tiny4412_board_pwm_request(int id, const char *label)
{
	struct pwm_device *ret;

	if (id < 0 || id >= NPWM)
		return ERR_PTR(-ENOENT);
	mutex_lock(&pwm_lock);
	if (pwms[id].use_count == 0) {
		pwms[id].use_count = 1;
		pwms[id].label = label;
		ret = (struct pwm_device *)&pwms[id];
		if (id == 0)
			WRITE_ONCE(pwm0_driven, true);
	} else {
		ret = ERR_PTR(-EBUSY);
	}
	mutex_unlock(&pwm_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(tiny4412_board_pwm_request);

static int config(struct pwm35 *p, int duty_ns, int period_ns)
{
	if (period_ns > NS_IN_HZ || duty_ns > NS_IN_HZ)
		return -ERANGE;
	if (duty_ns > period_ns)
		return -EINVAL;
	/* 3.5 divided by period_ns: a period of 0 was a division by zero. */
	if (period_ns <= 0)
		return -EINVAL;
	p->duty_ns = duty_ns;
	p->period_ns = period_ns;
	return 0;
}

int tiny4412_board_pwm(struct pwm_device *pwm, int op, int duty_ns, int period_ns)
{
	struct pwm35 *p = ours(pwm);
	int ret = 0;

	if (!p)
		return -ENOTTY;
	mutex_lock(&pwm_lock);
	switch (op) {
	case TINY4412_PWM_CONFIG:
		ret = config(p, duty_ns, period_ns);
		break;
	case TINY4412_PWM_ENABLE:
		p->running = true;
		break;
	case TINY4412_PWM_DISABLE:
		p->running = false;
		break;
	case TINY4412_PWM_FREE:
		if (p->use_count) {
			p->use_count--;
			p->label = NULL;
		} else {
			pr_err("PWM%d device already freed\n", p->id);
		}
		break;
	default:
		ret = -EINVAL;
	}
	/* A change of what PWM0 puts out: a start, a stop, a new tone. */
	if (p->id == 0 && !ret && (op == TINY4412_PWM_ENABLE || op == TINY4412_PWM_DISABLE ||
				   (op == TINY4412_PWM_CONFIG && p->running)))
		pwm0_changed();
	mutex_unlock(&pwm_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(tiny4412_board_pwm);
