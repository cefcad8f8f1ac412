// SPDX-License-Identifier: MIT
/*
 * 8250/16550A UART on COM1. The transmitter is always ready: a byte the guest
 * writes goes straight to the output fd, so LSR always shows THRE|TEMT and
 * guest output appears unbuffered. Input from stdin (main thread, via the
 * main AioContext) fills a receive FIFO and raises IRQ 4.
 *
 * Locking: vCPU threads (register access) and the main thread (input) share
 * struct serial; everything below lock is protected by it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/sandbox.h"
#include "vmm/serial.h"
#include "vmm/vm.h"

#define SERIAL_BASE 0x3f8
#define SERIAL_IRQ  4
#define SERIAL_FIFO 256

/* Register bits (8250 data sheet names). */
#define IER_RDI	  0x01
#define IER_THRI  0x02
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI	  0x04
#define IIR_FIFO  0xc0
#define FCR_EN	  0x01
#define FCR_CLRRX 0x02
#define LCR_DLAB  0x80
#define MCR_LOOP  0x10
#define LSR_DR	  0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40

struct serial {
	struct vm *vm;
	int out_fd;   /* -1: --serial none */
	bool own_out; /* out_fd is a file we opened */
	int in_fd;    /* -1: no input */
	bool tty_raw;
	struct termios saved_tio;

	pthread_mutex_t lock;
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	bool thre_pending;
	bool irq_level;
	uint8_t rx[SERIAL_FIFO];
	unsigned rx_head, rx_count;
};

static void serial_update_irq(struct serial *s)
{
	bool level =
	    ((s->ier & IER_RDI) && s->rx_count) || ((s->ier & IER_THRI) && s->thre_pending);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	vm_irq_line(s->vm, SERIAL_IRQ, level);
}

static void serial_rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_count == SERIAL_FIFO)
		return; /* overrun: the byte is lost, as on hardware */
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO] = c;
	s->rx_count++;
}

static void serial_transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		serial_rx_push(s, c);
		return;
	}
	if (s->out_fd < 0)
		return;
	for (;;) {
		ssize_t n = write(s->out_fd, &c, 1);

		if (n == 1 || (n < 0 && errno != EINTR))
			return; /* a closed stdout loses output, not the VM */
	}
}

static uint8_t serial_read(struct serial *s, uint64_t off)
{
	uint8_t v = 0;

	switch (off) {
	case 0:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_count) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % SERIAL_FIFO;
			s->rx_count--;
		}
		return v;
	case 1:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case 2:
		if ((s->ier & IER_RDI) && s->rx_count) {
			v = IIR_RDI;
		} else if ((s->ier & IER_THRI) && s->thre_pending) {
			v = IIR_THRI;
			s->thre_pending = false; /* reading IIR acknowledges THRE */
		} else {
			v = IIR_NONE;
		}
		return v | ((s->fcr & FCR_EN) ? IIR_FIFO : 0);
	case 3:
		return s->lcr;
	case 4:
		return s->mcr;
	case 5:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case 6:
		if (s->mcr & MCR_LOOP) /* RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD */
			return (uint8_t)(((s->mcr & 0x02) << 3) | ((s->mcr & 0x01) << 5) |
					 ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
		return 0xb0; /* DCD | DSR | CTS */
	default:
		return s->scr;
	}
}

