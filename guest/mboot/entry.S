/* SPDX-License-Identifier: MIT */
/*
 * The multiboot v1 header and 32-bit entry of guest/mboot. Built twice
 * (guest/guest.mk): as an ELF (flags: page-aligned modules, memory
 * information) and, with -DMB_AOUT, as a flat binary whose header carries
 * the address fields (flag bit 16, the "a.out kludge").
 */
#define MB_MAGIC 0x1badb002
#ifdef MB_AOUT
#define MB_FLAGS 0x00010003
#else
#define MB_FLAGS 0x00000003
#endif

	.section .mbheader, "a"
	.balign 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
#ifdef MB_AOUT
	.long mb_header   /* header_addr */
	.long _image_start /* load_addr */
	.long _edata       /* load_end_addr */
	.long _end         /* bss_end_addr */
	.long mb_start     /* entry_addr */
#endif

	.text
	.code32
	.globl mb_start
mb_start:
	/* EAX = magic, EBX = information structure: both go to mb_main. */
	mov $stack_top, %esp
	push %ebx
	push %eax
	call mb_main
	/* mb_main exits through port 0xf4; if that returns, stop. */
1:	cli
	hlt
	jmp 1b

	.bss
	.balign 16
	.space 16384
stack_top:
	.section .note.GNU-stack, "", @progbits
