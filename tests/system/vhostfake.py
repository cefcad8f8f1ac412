# SPDX-License-Identifier: MIT
"""A scripted vhost-user-blk backend for tests: it serves a raw image over
split virtqueues (read, write, flush, get-id) from guest RAM that the
front-end passed with SET_MEM_TABLE, takes @delay seconds to act on (and
answer) every message, and records what happened in order:

  ("msg", NAME, ring)          a message arrived
  ("reply", NAME, ring)        its reply or acknowledgement was sent
  ("kick", ring, acked)        a kick was read from the ring's kick eventfd;
                               acked: the ring's SET_VRING_ENABLE had been
                               answered before
  ("early-kick", ring)         at the moment the enable was about to be
                               acknowledged, a kick was already waiting

@stall: request codes the backend never answers (it hangs there);
@huge_reply: request codes answered with a header claiming 1 MiB.

With @inflight (default) it offers INFLIGHT_SHMFD and keeps the region as
the vhost-user specification lays it out for split rings (as libvhost-user
does): a request taken is marked in flight there, and unmarked once its
used element is published. A ring started on a region that already holds
state (a front-end reconnecting) first serves the requests marked in
flight, oldest first, then the avail ring from the ring's used index plus
those:

  ("resubmit", ring, [heads])  requests served again from the region

@req_delay: seconds each request takes to serve (a slow disk), so that
requests stay in flight for a while; pending(ring) tells how many the
driver made available that are not used yet.

@crash_after=N: after N completions the backend takes every request then
available (marks it in flight, serves none), records ("taken", ring, head)
for each and ("crash",), and closes the connection and its socket: a
backend that died with requests in flight. A new FakeBackend on the same
path plays the restarted one. @hold_after=N: the same, but the backend
stays up and never serves those (nor anything later): a backend stuck
with requests in flight.

A kick that reached the backend before its ring's enable was acknowledged
shows up as ("kick", ring, False) or ("early-kick", ring). The backend does
not drop such kicks (a real one might, and the guest would hang): it
serves them, so that runs finish and can be compared.
"""
import array
import mmap
import os
import select
import socket
import struct
import threading
import time

NAMES = {1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 5: "SET_MEM_TABLE",
         8: "SET_VRING_NUM", 9: "SET_VRING_ADDR", 10: "SET_VRING_BASE", 11: "GET_VRING_BASE",
         12: "SET_VRING_KICK", 13: "SET_VRING_CALL", 14: "SET_VRING_ERR",
         15: "GET_PROTOCOL_FEATURES", 16: "SET_PROTOCOL_FEATURES", 17: "GET_QUEUE_NUM",
         18: "SET_VRING_ENABLE", 24: "GET_CONFIG", 31: "GET_INFLIGHT_FD", 32: "SET_INFLIGHT_FD"}
P_INFLIGHT = 12

F_VERSION_1, F_INDIRECT, F_EVENT_IDX, F_PROTOCOL = 32, 28, 29, 30
BLK_F_SEG_MAX, BLK_F_BLK_SIZE, BLK_F_FLUSH, BLK_F_MQ = 2, 6, 9, 12
P_MQ, P_REPLY_ACK, P_CONFIG = 0, 3, 9
FLAG_REPLY, FLAG_NEED_REPLY = 1 << 2, 1 << 3
D_NEXT, D_WRITE, D_INDIRECT = 1, 2, 4


class Ring:
    def __init__(self):
        self.num = 0
        self.base = 0
        self.addr = None  # (desc, used, avail) front-end addresses
        self.kick = -1
        self.call = -1
        self.enabled = False
        self.acked = False
        self.last_avail = 0
        self.used_idx = 0
        self.thread = None
        self.stop = False
        self.resubmit = []  # heads to serve again first (from the inflight region)
        self.region = None  # (mmap, offset) of this ring's inflight state


