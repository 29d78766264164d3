"""Latency-aware mixed int8 (issue 36): ``keep_float="auto"`` / ``--keep-float auto``.

The choice is tested with cost tables, not timings: on graphs small enough to try every float/int8
assignment it must find the cheapest (the minimum cut is exact, shared borders counted once), and on
a real MobileNetV3-Small a table that makes depthwise convolutions slow in int8 must give a file whose
depthwise convolutions, and only those, are float32, the same file every time, from Python and from
the CLI. One end-to-end command times this CPU for real and checks what it reports and caches."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from test_cli_e2e import run

import keras_cnn
from keras_cnn.deploy import mixed_int8
from keras_cnn.deploy.export import calibrated_graphs, export_tflite, mixed_from_calibrated
from keras_cnn.deploy.mixed_int8 import CostTable, Graph, Op, border_key, choose
from keras_cnn.deploy.tflite import op_precisions, run_tflite


def _graph(ops, outputs, shapes):
    return Graph(tuple(Op(i, kind, node, tuple(inputs), (out,), f"sig-{node}")
                       for i, (node, kind, inputs, out) in enumerate(ops)), (0,), tuple(outputs), shapes)


def _table(costs, quantize=0.5, dequantize=0.5, shapes=((1, 4),)):
    borders = {border_key("QUANTIZE", s): quantize for s in shapes}
    borders.update({border_key("DEQUANTIZE", s): dequantize for s in shapes})
    return CostTable("given", {f"sig-{node}": {"kind": "CONV_2D", "float32": f, "int8": q}
                               for node, (f, q) in costs.items()}, borders)


def test_a_chain_keeps_float_the_ops_int8_makes_slower_borders_included():
    """input -> A -> B -> C -> output. A and C are slower in int8, B much faster: A float, B int8, C float
    costs 1 + 0.5 (QUANTIZE) + 1 + 0.5 (DEQUANTIZE) + 1 = 4; all float 12, all int8 5 + 2 + 1 + 0.5 + 0.5."""
    shapes = {t: (1, 4) for t in range(4)}
    graph = _graph([("A", "CONV_2D", [0], 1), ("B", "CONV_2D", [1], 2), ("C", "CONV_2D", [2], 3)], [3], shapes)
    choice = choose(graph, _table({"A": (1.0, 5.0), "B": (10.0, 1.0), "C": (1.0, 2.0)}))
    assert choice.keep_float == ("A", "C")
    assert choice.predicted_ms == {"mixed": 4.0, "int8": 9.0, "float32": 12.0}
    assert choice.reasons == (("A", "CONV_2D", 1.0, 5.0), ("C", "CONV_2D", 1.0, 2.0))
    # the borders decide: at 5 ms a hand-over, B's gain (9 ms) no longer pays for two of them
    assert choose(graph, _table({"A": (1.0, 5.0), "B": (10.0, 1.0), "C": (1.0, 2.0)}, 5.0, 5.0)).keep_float == \
        ("A", "B", "C")


def test_a_tensor_read_by_several_int8_ops_is_quantized_once():
    """A (float is cheaper by 0.8) feeds B and C (both much faster in int8): one QUANTIZE of A's output
    (0.5) serves both, so A stays float; counted per reader (1.0) it would not."""
    shapes = {t: (1, 4) for t in range(4)}
    graph = _graph([("A", "CONV_2D", [0], 1), ("B", "CONV_2D", [1], 2), ("C", "CONV_2D", [1], 3)], [2, 3], shapes)
    choice = choose(graph, _table({"A": (1.0, 1.8), "B": (5.0, 1.0), "C": (5.0, 1.0)}, 0.5, 0.1))
    assert choice.keep_float == ("A",)
    assert choice.predicted_ms["mixed"] == pytest.approx(1.0 + 0.5 + 1.0 + 1.0 + 0.1 + 0.1)


@pytest.mark.parametrize("seed", range(12))
def test_the_choice_is_the_cheapest_of_every_assignment(seed):
    """Random graphs of up to 9 ops (branches, joins, several outputs, one pass-through op) and random costs:
    the minimum cut's time equals the best of all 2^n assignments, and is the modelled time of what it keeps."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, 10))
    ops, shapes = [], {0: (1, 4)}
    for i in range(count):
        reads = sorted(set(rng.choice(i + 1, size=int(rng.integers(1, 3))).tolist()))  # tensors 0..i
        kind = "RESHAPE" if i == count // 2 else "CONV_2D"
        ops.append((f"op{i}", kind, reads, i + 1))
        shapes[i + 1] = (1, int(rng.integers(1, 5)))
    read = {t for _, _, reads, _ in ops for t in reads}
    outputs = sorted({count} | {out for *_, out in ops if out not in read})
    graph = _graph(ops, outputs, shapes)
    table = CostTable("given", {f"sig-{node}": {"kind": kind, "float32": float(rng.uniform(0, 3)),
                                               "int8": float(rng.uniform(0, 3))} for node, kind, _, _ in ops},
                      {border_key(k, s): float(rng.uniform(0, 1.5)) for k in ("QUANTIZE", "DEQUANTIZE")
                       for s in set(shapes.values())})
    choice = choose(graph, table)
    nodes = [node for node, *_ in ops]
    best = min(mixed_int8._modelled(graph, table, {n for n, keep in zip(nodes, bits) if keep})
               for bits in itertools.product((False, True), repeat=count))
    assert choice.predicted_ms["mixed"] == pytest.approx(best, abs=1e-5)  # reported to 5 decimals
    assert mixed_int8._modelled(graph, table, set(choice.keep_float)) == pytest.approx(best, abs=1e-9)