static void serial_write(struct serial *s, uint64_t off, uint8_t v)
{
	switch (off) {
	case 0:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
		} else {
			serial_transmit(s, v);
			s->thre_pending = true;
		}
		break;
	case 1:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			if (!(s->ier & IER_THRI) && (v & IER_THRI))
				s->thre_pending = true;
			s->ier = v & 0x0f;
		}
		break;
	case 2:
		s->fcr = v;
		if (v & FCR_CLRRX)
			s->rx_count = 0;
		break;
	case 3:
		s->lcr = v;
		break;
	case 4:
		s->mcr = v & 0x1f;
		break;
	case 7:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static void serial_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	uint8_t *p = data;

	pthread_mutex_lock(&s->lock);
	/* Wider accesses act on consecutive registers, byte by byte. */
	for (uint32_t i = 0; i < len && off + i < 8; i++) {
		if (is_write)
			serial_write(s, off + i, p[i]);
		else
			p[i] = serial_read(s, off + i);
	}
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* Main thread (fd handler on the main AioContext). */
static void serial_stdin_ready(void *opaque)
{
	struct serial *s = opaque;
	uint8_t buf[SERIAL_FIFO];
	ssize_t n = read(s->in_fd, buf, sizeof(buf));

	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		/* EOF or error: stop listening; the guest keeps running. */
		aio_set_fd_handler(s->vm->main_ctx, s->in_fd, NULL, NULL, NULL);
		s->in_fd = -1;
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (ssize_t i = 0; i < n; i++)
		serial_rx_push(s, buf[i]);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static int serial_setup_input(struct serial *s, struct errbuf *err)
{
	struct stat st;
	bool tty = isatty(STDIN_FILENO);

	if (!tty && (fstat(STDIN_FILENO, &st) < 0 || !S_ISFIFO(st.st_mode)))
		return 0; /* /dev/null, a regular file or closed: no input */
	if (tty && tcgetattr(STDIN_FILENO, &s->saved_tio) == 0) {
		struct termios raw = s->saved_tio;

		/* Raw input for the guest, but keep ISIG so ^C still stops kvmini. */
		raw.c_iflag &=
		    ~(unsigned)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
		raw.c_lflag &= ~(unsigned)(ECHO | ECHONL | ICANON | IEXTEN);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
			s->tty_raw = true;
			sandbox_set_tty_restore(STDIN_FILENO, &s->saved_tio);
		}
	}
	s->in_fd = STDIN_FILENO;
	fcntl(s->in_fd, F_SETFL, fcntl(s->in_fd, F_GETFL) | O_NONBLOCK);
	if (aio_set_fd_handler(s->vm->main_ctx, s->in_fd, serial_stdin_ready, NULL, s) < 0) {
		s->in_fd = -1;
		return err_set(err, EIO, "serial: cannot watch stdin");
	}
	return 0;
}

