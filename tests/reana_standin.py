"""A REANA server stand-in for the tests: the server's side of reana-client's conversation, in memory.

No REANA cluster is reachable from a test machine, but reana-client talks to its server through the OpenAPI
document that ships with reana-commons (``reana_commons/openapi_specifications/reana_server.json``). This
stand-in serves that very document with connexion: connexion routes each request by the document's paths,
validates it against the operation's parameters (an unknown operation, a missing parameter or a wrong type
is refused the way a strict server would), and validates every response this module returns against the
operation's response schemas, so a handler that answered what a real server never could fails the test.
The document is read from the workflow environment's reana-commons: the version reana-client speaks.

What is kept, in memory: workflows (name, run number, the REANA specification as submitted, the input
parameters it was started with, status and progress), each workflow's uploaded files, and the outputs a
finished run "produced" (one file per ``outputs.files`` entry, with a content that names workflow and file,
so a download can be checked byte for byte). Runs advance on the client's status requests: ``running`` on
the first, ``finished`` (or ``failed``) after :attr:`ReanaStandIn.polls_to_finish` of them.

Failures a test can inject (attributes, changed at any time):
- :attr:`fail_run`: the next started workflow fails, with this message in the failing job's log;
- :attr:`fail_upload`: the N-th file upload (1-based, counted over the server's life) answers 500;
- :attr:`fail_operations`: operation ids (``start_workflow``...) that answer 500;
- :attr:`delay`: seconds every request waits before it is answered (a slow server).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JSON = {"Content-Type": "application/json"}


def specification_path() -> Path:
    """reana_server.json of the workflow environment's reana-commons (the one reana-client uses)."""
    found = sorted(
        (ROOT / ".venv-workflow").glob(
            "lib/python3*/site-packages/reana_commons/openapi_specifications/reana_server.json"
        )
    )
    if not found:
        raise FileNotFoundError(
            f"{ROOT / '.venv-workflow'}: no reana_commons/openapi_specifications/reana_server.json "
            "(drivers/ensure-workflow-env creates the workflow environment)"
        )
    return found[-1]


def served_specification() -> dict:
    """reana_server.json with two things said explicitly that REANA's Flask server does and connexion
    would otherwise read differently:
    - a workspace file name that contains folders (``ml/plotting/summary.json``) is routed to
      ``download_file`` (Flask's ``<path:...>``): the ``path`` format of that parameter;
    - a body parameter that is not required may be empty (reana-client sends ``get_workflow_logs`` with an
      empty JSON body; connexion refuses an empty body unless its schema is nullable)."""
    spec = json.loads(specification_path().read_text())
    for methods in spec["paths"].values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "file_name":
                    parameter["format"] = "path"
                if parameter["in"] == "body" and not parameter.get("required"):
                    parameter["x-nullable"] = True
    return spec


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Workflow:
    id: str
    name: str
    run_number: int
    specification: dict
    status: str = "created"
    created: str = field(default_factory=_now)
    started: str | None = None
    finished: str | None = None
    input_parameters: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # uploaded inputs and produced outputs
    uploaded: list[str] = field(default_factory=list)  # names of the uploads, in order
    polls: int = 0
    failure: str | None = None  # the message of the failing job, when injected
    engine_failure: str | None = None  # why the engine could not load the workflow (no job ran)
    loaded: dict | None = None  # the Yadage specification as the engine loaded it from the workspace at start

    @property
    def full_name(self) -> str:
        return f"{self.name}.{self.run_number}"


def output_content(workflow: str, name: str) -> bytes:
    """What the stand-in's run writes to output ``name`` of ``workflow`` (tests compare downloads with it)."""
    return f"output {name} of workflow {workflow}\n".encode()