def _depthwise_is_slow_in_int8(files, **_):
    """A stand-in for the timer: depthwise convolutions 10 ms in int8 and 1 ms in float32, every other op the
    other way round, hand-overs 1 us over the invoke overhead (the one-op files are real; only their times are
    made up)."""
    if set(files) == {"float32", "int8"} or set(files) == {"float32"}:
        kind = mixed_int8.graph_of(files["float32"]).ops[0].kind
        slow, fast = (10.0, 1.0) if kind == "DEPTHWISE_CONV_2D" else (1.0, 10.0)
        return {"float32": fast, "int8": slow} if "int8" in files else {"float32": fast}
    return {key: 0.001 if key == "q" else 0.002 for key in files}  # "q": the invoke overhead


@pytest.fixture(scope="module")
def depthwise_table(tmp_path_factory):
    """A cost table of MobileNetV3-Small at 32x32 measured with :func:`_depthwise_is_slow_in_int8` (one-op files
    cut out of the real calibrated and quantized graphs) and saved as a user would pass it to --op-costs."""
    folder = tmp_path_factory.mktemp("costs")
    model = keras_cnn.build("mobilenet_v3_small", num_classes=10, input_shape=(32, 32, 3))
    images = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", str(folder / "keras_home"))
        patch.setattr(mixed_int8, "time_side_by_side", _depthwise_is_slow_in_int8)
        report = export_tflite(model, folder / "measured.tflite", quantize="int8", representative_data=images,
                               keep_float="auto", speed_check=False)
    (cached,) = (folder / "keras_home" / "keras_cnn" / "op_costs").glob("*.json")
    table = folder / "table.json"
    table.write_text(cached.read_text())
    return model, images, table, report


def test_auto_keeps_float_exactly_the_ops_the_table_makes_slower(depthwise_table, tmp_path):
    model, images, table, measured = depthwise_table
    assert measured["quantization"]["mixed"]["cost_table"].endswith(".json")  # measured into this machine's cache
    report = export_tflite(model, tmp_path / "a.tflite", quantize="int8", representative_data=images,
                           keep_float="auto", op_costs=table, speed_check=False)
    mixed = report["quantization"]["mixed"]
    assert mixed["chosen"] == "mixed" and "measured_ms" not in mixed
    assert {entry["kind"] for entry in mixed["kept_float"]} == {"DEPTHWISE_CONV_2D"}
    assert all(entry["float32_ms"] < entry["int8_ms"] for entry in mixed["kept_float"])
    precisions = report["quantization"]["op_precisions"]["ops"]
    assert set(precisions["DEPTHWISE_CONV_2D"]) == {"float32"}, precisions
    assert set(precisions["CONV_2D"]) == set(precisions["ADD"]) == {"int8"}, precisions
    assert mixed["kept_float_ops"] == sum(precisions["DEPTHWISE_CONV_2D"].values())
    assert report["xnnpack_partitions"] == mixed["xnnpack_partitions"]["mixed"]
    # outputs within the int8 tolerance of Keras: the file computes the same net
    expected = model.predict(images, verbose=0)
    assert np.abs(run_tflite(tmp_path / "a.tflite", images) - expected).max() < 0.1
    # reproducible: the same costs (measured into the cache there, a file given here) give the same file
    assert (tmp_path / "a.tflite").read_bytes() == (table.parent / "measured.tflite").read_bytes()
    # the same file from the two steps another CPU's table goes through (benchmarks/int8_latency_files.py)
    calibrated, quantized = calibrated_graphs(model, images)
    data, choice = mixed_from_calibrated(calibrated, quantized, table)
    assert data == (tmp_path / "a.tflite").read_bytes() and len(choice.keep_float) == mixed["kept_float_ops"]
    # a table without this net's ops is an error, not a guess
    with pytest.raises(ValueError, match="has no entry for"):
        export_tflite(model, tmp_path / "c.tflite", quantize="int8", representative_data=images[:1],
                      keep_float="auto", op_costs={"machine": "empty", "ops": {}, "borders": {}}, speed_check=False)
    with pytest.raises(ValueError, match="give it alone"):
        export_tflite(model, tmp_path / "c.tflite", quantize="int8", keep_float=["auto", "ADD"])
    with pytest.raises(ValueError, match="op_costs applies to keep_float='auto'"):
        export_tflite(model, tmp_path / "c.tflite", quantize="int8", op_costs=table)
    assert not (tmp_path / "c.tflite").exists()


