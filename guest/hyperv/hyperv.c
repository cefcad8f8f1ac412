// SPDX-License-Identifier: MIT
/*
 * Hyper-V enlightenments as --hyperv offers them (tests/system/test_hyperv.py):
 * prints the Hyper-V CPUID signature and where KVM's own leaves are, and
 * with a SynIC and the hyperv-testdev (--testdev) checks that a SINT
 * interrupt arrives (SINT route), that HvPostMessage puts a message in the
 * SIMP slot and signals the SINT, that a message to a busy slot sets
 * msg_pending and arrives after EOM, that HvSignalEvent sets the event flag
 * and signals the SINT, and that an unknown hypercall fails with code 2.
 * Every step prints one "hyperv: ..." line; a failure exits 120 (ASSERT).
 * Without Hyper-V it exits 0, or 1 with the word "required" on its command
 * line (the kvm-unit-tests runner's test: the option must reach kvmini).
 */
#include "guest.h"

#define HV_MSR_GUEST_OS_ID 0x40000000u
#define HV_MSR_HYPERCALL   0x40000001u
#define HV_MSR_SCONTROL	   0x40000080u
#define HV_MSR_SIEFP	   0x40000082u
#define HV_MSR_SIMP	   0x40000083u
#define HV_MSR_EOM	   0x40000084u
#define HV_MSR_SINT0	   0x40000090u
#define HV_SYNIC_AVAILABLE (1u << 2)

#define TESTDEV_PORT 0x3000
enum {
	ROUTE_CREATE = 1,
	ROUTE_DESTROY,
	ROUTE_SET,
	MSG_CREATE,
	MSG_DESTROY,
	EVT_CREATE,
	EVT_DESTROY
};

#define ROUTE_SINT 2
#define MSG_SINT   3
#define EVT_SINT   4
#define MSG_CONN   5
#define EVT_CONN   7
#define MSG_TYPE   0x1234

struct hv_message {
	uint32_t type;
	uint8_t size;
	uint8_t flags;
	uint8_t reserved[2];
	uint64_t sender;
	uint64_t payload[30];
};

struct hv_post_input {
	uint32_t conn;
	uint32_t reserved;
	uint32_t type;
	uint32_t size;
	uint64_t payload[30];
};

static uint8_t hcall_page[4096] __attribute__((aligned(4096)));
static struct hv_message msg_page[16] __attribute__((aligned(4096)));
static uint64_t evt_page[16][32] __attribute__((aligned(4096)));
static struct hv_post_input post_page __attribute__((aligned(4096)));

static uint64_t hypercall(uint16_t code, bool fast, uint64_t param)
{
	uint64_t status, ctl = code | (fast ? 1u << 16 : 0);
	register uint64_t r8 __asm__("r8") = 0;

	__asm__ volatile("call *%[page]"
			 : "=a"(status), "+c"(ctl), "+d"(param), "+r"(r8)
			 : [page] "r"(hcall_page)
			 : "memory", "r9", "r10", "r11");
	return status;
}

static void testdev(unsigned ctl, unsigned sint, unsigned conn)
{
	outl(TESTDEV_PORT, conn << 24 | ctl << 16 | 0 << 8 | sint);
}

struct wait {
	unsigned vector;
	uint64_t count;
};

static bool arrived(void *arg)
{
	struct wait *w = arg;

	return irq_count(w->vector) >= w->count;
}

static void wait_for(unsigned vector, uint64_t count)
{
	struct wait w = {vector, count};

	ASSERT(irq_wait(arrived, &w, tsc_ms(30000))); /* a loaded, nested host is slow */
}

static int sint_vector(unsigned sint)
{
	int v = irq_alloc(NULL, NULL);

	ASSERT(v > 0);
	wrmsr(HV_MSR_SINT0 + sint, (uint64_t)v); /* unmasked, EOI by the runtime */
	return v;
}

static void post(uint64_t payload)
{
	post_page.conn = MSG_CONN;
	post_page.type = MSG_TYPE;
	post_page.size = 8;
	post_page.payload[0] = payload;
	ASSERT_EQ(hypercall(0x5c, false, (uint64_t)(uintptr_t)&post_page), 0);
}

