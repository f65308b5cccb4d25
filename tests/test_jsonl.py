"""The one JSONL rule (labkit.jsonl): a torn last line is dropped, damage elsewhere is an error."""
import json

import pytest

from labkit.jsonl import append_rows, read_by_id, read_rows, write_atomic


def test_torn_last_line_is_dropped_and_the_next_append_starts_clean(tmp_path):
    path = tmp_path / "journal.jsonl"
    append_rows(path, [{"id": "a", "x": 1}, {"id": "b", "x": 2}])
    with path.open("a") as fh:
        fh.write('{"id": "c", "x"')  # a crash in the middle of a write
    assert read_rows(path) == [{"id": "a", "x": 1}, {"id": "b", "x": 2}]
    append_rows(path, [{"id": "c", "x": 3}])
    # the torn fragment is gone, so the new line is whole and readable
    assert path.read_text().splitlines() == [json.dumps({"id": "a", "x": 1}), json.dumps({"id": "b", "x": 2}),
                                             json.dumps({"id": "c", "x": 3})]
    assert read_by_id(path) == {"a": {"id": "a", "x": 1}, "b": {"id": "b", "x": 2}, "c": {"id": "c", "x": 3}}


def test_a_bad_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"log\.jsonl:2: not JSON"):
        read_rows(path)
    # a complete last line (it ends in a newline) that does not parse is damage too, not a torn write
    path.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"log\.jsonl:2: not JSON"):
        read_rows(path)


def test_missing_files_blank_lines_and_last_row_per_id(tmp_path):
    path = tmp_path / "p.jsonl"
    assert read_rows(path) == [] and read_by_id(path) == {}
    with pytest.raises(FileNotFoundError, match="p.jsonl"):
        read_rows(path, missing_ok=False)
    write_atomic(path, [{"id": "a", "v": 1}, {"id": "a", "v": 2}])
    path.write_text(path.read_text() + "\n\n")
    assert read_by_id(path) == {"a": {"id": "a", "v": 2}}
    assert not (tmp_path / "p.jsonl.tmp").exists()