static void serial_exit(void *state)
{
	struct serial *s = state;

	/* The port range points at @s: gone with it, so the same VM can
	 * realize a serial port again (the devload fuzz target does). */
	bus_unregister(&s->vm->pio, SERIAL_BASE);
	if (s->in_fd >= 0) {
		aio_set_fd_handler(s->vm->main_ctx, s->in_fd, NULL, NULL, NULL);
		fcntl(s->in_fd, F_SETFL, fcntl(s->in_fd, F_GETFL) & ~O_NONBLOCK);
	}
	if (s->tty_raw) {
		sandbox_set_tty_restore(-1, NULL);
		tcsetattr(STDIN_FILENO, TCSANOW, &s->saved_tio);
	}
	if (s->own_out) {
		fsync(s->out_fd);
		close(s->out_fd);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int serial_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	const struct vm_config *cfg = vm->cfg;
	struct serial *s = calloc(1, sizeof(*s));
	struct stat st;
	int ret;

	if (!s)
		return err_set(err, ENOMEM, "serial: out of memory");
	s->vm = vm;
	s->in_fd = -1;
	s->out_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	switch (cfg->serial) {
	case SERIAL_STDIO:
		s->out_fd = STDOUT_FILENO;
		break;
	case SERIAL_FILE:
		/* The file the user named: a regular file is replaced (new
		 * ones 0600: a console can show secrets), a FIFO or device
		 * written as it is; a symbolic link is refused, never
		 * followed to clobber what it points at. */
		s->out_fd =
		    open(cfg->serial_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (s->out_fd < 0) {
			ret = err_set(err, errno, "--serial file=%s: %s", cfg->serial_path,
				      errno == ELOOP ? "is a symbolic link (name the file itself)"
						     : strerror(errno));
			goto fail;
		}
		s->own_out = true;
		if (fstat(s->out_fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    ftruncate(s->out_fd, 0) < 0) {
			ret = err_set(err, errno, "--serial file=%s: %s", cfg->serial_path,
				      strerror(errno));
			goto fail_out;
		}
		break;
	case SERIAL_NONE:
		break;
	}
	ret = bus_register(&vm->pio, SERIAL_BASE, 8, serial_io, s, "serial", err);
	if (ret < 0)
		goto fail_out;
	if (cfg->serial == SERIAL_STDIO) {
		ret = serial_setup_input(s, err);
		if (ret < 0)
			goto fail_bus;
	}
	*state = s;
	return 0;
fail_bus:
	bus_unregister(&vm->pio, SERIAL_BASE);
fail_out:
	if (s->own_out)
		close(s->out_fd);
fail:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}

static void serial_reset(void *state)
{
	struct serial *s = state;

	pthread_mutex_lock(&s->lock);
	s->dll = s->dlm = s->ier = s->fcr = s->lcr = s->mcr = s->scr = 0;
	s->thre_pending = false;
	s->rx_head = s->rx_count = 0;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* Saved state, version 1: the registers and the receive FIFO. */
struct serial_saved {
	uint32_t version;
	uint8_t dll, dlm, ier, fcr, lcr, mcr, scr;
	uint8_t thre_pending;
	uint32_t rx_count;
	uint8_t rx[SERIAL_FIFO];
};

static int serial_save(void *state, void *buf, size_t len)
{
	struct serial *s = state;
	struct serial_saved v = {.version = 1};

	if (len < sizeof(v))
		return -ENOSPC;
	pthread_mutex_lock(&s->lock);
	v.dll = s->dll;
	v.dlm = s->dlm;
	v.ier = s->ier;
	v.fcr = s->fcr;
	v.lcr = s->lcr;
	v.mcr = s->mcr;
	v.scr = s->scr;
	v.thre_pending = s->thre_pending;
	v.rx_count = s->rx_count;
	for (unsigned i = 0; i < s->rx_count; i++)
		v.rx[i] = s->rx[(s->rx_head + i) % SERIAL_FIFO];
	pthread_mutex_unlock(&s->lock);
	memcpy(buf, &v, sizeof(v));
	return (int)sizeof(v);
}

static int serial_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct serial *s = state;
	struct serial_saved v;

	if (len != sizeof(v))
		return err_set(err, EINVAL, "snapshot: serial state has %zu bytes, expected %zu",
			       len, sizeof(v));
	memcpy(&v, buf, sizeof(v));
	if (v.version != 1)
		return err_set(err, EINVAL, "snapshot: serial state version %u, kvmini reads 1",
			       v.version);
	if (v.rx_count > SERIAL_FIFO || v.thre_pending > 1 || v.ier > 0x0f || v.mcr > 0x1f)
		return err_set(err, EINVAL, "snapshot: serial state is invalid");
	pthread_mutex_lock(&s->lock);
	s->dll = v.dll;
	s->dlm = v.dlm;
	s->ier = v.ier;
	s->fcr = v.fcr;
	s->lcr = v.lcr;
	s->mcr = v.mcr;
	s->scr = v.scr;
	s->thre_pending = v.thre_pending;
	s->rx_head = 0;
	s->rx_count = v.rx_count;
	memcpy(s->rx, v.rx, sizeof(s->rx));
	/* The irqchip was restored with the line as it was. */
	s->irq_level =
	    ((s->ier & IER_RDI) && s->rx_count) || ((s->ier & IER_THRI) && s->thre_pending);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

const struct device_ops serial_ops = {
    .name = "serial",
    .realize = serial_realize,
    .reset = serial_reset,
    .save = serial_save,
    .load = serial_load,
    .exit = serial_exit,
};
