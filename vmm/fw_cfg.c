// SPDX-License-Identifier: MIT
/*
 * fw_cfg (fw_cfg.h): a handful of fixed items built at realize from the
 * VM's configuration, read a byte at a time through the data port.
 *
 * vCPU threads call the port handler; one mutex covers the selector and
 * the offset (kvm-unit-tests serializes its readers, other guests may not).
 * The items never change after realize.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/fw_cfg.h"
#include "vmm/vm.h"

#define FW_CFG_WRITE_CHANNEL 0x4000 /* a flag of the key: same item */
#define FW_CFG_ITEM_MAX	     16	    /* the longest item: the UUID */
#define FW_CFG_NITEMS	     8

struct fw_cfg_item {
	uint16_t key;
	uint8_t len;
	uint8_t data[FW_CFG_ITEM_MAX];
};

struct fw_cfg {
	pthread_mutex_t lock;
	uint16_t selector; /* as the guest wrote it */
	uint32_t offset;   /* next byte of the selected item; at most its length */
	struct fw_cfg_item items[FW_CFG_NITEMS];
};

/* The selected item, or NULL: unknown keys (arch-local ones included) read 0. */
static const struct fw_cfg_item *fw_cfg_find(const struct fw_cfg *f, uint16_t selector)
{
	uint16_t key = selector & (uint16_t)~FW_CFG_WRITE_CHANNEL;

	for (size_t i = 0; i < FW_CFG_NITEMS; i++)
		if (f->items[i].key == key)
			return &f->items[i];
	return NULL;
}

static uint32_t fw_cfg_item_len(const struct fw_cfg *f, uint16_t selector)
{
	const struct fw_cfg_item *it = fw_cfg_find(f, selector);

	return it ? it->len : 0;
}

static uint8_t fw_cfg_read_byte(struct fw_cfg *f)
{
	const struct fw_cfg_item *it = fw_cfg_find(f, f->selector);

	/* Past the end the offset stays put, as QEMU's does. */
	if (!it || f->offset >= it->len)
		return 0;
	return it->data[f->offset++];
}

static void fw_cfg_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct fw_cfg *f = opaque;
	uint16_t sel;

	pthread_mutex_lock(&f->lock);
	if (is_write) {
		/* 16 bits at the selector port select; byte writes would be
		 * data writes, which the legacy interface no longer takes. */
		if (off == 0 && len == 2) {
			memcpy(&sel, data, 2);
			f->selector = sel;
			f->offset = 0;
		}
	} else if (len == 1) {
		/* QEMU answers byte reads at both ports with data. */
		*(uint8_t *)data = fw_cfg_read_byte(f);
	} else {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&f->lock);
}

static void fw_cfg_put_le(struct fw_cfg_item *it, uint16_t key, uint64_t v, uint8_t len)
{
	it->key = key;
	it->len = len;
	for (uint8_t i = 0; i < len; i++)
		it->data[i] = (uint8_t)(v >> (8 * i));
}

static void fw_cfg_build(struct fw_cfg *f, uint64_t ram_size, unsigned ncpus)
{
	struct fw_cfg_item *it = f->items;

	it->key = FW_CFG_SIGNATURE;
	it->len = 4;
	memcpy(it->data, "QEMU", 4);
	it++;
	fw_cfg_put_le(it++, FW_CFG_ID, FW_CFG_ID_TRADITIONAL, 4);
	it->key = FW_CFG_UUID;
	it->len = 16; /* zeroed by calloc */
	it++;
	fw_cfg_put_le(it++, FW_CFG_RAM_SIZE, ram_size, 8);
	fw_cfg_put_le(it++, FW_CFG_NB_CPUS, ncpus, 2);
	/* No CPU hotplug: the maximum is what the VM has. */
	fw_cfg_put_le(it++, FW_CFG_MAX_CPUS, ncpus, 2);
	fw_cfg_put_le(it++, FW_CFG_MAX_RAM, 0, 8);
	it->key = FW_CFG_FILE_DIR; /* big-endian count 0: no files */
	it->len = 4;
}

static void fw_cfg_reset(void *state)
{
	struct fw_cfg *f = state;

	pthread_mutex_lock(&f->lock);
	f->selector = FW_CFG_SIGNATURE;
	f->offset = 0;
	pthread_mutex_unlock(&f->lock);
}

static int fw_cfg_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return err_set(err, ENOMEM, "fw-cfg: out of memory");
	pthread_mutex_init(&f->lock, NULL);
	fw_cfg_build(f, vm->mem.ram_size, vm->cfg->ncpus);
	ret = bus_register(&vm->pio, FW_CFG_PORT_SEL, FW_CFG_PORTS, fw_cfg_io, f, "fw-cfg", err);
	if (ret < 0) {
		pthread_mutex_destroy(&f->lock);
		free(f);
		return ret;
	}
	*state = f;
	return 0;
}

static void fw_cfg_exit(void *state)
{
	struct fw_cfg *f = state;

	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* Snapshot section: where a guest's read stands. The items come from the
 * command line, which a restore repeats. */
struct fw_cfg_saved {
	uint32_t version;
	uint16_t selector;
	uint16_t pad;
	uint32_t offset;
};

static int fw_cfg_save(void *state, void *buf, size_t len)
{
	struct fw_cfg *f = state;
	struct fw_cfg_saved v = {.version = 1};

	if (len < sizeof(v))
		return -ENOSPC;
	v.selector = f->selector;
	v.offset = f->offset;
	memcpy(buf, &v, sizeof(v));
	return (int)sizeof(v);
}

static int fw_cfg_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct fw_cfg *f = state;
	struct fw_cfg_saved v;

	if (len != sizeof(v))
		return err_set(err, EINVAL, "fw-cfg: state of %zu bytes, want %zu", len, sizeof(v));
	memcpy(&v, buf, sizeof(v));
	if (v.version != 1)
		return err_set(err, EINVAL, "fw-cfg: unknown state version %u", v.version);
	if (v.pad)
		return err_set(err, EINVAL, "fw-cfg: nonzero padding");
	if (v.offset > fw_cfg_item_len(f, v.selector))
		return err_set(err, EINVAL, "fw-cfg: offset %u is past the end of item 0x%x",
			       v.offset, v.selector);
	f->selector = v.selector;
	f->offset = v.offset;
	return 0;
}

const struct device_ops fw_cfg_ops = {
    .name = "fw-cfg",
    .realize = fw_cfg_realize,
    .reset = fw_cfg_reset,
    .save = fw_cfg_save,
    .load = fw_cfg_load,
    .exit = fw_cfg_exit,
};
