"""``python -m ff_plugin_sdk check`` and ``new``: a manifest checked with one clear line per
problem (exit 1), a summary when it is fine (exit 0); new plugins of both kinds that pass
the check and work in a real Core."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeAlias

import httpx
import pytest

from ff_plugin_sdk.cli import KNOWN_SCOPES, main
from ff_plugin_sdk.scaffold import plugin_id
from tests.conftest import running
from tests.kernel.conftest import eventually, kernel_of
from tests.kernel.test_serve_e2e import clean_env, healthy, ports_json_port, serve_command, wait_for

GOOD: dict[str, Any] = {
    "id": "lora",
    "name": "LoRA trainer",
    "version": "1.2.0",
    "core_compat": ">=0.1,<1",
    "capabilities": ["runner", "jobs"],
    "permissions": ["jobs:run", "assets:write", "network:huggingface.co", "gpu"],
    "job_types": ["lora.train"],
    "config_schema": {"type": "object", "properties": {"steps": {"type": "integer"}}},
    "entrypoints": {"runner": {"argv": ["python", "train.py", "--fast"]}},
}


Capture: TypeAlias = pytest.CaptureFixture[str]


def cli(*args: str | Path, capsys: Capture) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def plugin_folder(root: Path, manifest: Any, files: dict[str, str] | None = None,
                  raw: str | None = None) -> Path:
    folder = root / "plugin"
    folder.mkdir(exist_ok=True)
    text = raw if raw is not None else json.dumps(manifest)
    (folder / "plugin.json").write_text(text, "utf-8")
    for name, body in (files or {"train.py": "print('hi')\n"}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body, "utf-8")
    return folder


# --- check ---------------------------------------------------------------------------------

def test_a_good_manifest_passes_with_a_summary(tmp_path: Path, capsys: Capture) -> None:
    code, out, err = cli("check", plugin_folder(tmp_path, GOOD), capsys=capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"ok: lora 1.2.0 (out-of-process): LoRA trainer, in {tmp_path}/plugin/plugin.json",
        "  core_compat: >=0.1,<1",
        "  scopes: assets:write, jobs:run",
        "  non-API needs: gpu, network:huggingface.co",
        "  job types: lora.train",
        "  runner: python train.py --fast",
        "  settings: steps",
    ]


def test_check_runs_as_a_module(tmp_path: Path) -> None:
    folder = plugin_folder(tmp_path, {**GOOD, "version": "one"})
    done = subprocess.run([sys.executable, "-m", "ff_plugin_sdk", "check", str(folder)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == ("plugin.json: version: 'one' is not a PEP 440 version "
                           "(such as 1.0.2)\n")


@pytest.mark.parametrize(("manifest", "raw", "lines"), [
    pytest.param(None, '{"id": "lora",\n "name": }', [
        "plugin.json: plugin.json is not valid JSON: Expecting value at line 2 column 10"],
        id="broken-json"),
    pytest.param(None, "[1, 2]", ["plugin.json: a manifest is a JSON object"], id="not-object"),
    pytest.param({k: v for k, v in GOOD.items() if k != "version"}, None, [
        "plugin.json: Object missing required field `version`"], id="missing-field"),
    pytest.param({**GOOD, "id": "LoRA"}, None, [
        "plugin.json: id: Expected `str` matching regex '^[a-z][a-z0-9_]{1,39}$'"],
        id="bad-id"),
    pytest.param({**GOOD, "runner": {}}, None, [
        "plugin.json: Object contains unknown field `runner`"], id="unknown-field"),
    pytest.param({**GOOD, "version": "v1 beta", "core_compat": "0.1+"}, None, [
        "plugin.json: version: 'v1 beta' is not a PEP 440 version (such as 1.0.2)",
        "plugin.json: core_compat: '0.1+' is not a PEP 440 version range (such as '>=0.1,<1')"],
        id="bad-version-and-core-compat"),
    pytest.param({**GOOD, "config_schema": {"type": "object",
                                            "properties": {"steps": {"type": "int"}}}}, None, [
        "plugin.json: config_schema/properties/steps/type: not a valid JSON Schema: 'int' is "
        "not valid under any of the given schemas"], id="bad-schema"),
    pytest.param({**GOOD, "config_schema": {"type": "array"}}, None, [
        'plugin.json: config_schema: the settings schema must describe an object ("type": '
        '"object")'], id="schema-not-object"),
    pytest.param({**GOOD, "permissions": ["jobs:run", "root", "filesystem"]}, None, [
        "plugin.json: permissions[1]: 'root' is neither an API scope ('<area>:<verb>', such as "
        "'entities:read') nor one of network, network:<host>, gpu, filesystem:<path>",
        "plugin.json: permissions[2]: 'filesystem' is neither an API scope ('<area>:<verb>', "
        "such as 'entities:read') nor one of network, network:<host>, gpu, filesystem:<path>"],
        id="bad-permissions"),
    pytest.param({**GOOD, "job_types": ["train", "lora.", "other.train"]}, None, [
        "plugin.json: job_types[0]: 'train' must be namespaced as 'lora.<name>'",
        "plugin.json: job_types[1]: 'lora.' must be namespaced as 'lora.<name>'",
        "plugin.json: job_types[2]: 'other.train' must be namespaced as 'lora.<name>'"],
        id="un-namespaced-job-types"),
    pytest.param({**GOOD, "routes_prefix": "/v1/lora"}, None, [
        "plugin.json: routes_prefix: must be '/v1/plugins/lora': a plugin's routes live under "
        "its own id",
        "plugin.json: entrypoints.runner.serves_http: routes_prefix and entrypoints.ui are "
        "served by the runner: set serves_http to true"], id="routes-prefix"),
])
def test_broken_manifests_fail_with_one_line_per_problem(
        tmp_path: Path, capsys: Capture, manifest: Any, raw: str | None, lines: list[str]) -> None:
    code, out, err = cli("check", plugin_folder(tmp_path, manifest, raw=raw), capsys=capsys)
    assert (code, out) == (1, "")
    assert err.splitlines() == lines


def test_a_folder_without_a_manifest(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = cli("check", tmp_path, capsys=capsys)
    assert (code, err) == (1, f"plugin.json: no plugin.json in {tmp_path}\n")
    code, _, err = cli("check", tmp_path / "nowhere", capsys=capsys)
    assert (code, err) == (1, f"plugin.json: {tmp_path / 'nowhere'} is not a folder\n")


@pytest.mark.parametrize(("argv", "files", "line"), [
    (["python", "-m", "trainer"], {}, "entrypoints.runner.argv[2]: no module 'trainer' in "
     "{folder} (looked for trainer.py) nor installed in " + sys.executable),
    (["python", "-m", "pkg.main"], {"pkg/__init__.py": ""},
     "entrypoints.runner.argv[2]: no module 'pkg.main' in {folder}"),
    (["python", "-m", "pkg"], {"pkg/__init__.py": ""}, "entrypoints.runner.argv[2]: package "
     "'pkg' has no __main__.py, so 'python -m pkg' cannot run it"),
    (["python", "-m"], {}, "entrypoints.runner.argv: '-m' needs a module name after it"),
    (["python", "bin/train.py"], {}, "entrypoints.runner.argv[1]: no script 'bin/train.py' in "
     "{folder}"),
    (["python"], {}, "entrypoints.runner.argv: 'python' needs a module ('-m', 'name') or a "
     "script to run"),
    (["no-such-program-ff"], {}, "entrypoints.runner.argv[0]: no program "
     "'no-such-program-ff' on PATH"),
    (["./run.sh"], {}, "entrypoints.runner.argv[0]: no program './run.sh' in {folder} (a path "
     "is relative to the plugin folder)"),
    (["./run.sh"], {"run.sh": "#!/bin/sh\n"}, "entrypoints.runner.argv[0]: './run.sh' is not "
     "executable (chmod +x it)"),
])
def test_a_runner_that_cannot_start_is_a_problem(tmp_path: Path, capsys: Capture, argv: list[str],
                                                 files: dict[str, str], line: str) -> None:
    folder = plugin_folder(tmp_path, {**GOOD, "entrypoints": {"runner": {"argv": argv}}},
                           files=files)
    code, _, err = cli("check", folder, capsys=capsys)
    assert (code, err) == (1, "plugin.json: " + line.format(folder=folder) + "\n")


@pytest.mark.parametrize(("argv", "files"), [
    (["python", "-m", "trainer"], {"trainer.py": ""}),
    (["python", "-m", "trainer.cli"], {"trainer/__init__.py": "", "trainer/cli.py": ""}),
    (["python", "-m", "trainer"], {"trainer/__init__.py": "", "trainer/__main__.py": ""}),
    (["python", "-m", "json.tool"], {}),  # installed in Core's Python
    (["python", "-c", "print(1)"], {}),
    (["sh", "run.sh"], {"run.sh": ""}),
])
def test_a_runner_that_can_start_passes(tmp_path: Path, capsys: Capture, argv: list[str],
                                        files: dict[str, str]) -> None:
    folder = plugin_folder(tmp_path, {**GOOD, "entrypoints": {"runner": {"argv": argv}}},
                           files=files)
    code, _, err = cli("check", folder, capsys=capsys)
    assert (code, err) == (0, "")


def test_an_executable_runner_passes(tmp_path: Path, capsys: Capture) -> None:
    folder = plugin_folder(tmp_path, {**GOOD, "entrypoints": {"runner": {"argv": ["bin/run"]}}},
                           files={"bin/run": "#!/bin/sh\n"})
    (folder / "bin" / "run").chmod(0o755)
    assert cli("check", folder, capsys=capsys)[0] == 0


def test_routes_without_a_runner_in_a_folder_plugin(tmp_path: Path, capsys: Capture) -> None:
    manifest = {k: v for k, v in GOOD.items() if k != "entrypoints"}
    code, _, err = cli("check", plugin_folder(tmp_path, manifest | {
        "routes_prefix": "/v1/plugins/lora"}), capsys=capsys)
    assert code == 1
    assert err.splitlines() == [
        "plugin.json: entrypoints.runner: an out-of-process plugin's routes and pages are "
        "served by its runner: add one (with serves_http true)",
        "warning: plugin.json: job_types: no runner of this plugin claims them "
        "(entrypoints.runner is not set)"]


def test_unknown_scopes_are_warnings(tmp_path: Path, capsys: Capture) -> None:
    manifest = {**GOOD, "permissions": ["jobs:run", "faces:read"]}
    code, out, err = cli("check", plugin_folder(tmp_path, manifest), capsys=capsys)
    assert code == 0 and out.startswith("ok: lora 1.2.0")
    assert err == (f"warning: plugin.json: permissions[1]: 'faces:read' is not a scope this "
                   f"Core knows; it would grant nothing (known: {', '.join(sorted(KNOWN_SCOPES))})"
                   f"\n")


async def test_the_known_scopes_are_those_of_a_core_with_its_built_in_plugins(client: Any) -> None:
    info = (await client.get("/v1/system/info")).json()
    assert set(info["scopes"]) == KNOWN_SCOPES


@dataclass
class Core:
    """A real ``faceforge serve`` on a free port."""

    process: subprocess.Popen[str]
    url: str
    token: str


@pytest.fixture
def core(home: Path) -> Iterator[Core]:
    process = subprocess.Popen(serve_command(home, "--port", "0"), env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{ports_json_port(process, home)}"
        wait_for(process, healthy(base), "/healthz 200")
        config = json.loads((home / "config" / "core.json").read_text("utf-8"))
        yield Core(process, base, config["auth"]["install_token"])
    finally:
        process.kill()
        process.communicate(timeout=10)


@pytest.mark.e2e
def test_check_asks_a_running_core_which_scopes_exist(core: Core, tmp_path: Path,
                                                      capsys: Capture) -> None:
    url, token = core.url, core.token
    folder = plugin_folder(tmp_path, {**GOOD, "permissions": ["plugins:use", "faces:read"]})
    code, out, err = cli("check", folder, "--url", url, "--token", token, capsys=capsys)
    assert code == 0 and out.startswith("ok: lora")
    assert err.startswith("warning: plugin.json: permissions[1]: 'faces:read' is not a scope "
                          "this Core knows; it would grant nothing (known: assets:read, ")
    code, out, err = cli("check", folder, "--url", url, "--token", "wrong", capsys=capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"cannot ask the Core at {url} which scopes it knows: 401 ")
    code, _, err = cli("check", folder, "--url", "http://127.0.0.1:9", capsys=capsys)
    assert code == 2
    assert err.startswith("cannot ask the Core at http://127.0.0.1:9 which scopes it knows: ")


# --- in-process projects -------------------------------------------------------------------

def in_process_project(root: Path, entry_points: str | None, package_data: bool = True,
                       layout: str = "") -> Path:
    package = root / layout / "faceforge_lora"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", "utf-8")
    manifest = {k: v for k, v in GOOD.items() if k != "entrypoints"}
    (package / "plugin.json").write_text(json.dumps(manifest), "utf-8")
    text = '[build-system]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "x"\n'
    if entry_points is not None:
        text += f'[project.entry-points."faceforge.plugins"]\n{entry_points}\n'
    if package_data:
        text += '[tool.setuptools.package-data]\nfaceforge_lora = ["plugin.json"]\n'
    (root / "pyproject.toml").write_text(text, "utf-8")
    return root


@pytest.mark.parametrize("layout", ["", "src"])
def test_an_in_process_project_is_checked_with_its_entry_point(tmp_path: Path, capsys: Capture,
                                                               layout: str) -> None:
    project = in_process_project(tmp_path, 'lora = "faceforge_lora"', layout=layout)
    package = project / layout / "faceforge_lora"
    for where in (project, package, package / "plugin.json"):
        code, out, err = cli("check", where, capsys=capsys)
        assert (code, err) == (0, ""), where
        assert out.startswith(f"ok: lora 1.2.0 (in-process): LoRA trainer, in {package}"), out


@pytest.mark.parametrize(("entry_points", "line"), [
    (None, 'pyproject.toml: no faceforge.plugins entry point, so Core cannot find the plugin: '
           'add [project.entry-points."faceforge.plugins"] lora = "faceforge_lora"'),
    ('other = "faceforge_lora"', "pyproject.toml: entry points ['other'] do not name the "
     "plugin id 'lora' (plugin.json's id must be the entry point's name): add "
     '[project.entry-points."faceforge.plugins"] lora = "faceforge_lora"'),
    ('lora = "lora_plugin"', "pyproject.toml: entry point lora = 'lora_plugin' is not the "
     "package holding plugin.json ('faceforge_lora')"),
])
def test_an_in_process_project_with_a_wrong_entry_point(tmp_path: Path, capsys: Capture,
                                                        entry_points: str | None,
                                                        line: str) -> None:
    code, _, err = cli("check", in_process_project(tmp_path, entry_points), capsys=capsys)
    assert (code, err) == (1, line + "\n")


def test_a_manifest_left_out_of_the_package_is_a_warning(tmp_path: Path, capsys: Capture) -> None:
    project = in_process_project(tmp_path, 'lora = "faceforge_lora"', package_data=False)
    code, _, err = cli("check", project, capsys=capsys)
    assert code == 0
    assert err == ('warning: pyproject.toml: plugin.json may be left out of the built package: '
                   'add [tool.setuptools.package-data] faceforge_lora = ["plugin.json"]\n')


def test_two_packages_with_manifests_are_ambiguous(tmp_path: Path, capsys: Capture) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("", "utf-8")
        (tmp_path / name / "plugin.json").write_text(json.dumps(GOOD), "utf-8")
    code, _, err = cli("check", tmp_path, capsys=capsys)
    assert code == 1
    assert err == (f"plugin.json: {tmp_path} holds several packages with a plugin.json "
                   f"({tmp_path / 'one'}, {tmp_path / 'two'}); check one of them\n")


# --- new -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "pid"), [
    ("My Plugin", "my_plugin"), ("face-tagger", "face_tagger"), ("  LoRA  v2 ", "lora_v2"),
    ("ab", "ab"), ("x" * 40, "x" * 40), ("Ñandú Café", "nandu_cafe")])
def test_names_become_ids(name: str, pid: str) -> None:
    assert plugin_id(name) == pid


@pytest.mark.parametrize("name", ["9 lives", "x", "_", "日本", "x" * 41, "", "***"])
def test_new_refuses_names_that_make_no_id(tmp_path: Path, capsys: Capture, name: str) -> None:
    code, out, err = cli("new", name, "--dir", tmp_path / "p", capsys=capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"{name!r} does not make a plugin id")
    assert "an id starts with a letter and holds 2-40 lower case letters, digits and _" in err
    assert not (tmp_path / "p").exists()


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path, capsys: Capture) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine", "utf-8")
    code, _, err = cli("new", "Taken", "--dir", target, capsys=capsys)
    assert (code, err) == (1, f"{target} already exists and is not empty: choose another name "
                              f"or --dir\n")
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x", "utf-8")
    code, _, err = cli("new", "file", "--dir", tmp_path / "file", capsys=capsys)
    assert code == 1 and "already exists and is not empty" in err


def test_new_writes_into_the_current_folder_or_an_empty_one(
        tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("new", "Face Tagger", capsys=capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "face_tagger").iterdir()) == [
        "README.md", "plugin.json", "runner.py"]
    (tmp_path / "empty").mkdir()
    assert cli("new", "Other", "--dir", tmp_path / "empty", capsys=capsys)[0] == 0
    manifest = json.loads((tmp_path / "empty" / "plugin.json").read_text("utf-8"))
    assert (manifest["id"], manifest["name"]) == ("other", "Other")


@pytest.mark.parametrize("kind", ["in-process", "out-of-process"])
def test_new_plugins_of_both_kinds_pass_the_check(tmp_path: Path, kind: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ff_plugin_sdk", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)

    made = run("new", 'Ada\'s "Helper"', "--kind", kind)
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    assert made.stdout.startswith(f"made a new {kind} plugin in {tmp_path / 'ada_s_helper'}\n"
                                  f"ok: ada_s_helper 0.1.0 ({kind}): Ada's \"Helper\"")
    checked = run("check", "ada_s_helper")
    assert (checked.returncode, checked.stderr) == (0, "")
    assert "  job types: ada_s_helper.hello\n" in checked.stdout


# --- the new plugins work ------------------------------------------------------------------

def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_process_plugin(tmp_path: Path) -> Iterator[ModuleType]:
    assert main(["new", "Greeter", "--kind", "in-process", "--dir", str(tmp_path / "g")]) == 0
    sys.path.insert(0, str(tmp_path / "g"))
    try:
        yield load(tmp_path / "g" / "faceforge_greeter" / "__init__.py", "faceforge_greeter")
    finally:
        sys.path.remove(str(tmp_path / "g"))
        sys.modules.pop("faceforge_greeter", None)


async def test_the_new_in_process_plugin_works_in_core(in_process_plugin: ModuleType,
                                                      make_app: Any, settings: Any) -> None:
    app = make_app(extra_plugins=[("greeter", in_process_plugin)])
    kernel = kernel_of(app)
    async with running(app, settings.install_token) as client:
        hello = await client.get("/v1/plugins/greeter/hello")
        assert hello.json() == {"message": "Hello from greeter", "events_seen": 0}
        # the event subscriber writes down entity events
        created = await client.post("/v1/entities", json={"display_name": "Ada <Lovelace>"})
        assert created.status_code == 201

        async def seen() -> int:
            return (await client.get("/v1/plugins/greeter/hello")).json()["events_seen"]

        await eventually(seen, what="the greeter to see the entity event")
        # the job type runs in Core's pool
        job = (await client.post("/v1/jobs", json={"type": "greeter.hello",
                                                   "input": {"name": "Ada"}})).json()

        async def succeeded() -> dict | None:
            now = (await client.get(f"/v1/jobs/{job['job_id']}")).json()
            return now if now["status"] == "succeeded" else None

        done = await eventually(succeeded, what="the greeter.hello job to succeed")
        assert done["result"] == {"greeting": "Hello, Ada!"}
        refused = await client.post("/v1/jobs", json={"type": "greeter.hello",
                                                      "input": {"nom": "Ada"}})
        assert refused.status_code == 422
        # the entity tab, its text escaped
        tab = next(t for t in kernel.entity_tabs if t.id == "greeter")
        assert tab.label == "Greeter"
        assert await tab.render(None, created.json()) == "<p>Hello, Ada &lt;Lovelace&gt;!</p>"


def test_the_new_out_of_process_runner_registers_its_job_type(tmp_path: Path) -> None:
    from ff_plugin_sdk.client import AsyncFaceForge

    assert main(["new", "Painter", "--dir", str(tmp_path / "p")]) == 0
    runner = load(tmp_path / "p" / "runner.py", "painter_runner")
    try:
        built = runner.build(AsyncFaceForge("http://127.0.0.1:9", "token"))
        assert list(built.handlers) == ["painter.hello"]
    finally:
        sys.modules.pop("painter_runner", None)


@pytest.fixture
def painter(home: Path) -> Path:
    """The new out-of-process plugin, installed where Core looks for plugin folders."""
    folder = home / "plugins" / "painter"
    assert main(["new", "Painter", "--dir", str(folder)]) == 0
    return folder


@pytest.mark.e2e
def test_the_new_out_of_process_plugin_runs_its_jobs_in_core(painter: Path, core: Core) -> None:
    with httpx.Client(base_url=core.url, timeout=10, trust_env=False,
                      headers={"Authorization": f"Bearer {core.token}"}) as http:
        info = http.get("/v1/plugins/painter").json()
        assert (info["state"], info["kind"]) == ("disabled", "out_of_process")
        enabled = http.post("/v1/plugins/painter/enable",
                            json={"accept_permissions": info["permissions"]})
        assert enabled.status_code == 200, enabled.text
        assert http.put("/v1/plugins/painter/config", json={"greeting": "Ahoy"}).status_code \
            == 200
        job = http.post("/v1/jobs", json={"type": "painter.hello", "input": {"name": "Ada"}})
        assert job.status_code == 202, job.text
        job_id = job.json()["job_id"]

        def ended() -> dict[str, Any] | None:
            now = http.get(f"/v1/jobs/{job_id}").json()
            return now if now["status"] in ("succeeded", "failed") else None

        done = wait_for(core.process, ended, "the painter.hello job to end")
        assert done["status"] == "succeeded", done
        assert done["result"] == {"greeting": "Ahoy, Ada!"}
        assert done["runner_id"].startswith("painter@")
        assert done["progress"]["percent"] == 100
        lines = http.get(f"/v1/jobs/{job_id}/log").json()["items"]
        assert "greeting Ada" in [line["message"] for line in lines]
        runner = http.get("/v1/plugins/painter").json()["runner"]
        assert runner["state"] == "running" and runner["restarts"] == 0
