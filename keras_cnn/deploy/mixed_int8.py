"""Latency-aware mixed int8: quantize the ops int8 makes faster on this CPU, keep float32 the others.

XNNPACK's int8 kernels are not faster than its float32 kernels everywhere: on an x86 CPU with int8
dot products (VNNI) a 3-channel stem convolution ran 5x slower in int8, depthwise convolutions
0.40-0.82x, while wide 1x1 and dense 3x3 convolutions ran 2.7-14x faster (benchmarks/RESULTS.md).
``export_tflite(..., quantize="int8", keep_float="auto")`` chooses, op by op, which ops of the file
stay float32:

1. **Costs, measured.** Every op of the calibrated float graph is cut out into a file of its own,
   once as it is (float32) and once as the fully quantized graph has it (int8 in, int8 out), and
   both are timed through XNNPACK with one thread; so is each hand-over a mixed file may need
   (QUANTIZE float -> int8, DEQUANTIZE int8 -> float, per tensor shape). The times go into a
   :class:`CostTable`, cached per CPU model and LiteRT version (``$KERAS_HOME/keras_cnn/op_costs``),
   so a second export on the same machine times only ops it has not seen.
2. **The choice, exact.** The file's time is modelled as the sum of its ops' times in their
   precision, plus one QUANTIZE for every float tensor that an int8 op reads and one DEQUANTIZE for
   every int8 tensor a float op (or the float output) reads. Minimising that over every float/int8
   assignment is a minimum s-t cut (the border costs are non-negative, so the energy is submodular):
   :func:`choose` solves it exactly, and given the same table always gives the same answer.
3. **The check, measured.** The chosen (mixed) file, the all-int8 file and the float32 file are
   timed side by side in alternating rounds; the fastest one is written. The report
   (``quantization.mixed``) gives the three times, what stayed float and why (each op's measured
   float and int8 ms), the predicted time and the XNNPACK partitions.

A table measured elsewhere (``op_costs=`` a path or a dict: e.g. one timed on the target phone with
:func:`measure_costs`) makes the choice reproducible and the check is then skipped when asked
(``speed_check=False``); this is how the tests use it.

Example:
    >>> import keras_cnn
    >>> from keras_cnn.deploy.export import export_tflite
    >>> model = keras_cnn.build("mobilenet_v3_small", num_classes=10, input_shape=(64, 64, 3))
    >>> report = export_tflite(model, "v3s_mixed.tflite", quantize="int8", keep_float="auto")  # doctest: +SKIP
    >>> report["quantization"]["mixed"]["chosen"]                                               # doctest: +SKIP
    'mixed'
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np

from keras_cnn.atomic import write_text
from keras_cnn.weights.download import keras_home

#: ops that move bytes without arithmetic and carry their input's precision: never a choice of their own
PASS_THROUGH = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
COSTS_VARIABLE = "KERAS_CNN_OP_COSTS"
TABLE_VERSION = 1


# --------------------------------------------------------------------------- the graph
@dataclasses.dataclass(frozen=True)
class Op:
    """One op of a TFLite graph: its kind, the name the quantizer's deny-list knows it by (its first
    output tensor's name), the activation tensors it reads and writes, and its cost signature."""

    index: int
    kind: str
    node: str
    inputs: tuple
    outputs: tuple
    signature: str


@dataclasses.dataclass(frozen=True)
class Graph:
    ops: tuple
    inputs: tuple  # the file's input tensors (float32)
    outputs: tuple  # the file's output tensors (float32)
    shapes: dict  # tensor index -> shape, for the activation tensors


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _read(flatbuffer):
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))


def _pack(model) -> bytes:
    from ai_edge_litert.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _kind_names() -> dict:
    schema = _schema()
    return {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def _op_kind(model, op, names) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"OP{code.builtinCode}")


def _is_constant(model, subgraph, tensor) -> bool:
    buffer = model.buffers[subgraph.tensors[tensor].buffer]
    return buffer.data is not None and len(buffer.data) > 0


def _options(op) -> str:
    options = op.builtinOptions
    if options is None:
        return ""
    return json.dumps({k: (list(v) if isinstance(v, (list, tuple, np.ndarray)) else v)
                       for k, v in sorted(vars(options).items())}, default=str, sort_keys=True)


def _shape(tensor) -> tuple:
    return tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))


