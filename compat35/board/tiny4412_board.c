// SPDX-License-Identifier: GPL-2.0
/*
 * The virtual Tiny4412: the board's buttons, LEDs, buzzer, ADC and watchdog,
 * modelled inside the QEMU guest, for modules written for the board's
 * Linux 3.5 (QEMU's smdkc210 models none of them; Debian's QEMU is used as
 * it is). The harness loads it before a unit's steps when the unit is built
 * for the 3.5 API or its steps act on the board.
 *
 * How a module reaches it:
 * - gpiolib, at 3.5's pin numbers: one gpio_chip per bank, based where
 *   <mach/gpio.h> puts the bank (EXYNOS4_GPX3(2) = 220, EXYNOS4X12_GPM4(0)
 *   = 79). gpio-sim does not fit: its chips' bases are dynamic, and its
 *   lines have no CON/DAT registers for a register-level driver to share.
 * - interrupts, at 3.5's numbers: IRQ_EINT(0..31) = 416..447 and IRQ_ADC =
 *   243 are allocated as they are, so request_irq(IRQ_EINT(26), ...) and
 *   request_irq(gpio_to_irq(EXYNOS4_GPX3(2)), ...) get the same line.
 *   irq_sim does not fit: its domain hands out dynamic numbers. Its way of
 *   raising an interrupt does (an irq_work, so that handlers run in hard
 *   interrupt context and bottom halves run as on the board).
 * - registers: the 3.5 layer's ioremap() asks this module first
 *   (tiny4412_board_ioremap, found with symbol_get, so a module built with
 *   the layer needs nothing loaded on a real board). A range that lies
 *   within modelled registers maps to this module's copy of the block, a
 *   page of ordinary memory: readl/writel, __raw_* and plain volatile
 *   pointers all reach it. A timer looks at the copy every 10 ms
 *   while one is mapped, and applies what was written (an LED lit, an ADC
 *   conversion started, the watchdog fed). Any other range is QEMU's, whose
 *   log of rejected accesses makes the verdict "needs the board".
 *
 * The board's side, for the harness's steps, is in /proc/tiny4412-board/
 * (procfs, which every kernel has; debugfs is not in every profile's):
 * `control` takes "press K1", "release K1", "click K1 100", "adc AIN0 1234";
 * `state` lists every part's state; `changes` lists what changed since it
 * was last read (a sequence number, local_clock() seconds as printk's, the
 * part, its new state), which the step library passes on as markers.
 *
 * Register layouts: Exynos 4412 SCP User's Manual, ch. 6 (GPIO: CON 4 bits
 * a pin, 0 input, 1 output, 0xF EXT_INT; DAT 1 bit; PUD 2 bits), ch. 57
 * (ADC), ch. 26 (watchdog timer). Board wiring: Tiny4412 schematics (LED1-4
 * on GPM4_0..3, active low; K1-K4 on GPX3_2..5 with pull-ups to 1.8 V,
 * pressed = low; the buzzer on GPD0_0 through a transistor, high = on;
 * the potentiometer on AIN0).
 */
#include <linux/module.h>
#include <linux/gpio/driver.h>
#include <linux/irq.h>
#include <linux/irqdesc.h>
#include <linux/interrupt.h>
#include <linux/irq_work.h>
#include <linux/hrtimer.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/delay.h>
#include <linux/sched/clock.h>
#include <linux/reboot.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/bitmap.h>
#include <linux/unaligned.h>
#include <mach/gpio.h>
#include <mach/irqs.h>
#include <compat35/board.h>
#include "board.h"
#include "stock.h"

/* A register block the model has: its physical base, and its copy. */
struct block {
	const char *name;
	phys_addr_t phys;
	u32 *regs;		/* BLOCK_SPAN bytes of `copies` */
};

enum { BLK_GPIO_RIGHT, BLK_GPIO_LEFT, BLK_ADC, BLK_WDT, NBLOCKS };

static struct block blocks[NBLOCKS] = {
	/* GPIO part 1 (GPA0..GPF3) and part 2 (GPJ0..GPX3), UM 6.2. */
	[BLK_GPIO_RIGHT] = { "gpio-right", 0x11400000 },
	[BLK_GPIO_LEFT] = { "gpio-left", 0x11000000 },
	[BLK_ADC] = { "adc", 0x126C0000 },
	[BLK_WDT] = { "watchdog", 0x10060000 },
};

/* GPIO bank registers, from the bank's CON (UM 6.2.2). */
#define GP_CON	0x0	/* 4 bits a pin: 0x0 input, 0x1 output, 0xF EXT_INT */
#define GP_DAT	0x4	/* 1 bit a pin: the pin's level */
#define GP_PUD	0x8	/* 2 bits a pin: 0 none, 1 pull-down, 3 pull-up */
#define GP_DRV	0xC	/* drive strength: kept, no effect */

struct bank {
	const char *name;
	unsigned int base;	/* 3.5's number of pin 0 */
	unsigned int ngpio;
	int block;
	unsigned int offset;	/* of CON in the block */
	int eint;		/* XEINT of pin 0, or -1 */
	const char *const *names;
	u32 external;		/* pins the board drives; their level in `level` */
	u32 level;
	u32 unwired_read;	/* pins whose read as an input was reported */
	struct gpio_chip chip;
	bool added;
};

static const char *const gpx3_names[8] = { "GPX3_0", "GPX3_1", "K1", "K2", "K3", "K4", "GPX3_6", "GPX3_7" };
static const char *const gpm4_names[8] = { "LED1", "LED2", "LED3", "LED4", "GPM4_4", "GPM4_5", "GPM4_6", "GPM4_7" };
static const char *const gpd0_names[4] = { "BUZZER", "GPD0_1", "GPD0_2", "GPD0_3" };
static const char *const gpx1_names[8] = { "GPX1_0", "GPX1_1", "GPX1_2", "GPX1_3", "GPX1_4", "GPX1_5", "GPX1_6", "GPX1_7" };

enum { BANK_GPD0, BANK_GPM4, BANK_GPX1, BANK_GPX3, NBANKS };

