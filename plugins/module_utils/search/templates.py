# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Composable index templates (``_index_template``) and the component templates they are composed
of (``_component_template``), read from one server and put on another before any index is created
(ClearML's ``events_*`` templates over ``events_common``), on ES 7.8+, ES 8 and OpenSearch 2.
"""

from __future__ import annotations

from ansible_collections.mlops.migration.plugins.module_utils.search.client import SearchNotFound


def read_templates(client, names):
    """``{"component_templates": {name: body}, "index_templates": {name: body}}`` of the index templates
    ``names`` (wildcards allowed) and every component template they are composed of."""
    found = {"component_templates": {}, "index_templates": {}}
    for name in names:
        reply = client.call("GET", f"/_index_template/{name}", what=f"index template {name}", missing_ok=True)
        items = (reply or {}).get("index_templates") or []
        if not items:
            raise SearchNotFound(f"no index template matches {name} at the search server {client.url}")
        for item in items:
            found["index_templates"][item["name"]] = item["index_template"]
    for body in list(found["index_templates"].values()):
        for part in body.get("composed_of") or ():
            if part in found["component_templates"]:
                continue
            reply = client.call("GET", f"/_component_template/{part}", what=f"component template {part}",
                                missing_ok=True)
            items = (reply or {}).get("component_templates") or []
            if not items:
                raise SearchNotFound(f"the index templates are composed of {part}, which does not exist at "
                                     f"the search server {client.url}")
            found["component_templates"][part] = items[0]["component_template"]
    return found


def apply_templates(client, templates, check_mode=False):
    """Put every template of ``templates`` that the server does not hold the same (components first);
    the names put (or, in check mode, that would be)."""
    written = []
    for kind in ("component_templates", "index_templates"):
        path = "_component_template" if kind == "component_templates" else "_index_template"
        for name, body in sorted((templates or {}).get(kind, {}).items()):
            reply = client.call("GET", f"/{path}/{name}", what=f"{path[1:]} {name}", missing_ok=True)
            items = (reply or {}).get(kind) or []
            if items and items[0].get(kind[:-1]) == body:
                continue
            if not check_mode:
                client.call("PUT", f"/{path}/{name}", body, what=f"writing {path[1:]} {name}")
            written.append(f"{path[1:]} {name}")
    return written
