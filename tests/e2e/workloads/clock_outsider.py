"""The program waits on a process that ignores the protocol: started with a cleared environment
(no shim), it sleeps 4 real seconds and prints. The run must neither hang nor call it a deadlock
(every actor waits with no timeout meanwhile, longer than the 3 s deadlock grace)."""

import subprocess
import sys
import time

t0 = time.monotonic()
script = "import time; time.sleep(4); print('outsider done')"
out = subprocess.run(["/usr/bin/env", "-i", sys.executable, "-c", script],
                     capture_output=True, text=True, check=True).stdout
print(f"RESULT outsider_ok={int(out.strip() == 'outsider done')} waited_s={time.monotonic() - t0:.3f}")
