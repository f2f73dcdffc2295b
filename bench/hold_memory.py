"""Hold (and lock) anonymous memory so that the page cache has less room:
a machine with less memory for the out-of-core benchmarks.

    python bench/hold_memory.py --gb 16 &   # until killed
"""
import argparse
import ctypes
import mmap
import signal
import time

ap = argparse.ArgumentParser()
ap.add_argument("--gb", type=float, required=True)
a = ap.parse_args()
size = int(a.gb * (1 << 30))
buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for off in range(0, size, 1 << 20):
    buf[off] = 1  # touch every MB (pages fill in as they are written below)
step = mmap.PAGESIZE
view = memoryview(buf)
for off in range(0, size, step):
    view[off] = 1
libc = ctypes.CDLL("libc.so.6", use_errno=True)
addr = ctypes.c_void_p.from_buffer(buf)
locked = libc.mlock(ctypes.addressof(addr), ctypes.c_size_t(size)) == 0
print(f"holding {a.gb} GB ({'locked' if locked else 'not locked: errno %d' % ctypes.get_errno()})", flush=True)
signal.signal(signal.SIGTERM, lambda *_: exit(0))
while True:
    time.sleep(3600)
