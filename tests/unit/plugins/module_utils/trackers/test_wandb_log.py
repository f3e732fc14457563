"""The .wandb record log reader against files the W&B SDK itself writes offline inside the test (no server,
no hand-made files): every record read back and decoded, a record longer than a block reassembled, a file
cut off inside a record and a file with a flipped byte refused naming the offset after the whole records
before it."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers.wandb_log import BLOCK, read_records, WandbLogError

pb = pytest.importorskip("wandb.proto.wandb_internal_pb2", reason="wandb is in test-requirements.txt: make deps installs it")

WRITE = """
import sys, wandb
run = wandb.init(mode="offline", project="p", id="run0001", name="first", group="g", job_type="train",
                 tags=["a", "b"], notes="n", dir=sys.argv[1], config={"lr": 0.1, "nested": {"x": 1}, "big": "x" * 100000})
for step in range(300):
    run.log({"loss": 1.0 / (step + 1), **({"sparse": step} if step % 50 == 0 else {})}, step=step)
run.summary["best"] = 0.9
run.finish()
"""


@pytest.fixture(scope="module")
def wandb_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(root))
    subprocess.run([sys.executable, "-c", WRITE, str(root)], env=env, check=True, timeout=300, cwd=root)
    found = glob.glob(os.path.join(root, "wandb", "offline-run-*-run0001", "run-run0001.wandb"))
    assert len(found) == 1, os.listdir(os.path.join(root, "wandb"))
    return found[0]


def decoded(path):
    out = []
    for offset, data in read_records(path):
        record = pb.Record()
        record.ParseFromString(data)
        out.append((offset, record))
    return out


def test_every_record_is_read_and_a_long_one_reassembled(wandb_file):
    records = decoded(wandb_file)
    kinds = [r.WhichOneof("record_type") for _o, r in records]
    assert kinds.count("history") == 300
    run = next(r.run for _o, r in records if r.WhichOneof("record_type") == "run")
    assert (run.run_id, run.display_name, run.run_group, list(run.tags)) == ("run0001", "first", "g", ["a", "b"])
    big = {u.key: u.value_json for u in run.config.update}["big"]
    assert len(big) == 100002 and len(big) > BLOCK  # spans blocks: FIRST, MIDDLE..., LAST
    steps = [int({i.nested_key[0] if i.nested_key else i.key: i.value_json for i in r.history.item}["_step"])
             for _o, r in records if r.WhichOneof("record_type") == "history"]
    assert steps == list(range(300))


def test_a_file_cut_off_inside_a_record_is_refused_after_the_whole_records(wandb_file, tmp_path):
    whole = decoded(wandb_file)
    with open(wandb_file, "rb") as handle:
        data = handle.read()
    cut_at = whole[len(whole) // 2][0] + 10  # inside the middle record
    cut = tmp_path / "cut.wandb"
    cut.write_bytes(data[:cut_at])
    read = []
    with pytest.raises(WandbLogError, match="cut off") as err:
        for offset, _data in read_records(str(cut)):
            read.append(offset)
    assert read == [o for o, _r in whole[:len(whole) // 2]]
    assert err.value.offset == whole[len(whole) // 2][0]


def test_a_flipped_byte_is_named_by_its_chunk_offset(wandb_file, tmp_path):
    whole = decoded(wandb_file)
    with open(wandb_file, "rb") as handle:
        data = bytearray(handle.read())
    target = whole[5][0]
    data[target + 7 + 2] ^= 0xFF
    bad = tmp_path / "bad.wandb"
    bad.write_bytes(bytes(data))
    with pytest.raises(WandbLogError, match=f"corrupt at offset {target}: the chunk's crc32"):
        list(read_records(str(bad)))


def test_not_a_record_log(tmp_path):
    path = tmp_path / "x.wandb"
    path.write_bytes(b"PK\x03\x04 not this")
    with pytest.raises(WandbLogError, match="is not a W&B record log"):
        list(read_records(str(path)))
