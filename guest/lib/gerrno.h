/* SPDX-License-Identifier: MIT */
/* Error numbers guest/lib functions return (negated), with Linux's values. */
#ifndef GUEST_GERRNO_H
#define GUEST_GERRNO_H

#define EIO	  5
#define E2BIG	  7
#define EAGAIN	  11
#define ENOMEM	  12
#define EBUSY	  16
#define ENODEV	  19
#define EINVAL	  22
#define ENOSPC	  28
#define ERANGE	  34
#define EPROTO	  71
#define ENOTSUP	  95
#define ETIMEDOUT 110
#define ENOENT	  2

#endif
