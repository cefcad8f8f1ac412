#include "guest.h"
int main(void)
{
	uint32_t a, b, c, d;
	cpuid(0x40000000, 0, &a, &b, &c, &d);
	printf("40000000: %x %.4s%.4s%.4s\n", a, (char *)&b, (char *)&c, (char *)&d);
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	printf("40000001: eax=%x edx=%x\n", a, d);
	cpuid(0x40000010, 0, &a, &b, &c, &d);
	printf("40000010: %u %u\n", a, b);
	cpuid(0, 0, &a, &b, &c, &d);
	printf("max basic %x\n", a);
	cpuid(0x15, 0, &a, &b, &c, &d);
	printf("15: %u %u %u\n", a, b, c);
	cpuid(0x16, 0, &a, &b, &c, &d);
	printf("16: %u\n", a);
	cpuid(0xb, 1, &a, &b, &c, &d);
	printf("b.1: %x %x %x %x\n", a, b, c, d);
	return 0;
}
