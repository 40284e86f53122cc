"""Two threads each wait forever for the other's condition: a deadlock the emulator must name."""

import threading

a_ready = threading.Condition()
b_ready = threading.Condition()


def wait_for(cond: threading.Condition) -> None:
    with cond:
        cond.wait()


t1 = threading.Thread(target=wait_for, args=(a_ready,), name="waits-for-a")
t2 = threading.Thread(target=wait_for, args=(b_ready,), name="waits-for-b")
t1.start()
t2.start()
t1.join()
t2.join()
print("RESULT finished=1")