class ReanaStandIn:
    """The in-memory server; :meth:`serve` runs it on 127.0.0.1 in a thread of the calling process."""

    token_message = "Token is not valid."

    def __init__(self, token: str):
        self.token = token
        self.workflows: dict[str, Workflow] = {}
        self.requests: list[str] = []  # operation ids, in the order they were called
        self.polls_to_finish = 2
        self.fail_run: str | None = None
        self.fail_upload: int | None = None
        self.fail_operations: set[str] = set()
        self.delay = 0.0
        self._uploads = 0
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- the application -------------------------------------------------------------------------------
    def app(self):
        """A connexion app of reana_server.json whose operations resolve to this object's methods
        (operations the client never calls answer 501, as the document allows a server to)."""
        import connexion
        from connexion.resolver import Resolver

        def resolve(operation_id: str):
            handler = getattr(self, f"op_{operation_id}", None) or self._not_implemented

            def call(*args, **kwargs):
                with self._lock:
                    self.requests.append(operation_id)
                if self.delay:
                    time.sleep(self.delay)
                if operation_id in self.fail_operations:
                    return {"message": f"Internal server error (injected into {operation_id})"}, 500, JSON
                if operation_id not in ("ping", "get_config") and kwargs.get("access_token") != self.token:
                    return {"message": self.token_message}, 403, JSON
                with self._lock:
                    answer = handler(**kwargs)
                if isinstance(answer[0], dict):  # a JSON answer (download_file may give either kind)
                    answer = (*answer[:2], JSON)
                return answer

            return call

        app = connexion.AsyncApp(__name__)
        app.add_api(
            served_specification(),
            resolver=Resolver(function_resolver=resolve),
            validate_responses=True,
            strict_validation=False,  # reana-client sends file_name with downloads, which the document omits
        )
        return app

    def _not_implemented(self, **kwargs):
        return {"message": "not implemented by the stand-in"}, 501

    def _workflow(self, name: str) -> Workflow | None:
        """By id, ``name.run_number``, or ``name`` (its latest run), as REANA resolves them."""
        if name in self.workflows:
            return self.workflows[name]
        runs = [w for w in self.workflows.values() if name in (w.full_name, w.name)]
        return max(runs, key=lambda w: w.run_number) if runs else None

    def _missing(self, name: str):
        return {"message": f"REANA_WORKON is set to {name}, but that workflow does not exist."}, 404

    # -- operations of reana_server.json (named op_<operationId>) --------------------------------------
    def op_ping(self, **kwargs):
        return {"message": "OK", "status": "200"}, 200

    def op_get_you(self, **kwargs):
        return {"email": "tester@example.org", "reana_server_version": "0.9.4"}, 200

    def op_info(self, **kwargs):
        return {
            "compute_backends": {"title": "List of supported compute backends", "value": ["kubernetes"]},
            "default_workspace": {"title": "Default workspace", "value": "/var/reana"},
            "workspaces_available": {"title": "Available workspaces", "value": ["/var/reana"]},
        }, 200

    def op_create_workflow(self, workflow_name: str, body: dict | None = None, **kwargs):
        spec = body if body is not None else kwargs.get("reana_specification")
        if not isinstance(spec, dict) or "workflow" not in spec:
            return {"message": "The REANA specification is missing or has no workflow."}, 400
        runs = [w.run_number for w in self.workflows.values() if w.name == workflow_name]
        workflow = Workflow(
            id=str(uuid.uuid4()), name=workflow_name, run_number=max(runs, default=0) + 1, specification=spec
        )
        self.workflows[workflow.id] = workflow
        return {
            "message": "The workflow has been successfully created.",
            "workflow_id": workflow.id,
            "workflow_name": workflow.full_name,
        }, 201

    def op_upload_file(self, workflow_id_or_name: str, file_name: str, body=None, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        self._uploads += 1
        if self.fail_upload == self._uploads:
            return {"message": f"Internal server error while saving {file_name} (injected)"}, 500
        data = kwargs.get("file", body)  # the body, by the name of its parameter in the document
        if not isinstance(data, bytes):
            return {"message": f"{file_name}: the upload's body arrived as {type(data).__name__}, not bytes"}, 400
        name = file_name.lstrip("/")
        workflow.files[name] = data
        workflow.uploaded.append(name)
        return {"message": f"{name} has been successfully uploaded."}, 200

    def op_start_workflow(self, workflow_id_or_name: str, body: dict | None = None, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        if workflow.status != "created":
            return {"message": f"Workflow {workflow.full_name} is already {workflow.status}."}, 409
        body = body if body is not None else kwargs.get("parameters") or {}
        workflow.input_parameters = dict(body.get("input_parameters") or {})
        workflow.status = "queued"
        workflow.failure, self.fail_run = self.fail_run, None
        try:  # what REANA's Yadage engine does first: load workflow.file, with its $refs, from the workspace
            workflow.loaded = self._load(workflow, workflow.specification["workflow"]["file"])
        except FileNotFoundError as err:
            workflow.engine_failure = f"yadage could not load the workflow: {err} is not in the workspace"
        return {
            "message": "Workflow submitted.",
            "status": "queued",
            "user": "tester",
            "workflow_id": workflow.id,
            "workflow_name": workflow.full_name,
        }, 200

    def _load(self, workflow: Workflow, name: str) -> dict:
        """A YAML file of the workspace with its ``$ref: 'file.yml#/pointer'`` entries replaced by what they
        point to (JSON references, relative to the workspace, as Yadage resolves them)."""
        import yaml

        if name not in workflow.files:
            raise FileNotFoundError(name)

        def resolve(node):
            if isinstance(node, dict):
                if set(node) == {"$ref"}:
                    file, _, pointer = node["$ref"].partition("#")
                    target = self._load(workflow, file)
                    for part in filter(None, pointer.split("/")):
                        target = target[part]
                    return target
                return {key: resolve(value) for key, value in node.items()}
            if isinstance(node, list):
                return [resolve(value) for value in node]
            return node

        return resolve(yaml.safe_load(workflow.files[name]))

    def _advance(self, workflow: Workflow) -> None:
        if workflow.status not in ("queued", "running"):
            return
        workflow.polls += 1
        if workflow.status == "queued":
            workflow.status, workflow.started = "running", _now()
        if workflow.polls < self.polls_to_finish:
            return
        workflow.finished = _now()
        if workflow.failure is not None or workflow.engine_failure is not None:
            workflow.status = "failed"
            return
        workflow.status = "finished"
        for name in workflow.specification.get("outputs", {}).get("files", []):
            workflow.files[name] = output_content(workflow.full_name, name)

    def _jobs(self, workflow: Workflow) -> dict:
        done = 1 if workflow.status in ("finished", "failed") else 0
        failed = 1 if workflow.status == "failed" else 0
        return {
            "total": {"total": 2, "job_ids": []},
            "finished": {"total": 2 if workflow.status == "finished" else done - failed, "job_ids": []},
            "failed": {"total": failed, "job_ids": ["job-failed"] if failed else []},
            "running": {"total": 1 if workflow.status == "running" else 0, "job_ids": []},
            "run_started_at": workflow.started,
            "run_finished_at": workflow.finished,
            "current_command": None,
            "current_step_name": None,
        }

    def op_get_workflow_status(self, workflow_id_or_name: str, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        self._advance(workflow)
        return {
            "id": workflow.id,
            "name": workflow.full_name,
            "created": workflow.created,
            "status": workflow.status,
            "user": "tester",
            "logs": "",
            "progress": self._jobs(workflow),
        }, 200

    def op_get_workflow_logs(self, workflow_id_or_name: str, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        jobs = {}
        if workflow.status == "failed" and workflow.engine_failure is None:
            jobs["job-failed"] = {
                "job_name": "ml.training.0",
                "status": "failed",
                "compute_backend": "Kubernetes",
                "docker_img": "madminer-notebooks",
                "logs": f"running the stage\n{workflow.failure}\n",
            }
        engine = f"workflow {workflow.status}" + (f"\n{workflow.engine_failure}" if workflow.engine_failure else "")
        logs = {"workflow_logs": engine, "job_logs": jobs, "engine_specific": None}
        return {
            "logs": json.dumps(logs),
            "user": "tester",
            "workflow_id": workflow.id,
            "workflow_name": workflow.full_name,
        }, 200

    def op_get_workflow_specification(self, workflow_id_or_name: str, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        return {"specification": workflow.specification, "parameters": workflow.input_parameters}, 200

    def op_get_workflow_parameters(self, workflow_id_or_name: str, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        parameters = workflow.specification.get("inputs", {}).get("parameters", {})
        return {
            "id": workflow.id,
            "name": workflow.full_name,
            "type": workflow.specification["workflow"]["type"],
            "parameters": parameters,
        }, 200

    def op_download_file(self, workflow_id_or_name: str, file_name: str, **kwargs):
        workflow = self._workflow(workflow_id_or_name)
        if workflow is None:
            return self._missing(workflow_id_or_name)
        if file_name not in workflow.files:
            return {"message": f"{file_name} does not exist."}, 404
        # as REANA's workflow controller (Flask's send_from_directory): the file name without its folder
        headers = {
            "Content-Disposition": f"attachment; filename={Path(file_name).name}",
            "Content-Type": "application/octet-stream",
        }
        return workflow.files[file_name], 200, headers

    # -- serving --------------------------------------------------------------------------------------
    def serve(self) -> str:
        """Start on a free port of 127.0.0.1; return the server URL (also :attr:`url`)."""
        import logging

        import uvicorn

        # connexion logs an error for each query parameter a client sends that the document does not declare
        # (reana-client sends file_name with every download) and passes it on to no handler: not an error here
        logging.getLogger("connexion.decorators.parameter").setLevel(logging.CRITICAL)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the REANA stand-in did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
