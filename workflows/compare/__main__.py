"""The command line of workflows.compare (see its docstring):

    python -m workflows.compare outputs/train/mt10_* --baseline sum --out outputs/compare/mt10
"""

from __future__ import annotations

import argparse
import logging
import sys

from common.atomic import DiskFullError
from workflows.compare import CompareConfig, compare
from workflows.compare.report import StatsOptions
from workflows.compare.runs import DEFAULT_METHOD_KEYS, DEFAULT_SEED_KEY, LabelOptions


def parse_args(argv: list[str] | None = None) -> CompareConfig:
    parser = argparse.ArgumentParser(prog="python -m workflows.compare", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="training run folders (with final_eval/), evaluation folders, globs of them, or "
                             "folders searched for training runs (a hydra multirun sweep)")
    parser.add_argument("--baseline", help="the method the others are compared with (needed for 2+ methods)")
    parser.add_argument("--out", default="outputs/compare", help="folder for compare.json/.md/.html and videos/")
    parser.add_argument("--label", action="append", default=[], metavar="PATTERN=METHOD",
                        help="runs whose path matches the glob PATTERN are METHOD (first match wins; before "
                             "--method-key)")
    parser.add_argument("--method-key", action="append", metavar="KEY",
                        help=f"config.yaml key naming a run's method; repeat to join several with '/' "
                             f"(default: {', '.join(DEFAULT_METHOD_KEYS)})")
    parser.add_argument("--seed-key", default=DEFAULT_SEED_KEY, help="config.yaml key of a run's training seed")
    parser.add_argument("--confidence", type=float, default=0.95, help="level of the intervals")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap replicates")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--title", help="title of the report (default: the suite and the methods)")
    args = parser.parse_args(argv)
    try:
        labels = LabelOptions(labels=[LabelOptions.parse_label(t) for t in args.label],
                              method_keys=tuple(args.method_key or DEFAULT_METHOD_KEYS), seed_key=args.seed_key)
    except ValueError as error:
        parser.error(str(error))
    if args.resamples < 100 or not 0 < args.confidence < 1:
        parser.error("--resamples must be >= 100 and --confidence in (0, 1)")
    return CompareConfig(runs=args.runs, out_dir=args.out, labels=labels, title=args.title,
                         stats=StatsOptions(baseline=args.baseline, confidence=args.confidence,
                                            resamples=args.resamples, seed=args.bootstrap_seed))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_args(argv)
    try:
        compare(cfg)
    except (FileNotFoundError, ValueError, DiskFullError) as error:
        print(f"compare: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
