"""convcheck.check() (properties.live): the properties run on a live namespace in process —
the caller's globals, the names chosen, names rebound to objects, the kernel's state left as
it was, the interrupt — and in real Jupyter kernels (nbclient): the HTML report card as the
output of the cell that calls it, for the d2l chapter's definitions and for a corr2d that
skips its last row (its picture outlines that row)."""
from __future__ import annotations

import base64
import io
import random
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

import convcheck
from properties import html, live

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"

CORR2D = '''
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y
'''
SKIPPED_LAST_ROW = CORR2D.replace("range(Y.shape[0])", "range(Y.shape[0] - 1)")


def namespace(source: str) -> dict:
    ns: dict = {"__name__": "student"}
    exec("import torch\nfrom torch import nn\n" + source, ns)
    return ns


def kernel_state() -> tuple:
    return (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(),
            torch.is_inference_mode_enabled(), torch.random.get_rng_state().tolist(),
            np.random.get_state()[1].tolist(), random.getstate(),
            settings.get_current_profile_name())


def test_check_reads_the_callers_globals_and_the_names_chosen():
    ns = namespace(CORR2D + "\npool2d = nn.MaxPool2d(3, padding=1, stride=2)\n")
    exec("import convcheck\nresult = convcheck.check('corr2d', 'pool2d', figures=False)", ns)
    result = ns["result"]
    assert result.names == ("corr2d", "pool2d")
    functions = result.report["functions"]
    assert functions["corr2d"]["status"] == "pass" and functions["corr2d"]["passed"] > 0
    assert functions["pool2d"]["status"] == "missing"      # an nn.MaxPool2d is not a function
    assert ("pool2d is a MaxPool2d object here, not a function: not checked (did a later cell "
            "reuse the name?)") in result.header
    assert result.passed
    text = str(result)
    assert "corr2d                   pass" in text and "conv2d " not in text
    assert "pool2d is a MaxPool2d object here" in result._repr_html_()
    with pytest.raises(ValueError, match="'corr2D' is not a contract name"):
        convcheck.check("corr2D", namespace=ns)


def test_a_wrong_result_is_reported_with_its_picture():
    pytest.importorskip("matplotlib", reason="pictures need matplotlib (plot extra)")
    result = convcheck.check("corr2d", namespace=namespace(SKIPPED_LAST_ROW), figures=True)
    assert not result.passed
    failures = result.report["functions"]["corr2d"]["failures"]
    first = failures[0]
    assert first["property"] == "agrees with torch's float64 conv2d"   # the textbook's example
    assert first["figure"]["alt"].endswith("outside the tolerance: [1, 0], [1, 1]")
    assert base64.b64decode(first["figure"]["png"]).startswith(b"\x89PNG")
    card = result._repr_html_()
    assert 'cc-badge cc-fail">FAIL' in card and card.count("<img src=\"data:image/png") >= 1
    assert "minimal failing call (runs on its own):" in str(result)


def test_the_kernel_state_is_left_as_it_was():
    ns = namespace(CORR2D + "\ndef pool2d(X, pool_size, mode='max'):\n"
                            "    torch.set_default_dtype(torch.float64)\n"
                            "    torch.set_grad_enabled(False)\n"
                            "    torch.manual_seed(0); np.random.seed(0); random.seed(0)\n"
                            "    torch.set_num_threads(3)\n"
                            "    return X[:X.shape[0] - pool_size[0] + 1, "
                            ":X.shape[1] - pool_size[1] + 1]\n")
    ns.update(np=np, random=random)
    torch.manual_seed(1234)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        before = kernel_state()
        result = convcheck.check("corr2d", "pool2d", namespace=ns, figures=False)
        assert result.report["functions"]["pool2d"]["status"] == "fail"
        assert kernel_state() == before
    finally:
        torch.set_num_threads(threads)


def test_an_interrupt_stops_the_check_and_restores_the_state():
    calls = []

    def corr2d(X, K):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt   # what the interrupt button raises in the kernel
        return torch.nn.functional.conv2d(X[None, None], K[None, None])[0, 0]

    before = kernel_state()
    with pytest.raises(KeyboardInterrupt):
        convcheck.check(namespace={"corr2d": corr2d}, figures=False)
    assert len(calls) == 5
    assert kernel_state() == before


def test_a_batch_norm_of_no_known_dialect_is_said_not_checked():
    result = convcheck.check(namespace=namespace("def batch_norm(x, g, b, m, v, e, mo):\n"
                                                 "    return x, m, v\n"))
    assert not result.passed
    assert str(result).startswith("convcheck: not checked: batch_norm's first parameter is 'x'")
    assert "convcheck: not checked" in result._repr_html_()


def test_the_quick_check_runs_fewer_examples_and_thorough_the_profiles_all():
    name, examples = live.budget_profile(thorough=False)
    assert examples == live.QUICK_EXAMPLES < settings().max_examples
    assert settings.get_profile(name).max_examples == live.QUICK_EXAMPLES
    name, examples = live.budget_profile(thorough=True)
    assert examples == settings().max_examples


# --------------------------------------------------------------------------- real kernels

def _kernel_client(cells: list[str], folder: Path):
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient and ipykernel (dev extra)")
    pytest.importorskip("ipykernel", reason="needs nbclient and ipykernel (dev extra)")
    import nbformat
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    return nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": str(folder)}})


def run_notebook(cells: list[str], folder: Path) -> list:
    """Execute `cells` in a fresh kernel started in `folder`; each cell's outputs."""
    client = _kernel_client(cells, folder)
    client.execute()
    return [cell.outputs for cell in client.nb.cells]


