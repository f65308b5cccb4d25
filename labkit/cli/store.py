"""`labkit store ...`: manage the annotation store (one SQLite file, default data/annotations.sqlite).

    labkit store init                                   # create / migrate the file
    labkit store add-annotator ana --password-stdin     # password for the app's login (optional)
    labkit store register --data data/synth --split train [--dataset NAME]
    labkit store import-hard runs/small/mine --dataset synth      # hard_cases.jsonl, a list of ids, ...
    labkit store progress [--dataset synth]
    labkit store queue unlabelled --dataset synth [--annotator ana] [--limit 20]
    labkit store agreement [--dataset synth]
    labkit store export --dataset synth --out data/synth-labelled [--split train] [--min-votes 2]
    labkit store events [--dataset synth] [--annotator ana]      # the append-only history as JSONL
    labkit store retract EVENT_ID --by reviewer --reason "wrong sample"   # an append-only retraction
    labkit store unmark-hard s0003 s0007 --dataset synth         # remove hard marks

Every command takes ``--db PATH``. See `labkit.store`.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def register(sub):
    p = sub.add_parser("store", help="the annotation store: annotators, samples, queues, agreement, export",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="store_command", metavar="STORE_COMMAND")

    def cmd(name, help_, func):
        c = cmds.add_parser(name, help=help_)
        c.add_argument("--db", default="data/annotations.sqlite", help="store file (default data/annotations.sqlite)")
        c.add_argument("--json", action="store_true", help="print JSON")
        c.add_argument("--debug", action="store_true", help="show tracebacks")
        c.set_defaults(func=func)
        return c

    cmd("init", "create the store (or migrate it to the current schema)", run_init)
    c = cmd("add-annotator", "add an annotator (optionally with a password)", run_add_annotator)
    c.add_argument("name")
    c.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    c = cmd("register", "register the samples of a dataset split", run_register)
    c.add_argument("--data", required=True, help="dataset folder")
    c.add_argument("--split", required=True)
    c.add_argument("--dataset", help="name in the store (default: the folder's dataset.json name)")
    c = cmd("import-hard", "mark hard cases from HCM mining (folder, hard_cases.jsonl, JSON or a list of ids)", run_import_hard)
    c.add_argument("path")
    c.add_argument("--dataset", required=True)
    c = cmd("progress", "labelling progress counts", run_progress)
    c.add_argument("--dataset")
    c = cmd("queue", "list a queue: unlabelled, hard, flagged, disagreements", run_queue)
    c.add_argument("name", choices=["unlabelled", "hard", "flagged", "disagreements"])
    c.add_argument("--dataset")
    c.add_argument("--annotator", help="only what this annotator has not labelled (unlabelled, hard)")
    c.add_argument("--limit", type=int)
    c = cmd("agreement", "Fleiss' kappa per candidate and exact-answer agreement", run_agreement)
    c.add_argument("--dataset")
    c = cmd("export", "write the adjudicated (majority) labels as a split of a NEW dataset folder", run_export)
    c.add_argument("--dataset", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--split", default="train")
    c.add_argument("--min-votes", type=int, default=1, help="votes the majority answer needs (default 1)")
    c.add_argument("--drop-bad-reasoning", action="store_true",
                   help="export labels whose reasoning contradicts them without that reasoning (default: refuse)")
    c = cmd("events", "the label history as JSON lines", run_events)
    c.add_argument("--dataset")
    c.add_argument("--annotator")
    c = cmd("retract", "retract one label event (appends an undo event aimed at it)", run_retract)
    c.add_argument("event_id", type=int)
    c.add_argument("--by", required=True, help="who retracts (an annotator in the store, e.g. a reviewer)")
    c.add_argument("--reason", default="", help="why (kept in the event's note)")
    c = cmd("unmark-hard", "remove the hard mark of samples", run_unmark_hard)
    c.add_argument("ids", nargs="+")
    c.add_argument("--dataset", required=True)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _store(args):
    from labkit.store import AnnotationStore  # lazy: the CLI must start fast (labkit.store pulls in PIL)

    return AnnotationStore(args.db)


def _print(args, data, text: str):
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def run_init(args) -> int:
    st = _store(args)
    _print(args, {"db": str(st.path), "schema_version": st.version}, f"{st.path}: schema version {st.version}")
    return 0


def run_add_annotator(args) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    if args.password_stdin and not password:
        raise ValueError("--password-stdin: empty password")
    st = _store(args)
    st.add_annotator(args.name, password=password)
    _print(args, {"annotator": args.name, "password": bool(password)},
           f"annotator {args.name!r} {'with' if password else 'without'} a password")
    return 0


def run_register(args) -> int:
    st = _store(args)
    n = st.register_split(args.data, args.split, dataset=args.dataset)
    from labkit.store import dataset_name  # lazy, as in _store

    name = args.dataset or dataset_name(args.data)
    _print(args, {"dataset": name, "new": n}, f"registered {n} new sample(s) of {args.data}:{args.split} as {name!r}")
    return 0


def run_import_hard(args) -> int:
    n = _store(args).import_hard_cases(args.path, args.dataset)
    _print(args, {"new_hard": n}, f"marked {n} new hard case(s) in {args.dataset!r}")
    return 0


def run_progress(args) -> int:
    p = _store(args).progress(args.dataset)
    lines = [f"{k:>14}: {v}" for k, v in p.items() if k != "per_annotator"]
    lines += [f"{'annotator':>14}: {name} {n}" for name, n in p["per_annotator"].items()]
    _print(args, p, "\n".join(lines))
    return 0


def run_queue(args) -> int:
    keys = _store(args).queue(args.name, dataset=args.dataset, annotator=args.annotator, limit=args.limit)
    _print(args, [k._asdict() for k in keys], "\n".join(f"{k.dataset}\t{k.sample_id}" for k in keys) or "(empty)")
    return 0


def run_agreement(args) -> int:
    a = _store(args).agreement(args.dataset)

    def fmt(x):
        return "-" if x is None else f"{x:.3f}"

    text = (f"samples with 2+ annotators: {a['n_samples']}\n"
            + "Fleiss' kappa " + "  ".join(f"{k}={fmt(v)}" for k, v in a["kappa"].items())
            + f"  mean={fmt(a['mean_kappa'])}\n"
            f"exact-answer agreement {fmt(a['exact_agreement'])}, pairwise {fmt(a['pairwise_exact'])}")
    _print(args, a, text)
    return 0


def run_export(args) -> int:
    s = _store(args).export_split(args.dataset, args.out, split=args.split, min_votes=args.min_votes,
                                  drop_bad_reasoning=args.drop_bad_reasoning)
    _print(args, s, f"exported {s['exported']} sample(s) to {s['out']}/{s['split']}.parquet "
                    f"(ties {s['ties']}, flagged {s['flagged']}, unlabelled {s['unlabelled']}, "
                    f"below min votes {s['below_min_votes']}, reasoning dropped {s['reasoning_dropped']})")
    return 0


def run_retract(args) -> int:
    key = _store(args).retract(args.event_id, args.by, args.reason)
    _print(args, {"retracted": args.event_id, "dataset": key.dataset, "sample_id": key.sample_id},
           f"retracted label event {args.event_id} on {key.dataset}/{key.sample_id}")
    return 0


def run_unmark_hard(args) -> int:
    n = _store(args).unmark_hard(args.dataset, args.ids)
    _print(args, {"unmarked": n}, f"removed {n} hard mark(s) in {args.dataset!r}")
    return 0


def run_events(args) -> int:
    for ev in _store(args).events(dataset=args.dataset, annotator=args.annotator):
        print(json.dumps(asdict(ev)))
    return 0