def test_cli_auto_with_a_given_table_writes_the_same_choice(depthwise_table, tmp_path):
    """``keras-cnn export NAME --quantize int8 --keep-float auto --op-costs TABLE --no-speed-check`` in a fresh
    process: the same ops stay float as in Python, from the user's table."""
    _, _, table, _ = depthwise_table
    out = run(tmp_path, "export", "mobilenet_v3_small", "--input-shape", "32,32,3", "--num-classes", 10,
              "--quantize", "int8", "--calibration-data", "digits", "--calibration-count", 8, "--keep-float", "auto",
              "--op-costs", table, "--no-speed-check", "--output", "out",
              env={"KERAS_HOME": str(tmp_path / "keras_home")}).stdout
    report = json.loads(out[out.index("{"):])
    kept = report["quantization"]["mixed"]["kept_float"]
    assert {e["kind"] for e in kept} == {"DEPTHWISE_CONV_2D"}
    assert len(kept) == depthwise_table[3]["quantization"]["mixed"]["kept_float_ops"]
    written = (tmp_path / "out" / "mobilenet_v3_small_int8.tflite").read_bytes()
    assert set(op_precisions(written)["ops"]["DEPTHWISE_CONV_2D"]) == {"float32"}
    assert not (tmp_path / "keras_home" / "keras_cnn" / "op_costs").exists()  # nothing timed, nothing cached


@pytest.mark.slow
def test_cli_auto_times_this_cpu_and_caches_the_table(tmp_path):
    """``--keep-float auto`` without a table: every op of the net is timed here once (cached per CPU under
    $KERAS_HOME), the mixed, all-int8 and float32 files are timed side by side and the fastest is written;
    a second export of the same net times no op again."""
    home = tmp_path / "keras_home"
    args = ["export", "mobilenet_v3_small", "--input-shape", "32,32,3", "--num-classes", 10, "--quantize", "int8",
            "--calibration-data", "digits", "--calibration-count", 8, "--keep-float", "auto", "--output", "out"]
    out = run(tmp_path, *args, env={"KERAS_HOME": str(home)}).stdout
    mixed = json.loads(out[out.index("{"):])["quantization"]["mixed"]
    assert set(mixed["measured_ms"]) == {"mixed", "int8", "float32"}
    assert mixed["chosen"] == min(mixed["measured_ms"], key=mixed["measured_ms"].get)
    assert mixed["machine"] == mixed_int8.machine_id()
    (cached,) = (home / "keras_cnn" / "op_costs").glob("*.json")
    assert mixed["cost_table"] == str(cached)
    table = json.loads(cached.read_text())
    assert table["machine"] == mixed_int8.machine_id() and len(table["ops"]) > 20
    assert all(entry["float32"] > 0 for entry in table["ops"].values())
    assert {key.split()[0] for key in table["borders"]} == {"QUANTIZE", "DEQUANTIZE", "overhead"}
    before = cached.read_text()
    run(tmp_path, *args[:-1], "out2", env={"KERAS_HOME": str(home)})
    assert cached.read_text() == before  # every op was in the table: nothing timed again