def d2l_cells(folder: Path) -> list[str]:
    """The code cells of the d2l chapter-6 notebook that define what it teaches (those the
    notebook loader runs, whole: no training, download or plot), with a stand-in `d2l`
    package (its corr2d, the chapter's) importable from the kernel's folder."""
    import nbformat

    from properties import notebook
    loaded = notebook.load_notebook(NOTEBOOKS / "d2l_chapter6.ipynb")
    dropped = {cell.index for cell in loaded.dropped}
    code = [c.source for c in nbformat.read(NOTEBOOKS / "d2l_chapter6.ipynb", 4).cells
            if c.cell_type == "code"]
    (folder / "d2l").mkdir()
    (folder / "d2l" / "__init__.py").write_text("")
    (folder / "d2l" / "torch.py").write_text("import torch\n" + CORR2D)
    return [code[i - 1] for i in loaded.executed if i not in dropped]


def html_output(outputs) -> str:
    found = [o["data"]["text/html"] for o in outputs
             if o.get("output_type") in ("execute_result", "display_data")
             and "text/html" in o.get("data", {})]
    assert len(found) == 1, outputs
    return found[0]


def badge_of(card: str, name: str) -> str | None:
    found = re.search(re.escape(f"<td>{html.name_html(name)}</td><td>")
                      + r'<span class="cc-badge cc-(\w+)">', card)
    return found.group(1) if found else None


STATE = ("(torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(), "
         "torch.random.get_rng_state().sum().item())")


def test_in_a_kernel_the_d2l_chapter_passes_and_the_card_is_the_cells_output(tmp_path):
    cells = d2l_cells(tmp_path)
    cells += ["torch.set_default_dtype(torch.float64); torch.set_grad_enabled(False)\n"
              "torch.manual_seed(7); torch.set_num_threads(2)\n"
              f"before = {STATE}",
              "import convcheck\nconvcheck.check()"]
    client = _kernel_client(cells, tmp_path)
    with client.setup_kernel():
        for index, cell in enumerate(client.nb.cells):
            client.execute_cell(cell, index)
        card = html_output(client.nb.cells[-1].outputs)
        # The same kernel afterwards: the state as it was, and the magic.
        import nbformat
        for source in (f"assert {STATE} == before, ({STATE}, before)\n'same'",
                       "%convcheck pool2d"):
            client.nb.cells.append(nbformat.v4.new_code_cell(source))
            client.execute_cell(client.nb.cells[-1], len(client.nb.cells) - 1)
    after, magic = client.nb.cells[-2:]
    assert "<h2>convcheck</h2>" in card and "this kernel&#x27;s definitions" in card
    for name in ("corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1",
                 "pool2d", "batch_norm", "Conv2D", "BatchNorm"):
        assert badge_of(card, name) == "pass", name
    assert "cc-badge cc-fail" not in card and "class=\"cc-failure\"" not in card
    assert after.outputs[0]["data"]["text/plain"] == "'same'"
    magic_card = html_output(magic.outputs)
    assert badge_of(magic_card, "pool2d") == "pass" and badge_of(magic_card, "corr2d") is None


def test_in_a_kernel_a_skipped_last_row_is_outlined_in_the_picture(tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="pictures need matplotlib")
    outputs = run_notebook(["import torch", SKIPPED_LAST_ROW,
                            "import convcheck\nconvcheck.check()"], tmp_path)
    card = html_output(outputs[-1])
    assert badge_of(card, "corr2d") == "fail"
    first = card.index('<section class="cc-failure">')
    section = card[first:card.index("</section>", first)]
    assert "agrees with torch&#x27;s float64 conv2d" in section
    found = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)"',
                      section)
    assert found, section
    # The textbook's example: a 2 x 2 result whose last row is wrong, and only that row.
    assert found.group(2).endswith("outside the tolerance: [1, 0], [1, 1]")
    rgb = torch.as_tensor(image.imread(io.BytesIO(base64.b64decode(found.group(1))),
                                       format="png")[..., :3])
    magenta = ((rgb - torch.tensor([1.0, 0.0, 1.0])).abs().amax(-1) < 0.1).any(-1)
    rows = magenta.nonzero().flatten()
    assert len(rows) and int(rows.min()) > rgb.shape[0] / 2   # in the picture's lower half


def test_in_a_kernel_the_interrupt_button_stops_the_check(tmp_path):
    pytest.importorskip("ipykernel", reason="needs ipykernel (dev extra)")
    from jupyter_client.manager import start_new_kernel
    started = tmp_path / "started"
    slow = CORR2D.replace("    h, w = K.shape",
                          f"    open({str(started)!r}, 'w').close(); time.sleep(0.2)\n"
                          "    h, w = K.shape")
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path),
                                       startup_timeout=300)
    try:
        done = client.execute_interactive(f"import time, torch\n{slow}\nimport convcheck\n"
                                          f"before = {STATE}", timeout=600)
        assert done["content"]["status"] == "ok"
        msg_id = client.execute("convcheck.check()")
        deadline = time.monotonic() + 600
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.exists(), "the check never called corr2d"
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = client.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        results = []
        done = client.execute_interactive(
            f"{STATE} == before", timeout=120,
            output_hook=lambda msg: results.append(msg["content"]["data"]["text/plain"])
            if msg["msg_type"] == "execute_result" else None)
        assert done["content"]["status"] == "ok" and results == ["True"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
