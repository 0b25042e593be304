"""``python -m kernels.rehearsal [DIR]``: write the paper-scale rehearsal inputs into DIR (default rehearsal/)."""

import argparse

from kernels.rehearsal.build import build_rehearsal_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", nargs="?", default="rehearsal",
                        help="where to write the inputs (tests/configs/paper_rehearsal.yaml expects rehearsal/)")
    parser.add_argument("--bundled-dir", default=None, help="bundled data (default: the checkout's resources/data)")
    args = parser.parse_args()
    written = build_rehearsal_inputs(args.directory, bundled_dir=args.bundled_dir)
    for name, path in written.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
