"""Print the README's support matrix from the conformance suite's own rows.

    python scripts/support_matrix.py        # the devices installed here

Run it in the `devices` venv of `.ci/run` (or after `pip install -e ".[devices]"`) to include
lightning.kokkos and braket.local.qubit.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_conformance import DEVICES, installed

from pennylane_xqml.conformance import conformance_rows, markdown_matrix


def main():
    rows = []
    for name, (module, make_device, shots) in DEVICES.items():
        if module is not None and not installed(module):
            print(f"(skipped {name}: not installed)", file=sys.stderr)
            continue
        rows += conformance_rows(name, make_device, shots=shots)
    print(markdown_matrix(rows))


if __name__ == "__main__":
    main()
