"""A process outside the shim computes for two host seconds (a busy loop started with a cleared
environment, as a static JIT compiler would run) while the program waits for it and a thread of
the program sleeps one virtual second at a time. The clock must not jump past the outsider's
work: the wait lasts about the CPU time the outsider got in its two host seconds (all of them on
an idle host), not the sleeper's hundred."""

import subprocess
import sys
import threading
import time


def sleeper() -> None:
    for _ in range(100):
        time.sleep(1.0)


threading.Thread(target=sleeper, daemon=True).start()
t0 = time.monotonic()
script = ("import time\nt = time.monotonic()\nwhile time.monotonic() - t < 2.0: pass\n"
          "print('busy done', time.process_time())")
out = subprocess.run(["/usr/bin/env", "-i", sys.executable, "-c", script], capture_output=True, text=True,
                     check=True).stdout.split()
print(f"RESULT outsider_ok={int(out[:2] == ['busy', 'done'])} outsider_cpu_s={float(out[2]):.3f} "
      f"waited_s={time.monotonic() - t0:.3f}")
