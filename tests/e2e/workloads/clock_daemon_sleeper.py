"""A daemon thread sleeps 60 s in a loop while the main thread computes ~1 s and sleeps 5 s: the
sleeper must not drag virtual time along (the eager rule made it run away)."""

import threading
import time


def sleeper() -> None:
    while True:
        time.sleep(60)


threading.Thread(target=sleeper, daemon=True).start()
time.sleep(0.01)  # let the sleeper block first
t0 = time.monotonic()
c0 = time.thread_time()
x = 0
while time.thread_time() - c0 < 1.0:
    x += 1
t1 = time.monotonic()
time.sleep(5)
t2 = time.monotonic()
print(f"RESULT work_s={t1 - t0:.6f} cpu_s={time.thread_time() - c0:.6f} sleep_s={t2 - t1:.6f} total_s={t2 - t0:.6f}")