static struct bank banks[NBANKS] = {
	[BANK_GPD0] = { "GPD0", EXYNOS4_GPD0(0), 4, BLK_GPIO_RIGHT, 0x0A0, -1, gpd0_names },
	[BANK_GPM4] = { "GPM4", EXYNOS4X12_GPM4(0), 8, BLK_GPIO_LEFT, 0x2E0, -1, gpm4_names },
	/* K1-K4: external pull-ups, so high until pressed. */
	[BANK_GPX1] = { "GPX1", EXYNOS4_GPX1(0), 8, BLK_GPIO_LEFT, 0xC20, 8, gpx1_names },
	[BANK_GPX3] = { "GPX3", EXYNOS4_GPX3(0), 8, BLK_GPIO_LEFT, 0xC60, 24, gpx3_names, 0x3c, 0x3c },
};

/* ADC registers (UM 57.6). */
#define ADCCON		0x00
#define  ADCCON_RES12	BIT(16)	/* 12-bit conversion, else 10-bit */
#define  ADCCON_ECFLG	BIT(15)	/* end of conversion (read only) */
#define  ADCCON_STDBM	BIT(2)	/* standby */
#define  ADCCON_READ_START BIT(1)	/* a read of ADCDAT0 starts the next */
#define  ADCCON_START	BIT(0)	/* starts a conversion; cleared when it does */
#define ADCDAT0		0x0C	/* [11:0] the result */
#define CLRINTADC	0x18	/* any write clears the interrupt */
#define ADCMUX		0x1C	/* [3:0] the channel, AIN0..AIN3 */

/* Watchdog registers (UM 26.4). */
#define WTCON		0x00
#define  WTCON_PRESCALER(v) (((v) >> 8) & 0xff)
#define  WTCON_ENABLE	BIT(5)
#define  WTCON_DIV(v)	(16 << (((v) >> 3) & 3))
#define  WTCON_IRQ	BIT(2)
#define  WTCON_RESET	BIT(0)
#define WTDAT		0x04
#define WTCNT		0x08
#define WTCLRINT	0x0C
/* The watchdog counts PCLK (100 MHz on the Tiny4412). */
#define WDT_PCLK	100000000ULL

#define NLEDS 4
#define NKEYS 4
#define NAIN 4
#define NEINT 32
#define EINT_IRQ0 IRQ_EINT(0)
/* More than this many interrupts of a line in a second is a storm. */
#define STORM 1000
#define NCHANGES 256
/* How often the register copies are looked at while mapped: an LED's
 * change or an ADC conversion is seen this late at most. */
#define POLL_MS 10

static DEFINE_RAW_SPINLOCK(lock);

/* What the model last told of each output, to tell changes. */
static int led_state[NLEDS];
static int buzzer_state;
static int key_pressed[NKEYS];
static u32 ain[NAIN] = { 2048, 0, 0, 0 };

/* Interrupts: 3.5's numbers when free, their type and state. */
static unsigned int eint_base;
static bool eint_legacy;
static unsigned int eint_type[NEINT];
static u32 eint_masked = ~0u;
static u32 eint_pending;
static unsigned int eint_count[NEINT];
static unsigned long eint_window[NEINT];
static u64 eint_edge_at[NEINT];	/* when a button's edge raised it, for its latency */
static int adc_irq = -1;
static bool adc_pending;
static struct irq_work fire_work;

/* Mappings of the copies, and the timer that applies them. */
static int mapped;
static struct hrtimer poll_timer;
static u64 wdt_last_ns;
static u32 wdt_count, wdt_written;

/* What changed, for the harness: a ring the `changes` file drains. */
struct change {
	unsigned long seq;
	u64 at;
	char what[16];
	char state[112];
};
static struct change changes[NCHANGES];
static unsigned long next_seq, read_seq;
static struct proc_dir_entry *dir;

/* Each block's copy spans two pages: its registers are in the first (at
 * most 0xF4C), and a 4 KiB mapping that starts past the block's base
 * (at a bank, say) still lies within its copy. */
#define BLOCK_SPAN (2 * PAGE_SIZE)

/* The blocks' copies, together: the layer's accessors tell
 * an address of the model's by this window (compat35/mmio.h). `shadow`
 * is what the model last saw of the registers it does not have, to find
 * a plain pointer's write to one; `modelled_words` has a bit for each
 * register it has. */
static u8 *copies, *shadow;
static DECLARE_BITMAP(modelled_words, NBLOCKS * BLOCK_SPAN / 4);
struct tiny4412_board_window tiny4412_board_window;
EXPORT_SYMBOL_GPL(tiny4412_board_window);

static inline u32 *reg(int block, unsigned int off)
{
	return &blocks[block].regs[off / 4];
}

static inline u32 rd(int block, unsigned int off)
{
	return READ_ONCE(*reg(block, off));
}

static inline void wr(int block, unsigned int off, u32 v)
{
	WRITE_ONCE(*reg(block, off), v);
}

/* Records a change; called with the lock held. */
static void changed(const char *what, const char *fmt, ...)
{
	struct change *c = &changes[next_seq % NCHANGES];
	va_list ap;

	c->seq = next_seq++;
	c->at = local_clock();
	strscpy(c->what, what, sizeof(c->what));
	va_start(ap, fmt);
	vsnprintf(c->state, sizeof(c->state), fmt, ap);
	va_end(ap);
}

static void sync_outputs(void);

/* For stock.c: a change of its own (a request of a pin or a line, made
 * now). What the module wrote to the outputs before it is said first: the
 * poll would say it up to POLL_MS later, after this, and the order of a
 * step's changes would be the poll's timing, not the module's. */
void board_change(const char *part, const char *state)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	sync_outputs();
	changed(part, "%s", state);
	raw_spin_unlock_irqrestore(&lock, flags);
}

static unsigned int pin_con(struct bank *b, unsigned int pin)
{
	return (rd(b->block, b->offset + GP_CON) >> (pin * 4)) & 0xf;
}

/* A pin's level: what the module drives if it is an output, else the
 * board's (a button), else its pull. */
static int pin_level(struct bank *b, unsigned int pin)
{
	u32 pud;

	if (pin_con(b, pin) == 1)
		return (rd(b->block, b->offset + GP_DAT) >> pin) & 1;
	if (b->external & BIT(pin))
		return (b->level >> pin) & 1;
	pud = (rd(b->block, b->offset + GP_PUD) >> (pin * 2)) & 3;
	return pud == 3;
}

/* DAT's input bits follow the pins (a register-level driver reads them);
 * its output bits are what was written. Called with the lock held. */
