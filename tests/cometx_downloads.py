"""Folders in the layout ``cometx download`` writes, for the tests.

Written here, not by cometx: ``cometx download`` only writes what a Comet server answers, and no Comet server
runs here. The files hold the shapes of Comet's REST answers that cometx stores as they come
(``get_metadata``, ``get_parameters_summary``, ``get_others_summary``, ``get_metrics``, ``get_asset_list``),
under the names and paths its download manager gives them (cometx 3.6: ``metadata.json``,
``parameters.json``, ``others.jsonl``, ``metrics.jsonl``, ``assets/assets_metadata.jsonl``,
``assets/<type>/<file name>``, ``assets/html/experiment.html``, ``run/output.txt``, ``run/requirements.txt``).
"""

from __future__ import annotations

import json
import os

T0 = 1_700_000_000_000
LOSS_POINTS = 1200
MODEL = bytes(range(256)) * 10
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(40)


def _jsonl(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")


def _file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def write(root, key="c" * 32, workspace="ws", project="proj"):
    """One experiment folder with every record kind; returns its path."""
    folder = os.path.join(str(root), workspace, project, key)
    _file(os.path.join(folder, "metadata.json"), json.dumps({
        "experimentKey": key, "experimentName": "downloaded", "projectName": project, "workspaceName": workspace,
        "startTimeMillis": T0, "endTimeMillis": T0 + 60_000, "running": False, "hasCrashed": False,
        "userName": "alice", "tags": ["b", "a"], "cometDownloadVersion": "3.6.11"}))
    _file(os.path.join(folder, "parameters.json"), json.dumps([
        {"name": "lr", "valueCurrent": "0.01", "valueMin": "0.01", "valueMax": "0.01", "editable": False},
        {"name": "opt|name", "valueCurrent": "adam"}]))
    _jsonl(os.path.join(folder, "others.jsonl"), [{"name": "Name", "valueCurrent": "downloaded"},
                                                  {"name": "owner", "valueCurrent": "alice"}])
    metrics = [{"metricName": "train/loss", "metricValue": str(1.0 / (n + 1)), "timestamp": T0 + n, "step": n,
                "epoch": n // 400, "runContext": None} for n in range(LOSS_POINTS)]
    metrics.append({"metricName": "sys.cpu.percent", "metricValue": "12.5", "timestamp": T0, "step": 0,
                    "epoch": None, "runContext": None})
    _jsonl(os.path.join(folder, "metrics.jsonl"), metrics)
    assets = [{"fileName": "model/weights.bin", "type": "asset", "step": None, "remote": False, "assetId": "a1",
               "fileSize": len(MODEL), "createdAt": T0},
              {"fileName": "sample.png", "type": "image", "step": 3, "remote": False, "assetId": "a2", "createdAt": T0},
              {"fileName": "weights", "type": "histogram_combined_3d", "step": 1, "remote": False, "assetId": "a3",
               "createdAt": T0},
              {"fileName": "data.csv", "type": "asset", "step": None, "remote": True, "link": "s3://bucket/data.csv",
               "assetId": "a4"}]
    _jsonl(os.path.join(folder, "assets", "assets_metadata.jsonl"), assets)
    _file(os.path.join(folder, "assets", "asset", "model", "weights.bin"), MODEL)
    _file(os.path.join(folder, "assets", "image", "sample.png"), IMAGE)
    _file(os.path.join(folder, "assets", "histogram_combined_3d", "weights"),
          json.dumps({"histograms": [{"step": 1, "histogram": {"index_values": [[1065, 3]]}}]}))
    _file(os.path.join(folder, "assets", "html", "experiment.html"), "<b>report</b>")
    _file(os.path.join(folder, "run", "output.txt"), "epoch 0\nepoch 1\n")
    _file(os.path.join(folder, "run", "requirements.txt"), "torch==2.5\n")
    return folder
