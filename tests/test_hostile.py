"""A catalog of hostile input: malformed presets, malformed datasets, bad form values, API
calls with wrong types, an oversized upload, path traversal. Each gets a clear message naming
the problem, and nothing else changes: no run directory, no file written.

Presets and datasets go through `launch.py --headless` (in this process); form values, API
calls, uploads and paths through a live studio."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import launch  # noqa: E402
from tests.studio.conftest import Server, free_port  # noqa: E402

SFT = {"prompt": "p", "completion": "c"}
REFUSED = "not under the folders this studio serves"
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join(["*" + chr(97 + i)] * 9) + "]\n" for i in range(8)
)


def jsonl(*rows: Any) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def parquet(**columns: list[Any]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), path)

    return write


@dataclass(frozen=True)
class Case:
    id: str
    route: str  # preset | set | dataset | dataset_ok | form | raw | api | upload | studio_path
    payload: Any
    expect: str  # a fragment of the message


CASES = [
    # --- malformed presets: `launch.py --preset FILE --headless` ----------------------------
    Case(
        "preset-wrong-type", "preset", "method: sft\ntrain: {learning_rate: fast}\n", "`train.learning_rate`"
    ),
    Case(
        "preset-unknown-key",
        "preset",
        "method: sft\ntrain: {learning_rat: 0.1}\n",
        "`train.learning_rat` is not a known key",
    ),
    Case(
        "preset-python-object-tag",
        "preset",
        "!!python/object/apply:os.system ['touch {marker}']\n",
        "not valid YAML",
    ),
    Case("preset-python-name-tag", "preset", "method: !!python/name:os.system\n", "not valid YAML"),
    Case(
        "preset-huge-int",
        "preset",
        "train: {max_steps: 1000000000000000000000000000000}\n",
        "`train.max_steps`: 1000000000000000000000000000000 is too large",
    ),
    Case(
        "preset-float-overflow",
        "preset",
        "train: {learning_rate: 1.0e999}\n",
        "`train.learning_rate`: Input should be a finite number",
    ),
    Case("preset-nan", "preset", "train: {learning_rate: .nan}\n", "Input should be a finite number"),
    Case(
        "preset-recursive-anchor",
        "preset",
        "method: sft\nlora: &a {target_modules: [*a]}\n",
        "refers to itself (a recursive YAML anchor)",
    ),
    Case("preset-billion-laughs", "preset", LAUGHS, "expands to more than 100,000 values"),
    Case("preset-not-a-mapping", "preset", "- sft\n- dpo\n", "a preset must be a mapping"),
    Case("preset-not-utf8", "preset", b"method: sft\nname: caf\xe9\n", "is not UTF-8 text"),
    Case("preset-unknown-method", "preset", "method: sfy\n", "`method` 'sfy' is not a known method"),
    Case(
        "set-model-path-missing",
        "set",
        ["model.name_or_path=/nonexistent/model"],
        "model '/nonexistent/model' does not exist",
    ),
    Case(
        "set-100k-character-dataset",
        "set",
        ["data.dataset=" + "d" * 100_000],
        "has 100000 characters (a name of 100000); a path has at most 4096",
    ),
    Case("set-not-yaml", "set", ["train.max_steps=[1,"], "`--set train.max_steps=[1,` is not valid YAML"),
    # --- malformed datasets: `--set data.dataset=FILE` ------------------------------------
    Case("data-empty", "dataset", ("empty.jsonl", b""), "has no rows"),
    Case("data-blank-lines", "dataset", ("blank.jsonl", b"\n\n  \n"), "has no rows"),
    Case(
        "data-truncated-last-line",
        "dataset",
        ("cut.jsonl", jsonl(SFT) + b'{"prompt": "p", "compl'),
        "line 2 is not valid JSON",
    ),
    Case(
        "data-mixed-formats",
        "dataset",
        ("mixed.jsonl", jsonl(SFT, {"prompt": "p", "chosen": "a", "rejected": "b"})),
        "row 2 has the columns ['chosen', 'prompt', 'rejected'] where row 1 has ['completion', 'prompt']",
    ),
    Case(
        "data-wrong-column-types",
        "dataset",
        ("types.jsonl", jsonl({"prompt": 5, "completion": [1, 2]})),
        "`prompt` is int (5); expected text or a conversation",
    ),
    Case(
        "data-invalid-utf8",
        "dataset",
        ("bytes.jsonl", b'{"prompt": "caf\xe9", "completion": "c"}\n'),
        "line 1 is not UTF-8",
    ),
    Case(
        "data-plain-text-in-json",
        "dataset",
        ("notes.json", b"just some notes, not JSON\n"),
        "is not valid JSON (line 1, column 1",
    ),
    Case(
        "data-json-invalid-utf8", "dataset", ("bytes.json", b'[{"prompt": "caf\xe9"}]'), "is not UTF-8 text"
    ),
    Case(
        "data-csv-ragged-rows",
        "dataset",
        ("ragged.csv", b"prompt,completion\na,b\nc,d,e\n"),
        "line 3 has 3 fields, the header 2",
    ),
    Case(
        "data-parquet-wrong-schema",
        "dataset",
        ("wrong.parquet", parquet(text_x=[1, 2])),
        "has columns ['text_x'], which fit no known layout",
    ),
    Case(
        "data-parquet-wrong-types",
        "dataset",
        ("types.parquet", parquet(prompt=[1, 2], completion=[3, 4])),
        "column `prompt` has type int64",
    ),
    Case(
        "data-parquet-not-parquet",
        "dataset",
        ("fake.parquet", b"PAR1 not really"),
        "is not a readable parquet file",
    ),
    Case("data-unsupported-suffix", "dataset", ("data.txt", b"hello\n"), "unsupported file type '.txt'"),
    Case(
        "data-bom-csv-is-read-clean",
        "dataset_ok",
        ("bom.csv", b"\xef\xbb\xbfprompt,completion\na,b\n"),
        "['prompt', 'completion']",
    ),
    Case(
        "data-bom-jsonl-is-read-clean",
        "dataset_ok",
        ("bom.jsonl", b"\xef\xbb\xbf" + jsonl(SFT)),
        "['prompt', 'completion']",
    ),
    Case("data-1mb-field", "studio_path", ("data_open", "big.jsonl"), "exceed max_length 128 tokens"),
    # --- form values through the Train form (/launch) -----------------------------------
    Case(
        "form-negative",
        "form",
        {"train.learning_rate": -1},
        "**Learning rate** (`train.learning_rate`): Input should be greater than 0, got -1",
    ),
    Case(
        "form-100k-character-model",
        "form",
        {"model.name_or_path": "m" * 100_000},
        "has 100000 characters (a name of 100000); a path has at most 4096",
    ),
    Case(
        "form-100k-character-dataset",
        "form",
        {"data.dataset": "org/" + "d" * 100_000},
        "has 100004 characters (a name of 100000)",
    ),
    Case(
        "form-string-for-number", "form", {"train.max_steps": "ten"}, "Could not preprocess input component"
    ),
    Case(
        "form-zero-batch",
        "form",
        {"train.per_device_train_batch_size": 0},
        "(`train.per_device_train_batch_size`): Input should be greater than 0",
    ),
    Case(
        "form-nan", "raw", {"train.learning_rate": float("nan")}, "Input should be a finite number, got nan"
    ),
    Case(
        "form-inf", "raw", {"train.learning_rate": float("inf")}, "Input should be a finite number, got inf"
    ),
    Case(
        "form-inf-for-an-int",
        "raw",
        {"train.max_steps": float("inf")},
        "cannot convert float infinity to integer",
    ),
    Case(
        "form-yaml-billion-laughs",
        "form",
        {"method": "grpo", "rl.rewards": LAUGHS},
        "expands to more than 100,000 values",
    ),
    Case(
        "form-yaml-python-tag",
        "form",
        {"method": "grpo", "rl.rewards": "!!python/object/apply:os.system ['id']"},
        "is not valid YAML",
    ),
    Case(
        "form-function-reward-not-registered",
        "form",
        {"method": "grpo", "rl.rewards": "[{kind: function, path: 'os:system'}]"},
        "reward function 'os:system' was not registered",
    ),
    # --- API calls with wrong types -------------------------------------------------------
    Case("api-list-for-preset", "api", ("/launch", "LIST_PRESET"), "a preset is named by a string, got list"),
    Case("api-preset-traversal", "api", ("/launch", "TRAVERSAL_PRESET"), "is not in the list of choices"),
    Case(
        "api-string-for-count",
        "api",
        (
            "/arena_start",
            [["builtin:tiny-llama", "x"], "builtin:tasks", "", "many", 8, 0.5, ["checkers"], "", ""],
        ),
        "Could not preprocess input component at index 3",
    ),
    Case(
        "api-policy-not-a-choice",
        "api",
        ("/label_train", ["../../x", "tiny/dpo.yaml"]),
        "is not in the list of choices: ['majority', 'unanimous']",
    ),
    Case("api-unknown-method", "api", ("/preview", "UNKNOWN_METHOD"), "is not in the list of choices"),
    # --- an oversized upload, path traversal ------------------------------------------------
    Case("upload-oversized", "upload", 21 * 1024 * 1024, "File size exceeded maximum allowed size"),
    Case("path-data-open-traversal", "studio_path", ("data_open", "../../../../../etc/passwd"), REFUSED),
    Case("path-label-source-absolute", "studio_path", ("label_create", "/etc/passwd"), REFUSED),
    Case("path-train-dataset-absolute", "studio_path", ("train_dataset", "/etc/hostname"), REFUSED),
    Case("path-pipeline-stage-traversal", "studio_path", ("pipeline", "../../../etc/hosts"), REFUSED),
]


def test_the_catalog_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


# --- headless routes ----------------------------------------------------------------------


def headless(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = launch.main(["--headless", *args])
    return code, capsys.readouterr().err


def write_dataset(tmp_path: Path, payload: tuple[str, Any]) -> Path:
    name, content = payload
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.route in ("preset", "set", "dataset")], ids=lambda c: c.id
)
def test_bad_preset_or_dataset_is_refused_before_a_run_exists(
    case: Case, tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "marker"
    runs = ["--runs-dir", str(runs_dir)]
    if case.route == "preset":
        preset = tmp_path / "preset.yaml"
        text = (
            case.payload.replace("{marker}", str(marker)) if isinstance(case.payload, str) else case.payload
        )
        preset.write_bytes(text.encode() if isinstance(text, str) else text)
        code, err = headless([*runs, "--preset", str(preset)], capsys)
    else:
        sets = (
            case.payload if case.route == "set" else [f"data.dataset={write_dataset(tmp_path, case.payload)}"]
        )
        args = [*runs, "--preset", str(ROOT / "presets/tiny/sft.yaml")]
        code, err = headless(args + [x for s in sets for x in ("--set", s)], capsys)
    assert code == 2 and case.expect in err, err
    assert "Traceback" not in err and err.startswith("error:")
    assert not any(runs_dir.iterdir())  # no run directory
    assert not marker.exists()  # no YAML tag ran


@pytest.mark.parametrize("case", [c for c in CASES if c.route == "dataset_ok"], ids=lambda c: c.id)
def test_a_bom_is_skipped_not_kept_in_a_column_name(case: Case, tmp_path: Path) -> None:
    from backends.core.data.preflight import peek_rows, preflight
    from backends.core.spec.config import validate_config

    path = write_dataset(tmp_path, case.payload)
    preflight(validate_config({"method": "sft", "data": {"dataset": str(path)}}, "test"))
    columns, rows = peek_rows(path)
    assert str(columns) == case.expect and str(list(rows[0])) == case.expect


# --- through a live studio -----------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_studio(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> Iterator[Server]:
    from studio.app import launch_app
    from studio.context import StudioContext

    tmp = tmp_path_factory.mktemp("hostile")
    data = tmp / "data"
    data.mkdir()
    (data / "big.jsonl").write_text(json.dumps({"prompt": "p", "completion": "x " * 500_000}) + "\n")
    ctx = StudioContext.create(tmp / "runs", ROOT / "presets", data)
    port = free_port()
    app = launch_app(ctx, "127.0.0.1", port, block=False)
    try:
        yield Server(f"http://127.0.0.1:{port}/", tmp / "runs", ctx)
    finally:
        ctx.stop_scheduler()
        app.close()


def form_values(preset: str, changes: dict[str, Any]) -> list[Any]:
    from backends.core.spec.config import read_preset
    from studio.logic import forms

    base = read_preset(ROOT / "presets" / preset)
    if changes.get("method"):
        base = {**base, "method": changes["method"]}
    values = forms.form_values(base)
    keys = [f.key for f in forms.form_fields()]
    for key, value in changes.items():
        values[keys.index(key)] = value
    return values


def files_under(*roots: Path) -> set[str]:
    """Every file and folder, SQLite's own side files (-wal, -shm) aside."""
    return {str(p) for root in roots for p in root.rglob("*") if not p.name.startswith("labels.sqlite")}


