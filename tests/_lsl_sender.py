"""Test LSL outlet (run as a subprocess): known samples at a known rate with explicit timestamps.

Sample k of channel c is ``k * 10 + c`` (exact in float32); its timestamp is ``t0 + k / rate``. Prints ``t0`` then
``ready`` on stdout.
Usage: python _lsl_sender.py NAME RATE_HZ N_CHANNELS SOURCE_ID [START_INDEX] [T0]
"""

import sys
import time

import numpy as np
import pylsl

name, rate, n_ch, source_id = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
k = int(sys.argv[5]) if len(sys.argv) > 5 else 0
info = pylsl.StreamInfo(name, "EMG", n_ch, rate, pylsl.cf_float32, source_id)
chans = info.desc().append_child("channels")
for c in range(n_ch):
    ch = chans.append_child("channel")
    ch.append_child_value("label", f"c{c}")
    ch.append_child_value("unit", "V")
outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
t0 = float(sys.argv[6]) if len(sys.argv) > 6 else pylsl.local_clock()
print(repr(t0), flush=True)
print("ready", flush=True)
wall0 = time.monotonic()
while True:
    due = int((time.monotonic() - wall0) * rate) + 1 + (int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    while k < due:
        sample = (np.arange(n_ch) + k * 10).astype(np.float32)
        outlet.push_sample(sample, timestamp=t0 + k / rate)
        k += 1
    time.sleep(0.005)