static void refresh_inputs(struct bank *b)
{
	u32 dat = rd(b->block, b->offset + GP_DAT), want = dat;
	unsigned int pin;

	for (pin = 0; pin < b->ngpio; pin++) {
		if (pin_con(b, pin) == 1)
			continue;
		want = (want & ~BIT(pin)) | (pin_level(b, pin) << pin);
	}
	if (want != dat)
		wr(b->block, b->offset + GP_DAT, want);
}

static void queue_eint(unsigned int eint)
{
	unsigned long now = jiffies;

	if (time_after(now, eint_window[eint] + HZ)) {
		eint_window[eint] = now;
		eint_count[eint] = 0;
	}
	if (++eint_count[eint] > STORM) {
		if (!(eint_masked & BIT(eint))) {
			char what[16];

			snprintf(what, sizeof(what), "XEINT%u", eint);
			eint_masked |= BIT(eint);
			changed(what, "storm: masked");
			pr_warn("tiny4412-board: interrupt storm on XEINT%u: more than %d in a second; the line is masked\n", eint, STORM);
		}
		return;
	}
	eint_pending |= BIT(eint);
	irq_work_queue(&fire_work);
}

/* A pin of a GPX bank went from `was` to `now`: its interrupt, if its type
 * says so (IRQ_TYPE_NONE: EXT_INT4x_CON's reset value, low level). */
static void pin_edge(struct bank *b, unsigned int pin, int was, int now)
{
	unsigned int eint, type;

	if (b->eint < 0 || was == now)
		return;
	eint = b->eint + pin;
	type = eint_type[eint] ?: IRQ_TYPE_LEVEL_LOW;
	if (eint_masked & BIT(eint))
		return;
	if ((now == 0 && (type & (IRQ_TYPE_EDGE_FALLING | IRQ_TYPE_LEVEL_LOW))) ||
	    (now == 1 && (type & (IRQ_TYPE_EDGE_RISING | IRQ_TYPE_LEVEL_HIGH)))) {
		eint_edge_at[eint] = local_clock();
		queue_eint(eint);
	}
}

/* Tells the LEDs' and the buzzer's changes. Called with the lock held. */
static void sync_outputs(void)
{
	struct bank *m = &banks[BANK_GPM4], *d = &banks[BANK_GPD0];
	static const char *const leds[NLEDS] = { "LED1", "LED2", "LED3", "LED4" };
	int i, on;

	for (i = 0; i < NLEDS; i++) {
		/* Active low: lit when driven low. */
		on = pin_con(m, i) == 1 && !pin_level(m, i);
		if (on != led_state[i]) {
			led_state[i] = on;
			changed(leds[i], on ? "on" : "off");
		}
	}
	/* GPD0_0 as an output (1 on), or as TOUT_0 (function 2): PWM0's
	 * output, quiet while PWM0 is stopped (when the model knows it). */
	if (pin_con(d, 0) == 2)
		on = board_pwm0_output() == 0 ? 0 : 2;
	else
		on = pin_con(d, 0) == 1 && pin_level(d, 0);
	if (on != buzzer_state) {
		buzzer_state = on;
		changed("buzzer", on == 2 ? "pwm" : on ? "on" : "off");
	}
}

void board_note(const char *what, const char *fmt, ...)
{
	unsigned long flags;
	char state[sizeof(changes[0].state)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	raw_spin_lock_irqsave(&lock, flags);
	changed(what, "%s", state);
	raw_spin_unlock_irqrestore(&lock, flags);
}

void board_outputs_changed(void)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	sync_outputs();
	raw_spin_unlock_irqrestore(&lock, flags);
}

static void sync_banks(void)
{
	int i;

	for (i = 0; i < NBANKS; i++)
		refresh_inputs(&banks[i]);
	sync_outputs();
}

static struct bank *eint_bank(unsigned int eint, unsigned int *pin);

/* The kernel's own tally of a line's interrupts that every handler
 * returned IRQ_NONE for (note_interrupt(): a count, restarted at 1 after a
 * quiet tenth of a second, and when the last was): it moves when one more
 * was. Zero for a line with a threaded handler, whose verdict the kernel
 * takes only at the next interrupt. */
struct unhandled_mark {
	unsigned int count;
	unsigned long last;
};

static struct unhandled_mark unhandled_mark(unsigned int eint)
{
	struct irq_data *d = irq_get_irq_data(eint_base + eint);
	struct unhandled_mark m = { 0, 0 };
	struct irq_desc *desc;
	struct irqaction *a;

	if (!d)
		return m;
	desc = irq_data_to_desc(d);
	for (a = desc->action; a; a = a->next)
		if (a->thread_fn)
			return m;
	m.count = desc->irqs_unhandled;
	m.last = desc->last_unhandled;
	return m;
}

/* The first interrupt after a button's edge: its handler's time, from the
 * edge to its return (an irq_work's raise and the handler), as a change;
 * or, when every handler returned IRQ_NONE (`was` is the tally before),
 * that nobody handled it. */
static void handled(unsigned int eint, struct unhandled_mark was)
{
	struct unhandled_mark now = unhandled_mark(eint);
	unsigned long flags;
	char what[16];
	u64 took;

	if (!irq_has_action(eint_base + eint))
		return;
	raw_spin_lock_irqsave(&lock, flags);
	if (eint_edge_at[eint]) {
		took = local_clock() - eint_edge_at[eint];
		eint_edge_at[eint] = 0;
		snprintf(what, sizeof(what), "XEINT%u", eint);
		took = div_u64(took, 100000);
		/* What its handlers did to the outputs came before their return. */
		sync_outputs();
		if (now.count != was.count || now.last != was.last)
			changed(what, "unhandled: IRQ_NONE from its handlers");
		else
			changed(what, "handled %llu.%llu ms after the edge", div_u64(took, 10), took % 10);
	}
	raw_spin_unlock_irqrestore(&lock, flags);
}

/* A level-triggered line still at its level after its handler ran fires
 * again, as the board's would: a handler that never quiets its source is
 * an interrupt storm (which queue_eint() ends by masking the line). */
static void level_again(unsigned int eint)
{
	unsigned int pin, type;
	unsigned long flags;
	struct bank *b;

	raw_spin_lock_irqsave(&lock, flags);
	b = eint_bank(eint, &pin);
	type = eint_type[eint] ?: IRQ_TYPE_LEVEL_LOW;
	if (b && !(eint_masked & BIT(eint)) &&
	    (((type & IRQ_TYPE_LEVEL_LOW) && !pin_level(b, pin)) ||
	     ((type & IRQ_TYPE_LEVEL_HIGH) && pin_level(b, pin))))
		queue_eint(eint);
	raw_spin_unlock_irqrestore(&lock, flags);
}

