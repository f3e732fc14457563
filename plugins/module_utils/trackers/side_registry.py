# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Projects and registered models kept in side files, for the file-based trackers that have no place of their
own for them (W&B offline runs, Comet offline archives). In the tracker's directory ``root``:

    mlops-migration-projects.json   project -> {name, tags, description, lifecycle}
    mlops-migration-models.json     {"models": {name -> {description, tags, aliases, versions}}}

``SideRegistry`` is a mixin: the class using it has ``root`` (the directory) and ``lock`` (an RLock).
Importable without Ansible.
"""

from __future__ import annotations

import json
import os
import re
import threading

from ansible_collections.mlops.migration.plugins.module_utils.atomic import write_text_atomic
from ansible_collections.mlops.migration.plugins.module_utils.trackers.base import (
    Experiment,
    ModelVersion,
    RegisteredModel,
)

PROJECTS_FILE = "mlops-migration-projects.json"
MODELS_FILE = "mlops-migration-models.json"


def json_doc(path):
    """The JSON document at ``path``, or ``{}`` when there is none."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class SideRegistry:
    """Projects' descriptions and tags, and registered models, in side files under ``self.root``."""

    root = ""
    lock = threading.RLock()  # the class using the mixin gives each instance its own

    # projects ---------------------------------------------------------------------------------

    def project_ids(self):
        """The projects the tracker's runs name."""
        raise NotImplementedError

    def experiments(self, selectors, include_deleted=False):
        """The projects whose name or id matches one of ``selectors`` (all when there is none)."""
        patterns = [re.compile(s) for s in selectors or []]
        out = []
        for project in sorted(self.project_ids()):
            experiment = self.known_experiment(project)
            if experiment.lifecycle == "deleted" and not include_deleted:
                continue
            if not patterns or any(p.fullmatch(experiment.name) or p.fullmatch(project) for p in patterns):
                out.append(experiment)
        return out

    def known_experiment(self, project):
        """The Experiment ``project`` with what the projects file says of it."""
        about = json_doc(os.path.join(self.root, PROJECTS_FILE)).get(project) or {}
        return Experiment(project, about.get("name") or project, about.get("tags") or {},
                          about.get("lifecycle") or "active", about.get("description"))

    def _projects(self, change):
        path = os.path.join(self.root, PROJECTS_FILE)
        with self.lock:
            known = json_doc(path)
            result = change(known)
            os.makedirs(self.root, exist_ok=True)
            write_text_atomic(path, json.dumps(known, sort_keys=True, indent=1))
        return result

    def remember_experiment(self, project, experiment, name, tags):
        """Record the project ``project`` (copied from ``experiment`` as ``name``); (project, created)."""
        def change(known):
            if project in known:
                return project, False
            known[project] = {"name": name, "tags": tags, "description": experiment.description, "lifecycle": "active"}
            return project, True
        return self._projects(change)

    def delete_experiment(self, experiment_id):
        """There is no project to delete: it is marked deleted in the projects file."""
        def change(known):
            known.setdefault(experiment_id, {"name": experiment_id})["lifecycle"] = "deleted"
        self._projects(change)

    # registered models ------------------------------------------------------------------------

    def registered_models(self):
        models = json_doc(os.path.join(self.root, MODELS_FILE)).get("models") or {}
        return [RegisteredModel(name, m.get("description"), m.get("tags") or {}, m.get("aliases") or {})
                for name, m in sorted(models.items())]

    def model_versions(self, model):
        found = (json_doc(os.path.join(self.root, MODELS_FILE)).get("models") or {}).get(model.name) or {}
        return [ModelVersion(model.name, v["version"], v["source"], v.get("run_id"), v.get("description"),
                             v.get("tags") or {}, v.get("stage"), [a for a, n in (found.get("aliases") or {}).items()
                                                                   if n == v["version"]])
                for v in found.get("versions") or []]

    def _models(self, change):
        path = os.path.join(self.root, MODELS_FILE)
        with self.lock:
            doc = json_doc(path)
            result = change(doc.setdefault("models", {}))
            os.makedirs(self.root, exist_ok=True)
            write_text_atomic(path, json.dumps(doc, sort_keys=True, indent=1))
        return result

    def ensure_registered_model(self, model):
        def change(models):
            if model.name in models:
                return False
            models[model.name] = {"description": model.description, "tags": model.tags, "aliases": {}, "versions": []}
            return True
        return self._models(change)

    def create_model_version(self, version, source, run_id):
        def change(models):
            versions = models[version.name]["versions"]
            number = str(len(versions) + 1)
            versions.append({"version": number, "source": source, "run_id": run_id, "tags": version.tags,
                             "description": version.description, "stage": version.stage})
            return number
        return self._models(change)

    def set_alias(self, name, alias, version):
        def change(models):
            models[name]["aliases"][alias] = str(version)
        self._models(change)
