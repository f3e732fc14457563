# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of a tracker dict (module_utils/trackers/registry.py: tracker_spec): the kind and
the connection options of every adapter.

ansible-test reads doc fragments as string literals, so the suboptions are written out once per
fragment (the pair shares them through a YAML anchor); keep them in step with ``tracker_spec()``.
"""

from __future__ import annotations


class ModuleDocFragment:
    # A source and a target tracker.
    DOCUMENTATION = r"""
options:
  source:
    description: The tracker to read.
    type: dict
    required: true
    suboptions: &tracker
      kind:
        description: Tracker type; it decides which of the other options apply.
        type: str
        choices: [mlflow, wandb_offline, wandb_api, neptune_export, neptune_offline, neptune_scale, neptune_query, comet_offline,
                  cometx_download, clearml_offline, clearml_server, clearml_api]
        default: mlflow
      tracking_uri:
        description:
          - Tracking server URL, for V(mlflow) (required there). A C(user:password@) in it becomes
            basic-auth credentials and is never shown.
        type: str
      token:
        description: Bearer token, for V(mlflow). Never logged or returned.
        type: str
      username:
        description: Basic-auth user, for V(mlflow).
        type: str
      password:
        description: Basic-auth password, for V(mlflow). Never logged or returned.
        type: str
      wandb_dir:
        description:
          - For V(wandb_offline) (required there), the directory of W&B offline runs - a C(wandb/) directory
            holding C(offline-run-<time>-<id>) folders, or the directory that holds it. As a target, the runs are
            written through the W&B SDK into its C(wandb/) directory, which is created when missing.
        type: path
      entity:
        description:
          - For V(wandb_api) (required there), the W&B entity (user or team) whose projects are read.
          - For V(wandb_offline) as a target, the W&B entity the runs name (for C(wandb sync) later).
        type: str
      staging_dir:
        description:
          - For V(wandb_offline) as a source, where the files of the runs' logged artifacts are when they are no
            longer at the staging paths the SDK recorded (its C(<WANDB_DATA_DIR>/artifacts/staging) directory,
            moved along with the runs). Each file is checked against the artifact's manifest (md5).
        type: path
      base_url:
        description:
          - For V(wandb_api), the W&B server's URL (a dedicated or self-hosted server), the W&B cloud when omitted.
          - For V(wandb_offline) as a target, a W&B server to C(wandb sync --id <run id> -p <project> -e <entity>) each
            run folder to once written (needs O(mlops.migration.tracker_copy#module:target.entity) and an API key). A
            failed sync fails the run, whose folder stays for C(wandb sync) by hand. Thin by design, and not tested
            against a W&B server (none can run where the collection is tested).
        type: str
      api_key:
        description:
          - For V(wandb_api), and V(wandb_offline) with O(mlops.migration.tracker_copy#module:target.base_url), the W&B
            API key (else the environment's C(WANDB_API_KEY)). Never logged or returned.
          - For V(neptune_query) (required there), the Neptune API token (it names the server). Never logged or returned.
        type: str
      run_filters:
        description:
          - For V(wandb_api), W&B's run filters, its MongoDB-style query (for example a C(state) of C(finished), or a
            C(createdAt) with C($gte) a date), applied by the server when listing runs, before the copy's own
            O(mlops.migration.tracker_copy#module:run_filter).
        type: dict
      max_requests:
        description:
          - For V(wandb_api), the most API requests in flight at once across the runs copied in parallel (default 4).
            Rate-limit answers (429) are retried after the server's C(Retry-After), other transient failures with backoff.
        type: int
      export_dir:
        description:
          - For V(neptune_export) (required there), the data directory of a C(neptune-exporter) export, holding
            C(<project>/<run>_part_<N>.parquet). A run without C(part_0) (an export cut short) is refused before anything
            is written.
        type: path
      files_dir:
        description:
          - For V(neptune_export), the export's files directory (the files attributes name); C(files) beside
            O(mlops.migration.tracker_copy#module:source.export_dir) when omitted.
        type: path
      neptune_dir:
        description:
          - For V(neptune_offline) (required there), the C(.neptune) directory of the C(neptune) 1.x client (or the
            directory holding it), whose C(offline/run__<id>__...) folders hold the runs logged with C(mode="offline").
            Every queue is read once before anything is written; a line that is not an operation fails naming the file
            and the line.
          - For V(neptune_scale) (required there), the C(.neptune) directory of C(neptune-scale) (or the directory holding
            it), whose C(<project>_<run>_<time>/run_operations.sqlite3) stores hold the runs logged with
            C(mode="offline"). Every store is read once before anything is written; one that is not SQLite, or an
            operation that cannot be decoded, fails naming it.
        type: path
      project:
        description:
          - For V(neptune_offline), the Neptune project the runs belong to (the client does not record it offline), the
            experiment they are copied into; C(neptune-offline) when omitted.
          - For V(neptune_query) (required there), the Neptune project to read (C(workspace/project)), through
            Neptune's own client C(neptune-query); its runs are read before anything is written.
        type: str
      comet_dir:
        description:
          - For V(comet_offline) (required there), the directory of Comet offline archives (C(<experiment key>.zip), as
            C(comet_ml.OfflineExperiment) writes them). Every archive is read once before anything is written; a damaged
            one fails the copy naming it (and the line of its C(messages.json)). As a target, one archive per run is
            written there through the C(comet_ml) SDK, for C(comet upload) (raise C(COMET_OFFLINE_SAMPLING_SIZE) above
            15,000 to upload every point of a long metric).
        type: path
      workspace:
        description:
          - For V(comet_offline), the Comet workspace - as a source, only archives of it (or naming none) are read; as a
            target, the workspace the archives name (for C(comet upload)).
        type: str
      download_dir:
        description:
          - For V(cometx_download) (required there), the directory C(cometx download) wrote, holding
            C(<workspace>/<project>/<experiment>/metadata.json) and the rest of each experiment's folder. Every folder is
            read once before anything is written; a line that is not JSON, or an asset listed in
            C(assets/assets_metadata.jsonl) whose file is missing, fails the copy naming it.
        type: path
      clearml_dir:
        description:
          - For V(clearml_offline) (required there), the directory of ClearML offline sessions (C(offline-<id>.zip) as the
            ClearML SDK writes them in offline mode, or their unpacked folders holding C(task.json)). Every session is read
            once before anything is written; a line of C(metrics.jsonl) or C(log.jsonl) that is not a list of events, or a
            debug sample or artifact whose file is missing, fails the copy naming the session, the task and the object. As
            a target, one session zip per run is written there, laid out as the SDK writes one, for
            C(clearml-task --import-offline-session).
        type: path
      mongo_uri:
        description:
          - For V(clearml_server) (required there), the MongoDB URI of the ClearML server's database (its C(backend)
            database holds the projects, tasks, models and users). A C(user:password@) in it is never shown.
        type: str
      mongo_database:
        description: For V(clearml_server), the ClearML database, C(backend) when omitted.
        type: str
      search_url:
        description:
          - For V(clearml_server) (required there), the URL of the server's Elasticsearch or OpenSearch, whose
            C(events-<type>-<company>) indices hold the tasks' scalars, plots, debug samples and console lines.
        type: str
      search_username:
        description: For V(clearml_server), the search server's basic-auth user.
        type: str
      search_password:
        description: For V(clearml_server), the search server's basic-auth password. Never logged or returned.
        type: str
      company:
        description:
          - For V(clearml_server), the company id of the event indices (C(events-<type>-<company>)); every company's
            indices when omitted.
        type: str
      api_server:
        description:
          - For V(clearml_api) (required there), the ClearML API server's URL (C(https://api.<domain>), or
            C(http://<host>:8008)), read through the ClearML SDK's own API session.
        type: str
      access_key:
        description: For V(clearml_api) (required there), the ClearML credentials' access key. Never logged or returned.
        type: str
      secret_key:
        description: For V(clearml_api) (required there), the ClearML credentials' secret key. Never logged or returned.
        type: str
      task_filter:
        description:
          - For V(clearml_server), V(clearml_api) and V(clearml_offline), a MongoDB query on the task documents (the same language and
            fields as the mongo step's filters, for example a C(status) with C($in) a list of statuses, or a C(user));
            only the tasks it matches are copied.
        type: dict
      url_map:
        description:
          - For V(clearml_server), V(clearml_api) and V(clearml_offline), where the URLs of artifacts, models and debug samples are
            read from - a URL prefix (a fileserver's, a bucket's) to a local directory, a C(file://), C(http(s)://) or
            C(s3://bucket/prefix) URL. The longest prefix that matches wins.
        type: dict
      s3:
        description: For V(clearml_server), V(clearml_api) and V(clearml_offline), the S3 connection C(s3://) URLs are read with.
        type: dict
        suboptions:
          endpoint_url:
            description: The S3 endpoint URL.
            type: str
          access_key:
            description: The access key. Never logged or returned.
            type: str
          secret_key:
            description: The secret key. Never logged or returned.
            type: str
          region:
            description: The region, C(us-east-1) when omitted.
            type: str
          validate_certs:
            description: Whether to check the endpoint's TLS certificate.
            type: bool
            default: true
  target:
    description: The tracker to write, like O(source).
    type: dict
    required: true
    suboptions: *tracker
requirements:
  - for V(mlflow), mlflow-skinny >= 2.10 on the host that runs the module
  - for V(wandb_offline), wandb >= 0.31 on the host that runs the module (its protobuf classes read the runs; its SDK writes them)
  - for V(wandb_api), wandb >= 0.31 on the host that runs the module (C(wandb.Api()) reads the server)
  - for V(neptune_export), pyarrow on the host that runs the module
  - for V(neptune_offline) and V(neptune_scale), nothing outside Python (the stores are read as the clients write them)
  - for V(comet_offline) as a target, comet_ml on the host that runs the module (reading needs nothing more)
  - for V(clearml_api), clearml on the host that runs the module; for V(clearml_server), pymongo; for V(clearml_offline), nothing
    outside Python
"""

    # A tracker to check (preflight).
    CHECKED = r"""
options:
  tracker:
    description: The tracker to check, for V(tracker), as M(mlops.migration.tracker_copy) takes its O(mlops.migration.tracker_copy#module:source).
    type: dict
    suboptions:
      kind:
        description: Tracker type; it decides which of the other options apply.
        type: str
        choices: [mlflow, wandb_offline, wandb_api, neptune_export, neptune_offline, neptune_scale, neptune_query, comet_offline,
                  cometx_download, clearml_offline, clearml_server, clearml_api]
        default: mlflow
      tracking_uri:
        description:
          - Tracking server URL, for V(mlflow) (required there). A C(user:password@) in it becomes
            basic-auth credentials and is never shown.
        type: str
      token:
        description: Bearer token, for V(mlflow). Never logged or returned.
        type: str
      username:
        description: Basic-auth user, for V(mlflow).
        type: str
      password:
        description: Basic-auth password, for V(mlflow). Never logged or returned.
        type: str
      wandb_dir:
        description:
          - For V(wandb_offline) (required there), the directory of W&B offline runs - a C(wandb/) directory
            holding C(offline-run-<time>-<id>) folders, or the directory that holds it. As a target, the runs are
            written through the W&B SDK into its C(wandb/) directory, which is created when missing.
        type: path
      entity:
        description:
          - For V(wandb_api) (required there), the W&B entity (user or team) whose projects are read.
          - For V(wandb_offline) as a target, the W&B entity the runs name (for C(wandb sync) later).
        type: str
      staging_dir:
        description:
          - For V(wandb_offline) as a source, where the files of the runs' logged artifacts are when they are no
            longer at the staging paths the SDK recorded (its C(<WANDB_DATA_DIR>/artifacts/staging) directory,
            moved along with the runs). Each file is checked against the artifact's manifest (md5).
        type: path
      base_url:
        description:
          - For V(wandb_api), the W&B server's URL (a dedicated or self-hosted server), the W&B cloud when omitted.
          - For V(wandb_offline) as a target, a W&B server to C(wandb sync --id <run id> -p <project> -e <entity>) each
            run folder to once written (needs O(mlops.migration.tracker_copy#module:target.entity) and an API key). A
            failed sync fails the run, whose folder stays for C(wandb sync) by hand. Thin by design, and not tested
            against a W&B server (none can run where the collection is tested).
        type: str
      api_key:
        description:
          - For V(wandb_api), and V(wandb_offline) with O(mlops.migration.tracker_copy#module:target.base_url), the W&B
            API key (else the environment's C(WANDB_API_KEY)). Never logged or returned.
          - For V(neptune_query) (required there), the Neptune API token (it names the server). Never logged or returned.
        type: str
      run_filters:
        description:
          - For V(wandb_api), W&B's run filters, its MongoDB-style query (for example a C(state) of C(finished), or a
            C(createdAt) with C($gte) a date), applied by the server when listing runs, before the copy's own
            O(mlops.migration.tracker_copy#module:run_filter).
        type: dict
      max_requests:
        description:
          - For V(wandb_api), the most API requests in flight at once across the runs copied in parallel (default 4).
            Rate-limit answers (429) are retried after the server's C(Retry-After), other transient failures with backoff.
        type: int
      export_dir:
        description:
          - For V(neptune_export) (required there), the data directory of a C(neptune-exporter) export, holding
            C(<project>/<run>_part_<N>.parquet). A run without C(part_0) (an export cut short) is refused before anything
            is written.
        type: path
      files_dir:
        description:
          - For V(neptune_export), the export's files directory (the files attributes name); C(files) beside
            O(mlops.migration.tracker_copy#module:source.export_dir) when omitted.
        type: path
      neptune_dir:
        description:
          - For V(neptune_offline) (required there), the C(.neptune) directory of the C(neptune) 1.x client (or the
            directory holding it), whose C(offline/run__<id>__...) folders hold the runs logged with C(mode="offline").
            Every queue is read once before anything is written; a line that is not an operation fails naming the file
            and the line.
          - For V(neptune_scale) (required there), the C(.neptune) directory of C(neptune-scale) (or the directory holding
            it), whose C(<project>_<run>_<time>/run_operations.sqlite3) stores hold the runs logged with
            C(mode="offline"). Every store is read once before anything is written; one that is not SQLite, or an
            operation that cannot be decoded, fails naming it.
        type: path
      project:
        description:
          - For V(neptune_offline), the Neptune project the runs belong to (the client does not record it offline), the
            experiment they are copied into; C(neptune-offline) when omitted.
          - For V(neptune_query) (required there), the Neptune project to read (C(workspace/project)), through
            Neptune's own client C(neptune-query); its runs are read before anything is written.
        type: str
      comet_dir:
        description:
          - For V(comet_offline) (required there), the directory of Comet offline archives (C(<experiment key>.zip), as
            C(comet_ml.OfflineExperiment) writes them). Every archive is read once before anything is written; a damaged
            one fails the copy naming it (and the line of its C(messages.json)). As a target, one archive per run is
            written there through the C(comet_ml) SDK, for C(comet upload) (raise C(COMET_OFFLINE_SAMPLING_SIZE) above
            15,000 to upload every point of a long metric).
        type: path
      workspace:
        description:
          - For V(comet_offline), the Comet workspace - as a source, only archives of it (or naming none) are read; as a
            target, the workspace the archives name (for C(comet upload)).
        type: str
      download_dir:
        description:
          - For V(cometx_download) (required there), the directory C(cometx download) wrote, holding
            C(<workspace>/<project>/<experiment>/metadata.json) and the rest of each experiment's folder. Every folder is
            read once before anything is written; a line that is not JSON, or an asset listed in
            C(assets/assets_metadata.jsonl) whose file is missing, fails the copy naming it.
        type: path
      clearml_dir:
        description:
          - For V(clearml_offline) (required there), the directory of ClearML offline sessions (C(offline-<id>.zip) as the
            ClearML SDK writes them in offline mode, or their unpacked folders holding C(task.json)). Every session is read
            once before anything is written; a line of C(metrics.jsonl) or C(log.jsonl) that is not a list of events, or a
            debug sample or artifact whose file is missing, fails the copy naming the session, the task and the object. As
            a target, one session zip per run is written there, laid out as the SDK writes one, for
            C(clearml-task --import-offline-session).
        type: path
      mongo_uri:
        description:
          - For V(clearml_server) (required there), the MongoDB URI of the ClearML server's database (its C(backend)
            database holds the projects, tasks, models and users). A C(user:password@) in it is never shown.
        type: str
      mongo_database:
        description: For V(clearml_server), the ClearML database, C(backend) when omitted.
        type: str
      search_url:
        description:
          - For V(clearml_server) (required there), the URL of the server's Elasticsearch or OpenSearch, whose
            C(events-<type>-<company>) indices hold the tasks' scalars, plots, debug samples and console lines.
        type: str
      search_username:
        description: For V(clearml_server), the search server's basic-auth user.
        type: str
      search_password:
        description: For V(clearml_server), the search server's basic-auth password. Never logged or returned.
        type: str
      company:
        description:
          - For V(clearml_server), the company id of the event indices (C(events-<type>-<company>)); every company's
            indices when omitted.
        type: str
      api_server:
        description:
          - For V(clearml_api) (required there), the ClearML API server's URL (C(https://api.<domain>), or
            C(http://<host>:8008)), read through the ClearML SDK's own API session.
        type: str
      access_key:
        description: For V(clearml_api) (required there), the ClearML credentials' access key. Never logged or returned.
        type: str
      secret_key:
        description: For V(clearml_api) (required there), the ClearML credentials' secret key. Never logged or returned.
        type: str
      task_filter:
        description:
          - For V(clearml_server), V(clearml_api) and V(clearml_offline), a MongoDB query on the task documents (the same language and
            fields as the mongo step's filters, for example a C(status) with C($in) a list of statuses, or a C(user));
            only the tasks it matches are copied.
        type: dict
      url_map:
        description:
          - For V(clearml_server), V(clearml_api) and V(clearml_offline), where the URLs of artifacts, models and debug samples are
            read from - a URL prefix (a fileserver's, a bucket's) to a local directory, a C(file://), C(http(s)://) or
            C(s3://bucket/prefix) URL. The longest prefix that matches wins.
        type: dict
      s3:
        description: For V(clearml_server), V(clearml_api) and V(clearml_offline), the S3 connection C(s3://) URLs are read with.
        type: dict
        suboptions:
          endpoint_url:
            description: The S3 endpoint URL.
            type: str
          access_key:
            description: The access key. Never logged or returned.
            type: str
          secret_key:
            description: The secret key. Never logged or returned.
            type: str
          region:
            description: The region, C(us-east-1) when omitted.
            type: str
          validate_certs:
            description: Whether to check the endpoint's TLS certificate.
            type: bool
            default: true
requirements:
  - for V(mlflow), mlflow-skinny >= 2.10 on the host that runs the module
  - for V(wandb_offline), wandb >= 0.31 on the host that runs the module (its protobuf classes read the runs; its SDK writes them)
  - for V(wandb_api), wandb >= 0.31 on the host that runs the module (C(wandb.Api()) reads the server)
  - for V(neptune_export), pyarrow on the host that runs the module
  - for V(neptune_offline) and V(neptune_scale), nothing outside Python (the stores are read as the clients write them)
  - for V(comet_offline) as a target, comet_ml on the host that runs the module (reading needs nothing more)
  - for V(clearml_api), clearml on the host that runs the module; for V(clearml_server), pymongo; for V(clearml_offline), nothing
    outside Python
"""
