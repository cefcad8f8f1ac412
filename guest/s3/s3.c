// SPDX-License-Identifier: MIT
/*
 * Suspends to RAM (ACPI S3) and checks the resume, as kvm-unit-tests' s3
 * test does: a real-mode stub is copied to RESUME_AT and named in the
 * FACS firmware waking vector, the RTC alarm is set to "any second" and
 * enabled as a wake event (PM1 RTC_EN), then PM1a_CNT gets SLP_EN with
 * SLP_TYP 1 (\_S3 of kvmini with --testdev, and of QEMU's pc).
 *
 * On wake the stub runs in real mode and exits with the status in its
 * mailbox: 0, or 3 when PM1_STS.WAK_STS is not set. If the sleep write
 * returns instead, main exits 1 (an RTC was there: the sleep failed) or 2
 * (the FADT says there is no CMOS RTC, as kvmini without --testdev: the
 * write is expected to be ignored, and no alarm is set).
 *   noalarm=1  leave the alarm off (AIE clear): nothing wakes the VM.
 */
#include "guest.h"

#include "acpi.h"

#define RESUME_AT     0x5000u		  /* free low RAM under kvmini's and QEMU's boot */
#define MAILBOX	      (RESUME_AT + 0x100) /* u32 status, u32 PM1a_EVT port */
#define RTC_INDEX     0x70
#define RTC_DATA      0x71
#define RTC_A_UIP     0x80
#define RTC_B_AIE     0x20
#define RTC_DONT_CARE 0xc0
#define PM1_RTC_EN    0x0400
#define SLP_EN	      0x2000
#define SLP_TYP_S3    (1u << 10)

extern const char s3_resume[], s3_resume_end[];

/* Real mode, CS:IP from the waking vector; DS is set here (firmware leaves
 * it undefined). Written for this guest, see the comment at the top. */
__asm__(".pushsection .text\n"
	".code16\n"
	".global s3_resume, s3_resume_end\n"
	"s3_resume:\n"
	"	xorw %ax, %ax\n"
	"	movw %ax, %ds\n"
	"	movw 0x5104, %dx\n"
	"	inw %dx, %ax\n"
	"	testw $0x8000, %ax\n"
	"	jnz 1f\n"
	"	movl $3, 0x5100\n"
	"1:	movl 0x5100, %eax\n"
	"	movw $0xf4, %dx\n"
	"	outl %eax, %dx\n"
	"2:	hlt\n"
	"	jmp 2b\n"
	"s3_resume_end:\n"
	".code64\n"
	".popsection\n");

static uint8_t rtc_read(uint8_t reg)
{
	outb(RTC_INDEX, reg);
	return inb(RTC_DATA);
}

static void rtc_write(uint8_t reg, uint8_t v)
{
	outb(RTC_INDEX, reg);
	outb(RTC_DATA, v);
}

static uint32_t rd32(uint64_t a)
{
	return *(volatile uint32_t *)(uintptr_t)a;
}

int main(void)
{
	uint64_t fadt = acpi_find_table("FACP");
	uint32_t facs, evt, cnt;
	bool rtc;

	ASSERT(fadt);
	facs = rd32(fadt + 36);
	evt = rd32(fadt + 56);
	cnt = rd32(fadt + 64);
	ASSERT(facs && evt && cnt);
	/* IAPC_BOOT_ARCH bit 5: no CMOS RTC (FADT revision 2 and later). */
	rtc = rd32(fadt + 4) < 111 || !(*(volatile uint16_t *)(uintptr_t)(fadt + 109) & (1u << 5));
	memcpy((void *)(uintptr_t)RESUME_AT, s3_resume, (size_t)(s3_resume_end - s3_resume));
	*(volatile uint32_t *)(uintptr_t)MAILBOX = 0;
	*(volatile uint32_t *)(uintptr_t)(MAILBOX + 4) = evt;
	*(volatile uint32_t *)(uintptr_t)(facs + 12) = RESUME_AT; /* firmware waking vector */
	printf("s3: FACS 0x%x PM1a_EVT 0x%x PM1a_CNT 0x%x rtc %d\n", facs, evt, cnt, rtc);
	if (rtc) {
		outw((uint16_t)(evt + 2), PM1_RTC_EN);
		/* Just after a second's update: the alarm is a second away. */
		while (!(rtc_read(0x0a) & RTC_A_UIP))
			;
		while (rtc_read(0x0a) & RTC_A_UIP)
			;
		(void)rtc_read(0x0c);
		rtc_write(0x01, RTC_DONT_CARE);
		rtc_write(0x03, RTC_DONT_CARE);
		rtc_write(0x05, RTC_DONT_CARE);
		if (!cmdline_has("noalarm"))
			rtc_write(0x0b, rtc_read(0x0b) | RTC_B_AIE);
	}
	printf("s3: sleeping\n");
	outw((uint16_t)cnt, SLP_EN | SLP_TYP_S3);
	printf("s3: the sleep write returned\n");
	return rtc ? 1 : 2;
}
