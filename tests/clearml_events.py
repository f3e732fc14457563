"""ClearML-shaped search events (the ``events-<type>-<company>`` indices) for tests, the demo and benchmarks.

The index templates are laid out as clearml-server's own ``apiserver/elastic/index_templates/events``
lay them out (a composable ``events_common`` component template and one index template per event
type, created at the server's start; an index is created by the first event written to it). The
documents carry the fields clearml-server writes: scalars (``metric``, ``variant``, ``value``,
``iter``), plots (``plot_str``, or ``plot_data`` - base64 of zlib level 1 - with ``plot_len`` for a
large one; both hold image URLs), debug images (``url``, ``key``) and console lines (``msg``,
``level``). No ClearML server runs here and the ClearML SDK writes events only to a server, so they
are built from the templates' fields, deterministically.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

EVENT_TYPES = ("training_stats_scalar", "plot", "training_debug_image", "log")
COMMON = {"template": {"settings": {"number_of_replicas": 0, "number_of_shards": 1}, "mappings": {
    "_source": {"enabled": True}, "properties": {
        "@timestamp": {"type": "date"}, "task": {"type": "keyword"}, "type": {"type": "keyword"},
        "worker": {"type": "keyword"}, "timestamp": {"type": "date"}, "iter": {"type": "long"},
        "metric": {"type": "keyword"}, "variant": {"type": "keyword"}, "value": {"type": "float"},
        "company_id": {"type": "keyword"}, "model_event": {"type": "boolean"}}}}}
OWN_FIELDS = {
    "training_stats_scalar": {},
    "plot": {"plot_str": {"type": "text", "index": False}, "plot_data": {"type": "binary"}},
    "training_debug_image": {"key": {"type": "keyword"}, "url": {"type": "keyword"}},
    "log": {"msg": {"type": "text", "index": False}, "level": {"type": "keyword"}},
}
T0 = 1_700_000_000_000


def index_name(kind, company):
    return f"events-{kind}-{company}"


def index_templates():
    """``{name: body}`` of the index templates, after the component template ``events_common``."""
    out = {}
    for kind, fields in OWN_FIELDS.items():
        body = {"index_patterns": f"events-{kind}-*", "priority": 500, "composed_of": ["events_common"]}
        if fields:
            body["template"] = {"mappings": {"properties": fields}}
        out[f"events_{kind}"] = body
    return out


def install_templates(request):
    """Create the templates through ``request(method, path, body)`` (as clearml-server does at its start)."""
    request("PUT", "/_component_template/events_common", COMMON)
    for name, body in index_templates().items():
        request("PUT", f"/_index_template/{name}", body)


def mapping(kind):
    """The mappings an index of ``kind`` gets from the templates."""
    props = dict(COMMON["template"]["mappings"]["properties"], **OWN_FIELDS[kind])
    return {"_source": {"enabled": True}, "properties": props}


def _id(*parts):
    return hashlib.md5("|".join(str(p) for p in parts).encode()).hexdigest()


def _base(kind, task, company, it, metric, variant):
    when = T0 + it * 1000
    return {"@timestamp": when, "timestamp": when, "type": kind, "task": task, "iter": it, "metric": metric,
            "variant": variant, "worker": "worker-1", "company_id": company, "model_event": False}


def scalars(task, company, iterations, metrics=("loss", "accuracy"), variants=("train", "val")):
    for it in range(iterations):
        for metric in metrics:
            for variant in variants:
                doc = _base("training_stats_scalar", task, company, it, metric, variant)
                doc["value"] = round(1.0 / (it + 1) + len(metric) * 0.01, 6)
                yield _id(task, "scalar", it, metric, variant), doc


def plot_json(images, points=20):
    return json.dumps({"data": [{"type": "scatter", "x": list(range(points)), "y": [i * i for i in range(points)]}],
                       "layout": {"title": "confusion", "images": [{"source": url, "x": 0, "y": 0} for url in images]}})


def plots(task, company, count, image_url, large_every=4, large_images=200):
    """``count`` plots; every ``large_every``-th is large and stored compressed, as clearml-server stores it."""
    for it in range(count):
        doc = _base("plot", task, company, it, "confusion", "matrix")
        if large_every and it % large_every == large_every - 1:
            text = plot_json([image_url(it, n) for n in range(large_images)], points=200)
            doc["plot_len"] = len(text)
            doc["plot_data"] = base64.encodebytes(zlib.compress(text.encode(), level=1)).decode("ascii")
        else:
            doc["plot_str"] = plot_json([image_url(it, 0)])
        yield _id(task, "plot", it), doc


def unpacked(plot_data):
    """The plot JSON text of a compressed ``plot_data``."""
    return zlib.decompress(base64.b64decode(plot_data)).decode("utf-8")


def debug_images(task, company, count, image_url):
    for it in range(count):
        doc = _base("training_debug_image", task, company, it, "samples", "image")
        doc.update(key=f"{task}/samples/image/{it}", url=image_url(it, 0))
        yield _id(task, "image", it), doc


def log_lines(task, company, count, image_url):
    for it in range(count):
        doc = _base("log", task, company, it, "", "")
        for key in ("metric", "variant", "model_event"):
            doc.pop(key)
        doc.update(level="info", msg=f"iteration {it}: saved {image_url(it, 0)}")
        yield _id(task, "log", it), doc


def task_events(task, company, files_url, folder, iterations=50, plot_count=8, image_count=6, lines=10):
    """``{kind: [(id, doc)]}`` of one task; images under ``<files_url>/<folder>/metrics/``."""
    def image_url(it, n):
        return f"{files_url}/{folder}/metrics/samples/image/sample_{it:04d}_{n:03d}.png"

    return {"training_stats_scalar": list(scalars(task, company, iterations)),
            "plot": list(plots(task, company, plot_count, image_url, large_images=5)),
            "training_debug_image": list(debug_images(task, company, image_count, image_url)),
            "log": list(log_lines(task, company, lines, image_url))}


def bulk_body(index, pairs):
    """An NDJSON ``_bulk`` body indexing ``[(id, doc)]`` into ``index``."""
    lines = []
    for ident, doc in pairs:
        lines.append(json.dumps({"index": {"_index": index, "_id": ident}}))
        lines.append(json.dumps(doc))
    return ("\n".join(lines) + "\n").encode()


def search_docs(url, index):
    """``{_id: _source}`` of every document of an index (a plain scroll)."""
    import urllib.request  # pylint: disable=import-outside-toplevel

    def call(path, body):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read())

    call(f"/{index}/_refresh", {})
    found, reply = {}, call(f"/{index}/_search?scroll=1m", {"size": 1000, "sort": ["_doc"]})
    while reply["hits"]["hits"]:
        found.update({hit["_id"]: hit["_source"] for hit in reply["hits"]["hits"]})
        reply = call("/_search/scroll", {"scroll": "1m", "scroll_id": reply["_scroll_id"]})
    return found