def _name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def graph_of(flatbuffer) -> Graph:
    """The ops of a (float or calibrated) TFLite file's main graph, QUANTIZE/DEQUANTIZE left out."""
    model = _read(flatbuffer)
    subgraph = model.subgraphs[0]
    names = _kind_names()
    ops, shapes = [], {}
    for index, op in enumerate(subgraph.operators):
        kind = _op_kind(model, op, names)
        if kind in ("QUANTIZE", "DEQUANTIZE"):
            continue
        inputs = tuple(t for t in op.inputs if t >= 0 and not _is_constant(model, subgraph, t))
        outputs = tuple(op.outputs)
        for t in inputs + outputs:
            shapes[t] = _shape(subgraph.tensors[t])
        described = [kind, _options(op)]
        described += [f"{'c' if _is_constant(model, subgraph, t) else 'a'}{list(_shape(subgraph.tensors[t]))}"
                      for t in op.inputs if t >= 0]
        described += [f"o{list(_shape(subgraph.tensors[t]))}" for t in outputs]
        signature = f"{kind}:" + hashlib.sha1("|".join(described).encode()).hexdigest()[:16]
        ops.append(Op(index, kind, _name(subgraph.tensors[outputs[0]]), inputs, outputs, signature))
    return Graph(tuple(ops), tuple(subgraph.inputs), tuple(subgraph.outputs), shapes)


# --------------------------------------------------------------------------- one-op files
def single_op_file(flatbuffer, node: str) -> bytes:
    """A file holding only the op whose first output is named ``node``, its weights and options;
    its activation inputs become the file's inputs (in the op's own precision: an op of a fully
    quantized file reads and writes int8)."""
    model = _read(flatbuffer)
    subgraph = model.subgraphs[0]
    op = next((o for o in subgraph.operators if _name(subgraph.tensors[o.outputs[0]]) == node), None)
    if op is None:
        raise ValueError(f"no op writes a tensor named {node!r}")
    schema = _schema()
    used = [t for t in list(op.inputs) + list(op.outputs) if t >= 0]
    used = list(dict.fromkeys(used))
    remap = {t: i for i, t in enumerate(used)}
    small = schema.ModelT()
    small.version = model.version
    small.description = "keras_cnn one-op cost probe"
    small.operatorCodes = [copy.deepcopy(model.operatorCodes[op.opcodeIndex])]
    small.buffers = [schema.BufferT()]
    tensors = []
    for t in used:
        tensor = copy.deepcopy(subgraph.tensors[t])
        if _is_constant(model, subgraph, t):
            buffer = schema.BufferT()
            buffer.data = model.buffers[tensor.buffer].data
            small.buffers.append(buffer)
            tensor.buffer = len(small.buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs = [remap[t] for t in op.inputs if t >= 0 and not _is_constant(model, subgraph, t)]
    graph.outputs = [remap[t] for t in op.outputs]
    single = copy.deepcopy(op)
    single.opcodeIndex = 0
    single.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
    single.outputs = [remap[t] for t in op.outputs]
    single.intermediates = []
    graph.operators = [single]
    graph.name = "main"
    small.subgraphs = [graph]
    small.signatureDefs = []
    small.metadata = []
    small.metadataBuffer = []
    return _pack(small)


def border_file(kind: str, shape) -> bytes:
    """A file holding one QUANTIZE (float32 -> int8) or DEQUANTIZE (int8 -> float32) of ``shape``."""
    schema = _schema()
    code = schema.OperatorCodeT()
    code.builtinCode = getattr(schema.BuiltinOperator, kind)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT()]
    tensors = []
    for dtype, name in ((schema.TensorType.FLOAT32, "float"), (schema.TensorType.INT8, "int8")):
        tensor = schema.TensorT()
        tensor.shape = list(shape)
        tensor.type = dtype
        tensor.buffer = 0
        tensor.name = name
        if dtype == schema.TensorType.INT8:
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.scale = [0.05]
            tensor.quantization.zeroPoint = [-3]
        tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs, op.outputs = ([0], [1]) if kind == "QUANTIZE" else ([1], [0])
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs, graph.outputs = list(op.inputs), list(op.outputs)
    graph.operators = [op]
    graph.name = "main"
    model.subgraphs = [graph]
    return _pack(model)


# --------------------------------------------------------------------------- timing
def _runner(flatbuffer):
    from keras_cnn.deploy.tflite import make_interpreter

    interpreter = make_interpreter(flatbuffer, num_threads=1)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        if detail["dtype"] == np.float32:
            value = rng.random(detail["shape"]).astype("float32")
        else:
            limits = np.iinfo(detail["dtype"])
            value = rng.integers(limits.min, limits.max, detail["shape"], endpoint=True).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return interpreter.invoke


