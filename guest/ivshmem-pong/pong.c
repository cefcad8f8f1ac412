// SPDX-License-Identifier: MIT
/*
 * ivshmem-pong: the answering side of the ivshmem ping-pong (see
 * guest/ivshmem-ping/pingpong.h). Checks every message, answers, rings
 * ping back; exits 0 after rounds=N. A bad message exits 1, no doorbell
 * device 2, a stuck peer 3.
 */
#include "../ivshmem-ping/pingpong.h"

static long pong_loop(void *arg)
{
	struct pp *p = arg;
	struct pp_shared *sh = p->sh;

	pp_hello(p, &sh->pong_seq, &sh->pong_id, &sh->pong_magic, &sh->ping_magic);
	for (uint64_t i = 1; i <= p->rounds; i++) {
		uint32_t peer;

		pp_wait(p, &sh->ping_seq, (uint32_t)i);
		if (!pp_check(sh->msg, i, 'i')) {
			printf("ivshmem-pong: round %lu: bad message\n", i);
			return 1;
		}
		peer = pp_load(&sh->ping_id); /* changes if ping is restored */
		pp_fill(sh->reply, i, 'o');
		pp_store(&sh->pong_seq, (uint32_t)i);
		pp_ring(p, peer);
	}
	printf("ivshmem-pong: %lu messages verified, mode %s, peer %u, doorbell interrupts %lu, "
	       "slow waits %lu, ID changes %lu\n",
	       p->rounds, pp_mode(p), pp_load(&sh->ping_id), ivshmem_irq_count(&p->d, 0),
	       p->slow_waits, p->id_changes);
	return 0;
}

int main(void)
{
	static struct pp p;

	pp_init(&p, "ivshmem-pong");
	return (int)(p.cpl0 ? pong_loop(&p) : user_call(pong_loop, &p));
}