def upload_folder() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def studio_call(server: Server, case: Case) -> str:
    import httpx
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    if case.route == "form":
        preset = "tiny/grpo.yaml" if case.payload.get("method") == "grpo" else "tiny/sft.yaml"
        args, api = [preset, "", *form_values(preset, case.payload)], "/launch"
    elif case.route == "raw":  # NaN and inf are not JSON: only a raw client sends them
        body = {"data": ["tiny/sft.yaml", *form_values("tiny/sft.yaml", case.payload)]}
        r = httpx.post(
            f"{server.url}gradio_api/call/preview",
            content=json.dumps(body),  # NaN and Infinity as JavaScript writes them
            headers={"content-type": "application/json"},
            timeout=30,
        )
        event = r.json()["event_id"]
        return httpx.get(f"{server.url}gradio_api/call/preview/{event}", timeout=60).text
    elif case.route == "upload":
        r = httpx.post(
            f"{server.url}gradio_api/upload", files={"files": ("big.bin", b"x" * case.payload)}, timeout=60
        )
        assert r.status_code == 413
        return r.text
    elif case.route == "api":
        api, args = case.payload
        values = form_values("tiny/sft.yaml", {})
        if args == "LIST_PRESET":
            args = [["tiny/sft.yaml"], "", *values]
        elif args == "TRAVERSAL_PRESET":
            args = ["../../../etc/passwd", "", *values]
        elif args == "UNKNOWN_METHOD":
            args = ["tiny/sft.yaml", "nonsense", *values[1:]]  # the method comes first
    else:
        what, value = case.payload
        api, args = {
            "data_open": ("/data_open", [value, "builtin:tiny-llama", 128]),
            "label_create": ("/label_create", [value, "s"]),
            "train_dataset": (
                "/launch",
                ["tiny/sft.yaml", "", *form_values("tiny/sft.yaml", {"data.dataset": value})],
            ),
            "pipeline": (
                "/launch",
                [
                    "tiny/sft_dpo.yaml",
                    f"stages:\n  - {{stage: a, method: sft, data: {{dataset: '{value}'}}}}\n",
                    *form_values("tiny/sft.yaml", {}),
                ],
            ),
        }[what]
    try:
        return json.dumps(client.predict(*args, api_name=api))
    except Exception as e:  # noqa: BLE001 - gradio_client raises AppError carrying the message
        return str(e)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.route in ("form", "raw", "api", "upload", "studio_path")],
    ids=lambda c: c.id,
)
def test_bad_input_through_the_studio_changes_nothing(case: Case, hostile_studio: Server) -> None:
    server = hostile_studio
    before = files_under(server.runs_dir, server.ctx.data_dir)
    uploads = files_under(upload_folder()) if upload_folder().exists() else set()
    out = studio_call(server, case)
    assert case.expect in out, out
    assert "Traceback" not in out
    assert files_under(server.runs_dir, server.ctx.data_dir) == before  # no run dir, no file
    if case.route == "upload":
        assert not any(p.endswith("big.bin") for p in files_under(upload_folder()) - uploads)