class FakeBackend:
    def __init__(self, sock_path, image, delay=0.1, reply_ack=True, num_queues=1, stall=(),
                 huge_reply=(), inflight=True, crash_after=None, hold_after=None,
                 req_delay=0):
        self.path = str(sock_path)
        self.image = str(image)
        self.delay = delay
        self.reply_ack = reply_ack
        self.num_queues = num_queues
        self.stall = set(stall)  # request codes never answered: the backend hangs
        self.huge_reply = set(huge_reply)  # ... answered with a 1 MiB size
        self.inflight = inflight
        self.inflight_map = None  # (mmap, queue region size, queue size)
        self.crash_after = crash_after
        self.hold_after = hold_after
        self.req_delay = req_delay
        self.completed = 0
        self.counter = 0
        self.conn = None
        self.closing = threading.Event()
        self.log = []
        self.errors = []
        self.lock = threading.Lock()
        self.regions = []  # (gpa, size, uaddr, mmap)
        self.rings = {}
        self.features = 0
        self.protocol = 0
        self.fd = os.open(self.image, os.O_RDWR)
        self.capacity = os.fstat(self.fd).st_size // 512
        if os.path.exists(self.path):  # left by a predecessor that crashed
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # ---- bookkeeping

    def record(self, *ev):
        with self.lock:
            self.log.append(ev)

    def events(self):
        with self.lock:
            return list(self.log)

    def violations(self):
        return [e for e in self.events()
                if (e[0] == "kick" and not e[2]) or e[0] == "early-kick"]

    def of_kind(self, kind):
        return [e for e in self.events() if e[0] == kind]

    def pending(self, q=0):
        """Requests of ring @q the driver made available and that are not
        used yet (avail index minus used index, both read from guest RAM)."""
        r = self.rings.get(q)
        if r is None or r.addr is None:
            return 0
        _, used, avail = r.addr
        aidx = struct.unpack("<H", self.read(avail + 2, 2, "uaddr"))[0]
        uidx = struct.unpack("<H", self.read(used + 2, 2, "uaddr"))[0]
        return (aidx - uidx) & 0xffff

    def close(self):
        self.closing.set()
        for r in self.rings.values():
            r.stop = True
        for r in self.rings.values():
            if r.thread and r.thread is not threading.current_thread():
                r.thread.join(timeout=5)
        try:
            self.listener.close()
        except OSError:
            pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _crash(self):
        """Die as a backend process would: the connection and the listening
        socket go away, nothing more is served."""
        self.record("crash")
        for r in self.rings.values():
            r.stop = True
        try:
            self.listener.close()
            os.unlink(self.path)
        except OSError:
            pass
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- the connection

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.conn = conn
        with conn:
            while True:
                try:
                    if not self._one(conn):
                        break
                except Exception as e:  # recorded for the test to show
                    self.errors.append(repr(e))
                    break

    def _recv_exact(self, conn, n, fds):
        buf = b""
        while len(buf) < n:
            data, anc, _, _ = conn.recvmsg(n - len(buf), socket.CMSG_SPACE(8 * 4))
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(cdata[:len(cdata) - len(cdata) % 4])
                    fds.extend(a)
            if not data:
                return None
            buf += data
        return buf

    def _reply(self, conn, req, payload, name, index=None, fds=()):
        if req == 18 and index in self.rings:
            ring = self.rings[index]
            # Acknowledge only now: a kick that is already waiting came first.
            if ring.kick >= 0 and select.select([ring.kick], [], [], 0)[0]:
                self.record("early-kick", index)
            ring.acked = ring.enabled
        hdr = struct.pack("<III", req, 1 | FLAG_REPLY, len(payload))
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        # Recorded first: the front-end can act on the reply (and kick) as
        # soon as it is sent, before this thread runs again.
        self.record("reply", name, index)
        conn.sendmsg([hdr + payload], anc)

    def _one(self, conn):
        fds = []
        hdr = self._recv_exact(conn, 12, fds)
        if hdr is None:
            return False
        req, flags, size = struct.unpack("<III", hdr)
        payload = self._recv_exact(conn, size, fds) if size else b""
        if payload is None:
            return False
        name = NAMES.get(req, str(req))
        index = None
        if req in (8, 9, 10, 11, 18):
            index = struct.unpack_from("<I", payload)[0]
        elif req in (12, 13, 14):
            index = struct.unpack_from("<Q", payload)[0] & 0xff
        self.record("msg", name, index)
        # A slow backend: each message takes @delay to be dealt with, so a
        # kick that overtakes a control message is seen before it acts.
        time.sleep(self.delay)
        if req in self.stall:
            self.closing.wait()
            return False
        if req in self.huge_reply:
            conn.sendall(struct.pack("<III", req, 1 | FLAG_REPLY, 1 << 20))
            self.record("reply", name, index)
            return True
        own_reply = None
        if req == 1:
            f = (1 << F_VERSION_1 | 1 << F_INDIRECT | 1 << F_EVENT_IDX | 1 << F_PROTOCOL |
                 1 << BLK_F_SEG_MAX | 1 << BLK_F_BLK_SIZE | 1 << BLK_F_FLUSH | 1 << BLK_F_MQ)
            own_reply = struct.pack("<Q", f)
        elif req == 15:
            p = 1 << P_MQ | 1 << P_CONFIG | (1 << P_REPLY_ACK if self.reply_ack else 0)
            p |= 1 << P_INFLIGHT if self.inflight else 0
            own_reply = struct.pack("<Q", p)
        elif req == 16:
            self.protocol = struct.unpack("<Q", payload)[0]
        elif req == 17:
            own_reply = struct.pack("<Q", self.num_queues)
        elif req == 2:
            self.features = struct.unpack("<Q", payload)[0]
        elif req == 5:
            self._set_mem_table(payload, fds)
            fds = []
        elif req == 31:
            _, _, nq, qsize = struct.unpack_from("<QQHH", payload)
            size = nq * self._qregion(qsize)
            mfd = os.memfd_create("fake-inflight", os.MFD_CLOEXEC)
            os.ftruncate(mfd, size)
            hdr = struct.pack("<III", req, 1 | FLAG_REPLY, 24)
            body = struct.pack("<QQHH4x", size, 0, nq, qsize)
            self.record("reply", name, index)
            conn.sendmsg([hdr + body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         array.array("i", [mfd]))])
            os.close(mfd)
            return True
        elif req == 32:
            size, off, nq, qsize = struct.unpack_from("<QQHH", payload)
            self.inflight_map = (mmap.mmap(fds[0], size, mmap.MAP_SHARED, offset=off),
                                 self._qregion(qsize), qsize)
        elif req in (8, 10):
            r = self.rings.setdefault(index, Ring())
            val = struct.unpack_from("<I", payload, 4)[0]
            if req == 8:
                r.num = val
            else:
                r.base = r.last_avail = r.used_idx = val
        elif req == 9:
            _, _, desc, used, avail, _ = struct.unpack("<IIQQQQ", payload)
            self.rings.setdefault(index, Ring()).addr = (desc, used, avail)
        elif req in (12, 13, 14):
            r = self.rings.setdefault(index, Ring())
            fd = fds.pop(0) if fds else -1
            if req == 12:
                if r.thread:  # a new kick fd for a running ring
                    r.stop = True
                    r.thread.join(timeout=5)
                if r.kick >= 0:
                    os.close(r.kick)
                r.kick = fd
                r.stop = False
                self._check_inflight(index, r)
                r.thread = threading.Thread(target=self._ring_loop, args=(index, r),
                                            daemon=True)
                r.thread.start()
            elif req == 13:
                if r.call >= 0:
                    os.close(r.call)
                r.call = fd
            elif fd >= 0:
                os.close(fd)
        elif req == 18:
            r = self.rings.setdefault(index, Ring())
            r.enabled = bool(struct.unpack_from("<I", payload, 4)[0])
            if not r.enabled:
                r.acked = False
        elif req == 11:
            r = self.rings.setdefault(index, Ring())
            r.stop = True
            if r.thread:
                r.thread.join(timeout=5)
            r.thread = None
            if r.kick >= 0:
                os.close(r.kick)
            r.kick = -1
            own_reply = struct.pack("<II", index, r.last_avail)
        elif req == 24:
            off, sz, fl = struct.unpack_from("<III", payload)
            cfg = struct.pack("<QIIHBBI", self.capacity, 0, 126, 0, 0, 0, 512)
            cfg = cfg.ljust(34, b"\0") + struct.pack("<H", self.num_queues)
            cfg = cfg.ljust(256, b"\0")
            own_reply = struct.pack("<III", off, sz, fl) + cfg[off:off + sz]
        for fd in fds:
            os.close(fd)
        if own_reply is not None:
            self._reply(conn, req, own_reply, name, index)
        elif flags & FLAG_NEED_REPLY:
            self._reply(conn, req, struct.pack("<Q", 0), name, index)
        elif req == 18:
            ring = self.rings[index]
            if ring.kick >= 0 and select.select([ring.kick], [], [], 0)[0]:
                self.record("early-kick", index)
            ring.acked = ring.enabled  # nothing to answer: in force now
        return True

    # ---- guest memory

    def _set_mem_table(self, payload, fds):
        n = struct.unpack_from("<I", payload)[0]
        self.regions = []
        for i in range(n):
            gpa, size, uaddr, off = struct.unpack_from("<QQQQ", payload, 8 + 32 * i)
            m = mmap.mmap(fds[i], size, mmap.MAP_SHARED, offset=off)
            self.regions.append((gpa, size, uaddr, m))
        for fd in fds:
            os.close(fd)

    def _find(self, addr, n, key):
        for gpa, size, uaddr, m in self.regions:
            base = gpa if key == "gpa" else uaddr
            if base <= addr and addr + n <= base + size:
                return m, addr - base
        raise ValueError(f"address {addr:#x}+{n} outside guest RAM")

    def read(self, addr, n, key="gpa"):
        m, o = self._find(addr, n, key)
        return m[o:o + n]

    def write(self, addr, data, key="gpa"):
        m, o = self._find(addr, len(data), key)
        m[o:o + len(data)] = data

    # ---- the inflight region (split rings: a 16-byte header, then one
    # 16-byte state per descriptor: inflight u8, pad, next u16, counter u64)

    @staticmethod
    def _qregion(qsize):
        return (16 + 16 * qsize + 63) & ~63

    def _check_inflight(self, q, r):
        """A ring starts: adopt its region; if a predecessor left state
        there, resubmit what it marks in flight."""
        if self.inflight_map is None:
            return
        m, qs, qsize = self.inflight_map
        base = q * qs
        r.region = (m, base)
        version, desc_num, last_batch, region_used = struct.unpack_from("<HHHH", m, base + 8)
        if version == 0:  # a fresh region
            struct.pack_into("<HH", m, base + 8, 1, qsize)
            return
        _, used, _ = r.addr
        used_idx = struct.unpack("<H", self.read(used + 2, 2, "uaddr"))[0]
        if region_used != used_idx:  # died between the used index and the unmark
            m[base + 16 + 16 * last_batch] = 0
            struct.pack_into("<H", m, base + 14, used_idx)
        marked = []
        for i in range(desc_num):
            if m[base + 16 + 16 * i]:
                marked.append((struct.unpack_from("<Q", m, base + 16 + 16 * i + 8)[0], i))
        marked.sort()
        r.resubmit = [i for _, i in marked]
        r.used_idx = used_idx
        r.last_avail = (used_idx + len(marked)) & 0xffff
        self.counter = max([c for c, _ in marked], default=self.counter) + 1
        self.record("resubmit", q, list(r.resubmit))
        os.write(r.kick, struct.pack("<Q", 1))  # serve them without waiting for a kick

    def _mark(self, r, head):
        if r.region:
            m, base = r.region
            self.counter += 1
            struct.pack_into("<BxxxxxHQ", m, base + 16 + 16 * head, 1, 0, self.counter)

    # ---- the rings

    def _ring_loop(self, q, r):
        while not r.stop:
            if not select.select([r.kick], [], [], 0.2)[0]:
                continue
            try:
                os.read(r.kick, 8)
            except BlockingIOError:
                continue
            self.record("kick", q, r.acked)
            try:
                self._drain(q, r)
            except Exception as e:
                self.errors.append(f"ring {q}: {e!r}")
                return

    def _chain(self, r, head):
        desc, _, _ = r.addr
        out = []
        table, size, i = desc, r.num, head
        key = "uaddr"
        for _ in range(4 * 1024):
            if i >= size:
                raise ValueError(f"descriptor {i} outside a table of {size}")
            addr, ln, fl, nxt = struct.unpack("<QIHH", self.read(table + 16 * i, 16, key))
            if fl & D_INDIRECT:
                table, size, i, key = addr, ln // 16, 0, "gpa"
                continue
            out.append((addr, ln, bool(fl & D_WRITE)))
            if not fl & D_NEXT:
                return out
            i = nxt
        raise ValueError("descriptor loop")

    def _serve_req(self, bufs):
        rd = b"".join(self.read(a, n) for a, n, w in bufs if not w)
        typ, _, sector = struct.unpack_from("<IIQ", rd)
        wbufs = [(a, n) for a, n, w in bufs if w]
        status_addr = wbufs[-1][0] + wbufs[-1][1] - 1
        data_in = [(a, n) for a, n in wbufs]
        data_in[-1] = (data_in[-1][0], data_in[-1][1] - 1)
        written, status = 1, 0
        if typ == 0:  # read
            pos = sector * 512
            for a, n in data_in:
                if n:
                    self.write(a, os.pread(self.fd, n, pos).ljust(n, b"\0"))
                    pos += n
                    written += n
        elif typ == 1:  # write
            os.pwrite(self.fd, rd[16:], sector * 512)
        elif typ == 4:  # flush
            os.fsync(self.fd)
        elif typ == 8:  # get-id
            ident = b"FAKE-VHOST".ljust(20, b"\0")
            self.write(data_in[0][0], ident[:data_in[0][1]])
            written += min(20, data_in[0][1])
        else:
            status = 2  # unsupported
        self.write(status_addr, bytes([status]))
        return written

    def _complete(self, r, head):
        _, used, _ = r.addr
        if self.req_delay:
            time.sleep(self.req_delay)
        written = self._serve_req(self._chain(r, head))
        if r.region:
            m, base = r.region
            struct.pack_into("<H", m, base + 12, head)  # last_batch_head
        self.write(used + 4 + 8 * (r.used_idx % r.num), struct.pack("<II", head, written),
                   "uaddr")
        r.used_idx = (r.used_idx + 1) & 0xffff
        self.write(used + 2, struct.pack("<H", r.used_idx), "uaddr")
        if r.region:
            m, base = r.region
            m[base + 16 + 16 * head] = 0
            struct.pack_into("<H", m, base + 14, r.used_idx)
        self.completed += 1

    def _take(self, q, r, aidx, crash):
        _, _, avail = r.addr
        while r.last_avail != aidx:
            head = struct.unpack("<H", self.read(avail + 4 + 2 * (r.last_avail % r.num), 2,
                                                 "uaddr"))[0]
            self._mark(r, head)
            self.record("taken", q, head)
            r.last_avail = (r.last_avail + 1) & 0xffff
        if crash:
            self._crash()

    def _drain(self, q, r):
        desc, used, avail = r.addr
        event_idx = self.features & (1 << F_EVENT_IDX)
        while r.resubmit:
            self._complete(r, r.resubmit.pop(0))
        while True:
            aidx = struct.unpack("<H", self.read(avail + 2, 2, "uaddr"))[0]
            while r.last_avail != aidx:
                for limit, crash in ((self.crash_after, True), (self.hold_after, False)):
                    if limit is not None and self.completed >= limit:
                        self._take(q, r, aidx, crash)
                        return
                head = struct.unpack("<H", self.read(avail + 4 + 2 * (r.last_avail % r.num), 2,
                                                     "uaddr"))[0]
                self._mark(r, head)
                r.last_avail = (r.last_avail + 1) & 0xffff
                self._complete(r, head)
            if event_idx:  # avail_event: kick us for the next buffer
                self.write(used + 4 + 8 * r.num, struct.pack("<H", r.last_avail), "uaddr")
            if struct.unpack("<H", self.read(avail + 2, 2, "uaddr"))[0] == r.last_avail:
                break
        if r.call >= 0:
            os.write(r.call, struct.pack("<Q", 1))