int main(void)
{
	uint32_t a, b, c, d, kvm_base = 0;
	char vendor[13];
	int v_route, v_msg, v_evt;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &c, 4);
	memcpy(vendor + 8, &d, 4);
	vendor[12] = 0;
	for (uint32_t base = 0x40000000; base <= 0x40010000; base += 0x100) {
		cpuid(base, 0, &a, &b, &c, &d);
		if (b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d) { /* "KVMKVMKVM\0\0\0" */
			kvm_base = base;
			break;
		}
	}
	printf("hyperv: kvm leaves at 0x%x\n", kvm_base);
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	if (a != 0x31237648) { /* "Hv#1" */
		printf("hyperv: no Hyper-V interface (0x40000001 eax 0x%x)\n", a);
		return cmdline_has("required") ? 1 : 0;
	}
	cpuid(0x40000000, 0, &a, &b, &c, &d);
	printf("hyperv: interface Hv#1 vendor '%s' max leaf 0x%x\n", vendor, a);
	cpuid(0x40000003, 0, &a, &b, &c, &d);
	if (!(a & HV_SYNIC_AVAILABLE)) {
		printf("hyperv: no SynIC\n");
		return 0;
	}

	irq_init();
	wrmsr(HV_MSR_GUEST_OS_ID, 0x8f00ull << 48);
	wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)hcall_page | 1);
	wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)msg_page | 1);
	wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)evt_page | 1);
	wrmsr(HV_MSR_SCONTROL, 1);
	printf("hyperv: synic on\n");

	ASSERT_EQ(hypercall(0x99, true, 0), 2);
	printf("hyperv: unknown hypercall status 2\n");

	/* A SINT route, set by the device. */
	testdev(ROUTE_CREATE, ROUTE_SINT, 0);
	v_route = sint_vector(ROUTE_SINT);
	testdev(ROUTE_SET, ROUTE_SINT, 0);
	wait_for((unsigned)v_route, 1);
	printf("hyperv: sint interrupt delivered\n");

	/* A message to ourselves, then one to the busy slot. */
	testdev(MSG_CREATE, MSG_SINT, MSG_CONN);
	v_msg = sint_vector(MSG_SINT);
	post(0x1111);
	wait_for((unsigned)v_msg, 1);
	ASSERT_EQ(msg_page[MSG_SINT].type, MSG_TYPE);
	ASSERT_EQ(msg_page[MSG_SINT].size, 8);
	ASSERT_EQ(msg_page[MSG_SINT].payload[0], 0x1111);
	ASSERT_EQ(msg_page[MSG_SINT].flags, 0);
	printf("hyperv: message delivered\n");
	post(0x2222);
	/* QEMU posts from its main loop, after the hypercall returned: wait
	 * for the flag (kvmini sets it before returning). */
	{
		uint64_t until = rdtsc() + tsc_ms(30000);

		while (!(__atomic_load_n(&msg_page[MSG_SINT].flags, __ATOMIC_ACQUIRE) & 1) &&
		       rdtsc() < until)
			__asm__ volatile("pause");
	}
	ASSERT_EQ(msg_page[MSG_SINT].payload[0], 0x1111);
	ASSERT_EQ(msg_page[MSG_SINT].flags & 1, 1);
	printf("hyperv: busy slot msg_pending\n");
	__atomic_store_n(&msg_page[MSG_SINT].type, 0, __ATOMIC_SEQ_CST);
	wrmsr(HV_MSR_EOM, 0);
	wait_for((unsigned)v_msg, 2);
	ASSERT_EQ(msg_page[MSG_SINT].type, MSG_TYPE);
	ASSERT_EQ(msg_page[MSG_SINT].payload[0], 0x2222);
	ASSERT_EQ(msg_page[MSG_SINT].flags, 0);
	printf("hyperv: pending message delivered after EOM\n");

	/* An event: KVM signals the connection's eventfd. */
	testdev(EVT_CREATE, EVT_SINT, EVT_CONN);
	v_evt = sint_vector(EVT_SINT);
	ASSERT_EQ(hypercall(0x5d, true, EVT_CONN), 0);
	wait_for((unsigned)v_evt, 1);
	ASSERT_EQ(evt_page[EVT_SINT][0], 1ull << EVT_CONN);
	printf("hyperv: event flag set\n");

	testdev(EVT_DESTROY, 0, EVT_CONN);
	testdev(MSG_DESTROY, 0, MSG_CONN);
	testdev(ROUTE_DESTROY, ROUTE_SINT, 0);
	ASSERT_EQ(hypercall(0x5d, true, EVT_CONN), 0x12);
	printf("hyperv: destroyed\n");
	return 0;
}