def time_side_by_side(files: dict, *, rounds=5, runs=10, warmup=2) -> dict:
    """Median milliseconds of one invoke of each file (XNNPACK, 1 thread), the files timed in alternation
    for ``rounds`` rounds of ``runs`` runs (median of the per-round medians)."""
    runners = {key: _runner(data) for key, data in files.items()}
    for invoke in runners.values():
        for _ in range(warmup):
            invoke()
    medians = {key: [] for key in runners}
    for _ in range(rounds):
        for key, invoke in runners.items():
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                invoke()
                times.append(time.perf_counter() - start)
            medians[key].append(float(np.median(times)) * 1e3)
    return {key: float(np.median(values)) for key, values in medians.items()}


# --------------------------------------------------------------------------- the cost table
def machine_id() -> str:
    """What a cost table is valid for: the CPU model, its int8 dot-product extensions and LiteRT's version."""
    cpu = platform.processor() or platform.machine()
    flags = set()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the platform's name only
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            cpu = value.strip()
        elif key.strip() in ("flags", "Features"):
            flags.update(value.split())
    extensions = sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})
    try:
        from ai_edge_litert import __version__ as litert
    except ImportError:  # pragma: no cover
        litert = "unknown"
    return f"{platform.machine()} {cpu} [{' '.join(extensions)}] litert {litert}"


def cost_folder() -> Path:
    return keras_home() / "keras_cnn" / "op_costs"


@dataclasses.dataclass
class CostTable:
    """Measured milliseconds (XNNPACK, 1 thread) of op signatures in float32 and int8, and of the
    QUANTIZE / DEQUANTIZE of a tensor shape, on one machine (:func:`machine_id`)."""

    machine: str
    ops: dict = dataclasses.field(default_factory=dict)  # signature -> {"float32": ms, "int8": ms, "kind": ...}
    borders: dict = dataclasses.field(default_factory=dict)  # "QUANTIZE 1x56x56x24" -> ms
    path: Path | None = None

    @classmethod
    def load(cls, source=None) -> CostTable:
        """``source``: a path or dict of a saved table; None: this machine's cached table
        (``$KERAS_CNN_OP_COSTS`` names a file to use instead), empty if none was measured yet."""
        if isinstance(source, CostTable):
            return source
        if isinstance(source, dict):
            return cls(source.get("machine", "given"), dict(source.get("ops", {})), dict(source.get("borders", {})))
        if source is None and os.environ.get(COSTS_VARIABLE):
            source = os.environ[COSTS_VARIABLE]
        if source is not None:
            path = Path(source)
            if not path.is_file():
                raise ValueError(f"op_costs: no such cost table file: {source}")
            try:
                data = json.loads(path.read_text())
            except ValueError as error:
                raise ValueError(f"op_costs: {source} is not a JSON cost table ({error})") from None
            table = cls.load(data)
            table.path = path
            return table
        machine = machine_id()
        path = cost_folder() / (re.sub(r"[^A-Za-z0-9_.-]+", "_", machine).strip("_")[:120] + ".json")
        table = cls(machine, path=path)
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("version") == TABLE_VERSION and data.get("machine") == machine:
                    table.ops, table.borders = dict(data["ops"]), dict(data["borders"])
            except (ValueError, KeyError):
                pass  # a damaged cache is measured again (and rewritten atomically)
        return table

    def save(self, path=None) -> Path:
        path = Path(path or self.path)
        write_text(path, json.dumps({"version": TABLE_VERSION, "machine": self.machine, "ops": self.ops,
                                     "borders": self.borders}, indent=1, sort_keys=True))
        return path

    def border(self, kind: str, shape) -> float:
        return self.borders[border_key(kind, shape)]


def border_key(kind: str, shape) -> str:
    return f"{kind} {'x'.join(str(d) for d in shape)}"


