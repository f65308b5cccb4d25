"""`labkit import` and `labkit export`: the team's own labelled data in, Label Studio tasks out.

    labkit import --from csv labels.csv --out data/ours            # or folder | jsonl | label-studio
    labkit export --to label-studio data/ours --split train --out ls/tasks.json
    labkit import --from label-studio project-1-export.json --out data/ours-relabelled

Import validates every row (images decoded) and lists every problem; nothing is written unless
all rows are valid (``--skip-invalid`` writes the valid ones). Samples get ``source=user``.
Export writes ``tasks.json``, the images beside it and ``label_config.xml`` (paste it into the
project's Labeling Interface); see `labkit.interop` for the Label Studio settings.
"""
from __future__ import annotations

import sys


def register(sub):
    p = sub.add_parser("import", help="import labelled screening data (folder, CSV, JSONL, Label Studio export)",
                       description=__doc__)
    p.add_argument("src", help="source file or folder")
    p.add_argument("--from", dest="fmt", required=True, choices=("folder", "csv", "jsonl", "label-studio"),
                   help="source format")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--split", default="train", help="split of rows that name none (default train)")
    p.add_argument("--name", default=None, help="dataset name in dataset.json (default: the folder name)")
    p.add_argument("--document-root", default=None,
                   help="label-studio: the folder local-files URLs are relative to "
                        "(default: $LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, else the export file's folder)")
    p.add_argument("--skip-invalid", action="store_true", help="write the valid rows and list the others")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run_import)

    e = sub.add_parser("export", help="export a dataset split as Label Studio tasks", description=__doc__)
    e.add_argument("dataset", help="dataset folder")
    e.add_argument("--to", required=True, choices=("label-studio",), help="target tool")
    e.add_argument("--split", required=True, help="split to export")
    e.add_argument("--out", required=True, help="tasks JSON file to write (images and label_config.xml go beside it)")
    e.add_argument("--document-root", default=None,
                   help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT (default: the folder of --out)")
    e.add_argument("--debug", action="store_true", help="show tracebacks")
    e.set_defaults(func=run_export)


def run_import(args) -> int:
    from labkit.interop import import_records
    from labkit.validate import format_problems

    sizes, problems = import_records(args.fmt, args.src, args.out, split=args.split, skip_invalid=args.skip_invalid,
                                     document_root=args.document_root, name=args.name)
    if problems:
        print(format_problems(problems), file=sys.stderr)
        if not sizes:
            print(f"labkit import: {len(problems)} invalid row(s); nothing written "
                  "(fix them, or --skip-invalid to import the valid rows)", file=sys.stderr)
            return 1
        print(f"labkit import: skipped {len(problems)} invalid row(s)", file=sys.stderr)
    written = ", ".join(f"{split} {n}" for split, n in sizes.items())
    print(f"imported {sum(sizes.values())} sample(s) into {args.out} ({written})")
    return 0


def run_export(args) -> int:
    from labkit.interop import export_label_studio

    info = export_label_studio(args.dataset, args.split, args.out, document_root=args.document_root)
    print(f"wrote {info['tasks']} task(s) to {info['tasks_path']}, images under {info['images']}")
    print(f"labelling config: {info['config_path']}")
    print(f"start Label Studio with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
          f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={info['document_root']}")
    return 0