static void fire(struct irq_work *w)
{
	unsigned long flags;
	u32 pending;
	bool adc;
	int i;

	raw_spin_lock_irqsave(&lock, flags);
	pending = eint_pending;
	eint_pending = 0;
	adc = adc_pending;
	adc_pending = false;
	raw_spin_unlock_irqrestore(&lock, flags);
	for (i = 0; i < NEINT; i++) {
		struct unhandled_mark was;

		if (!(pending & BIT(i)))
			continue;
		was = unhandled_mark(i);
		generic_handle_irq(eint_base + i);
		handled(i, was);
		level_again(i);
	}
	if (adc && adc_irq >= 0)
		generic_handle_irq(adc_irq);
}

/* --- gpiolib ----------------------------------------------------------- */

static void set_con(struct bank *b, unsigned int pin, unsigned int fn)
{
	u32 con = rd(b->block, b->offset + GP_CON);

	wr(b->block, b->offset + GP_CON, (con & ~(0xf << (pin * 4))) | (fn << (pin * 4)));
}

static int chip_get_direction(struct gpio_chip *gc, unsigned int pin)
{
	struct bank *b = gpiochip_get_data(gc);

	return pin_con(b, pin) == 1 ? GPIO_LINE_DIRECTION_OUT : GPIO_LINE_DIRECTION_IN;
}

/*
 * A read of a pin that is not an output and that nothing on the modelled
 * board drives (not a button): its level is the model's idea of the pull,
 * not what a device wired to it on the board (a 1-wire sensor on the
 * header) would answer, so a module that goes by it is judged on nothing.
 * Reported once per request of the pin, as an `unwired` change the harness
 * counts as hardware the emulated board does not have. Called with the
 * lock held.
 */
static void report_unwired(struct bank *b, unsigned int pin)
{
	if (pin_con(b, pin) == 1 || (b->external & BIT(pin)) || (b->unwired_read & BIT(pin)))
		return;
	b->unwired_read |= BIT(pin);
	changed("unwired", "read %s 0x%08x", b->names[pin], (u32)blocks[b->block].phys + b->offset + GP_DAT);
}

static void chip_free(struct gpio_chip *gc, unsigned int pin)
{
	struct bank *b = gpiochip_get_data(gc);
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	b->unwired_read &= ~BIT(pin);
	raw_spin_unlock_irqrestore(&lock, flags);
}

static int chip_get(struct gpio_chip *gc, unsigned int pin)
{
	struct bank *b = gpiochip_get_data(gc);
	unsigned long flags;
	int v;

	raw_spin_lock_irqsave(&lock, flags);
	report_unwired(b, pin);
	v = pin_level(b, pin);
	raw_spin_unlock_irqrestore(&lock, flags);
	return v;
}

static void chip_set_locked(struct bank *b, unsigned int pin, int value)
{
	u32 dat = rd(b->block, b->offset + GP_DAT);

	wr(b->block, b->offset + GP_DAT, value ? dat | BIT(pin) : dat & ~BIT(pin));
	sync_outputs();
}

static void chip_set(struct gpio_chip *gc, unsigned int pin, int value)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	chip_set_locked(gpiochip_get_data(gc), pin, value);
	raw_spin_unlock_irqrestore(&lock, flags);
}

static int chip_direction_input(struct gpio_chip *gc, unsigned int pin)
{
	struct bank *b = gpiochip_get_data(gc);
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	set_con(b, pin, 0);
	refresh_inputs(b);
	sync_outputs();
	raw_spin_unlock_irqrestore(&lock, flags);
	return 0;
}

static int chip_direction_output(struct gpio_chip *gc, unsigned int pin, int value)
{
	struct bank *b = gpiochip_get_data(gc);
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	set_con(b, pin, 1);
	chip_set_locked(b, pin, value);
	raw_spin_unlock_irqrestore(&lock, flags);
	return 0;
}

static int chip_to_irq(struct gpio_chip *gc, unsigned int pin)
{
	struct bank *b = gpiochip_get_data(gc);

	return b->eint < 0 ? -ENXIO : eint_base + b->eint + pin;
}

/* s3c_gpio_cfgpin(pin, S3C_GPIO_SFN(fn)) through the layer: the pin's
 * function (TOUT_0 for the buzzer's GPD0_0, 2). A pin of a bank the model
 * lacks: nothing, as the layer does without the model. */