def test_a_session_name_never_leaves_the_labels_folder(hostile_studio: Server) -> None:
    """The export file is named after the session, which a person typed: `../` stays inside."""
    from gradio_client import Client

    server = hostile_studio
    data = server.ctx.data_dir
    (data / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    client = Client(server.url, verbose=False)
    _, session = client.predict("pairs.jsonl", "../../../escape", api_name="/label_create")
    client.predict(
        session["value"] if isinstance(session, dict) else session, "me", api_name="/label_session"
    )
    client.predict("me", "", api_name="/label_vote_left")
    msg = client.predict("majority", api_name="/label_export")
    assert "Exported 1 pairs" in msg
    (written,) = (data / "labels").iterdir()
    assert written.parent == data / "labels" and "escape" in written.name
    assert not list(data.parent.parent.rglob("escape*")) or all(
        data / "labels" in p.parents for p in data.parent.parent.rglob("escape*")
    )
    shutil.rmtree(data / "labels")
    (data / "pairs.jsonl").unlink()


def test_sessions_whose_names_read_alike_never_share_an_export(hostile_studio: Server) -> None:
    """`.olga-session` and `olga-session` make the same safe name; each export keeps its own file."""
    from gradio_client import Client

    server = hostile_studio
    data = server.ctx.data_dir
    (data / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    written = {}
    for name, vote in ((".olga-session", "/label_vote_left"), ("olga-session", "/label_vote_right")):
        client = Client(server.url, verbose=False)
        _, session = client.predict("pairs.jsonl", name, api_name="/label_create")
        client.predict(
            session["value"] if isinstance(session, dict) else session, "me", api_name="/label_session"
        )
        client.predict("me", "", api_name=vote)
        msg = client.predict("majority", api_name="/label_export")
        assert "Exported 1 pairs" in msg and "replacing" not in msg
        written[name] = msg.split("`")[1]
    assert written[".olga-session"] != written["olga-session"]
    first, second = (json.loads(Path(written[n]).read_text()) for n in (".olga-session", "olga-session"))
    assert first["chosen"] != second["chosen"]  # the second export did not overwrite the first
    again = client.predict("majority", api_name="/label_export")
    assert "replacing this session's earlier export" in again
    shutil.rmtree(data / "labels")
    (data / "pairs.jsonl").unlink()


def test_a_label_session_bounds_its_votes_and_name(hostile_studio: Server) -> None:
    from gradio_client import Client

    data = hostile_studio.ctx.data_dir
    (data / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    client = Client(hostile_studio.url, verbose=False)
    before = hostile_studio.ctx.store.sessions()
    for k, name, said in (
        (1e18, "s", "Value 1e+18 is greater than maximum value 50"),  # the form field's own bound
        (0, "s", "Value 0 is less than minimum value 1"),
        (2, "n" * 5000, "the session name must have 1 to 200 characters, got 5000"),
    ):
        try:
            msg, _ = client.predict("pairs.jsonl", name, "pair", k, "", "", api_name="/label_create")
        except Exception as e:  # noqa: BLE001 - gradio_client raises AppError carrying the message
            msg = str(e)
        assert said in msg, msg
    # the store itself refuses the same, whoever calls it
    with pytest.raises(
        ValueError, match="`votes_per_item` must be a whole number from 1 to 50, got 1000000000000000000"
    ):
        hostile_studio.ctx.store.create_session(
            "s", [{"prompt": "p", "responses": ["a", "b"]}], votes_per_item=10**18
        )
    assert hostile_studio.ctx.store.sessions() == before
    (data / "pairs.jsonl").unlink()


def test_a_hub_id_offline_fails_at_once_naming_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from backends.core.data import online
    from backends.core.data.dataplan import DataFormatError
    from backends.core.data.formats import load_rows_dataset
    from backends.core.spec.config import DataConfig

    online.hub_offline.cache_clear()
    with pytest.raises(DataFormatError, match=r"this machine is offline \(HF_HUB_OFFLINE is set\)"):
        load_rows_dataset(DataConfig(dataset="someorg/some-dataset"))
    # no offline flag: one probe of the hub's host (here a closed local port), then at once
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    online.hub_offline.cache_clear()
    try:
        assert online.hub_offline().startswith("127.0.0.1 cannot be reached")
    finally:
        online.hub_offline.cache_clear()