def measure_costs(float_file: bytes, int8_file: bytes, table: CostTable | None = None, *, rounds=5,
                  runs=10) -> CostTable:
    """Time, in ``table`` (this machine's cached table by default), every op signature of ``float_file``
    (the calibrated float graph) and ``int8_file`` (the same graph fully quantized) that it lacks, and the
    borders a mixed file of them may need; saves the table when it has a path."""
    table = CostTable.load() if table is None else table
    graph = graph_of(float_file)
    quantized = matching_ops(graph, graph_of(int8_file))
    added = False
    for op in graph.ops:
        if op.signature in table.ops or op.kind in PASS_THROUGH:
            continue
        files = {"float32": single_op_file(float_file, op.node)}
        if quantized.get(op.node) is not None:
            files["int8"] = single_op_file(int8_file, quantized[op.node].node)
        times = time_side_by_side(files, rounds=rounds, runs=runs)
        table.ops[op.signature] = {"kind": op.kind, "float32": round(times["float32"], 5),
                                   "int8": round(times["int8"], 5) if "int8" in times else None}
        added = True
    for shape in sorted(set(graph.shapes.values())):  # every tensor an op reads or writes, the file's own included
        keys = {kind: border_key(kind, shape) for kind in ("QUANTIZE", "DEQUANTIZE")}
        if all(key in table.borders for key in keys.values()):
            continue
        times = time_side_by_side({kind: border_file(kind, shape) for kind in keys}, rounds=rounds, runs=runs)
        for kind, key in keys.items():
            table.borders[key] = round(times[kind], 5)
        added = True
    if "overhead" not in table.borders:  # one invoke of the smallest file: part of every timed op, not the op's
        table.borders["overhead"] = round(time_side_by_side({"q": border_file("QUANTIZE", (1,))}, rounds=rounds,
                                                            runs=runs)["q"], 5)
        added = True
    if added and table.path is not None:
        table.save()
    return table


def matching_ops(float_graph: Graph, int8_graph: Graph) -> dict:
    """``{float op node: the same op in the fully quantized graph}`` (None where it has no int8 twin).
    The quantizer keeps the ops and their order and inserts only QUANTIZE/DEQUANTIZE (which
    :func:`graph_of` leaves out); an op writing a file output is renamed (``PartitionedCall:01``), so ops
    are matched by position and kind."""
    if [op.kind for op in float_graph.ops] != [op.kind for op in int8_graph.ops]:
        by_name = {op.node: op for op in int8_graph.ops}
        return {op.node: by_name.get(op.node) for op in float_graph.ops}
    return {a.node: b for a, b in zip(float_graph.ops, int8_graph.ops)}


# --------------------------------------------------------------------------- the choice
@dataclasses.dataclass(frozen=True)
class Choice:
    """Which ops stay float32 (their deny-list names), and the modelled milliseconds of the mixed,
    all-int8 and float32 files."""

    keep_float: tuple
    reasons: tuple  # (op node, kind, float32 ms, int8 ms) of every op kept float
    predicted_ms: dict


def _op_costs(op: Op, table: CostTable) -> tuple[float, float]:
    if op.kind in PASS_THROUGH:
        return 0.0, 0.0
    entry = table.ops.get(op.signature)
    if entry is None:
        raise ValueError(f"the cost table ({table.machine}) has no entry for {op.kind} op {op.node!r} "
                         f"(signature {op.signature}): measure it with measure_costs()")
    overhead = table.borders.get("overhead", 0.0)
    float_ms = max(0.0, entry["float32"] - overhead)
    int8_ms = float("inf") if entry.get("int8") is None else max(0.0, entry["int8"] - overhead)
    return float_ms, int8_ms


def choose(graph: Graph, table: CostTable) -> Choice:
    """The float32/int8 assignment of ``graph``'s ops with the least modelled time (exact: a minimum cut).

    Variables: each op (float32 on the source side, int8 on the sink side); per tensor written by an op
    and read by others, a variable for "an int8 copy exists" (cost: one QUANTIZE, when the writer is
    float) and one for "a float copy exists" (one DEQUANTIZE, when the writer is int8). The file's
    inputs are float32 tensors; its outputs must be float32."""
    overhead = table.borders.get("overhead", 0.0)

    def border(kind, tensor):
        return max(0.0, table.border(kind, graph.shapes[tensor]) - overhead)

    flow = _MinCut()
    costs = {}
    for op in graph.ops:
        float_ms, int8_ms = costs[op.node] = _op_costs(op, table)
        flow.unary(op.node, float_ms, int8_ms)
    writer = {t: op.node for op in graph.ops for t in op.outputs}
    readers = collections.defaultdict(list)
    for op in graph.ops:
        for t in op.inputs:
            readers[t].append(op.node)
    for t in graph.outputs:
        readers[t].append(("output", t))
    for tensor, nodes in readers.items():
        source = writer.get(tensor)
        if source is None:  # a file input: float32, fixed
            source = ("input", tensor)
            flow.unary(source, 0.0, _MinCut.INFINITE)
        int8_copy, float_copy = ("q", tensor), ("dq", tensor)
        flow.pairwise(source, int8_copy, border("QUANTIZE", tensor), 0.0)  # float writer, int8 copy exists
        flow.pairwise(float_copy, source, border("DEQUANTIZE", tensor), 0.0)  # float copy needed, int8 writer
        for node in nodes:
            if isinstance(node, tuple):  # the float32 output
                flow.unary(node, 0.0, _MinCut.INFINITE)
            flow.pairwise(int8_copy, node, _MinCut.INFINITE, 0.0)  # an int8 reader needs the int8 copy
            flow.pairwise(node, float_copy, _MinCut.INFINITE, 0.0)  # a float reader needs the float copy
    float_side = flow.solve()
    kept = tuple(op.node for op in graph.ops if op.node in float_side)
    reasons = tuple((op.node, op.kind, round(costs[op.node][0], 5), round(costs[op.node][1], 5))
                    for op in graph.ops if op.node in kept)
    predicted = {"mixed": round(flow.value, 5),
                 "int8": round(_modelled(graph, table, set()), 5),
                 "float32": round(sum(c[0] for c in costs.values()), 5)}
    return Choice(kept, reasons, predicted)