int tiny4412_board_cfgpin(unsigned int gpio, unsigned int fn)
{
	unsigned long flags;
	int i;

	for (i = 0; i < NBANKS; i++) {
		struct bank *b = &banks[i];

		if (gpio < b->base || gpio >= b->base + b->ngpio)
			continue;
		raw_spin_lock_irqsave(&lock, flags);
		set_con(b, gpio - b->base, fn & 0xf);
		refresh_inputs(b);
		sync_outputs();
		raw_spin_unlock_irqrestore(&lock, flags);
		return 0;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(tiny4412_board_cfgpin);

/* --- the EINT interrupt chip -------------------------------------------- */

static struct bank *eint_bank(unsigned int eint, unsigned int *pin)
{
	int i;

	for (i = 0; i < NBANKS; i++) {
		struct bank *b = &banks[i];

		if (b->eint >= 0 && eint >= b->eint && eint < b->eint + b->ngpio) {
			*pin = eint - b->eint;
			return b;
		}
	}
	return NULL;
}

/* A level interrupt still at its level fires again when unmasked. */
static void eint_unmask(struct irq_data *d)
{
	unsigned int eint = d->hwirq, pin, type;
	struct bank *b;
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	eint_masked &= ~BIT(eint);
	b = eint_bank(eint, &pin);
	type = eint_type[eint] ?: IRQ_TYPE_LEVEL_LOW;
	if (b && (((type & IRQ_TYPE_LEVEL_LOW) && !pin_level(b, pin)) ||
		  ((type & IRQ_TYPE_LEVEL_HIGH) && pin_level(b, pin))))
		queue_eint(eint);
	raw_spin_unlock_irqrestore(&lock, flags);
}

static void eint_mask(struct irq_data *d)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	eint_masked |= BIT(d->hwirq);
	raw_spin_unlock_irqrestore(&lock, flags);
}

/* As 3.5's exynos_irq_eint_set_type: the type, and the pin to EXT_INT. */
static int eint_set_type(struct irq_data *d, unsigned int type)
{
	unsigned int pin;
	struct bank *b;
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	eint_type[d->hwirq] = type & IRQ_TYPE_SENSE_MASK;
	b = eint_bank(d->hwirq, &pin);
	if (b)
		set_con(b, pin, 0xf);
	raw_spin_unlock_irqrestore(&lock, flags);
	return 0;
}

static struct irq_chip eint_chip = {
	.name = "tiny4412-eint",
	.irq_mask = eint_mask,
	.irq_unmask = eint_unmask,
	.irq_set_type = eint_set_type,
	.irq_request_resources = stock_eint_request,
};

static struct irq_chip adc_chip = {
	.name = "tiny4412-adc",
	.irq_request_resources = stock_adc_request,
};

/* 3.5's numbers if free, else any (IRQ_EINT(n) then names nothing). */
static int alloc_irqs(void)
{
	int base = irq_alloc_descs(EINT_IRQ0, EINT_IRQ0, NEINT, NUMA_NO_NODE);
	int i;

	eint_legacy = base == EINT_IRQ0;
	if (base < 0)
		base = irq_alloc_descs(-1, 0, NEINT, NUMA_NO_NODE);
	if (base < 0)
		return base;
	eint_base = base;
	for (i = 0; i < NEINT; i++) {
		struct irq_data *d;

		irq_set_chip_and_handler(base + i, &eint_chip, handle_simple_irq);
		d = irq_get_irq_data(base + i);
		d->hwirq = i;
		irq_clear_status_flags(base + i, IRQ_NOREQUEST | IRQ_NOPROBE);
	}
	adc_irq = irq_alloc_descs(IRQ_ADC, IRQ_ADC, 1, NUMA_NO_NODE);
	if (adc_irq >= 0) {
		irq_set_chip_and_handler(adc_irq, &adc_chip, handle_simple_irq);
		irq_clear_status_flags(adc_irq, IRQ_NOREQUEST | IRQ_NOPROBE);
	}
	return 0;
}

/* --- the ADC and the watchdog, from their registers --------------------- */

static void sync_adc(void)
{
	u32 con = rd(BLK_ADC, ADCCON);
	u32 v;

	if (!(con & (ADCCON_START | ADCCON_READ_START)) || (con & ADCCON_STDBM))
		return;
	v = ain[rd(BLK_ADC, ADCMUX) & (NAIN - 1)];
	wr(BLK_ADC, ADCDAT0, (con & ADCCON_RES12) ? v : v >> 2);
	wr(BLK_ADC, ADCCON, (con & ~ADCCON_START) | ADCCON_ECFLG);
	if (con & ADCCON_START) {
		adc_pending = true;
		irq_work_queue(&fire_work);
	}
}

/* The reset the watchdog's expiry causes. The harness hears of it from a
 * `board` marker, whose prefix (with the run's nonce) it gives at load:
 * the guest cannot print it before the reset as the step library prints
 * the others. Then the machine stops: smdkc210's kernel has no restart
 * handler (emergency_restart() halts it, "Reboot failed"), and QEMU models
 * no software reset, so the harness ends the run, as on a panic. */
static char *report;
module_param(report, charp, 0);
MODULE_PARM_DESC(report, "the prefix of the watchdog's reset marker (the harness's)");

static void reset_board(void)
{
	u64 ns = local_clock();
	u32 rem = do_div(ns, NSEC_PER_SEC);

	if (report)
		pr_emerg("%s %llu.%06u watchdog reset\n", report, ns, rem / 1000);
	pr_emerg("tiny4412-board: the watchdog expired: the board resets\n");
	emergency_restart();
}

/* The most of one gap between two polls the watchdog counts. The poll runs
 * every POLL_MS; a longer gap is a guest the host did not run (QEMU's vCPU
 * threads descheduled on a busy machine: the guest's clock is the host's,
 * so it jumps), in which the module's feeding timer did not run either. On
 * the board that CPU would have run and fed it; counting the whole gap
 * reset a guest that fed its watchdog on time (watchdog-init-timer, once in
 * six runs at a load average of 9). The cost: a CPU that keeps interrupts
 * off longer than the timeout resets the board, and this model does not
 * see it (the step's deadline or a lockup report does). */
#define WDT_GAP_NS (500ULL * NSEC_PER_MSEC)

static void sync_wdt(void)
{
	u32 con = rd(BLK_WDT, WTCON), cnt = rd(BLK_WDT, WTCNT);
	u64 now = local_clock(), ticks;

	/* A write of WTCNT (a feed) since the model last counted. */
	if (cnt != wdt_written)
		wdt_count = cnt;
	if (con & WTCON_ENABLE) {
		ticks = div64_u64(min(now - wdt_last_ns, WDT_GAP_NS) * (WDT_PCLK / 1000000),
				  1000ULL * (WTCON_PRESCALER(con) + 1) * WTCON_DIV(con));
		if (ticks >= wdt_count) {
			if (con & WTCON_RESET) {
				changed("watchdog", "reset");
				reset_board();
			}
			wdt_count = rd(BLK_WDT, WTDAT);
		} else if (ticks) {
			wdt_count -= ticks;
		}
		if (ticks)
			wdt_last_ns = now;
	} else {
		wdt_last_ns = now;
	}
	wdt_written = wdt_count;
	wr(BLK_WDT, WTCNT, wdt_count);
}

static void scan_unmodelled(void);

static enum hrtimer_restart poll(struct hrtimer *t)
{
	unsigned long flags;

	raw_spin_lock_irqsave(&lock, flags);
	sync_banks();
	sync_adc();
	sync_wdt();
	scan_unmodelled();
	raw_spin_unlock_irqrestore(&lock, flags);
	hrtimer_forward_now(t, ms_to_ktime(POLL_MS));
	return HRTIMER_RESTART;
}

/* --- mappings of the copies -------------------------------------------- */

/* The registers the model has, a bit per word of `copies`: a bank's CON,
 * DAT, PUD and DRV; the ADC's and the watchdog's registers. */
static void mark_modelled(void)
{
	int i;

	for (i = 0; i < NBANKS; i++)
		bitmap_set(modelled_words, (banks[i].block * BLOCK_SPAN + banks[i].offset) / 4, 4);
	bitmap_set(modelled_words, BLK_ADC * BLOCK_SPAN / 4, 8);
	bitmap_set(modelled_words, BLK_WDT * BLOCK_SPAN / 4, 4);
}

/* The block whose copy holds [phys, phys + size) with at least one
 * register the model has: a bank, several, a whole 4 KiB block, part of
 * a bank. A range with none of them (a bank the model lacks) is QEMU's,
 * whose log of rejected accesses makes the verdict "needs the board"; so
 * is one reaching past the copy. */
static struct block *modelled(phys_addr_t phys, size_t size)
{
	int i;

	for (i = 0; i < NBLOCKS; i++) {
		struct block *k = &blocks[i];
		unsigned long first, last;

		if (phys < k->phys || phys + size > k->phys + BLOCK_SPAN || !size)
			continue;
		first = (i * BLOCK_SPAN + (phys - k->phys)) / 4;
		last = (i * BLOCK_SPAN + (phys - k->phys) + size - 1) / 4;
		if (find_next_bit(modelled_words, last + 1, first) <= last)
			return k;
	}
	return NULL;
}

/* What each mapping of a copy was, to name it in a report. */
#define NMAPS 32
static struct mapping {
	unsigned long virt;
	phys_addr_t phys;
	size_t size;
	/* A fixed mapping's name (S5P_VA_GPIO2), or "": a copy, since the
	 * module that named it may be unloaded while the mapping stays. */
	char name[16];
	int count;
} maps[NMAPS];
static bool fixed[NBLOCKS];

/* Called with the lock held. */
static void note_mapping(unsigned long virt, phys_addr_t phys, size_t size, const char *name)
{
	int i, free = -1;

	for (i = 0; i < NMAPS; i++) {
		if (maps[i].count && maps[i].virt == virt && maps[i].size == size && !strcmp(maps[i].name, name ?: "")) {
			maps[i].count++;
			return;
		}
		if (!maps[i].count && free < 0)
			free = i;
	}
	if (free < 0)
		return;
	maps[free].virt = virt;
	maps[free].phys = phys;
	maps[free].size = size;
	strscpy(maps[free].name, name ?: "", sizeof(maps[free].name));
	maps[free].count = 1;
}

/* The narrowest mapping that holds `virt` (a bank's own ioremap() before
 * the whole block's fixed mapping). */
static struct mapping *mapping_of(unsigned long virt)
{
	struct mapping *best = NULL;
	int i;

	for (i = 0; i < NMAPS; i++)
		if (maps[i].count && virt >= maps[i].virt && virt < maps[i].virt + maps[i].size &&
		    (!best || maps[i].size < best->size))
			best = &maps[i];
	return best;
}

static void start_polling(void)
{
	if (mapped++ == 0) {
		wdt_last_ns = local_clock();
		hrtimer_start(&poll_timer, ms_to_ktime(POLL_MS), HRTIMER_MODE_REL);
	}
}

static void __iomem *map_copy(struct block *k, phys_addr_t phys, size_t size, const char *name)
{
	unsigned long virt = (unsigned long)k->regs + (phys - k->phys), flags;

	raw_spin_lock_irqsave(&lock, flags);
	if (!name || !fixed[k - blocks])
		start_polling();
	if (name)
		fixed[k - blocks] = true;
	note_mapping(virt, phys, size, name);
	raw_spin_unlock_irqrestore(&lock, flags);
	return (void __iomem *)virt;
}

/* The 3.5 layer's ioremap(): a range the model covers maps to the
 * model's copy of its block; NULL leaves it to the real ioremap(). */
void __iomem *tiny4412_board_ioremap(phys_addr_t phys, size_t size)
{
	struct block *k = modelled(phys, size);

	return k ? map_copy(k, phys, size, NULL) : NULL;
}
EXPORT_SYMBOL_GPL(tiny4412_board_ioremap);

/* 3.5's fixed mappings (the layer's S5P_VA_GPIO2, …): the copy, for good. */
void __iomem *tiny4412_board_va(phys_addr_t phys, size_t size, const char *name)
{
	struct block *k = modelled(phys, size);

	return k ? map_copy(k, phys, size, name) : NULL;
}
EXPORT_SYMBOL_GPL(tiny4412_board_va);

/* The layer's iounmap(): true if `addr` was the model's. */
bool tiny4412_board_iounmap(volatile void __iomem *addr)
{
	unsigned long a = (unsigned long)addr, flags;
	struct mapping *m;

	if (a < tiny4412_board_window.start || a >= tiny4412_board_window.end)
		return false;
	raw_spin_lock_irqsave(&lock, flags);
	m = mapping_of(a);
	if (m)
		m->count--;
	if (--mapped == 0) {
		raw_spin_unlock_irqrestore(&lock, flags);
		hrtimer_cancel(&poll_timer);
		raw_spin_lock_irqsave(&lock, flags);
		sync_banks();
	}
	raw_spin_unlock_irqrestore(&lock, flags);
	return true;
}
EXPORT_SYMBOL_GPL(tiny4412_board_iounmap);

/* request_mem_region() of a range the model covers: the model's own
 * resources (nothing of the kernel's holds them, as on 3.5's board, where
 * the GPIO driver used fixed mappings; 6.12's pin controller holds the
 * GPIO blocks), busy to a second request as on the board. */
static struct resource model_iomem = {
	.name = "tiny4412-board",
	.start = 0,
	.end = (resource_size_t)~0,
	.flags = IORESOURCE_MEM,
};

struct resource *tiny4412_board_request_region(resource_size_t start, resource_size_t n, const char *name)
{
	if (!modelled(start, n))
		return ERR_PTR(-ENOENT);
	return __request_region(&model_iomem, start, n, name, 0);
}
EXPORT_SYMBOL_GPL(tiny4412_board_request_region);

bool tiny4412_board_release_region(resource_size_t start, resource_size_t n)
{
	if (!modelled(start, n))
		return false;
	__release_region(&model_iomem, start, n);
	return true;
}
EXPORT_SYMBOL_GPL(tiny4412_board_release_region);

/* --- accesses the model does not have ----------------------------------- */

/* Each distinct access is reported once until the harness next reads the
 * changes (once per step): a loop polling a register reports it once. */
#define NSEEN 64
static struct {
	u32 phys;
	bool write;
	const char *file;
	int line;
} seen[NSEEN];
static int nseen;

/* A change `access`: `write 0x11400020 4 ioremap(0x11400000,0x1000)
 * led.c:57` (the line `-` when not known). The harness names the
 * register from the SoC's memory map. Called with the lock held. */
static void report_access(unsigned long virt, unsigned int size, bool write, const char *file, int line)
{
	unsigned long off = virt - tiny4412_board_window.start;
	u32 phys = blocks[off / BLOCK_SPAN].phys + off % BLOCK_SPAN;
	struct mapping *m = mapping_of(virt);
	char map[48], where[40];
	int i;

	for (i = 0; i < nseen; i++)
		if (seen[i].phys == phys && seen[i].write == write && seen[i].file == file && seen[i].line == line)
			return;
	if (nseen == NSEEN)
		return;
	seen[nseen].phys = phys;
	seen[nseen].write = write;
	seen[nseen].file = file;
	seen[nseen++].line = line;
	if (m && m->name[0])
		snprintf(map, sizeof(map), "%s", m->name);
	else if (m)
		snprintf(map, sizeof(map), "ioremap(0x%08llx,0x%zx)", (unsigned long long)m->phys, m->size);
	else
		snprintf(map, sizeof(map), "-");
	if (file)
		snprintf(where, sizeof(where), "%s:%d", kbasename(file), line);
	else
		snprintf(where, sizeof(where), "-");
	changed("access", "%s 0x%08x %u %s %s", write ? "write" : "read", phys, size, map, where);
}

/* The words of [off, off + size) that the model does not have, seen. */
static void shadow_update(unsigned long off, unsigned int size)
{
	unsigned long w;

	for (w = off / 4; w <= (off + size - 1) / 4; w++)
		((u32 *)shadow)[w] = ((u32 *)copies)[w];
}

/* The layer's accessor, for an address of a copy that is not a register
 * the model has at that alignment: the access is done on the copy (a
 * register the model has takes a misaligned write as memory would), and
 * reported. The board has these registers, or faults on the alignment:
 * the verdict says the module needs the board. */
u32 tiny4412_board_access(const volatile void __iomem *addr, unsigned int size, bool write, u32 value,
			  const char *file, int line)
{
	unsigned long virt = (unsigned long)addr, flags, off;
	void *p = (void *)addr;
	u32 v = 0;

	if (virt < tiny4412_board_window.start || virt + size > tiny4412_board_window.end)
		return 0;
	off = virt - tiny4412_board_window.start;
	raw_spin_lock_irqsave(&lock, flags);
	if (write && size == 1)
		*(u8 *)p = value;
	else if (write && size == 2)
		put_unaligned((u16)value, (u16 *)p);
	else if (write)
		put_unaligned(value, (u32 *)p);
	else if (size == 1)
		v = *(u8 *)p;
	else if (size == 2)
		v = get_unaligned((u16 *)p);
	else
		v = get_unaligned((u32 *)p);
	if (write)
		shadow_update(off, size);
	report_access(virt, size, write, file, line);
	raw_spin_unlock_irqrestore(&lock, flags);
	return v;
}
EXPORT_SYMBOL_GPL(tiny4412_board_access);

/* A plain pointer's writes to registers the model does not have: found
 * when the model next looks, without a line. Called with the lock held. */
static void scan_unmodelled(void)
{
	unsigned long w, nwords = NBLOCKS * BLOCK_SPAN / 4;

	for_each_clear_bit(w, modelled_words, nwords) {
		if (((u32 *)copies)[w] == ((u32 *)shadow)[w])
			continue;
		((u32 *)shadow)[w] = ((u32 *)copies)[w];
		report_access(tiny4412_board_window.start + w * 4, 4, true, NULL, 0);
	}
}

/* --- the board's side: /proc/tiny4412-board/ ---------------------------- */

static int key_index(const char *name)
{
	if (name[0] == 'K' && name[1] >= '1' && name[1] <= '0' + NKEYS && !name[2])
		return name[1] - '1';
	return -1;
}

/* K1-K4 are GPX3_2..5. */
static void set_key(int k, bool pressed)
{
	struct bank *b = &banks[BANK_GPX3];
	unsigned int pin = k + 2;
	unsigned long flags;
	int was;

	raw_spin_lock_irqsave(&lock, flags);
	was = pin_level(b, pin);
	if (pressed)
		b->level &= ~BIT(pin);
	else
		b->level |= BIT(pin);
	if (key_pressed[k] != pressed) {
		key_pressed[k] = pressed;
		changed(gpx3_names[pin], pressed ? "pressed" : "released");
	}
	refresh_inputs(b);
	pin_edge(b, pin, was, pin_level(b, pin));
	raw_spin_unlock_irqrestore(&lock, flags);
}

static ssize_t control_write(struct file *f, const char __user *ubuf, size_t len, loff_t *ppos)
{
	char buf[64], what[16];
	unsigned int value = 0, ch;
	unsigned long flags;
	int n, k;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	if (stock_control(buf))
		return len;
	n = sscanf(buf, "press %15s", what);
	if (n == 1 && (k = key_index(what)) >= 0) {
		set_key(k, true);
		return len;
	}
	if (sscanf(buf, "release %15s", what) == 1 && (k = key_index(what)) >= 0) {
		set_key(k, false);
		return len;
	}
	if (sscanf(buf, "click %15s %u", what, &value) == 2 && (k = key_index(what)) >= 0 && value <= 10000) {
		set_key(k, true);
		msleep(value);
		set_key(k, false);
		return len;
	}
	if (sscanf(buf, "adc AIN%u %u", &ch, &value) == 2 && ch < NAIN && value < 4096) {
		snprintf(what, sizeof(what), "AIN%u", ch);
		raw_spin_lock_irqsave(&lock, flags);
		ain[ch] = value;
		changed(what, "%u", value);
		raw_spin_unlock_irqrestore(&lock, flags);
		return len;
	}
	return -EINVAL;
}

static const struct proc_ops control_ops = {
	.proc_write = control_write,
};

static int state_show(struct seq_file *s, void *v)
{
	unsigned long flags;
	int i;

	raw_spin_lock_irqsave(&lock, flags);
	sync_banks();
	for (i = 0; i < NLEDS; i++)
		seq_printf(s, "LED%d %s\n", i + 1, led_state[i] ? "on" : "off");
	seq_printf(s, "buzzer %s\n", buzzer_state == 2 ? "pwm" : buzzer_state ? "on" : "off");
	for (i = 0; i < NKEYS; i++)
		seq_printf(s, "K%d %s\n", i + 1, key_pressed[i] ? "pressed" : "released");
	for (i = 0; i < NAIN; i++)
		seq_printf(s, "AIN%d %u\n", i, ain[i]);
	seq_printf(s, "watchdog %s\n", (rd(BLK_WDT, WTCON) & WTCON_ENABLE) ? "on" : "off");
	raw_spin_unlock_irqrestore(&lock, flags);
	return 0;
}

/* What changed since the last read: each read drains what it shows. */
static int changes_show(struct seq_file *s, void *v)
{
	unsigned long flags, seq;

	raw_spin_lock_irqsave(&lock, flags);
	if (next_seq - read_seq > NCHANGES) {
		seq_printf(s, "%lu 0.000000 lost %lu\n", read_seq, next_seq - read_seq - NCHANGES);
		read_seq = next_seq - NCHANGES;
	}
	for (seq = read_seq; seq < next_seq; seq++) {
		struct change *c = &changes[seq % NCHANGES];
		u64 ns = c->at;
		u32 rem = do_div(ns, NSEC_PER_SEC);

		seq_printf(s, "%lu %llu.%06u %s %s\n", c->seq, ns, rem / 1000, c->what, c->state);
	}
	read_seq = next_seq;
	nseen = 0;
	raw_spin_unlock_irqrestore(&lock, flags);
	return 0;
}

/* --- load and unload ---------------------------------------------------- */

static void remove_chips(void)
{
	int i;

	for (i = 0; i < NBANKS; i++)
		if (banks[i].added)
			gpiochip_remove(&banks[i].chip);
}

static int add_chips(void)
{
	int i, ret;

	for (i = 0; i < NBANKS; i++) {
		struct bank *b = &banks[i];
		struct gpio_chip *c = &b->chip;

		c->label = b->name;
		c->owner = THIS_MODULE;
		c->base = b->base;
		c->ngpio = b->ngpio;
		c->names = b->names;
		c->get_direction = chip_get_direction;
		c->direction_input = chip_direction_input;
		c->direction_output = chip_direction_output;
		c->get = chip_get;
		c->set = chip_set;
		c->to_irq = chip_to_irq;
		c->request = stock_gpio_request;
		c->free = chip_free;
		ret = gpiochip_add_data(c, b);
		if (ret) {
			pr_err("tiny4412-board: bank %s at %u: %d\n", b->name, b->base, ret);
			return ret;
		}
		b->added = true;
	}
	return 0;
}

static void free_blocks(void)
{
	if (copies)
		free_pages_exact(copies, NBLOCKS * BLOCK_SPAN);
	if (shadow)
		free_pages_exact(shadow, NBLOCKS * BLOCK_SPAN);
}

static int alloc_blocks(void)
{
	int i;

	copies = alloc_pages_exact(NBLOCKS * BLOCK_SPAN, GFP_KERNEL | __GFP_ZERO);
	shadow = alloc_pages_exact(NBLOCKS * BLOCK_SPAN, GFP_KERNEL | __GFP_ZERO);
	if (!copies || !shadow) {
		free_blocks();
		return -ENOMEM;
	}
	for (i = 0; i < NBLOCKS; i++)
		blocks[i].regs = (u32 *)(copies + i * BLOCK_SPAN);
	tiny4412_board_window.start = (unsigned long)copies;
	tiny4412_board_window.end = (unsigned long)copies + NBLOCKS * BLOCK_SPAN;
	tiny4412_board_window.modelled = modelled_words;
	mark_modelled();
	return 0;
}

static int __init board_init(void)
{
	int ret;

	ret = alloc_blocks();
	if (ret)
		return ret;
	/* Reset values: PUD pull-down (0x5555) on GPX3, as the UM gives. */
	wr(BLK_GPIO_LEFT, banks[BANK_GPX3].offset + GP_PUD, 0x5555);
	/* ADCCON: prescaler 0xFF, standby; WTCNT and WTDAT 0x8000; WTCON 0,
	 * as U-Boot leaves it (its reset value, 0x8021, would run it). */
	wr(BLK_ADC, ADCCON, 0x3FC4);
	wr(BLK_WDT, WTDAT, 0x8000);
	wr(BLK_WDT, WTCNT, 0x8000);
	wdt_count = wdt_written = 0x8000;
	sync_banks();
	memcpy(shadow, copies, NBLOCKS * BLOCK_SPAN);
	hrtimer_init(&poll_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	poll_timer.function = poll;
	init_irq_work(&fire_work, fire);
	ret = alloc_irqs();
	if (ret)
		goto fail;
	ret = add_chips();
	if (ret)
		goto fail_chips;
	ret = board_clocks_add();
	if (ret)
		goto fail_chips;
	ret = stock_init();
	if (ret) {
		board_clocks_remove();
		goto fail_chips;
	}
	dir = proc_mkdir("tiny4412-board", NULL);
	if (!dir || !proc_create("control", 0200, dir, &control_ops) ||
	    !proc_create_single("state", 0444, dir, state_show) ||
	    !proc_create_single("changes", 0444, dir, changes_show)) {
		proc_remove(dir);
		stock_exit();
		board_clocks_remove();
		ret = -ENOMEM;
		goto fail_chips;
	}
	pr_info("tiny4412-board: K1-K4 at gpio %u-%u, irq %u-%u%s; LED1-4 at gpio %u-%u; ADC irq %d\n",
		banks[BANK_GPX3].base + 2, banks[BANK_GPX3].base + 5,
		eint_base + 26, eint_base + 29, eint_legacy ? " (3.5's IRQ_EINT)" : " (not 3.5's IRQ_EINT numbers: taken)",
		banks[BANK_GPM4].base, banks[BANK_GPM4].base + 3, adc_irq);
	return 0;

fail_chips:
	remove_chips();
	irq_free_descs(eint_base, NEINT);
	if (adc_irq >= 0)
		irq_free_descs(adc_irq, 1);
fail:
	free_blocks();
	return ret;
}

static void __exit board_exit(void)
{
	proc_remove(dir);
	stock_exit();
	hrtimer_cancel(&poll_timer);
	irq_work_sync(&fire_work);
	board_clocks_remove();
	remove_chips();
	irq_free_descs(eint_base, NEINT);
	if (adc_irq >= 0)
		irq_free_descs(adc_irq, 1);
	free_blocks();
}

module_init(board_init);
module_exit(board_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("The Tiny4412's buttons, LEDs, buzzer, ADC and watchdog, modelled for QEMU's smdkc210");