def _modelled(graph: Graph, table: CostTable, float_nodes: set) -> float:
    """The modelled milliseconds of ``graph`` with ``float_nodes`` float32 and every other op int8."""
    overhead = table.borders.get("overhead", 0.0)
    total = 0.0
    precision = {}
    for op in graph.ops:
        float_ms, int8_ms = _op_costs(op, table)
        is_float = op.node in float_nodes
        total += float_ms if is_float else int8_ms
        for t in op.outputs:
            precision[t] = is_float
    readers = collections.defaultdict(set)
    for op in graph.ops:
        for t in op.inputs:
            readers[t].add(op.node in float_nodes)
    for t in graph.outputs:
        readers[t].add(True)
    for tensor, wanted in readers.items():
        written_float = precision.get(tensor, True)
        if written_float and False in wanted:
            total += max(0.0, table.border("QUANTIZE", graph.shapes[tensor]) - overhead)
        if not written_float and True in wanted:
            total += max(0.0, table.border("DEQUANTIZE", graph.shapes[tensor]) - overhead)
    return total


class _MinCut:
    """Minimum s-t cut of a small graph (Edmonds-Karp). A node on the source side is float32 (x = 0),
    on the sink side int8 (x = 1)."""

    INFINITE = float("inf")
    SOURCE, SINK = ("__source__",), ("__sink__",)

    def __init__(self):
        self.capacity = collections.defaultdict(lambda: collections.defaultdict(float))
        self.value = 0.0

    def _edge(self, a, b, capacity):
        if capacity > 0:
            self.capacity[a][b] += capacity
            self.capacity[b][a] += 0.0

    def unary(self, node, cost_float, cost_int8):
        """x = 0 costs ``cost_float``, x = 1 ``cost_int8``."""
        self._edge(self.SOURCE, node, cost_int8)  # cut when node is on the sink side (int8)
        self._edge(node, self.SINK, cost_float)  # cut when node is on the source side (float)

    def pairwise(self, a, b, cost_a0_b1, cost_a1_b0):
        """x_a = 0, x_b = 1 costs ``cost_a0_b1``; x_a = 1, x_b = 0 costs ``cost_a1_b0``; equal: 0."""
        self._edge(a, b, cost_a0_b1)
        self._edge(b, a, cost_a1_b0)

    def solve(self) -> set:
        finite = sum(c for edges in self.capacity.values() for c in edges.values() if c != self.INFINITE)
        big = 1.0 + 10.0 * finite
        residual = {a: {b: (big if c == self.INFINITE else c) for b, c in edges.items()}
                    for a, edges in self.capacity.items()}
        order = {node: i for i, node in enumerate(residual)}  # deterministic search order
        total = 0.0
        while True:
            parent = {self.SOURCE: None}
            queue = collections.deque([self.SOURCE])
            while queue and self.SINK not in parent:
                a = queue.popleft()
                for b in sorted(residual[a], key=order.__getitem__):
                    if b not in parent and residual[a][b] > 1e-12:
                        parent[b] = a
                        queue.append(b)
            if self.SINK not in parent:
                break
            path, node = [], self.SINK
            while parent[node] is not None:
                path.append((parent[node], node))
                node = parent[node]
            push = min(residual[a][b] for a, b in path)
            for a, b in path:
                residual[a][b] -= push
                residual[b][a] += push
            total += push
        self.value = total
        return set(parent)  # reachable from the source in the residual graph: the float32 side
